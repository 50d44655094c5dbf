//! The decision the router makes for each inbound message, before anything is written: the
//! tenant it belongs to and by which step of rule A2 (dedicated code, keyword, attribution,
//! else the unattributed queue), the compliance keyword it is (A7), whether it reads as a
//! request to stop, and the subscriber's consent with that tenant (A6).
//!
//! It only reads the router's [`State`] and borrows from it, so it allocates nothing (B7: ≤ 1 µs,
//! no allocation); the router then applies it — storing the message, moving attribution,
//! answering a keyword — which is where the owned strings are made. The body comes normalised
//! once ([`Normalized`](crate::domain::keywords::Normalized)) and every rule reads that.

use crate::domain::keywords::{KeywordClass, first_word_normalized, opt_out_intent_normalized};
use crate::domain::routing::{RouteDecision, route_inbound_normalized};
use crate::engine::state::{CodeState, State};
use crate::protocol::{CodeKind, ConsentState};

/// Where rule A2 sends a message, borrowing the tenant from the state and an unknown keyword
/// from the normalised body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundRoute<'a> {
    pub decision: RouteDecision<'a, &'a str>,
    /// The dispatched outbound message behind the attribution, when the message routed by
    /// attribution and one is known ("why did this land here?").
    pub evidence: Option<&'a str>,
}

/// What the compliance rules make of a message, for the tenant it routed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboundCompliance {
    /// The compliance keyword the whole message is, in the lists in force for the tenant on the
    /// code's country; the tenant's own keyword on the code, sent alone, is an opt-in.
    pub class: Option<KeywordClass>,
    /// That own keyword asks for double opt-in.
    pub double_opt_in: bool,
    /// Free text that asks to stop without being a keyword: flagged for an agent.
    pub opt_out_intent: bool,
    /// The subscriber's consent with the tenant (`none` when unattributed).
    pub consent: ConsentState,
}

/// The whole decision for one inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundDecision<'a> {
    pub route: InboundRoute<'a>,
    pub compliance: InboundCompliance,
}

impl State {
    /// Decides a message from `from` to `code` whose body normalises to `normalized`.
    pub fn decide_inbound<'a>(
        &'a self,
        code: &'a CodeState,
        from: &str,
        normalized: &'a str,
    ) -> InboundDecision<'a> {
        let route = self.route_inbound(code, from, normalized);
        let compliance =
            self.inbound_compliance(route.decision.tenant().copied(), code, from, normalized);
        InboundDecision { route, compliance }
    }

    /// Rule A2 alone: the code's dedicated owner, else the owner of the first word as a keyword
    /// on the code, else the tenant attributed for (code, subscriber), else unattributed.
    pub fn route_inbound<'a>(
        &'a self,
        code: &'a CodeState,
        from: &str,
        normalized: &'a str,
    ) -> InboundRoute<'a> {
        let dedicated = match code.kind {
            CodeKind::Dedicated => code.tenant.as_deref(),
            CodeKind::Shared => None,
        };
        // Each step is looked up only when the ones before it did not decide.
        let keyword = match dedicated {
            Some(_) => None,
            None => first_word_normalized(normalized)
                .and_then(|word| self.keyword(&code.digits, word))
                .map(|k| k.tenant.as_str()),
        };
        let holder = match (dedicated, keyword) {
            (None, None) => self.holder(&code.digits, from),
            _ => None,
        };
        let decision = route_inbound_normalized(
            dedicated.as_ref(),
            keyword.as_ref(),
            holder.map(|h| h.tenant.as_str()).as_ref(),
            normalized,
        );
        let evidence = match decision {
            RouteDecision::Attribution(_) => holder.and_then(|h| h.message.as_deref()),
            _ => None,
        };
        InboundRoute { decision, evidence }
    }

    /// Rules A6 and A7 for a message routed to `tenant` (None: unattributed) on `code`.
    pub fn inbound_compliance(
        &self,
        tenant: Option<&str>,
        code: &CodeState,
        from: &str,
        normalized: &str,
    ) -> InboundCompliance {
        let listed = self
            .keywords_in_force(tenant, &code.country)
            .classify_normalized(normalized);
        let own_keyword = self
            .keyword(&code.digits, normalized)
            .filter(|k| Some(k.tenant.as_str()) == tenant);
        InboundCompliance {
            class: listed.or(own_keyword.map(|_| KeywordClass::OptIn)),
            double_opt_in: own_keyword.is_some_and(|k| k.double_opt_in),
            opt_out_intent: listed.is_none() && opt_out_intent_normalized(normalized),
            consent: tenant.map_or(ConsentState::None, |t| self.consent_of(t, from)),
        }
    }
}
