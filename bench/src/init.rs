//! `hark-bench init`: cold starts of the function binaries against the harness's own Lambda
//! Runtime API emulator, side by side with `hello-lambda`.
//!
//! Each run starts a fresh process per function with `AWS_LAMBDA_RUNTIME_API` pointing at
//! a private emulator and the function's environment pointing at the moto server (tables
//! and queues created by the harness), queues one realistic full batch, and records:
//! **init** = process start → first `GET …/invocation/next` (what Lambda reports as Init
//! Duration), **first event** = process start → the batch's response posted, and the
//! process's peak RSS (`VmHWM` in `/proc/<pid>/status`) once the batch is handled.
//! Functions run interleaved, run after run, so drift on a shared machine hits all alike.
//! Each process gets Lambda's environment (the runtime's variables, the template's per-function
//! variables), never the shell's: see [`LAMBDA_ENV`] and [`function_gets`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::{Value, json};

use hark_shared::aws::{DynamoStore, SqsQueue, bootstrap};
use hark_shared::domain::{Campaign, Channel, ScheduledPost, Source};
use hark_shared::events::HarkEvent;
use hark_shared::listening::PollJob;
use hark_shared::ports::{ConfigStore, MessageQueue, QueueName};
use hark_shared::publishing::{DispatchSettings, dispatch_due, schedule_post};

use crate::corpus::Corpus;
use crate::cost::TOKEN_VAR;
use crate::fake_mastodon::FakeMastodon;
use crate::runtime_api::RuntimeApi;
use crate::throughput::{MENTIONS_PER_MESSAGE, MESSAGES_PER_BATCH, batch_bodies};

/// The binaries measured, baseline first.
pub const BINARIES: [&str; 6] = [
    "hello-lambda",
    "scheduler",
    "poller",
    "processor",
    "publisher",
    "actions",
];

const BUILD: &str = "build once with `cargo build --release -p scheduler -p poller -p processor \
                     -p publisher -p actions -p hark-bench`";

/// Median and 90th percentile of a sample, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub median: f64,
    pub p90: f64,
}

impl Stats {
    pub fn of(mut ms: Vec<f64>) -> Stats {
        if ms.is_empty() {
            return Stats::default();
        }
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
        Stats {
            median: at(0.5),
            p90: at(0.9),
        }
    }
}

/// The figures of one binary.
#[derive(Debug, Clone)]
pub struct InitRow {
    pub name: &'static str,
    pub init: Stats,
    pub first_event: Stats,
    /// Largest peak RSS over the runs, KiB.
    pub peak_rss_kib: u64,
    /// What the full batch was.
    pub batch: String,
    /// Records the function reported as failed (should be 0), over all runs.
    pub failed_records: usize,
}

/// The moto server the functions talk to: the one `AWS_ENDPOINT_URL` names, or one the
/// harness starts (`scripts/moto-server` with the Python of `HARK_MOTO_PYTHON`, else of
/// `.tools/moto-5.2.5` or `/tmp/motovenv`) and stops when dropped.
pub struct Moto {
    pub endpoint: String,
    _child: Option<tokio::process::Child>,
}

impl Moto {
    pub async fn ensure() -> Result<Moto, String> {
        if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL")
            && !endpoint.trim().is_empty()
        {
            return Ok(Moto {
                endpoint,
                _child: None,
            });
        }
        let root = repo_root();
        let python = std::env::var_os("HARK_MOTO_PYTHON")
            .map(PathBuf::from)
            .into_iter()
            .chain([
                root.join(".tools/moto-5.2.5/bin/python"),
                PathBuf::from("/tmp/motovenv/bin/python"),
            ])
            .find(|p| p.exists())
            .ok_or(
                "no moto server: set AWS_ENDPOINT_URL to a running one, or HARK_MOTO_PYTHON \
                    to a Python with moto[server]==5.2.5 (scripts/test installs one under .tools/)",
            )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let child = tokio::process::Command::new(&python)
            .arg(root.join("scripts/moto-server"))
            .args(["127.0.0.1", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting moto with {}: {e}", python.display()))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                return Err("moto did not start within 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            _child: Some(child),
        })
    }
}

/// The repository root (the harness is run from its checkout).
pub fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The directory with the release binaries: next to `hark-bench` itself.
pub fn bin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| repo_root().join("target/release"))
}

/// The AWS side the functions share: a table, queues, seeded configuration.
struct Stack {
    store: DynamoStore,
    queue: SqsQueue,
    env: Vec<(String, String)>,
}

