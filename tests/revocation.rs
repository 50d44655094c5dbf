//! Revoking an agent while the engine runs, through the code path of `shortbox agent revoke`
//! (a write to the data directory the engine does not hear about): every open session of that
//! agent closes with 4401, the token is refused on the next connect, other agents stay
//! connected, and the TUI's network task stops rather than retrying.

mod common;

use common::*;
use serde_json::json;
use shortbox::client::net::{self, NetCommand, NetEvent, NetStatus};
use shortbox::engine::{Revocation, revoke_agent_offline};
use shortbox::protocol::Role;
use tokio::sync::mpsc;

/// `shortbox agent revoke <who>` on the engine's data directory, as the CLI runs it.
async fn revoke(t: &TestEngine, who: &str) -> Revocation {
    let data = t.data_dir().to_path_buf();
    let who = who.to_string();
    tokio::task::spawn_blocking(move || revoke_agent_offline(&data, &who))
        .await
        .expect("the revocation does not panic")
        .expect("the agent is revoked")
}

#[tokio::test]
async fn revoking_an_agent_closes_its_sessions_4401_refuses_its_token_and_spares_the_others() {
    let t = TestEngine::start(DEMO).await;
    let token = t
        .engine
        .add_agent("Ana", Role::Agent, &["acme".into()])
        .await
        .expect("Ana is added");
    let mut first = WsClient::connect(t.addr, &token)
        .await
        .expect("Ana connects");
    let mut second = WsClient::connect(t.addr, &token)
        .await
        .expect("Ana connects from a second terminal");
    let mut other = t.agent("acme").await;
    let ana = first.hello()["principal"]["agent"]
        .as_str()
        .expect("hello names the agent")
        .to_string();

    match revoke(&t, "Ana").await {
        Revocation::Revoked(a) => assert_eq!(a.id, ana),
        other => panic!("expected a revocation, got {other:?}"),
    }

    for session in [&mut first, &mut second] {
        let (code, reason) = session.expect_close(PATIENCE.as_millis() as u64).await;
        assert_eq!(code, Some(4401), "{reason}");
        assert!(reason.contains("revoked"), "{reason}");
    }
    let refused = WsClient::connect(t.addr, &token)
        .await
        .err()
        .expect("the revoked token is refused");
    assert_eq!(refused.status(), Some(401));
    assert_eq!(refused.json()["error"]["code"], "unauthorized");

    // The other agent of the same tenant was not touched: its session still answers.
    assert!(
        other
            .call("codes.list", json!({ "tenant": "acme" }))
            .await
            .is_ok()
    );
    assert_eq!(other.next_frame_timeout(0).await, None, "nothing else came");

    // Revoking again changes nothing and says so.
    assert!(matches!(
        revoke(&t, &ana).await,
        Revocation::AlreadyRevoked(a) if a.id == ana
    ));
}

#[tokio::test]
async fn the_tui_stops_on_a_revoked_token_and_asks_for_a_new_one() {
    let t = TestEngine::start(DEMO).await;
    let token = t
        .engine
        .add_agent("Ana", Role::Agent, &["acme".into()])
        .await
        .expect("Ana is added");
    let (events, mut rx) = mpsc::unbounded_channel::<NetEvent>();
    let handle = net::spawn(format!("ws://{}", t.addr), token, events);
    let mut next = async || {
        tokio::time::timeout(PATIENCE, rx.recv())
            .await
            .expect("the network task reports in time")
            .expect("the network task runs")
    };
    while !matches!(next().await, NetEvent::Connected(_)) {}

    revoke(&t, "Ana").await;
    let stopped = loop {
        match next().await {
            NetEvent::Status(NetStatus::Stopped { reason, new_token }) => {
                break (reason, new_token);
            }
            NetEvent::Status(NetStatus::Retrying { reason, .. }) => {
                panic!("retried after the revocation: {reason}")
            }
            _ => {}
        }
    };
    assert!(stopped.1, "asks for a new token: {stopped:?}");
    assert!(stopped.0.contains("4401"), "{stopped:?}");

    // Asked to try again, it is refused before the upgrade and stops again.
    handle
        .commands
        .send(NetCommand::ReconnectNow)
        .expect("the network task listens");
    let again = loop {
        match next().await {
            NetEvent::Status(NetStatus::Stopped { reason, new_token }) => {
                break (reason, new_token);
            }
            NetEvent::Connected(_) => panic!("a revoked token connected"),
            _ => {}
        }
    };
    assert!(again.1 && again.0.contains("401"), "{again:?}");
    let _ = handle.commands.send(NetCommand::Shutdown);
}
