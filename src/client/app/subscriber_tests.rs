//! Pure tests of `App::update` for consent (rules A6, A7) and the composer's rules: the
//! preview's warnings, a closed composer after an opt-out, the one-key opt-out, the
//! subscriber pane, the choice among dedicated codes, and spend notices. No IO.

use ratatui::crossterm::event::{KeyCode, KeyModifiers};
use serde_json::{Value, json};

use super::subscriber::ConsentLoad;
use super::{Effect, Event, Focus, Overlay, Timer, Tone};
use crate::client::testing::{
    ConvBuilder, Fixture, Harness, at, code, consent_history, demo, demo_conversations, inbound,
    owner,
};
use crate::client::ui;
use crate::protocol::{CodeKind, ConsentState, kind};

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

/// The demo scene with `c4` (opted out by STOP at 08:02) open.
fn opted_out_open() -> Harness {
    let mut h = demo((120, 40), false);
    let page = ui::layout::inbox_page(&h.app);
    h.app.inbox.select_id("c4", page);
    h.key(KeyCode::Enter);
    h.reply(
        "conversations.history",
        Ok(json!({ "items": [inbound("m41", "c4", "STOP", &at(8, 2))], "next": null })),
    );
    h
}

/// `c1` flagged: "please stop texting me" reads like an opt-out request.
fn flagged_open() -> Harness {
    let mut m = inbound("m14", "c1", "please stop texting me", &at(11, 58));
    m.opt_out_intent = true;
    let mut convs = demo_conversations();
    convs[0] = ConvBuilder::new("c1", "+14155550100")
        .name("Jane Doe")
        .intent()
        .last(m.clone())
        .build();
    Fixture {
        principal: owner(&[("acme", "Acme Shoes")]),
        conversations: convs,
        open: Some(("c1".into(), vec![m])),
        codes: vec![code("55123", CodeKind::Shared, "US")],
        size: (120, 40),
    }
    .build()
}

#[test]
fn the_preview_shows_every_rule_blocking_first() {
    let mut h = demo((120, 40), true);
    h.type_text("Hi");
    let generation = h.app.composer.generation;
    h.send(Event::Timer(Timer::Preview { generation }));
    h.reply(
        "messages.preview",
        Ok(json!({
            "encoding": "gsm7", "segments": 1, "cost_micros": 7900, "remaining_in_segment": 158,
            "warnings": [
                { "code": "spend_near_limit", "message": "82% of the limit used.", "blocking": false },
                { "code": "no_consent", "message": "Last wrote 3 days ago.", "blocking": true },
                { "code": "reclaim", "message": "Sending reclaims 55123.", "blocking": false },
                { "code": "spend_limit", "message": "Over the limit.", "blocking": true }
            ]
        })),
    );
    let notes: Vec<String> = ui::composer::notes(&h.app, 60)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        notes[1..],
        [
            "✗ Last wrote 3 days ago.",
            "✗ Over the limit.",
            "! 82% of the limit used.",
            "! Sending reclaims 55123.",
        ]
    );
    // All of them fit on screen, under the text.
    let screen = h.render();
    for n in &notes {
        assert!(screen.contains(n.as_str()), "{n} on screen:\n{screen}");
    }
}

