//! `hark run`: the pipeline on this machine, with the same handler code as the Lambdas.
//! One scheduler tick, then every queue with a consumer is drained through its handler;
//! messages a handler fails stay queued (redelivered later, dead-lettered after the
//! configured receives), never dropped.

use std::time::Duration;

use hark_shared::actions::{ActionError, EventBus, handle_event_message};
use hark_shared::clock::Clock;
use hark_shared::lambda::{Disposition, failed_ids, for_each_record, sqs_event};
use hark_shared::listening::{
    ListenerFactory, PollOutcome, PollerSettings, TickReport, handle_poll_batch, schedule_polls,
};
use hark_shared::ports::DeliveryStore;
use hark_shared::ports::TriggerStore;
use hark_shared::ports::{
    AggregateStore, ConfigStore, CursorStore, MentionStore, MessageQueue, QueueError, QueueName,
    StoreError,
};
use hark_shared::processing::Processor;
use hark_shared::publishing::{
    BatchConfigCache, DispatchSettings, MIN_PUBLISH_VISIBILITY, PublishOutcome, PublisherFactory,
    PublisherSettings, PublishingError, dispatch_due, handle_publish_message,
};
use hark_shared::triggers::{evaluate_after_batch, sweep_pending};
use jiff::SignedDuration;

/// How long a received message stays hidden while its handler runs.
const VISIBILITY: SignedDuration = SignedDuration::from_secs(120);

/// Totals of one run (printed, or as JSON with `--json`).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct RunReport {
    pub ticks: u32,
    pub sources_scheduled: usize,
    pub polls_ok: usize,
    pub polls_failed: usize,
    pub mentions_queued: usize,
    /// Mentions stored for the first time by the processor.
    pub mentions_stored: usize,
    /// Mentions the processor had seen before (dropped as duplicates).
    pub duplicates: usize,
    /// Stored mentions that matched a campaign.
    pub mentions_matched: usize,
    /// Messages a handler failed; they stay on their queue.
    pub messages_failed: usize,
    /// Publish jobs the scheduler tick sent for due deliveries.
    pub deliveries_dispatched: usize,
    pub posts_published: usize,
    pub posts_failed: usize,
    /// Deliveries put back in the queue after a retryable failure (due later).
    pub posts_retrying: usize,
    /// Deliveries whose outcome is unknown (left for the reconciler).
    pub posts_unknown: usize,
    /// Trigger rules that fired (their `TriggerFired` event ids).
    pub triggers_fired: Vec<String>,
    /// Events handled by the actions handler.
    pub events_handled: usize,
    /// Alerts and automatic posts created by trigger actions.
    pub alerts_created: usize,
    pub auto_posts_created: usize,
    /// Deliveries paused by a crisis brake.
    pub deliveries_paused: usize,
    /// Events put on the event bus.
    pub bus_events: usize,
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Listening(#[from] hark_shared::listening::ListeningError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Publishing(#[from] PublishingError),
    #[error(transparent)]
    Triggers(#[from] hark_shared::triggers::TriggerError),
}

/// The parts `hark run` needs, for either backend.
pub struct Pipeline<'a, S, F: ?Sized> {
    pub store: &'a S,
    pub queue: &'a dyn MessageQueue,
    pub listeners: &'a F,
    pub processor: &'a Processor,
    pub clock: &'a dyn Clock,
    pub settings: PollerSettings,
    /// Builds the platform clients of publishing channels.
    pub publishers: &'a dyn PublisherFactory,
    pub publishing: PublisherSettings,
    /// Where events go besides the events queue (EventBridge, or the local table).
    pub bus: Option<&'a dyn EventBus>,
}

