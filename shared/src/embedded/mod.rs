//! SQLite backend: every port in one local database file (`hark run`, `hark demo`, tests).
//!
//! One [`EmbeddedStore`] holds one connection behind a mutex. Operations are short and run
//! inline while the lock is held, so tasks sharing a store are serialised. Every
//! read-check-write runs in one `BEGIN IMMEDIATE` transaction (or is a single conditional
//! statement), which also keeps conditional writes correct when two processes open the
//! same file: SQLite then serialises the writers through its file lock.

mod aggregates;
mod bus;
mod cursors;
mod deliveries;
mod documents;
mod mentions;
mod queue;
mod schema;
mod triggers;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{Connection, ErrorCode};

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::ports::{BoxError, QueueError, QueueName, StoreError};

/// The database file created inside the data directory.
pub const DB_FILE_NAME: &str = "hark.db";

/// How long a statement waits for another process's lock before failing as retryable.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of the embedded backend.
#[derive(Clone)]
pub struct EmbeddedOptions {
    /// Mentions expire this many days after their `created_at` (mirrors the DynamoDB TTL).
    pub retention_days: u32,
    /// Receives after which a message goes to its dead-letter queue (SQS `maxReceiveCount`).
    pub max_receive_count: u32,
    /// "Now" for the queue's visibility timeouts; tests pass a manual clock.
    pub clock: Arc<dyn Clock>,
}

impl EmbeddedOptions {
    /// Options from the process configuration, with the system clock.
    pub fn from_config(config: &Config) -> Self {
        EmbeddedOptions {
            retention_days: config.retention_days,
            max_receive_count: config.max_receive_count,
            clock: Arc::new(SystemClock),
        }
    }
}

impl fmt::Debug for EmbeddedOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedOptions")
            .field("retention_days", &self.retention_days)
            .field("max_receive_count", &self.max_receive_count)
            .finish_non_exhaustive()
    }
}

/// All of Hark's ports on one SQLite database.
pub struct EmbeddedStore {
    conn: Mutex<Connection>,
    options: EmbeddedOptions,
}

impl fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) `dir/hark.db`, creating `dir` too. WAL mode, busy_timeout
    /// ~5s, foreign keys on, schema created idempotently (`PRAGMA user_version` records
    /// the schema version).
    pub fn open(dir: &Path, options: EmbeddedOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend {
            operation: "open",
            retryable: false,
            source: Box::new(e),
        })?;
        let conn = Connection::open(dir.join(DB_FILE_NAME)).op("open")?;
        // Set before anything else: switching to WAL takes a lock another process may hold.
        conn.busy_timeout(BUSY_TIMEOUT).op("open")?;
        // WAL lets readers in other processes (`hark mentions` while `hark run` writes)
        // proceed without blocking the writer. It is a property of the file, set once
        // outside any transaction.
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
            .op("open")?;
        // In WAL mode NORMAL only risks the last commits on power loss, never corruption,
        // and saves an fsync per transaction.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .op("open")?;
        Self::setup(conn, options)
    }

    /// A private in-memory database (tests).
    pub fn open_in_memory(options: EmbeddedOptions) -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().op("open")?;
        Self::setup(conn, options)
    }

    fn setup(mut conn: Connection, options: EmbeddedOptions) -> Result<Self, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT).op("open")?;
        // Off by default in SQLite, per connection: needed for ON DELETE CASCADE of the
        // mention timeline.
        conn.pragma_update(None, "foreign_keys", true).op("open")?;
        schema::migrate(&mut conn)?;
        Ok(EmbeddedStore {
            conn: Mutex::new(conn),
            options,
        })
    }

    /// The options this store was opened with.
    pub fn options(&self) -> &EmbeddedOptions {
        &self.options
    }

    /// Runs `f` with the connection, holding the lock for the whole call.
    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        // A panic while the lock was held cannot leave a transaction open (rusqlite rolls
        // back on drop), so a poisoned lock still guards a usable connection.
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut conn)
    }
}

/// Whether SQLite failed only because another connection held a lock.
fn is_retryable(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Maps driver errors to the ports' errors, naming the operation that failed.
trait SqlResultExt<T> {
    fn op(self, operation: &'static str) -> Result<T, StoreError>;
    fn queue_op(self, operation: &'static str, queue: QueueName) -> Result<T, QueueError>;
}

impl<T> SqlResultExt<T> for Result<T, rusqlite::Error> {
    fn op(self, operation: &'static str) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Backend {
            operation,
            retryable: is_retryable(&e),
            source: Box::new(e),
        })
    }

    fn queue_op(self, operation: &'static str, queue: QueueName) -> Result<T, QueueError> {
        self.map_err(|e| QueueError::Backend {
            operation,
            queue,
            retryable: is_retryable(&e),
            source: Box::new(e),
        })
    }
}

/// A stored row that does not read back into its type.
fn corrupt(entity: &'static str, id: impl Into<String>, source: impl Into<BoxError>) -> StoreError {
    StoreError::Corrupt {
        entity,
        id: id.into(),
        source: source.into(),
    }
}

/// Serialises a value to store; failing here means the value cannot be represented.
fn to_json<T: serde::Serialize>(
    entity: &'static str,
    id: &str,
    value: &T,
) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| corrupt(entity, id, e))
}

/// Reads a stored JSON document back into its type.
fn from_json<T: serde::de::DeserializeOwned>(
    entity: &'static str,
    id: &str,
    doc: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(doc).map_err(|e| corrupt(entity, id, e))
}

/// An unsigned count or version as SQLite's signed INTEGER. Values above `i64::MAX` are
/// out of reach in practice; saturating keeps the call infallible.
fn to_sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored INTEGER read back as an unsigned value; negative means the row is corrupt.
fn from_sql_int(
    entity: &'static str,
    id: &str,
    column: &'static str,
    v: i64,
) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| corrupt(entity, id, format!("negative {column}: {v}")))
}

/// Whole microseconds since the epoch, rounded down. Every jiff timestamp fits in i64
/// microseconds (±10⁴ years ≈ 3.2·10¹⁷ µs).
fn floor_micros(t: Timestamp) -> i64 {
    t.as_nanosecond().div_euclid(1_000) as i64
}

/// Whole microseconds since the epoch, rounded up: for a whole-microsecond `x`,
/// `x >= t ⇔ x >= ceil(t)` and `x < t ⇔ x < ceil(t)`, so range bounds stay exact.
fn ceil_micros(t: Timestamp) -> i64 {
    let n = t.as_nanosecond();
    (n.div_euclid(1_000) + i128::from(n.rem_euclid(1_000) != 0)) as i64
}

/// Whole seconds since the epoch, rounded up (see [`ceil_micros`]).
fn ceil_seconds(t: Timestamp) -> i64 {
    let n = t.as_nanosecond();
    (n.div_euclid(1_000_000_000) + i128::from(n.rem_euclid(1_000_000_000) != 0)) as i64
}

/// A token unique across processes and calls: process id, wall-clock nanoseconds and a
/// per-process counter. Used for receipt handles, where the injected clock may stand still.
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{:x}-{nanos:x}-{n:x}", std::process::id())
}
