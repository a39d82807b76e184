//! Poller Lambda (SQS poll queue): for each job, fetch what is new since the source's
//! cursor, queue the mentions, then advance the cursor. The jobs of a batch are polled
//! concurrently and their mentions queued together. Reports partial batch failures.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use hark_shared::aws::AwsBackend;
use hark_shared::clock::{Clock, SystemClock};
use hark_shared::config::Config;
use hark_shared::lambda::{records, response_for};
use hark_shared::listening::{PollerSettings, handle_poll_batch};
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

/// Polls every job of the batch concurrently, queues all their mentions together, and
/// reports the jobs to redeliver.
async fn handle(poller: &Poller, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let (records, mut failed) = records(&event.payload);
    for id in &failed {
        tracing::error!(message_id = %id, "SQS record without a body; it will be retried");
    }
    let bodies: Vec<&str> = records.iter().map(|r| r.body.as_str()).collect();
    let outcomes = handle_poll_batch(
        &poller.backend.store,
        &poller.backend.queue,
        &poller.listeners,
        &bodies,
        SystemClock.now(),
        &poller.settings,
    )
    .await;
    for (record, outcome) in records.into_iter().zip(outcomes) {
        if let Err(e) = outcome {
            tracing::error!(message_id = %record.message_id, receive_count = record.receive_count, error = %e, "poll job failed; it will be retried");
            failed.push(record.message_id);
        }
    }
    Ok(response_for(failed))
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
