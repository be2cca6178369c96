//! Passwords (argon2id) and login tokens (JWT, HS256), and the extractor that authenticates a request.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use anyhow::Context;
use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use axum::{
    extract::{FromRef, FromRequestParts},
    http::request::Parts,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::{
    db::Db,
    error::ApiError,
    sessions::{self, VerifiedToken},
};

/// At most this many argon2 computations run at once. Each takes 19 MiB and a core for tens of
/// milliseconds: unbounded, a burst of logins would exhaust the pod's memory limit (and starve
/// every other request of CPU); bounded, the burst just queues.
fn hashing_permits() -> &'static Semaphore {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get().min(4))))
}

/// Runs argon2 work on the blocking pool, within [`hashing_permits`].
async fn argon2_task<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let _permit = hashing_permits()
        .acquire()
        .await
        .context("the password hashing limiter is closed")?;
    tokio::task::spawn_blocking(work)
        .await
        .context("the password hashing task failed")?
}

/// Hashes a password with argon2id and a random salt, off the async threads (it is slow on purpose).
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    argon2_task(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|err| anyhow::anyhow!("hashing a password failed: {err}"))
    })
    .await
}

/// Checks a password against a stored hash. `None` stands for "no such user": the same work is
/// done against a fixed hash so the response time does not reveal which emails exist.
pub async fn verify_password(password: String, stored_hash: Option<String>) -> anyhow::Result<bool> {
    argon2_task(move || {
        let (hash, user_exists) = match &stored_hash {
            Some(hash) => (hash.as_str(), true),
            None => (DUMMY_HASH, false),
        };
        let parsed =
            PasswordHash::new(hash).map_err(|err| anyhow::anyhow!("stored password hash is unreadable: {err}"))?;
        let matches = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        Ok(matches && user_exists)
    })
    .await
}

/// argon2id hash (default parameters) of a random string nobody knows; see [`verify_password`].
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$vWvz2mBcK4pSI2DPa/ipN1cDh0t4mP0SE5G0bQXvdR0";

/// What a login token says.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user id.
    sub: String,
    /// Issued at, seconds since the epoch.
    iat: u64,
    /// Expires at, seconds since the epoch.
    exp: u64,
    /// The token's own id: logging out records it as revoked (see [`crate::sessions`]).
    jti: String,
}

/// Seconds a token is still accepted after its expiry (clock skew between replicas).
const LEEWAY_SECS: u64 = 5;
/// Verified tokens remembered at most; when full, the memory starts afresh.
const VERIFIED_KEPT: usize = 1024;

/// Signs and checks login tokens.
#[derive(Clone)]
pub struct Tokens {
    encoding: Arc<EncodingKey>,
    decoding: Arc<DecodingKey>,
    ttl: Duration,
    /// Tokens whose signature checked out, by their whole text: a client sends the same token
    /// with every request, and decoding and checking it again (base64, JSON, HMAC) was ~4% of a
    /// list request's CPU time (perf). A hit is the very bytes verified before; its expiry is
    /// still checked at every use, and whether it was logged out is the database's to say.
    verified: Arc<Mutex<HashMap<Box<str>, VerifiedToken>>>,
}

