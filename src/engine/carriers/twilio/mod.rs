//! A Twilio-compatible provider (`kind = "twilio"`): signed webhooks in (inbound messages and
//! status callbacks), the REST Messages resource out ([`rest`]).
//!
//! Every webhook is checked before anything else happens: `X-Twilio-Signature` must be the
//! base64 HMAC-SHA1, keyed by the auth token, of the URL the provider called
//! (`engine.public_url` + the request's path and query) followed by every POST parameter sorted
//! by name, name then value. A request without it, or with another one, changes nothing.

mod rest;

pub use rest::TwilioCarrier;

use base64::Engine as _;
use subtle::ConstantTimeEq;

use crate::domain::phone::Msisdn;
use crate::engine::router::InboundCommand;
use crate::engine::{Engine, IngressError};
use crate::protocol::MessageStatus;

/// The answer to an inbound message: empty TwiML, no reply (agents answer later).
pub const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#;

/// Twilio's error for a recipient who texted STOP to the sender.
pub const UNSUBSCRIBED_RECIPIENT: u32 = 21610;

/// Which webhook a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwilioHook {
    /// `…/twilio/inbound`: a subscriber's message.
    Inbound,
    /// `…/twilio/status`: a status callback for one of our messages.
    Status,
}

/// The `X-Twilio-Signature` of a request to `url` with form `params`.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = String::with_capacity(url.len() + 64 * sorted.len());
    data.push_str(url);
    for (name, value) in sorted {
        data.push_str(name);
        data.push_str(value);
    }
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        auth_token.as_bytes(),
    );
    let tag = ring::hmac::sign(&key, data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// Whether `given` is the signature of this request (compared in constant time).
pub fn signature_matches(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    given: &str,
) -> bool {
    let expected = signature(auth_token, url, params);
    !given.is_empty() && bool::from(expected.as_bytes().ct_eq(given.trim().as_bytes()))
}

/// The parameters of a form-encoded body, in the order sent.
pub fn form_params(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn param<'p>(params: &'p [(String, String)], names: &[&str]) -> Option<&'p str> {
    names
        .iter()
        .find_map(|n| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str()))
}

fn bad(field: &str, expected: impl std::fmt::Display) -> IngressError {
    IngressError::new(400, "bad_request", format!("`{field}`: {expected}"))
}

fn message_sid(params: &[(String, String)]) -> Result<String, IngressError> {
    let sid = param(params, &["MessageSid", "SmsMessageSid", "SmsSid"]).unwrap_or("");
    if sid.is_empty() || sid.len() > 128 || sid.chars().any(char::is_control) {
        return Err(bad(
            "MessageSid",
            "expected the provider's message id (1 to 128 characters)",
        ));
    }
    Ok(sid.to_string())
}

/// The engine's command for an inbound webhook whose signature was checked.
pub(crate) fn inbound_command(
    config: &crate::config::Config,
    carrier: &str,
    params: &[(String, String)],
) -> Result<InboundCommand, IngressError> {
    let carrier_id = message_sid(params)?;
    let from = param(params, &["From"]).unwrap_or("");
    let from = Msisdn::parse(from).map_err(|e| {
        IngressError::new(
            400,
            "bad_number",
            format!("`From`: {e}; shortbox answers subscribers by phone number"),
        )
    })?;
    let to = param(params, &["To"]).unwrap_or("");
    let code = super::code_for(config, carrier, "To", to)?;
    let body = param(params, &["Body"]).unwrap_or("");
    if body.len() > 16 * 1024 {
        return Err(bad("Body", "longer than 16 KiB; no SMS is that long"));
    }
    Ok(InboundCommand {
        carrier: carrier.to_string(),
        carrier_id,
        from: from.e164().to_string(),
        to: code.code.clone(),
        body: body.to_string(),
        name: None,
    })
}

/// What a status callback says, in the engine's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    pub carrier_id: String,
    pub status: MessageStatus,
    pub error: Option<String>,
    pub opted_out: bool,
}

/// The engine's status for a provider's `MessageStatus`; `None` for states that say nothing
/// about an outbound message (`receiving`, `received`, states added later).
pub fn map_status(status: &str) -> Option<MessageStatus> {
    Some(match status.to_ascii_lowercase().as_str() {
        // The provider has it, in its queue or on the way: what "dispatched" means here.
        "accepted" | "scheduled" | "queued" | "sending" | "sent" => MessageStatus::Dispatched,
        "delivered" | "read" => MessageStatus::Delivered,
        "undelivered" => MessageStatus::Undelivered,
        "failed" | "canceled" => MessageStatus::Failed,
        _ => return None,
    })
}

/// A status callback's fields; `Ok(None)` when its status means nothing to the engine.
pub fn status_update(params: &[(String, String)]) -> Result<Option<StatusUpdate>, IngressError> {
    let carrier_id = message_sid(params)?;
    let given = param(params, &["MessageStatus", "SmsStatus"])
        .ok_or_else(|| bad("MessageStatus", "expected the message's status"))?;
    let Some(status) = map_status(given) else {
        return Ok(None);
    };
    let code = match param(params, &["ErrorCode"]).map(str::trim) {
        None | Some("") => None,
        Some(c) => Some(
            c.parse::<u32>()
                .map_err(|_| bad("ErrorCode", format!("expected a number, found {c:?}")))?,
        ),
    };
    let opted_out = code == Some(UNSUBSCRIBED_RECIPIENT);
    let error = code.map(|c| describe_error(c, param(params, &["ErrorMessage"])));
    let error = match (given.eq_ignore_ascii_case("canceled"), error) {
        (true, None) => Some("canceled before it was sent".to_string()),
        (_, e) => e,
    };
    Ok(Some(StatusUpdate {
        carrier_id,
        status,
        error,
        opted_out,
    }))
}

