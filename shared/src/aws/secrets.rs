//! Secret references resolved in the cloud: `ssm:/path` from SSM Parameter Store
//! (SecureString, decrypted) and `secretsmanager:name` from Secrets Manager; `env:NAME`
//! still reads the process environment. Values are cached for a few minutes per warm
//! function, so a batch of deliveries does not read the same secret fifty times, and a
//! rotated secret is picked up within the cache's lifetime.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::domain::{Secret, SecretRef};
use crate::secrets::{EnvSecretResolver, SecretError, SecretResolver, SecretWriter};

/// How long a resolved value is reused.
pub const SECRET_CACHE_TTL: Duration = Duration::from_secs(300);

/// Resolves every kind of [`SecretRef`] with the AWS SDK clients made once at init.
pub struct AwsSecretResolver {
    ssm: aws_sdk_ssm::Client,
    secrets_manager: aws_sdk_secretsmanager::Client,
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
            ssm: aws_sdk_ssm::Client::new(sdk),
            secrets_manager: aws_sdk_secretsmanager::Client::new(sdk),
            ttl: SECRET_CACHE_TTL,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Another cache lifetime (zero: always read).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
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
                    .ssm
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
                    .secrets_manager
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
                self.ssm
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
                self.secrets_manager
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
