//! `hark-bench cost`: a realistic run of the whole pipeline, in process, on the embedded
//! backend (real SQLite in a temp dir) behind the counting decorators of [`metered`], with
//! a simulated clock advancing one scheduler tick (one minute) at a time.
//!
//! Listening: `sources` Mastodon sources polled every minute, each timeline page holding
//! `per_page` new statuses on the fake instance (a full page, 40, makes the poll read up
//! to its page cap, 5 pages); three campaigns (two match most statuses, one almost
//! none) with trigger rules whose actions put EventBridge events. Every tick runs what the
//! cloud runs: the scheduler (schedule polls, dispatch due posts, re-send pending trigger
//! events), then the poller, processor and actions on what the queues hold, batched as
//! the event source mappings in infra/template.yaml batch them (poll 10, mentions 50,
//! events 10, publish 5). Publishing: `posts` posts scheduled on a Mastodon channel, due
//! over the run, each published and announced (PostPublished → actions → EventBridge).
//!
//! Lambda duration per invocation = compute measured here + [`AWS_REQUEST_MS`] per AWS
//! request the adapters would make + [`PLATFORM_REQUEST_MS`] per platform request (for the
//! poller, per request of one source: it polls a batch's sources concurrently), billed
//! per started millisecond at 128 MB.
//!
//! [`metered`]: crate::metered
//! [`AWS_REQUEST_MS`]: crate::prices::AWS_REQUEST_MS
//! [`PLATFORM_REQUEST_MS`]: crate::prices::PLATFORM_REQUEST_MS

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use hark_shared::actions::{EventBus, handle_event_message};
use hark_shared::analysis::{Analyzer, Languages};
use hark_shared::clock::{Clock, ManualClock};
use hark_shared::domain::{Campaign, Channel, ScheduledPost, Source};
use hark_shared::embedded::{EmbeddedOptions, EmbeddedStore};
use hark_shared::listening::{PollOutcome, PollerSettings, handle_poll_batch, schedule_polls};
use hark_shared::platforms::HttpClient;
use hark_shared::platforms::listeners::PlatformListeners;
use hark_shared::ports::{ConfigStore, MessageQueue, QueueName, ReceivedMessage};
use hark_shared::processing::Processor;
use hark_shared::publishing::{
    DispatchSettings, PlatformPublishers, PublisherSettings, dispatch_due, handle_publish_message,
    schedule_post,
};
use hark_shared::secrets::EnvSecretResolver;
use hark_shared::triggers::{evaluate_after_batch, sweep_pending};

use crate::corpus::Corpus;
use crate::fake_mastodon::FakeMastodon;
use crate::metered::{Metered, Operation, Usage};
use crate::prices::*;

/// The env var the benchmark's Mastodon channel reads its token from.
pub const TOKEN_VAR: &str = "HARK_BENCH_MASTODON_TOKEN";

/// How big the realistic run is.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub ticks: usize,
    pub sources: usize,
    pub per_page: usize,
    pub posts: usize,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            ticks: 30,
            sources: 10,
            per_page: 10,
            posts: 30,
        }
    }
}

/// Lambda usage of one phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct LambdaUsage {
    pub invocations: u64,
    pub billed_ms: f64,
    pub scheduler_triggers: u64,
}

impl LambdaUsage {
    fn add(&mut self, compute: Duration, usage: &Usage, platform_requests: u64) {
        let ms = compute.as_secs_f64() * 1000.0
            + usage.aws_requests() as f64 * AWS_REQUEST_MS
            + platform_requests as f64 * PLATFORM_REQUEST_MS;
        self.invocations += 1;
        self.billed_ms += ms.ceil();
    }

    pub fn gb_seconds(&self) -> f64 {
        self.billed_ms / 1000.0 * LAMBDA_MEMORY_GB
    }
}

/// Dollars of one phase by line item.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bill {
    pub sqs: f64,
    pub dynamo_write: f64,
    pub dynamo_read: f64,
    pub lambda_requests: f64,
    pub lambda_duration: f64,
    pub eventbridge: f64,
}

impl Bill {
    pub fn of(usage: &Usage, lambda: &LambdaUsage) -> Self {
        Bill {
            sqs: usage.sqs_requests as f64 * SQS_PER_MILLION_REQUESTS / 1e6,
            dynamo_write: usage.write_units * DYNAMO_PER_MILLION_WRU / 1e6,
            dynamo_read: usage.read_units * DYNAMO_PER_MILLION_RRU / 1e6,
            lambda_requests: lambda.invocations as f64 * LAMBDA_PER_MILLION_REQUESTS / 1e6,
            lambda_duration: lambda.gb_seconds() * LAMBDA_ARM_PER_GB_SECOND,
            eventbridge: (usage.bus_events + lambda.scheduler_triggers) as f64
                * EVENTBRIDGE_PER_MILLION_EVENTS
                / 1e6,
        }
    }

