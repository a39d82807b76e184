//! The one home of the key formats of Hark's single DynamoDB table.
//!
//! | item | `PK` | `SK` | `GSI1PK` | `GSI1SK` |
//! |---|---|---|---|---|
//! | cursor | `CURSOR#<source>` | `CURSOR` | | |
//! | mention | `MENTION#<platform>#<native id>` | `MENTION` | `TIMELINE#<first campaign or _unmatched>` | `<µs>#<platform>#<native id>` |
//! | mention, further campaign | same | `TIMELINE#<campaign>` | `TIMELINE#<campaign>` | same |
//! | hourly aggregate | `AGG#<campaign>` | `<hour, epoch s>#<platform>` | | |
//! | config document | `CONFIG#<kind>` | `<id>` | | |
//! | delivery | `DELIVERY#<id>` | `DELIVERY` | `DUE#QUEUED` while queued | `<due µs>#<id>` |
//! | delivery | same | same | `SETTLE` while claimed, sent or unknown | `<settle µs>#<id>` |
//! | trigger state | `TRIGGER#<campaign>#<rule>` | `STATE` | | |
//! | trigger firing | `FIRINGS#<campaign>` | `<window start µs>#<rule>` | | |
//! | budget counter | `BUDGET#<key>` | `COUNT` | | |
//!
//! Instants in sort keys are zero-padded so that byte order (DynamoDB compares string keys
//! by their UTF-8 bytes) is chronological order. User ids cannot contain `#`
//! ([`validate_id`](crate::domain::validate_id)), so the separators are unambiguous.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;

use crate::domain::Platform;

use crate::ports::{EntityKind, HourBucket};

pub(crate) const PK: &str = "PK";
pub(crate) const SK: &str = "SK";
/// The one global secondary index: mention timelines and due deliveries.
pub(crate) const GSI1: &str = "GSI1";
pub(crate) const GSI1PK: &str = "GSI1PK";
pub(crate) const GSI1SK: &str = "GSI1SK";
/// The TTL attribute, in epoch **seconds** (DynamoDB ignores other units:
/// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/time-to-live-ttl-before-you-start.html>).
pub(crate) const EXPIRES_AT: &str = "expires_at";
/// Trigger state instants as numbers (epoch ns), so condition expressions compare them
/// numerically; the RFC 3339 strings next to them are for reading back.
pub(crate) const WINDOW_START_NS: &str = "window_start_ns";
pub(crate) const COOLDOWN_UNTIL_NS: &str = "cooldown_until_ns";

/// Attributes the store adds next to the domain fields; removed before decoding an item.
pub(crate) const STORE_ATTRIBUTES: [&str; 7] = [
    PK,
    SK,
    GSI1PK,
    GSI1SK,
    EXPIRES_AT,
    WINDOW_START_NS,
    COOLDOWN_UNTIL_NS,
];

pub(crate) const MENTION_PREFIX: &str = "MENTION#";
pub(crate) const DELIVERY_PREFIX: &str = "DELIVERY#";
pub(crate) const DELIVERY_SK: &str = "DELIVERY";
/// `GSI1PK` of queued deliveries; other states leave the index (a sparse index).
pub(crate) const DUE_QUEUED: &str = "DUE#QUEUED";
/// `GSI1PK` of claimed, sent and unknown deliveries (a second sparse partition of the same
/// index: a delivery is in at most one of the two), sorted by their settle time.
pub(crate) const SETTLE: &str = "SETTLE";

const MENTION_SK: &str = "MENTION";
const TIMELINE_PREFIX: &str = "TIMELINE#";

/// Digits of a microsecond instant: every non-negative jiff timestamp (up to year 9999,
/// 2.5 × 10¹⁷ µs) fits, so byte order is time order.
const MICROS_WIDTH: usize = 18;
/// Digits of an hour start in epoch seconds (year 9999 is 2.5 × 10¹¹ s).
const SECONDS_WIDTH: usize = 12;
/// Sorts right after the separator `#` (0x23 < 0x24): `<prefix>$` is above every key that
/// continues `<prefix>#…`, and below every key with a larger zero-padded number.
const ABOVE_SEPARATOR: char = '$';

