//! The SAM template against the code. `scripts/iac-check` translates `infra/template.yaml`
//! offline, deploys it to the emulator's CloudFormation and describes the stack (outputs,
//! and every function's deployed environment, timeout and event sources) in the file named
//! by `HARK_IAC_STACK_FILE`. Here each handler is configured exactly from the environment
//! its function was deployed with — the same `Config::from_lookup` its `main` runs — and a
//! poll → process round runs in-process against the stack's own table and queues (the
//! emulator cannot run Lambda code without Docker).
//!
//! Without `HARK_IAC_STACK`/`HARK_IAC_STACK_FILE` these tests fail with a message naming
//! `scripts/test`; they never skip silently.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use aws_sdk_dynamodb::types::{BillingMode, KeyType, ProjectionType};
use aws_sdk_sqs::types::QueueAttributeName;
use hark_shared::analysis::{Analyzer, Languages};
use hark_shared::aws::{AwsBackend, SqsQueue};
use hark_shared::config::{BackendKind, Config};
use hark_shared::domain::{Campaign, SentimentLabel, Source};
use hark_shared::lambda::{failed_ids, poll_event, sqs_event};
use hark_shared::listening::{PollerSettings, schedule_polls};
use hark_shared::platforms::HttpClient;
use hark_shared::platforms::listeners::PlatformListeners;
use hark_shared::ports::{AggregateStore, ConfigStore, MessageQueue, QueueName};
use hark_shared::processing::{Processor, list_mentions};
use hark_shared::publishing::{CLAIM_LEASE, MIN_PUBLISH_VISIBILITY};
use hark_shared::secrets::EnvSecretResolver;
use hark_tests::fakes::FakeMastodon;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

/// What `scripts/iac-deploy.py` writes about the deployed stack.
#[derive(Debug, Deserialize)]
struct Stack {
    stack: String,
    outputs: BTreeMap<String, String>,
    /// By the template's logical id (`PollerFunction`, ...).
    functions: BTreeMap<String, Function>,
}

#[derive(Debug, Deserialize)]
struct Function {
    name: String,
    timeout_s: u64,
    memory_mb: u64,
    environment: BTreeMap<String, String>,
    event_sources: Vec<EventSource>,
}

#[derive(Debug, Deserialize)]
struct EventSource {
    queue_arn: String,
    batch_size: u32,
    function_response_types: Vec<String>,
    maximum_concurrency: Option<u32>,
}

impl Function {
    /// The configuration the function's `main` reads, with `overrides` on top.
    fn config(&self, overrides: &[(&str, &str)]) -> Config {
        Config::from_lookup(|key| {
            overrides
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
                .or_else(|| self.environment.get(key).cloned())
        })
        .unwrap_or_else(|e| {
            panic!(
                "{}: its deployed environment is not a valid config: {e}",
                self.name
            )
        })
    }
}

impl Stack {
    fn function(&self, logical_id: &str) -> &Function {
        self.functions
            .get(logical_id)
            .unwrap_or_else(|| panic!("stack {} has no {logical_id}", self.stack))
    }

    fn output(&self, key: &str) -> &str {
        self.outputs
            .get(key)
            .unwrap_or_else(|| panic!("stack {} has no output {key}", self.stack))
    }

    /// The queues as the SQS event source mappings see them (Lambda receives and deletes
    /// for the handlers; the tests do it in their place).
    fn event_source_queues(&self, sqs: aws_sdk_sqs::Client) -> SqsQueue {
        let urls = [
            (QueueName::Poll, "PollQueueUrl"),
            (QueueName::Mentions, "MentionsQueueUrl"),
            (QueueName::Publish, "PublishQueueUrl"),
            (QueueName::Events, "EventsQueueUrl"),
        ]
        .into_iter()
        .map(|(queue, output)| (queue, self.output(output).to_owned()))
        .collect::<HashMap<_, _>>();
        SqsQueue::new(sqs, urls)
    }
}

fn required_env(var: &str) -> String {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => value,
        _ => panic!(
            "{var} is not set: these tests run against the stack that scripts/iac-check deploys \
             to the AWS emulator. Run scripts/test (it starts moto, runs scripts/iac-check and \
             exports HARK_IAC_STACK and HARK_IAC_STACK_FILE before cargo test), or \
             scripts/iac-check alone."
        ),
    }
}

