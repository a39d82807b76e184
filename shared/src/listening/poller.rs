//! The poller: for one poll job, fetch what is new since the source's cursor, queue the
//! mentions, and **only then** advance the cursor. A crash between the two may queue
//! duplicates (the processor's put-if-absent drops them) but never leaves a gap.

use jiff::{SignedDuration, Timestamp};

use super::{ListeningError, MentionBatch, PollJob};
use crate::domain::{Cursor, Disabled, Mention, Source};
use crate::events::HarkEvent;
use crate::platforms::{ListenLimits, Listened, Listener, PlatformError};
use crate::ports::{
    BILLING_CHUNK_BYTES, ConfigStore, CursorStore, MessageQueue, QueueError, QueueName, StoreError,
    batch_ranges, pack_batches,
};

/// Builds the listener for a source (platform client, credentials, base URL).
#[async_trait::async_trait]
pub trait ListenerFactory: Send + Sync {
    async fn listener_for(&self, source: &Source) -> Result<Box<dyn Listener>, PlatformError>;
}

/// Tuning of the poller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollerSettings {
    /// Pages per poll, so one invocation stays short.
    pub max_pages: usize,
    /// Mentions' text longer than this is cut (with "…") so a message stays small.
    pub max_text_chars: usize,
    /// Failure weight at which a source whose last error is not transient is disabled.
    pub disable_at_weight: u32,
    /// Longest backoff between failed polls.
    pub max_backoff: SignedDuration,
    /// Silence is reported after `silence_factor` × the usual gap between items…
    pub silence_factor: u32,
    /// …but never before this long.
    pub min_silence: SignedDuration,
}

impl Default for PollerSettings {
    fn default() -> Self {
        PollerSettings {
            max_pages: 5,
            max_text_chars: 10_000,
            disable_at_weight: 20,
            max_backoff: SignedDuration::from_hours(6),
            silence_factor: 10,
            min_silence: SignedDuration::from_hours(6),
        }
    }
}

/// What one poll job did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PollOutcome {
    Polled {
        source_id: String,
        mentions: usize,
        caught_up: bool,
    },
    /// The platform call failed; the failure is recorded on the cursor (backoff).
    Failed {
        source_id: String,
        kind: &'static str,
        error: String,
        disabled: bool,
    },
    /// Nothing to do (unknown, disabled or switched-off source).
    Skipped {
        source_id: String,
        why: &'static str,
    },
}

/// Handles a batch of poll-queue message bodies (the poller Lambda and `hark run` share
/// this); one result per body, in order. `Err` means the message should be redelivered: a
/// body that is not a poll job is one, so the queue retries it and finally dead-letters it.
///
/// The sources are polled concurrently; then the mentions of every successful poll are
/// queued together, in as few `SendMessageBatch` requests as SQS allows (ten messages or
/// 256 KiB each; SQS bills every started 64 KiB of a request), and only then is each
/// poll's cursor advanced. A poll whose messages were in a request that failed keeps its
/// cursor and fails alone, so its job is retried; the others are unaffected.
pub async fn handle_poll_batch<S, F>(
    store: &S,
    queue: &dyn MessageQueue,
    listeners: &F,
    bodies: &[&str],
    now: Timestamp,
    settings: &PollerSettings,
) -> Vec<Result<PollOutcome, ListeningError>>
where
    S: ConfigStore + CursorStore,
    F: ListenerFactory + ?Sized,
{
    let jobs: Vec<Result<PollJob, ListeningError>> = bodies
        .iter()
        .map(|body| serde_json::from_str(body).map_err(ListeningError::MalformedJob))
        .collect();
    poll_jobs(store, queue, listeners, jobs, now, settings).await
}

