//! `hark demo` end to end: the binary runs the whole pipeline in a temporary data
//! directory; the store it leaves behind is then read through the ports.

use std::sync::Arc;

use hark_shared::clock::SystemClock;
use hark_shared::domain::{Campaign, DeliveryStatus, Platform, ScheduledPost};
use hark_shared::embedded::{EmbeddedOptions, EmbeddedStore};
use hark_shared::ports::{ConfigStore, DeliveryStore, TriggerStore};
use jiff::{SignedDuration, Timestamp};

mod common;

fn hark(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    common::hark_with(dir, args, &[])
}

#[tokio::test]
async fn given_a_fresh_dir_then_the_demo_runs_every_stage_and_leaves_its_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let out = hark(&dir, &["demo", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!summary["alerts_received"].as_array().unwrap().is_empty());
    assert_eq!(summary["signatures_valid"], true);

    let store = EmbeddedStore::open(
        &dir,
        EmbeddedOptions {
            retention_days: 3650,
            max_receive_count: 5,
            clock: Arc::new(SystemClock),
        },
    )
    .unwrap();
    // Mentions from every simulated platform, in both languages.
    let now = Timestamp::now();
    let mentions = hark_shared::processing::list_mentions(
        &store,
        None,
        now - SignedDuration::from_hours(30),
        now + SignedDuration::from_hours(1),
    )
    .await
    .unwrap();
    for platform in [
        Platform::Mastodon,
        Platform::Bluesky,
        Platform::Hackernews,
        Platform::Rss,
    ] {
        assert!(
            mentions.iter().any(|m| m.platform == platform),
            "no {platform} mentions"
        );
    }
    assert!(mentions.iter().any(|m| m.lang.as_deref() == Some("de")));
    assert!(mentions.iter().all(|m| m.sentiment.is_some()));

    // The negative wave fired its rule, with an explanation.
    let campaigns: Vec<Campaign> = store.list().await.unwrap();
    assert_eq!(campaigns.len(), 1);
    let firings = store.list_firings("kestrel-launch").await.unwrap();
    let rules: Vec<&str> = firings.iter().map(|f| f.rule.as_str()).collect();
    assert!(rules.contains(&"negative-wave"), "{rules:?}");
    assert!(rules.contains(&"influencer"), "{rules:?}");
    assert!(firings.iter().all(|f| f.event.contains("\"summary\"")));

    // The launch post was published on both channels; the brake held the later one.
    let launch = store.list_deliveries(Some("launch-day")).await.unwrap();
    assert_eq!(launch.len(), 2);
    assert!(
        launch
            .iter()
            .all(|d| d.status() == DeliveryStatus::Published)
    );
    let later = store.list_deliveries(Some("feature-friday")).await.unwrap();
    assert_eq!(later[0].status(), DeliveryStatus::Paused);
    // The automatic reply waits for approval (the campaign's policy).
    let posts: Vec<ScheduledPost> = store.list().await.unwrap();
    assert!(
        posts
            .iter()
            .any(|p| p.draft.as_ref().is_some_and(|d| !d.is_approved()))
    );

    // The data stays usable by the other commands.
    let listed = hark(&dir, &["posts", "--json"]);
    assert!(listed.status.success());
    assert!(String::from_utf8_lossy(&listed.stdout).contains("\"PAUSED\""));
    let triggers = hark(&dir, &["triggers"]);
    assert!(String::from_utf8_lossy(&triggers.stdout).contains("Negative wave"));

    // A second run replaces its own data.
    assert!(hark(&dir, &["demo", "--hours", "6"]).status.success());
}

#[test]
fn given_a_dir_with_someone_elses_store_then_the_demo_refuses_and_touches_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let init = hark(tmp.path(), &["init"]);
    assert!(init.status.success());
    let before = std::fs::metadata(tmp.path().join("hark.db")).unwrap().len();
    let out = hark(tmp.path(), &["demo"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did not create"), "{err}");
    assert_eq!(
        std::fs::metadata(tmp.path().join("hark.db")).unwrap().len(),
        before
    );
}