fn stack() -> Stack {
    // The handlers below build their SDK clients from the environment: never real AWS.
    hark_tests::moto_endpoint();
    let name = required_env("HARK_IAC_STACK");
    let file = required_env("HARK_IAC_STACK_FILE");
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("cannot read HARK_IAC_STACK_FILE={file}: {e}"));
    let stack: Stack = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("HARK_IAC_STACK_FILE={file} is not a stack description: {e}"));
    assert_eq!(
        stack.stack, name,
        "{file} describes another stack than HARK_IAC_STACK"
    );
    stack
}

#[tokio::test]
async fn given_the_deployed_stack_then_each_function_environment_configures_its_handler() {
    let stack = stack();
    let table = stack.output("TableName");
    assert_eq!(
        stack
            .functions
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        [
            "ActionsFunction",
            "PollerFunction",
            "ProcessorFunction",
            "PublisherFunction",
            "SchedulerFunction"
        ]
    );
    // Each function needs the queues its main requires, with the stack's URLs.
    let needs: [(&str, &[(QueueName, &str)]); 5] = [
        (
            "SchedulerFunction",
            &[
                (QueueName::Poll, "PollQueueUrl"),
                (QueueName::Publish, "PublishQueueUrl"),
                (QueueName::Events, "EventsQueueUrl"),
            ],
        ),
        (
            "ActionsFunction",
            &[
                (QueueName::Publish, "PublishQueueUrl"),
                (QueueName::Events, "EventsQueueUrl"),
            ],
        ),
        (
            "PollerFunction",
            &[
                (QueueName::Mentions, "MentionsQueueUrl"),
                (QueueName::Events, "EventsQueueUrl"),
            ],
        ),
        (
            "ProcessorFunction",
            &[(QueueName::Events, "EventsQueueUrl")],
        ),
        (
            "PublisherFunction",
            &[
                (QueueName::Events, "EventsQueueUrl"),
                (QueueName::Publish, "PublishQueueUrl"),
            ],
        ),
    ];
    for (logical_id, queues) in needs {
        let function = stack.function(logical_id);
        let config = function.config(&[]);
        assert_eq!(config.backend, BackendKind::Aws, "{logical_id}");
        assert_eq!(config.require_table().unwrap(), table, "{logical_id}");
        assert!(
            !config.allow_private_urls,
            "{logical_id} must refuse private URLs in the cloud"
        );
        assert_eq!(function.memory_mb, 128, "{logical_id}");
        for (queue, output) in queues {
            assert_eq!(
                config
                    .require_queue(*queue)
                    .unwrap_or_else(|e| panic!("{logical_id}: {e}")),
                stack.output(output),
                "{logical_id}"
            );
        }
    }
    let processor = stack.function("ProcessorFunction").config(&[]);
    assert_eq!(processor.retention_days, Config::DEFAULT_RETENTION_DAYS);
    let languages = Languages::from_codes(&processor.languages).expect("HARK_LANGUAGES parses");
    Analyzer::new(languages).expect("the processor's analyzer builds from its environment");
}

