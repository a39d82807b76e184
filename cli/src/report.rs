//! `hark report`: what listening and publishing looked like over a time range, read back
//! from the store, as a terminal summary (with a sparkline of the hourly volume), one JSON
//! object, or a self-contained HTML page with inline SVG charts for a browser or a printer.
//!
//! Every figure comes from the store, never from the run that wrote it: volume and sentiment
//! from the hourly aggregates, languages from the stored mentions (the aggregates do not keep
//! the language) and so are the top authors, firings from the trigger timeline
//! and outcomes from the deliveries. So a report of the AWS store and one of the embedded
//! store of the same data are the same report.
//!
//! The HTML page loads nothing: no scripts, fonts, images or style sheets, so it opens
//! offline, can be mailed as one file, and cannot leak who reads it. Mentions come from the
//! internet, so every piece of text is escaped, and only `http(s)` URLs become links.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use hark_shared::domain::{Campaign, Channel, OriginKind, Platform, ScheduledPost};
use hark_shared::events::{Figures, HarkEvent, SampleMention, TermCount};
use hark_shared::ports::{
    AggregateStore, ConfigStore, Counters, DeliveryStore, MentionStore, StoreError, TriggerStore,
    truncate_to_hour,
};
use hark_shared::publishing::DeliveryView;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::CliError;

/// The range a report covers when `--since` is not given.
pub const DEFAULT_RANGE: SignedDuration = SignedDuration::from_hours(7 * 24);

/// How many authors a report lists per campaign.
pub const TOP_AUTHORS: usize = 10;

/// The most marks a terminal sparkline has; longer series are summed into wider buckets so
/// the line fits an 80-column terminal with its label.
const SPARK_WIDTH: usize = 56;

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

const HOUR: SignedDuration = SignedDuration::from_hours(1);

/// Everything a report shows, as `--json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub generated_at: Timestamp,
    /// Start of the requested range (the hourly charts start at its hour).
    pub from: Timestamp,
    pub to: Timestamp,
    pub campaigns: Vec<CampaignReport>,
    /// Deliveries of posts that belong to no campaign (only when no campaign was asked for).
    pub unassigned: Publishing,
}

/// One campaign over the report's range.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignReport {
    pub id: String,
    pub name: Option<String>,
    pub query: String,
    pub active: bool,
    /// All platforms summed over the range.
    pub totals: Counters,
    /// Mean VADER compound score of the scored mentions (`None` when none was scored).
    pub mean_compound: Option<f64>,
    /// Totals per platform, most mentions first.
    pub platforms: Vec<PlatformTotal>,
    /// Stored mentions per language (`und` when detection was not reliable), most first.
    pub languages: Vec<LanguageTotal>,
    /// Every hour from the first with activity to the current one (empty without activity).
    pub hours: Vec<HourPoint>,
    /// The authors of the range's mentions with the largest follower counts (then the most
    /// mentions), their figures summed over the range.
    pub top_authors: Vec<AuthorRow>,
    /// Trigger firings in the range, oldest first, with their explanation.
    pub firings: Vec<FiringView>,
    pub publishing: Publishing,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlatformTotal {
    pub platform: Platform,
    #[serde(flatten)]
    pub counters: Counters,
}

#[derive(Debug, Clone, Serialize)]
pub struct LanguageTotal {
    pub lang: String,
    pub mentions: u64,
}

/// One hour of a campaign: the sums over its platforms and the mentions per platform.
#[derive(Debug, Clone, Serialize)]
pub struct HourPoint {
    pub hour: Timestamp,
    #[serde(flatten)]
    pub counters: Counters,
    pub by_platform: BTreeMap<Platform, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuthorRow {
    pub platform: Platform,
    pub handle: String,
    pub followers: Option<u64>,
    pub mentions: u64,
    pub engagement: u64,
    pub last_seen: Timestamp,
}

/// A firing on the timeline and why it happened (from its `TriggerFired` event).
#[derive(Debug, Clone, Serialize)]
pub struct FiringView {
    pub rule: String,
    pub fired_at: Timestamp,
    pub window_start: Timestamp,
    pub window_end: Option<Timestamp>,
    pub kind: Option<String>,
    /// The event's sentence, or a note that the stored event could not be read.
    pub summary: String,
    pub figures: Option<Figures>,
    pub top_terms: Vec<TermCount>,
    pub samples: Vec<SampleMention>,
}

/// Deliveries and how they ended.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Publishing {
    /// Deliveries per status (`PUBLISHED`, `PAUSED`, …).
    pub by_status: BTreeMap<String, u64>,
    /// Earliest scheduled first.
    pub deliveries: Vec<DeliveryRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRow {
    #[serde(flatten)]
    pub view: DeliveryView,
    /// `scheduled` (from `hark apply`), `alert` or `auto` (made by a trigger).
    pub kind: &'static str,
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("campaign `{0}` does not exist")]
    UnknownCampaign(String),
    #[error("the store failed")]
    Store(#[from] StoreError),
}

impl From<ReportError> for CliError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::UnknownCampaign(id) => {
                CliError::Ops(crate::ops::OpsError::UnknownCampaign(id))
            }
            ReportError::Store(e) => CliError::Store(e),
        }
    }
}

/// The store ports a report reads.
pub trait ReportStore:
    ConfigStore + MentionStore + AggregateStore + TriggerStore + DeliveryStore
{
}

impl<S> ReportStore for S where
    S: ConfigStore + MentionStore + AggregateStore + TriggerStore + DeliveryStore
{
}

/// The start of the range from `--since` (an instant, or how long ago), by default
/// [`DEFAULT_RANGE`] ago. Checked before the store is opened, so a typo changes nothing.
pub fn range_start(since: Option<&str>, now: Timestamp) -> Result<Timestamp, CliError> {
    match since {
        None => Ok(now - DEFAULT_RANGE),
        Some(text) => crate::parse_since(text, now).ok_or_else(|| CliError::Since(text.to_owned())),
    }
}

/// `hark report`: builds the report of `[from, now]`, writes the HTML page if asked, and
/// prints the terminal summary (or the JSON object) on stdout.
pub async fn run<S: ReportStore>(
    store: &S,
    campaign: Option<&str>,
    from: Timestamp,
    html: Option<&Path>,
    json: bool,
    now: Timestamp,
) -> Result<(), CliError> {
    let report = build(store, campaign, from, now).await?;
    if let Some(path) = html {
        std::fs::write(path, render_html(&report))
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    }
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string(&report).unwrap_or_default()
        )?;
    } else {
        write_terminal(&report, &mut out)?;
        if let Some(path) = html {
            writeln!(out, "HTML report written to {}", path.display())?;
        }
    }
    Ok(())
}

