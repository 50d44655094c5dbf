//! Pure tests of `App::update` for the ops view: the unattributed queue (loaded, then live),
//! the attribution feed, and assigning a message to a tenant. No IO.

use ratatui::crossterm::event::KeyCode;
use serde_json::{Value, json};

use super::inbox::Load;
use super::ops::FEED_MAX;
use super::{Effect, Overlay, Screen};
use crate::client::net::NetEvent;
use crate::client::testing::{Harness, at, demo, hello_with_ops, ops_login, owner, unattributed};
use crate::protocol::{ResetReason, kind, stream};

fn calls(fx: &[Effect], method: &str) -> Vec<Value> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Call {
                method: m, params, ..
            } if *m == method => Some(params.clone()),
            _ => None,
        })
        .collect()
}

const NO_ATTRIBUTION: &str = "no tenant has written to this subscriber on this shared code";

/// An ops login, connected, its queue answered with two messages (newest first).
fn ops() -> Harness {
    let mut h = Harness::new((120, 30));
    h.connect(hello_with_ops(ops_login()));
    let mut old =
        serde_json::to_value(unattributed("u1", "+14155550142", "hello?", &at(9, 0))).unwrap();
    old["reason"] = json!("HOLA is not a keyword registered on this shared code");
    let items = json!([
        unattributed("u2", "+14155550177", "is this the shoe shop", &at(10, 0)),
        old,
    ]);
    h.reply("unattributed.list", Ok(json!({ "items": items })));
    h
}

fn moved(from: Option<(&str, &str)>, to: (&str, &str)) -> Value {
    json!({
        "code": "55123", "subscriber": "+14155550100",
        "from": from.map(|(id, name)| json!({ "id": id, "name": name })),
        "to": { "id": to.0, "name": to.1 },
        "since": at(11, 59), "message": "m9"
    })
}

#[test]
fn an_ops_login_starts_on_the_ops_view_with_the_queue() {
    let h = ops();
    assert_eq!(h.app.screen, Screen::Ops);
    assert_eq!(h.app.ops.load, Load::Loaded);
    let ids: Vec<_> = h
        .app
        .ops
        .queue
        .iter()
        .map(|u| u.message.id.as_str())
        .collect();
    assert_eq!(ids, ["u2", "u1"]);
    assert_eq!(
        h.app.ops.queue[0].reason, None,
        "the list may not carry reasons"
    );
    assert!(
        h.app.ops.queue[1]
            .reason
            .as_deref()
            .unwrap()
            .starts_with("HOLA")
    );
    assert!(h.render().contains("why: HOLA is not a keyword"));
}

#[test]
fn the_queue_is_asked_for_on_a_reset_of_the_ops_stream() {
    let mut h = Harness::new((120, 30));
    h.net(NetEvent::Connected(hello_with_ops(owner(&[(
        "acme",
        "Acme Shoes",
    )]))));
    let fx = h.net(NetEvent::Reset {
        stream: stream::OPS.into(),
        reason: ResetReason::Fresh,
    });
    assert_eq!(calls(&fx, "unattributed.list"), [json!({ "limit": 200 })]);
    assert_eq!(h.app.screen, Screen::Inbox, "an owner starts on the inbox");
}

#[test]
fn live_messages_join_the_queue_once_with_their_reason() {
    let mut h = ops();
    h.key(KeyCode::Down);
    assert_eq!(h.app.ops.selected().unwrap().message.id, "u1");
    let m = unattributed("u3", "+14155550188", "FOO", &at(11, 59));
    let data = json!({ "message": m, "reason": NO_ATTRIBUTION });
    h.ops_event(kind::UNATTRIBUTED_RECEIVED, data.clone());
    h.ops_event(kind::UNATTRIBUTED_RECEIVED, data);
    let ids: Vec<_> = h
        .app
        .ops
        .queue
        .iter()
        .map(|u| u.message.id.as_str())
        .collect();
    assert_eq!(ids, ["u3", "u2", "u1"]);
    assert_eq!(
        h.app.ops.selected().unwrap().message.id,
        "u1",
        "selection stays"
    );
    assert_eq!(h.app.ops.queue[0].reason.as_deref(), Some(NO_ATTRIBUTION));
    // A reload that carries no reasons keeps the ones learnt live.
    h.key(KeyCode::Char('R'));
    let again = json!([unattributed("u3", "+14155550188", "FOO", &at(11, 59))]);
    h.reply("unattributed.list", Ok(json!({ "items": again })));
    assert_eq!(h.app.ops.queue[0].reason.as_deref(), Some(NO_ATTRIBUTION));
}

#[test]
fn attribution_changes_feed_newest_first_and_stay_bounded() {
    let mut h = ops();
    h.ops_event(
        kind::ATTRIBUTION_CHANGED,
        moved(None, ("acme", "Acme Shoes")),
    );
    h.ops_event(
        kind::ATTRIBUTION_CHANGED,
        moved(Some(("acme", "Acme Shoes")), ("brisa", "Brisa Café")),
    );
    assert_eq!(h.app.ops.feed[0].change.to.id, "brisa");
    let screen = h.render();
    assert!(screen.contains("Acme Shoes → Brisa Café"), "{screen}");
    assert!(screen.contains("nobody → Acme Shoes"));
    for _ in 0..FEED_MAX {
        h.ops_event(
            kind::ATTRIBUTION_CHANGED,
            moved(None, ("acme", "Acme Shoes")),
        );
    }
    assert_eq!(h.app.ops.feed.len(), FEED_MAX);
}

