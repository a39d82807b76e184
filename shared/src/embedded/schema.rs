//! The database schema and its version.

use rusqlite::{Connection, TransactionBehavior};

use super::SqlResultExt;
use crate::ports::StoreError;

/// The schema version this code writes, kept in `PRAGMA user_version`: the number of
/// [`MIGRATIONS`].
pub(super) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The steps from an empty file to the current schema; step `i` takes a file from version
/// `i` to `i + 1`. Released steps are never edited (files in the wild are at their
/// version): a change is a new step. Every statement is idempotent all the same, so a step
/// that ran without its version being recorded runs again harmlessly.
const MIGRATIONS: [&str; 5] = [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5];

/// Version 1. Timestamps used in comparisons are INTEGER columns (units in the column
/// name); whole values are kept as JSON in `doc` so every field round-trips exactly.
pub(super) const SCHEMA_V1: &str = "
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

/// Version 2: author statistics per campaign (influencer scoring).
const SCHEMA_V2: &str = "
CREATE TABLE IF NOT EXISTS author_stats (
    campaign      TEXT NOT NULL,
    platform      TEXT NOT NULL,
    handle        TEXT NOT NULL,
    mentions      INTEGER NOT NULL DEFAULT 0,
    engagement    INTEGER NOT NULL DEFAULT 0,
    -- NULL until a platform reported a follower count
    max_followers INTEGER,
    last_seen_us  INTEGER NOT NULL,
    PRIMARY KEY (campaign, platform, handle)
) STRICT, WITHOUT ROWID;
-- The ranking of `top_authors`, so a LIMIT reads only the rows it returns. SQLite sorts
-- NULL below every number, so DESC puts an unknown follower count last.
CREATE INDEX IF NOT EXISTS author_stats_rank
    ON author_stats (campaign, max_followers DESC, mentions DESC, handle, platform);
";

/// Version 3: trigger firing history, counted budgets (the publish policy gate) and the
/// local event bus (what EventBridge receives in the cloud).
const SCHEMA_V3: &str = "
CREATE TABLE IF NOT EXISTS trigger_firings (
    campaign        TEXT NOT NULL,
    rule            TEXT NOT NULL,
    window_start_us INTEGER NOT NULL,
    doc             TEXT NOT NULL,
    PRIMARY KEY (campaign, window_start_us, rule)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS budgets (
    key           TEXT PRIMARY KEY,
    used          INTEGER NOT NULL,
    expires_at_us INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bus_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT NOT NULL,
    detail_type TEXT NOT NULL,
    detail      TEXT NOT NULL,
    -- epoch microseconds
    put_at_us   INTEGER NOT NULL
) STRICT;
";

/// Version 4: running author statistics are gone. The report ranks a campaign's authors
/// from its stored mentions ([`crate::authors`]), so the counters of version 2 were only
/// written, never read.
const SCHEMA_V4: &str = "
DROP INDEX IF EXISTS author_stats_rank;
DROP TABLE IF EXISTS author_stats;
";

/// Version 5: who holds a unit of a counted budget, so a taker that asks again (the policy
/// gate of a redelivered firing whose post was never stored) is not counted twice. Budgets
/// are never deleted here, so neither are their takers; a budget's takers are at most its
/// limit.
const SCHEMA_V5: &str = "
CREATE TABLE IF NOT EXISTS budget_takers (
    key   TEXT NOT NULL,
    taker TEXT NOT NULL,
    PRIMARY KEY (key, taker)
) STRICT, WITHOUT ROWID;
";

/// The file was written by a newer Hark whose schema this code does not know.
#[derive(Debug, thiserror::Error)]
#[error(
    "the database has schema version {found}, newer than the {SCHEMA_VERSION} this Hark knows; upgrade Hark"
)]
struct NewerSchema {
    found: i64,
}

/// Creates, upgrades or checks the schema: runs the [`MIGRATIONS`] the file has not had yet.
/// Runs in an IMMEDIATE transaction so two processes opening an old or fresh file at once
/// do not race, and a failed upgrade leaves the file at its old version.
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
    // A negative version is no Hark file's; treat it like an empty one (every step is
    // idempotent).
    let done = usize::try_from(found).unwrap_or(0);
    for step in &MIGRATIONS[done..] {
        tx.execute_batch(step).op("open")?;
    }
    if found < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .op("open")?;
    }
    tx.commit().op("open")
}
