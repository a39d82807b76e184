//! The publishing use cases, written against the ports so the Lambda functions (scheduler,
//! publisher) and `hark run` share them:
//!
//! - **Scheduling** ([`schedule_post`]): a post fans out into one delivery per channel and
//!   occurrence, after every channel's text rules pass ([`validate_post`]). Re-scheduling a
//!   changed post cancels the queued deliveries it no longer wants.
//! - **Dispatch** ([`dispatch_due`], part of the scheduler tick): recurring posts roll
//!   forward to their next future occurrence, and due deliveries get a numbered publish job
//!   on the publish queue.
//! - **Publishing** ([`handle_publish_message`]): claim → validate → SENT → create on the
//!   platform → record PUBLISHED (or retry with backoff, or FAILED, or UNKNOWN) → announce.
//!   A retry due within SQS's 15-minute delay is dispatched by the publisher itself, on a
//!   delayed job with a new dispatch number, so the first retry goes out within 30 s
//!   instead of on the next tick.
//! - **Settling** ([`settle_due`], the rest of the scheduler tick): claims whose worker died
//!   and whose job is gone (dead-lettered) are re-dispatched, or made UNKNOWN where a
//!   re-send could post twice; UNKNOWN outcomes are reconciled by looking for the post on
//!   the account (PUBLISHED, or QUEUED again when certainly absent, or FAILED "could not
//!   confirm" after [`RECONCILE_DEADLINE`]).
//! - **Operators** ([`cancel_delivery`], [`retry_delivery`], [`clear_channel_reauth`]).
//!
//! # Exactly once
//! A post is created at most once per delivery because a create request is only sent from
//! SENT, which only one worker can reach (conditional writes), and a create is repeated only
//! where the platform guards it ([`CreateGuard`]): Mastodon's `Idempotency-Key` (the
//! delivery id) within [`MASTODON_RESEND_WINDOW`] of the first send, Bluesky's record key
//! (derived from the delivery id) always. Anything else that may have reached a platform
//! becomes UNKNOWN for the reconciler, never a blind retry; the reconciler re-queues it
//! only when the account's posts since the first send certainly do not hold it.
//!
//! Every announced state emits exactly one event *id* (see
//! [`Delivery::event_id`](crate::domain::Delivery::event_id)): the state is written first
//! with `event_pending`, the event is sent, then the flag is cleared. A crash in between
//! re-sends the same id on the job's redelivery, so the queue may carry an event twice but
//! never carries two ids for one state, and never none.
//!
//! # Timing contract with the infrastructure
//! [`CLAIM_LEASE`] must be longer than the publisher function's timeout (a claim outlives
//! its worker only if the worker died), and the publish queue's visibility timeout must be
//! at least [`CLAIM_LEASE`] ([`MIN_PUBLISH_VISIBILITY`]): the job of a crashed worker comes
//! back when its lease has run out and recovers the delivery.

mod backoff;
mod cache;
mod dispatch;
mod factory;
mod guard;
mod jobs;
mod operator;
mod publisher;
mod ratelimit;
mod reauth;
mod reconcile;
mod schedule;
mod validate;

use jiff::SignedDuration;

pub use backoff::{Backoff, jitter_fraction};
pub use cache::BatchConfigCache;
pub use dispatch::{DispatchReport, DispatchSettings, dispatch_due, dispatch_now};
pub use factory::{ChannelPublisher, PlatformPublishers, PublisherFactory};
pub use guard::{CreateGuard, MASTODON_RESEND_WINDOW, create_guard};
pub use jobs::PublishJob;
pub use operator::{
    DeliveryView, cancel_delivery, clear_channel_reauth, list_deliveries, retry_delivery,
};
pub use publisher::{PublishOutcome, PublisherSettings, handle_publish_message, publish_job};
pub use ratelimit::{
    RateBlock, RateGate, RateLimitedPublisher, ScopedLimit, StoreRateGate, WindowLimit,
    default_limits, limits_for,
};
pub use reauth::ChannelAuth;
pub use reconcile::{SettleReport, SettleSettings, settle_due};
pub use schedule::{LATE_SCHEDULING_GRACE, ScheduleReport, schedule_changed, schedule_post};
pub use validate::{ChannelProblem, outgoing_text, validate_post};

use crate::domain::{PostError, TransitionError};
use crate::ports::{QueueError, StoreError};

/// How long a claim holds a delivery. Longer than the publisher function's timeout (2 min
/// at most): when it runs out, the worker that took it is gone.
pub const CLAIM_LEASE: SignedDuration = SignedDuration::from_mins(5);

/// The publish queue's visibility timeout must be at least this: a job redelivered after a
/// crash then finds the crashed claim's lease expired and recovers the delivery at once.
pub const MIN_PUBLISH_VISIBILITY: SignedDuration = CLAIM_LEASE;

/// How long a dispatched delivery waits for its job to be claimed before the scheduler
/// sends another job (the first one was lost, e.g. the tick crashed after its write).
pub const DISPATCH_LEASE: SignedDuration = SignedDuration::from_mins(10);

/// How long after a create's outcome became UNKNOWN the reconciler first looks for the
/// post: platforms list a new post on the account's timeline within seconds, and
/// "not found" is only trusted once the post would have shown.
pub const RECONCILE_AFTER: SignedDuration = SignedDuration::from_mins(1);

/// How long the reconciler keeps looking for an UNKNOWN create (counted from the first
/// send) before it gives up and reports the delivery FAILED with "could not confirm".
pub const RECONCILE_DEADLINE: SignedDuration = SignedDuration::from_hours(24);

/// A publishing use case could not finish. `Err` from a queue consumer means "let the queue
/// redeliver the message"; outcomes on the platform side are values, not errors.
#[derive(Debug, thiserror::Error)]
pub enum PublishingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("cannot encode a queue message")]
    Encode(#[from] serde_json::Error),
    /// The message is not a publish job; it goes to the dead-letter queue after its receives.
    #[error("malformed publish job")]
    MalformedJob(#[source] serde_json::Error),
    /// The post cannot go out on some of its channels; nothing was scheduled.
    #[error("post `{post}` cannot be scheduled: {}", render(.problems))]
    Invalid {
        post: String,
        problems: Vec<ChannelProblem>,
    },
    /// The post's schedule cannot be computed (time zone, recurrence).
    #[error("post `{post}`: {source}")]
    Schedule {
        post: String,
        #[source]
        source: PostError,
    },
    #[error("{what} `{id}` does not exist")]
    NotFound { what: &'static str, id: String },
    /// An operator asked for a change the state machine does not allow.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// Others kept changing the delivery while we tried to change it.
    #[error("delivery `{id}` kept changing while it was being updated; try again")]
    Contended { id: String },
}

impl PublishingError {
    /// Whether trying again later may help.
    pub fn is_retryable(&self) -> bool {
        match self {
            PublishingError::Store(e) => {
                e.is_retryable() || matches!(e, StoreError::Conflict { .. })
            }
            PublishingError::Queue(QueueError::Backend { retryable, .. }) => *retryable,
            PublishingError::Contended { .. } => true,
            _ => false,
        }
    }
}

fn render(problems: &[ChannelProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