#[test]
fn six_opens_the_ops_view_only_for_a_login_that_sees_ops() {
    let mut h = demo((120, 40), false);
    h.key(KeyCode::Char('6'));
    assert_eq!(h.app.screen, Screen::Inbox);
    assert!(h.app.notice.as_ref().unwrap().text.contains("ops"));

    let mut h = Harness::new((120, 30));
    h.connect(hello_with_ops(owner(&[("acme", "Acme Shoes")])));
    h.reply(
        "conversations.list",
        Ok(json!({ "items": [], "next": null })),
    );
    h.reply("unattributed.list", Ok(json!({ "items": [] })));
    h.key(KeyCode::Char('6'));
    assert_eq!(h.app.screen, Screen::Ops);
    h.key(KeyCode::Esc);
    assert_eq!(h.app.screen, Screen::Inbox);
    h.key(KeyCode::Char('6'));
    let fx = h.key(KeyCode::Char('2'));
    assert_eq!(h.app.screen, Screen::Inbox);
    assert_eq!(
        calls(&fx, "conversations.list")[0]["filter"],
        json!({ "unread": true })
    );
}

#[test]
fn an_ops_login_assigns_to_a_seen_tenant_or_a_typed_id() {
    let mut h = ops();
    // Nothing seen yet: only a typed id.
    h.key(KeyCode::Enter);
    let Some(Overlay::AssignTenant(p)) = &h.app.overlay else {
        panic!("no picker")
    };
    assert!(p.options.is_empty());
    let fx = h.key(KeyCode::Enter);
    assert!(calls(&fx, "unattributed.assign").is_empty(), "no id yet");
    h.type_text("nova");
    let fx = h.key(KeyCode::Enter);
    assert_eq!(
        calls(&fx, "unattributed.assign"),
        [json!({ "message": "u2", "tenant": "nova" })]
    );
    h.reply(
        "unattributed.assign",
        Ok(json!({ "message": {}, "conversation": {} })),
    );
    let ids: Vec<_> = h
        .app
        .ops
        .queue
        .iter()
        .map(|u| u.message.id.as_str())
        .collect();
    assert_eq!(ids, ["u1"]);
    assert_eq!(
        h.app.notice.as_ref().unwrap().text,
        "+1 415-555-0177 assigned to nova"
    );

    // Tenants named in attribution changes are offered.
    h.ops_event(
        kind::ATTRIBUTION_CHANGED,
        moved(Some(("acme", "Acme Shoes")), ("brisa", "Brisa Café")),
    );
    h.key(KeyCode::Char('a'));
    h.key(KeyCode::Down);
    let Some(Overlay::AssignTenant(p)) = &h.app.overlay else {
        panic!("no picker")
    };
    let names: Vec<_> = p.options.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(names, ["acme", "brisa"]);
    assert!(h.render().contains("Brisa Café (brisa)"));
    let fx = h.key(KeyCode::Enter);
    assert_eq!(
        calls(&fx, "unattributed.assign"),
        [json!({ "message": "u1", "tenant": "brisa" })]
    );
    h.reply(
        "unattributed.assign",
        Err(crate::protocol::ApiError::new(
            crate::protocol::ErrorCode::InvalidParams,
            "no tenant \"brisa\"",
        )),
    );
    assert_eq!(h.app.ops.queue.len(), 1, "a refusal keeps the message");
}

#[test]
fn the_assigned_event_may_come_before_the_answer() {
    let mut h = Harness::new((120, 30));
    h.connect(hello_with_ops(owner(&[("brisa", "Brisa Café")])));
    h.reply(
        "conversations.list",
        Ok(json!({ "items": [], "next": null })),
    );
    let items = json!([unattributed("u1", "+14155550177", "PIZZA", &at(10, 0))]);
    h.reply("unattributed.list", Ok(json!({ "items": items })));
    h.key(KeyCode::Char('6'));
    h.key(KeyCode::Enter);
    h.key(KeyCode::Enter);
    h.ops_event(
        kind::UNATTRIBUTED_ASSIGNED,
        json!({ "message": "u1", "tenant": "brisa" }),
    );
    h.reply(
        "unattributed.assign",
        Ok(json!({ "message": {}, "conversation": {} })),
    );
    assert!(h.app.ops.queue.is_empty());
    assert_eq!(
        h.app.notice.as_ref().unwrap().text,
        "+1 415-555-0177 assigned to Brisa Café (brisa)"
    );
}

#[test]
fn an_assignment_elsewhere_takes_the_message_off_the_queue() {
    let mut h = ops();
    h.ops_event(
        kind::UNATTRIBUTED_ASSIGNED,
        json!({ "message": "u2", "tenant": "acme" }),
    );
    let ids: Vec<_> = h
        .app
        .ops
        .queue
        .iter()
        .map(|u| u.message.id.as_str())
        .collect();
    assert_eq!(ids, ["u1"]);
    assert_eq!(h.app.ops.selected, 0);
    // An ops login has no inbox to go back to.
    h.key(KeyCode::Esc);
    assert_eq!(h.app.screen, Screen::Ops);
}
