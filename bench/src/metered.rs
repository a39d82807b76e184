//! Counting decorators over the ports: every store call is counted as the DynamoDB request
//! the AWS adapter (`hark_shared::aws::DynamoStore`) makes for it, with read and write
//! units estimated from item sizes; every queue call as the SQS request(s) it bills; every
//! bus put as EventBridge events. The wrapped store may be either backend: the counts
//! depend on the calls and the data, not on where they land.
//!
//! Unit rules (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html>):
//! a write consumes 1 WRU per started 1 KB of the item (a failed conditional write still
//! consumes at least 1); a strongly consistent read 1 RRU per started 4 KB (of the item,
//! or of all items a query returns), an eventually consistent read half that, and a read
//! that finds nothing still 1 (or 0.5). SQS bills each started 64 KiB of a request's
//! payload as one request.

use std::collections::BTreeMap;
use std::sync::Mutex;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use hark_shared::actions::{BusEvent, EventBus};
use hark_shared::domain::{Cursor, Delivery, Mention, MentionKey};
use hark_shared::ports::{
    AggregateStore, BILLING_CHUNK_BYTES, BoxError, ConfigStore, Counters, CreateOutcome,
    CursorStore, DeliveryStore, EntityKind, FireOutcome, Firing, FiringRecord, HourBucket,
    MentionQuery, MentionStore, MessageQueue, Page, PutOutcome, QueueError, QueueName,
    ReceivedMessage, StoreError, TriggerState, TriggerStore,
};

/// Key attributes (`PK`, `SK`, `GSI1PK`, `GSI1SK`, `expires_at`, `type`) and their names
/// that every stored item carries besides its fields, in bytes (an estimate).
const KEY_OVERHEAD: usize = 160;

/// What the wrapped ports were asked to do, in billing terms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Usage {
    pub dynamo_requests: u64,
    pub write_units: f64,
    pub read_units: f64,
    pub sqs_requests: u64,
    /// SQS messages received (for Lambda invocation counts by batch size).
    pub sqs_messages_received: u64,
    pub bus_events: u64,
}

impl Usage {
    pub fn minus(&self, before: &Usage) -> Usage {
        Usage {
            dynamo_requests: self.dynamo_requests - before.dynamo_requests,
            write_units: self.write_units - before.write_units,
            read_units: self.read_units - before.read_units,
            sqs_requests: self.sqs_requests - before.sqs_requests,
            sqs_messages_received: self.sqs_messages_received - before.sqs_messages_received,
            bus_events: self.bus_events - before.bus_events,
        }
    }

    /// AWS requests (DynamoDB + SQS + EventBridge PutEvents calls, approximated by events).
    pub fn aws_requests(&self) -> u64 {
        self.dynamo_requests + self.sqs_requests + self.bus_events.div_ceil(10)
    }
}

/// A store, queue and bus with counters.
pub struct Metered<S> {
    pub inner: S,
    usage: Mutex<Usage>,
    /// DynamoDB requests and units by the operation the adapter would send.
    operations: Mutex<BTreeMap<&'static str, Operation>>,
}

/// Totals of one kind of DynamoDB request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Operation {
    pub requests: u64,
    pub write_units: f64,
    pub read_units: f64,
}

impl<S> Metered<S> {
    pub fn new(inner: S) -> Self {
        Metered {
            inner,
            usage: Mutex::new(Usage::default()),
            operations: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn operations(&self) -> BTreeMap<&'static str, Operation> {
        self.operations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The operations since `before` (an earlier [`Metered::operations`]).
    pub fn operations_since(
        &self,
        before: &BTreeMap<&'static str, Operation>,
    ) -> BTreeMap<&'static str, Operation> {
        let mut now = self.operations();
        for (name, op) in now.iter_mut() {
            if let Some(b) = before.get(name) {
                op.requests -= b.requests;
                op.write_units -= b.write_units;
                op.read_units -= b.read_units;
            }
        }
        now.retain(|_, op| op.requests > 0);
        now
    }

    fn operation(&self, name: &'static str, write: f64, read: f64) {
        let mut ops = self.operations.lock().unwrap_or_else(|p| p.into_inner());
        let op = ops.entry(name).or_default();
        op.requests += 1;
        op.write_units += write;
        op.read_units += read;
    }

    pub fn usage(&self) -> Usage {
        *self.usage.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, f: impl FnOnce(&mut Usage)) {
        f(&mut self.usage.lock().unwrap_or_else(|p| p.into_inner()));
    }

    fn write(&self, name: &'static str, bytes: usize) {
        let units = write_units(bytes);
        self.operation(name, units, 0.0);
        self.record(|u| {
            u.dynamo_requests += 1;
            u.write_units += units;
        });
    }

    /// One GetItem or one Query page returning `bytes` in all.
    fn read(&self, name: &'static str, bytes: usize, consistent: bool) {
        let units = read_units(bytes, consistent);
        self.operation(name, 0.0, units);
        self.record(|u| {
            u.dynamo_requests += 1;
            u.read_units += units;
        });
    }

    fn sqs(&self, payload: usize) {
        self.record(|u| u.sqs_requests += sqs_requests(payload));
    }
}

pub fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

pub fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

pub fn sqs_requests(payload: usize) -> u64 {
    payload.div_ceil(BILLING_CHUNK_BYTES).max(1) as u64
}

/// DynamoDB's size of a value as serde_dynamo stores it: strings by their UTF-8 bytes,
/// numbers about one byte per two digits plus one, maps and lists 3 bytes plus one per
/// element plus their contents (map keys count as attribute names).
pub fn dynamo_size(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) => 1,
        Value::Number(n) => n.to_string().len().div_ceil(2) + 1,
        Value::String(s) => s.len(),
        Value::Array(items) => 3 + items.iter().map(|i| 1 + dynamo_size(i)).sum::<usize>(),
        Value::Object(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + dynamo_size(v))
                .sum::<usize>()
        }
    }
}

