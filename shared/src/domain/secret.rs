//! References to secrets (`env:NAME`, `ssm:/path`, `secretsmanager:name`) and the secret values.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a secret lives. Config files hold references, never secret values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretRef {
    /// An environment variable (local runs).
    Env(String),
    /// An SSM Parameter Store parameter (SecureString), by path.
    Ssm(String),
    /// A Secrets Manager secret, by name or ARN.
    SecretsManager(String),
}

/// The text is not a secret reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid secret reference `{0}`: write env:NAME, ssm:/path or secretsmanager:name")]
pub struct InvalidSecretRef(pub String);

impl FromStr for SecretRef {
    type Err = InvalidSecretRef;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidSecretRef(redact_for_error(s));
        let (scheme, rest) = s.split_once(':').ok_or_else(invalid)?;
        if rest.is_empty() || rest.chars().any(char::is_whitespace) {
            return Err(invalid());
        }
        match scheme {
            "env" if rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                Ok(SecretRef::Env(rest.to_owned()))
            }
            "ssm" if rest.starts_with('/') => Ok(SecretRef::Ssm(rest.to_owned())),
            "secretsmanager" => Ok(SecretRef::SecretsManager(rest.to_owned())),
            _ => Err(invalid()),
        }
    }
}

/// Someone may paste a real token where a reference belongs: never echo it whole.
fn redact_for_error(s: &str) -> String {
    if s.contains(':') && s.len() <= 64 && !s.contains("//") {
        s.to_owned()
    } else {
        let head: String = s.chars().take(6).collect();
        format!("{head}… ({} characters, not shown)", s.chars().count())
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "env:{name}"),
            SecretRef::Ssm(path) => write!(f, "ssm:{path}"),
            SecretRef::SecretsManager(name) => write!(f, "secretsmanager:{name}"),
        }
    }
}

impl Serialize for SecretRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A resolved secret value. Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for building a request. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_each_scheme_when_parsed_then_round_trips() {
        for text in [
            "env:HARK_TOKEN",
            "ssm:/hark/prod/token",
            "secretsmanager:hark/x",
        ] {
            let r: SecretRef = text.parse().unwrap();
            assert_eq!(r.to_string(), text);
        }
    }

    #[test]
    fn given_a_pasted_token_when_parsed_then_error_does_not_echo_it() {
        let token = "ghp_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123";
        let err = token.parse::<SecretRef>().unwrap_err().to_string();
        assert!(!err.contains(token), "{err}");
        assert!(err.contains("env:NAME"));
    }

    #[test]
    fn given_bad_references_when_parsed_then_rejected() {
        for text in [
            "env:",
            "ssm:relative/path",
            "vault:x",
            "env:HAS SPACE",
            "plain",
        ] {
            assert!(text.parse::<SecretRef>().is_err(), "{text}");
        }
    }

    #[test]
    fn secret_values_are_never_formatted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        assert_eq!(s.expose(), "hunter2");
    }
}
