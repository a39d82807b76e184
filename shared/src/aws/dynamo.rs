//! [`DynamoStore`]: every storage port on Hark's single DynamoDB table.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use super::is_retryable;
use super::keys::{self, ItemKey};
use super::records::{self, AggregateRecord, Attributes};
use crate::domain::{Cursor, Delivery, DeliveryStatus, Mention, MentionKey, Platform};
use crate::ports::{
    AggregateStore, ConfigStore, Counters, CreateOutcome, CursorStore, DeliveryStore, EntityKind,
    FireOutcome, Firing, FiringRecord, HourBucket, MentionQuery, MentionStore, Page, PutOutcome,
    StoreError, TriggerState, TriggerStore,
};

/// The largest page asked of DynamoDB (the port's limit; DynamoDB also stops at 1 MB).
const MAX_PAGE: usize = 1000;

/// The storage ports on one DynamoDB table (see `keys` for the layout). Cheap to clone:
/// the SDK client is shared.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: Arc<str>,
    retention_days: u32,
}

impl fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoStore")
            .field("table", &self.table)
            .field("retention_days", &self.retention_days)
            .finish_non_exhaustive()
    }
}

/// What a conditional write did.
enum Written {
    Yes,
    /// The condition failed; the stored item when DynamoDB returned it (`ALL_OLD`).
    ConditionFailed(Option<Attributes>),
}

impl DynamoStore {
    /// A store on `table` (created by the SAM template or [`super::bootstrap::ensure_table`]).
    /// Mentions expire `retention_days` after they were created (DynamoDB TTL).
    /// Every instant it stores comes from the caller (`created_at`, `now`, `due_at`).
    pub fn new(client: Client, table: impl Into<String>, retention_days: u32) -> Self {
        DynamoStore {
            client,
            table: Arc::from(table.into()),
            retention_days,
        }
    }

    async fn get(
        &self,
        operation: &'static str,
        key: &ItemKey,
    ) -> Result<Option<Attributes>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&*self.table)
            .set_key(Some(key.to_attributes()))
            // Read-your-writes: callers read, then write conditionally on what they read.
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend(operation, e))?;
        Ok(output.item)
    }

    /// PutItem with a condition. On failure, DynamoDB hands back the stored item
    /// (`ReturnValuesOnConditionCheckFailure`), which saves a read to tell why.
    async fn put_if(
        &self,
        operation: &'static str,
        item: Attributes,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Written, StoreError> {
        let mut request = self
            .client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if condition.contains("#version") {
            request = request.expression_attribute_names("#version", "version");
        }
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        match request.send().await {
            Ok(_) => Ok(Written::Yes),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(e)) => {
                    Ok(Written::ConditionFailed(e.item().cloned()))
                }
                _ => Err(backend(operation, err)),
            },
        }
    }

    /// Puts an item unless one with its key exists.
    async fn put_new(
        &self,
        operation: &'static str,
        item: Attributes,
    ) -> Result<Written, StoreError> {
        self.put_if(operation, item, "attribute_not_exists(PK)", Vec::new())
            .await
    }

    /// Puts an item if the stored `version` equals `expected`.
    async fn put_versioned(
        &self,
        operation: &'static str,
        item: Attributes,
        expected: u64,
    ) -> Result<Written, StoreError> {
        self.put_if(
            operation,
            item,
            "#version = :expected",
            vec![(":expected", AttributeValue::N(expected.to_string()))],
        )
        .await
    }

    /// Runs a query to its last page (DynamoDB stops each page at 1 MB or `Limit`).
    async fn query_all(
        &self,
        operation: &'static str,
        query: QueryFluentBuilder,
    ) -> Result<Vec<Attributes>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let output = query
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| backend(operation, e))?;
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// Writes the timeline copies of a mention; a copy that exists already is kept.
    async fn put_timeline_copies(&self, copies: Vec<Attributes>) -> Result<(), StoreError> {
        for copy in copies {
            self.put_new("PutItem mention timeline", copy).await?;
        }
        Ok(())
    }
}

