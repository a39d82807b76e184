//! Mentions: put-if-absent dedupe, campaign timelines and keyset pagination.

use jiff::Timestamp;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::{EmbeddedStore, SqlResultExt, ceil_micros, floor_micros, from_json, to_json};
use crate::domain::{Mention, MentionKey, Platform};
use crate::ports::{MentionQuery, MentionStore, Page, PutOutcome, StoreError};

const ENTITY: &str = "mention";

/// Page sizes outside this range are clamped into it (the port documents 1..=1000).
const MAX_PAGE: usize = 1000;

const SECONDS_PER_DAY: i64 = 86_400;

/// Where a listing stopped: the sort key of the last returned item, plus the timeline so a
/// token cannot be replayed against another listing.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct PagePosition {
    timeline: String,
    created_us: i64,
    platform: String,
    native_id: String,
}

impl PagePosition {
    /// Opaque, URL-safe text: hex of a small JSON document. Clients must not parse it.
    fn encode(&self) -> Result<String, StoreError> {
        let json = to_json(ENTITY, &self.native_id, self)?;
        Ok(json.bytes().map(|b| format!("{b:02x}")).collect())
    }

    fn decode(token: &str) -> Result<Self, StoreError> {
        let bytes = token.as_bytes();
        // Checked up front: `from_str_radix` alone would also take a sign (`+f`).
        if bytes.is_empty()
            || !bytes.len().is_multiple_of(2)
            || !bytes.iter().all(u8::is_ascii_hexdigit)
        {
            return Err(StoreError::InvalidPageToken);
        }
        let raw = bytes
            .chunks_exact(2)
            .map(|pair| {
                let hex = std::str::from_utf8(pair).map_err(|_| StoreError::InvalidPageToken)?;
                u8::from_str_radix(hex, 16).map_err(|_| StoreError::InvalidPageToken)
            })
            .collect::<Result<Vec<u8>, _>>()?;
        let position: PagePosition =
            serde_json::from_slice(&raw).map_err(|_| StoreError::InvalidPageToken)?;
        // A platform name that does not parse cannot come from a token we made.
        position
            .platform
            .parse::<Platform>()
            .map_err(|_| StoreError::InvalidPageToken)?;
        Ok(position)
    }
}

impl EmbeddedStore {
    /// Deletes mentions whose expiry (epoch seconds) is at or before `now`, with their
    /// timeline entries. DynamoDB's TTL does this in the cloud; locally a caller (e.g. the
    /// `hark run` loop) calls it now and then. Returns how many mentions were deleted.
    pub fn purge_expired_mentions(&self, now: Timestamp) -> Result<u64, StoreError> {
        let deleted = self.with_conn(|conn| {
            // Timeline rows go through ON DELETE CASCADE, in the same statement.
            conn.execute(
                "DELETE FROM mentions WHERE expires_at <= ?1",
                [now.as_second()],
            )
            .op("purge_expired_mentions")
        })?;
        Ok(deleted as u64)
    }
}

