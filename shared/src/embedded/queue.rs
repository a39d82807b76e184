//! The message queue on a SQLite table, with SQS's visibility timeouts and redrive.

use jiff::SignedDuration;
use rusqlite::{TransactionBehavior, params};

use super::{EmbeddedStore, SqlResultExt, unique_suffix};
use crate::ports::{
    MessageQueue, QueueError, QueueName, ReceivedMessage, check_batch, check_delay, check_receive,
};

/// Milliseconds of a (validated, at most 12 h) duration; negative sub-second values count
/// as zero.
fn millis(d: SignedDuration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(0)
}

impl EmbeddedStore {
    /// "Now" for the queue, in epoch milliseconds, from the injected clock.
    fn now_millis(&self) -> i64 {
        self.options.clock.now().as_millisecond()
    }
}

#[async_trait::async_trait]
impl MessageQueue for EmbeddedStore {
    async fn send_batch(&self, queue: QueueName, bodies: &[String]) -> Result<(), QueueError> {
        self.send_batch_delayed(queue, bodies, SignedDuration::ZERO)
            .await
    }

    /// The messages' `visible_at` is `now + delay`; `sent_at` stays the send instant.
    async fn send_batch_delayed(
        &self,
        queue: QueueName,
        bodies: &[String],
        delay: SignedDuration,
    ) -> Result<(), QueueError> {
        check_batch(bodies)?;
        check_delay(delay)?;
        let now = self.now_millis();
        let visible_at = now.saturating_add(millis(delay));
        self.with_conn(|conn| {
            // One transaction: the whole batch becomes visible at once, or none of it.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .queue_op("send_batch", queue)?;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO queue_messages (queue, body, visible_at, receive_count, sent_at)
                         VALUES (?1, ?2, ?3, 0, ?4)",
                    )
                    .queue_op("send_batch", queue)?;
                for body in bodies {
                    stmt.execute(params![queue.as_str(), body, visible_at, now])
                        .queue_op("send_batch", queue)?;
                }
            }
            tx.commit().queue_op("send_batch", queue)
        })
    }

    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: SignedDuration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        check_receive(max, visibility)?;
        let now = self.now_millis();
        let visible_at = now.saturating_add(millis(visibility));
        let max_receive_count = i64::from(self.options.max_receive_count);
        self.with_conn(|conn| {
            // IMMEDIATE: two receivers (tasks or processes) never take the same message.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .queue_op("receive", queue)?;
            let mut received = Vec::with_capacity(max);
            // Messages moved to the DLQ free their slot, so keep scanning (in send order,
            // past the last row seen: a zero visibility leaves taken rows visible) until
            // the batch is full or the queue has nothing visible left.
            let mut after_id = i64::MIN;
            while received.len() < max {
                let wanted = i64::try_from(max - received.len()).unwrap_or(1);
                let candidates: Vec<(i64, String, i64)> = {
                    let mut stmt = tx
                        .prepare_cached(
                            "SELECT id, body, receive_count FROM queue_messages
                             WHERE queue = ?1 AND visible_at <= ?2 AND id > ?3
                             ORDER BY id
                             LIMIT ?4",
                        )
                        .queue_op("receive", queue)?;
                    let rows = stmt
                        .query_map(params![queue.as_str(), now, after_id, wanted], |row| {
                            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                        })
                        .queue_op("receive", queue)?;
                    rows.collect::<Result<Vec<_>, _>>()
                        .queue_op("receive", queue)?
                };
                if candidates.is_empty() {
                    break;
                }
                for (id, body, receive_count) in candidates {
                    after_id = id;
                    if receive_count >= max_receive_count
                        && let Some(dlq) = queue.dead_letter()
                    {
                        // SQS redrive: the message already had its allowed receives.
                        tx.execute(
                            "UPDATE queue_messages
                                 SET queue = ?2, receive_count = 0, receipt = NULL,
                                     visible_at = ?3
                                 WHERE id = ?1",
                            params![id, dlq.as_str(), now],
                        )
                        .queue_op("receive", queue)?;
                        tracing::warn!(
                            queue = queue.as_str(),
                            dead_letter_queue = dlq.as_str(),
                            message_id = id,
                            receive_count,
                            "message moved to its dead-letter queue"
                        );
                        continue;
                    }
                    let receive_count = receive_count + 1;
                    let receipt = format!("{id}-{receive_count}-{}", unique_suffix());
                    tx.execute(
                        "UPDATE queue_messages
                         SET receive_count = ?2, receipt = ?3, visible_at = ?4
                         WHERE id = ?1",
                        params![id, receive_count, receipt, visible_at],
                    )
                    .queue_op("receive", queue)?;
                    received.push(ReceivedMessage {
                        message_id: id.to_string(),
                        receipt,
                        body,
                        receive_count: u32::try_from(receive_count).unwrap_or(u32::MAX),
                    });
                }
            }
            tx.commit().queue_op("receive", queue)?;
            Ok(received)
        })
    }

    async fn delete(&self, queue: QueueName, receipt: &str) -> Result<(), QueueError> {
        let deleted = self.with_conn(|conn| {
            conn.execute(
                "DELETE FROM queue_messages WHERE queue = ?1 AND receipt = ?2",
                params![queue.as_str(), receipt],
            )
            .queue_op("delete", queue)
        })?;
        if deleted == 0 {
            return Err(QueueError::InvalidReceipt);
        }
        Ok(())
    }

    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt: &str,
        visibility: SignedDuration,
    ) -> Result<(), QueueError> {
        // Same limits as a receive's visibility (SQS applies the same 0..=12 h range).
        check_receive(1, visibility)?;
        let visible_at = self.now_millis().saturating_add(millis(visibility));
        let changed = self.with_conn(|conn| {
            conn.execute(
                "UPDATE queue_messages SET visible_at = ?3 WHERE queue = ?1 AND receipt = ?2",
                params![queue.as_str(), receipt, visible_at],
            )
            .queue_op("change_visibility", queue)
        })?;
        if changed == 0 {
            return Err(QueueError::InvalidReceipt);
        }
        Ok(())
    }
}
