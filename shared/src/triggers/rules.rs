//! The trigger conditions as pure functions of the hourly aggregates (volume spike,
//! negative share) or of the mentions a batch stored (influencer, keyword).
//!
//! Windows slide by the hour: a rule with `window: 6h` evaluated at 14:20 looks at
//! [09:00, 15:00) — the current hour and the five before it. A firing is identified by its
//! window's start, so a rule fires at most once per window (and not again before its
//! cooldown has passed).

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use crate::domain::{Interval, Mention};
use crate::events::Figures;
use crate::ports::{Counters, truncate_to_hour};
use crate::query::{PreparedText, Query};

const HOUR: SignedDuration = SignedDuration::from_hours(1);
const WEEK: SignedDuration = SignedDuration::from_hours(24 * 7);

/// How many previous windows the rolling baseline averages at most (and never more than a
/// week back).
pub const ROLLING_WINDOWS: i64 = 24;
/// Fewer baseline samples than this: not enough history to call anything a spike.
pub const MIN_BASELINE_SAMPLES: usize = 3;
/// Weeks of same-hour-of-week history the seasonal baseline uses.
pub const SEASONAL_WEEKS: i64 = 4;

/// The hourly totals of one campaign, all platforms summed, by hour start.
pub type HourlySeries = BTreeMap<Timestamp, Counters>;

/// Whether a rule fires, and the figures either way (so "why not" can be shown too).
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Fire(Figures),
    Quiet { figures: Figures, why: String },
}

impl Verdict {
    pub fn fires(&self) -> bool {
        matches!(self, Verdict::Fire(_))
    }

    pub fn figures(&self) -> &Figures {
        match self {
            Verdict::Fire(f) | Verdict::Quiet { figures: f, .. } => f,
        }
    }
}

/// The window a rule looks at when evaluated at `now`: `[end - window, end)` where `end`
/// is the end of the current hour. Windows are whole hours (validated on apply); anything
/// shorter counts as one hour.
pub fn window_at(window: Interval, now: Timestamp) -> (Timestamp, Timestamp) {
    let hours = (window.as_secs() / 3600).max(1);
    let end = truncate_to_hour(now) + HOUR;
    let start = end - SignedDuration::from_hours(i64::try_from(hours).unwrap_or(i64::MAX / 3600));
    (start, end)
}

/// Sum of the series over `[from, to)`.
pub fn sum(series: &HourlySeries, from: Timestamp, to: Timestamp) -> Counters {
    let mut total = Counters::default();
    for (_, c) in series.range(from..to) {
        total.add(c);
    }
    total
}

/// The ranges [`volume_spike`] reads for a window starting at `start` of `len`: the
/// rolling history (up to a week back) and the same window 1–4 weeks ago. The loader
/// fetches these; the rule only sees what they cover.
pub fn spike_history_ranges(start: Timestamp, end: Timestamp) -> Vec<(Timestamp, Timestamp)> {
    let len = end.duration_since(start);
    let rolling_back = (len * i32::try_from(ROLLING_WINDOWS).unwrap_or(24)).min(WEEK);
    let mut ranges = vec![(start - rolling_back, end)];
    for week in 1..=SEASONAL_WEEKS {
        let shift = WEEK * i32::try_from(week).unwrap_or(1);
        ranges.push((start - shift, end - shift));
    }
    ranges
}