impl Tokens {
    /// Keys from a secret (at least 32 bytes; [`crate::config::Config::validate`] checks it).
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        Self {
            encoding: Arc::new(EncodingKey::from_secret(secret)),
            decoding: Arc::new(DecodingKey::from_secret(secret)),
            ttl,
            verified: Arc::default(),
        }
    }

    /// A token for this user, valid for the configured time.
    pub fn issue(&self, user_id: i64) -> anyhow::Result<String> {
        let now = unix_seconds();
        let claims = Claims {
            sub: user_id.to_string(),
            iat: now,
            exp: now + self.ttl.as_secs(),
            jti: uuid::Uuid::new_v4().simple().to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).context("signing a token failed")
    }

    /// The user and token id of a valid, unexpired token. Tokens without an id (issued before
    /// logout could revoke them) are refused: they could never be revoked.
    pub fn verify(&self, token: &str) -> Option<VerifiedToken> {
        self.verify_at(token, unix_seconds())
    }

    fn verify_at(&self, token: &str, now: u64) -> Option<VerifiedToken> {
        let unexpired = |verified: &VerifiedToken| verified.expires_at.saturating_add(LEEWAY_SECS) >= now;
        let known = lock(&self.verified).get(token).cloned();
        if let Some(verified) = known {
            return unexpired(&verified).then_some(verified);
        }
        let verified = self.decode(token)?;
        if !unexpired(&verified) {
            return None;
        }
        let mut kept = lock(&self.verified);
        if kept.len() >= VERIFIED_KEPT {
            kept.clear();
        }
        kept.insert(token.into(), verified.clone());
        Some(verified)
    }

    fn decode(&self, token: &str) -> Option<VerifiedToken> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "sub", "jti"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .ok()?
            .claims;
        let valid_id = (1..=64).contains(&claims.jti.len()) && claims.jti.bytes().all(|b| b.is_ascii_alphanumeric());
        Some(VerifiedToken {
            user_id: claims.sub.parse().ok()?,
            token_id: valid_id.then_some(claims.jti)?,
            expires_at: claims.exp,
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A map between statements is never half-changed: a poisoned lock is still usable.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A request made with a valid, unexpired `Authorization: Bearer <token>`, whose session is not
/// checked yet: only for routes whose query checks it in the same round trip (see
/// [`crate::tasks::Owner::Token`]); every other route takes [`AuthUser`]. Rejects with 401.
#[derive(Debug, Clone)]
pub struct SignedToken(pub VerifiedToken);

impl<S> FromRequestParts<S> for SignedToken
where
    S: Send + Sync,
    Tokens: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("missing `Authorization: Bearer <token>` header".to_owned()))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(|| ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".to_owned()))?;
        let token = Tokens::from_ref(state)
            .verify(token)
            .ok_or_else(|| ApiError::Unauthorized("the token is invalid or has expired; log in again".to_owned()))?;
        Ok(Self(token))
    }
}

/// A request made with a valid `Authorization: Bearer <token>` whose account still exists and
/// which was not logged out; rejects with 401 otherwise.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// The authenticated user's id.
    pub id: i64,
    /// The token's id and expiry (logout revokes it until then).
    pub token: VerifiedToken,
}

/// Works with any router state that holds the token keys and the database, so this module does
/// not depend on the application's state (which depends on it).
impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    Tokens: FromRef<S>,
    Db: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let SignedToken(token) = SignedToken::from_request_parts(parts, state).await?;
        sessions::require_live(&Db::from_ref(state), &token).await?;
        Ok(Self {
            id: token.user_id,
            token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_round_trip_and_unknown_users_never_match() {
        let hash = hash_password("correct horse".to_owned()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            verify_password("correct horse".to_owned(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!verify_password("wrong horse".to_owned(), Some(hash)).await.unwrap());
        assert!(!verify_password("anything".to_owned(), None).await.unwrap());
    }

    #[test]
    fn tokens_verify_only_with_the_same_secret() {
        let tokens = Tokens::new(&[7; 32], Duration::from_secs(60));
        let token = tokens.issue(42).unwrap();
        let verified = tokens.verify(&token).unwrap();
        assert_eq!(verified.user_id, 42);
        assert_eq!(verified.token_id.len(), 32);
        assert_ne!(
            tokens.verify(&tokens.issue(42).unwrap()).unwrap().token_id,
            verified.token_id
        );
        assert_eq!(Tokens::new(&[8; 32], Duration::from_secs(60)).verify(&token), None);
        assert_eq!(tokens.verify("not-a-token"), None);
    }

    #[test]
    fn remembered_tokens_still_expire_and_only_the_same_bytes_are_remembered() {
        let tokens = Tokens::new(&[7; 32], Duration::from_secs(60));
        let token = tokens.issue(42).unwrap();
        let now = unix_seconds();
        let first = tokens.verify_at(&token, now).unwrap();
        assert_eq!(tokens.verify_at(&token, now), Some(first.clone()), "remembered");
        assert_eq!(lock(&tokens.verified).len(), 1);
        let expiry = first.expires_at;
        assert!(
            tokens.verify_at(&token, expiry + LEEWAY_SECS).is_some(),
            "within the leeway"
        );
        assert_eq!(
            tokens.verify_at(&token, expiry + LEEWAY_SECS + 1),
            None,
            "expired, though remembered"
        );
        // A token with its signature changed is checked afresh, and refused.
        let mut forged = token.clone().into_bytes();
        let inside_signature = forged.len() - 10;
        forged[inside_signature] = if forged[inside_signature] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert_eq!(tokens.verify_at(&forged, now), None);
        // Full: the memory starts afresh rather than growing.
        for user in 0..VERIFIED_KEPT as i64 {
            tokens.verify_at(&tokens.issue(user).unwrap(), now).unwrap();
        }
        assert!(lock(&tokens.verified).len() <= VERIFIED_KEPT);
        assert_eq!(tokens.verify_at(&token, now), Some(first));
    }
}
