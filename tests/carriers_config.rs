//! Carrier configuration: each kind with its settings, secrets from the file or the
//! environment, and refusals that name the key and say what was expected.

use shortbox::config::{CarrierKind, Config};

const HEAD: &str = r#"
[engine]
public_url = "https://sms.example.com"

[[codes]]
code = "55123"
country = "US"
kind = "shared"
carrier = "c"
"#;

fn with_carrier(carrier: &str) -> String {
    format!("{HEAD}\n[[carriers]]\nid = \"c\"\n{carrier}\n")
}

/// The refusal of `text`: its message.
fn refused(text: &str) -> String {
    match Config::parse(text, "carriers.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_kind_with_its_settings_is_accepted() {
    let twilio = Config::parse(
        &with_carrier(
            r#"kind = "twilio"
twilio = { account_sid = "AC0123456789abcdef0123456789abcdef", auth_token_env = "SHORTBOX_TEST_TWILIO_TOKEN" }"#,
        ),
        "t.toml",
    )
    .expect("twilio");
    let c = &twilio.carriers[0];
    assert_eq!(c.kind, CarrierKind::Twilio);
    let t = c.twilio.as_ref().unwrap();
    assert_eq!(t.base_url, "https://api.twilio.com");
    assert_eq!((t.timeout_ms, t.max_attempts), (10_000, 4));

    let sns = Config::parse(
        &with_carrier(
            r#"kind = "sns"
sns = { allowed_topics = ["arn:aws:sns:us-east-1:123456789012:sms-inbound"] }"#,
        ),
        "s.toml",
    )
    .expect("sns");
    assert_eq!(
        sns.carriers[0].sns.as_ref().unwrap().cert_host_pattern,
        "sns.*.amazonaws.com"
    );

    Config::parse(
        &with_carrier("kind = \"http\"\ninbound_secret_env = \"SHORTBOX_TEST_HTTP_SECRET\""),
        "h.toml",
    )
    .expect("http");
    Config::parse(&with_carrier("kind = \"sim\""), "sim.toml").expect("sim");
}

#[test]
fn the_auth_token_comes_from_the_environment_when_named() {
    let file_only = Config::parse(
        &with_carrier(
            r#"kind = "twilio"
twilio = { account_sid = "ACx", auth_token = "from-the-file-123", auth_token_env = "SHORTBOX_TEST_NEVER_SET" }"#,
        ),
        "t.toml",
    )
    .unwrap();
    let t = file_only.carriers[0].twilio.as_ref().unwrap();
    assert_eq!(t.auth_token().as_deref(), Some("from-the-file-123"));
    // A variable every test process has (the test sets none: tests run in parallel threads).
    let from_env = Config::parse(
        &with_carrier(
            r#"kind = "twilio"
twilio = { account_sid = "ACx", auth_token = "from-the-file-123", auth_token_env = "PATH" }"#,
        ),
        "t.toml",
    )
    .unwrap();
    let t = from_env.carriers[0].twilio.as_ref().unwrap();
    assert_eq!(t.auth_token(), std::env::var("PATH").ok());
}

#[test]
fn refusals_name_the_key_and_what_was_expected() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "kind = \"twilio\"",
            "carriers[0].twilio",
            "needs its settings",
        ),
        (
            "kind = \"twilio\"\ntwilio = { account_sid = \"AC1\" }",
            "carriers[0].twilio.auth_token",
            "auth_token_env",
        ),
        (
            "kind = \"twilio\"\ntwilio = { account_sid = \"AC 1\", auth_token = \"0123456789\" }",
            "carriers[0].twilio.account_sid",
            "account SID",
        ),
        (
            "kind = \"twilio\"\ntwilio = { account_sid = \"AC1\", auth_token = \"0123456789\", base_url = \"ftp://x\" }",
            "carriers[0].twilio.base_url",
            "https://",
        ),
        (
            "kind = \"twilio\"\ntwilio = { account_sid = \"AC1\", auth_token = \"0123456789\", max_attempts = 0 }",
            "carriers[0].twilio.max_attempts",
            "1 to 10",
        ),
        (
            "kind = \"twilio\"\ntwilio = { account_sid = \"AC1\", auth_token = \"0123456789\", sid = \"x\" }",
            "sid",
            "unknown field",
        ),
        ("kind = \"sns\"", "carriers[0].sns", "allowed_topics"),
        (
            "kind = \"sns\"\nsns = { allowed_topics = [] }",
            "carriers[0].sns.allowed_topics",
            "at least one topic ARN",
        ),
        (
            "kind = \"sns\"\nsns = { allowed_topics = [\"sms-inbound\"] }",
            "carriers[0].sns.allowed_topics[0]",
            "topic ARN",
        ),
        (
            "kind = \"sns\"\nsns = { allowed_topics = [\"arn:aws:sns:us-east-1:1:t\"], cert_host_pattern = \"*.com/x\" }",
            "carriers[0].sns.cert_host_pattern",
            "one label",
        ),
        (
            "kind = \"http\"",
            "carriers[0].inbound_secret",
            "bearer secret",
        ),
        (
            "kind = \"sim\"\nsns = { allowed_topics = [\"arn:aws:sns:us-east-1:1:t\"] }",
            "carriers[0].sns",
            "belong to a carrier of kind",
        ),
    ];
    for (carrier, key, expected) in cases {
        let message = refused(&with_carrier(carrier));
        assert!(
            message.contains(&format!("`{key}`")) && message.contains(expected),
            "{carrier}: {message}"
        );
        assert!(message.starts_with("carriers.toml"), "{message}");
    }

    // A twilio carrier needs the public URL its signatures are checked against.
    let no_public_url = with_carrier(
        "kind = \"twilio\"\ntwilio = { account_sid = \"AC1\", auth_token = \"0123456789\" }",
    )
    .replace("public_url = \"https://sms.example.com\"", "");
    let message = refused(&no_public_url);
    assert!(message.contains("engine.public_url"), "{message}");
}

#[tokio::test]
async fn a_named_environment_variable_that_is_unset_stops_the_engine_with_the_key() {
    let config = Config::parse(
        &with_carrier(
            r#"kind = "twilio"
twilio = { account_sid = "AC1", auth_token_env = "SHORTBOX_TEST_UNSET_TOKEN" }"#,
        ),
        "t.toml",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let error = match shortbox::engine::Engine::open(config, dir.path()).await {
        Ok(_) => panic!("opened without the auth token"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains("carriers[0].twilio.auth_token_env")
            && error.contains("SHORTBOX_TEST_UNSET_TOKEN"),
        "{error}"
    );

    let config = Config::parse(
        &with_carrier(&format!(
            "kind = \"sns\"\nsns = {{ allowed_topics = [\"arn:aws:sns:us-east-1:1:t\"], trusted_certs = [\"{}/nope.pem\"] }}",
            dir.path().display()
        )),
        "s.toml",
    )
    .unwrap();
    let error = match shortbox::engine::Engine::open(config, dir.path()).await {
        Ok(_) => panic!("opened without the certificate"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains("carriers[0].sns.trusted_certs[0]"),
        "{error}"
    );
}
