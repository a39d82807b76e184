//! Fault injection: 1,000 deliveries (500 posts × a Mastodon and a Bluesky channel) through
//! the real scheduler and publisher code over the AWS emulator and the fake platforms,
//! with faults injected at every layer:
//!
//! | fault | where | what the fake / wrapper does |
//! |---|---|---|
//! | HTTP 500 | platform | the first create answers 500 before creating anything |
//! | HTTP 429 + reset | platform | the first create is rate-limited; the reset is 90 s ahead |
//! | response lost after create | platform | the post is created, the answer arrives after the client gave up |
//! | 500, then 429 | platform | both, on the first two attempts |
//! | duplicate SQS message | queue | the delivery's publish job is sent twice; the copy arrives a round later |
//! | racing publishers | queue + workers | the job is sent twice and both copies are handled by two invocations at once |
//! | crash between create and record | store | the write that records PUBLISHED fails once, as if the function died |
//!
//! Time is simulated (one scheduler tick per simulated minute; the claim lease is 2 minutes
//! here); a job whose handler failed comes back when the queue's visibility timeout, never
//! shorter than the claim lease, has passed. Invocations get up to ten messages, as Lambda
//! gives them, and run twelve at a time.
//!
//! "Every terminal state emitted exactly one event" is checked as: the set of distinct
//! event ids on the events queue equals the set of `Delivery::event_id()` of the final
//! deliveries (one id per terminal state, none for anything else), and no delivery is left
//! with `event_pending`. The queue is at-least-once, so the same id may appear twice
//! (consumers deduplicate on it); the raw count is printed.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use futures_util::stream::{self, StreamExt};
use hark_shared::aws::{DynamoStore, SqsQueue};
use hark_shared::clock::{Clock, ManualClock};
use hark_shared::domain::{Delivery, DeliveryState, DeliveryStatus, ScheduledPost};
use hark_shared::events::HarkEvent;
use hark_shared::lambda::{Disposition, failed_ids, for_each_record, sqs_event};
use hark_shared::platforms::HttpClient;
use hark_shared::platforms::bluesky::record_key;
use hark_shared::ports::{
    ConfigStore, CreateOutcome, DeliveryStore, MAX_BATCH_MESSAGES, MessageQueue, QueueError,
    QueueName, ReceivedMessage, StoreError,
};
use hark_shared::publishing::{
    BatchConfigCache, DispatchSettings, PlatformPublishers, PublishJob, PublishOutcome,
    PublisherSettings, dispatch_due, handle_publish_message, schedule_post,
};
use hark_tests::fakes::{FakeMastodon, FakePds, Fault};
use hark_tests::publishing::{StaticSecrets, bluesky_channel, mastodon_channel};
use jiff::{SignedDuration, Timestamp};
use tokio::sync::Semaphore;

const POSTS: usize = 500;
const CONCURRENT_WORKERS: usize = 12;
const MAX_ROUNDS: usize = 40;
/// The claim lease, and the publish queue's visibility timeout, in this run.
const LEASE: SignedDuration = SignedDuration::from_mins(2);

/// The fault planned for one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Planned {
    None,
    ServerError,
    RateLimited,
    LostResponse,
    ServerErrorThenRateLimited,
    DuplicateMessage,
    RacingPublishers,
    CrashBeforeRecord,
}

impl Planned {
    fn for_index(k: usize) -> Planned {
        match k % 10 {
            0 => Planned::ServerError,
            1 => Planned::RateLimited,
            2 => Planned::LostResponse,
            3 => Planned::DuplicateMessage,
            4 => Planned::RacingPublishers,
            5 => Planned::CrashBeforeRecord,
            6 => Planned::ServerErrorThenRateLimited,
            _ => Planned::None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Planned::None => "none (control)",
            Planned::ServerError => "HTTP 500",
            Planned::RateLimited => "HTTP 429 + reset",
            Planned::LostResponse => "response lost after create",
            Planned::ServerErrorThenRateLimited => "HTTP 500, then 429",
            Planned::DuplicateMessage => "duplicate SQS message",
            Planned::RacingPublishers => "two publishers racing",
            Planned::CrashBeforeRecord => "crash between create and record",
        }
    }

    fn platform_faults(self) -> &'static [Fault] {
        const RESET: SignedDuration = SignedDuration::from_secs(90);
        match self {
            Planned::ServerError => &[Fault::ServerError],
            Planned::RateLimited => &[Fault::RateLimited { reset_in: RESET }],
            Planned::LostResponse => &[Fault::LoseResponse],
            Planned::ServerErrorThenRateLimited => {
                &[Fault::ServerError, Fault::RateLimited { reset_in: RESET }]
            }
            _ => &[],
        }
    }
}