/// Expected mentions per window: `(mean, standard deviation, method)`, or `None` without
/// enough history.
///
/// Same hour of week when at least [`MIN_BASELINE_SAMPLES`] of the last
/// [`SEASONAL_WEEKS`] weeks had mentions in this window (launch days and weekly rhythms
/// make "Tuesday 9:00" the fair comparison); otherwise the rolling mean of up to
/// [`ROLLING_WINDOWS`] previous windows (at most a week back), counted only from the first
/// hour the campaign had any mentions, so a new campaign is not compared with zeros from
/// before it existed.
pub fn baseline(
    series: &HourlySeries,
    start: Timestamp,
    end: Timestamp,
) -> Option<(f64, f64, &'static str)> {
    let len = end.duration_since(start);
    let seasonal: Vec<f64> = (1..=SEASONAL_WEEKS)
        .map(|w| WEEK * i32::try_from(w).unwrap_or(1))
        .map(|shift| sum(series, start - shift, end - shift).mentions as f64)
        .filter(|n| *n > 0.0)
        .collect();
    if seasonal.len() >= MIN_BASELINE_SAMPLES {
        let (mean, sd) = mean_sd(&seasonal);
        return Some((mean, sd, "same hour of week"));
    }
    let first = series
        .iter()
        .find(|(_, c)| c.mentions > 0)
        .map(|(hour, _)| *hour)?;
    let oldest = start - (len * i32::try_from(ROLLING_WINDOWS).unwrap_or(24)).min(WEEK);
    let mut samples = Vec::new();
    let mut to = start;
    while to - len >= oldest && to - len >= first {
        samples.push(sum(series, to - len, to).mentions as f64);
        to -= len;
    }
    if samples.len() < MIN_BASELINE_SAMPLES {
        return None;
    }
    let (mean, sd) = mean_sd(&samples);
    Some((mean, sd, "rolling mean of previous windows"))
}

fn mean_sd(samples: &[f64]) -> (f64, f64) {
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Mentions in the window above `baseline + k·σ` (and at least `min_mentions`).
///
/// σ is floored at √baseline (and at 1): counts are Poisson-like, so a flat history
/// (σ = 0) must not make one extra mention a "spike".
pub fn volume_spike(
    series: &HourlySeries,
    k: f64,
    window: Interval,
    min_mentions: u64,
    now: Timestamp,
) -> Verdict {
    let (start, end) = window_at(window, now);
    let count = sum(series, start, end).mentions;
    let mut figures = Figures {
        count,
        ..Figures::default()
    };
    let Some((mean, sd, method)) = baseline(series, start, end) else {
        return Verdict::Quiet {
            figures,
            why: "not enough history for a baseline".to_owned(),
        };
    };
    let sigma = sd.max(mean.sqrt()).max(1.0);
    let threshold = mean + k * sigma;
    figures.baseline = Some(round2(mean));
    figures.stddev = Some(round2(sd));
    figures.baseline_method = Some(method.to_owned());
    figures.threshold = Some(round2(threshold));
    if count < min_mentions.max(1) {
        return Verdict::Quiet {
            figures,
            why: format!("{count} mentions, fewer than the minimum {min_mentions}"),
        };
    }
    if (count as f64) <= threshold {
        return Verdict::Quiet {
            figures,
            why: format!("{count} mentions, not above {threshold:.1}"),
        };
    }
    Verdict::Fire(figures)
}

/// Negative mentions' share of the scored mentions in the window above `above`, with at
/// least `min_mentions` scored (mentions in languages without a model do not count).
pub fn negative_share(
    series: &HourlySeries,
    above: f64,
    window: Interval,
    min_mentions: u64,
    now: Timestamp,
) -> Verdict {
    let (start, end) = window_at(window, now);
    let total = sum(series, start, end);
    let scored = total.positive + total.neutral + total.negative;
    let share = if scored == 0 {
        0.0
    } else {
        total.negative as f64 / scored as f64
    };
    let figures = Figures {
        count: total.mentions,
        scored: Some(scored),
        negative: Some(total.negative),
        share: Some(round4(share)),
        threshold: Some(above),
        ..Figures::default()
    };
    if scored < min_mentions.max(1) {
        return Verdict::Quiet {
            figures,
            why: format!("{scored} scored mentions, fewer than the minimum {min_mentions}"),
        };
    }
    if share <= above {
        return Verdict::Quiet {
            figures,
            why: format!(
                "negative share {:.0}% not above {:.0}%",
                share * 100.0,
                above * 100.0
            ),
        };
    }
    Verdict::Fire(figures)
}

/// The mention by the most-followed author with at least `min_followers`, if any.
pub fn influencer<'a>(mentions: &[&'a Mention], min_followers: u64) -> Option<&'a Mention> {
    mentions
        .iter()
        .filter(|m| m.author.followers.is_some_and(|f| f >= min_followers))
        .max_by_key(|m| (m.author.followers, std::cmp::Reverse(m.created_at)))
        .copied()
}

