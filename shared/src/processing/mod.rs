//! The processor: every mention found by the pollers is analysed (language, sentiment),
//! matched against the active campaigns, stored once (the put-if-absent is the dedupe),
//! and counted into hourly aggregates with one atomic add per campaign × platform × hour per
//! batch. Who the opinion leaders are is read from the stored mentions when asked
//! ([`crate::authors`]), so processing writes nothing per author.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;

use jiff::Timestamp;

use crate::analysis::Analyzer;
use crate::domain::{Campaign, Mention, SentimentLabel};
use crate::listening::MentionBatch;
use crate::ports::{
    AggregateStore, ConfigStore, Counters, HourBucket, MentionStore, PutOutcome, StoreError,
};
use crate::query::{PreparedText, Query};

/// Why a batch (or one message of it) could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("malformed mentions message")]
    Malformed(#[source] serde_json::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A campaign ready for matching: its query parsed once.
#[derive(Debug, Clone)]
struct CompiledCampaign {
    id: String,
    sources: Vec<String>,
    query: Query,
}

/// Totals of one processed batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProcessReport {
    /// Mentions stored for the first time.
    pub stored: usize,
    /// Mentions seen before (acknowledged, not counted again).
    pub duplicates: usize,
    /// Stored mentions that matched at least one campaign.
    pub matched: usize,
    /// Atomic aggregate additions made (one per campaign × platform × hour group).
    pub aggregate_writes: usize,
    /// Messages that failed (left for redelivery, then the DLQ).
    pub failed_messages: usize,
}

/// The result for each message of a batch, by position.
#[derive(Debug)]
pub struct BatchOutcome {
    pub report: ProcessReport,
    /// The mentions this batch stored for the first time that matched a campaign (what the
    /// trigger rules look at next).
    pub stored: Vec<Mention>,
    /// `Err` for messages the queue should redeliver.
    pub messages: Vec<Result<(), ProcessError>>,
}

/// Analyses, matches, stores and aggregates mentions. Build once per process: the
/// analyzer and the parsed campaign queries are reused across invocations.
pub struct Processor {
    analyzer: Analyzer,
    /// Parsed queries by campaign id, re-parsed only when the query text changes.
    compiled: Mutex<HashMap<String, (String, Option<Query>)>>,
    /// Attempts for one aggregate add before the messages that
    /// contributed to it are given up to redelivery.
    add_attempts: u32,
}

