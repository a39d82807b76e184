//! Item shapes: the domain types serialised with serde_dynamo, plus the key attributes from
//! [`keys`](super::keys).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::keys;
use crate::domain::{Delivery, DeliveryStatus, Mention, Platform};
use crate::ports::{Counters, HourBucket, MentionQuery, StoreError};

/// One DynamoDB item.
pub(crate) type Attributes = HashMap<String, AttributeValue>;

const SECONDS_PER_DAY: i64 = 86_400;

/// The attribute holding a configuration document.
pub(crate) const CONFIG_DOC: &str = "doc";

/// Serialises a domain value into item attributes.
pub(crate) fn encode<T: Serialize>(
    entity: &'static str,
    id: &str,
    value: &T,
) -> Result<Attributes, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt {
        entity,
        id: id.to_owned(),
        source: Box::new(e),
    })
}

/// Reads a domain value back from an item, ignoring the store's own attributes. A failure is
/// [`StoreError::Corrupt`]: the item exists but is not a readable `T`.
pub(crate) fn decode<T: DeserializeOwned>(
    entity: &'static str,
    mut item: Attributes,
) -> Result<T, StoreError> {
    let id = item_id(&item);
    for name in keys::STORE_ATTRIBUTES {
        item.remove(name);
    }
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt {
        entity,
        id,
        source: Box::new(e),
    })
}

/// The partition key of an item, for error messages.
pub(crate) fn item_id(item: &Attributes) -> String {
    match item.get(keys::PK) {
        Some(AttributeValue::S(pk)) => pk.clone(),
        _ => "?".to_owned(),
    }
}

// ------------------------------------------------------------------ mentions

/// The items of one mention: the main item (its key is the dedupe) and one copy per further
/// campaign, so every campaign's timeline lists it from GSI1.
pub(crate) struct MentionItems {
    pub main: Attributes,
    pub copies: Vec<Attributes>,
}

/// When a mention expires: `created_at` + retention, in epoch seconds (DynamoDB TTL).
pub(crate) fn mention_expiry(created_at: Timestamp, retention_days: u32) -> i64 {
    created_at
        .as_second()
        .saturating_add(i64::from(retention_days) * SECONDS_PER_DAY)
}

pub(crate) fn mention_items(
    mention: &Mention,
    retention_days: u32,
) -> Result<MentionItems, StoreError> {
    let key = keys::mention(mention.platform, &mention.native_id);
    let mut main = encode("mention", &key.pk, mention)?;
    key.add_to(&mut main);
    let first = mention
        .campaigns
        .first()
        .map_or(MentionQuery::UNMATCHED, String::as_str);
    main.insert(
        keys::GSI1PK.to_owned(),
        AttributeValue::S(keys::timeline(first)),
    );
    main.insert(
        keys::GSI1SK.to_owned(),
        AttributeValue::S(keys::timeline_sort(
            mention.created_at,
            mention.platform,
            &mention.native_id,
        )),
    );
    main.insert(
        keys::EXPIRES_AT.to_owned(),
        AttributeValue::N(mention_expiry(mention.created_at, retention_days).to_string()),
    );
    let copies = timeline_copies(&main, mention);
    Ok(MentionItems { main, copies })
}

/// Copies of a mention's main item (as built here or as stored) for its campaigns after
/// the first; a campaign listed twice gets one copy.
pub(crate) fn timeline_copies(main: &Attributes, mention: &Mention) -> Vec<Attributes> {
    let mut seen: Vec<&str> = Vec::new();
    let mut copies = Vec::new();
    for campaign in &mention.campaigns {
        if seen.contains(&campaign.as_str()) {
            continue;
        }
        seen.push(campaign);
        if seen.len() == 1 {
            continue; // the main item carries the first campaign
        }
        let key = keys::mention_timeline_copy(mention.platform, &mention.native_id, campaign);
        let mut copy = main.clone();
        key.add_to(&mut copy);
        copy.insert(
            keys::GSI1PK.to_owned(),
            AttributeValue::S(keys::timeline(campaign)),
        );
        copies.push(copy);
    }
    copies
}

