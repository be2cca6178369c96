//! The browser's side of a login: the backend's token kept in an HttpOnly cookie, and the cookie
//! headers the frontend sends (session and CSRF cookies share one policy).

use std::fmt;

use axum::http::{HeaderMap, HeaderValue, header};

/// Holds the backend's login token; its name is part of the cross-crate contract (smoke checks
/// and benchmarks send it).
pub use todo_service::contract::SESSION_COOKIE;

/// Holds the CSRF token that forms echo back (see [`crate::csrf`]).
pub const CSRF_COOKIE: &str = "todo_csrf";

/// The backend's login token, as read from the session cookie. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    /// Reads the token from the request's cookies; `None` when absent or not token-shaped.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        read_cookie(headers, SESSION_COOKIE)
            .filter(|value| is_cookie_safe(value))
            .map(|value| Self(value.to_owned()))
    }

    /// Wraps a token the backend just issued.
    pub fn new(token: String) -> Self {
        Self(token)
    }

    /// The token, for the `Authorization` header and the cookie.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken([redacted])")
    }
}

/// The value of cookie `name` in the request, if any (the first one wins).
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether a value can go into a cookie without quoting (JWTs and hex tokens can).
fn is_cookie_safe(value: &str) -> bool {
    (1..=4096).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~+/=".contains(&b))
}

/// How the frontend's cookies are set: `HttpOnly; SameSite=Lax; Path=/`, plus `Secure` when
/// `COOKIE_SECURE` is on. Both cookies live for the browser session.
#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    /// Add the `Secure` attribute (HTTPS only).
    pub secure: bool,
}

impl CookiePolicy {
    /// `Set-Cookie` storing the login token.
    pub fn session(&self, token: &SessionToken) -> Option<HeaderValue> {
        self.set(SESSION_COOKIE, token.expose())
    }

    /// `Set-Cookie` storing a CSRF token.
    pub fn csrf(&self, token: &str) -> Option<HeaderValue> {
        self.set(CSRF_COOKIE, token)
    }

    /// `Set-Cookie` removing cookie `name`.
    pub fn clear(&self, name: &str) -> HeaderValue {
        let value = format!(
            "{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}",
            self.secure_attr()
        );
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
    }

    fn set(&self, name: &str, value: &str) -> Option<HeaderValue> {
        if !is_cookie_safe(value) {
            return None;
        }
        HeaderValue::from_str(&format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Lax{}",
            self.secure_attr()
        ))
        .ok()
    }

    fn secure_attr(&self) -> &'static str {
        if self.secure { "; Secure" } else { "" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        headers
    }

    #[test]
    fn reads_one_cookie_among_several() {
        let h = headers("a=1; todo_session=abc.def-ghi; todo_csrf=ff");
        assert_eq!(read_cookie(&h, SESSION_COOKIE), Some("abc.def-ghi"));
        assert_eq!(read_cookie(&h, CSRF_COOKIE), Some("ff"));
        assert_eq!(read_cookie(&h, "missing"), None);
        assert_eq!(SessionToken::from_headers(&h).unwrap().expose(), "abc.def-ghi");
    }

    #[test]
    fn rejects_tokens_that_are_not_cookie_safe() {
        assert!(SessionToken::from_headers(&headers("todo_session=")).is_none());
        assert!(SessionToken::from_headers(&headers("todo_session=a\"b")).is_none());
    }

    #[test]
    fn cookies_are_http_only_lax_and_secure_when_asked() {
        let token = SessionToken::new("t.o.k".to_owned());
        let plain = CookiePolicy { secure: false }.session(&token).unwrap();
        assert_eq!(plain, "todo_session=t.o.k; Path=/; HttpOnly; SameSite=Lax");
        let secure = CookiePolicy { secure: true }.session(&token).unwrap();
        assert_eq!(secure, "todo_session=t.o.k; Path=/; HttpOnly; SameSite=Lax; Secure");
        let cleared = CookiePolicy { secure: false }.clear(SESSION_COOKIE);
        assert_eq!(cleared, "todo_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
    }

    #[test]
    fn tokens_do_not_print() {
        let token = SessionToken::new("secret-token".to_owned());
        assert!(!format!("{token:?}").contains("secret"));
    }
}
