//! Publisher Lambda (SQS publish queue): for each job, claim the delivery, create the post
//! on its platform, record the outcome and announce it. Reports partial batch failures; a
//! job whose delivery another worker holds stays on the queue.
//!
//! The function timeout must stay below `publishing::CLAIM_LEASE` and the queue's
//! visibility timeout at or above it (see the `publishing` module).

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use hark_shared::aws::AwsBackend;
use hark_shared::clock::SystemClock;
use hark_shared::config::Config;
use hark_shared::lambda::{Disposition, for_each_record};
use hark_shared::platforms::HttpClient;
use hark_shared::ports::QueueName;
use hark_shared::publishing::{
    BatchConfigCache, PlatformPublishers, PublisherSettings, StoreRateGate, handle_publish_message,
};
use hark_shared::telemetry::{LogFormat, init_tracing};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

struct Publisher {
    backend: AwsBackend,
    publishers: PlatformPublishers,
    settings: PublisherSettings,
}

async fn handle(p: &Publisher, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    // The batch's jobs mostly share channels: read each configuration document once.
    let store = &BatchConfigCache::new(&p.backend.store);
    Ok(for_each_record(event.payload, |record| async move {
        let outcome = handle_publish_message(
            store,
            &p.backend.queue,
            &p.publishers,
            &record.body,
            &SystemClock,
            &p.settings,
        )
        .await?;
        Ok::<_, hark_shared::publishing::PublishingError>(if outcome.leave_on_queue() {
            Disposition::Retry
        } else {
            Disposition::Done
        })
    })
    .await)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(LogFormat::from_env(), "info");
    let config = Config::from_env()?;
    config.require_queue(QueueName::Events)?;
    config.require_queue(QueueName::Publish)?;
    let backend = AwsBackend::from_config(&config).await?;
    let secrets = backend.secrets.clone();
    let gate = Arc::new(StoreRateGate(Arc::new(backend.store.clone())));
    let publisher = Publisher {
        backend,
        publishers: PlatformPublishers::new(
            HttpClient::new(config.allow_private_urls)?,
            secrets.clone(),
            Arc::new(SystemClock),
        )
        .with_enabled(config.enabled_platforms.clone())
        .with_secret_writer(secrets)
        .with_rate_gate(gate),
        settings: PublisherSettings::default(),
    };
    run(service_fn(|event| handle(&publisher, event))).await
}
