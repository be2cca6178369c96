//! Brute-force protection for `POST /auth/login`: failed logins are counted per account (the
//! email tried) and per client (its address), each in a fixed window. Once either count reaches
//! its limit, logins for that account or from that client are answered 429 with `Retry-After`
//! until the window ends, *before* any password is checked (argon2 is the expensive part, so a
//! throttled attacker costs almost nothing). A successful login clears its account's count.
//!
//! The counts live in the database (`login_failures`), so with several replicas on PostgreSQL
//! every replica sees the same counts. Concurrent attempts may overshoot a limit by the number of
//! attempts in flight at the moment it is reached; the next attempt is refused.

use std::{net::SocketAddr, time::Duration};

use axum::{
    extract::{ConnectInfo, FromRef, FromRequestParts},
    http::{HeaderMap, request::Parts},
};

use crate::{
    config::Config,
    db::{Db, now_millis},
    error::{ApiError, ApiResult},
};

/// The requesting client's address, as [`client_address`] finds it.
#[derive(Debug, Clone)]
pub struct ClientAddress(pub String);

impl<S> FromRequestParts<S> for ClientAddress
where
    S: Send + Sync,
    LoginPolicy: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| *addr);
        Ok(Self(client_address(
            &parts.headers,
            peer,
            LoginPolicy::from_ref(state).trusted_proxy_hops,
        )))
    }
}

/// The limits, from the settings (`LOGIN_*` and `TRUSTED_PROXY_HOPS`).
#[derive(Debug, Clone, Copy)]
pub struct LoginPolicy {
    /// Failed logins for one account within a window before it is throttled.
    pub per_account: u32,
    /// Failed logins from one client within a window before it is throttled.
    pub per_client: u32,
    /// The window's length.
    pub window: Duration,
    /// Proxies in front of this server that append to `X-Forwarded-For` (0: use the peer address).
    pub trusted_proxy_hops: usize,
}

impl LoginPolicy {
    /// The limits the settings give.
    pub fn from_config(config: &Config) -> LoginPolicy {
        LoginPolicy {
            per_account: config.login_max_failures_per_account,
            per_client: config.login_max_failures_per_client,
            window: Duration::from_secs(config.login_failure_window_seconds),
            trusted_proxy_hops: usize::try_from(config.trusted_proxy_hops).unwrap_or(0),
        }
    }
}

/// Who is trying to log in, as the throttle counts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    account: String,
    client: String,
}

impl Attempt {
    /// The account key from the normalised email, the client key from the address.
    pub fn new(email: &str, client: &str) -> Self {
        Self {
            account: format!("account:{email}"),
            client: format!("client:{client}"),
        }
    }
}

/// The client's address: the peer of this connection, or with `hops` trusted proxies in front,
/// the address the outermost trusted proxy saw (the `hops`-th entry of `X-Forwarded-For` from
/// the right, each proxy appending its own peer). Entries that are not IP addresses are ignored
/// rather than trusted.
pub fn client_address(headers: &HeaderMap, peer: Option<SocketAddr>, hops: usize) -> String {
    let peer = peer.map_or_else(|| "unknown".to_owned(), |addr| addr.ip().to_string());
    if hops == 0 {
        return peer;
    }
    let forwarded: Vec<std::net::IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(','))
        .filter_map(|entry| entry.trim().parse().ok())
        .collect();
    match forwarded.len().checked_sub(hops) {
        Some(index) => forwarded[index].to_string(),
        None => forwarded.first().map_or(peer, ToString::to_string),
    }
}

