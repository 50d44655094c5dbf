//! Agent sends and previews: one validation, in the order the protocol fixes
//! (`invalid_params`, `forbidden`/`not_found`, `empty_body`, `body_too_long`, `country_mismatch`,
//! `opted_out`, `no_consent`, `attribution_shifted`, `spend_limit`), idempotent on
//! (tenant, `client_msg_id`). A preview runs the same checks and reports every one that applies.

use sha2::{Digest, Sha256};

use crate::domain::phone::Msisdn;
use crate::domain::segments::{self, BodyError, SegmentCount};
use crate::engine::state::{CodeState, Idempotent, Spend};
use crate::engine::store::{MessageExtra, Write};
use crate::protocol::{
    ApiError, CodeKind, ConsentState, Direction, Encoding, ErrorCode, Message, MessageEventData,
    MessageStatus, PreviewResult, SendParams, SendResult, SpendNoticeData, Warning, kind, stream,
};

use super::{Batch, Caller, DispatchJob, Router, new_id};
use crate::engine::clock;

/// Where a send goes, once its parameters are understood.
struct Target {
    tenant: String,
    subscriber: String,
    subscriber_country: String,
    code: CodeState,
    conversation: Option<String>,
}

impl Router {
    fn resolve(&self, caller: &Caller, p: &SendParams) -> Result<Target, ApiError> {
        if uuid::Uuid::parse_str(&p.client_msg_id).is_err() {
            return Err(ApiError::invalid_params(format!(
                "client_msg_id must be a UUID (it makes retries safe); got {:?}",
                p.client_msg_id
            )));
        }
        let code_of = |digits: &str, tenant: &str| -> Result<CodeState, ApiError> {
            let code = self.state.codes.get(digits).ok_or_else(|| {
                ApiError::invalid_params(format!("{digits} is not a short code of this engine"))
            })?;
            if !code.usable_by(tenant) {
                return Err(ApiError::forbidden(format!(
                    "code {digits} is dedicated to another business"
                )));
            }
            Ok(code.clone())
        };
        if let Some(id) = &p.conversation {
            let cs = self
                .state
                .conversations
                .get(id)
                .filter(|cs| caller.may_use(&cs.conv.tenant))
                .ok_or_else(|| ApiError::not_found(format!("no conversation {id}")))?;
            let code = code_of(p.code.as_deref().unwrap_or(&cs.conv.code), &cs.conv.tenant)?;
            let country = Msisdn::parse(&cs.conv.subscriber)
                .map(|m| m.country().as_str().to_string())
                .unwrap_or_default();
            return Ok(Target {
                tenant: cs.conv.tenant.clone(),
                subscriber: cs.conv.subscriber.clone(),
                subscriber_country: country,
                code,
                conversation: Some(id.clone()),
            });
        }
        let (Some(tenant), Some(to), Some(code)) = (&p.tenant, &p.to, &p.code) else {
            return Err(ApiError::invalid_params(
                "name the recipient: either `conversation`, or `tenant`, `to` and `code`",
            ));
        };
        let to = Msisdn::parse(to).map_err(|e| ApiError::invalid_params(format!("`to`: {e}")))?;
        if !self.state.tenants.contains_key(tenant) || !caller.may_use(tenant) {
            return Err(ApiError::forbidden(format!(
                "you may not send for tenant {tenant:?}"
            )));
        }
        let code = code_of(code, tenant)?;
        Ok(Target {
            tenant: tenant.clone(),
            subscriber: to.e164().to_string(),
            subscriber_country: to.country().as_str().to_string(),
            conversation: self.state.conversation_id(tenant, to.e164()).cloned(),
            code,
        })
    }

