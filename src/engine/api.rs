//! Protocol calls: reads go to the store's readers, changes to the router. Also the parsing of
//! carrier-neutral inbound JSON, so that every refusal says what was wrong.

use serde::de::DeserializeOwned;
use serde_json::Value;
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

use super::router::{Caller, Command, FlushScope, InboundCommand};
use super::store::{ConversationQuery, StoreRead};
use super::{AuthPrincipal, Engine, IngressError};
use crate::config::Config;
use crate::protocol::{
    ApiError, CodesListParams, CodesListResult, ConversationUpdateParams, ConversationsListParams,
    ConversationsListResult, ErrorCode, HistoryParams, HistoryResult, Role, SendParams, TenantInfo,
    TenantKeyword, TenantsListParams, TenantsListResult, UnattributedAssignParams,
    UnattributedListParams, UnattributedListResult, method,
};

fn params<T: DeserializeOwned>(method: &str, v: Value) -> Result<T, ApiError> {
    let v = if v.is_null() {
        Value::Object(Default::default())
    } else {
        v
    };
    serde_json::from_value(v).map_err(|e| ApiError::invalid_params(format!("{method}: {e}")))
}

fn limit(given: Option<u32>, default: u32) -> Result<usize, ApiError> {
    match given.unwrap_or(default) {
        n @ 1..=200 => Ok(n as usize),
        n => Err(ApiError::invalid_params(format!(
            "limit must be between 1 and 200, got {n}"
        ))),
    }
}

fn caller(who: &AuthPrincipal) -> Caller {
    Caller {
        agent: who.principal.agent.clone(),
        role: who.principal.role,
        tenants: who.principal.tenants.iter().map(|t| t.id.clone()).collect(),
    }
}

async fn read<T: Send + 'static>(
    engine: &Engine,
    f: impl FnOnce(&dyn StoreRead) -> Result<T, super::store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let reader = engine.reader().clone();
    tokio::task::spawn_blocking(move || f(reader.as_ref()))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(format!("reading the store failed: {e}")))
}

/// Conversation summaries are written behind: the router copies the ones a read is about to
/// see into the store first.
async fn flush_summaries(engine: &Engine, scope: FlushScope) -> Result<(), ApiError> {
    let (answer, done) = oneshot::channel();
    if !engine
        .router()
        .send(Command::FlushSummaries { scope, answer })
        .await
    {
        return Err(ApiError::internal("the engine is shutting down"));
    }
    done.await
        .map_err(|_| ApiError::internal("the engine is shutting down"))
}

async fn ask(
    engine: &Engine,
    make: impl FnOnce(oneshot::Sender<Result<Value, ApiError>>) -> Command,
) -> Result<Value, ApiError> {
    let (tx, rx) = oneshot::channel();
    if !engine.router().send(make(tx)).await {
        return Err(ApiError::internal("the engine is shutting down"));
    }
    rx.await
        .map_err(|_| ApiError::internal("the engine is shutting down"))?
}

fn to_value<T: serde::Serialize>(v: T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::internal(e.to_string()))
}