    pub fn total(&self) -> f64 {
        self.sqs
            + self.dynamo_write
            + self.dynamo_read
            + self.lambda_requests
            + self.lambda_duration
            + self.eventbridge
    }

    pub fn scaled(&self, factor: f64) -> Bill {
        Bill {
            sqs: self.sqs * factor,
            dynamo_write: self.dynamo_write * factor,
            dynamo_read: self.dynamo_read * factor,
            lambda_requests: self.lambda_requests * factor,
            lambda_duration: self.lambda_duration * factor,
            eventbridge: self.eventbridge * factor,
        }
    }
}

/// The figures of a cost run.
#[derive(Debug, Clone)]
pub struct CostReport {
    pub mentions: u64,
    /// Poll jobs that polled their source (the listening run's mentions came in these).
    pub polls: u64,
    pub posts_published: u64,
    pub listening: (Usage, LambdaUsage),
    pub publishing: (Usage, LambdaUsage),
    /// Dollars per million mentions, by line item.
    pub per_million_mentions: Bill,
    /// Dollars per thousand published posts, by line item.
    pub per_thousand_posts: Bill,
    /// DynamoDB requests of the listening phase by operation.
    pub listening_operations: BTreeMap<&'static str, Operation>,
    /// Comprehend DetectSentiment for the same texts, dollars per million mentions.
    pub comprehend_sentiment_per_million: f64,
    pub mean_text_chars: f64,
}

struct Pipeline<'a> {
    store: &'a Metered<EmbeddedStore>,
    clock: &'a ManualClock,
    fake: &'a FakeMastodon,
    processor: Processor,
    listeners: PlatformListeners,
    publishers: PlatformPublishers,
    polls: std::sync::atomic::AtomicU64,
}

pub async fn run(corpus: Arc<Corpus>, workload: Workload) -> Result<CostReport, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let store = EmbeddedStore::open(
        dir.path(),
        EmbeddedOptions {
            retention_days: 90,
            max_receive_count: 5,
            clock: clock.clone(),
        },
    )
    .map_err(|e| format!("open the embedded store: {e}"))?;
    let store = Metered::new(store);
    let fake = FakeMastodon::start(corpus.clone(), workload.per_page)
        .await
        .map_err(|e| format!("fake Mastodon: {e}"))?;
    let http = HttpClient::new(true).map_err(|e| format!("HTTP client: {e}"))?;
    let pipeline = Pipeline {
        store: &store,
        clock: &clock,
        fake: &fake,
        processor: Processor::new(
            Analyzer::new(Languages::from_codes(["en", "de"]).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?,
        ),
        listeners: PlatformListeners::new(http.clone(), Arc::new(EnvSecretResolver)),
        publishers: PlatformPublishers::new(
            http,
            Arc::new(EnvSecretResolver),
            clock.clone() as Arc<dyn Clock>,
        ),
        polls: std::sync::atomic::AtomicU64::new(0),
    };
    seed_listening(&store, &fake, workload.sources).await?;

    // Listening: every tick as the cloud runs it.
    let start = store.usage();
    let ops_before = store.operations();
    let served_before = fake.served();
    let mut listening = LambdaUsage::default();
    for _ in 0..workload.ticks {
        pipeline.tick(&mut listening).await?;
        pipeline.drain(&mut listening).await?;
        clock.advance(SignedDuration::from_mins(1));
    }
    let listening_usage = store.usage().minus(&start);
    let listening_operations = store.operations_since(&ops_before);
    let mentions = fake.served() - served_before;

    // Publishing: posts due over the run; the ticks are paid for by listening already.
    let start = store.usage();
    let created_before = fake.created();
    let mut publishing = LambdaUsage::default();
    seed_publishing(&store, &fake, workload, clock.now()).await?;
    for _ in 0..workload.ticks {
        dispatch_due(&store, &store, clock.now(), &DispatchSettings::default())
            .await
            .map_err(|e| format!("dispatch: {e}"))?;
        pipeline.drain(&mut publishing).await?;
        clock.advance(SignedDuration::from_mins(1));
    }
    let publishing_usage = store.usage().minus(&start);
    let posts_published = fake.created() - created_before;

    let listening_bill = Bill::of(&listening_usage, &listening);
    let publishing_bill = Bill::of(&publishing_usage, &publishing);
    let sample = (mentions as usize).max(1);
    let comprehend: f64 = (0..sample)
        .map(|i| comprehend_cost(corpus.pick(i).0.chars().count()))
        .sum::<f64>()
        / sample as f64;
    Ok(CostReport {
        mentions,
        polls: pipeline.polls.load(std::sync::atomic::Ordering::Relaxed),
        posts_published,
        listening: (listening_usage, listening),
        publishing: (publishing_usage, publishing),
        listening_operations,
        per_million_mentions: listening_bill.scaled(1e6 / mentions.max(1) as f64),
        per_thousand_posts: publishing_bill.scaled(1e3 / posts_published.max(1) as f64),
        comprehend_sentiment_per_million: comprehend * 1e6,
        mean_text_chars: corpus.mean_chars(sample),
    })
}

