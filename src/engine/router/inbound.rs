//! Inbound messages from carriers: dedupe on the carrier's id, route by rule A2, store, and
//! tell the tenant (or ops, for the unattributed queue).

use crate::domain::keywords::Normalized;
use crate::domain::routing::RouteDecision;
use crate::domain::segments;
use crate::engine::decision::InboundDecision;
use crate::engine::state::ConvState;
use crate::engine::store::{MessageExtra, Write};
use crate::engine::{InboundAck, IngressError};
use crate::protocol::{
    ConversationStatus, Direction, Encoding, Message, MessageEventData, MessageStatus, RoutedBy,
    UnattributedData, kind, stream,
};

use super::{Batch, Router, new_id};

/// A message a carrier delivered to one of our codes. `from` is already E.164 and `to` a known
/// code: the edge checked both.
#[derive(Debug, Clone)]
pub struct InboundCommand {
    pub carrier: String,
    pub carrier_id: String,
    pub from: String,
    pub to: String,
    pub body: String,
    /// The subscriber's name, when the carrier knows it.
    pub name: Option<String>,
}

impl Router {
    pub(crate) fn inbound(
        &mut self,
        cmd: InboundCommand,
        batch: &mut Batch,
    ) -> Result<InboundAck, IngressError> {
        let key = (cmd.carrier.clone(), cmd.carrier_id.clone());
        if let Some(ack) = batch.seen_inbound.get(&key) {
            return Ok(ack.clone());
        }
        if let Some(id) = self.state.recent_inbound.get(&cmd.carrier, &cmd.carrier_id) {
            // Confirmed against the stored message: the memory holds hashes.
            match self.store.inbound_origin(&id) {
                Ok(Some(origin))
                    if origin.carrier == cmd.carrier && origin.carrier_id == cmd.carrier_id =>
                {
                    let routed = if origin.tenant.is_some() {
                        "tenant"
                    } else {
                        "unattributed"
                    };
                    return Ok(InboundAck {
                        message: id,
                        routed,
                        tenant: origin.tenant,
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(IngressError {
                        status: 503,
                        code: "unavailable",
                        message: format!("storage: {e}"),
                    });
                }
            }
        }
        let Some(code) = self.state.codes.get(&cmd.to).cloned() else {
            return Err(IngressError {
                status: 400,
                code: "unknown_code",
                message: format!("{} is not a short code of this engine", cmd.to),
            });
        };

        // The body's words as keywords are matched, once for every rule that looks at them.
        let body_words = Normalized::new(&cmd.body);
        let normalized = body_words.as_str();
        let InboundDecision { route, compliance } =
            self.state.decide_inbound(&code, &cmd.from, normalized);
        // What the stored message and its events keep of the decision.
        let decision = route.decision.into_owned(str::to_owned);
        let evidence = route.evidence.map(str::to_owned);

        if self.state.subscribers.insert(cmd.from.clone()) {
            let country = crate::domain::phone::Msisdn::parse(&cmd.from)
                .map(|m| m.country().as_str().to_string())
                .unwrap_or_default();
            batch.writes.push(Write::Subscriber {
                e164: cmd.from.clone(),
                country,
            });
        }

        let count = segments::count(&cmd.body);
        let mut message = Message {
            id: new_id(),
            conversation: None,
            tenant: None,
            direction: Direction::In,
            code: code.digits.clone(),
            subscriber: cmd.from.clone(),
            body: cmd.body.clone(),
            encoding: match count.encoding {
                segments::Encoding::Gsm7 => Encoding::Gsm7,
                segments::Encoding::Ucs2 => Encoding::Ucs2,
            },
            segments: count.segments.max(1),
            cost_micros: 0,
            status: MessageStatus::Received,
            created_at: self.now().to_string(),
            client_msg_id: None,
            author: None,
            routed_by: None,
            evidence: None,
            error: None,
            reclaim: false,
            opt_out_intent: compliance.opt_out_intent,
        };
        let extra = MessageExtra {
            carrier: Some(cmd.carrier.clone()),
            carrier_id: Some(cmd.carrier_id.clone()),
            unattributed_reason: None,
        };

        let (tenant, routed_by) = match decision {
            RouteDecision::Dedicated(t) => (t, RoutedBy::Dedicated),
            RouteDecision::Keyword(t) => (t, RoutedBy::Keyword),
            RouteDecision::Attribution(t) => {
                message.evidence = evidence;
                (t, RoutedBy::Attribution)
            }
            RouteDecision::Unattributed(reason) => {
                let reason = format!("{reason}");
                let extra = MessageExtra {
                    unattributed_reason: Some(reason.clone()),
                    ..extra
                };
                batch
                    .writes
                    .push(Write::Message(Box::new(message.clone()), extra));
                batch.traffic.unattributed += 1;
                let ack = InboundAck {
                    message: message.id.clone(),
                    routed: "unattributed",
                    tenant: None,
                };
                self.compliance(&message, normalized, None, &code, compliance, batch);
                self.emit(
                    batch,
                    stream::OPS,
                    kind::UNATTRIBUTED_RECEIVED,
                    &UnattributedData { message, reason },
                );
                self.remember(&cmd, key, &ack, batch);
                return Ok(ack);
            }
        };
        if routed_by == RoutedBy::Keyword {
            // The subscriber addressed this business by name: attribution moves to it (A2.2).
            self.move_attribution(&code.digits, &cmd.from, &tenant, None, batch);
        }
        message.tenant = Some(tenant.clone());
        message.routed_by = Some(routed_by);
        *batch.traffic.inbound.entry(tenant.clone()).or_default() += 1;

        let mut cs = self.conversation_for(&tenant, &cmd.from, &code.digits);
        message.conversation = Some(cs.conv.id.clone());
        if cs.conv.subscriber_name.is_none() {
            cs.conv.subscriber_name = cmd.name.clone();
        }
        let c = &mut cs.conv;
        if c.code != code.digits {
            c.code = code.digits.clone();
            c.code_kind = code.kind;
            c.country = code.country.clone();
        }
        c.attribution = self
            .state
            .attribution_view(&tenant, &cmd.from, &code.digits);
        c.unread += 1;
        c.last_activity = self.now().to_string();
        if c.status == ConversationStatus::Resolved {
            c.status = ConversationStatus::Open;
        }
        c.opt_out_intent |= message.opt_out_intent;
        c.last_message = Some(message.clone());
        cs.extra.last_inbound_ms = Some(self.now_ms());
        let conversation = cs.conv.clone();
        self.put_conversation(cs, batch);
        batch
            .writes
            .push(Write::Message(Box::new(message.clone()), extra));

        let ack = InboundAck {
            message: message.id.clone(),
            routed: "tenant",
            tenant: Some(tenant.clone()),
        };
        self.emit(
            batch,
            &stream::tenant(&tenant),
            kind::MESSAGE_RECEIVED,
            &MessageEventData {
                message: message.clone(),
                conversation: Some(conversation),
            },
        );
        self.compliance(
            &message,
            normalized,
            Some(&tenant),
            &code,
            compliance,
            batch,
        );
        self.remember(&cmd, key, &ack, batch);
        Ok(ack)
    }

    /// A redelivery of this carrier message gets `ack` again: later in this batch, and from
    /// memory after it.
    fn remember(
        &mut self,
        cmd: &InboundCommand,
        key: (String, String),
        ack: &InboundAck,
        batch: &mut Batch,
    ) {
        self.state
            .recent_inbound
            .insert(&cmd.carrier, &cmd.carrier_id, &ack.message);
        batch.seen_inbound.insert(key, ack.clone());
    }

    /// The conversation of `tenant` with `subscriber`, or a new one on `code`.
    pub(crate) fn conversation_for(&self, tenant: &str, subscriber: &str, code: &str) -> ConvState {
        if let Some(cs) = self
            .state
            .conversation_id(tenant, subscriber)
            .and_then(|id| self.state.conversations.get(id))
        {
            return cs.clone();
        }
        let code = &self.state.codes[code];
        ConvState {
            conv: self
                .state
                .new_conversation(new_id(), tenant, subscriber, code, self.now()),
            extra: Default::default(),
        }
    }
}
