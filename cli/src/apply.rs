//! `hark apply`: campaigns as code. Parses the YAML file, validates it (errors name the
//! file, line and field), and plans or applies it against a [`ConfigStore`].

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use hark_shared::domain::{
    Campaign, Channel, Platform, ScheduledPost, Source, TriggerAction, validate_id,
};
use hark_shared::ports::{
    ConfigEntity, ConfigStore, DeliveryStore, EntityKind, MessageQueue, StoreError, UpsertOutcome,
};
use hark_shared::publishing::{
    ChannelProblem, PublishingError, ScheduleReport, schedule_changed, schedule_post,
};
use serde::Deserialize;
use serde_saphyr::Spanned;

/// The file format of `hark apply` (see the README). Unknown keys are errors.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HarkFile {
    #[serde(default)]
    sources: Vec<Spanned<Source>>,
    #[serde(default)]
    campaigns: Vec<Spanned<Campaign>>,
    #[serde(default)]
    channels: Vec<Spanned<Channel>>,
    #[serde(default)]
    posts: Vec<Spanned<ScheduledPost>>,
}

/// One problem in a config file, located as precisely as the parser allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
    /// Path of the offending field, like `campaigns[0].sources`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.field,
            self.message
        )
    }
}

/// Why `hark apply` stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot read {file}")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} has {} problem(s):\n{}", .file.display(), .problems.len(), render(.problems))]
    Invalid {
        file: PathBuf,
        problems: Vec<Problem>,
    },
    #[error("the store failed while applying")]
    Store(#[from] StoreError),
    /// A stored post could not be fanned out into deliveries.
    #[error(transparent)]
    Schedule(#[from] PublishingError),
}

fn render(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A validated config file, ready to plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub sources: Vec<Source>,
    pub campaigns: Vec<Campaign>,
    pub channels: Vec<Channel>,
    pub posts: Vec<ScheduledPost>,
}

/// One line of the plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlannedChange {
    pub kind: &'static str,
    pub id: String,
    pub action: &'static str,
}

/// Reads and validates a config file.
pub fn load(file: &Path) -> Result<Desired, ApplyError> {
    let text = std::fs::read_to_string(file).map_err(|source| ApplyError::Read {
        file: file.to_owned(),
        source,
    })?;
    parse(file, &text)
}

/// Parses and validates config text; `file` only names it in errors.
pub fn parse(file: &Path, text: &str) -> Result<Desired, ApplyError> {
    let parsed: HarkFile = if text.trim().is_empty() {
        HarkFile {
            sources: vec![],
            campaigns: vec![],
            channels: vec![],
            posts: vec![],
        }
    } else {
        serde_saphyr::from_str(text).map_err(|e| ApplyError::Invalid {
            file: file.to_owned(),
            problems: vec![syntax_problem(file, text, &e)],
        })?
    };
    let problems = Validator::new(file, text, &parsed).run();
    if !problems.is_empty() {
        return Err(ApplyError::Invalid {
            file: file.to_owned(),
            problems,
        });
    }
    Ok(Desired {
        sources: parsed.sources.into_iter().map(|s| s.value).collect(),
        campaigns: parsed.campaigns.into_iter().map(|s| s.value).collect(),
        channels: parsed.channels.into_iter().map(|s| s.value).collect(),
        posts: parsed.posts.into_iter().map(|s| s.value).collect(),
    })
}

/// Turns a parser error into a one-line problem with the parser's location.
fn syntax_problem(file: &Path, text: &str, err: &serde_saphyr::Error) -> Problem {
    let (line, column) = err
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let message = err
        .without_snippet()
        .to_string()
        .lines()
        .next()
        .unwrap_or("invalid YAML")
        .to_owned();
    Problem {
        file: file.to_owned(),
        line,
        column,
        field: field_path_at(text, line).unwrap_or_else(|| "(document)".to_owned()),
        message: strip_location_suffix(&message),
    }
}

