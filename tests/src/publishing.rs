//! Helpers for the publishing tests: secrets without touching the process environment,
//! channels pointing at the fakes, and reading the events queue.

use std::collections::HashMap;

use hark_shared::domain::{Channel, Secret, SecretRef};
use hark_shared::events::HarkEvent;
use hark_shared::ports::{MessageQueue, QueueName};
use hark_shared::secrets::{SecretError, SecretResolver};
use jiff::SignedDuration;

use crate::fakes::{BLUESKY_APP_PASSWORD, BLUESKY_HANDLE, FakeMastodon, FakePds, MASTODON_TOKEN};

/// Resolves `env:NAME` references from a fixed map (tests must not change the process
/// environment: other tests run in the same process).
#[derive(Debug, Clone, Default)]
pub struct StaticSecrets(pub HashMap<String, String>);

impl StaticSecrets {
    /// The credentials the fakes accept, as `env:MASTODON_TOKEN` and `env:BLUESKY_PASSWORD`.
    pub fn for_fakes() -> Self {
        StaticSecrets(HashMap::from([
            ("MASTODON_TOKEN".to_owned(), MASTODON_TOKEN.to_owned()),
            (
                "BLUESKY_PASSWORD".to_owned(),
                BLUESKY_APP_PASSWORD.to_owned(),
            ),
        ]))
    }
}

#[async_trait::async_trait]
impl SecretResolver for StaticSecrets {
    async fn resolve(&self, reference: &SecretRef) -> Result<Secret, SecretError> {
        match reference {
            SecretRef::Env(name) => self
                .0
                .get(name)
                .map(Secret::new)
                .ok_or(SecretError::Missing {
                    reference: reference.clone(),
                }),
            _ => Err(SecretError::Missing {
                reference: reference.clone(),
            }),
        }
    }
}

/// A Mastodon channel `id` publishing to the fake.
pub fn mastodon_channel(id: &str, fake: &FakeMastodon) -> Channel {
    serde_json::from_value(serde_json::json!({
        "id": id, "platform": "mastodon", "base_url": fake.server.uri(), "token": "env:MASTODON_TOKEN",
    }))
    .expect("a valid channel")
}

/// A Bluesky channel `id` publishing to the fake PDS.
pub fn bluesky_channel(id: &str, fake: &FakePds) -> Channel {
    serde_json::from_value(serde_json::json!({
        "id": id, "platform": "bluesky", "base_url": fake.uri(), "account": BLUESKY_HANDLE,
        "token": "env:BLUESKY_PASSWORD",
    }))
    .expect("a valid channel")
}

/// Every message on the events queue (read and deleted), in the order received.
pub async fn drain_events(queue: &dyn MessageQueue) -> Vec<HarkEvent> {
    let mut events = Vec::new();
    let mut empty_reads = 0;
    // SQS may answer a receive with nothing although messages remain: stop after two
    // empty answers in a row.
    while empty_reads < 2 {
        let got = queue
            .receive(QueueName::Events, 10, SignedDuration::from_secs(600))
            .await
            .expect("receive events");
        if got.is_empty() {
            empty_reads += 1;
            continue;
        }
        empty_reads = 0;
        for m in got {
            events.push(serde_json::from_str(&m.body).expect("every event is a HarkEvent"));
            queue
                .delete(QueueName::Events, &m.receipt)
                .await
                .expect("delete an event");
        }
    }
    events
}

/// The `p`-th percentile (0–100) of `values` (nearest rank), `None` when empty.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}