#[test]
fn an_opted_out_conversation_closes_the_composer_and_says_since_when() {
    let mut h = opted_out_open();
    assert_eq!(
        h.app.focus,
        Focus::Thread,
        "nothing to type: the thread has the keys"
    );
    let (_, asked) = h.last_call("consent.history").expect("history asked for");
    assert_eq!(asked["conversation"], "c4");
    assert_eq!(
        h.app.composer_closed().as_deref(),
        Some("+1 310-555-0142 opted out: nothing can be sent.")
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
    assert_eq!(
        h.app.composer_closed().as_deref(),
        Some("+1 310-555-0142 opted out on 2026-11-22 08:02 (STOP): nothing can be sent.")
    );
    // The composer takes no text and sends nothing.
    h.key(KeyCode::Char('i'));
    assert_eq!(h.app.focus, Focus::Composer);
    h.type_text("hello");
    let fx = h.key(KeyCode::Enter);
    let fx2 = h.send(Event::Paste("pasted".into()));
    assert!(h.app.composer.is_blank());
    assert!(calls(&fx, "messages.send").is_empty() && fx2.is_empty());
    let notice = h.app.notice.as_ref().expect("says why");
    assert!(
        notice
            .text
            .starts_with("Closed: +1 310-555-0142 opted out on")
    );
}

#[test]
fn consent_history_is_asked_for_only_when_something_shows_it() {
    let mut h = demo((120, 40), true);
    assert!(h.last_call("consent.history").is_none(), "c1 is opted in");
    h.key(KeyCode::Esc);
    let fx = h.key(KeyCode::Char('s'));
    assert!(h.app.subscriber_pane);
    assert_eq!(calls(&fx, "consent.history")[0]["conversation"], "c1");
    h.reply(
        "consent.history",
        Ok(consent_history(
            "opted_in",
            false,
            &[("opted_in", &at(9, 0), "SHOES")],
        )),
    );
    assert!(h.app.consent_of_open().is_some());
    // Closing and opening again uses what is there.
    h.key(KeyCode::Char('s'));
    assert!(!h.app.subscriber_pane);
    let fx = h.key(KeyCode::Char('s'));
    assert!(calls(&fx, "consent.history").is_empty());
    // Back to the inbox closes the pane.
    h.key(KeyCode::Esc);
    assert_eq!(h.app.focus, Focus::Inbox);
    assert!(!h.app.subscriber_pane);
}

#[test]
fn s_in_the_inbox_opens_the_selected_conversation_with_the_pane() {
    let mut h = demo((120, 40), false);
    let fx = h.key(KeyCode::Char('s'));
    assert_eq!(h.app.thread.as_ref().map(|t| t.id()), Some("c1"));
    assert_eq!(h.app.focus, Focus::Thread);
    assert!(h.app.subscriber_pane);
    assert_eq!(calls(&fx, "consent.history").len(), 1);
    let areas = ui::layout::areas(&h.app);
    assert!(areas.subscriber.is_some() && areas.inbox.is_none());
}

#[test]
fn a_flagged_intent_is_confirmed_with_one_key_after_asking() {
    let mut h = flagged_open();
    assert!(
        h.render()
            .contains("STOP? A message reads like an opt-out request")
    );
    // Ctrl-O from the composer asks; n does nothing.
    let fx = h.key_with(KeyCode::Char('o'), KeyModifiers::CONTROL);
    assert!(fx.is_empty());
    let Some(Overlay::ConfirmOptOut(p)) = &h.app.overlay else {
        panic!("no question")
    };
    assert_eq!(p.flagged.as_deref(), Some("please stop texting me"));
    assert!(
        h.render()
            .contains("Record an opt-out for +1 415-555-0100? y/n")
    );
    let fx = h.key(KeyCode::Char('n'));
    assert!(calls(&fx, "conversations.opt_out").is_empty());
    assert!(h.app.overlay.is_none());
    assert!(h.app.composer.is_blank(), "Ctrl-O typed nothing");
    // o from the thread, then y: the engine records it.
    h.key(KeyCode::Esc);
    h.key(KeyCode::Char('o'));
    let fx = h.key(KeyCode::Char('y'));
    assert_eq!(
        calls(&fx, "conversations.opt_out"),
        [json!({ "conversation": "c1" })]
    );
    let done = ConvBuilder::new("c1", "+14155550100")
        .name("Jane Doe")
        .consent(ConsentState::OptedOut)
        .build();
    let fx = h.reply("conversations.opt_out", Ok(json!(done)));
    assert!(h.app.composer_closed().is_some());
    assert!(h.app.inbox.get("c1").unwrap().consent == ConsentState::OptedOut);
    assert_eq!(calls(&fx, "consent.history").len(), 1, "since when: asked");
    let notice = h.app.notice.as_ref().unwrap();
    assert!(
        notice
            .text
            .starts_with("Opt-out recorded for +1 415-555-0100")
    );
}

#[test]
fn opting_out_asks_nothing_twice_and_nothing_offline() {
    let mut h = opted_out_open();
    h.key(KeyCode::Char('o'));
    assert!(h.app.overlay.is_none(), "already opted out");
    let mut h = flagged_open();
    h.key(KeyCode::Esc);
    h.net(crate::client::net::NetEvent::Status(
        crate::client::net::NetStatus::Connecting { attempt: 2 },
    ));
    h.key(KeyCode::Char('o'));
    let fx = h.key(KeyCode::Char('y'));
    assert!(fx.is_empty());
    assert_eq!(h.app.notice.as_ref().unwrap().tone, Tone::Warn);
}

#[test]
fn a_refused_opt_out_says_why() {
    let mut h = flagged_open();
    h.key(KeyCode::Esc);
    h.key(KeyCode::Char('o'));
    h.key(KeyCode::Char('y'));
    h.reply(
        "conversations.opt_out",
        Err(crate::protocol::ApiError::new(
            crate::protocol::ErrorCode::NotFound,
            "no conversation c1",
        )),
    );
    let n = h.app.notice.as_ref().unwrap();
    assert_eq!(n.tone, Tone::Error);
    assert!(n.text.contains("no conversation c1"));
    assert!(h.app.composer_closed().is_none());
}

#[test]
fn a_consent_change_adds_a_line_and_reloads_what_shows_it() {
    let mut h = demo((120, 40), true);
    h.key(KeyCode::Esc);
    h.key(KeyCode::Char('s'));
    h.reply(
        "consent.history",
        Ok(consent_history("opted_in", false, &[])),
    );
    let c = ConvBuilder::new("c1", "+14155550100")
        .consent(ConsentState::OptedOut)
        .build();
    let fx = h.event(
        "acme",
        kind::CONSENT_CHANGED,
        json!({ "tenant": "acme", "subscriber": "+14155550100", "consent": "opted_out",
                "code": "55123", "source": "agent:ag_ana", "conversation": c }),
    );
    assert_eq!(calls(&fx, "consent.history").len(), 1);
    // What is shown stays until the new answer replaces it.
    assert!(matches!(
        h.app.consent.as_ref().unwrap().load,
        ConsentLoad::Ready(_)
    ));
    let screen = h.render();
    assert!(
        screen.contains("Consent: opted out (recorded by you)"),
        "{screen}"
    );
    assert!(screen.contains("OPTED OUT"));
    // Another subscriber's change asks for nothing.
    let fx = h.event(
        "acme",
        kind::CONSENT_CHANGED,
        json!({ "tenant": "acme", "subscriber": "+14155550123", "consent": "opted_in", "source": "START" }),
    );
    assert!(calls(&fx, "consent.history").is_empty());
}

fn two_dedicated() -> Harness {
    let mut h = Fixture {
        principal: owner(&[("acme", "Acme Shoes")]),
        conversations: demo_conversations(),
        open: Some(("c1".into(), Vec::new())),
        codes: vec![
            code("55123", CodeKind::Shared, "US"),
            code("77001", CodeKind::Dedicated, "US"),
            code("77002", CodeKind::Dedicated, "US"),
        ],
        size: (120, 40),
    }
    .build();
    let c = ConvBuilder::new("c1", "+14155550100")
        .lost(&at(11, 58))
        .build();
    h.event(
        "acme",
        kind::ATTRIBUTION_LOST,
        json!({ "conversation": c, "code": "55123", "subscriber": "+14155550100", "since": at(11, 58) }),
    );
    h.type_text("Hi");
    h.key(KeyCode::Enter);
    h
}

#[test]
fn several_dedicated_codes_are_chosen_from() {
    let mut h = two_dedicated();
    let Some(Overlay::Attribution(p)) = &h.app.overlay else {
        panic!("no prompt")
    };
    assert_eq!(p.alternatives, ["77001", "77002"]);
    h.key(KeyCode::Down);
    h.key(KeyCode::Down);
    let fx = h.key(KeyCode::Char('d'));
    assert_eq!(calls(&fx, "messages.send")[0]["code"], "77002");

    let mut h = two_dedicated();
    let fx = h.key(KeyCode::Char('3'));
    assert!(calls(&fx, "messages.send").is_empty(), "no third code");
    let fx = h.key(KeyCode::Char('1'));
    assert_eq!(calls(&fx, "messages.send")[0]["code"], "77001");
}

#[test]
fn spend_notices_show_in_the_status_bar_for_the_month() {
    let mut h = demo((120, 40), false);
    h.event(
        "acme",
        kind::SPEND_NOTICE,
        json!({ "tenant": "acme", "percent": 80, "spent_micros": 80_000_000i64,
                "limit_micros": 100_000_000i64, "month": "2026-11" }),
    );
    let n = h.app.notice.clone().unwrap();
    assert_eq!(n.tone, Tone::Warn);
    assert!(n.text.contains("80%: $80.0000 of $100.0000"), "{}", n.text);
    // The notice goes; the fact stays.
    h.send(Event::Tick(
        crate::client::testing::now() + jiff::SignedDuration::from_secs(30),
    ));
    assert!(h.app.notice.is_none());
    assert!(h.render().contains("Acme Shoes · spend ≥ 80%"));
    h.event(
        "acme",
        kind::SPEND_NOTICE,
        json!({ "tenant": "acme", "percent": 100, "spent_micros": 100_000_000i64,
                "limit_micros": 100_000_000i64, "month": "2026-11" }),
    );
    assert_eq!(h.app.notice.as_ref().unwrap().tone, Tone::Error);
    h.send(Event::Tick(
        crate::client::testing::now() + jiff::SignedDuration::from_secs(60),
    ));
    assert!(h.render().contains("Acme Shoes · spend limit reached"));
}