/// saphyr appends " at line X column Y"; the location is already in front of the message.
fn strip_location_suffix(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Best-effort `section[index].key` path for a 1-based line of a block-style file.
fn field_path_at(text: &str, line: u64) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let target = usize::try_from(line).ok()?.checked_sub(1)?;
    let mut section = None;
    let mut index: Option<usize> = None;
    for (i, l) in lines.iter().enumerate().take(target + 1) {
        if !l.starts_with(' ') && !l.starts_with('-') && l.contains(':') && !l.starts_with('#') {
            section = Some(l.split(':').next()?.trim().to_owned());
            index = None;
        } else if let Some(rest) = l.trim_start().strip_prefix("- ")
            && indent(l) <= 2
            && section.is_some()
            && (rest.contains(':') || i == target)
        {
            index = Some(index.map_or(0, |n| n + 1));
        }
    }
    let key = lines
        .get(target)?
        .trim_start()
        .trim_start_matches("- ")
        .split(':')
        .next()?
        .trim()
        .to_owned();
    let section = section?;
    Some(match index {
        Some(n) if !key.is_empty() && key != section => format!("{section}[{n}].{key}"),
        Some(n) => format!("{section}[{n}]"),
        None => section,
    })
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Semantic checks across the whole file.
struct Validator<'a> {
    file: &'a Path,
    lines: Vec<&'a str>,
    parsed: &'a HarkFile,
    problems: Vec<Problem>,
}

impl<'a> Validator<'a> {
    fn new(file: &'a Path, text: &'a str, parsed: &'a HarkFile) -> Self {
        Validator {
            file,
            lines: text.lines().collect(),
            parsed,
            problems: Vec::new(),
        }
    }

    /// Reports a problem in the entity starting at `start`, on the first line of that
    /// entity that mentions `needle` (the field's key or the offending value).
    fn report(&mut self, start: u64, end: u64, needles: &[&str], field: String, message: String) {
        let (line, column) = self.find(start, end, needles).unwrap_or((start, 1));
        self.problems.push(Problem {
            file: self.file.to_owned(),
            line,
            column,
            field,
            message,
        });
    }

    /// First line in `start..end` containing every needle as a whole token.
    fn find(&self, start: u64, end: u64, needles: &[&str]) -> Option<(u64, u64)> {
        let from = usize::try_from(start).ok()?.saturating_sub(1);
        let to = usize::try_from(end)
            .ok()?
            .saturating_sub(1)
            .min(self.lines.len());
        (from..to).find_map(|i| {
            let l = self.lines[i];
            let code = l.split(" #").next().unwrap_or(l);
            let mut col = None;
            for n in needles {
                let at = find_token(code, n)?;
                col.get_or_insert(at);
            }
            Some((i as u64 + 1, col.unwrap_or(0) as u64 + 1))
        })
    }