/// The stored size of an item holding `value`'s fields plus Hark's key attributes.
pub fn item_size<T: Serialize>(value: &T) -> usize {
    let fields = match serde_json::to_value(value) {
        // Top-level attributes: no map overhead.
        Ok(Value::Object(map)) => map.iter().map(|(k, v)| k.len() + dynamo_size(v)).sum(),
        Ok(other) => dynamo_size(&other),
        Err(_) => 0,
    };
    fields + KEY_OVERHEAD
}

/// A configuration document is stored as JSON text.
fn document_size(doc: &Value) -> usize {
    doc.to_string().len() + KEY_OVERHEAD
}

#[async_trait::async_trait]
impl<S: ConfigStore> ConfigStore for Metered<S> {
    async fn get_document(&self, kind: EntityKind, id: &str) -> Result<Option<Value>, StoreError> {
        let doc = self.inner.get_document(kind, id).await?;
        self.read("get_document", doc.as_ref().map_or(0, document_size), true);
        Ok(doc)
    }

    async fn put_document(
        &self,
        kind: EntityKind,
        id: &str,
        doc: &Value,
    ) -> Result<(), StoreError> {
        self.write("put_document", document_size(doc));
        self.inner.put_document(kind, id, doc).await
    }

    /// One consistent Query over the kind's partition (1 MB pages).
    async fn list_documents(&self, kind: EntityKind) -> Result<Vec<Value>, StoreError> {
        let docs = self.inner.list_documents(kind).await?;
        let bytes: usize = docs.iter().map(document_size).sum();
        for _ in 0..bytes.div_ceil(1 << 20).max(1) {
            self.read("list_documents", bytes.min(1 << 20), true);
        }
        Ok(docs)
    }
}

#[async_trait::async_trait]
impl<S: CursorStore> CursorStore for Metered<S> {
    async fn get_cursor(&self, source_id: &str) -> Result<Option<Cursor>, StoreError> {
        let cursor = self.inner.get_cursor(source_id).await?;
        self.read("get_cursor", cursor.as_ref().map_or(0, item_size), true);
        Ok(cursor)
    }

    async fn save_cursor(&self, cursor: &Cursor) -> Result<Cursor, StoreError> {
        self.write("save_cursor", item_size(cursor));
        self.inner.save_cursor(cursor).await
    }
}

#[async_trait::async_trait]
impl<S: MentionStore> MentionStore for Metered<S> {
    /// The conditional main item, then one timeline copy per further campaign (a duplicate
    /// re-puts the copies conditionally, each a failed write of at least 1 unit).
    async fn put_mention(&self, mention: &Mention) -> Result<PutOutcome, StoreError> {
        let size = item_size(mention);
        let copies = mention.campaigns.len().saturating_sub(1);
        self.write("put_mention", size);
        for _ in 0..copies {
            self.write("put_mention (timeline copy)", size);
        }
        self.inner.put_mention(mention).await
    }

    async fn get_mention(&self, key: &MentionKey) -> Result<Option<Mention>, StoreError> {
        let m = self.inner.get_mention(key).await?;
        self.read("get_mention", m.as_ref().map_or(0, item_size), true);
        Ok(m)
    }

    async fn mention_expiry(&self, key: &MentionKey) -> Result<Option<i64>, StoreError> {
        self.read("mention_expiry", 1024, true);
        self.inner.mention_expiry(key).await
    }

