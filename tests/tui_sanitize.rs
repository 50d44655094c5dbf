//! A hostile message body renders as inert text: no ESC, C1 or bidi control reaches the
//! terminal buffer, and the layout around it stays intact.

use ratatui::buffer::Buffer;
use serde_json::json;
use shortbox::client::sanitize::is_forbidden;
use shortbox::client::testing::{ConvBuilder, Fixture, at, code, inbound, outbound, owner};
use shortbox::protocol::CodeKind;

const HOSTILE: &str = concat!(
    "\x1b]0;pwned title\x07",         // OSC 0: window title
    "\x1b[2J\x1b[H",                  // CSI: clear screen, cursor home
    "\x1b[31;1mred\x1b[0m ",          // SGR colours
    "\x1b]52;c;ZWNobyBwd25lZA==\x07", // OSC 52: write the clipboard
    "\u{9b}31m c1-csi ",              // C1 CSI
    "\x1bP1$r\x1b\\ dcs ",            // DCS
    "abc\u{202e}txt.exe\u{202c} ",    // bidi override
    "\u{2066}iso\u{2069}\u{200f}\u{061c} ",
    "bell\x07 bs\x08 del\x7f cr\rend\t",
    "averyveryveryveryveryveryveryveryveryveryveryveryveryveryverylongwordwithoutanyspaces",
);

fn scene(body: &str, name: &str) -> shortbox::client::testing::Harness {
    let c1 = ConvBuilder::new("c1", "+14155550100")
        .name(name)
        .unread(1)
        .last(inbound("m2", "c1", body, &at(11, 57)))
        .build();
    let c2 = ConvBuilder::new("c2", "+14155550123")
        .last(outbound("m3", "c2", "fine", &at(11, 0)))
        .build();
    let mut m1 = outbound("m1", "c1", body, &at(11, 50));
    m1.error = Some(format!("carrier said {body}"));
    Fixture {
        principal: owner(&[("acme", "Acme \x1b[5mShoes")]),
        conversations: vec![c1, c2],
        open: Some((
            "c1".into(),
            vec![m1, inbound("m2", "c1", body, &at(11, 57))],
        )),
        codes: vec![code("55123", CodeKind::Shared, "US")],
        size: (100, 30),
    }
    .build()
}

fn assert_inert(buf: &Buffer) {
    for (i, cell) in buf.content.iter().enumerate() {
        let sym = cell.symbol();
        assert!(
            !sym.chars()
                .any(|c| is_forbidden(c) || c == '\t' || c == '\n'),
            "cell {i} ({}, {}) holds {sym:?}",
            i % buf.area.width as usize,
            i / buf.area.width as usize
        );
    }
}

/// The box-drawing skeleton of the screen: borders and corners only.
fn skeleton(buf: &Buffer) -> Vec<String> {
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| {
                    let s = buf[(x, y)].symbol();
                    if "│─┌┐└┘".contains(s) && !s.is_empty() {
                        s.chars().next().unwrap()
                    } else {
                        ' '
                    }
                })
                .collect()
        })
        .collect()
}

#[test]
fn hostile_bodies_render_as_inert_text() {
    let h = scene(HOSTILE, "Mallory \u{202e}\x1b]0;x\x07");
    let t = h.terminal();
    let buf = t.backend().buffer();
    assert_inert(buf);
    let screen = h.render();
    assert!(
        screen.contains("␛]0;pwned title␇"),
        "escapes are shown, not obeyed:\n{screen}"
    );
    assert!(screen.contains("␛]52;c;"), "OSC 52 shown as text");
    assert!(screen.contains("abctxt.exe"), "bidi override dropped");
}

#[test]
fn hostile_bodies_do_not_move_the_layout() {
    let clean = scene("hello", "Mallory");
    let hostile = scene(HOSTILE, "Mallory \u{202e}\x1b]0;x\x07");
    let a = skeleton(clean.terminal().backend().buffer());
    let b = skeleton(hostile.terminal().backend().buffer());
    // The panes' frames are where they were; only the text inside differs.
    for (y, (ra, rb)) in a.iter().zip(&b).enumerate() {
        let (ca, cb): (Vec<_>, Vec<_>) = (ra.chars().collect(), rb.chars().collect());
        for x in [0usize, 39, 40, 99] {
            assert_eq!(
                ca[x], cb[x],
                "row {y} column {x}\nclean:   {ra}\nhostile: {rb}"
            );
        }
    }
    insta::assert_snapshot!(hostile.render());
}

#[test]
fn hostile_previews_and_warnings_are_inert_too() {
    let mut h = scene("hi", "Jane");
    h.type_text("reply");
    let generation = h.app.composer.generation;
    h.send(shortbox::client::app::Event::Timer(
        shortbox::client::app::Timer::Preview { generation },
    ));
    h.reply(
        "messages.preview",
        Ok(json!({
            "encoding": "gsm7", "segments": 1, "cost_micros": 7900, "remaining_in_segment": 155,
            "warnings": [{ "code": "quiet_hours", "message": HOSTILE, "blocking": true }]
        })),
    );
    assert_inert(h.terminal().backend().buffer());
}