    fn fingerprint(t: &Target, p: &SendParams) -> String {
        let mut h = Sha256::new();
        for part in [
            t.tenant.as_str(),
            t.subscriber.as_str(),
            t.code.digits.as_str(),
            p.body.as_str(),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Every rule that would refuse this send, in the protocol's order.
    fn refusals(
        &self,
        t: &Target,
        p: &SendParams,
        count: &Result<SegmentCount, BodyError>,
    ) -> Vec<ApiError> {
        let mut out = Vec::new();
        match count {
            Err(BodyError::Empty) => out.push(ApiError::new(
                ErrorCode::EmptyBody,
                "the message is empty: write something to send",
            )),
            Err(BodyError::TooLong { segments }) => out.push(ApiError::new(
                ErrorCode::BodyTooLong,
                format!(
                    "the message needs {segments} segments; at most {} are allowed: shorten it",
                    segments::MAX_SEGMENTS
                ),
            )),
            Ok(_) => {}
        }
        if t.code.country != t.subscriber_country {
            out.push(ApiError::new(
                ErrorCode::CountryMismatch,
                format!(
                    "code {} is in {}; {} is in {}: a short code only reaches its own country",
                    t.code.digits, t.code.country, t.subscriber, t.subscriber_country
                ),
            ));
        }
        let conv = t
            .conversation
            .as_ref()
            .and_then(|id| self.state.conversations.get(id));
        let consent = self.state.consent_of(&t.tenant, &t.subscriber);
        if self
            .state
            .opted_out(&t.tenant, &t.code.digits, &t.subscriber)
        {
            out.push(ApiError::new(
                ErrorCode::OptedOut,
                format!(
                    "{} has opted out of messages from this business; nothing can be sent",
                    t.subscriber
                ),
            ));
        } else {
            let window_ms = i64::from(self.config.engine.conversational_window_hours) * 3_600_000;
            let recent = conv
                .and_then(|c| c.extra.last_inbound_ms)
                .is_some_and(|at| self.now_ms() - at <= window_ms);
            if !recent && consent != ConsentState::OptedIn {
                out.push(ApiError::new(
                    ErrorCode::NoConsent,
                    format!(
                        "{} has not written to this business in the last {} hours and has not opted in: a reply is only allowed inside that window",
                        t.subscriber, self.config.engine.conversational_window_hours
                    ),
                ));
            }
        }
        if t.code.kind == CodeKind::Shared
            && !p.reclaim
            && let Some(h) = self
                .state
                .holder(&t.code.digits, &t.subscriber)
                .filter(|h| h.tenant != t.tenant)
        {
            let alternatives = self.state.dedicated_codes(&t.tenant, &t.subscriber_country);
            let hint = if alternatives.is_empty() {
                "send with reclaim to take the conversation back".to_string()
            } else {
                format!(
                    "send with reclaim, or switch to your dedicated code {}",
                    alternatives.join(" or ")
                )
            };
            out.push(
                ApiError::new(
                    ErrorCode::AttributionShifted,
                    format!(
                        "since {}, replies from {} on shared code {} go to another business; {hint}",
                        clock::human(&h.since),
                        t.subscriber,
                        t.code.digits
                    ),
                )
                .with_details(serde_json::json!({
                    "since": h.since,
                    "code": t.code.digits,
                    "alternatives": alternatives,
                })),
            );
        }
        if let Ok(count) = count {
            let cost = self.cost(t, count);
            let (spent, limit) = self.spend_of(&t.tenant);
            if crate::domain::spend::would_exceed(spent, cost, limit) {
                out.push(ApiError::new(
                    ErrorCode::SpendLimit,
                    format!(
                        "this message costs ${:.4}; the monthly limit of ${:.2} has ${:.4} left",
                        cost as f64 / 1e6,
                        limit as f64 / 1e6,
                        (limit - spent).max(0) as f64 / 1e6
                    ),
                ));
            }
        }
        out
    }

    fn cost(&self, t: &Target, count: &SegmentCount) -> i64 {
        crate::domain::spend::cost_micros(count.segments, self.state.price(&t.subscriber_country))
    }

    /// (spent this month, monthly limit) of a tenant, in micro-dollars.
    pub(crate) fn spend_of(&self, tenant: &str) -> (i64, i64) {
        let month = clock::month_of(self.now_ms());
        let spent = self
            .state
            .spend
            .get(tenant)
            .filter(|s| s.month == month)
            .map_or(0, |s| s.spent_micros);
        let limit = self.state.tenants.get(tenant).map_or(0, |t| t.limit_micros);
        (spent, limit)
    }

    pub(crate) fn send(
        &mut self,
        caller: &Caller,
        p: SendParams,
        batch: &mut Batch,
    ) -> Result<SendResult, ApiError> {
        let t = self.resolve(caller, &p)?;
        let fingerprint = Self::fingerprint(&t, &p);
        let key = (t.tenant.clone(), p.client_msg_id.clone());
        if let Some(first) = self.state.idempotency.get(&key) {
            if first.fingerprint != fingerprint {
                return Err(ApiError::new(
                    ErrorCode::IdempotencyMismatch,
                    "this client_msg_id was already used for a different message: use a new id for a new message",
                ));
            }
            let message = match self.state.pending_out.get(&first.message) {
                Some(m) => Some(m.clone()),
                None => self
                    .store
                    .message(&first.message)
                    .map_err(super::internal)?,
            };
            let message = message
                .ok_or_else(|| ApiError::internal("the first message of this id is missing"))?;
            return Ok(SendResult {
                message,
                duplicate: true,
            });
        }
        let count = segments::check_body(&p.body);
        if let Some(refusal) = self.refusals(&t, &p, &count).into_iter().next() {
            return Err(refusal);
        }
        let count = count.map_err(|_| ApiError::internal("body check disagreed with itself"))?;
        let cost = self.cost(&t, &count);

        let mut cs = match &t.conversation {
            Some(id) => self.state.conversations[id].clone(),
            None => self.conversation_for(&t.tenant, &t.subscriber, &t.code.digits),
        };
        let message = Message {
            id: new_id(),
            conversation: Some(cs.conv.id.clone()),
            tenant: Some(t.tenant.clone()),
            direction: Direction::Out,
            code: t.code.digits.clone(),
            subscriber: t.subscriber.clone(),
            body: p.body.clone(),
            encoding: match count.encoding {
                segments::Encoding::Gsm7 => Encoding::Gsm7,
                segments::Encoding::Ucs2 => Encoding::Ucs2,
            },
            segments: count.segments,
            cost_micros: cost,
            status: MessageStatus::Queued,
            created_at: self.now().to_string(),
            client_msg_id: Some(p.client_msg_id.clone()),
            author: Some(caller.agent.clone()),
            routed_by: None,
            evidence: None,
            error: None,
            reclaim: p.reclaim,
            opt_out_intent: false,
        };
        if self.state.subscribers.insert(t.subscriber.clone()) {
            batch.writes.push(Write::Subscriber {
                e164: t.subscriber.clone(),
                country: t.subscriber_country.clone(),
            });
        }
        let c = &mut cs.conv;
        if c.code != t.code.digits {
            c.code = t.code.digits.clone();
            c.code_kind = t.code.kind;
            c.country = t.code.country.clone();
        }
        c.attribution = self
            .state
            .attribution_view(&t.tenant, &t.subscriber, &t.code.digits);
        c.last_message = Some(message.clone());
        c.last_activity = self.now().to_string();
        let conversation = cs.conv.clone();
        self.put_conversation(cs, batch);

        batch.writes.push(Write::Message(
            Box::new(message.clone()),
            MessageExtra::default(),
        ));
        batch.writes.push(Write::Outbox {
            message: message.id.clone(),
            state: Some("queued"),
        });
        batch.writes.push(Write::Idempotency {
            tenant: t.tenant.clone(),
            key: p.client_msg_id.clone(),
            fingerprint: fingerprint.clone(),
            message: message.id.clone(),
            at_ms: self.now_ms(),
        });
        self.state.idempotency.insert(
            key,
            Idempotent {
                fingerprint,
                message: message.id.clone(),
            },
        );
        self.charge(&t.tenant, cost, batch);
        self.state
            .pending_out
            .insert(message.id.clone(), message.clone());
        *batch.traffic.outbound.entry(t.tenant.clone()).or_default() += 1;
        self.emit(
            batch,
            &stream::tenant(&t.tenant),
            kind::MESSAGE_CREATED,
            &MessageEventData {
                message: message.clone(),
                conversation: Some(conversation),
            },
        );
        batch.dispatch.push(DispatchJob {
            message: message.clone(),
            carrier: t.code.carrier.clone(),
            mps: t.code.mps,
        });
        Ok(SendResult {
            message,
            duplicate: false,
        })
    }

    /// Adds `cost` to the tenant's month and raises the 80 % and 100 % notices once each.
    pub(crate) fn charge(&mut self, tenant: &str, cost: i64, batch: &mut Batch) {
        let month = clock::month_of(self.now_ms());
        let (before, limit) = self.spend_of(tenant);
        let after = before + cost;
        let entry = self.state.spend.entry(tenant.to_string()).or_default();
        if entry.month != month {
            *entry = Spend {
                month: month.clone(),
                spent_micros: 0,
                notified: 0,
            };
        }
        entry.spent_micros = after;
        let mut notices = Vec::new();
        for pct in crate::domain::spend::notices_crossed(before, after, limit) {
            if pct > entry.notified {
                entry.notified = pct;
                notices.push(pct);
            }
        }
        batch.writes.push(Write::Spend {
            tenant: tenant.to_string(),
            month: month.clone(),
            spent_micros: after,
            notified: entry.notified,
        });
        for percent in notices {
            let data = SpendNoticeData {
                tenant: tenant.to_string(),
                percent,
                spent_micros: after,
                limit_micros: limit,
                month: month.clone(),
            };
            self.emit(batch, &stream::tenant(tenant), kind::SPEND_NOTICE, &data);
        }
    }

    pub(crate) fn preview(
        &mut self,
        caller: &Caller,
        p: SendParams,
    ) -> Result<PreviewResult, ApiError> {
        let t = self.resolve(caller, &p)?;
        let count = segments::check_body(&p.body);
        let mut warnings: Vec<Warning> = self
            .refusals(&t, &p, &count)
            .into_iter()
            .map(|e| Warning {
                code: e.code.to_string(),
                message: e.message,
                blocking: true,
            })
            .collect();
        let raw = segments::count(&p.body);
        let cost = self.cost(&t, &raw);
        if raw.segments > 1 && count.is_ok() {
            warnings.push(Warning {
                code: "multi_segment".into(),
                message: format!(
                    "sent as {} segments, billed as {}",
                    raw.segments, raw.segments
                ),
                blocking: false,
            });
        }
        if t.code.kind == CodeKind::Shared
            && p.reclaim
            && let Some(h) = self
                .state
                .holder(&t.code.digits, &t.subscriber)
                .filter(|h| h.tenant != t.tenant)
        {
            warnings.push(Warning {
                code: "reclaim".into(),
                message: format!(
                    "this reply takes {} back on {}: the other business stops receiving its replies (held since {})",
                    t.subscriber, t.code.digits, h.since
                ),
                blocking: false,
            });
        }
        let (spent, limit) = self.spend_of(&t.tenant);
        if limit > 0 && (spent + cost) * 100 >= limit * 80 && (spent + cost) <= limit {
            warnings.push(Warning {
                code: "spend_near_limit".into(),
                message: format!(
                    "after this message {:.0} % of this month's ${:.2} limit is spent",
                    ((spent + cost) as f64 * 100.0 / limit as f64).floor(),
                    limit as f64 / 1e6
                ),
                blocking: false,
            });
        }
        Ok(PreviewResult {
            encoding: match raw.encoding {
                segments::Encoding::Gsm7 => Encoding::Gsm7,
                segments::Encoding::Ucs2 => Encoding::Ucs2,
            },
            segments: raw.segments,
            cost_micros: cost,
            remaining_in_segment: raw.remaining_in_segment,
            warnings,
        })
    }
}
