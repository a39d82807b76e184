//! `hark-bench throughput`: mentions per second on one thread.
//!
//! - Processor: `Processor::process_batch` on the embedded backend (SQLite in a temp dir,
//!   so every put is a real insert), batches of 50 messages of 20 mentions (what the
//!   mentions queue's event source mapping hands the function), three active campaigns,
//!   fresh mentions every batch.
//! - Poller normalisation: `MastodonListener::listen` against the fake instance on
//!   loopback (HTTP, JSON parse, HTML → text, mention building, cursor), one 40-status page
//!   per call; and the JSON parse of the same page alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::json;

use hark_shared::analysis::{Analyzer, Languages};
use hark_shared::clock::SystemClock;
use hark_shared::domain::{Author, Campaign, Cursor, Engagement, Mention, Platform, Source};
use hark_shared::embedded::{EmbeddedOptions, EmbeddedStore};
use hark_shared::listening::MentionBatch;
use hark_shared::platforms::mastodon::{MastodonListener, parse_statuses};
use hark_shared::platforms::{HttpClient, ListenLimits, Listener};
use hark_shared::ports::ConfigStore;
use hark_shared::processing::Processor;

use crate::corpus::Corpus;
use crate::fake_mastodon::FakeMastodon;

/// Mentions per mentions-queue message in the processor benchmark.
pub const MENTIONS_PER_MESSAGE: usize = 20;
/// Messages per processor invocation (the template's batch size).
pub const MESSAGES_PER_BATCH: usize = 50;

#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    pub processor_per_s: f64,
    pub listener_per_s: f64,
    pub parse_per_s: f64,
}

pub async fn run(corpus: Arc<Corpus>, budget: Duration) -> Result<Throughput, String> {
    Ok(Throughput {
        processor_per_s: processor(&corpus, budget).await?,
        listener_per_s: listener(corpus.clone(), budget).await?,
        parse_per_s: parse(corpus, budget).await?,
    })
}

/// The `i`-th benchmark mention (unique id, real text).
pub fn mention(corpus: &Corpus, i: usize, source: &str, at: Timestamp) -> Mention {
    let (text, lang) = corpus.pick(i);
    let tags = match i % 6 {
        0 => " #hark #rustlang",
        2 | 4 => " #hark",
        3 => " #rustlang",
        _ => "",
    };
    Mention {
        platform: Platform::Mastodon,
        native_id: format!("{}", 115_000_000_000_000_000u64 + i as u64),
        url: format!("https://remote.example/@user{}/{i}", i % 997),
        author: Author {
            handle: format!("user{}@remote.example", i % 997),
            display_name: Some(format!("User {}", i % 997)),
            followers: Some((i as u64 % 997) * 131),
            url: Some(format!("https://remote.example/@user{}", i % 997)),
        },
        text: format!("{text}{tags}"),
        created_at: at,
        lang: Some(lang.to_owned()),
        sentiment: None,
        engagement: Engagement {
            likes: i as u64 % 37,
            reposts: i as u64 % 11,
            replies: i as u64 % 5,
        },
        campaigns: Vec::new(),
        source_id: Some(source.to_owned()),
    }
}

pub async fn seed_campaigns<S: ConfigStore>(store: &S) -> Result<(), String> {
    for (id, query) in [
        ("launch", "(hark OR #hark) -hiring"),
        ("rust", "#rustlang OR rust OR love"),
        ("kestrel", "kestrel OR \"kestrel notes\""),
    ] {
        let campaign: Campaign =
            serde_json::from_value(json!({ "id": id, "name": id, "query": query }))
                .map_err(|e| format!("benchmark campaign: {e}"))?;
        store.upsert(&campaign).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Mentions-queue message bodies for one batch, starting at mention `first`.
pub fn batch_bodies(
    corpus: &Corpus,
    first: usize,
    messages: usize,
    per_message: usize,
) -> Vec<String> {
    let now = Timestamp::now();
    (0..messages)
        .map(|m| {
            let mentions = (0..per_message)
                .map(|k| mention(corpus, first + m * per_message + k, "masto-0", now))
                .collect();
            serde_json::to_string(&MentionBatch {
                source_id: "masto-0".to_owned(),
                mentions,
            })
            .unwrap_or_default()
        })
        .collect()
}

async fn processor(corpus: &Corpus, budget: Duration) -> Result<f64, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let store = EmbeddedStore::open(
        dir.path(),
        EmbeddedOptions {
            retention_days: 90,
            max_receive_count: 5,
            clock: Arc::new(SystemClock),
        },
    )
    .map_err(|e| format!("open the embedded store: {e}"))?;
    seed_campaigns(&store).await?;
    let processor = Processor::new(
        Analyzer::new(Languages::from_codes(["en", "de"]).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?,
    );
    let per_batch = MESSAGES_PER_BATCH * MENTIONS_PER_MESSAGE;
    let mut next = 0;
    let mut elapsed = Duration::ZERO;
    let mut processed = 0usize;
    // One warm-up batch, then batches until the budget is spent. Building the messages
    // is not timed: the function receives them ready-made.
    let mut warm = true;
    while warm || elapsed < budget {
        let bodies = batch_bodies(corpus, next, MESSAGES_PER_BATCH, MENTIONS_PER_MESSAGE);
        next += per_batch;
        let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
        let t0 = Instant::now();
        let outcome = processor
            .process_batch(&store, &refs)
            .await
            .map_err(|e| format!("process: {e}"))?;
        if outcome.report.stored != per_batch {
            return Err(format!(
                "expected {per_batch} stored, got {:?}",
                outcome.report
            ));
        }
        if !warm {
            elapsed += t0.elapsed();
            processed += per_batch;
        }
        warm = false;
    }
    Ok(processed as f64 / elapsed.as_secs_f64())
}

async fn listener(corpus: Arc<Corpus>, budget: Duration) -> Result<f64, String> {
    let fake = FakeMastodon::start(corpus, 40)
        .await
        .map_err(|e| format!("fake Mastodon: {e}"))?;
    let listener = MastodonListener::new(
        HttpClient::new(true).map_err(|e| format!("HTTP client: {e}"))?,
        None,
    );
    let source: Source = serde_json::from_value(json!({
        "id": "masto-0", "platform": "mastodon", "base_url": fake.base_url, "query": "#hark",
    }))
    .map_err(|e| format!("benchmark source: {e}"))?;
    let cursor = Cursor::new(&source.id);
    let limits = || ListenLimits {
        max_pages: 1,
        now: Timestamp::now(),
    };
    listener
        .listen(&source, &cursor, limits())
        .await
        .map_err(|e| format!("listen: {e}"))?;
    let t0 = Instant::now();
    let mut mentions = 0usize;
    while t0.elapsed() < budget {
        let listened = listener
            .listen(&source, &cursor, limits())
            .await
            .map_err(|e| format!("listen: {e}"))?;
        mentions += listened.mentions.len();
    }
    Ok(mentions as f64 / t0.elapsed().as_secs_f64())
}

async fn parse(corpus: Arc<Corpus>, budget: Duration) -> Result<f64, String> {
    let fake = FakeMastodon::start(corpus, 40)
        .await
        .map_err(|e| format!("fake Mastodon: {e}"))?;
    let page = fake.page(40);
    let t0 = Instant::now();
    let mut statuses = 0usize;
    while t0.elapsed() < budget {
        statuses += parse_statuses(&page).map_err(|e| e.to_string())?.len();
    }
    Ok(statuses as f64 / t0.elapsed().as_secs_f64())
}
