//! Creates Hark's table and queues where no SAM template does it: against the emulator in
//! tests, and for `hark` pointed at a fresh account or endpoint. Every step is idempotent.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableDescription, TimeToLiveSpecification,
    TimeToLiveStatus,
};
use aws_sdk_sqs::types::QueueAttributeName;

use super::keys;
use crate::ports::{BoxError, QueueName};

/// How long [`ensure_table`] waits for a new table to become ACTIVE.
const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);
/// DLQs keep messages for the SQS maximum (14 days): a message's age counts from its first
/// enqueue, so a DLQ with the main queue's retention could drop it at once
/// (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html>).
const DLQ_RETENTION_SECONDS: u32 = 1_209_600;

/// A bootstrap step failed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("creating table `{table}` failed")]
    CreateTable {
        table: String,
        #[source]
        source: BoxError,
    },
    #[error("table `{table}` did not become ACTIVE")]
    WaitForTable {
        table: String,
        #[source]
        source: BoxError,
    },
    #[error("enabling TTL on `expires_at` of table `{table}` failed")]
    EnableTtl {
        table: String,
        #[source]
        source: BoxError,
    },
    /// The table exists with other keys or without the `GSI1` index.
    #[error(
        "table `{table}` exists but is not Hark's: it needs keys PK/SK (strings) and index \
         GSI1 on GSI1PK/GSI1SK"
    )]
    UnexpectedSchema { table: String },
    /// A table has one TTL attribute; another one is set, so mentions would never expire.
    #[error("table `{table}` expires items by `{attribute}`, Hark needs `expires_at`")]
    TtlOnOtherAttribute { table: String, attribute: String },
    #[error("creating queue `{queue}` failed")]
    CreateQueue {
        queue: String,
        #[source]
        source: BoxError,
    },
    #[error("configuring queue `{queue}` failed")]
    ConfigureQueue {
        queue: String,
        #[source]
        source: BoxError,
    },
    /// SQS answered without a queue URL or ARN.
    #[error("SQS did not return the {what} of queue `{queue}`")]
    MissingQueueField { queue: String, what: &'static str },
}

/// Creates the single table if absent (idempotent): `PK` (S) + `SK` (S) keys, GSI `GSI1` on
/// `GSI1PK` (S) / `GSI1SK` (S) projecting all attributes, on-demand billing; waits until it is
/// ACTIVE, then enables TTL on `expires_at`.
pub async fn ensure_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<(), BootstrapError> {
    let create_failed = |source: BoxError| BootstrapError::CreateTable {
        table: table.to_owned(),
        source,
    };
    let key = |name: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .map_err(|e| create_failed(Box::new(e)))
    };
    let string_attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| create_failed(Box::new(e)))
    };
    let gsi1 = GlobalSecondaryIndex::builder()
        .index_name(keys::GSI1)
        .key_schema(key(keys::GSI1PK, KeyType::Hash)?)
        .key_schema(key(keys::GSI1SK, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(|e| create_failed(Box::new(e)))?;
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(keys::PK, KeyType::Hash)?)
        .key_schema(key(keys::SK, KeyType::Range)?)
        .attribute_definitions(string_attribute(keys::PK)?)
        .attribute_definitions(string_attribute(keys::SK)?)
        .attribute_definitions(string_attribute(keys::GSI1PK)?)
        .attribute_definitions(string_attribute(keys::GSI1SK)?)
        .global_secondary_indexes(gsi1)
        .send()
        .await;
    match created {
        Ok(_) => tracing::info!(table, "created DynamoDB table"),
        // The table exists (maybe still CREATING): wait for it below.
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) => {}
        Err(err) => return Err(create_failed(Box::new(err))),
    }

    let wait_failed = |source: BoxError| BootstrapError::WaitForTable {
        table: table.to_owned(),
        source,
    };
    let described = client
        .wait_until_table_exists()
        .table_name(table)
        .wait(TABLE_ACTIVE_TIMEOUT)
        .await
        .map_err(|e| wait_failed(Box::new(e)))?
        .into_result()
        .map_err(|e| wait_failed(Box::new(e)))?;
    check_schema(table, described.table())?;

    enable_ttl(client, table).await
}

/// An existing table must have Hark's keys and index: a table of another application
/// would fail later, item by item, with less helpful errors.
fn check_schema(table: &str, description: Option<&TableDescription>) -> Result<(), BootstrapError> {
    let has_keys = |schema: &[KeySchemaElement], hash: &str, range: &str| {
        schema.len() == 2
            && schema
                .iter()
                .any(|k| k.attribute_name() == hash && k.key_type() == &KeyType::Hash)
            && schema
                .iter()
                .any(|k| k.attribute_name() == range && k.key_type() == &KeyType::Range)
    };
    let fits = description.is_some_and(|d| {
        has_keys(d.key_schema(), keys::PK, keys::SK)
            && d.global_secondary_indexes().iter().any(|index| {
                index.index_name() == Some(keys::GSI1)
                    && has_keys(index.key_schema(), keys::GSI1PK, keys::GSI1SK)
            })
    });
    if fits {
        Ok(())
    } else {
        Err(BootstrapError::UnexpectedSchema {
            table: table.to_owned(),
        })
    }
}