/// Reads the report of `campaign` (or of every active campaign) over `[from, now]`.
pub async fn build<S: ReportStore>(
    store: &S,
    campaign: Option<&str>,
    from: Timestamp,
    now: Timestamp,
) -> Result<Report, ReportError> {
    let campaigns: Vec<Campaign> = match campaign {
        Some(id) => vec![
            store
                .get::<Campaign>(id)
                .await?
                .ok_or_else(|| ReportError::UnknownCampaign(id.to_owned()))?,
        ],
        None => store
            .list::<Campaign>()
            .await?
            .into_iter()
            .filter(|c| c.active)
            .collect(),
    };
    let posts: Vec<ScheduledPost> = store.list().await?;
    let channels: Vec<Channel> = store.list().await?;
    let deliveries = store.list_deliveries(None).await?;
    let platform_of: HashMap<&str, Platform> = channels
        .iter()
        .map(|c| (c.id.as_str(), c.platform))
        .collect();
    // Which campaign each post belongs to: its own, or that of the trigger that made it.
    let post_owner: HashMap<&str, (Option<&str>, &'static str)> = posts
        .iter()
        .map(|p| {
            let kind = match p.origin.as_ref().map(|o| o.kind) {
                None => "scheduled",
                Some(OriginKind::Alert) => "alert",
                Some(OriginKind::Auto) => "auto",
            };
            let owner = p
                .campaign
                .as_deref()
                .or(p.origin.as_ref().map(|o| o.campaign.as_str()));
            (p.id.as_str(), (owner, kind))
        })
        .collect();
    let publishing_of = |owner: Option<&str>| {
        let mut publishing = Publishing::default();
        for d in deliveries.iter().filter(|d| d.scheduled_for >= from) {
            let (post_campaign, kind) = post_owner
                .get(d.post_id.as_str())
                .copied()
                .unwrap_or((None, "scheduled"));
            if post_campaign != owner {
                continue;
            }
            let view = DeliveryView::new(d, platform_of.get(d.channel_id.as_str()).copied());
            *publishing.by_status.entry(view.status.clone()).or_default() += 1;
            publishing.deliveries.push(DeliveryRow { view, kind });
        }
        publishing.deliveries.sort_by_key(|d| d.view.scheduled_for);
        publishing
    };

    // Hour buckets up to and including the current hour.
    let end = truncate_to_hour(now) + HOUR;
    let mut reports = Vec::with_capacity(campaigns.len());
    for c in campaigns {
        let mut report = campaign_report(store, &c, from, now, end).await?;
        report.publishing = publishing_of(Some(c.id.as_str()));
        reports.push(report);
    }
    let unassigned = if campaign.is_none() {
        publishing_of(None)
    } else {
        Publishing::default()
    };
    Ok(Report {
        generated_at: now,
        from,
        to: now,
        campaigns: reports,
        unassigned,
    })
}

async fn campaign_report<S: ReportStore>(
    store: &S,
    campaign: &Campaign,
    from: Timestamp,
    now: Timestamp,
    end: Timestamp,
) -> Result<CampaignReport, ReportError> {
    let id = campaign.id.as_str();
    let mut totals = Counters::default();
    let mut per_platform: BTreeMap<Platform, Counters> = BTreeMap::new();
    let mut per_hour: BTreeMap<Timestamp, HourPoint> = BTreeMap::new();
    for (bucket, counters) in store.list_counters(id, truncate_to_hour(from), end).await? {
        totals.add(&counters);
        per_platform
            .entry(bucket.platform)
            .or_default()
            .add(&counters);
        let point = per_hour.entry(bucket.hour).or_insert_with(|| HourPoint {
            hour: bucket.hour,
            counters: Counters::default(),
            by_platform: BTreeMap::new(),
        });
        point.counters.add(&counters);
        *point.by_platform.entry(bucket.platform).or_default() += counters.mentions;
    }
    let mut platforms: Vec<PlatformTotal> = per_platform
        .into_iter()
        .map(|(platform, counters)| PlatformTotal { platform, counters })
        .collect();
    platforms.sort_by(|a, b| {
        b.counters
            .mentions
            .cmp(&a.counters.mentions)
            .then(a.platform.cmp(&b.platform))
    });

    let mentions = hark_shared::processing::list_mentions(store, Some(id), from, end).await?;
    let mut per_lang: BTreeMap<&str, u64> = BTreeMap::new();
    for m in &mentions {
        *per_lang
            .entry(m.lang.as_deref().unwrap_or("und"))
            .or_default() += 1;
    }
    let mut languages: Vec<LanguageTotal> = per_lang
        .into_iter()
        .map(|(lang, mentions)| LanguageTotal {
            lang: lang.to_owned(),
            mentions,
        })
        .collect();
    languages.sort_by(|a, b| b.mentions.cmp(&a.mentions).then(a.lang.cmp(&b.lang)));

    let firings: Vec<FiringView> = store
        .list_firings(id)
        .await?
        .into_iter()
        .filter(|r| r.fired_at >= from && r.fired_at <= now)
        .map(|r| match serde_json::from_str::<HarkEvent>(&r.event) {
            Ok(HarkEvent::TriggerFired(f)) => FiringView {
                rule: r.rule,
                fired_at: r.fired_at,
                window_start: r.window_start,
                window_end: Some(f.window_end),
                kind: Some(f.kind),
                summary: f.summary,
                figures: Some(f.figures),
                top_terms: f.top_terms,
                samples: f.samples,
            },
            _ => FiringView {
                rule: r.rule,
                fired_at: r.fired_at,
                window_start: r.window_start,
                window_end: None,
                kind: None,
                summary: "(the stored event is not readable)".to_owned(),
                figures: None,
                top_terms: Vec::new(),
                samples: Vec::new(),
            },
        })
        .collect();
    // The timeline is ordered by instant (stores list a campaign's firings by rule).
    let mut firings = firings;
    firings.sort_by(|a, b| a.fired_at.cmp(&b.fired_at).then(a.rule.cmp(&b.rule)));

    let hours = hour_points(per_hour, &firings, truncate_to_hour(from), now);

    let top_authors = hark_shared::authors::top_authors(&mentions, TOP_AUTHORS)
        .into_iter()
        .map(|stats| AuthorRow {
            platform: stats.platform,
            handle: stats.handle,
            followers: stats.max_followers,
            mentions: stats.mentions,
            engagement: stats.engagement,
            last_seen: stats.last_seen,
        })
        .collect();

    let scored = totals.positive + totals.neutral + totals.negative;
    let mean_compound = (scored > 0).then(|| totals.compound_e4 as f64 / 1e4 / scored as f64);
    Ok(CampaignReport {
        id: campaign.id.clone(),
        name: campaign.name.clone(),
        query: campaign.query.clone(),
        active: campaign.active,
        totals,
        mean_compound,
        platforms,
        languages,
        hours,
        top_authors,
        firings,
        publishing: Publishing::default(),
    })
}

/// Every hour from the first one with mentions or a firing (not before `first`) to the
/// current hour, with zeros where nothing happened, so charts show quiet hours as gaps.
/// Hours before the first activity are left out: a 7-day range with one busy afternoon
/// would otherwise be a flat line with a spike at its end.
fn hour_points(
    mut per_hour: BTreeMap<Timestamp, HourPoint>,
    firings: &[FiringView],
    first: Timestamp,
    now: Timestamp,
) -> Vec<HourPoint> {
    let last = truncate_to_hour(now);
    let start = per_hour
        .keys()
        .next()
        .copied()
        .into_iter()
        .chain(firings.iter().map(|f| truncate_to_hour(f.fired_at)))
        .min();
    let Some(start) = start else {
        return Vec::new();
    };
    let mut hour = start.max(first);
    let mut out = Vec::new();
    while hour <= last {
        out.push(per_hour.remove(&hour).unwrap_or_else(|| HourPoint {
            hour,
            counters: Counters::default(),
            by_platform: BTreeMap::new(),
        }));
        hour += HOUR;
    }
    out
}

// --- terminal --------------------------------------------------------------------------

/// A Unicode sparkline of `values`: `▁` for zero, `█` for the largest, the rest scaled in
/// between (any non-zero value shows above the baseline).
pub fn sparkline(values: &[u64]) -> String {
    let max = values.iter().copied().max().unwrap_or(0);
    values
        .iter()
        .map(|&v| {
            if max == 0 || v == 0 {
                SPARKS[0]
            } else {
                let level = (v.saturating_mul(7)).div_ceil(max) as usize;
                SPARKS[level.clamp(1, 7)]
            }
        })
        .collect()
}

/// Sums `values` into at most `width` buckets of equal length; returns them and the bucket
/// length.
fn bucketed(values: &[u64], width: usize) -> (Vec<u64>, usize) {
    let per = values.len().div_ceil(width.max(1)).max(1);
    (values.chunks(per).map(|c| c.iter().sum()).collect(), per)
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "0%".to_owned()
    } else {
        format!("{:.0}%", part as f64 * 100.0 / whole as f64)
    }
}

