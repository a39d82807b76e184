//! Scheduler Lambda (EventBridge Scheduler, rate 1 minute): sources whose next poll time
//! has come get a poll job on the poll queue; recurring posts roll forward and due
//! deliveries get a publish job on the publish queue; stranded claims are recovered and
//! unknown outcomes reconciled (reading the channels' accounts); trigger events recorded
//! but not sent are sent again.

use std::sync::Arc;

use hark_shared::aws::AwsBackend;
use hark_shared::clock::{Clock, SystemClock};
use hark_shared::config::Config;
use hark_shared::listening::schedule_polls;
use hark_shared::platforms::HttpClient;
use hark_shared::ports::QueueName;
use hark_shared::publishing::{
    DispatchSettings, PlatformPublishers, PublisherSettings, SettleSettings, dispatch_due,
    settle_due,
};
use hark_shared::telemetry::{LogFormat, init_tracing};
use hark_shared::triggers::sweep_pending;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::{Value, json};

struct Scheduler {
    backend: AwsBackend,
    /// The reconciler reads the channels' accounts with the publishers' clients.
    publishers: PlatformPublishers,
    settle: SettleSettings,
}

/// Every part runs even when another fails (a broken source must not stop posts), and
/// any failure fails the invocation so it is retried and alarmed on.
async fn tick(s: &Scheduler, _event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (store, queue) = (&s.backend.store, &s.backend.queue);
    let now = SystemClock.now();
    let listening = schedule_polls(store, queue, now).await;
    let publishing = dispatch_due(store, queue, now, &DispatchSettings::default()).await;
    let settling = settle_due(store, queue, &s.publishers, now, &s.settle).await;
    let triggers = sweep_pending(store, queue, now).await;
    Ok(json!({
        "listening": listening?, "publishing": publishing?, "settling": settling?,
        "trigger_events_resent": triggers?
    }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(LogFormat::from_env(), "info");
    let config = Config::from_env()?;
    config.require_queue(QueueName::Poll)?;
    config.require_queue(QueueName::Publish)?;
    config.require_queue(QueueName::Events)?;
    let backend = AwsBackend::from_config(&config).await?;
    let publishers = PlatformPublishers::new(
        HttpClient::new(config.allow_private_urls)?,
        backend.secrets.clone(),
        Arc::new(SystemClock),
    )
    .with_enabled(config.enabled_platforms.clone());
    let scheduler = Scheduler {
        backend,
        publishers,
        settle: SettleSettings::matching(&PublisherSettings::default()),
    };
    run(service_fn(|event| tick(&scheduler, event))).await
}
