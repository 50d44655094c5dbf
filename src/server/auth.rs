//! Reading credentials off a request: the bearer token, and the refusal of tokens in URLs.
//!
//! Tokens travel in the `Authorization` header only. A token in a query string ends up in
//! proxy logs, browser history and `Referer` headers, so any request that carries `token` or
//! `access_token` in its query is refused whatever its header says (the names are compared
//! after percent-decoding, so `%74oken` is a token too).

use axum::http::{HeaderMap, header};

/// The token of `Authorization: Bearer <token>`, if the header has that form.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// True when the query string names a `token` or `access_token` parameter.
pub(crate) fn query_has_token(query: Option<&str>) -> bool {
    let Some(query) = query else { return false };
    query.split(['&', ';']).any(|pair| {
        let name = pair.split('=').next().unwrap_or_default();
        let name = percent_decode(name);
        let name = name.trim();
        name.eq_ignore_ascii_case("token") || name.eq_ignore_ascii_case("access_token")
    })
}

/// Decodes `%XX` escapes and `+`; anything malformed is kept as it is.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(auth).expect("a header value"),
        );
        h
    }

    #[test]
    fn bearer_reads_only_the_bearer_scheme() {
        assert_eq!(bearer(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&headers("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&headers("Basic abc")), None);
        assert_eq!(bearer(&headers("Bearer ")), None);
        assert_eq!(bearer(&headers("Bearer")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[test]
    fn tokens_in_the_query_are_found_in_any_spelling() {
        for q in [
            "token=x",
            "a=1&token=x",
            "access_token=x",
            "TOKEN=x",
            "%74oken=x",
            "access%5Ftoken",
            "x=1;token",
        ] {
            assert!(query_has_token(Some(q)), "{q}");
        }
        for q in ["", "tokens=x", "a=token", "my_token=1", "%", "%7", "%zz=1"] {
            assert!(!query_has_token(Some(q)), "{q}");
        }
        assert!(!query_has_token(None));
    }
}