/// Maps an SDK failure, keeping it as the source.
fn backend<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    StoreError::Backend {
        operation,
        retryable: is_retryable(&err),
        source: Box::new(err),
    }
}

/// An UpdateExpression under construction. Every attribute name and value goes through a
/// placeholder, so reserved words (`hour`, `rule`…) and any characters are safe:
/// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ReservedWords.html>.
#[derive(Default)]
struct Update {
    set: Vec<String>,
    add: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Update {
    fn name(&mut self, attribute: &str) -> String {
        let next = format!("#n{}", self.names.len());
        self.names
            .entry(attribute.to_owned())
            .or_insert(next)
            .clone()
    }

    fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    fn set(&mut self, attribute: &str, value: AttributeValue) {
        let (n, v) = (self.name(attribute), self.value(value));
        self.set.push(format!("{n} = {v}"));
    }

    fn set_if_not_exists(&mut self, attribute: &str, value: AttributeValue) {
        let (n, v) = (self.name(attribute), self.value(value));
        self.set.push(format!("{n} = if_not_exists({n}, {v})"));
    }

    fn add(&mut self, attribute: &str, value: AttributeValue) {
        let (n, v) = (self.name(attribute), self.value(value));
        self.add.push(format!("{n} {v}"));
    }

    fn expression(&self) -> String {
        let mut clauses = Vec::new();
        if !self.set.is_empty() {
            clauses.push(format!("SET {}", self.set.join(", ")));
        }
        if !self.add.is_empty() {
            clauses.push(format!("ADD {}", self.add.join(", ")));
        }
        clauses.join(" ")
    }

    /// Placeholder → attribute name, as the request wants it.
    fn attribute_names(&self) -> HashMap<String, String> {
        self.names
            .iter()
            .map(|(attribute, placeholder)| (placeholder.clone(), attribute.clone()))
            .collect()
    }
}

/// The attributes of an item in name order (stable expressions, stable placeholders).
fn sorted(item: Attributes) -> BTreeMap<String, AttributeValue> {
    item.into_iter().collect()
}

fn number(n: impl fmt::Display) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

// ------------------------------------------------------------------ cursors

#[async_trait]
impl CursorStore for DynamoStore {
    async fn get_cursor(&self, source_id: &str) -> Result<Option<Cursor>, StoreError> {
        self.get("GetItem cursor", &keys::cursor(source_id))
            .await?
            .map(|item| records::decode("cursor", item))
            .transpose()
    }

    async fn save_cursor(&self, cursor: &Cursor) -> Result<Cursor, StoreError> {
        let mut next = cursor.clone();
        next.version = cursor.version + 1;
        let mut item = records::encode("cursor", &cursor.source_id, &next)?;
        keys::cursor(&cursor.source_id).add_to(&mut item);
        let written = if cursor.version == 0 {
            self.put_new("PutItem cursor", item).await?
        } else {
            self.put_versioned("PutItem cursor", item, cursor.version)
                .await?
        };
        match written {
            Written::Yes => Ok(next),
            Written::ConditionFailed(_) => Err(StoreError::Conflict {
                entity: "cursor",
                id: cursor.source_id.clone(),
                expected: cursor.version,
            }),
        }
    }
}

// ------------------------------------------------------------------ mentions

#[async_trait]
impl MentionStore for DynamoStore {
    /// The main item goes first, conditionally: its key is the dedupe, and a rejected
    /// duplicate must leave no trace (not even on a new campaign's timeline). Then one copy
    /// per further campaign. A crash between the two is repaired by the next put of the same
    /// mention, which completes the copies from the *stored* item. No transaction: it would
    /// double the write cost of every mention.
    async fn put_mention(&self, mention: &Mention) -> Result<PutOutcome, StoreError> {
        let items = records::mention_items(mention, self.retention_days)?;
        match self.put_new("PutItem mention", items.main).await? {
            Written::Yes => {
                self.put_timeline_copies(items.copies).await?;
                Ok(PutOutcome::Inserted)
            }
            Written::ConditionFailed(stored) => {
                if let Some(stored) = stored {
                    self.repair_timeline_copies(stored).await?;
                }
                Ok(PutOutcome::AlreadyExists)
            }
        }
    }

