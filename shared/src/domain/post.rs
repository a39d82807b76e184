//! Scheduled posts: content to publish on one or more channels at an instant, once or on a
//! recurring schedule.
//!
//! Recurrence is computed on the wall clock of the post's IANA `time_zone` (UTC when
//! unset): a post at 09:00 Europe/Berlin stays at 09:00 Berlin time across daylight-saving
//! changes, so its UTC instant moves by an hour twice a year. A local time that does not
//! exist on some day (the spring-forward gap) is taken as the instant after the gap, and an
//! ambiguous one (the autumn fold) as its first instance, jiff's "compatible" rule (as RFC
//! 5545 and `java.time` do).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use serde::{Deserialize, Serialize};

/// A post to publish at `at` on every listed channel (one delivery per channel and
/// occurrence).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledPost {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// The instant to publish (written with an offset in files, stored in UTC); the first
    /// occurrence of a recurring post.
    pub at: Timestamp,
    /// IANA time zone for display and recurrence (`Europe/Berlin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    pub channels: Vec<String>,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Per-channel text replacing `text` (key: channel id).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overrides: BTreeMap<String, String>,
    /// Publish again on a schedule (every N days, or weekly on given days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<Recurrence>,
    /// Set on posts a trigger made (alerts and automatic posts); `hark apply` never sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<PostOrigin>,
    /// Set while the post waits for a person's approval (see [`Draft`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft: Option<Draft>,
}

/// Which trigger firing made a post, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostOrigin {
    /// The `TriggerFired` event's id.
    pub event_id: String,
    pub campaign: String,
    pub rule: String,
    pub kind: OriginKind,
}

/// What a trigger-made post is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OriginKind {
    /// A `notify` action's alert.
    Alert,
    /// A `publish` action's automatic post.
    Auto,
}

/// An automatic post waiting for approval. No delivery exists until it is approved; past
/// `expires_at` it can no longer be approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    pub expires_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<Timestamp>,
}

impl Draft {
    /// Whether the post may be published: approved, or never a draft.
    pub fn is_approved(&self) -> bool {
        self.approved_at.is_some()
    }
}

/// One occurrence of a post: its index (0 = `at`) and its instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Occurrence {
    pub index: u32,
    pub at: Timestamp,
}

/// Why a post's schedule cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    #[error("unknown IANA time zone `{0}`")]
    UnknownTimeZone(String),
    #[error("`repeat.until` ({until}) is before the post's `at` ({at})")]
    UntilBeforeStart { at: Timestamp, until: Timestamp },
}

impl ScheduledPost {
    /// The text to publish on `channel_id`: its override, or the post's text.
    pub fn text_for(&self, channel_id: &str) -> &str {
        self.overrides
            .get(channel_id)
            .map_or(self.text.as_str(), String::as_str)
    }

    pub fn is_recurring(&self) -> bool {
        self.repeat.is_some()
    }

    /// The zone recurrence is computed in: `time_zone`, or UTC.
    pub fn zone(&self) -> Result<TimeZone, PostError> {
        match &self.time_zone {
            None => Ok(TimeZone::UTC),
            Some(name) => TimeZone::get(name).map_err(|_| PostError::UnknownTimeZone(name.clone())),
        }
    }

    /// Checks what the schedule needs beyond its syntax: a known time zone, an end after
    /// the start.
    pub fn validate_schedule(&self) -> Result<(), PostError> {
        self.zone()?;
        if let Some(Recurrence {
            end: RecurrenceEnd::Until(until),
            ..
        }) = &self.repeat
            && *until < self.at
        {
            return Err(PostError::UntilBeforeStart {
                at: self.at,
                until: *until,
            });
        }
        Ok(())
    }

    /// Occurrence `index` (0 is `at`), or `None` past the end of the schedule.
    pub fn occurrence(&self, index: u32) -> Result<Option<Timestamp>, PostError> {
        let Some(repeat) = &self.repeat else {
            return Ok((index == 0).then_some(self.at));
        };
        let zone = self.zone()?;
        Ok(repeat.nth(self.at, &zone, index))
    }

