//! `hark report` end to end on the embedded backend: a store seeded through the real ports,
//! the binary run against it, and its terminal, JSON and HTML output checked against what was
//! seeded. The HTML page is also rendered by headless Chromium and the screenshot decoded.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hark_shared::clock::SystemClock;
use hark_shared::domain::{
    Author, Campaign, Channel, Delivery, DeliveryState, Engagement, Mention, Platform,
    ScheduledPost, Sentiment, SentimentLabel,
};
use hark_shared::embedded::{EmbeddedOptions, EmbeddedStore};
use hark_shared::events::{Figures, HarkEvent, SampleMention, TermCount, TriggerFired};
use hark_shared::ports::{
    AggregateStore, ConfigStore, Counters, DeliveryStore, FiringRecord, HourBucket, MentionStore,
    TriggerStore, truncate_to_hour,
};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

mod common;
use common::ok;

const EVIL_AUTHOR: &str = "<script>alert(\"pwned\")</script>@evil.example";
const EVIL_TEXT: &str = "Hark is down again <script>steal()</script> <img src=x onerror=alert(1)>";
const PUBLISHED_URL: &str = "https://masto.example/@brand/110";
const SAMPLE_URL: &str = "https://m.example/@alice/1";

fn hark(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    common::hark_with(data_dir, args, &[])
}

/// `n` hours before `base` (the hour the store was seeded in).
fn ago(base: Timestamp, n: i64) -> Timestamp {
    base - SignedDuration::from_hours(n)
}

fn counters(
    mentions: u64,
    [positive, neutral, negative, unscored]: [u64; 4],
    compound_e4: i64,
    reach: u64,
) -> Counters {
    Counters {
        mentions,
        positive,
        neutral,
        negative,
        unscored,
        compound_e4,
        reach,
    }
}

fn mention(
    platform: Platform,
    id: &str,
    handle: &str,
    text: &str,
    at: Timestamp,
    lang: Option<&str>,
) -> Mention {
    Mention {
        platform,
        native_id: id.to_owned(),
        url: format!("https://{platform}.example/{id}"),
        author: Author {
            handle: handle.to_owned(),
            ..Author::default()
        },
        text: text.to_owned(),
        created_at: at,
        lang: lang.map(str::to_owned),
        sentiment: Some(Sentiment {
            label: SentimentLabel::Neutral,
            compound: 0.0,
            pos: 0.0,
            neu: 1.0,
            neg: 0.0,
        }),
        engagement: Engagement::default(),
        campaigns: vec!["launch".to_owned()],
        source_id: None,
    }
}

fn entity<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("a valid entity")
}

