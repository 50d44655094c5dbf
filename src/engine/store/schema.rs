//! Versioned migrations. Each entry runs once, in order, inside a transaction; the version
//! reached is kept in `PRAGMA user_version`. Never edit a migration that has shipped: add one.

pub const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
CREATE TABLE subscribers (
    e164        TEXT PRIMARY KEY,
    country     TEXT NOT NULL,
    name        TEXT,
    timezone    TEXT
) WITHOUT ROWID;

CREATE TABLE conversations (
    id                  TEXT PRIMARY KEY,
    tenant              TEXT NOT NULL,
    subscriber          TEXT NOT NULL,
    subscriber_name     TEXT,
    code                TEXT NOT NULL,
    code_kind           TEXT NOT NULL,
    country             TEXT NOT NULL,
    status              TEXT NOT NULL,
    snoozed_until       TEXT,
    assignee            TEXT,
    unread              INTEGER NOT NULL,
    last_message        TEXT,
    last_activity       TEXT NOT NULL,
    attribution_state   TEXT NOT NULL,
    attribution_since   TEXT,
    consent             TEXT NOT NULL,
    opt_out_intent      INTEGER NOT NULL DEFAULT 0,
    last_inbound_ms     INTEGER,
    UNIQUE (tenant, subscriber)
) WITHOUT ROWID;
CREATE INDEX conversations_by_activity ON conversations (tenant, last_activity DESC, id DESC);

CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    conversation    TEXT,
    tenant          TEXT,
    direction       TEXT NOT NULL,
    code            TEXT NOT NULL,
    subscriber      TEXT NOT NULL,
    body            TEXT NOT NULL,
    encoding        TEXT NOT NULL,
    segments        INTEGER NOT NULL,
    cost_micros     INTEGER NOT NULL,
    status          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    client_msg_id   TEXT,
    author          TEXT,
    routed_by       TEXT,
    evidence        TEXT,
    error           TEXT,
    reclaim         INTEGER NOT NULL DEFAULT 0,
    opt_out_intent  INTEGER NOT NULL DEFAULT 0,
    carrier         TEXT,
    carrier_id      TEXT,
    unattributed    TEXT
) WITHOUT ROWID;
CREATE INDEX messages_by_conversation ON messages (conversation, id) WHERE conversation IS NOT NULL;
CREATE UNIQUE INDEX messages_by_carrier_id ON messages (carrier, carrier_id, direction)
    WHERE carrier_id IS NOT NULL;
CREATE INDEX messages_unattributed ON messages (id) WHERE unattributed IS NOT NULL AND tenant IS NULL;

CREATE TABLE attribution (
    code        TEXT NOT NULL,
    subscriber  TEXT NOT NULL,
    tenant      TEXT NOT NULL,
    since       TEXT NOT NULL,
    message     TEXT,
    PRIMARY KEY (code, subscriber)
) WITHOUT ROWID;

CREATE TABLE consent (
    tenant      TEXT NOT NULL,
    subscriber  TEXT NOT NULL,
    state       TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (tenant, subscriber)
) WITHOUT ROWID;

CREATE TABLE consent_history (
    id          INTEGER PRIMARY KEY,
    tenant      TEXT NOT NULL,
    subscriber  TEXT NOT NULL,
    state       TEXT NOT NULL,
    at          TEXT NOT NULL,
    message     TEXT,
    source      TEXT NOT NULL
);

CREATE TABLE code_blocks (
    code        TEXT NOT NULL,
    subscriber  TEXT NOT NULL,
    at          TEXT NOT NULL,
    message     TEXT,
    PRIMARY KEY (code, subscriber)
) WITHOUT ROWID;

CREATE TABLE idempotency (
    tenant      TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    message     TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    PRIMARY KEY (tenant, key)
) WITHOUT ROWID;

