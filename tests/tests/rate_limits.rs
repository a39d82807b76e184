//! Publishing limits over the wire: eight concurrent publishers of one channel, counting in
//! DynamoDB (moto), together never exceed the channel's window.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hark_shared::clock::{Clock, ManualClock};
use hark_shared::domain::Platform;
use hark_shared::platforms::{OutgoingPost, PlatformError, Published, Publisher};
use hark_shared::publishing::{RateGate, RateLimitedPublisher, StoreRateGate, limits_for};
use hark_tests::aws_backend;

struct Counting(AtomicUsize);

#[async_trait::async_trait]
impl Publisher for Counting {
    async fn publish(&self, _post: &OutgoingPost, key: &str) -> Result<Published, PlatformError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(Published {
            platform_id: key.to_owned(),
            url: None,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_concurrent_publishers_on_dynamodb_then_the_channel_window_is_never_exceeded() {
    let b = aws_backend().await;
    let gate: Arc<dyn RateGate> = Arc::new(StoreRateGate(b.store.clone()));
    let inner = Arc::new(Counting(AtomicUsize::new(0)));
    let max = limits_for(Platform::Telegram, "ops")[0].limit.max as usize;
    // A stopped clock 20 s into a minute: every attempt falls in the same window, so the
    // count is exact.
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(
        jiff::Timestamp::from_second(1_795_000_040).unwrap(),
    ));
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let publisher = RateLimitedPublisher::new(
            inner.clone(),
            gate.clone(),
            Platform::Telegram,
            "ops",
            clock.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut held = 0;
            for i in 0..5 {
                let post = OutgoingPost {
                    text: "alert".into(),
                    link: None,
                };
                if publisher
                    .publish(&post, &format!("w{worker}-{i}"))
                    .await
                    .is_err()
                {
                    held += 1;
                }
            }
            held
        }));
    }
    let mut held = 0;
    for t in tasks {
        held += t.await.unwrap();
    }
    // 40 attempts within one window: exactly the limit goes out, the rest is held.
    let sent = inner.0.load(Ordering::SeqCst);
    assert!(
        max < 40,
        "the test needs a limit below its 40 attempts, got {max}"
    );
    assert_eq!(sent, max, "{sent} sent, limit {max} per window");
    assert_eq!(held, 40 - max);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_forty_concurrent_acquires_of_a_daily_limit_of_ten_then_exactly_ten_are_granted() {
    use hark_shared::publishing::{ScopedLimit, WindowLimit};
    let b = aws_backend().await;
    let gate: Arc<dyn RateGate> = Arc::new(StoreRateGate(b.store.clone()));
    let scoped = ScopedLimit {
        key: "channel:daily".into(),
        limit: WindowLimit {
            max: 10,
            per: jiff::SignedDuration::from_hours(24),
        },
    };
    let now: jiff::Timestamp = "2026-06-02T12:00:00Z".parse().unwrap();
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let gate = gate.clone();
        let scoped = scoped.clone();
        tasks.push(tokio::spawn(async move {
            gate.acquire(&scoped, now).await.unwrap()
        }));
    }
    let mut granted = 0;
    for t in tasks {
        match t.await.unwrap() {
            None => granted += 1,
            Some(wait) => assert_eq!(wait, jiff::SignedDuration::from_hours(12)),
        }
    }
    assert_eq!(granted, 10);
}
