//! Helpers shared by the workspace tests: backends for the contract suite and fixtures.
//!
//! The AWS backend talks over the real wire to the moto server that `scripts/test` starts.
//! Without `AWS_ENDPOINT_URL` the AWS tests fail loudly instead of skipping.

pub mod fakes;
pub mod publishing;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hark_shared::aws::{DynamoStore, SqsQueue, bootstrap};
use hark_shared::clock::SystemClock;
use hark_shared::embedded::{EmbeddedOptions, EmbeddedStore};
use hark_shared::ports::QueueName;

/// Receives before a message is dead-lettered, in both backends under test.
pub const MAX_RECEIVES: u32 = 3;
/// Mention retention used by the contract suite.
pub const RETENTION_DAYS: u32 = 30;

/// The moto endpoint, or a panic that tells how to run these tests.
pub fn moto_endpoint() -> String {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "AWS_ENDPOINT_URL is not set: the AWS contract tests talk to the moto server over \
             the wire. Run them with scripts/test, which installs moto, starts it and sets \
             AWS_ENDPOINT_URL (or start `moto_server -H 127.0.0.1 -p PORT` yourself and export \
             AWS_ENDPOINT_URL=http://127.0.0.1:PORT AWS_ACCESS_KEY_ID=test \
             AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1)."
        ),
    }
}

/// A name no other test in this run (or an earlier run against the same moto) uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{:x}-{n}",
        std::process::id(),
        nanos % 0xffff_ffff
    )
}

/// SDK config pointed at moto (region and fake credentials default when unset).
pub async fn moto_sdk_config() -> aws_config::SdkConfig {
    let endpoint = moto_endpoint();
    // SAFETY of intent: these are process-wide defaults for a test process talking to moto.
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned());
    let creds = aws_sdk_dynamodb::config::Credentials::new(
        std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "test".to_owned()),
        std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "test".to_owned()),
        None,
        None,
        "hark-tests",
    );
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(region))
        .credentials_provider(creds)
        .load()
        .await
}

/// A fresh DynamoDB table and fresh SQS queues on moto, private to the caller.
pub struct AwsBackend {
    pub store: Arc<DynamoStore>,
    pub queue: Arc<SqsQueue>,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub table: String,
    pub queue_urls: HashMap<QueueName, String>,
}

/// Creates an [`AwsBackend`] with its own table and queues.
pub async fn aws_backend() -> AwsBackend {
    let config = moto_sdk_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let table = unique_name("hark-ct");
    bootstrap::ensure_table(&dynamo, &table)
        .await
        .expect("create the table on moto");
    let queue_urls = bootstrap::ensure_queues(&sqs, &unique_name("hark-ct"), MAX_RECEIVES)
        .await
        .expect("create the queues on moto");
    AwsBackend {
        store: Arc::new(DynamoStore::new(
            dynamo.clone(),
            table.clone(),
            RETENTION_DAYS,
        )),
        queue: Arc::new(SqsQueue::new(sqs.clone(), queue_urls.clone())),
        dynamo,
        sqs,
        table,
        queue_urls,
    }
}

/// A private in-memory embedded store with the same limits as [`aws_backend`].
pub fn embedded_backend() -> Arc<EmbeddedStore> {
    Arc::new(
        EmbeddedStore::open_in_memory(EmbeddedOptions {
            retention_days: RETENTION_DAYS,
            max_receive_count: MAX_RECEIVES,
            clock: Arc::new(SystemClock),
        })
        .expect("open an in-memory SQLite store"),
    )
}

/// Implements `ConfigStore` for a fault-injecting test wrapper by passing every call to its
/// `inner` store (the wrappers only intercept the ports they break).
#[macro_export]
macro_rules! delegate_config_store {
    ($wrapper:ty) => {
        #[async_trait::async_trait]
        impl hark_shared::ports::ConfigStore for $wrapper {
            async fn get_document(
                &self,
                kind: hark_shared::ports::EntityKind,
                id: &str,
            ) -> Result<Option<serde_json::Value>, hark_shared::ports::StoreError> {
                self.inner.get_document(kind, id).await
            }
            async fn put_document(
                &self,
                kind: hark_shared::ports::EntityKind,
                id: &str,
                doc: &serde_json::Value,
            ) -> Result<(), hark_shared::ports::StoreError> {
                self.inner.put_document(kind, id, doc).await
            }
            async fn list_documents(
                &self,
                kind: hark_shared::ports::EntityKind,
            ) -> Result<Vec<serde_json::Value>, hark_shared::ports::StoreError> {
                self.inner.list_documents(kind).await
            }
        }
    };
}
