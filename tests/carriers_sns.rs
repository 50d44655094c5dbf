//! AWS two-way SMS over SNS, over real sockets: notifications signed with a test certificate
//! (signature versions 1 and 2) are routed and deduplicated on `MessageId`; a wrong signature,
//! a certificate URL off the allowed host pattern, or an unknown topic is refused (403) and
//! changes nothing. With no trusted certificate configured, the signing certificate is fetched
//! over HTTPS (from a local TLS server trusted through `ca_certs`) and cached, and a
//! subscription is confirmed only for an allowed topic and an allowed host.

mod common;

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:sms-inbound";
const CERT_URL: &str =
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem";
const SNS_PATH: &str = "/v1/carriers/aws/sns";
const CODE: &str = "55124";

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn config(sns: &str) -> String {
    format!(
        r#"
[[tenants]]
id = "acme"
name = "Acme Shoes"
help_text = "Acme Shoes: help at acme.example."
stop_text = "You are unsubscribed from Acme Shoes."

[[codes]]
code = "{CODE}"
country = "US"
kind = "dedicated"
tenant = "acme"
carrier = "aws"

[[carriers]]
id = "aws"
kind = "sns"
sns = {sns}
"#
    )
}

fn trusted_config() -> String {
    config(&format!(
        r#"{{ allowed_topics = ["{TOPIC}"], trusted_certs = ["{}"] }}"#,
        fixture("sns-signing-cert.pem")
    ))
}

/// The canonical string AWS signs (written here from the AWS documentation, independently of
/// the engine's).
fn canonical(e: &Value) -> String {
    let names: &[&str] = if e["Type"] == "Notification" {
        &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ]
    } else {
        &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ]
    };
    names
        .iter()
        .filter_map(|n| e[*n].as_str().map(|v| format!("{n}\n{v}\n")))
        .collect()
}

/// Signs `e` with SHA-256 (signature version 2). Version 1 (SHA-1) envelopes come from
/// `tests/fixtures/sns-v1-notification.json`: ring does not sign with SHA-1.
fn sign_with(key_file: &str, e: &mut Value) {
    let der = std::fs::read(fixture(key_file)).expect("the test key");
    let key = ring::signature::RsaKeyPair::from_pkcs8(&der).expect("a PKCS#8 RSA key");
    let mut sig = vec![0; key.public().modulus_len()];
    e["SignatureVersion"] = json!("2");
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        canonical(e).as_bytes(),
        &mut sig,
    )
    .expect("signed");
    e["Signature"] = json!(base64::engine::general_purpose::STANDARD.encode(sig));
}

/// The SHA-1 (version 1) notification signed with OpenSSL.
fn v1_notification() -> Value {
    let text = std::fs::read_to_string(fixture("sns-v1-notification.json")).expect("fixture");
    serde_json::from_str(&text).expect("JSON")
}

fn notification(message_id: &str, from: &str, body: &str, cert_url: &str) -> Value {
    let sms = json!({
        "originationNumber": from,
        "destinationNumber": format!("+1{CODE}"),
        "messageKeyword": "KEYWORD_123456789012",
        "messageBody": body,
        "inboundMessageId": uuid::Uuid::new_v4().to_string(),
        "previousPublishedMessageId": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    });
    json!({
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": TOPIC,
        "Message": sms.to_string(),
        "Timestamp": "2026-11-22T10:00:00.000Z",
        "SigningCertURL": cert_url,
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    })
}

fn signed_notification(message_id: &str, body: &str) -> Value {
    let mut e = notification(message_id, "+14255550182", body, CERT_URL);
    sign_with("sns-signing-key.pk8", &mut e);
    e
}

async fn post(t: &TestEngine, e: &Value) -> HttpReply {
    // SNS posts JSON as text/plain.
    let headers = [
        ("content-type", "text/plain; charset=UTF-8".to_string()),
        (
            "x-amz-sns-message-type",
            e["Type"].as_str().unwrap_or("").to_string(),
        ),
    ];
    t.http("POST", SNS_PATH, &headers, e.to_string().into_bytes())
        .await
}

async fn heads(t: &TestEngine) -> Vec<u64> {
    let mut heads = Vec::new();
    for s in ["tenant:acme", "ops"] {
        heads.push(t.engine.stream_position(s).await.expect("stream").head);
    }
    heads
}

