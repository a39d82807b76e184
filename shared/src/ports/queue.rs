//! The message queue port (SQS in the cloud, a SQLite table locally).

use std::fmt;

use jiff::SignedDuration;

use super::BoxError;

/// SQS accepts at most 10 messages per batch call.
pub const MAX_BATCH_MESSAGES: usize = 10;
/// SQS accepts at most 256 KiB per message and per batch (sum of bodies).
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// The longest delay SQS allows on a message (`DelaySeconds` ≤ 900):
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatchRequestEntry.html>.
pub const MAX_DELAY: SignedDuration = SignedDuration::from_secs(900);

/// Hark's queues and their dead-letter queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueueName {
    Poll,
    Mentions,
    Publish,
    Events,
    PollDlq,
    MentionsDlq,
    PublishDlq,
    EventsDlq,
}

impl QueueName {
    pub const MAIN: [QueueName; 4] = [
        QueueName::Poll,
        QueueName::Mentions,
        QueueName::Publish,
        QueueName::Events,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QueueName::Poll => "poll",
            QueueName::Mentions => "mentions",
            QueueName::Publish => "publish",
            QueueName::Events => "events",
            QueueName::PollDlq => "poll-dlq",
            QueueName::MentionsDlq => "mentions-dlq",
            QueueName::PublishDlq => "publish-dlq",
            QueueName::EventsDlq => "events-dlq",
        }
    }

    /// The dead-letter queue of a main queue (`None` for a DLQ itself).
    pub fn dead_letter(self) -> Option<QueueName> {
        match self {
            QueueName::Poll => Some(QueueName::PollDlq),
            QueueName::Mentions => Some(QueueName::MentionsDlq),
            QueueName::Publish => Some(QueueName::PublishDlq),
            QueueName::Events => Some(QueueName::EventsDlq),
            _ => None,
        }
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message taken from a queue; invisible to others until its visibility timeout ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    /// Handle for delete / change visibility of this receipt.
    pub receipt: String,
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// Failures of the queue port.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("a batch must hold at least one message")]
    EmptyBatch,
    #[error("a batch holds at most {MAX_BATCH_MESSAGES} messages, got {count}")]
    TooManyMessages { count: usize },
    #[error("a batch holds at most {MAX_BATCH_BYTES} bytes of message bodies, got {bytes}")]
    BatchTooLarge { bytes: usize },
    #[error("receive takes 1 to 10 messages at a time, asked for {asked}")]
    InvalidReceiveCount { asked: usize },
    #[error("visibility timeout must be 0 to 43200 seconds, got {seconds}")]
    InvalidVisibility { seconds: i64 },
    #[error("a message delay must be 0 to 900 seconds (SQS DelaySeconds), got {millis} ms")]
    InvalidDelay { millis: i64 },
    /// A queue (a test double) that cannot hold messages back was asked to.
    #[error("queue `{0}` cannot delay messages")]
    DelayUnsupported(QueueName),
    #[error("queue `{0}` is not configured")]
    NotConfigured(QueueName),
    #[error("the receipt handle is not valid (or the message was already deleted)")]
    InvalidReceipt,
    #[error("queue operation `{operation}` on `{queue}` failed")]
    Backend {
        operation: &'static str,
        queue: QueueName,
        retryable: bool,
        #[source]
        source: BoxError,
    },
}

/// Checks a batch against SQS's limits before it is sent, so both backends reject the same
/// batches with the same error.
pub fn check_batch(bodies: &[String]) -> Result<(), QueueError> {
    if bodies.is_empty() {
        return Err(QueueError::EmptyBatch);
    }
    if bodies.len() > MAX_BATCH_MESSAGES {
        return Err(QueueError::TooManyMessages {
            count: bodies.len(),
        });
    }
    let bytes: usize = bodies.iter().map(String::len).sum();
    if bytes > MAX_BATCH_BYTES {
        return Err(QueueError::BatchTooLarge { bytes });
    }
    Ok(())
}