    fn run(mut self) -> Vec<Problem> {
        let parsed = self.parsed;
        let mut all_starts: Vec<u64> = parsed
            .sources
            .iter()
            .map(|s| s.referenced.line())
            .chain(parsed.campaigns.iter().map(|s| s.referenced.line()))
            .chain(parsed.channels.iter().map(|s| s.referenced.line()))
            .chain(parsed.posts.iter().map(|s| s.referenced.line()))
            .collect();
        all_starts.sort_unstable();
        let total = self.lines.len() as u64;
        let sources = spans(&parsed.sources, &all_starts, total);
        let campaigns = spans(&parsed.campaigns, &all_starts, total);
        let channels = spans(&parsed.channels, &all_starts, total);
        let posts = spans(&parsed.posts, &all_starts, total);

        let source_ids = self.ids("sources", &parsed.sources, &sources);
        let campaign_ids = self.ids("campaigns", &parsed.campaigns, &campaigns);
        let channel_ids = self.ids("channels", &parsed.channels, &channels);
        self.ids("posts", &parsed.posts, &posts);
        let channel_platforms: HashMap<&str, Platform> = parsed
            .channels
            .iter()
            .map(|c| (c.value.id.as_str(), c.value.platform))
            .collect();

        for (i, s) in parsed.sources.iter().enumerate() {
            let (start, end) = sources[i];
            let s = &s.value;
            let here = |f: &str| format!("sources[{i}].{f}");
            if !s.platform.can_listen() {
                self.report(
                    start,
                    end,
                    &["platform"],
                    here("platform"),
                    format!(
                        "Hark cannot listen on {} (it is a publishing channel)",
                        s.platform
                    ),
                );
            }
            match s.platform {
                Platform::Rss if s.url.is_none() => self.report(
                    start,
                    end,
                    &["id"],
                    here("url"),
                    "an rss source needs `url` (the feed address)".to_owned(),
                ),
                Platform::Rss => {}
                _ if s.query.as_deref().is_none_or(|q| q.trim().is_empty()) => self.report(
                    start,
                    end,
                    &["id"],
                    here("query"),
                    format!("a {} source needs `query` (what to search for)", s.platform),
                ),
                _ => {}
            }
            for (key, value) in [("base_url", &s.base_url), ("url", &s.url)] {
                if let Some(v) = value
                    && !(v.starts_with("https://") || v.starts_with("http://"))
                {
                    self.report(
                        start,
                        end,
                        &[key],
                        here(key),
                        format!("`{v}` is not an http(s) URL"),
                    );
                }
            }
        }

        for (i, c) in parsed.campaigns.iter().enumerate() {
            let (start, end) = campaigns[i];
            let c = &c.value;
            if c.query.trim().is_empty() {
                self.report(
                    start,
                    end,
                    &["query"],
                    format!("campaigns[{i}].query"),
                    "the query must not be empty".to_owned(),
                );
            }
            if let Some(zone) = &c.policy.time_zone
                && jiff::tz::TimeZone::get(zone).is_err()
            {
                self.report(
                    start,
                    end,
                    &["time_zone", zone],
                    format!("campaigns[{i}].policy.time_zone"),
                    format!("unknown IANA time zone `{zone}` (e.g. Europe/Berlin)"),
                );
            }
            for s in &c.sources {
                if !source_ids.contains(s.as_str()) {
                    self.report(
                        start,
                        end,
                        &[s],
                        format!("campaigns[{i}].sources"),
                        format!("unknown source `{s}`{}", suggest(s, &source_ids)),
                    );
                }
            }
            let mut rule_ids = BTreeSet::new();
            for (r, rule) in c.triggers.iter().enumerate() {
                let field = format!("campaigns[{i}].triggers[{r}]");
                if let Err(why) = validate_id(&rule.id) {
                    self.report(
                        start,
                        end,
                        &[&rule.id],
                        format!("{field}.id"),
                        why.to_owned(),
                    );
                }
                if !rule_ids.insert(rule.id.as_str()) {
                    self.report(
                        start,
                        end,
                        &[&rule.id],
                        format!("{field}.id"),
                        format!("duplicate trigger id `{}`", rule.id),
                    );
                }
                if let Err(why) = rule.when.validate() {
                    self.report(
                        start,
                        end,
                        &["when"],
                        format!("{field}.when"),
                        why.to_owned(),
                    );
                }
                for action in &rule.actions {
                    match action {
                        TriggerAction::Notify(ch) if !channel_ids.contains(ch.as_str()) => {
                            self.report(
                                start,
                                end,
                                &[ch],
                                format!("{field}.actions"),
                                format!("unknown channel `{ch}`{}", suggest(ch, &channel_ids)),
                            );
                        }
                        TriggerAction::Publish(template) => {
                            if template.channels.is_empty() {
                                self.report(
                                    start,
                                    end,
                                    &["publish"],
                                    format!("{field}.actions"),
                                    "publish needs at least one channel".to_owned(),
                                );
                            }
                            for ch in &template.channels {
                                if !channel_ids.contains(ch.as_str()) {
                                    self.report(
                                        start,
                                        end,
                                        &[ch],
                                        format!("{field}.actions"),
                                        format!(
                                            "unknown channel `{ch}`{}",
                                            suggest(ch, &channel_ids)
                                        ),
                                    );
                                }
                            }
                            for name in template.unknown_placeholders() {
                                self.report(
                                    start,
                                    end,
                                    &[&name],
                                    format!("{field}.actions"),
                                    format!(
                                        "unknown placeholder `{{{name}}}` (known: {})",
                                        hark_shared::domain::TEMPLATE_PLACEHOLDERS
                                            .map(|p| format!("{{{p}}}"))
                                            .join(", ")
                                    ),
                                );
                            }
                        }
                        _ => {}
                    }
                }
            }
        }

        for (i, c) in parsed.channels.iter().enumerate() {
            let (start, end) = channels[i];
            let c = &c.value;
            let field = |f: &str| format!("channels[{i}].{f}");
            if !c.platform.can_publish() {
                self.report(
                    start,
                    end,
                    &["platform"],
                    field("platform"),
                    format!(
                        "Hark cannot publish to {} (it is a listening source)",
                        c.platform
                    ),
                );
            }
            let webhook_based = matches!(
                c.platform,
                Platform::Slack | Platform::Discord | Platform::Webhook
            );
            if webhook_based && c.webhook.is_none() {
                self.report(
                    start,
                    end,
                    &["id"],
                    field("webhook"),
                    format!(
                        "a {} channel needs `webhook` (a secret reference like env:NAME)",
                        c.platform
                    ),
                );
            }
            if !webhook_based && c.platform.can_publish() && c.token.is_none() {
                self.report(
                    start,
                    end,
                    &["id"],
                    field("token"),
                    format!(
                        "a {} channel needs `token` (a secret reference like env:NAME)",
                        c.platform
                    ),
                );
            }
            if let Some(v) = &c.base_url
                && !(v.starts_with("https://") || v.starts_with("http://"))
            {
                self.report(
                    start,
                    end,
                    &["base_url"],
                    field("base_url"),
                    format!("`{v}` is not an http(s) URL"),
                );
            }
        }

        for (i, p) in parsed.posts.iter().enumerate() {
            let (start, end) = posts[i];
            let p = &p.value;
            if let Some(c) = &p.campaign
                && !campaign_ids.contains(c.as_str())
            {
                self.report(
                    start,
                    end,
                    &["campaign", c],
                    format!("posts[{i}].campaign"),
                    format!("unknown campaign `{c}`{}", suggest(c, &campaign_ids)),
                );
            }
            if p.channels.is_empty() {
                self.report(
                    start,
                    end,
                    &["channels"],
                    format!("posts[{i}].channels"),
                    "a post needs at least one channel".to_owned(),
                );
            }
            for ch in &p.channels {
                if !channel_ids.contains(ch.as_str()) {
                    self.report(
                        start,
                        end,
                        &[ch],
                        format!("posts[{i}].channels"),
                        format!("unknown channel `{ch}`{}", suggest(ch, &channel_ids)),
                    );
                } else if matches!(channel_platforms.get(ch.as_str()), Some(Platform::Webhook)) {
                    self.report(
                        start,
                        end,
                        &[ch],
                        format!("posts[{i}].channels"),
                        format!("`{ch}` is a webhook channel: it receives alerts, not posts"),
                    );
                }
            }
            for ch in p.overrides.keys() {
                if !p.channels.contains(ch) {
                    self.report(
                        start,
                        end,
                        &[ch],
                        format!("posts[{i}].overrides"),
                        format!("override for `{ch}`, which is not one of this post's channels"),
                    );
                }
            }
            if p.text.trim().is_empty() {
                self.report(
                    start,
                    end,
                    &["text"],
                    format!("posts[{i}].text"),
                    "the text must not be empty".to_owned(),
                );
            }
            self.check_post_on_channels(i, start, end, p);
            if let Err(hark_shared::domain::PostError::UntilBeforeStart { .. }) =
                p.validate_schedule()
            {
                self.report(
                    start,
                    end,
                    &["until"],
                    format!("posts[{i}].repeat.until"),
                    "`until` is before the post's `at`: it would never be published".to_owned(),
                );
            }
            if let Some(tz) = &p.time_zone
                && jiff::tz::TimeZone::get(tz).is_err()
            {
                self.report(
                    start,
                    end,
                    &["time_zone"],
                    format!("posts[{i}].time_zone"),
                    format!("unknown IANA time zone `{tz}`"),
                );
            }
        }
        self.problems.sort_by_key(|p| (p.line, p.column));
        self.problems
    }