    async fn get_mention(&self, key: &MentionKey) -> Result<Option<Mention>, StoreError> {
        self.get(
            "GetItem mention",
            &keys::mention(key.platform, &key.native_id),
        )
        .await?
        .map(|item| records::decode("mention", item))
        .transpose()
    }

    async fn mention_expiry(&self, key: &MentionKey) -> Result<Option<i64>, StoreError> {
        match self
            .get(
                "GetItem mention",
                &keys::mention(key.platform, &key.native_id),
            )
            .await?
        {
            Some(item) => records::expires_at(&item),
            None => Ok(None),
        }
    }

    async fn list_mentions(
        &self,
        query: &MentionQuery,
        page: Option<&str>,
    ) -> Result<Page<Mention>, StoreError> {
        let timeline = keys::timeline(&query.timeline);
        let Some(range) = keys::timeline_range(query.from, query.to) else {
            // DynamoDB rejects BETWEEN with lo > hi; an empty range has nothing to list.
            if page.is_some() {
                return Err(StoreError::InvalidPageToken);
            }
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        };
        let start = match page {
            None => None,
            Some(token) => Some(
                keys::decode_page_token(token, &timeline, &range)
                    .ok_or(StoreError::InvalidPageToken)?,
            ),
        };
        let limit = query.limit.clamp(1, MAX_PAGE);
        let output = self
            .client
            .query()
            .table_name(&*self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :timeline AND GSI1SK BETWEEN :lo AND :hi")
            .expression_attribute_values(":timeline", AttributeValue::S(timeline))
            .expression_attribute_values(":lo", AttributeValue::S(range.lo))
            .expression_attribute_values(":hi", AttributeValue::S(range.hi))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| backend("Query mentions", e))?;
        let items = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| records::decode("mention", item))
            .collect::<Result<Vec<Mention>, _>>()?;
        let next =
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => Some(keys::encode_page_token(&key).map_err(
                    |e| StoreError::Backend {
                        operation: "Query mentions",
                        retryable: false,
                        source: Box::new(e),
                    },
                )?),
                _ => None,
            };
        Ok(Page { items, next })
    }
}

impl DynamoStore {
    /// Completes the timeline copies of a stored mention (after a crash between its main
    /// item and its copies). Costs nothing for single-campaign mentions.
    async fn repair_timeline_copies(&self, stored: Attributes) -> Result<(), StoreError> {
        let mention: Mention = match records::decode("mention", stored.clone()) {
            Ok(mention) => mention,
            Err(err) => {
                // The duplicate is still a duplicate; the unreadable item shows on reads.
                tracing::warn!(error = %err, "stored mention is not readable; copies not repaired");
                return Ok(());
            }
        };
        let copies = records::timeline_copies(&stored, &mention);
        self.put_timeline_copies(copies).await
    }
}

// ------------------------------------------------------------------ aggregates

/// The identity attributes of an aggregate item, set once.
#[derive(Serialize)]
struct AggregateIdentity<'a> {
    campaign: &'a str,
    platform: Platform,
    hour: Timestamp,
}

