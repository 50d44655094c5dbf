//! Test support for the carrier tests: a scripted Twilio-compatible API on 127.0.0.1:0 that
//! records every request, an engine configuration with a Twilio carrier pointed at it, and
//! signed webhook posts.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::time::Instant;

use std::io::{BufRead, BufReader};
use std::path::{Path as FsPath, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::common::{HttpReply, PATIENCE, TestEngine, http};

pub const ACCOUNT_SID: &str = "ACtest0001";
pub const AUTH_TOKEN: &str = "twilio-test-auth-token";
pub const PUBLIC_URL: &str = "https://sms.example.test";
pub const CODE: &str = "55124";
pub const SUBSCRIBER: &str = "+14155550100";
pub const INBOUND_PATH: &str = "/v1/carriers/tw/twilio/inbound";
pub const STATUS_PATH: &str = "/v1/carriers/tw/twilio/status";

/// One tenant (acme) with a dedicated US code on carrier `tw`, a Twilio-compatible provider
/// at `base_url`, with fast retries.
pub fn twilio_config(base_url: &str) -> String {
    format!(
        r#"
[engine]
public_url = "{PUBLIC_URL}"
calls_per_second = 5000

[[tenants]]
id = "acme"
name = "Acme Shoes"
help_text = "Acme Shoes: help at acme.example. Reply STOP to cancel."
stop_text = "You are unsubscribed from Acme Shoes."

[[codes]]
code = "{CODE}"
country = "US"
kind = "dedicated"
tenant = "acme"
carrier = "tw"

[[carriers]]
id = "tw"
kind = "twilio"
inbound_secret = "tw-neutral-inbound-secret"
twilio = {{ account_sid = "{ACCOUNT_SID}", auth_token = "{AUTH_TOKEN}", base_url = "{base_url}", timeout_ms = 400, max_attempts = 3, backoff_ms = 5, backoff_max_ms = 20 }}
"#
    )
}

pub fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn form(p: &[(String, String)]) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(p)
        .finish()
        .into_bytes()
}

/// The signature the provider would send for `path` with `params`.
pub fn sign(path: &str, params: &[(String, String)]) -> String {
    shortbox::engine::carriers::twilio::signature(
        AUTH_TOKEN,
        &format!("{PUBLIC_URL}{path}"),
        params,
    )
}

/// POSTs a form with the given signature header (none if `None`).
pub async fn post_form(
    t: &TestEngine,
    path: &str,
    params: &[(String, String)],
    signature: Option<&str>,
) -> HttpReply {
    let mut headers = vec![(
        "content-type",
        "application/x-www-form-urlencoded".to_string(),
    )];
    if let Some(s) = signature {
        headers.push(("x-twilio-signature", s.to_string()));
    }
    t.http("POST", path, &headers, form(params)).await
}

/// POSTs a correctly signed form.
pub async fn post_signed(t: &TestEngine, path: &str, params: &[(String, String)]) -> HttpReply {
    post_form(t, path, params, Some(&sign(path, params))).await
}

/// An inbound SMS from `from` to `to`, signed.
pub async fn inbound(t: &TestEngine, sid: &str, from: &str, to: &str, body: &str) -> HttpReply {
    let p = pairs(&[
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", from),
        ("To", to),
        ("Body", body),
        ("NumSegments", "1"),
        ("NumMedia", "0"),
        ("ApiVersion", "2010-04-01"),
    ]);
    post_signed(t, INBOUND_PATH, &p).await
}

/// A status callback, signed.
pub async fn status(t: &TestEngine, sid: &str, status: &str, error: Option<&str>) -> HttpReply {
    let mut p = pairs(&[
        ("MessageSid", sid),
        ("MessageStatus", status),
        ("AccountSid", ACCOUNT_SID),
        ("From", CODE),
        ("To", SUBSCRIBER),
    ]);
    if let Some(e) = error {
        p.push(("ErrorCode".into(), e.into()));
    }
    post_signed(t, STATUS_PATH, &p).await
}

