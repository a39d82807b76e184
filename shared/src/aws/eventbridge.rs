//! The event bus on EventBridge: `PutEvents` with source `hark`, the event type as the
//! detail-type and the event JSON (with its deterministic id) as the detail.

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::actions::{BusEvent, EventBus};
use crate::ports::BoxError;

/// PutEvents accepts at most 10 entries per request.
const MAX_ENTRIES: usize = 10;

/// One EventBridge bus (by name or ARN).
#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    client: Client,
    bus: String,
}

impl EventBridgeBus {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        EventBridgeBus {
            client,
            bus: bus.into(),
        }
    }
}

/// Some entries of a PutEvents request were refused.
#[derive(Debug, thiserror::Error)]
#[error("EventBridge refused {failed} of {sent} events (first error: {first})")]
pub struct PartialPutFailure {
    pub failed: i32,
    pub sent: usize,
    pub first: String,
}

#[async_trait::async_trait]
impl EventBus for EventBridgeBus {
    async fn put(&self, events: &[BusEvent]) -> Result<(), BoxError> {
        for chunk in events.chunks(MAX_ENTRIES) {
            let entries = chunk
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(&e.source)
                        .detail_type(&e.detail_type)
                        .detail(&e.detail)
                        .build()
                })
                .collect();
            let out = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| Box::new(e) as BoxError)?;
            // PutEvents answers 200 even when entries failed: check each.
            if out.failed_entry_count() > 0 {
                let first = out
                    .entries()
                    .iter()
                    .find_map(|e| {
                        e.error_code()
                            .map(|c| format!("{c}: {}", e.error_message().unwrap_or("")))
                    })
                    .unwrap_or_default();
                return Err(Box::new(PartialPutFailure {
                    failed: out.failed_entry_count(),
                    sent: chunk.len(),
                    first,
                }));
            }
        }
        Ok(())
    }
}
