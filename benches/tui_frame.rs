//! B8: one TUI frame with a 1 000 000-message history loaded in the client, 200×50.
//!
//! The messages reach a real [`App`] the way the engine delivers them, through
//! [`App::update`] with protocol JSON:
//! - the inbox's first `conversations.list` page, then the long conversation opened (its
//!   latest `conversations.history` page);
//! - live `message.received` events: [`SPREAD`] messages across [`OTHERS`] other
//!   conversations (each carrying its conversation summary, so the inbox grows to them), and
//!   every 200th event one more message in the open conversation;
//! - the agent paging back through the open conversation with `g` (top of what is loaded,
//!   which asks for the next older page), each page answered with 100 older messages, until
//!   the whole thread is loaded.
//!
//! Then `terminal.draw(ui::draw)` on a 200×50 `TestBackend` is timed in each state that
//! matters: the inbox focused, the thread at the bottom, the thread scrolled far up (half of
//! the thread below the screen), the thread at its very top, the composer open with a draft
//! and its preview, and an input-to-frame case (PageUp/PageDown in the thread, then a draw).
//! Criterion reports the mean and median; the p50/p99/max the target is stated in come from
//! [`FRAMES`] frames per state timed one by one into an HdrHistogram, printed before the
//! criterion runs, with the client's RSS before and after loading.
//!
//! Run: `cargo bench --bench tui_frame` (`SHORTBOX_B8_MESSAGES=100000` loads fewer, to try
//! things quickly; `SHORTBOX_B8_PARTS=1` also prints the time of each pane drawn alone).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hdrhistogram::Histogram;
use jiff::{SignedDuration, Timestamp};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::{Value, json};
use shortbox::client::app::thread::Scroll;
use shortbox::client::app::{App, AppConfig, Effect, Event, Focus, Timer};
use shortbox::client::net::{CallId, NetEvent};
use shortbox::client::testing::{ConvBuilder, code, hello, inbound, now, outbound, owner};
use shortbox::client::ui;
use shortbox::protocol::{CodeKind, Conversation, Message, MessageStatus, ResetReason, stream};

const SIZE: (u16, u16) = (200, 50);
/// Messages loaded in all, unless `SHORTBOX_B8_MESSAGES` says otherwise.
const MESSAGES: usize = 1_000_000;
/// Of those, the live messages of other conversations (the rest are the open thread's).
const SPREAD: usize = 200_000;
/// Conversations those live messages are spread over.
const OTHERS: usize = 20_000;
/// The engine's history page as the client asks for it (`HISTORY_PAGE`).
const PAGE: usize = 100;
/// Frames timed one by one per state for the percentiles.
const FRAMES: usize = 2_000;
const LONG: &str = "c-long";

