//! The database schema and its version.

use rusqlite::{Connection, TransactionBehavior};

use super::SqlResultExt;
use crate::ports::StoreError;

/// The schema version this code writes, kept in `PRAGMA user_version`.
pub(super) const SCHEMA_VERSION: i64 = 1;

/// Version 1. Every statement is idempotent so opening an existing file is harmless.
/// Timestamps used in comparisons are INTEGER columns (units in the column name);
/// whole values are kept as JSON in `doc` so every field round-trips exactly.
const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS cursors (
    source_id TEXT NOT NULL PRIMARY KEY,
    version   INTEGER NOT NULL,
    doc       TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS mentions (
    platform   TEXT NOT NULL,
    native_id  TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    -- epoch seconds, like DynamoDB's TTL attribute
    expires_at INTEGER NOT NULL,
    doc        TEXT NOT NULL,
    PRIMARY KEY (platform, native_id)
) STRICT;
CREATE INDEX IF NOT EXISTS mentions_by_expiry ON mentions (expires_at);

-- One row per campaign a mention matched (or `_unmatched`): the listing index.
CREATE TABLE IF NOT EXISTS mention_timeline (
    timeline   TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    platform   TEXT NOT NULL,
    native_id  TEXT NOT NULL,
    PRIMARY KEY (timeline, created_us, platform, native_id),
    FOREIGN KEY (platform, native_id) REFERENCES mentions (platform, native_id)
        ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS mention_timeline_by_mention
    ON mention_timeline (platform, native_id);

CREATE TABLE IF NOT EXISTS hourly_counters (
    campaign    TEXT NOT NULL,
    platform    TEXT NOT NULL,
    -- start of the hour, epoch seconds
    hour        INTEGER NOT NULL,
    mentions    INTEGER NOT NULL DEFAULT 0,
    positive    INTEGER NOT NULL DEFAULT 0,
    neutral     INTEGER NOT NULL DEFAULT 0,
    negative    INTEGER NOT NULL DEFAULT 0,
    unscored    INTEGER NOT NULL DEFAULT 0,
    compound_e4 INTEGER NOT NULL DEFAULT 0,
    reach       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign, hour, platform)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS documents (
    kind TEXT NOT NULL,
    id   TEXT NOT NULL,
    doc  TEXT NOT NULL,
    PRIMARY KEY (kind, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS deliveries (
    id      TEXT NOT NULL PRIMARY KEY,
    post_id TEXT NOT NULL,
    status  TEXT NOT NULL,
    due_us  INTEGER NOT NULL,
    version INTEGER NOT NULL,
    doc     TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, due_us, id);
CREATE INDEX IF NOT EXISTS deliveries_by_post ON deliveries (post_id, due_us, id);
CREATE INDEX IF NOT EXISTS deliveries_by_due ON deliveries (due_us, id);

CREATE TABLE IF NOT EXISTS trigger_states (
    campaign TEXT NOT NULL,
    rule     TEXT NOT NULL,
    doc      TEXT NOT NULL,
    PRIMARY KEY (campaign, rule)
) STRICT, WITHOUT ROWID;

-- AUTOINCREMENT: ids are never reused, so they serve as message ids and as send order.
CREATE TABLE IF NOT EXISTS queue_messages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT NOT NULL,
    body          TEXT NOT NULL,
    -- epoch milliseconds
    visible_at    INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT,
    -- epoch milliseconds
    sent_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS queue_messages_by_queue ON queue_messages (queue, id);
CREATE INDEX IF NOT EXISTS queue_messages_by_receipt
    ON queue_messages (receipt) WHERE receipt IS NOT NULL;
";

/// The file was written by a newer Hark whose schema this code does not know.
#[derive(Debug, thiserror::Error)]
#[error(
    "the database has schema version {found}, newer than the {SCHEMA_VERSION} this Hark knows; upgrade Hark"
)]
struct NewerSchema {
    found: i64,
}

/// Creates or checks the schema. Runs in an IMMEDIATE transaction so two processes
/// opening a fresh file at once do not race.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .op("open")?;
    let found: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .op("open")?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::Backend {
            operation: "open",
            retryable: false,
            source: Box::new(NewerSchema { found }),
        });
    }
    tx.execute_batch(SCHEMA_V1).op("open")?;
    if found < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .op("open")?;
    }
    tx.commit().op("open")
}