    /// The first occurrence at or after `from`, or `None` when the schedule has ended.
    pub fn next_occurrence(&self, from: Timestamp) -> Result<Option<Occurrence>, PostError> {
        let Some(repeat) = &self.repeat else {
            return Ok((self.at >= from).then_some(Occurrence {
                index: 0,
                at: self.at,
            }));
        };
        let zone = self.zone()?;
        Ok(repeat.first_at_or_after(self.at, &zone, from))
    }

    /// Whether `at` is one of the post's occurrences (and which).
    pub fn occurrence_at(&self, at: Timestamp) -> Result<Option<Occurrence>, PostError> {
        Ok(self.next_occurrence(at)?.filter(|o| o.at == at))
    }
}

/// How a post repeats: a rule and an end. Written in files as
/// `repeat: { every_days: 2, count: 10 }` or `repeat: { weekly: [mon, thu], until: … }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RecurrenceSpec", into = "RecurrenceSpec")]
pub struct Recurrence {
    pub rule: RecurrenceRule,
    pub end: RecurrenceEnd,
}

/// Which days a recurring post goes out on (always at the local time of its `at`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecurrenceRule {
    /// Every `n` days after `at`'s local date.
    EveryDays(u32),
    /// On these weekdays (sorted from Monday, no duplicates), from `at`'s local date on;
    /// `at` itself is an occurrence only if it falls on one of them.
    Weekly(Vec<Weekday>),
}

/// When a recurring post stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecurrenceEnd {
    /// Until the post is changed or removed.
    Never,
    /// The last occurrence is at or before this instant.
    Until(Timestamp),
    /// This many occurrences in all.
    Count(u32),
}

/// A recurrence that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecurrenceError {
    #[error("`repeat` needs `every_days: N` or `weekly: [mon, …]`")]
    NoRule,
    #[error("`repeat` takes `every_days` or `weekly`, not both")]
    TwoRules,
    #[error("`every_days` must be at least 1")]
    ZeroDays,
    #[error("`weekly` needs at least one day (mon, tue, wed, thu, fri, sat, sun)")]
    NoWeekdays,
    #[error("unknown weekday `{0}` (write mon, tue, wed, thu, fri, sat or sun)")]
    UnknownWeekday(String),
    #[error("`repeat` takes `until` or `count`, not both")]
    TwoEnds,
    #[error("`count` must be at least 1")]
    ZeroCount,
}

impl Recurrence {
    pub fn new(rule: RecurrenceRule, end: RecurrenceEnd) -> Result<Self, RecurrenceError> {
        let rule = match rule {
            RecurrenceRule::EveryDays(0) => return Err(RecurrenceError::ZeroDays),
            RecurrenceRule::EveryDays(n) => RecurrenceRule::EveryDays(n),
            RecurrenceRule::Weekly(mut days) => {
                days.sort_by_key(|d| d.to_monday_zero_offset());
                days.dedup();
                if days.is_empty() {
                    return Err(RecurrenceError::NoWeekdays);
                }
                RecurrenceRule::Weekly(days)
            }
        };
        if end == RecurrenceEnd::Count(0) {
            return Err(RecurrenceError::ZeroCount);
        }
        Ok(Recurrence { rule, end })
    }

