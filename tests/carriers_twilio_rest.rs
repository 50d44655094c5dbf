//! The Twilio-compatible REST client against a local provider (axum on 127.0.0.1:0) that checks
//! the exact request and answers with errors and delays: retries on timeouts, 5xx and 429 only;
//! never on other 4xx; an ambiguous failure (timeout, 5xx) is followed by a lookup before any
//! new POST, so a message the provider took is not sent twice.

mod carriers_support;
mod common;

use std::time::Duration;

use base64::Engine as _;
use carriers_support::*;
use serde_json::json;
use shortbox::config::Config;
use shortbox::engine::carriers::twilio::TwilioCarrier;
use shortbox::engine::carriers::{Reconciled, SendOutcome};
use shortbox::protocol::Message;

fn message(body: &str) -> Message {
    serde_json::from_value(json!({
        "id": uuid::Uuid::now_v7().to_string(),
        "direction": "out",
        "code": CODE,
        "subscriber": SUBSCRIBER,
        "body": body,
        "encoding": "gsm7",
        "segments": 1,
        "cost_micros": 0,
        "status": "queued",
        "created_at": jiff::Timestamp::now().to_string(),
        "author": "agent-1",
    }))
    .expect("a message")
}

fn carrier(base_url: &str) -> TwilioCarrier {
    let config = Config::parse(&twilio_config(base_url), "test.toml").expect("valid");
    TwilioCarrier::from_config(&config, 0).expect("the carrier")
}

fn accepted(outcome: &SendOutcome) -> &str {
    match outcome {
        SendOutcome::Accepted { carrier_id } => carrier_id,
        other => panic!("expected Accepted, got {other:?}"),
    }
}