/// Seeds a store in `dir` through the real ports with a campaign `launch` whose figures in
/// the last 7 days are:
/// - volume: mastodon 16 (4 at -5 h, 10 at -3 h, 2 at -1 h), hackernews 6 (-3 h), bluesky 3
///   (-1 h) = 25; positive 5, neutral 6, negative 11, unscored 3; reach 6,500; compound
///   sum -4.0 over 22 scored;
/// - stored mentions: en 3, de 2, und 1;
/// - authors (from the stored mentions): alice 52,000 followers, carol 15,000, the evil
///   handle 900, blog, bob and dora unknown;
/// - firings: `negative-wave` (readable) and `broken` (its event is not JSON);
/// - deliveries: PUBLISHED 2 (one with a URL), PAUSED 1, FAILED 1.
///
/// Ten days back it adds 50 mastodon mentions, one English mention and a firing (outside
/// the default range), an inactive campaign `archive`, and a queued post of no campaign.
/// Returns the start of the hour it was seeded in (the hours above count back from it).
async fn seed(dir: &Path) -> Timestamp {
    let store = EmbeddedStore::open(
        dir,
        EmbeddedOptions {
            retention_days: 90,
            max_receive_count: 5,
            clock: Arc::new(SystemClock),
        },
    )
    .expect("open the store");
    let now = Timestamp::now();
    let base = truncate_to_hour(now);
    let hours_ago = |n| ago(base, n);
    let old = hours_ago(240);

    store
        .upsert(&entity::<Campaign>(json!({
            "id": "launch", "name": "Hark 1.0 launch", "query": "hark OR #harkapp"
        })))
        .await
        .unwrap();
    store
        .upsert(&entity::<Campaign>(json!({
            "id": "archive", "query": "old", "active": false
        })))
        .await
        .unwrap();
    for channel in [
        json!({"id": "brand-masto", "platform": "mastodon", "base_url": "https://masto.example"}),
        json!({"id": "ops-hook", "platform": "webhook", "webhook": "env:HOOK"}),
    ] {
        store.upsert(&entity::<Channel>(channel)).await.unwrap();
    }
    let at = hours_ago(2);
    for post in [
        json!({"id": "launch-day", "campaign": "launch", "at": at, "channels": ["brand-masto"], "text": "Hark 1.0 is out!"}),
        json!({"id": "follow-up", "campaign": "launch", "at": at, "channels": ["brand-masto"], "text": "Tips"}),
        json!({"id": "promo", "campaign": "launch", "at": at, "channels": ["brand-masto"], "text": "Promo"}),
        json!({"id": "alert-1", "at": at, "channels": ["ops-hook"], "text": "Negative wave",
               "origin": {"event_id": "trigger:launch:negative-wave:1", "campaign": "launch",
                          "rule": "negative-wave", "kind": "alert"}}),
        json!({"id": "weekly", "at": now + SignedDuration::from_hours(24), "channels": ["brand-masto"], "text": "Weekly"}),
    ] {
        store.upsert(&entity::<ScheduledPost>(post)).await.unwrap();
    }

    let buckets = [
        (
            "launch",
            Platform::Mastodon,
            hours_ago(5),
            counters(4, [2, 1, 1, 0], 3_000, 1_200),
        ),
        (
            "launch",
            Platform::Mastodon,
            hours_ago(3),
            counters(10, [1, 2, 7, 0], -40_000, 5_000),
        ),
        (
            "launch",
            Platform::Hackernews,
            hours_ago(3),
            counters(6, [0, 2, 3, 1], -15_000, 0),
        ),
        (
            "launch",
            Platform::Bluesky,
            hours_ago(1),
            counters(3, [2, 1, 0, 0], 12_000, 300),
        ),
        (
            "launch",
            Platform::Mastodon,
            hours_ago(1),
            counters(2, [0, 0, 0, 2], 0, 0),
        ),
        (
            "launch",
            Platform::Mastodon,
            old,
            counters(50, [50, 0, 0, 0], 250_000, 9_000),
        ),
        (
            "archive",
            Platform::Rss,
            hours_ago(2),
            counters(7, [0, 7, 0, 0], 0, 0),
        ),
    ];
    for (campaign, platform, hour, delta) in buckets {
        store
            .add_counters(&HourBucket::new(campaign, platform, hour), &delta)
            .await
            .unwrap();
    }

    let recent = now - SignedDuration::from_mins(30);
    for m in [
        mention(
            Platform::Mastodon,
            "1",
            "alice@m.example",
            "Hark looks great",
            recent,
            Some("en"),
        ),
        mention(
            Platform::Mastodon,
            "2",
            EVIL_AUTHOR,
            EVIL_TEXT,
            recent,
            Some("en"),
        ),
        mention(
            Platform::Hackernews,
            "3",
            "bob",
            "Show HN: Hark",
            recent,
            Some("en"),
        ),
        mention(
            Platform::Mastodon,
            "4",
            "dora@m.example",
            "Hark ist toll",
            recent,
            Some("de"),
        ),
        mention(
            Platform::Bluesky,
            "5",
            "carol.bsky.social",
            "Hark läuft nicht",
            recent,
            Some("de"),
        ),
        mention(Platform::Rss, "6", "blog", "hark?", recent, None),
        mention(
            Platform::Mastodon,
            "7",
            "alice@m.example",
            "old hark news",
            old,
            Some("en"),
        ),
    ] {
        // Follower counts as the platforms reported them; alice's 10-day-old mention
        // (outside the default range) reports more, which the ranking must not see.
        let followers = match (m.author.handle.as_str(), m.native_id.as_str()) {
            ("alice@m.example", "7") => Some(99_000),
            ("alice@m.example", _) => Some(52_000),
            ("carol.bsky.social", _) => Some(15_000),
            (EVIL_AUTHOR, _) => Some(900),
            _ => None,
        };
        let m = Mention {
            author: Author {
                followers,
                ..m.author
            },
            ..m
        };
        store.put_mention(&m).await.unwrap();
    }

    let window_start = hours_ago(3);
    let fired_at = window_start + SignedDuration::from_mins(55);
    let fired = TriggerFired {
        event_id: TriggerFired::event_id_for("launch", "negative-wave", window_start),
        campaign: "launch".into(),
        rule: "negative-wave".into(),
        kind: "negative_share".into(),
        window_start,
        window_end: window_start + SignedDuration::from_hours(1),
        fired_at,
        summary: "Negative share 71% of 14 scored mentions in 1 h (threshold 40%)".into(),
        figures: Figures {
            count: 16,
            scored: Some(14),
            negative: Some(10),
            share: Some(0.71),
            threshold: Some(0.4),
            ..Figures::default()
        },
        top_terms: vec![TermCount {
            term: "outage".into(),
            count: 6,
        }],
        samples: vec![
            SampleMention {
                platform: Platform::Mastodon,
                url: SAMPLE_URL.into(),
                author: EVIL_AUTHOR.into(),
                text: EVIL_TEXT.into(),
                sentiment: Some(SentimentLabel::Negative),
                followers: Some(900),
            },
            SampleMention {
                platform: Platform::Hackernews,
                url: "javascript:alert(document.cookie)".into(),
                author: "mallory".into(),
                text: "click me".into(),
                sentiment: None,
                followers: None,
            },
        ],
        actions: Vec::new(),
    };
    let firings = [
        FiringRecord {
            campaign: "launch".into(),
            rule: "negative-wave".into(),
            window_start,
            fired_at,
            event: serde_json::to_string(&HarkEvent::TriggerFired(Box::new(fired))).unwrap(),
        },
        FiringRecord {
            campaign: "launch".into(),
            rule: "broken".into(),
            window_start: hours_ago(2),
            fired_at: hours_ago(2) + SignedDuration::from_mins(10),
            event: "{not json".into(),
        },
        FiringRecord {
            campaign: "launch".into(),
            rule: "buzz".into(),
            window_start: old,
            fired_at: old + SignedDuration::from_mins(5),
            event: "{}".into(),
        },
    ];
    for record in &firings {
        store.record_firing(record).await.unwrap();
    }

    let published_at = at + SignedDuration::from_secs(3);
    let deliveries = [
        (
            "launch-day",
            "brand-masto",
            at,
            DeliveryState::Published {
                platform_id: "110".into(),
                url: Some(PUBLISHED_URL.into()),
                published_at,
            },
        ),
        (
            "follow-up",
            "brand-masto",
            at,
            DeliveryState::Paused {
                reason: "crisis brake: negative-wave".into(),
                paused_at: fired_at,
            },
        ),
        (
            "promo",
            "brand-masto",
            at,
            DeliveryState::Failed {
                reason: "HTTP 422: text too long".into(),
                needs_reauth: false,
            },
        ),
        (
            "alert-1",
            "ops-hook",
            at,
            DeliveryState::Published {
                platform_id: "hook-1".into(),
                url: None,
                published_at,
            },
        ),
        (
            "weekly",
            "brand-masto",
            now + SignedDuration::from_hours(24),
            DeliveryState::Queued,
        ),
    ];
    for (post, channel, due, state) in deliveries {
        let mut d = Delivery::new(post, channel, due, now);
        d.state = state;
        store.create_delivery(&d).await.unwrap();
    }
    base
}

