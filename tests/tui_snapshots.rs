//! Whole-screen snapshots of the TUI over `TestBackend`, driven through the App's real flows
//! from fixture protocol objects ("now" is fixed at 2026-11-22 12:00 UTC, times in UTC).

use std::time::Duration;

use ratatui::crossterm::event::KeyCode;
use serde_json::json;
use shortbox::client::app::{Event, Timer};
use shortbox::client::net::{NetEvent, NetStatus};
use shortbox::client::testing::{
    ConvBuilder, Fixture, Harness, at, code, consent_history, demo, demo_conversations,
    demo_thread, hello, hello_with_ops, inbound, outbound, owner, unattributed,
};
use shortbox::protocol::{ApiError, CodeKind, ErrorCode, kind};

#[test]
fn connecting() {
    let h = Harness::new((100, 20));
    insta::assert_snapshot!(h.render());
}

#[test]
fn inbox() {
    let h = demo((120, 40), false);
    insta::assert_snapshot!(h.render());
}

#[test]
fn inbox_80x24() {
    let h = demo((80, 24), false);
    insta::assert_snapshot!(h.render());
}

#[test]
fn thread() {
    let h = demo((120, 40), true);
    insta::assert_snapshot!(h.render());
}

#[test]
fn thread_80x24_shows_one_pane() {
    let h = demo((70, 24), true);
    insta::assert_snapshot!(h.render());
}

#[test]
fn composer_with_multi_segment_ucs2_preview() {
    let mut h = demo((120, 40), true);
    h.type_text("¡Hola Jane! Tu pedido de botas salió hoy 🚚 y llega el lunes. ");
    h.type_text(
        "Si necesitas cambiar la dirección de entrega, respóndenos aquí mismo y lo arreglamos.",
    );
    let generation = h.app.composer.generation;
    h.send(Event::Timer(Timer::Preview { generation }));
    h.reply(
        "messages.preview",
        Ok(json!({
            "encoding": "ucs2",
            "segments": 3,
            "cost_micros": 23700,
            "remaining_in_segment": 52,
            "warnings": [
                { "code": "multi_segment", "message": "Sent as 3 UCS-2 segments because of ¡, í, ó, é and 🚚; GSM-7 would need 1.", "blocking": false },
                { "code": "spend_near_limit", "message": "Acme Shoes has used 82% of this month's limit.", "blocking": false }
            ]
        })),
    );
    insta::assert_snapshot!(h.render());
}

fn lost() -> Harness {
    let mut h = demo((120, 40), true);
    let c = ConvBuilder::new("c1", "+14155550100")
        .name("Jane Doe")
        .lost(&at(11, 58))
        .last(inbound(
            "m13",
            "c1",
            "Is my order shipped? It was supposed to arrive Friday.",
            &at(11, 57),
        ))
        .build();
    h.event(
        "acme",
        kind::ATTRIBUTION_LOST,
        json!({ "conversation": c, "code": "55123", "subscriber": "+14155550100", "since": at(11, 58) }),
    );
    h
}

#[test]
fn attribution_banner() {
    let h = lost();
    insta::assert_snapshot!(h.render());
}

#[test]
fn attribution_send_confirmation() {
    let mut h = lost();
    h.type_text("Hi Jane, are you still there?");
    h.key(KeyCode::Enter);
    insta::assert_snapshot!(h.render());
}

#[test]
fn help_overlay() {
    let mut h = demo((120, 40), false);
    h.key(KeyCode::Char('?'));
    insta::assert_snapshot!(h.render());
}

#[test]
fn reconnecting() {
    let mut h = demo((120, 40), true);
    h.type_text("Draft kept while offline");
    h.net(NetEvent::Status(NetStatus::Retrying {
        after: Duration::from_secs(4),
        reason: "connection refused".into(),
    }));
    insta::assert_snapshot!(h.render());
}

#[test]
fn refused_send() {
    let mut h = demo((120, 40), true);
    h.type_text("Reminder: your boots are waiting for pickup.");
    h.key(KeyCode::Enter);
    h.reply(
        "messages.send",
        Err(ApiError::new(
            ErrorCode::NoConsent,
            "+1 415-555-0100 last wrote 3 days ago and has not opted in: agent replies need a message within 24 h.",
        )),
    );
    insta::assert_snapshot!(h.render());
}

#[test]
fn single_tenant_agent_empty_view() {
    let mut h = Harness::new((100, 16));
    h.connect(hello(shortbox::client::testing::agent(&[(
        "acme",
        "Acme Shoes",
    )])));
    h.reply(
        "conversations.list",
        Ok(json!({ "items": [], "next": null })),
    );
    insta::assert_snapshot!(h.render());
}

