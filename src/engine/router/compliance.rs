//! Compliance keywords and consent (rules A6 and A7), decided in the same transaction that
//! stores the inbound message:
//!
//! - opt-out (STOP and friends): exactly one confirmation is queued *before* the code block and
//!   the tenant opt-out take effect, so it alone may pass them; nothing else is sent after it;
//! - opt-in (START, UNSTOP, a tenant's registered keyword sent alone, YES to a pending double
//!   opt-in): lifts the block and the opt-out, answers with the welcome (or the "reply YES");
//! - HELP: answered with the tenant's HELP text, or the code's generic one when unattributed.

use crate::domain::keywords::KeywordClass;
use crate::domain::segments;
use crate::engine::decision::InboundCompliance;
use crate::engine::state::CodeState;
use crate::engine::store::{MessageExtra, Write};
use crate::protocol::{
    ApiError, ConsentEventData, ConsentState, Direction, Encoding, Message, MessageEventData,
    MessageStatus, kind, stream,
};

use super::{Batch, Caller, DispatchJob, Router, new_id};

/// Author of the one message allowed past an opt-out: its confirmation.
pub const STOP_CONFIRMATION: &str = "system:stop";

impl Router {
    /// Acts on a compliance keyword in `message` (already routed; `tenant` is None when
    /// unattributed), as [`decided`](crate::engine::state::State::decide_inbound) for it.
    /// `normalized` is the message body passed through
    /// [`normalize`](crate::domain::keywords::normalize).
    pub(crate) fn compliance(
        &mut self,
        message: &Message,
        normalized: &str,
        tenant: Option<&str>,
        code: &CodeState,
        decided: InboundCompliance,
        batch: &mut Batch,
    ) {
        let subscriber = message.subscriber.as_str();
        let source = normalized;
        match decided.class {
            Some(KeywordClass::OptOut) => {
                self.opt_out(tenant, code, subscriber, Some(&message.id), source, batch)
            }
            Some(KeywordClass::OptIn) => {
                self.opt_in(
                    tenant,
                    code,
                    subscriber,
                    &message.id,
                    source,
                    decided.double_opt_in,
                    batch,
                );
            }
            // YES confirms a pending double opt-in; otherwise it is a plain reply.
            Some(KeywordClass::Yes)
                if tenant.is_some() && decided.consent == ConsentState::Pending =>
            {
                self.opt_in(tenant, code, subscriber, &message.id, source, false, batch);
            }
            Some(KeywordClass::Yes) => {}
            Some(KeywordClass::Help) => {
                if self
                    .state
                    .opted_out(tenant.unwrap_or_default(), &code.digits, subscriber)
                {
                    return;
                }
                let text = match tenant.and_then(|t| self.state.tenants.get(t)) {
                    Some(t) => t.config.help_text.clone(),
                    None => self.config.compliance.generic_help_text.clone(),
                };
                self.system_send(tenant, code, subscriber, &text, "system:help", batch);
            }
            None => {}
        }
    }

    /// The carrier refused a message because the subscriber opted out with it: record the block
    /// and the tenant opt-out, with no confirmation (the carrier would refuse that too).
    pub(crate) fn record_carrier_opt_out(
        &mut self,
        tenant: Option<&str>,
        code: &CodeState,
        subscriber: &str,
        source: &str,
        batch: &mut Batch,
    ) {
        if self
            .state
            .code_blocks
            .insert((code.digits.clone(), subscriber.to_string()))
        {
            batch.writes.push(Write::CodeBlock {
                code: code.digits.clone(),
                subscriber: subscriber.to_string(),
                at: self.now().to_string(),
                message: None,
                blocked: true,
            });
        }
        if let Some(t) = tenant
            && self.state.consent_of(t, subscriber) != ConsentState::OptedOut
        {
            self.set_consent(
                t,
                subscriber,
                ConsentState::OptedOut,
                Some(&code.digits),
                None,
                source,
                batch,
            );
        }
    }

