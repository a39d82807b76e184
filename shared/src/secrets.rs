//! Resolving secret references to values.

use crate::domain::{Secret, SecretRef};

/// Why a secret could not be resolved. Messages name the reference, never a value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {reference} is not set")]
    Missing { reference: SecretRef },
    #[error("secret {reference} cannot be resolved here: {why}")]
    Unsupported {
        reference: SecretRef,
        why: &'static str,
    },
    #[error("reading secret {reference} failed")]
    Backend {
        reference: SecretRef,
        #[source]
        source: crate::ports::BoxError,
    },
}

/// Turns a [`SecretRef`] into a [`Secret`].
#[async_trait::async_trait]
pub trait SecretResolver: Send + Sync {
    async fn resolve(&self, reference: &SecretRef) -> Result<Secret, SecretError>;
}

/// Writes a new value behind a [`SecretRef`]: credentials a platform rotates on use (X's
/// OAuth 2.0 refresh tokens) must be kept where they are read from, or the next cold start
/// reads a token that no longer works.
#[async_trait::async_trait]
pub trait SecretWriter: Send + Sync {
    async fn write(&self, reference: &SecretRef, value: &Secret) -> Result<(), SecretError>;
}

/// Resolves `env:NAME` from the process environment (local runs). Cloud references are
/// refused with a clear error: they need the AWS resolvers.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvSecretResolver;

#[async_trait::async_trait]
impl SecretResolver for EnvSecretResolver {
    async fn resolve(&self, reference: &SecretRef) -> Result<Secret, SecretError> {
        match reference {
            SecretRef::Env(name) => match std::env::var(name) {
                Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
                _ => Err(SecretError::Missing {
                    reference: reference.clone(),
                }),
            },
            SecretRef::Ssm(_) | SecretRef::SecretsManager(_) => Err(SecretError::Unsupported {
                reference: reference.clone(),
                why: "only env: references resolve locally; run with --backend aws for ssm: and secretsmanager:",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn given_env_reference_when_unset_then_missing_names_the_reference() {
        let r: SecretRef = "env:HARK_TEST_SURELY_UNSET_VAR".parse().unwrap();
        let err = EnvSecretResolver.resolve(&r).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "secret env:HARK_TEST_SURELY_UNSET_VAR is not set"
        );
    }

    #[tokio::test]
    async fn given_env_reference_when_set_then_value_resolves() {
        // PATH is set in every test environment; no mutation of the environment needed.
        let r: SecretRef = "env:PATH".parse().unwrap();
        let s = EnvSecretResolver.resolve(&r).await.unwrap();
        assert_eq!(s.expose(), std::env::var("PATH").unwrap());
    }

    #[tokio::test]
    async fn given_cloud_reference_locally_then_clear_error() {
        let r: SecretRef = "ssm:/hark/token".parse().unwrap();
        let err = EnvSecretResolver.resolve(&r).await.unwrap_err();
        assert!(err.to_string().contains("ssm:/hark/token"));
        assert!(err.to_string().contains("--backend aws"));
    }
}
