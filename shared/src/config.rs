//! Process configuration from `HARK_*` environment variables. Every variable name lives here.

use std::path::PathBuf;

use crate::ports::QueueName;

pub const ENV_BACKEND: &str = "HARK_BACKEND";
pub const ENV_DATA_DIR: &str = "HARK_DATA_DIR";
pub const ENV_TABLE: &str = "HARK_TABLE";
pub const ENV_POLL_QUEUE_URL: &str = "HARK_POLL_QUEUE_URL";
pub const ENV_MENTIONS_QUEUE_URL: &str = "HARK_MENTIONS_QUEUE_URL";
pub const ENV_PUBLISH_QUEUE_URL: &str = "HARK_PUBLISH_QUEUE_URL";
pub const ENV_EVENTS_QUEUE_URL: &str = "HARK_EVENTS_QUEUE_URL";
pub const ENV_ALLOW_PRIVATE_URLS: &str = "HARK_ALLOW_PRIVATE_URLS";
pub const ENV_RETENTION_DAYS: &str = "HARK_RETENTION_DAYS";
pub const ENV_MAX_RECEIVE_COUNT: &str = "HARK_MAX_RECEIVE_COUNT";
pub const ENV_LANGUAGES: &str = "HARK_LANGUAGES";
/// Platforms this deployment may call (`mastodon,bluesky,slack`; unset or `all`: every one).
pub const ENV_ENABLED_PLATFORMS: &str = "HARK_ENABLED_PLATFORMS";
/// EventBridge bus name or ARN the actions function puts events on (unset: no bus).
pub const ENV_EVENT_BUS: &str = "HARK_EVENT_BUS";

/// Which storage and queue implementation to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// SQLite under `HARK_DATA_DIR` (laptop, demo).
    Embedded,
    /// DynamoDB + SQS.
    Aws,
}

impl std::str::FromStr for BackendKind {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "embedded" => Ok(BackendKind::Embedded),
            "aws" => Ok(BackendKind::Aws),
            other => Err(ConfigError::Invalid {
                var: ENV_BACKEND,
                value: other.to_owned(),
                expected: "embedded or aws",
            }),
        }
    }
}

/// The configuration is missing something or has a value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is not set")]
    Missing { var: &'static str },
    #[error("{var}=`{value}` is not valid: expected {expected}")]
    Invalid {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// Queue URLs (AWS backend).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueUrls {
    pub poll: Option<String>,
    pub mentions: Option<String>,
    pub publish: Option<String>,
    pub events: Option<String>,
}

impl QueueUrls {
    pub fn get(&self, queue: QueueName) -> Option<&str> {
        match queue {
            QueueName::Poll => self.poll.as_deref(),
            QueueName::Mentions => self.mentions.as_deref(),
            QueueName::Publish => self.publish.as_deref(),
            QueueName::Events => self.events.as_deref(),
            _ => None,
        }
    }
}

/// Everything Hark reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub backend: BackendKind,
    pub data_dir: PathBuf,
    pub table: Option<String>,
    pub queues: QueueUrls,
    /// Allow private, loopback and link-local URLs (tests and the demo).
    pub allow_private_urls: bool,
    /// How long mentions are kept (DynamoDB TTL).
    pub retention_days: u32,
    /// Receives before a message goes to its DLQ (embedded backend; SAM sets it for SQS).
    pub max_receive_count: u32,
    /// ISO 639-1 codes language detection may answer with (`HARK_LANGUAGES=en,de`).
    pub languages: Vec<String>,
    /// The EventBridge bus for Hark's events (`HARK_EVENT_BUS`); `None`: events stay on
    /// the events queue only.
    pub event_bus: Option<String>,
    /// The platforms this deployment may listen to or publish on (`HARK_ENABLED_PLATFORMS`);
    /// `None`: all of them.
    pub enabled_platforms: Option<std::collections::BTreeSet<crate::domain::Platform>>,
}

