//! The HTTP side over a real socket: carrier ingress, health, metrics, JSON errors, and the
//! request-head timeout for sockets that never send a request.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const INBOUND: &str = "/v1/carriers/sim/inbound";

#[tokio::test]
async fn healthz_and_metrics_answer() {
    let t = TestEngine::start(DEMO).await;
    let health = t.http("GET", "/healthz", &[], Vec::new()).await;
    assert_eq!((health.status, health.text().as_str()), (200, "ok"));
    let metrics = t.http("GET", "/metrics", &[], Vec::new()).await;
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4")
    );
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let t = TestEngine::start(DEMO).await;
    let missing = t.http("GET", "/nope", &[], Vec::new()).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["code"], "not_found");
    let wrong = t.http("DELETE", "/healthz", &[], Vec::new()).await;
    assert_eq!(wrong.status, 405);
    assert!(
        wrong.json()["error"]["message"].is_string(),
        "{}",
        wrong.text()
    );
    let get_inbound = t.http("GET", INBOUND, &[], Vec::new()).await;
    assert_eq!(get_inbound.status, 405);
}

#[tokio::test]
async fn a_plain_get_of_the_websocket_path_is_a_json_error() {
    let t = TestEngine::start(DEMO).await;
    let token = t.token(shortbox::protocol::Role::Agent, &["acme"]).await;
    let plain = t
        .http(
            "GET",
            "/v1/ws",
            &[("authorization", format!("Bearer {token}"))],
            Vec::new(),
        )
        .await;
    assert!(
        plain.status >= 400 && plain.status < 500,
        "{}",
        plain.status
    );
    assert!(
        plain.json()["error"]["message"].is_string(),
        "{}",
        plain.text()
    );
}

#[tokio::test]
async fn inbound_is_acknowledged_once_and_replays_answer_the_same() {
    let t = TestEngine::start(DEMO).await;
    let body =
        json!({ "id": "carrier-1", "from": "+14155550100", "to": ACME_DEDICATED, "body": "hi" });
    let (status, ack) = t.post_json(INBOUND, Some(SIM_SECRET), &body).await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ack["routed"], "tenant");
    assert_eq!(ack["tenant"], "acme");
    assert!(ack["message"].as_str().is_some_and(|m| !m.is_empty()));
    let (status, again) = t.post_json(INBOUND, Some(SIM_SECRET), &body).await;
    assert_eq!(
        (status, &again),
        (200, &ack),
        "the same carrier id answers the same"
    );
}

#[tokio::test]
async fn inbound_refusals_are_json_with_the_right_status() {
    let t = TestEngine::start(DEMO).await;
    let body = json!({ "id": "c-2", "from": "+14155550100", "to": ACME_DEDICATED, "body": "hi" });

    let (status, error) = t.post_json(INBOUND, Some("wrong-secret"), &body).await;
    assert_eq!(status, 401, "{error}");
    assert!(
        error["error"]["code"].is_string() && error["error"]["message"].is_string(),
        "{error}"
    );
    let (status, _) = t.post_json(INBOUND, None, &body).await;
    assert_eq!(status, 401);

    let (status, error) = t
        .post_json(
            &format!("{INBOUND}?token={SIM_SECRET}"),
            Some(SIM_SECRET),
            &body,
        )
        .await;
    assert_eq!(status, 401, "a secret in the URL is refused: {error}");

    let headers = [
        ("authorization", format!("Bearer {SIM_SECRET}")),
        ("content-type", "application/json".into()),
    ];
    let garbage = t
        .http("POST", INBOUND, &headers, b"{not json".to_vec())
        .await;
    assert_eq!(garbage.status, 400, "{}", garbage.text());
    assert!(garbage.json()["error"]["message"].is_string());

    let big = json!({ "id": "c-3", "from": "+14155550100", "to": ACME_DEDICATED, "body": "x".repeat(70 * 1024) });
    let (status, error) = t.post_json(INBOUND, Some(SIM_SECRET), &big).await;
    assert_eq!(status, 413, "{error}");
    assert_eq!(error["error"]["code"], "body_too_large");

    // The engine still works.
    let (status, _) = t.post_json(INBOUND, Some(SIM_SECRET), &body).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_body_over_64_kib_without_content_length_is_413() {
    let t = TestEngine::start(DEMO).await;
    let mut socket = tokio::net::TcpStream::connect(t.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST {INBOUND} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {SIM_SECRET}\r\ntransfer-encoding: chunked\r\n\r\n",
        t.addr
    );
    socket
        .write_all(head.as_bytes())
        .await
        .expect("write the head");
    let chunk = vec![b'x'; 16 * 1024];
    for _ in 0..5 {
        let mut piece = format!("{:x}\r\n", chunk.len()).into_bytes();
        piece.extend_from_slice(&chunk);
        piece.extend_from_slice(b"\r\n");
        if socket.write_all(&piece).await.is_err() {
            break; // the server may answer and stop reading early
        }
    }
    let _ = socket.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("}}") {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("body_too_large"), "{answer}");
}

#[tokio::test]
async fn a_socket_that_sends_no_request_is_dropped_after_five_seconds() {
    let t = TestEngine::start(DEMO).await;
    let started = Instant::now();
    let mut silent = tokio::net::TcpStream::connect(t.addr)
        .await
        .expect("connect");
    let mut partial = tokio::net::TcpStream::connect(t.addr)
        .await
        .expect("connect");
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .expect("half a request head");

    // Meanwhile, a proper request on another connection is served at once.
    let health = t.http("GET", "/healthz", &[], Vec::new()).await;
    assert_eq!(health.status, 200);

    for socket in [&mut silent, &mut partial] {
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf)).await;
        let elapsed = started.elapsed();
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(n)) => panic!(
                "expected the connection to be dropped, got {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(_) => panic!("still open after {elapsed:?}"),
        }
        assert!(
            elapsed >= Duration::from_millis(4500),
            "dropped too early: {elapsed:?}"
        );
        assert!(
            elapsed < Duration::from_secs(8),
            "dropped too late: {elapsed:?}"
        );
    }
}

#[tokio::test]
async fn a_kept_alive_connection_serves_several_requests() {
    let t = TestEngine::start(DEMO).await;
    let mut socket = tokio::net::TcpStream::connect(t.addr)
        .await
        .expect("connect");
    for _ in 0..3 {
        socket
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("a request");
        let mut buf = vec![0u8; 1024];
        let n = tokio::time::timeout(PATIENCE, socket.read(&mut buf))
            .await
            .expect("in time")
            .expect("an answer");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    }
}
