//! Test harness: a real engine on a real socket, an HTTP helper and a WebSocket client.
//!
//! [`TestEngine::start`] opens an engine on a fresh temporary data directory, binds
//! `127.0.0.1:0` *before* spawning `server::serve` (so a test never waits for the server to come
//! up), and stops it when dropped. [`WsClient`] speaks protocol v1 like a script would: `call`
//! waits for its own `reply` and keeps every other frame for later, `next_frame_timeout` and
//! `collect_events_until` read what arrives. Raw escape hatches (`send_text`, `send_message`,
//! `upgrade_request`, `connect_with`) exist to test refusals.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use shortbox::config::Config;
use shortbox::engine::Engine;
use shortbox::protocol::{ApiError, Role};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Three tenants; a shared US code, a US code dedicated to acme, a shared CO code; a `sim`
/// carrier whose inbound secret is [`SIM_SECRET`].
pub const DEMO: &str = r#"
[engine]
heartbeat_ms = 20000

[[tenants]]
id = "acme"
name = "Acme Shoes"
timezone = "America/New_York"
help_text = "Acme Shoes: help at acme.example or +1 800 555 0100. Msg&data rates may apply. Reply STOP to cancel."
stop_text = "You are unsubscribed from Acme Shoes. No more messages will be sent."
keywords = [{ code = "55123", word = "SHOES" }]

[[tenants]]
id = "bistro"
name = "Bistro Verde"
timezone = "America/Chicago"
help_text = "Bistro Verde: call +1 800 555 0199. Reply STOP to cancel."
stop_text = "You are unsubscribed from Bistro Verde."
keywords = [{ code = "55123", word = "TABLE" }]

[[tenants]]
id = "tienda"
name = "Tienda Sol"
timezone = "America/Bogota"
help_text = "Tienda Sol: ayuda en tienda.example. Responde STOP para salir."
stop_text = "Ya no recibirás mensajes de Tienda Sol."
keywords = [{ code = "89898", word = "SOL" }]

[[codes]]
code = "55123"
country = "US"
kind = "shared"
carrier = "sim"

[[codes]]
code = "55124"
country = "US"
kind = "dedicated"
tenant = "acme"
carrier = "sim"

[[codes]]
code = "89898"
country = "CO"
kind = "shared"
carrier = "sim"

[[carriers]]
id = "sim"
kind = "sim"
inbound_secret = "sim-inbound-secret-for-tests"

[pricing]
US = 0.0079
CO = 0.0100
"#;

/// The `sim` carrier's inbound bearer secret in [`DEMO`].
pub const SIM_SECRET: &str = "sim-inbound-secret-for-tests";
/// The code dedicated to acme in [`DEMO`]: every inbound on it lands in `tenant:acme`.
pub const ACME_DEDICATED: &str = "55124";

/// [`DEMO`] with `[engine]` settings replaced by `engine` (TOML lines).
pub fn demo_with(engine: &str) -> String {
    DEMO.replace(
        "[engine]\nheartbeat_ms = 20000\n",
        &format!("[engine]\n{engine}\n"),
    )
}