/// SQS bills every started 64 KiB of a payload as one request: messages up to this size
/// cost the least per byte.
pub const BILLING_CHUNK_BYTES: usize = 64 * 1024;

/// Groups message bodies into batches that [`check_batch`] accepts (≤ 10 messages,
/// ≤ 256 KiB each), keeping their order. A body larger than [`MAX_BATCH_BYTES`] on its
/// own is returned in `Err` so the caller can report it instead of losing it.
pub fn pack_batches(bodies: Vec<String>) -> Result<Vec<Vec<String>>, QueueError> {
    let ranges = batch_ranges(bodies.iter().map(String::len))?;
    let mut bodies = bodies.into_iter();
    Ok(ranges
        .into_iter()
        .map(|r| bodies.by_ref().take(r.len()).collect())
        .collect())
}

/// The batches [`pack_batches`] would make, as index ranges over bodies of these lengths:
/// for callers that must know which bodies went together (whose messages a failed
/// `SendMessageBatch` held).
pub fn batch_ranges(
    lengths: impl IntoIterator<Item = usize>,
) -> Result<Vec<std::ops::Range<usize>>, QueueError> {
    let mut ranges = Vec::new();
    let (mut start, mut bytes, mut end) = (0, 0, 0);
    for len in lengths {
        if len > MAX_BATCH_BYTES {
            return Err(QueueError::BatchTooLarge { bytes: len });
        }
        if end - start == MAX_BATCH_MESSAGES || bytes + len > MAX_BATCH_BYTES {
            ranges.push(start..end);
            (start, bytes) = (end, 0);
        }
        bytes += len;
        end += 1;
    }
    if end > start {
        ranges.push(start..end);
    }
    Ok(ranges)
}

/// Checks a message delay against SQS's range and returns it in whole seconds, rounded up
/// (SQS counts whole seconds; rounding down would deliver a message early).
pub fn check_delay(delay: SignedDuration) -> Result<i32, QueueError> {
    if delay.is_negative() || delay > MAX_DELAY {
        return Err(QueueError::InvalidDelay {
            millis: i64::try_from(delay.as_millis()).unwrap_or(i64::MAX),
        });
    }
    let whole = delay.as_secs() + i64::from(delay.subsec_nanos() > 0);
    Ok(i32::try_from(whole).unwrap_or(900))
}

/// Checks receive arguments (same limits as SQS).
pub fn check_receive(max: usize, visibility: SignedDuration) -> Result<(), QueueError> {
    if !(1..=MAX_BATCH_MESSAGES).contains(&max) {
        return Err(QueueError::InvalidReceiveCount { asked: max });
    }
    let seconds = visibility.as_secs();
    if !(0..=43_200).contains(&seconds) {
        return Err(QueueError::InvalidVisibility { seconds });
    }
    Ok(())
}

/// A message queue with visibility timeouts, receive counts and dead-lettering after
/// the configured number of receives.
#[async_trait::async_trait]
pub trait MessageQueue: Send + Sync {
    /// Sends up to 10 messages (≤ 256 KiB in all), all or nothing from the caller's view.
    async fn send_batch(&self, queue: QueueName, bodies: &[String]) -> Result<(), QueueError>;

    /// Like [`send_batch`](Self::send_batch), but no receive returns the messages before
    /// `delay` (0 to [`MAX_DELAY`], checked by [`check_delay`]) has passed. A queue that
    /// cannot hold messages back accepts only a zero delay: sending early is never silent.
    async fn send_batch_delayed(
        &self,
        queue: QueueName,
        bodies: &[String],
        delay: SignedDuration,
    ) -> Result<(), QueueError> {
        if check_delay(delay)? > 0 {
            return Err(QueueError::DelayUnsupported(queue));
        }
        self.send_batch(queue, bodies).await
    }

