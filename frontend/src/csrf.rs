//! Protection against cross-site request forgery, two checks deep:
//!
//! 1. **Origin**: a state-changing request (anything but GET/HEAD/OPTIONS) whose `Origin` names
//!    another site, or whose `Sec-Fetch-Site` says `cross-site`/`same-site`, is refused with 403.
//! 2. **Token**: every browser gets a random nonce in the HttpOnly `todo_csrf` cookie; every form
//!    carries a token in a hidden `csrf_token` field (htmx requests send it as `x-csrf-token`),
//!    and [`CsrfForm`] refuses a request whose token is missing or differs (403). With a session,
//!    the token is HMAC-SHA256 of the nonce keyed with the session's token: it is bound to the
//!    session, so a nonce planted in the browser's cookies (by a sibling subdomain, say) is
//!    worthless without the session token, which is HttpOnly and never leaves this site. Without a
//!    session (the login and sign-up forms) there is nothing secret to bind to, so those requests
//!    must also prove they come from this site: an `Origin` naming this host or
//!    `Sec-Fetch-Site: same-origin`, which every current browser sends with a form POST and no
//!    other site can forge.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request, State},
    http::{HeaderMap, Method, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, de::DeserializeOwned};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{
    error::AppError,
    session::{CSRF_COOKIE, SessionToken, read_cookie},
    state::AppState,
};

/// Name of the hidden form field that carries the token (part of the markup contract).
pub const CSRF_FIELD: &str = "csrf_token";
/// Header that carries the token on htmx requests (set once on `<body hx-headers>`).
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Random bytes in a token (hex-encoded: twice as many characters).
const TOKEN_BYTES: usize = 32;

/// This browser's CSRF token, for templates to put into forms (bound to the session, if any).
#[derive(Clone, PartialEq, Eq)]
pub struct CsrfToken(String);

/// The browser's nonce, from the `todo_csrf` cookie.
#[derive(Clone, PartialEq, Eq)]
struct Nonce(String);

impl CsrfToken {
    /// The token text.
    pub fn value(&self) -> &str {
        &self.0
    }

    /// The token forms must carry: with a session, HMAC-SHA256 of the nonce keyed with the
    /// session's token; without one, the nonce itself.
    fn derive(nonce: &Nonce, session: Option<&SessionToken>) -> Self {
        let Some(session) = session else {
            return Self(nonce.0.clone());
        };
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(session.expose().as_bytes()).expect("HMAC accepts any key length");
        mac.update(b"todo-csrf:");
        mac.update(nonce.0.as_bytes());
        Self(hex(&mac.finalize().into_bytes()))
    }

    /// Compares in constant time, so response timing reveals nothing about the token.
    fn matches(&self, submitted: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), submitted.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Nonce {
    /// A fresh random nonce.
    fn generate() -> anyhow::Result<Self> {
        let mut bytes = [0_u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(|err| anyhow::anyhow!("no system randomness for a CSRF token: {err}"))?;
        Ok(Self(hex(&bytes)))
    }

    /// The nonce in the request's cookie, if it has the shape this module gives nonces.
    fn from_cookie(headers: &HeaderMap) -> Option<Self> {
        read_cookie(headers, CSRF_COOKIE)
            .filter(|value| value.len() == TOKEN_BYTES * 2 && value.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|value| Self(value.to_owned()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl std::fmt::Debug for CsrfToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfToken([redacted])")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the CSRF middleware is not installed on this route")))
    }
}

/// Middleware for every page route: refuses cross-site state-changing requests, and makes sure
/// the browser has a token (setting the cookie when it had none).
pub async fn protect(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let session = SessionToken::from_headers(request.headers());
    if !safe {
        let checked = check_origin(request.headers()).and_then(|()| {
            if session.is_some() {
                Ok(())
            } else {
                require_same_origin(request.headers())
            }
        });
        if let Err(reason) = checked {
            return AppError::Forbidden(reason).into_response();
        }
    }
    let (nonce, fresh) = match Nonce::from_cookie(request.headers()) {
        Some(nonce) => (nonce, false),
        None => match Nonce::generate() {
            Ok(nonce) => (nonce, true),
            Err(err) => return AppError::Internal(err).into_response(),
        },
    };
    request
        .extensions_mut()
        .insert(CsrfToken::derive(&nonce, session.as_ref()));
    let mut response = next.run(request).await;
    if fresh && let Some(cookie) = state.cookies.csrf(&nonce.0) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The Origin check: same host as the request, or no cross-site signal at all (non-browser
/// clients send neither header; the token check still applies to them).
fn check_origin(headers: &HeaderMap) -> Result<(), &'static str> {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|origin| origin.split_once("://"))
            .map(|(_, host)| host);
        return match (origin_host, host) {
            (Some(origin_host), Some(host)) if origin_host.eq_ignore_ascii_case(host) => Ok(()),
            _ => Err("the Origin header names another site"),
        };
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        None | Some("same-origin" | "none") => Ok(()),
        Some(_) => Err("Sec-Fetch-Site says the request comes from another site"),
    }
}

/// Without a session the token binds to nothing secret, so a state-changing request must show it
/// comes from this site: an `Origin` naming this host ([`check_origin`] has compared it already)
/// or `Sec-Fetch-Site: same-origin`.
fn require_same_origin(headers: &HeaderMap) -> Result<(), &'static str> {
    let same_site_fetch = headers.get("sec-fetch-site").is_some_and(|v| v == "same-origin");
    if headers.contains_key(header::ORIGIN) || same_site_fetch {
        Ok(())
    } else {
        Err("a form sent without a session must carry an Origin or Sec-Fetch-Site header")
    }
}

