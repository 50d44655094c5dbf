//! Whole-screen snapshots of the TUI over `TestBackend`, driven through the App's real flows
//! from fixture protocol objects ("now" is fixed at 2026-11-22 12:00 UTC, times in UTC).

use std::time::Duration;

use ratatui::crossterm::event::KeyCode;
use serde_json::json;
use shortbox::client::app::{Event, Timer};
use shortbox::client::net::{NetEvent, NetStatus};
use shortbox::client::testing::{ConvBuilder, Harness, at, demo, hello, inbound};
use shortbox::protocol::{ApiError, ErrorCode, kind};

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
