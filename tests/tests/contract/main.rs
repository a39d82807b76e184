//! The port contract suite, run against both backends. Test names say which backend:
//! `embedded::…` runs on SQLite, `aws::…` over the wire to the moto server.

mod cases;

/// Expands every contract case for one backend. `$store` and `$queue` are expressions
/// building an `Arc` of something implementing the store ports and the queue port.
macro_rules! contract_suite {
    ($backend:ident, store: $store:expr, queue: $queue:expr) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;

            macro_rules! case {
                ($name:ident, store) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                    async fn $name() {
                        let store = $store;
                        cases::$name(&*store).await;
                    }
                };
                ($name:ident, shared store) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                    async fn $name() {
                        let store = $store;
                        cases::$name(store).await;
                    }
                };
                ($name:ident, queue) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                    async fn $name() {
                        let queue = $queue;
                        cases::$name(&*queue).await;
                    }
                };
            }

            case!(second_put_of_a_mention_reports_already_exists_and_keeps_the_first, store);
            case!(same_native_id_on_two_platforms_is_two_mentions, store);
            case!(listing_by_time_range_spans_pages_oldest_first, store);
            case!(a_mention_in_two_campaigns_is_listed_in_both_and_unmatched_ones_apart, store);
            case!(a_malformed_page_token_is_a_clear_error, store);
            case!(mention_expiry_is_stored_in_epoch_seconds, store);
            case!(unicode_and_emoji_survive_every_mention_round_trip, store);
            case!(a_stale_cursor_writer_loses_and_changes_nothing, store);
            case!(cursor_fields_round_trip, store);
            case!(fifty_concurrent_aggregate_adds_sum_exactly, shared store);
            case!(config_upsert_reports_create_update_unchanged, store);
            case!(two_concurrent_claims_of_one_delivery_exactly_one_wins, shared store);
            case!(deliveries_are_created_once_and_updated_only_from_the_version_read, store);
            case!(due_deliveries_are_listed_earliest_first, store);
            case!(claimed_sent_and_unknown_deliveries_are_listed_to_settle_by_settle_time, store);
            case!(a_rule_fires_once_per_window_even_when_raced, shared store);
            case!(a_fired_rule_keeps_its_event_pending_until_announced, store);
            case!(firings_are_kept_per_campaign_in_window_order, store);
            case!(a_budget_is_never_overdrawn_even_when_raced, shared store);
            case!(a_budget_taker_counts_once_even_when_repeated_or_raced, shared store);
            case!(a_message_comes_back_after_its_visibility_timeout_with_its_receive_count, queue);
            case!(change_visibility_to_zero_makes_a_message_visible_now, queue);
            case!(a_delayed_message_is_not_received_before_its_delay_then_is, queue);
            case!(a_message_received_too_often_goes_to_the_dead_letter_queue, queue);
            case!(batches_beyond_sqs_limits_are_rejected_with_a_clear_error, queue);
            case!(unicode_and_emoji_survive_the_queue, queue);
        }
    };
}

contract_suite!(
    embedded,
    store: hark_tests::embedded_backend(),
    queue: hark_tests::embedded_backend()
);

contract_suite!(
    aws,
    store: hark_tests::aws_backend().await.store,
    queue: hark_tests::aws_backend().await.queue
);

mod aws_wire {
    //! Checks only the AWS backend needs: what the items look like on the wire.

    use hark_shared::ports::MentionStore;

    use super::cases;

    #[tokio::test]
    async fn mention_ttl_attribute_is_a_number_of_epoch_seconds() {
        let backend = hark_tests::aws_backend().await;
        let m = cases::mention(
            hark_shared::domain::Platform::Mastodon,
            "ttl-1",
            0,
            &["launch"],
        );
        backend.store.put_mention(&m).await.unwrap();
        let items = backend
            .dynamo
            .scan()
            .table_name(&backend.table)
            .send()
            .await
            .unwrap();
        let item = items
            .items()
            .iter()
            .find(|i| i.contains_key("expires_at"))
            .expect("the mention item carries the TTL attribute");
        let ttl = item["expires_at"].as_n().expect("TTL is a DynamoDB number");
        let seconds: i64 = ttl.parse().unwrap();
        assert_eq!(
            seconds,
            m.created_at.as_second() + i64::from(hark_tests::RETENTION_DAYS) * 86_400
        );
        assert_eq!(
            ttl.len(),
            10,
            "epoch seconds have 10 digits, ms would have 13"
        );
    }

    #[tokio::test]
    async fn the_table_has_ttl_enabled_on_expires_at() {
        let backend = hark_tests::aws_backend().await;
        let ttl = backend
            .dynamo
            .describe_time_to_live()
            .table_name(&backend.table)
            .send()
            .await
            .unwrap();
        let desc = ttl.time_to_live_description().expect("a TTL description");
        assert_eq!(desc.attribute_name(), Some("expires_at"));
    }

    #[tokio::test]
    async fn every_main_queue_has_a_dead_letter_queue_with_redrive() {
        let backend = hark_tests::aws_backend().await;
        for queue in hark_shared::ports::QueueName::MAIN {
            let url = &backend.queue_urls[&queue];
            let attrs = backend
                .sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
                .send()
                .await
                .unwrap();
            let policy = attrs
                .attributes()
                .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy))
                .unwrap_or_else(|| panic!("{queue} has a redrive policy"));
            let policy: serde_json::Value = serde_json::from_str(policy).unwrap();
            assert_eq!(
                policy["maxReceiveCount"].to_string().trim_matches('"'),
                hark_tests::MAX_RECEIVES.to_string()
            );
            assert!(
                backend
                    .queue_urls
                    .contains_key(&queue.dead_letter().unwrap())
            );
        }
    }

    #[tokio::test]
    async fn bootstrap_is_idempotent_and_updates_the_redrive_limit() {
        let backend = hark_tests::aws_backend().await;
        hark_shared::aws::bootstrap::ensure_table(&backend.dynamo, &backend.table)
            .await
            .expect("a second ensure_table accepts the existing table");
        let prefix = hark_tests::unique_name("hark-boot");
        let first = hark_shared::aws::bootstrap::ensure_queues(&backend.sqs, &prefix, 3)
            .await
            .unwrap();
        let second = hark_shared::aws::bootstrap::ensure_queues(&backend.sqs, &prefix, 5)
            .await
            .unwrap();
        assert_eq!(
            first, second,
            "the same queues are found again, not created anew"
        );
        let attrs = backend
            .sqs
            .get_queue_attributes()
            .queue_url(&second[&hark_shared::ports::QueueName::Publish])
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .unwrap();
        let policy =
            &attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy];
        let policy: serde_json::Value = serde_json::from_str(policy).unwrap();
        assert_eq!(policy["maxReceiveCount"].to_string().trim_matches('"'), "5");
    }
}
