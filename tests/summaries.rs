//! Conversation summaries are written behind (journal + sweep, `engine/router/summaries.rs`).
//! Through the router's command API (no threads, no sockets):
//!
//! - a router that stops without copying (a crash) leaves a store that, once loaded, shows
//!   every conversation exactly as a router that copied everything does;
//! - readers that ask first see the router's state even while the sweep is behind;
//! - the sweep copies everything and empties the journal within its period once traffic stops,
//!   and `Router::shutdown` (what the router runs when its queue closes) leaves nothing in
//!   the journal.

mod rig;

use std::path::Path;

use rig::RouterRig as Rig;
use shortbox::engine::router::{Caller, Command, FlushScope, SWEEP_PERIOD_MS};
use shortbox::engine::store::{ConversationQuery, StoreRead};
use shortbox::protocol::{ConversationStatus, ConversationUpdateParams, Role, SendParams};
use tokio::sync::oneshot;

const CONFIG: &str = r#"
[[tenants]]
id = "acme"
name = "Acme Shoes"
help_text = "Acme help: acme.example"
stop_text = "Acme: unsubscribed."
keywords = [{ code = "55123", word = "SHOES" }]

[[tenants]]
id = "brisa"
name = "Brisa Cafe"
help_text = "Brisa help: brisa.example"
stop_text = "Brisa: unsubscribed."
keywords = [{ code = "55123", word = "BREW" }]

[[codes]]
code = "55123"
country = "US"
kind = "shared"
carrier = "sim"

[[carriers]]
id = "sim"
kind = "sim"

[pricing]
US = 0.01
"#;

const TENANTS: [&str; 2] = ["acme", "brisa"];
const START_MS: i64 = 1_790_000_000_000;

fn open(dir: tempfile::TempDir, start_ms: i64) -> Rig {
    Rig::open(CONFIG, dir, start_ms)
}

fn caller(tenant: &str) -> Caller {
    Caller {
        agent: format!("agent-{tenant}"),
        role: Role::Agent,
        tenants: vec![tenant.to_string()],
    }
}

/// One step of a scripted run.
#[derive(Debug, Clone)]
enum Step {
    /// Subscriber `s` writes (with the keyword of `tenant` when `keyword`).
    Inbound {
        s: usize,
        tenant: usize,
        keyword: bool,
    },
    /// The tenant's agent replies to subscriber `s`.
    Reply { s: usize, tenant: usize },
    /// The tenant's agent reads, resolves or reopens its conversation with `s`.
    Update { s: usize, tenant: usize, what: u8 },
    /// Time passes.
    Wait(i64),
}

fn subscriber(s: usize) -> String {
    format!("+1415555{:04}", 100 + s)
}

/// A small deterministic generator (the same script for both rigs).
fn script(seed: u64, len: usize) -> Vec<Step> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move |n: u64| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % n
    };
    (0..len)
        .map(|_| {
            let s = next(12) as usize;
            let tenant = next(2) as usize;
            match next(10) {
                0..=4 => Step::Inbound {
                    s,
                    tenant,
                    keyword: next(3) == 0,
                },
                5 | 6 => Step::Reply { s, tenant },
                7 | 8 => Step::Update {
                    s,
                    tenant,
                    what: next(3) as u8,
                },
                _ => Step::Wait(next(400) as i64),
            }
        })
        .collect()
}

impl Rig {
    fn conversation_id(&mut self, tenant: &str, s: usize) -> Option<String> {
        self.flush(FlushScope::Tenant(tenant.to_string()));
        self.list(tenant)
            .into_iter()
            .find(|c| c.subscriber == subscriber(s))
            .map(|c| c.id)
    }

    fn flush(&mut self, scope: FlushScope) {
        let (answer, mut done) = oneshot::channel();
        self.router
            .apply_commands([Command::FlushSummaries { scope, answer }]);
        done.try_recv().unwrap();
    }