/// `12345` as `12,345`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn when(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// Control characters (a mention's newlines, or an escape sequence from the internet) must
/// not reach the terminal.
fn one_line(text: &str, max_chars: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let clean = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    if clean.chars().count() > max_chars {
        let cut: String = clean.chars().take(max_chars.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        clean
    }
}

/// The compact terminal summary.
pub fn write_terminal(report: &Report, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "Hark report  {} → {}",
        when(report.from),
        when(report.to)
    )?;
    if report.campaigns.is_empty() {
        writeln!(
            out,
            "\n(no active campaign; add one with `hark apply FILE`, or name one with --campaign)"
        )?;
    }
    for c in &report.campaigns {
        writeln!(out)?;
        writeln!(
            out,
            "Campaign {}{}  query: {}{}",
            one_line(&c.id, 60),
            c.name
                .as_deref()
                .map(|n| format!(" ({})", one_line(n, 60)))
                .unwrap_or_default(),
            one_line(&c.query, 80),
            if c.active { "" } else { "  (inactive)" }
        )?;
        let t = &c.totals;
        if c.hours.is_empty() {
            writeln!(out, "  Volume      no mentions in this range")?;
        } else {
            let values: Vec<u64> = c.hours.iter().map(|h| h.counters.mentions).collect();
            let (buckets, per) = bucketed(&values, SPARK_WIDTH);
            let peak = c
                .hours
                .iter()
                .max_by(|a, b| {
                    a.counters
                        .mentions
                        .cmp(&b.counters.mentions)
                        .then(b.hour.cmp(&a.hour))
                })
                .map(|h| (h.counters.mentions, h.hour));
            writeln!(
                out,
                "  Volume      {}  {} mention(s), {} h per mark, from {}",
                sparkline(&buckets),
                thousands(t.mentions),
                per,
                when(c.hours[0].hour)
            )?;
            if let Some((n, hour)) = peak {
                writeln!(
                    out,
                    "              peak {n}/h at {}; potential reach {}",
                    when(hour),
                    thousands(t.reach)
                )?;
            }
        }
        let list = |items: Vec<String>| {
            if items.is_empty() {
                "-".to_owned()
            } else {
                items.join(" · ")
            }
        };
        writeln!(
            out,
            "  Platforms   {}",
            list(
                c.platforms
                    .iter()
                    .map(|p| format!("{} {}", p.platform, p.counters.mentions))
                    .collect()
            )
        )?;
        writeln!(
            out,
            "  Languages   {}",
            list(
                c.languages
                    .iter()
                    .map(|l| format!("{} {}", one_line(&l.lang, 8), l.mentions))
                    .collect()
            )
        )?;
        writeln!(
            out,
            "  Sentiment   positive {} ({}) · neutral {} ({}) · negative {} ({}) · unscored {} ({}){}",
            percent(t.positive, t.mentions),
            t.positive,
            percent(t.neutral, t.mentions),
            t.neutral,
            percent(t.negative, t.mentions),
            t.negative,
            percent(t.unscored, t.mentions),
            t.unscored,
            c.mean_compound
                .map(|m| format!(" · mean compound {m:+.2}"))
                .unwrap_or_default()
        )?;
        if c.top_authors.is_empty() {
            writeln!(out, "  Top authors -")?;
        } else {
            writeln!(
                out,
                "  Top authors (by followers, then mentions, in this range)"
            )?;
            for (i, a) in c.top_authors.iter().enumerate() {
                writeln!(
                    out,
                    "    {:>2}. {:<32} {:<10} {:>10} followers  {} mention(s)",
                    i + 1,
                    one_line(&a.handle, 32),
                    a.platform,
                    a.followers.map(thousands).unwrap_or_else(|| "?".to_owned()),
                    a.mentions
                )?;
            }
        }
        if c.firings.is_empty() {
            writeln!(out, "  Firings     none")?;
        } else {
            writeln!(out, "  Firings     {}", c.firings.len())?;
            for f in &c.firings {
                writeln!(
                    out,
                    "    {}  {}: {}",
                    when(f.fired_at),
                    one_line(&f.rule, 24),
                    one_line(&f.summary, 120)
                )?;
            }
        }
        write_publishing(out, "Publishing ", &c.publishing)?;
    }
    if !report.unassigned.deliveries.is_empty() {
        writeln!(out)?;
        write_publishing(out, "Posts of no campaign", &report.unassigned)?;
    }
    Ok(())
}