#[async_trait::async_trait]
impl MentionStore for EmbeddedStore {
    async fn put_mention(&self, mention: &Mention) -> Result<PutOutcome, StoreError> {
        let key = mention.key().to_string();
        let doc = to_json(ENTITY, &key, mention)?;
        let created_us = floor_micros(mention.created_at);
        let expires_at = mention
            .created_at
            .as_second()
            .saturating_add(i64::from(self.options.retention_days) * SECONDS_PER_DAY);
        let platform = mention.platform.as_str();
        let unmatched = [MentionQuery::UNMATCHED.to_owned()];
        let timelines = if mention.campaigns.is_empty() {
            &unmatched[..]
        } else {
            &mention.campaigns[..]
        };
        self.with_conn(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .op("put_mention")?;
            let inserted = tx
                .execute(
                    "INSERT INTO mentions (platform, native_id, created_us, expires_at, doc)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (platform, native_id) DO NOTHING",
                    params![platform, mention.native_id, created_us, expires_at, doc],
                )
                .op("put_mention")?;
            if inserted == 0 {
                // Stored before: leave it (and its timelines) exactly as they were.
                return Ok(PutOutcome::AlreadyExists);
            }
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO mention_timeline
                             (timeline, created_us, platform, native_id)
                         VALUES (?1, ?2, ?3, ?4)",
                    )
                    .op("put_mention")?;
                for timeline in timelines {
                    stmt.execute(params![timeline, created_us, platform, mention.native_id])
                        .op("put_mention")?;
                }
            }
            tx.commit().op("put_mention")?;
            Ok(PutOutcome::Inserted)
        })
    }

    async fn get_mention(&self, key: &MentionKey) -> Result<Option<Mention>, StoreError> {
        let doc = self.with_conn(|conn| {
            conn.query_row(
                "SELECT doc FROM mentions WHERE platform = ?1 AND native_id = ?2",
                params![key.platform.as_str(), key.native_id],
                |row| row.get::<_, String>(0),
            )
            .optional()
            .op("get_mention")
        })?;
        doc.map(|doc| from_json(ENTITY, &key.to_string(), &doc))
            .transpose()
    }

    async fn mention_expiry(&self, key: &MentionKey) -> Result<Option<i64>, StoreError> {
        self.with_conn(|conn| {
            conn.query_row(
                "SELECT expires_at FROM mentions WHERE platform = ?1 AND native_id = ?2",
                params![key.platform.as_str(), key.native_id],
                |row| row.get::<_, i64>(0),
            )
            .optional()
            .op("mention_expiry")
        })
    }

    async fn list_mentions(
        &self,
        query: &MentionQuery,
        page: Option<&str>,
    ) -> Result<Page<Mention>, StoreError> {
        let limit = query.limit.clamp(1, MAX_PAGE);
        let after = match page {
            Some(token) => {
                let position = PagePosition::decode(token)?;
                if position.timeline != query.timeline {
                    return Err(StoreError::InvalidPageToken);
                }
                Some(position)
            }
            None => None,
        };
        // Without a token, start before any possible row (no mention sorts at i64::MIN).
        let (after_us, after_platform, after_id) = match &after {
            Some(p) => (p.created_us, p.platform.as_str(), p.native_id.as_str()),
            None => (i64::MIN, "", ""),
        };
        // Bounds rounded up keep `from <= created_at < to` exact for whole microseconds.
        let from_us = ceil_micros(query.from);
        let to_us = ceil_micros(query.to);
        // One row more than asked tells whether another page exists.
        let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        let mut rows: Vec<(i64, String, String, String)> = self.with_conn(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT t.created_us, t.platform, t.native_id, m.doc
                     FROM mention_timeline t
                     JOIN mentions m ON m.platform = t.platform AND m.native_id = t.native_id
                     WHERE t.timeline = ?1 AND t.created_us >= ?2 AND t.created_us < ?3
                       AND (t.created_us, t.platform, t.native_id) > (?4, ?5, ?6)
                     ORDER BY t.created_us, t.platform, t.native_id
                     LIMIT ?7",
                )
                .op("list_mentions")?;
            let rows = stmt
                .query_map(
                    params![
                        query.timeline,
                        from_us,
                        to_us,
                        after_us,
                        after_platform,
                        after_id,
                        fetch
                    ],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                )
                .op("list_mentions")?;
            rows.collect::<Result<Vec<_>, _>>().op("list_mentions")
        })?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = match (more, rows.last()) {
            (true, Some((created_us, platform, native_id, _))) => Some(
                PagePosition {
                    timeline: query.timeline.clone(),
                    created_us: *created_us,
                    platform: platform.clone(),
                    native_id: native_id.clone(),
                }
                .encode()?,
            ),
            _ => None,
        };
        let items = rows
            .iter()
            .map(|(_, platform, native_id, doc)| {
                from_json(ENTITY, &format!("{platform}:{native_id}"), doc)
            })
            .collect::<Result<Vec<Mention>, _>>()?;
        Ok(Page { items, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_position_when_encoded_then_it_decodes_to_the_same_position() {
        let p = PagePosition {
            timeline: "launch".into(),
            created_us: 1_700_000_000_123_456,
            platform: "bluesky".into(),
            native_id: "at://did:plc:x/app.bsky.feed.post/3k\n\"é🎉".into(),
        };
        let token = p.encode().unwrap();
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(PagePosition::decode(&token).unwrap(), p);
    }

    #[test]
    fn given_malformed_tokens_when_decoded_then_invalid_page_token() {
        let not_json: String = "hello".bytes().map(|b| format!("{b:02x}")).collect();
        let bad_platform = PagePosition {
            timeline: "t".into(),
            created_us: 1,
            platform: "myspace".into(),
            native_id: "1".into(),
        }
        .encode()
        .unwrap();
        for token in ["", "abc", "zz", "é1", "+f", &not_json, &bad_platform] {
            assert!(
                matches!(
                    PagePosition::decode(token),
                    Err(StoreError::InvalidPageToken)
                ),
                "{token:?}"
            );
        }
    }
}