fn total() -> usize {
    std::env::var("SHORTBOX_B8_MESSAGES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(MESSAGES)
}

/// Resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// The 1-, 5- and 15-minute load averages: the machine is shared, and a busy one shows in the
/// tail of the percentiles.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Bodies of varied length and script, some wrapping over several rows at thread width.
const BODIES: [&str; 8] = [
    "ok",
    "Is my order shipped? It was supposed to arrive Friday.",
    "Thanks! 👍",
    "Hi, I ordered the blue boots in size 9 last week and the tracking page has said \
     'label created' since Monday. Could you check with the warehouse whether they actually \
     left, and if not, whether I can switch to the black ones that are in stock?",
    "Ваш заказ отправлен, номер отслеживания придёт отдельным сообщением.",
    "STOP? no wait, I meant stop sending the promo ones, the order updates are fine",
    "Your order #4411 is on its way! Track it at https://example.com/t/4411 — it should \
     arrive Thursday between 9 and 5. Reply HELP for help.",
    "もう一度送ってください。届いていません。",
];

/// Message `i` of the open thread: one every 15 s, ending before the live traffic starts.
fn thread_message(i: usize, base: Timestamp) -> Message {
    let at = (base + SignedDuration::from_secs(15 * i as i64)).to_string();
    let id = format!("t{i:07}");
    let body = BODIES[i % BODIES.len()];
    let mut m = if i.is_multiple_of(3) {
        let mut m = outbound(&id, LONG, body, &at);
        m.status = if i.is_multiple_of(97) {
            MessageStatus::Failed
        } else {
            MessageStatus::Delivered
        };
        if i.is_multiple_of(5) {
            m.author = Some("ag_bob".into());
        }
        m
    } else {
        inbound(&id, LONG, body, &at)
    };
    m.subscriber = "+14155550100".into();
    m
}

/// The number of the other conversation `k`: valid North American numbers, as the engine
/// only stores E.164.
fn number(k: usize) -> String {
    let area = [415, 212, 310, 617][k / 10_000 % 4];
    format!("+1{area}555{:04}", k % 10_000)
}

fn long_conversation(last: Message) -> Conversation {
    ConvBuilder::new(LONG, "+14155550100")
        .name("Jane Doe")
        .last(last)
        .build()
}

/// The client under test and the calls it has asked for.
struct Client {
    app: App,
    seq: u64,
    open: Vec<(CallId, &'static str)>,
}

impl Client {
    fn send(&mut self, event: Event) {
        for fx in self.app.update(event) {
            if let Effect::Call { id, method, .. } = fx {
                self.open.push((id, method));
            }
        }
    }

    fn key(&mut self, code: KeyCode) {
        self.send(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    }

    /// Answers the newest open call of `method`; false when there is none.
    fn reply(&mut self, method: &str, result: Value) -> bool {
        let Some(pos) = self.open.iter().rposition(|(_, m)| *m == method) else {
            return false;
        };
        let (call, _) = self.open.remove(pos);
        self.send(Event::Net(NetEvent::Reply {
            call,
            result: Ok(result),
        }));
        true
    }

    fn event(&mut self, kind: &str, data: Value, ts: &str) {
        self.seq += 1;
        self.send(Event::Net(NetEvent::Event(shortbox::protocol::Event {
            stream: stream::tenant("acme"),
            epoch: "E1".into(),
            seq: self.seq,
            kind: kind.into(),
            ts: ts.into(),
            data,
        })));
    }
}

/// A client that has received `total` messages, with the long conversation open.
fn load(total: usize) -> Client {
    let spread = SPREAD.min(total / 5);
    let in_thread = total - spread;
    let live_in_thread = spread / 200;
    let history = in_thread - live_in_thread;
    let live_start: Timestamp = "2026-11-22T00:00:00Z".parse().expect("time");
    let base = live_start - SignedDuration::from_secs(15 * history as i64 + 60);

    let mut c = Client {
        app: App::new(AppConfig {
            url: "ws://127.0.0.1:7878/v1/ws".into(),
            bell: false,
            tz: jiff::tz::TimeZone::UTC,
            now: now(),
            size: SIZE,
        }),
        seq: 0,
        open: Vec::new(),
    };
    let h = hello(owner(&[("acme", "Acme Shoes"), ("bolt", "Bolt Bikes")]));
    c.send(Event::Net(NetEvent::Connected(h)));
    c.send(Event::Net(NetEvent::Reset {
        stream: stream::tenant("acme"),
        reason: ResetReason::Fresh,
    }));
    let newest = thread_message(history - 1, base);
    let first_page: Vec<Conversation> = std::iter::once(long_conversation(newest.clone()))
        .chain((0..199).map(|k| {
            ConvBuilder::new(&format!("k{k:05}"), &number(k))
                .last(inbound(
                    &format!("p{k}"),
                    &format!("k{k:05}"),
                    "hello",
                    &base.to_string(),
                ))
                .build()
        }))
        .collect();
    assert!(c.reply(
        "conversations.list",
        json!({ "items": first_page, "next": "cursor-2" })
    ));
    c.reply(
        "codes.list",
        json!({ "items": [code("55123", CodeKind::Shared, "US"), code("77001", CodeKind::Dedicated, "US")] }),
    );

    // Open the long conversation: its latest page arrives.
    let page = c.app.inbox.len();
    c.app.inbox.select_id(LONG, page);
    c.key(KeyCode::Enter);
    let latest: Vec<Message> = (history.saturating_sub(PAGE)..history)
        .map(|i| thread_message(i, base))
        .collect();
    let mut oldest = history.saturating_sub(PAGE);
    assert!(c.reply(
        "conversations.history",
        json!({ "items": latest, "next": (oldest > 0).then(|| format!("t{oldest:07}")) })
    ));

    // Live traffic: other conversations, and now and then the open one.
    for j in 0..spread {
        let at = (live_start + SignedDuration::from_millis(200 * j as i64)).to_string();
        if j % 200 == 199 {
            let id = format!("live{j:07}");
            let mut m = inbound(&id, LONG, BODIES[j % BODIES.len()], &at);
            m.subscriber = "+14155550100".into();
            let conv = long_conversation(m.clone());
            c.event(
                "message.received",
                json!({ "message": m, "conversation": conv }),
                &at,
            );
            continue;
        }
        let k = j % OTHERS;
        let id = format!("k{k:05}");
        let mut m = inbound(&format!("o{j:07}"), &id, BODIES[j % BODIES.len()], &at);
        m.subscriber = number(k);
        let conv = ConvBuilder::new(&id, &number(k))
            .unread((j / OTHERS) as u32 + 1)
            .last(m.clone())
            .build();
        c.event(
            "message.received",
            json!({ "message": m, "conversation": conv }),
            &at,
        );
    }

    // The agent pages back through the whole conversation.
    c.key(KeyCode::Esc);
    while oldest > 0 {
        c.key(KeyCode::Char('g'));
        let from = oldest.saturating_sub(PAGE);
        let items: Vec<Message> = (from..oldest).map(|i| thread_message(i, base)).collect();
        oldest = from;
        let next = (oldest > 0).then(|| format!("t{oldest:07}"));
        assert!(
            c.reply(
                "conversations.history",
                json!({ "items": items, "next": next })
            ),
            "the client asked for older history"
        );
    }
    c.open.clear();
    c
}

struct Frames {
    terminal: Terminal<TestBackend>,
}

impl Frames {
    fn new() -> Self {
        Frames {
            terminal: Terminal::new(TestBackend::new(SIZE.0, SIZE.1)).expect("terminal"),
        }
    }

    fn draw(&mut self, app: &App) {
        self.terminal
            .draw(|f| ui::draw(f, app))
            .expect("a frame draws");
    }

    /// The screen as text, to check each state shows what it should.
    fn screen(&mut self, app: &App) -> String {
        self.draw(app);
        self.terminal.backend().to_string()
    }
}

/// `FRAMES` frames one by one: p50, p99, max.
fn percentiles(name: &str, mut frame: impl FnMut()) {
    let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).expect("histogram");
    for _ in 0..50 {
        frame();
    }
    for _ in 0..FRAMES {
        let start = Instant::now();
        frame();
        h.record(start.elapsed().as_nanos() as u64)
            .expect("recorded");
    }
    let us = |ns: u64| ns as f64 / 1000.0;
    println!(
        "B8 {name:<24} frames {FRAMES}: p50 {:>8.1} µs  p99 {:>8.1} µs  max {:>8.1} µs  mean {:>8.1} µs",
        us(h.value_at_quantile(0.50)),
        us(h.value_at_quantile(0.99)),
        us(h.max()),
        h.mean() / 1000.0,
    );
}

/// Where a frame's time goes: each pane drawn alone into a buffer, mean of many draws.
fn parts(app: &App) {
    use ratatui::buffer::Buffer;
    use ratatui::layout::Rect;
    use ratatui::widgets::Widget;
    let a = ui::layout::areas(app);
    let full = Rect::new(0, 0, SIZE.0, SIZE.1);
    let mut buf = Buffer::empty(full);
    let time = |name: &str, buf: &mut Buffer, f: &dyn Fn(&mut Buffer)| {
        let n = 2_000;
        let start = Instant::now();
        for _ in 0..n {
            buf.reset();
            f(buf);
        }
        println!(
            "B8   part {name:<10} {:>7.1} µs",
            start.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    };
    time("reset", &mut buf, &|_| {});
    time("top", &mut buf, &|b| {
        ui::status::TopBar { app }.render(a.top, b)
    });
    time("status", &mut buf, &|b| {
        ui::status::StatusBar { app }.render(a.status, b)
    });
    if let Some(r) = a.inbox {
        time("inbox", &mut buf, &|b| {
            ui::inbox::InboxView { app }.render(r, b)
        });
    }
    if let Some(r) = a.thread {
        time("thread", &mut buf, &|b| {
            ui::thread::ThreadView { app }.render(r, b)
        });
    }
    if let Some(r) = a.composer {
        time("composer", &mut buf, &|b| {
            ui::composer::ComposerView { app }.render(r, b)
        });
    }
    time("layout", &mut buf, &|_| {
        black_box(ui::layout::areas(app));
    });
}

/// Puts the client in one of the timed states.
fn enter(c: &mut Client, state: &str) {
    let app = &mut c.app;
    match state {
        "inbox" => {
            app.focus = Focus::Inbox;
            let page = ui::layout::inbox_page(app);
            let middle = app.inbox.len() / 2;
            app.inbox.select_index(middle, page);
            if let Some(t) = app.thread.as_mut() {
                t.scroll = Scroll::Bottom;
            }
        }
        "thread bottom" => {
            app.focus = Focus::Thread;
            if let Some(t) = app.thread.as_mut() {
                t.scroll = Scroll::Bottom;
            }
        }
        "thread far up" => {
            app.focus = Focus::Thread;
            if let Some(t) = app.thread.as_mut() {
                let key = t.items()[t.items().len() / 2].key();
                t.scroll = Scroll::Anchored {
                    key,
                    hidden_below: 0,
                };
            }
        }
        "thread top" => {
            app.focus = Focus::Thread;
            app.thread_to_top();
        }
        "composer" => {
            app.focus = Focus::Thread;
            if let Some(t) = app.thread.as_mut() {
                t.scroll = Scroll::Bottom;
            }
            c.key(KeyCode::Enter);
            if c.app.composer.is_blank() {
                c.send(Event::Paste(
                    "Hi Jane, the boots left the warehouse this morning; the tracking page \
                     catches up within a day. Anything else I can help with? 🙂"
                        .into(),
                ));
                let generation = c.app.composer.generation;
                c.send(Event::Timer(Timer::Preview { generation }));
                c.reply(
                    "messages.preview",
                    json!({
                        "encoding": "ucs2", "segments": 3, "cost_micros": 23_700,
                        "remaining_in_segment": 21,
                        "warnings": [{ "code": "multi_segment", "message": "3 segments: \
                         the emoji makes this UCS-2", "blocking": false }]
                    }),
                );
            }
        }
        other => unreachable!("no state {other}"),
    }
}

const STATES: [&str; 5] = [
    "inbox",
    "thread bottom",
    "thread far up",
    "thread top",
    "composer",
];

fn bench(c: &mut Criterion) {
    let total = total();
    let before = rss_kib();
    let start = Instant::now();
    let mut client = load(total);
    let took = start.elapsed();
    let after = rss_kib();
    let t = client.app.thread.as_ref().expect("the long thread is open");
    println!(
        "B8 loaded {total} messages in {:.1} s: {} in the open thread, {} conversations in the inbox",
        took.as_secs_f64(),
        t.items().len(),
        client.app.inbox.len()
    );
    println!(
        "B8 RSS before {:.1} MiB, after {:.1} MiB: +{:.1} MiB ({:.0} bytes per message)",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / 1024.0,
        (after.saturating_sub(before) * 1024) as f64 / total as f64
    );

    let mut frames = Frames::new();
    println!("B8 load average before the frames: {}", load_average());
    // The floor: what ratatui itself costs per 200×50 frame (clear, diff, hand to the backend)
    // with nothing drawn.
    percentiles("empty frame (floor)", || {
        frames.terminal.draw(|_| {}).expect("an empty frame draws");
    });
    for state in STATES {
        enter(&mut client, state);
        let screen = frames.screen(&client.app);
        match state {
            "inbox" => assert!(
                screen.matches("-555-").count() > 10,
                "the inbox rows show formatted numbers:\n{screen}"
            ),
            "thread bottom" | "composer" => assert!(screen.contains("Jane Doe")),
            "thread top" => assert!(screen.contains("t0000000") || screen.contains("ok")),
            _ => {}
        }
        let app = &client.app;
        percentiles(state, || frames.draw(black_box(app)));
        if std::env::var_os("SHORTBOX_B8_PARTS").is_some() {
            parts(app);
        }
    }
    // Input to frame: a page up or down in the thread far up, then the frame it causes.
    enter(&mut client, "thread far up");
    let mut up = true;
    percentiles("page up/down + frame", || {
        client.key(if up {
            KeyCode::PageUp
        } else {
            KeyCode::PageDown
        });
        up = !up;
        frames.draw(&client.app);
    });
    println!("B8 load average after the frames: {}", load_average());

    let mut group = c.benchmark_group(format!("B8 frame 200x50, {total} messages"));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("empty frame (floor)", |b| {
        b.iter(|| {
            frames.terminal.draw(|_| {}).expect("an empty frame draws");
        })
    });
    for state in STATES {
        enter(&mut client, state);
        let app = &client.app;
        group.bench_function(state, |b| b.iter(|| frames.draw(black_box(app))));
    }
    enter(&mut client, "thread far up");
    let mut up = true;
    group.bench_function("page up/down + frame", |b| {
        b.iter(|| {
            client.key(if up {
                KeyCode::PageUp
            } else {
                KeyCode::PageDown
            });
            up = !up;
            frames.draw(&client.app);
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