/// [`handle_poll_batch`] on parsed jobs (a job that did not parse keeps its error).
async fn poll_jobs<S, F>(
    store: &S,
    queue: &dyn MessageQueue,
    listeners: &F,
    jobs: Vec<Result<PollJob, ListeningError>>,
    now: Timestamp,
    settings: &PollerSettings,
) -> Vec<Result<PollOutcome, ListeningError>>
where
    S: ConfigStore + CursorStore,
    F: ListenerFactory + ?Sized,
{
    let count = jobs.len();
    let fetched = futures_util::future::join_all(
        jobs.into_iter()
            .map(|job| async move { fetch(store, listeners, &job?, now, settings).await }),
    )
    .await;

    let mut results: Vec<Option<Result<PollOutcome, ListeningError>>> =
        (0..count).map(|_| None).collect();
    // Successful polls waiting for their mentions to be queued, and those messages with
    // the index (into `listened`) of the poll each belongs to.
    let mut listened: Vec<(usize, Source, Cursor, Listened, usize)> = Vec::new();
    let mut messages: Vec<(usize, String)> = Vec::new();
    for (index, outcome) in fetched.into_iter().enumerate() {
        match outcome {
            Err(e) => results[index] = Some(Err(e)),
            Ok(Fetched::Finished(done)) => results[index] = Some(Ok(done)),
            Ok(Fetched::Read(done)) => {
                let Read {
                    source,
                    cursor: read,
                    result,
                } = *done;
                let mut found = match result {
                    Ok(found) => found,
                    Err(error) => {
                        results[index] =
                            Some(fail(store, queue, &source, read, error, now, settings).await);
                        continue;
                    }
                };
                let mut mentions = std::mem::take(&mut found.mentions);
                for m in &mut mentions {
                    clip_text(m, settings.max_text_chars);
                    m.source_id.get_or_insert_with(|| source.id.clone());
                }
                let count = mentions.len();
                match mention_messages(&source.id, mentions) {
                    Ok(bodies) => {
                        messages.extend(bodies.into_iter().map(|b| (listened.len(), b)));
                        listened.push((index, source, read, found, count));
                    }
                    Err(e) => results[index] = Some(Err(e)),
                }
            }
        }
    }

    // 1. Queue first. A poll whose messages did not all go is not advanced.
    let mut not_queued: Vec<Option<ListeningError>> = (0..listened.len()).map(|_| None).collect();
    match batch_ranges(messages.iter().map(|(_, body)| body.len())) {
        Ok(ranges) => {
            for range in ranges {
                let batch = &messages[range];
                let bodies: Vec<String> = batch.iter().map(|(_, body)| body.clone()).collect();
                if let Err(e) = queue.send_batch(QueueName::Mentions, &bodies).await {
                    tracing::error!(error = %e, messages = bodies.len(), "queueing mentions failed");
                    let retryable = matches!(
                        e,
                        QueueError::Backend {
                            retryable: true,
                            ..
                        }
                    );
                    // The whole chain: the queue error's text alone does not say why.
                    let mut error = e.to_string();
                    let mut cause = std::error::Error::source(&e);
                    while let Some(c) = cause {
                        error.push_str(": ");
                        error.push_str(&c.to_string());
                        cause = c.source();
                    }
                    for (owner, _) in batch {
                        not_queued[*owner] = Some(ListeningError::NotQueued {
                            retryable,
                            error: error.clone(),
                        });
                    }
                }
            }
        }
        // Unreachable in practice (messages are cut at one billing unit), but never lost.
        Err(e) => {
            for owner in not_queued.iter_mut() {
                *owner = Some(ListeningError::NotQueued {
                    retryable: false,
                    error: e.to_string(),
                });
            }
        }
    }

    // 2. Then advance each queued poll's cursor and record its health.
    for ((index, source, read, found, count), failed) in listened.into_iter().zip(not_queued) {
        results[index] = Some(match failed {
            Some(e) => Err(e),
            None => commit(store, queue, &source, read, found, count, now, settings).await,
        });
    }
    results
        .into_iter()
        .map(|r| r.expect("every poll job has a result"))
        .collect()
}

/// What reading one job's source found, before anything is queued or saved.
enum Fetched {
    /// Nothing to poll (unknown, switched-off or disabled source).
    Finished(PollOutcome),
    Read(Box<Read>),
}

/// A source, its cursor as read, and what the platform answered.
struct Read {
    source: Source,
    cursor: Cursor,
    result: Result<Listened, PlatformError>,
}

/// Runs one poll job on its own. `Err` only for infrastructure failures (store, queue):
/// the job should then be retried by the queue. Platform failures are
/// `Ok(PollOutcome::Failed)`.
pub async fn poll_source<S, F>(
    store: &S,
    queue: &dyn MessageQueue,
    listeners: &F,
    job: &PollJob,
    now: Timestamp,
    settings: &PollerSettings,
) -> Result<PollOutcome, ListeningError>
where
    S: ConfigStore + CursorStore,
    F: ListenerFactory + ?Sized,
{
    let mut results = poll_jobs(
        store,
        queue,
        listeners,
        vec![Ok(job.clone())],
        now,
        settings,
    )
    .await;
    results.pop().expect("one result per job")
}

