//! Who an inbound message belongs to (rule A2), and how a dispatched message moves
//! attribution on a shared code (rules A1, A3). Generic over tenant ids; the engine looks up
//! the facts (code owner, keyword owner, current attribution) and applies the outcome.

use std::borrow::Cow;
use std::fmt;

use crate::domain::keywords::normalize;

/// Where rule A2 sends an inbound message, and by which of its steps. `'a` is the lifetime of
/// an unknown keyword borrowed from the normalised body (see [`route_inbound_normalized`]);
/// decisions that own it are `'static`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteDecision<'a, T> {
    /// A2.1: the code is dedicated to this tenant.
    Dedicated(T),
    /// A2.2: the first word is this tenant's keyword on the code; attribution moves to it.
    Keyword(T),
    /// A2.3: this tenant holds attribution for (code, subscriber).
    Attribution(T),
    /// A2.4: the ops queue.
    Unattributed(UnattributedReason<'a>),
}

/// Why a message landed in the unattributed queue, for ops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnattributedReason<'a> {
    /// Shared code, and no tenant has written to this subscriber on it.
    NoAttribution,
    /// Shared code, no attribution, and the message is one word that no tenant registered as
    /// a keyword on this code: most likely a keyword meant for another code, or a typo.
    UnknownKeyword { word: Cow<'a, str> },
}

impl UnattributedReason<'_> {
    /// The same reason, owning its word.
    pub fn into_owned(self) -> UnattributedReason<'static> {
        match self {
            UnattributedReason::NoAttribution => UnattributedReason::NoAttribution,
            UnattributedReason::UnknownKeyword { word } => UnattributedReason::UnknownKeyword {
                word: Cow::Owned(word.into_owned()),
            },
        }
    }
}

impl fmt::Display for UnattributedReason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnattributedReason::NoAttribution => f.write_str(
                "no tenant has written to this subscriber on this shared code, and the message \
                 does not start with a keyword registered on it",
            ),
            UnattributedReason::UnknownKeyword { word } => write!(
                f,
                "{word} is not a keyword registered on this shared code, and no tenant has \
                 written to this subscriber on it"
            ),
        }
    }
}

impl<'a, T> RouteDecision<'a, T> {
    /// The tenant the message belongs to, unless unattributed.
    pub fn tenant(&self) -> Option<&T> {
        match self {
            RouteDecision::Dedicated(t)
            | RouteDecision::Keyword(t)
            | RouteDecision::Attribution(t) => Some(t),
            RouteDecision::Unattributed(_) => None,
        }
    }

    /// `dedicated`, `keyword` or `attribution` (as in the protocol's `routed_by`), or `None`.
    pub fn rule(&self) -> Option<&'static str> {
        match self {
            RouteDecision::Dedicated(_) => Some("dedicated"),
            RouteDecision::Keyword(_) => Some("keyword"),
            RouteDecision::Attribution(_) => Some("attribution"),
            RouteDecision::Unattributed(_) => None,
        }
    }

    /// The same decision owning its tenant and its reason, to keep once the facts it borrows
    /// from are gone (e.g. a `&str` tenant of the router's state turned into a `String`).
    pub fn into_owned<U>(self, owned: impl FnOnce(T) -> U) -> RouteDecision<'static, U> {
        match self {
            RouteDecision::Dedicated(t) => RouteDecision::Dedicated(owned(t)),
            RouteDecision::Keyword(t) => RouteDecision::Keyword(owned(t)),
            RouteDecision::Attribution(t) => RouteDecision::Attribution(owned(t)),
            RouteDecision::Unattributed(reason) => RouteDecision::Unattributed(reason.into_owned()),
        }
    }
}

