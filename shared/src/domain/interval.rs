//! Human-written lengths of time in config files: `90s`, `5m`, `1h`, `1h30m`, `7d`.

use std::fmt;
use std::str::FromStr;

use jiff::SignedDuration;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A positive length of time with whole-second precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    seconds: u64,
}

impl Interval {
    pub const fn from_secs(seconds: u64) -> Self {
        Self { seconds }
    }

    pub const fn from_mins(minutes: u64) -> Self {
        Self {
            seconds: minutes * 60,
        }
    }

    pub const fn as_secs(self) -> u64 {
        self.seconds
    }

    pub fn as_duration(self) -> SignedDuration {
        SignedDuration::from_secs(i64::try_from(self.seconds).unwrap_or(i64::MAX))
    }
}

/// The text is not a length of time Hark understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration `{text}`: {reason} (write it like 90s, 5m, 1h30m or 7d)")]
pub struct InvalidInterval {
    pub text: String,
    pub reason: &'static str,
}

impl FromStr for Interval {
    type Err = InvalidInterval;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason| InvalidInterval {
            text: text.to_owned(),
            reason,
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(err("it is empty"));
        }
        let mut total: u64 = 0;
        let mut digits = String::new();
        for c in trimmed.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            if c.is_whitespace() {
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                _ => return Err(err("unknown unit (use s, m, h or d)")),
            };
            if digits.is_empty() {
                return Err(err("a unit needs a number before it"));
            }
            let n: u64 = digits.parse().map_err(|_| err("number too large"))?;
            digits.clear();
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| err("number too large"))?;
        }
        if !digits.is_empty() {
            return Err(err("a number needs a unit after it"));
        }
        if total == 0 {
            return Err(err("it must be longer than zero"));
        }
        Ok(Interval { seconds: total })
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.seconds;
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

impl Serialize for Interval {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_common_spellings_when_parsed_then_seconds_are_right() {
        assert_eq!("90s".parse::<Interval>().unwrap().as_secs(), 90);
        assert_eq!("5m".parse::<Interval>().unwrap().as_secs(), 300);
        assert_eq!("1h30m".parse::<Interval>().unwrap().as_secs(), 5400);
        assert_eq!("1h 30m".parse::<Interval>().unwrap().as_secs(), 5400);
        assert_eq!("7d".parse::<Interval>().unwrap().as_secs(), 604_800);
    }

    #[test]
    fn given_bad_spellings_when_parsed_then_error_explains() {
        for (text, reason) in [
            ("", "empty"),
            ("5", "needs a unit"),
            ("m", "needs a number"),
            ("5w", "unknown unit"),
            ("0m", "longer than zero"),
            ("99999999999999999999s", "too large"),
        ] {
            let err = text.parse::<Interval>().unwrap_err();
            assert!(err.to_string().contains(reason), "{text}: {err}");
        }
    }

    #[test]
    fn given_an_interval_when_displayed_then_it_parses_back() {
        for s in [59, 60, 3600, 5400, 90_061] {
            let i = Interval::from_secs(s);
            assert_eq!(i.to_string().parse::<Interval>().unwrap(), i);
        }
        assert_eq!(Interval::from_secs(5400).to_string(), "1h30m");
    }
}
