//! The listening use cases: the scheduler tick (which sources are due) and the poller
//! (fetch since the cursor, queue the mentions, then advance the cursor). Written against
//! the ports, so the Lambda functions and `hark run` share them.

mod jobs;
mod poller;
mod scheduler;

pub use jobs::{MentionBatch, PollJob};
pub use poller::{ListenerFactory, PollOutcome, PollerSettings, handle_poll_batch, poll_source};
pub use scheduler::{TickReport, schedule_polls};

use crate::ports::{QueueError, StoreError};

/// An infrastructure failure of a listening use case: the message should be retried.
#[derive(Debug, thiserror::Error)]
pub enum ListeningError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("cannot encode a queue message")]
    Encode(#[from] serde_json::Error),
    #[error("malformed poll job")]
    MalformedJob(#[source] serde_json::Error),
    /// The request that held this poll's mentions failed (it may have held other polls'
    /// mentions too, hence the error as text).
    #[error("the mentions of this poll were not queued: {error}")]
    NotQueued { retryable: bool, error: String },
}

impl ListeningError {
    /// Whether retrying later may help (everything here is infrastructure: usually yes).
    pub fn is_retryable(&self) -> bool {
        match self {
            ListeningError::Store(e) => {
                e.is_retryable() || matches!(e, StoreError::Conflict { .. })
            }
            ListeningError::Queue(QueueError::Backend { retryable, .. }) => *retryable,
            ListeningError::NotQueued { retryable, .. } => *retryable,
            ListeningError::Queue(_)
            | ListeningError::Encode(_)
            | ListeningError::MalformedJob(_) => false,
        }
    }
}
