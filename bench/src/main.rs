//! Hark's benchmark harness (issue 10): cold start, package size, throughput, memory and
//! cost per million mentions, each against its goal.
//!
//! ```sh
//! cargo build --release -p scheduler -p poller -p processor -p publisher -p actions -p hark-bench
//! target/release/hark-bench all            # or: init | size | throughput | cost
//! ```
//!
//! Options: `--runs N` (cold starts per binary, default 10), `--seconds S` (per throughput
//! figure, default 3), `--ticks N` (minutes simulated by `cost`, default 30), `--per-page N`
//! (new statuses each poll finds in `cost`, default 10; at most 40), `--package`
//! (`size`: run scripts/package first). `init` needs a moto server: `AWS_ENDPOINT_URL`, or
//! the harness starts `scripts/moto-server` itself (see `init::Moto`). See
//! docs/performance.md for what each figure means and how it is measured.

mod corpus;
mod cost;
mod fake_mastodon;
mod http;
mod init;
mod metered;
mod prices;
mod runtime_api;
mod size;
mod throughput;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use corpus::Corpus;

const USAGE: &str = "usage: hark-bench <init|size|throughput|cost|all> [--runs N] [--seconds S] \
                     [--ticks N] [--per-page N] [--package]";

/// Goals from issue 10.
const INIT_GOAL_RATIO: f64 = 1.3;
const ZIP_GOAL_MB: f64 = 6.0;
const RSS_GOAL_MB: f64 = 128.0;
const COST_GOAL_PER_MILLION: f64 = 1.0;

#[derive(Debug)]
struct Options {
    command: String,
    runs: usize,
    seconds: f64,
    ticks: usize,
    per_page: usize,
    package: bool,
}

/// Parses the arguments after the program name.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let command = args.next().ok_or(USAGE)?;
    if !["init", "size", "throughput", "cost", "all"].contains(&command.as_str()) {
        return Err(format!("unknown command `{command}`\n{USAGE}"));
    }
    let mut options = Options {
        command,
        runs: 10,
        seconds: 3.0,
        ticks: 30,
        per_page: cost::Workload::default().per_page,
        package: false,
    };
    while let Some(arg) = args.next() {
        let mut number = |name: &str| {
            args.next()
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| *v > 0.0)
                .ok_or(format!("{name} needs a positive number\n{USAGE}"))
        };
        match arg.as_str() {
            "--runs" => options.runs = number("--runs")? as usize,
            "--seconds" => options.seconds = number("--seconds")?,
            "--ticks" => options.ticks = number("--ticks")? as usize,
            "--per-page" => options.per_page = number("--per-page")? as usize,
            "--package" => options.package = true,
            other => return Err(format!("unknown option `{other}`\n{USAGE}")),
        }
    }
    Ok(options)
}

/// One line of the summary table.
struct Row {
    figure: String,
    value: String,
    goal: String,
    /// value ÷ goal (≤ 1 meets the goal); `None` for figures without a goal.
    ratio: Option<f64>,
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // SAFETY: still single-threaded (no runtime yet). The in-process publisher of `cost`
    // resolves its channel token from this variable, as a function resolves `env:` secrets.
    unsafe { std::env::set_var(cost::TOKEN_VAR, "bench-token") };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), String> {
    let all = options.command == "all";
    let mut rows: Vec<Row> = Vec::new();
    let corpus = if options.command == "size" {
        None
    } else {
        Some(Arc::new(Corpus::load()?))
    };
    if all || options.command == "size" {
        size_section(&options, &mut rows)?;
    }
    if let Some(corpus) = &corpus {
        if all || options.command == "throughput" {
            throughput_section(corpus.clone(), &options, &mut rows).await?;
        }
        if all || options.command == "cost" {
            cost_section(corpus.clone(), &options, &mut rows).await?;
        }
        if all || options.command == "init" {
            init_section(corpus.clone(), &options, &mut rows).await?;
        }
    }
    println!("\n## Summary (this machine)\n");
    println!("| Figure | Value | Goal | Value ÷ goal |");
    println!("|---|---|---|---|");
    for r in &rows {
        let ratio = r.ratio.map_or("—".to_owned(), |x| {
            format!("{x:.2}{}", if x <= 1.0 { "" } else { " (misses)" })
        });
        println!("| {} | {} | {} | {} |", r.figure, r.value, r.goal, ratio);
    }
    Ok(())
}

