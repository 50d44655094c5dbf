//! Moving attribution (rules A1 and A3) and telling the tenants and ops about it.
//!
//! The tenant that loses a subscriber gets `attribution.lost` without the other tenant's name;
//! a tenant that wins back a conversation it had lost gets `attribution.regained`; ops gets
//! `attribution.changed` naming both.

use crate::domain::routing::{AttributionMove, on_dispatch};
use crate::engine::state::Holder;
use crate::engine::store::Write;
use crate::protocol::{
    AttributionChangedData, AttributionEventData, AttributionState, kind, stream,
};

use super::{Batch, Router};

impl Router {
    /// `tenant` now owns replies from `subscriber` on shared `code`; `message` is the evidence
    /// (the dispatched outbound message, or None for a keyword or an ops assignment).
    pub(crate) fn move_attribution(
        &mut self,
        code: &str,
        subscriber: &str,
        tenant: &str,
        message: Option<String>,
        batch: &mut Batch,
    ) {
        let key = (code.to_string(), subscriber.to_string());
        let previous = self.state.attribution.get(&key).map(|h| h.tenant.clone());
        let mv = on_dispatch(previous.as_ref(), &tenant.to_string());
        let since = match (&mv, self.state.attribution.get(&key)) {
            (AttributionMove::Unchanged, Some(h)) => h.since.clone(),
            _ => self.now().to_string(),
        };
        let holder = Holder {
            tenant: tenant.to_string(),
            since: since.clone(),
            message: message.clone(),
        };
        // The same holder with the same evidence (a subscriber naming the business they
        // already talk to) is no change: nothing to write.
        if self.state.attribution.get(&key) != Some(&holder) {
            batch.writes.push(Write::Attribution {
                code: code.to_string(),
                subscriber: subscriber.to_string(),
                tenant: tenant.to_string(),
                since: since.clone(),
                message: message.clone(),
            });
            self.state.attribution.insert(key, holder);
        }

        let from = match mv {
            AttributionMove::Unchanged => return,
            AttributionMove::Gained => None,
            AttributionMove::Shifted { from } => Some(from),
        };
        // The displaced tenant's conversation now shows the loss (if it replies on this code).
        if let Some(from) = &from
            && let Some(data) = self.refresh_attribution(from, subscriber, code, batch)
        {
            self.emit(batch, &stream::tenant(from), kind::ATTRIBUTION_LOST, &data);
        }
        // The new holder's conversation: regained if it had been lost, else just refreshed.
        let was_lost = self
            .state
            .conversation_id(tenant, subscriber)
            .and_then(|id| self.state.conversations.get(id))
            .is_some_and(|c| {
                c.conv.code == code && c.conv.attribution.state == AttributionState::Lost
            });
        if let Some(data) = self.refresh_attribution(tenant, subscriber, code, batch)
            && was_lost
        {
            self.emit(
                batch,
                &stream::tenant(tenant),
                kind::ATTRIBUTION_REGAINED,
                &data,
            );
        }
        if let Some(to) = self.state.tenant_ref(tenant) {
            let data = AttributionChangedData {
                code: code.to_string(),
                subscriber: subscriber.to_string(),
                from: from.as_deref().and_then(|f| self.state.tenant_ref(f)),
                to,
                since,
                message: message.unwrap_or_default(),
            };
            self.emit(batch, stream::OPS, kind::ATTRIBUTION_CHANGED, &data);
        }
    }

    /// Recomputes the attribution view of `tenant`'s conversation with `subscriber` when it
    /// replies on `code`; stores it and returns the event data.
    fn refresh_attribution(
        &mut self,
        tenant: &str,
        subscriber: &str,
        code: &str,
        batch: &mut Batch,
    ) -> Option<AttributionEventData> {
        let id = self.state.conversation_id(tenant, subscriber)?.clone();
        let mut cs = self.state.conversations.get(&id)?.clone();
        if cs.conv.code != code {
            return None;
        }
        cs.conv.attribution = self.state.attribution_view(tenant, subscriber, code);
        let data = AttributionEventData {
            conversation: cs.conv.clone(),
            code: code.to_string(),
            subscriber: subscriber.to_string(),
            since: cs
                .conv
                .attribution
                .since
                .clone()
                .unwrap_or_else(|| self.now().to_string()),
        };
        self.put_conversation(cs, batch);
        Some(data)
    }
}
