//! The HTTP client carriers use: rustls with the ring provider (no aws-lc-rs, no cmake), the
//! platform's roots plus any configured extra roots, HTTP/1.1, no redirects (a redirect could
//! lead a certificate fetch or a subscription confirmation off the allowed hosts), a timeout
//! per request.

use std::time::Duration;

use rustls_pki_types::CertificateDer;

/// A client for carrier APIs. `extra_roots` are trusted besides the system's roots.
pub fn client(
    extra_roots: Vec<CertificateDer<'static>>,
    timeout: Duration,
) -> Result<reqwest::Client, String> {
    let mut tls = crate::tls::client_config(extra_roots)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("shortbox/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

pub use crate::tls::read_pem_certs;

/// Reads a response body up to `limit` bytes; more is an error.
pub async fn body_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the answer failed: {e}"))?
    {
        if body.len() + chunk.len() > limit {
            return Err(format!("the answer is larger than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
