//! `hark demo`: the whole pipeline offline, in one command.
//!
//! Simulated platforms start on loopback (Mastodon, Bluesky, Hacker News, an RSS feed, a
//! Slack-style incoming webhook and a signed generic webhook), the bundled configuration
//! (`examples/demo.yaml`) is applied, and a simulated day of conversation
//! ([`script::conversation`]) is played through the real pipeline on the embedded store —
//! scheduler ticks, pollers, processor, trigger rules, actions and publisher, the same
//! handler code the Lambda functions run — one tick per simulated quarter hour. At the end,
//! every figure of the summary is read back from the store (and, for the alerts, from
//! what the simulated receivers got). The data stays in `HARK_DATA_DIR`, so `hark
//! mentions`, `hark posts`, `hark triggers` and `hark report` work on it afterwards.

pub mod script;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hark_shared::analysis::{Analyzer, Languages};
use hark_shared::clock::{Clock, ManualClock};
use hark_shared::config::Config;
use hark_shared::domain::{DeliveryState, ScheduledPost, SentimentLabel};
use hark_shared::embedded::{EmbeddedOptions, EmbeddedStore};
use hark_shared::events::HarkEvent;
use hark_shared::platforms::HttpClient;
use hark_shared::platforms::listeners::PlatformListeners;
use hark_shared::platforms::webhook::{SIGNATURE_HEADER, verify_signature};
use hark_shared::ports::{ConfigStore, DeliveryStore, StoreError, TriggerStore, truncate_to_hour};
use hark_shared::processing::Processor;
use hark_shared::publishing::{PlatformPublishers, StoreRateGate};
use hark_tests::fakes::{
    BLUESKY_APP_PASSWORD, FakeFeed, FakeHackerNews, FakeMastodon, FakePds, MASTODON_TOKEN,
};
use hark_tests::publishing::StaticSecrets;
use jiff::{SignedDuration, Timestamp};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::run::{Pipeline, RunError, RunReport};
use script::{Item, Venue};

/// The bundled configuration, with `{{...}}` placeholders.
const CONFIG_TEMPLATE: &str = include_str!("../../../examples/demo.yaml");
/// Marks a data directory as the demo's own, so a re-run may replace it.
const MARKER: &str = ".hark-demo";
/// Simulated time between two scheduler ticks.
const TICK: SignedDuration = SignedDuration::from_mins(15);
const WEBHOOK_SECRET: &str = "demo-signing-secret";

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Hours of simulated conversation (the negative wave is in the last two).
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(i64).range(4..=168))]
    pub hours: i64,
    /// Print the summary as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "{dir} already holds a Hark store that the demo did not create; run the demo elsewhere, e.g. HARK_DATA_DIR=.hark-demo hark demo"
    )]
    NotADemoDir { dir: PathBuf },
    #[error("preparing {dir} failed")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the bundled demo configuration is invalid")]
    Config(#[from] crate::apply::ApplyError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("starting the pipeline failed: {0}")]
    Setup(String),
}

/// What the demo shows at the end; every number is read back from the store.
#[derive(Debug, Default, serde::Serialize)]
pub struct Summary {
    pub data_dir: PathBuf,
    pub simulated_from: Timestamp,
    pub simulated_to: Timestamp,
    pub ticks: u32,
    pub mentions_by_platform: BTreeMap<String, usize>,
    pub mentions_by_language: BTreeMap<String, usize>,
    pub sentiment: BTreeMap<String, usize>,
    pub triggers: Vec<TriggerLine>,
    pub alerts_received: Vec<String>,
    pub signed_webhook_calls: usize,
    pub signatures_valid: bool,
    pub paused: Vec<String>,
    pub published: Vec<(String, String)>,
    pub drafts: Vec<String>,
    pub bus_events: BTreeMap<String, usize>,
    pub run: RunReport,
}

#[derive(Debug, serde::Serialize)]
pub struct TriggerLine {
    pub rule: String,
    pub fired_at: Timestamp,
    pub summary: String,
    pub top_terms: Vec<String>,
    pub samples: Vec<String>,
}

/// Simulated platforms on loopback.
struct World {
    mastodon: FakeMastodon,
    bluesky: FakePds,
    hn: FakeHackerNews,
    feed: FakeFeed,
    slack: MockServer,
    webhook: MockServer,
}

