//! Deliveries: one scheduled post on one channel, and the state machine that makes
//! publishing exactly-once where the platform allows it.
//!
//! ```text
//! QUEUED ─dispatch→ QUEUED(job n) ─claim→ CLAIMED(lease) ─→ SENT ─→ PUBLISHED(platform id, url)
//!    ↑                                 │                     ├─→ FAILED(reason)
//!    └──────── requeue (backoff) ──────┴─────────────────────┴─→ UNKNOWN(reason)
//! QUEUED | CLAIMED | UNKNOWN | PAUSED ─cancel→ CANCELLED      FAILED ─reopen (operator)→ QUEUED
//! QUEUED ─pause (crisis brake)→ PAUSED ─resume (operator)→ QUEUED
//! ```
//! `PUBLISHED`, `FAILED` and `CANCELLED` are terminal (`FAILED` can be reopened by an
//! operator). `UNKNOWN` (the request may have reached a platform without an idempotency
//! guard) is settled by the reconciler.
//!
//! Every change is written with the store's conditional `update_delivery`, so of two
//! workers acting on the same version exactly one succeeds. Three more rules make the
//! machine safe under at-least-once queues and crashes:
//! - **Dispatch numbers**: the scheduler numbers each publish job; a QUEUED delivery is
//!   claimed only by the job it was last dispatched with ([`Delivery::accepts_job`]), so a
//!   duplicate of an old job cannot skip a retry's backoff.
//! - **Leases**: a CLAIMED delivery whose lease ran out may be taken over, and a SENT one
//!   whose lease (counted from `sent_at`) ran out may be recovered ([`Delivery::recover_sent`]):
//!   its worker is gone. Whether a recovered create may be sent again is the platform's
//!   idempotency guard's call, never this module's.
//! - **One clock per state**: `due_at` says when a delivery next needs attention — QUEUED:
//!   when to dispatch (or retry) it; CLAIMED and SENT: when the worker's lease runs out;
//!   UNKNOWN: when the reconciler looks again ([`Delivery::settle_at`]). The stores index
//!   it per state, so the scheduler finds both due work and stranded work without a scan.
//! - **Announcements**: entering PUBLISHED, FAILED, CANCELLED or UNKNOWN sets
//!   `event_pending`; the event (id [`Delivery::event_id`]) goes out after that write and
//!   the flag is cleared after the event is on the queue, so a crash in between re-sends the
//!   same event id instead of losing it.

use std::fmt;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// The name of a delivery state, without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryStatus {
    Queued,
    Claimed,
    Sent,
    Published,
    Failed,
    Unknown,
    Cancelled,
    Paused,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "QUEUED",
            DeliveryStatus::Claimed => "CLAIMED",
            DeliveryStatus::Sent => "SENT",
            DeliveryStatus::Published => "PUBLISHED",
            DeliveryStatus::Failed => "FAILED",
            DeliveryStatus::Unknown => "UNKNOWN",
            DeliveryStatus::Cancelled => "CANCELLED",
            DeliveryStatus::Paused => "PAUSED",
        }
    }

    /// PUBLISHED, FAILED or CANCELLED: nothing more happens without an operator.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            DeliveryStatus::Published | DeliveryStatus::Failed | DeliveryStatus::Cancelled
        )
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A delivery state with the data that belongs to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryState {
    Queued,
    /// A publisher holds the delivery until `lease_until`; after that another may take it.
    Claimed {
        lease_owner: String,
        lease_until: Timestamp,
    },
    /// The create request is about to go out (or went out): never blindly retried.
    Sent {
        sent_at: Timestamp,
    },
    Published {
        platform_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        published_at: Timestamp,
    },
    Failed {
        reason: String,
        /// The channel's credentials expired: an operator must re-authorise it.
        #[serde(default)]
        needs_reauth: bool,
    },
    /// The platform may or may not have published it; the reconciler decides.
    Unknown {
        reason: String,
    },
    /// An operator (or a change of the post) withdrew it before it was sent.
    Cancelled {
        reason: String,
    },
    /// Held by a campaign's crisis brake until an operator resumes the campaign.
    Paused {
        reason: String,
        paused_at: Timestamp,
    },
}