/// Rule A2, in order: the code's dedicated owner, the owner of the message's first word as a
/// keyword on the code, the tenant attributed for (code, subscriber), else unattributed.
pub fn route_inbound<T: Clone>(
    dedicated_owner: Option<&T>,
    keyword_owner: Option<&T>,
    attributed: Option<&T>,
) -> RouteDecision<'static, T> {
    if let Some(t) = dedicated_owner {
        RouteDecision::Dedicated(t.clone())
    } else if let Some(t) = keyword_owner {
        RouteDecision::Keyword(t.clone())
    } else if let Some(t) = attributed {
        RouteDecision::Attribution(t.clone())
    } else {
        RouteDecision::Unattributed(UnattributedReason::NoAttribution)
    }
}

/// [`route_inbound`], with the unattributed reason refined from the message body: a
/// one-word message is reported as an [`UnattributedReason::UnknownKeyword`].
pub fn route_inbound_body<T: Clone>(
    dedicated_owner: Option<&T>,
    keyword_owner: Option<&T>,
    attributed: Option<&T>,
    body: &str,
) -> RouteDecision<'static, T> {
    match route_inbound(dedicated_owner, keyword_owner, attributed) {
        RouteDecision::Unattributed(_) => {
            RouteDecision::Unattributed(unattributed_reason(Cow::Owned(normalize(body))))
        }
        routed => routed,
    }
}

/// [`route_inbound_body`] for a body already passed through
/// [`normalize`](crate::domain::keywords::normalize): an unknown keyword is borrowed from
/// `normalized`, so deciding allocates nothing when `T` is a reference.
pub fn route_inbound_normalized<'n, T: Clone>(
    dedicated_owner: Option<&T>,
    keyword_owner: Option<&T>,
    attributed: Option<&T>,
    normalized: &'n str,
) -> RouteDecision<'n, T> {
    match route_inbound(dedicated_owner, keyword_owner, attributed) {
        RouteDecision::Unattributed(_) => {
            RouteDecision::Unattributed(unattributed_reason(Cow::Borrowed(normalized)))
        }
        RouteDecision::Dedicated(t) => RouteDecision::Dedicated(t),
        RouteDecision::Keyword(t) => RouteDecision::Keyword(t),
        RouteDecision::Attribution(t) => RouteDecision::Attribution(t),
    }
}

/// Why a message no rule routed is unattributed: a one-word message names an unknown keyword.
fn unattributed_reason(words: Cow<'_, str>) -> UnattributedReason<'_> {
    if !words.is_empty() && !words.contains(' ') {
        UnattributedReason::UnknownKeyword { word: words }
    } else {
        UnattributedReason::NoAttribution
    }
}

/// What happens to attribution (code, subscriber) when it is given to a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributionMove<T> {
    /// The tenant already held it.
    Unchanged,
    /// Nobody held it.
    Gained,
    /// Another tenant held it: it gets `attribution.lost` (rule A3), without being told who.
    Shifted { from: T },
}

