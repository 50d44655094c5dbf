//! Rows to protocol objects and back: column lists, enum text, the conversation/last-message
//! join.

use rusqlite::Row;

use crate::engine::store::{AgentEntry, AgentRow, ConversationExtra};
use crate::protocol::{
    Attribution, AttributionState, CodeKind, ConsentState, Conversation, ConversationStatus,
    Direction, Encoding, Message, MessageStatus, Role, RoutedBy,
};

pub(super) fn status_str(s: MessageStatus) -> &'static str {
    s.as_str()
}

pub(super) fn parse_enum<T: serde::de::DeserializeOwned>(s: &str) -> rusqlite::Result<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(super) fn enum_str<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

pub(super) const MESSAGE_COLUMNS: &str = "id, conversation, tenant, direction, code, subscriber, body, encoding, segments, \
     cost_micros, status, created_at, client_msg_id, author, routed_by, evidence, error, reclaim, opt_out_intent";

pub(super) fn message_from_row(r: &Row) -> rusqlite::Result<Message> {
    message_at(r, 0)
}

/// A message whose columns (`MESSAGE_COLUMNS`) start at column `o` of the row.
pub(super) fn message_at(r: &Row, o: usize) -> rusqlite::Result<Message> {
    Ok(Message {
        id: r.get(o)?,
        conversation: r.get(o + 1)?,
        tenant: r.get(o + 2)?,
        direction: if r.get_ref(o + 3)?.as_str()? == "in" {
            Direction::In
        } else {
            Direction::Out
        },
        code: r.get(o + 4)?,
        subscriber: r.get(o + 5)?,
        body: r.get(o + 6)?,
        encoding: if r.get_ref(o + 7)?.as_str()? == "ucs2" {
            Encoding::Ucs2
        } else {
            Encoding::Gsm7
        },
        segments: r.get(o + 8)?,
        cost_micros: r.get(o + 9)?,
        status: parse_enum(r.get_ref(o + 10)?.as_str()?)?,
        created_at: r.get(o + 11)?,
        client_msg_id: r.get(o + 12)?,
        author: r.get(o + 13)?,
        routed_by: match r.get_ref(o + 14)?.as_str_or_null()? {
            Some(s) => Some(parse_enum::<RoutedBy>(s)?),
            None => None,
        },
        evidence: r.get(o + 15)?,
        error: r.get(o + 16)?,
        reclaim: r.get::<_, i64>(o + 17)? != 0,
        opt_out_intent: r.get::<_, i64>(o + 18)? != 0,
    })
}

/// The conversation's columns (prefixed `c.`), then its last message's (`m.`, from column 18),
/// for `FROM conversations c LEFT JOIN messages m ON m.id = c.last_message_id`.
pub(super) fn conversation_select() -> &'static str {
    static SELECT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SELECT.get_or_init(|| {
        let c = "c.id, c.tenant, c.subscriber, c.subscriber_name, c.code, c.code_kind, c.country, c.status, \
                 c.snoozed_until, c.assignee, c.unread, c.last_message_id, c.last_activity, c.attribution_state, \
                 c.attribution_since, c.consent, c.opt_out_intent, c.last_inbound_ms";
        let m = MESSAGE_COLUMNS.split(", ").map(|col| format!("m.{col}")).collect::<Vec<_>>().join(", ");
        format!("SELECT {c}, {m} FROM conversations c LEFT JOIN messages m ON m.id = c.last_message_id")
    })
}

pub(super) fn conversation_from_row(
    r: &Row,
) -> rusqlite::Result<(Conversation, ConversationExtra)> {
    let last_message = match r.get_ref(18)?.as_str_or_null()? {
        Some(_) => Some(message_at(r, 18)?),
        None => None,
    };
    Ok((
        Conversation {
            id: r.get(0)?,
            tenant: r.get(1)?,
            subscriber: r.get(2)?,
            subscriber_name: r.get(3)?,
            code: r.get(4)?,
            code_kind: parse_enum::<CodeKind>(r.get_ref(5)?.as_str()?)?,
            country: r.get(6)?,
            status: parse_enum::<ConversationStatus>(r.get_ref(7)?.as_str()?)?,
            snoozed_until: r.get(8)?,
            assignee: r.get(9)?,
            unread: r.get(10)?,
            last_message,
            last_activity: r.get(12)?,
            attribution: Attribution {
                state: parse_enum::<AttributionState>(r.get_ref(13)?.as_str()?)?,
                since: r.get(14)?,
            },
            consent: parse_enum::<ConsentState>(r.get_ref(15)?.as_str()?)?,
            opt_out_intent: r.get::<_, i64>(16)? != 0,
        },
        ConversationExtra {
            last_inbound_ms: r.get(17)?,
        },
    ))
}

