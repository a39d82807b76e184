//! `hark run --once` and `hark mentions` end to end on the embedded backend, against
//! simulated platforms on loopback.

use std::process::Command;

use hark_tests::fakes::{FakeFeed, FakeMastodon};
use jiff::Timestamp;

mod common;
use common::ok;

fn hark(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    common::hark_with(data_dir, args, &[("HARK_ALLOW_PRIVATE_URLS", "1")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_sources_when_run_once_then_mentions_are_stored_analysed_and_listed() {
    let now = Timestamp::now();
    let mastodon = FakeMastodon::start().await;
    mastodon.post(
        "113800000000000301",
        "I really love hark, great launch!",
        now,
    );
    mastodon.post(
        "113800000000000302",
        "Hark ist leider furchtbar langsam und schlecht.",
        now,
    );
    let feed = FakeFeed::start().await;
    feed.publish("p1", "Vendor blog: nothing about us");

    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r##"
sources:
  - id: masto
    platform: mastodon
    base_url: {masto}
    query: "#hark"
  - id: blog
    platform: rss
    url: {feed}
campaigns:
  - id: launch
    query: hark
    sources: [masto, blog]
"##,
        masto = mastodon.server.uri(),
        feed = feed.url()
    );
    let file = dir.path().join("hark.yaml");
    std::fs::write(&file, config).unwrap();
    ok(hark(dir.path(), &["apply", file.to_str().unwrap()]));

    let report: serde_json::Value =
        serde_json::from_str(ok(hark(dir.path(), &["run", "--once", "--json"])).trim()).unwrap();
    assert_eq!(report["polls_ok"], 2, "{report}");
    assert_eq!(report["mentions_stored"], 3, "{report}");
    assert_eq!(
        report["mentions_matched"], 3,
        "the blog item mentions hark too: {report}"
    );

    let lines: Vec<serde_json::Value> = ok(hark(
        dir.path(),
        &["mentions", "--json", "--campaign", "launch"],
    ))
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    assert_eq!(lines.len(), 3);
    let en = lines
        .iter()
        .find(|l| l["lang"] == "en")
        .expect("an English mention");
    assert_eq!(en["platform"], "mastodon");
    assert_eq!(en["sentiment"]["label"], "positive");
    assert_eq!(en["campaigns"], serde_json::json!(["launch"]));
    assert!(
        en["text"]
            .as_str()
            .unwrap()
            .starts_with("I really love hark")
    );
    assert!(en["url"].as_str().unwrap().starts_with("https://"));
    assert!(en["created_at"].as_str().unwrap().ends_with('Z'));
    let de = lines
        .iter()
        .find(|l| l["lang"] == "de")
        .expect("a German mention");
    assert_eq!(de["sentiment"]["label"], "negative");

    // A second run right away: nothing is due, nothing is stored twice.
    let again: serde_json::Value =
        serde_json::from_str(ok(hark(dir.path(), &["run", "--once", "--json"])).trim()).unwrap();
    assert_eq!(again["mentions_stored"], 0);
    let all = ok(hark(dir.path(), &["mentions", "--json", "--since", "1h"]));
    assert_eq!(all.lines().count(), 3);
}

#[test]
fn given_a_bad_since_then_exit_2_with_the_expected_forms() {
    let dir = tempfile::tempdir().unwrap();
    let out = hark(dir.path(), &["mentions", "--since", "last tuesday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
}

#[test]
fn given_text_on_stdin_then_analyze_prints_one_json_line_each() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_hark"))
        .args(["analyze"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all("VADER is smart, handsome, and funny.\nDas Wetter ist heute wirklich schön und angenehm.\n".as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["sentiment"]["compound"], 0.8316);
    assert_eq!(lines[1]["lang"], "de");
}
