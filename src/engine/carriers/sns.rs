//! AWS two-way SMS delivered by SNS (`kind = "sns"`): `POST /v1/carriers/{id}/sns` takes the
//! SNS envelope, and nothing happens before these checks pass, in this order:
//!
//! 1. the envelope is JSON with the fields its `Type` needs;
//! 2. its `TopicArn` is one of `allowed_topics` (so no certificate is ever fetched for a
//!    stranger's topic);
//! 3. `SigningCertURL` is `https://`, has no user info, ends in `.pem`, and its host (with
//!    `:port` if any) matches `cert_host_pattern` (default `sns.*.amazonaws.com`);
//! 4. the `Signature` (base64, RSA PKCS#1 v1.5; SHA-1 for `SignatureVersion` 1, SHA-256 for 2)
//!    verifies over the canonical string AWS defines for the `Type`, against the configured
//!    `trusted_certs` if any, else against the certificate fetched over HTTPS from that URL
//!    (cached by URL).
//!
//! Then: a `SubscriptionConfirmation` is confirmed by a GET of its `SubscribeURL`, which must
//! pass the same host check; a `Notification` carries the Pinpoint / End User Messaging payload
//! (`originationNumber`, `destinationNumber`, `messageBody`, `inboundMessageId`, …) and is
//! routed, deduplicated on the SNS `MessageId` (SNS redelivers with the same id).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{AlgorithmIdentifier, CertificateDer, InvalidSignature};
use serde::Deserialize;

use crate::config::Config;
use crate::domain::phone::Msisdn;
use crate::engine::router::InboundCommand;
use crate::engine::{Engine, InboundAck, IngressError};

/// Certificates kept by URL; AWS signs with one certificate per region for months.
const CACHE_MAX: usize = 32;
/// Largest certificate file accepted.
const MAX_CERT: usize = 64 * 1024;
/// Time allowed for a certificate fetch or a subscription confirmation.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The SNS envelope (JSON, whatever its `Content-Type` says). Unknown fields are accepted.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "MessageId")]
    pub message_id: String,
    #[serde(rename = "TopicArn")]
    pub topic_arn: String,
    #[serde(rename = "Subject", default)]
    pub subject: Option<String>,
    #[serde(rename = "Message")]
    pub message: String,
    #[serde(rename = "Timestamp")]
    pub timestamp: String,
    #[serde(rename = "SignatureVersion")]
    pub signature_version: String,
    #[serde(rename = "Signature")]
    pub signature: String,
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: String,
    #[serde(rename = "SubscribeURL", default)]
    pub subscribe_url: Option<String>,
    #[serde(rename = "Token", default)]
    pub token: Option<String>,
}

/// The inbound SMS inside a `Notification`'s `Message`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PinpointInbound {
    pub origination_number: String,
    pub destination_number: String,
    #[serde(default)]
    pub message_body: String,
    #[serde(default)]
    pub inbound_message_id: Option<String>,
    #[serde(default)]
    pub message_keyword: Option<String>,
}

/// What an SNS request came to.
#[derive(Debug, Clone, PartialEq)]
pub enum SnsOutcome {
    /// An inbound message, committed.
    Inbound(InboundAck),
    /// The subscription to the topic is confirmed.
    Confirmed,
    /// A verified message that asks nothing of the engine (`UnsubscribeConfirmation`).
    Noted,
}

fn forbidden(code: &'static str, message: impl Into<String>) -> IngressError {
    IngressError::new(403, code, message)
}

fn bad(message: impl Into<String>) -> IngressError {
    IngressError::new(400, "bad_request", message)
}