#[test]
fn tenant_switcher_counts_news() {
    let mut h = demo((120, 12), false);
    let mut c = ConvBuilder::new("b1", "+14155550999").build();
    c.tenant = "bolt".into();
    let m = inbound("mb", "b1", "x", &at(11, 59));
    h.event(
        "bolt",
        kind::MESSAGE_RECEIVED,
        json!({ "message": m, "conversation": c }),
    );
    insta::assert_snapshot!(h.render());
}

// Compliance and consent (issue 4), the code chooser and the ops view.

#[test]
fn preview_with_several_warnings() {
    let mut h = demo((120, 40), true);
    h.type_text("Reminder: your boots are waiting for pickup at our store.");
    let generation = h.app.composer.generation;
    h.send(Event::Timer(Timer::Preview { generation }));
    h.reply(
        "messages.preview",
        Ok(json!({
            "encoding": "gsm7",
            "segments": 1,
            "cost_micros": 7900,
            "remaining_in_segment": 103,
            "warnings": [
                { "code": "reclaim", "message": "Sending reclaims 55123 for Acme Shoes: this subscriber's replies come here again.", "blocking": false },
                { "code": "no_consent", "message": "+1 415-555-0100 last wrote 3 days ago and has not opted in: agent replies need a message within 24 h.", "blocking": true },
                { "code": "spend_near_limit", "message": "Acme Shoes has used 97% of this month's limit.", "blocking": false },
                { "code": "spend_limit", "message": "This message would pass Acme Shoes's monthly limit of $100.00.", "blocking": true }
            ]
        })),
    );
    insta::assert_snapshot!(h.render());
}

#[test]
fn opted_out_conversation() {
    let mut h = demo((120, 40), false);
    h.app.inbox.select_id("c4", 10);
    h.key(KeyCode::Enter);
    let mut items = [
        outbound("m40", "c4", "Your order #4402 has shipped.", &at(7, 30)),
        inbound("m41", "c4", "STOP", &at(8, 2)),
        outbound(
            "m42",
            "c4",
            "You are unsubscribed from Acme Shoes. No more messages will be sent.",
            &at(8, 2),
        ),
    ]
    .map(|mut m| {
        m.subscriber = "+13105550142".into();
        m
    });
    // The confirmation the engine sent by itself.
    items[2].author = Some("system:stop".into());
    h.reply(
        "conversations.history",
        Ok(json!({ "items": items, "next": null })),
    );
    h.reply(
        "consent.history",
        Ok(consent_history(
            "opted_out",
            true,
            &[
                ("opted_in", "2026-11-20T10:00:00.000Z", "SHOES"),
                ("opted_out", &at(8, 2), "STOP"),
            ],
        )),
    );
    insta::assert_snapshot!(h.render());
}

fn flagged() -> Harness {
    let mut m = inbound(
        "m14",
        "c1",
        "please stop texting me, I already got my boots",
        &at(11, 58),
    );
    m.opt_out_intent = true;
    let mut convs = demo_conversations();
    convs[0] = ConvBuilder::new("c1", "+14155550100")
        .name("Jane Doe")
        .intent()
        .unread(1)
        .last(m.clone())
        .build();
    let mut thread = demo_thread();
    thread.push(m);
    Fixture {
        principal: owner(&[("acme", "Acme Shoes"), ("bolt", "Bolt Bikes")]),
        conversations: convs,
        open: Some(("c1".into(), thread)),
        codes: vec![code("55123", CodeKind::Shared, "US")],
        size: (120, 40),
    }
    .build()
}

#[test]
fn opt_out_intent_banner() {
    let mut h = flagged();
    h.key(KeyCode::Esc);
    insta::assert_snapshot!(h.render());
}

#[test]
fn opt_out_intent_prompt() {
    let mut h = flagged();
    h.key(KeyCode::Esc);
    h.key(KeyCode::Char('o'));
    insta::assert_snapshot!(h.render());
}

#[test]
fn subscriber_pane() {
    let mut h = demo((120, 40), true);
    h.key(KeyCode::Esc);
    h.key(KeyCode::Char('s'));
    h.reply(
        "consent.history",
        Ok(consent_history(
            "opted_in",
            false,
            &[
                ("opted_in", "2026-10-02T14:00:00.000Z", "SHOES"),
                ("opted_out", "2026-10-20T09:12:00.000Z", "STOP"),
                ("opted_in", "2026-11-21T18:01:00.000Z", "START"),
            ],
        )),
    );
    insta::assert_snapshot!(h.render());
}

