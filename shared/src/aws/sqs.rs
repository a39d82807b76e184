//! [`SqsQueue`]: the message queue port on SQS standard queues.
//!
//! Dead-lettering is SQS's own: each main queue has a RedrivePolicy to its DLQ (set by
//! [`super::bootstrap::ensure_queues`] or the SAM template).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, SendMessageBatchRequestEntry};
use jiff::SignedDuration;

use super::is_retryable;
use crate::config::QueueUrls;
use crate::ports::{
    MessageQueue, QueueError, QueueName, ReceivedMessage, check_batch, check_delay, check_receive,
};

/// The queue port on SQS. Cheap to clone: the SDK client and the URL map are shared.
#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    urls: Arc<HashMap<QueueName, String>>,
}

impl fmt::Debug for SqsQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqsQueue")
            .field("urls", &self.urls)
            .finish_non_exhaustive()
    }
}

impl SqsQueue {
    /// A queue client for the given queue URLs; a queue missing from the map is
    /// [`QueueError::NotConfigured`] when used.
    pub fn new(client: Client, urls: HashMap<QueueName, String>) -> Self {
        SqsQueue {
            client,
            urls: Arc::new(urls),
        }
    }

    /// A queue client for the main queues configured in the environment (`HARK_*_QUEUE_URL`).
    /// Functions never read the DLQs; operators use the console or the CLI.
    pub fn from_config(client: Client, urls: &QueueUrls) -> Self {
        let urls = QueueName::MAIN
            .into_iter()
            .filter_map(|queue| urls.get(queue).map(|url| (queue, url.to_owned())))
            .collect();
        Self::new(client, urls)
    }

    fn url(&self, queue: QueueName) -> Result<&str, QueueError> {
        self.urls
            .get(&queue)
            .map(String::as_str)
            .ok_or(QueueError::NotConfigured(queue))
    }
}

/// Maps an SDK failure, keeping it as the source.
fn backend<E>(
    operation: &'static str,
    queue: QueueName,
    err: SdkError<E, HttpResponse>,
) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    QueueError::Backend {
        operation,
        queue,
        retryable: is_retryable(&err),
        source: Box::new(err),
    }
}

/// Whether SQS refused a receipt handle: malformed, from a deleted message, or expired.
/// ChangeMessageVisibility on a message that is no longer in flight answers
/// `MessageNotInflight`, or `InvalidParameterValue` naming the receipt handle:
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html>.
fn is_invalid_receipt<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    let Some(code) = err.code() else {
        return false;
    };
    matches!(
        code,
        "ReceiptHandleIsInvalid" | "MessageNotInflight" | "InvalidIdFormat"
    ) || (code == "InvalidParameterValue"
        && err.message().is_some_and(|m| m.contains("ReceiptHandle")))
}

/// Some messages of a batch were not accepted by SQS (the others were sent).
#[derive(Debug, thiserror::Error)]
#[error("SQS refused {} of the batch's messages: {}", .failures.len(), describe(.failures))]
pub struct SendBatchFailed {
    pub failures: Vec<FailedEntry>,
}

/// One message SQS did not accept, with SQS's code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedEntry {
    /// Position of the message in the batch.
    pub index: usize,
    pub code: String,
    pub message: Option<String>,
    /// The request was wrong (not worth retrying as is).
    pub sender_fault: bool,
}

fn describe(failures: &[FailedEntry]) -> String {
    failures
        .iter()
        .map(|f| match &f.message {
            Some(message) => format!("#{} {} ({message})", f.index, f.code),
            None => format!("#{} {}", f.index, f.code),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// SQS returned a message without a field every message has.
#[derive(Debug, thiserror::Error)]
#[error("SQS returned a message without its {0}")]
struct IncompleteMessage(&'static str);

fn received(queue: QueueName, message: Message) -> Result<ReceivedMessage, QueueError> {
    let incomplete = |field| QueueError::Backend {
        operation: "ReceiveMessage",
        queue,
        retryable: false,
        source: Box::new(IncompleteMessage(field)),
    };
    let receive_count = message
        .attributes
        .as_ref()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|n| n.parse::<u32>().ok());
    Ok(ReceivedMessage {
        message_id: message.message_id.ok_or_else(|| incomplete("message id"))?,
        receipt: message
            .receipt_handle
            .ok_or_else(|| incomplete("receipt handle"))?,
        body: message.body.unwrap_or_default(),
        receive_count: receive_count.ok_or_else(|| incomplete("ApproximateReceiveCount"))?,
    })
}

fn seconds(duration: SignedDuration) -> i32 {
    // check_receive bounds it to 0..=43200; other callers get the same clamp.
    i32::try_from(duration.as_secs().clamp(0, 43_200)).unwrap_or(43_200)
}

impl SqsQueue {
    /// One SendMessageBatch, every entry with `DelaySeconds = delay_seconds`. Limits are
    /// checked first: moto does not enforce all of them.
    async fn send_entries(
        &self,
        queue: QueueName,
        bodies: &[String],
        delay_seconds: i32,
    ) -> Result<(), QueueError> {
        check_batch(bodies)?;
        let url = self.url(queue)?;
        let entries = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                let entry = SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body);
                // Left out when zero: the queue's own DelaySeconds then applies, as for
                // an undelayed send.
                let entry = if delay_seconds > 0 {
                    entry.delay_seconds(delay_seconds)
                } else {
                    entry
                };
                entry.build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| QueueError::Backend {
                operation: "SendMessageBatch",
                queue,
                retryable: false,
                source: Box::new(e),
            })?;
        let output = self
            .client
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| backend("SendMessageBatch", queue, e))?;
        if output.failed.is_empty() {
            return Ok(());
        }
        // A partial failure: the caller sends the whole batch again (consumers dedupe).
        let failures: Vec<FailedEntry> = output
            .failed
            .iter()
            .map(|f| FailedEntry {
                index: f.id.parse().unwrap_or(usize::MAX),
                code: f.code.clone(),
                message: f.message.clone(),
                sender_fault: f.sender_fault,
            })
            .collect();
        Err(QueueError::Backend {
            operation: "SendMessageBatch",
            queue,
            retryable: failures.iter().all(|f| !f.sender_fault),
            source: Box::new(SendBatchFailed { failures }),
        })
    }
}