    /// STOP: one confirmation, then the code block and the tenant opt-out.
    pub(crate) fn opt_out(
        &mut self,
        tenant: Option<&str>,
        code: &CodeState,
        subscriber: &str,
        message: Option<&str>,
        source: &str,
        batch: &mut Batch,
    ) {
        let already = self.state.blocked(&code.digits, subscriber)
            && tenant
                .is_none_or(|t| self.state.consent_of(t, subscriber) == ConsentState::OptedOut);
        if !already {
            let text = match tenant.and_then(|t| self.state.tenants.get(t)) {
                Some(t) => t.config.stop_text.clone(),
                None => self.config.compliance.generic_stop_text.clone(),
            };
            self.system_send(tenant, code, subscriber, &text, STOP_CONFIRMATION, batch);
        }
        let key = (code.digits.clone(), subscriber.to_string());
        if self.state.code_blocks.insert(key) {
            batch.writes.push(Write::CodeBlock {
                code: code.digits.clone(),
                subscriber: subscriber.to_string(),
                at: self.now().to_string(),
                message: message.map(str::to_string),
                blocked: true,
            });
        }
        if let Some(t) = tenant {
            self.set_consent(
                t,
                subscriber,
                ConsentState::OptedOut,
                Some(&code.digits),
                message,
                source,
                batch,
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn opt_in(
        &mut self,
        tenant: Option<&str>,
        code: &CodeState,
        subscriber: &str,
        message: &str,
        source: &str,
        double_opt_in: bool,
        batch: &mut Batch,
    ) {
        if self
            .state
            .code_blocks
            .remove(&(code.digits.clone(), subscriber.to_string()))
        {
            batch.writes.push(Write::CodeBlock {
                code: code.digits.clone(),
                subscriber: subscriber.to_string(),
                at: self.now().to_string(),
                message: Some(message.to_string()),
                blocked: false,
            });
        }
        let Some(t) = tenant else {
            let text = self.config.compliance.generic_help_text.clone();
            self.system_send(None, code, subscriber, &text, "system:start", batch);
            return;
        };
        let before = self.state.consent_of(t, subscriber);
        let Some(cfg) = self.state.tenants.get(t).map(|t| t.config.clone()) else {
            return;
        };
        if double_opt_in && before != ConsentState::OptedIn && before != ConsentState::Pending {
            self.set_consent(
                t,
                subscriber,
                ConsentState::Pending,
                Some(&code.digits),
                Some(message),
                source,
                batch,
            );
            let text = format!(
                "{}: reply YES to confirm you want to receive messages. Msg&data rates may apply. Reply STOP to cancel.",
                cfg.name
            );
            self.system_send(Some(t), code, subscriber, &text, "system:confirm", batch);
            return;
        }
        if before != ConsentState::OptedIn {
            self.set_consent(
                t,
                subscriber,
                ConsentState::OptedIn,
                Some(&code.digits),
                Some(message),
                source,
                batch,
            );
            let text = cfg.welcome_text.clone().unwrap_or_else(|| {
                format!(
                    "{}: you're subscribed. Recurring msgs, up to 4/month. Msg&data rates may apply. Reply HELP for help, STOP to cancel.",
                    cfg.name
                )
            });
            self.system_send(Some(t), code, subscriber, &text, "system:welcome", batch);
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn set_consent(
        &mut self,
        tenant: &str,
        subscriber: &str,
        state: ConsentState,
        code: Option<&str>,
        message: Option<&str>,
        source: &str,
        batch: &mut Batch,
    ) {
        self.state
            .consent
            .insert((tenant.to_string(), subscriber.to_string()), state);
        batch.writes.push(Write::Consent {
            tenant: tenant.to_string(),
            subscriber: subscriber.to_string(),
            state,
            at: self.now().to_string(),
            message: message.map(str::to_string),
            source: source.to_string(),
        });
        let conversation = match self.state.conversation_id(tenant, subscriber).cloned() {
            Some(id) => {
                let mut cs = self.state.conversations[&id].clone();
                cs.conv.consent = state;
                if state == ConsentState::OptedOut {
                    cs.conv.opt_out_intent = false;
                }
                let conv = cs.conv.clone();
                self.put_conversation(cs, batch);
                Some(conv)
            }
            None => None,
        };
        let data = ConsentEventData {
            tenant: tenant.to_string(),
            subscriber: subscriber.to_string(),
            consent: state,
            code: code.map(str::to_string),
            source: source.to_string(),
            conversation,
        };
        self.emit(batch, &stream::tenant(tenant), kind::CONSENT_CHANGED, &data);
    }

    /// Queues an automatic answer (confirmation, HELP, welcome). It is billed but never refused
    /// for spend: compliance answers must go out.
    fn system_send(
        &mut self,
        tenant: Option<&str>,
        code: &CodeState,
        subscriber: &str,
        text: &str,
        author: &str,
        batch: &mut Batch,
    ) {
        let count = segments::count(text);
        let country = crate::domain::phone::Msisdn::parse(subscriber)
            .map(|m| m.country().as_str().to_string())
            .unwrap_or_default();
        let cost = crate::domain::spend::cost_micros(count.segments, self.state.price(&country));
        let mut m = Message {
            id: new_id(),
            conversation: None,
            tenant: tenant.map(str::to_string),
            direction: Direction::Out,
            code: code.digits.clone(),
            subscriber: subscriber.to_string(),
            body: text.to_string(),
            encoding: match count.encoding {
                segments::Encoding::Gsm7 => Encoding::Gsm7,
                segments::Encoding::Ucs2 => Encoding::Ucs2,
            },
            segments: count.segments,
            cost_micros: cost,
            status: MessageStatus::Queued,
            created_at: self.now().to_string(),
            client_msg_id: None,
            author: Some(author.to_string()),
            routed_by: None,
            evidence: None,
            error: None,
            reclaim: false,
            opt_out_intent: false,
        };
        let conversation = match tenant {
            Some(t) => {
                let mut cs = self.conversation_for(t, subscriber, &code.digits);
                m.conversation = Some(cs.conv.id.clone());
                cs.conv.last_message = Some(m.clone());
                cs.conv.last_activity = self.now().to_string();
                let conv = cs.conv.clone();
                self.put_conversation(cs, batch);
                Some(conv)
            }
            None => None,
        };
        batch
            .writes
            .push(Write::Message(Box::new(m.clone()), MessageExtra::default()));
        batch.writes.push(Write::Outbox {
            message: m.id.clone(),
            state: Some("queued"),
        });
        if let Some(t) = tenant {
            self.charge(t, cost, batch);
            self.emit(
                batch,
                &stream::tenant(t),
                kind::MESSAGE_CREATED,
                &MessageEventData {
                    message: m.clone(),
                    conversation,
                },
            );
        }
        self.state.pending_out.insert(m.id.clone(), m.clone());
        *batch
            .traffic
            .outbound
            .entry(tenant.unwrap_or("-").to_string())
            .or_default() += 1;
        batch.dispatch.push(DispatchJob {
            message: m,
            carrier: code.carrier.clone(),
            mps: code.mps,
        });
    }

    /// An agent confirms a flagged opt-out request (or records one heard elsewhere).
    pub(crate) fn agent_opt_out(
        &mut self,
        caller: &Caller,
        conversation: &str,
        batch: &mut Batch,
    ) -> Result<crate::protocol::Conversation, ApiError> {
        let cs = self
            .state
            .conversations
            .get(conversation)
            .filter(|cs| caller.may_use(&cs.conv.tenant))
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("no conversation {conversation}")))?;
        let code = self
            .state
            .codes
            .get(&cs.conv.code)
            .cloned()
            .ok_or_else(|| ApiError::internal("the conversation's code is gone"))?;
        let source = format!("agent:{}", caller.agent);
        self.opt_out(
            Some(&cs.conv.tenant),
            &code,
            &cs.conv.subscriber,
            None,
            &source,
            batch,
        );
        Ok(self.state.conversations[conversation].conv.clone())
    }
}
