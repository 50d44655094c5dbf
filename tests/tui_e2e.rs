//! End to end in a real terminal: the `shortbox` binary (embedded engine + TUI) runs in
//! tmux. With the demo workspace, the test waits for the live inbox, opens a conversation,
//! types and sends a reply, and sees it in the thread with its delivery state, then quits.
//! With a config of its own (a port picked for it, a `sim` carrier with an inbound secret),
//! it posts inbound messages to the carrier webhook: a subscriber writes to one tenant, gets
//! a reply, then texts another tenant's keyword — and the attribution banner appears; the
//! next reply asks first, reclaims, and the thread says attribution was regained.
//!
//! Skipped (and passing, with the reason printed) only when tmux is missing and `CI` is not
//! set; in CI a missing tmux fails the test.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_shortbox");

/// A private tmux server, killed when the test ends however it ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "e2e"]).stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "e2e"];
        args.extend(keys);
        assert!(self.run(&args).status.success(), "send-keys {keys:?}");
    }

    fn text(&self, text: &str) {
        assert!(
            self.run(&["send-keys", "-t", "e2e", "-l", text])
                .status
                .success()
        );
    }

    fn alive(&self) -> bool {
        self.run(&["has-session", "-t", "e2e"]).status.success()
    }

    /// Polls the screen until `done` holds, for at most `limit`.
    fn wait_for(&self, what: &str, limit: Duration, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// False (after saying why) when the test cannot run here: no tmux, outside CI.
fn can_run(test: &str) -> bool {
    if tmux_available() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("tmux is required for the end-to-end test in CI");
    }
    eprintln!("skipping {test}: tmux is not installed (set CI=1 to make this a failure)");
    false
}

/// Runs the binary with `args` in a fresh tmux session of 120×40, with a home of its own
/// (no user config, fresh data).
fn start(name: &str, home: &Path, args: &str) -> Tmux {
    let cmd = format!(
        "env HOME={home} XDG_CONFIG_HOME={home}/config XDG_DATA_HOME={home}/share TERM=xterm-256color {bin} {args}",
        home = shell_quote(home),
        bin = shell_quote(Path::new(BIN)),
    );
    let tmux = Tmux {
        socket: format!("shortbox-e2e-{name}-{}", std::process::id()),
    };
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "e2e",
        "-x",
        "120",
        "-y",
        "40",
        &cmd,
    ]);
    assert!(
        started.status.success(),
        "tmux new-session: {}",
        String::from_utf8_lossy(&started.stderr)
    );
    tmux
}

/// Waits for the client to end (after `q`) and fails if it does not.
fn quit(tmux: &Tmux) {
    let start = Instant::now();
    while tmux.alive() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!tmux.alive(), "the client quit on q:\n{}", tmux.screen());
}

#[test]
fn reply_from_a_real_terminal() {
    if !can_run("reply_from_a_real_terminal") {
        return;
    }
    let home = tempfile::tempdir().expect("temp dir");
    let data = home.path().join("data");
    // The demo workspace, on its port if free, else any.
    let tmux = start(
        "demo",
        home.path(),
        &format!("--data {}", shell_quote(&data)),
    );

    // A live inbox: connected, with at least one conversation row (an unread dot or a code badge).
    let limit = Duration::from_secs(60);
    tmux.wait_for("the live inbox", limit, |s| {
        s.contains("● connected") && s.lines().any(|l| l.contains(" S ") || l.contains(" D "))
    });

    tmux.keys(&["Enter"]);
    tmux.wait_for("the open conversation", limit, |s| s.contains("Reply via"));

    let body = "Hello from the end-to-end test";
    tmux.text(body);
    tmux.wait_for("the typed text", limit, |s| s.contains(body));
    tmux.keys(&["Enter"]);

    // In the thread: our line under a "You · <code> · <state>" header.
    tmux.wait_for("the sent reply with its delivery state", limit, |s| {
        let lines: Vec<&str> = s.lines().collect();
        lines.windows(2).any(|w| {
            w[1].contains(body)
                && w[0].contains("You ·")
                && ["queued", "dispatched", "delivered"]
                    .iter()
                    .any(|st| w[0].contains(st))
        })
    });
    // The composer is empty again (its placeholder is back) once the engine has answered the
    // send; the message's event can reach the screen a moment before that answer.
    tmux.wait_for("the composer cleared", limit, |s| {
        s.contains("Type a reply")
    });

    // Delivery moves forward: the demo's simulated carrier delivers most messages, fails a
    // few (3 %) and leaves some without a receipt (1 %), so any state past "queued" will do
    // here (the attribution test below runs a carrier that delivers everything).
    tmux.wait_for("the reply handed to the carrier", limit, |s| {
        ["→ dispatched", "✓ delivered", "✗ failed", "✗ undelivered"]
            .iter()
            .any(|st| message_shown(s, &["You ·", st], body))
    });

    // Quit: Esc to the thread, q. Nothing unsent, so no question.
    tmux.keys(&["Escape"]);
    tmux.keys(&["q"]);
    quit(&tmux);
}

const SECRET: &str = "e2e-inbound-secret";

