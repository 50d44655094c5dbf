//! Campaigns (marketing) and quiet hours (rules A6 and A10): a campaign reaches only subscribers
//! opted in with the tenant, in the code's country, not blocked; its messages are never
//! dispatched between the subscriber's local quiet hours — they are held, not dropped, and
//! released when the window opens. Agent replies are exempt.

use crate::config::parse_hhmm;
use crate::domain::phone::Msisdn;
use crate::domain::quiet_hours::{QuietWindow, next_allowed, zone_for};
use crate::domain::segments;
use crate::engine::store::{MessageExtra, Write};
use crate::protocol::{
    ApiError, CampaignParams, CampaignResult, CampaignSkip, ConsentState, Direction, Encoding,
    Message, MessageEventData, MessageStatus, Role, kind, stream,
};

use super::{Batch, Caller, DispatchJob, Router, new_id};

/// Author prefix of campaign messages (the dispatcher sends replies ahead of them).
pub const CAMPAIGN_AUTHOR: &str = "campaign:";

impl Router {
    pub(crate) fn campaign(
        &mut self,
        caller: &Caller,
        p: CampaignParams,
        batch: &mut Batch,
    ) -> Result<CampaignResult, ApiError> {
        if !matches!(caller.role, Role::Admin | Role::Owner) {
            return Err(ApiError::forbidden(
                "only an admin of the tenant may send campaigns",
            ));
        }
        if !caller.may_use(&p.tenant) || !self.state.tenants.contains_key(&p.tenant) {
            return Err(ApiError::forbidden(format!(
                "you may not send for tenant {:?}",
                p.tenant
            )));
        }
        let code = self
            .state
            .codes
            .get(&p.code)
            .filter(|c| c.usable_by(&p.tenant))
            .cloned()
            .ok_or_else(|| {
                ApiError::invalid_params(format!(
                    "{} is not a code this tenant may send on",
                    p.code
                ))
            })?;
        let count = segments::check_body(&p.body).map_err(|e| match e {
            segments::BodyError::Empty => ApiError::new(
                crate::protocol::ErrorCode::EmptyBody,
                "the campaign message is empty",
            ),
            segments::BodyError::TooLong { segments } => ApiError::new(
                crate::protocol::ErrorCode::BodyTooLong,
                format!(
                    "the message needs {segments} segments; at most {} are allowed",
                    segments::MAX_SEGMENTS
                ),
            ),
        })?;
        let recipients: Vec<String> = match &p.to {
            Some(list) => list.clone(),
            None => {
                let mut v: Vec<String> = self
                    .state
                    .consent
                    .iter()
                    .filter(|((t, _), c)| t == &p.tenant && **c == ConsentState::OptedIn)
                    .map(|((_, s), _)| s.clone())
                    .collect();
                v.sort();
                v
            }
        };
        if recipients.len() > 100_000 {
            return Err(ApiError::invalid_params(
                "at most 100 000 recipients per campaign",
            ));
        }
        let campaign = new_id();
        let author = format!("{CAMPAIGN_AUTHOR}{campaign}");
        let mut result = CampaignResult {
            campaign: campaign.clone(),
            queued: 0,
            held: 0,
            skipped: Vec::new(),
        };
        let mut skip = |subscriber: &str, reason: &str| {
            result.skipped.push(CampaignSkip {
                subscriber: subscriber.to_string(),
                reason: reason.to_string(),
            });
        };
        let mut messages = Vec::new();
        for raw in recipients {
            let Ok(s) = Msisdn::parse(&raw) else {
                skip(&raw, "invalid_params");
                continue;
            };
            let subscriber = s.e164().to_string();
            if s.country().as_str() != code.country {
                skip(&subscriber, "country_mismatch");
            } else if self.state.opted_out(&p.tenant, &code.digits, &subscriber) {
                skip(&subscriber, "opted_out");
            } else if self.state.consent_of(&p.tenant, &subscriber) != ConsentState::OptedIn {
                skip(&subscriber, "no_consent");
            } else {
                messages.push((subscriber, s.country().as_str().to_string()));
            }
        }
        for (subscriber, country) in messages {
            let cost =
                crate::domain::spend::cost_micros(count.segments, self.state.price(&country));
            let (spent, limit) = self.spend_of(&p.tenant);
            if crate::domain::spend::would_exceed(spent, cost, limit) {
                result.skipped.push(CampaignSkip {
                    subscriber,
                    reason: "spend_limit".into(),
                });
                continue;
            }
            let mut cs = self.conversation_for(&p.tenant, &subscriber, &code.digits);
            let m = Message {
                id: new_id(),
                conversation: Some(cs.conv.id.clone()),
                tenant: Some(p.tenant.clone()),
                direction: Direction::Out,
                code: code.digits.clone(),
                subscriber: subscriber.clone(),
                body: p.body.clone(),
                encoding: match count.encoding {
                    segments::Encoding::Gsm7 => Encoding::Gsm7,
                    segments::Encoding::Ucs2 => Encoding::Ucs2,
                },
                segments: count.segments,
                cost_micros: cost,
                status: MessageStatus::Queued,
                created_at: self.now().to_string(),
                client_msg_id: None,
                author: Some(author.clone()),
                routed_by: None,
                evidence: None,
                error: None,
                reclaim: false,
                opt_out_intent: false,
            };
            if self.state.subscribers.insert(subscriber.clone()) {
                batch.writes.push(Write::Subscriber {
                    e164: subscriber.clone(),
                    country: country.clone(),
                });
            }
            cs.conv.last_message = Some(m.clone());
            cs.conv.last_activity = self.now().to_string();
            let conversation = cs.conv.clone();
            self.put_conversation(cs, batch);
            batch
                .writes
                .push(Write::Message(Box::new(m.clone()), MessageExtra::default()));
            batch.writes.push(Write::Outbox {
                message: m.id.clone(),
                state: Some("queued"),
            });
            self.charge(&p.tenant, cost, batch);
            self.state.pending_out.insert(m.id.clone(), m.clone());
            *batch.traffic.outbound.entry(p.tenant.clone()).or_default() += 1;
            self.emit(
                batch,
                &stream::tenant(&p.tenant),
                kind::MESSAGE_CREATED,
                &MessageEventData {
                    message: m.clone(),
                    conversation: Some(conversation),
                },
            );
            if self.hold_if_quiet(&m) {
                result.held += 1;
            } else {
                result.queued += 1;
                batch.dispatch.push(DispatchJob {
                    message: m,
                    carrier: code.carrier.clone(),
                    mps: code.mps,
                });
            }
        }
        Ok(result)
    }

