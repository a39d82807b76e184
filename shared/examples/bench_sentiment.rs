//! Sentiment throughput on one core.
//!
//! ```sh
//! cargo run -p hark-shared --example bench_sentiment --release -- [--data DIR] [--seconds N]
//! ```
//!
//! Scores the 23,703 `vader_paper` texts of `en/vader_reference.jsonl` with the English scorer
//! and the texts of `de/train.tsv` with the German model, repeating each set for at least
//! `--seconds` (default 3), and prints texts per second. It also times the whole
//! `Analyzer::analyze` (language detection included) on both sets. `scripts/bench-vader-python`
//! times Python vaderSentiment 3.3.2 on the same English texts for the ratio.
//!
//! `--data` defaults to `$HARK_SENTIMENT_DATA`, else `<repo>/../shared/data/sentiment`.

use std::hint::black_box;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hark_shared::analysis::sentiment::{english, german};
use hark_shared::analysis::{Analyzer, Languages};

#[derive(serde::Deserialize)]
struct Reference {
    set: String,
    text: String,
}

fn main() -> ExitCode {
    let mut data = std::env::var_os("HARK_SENTIMENT_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/data/sentiment"
            ))
        });
    let mut seconds = 3.0f64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--data", Some(dir)) => data = dir.into(),
            ("--seconds", Some(s)) if s.parse::<f64>().is_ok_and(|s| s > 0.0) => {
                seconds = s.parse().unwrap_or(seconds);
            }
            _ => {
                eprintln!("usage: bench_sentiment [--data DIR] [--seconds N]");
                return ExitCode::from(2);
            }
        }
    }

    let en_path = data.join("en/vader_reference.jsonl");
    let de_path = data.join("de/train.tsv");
    let (en_raw, de_raw) = match (
        std::fs::read_to_string(&en_path),
        std::fs::read_to_string(&de_path),
    ) {
        (Ok(en), Ok(de)) => (en, de),
        (Err(e), _) => return fail(&format!("cannot read {}: {e}", en_path.display())),
        (_, Err(e)) => return fail(&format!("cannot read {}: {e}", de_path.display())),
    };
    let mut english_texts = Vec::new();
    for line in en_raw.lines() {
        match serde_json::from_str::<Reference>(line) {
            Ok(r) if r.set == "vader_paper" => english_texts.push(r.text),
            Ok(_) => {}
            Err(e) => return fail(&format!("{}: {e}", en_path.display())),
        }
    }
    let german_texts = match german::parse_corpus(&de_raw) {
        Ok(rows) => rows.into_iter().map(|r| r.text).collect::<Vec<_>>(),
        Err(e) => return fail(&format!("{}: {e}", de_path.display())),
    };
    let model = match german::embedded() {
        Ok(model) => model,
        Err(e) => return fail(&format!("embedded German model: {e}")),
    };
    let analyzer = match Analyzer::new(Languages::default()) {
        Ok(a) => a,
        Err(e) => return fail(&format!("analyzer: {e}")),
    };
    let budget = Duration::from_secs_f64(seconds);

    println!("one thread, at least {seconds} s per measurement");
    let en = measure(&english_texts, budget, |t| {
        black_box(english::score(t));
    });
    println!(
        "English  (vader-parity)        {:>6} vader_paper texts: {:>10.0} texts/s",
        english_texts.len(),
        en
    );
    let de = measure(&german_texts, budget, |t| {
        black_box(model.score(t));
    });
    println!(
        "German   (embedded model)      {:>6} train.tsv texts:   {:>10.0} texts/s",
        german_texts.len(),
        de
    );
    let en_full = measure(&english_texts, budget, |t| {
        black_box(analyzer.analyze(t, None));
    });
    println!("Analyzer (detect + score), en  {en_full:>34.0} texts/s");
    let de_full = measure(&german_texts, budget, |t| {
        black_box(analyzer.analyze(t, None));
    });
    println!("Analyzer (detect + score), de  {de_full:>34.0} texts/s");
    ExitCode::SUCCESS
}

/// Texts per second over whole passes of `texts`, after one warm-up pass.
fn measure(texts: &[String], budget: Duration, mut score: impl FnMut(&str)) -> f64 {
    for t in texts {
        score(t);
    }
    let started = Instant::now();
    let mut scored = 0usize;
    while started.elapsed() < budget {
        for t in texts {
            score(t);
        }
        scored += texts.len();
    }
    scored as f64 / started.elapsed().as_secs_f64()
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}