#[async_trait]
impl AggregateStore for DynamoStore {
    /// One UpdateItem: `ADD` is atomic per item, so concurrent adds never lose a count.
    async fn add_counters(&self, bucket: &HourBucket, delta: &Counters) -> Result<(), StoreError> {
        let key = keys::aggregate(bucket);
        let identity = AggregateIdentity {
            campaign: &bucket.campaign,
            platform: bucket.platform,
            hour: bucket.hour,
        };
        let mut update = Update::default();
        for (name, value) in sorted(records::encode("aggregate", &key.pk, &identity)?) {
            update.set_if_not_exists(&name, value);
        }
        // Every counter, zeros too: the item then always has all of them.
        for (name, value) in sorted(records::encode("aggregate", &key.pk, delta)?) {
            update.add(&name, value);
        }
        self.client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(key.to_attributes()))
            .update_expression(update.expression())
            .set_expression_attribute_names(Some(update.attribute_names()))
            .set_expression_attribute_values(Some(update.values))
            .send()
            .await
            .map_err(|e| backend("UpdateItem aggregate", e))?;
        Ok(())
    }

    async fn list_counters(
        &self,
        campaign: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(HourBucket, Counters)>, StoreError> {
        let Some(range) = keys::aggregate_range(from, to) else {
            return Ok(Vec::new());
        };
        let query = self
            .client
            .query()
            .table_name(&*self.table)
            .key_condition_expression("PK = :pk AND SK BETWEEN :lo AND :hi")
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(keys::aggregate_partition(campaign)),
            )
            .expression_attribute_values(":lo", AttributeValue::S(range.lo))
            .expression_attribute_values(":hi", AttributeValue::S(range.hi))
            .consistent_read(true);
        // The sort key orders by hour, then platform name.
        self.query_all("Query aggregates", query)
            .await?
            .into_iter()
            .map(|item| {
                records::decode::<AggregateRecord>("aggregate", item)
                    .map(AggregateRecord::into_bucket)
            })
            .collect()
    }
}

// ------------------------------------------------------------------ configuration

#[async_trait]
impl ConfigStore for DynamoStore {
    async fn get_document(&self, kind: EntityKind, id: &str) -> Result<Option<Value>, StoreError> {
        match self.get("GetItem config", &keys::config(kind, id)).await? {
            Some(item) => read_document(kind, id, &item).map(Some),
            None => Ok(None),
        }
    }

    /// The document is stored as JSON text: DynamoDB numbers drop the difference between
    /// `3` and `3.0`, which would make every upsert of a float field look like a change.
    async fn put_document(
        &self,
        kind: EntityKind,
        id: &str,
        doc: &Value,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(doc).map_err(|e| StoreError::Corrupt {
            entity: kind.as_str(),
            id: id.to_owned(),
            source: Box::new(e),
        })?;
        let mut item = Attributes::new();
        keys::config(kind, id).add_to(&mut item);
        item.insert(records::CONFIG_DOC.to_owned(), AttributeValue::S(json));
        self.client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| backend("PutItem config", e))?;
        Ok(())
    }

    async fn list_documents(&self, kind: EntityKind) -> Result<Vec<Value>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&*self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(keys::config_partition(kind)))
            .consistent_read(true);
        // The sort key is the id: DynamoDB returns them in id order.
        self.query_all("Query config", query)
            .await?
            .iter()
            .map(|item| {
                let id = match item.get(keys::SK) {
                    Some(AttributeValue::S(id)) => id.as_str(),
                    _ => "?",
                };
                read_document(kind, id, item)
            })
            .collect()
    }
}

fn read_document(kind: EntityKind, id: &str, item: &Attributes) -> Result<Value, StoreError> {
    let corrupt = |source: crate::ports::BoxError| StoreError::Corrupt {
        entity: kind.as_str(),
        id: id.to_owned(),
        source,
    };
    match item.get(records::CONFIG_DOC) {
        Some(AttributeValue::S(json)) => {
            serde_json::from_str(json).map_err(|e| corrupt(Box::new(e)))
        }
        _ => Err(corrupt(Box::new(MissingDocument))),
    }
}

/// A configuration item without its JSON `doc` string.
#[derive(Debug, thiserror::Error)]
#[error("the item has no `doc` string attribute")]
struct MissingDocument;

// ------------------------------------------------------------------ deliveries