#[tokio::test]
async fn notifications_signed_with_the_test_certificate_are_routed_once() {
    let t = TestEngine::start(&trusted_config()).await;
    let mut agent = t.agent("acme").await;
    let v1 = v1_notification();
    assert_eq!(v1["SignatureVersion"], "1");
    for e in [
        v1.clone(),
        signed_notification("sns-msg-2", "hello over v2"),
    ] {
        let reply = post(&t, &e).await;
        assert_eq!(
            reply.status,
            200,
            "v{}: {}",
            e["SignatureVersion"],
            reply.text()
        );
        let ack = reply.json();
        assert_eq!(
            (ack["routed"].as_str(), ack["tenant"].as_str()),
            (Some("tenant"), Some("acme"))
        );
    }
    let list = agent
        .call("conversations.list", json!({ "tenant": "acme" }))
        .await
        .unwrap();
    assert_eq!(list["items"][0]["subscriber"], "+14255550182");
    assert_eq!(list["items"][0]["last_message"]["body"], "hello over v2");

    // SNS redelivers with the same MessageId: same answer, nothing new.
    let before = heads(&t).await;
    for e in [v1, signed_notification("sns-msg-2", "hello over v2")] {
        let again = post(&t, &e).await;
        assert_eq!(again.status, 200);
    }
    assert_eq!(heads(&t).await, before);
}

#[tokio::test]
async fn wrong_signatures_bad_certificate_urls_and_unknown_topics_are_refused() {
    let t = TestEngine::start(&trusted_config()).await;
    let before = heads(&t).await;
    let refused = |reply: &HttpReply, code: &str| {
        assert_eq!(reply.status, 403, "{}", reply.text());
        assert_eq!(reply.json()["error"]["code"], code, "{}", reply.text());
    };

    // Signed by another key.
    let mut other = notification("n-1", "+14255550182", "hi", CERT_URL);
    sign_with("sns-other-key.pk8", &mut other);
    refused(&post(&t, &other).await, "bad_signature");
    // Changed after signing.
    let mut changed = signed_notification("n-2", "hi");
    changed["Message"] = json!(changed["Message"].as_str().unwrap().replace("hi", "pay me"));
    refused(&post(&t, &changed).await, "bad_signature");
    // A SHA-1 signature presented as version 2, a SHA-256 one as version 1, a version 3.
    let mut relabelled = v1_notification();
    relabelled["SignatureVersion"] = json!("2");
    refused(&post(&t, &relabelled).await, "bad_signature");
    let mut relabelled = signed_notification("n-3", "hi");
    relabelled["SignatureVersion"] = json!("1");
    refused(&post(&t, &relabelled).await, "bad_signature");
    let mut unknown_version = signed_notification("n-3b", "hi");
    unknown_version["SignatureVersion"] = json!("3");
    refused(&post(&t, &unknown_version).await, "bad_signature");
    // The v1 fixture with its message changed.
    let mut changed = v1_notification();
    changed["MessageId"] = json!("another-id");
    refused(&post(&t, &changed).await, "bad_signature");
    // Certificate URLs off the pattern, even with a signature that would verify.
    for url in [
        "https://evil.example/SimpleNotificationService-x.pem",
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
        "https://sns.us-east-1.amazonaws.com/not-a-certificate.txt",
    ] {
        let mut e = notification("n-4", "+14255550182", "hi", url);
        sign_with("sns-signing-key.pk8", &mut e);
        refused(&post(&t, &e).await, "bad_certificate_url");
    }
    // A topic that is not ours, correctly signed.
    let mut stranger = notification("n-5", "+14255550182", "hi", CERT_URL);
    stranger["TopicArn"] = json!("arn:aws:sns:us-east-1:999999999999:someone-else");
    sign_with("sns-signing-key.pk8", &mut stranger);
    refused(&post(&t, &stranger).await, "unknown_topic");

    assert_eq!(heads(&t).await, before, "nothing was stored or told");

    // Not an SNS envelope at all: 400 with what was expected.
    let garbage = t
        .http("POST", SNS_PATH, &[], b"{\"hello\":1}".to_vec())
        .await;
    assert_eq!(garbage.status, 400);
    assert!(
        garbage.text().contains("SigningCertURL"),
        "{}",
        garbage.text()
    );
    // A verified notification whose sender is not a phone number: 400 with a reason.
    let mut alpha = notification("n-6", "AMAZON", "hi", CERT_URL);
    sign_with("sns-signing-key.pk8", &mut alpha);
    let reply = post(&t, &alpha).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.text().contains("originationNumber"));
}