/// The mentions matching the rule's sub-query.
pub fn keyword<'a>(mentions: &[&'a Mention], query: &Query) -> Vec<&'a Mention> {
    mentions
        .iter()
        .filter(|m| {
            query.matches_prepared(
                &PreparedText::new(&m.text),
                Some(m.author.handle.as_str()),
                m.lang.as_deref(),
            )
        })
        .copied()
        .collect()
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Author, Engagement, Platform};

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn hours(from: &str, counts: &[u64]) -> HourlySeries {
        let start = t(from);
        counts
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    start + SignedDuration::from_hours(i as i64),
                    Counters {
                        mentions: *n,
                        neutral: *n,
                        ..Counters::default()
                    },
                )
            })
            .collect()
    }

    fn one_hour() -> Interval {
        Interval::from_secs(3600)
    }

    #[test]
    fn given_a_time_then_the_window_ends_with_the_current_hour() {
        let (s, e) = window_at(Interval::from_secs(6 * 3600), t("2026-03-01T14:20:00Z"));
        assert_eq!(s, t("2026-03-01T09:00:00Z"));
        assert_eq!(e, t("2026-03-01T15:00:00Z"));
        let (s, e) = window_at(Interval::from_secs(60), t("2026-03-01T14:20:00Z"));
        assert_eq!(
            (s, e),
            (t("2026-03-01T14:00:00Z"), t("2026-03-01T15:00:00Z"))
        );
    }

    #[test]
    fn given_a_steady_history_then_a_jump_above_k_sigma_fires_and_the_boundary_does_not() {
        // 24 hours of 10/h, then the current hour.
        let mut counts = vec![10; 24];
        // mean 10, sd 0 → σ floored at √10 = 3.16; k = 3 → threshold 19.49.
        counts.push(19);
        let series = hours("2026-03-01T00:00:00Z", &counts);
        let now = t("2026-03-02T00:30:00Z");
        let quiet = volume_spike(&series, 3.0, one_hour(), 5, now);
        assert!(!quiet.fires(), "{quiet:?}");
        assert_eq!(quiet.figures().count, 19);
        assert_eq!(quiet.figures().threshold, Some(19.49));
        counts[24] = 20;
        let series = hours("2026-03-01T00:00:00Z", &counts);
        let fired = volume_spike(&series, 3.0, one_hour(), 5, now);
        assert!(fired.fires(), "{fired:?}");
        let f = fired.figures();
        assert_eq!(f.baseline, Some(10.0));
        assert_eq!(
            f.baseline_method.as_deref(),
            Some("rolling mean of previous windows")
        );
    }

    #[test]
    fn given_a_spike_below_the_minimum_volume_then_it_stays_quiet() {
        let mut counts = vec![0; 23];
        counts.insert(0, 1); // the campaign's first mention, 24 h ago
        counts.push(6);
        let series = hours("2026-03-01T00:00:00Z", &counts);
        let now = t("2026-03-02T00:10:00Z");
        let v = volume_spike(&series, 2.0, one_hour(), 10, now);
        assert!(!v.fires());
        assert!(matches!(&v, Verdict::Quiet { why, .. } if why.contains("minimum 10")));
        assert!(volume_spike(&series, 2.0, one_hour(), 5, now).fires());
    }

    #[test]
    fn given_a_new_campaign_then_no_spike_without_three_windows_of_history() {
        let series = hours("2026-03-01T22:00:00Z", &[3, 4, 50]);
        let now = t("2026-03-02T00:05:00Z");
        let v = volume_spike(&series, 3.0, one_hour(), 1, now);
        assert!(
            matches!(&v, Verdict::Quiet { why, .. } if why.contains("not enough history")),
            "{v:?}"
        );
        let series = hours("2026-03-01T21:00:00Z", &[3, 4, 3, 50]);
        assert!(volume_spike(&series, 3.0, one_hour(), 1, now).fires());
    }

    #[test]
    fn given_four_weeks_of_history_then_the_same_hour_of_week_is_the_baseline() {
        // Every Monday 09:00 is busy (100), other hours quiet (5): a Monday-morning 110 is
        // normal, not a spike, although the rolling mean says 5.
        let now = t("2026-03-30T09:30:00Z"); // a Monday
        let mut series = HourlySeries::new();
        let mut hour = t("2026-03-02T00:00:00Z");
        while hour <= truncate_to_hour(now) {
            let is_monday_nine = hour.to_zoned_datetime(jiff::tz::TimeZone::UTC).weekday()
                == jiff::civil::Weekday::Monday
                && hour.to_zoned_datetime(jiff::tz::TimeZone::UTC).hour() == 9;
            let n = if hour == truncate_to_hour(now) {
                110
            } else if is_monday_nine {
                100
            } else {
                5
            };
            series.insert(
                hour,
                Counters {
                    mentions: n,
                    ..Counters::default()
                },
            );
            hour += HOUR;
        }
        let v = volume_spike(&series, 3.0, one_hour(), 10, now);
        assert_eq!(
            v.figures().baseline_method.as_deref(),
            Some("same hour of week")
        );
        assert_eq!(v.figures().baseline, Some(100.0));
        assert!(!v.fires(), "{v:?}");
    }

    #[test]
    fn given_negative_share_then_it_fires_strictly_above_the_threshold_with_enough_scored() {
        let now = t("2026-03-02T10:15:00Z");
        let series: HourlySeries = [(
            t("2026-03-02T10:00:00Z"),
            Counters {
                mentions: 25,
                positive: 3,
                neutral: 9,
                negative: 8,
                unscored: 5,
                ..Counters::default()
            },
        )]
        .into();
        // 8 / 20 = 0.40: not above 0.40.
        let v = negative_share(&series, 0.4, one_hour(), 20, now);
        assert!(!v.fires(), "{v:?}");
        assert_eq!(v.figures().share, Some(0.4));
        assert_eq!(v.figures().scored, Some(20));
        assert!(negative_share(&series, 0.39, one_hour(), 20, now).fires());
        // Too few scored mentions (the 5 unscored do not count).
        let v = negative_share(&series, 0.1, one_hour(), 21, now);
        assert!(matches!(&v, Verdict::Quiet { why, .. } if why.contains("20 scored")));
        // An hour outside the window does not count.
        let later = t("2026-03-02T11:01:00Z");
        assert_eq!(
            negative_share(&series, 0.1, one_hour(), 1, later)
                .figures()
                .scored,
            Some(0)
        );
    }

    fn mention(id: &str, followers: Option<u64>, text: &str) -> Mention {
        Mention {
            platform: Platform::Mastodon,
            native_id: id.into(),
            url: format!("https://m.example/@a/{id}"),
            author: Author {
                handle: format!("user{id}"),
                display_name: None,
                followers,
                url: None,
            },
            text: text.into(),
            created_at: t("2026-03-02T10:00:00Z"),
            lang: Some("en".into()),
            sentiment: None,
            engagement: Engagement::default(),
            campaigns: vec!["launch".into()],
            source_id: None,
        }
    }

    #[test]
    fn given_authors_then_the_most_followed_at_or_above_the_minimum_is_the_influencer() {
        let a = mention("1", Some(9_999), "hark");
        let b = mention("2", Some(10_000), "hark");
        let c = mention("3", Some(250_000), "hark");
        let d = mention("4", None, "hark");
        assert_eq!(influencer(&[&a, &d], 10_000), None);
        assert_eq!(influencer(&[&a, &b], 10_000).unwrap().native_id, "2");
        assert_eq!(
            influencer(&[&a, &b, &c, &d], 10_000).unwrap().native_id,
            "3"
        );
    }

    #[test]
    fn given_a_sub_query_then_only_matching_mentions_count() {
        let q = Query::parse("refund OR \"data loss\"").unwrap();
        let a = mention("1", None, "I want a REFUND now");
        let b = mention("2", None, "lost some data and the loss hurts");
        let c = mention("3", None, "Data loss after the update!");
        let hits: Vec<_> = keyword(&[&a, &b, &c], &q)
            .iter()
            .map(|m| m.native_id.clone())
            .collect();
        assert_eq!(hits, vec!["1", "3"]);
    }

    #[test]
    fn given_a_window_then_the_history_ranges_cover_a_week_and_four_weeks_ago() {
        let (s, e) = window_at(one_hour(), t("2026-03-30T09:30:00Z"));
        let ranges = spike_history_ranges(s, e);
        assert_eq!(ranges.len(), 5);
        assert_eq!(ranges[0], (s - SignedDuration::from_hours(24), e));
        assert_eq!(ranges[4].0, s - WEEK * 4);
    }
}
