//! `hark`: Hark's local runner and operator tool.

mod analyze;
mod apply;
mod backend;
mod demo;
mod ops;
mod posts;
mod report;
mod run;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use hark_shared::config::{BackendKind, Config, ENV_BACKEND, ENV_DATA_DIR};
use hark_shared::domain::{Campaign, Channel, Source};
use hark_shared::ports::{ConfigEntity, ConfigStore};
use hark_shared::telemetry::{LogFormat, init_tracing};

use crate::backend::Backend;

/// Hark: social listening and auto-publishing, serverless on AWS, local on SQLite.
#[derive(Debug, Parser)]
#[command(name = "hark", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Where state lives: the embedded SQLite store, or DynamoDB + SQS.
    #[arg(long, global = true, value_enum, env = ENV_BACKEND)]
    backend: Option<BackendArg>,

    /// Directory of the embedded store.
    #[arg(long, global = true, env = ENV_DATA_DIR, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Log more (-v: debug, -vv: trace). Logs go to stderr; RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum BackendArg {
    Embedded,
    Aws,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole pipeline offline in one command: simulated platforms on loopback, a day
    /// of conversation with a negative wave, triggers, alerts, the crisis brake and
    /// publishing, on the embedded store in HARK_DATA_DIR; ends with a summary.
    Demo(demo::DemoArgs),
    /// Create the store (embedded: the SQLite file; aws: the table and the queues).
    Init {
        /// Name prefix of the SQS queues created with --backend aws.
        #[arg(long, default_value = "hark")]
        queue_prefix: String,
    },
    /// Apply sources, campaigns, channels and posts from a YAML file.
    Apply {
        /// The YAML file (see examples/hark.yaml).
        file: PathBuf,
        /// Validate and print the plan without writing anything.
        #[arg(long)]
        dry_run: bool,
        /// Print the plan as JSON lines: {"kind","id","action"}.
        #[arg(long)]
        json: bool,
    },
    /// Run the pipeline here: a scheduler tick, then poll (and the later stages as they
    /// land) until the queues are drained; without --once, repeat every --every.
    Run {
        /// One tick and drain, then exit.
        #[arg(long)]
        once: bool,
        /// Time between ticks when running continuously.
        #[arg(long, default_value = "1m", value_name = "DURATION")]
        every: hark_shared::domain::Interval,
        /// Print the final report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Language and sentiment of texts: one text per line on stdin, one JSON object per
    /// line on stdout (the processor's own code path).
    Analyze {
        /// Skip detection and treat every text as this language (ISO 639-1, e.g. de).
        #[arg(long, value_name = "CODE")]
        lang: Option<String>,
    },
    /// Stored mentions, oldest first.
    Mentions {
        /// Only this campaign's mentions (default: every campaign and the unmatched).
        #[arg(long, value_name = "ID")]
        campaign: Option<String>,
        /// Only mentions created at or after this instant (RFC 3339) or this long ago (24h, 7d).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// One JSON object per line: platform, native_id, url, author, text, created_at,
        /// lang, sentiment {label, compound}, campaigns.
        #[arg(long)]
        json: bool,
    },
    /// Scheduled deliveries (one per post, channel and occurrence): list them, or schedule,
    /// cancel and retry them.
    Posts(posts::PostsArgs),
    /// List the configured sources.
    Sources(ListArgs),
    /// List the configured campaigns, or brake / resume one.
    Campaigns(CampaignsArgs),
    /// The automatic-publishing kill switch: `on` stops every trigger-made post (alerts
    /// still go out), `off` allows them again, `status` shows it.
    KillSwitch {
        #[arg(value_enum, default_value = "status")]
        switch: ops::Switch,
        /// Why (shown in refusals and `status`).
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Trigger firings, oldest first, with their explanation.
    Triggers {
        #[arg(long, value_name = "ID")]
        campaign: Option<String>,
        /// One `TriggerFired` event (JSON, with figures, top terms and samples) per line.
        #[arg(long)]
        json: bool,
    },
    /// A report read from the store: hourly volume (sparkline), platforms, languages,
    /// sentiment, top authors, trigger firings and publish outcomes; --html writes it as
    /// one self-contained page with charts.
    Report {
        /// Only this campaign (default: every active campaign).
        #[arg(long, value_name = "ID")]
        campaign: Option<String>,
        /// Start of the range: an RFC 3339 instant or how long ago (24h, 7d); default 7d.
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Also write the report as a self-contained HTML page (inline SVG charts, printable).
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List the configured channels.
    Channels(ListArgs),
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct CampaignsArgs {
    #[command(subcommand)]
    action: Option<ops::CampaignAction>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

/// A command failed; the message is for the user, the exit code for scripts.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Config(#[from] hark_shared::config::ConfigError),
    #[error(transparent)]
    Backend(#[from] backend::BackendError),
    #[error(transparent)]
    Apply(#[from] apply::ApplyError),
    #[error("the store failed")]
    Store(#[from] hark_shared::ports::StoreError),
    #[error("cannot write the output")]
    Output(#[from] std::io::Error),
    #[error(transparent)]
    Ops(#[from] ops::OpsError),
    #[error(transparent)]
    Demo(#[from] demo::DemoError),
    #[error(transparent)]
    Run(#[from] run::RunError),
    #[error(transparent)]
    Posts(#[from] posts::PostsError),
    #[error("cannot set up the HTTP client")]
    Http(#[from] reqwest::Error),
    #[error(transparent)]
    Analyze(#[from] analyze::AnalyzeError),
    #[error(
        "--since `{0}`: expected an RFC 3339 instant (2026-12-01T09:00:00Z) or a duration (24h, 7d)"
    )]
    Since(String),
}

impl CliError {
    /// 2 for invalid input (the user can fix the file), 1 for everything else.
    fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Posts(e) if e.is_invalid_input() => ExitCode::from(2),
            CliError::Apply(apply::ApplyError::Invalid { .. })
            | CliError::Config(_)
            | CliError::Backend(backend::BackendError::Config(_))
            | CliError::Since(_)
            | CliError::Ops(ops::OpsError::UnknownCampaign(_))
            | CliError::Demo(demo::DemoError::NotADemoDir { .. })
            | CliError::Analyze(analyze::AnalyzeError::Lang(_)) => ExitCode::from(2),
            _ => ExitCode::from(1),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    init_tracing(LogFormat::from_env(), level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            e.exit_code()
        }
    }
}

/// The error and its sources, as one readable message.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn config_for(cli: &Cli) -> Result<Config, CliError> {
    let mut config = Config::from_env()?;
    if let Some(b) = cli.backend {
        config.backend = match b {
            BackendArg::Embedded => BackendKind::Embedded,
            BackendArg::Aws => BackendKind::Aws,
        };
    }
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    Ok(config)
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let config = config_for(&cli)?;
    match &cli.command {
        Command::Init { queue_prefix } => {
            for line in Backend::init(&config, queue_prefix).await? {
                println!("{line}");
            }
            Ok(())
        }
        Command::Apply {
            file,
            dry_run,
            json,
        } => {
            let desired = apply::load(file)?;
            let backend = Backend::open(&config).await?;
            let now = jiff::Timestamp::now();
            let applied = match &backend {
                Backend::Embedded { store, .. } => {
                    apply::apply_and_schedule(&**store, &**store, &desired, *dry_run, now).await?
                }
                Backend::Aws { store, queue, .. } => {
                    apply::apply_and_schedule(&**store, &**queue, &desired, *dry_run, now).await?
                }
            };
            print_plan(&applied.plan, *dry_run, *json, &backend)?;
            if !*json && !applied.scheduled.is_empty() {
                let mut out = std::io::stdout().lock();
                writeln!(out, "Scheduled posts:")?;
                posts::print_schedule(&applied.scheduled, &mut out)?;
            }
            Ok(())
        }
        Command::Run { once, every, json } => {
            let backend = Backend::open(&config).await?;
            // In the cloud, `ssm:` and `secretsmanager:` references resolve as the functions
            // resolve them; locally only `env:` does.
            let secrets: std::sync::Arc<dyn hark_shared::secrets::SecretResolver> = match &backend {
                Backend::Embedded { .. } => {
                    std::sync::Arc::new(hark_shared::secrets::EnvSecretResolver)
                }
                Backend::Aws { .. } => {
                    std::sync::Arc::new(hark_shared::aws::AwsSecretResolver::new(
                        &hark_shared::aws::load_sdk_config().await,
                    ))
                }
            };
            let listeners = hark_shared::platforms::listeners::PlatformListeners::new(
                hark_shared::platforms::HttpClient::new(config.allow_private_urls)?,
                secrets.clone(),
            )
            .with_enabled(config.enabled_platforms.clone());
            let mut report = run::RunReport::default();
            let clock = hark_shared::clock::SystemClock;
            let publishers = hark_shared::publishing::PlatformPublishers::new(
                hark_shared::platforms::HttpClient::new(config.allow_private_urls)?,
                secrets,
                std::sync::Arc::new(hark_shared::clock::SystemClock),
            )
            .with_enabled(config.enabled_platforms.clone())
            .with_rate_gate(match &backend {
                Backend::Embedded { store, .. } => {
                    std::sync::Arc::new(hark_shared::publishing::StoreRateGate(store.clone()))
                }
                Backend::Aws { store, .. } => {
                    std::sync::Arc::new(hark_shared::publishing::StoreRateGate(store.clone()))
                }
            });
            let processor = hark_shared::processing::Processor::new(
                hark_shared::analysis::Analyzer::new(
                    hark_shared::analysis::Languages::from_codes(&config.languages)
                        .map_err(analyze::AnalyzeError::from)?,
                )
                .map_err(analyze::AnalyzeError::from)?,
            );
            let cadence = std::time::Duration::from_secs(every.as_secs());
            match &backend {
                Backend::Embedded { store, .. } => {
                    let pipeline = run::Pipeline {
                        store: &**store,
                        queue: &**store,
                        listeners: &listeners,
                        processor: &processor,
                        clock: &clock,
                        settings: Default::default(),
                        publishers: &publishers,
                        publishing: Default::default(),
                        bus: Some(&**store),
                    };
                    if *once {
                        pipeline.once(&mut report).await?;
                    } else {
                        pipeline.forever(cadence, &mut report).await?;
                    }
                }
                Backend::Aws {
                    store, queue, bus, ..
                } => {
                    let pipeline = run::Pipeline {
                        store: &**store,
                        queue: &**queue,
                        listeners: &listeners,
                        processor: &processor,
                        clock: &clock,
                        settings: Default::default(),
                        publishers: &publishers,
                        publishing: Default::default(),
                        bus: bus
                            .as_deref()
                            .map(|b| b as &dyn hark_shared::actions::EventBus),
                    };
                    if *once {
                        pipeline.once(&mut report).await?;
                    } else {
                        pipeline.forever(cadence, &mut report).await?;
                    }
                }
            }
            print_run_report(&report, *json)?;
            Ok(())
        }
        Command::Analyze { lang } => {
            let stdin = std::io::stdin().lock();
            let stdout = std::io::stdout().lock();
            analyze::analyze(&config.languages, lang.as_deref(), stdin, stdout)?;
            Ok(())
        }
        Command::Mentions {
            campaign,
            since,
            json,
        } => {
            let now = jiff::Timestamp::now();
            let from = match since {
                None => jiff::Timestamp::UNIX_EPOCH,
                Some(text) => {
                    parse_since(text, now).ok_or_else(|| CliError::Since(text.clone()))?
                }
            };
            let to = now + jiff::SignedDuration::from_hours(24 * 365);
            let backend = Backend::open(&config).await?;
            let mentions = match &backend {
                Backend::Embedded { store, .. } => {
                    hark_shared::processing::list_mentions(&**store, campaign.as_deref(), from, to)
                        .await?
                }
                Backend::Aws { store, .. } => {
                    hark_shared::processing::list_mentions(&**store, campaign.as_deref(), from, to)
                        .await?
                }
            };
            analyze::print_mentions(&mentions, *json, std::io::stdout().lock())?;
            Ok(())
        }
        Command::Posts(args) => {
            let backend = Backend::open(&config).await?;
            let now = jiff::Timestamp::now();
            match &backend {
                Backend::Embedded { store, .. } => {
                    posts::run(&**store, &**store, args, now).await?
                }
                Backend::Aws { store, queue, .. } => {
                    posts::run(&**store, &**queue, args, now).await?
                }
            }
            Ok(())
        }
        Command::Sources(args) => list::<Source>(&config, args).await,
        Command::Campaigns(CampaignsArgs { action: None, json }) => {
            list::<Campaign>(&config, &ListArgs { json: *json }).await
        }
        Command::Campaigns(CampaignsArgs {
            action: Some(action),
            ..
        }) => {
            let backend = Backend::open(&config).await?;
            let now = jiff::Timestamp::now();
            match &backend {
                Backend::Embedded { store, .. } => {
                    ops::campaign_action(&**store, action, now).await?
                }
                Backend::Aws { store, .. } => ops::campaign_action(&**store, action, now).await?,
            }
            Ok(())
        }
        Command::Demo(args) => {
            demo::run(&config, args).await?;
            Ok(())
        }
        Command::KillSwitch {
            switch,
            reason,
            json,
        } => {
            let backend = Backend::open(&config).await?;
            let now = jiff::Timestamp::now();
            match &backend {
                Backend::Embedded { store, .. } => {
                    ops::kill_switch(&**store, *switch, reason.clone(), *json, now).await?
                }
                Backend::Aws { store, .. } => {
                    ops::kill_switch(&**store, *switch, reason.clone(), *json, now).await?
                }
            }
            Ok(())
        }
        Command::Triggers { campaign, json } => {
            let backend = Backend::open(&config).await?;
            match &backend {
                Backend::Embedded { store, .. } => {
                    ops::triggers(&**store, campaign.as_deref(), *json).await?
                }
                Backend::Aws { store, .. } => {
                    ops::triggers(&**store, campaign.as_deref(), *json).await?
                }
            }
            Ok(())
        }
        Command::Report {
            campaign,
            since,
            html,
            json,
        } => {
            let now = jiff::Timestamp::now();
            let from = report::range_start(since.as_deref(), now)?;
            let backend = Backend::open(&config).await?;
            let (campaign, html) = (campaign.as_deref(), html.as_deref());
            match &backend {
                Backend::Embedded { store, .. } => {
                    report::run(&**store, campaign, from, html, *json, now).await
                }
                Backend::Aws { store, .. } => {
                    report::run(&**store, campaign, from, html, *json, now).await
                }
            }
        }
        Command::Channels(args) => list::<Channel>(&config, args).await,
    }
}

/// `--since`: an instant, or a duration back from now.
fn parse_since(text: &str, now: jiff::Timestamp) -> Option<jiff::Timestamp> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Some(t);
    }
    let back: hark_shared::domain::Interval = text.parse().ok()?;
    now.checked_sub(back.as_duration()).ok()
}

fn print_run_report(report: &run::RunReport, json: bool) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(report).unwrap_or_default())?;
    } else {
        writeln!(
            out,
            "{} tick(s): {} source(s) scheduled, {} poll(s) ok, {} failed, {} mention(s) found, {} stored ({} matched a campaign, {} duplicates dropped){}",
            report.ticks,
            report.sources_scheduled,
            report.polls_ok,
            report.polls_failed,
            report.mentions_queued,
            report.mentions_stored,
            report.mentions_matched,
            report.duplicates,
            if report.messages_failed > 0 {
                format!(
                    ", {} message(s) left on their queue to retry",
                    report.messages_failed
                )
            } else {
                String::new()
            }
        )?;
        writeln!(
            out,
            "publishing: {} delivery job(s) dispatched, {} post(s) published, {} failed, {} to retry later, {} with an unknown outcome",
            report.deliveries_dispatched,
            report.posts_published,
            report.posts_failed,
            report.posts_retrying,
            report.posts_unknown
        )?;
        if !report.triggers_fired.is_empty() || report.events_handled > 0 {
            writeln!(
                out,
                "triggers: {} fired, {} event(s) handled, {} alert(s) and {} automatic post(s) created, {} delivery(ies) paused, {} event(s) on the bus",
                report.triggers_fired.len(),
                report.events_handled,
                report.alerts_created,
                report.auto_posts_created,
                report.deliveries_paused,
                report.bus_events
            )?;
        }
    }
    Ok(())
}

fn print_plan(
    plan: &[apply::PlannedChange],
    dry_run: bool,
    json: bool,
    backend: &Backend,
) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    if json {
        for change in plan {
            writeln!(out, "{}", serde_json::to_string(change).unwrap_or_default())?;
        }
        return Ok(());
    }
    let target = match backend {
        Backend::Embedded { dir, .. } => format!("embedded store {}", dir.display()),
        Backend::Aws { table, .. } => format!("DynamoDB table {table}"),
    };
    writeln!(
        out,
        "{} against {target}:",
        if dry_run {
            "Plan (dry run, nothing written)"
        } else {
            "Applied"
        }
    )?;
    for change in plan {
        writeln!(
            out,
            "  {:<9}  {:<8}  {}",
            change.action, change.kind, change.id
        )?;
    }
    let count = |a: &str| plan.iter().filter(|c| c.action == a).count();
    writeln!(
        out,
        "{} to create, {} to update, {} unchanged.",
        count("create"),
        count("update"),
        count("unchanged")
    )?;
    Ok(())
}

async fn list<E: ConfigEntity + Summary>(config: &Config, args: &ListArgs) -> Result<(), CliError> {
    let backend = Backend::open(config).await?;
    let items: Vec<E> = match &backend {
        Backend::Embedded { store, .. } => store.list::<E>().await?,
        Backend::Aws { store, .. } => store.list::<E>().await?,
    };
    let mut out = std::io::stdout().lock();
    for item in &items {
        if args.json {
            writeln!(out, "{}", serde_json::to_string(item).unwrap_or_default())?;
        } else {
            writeln!(out, "{:<24}  {}", item.id(), item.summary())?;
        }
    }
    if !args.json && items.is_empty() {
        writeln!(out, "(no {}s; add some with `hark apply FILE`)", E::KIND)?;
    }
    Ok(())
}

/// One human-readable line describing an entity in listings.
trait Summary {
    fn summary(&self) -> String;
}

impl Summary for Source {
    fn summary(&self) -> String {
        let what = self.query.as_deref().or(self.url.as_deref()).unwrap_or("");
        format!(
            "{:<10}  every {:<6}  {what}",
            self.platform,
            self.every.to_string()
        )
    }
}

impl Summary for Campaign {
    fn summary(&self) -> String {
        format!(
            "{}  sources: {}  triggers: {}{}",
            self.query,
            self.sources.join(","),
            self.triggers.len(),
            if self.active { "" } else { "  (inactive)" }
        )
    }
}

impl Summary for Channel {
    fn summary(&self) -> String {
        format!(
            "{:<10}  {}",
            self.platform.as_str(),
            self.base_url
                .as_deref()
                .or(self.account.as_deref())
                .unwrap_or("")
        )
    }
}