/// Two tenants with keywords on one shared code; a simulated carrier that delivers every
/// message and never answers by itself.
fn config(port: u16) -> String {
    format!(
        r#"
[engine]
listen = "127.0.0.1:{port}"

[[tenants]]
id = "acme"
name = "Acme Shoes"
help_text = "Acme Shoes: help at acme.example or +1 800 555 0100. Reply STOP to cancel."
stop_text = "You are unsubscribed from Acme Shoes."
keywords = [{{ code = "55123", word = "SHOES" }}]

[[tenants]]
id = "brisa"
name = "Brisa Cafe"
help_text = "Brisa Cafe: help at brisa.example or +1 800 555 0101. Reply STOP to cancel."
stop_text = "You are unsubscribed from Brisa Cafe."
keywords = [{{ code = "55123", word = "BREW" }}]

[[codes]]
code = "55123"
country = "US"
kind = "shared"
carrier = "sim"

[[carriers]]
id = "sim"
kind = "sim"
inbound_secret = "{SECRET}"
sim = {{ auto_reply = false, failed_per_mille = 0, silent_per_mille = 0, receipt_delay_ms = 100 }}
"#
    )
}

/// A port nobody listens on right now (bound, read, released).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// POSTs an inbound SMS to the `sim` carrier webhook; returns the status and the body.
fn post_inbound(port: u16, id: &str, from: &str, to: &str, body: &str) -> (u16, String) {
    let json = format!(r#"{{"id":"{id}","from":"{from}","to":"{to}","body":"{body}"}}"#);
    let request = format!(
        "POST /v1/carriers/sim/inbound HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Authorization: Bearer {SECRET}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    );
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the engine");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("send request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read answer");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Two lines in a row: a header holding every one of `head`, then a line holding `body`.
fn message_shown(screen: &str, head: &[&str], body: &str) -> bool {
    let lines: Vec<&str> = screen.lines().collect();
    lines
        .windows(2)
        .any(|w| w[1].contains(body) && head.iter().all(|h| w[0].contains(h)))
}

#[test]
fn attribution_moves_away_and_back_in_a_real_terminal() {
    if !can_run("attribution_moves_away_and_back_in_a_real_terminal") {
        return;
    }
    let home = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let config_path = home.path().join("shortbox.toml");
    std::fs::write(&config_path, config(port)).expect("write config");
    let args = format!(
        "--config {} --data {}",
        shell_quote(&config_path),
        shell_quote(&home.path().join("data"))
    );
    let tmux = start("attribution", home.path(), &args);
    let limit = Duration::from_secs(60);
    tmux.wait_for("the empty inbox, connected", limit, |s| {
        s.contains("● connected") && s.contains("No conversations")
    });

    // The subscriber writes to Acme Shoes by its keyword.
    let (status, ack) = post_inbound(
        port,
        "e2e-1",
        "+14155550100",
        "55123",
        "SHOES do you have the trail boots in size 9?",
    );
    assert_eq!(status, 200, "inbound accepted: {ack}");
    assert!(ack.contains(r#""tenant":"acme""#), "routed to acme: {ack}");
    tmux.wait_for("the new conversation", limit, |s| {
        s.contains("+1 415-555-0100") && s.contains("SHOES do you have")
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the open conversation", limit, |s| {
        s.contains("Reply via S 55123 US")
    });

    // A reply: dispatched on the shared code, it makes Acme Shoes the holder.
    let first = "Yes, size 9 is in stock";
    tmux.text(first);
    tmux.wait_for("the typed reply", limit, |s| s.contains(first));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the first reply delivered", limit, |s| {
        message_shown(s, &["You ·", "✓ delivered"], first)
    });

    // The same subscriber texts another business's keyword: attribution moves to it.
    let (status, ack) = post_inbound(
        port,
        "e2e-2",
        "+14155550100",
        "55123",
        "BREW one flat white please",
    );
    assert_eq!(status, 200, "inbound accepted: {ack}");
    assert!(
        ack.contains(r#""tenant":"brisa""#),
        "routed to brisa: {ack}"
    );
    let screen = tmux.wait_for("the attribution banner", limit, |s| {
        s.contains("ATTRIBUTION LOST on 55123")
    });
    assert!(
        screen.contains("now go to") && screen.contains("another business"),
        "the banner says what it means:\n{screen}"
    );
    assert!(screen.contains(" LOST "), "the list marks it:\n{screen}");

    // The next reply asks first; r reclaims the code and sends.
    let second = "Your boots are ready for pickup";
    tmux.text(second);
    tmux.wait_for("the typed reply", limit, |s| s.contains(second));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the confirmation prompt", limit, |s| {
        s.contains("Attribution lost on 55123") && s.contains("reclaim 55123 and send")
    });
    tmux.keys(&["r"]);
    let screen = tmux.wait_for("the reclaimed reply and the regained line", limit, |s| {
        message_shown(s, &["You ·", "reclaimed"], second)
            && ["dispatched", "delivered"]
                .iter()
                .any(|st| message_shown(s, &["You ·", st], second))
            && s.contains("Attribution regained on 55123")
    });
    assert!(
        !screen.contains("ATTRIBUTION LOST on 55123"),
        "the banner is gone:\n{screen}"
    );

    tmux.keys(&["Escape"]);
    tmux.keys(&["q"]);
    quit(&tmux);
}