/// The TTL attribute of a stored item.
pub(crate) fn expires_at(item: &Attributes) -> Result<Option<i64>, StoreError> {
    match item.get(keys::EXPIRES_AT) {
        None => Ok(None),
        Some(value) => serde_dynamo::from_attribute_value(value.clone())
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                entity: "mention",
                id: item_id(item),
                source: Box::new(e),
            }),
    }
}

// ------------------------------------------------------------------ aggregates

/// An hourly aggregate as stored: its identity (set once) and its counters (added to).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct AggregateRecord {
    pub campaign: String,
    pub platform: Platform,
    pub hour: Timestamp,
    #[serde(flatten)]
    pub counters: Counters,
}

impl AggregateRecord {
    pub fn into_bucket(self) -> (HourBucket, Counters) {
        (
            HourBucket {
                campaign: self.campaign,
                platform: self.platform,
                hour: self.hour,
            },
            self.counters,
        )
    }
}

// ------------------------------------------------------------------ deliveries

/// A delivery item: the delivery with its version, and its index keys: the due partition
/// while queued, the settle partition while claimed, sent or unknown (left out in other
/// states, which removes it from the sparse index on the next full put).
pub(crate) fn delivery_item(delivery: &Delivery) -> Result<Attributes, StoreError> {
    let key = keys::delivery(&delivery.id);
    let mut item = encode("delivery", &delivery.id, delivery)?;
    key.add_to(&mut item);
    let partition = match (delivery.status(), delivery.settle_at()) {
        (DeliveryStatus::Queued, _) => Some((keys::DUE_QUEUED, delivery.due_at)),
        (_, Some(at)) => Some((keys::SETTLE, at)),
        _ => None,
    };
    if let Some((pk, at)) = partition {
        item.insert(keys::GSI1PK.to_owned(), AttributeValue::S(pk.to_owned()));
        item.insert(
            keys::GSI1SK.to_owned(),
            AttributeValue::S(keys::due_sort(at, &delivery.id)),
        );
    }
    Ok(item)
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::domain::{Author, Cursor, Engagement, Sentiment, SentimentLabel};
    use crate::ports::TriggerState;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_780_272_000 + s).unwrap()
    }

    fn mention(campaigns: &[&str]) -> Mention {
        Mention {
            platform: Platform::Bluesky,
            native_id: "3l6oveex3ii2l".to_owned(),
            url: "https://bsky.app/profile/zoe/post/3l6oveex3ii2l".to_owned(),
            author: Author {
                handle: "zoë.bsky.social".to_owned(),
                display_name: Some("Zoë Ünal 🦀👩🏽‍💻".to_owned()),
                followers: Some(0),
                url: None,
            },
            text: "Hark ist großartig! 🎉 \"quotes\" #hash ${expr}\n日本語 مرحبا".to_owned(),
            created_at: Timestamp::new(1_780_272_000, 123_456_000).unwrap(),
            lang: Some("de".to_owned()),
            sentiment: Some(Sentiment {
                label: SentimentLabel::Positive,
                compound: 0.6249,
                pos: 0.1,
                neu: 0.0,
                neg: 1.0,
            }),
            engagement: Engagement::default(),
            campaigns: campaigns.iter().map(|c| c.to_string()).collect(),
            source_id: None,
        }
    }

    fn s(item: &Attributes, name: &str) -> String {
        item[name].as_s().unwrap().clone()
    }

    #[test]
    fn given_a_mention_with_emoji_when_encoded_and_decoded_then_it_round_trips() {
        let m = mention(&["launch"]);
        let items = mention_items(&m, 30).unwrap();
        assert_eq!(decode::<Mention>("mention", items.main.clone()).unwrap(), m);
        assert_eq!(
            s(&items.main, "text"),
            m.text,
            "text is a plain string attribute"
        );
        assert_eq!(s(&items.main, keys::PK), "MENTION#bluesky#3l6oveex3ii2l");
        assert_eq!(s(&items.main, keys::GSI1PK), "TIMELINE#launch");
        assert_eq!(
            s(&items.main, keys::GSI1SK),
            "001780272000123456#bluesky#3l6oveex3ii2l"
        );
        assert_eq!(
            expires_at(&items.main).unwrap(),
            Some(1_780_272_000 + 30 * 86_400)
        );
        assert!(items.copies.is_empty());
    }

    #[test]
    fn given_several_campaigns_then_each_further_one_gets_a_copy_and_none_gets_the_unmatched_timeline()
     {
        let m = mention(&["launch", "brand", "launch", "rust"]);
        let items = mention_items(&m, 30).unwrap();
        let timelines: Vec<_> = items.copies.iter().map(|c| s(c, keys::GSI1PK)).collect();
        assert_eq!(timelines, ["TIMELINE#brand", "TIMELINE#rust"]);
        for copy in &items.copies {
            assert_eq!(s(copy, keys::PK), s(&items.main, keys::PK));
            assert_eq!(
                s(copy, keys::SK),
                s(copy, keys::GSI1PK),
                "SK TIMELINE#<campaign>"
            );
            assert_eq!(s(copy, keys::GSI1SK), s(&items.main, keys::GSI1SK));
            assert_eq!(copy[keys::EXPIRES_AT], items.main[keys::EXPIRES_AT]);
            assert_eq!(decode::<Mention>("mention", copy.clone()).unwrap(), m);
        }
        let unmatched = mention_items(&mention(&[]), 30).unwrap();
        assert_eq!(s(&unmatched.main, keys::GSI1PK), "TIMELINE#_unmatched");
    }

    fn deliveries() -> Vec<Delivery> {
        let mut d = Delivery::new("launch-day", "brand-x", t(0), t(0));
        let mut all = vec![d.clone()];
        d.claim("worker-1", SignedDuration::from_secs(60), t(1))
            .unwrap();
        all.push(d.clone());
        d.mark_sent(SignedDuration::from_secs(60), t(2)).unwrap();
        all.push(d.clone());
        let mut unknown = d.clone();
        unknown
            .mark_unknown("timeout after send ⏱", t(63), t(3))
            .unwrap();
        all.push(unknown.clone());
        let mut failed = d.clone();
        failed
            .mark_failed("401: token expired", true, t(3))
            .unwrap();
        all.push(failed);
        let mut published = d.clone();
        published
            .mark_published("1790000000000000001", None, t(3))
            .unwrap();
        all.push(published);
        let mut with_url = unknown.clone();
        with_url
            .mark_published("3l6", Some("https://bsky.app/p/3l6"), t(4))
            .unwrap();
        all.push(with_url);
        let mut requeued = unknown;
        requeued
            .requeue(t(60), "not found on the account", t(5))
            .unwrap();
        requeued.version = 7;
        all.push(requeued);
        all
    }

    #[test]
    fn given_a_delivery_in_every_state_when_stored_then_it_reads_back_equal() {
        let all = deliveries();
        let statuses: Vec<_> = all.iter().map(|d| d.status()).collect();
        for status in [
            DeliveryStatus::Queued,
            DeliveryStatus::Claimed,
            DeliveryStatus::Sent,
            DeliveryStatus::Published,
            DeliveryStatus::Failed,
            DeliveryStatus::Unknown,
        ] {
            assert!(statuses.contains(&status), "{status} is covered");
        }
        for d in all {
            let item = delivery_item(&d).unwrap();
            assert_eq!(s(&item, "status"), d.status().as_str());
            let partition = item.get(keys::GSI1PK).map(|v| v.as_s().unwrap().as_str());
            let expected = match d.status() {
                DeliveryStatus::Queued => Some("DUE#QUEUED"),
                DeliveryStatus::Claimed | DeliveryStatus::Sent | DeliveryStatus::Unknown => {
                    Some("SETTLE")
                }
                _ => None,
            };
            assert_eq!(partition, expected, "{}", d.status());
            assert_eq!(decode::<Delivery>("delivery", item).unwrap(), d);
        }
    }

    #[test]
    fn given_a_claimed_sent_or_unknown_delivery_then_its_settle_key_sorts_by_settle_time() {
        let mut d = Delivery::new("p", "c", t(0), t(0));
        d.claim("w", SignedDuration::from_secs(300), t(10)).unwrap();
        let item = delivery_item(&d).unwrap();
        assert_eq!(s(&item, keys::GSI1PK), "SETTLE");
        assert_eq!(s(&item, keys::GSI1SK), keys::due_sort(t(310), &d.id));
        d.mark_sent(SignedDuration::from_secs(300), t(20)).unwrap();
        let item = delivery_item(&d).unwrap();
        assert_eq!(s(&item, keys::GSI1SK), keys::due_sort(t(320), &d.id));
        d.mark_unknown("timeout", t(80), t(21)).unwrap();
        let item = delivery_item(&d).unwrap();
        assert_eq!(s(&item, keys::GSI1SK), keys::due_sort(t(80), &d.id));
    }

    #[test]
    fn given_a_queued_delivery_then_its_due_key_sorts_by_due_time() {
        let d = Delivery::new("p", "c", t(0), t(0));
        let item = delivery_item(&d).unwrap();
        assert_eq!(s(&item, keys::GSI1PK), "DUE#QUEUED");
        assert_eq!(s(&item, keys::GSI1SK), keys::due_sort(t(0), &d.id));
    }

    #[test]
    fn given_an_aggregate_record_then_identity_and_counters_round_trip() {
        let record = AggregateRecord {
            campaign: "launch".to_owned(),
            platform: Platform::Hackernews,
            hour: t(0),
            counters: Counters {
                mentions: 3,
                compound_e4: -4767,
                reach: u64::MAX,
                ..Counters::default()
            },
        };
        let item = encode("aggregate", "x", &record).unwrap();
        let back: AggregateRecord = decode("aggregate", item).unwrap();
        assert_eq!(back.into_bucket(), record.into_bucket());
    }

    #[test]
    fn given_cursor_and_trigger_state_then_they_round_trip() {
        let mut c = Cursor::new("vendor-blog");
        c.etag = Some("W/\"5f3-ünïcode\"".to_owned());
        c.next_poll_at = Some(Timestamp::new(1_780_272_300, 1).unwrap());
        c.version = 3;
        let back: Cursor = decode("cursor", encode("cursor", "x", &c).unwrap()).unwrap();
        assert_eq!(back, c);

        let state = TriggerState {
            campaign: "launch".to_owned(),
            rule: "negative-wave".to_owned(),
            window_start: t(3600),
            fired_at: t(3700),
            cooldown_until: t(5500),
            fired_count: 2,
            pending_event: Some(r#"{"type":"TriggerFired"}"#.to_owned()),
        };
        let mut item = encode("trigger", "x", &state).unwrap();
        item.insert(
            keys::WINDOW_START_NS.to_owned(),
            AttributeValue::N("1".to_owned()),
        );
        assert_eq!(decode::<TriggerState>("trigger", item).unwrap(), state);
    }

    #[test]
    fn given_an_unreadable_item_when_decoded_then_corrupt_names_the_item() {
        let mut item = delivery_item(&Delivery::new("p", "c", t(0), t(0))).unwrap();
        item.insert(
            "status".to_owned(),
            AttributeValue::S("EXPLODED".to_owned()),
        );
        let err = decode::<Delivery>("delivery", item).unwrap_err();
        match err {
            StoreError::Corrupt { entity, id, .. } => {
                assert_eq!(
                    (entity, id.as_str()),
                    ("delivery", "DELIVERY#p.c.1780272000")
                );
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
}