/// The string AWS signs for this envelope: `name\nvalue\n` for each signed field, in this
/// order, `Subject` only when the notification has one.
pub fn string_to_sign(e: &Envelope) -> Result<String, IngressError> {
    let mut fields: Vec<(&str, &str)> = vec![("Message", &e.message), ("MessageId", &e.message_id)];
    match e.kind.as_str() {
        "Notification" => {
            if let Some(subject) = &e.subject {
                fields.push(("Subject", subject));
            }
            fields.push(("Timestamp", &e.timestamp));
            fields.push(("TopicArn", &e.topic_arn));
            fields.push(("Type", &e.kind));
        }
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
            let url = e
                .subscribe_url
                .as_deref()
                .ok_or_else(|| bad(format!("`SubscribeURL`: a {} carries it", e.kind)))?;
            let token = e
                .token
                .as_deref()
                .ok_or_else(|| bad(format!("`Token`: a {} carries it", e.kind)))?;
            fields.push(("SubscribeURL", url));
            fields.push(("Timestamp", &e.timestamp));
            fields.push(("Token", token));
            fields.push(("TopicArn", &e.topic_arn));
            fields.push(("Type", &e.kind));
        }
        other => {
            return Err(bad(format!(
                "`Type`: expected Notification, SubscriptionConfirmation or UnsubscribeConfirmation, found {other:?}"
            )));
        }
    }
    let mut text = String::new();
    for (name, value) in fields {
        text.push_str(name);
        text.push('\n');
        text.push_str(value);
        text.push('\n');
    }
    Ok(text)
}

/// A host pattern: labels separated by `.`, an optional `:port`; `*` stands for one or more
/// letters, digits or `-` (never a `.` or `:`). Case-insensitive, whole-string match.
#[derive(Debug, Clone)]
pub struct HostPattern(String);

impl HostPattern {
    pub fn new(pattern: &str) -> HostPattern {
        HostPattern(pattern.to_ascii_lowercase())
    }

    pub fn matches(&self, authority: &str) -> bool {
        glob(self.0.as_bytes(), authority.to_ascii_lowercase().as_bytes())
    }

    /// Checks that `url` is HTTPS to an allowed host; `field` names it in the refusal.
    pub fn check_url(&self, field: &str, url: &str) -> Result<reqwest::Url, IngressError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| forbidden("bad_certificate_url", format!("`{field}`: {e}")))?;
        if parsed.scheme() != "https" {
            return Err(forbidden(
                "bad_certificate_url",
                format!("`{field}`: only https:// is accepted, found {url:?}"),
            ));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(forbidden(
                "bad_certificate_url",
                format!("`{field}`: a URL with user info is not accepted"),
            ));
        }
        let host = parsed.host_str().unwrap_or_default();
        let authority = match parsed.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        if !self.matches(&authority) {
            return Err(forbidden(
                "bad_certificate_url",
                format!(
                    "`{field}`: host {authority:?} is not allowed (cert_host_pattern is {:?})",
                    self.0
                ),
            ));
        }
        Ok(parsed)
    }
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => {
            let label = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-';
            let run = text.iter().take_while(|b| label(b)).count();
            (1..=run).any(|n| glob(rest, &text[n..]))
        }
        Some((p, rest)) => text.first() == Some(p) && glob(rest, &text[1..]),
    }
}

/// RSA PKCS#1 v1.5 over an `rsaEncryption` key, with ring doing the arithmetic; the
/// certificate parsing is webpki's.
#[derive(Debug)]
struct RsaPkcs1 {
    params: &'static ring::signature::RsaParameters,
    signature_alg: AlgorithmIdentifier,
}

// sha1WithRSAEncryption (1.2.840.113549.1.1.5) and sha256WithRSAEncryption (…1.11), each with
// NULL parameters: the AlgorithmIdentifier contents webpki compares.
const SHA1_WITH_RSA: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05, 0x00,
];

impl rustls_pki_types::SignatureVerificationAlgorithm for RsaPkcs1 {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        ring::signature::UnparsedPublicKey::new(self.params, public_key)
            .verify(message, signature)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        rustls_pki_types::alg_id::RSA_ENCRYPTION
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.signature_alg
    }

    fn fips(&self) -> bool {
        false
    }
}

fn algorithm(version: &str) -> Result<RsaPkcs1, IngressError> {
    match version {
        "1" => Ok(RsaPkcs1 {
            params: &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            signature_alg: AlgorithmIdentifier::from_slice(SHA1_WITH_RSA),
        }),
        "2" => Ok(RsaPkcs1 {
            params: &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            signature_alg: rustls_pki_types::alg_id::RSA_PKCS1_SHA256,
        }),
        other => Err(forbidden(
            "bad_signature",
            format!("`SignatureVersion`: expected \"1\" or \"2\", found {other:?}"),
        )),
    }
}

