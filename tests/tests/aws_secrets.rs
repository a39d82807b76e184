//! Secret references resolved over the wire to the emulator: SSM SecureString parameters
//! and Secrets Manager secrets, missing ones named in the error, values cached and
//! refreshed, never printed.

use std::time::Duration;

use hark_shared::aws::AwsSecretResolver;
use hark_shared::domain::SecretRef;
use hark_shared::secrets::{SecretError, SecretResolver, SecretWriter};
use hark_tests::{moto_sdk_config, unique_name};

#[tokio::test]
async fn given_ssm_and_secrets_manager_references_then_values_resolve_and_missing_ones_are_named() {
    let sdk = moto_sdk_config().await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let path = format!("/test/hark/{}", unique_name("token"));
    ssm.put_parameter()
        .name(&path)
        .value("masto-secret-1")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let name = format!("test/hark/{}", unique_name("slack"));
    sm.create_secret()
        .name(&name)
        .secret_string("https://hooks.slack.example/T/B/x")
        .send()
        .await
        .unwrap();

    let resolver = AwsSecretResolver::new(&sdk);
    let ssm_ref: SecretRef = format!("ssm:{path}").parse().unwrap();
    let sm_ref: SecretRef = format!("secretsmanager:{name}").parse().unwrap();
    assert_eq!(
        resolver.resolve(&ssm_ref).await.unwrap().expose(),
        "masto-secret-1"
    );
    assert_eq!(
        resolver.resolve(&sm_ref).await.unwrap().expose(),
        "https://hooks.slack.example/T/B/x"
    );

    let missing: SecretRef = "ssm:/test/hark/nope".parse().unwrap();
    let err = resolver.resolve(&missing).await.unwrap_err();
    assert!(matches!(err, SecretError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("ssm:/test/hark/nope"));
    let missing: SecretRef = "secretsmanager:test/hark/nope".parse().unwrap();
    assert!(matches!(
        resolver.resolve(&missing).await.unwrap_err(),
        SecretError::Missing { .. }
    ));

    // Rotated: the cached value serves until the cache expires; a resolver without a
    // cache reads the new one at once.
    ssm.put_parameter()
        .name(&path)
        .value("masto-secret-2")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resolver.resolve(&ssm_ref).await.unwrap().expose(),
        "masto-secret-1"
    );
    let fresh = AwsSecretResolver::new(&sdk).with_ttl(Duration::ZERO);
    assert_eq!(
        fresh.resolve(&ssm_ref).await.unwrap().expose(),
        "masto-secret-2"
    );
    assert!(!format!("{resolver:?}").contains("masto-secret"));
}

#[tokio::test]
async fn given_an_x_token_set_in_ssm_then_a_refresh_writes_the_rotated_tokens_back() {
    use hark_shared::clock::SystemClock;
    use hark_shared::platforms::{HttpClient, OutgoingPost};
    use hark_shared::publishing::{PlatformPublishers, PublisherFactory};
    use hark_tests::fakes::x::{FakeX, X_ACCESS_TOKEN, X_CLIENT_ID, X_REFRESH_TOKEN};
    use std::sync::Arc;

    let sdk = moto_sdk_config().await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let path = format!("/test/hark/{}", unique_name("x-tokens"));
    let set = serde_json::json!({
        "access_token": X_ACCESS_TOKEN, "refresh_token": X_REFRESH_TOKEN,
        "expires_at": (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string(),
        "client_id": X_CLIENT_ID,
    });
    ssm.put_parameter()
        .name(&path)
        .value(set.to_string())
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let x = FakeX::start().await;
    x.set_rotate_refresh_tokens(true);
    x.expire_access_tokens();

    let resolver = Arc::new(AwsSecretResolver::new(&sdk));
    let publishers = PlatformPublishers::new(
        HttpClient::new(true).unwrap(),
        resolver.clone(),
        Arc::new(SystemClock),
    )
    .with_secret_writer(resolver);
    let channel = serde_json::from_value(serde_json::json!({
        "id": "brand-x", "platform": "x", "base_url": x.base_url(), "token": format!("ssm:{path}")
    }))
    .unwrap();
    let publisher = publishers.publisher_for(&channel).await.unwrap();
    publisher
        .publisher
        .publish(
            &OutgoingPost {
                text: "Hark 1.0 is out".into(),
                link: None,
            },
            "launch.brand-x.1",
        )
        .await
        .unwrap();
    assert_eq!(x.created().len(), 1);

    let stored = ssm
        .get_parameter()
        .name(&path)
        .with_decryption(true)
        .send()
        .await
        .unwrap()
        .parameter
        .unwrap()
        .value
        .unwrap();
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    let rotated = x
        .refresh_token()
        .expect("the fake issued a new refresh token");
    assert_ne!(rotated, X_REFRESH_TOKEN);
    assert_eq!(stored["refresh_token"], rotated.as_str());
    assert_eq!(stored["client_id"], X_CLIENT_ID);
    assert_ne!(stored["access_token"], X_ACCESS_TOKEN);

    // An env: reference cannot be written: a clear refusal, not a silent loss.
    let err = AwsSecretResolver::new(&sdk)
        .write(
            &"env:X_TOKENS".parse().unwrap(),
            &hark_shared::domain::Secret::new("{}"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SecretError::Unsupported { .. }), "{err}");
}