/// Enables TTL on `expires_at` unless it is on already. UpdateTimeToLive fails when TTL is
/// already enabled, and refuses changes for an hour after one:
/// <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateTimeToLive.html>.
async fn enable_ttl(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), BootstrapError> {
    let ttl_failed = |source: BoxError| BootstrapError::EnableTtl {
        table: table.to_owned(),
        source,
    };
    let described = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| ttl_failed(Box::new(e)))?;
    if let Some(ttl) = described.time_to_live_description() {
        let on = matches!(
            ttl.time_to_live_status(),
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        );
        match ttl.attribute_name() {
            Some(keys::EXPIRES_AT) if on => return Ok(()),
            Some(other) if on => {
                return Err(BootstrapError::TtlOnOtherAttribute {
                    table: table.to_owned(),
                    attribute: other.to_owned(),
                });
            }
            _ => {}
        }
    }
    let specification = TimeToLiveSpecification::builder()
        .attribute_name(keys::EXPIRES_AT)
        .enabled(true)
        .build()
        .map_err(|e| ttl_failed(Box::new(e)))?;
    match client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(specification)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // Another process enabled it between our describe and update.
        Err(err)
            if err.code() == Some("ValidationException")
                && err.message().is_some_and(|m| m.contains("already enabled")) =>
        {
            Ok(())
        }
        Err(err) => Err(ttl_failed(Box::new(err))),
    }
}

/// Creates the four main queues `{prefix}-poll`, `{prefix}-mentions`, `{prefix}-publish`,
/// `{prefix}-events`, each with a DLQ `{prefix}-<name>-dlq` and a RedrivePolicy that moves a
/// message there after `max_receive_count` receives. Idempotent (re-running updates the
/// policy). Returns all eight URLs.
pub async fn ensure_queues(
    client: &aws_sdk_sqs::Client,
    prefix: &str,
    max_receive_count: u32,
) -> Result<HashMap<QueueName, String>, BootstrapError> {
    let mut urls = HashMap::new();
    for queue in QueueName::MAIN {
        let Some(dlq) = queue.dead_letter() else {
            continue;
        };
        let dlq_name = format!("{prefix}-{dlq}");
        let dlq_url = ensure_queue(client, &dlq_name).await?;
        set_attribute(
            client,
            &dlq_name,
            &dlq_url,
            QueueAttributeName::MessageRetentionPeriod,
            DLQ_RETENTION_SECONDS.to_string(),
        )
        .await?;
        let dlq_arn = queue_arn(client, &dlq_name, &dlq_url).await?;

        let name = format!("{prefix}-{queue}");
        let url = ensure_queue(client, &name).await?;
        let policy = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": max_receive_count,
        });
        set_attribute(
            client,
            &name,
            &url,
            QueueAttributeName::RedrivePolicy,
            policy.to_string(),
        )
        .await?;
        tracing::info!(queue = %name, dlq = %dlq_name, max_receive_count, "queue ready");
        urls.insert(queue, url);
        urls.insert(dlq, dlq_url);
    }
    Ok(urls)
}

/// The URL of a queue, created with default attributes if it does not exist. Attributes are
/// set separately: CreateQueue fails for an existing queue whose attributes differ.
async fn ensure_queue(client: &aws_sdk_sqs::Client, name: &str) -> Result<String, BootstrapError> {
    let create_failed = |source: BoxError| BootstrapError::CreateQueue {
        queue: name.to_owned(),
        source,
    };
    let missing = || BootstrapError::MissingQueueField {
        queue: name.to_owned(),
        what: "URL",
    };
    match client.get_queue_url().queue_name(name).send().await {
        Ok(found) => return found.queue_url.ok_or_else(missing),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_queue_does_not_exist()) => {}
        Err(err) => return Err(create_failed(Box::new(err))),
    }
    let created = client
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| create_failed(Box::new(e)))?;
    created.queue_url.ok_or_else(missing)
}

async fn set_attribute(
    client: &aws_sdk_sqs::Client,
    name: &str,
    url: &str,
    attribute: QueueAttributeName,
    value: String,
) -> Result<(), BootstrapError> {
    client
        .set_queue_attributes()
        .queue_url(url)
        .attributes(attribute, value)
        .send()
        .await
        .map_err(|e| BootstrapError::ConfigureQueue {
            queue: name.to_owned(),
            source: Box::new(e),
        })?;
    Ok(())
}

async fn queue_arn(
    client: &aws_sdk_sqs::Client,
    name: &str,
    url: &str,
) -> Result<String, BootstrapError> {
    let attributes = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| BootstrapError::ConfigureQueue {
            queue: name.to_owned(),
            source: Box::new(e),
        })?;
    attributes
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| BootstrapError::MissingQueueField {
            queue: name.to_owned(),
            what: "ARN",
        })
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::GlobalSecondaryIndexDescription;

    use super::*;

    fn key(name: &str, key_type: KeyType) -> KeySchemaElement {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .unwrap()
    }

    fn index(name: &str) -> GlobalSecondaryIndexDescription {
        GlobalSecondaryIndexDescription::builder()
            .index_name(name)
            .key_schema(key(keys::GSI1PK, KeyType::Hash))
            .key_schema(key(keys::GSI1SK, KeyType::Range))
            .build()
    }

    #[test]
    fn given_hark_keys_and_gsi1_then_the_schema_fits() {
        let table = TableDescription::builder()
            .key_schema(key("PK", KeyType::Hash))
            .key_schema(key("SK", KeyType::Range))
            .global_secondary_indexes(index("GSI1"))
            .build();
        assert!(check_schema("t", Some(&table)).is_ok());
    }

    #[test]
    fn given_another_applications_table_then_a_clear_error() {
        let no_index = TableDescription::builder()
            .key_schema(key("PK", KeyType::Hash))
            .key_schema(key("SK", KeyType::Range))
            .global_secondary_indexes(index("ByDate"))
            .build();
        let other_keys = TableDescription::builder()
            .key_schema(key("id", KeyType::Hash))
            .global_secondary_indexes(index("GSI1"))
            .build();
        for table in [Some(&no_index), Some(&other_keys), None] {
            let err = check_schema("orders", table).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("table `orders` exists but is not Hark's")
            );
        }
    }
}