/// The primary key of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ItemKey {
    pub pk: String,
    pub sk: String,
}

impl ItemKey {
    fn new(pk: String, sk: impl Into<String>) -> Self {
        ItemKey { pk, sk: sk.into() }
    }

    /// The key as request attributes (`Key` of GetItem / UpdateItem).
    pub fn to_attributes(&self) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (PK.to_owned(), AttributeValue::S(self.pk.clone())),
            (SK.to_owned(), AttributeValue::S(self.sk.clone())),
        ])
    }

    /// Adds the key to an item's attributes.
    pub fn add_to(&self, item: &mut HashMap<String, AttributeValue>) {
        item.extend(self.to_attributes());
    }
}

/// Inclusive bounds for `SK BETWEEN :lo AND :hi` (DynamoDB has no half-open range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SortRange {
    pub lo: String,
    pub hi: String,
}

impl SortRange {
    fn contains(&self, key: &str) -> bool {
        self.lo.as_str() <= key && key <= self.hi.as_str()
    }
}

/// Epoch microseconds, zero-padded. Instants before 1970 sort as 1970 (no platform has
/// posts that old; jiff's negative range would need a sign-aware encoding).
fn micros(at: Timestamp) -> String {
    format!("{:0MICROS_WIDTH$}", at.as_microsecond().max(0))
}

/// Epoch microseconds rounded up (the ceiling, also before 1970).
fn ceil_micros(at: Timestamp) -> i64 {
    let nanos = at.as_nanosecond();
    let micros = nanos.div_euclid(1_000) + i128::from(nanos.rem_euclid(1_000) != 0);
    // jiff's range (±10⁴ years) is ±3.2 × 10¹⁷ µs: always an i64.
    i64::try_from(micros).unwrap_or(i64::MAX)
}

// ------------------------------------------------------------------ cursors

pub(crate) fn cursor(source_id: &str) -> ItemKey {
    ItemKey::new(format!("CURSOR#{source_id}"), "CURSOR")
}

// ------------------------------------------------------------------ mentions

/// The main item of a mention: its identity is the dedupe.
pub(crate) fn mention(platform: Platform, native_id: &str) -> ItemKey {
    ItemKey::new(mention_pk(platform, native_id), MENTION_SK)
}

/// The copy of a mention that puts it on a further campaign's timeline.
pub(crate) fn mention_timeline_copy(
    platform: Platform,
    native_id: &str,
    campaign: &str,
) -> ItemKey {
    ItemKey::new(
        mention_pk(platform, native_id),
        format!("{TIMELINE_PREFIX}{campaign}"),
    )
}

fn mention_pk(platform: Platform, native_id: &str) -> String {
    format!("{MENTION_PREFIX}{platform}#{native_id}")
}

/// `GSI1PK` of a timeline (a campaign id or `MentionQuery::UNMATCHED`).
pub(crate) fn timeline(timeline: &str) -> String {
    format!("{TIMELINE_PREFIX}{timeline}")
}

/// `GSI1SK` of a mention: oldest first by (µs, platform, native id), the order the
/// embedded backend lists in too. No platform name is a prefix of another.
pub(crate) fn timeline_sort(created_at: Timestamp, platform: Platform, native_id: &str) -> String {
    format!("{}#{platform}#{native_id}", micros(created_at))
}

/// Bounds of the timeline keys with `from <= created_at < to`, or `None` when the range is
/// empty. Keys hold whole microseconds, so the bounds round up (as the embedded backend's
/// do): for a whole-microsecond `x`, `x >= t ⇔ x >= ⌈t⌉` and `x < t ⇔ x < ⌈t⌉`.
pub(crate) fn timeline_range(from: Timestamp, to: Timestamp) -> Option<SortRange> {
    let lo = ceil_micros(from).max(0);
    let hi = ceil_micros(to).checked_sub(1)?;
    (lo <= hi).then(|| SortRange {
        lo: format!("{lo:0MICROS_WIDTH$}"),
        hi: format!("{hi:0MICROS_WIDTH$}{ABOVE_SEPARATOR}"),
    })
}