// ------------------------------------------------------------------ injecting wrappers

/// The real store, except that the first write recording PUBLISHED for chosen deliveries
/// fails: the function "dies" after the platform created the post and before Hark knew.
struct CrashingStore {
    inner: DynamoStore,
    crash_on_publish: Mutex<HashSet<String>>,
    crashes: AtomicUsize,
}

hark_tests::delegate_config_store!(CrashingStore);

#[async_trait::async_trait]
impl DeliveryStore for CrashingStore {
    async fn create_delivery(&self, delivery: &Delivery) -> Result<CreateOutcome, StoreError> {
        self.inner.create_delivery(delivery).await
    }
    async fn get_delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        self.inner.get_delivery(id).await
    }
    async fn update_delivery(&self, delivery: &Delivery) -> Result<Delivery, StoreError> {
        if delivery.status() == DeliveryStatus::Published
            && self.crash_on_publish.lock().unwrap().remove(&delivery.id)
        {
            self.crashes.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Backend {
                operation: "PutItem delivery",
                retryable: true,
                source: "injected crash between the create and the record".into(),
            });
        }
        self.inner.update_delivery(delivery).await
    }
    async fn list_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.inner.list_due(now, limit).await
    }
    async fn list_deliveries(&self, post_id: Option<&str>) -> Result<Vec<Delivery>, StoreError> {
        self.inner.list_deliveries(post_id).await
    }
}

/// SQS, except that publish jobs of chosen deliveries are sent twice (SQS is
/// at-least-once: the same job can arrive twice).
struct DuplicatingQueue {
    inner: SqsQueue,
    duplicate: HashSet<String>,
    copies: AtomicUsize,
}

#[async_trait::async_trait]
impl MessageQueue for DuplicatingQueue {
    async fn send_batch(&self, queue: QueueName, bodies: &[String]) -> Result<(), QueueError> {
        let mut all = bodies.to_vec();
        if queue == QueueName::Publish {
            for body in bodies {
                let job: PublishJob = serde_json::from_str(body).expect("a publish job");
                if self.duplicate.contains(&job.delivery_id) {
                    all.push(body.clone());
                    self.copies.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        for chunk in all.chunks(MAX_BATCH_MESSAGES) {
            self.inner.send_batch(queue, chunk).await?;
        }
        Ok(())
    }
    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: SignedDuration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        self.inner.receive(queue, max, visibility).await
    }
    async fn delete(&self, queue: QueueName, receipt: &str) -> Result<(), QueueError> {
        self.inner.delete(queue, receipt).await
    }
    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt: &str,
        visibility: SignedDuration,
    ) -> Result<(), QueueError> {
        self.inner
            .change_visibility(queue, receipt, visibility)
            .await
    }
}

// ------------------------------------------------------------------ the Lambda side

struct Rig {
    store: CrashingStore,
    queue: DuplicatingQueue,
    publishers: PlatformPublishers,
    clock: Arc<ManualClock>,
    settings: PublisherSettings,
    outcomes: Mutex<Vec<(String, &'static str)>>,
}

impl Rig {
    /// One invocation of the publisher function on a batch of messages, as Lambda makes
    /// it (one configuration cache per invocation). Returns the batch item failures (the
    /// messages that stay on the queue).
    async fn invoke(&self, messages: &[ReceivedMessage]) -> Vec<String> {
        let store = &BatchConfigCache::new(&self.store);
        let response = for_each_record(sqs_event(messages), |r| async move {
            let outcome = handle_publish_message(
                store,
                &self.queue,
                &self.publishers,
                &r.body,
                &*self.clock,
                &self.settings,
            )
            .await?;
            let job: PublishJob = serde_json::from_str(&r.body).expect("a publish job");
            self.outcomes
                .lock()
                .unwrap()
                .push((job.delivery_id, outcome_name(&outcome)));
            Ok::<_, hark_shared::publishing::PublishingError>(if outcome.leave_on_queue() {
                Disposition::Retry
            } else {
                Disposition::Done
            })
        })
        .await;
        failed_ids(&response)
            .into_iter()
            .map(str::to_owned)
            .collect()
    }
}

fn outcome_name(o: &PublishOutcome) -> &'static str {
    match o {
        PublishOutcome::Published { .. } => "published",
        PublishOutcome::Requeued { .. } => "requeued",
        PublishOutcome::Failed { .. } => "failed",
        PublishOutcome::Unknown { .. } => "unknown",
        PublishOutcome::Cancelled { .. } => "cancelled",
        PublishOutcome::InFlight { .. } => "in flight",
        PublishOutcome::Skipped { .. } => "skipped",
    }
}

fn job_of(m: &ReceivedMessage) -> String {
    serde_json::from_str::<PublishJob>(&m.body)
        .expect("a publish job")
        .delivery_id
}

/// Deletes handled messages the way the Lambda service does after an invocation: one
/// `DeleteMessageBatch` per ten receipts.
async fn delete_handled(sqs: &aws_sdk_sqs::Client, url: &str, receipts: &[String]) {
    for chunk in receipts.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, r)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r)
                    .build()
                    .unwrap()
            })
            .collect();
        let out = sqs
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
        assert!(out.failed.is_empty(), "{:?}", out.failed);
    }
}