async fn stack(moto: &Moto, fake: &FakeMastodon) -> Result<Stack, String> {
    let creds = aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "bench");
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .load()
        .await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let name = format!(
        "hark-bench-{}-{}",
        std::process::id(),
        Timestamp::now().as_millisecond() % 1_000_000
    );
    bootstrap::ensure_table(&dynamo, &name)
        .await
        .map_err(|e| format!("create table on moto: {e}"))?;
    let urls: HashMap<QueueName, String> = bootstrap::ensure_queues(&sqs, &name, 5)
        .await
        .map_err(|e| format!("create queues on moto: {e}"))?;
    let store = DynamoStore::new(dynamo, name.clone(), 90);
    let queue = SqsQueue::new(sqs, urls.clone());
    let bad = |e: serde_json::Error| format!("benchmark configuration: {e}");
    for i in 0..10 {
        let source: Source = serde_json::from_value(json!({
            "id": format!("masto-{i}"), "platform": "mastodon", "base_url": fake.base_url,
            "query": "#hark", "every": "1m",
        }))
        .map_err(bad)?;
        store.upsert(&source).await.map_err(|e| e.to_string())?;
    }
    let ids: Vec<String> = (0..10).map(|i| format!("masto-{i}")).collect();
    for (id, query, listens) in [
        ("launch", "(hark OR #hark) -hiring", ids.clone()),
        ("rust", "#rustlang OR rust OR love", ids.clone()),
        ("kestrel", "kestrel OR \"kestrel notes\"", Vec::new()),
    ] {
        let campaign: Campaign = serde_json::from_value(json!({
            "id": id, "name": id, "query": query, "sources": listens,
            "triggers": [{ "id": "negative-wave",
              "when": { "negative_share": { "above": 0.4, "window": "1h", "min_mentions": 20 } },
              "cooldown": "3h", "actions": [ { "event": true } ] }],
        }))
        .map_err(bad)?;
        store.upsert(&campaign).await.map_err(|e| e.to_string())?;
    }
    let channel: Channel = serde_json::from_value(json!({
        "id": "brand-mastodon", "platform": "mastodon", "base_url": fake.base_url,
        "token": format!("env:{TOKEN_VAR}"),
    }))
    .map_err(bad)?;
    store.upsert(&channel).await.map_err(|e| e.to_string())?;
    let url = |q| urls.get(&q).cloned().unwrap_or_default();
    let env = [
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("HARK_TABLE", name),
        ("HARK_POLL_QUEUE_URL", url(QueueName::Poll)),
        ("HARK_MENTIONS_QUEUE_URL", url(QueueName::Mentions)),
        ("HARK_PUBLISH_QUEUE_URL", url(QueueName::Publish)),
        ("HARK_EVENTS_QUEUE_URL", url(QueueName::Events)),
        ("HARK_EVENT_BUS", "default".into()),
        ("HARK_ALLOW_PRIVATE_URLS", "1".into()),
        ("HARK_LANGUAGES", "en,de".into()),
        (TOKEN_VAR, "bench-token".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Ok(Stack { store, queue, env })
}

/// An SQS event as Lambda's event source mapping delivers it.
fn sqs_event(queue: &str, bodies: &[String]) -> String {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            json!({
                "messageId": format!("00000000-0000-4000-8000-{i:012}"),
                "receiptHandle": format!("bench-receipt-{i}"),
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": Timestamp::now().as_millisecond().to_string(),
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": Timestamp::now().as_millisecond().to_string(),
                },
                "messageAttributes": {},
                "md5OfBody": "00000000000000000000000000000000",
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{queue}"),
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    json!({ "Records": records }).to_string()
}

/// The full batch for `name` in run `run` (creating what it needs on moto first).
async fn event_for(
    name: &str,
    run: usize,
    stack: &Stack,
    fake: &FakeMastodon,
    corpus: &Corpus,
) -> Result<(String, String), String> {
    let now = Timestamp::now();
    Ok(match name {
        "hello-lambda" => (
            json!({ "hello": "world" }).to_string(),
            "1 small JSON event".into(),
        ),
        "scheduler" => {
            // Ten sources never polled, listened to by a campaign of their own: each run
            // schedules ten polls.
            let ids: Vec<String> = (0..10).map(|i| format!("due-{run}-{i}")).collect();
            for id in &ids {
                let source: Source = serde_json::from_value(json!({
                    "id": id, "platform": "mastodon",
                    "base_url": fake.base_url, "query": "#hark", "every": "1m",
                }))
                .map_err(|e| e.to_string())?;
                stack
                    .store
                    .upsert(&source)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            let campaign: Campaign = serde_json::from_value(json!({
                "id": format!("tick-{run}"), "query": "kestrel", "sources": ids,
            }))
            .map_err(|e| e.to_string())?;
            stack
                .store
                .upsert(&campaign)
                .await
                .map_err(|e| e.to_string())?;
            (
                json!({ "source": "hark.tick" }).to_string(),
                "tick: 10 due sources".into(),
            )
        }
        "poller" => {
            // A full batch as the template's mapping delivers it: ten jobs, polled at once.
            let bodies: Vec<String> = (0..10)
                .map(|i| {
                    serde_json::to_string(&PollJob {
                        source_id: format!("masto-{i}"),
                        scheduled_at: now,
                    })
                    .unwrap_or_default()
                })
                .collect();
            (
                sqs_event("poll", &bodies),
                "10 poll jobs × 5 pages × 40 statuses".into(),
            )
        }
        "processor" => {
            let first = 10_000_000 * (run + 1) + std::process::id() as usize * 1000;
            let bodies = batch_bodies(corpus, first, MESSAGES_PER_BATCH, MENTIONS_PER_MESSAGE);
            (
                sqs_event("mentions", &bodies),
                format!("{MESSAGES_PER_BATCH} messages × {MENTIONS_PER_MESSAGE} mentions"),
            )
        }
        "publisher" => {
            for i in 0..5 {
                let post: ScheduledPost = serde_json::from_value(json!({
                    "id": format!("bench-{}-{run}-{i}", std::process::id()),
                    "at": now,
                    "channels": ["brand-mastodon"],
                    "text": format!("Release notes {run}.{i}: what is new in Hark #hark"),
                }))
                .map_err(|e| e.to_string())?;
                stack.store.upsert(&post).await.map_err(|e| e.to_string())?;
                schedule_post(&stack.store, &stack.queue, &post, false, now)
                    .await
                    .map_err(|e| format!("schedule: {e}"))?;
            }
            dispatch_due(
                &stack.store,
                &stack.queue,
                now,
                &DispatchSettings::default(),
            )
            .await
            .map_err(|e| format!("dispatch: {e}"))?;
            let mut bodies = Vec::new();
            for _ in 0..10 {
                let got = stack
                    .queue
                    .receive(QueueName::Publish, 5, jiff::SignedDuration::from_mins(10))
                    .await
                    .map_err(|e| format!("receive publish jobs: {e}"))?;
                for m in got {
                    stack
                        .queue
                        .delete(QueueName::Publish, &m.receipt)
                        .await
                        .map_err(|e| e.to_string())?;
                    bodies.push(m.body);
                }
                if bodies.len() >= 5 {
                    break;
                }
            }
            (
                sqs_event("publish", &bodies),
                format!("{} publish jobs", bodies.len()),
            )
        }
        _ => {
            let bodies: Vec<String> = (0..10)
                .map(|i| {
                    serde_json::to_string(&HarkEvent::PostPublished {
                        event_id: format!("evt-{}-{run}-{i}", std::process::id()),
                        delivery_id: format!("d-{run}-{i}"),
                        post_id: format!("p-{run}-{i}"),
                        channel_id: "brand-mastodon".into(),
                        platform: Some(hark_shared::domain::Platform::Mastodon),
                        platform_id: format!("{run}{i}"),
                        url: Some(format!("https://mastodon.example/@brand/{run}{i}")),
                        scheduled_for: now,
                        published_at: now,
                        attempts: 1,
                    })
                    .unwrap_or_default()
                })
                .collect();
            (
                sqs_event("events", &bodies),
                "10 PostPublished events → EventBridge".into(),
            )
        }
    })
}

/// What Lambda's `provided.al2023` runtime sets for every function besides the
/// `AWS_LAMBDA_*` variables (<https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime>),
/// and what `infra/template.yaml`'s `LoggingConfig` (JSON, INFO) adds.
const LAMBDA_ENV: [(&str, &str); 7] = [
    ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin"),
    ("LANG", "en_US.UTF-8"),
    ("TZ", ":UTC"),
    ("LAMBDA_TASK_ROOT", "/var/task"),
    ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
    ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
    ("AWS_LAMBDA_LOG_LEVEL", "INFO"),
];

/// Whether the stack variable `var` is in `name`'s environment in `infra/template.yaml`:
/// only the actions function is given the event bus (it builds an EventBridge client at
/// init when it is set).
fn function_gets(name: &str, var: &str) -> bool {
    var != "HARK_EVENT_BUS" || name == "actions"
}

struct Sample {
    init_ms: f64,
    first_event_ms: f64,
    rss_kib: u64,
    failed_records: usize,
}

async fn measure_once(
    bin: &Path,
    name: &str,
    event: String,
    env: &[(String, String)],
) -> Result<Sample, String> {
    let api = RuntimeApi::start()
        .await
        .map_err(|e| format!("runtime API: {e}"))?;
    let request = api.invoke(event);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(std::env::temp_dir().join(format!("hark-bench-{name}.log")))
        .map_err(|e| format!("log file: {e}"))?;
    let mut command = tokio::process::Command::new(bin);
    command
        // The function sees what Lambda gives it, not the shell's environment: an inherited
        // `SSL_CERT_DIR`, proxy or `RUST_LOG` would change what init does (a certificate
        // directory alone adds ~1.2 ms per root-store load).
        .env_clear()
        .envs(LAMBDA_ENV)
        .envs(
            env.iter()
                .filter(|(k, _)| function_gets(name, k))
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("start {}: {e}", bin.display()))?;
    let outcome = api.wait_for(&request, Duration::from_secs(180)).await;
    let rss_kib = child.id().map_or(0, peak_rss_kib);
    let _ = child.start_kill();
    let _ = child.wait().await;
    let outcome = outcome.map_err(|e| format!("{name}: {e}"))?;
    let ready = api
        .first_next()
        .ok_or_else(|| format!("{name} never asked for an event"))?;
    let response = outcome
        .result
        .map_err(|e| format!("{name} reported an error: {e}"))?;
    let failed_records = serde_json::from_str::<Value>(&response)
        .ok()
        .and_then(|v| {
            v.get("batchItemFailures")
                .and_then(Value::as_array)
                .map(Vec::len)
        })
        .unwrap_or(0);
    Ok(Sample {
        init_ms: (ready - started).as_secs_f64() * 1000.0,
        first_event_ms: (outcome.at - started).as_secs_f64() * 1000.0,
        rss_kib,
        failed_records,
    })
}

/// Peak resident set size of a live process (`VmHWM`), KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

pub async fn run(corpus: Arc<Corpus>, runs: usize) -> Result<Vec<InitRow>, String> {
    let dir = bin_dir();
    if !dir.join("hello-lambda").exists() {
        return Err(format!(
            "{} is missing: {BUILD}",
            dir.join("hello-lambda").display()
        ));
    }
    let built: Vec<&'static str> = BINARIES
        .into_iter()
        .filter(|name| {
            let found = dir.join(name).exists();
            if !found {
                eprintln!(
                    "skipping {name}: {} is missing ({BUILD})",
                    dir.join(name).display()
                );
            }
            found
        })
        .collect();
    let moto = Moto::ensure().await?;
    let fake = FakeMastodon::start(corpus.clone(), 40)
        .await
        .map_err(|e| format!("fake Mastodon: {e}"))?;
    let stack = stack(&moto, &fake).await?;
    let mut samples: HashMap<&str, Vec<Sample>> = HashMap::new();
    let mut batches: HashMap<&str, String> = HashMap::new();
    // One unmeasured round warms the page cache and moto.
    for run in 0..=runs {
        for &name in &built {
            let (event, batch) = event_for(name, run, &stack, &fake, &corpus).await?;
            let sample = measure_once(&dir.join(name), name, event, &stack.env).await?;
            if run > 0 {
                samples.entry(name).or_default().push(sample);
                batches.insert(name, batch);
            }
        }
    }
    Ok(built
        .iter()
        .map(|name| {
            let s = samples.remove(name).unwrap_or_default();
            InitRow {
                name,
                init: Stats::of(s.iter().map(|x| x.init_ms).collect()),
                first_event: Stats::of(s.iter().map(|x| x.first_event_ms).collect()),
                peak_rss_kib: s.iter().map(|x| x.rss_kib).max().unwrap_or(0),
                batch: batches.remove(name).unwrap_or_default(),
                failed_records: s.iter().map(|x| x.failed_records).sum(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_stack_environment_when_a_function_is_started_then_only_actions_gets_the_event_bus()
    {
        assert!(function_gets("actions", "HARK_EVENT_BUS"));
        for name in BINARIES.into_iter().filter(|n| *n != "actions") {
            assert!(!function_gets(name, "HARK_EVENT_BUS"), "{name}");
            assert!(function_gets(name, "HARK_TABLE"), "{name}");
        }
    }

    #[test]
    fn given_the_lambda_environment_then_it_names_no_variable_twice_and_sets_the_log_format_of_the_template()
     {
        let mut names: Vec<&str> = LAMBDA_ENV.iter().map(|(k, _)| *k).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), LAMBDA_ENV.len());
        assert!(LAMBDA_ENV.contains(&("AWS_LAMBDA_LOG_FORMAT", "JSON")));
    }
}
