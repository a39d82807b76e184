//! Trigger state: at most one firing per rule and window.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{EmbeddedStore, SqlResultExt, from_json, to_json};
use crate::ports::{FireOutcome, Firing, StoreError, TriggerState, TriggerStore};

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
}
