//! The real `shortbox` binary as a child process, for the durability tests (crash, churn).
//!
//! [`EngineProcess::start`] runs `shortbox serve` on a data directory and reads the address it
//! listens on from its "serving on" line (a bounded wait on its stderr, no sleep);
//! [`EngineProcess::kill`] sends SIGKILL, [`EngineProcess::interrupt`] SIGINT (the graceful
//! shutdown). [`Poster`] posts carrier-neutral inbound JSON over one keep-alive connection and
//! reports failures instead of panicking: the engine is expected to die under it.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_shortbox");
/// How long a debug build may take to open its data and serve.
pub const START_LIMIT: Duration = Duration::from_secs(60);
/// Longest wait for one HTTP answer.
pub const ANSWER_LIMIT: Duration = Duration::from_secs(20);

pub struct EngineProcess {
    child: Child,
    pub addr: SocketAddr,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl EngineProcess {
    /// `shortbox serve --config … --data … --listen …`, once it serves.
    pub fn start(config: &Path, data: &Path, listen: &str) -> EngineProcess {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", listen, "--config"])
            .arg(config)
            .arg("--data")
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the shortbox binary starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = mpsc::channel();
        let keep = tail.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find("serving on http://")
                    && let Some(tx) = tx.take()
                {
                    let addr = line[at + "serving on http://".len()..]
                        .split_whitespace()
                        .next()
                        .and_then(|a| a.parse::<SocketAddr>().ok());
                    let _ = tx.send(addr);
                }
                let mut tail = keep.lock().unwrap_or_else(|e| e.into_inner());
                if tail.len() == 30 {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        match rx.recv_timeout(START_LIMIT) {
            Ok(Some(addr)) => EngineProcess { child, addr, tail },
            other => {
                let _ = child.kill();
                let status = child.wait();
                let tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                panic!(
                    "the engine did not serve within {START_LIMIT:?} ({other:?}, {status:?}); stderr:\n{}",
                    tail.iter().cloned().collect::<Vec<_>>().join("\n")
                );
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGINT (graceful shutdown: live sockets get 4100); SIGKILL if still running after 15 s.
    pub fn interrupt(mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .status();
        for _ in 0..1500 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn stderr_tail(&self) -> String {
        let tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `shortbox agent add …`: the token it prints.
pub fn agent_add(config: &Path, data: &Path, role: &str, name: &str, tenants: &[&str]) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(["agent", "add", "--role", role, "--name", name, "--config"])
        .arg(config)
        .arg("--data")
        .arg(data);
    for t in tenants {
        cmd.args(["--tenant", t]);
    }
    let out = cmd.output().expect("shortbox agent add runs");
    assert!(
        out.status.success(),
        "agent add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("a UTF-8 token")
        .trim()
        .to_string()
}

/// One keep-alive HTTP/1.1 connection posting inbound messages.
pub struct Poster {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    addr: SocketAddr,
}

impl Poster {
    pub async fn connect(addr: SocketAddr) -> Result<Poster, String> {
        let stream = tokio::time::timeout(ANSWER_LIMIT, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(conn);
        Ok(Poster { sender, addr })
    }

    /// `POST /v1/carriers/{carrier}/inbound`; the status and JSON answer, or why there is none.
    pub async fn inbound(
        &mut self,
        carrier: &str,
        secret: &str,
        body: &Value,
    ) -> Result<(u16, Value), String> {
        let request = hyper::Request::builder()
            .method("POST")
            .uri(format!("/v1/carriers/{carrier}/inbound"))
            .header("host", self.addr.to_string())
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {secret}"))
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| e.to_string())?;
        tokio::time::timeout(ANSWER_LIMIT, self.sender.ready())
            .await
            .map_err(|_| "the connection did not become ready".to_string())?
            .map_err(|e| format!("connection: {e}"))?;
        let response = tokio::time::timeout(ANSWER_LIMIT, self.sender.send_request(request))
            .await
            .map_err(|_| "no answer in time".to_string())?
            .map_err(|e| format!("request: {e}"))?;
        let status = response.status().as_u16();
        let bytes = tokio::time::timeout(ANSWER_LIMIT, response.into_body().collect())
            .await
            .map_err(|_| "no body in time".to_string())?
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }
}