pub(super) async fn call(
    engine: &Engine,
    who: &AuthPrincipal,
    name: &str,
    p: Value,
) -> Result<Value, ApiError> {
    let c = caller(who);
    match name {
        method::CONVERSATIONS_LIST => {
            let p: ConversationsListParams = params(name, p)?;
            if !c.may_use(&p.tenant) {
                return Err(ApiError::forbidden(format!(
                    "you may not read tenant {:?}",
                    p.tenant
                )));
            }
            let limit = limit(p.limit, 50)?;
            let after = match &p.cursor {
                None => None,
                Some(cur) => Some(
                    cur.split_once('~')
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .ok_or_else(|| {
                            ApiError::invalid_params(
                                "cursor: pass back the `next` of the previous page",
                            )
                        })?,
                ),
            };
            let q = ConversationQuery {
                tenant: p.tenant,
                status: p.filter.status.map(|s| s.as_str().to_string()),
                unread: p.filter.unread,
                attribution_lost: p.filter.attribution_lost,
                text: p.filter.query,
                after,
                limit,
            };
            flush_summaries(engine, FlushScope::Tenant(q.tenant.clone())).await?;
            let items = read(engine, move |r| r.conversations(&q)).await?;
            let next = (items.len() == limit)
                .then(|| {
                    items
                        .last()
                        .map(|c| format!("{}~{}", c.last_activity, c.id))
                })
                .flatten();
            to_value(ConversationsListResult { items, next })
        }
        method::CONVERSATIONS_HISTORY => {
            let p: HistoryParams = params(name, p)?;
            let limit = limit(p.limit, 50)?;
            let id = p.conversation.clone();
            let tenant = read(engine, move |r| r.conversation_tenant(&id)).await?;
            if !tenant.is_some_and(|t| c.may_use(&t)) {
                return Err(ApiError::not_found(format!(
                    "no conversation {}",
                    p.conversation
                )));
            }
            let items = read(engine, move |r| {
                r.history(&p.conversation, p.before.as_deref(), limit)
            })
            .await?;
            let next = (items.len() == limit)
                .then(|| items.first().map(|m| m.id.clone()))
                .flatten();
            to_value(HistoryResult { items, next })
        }
        method::CONVERSATIONS_UPDATE => {
            let params: ConversationUpdateParams = params(name, p)?;
            ask(engine, |answer| Command::Update {
                caller: c,
                params,
                answer,
            })
            .await
        }
        method::MESSAGES_SEND | method::MESSAGES_PREVIEW => {
            let params: SendParams = params(name, p)?;
            let preview = name == method::MESSAGES_PREVIEW;
            ask(engine, |answer| Command::Send {
                caller: c,
                params,
                preview,
                answer,
            })
            .await
        }
        method::CODES_LIST => {
            let p: CodesListParams = params(name, p)?;
            if !c.may_use(&p.tenant) {
                return Err(ApiError::forbidden(format!(
                    "you may not read tenant {:?}",
                    p.tenant
                )));
            }
            let config = engine.config();
            let mut items: Vec<_> = config
                .codes
                .iter()
                .filter(|code| {
                    code.tenant.is_none() || code.tenant.as_deref() == Some(p.tenant.as_str())
                })
                .map(|code| crate::protocol::CodeInfo {
                    code: code.code.clone(),
                    country: code.country.clone(),
                    kind: match code.kind {
                        crate::config::CodeKindConfig::Shared => crate::protocol::CodeKind::Shared,
                        crate::config::CodeKindConfig::Dedicated => {
                            crate::protocol::CodeKind::Dedicated
                        }
                    },
                    tenant: code.tenant.clone(),
                    mps: code.mps,
                })
                .collect();
            items.sort_by(|a, b| (&a.country, &a.code).cmp(&(&b.country, &b.code)));
            to_value(CodesListResult { items })
        }
        method::UNATTRIBUTED_LIST => {
            if !matches!(c.role, Role::Ops | Role::Owner) {
                return Err(ApiError::forbidden("only ops sees the unattributed queue"));
            }
            let p: UnattributedListParams = params(name, p)?;
            let limit = limit(p.limit, 50)?;
            let items = read(engine, move |r| r.unattributed(limit)).await?;
            to_value(UnattributedListResult {
                items: items
                    .into_iter()
                    .map(|(message, reason)| crate::protocol::UnattributedItem { message, reason })
                    .collect(),
            })
        }
        method::UNATTRIBUTED_ASSIGN => {
            let params: UnattributedAssignParams = params(name, p)?;
            ask(engine, |answer| Command::Assign {
                caller: c,
                params,
                answer,
            })
            .await
        }
        method::CAMPAIGNS_SEND => {
            let params: crate::protocol::CampaignParams = params(name, p)?;
            ask(engine, |answer| Command::Campaign {
                caller: c,
                params,
                answer,
            })
            .await
        }
        method::CONVERSATIONS_OPT_OUT => {
            let p: crate::protocol::ConversationRef = params(name, p)?;
            ask(engine, |answer| Command::OptOut {
                caller: c,
                conversation: p.conversation,
                answer,
            })
            .await
        }
        method::CONSENT_HISTORY => {
            let p: crate::protocol::ConversationRef = params(name, p)?;
            let id = p.conversation.clone();
            flush_summaries(engine, FlushScope::Conversation(id.clone())).await?;
            let conv = read(engine, move |r| r.conversations_by_id(&id))
                .await?
                .filter(|conv| c.may_use(&conv.tenant))
                .ok_or_else(|| {
                    ApiError::not_found(format!("no conversation {}", p.conversation))
                })?;
            let (tenant, subscriber, code) = (
                conv.tenant.clone(),
                conv.subscriber.clone(),
                conv.code.clone(),
            );
            let (items, blocked) = read(engine, move |r| {
                Ok((
                    r.consent_history(&tenant, &subscriber)?,
                    r.code_blocked(&code, &subscriber)?,
                ))
            })
            .await?;
            to_value(crate::protocol::ConsentHistoryResult {
                consent: conv.consent,
                code_blocked: blocked,
                items: items
                    .into_iter()
                    .map(|e| crate::protocol::ConsentChange {
                        state: e.state,
                        at: e.at,
                        message: e.message,
                        source: e.source,
                    })
                    .collect(),
            })
        }
        method::TENANTS_LIST => {
            let _: TenantsListParams = params(name, p)?;
            // Ops and the owner work across tenants; an agent or a tenant admin learns nothing
            // of the tenants it is not in, not even that they exist.
            let every = matches!(c.role, Role::Ops | Role::Owner);
            let config = engine.config();
            let mut items: Vec<TenantInfo> = config
                .tenants
                .iter()
                .filter(|t| every || c.may_use(&t.id))
                .map(|t| tenant_info(config, t))
                .collect();
            items.sort_by(|a, b| {
                (a.name.to_lowercase(), &a.id).cmp(&(b.name.to_lowercase(), &b.id))
            });
            to_value(TenantsListResult { items })
        }
        other => Err(ApiError::new(
            ErrorCode::UnknownMethod,
            format!("unknown method {other:?}; see docs/protocol.md for the methods of v1"),
        )),
    }
}