    /// Checks the post's text (or each channel's override) against the limits of every
    /// channel it goes to, with the same rules the scheduler and publisher use. Unknown and
    /// webhook channels are reported by the caller.
    fn check_post_on_channels(&mut self, i: usize, start: u64, end: u64, post: &ScheduledPost) {
        let channels: Vec<&Channel> = self.parsed.channels.iter().map(|c| &c.value).collect();
        let problems = hark_shared::publishing::validate_post(post, |id| {
            channels.iter().copied().find(|c| c.id == id)
        });
        for problem in problems {
            let ChannelProblem::Text {
                channel,
                overridden,
                ..
            } = &problem
            else {
                continue;
            };
            let field = format!("posts[{i}].{}", problem.field());
            let message = problem.to_string();
            if *overridden {
                // The override's own line, after the `overrides:` key.
                let from = self
                    .find(start, end, &["overrides"])
                    .map_or(start, |(l, _)| l);
                self.report(from, end, &[channel], field, message);
            } else {
                self.report(start, end, &["text"], field, message);
            }
        }
    }

    /// Checks ids of one section (format, duplicates) and returns the set of ids.
    fn ids<E: ConfigEntity>(
        &mut self,
        section: &str,
        items: &'a [Spanned<E>],
        ranges: &[(u64, u64)],
    ) -> BTreeSet<&'a str> {
        let mut seen = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let id = item.value.id();
            let (start, end) = ranges[i];
            if let Err(why) = validate_id(id) {
                self.report(
                    start,
                    end,
                    &["id"],
                    format!("{section}[{i}].id"),
                    format!("`{id}`: {why}"),
                );
            }
            if !seen.insert(id) {
                self.report(
                    start,
                    end,
                    &["id"],
                    format!("{section}[{i}].id"),
                    format!("duplicate {} id `{id}`", E::KIND),
                );
            }
        }
        seen
    }
}

