//! Hark's common crate: domain types and rules, ports, backends and use cases shared by
//! every Lambda function and the `hark` CLI.
//!
//! Backends sit behind features: `aws` (DynamoDB, SQS) and `embedded` (SQLite).

pub mod clock;
pub mod config;
pub mod domain;
pub mod ports;
pub mod secrets;
pub mod telemetry;

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "embedded")]
pub mod embedded;
