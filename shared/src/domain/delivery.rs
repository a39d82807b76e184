//! Deliveries: one scheduled post on one channel, and the state machine that makes
//! publishing exactly-once where the platform allows it.
//!
//! ```text
//! QUEUED → CLAIMED(lease) → SENT → PUBLISHED(platform id, url)
//!                       ↘        ↘ FAILED(reason) | UNKNOWN(reason)
//! ```
//! `PUBLISHED` and `FAILED` are terminal. `UNKNOWN` (the request may have reached a
//! platform without an idempotency guard) is settled by the reconciler.

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
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, DeliveryStatus::Published | DeliveryStatus::Failed)
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
    /// When it should be published (or retried).
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
}

impl Delivery {
    /// A new delivery waiting for `due_at`.
    pub fn new(post_id: &str, channel_id: &str, due_at: Timestamp, now: Timestamp) -> Self {
        Delivery {
            id: Self::id_for(post_id, channel_id, due_at),
            post_id: post_id.to_owned(),
            channel_id: channel_id.to_owned(),
            due_at,
            state: DeliveryState::Queued,
            attempts: 0,
            last_error: None,
            updated_at: now,
            version: 0,
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
        self.updated_at = now;
        Ok(())
    }

    /// CLAIMED → SENT, recorded just before the create request goes out.
    pub fn mark_sent(&mut self, now: Timestamp) -> Result<(), TransitionError> {
        if !matches!(self.state, DeliveryState::Claimed { .. }) {
            return Err(self.refuse(DeliveryStatus::Sent, None));
        }
        self.state = DeliveryState::Sent { sent_at: now };
        self.updated_at = now;
        Ok(())
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
        self.updated_at = now;
        Ok(())
    }

    /// SENT → UNKNOWN: the outcome of the create request cannot be known from here.
    pub fn mark_unknown(&mut self, reason: &str, now: Timestamp) -> Result<(), TransitionError> {
        if !matches!(self.state, DeliveryState::Sent { .. }) {
            return Err(self.refuse(DeliveryStatus::Unknown, None));
        }
        self.state = DeliveryState::Unknown {
            reason: reason.to_owned(),
        };
        self.updated_at = now;
        Ok(())
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
        d.mark_sent(t(2)).unwrap();
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
        let err = d.mark_sent(t(2)).unwrap_err();
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
        assert!(d.mark_unknown("timeout", t(1)).is_err());
        assert_eq!(d.status(), DeliveryStatus::Queued);
    }

    #[test]
    fn given_unknown_when_reconciled_then_published_or_requeued() {
        let mut d = queued();
        d.claim("a", SignedDuration::from_secs(60), t(0)).unwrap();
        d.mark_sent(t(1)).unwrap();
        d.mark_unknown("timeout after send", t(2)).unwrap();
        let mut found = d.clone();
        found.mark_published("99", None, t(3)).unwrap();
        d.requeue(t(10), "not found on the account", t(3)).unwrap();
        assert_eq!(d.status(), DeliveryStatus::Queued);
        assert_eq!(d.due_at, t(10));
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
