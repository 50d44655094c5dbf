//! Pure tests of `App::update`: no IO, no async; the harness answers calls by hand.

use std::time::Duration;

use ratatui::crossterm::event::{KeyCode, KeyModifiers};
use serde_json::{Value, json};

use super::composer::Preview;
use super::inbox::Load;
use super::thread::Item;
use super::{Conn, Effect, Event, Focus, Overlay, Timer};
use crate::client::net::{NetEvent, NetStatus};
use crate::client::testing::{
    ConvBuilder, Harness, at, demo, demo_conversations, hello, inbound, now, outbound, owner,
};
use crate::protocol::{
    ApiError, AttributionState, ConversationStatus, ErrorCode, MessageStatus, ResetReason, kind,
};

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

fn open_demo() -> Harness {
    demo((120, 40), true)
}

fn message_event(m: crate::protocol::Message, c: crate::protocol::Conversation) -> Value {
    json!({ "message": m, "conversation": c })
}

#[test]
fn connecting_then_a_fresh_reset_loads_the_first_tenant() {
    let mut h = Harness::new((120, 40));
    assert_eq!(h.app.conn, Conn::Connecting { attempt: 1 });
    h.connect(hello(owner(&[
        ("acme", "Acme Shoes"),
        ("bolt", "Bolt Bikes"),
    ])));
    assert!(h.app.is_online());
    assert_eq!(h.app.tenant.as_deref(), Some("acme"));
    let (_, list) = h.last_call("conversations.list").expect("list asked");
    assert_eq!(list["tenant"], "acme");
    assert_eq!(list["limit"], 200);
    assert_eq!(list["filter"], json!({}));
    assert!(h.last_call("codes.list").is_some());
    assert_eq!(h.app.inbox.load, Load::Loading);
    h.reply(
        "conversations.list",
        Ok(json!({ "items": demo_conversations(), "next": null })),
    );
    assert_eq!(h.app.inbox.load, Load::Loaded);
    assert_eq!(h.app.inbox.len(), 5);
    assert_eq!(h.app.inbox.row(0).unwrap().id, "c1");
}

#[test]
fn views_and_search_are_server_side_filters() {
    let mut h = demo((120, 40), false);
    let cases = [
        ('2', json!({ "unread": true })),
        ('3', json!({ "attribution_lost": true })),
        ('4', json!({ "status": "open" })),
        ('5', json!({ "status": "resolved" })),
        ('1', json!({})),
    ];
    for (key, filter) in cases {
        let fx = h.key(KeyCode::Char(key));
        assert_eq!(
            calls(&fx, "conversations.list")[0]["filter"],
            filter,
            "view {key}"
        );
    }
    h.key(KeyCode::Char('/'));
    h.type_text("jane");
    assert!(
        calls(&h.effects, "conversations.list").len() == 6,
        "typing does not search yet"
    );
    let fx = h.key(KeyCode::Enter);
    assert_eq!(
        calls(&fx, "conversations.list")[0]["filter"],
        json!({ "query": "jane" })
    );
    let fx = h.key(KeyCode::Esc);
    assert_eq!(calls(&fx, "conversations.list")[0]["filter"], json!({}));
}

#[test]
fn an_old_list_answer_is_dropped_after_the_view_changed() {
    let mut h = demo((120, 40), false);
    h.key(KeyCode::Char('2'));
    h.key(KeyCode::Char('3'));
    let lists = h.open_calls("conversations.list");
    assert_eq!(lists.len(), 2);
    let (stale, _) = lists[0].clone();
    h.net(NetEvent::Reply {
        call: stale,
        result: Ok(json!({ "items": demo_conversations(), "next": null })),
    });
    assert!(
        h.app.inbox.is_empty(),
        "answer for the unread view ignored in the lost view"
    );
}

#[test]
fn tenant_switch_reloads_and_closes_the_thread() {
    let mut h = open_demo();
    h.key(KeyCode::Esc);
    h.key(KeyCode::Esc);
    assert_eq!(h.app.focus, Focus::Inbox);
    let fx = h.key(KeyCode::Char('t'));
    assert_eq!(h.app.tenant.as_deref(), Some("bolt"));
    assert!(h.app.thread.is_none());
    assert_eq!(calls(&fx, "conversations.list")[0]["tenant"], "bolt");
    assert_eq!(calls(&fx, "codes.list")[0]["tenant"], "bolt");
}