    fn list(&self, tenant: &str) -> Vec<shortbox::protocol::Conversation> {
        self.reader
            .conversations(&ConversationQuery {
                tenant: tenant.into(),
                status: None,
                unread: None,
                attribution_lost: None,
                text: None,
                after: None,
                limit: 10_000,
            })
            .unwrap()
    }

    /// Runs the script, a few commands per batch as the router's queue would hand them over.
    fn run(&mut self, steps: &[Step]) {
        let mut batch = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            match step.clone() {
                Step::Inbound { s, tenant, keyword } => {
                    let word = if tenant == 0 { "SHOES" } else { "BREW" };
                    let body = if keyword {
                        format!("{word} message {i}")
                    } else {
                        format!("message {i}")
                    };
                    let (tx, _rx) = oneshot::channel();
                    let cmd = self.inbound_command(&subscriber(s), "55123", &body);
                    batch.push(Command::Inbound(cmd, tx));
                }
                Step::Reply { s, tenant } => {
                    let (tx, _rx) = oneshot::channel();
                    batch.push(Command::Send {
                        caller: caller(TENANTS[tenant]),
                        params: SendParams {
                            client_msg_id: format!("reply-{i}"),
                            body: format!("reply {i}"),
                            tenant: Some(TENANTS[tenant].into()),
                            to: Some(subscriber(s)),
                            code: Some("55123".into()),
                            reclaim: true,
                            ..Default::default()
                        },
                        preview: false,
                        answer: tx,
                    });
                }
                Step::Update { s, tenant, what } => {
                    // Updates name a conversation: settle the batch so far to find it.
                    self.router.apply_commands(batch.drain(..));
                    let Some(id) = self.conversation_id(TENANTS[tenant], s) else {
                        continue;
                    };
                    let mut params = ConversationUpdateParams {
                        conversation: id,
                        ..Default::default()
                    };
                    match what {
                        0 => params.unread = Some(false),
                        1 => params.status = Some(ConversationStatus::Resolved),
                        _ => params.status = Some(ConversationStatus::Open),
                    }
                    let (tx, _rx) = oneshot::channel();
                    batch.push(Command::Update {
                        caller: caller(TENANTS[tenant]),
                        params,
                        answer: tx,
                    });
                }
                Step::Wait(ms) => {
                    self.router.apply_commands(batch.drain(..));
                    self.clock.advance(ms);
                }
            }
            if batch.len() >= 4 {
                self.router.apply_commands(batch.drain(..));
            }
        }
        self.router.apply_commands(batch.drain(..));
    }
}

/// What a conversation shows, without ids (two rigs make different ids).
fn views(rig: &Rig) -> Vec<String> {
    let mut v: Vec<String> = TENANTS
        .iter()
        .flat_map(|t| rig.list(t))
        .map(|c| {
            format!(
                "{} {} status={:?} unread={} activity={} last={:?} attribution={:?} consent={:?}",
                c.tenant,
                c.subscriber,
                c.status,
                c.unread,
                c.last_activity,
                c.last_message.map(|m| (m.body, m.direction, m.status)),
                c.attribution.state,
                c.consent,
            )
        })
        .collect();
    v.sort();
    v
}

