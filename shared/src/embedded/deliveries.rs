//! Deliveries and their optimistic-locking state changes.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    EmbeddedStore, SqlResultExt, floor_micros, from_json, from_sql_int, to_json, to_sql_int,
};
use crate::domain::{Delivery, DeliveryStatus};
use crate::ports::{CreateOutcome, DeliveryStore, StoreError};

const ENTITY: &str = "delivery";

/// The version a delivery has once created, whatever the caller passed.
const FIRST_VERSION: u64 = 1;

/// Reads `(version, doc)` rows into deliveries; the column version is authoritative.
impl EmbeddedStore {
    /// Deliveries in one of `states` with `due_us <= now`, earliest first, at most `limit`;
    /// the `deliveries_due` index (status, due_us, id) serves it.
    fn in_states_until(
        &self,
        operation: &'static str,
        states: &[DeliveryStatus],
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        if limit == 0 || states.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; states.len()].join(", ");
        let sql = format!(
            "SELECT id, version, doc FROM deliveries
             WHERE status IN ({marks}) AND due_us <= ?
             ORDER BY due_us, id
             LIMIT ?"
        );
        let mut values: Vec<rusqlite::types::Value> = states
            .iter()
            .map(|s| rusqlite::types::Value::Text(s.as_str().to_owned()))
            .collect();
        values.push(rusqlite::types::Value::Integer(floor_micros(now)));
        values.push(rusqlite::types::Value::Integer(
            i64::try_from(limit).unwrap_or(i64::MAX),
        ));
        let rows = self.with_conn(|conn| {
            read_rows(conn, operation, &sql, rusqlite::params_from_iter(values))
        })?;
        to_deliveries(rows)
    }
}

fn read_rows(
    conn: &Connection,
    operation: &'static str,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<(String, i64, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).op(operation)?;
    let rows = stmt
        .query_map(params, |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .op(operation)?;
    rows.collect::<Result<Vec<_>, _>>().op(operation)
}

fn to_delivery(id: &str, version: i64, doc: &str) -> Result<Delivery, StoreError> {
    let mut delivery: Delivery = from_json(ENTITY, id, doc)?;
    delivery.version = from_sql_int(ENTITY, id, "version", version)?;
    Ok(delivery)
}

fn to_deliveries(rows: Vec<(String, i64, String)>) -> Result<Vec<Delivery>, StoreError> {
    rows.iter()
        .map(|(id, version, doc)| to_delivery(id, *version, doc))
        .collect()
}

#[async_trait::async_trait]
impl DeliveryStore for EmbeddedStore {
    async fn create_delivery(&self, delivery: &Delivery) -> Result<CreateOutcome, StoreError> {
        let mut stored = delivery.clone();
        stored.version = FIRST_VERSION;
        let doc = to_json(ENTITY, &delivery.id, &stored)?;
        let inserted = self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO deliveries (id, post_id, status, due_us, version, doc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id) DO NOTHING",
                params![
                    delivery.id,
                    delivery.post_id,
                    delivery.status().as_str(),
                    floor_micros(delivery.due_at),
                    to_sql_int(FIRST_VERSION),
                    doc
                ],
            )
            .op("create_delivery")
        })?;
        Ok(if inserted == 0 {
            CreateOutcome::AlreadyExists
        } else {
            CreateOutcome::Created
        })
    }

    async fn get_delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        let row = self.with_conn(|conn| {
            conn.query_row(
                "SELECT version, doc FROM deliveries WHERE id = ?1",
                [id],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
            )
            .optional()
            .op("get_delivery")
        })?;
        row.map(|(version, doc)| to_delivery(id, version, &doc))
            .transpose()
    }

    async fn update_delivery(&self, delivery: &Delivery) -> Result<Delivery, StoreError> {
        let mut stored = delivery.clone();
        stored.version = delivery.version + 1;
        let doc = to_json(ENTITY, &delivery.id, &stored)?;
        let outcome = self.with_conn(|conn| {
            // The conditional UPDATE is the atomic part; the existence check after a miss
            // only chooses which error to report.
            let changed = conn
                .execute(
                    "UPDATE deliveries
                     SET post_id = ?2, status = ?3, due_us = ?4, version = ?5, doc = ?6
                     WHERE id = ?1 AND version = ?7",
                    params![
                        delivery.id,
                        delivery.post_id,
                        delivery.status().as_str(),
                        floor_micros(delivery.due_at),
                        to_sql_int(stored.version),
                        doc,
                        to_sql_int(delivery.version)
                    ],
                )
                .op("update_delivery")?;
            if changed > 0 {
                return Ok(None);
            }
            let exists = conn
                .query_row(
                    "SELECT 1 FROM deliveries WHERE id = ?1",
                    [&delivery.id],
                    |_| Ok(()),
                )
                .optional()
                .op("update_delivery")?
                .is_some();
            Ok(Some(exists))
        })?;
        match outcome {
            None => Ok(stored),
            Some(true) => Err(StoreError::Conflict {
                entity: ENTITY,
                id: delivery.id.clone(),
                expected: delivery.version,
            }),
            Some(false) => Err(StoreError::NotFound {
                entity: ENTITY,
                id: delivery.id.clone(),
            }),
        }
    }

    async fn list_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.in_states_until("list_due", &[DeliveryStatus::Queued], now, limit)
    }

    /// `due_us` is the settle time in these states (see [`Delivery::settle_at`]).
    async fn list_to_settle(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let states = [
            DeliveryStatus::Claimed,
            DeliveryStatus::Sent,
            DeliveryStatus::Unknown,
        ];
        self.in_states_until("list_to_settle", &states, now, limit)
    }

    async fn list_deliveries(&self, post_id: Option<&str>) -> Result<Vec<Delivery>, StoreError> {
        let rows = self.with_conn(|conn| match post_id {
            Some(post_id) => read_rows(
                conn,
                "list_deliveries",
                "SELECT id, version, doc FROM deliveries WHERE post_id = ?1
                 ORDER BY due_us, id",
                [post_id],
            ),
            None => read_rows(
                conn,
                "list_deliveries",
                "SELECT id, version, doc FROM deliveries ORDER BY due_us, id",
                [],
            ),
        })?;
        to_deliveries(rows)
    }
}
