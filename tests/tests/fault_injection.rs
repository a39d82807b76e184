//! Fault injection, in two halves of 1,000 deliveries each.
//!
//! The first: 500 posts × a Mastodon and a Bluesky channel (the platforms with an
//! idempotency guard) through the real scheduler (dispatch and settle) and publisher code
//! over the AWS emulator and the fake platforms, with faults injected at every layer:
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
//! shorter than the claim lease, has passed; a retry job the publisher sends with a delay
//! arrives at its simulated instant. Invocations get up to ten messages, as Lambda
//! gives them, and run twelve at a time.
//!
//! "Every terminal state emitted exactly one event" is checked as: the set of distinct
//! event ids on the events queue equals the set of `Delivery::event_id()` of the final
//! deliveries (one id per terminal state, none for anything else), and no delivery is left
//! with `event_pending`. The queue is at-least-once, so the same id may appear twice
//! (consumers deduplicate on it); the raw count is printed.
//!
//! The second half (X, Facebook, LinkedIn, Reddit: no guard, so the reconciler settles
//! every unknown outcome) is described where it starts, below.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use futures_util::stream::{self, StreamExt};
use hark_shared::aws::{DynamoStore, SqsQueue};
use hark_shared::clock::{Clock, ManualClock};
use hark_shared::domain::{Delivery, DeliveryState, DeliveryStatus, ScheduledPost};
use hark_shared::embedded::{EmbeddedOptions, EmbeddedStore};
use hark_shared::events::HarkEvent;
use hark_shared::lambda::{Disposition, failed_ids, for_each_record, sqs_event};
use hark_shared::platforms::bluesky::record_key;
use hark_shared::platforms::{
    HttpClient, Lookup, OutgoingPost, PlatformError, Published, Publisher,
};
use hark_shared::ports::{
    ConfigStore, CreateOutcome, DeliveryStore, MAX_BATCH_MESSAGES, MessageQueue, QueueError,
    QueueName, ReceivedMessage, StoreError,
};
use hark_shared::publishing::{
    BatchConfigCache, DispatchSettings, PlatformPublishers, PublishJob, PublishOutcome,
    PublisherSettings, SettleSettings, dispatch_due, handle_publish_message, schedule_post,
    settle_due,
};
use hark_shared::publishing::{ChannelPublisher, PublisherFactory};
use hark_tests::fakes::facebook::{FACEBOOK_PAGE_ID, FACEBOOK_PAGE_TOKEN, FakeFacebook};
use hark_tests::fakes::linkedin::{FakeLinkedIn, LINKEDIN_AUTHOR, LINKEDIN_TOKEN};
use hark_tests::fakes::reddit::{FakeReddit, REDDIT_USER_TOKEN};
use hark_tests::fakes::x::{FakeX, X_ACCESS_TOKEN};
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

/// SQS, except that publish jobs of chosen deliveries are sent twice (SQS is
/// at-least-once: the same job can arrive twice), and that delayed messages are held
/// here until their *simulated* instant: SQS's `DelaySeconds` counts real seconds while
/// this run simulates a minute in a fraction of one (the contract suite checks
/// `DelaySeconds` on the emulator itself).
struct DuplicatingQueue {
    inner: SqsQueue,
    duplicate: HashSet<String>,
    copies: AtomicUsize,
    clock: Arc<ManualClock>,
    held: Mutex<Vec<(Timestamp, QueueName, String)>>,
}

impl DuplicatingQueue {
    /// Sends the held messages whose delay has passed.
    async fn release_due(&self, now: Timestamp) {
        let due: Vec<(QueueName, String)> = {
            let mut held = self.held.lock().unwrap();
            let (due, later): (Vec<_>, Vec<_>) = held.drain(..).partition(|(at, ..)| *at <= now);
            *held = later;
            due.into_iter().map(|(_, q, b)| (q, b)).collect()
        };
        for (queue, body) in due {
            self.send_batch(queue, &[body]).await.unwrap();
        }
    }