/// How long a test waits for something that should happen at once.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub struct TestEngine {
    pub addr: SocketAddr,
    pub engine: Engine,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestEngine {
    pub async fn start(config_toml: &str) -> TestEngine {
        let dir = tempfile::tempdir().expect("a temporary data directory");
        let config =
            Config::parse(config_toml, "test.toml").expect("the test configuration is valid");
        let engine = Engine::open(config, dir.path())
            .await
            .expect("the engine opens");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("a local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(shortbox::server::serve(
            engine.clone(),
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        TestEngine {
            addr,
            engine,
            stop: Some(stop),
            server: Some(server),
            _dir: dir,
        }
    }

    /// The engine's data directory (where `shortbox agent …` would be pointed).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// A token for a new agent with `role` over `tenants`.
    pub async fn token(&self, role: Role, tenants: &[&str]) -> String {
        let tenants: Vec<String> = tenants.iter().map(|t| t.to_string()).collect();
        let name = format!("{} of {}", role.as_str(), tenants.join("+"));
        self.engine
            .add_agent(&name, role, &tenants)
            .await
            .expect("add_agent gives a token")
    }

    /// A connected client (hello read) for a new agent of `tenant`.
    pub async fn agent(&self, tenant: &str) -> WsClient {
        let token = self.token(Role::Agent, &[tenant]).await;
        WsClient::connect(self.addr, &token)
            .await
            .expect("the agent connects")
    }

    /// Stops the server (live sockets get 4100) and waits for `serve` to return.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(PATIENCE, server)
                .await
                .expect("serve returns after shutdown")
                .expect("serve does not panic")
                .expect("serve ends without an IO error");
        }
    }

    /// `POST path` with a JSON body; the answer's status and JSON body (`Null` if not JSON).
    pub async fn post_json(&self, path: &str, bearer: Option<&str>, body: &Value) -> (u16, Value) {
        let mut headers = vec![("content-type", "application/json".to_string())];
        if let Some(b) = bearer {
            headers.push(("authorization", format!("Bearer {b}")));
        }
        let reply = self
            .http("POST", path, &headers, body.to_string().into_bytes())
            .await;
        (reply.status, reply.json())
    }

    /// Any HTTP/1.1 request over a new connection.
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> HttpReply {
        http(self.addr, method, path, headers, body).await
    }

    /// `GET path` with the headers of a WebSocket upgrade plus `extra`.
    pub async fn upgrade_request(&self, path: &str, extra: &[(&str, String)]) -> HttpReply {
        let mut headers = vec![
            ("connection", "Upgrade".to_string()),
            ("upgrade", "websocket".to_string()),
            ("sec-websocket-version", "13".to_string()),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==".to_string()),
        ];
        headers.extend(extra.iter().cloned());
        self.http("GET", path, &headers, Vec::new()).await
    }

    /// Posts an inbound SMS through the `sim` carrier and returns the acknowledgement.
    pub async fn inbound(&self, id: &str, from: &str, to: &str, body: &str) -> Value {
        let (status, ack) = self
            .post_json(
                "/v1/carriers/sim/inbound",
                Some(SIM_SECRET),
                &json!({ "id": id, "from": from, "to": to, "body": body }),
            )
            .await;
        assert_eq!(status, 200, "inbound {id} accepted: {ack}");
        ack
    }
}

impl Drop for TestEngine {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> HttpReply {
    let stream = TcpStream::connect(addr)
        .await
        .expect("connect to the engine");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP/1.1 handshake");
    tokio::spawn(conn);
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        request = request.header(*name, value.as_str());
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .expect("a well-formed request");
    let response = tokio::time::timeout(PATIENCE, sender.send_request(request))
        .await
        .expect("an answer in time")
        .expect("an HTTP answer");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = if status == 101 {
        Vec::new()
    } else {
        response
            .into_body()
            .collect()
            .await
            .expect("the whole body")
            .to_bytes()
            .to_vec()
    };
    HttpReply {
        status,
        headers,
        body,
    }
}

/// One thing read from the socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Json(Value),
    /// A text frame that is not JSON.
    Text(String),
    Binary(Vec<u8>),
    /// The server's close frame: code (None if it sent none) and reason.
    Close(Option<u16>, String),
    /// The stream ended or failed without a close frame.
    End(String),
}

impl Frame {
    pub fn json(&self) -> Option<&Value> {
        match self {
            Frame::Json(v) => Some(v),
            _ => None,
        }
    }

    pub fn close_code(&self) -> Option<u16> {
        match self {
            Frame::Close(code, _) => *code,
            _ => None,
        }
    }

    pub fn op(&self) -> Option<&str> {
        self.json().and_then(|v| v["op"].as_str())
    }
}

/// A refused WebSocket connection.
#[derive(Debug)]
pub struct ConnectError(pub tungstenite::Error);

impl ConnectError {
    /// The HTTP status of a refused upgrade.
    pub fn status(&self) -> Option<u16> {
        match &self.0 {
            tungstenite::Error::Http(response) => Some(response.status().as_u16()),
            _ => None,
        }
    }