    /// The local date of occurrence `index`, ignoring the end (`None` past jiff's range).
    fn date_of(&self, start: Date, index: u32) -> Option<Date> {
        match &self.rule {
            RecurrenceRule::EveryDays(n) => {
                let days = i64::from(*n).checked_mul(i64::from(index))?;
                add_days(start, days)
            }
            RecurrenceRule::Weekly(days) => {
                let start_offset = start.weekday().to_monday_zero_offset();
                let monday = add_days(start, -i64::from(start_offset))?;
                // The days of the first week on or after `start`, then whole weeks.
                let first_week: Vec<i8> = days
                    .iter()
                    .map(|d| d.to_monday_zero_offset())
                    .filter(|o| *o >= start_offset)
                    .collect();
                let index = usize::try_from(index).ok()?;
                let (week, offset) = if index < first_week.len() {
                    (0, first_week[index])
                } else {
                    let rest = index - first_week.len();
                    let week = 1 + rest / days.len();
                    (week, days[rest % days.len()].to_monday_zero_offset())
                };
                let total = i64::try_from(week)
                    .ok()?
                    .checked_mul(7)?
                    .checked_add(i64::from(offset))?;
                add_days(monday, total)
            }
        }
    }

    /// Occurrence `index` of a schedule starting at `start`, end ignored; `None` past
    /// jiff's range. Strictly increasing in `index` (one occurrence per local date).
    fn unbounded(&self, start: Timestamp, zone: &TimeZone, index: u32) -> Option<Timestamp> {
        let local = start.to_zoned_datetime(zone.clone());
        let date = self.date_of(local.date(), index)?;
        if date == local.date() {
            // Exactly `at`, even when its local time is ambiguous (the autumn fold).
            return Some(start);
        }
        DateTime::from_parts(date, local.time())
            .to_zoned_datetime(zone.clone())
            .ok()
            .map(|z| z.timestamp())
    }

    fn within_end(&self, index: u32, at: Timestamp) -> bool {
        match self.end {
            RecurrenceEnd::Never => true,
            RecurrenceEnd::Until(until) => at <= until,
            RecurrenceEnd::Count(count) => index < count,
        }
    }

    fn nth(&self, start: Timestamp, zone: &TimeZone, index: u32) -> Option<Timestamp> {
        self.unbounded(start, zone, index)
            .filter(|at| self.within_end(index, *at))
    }

    /// Binary search for the first occurrence at or after `from` (occurrences increase
    /// strictly with their index, so a bisection finds it in ~32 steps however far away).
    fn first_at_or_after(
        &self,
        start: Timestamp,
        zone: &TimeZone,
        from: Timestamp,
    ) -> Option<Occurrence> {
        let (mut lo, mut hi) = (0u32, u32::MAX);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.unbounded(start, zone, mid) {
                Some(at) if at < from => lo = mid + 1,
                _ => hi = mid,
            }
        }
        let at = self.unbounded(start, zone, lo)?;
        self.within_end(lo, at)
            .then_some(Occurrence { index: lo, at })
    }
}

/// `date` plus `days`, or `None` outside jiff's range (never a panic).
fn add_days(date: Date, days: i64) -> Option<Date> {
    let span = Span::new().try_days(days).ok()?;
    date.checked_add(span).ok()
}

/// The file form of a [`Recurrence`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecurrenceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    every_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weekly: Option<Vec<WeekdayName>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    count: Option<u32>,
}

impl TryFrom<RecurrenceSpec> for Recurrence {
    type Error = RecurrenceError;

    fn try_from(spec: RecurrenceSpec) -> Result<Self, Self::Error> {
        let rule = match (spec.every_days, spec.weekly) {
            (Some(_), Some(_)) => return Err(RecurrenceError::TwoRules),
            (None, None) => return Err(RecurrenceError::NoRule),
            (Some(n), None) => RecurrenceRule::EveryDays(n),
            (None, Some(days)) => RecurrenceRule::Weekly(days.into_iter().map(|d| d.0).collect()),
        };
        let end = match (spec.until, spec.count) {
            (Some(_), Some(_)) => return Err(RecurrenceError::TwoEnds),
            (Some(until), None) => RecurrenceEnd::Until(until),
            (None, Some(count)) => RecurrenceEnd::Count(count),
            (None, None) => RecurrenceEnd::Never,
        };
        Recurrence::new(rule, end)
    }
}