impl DeliveryState {
    pub fn status(&self) -> DeliveryStatus {
        match self {
            DeliveryState::Queued => DeliveryStatus::Queued,
            DeliveryState::Claimed { .. } => DeliveryStatus::Claimed,
            DeliveryState::Sent { .. } => DeliveryStatus::Sent,
            DeliveryState::Published { .. } => DeliveryStatus::Published,
            DeliveryState::Failed { .. } => DeliveryStatus::Failed,
            DeliveryState::Unknown { .. } => DeliveryStatus::Unknown,
            DeliveryState::Cancelled { .. } => DeliveryStatus::Cancelled,
            DeliveryState::Paused { .. } => DeliveryStatus::Paused,
        }
    }

    /// The reason of a FAILED, UNKNOWN or CANCELLED state.
    pub fn reason(&self) -> Option<&str> {
        match self {
            DeliveryState::Failed { reason, .. }
            | DeliveryState::Unknown { reason }
            | DeliveryState::Cancelled { reason }
            | DeliveryState::Paused { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// A state change the machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("delivery {delivery}: cannot go from {from} to {to}{}", .detail.map(|d| format!(" ({d})")).unwrap_or_default())]
pub struct TransitionError {
    pub delivery: String,
    pub from: DeliveryStatus,
    pub to: DeliveryStatus,
    pub detail: Option<&'static str>,
}

/// One post on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Deterministic: derived from post, channel and occurrence (also the idempotency key).
    pub id: String,
    pub post_id: String,
    pub channel_id: String,
    /// Which occurrence of the post this is (0 for a one-off post).
    #[serde(default)]
    pub occurrence: u32,
    /// When the occurrence was scheduled; never moves (unlike `due_at`).
    pub scheduled_for: Timestamp,
    /// When it next needs attention. QUEUED: when it should be published, retried, or
    /// (while dispatched) dispatched again because its job never arrived. CLAIMED / SENT:
    /// when the worker's lease runs out (then the scheduler recovers it). UNKNOWN: when the
    /// reconciler looks for it next.
    pub due_at: Timestamp,
    #[serde(flatten)]
    pub state: DeliveryState,
    /// Number of claims so far.
    #[serde(default)]
    pub attempts: u32,
    /// Last reason a retry was scheduled, kept for operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub updated_at: Timestamp,
    /// Optimistic-locking version: 0 before the first write, incremented by the store.
    #[serde(default)]
    pub version: u64,
    /// Number of the last publish job the scheduler sent for it (0 = none yet).
    #[serde(default)]
    pub dispatch: u32,
    /// Whether that job is live: set by [`Delivery::dispatch`], cleared when the delivery
    /// is requeued or reopened (so the old job is stale).
    #[serde(default)]
    pub dispatched: bool,
    /// When a create request first went out. Some platforms forget idempotency keys (Mastodon
    /// after an hour), so a later re-send is only safe within a window counted from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_sent_at: Option<Timestamp>,
    /// The event announcing the current state is not on the events queue yet.
    #[serde(default)]
    pub event_pending: bool,
}

impl Delivery {
    /// A new delivery of a one-off post waiting for `due_at`.
    pub fn new(post_id: &str, channel_id: &str, due_at: Timestamp, now: Timestamp) -> Self {
        Self::for_occurrence(post_id, channel_id, 0, due_at, now)
    }

    /// A new delivery of occurrence `occurrence` (at `at`) of a post on a channel.
    pub fn for_occurrence(
        post_id: &str,
        channel_id: &str,
        occurrence: u32,
        at: Timestamp,
        now: Timestamp,
    ) -> Self {
        Delivery {
            id: Self::id_for(post_id, channel_id, at),
            post_id: post_id.to_owned(),
            channel_id: channel_id.to_owned(),
            occurrence,
            scheduled_for: at,
            due_at: at,
            state: DeliveryState::Queued,
            attempts: 0,
            last_error: None,
            updated_at: now,
            version: 0,
            dispatch: 0,
            dispatched: false,
            first_sent_at: None,
            event_pending: false,
        }
    }

    /// The deterministic id of the delivery of a post's occurrence at `due_at` on a channel.
    pub fn id_for(post_id: &str, channel_id: &str, due_at: Timestamp) -> String {
        format!("{post_id}.{channel_id}.{}", due_at.as_second())
    }

    pub fn status(&self) -> DeliveryStatus {
        self.state.status()
    }

    fn refuse(&self, to: DeliveryStatus, detail: Option<&'static str>) -> TransitionError {
        TransitionError {
            delivery: self.id.clone(),
            from: self.status(),
            to,
            detail,
        }
    }

    /// QUEUED → CLAIMED, or take over a CLAIMED delivery whose lease ran out.
    pub fn claim(
        &mut self,
        owner: &str,
        lease: SignedDuration,
        now: Timestamp,
    ) -> Result<(), TransitionError> {
        match &self.state {
            DeliveryState::Queued => {}
            DeliveryState::Claimed { lease_until, .. } if *lease_until <= now => {}
            DeliveryState::Claimed { .. } => {
                return Err(self.refuse(DeliveryStatus::Claimed, Some("lease still held")));
            }
            _ => return Err(self.refuse(DeliveryStatus::Claimed, None)),
        }
        self.state = DeliveryState::Claimed {
            lease_owner: owner.to_owned(),
            lease_until: now + lease,
        };
        self.attempts += 1;
        self.due_at = now + lease;
        self.updated_at = now;
        Ok(())
    }

    /// QUEUED → PAUSED (the crisis brake). Its live job, if any, becomes stale: only a
    /// QUEUED delivery accepts a job.
    pub fn pause(&mut self, reason: &str, now: Timestamp) -> Result<(), TransitionError> {
        if !matches!(self.state, DeliveryState::Queued) {
            return Err(self.refuse(
                DeliveryStatus::Paused,
                Some("only a queued delivery is paused"),
            ));
        }
        self.state = DeliveryState::Paused {
            reason: reason.to_owned(),
            paused_at: now,
        };
        self.dispatched = false;
        self.updated_at = now;
        Ok(())
    }

    /// PAUSED → QUEUED, due at its time or now if that has passed (a held post goes out
    /// late, once).
    pub fn resume(&mut self, now: Timestamp) -> Result<(), TransitionError> {
        if !matches!(self.state, DeliveryState::Paused { .. }) {
            return Err(self.refuse(
                DeliveryStatus::Queued,
                Some("only a paused delivery is resumed"),
            ));
        }
        self.state = DeliveryState::Queued;
        self.dispatched = false;
        self.due_at = self.due_at.max(now);
        self.updated_at = now;
        Ok(())
    }

    /// QUEUED → QUEUED with a new publish job: returns the job's number. `due_at` moves to
    /// `now + lease`, so the delivery is dispatched again only if the job never got claimed.
    pub fn dispatch(
        &mut self,
        lease: SignedDuration,
        now: Timestamp,
    ) -> Result<u32, TransitionError> {
        self.dispatch_at(now, lease, now)
    }

    /// QUEUED → QUEUED with a new publish job that becomes visible at `at` (a delayed
    /// message: a retry dispatched by the worker that requeued it). `due_at` moves to
    /// `at + lease`: dispatched again only if that job never got claimed.
    pub fn dispatch_at(
        &mut self,
        at: Timestamp,
        lease: SignedDuration,
        now: Timestamp,
    ) -> Result<u32, TransitionError> {
        if !matches!(self.state, DeliveryState::Queued) {
            return Err(self.refuse(
                DeliveryStatus::Queued,
                Some("only a queued delivery is dispatched"),
            ));
        }
        self.dispatch += 1;
        self.dispatched = true;
        self.due_at = at.max(now) + lease;
        self.updated_at = now;
        Ok(self.dispatch)
    }

    /// Undoes a dispatch whose job could not be sent: the delivery is due again at `now`
    /// and the job number is retired.
    pub fn release_dispatch(&mut self, now: Timestamp) -> Result<(), TransitionError> {
        self.retract_dispatch(now, now)
    }

    /// Undoes a dispatch whose job could not be sent, due again at `due_at` (a retry keeps
    /// its backoff); the job number is retired.
    pub fn retract_dispatch(
        &mut self,
        due_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), TransitionError> {
        if !matches!(self.state, DeliveryState::Queued) || !self.dispatched {
            return Err(self.refuse(DeliveryStatus::Queued, Some("it is not waiting for a job")));
        }
        self.dispatched = false;
        self.due_at = due_at;
        self.updated_at = now;
        Ok(())
    }

    /// Whether publish job `dispatch` may claim this QUEUED delivery: only the live job
    /// does (an older one, or one sent before a requeue, is stale).
    pub fn accepts_job(&self, dispatch: u32) -> bool {
        matches!(self.state, DeliveryState::Queued) && self.dispatched && self.dispatch == dispatch
    }

    /// SENT whose worker is gone (`sent_at + lease` has passed) → CLAIMED by `owner`, so the
    /// create can be sent again **if** the platform's idempotency guard allows it (the
    /// caller's decision). Counts as an attempt.
    pub fn recover_sent(
        &mut self,
        owner: &str,
        lease: SignedDuration,
        now: Timestamp,
    ) -> Result<(), TransitionError> {
        match &self.state {
            DeliveryState::Sent { sent_at } if *sent_at + lease <= now => {}
            DeliveryState::Sent { .. } => {
                return Err(self.refuse(
                    DeliveryStatus::Claimed,
                    Some("the create request may still be in progress"),
                ));
            }
            _ => return Err(self.refuse(DeliveryStatus::Claimed, None)),
        }
        self.state = DeliveryState::Claimed {
            lease_owner: owner.to_owned(),
            lease_until: now + lease,
        };
        self.attempts += 1;
        self.due_at = now + lease;
        self.updated_at = now;
        Ok(())
    }

    /// CLAIMED → SENT, recorded just before the create request goes out. `lease` is the
    /// claim lease: counted from `sent_at`, it says when the sender is presumed gone.
    pub fn mark_sent(
        &mut self,
        lease: SignedDuration,
        now: Timestamp,
    ) -> Result<(), TransitionError> {
        if !matches!(self.state, DeliveryState::Claimed { .. }) {
            return Err(self.refuse(DeliveryStatus::Sent, None));
        }
        self.state = DeliveryState::Sent { sent_at: now };
        self.first_sent_at.get_or_insert(now);
        self.due_at = now + lease;
        self.updated_at = now;
        Ok(())
    }

    /// Whether the worker holding this CLAIMED or SENT delivery is presumed gone: the
    /// claim's lease ran out, or `sent_at + lease` passed (the rule of [`Self::claim`] and
    /// [`Self::recover_sent`]).
    pub fn is_stranded(&self, lease: SignedDuration, now: Timestamp) -> bool {
        match &self.state {
            DeliveryState::Claimed { lease_until, .. } => *lease_until <= now,
            DeliveryState::Sent { sent_at } => *sent_at + lease <= now,
            _ => false,
        }
    }

    /// When the scheduler's settle sweep should look at it: the lease end of a CLAIMED or
    /// SENT delivery, the next reconciliation of an UNKNOWN one; `None` in other states.
    pub fn settle_at(&self) -> Option<Timestamp> {
        match self.status() {
            DeliveryStatus::Claimed | DeliveryStatus::Sent | DeliveryStatus::Unknown => {
                Some(self.due_at)
            }
            _ => None,
        }
    }

    /// SENT or UNKNOWN → PUBLISHED with the platform's id and web URL.
    pub fn mark_published(
        &mut self,
        platform_id: &str,
        url: Option<&str>,
        now: Timestamp,
    ) -> Result<(), TransitionError> {
        if !matches!(
            self.state,
            DeliveryState::Sent { .. } | DeliveryState::Unknown { .. }
        ) {
            return Err(self.refuse(DeliveryStatus::Published, None));
        }
        self.state = DeliveryState::Published {
            platform_id: platform_id.to_owned(),
            url: url.map(str::to_owned),
            published_at: now,
        };
        self.event_pending = true;
        self.updated_at = now;
        Ok(())
    }

    /// CLAIMED, SENT or UNKNOWN → FAILED (terminal).
    pub fn mark_failed(
        &mut self,
        reason: &str,
        needs_reauth: bool,
        now: Timestamp,
    ) -> Result<(), TransitionError> {
        if !matches!(
            self.state,
            DeliveryState::Claimed { .. }
                | DeliveryState::Sent { .. }
                | DeliveryState::Unknown { .. }
        ) {
            return Err(self.refuse(DeliveryStatus::Failed, None));
        }
        self.state = DeliveryState::Failed {
            reason: reason.to_owned(),
            needs_reauth,
        };
        self.event_pending = true;
        self.updated_at = now;
        Ok(())
    }

    /// SENT → UNKNOWN: the outcome of the create request cannot be known from here. Also
    /// CLAIMED → UNKNOWN when an earlier attempt sent a create whose outcome is still open
    /// and it may not be repeated (the platform forgot the idempotency key). The reconciler
    /// first looks at `reconcile_at` (late enough for the platform to list the post).
    pub fn mark_unknown(
        &mut self,
        reason: &str,
        reconcile_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), TransitionError> {
        let allowed = match self.state {
            DeliveryState::Sent { .. } => true,
            DeliveryState::Claimed { .. } => self.first_sent_at.is_some(),
            _ => false,
        };
        if !allowed {
            return Err(self.refuse(DeliveryStatus::Unknown, None));
        }
        self.state = DeliveryState::Unknown {
            reason: reason.to_owned(),
        };
        self.due_at = reconcile_at;
        self.event_pending = true;
        self.updated_at = now;
        Ok(())
    }

    /// UNKNOWN → UNKNOWN, looked at again at `next` (the reconciler could not decide:
    /// the platform cannot be read right now). `why` is kept for operators.
    pub fn defer_reconcile(
        &mut self,
        next: Timestamp,
        why: &str,
        now: Timestamp,
    ) -> Result<(), TransitionError> {
        if !matches!(self.state, DeliveryState::Unknown { .. }) {
            return Err(self.refuse(
                DeliveryStatus::Unknown,
                Some("only an unknown outcome is reconciled"),
            ));
        }
        self.due_at = next;
        self.last_error = Some(why.to_owned());
        self.updated_at = now;
        Ok(())
    }

    /// QUEUED, CLAIMED or UNKNOWN → CANCELLED (terminal). A SENT delivery cannot be
    /// cancelled: its create request may be on its way.
    pub fn cancel(&mut self, reason: &str, now: Timestamp) -> Result<(), TransitionError> {
        match self.state {
            DeliveryState::Queued
            | DeliveryState::Claimed { .. }
            | DeliveryState::Unknown { .. }
            | DeliveryState::Paused { .. } => {}
            DeliveryState::Sent { .. } => {
                return Err(self.refuse(
                    DeliveryStatus::Cancelled,
                    Some("its create request may already have reached the platform"),
                ));
            }
            _ => return Err(self.refuse(DeliveryStatus::Cancelled, None)),
        }
        self.state = DeliveryState::Cancelled {
            reason: reason.to_owned(),
        };
        self.dispatched = false;
        self.event_pending = true;
        self.updated_at = now;
        Ok(())
    }

    /// FAILED → QUEUED, due now (an operator fixed the cause). Refused while the FAILED
    /// event has not gone out, so no terminal state goes unannounced.
    pub fn reopen(&mut self, now: Timestamp) -> Result<(), TransitionError> {
        let DeliveryState::Failed { reason, .. } = &self.state else {
            return Err(self.refuse(
                DeliveryStatus::Queued,
                Some("only a failed delivery can be retried"),
            ));
        };
        if self.event_pending {
            return Err(self.refuse(
                DeliveryStatus::Queued,
                Some("its failure has not been announced yet"),
            ));
        }
        self.last_error = Some(reason.clone());
        self.state = DeliveryState::Queued;
        self.due_at = now;
        self.dispatched = false;
        self.updated_at = now;
        Ok(())
    }

    /// The id of the event announcing the current state: `<delivery>:<STATUS>:<attempts>`.
    /// Deterministic, so a re-sent announcement carries the same id; distinct for every
    /// state a delivery can be announced in (an operator's retry adds an attempt before the
    /// next announced state). `None` for states that are not announced.
    pub fn event_id(&self) -> Option<String> {
        match self.status() {
            DeliveryStatus::Published
            | DeliveryStatus::Failed
            | DeliveryStatus::Unknown
            | DeliveryStatus::Cancelled => {
                Some(format!("{}:{}:{}", self.id, self.status(), self.attempts))
            }
            _ => None,
        }
    }

    /// The announcement of the current state is on the events queue.
    pub fn event_emitted(&mut self, now: Timestamp) {
        self.event_pending = false;
        self.updated_at = now;
    }

    /// CLAIMED, SENT (rejected before acceptance) or UNKNOWN (reconciled as not published)
    /// → QUEUED again, due at `retry_at`.
    pub fn requeue(
        &mut self,
        retry_at: Timestamp,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), TransitionError> {
        if !matches!(
            self.state,
            DeliveryState::Claimed { .. }
                | DeliveryState::Sent { .. }
                | DeliveryState::Unknown { .. }
        ) {
            return Err(self.refuse(DeliveryStatus::Queued, None));
        }
        self.state = DeliveryState::Queued;
        self.due_at = retry_at;
        self.dispatched = false;
        self.last_error = Some(reason.to_owned());
        self.updated_at = now;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_780_000_000 + s).unwrap()
    }

    fn queued() -> Delivery {
        Delivery::new("launch", "brand-mastodon", t(0), t(0))
    }

    #[test]
    fn given_a_queued_delivery_when_it_runs_the_happy_path_then_it_ends_published() {
        let mut d = queued();
        d.claim("worker-1", SignedDuration::from_secs(60), t(1))
            .unwrap();
        assert_eq!(d.attempts, 1);
        d.mark_sent(SignedDuration::from_secs(60), t(2)).unwrap();
        d.mark_published("1138", Some("https://m.example/@brand/1138"), t(3))
            .unwrap();
        assert_eq!(d.status(), DeliveryStatus::Published);
        assert!(d.status().is_terminal());
    }

    #[test]
    fn given_a_held_lease_when_claimed_again_then_refused_until_it_expires() {
        let mut d = queued();
        d.claim("a", SignedDuration::from_secs(60), t(0)).unwrap();
        let err = d
            .claim("b", SignedDuration::from_secs(60), t(30))
            .unwrap_err();
        assert_eq!(err.detail, Some("lease still held"));
        d.claim("b", SignedDuration::from_secs(60), t(60)).unwrap();
        assert_eq!(d.attempts, 2);
    }

    #[test]
    fn given_terminal_states_when_any_transition_is_tried_then_typed_error() {
        let mut d = queued();
        d.claim("a", SignedDuration::from_secs(60), t(0)).unwrap();
        d.mark_failed("422 text too long", false, t(1)).unwrap();
        let err = d
            .mark_sent(SignedDuration::from_secs(60), t(2))
            .unwrap_err();
        assert_eq!(
            (err.from, err.to),
            (DeliveryStatus::Failed, DeliveryStatus::Sent)
        );
        assert!(d.requeue(t(5), "retry", t(2)).is_err());
        assert!(d.claim("b", SignedDuration::from_secs(1), t(9)).is_err());
        assert!(err.to_string().contains("cannot go from FAILED to SENT"));
    }

    #[test]
    fn given_queued_when_published_directly_then_refused() {
        let mut d = queued();
        assert!(d.mark_published("1", None, t(1)).is_err());
        assert!(d.mark_unknown("timeout", t(1), t(1)).is_err());
        assert_eq!(d.status(), DeliveryStatus::Queued);
    }

    #[test]
    fn given_unknown_when_reconciled_then_published_or_requeued() {
        let mut d = queued();
        d.claim("a", SignedDuration::from_secs(60), t(0)).unwrap();
        d.mark_sent(SignedDuration::from_secs(60), t(1)).unwrap();
        d.mark_unknown("timeout after send", t(2), t(2)).unwrap();
        let mut found = d.clone();
        found.mark_published("99", None, t(3)).unwrap();
        d.requeue(t(10), "not found on the account", t(3)).unwrap();
        assert_eq!(d.status(), DeliveryStatus::Queued);
        assert_eq!(d.due_at, t(10));
    }

    fn lease() -> SignedDuration {
        SignedDuration::from_secs(60)
    }

    #[test]
    fn given_a_dispatched_delivery_then_only_its_live_job_may_claim_it() {
        let mut d = queued();
        assert!(!d.accepts_job(0), "never dispatched: no job is live");
        let first = d.dispatch(SignedDuration::from_mins(10), t(0)).unwrap();
        assert_eq!((first, d.due_at), (1, t(600)));
        assert!(d.accepts_job(1));
        let second = d.dispatch(SignedDuration::from_mins(10), t(600)).unwrap();
        assert_eq!(second, 2);
        assert!(!d.accepts_job(1), "the first job went stale");
        d.claim("w", lease(), t(601)).unwrap();
        d.requeue(t(700), "HTTP 429", t(602)).unwrap();
        assert!(
            !d.accepts_job(2),
            "a requeued delivery waits for a new dispatch"
        );
        assert_eq!(d.due_at, t(700));
        assert!(d.dispatch(lease(), t(700)).is_ok());
        assert!(d.accepts_job(3));
    }

    #[test]
    fn given_a_claimed_delivery_when_dispatched_then_refused() {
        let mut d = queued();
        d.claim("w", lease(), t(0)).unwrap();
        let err = d.dispatch(lease(), t(1)).unwrap_err();
        assert_eq!(
            (err.from, err.to),
            (DeliveryStatus::Claimed, DeliveryStatus::Queued)
        );
    }

    #[test]
    fn given_a_sent_delivery_when_its_lease_ran_out_then_it_can_be_recovered_and_resent() {
        let mut d = queued();
        d.claim("a", lease(), t(0)).unwrap();
        d.mark_sent(SignedDuration::from_secs(60), t(1)).unwrap();
        let err = d.recover_sent("b", lease(), t(30)).unwrap_err();
        assert_eq!(
            err.detail,
            Some("the create request may still be in progress")
        );
        d.recover_sent("b", lease(), t(61)).unwrap();
        assert_eq!(d.status(), DeliveryStatus::Claimed);
        assert_eq!(d.attempts, 2);
        d.mark_sent(SignedDuration::from_secs(60), t(62)).unwrap();
        assert_eq!(d.first_sent_at, Some(t(1)), "the first send is remembered");
    }

    #[test]
    fn given_a_claim_after_an_earlier_send_then_it_may_be_declared_unknown_but_a_fresh_claim_may_not()
     {
        let mut fresh = queued();
        fresh.claim("a", lease(), t(0)).unwrap();
        assert!(
            fresh.mark_unknown("x", t(1), t(1)).is_err(),
            "nothing was ever sent"
        );
        let mut d = queued();
        d.claim("a", lease(), t(0)).unwrap();
        d.mark_sent(SignedDuration::from_secs(60), t(1)).unwrap();
        d.requeue(t(20), "HTTP 503", t(2)).unwrap();
        d.dispatch(lease(), t(20)).unwrap();
        d.claim("b", lease(), t(21)).unwrap();
        d.mark_unknown("idempotency key expired", t(22), t(22))
            .unwrap();
        assert_eq!(d.status(), DeliveryStatus::Unknown);
        assert!(d.event_pending);
    }

    #[test]
    fn given_announced_states_then_event_ids_are_deterministic_and_distinct() {
        let mut d = queued();
        assert_eq!(d.event_id(), None);
        d.claim("a", lease(), t(0)).unwrap();
        d.mark_failed("HTTP 422", false, t(1)).unwrap();
        assert!(d.event_pending);
        let failed = d.event_id().unwrap();
        assert_eq!(failed, format!("{}:FAILED:1", d.id));
        assert_eq!(d.event_id().unwrap(), failed, "same state, same id");
        let err = d.reopen(t(2)).unwrap_err();
        assert_eq!(err.detail, Some("its failure has not been announced yet"));
        d.event_emitted(t(2));
        d.reopen(t(3)).unwrap();
        assert_eq!((d.status(), d.due_at), (DeliveryStatus::Queued, t(3)));
        assert_eq!(d.last_error.as_deref(), Some("HTTP 422"));
        d.dispatch(lease(), t(3)).unwrap();
        d.claim("b", lease(), t(4)).unwrap();
        d.mark_sent(SignedDuration::from_secs(60), t(5)).unwrap();
        d.mark_published("1", None, t(6)).unwrap();
        let published = d.event_id().unwrap();
        assert_eq!(published, format!("{}:PUBLISHED:2", d.id));
        assert_ne!(published, failed);
    }

    #[test]
    fn given_each_state_when_cancelled_then_only_unsent_ones_are() {
        let mut d = queued();
        d.dispatch(lease(), t(0)).unwrap();
        d.cancel("cancelled by operator", t(1)).unwrap();
        assert_eq!(d.status(), DeliveryStatus::Cancelled);
        assert!(d.status().is_terminal() && d.event_pending && !d.accepts_job(1));
        assert_eq!(d.state.reason(), Some("cancelled by operator"));

        let mut sent = queued();
        sent.claim("a", lease(), t(0)).unwrap();
        sent.mark_sent(SignedDuration::from_secs(60), t(1)).unwrap();
        let err = sent.cancel("x", t(2)).unwrap_err();
        assert_eq!(
            err.detail,
            Some("its create request may already have reached the platform")
        );
        let mut published = sent.clone();
        published.mark_published("1", None, t(3)).unwrap();
        assert!(published.cancel("x", t(4)).is_err());
        sent.mark_unknown("timeout", t(3), t(3)).unwrap();
        sent.cancel("checked by hand: not posted", t(4)).unwrap();
        assert!(
            d.reopen(t(5)).is_err(),
            "a cancelled delivery stays cancelled"
        );
    }

    #[test]
    fn given_each_working_state_then_due_at_says_when_the_settle_sweep_looks_at_it() {
        let mut d = queued();
        assert_eq!(
            d.settle_at(),
            None,
            "a queued delivery is dispatched, not settled"
        );
        d.claim("w", lease(), t(10)).unwrap();
        assert_eq!(d.settle_at(), Some(t(70)), "the claim's lease end");
        assert!(!d.is_stranded(lease(), t(69)));
        assert!(d.is_stranded(lease(), t(70)));
        d.mark_sent(lease(), t(20)).unwrap();
        assert_eq!(d.settle_at(), Some(t(80)), "sent_at + lease");
        assert!(!d.is_stranded(lease(), t(79)) && d.is_stranded(lease(), t(80)));
        d.mark_unknown("timeout", t(140), t(21)).unwrap();
        assert_eq!(d.settle_at(), Some(t(140)), "the first reconciliation");
        assert!(!d.is_stranded(lease(), t(1000)), "UNKNOWN is not stranded");
        d.defer_reconcile(t(400), "timeline unreadable: HTTP 503", t(140))
            .unwrap();
        assert_eq!(
            (d.status(), d.settle_at(), d.last_error.as_deref()),
            (
                DeliveryStatus::Unknown,
                Some(t(400)),
                Some("timeline unreadable: HTTP 503")
            )
        );
        d.mark_published("42", None, t(400)).unwrap();
        assert_eq!(d.settle_at(), None);
    }

    #[test]
    fn given_a_non_unknown_delivery_when_reconciliation_is_deferred_then_refused() {
        let mut d = queued();
        let err = d.defer_reconcile(t(60), "x", t(0)).unwrap_err();
        assert_eq!(err.detail, Some("only an unknown outcome is reconciled"));
        assert_eq!(d.due_at, t(0), "nothing changed");
    }

    #[test]
    fn given_a_requeued_delivery_when_dispatched_for_later_then_its_job_is_live_and_it_is_not_due_before_then()
     {
        let mut d = queued();
        d.dispatch(lease(), t(0)).unwrap();
        d.claim("w", lease(), t(1)).unwrap();
        d.requeue(t(20), "HTTP 500", t(2)).unwrap();
        let job = d
            .dispatch_at(t(20), SignedDuration::from_mins(10), t(2))
            .unwrap();
        assert_eq!(job, 2);
        assert!(
            d.accepts_job(2) && !d.accepts_job(1),
            "the old job is stale"
        );
        assert_eq!(
            d.due_at,
            t(620),
            "re-dispatched by a tick only if the job is lost"
        );
        d.retract_dispatch(t(20), t(3)).unwrap();
        assert!(!d.accepts_job(2), "a retracted job is stale too");
        assert_eq!(d.due_at, t(20), "the backoff is kept");
        assert!(
            d.retract_dispatch(t(20), t(4)).is_err(),
            "nothing to retract"
        );
    }

    #[test]
    fn given_a_delivery_when_serialised_then_status_is_a_flat_field() {
        let mut d = queued();
        d.claim("w", SignedDuration::from_secs(60), t(0)).unwrap();
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["status"], "CLAIMED");
        assert_eq!(v["lease_owner"], "w");
        let back: Delivery = serde_json::from_value(v).unwrap();
        assert_eq!(back, d);
    }
}
