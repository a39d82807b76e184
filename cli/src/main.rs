//! `hark`: Hark's local runner and operator tool.

mod apply;
mod backend;

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
    /// List the configured sources.
    Sources(ListArgs),
    /// List the configured campaigns.
    Campaigns(ListArgs),
    /// List the configured channels.
    Channels(ListArgs),
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
}

impl CliError {
    /// 2 for invalid input (the user can fix the file), 1 for everything else.
    fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Apply(apply::ApplyError::Invalid { .. })
            | CliError::Config(_)
            | CliError::Backend(backend::BackendError::Config(_)) => ExitCode::from(2),
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
            let plan = match &backend {
                Backend::Embedded { store, .. } => {
                    apply::apply(&**store, &desired, *dry_run).await?
                }
                Backend::Aws { store, .. } => apply::apply(&**store, &desired, *dry_run).await?,
            };
            print_plan(&plan, *dry_run, *json, &backend)?;
            Ok(())
        }
        Command::Sources(args) => list::<Source>(&config, args).await,
        Command::Campaigns(args) => list::<Campaign>(&config, args).await,
        Command::Channels(args) => list::<Channel>(&config, args).await,
    }
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