impl From<Recurrence> for RecurrenceSpec {
    fn from(r: Recurrence) -> Self {
        let mut spec = RecurrenceSpec::default();
        match r.rule {
            RecurrenceRule::EveryDays(n) => spec.every_days = Some(n),
            RecurrenceRule::Weekly(days) => {
                spec.weekly = Some(days.into_iter().map(WeekdayName).collect());
            }
        }
        match r.end {
            RecurrenceEnd::Never => {}
            RecurrenceEnd::Until(until) => spec.until = Some(until),
            RecurrenceEnd::Count(count) => spec.count = Some(count),
        }
        spec
    }
}

/// A weekday written as `mon` … `sun` (full English names accepted too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WeekdayName(Weekday);

const WEEKDAYS: [(&str, &str, Weekday); 7] = [
    ("mon", "monday", Weekday::Monday),
    ("tue", "tuesday", Weekday::Tuesday),
    ("wed", "wednesday", Weekday::Wednesday),
    ("thu", "thursday", Weekday::Thursday),
    ("fri", "friday", Weekday::Friday),
    ("sat", "saturday", Weekday::Saturday),
    ("sun", "sunday", Weekday::Sunday),
];

impl FromStr for WeekdayName {
    type Err = RecurrenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        WEEKDAYS
            .iter()
            .find(|(short, long, _)| lower == *short || lower == *long)
            .map(|(_, _, d)| WeekdayName(*d))
            .ok_or_else(|| RecurrenceError::UnknownWeekday(s.to_owned()))
    }
}

impl fmt::Display for WeekdayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = WEEKDAYS
            .iter()
            .find(|(_, _, d)| *d == self.0)
            .map_or("?", |(short, _, _)| short);
        f.write_str(name)
    }
}

impl Serialize for WeekdayName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WeekdayName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(at: &str, tz: Option<&str>, repeat: Option<serde_json::Value>) -> ScheduledPost {
        let mut v = serde_json::json!({
            "id": "p", "at": at, "channels": ["c"], "text": "hello",
        });
        if let Some(tz) = tz {
            v["time_zone"] = tz.into();
        }
        if let Some(r) = repeat {
            v["repeat"] = r;
        }
        serde_json::from_value(v).unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn local(at: Timestamp, tz: &str) -> String {
        at.in_tz(tz)
            .unwrap()
            .strftime("%a %Y-%m-%d %H:%M %z")
            .to_string()
    }

    #[test]
    fn given_a_daily_post_at_nine_in_berlin_when_dst_ends_and_starts_then_it_stays_at_nine_local() {
        // 2026-10-25 is the autumn change in Europe/Berlin, 2027-03-28 the spring one.
        let p = post(
            "2026-10-24T09:00:00+02:00",
            Some("Europe/Berlin"),
            Some(serde_json::json!({"every_days": 1})),
        );
        let before = p.occurrence(0).unwrap().unwrap();
        let after = p.occurrence(1).unwrap().unwrap();
        assert_eq!(local(before, "Europe/Berlin"), "Sat 2026-10-24 09:00 +0200");
        assert_eq!(local(after, "Europe/Berlin"), "Sun 2026-10-25 09:00 +0100");
        assert_eq!(
            after.as_second() - before.as_second(),
            25 * 3600,
            "the UTC gap is 25 h"
        );
        let spring = p.occurrence(155).unwrap().unwrap();
        assert_eq!(local(spring, "Europe/Berlin"), "Sun 2027-03-28 09:00 +0200");
        assert_eq!(spring.to_string(), "2027-03-28T07:00:00Z");
    }