/// Loads the job's source and cursor and asks the platform what is new.
async fn fetch<S, F>(
    store: &S,
    listeners: &F,
    job: &PollJob,
    now: Timestamp,
    settings: &PollerSettings,
) -> Result<Fetched, ListeningError>
where
    S: ConfigStore + CursorStore,
    F: ListenerFactory + ?Sized,
{
    let skipped = |why| {
        Ok(Fetched::Finished(PollOutcome::Skipped {
            source_id: job.source_id.clone(),
            why,
        }))
    };
    let Some(source) = store.get::<Source>(&job.source_id).await? else {
        tracing::warn!(source_id = %job.source_id, "poll job for an unknown source");
        return skipped("unknown source");
    };
    if !source.enabled {
        return skipped("source switched off in config");
    }
    let read = store
        .get_cursor(&source.id)
        .await?
        .unwrap_or_else(|| Cursor::new(&source.id));
    if read.health.disabled.is_some() {
        return skipped("source disabled after repeated failures");
    }

    let fetched = match listeners.listener_for(&source).await {
        Ok(listener) => {
            let limits = ListenLimits {
                max_pages: settings.max_pages,
                now,
            };
            listener.listen(&source, &read, limits).await
        }
        Err(e) => Err(e),
    };
    Ok(Fetched::Read(Box::new(Read {
        source,
        cursor: read,
        result: fetched,
    })))
}

/// After a poll's `count` mentions were queued: advances the cursor, records the source's
/// health and reports a silence.
#[allow(clippy::too_many_arguments)]
async fn commit<S: CursorStore>(
    store: &S,
    queue: &dyn MessageQueue,
    source: &Source,
    read: Cursor,
    found: Listened,
    count: usize,
    now: Timestamp,
    settings: &PollerSettings,
) -> Result<PollOutcome, ListeningError> {
    let Listened {
        cursor: advanced,
        caught_up,
        rate_limit,
        ..
    } = found;
    let mut next = advanced;
    next.version = read.version;
    next.failure_weight = 0;
    next.health.consecutive_failures = 0;
    next.health.last_error = None;
    next.health.last_success_at = Some(now);
    let mut events = Vec::new();
    if count > 0 {
        if let Some(last) = next.health.last_item_at {
            let gap = u64::try_from(last.duration_until(now).as_secs()).unwrap_or(0);
            next.health.usual_gap_secs = Some(match next.health.usual_gap_secs {
                Some(usual) => (usual * 3 + gap) / 4,
                None => gap,
            });
        }
        next.health.last_item_at = Some(now);
        next.health.silence_reported = false;
    } else if let (Some(last), Some(usual)) = (next.health.last_item_at, next.health.usual_gap_secs)
    {
        let silent = last.duration_until(now);
        let threshold = SignedDuration::from_secs(
            i64::try_from(usual.saturating_mul(u64::from(settings.silence_factor)))
                .unwrap_or(i64::MAX),
        )
        .max(settings.min_silence);
        if silent > threshold && !next.health.silence_reported {
            next.health.silence_reported = true;
            events.push(HarkEvent::SourceSilent {
                source_id: source.id.clone(),
                platform: source.platform,
                silent_for_secs: u64::try_from(silent.as_secs()).unwrap_or(0),
                usual_gap_secs: usual,
                at: now,
            });
        }
    }
    let exhausted_until = rate_limit
        .filter(|r| r.exhausted())
        .and_then(|r| r.reset_at)
        .filter(|reset| *reset > now);
    if let Some(reset) = exhausted_until {
        // The platform's budget is spent (a rate-limit window, YouTube's daily quota,
        // Facebook's usage at its ceiling): not before it resets, caught up or not.
        next.next_poll_at = Some(next.next_poll_at.map_or(reset, |t| t.max(reset)));
        tracing::info!(source_id = %source.id, until = %reset, "rate limit spent; next poll waits for its reset");
    } else if !caught_up {
        // The page cap stopped us: come back at the next tick rather than after `every`.
        next.next_poll_at = Some(now);
    }
    if writes_only_the_success_time(&read, &next, now) && events.is_empty() {
        // A quiet poll: the scheduler's claim already moved `next_poll_at`, and this write
        // would only refresh `last_success_at`. Skipping it halves what a quiet source
        // costs in writes; the time is refreshed at least every HEALTH_REFRESH.
        tracing::debug!(source_id = %source.id, "nothing new, cursor unchanged");
    } else {
        save_merged(store, next).await?;
    }
    emit(queue, &events).await?;
    tracing::info!(source_id = %source.id, mentions = count, caught_up, "polled");
    Ok(PollOutcome::Polled {
        source_id: source.id.clone(),
        mentions: count,
        caught_up,
    })
}

/// How stale `last_success_at` may get while polls find nothing and change nothing.
pub const HEALTH_REFRESH: SignedDuration = SignedDuration::from_hours(1);

/// Whether saving `next` over `read` would change nothing but a `last_success_at` that is
/// less than [`HEALTH_REFRESH`] old.
fn writes_only_the_success_time(read: &Cursor, next: &Cursor, now: Timestamp) -> bool {
    let fresh = read
        .health
        .last_success_at
        .is_some_and(|at| at.duration_until(now) < HEALTH_REFRESH);
    let mut same = next.clone();
    same.health.last_success_at = read.health.last_success_at;
    fresh && same == *read
}

