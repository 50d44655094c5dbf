//! One [`Write`] as SQL, inside the batch's transaction.

use rusqlite::params;

use super::rows::{enum_str, pack_event_data, status_str};
use crate::engine::store::{ConversationExtra, Write};
use crate::protocol::{Conversation, Direction};

/// The columns of a conversation's summary, in `conversations` and in its journal.
pub(super) const CONVERSATION_COLUMNS: &str = "id, tenant, subscriber, subscriber_name, code, code_kind, \
     country, status, snoozed_until, assignee, unread, last_message_id, last_activity, \
     attribution_state, attribution_since, consent, opt_out_intent, last_inbound_ms";

/// What an upsert of [`CONVERSATION_COLUMNS`] into `conversations` changes on a known id.
pub(super) const CONVERSATION_UPSERT: &str = "ON CONFLICT (id) DO UPDATE SET \
     subscriber_name = excluded.subscriber_name, code = excluded.code, \
     code_kind = excluded.code_kind, country = excluded.country, status = excluded.status, \
     snoozed_until = excluded.snoozed_until, assignee = excluded.assignee, unread = excluded.unread, \
     last_message_id = excluded.last_message_id, last_activity = excluded.last_activity, \
     attribution_state = excluded.attribution_state, attribution_since = excluded.attribution_since, \
     consent = excluded.consent, opt_out_intent = excluded.opt_out_intent, \
     last_inbound_ms = excluded.last_inbound_ms";

/// Binds the values of [`CONVERSATION_COLUMNS`] to parameters `first..first + 18`.
fn bind_conversation(
    st: &mut rusqlite::CachedStatement<'_>,
    first: usize,
    c: &Conversation,
    extra: &ConversationExtra,
) -> rusqlite::Result<()> {
    let values: [&dyn rusqlite::ToSql; 18] = [
        &c.id,
        &c.tenant,
        &c.subscriber,
        &c.subscriber_name,
        &c.code,
        &enum_str(&c.code_kind),
        &c.country,
        &c.status.as_str(),
        &c.snoozed_until,
        &c.assignee,
        &c.unread,
        &c.last_message.as_ref().map(|m| m.id.as_str()),
        &c.last_activity,
        &enum_str(&c.attribution.state),
        &c.attribution.since,
        &enum_str(&c.consent),
        &(c.opt_out_intent as i64),
        &extra.last_inbound_ms,
    ];
    for (i, v) in values.into_iter().enumerate() {
        st.raw_bind_parameter(first + i, v)?;
    }
    Ok(())
}

