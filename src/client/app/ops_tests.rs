//! Pure tests of `App::update` for the ops view: the unattributed queue (loaded, then live),
//! the attribution feed, and assigning a message to a tenant. No IO.

use ratatui::crossterm::event::{KeyCode, KeyModifiers};
use serde_json::{Value, json};

use super::inbox::Load;
use super::ops::{AssignPicker, FEED_MAX};
use super::{Effect, Overlay, Screen};
use crate::client::net::{NetEvent, NetStatus};
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

/// The engine's tenants, as `tenants.list` answers them (by name).
fn tenants() -> Value {
    json!({ "items": [
        { "id": "acme", "name": "Acme Shoes", "countries": ["US"], "codes": ["55124"],
          "keywords": [{ "code": "55123", "word": "SHOES" }] },
        { "id": "bistro", "name": "Bistro Verde", "countries": ["US"], "codes": [],
          "keywords": [{ "code": "55123", "word": "TABLE" }] },
        { "id": "brisa", "name": "Brisa Café", "countries": ["CO"], "codes": [], "keywords": [] },
        { "id": "tienda", "name": "Tienda Sol", "countries": ["CO"], "codes": [],
          "keywords": [{ "code": "89898", "word": "SOL" }] },
    ] })
}

fn picker(h: &Harness) -> &AssignPicker {
    match &h.app.overlay {
        Some(Overlay::AssignTenant(p)) => p,
        other => panic!("no picker: {other:?}"),
    }
}

fn shown(h: &Harness) -> Vec<String> {
    picker(h).matches().iter().map(|t| t.id.clone()).collect()
}

#[test]
fn the_ops_view_asks_for_the_tenants_with_the_queue() {
    let mut h = Harness::new((120, 30));
    h.net(NetEvent::Connected(hello_with_ops(ops_login())));
    let fx = h.net(NetEvent::Reset {
        stream: stream::OPS.into(),
        reason: ResetReason::Fresh,
    });
    assert_eq!(calls(&fx, "tenants.list"), [json!({})]);
    h.reply("tenants.list", Ok(tenants()));
    let items = json!([unattributed("u1", "+14155550177", "hi", &at(10, 0))]);
    h.reply("unattributed.list", Ok(json!({ "items": items })));
    let ids: Vec<_> = h
        .app
        .ops
        .tenants
        .items
        .iter()
        .flatten()
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(ids, ["acme", "bistro", "brisa", "tienda"]);
    // Asked again when the ops stream is reset, not while an ask is out.
    let fx = h.net(NetEvent::Reset {
        stream: stream::OPS.into(),
        reason: ResetReason::TooOld,
    });
    assert_eq!(calls(&fx, "tenants.list").len(), 1);
    let fx = h.key(KeyCode::Enter);
    assert!(calls(&fx, "tenants.list").is_empty(), "one ask at a time");
    assert_eq!(
        shown(&h),
        ["acme", "bistro", "brisa", "tienda"],
        "the last list meanwhile"
    );
}

#[test]
fn the_picker_lists_the_engines_tenants_and_enter_assigns_the_chosen_one() {
    let mut h = ops();
    h.reply("tenants.list", Ok(tenants()));
    h.key(KeyCode::Enter);
    let p = picker(&h);
    assert!(p.complete && !p.loading);
    assert_eq!(p.message, "u2");
    assert_eq!(shown(&h), ["acme", "bistro", "brisa", "tienda"]);
    h.key(KeyCode::Down);
    h.key(KeyCode::Char('j'));
    h.key(KeyCode::Char('j'));
    h.key(KeyCode::Char('j'));
    assert_eq!(picker(&h).selected, 3, "the end of the list holds");
    h.key(KeyCode::Char('k'));
    h.key(KeyCode::Up);
    assert_eq!(picker(&h).choice().as_deref(), Some("bistro"));
    let fx = h.key(KeyCode::Enter);
    assert_eq!(
        calls(&fx, "unattributed.assign"),
        [json!({ "message": "u2", "tenant": "bistro" })]
    );
    assert!(h.app.overlay.is_none());
    h.reply(
        "unattributed.assign",
        Ok(json!({ "message": {}, "conversation": {} })),
    );
    assert_eq!(
        h.app.notice.as_ref().unwrap().text,
        "+1 415-555-0177 assigned to Bistro Verde (bistro)",
        "named from the engine's list"
    );
}

