//! `shortbox agent add|list|revoke` on a data directory, whether or not an engine runs on it.
//!
//! These are the only writes that do not go through the router: a separate process opens the
//! store, and SQLite (WAL, with a busy timeout) serialises its one short transaction with the
//! engine's writer. An agent added this way can connect at once; one revoked this way is
//! refused at once, and a running engine closes its open sessions within about a second
//! (see [`super::revocation`]).

use std::path::Path;

use super::EngineError;
use super::auth::new_agent;
use super::clock;
use super::store::sqlite::DB_FILE;
use super::store::{AgentEntry, SqliteStore, Store, StoreRead, Write};
use crate::config::Config;
use crate::protocol::Role;

/// What `shortbox agent revoke` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Revocation {
    /// The agent's token is refused from now on.
    Revoked(AgentEntry),
    /// It already was; nothing changed.
    AlreadyRevoked(AgentEntry),
}

impl std::fmt::Display for Revocation {
    /// What `shortbox agent revoke` says.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Revocation::Revoked(a) => write!(
                f,
                "revoked {} ({}, {}): its token is refused from now on, and an engine running on \
                 this data closes its open sessions within a few seconds",
                a.id,
                printable(&a.name),
                a.role.as_str()
            ),
            Revocation::AlreadyRevoked(a) => {
                write!(f, "{} ({}) was already revoked", a.id, printable(&a.name))?;
                if let Some(at) = &a.revoked_at {
                    write!(f, " on {} UTC", short_time(at))?;
                }
                write!(f, "; nothing changed")
            }
        }
    }
}

/// `shortbox agent add`: checks the agent against the configuration, stores it, and returns
/// its token (only the token's hash is stored). Creates the data directory if needed.
pub fn add_agent_offline(
    config: &Config,
    data_dir: &Path,
    name: &str,
    role: Role,
    tenants: &[String],
) -> Result<String, EngineError> {
    let (token, row) = new_agent(config, name, role, tenants)?;
    let mut store = SqliteStore::open(data_dir).map_err(store_error)?;
    store.apply(&[Write::Agent(row)]).map_err(store_error)?;
    Ok(token)
}

/// `shortbox agent list`: every agent, revoked ones too, oldest first.
pub fn list_agents_offline(data_dir: &Path) -> Result<Vec<AgentEntry>, EngineError> {
    let store = open_existing(data_dir)?;
    agents(&store)
}

/// `shortbox agent revoke`: revokes the agent `who` names, by id or by name. A name names the
/// one agent of that name that is not revoked; when every agent of that name is revoked, the
/// answer is [`Revocation::AlreadyRevoked`].
pub fn revoke_agent_offline(data_dir: &Path, who: &str) -> Result<Revocation, EngineError> {
    let mut store = open_existing(data_dir)?;
    let all = agents(&store)?;
    let agent = resolve(&all, who)?;
    if agent.revoked {
        return Ok(Revocation::AlreadyRevoked(agent.clone()));
    }
    let at = clock::fmt_ms(clock::now_ms());
    store
        .apply(&[Write::AgentRevoked {
            id: agent.id.clone(),
            at,
        }])
        .map_err(store_error)?;
    // Read it back: another process may have revoked it a moment before, and its time stays.
    let after = agents(&store)?
        .into_iter()
        .find(|a| a.id == agent.id)
        .ok_or_else(|| EngineError::NoSuchAgent(who.to_string()))?;
    Ok(Revocation::Revoked(after))
}

