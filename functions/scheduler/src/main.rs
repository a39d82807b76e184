//! Scheduler Lambda (EventBridge Scheduler, rate 1 minute): sources whose next poll time
//! has come get a poll job on the poll queue; recurring posts roll forward and due
//! deliveries get a publish job on the publish queue; trigger events recorded but not sent
//! are sent again.

use hark_shared::aws::AwsBackend;
use hark_shared::clock::{Clock, SystemClock};
use hark_shared::config::Config;
use hark_shared::listening::schedule_polls;
use hark_shared::ports::QueueName;
use hark_shared::publishing::{DispatchSettings, dispatch_due};
use hark_shared::telemetry::{LogFormat, init_tracing};
use hark_shared::triggers::sweep_pending;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::{Value, json};

/// Both halves run even when the other fails (a broken source must not stop posts), and
/// either failure fails the invocation so it is retried and alarmed on.
async fn tick(backend: &AwsBackend, _event: LambdaEvent<Value>) -> Result<Value, Error> {
    let now = SystemClock.now();
    let listening = schedule_polls(&backend.store, &backend.queue, now).await;
    let publishing = dispatch_due(
        &backend.store,
        &backend.queue,
        now,
        &DispatchSettings::default(),
    )
    .await;
    let triggers = sweep_pending(&backend.store, &backend.queue, now).await;
    Ok(
        json!({ "listening": listening?, "publishing": publishing?, "trigger_events_resent": triggers? }),
    )
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(LogFormat::from_env(), "info");
    let config = Config::from_env()?;
    config.require_queue(QueueName::Poll)?;
    config.require_queue(QueueName::Publish)?;
    let backend = AwsBackend::from_config(&config).await?;
    run(service_fn(|event| tick(&backend, event))).await
}