/// Whether `signature` over `text` verifies against `cert`.
pub fn verifies(cert: &CertificateDer<'_>, version: &str, text: &[u8], signature: &[u8]) -> bool {
    let Ok(alg) = algorithm(version) else {
        return false;
    };
    let Ok(ee) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    ee.verify_signature(&alg, text, signature).is_ok()
}

pub struct SnsCarrier {
    id: String,
    topics: Vec<String>,
    hosts: HostPattern,
    trusted: Vec<CertificateDer<'static>>,
    http: reqwest::Client,
    cache: Mutex<HashMap<String, Arc<CertificateDer<'static>>>>,
}

impl SnsCarrier {
    /// The connection of `config.carriers[index]` (an sns carrier whose settings were
    /// validated); reads its certificate files.
    pub fn from_config(config: &Config, index: usize) -> Result<SnsCarrier, String> {
        let c = &config.carriers[index];
        let key = |k: &str| format!("{}: key `carriers[{index}].sns.{k}`", config.source);
        let s = c
            .sns
            .as_ref()
            .ok_or_else(|| format!("{}: expected the sns settings", key("")))?;
        let mut trusted = Vec::new();
        for (j, path) in s.trusted_certs.iter().enumerate() {
            let certs = super::https::read_pem_certs(path)
                .map_err(|e| format!("{}: {e}", key(&format!("trusted_certs[{j}]"))))?;
            for cert in &certs {
                webpki::EndEntityCert::try_from(cert).map_err(|e| {
                    format!(
                        "{}: {} is not a usable certificate: {e}",
                        key(&format!("trusted_certs[{j}]")),
                        path.display()
                    )
                })?;
            }
            trusted.extend(certs);
        }
        let mut roots = Vec::new();
        for (j, path) in s.ca_certs.iter().enumerate() {
            roots.extend(
                super::https::read_pem_certs(path)
                    .map_err(|e| format!("{}: {e}", key(&format!("ca_certs[{j}]"))))?,
            );
        }
        let http = super::https::client(roots, FETCH_TIMEOUT)
            .map_err(|e| format!("{}: {e}", key("ca_certs")))?;
        Ok(SnsCarrier {
            id: c.id.clone(),
            topics: s.allowed_topics.clone(),
            hosts: HostPattern::new(&s.cert_host_pattern),
            trusted,
            http,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Checks an envelope: topic, certificate URL, signature. See the module documentation.
    pub async fn verify(&self, e: &Envelope) -> Result<(), IngressError> {
        if !self.topics.contains(&e.topic_arn) {
            return Err(forbidden(
                "unknown_topic",
                format!(
                    "`TopicArn`: {:?} is not in sns.allowed_topics of carrier {:?}",
                    e.topic_arn, self.id
                ),
            ));
        }
        let text = string_to_sign(e)?;
        algorithm(&e.signature_version)?;
        let url = self
            .hosts
            .check_url("SigningCertURL", &e.signing_cert_url)?;
        if !url.path().ends_with(".pem") {
            return Err(forbidden(
                "bad_certificate_url",
                "`SigningCertURL`: expected the URL of a .pem certificate",
            ));
        }
        let signature = base64::engine::general_purpose::STANDARD
            .decode(e.signature.trim())
            .map_err(|_| forbidden("bad_signature", "`Signature`: not base64"))?;
        let ok = if self.trusted.is_empty() {
            let cert = self.certificate(url).await?;
            verifies(&cert, &e.signature_version, text.as_bytes(), &signature)
        } else {
            self.trusted
                .iter()
                .any(|c| verifies(c, &e.signature_version, text.as_bytes(), &signature))
        };
        if !ok {
            return Err(forbidden(
                "bad_signature",
                "`Signature` does not verify against the signing certificate",
            ));
        }
        Ok(())
    }

    /// The certificate at `url`, from the cache or fetched over HTTPS.
    async fn certificate(
        &self,
        url: reqwest::Url,
    ) -> Result<Arc<CertificateDer<'static>>, IngressError> {
        let key = url.as_str().to_string();
        if let Some(c) = self.lock_cache().get(&key) {
            return Ok(c.clone());
        }
        let unavailable = |why: String| {
            IngressError::new(
                503,
                "certificate_unavailable",
                format!("cannot fetch the signing certificate {key}: {why}"),
            )
        };
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("HTTP {}", response.status().as_u16())));
        }
        let pem = super::https::body_limited(response, MAX_CERT)
            .await
            .map_err(unavailable)?;
        let cert = CertificateDer::pem_slice_iter(&pem)
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| unavailable("the answer is not a PEM certificate".into()))?;
        webpki::EndEntityCert::try_from(&cert)
            .map_err(|e| unavailable(format!("not a usable certificate: {e}")))?;
        let cert = Arc::new(cert);
        let mut cache = self.lock_cache();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, cert.clone());
        Ok(cert)
    }

    fn lock_cache(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Arc<CertificateDer<'static>>>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Confirms the subscription of a verified `SubscriptionConfirmation`.
    async fn confirm(&self, e: &Envelope) -> Result<(), IngressError> {
        let url = e.subscribe_url.as_deref().unwrap_or_default();
        let url = self.hosts.check_url("SubscribeURL", url)?;
        let failed = |why: String| {
            IngressError::new(
                502,
                "confirmation_failed",
                format!(
                    "confirming the subscription to {} failed: {why}",
                    e.topic_arn
                ),
            )
        };
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|err| failed(err.to_string()))?;
        if !response.status().is_success() {
            return Err(failed(format!("HTTP {}", response.status().as_u16())));
        }
        tracing::info!(carrier = %self.id, topic = %e.topic_arn, "SNS subscription confirmed");
        Ok(())
    }
}

