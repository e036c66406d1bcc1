//! The API token check: `authtoken.secret` presented as `X-ZT1-Auth: <token>`,
//! `Authorization: Bearer <token>` or `?auth=<token>`, as the reference accepts it. Every
//! candidate is compared in constant time, so timing does not reveal how much of a guess
//! was right.

use axum::extract::Query;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, Uri};
use subtle::ConstantTimeEq;

/// The header the reference's tools send.
const AUTH_HEADER: &str = "x-zt1-auth";

/// The secret every request must carry.
pub(crate) struct Token {
    secret: Box<[u8]>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The part of a query string the check reads (other parameters are ignored).
#[derive(serde::Deserialize)]
struct AuthQuery {
    auth: Option<String>,
}

impl Token {
    pub(crate) fn new(secret: &str) -> Token {
        Token {
            secret: secret.as_bytes().into(),
        }
    }

    /// True if any of the three places holds the token. An empty token never matches.
    pub(crate) fn accepts(&self, headers: &HeaderMap, uri: &Uri) -> bool {
        if self.secret.is_empty() {
            return false;
        }
        let from_header = headers.get(AUTH_HEADER).map(|v| v.as_bytes());
        let from_bearer = headers
            .get(AUTHORIZATION)
            .and_then(|v| bearer_credentials(v.as_bytes()));
        let from_query = Query::<AuthQuery>::try_from_uri(uri)
            .ok()
            .and_then(|Query(q)| q.auth);
        let mut matched = false;
        for candidate in [
            from_header,
            from_bearer,
            from_query.as_deref().map(str::as_bytes),
        ]
        .into_iter()
        .flatten()
        {
            // `|` rather than `||`: every candidate is compared whatever the others gave.
            matched |= bool::from(self.secret.as_ref().ct_eq(candidate));
        }
        matched
    }
}

/// The credentials of an `Authorization: Bearer <credentials>` value (scheme in any case).
fn bearer_credentials(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer ";
    let scheme = value.get(..SCHEME.len())?;
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    value.get(SCHEME.len()..).map(<[u8]>::trim_ascii)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderName, HeaderValue};

    const SECRET: &str = "abcdefghijklmnopqrstuvwx";

    fn uri(text: &str) -> Uri {
        text.parse().unwrap()
    }

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
        map.insert(name, HeaderValue::from_str(value).unwrap());
        map
    }

    #[test]
    fn each_form_is_accepted() {
        let token = Token::new(SECRET);
        let plain = uri("/status");
        assert!(token.accepts(&headers("x-zt1-auth", SECRET), &plain));
        assert!(token.accepts(&headers("X-ZT1-Auth", SECRET), &plain));
        let bearer = format!("Bearer {SECRET}");
        assert!(token.accepts(&headers("authorization", &bearer), &plain));
        let lower = format!("bearer {SECRET}");
        assert!(token.accepts(&headers("authorization", &lower), &plain));
        let query = uri(&format!("/status?x=1&auth={SECRET}"));
        assert!(token.accepts(&HeaderMap::new(), &query));
    }

    #[test]
    fn missing_or_wrong_tokens_are_refused() {
        let token = Token::new(SECRET);
        let plain = uri("/status");
        assert!(!token.accepts(&HeaderMap::new(), &plain));
        assert!(!token.accepts(&headers("x-zt1-auth", "abc"), &plain));
        assert!(!token.accepts(&headers("x-zt1-auth", ""), &plain));
        let longer = format!("{SECRET}x");
        assert!(!token.accepts(&headers("x-zt1-auth", &longer), &plain));
        assert!(!token.accepts(&headers("authorization", SECRET), &plain));
        let basic = format!("Basic {SECRET}");
        assert!(!token.accepts(&headers("authorization", &basic), &plain));
        assert!(!token.accepts(&HeaderMap::new(), &uri("/status?auth=wrong")));
        // A duplicated parameter does not parse: refused, not guessed at.
        let twice = uri(&format!("/status?auth={SECRET}&auth={SECRET}"));
        assert!(!token.accepts(&HeaderMap::new(), &twice));
    }

    #[test]
    fn a_wrong_header_does_not_hide_a_right_query() {
        let token = Token::new(SECRET);
        let query = uri(&format!("/status?auth={SECRET}"));
        assert!(token.accepts(&headers("x-zt1-auth", "nope"), &query));
    }

    #[test]
    fn an_empty_token_matches_nothing() {
        let token = Token::new("");
        assert!(!token.accepts(&headers("x-zt1-auth", ""), &uri("/status?auth=")));
    }
}
