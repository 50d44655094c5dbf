//! A router over a fresh SQLite store in a temporary directory, driven through its command
//! API with a manual clock: no threads, no sockets (compliance and summary tests).

#![allow(dead_code)]

use std::sync::Arc;

use shortbox::config::Config;
use shortbox::engine::Hub;
use shortbox::engine::clock::{Clock, ManualClock};
use shortbox::engine::router::{DispatchJob, InboundCommand, Router};
use shortbox::engine::store::{SqliteRead, SqliteStore};
use tokio::sync::mpsc;

pub struct RouterRig {
    pub router: Router,
    /// Messages the router handed to the dispatcher.
    pub jobs: mpsc::UnboundedReceiver<DispatchJob>,
    pub clock: Arc<ManualClock>,
    /// A reader on the same store, as the engine's API uses.
    pub reader: SqliteRead,
    pub dir: tempfile::TempDir,
    /// Inbound messages made so far (numbers their carrier ids).
    inbound: u64,
}

impl RouterRig {
    /// Opens (or reopens) the store in `dir` with the configuration `toml`.
    pub fn open(toml: &str, dir: tempfile::TempDir, start_ms: i64) -> RouterRig {
        let store = SqliteStore::open(dir.path()).unwrap();
        let reader = store.reader(1).unwrap();
        let config = Arc::new(Config::parse(toml, "rig.toml").unwrap());
        let (tx, jobs) = mpsc::unbounded_channel();
        let clock = Arc::new(ManualClock::new(start_ms));
        let (router, _handle, _rx) = Router::new(
            config,
            Box::new(store),
            Hub::new(),
            tx,
            clock.clone() as Arc<dyn Clock>,
            Default::default(),
        )
        .unwrap();
        RouterRig {
            router,
            jobs,
            clock,
            reader,
            dir,
            inbound: 0,
        }
    }

    /// An inbound message from the simulated carrier, with a carrier id of its own.
    pub fn inbound_command(&mut self, from: &str, to: &str, body: &str) -> InboundCommand {
        self.inbound += 1;
        InboundCommand {
            carrier: "sim".into(),
            carrier_id: format!("in-{}", self.inbound),
            from: from.into(),
            to: to.into(),
            body: body.into(),
            name: None,
        }
    }

    /// The messages handed to the dispatcher since the last call.
    pub fn jobs(&mut self) -> Vec<DispatchJob> {
        let mut v = Vec::new();
        while let Ok(j) = self.jobs.try_recv() {
            v.push(j);
        }
        v
    }
}