/// Parses the envelope JSON.
pub fn envelope(body: &[u8]) -> Result<Envelope, IngressError> {
    serde_json::from_slice(body).map_err(|e| {
        bad(format!(
            "{e}; expected an SNS message (Type, MessageId, TopicArn, Message, Timestamp, SignatureVersion, Signature, SigningCertURL; raw message delivery must be off)"
        ))
    })
}

/// The engine's command for a verified notification.
pub(crate) fn inbound_command(
    config: &Config,
    carrier: &str,
    e: &Envelope,
) -> Result<InboundCommand, IngressError> {
    let sms: PinpointInbound = serde_json::from_str(&e.message).map_err(|err| {
        bad(format!(
            "`Message`: {err}; expected the two-way SMS payload (originationNumber, destinationNumber, messageBody, inboundMessageId)"
        ))
    })?;
    let from = Msisdn::parse(&sms.origination_number).map_err(|err| {
        IngressError::new(
            400,
            "bad_number",
            format!("`originationNumber`: {err}; shortbox answers subscribers by phone number"),
        )
    })?;
    let code = super::code_for(
        config,
        carrier,
        "destinationNumber",
        &sms.destination_number,
    )?;
    if sms.message_body.len() > 16 * 1024 {
        return Err(bad(
            "`messageBody`: longer than 16 KiB; no SMS is that long",
        ));
    }
    if e.message_id.is_empty() || e.message_id.len() > 128 {
        return Err(bad("`MessageId`: expected 1 to 128 characters"));
    }
    Ok(InboundCommand {
        carrier: carrier.to_string(),
        carrier_id: e.message_id.clone(),
        from: from.e164().to_string(),
        to: code.code.clone(),
        body: sms.message_body,
        name: None,
    })
}