#[tokio::test]
async fn the_request_is_exactly_what_the_provider_expects() {
    let mock = MockTwilio::start().await;
    let outcome = carrier(&mock.base_url())
        .send(&message("Hello & welcome, 100%"))
        .await;
    let sid = accepted(&outcome).to_string();
    assert_eq!(mock.sid_for("Hello & welcome, 100%"), Some(sid));

    let creates = mock.creates();
    assert_eq!(creates.len(), 1);
    let r = &creates[0];
    assert_eq!(
        r.path,
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
    );
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"));
    assert_eq!(
        r.authorization.as_deref(),
        Some(format!("Basic {basic}").as_str())
    );
    assert_eq!(
        r.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let mut fields = r.form.clone();
    fields.sort();
    assert_eq!(
        fields,
        pairs(&[
            ("Body", "Hello & welcome, 100%"),
            ("From", CODE),
            ("StatusCallback", &format!("{PUBLIC_URL}{STATUS_PATH}")),
            ("To", SUBSCRIBER),
        ])
    );
    assert!(
        mock.lists().is_empty(),
        "no lookup when the answer was clear"
    );
}

#[tokio::test]
async fn client_errors_are_never_retried_and_21610_means_opted_out() {
    let mock = MockTwilio::start().await;
    let c = carrier(&mock.base_url());
    mock.script([Reply::Error {
        status: 400,
        code: Some(21211),
        retry_after: None,
    }]);
    assert_eq!(
        c.send(&message("a")).await,
        SendOutcome::Refused {
            error: "21211: scripted error".into(),
            opted_out: false
        }
    );
    mock.script([Reply::Error {
        status: 400,
        code: Some(21610),
        retry_after: None,
    }]);
    match c.send(&message("b")).await {
        SendOutcome::Refused {
            error,
            opted_out: true,
        } => {
            assert!(error.starts_with("opted_out: 21610"), "{error}")
        }
        other => panic!("expected an opted-out refusal, got {other:?}"),
    }
    for status in [401, 403, 404, 422] {
        mock.script([Reply::Error {
            status,
            code: None,
            retry_after: None,
        }]);
        match c.send(&message("c")).await {
            SendOutcome::Refused {
                error,
                opted_out: false,
            } => {
                assert!(error.starts_with(&format!("HTTP {status}")), "{error}")
            }
            other => panic!("{status}: expected a refusal, got {other:?}"),
        }
    }
    assert_eq!(mock.creates().len(), 6, "one POST per message, no retry");
    assert!(mock.lists().is_empty());
}

#[tokio::test]
async fn server_errors_are_retried_with_back_off_after_checking_the_provider_has_nothing() {
    let mock = MockTwilio::start().await;
    let c = carrier(&mock.base_url());
    mock.script([
        Reply::Error {
            status: 500,
            code: None,
            retry_after: None,
        },
        Reply::Error {
            status: 503,
            code: None,
            retry_after: None,
        },
    ]);
    let outcome = c.send(&message("retry me")).await;
    accepted(&outcome);
    let creates = mock.creates();
    assert_eq!(creates.len(), 3);
    assert!(
        creates.iter().all(|r| r.form == creates[0].form),
        "the same request each time"
    );
    // Each retry came after a lookup, and after a back-off (5 ms doubling, jittered to ≥ half).
    let lists = mock.lists();
    assert_eq!(lists.len(), 2);
    for (i, l) in lists.iter().enumerate() {
        assert!(creates[i].at <= l.at && l.at <= creates[i + 1].at);
        let q: Vec<(String, String)> =
            form_urlencoded::parse(l.query.as_deref().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        assert!(
            q.contains(&("To".into(), SUBSCRIBER.into()))
                && q.contains(&("From".into(), CODE.into())),
            "{q:?}"
        );
        assert!(
            l.authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Basic "))
        );
    }
    assert!(creates[1].at - creates[0].at >= Duration::from_micros(2500));
    assert!(creates[2].at - creates[1].at >= Duration::from_millis(5));
}

#[tokio::test]
async fn a_provider_that_keeps_failing_fails_the_message_after_max_attempts() {
    let mock = MockTwilio::start().await;
    let c = carrier(&mock.base_url());
    mock.script(std::iter::repeat_n(
        Reply::Error {
            status: 502,
            code: None,
            retry_after: None,
        },
        3,
    ));
    match c.send(&message("never")).await {
        SendOutcome::Refused {
            error,
            opted_out: false,
        } => {
            assert!(
                error.contains("after 3 attempts") && error.contains("HTTP 502"),
                "{error}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(mock.creates().len(), 3, "max_attempts = 3");
    // The last answer was ambiguous too: it looked once more before giving up.
    assert_eq!(mock.lists().len(), 3);
}

#[tokio::test]
async fn too_many_requests_is_retried_without_a_lookup() {
    let mock = MockTwilio::start().await;
    let c = carrier(&mock.base_url());
    mock.script([Reply::Error {
        status: 429,
        code: Some(20429),
        retry_after: Some(0),
    }]);
    accepted(&c.send(&message("busy")).await);
    assert_eq!(mock.creates().len(), 2);
    assert!(mock.lists().is_empty(), "429 took nothing: no need to ask");
}

#[tokio::test]
async fn a_timeout_where_the_provider_took_nothing_is_sent_again() {
    let mock = MockTwilio::start().await;
    let c = carrier(&mock.base_url());
    // Answers after 1 s; the client gives up at 400 ms.
    mock.script([Reply::Slow(Duration::from_secs(1), 500)]);
    accepted(&c.send(&message("slow")).await);
    assert_eq!(mock.creates().len(), 2);
    assert_eq!(mock.lists().len(), 1);
}

#[tokio::test]
async fn a_timeout_where_the_provider_took_the_message_is_not_sent_twice() {
    let mock = MockTwilio::start().await;
    let c = carrier(&mock.base_url());
    mock.script([Reply::CreatedLate(Duration::from_secs(1))]);
    let outcome = c.send(&message("took it")).await;
    assert_eq!(
        Some(accepted(&outcome).to_string()),
        mock.sid_for("took it")
    );
    assert_eq!(mock.creates().len(), 1, "no duplicate");
    assert_eq!(mock.lists().len(), 1);
}

#[tokio::test]
async fn an_unreachable_provider_fails_the_message_after_its_attempts() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let c = carrier(&format!("http://{closed}"));
    match c.send(&message("nowhere")).await {
        SendOutcome::Refused {
            error,
            opted_out: false,
        } => {
            assert!(error.contains("after 3 attempts"), "{error}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(
        c.reconcile(&message("x")).await,
        Reconciled::Unknown { .. }
    ));
}

#[tokio::test]
async fn reconciliation_finds_what_the_provider_has_once() {
    let mock = MockTwilio::start().await;
    let c = carrier(&mock.base_url());
    let m = message("Your order shipped");
    assert_eq!(c.reconcile(&m).await, Reconciled::NotSent);
    mock.put_record("SMother", "+14155550199", CODE, "Your order shipped");
    mock.put_record("SMa", SUBSCRIBER, CODE, "Your order shipped");
    mock.put_record("SMb", SUBSCRIBER, CODE, "Your order shipped");
    assert_eq!(
        c.reconcile(&m).await,
        Reconciled::Sent {
            carrier_id: "SMa".into()
        }
    );
    // Two identical texts: each provider record is matched once, oldest first.
    let twin = message("Your order shipped");
    assert_eq!(
        c.reconcile(&twin).await,
        Reconciled::Sent {
            carrier_id: "SMb".into()
        }
    );
    let third = message("Your order shipped");
    assert_eq!(c.reconcile(&third).await, Reconciled::NotSent);
    assert!(mock.creates().is_empty(), "reconciling never sends");
}
