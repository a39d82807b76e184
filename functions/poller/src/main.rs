//! Poller Lambda (SQS poll queue): for each job, fetch what is new since the source's
//! cursor, queue the mentions, then advance the cursor. The jobs of a batch are polled
//! concurrently and their mentions queued together. Reports partial batch failures.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use hark_shared::aws::AwsBackend;
use hark_shared::clock::{Clock, SystemClock};
use hark_shared::config::Config;
use hark_shared::lambda::poll_event;
use hark_shared::listening::PollerSettings;
use hark_shared::platforms::HttpClient;
use hark_shared::platforms::listeners::PlatformListeners;
use hark_shared::ports::QueueName;
use hark_shared::telemetry::{LogFormat, init_tracing};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

struct Poller {
    backend: AwsBackend,
    listeners: PlatformListeners,
    settings: PollerSettings,
}

async fn handle(poller: &Poller, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    Ok(poll_event(
        &poller.backend.store,
        &poller.backend.queue,
        &poller.listeners,
        &event.payload,
        SystemClock.now(),
        &poller.settings,
    )
    .await)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(LogFormat::from_env(), "info");
    let config = Config::from_env()?;
    config.require_queue(QueueName::Mentions)?;
    config.require_queue(QueueName::Events)?;
    let backend = AwsBackend::from_config(&config).await?;
    let secrets = backend.secrets.clone();
    let poller = Poller {
        backend,
        listeners: PlatformListeners::new(HttpClient::new(config.allow_private_urls)?, secrets)
            .with_enabled(config.enabled_platforms.clone()),
        settings: PollerSettings::default(),
    };
    run(service_fn(|event| handle(&poller, event))).await
}