#[test]
fn opening_a_conversation_loads_history_and_marks_it_read() {
    let mut h = demo((120, 40), false);
    let fx = h.key(KeyCode::Enter);
    assert_eq!(h.app.focus, Focus::Composer);
    assert_eq!(
        calls(&fx, "conversations.history")[0],
        json!({ "conversation": "c1", "limit": 100 })
    );
    let fx = h.reply(
        "conversations.history",
        Ok(json!({ "items": [inbound("m13", "c1", "hi", &at(11, 57))], "next": "m13" })),
    );
    let update = &calls(&fx, "conversations.update")[0];
    assert_eq!(update["read_up_to"], "m13");
    assert_eq!(h.app.thread.as_ref().unwrap().items().len(), 1);
}

#[test]
fn inbound_elsewhere_rings_and_moves_up_inbound_here_is_read() {
    let mut h = open_demo();
    let c4 = ConvBuilder::new("c4", "+13105550142")
        .unread(1)
        .activity(&at(11, 59))
        .build();
    let fx = h.event(
        "acme",
        kind::MESSAGE_RECEIVED,
        message_event(inbound("m42", "c4", "hello?", &at(11, 59)), c4),
    );
    assert!(fx.contains(&Effect::Bell));
    assert_eq!(h.app.inbox.row(0).unwrap().id, "c4");
    assert_eq!(
        h.app.inbox.selected_id(),
        Some("c1"),
        "the selection stays put"
    );

    let c1 = ConvBuilder::new("c1", "+14155550100")
        .name("Jane Doe")
        .unread(1)
        .activity(&at(11, 59))
        .build();
    let fx = h.event(
        "acme",
        kind::MESSAGE_RECEIVED,
        message_event(inbound("m14", "c1", "hello?", &at(11, 59)), c1),
    );
    assert!(
        !fx.contains(&Effect::Bell),
        "no bell for the open conversation"
    );
    assert_eq!(calls(&fx, "conversations.update")[0]["read_up_to"], "m14");
    assert_eq!(
        h.app.thread.as_ref().unwrap().last_message().unwrap().id,
        "m14"
    );
}

#[test]
fn no_bell_when_switched_off() {
    let mut h = open_demo();
    h.app.bell = false;
    let c4 = ConvBuilder::new("c4", "+13105550142").unread(1).build();
    let fx = h.event(
        "acme",
        kind::MESSAGE_RECEIVED,
        message_event(inbound("m42", "c4", "x", &at(11, 59)), c4),
    );
    assert!(!fx.contains(&Effect::Bell));
}

#[test]
fn another_tenants_inbound_counts_in_the_switcher() {
    let mut h = open_demo();
    let mut c = ConvBuilder::new("b1", "+14155550999").build();
    c.tenant = "bolt".into();
    let fx = h.event(
        "bolt",
        kind::MESSAGE_RECEIVED,
        message_event(inbound("mb", "b1", "x", &at(11, 59)), c),
    );
    assert!(fx.contains(&Effect::Bell));
    assert_eq!(h.app.tenant_news.get("bolt"), Some(&1));
    assert!(h.app.inbox.get("b1").is_none());
}

#[test]
fn the_same_message_twice_shows_once_and_status_moves_forward() {
    let mut h = open_demo();
    let c1 = h.app.thread.as_ref().unwrap().conversation.clone();
    let mut m = outbound("m20", "c1", "On its way", &at(11, 58));
    m.status = MessageStatus::Queued;
    h.event(
        "acme",
        kind::MESSAGE_CREATED,
        message_event(m.clone(), c1.clone()),
    );
    h.event(
        "acme",
        kind::MESSAGE_CREATED,
        message_event(m.clone(), c1.clone()),
    );
    m.status = MessageStatus::Delivered;
    h.event(
        "acme",
        kind::MESSAGE_STATUS,
        message_event(m.clone(), c1.clone()),
    );
    m.status = MessageStatus::Dispatched;
    h.event("acme", kind::MESSAGE_STATUS, message_event(m, c1));
    let t = h.app.thread.as_ref().unwrap();
    assert_eq!(t.items().iter().filter(|i| i.id() == "m20").count(), 1);
    assert_eq!(t.last_message().unwrap().status, MessageStatus::Delivered);
}