#[async_trait]
impl MessageQueue for SqsQueue {
    async fn send_batch(&self, queue: QueueName, bodies: &[String]) -> Result<(), QueueError> {
        self.send_entries(queue, bodies, 0).await
    }

    /// SQS's per-message `DelaySeconds` (whole seconds, rounded up).
    async fn send_batch_delayed(
        &self,
        queue: QueueName,
        bodies: &[String],
        delay: SignedDuration,
    ) -> Result<(), QueueError> {
        let seconds = check_delay(delay)?;
        self.send_entries(queue, bodies, seconds).await
    }

    /// A short poll (no wait) that asks for each message's receive count.
    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: SignedDuration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        check_receive(max, visibility)?;
        let url = self.url(queue)?;
        let output = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(i32::try_from(max).unwrap_or(10))
            .visibility_timeout(seconds(visibility))
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| backend("ReceiveMessage", queue, e))?;
        output
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|message| received(queue, message))
            .collect()
    }

    async fn delete(&self, queue: QueueName, receipt: &str) -> Result<(), QueueError> {
        let url = self.url(queue)?;
        match self
            .client
            .delete_message()
            .queue_url(url)
            .receipt_handle(receipt)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if is_invalid_receipt(&err) => Err(QueueError::InvalidReceipt),
            Err(err) => Err(backend("DeleteMessage", queue, err)),
        }
    }

    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt: &str,
        visibility: SignedDuration,
    ) -> Result<(), QueueError> {
        let seconds_asked = visibility.as_secs();
        if !(0..=43_200).contains(&seconds_asked) {
            return Err(QueueError::InvalidVisibility {
                seconds: seconds_asked,
            });
        }
        let url = self.url(queue)?;
        match self
            .client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds(visibility))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if is_invalid_receipt(&err) => Err(QueueError::InvalidReceipt),
            Err(err) => Err(backend("ChangeMessageVisibility", queue, err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_failed_entries_then_the_error_names_each_with_its_code() {
        let err = SendBatchFailed {
            failures: vec![
                FailedEntry {
                    index: 3,
                    code: "InvalidMessageContents".to_owned(),
                    message: Some("bad character".to_owned()),
                    sender_fault: true,
                },
                FailedEntry {
                    index: 7,
                    code: "InternalError".to_owned(),
                    message: None,
                    sender_fault: false,
                },
            ],
        };
        assert_eq!(
            err.to_string(),
            "SQS refused 2 of the batch's messages: #3 InvalidMessageContents (bad character), \
             #7 InternalError"
        );
    }

    #[test]
    fn given_a_message_then_its_receive_count_is_read_from_the_system_attributes() {
        let message = Message::builder()
            .message_id("m-1")
            .receipt_handle("r-1")
            .body("{\"text\":\"🦀\"}")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "3")
            .build();
        let got = received(QueueName::Mentions, message).unwrap();
        assert_eq!(got.receive_count, 3);
        assert_eq!(got.body, "{\"text\":\"🦀\"}");
        let bare = Message::builder()
            .message_id("m-2")
            .receipt_handle("r")
            .build();
        assert!(matches!(
            received(QueueName::Mentions, bare),
            Err(QueueError::Backend {
                retryable: false,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn given_an_unconfigured_queue_then_not_configured_before_any_call() {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .build();
        let queue = SqsQueue::from_config(
            Client::from_conf(config),
            &QueueUrls {
                poll: Some("http://127.0.0.1:9/poll".to_owned()),
                ..QueueUrls::default()
            },
        );
        let err = queue
            .send_batch(QueueName::Events, &["x".to_owned()])
            .await
            .unwrap_err();
        assert!(matches!(err, QueueError::NotConfigured(QueueName::Events)));
        // Limits come first, so a bad batch never reaches the network either.
        let err = queue.send_batch(QueueName::Poll, &[]).await.unwrap_err();
        assert!(matches!(err, QueueError::EmptyBatch));
    }
}