fn write_publishing(out: &mut impl Write, label: &str, p: &Publishing) -> std::io::Result<()> {
    if p.deliveries.is_empty() {
        return writeln!(out, "  {label} no deliveries");
    }
    writeln!(
        out,
        "  {label} {}",
        p.by_status
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(" · ")
    )?;
    for d in &p.deliveries {
        let v = &d.view;
        let detail = match (&v.url, &v.error, &v.platform_id) {
            (Some(text), _, _) | (None, Some(text), _) => one_line(text, 90),
            (None, None, Some(id)) => format!("id {}", one_line(id, 90)),
            (None, None, None) => String::new(),
        };
        writeln!(
            out,
            "    {:<9}  {:<9}  {} → {}  {detail}",
            v.status,
            d.kind,
            one_line(&v.post, 30),
            one_line(&v.channel, 30)
        )?;
    }
    Ok(())
}

// --- HTML ------------------------------------------------------------------------------

/// Escapes text for HTML element content and quoted attribute values (and for SVG inside
/// HTML, which the HTML parser reads the same way).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A link to `url` labelled `label`, or the label alone when the URL is not `http(s)`:
/// a `javascript:` or `data:` URL from a mention must not become clickable.
fn link(url: &str, label: &str) -> String {
    let lower = url.trim_start().to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        format!(
            "<a href=\"{}\" rel=\"noopener noreferrer nofollow\">{}</a>",
            escape(url.trim_start()),
            escape(label)
        )
    } else {
        escape(label)
    }
}

fn platform_colour(p: Platform) -> &'static str {
    match p {
        Platform::Mastodon => "#6364ff",
        Platform::Bluesky => "#1a8cd8",
        Platform::Hackernews => "#ff6600",
        Platform::Reddit => "#b0306a",
        Platform::Rss => "#e0a800",
        Platform::X => "#333333",
        Platform::Facebook => "#3b5998",
        Platform::Youtube => "#d50000",
        Platform::Linkedin => "#00897b",
        Platform::Telegram => "#29a9eb",
        Platform::Discord => "#7e57c2",
        Platform::Slack => "#4a154b",
        Platform::Webhook => "#607d8b",
    }
}

/// Sentiment classes, bottom to top in the share chart.
const SENTIMENTS: [(&str, &str); 4] = [
    ("negative", "#d64541"),
    ("neutral", "#a0a8b2"),
    ("positive", "#2e9d4f"),
    ("unscored", "#d9c27a"),
];

fn sentiment_value(c: &Counters, class: &str) -> u64 {
    match class {
        "negative" => c.negative,
        "neutral" => c.neutral,
        "positive" => c.positive,
        _ => c.unscored,
    }
}