impl World {
    async fn start(clock: Arc<dyn Clock>) -> World {
        let slack = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .mount(&slack)
            .await;
        let webhook = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(204))
            .mount(&webhook)
            .await;
        World {
            mastodon: FakeMastodon::start_with_clock(clock.clone()).await,
            bluesky: FakePds::start_with_clock(clock).await,
            hn: FakeHackerNews::start().await,
            feed: FakeFeed::start().await,
            slack,
            webhook,
        }
    }

    /// The item appears on its platform.
    fn publish(&self, n: usize, item: &Item) {
        let id = format!("{}", 100_000 + n);
        match item.venue {
            Venue::Mastodon => self.mastodon.post_by(
                &id,
                &item.author,
                item.followers,
                item.lang,
                "kestrel",
                &item.text,
                item.at,
            ),
            Venue::Bluesky => {
                self.bluesky
                    .post(&format!("3k{id}"), &item.author, &item.text, item.at);
            }
            Venue::HackerNews => self.hn.comment_by(
                &id,
                &item.author,
                "Kestrel 2.0 – offline-first notes",
                &item.text,
                item.at,
            ),
            Venue::Blog => self.feed.publish(&format!("post-{id}"), &item.text),
        }
    }

    fn config_yaml(&self, launch_at: Timestamp, feature_at: Timestamp) -> String {
        CONFIG_TEMPLATE
            .replace("{{MASTODON_URL}}", &self.mastodon.server.uri())
            .replace("{{BLUESKY_URL}}", &self.bluesky.uri())
            .replace("{{HN_URL}}", &self.hn.server.uri())
            .replace("{{FEED_URL}}", &self.feed.url())
            .replace("{{LAUNCH_AT}}", &launch_at.to_string())
            .replace("{{FEATURE_AT}}", &feature_at.to_string())
    }

    fn secrets(&self) -> StaticSecrets {
        StaticSecrets(HashMap::from([
            ("DEMO_MASTODON_TOKEN".to_owned(), MASTODON_TOKEN.to_owned()),
            (
                "DEMO_BLUESKY_PASSWORD".to_owned(),
                BLUESKY_APP_PASSWORD.to_owned(),
            ),
            (
                "DEMO_SLACK_WEBHOOK".to_owned(),
                format!("{}/services/T0DEMO/B0DEMO/demo", self.slack.uri()),
            ),
            (
                "DEMO_WEBHOOK_URL".to_owned(),
                format!("{}/hooks/hark", self.webhook.uri()),
            ),
            ("DEMO_WEBHOOK_SECRET".to_owned(), WEBHOOK_SECRET.to_owned()),
        ]))
    }
}

