//! Whether a signed token still opens a session: its account must exist (a token outlives an
//! account deleted after it was issued) and it must not have been logged out. Logging out records
//! the token's id in `revoked_tokens` until the token would have expired anyway, so the check
//! holds on every replica sharing the database.

use crate::{
    db::{Db, now_millis},
    error::{ApiError, ApiResult, account_gone},
};

/// What the database says about a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    /// The account exists and the token was not logged out.
    Live,
    /// The account was deleted.
    AccountGone,
    /// The token was logged out.
    LoggedOut,
}

impl SessionStatus {
    /// `Ok` for a live session; the 401 that tells the client to log in again otherwise.
    pub fn require_live(self) -> ApiResult<()> {
        match self {
            Self::Live => Ok(()),
            Self::AccountGone => Err(account_gone()),
            Self::LoggedOut => Err(logged_out()),
        }
    }
}

/// The 401 of a token that was logged out.
pub fn logged_out() -> ApiError {
    ApiError::Unauthorized("this token was logged out; log in again".to_owned())
}

/// What a valid token proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The user id.
    pub user_id: i64,
    /// The token's id.
    pub token_id: String,
    /// When it expires, seconds since the epoch.
    pub expires_at: u64,
}

/// `Ok` when the token's session is live (one query); its 401 otherwise.
pub async fn require_live(db: &Db, token: &VerifiedToken) -> ApiResult<()> {
    status(db, token.user_id, &token.token_id).await?.require_live()
}

/// The error a request made with `token` gets for `error`: the token's own 401 when its session
/// is over (a logged-out client learns that first, as when the session is checked before anything
/// else), `error` otherwise. For routes whose query checks the session itself, on the paths that
/// end before that query runs.
pub async fn refuse(db: &Db, token: &VerifiedToken, error: ApiError) -> ApiError {
    match require_live(db, token).await {
        Ok(()) => error,
        Err(session_error) => session_error,
    }
}

/// One query: does the user exist, and is this token revoked?
pub async fn status(db: &Db, user_id: i64, token_id: &str) -> ApiResult<SessionStatus> {
    let (exists, revoked) = match db {
        Db::Sqlite(db) => db.read(|conn| {
            let mut select = conn.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1), \
                 EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ?2)",
            )?;
            Ok(select.query_row(rusqlite::params![user_id, token_id], |row| {
                Ok((row.get::<_, bool>(0)?, row.get::<_, bool>(1)?))
            })?)
        })?,
        Db::Postgres(db) => {
            sqlx::query_as::<_, (bool, bool)>(
                "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1), \
                 EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $2)",
            )
            .bind(user_id)
            .bind(token_id)
            .fetch_one(db.pool())
            .await?
        }
    };
    Ok(match (exists, revoked) {
        (false, _) => SessionStatus::AccountGone,
        (true, true) => SessionStatus::LoggedOut,
        (true, false) => SessionStatus::Live,
    })
}

/// Revokes a token until its expiry, and forgets revocations of tokens that have expired since.
pub async fn revoke(db: &Db, token: &VerifiedToken) -> ApiResult<()> {
    let expires_at = i64::try_from(token.expires_at.saturating_mul(1000)).unwrap_or(i64::MAX);
    let now = now_millis();
    match db {
        Db::Sqlite(db) => {
            let jti = token.token_id.clone();
            db.write(move |conn| {
                conn.prepare_cached("DELETE FROM revoked_tokens WHERE expires_at < ?1")?
                    .execute([now])?;
                conn.prepare_cached(
                    "INSERT INTO revoked_tokens (jti, expires_at) VALUES (?1, ?2) ON CONFLICT (jti) DO NOTHING",
                )?
                .execute(rusqlite::params![jti, expires_at])?;
                Ok(())
            })
            .await
        }
        Db::Postgres(db) => {
            // Two different rows (an expired one and a live one), so one statement can do both.
            sqlx::query(
                "WITH expired AS (DELETE FROM revoked_tokens WHERE expires_at < $3) \
                 INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
            )
            .bind(&token.token_id)
            .bind(expires_at)
            .bind(now)
            .execute(db.pool())
            .await?;
            Ok(())
        }
    }
}
