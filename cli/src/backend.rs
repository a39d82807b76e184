//! Opening the configured backend for a CLI command.

use std::path::PathBuf;
use std::sync::Arc;

use hark_shared::aws::{DynamoStore, EventBridgeBus, SqsQueue, bootstrap, load_sdk_config};
use hark_shared::config::{Config, ConfigError};
use hark_shared::embedded::{EmbeddedOptions, EmbeddedStore};
use hark_shared::ports::{QueueName, StoreError};

/// An opened backend.
pub enum Backend {
    Embedded {
        store: Arc<EmbeddedStore>,
        dir: PathBuf,
    },
    Aws {
        store: Arc<DynamoStore>,
        queue: Arc<SqsQueue>,
        /// Set when `HARK_EVENT_BUS` names an EventBridge bus.
        bus: Option<Arc<EventBridgeBus>>,
        table: String,
    },
}

/// Why a backend could not be opened or initialised.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot open the embedded store in {dir}")]
    Embedded {
        dir: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("cannot create the AWS resources")]
    Bootstrap(#[from] bootstrap::BootstrapError),
}

impl Backend {
    /// Opens the backend named in `config` (creating the embedded database if needed).
    pub async fn open(config: &Config) -> Result<Backend, BackendError> {
        match config.backend {
            hark_shared::config::BackendKind::Embedded => {
                let dir = config.data_dir.clone();
                let store = EmbeddedStore::open(&dir, EmbeddedOptions::from_config(config))
                    .map_err(|source| BackendError::Embedded {
                        dir: dir.clone(),
                        source,
                    })?;
                Ok(Backend::Embedded {
                    store: Arc::new(store),
                    dir,
                })
            }
            hark_shared::config::BackendKind::Aws => {
                let table = config.require_table()?.to_owned();
                let sdk = load_sdk_config().await;
                let store = DynamoStore::new(
                    aws_sdk_dynamodb_client(&sdk),
                    table.clone(),
                    config.retention_days,
                );
                let queue = SqsQueue::from_config(aws_sdk_sqs_client(&sdk), &config.queues);
                let bus = config.event_bus.as_ref().map(|name| {
                    Arc::new(EventBridgeBus::new(
                        aws_sdk_eventbridge::Client::new(&sdk),
                        name,
                    ))
                });
                Ok(Backend::Aws {
                    store: Arc::new(store),
                    queue: Arc::new(queue),
                    bus,
                    table,
                })
            }
        }
    }

    /// Creates what the backend needs (`hark init`) and describes it.
    pub async fn init(config: &Config, queue_prefix: &str) -> Result<Vec<String>, BackendError> {
        match config.backend {
            hark_shared::config::BackendKind::Embedded => {
                Backend::open(config).await?;
                Ok(vec![format!(
                    "embedded store ready in {}",
                    config.data_dir.join("hark.db").display()
                )])
            }
            hark_shared::config::BackendKind::Aws => {
                let table = config.require_table()?;
                let sdk = load_sdk_config().await;
                bootstrap::ensure_table(&aws_sdk_dynamodb_client(&sdk), table).await?;
                let urls = bootstrap::ensure_queues(
                    &aws_sdk_sqs_client(&sdk),
                    queue_prefix,
                    config.max_receive_count,
                )
                .await?;
                let mut lines = vec![format!("table {table} ready"), String::new()];
                lines.push("# environment for the functions and `hark --backend aws`:".to_owned());
                lines.push(format!("export HARK_TABLE={table}"));
                for (queue, var) in [
                    (QueueName::Poll, "HARK_POLL_QUEUE_URL"),
                    (QueueName::Mentions, "HARK_MENTIONS_QUEUE_URL"),
                    (QueueName::Publish, "HARK_PUBLISH_QUEUE_URL"),
                    (QueueName::Events, "HARK_EVENTS_QUEUE_URL"),
                ] {
                    if let Some(url) = urls.get(&queue) {
                        lines.push(format!("export {var}={url}"));
                    }
                }
                Ok(lines)
            }
        }
    }
}

fn aws_sdk_dynamodb_client(sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(sdk)
}

fn aws_sdk_sqs_client(sdk: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(sdk)
}