/// Empties `dir` of a previous demo's store (refusing one the demo did not create).
fn prepare(dir: &Path) -> Result<(), DemoError> {
    let io = |source| DemoError::Io {
        dir: dir.to_owned(),
        source,
    };
    let db = dir.join("hark.db");
    if db.exists() && !dir.join(MARKER).exists() {
        return Err(DemoError::NotADemoDir {
            dir: dir.to_owned(),
        });
    }
    std::fs::create_dir_all(dir).map_err(io)?;
    for name in ["hark.db", "hark.db-wal", "hark.db-shm"] {
        match std::fs::remove_file(dir.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
    }
    std::fs::write(
        dir.join(MARKER),
        "created by `hark demo`; it may replace this directory's store\n",
    )
    .map_err(io)?;
    Ok(())
}

/// Runs the demo and prints its summary.
pub async fn run(config: &Config, args: &DemoArgs) -> Result<Summary, DemoError> {
    let dir = config.data_dir.clone();
    prepare(&dir)?;
    let real_now = Timestamp::now();
    let start = truncate_to_hour(real_now) - SignedDuration::from_hours(args.hours);
    let end = start + SignedDuration::from_hours(args.hours);
    let clock = Arc::new(ManualClock::new(start));
    let store = Arc::new(EmbeddedStore::open(
        &dir,
        EmbeddedOptions {
            retention_days: 3650,
            max_receive_count: config.max_receive_count,
            clock: clock.clone(),
        },
    )?);
    let world = World::start(clock.clone()).await;

    // The bundled configuration, pointed at the simulated platforms.
    let launch_at = start + SignedDuration::from_hours(2);
    let feature_at = end - SignedDuration::from_mins(30);
    let yaml = world.config_yaml(launch_at, feature_at);
    let desired = crate::apply::parse(Path::new("examples/demo.yaml"), &yaml)?;
    crate::apply::apply_and_schedule(&*store, &*store, &desired, false, clock.now()).await?;

    let http = HttpClient::new(true).map_err(|e| DemoError::Setup(e.to_string()))?;
    let secrets = Arc::new(world.secrets());
    let listeners = PlatformListeners::new(http.clone(), secrets.clone()).with_clock(clock.clone());
    let publishers = PlatformPublishers::new(http, secrets, clock.clone())
        .with_rate_gate(Arc::new(StoreRateGate(store.clone())));
    let languages =
        Languages::from_codes(&config.languages).map_err(|e| DemoError::Setup(e.to_string()))?;
    let processor =
        Processor::new(Analyzer::new(languages).map_err(|e| DemoError::Setup(e.to_string()))?);
    let pipeline = Pipeline {
        store: &*store,
        queue: &*store,
        listeners: &listeners,
        processor: &processor,
        clock: &*clock,
        settings: Default::default(),
        publishers: &publishers,
        publishing: Default::default(),
        bus: Some(&*store),
    };

    let items = script::conversation(start, args.hours);
    let ticks = u64::try_from(args.hours * 4 + 1).unwrap_or(0);
    let progress = indicatif::ProgressBar::new(ticks);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} simulated {msg} [{bar:30}] {pos}/{len} ticks",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let mut report = RunReport::default();
    let mut next = 0;
    for _ in 0..ticks {
        let now = clock.now();
        while next < items.len() && items[next].at <= now {
            world.publish(next, &items[next]);
            next += 1;
        }
        pipeline.once(&mut report).await?;
        progress.set_message(format!(
            "{} · {} mentions · {} triggers",
            now.strftime("%a %H:%M UTC"),
            report.mentions_stored,
            report.triggers_fired.len()
        ));
        progress.inc(1);
        clock.advance(TICK);
    }
    progress.finish_and_clear();
    clock.set(end);

    let summary = summarize(&store, &world, &dir, start, end, report).await?;
    if args.json {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string(&summary).unwrap_or_default()
        );
    } else {
        print_summary(&summary);
    }
    Ok(summary)
}

async fn summarize(
    store: &EmbeddedStore,
    world: &World,
    dir: &Path,
    start: Timestamp,
    end: Timestamp,
    run: RunReport,
) -> Result<Summary, DemoError> {
    let mut s = Summary {
        data_dir: dir.to_owned(),
        simulated_from: start,
        simulated_to: end,
        ticks: run.ticks,
        ..Summary::default()
    };
    let mentions = hark_shared::processing::list_mentions(
        store,
        None,
        start - SignedDuration::from_hours(1),
        end + SignedDuration::from_hours(1),
    )
    .await?;
    for m in &mentions {
        *s.mentions_by_platform
            .entry(m.platform.to_string())
            .or_default() += 1;
        *s.mentions_by_language
            .entry(m.lang.clone().unwrap_or_else(|| "und".to_owned()))
            .or_default() += 1;
        let label = match m.sentiment.map(|x| x.label) {
            Some(SentimentLabel::Positive) => "positive",
            Some(SentimentLabel::Neutral) => "neutral",
            Some(SentimentLabel::Negative) => "negative",
            _ => "unscored",
        };
        *s.sentiment.entry(label.to_owned()).or_default() += 1;
    }
    for campaign in store.list::<hark_shared::domain::Campaign>().await? {
        for record in store.list_firings(&campaign.id).await? {
            if let Ok(HarkEvent::TriggerFired(f)) = serde_json::from_str(&record.event) {
                s.triggers.push(TriggerLine {
                    rule: f.rule.clone(),
                    fired_at: f.fired_at,
                    summary: f.summary.clone(),
                    top_terms: f
                        .top_terms
                        .iter()
                        .map(|t| format!("{} ({})", t.term, t.count))
                        .collect(),
                    samples: f
                        .samples
                        .iter()
                        .map(|x| format!("{} — {}", x.url, x.text))
                        .collect(),
                });
            }
        }
    }
    for request in world.slack.received_requests().await.unwrap_or_default() {
        if let Ok(body) = serde_json::from_slice::<serde_json::Value>(&request.body) {
            s.alerts_received
                .push(body["text"].as_str().unwrap_or_default().to_owned());
        }
    }
    let signing = hark_shared::domain::Secret::new(WEBHOOK_SECRET);
    let hooks = world.webhook.received_requests().await.unwrap_or_default();
    s.signed_webhook_calls = hooks.len();
    s.signatures_valid = hooks.iter().all(|r| {
        r.headers
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|sig| verify_signature(&signing, &r.body, sig))
    });
    for d in store.list_deliveries(None).await? {
        match &d.state {
            DeliveryState::Paused { .. } => {
                s.paused.push(format!("{} on {}", d.post_id, d.channel_id))
            }
            DeliveryState::Published {
                url, platform_id, ..
            } => {
                let post: Option<ScheduledPost> = store.get(&d.post_id).await?;
                let kind = match post.and_then(|p| p.origin) {
                    Some(o) if o.kind == hark_shared::domain::OriginKind::Alert => "alert",
                    Some(_) => "automatic post",
                    None => "scheduled post",
                };
                s.published.push((
                    format!("{kind} {} on {}", d.post_id, d.channel_id),
                    url.clone().unwrap_or_else(|| platform_id.clone()),
                ));
            }
            _ => {}
        }
    }
    for p in store.list::<ScheduledPost>().await? {
        if p.draft.as_ref().is_some_and(|d| !d.is_approved()) {
            s.drafts.push(format!(
                "{} on {}: “{}”",
                p.id,
                p.channels.join(", "),
                p.text
            ));
        }
    }
    s.triggers.sort_by_key(|t| t.fired_at);
    for e in store.bus_events()? {
        *s.bus_events.entry(e.detail_type).or_default() += 1;
    }
    s.run = run;
    Ok(s)
}

