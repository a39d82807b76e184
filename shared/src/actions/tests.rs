//! The policy gate, the crisis brake and the alert text, on the embedded store.

use std::sync::atomic::{AtomicBool, Ordering};

use jiff::Timestamp;

use super::*;
use crate::domain::{
    Approval, Delivery, DeliveryStatus, PublishPolicy, QuietHours, TriggerCondition, TriggerRule,
};
use crate::embedded::{EmbeddedOptions, EmbeddedStore};
use crate::events::{Figures, SampleMention, TermCount};
use crate::ports::{EntityKind, MessageQueue};

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn store() -> EmbeddedStore {
    EmbeddedStore::open_in_memory(EmbeddedOptions {
        retention_days: 90,
        max_receive_count: 5,
        clock: std::sync::Arc::new(crate::clock::SystemClock),
    })
    .unwrap()
}

fn campaign(policy: PublishPolicy) -> Campaign {
    Campaign {
        id: "launch".into(),
        name: Some("Launch".into()),
        query: "hark".into(),
        sources: vec![],
        triggers: vec![TriggerRule {
            id: "wave".into(),
            when: TriggerCondition::NegativeShare {
                above: 0.4,
                window: crate::domain::Interval::from_secs(3600),
                min_mentions: 10,
            },
            actions: vec![],
            cooldown: crate::domain::Interval::from_secs(3600),
        }],
        active: true,
        policy,
    }
}

fn template(approval: Option<Approval>) -> PublishTemplate {
    PublishTemplate {
        channels: vec!["brand".into()],
        text: "We hear you: {count} of you wrote about {top_terms}. {sample_url}".into(),
        link: None,
        approval,
    }
}

fn berlin_quiet() -> PublishPolicy {
    PublishPolicy {
        time_zone: Some("Europe/Berlin".into()),
        quiet_hours: Some(QuietHours {
            start: "22:00".parse().unwrap(),
            end: "07:00".parse().unwrap(),
        }),
        ..PublishPolicy::default()
    }
}