/// The events sent so far (read, then deleted in batches).
async fn take_events(
    queue: &dyn MessageQueue,
    sqs: &aws_sdk_sqs::Client,
    url: &str,
) -> Vec<HarkEvent> {
    let mut events = Vec::new();
    let mut receipts = Vec::new();
    let mut empty = 0;
    while empty < 2 {
        let got = queue
            .receive(QueueName::Events, 10, SignedDuration::from_mins(15))
            .await
            .unwrap();
        if got.is_empty() {
            empty += 1;
            continue;
        }
        empty = 0;
        for m in got {
            events.push(serde_json::from_str(&m.body).expect("every event is a HarkEvent"));
            receipts.push(m.receipt);
        }
    }
    delete_handled(sqs, url, &receipts).await;
    events
}

/// Everything visible on the publish queue now (each message hidden for 15 real minutes:
/// the test decides when a message comes back).
async fn receive_all(queue: &dyn MessageQueue) -> Vec<ReceivedMessage> {
    let mut all = Vec::new();
    let mut empty = 0;
    while empty < 2 {
        let got = queue
            .receive(QueueName::Publish, 10, SignedDuration::from_mins(15))
            .await
            .unwrap();
        if got.is_empty() {
            empty += 1;
        } else {
            empty = 0;
            all.extend(got);
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_1000_deliveries_under_injected_faults_then_no_duplicates_no_losses_and_one_event_per_terminal_state()
 {
    let started = Instant::now();
    let backend = hark_tests::aws_backend().await;
    let t0 = Timestamp::now();
    let clock = Arc::new(ManualClock::new(t0));
    let mastodon = FakeMastodon::start_with_clock(clock.clone()).await;
    let pds = FakePds::start_with_clock(clock.clone()).await;
    mastodon.set_lost_response_delay(Duration::from_millis(1500));
    pds.set_lost_response_delay(Duration::from_millis(1500));
    let store = &*backend.store;
    store
        .upsert(&mastodon_channel("masto", &mastodon))
        .await
        .unwrap();
    store.upsert(&bluesky_channel("sky", &pds)).await.unwrap();

    // ---- schedule 500 posts on both channels, due over the first ten minutes (as
    // `hark apply` would, several at a time)
    let mut plan: BTreeMap<String, (Planned, &'static str)> = BTreeMap::new();
    // As `hark apply` does: the channels are read once for the run, not once per post.
    let cached = BatchConfigCache::new(store);
    let scheduled: Vec<(usize, Vec<String>)> = stream::iter(0..POSTS)
        .map(|i| {
            let (cached, queue) = (&cached, &*backend.queue);
            async move {
                let post: ScheduledPost = serde_json::from_value(serde_json::json!({
                    "id": format!("post-{i:04}"),
                    "at": t0 + SignedDuration::from_millis(1200 * i as i64),
                    "channels": ["masto", "sky"],
                    "text": format!("Post {i:04} of the fault-injection run #hark"),
                }))
                .unwrap();
                cached.upsert(&post).await.unwrap();
                let report = schedule_post(cached, queue, &post, false, t0)
                    .await
                    .unwrap();
                (i, report.created)
            }
        })
        .buffer_unordered(CONCURRENT_WORKERS)
        .collect()
        .await;
    for (i, created) in scheduled {
        for (c, id) in created.iter().enumerate() {
            let platform = if c == 0 { "mastodon" } else { "bluesky" };
            plan.insert(id.clone(), (Planned::for_index(i), platform));
        }
    }
    assert_eq!(plan.len(), 2 * POSTS);
    let mut crash_on_publish = HashSet::new();
    let mut duplicate = HashSet::new();
    let mut racing = HashSet::new();
    for (id, (planned, platform)) in &plan {
        for fault in planned.platform_faults() {
            if *platform == "mastodon" {
                mastodon.inject(id, *fault);
            } else {
                pds.inject(&record_key(id), *fault);
            }
        }
        match planned {
            Planned::CrashBeforeRecord => {
                crash_on_publish.insert(id.clone());
            }
            Planned::DuplicateMessage => {
                duplicate.insert(id.clone());
            }
            Planned::RacingPublishers => {
                duplicate.insert(id.clone());
                racing.insert(id.clone());
            }
            _ => {}
        }
    }
    let rig = Arc::new(Rig {
        store: CrashingStore {
            inner: (*backend.store).clone(),
            crash_on_publish: Mutex::new(crash_on_publish),
            crashes: AtomicUsize::new(0),
        },
        queue: DuplicatingQueue {
            inner: (*backend.queue).clone(),
            duplicate,
            copies: AtomicUsize::new(0),
        },
        publishers: PlatformPublishers::new(
            // Shorter than the fakes' lost-response delay: the client gives up first.
            HttpClient::with_timeout(true, Duration::from_millis(700)).unwrap(),
            Arc::new(StaticSecrets::for_fakes()),
            clock.clone(),
        ),
        clock: clock.clone(),
        settings: PublisherSettings {
            owner: "fault-injection".into(),
            // Shorter than in production (the function timeout here is "instant"), so a
            // crashed attempt is recovered two ticks later; the queue's visibility timeout
            // below is kept at least this long, as the contract requires.
            claim_lease: LEASE,
            ..PublisherSettings::default()
        },
        outcomes: Mutex::new(Vec::new()),
    });

    // ---- run: one scheduler tick per simulated minute, then the publish queue drained by
    // concurrent invocations of up to ten messages each
    let publish_url = backend.queue_urls[&QueueName::Publish].clone();
    let events_url = backend.queue_urls[&QueueName::Events].clone();
    let mut deferred: Vec<(ReceivedMessage, Timestamp)> = Vec::new();
    let mut events: Vec<HarkEvent> = Vec::new();
    let mut rounds = 0;
    let mut redeliveries = 0;
    while rounds < MAX_ROUNDS {
        rounds += 1;
        let now = clock.now();
        dispatch_due(&rig.store, &rig.queue, now, &DispatchSettings::default())
            .await
            .unwrap();
        // Messages whose visibility timeout has passed come back.
        let (back, waiting): (Vec<_>, Vec<_>) =
            deferred.into_iter().partition(|(_, at)| *at <= now);
        deferred = waiting;
        for (m, _) in &back {
            rig.queue
                .change_visibility(QueueName::Publish, &m.receipt, SignedDuration::ZERO)
                .await
                .unwrap();
            redeliveries += 1;
        }
        let messages = receive_all(&rig.queue).await;
        // A duplicate's second copy arrives a round later; the two copies of a racing job
        // go to two invocations running at the same moment.
        let mut groups: BTreeMap<String, Vec<ReceivedMessage>> = BTreeMap::new();
        for m in messages {
            groups.entry(job_of(&m)).or_default().push(m);
        }
        let mut work: Vec<Vec<Vec<ReceivedMessage>>> = Vec::new();
        let mut plain: Vec<ReceivedMessage> = Vec::new();
        for (id, mut copies) in groups {
            if copies.len() == 2 && racing.contains(&id) {
                let other = copies.pop().unwrap();
                work.push(vec![copies, vec![other]]);
                continue;
            }
            for later in copies.split_off(1) {
                deferred.push((later, now + SignedDuration::from_secs(60)));
            }
            plain.extend(copies);
        }
        work.extend(plain.chunks(10).map(|batch| vec![batch.to_vec()]));
        let limit = Arc::new(Semaphore::new(CONCURRENT_WORKERS));
        let mut tasks = tokio::task::JoinSet::new();
        for invocations in work {
            let (rig, limit) = (rig.clone(), limit.clone());
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await.unwrap();
                let failed = match invocations.as_slice() {
                    [a, b] => {
                        let (fa, fb) = tokio::join!(rig.invoke(a), rig.invoke(b));
                        [fa, fb].concat()
                    }
                    [one] => rig.invoke(one).await,
                    _ => unreachable!("one or two invocations"),
                };
                (invocations.concat(), failed)
            });
        }
        let mut worked = false;
        let mut handled = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (messages, failed) = joined.unwrap();
            for m in messages {
                worked = true;
                if failed.contains(&m.message_id) {
                    // Back after the visibility timeout, which is at least the claim lease.
                    deferred.push((m, now + LEASE));
                } else {
                    handled.push(m.receipt);
                }
            }
        }
        delete_handled(&backend.sqs, &publish_url, &handled).await;
        events.extend(take_events(&rig.queue.inner, &backend.sqs, &events_url).await);
        if !worked && deferred.is_empty() && now > t0 + SignedDuration::from_mins(11) {
            let open = rig
                .store
                .list_deliveries(None)
                .await
                .unwrap()
                .iter()
                .filter(|d| !d.status().is_terminal() || d.event_pending)
                .count();
            if open == 0 {
                break;
            }
        }
        clock.advance(SignedDuration::from_mins(1));
    }

    // ---- what happened
    let deliveries = rig.store.list_deliveries(None).await.unwrap();
    let by_id: HashMap<&str, &Delivery> = deliveries.iter().map(|d| (d.id.as_str(), d)).collect();
    let statuses = mastodon.created();
    let writes = pds.writes();
    let mut masto_posts: HashMap<String, usize> = HashMap::new();
    for s in &statuses {
        *masto_posts
            .entry(s.key.clone().unwrap_or_default())
            .or_default() += 1;
    }
    let rkeys: HashMap<String, String> =
        plan.keys().map(|id| (record_key(id), id.clone())).collect();
    let mut sky_posts: HashMap<String, usize> = HashMap::new();
    for (rkey, _) in &writes {
        *sky_posts
            .entry(rkeys.get(rkey).cloned().unwrap_or_else(|| rkey.clone()))
            .or_default() += 1;
    }
    events.extend(take_events(&rig.queue.inner, &backend.sqs, &events_url).await);
    let mut event_ids: BTreeMap<String, usize> = BTreeMap::new();
    for e in &events {
        *event_ids.entry(e.event_id()).or_default() += 1;
    }
    let outcomes = rig.outcomes.lock().unwrap().clone();

    // ---- the tally table
    #[derive(Default)]
    struct Row {
        deliveries: usize,
        published: usize,
        failed: usize,
        other: usize,
        platform_posts: usize,
        attempts: u32,
        in_flight_or_skipped: usize,
    }
    let mut rows: BTreeMap<(Planned, &str), Row> = BTreeMap::new();
    for (id, (planned, platform)) in &plan {
        let row = rows.entry((*planned, platform)).or_default();
        row.deliveries += 1;
        let d = by_id.get(id.as_str());
        match d.map(|d| d.status()) {
            Some(DeliveryStatus::Published) => row.published += 1,
            Some(DeliveryStatus::Failed) => row.failed += 1,
            _ => row.other += 1,
        }
        row.attempts += d.map_or(0, |d| d.attempts);
        row.platform_posts += if *platform == "mastodon" {
            masto_posts.get(id).copied().unwrap_or(0)
        } else {
            sky_posts.get(id).copied().unwrap_or(0)
        };
        row.in_flight_or_skipped += outcomes
            .iter()
            .filter(|(o_id, name)| o_id == id && matches!(*name, "in flight" | "skipped"))
            .count();
    }
    println!();
    println!(
        "{:<33} {:<9} {:>10} {:>10} {:>7} {:>6} {:>15} {:>9} {:>15}",
        "fault injected",
        "platform",
        "deliveries",
        "published",
        "failed",
        "other",
        "posts on platf.",
        "attempts",
        "late/dup jobs"
    );
    let mut total = Row::default();
    for ((planned, platform), r) in &rows {
        println!(
            "{:<33} {:<9} {:>10} {:>10} {:>7} {:>6} {:>15} {:>9} {:>15}",
            planned.name(),
            platform,
            r.deliveries,
            r.published,
            r.failed,
            r.other,
            r.platform_posts,
            r.attempts,
            r.in_flight_or_skipped
        );
        total.deliveries += r.deliveries;
        total.published += r.published;
        total.failed += r.failed;
        total.other += r.other;
        total.platform_posts += r.platform_posts;
        total.attempts += r.attempts;
        total.in_flight_or_skipped += r.in_flight_or_skipped;
    }
    println!(
        "{:<33} {:<9} {:>10} {:>10} {:>7} {:>6} {:>15} {:>9} {:>15}",
        "total",
        "",
        total.deliveries,
        total.published,
        total.failed,
        total.other,
        total.platform_posts,
        total.attempts,
        total.in_flight_or_skipped
    );
    let injected_platform: BTreeMap<&str, usize> = mastodon
        .injected()
        .iter()
        .chain(pds.injected().iter())
        .fold(BTreeMap::new(), |mut m, (_, f)| {
            *m.entry(f.name()).or_default() += 1;
            m
        });
    println!(
        "faults fired: {injected_platform:?}; crashes between create and record: {}; duplicate job copies sent: {}; jobs redelivered after a failure or as a duplicate: {redeliveries}",
        rig.store.crashes.load(Ordering::SeqCst),
        rig.queue.copies.load(Ordering::SeqCst),
    );
    let raw_events = events.len();
    println!(
        "events: {} distinct ids, {raw_events} messages ({} re-sent duplicates of an id); create requests: Mastodon {}, Bluesky createRecord {}, Bluesky logins {}",
        event_ids.len(),
        raw_events - event_ids.len(),
        mastodon.create_requests(),
        pds.calls("com.atproto.repo.createRecord"),
        pds.calls("com.atproto.server.createSession"),
    );
    println!(
        "{rounds} simulated minutes, {:.1} s wall time",
        started.elapsed().as_secs_f64()
    );

    // ---- the assertions
    // Faults were really injected, every kind of them.
    assert_eq!(
        rig.store.crashes.load(Ordering::SeqCst),
        100,
        "every planned crash fired"
    );
    assert_eq!(
        rig.queue.copies.load(Ordering::SeqCst),
        200,
        "every planned duplicate and race copy was sent"
    );
    assert_eq!(
        mastodon.injected().len() + pds.injected().len(),
        500,
        "{injected_platform:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|(id, o)| racing.contains(id) && *o == "in flight"),
        "at least one race was really concurrent"
    );
    // No losses: every delivery exists and ended PUBLISHED (every injected fault is one a
    // publisher must recover from); a FAILED one would need its reason.
    assert_eq!(deliveries.len(), 2 * POSTS);
    for d in &deliveries {
        assert!(d.status().is_terminal(), "not terminal: {d:?}");
        if let DeliveryState::Failed { reason, .. } = &d.state {
            assert!(!reason.is_empty());
        }
        assert_eq!(d.status(), DeliveryStatus::Published, "{d:?}");
    }
    // No duplicates on the platforms: one post per delivery, and the recorded id is it.
    assert_eq!(statuses.len(), POSTS, "Mastodon statuses");
    assert!(
        masto_posts.values().all(|n| *n == 1),
        "a Mastodon key was posted twice"
    );
    let masto_texts: BTreeSet<&str> = statuses.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(masto_texts.len(), POSTS, "a Mastodon text was posted twice");
    assert_eq!(writes.len(), POSTS, "Bluesky records");
    let sky_texts: BTreeSet<&str> = writes.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(sky_texts.len(), POSTS, "a Bluesky text was posted twice");
    for s in &statuses {
        let key = s
            .key
            .as_deref()
            .expect("every create carries an Idempotency-Key");
        let DeliveryState::Published { platform_id, .. } = &by_id[key].state else {
            panic!("{key}");
        };
        assert_eq!(
            platform_id, &s.id,
            "the recorded id is the status that exists"
        );
    }
    for (rkey, _) in &writes {
        let DeliveryState::Published { platform_id, .. } = &by_id[rkeys[rkey].as_str()].state
        else {
            panic!("{rkey}");
        };
        assert!(
            platform_id.ends_with(rkey.as_str()),
            "{platform_id} is the record at {rkey}"
        );
    }
    // Exactly one event per terminal state (by id), none pending, nothing else announced.
    assert!(
        deliveries.iter().all(|d| !d.event_pending),
        "an announcement is pending"
    );
    let expected: BTreeSet<String> = deliveries.iter().filter_map(Delivery::event_id).collect();
    let emitted: BTreeSet<String> = event_ids.keys().cloned().collect();
    assert_eq!(emitted, expected);
    assert!(
        events
            .iter()
            .all(|e| matches!(e, HarkEvent::PostPublished { .. }))
    );
    // Nothing left behind on the queues.
    assert!(deferred.is_empty());
    assert!(
        receive_all(&rig.queue).await.is_empty(),
        "publish queue drained"
    );
    let dlq = rig
        .queue
        .receive(QueueName::PublishDlq, 10, SignedDuration::from_secs(1))
        .await
        .unwrap();
    assert!(dlq.is_empty(), "nothing was dead-lettered: {dlq:?}");
}