async fn seeded() -> tempfile::TempDir {
    seeded_at().await.0
}

async fn seeded_at() -> (tempfile::TempDir, Timestamp) {
    let dir = tempfile::tempdir().unwrap();
    let base = seed(dir.path()).await;
    (dir, base)
}

fn report_json(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["report", "--json"];
    all.extend_from_slice(args);
    let out = ok(hark(dir, &all));
    assert_eq!(out.lines().count(), 1, "one JSON object: {out}");
    serde_json::from_str(&out).expect("the report is JSON")
}

fn html_report(dir: &Path) -> (PathBuf, String) {
    let file = dir.join("report.html");
    let out = ok(hark(
        dir,
        &[
            "report",
            "--campaign",
            "launch",
            "--html",
            file.to_str().unwrap(),
        ],
    ));
    assert!(out.contains("HTML report written to"), "{out}");
    let html = std::fs::read_to_string(&file).expect("the HTML file is written");
    (file, html)
}

#[tokio::test]
async fn given_a_seeded_store_when_reported_as_json_then_every_figure_matches_what_was_seeded() {
    let (dir, base) = seeded_at().await;
    let hours_ago = |n| ago(base, n);
    let report = report_json(dir.path(), &["--campaign", "launch"]);

    let campaigns = report["campaigns"].as_array().unwrap();
    assert_eq!(campaigns.len(), 1);
    let c = &campaigns[0];
    assert_eq!(c["id"], "launch");
    assert_eq!(c["name"], "Hark 1.0 launch");
    let t = &c["totals"];
    assert_eq!(
        [
            &t["mentions"],
            &t["positive"],
            &t["neutral"],
            &t["negative"],
            &t["unscored"],
            &t["reach"]
        ],
        [
            &json!(25),
            &json!(5),
            &json!(6),
            &json!(11),
            &json!(3),
            &json!(6500)
        ]
    );
    let mean = c["mean_compound"].as_f64().unwrap();
    assert!((mean - (-4.0 / 22.0)).abs() < 1e-9, "{mean}");

    let platforms: Vec<(String, u64)> = c["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["platform"].as_str().unwrap().to_owned(),
                p["mentions"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        platforms,
        [
            ("mastodon".to_owned(), 16),
            ("hackernews".to_owned(), 6),
            ("bluesky".to_owned(), 3)
        ]
    );
    assert_eq!(
        c["languages"],
        json!([
            {"lang": "en", "mentions": 3},
            {"lang": "de", "mentions": 2},
            {"lang": "und", "mentions": 1}
        ])
    );

    // Hours from the first activity (5 h ago) to the current hour, quiet ones as zeros.
    let hours = c["hours"].as_array().unwrap();
    assert!(hours.len() >= 6, "{}", hours.len());
    let sum: u64 = hours.iter().map(|h| h["mentions"].as_u64().unwrap()).sum();
    assert_eq!(sum, 25);
    let at = |ts: Timestamp| {
        hours
            .iter()
            .find(|h| h["hour"] == json!(ts))
            .unwrap_or_else(|| panic!("hour {ts} missing"))
    };
    assert_eq!(
        at(hours_ago(3))["by_platform"],
        json!({"mastodon": 10, "hackernews": 6})
    );
    assert_eq!(at(hours_ago(3))["negative"], 10);
    assert_eq!(at(hours_ago(4))["mentions"], 0);

    let authors: Vec<(&str, Value)> = c["top_authors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["handle"].as_str().unwrap(), a["followers"].clone()))
        .collect();
    assert_eq!(
        authors,
        [
            ("alice@m.example", json!(52000)),
            ("carol.bsky.social", json!(15000)),
            (EVIL_AUTHOR, json!(900)),
            ("blog", Value::Null),
            ("bob", Value::Null),
            ("dora@m.example", Value::Null)
        ],
        "ranked from the range's mentions: alice's old mention is not in it"
    );

    let firings = c["firings"].as_array().unwrap();
    let rules: Vec<&str> = firings
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        ["negative-wave", "broken"],
        "the 10-day-old one is out of range"
    );
    assert_eq!(
        firings[0]["summary"],
        "Negative share 71% of 14 scored mentions in 1 h (threshold 40%)"
    );
    assert_eq!(firings[0]["samples"][0]["url"], SAMPLE_URL);
    assert_eq!(firings[1]["summary"], "(the stored event is not readable)");

    let publishing = &c["publishing"];
    assert_eq!(
        publishing["by_status"],
        json!({"FAILED": 1, "PAUSED": 1, "PUBLISHED": 2})
    );
    let rows = publishing["deliveries"].as_array().unwrap();
    let published: Vec<(&str, &str, Value)> = rows
        .iter()
        .filter(|d| d["status"] == "PUBLISHED")
        .map(|d| {
            (
                d["post"].as_str().unwrap(),
                d["kind"].as_str().unwrap(),
                d["url"].clone(),
            )
        })
        .collect();
    assert!(
        published.contains(&("launch-day", "scheduled", json!(PUBLISHED_URL))),
        "{published:?}"
    );
    assert!(
        published.contains(&("alert-1", "alert", Value::Null)),
        "{published:?}"
    );
    let paused = rows.iter().find(|d| d["status"] == "PAUSED").unwrap();
    assert_eq!(paused["error"], "crisis brake: negative-wave");
    assert!(
        report["unassigned"]["deliveries"]
            .as_array()
            .unwrap()
            .is_empty(),
        "with --campaign, posts of no campaign are left out"
    );
}

#[tokio::test]
async fn given_a_longer_since_when_reported_then_older_activity_is_counted_too() {
    let (dir, base) = seeded_at().await;
    let report = report_json(dir.path(), &["--campaign", "launch", "--since", "14d"]);
    let c = &report["campaigns"][0];
    assert_eq!(c["totals"]["mentions"], 75);
    assert_eq!(c["languages"][0], json!({"lang": "en", "mentions": 4}));
    assert_eq!(c["firings"].as_array().unwrap().len(), 3);

    let since = ago(base, 4).to_string();
    let report = report_json(dir.path(), &["--campaign", "launch", "--since", &since]);
    assert_eq!(
        report["campaigns"][0]["totals"]["mentions"], 21,
        "an RFC 3339 --since starts at its hour"
    );
}

#[tokio::test]
async fn given_no_campaign_flag_when_reported_then_active_campaigns_and_posts_of_no_campaign_are_shown()
 {
    let dir = seeded().await;
    let report = report_json(dir.path(), &[]);
    let ids: Vec<&str> = report["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["launch"], "the inactive campaign is left out");
    let unassigned = report["unassigned"]["deliveries"].as_array().unwrap();
    assert_eq!(unassigned.len(), 1);
    assert_eq!(unassigned[0]["post"], "weekly");
    assert_eq!(unassigned[0]["status"], "QUEUED");

    let archive = report_json(dir.path(), &["--campaign", "archive"]);
    assert_eq!(
        archive["campaigns"][0]["totals"]["mentions"], 7,
        "an inactive campaign is reported when named"
    );
}

#[tokio::test]
async fn given_a_seeded_store_when_reported_in_the_terminal_then_it_shows_a_sparkline_and_the_figures()
 {
    let dir = seeded().await;
    let out = ok(hark(dir.path(), &["report", "--campaign", "launch"]));
    let volume = out
        .lines()
        .find(|l| l.trim_start().starts_with("Volume"))
        .unwrap_or_else(|| panic!("no volume line:\n{out}"));
    let spark: String = volume.chars().filter(|c| ('▁'..='█').contains(c)).collect();
    assert!(
        spark.starts_with("▃▁█"),
        "5 h ago 4, then 0, then 16 (the peak): {out}"
    );
    assert!(spark.chars().count() >= 6, "{out}");
    assert!(volume.contains("25 mention(s)"), "{out}");
    for expected in [
        "peak 16/h",
        "potential reach 6,500",
        "mastodon 16 · hackernews 6 · bluesky 3",
        "en 3 · de 2 · und 1",
        "positive 20% (5) · neutral 24% (6) · negative 44% (11) · unscored 12% (3) · mean compound -0.18",
        "alice@m.example",
        "52,000 followers",
        "negative-wave: Negative share 71% of 14 scored mentions",
        "broken: (the stored event is not readable)",
        "FAILED 1 · PAUSED 1 · PUBLISHED 2",
        PUBLISHED_URL,
        "HTTP 422: text too long",
    ] {
        assert!(out.contains(expected), "missing `{expected}` in:\n{out}");
    }
    assert!(
        !out.contains('\u{1b}'),
        "no escape sequence reaches the terminal"
    );
}

#[tokio::test]
async fn given_a_seeded_store_when_reported_as_html_then_every_chart_is_present_with_the_seeded_figures()
 {
    let dir = seeded().await;
    let (_, html) = html_report(dir.path());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    for chart in [
        "<svg id=\"chart-volume-0\" class=\"chart chart-volume\"",
        "<svg id=\"chart-sentiment-0\" class=\"chart chart-sentiment\"",
        "<svg id=\"chart-authors-0\" class=\"chart chart-authors\"",
        "<ol class=\"firings\" id=\"firings-0\">",
        "<table class=\"deliveries\" id=\"deliveries-0\">",
        "<table class=\"platforms\">",
        "<table class=\"languages\">",
        "@media print",
    ] {
        assert!(html.contains(chart), "missing `{chart}`");
    }
    let count = |needle: &str| html.matches(needle).count();
    // Stacked bars: one per hour and platform with mentions.
    assert_eq!(count("class=\"bar\" data-platform=\"mastodon\""), 3);
    assert_eq!(count("class=\"bar\" data-platform=\"hackernews\""), 1);
    assert_eq!(count("class=\"bar\" data-platform=\"bluesky\""), 1);
    assert!(html.contains("<title>") && html.contains("mastodon: 10</title>"));
    // Sentiment shares: negative in the two hours that had some, unscored in two.
    assert_eq!(count("class=\"share negative\""), 2);
    assert_eq!(count("class=\"share unscored\""), 2);
    assert!(
        html.contains("negative: 10 of 16 (62%)"),
        "share of the -3 h hour"
    );
    // Firings on the timeline and in the list, numbered alike.
    assert_eq!(count("<g class=\"firing\" data-rule=\"negative-wave\">"), 1);
    assert_eq!(count("<g class=\"firing\" data-rule=\"broken\">"), 1);
    assert_eq!(count("<li class=\"firing\""), 2);
    assert!(html.contains("Negative share 71% of 14 scored mentions in 1 h (threshold 40%)"));
    // Authors in rank order.
    let alice = html.find("data-handle=\"alice@m.example\"").unwrap();
    let carol = html.find("data-handle=\"carol.bsky.social\"").unwrap();
    let bob = html.find("data-handle=\"bob\"").unwrap();
    assert!(alice < carol && carol < bob);
    assert_eq!(count("<g class=\"author\""), 6);
    // Tables and figures.
    assert!(html.contains("<tr data-platform=\"mastodon\"><td><span class=\"swatch\" style=\"background:#6364ff\"></span>mastodon</td><td class=\"num\">16</td><td class=\"num\">64%</td><td class=\"num\">8</td><td class=\"num\">6,200</td></tr>"));
    assert!(html.contains(
        "<tr data-lang=\"de\"><td>de</td><td class=\"num\">2</td><td class=\"num\">33%</td></tr>"
    ));
    assert!(html.contains("<span class=\"v\">25</span><span class=\"k\">mentions</span>"));
    assert!(
        html.contains("<span class=\"v\">2/4</span><span class=\"k\">deliveries published</span>")
    );
    assert_eq!(count("<tr data-status=\"PUBLISHED\">"), 2);
    assert_eq!(count("<tr data-status=\"PAUSED\">"), 1);
    assert_eq!(count("<tr data-status=\"FAILED\">"), 1);
    assert!(html.contains(&format!("<a href=\"{PUBLISHED_URL}\"")));
}

#[tokio::test]
async fn given_mentions_with_markup_when_reported_as_html_then_it_is_escaped_and_nothing_external_loads()
 {
    let dir = seeded().await;
    let (_, html) = html_report(dir.path());
    let lower = html.to_ascii_lowercase();
    for banned in [
        "<script",
        "<img",
        "<iframe",
        "<object",
        "<embed",
        "<link",
        "src=\"",
        "@import",
        "url(",
        "@font-face",
    ] {
        assert!(!lower.contains(banned), "`{banned}` in the page");
    }
    // The author and the sample text are shown, escaped.
    assert!(html.contains("&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;@evil.example"));
    assert!(html.contains(
        "Hark is down again &lt;script&gt;steal()&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt;"
    ));
    // Every link is an in-page anchor or one of the seeded http(s) links; a javascript: URL
    // from a mention is shown as text only.
    let hrefs: Vec<&str> = html
        .split("href=\"")
        .skip(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .collect();
    assert!(
        hrefs.contains(&PUBLISHED_URL) && hrefs.contains(&SAMPLE_URL),
        "{hrefs:?}"
    );
    for href in &hrefs {
        assert!(
            href.starts_with('#') || *href == PUBLISHED_URL || *href == SAMPLE_URL,
            "unexpected link {href}"
        );
    }
    assert!(!lower.contains("javascript:alert(document.cookie)\""));
    assert!(html.contains("mallory"));
    // Nothing outside links mentions a URL scheme (inline SVG needs no xmlns here).
    let outside_links = hrefs
        .iter()
        .fold(html.clone(), |page, href| page.replace(href, ""));
    assert!(!outside_links.contains("http://") && !outside_links.contains("https://"));
}

/// Where headless Chromium is, or a failure that says how to install it.
fn chromium() -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("chromium"))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "headless Chromium is needed to render the HTML report: install it with \
             `apt-get install -y chromium` (Debian; .ci/run does this)"
        )
    })
}