impl<S, F> Pipeline<'_, S, F>
where
    S: ConfigStore + CursorStore + MentionStore + AggregateStore + DeliveryStore + TriggerStore,
    F: ListenerFactory + ?Sized,
{
    /// One tick, then drain until no queue with a consumer has visible messages.
    pub async fn once(&self, report: &mut RunReport) -> Result<(), RunError> {
        let tick: TickReport = schedule_polls(self.store, self.queue, self.clock.now()).await?;
        report.ticks += 1;
        report.sources_scheduled += tick.queued;
        let dispatch = dispatch_due(
            self.store,
            self.queue,
            self.clock.now(),
            &DispatchSettings::default(),
        )
        .await?;
        report.deliveries_dispatched += dispatch.dispatched;
        hark_shared::publishing::settle_due(
            self.store,
            self.queue,
            self.publishers,
            self.clock.now(),
            &hark_shared::publishing::SettleSettings::matching(&self.publishing),
        )
        .await?;
        sweep_pending(self.store, self.queue, self.clock.now()).await?;
        self.drain_polls(report).await?;
        self.drain_mentions(report).await?;
        // Actions make alerts and posts (publish queue); publishing makes events again.
        self.drain_events(report).await?;
        self.drain_publish(report).await?;
        self.drain_events(report).await?;
        Ok(())
    }

    /// The events queue through the actions handler, as the actions Lambda receives it.
    async fn drain_events(&self, report: &mut RunReport) -> Result<(), RunError> {
        loop {
            let messages = self
                .queue
                .receive(QueueName::Events, 10, VISIBILITY)
                .await?;
            if messages.is_empty() {
                return Ok(());
            }
            let outcomes = std::sync::Mutex::new(Vec::new());
            let response = for_each_record(sqs_event(&messages), |record| {
                let outcomes = &outcomes;
                async move {
                    let outcome = handle_event_message(
                        self.store,
                        self.queue,
                        self.bus,
                        &record.body,
                        self.clock.now(),
                    )
                    .await?;
                    outcomes
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(outcome);
                    Ok::<_, ActionError>(Disposition::Done)
                }
            })
            .await;
            for o in outcomes.into_inner().unwrap_or_else(|p| p.into_inner()) {
                report.events_handled += 1;
                report.alerts_created += o.alerts.len();
                report.auto_posts_created += o.posts.len();
                report.deliveries_paused += o.paused;
                report.bus_events += o.bus_events;
            }
            let failed = failed_ids(&response);
            report.messages_failed += failed.len();
            for m in &messages {
                if !failed.contains(&m.message_id.as_str()) {
                    self.queue.delete(QueueName::Events, &m.receipt).await?;
                }
            }
            if failed.len() == messages.len() {
                return Ok(());
            }
        }
    }

    /// The publish queue through the publisher's handler, exactly as the publisher Lambda
    /// receives it. A job whose delivery another worker holds stays on the queue.
    async fn drain_publish(&self, report: &mut RunReport) -> Result<(), RunError> {
        loop {
            let messages = self
                .queue
                .receive(QueueName::Publish, 10, MIN_PUBLISH_VISIBILITY)
                .await?;
            if messages.is_empty() {
                return Ok(());
            }
            let outcomes = std::sync::Mutex::new(Vec::new());
            let store = &BatchConfigCache::new(self.store);
            let response = for_each_record(sqs_event(&messages), |record| {
                let outcomes = &outcomes;
                async move {
                    let outcome = handle_publish_message(
                        store,
                        self.queue,
                        self.publishers,
                        &record.body,
                        self.clock,
                        &self.publishing,
                    )
                    .await?;
                    let disposition = if outcome.leave_on_queue() {
                        Disposition::Retry
                    } else {
                        Disposition::Done
                    };
                    outcomes
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(outcome);
                    Ok::<_, PublishingError>(disposition)
                }
            })
            .await;
            for outcome in outcomes.into_inner().unwrap_or_else(|p| p.into_inner()) {
                match outcome {
                    PublishOutcome::Published { .. } => report.posts_published += 1,
                    PublishOutcome::Failed { .. } => report.posts_failed += 1,
                    PublishOutcome::Requeued { .. } => report.posts_retrying += 1,
                    PublishOutcome::Unknown { .. } => report.posts_unknown += 1,
                    PublishOutcome::Cancelled { .. }
                    | PublishOutcome::InFlight { .. }
                    | PublishOutcome::Skipped { .. } => {}
                }
            }
            let failed = failed_ids(&response);
            report.messages_failed += failed.len();
            for m in &messages {
                if !failed.contains(&m.message_id.as_str()) {
                    self.queue.delete(QueueName::Publish, &m.receipt).await?;
                }
            }
            if failed.len() == messages.len() {
                return Ok(());
            }
        }
    }

    /// The mentions queue through the processor, a batch of up to 10 messages at a time,
    /// exactly as the processor Lambda receives them.
    async fn drain_mentions(&self, report: &mut RunReport) -> Result<(), RunError> {
        loop {
            let messages = self
                .queue
                .receive(QueueName::Mentions, 10, VISIBILITY)
                .await?;
            if messages.is_empty() {
                return Ok(());
            }
            let bodies: Vec<&str> = messages.iter().map(|m| m.body.as_str()).collect();
            let outcome = self.processor.process_batch(self.store, &bodies).await?;
            // As the processor Lambda does: rules on what the batch stored; a failure is
            // logged, not fatal (the sweep re-sends recorded firings).
            match evaluate_after_batch(self.store, self.queue, &outcome.stored, self.clock.now())
                .await
            {
                Ok(t) => report.triggers_fired.extend(t.fired),
                Err(e) => tracing::error!(error = %e, "evaluating trigger rules failed"),
            }
            report.mentions_stored += outcome.report.stored;
            report.duplicates += outcome.report.duplicates;
            report.mentions_matched += outcome.report.matched;
            let mut failed = 0;
            for (m, result) in messages.iter().zip(&outcome.messages) {
                match result {
                    Ok(()) => self.queue.delete(QueueName::Mentions, &m.receipt).await?,
                    Err(e) => {
                        failed += 1;
                        tracing::warn!(message_id = %m.message_id, error = %e, "mentions message left for redelivery");
                    }
                }
            }
            report.messages_failed += failed;
            if failed == messages.len() {
                return Ok(());
            }
        }
    }

    /// Forever: a tick every `cadence`, draining in between, until Ctrl-C.
    pub async fn forever(&self, cadence: Duration, report: &mut RunReport) -> Result<(), RunError> {
        loop {
            self.once(report).await?;
            eprintln!(
                "tick {}: {} polls ok, {} failed, {} mentions queued so far",
                report.ticks, report.polls_ok, report.polls_failed, report.mentions_queued
            );
            tokio::select! {
                _ = tokio::time::sleep(cadence) => {}
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    }

    async fn drain_polls(&self, report: &mut RunReport) -> Result<(), RunError> {
        loop {
            let messages = self.queue.receive(QueueName::Poll, 10, VISIBILITY).await?;
            if messages.is_empty() {
                return Ok(());
            }
            let bodies: Vec<&str> = messages.iter().map(|m| m.body.as_str()).collect();
            let outcomes = handle_poll_batch(
                self.store,
                self.queue,
                self.listeners,
                &bodies,
                self.clock.now(),
                &self.settings,
            )
            .await;
            let mut failed = 0;
            for (message, outcome) in messages.iter().zip(outcomes) {
                match outcome {
                    Ok(PollOutcome::Polled { mentions, .. }) => {
                        report.polls_ok += 1;
                        report.mentions_queued += mentions;
                    }
                    Ok(PollOutcome::Failed { .. }) => report.polls_failed += 1,
                    Ok(PollOutcome::Skipped { .. }) => {}
                    Err(e) => {
                        tracing::error!(message_id = %message.message_id, error = %e, "poll job failed; it will be retried");
                        failed += 1;
                        continue;
                    }
                }
                self.queue.delete(QueueName::Poll, &message.receipt).await?;
            }
            report.messages_failed += failed;
            if failed == messages.len() {
                // Everything failed: stop here; the messages come back after their
                // visibility timeout (or go to the DLQ).
                return Ok(());
            }
        }
    }
}
