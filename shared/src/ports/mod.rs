//! Ports: the narrow interfaces the use cases need from storage and queues.
//!
//! Each concern has its own trait so a function asks only for what it uses (and its IAM
//! policy grants only that). Both backends (`aws`, `embedded`) implement every trait with
//! the same semantics; `tests/` holds the contract suite that proves it.

mod config_store;
pub mod forward;
mod queue;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::domain::{Cursor, Delivery, Mention, MentionKey, Platform};

pub use config_store::{ConfigEntity, ConfigStore, EntityKind, UpsertOutcome};
pub use queue::{
    BILLING_CHUNK_BYTES, MAX_BATCH_BYTES, MAX_BATCH_MESSAGES, MAX_DELAY, MessageQueue, QueueError,
    QueueName, ReceivedMessage, batch_ranges, check_batch, check_delay, check_receive,
    pack_batches,
};

/// Boxed error from a backend SDK or driver, kept as the source of a [`StoreError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Failures of the storage ports. Expected outcomes (already exists, lost a race) are
/// values, not errors, except where the caller asked for a conditional write.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost: someone else wrote first (optimistic locking).
    #[error("{entity} `{id}` was changed by someone else (expected version {expected})")]
    Conflict {
        entity: &'static str,
        id: String,
        expected: u64,
    },
    #[error("{entity} `{id}` does not exist")]
    NotFound { entity: &'static str, id: String },
    /// A stored item could not be read back into its type.
    #[error("stored {entity} `{id}` is not readable")]
    Corrupt {
        entity: &'static str,
        id: String,
        #[source]
        source: BoxError,
    },
    #[error("the page token is not valid for this listing")]
    InvalidPageToken,
    /// The backend failed (network, throttling, driver error).
    #[error("storage operation `{operation}` failed")]
    Backend {
        operation: &'static str,
        /// Throttling and transient faults: the caller may retry later.
        retryable: bool,
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Backend {
                retryable: true,
                ..
            }
        )
    }
}

/// Source cursors, written with optimistic locking.
#[async_trait::async_trait]
pub trait CursorStore: Send + Sync {
    async fn get_cursor(&self, source_id: &str) -> Result<Option<Cursor>, StoreError>;

    /// Stores `cursor` if the stored version still equals `cursor.version` (0 = must not
    /// exist yet) and returns it with the new version. A stale writer gets
    /// [`StoreError::Conflict`] and nothing changes.
    async fn save_cursor(&self, cursor: &Cursor) -> Result<Cursor, StoreError>;
}

/// Result of [`MentionStore::put_mention`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Inserted,
    /// The mention was stored before; the stored copy was left unchanged.
    AlreadyExists,
}

/// A page of results and the token for the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back to get the next page; `None` on the last page.
    pub next: Option<String>,
}

/// Which mentions to list.
#[derive(Debug, Clone, PartialEq)]
pub struct MentionQuery {
    /// Campaign id, or [`MentionQuery::UNMATCHED`] for mentions no campaign matched.
    pub timeline: String,
    /// Inclusive lower bound on `created_at`.
    pub from: Timestamp,
    /// Exclusive upper bound on `created_at`.
    pub to: Timestamp,
    /// Page size (1..=1000).
    pub limit: usize,
}

impl MentionQuery {
    /// Timeline of mentions that matched no campaign.
    pub const UNMATCHED: &'static str = "_unmatched";
}

/// Mentions: put-if-absent is the dedupe; listing by campaign and time.
#[async_trait::async_trait]
pub trait MentionStore: Send + Sync {
    /// Stores the mention unless one with the same `(platform, native_id)` exists.
    async fn put_mention(&self, mention: &Mention) -> Result<PutOutcome, StoreError>;

    async fn get_mention(&self, key: &MentionKey) -> Result<Option<Mention>, StoreError>;

    /// When the stored mention expires (epoch **seconds**), if it is stored.
    async fn mention_expiry(&self, key: &MentionKey) -> Result<Option<i64>, StoreError>;

    /// Mentions of one timeline with `from <= created_at < to`, oldest first.
    async fn list_mentions(
        &self,
        query: &MentionQuery,
        page: Option<&str>,
    ) -> Result<Page<Mention>, StoreError>;
}

/// Identifies one hourly aggregate: campaign × platform × hour.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HourBucket {
    pub campaign: String,
    pub platform: Platform,
    /// Start of the hour (UTC); [`HourBucket::new`] truncates.
    pub hour: Timestamp,
}

impl HourBucket {
    pub fn new(campaign: &str, platform: Platform, at: Timestamp) -> Self {
        HourBucket {
            campaign: campaign.to_owned(),
            platform,
            hour: truncate_to_hour(at),
        }
    }
}

/// The start of the UTC hour containing `at`.
pub fn truncate_to_hour(at: Timestamp) -> Timestamp {
    let s = at.as_second().div_euclid(3600) * 3600;
    Timestamp::from_second(s).expect("an hour start inside jiff's range")
}

/// Counters of one hourly aggregate. Added atomically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counters {
    pub mentions: u64,
    pub positive: u64,
    pub neutral: u64,
    pub negative: u64,
    /// Mentions in languages without a sentiment model.
    pub unscored: u64,
    /// Sum of VADER compound scores × 10⁴ (integers keep concurrent sums exact).
    pub compound_e4: i64,
    /// Sum of author followers (potential reach).
    pub reach: u64,
}