    fn holding(&self) -> usize {
        self.held.lock().unwrap().len()
    }
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
    async fn send_batch_delayed(
        &self,
        queue: QueueName,
        bodies: &[String],
        delay: SignedDuration,
    ) -> Result<(), QueueError> {
        hark_shared::ports::check_batch(bodies)?;
        hark_shared::ports::check_delay(delay)?;
        let at = self.clock.now() + delay;
        self.held
            .lock()
            .unwrap()
            .extend(bodies.iter().map(|b| (at, queue, b.clone())));
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

/// The settle sweep of this run: the claim lease is [`LEASE`].
fn settle_settings() -> SettleSettings {
    SettleSettings {
        claim_lease: LEASE,
        ..SettleSettings::default()
    }
}

// ------------------------------------------------------------------ the Lambda side

struct Rig {
    store: DyingStore<DynamoStore>,
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
        store: DyingStore::new(backend.store.clone(), crash_on_publish, HashSet::new()),
        queue: DuplicatingQueue {
            inner: (*backend.queue).clone(),
            duplicate,
            copies: AtomicUsize::new(0),
            clock: clock.clone(),
            held: Mutex::new(Vec::new()),
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
        // The scheduler tick: due deliveries dispatched, stranded and unknown ones settled.
        dispatch_due(&rig.store, &rig.queue, now, &DispatchSettings::default())
            .await
            .unwrap();
        settle_due(
            &rig.store,
            &rig.queue,
            &rig.publishers,
            now,
            &settle_settings(),
        )
        .await
        .unwrap();
        rig.queue.release_due(now).await;
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
        if !worked
            && deferred.is_empty()
            && rig.queue.holding() == 0
            && now > t0 + SignedDuration::from_mins(11)
        {
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
        rig.store.deaths.load(Ordering::SeqCst),
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
        rig.store.deaths.load(Ordering::SeqCst),
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

// ==================================================================== platforms without a guard
//
// X, Facebook Pages, LinkedIn and Reddit have no idempotency guard: a create whose outcome
// is unknown is never sent again blindly; it becomes UNKNOWN and the reconciler (part of
// the scheduler tick) looks for it on the account. 250 posts × the four platforms = 1,000
// deliveries, on the embedded backend: the AWS half above already runs 1,000 deliveries
// over the emulator (which serialises every call); this half exercises what only the
// reconciler and the settle sweep do, and the embedded queue follows the simulated clock,
// so delayed retry jobs and visibility timeouts need no emulation in the rig.
//
// | fault | where | what happens |
// |---|---|---|
// | HTTP 500 | platform | the first create answers 500 before creating anything |
// | HTTP 429 + reset | platform | the first create is rate-limited; the reset is 90 s ahead |
// | response lost after create | platform | the post is created, the answer never arrives → UNKNOWN → found |
// | request lost before the server | client | the connection drops before the request arrives → UNKNOWN → not found → sent once |
// | 500, then response lost | platform | both, on the first two attempts |
// | worker died after the create | store + queue | recording PUBLISHED fails, the job is dead-lettered → the sweep makes it UNKNOWN → found |
// | worker died before sending | store + queue | recording SENT fails, the job is dead-lettered → the sweep re-dispatches it |

const UNGUARDED_POSTS: usize = 250;
const UNGUARDED_MAX_ROUNDS: usize = 60;
const UNGUARDED_PLATFORMS: [&str; 4] = ["x", "facebook", "linkedin", "reddit"];

/// The fault planned for one post (on all four of its deliveries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Unguarded {
    None,
    ServerError,
    RateLimited,
    LostResponse,
    LostRequest,
    ServerErrorThenLostResponse,
    DiedAfterCreate,
    DiedBeforeSend,
}

impl Unguarded {
    fn for_index(k: usize) -> Unguarded {
        match k % 10 {
            0 => Unguarded::ServerError,
            1 => Unguarded::RateLimited,
            2 => Unguarded::LostResponse,
            3 => Unguarded::LostRequest,
            4 => Unguarded::ServerErrorThenLostResponse,
            5 => Unguarded::DiedAfterCreate,
            6 => Unguarded::DiedBeforeSend,
            _ => Unguarded::None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Unguarded::None => "none (control)",
            Unguarded::ServerError => "HTTP 500",
            Unguarded::RateLimited => "HTTP 429 + reset",
            Unguarded::LostResponse => "response lost after create",
            Unguarded::LostRequest => "request lost before the server",
            Unguarded::ServerErrorThenLostResponse => "HTTP 500, then response lost",
            Unguarded::DiedAfterCreate => "worker died after create, job DLQ",
            Unguarded::DiedBeforeSend => "worker died before send, job DLQ",
        }
    }

    fn platform_faults(self) -> &'static [Fault] {
        const RESET: SignedDuration = SignedDuration::from_secs(90);
        match self {
            Unguarded::ServerError => &[Fault::ServerError],
            Unguarded::RateLimited => &[Fault::RateLimited { reset_in: RESET }],
            Unguarded::LostResponse => &[Fault::LoseResponse],
            Unguarded::ServerErrorThenLostResponse => &[Fault::ServerError, Fault::LoseResponse],
            _ => &[],
        }
    }

    /// Whether the delivery must pass through UNKNOWN (and be settled by the reconciler).
    fn goes_unknown(self) -> bool {
        matches!(
            self,
            Unguarded::LostResponse
                | Unguarded::LostRequest
                | Unguarded::ServerErrorThenLostResponse
                | Unguarded::DiedAfterCreate
        )
    }
}

/// A store whose chosen deliveries' workers "die": the first write recording PUBLISHED (after
/// the platform created the post, before Hark knew) or SENT (before the create) fails.
/// Used over DynamoDB (moto) and over the embedded store.
struct DyingStore<T: ?Sized> {
    inner: Arc<T>,
    die_after_create: Mutex<HashSet<String>>,
    die_before_send: Mutex<HashSet<String>>,
    deaths: AtomicUsize,
}

impl<T: ?Sized> DyingStore<T> {
    fn new(inner: Arc<T>, after_create: HashSet<String>, before_send: HashSet<String>) -> Self {
        DyingStore {
            inner,
            die_after_create: Mutex::new(after_create),
            die_before_send: Mutex::new(before_send),
            deaths: AtomicUsize::new(0),
        }
    }
}

hark_tests::delegate_config_store!(DyingStore<DynamoStore>);
hark_tests::delegate_config_store!(DyingStore<EmbeddedStore>);

#[async_trait::async_trait]
impl<T: DeliveryStore + ?Sized + 'static> DeliveryStore for DyingStore<T> {
    async fn create_delivery(&self, delivery: &Delivery) -> Result<CreateOutcome, StoreError> {
        self.inner.create_delivery(delivery).await
    }
    async fn get_delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        self.inner.get_delivery(id).await
    }
    async fn update_delivery(&self, delivery: &Delivery) -> Result<Delivery, StoreError> {
        let dies = match delivery.status() {
            DeliveryStatus::Published => &self.die_after_create,
            DeliveryStatus::Sent => &self.die_before_send,
            _ => return self.inner.update_delivery(delivery).await,
        };
        if dies.lock().unwrap().remove(&delivery.id) {
            self.deaths.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Backend {
                operation: "update_delivery",
                retryable: true,
                source: "injected: the worker died here".into(),
            });
        }
        self.inner.update_delivery(delivery).await
    }
    async fn list_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.inner.list_due(now, limit).await
    }
    async fn list_to_settle(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.inner.list_to_settle(now, limit).await
    }
    async fn list_deliveries(&self, post_id: Option<&str>) -> Result<Vec<Delivery>, StoreError> {
        self.inner.list_deliveries(post_id).await
    }
}

