//! The publish queue's message (its JSON is the queue contract).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// "Publish this delivery": sent by the scheduler when a delivery is due. `dispatch` is the
/// delivery's dispatch number at the time; only the live job may claim a queued delivery
/// (see [`Delivery::accepts_job`](crate::domain::Delivery::accepts_job)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishJob {
    pub delivery_id: String,
    pub dispatch: u32,
    /// The tick that sent it (for logs and latency).
    pub dispatched_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_job_when_encoded_then_it_reads_back_and_unknown_fields_are_refused() {
        let job = PublishJob {
            delivery_id: "launch.masto.1780000000".into(),
            dispatch: 3,
            dispatched_at: Timestamp::from_second(1_780_000_000).unwrap(),
        };
        let text = serde_json::to_string(&job).unwrap();
        assert_eq!(serde_json::from_str::<PublishJob>(&text).unwrap(), job);
        let extra = text.replace("\"dispatch\"", "\"priority\":1,\"dispatch\"");
        assert!(serde_json::from_str::<PublishJob>(&extra).is_err());
    }
}
