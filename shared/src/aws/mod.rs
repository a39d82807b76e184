//! DynamoDB + SQS backend: the ports implemented on one DynamoDB table and four SQS queues
//! (each with a dead-letter queue).
//!
//! - [`DynamoStore`] implements every storage port on a single table (key formats in
//!   `keys`, item shapes in `records`).
//! - [`SqsQueue`] implements [`MessageQueue`](crate::ports::MessageQueue).
//! - [`bootstrap`] creates the table and the queues (tests, `hark` against an emulator); in
//!   the cloud the SAM template creates them.
//!
//! Endpoint and region come from the standard AWS environment (`AWS_ENDPOINT_URL`,
//! `AWS_REGION`), which is how the tests point the SDK at the moto server.

pub mod bootstrap;
mod dynamo;
mod eventbridge;
mod keys;
mod records;
mod secrets;
mod sqs;

use aws_config::BehaviorVersion;
// SQS re-exports the very same `aws-smithy-*` types, so one classifier serves both clients.
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

pub use dynamo::DynamoStore;
pub use eventbridge::{EventBridgeBus, PartialPutFailure};
pub use secrets::{AwsSecretResolver, SECRET_CACHE_TTL};
pub use sqs::{FailedEntry, SendBatchFailed, SqsQueue};

/// The AWS side of a function, built once at init from [`Config`](crate::config::Config):
/// the store on `HARK_TABLE` and the queues whose `HARK_*_QUEUE_URL` are set.
#[derive(Debug, Clone)]
pub struct AwsBackend {
    pub store: DynamoStore,
    pub queue: SqsQueue,
    /// Set when `HARK_EVENT_BUS` names a bus.
    pub bus: Option<EventBridgeBus>,
    /// Resolves `ssm:`, `secretsmanager:` and `env:` references (cached per warm function).
    pub secrets: std::sync::Arc<AwsSecretResolver>,
}

impl AwsBackend {
    /// Fails (at init, not on the first event) when `HARK_TABLE` is missing. The SDK
    /// clients are created here once and reuse their connections across invocations.
    pub async fn from_config(
        config: &crate::config::Config,
    ) -> Result<Self, crate::config::ConfigError> {
        let table = config.require_table()?.to_owned();
        let sdk = load_sdk_config().await;
        Ok(AwsBackend {
            store: DynamoStore::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                table,
                config.retention_days,
            ),
            queue: SqsQueue::from_config(aws_sdk_sqs::Client::new(&sdk), &config.queues),
            bus: config
                .event_bus
                .as_ref()
                .map(|bus| EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&sdk), bus)),
            secrets: std::sync::Arc::new(AwsSecretResolver::new(&sdk)),
        })
    }
}

/// Loads the SDK configuration from the environment (credentials chain, `AWS_REGION`,
/// `AWS_ENDPOINT_URL`). Call once per process and share the result.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// Error codes that mean "too much traffic right now" or "the service had a hiccup": the
/// caller may retry later. See
/// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html>
/// and <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html>.
const RETRYABLE_CODES: [&str; 11] = [
    // DynamoDB
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "LimitExceededException",
    // SQS (and the common AWS errors)
    "RequestThrottled",
    "KmsThrottled",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalError",
    "Throttling",
];

/// Whether an SDK failure is transient: throttling, 5xx, timeouts, connection failures and
/// unreadable responses are; validation and other client errors are not.
fn is_retryable<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(context) => {
            context.raw().status().is_server_error()
                || context
                    .err()
                    .code()
                    .is_some_and(|code| RETRYABLE_CODES.contains(&code))
        }
        // ConstructionFailure (a bug on our side) and variants added in later SDK versions.
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_dynamodb::operation::put_item::PutItemError;

    use super::*;

    fn service_error(code: &str, status: u16) -> SdkError<PutItemError, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).build();
        let status = status.try_into().expect("a valid HTTP status");
        SdkError::service_error(
            PutItemError::generic(meta),
            HttpResponse::new(status, "".into()),
        )
    }

    #[test]
    fn throttling_server_faults_and_network_failures_are_retryable() {
        for code in [
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "RequestLimitExceeded",
            "RequestThrottled",
        ] {
            assert!(is_retryable(&service_error(code, 400)), "{code}");
        }
        assert!(is_retryable(&service_error("InternalServerError", 500)));
        assert!(is_retryable(&service_error("AnythingElse", 503)));
        assert!(is_retryable(
            &SdkError::<PutItemError, HttpResponse>::timeout_error("slow")
        ));
        assert!(is_retryable(
            &SdkError::<PutItemError, HttpResponse>::dispatch_failure(ConnectorError::io(
                "connection reset".into()
            ))
        ));
    }

    #[test]
    fn client_errors_and_our_own_bugs_are_not_retryable() {
        assert!(!is_retryable(&service_error("ValidationException", 400)));
        assert!(!is_retryable(&service_error(
            "ResourceNotFoundException",
            400
        )));
        assert!(!is_retryable(
            &SdkError::<PutItemError, HttpResponse>::construction_failure("missing field")
        ));
    }
}