    /// A Query on the GSI (eventually consistent: indexes offer nothing else).
    async fn list_mentions(
        &self,
        query: &MentionQuery,
        page: Option<&str>,
    ) -> Result<Page<Mention>, StoreError> {
        let p = self.inner.list_mentions(query, page).await?;
        self.read("list_mentions", p.items.iter().map(item_size).sum(), false);
        Ok(p)
    }
}

#[derive(Serialize)]
struct AggregateItem<'a> {
    bucket: (&'a str, &'a str, Timestamp),
    counters: &'a Counters,
}

#[async_trait::async_trait]
impl<S: AggregateStore> AggregateStore for Metered<S> {
    /// One UpdateItem with ADD.
    async fn add_counters(&self, bucket: &HourBucket, delta: &Counters) -> Result<(), StoreError> {
        self.write(
            "add_counters",
            item_size(&AggregateItem {
                bucket: (&bucket.campaign, bucket.platform.as_str(), bucket.hour),
                counters: delta,
            }),
        );
        self.inner.add_counters(bucket, delta).await
    }

    /// One consistent Query over the campaign's hours.
    async fn list_counters(
        &self,
        campaign: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(HourBucket, Counters)>, StoreError> {
        let rows = self.inner.list_counters(campaign, from, to).await?;
        let bytes = rows
            .iter()
            .map(|(b, c)| {
                item_size(&AggregateItem {
                    bucket: (&b.campaign, b.platform.as_str(), b.hour),
                    counters: c,
                })
            })
            .sum();
        self.read("list_counters", bytes, true);
        Ok(rows)
    }
}

#[async_trait::async_trait]
impl<S: DeliveryStore> DeliveryStore for Metered<S> {
    async fn create_delivery(&self, delivery: &Delivery) -> Result<CreateOutcome, StoreError> {
        self.write("create_delivery", item_size(delivery));
        self.inner.create_delivery(delivery).await
    }

    async fn get_delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        let d = self.inner.get_delivery(id).await?;
        self.read("get_delivery", d.as_ref().map_or(0, item_size), true);
        Ok(d)
    }

    async fn update_delivery(&self, delivery: &Delivery) -> Result<Delivery, StoreError> {
        self.write("update_delivery", item_size(delivery));
        self.inner.update_delivery(delivery).await
    }

    /// A Query on the due-time index (eventually consistent).
    async fn list_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let due = self.inner.list_due(now, limit).await?;
        self.read("list_due", due.iter().map(item_size).sum(), false);
        Ok(due)
    }

    /// A Query on the settle-time index (eventually consistent).
    async fn list_to_settle(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let due = self.inner.list_to_settle(now, limit).await?;
        self.read("list_to_settle", due.iter().map(item_size).sum(), false);
        Ok(due)
    }

    async fn list_deliveries(&self, post_id: Option<&str>) -> Result<Vec<Delivery>, StoreError> {
        let all = self.inner.list_deliveries(post_id).await?;
        self.read("list_deliveries", all.iter().map(item_size).sum(), true);
        Ok(all)
    }
}

#[async_trait::async_trait]
impl<S: TriggerStore> TriggerStore for Metered<S> {
    async fn fire_once(&self, firing: &Firing) -> Result<FireOutcome, StoreError> {
        self.write("fire_once", KEY_OVERHEAD + firing.event.len() + 120);
        self.inner.fire_once(firing).await
    }

    async fn trigger_state(
        &self,
        campaign: &str,
        rule: &str,
    ) -> Result<Option<TriggerState>, StoreError> {
        let s = self.inner.trigger_state(campaign, rule).await?;
        self.read("trigger_state", s.as_ref().map_or(0, item_size), true);
        Ok(s)
    }

    async fn mark_announced(
        &self,
        campaign: &str,
        rule: &str,
        window_start: Timestamp,
    ) -> Result<(), StoreError> {
        self.write("mark_announced", KEY_OVERHEAD + 200);
        self.inner
            .mark_announced(campaign, rule, window_start)
            .await
    }

    async fn record_firing(&self, record: &FiringRecord) -> Result<(), StoreError> {
        self.write("record_firing", item_size(record));
        self.inner.record_firing(record).await
    }

    async fn list_firings(&self, campaign: &str) -> Result<Vec<FiringRecord>, StoreError> {
        let all = self.inner.list_firings(campaign).await?;
        self.read("list_firings", all.iter().map(item_size).sum(), true);
        Ok(all)
    }

    async fn take_budget(
        &self,
        key: &str,
        limit: u32,
        expires_at: Timestamp,
        taker: Option<&str>,
    ) -> Result<bool, StoreError> {
        // A named taker is written into the budget item's set of takers too.
        self.write(
            "take_budget",
            KEY_OVERHEAD + key.len() + taker.map_or(0, str::len),
        );
        self.inner.take_budget(key, limit, expires_at, taker).await
    }
}

