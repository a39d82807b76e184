//! `hark apply` scheduling posts, `hark run --once` publishing them and `hark posts`
//! showing and changing deliveries, end to end on the embedded backend against a
//! simulated Mastodon on loopback.

use std::path::Path;

use hark_tests::fakes::{FakeMastodon, MASTODON_TOKEN};
use jiff::{SignedDuration, Timestamp};

mod common;
use common::ok;

fn hark(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    common::hark_with(
        data_dir,
        args,
        &[
            ("HARK_ALLOW_PRIVATE_URLS", "1"),
            ("HARK_TEST_MASTO_TOKEN", MASTODON_TOKEN),
        ],
    )
}

fn deliveries(dir: &Path) -> Vec<serde_json::Value> {
    ok(hark(dir, &["posts", "--json"]))
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

fn config(masto: &str, posts: &str) -> String {
    format!(
        r##"
channels:
  - id: brand-masto
    platform: mastodon
    base_url: {masto}
    token: env:HARK_TEST_MASTO_TOKEN
  - id: brand-sky
    platform: bluesky
    account: brand.bsky.social
    token: env:HARK_TEST_SKY_PASSWORD
posts:
{posts}"##
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_due_post_when_applied_and_run_then_posts_json_shows_it_published_once() {
    let mastodon = FakeMastodon::start().await;
    let dir = tempfile::tempdir().unwrap();
    let due = Timestamp::now() - SignedDuration::from_mins(1);
    let later = Timestamp::now() + SignedDuration::from_hours(48);
    let file = dir.path().join("hark.yaml");
    std::fs::write(
        &file,
        config(
            &mastodon.server.uri(),
            &format!(
                "  - id: now\n    at: {due}\n    channels: [brand-masto]\n    text: \"Hark 1.0 is out!\"\n    link: https://example.com/hark\n  - id: later\n    at: {later}\n    channels: [brand-masto]\n    text: \"Coming soon\"\n"
            ),
        ),
    )
    .unwrap();
    let dry = ok(hark(
        dir.path(),
        &["apply", file.to_str().unwrap(), "--dry-run"],
    ));
    assert!(!dry.contains("Scheduled posts"), "{dry}");
    assert!(
        deliveries(dir.path()).is_empty(),
        "a dry run creates no deliveries"
    );

    let applied = ok(hark(dir.path(), &["apply", file.to_str().unwrap()]));
    assert!(applied.contains("Scheduled posts:"), "{applied}");
    assert!(applied.contains("1 new"), "{applied}");
    let queued = deliveries(dir.path());
    assert_eq!(queued.len(), 2);
    assert!(queued.iter().all(|d| d["status"] == "QUEUED"), "{queued:?}");

    let report: serde_json::Value =
        serde_json::from_str(ok(hark(dir.path(), &["run", "--once", "--json"])).trim()).unwrap();
    assert_eq!(report["deliveries_dispatched"], 1, "{report}");
    assert_eq!(report["posts_published"], 1, "{report}");
    let rows = deliveries(dir.path());
    let published = rows.iter().find(|d| d["post"] == "now").unwrap();
    assert_eq!(published["status"], "PUBLISHED");
    assert_eq!(published["channel"], "brand-masto");
    assert_eq!(published["attempts"], 1);
    assert_eq!(published["error"], serde_json::Value::Null);
    let created = mastodon.created();
    assert_eq!(created.len(), 1);
    assert_eq!(published["platform_id"], created[0].id.as_str());
    assert_eq!(
        published["url"],
        format!("https://mastodon.example/@brand/{}", created[0].id).as_str()
    );
    assert_eq!(
        created[0].text,
        "Hark 1.0 is out!\n\nhttps://example.com/hark"
    );

    // Applying and running again publishes nothing twice.
    ok(hark(dir.path(), &["apply", file.to_str().unwrap()]));
    let again: serde_json::Value =
        serde_json::from_str(ok(hark(dir.path(), &["run", "--once", "--json"])).trim()).unwrap();
    assert_eq!(again["posts_published"], 0, "{again}");
    assert_eq!(mastodon.created().len(), 1);

    // The later one is cancelled by the operator; cancelling it again is refused.
    let later_id = rows.iter().find(|d| d["post"] == "later").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = ok(hark(dir.path(), &["posts", "cancel", &later_id]));
    assert!(out.contains("is CANCELLED"), "{out}");
    let refused = hark(dir.path(), &["posts", "cancel", &later_id]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("cannot go from CANCELLED to CANCELLED"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let retry = hark(dir.path(), &["posts", "retry", &later_id]);
    assert_eq!(
        retry.status.code(),
        Some(2),
        "only FAILED deliveries are retried"
    );
}

#[test]
fn given_a_text_too_long_for_one_channel_when_applied_then_the_error_names_file_line_field_and_channel()
 {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hark.yaml");
    let long = "é".repeat(320);
    let text = config(
        "https://mastodon.example",
        &format!(
            "  - id: launch\n    at: 2030-01-01T09:00:00+01:00\n    channels: [brand-masto, brand-sky]\n    text: \"{long}\"\n    overrides:\n      brand-masto: \"short\"\n      brand-sky: \"{long}\"\n"
        ),
    );
    std::fs::write(&file, &text).unwrap();
    let out = hark(dir.path(), &["apply", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .position(|l| l.trim_start().starts_with("brand-sky:"))
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!(
            ":{line}:7: posts[0].overrides.brand-sky: channel `brand-sky`: Bluesky allows 300 graphemes, this text has 320 (20 over)"
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("brand-masto`"),
        "the override fits Mastodon: {stderr}"
    );
    assert!(deliveries(dir.path()).is_empty(), "nothing was written");
}

#[test]
fn given_an_unknown_post_when_scheduled_by_id_then_exit_2_says_to_apply_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = hark(dir.path(), &["posts", "schedule", "--post", "ghost"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hark apply FILE"));
}
