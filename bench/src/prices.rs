//! The one price table of the harness: AWS us-east-1 on-demand list prices (no free
//! tier, no savings plans), and the modelling assumptions the cost figures rest on.
//!
//! Sources (checked 2026-11):
//! - SQS standard: $0.40 per million requests after the free tier; "each 64 KB chunk of a
//!   payload is billed as 1 request" (<https://aws.amazon.com/sqs/pricing/>).
//! - DynamoDB on-demand: $0.625 per million write request units, $0.125 per million read
//!   request units (us-east-1 since the November 2024 price cut; older pages say $1.25 and
//!   $0.25) (<https://aws.amazon.com/dynamodb/pricing/on-demand/>,
//!   <https://airbyte.com/data-engineering-resources/dynamodb-pricing>).
//! - Lambda arm64: $0.0000133334 per GB-second (first 7.5 billion GB-s a month) and
//!   $0.20 per million requests, duration billed per 1 ms
//!   (<https://aws.amazon.com/lambda/pricing/>,
//!   <https://cloudchipr.com/blog/aws-lambda-pricing>).
//! - EventBridge: $1.00 per million custom events put (64 KB chunks), and EventBridge
//!   Scheduler $1.00 per million invocations (<https://aws.amazon.com/eventbridge/pricing/>).
//! - Amazon Comprehend (comparison row): $0.0001 per unit of 100 characters, minimum 3
//!   units per request, for sentiment (and, separately, language detection)
//!   (<https://aws.amazon.com/comprehend/pricing/>).

pub const SQS_PER_MILLION_REQUESTS: f64 = 0.40;
pub const DYNAMO_PER_MILLION_WRU: f64 = 0.625;
pub const DYNAMO_PER_MILLION_RRU: f64 = 0.125;
pub const LAMBDA_ARM_PER_GB_SECOND: f64 = 0.000_013_333_4;
pub const LAMBDA_PER_MILLION_REQUESTS: f64 = 0.20;
pub const EVENTBRIDGE_PER_MILLION_EVENTS: f64 = 1.00;
pub const COMPREHEND_PER_UNIT: f64 = 0.0001;
pub const COMPREHEND_CHARS_PER_UNIT: usize = 100;
pub const COMPREHEND_MIN_UNITS: usize = 3;

/// Memory of every function (infra/template.yaml `MemorySize: 128`).
pub const LAMBDA_MEMORY_GB: f64 = 128.0 / 1024.0;

/// Assumed round trip of one DynamoDB / SQS / EventBridge request from Lambda in the same
/// region (the harness measures compute on the embedded backend, then adds this per
/// request the AWS adapter would make; the calls of one invocation are sequential).
pub const AWS_REQUEST_MS: f64 = 8.0;
/// Assumed round trip of one platform API request (a timeline page, a post creation).
pub const PLATFORM_REQUEST_MS: f64 = 150.0;

/// Comprehend's charge for one text of `chars` characters (one request per text).
pub fn comprehend_cost(chars: usize) -> f64 {
    chars
        .div_ceil(COMPREHEND_CHARS_PER_UNIT)
        .max(COMPREHEND_MIN_UNITS) as f64
        * COMPREHEND_PER_UNIT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_short_and_long_texts_when_priced_on_comprehend_then_the_three_unit_minimum_applies() {
        assert!((comprehend_cost(40) - 0.0003).abs() < 1e-12);
        assert!((comprehend_cost(300) - 0.0003).abs() < 1e-12);
        assert!((comprehend_cost(301) - 0.0004).abs() < 1e-12);
    }
}
