//! Actions Lambda (SQS events queue): a `TriggerFired` event runs its rule's actions —
//! alerts through channels, EventBridge events, automatic posts through the campaign's
//! policy gate, the crisis brake — and every other event (posts published or failed,
//! sources disabled…) is forwarded to the EventBridge bus named by `HARK_EVENT_BUS`.
//! Reports partial batch failures; actions are idempotent, so a redelivered event never
//! alerts or posts twice.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use hark_shared::actions::{ActionError, EventBus, handle_event_message};
use hark_shared::aws::AwsBackend;
use hark_shared::clock::{Clock, SystemClock};
use hark_shared::config::Config;
use hark_shared::lambda::{Disposition, for_each_record};
use hark_shared::ports::QueueName;
use hark_shared::telemetry::{LogFormat, init_tracing};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

async fn handle(
    backend: &AwsBackend,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let bus = backend.bus.as_ref().map(|b| b as &dyn EventBus);
    Ok(for_each_record(event.payload, |record| async move {
        let outcome = handle_event_message(
            &backend.store,
            &backend.queue,
            bus,
            &record.body,
            SystemClock.now(),
        )
        .await?;
        tracing::info!(?outcome, "event handled");
        Ok::<_, ActionError>(Disposition::Done)
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
    run(service_fn(|event| handle(&backend, event))).await
}