fn size_section(options: &Options, rows: &mut Vec<Row>) -> Result<(), String> {
    println!("\n## Package size (arm64 zip, cargo-lambda)\n");
    for z in size::run(options.package)? {
        match z.bytes {
            Some(b) => {
                let mb = b as f64 / 1_048_576.0;
                println!("{:<10} {:>6.2} MB  {}", z.function, mb, z.path.display());
                rows.push(Row {
                    figure: format!("zip size, {}", z.function),
                    value: format!("{mb:.2} MB"),
                    goal: format!("≤ {ZIP_GOAL_MB} MB"),
                    ratio: Some(mb / ZIP_GOAL_MB),
                });
            }
            None => {
                println!(
                    "{:<10} not built ({} missing: run `hark-bench size --package` or scripts/package)",
                    z.function,
                    z.path.display()
                );
                rows.push(Row {
                    figure: format!("zip size, {}", z.function),
                    value: "not built".into(),
                    goal: format!("≤ {ZIP_GOAL_MB} MB"),
                    ratio: None,
                });
            }
        }
    }
    Ok(())
}

async fn throughput_section(
    corpus: Arc<Corpus>,
    options: &Options,
    rows: &mut Vec<Row>,
) -> Result<(), String> {
    println!("\n## Throughput (one thread)\n");
    let t = throughput::run(corpus, Duration::from_secs_f64(options.seconds)).await?;
    println!(
        "processor  process_batch, embedded SQLite, {}×{} per batch: {:>9.0} mentions/s",
        throughput::MESSAGES_PER_BATCH,
        throughput::MENTIONS_PER_MESSAGE,
        t.processor_per_s
    );
    println!(
        "poller     MastodonListener::listen over loopback HTTP:      {:>9.0} mentions/s",
        t.listener_per_s
    );
    println!(
        "poller     parse_statuses only (40-status page):             {:>9.0} statuses/s",
        t.parse_per_s
    );
    rows.push(Row {
        figure: "processor throughput (1 thread, SQLite)".into(),
        value: format!("{:.0} mentions/s", t.processor_per_s),
        goal: "—".into(),
        ratio: None,
    });
    rows.push(Row {
        figure: "poller normalisation (1 thread, loopback HTTP)".into(),
        value: format!("{:.0} mentions/s", t.listener_per_s),
        goal: "—".into(),
        ratio: None,
    });
    Ok(())
}

async fn cost_section(
    corpus: Arc<Corpus>,
    options: &Options,
    rows: &mut Vec<Row>,
) -> Result<(), String> {
    let workload = cost::Workload {
        ticks: options.ticks,
        per_page: options.per_page,
        ..cost::Workload::default()
    };
    println!(
        "\n## Cost (embedded backend + counting ports; {} ticks, {} sources, {} new statuses per timeline page, {} posts)\n",
        workload.ticks, workload.sources, workload.per_page, workload.posts
    );
    let r = cost::run(corpus, workload).await?;
    for (label, (usage, lambda), per) in [
        ("listening", r.listening, r.mentions),
        ("publishing", r.publishing, r.posts_published),
    ] {
        let per = per.max(1) as f64;
        println!(
            "{label:<10} per {}: SQS requests {:.3}, DynamoDB requests {:.3}, WRU {:.3}, RRU {:.3}, \
             EventBridge events {:.4}, Lambda invocations {:.4}, GB-s {:.6}",
            if label == "listening" {
                "mention"
            } else {
                "post"
            },
            usage.sqs_requests as f64 / per,
            usage.dynamo_requests as f64 / per,
            usage.write_units / per,
            usage.read_units / per,
            (usage.bus_events + lambda.scheduler_triggers) as f64 / per,
            lambda.invocations as f64 / per,
            lambda.gb_seconds() / per,
        );
    }
    println!(
        "mentions {} in {} polls ({:.1} per poll), posts published {}",
        r.mentions,
        r.polls,
        r.mentions as f64 / r.polls.max(1) as f64,
        r.posts_published
    );
    println!("\nlistening, DynamoDB by operation, per mention:");
    let per = r.mentions.max(1) as f64;
    for (name, op) in &r.listening_operations {
        println!(
            "  {name:<28} requests {:>7.4}  WRU {:>7.4}  RRU {:>7.4}",
            op.requests as f64 / per,
            op.write_units / per,
            op.read_units / per
        );
    }
    println!();
    for (label, bill) in [
        ("$ per million mentions", r.per_million_mentions),
        ("$ per thousand posts", r.per_thousand_posts),
    ] {
        println!(
            "{label:<24} SQS {:.4}  DynamoDB write {:.4}  read {:.4}  Lambda requests {:.4}  duration {:.4}  EventBridge {:.4}  total {:.4}",
            bill.sqs,
            bill.dynamo_write,
            bill.dynamo_read,
            bill.lambda_requests,
            bill.lambda_duration,
            bill.eventbridge,
            bill.total()
        );
    }
    println!(
        "Comprehend DetectSentiment on the same texts (mean {:.0} chars): ${:.2} per million mentions",
        r.mean_text_chars, r.comprehend_sentiment_per_million
    );
    let total = r.per_million_mentions.total();
    rows.push(Row {
        figure: "cost per million mentions, all-in".into(),
        value: format!("${total:.3}"),
        goal: format!("≤ ${COST_GOAL_PER_MILLION:.2}"),
        ratio: Some(total / COST_GOAL_PER_MILLION),
    });
    rows.push(Row {
        figure: "cost per thousand published posts".into(),
        value: format!("${:.4}", r.per_thousand_posts.total()),
        goal: "—".into(),
        ratio: None,
    });
    rows.push(Row {
        figure: "comparison: Comprehend sentiment per million mentions".into(),
        value: format!("${:.2}", r.comprehend_sentiment_per_million),
        goal: "—".into(),
        ratio: None,
    });
    Ok(())
}