impl DynamoStore {
    /// The deliveries of one GSI1 partition (`DUE#QUEUED` or `SETTLE`) sorted at or before
    /// `now`, earliest first, at most `limit`. A GSI is eventually consistent: entries that
    /// lag behind a write are re-checked with `still` on the item itself and skipped.
    async fn query_index_until(
        &self,
        partition: &str,
        now: Timestamp,
        limit: usize,
        still: impl Fn(&Delivery) -> bool,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut found = Vec::new();
        let mut start = None;
        while found.len() < limit {
            let page = (limit - found.len()).min(MAX_PAGE);
            let output = self
                .client
                .query()
                .table_name(&*self.table)
                .index_name(keys::GSI1)
                .key_condition_expression("GSI1PK = :partition AND GSI1SK <= :until")
                .expression_attribute_values(":partition", AttributeValue::S(partition.to_owned()))
                .expression_attribute_values(":until", AttributeValue::S(keys::due_until(now)))
                .limit(i32::try_from(page).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| backend("Query delivery index", e))?;
            for item in output.items.unwrap_or_default() {
                let delivery: Delivery = records::decode("delivery", item)?;
                if still(&delivery) {
                    found.push(delivery);
                }
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        found.truncate(limit);
        Ok(found)
    }
}

#[async_trait]
impl DeliveryStore for DynamoStore {
    async fn create_delivery(&self, delivery: &Delivery) -> Result<CreateOutcome, StoreError> {
        let mut first = delivery.clone();
        first.version = 1;
        let item = records::delivery_item(&first)?;
        match self.put_new("PutItem delivery", item).await? {
            Written::Yes => Ok(CreateOutcome::Created),
            Written::ConditionFailed(_) => Ok(CreateOutcome::AlreadyExists),
        }
    }

    async fn get_delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        self.get("GetItem delivery", &keys::delivery(id))
            .await?
            .map(|item| records::decode("delivery", item))
            .transpose()
    }

    /// Replaces the whole item (a put, not an update), so the due-index keys come and go
    /// with the QUEUED state.
    async fn update_delivery(&self, delivery: &Delivery) -> Result<Delivery, StoreError> {
        let mut next = delivery.clone();
        next.version = delivery.version + 1;
        let item = records::delivery_item(&next)?;
        match self
            .put_versioned("PutItem delivery", item, delivery.version)
            .await?
        {
            Written::Yes => Ok(next),
            Written::ConditionFailed(Some(_)) => Err(StoreError::Conflict {
                entity: "delivery",
                id: delivery.id.clone(),
                expected: delivery.version,
            }),
            Written::ConditionFailed(None) => Err(StoreError::NotFound {
                entity: "delivery",
                id: delivery.id.clone(),
            }),
        }
    }

    async fn list_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.query_index_until(keys::DUE_QUEUED, now, limit, |d| {
            d.status() == DeliveryStatus::Queued && d.due_at <= now
        })
        .await
    }

    async fn list_to_settle(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.query_index_until(keys::SETTLE, now, limit, |d| {
            d.settle_at().is_some_and(|at| at <= now)
        })
        .await
    }

