//! Changes agents and ops make to conversations: status, assignee, read marks, the reply code,
//! and giving an unattributed message to a tenant.

use crate::domain::phone::Msisdn;
use crate::engine::store::Write;
use crate::protocol::{
    ApiError, CodeKind, Conversation, ConversationEventData, ConversationUpdateParams,
    MessageEventData, Role, RoutedBy, UnattributedAssignParams, kind, stream,
};

use super::{Batch, Caller, Router};

impl Router {
    pub(crate) fn update_conversation(
        &mut self,
        caller: &Caller,
        p: ConversationUpdateParams,
        batch: &mut Batch,
    ) -> Result<Conversation, ApiError> {
        let mut cs = self
            .state
            .conversations
            .get(&p.conversation)
            .filter(|cs| caller.may_use(&cs.conv.tenant))
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("no conversation {}", p.conversation)))?;
        if let Some(digits) = &p.code {
            let code = self.state.codes.get(digits).ok_or_else(|| {
                ApiError::invalid_params(format!("{digits} is not a short code of this engine"))
            })?;
            if !code.usable_by(&cs.conv.tenant) {
                return Err(ApiError::forbidden(format!(
                    "code {digits} is dedicated to another business"
                )));
            }
            let country = Msisdn::parse(&cs.conv.subscriber)
                .map(|m| m.country().as_str().to_string())
                .unwrap_or_default();
            if code.country != country {
                return Err(ApiError::new(
                    crate::protocol::ErrorCode::CountryMismatch,
                    format!(
                        "code {digits} is in {}; {} is in {country}: a short code only reaches its own country",
                        code.country, cs.conv.subscriber
                    ),
                ));
            }
            cs.conv.code = code.digits.clone();
            cs.conv.code_kind = code.kind;
            cs.conv.country = code.country.clone();
            cs.conv.attribution =
                self.state
                    .attribution_view(&cs.conv.tenant, &cs.conv.subscriber, digits);
        }
        if let Some(status) = p.status {
            cs.conv.status = status;
        }
        if let Some(a) = &p.assignee {
            cs.conv.assignee = match a.as_str() {
                "" => None,
                "me" => Some(caller.agent.clone()),
                other if other.len() <= 64 => Some(other.to_string()),
                _ => {
                    return Err(ApiError::invalid_params(
                        "assignee: an agent id, \"me\", or \"\" to unassign",
                    ));
                }
            };
        }
        if let Some(up_to) = &p.read_up_to {
            cs.conv.unread = self
                .store
                .unread_after(&cs.conv.id, up_to)
                .map_err(super::internal)?;
        }
        if p.unread == Some(true) {
            cs.conv.unread = cs.conv.unread.max(1);
        } else if p.unread == Some(false) {
            cs.conv.unread = 0;
        }
        let conversation = cs.conv.clone();
        self.put_conversation(cs, batch);
        let stream_name = stream::tenant(&conversation.tenant);
        self.emit(
            batch,
            &stream_name,
            kind::CONVERSATION_UPDATED,
            &ConversationEventData {
                conversation: conversation.clone(),
            },
        );
        Ok(conversation)
    }

    /// Ops gives an unattributed message to a tenant, which also sets attribution (A2.4).
    pub(crate) fn assign(
        &mut self,
        caller: &Caller,
        p: UnattributedAssignParams,
        batch: &mut Batch,
    ) -> Result<MessageEventData, ApiError> {
        if !matches!(caller.role, Role::Ops | Role::Owner) {
            return Err(ApiError::forbidden(
                "only ops may assign unattributed messages",
            ));
        }
        if !self.state.tenants.contains_key(&p.tenant) {
            return Err(ApiError::invalid_params(format!(
                "no tenant {:?}",
                p.tenant
            )));
        }
        let mut m = self
            .store
            .message(&p.message)
            .map_err(super::internal)?
            .filter(|m| m.tenant.is_none() && m.direction == crate::protocol::Direction::In)
            .ok_or_else(|| ApiError::not_found(format!("no unattributed message {}", p.message)))?;
        let Some(code) = self.state.codes.get(&m.code).cloned() else {
            return Err(ApiError::internal(
                "the message's code is no longer configured",
            ));
        };
        if code.kind == CodeKind::Shared {
            self.move_attribution(&code.digits, &m.subscriber, &p.tenant, None, batch);
        }
        let mut cs = self.conversation_for(&p.tenant, &m.subscriber, &code.digits);
        m.tenant = Some(p.tenant.clone());
        m.conversation = Some(cs.conv.id.clone());
        m.routed_by = Some(RoutedBy::Ops);
        cs.conv.code = code.digits.clone();
        cs.conv.code_kind = code.kind;
        cs.conv.country = code.country.clone();
        cs.conv.attribution = self
            .state
            .attribution_view(&p.tenant, &m.subscriber, &code.digits);
        cs.conv.unread += 1;
        cs.conv.last_activity = self.now().to_string();
        cs.conv.last_message = Some(m.clone());
        cs.extra.last_inbound_ms = Some(self.now_ms());
        let conversation = cs.conv.clone();
        self.put_conversation(cs, batch);
        batch.writes.push(Write::MessageAssigned {
            id: m.id.clone(),
            tenant: p.tenant.clone(),
            conversation: conversation.id.clone(),
        });
        let data = MessageEventData {
            message: m,
            conversation: Some(conversation),
        };
        self.emit(
            batch,
            &stream::tenant(&p.tenant),
            kind::MESSAGE_RECEIVED,
            &data,
        );
        let ops = serde_json::json!({ "message": data.message.id, "tenant": p.tenant });
        self.emit(batch, stream::OPS, kind::UNATTRIBUTED_ASSIGNED, &ops);
        Ok(data)
    }
}
