//! Author statistics per campaign (influencer scoring).

use jiff::Timestamp;
use rusqlite::params;

use super::{EmbeddedStore, SqlResultExt, corrupt, floor_micros, from_sql_int, to_sql_int};
use crate::domain::Platform;
use crate::ports::{AuthorDelta, AuthorKey, AuthorStats, AuthorStore, MAX_TOP_AUTHORS, StoreError};

const ENTITY: &str = "author stats";

#[async_trait::async_trait]
impl AuthorStore for EmbeddedStore {
    async fn add_author_stats(
        &self,
        key: &AuthorKey,
        delta: &AuthorDelta,
    ) -> Result<(), StoreError> {
        // One upsert statement: sums, maximum and latest instant are computed inside SQLite
        // under its write lock, so concurrent adders (tasks or processes) never lose an
        // update. Multi-argument MAX() is NULL when an argument is, hence the COALESCEs: a
        // missing follower count on either side keeps the other one.
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO author_stats (campaign, platform, handle, mentions, engagement,
                     max_followers, last_seen_us)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (campaign, platform, handle) DO UPDATE SET
                     mentions = mentions + excluded.mentions,
                     engagement = engagement + excluded.engagement,
                     max_followers = MAX(COALESCE(max_followers, excluded.max_followers),
                                         COALESCE(excluded.max_followers, max_followers)),
                     last_seen_us = MAX(last_seen_us, excluded.last_seen_us)",
                params![
                    key.campaign,
                    key.platform.as_str(),
                    key.handle,
                    to_sql_int(delta.mentions),
                    to_sql_int(delta.engagement),
                    delta.followers.map(to_sql_int),
                    floor_micros(delta.seen_at),
                ],
            )
            .op("add_author_stats")
        })?;
        Ok(())
    }

    async fn top_authors(
        &self,
        campaign: &str,
        limit: usize,
    ) -> Result<Vec<(AuthorKey, AuthorStats)>, StoreError> {
        type Row = (String, String, i64, i64, Option<i64>, i64);
        let limit = limit.clamp(1, MAX_TOP_AUTHORS);
        let rows: Vec<Row> = self.with_conn(|conn| {
            // The order of `ports::author_rank`: SQLite compares TEXT by its UTF-8 bytes
            // (BINARY collation) and sorts NULL last under DESC. It walks the
            // `author_stats_rank` index.
            let mut stmt = conn
                .prepare_cached(
                    "SELECT platform, handle, mentions, engagement, max_followers, last_seen_us
                     FROM author_stats
                     WHERE campaign = ?1
                     ORDER BY max_followers DESC, mentions DESC, handle, platform
                     LIMIT ?2",
                )
                .op("top_authors")?;
            let rows = stmt
                .query_map(params![campaign, to_sql_int(limit as u64)], |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                        row.get(5)?,
                    ))
                })
                .op("top_authors")?;
            rows.collect::<Result<Vec<_>, _>>().op("top_authors")
        })?;
        rows.into_iter()
            .map(
                |(platform, handle, mentions, engagement, max_followers, last_seen_us)| {
                    let id = format!("{campaign}/{platform}/{handle}");
                    let key = AuthorKey {
                        campaign: campaign.to_owned(),
                        platform: platform
                            .parse::<Platform>()
                            .map_err(|e| corrupt(ENTITY, id.clone(), e))?,
                        handle,
                    };
                    let stats = AuthorStats {
                        mentions: from_sql_int(ENTITY, &id, "mentions", mentions)?,
                        engagement: from_sql_int(ENTITY, &id, "engagement", engagement)?,
                        max_followers: max_followers
                            .map(|v| from_sql_int(ENTITY, &id, "max_followers", v))
                            .transpose()?,
                        last_seen: Timestamp::from_microsecond(last_seen_us)
                            .map_err(|e| corrupt(ENTITY, id.clone(), e))?,
                    };
                    Ok((key, stats))
                },
            )
            .collect()
    }
}