    #[test]
    fn given_a_local_time_inside_the_spring_gap_then_the_instant_after_the_gap_is_used() {
        let p = post(
            "2027-03-27T02:30:00+01:00",
            Some("Europe/Berlin"),
            Some(serde_json::json!({"every_days": 1, "count": 3})),
        );
        // 02:30 does not exist on 2027-03-28: compatible disambiguation gives 03:30 CEST.
        let gap = p.occurrence(1).unwrap().unwrap();
        assert_eq!(local(gap, "Europe/Berlin"), "Sun 2027-03-28 03:30 +0200");
        assert_eq!(
            local(p.occurrence(2).unwrap().unwrap(), "Europe/Berlin"),
            "Mon 2027-03-29 02:30 +0200"
        );
        assert_eq!(p.occurrence(3).unwrap(), None, "count 3 ends after index 2");
    }

    #[test]
    fn given_a_weekly_post_when_enumerated_then_only_the_listed_days_follow_at() {
        // 2026-12-02 is a Wednesday.
        let p = post(
            "2026-12-02T18:00:00Z",
            None,
            Some(serde_json::json!({"weekly": ["thu", "MON", "thursday"], "count": 4})),
        );
        let days: Vec<String> = (0..5)
            .filter_map(|i| p.occurrence(i).unwrap())
            .map(|t| local(t, "UTC"))
            .collect();
        assert_eq!(
            days,
            [
                "Thu 2026-12-03 18:00 +0000",
                "Mon 2026-12-07 18:00 +0000",
                "Thu 2026-12-10 18:00 +0000",
                "Mon 2026-12-14 18:00 +0000",
            ]
        );
        let Some(Recurrence {
            rule: RecurrenceRule::Weekly(sorted),
            ..
        }) = &p.repeat
        else {
            panic!("weekly");
        };
        assert_eq!(
            sorted,
            &[Weekday::Monday, Weekday::Thursday],
            "sorted, deduplicated"
        );
    }

    #[test]
    fn given_a_long_pause_when_asking_for_the_next_occurrence_then_it_rolls_forward_without_enumerating()
     {
        let p = post(
            "2026-01-05T09:00:00+01:00",
            Some("Europe/Berlin"),
            Some(serde_json::json!({"every_days": 3})),
        );
        let next = p
            .next_occurrence(ts("2031-06-01T00:00:00Z"))
            .unwrap()
            .unwrap();
        assert!(next.at >= ts("2031-06-01T00:00:00Z"));
        let previous = p.occurrence(next.index - 1).unwrap().unwrap();
        assert!(previous < ts("2031-06-01T00:00:00Z"));
        assert_eq!(next.at.in_tz("Europe/Berlin").unwrap().hour(), 9);
        assert_eq!(p.occurrence_at(next.at).unwrap(), Some(next));
        assert_eq!(
            p.occurrence_at(next.at + jiff::SignedDuration::from_secs(1))
                .unwrap(),
            None
        );
    }

    #[test]
    fn given_an_until_when_past_it_then_no_next_occurrence() {
        let p = post(
            "2026-12-01T10:00:00Z",
            None,
            Some(serde_json::json!({"every_days": 1, "until": "2026-12-03T10:00:00Z"})),
        );
        assert_eq!(p.occurrence(2).unwrap(), Some(ts("2026-12-03T10:00:00Z")));
        assert_eq!(p.occurrence(3).unwrap(), None);
        assert_eq!(p.next_occurrence(ts("2026-12-03T10:00:01Z")).unwrap(), None);
    }

    #[test]
    fn given_a_one_off_post_then_its_only_occurrence_is_at() {
        let p = post("2026-12-01T10:00:00Z", None, None);
        assert_eq!(p.occurrence(0).unwrap(), Some(p.at));
        assert_eq!(p.occurrence(1).unwrap(), None);
        assert_eq!(
            p.next_occurrence(ts("2026-11-01T00:00:00Z")).unwrap(),
            Some(Occurrence { index: 0, at: p.at })
        );
        assert_eq!(p.next_occurrence(ts("2026-12-02T00:00:00Z")).unwrap(), None);
    }

