//! Large inboxes and long threads: only visible rows are built, so 100 000 conversations and
//! 20 000 messages draw and scroll like five. (Speed itself is measured by benchmarks; these
//! tests check the behaviour at that size and print the time for the curious.)

use std::time::Instant;

use ratatui::crossterm::event::KeyCode;
use shortbox::client::testing::{ConvBuilder, demo, inbound};

fn minute(i: usize) -> String {
    let t: jiff::Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
    (t + jiff::SignedDuration::from_secs(i as i64 * 20)).to_string()
}

#[test]
fn a_hundred_thousand_conversations() {
    let mut h = demo((200, 50), false);
    let items: Vec<_> = (0..100_000)
        .map(|i| {
            ConvBuilder::new(&format!("k{i:06}"), &format!("+1415555{:04}", i % 10_000))
                .last(inbound(
                    &format!("m{i}"),
                    &format!("k{i:06}"),
                    "hello there",
                    &minute(i),
                ))
                .build()
        })
        .collect();
    let asked_at = h.app.inbox.clock();
    h.app
        .inbox
        .take_page(items, Some("next".into()), true, asked_at);
    assert_eq!(h.app.inbox.len(), 100_000);

    let _ = h.render();
    let start = Instant::now();
    let screen = h.render();
    let first = start.elapsed();
    assert!(screen.contains("Inbox · All · 100000+"));
    assert_eq!(h.app.inbox.row(0).unwrap().id, "k099999", "newest first");

    h.key(KeyCode::End);
    let start = Instant::now();
    let screen = h.render();
    let last = start.elapsed();
    assert_eq!(h.app.inbox.selected_id(), Some("k000000"));
    assert!(
        screen.contains("+1 415-555-0000"),
        "the last row is on screen"
    );
    eprintln!("100k inbox: first frame {first:?}, frame at the end {last:?}");

    // An event for a row deep in the list moves it to the top without a rebuild.
    h.key(KeyCode::Home);
    let moved = ConvBuilder::new("k050000", "+14155550000")
        .activity("2026-12-01T00:00:00.000Z")
        .build();
    h.app.inbox.apply(moved);
    assert_eq!(h.app.inbox.row(0).unwrap().id, "k050000");
    assert_eq!(h.app.inbox.len(), 100_000);
}

#[test]
fn a_long_thread_scrolls_by_lines() {
    let mut h = demo((120, 40), true);
    let page: Vec<_> = (0..20_000)
        .map(|i| {
            inbound(
                &format!("x{i:05}"),
                "c1",
                &format!("message number {i} with some words to wrap"),
                &minute(i),
            )
        })
        .collect();
    if let Some(t) = h.app.thread.as_mut() {
        t.take_page(page, Some("x00000".into()), true);
    }
    let _ = h.render();
    let start = Instant::now();
    let screen = h.render();
    eprintln!("20k thread: frame {:?}", start.elapsed());
    assert!(screen.contains("message number 19999"));
    h.key(KeyCode::Esc);
    for _ in 0..10 {
        h.key(KeyCode::PageUp);
    }
    let screen = h.render();
    assert!(
        !screen.contains("message number 19999"),
        "scrolled away from the bottom"
    );
    assert!(
        screen.contains("message number 198"),
        "older messages in view"
    );
    h.key(KeyCode::End);
    assert!(h.render().contains("message number 19999"));
}