/// What the mock answers to one `POST …/Messages.json`.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 201 with a new sid; the message is on record.
    Created,
    /// The message is put on record (the provider has it), but the answer comes only after
    /// this delay (longer than the client's timeout: the client cannot know).
    CreatedLate(Duration),
    /// Never answers; the message is on record.
    CreatedHang,
    /// Never answers, and keeps nothing (the request died inside the provider).
    Hang,
    /// An error status with Twilio's JSON error body (`code` if given).
    Error {
        status: u16,
        code: Option<u32>,
        retry_after: Option<u64>,
    },
    /// Answers `status` after `delay` without creating anything.
    Slow(Duration, u16),
}

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub form: Vec<(String, String)>,
    pub at: Instant,
}

#[derive(Default)]
struct MockState {
    requests: Vec<Recorded>,
    script: VecDeque<Reply>,
    /// Messages the provider has, oldest first.
    records: Vec<Value>,
    next_sid: u32,
    /// When the mock answered each create (sid, instant).
    answered: Vec<(String, Instant)>,
}

#[derive(Clone)]
pub struct MockTwilio {
    pub addr: SocketAddr,
    state: Arc<Mutex<MockState>>,
    arrived: Arc<Notify>,
}

impl MockTwilio {
    /// Starts the mock; every create answers [`Reply::Created`] unless scripted.
    pub async fn start() -> MockTwilio {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the mock");
        let addr = listener.local_addr().expect("an address");
        let mock = MockTwilio {
            addr,
            state: Arc::new(Mutex::new(MockState::default())),
            arrived: Arc::new(Notify::new()),
        };
        let app = axum::Router::new()
            .route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                post(create).get(list),
            )
            .with_state(mock.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        mock
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next creates with `replies`, in order (then [`Reply::Created`]).
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.lock().script.extend(replies);
    }

    /// Puts a message on record as if the provider had taken it earlier.
    pub fn put_record(&self, sid: &str, to: &str, from: &str, body: &str) {
        self.lock().records.push(record(sid, to, from, body));
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    pub fn creates(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect()
    }

    pub fn lists(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "GET")
            .collect()
    }

    /// The sid the provider gave the message with this body.
    pub fn sid_for(&self, body: &str) -> Option<String> {
        self.lock()
            .records
            .iter()
            .find(|r| r["body"] == body)
            .and_then(|r| r["sid"].as_str().map(String::from))
    }

    /// When the mock answered the create that gave `sid`.
    pub fn answered_at(&self, sid: &str) -> Option<Instant> {
        self.lock()
            .answered
            .iter()
            .find(|(s, _)| s == sid)
            .map(|(_, at)| *at)
    }

