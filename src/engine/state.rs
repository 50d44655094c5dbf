//! The router's in-memory state, kept in step with the store: codes, keywords, tenants, prices
//! (from the configuration) and attribution, conversations, idempotency keys, pending outbound
//! messages, spend and stream heads (from the store). Hot lookups never touch the disk.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use crate::config::{CodeKindConfig, Config, TenantConfig};
use crate::domain::keywords::{KeywordClass, KeywordLists};
use crate::domain::spend::usd_to_micros;
use crate::engine::store::{ConversationExtra, Snapshot};
use crate::protocol::{
    Attribution, AttributionState, CodeInfo, CodeKind, ConsentState, Conversation, Message,
    TenantRef,
};

#[derive(Debug, Clone)]
pub struct CodeState {
    pub digits: String,
    pub country: String,
    pub kind: CodeKind,
    pub tenant: Option<String>,
    pub mps: u32,
    pub carrier: String,
}

impl CodeState {
    pub fn info(&self) -> CodeInfo {
        CodeInfo {
            code: self.digits.clone(),
            country: self.country.clone(),
            kind: self.kind,
            tenant: self.tenant.clone(),
            mps: self.mps,
        }
    }

    /// A tenant may send on shared codes and on its own dedicated codes.
    pub fn usable_by(&self, tenant: &str) -> bool {
        match self.kind {
            CodeKind::Shared => true,
            CodeKind::Dedicated => self.tenant.as_deref() == Some(tenant),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TenantState {
    pub config: TenantConfig,
    pub limit_micros: i64,
}

impl TenantState {
    pub fn reference(&self) -> TenantRef {
        TenantRef {
            id: self.config.id.clone(),
            name: self.config.name.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct KeywordOwner {
    pub tenant: String,
    pub double_opt_in: bool,
}

/// Who owns replies on a shared code for one subscriber (rule A1).
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub tenant: String,
    pub since: String,
    /// The dispatched outbound message behind it (None when a keyword or ops set it).
    pub message: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ConvState {
    pub conv: Conversation,
    pub extra: ConversationExtra,
}

#[derive(Debug, Clone)]
pub struct Idempotent {
    pub fingerprint: String,
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub struct Spend {
    pub month: String,
    pub spent_micros: i64,
    /// Highest notice already raised this month (0, 80 or 100).
    pub notified: u32,
}

#[derive(Debug, Clone)]
pub struct StreamHead {
    pub epoch: String,
    pub head: u64,
}

#[derive(Debug, Default)]
pub struct State {
    pub tenants: HashMap<String, TenantState>,
    pub codes: HashMap<String, CodeState>,
    /// (code, WORD) → owner.
    pub keywords: HashMap<(String, String), KeywordOwner>,
    /// Price per segment by subscriber country, micro-dollars.
    pub prices: HashMap<String, i64>,
    /// (code, subscriber) → holder.
    pub attribution: HashMap<(String, String), Holder>,
    pub conversations: HashMap<String, ConvState>,
    /// (tenant, subscriber) → conversation id.
    pub conversation_index: HashMap<(String, String), String>,
    pub subscribers: HashSet<String>,
    /// (tenant, client_msg_id) → first result.
    pub idempotency: HashMap<(String, String), Idempotent>,
    /// Outbound messages not yet in a terminal state.
    pub pending_out: HashMap<String, Message>,
    pub spend: HashMap<String, Spend>,
    pub streams: HashMap<String, StreamHead>,
    /// (tenant, subscriber) → consent; absent means `none`.
    pub consent: HashMap<(String, String), ConsentState>,
    /// (code, subscriber) blocked after an opt-out on that code.
    pub code_blocks: HashSet<(String, String)>,
    /// Compliance keyword lists by code country (standard lists where a country has none).
    pub keyword_lists: HashMap<String, KeywordLists>,
    /// (tenant, country) → lists with the tenant's own words, for tenants that have some.
    pub tenant_keyword_lists: HashMap<(String, String), KeywordLists>,
    pub default_keywords: KeywordLists,
    /// Carrier ids of recent inbound messages (a carrier's redelivery is answered from here).
    pub recent_inbound: crate::engine::recent_inbound::RecentInbound,
}

impl State {
    /// Builds the state from the configuration and a snapshot of the store.
    pub fn new(config: &Config, snap: Snapshot) -> State {
        let mut s = State::default();
        for t in &config.tenants {
            s.tenants.insert(
                t.id.clone(),
                TenantState {
                    config: t.clone(),
                    limit_micros: usd_to_micros(t.monthly_spend_limit_usd),
                },
            );
            for k in &t.keywords {
                s.keywords.insert(
                    (k.code.clone(), crate::domain::keywords::normalize(&k.word)),
                    KeywordOwner {
                        tenant: t.id.clone(),
                        double_opt_in: k.double_opt_in,
                    },
                );
            }
        }
        for c in &config.codes {
            s.codes.insert(
                c.code.clone(),
                CodeState {
                    digits: c.code.clone(),
                    country: c.country.clone(),
                    kind: match c.kind {
                        CodeKindConfig::Shared => CodeKind::Shared,
                        CodeKindConfig::Dedicated => CodeKind::Dedicated,
                    },
                    tenant: c.tenant.clone(),
                    mps: c.mps,
                    carrier: c.carrier.clone(),
                },
            );
        }
        for (country, usd) in &config.pricing {
            s.prices.insert(country.clone(), usd_to_micros(*usd));
        }
        // Sized once: growing these maps entry by entry moves every (large) entry again at
        // each doubling, into fresh memory the kernel zeroes first (about half of a warm
        // start's CPU was that zeroing, in a profile).
        s.attribution.reserve(snap.attribution.len());
        s.conversations.reserve(snap.conversations.len());
        s.conversation_index.reserve(snap.conversations.len());
        s.subscribers.reserve(snap.subscribers.len());
        s.recent_inbound.reserve(snap.recent_inbound.len());
        for (code, subscriber, tenant, since, message) in snap.attribution {
            s.attribution.insert(
                (code, subscriber),
                Holder {
                    tenant,
                    since,
                    message,
                },
            );
        }
        for (conv, extra) in snap.conversations {
            s.conversation_index.insert(
                (conv.tenant.clone(), conv.subscriber.clone()),
                conv.id.clone(),
            );
            s.conversations
                .insert(conv.id.clone(), ConvState { conv, extra });
        }
        s.subscribers
            .extend(snap.subscribers.into_iter().map(|(e164, _)| e164));
        for (id, carrier, carrier_id) in snap.recent_inbound {
            s.recent_inbound.insert(&carrier, &carrier_id, &id);
        }
        for (tenant, key, fingerprint, message, _) in snap.idempotency {
            s.idempotency.insert(
                (tenant, key),
                Idempotent {
                    fingerprint,
                    message,
                },
            );
        }
        for (m, _) in snap.pending_out {
            s.pending_out.insert(m.id.clone(), m);
        }
        for (tenant, month, spent_micros, notified) in snap.spend {
            let keep = s.spend.get(&tenant).is_none_or(|cur| cur.month < month);
            if keep {
                s.spend.insert(
                    tenant,
                    Spend {
                        month,
                        spent_micros,
                        notified,
                    },
                );
            }
        }
        for (stream, epoch, head) in snap.streams {
            s.streams.insert(stream, StreamHead { epoch, head });
        }
        for (tenant, subscriber, state) in snap.consent {
            s.consent.insert((tenant, subscriber), state);
        }
        s.code_blocks.extend(snap.code_blocks);
        for (country, extra) in &config.compliance.keywords {
            let mut lists = KeywordLists::default();
            extend_lists(&mut lists, extra);
            s.keyword_lists.insert(country.clone(), lists);
        }
        // A tenant's own words apply on top of each of its code countries' lists.
        for t in &config.tenants {
            let extra = &t.compliance_keywords;
            if extra.opt_out.is_empty() && extra.opt_in.is_empty() && extra.help.is_empty() {
                continue;
            }
            let countries: HashSet<&str> =
                config.codes.iter().map(|c| c.country.as_str()).collect();
            for country in countries {
                let mut lists = s.keywords_for(country).clone();
                extend_lists(&mut lists, extra);
                s.tenant_keyword_lists
                    .insert((t.id.clone(), country.to_string()), lists);
            }
        }
        s
    }

    /// The compliance words in force for a message on a code of `country`, routed to `tenant`.
    pub fn keywords_in_force(&self, tenant: Option<&str>, country: &str) -> &KeywordLists {
        tenant
            .and_then(|t| get_pair(&self.tenant_keyword_lists, t, country))
            .unwrap_or_else(|| self.keywords_for(country))
    }

    /// The tenant that registered `word` (normalised) as a keyword on `code`.
    pub fn keyword(&self, code: &str, word: &str) -> Option<&KeywordOwner> {
        get_pair(&self.keywords, code, word)
    }

    pub fn consent_of(&self, tenant: &str, subscriber: &str) -> ConsentState {
        get_pair(&self.consent, tenant, subscriber)
            .copied()
            .unwrap_or(ConsentState::None)
    }

    pub fn blocked(&self, code: &str, subscriber: &str) -> bool {
        self.code_blocks
            .contains(&(code, subscriber) as &dyn PairKey)
    }

    /// Nothing may reach `subscriber` on `code` from `tenant` (rule A6, first point).
    pub fn opted_out(&self, tenant: &str, code: &str, subscriber: &str) -> bool {
        self.blocked(code, subscriber)
            || self.consent_of(tenant, subscriber) == ConsentState::OptedOut
    }

    pub fn keywords_for(&self, country: &str) -> &KeywordLists {
        self.keyword_lists
            .get(country)
            .unwrap_or(&self.default_keywords)
    }

    pub fn tenant_ref(&self, id: &str) -> Option<TenantRef> {
        self.tenants.get(id).map(TenantState::reference)
    }

    pub fn conversation_id(&self, tenant: &str, subscriber: &str) -> Option<&String> {
        get_pair(&self.conversation_index, tenant, subscriber)
    }

    pub fn holder(&self, code: &str, subscriber: &str) -> Option<&Holder> {
        get_pair(&self.attribution, code, subscriber)
    }

    /// What `tenant` sees of attribution for `subscriber` on `code`.
    pub fn attribution_view(&self, tenant: &str, subscriber: &str, code: &str) -> Attribution {
        match self.codes.get(code) {
            Some(c) if c.kind == CodeKind::Dedicated => Attribution {
                state: AttributionState::Dedicated,
                since: None,
            },
            _ => match self.holder(code, subscriber) {
                Some(h) if h.tenant == tenant => Attribution {
                    state: AttributionState::Held,
                    since: Some(h.since.clone()),
                },
                Some(h) => Attribution {
                    state: AttributionState::Lost,
                    since: Some(h.since.clone()),
                },
                None => Attribution {
                    state: AttributionState::None,
                    since: None,
                },
            },
        }
    }

    /// A new conversation of `tenant` with `subscriber` on `code`.
    pub fn new_conversation(
        &self,
        id: String,
        tenant: &str,
        subscriber: &str,
        code: &CodeState,
        now: &str,
    ) -> Conversation {
        Conversation {
            id,
            tenant: tenant.to_string(),
            subscriber: subscriber.to_string(),
            subscriber_name: None,
            code: code.digits.clone(),
            code_kind: code.kind,
            country: code.country.clone(),
            status: crate::protocol::ConversationStatus::Open,
            snoozed_until: None,
            assignee: None,
            unread: 0,
            last_message: None,
            last_activity: now.to_string(),
            attribution: self.attribution_view(tenant, subscriber, &code.digits),
            consent: self.consent_of(tenant, subscriber),
            opt_out_intent: false,
        }
    }

    /// Dedicated codes of `tenant` in `country`: the alternatives to a shifted shared code.
    pub fn dedicated_codes(&self, tenant: &str, country: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .codes
            .values()
            .filter(|c| {
                c.kind == CodeKind::Dedicated
                    && c.tenant.as_deref() == Some(tenant)
                    && c.country == country
            })
            .map(|c| c.digits.clone())
            .collect();
        v.sort();
        v
    }

    pub fn price(&self, country: &str) -> i64 {
        self.prices.get(country).copied().unwrap_or(0)
    }
}

/// A key of the `(String, String)` maps above, seen as two `&str`: what lets them be looked up
/// by borrowed strings (`map.get(pair(code, subscriber))`) instead of building an owned tuple,
/// two allocations per lookup on the router's hot path. It hashes and compares exactly as the
/// tuple does (each string in turn), as `Borrow` requires.
pub trait PairKey {
    fn first(&self) -> &str;
    fn second(&self) -> &str;
}

impl PairKey for (String, String) {
    fn first(&self) -> &str {
        &self.0
    }
    fn second(&self) -> &str {
        &self.1
    }
}

impl PairKey for (&str, &str) {
    fn first(&self) -> &str {
        self.0
    }
    fn second(&self) -> &str {
        self.1
    }
}

impl<'a> Borrow<dyn PairKey + 'a> for (String, String) {
    fn borrow(&self) -> &(dyn PairKey + 'a) {
        self
    }
}

impl Hash for dyn PairKey + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.first().hash(state);
        self.second().hash(state);
    }
}

impl PartialEq for dyn PairKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.first() == other.first() && self.second() == other.second()
    }
}

impl Eq for dyn PairKey + '_ {}

/// The value of `(a, b)` in a `(String, String)`-keyed map, looked up without allocating.
pub fn get_pair<'m, V>(map: &'m HashMap<(String, String), V>, a: &str, b: &str) -> Option<&'m V> {
    map.get(&(a, b) as &dyn PairKey)
}

fn extend_lists(lists: &mut KeywordLists, extra: &crate::config::CountryKeywords) {
    for (class, words) in [
        (KeywordClass::OptOut, &extra.opt_out),
        (KeywordClass::OptIn, &extra.opt_in),
        (KeywordClass::Help, &extra.help),
    ] {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        lists.extend(class, &words);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_of_str_find_what_owned_tuples_find() {
        let key = |a: &str, b: &str| (a.to_string(), b.to_string());
        let map: HashMap<(String, String), u32> = [
            (key("50000", "+14155550100"), 1),
            (key("ab", "c"), 2),
            (key("a", "bc"), 3),
            (key("", "x"), 4),
        ]
        .into_iter()
        .collect();
        for ((a, b), want) in &map {
            assert_eq!(get_pair(&map, a, b), Some(want), "{a:?} {b:?}");
        }
        assert_eq!(get_pair(&map, "50000", "+14155550101"), None);
        assert_eq!(get_pair(&map, "abc", ""), None);
        assert_eq!(get_pair(&map, "x", ""), None);
        let set: HashSet<(String, String)> = map.into_keys().collect();
        assert!(set.contains(&("ab", "c") as &dyn PairKey));
        assert!(!set.contains(&("a", "b") as &dyn PairKey));
    }
}
