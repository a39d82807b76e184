//! The `hark` binary as users and scripts run it (embedded backend, temporary data dir).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hark.yaml")
}

fn hark(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    common::hark_with(data_dir, args, &[])
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn given_the_example_when_applied_then_campaigns_json_shows_it_and_reapply_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let file = example();
    let file = file.to_str().unwrap();

    let first = hark(dir.path(), &["apply", file]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stdout(&first).contains("7 to create, 0 to update, 0 unchanged."));

    let listed = hark(dir.path(), &["campaigns", "--json"]);
    assert!(listed.status.success());
    let lines: Vec<serde_json::Value> = stdout(&listed)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["id"], "launch");
    assert_eq!(lines[0]["query"], "(hark OR #harkapp) -hiring");

    let again = hark(dir.path(), &["apply", file, "--json"]);
    assert!(again.status.success());
    let actions: Vec<String> = stdout(&again)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["action"].to_string())
        .collect();
    assert_eq!(actions.len(), 7);
    assert!(actions.iter().all(|a| a == "\"unchanged\""), "{actions:?}");
}

#[test]
fn given_a_dry_run_then_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = hark(
        dir.path(),
        &["apply", example().to_str().unwrap(), "--dry-run"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("dry run"));
    let listed = hark(dir.path(), &["sources", "--json"]);
    assert_eq!(stdout(&listed), "", "no sources were stored");
}

#[test]
fn given_a_typo_when_applied_then_exit_2_names_file_line_field_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example())
        .unwrap()
        .replace("    query: hark\n", "    qeury: hark\n");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, &text).unwrap();
    let line = text.lines().position(|l| l.contains("qeury")).unwrap() + 1;

    let out = hark(dir.path(), &["apply", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("bad.yaml:{line}:")) && err.contains("sources[1].qeury"),
        "{err}"
    );
    let listed = hark(dir.path(), &["sources", "--json"]);
    assert_eq!(stdout(&listed), "", "an invalid file writes nothing");
}

#[test]
fn given_an_unknown_source_id_then_exit_2_and_the_line_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example())
        .unwrap()
        .replace("hn-hark, vendor-blog]", "hn-hark, vendor-blgo]");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, &text).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains("vendor-blgo"))
        .unwrap()
        + 1;
    let out = hark(dir.path(), &["apply", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&format!("bad.yaml:{line}:")), "{err}");
    assert!(
        err.contains("unknown source `vendor-blgo`, did you mean `vendor-blog`?"),
        "{err}"
    );
}

#[test]
fn given_aws_backend_without_a_table_then_exit_2_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hark"))
        .args(["campaigns", "--backend", "aws"])
        .env("HARK_DATA_DIR", dir.path())
        .env_remove("HARK_TABLE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("HARK_TABLE is not set"));
}
