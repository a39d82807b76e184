//! English sentiment parity: every line of the vaderSentiment 3.3.2 reference file must be
//! reproduced at the reference's precision (compound to 4 decimals, pos/neu/neg to 3).
//!
//! The data lives outside the repository, at `<repo>/../shared/data/sentiment/` (override the
//! directory with `HARK_SENTIMENT_DATA`). A missing file fails the test with its path: a
//! parity check that silently skips would prove nothing.

use std::path::{Path, PathBuf};

use hark_shared::analysis::sentiment::english;
use serde::Deserialize;

const REFERENCE_LINES: usize = 39_911;

#[derive(Deserialize)]
struct Reference {
    set: String,
    text: String,
    compound: f64,
    pos: f64,
    neu: f64,
    neg: f64,
}

fn data_dir() -> PathBuf {
    std::env::var_os("HARK_SENTIMENT_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/data/sentiment"
            ))
        })
}

/// Read a data file, or explain which path is missing and how to point the test at it.
fn read_data(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the sentiment data file {}: {e} (set HARK_SENTIMENT_DATA to the \
             directory holding en/vader_reference.jsonl and de/train.tsv)",
            path.display()
        )
    })
}

/// Python's `round(x, digits)` output, compared as an integer count of units so that float
/// representation cannot make equal values unequal.
fn units(x: f64, digits: i32) -> i64 {
    (x * 10f64.powi(digits)).round() as i64
}

#[test]
fn given_every_reference_line_then_english_scores_equal_vader_sentiment_3_3_2() {
    let path = data_dir().join("en/vader_reference.jsonl");
    let content = read_data(&path).unwrap_or_else(|message| panic!("{message}"));

    let mut lines = 0usize;
    let mut mismatches = Vec::new();
    for (number, line) in content.lines().enumerate() {
        let reference: Reference = serde_json::from_str(line).unwrap_or_else(|e| {
            panic!(
                "{}:{}: not a reference line: {e}",
                path.display(),
                number + 1
            )
        });
        lines += 1;
        let got = english::score(&reference.text);
        let want = (
            units(reference.compound, 4),
            units(reference.pos, 3),
            units(reference.neu, 3),
            units(reference.neg, 3),
        );
        let have = (
            units(got.compound, 4),
            units(got.pos, 3),
            units(got.neu, 3),
            units(got.neg, 3),
        );
        if have != want {
            mismatches.push(format!(
                "line {} ({}): {:?}\n    want compound/pos/neu/neg {:?}\n    got  {:?}",
                number + 1,
                reference.set,
                reference.text,
                (
                    reference.compound,
                    reference.pos,
                    reference.neu,
                    reference.neg
                ),
                (got.compound, got.pos, got.neu, got.neg)
            ));
        }
    }

    assert_eq!(
        lines,
        REFERENCE_LINES,
        "{} should have {REFERENCE_LINES} lines",
        path.display()
    );
    assert!(
        mismatches.is_empty(),
        "{} of {lines} reference lines differ from vaderSentiment 3.3.2; first ones:\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn given_a_missing_data_file_then_the_failure_names_its_path() {
    let path = data_dir().join("en/no-such-reference.jsonl");
    let message = read_data(&path).unwrap_err();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("HARK_SENTIMENT_DATA"), "{message}");
}
