use std::path::Path;
use std::sync::Arc;

use hark_shared::clock::SystemClock;
use hark_shared::domain::{Campaign, Platform, TriggerCondition};
use hark_shared::embedded::{EmbeddedOptions, EmbeddedStore};

use super::*;

fn store() -> EmbeddedStore {
    EmbeddedStore::open_in_memory(EmbeddedOptions {
        retention_days: 30,
        max_receive_count: 3,
        clock: Arc::new(SystemClock),
    })
    .unwrap()
}

fn example() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hark.yaml");
    std::fs::read_to_string(path).unwrap()
}

fn problems(text: &str) -> Vec<Problem> {
    match parse(Path::new("hark.yaml"), text) {
        Err(ApplyError::Invalid { problems, .. }) => problems,
        other => panic!("expected problems, got {other:?}"),
    }
}

/// The 1-based line of the first line containing `needle`.
fn line_of(text: &str, needle: &str) -> u64 {
    text.lines().position(|l| l.contains(needle)).unwrap() as u64 + 1
}

#[test]
fn given_the_bundled_example_when_parsed_then_every_section_is_read() {
    let desired = parse(Path::new("examples/hark.yaml"), &example()).unwrap();
    assert_eq!(desired.sources.len(), 3);
    assert_eq!(desired.campaigns.len(), 1);
    assert_eq!(desired.channels.len(), 2);
    assert_eq!(desired.posts.len(), 1);
    let launch = &desired.campaigns[0];
    assert_eq!(launch.triggers.len(), 3);
    assert!(matches!(
        launch.triggers[0].when,
        TriggerCondition::NegativeShare { above, .. } if (above - 0.4).abs() < 1e-9
    ));
    assert_eq!(desired.sources[0].platform, Platform::Mastodon);
    assert_eq!(desired.sources[0].every.as_secs(), 300);
    // 09:00 in +01:00 is 08:00 UTC.
    assert_eq!(desired.posts[0].at.to_string(), "2026-12-01T08:00:00Z");
}

#[tokio::test]
async fn given_a_fresh_store_when_applied_twice_then_the_second_run_is_unchanged() {
    let store = store();
    let desired = parse(Path::new("hark.yaml"), &example()).unwrap();
    let first = apply(&store, &desired, false).await.unwrap();
    assert_eq!(first.len(), 7);
    assert!(first.iter().all(|c| c.action == "create"), "{first:?}");
    let second = apply(&store, &desired, false).await.unwrap();
    assert!(second.iter().all(|c| c.action == "unchanged"), "{second:?}");

    let campaigns: Vec<Campaign> = store.list().await.unwrap();
    assert_eq!(campaigns.len(), 1);
    assert_eq!(campaigns[0], desired.campaigns[0]);
}

#[tokio::test]
async fn given_a_change_when_dry_run_then_plan_says_update_and_nothing_is_written() {
    let store = store();
    let desired = parse(Path::new("hark.yaml"), &example()).unwrap();
    apply(&store, &desired, false).await.unwrap();
    let edited = example().replace("every: 10m", "every: 15m");
    let changed = parse(Path::new("hark.yaml"), &edited).unwrap();
    let plan = apply(&store, &changed, true).await.unwrap();
    let updates: Vec<_> = plan.iter().filter(|c| c.action == "update").collect();
    assert_eq!(updates.len(), 1);
    assert_eq!(
        (updates[0].kind, updates[0].id.as_str()),
        ("source", "hn-hark")
    );
    let again = apply(&store, &changed, true).await.unwrap();
    assert_eq!(again, plan, "the dry run wrote nothing");
    apply(&store, &changed, false).await.unwrap();
    let after = apply(&store, &changed, true).await.unwrap();
    assert!(after.iter().all(|c| c.action == "unchanged"));
}

#[test]
fn given_a_typo_in_a_field_name_then_error_names_line_and_field() {
    let text = example().replace("    query: hark\n", "    qeury: hark\n");
    let p = &problems(&text)[0];
    assert_eq!(p.line, line_of(&text, "qeury"), "{p}");
    assert!(p.message.contains("qeury"), "{p}");
    assert_eq!(p.field, "sources[1].qeury");
    assert!(p.to_string().starts_with(&format!("hark.yaml:{}:", p.line)));
}

#[test]
fn given_an_unknown_source_id_then_error_names_its_line_and_suggests() {
    let text = example().replace(
        "sources: [rust-on-mastodon, hn-hark, vendor-blog]",
        "sources: [rust-on-mastodon, hn-hrak, vendor-blog]",
    );
    let ps = problems(&text);
    assert_eq!(ps.len(), 1, "{ps:?}");
    let p = &ps[0];
    assert_eq!(p.line, line_of(&text, "hn-hrak"));
    assert_eq!(p.field, "campaigns[0].sources");
    assert_eq!(
        p.message,
        "unknown source `hn-hrak`, did you mean `hn-hark`?"
    );
}

#[test]
fn given_an_unknown_platform_then_error_lists_the_choices() {
    let text = example().replace("platform: rss", "platform: myspace");
    let p = &problems(&text)[0];
    assert_eq!(p.line, line_of(&text, "myspace"));
    assert!(p.message.contains("myspace"), "{p}");
}