fn print_summary(s: &Summary) {
    let mut out = std::io::stdout().lock();
    let mut line = |text: String| {
        let _ = writeln!(out, "{text}");
    };
    line(format!(
        "Hark demo: {} simulated from {} to {} in {} scheduler ticks, on the embedded store in {}",
        "a product launch",
        s.simulated_from.strftime("%Y-%m-%d %H:%M UTC"),
        s.simulated_to.strftime("%Y-%m-%d %H:%M UTC"),
        s.ticks,
        s.data_dir.display()
    ));
    line(String::new());
    let total: usize = s.mentions_by_platform.values().sum();
    line(format!("Mentions stored: {total}"));
    line(format!(
        "  by platform:  {}",
        join_counts(&s.mentions_by_platform)
    ));
    line(format!(
        "  by language:  {}",
        join_counts(&s.mentions_by_language)
    ));
    line(format!("  sentiment:    {}", join_counts(&s.sentiment)));
    line(String::new());
    line(format!("Triggers fired: {}", s.triggers.len()));
    for t in &s.triggers {
        line(format!(
            "  [{}] {} {}",
            t.fired_at.strftime("%H:%M"),
            t.rule,
            t.summary
        ));
        if !t.top_terms.is_empty() {
            line(format!("      top terms: {}", t.top_terms.join(", ")));
        }
        for sample in t.samples.iter().take(2) {
            line(format!("      e.g. {sample}"));
        }
    }
    line(String::new());
    line(format!(
        "Alerts received by the Slack webhook: {}",
        s.alerts_received.len()
    ));
    if let Some(first) = s.alerts_received.first() {
        for l in first.lines().take(4) {
            line(format!("  | {l}"));
        }
    }
    line(format!(
        "Signed webhook calls: {} (signatures {})",
        s.signed_webhook_calls,
        if s.signatures_valid {
            "valid"
        } else {
            "INVALID"
        }
    ));
    line(String::new());
    line(format!(
        "Crisis brake: {} delivery(ies) paused",
        s.paused.len()
    ));
    for p in &s.paused {
        line(format!(
            "  {p} (release with `hark campaigns resume kestrel-launch`)"
        ));
    }
    line(format!("Published: {}", s.published.len()));
    for (what, url) in &s.published {
        line(format!("  {what}: {url}"));
    }
    if !s.drafts.is_empty() {
        line(format!(
            "Awaiting approval (`hark posts approve ID`): {}",
            s.drafts.len()
        ));
        for d in &s.drafts {
            line(format!("  {d}"));
        }
    }
    line(format!(
        "Events on the local bus: {}",
        join_counts(&s.bus_events)
    ));
    line(String::new());
    line("Explore: hark mentions --campaign kestrel-launch · hark triggers · hark posts · hark report".to_owned());
}

fn join_counts(map: &BTreeMap<String, usize>) -> String {
    if map.is_empty() {
        return "none".to_owned();
    }
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(" · ")
}