#[tokio::test]
async fn given_quiet_hours_across_the_spring_dst_change_then_the_post_waits_until_seven_local() {
    let s = store();
    let c = campaign(berlin_quiet());
    // 2026-03-29 is the spring-forward night in Berlin (02:00 → 03:00). 01:30 UTC is
    // 03:30 CEST, inside the quiet hours; they end at 07:00 CEST = 05:00 UTC.
    let now = t("2026-03-29T01:30:00Z");
    let d = gate(&s, &c, &template(None), "auto-1", None, now)
        .await
        .unwrap();
    assert_eq!(
        d,
        GateDecision::Publish {
            at: t("2026-03-29T05:00:00Z")
        }
    );
    // The evening before (23:30 CET = 22:30 UTC): until 07:00 CEST next morning.
    let d = gate(
        &s,
        &c,
        &template(None),
        "auto-1",
        None,
        t("2026-03-28T22:30:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(
        d,
        GateDecision::Publish {
            at: t("2026-03-29T05:00:00Z")
        }
    );
    // Outside the quiet hours: now.
    let noon = t("2026-03-29T10:00:00Z");
    assert_eq!(
        gate(&s, &c, &template(None), "auto-1", None, noon)
            .await
            .unwrap(),
        GateDecision::Publish { at: noon }
    );
}

#[tokio::test]
async fn given_quiet_hours_across_the_autumn_dst_change_then_seven_local_is_six_utc() {
    let s = store();
    let c = campaign(berlin_quiet());
    // 2026-10-25: back to CET at 03:00 CEST. 02:30 UTC is 03:30 CET; 07:00 CET = 06:00 UTC.
    let d = gate(
        &s,
        &c,
        &template(None),
        "auto-1",
        None,
        t("2026-10-25T02:30:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(
        d,
        GateDecision::Publish {
            at: t("2026-10-25T06:00:00Z")
        }
    );
}

#[tokio::test]
async fn given_a_spent_daily_budget_then_the_gate_refuses_until_the_next_local_day() {
    let s = store();
    let c = campaign(PublishPolicy {
        daily_budget: 2,
        time_zone: Some("America/New_York".into()),
        ..PublishPolicy::default()
    });
    // 2026-06-02 02:00 UTC is still June 1st in New York.
    let late_evening = t("2026-06-02T02:00:00Z");
    for post in ["auto-1", "auto-2"] {
        assert!(matches!(
            gate(&s, &c, &template(None), post, None, late_evening)
                .await
                .unwrap(),
            GateDecision::Publish { .. }
        ));
    }
    let refused = gate(&s, &c, &template(None), "auto-3", None, late_evening)
        .await
        .unwrap();
    assert!(
        matches!(&refused, GateDecision::Refuse(why) if why.contains("daily budget of 2") && why.contains("2026-06-01")),
        "{refused:?}"
    );
    // Five hours later it is June 2nd in New York: a new budget.
    assert!(matches!(
        gate(
            &s,
            &c,
            &template(None),
            "auto-3",
            None,
            t("2026-06-02T05:00:00Z")
        )
        .await
        .unwrap(),
        GateDecision::Publish { .. }
    ));
}

#[tokio::test]
async fn given_the_same_post_twice_then_the_gate_counts_one_budget_unit() {
    let s = store();
    let c = campaign(PublishPolicy {
        daily_budget: 1,
        ..PublishPolicy::default()
    });
    let now = t("2026-06-02T12:00:00Z");
    for _ in 0..2 {
        assert_eq!(
            gate(&s, &c, &template(None), "auto-1", None, now)
                .await
                .unwrap(),
            GateDecision::Publish { at: now },
            "the post holds the unit it took"
        );
    }
    let other = gate(&s, &c, &template(None), "auto-2", None, now)
        .await
        .unwrap();
    assert!(
        matches!(&other, GateDecision::Refuse(why) if why.contains("daily budget of 1")),
        "{other:?}"
    );
}

#[tokio::test]
async fn given_the_kill_switch_then_nothing_is_published_and_the_budget_is_untouched() {
    let s = store();
    let c = campaign(PublishPolicy {
        daily_budget: 1,
        ..PublishPolicy::default()
    });
    let now = t("2026-06-02T12:00:00Z");
    let kill = KillSwitch::new(true, Some("incident 42".into()), now);
    let d = gate(&s, &c, &template(None), "auto-1", Some(&kill), now)
        .await
        .unwrap();
    assert!(
        matches!(&d, GateDecision::Refuse(why) if why.contains("kill switch") && why.contains("incident 42"))
    );
    let off = KillSwitch::new(false, None, now);
    assert!(matches!(
        gate(&s, &c, &template(None), "auto-2", Some(&off), now)
            .await
            .unwrap(),
        GateDecision::Publish { .. }
    ));
}

#[tokio::test]
async fn given_approval_required_then_a_draft_that_expires_after_the_policy_deadline() {
    let s = store();
    let c = campaign(PublishPolicy {
        approval: Approval::Required,
        ..PublishPolicy::default()
    });
    let now = t("2026-06-02T12:00:00Z");
    assert_eq!(
        gate(&s, &c, &template(None), "auto-1", None, now)
            .await
            .unwrap(),
        GateDecision::Draft {
            at: now,
            expires_at: t("2026-06-03T12:00:00Z")
        }
    );
    // The action may waive it.
    assert_eq!(
        gate(&s, &c, &template(Some(Approval::None)), "auto-2", None, now)
            .await
            .unwrap(),
        GateDecision::Publish { at: now }
    );
}

fn fired(actions: Vec<TriggerAction>) -> TriggerFired {
    TriggerFired {
        event_id: "trigger:launch:wave:1780000000".into(),
        campaign: "launch".into(),
        rule: "wave".into(),
        kind: "negative_share".into(),
        window_start: t("2026-06-02T11:00:00Z"),
        window_end: t("2026-06-02T12:00:00Z"),
        fired_at: t("2026-06-02T11:30:00Z"),
        summary: "Negative wave on Launch: 55% of 40 scored mentions negative.".into(),
        figures: Figures {
            count: 40,
            share: Some(0.55),
            ..Figures::default()
        },
        top_terms: vec![TermCount {
            term: "sync".into(),
            count: 12,
        }],
        samples: vec![SampleMention {
            platform: crate::domain::Platform::Mastodon,
            url: "https://m.example/@a/1".into(),
            author: "a".into(),
            text: "sync is broken ".repeat(40),
            sentiment: None,
            followers: None,
        }],
        actions,
    }
}

#[test]
fn given_a_short_platform_limit_then_the_alert_drops_samples_before_the_summary() {
    let f = fired(vec![]);
    let slack: Channel = serde_json::from_value(
        serde_json::json!({"id": "ops", "platform": "slack", "webhook": "env:X"}),
    )
    .unwrap();
    let text = alert_text(&f, &slack);
    assert!(text.contains("Top terms: sync (12)"));
    assert!(text.contains("https://m.example/@a/1"));
    let tiny: Channel = serde_json::from_value(serde_json::json!(
        {"id": "tg", "platform": "telegram", "account": "@ops", "token": "env:X", "max_chars": 120}
    ))
    .unwrap();
    let text = alert_text(&f, &tiny);
    assert!(text.chars().count() <= 120, "{}", text.chars().count());
    assert!(!text.contains("https://m.example/@a/1"));
    assert!(text.starts_with("⚠ Negative wave"));
}

#[test]
fn given_a_template_then_placeholders_are_filled_from_the_firing() {
    let f = fired(vec![]);
    assert_eq!(
        render(
            "{campaign}/{rule}: {count} ({share}) in {window}: {top_terms} {sample_url} {unknown}",
            &f
        ),
        "launch/wave: 40 (55%) in 11:00–12:00 UTC: sync https://m.example/@a/1 {unknown}"
    );
}

fn brand_channel() -> Channel {
    Channel {
        id: "brand".into(),
        platform: crate::domain::Platform::Mastodon,
        base_url: Some("https://m.example".into()),
        account: None,
        token: Some("env:T".parse().unwrap()),
        webhook: None,
        max_chars: None,
    }
}

async fn seed_queued_post(s: &EmbeddedStore, id: &str, at: Timestamp, now: Timestamp) -> Delivery {
    s.upsert(&brand_channel()).await.unwrap();
    let post: ScheduledPost = serde_json::from_value(serde_json::json!({
        "id": id, "campaign": "launch", "at": at.to_string(), "channels": ["brand"], "text": "Big news"
    }))
    .unwrap();
    s.upsert(&post).await.unwrap();
    let d = Delivery::new(id, "brand", at, now);
    s.create_delivery(&d).await.unwrap();
    d
}

#[tokio::test]
async fn given_the_brake_then_queued_posts_pause_new_ones_are_held_and_resume_releases_them() {
    let s = store();
    let now = t("2026-06-02T12:00:00Z");
    let tomorrow = t("2026-06-03T09:00:00Z");
    let d = seed_queued_post(&s, "launch-day", tomorrow, now).await;
    s.upsert(&campaign(PublishPolicy::default())).await.unwrap();

    let outcome = handle_event_message(
        &s,
        &s,
        None,
        &serde_json::to_string(&HarkEvent::TriggerFired(Box::new(fired(vec![
            TriggerAction::PausePosts(true),
        ]))))
        .unwrap(),
        now,
    )
    .await
    .unwrap();
    assert_eq!(outcome.paused, 1);
    let paused = s.get_delivery(&d.id).await.unwrap().unwrap();
    assert_eq!(paused.status(), DeliveryStatus::Paused);
    assert!(
        paused
            .state
            .reason()
            .unwrap()
            .starts_with("crisis brake: Negative wave")
    );

    // A post of the campaign that comes due while the brake is on is held, not sent.
    let later = seed_queued_post(&s, "follow-up", t("2026-06-02T12:01:00Z"), now).await;
    let report =
        crate::publishing::dispatch_due(&s, &s, t("2026-06-02T12:02:00Z"), &Default::default())
            .await
            .unwrap();
    assert_eq!(report.dispatched, 0);
    assert_eq!(
        s.get_delivery(&later.id).await.unwrap().unwrap().status(),
        DeliveryStatus::Paused
    );
    assert!(
        s.receive(
            crate::ports::QueueName::Publish,
            10,
            jiff::SignedDuration::from_secs(30)
        )
        .await
        .unwrap()
        .is_empty()
    );

    // Resume: both queued again; the overdue one is due now.
    let resumed = release_brake(&s, "launch", t("2026-06-02T13:00:00Z"))
        .await
        .unwrap();
    assert_eq!(resumed, 2);
    let back = s.get_delivery(&later.id).await.unwrap().unwrap();
    assert_eq!(back.status(), DeliveryStatus::Queued);
    assert_eq!(back.due_at, t("2026-06-02T13:00:00Z"));
    assert_eq!(
        s.get_delivery(&d.id).await.unwrap().unwrap().due_at,
        tomorrow
    );
    let brake: Brake = s.get("launch").await.unwrap().unwrap();
    assert!(!brake.engaged);
}

#[tokio::test]
async fn given_an_unknown_notify_channel_then_one_action_failed_event_and_the_other_actions_run() {
    let s = store();
    let now = t("2026-06-02T12:00:00Z");
    s.upsert(&campaign(PublishPolicy::default())).await.unwrap();
    let body = serde_json::to_string(&HarkEvent::TriggerFired(Box::new(fired(vec![
        TriggerAction::Notify("nope".into()),
        TriggerAction::Event(true),
    ]))))
    .unwrap();
    let outcome = handle_event_message(&s, &s, Some(&s), &body, now)
        .await
        .unwrap();
    assert_eq!(outcome.failed_actions, 1);
    assert_eq!(outcome.bus_events, 1, "the event action still ran");
    let events = s
        .receive(
            crate::ports::QueueName::Events,
            10,
            jiff::SignedDuration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    let e: HarkEvent = serde_json::from_str(&events[0].body).unwrap();
    assert!(
        matches!(&e, HarkEvent::ActionFailed { action, reason, .. } if action == "notify" && reason.contains("unknown channel `nope`")),
        "{e:?}"
    );
    let bus = s.bus_events().unwrap();
    assert_eq!(bus.len(), 1);
    assert_eq!(bus[0].source, "hark");
    assert_eq!(bus[0].detail_type, "TriggerFired");
}

#[tokio::test]
async fn given_a_malformed_event_then_a_clear_error_for_redelivery() {
    let s = store();
    let err = handle_event_message(&s, &s, None, "{not json", t("2026-06-02T12:00:00Z"))
        .await
        .unwrap_err();
    assert!(matches!(err, ActionError::Malformed(_)));
}

#[tokio::test]
async fn given_an_engaged_brake_then_alerts_still_go_out_at_once() {
    let s = store();
    let now = t("2026-06-02T12:00:00Z");
    s.upsert(&campaign(PublishPolicy::default())).await.unwrap();
    s.upsert(
        &serde_json::from_value::<Channel>(serde_json::json!({
            "id": "ops", "platform": "webhook", "webhook": "env:HOOK", "token": "env:SIGNING"
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    engage_brake(&s, "launch", "crisis", None, now)
        .await
        .unwrap();
    let body = serde_json::to_string(&HarkEvent::TriggerFired(Box::new(fired(vec![
        TriggerAction::Notify("ops".into()),
    ]))))
    .unwrap();
    let outcome = handle_event_message(&s, &s, None, &body, now)
        .await
        .unwrap();
    assert_eq!(outcome.alerts.len(), 1);
    assert_eq!(outcome.failed_actions, 0, "a webhook channel takes alerts");
    let jobs = s
        .receive(
            crate::ports::QueueName::Publish,
            10,
            jiff::SignedDuration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1, "dispatched without waiting for a tick");
    let deliveries = s.list_deliveries(Some(&outcome.alerts[0])).await.unwrap();
    assert_eq!(deliveries[0].status(), DeliveryStatus::Queued);
    // Redelivered event: the same alert, no second delivery.
    let again = handle_event_message(&s, &s, None, &body, now)
        .await
        .unwrap();
    assert_eq!(again.alerts, outcome.alerts);
    assert_eq!(
        s.list_deliveries(Some(&outcome.alerts[0]))
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn given_an_alert_that_failed_for_good_then_one_action_failed_event_and_the_bus_hears_both() {
    let s = store();
    let now = t("2026-06-02T12:00:00Z");
    let post: ScheduledPost = serde_json::from_value(serde_json::json!({
        "id": "alert-0011223344556677", "campaign": "launch", "at": now.to_string(),
        "channels": ["ops"], "text": "Negative wave",
        "origin": {"event_id": "trigger:launch:wave:1", "campaign": "launch", "rule": "wave", "kind": "alert"}
    }))
    .unwrap();
    s.upsert(&post).await.unwrap();
    let failed = HarkEvent::PostFailed {
        event_id: "alert-0011223344556677.ops.1:FAILED:3".into(),
        delivery_id: "alert-0011223344556677.ops.1".into(),
        post_id: post.id.clone(),
        channel_id: "ops".into(),
        platform: Some(crate::domain::Platform::Slack),
        reason: "Slack rejected the request (HTTP 404): no_service".into(),
        needs_reauth: false,
        attempts: 3,
        at: now,
    };
    let body = serde_json::to_string(&failed).unwrap();
    let outcome = handle_event_message(&s, &s, Some(&s), &body, now)
        .await
        .unwrap();
    assert_eq!(outcome.failed_actions, 1);
    assert_eq!(outcome.bus_events, 1, "PostFailed is forwarded too");
    let queued = s
        .receive(
            crate::ports::QueueName::Events,
            10,
            jiff::SignedDuration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(queued.len(), 1);
    let HarkEvent::ActionFailed {
        event_id,
        trigger_event_id,
        action,
        reason,
        ..
    } = serde_json::from_str(&queued[0].body).unwrap()
    else {
        panic!("not an ActionFailed event");
    };
    assert_eq!(event_id, "action-failed:alert-0011223344556677");
    assert_eq!(trigger_event_id, "trigger:launch:wave:1");
    assert_eq!(action, "notify");
    assert!(reason.contains("no_service"));
    // The ActionFailed event itself is only forwarded: no loop.
    let again = handle_event_message(&s, &s, Some(&s), &queued[0].body, now)
        .await
        .unwrap();
    assert_eq!((again.failed_actions, again.bus_events), (0, 1));
    // A scheduled (non-trigger) post's failure is just forwarded.
    let mut plain = post.clone();
    plain.id = "launch-day".into();
    plain.origin = None;
    s.upsert(&plain).await.unwrap();
    let body = body.replace("alert-0011223344556677", "launch-day");
    let outcome = handle_event_message(&s, &s, Some(&s), &body, now)
        .await
        .unwrap();
    assert_eq!(outcome.failed_actions, 0);
}

/// The embedded store, except that the first write of a post fails as in a store outage:
/// the automatic post has passed the gate but is not stored, so the firing is redelivered.
struct PostWriteFailsOnce {
    inner: EmbeddedStore,
    failed: AtomicBool,
}

impl PostWriteFailsOnce {
    fn new() -> Self {
        PostWriteFailsOnce {
            inner: store(),
            failed: AtomicBool::new(false),
        }
    }
}

#[async_trait::async_trait]
impl ConfigStore for PostWriteFailsOnce {
    async fn get_document(
        &self,
        kind: EntityKind,
        id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        self.inner.get_document(kind, id).await
    }

    async fn put_document(
        &self,
        kind: EntityKind,
        id: &str,
        doc: &serde_json::Value,
    ) -> Result<(), StoreError> {
        if kind == EntityKind::Post && !self.failed.swap(true, Ordering::SeqCst) {
            return Err(StoreError::Backend {
                operation: "put_document",
                retryable: true,
                source: "the store is unavailable".into(),
            });
        }
        self.inner.put_document(kind, id, doc).await
    }

    async fn list_documents(&self, kind: EntityKind) -> Result<Vec<serde_json::Value>, StoreError> {
        self.inner.list_documents(kind).await
    }
}

crate::forward_delivery_store!(impl[] PostWriteFailsOnce);
crate::forward_trigger_store!(impl[] PostWriteFailsOnce);

#[tokio::test]
async fn given_a_post_not_stored_after_the_gate_when_the_firing_is_redelivered_then_one_budget_unit_is_taken()
 {
    let s = PostWriteFailsOnce::new();
    let now = t("2026-06-02T12:00:00Z");
    s.upsert(&campaign(PublishPolicy {
        daily_budget: 2,
        ..PublishPolicy::default()
    }))
    .await
    .unwrap();
    s.upsert(&brand_channel()).await.unwrap();
    let firing = |event_id: &str| {
        let mut f = fired(vec![TriggerAction::Publish(template(None))]);
        f.event_id = event_id.into();
        serde_json::to_string(&HarkEvent::TriggerFired(Box::new(f))).unwrap()
    };
    let first = firing("trigger:launch:wave:1780000000");
    let first_post = action_post_id("auto", "trigger:launch:wave:1780000000", 0);

    // The gate lets the post through, then storing it fails: the message fails, to be
    // redelivered, and nothing is stored.
    let err = handle_event_message(&s, &s.inner, None, &first, now)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ActionError::Store(e) if e.is_retryable()),
        "{err:?}"
    );
    assert!(s.get::<ScheduledPost>(&first_post).await.unwrap().is_none());

    // Redelivered: the post goes out on the unit the first attempt took.
    let outcome = handle_event_message(&s, &s.inner, None, &first, now)
        .await
        .unwrap();
    assert_eq!(outcome.posts, vec![first_post.clone()]);
    assert!(outcome.refused.is_empty(), "{outcome:?}");
    assert_eq!(s.list_deliveries(Some(&first_post)).await.unwrap().len(), 1);

    // A later firing the same day still gets its post: the budget of 2 counted one unit.
    let second = firing("trigger:launch:wave:1780003600");
    let outcome = handle_event_message(&s, &s.inner, None, &second, now)
        .await
        .unwrap();
    assert_eq!(
        outcome.posts,
        vec![action_post_id("auto", "trigger:launch:wave:1780003600", 0)],
        "{outcome:?}"
    );
    assert!(outcome.refused.is_empty(), "{outcome:?}");

    // A third is held back: the two posts spent the budget, nothing else did.
    let third = firing("trigger:launch:wave:1780007200");
    let outcome = handle_event_message(&s, &s.inner, None, &third, now)
        .await
        .unwrap();
    assert!(outcome.posts.is_empty(), "{outcome:?}");
    assert_eq!(outcome.refused.len(), 1);
    assert!(
        outcome.refused[0].contains("daily budget of 2"),
        "{outcome:?}"
    );
}
