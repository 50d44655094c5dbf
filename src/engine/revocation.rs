//! Revoked agents lose their open sessions.
//!
//! `shortbox agent revoke` runs in its own process and writes the store directly, so nothing
//! tells the engine. The engine reads the ids of revoked agents every [`POLL`] (one query on a
//! table of a few rows) and publishes the set when it changes. Each session waits on
//! [`Revoked::of`] for its own agent and closes with 4401 when it appears; new connections are
//! refused at authentication. The wait looks at the current set first, so an agent revoked
//! between a connection's authentication and the start of its session cannot slip through.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::store::{SqliteRead, StoreRead};

/// How often the engine reads the revoked agents.
pub const POLL: Duration = Duration::from_secs(1);

type Ids = Arc<HashSet<String>>;

/// The ids of the revoked agents, as last read from the store.
#[derive(Clone)]
pub(super) struct Revoked {
    rx: watch::Receiver<Ids>,
}

impl Revoked {
    /// Starts reading the store every [`POLL`]; stops once every `Revoked` is dropped.
    pub(super) fn watch(reader: Arc<SqliteRead>) -> Revoked {
        let (tx, rx) = watch::channel(Ids::default());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(POLL);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    () = tx.closed() => return,
                }
                let reader = reader.clone();
                match tokio::task::spawn_blocking(move || reader.revoked_agents()).await {
                    Ok(Ok(ids)) => {
                        tx.send_if_modified(|current| {
                            let ids: HashSet<String> = ids.into_iter().collect();
                            if **current == ids {
                                return false;
                            }
                            *current = Arc::new(ids);
                            true
                        });
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the revoked agents"),
                    Err(e) => tracing::warn!(error = %e, "cannot read the revoked agents"),
                }
            }
        });
        Revoked { rx }
    }

    /// Completes when `agent` is revoked (at once if it already is); never, if the engine
    /// stops reading first.
    pub(super) fn of(&self, agent: &str) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.rx.clone();
        let agent = agent.to_string();
        async move {
            if rx.wait_for(|ids| ids.contains(&agent)).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No IO: the set is published by hand.
    fn revoked() -> (watch::Sender<Ids>, Revoked) {
        let (tx, rx) = watch::channel(Ids::default());
        (tx, Revoked { rx })
    }

    fn ids(ids: &[&str]) -> Ids {
        Arc::new(ids.iter().map(|i| i.to_string()).collect())
    }

    #[tokio::test]
    async fn a_wait_ends_when_its_agent_is_revoked_and_not_for_another() {
        let (tx, revoked) = revoked();
        let ana = tokio::spawn(revoked.of("ag_ana"));
        let bo = tokio::spawn(revoked.of("ag_bo"));
        tx.send(ids(&["ag_ana"])).unwrap();
        tokio::time::timeout(Duration::from_secs(5), ana)
            .await
            .expect("Ana's wait ends")
            .unwrap();
        tokio::task::yield_now().await;
        assert!(!bo.is_finished());
        bo.abort();
    }

    #[tokio::test]
    async fn a_wait_for_an_agent_already_revoked_ends_at_once() {
        let (tx, revoked) = revoked();
        tx.send(ids(&["ag_ana"])).unwrap();
        // As for a session that starts after its agent was revoked.
        tokio::time::timeout(Duration::from_secs(5), revoked.of("ag_ana"))
            .await
            .expect("the wait ends at once");
    }
}