/// A tenant of the configuration as `tenants.list` gives it.
fn tenant_info(config: &Config, t: &crate::config::TenantConfig) -> TenantInfo {
    let country_of = |code: &str| {
        config
            .codes
            .iter()
            .find(|c| c.code == code)
            .map(|c| c.country.clone())
    };
    let mut codes: Vec<String> = config
        .codes
        .iter()
        .filter(|c| c.tenant.as_deref() == Some(t.id.as_str()))
        .map(|c| c.code.clone())
        .collect();
    codes.sort();
    let mut keywords: Vec<TenantKeyword> = t
        .keywords
        .iter()
        .map(|k| TenantKeyword {
            code: k.code.clone(),
            word: k.word.clone(),
        })
        .collect();
    keywords.sort();
    let mut countries: Vec<String> = codes
        .iter()
        .chain(keywords.iter().map(|k| &k.code))
        .filter_map(|code| country_of(code))
        .collect();
    countries.sort();
    countries.dedup();
    TenantInfo {
        id: t.id.clone(),
        name: t.name.clone(),
        countries,
        codes,
        keywords,
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct InboundJson {
    id: String,
    from: String,
    to: String,
    body: String,
    #[serde(default)]
    received_at: Option<String>,
}

/// Checks a carrier-neutral inbound request: the carrier, its secret, the JSON, the numbers.
pub(super) fn parse_inbound(
    config: &Config,
    carrier: &str,
    bearer: Option<&str>,
    body: &[u8],
) -> Result<InboundCommand, IngressError> {
    let c = config.carrier(carrier).ok_or_else(|| {
        IngressError::new(
            404,
            "unknown_carrier",
            format!("no carrier {carrier:?} is configured"),
        )
    })?;
    let secret = c.inbound_secret().ok_or_else(|| {
        IngressError::new(
            404,
            "unknown_carrier",
            format!("carrier {carrier:?} has no inbound_secret: its inbound endpoint is off"),
        )
    })?;
    let given = bearer.unwrap_or("");
    if given.is_empty() || !bool::from(given.as_bytes().ct_eq(secret.as_bytes())) {
        return Err(IngressError::new(
            401,
            "unauthorized",
            "expected Authorization: Bearer <the carrier's inbound_secret>",
        ));
    }
    let json: InboundJson = serde_json::from_slice(body).map_err(|e| {
        IngressError::new(
            400,
            "bad_request",
            format!("{e}; expected {{\"id\": carrier message id, \"from\": E.164, \"to\": short code, \"body\": text, \"received_at\": optional RFC 3339}}"),
        )
    })?;
    if json.id.trim().is_empty() || json.id.len() > 128 {
        return Err(IngressError::new(
            400,
            "bad_request",
            "`id`: expected the carrier's message id (1 to 128 characters)",
        ));
    }
    let from = crate::domain::phone::Msisdn::parse(&json.from)
        .map_err(|e| IngressError::new(400, "bad_number", format!("`from`: {e}")))?;
    let code = config
        .codes
        .iter()
        .find(|code| code.code == json.to)
        .ok_or_else(|| {
            IngressError::new(
                400,
                "unknown_code",
                format!("`to`: {:?} is not a short code of this engine", json.to),
            )
        })?;
    if code.carrier != carrier {
        return Err(IngressError::new(
            400,
            "unknown_code",
            format!(
                "`to`: code {} is served by carrier {:?}, not {carrier:?}",
                code.code, code.carrier
            ),
        ));
    }
    if let Some(at) = &json.received_at
        && at.parse::<jiff::Timestamp>().is_err()
    {
        return Err(IngressError::new(
            400,
            "bad_request",
            format!("`received_at`: expected RFC 3339, found {at:?}"),
        ));
    }
    if json.body.len() > 16 * 1024 {
        return Err(IngressError::new(
            400,
            "bad_request",
            "`body`: longer than 16 KiB; no SMS is that long",
        ));
    }
    Ok(InboundCommand {
        carrier: carrier.to_string(),
        carrier_id: json.id,
        from: from.e164().to_string(),
        to: code.code.clone(),
        body: json.body,
        name: None,
    })
}