/// Refuses with 429 when the account or the client has used up its failures in this window.
pub async fn check(db: &Db, policy: &LoginPolicy, attempt: &Attempt) -> ApiResult<()> {
    let now = now_millis();
    let window = window_millis(policy);
    let since = now - window;
    let rows: Vec<(String, i64, i64)> = match db {
        Db::Sqlite(db) => db.read(|conn| {
            let mut select = conn.prepare_cached(
                "SELECT key, window_start, failures FROM login_failures WHERE key IN (?1, ?2) AND window_start > ?3",
            )?;
            let rows = select.query_map(rusqlite::params![attempt.account, attempt.client, since], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?,
        Db::Postgres(db) => sqlx::query_as::<_, (String, i64, i32)>(
            "SELECT key, window_start, failures FROM login_failures WHERE key IN ($1, $2) AND window_start > $3",
        )
        .bind(&attempt.account)
        .bind(&attempt.client)
        .bind(since)
        .fetch_all(db.pool())
        .await?
        .into_iter()
        .map(|(key, start, failures)| (key, start, i64::from(failures)))
        .collect(),
    };
    let wait_ms = rows
        .iter()
        .filter(|(key, _, failures)| {
            let limit = if *key == attempt.account {
                policy.per_account
            } else {
                policy.per_client
            };
            *failures >= i64::from(limit)
        })
        .map(|(_, start, _)| start + window - now)
        .max();
    match wait_ms {
        Some(wait_ms) => {
            tracing::warn!("login throttled: too many failed attempts for this account or client");
            let retry_after_secs = u64::try_from(wait_ms.max(0)).unwrap_or(0).div_ceil(1000).max(1);
            Err(ApiError::TooManyRequests {
                retry_after_secs,
                message: format!("too many failed logins; try again in {retry_after_secs} seconds"),
            })
        }
        None => Ok(()),
    }
}

/// The upsert that counts one failure for a key: a key whose window has ended starts a new one.
const RECORD_FAILURE: &str = "INSERT INTO login_failures (key, window_start, failures) VALUES (?1, ?3, 1), (?2, ?3, 1) \
     ON CONFLICT (key) DO UPDATE SET \
     failures = CASE WHEN login_failures.window_start <= ?4 THEN 1 ELSE login_failures.failures + 1 END, \
     window_start = CASE WHEN login_failures.window_start <= ?4 THEN ?3 ELSE login_failures.window_start END";

/// Counts a failed login for the account and the client, and forgets windows that have ended.
pub async fn record_failure(db: &Db, policy: &LoginPolicy, attempt: &Attempt) -> ApiResult<()> {
    let now = now_millis();
    let ended = now - window_millis(policy);
    match db {
        Db::Sqlite(db) => {
            let attempt = attempt.clone();
            db.write(move |conn| {
                conn.prepare_cached("DELETE FROM login_failures WHERE window_start <= ?1")?
                    .execute([ended])?;
                conn.prepare_cached(RECORD_FAILURE)?.execute(rusqlite::params![
                    attempt.account,
                    attempt.client,
                    now,
                    ended
                ])?;
                Ok(())
            })
            .await
        }
        Db::Postgres(db) => {
            sqlx::query("DELETE FROM login_failures WHERE window_start <= $1")
                .bind(ended)
                .execute(db.pool())
                .await?;
            sqlx::query(sqlx::AssertSqlSafe(RECORD_FAILURE.replace('?', "$")))
                .bind(&attempt.account)
                .bind(&attempt.client)
                .bind(now)
                .bind(ended)
                .execute(db.pool())
                .await?;
            Ok(())
        }
    }
}

/// Clears the account's count after a successful login (the client's count stays).
pub async fn clear_account(db: &Db, attempt: &Attempt) -> ApiResult<()> {
    match db {
        Db::Sqlite(db) => {
            let account = attempt.account.clone();
            db.write(move |conn| {
                conn.prepare_cached("DELETE FROM login_failures WHERE key = ?1")?
                    .execute([account])?;
                Ok(())
            })
            .await
        }
        Db::Postgres(db) => {
            sqlx::query("DELETE FROM login_failures WHERE key = $1")
                .bind(&attempt.account)
                .execute(db.pool())
                .await?;
            Ok(())
        }
    }
}

fn window_millis(policy: &LoginPolicy) -> i64 {
    i64::try_from(policy.window.as_millis()).unwrap_or(i64::MAX / 2)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn the_client_is_the_address_the_outermost_trusted_proxy_saw() {
        let peer: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        let mut headers = HeaderMap::new();
        assert_eq!(client_address(&headers, Some(peer), 1), "10.0.0.5");
        headers.insert("x-forwarded-for", HeaderValue::from_static("1.1.1.1, 203.0.113.7"));
        assert_eq!(client_address(&headers, Some(peer), 0), "10.0.0.5");
        assert_eq!(client_address(&headers, Some(peer), 1), "203.0.113.7");
        assert_eq!(client_address(&headers, Some(peer), 2), "1.1.1.1");
        assert_eq!(client_address(&headers, Some(peer), 5), "1.1.1.1");
        headers.insert("x-forwarded-for", HeaderValue::from_static("not-an-ip"));
        assert_eq!(client_address(&headers, Some(peer), 1), "10.0.0.5");
    }
}