#[test]
fn alternative_code_chooser() {
    let mut h = Fixture {
        principal: owner(&[("acme", "Acme Shoes")]),
        conversations: demo_conversations(),
        open: Some(("c1".into(), demo_thread())),
        codes: vec![
            code("55123", CodeKind::Shared, "US"),
            code("77001", CodeKind::Dedicated, "US"),
            code("77002", CodeKind::Dedicated, "US"),
            code("77003", CodeKind::Dedicated, "US"),
        ],
        size: (120, 40),
    }
    .build();
    let c = ConvBuilder::new("c1", "+14155550100")
        .name("Jane Doe")
        .lost(&at(11, 58))
        .build();
    h.event(
        "acme",
        kind::ATTRIBUTION_LOST,
        json!({ "conversation": c, "code": "55123", "subscriber": "+14155550100", "since": at(11, 58) }),
    );
    h.type_text("Hi Jane, are you still there?");
    h.key(KeyCode::Enter);
    h.key(KeyCode::Down);
    insta::assert_snapshot!(h.render());
}

fn ops_scene() -> Harness {
    let mut h = Harness::new((120, 30));
    h.connect(hello_with_ops(owner(&[
        ("acme", "Acme Shoes"),
        ("brisa", "Brisa Café"),
    ])));
    h.reply(
        "conversations.list",
        Ok(json!({ "items": [], "next": null })),
    );
    h.reply(
        "tenants.list",
        Ok(json!({ "items": [
            { "id": "acme", "name": "Acme Shoes", "countries": ["US"], "codes": ["77001"],
              "keywords": [{ "code": "55123", "word": "SHOES" }] },
            { "id": "bistro", "name": "Bistro Verde", "countries": ["US"], "codes": [],
              "keywords": [{ "code": "55123", "word": "TABLE" }, { "code": "55123", "word": "MENU" }] },
            { "id": "brisa", "name": "Brisa Café", "countries": ["CO", "US"], "codes": ["89001"],
              "keywords": [{ "code": "89898", "word": "CAFE" }] },
            { "id": "tienda", "name": "Tienda Sol", "countries": ["CO"], "codes": [], "keywords": [] },
        ] })),
    );
    let mut listed = serde_json::to_value(unattributed(
        "u1",
        "+14155550142",
        "hello? who is this",
        &at(9, 12),
    ))
    .unwrap();
    listed["reason"] = json!(
        "no tenant has written to this subscriber on this shared code, and the message does not start with a keyword registered on it"
    );
    h.reply(
        "unattributed.list",
        Ok(json!({ "items": [
            unattributed("u2", "+14155550177", "is this the shoe shop?", &at(10, 40)),
            listed,
        ] })),
    );
    h.ops_event(
        kind::UNATTRIBUTED_RECEIVED,
        json!({
            "message": unattributed("u3", "+13125550100", "PIZZA", &at(11, 59)),
            "reason": "PIZZA is not a keyword registered on this shared code, and no tenant has written to this subscriber on it"
        }),
    );
    for (from, to) in [
        (None, ("acme", "Acme Shoes")),
        (Some(("acme", "Acme Shoes")), ("brisa", "Brisa Café")),
    ] {
        h.ops_event(
            kind::ATTRIBUTION_CHANGED,
            json!({
                "code": "55123", "subscriber": "+14155550100",
                "from": from.map(|(id, name)| json!({ "id": id, "name": name })),
                "to": { "id": to.0, "name": to.1 },
                "since": at(11, 59), "message": "m9"
            }),
        );
    }
    h.key(KeyCode::Char('6'));
    h
}

#[test]
fn ops_view() {
    let h = ops_scene();
    insta::assert_snapshot!(h.render());
}

/// The engine's tenants to pick from, each with its countries, dedicated codes and keywords on
/// the message's code; the second one chosen.
#[test]
fn ops_assign_picker() {
    let mut h = ops_scene();
    h.key(KeyCode::Down);
    h.key(KeyCode::Enter);
    h.key(KeyCode::Down);
    insta::assert_snapshot!(h.render());
}

/// Typing narrows the list: "b" keeps Bistro Verde and Brisa Café.
#[test]
fn ops_assign_picker_filtered() {
    let mut h = ops_scene();
    h.key(KeyCode::Down);
    h.key(KeyCode::Enter);
    h.type_text("b");
    h.key(KeyCode::Down);
    insta::assert_snapshot!(h.render());
}
