//! The `shortbox` binary as a user runs it: bad configuration is refused with the file, the key
//! and what was expected; `agent add` prints the token alone; `agent list` and `agent revoke`;
//! `serve` with the example configuration answers /healthz, an agent added while it runs can
//! connect at once, and one revoked while it runs is closed with 4401 and refused after.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_shortbox");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("SHORTBOX_CONFIG")
        .env_remove("SHORTBOX_DATA")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write_config(dir: &std::path::Path, text: &str) -> String {
    let p = dir.join("bad.toml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn bad_config_names_the_file_the_key_and_the_expectation() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
            .unwrap();
    let cases: &[(&str, &str, &str)] = &[
        (
            "listen = \"127.0.0.1:7878\"",
            "listen = \"nowhere\"",
            "engine.listen",
        ),
        (
            "\ncode = \"55123\"\n",
            "\ncode = \"55x23\"\n",
            "codes[0].code",
        ),
        (
            "\ncountry = \"US\"\n",
            "\ncountry = \"usa\"\n",
            "codes[0].country",
        ),
        (
            "timezone = \"America/New_York\"",
            "timezone = \"Mars/Olympus\"",
            "tenants[0].timezone",
        ),
        (
            "help_text = \"Acme Shoes: help at acme.example or +1 800 555 0100. Msg&data rates may apply. Reply STOP to cancel.\"",
            "help_text = \"Reply STOP to cancel\"",
            "tenants[0].help_text",
        ),
        (
            "tenant = \"acme\"\ncarrier = \"sim\"",
            "tenant = \"nobody\"\ncarrier = \"sim\"",
            "codes[1].tenant",
        ),
        (
            "heartbeat_ms = 20000",
            "heartbeat_ms = \"often\"",
            "heartbeat_ms",
        ),
        (
            "batch_max = 1024",
            "batch_max = 1024\nbatch_size = 3",
            "batch_size",
        ),
    ];
    for (from, to, key) in cases {
        assert!(
            example.contains(from),
            "the example no longer contains {from:?}"
        );
        let path = write_config(dir.path(), &example.replacen(from, to, 1));
        let (code, _, err) = run(&["serve", "--config", &path, "--data", data]);
        assert_ne!(code, 0, "{key}: accepted a bad config");
        assert!(
            err.contains(&path),
            "{key}: the message does not name the file: {err}"
        );
        assert!(
            err.contains(key),
            "{key}: the message does not name the key: {err}"
        );
    }
    let (code, _, err) = run(&[
        "serve",
        "--config",
        "/nonexistent/shortbox.toml",
        "--data",
        data,
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("/nonexistent/shortbox.toml"), "{err}");
}

#[test]
fn agent_add_prints_the_token_alone_and_checks_roles() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh/data");
    let data = data.to_str().unwrap();
    let (code, out, err) = run(&[
        "agent", "add", "--tenant", "acme", "--name", "Ana", "--role", "agent", "--data", data,
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].starts_with("sbx_") && lines[0].len() > 40, "{out}");
    // Only the hash is stored.
    let db = std::fs::read(std::path::Path::new(data).join("shortbox.db")).unwrap();
    assert!(
        !db.windows(lines[0].len()).any(|w| w == lines[0].as_bytes()),
        "the token is stored in clear"
    );

    let (code, _, err) = run(&[
        "agent", "add", "--name", "Ana", "--role", "agent", "--data", data,
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("--tenant is required"), "{err}");
    let (code, _, err) = run(&[
        "agent", "add", "--tenant", "acme", "--name", "Olu", "--role", "ops", "--data", data,
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("--tenant is not taken"), "{err}");
    let (code, _, err) = run(&[
        "agent", "add", "--tenant", "nope", "--name", "Ana", "--role", "admin", "--data", data,
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("no such tenant") && err.contains("acme"),
        "{err}"
    );
}

/// `shortbox agent <args…> --data <data>`, expecting success; its stdout.
fn agent_ok(data: &str, args: &[&str]) -> String {
    let mut all = vec!["agent"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--data", data]);
    let (code, out, err) = run(&all);
    assert_eq!(code, 0, "shortbox {all:?} failed: {err}");
    out
}

/// The line of `agent list` that shows `id`.
fn listed<'a>(list: &'a str, id: &str) -> &'a str {
    list.lines()
        .find(|l| l.starts_with(id))
        .unwrap_or_else(|| panic!("{id} is not listed:\n{list}"))
}

#[test]
fn agent_list_shows_agents_without_tokens_and_revoke_takes_an_id_or_a_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();

    // Listing a directory that holds no store says so, and creates nothing.
    let (code, _, err) = run(&["agent", "list", "--data", data]);
    assert_ne!(code, 0);
    assert!(
        err.contains(data) && err.contains("no shortbox store"),
        "{err}"
    );
    assert!(!std::path::Path::new(data).exists());

    let ana = agent_ok(
        data,
        &[
            "add", "--tenant", "acme", "--name", "Ana", "--role", "agent",
        ],
    );
    let olu = agent_ok(data, &["add", "--name", "Olu", "--role", "ops"]);
    for _ in 0..2 {
        agent_ok(
            data,
            &["add", "--tenant", "acme", "--name", "Bo", "--role", "admin"],
        );
    }

    let list = agent_ok(data, &["list"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 5, "a header and four agents:\n{list}");
    for column in ["ID", "NAME", "ROLE", "TENANTS", "CREATED", "REVOKED"] {
        assert!(lines[0].contains(column), "{list}");
    }
    for token in [&ana, &olu] {
        assert!(!list.contains(token.trim()), "a token is listed:\n{list}");
    }
    assert!(!list.contains("sbx_"), "{list}");
    // Agents added in the same second have no order between them: find them by name.
    let named = |name: &str| {
        let cell = format!("  {name}  ");
        list.lines()
            .find(|l| l.contains(&cell))
            .unwrap_or_else(|| panic!("{name} is not listed:\n{list}"))
    };
    let ana_line = named("Ana");
    assert!(
        ana_line.contains("  agent  ") && ana_line.contains("  acme  "),
        "{ana_line}"
    );
    assert!(
        ana_line.trim_end().ends_with('-'),
        "not revoked yet: {ana_line}"
    );
    let olu_line = named("Olu");
    assert!(
        olu_line.contains("  ops  ") && olu_line.contains("(all)"),
        "{olu_line}"
    );
    let ana_id = ana_line.split_whitespace().next().unwrap().to_string();
    assert!(ana_id.starts_with("ag_"), "{ana_line}");

    // By name: revoked, and listed with the time it was.
    let out = agent_ok(data, &["revoke", "Ana"]);
    assert!(out.contains("revoked") && out.contains(&ana_id), "{out}");
    let list = agent_ok(data, &["list"]);
    let line = listed(&list, &ana_id);
    assert!(!line.trim_end().ends_with('-'), "shown revoked: {line}");
    let time = line.split_whitespace().last().unwrap();
    assert!(
        time.len() == 8 && time.contains(':'),
        "a revocation time: {line}"
    );

    // Again, by id: nothing changes, and it says so.
    let again = agent_ok(data, &["revoke", &ana_id]);
    assert!(again.contains("already revoked"), "{again}");
    assert_eq!(listed(&agent_ok(data, &["list"]), &ana_id), line);

    // Unknown, and ambiguous: refused, with what was expected.
    let (code, out, err) = run(&["agent", "revoke", "Nobody", "--data", data]);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("\"Nobody\"") && err.contains("shortbox agent list"),
        "{err}"
    );
    let (code, _, err) = run(&["agent", "revoke", "Bo", "--data", data]);
    assert_ne!(code, 0);
    assert!(
        err.contains("several agents named \"Bo\"") && err.contains("by its id"),
        "{err}"
    );
    let list = agent_ok(data, &["list"]);
    let bo_id = list
        .lines()
        .find(|l| l.contains("  Bo  "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    agent_ok(data, &["revoke", &bo_id]);
    // One Bo is left active, so the name now names it.
    let out = agent_ok(data, &["revoke", "Bo"]);
    assert!(out.starts_with("revoked") && !out.contains(&bo_id), "{out}");
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http(port: u16, request: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(request.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");

/// `shortbox serve` with the example configuration on `data`, once it answers /healthz.
fn serve(data: &str) -> (Server, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = Server(
        Command::new(BIN)
            .args([
                "serve", "--config", EXAMPLE, "--data", data, "--listen", &listen,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        if let Some(r) = http(
            port,
            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ) {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not answer /healthz within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    (server, port)
}

/// `shortbox agent add` of an agent of acme on `data` (with the example configuration): its
/// token.
fn add_agent(data: &str, name: &str) -> String {
    let (code, token, err) = run(&[
        "agent", "add", "--tenant", "acme", "--name", name, "--role", "agent", "--config", EXAMPLE,
        "--data", data,
    ]);
    assert_eq!(code, 0, "{err}");
    token.trim().to_string()
}

fn upgrade_request(token: &str) -> String {
    format!(
        "GET /v1/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: shortbox.v1\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
}

/// A WebSocket opened by hand: the socket, and what was read past the response head.
struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    fn connect(port: u16, token: &str) -> RawWs {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        stream.write_all(upgrade_request(token).as_bytes()).unwrap();
        let mut ws = RawWs {
            stream,
            buf: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let end = loop {
            if let Some(i) = ws.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(ws.fill(deadline), "the upgrade was not answered");
        };
        let head = String::from_utf8_lossy(&ws.buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        ws.buf.drain(..end);
        ws
    }

    /// Reads more; false at the deadline or when the server hung up.
    fn fill(&mut self, deadline: Instant) -> bool {
        let mut chunk = [0u8; 4096];
        while Instant::now() < deadline {
            match self.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("reading the WebSocket: {e}"),
            }
        }
        false
    }

    /// The next frame from the server (unmasked): opcode and payload; None by the deadline.
    fn frame(&mut self, deadline: Instant) -> Option<(u8, Vec<u8>)> {
        loop {
            if let Some((opcode, payload, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return Some((opcode, payload));
            }
            if !self.fill(deadline) {
                return None;
            }
        }
    }

    /// The code of the server's close frame; other frames are skipped.
    fn close_code(&mut self, within: Duration) -> Option<u16> {
        let deadline = Instant::now() + within;
        loop {
            let (opcode, payload) = self.frame(deadline)?;
            if opcode == 0x8 {
                return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            }
        }
    }

    /// Pings (masked with a zero key, as a client must mask) and waits for the pong.
    fn answers_ping(&mut self) -> bool {
        self.stream
            .write_all(&[0x89, 0x84, 0, 0, 0, 0, b'p', b'i', b'n', b'g'])
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Some((opcode, payload)) = self.frame(deadline) {
            match opcode {
                0xA if payload == b"ping" => return true,
                0x8 => return false,
                _ => {}
            }
        }
        false
    }
}

/// One whole frame at the start of `b`: opcode, payload, bytes used.
fn parse_frame(b: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let opcode = b.first()? & 0x0f;
    let (len, at) = match b.get(1)? & 0x7f {
        126 => (
            u16::from_be_bytes(b.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(b.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = b.get(at..at + len)?.to_vec();
    Some((opcode, payload, at + len))
}

#[test]
fn serve_with_the_example_config_answers_healthz_and_new_agents_connect() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let (_server, port) = serve(&data);

    // An agent added on the same data while the engine runs can connect at once.
    let token = add_agent(&data, "Ana");
    RawWs::connect(port, &token);
    let bad = upgrade_request(&token).replace(&token, "sbx_not_a_token");
    let r = http(port, &bad).unwrap();
    assert!(r.starts_with("HTTP/1.1 401"), "{r}");
}

#[test]
fn an_agent_revoked_while_serve_runs_is_closed_4401_and_refused_after() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let (_server, port) = serve(&data);
    let ana = add_agent(&data, "Ana");
    let bo = add_agent(&data, "Bo");
    let mut ana_ws = RawWs::connect(port, &ana);
    let mut bo_ws = RawWs::connect(port, &bo);

    // The engine holds the store open; list and revoke work beside it.
    let list = agent_ok(&data, &["list"]);
    assert!(list.contains("Ana") && list.contains("Bo"), "{list}");
    let out = agent_ok(&data, &["revoke", "Ana"]);
    assert!(out.starts_with("revoked"), "{out}");

    assert_eq!(
        ana_ws.close_code(Duration::from_secs(10)),
        Some(4401),
        "Ana's open session is closed as revoked"
    );
    let r = http(port, &upgrade_request(&ana)).unwrap();
    assert!(r.starts_with("HTTP/1.1 401"), "{r}");
    assert!(bo_ws.answers_ping(), "Bo's session stays open");
}
