//! Hourly counters per campaign × platform.

use jiff::Timestamp;
use rusqlite::params;

use super::{EmbeddedStore, SqlResultExt, ceil_seconds, corrupt, from_sql_int, to_sql_int};
use crate::domain::Platform;
use crate::ports::{AggregateStore, Counters, HourBucket, StoreError, truncate_to_hour};

const ENTITY: &str = "aggregate";

#[async_trait::async_trait]
impl AggregateStore for EmbeddedStore {
    async fn add_counters(&self, bucket: &HourBucket, delta: &Counters) -> Result<(), StoreError> {
        // One upsert statement: the addition happens inside SQLite under its write lock,
        // so concurrent adders (tasks or processes) never lose an update.
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO hourly_counters (campaign, platform, hour, mentions, positive,
                     neutral, negative, unscored, compound_e4, reach)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (campaign, hour, platform) DO UPDATE SET
                     mentions = mentions + excluded.mentions,
                     positive = positive + excluded.positive,
                     neutral = neutral + excluded.neutral,
                     negative = negative + excluded.negative,
                     unscored = unscored + excluded.unscored,
                     compound_e4 = compound_e4 + excluded.compound_e4,
                     reach = reach + excluded.reach",
                params![
                    bucket.campaign,
                    bucket.platform.as_str(),
                    // Defensive: the key is the hour's start even if a caller built the bucket by hand.
                    truncate_to_hour(bucket.hour).as_second(),
                    to_sql_int(delta.mentions),
                    to_sql_int(delta.positive),
                    to_sql_int(delta.neutral),
                    to_sql_int(delta.negative),
                    to_sql_int(delta.unscored),
                    delta.compound_e4,
                    to_sql_int(delta.reach),
                ],
            )
            .op("add_counters")
        })?;
        Ok(())
    }

    async fn list_counters(
        &self,
        campaign: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(HourBucket, Counters)>, StoreError> {
        type Row = (String, i64, [i64; 7]);
        let rows: Vec<Row> = self.with_conn(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT platform, hour, mentions, positive, neutral, negative, unscored,
                         compound_e4, reach
                     FROM hourly_counters
                     WHERE campaign = ?1 AND hour >= ?2 AND hour < ?3
                     ORDER BY hour, platform",
                )
                .op("list_counters")?;
            let rows = stmt
                .query_map(
                    params![campaign, ceil_seconds(from), ceil_seconds(to)],
                    |row| {
                        let mut values = [0i64; 7];
                        for (i, v) in values.iter_mut().enumerate() {
                            *v = row.get(i + 2)?;
                        }
                        Ok((row.get(0)?, row.get(1)?, values))
                    },
                )
                .op("list_counters")?;
            rows.collect::<Result<Vec<_>, _>>().op("list_counters")
        })?;
        rows.into_iter()
            .map(|(platform, hour, v)| {
                let id = format!("{campaign}/{platform}/{hour}");
                let bucket = HourBucket {
                    campaign: campaign.to_owned(),
                    platform: platform
                        .parse::<Platform>()
                        .map_err(|e| corrupt(ENTITY, id.clone(), e))?,
                    hour: Timestamp::from_second(hour)
                        .map_err(|e| corrupt(ENTITY, id.clone(), e))?,
                };
                let counters = Counters {
                    mentions: from_sql_int(ENTITY, &id, "mentions", v[0])?,
                    positive: from_sql_int(ENTITY, &id, "positive", v[1])?,
                    neutral: from_sql_int(ENTITY, &id, "neutral", v[2])?,
                    negative: from_sql_int(ENTITY, &id, "negative", v[3])?,
                    unscored: from_sql_int(ENTITY, &id, "unscored", v[4])?,
                    compound_e4: v[5],
                    reach: from_sql_int(ENTITY, &id, "reach", v[6])?,
                };
                Ok((bucket, counters))
            })
            .collect()
    }
}