/// Only the token field of a form; everything else is ignored here.
#[derive(Default, Deserialize)]
struct TokenField {
    csrf_token: Option<String>,
}

/// A URL-encoded form whose CSRF token was checked before its fields were read. Use it for every
/// POST handler.
#[derive(Debug)]
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let expected =
            request.extensions().get::<CsrfToken>().cloned().ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!("the CSRF middleware is not installed on this route"))
            })?;
        let header_token = request
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| AppError::BadRequest(rejection.body_text()))?;
        let field: TokenField = serde_urlencoded::from_bytes(&body).unwrap_or_default();
        let submitted = field
            .csrf_token
            .or(header_token)
            .ok_or(AppError::Forbidden("the form has no CSRF token"))?;
        if !expected.matches(&submitted) {
            return Err(AppError::Forbidden("the form's CSRF token is wrong"));
        }
        serde_urlencoded::from_bytes(&body)
            .map(Self)
            .map_err(|err| AppError::BadRequest(format!("The form could not be read ({err}).")))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn same_origin_passes_and_other_sites_do_not() {
        assert!(
            check_origin(&headers(&[
                ("host", "todo.local:3000"),
                ("origin", "http://todo.local:3000")
            ]))
            .is_ok()
        );
        assert!(check_origin(&headers(&[("host", "todo.local"), ("origin", "https://todo.local")])).is_ok());
        assert!(
            check_origin(&headers(&[
                ("host", "todo.local:3000"),
                ("origin", "http://evil.example")
            ]))
            .is_err()
        );
        assert!(check_origin(&headers(&[("host", "todo.local:3000"), ("origin", "null")])).is_err());
        assert!(check_origin(&headers(&[("host", "todo.local"), ("sec-fetch-site", "cross-site")])).is_err());
        assert!(check_origin(&headers(&[("host", "todo.local"), ("sec-fetch-site", "same-origin")])).is_ok());
        assert!(check_origin(&headers(&[("host", "todo.local")])).is_ok());
    }

    #[test]
    fn tokens_are_random_hex_and_compare_exactly() {
        let a = CsrfToken::derive(&Nonce::generate().unwrap(), None);
        let b = CsrfToken::derive(&Nonce::generate().unwrap(), None);
        assert_ne!(a, b);
        assert_eq!(a.value().len(), 64);
        assert!(a.matches(a.value()));
        assert!(!a.matches(b.value()));
        assert!(!a.matches(""));
        assert!(!format!("{a:?}").contains(a.value()));
    }

    #[test]
    fn with_a_session_the_token_is_bound_to_it() {
        let nonce = Nonce::generate().unwrap();
        let alice = SessionToken::new("alice.session.token".to_owned());
        let mallory = SessionToken::new("mallory.session.token".to_owned());
        let bound = CsrfToken::derive(&nonce, Some(&alice));
        assert_eq!(bound, CsrfToken::derive(&nonce, Some(&alice)), "stable for one session");
        assert_ne!(bound, CsrfToken::derive(&nonce, Some(&mallory)));
        assert_ne!(bound.value(), nonce.0, "the nonce alone is not the token");
        assert_eq!(bound.value().len(), 64);
    }

    #[test]
    fn forms_without_a_session_must_come_from_this_site() {
        assert!(require_same_origin(&headers(&[("origin", "http://todo.local")])).is_ok());
        assert!(require_same_origin(&headers(&[("sec-fetch-site", "same-origin")])).is_ok());
        assert!(require_same_origin(&headers(&[("host", "todo.local")])).is_err());
        assert!(require_same_origin(&headers(&[("sec-fetch-site", "none")])).is_err());
    }
}