#[test]
fn typing_debounces_a_preview_and_stale_answers_are_dropped() {
    let mut h = open_demo();
    let fx = h.key(KeyCode::Char('h'));
    let Some(Effect::Schedule {
        after,
        timer: Timer::Preview { generation: g1 },
    }) = fx.first().cloned()
    else {
        panic!("no preview scheduled: {fx:?}")
    };
    assert_eq!(after, Duration::from_millis(250));
    h.key(KeyCode::Char('i'));
    let fx = h.send(Event::Timer(Timer::Preview { generation: g1 }));
    assert!(
        calls(&fx, "messages.preview").is_empty(),
        "an old timer asks nothing"
    );
    let g2 = h.app.composer.generation;
    let fx = h.send(Event::Timer(Timer::Preview { generation: g2 }));
    let p = &calls(&fx, "messages.preview")[0];
    assert_eq!(p["body"], "hi");
    assert_eq!(p["conversation"], "c1");
    h.key(KeyCode::Char('!'));
    h.reply("messages.preview", Ok(json!({
        "encoding": "gsm7", "segments": 1, "cost_micros": 7900, "remaining_in_segment": 157, "warnings": []
    })));
    assert_eq!(
        h.app.composer.preview,
        Preview::Waiting,
        "answer for older text ignored"
    );
}