async fn init_section(
    corpus: Arc<Corpus>,
    options: &Options,
    rows: &mut Vec<Row>,
) -> Result<(), String> {
    println!(
        "\n## Cold start (Runtime API emulator on loopback, moto for AWS; {} runs each)\n",
        options.runs
    );
    let results = init::run(corpus, options.runs).await?;
    let hello = results
        .iter()
        .find(|r| r.name == "hello-lambda")
        .map_or(1.0, |r| r.init.median.max(0.001));
    println!(
        "{:<13} {:>9} {:>9} {:>7} {:>12} {:>12} {:>9} {:>6}  batch",
        "binary",
        "init p50",
        "init p90",
        "× hello",
        "1st evt p50",
        "1st evt p90",
        "peak RSS",
        "failed"
    );
    for r in &results {
        let ratio = r.init.median / hello;
        let rss_mb = r.peak_rss_kib as f64 / 1024.0;
        println!(
            "{:<13} {:>7.1}ms {:>7.1}ms {:>6.2}× {:>10.1}ms {:>10.1}ms {:>6.1} MB {:>6}  {}",
            r.name,
            r.init.median,
            r.init.p90,
            ratio,
            r.first_event.median,
            r.first_event.p90,
            rss_mb,
            r.failed_records,
            r.batch
        );
        if r.name != "hello-lambda" {
            rows.push(Row {
                figure: format!("init (start → ready), {}", r.name),
                value: format!("{:.1} ms = {ratio:.2}× hello-world", r.init.median),
                goal: format!("≤ {INIT_GOAL_RATIO}× hello-world"),
                ratio: Some(ratio / INIT_GOAL_RATIO),
            });
        }
        rows.push(Row {
            figure: format!("peak RSS on a full batch, {}", r.name),
            value: format!("{rss_mb:.1} MB"),
            goal: format!("≤ {RSS_GOAL_MB} MB"),
            ratio: Some(rss_mb / RSS_GOAL_MB),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        parse_args(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn given_a_command_and_options_when_parsed_then_they_are_taken() {
        let o = parse(&["cost", "--ticks", "5", "--per-page", "40", "--runs", "3"]).unwrap();
        assert_eq!(
            (o.command.as_str(), o.ticks, o.per_page, o.runs),
            ("cost", 5, 40, 3)
        );
        assert!(parse(&["size", "--package"]).unwrap().package);
    }

    #[test]
    fn given_no_or_an_unknown_command_when_parsed_then_the_error_shows_the_usage() {
        assert!(parse(&[]).unwrap_err().contains("usage: hark-bench"));
        let e = parse(&["bench"]).unwrap_err();
        assert!(
            e.contains("unknown command `bench`") && e.contains("usage"),
            "{e}"
        );
    }

    #[test]
    fn given_a_bad_option_or_number_when_parsed_then_the_error_names_it() {
        assert!(
            parse(&["init", "--fast"])
                .unwrap_err()
                .contains("unknown option `--fast`")
        );
        for bad in [
            &["init", "--runs"][..],
            &["init", "--runs", "zero"],
            &["init", "--runs", "-1"],
        ] {
            assert!(
                parse(bad)
                    .unwrap_err()
                    .contains("--runs needs a positive number")
            );
        }
    }
}