// ------------------------------------------------------------------ aggregates

pub(crate) fn aggregate(bucket: &HourBucket) -> ItemKey {
    ItemKey::new(
        aggregate_partition(&bucket.campaign),
        format!(
            "{:0SECONDS_WIDTH$}#{}",
            bucket.hour.as_second().max(0),
            bucket.platform
        ),
    )
}

pub(crate) fn aggregate_partition(campaign: &str) -> String {
    format!("AGG#{campaign}")
}

/// Bounds of the aggregate keys with `from <= hour < to`, or `None` when empty. Hours are
/// whole seconds, so a fractional bound rounds up.
pub(crate) fn aggregate_range(from: Timestamp, to: Timestamp) -> Option<SortRange> {
    let lo = ceil_second(from).max(0);
    let hi = ceil_second(to).checked_sub(1)?;
    (lo <= hi).then(|| SortRange {
        lo: format!("{lo:0SECONDS_WIDTH$}"),
        hi: format!("{hi:0SECONDS_WIDTH$}{ABOVE_SEPARATOR}"),
    })
}

fn ceil_second(at: Timestamp) -> i64 {
    at.as_second() + i64::from(at.subsec_nanosecond() > 0)
}

// ------------------------------------------------------------------ configuration

pub(crate) fn config(kind: EntityKind, id: &str) -> ItemKey {
    ItemKey::new(config_partition(kind), id)
}

pub(crate) fn config_partition(kind: EntityKind) -> String {
    format!("CONFIG#{kind}")
}

// ------------------------------------------------------------------ deliveries

pub(crate) fn delivery(id: &str) -> ItemKey {
    ItemKey::new(format!("{DELIVERY_PREFIX}{id}"), DELIVERY_SK)
}

/// `GSI1SK` of a queued delivery (and of one to settle): earliest first, ties by id.
pub(crate) fn due_sort(due_at: Timestamp, id: &str) -> String {
    format!("{}#{id}", micros(due_at))
}

/// Upper bound (inclusive) of the due keys with `due_at <= now`.
pub(crate) fn due_until(now: Timestamp) -> String {
    format!("{}{ABOVE_SEPARATOR}", micros(now))
}

// ------------------------------------------------------------------ trigger state

pub(crate) fn trigger(campaign: &str, rule: &str) -> ItemKey {
    ItemKey::new(format!("TRIGGER#{campaign}#{rule}"), "STATE")
}

/// The partition of a campaign's firing history.
pub(crate) fn firings_pk(campaign: &str) -> String {
    format!("FIRINGS#{campaign}")
}

/// One firing in the history: ordered by window start, then rule.
pub(crate) fn firing(campaign: &str, window_start: Timestamp, rule: &str) -> ItemKey {
    ItemKey::new(
        firings_pk(campaign),
        format!("{}#{rule}", micros(window_start)),
    )
}

/// A counted budget (the publish policy gate's daily budget).
pub(crate) fn budget(key: &str) -> ItemKey {
    ItemKey::new(format!("BUDGET#{key}"), "COUNT")
}

// ------------------------------------------------------------------ page tokens