    /// Waits until at least `n` creates arrived.
    pub async fn wait_creates(&self, n: usize) {
        tokio::time::timeout(PATIENCE, async {
            loop {
                let notified = self.arrived.notified();
                if self.creates().len() >= n {
                    return;
                }
                notified.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{n} creates did not arrive; got {:?}", self.creates()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MockState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn record(sid: &str, to: &str, from: &str, body: &str) -> Value {
    json!({
        "sid": sid, "to": to, "from": from, "body": body, "status": "queued",
        "date_created": jiff::Timestamp::now().strftime("%a, %d %b %Y %H:%M:%S +0000").to_string(),
    })
}

fn recorded(
    method: &str,
    path: String,
    query: Option<String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Recorded {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    Recorded {
        method: method.into(),
        path,
        query,
        authorization: header("authorization"),
        content_type: header("content-type"),
        form: form_urlencoded::parse(body).into_owned().collect(),
        at: Instant::now(),
    }
}

async fn create(
    State(mock): State<MockTwilio>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{sid}/Messages.json");
    let req = recorded("POST", path, None, &headers, &body);
    let field = |n: &str| {
        req.form
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (to, from, text) = (field("To"), field("From"), field("Body"));
    let reply = {
        let mut s = mock.lock();
        s.requests.push(req);
        s.script.pop_front().unwrap_or(Reply::Created)
    };
    let new_record = || {
        let mut s = mock.lock();
        s.next_sid += 1;
        let sid = format!("SM{:032}", s.next_sid);
        s.records.push(record(&sid, &to, &from, &text));
        sid
    };
    // The provider keeps the message before anyone waiting on the request looks: a test that
    // kills the engine as soon as the create arrived must find the record.
    let kept = matches!(
        reply,
        Reply::Created | Reply::CreatedLate(_) | Reply::CreatedHang
    )
    .then(new_record);
    mock.arrived.notify_waiters();
    let created = |mock: &MockTwilio, sid: String| {
        mock.lock().answered.push((sid.clone(), Instant::now()));
        (
            StatusCode::CREATED,
            axum::Json(
                json!({ "sid": sid, "status": "queued", "to": to, "from": from, "body": text }),
            ),
        )
            .into_response()
    };
    match (reply, kept) {
        (Reply::Created, Some(sid)) => created(&mock, sid),
        (Reply::CreatedLate(delay), Some(sid)) => {
            tokio::time::sleep(delay).await;
            created(&mock, sid)
        }
        (Reply::CreatedHang, Some(_)) => std::future::pending::<Response>().await,
        (Reply::Hang, _) => std::future::pending::<Response>().await,
        (
            Reply::Error {
                status,
                code,
                retry_after,
            },
            _,
        ) => {
            let mut response = (
                StatusCode::from_u16(status).expect("a status"),
                axum::Json(json!({ "code": code, "message": "scripted error", "status": status })),
            )
                .into_response();
            if let Some(s) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", s.to_string().parse().expect("a header"));
            }
            response
        }
        (Reply::Slow(delay, status), _) => {
            tokio::time::sleep(delay).await;
            StatusCode::from_u16(status)
                .expect("a status")
                .into_response()
        }
        (Reply::Created | Reply::CreatedLate(_) | Reply::CreatedHang, None) => {
            unreachable!("a created reply keeps its record")
        }
    }
}

async fn list(
    State(mock): State<MockTwilio>,
    Path(sid): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{sid}/Messages.json");
    let req = recorded("GET", path, query.clone(), &headers, &[]);
    let filter: Vec<(String, String)> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let want = |k: &str| filter.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut s = mock.lock();
    s.requests.push(req);
    let mut messages: Vec<Value> = s
        .records
        .iter()
        .filter(|r| want("To").is_none_or(|to| r["to"] == to.as_str()))
        .filter(|r| want("From").is_none_or(|f| r["from"] == f.as_str()))
        .cloned()
        .collect();
    messages.reverse();
    axum::Json(json!({ "messages": messages, "page": 0 })).into_response()
}

/// `shortbox serve` on 127.0.0.1:0; its address is read from its own announcement.
pub struct Serve {
    child: Child,
    pub addr: SocketAddr,
}

impl Serve {
    pub fn start(config: &FsPath, data: &FsPath) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shortbox"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .arg("--data")
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start shortbox serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("shortbox serve announces its address")
                .expect("a line");
            if let Some(rest) = line.strip_prefix("shortbox engine serving on http://") {
                let addr = rest.split_whitespace().next().expect("an address");
                break addr.parse().expect("a socket address");
            }
        };
        // Keep draining stderr so the engine never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Serve { child, addr }
    }

    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn agent_token(config: &FsPath, data: &FsPath) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_shortbox"))
        .args([
            "agent", "add", "--tenant", "acme", "--name", "Ana", "--role", "agent", "--config",
        ])
        .arg(config)
        .arg("--data")
        .arg(data)
        .output()
        .expect("shortbox agent add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_string()
}

pub async fn signed_post(addr: SocketAddr, path: &str, params: &[(String, String)]) -> HttpReply {
    let headers = [
        (
            "content-type",
            "application/x-www-form-urlencoded".to_string(),
        ),
        ("x-twilio-signature", sign(path, params)),
    ];
    http(addr, "POST", path, &headers, form(params)).await
}

pub struct Setup {
    _dir: tempfile::TempDir,
    pub config: PathBuf,
    pub data: PathBuf,
}

pub fn setup(mock: &MockTwilio) -> Setup {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("shortbox.toml");
    std::fs::write(&config, twilio_config(&mock.base_url())).expect("write the config");
    let data = dir.path().join("data");
    Setup {
        config,
        data,
        _dir: dir,
    }
}