pub(super) fn write_one(tx: &rusqlite::Transaction, w: &Write) -> rusqlite::Result<()> {
    match w {
        Write::Subscriber { e164, country } => {
            tx.prepare_cached("INSERT OR IGNORE INTO subscribers (e164, country) VALUES (?1, ?2)")?
                .execute(params![e164, country])?;
        }
        Write::Conversation(c, extra) => {
            // An upsert, not INSERT OR REPLACE: the row is updated in place and only the indexes
            // whose keys change are touched.
            let mut st = tx.prepare_cached(&format!(
                "INSERT INTO conversations ({CONVERSATION_COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18) \
                 {CONVERSATION_UPSERT}"
            ))?;
            bind_conversation(&mut st, 1, c, extra)?;
            st.raw_execute()?;
        }
        Write::ConversationJournal(seq, c, extra) => {
            let mut st = tx.prepare_cached(&format!(
                "INSERT INTO conversation_journal (seq, {CONVERSATION_COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
            ))?;
            st.raw_bind_parameter(1, *seq as i64)?;
            bind_conversation(&mut st, 2, c, extra)?;
            st.raw_execute()?;
        }
        Write::JournalTrim { below } => {
            tx.prepare_cached("DELETE FROM conversation_journal WHERE seq < ?1")?
                .execute([*below as i64])?;
        }
        Write::Message(m, extra) => {
            tx.prepare_cached(
                "INSERT INTO messages (id, conversation, tenant, direction, code, subscriber, body, encoding, segments, \
                 cost_micros, status, created_at, client_msg_id, author, routed_by, evidence, error, reclaim, opt_out_intent, \
                 carrier, carrier_id, unattributed) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
            )?
            .execute(params![
                m.id,
                m.conversation,
                m.tenant,
                if m.direction == Direction::In { "in" } else { "out" },
                m.code,
                m.subscriber,
                m.body,
                enum_str(&m.encoding),
                m.segments,
                m.cost_micros,
                status_str(m.status),
                m.created_at,
                m.client_msg_id,
                m.author,
                m.routed_by.as_ref().map(enum_str),
                m.evidence,
                m.error,
                m.reclaim as i64,
                m.opt_out_intent as i64,
                extra.carrier,
                extra.carrier_id,
                extra.unattributed_reason,
            ])?;
        }
        Write::MessageStatus {
            id,
            status,
            carrier_id,
            error,
        } => {
            tx.prepare_cached(
                "UPDATE messages SET status = ?2, carrier_id = COALESCE(?3, carrier_id), error = COALESCE(?4, error) WHERE id = ?1",
            )?
            .execute(params![id, status_str(*status), carrier_id, error])?;
        }
        Write::MessageCarrier {
            id,
            carrier,
            carrier_id,
        } => {
            tx.prepare_cached("UPDATE messages SET carrier = ?2, carrier_id = ?3 WHERE id = ?1")?
                .execute(params![id, carrier, carrier_id])?;
        }
        Write::MessageAssigned {
            id,
            tenant,
            conversation,
        } => {
            tx.prepare_cached("UPDATE messages SET tenant = ?2, conversation = ?3, routed_by = 'ops' WHERE id = ?1")?
                .execute(params![id, tenant, conversation])?;
        }
        Write::Attribution {
            code,
            subscriber,
            tenant,
            since,
            message,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO attribution (code, subscriber, tenant, since, message) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![code, subscriber, tenant, since, message])?;
        }
        Write::Idempotency {
            tenant,
            key,
            fingerprint,
            message,
            at_ms,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO idempotency (tenant, key, fingerprint, message, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![tenant, key, fingerprint, message, at_ms])?;
        }
        Write::Consent {
            tenant,
            subscriber,
            state,
            at,
            message,
            source,
        } => {
            let state = enum_str(state);
            tx.prepare_cached(
                "INSERT OR REPLACE INTO consent (tenant, subscriber, state, updated_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![tenant, subscriber, state, at])?;
            tx.prepare_cached(
                "INSERT INTO consent_history (tenant, subscriber, state, at, message, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![tenant, subscriber, state, at, message, source])?;
        }
        Write::CodeBlock {
            code,
            subscriber,
            at,
            message,
            blocked: true,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO code_blocks (code, subscriber, at, message) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![code, subscriber, at, message])?;
        }
        Write::CodeBlock {
            code,
            subscriber,
            blocked: false,
            ..
        } => {
            tx.prepare_cached("DELETE FROM code_blocks WHERE code = ?1 AND subscriber = ?2")?
                .execute(params![code, subscriber])?;
        }
        Write::Outbox {
            message,
            state: Some(state),
        } => {
            tx.prepare_cached("INSERT OR REPLACE INTO outbox (message, state) VALUES (?1, ?2)")?
                .execute(params![message, state])?;
        }
        Write::Outbox {
            message,
            state: None,
        } => {
            tx.prepare_cached("DELETE FROM outbox WHERE message = ?1")?
                .execute(params![message])?;
        }
        Write::Spend {
            tenant,
            month,
            spent_micros,
            notified,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO spend (tenant, month, spent_micros, notified) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![tenant, month, spent_micros, notified])?;
        }
        Write::Event(e) => {
            tx.prepare_cached("INSERT INTO events (stream, seq, epoch, kind, ts, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
                .execute(params![e.stream, e.seq as i64, e.epoch, e.kind, e.ts, pack_event_data(&e.data)])?;
        }
        Write::StreamHead {
            stream,
            epoch,
            head,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO streams (stream, epoch, head) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![stream, epoch, *head as i64])?;
        }
        Write::Agent(a) => {
            tx.prepare_cached(
                "INSERT INTO agents (id, name, role, tenants, token_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, datetime('now'))",
            )?
            .execute(params![
                a.id,
                a.name,
                a.role.as_str(),
                serde_json::to_string(&a.tenants).unwrap_or_else(|_| "[]".into()),
                a.token_hash.as_slice()
            ])?;
        }
        Write::AgentRevoked { id, at } => {
            tx.prepare_cached(
                "UPDATE agents SET revoked = 1, revoked_at = ?2 WHERE id = ?1 AND revoked = 0",
            )?
            .execute(params![id, at])?;
        }
    }
    Ok(())
}