impl Config {
    pub const DEFAULT_RETENTION_DAYS: u32 = 90;
    pub const DEFAULT_MAX_RECEIVE_COUNT: u32 = 5;

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let backend = match get(ENV_BACKEND) {
            Some(v) => v.parse()?,
            None => BackendKind::Embedded,
        };
        let allow_private_urls = match get(ENV_ALLOW_PRIVATE_URLS).as_deref() {
            None | Some("0") | Some("false") => false,
            Some("1") | Some("true") => true,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: ENV_ALLOW_PRIVATE_URLS,
                    value: other.to_owned(),
                    expected: "1 or 0",
                });
            }
        };
        let number = |var: &'static str, default: u32, min: u32, max: u32| match get(var) {
            None => Ok(default),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or(ConfigError::Invalid {
                    var,
                    value: v,
                    expected: "a whole number in range",
                }),
        };
        Ok(Config {
            backend,
            data_dir: get(ENV_DATA_DIR)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".hark")),
            table: get(ENV_TABLE),
            event_bus: get(ENV_EVENT_BUS),
            enabled_platforms: match get(ENV_ENABLED_PLATFORMS) {
                None => None,
                Some(v) if v.trim().eq_ignore_ascii_case("all") => None,
                Some(v) => Some(
                    v.split(',')
                        .map(|p| p.trim().to_lowercase())
                        .filter(|p| !p.is_empty())
                        .map(|p| p.parse::<crate::domain::Platform>())
                        .collect::<Result<_, _>>()
                        .map_err(|_| ConfigError::Invalid {
                            var: ENV_ENABLED_PLATFORMS,
                            value: v.clone(),
                            expected: "`all` or comma-separated platform names like mastodon,bluesky,slack",
                        })?,
                ),
            },
            queues: QueueUrls {
                poll: get(ENV_POLL_QUEUE_URL),
                mentions: get(ENV_MENTIONS_QUEUE_URL),
                publish: get(ENV_PUBLISH_QUEUE_URL),
                events: get(ENV_EVENTS_QUEUE_URL),
            },
            allow_private_urls,
            retention_days: number(ENV_RETENTION_DAYS, Self::DEFAULT_RETENTION_DAYS, 1, 3650)?,
            max_receive_count: number(
                ENV_MAX_RECEIVE_COUNT,
                Self::DEFAULT_MAX_RECEIVE_COUNT,
                1,
                1000,
            )?,
            languages: match get(ENV_LANGUAGES) {
                None => vec!["en".to_owned(), "de".to_owned()],
                Some(v) => {
                    let codes: Vec<String> = v
                        .split(',')
                        .map(|c| c.trim().to_lowercase())
                        .filter(|c| !c.is_empty())
                        .collect();
                    if codes.is_empty() || codes.iter().any(|c| c.len() != 2) {
                        return Err(ConfigError::Invalid {
                            var: ENV_LANGUAGES,
                            value: v,
                            expected: "comma-separated ISO 639-1 codes like en,de",
                        });
                    }
                    codes
                }
            },
        })
    }

    /// The DynamoDB table name, or a clear error naming the variable.
    pub fn require_table(&self) -> Result<&str, ConfigError> {
        self.table
            .as_deref()
            .ok_or(ConfigError::Missing { var: ENV_TABLE })
    }

    /// A queue URL, or a clear error naming the variable.
    pub fn require_queue(&self, queue: QueueName) -> Result<&str, ConfigError> {
        let var = match queue {
            QueueName::Poll => ENV_POLL_QUEUE_URL,
            QueueName::Mentions => ENV_MENTIONS_QUEUE_URL,
            QueueName::Publish => ENV_PUBLISH_QUEUE_URL,
            _ => ENV_EVENTS_QUEUE_URL,
        };
        self.queues.get(queue).ok_or(ConfigError::Missing { var })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn given_nothing_set_then_defaults_are_local_and_safe() {
        let c = config(&[]).unwrap();
        assert_eq!(c.backend, BackendKind::Embedded);
        assert_eq!(c.data_dir, PathBuf::from(".hark"));
        assert!(!c.allow_private_urls);
        assert_eq!(c.retention_days, 90);
        assert_eq!(c.languages, ["en", "de"]);
        assert_eq!(
            c.require_table().unwrap_err().to_string(),
            "HARK_TABLE is not set"
        );
        assert_eq!(
            c.require_queue(QueueName::Publish).unwrap_err().to_string(),
            "HARK_PUBLISH_QUEUE_URL is not set"
        );
    }

    #[test]
    fn given_function_env_then_every_value_is_read() {
        let c = config(&[
            ("HARK_BACKEND", "aws"),
            ("HARK_TABLE", "hark-prod"),
            ("HARK_POLL_QUEUE_URL", "https://sqs/poll"),
            ("HARK_MENTIONS_QUEUE_URL", "https://sqs/mentions"),
            ("HARK_ALLOW_PRIVATE_URLS", "1"),
            ("HARK_RETENTION_DAYS", "30"),
        ])
        .unwrap();
        assert_eq!(c.backend, BackendKind::Aws);
        assert_eq!(c.require_table().unwrap(), "hark-prod");
        assert_eq!(
            c.require_queue(QueueName::Poll).unwrap(),
            "https://sqs/poll"
        );
        assert!(c.allow_private_urls);
        assert_eq!(c.retention_days, 30);
    }

    #[test]
    fn given_invalid_values_then_errors_name_variable_and_value() {
        let e = config(&[("HARK_BACKEND", "dynamo")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "HARK_BACKEND=`dynamo` is not valid: expected embedded or aws"
        );
        let e = config(&[("HARK_ALLOW_PRIVATE_URLS", "yes")]).unwrap_err();
        assert!(e.to_string().starts_with("HARK_ALLOW_PRIVATE_URLS=`yes`"));
        let c = config(&[("HARK_ENABLED_PLATFORMS", "mastodon, Slack")]).unwrap();
        assert_eq!(
            c.enabled_platforms.unwrap().into_iter().collect::<Vec<_>>(),
            [
                crate::domain::Platform::Mastodon,
                crate::domain::Platform::Slack
            ]
        );
        assert_eq!(
            config(&[("HARK_ENABLED_PLATFORMS", "all")])
                .unwrap()
                .enabled_platforms,
            None
        );
        let e = config(&[("HARK_ENABLED_PLATFORMS", "mastodon,myspace")]).unwrap_err();
        assert!(e.to_string().contains("HARK_ENABLED_PLATFORMS"), "{e}");
        let e = config(&[("HARK_LANGUAGES", "en,deutsch")]).unwrap_err();
        assert!(e.to_string().starts_with("HARK_LANGUAGES=`en,deutsch`"));
        let e = config(&[("HARK_RETENTION_DAYS", "0")]).unwrap_err();
        assert!(e.to_string().starts_with("HARK_RETENTION_DAYS=`0`"));
    }
}