    #[test]
    fn given_bad_recurrences_when_parsed_then_each_has_its_own_error() {
        for (repeat, message) in [
            (serde_json::json!({}), "needs `every_days: N`"),
            (
                serde_json::json!({"every_days": 1, "weekly": ["mon"]}),
                "not both",
            ),
            (serde_json::json!({"every_days": 0}), "at least 1"),
            (serde_json::json!({"weekly": []}), "at least one day"),
            (
                serde_json::json!({"weekly": ["mo"]}),
                "unknown weekday `mo`",
            ),
            (
                serde_json::json!({"every_days": 1, "until": "2027-01-01T00:00:00Z", "count": 3}),
                "`until` or `count`",
            ),
            (
                serde_json::json!({"every_days": 1, "count": 0}),
                "`count` must be at least 1",
            ),
            (
                serde_json::json!({"every_days": 1, "every": "1d"}),
                "unknown field `every`",
            ),
        ] {
            let v = serde_json::json!({
                "id": "p", "at": "2026-12-01T10:00:00Z", "channels": ["c"], "text": "x",
                "repeat": repeat,
            });
            let err = serde_json::from_value::<ScheduledPost>(v)
                .unwrap_err()
                .to_string();
            assert!(err.contains(message), "{repeat}: {err}");
        }
    }

    #[test]
    fn given_schedule_problems_then_validation_names_them() {
        let p = post("2026-12-01T10:00:00Z", Some("Mars/Olympus"), None);
        assert_eq!(
            p.validate_schedule(),
            Err(PostError::UnknownTimeZone("Mars/Olympus".into()))
        );
        let p = post(
            "2026-12-01T10:00:00Z",
            None,
            Some(serde_json::json!({"every_days": 1, "until": "2026-11-30T00:00:00Z"})),
        );
        assert!(matches!(
            p.validate_schedule(),
            Err(PostError::UntilBeforeStart { .. })
        ));
    }

    #[test]
    fn given_a_recurring_post_when_serialised_then_it_reads_back_equal() {
        let p = post(
            "2026-12-02T18:00:00Z",
            Some("America/New_York"),
            Some(serde_json::json!({"weekly": ["fri", "tue"], "until": "2027-02-01T00:00:00Z"})),
        );
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["repeat"]["weekly"], serde_json::json!(["tue", "fri"]));
        assert_eq!(serde_json::from_value::<ScheduledPost>(v).unwrap(), p);
        assert_eq!(p.text_for("c"), "hello");
    }

    proptest::proptest! {
        #[test]
        fn occurrences_strictly_increase_and_next_occurrence_agrees(
            start in 1_700_000_000i64..1_900_000_000,
            every in 1u32..10,
            weekly_mask in 1u8..128,
            probe in 0i64..(400 * 86_400),
            use_weekly: bool,
            zone in proptest::sample::select(vec!["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Apia"]),
        ) {
            let days: Vec<&str> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                .iter()
                .enumerate()
                .filter(|(i, _)| weekly_mask & (1 << i) != 0)
                .map(|(_, d)| *d)
                .collect();
            let repeat = if use_weekly {
                serde_json::json!({"weekly": days})
            } else {
                serde_json::json!({"every_days": every})
            };
            let at = Timestamp::from_second(start).unwrap();
            let p = post(&at.to_string(), Some(zone), Some(repeat));
            let mut previous = None;
            for i in 0..30 {
                let t = p.occurrence(i).unwrap().unwrap();
                if let Some(prev) = previous {
                    proptest::prop_assert!(t > prev, "occurrence {} not after {}", i, i - 1);
                }
                previous = Some(t);
            }
            let from = at + jiff::SignedDuration::from_secs(probe);
            let next = p.next_occurrence(from).unwrap().unwrap();
            proptest::prop_assert!(next.at >= from);
            if next.index > 0 {
                proptest::prop_assert!(p.occurrence(next.index - 1).unwrap().unwrap() < from);
            }
            proptest::prop_assert_eq!(p.occurrence(next.index).unwrap(), Some(next.at));
        }
    }
}