#[async_trait::async_trait]
impl<S: MessageQueue> MessageQueue for Metered<S> {
    /// One SendMessageBatch, billed per started 64 KiB of the batch.
    async fn send_batch(&self, queue: QueueName, bodies: &[String]) -> Result<(), QueueError> {
        self.sqs(bodies.iter().map(String::len).sum());
        self.inner.send_batch(queue, bodies).await
    }

    /// What Lambda's event source mapping does for a batch: one ReceiveMessage (billed by
    /// payload) and, once handled, one DeleteMessageBatch. Empty receives are the idle
    /// polling of the mapping, not per-mention work, and are not counted.
    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: jiff::SignedDuration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let messages = self.inner.receive(queue, max, visibility).await?;
        if !messages.is_empty() {
            self.sqs(messages.iter().map(|m| m.body.len()).sum());
            self.sqs(0);
            self.record(|u| u.sqs_messages_received += messages.len() as u64);
        }
        Ok(messages)
    }

    /// Counted with the batch's receive (one DeleteMessageBatch per batch).
    async fn delete(&self, queue: QueueName, receipt: &str) -> Result<(), QueueError> {
        self.inner.delete(queue, receipt).await
    }

    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt: &str,
        visibility: jiff::SignedDuration,
    ) -> Result<(), QueueError> {
        self.sqs(0);
        self.inner
            .change_visibility(queue, receipt, visibility)
            .await
    }
}

#[async_trait::async_trait]
impl<S: EventBus> EventBus for Metered<S> {
    /// EventBridge bills each started 64 KB of an event as one event.
    async fn put(&self, events: &[BusEvent]) -> Result<(), BoxError> {
        let n: u64 = events
            .iter()
            .map(|e| sqs_requests(e.detail.len() + e.detail_type.len() + e.source.len()))
            .sum();
        self.record(|u| u.bus_events += n);
        self.inner.put(events).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_item_sizes_when_units_are_estimated_then_they_follow_the_published_rounding() {
        assert_eq!(write_units(0), 1.0);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
        assert_eq!(read_units(4096, true), 1.0);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(100, false), 0.5);
        assert_eq!(sqs_requests(0), 1);
        assert_eq!(sqs_requests(64 * 1024), 1);
        assert_eq!(sqs_requests(64 * 1024 + 1), 2);
    }

    #[tokio::test]
    async fn given_a_mention_put_twice_when_metered_then_both_writes_count_and_the_duplicate_is_kept_once()
     {
        use hark_shared::clock::SystemClock;
        use hark_shared::domain::{Author, Engagement, Platform};
        use hark_shared::embedded::{EmbeddedOptions, EmbeddedStore};

        let store = Metered::new(
            EmbeddedStore::open_in_memory(EmbeddedOptions {
                retention_days: 30,
                max_receive_count: 3,
                clock: std::sync::Arc::new(SystemClock),
            })
            .unwrap(),
        );
        let mention = Mention {
            platform: Platform::Mastodon,
            native_id: "1".into(),
            url: "https://remote.example/@a/1".into(),
            author: Author {
                handle: "a@remote.example".into(),
                display_name: None,
                followers: None,
                url: None,
            },
            text: "x".repeat(2000),
            created_at: Timestamp::now(),
            lang: None,
            sentiment: None,
            engagement: Engagement::default(),
            campaigns: vec!["c1".into(), "c2".into()],
            source_id: None,
        };
        assert_eq!(
            store.put_mention(&mention).await.unwrap(),
            PutOutcome::Inserted
        );
        assert_eq!(
            store.put_mention(&mention).await.unwrap(),
            PutOutcome::AlreadyExists
        );
        let usage = store.usage();
        // Each put: the main item and one timeline copy, each over 2 KB → 3 units.
        assert_eq!(usage.dynamo_requests, 4);
        assert_eq!(usage.write_units, 12.0);
        let ops = store.operations();
        assert_eq!(ops["put_mention"].requests, 2);
        assert_eq!(ops["put_mention (timeline copy)"].requests, 2);
        let key = mention.key();
        assert!(store.inner.get_mention(&key).await.unwrap().is_some());
    }

    #[test]
    fn given_a_json_value_when_sized_then_names_strings_and_numbers_count_as_dynamodb_does() {
        let v = serde_json::json!({ "ab": "xyz", "n": 12345 });
        // 3 (map) + (1 + 2 + 3) + (1 + 1 + 4)
        assert_eq!(dynamo_size(&v), 15);
    }
}