impl Processor {
    pub fn new(analyzer: Analyzer) -> Self {
        Processor {
            analyzer,
            compiled: Mutex::new(HashMap::new()),
            add_attempts: 3,
        }
    }

    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// Processes the bodies of one batch of mentions-queue messages.
    ///
    /// Aggregates are added after every mention of the batch is stored, one `ADD` per
    /// campaign × platform × hour.
    /// A mention is counted only when its put-if-absent inserted it, so a redelivered
    /// message never counts twice.
    pub async fn process_batch<S>(
        &self,
        store: &S,
        bodies: &[&str],
    ) -> Result<BatchOutcome, StoreError>
    where
        S: ConfigStore + MentionStore + AggregateStore,
    {
        let campaigns = self.active_campaigns(store).await?;
        let mut report = ProcessReport::default();
        let mut results: Vec<Result<(), ProcessError>> = Vec::with_capacity(bodies.len());
        // Group → (delta, messages that contributed).
        let mut groups: BTreeMap<HourBucket, (Counters, Vec<usize>)> = BTreeMap::new();
        let mut stored: Vec<Mention> = Vec::new();

        for (index, body) in bodies.iter().enumerate() {
            let batch: MentionBatch = match serde_json::from_str(body) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "malformed mentions message");
                    results.push(Err(ProcessError::Malformed(e)));
                    continue;
                }
            };
            let mut outcome = Ok(());
            for mut mention in batch.mentions {
                if mention.source_id.is_none() {
                    mention.source_id = Some(batch.source_id.clone());
                }
                self.enrich(&mut mention, &campaigns);
                match store.put_mention(&mention).await {
                    Ok(PutOutcome::Inserted) => {
                        report.stored += 1;
                        if !mention.campaigns.is_empty() {
                            report.matched += 1;
                        }
                        for campaign in &mention.campaigns {
                            let bucket =
                                HourBucket::new(campaign, mention.platform, mention.created_at);
                            let entry = groups.entry(bucket).or_default();
                            entry.0.add(&counters_of(&mention));
                            if entry.1.last() != Some(&index) {
                                entry.1.push(index);
                            }
                        }
                        if !mention.campaigns.is_empty() {
                            stored.push(mention);
                        }
                    }
                    Ok(PutOutcome::AlreadyExists) => report.duplicates += 1,
                    Err(e) => {
                        tracing::error!(error = %e, key = %mention.key(), "storing a mention failed");
                        outcome = Err(ProcessError::Store(e));
                        break;
                    }
                }
            }
            results.push(outcome);
        }

        for (bucket, (delta, contributors)) in groups {
            if let Err(e) = self
                .with_retry(|| store.add_counters(&bucket, &delta))
                .await
            {
                // The mentions are stored; only these counts are missing. Redelivery will
                // not recount them (they are duplicates now), so say exactly what is lost.
                tracing::error!(
                    error = %e,
                    campaign = %bucket.campaign,
                    platform = %bucket.platform,
                    hour = %bucket.hour,
                    mentions = delta.mentions,
                    "aggregate add failed; these counts are missing from the hourly totals"
                );
                for i in contributors {
                    if results[i].is_ok() {
                        results[i] = Err(ProcessError::Store(StoreError::Backend {
                            operation: "add aggregate",
                            retryable: true,
                            source: format!("aggregate add for {} failed", bucket.campaign).into(),
                        }));
                    }
                }
                continue;
            }
            report.aggregate_writes += 1;
        }

        report.failed_messages = results.iter().filter(|r| r.is_err()).count();
        Ok(BatchOutcome {
            report,
            stored,
            messages: results,
        })
    }

    /// Runs an atomic add, again after a retryable failure (up to `add_attempts` in all).
    async fn with_retry<F, Fut>(&self, mut add: F) -> Result<(), StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), StoreError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match add().await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_retryable() && attempt < self.add_attempts => {
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Language, sentiment and campaigns of one mention (kept when already set).
    fn enrich(&self, mention: &mut Mention, campaigns: &[CompiledCampaign]) {
        // Detection first: platform language tags are often the author's UI language. When
        // detection is unsure, the platform's tag (if it is an enabled language) decides.
        let mut analysis = self.analyzer.analyze(&mention.text, None);
        if analysis.lang == crate::analysis::UNDETERMINED
            && let Some(tagged) = mention.lang.as_deref().filter(|l| {
                self.analyzer
                    .languages()
                    .enabled()
                    .iter()
                    .any(|e| e.code() == *l)
            })
        {
            analysis = self.analyzer.analyze(&mention.text, Some(tagged));
        }
        mention.lang = Some(analysis.lang);
        mention.sentiment = Some(analysis.sentiment);

        let prepared = PreparedText::new(&mention.text);
        let source = mention.source_id.as_deref();
        let mut matched: Vec<String> = campaigns
            .iter()
            .filter(|c| {
                c.sources.is_empty() || source.is_some_and(|s| c.sources.iter().any(|x| x == s))
            })
            .filter(|c| {
                c.query.matches_prepared(
                    &prepared,
                    Some(mention.author.handle.as_str()),
                    mention.lang.as_deref(),
                )
            })
            .map(|c| c.id.clone())
            .collect();
        matched.sort();
        matched.dedup();
        mention.campaigns = matched;
    }

    /// Active campaigns with parsed queries; a campaign whose stored query no longer
    /// parses is skipped with an error log (apply validates queries, so this is rare).
    async fn active_campaigns<S: ConfigStore>(
        &self,
        store: &S,
    ) -> Result<Vec<CompiledCampaign>, StoreError> {
        let campaigns: Vec<Campaign> = store.list().await?;
        let mut cache = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for c in campaigns.into_iter().filter(|c| c.active) {
            let fresh = cache.get(&c.id).is_none_or(|(text, _)| *text != c.query);
            if fresh {
                let parsed = match Query::parse(&c.query) {
                    Ok(q) => Some(q),
                    Err(e) => {
                        tracing::error!(campaign = %c.id, error = %e, "campaign query does not parse; campaign skipped");
                        None
                    }
                };
                cache.insert(c.id.clone(), (c.query.clone(), parsed));
            }
            if let Some((_, Some(query))) = cache.get(&c.id) {
                out.push(CompiledCampaign {
                    id: c.id,
                    sources: c.sources,
                    query: query.clone(),
                });
            }
        }
        Ok(out)
    }
}

/// The counters one mention contributes.
fn counters_of(m: &Mention) -> Counters {
    let (positive, neutral, negative, unscored, compound) = match &m.sentiment {
        Some(s) => match s.label {
            SentimentLabel::Positive => (1, 0, 0, 0, s.compound),
            SentimentLabel::Neutral => (0, 1, 0, 0, s.compound),
            SentimentLabel::Negative => (0, 0, 1, 0, s.compound),
            SentimentLabel::Unknown => (0, 0, 0, 1, 0.0),
        },
        None => (0, 0, 0, 1, 0.0),
    };
    Counters {
        mentions: 1,
        positive,
        neutral,
        negative,
        unscored,
        compound_e4: (compound * 10_000.0).round() as i64,
        reach: m.author.followers.unwrap_or(0),
    }
}

/// Lists mentions of one campaign (or of all campaigns and the unmatched) in a time range,
/// oldest first, each once.
pub async fn list_mentions<S: ConfigStore + MentionStore>(
    store: &S,
    campaign: Option<&str>,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<Mention>, StoreError> {
    let timelines: Vec<String> = match campaign {
        Some(c) => vec![c.to_owned()],
        None => {
            let mut all: Vec<String> = store
                .list::<Campaign>()
                .await?
                .into_iter()
                .map(|c| c.id)
                .collect();
            all.push(crate::ports::MentionQuery::UNMATCHED.to_owned());
            all
        }
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for timeline in timelines {
        let query = crate::ports::MentionQuery {
            timeline,
            from,
            to,
            limit: 500,
        };
        let mut token: Option<String> = None;
        loop {
            let page = store.list_mentions(&query, token.as_deref()).await?;
            for m in page.items {
                if seen.insert(m.key()) {
                    out.push(m);
                }
            }
            match page.next {
                Some(next) => token = Some(next),
                None => break,
            }
        }
    }
    out.sort_by(|a, b| {
        (a.created_at, a.platform, &a.native_id).cmp(&(b.created_at, b.platform, &b.native_id))
    });
    Ok(out)
}
