//! Lambda event adapters: turn an SQS batch into per-message work and report partial
//! batch failures, so one bad message never fails (and redelivers) the whole batch.
//! `hark run` feeds the same functions with messages from the embedded queue.

use std::fmt::Display;
use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use tracing::Instrument;

use crate::ports::ReceivedMessage;

/// What happened to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Done (or deliberately dropped): delete it.
    Done,
    /// Failed: leave it for redelivery (and the DLQ after the configured receives).
    Retry,
}

/// One SQS record as the handlers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub message_id: String,
    pub body: String,
    pub receive_count: u32,
}

/// Runs `handle` on every record, one tracing span per message, and returns the ids of
/// the failed ones as `batchItemFailures`. A record without a body or id is a failure.
pub async fn for_each_record<F, Fut, E>(event: SqsEvent, handle: F) -> SqsBatchResponse
where
    F: Fn(Record) -> Fut,
    Fut: Future<Output = Result<Disposition, E>>,
    E: Display,
{
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!("sqs_message", message_id = %id);
        let outcome = async {
            let Some(body) = message.body.clone() else {
                tracing::error!("SQS record without a body");
                return Disposition::Retry;
            };
            let receive_count = message
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            match handle(Record {
                message_id: id.clone(),
                body,
                receive_count,
            })
            .await
            {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, receive_count, "message failed; it will be retried");
                    Disposition::Retry
                }
            }
        }
        .instrument(span)
        .await;
        if outcome == Disposition::Retry {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// The poller Lambda's handler: every job of the batch through
/// [`handle_poll_batch`](crate::listening::handle_poll_batch) (polled concurrently, their
/// mentions queued together), and the jobs to redeliver reported as failed. `hark run` and
/// the end-to-end tests call it too, so they exercise the Lambda's own path.
pub async fn poll_event<S, F>(
    store: &S,
    queue: &dyn crate::ports::MessageQueue,
    listeners: &F,
    event: &SqsEvent,
    now: jiff::Timestamp,
    settings: &crate::listening::PollerSettings,
) -> SqsBatchResponse
where
    S: crate::ports::ConfigStore + crate::ports::CursorStore,
    F: crate::listening::ListenerFactory + ?Sized,
{
    let (records, mut failed) = records(event);
    for id in &failed {
        tracing::error!(message_id = %id, "SQS record without a body; it will be retried");
    }
    let bodies: Vec<&str> = records.iter().map(|r| r.body.as_str()).collect();
    let outcomes =
        crate::listening::handle_poll_batch(store, queue, listeners, &bodies, now, settings).await;
    for (record, outcome) in records.into_iter().zip(outcomes) {
        match outcome {
            Ok(outcome) => {
                tracing::info!(message_id = %record.message_id, ?outcome, "poll job done")
            }
            Err(e) => {
                tracing::error!(message_id = %record.message_id, receive_count = record.receive_count, error = %e, "poll job failed; it will be retried");
                failed.push(record.message_id);
            }
        }
    }
    response_for(failed)
}

/// Builds the SQS event Lambda would deliver for these received messages.
pub fn sqs_event(messages: &[ReceivedMessage]) -> SqsEvent {
    let mut event = SqsEvent::default();
    for m in messages {
        let mut record = SqsMessage::default();
        record.message_id = Some(m.message_id.clone());
        record.receipt_handle = Some(m.receipt.clone());
        record.body = Some(m.body.clone());
        record.attributes.insert(
            "ApproximateReceiveCount".into(),
            m.receive_count.to_string(),
        );
        event.records.push(record);
    }
    event
}

/// The records of an event, in order; records without an id or body are left out and
/// returned by id (possibly empty) as failures to report.
pub fn records(event: &SqsEvent) -> (Vec<Record>, Vec<String>) {
    let mut ok = Vec::new();
    let mut broken = Vec::new();
    for m in &event.records {
        let id = m.message_id.clone().unwrap_or_default();
        match &m.body {
            Some(body) => ok.push(Record {
                message_id: id,
                body: body.clone(),
                receive_count: m
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1),
            }),
            None => broken.push(id),
        }
    }
    (ok, broken)
}

/// A batch response reporting these message ids as failed.
pub fn response_for(failed: impl IntoIterator<Item = String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for id in failed {
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = id;
        response.batch_item_failures.push(failure);
    }
    response
}

/// The ids of messages a handler reported as failed.
pub fn failed_ids(response: &SqsBatchResponse) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(id: &str, body: &str) -> ReceivedMessage {
        ReceivedMessage {
            message_id: id.into(),
            receipt: format!("r-{id}"),
            body: body.into(),
            receive_count: 2,
        }
    }

    #[tokio::test]
    async fn given_one_bad_message_then_only_it_is_reported_failed() {
        let event = sqs_event(&[
            received("a", "1"),
            received("b", "oops"),
            received("c", "3"),
        ]);
        let response = for_each_record(event, |r| async move {
            assert_eq!(r.receive_count, 2);
            r.body
                .parse::<u32>()
                .map(|_| Disposition::Done)
                .map_err(|e| e.to_string())
        })
        .await;
        assert_eq!(failed_ids(&response), ["b"]);
        let json = serde_json::to_value(&response).unwrap();
        assert_eq!(json["batchItemFailures"][0]["itemIdentifier"], "b");
    }

    #[tokio::test]
    async fn given_a_record_without_body_then_it_fails_without_calling_the_handler() {
        let mut event = sqs_event(&[received("a", "1")]);
        event.records[0].body = None;
        let response = for_each_record(event, |_r| async {
            Err::<Disposition, _>("must not be called")
        })
        .await;
        assert_eq!(failed_ids(&response), ["a"]);
    }
}