/// The real publishers, except that the first create of chosen deliveries is lost on the
/// way: the connection drops before the request reaches the platform, which the client
/// cannot tell from a lost answer (`Ambiguous`).
struct LosingPublishers {
    inner: PlatformPublishers,
    lose: Arc<Mutex<HashSet<String>>>,
    lost: Arc<AtomicUsize>,
}

struct LosingPublisher {
    inner: Arc<dyn Publisher>,
    platform: hark_shared::domain::Platform,
    lose: Arc<Mutex<HashSet<String>>>,
    lost: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Publisher for LosingPublisher {
    async fn publish(&self, post: &OutgoingPost, key: &str) -> Result<Published, PlatformError> {
        if self.lose.lock().unwrap().remove(key) {
            self.lost.fetch_add(1, Ordering::SeqCst);
            return Err(PlatformError::Ambiguous {
                platform: self.platform,
                reason: "injected: the connection dropped after the request was written".into(),
            });
        }
        self.inner.publish(post, key).await
    }

    async fn find_published(
        &self,
        post: &OutgoingPost,
        since: Timestamp,
    ) -> Result<Lookup, PlatformError> {
        self.inner.find_published(post, since).await
    }
}

#[async_trait::async_trait]
impl PublisherFactory for LosingPublishers {
    async fn publisher_for(
        &self,
        channel: &hark_shared::domain::Channel,
    ) -> Result<ChannelPublisher, PlatformError> {
        let built = self.inner.publisher_for(channel).await?;
        Ok(ChannelPublisher {
            publisher: Arc::new(LosingPublisher {
                inner: built.publisher,
                platform: channel.platform,
                lose: self.lose.clone(),
                lost: self.lost.clone(),
            }),
            credentials: built.credentials,
        })
    }
}

fn unguarded_channel(id: &str, json: serde_json::Value) -> hark_shared::domain::Channel {
    let mut v = serde_json::json!({ "id": id, "platform": id });
    v.as_object_mut()
        .unwrap()
        .extend(json.as_object().unwrap().clone());
    serde_json::from_value(v).expect("a valid channel")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_1000_deliveries_on_platforms_without_a_guard_under_injected_faults_then_every_unknown_is_settled_with_no_duplicates_and_no_losses()
 {
    let started = Instant::now();
    let t0 = Timestamp::now();
    let clock = Arc::new(ManualClock::new(t0));
    let embedded = Arc::new(
        EmbeddedStore::open_in_memory(EmbeddedOptions {
            retention_days: hark_tests::RETENTION_DAYS,
            max_receive_count: hark_tests::MAX_RECEIVES,
            clock: clock.clone(),
        })
        .unwrap(),
    );
    let x = FakeX::start_with_clock(clock.clone()).await;
    let fb = FakeFacebook::start_with_clock(clock.clone()).await;
    let li = FakeLinkedIn::start_with_clock(clock.clone()).await;
    let rd = FakeReddit::start_with_clock(clock.clone()).await;
    x.set_lost_response_delay(Duration::from_millis(1500));
    fb.set_lost_response_delay(Duration::from_millis(1500));
    li.set_lost_response_delay(Duration::from_millis(1500));
    rd.set_lost_response_delay(Duration::from_millis(1500));
    let channels = [
        unguarded_channel(
            "x",
            serde_json::json!({"base_url": x.base_url(), "token": "env:X_TOKEN"}),
        ),
        unguarded_channel(
            "facebook",
            serde_json::json!({"base_url": fb.uri(), "account": FACEBOOK_PAGE_ID, "token": "env:FB_TOKEN"}),
        ),
        unguarded_channel(
            "linkedin",
            serde_json::json!({"base_url": li.uri(), "account": LINKEDIN_AUTHOR, "token": "env:LI_TOKEN"}),
        ),
        unguarded_channel(
            "reddit",
            serde_json::json!({"base_url": rd.uri(), "account": "hark", "token": "env:RD_TOKEN"}),
        ),
    ];
    for channel in &channels {
        embedded.upsert(channel).await.unwrap();
    }
    let mut secrets = StaticSecrets::for_fakes();
    for (name, value) in [
        ("X_TOKEN", X_ACCESS_TOKEN),
        ("FB_TOKEN", FACEBOOK_PAGE_TOKEN),
        ("LI_TOKEN", LINKEDIN_TOKEN),
        ("RD_TOKEN", REDDIT_USER_TOKEN),
    ] {
        secrets.0.insert(name.to_owned(), value.to_owned());
    }

    // ---- schedule 250 posts on the four channels, due over the first five minutes
    let text_of = |i: usize| format!("Post {i:04} of the unguarded reliability run");
    let mut plan: BTreeMap<String, (Unguarded, &'static str, String)> = BTreeMap::new();
    for i in 0..UNGUARDED_POSTS {
        let post: ScheduledPost = serde_json::from_value(serde_json::json!({
            "id": format!("u-{i:04}"),
            "at": t0 + SignedDuration::from_millis(1200 * i as i64),
            "channels": UNGUARDED_PLATFORMS,
            "text": text_of(i),
        }))
        .unwrap();
        embedded.upsert(&post).await.unwrap();
        let report = schedule_post(&*embedded, &*embedded, &post, false, t0)
            .await
            .unwrap();
        assert_eq!(report.created.len(), 4, "{:?}", report.created);
        for id in report.created {
            let platform = UNGUARDED_PLATFORMS
                .into_iter()
                .find(|p| id.contains(&format!(".{p}.")))
                .unwrap();
            plan.insert(id, (Unguarded::for_index(i), platform, text_of(i)));
        }
    }
    assert_eq!(plan.len(), 4 * UNGUARDED_POSTS);
    let (mut lose, mut die_after, mut die_before) =
        (HashSet::new(), HashSet::new(), HashSet::new());
    for (id, (planned, platform, text)) in &plan {
        for fault in planned.platform_faults() {
            match *platform {
                "x" => x.inject(text, *fault),
                "facebook" => fb.inject(text, *fault),
                "linkedin" => li.inject(text, *fault),
                _ => rd.inject(text, *fault),
            }
        }
        match planned {
            Unguarded::LostRequest => lose.insert(id.clone()),
            Unguarded::DiedAfterCreate => die_after.insert(id.clone()),
            Unguarded::DiedBeforeSend => die_before.insert(id.clone()),
            _ => false,
        };
    }
    let store = DyingStore::new(embedded.clone(), die_after, die_before);
    let publishers = LosingPublishers {
        inner: PlatformPublishers::new(
            // Shorter than the fakes' lost-response delay: the client gives up first.
            HttpClient::with_timeout(true, Duration::from_millis(700)).unwrap(),
            Arc::new(secrets),
            clock.clone(),
        ),
        lose: Arc::new(Mutex::new(lose)),
        lost: Arc::new(AtomicUsize::new(0)),
    };
    let settings = PublisherSettings {
        owner: "fault-injection-unguarded".into(),
        claim_lease: LEASE,
        ..PublisherSettings::default()
    };
    let queue: &dyn MessageQueue = &*embedded;

    // ---- run: one scheduler tick (dispatch, then settle) per simulated minute, then the
    // publish queue drained by concurrent invocations of up to ten messages each
    let mut events: Vec<HarkEvent> = Vec::new();
    let mut dead_lettered = 0;
    let mut settled = SettleTotals::default();
    let mut rounds = 0;
    while rounds < UNGUARDED_MAX_ROUNDS {
        rounds += 1;
        let now = clock.now();
        dispatch_due(&store, queue, now, &DispatchSettings::default())
            .await
            .unwrap();
        let report = settle_due(&store, queue, &publishers, now, &settle_settings())
            .await
            .unwrap();
        settled.add(&report);
        let mut messages = Vec::new();
        loop {
            let got = queue.receive(QueueName::Publish, 10, LEASE).await.unwrap();
            if got.is_empty() {
                break;
            }
            messages.extend(got);
        }
        let results: Vec<(ReceivedMessage, Result<bool, String>)> = stream::iter(messages)
            .map(|m| {
                let (store, publishers, settings, clock) = (&store, &publishers, &settings, &clock);
                async move {
                    let cached = BatchConfigCache::new(store);
                    let outcome = handle_publish_message(
                        &cached, queue, publishers, &m.body, &**clock, settings,
                    )
                    .await;
                    let result = outcome
                        .map(|o| o.leave_on_queue())
                        .map_err(|e| e.to_string());
                    (m, result)
                }
            })
            .buffer_unordered(CONCURRENT_WORKERS)
            .collect()
            .await;
        for (m, result) in results {
            match result {
                // Handled: Lambda deletes it.
                Ok(false) => queue.delete(QueueName::Publish, &m.receipt).await.unwrap(),
                // In flight elsewhere: back after the visibility timeout (the claim lease).
                Ok(true) => {}
                // The worker "died" on it, on every receive: dead-lettered. Only the
                // scheduler's settle sweep can save the delivery now.
                Err(_) => {
                    queue.delete(QueueName::Publish, &m.receipt).await.unwrap();
                    dead_lettered += 1;
                }
            }
        }
        loop {
            let got = queue
                .receive(QueueName::Events, 10, SignedDuration::from_mins(15))
                .await
                .unwrap();
            if got.is_empty() {
                break;
            }
            for m in got {
                events.push(serde_json::from_str(&m.body).expect("a HarkEvent"));
                queue.delete(QueueName::Events, &m.receipt).await.unwrap();
            }
        }
        let open = store
            .list_deliveries(None)
            .await
            .unwrap()
            .iter()
            .filter(|d| !d.status().is_terminal() || d.event_pending)
            .count();
        if open == 0 {
            break;
        }
        clock.advance(SignedDuration::from_mins(1));
    }

    // ---- what happened
    let deliveries = store.list_deliveries(None).await.unwrap();
    let by_id: HashMap<&str, &Delivery> = deliveries.iter().map(|d| (d.id.as_str(), d)).collect();
    // (platform, text) → ids of the posts on the platform with that text
    let mut on_platform: HashMap<(&str, String), Vec<String>> = HashMap::new();
    for t in x.created() {
        on_platform.entry(("x", t.text)).or_default().push(t.id);
    }
    for p in fb.created() {
        on_platform
            .entry(("facebook", p.message))
            .or_default()
            .push(p.id);
    }
    for p in li.created() {
        on_platform
            .entry(("linkedin", p.text))
            .or_default()
            .push(p.urn);
    }
    for p in rd.created() {
        on_platform
            .entry(("reddit", p.title))
            .or_default()
            .push(p.name);
    }
    let mut unknown_events: HashMap<&str, usize> = HashMap::new();
    let mut event_ids: BTreeMap<String, usize> = BTreeMap::new();
    for e in &events {
        *event_ids.entry(e.event_id()).or_default() += 1;
        if let HarkEvent::PostUnknown { delivery_id, .. } = e {
            let id = plan.get_key_value(delivery_id).map(|(k, _)| k.as_str());
            *unknown_events.entry(id.unwrap_or("?")).or_default() += 1;
        }
    }

    // ---- the tally table
    #[derive(Default)]
    struct Row {
        deliveries: usize,
        published: usize,
        failed: usize,
        other: usize,
        platform_posts: usize,
        duplicates: usize,
        went_unknown: usize,
        unknown_settled: usize,
        attempts: u32,
    }
    let mut rows: BTreeMap<(Unguarded, &str), Row> = BTreeMap::new();
    for (id, (planned, platform, text)) in &plan {
        let row = rows.entry((*planned, platform)).or_default();
        row.deliveries += 1;
        let d = by_id.get(id.as_str());
        match d.map(|d| d.status()) {
            Some(DeliveryStatus::Published) => row.published += 1,
            Some(DeliveryStatus::Failed) => row.failed += 1,
            _ => row.other += 1,
        }
        row.attempts += d.map_or(0, |d| d.attempts);
        let posts = on_platform
            .get(&(*platform, text.clone()))
            .map_or(0, Vec::len);
        row.platform_posts += posts;
        row.duplicates += posts.saturating_sub(1);
        if unknown_events.contains_key(id.as_str()) {
            row.went_unknown += 1;
            if d.is_some_and(|d| d.status().is_terminal()) {
                row.unknown_settled += 1;
            }
        }
    }
    let header = (
        "fault injected",
        "platform",
        "deliveries",
        "published",
        "failed",
        "other",
        "posts on platf.",
        "duplicates",
        "went UNKNOWN",
        "UNKNOWN settled",
        "attempts",
    );
    println!();
    println!(
        "{:<36} {:<9} {:>10} {:>9} {:>6} {:>5} {:>15} {:>10} {:>12} {:>15} {:>8}",
        header.0,
        header.1,
        header.2,
        header.3,
        header.4,
        header.5,
        header.6,
        header.7,
        header.8,
        header.9,
        header.10
    );
    let mut total = Row::default();
    let print_row = |name: &str, platform: &str, r: &Row| {
        println!(
            "{:<36} {:<9} {:>10} {:>9} {:>6} {:>5} {:>15} {:>10} {:>12} {:>15} {:>8}",
            name,
            platform,
            r.deliveries,
            r.published,
            r.failed,
            r.other,
            r.platform_posts,
            r.duplicates,
            r.went_unknown,
            r.unknown_settled,
            r.attempts
        );
    };
    for ((planned, platform), r) in &rows {
        print_row(planned.name(), platform, r);
        total.deliveries += r.deliveries;
        total.published += r.published;
        total.failed += r.failed;
        total.other += r.other;
        total.platform_posts += r.platform_posts;
        total.duplicates += r.duplicates;
        total.went_unknown += r.went_unknown;
        total.unknown_settled += r.unknown_settled;
        total.attempts += r.attempts;
    }
    print_row("total", "", &total);
    let lost = total.deliveries - total.published;
    println!(
        "duplicates: {}; lost (not published): {lost}; UNKNOWN settled: {}/{}",
        total.duplicates, total.unknown_settled, total.went_unknown
    );
    let fired: BTreeMap<&str, usize> = x
        .injected()
        .iter()
        .chain(fb.injected().iter())
        .chain(li.injected().iter())
        .chain(rd.injected().iter())
        .fold(BTreeMap::new(), |mut m, (_, f)| {
            *m.entry(f.name()).or_default() += 1;
            m
        });
    println!(
        "faults fired: {fired:?}; requests lost before the server: {}; worker deaths: {}; jobs dead-lettered: {dead_lettered}",
        publishers.lost.load(Ordering::SeqCst),
        store.deaths.load(Ordering::SeqCst),
    );
    println!(
        "settle sweep: {settled:?}; events: {} distinct ids, {} messages",
        event_ids.len(),
        events.len()
    );
    println!(
        "{rounds} simulated minutes, {:.1} s wall time",
        started.elapsed().as_secs_f64()
    );

    // ---- the assertions
    // Every planned fault really fired.
    assert_eq!(
        fired.values().sum::<usize>(),
        4 * 25 * 5,
        "500 / 429 / lost answers: {fired:?}"
    );
    assert_eq!(publishers.lost.load(Ordering::SeqCst), 100);
    assert_eq!(store.deaths.load(Ordering::SeqCst), 200);
    assert_eq!(
        dead_lettered, 200,
        "every dying worker's job was dead-lettered"
    );
    // No losses: every delivery PUBLISHED (every injected fault is recoverable).
    assert_eq!(deliveries.len(), 4 * UNGUARDED_POSTS);
    for d in &deliveries {
        assert_eq!(d.status(), DeliveryStatus::Published, "{d:?}");
        assert!(!d.event_pending, "{d:?}");
    }
    // No duplicates: exactly one post per delivery on each platform, and it is the one
    // the delivery recorded.
    assert_eq!(total.duplicates, 0);
    assert_eq!(on_platform.len(), 4 * UNGUARDED_POSTS);
    for (id, (_, platform, text)) in &plan {
        let posts = &on_platform[&(*platform, text.clone())];
        assert_eq!(posts.len(), 1, "{platform}: {text}");
        let DeliveryState::Published { platform_id, .. } = &by_id[id.as_str()].state else {
            unreachable!()
        };
        assert_eq!(platform_id, &posts[0], "{id} recorded the post that exists");
    }
    // Every UNKNOWN was settled by the reconciler, and exactly the deliveries whose fault
    // leaves the outcome open went through UNKNOWN.
    for (id, (planned, ..)) in &plan {
        assert_eq!(
            unknown_events.contains_key(id.as_str()),
            planned.goes_unknown(),
            "{id}: {planned:?}"
        );
    }
    assert_eq!(total.went_unknown, 4 * 25 * 4);
    assert_eq!(total.unknown_settled, total.went_unknown);
    assert_eq!(settled.reconciled_published, 4 * 25 * 3, "{settled:?}");
    assert_eq!(settled.reconciled_requeued, 4 * 25, "{settled:?}");
    assert_eq!(settled.made_unknown, 4 * 25, "{settled:?}");
    assert_eq!(settled.recovered, 4 * 25, "{settled:?}");
    assert_eq!(settled.failed, 0, "{settled:?}");
    // One event id per announced state: the final PUBLISHED of each delivery, and the
    // UNKNOWN of those that went through it; nothing else.
    let mut expected: BTreeSet<String> = deliveries.iter().filter_map(Delivery::event_id).collect();
    for e in &events {
        if matches!(e, HarkEvent::PostUnknown { .. }) {
            expected.insert(e.event_id());
        }
    }
    let emitted: BTreeSet<String> = event_ids.keys().cloned().collect();
    assert_eq!(emitted, expected);
    assert_eq!(emitted.len(), 4 * UNGUARDED_POSTS + total.went_unknown);
    assert!(events.iter().all(|e| matches!(
        e,
        HarkEvent::PostPublished { .. } | HarkEvent::PostUnknown { .. }
    )));
    // Nothing left behind.
    assert!(
        queue
            .receive(QueueName::Publish, 10, LEASE)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The settle sweep's reports summed over a run.
#[derive(Debug, Default)]
struct SettleTotals {
    recovered: usize,
    made_unknown: usize,
    reconciled_published: usize,
    reconciled_requeued: usize,
    deferred: usize,
    failed: usize,
}

impl SettleTotals {
    fn add(&mut self, r: &hark_shared::publishing::SettleReport) {
        self.recovered += r.recovered;
        self.made_unknown += r.made_unknown;
        self.reconciled_published += r.reconciled_published;
        self.reconciled_requeued += r.reconciled_requeued;
        self.deferred += r.deferred;
        self.failed += r.failed;
    }
}
