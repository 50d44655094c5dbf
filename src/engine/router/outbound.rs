//! The life of an outbound message after acceptance: claimed by the dispatcher (consent checked
//! again), dispatched to the carrier (attribution moves now, rule A1), then delivery receipts.
//! Status only moves forward; terminal states stay terminal.

use crate::engine::store::Write;
use crate::protocol::{CodeKind, MessageEventData, MessageStatus, kind, stream};

use super::{Batch, Router};

impl Router {
    /// The dispatcher wants to hand `id` to its carrier. Returns the message if it may go.
    pub(crate) fn claim(
        &mut self,
        id: &str,
        batch: &mut Batch,
    ) -> Option<crate::protocol::Message> {
        let m = self.state.pending_out.get(id)?.clone();
        if m.status != MessageStatus::Queued {
            return None;
        }
        let tenant = m.tenant.clone().unwrap_or_default();
        // The STOP confirmation was queued ahead of the block: it alone may pass it.
        let confirmation = m.author.as_deref() == Some(super::compliance::STOP_CONFIRMATION);
        if self.hold_if_quiet(&m) {
            return None;
        }
        let campaign = m
            .author
            .as_deref()
            .is_some_and(|a| a.starts_with(super::campaigns::CAMPAIGN_AUTHOR));
        if campaign
            && self.state.consent_of(&tenant, &m.subscriber)
                != crate::protocol::ConsentState::OptedIn
        {
            self.status(
                id,
                MessageStatus::Failed,
                Some("no_consent: the subscriber is no longer opted in".into()),
                batch,
            );
            return None;
        }
        if !confirmation && self.state.opted_out(&tenant, &m.code, &m.subscriber) {
            self.status(
                id,
                MessageStatus::Failed,
                Some("opted_out: the subscriber opted out before dispatch".into()),
                batch,
            );
            return None;
        }
        batch.writes.push(Write::Outbox {
            message: id.to_string(),
            state: Some("dispatching"),
        });
        Some(m)
    }

    /// The carrier accepted the message: it is dispatched, and on a shared code the subscriber's
    /// replies now belong to this tenant.
    pub(crate) fn dispatched(
        &mut self,
        id: &str,
        carrier: &str,
        carrier_id: Option<String>,
        batch: &mut Batch,
    ) {
        let Some(m) = self.state.pending_out.get(id).cloned() else {
            return;
        };
        let tenant = m.tenant.clone().unwrap_or_default();
        if m.status == MessageStatus::Queued
            && self
                .state
                .codes
                .get(&m.code)
                .is_some_and(|c| c.kind == CodeKind::Shared)
        {
            self.move_attribution(&m.code, &m.subscriber, &tenant, Some(m.id.clone()), batch);
        }
        batch.writes.push(Write::Outbox {
            message: id.to_string(),
            state: None,
        });
        batch.traffic.dispatched += 1;
        if let Some(cid) = &carrier_id {
            batch.writes.push(Write::MessageCarrier {
                id: id.to_string(),
                carrier: carrier.to_string(),
                carrier_id: cid.clone(),
            });
        }
        self.advance(id, MessageStatus::Dispatched, carrier_id, None, batch);
    }

    /// A status callback by the carrier's id. Unknown ids are ignored (a callback for a message
    /// of another system, or one already terminal and forgotten).
    pub(crate) fn carrier_status(
        &mut self,
        carrier: &str,
        carrier_id: &str,
        status: MessageStatus,
        error: Option<String>,
        opted_out: bool,
        batch: &mut Batch,
    ) {
        let id = match self.store.find_outbound(carrier, carrier_id) {
            Ok(Some(id)) => id,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "status callback lookup failed");
                return;
            }
        };
        if opted_out {
            self.carrier_opt_out(&id, error.as_deref(), batch);
        }
        self.status(&id, status, error, batch);
    }

    /// A delivery receipt or a refusal from the carrier.
    pub(crate) fn status(
        &mut self,
        id: &str,
        status: MessageStatus,
        error: Option<String>,
        batch: &mut Batch,
    ) {
        if status.is_terminal() {
            batch.writes.push(Write::Outbox {
                message: id.to_string(),
                state: None,
            });
        }
        self.advance(id, status, None, error, batch);
    }

    fn advance(
        &mut self,
        id: &str,
        status: MessageStatus,
        carrier_id: Option<String>,
        error: Option<String>,
        batch: &mut Batch,
    ) {
        let Some(mut m) = self.state.pending_out.get(id).cloned() else {
            return;
        };
        if status.rank() <= m.status.rank() {
            return;
        }
        m.status = status;
        if matches!(status, MessageStatus::Failed | MessageStatus::Undelivered) {
            batch.traffic.failed += 1;
        }
        if error.is_some() {
            m.error = error.clone();
        }
        batch.writes.push(Write::MessageStatus {
            id: id.to_string(),
            status,
            carrier_id,
            error,
        });
        if status.is_terminal() {
            self.state.pending_out.remove(id);
        } else {
            self.state.pending_out.insert(id.to_string(), m.clone());
        }
        let Some(tenant) = m.tenant.clone() else {
            return;
        };
        let conversation = m
            .conversation
            .as_ref()
            .and_then(|c| self.state.conversations.get(c))
            .cloned();
        let conversation = conversation.map(|mut cs| {
            if cs
                .conv
                .last_message
                .as_ref()
                .is_some_and(|lm| lm.id == m.id)
            {
                // The stored row refers to its last message by id: only memory changes.
                cs.conv.last_message = Some(m.clone());
                let conv = cs.conv.clone();
                self.state.conversations.insert(conv.id.clone(), cs);
                conv
            } else {
                cs.conv
            }
        });
        self.emit(
            batch,
            &stream::tenant(&tenant),
            kind::MESSAGE_STATUS,
            &MessageEventData {
                message: m,
                conversation,
            },
        );
    }

    /// The carrier said the subscriber of message `id` opted out with it.
    pub(crate) fn carrier_opt_out(&mut self, id: &str, error: Option<&str>, batch: &mut Batch) {
        if let Some(m) = self.state.pending_out.get(id).cloned()
            && let Some(code) = self.state.codes.get(&m.code).cloned()
        {
            let source = format!("carrier:{}", error.unwrap_or("opted out"));
            self.record_carrier_opt_out(m.tenant.as_deref(), &code, &m.subscriber, &source, batch);
        }
    }
}