/// A page token is the query's `LastEvaluatedKey` (four string attributes) as JSON, in
/// URL-safe base64 so it can travel in a query string.
pub(crate) fn encode_page_token(
    last_evaluated_key: &HashMap<String, AttributeValue>,
) -> Result<String, UnexpectedKeyAttribute> {
    let strings = last_evaluated_key
        .iter()
        .map(|(name, value)| match value {
            AttributeValue::S(s) => Ok((name.as_str(), s.as_str())),
            _ => Err(UnexpectedKeyAttribute(name.clone())),
        })
        .collect::<Result<BTreeMap<&str, &str>, _>>()?;
    let json = serde_json::to_vec(&strings).map_err(|_| UnexpectedKeyAttribute(String::new()))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// The `ExclusiveStartKey` in a page token, if the token is one this timeline listing
/// could have produced (`None` otherwise).
pub(crate) fn decode_page_token(
    token: &str,
    timeline_pk: &str,
    range: &SortRange,
) -> Option<HashMap<String, AttributeValue>> {
    let json = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    let key: BTreeMap<String, String> = serde_json::from_slice(&json).ok()?;
    let expected: [&str; 4] = [GSI1PK, GSI1SK, PK, SK];
    let fits = key.keys().map(String::as_str).eq(expected)
        && key[GSI1PK] == timeline_pk
        && range.contains(&key[GSI1SK])
        && key[PK].starts_with(MENTION_PREFIX)
        && (key[SK] == MENTION_SK || key[SK].starts_with(TIMELINE_PREFIX));
    fits.then(|| {
        key.into_iter()
            .map(|(name, value)| (name, AttributeValue::S(value)))
            .collect()
    })
}

/// DynamoDB returned a `LastEvaluatedKey` with a non-string attribute (our keys are all
/// strings, so this means the table is not Hark's).
#[derive(Debug, thiserror::Error)]
#[error("the last evaluated key has a non-string attribute `{0}`")]
pub(crate) struct UnexpectedKeyAttribute(String);

#[cfg(test)]
mod tests {
    use super::*;

    fn at_micros(us: i64) -> Timestamp {
        Timestamp::from_microsecond(us).unwrap()
    }

    #[test]
    fn given_timeline_keys_when_sorted_as_bytes_then_they_are_in_time_then_platform_order() {
        let mut keys = vec![
            timeline_sort(at_micros(1_780_272_000_000_001), Platform::Bluesky, "b"),
            timeline_sort(at_micros(9_999_999), Platform::Reddit, "z"),
            timeline_sort(at_micros(1_780_272_000_000_000), Platform::X, "a"),
            timeline_sort(at_micros(1_780_272_000_000_000), Platform::Mastodon, "b"),
            timeline_sort(at_micros(1_780_272_000_000_000), Platform::Mastodon, "a"),
            timeline_sort(at_micros(10_000_000), Platform::Rss, "a"),
        ];
        keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        assert_eq!(
            keys,
            [
                "000000000009999999#reddit#z",
                "000000000010000000#rss#a",
                "001780272000000000#mastodon#a",
                "001780272000000000#mastodon#b",
                "001780272000000000#x#a",
                "001780272000000001#bluesky#b",
            ]
        );
    }

    #[test]
    fn given_a_range_then_from_is_inclusive_and_to_exclusive() {
        let range = timeline_range(at_micros(100), at_micros(200)).unwrap();
        let key = |us| timeline_sort(at_micros(us), Platform::Hackernews, "~\u{10ffff}");
        assert!(range.contains(&key(100)));
        assert!(range.contains(&key(199)));
        assert!(!range.contains(&key(99)));
        assert!(!range.contains(&key(200)));
        assert!(timeline_range(at_micros(200), at_micros(200)).is_none());
        // A bound between two microseconds rounds up, like the embedded backend's.
        let nanos = |ns: i128| Timestamp::from_nanosecond(ns).unwrap();
        let range = timeline_range(nanos(100_001), nanos(200_001)).unwrap();
        assert!(!range.contains(&key(100)));
        assert!(range.contains(&key(101)));
        assert!(range.contains(&key(200)));
        assert!(!range.contains(&key(201)));
        assert!(timeline_range(at_micros(300), at_micros(200)).is_none());
    }

    #[test]
    fn given_aggregate_bounds_then_hours_in_range_match_and_to_is_exclusive() {
        let bucket = |h: i64, p| {
            aggregate(&HourBucket::new(
                "c",
                p,
                Timestamp::from_second(h * 3600).unwrap(),
            ))
            .sk
        };
        let range = aggregate_range(
            Timestamp::from_second(3600).unwrap(),
            Timestamp::from_second(3 * 3600).unwrap(),
        )
        .unwrap();
        assert_eq!(bucket(1, Platform::Youtube), "000000003600#youtube");
        assert!(range.contains(&bucket(1, Platform::Youtube)));
        assert!(range.contains(&bucket(2, Platform::Bluesky)));
        assert!(!range.contains(&bucket(0, Platform::Youtube)));
        assert!(!range.contains(&bucket(3, Platform::Bluesky)));
        // A `from` just after an hour start excludes that hour.
        let late = aggregate_range(
            Timestamp::new(3600, 1).unwrap(),
            Timestamp::from_second(3 * 3600).unwrap(),
        )
        .unwrap();
        assert!(!late.contains(&bucket(1, Platform::Youtube)));
    }

    #[test]
    fn every_key_has_its_documented_shape() {
        assert_eq!(cursor("rss-blog").pk, "CURSOR#rss-blog");
        let m = mention(Platform::Mastodon, "1138");
        assert_eq!(
            (m.pk.as_str(), m.sk.as_str()),
            ("MENTION#mastodon#1138", "MENTION")
        );
        let copy = mention_timeline_copy(Platform::Mastodon, "1138", "brand");
        assert_eq!((copy.pk, copy.sk.as_str()), (m.pk, "TIMELINE#brand"));
        assert_eq!(timeline("launch"), "TIMELINE#launch");
        assert_eq!(config(EntityKind::Post, "launch-day").pk, "CONFIG#post");
        assert_eq!(delivery("p.c.1").pk, "DELIVERY#p.c.1");
        assert_eq!(
            due_sort(Timestamp::from_second(1).unwrap(), "p.c.1"),
            "000000000001000000#p.c.1"
        );
        assert!(
            due_sort(Timestamp::from_second(1).unwrap(), "zzz")
                < due_until(Timestamp::from_second(1).unwrap())
        );
        assert!(
            due_sort(Timestamp::new(1, 1000).unwrap(), "a")
                > due_until(Timestamp::from_second(1).unwrap())
        );
        assert_eq!(trigger("launch", "spike").pk, "TRIGGER#launch#spike");
    }

    fn last_key() -> HashMap<String, AttributeValue> {
        HashMap::from([
            (PK.to_owned(), AttributeValue::S("MENTION#x#17".to_owned())),
            (SK.to_owned(), AttributeValue::S("MENTION".to_owned())),
            (
                GSI1PK.to_owned(),
                AttributeValue::S("TIMELINE#launch".to_owned()),
            ),
            (
                GSI1SK.to_owned(),
                AttributeValue::S(timeline_sort(at_micros(150), Platform::X, "17 🦀")),
            ),
        ])
    }

    #[test]
    fn given_a_last_evaluated_key_when_encoded_then_it_decodes_back_for_the_same_listing() {
        let range = timeline_range(at_micros(100), at_micros(200)).unwrap();
        let token = encode_page_token(&last_key()).unwrap();
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(
            decode_page_token(&token, "TIMELINE#launch", &range),
            Some(last_key())
        );
    }

    #[test]
    fn given_foreign_or_garbled_tokens_when_decoded_then_refused() {
        let range = timeline_range(at_micros(100), at_micros(200)).unwrap();
        let token = encode_page_token(&last_key()).unwrap();
        assert_eq!(decode_page_token(&token, "TIMELINE#other", &range), None);
        let elsewhere = timeline_range(at_micros(0), at_micros(100)).unwrap();
        assert_eq!(
            decode_page_token(&token, "TIMELINE#launch", &elsewhere),
            None
        );
        for garbage in [
            "",
            "not a token %%%",
            "e30",
            &URL_SAFE_NO_PAD.encode("[1,2]"),
        ] {
            assert_eq!(
                decode_page_token(garbage, "TIMELINE#launch", &range),
                None,
                "{garbage}"
            );
        }
        let mut extra = last_key();
        extra.insert("other".to_owned(), AttributeValue::S("x".to_owned()));
        let token = encode_page_token(&extra).unwrap();
        assert_eq!(decode_page_token(&token, "TIMELINE#launch", &range), None);
        let mut number = last_key();
        number.insert(PK.to_owned(), AttributeValue::N("1".to_owned()));
        assert!(encode_page_token(&number).is_err());
    }
}