#[test]
fn given_bad_values_then_each_problem_is_reported_with_its_line() {
    let text = r#"
sources:
  - id: Bad_Id
    platform: slack
    query: x
  - id: feed
    platform: rss
campaigns:
  - id: c1
    query: hark
    triggers:
      - id: t1
        when: { negative_share: { above: 1.5, window: 1h } }
        actions: [ { notify: nobody } ]
channels:
  - id: hook
    platform: discord
posts:
  - id: p1
    at: 2026-12-01T09:00:00Z
    channels: [hook, ghost]
    text: hi
    time_zone: Mars/Olympus
"#;
    let ps = problems(text);
    let rendered: Vec<String> = ps.iter().map(ToString::to_string).collect();
    let expect = [
        ("sources[0].id", "Bad_Id"),
        ("sources[0].platform", "cannot listen on slack"),
        ("sources[1].url", "needs `url`"),
        ("campaigns[0].triggers[0].when", "between 0 and 1"),
        (
            "campaigns[0].triggers[0].actions",
            "unknown channel `nobody`",
        ),
        ("channels[0].webhook", "needs `webhook`"),
        ("posts[0].channels", "unknown channel `ghost`"),
        ("posts[0].time_zone", "Mars/Olympus"),
    ];
    for (field, needle) in expect {
        assert!(
            ps.iter()
                .any(|p| p.field == field && p.message.contains(needle)),
            "missing {field} / {needle} in {rendered:#?}"
        );
    }
    let ghost = ps.iter().find(|p| p.message.contains("ghost")).unwrap();
    assert_eq!(ghost.line, line_of(text, "ghost"));
    let nobody = ps.iter().find(|p| p.message.contains("nobody")).unwrap();
    assert_eq!(nobody.line, line_of(text, "nobody"));
}

#[test]
fn given_bad_trigger_policies_and_templates_then_each_problem_is_named() {
    let text = r#"
campaigns:
  - id: c1
    query: hark
    policy: { time_zone: Mars/Olympus, quiet_hours: { start: "22:00", end: "07:00" } }
    triggers:
      - id: spike
        when: { volume_spike: { k: 3, window: 90m } }
      - id: words
        when: { keyword: { query: '(refund' } }
      - id: reply
        when: { influencer: { min_followers: 1000 } }
        actions:
          - publish: { channels: [], text: "hi" }
          - publish: { channels: [ghost], text: "{count} posts, {cuont} typo" }
channels:
  - id: ops
    platform: slack
    webhook: env:HOOK
"#;
    let ps = problems(text);
    let rendered: Vec<String> = ps.iter().map(ToString::to_string).collect();
    let expect = [
        (
            "campaigns[0].policy.time_zone",
            "unknown IANA time zone `Mars/Olympus`",
        ),
        ("campaigns[0].triggers[0].when", "whole hours"),
        ("campaigns[0].triggers[1].when", "does not parse"),
        ("campaigns[0].triggers[2].actions", "at least one channel"),
        (
            "campaigns[0].triggers[2].actions",
            "unknown channel `ghost`",
        ),
        (
            "campaigns[0].triggers[2].actions",
            "unknown placeholder `{cuont}`",
        ),
    ];
    for (field, needle) in expect {
        assert!(
            ps.iter()
                .any(|p| p.field == field && p.message.contains(needle)),
            "missing {field} / {needle} in {rendered:#?}"
        );
    }
    // `{count}` is a known placeholder: only the typo is reported.
    assert!(
        !rendered.iter().any(|r| r.contains("`{count}`")),
        "{rendered:#?}"
    );
}

#[test]
fn given_duplicate_ids_then_the_second_is_reported() {
    let text = "channels:\n  - id: a\n    platform: slack\n    webhook: env:A\n  - id: a\n    platform: slack\n    webhook: env:B\n";
    let ps = problems(text);
    assert_eq!(ps.len(), 1, "{ps:?}");
    assert_eq!(ps[0].line, 5);
    assert!(ps[0].message.contains("duplicate channel id `a`"));
}

#[test]
fn given_a_bad_duration_or_secret_reference_then_parse_error_has_a_line() {
    let text = example().replace("every: 30m", "every: 30 minutes");
    let p = &problems(&text)[0];
    assert_eq!(p.line, line_of(&text, "30 minutes"), "{p}");
    assert!(p.message.contains("invalid duration"), "{p}");

    let text = example().replace("token: env:HARK_MASTODON_TOKEN", "token: sk-live-12345");
    let p = &problems(&text)[0];
    assert_eq!(p.line, line_of(&text, "sk-live"), "{p}");
    assert!(p.message.contains("secret reference"), "{p}");
}

#[test]
fn given_broken_yaml_then_error_has_a_location() {
    let p = &problems("sources:\n  - id: a\n   platform: [unclosed\n")[0];
    assert!(p.line >= 2, "{p}");
}

#[test]
fn given_an_empty_file_then_nothing_to_do() {
    let d = parse(Path::new("empty.yaml"), "").unwrap();
    assert!(d.sources.is_empty() && d.posts.is_empty());
}

#[test]
fn given_an_unreadable_file_then_error_names_it() {
    let err = load(Path::new("/nonexistent/hark.yaml")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/hark.yaml"));
}