fn raw_count(dir: &Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(dir.join("shortbox.db")).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn a_crash_loses_no_summary_the_journal_held() {
    let mut behind_seen = 0;
    for seed in 0..12 {
        // A script, then a burst with no time passing: the sweep is behind when it stops.
        let mut steps = script(seed, 300);
        steps.extend((0..24).map(|i| Step::Inbound {
            s: i % 12,
            tenant: i % 2,
            keyword: false,
        }));
        // The reference: everything copied, read through the store.
        let mut reference = open(tempfile::tempdir().unwrap(), START_MS);
        reference.run(&steps);
        for t in TENANTS {
            reference.flush(FlushScope::Tenant(t.into()));
        }
        let want = views(&reference);

        // The same script, then the router is dropped without copying anything.
        let mut crashed = open(tempfile::tempdir().unwrap(), START_MS);
        crashed.run(&steps);
        let journal = raw_count(
            crashed.dir.path(),
            "SELECT COUNT(*) FROM conversation_journal",
        );
        let stale = views(&crashed) != want;
        if journal > 0 && stale {
            behind_seen += 1;
        }
        let dir = std::mem::replace(&mut crashed.dir, tempfile::tempdir().unwrap());
        drop(crashed);

        let restarted = open(dir, START_MS + 3_600_000);
        assert_eq!(
            views(&restarted),
            want,
            "seed {seed}: the restarted store differs from the router's state"
        );
        assert_eq!(
            raw_count(
                restarted.dir.path(),
                "SELECT COUNT(*) FROM conversation_journal"
            ),
            0,
            "loading replays and empties the journal"
        );
    }
    // The test proves something only if the store really was behind when the router stopped.
    assert!(
        behind_seen >= 10,
        "the store was behind the router in only {behind_seen} of 12 runs"
    );
}

#[test]
fn readers_that_ask_first_see_the_routers_state() {
    let mut rig = open(tempfile::tempdir().unwrap(), START_MS);
    // Twelve conversations, then many messages in quick succession: the sweep falls behind.
    let mut steps: Vec<Step> = (0..12)
        .map(|s| Step::Inbound {
            s,
            tenant: s % 2,
            keyword: true,
        })
        .collect();
    for round in 0..20 {
        for s in 0..12 {
            steps.push(Step::Inbound {
                s,
                tenant: s % 2,
                keyword: round % 5 == 0,
            });
        }
        steps.push(Step::Wait(1));
    }
    rig.run(&steps);
    let unread_in_store: i64 = TENANTS
        .iter()
        .flat_map(|t| rig.list(t))
        .map(|c| c.unread as i64)
        .sum();
    assert!(
        unread_in_store < 252,
        "the store should be behind before a reader asks (unread {unread_in_store})"
    );
    rig.flush(FlushScope::Tenant("acme".into()));
    let acme = rig.list("acme");
    assert_eq!(acme.len(), 6);
    assert!(acme.iter().all(|c| c.unread == 21), "{acme:?}");
    let brisa_id = rig.list("brisa")[0].id.clone();
    rig.flush(FlushScope::Conversation(brisa_id.clone()));
    let brisa = rig.reader.conversations_by_id(&brisa_id).unwrap().unwrap();
    assert_eq!(brisa.unread, 21);
}

#[test]
fn the_sweep_catches_up_and_shutdown_empties_the_journal() {
    let mut rig = open(tempfile::tempdir().unwrap(), START_MS);
    let steps: Vec<Step> = (0..200)
        .map(|i| Step::Inbound {
            s: i % 12,
            tenant: i % 2,
            keyword: i < 12,
        })
        .collect();
    rig.run(&steps);
    let journal =
        |rig: &Rig| raw_count(rig.dir.path(), "SELECT COUNT(*) FROM conversation_journal");
    assert!(journal(&rig) > 0);
    // Traffic stops; the engine ticks once a second.
    for _ in 0..(2 * SWEEP_PERIOD_MS / 1000 + 1) {
        rig.clock.advance(1000);
        rig.router.apply_commands([Command::Tick]);
    }
    assert_eq!(
        journal(&rig),
        0,
        "the sweep covered and trimmed the journal"
    );
    let unread: i64 = TENANTS
        .iter()
        .flat_map(|t| rig.list(t))
        .map(|c| c.unread as i64)
        .sum();
    assert_eq!(unread, 200);

    // More traffic, then an orderly stop.
    rig.run(&steps);
    assert!(journal(&rig) > 0);
    rig.router.shutdown();
    assert_eq!(journal(&rig), 0);
    let unread: i64 = TENANTS
        .iter()
        .flat_map(|t| rig.list(t))
        .map(|c| c.unread as i64)
        .sum();
    assert_eq!(unread, 400);
}