#[test]
fn typing_narrows_the_list_and_j_k_become_letters() {
    let mut h = ops();
    h.reply("tenants.list", Ok(tenants()));
    h.key(KeyCode::Char('a'));
    h.key(KeyCode::Down);
    h.type_text("b");
    assert_eq!(shown(&h), ["bistro", "brisa"]);
    assert_eq!(picker(&h).selected, 0, "a new filter starts at the top");
    h.type_text("R");
    assert_eq!(shown(&h), ["brisa"], "case is ignored");
    h.key(KeyCode::Backspace);
    h.type_text("r");
    h.type_text("k");
    assert!(
        shown(&h).is_empty(),
        "k is a letter once something is typed"
    );
    let fx = h.key(KeyCode::Enter);
    assert!(calls(&fx, "unattributed.assign").is_empty());
    assert_eq!(
        h.app.notice.as_ref().unwrap().text,
        "No tenant matches “brk”"
    );
    assert!(h.app.overlay.is_some(), "the picker stays open");
    h.key(KeyCode::Backspace);
    assert_eq!(picker(&h).choice().as_deref(), Some("brisa"));
    h.key_with(KeyCode::Char('u'), KeyModifiers::CONTROL);
    assert_eq!(picker(&h).filter, "");
    h.type_text("table");
    assert_eq!(shown(&h), ["bistro"], "keywords match");
    h.key_with(KeyCode::Char('u'), KeyModifiers::CONTROL);
    h.type_text("55124");
    assert_eq!(shown(&h), ["acme"], "dedicated codes match");
    h.key_with(KeyCode::Char('u'), KeyModifiers::CONTROL);
    h.type_text("é");
    assert_eq!(shown(&h), ["brisa"], "any letter may be typed");
    let fx = h.key(KeyCode::Enter);
    assert_eq!(
        calls(&fx, "unattributed.assign"),
        [json!({ "message": "u2", "tenant": "brisa" })]
    );
}

#[test]
fn esc_cancels_the_picker_and_assigns_nothing() {
    let mut h = ops();
    h.reply("tenants.list", Ok(tenants()));
    h.key(KeyCode::Enter);
    h.type_text("ac");
    let fx = h.key(KeyCode::Esc);
    assert!(h.app.overlay.is_none());
    assert!(calls(&fx, "unattributed.assign").is_empty());
    assert_eq!(h.app.ops.queue.len(), 2);
    // Opened again, it starts afresh.
    h.key(KeyCode::Enter);
    assert_eq!(picker(&h).filter, "");
    assert_eq!(shown(&h).len(), 4);
}

#[test]
fn the_list_fills_a_picker_opened_before_it_came() {
    let mut h = ops();
    h.key(KeyCode::Enter);
    let p = picker(&h);
    assert!(p.loading && !p.complete && p.options.is_empty());
    let fx = h.key(KeyCode::Enter);
    assert!(calls(&fx, "unattributed.assign").is_empty());
    assert_eq!(
        h.app.notice.as_ref().unwrap().text,
        "The tenant list is still loading"
    );
    h.type_text("ti");
    h.reply("tenants.list", Ok(tenants()));
    let p = picker(&h);
    assert!(p.complete && !p.loading);
    assert_eq!(shown(&h), ["tienda"], "the filter typed meanwhile applies");
}

#[test]
fn without_the_engines_list_known_tenants_and_a_typed_id_remain() {
    let mut h = ops();
    h.reply(
        "tenants.list",
        Err(crate::protocol::ApiError::new(
            crate::protocol::ErrorCode::UnknownMethod,
            "unknown method \"tenants.list\"",
        )),
    );
    // Nothing seen yet: only a typed id. A refused list is not asked again at each open.
    let fx = h.key(KeyCode::Enter);
    assert!(calls(&fx, "tenants.list").is_empty());
    let p = picker(&h);
    assert!(p.options.is_empty() && !p.complete);
    assert!(
        p.error
            .as_deref()
            .is_some_and(|e| e.contains("unknown method"))
    );
    let fx = h.key(KeyCode::Enter);
    assert!(calls(&fx, "unattributed.assign").is_empty(), "no id yet");
    let screen = h.render();
    assert!(
        screen.contains("The engine gave no tenant list"),
        "{screen}"
    );
    h.type_text("no va");
    let fx = h.key(KeyCode::Enter);
    assert!(calls(&fx, "unattributed.assign").is_empty(), "not an id");
    h.key(KeyCode::Backspace);
    h.key(KeyCode::Backspace);
    h.key(KeyCode::Backspace);
    h.type_text("va");
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
    assert_eq!(shown(&h), ["acme", "brisa"]);
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
    // R asks again.
    let fx = h.key(KeyCode::Char('R'));
    assert_eq!(calls(&fx, "tenants.list"), [json!({})]);
}

#[test]
fn a_dropped_connection_before_the_list_leaves_the_picker_usable() {
    let mut h = ops();
    h.key(KeyCode::Enter);
    h.drop_calls("connection lost");
    h.net(NetEvent::Status(NetStatus::Connecting { attempt: 2 }));
    let p = picker(&h);
    assert!(!p.loading && !p.complete);
    h.type_text("acme");
    let fx = h.key(KeyCode::Enter);
    assert!(
        calls(&fx, "unattributed.assign").is_empty(),
        "offline: nothing is sent"
    );
    assert!(
        h.app
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("not connected")
    );
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