/// `"<code>: <what it means>"`, with `opted_out:` in front for an unsubscribed recipient, like
/// the engine's own refusal.
pub fn describe_error(code: u32, given: Option<&str>) -> String {
    let known = match code {
        21211 => "invalid 'To' phone number",
        21408 => "no permission to send to this region",
        21610 => "the recipient unsubscribed from this sender (texted STOP)",
        21612 => "the provider cannot route to this number from this sender",
        21614 => "'To' is not a mobile number",
        30001 => "queue overflow",
        30002 => "account suspended",
        30003 => "unreachable destination handset",
        30004 => "message blocked",
        30005 => "unknown destination handset",
        30006 => "landline or unreachable carrier",
        30007 => "filtered by the carrier",
        30008 => "unknown error",
        _ => "",
    };
    let text = match given.map(str::trim).filter(|g| !g.is_empty()) {
        Some(g) => g.to_string(),
        None if !known.is_empty() => known.to_string(),
        None => "provider error".to_string(),
    };
    if code == UNSUBSCRIBED_RECIPIENT {
        format!("opted_out: {code}: {text}")
    } else {
        format!("{code}: {text}")
    }
}

impl Engine {
    /// A Twilio webhook: checks the signature first (403 and nothing else on a mismatch), then
    /// routes the inbound message or applies the status callback. Answers after commit.
    /// `path_and_query` is the request target as received; the signed URL is
    /// `engine.public_url` followed by it.
    pub async fn twilio_webhook(
        &self,
        carrier: &str,
        hook: TwilioHook,
        path_and_query: &str,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<(), IngressError> {
        let twilio = self.carriers().twilio(carrier).ok_or_else(|| {
            IngressError::new(
                404,
                "unknown_carrier",
                format!("no carrier {carrier:?} of kind twilio is configured"),
            )
        })?;
        let public_url = self
            .settings()
            .public_url
            .as_deref()
            .unwrap_or_default()
            .trim_end_matches('/');
        let url = format!("{public_url}{path_and_query}");
        let params = form_params(body);
        if !signature_matches(twilio.auth_token(), &url, &params, signature.unwrap_or("")) {
            let why = if signature.is_none() {
                "missing X-Twilio-Signature"
            } else {
                "X-Twilio-Signature does not match"
            };
            return Err(IngressError::new(
                403,
                "bad_signature",
                format!(
                    "{why}: the request must be signed with the account's auth token for {url} (is engine.public_url the URL the provider calls?)"
                ),
            ));
        }
        match hook {
            TwilioHook::Inbound => {
                let cmd = inbound_command(self.config(), carrier, &params)?;
                self.inbound(cmd).await.map(|_| ())
            }
            TwilioHook::Status => {
                let Some(update) = status_update(&params)? else {
                    tracing::debug!(
                        carrier,
                        "status callback with a status that changes nothing"
                    );
                    return Ok(());
                };
                self.carrier_status(
                    carrier,
                    &update.carrier_id,
                    update.status,
                    update.error,
                    update.opted_out,
                )
                .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn signature_sorts_parameters_by_name() {
        let a = pairs(&[("b", "2"), ("a", "1")]);
        let b = pairs(&[("a", "1"), ("b", "2")]);
        assert_eq!(
            signature("t0ken", "https://x/y", &a),
            signature("t0ken", "https://x/y", &b)
        );
        assert_ne!(
            signature("t0ken", "https://x/y", &a),
            signature("t0ken", "https://x/z", &a)
        );
        assert!(!signature_matches("t0ken", "https://x/y", &a, ""));
    }

    #[test]
    fn statuses_map_forward_and_21610_is_an_opt_out() {
        let cb = |s: &str, e: &str| {
            status_update(&pairs(&[
                ("MessageSid", "SM1"),
                ("MessageStatus", s),
                ("ErrorCode", e),
            ]))
        };
        let table = [
            ("queued", MessageStatus::Dispatched),
            ("sending", MessageStatus::Dispatched),
            ("sent", MessageStatus::Dispatched),
            ("accepted", MessageStatus::Dispatched),
            ("delivered", MessageStatus::Delivered),
            ("read", MessageStatus::Delivered),
            ("undelivered", MessageStatus::Undelivered),
            ("failed", MessageStatus::Failed),
            ("canceled", MessageStatus::Failed),
        ];
        for (given, want) in table {
            assert_eq!(cb(given, "").unwrap().unwrap().status, want, "{given}");
        }
        assert_eq!(cb("receiving", "").unwrap(), None);
        let opted = cb("failed", "21610").unwrap().unwrap();
        assert!(opted.opted_out);
        assert!(opted.error.unwrap().starts_with("opted_out: 21610"));
        let other = cb("undelivered", "30003").unwrap().unwrap();
        assert!(!other.opted_out);
        assert_eq!(
            other.error.as_deref(),
            Some("30003: unreachable destination handset")
        );
        assert_eq!(cb("sent", "x1").unwrap_err().status, 400);
        assert_eq!(
            status_update(&pairs(&[("MessageStatus", "sent")]))
                .unwrap_err()
                .status,
            400
        );
    }
}