/// A minimal HTTPS server on localhost: serves the signing certificate at `*.pem`, answers 200
/// to anything else, and records every request line.
struct TlsServer {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

async fn tls_server() -> TlsServer {
    use rustls_pki_types::pem::PemObject;
    let certs: Vec<rustls_pki_types::CertificateDer<'static>> =
        rustls_pki_types::CertificateDer::pem_file_iter(fixture("localhost-cert.pem"))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(fixture("localhost-key.pem")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let signing_cert = std::fs::read(fixture("sns-signing-cert.pem")).unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let log = log.clone();
            let signing_cert = signing_cert.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                log.lock().unwrap().push(line.clone());
                let body: Vec<u8> = if line.contains(".pem ") {
                    signing_cert
                } else {
                    b"<ConfirmSubscriptionResponse/>".to_vec()
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(&body).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    TlsServer { port, seen }
}

fn confirmation(topic: &str, subscribe_url: &str, cert_url: &str) -> Value {
    let mut e = json!({
        "Type": "SubscriptionConfirmation",
        "MessageId": uuid::Uuid::new_v4().to_string(),
        "Token": "2336412f37fb687f5d51e6e2425c464de12884a8",
        "TopicArn": topic,
        "Message": format!("You have chosen to subscribe to the topic {topic}.\nTo confirm the subscription, visit the SubscribeURL included in this message."),
        "SubscribeURL": subscribe_url,
        "Timestamp": "2026-11-22T10:00:00.000Z",
        "SigningCertURL": cert_url,
    });
    sign_with("sns-signing-key.pk8", &mut e);
    e
}

#[tokio::test]
async fn certificates_are_fetched_over_https_from_the_allowed_host_and_cached() {
    let server = tls_server().await;
    let t = TestEngine::start(&config(&format!(
        r#"{{ allowed_topics = ["{TOPIC}"], cert_host_pattern = "localhost:*", ca_certs = ["{}"] }}"#,
        fixture("test-ca.pem")
    )))
    .await;
    let base = format!("https://localhost:{}", server.port);
    let cert_url = format!("{base}/SimpleNotificationService-test.pem");
    let seen = || server.seen.lock().unwrap().clone();

    // A stranger's topic: refused before any fetch.
    let stranger = confirmation(
        "arn:aws:sns:us-east-1:999999999999:x",
        &format!("{base}/?Action=ConfirmSubscription"),
        &cert_url,
    );
    assert_eq!(post(&t, &stranger).await.status, 403);
    // A subscribe URL on another host (127.0.0.1 is not "localhost:*"): refused, not visited.
    let elsewhere = confirmation(
        TOPIC,
        &format!(
            "https://127.0.0.1:{}/?Action=ConfirmSubscription",
            server.port
        ),
        &cert_url,
    );
    let reply = post(&t, &elsewhere).await;
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert!(
        seen().iter().all(|l| !l.contains("ConfirmSubscription")),
        "{:?}",
        seen()
    );

    // Our topic: the certificate is fetched, the signature verified, the subscription confirmed.
    let subscribe = format!("{base}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f");
    let reply = post(&t, &confirmation(TOPIC, &subscribe, &cert_url)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["confirmed"], true);
    assert!(
        seen()
            .iter()
            .any(|l| l.starts_with("GET /?Action=ConfirmSubscription")),
        "{:?}",
        seen()
    );

    // Notifications verify against the cached certificate: fetched once in all.
    for i in 0..3 {
        let mut e = notification(&format!("fetched-{i}"), "+14255550182", "hi", &cert_url);
        sign_with("sns-signing-key.pk8", &mut e);
        let reply = post(&t, &e).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let fetches = seen().iter().filter(|l| l.contains(".pem ")).count();
    assert_eq!(fetches, 1, "{:?}", seen());

    // A wrong signature is still refused with a fetched certificate.
    let mut forged = notification("fetched-x", "+14255550182", "hi", &cert_url);
    sign_with("sns-other-key.pk8", &mut forged);
    assert_eq!(post(&t, &forged).await.status, 403);
}

#[tokio::test]
async fn a_certificate_server_the_engine_does_not_trust_is_not_used() {
    let server = tls_server().await;
    // Same as above without `ca_certs`: the local server's TLS certificate is not trusted.
    let t = TestEngine::start(&config(&format!(
        r#"{{ allowed_topics = ["{TOPIC}"], cert_host_pattern = "localhost:*" }}"#
    )))
    .await;
    let cert_url = format!(
        "https://localhost:{}/SimpleNotificationService-test.pem",
        server.port
    );
    let mut e = notification("untrusted-1", "+14255550182", "hi", &cert_url);
    sign_with("sns-signing-key.pk8", &mut e);
    let reply = post(&t, &e).await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(reply.json()["error"]["code"], "certificate_unavailable");
    assert!(
        server.seen.lock().unwrap().is_empty(),
        "no request got through TLS"
    );
}
