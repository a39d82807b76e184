//! DynamoDB + SQS backend.