    /// A campaign message inside its subscriber's quiet hours is held until they end.
    pub(crate) fn hold_if_quiet(&mut self, m: &Message) -> bool {
        if !m
            .author
            .as_deref()
            .is_some_and(|a| a.starts_with(CAMPAIGN_AUTHOR))
        {
            return false;
        }
        let Some(release) = self.quiet_until(m) else {
            return false;
        };
        let slot = self.held.entry(release).or_default();
        if !slot.contains(&m.id) {
            slot.push(m.id.clone());
        }
        true
    }

    /// When the subscriber's quiet hours end, if they are in them now.
    fn quiet_until(&self, m: &Message) -> Option<i64> {
        let subscriber = Msisdn::parse(&m.subscriber).ok()?;
        let tenant_zone = m
            .tenant
            .as_deref()
            .and_then(|t| self.state.tenants.get(t))
            .map_or("UTC", |t| t.config.timezone.as_str());
        let zone = zone_for(None, &subscriber, tenant_zone);
        let c = &self.config.compliance;
        let [start, end] = c
            .quiet_hours_by_country
            .get(subscriber.country().as_str())
            .unwrap_or(&c.quiet_hours);
        let window = QuietWindow::new(parse_hhmm(start)?, parse_hhmm(end)?);
        let now = jiff::Timestamp::from_millisecond(self.now_ms()).ok()?;
        next_allowed(now, &zone, &window).map(|t| t.as_millisecond())
    }

    /// Hands released campaign messages back to the dispatcher.
    pub(crate) fn release_held(&mut self, batch: &mut Batch) {
        let now = self.now_ms();
        let later = self.held.split_off(&(now + 1));
        let due = std::mem::replace(&mut self.held, later);
        for id in due.into_values().flatten() {
            if let Some(m) = self.state.pending_out.get(&id)
                && m.status == MessageStatus::Queued
                && let Some(job) = self.job_for(m)
            {
                batch.dispatch.push(job);
            }
        }
    }
}