/// Decoded 8-bit RGB(A) pixels: width, height, samples per pixel, data.
fn decode_png(path: &Path) -> (u32, u32, usize, Vec<u8>) {
    let bytes = std::fs::read(path).expect("the screenshot exists");
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a sane size")];
    let info = reader.next_frame(&mut buf).expect("one frame");
    buf.truncate(info.buffer_size());
    (info.width, info.height, info.color_type.samples(), buf)
}

#[tokio::test]
async fn given_the_html_report_when_rendered_by_headless_chromium_then_the_screenshot_shows_the_charts()
 {
    let browser = chromium();
    let dir = seeded().await;
    let (file, _) = html_report(dir.path());
    let shot = dir.path().join("report.png");
    let profile = dir.path().join("chromium-profile");
    let mut child = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1200,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", file.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    // A hung browser must fail the test, not stall the suite.
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("chromium did not finish its screenshot within 180 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut stderr).ok();
    }
    assert!(status.success(), "chromium failed: {stderr}");

    let (width, height, samples, pixels) = decode_png(&shot);
    assert_eq!((width, height), (1200, 2000));
    let rgb = |i: usize| -> [u8; 3] {
        let p = &pixels[i * samples..];
        [p[0], p[1], p[2]]
    };
    let total = (width * height) as usize;
    let background = rgb(0);
    let mut distinct = std::collections::HashSet::new();
    let mut foreground = 0usize;
    for i in 0..total {
        let px = rgb(i);
        distinct.insert(px);
        if px != background {
            foreground += 1;
        }
    }
    assert!(distinct.len() > 50, "{} distinct colours", distinct.len());
    assert!(
        foreground * 20 > total,
        "only {foreground} of {total} pixels differ from the background"
    );
    // The charts' own colours are on screen: mastodon bars, negative and positive shares.
    let near = |want: [u8; 3]| {
        (0..total)
            .filter(|&i| {
                let px = rgb(i);
                px.iter().zip(want).all(|(a, b)| a.abs_diff(b) <= 8)
            })
            .count()
    };
    for (what, colour) in [
        ("mastodon bars", [0x63, 0x64, 0xff]),
        ("hackernews bars", [0xff, 0x66, 0x00]),
        ("negative shares", [0xd6, 0x45, 0x41]),
        ("positive shares", [0x2e, 0x9d, 0x4f]),
    ] {
        let n = near(colour);
        assert!(n > 200, "{what}: {n} pixels of {colour:?}");
    }
}