/// The agent `who` names among `agents`: an exact id first, else the one unrevoked agent of
/// that name, else the most recently revoked one of that name.
fn resolve<'a>(agents: &'a [AgentEntry], who: &str) -> Result<&'a AgentEntry, EngineError> {
    let who = who.trim();
    if let Some(agent) = agents.iter().find(|a| a.id == who) {
        return Ok(agent);
    }
    let named: Vec<&AgentEntry> = agents.iter().filter(|a| a.name == who).collect();
    let active: Vec<&AgentEntry> = named.iter().copied().filter(|a| !a.revoked).collect();
    match active.as_slice() {
        [one] => Ok(one),
        [] => named
            .last()
            .copied()
            .ok_or_else(|| EngineError::NoSuchAgent(who.to_string())),
        several => Err(EngineError::AmbiguousAgent {
            name: who.to_string(),
            ids: several
                .iter()
                .map(|a| a.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Opens the store of an existing data directory; never creates one (a mistyped `--data`
/// should say so rather than list an empty new store).
fn open_existing(data_dir: &Path) -> Result<SqliteStore, EngineError> {
    if !data_dir.join(DB_FILE).is_file() {
        return Err(EngineError::NoStore(data_dir.display().to_string()));
    }
    SqliteStore::open(data_dir).map_err(store_error)
}

fn agents(store: &SqliteStore) -> Result<Vec<AgentEntry>, EngineError> {
    store
        .reader(1)
        .and_then(|r| r.agents())
        .map_err(store_error)
}

fn store_error(e: super::store::StoreError) -> EngineError {
    EngineError::Store(e.to_string())
}

/// The agents as a table for a terminal: id, name, role, tenants, created, revoked (times in
/// UTC). Never the token or its hash.
pub fn agents_table(agents: &[AgentEntry]) -> String {
    let header = [
        "ID",
        "NAME",
        "ROLE",
        "TENANTS",
        "CREATED (UTC)",
        "REVOKED (UTC)",
    ]
    .map(String::from);
    let rows: Vec<[String; 6]> = agents
        .iter()
        .map(|a| {
            [
                a.id.clone(),
                printable(&a.name),
                a.role.as_str().to_string(),
                tenants_cell(a),
                short_time(&a.created_at),
                match (&a.revoked_at, a.revoked) {
                    (Some(at), true) => short_time(at),
                    (None, true) => "yes".to_string(),
                    (_, false) => "-".to_string(),
                },
            ]
        })
        .collect();
    let mut widths = header.each_ref().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn tenants_cell(a: &AgentEntry) -> String {
    match a.role {
        // They see every tenant's traffic, whatever the row holds.
        Role::Ops | Role::Owner => "(all)".to_string(),
        Role::Agent | Role::Admin => a.tenants.join(","),
    }
}

/// `2026-11-22 10:00:00` from a stored time (`2026-11-22T10:00:00.123Z` or SQLite's
/// `2026-11-22 10:00:00`); anything else as it is.
fn short_time(at: &str) -> String {
    match at.get(..19) {
        Some(s) if matches!(s.as_bytes().get(10), Some(b'T' | b' ')) => s.replacen('T', " ", 1),
        _ => at.to_string(),
    }
}

/// A name as typed on a command line may hold control characters; they must not reach the
/// terminal that lists it.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, name: &str, revoked: bool) -> AgentEntry {
        AgentEntry {
            id: id.into(),
            name: name.into(),
            role: Role::Agent,
            tenants: vec!["acme".into()],
            created_at: "2026-11-22 10:00:00".into(),
            revoked,
            revoked_at: revoked.then(|| "2026-11-23T08:30:05.123Z".into()),
        }
    }

    #[test]
    fn an_id_or_a_name_finds_the_agent_and_a_shared_name_is_ambiguous() {
        let all = [
            entry("ag_1", "Ana", true),
            entry("ag_2", "Ana", false),
            entry("ag_3", "Bo", false),
            entry("ag_4", "Bo", false),
            entry("ag_5", "Cy", true),
        ];
        assert_eq!(resolve(&all, "ag_3").unwrap().id, "ag_3");
        assert_eq!(resolve(&all, " ag_1 ").unwrap().id, "ag_1");
        // A name names the agent of that name still active…
        assert_eq!(resolve(&all, "Ana").unwrap().id, "ag_2");
        // …or, when all are revoked, one that already is.
        assert!(resolve(&all, "Cy").unwrap().revoked);
        match resolve(&all, "Bo") {
            Err(EngineError::AmbiguousAgent { name, ids }) => {
                assert_eq!(name, "Bo");
                assert_eq!(ids, "ag_3, ag_4");
            }
            other => panic!("expected ambiguous, got {other:?}"),
        }
        assert!(matches!(
            resolve(&all, "Dee"),
            Err(EngineError::NoSuchAgent(n)) if n == "Dee"
        ));
    }

    #[test]
    fn the_table_shows_each_agent_on_one_aligned_line_without_control_characters() {
        let mut ops = entry("ag_9", "Olu\x1b[2J", false);
        ops.role = Role::Ops;
        ops.tenants.clear();
        let table = agents_table(&[entry("ag_1", "Ana", true), ops]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("ID    NAME"), "{table}");
        assert!(
            lines[1].contains("Ana") && lines[1].contains("acme"),
            "{table}"
        );
        assert!(lines[1].contains("2026-11-22 10:00:00"), "{table}");
        assert!(lines[1].ends_with("2026-11-23 08:30:05"), "{table}");
        assert!(
            lines[2].contains("(all)") && lines[2].ends_with('-'),
            "{table}"
        );
        assert!(!table.contains('\x1b'), "{table}");
        let created = lines[0].find("CREATED").unwrap();
        assert_eq!(lines[1].find("2026").unwrap(), created, "{table}");
    }
}