#[tokio::test]
async fn given_the_deployed_stack_then_its_queues_table_and_timeouts_fit_what_the_code_assumes() {
    let stack = stack();
    let sdk = hark_tests::moto_sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);

    let attributes = |url: String| {
        let sqs = sqs.clone();
        async move {
            sqs.get_queue_attributes()
                .queue_url(&url)
                .attribute_names(QueueAttributeName::All)
                .send()
                .await
                .unwrap_or_else(|e| panic!("GetQueueAttributes {url}: {e:?}"))
                .attributes
                .unwrap_or_default()
        }
    };
    let mut visibility_by_arn = HashMap::new();
    for name in ["Poll", "Mentions", "Publish", "Events"] {
        let queue = attributes(stack.output(&format!("{name}QueueUrl")).to_owned()).await;
        let dlq = attributes(
            stack
                .output(&format!("{name}DeadLetterQueueUrl"))
                .to_owned(),
        )
        .await;
        for (what, a) in [("queue", &queue), ("dead-letter queue", &dlq)] {
            assert_eq!(
                a.get(&QueueAttributeName::SqsManagedSseEnabled)
                    .map(String::as_str),
                Some("true"),
                "{name} {what} is encrypted"
            );
        }
        let redrive: serde_json::Value = serde_json::from_str(
            queue
                .get(&QueueAttributeName::RedrivePolicy)
                .unwrap_or_else(|| panic!("{name} queue has no RedrivePolicy")),
        )
        .unwrap();
        assert_eq!(
            redrive["deadLetterTargetArn"].as_str(),
            dlq.get(&QueueAttributeName::QueueArn).map(String::as_str),
            "{name} queue dead-letters into its own DLQ"
        );
        let receives = redrive["maxReceiveCount"].as_u64().unwrap();
        assert!(
            (3..=5).contains(&receives),
            "{name}: maxReceiveCount {receives}"
        );
        let visibility: u64 = queue[&QueueAttributeName::VisibilityTimeout]
            .parse()
            .unwrap();
        visibility_by_arn.insert(queue[&QueueAttributeName::QueueArn].clone(), visibility);
    }

    // Every SQS consumer reports partial batch failures and finishes before its message
    // becomes visible again.
    let mut consumed = BTreeSet::new();
    for (logical_id, function) in &stack.functions {
        for source in &function.event_sources {
            assert!(
                source
                    .function_response_types
                    .iter()
                    .any(|t| t == "ReportBatchItemFailures"),
                "{logical_id}"
            );
            assert!((1..=100).contains(&source.batch_size), "{logical_id}");
            let visibility = visibility_by_arn[&source.queue_arn];
            assert!(
                function.timeout_s < visibility,
                "{logical_id}: timeout {} s is not below the visibility timeout {visibility} s",
                function.timeout_s
            );
            consumed.insert(logical_id.as_str());
        }
    }
    assert_eq!(
        consumed,
        BTreeSet::from([
            "ActionsFunction",
            "PollerFunction",
            "ProcessorFunction",
            "PublisherFunction"
        ])
    );
    let poller = &stack.function("PollerFunction").event_sources[0];
    assert!(
        poller.maximum_concurrency.is_some(),
        "the poller's concurrency is capped for the platforms' rate limits"
    );

    // A claim outlives the invocation that made it, and a crashed worker's job returns only
    // after its lease has run out (shared/src/publishing/mod.rs).
    let publisher = stack.function("PublisherFunction");
    assert!(publisher.timeout_s < CLAIM_LEASE.as_secs().unsigned_abs());
    let publish_arn = &publisher.event_sources[0].queue_arn;
    assert!(visibility_by_arn[publish_arn] >= MIN_PUBLISH_VISIBILITY.as_secs().unsigned_abs());

    // The table has the keys and index of shared/src/aws/keys.rs, billed on demand.
    let table = dynamo
        .describe_table()
        .table_name(stack.output("TableName"))
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let keys = |schema: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
        schema
            .iter()
            .map(|k| (k.attribute_name().to_owned(), k.key_type().clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(table.key_schema()),
        [
            ("PK".to_owned(), KeyType::Hash),
            ("SK".to_owned(), KeyType::Range)
        ]
    );
    let gsi1 = table
        .global_secondary_indexes()
        .iter()
        .find(|i| i.index_name() == Some("GSI1"))
        .expect("index GSI1");
    assert_eq!(
        keys(gsi1.key_schema()),
        [
            ("GSI1PK".to_owned(), KeyType::Hash),
            ("GSI1SK".to_owned(), KeyType::Range)
        ]
    );
    assert_eq!(
        gsi1.projection().and_then(|p| p.projection_type()),
        Some(&ProjectionType::All)
    );
    assert_eq!(
        table.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
}

#[tokio::test]
async fn given_the_deployed_stack_when_a_source_is_polled_and_processed_then_its_mentions_are_stored_once_and_counted()
 {
    let stack = stack();
    let now = Timestamp::now();
    // Fresh ids, so that a second run against the same stack starts from nothing too.
    let (source_id, campaign_id) = (
        hark_tests::unique_name("iac-masto"),
        hark_tests::unique_name("iac-launch"),
    );
    let status_ids = [1, 2].map(|n| format!("{}{n}", now.as_microsecond()));
    let mastodon = FakeMastodon::start().await;
    mastodon.post(&status_ids[0], "Trying hark today", now);
    mastodon.post(&status_ids[1], "Hark is terrible, I hate this launch.", now);

    // Each function's backend from its own deployed environment, as its main builds it.
    let scheduler_config = stack.function("SchedulerFunction").config(&[]);
    // The fake platform listens on loopback, which the cloud configuration refuses.
    let poller_config = stack
        .function("PollerFunction")
        .config(&[("HARK_ALLOW_PRIVATE_URLS", "1")]);
    let processor_config = stack.function("ProcessorFunction").config(&[]);
    let scheduler = AwsBackend::from_config(&scheduler_config).await.unwrap();
    let poller = AwsBackend::from_config(&poller_config).await.unwrap();
    let processor_backend = AwsBackend::from_config(&processor_config).await.unwrap();
    let lambda = stack.event_source_queues(aws_sdk_sqs::Client::new(
        &hark_tests::moto_sdk_config().await,
    ));

    // Campaigns as code, applied to the stack's table (`hark apply --backend aws`).
    let source: Source = serde_json::from_value(serde_json::json!({
        "id": source_id, "platform": "mastodon", "base_url": mastodon.server.uri(),
        "query": "#hark", "every": "5m"
    }))
    .unwrap();
    scheduler.store.upsert(&source).await.unwrap();
    scheduler
        .store
        .upsert(&Campaign {
            id: campaign_id.clone(),
            name: None,
            query: "hark".into(),
            sources: vec![source_id.clone()],
            triggers: vec![],
            active: true,
            policy: Default::default(),
        })
        .await
        .unwrap();

    // The tick.
    let tick = schedule_polls(&scheduler.store, &scheduler.queue, now)
        .await
        .unwrap();
    assert_eq!(tick.queued, 1, "{tick:?}");

    // The poller, fed by the poll queue's event source.
    let listeners = PlatformListeners::new(
        HttpClient::new(poller_config.allow_private_urls).unwrap(),
        Arc::new(EnvSecretResolver),
    );
    let jobs = lambda
        .receive(QueueName::Poll, 10, SignedDuration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    let response = poll_event(
        &poller.store,
        &poller.queue,
        &listeners,
        &sqs_event(&jobs),
        now,
        &PollerSettings::default(),
    )
    .await;
    assert!(failed_ids(&response).is_empty(), "{response:?}");
    lambda
        .delete(QueueName::Poll, &jobs[0].receipt)
        .await
        .unwrap();

    // The processor, fed by the mentions queue's event source.
    let processor = Processor::new(
        Analyzer::new(Languages::from_codes(&processor_config.languages).unwrap()).unwrap(),
    );
    let batch = lambda
        .receive(QueueName::Mentions, 10, SignedDuration::from_secs(60))
        .await
        .unwrap();
    assert!(!batch.is_empty(), "the poller queued the new statuses");
    let bodies: Vec<&str> = batch.iter().map(|m| m.body.as_str()).collect();
    let outcome = processor
        .process_batch(&processor_backend.store, &bodies)
        .await
        .unwrap();
    assert!(outcome.messages.iter().all(Result::is_ok), "{outcome:?}");
    assert_eq!((outcome.report.stored, outcome.report.matched), (2, 2));

    // A redelivery of the same batch (a crash before the delete) stores and counts nothing.
    let again = processor
        .process_batch(&processor_backend.store, &bodies)
        .await
        .unwrap();
    assert_eq!((again.report.stored, again.report.duplicates), (0, 2));
    for message in &batch {
        lambda
            .delete(QueueName::Mentions, &message.receipt)
            .await
            .unwrap();
    }

    let window = (
        now - SignedDuration::from_hours(2),
        now + SignedDuration::from_hours(1),
    );
    let mut stored = list_mentions(
        &processor_backend.store,
        Some(&campaign_id),
        window.0,
        window.1,
    )
    .await
    .unwrap();
    stored.sort_by(|a, b| a.native_id.cmp(&b.native_id));
    assert_eq!(
        stored
            .iter()
            .map(|m| m.native_id.as_str())
            .collect::<Vec<_>>(),
        status_ids
    );
    assert_eq!(
        stored[1].sentiment.map(|s| s.label),
        Some(SentimentLabel::Negative)
    );
    let counters = processor_backend
        .store
        .list_counters(&campaign_id, window.0, window.1)
        .await
        .unwrap();
    assert_eq!(counters.iter().map(|(_, c)| c.mentions).sum::<u64>(), 2);
    assert_eq!(counters.iter().map(|(_, c)| c.negative).sum::<u64>(), 1);

    // Nothing is left over or dead-lettered.
    for queue in [QueueName::Poll, QueueName::Mentions] {
        let left = lambda
            .receive(queue, 10, SignedDuration::from_secs(1))
            .await
            .unwrap();
        assert!(left.is_empty(), "{queue:?}: {left:?}");
    }
}