CREATE TABLE outbox (
    message     TEXT PRIMARY KEY,
    state       TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE spend (
    tenant          TEXT NOT NULL,
    month           TEXT NOT NULL,
    spent_micros    INTEGER NOT NULL,
    notified        INTEGER NOT NULL,
    PRIMARY KEY (tenant, month)
) WITHOUT ROWID;

CREATE TABLE streams (
    stream  TEXT PRIMARY KEY,
    epoch   TEXT NOT NULL,
    head    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE events (
    stream  TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    epoch   TEXT NOT NULL,
    kind    TEXT NOT NULL,
    ts      TEXT NOT NULL,
    data    TEXT NOT NULL,
    PRIMARY KEY (stream, seq)
) WITHOUT ROWID;
CREATE INDEX events_by_ts ON events (ts);

CREATE TABLE agents (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    tenants     TEXT NOT NULL,
    token_hash  BLOB NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked     INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"#,
    // 2: the conversation refers to its last message by id (joined on read, so it always shows
    // the message's current status, and a message is written once); events are pruned by
    // scanning each stream's oldest rows, so they need no index on time.
    r#"
ALTER TABLE conversations ADD COLUMN last_message_id TEXT;
UPDATE conversations SET last_message_id = json_extract(last_message, '$.id'), last_message = NULL;
DROP INDEX events_by_ts;
"#,
    // 3: events become a rowid table: as WITHOUT ROWID, each ~1 KB event spilled to its own
    // overflow page, writing about three times the WAL it needs.
    r#"
CREATE TABLE events_v3 (
    id      INTEGER PRIMARY KEY,
    stream  TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    epoch   TEXT NOT NULL,
    kind    TEXT NOT NULL,
    ts      TEXT NOT NULL,
    data    TEXT NOT NULL,
    UNIQUE (stream, seq)
);
INSERT INTO events_v3 (stream, seq, epoch, kind, ts, data)
    SELECT stream, seq, epoch, kind, ts, data FROM events ORDER BY stream, seq;
DROP TABLE events;
ALTER TABLE events_v3 RENAME TO events;
"#,
    // 4: when an agent was revoked, for `shortbox agent list`.
    r#"
ALTER TABLE agents ADD COLUMN revoked_at TEXT;
"#,
    // 5: inbound carrier ids are recognised from memory (the router remembers recent ones and
    // loads them at start); only status callbacks look messages up by carrier id, and they
    // name outbound messages. A random-key index insert for every inbound message is gone.
    // And an index of the outbound messages not yet delivered or failed, for start-up.
    r#"
DROP INDEX messages_by_carrier_id;
CREATE UNIQUE INDEX messages_out_by_carrier_id ON messages (carrier, carrier_id)
    WHERE carrier_id IS NOT NULL AND direction = 'out';
-- Start-up reads the outbound messages still on their way; without an index that was a
-- scan of every message ever stored (0.6 s per million).
CREATE INDEX messages_pending_out ON messages (id)
    WHERE direction = 'out' AND status IN ('queued', 'dispatched');
"#,
    // 6: the conversation summary is written behind (docs/architecture.md, "The conversation
    // summary"). Every change is appended here in the transaction that makes it; the router
    // copies conversations into `conversations` by a sweep and trims what the sweep covered;
    // loading the store replays what is left.
    r#"
CREATE TABLE conversation_journal (
    seq                 INTEGER PRIMARY KEY,
    id                  TEXT NOT NULL,
    tenant              TEXT NOT NULL,
    subscriber          TEXT NOT NULL,
    subscriber_name     TEXT,
    code                TEXT NOT NULL,
    code_kind           TEXT NOT NULL,
    country             TEXT NOT NULL,
    status              TEXT NOT NULL,
    snoozed_until       TEXT,
    assignee            TEXT,
    unread              INTEGER NOT NULL,
    last_message_id     TEXT,
    last_activity       TEXT NOT NULL,
    attribution_state   TEXT NOT NULL,
    attribution_since   TEXT,
    consent             TEXT NOT NULL,
    opt_out_intent      INTEGER NOT NULL,
    last_inbound_ms     INTEGER
);
"#,
    // 7: start-up reads back the carrier ids of the newest inbound messages (up to 500 000,
    // the router's memory of redeliveries) from this narrow index instead of whole rows: 5.2 s
    // of a 6.8 s cold start on a 2 M-message store. Keyed by message id (time order), every
    // entry is appended at its end: one page per commit, not a random one per message.
    r#"
CREATE INDEX messages_in_by_id ON messages (id, carrier, carrier_id)
    WHERE direction = 'in' AND carrier_id IS NOT NULL;
"#,
    // 8: the entry that lists a message under its conversation is written behind, by a sweep
    // in key order (sqlite/conv_index.rs): as an index of `messages` it took a random page per
    // message, a third of the WAL. Every message up to the mark has its entry in the table;
    // readers take the messages after it from `messages`.
    r#"
CREATE TABLE conversation_messages (
    conversation    TEXT NOT NULL,
    id              TEXT NOT NULL,
    PRIMARY KEY (conversation, id)
) WITHOUT ROWID;
INSERT INTO conversation_messages (conversation, id)
    SELECT conversation, id FROM messages WHERE conversation IS NOT NULL ORDER BY conversation, id;
DROP INDEX messages_by_conversation;
CREATE TABLE marks (
    name    TEXT PRIMARY KEY,
    value   TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO marks (name, value)
    VALUES ('conversation_messages', COALESCE((SELECT MAX(id) FROM messages), ''));
-- The messages after the mark are found from this narrow index, keyed by id (every entry is
-- appended at its end: one page per commit); whole rows were ~9 MB to read at 10 000 msg/s.
CREATE INDEX messages_listed_by_id ON messages (id, conversation) WHERE conversation IS NOT NULL;
"#,
    // 9: an event's `data` may be an LZ4 block (a BLOB; sqlite/rows.rs, `pack_event_data`).
    // Nothing to change in the tables; the version tells a build from before it, which reads
    // `data` as text only, to refuse this store instead of failing on replay.
    r#"
-- event data packed from here on
"#,
];