async fn seed_listening(
    store: &Metered<EmbeddedStore>,
    fake: &FakeMastodon,
    sources: usize,
) -> Result<(), String> {
    let bad = |e: serde_json::Error| format!("benchmark configuration: {e}");
    for i in 0..sources {
        let source: Source = serde_json::from_value(json!({
            "id": format!("masto-{i}"), "platform": "mastodon", "base_url": fake.base_url,
            "query": "#hark", "every": "1m",
        }))
        .map_err(bad)?;
        store.upsert(&source).await.map_err(|e| e.to_string())?;
    }
    let rules = json!([
        { "id": "negative-wave",
          "when": { "negative_share": { "above": 0.4, "window": "1h", "min_mentions": 20 } },
          "cooldown": "3h", "actions": [ { "event": true } ] },
        { "id": "volume-spike",
          "when": { "volume_spike": { "k": 3, "window": "1h", "min_mentions": 15 } },
          "cooldown": "2h", "actions": [ { "event": true } ] },
        { "id": "influencer",
          "when": { "influencer": { "min_followers": 100000 } },
          "cooldown": "6h", "actions": [ { "event": true } ] },
    ]);
    // Two campaigns listen to every source; the third matches almost nothing.
    let ids: Vec<String> = (0..sources).map(|i| format!("masto-{i}")).collect();
    for (id, query, listens) in [
        ("launch", "(hark OR #hark) -hiring", ids.clone()),
        ("rust", "#rustlang OR rust OR love", ids.clone()),
        ("kestrel", "kestrel OR \"kestrel notes\"", Vec::new()),
    ] {
        let campaign: Campaign = serde_json::from_value(json!({
            "id": id, "name": id, "query": query, "sources": listens, "triggers": rules,
        }))
        .map_err(bad)?;
        store.upsert(&campaign).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn seed_publishing(
    store: &Metered<EmbeddedStore>,
    fake: &FakeMastodon,
    workload: Workload,
    now: Timestamp,
) -> Result<(), String> {
    let bad = |e: serde_json::Error| format!("benchmark configuration: {e}");
    let channel: Channel = serde_json::from_value(json!({
        "id": "brand-mastodon", "platform": "mastodon", "base_url": fake.base_url,
        "token": format!("env:{TOKEN_VAR}"),
    }))
    .map_err(bad)?;
    store.upsert(&channel).await.map_err(|e| e.to_string())?;
    for i in 0..workload.posts {
        // Due within the run (the last tick must still find the last post due).
        let minute = (i % workload.ticks.saturating_sub(1).max(1)) as i64;
        let post: ScheduledPost = serde_json::from_value(json!({
            "id": format!("post-{i:04}"),
            "at": now + SignedDuration::from_mins(minute) + SignedDuration::from_secs(1),
            "channels": ["brand-mastodon"],
            "text": format!("Release notes, part {i}: what is new in Hark this week #hark"),
        }))
        .map_err(bad)?;
        store.upsert(&post).await.map_err(|e| e.to_string())?;
        schedule_post(store, store, &post, false, now)
            .await
            .map_err(|e| format!("schedule {}: {e}", post.id))?;
    }
    Ok(())
}

impl Pipeline<'_> {
    /// One scheduler invocation.
    async fn tick(&self, lambda: &mut LambdaUsage) -> Result<(), String> {
        let (before, platform, t0) = (self.store.usage(), self.fake.requests(), Instant::now());
        let now = self.clock.now();
        schedule_polls(self.store, self.store, now)
            .await
            .map_err(|e| format!("schedule polls: {e}"))?;
        dispatch_due(self.store, self.store, now, &DispatchSettings::default())
            .await
            .map_err(|e| format!("dispatch: {e}"))?;
        sweep_pending(self.store, self.store, now)
            .await
            .map_err(|e| format!("sweep: {e}"))?;
        let usage = self.store.usage().minus(&before);
        lambda.add(t0.elapsed(), &usage, self.fake.requests() - platform);
        lambda.scheduler_triggers += 1;
        Ok(())
    }

    /// Runs the consumers until every queue is empty, each queue drained before the next
    /// (poll → mentions → publish → events): the pollers of a tick run concurrently in the
    /// cloud, and the mentions mapping's 5 s batching window gathers what they queued into
    /// batches of up to 50 messages.
    async fn drain(&self, lambda: &mut LambdaUsage) -> Result<(), String> {
        loop {
            let mut worked = false;
            for (queue, batch) in [
                (QueueName::Poll, 10),
                (QueueName::Mentions, 50),
                (QueueName::Publish, 5),
                (QueueName::Events, 10),
            ] {
                while self.consume(queue, batch, lambda).await? {
                    worked = true;
                }
            }
            if !worked {
                return Ok(());
            }
        }
    }

    /// One invocation of the queue's function on up to `batch` messages (received 10 at a
    /// time, as SQS allows); `false` when the queue was empty.
    async fn consume(
        &self,
        queue: QueueName,
        batch: usize,
        lambda: &mut LambdaUsage,
    ) -> Result<bool, String> {
        let (before, platform) = (self.store.usage(), self.fake.requests());
        let mut messages: Vec<ReceivedMessage> = Vec::new();
        while messages.len() < batch {
            let got = self
                .store
                .receive(
                    queue,
                    (batch - messages.len()).min(10),
                    SignedDuration::from_mins(15),
                )
                .await
                .map_err(|e| format!("receive from {queue}: {e}"))?;
            if got.is_empty() {
                break;
            }
            messages.extend(got);
        }
        if messages.is_empty() {
            return Ok(false);
        }
        let t0 = Instant::now();
        let now = self.clock.now();
        let mut done: Vec<&ReceivedMessage> = Vec::new();
        match queue {
            QueueName::Poll => {
                let bodies: Vec<&str> = messages.iter().map(|m| m.body.as_str()).collect();
                let outcomes = handle_poll_batch(
                    self.store,
                    self.store,
                    &self.listeners,
                    &bodies,
                    now,
                    &PollerSettings::default(),
                )
                .await;
                for (m, outcome) in messages.iter().zip(outcomes) {
                    if let PollOutcome::Polled { .. } = outcome.map_err(|e| format!("poll: {e}"))? {
                        self.polls
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    done.push(m);
                }
            }
            QueueName::Mentions => {
                let bodies: Vec<&str> = messages.iter().map(|m| m.body.as_str()).collect();
                let outcome = self
                    .processor
                    .process_batch(self.store, &bodies)
                    .await
                    .map_err(|e| format!("process: {e}"))?;
                evaluate_after_batch(self.store, self.store, &outcome.stored, now)
                    .await
                    .map_err(|e| format!("triggers: {e}"))?;
                for (m, r) in messages.iter().zip(&outcome.messages) {
                    if r.is_ok() {
                        done.push(m);
                    }
                }
            }
            QueueName::Publish => {
                for m in &messages {
                    let outcome = handle_publish_message(
                        self.store,
                        self.store,
                        &self.publishers,
                        &m.body,
                        self.clock,
                        &PublisherSettings::default(),
                    )
                    .await
                    .map_err(|e| format!("publish: {e}"))?;
                    if !outcome.leave_on_queue() {
                        done.push(m);
                    }
                }
            }
            _ => {
                let bus: &dyn EventBus = self.store;
                for m in &messages {
                    handle_event_message(self.store, self.store, Some(bus), &m.body, now)
                        .await
                        .map_err(|e| format!("actions: {e}"))?;
                    done.push(m);
                }
            }
        }
        let compute = t0.elapsed();
        for m in done {
            self.store
                .delete(queue, &m.receipt)
                .await
                .map_err(|e| format!("delete from {queue}: {e}"))?;
        }
        let usage = self.store.usage().minus(&before);
        let mut platform_requests = self.fake.requests() - platform;
        if queue == QueueName::Poll {
            // The poller polls a batch's sources concurrently: their platform requests
            // overlap. Every source here makes as many requests as the others, so the
            // invocation waits for one source's share. (AWS requests are still summed: the
            // model stays an upper bound there.)
            platform_requests = platform_requests.div_ceil(messages.len() as u64);
        }
        lambda.add(compute, &usage, platform_requests);
        Ok(true)
    }
}