#[test]
fn newline_keys_insert_and_enter_sends() {
    let mut h = open_demo();
    h.type_text("one");
    h.key_with(KeyCode::Enter, KeyModifiers::ALT);
    h.type_text("two");
    h.key_with(KeyCode::Enter, KeyModifiers::SHIFT);
    h.type_text("three");
    h.key_with(KeyCode::Char('j'), KeyModifiers::CONTROL);
    h.type_text("four");
    assert_eq!(h.app.composer.text(), "one\ntwo\nthree\nfour");
    let fx = h.key(KeyCode::Enter);
    let send = &calls(&fx, "messages.send")[0];
    assert_eq!(send["body"], "one\ntwo\nthree\nfour");
    assert_eq!(send["conversation"], "c1");
    let key = send["client_msg_id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(key).is_ok());
    assert!(h.app.composer.is_locked());
}

#[test]
fn a_sent_reply_clears_the_composer_and_shows_in_the_thread() {
    let mut h = open_demo();
    h.type_text("On its way!");
    let fx = h.key(KeyCode::Enter);
    let key = calls(&fx, "messages.send")[0]["client_msg_id"].clone();
    let mut m = outbound("m20", "c1", "On its way!", &at(11, 59));
    m.status = MessageStatus::Queued;
    m.client_msg_id = key.as_str().map(str::to_string);
    h.reply(
        "messages.send",
        Ok(json!({ "message": m, "duplicate": false })),
    );
    assert!(h.app.composer.is_blank());
    assert!(!h.app.composer.is_locked());
    assert_eq!(
        h.app.thread.as_ref().unwrap().last_message().unwrap().id,
        "m20"
    );
    // The event that follows does not add it twice.
    let c1 = h.app.thread.as_ref().unwrap().conversation.clone();
    h.event("acme", kind::MESSAGE_CREATED, message_event(m, c1));
    let t = h.app.thread.as_ref().unwrap();
    assert_eq!(
        t.items()
            .iter()
            .filter(|i| matches!(i, Item::Message(m) if m.id == "m20"))
            .count(),
        1
    );
}

#[test]
fn a_refused_send_keeps_the_text_and_says_why() {
    let mut h = open_demo();
    h.type_text("Hello again");
    h.key(KeyCode::Enter);
    h.reply(
        "messages.send",
        Err(ApiError::new(
            ErrorCode::NoConsent,
            "+1 415-555-0100 has not written in 24 h and has not opted in",
        )),
    );
    assert_eq!(h.app.composer.text(), "Hello again");
    assert!(!h.app.composer.is_locked());
    assert_eq!(
        h.app.composer.refusal.as_ref().unwrap().code,
        ErrorCode::NoConsent
    );
    assert!(h.render().contains("has not written in 24 h"));
}

#[test]
fn a_send_lost_with_the_connection_goes_again_with_the_same_key() {
    let mut h = open_demo();
    h.type_text("Still there?");
    let fx = h.key(KeyCode::Enter);
    let first = calls(&fx, "messages.send")[0].clone();
    h.drop_calls("connection reset");
    h.net(NetEvent::Status(NetStatus::Retrying {
        after: Duration::from_secs(2),
        reason: "reset".into(),
    }));
    assert_eq!(
        h.app.composer.text(),
        "Still there?",
        "the text survives the disconnect"
    );
    assert!(h.app.composer.is_locked());
    let fx = h.net(NetEvent::Connected(hello(owner(&[
        ("acme", "Acme Shoes"),
        ("bolt", "Bolt Bikes"),
    ]))));
    let again = &calls(&fx, "messages.send")[0];
    assert_eq!(again, &first, "same key, same payload");
}

#[test]
fn a_send_made_offline_waits_for_the_connection() {
    let mut h = open_demo();
    h.net(NetEvent::Status(NetStatus::Retrying {
        after: Duration::from_secs(3),
        reason: "refused".into(),
    }));
    h.type_text("queued");
    let fx = h.key(KeyCode::Enter);
    assert!(calls(&fx, "messages.send").is_empty());
    assert!(h.app.composer.is_locked());
    let fx = h.net(NetEvent::Connected(hello(owner(&[("acme", "Acme Shoes")]))));
    assert_eq!(calls(&fx, "messages.send")[0]["body"], "queued");
}

#[test]
fn the_created_event_settles_a_send_whose_answer_was_lost() {
    let mut h = open_demo();
    h.type_text("ping");
    let fx = h.key(KeyCode::Enter);
    let key = calls(&fx, "messages.send")[0]["client_msg_id"]
        .as_str()
        .unwrap()
        .to_string();
    h.drop_calls("gone");
    let mut m = outbound("m30", "c1", "ping", &at(11, 59));
    m.client_msg_id = Some(key);
    let c1 = h.app.thread.as_ref().unwrap().conversation.clone();
    h.event("acme", kind::MESSAGE_CREATED, message_event(m, c1));
    assert!(h.app.composer.is_blank());
    let fx = h.net(NetEvent::Connected(hello(owner(&[("acme", "Acme Shoes")]))));
    assert!(
        calls(&fx, "messages.send").is_empty(),
        "nothing left to retry"
    );
}

fn lost_demo() -> Harness {
    let mut h = open_demo();
    let c = ConvBuilder::new("c1", "+14155550100")
        .name("Jane Doe")
        .lost(&at(11, 58))
        .last(inbound("m13", "c1", "Is my order shipped?", &at(11, 57)))
        .build();
    h.event(
        "acme",
        kind::ATTRIBUTION_LOST,
        json!({ "conversation": c, "code": "55123", "subscriber": "+14155550100", "since": at(11, 58) }),
    );
    h
}

#[test]
fn attribution_lost_shows_a_banner_a_line_and_a_mark() {
    let h = lost_demo();
    let t = h.app.thread.as_ref().unwrap();
    assert_eq!(t.conversation.attribution.state, AttributionState::Lost);
    assert!(
        t.items()
            .iter()
            .any(|i| matches!(i, Item::System(s) if s.text.contains("Attribution lost")))
    );
    let screen = h.render();
    assert!(screen.contains("ATTRIBUTION LOST on 55123"));
    assert!(screen.contains("LOST"));
}

#[test]
fn sending_where_attribution_is_lost_asks_first() {
    let mut h = lost_demo();
    h.type_text("Are you still interested?");
    let fx = h.key(KeyCode::Enter);
    assert!(calls(&fx, "messages.send").is_empty());
    let Some(Overlay::Attribution(p)) = &h.app.overlay else {
        panic!("no prompt")
    };
    assert_eq!(p.alternatives, ["77001"]);
    // Esc cancels and keeps the text.
    h.key(KeyCode::Esc);
    assert!(h.app.overlay.is_none());
    assert_eq!(h.app.composer.text(), "Are you still interested?");
    // r reclaims.
    h.key(KeyCode::Enter);
    let fx = h.key(KeyCode::Char('r'));
    let send = &calls(&fx, "messages.send")[0];
    assert_eq!(send["reclaim"], true);
    assert!(send.get("code").is_none());
}

#[test]
fn d_switches_to_the_dedicated_code() {
    let mut h = lost_demo();
    h.type_text("Hi");
    h.key(KeyCode::Enter);
    let fx = h.key(KeyCode::Char('d'));
    let send = &calls(&fx, "messages.send")[0];
    assert_eq!(send["code"], "77001");
    assert!(send.get("reclaim").is_none());
}

#[test]
fn an_attribution_refusal_opens_the_prompt_with_the_engines_alternatives() {
    let mut h = open_demo();
    h.type_text("Hi");
    let fx = h.key(KeyCode::Enter);
    let key = calls(&fx, "messages.send")[0]["client_msg_id"].clone();
    let err = ApiError::new(
        ErrorCode::AttributionShifted,
        "Replies on 55123 now go to another business",
    )
    .with_details(
        json!({ "since": at(11, 58), "code": "55123", "alternatives": [{"code": "77002"}] }),
    );
    h.reply("messages.send", Err(err));
    let Some(Overlay::Attribution(p)) = &h.app.overlay else {
        panic!("no prompt")
    };
    assert_eq!(p.alternatives, ["77002", "77001"]);
    let fx = h.key(KeyCode::Char('r'));
    let send = &calls(&fx, "messages.send")[0];
    assert_eq!(send["client_msg_id"], key, "a refused send keeps its key");
    assert_eq!(send["reclaim"], true);
}

#[test]
fn conversation_actions_send_updates() {
    let mut h = open_demo();
    h.key(KeyCode::Esc);
    let fx = h.key(KeyCode::Char('r'));
    let u = &calls(&fx, "conversations.update")[0];
    assert_eq!(u["conversation"], "c1");
    assert_eq!(u["status"], "resolved");
    assert_eq!(
        calls(&h.key(KeyCode::Char('u')), "conversations.update")[0]["unread"],
        true
    );
    assert_eq!(
        calls(&h.key(KeyCode::Char('a')), "conversations.update")[0]["assignee"],
        "me"
    );
    h.key(KeyCode::Char('c'));
    let Some(Overlay::CodePicker { codes, .. }) = &h.app.overlay else {
        panic!("no picker")
    };
    assert_eq!(codes.len(), 2);
    h.key(KeyCode::Down);
    let fx = h.key(KeyCode::Enter);
    assert_eq!(calls(&fx, "conversations.update")[0]["code"], "77001");
    // In the inbox, actions apply to the selected row.
    h.key(KeyCode::Esc);
    h.key(KeyCode::Down);
    let fx = h.key(KeyCode::Char('r'));
    assert_eq!(calls(&fx, "conversations.update")[0]["conversation"], "c2");
}

#[test]
fn resolving_in_the_open_view_drops_the_row() {
    let mut h = demo((120, 40), false);
    h.key(KeyCode::Char('4'));
    h.reply(
        "conversations.list",
        Ok(json!({ "items": demo_conversations()[..4], "next": null })),
    );
    h.key(KeyCode::Char('r'));
    let c1 = ConvBuilder::new("c1", "+14155550100")
        .status(ConversationStatus::Resolved)
        .build();
    h.reply("conversations.update", Ok(json!(c1)));
    assert!(h.app.inbox.get("c1").is_none());
    assert_eq!(h.app.inbox.selected_id(), Some("c2"));
}

#[test]
fn quitting_asks_only_when_text_is_unsent() {
    let mut h = demo((120, 40), false);
    assert_eq!(h.key(KeyCode::Char('q')), [Effect::Quit]);

    let mut h = open_demo();
    h.type_text("draft");
    let fx = h.key_with(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert!(fx.is_empty());
    assert_eq!(h.app.overlay, Some(Overlay::ConfirmQuit { unsent: 1 }));
    h.key(KeyCode::Char('n'));
    assert!(h.app.overlay.is_none());
    assert_eq!(h.app.composer.text(), "draft");
    h.key_with(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(h.key(KeyCode::Char('y')), [Effect::Quit]);
}

#[test]
fn q_types_in_the_composer_and_help_opens_elsewhere() {
    let mut h = open_demo();
    assert!(h.key(KeyCode::Char('q')).iter().all(|e| *e != Effect::Quit));
    assert_eq!(h.app.composer.text(), "q");
    h.key(KeyCode::Esc);
    h.key(KeyCode::Char('?'));
    assert_eq!(h.app.overlay, Some(Overlay::Help { scroll: 0 }));
    h.key(KeyCode::Esc);
    assert!(h.app.overlay.is_none());
}

#[test]
fn tab_cycles_the_panes() {
    let mut h = open_demo();
    assert_eq!(h.app.focus, Focus::Composer);
    h.key(KeyCode::Tab);
    assert_eq!(h.app.focus, Focus::Inbox);
    h.key(KeyCode::Tab);
    assert_eq!(h.app.focus, Focus::Thread);
    h.key(KeyCode::Tab);
    assert_eq!(h.app.focus, Focus::Composer);
}

#[test]
fn status_follows_the_connection() {
    let mut h = open_demo();
    h.net(NetEvent::Status(NetStatus::Retrying {
        after: Duration::from_secs(4),
        reason: "closed (1012)".into(),
    }));
    assert!(matches!(h.app.conn, Conn::Retrying { .. }));
    assert!(h.render().contains("reconnecting in 4 s"));
    h.app.take_dirty();
    h.send(Event::Tick(now() + jiff::SignedDuration::from_secs(1)));
    assert!(h.app.take_dirty(), "the countdown redraws");
    assert!(h.render().contains("reconnecting in 3 s"));
    h.net(NetEvent::Status(NetStatus::Stopped {
        reason: "token invalid or revoked (4401)".into(),
        new_token: true,
    }));
    assert!(h.render().contains("token refused"));
    let fx = h.key_with(KeyCode::Char('r'), KeyModifiers::CONTROL);
    assert!(fx.contains(&Effect::ReconnectNow) || h.app.focus == Focus::Composer);
}

#[test]
fn a_resume_reloads_only_what_was_lost_and_a_reset_reloads_all() {
    let mut h = open_demo();
    h.key(KeyCode::Esc);
    h.key(KeyCode::Char('2'));
    h.drop_calls("gone");
    assert_eq!(h.app.inbox.load, Load::Stale);
    h.net(NetEvent::Connected(hello(owner(&[("acme", "Acme Shoes")]))));
    let fx = h.net(NetEvent::Synced {
        stream: "tenant:acme".into(),
    });
    assert_eq!(
        calls(&fx, "conversations.list")[0]["filter"],
        json!({ "unread": true })
    );
    assert!(
        calls(&fx, "conversations.history").is_empty(),
        "history was loaded: no reload"
    );
    let fx = h.net(NetEvent::Reset {
        stream: "tenant:acme".into(),
        reason: ResetReason::TooOld,
    });
    assert_eq!(calls(&fx, "conversations.list").len(), 1);
    assert_eq!(calls(&fx, "conversations.history")[0]["conversation"], "c1");
}

#[test]
fn scrolling_up_pages_older_history() {
    let mut h = demo((120, 40), false);
    h.key(KeyCode::Enter);
    let page: Vec<_> = (0..100)
        .map(|i| inbound(&format!("m{i:03}"), "c1", "line", &at(10, i % 60)))
        .collect();
    h.reply(
        "conversations.history",
        Ok(json!({ "items": page, "next": "m000" })),
    );
    h.key(KeyCode::Esc);
    assert_eq!(h.app.focus, Focus::Thread);
    let mut asked = Vec::new();
    for _ in 0..20 {
        asked.extend(calls(&h.key(KeyCode::PageUp), "conversations.history"));
    }
    assert_eq!(asked.len(), 1, "one page at a time: {asked:?}");
    assert_eq!(asked[0]["before"], "m000");
}

#[test]
fn ticks_redraw_only_when_a_shown_time_changes() {
    let mut h = demo((120, 40), false);
    h.app.take_dirty();
    h.send(Event::Tick(now() + jiff::SignedDuration::from_secs(10)));
    assert!(!h.app.take_dirty(), "nothing on screen reads differently");
    // c1's activity is 11:57: at 12:00:00 it reads 3m, at 12:01:00 it reads 4m.
    h.send(Event::Tick(now() + jiff::SignedDuration::from_secs(60)));
    assert!(h.app.take_dirty());
}

#[test]
fn consent_and_status_changes_become_system_lines() {
    let mut h = open_demo();
    let c = ConvBuilder::new("c1", "+14155550100")
        .status(ConversationStatus::Resolved)
        .build();
    h.event(
        "acme",
        kind::CONVERSATION_UPDATED,
        json!({ "conversation": c }),
    );
    h.event(
        "acme",
        kind::CONSENT_CHANGED,
        json!({ "tenant": "acme", "subscriber": "+14155550100", "consent": "opted_out", "source": "STOP" }),
    );
    let t = h.app.thread.as_ref().unwrap();
    let lines: Vec<_> = t
        .items()
        .iter()
        .filter_map(|i| match i {
            Item::System(s) => Some(s.text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        lines,
        ["Status: open → resolved", "Consent: opted out (STOP)"]
    );
}

#[test]
fn paste_goes_into_the_composer_without_controls() {
    let mut h = open_demo();
    let fx = h.send(Event::Paste(
        "line one\r\nline two\x1b]52;c;ZXZpbA==\x07".into(),
    ));
    assert_eq!(h.app.composer.text(), "line one\nline two]52;c;ZXZpbA==");
    assert!(matches!(fx[0], Effect::Schedule { .. }));
}