const STYLE: &str = r#"
:root{--fg:#1d232b;--muted:#5b6673;--line:#dde2e8;--bg:#f4f6f8;--card:#fff}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1060px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:21px;margin:28px 0 4px}
h3{font-size:16px;margin:0 0 10px}
.muted{color:var(--muted)}
code{font-size:13px;background:#eef1f4;padding:1px 5px;border-radius:4px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 20px;margin:14px 0}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(118px,1fr));gap:12px;margin:14px 0}
.stat{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:10px 14px}
.stat .v{display:block;font-size:24px;font-weight:650}
.stat .k{font-size:13px;color:var(--muted)}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:14px}
.grid2 .card{margin:0}
svg.chart{width:100%;height:auto;display:block}
svg.chart text{font-size:11px;fill:#5b6673}
svg.chart .axis{stroke:#c3cad2;stroke-width:1}
svg.chart .grid{stroke:#e8ecf0;stroke-width:1}
svg.chart .firing line{stroke:#b3261e;stroke-width:1.5;stroke-dasharray:4 3}
svg.chart .firing rect{fill:#b3261e;fill-opacity:.08}
svg.chart .firing circle{fill:#b3261e}
svg.chart .firing text{fill:#fff;font-size:10px;font-weight:700}
svg.chart .value{fill:#1d232b}
svg.chart-authors text{font-size:13px}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:13px;margin:6px 0 0}
.swatch{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:5px;vertical-align:-1px}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.03em}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
a{color:#0b57d0;overflow-wrap:anywhere}
.status{font-weight:650;font-size:12px;padding:1px 7px;border-radius:9px;background:#eef1f4}
.status-PUBLISHED{background:#dff3e4;color:#1e6b34}
.status-FAILED,.status-UNKNOWN{background:#fbe2e0;color:#9d2219}
.status-PAUSED{background:#fff1cc;color:#7a5400}
.status-CANCELLED{background:#eceff1;color:#555}
ol.firings{padding-left:0;list-style:none;margin:0}
ol.firings>li{border-left:3px solid #b3261e;padding:4px 0 4px 12px;margin:0 0 14px}
.badge{display:inline-block;min-width:20px;text-align:center;background:#b3261e;color:#fff;border-radius:10px;font-size:12px;font-weight:700;padding:0 6px;margin-right:6px}
.summary{margin:4px 0}
ul.samples{margin:4px 0 0;padding-left:18px;font-size:14px}
.sent-negative{color:#b3261e}.sent-positive{color:#1e6b34}
footer{margin:30px 0 10px;font-size:12px;color:var(--muted)}
@page{size:A4;margin:12mm}
@media (max-width:760px){.grid2{grid-template-columns:1fr}}
@media print{
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 body{background:#fff;font-size:10.5pt}
 main{max-width:none;padding:0}
 .card,.stat{border-color:#c8ced4;break-inside:avoid}
 section.campaign+section.campaign{break-before:page}
 nav.toc{display:none}
 a{color:inherit;text-decoration:none}
}
"#;

/// The report as one self-contained HTML page.
pub fn render_html(report: &Report) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let title = match report.campaigns.as_slice() {
        [one] => format!("Hark report: {}", one.name.as_deref().unwrap_or(&one.id)),
        _ => "Hark report".to_owned(),
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"hark report\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        escape(&title)
    );
    let _ = writeln!(
        h,
        "<header><h1>{}</h1><p class=\"muted\">{} → {} · generated {}</p></header>",
        escape(&title),
        escape(&when(report.from)),
        escape(&when(report.to)),
        escape(&when(report.generated_at))
    );
    if report.campaigns.len() > 1 {
        h.push_str("<nav class=\"toc card\"><strong>Campaigns</strong>: ");
        let links: Vec<String> = report
            .campaigns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("<a href=\"#campaign-{i}\">{}</a>", escape(&c.id)))
            .collect();
        h.push_str(&links.join(" · "));
        h.push_str("</nav>\n");
    }
    if report.campaigns.is_empty() {
        h.push_str(
            "<p class=\"card\">No active campaign. Add one with <code>hark apply FILE</code>, or name one with <code>--campaign</code>.</p>\n",
        );
    }
    for (i, c) in report.campaigns.iter().enumerate() {
        campaign_html(&mut h, i, c);
    }
    if !report.unassigned.deliveries.is_empty() {
        h.push_str("<section class=\"unassigned\"><h2>Posts of no campaign</h2>");
        publishing_html(&mut h, "unassigned", &report.unassigned);
        h.push_str("</section>\n");
    }
    h.push_str(
        "<footer>Every figure on this page was read from the Hark store: volume and sentiment from the hourly aggregates, languages and authors from the stored mentions, firings from the trigger timeline, outcomes from the deliveries. Times are UTC.</footer>\n</main>\n</body>\n</html>\n",
    );
    h
}

fn stat(h: &mut String, value: &str, key: &str) {
    let _ = write!(
        h,
        "<div class=\"stat\"><span class=\"v\">{}</span><span class=\"k\">{}</span></div>",
        escape(value),
        escape(key)
    );
}

fn campaign_html(h: &mut String, i: usize, c: &CampaignReport) {
    let _ = write!(
        h,
        "<section class=\"campaign\" id=\"campaign-{i}\" data-campaign=\"{}\">\n<h2>{}</h2>\n<p class=\"muted\">Campaign <code>{}</code> · query <code>{}</code>{}</p>\n",
        escape(&c.id),
        escape(c.name.as_deref().unwrap_or(&c.id)),
        escape(&c.id),
        escape(&c.query),
        if c.active { "" } else { " · inactive" }
    );
    let t = &c.totals;
    let published = c
        .publishing
        .by_status
        .get("PUBLISHED")
        .copied()
        .unwrap_or(0);
    h.push_str("<div class=\"stats\">");
    stat(h, &thousands(t.mentions), "mentions");
    stat(h, &thousands(t.reach), "potential reach");
    stat(h, &percent(t.positive, t.mentions), "positive");
    stat(h, &percent(t.negative, t.mentions), "negative");
    stat(
        h,
        &c.mean_compound
            .map(|m| format!("{m:+.2}"))
            .unwrap_or_else(|| "–".to_owned()),
        "mean sentiment (−1…1)",
    );
    stat(h, &c.firings.len().to_string(), "trigger firings");
    stat(
        h,
        &format!("{published}/{}", c.publishing.deliveries.len()),
        "deliveries published",
    );
    h.push_str("</div>\n");

    // Volume by platform, with the firings on the timeline.
    h.push_str("<div class=\"card\"><h3>Mentions per hour by platform</h3>");
    if c.hours.is_empty() {
        h.push_str("<p class=\"muted\">No mentions in this range.</p>");
    }
    volume_svg(h, i, c);
    h.push_str("<div class=\"legend\">");
    for p in &c.platforms {
        let _ = write!(
            h,
            "<span><span class=\"swatch\" style=\"background:{}\"></span>{} ({})</span>",
            platform_colour(p.platform),
            escape(p.platform.as_str()),
            p.counters.mentions
        );
    }
    if !c.firings.is_empty() {
        h.push_str("<span><span class=\"swatch\" style=\"background:#b3261e\"></span>trigger firing (numbered as below)</span>");
    }
    h.push_str("</div></div>\n");

    h.push_str("<div class=\"card\"><h3>Sentiment share per hour</h3>");
    sentiment_svg(h, i, c);
    h.push_str("<div class=\"legend\">");
    for (class, colour) in SENTIMENTS.iter().rev() {
        let _ = write!(
            h,
            "<span><span class=\"swatch\" style=\"background:{colour}\"></span>{class} ({})</span>",
            sentiment_value(t, class)
        );
    }
    h.push_str("</div></div>\n");

    h.push_str("<div class=\"grid2\">");
    h.push_str("<div class=\"card\"><h3>Platforms</h3><table class=\"platforms\"><thead><tr><th>Platform</th><th class=\"num\">Mentions</th><th class=\"num\">Share</th><th class=\"num\">Negative</th><th class=\"num\">Reach</th></tr></thead><tbody>");
    for p in &c.platforms {
        let _ = write!(
            h,
            "<tr data-platform=\"{0}\"><td><span class=\"swatch\" style=\"background:{1}\"></span>{0}</td><td class=\"num\">{2}</td><td class=\"num\">{3}</td><td class=\"num\">{4}</td><td class=\"num\">{5}</td></tr>",
            escape(p.platform.as_str()),
            platform_colour(p.platform),
            p.counters.mentions,
            percent(p.counters.mentions, t.mentions),
            p.counters.negative,
            thousands(p.counters.reach)
        );
    }
    h.push_str("</tbody></table></div>");
    let lang_total: u64 = c.languages.iter().map(|l| l.mentions).sum();
    h.push_str("<div class=\"card\"><h3>Languages <span class=\"muted\">(stored mentions)</span></h3><table class=\"languages\"><thead><tr><th>Language</th><th class=\"num\">Mentions</th><th class=\"num\">Share</th></tr></thead><tbody>");
    for l in &c.languages {
        let _ = write!(
            h,
            "<tr data-lang=\"{0}\"><td>{0}</td><td class=\"num\">{1}</td><td class=\"num\">{2}</td></tr>",
            escape(&l.lang),
            l.mentions,
            percent(l.mentions, lang_total)
        );
    }
    h.push_str("</tbody></table></div></div>\n");

    h.push_str("<div class=\"card\"><h3>Top authors by reach <span class=\"muted\">(largest follower count seen, then mentions, in this range)</span></h3>");
    if c.top_authors.is_empty() {
        h.push_str("<p class=\"muted\">No authors in this range.</p>");
    }
    authors_svg(h, i, c);
    h.push_str("</div>\n");

    h.push_str("<div class=\"card\"><h3>Trigger firings</h3>");
    firings_html(h, i, c);
    h.push_str("</div>\n");

    h.push_str("<div class=\"card\"><h3>Publish outcomes</h3>");
    publishing_html(h, &i.to_string(), &c.publishing);
    h.push_str("</div>\n</section>\n");
}

/// Geometry shared by the two hourly charts, so their bars line up.
struct TimeAxis {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
    hours: usize,
}

const CHART_W: f64 = 1000.0;

impl TimeAxis {
    fn new(hours: usize, top: f64, height: f64) -> Self {
        TimeAxis {
            left: 52.0,
            top,
            width: CHART_W - 52.0 - 14.0,
            height,
            hours: hours.max(1),
        }
    }

    fn bar_width(&self) -> f64 {
        self.width / self.hours as f64
    }

    fn x(&self, index: f64) -> f64 {
        self.left + index * self.bar_width()
    }

    fn bottom(&self) -> f64 {
        self.top + self.height
    }

    /// Hour labels under the axis: about eight, on round hours.
    fn labels(&self, h: &mut String, hours: &[HourPoint]) {
        let every = [1u64, 2, 3, 6, 12, 24, 48, 72, 168]
            .into_iter()
            .find(|k| (hours.len() as u64).div_ceil(*k) <= 8)
            .unwrap_or(336);
        for (i, point) in hours.iter().enumerate() {
            if (point.hour.as_second() / 3600).rem_euclid(every as i64) != 0 {
                continue;
            }
            let x = self.x(i as f64);
            let _ = write!(
                h,
                "<line class=\"axis\" x1=\"{x:.1}\" y1=\"{b:.1}\" x2=\"{x:.1}\" y2=\"{b4:.1}\"/><text x=\"{x:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\">{}</text>",
                point.hour.strftime("%m-%d %H:%M"),
                b = self.bottom(),
                b4 = self.bottom() + 4.0,
                ty = self.bottom() + 17.0
            );
        }
        let _ = write!(
            h,
            "<line class=\"axis\" x1=\"{l:.1}\" y1=\"{b:.1}\" x2=\"{r:.1}\" y2=\"{b:.1}\"/>",
            l = self.left,
            r = self.left + self.width,
            b = self.bottom()
        );
    }
}

/// A round step for about four grid lines up to `max` (1, 2, 5 × 10ⁿ; at least 1).
fn nice_step(max: u64) -> u64 {
    let raw = (max as f64 / 4.0).max(1.0);
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    step.round().max(1.0) as u64
}

fn volume_svg(h: &mut String, i: usize, c: &CampaignReport) {
    let axis = TimeAxis::new(c.hours.len(), 26.0, 230.0);
    let max = c
        .hours
        .iter()
        .map(|p| p.counters.mentions)
        .max()
        .unwrap_or(0);
    let step = nice_step(max);
    let top_value = (max.div_ceil(step)).max(1) * step;
    let scale = axis.height / top_value as f64;
    let _ = write!(
        h,
        "<svg id=\"chart-volume-{i}\" class=\"chart chart-volume\" viewBox=\"0 0 {CHART_W} {}\" role=\"img\" aria-label=\"Mentions per hour by platform\">",
        axis.bottom() + 26.0
    );
    let mut tick = 0;
    while tick <= top_value {
        let y = axis.bottom() - tick as f64 * scale;
        let _ = write!(
            h,
            "<line class=\"grid\" x1=\"{l:.1}\" y1=\"{y:.1}\" x2=\"{r:.1}\" y2=\"{y:.1}\"/><text x=\"{tx:.1}\" y=\"{ty:.1}\" text-anchor=\"end\">{tick}</text>",
            l = axis.left,
            r = axis.left + axis.width,
            tx = axis.left - 6.0,
            ty = y + 4.0
        );
        tick += step;
    }
    let order: Vec<Platform> = c.platforms.iter().map(|p| p.platform).collect();
    let gap = if axis.bar_width() > 4.0 { 1.0 } else { 0.0 };
    for (index, point) in c.hours.iter().enumerate() {
        let mut y = axis.bottom();
        for platform in &order {
            let n = point.by_platform.get(platform).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let height = n as f64 * scale;
            y -= height;
            let _ = write!(
                h,
                "<rect class=\"bar\" data-platform=\"{p}\" x=\"{x:.2}\" y=\"{y:.2}\" width=\"{w:.2}\" height=\"{height:.2}\" fill=\"{fill}\"><title>{hour} · {p}: {n}</title></rect>",
                p = platform.as_str(),
                x = axis.x(index as f64) + gap / 2.0,
                w = (axis.bar_width() - gap).max(0.5),
                fill = platform_colour(*platform),
                hour = when(point.hour)
            );
        }
    }
    // Firings: the evaluated window shaded, a dashed line at the instant, and the number
    // of the firing in the list below, on a badge moved aside when firings are close.
    if let Some(first) = c.hours.first() {
        let position = |t: Timestamp| {
            let hours = t.duration_since(first.hour).as_secs_f64() / 3600.0;
            axis.x(hours.clamp(0.0, axis.hours as f64))
        };
        let xs: Vec<f64> = c.firings.iter().map(|f| position(f.fired_at)).collect();
        let badges = badge_positions(&xs, 20.0, axis.left + 9.0, axis.left + axis.width - 9.0);
        for (n, f) in c.firings.iter().enumerate() {
            let (x, bx) = (xs[n], badges[n]);
            let wx = position(f.window_start);
            let _ = write!(
                h,
                "<g class=\"firing\" data-rule=\"{rule}\"><title>{rule} at {at}: {summary}</title><rect x=\"{wx:.2}\" y=\"{top:.1}\" width=\"{ww:.2}\" height=\"{hh:.1}\"/><line x1=\"{x:.2}\" y1=\"{top:.1}\" x2=\"{x:.2}\" y2=\"{b:.1}\"/><line x1=\"{bx:.2}\" y1=\"{cy:.1}\" x2=\"{x:.2}\" y2=\"{top:.1}\"/><circle cx=\"{bx:.2}\" cy=\"{cy:.1}\" r=\"9\"/><text x=\"{bx:.2}\" y=\"{ty:.1}\" text-anchor=\"middle\">{num}</text></g>",
                rule = escape(&f.rule),
                at = when(f.fired_at),
                summary = escape(&f.summary),
                ww = (x - wx).max(0.0),
                top = axis.top,
                hh = axis.height,
                b = axis.bottom(),
                cy = axis.top - 12.0,
                ty = axis.top - 8.5,
                num = n + 1
            );
        }
    }
    axis.labels(h, &c.hours);
    h.push_str("</svg>");
}

/// Centres for badges of diameter < `spacing` near `xs`, in `[min, max]`, none closer
/// than `spacing` to another (in the order of `xs`; when they cannot all fit they overlap
/// evenly).
fn badge_positions(xs: &[f64], spacing: f64, min: f64, max: f64) -> Vec<f64> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]).then(a.cmp(&b)));
    let mut placed = vec![0.0; xs.len()];
    let mut next = min;
    for &i in &order {
        placed[i] = xs[i].max(next);
        next = placed[i] + spacing;
    }
    let mut limit = max;
    for &i in order.iter().rev() {
        placed[i] = placed[i].min(limit).max(min);
        limit = placed[i] - spacing;
    }
    placed
}

fn sentiment_svg(h: &mut String, i: usize, c: &CampaignReport) {
    let axis = TimeAxis::new(c.hours.len(), 10.0, 160.0);
    let _ = write!(
        h,
        "<svg id=\"chart-sentiment-{i}\" class=\"chart chart-sentiment\" viewBox=\"0 0 {CHART_W} {}\" role=\"img\" aria-label=\"Sentiment share per hour\">",
        axis.bottom() + 26.0
    );
    for share in [0u32, 25, 50, 75, 100] {
        let y = axis.bottom() - axis.height * f64::from(share) / 100.0;
        let _ = write!(
            h,
            "<line class=\"grid\" x1=\"{l:.1}\" y1=\"{y:.1}\" x2=\"{r:.1}\" y2=\"{y:.1}\"/><text x=\"{tx:.1}\" y=\"{ty:.1}\" text-anchor=\"end\">{share}%</text>",
            l = axis.left,
            r = axis.left + axis.width,
            tx = axis.left - 6.0,
            ty = y + 4.0
        );
    }
    let gap = if axis.bar_width() > 4.0 { 1.0 } else { 0.0 };
    for (index, point) in c.hours.iter().enumerate() {
        let total = point.counters.mentions;
        if total == 0 {
            continue;
        }
        let mut y = axis.bottom();
        for (class, colour) in SENTIMENTS {
            let n = sentiment_value(&point.counters, class);
            if n == 0 {
                continue;
            }
            let height = axis.height * n as f64 / total as f64;
            y -= height;
            let _ = write!(
                h,
                "<rect class=\"share {class}\" x=\"{x:.2}\" y=\"{y:.2}\" width=\"{w:.2}\" height=\"{height:.2}\" fill=\"{colour}\"><title>{hour} · {class}: {n} of {total} ({pct})</title></rect>",
                x = axis.x(index as f64) + gap / 2.0,
                w = (axis.bar_width() - gap).max(0.5),
                hour = when(point.hour),
                pct = percent(n, total)
            );
        }
    }
    axis.labels(h, &c.hours);
    h.push_str("</svg>");
}

fn authors_svg(h: &mut String, i: usize, c: &CampaignReport) {
    let row = 26.0;
    let label_w = 300.0;
    let left = label_w + 10.0;
    let width = CHART_W - left - 110.0;
    let height = row * c.top_authors.len() as f64 + 8.0;
    let max = c
        .top_authors
        .iter()
        .filter_map(|a| a.followers)
        .max()
        .unwrap_or(0)
        .max(1);
    let _ = write!(
        h,
        "<svg id=\"chart-authors-{i}\" class=\"chart chart-authors\" viewBox=\"0 0 {CHART_W} {height:.0}\" role=\"img\" aria-label=\"Top authors by followers\">"
    );
    for (n, a) in c.top_authors.iter().enumerate() {
        let y = 4.0 + n as f64 * row;
        let label: String = {
            let full = format!("{} ({})", a.handle, a.platform);
            if full.chars().count() > 44 {
                format!("{}…", full.chars().take(43).collect::<String>())
            } else {
                full
            }
        };
        let followers = a.followers.unwrap_or(0);
        let w = (width * followers as f64 / max as f64).max(if followers > 0 { 1.0 } else { 0.0 });
        let _ = write!(
            h,
            "<g class=\"author\" data-handle=\"{handle}\"><title>{handle} on {platform}: {fl} followers, {m} mention(s), engagement {e}</title><text x=\"{label_w}\" y=\"{ty:.1}\" text-anchor=\"end\">{label}</text><rect class=\"bar\" x=\"{left}\" y=\"{y:.1}\" width=\"{w:.2}\" height=\"{bh:.1}\" rx=\"2\" fill=\"{fill}\"/><text class=\"value\" x=\"{vx:.1}\" y=\"{ty:.1}\">{fl}</text></g>",
            handle = escape(&a.handle),
            platform = a.platform,
            fl = a
                .followers
                .map(thousands)
                .unwrap_or_else(|| "unknown".to_owned()),
            m = a.mentions,
            e = a.engagement,
            ty = y + row / 2.0 + 2.0,
            label = escape(&label),
            bh = row - 8.0,
            fill = platform_colour(a.platform),
            vx = left + w + 6.0
        );
    }
    h.push_str("</svg>");
}

fn firings_html(h: &mut String, i: usize, c: &CampaignReport) {
    if c.firings.is_empty() {
        h.push_str("<p class=\"muted\">No trigger fired in this range.</p>");
        return;
    }
    let _ = write!(h, "<ol class=\"firings\" id=\"firings-{i}\">");
    for (n, f) in c.firings.iter().enumerate() {
        let _ = write!(
            h,
            "<li class=\"firing\" data-rule=\"{rule}\"><span class=\"badge\">{num}</span><strong>{rule}</strong>{kind} fired at {at}{window}<p class=\"summary\">{summary}</p>",
            rule = escape(&f.rule),
            num = n + 1,
            kind = f
                .kind
                .as_deref()
                .map(|k| format!(" <code>{}</code>", escape(k)))
                .unwrap_or_default(),
            at = escape(&when(f.fired_at)),
            window = f
                .window_end
                .map(|end| format!(
                    " <span class=\"muted\">(window {} → {})</span>",
                    escape(&when(f.window_start)),
                    escape(&when(end))
                ))
                .unwrap_or_default(),
            summary = escape(&f.summary)
        );
        if !f.top_terms.is_empty() {
            let terms: Vec<String> = f
                .top_terms
                .iter()
                .map(|t| format!("{} ({})", escape(&t.term), t.count))
                .collect();
            let _ = write!(
                h,
                "<p class=\"terms muted\">Top terms: {}</p>",
                terms.join(", ")
            );
        }
        if !f.samples.is_empty() {
            h.push_str("<ul class=\"samples\">");
            for s in &f.samples {
                let sentiment = s
                    .sentiment
                    .map(|l| {
                        let name = serde_json::to_value(l)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default();
                        format!(" <span class=\"sent-{0}\">{0}</span>", escape(&name))
                    })
                    .unwrap_or_default();
                let _ = write!(
                    h,
                    "<li>{} <span class=\"muted\">on {}{}</span>: “{}”{sentiment}</li>",
                    link(&s.url, &s.author),
                    s.platform,
                    s.followers
                        .map(|f| format!(", {} followers", thousands(f)))
                        .unwrap_or_default(),
                    escape(&s.text)
                );
            }
            h.push_str("</ul>");
        }
        h.push_str("</li>");
    }
    h.push_str("</ol>");
}

fn publishing_html(h: &mut String, id: &str, p: &Publishing) {
    if p.deliveries.is_empty() {
        h.push_str("<p class=\"muted\">No deliveries in this range.</p>");
        return;
    }
    let counts: Vec<String> = p
        .by_status
        .iter()
        .map(|(s, n)| {
            format!(
                "<span class=\"status status-{0}\">{0}</span> {n}",
                escape(s)
            )
        })
        .collect();
    let _ = write!(h, "<p>{}</p>", counts.join(" &nbsp; "));
    let _ = write!(
        h,
        "<table class=\"deliveries\" id=\"deliveries-{}\"><thead><tr><th>Status</th><th>Kind</th><th>Post</th><th>Channel</th><th>Scheduled</th><th>Link or reason</th></tr></thead><tbody>",
        escape(id)
    );
    for d in &p.deliveries {
        let v = &d.view;
        let detail = match (&v.url, &v.error, &v.platform_id) {
            (Some(url), _, _) => link(url, url),
            (None, Some(e), _) => escape(e),
            (None, None, Some(id)) => format!("<span class=\"muted\">id</span> {}", escape(id)),
            (None, None, None) => String::new(),
        };
        let _ = write!(
            h,
            "<tr data-status=\"{s}\"><td><span class=\"status status-{s}\">{s}</span></td><td>{kind}</td><td>{post}</td><td>{channel}{platform}</td><td>{at}</td><td>{detail}</td></tr>",
            s = escape(&v.status),
            kind = d.kind,
            post = escape(&v.post),
            channel = escape(&v.channel),
            platform = v
                .platform
                .map(|p| format!(" <span class=\"muted\">({p})</span>"))
                .unwrap_or_default(),
            at = escape(&when(v.scheduled_for))
        );
    }
    h.push_str("</tbody></table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_counts_when_drawn_as_a_sparkline_then_zero_is_the_baseline_and_the_peak_is_full() {
        assert_eq!(sparkline(&[0, 1, 4, 8, 0]), "▁▂▅█▁");
        assert_eq!(sparkline(&[0, 0]), "▁▁");
        assert_eq!(sparkline(&[]), "");
        // A small non-zero count still rises above the baseline.
        assert_eq!(sparkline(&[1, 1000]), "▂█");
    }

    #[test]
    fn given_a_long_series_when_bucketed_then_it_fits_the_width_and_keeps_the_sum() {
        let values: Vec<u64> = (0..169).collect();
        let (buckets, per) = bucketed(&values, SPARK_WIDTH);
        assert!(buckets.len() <= SPARK_WIDTH, "{}", buckets.len());
        assert_eq!(per, 4);
        assert_eq!(buckets.iter().sum::<u64>(), values.iter().sum::<u64>());
    }

    #[test]
    fn given_markup_in_user_text_when_escaped_then_no_tag_survives() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn given_a_non_http_url_when_linked_then_only_the_label_is_shown() {
        assert_eq!(
            link("javascript:alert(1)", "<b>x</b>"),
            "&lt;b&gt;x&lt;/b&gt;"
        );
        assert_eq!(link("data:text/html,hi", "y"), "y");
        assert_eq!(
            link("https://m.example/@a/1?x=1&y=\"2\"", "a"),
            "<a href=\"https://m.example/@a/1?x=1&amp;y=&quot;2&quot;\" rel=\"noopener noreferrer nofollow\">a</a>"
        );
    }

    #[test]
    fn given_close_firings_when_badges_are_placed_then_they_keep_apart_inside_the_chart() {
        assert_eq!(
            badge_positions(&[100.0, 105.0, 300.0], 20.0, 10.0, 990.0),
            [100.0, 120.0, 300.0]
        );
        // Crowded at the right edge: pushed back inside, still apart.
        assert_eq!(
            badge_positions(&[985.0, 990.0], 20.0, 10.0, 990.0),
            [970.0, 990.0]
        );
        assert!(badge_positions(&[], 20.0, 10.0, 990.0).is_empty());
    }

    #[test]
    fn given_maxima_when_a_grid_step_is_chosen_then_it_is_round_and_gives_about_four_lines() {
        assert_eq!(nice_step(0), 1);
        assert_eq!(nice_step(3), 1);
        assert_eq!(nice_step(9), 5);
        assert_eq!(nice_step(38), 10);
        assert_eq!(nice_step(1234), 500);
    }

    #[test]
    fn given_numbers_and_text_when_formatted_for_the_terminal_then_they_are_readable_and_safe() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(one_line("a\nb\u{1b}[31m c", 80), "a b [31m c");
        assert_eq!(one_line("abcdef", 4), "abc…");
    }
}