impl Counters {
    pub fn add(&mut self, other: &Counters) {
        self.mentions += other.mentions;
        self.positive += other.positive;
        self.neutral += other.neutral;
        self.negative += other.negative;
        self.unscored += other.unscored;
        self.compound_e4 += other.compound_e4;
        self.reach += other.reach;
    }
}

/// Hourly aggregates per campaign × platform.
#[async_trait::async_trait]
pub trait AggregateStore: Send + Sync {
    /// Adds `delta` to the bucket atomically (creating it at zero first).
    async fn add_counters(&self, bucket: &HourBucket, delta: &Counters) -> Result<(), StoreError>;

    /// Buckets of a campaign with `from <= hour < to`, ordered by hour then platform.
    async fn list_counters(
        &self,
        campaign: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(HourBucket, Counters)>, StoreError>;
}

/// Result of [`DeliveryStore::create_delivery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    AlreadyExists,
}

/// Deliveries and their conditional state changes.
#[async_trait::async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Creates the delivery unless its (deterministic) id exists already.
    async fn create_delivery(&self, delivery: &Delivery) -> Result<CreateOutcome, StoreError>;

    async fn get_delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError>;

    /// Replaces the stored delivery if its version still equals `delivery.version`;
    /// returns it with the new version, or [`StoreError::Conflict`].
    async fn update_delivery(&self, delivery: &Delivery) -> Result<Delivery, StoreError>;

    /// QUEUED deliveries with `due_at <= now`, earliest first, at most `limit`.
    async fn list_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError>;

    /// CLAIMED, SENT and UNKNOWN deliveries whose [`Delivery::settle_at`] is at or before
    /// `now`, earliest first, at most `limit`: claims whose worker is gone (their job went
    /// to the dead-letter queue) and unknown outcomes due for reconciliation.
    async fn list_to_settle(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Every delivery, optionally of one post (for operators: `hark posts`).
    async fn list_deliveries(&self, post_id: Option<&str>) -> Result<Vec<Delivery>, StoreError>;
}

/// A request to fire a trigger rule for a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    pub campaign: String,
    pub rule: String,
    /// Start of the evaluation window this firing is for.
    pub window_start: Timestamp,
    pub now: Timestamp,
    /// No further firing before this instant.
    pub cooldown_until: Timestamp,
    /// The `TriggerFired` event (JSON) this firing announces. Kept as the state's
    /// `pending_event` until [`TriggerStore::mark_announced`], so a crash between firing
    /// and sending re-sends it instead of losing it.
    pub event: String,
}

/// Result of [`TriggerStore::fire_once`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FireOutcome {
    Fired,
    /// Already fired for this window, or the rule is cooling down.
    Suppressed,
}

/// What the store remembers of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerState {
    pub campaign: String,
    pub rule: String,
    pub window_start: Timestamp,
    pub fired_at: Timestamp,
    pub cooldown_until: Timestamp,
    pub fired_count: u64,
    /// The event of the last firing while it is not on the events queue yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_event: Option<String>,
}

/// One firing, kept for the timeline (`hark triggers`, reports).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiringRecord {
    pub campaign: String,
    pub rule: String,
    pub window_start: Timestamp,
    pub fired_at: Timestamp,
    /// The `TriggerFired` event (JSON), explanation included.
    pub event: String,
}

/// Trigger state: a conditional write makes a rule fire at most once per window.
#[async_trait::async_trait]
pub trait TriggerStore: Send + Sync {
    /// Fires when the rule never fired, or its last window is older than
    /// `firing.window_start` and its cooldown has passed. Concurrent callers: one wins.
    async fn fire_once(&self, firing: &Firing) -> Result<FireOutcome, StoreError>;

    async fn trigger_state(
        &self,
        campaign: &str,
        rule: &str,
    ) -> Result<Option<TriggerState>, StoreError>;

    /// Clears `pending_event` if the state still describes the firing of `window_start`
    /// (a newer firing keeps its own pending event).
    async fn mark_announced(
        &self,
        campaign: &str,
        rule: &str,
        window_start: Timestamp,
    ) -> Result<(), StoreError>;

    /// Keeps a firing for the timeline (idempotent: the same campaign, rule and window
    /// overwrite one record).
    async fn record_firing(&self, record: &FiringRecord) -> Result<(), StoreError>;

    /// The firings of a campaign, oldest first.
    async fn list_firings(&self, campaign: &str) -> Result<Vec<FiringRecord>, StoreError>;

    /// Takes one unit of a counted budget (`key` names the budget and its period) if fewer
    /// than `limit` were taken: `true` when taken. Concurrent callers never take more than
    /// `limit` together. The counter may be forgotten after `expires_at`.
    ///
    /// With `Some(taker)` the take is idempotent per taker: a taker that already holds a
    /// unit of this budget gets `true` again without a second unit being counted (also when
    /// the budget is full by now), and a taker racing itself counts once. A caller that
    /// takes a unit before a step that may fail and be retried (the policy gate before the
    /// post is stored) names the thing it pays for, so the retry does not pay twice. With
    /// `None` every call is a new unit (a rate limit counts calls, not things).
    async fn take_budget(
        &self,
        key: &str,
        limit: u32,
        expires_at: Timestamp,
        taker: Option<&str>,
    ) -> Result<bool, StoreError>;
}
