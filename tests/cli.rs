//! The `shortbox` binary as a user runs it: bad configuration is refused with the file, the key
//! and what was expected; `agent add` prints the token alone; `serve` with the example
//! configuration answers /healthz, and an agent added while it runs can connect at once.

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

#[test]
fn serve_with_the_example_config_answers_healthz_and_new_agents_connect() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let port = free_port();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");
    let listen = format!("127.0.0.1:{port}");
    let _server = Server(
        Command::new(BIN)
            .args([
                "serve", "--config", example, "--data", &data, "--listen", &listen,
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

    // An agent added on the same data while the engine runs can connect at once.
    let (code, token, err) = run(&[
        "agent", "add", "--tenant", "acme", "--name", "Ana", "--role", "agent", "--config",
        example, "--data", &data,
    ]);
    assert_eq!(code, 0, "{err}");
    let token = token.trim();
    let upgrade = format!(
        "GET /v1/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: shortbox.v1\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(upgrade.as_bytes()).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let bad = upgrade.replace(token, "sbx_not_a_token");
    let r = http(port, &bad).unwrap();
    assert!(r.starts_with("HTTP/1.1 401"), "{r}");
}
