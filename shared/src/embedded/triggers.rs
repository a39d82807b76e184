//! Trigger state: at most one firing per rule and window.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use jiff::Timestamp;

use super::{EmbeddedStore, SqlResultExt, floor_micros, from_json, to_json};
use crate::ports::{FireOutcome, Firing, FiringRecord, StoreError, TriggerState, TriggerStore};

const ENTITY: &str = "trigger";

fn state_id(campaign: &str, rule: &str) -> String {
    format!("{campaign}/{rule}")
}

#[async_trait::async_trait]
impl TriggerStore for EmbeddedStore {
    async fn fire_once(&self, firing: &Firing) -> Result<FireOutcome, StoreError> {
        let id = state_id(&firing.campaign, &firing.rule);
        self.with_conn(|conn| {
            // IMMEDIATE takes the write lock before reading, so of two callers (tasks or
            // processes) the second reads the first one's firing and is suppressed. The
            // comparison happens here on full-precision timestamps.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .op("fire_once")?;
            let stored = tx
                .query_row(
                    "SELECT doc FROM trigger_states WHERE campaign = ?1 AND rule = ?2",
                    params![firing.campaign, firing.rule],
                    |row| row.get::<_, String>(0),
                )
                .optional()
                .op("fire_once")?
                .map(|doc| from_json::<TriggerState>(ENTITY, &id, &doc))
                .transpose()?;
            let fired_count = match stored {
                None => 1,
                Some(state)
                    if state.window_start < firing.window_start
                        && state.cooldown_until <= firing.now =>
                {
                    state.fired_count + 1
                }
                Some(_) => return Ok(FireOutcome::Suppressed),
            };
            let state = TriggerState {
                campaign: firing.campaign.clone(),
                rule: firing.rule.clone(),
                window_start: firing.window_start,
                fired_at: firing.now,
                cooldown_until: firing.cooldown_until,
                fired_count,
                pending_event: Some(firing.event.clone()),
            };
            let doc = to_json(ENTITY, &id, &state)?;
            tx.execute(
                "INSERT INTO trigger_states (campaign, rule, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT (campaign, rule) DO UPDATE SET doc = excluded.doc",
                params![firing.campaign, firing.rule, doc],
            )
            .op("fire_once")?;
            tx.commit().op("fire_once")?;
            Ok(FireOutcome::Fired)
        })
    }

    async fn trigger_state(
        &self,
        campaign: &str,
        rule: &str,
    ) -> Result<Option<TriggerState>, StoreError> {
        let doc = self.with_conn(|conn| {
            conn.query_row(
                "SELECT doc FROM trigger_states WHERE campaign = ?1 AND rule = ?2",
                params![campaign, rule],
                |row| row.get::<_, String>(0),
            )
            .optional()
            .op("trigger_state")
        })?;
        doc.map(|doc| from_json(ENTITY, &state_id(campaign, rule), &doc))
            .transpose()
    }

    async fn mark_announced(
        &self,
        campaign: &str,
        rule: &str,
        window_start: Timestamp,
    ) -> Result<(), StoreError> {
        let id = state_id(campaign, rule);
        self.with_conn(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .op("mark_announced")?;
            let stored = tx
                .query_row(
                    "SELECT doc FROM trigger_states WHERE campaign = ?1 AND rule = ?2",
                    params![campaign, rule],
                    |row| row.get::<_, String>(0),
                )
                .optional()
                .op("mark_announced")?
                .map(|doc| from_json::<TriggerState>(ENTITY, &id, &doc))
                .transpose()?;
            if let Some(mut state) = stored
                && state.window_start == window_start
                && state.pending_event.is_some()
            {
                state.pending_event = None;
                let doc = to_json(ENTITY, &id, &state)?;
                tx.execute(
                    "UPDATE trigger_states SET doc = ?3 WHERE campaign = ?1 AND rule = ?2",
                    params![campaign, rule, doc],
                )
                .op("mark_announced")?;
            }
            tx.commit().op("mark_announced")
        })
    }

    async fn record_firing(&self, record: &FiringRecord) -> Result<(), StoreError> {
        let id = state_id(&record.campaign, &record.rule);
        let doc = to_json("firing", &id, record)?;
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO trigger_firings (campaign, rule, window_start_us, doc)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (campaign, window_start_us, rule) DO UPDATE SET doc = excluded.doc",
                params![
                    record.campaign,
                    record.rule,
                    floor_micros(record.window_start),
                    doc
                ],
            )
            .op("record_firing")
            .map(|_| ())
        })
    }

    async fn list_firings(&self, campaign: &str) -> Result<Vec<FiringRecord>, StoreError> {
        let docs = self.with_conn(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT doc FROM trigger_firings WHERE campaign = ?1
                     ORDER BY window_start_us, rule",
                )
                .op("list_firings")?;
            let rows = stmt
                .query_map(params![campaign], |row| row.get::<_, String>(0))
                .op("list_firings")?;
            rows.collect::<Result<Vec<_>, _>>().op("list_firings")
        })?;
        docs.iter()
            .map(|doc| from_json("firing", campaign, doc))
            .collect()
    }

    async fn take_budget(
        &self,
        key: &str,
        limit: u32,
        expires_at: Timestamp,
        taker: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.with_conn(|conn| {
            let Some(taker) = taker else {
                // One statement: the insert-or-increment and its limit check are atomic.
                return take_unit(conn, key, limit, expires_at);
            };
            // IMMEDIATE takes the write lock before reading, so of two callers (tasks or
            // processes) with the same taker the second sees the first one's row and no
            // second unit is counted.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .op("take_budget")?;
            let holds = tx
                .query_row(
                    "SELECT 1 FROM budget_takers WHERE key = ?1 AND taker = ?2",
                    params![key, taker],
                    |_| Ok(()),
                )
                .optional()
                .op("take_budget")?
                .is_some();
            if holds {
                return Ok(true);
            }
            let taken = take_unit(&tx, key, limit, expires_at)?;
            if taken {
                tx.execute(
                    "INSERT INTO budget_takers (key, taker) VALUES (?1, ?2)",
                    params![key, taker],
                )
                .op("take_budget")?;
            }
            tx.commit().op("take_budget")?;
            Ok(taken)
        })
    }
}

/// Counts one unit of the budget `key` if fewer than `limit` were counted: `true` when
/// counted. One statement, so the check and the count are atomic.
fn take_unit(
    conn: &rusqlite::Connection,
    key: &str,
    limit: u32,
    expires_at: Timestamp,
) -> Result<bool, StoreError> {
    let changed = conn
        .execute(
            "INSERT INTO budgets (key, used, expires_at_us) SELECT ?1, 1, ?3
             WHERE ?2 > 0
             ON CONFLICT (key) DO UPDATE SET used = used + 1 WHERE used < ?2",
            params![key, i64::from(limit), floor_micros(expires_at)],
        )
        .op("take_budget")?;
    Ok(changed == 1)
}