/// Rule A1: the move caused by `sender`'s message to the subscriber being *dispatched* on a
/// shared code (queued messages move nothing: do not call this for them). The same move
/// applies when a keyword routes a message (A2.2) or ops assigns one (A2.4).
pub fn on_dispatch<T: PartialEq + Clone>(holder: Option<&T>, sender: &T) -> AttributionMove<T> {
    match holder {
        None => AttributionMove::Gained,
        Some(h) if h == sender => AttributionMove::Unchanged,
        Some(h) => AttributionMove::Shifted { from: h.clone() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RouteDecision::*;

    #[test]
    fn route_inbound_table() {
        let (a, b, c) = ("acme", "brisa", "cumbre");
        let unattributed = Unattributed(UnattributedReason::NoAttribution);
        let cases = [
            (
                Some(&a),
                Some(&b),
                Some(&c),
                Dedicated(a),
                "dedicated wins over all",
            ),
            (Some(&a), None, None, Dedicated(a), "dedicated alone"),
            (
                None,
                Some(&b),
                Some(&c),
                Keyword(b),
                "keyword wins over attribution",
            ),
            (
                None,
                Some(&b),
                None,
                Keyword(b),
                "keyword without attribution",
            ),
            (None, None, Some(&c), Attribution(c), "attribution"),
            (None, None, None, unattributed, "nothing: ops queue"),
        ];
        for (dedicated, keyword, attributed, want, why) in cases {
            assert_eq!(route_inbound(dedicated, keyword, attributed), want, "{why}");
        }
    }

    #[test]
    fn unattributed_reason_from_body() {
        let cases = [
            (
                "Pizza!",
                UnattributedReason::UnknownKeyword {
                    word: "PIZZA".into(),
                },
            ),
            (
                "  shoes ",
                UnattributedReason::UnknownKeyword {
                    word: "SHOES".into(),
                },
            ),
            ("hi, is this Acme?", UnattributedReason::NoAttribution),
            ("", UnattributedReason::NoAttribution),
            ("👍", UnattributedReason::NoAttribution),
        ];
        for (body, want) in cases {
            assert_eq!(
                route_inbound_body::<&str>(None, None, None, body),
                Unattributed(want)
            );
        }
        assert_eq!(
            route_inbound_body(None, None, Some(&"acme"), "Pizza"),
            Attribution("acme")
        );
    }

    #[test]
    fn normalized_body_borrows_the_unknown_keyword() {
        let cases = [
            (
                "PIZZA",
                Unattributed(UnattributedReason::UnknownKeyword {
                    word: "PIZZA".into(),
                }),
            ),
            (
                "HI IS THIS ACME",
                Unattributed(UnattributedReason::NoAttribution),
            ),
            ("", Unattributed(UnattributedReason::NoAttribution)),
        ];
        for (normalized, want) in cases {
            let got = route_inbound_normalized::<&str>(None, None, None, normalized);
            assert!(matches!(
                &got,
                Unattributed(UnattributedReason::UnknownKeyword {
                    word: Cow::Borrowed(_)
                }) | Unattributed(UnattributedReason::NoAttribution)
            ));
            assert_eq!(got, want, "{normalized:?}");
        }
        assert_eq!(
            route_inbound_normalized(None, Some(&"brisa"), Some(&"acme"), "PIZZA"),
            Keyword("brisa")
        );
        let owned =
            route_inbound_normalized::<&str>(None, None, None, "PIZZA").into_owned(str::to_owned);
        assert_eq!(
            owned,
            route_inbound_body::<String>(None, None, None, "pizza!")
        );
        assert_eq!(
            Attribution("acme").into_owned(str::to_owned),
            Attribution("acme".to_string())
        );
    }

    #[test]
    fn decision_accessors() {
        assert_eq!(Dedicated("a").tenant(), Some(&"a"));
        assert_eq!(Keyword("a").rule(), Some("keyword"));
        assert_eq!(Attribution("a").rule(), Some("attribution"));
        assert_eq!(Dedicated("a").rule(), Some("dedicated"));
        let u: RouteDecision<&str> = Unattributed(UnattributedReason::NoAttribution);
        assert_eq!((u.tenant(), u.rule()), (None, None));
        let msg = UnattributedReason::UnknownKeyword {
            word: "PIZZA".into(),
        }
        .to_string();
        assert!(msg.starts_with("PIZZA is not a keyword registered on this shared code"));
    }

    #[test]
    fn on_dispatch_table() {
        let cases = [
            (None, "acme", AttributionMove::Gained, "nobody held it"),
            (
                Some("acme"),
                "acme",
                AttributionMove::Unchanged,
                "same tenant again",
            ),
            (
                Some("acme"),
                "brisa",
                AttributionMove::Shifted { from: "acme" },
                "brisa takes it",
            ),
        ];
        for (holder, sender, want, why) in cases {
            assert_eq!(on_dispatch(holder.as_ref(), &sender), want, "{why}");
        }
    }
}