    /// Takes up to `max` visible messages and hides them for `visibility`. A message whose
    /// receive count already reached the limit goes to the DLQ instead.
    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: SignedDuration,
    ) -> Result<Vec<ReceivedMessage>, QueueError>;

    async fn delete(&self, queue: QueueName, receipt: &str) -> Result<(), QueueError>;

    /// Makes a received message visible again after `visibility` (0 = now).
    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt: &str,
        visibility: SignedDuration,
    ) -> Result<(), QueueError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_limits_match_sqs() {
        assert!(matches!(check_batch(&[]), Err(QueueError::EmptyBatch)));
        let eleven = vec!["x".to_owned(); 11];
        assert!(matches!(
            check_batch(&eleven),
            Err(QueueError::TooManyMessages { count: 11 })
        ));
        let big = vec![
            "y".repeat(MAX_BATCH_BYTES / 2 + 1),
            "z".repeat(MAX_BATCH_BYTES / 2),
        ];
        assert!(matches!(
            check_batch(&big),
            Err(QueueError::BatchTooLarge { .. })
        ));
        let exact = vec![
            "y".repeat(MAX_BATCH_BYTES / 2),
            "z".repeat(MAX_BATCH_BYTES / 2),
        ];
        assert!(check_batch(&exact).is_ok());
    }

    #[test]
    fn given_body_lengths_then_batch_ranges_cover_them_in_order_within_both_limits() {
        let lengths = [
            100,
            MAX_BATCH_BYTES - 100,
            1,
            1,
            1,
            1,
            1,
            1,
            1,
            1,
            1,
            1,
            1,
            5,
        ];
        let ranges = batch_ranges(lengths).unwrap();
        // The second body fills the first batch exactly; eleven small ones split at ten.
        assert_eq!(ranges, [0..2, 2..12, 12..14]);
        for r in &ranges {
            assert!(r.len() <= MAX_BATCH_MESSAGES);
            assert!(lengths[r.clone()].iter().sum::<usize>() <= MAX_BATCH_BYTES);
        }
        assert!(batch_ranges([]).unwrap().is_empty());
        assert!(matches!(
            batch_ranges([1, MAX_BATCH_BYTES + 1]),
            Err(QueueError::BatchTooLarge { bytes }) if bytes == MAX_BATCH_BYTES + 1
        ));
    }

    #[test]
    fn packing_respects_both_limits_and_keeps_order() {
        let bodies: Vec<String> = (0..25).map(|i| format!("m{i}")).collect();
        let batches = pack_batches(bodies.clone()).unwrap();
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            [10, 10, 5]
        );
        assert_eq!(batches.concat(), bodies);
        let big: Vec<String> = (0..5).map(|_| "x".repeat(BILLING_CHUNK_BYTES)).collect();
        let batches = pack_batches(big).unwrap();
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [4, 1]);
        for b in &batches {
            assert!(check_batch(b).is_ok());
        }
        assert!(pack_batches(vec!["y".repeat(MAX_BATCH_BYTES + 1)]).is_err());
        assert!(pack_batches(vec![]).unwrap().is_empty());
    }

    #[test]
    fn given_a_delay_then_it_is_whole_seconds_rounded_up_within_sqs_range() {
        assert_eq!(check_delay(SignedDuration::ZERO).unwrap(), 0);
        assert_eq!(check_delay(SignedDuration::from_millis(1)).unwrap(), 1);
        assert_eq!(
            check_delay(SignedDuration::from_millis(14_500)).unwrap(),
            15
        );
        assert_eq!(check_delay(MAX_DELAY).unwrap(), 900);
        let err = check_delay(MAX_DELAY + SignedDuration::from_millis(1)).unwrap_err();
        assert!(matches!(err, QueueError::InvalidDelay { millis: 900_001 }));
        assert!(err.to_string().contains("0 to 900 seconds"), "{err}");
        assert!(check_delay(SignedDuration::from_secs(-1)).is_err());
    }

    #[test]
    fn receive_limits_match_sqs() {
        assert!(check_receive(0, SignedDuration::from_secs(30)).is_err());
        assert!(check_receive(11, SignedDuration::from_secs(30)).is_err());
        assert!(check_receive(10, SignedDuration::from_secs(43_201)).is_err());
        assert!(check_receive(1, SignedDuration::ZERO).is_ok());
    }
}