    /// The JSON body of a refused upgrade.
    pub fn json(&self) -> Value {
        match &self.0 {
            tungstenite::Error::Http(response) => response
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct WsClient {
    ws: Socket,
    hello: Value,
    /// The subprotocol the server chose.
    pub protocol: Option<String>,
    next_req: u64,
    backlog: VecDeque<Frame>,
}

impl WsClient {
    /// Connects with `shortbox.v1` and reads `hello`.
    pub async fn connect(addr: SocketAddr, token: &str) -> Result<WsClient, ConnectError> {
        WsClient::connect_with(addr, Some(token), &["shortbox.v1"], "").await
    }

    /// Connects with any token, subprotocols and query string (`""` or `"?a=b"`).
    pub async fn connect_with(
        addr: SocketAddr,
        token: Option<&str>,
        protocols: &[&str],
        query: &str,
    ) -> Result<WsClient, ConnectError> {
        let mut request = format!("ws://{addr}/v1/ws{query}")
            .into_client_request()
            .map_err(ConnectError)?;
        if let Some(token) = token {
            let value =
                HeaderValue::from_str(&format!("Bearer {token}")).expect("a header-safe token");
            request.headers_mut().insert("authorization", value);
        }
        if !protocols.is_empty() {
            let value =
                HeaderValue::from_str(&protocols.join(", ")).expect("header-safe protocols");
            request
                .headers_mut()
                .insert("sec-websocket-protocol", value);
        }
        let (ws, response) =
            tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(request))
                .await
                .expect("the upgrade is answered in time")
                .map_err(ConnectError)?;
        let protocol = response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut client = WsClient {
            ws,
            hello: Value::Null,
            protocol,
            next_req: 0,
            backlog: VecDeque::new(),
        };
        match client.next_frame().await {
            Frame::Json(v) if v["op"] == "hello" => client.hello = v,
            other => panic!("expected hello first, got {other:?}"),
        }
        Ok(client)
    }

    pub fn hello(&self) -> &Value {
        &self.hello
    }

    /// The next frame (queued ones first), or `None` after `ms` without one. Pings and pongs
    /// are skipped (tungstenite answers pings while reading).
    pub async fn next_frame_timeout(&mut self, ms: u64) -> Option<Frame> {
        if let Some(frame) = self.backlog.pop_front() {
            return Some(frame);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        loop {
            let read = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            let frame = match read {
                None => Frame::End("stream ended".into()),
                Some(Err(e)) => Frame::End(e.to_string()),
                Some(Ok(Message::Text(t))) => match serde_json::from_str(t.as_str()) {
                    Ok(v) => Frame::Json(v),
                    Err(_) => Frame::Text(t.as_str().to_string()),
                },
                Some(Ok(Message::Binary(b))) => Frame::Binary(b.to_vec()),
                Some(Ok(Message::Close(close))) => match close {
                    Some(CloseFrame { code, reason }) => {
                        Frame::Close(Some(u16::from(code)), reason.as_str().to_string())
                    }
                    None => Frame::Close(None, String::new()),
                },
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            };
            return Some(frame);
        }
    }

    /// The next frame; panics after [`PATIENCE`].
    pub async fn next_frame(&mut self) -> Frame {
        match self.next_frame_timeout(PATIENCE.as_millis() as u64).await {
            Some(frame) => frame,
            None => panic!("no frame within {PATIENCE:?}"),
        }
    }

    /// Reads until a close frame and returns its code; JSON frames before it are skipped.
    pub async fn expect_close(&mut self, ms: u64) -> (Option<u16>, String) {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_frame_timeout(left.as_millis() as u64).await {
                Some(Frame::Close(code, reason)) => return (code, reason),
                Some(Frame::End(why)) => {
                    panic!("the connection ended without a close frame: {why}")
                }
                Some(_) => continue,
                None => panic!("no close frame within {ms} ms"),
            }
        }
    }

    /// Sends a frame; an error once the server has closed.
    pub async fn try_send_message(&mut self, message: Message) -> Result<(), tungstenite::Error> {
        self.ws.send(message).await
    }

    pub async fn send_message(&mut self, message: Message) {
        self.ws.send(message).await.expect("the frame is sent");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.send_message(Message::text(text)).await;
    }

    pub async fn send_json(&mut self, value: &Value) {
        self.send_text(&value.to_string()).await;
    }

    pub fn next_req(&mut self) -> u64 {
        self.next_req += 1;
        self.next_req
    }

    /// Sends a call and returns its `req` without waiting.
    pub async fn send_call(&mut self, method: &str, params: Value) -> u64 {
        let req = self.next_req();
        self.send_json(&json!({ "op": "call", "req": req, "method": method, "params": params }))
            .await;
        req
    }

    /// The `reply` to `req`; other frames stay queued for `next_frame_timeout`.
    pub async fn wait_reply(&mut self, req: u64) -> Result<Value, ApiError> {
        let is_reply =
            |f: &Frame| f.op() == Some("reply") && f.json().is_some_and(|v| v["req"] == req);
        if let Some(i) = self.backlog.iter().position(is_reply) {
            let frame = self.backlog.remove(i).expect("the position is in range");
            return reply_result(frame);
        }
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let read = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no reply to req {req} within {PATIENCE:?}"));
            let frame = match read {
                Some(Ok(Message::Text(t))) => match serde_json::from_str(t.as_str()) {
                    Ok(v) => Frame::Json(v),
                    Err(_) => Frame::Text(t.as_str().to_string()),
                },
                Some(Ok(Message::Close(close))) => {
                    panic!("closed while waiting for req {req}: {close:?}")
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("the connection failed while waiting for req {req}: {e}"),
                None => panic!("the connection ended while waiting for req {req}"),
            };
            if is_reply(&frame) {
                return reply_result(frame);
            }
            self.backlog.push_back(frame);
        }
    }

    /// Runs a call and returns its result or error.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, ApiError> {
        let req = self.send_call(method, params).await;
        self.wait_reply(req).await
    }

    /// Sends `{"op":"sync","streams":…}` and returns its `req`.
    pub async fn sync(&mut self, streams: Value) -> u64 {
        let req = self.next_req();
        self.send_json(&json!({ "op": "sync", "req": req, "streams": streams }))
            .await;
        req
    }

    /// Syncs `stream` from nothing and returns the `reset fresh` answer's epoch and head.
    pub async fn sync_fresh(&mut self, stream: &str) -> (String, u64) {
        let req = self
            .sync(json!([{ "stream": stream, "epoch": null, "after": null }]))
            .await;
        let frames = self
            .collect_events_until(|v| v["req"] == req, PATIENCE.as_millis() as u64)
            .await;
        let answer = frames.last().expect("an answer");
        assert_eq!(answer["op"], "reset", "sync fresh answers reset: {answer}");
        assert_eq!(answer["reason"], "fresh");
        (
            answer["epoch"].as_str().expect("an epoch").to_string(),
            answer["head"].as_u64().expect("a head"),
        )
    }

    /// JSON frames as they arrive, up to and including the first for which `pred` holds.
    /// Panics on a close, or after `ms`.
    pub async fn collect_events_until(
        &mut self,
        mut pred: impl FnMut(&Value) -> bool,
        ms: u64,
    ) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_frame_timeout(left.as_millis() as u64).await {
                Some(Frame::Json(v)) => {
                    let done = pred(&v);
                    seen.push(v);
                    if done {
                        return seen;
                    }
                }
                Some(other) => panic!("unexpected {other:?} after {} frames: {seen:?}", seen.len()),
                None => panic!("condition not met within {ms} ms; frames: {seen:?}"),
            }
        }
    }
}

fn reply_result(frame: Frame) -> Result<Value, ApiError> {
    let Frame::Json(v) = frame else {
        unreachable!("replies are JSON")
    };
    if let Some(error) = v.get("error") {
        return Err(serde_json::from_value(error.clone()).expect("a protocol error object"));
    }
    Ok(v.get("result").cloned().unwrap_or(Value::Null))
}