pub(super) fn role_from(s: &str) -> rusqlite::Result<Role> {
    parse_enum(s)
}

pub(super) fn agent_from_row(r: &Row) -> rusqlite::Result<AgentRow> {
    let tenants: String = r.get(3)?;
    let hash: Vec<u8> = r.get(4)?;
    let mut token_hash = [0u8; 32];
    if hash.len() == 32 {
        token_hash.copy_from_slice(&hash);
    }
    Ok(AgentRow {
        id: r.get(0)?,
        name: r.get(1)?,
        role: role_from(r.get_ref(2)?.as_str()?)?,
        tenants: serde_json::from_str(&tenants).unwrap_or_default(),
        token_hash,
    })
}

/// The columns [`agent_entry_from_row`] reads, in order.
pub(super) const AGENT_ENTRY_COLUMNS: &str =
    "id, name, role, tenants, created_at, revoked, revoked_at";

pub(super) fn agent_entry_from_row(r: &Row) -> rusqlite::Result<AgentEntry> {
    let tenants: String = r.get(3)?;
    Ok(AgentEntry {
        id: r.get(0)?,
        name: r.get(1)?,
        role: role_from(r.get_ref(2)?.as_str()?)?,
        tenants: serde_json::from_str(&tenants).unwrap_or_default(),
        created_at: r.get(4)?,
        revoked: r.get::<_, i64>(5)? != 0,
        revoked_at: r.get(6)?,
    })
}

/// Events shorter than this are stored as text: compressing them saves too little.
const PACK_FROM: usize = 256;

/// The largest event `data` a stored block may claim to hold (frames are far smaller); a
/// damaged length is refused instead of allocated.
const UNPACK_MAX: usize = 16 << 20;

/// An event's `data` as stored: JSON text when short, else an LZ4 block (a BLOB: the text's
/// length as 4 bytes little-endian, then the block). A message event carries the message twice
/// (on its own and as the conversation's last message) and the same keys every time; packed,
/// it takes about half the bytes (1 178 → 579 on average in B1), in the WAL and the
/// checkpointer's copies alike.
pub(super) enum EventData<'a> {
    Text(&'a str),
    Packed(Vec<u8>),
}

impl rusqlite::ToSql for EventData<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(match self {
            EventData::Text(s) => s.to_sql()?,
            EventData::Packed(b) => b.to_sql()?,
        })
    }
}

pub(super) fn pack_event_data(data: &str) -> EventData<'_> {
    if data.len() < PACK_FROM {
        EventData::Text(data)
    } else {
        EventData::Packed(lz4_flex::block::compress_prepend_size(data.as_bytes()))
    }
}

/// Reads back what [`pack_event_data`] stored in column `i` (text written before packing
/// existed reads as is).
pub(super) fn unpack_event_data(r: &Row, i: usize) -> rusqlite::Result<String> {
    use rusqlite::types::{FromSqlError, Type, ValueRef};
    let fail = |t: Type, why: String| rusqlite::Error::FromSqlConversionFailure(i, t, why.into());
    match r.get_ref(i)? {
        ValueRef::Text(t) => String::from_utf8(t.to_vec())
            .map_err(|e| fail(Type::Text, format!("event data is not UTF-8: {e}"))),
        ValueRef::Blob(b) => {
            let Some((len, block)) = b.split_first_chunk::<4>() else {
                return Err(fail(
                    Type::Blob,
                    "packed event data shorter than its length".into(),
                ));
            };
            let len = u32::from_le_bytes(*len) as usize;
            if len > UNPACK_MAX {
                return Err(fail(
                    Type::Blob,
                    format!("packed event data claims {len} bytes"),
                ));
            }
            let bytes = lz4_flex::block::decompress(block, len)
                .map_err(|e| fail(Type::Blob, format!("packed event data is damaged: {e}")))?;
            String::from_utf8(bytes)
                .map_err(|e| fail(Type::Blob, format!("packed event data is not UTF-8: {e}")))
        }
        other => Err(rusqlite::Error::FromSqlConversionFailure(
            i,
            other.data_type(),
            Box::new(FromSqlError::InvalidType),
        )),
    }
}