#[tokio::test]
async fn given_an_unknown_campaign_when_reported_then_it_fails_with_exit_2_and_writes_no_file() {
    let dir = seeded().await;
    let file = dir.path().join("nope.html");
    let out = hark(
        dir.path(),
        &[
            "report",
            "--campaign",
            "nope",
            "--html",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("campaign `nope` does not exist"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    assert!(!file.exists());
    // The store is untouched: the real campaign still reports its figures.
    let report = report_json(dir.path(), &["--campaign", "launch"]);
    assert_eq!(report["campaigns"][0]["totals"]["mentions"], 25);
}

#[tokio::test]
async fn given_an_unreadable_since_when_reported_then_it_fails_with_exit_2_naming_the_value() {
    let fresh = tempfile::tempdir().unwrap();
    let out = hark(fresh.path(), &["report", "--since", "last tuesday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        std::fs::read_dir(fresh.path()).unwrap().next().is_none(),
        "a bad --since creates no store"
    );

    let dir = seeded().await;
    let out = hark(dir.path(), &["report", "--since", "last tuesday"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--since `last tuesday`") && stderr.contains("RFC 3339"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn given_an_html_path_in_a_missing_directory_when_reported_then_it_fails_naming_the_path() {
    let dir = seeded().await;
    let file = dir.path().join("missing").join("report.html");
    let out = hark(dir.path(), &["report", "--html", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot write the output") && stderr.contains(file.to_str().unwrap()),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "no summary for a report that was not written"
    );
}

#[test]
fn given_an_empty_store_when_reported_then_it_says_there_is_no_campaign_and_the_page_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("empty.html");
    let out = ok(hark(
        dir.path(),
        &["report", "--html", file.to_str().unwrap()],
    ));
    assert!(out.contains("(no active campaign"), "{out}");
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(html.contains("No active campaign."));
    assert!(!html.contains("<svg"), "no chart without a campaign");
}