impl Engine {
    /// An SNS delivery: verified first (403 and nothing else when it does not verify), then
    /// confirmed or routed. An inbound message is answered after commit.
    pub async fn sns_webhook(
        &self,
        carrier: &str,
        body: &[u8],
    ) -> Result<SnsOutcome, IngressError> {
        let sns = self.carriers().sns(carrier).ok_or_else(|| {
            IngressError::new(
                404,
                "unknown_carrier",
                format!("no carrier {carrier:?} of kind sns is configured"),
            )
        })?;
        let e = envelope(body)?;
        sns.verify(&e).await?;
        match e.kind.as_str() {
            "SubscriptionConfirmation" => {
                sns.confirm(&e).await?;
                Ok(SnsOutcome::Confirmed)
            }
            "Notification" => {
                let cmd = inbound_command(self.config(), carrier, &e)?;
                Ok(SnsOutcome::Inbound(self.inbound(cmd).await?))
            }
            _ => Ok(SnsOutcome::Noted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns_match_one_label_per_star() {
        let p = HostPattern::new("sns.*.amazonaws.com");
        assert!(p.matches("sns.us-east-1.amazonaws.com"));
        assert!(p.matches("SNS.EU-WEST-3.amazonaws.com"));
        for bad in [
            "sns.amazonaws.com",
            "sns..amazonaws.com",
            "sns.us-east-1.amazonaws.com.evil.example",
            "sns.a.b.amazonaws.com",
            "evil.example/sns.us-east-1.amazonaws.com",
            "sns.us-east-1.amazonaws.com:8443",
            "xsns.us-east-1.amazonaws.com",
        ] {
            assert!(!p.matches(bad), "{bad}");
        }
        let local = HostPattern::new("localhost:*");
        assert!(local.matches("localhost:4443"));
        assert!(!local.matches("localhost"));
    }

    #[test]
    fn certificate_urls_must_be_https_to_an_allowed_host() {
        let p = HostPattern::new("sns.*.amazonaws.com");
        let ok = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem";
        assert!(p.check_url("SigningCertURL", ok).is_ok());
        assert!(
            p.check_url(
                "SigningCertURL",
                "https://sns.us-east-1.amazonaws.com:443/x.pem"
            )
            .is_ok()
        );
        for bad in [
            "http://sns.us-east-1.amazonaws.com/x.pem",
            "https://evil.example/x.pem",
            "https://user@sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
            "https://sns.us-east-1.amazonaws.com:8443/x.pem",
            "not a url",
        ] {
            let e = p.check_url("SigningCertURL", bad).unwrap_err();
            assert_eq!((e.status, e.code), (403, "bad_certificate_url"), "{bad}");
        }
    }

    fn envelope_of(kind: &str, subject: Option<&str>) -> Envelope {
        Envelope {
            kind: kind.into(),
            message_id: "id-1".into(),
            topic_arn: "arn:aws:sns:us-east-1:1:t".into(),
            subject: subject.map(String::from),
            message: "hello".into(),
            timestamp: "2026-11-22T10:00:00.000Z".into(),
            signature_version: "1".into(),
            signature: String::new(),
            signing_cert_url: String::new(),
            subscribe_url: Some(
                "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription".into(),
            ),
            token: Some("tok".into()),
        }
    }

    #[test]
    fn the_string_to_sign_follows_the_type() {
        assert_eq!(
            string_to_sign(&envelope_of("Notification", None)).unwrap(),
            "Message\nhello\nMessageId\nid-1\nTimestamp\n2026-11-22T10:00:00.000Z\nTopicArn\narn:aws:sns:us-east-1:1:t\nType\nNotification\n"
        );
        assert_eq!(
            string_to_sign(&envelope_of("Notification", Some("S"))).unwrap(),
            "Message\nhello\nMessageId\nid-1\nSubject\nS\nTimestamp\n2026-11-22T10:00:00.000Z\nTopicArn\narn:aws:sns:us-east-1:1:t\nType\nNotification\n"
        );
        assert_eq!(
            string_to_sign(&envelope_of("SubscriptionConfirmation", Some("ignored"))).unwrap(),
            "Message\nhello\nMessageId\nid-1\nSubscribeURL\nhttps://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription\nTimestamp\n2026-11-22T10:00:00.000Z\nToken\ntok\nTopicArn\narn:aws:sns:us-east-1:1:t\nType\nSubscriptionConfirmation\n"
        );
        assert_eq!(
            string_to_sign(&envelope_of("Other", None))
                .unwrap_err()
                .status,
            400
        );
    }
}
