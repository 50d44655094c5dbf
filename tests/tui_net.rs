//! The client's network task against a scripted engine on a real socket: headers and
//! subprotocol, sync from the cursor, in-order delivery with duplicates dropped and gaps
//! re-synced, call/reply correlation, reconnect-and-resume, and close-code advice.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use shortbox::client::net::{self, NetCommand, NetEvent, NetStatus};
use shortbox::client::testing::{hello, owner};
use shortbox::protocol::SUBPROTOCOL;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, http};

type Ws = WebSocketStream<TcpStream>;

const WAIT: Duration = Duration::from_secs(10);

/// Accepts one WebSocket, checking what the protocol requires of the client's request.
async fn accept(listener: &TcpListener) -> Ws {
    let (tcp, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("client came")
        .unwrap();
    #[allow(clippy::result_large_err)] // the callback's signature is tungstenite's
    let check = |req: &Request, mut resp: Response| {
        assert_eq!(req.uri().path(), "/v1/ws");
        assert_eq!(req.headers()["authorization"], "Bearer T0KEN");
        assert_eq!(req.headers()["sec-websocket-protocol"], SUBPROTOCOL);
        assert!(req.uri().query().is_none(), "no token in the query string");
        resp.headers_mut().insert(
            "sec-websocket-protocol",
            http::HeaderValue::from_static(SUBPROTOCOL),
        );
        Ok(resp)
    };
    tokio_tungstenite::accept_hdr_async(tcp, check)
        .await
        .expect("handshake")
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// The next JSON frame from the client (pings and pongs skipped).
async fn recv(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("client frame")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

fn ev(seq: u64) -> Value {
    json!({ "op": "ev", "stream": "tenant:acme", "epoch": "E", "seq": seq,
            "kind": "message.received", "ts": "2026-11-22T10:00:00.000Z", "data": {} })
}

struct Client {
    events: mpsc::UnboundedReceiver<NetEvent>,
    commands: mpsc::UnboundedSender<NetCommand>,
}

impl Client {
    fn start(addr: std::net::SocketAddr) -> Self {
        let (tx, rx) = mpsc::unbounded_channel::<NetEvent>();
        let h = net::spawn(format!("ws://{addr}"), "T0KEN".into(), tx);
        Client {
            events: rx,
            commands: h.commands,
        }
    }

    async fn next(&mut self) -> NetEvent {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("net event")
            .expect("net task alive")
    }

    /// The next event that is not a status change.
    async fn next_data(&mut self) -> NetEvent {
        loop {
            match self.next().await {
                NetEvent::Status(_) => continue,
                e => return e,
            }
        }
    }

    async fn seqs(&mut self, n: usize) -> Vec<u64> {
        let mut out = Vec::new();
        while out.len() < n {
            if let NetEvent::Event(e) = self.next_data().await {
                out.push(e.seq);
            }
        }
        out
    }
}

#[tokio::test]
async fn syncs_resumes_and_delivers_in_order_once() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut client = Client::start(listener.local_addr().unwrap());

    let mut ws = accept(&listener).await;
    send(
        &mut ws,
        serde_json::to_value(shortbox::protocol::ServerFrame::Hello(hello(owner(&[(
            "acme", "Acme",
        )]))))
        .unwrap(),
    )
    .await;
    assert!(matches!(client.next_data().await, NetEvent::Connected(_)));
    let sync = recv(&mut ws).await;
    assert_eq!(sync["op"], "sync");
    assert_eq!(
        sync["streams"],
        json!([{ "stream": "tenant:acme", "epoch": null, "after": null }])
    );
    send(&mut ws, json!({ "op": "reset", "req": sync["req"], "stream": "tenant:acme", "epoch": "E", "head": 5, "reason": "fresh" })).await;
    assert!(matches!(client.next_data().await, NetEvent::Reset { .. }));

    // 6, 7, a duplicate 7, then a gap: 9 arrives before 8.
    for seq in [6, 7, 7, 9] {
        send(&mut ws, ev(seq)).await;
    }
    assert_eq!(client.seqs(2).await, [6, 7]);
    let resync = recv(&mut ws).await;
    assert_eq!(
        resync["streams"],
        json!([{ "stream": "tenant:acme", "epoch": "E", "after": 7 }])
    );
    for seq in [8, 9] {
        send(&mut ws, ev(seq)).await;
    }
    send(&mut ws, json!({ "op": "synced", "req": resync["req"], "stream": "tenant:acme", "epoch": "E", "head": 9 })).await;
    assert_eq!(client.seqs(2).await, [8, 9]);
    assert!(matches!(client.next_data().await, NetEvent::Synced { .. }));

    // A call and its reply.
    client
        .commands
        .send(NetCommand::Call {
            id: 42,
            method: "codes.list".into(),
            params: json!({ "tenant": "acme" }),
        })
        .unwrap();
    let call = recv(&mut ws).await;
    assert_eq!(call["method"], "codes.list");
    send(
        &mut ws,
        json!({ "op": "reply", "req": call["req"], "result": { "items": [] } }),
    )
    .await;
    assert_eq!(
        client.next_data().await,
        NetEvent::Reply {
            call: 42,
            result: Ok(json!({ "items": [] }))
        }
    );

    // A call in flight when the engine restarts fails; the client reconnects and resumes.
    client
        .commands
        .send(NetCommand::Call {
            id: 43,
            method: "messages.send".into(),
            params: json!({}),
        })
        .unwrap();
    let _ = recv(&mut ws).await;
    ws.close(Some(CloseFrame {
        code: CloseCode::Restart,
        reason: "restart".into(),
    }))
    .await
    .unwrap();
    drop(ws);
    loop {
        match client.next().await {
            NetEvent::CallFailed { call, .. } => assert_eq!(call, 43),
            NetEvent::Status(NetStatus::Retrying { after, .. }) => {
                assert!(
                    after <= Duration::from_millis(500),
                    "first retry within 0.5 s"
                );
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    let mut ws = accept(&listener).await;
    send(
        &mut ws,
        serde_json::to_value(shortbox::protocol::ServerFrame::Hello(hello(owner(&[(
            "acme", "Acme",
        )]))))
        .unwrap(),
    )
    .await;
    assert!(matches!(client.next_data().await, NetEvent::Connected(_)));
    let sync = recv(&mut ws).await;
    assert_eq!(
        sync["streams"],
        json!([{ "stream": "tenant:acme", "epoch": "E", "after": 9 }])
    );
    // Replay overlaps what was seen: only 10 is new.
    for seq in [9, 10] {
        send(&mut ws, ev(seq)).await;
    }
    send(&mut ws, json!({ "op": "synced", "req": sync["req"], "stream": "tenant:acme", "epoch": "E", "head": 10 })).await;
    assert_eq!(client.seqs(1).await, [10]);
    assert!(matches!(client.next_data().await, NetEvent::Synced { .. }));
    client.commands.send(NetCommand::Shutdown).unwrap();
    // The client says goodbye with a normal close.
    let bye = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
    assert!(matches!(bye, Some(Ok(Message::Close(Some(f)))) if f.code == CloseCode::Normal));
}

#[tokio::test]
async fn a_revoked_token_stops_until_asked_again() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut client = Client::start(listener.local_addr().unwrap());
    let mut ws = accept(&listener).await;
    ws.close(Some(CloseFrame {
        code: CloseCode::from(4401),
        reason: "token revoked".into(),
    }))
    .await
    .unwrap();
    loop {
        match client.next().await {
            NetEvent::Status(NetStatus::Stopped { new_token, reason }) => {
                assert!(new_token);
                assert!(reason.contains("4401"), "{reason}");
                break;
            }
            NetEvent::Status(NetStatus::Retrying { .. }) => panic!("must not retry after 4401"),
            _ => {}
        }
    }
    // Calls fail at once while stopped; Ctrl-R (ReconnectNow) tries again.
    client
        .commands
        .send(NetCommand::Call {
            id: 1,
            method: "codes.list".into(),
            params: json!({}),
        })
        .unwrap();
    assert!(matches!(
        client.next().await,
        NetEvent::CallFailed { call: 1, .. }
    ));
    client.commands.send(NetCommand::ReconnectNow).unwrap();
    let _ws = accept(&listener).await;
    assert!(matches!(
        client.next().await,
        NetEvent::Status(NetStatus::Connecting { .. })
    ));
}

#[tokio::test]
async fn an_http_401_is_a_token_problem_not_a_retry() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut client = Client::start(listener.local_addr().unwrap());
    let (mut tcp, _) = listener.accept().await.unwrap();
    let mut buf = vec![0u8; 4096];
    let _ = tokio::io::AsyncReadExt::read(&mut tcp, &mut buf).await;
    tokio::io::AsyncWriteExt::write_all(
        &mut tcp,
        b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 13\r\nconnection: close\r\n\r\nbad token...",
    )
    .await
    .unwrap();
    loop {
        if let NetEvent::Status(s) = client.next().await {
            match s {
                NetStatus::Stopped { new_token, .. } => {
                    assert!(new_token);
                    break;
                }
                NetStatus::Retrying { .. } => panic!("a 401 is not retried"),
                NetStatus::Connecting { .. } => {}
            }
        }
    }
}

#[tokio::test]
async fn an_unreachable_engine_is_retried_with_backoff() {
    // Bind then drop: nothing listens on the port.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let mut client = Client::start(addr);
    let mut retries = 0;
    while retries < 3 {
        if let NetEvent::Status(NetStatus::Retrying { after, .. }) = client.next().await {
            assert!(after <= Duration::from_millis(500) * (1 << retries));
            retries += 1;
            client.commands.send(NetCommand::ReconnectNow).unwrap();
        }
    }
}
