//! Secret references resolved in the cloud: `ssm:/path` from SSM Parameter Store
//! (SecureString, decrypted) and `secretsmanager:name` from Secrets Manager; `env:NAME`
//! still reads the process environment. Values are cached for a few minutes per warm
//! function, so a batch of deliveries does not read the same secret fifty times, and a
//! rotated secret is picked up within the cache's lifetime.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::domain::{Secret, SecretRef};
use crate::secrets::{EnvSecretResolver, SecretError, SecretResolver, SecretWriter};

/// How long a resolved value is reused.
pub const SECRET_CACHE_TTL: Duration = Duration::from_secs(300);

/// Resolves every kind of [`SecretRef`] with AWS SDK clients made once per process.
///
/// The SSM and Secrets Manager clients are built on first use, not at init: most
/// deployments keep tokens in only one of the two stores (or in `env:`), and building an SDK
/// client costs ~0.1 ms of cold start (it builds an HTTPS connector and parses the root
/// certificates). Building one is CPU work only — no network call — and the client is then
/// kept, so later reads reuse its connections.
pub struct AwsSecretResolver {
    sdk: aws_config::SdkConfig,
    ssm: OnceLock<aws_sdk_ssm::Client>,
    secrets_manager: OnceLock<aws_sdk_secretsmanager::Client>,
    ttl: Duration,
    cache: Mutex<HashMap<SecretRef, (Secret, Instant)>>,
}

impl std::fmt::Debug for AwsSecretResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSecretResolver")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl AwsSecretResolver {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        AwsSecretResolver {
            sdk: sdk.clone(),
            ssm: OnceLock::new(),
            secrets_manager: OnceLock::new(),
            ttl: SECRET_CACHE_TTL,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Another cache lifetime (zero: always read).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    fn ssm(&self) -> &aws_sdk_ssm::Client {
        self.ssm.get_or_init(|| aws_sdk_ssm::Client::new(&self.sdk))
    }

    fn secrets_manager(&self) -> &aws_sdk_secretsmanager::Client {
        self.secrets_manager
            .get_or_init(|| aws_sdk_secretsmanager::Client::new(&self.sdk))
    }

    async fn fetch(&self, reference: &SecretRef) -> Result<Secret, SecretError> {
        let missing = || SecretError::Missing {
            reference: reference.clone(),
        };
        let backend = |source: crate::ports::BoxError| SecretError::Backend {
            reference: reference.clone(),
            source,
        };
        match reference {
            SecretRef::Env(_) => EnvSecretResolver.resolve(reference).await,
            SecretRef::Ssm(path) => {
                let out = self
                    .ssm()
                    .get_parameter()
                    .name(path)
                    .with_decryption(true)
                    .send()
                    .await;
                match out {
                    Ok(out) => out
                        .parameter
                        .and_then(|p| p.value)
                        .filter(|v| !v.is_empty())
                        .map(Secret::new)
                        .ok_or_else(missing),
                    Err(e) => match e.as_service_error() {
                        Some(se) if se.is_parameter_not_found() => Err(missing()),
                        _ if is_denied(&e) => Err(missing()),
                        _ => Err(backend(Box::new(e))),
                    },
                }
            }
            SecretRef::SecretsManager(name) => {
                let out = self
                    .secrets_manager()
                    .get_secret_value()
                    .secret_id(name)
                    .send()
                    .await;
                match out {
                    Ok(out) => out
                        .secret_string
                        .filter(|v| !v.is_empty())
                        .map(Secret::new)
                        .ok_or_else(missing),
                    Err(e) => match e.as_service_error() {
                        Some(se) if se.is_resource_not_found_exception() => Err(missing()),
                        _ if is_denied(&e) => Err(missing()),
                        _ => Err(backend(Box::new(e))),
                    },
                }
            }
        }
    }
}

/// Access denied is an operator's fix (IAM, the stage path), not something to retry.
fn is_denied<E: aws_sdk_ssm::error::ProvideErrorMetadata>(e: &E) -> bool {
    matches!(
        e.code(),
        Some("AccessDeniedException" | "AccessDenied" | "UnrecognizedClientException")
    )
}

#[async_trait::async_trait]
impl SecretResolver for AwsSecretResolver {
    async fn resolve(&self, reference: &SecretRef) -> Result<Secret, SecretError> {
        if !matches!(reference, SecretRef::Env(_))
            && let Some((value, at)) = self.cache.lock().await.get(reference)
            && at.elapsed() < self.ttl
        {
            return Ok(value.clone());
        }
        let value = self.fetch(reference).await?;
        if !matches!(reference, SecretRef::Env(_)) && !self.ttl.is_zero() {
            self.cache
                .lock()
                .await
                .insert(reference.clone(), (value.clone(), Instant::now()));
        }
        Ok(value)
    }
}

#[async_trait::async_trait]
impl SecretWriter for AwsSecretResolver {
    /// SSM: a new version of the SecureString parameter; Secrets Manager: a new secret
    /// value. The cache takes the new value at once.
    async fn write(&self, reference: &SecretRef, value: &Secret) -> Result<(), SecretError> {
        let backend = |source: crate::ports::BoxError| SecretError::Backend {
            reference: reference.clone(),
            source,
        };
        match reference {
            SecretRef::Env(_) => {
                return Err(SecretError::Unsupported {
                    reference: reference.clone(),
                    why: "an environment variable cannot be updated; keep rotating credentials in ssm: or secretsmanager:",
                });
            }
            SecretRef::Ssm(path) => {
                self.ssm()
                    .put_parameter()
                    .name(path)
                    .value(value.expose())
                    .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
                    .overwrite(true)
                    .send()
                    .await
                    .map_err(|e| backend(Box::new(e)))?;
            }
            SecretRef::SecretsManager(name) => {
                self.secrets_manager()
                    .put_secret_value()
                    .secret_id(name)
                    .secret_string(value.expose())
                    .send()
                    .await
                    .map_err(|e| backend(Box::new(e)))?;
            }
        }
        self.cache
            .lock()
            .await
            .insert(reference.clone(), (value.clone(), Instant::now()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offline_sdk_config() -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build()
    }

    #[tokio::test]
    async fn given_only_env_references_when_resolved_then_no_aws_secret_client_is_built() {
        let resolver = AwsSecretResolver::new(&offline_sdk_config());
        let value = resolver
            .resolve(&SecretRef::Env("PATH".into()))
            .await
            .expect("PATH is set in every test process");

        assert!(!value.expose().is_empty());
        assert!(resolver.ssm.get().is_none(), "SSM client built for env:");
        assert!(
            resolver.secrets_manager.get().is_none(),
            "Secrets Manager client built for env:"
        );
    }

    #[test]
    fn given_a_resolver_when_a_store_is_used_twice_then_its_client_is_built_once_and_kept() {
        let resolver = AwsSecretResolver::new(&offline_sdk_config());

        let first: *const aws_sdk_ssm::Client = resolver.ssm();
        let second: *const aws_sdk_ssm::Client = resolver.ssm();

        assert_eq!(first, second);
        assert!(resolver.secrets_manager.get().is_none());
    }
}