    /// A filtered Scan: an operator command (`hark posts`), not a hot path, so it does not
    /// earn an index of its own.
    async fn list_deliveries(&self, post_id: Option<&str>) -> Result<Vec<Delivery>, StoreError> {
        let mut filter = "SK = :sk AND begins_with(PK, :prefix)".to_owned();
        let mut scan = self
            .client
            .scan()
            .table_name(&*self.table)
            .expression_attribute_values(":sk", AttributeValue::S(keys::DELIVERY_SK.to_owned()))
            .expression_attribute_values(
                ":prefix",
                AttributeValue::S(keys::DELIVERY_PREFIX.to_owned()),
            )
            .consistent_read(true);
        if let Some(post_id) = post_id {
            filter.push_str(" AND post_id = :post");
            scan = scan.expression_attribute_values(":post", AttributeValue::S(post_id.to_owned()));
        }
        let scan = scan.filter_expression(filter);
        let mut deliveries = Vec::new();
        let mut start = None;
        loop {
            let output = scan
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| backend("Scan deliveries", e))?;
            for item in output.items.unwrap_or_default() {
                deliveries.push(records::decode::<Delivery>("delivery", item)?);
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        deliveries.sort_by(|a, b| (a.due_at, &a.id).cmp(&(b.due_at, &b.id)));
        Ok(deliveries)
    }
}

// ------------------------------------------------------------------ trigger state

#[async_trait]
impl TriggerStore for DynamoStore {
    /// One conditional UpdateItem: of concurrent callers exactly one passes the condition.
    async fn fire_once(&self, firing: &Firing) -> Result<FireOutcome, StoreError> {
        let key = keys::trigger(&firing.campaign, &firing.rule);
        let state = TriggerState {
            campaign: firing.campaign.clone(),
            rule: firing.rule.clone(),
            window_start: firing.window_start,
            fired_at: firing.now,
            cooldown_until: firing.cooldown_until,
            fired_count: 1,
            pending_event: Some(firing.event.clone()),
        };
        let mut update = Update::default();
        for (name, value) in sorted(records::encode("trigger", &key.pk, &state)?) {
            if name == "fired_count" {
                update.add(&name, value);
            } else {
                update.set(&name, value);
            }
        }
        let window_start_ns = number(firing.window_start.as_nanosecond());
        update.set(keys::WINDOW_START_NS, window_start_ns.clone());
        update.set(
            keys::COOLDOWN_UNTIL_NS,
            number(firing.cooldown_until.as_nanosecond()),
        );
        let condition = format!(
            "attribute_not_exists({pk}) OR ({window} < {new_window} AND {cooldown} <= {now})",
            pk = update.name(keys::PK),
            window = update.name(keys::WINDOW_START_NS),
            new_window = update.value(window_start_ns),
            cooldown = update.name(keys::COOLDOWN_UNTIL_NS),
            now = update.value(number(firing.now.as_nanosecond())),
        );
        let result = self
            .client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(key.to_attributes()))
            .update_expression(update.expression())
            .condition_expression(condition)
            .set_expression_attribute_names(Some(update.attribute_names()))
            .set_expression_attribute_values(Some(update.values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(FireOutcome::Fired),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => {
                    Ok(FireOutcome::Suppressed)
                }
                _ => Err(backend("UpdateItem trigger", err)),
            },
        }
    }

    async fn trigger_state(
        &self,
        campaign: &str,
        rule: &str,
    ) -> Result<Option<TriggerState>, StoreError> {
        self.get("GetItem trigger", &keys::trigger(campaign, rule))
            .await?
            .map(|item| records::decode("trigger", item))
            .transpose()
    }

    async fn mark_announced(
        &self,
        campaign: &str,
        rule: &str,
        window_start: Timestamp,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(keys::trigger(campaign, rule).to_attributes()))
            .update_expression("REMOVE #pending")
            .condition_expression("#window = :window")
            .expression_attribute_names("#pending", "pending_event")
            .expression_attribute_names("#window", keys::WINDOW_START_NS)
            .expression_attribute_values(":window", number(window_start.as_nanosecond()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match err.as_service_error() {
                // A newer firing (or none): its own pending event stays.
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(()),
                _ => Err(backend("UpdateItem trigger announced", err)),
            },
        }
    }

