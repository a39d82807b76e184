//! Processor Lambda (SQS mentions queue): language, sentiment, campaign matching,
//! put-if-absent (the dedupe) and hourly aggregates, then the campaigns' trigger rules.
//! Reports partial batch failures.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use hark_shared::analysis::{Analyzer, Languages};
use hark_shared::aws::AwsBackend;
use hark_shared::clock::{Clock, SystemClock};
use hark_shared::config::Config;
use hark_shared::lambda::{records, response_for};
use hark_shared::processing::Processor;
use hark_shared::telemetry::{LogFormat, init_tracing};
use hark_shared::triggers;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

async fn handle(
    backend: &AwsBackend,
    processor: &Processor,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let (records, mut failed) = records(&event.payload);
    let bodies: Vec<&str> = records.iter().map(|r| r.body.as_str()).collect();
    let outcome = processor.process_batch(&backend.store, &bodies).await?;
    for (record, result) in records.iter().zip(&outcome.messages) {
        if let Err(e) = result {
            tracing::error!(message_id = %record.message_id, error = %e, "mentions message failed");
            failed.push(record.message_id.clone());
        }
    }
    tracing::info!(report = ?outcome.report, "batch processed");
    // Trigger rules on what the batch stored. A failure here does not fail the messages:
    // their mentions are stored, a redelivery would find them duplicates and evaluate
    // nothing. Rules on aggregates are evaluated again with the next batch; a firing that
    // was recorded but not sent is re-sent by the scheduler tick.
    match triggers::evaluate_after_batch(
        &backend.store,
        &backend.queue,
        &outcome.stored,
        SystemClock.now(),
    )
    .await
    {
        Ok(report) if !report.fired.is_empty() => {
            tracing::info!(fired = ?report.fired, "triggers fired");
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "evaluating trigger rules failed"),
    }
    Ok(response_for(failed))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(LogFormat::from_env(), "info");
    let config = Config::from_env()?;
    let backend = AwsBackend::from_config(&config).await?;
    let processor = Processor::new(Analyzer::new(Languages::from_codes(&config.languages)?)?);
    run(service_fn(|event| handle(&backend, &processor, event))).await
}