/// Line ranges `[start, end)` of each entity: from its own start line to the next
/// entity's start (in any section), or the end of the file.
fn spans<E>(items: &[Spanned<E>], all_starts: &[u64], total_lines: u64) -> Vec<(u64, u64)> {
    items
        .iter()
        .map(|item| {
            let start = item.referenced.line();
            let end = all_starts
                .iter()
                .copied()
                .find(|&s| s > start)
                .unwrap_or(total_lines + 1);
            (start, end)
        })
        .collect()
}

/// Byte offset of `needle` in `line` where it is not part of a longer word.
fn find_token(line: &str, needle: &str) -> Option<usize> {
    let is_word = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    let mut from = 0;
    while let Some(pos) = line[from..].find(needle) {
        let at = from + pos;
        let before = line[..at].chars().next_back();
        let after = line[at + needle.len()..].chars().next();
        if !before.is_some_and(is_word) && !after.is_some_and(is_word) {
            return Some(at);
        }
        from = at + needle.len().max(1);
    }
    None
}

/// ", did you mean `x`?" for a near miss (edit distance ≤ 2).
fn suggest(wrong: &str, known: &BTreeSet<&str>) -> String {
    known
        .iter()
        .map(|k| (edit_distance(wrong, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| format!(", did you mean `{k}`?"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Plans (and unless `dry_run`, applies) the desired config. Order: sources, channels,
/// campaigns, posts, so references exist before what refers to them.
pub async fn apply<S: ConfigStore>(
    store: &S,
    desired: &Desired,
    dry_run: bool,
) -> Result<Vec<PlannedChange>, StoreError> {
    let mut plan = Vec::new();
    for s in &desired.sources {
        plan.push(step(store, s, dry_run).await?);
    }
    for c in &desired.channels {
        plan.push(step(store, c, dry_run).await?);
    }
    for c in &desired.campaigns {
        plan.push(step(store, c, dry_run).await?);
    }
    for p in &desired.posts {
        plan.push(step(store, p, dry_run).await?);
    }
    Ok(plan)
}

/// What `hark apply` did: the plan of the configuration entities, and the deliveries the
/// posts were fanned out into.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub plan: Vec<PlannedChange>,
    /// One report per post; empty on a dry run (which creates no deliveries).
    pub scheduled: Vec<ScheduleReport>,
}

/// [`apply`], then (unless `dry_run`) every post is scheduled: validated against its
/// channels and fanned out into the deliveries of its next occurrence. Scheduling is
/// idempotent, so applying the same file again creates no deliveries; a post whose time or
/// channels changed has its no longer wanted queued deliveries cancelled (announced on
/// `queue`).
pub async fn apply_and_schedule<S: ConfigStore + DeliveryStore>(
    store: &S,
    queue: &dyn MessageQueue,
    desired: &Desired,
    dry_run: bool,
    now: jiff::Timestamp,
) -> Result<Applied, ApplyError> {
    // The stored versions first: a post whose schedule changed may leave queued
    // deliveries its new version no longer wants.
    let mut changed = Vec::with_capacity(desired.posts.len());
    for post in &desired.posts {
        let previous = store.get::<ScheduledPost>(&post.id).await?;
        changed.push(previous.is_some_and(|p| schedule_changed(&p, post)));
    }
    let plan = apply(store, desired, dry_run).await?;
    let mut scheduled = Vec::new();
    if !dry_run {
        for (post, changed) in desired.posts.iter().zip(changed) {
            scheduled.push(schedule_post(store, queue, post, changed, now).await?);
        }
    }
    Ok(Applied { plan, scheduled })
}

async fn step<S: ConfigStore, E: ConfigEntity>(
    store: &S,
    entity: &E,
    dry_run: bool,
) -> Result<PlannedChange, StoreError> {
    let outcome: UpsertOutcome = if dry_run {
        store.plan_upsert(entity).await?
    } else {
        store.upsert(entity).await?
    };
    Ok(PlannedChange {
        kind: kind_name(E::KIND),
        id: entity.id().to_owned(),
        action: outcome.as_str(),
    })
}

fn kind_name(kind: EntityKind) -> &'static str {
    kind.as_str()
}

#[cfg(test)]
mod tests;