    async fn record_firing(&self, record: &FiringRecord) -> Result<(), StoreError> {
        let key = keys::firing(&record.campaign, record.window_start, &record.rule);
        let mut item = records::encode("firing", &key.sk, record)?;
        key.add_to(&mut item);
        self.client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| backend("PutItem firing", e))?;
        Ok(())
    }

    async fn list_firings(&self, campaign: &str) -> Result<Vec<FiringRecord>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&*self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(keys::firings_pk(campaign)));
        self.query_all("Query firings", query)
            .await?
            .into_iter()
            .map(|item| records::decode("firing", item))
            .collect()
    }

    /// One UpdateItem: the count and, for a named taker, the set of takers change together
    /// under one condition, so concurrent callers never pass more than `limit` times and a
    /// taker passes once. A named taker that is turned away is told from the item DynamoDB
    /// returns with the failure whether it holds a unit already.
    async fn take_budget(
        &self,
        key: &str,
        limit: u32,
        expires_at: Timestamp,
        taker: Option<&str>,
    ) -> Result<bool, StoreError> {
        let item_key = keys::budget(key);
        if limit == 0 {
            // Nothing can be taken; a taker may still hold a unit taken under a larger limit.
            return match taker {
                None => Ok(false),
                Some(taker) => Ok(holds_unit(
                    self.get("GetItem budget", &item_key).await?.as_ref(),
                    taker,
                )),
            };
        }
        let under_limit = "(attribute_not_exists(PK) OR #used < :limit)";
        let mut request = self
            .client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(item_key.to_attributes()))
            .expression_attribute_names("#used", "used")
            .expression_attribute_names("#expires", keys::EXPIRES_AT)
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":limit", number(limit))
            .expression_attribute_values(":expires", number(expires_at.as_second()));
        request = match taker {
            None => request
                .update_expression("ADD #used :one SET #expires = :expires")
                .condition_expression(under_limit),
            // `contains` on a missing set is false, but the explicit
            // `attribute_not_exists` says what a fresh budget (no item, or an item counted
            // only by unnamed takers) means without relying on that.
            Some(taker) => {
                let new_taker = "attribute_not_exists(#takers) OR NOT contains(#takers, :name)";
                request
                    .update_expression("ADD #used :one, #takers :taker SET #expires = :expires")
                    .condition_expression(format!("{under_limit} AND ({new_taker})"))
                    .expression_attribute_names("#takers", BUDGET_TAKERS)
                    .expression_attribute_values(":taker", AttributeValue::Ss(vec![taker.into()]))
                    .expression_attribute_values(":name", AttributeValue::S(taker.to_owned()))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
            }
        };
        let stored = match request.send().await {
            Ok(_) => return Ok(true),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(e)) => e.item().cloned(),
                _ => return Err(backend("UpdateItem budget", err)),
            },
        };
        let Some(taker) = taker else {
            return Ok(false);
        };
        // The condition failed, so the item exists. Some emulators do not return it with the
        // failure; then read it (consistently: the write that filled it may be a moment old).
        let stored = match stored {
            Some(item) => Some(item),
            None => self.get("GetItem budget", &item_key).await?,
        };
        Ok(holds_unit(stored.as_ref(), taker))
    }
}

/// The string set of the takers that hold a unit of a budget (named takers only).
const BUDGET_TAKERS: &str = "takers";

/// Whether the budget item lists `taker` among the holders of a unit.
fn holds_unit(item: Option<&Attributes>, taker: &str) -> bool {
    matches!(
        item.and_then(|item| item.get(BUDGET_TAKERS)),
        Some(AttributeValue::Ss(takers)) if takers.iter().any(|t| t == taker)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_attributes_then_the_update_expression_uses_placeholders_only() {
        let mut update = Update::default();
        update.set_if_not_exists("hour", AttributeValue::S("h".to_owned()));
        update.add("mentions", number(2));
        update.add("hour", number(1));
        assert_eq!(
            update.expression(),
            "SET #n0 = if_not_exists(#n0, :v0) ADD #n1 :v1, #n0 :v2"
        );
        assert_eq!(
            update.attribute_names(),
            HashMap::from([
                ("#n0".to_owned(), "hour".to_owned()),
                ("#n1".to_owned(), "mentions".to_owned()),
            ])
        );
        assert_eq!(update.values.len(), 3);
    }

    #[test]
    fn given_a_budget_item_then_only_a_listed_taker_holds_a_unit() {
        let counted = |takers: Option<&[&str]>| {
            let mut item = HashMap::from([("used".to_owned(), number(2))]);
            if let Some(takers) = takers {
                item.insert(
                    BUDGET_TAKERS.to_owned(),
                    AttributeValue::Ss(takers.iter().map(|t| (*t).to_owned()).collect()),
                );
            }
            item
        };
        assert!(holds_unit(
            Some(&counted(Some(&["auto-1", "auto-2"]))),
            "auto-2"
        ));
        assert!(!holds_unit(Some(&counted(Some(&["auto-1"]))), "auto-2"));
        assert!(
            !holds_unit(Some(&counted(None)), "auto-1"),
            "a budget counted only by unnamed takers has no holders"
        );
        assert!(!holds_unit(None, "auto-1"), "no item, no holders");
        let mut wrong_type = counted(None);
        wrong_type.insert(BUDGET_TAKERS.to_owned(), AttributeValue::S("auto-1".into()));
        assert!(!holds_unit(Some(&wrong_type), "auto-1"));
    }
}