async fn fail<S: CursorStore>(
    store: &S,
    queue: &dyn MessageQueue,
    source: &Source,
    mut cursor: Cursor,
    error: PlatformError,
    now: Timestamp,
    settings: &PollerSettings,
) -> Result<PollOutcome, ListeningError> {
    let weight = match &error {
        PlatformError::Retryable { .. } | PlatformError::Ambiguous { .. } => 1,
        PlatformError::Malformed { .. } => 2,
        PlatformError::Permanent { .. } | PlatformError::AuthExpired { .. } => 4,
        PlatformError::Url { .. } => 8,
    };
    let message = error.to_string();
    cursor.failure_weight = cursor.failure_weight.saturating_add(weight);
    cursor.health.consecutive_failures = cursor.health.consecutive_failures.saturating_add(1);
    cursor.health.last_error = Some(message.clone());

    let exponent = cursor.health.consecutive_failures.saturating_sub(1).min(16);
    let backoff = source
        .every
        .as_duration()
        .checked_mul(1i32 << exponent.min(30))
        .unwrap_or(settings.max_backoff)
        .min(settings.max_backoff);
    let wait = error
        .retry_after()
        .map_or(backoff, |after| after.max(backoff));
    cursor.next_poll_at = Some(now + wait);

    let disable = !error.is_retryable() && cursor.failure_weight >= settings.disable_at_weight;
    let mut events = Vec::new();
    if disable {
        cursor.health.disabled = Some(Disabled {
            at: now,
            reason: message.clone(),
        });
        events.push(HarkEvent::SourceDisabled {
            source_id: source.id.clone(),
            platform: source.platform,
            reason: message.clone(),
            at: now,
        });
    }
    tracing::warn!(
        source_id = %source.id,
        kind = error.kind(),
        failures = cursor.health.consecutive_failures,
        disabled = disable,
        error = %message,
        "poll failed"
    );
    save_merged(store, cursor).await?;
    emit(queue, &events).await?;
    Ok(PollOutcome::Failed {
        source_id: source.id.clone(),
        kind: error.kind(),
        error: message,
        disabled: disable,
    })
}

/// Saves the cursor; when a scheduler tick wrote in between (version moved), re-reads and
/// re-applies this poll's fields, keeping the later of the two next-poll times unless the
/// poll asked to come back sooner.
async fn save_merged<S: CursorStore>(store: &S, mut cursor: Cursor) -> Result<(), StoreError> {
    for _ in 0..3 {
        match store.save_cursor(&cursor).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => {
                let Some(stored) = store.get_cursor(&cursor.source_id).await? else {
                    cursor.version = 0;
                    continue;
                };
                cursor.version = stored.version;
                if cursor.health.disabled.is_none() && stored.health.disabled.is_some() {
                    cursor.health.disabled = stored.health.disabled;
                }
                cursor.next_poll_at = match (cursor.next_poll_at, stored.next_poll_at) {
                    (Some(ours), Some(theirs)) => Some(ours.min(theirs)),
                    (ours, theirs) => ours.or(theirs),
                };
            }
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict {
        entity: "cursor",
        id: cursor.source_id.clone(),
        expected: cursor.version,
    })
}

/// Packs one source's mentions into messages of about one SQS billing unit each.
fn mention_messages(
    source_id: &str,
    mentions: Vec<Mention>,
) -> Result<Vec<String>, ListeningError> {
    let mut bodies = Vec::new();
    let mut chunk: Vec<Mention> = Vec::new();
    let mut chunk_bytes = 0;
    for m in mentions {
        let size = serde_json::to_vec(&m)?.len() + 1;
        if !chunk.is_empty() && chunk_bytes + size > BILLING_CHUNK_BYTES - 512 {
            bodies.push(encode(source_id, std::mem::take(&mut chunk))?);
            chunk_bytes = 0;
        }
        chunk_bytes += size;
        chunk.push(m);
    }
    if !chunk.is_empty() {
        bodies.push(encode(source_id, chunk)?);
    }
    Ok(bodies)
}

fn encode(source_id: &str, mentions: Vec<Mention>) -> Result<String, serde_json::Error> {
    serde_json::to_string(&MentionBatch {
        source_id: source_id.to_owned(),
        mentions,
    })
}

async fn emit(queue: &dyn MessageQueue, events: &[HarkEvent]) -> Result<(), ListeningError> {
    if events.is_empty() {
        return Ok(());
    }
    let bodies = events
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()?;
    for batch in pack_batches(bodies)? {
        queue.send_batch(QueueName::Events, &batch).await?;
    }
    Ok(())
}

fn clip_text(m: &mut Mention, max_chars: usize) {
    if let Some((cut, _)) = m.text.char_indices().nth(max_chars) {
        m.text.truncate(cut);
        m.text.push('…');
    }
}
