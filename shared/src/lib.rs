//! Hark's common crate: domain types and rules, ports, backends and use cases shared by
//! every Lambda function and the `hark` CLI.
//!
//! Backends sit behind features: `aws` (DynamoDB, SQS) and `embedded` (SQLite).

pub mod actions;
pub mod analysis;
pub mod authors;
pub mod clock;
pub mod config;
pub mod domain;
pub mod events;
pub mod listening;
pub mod platforms;
pub mod ports;
pub mod processing;
pub mod publishing;
pub mod query;
pub mod rules;
pub mod secrets;
pub mod telemetry;
pub mod text;
pub mod triggers;

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "embedded")]
pub mod embedded;
#[cfg(feature = "lambda")]
pub mod lambda;
