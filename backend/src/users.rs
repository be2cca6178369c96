//! Users: validation of sign-up input and the queries behind it.

use serde::Serialize;
use sqlx::{FromRow, Row};
use utoipa::ToSchema;

use crate::{
    db::{Db, now_millis},
    error::{ApiError, ApiResult},
};

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted password, in bytes (argon2 input is bounded, and so is the work per login).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Longest accepted display name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
pub struct User {
    /// Numeric id.
    pub id: i64,
    /// Email address, lower-cased.
    pub email: String,
    /// Display name, if given.
    pub name: Option<String>,
}

/// Normalises and checks an email: trimmed, lower-cased, one `@` with text on both sides and a
/// dot in the domain, no spaces, at most 254 characters.
pub fn normalize_email(raw: &str) -> ApiResult<String> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains("..")
        });
    if valid {
        Ok(email)
    } else {
        Err(ApiError::validation(
            "email must be a valid address like name@example.com",
        ))
    }
}

/// Checks a new password's length.
pub fn check_password(password: &str) -> ApiResult<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::validation(format!(
            "password must be at least {MIN_PASSWORD_CHARS} characters long"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::validation(format!(
            "password must be at most {MAX_PASSWORD_BYTES} bytes long"
        )));
    }
    Ok(())
}

/// Trims a display name; blank means none.
pub fn normalize_name(raw: Option<String>) -> ApiResult<Option<String>> {
    let Some(name) = raw.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::validation(format!(
            "name must be at most {MAX_NAME_CHARS} characters long"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::validation("name must not contain control characters"));
    }
    Ok(Some(name))
}

/// Stores a new user; an email already in use is a 409 `email_taken`.
pub async fn create(db: &Db, email: &str, name: Option<&str>, password_hash: &str) -> ApiResult<User> {
    let _turn = db.write_turn().await;
    let result = sqlx::query_as::<_, User>(
        "INSERT INTO users (email, name, password_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id, email, name",
    )
    .bind(email)
    .bind(name)
    .bind(password_hash)
    .bind(now_millis())
    .fetch_one(db.pool())
    .await;
    match result {
        Ok(user) => Ok(user),
        Err(err) if err.as_database_error().is_some_and(|e| e.is_unique_violation()) => Err(ApiError::Conflict {
            code: "email_taken",
            message: "an account with this email already exists".to_owned(),
        }),
        Err(err) => Err(err.into()),
    }
}

/// The user with this email and their password hash.
pub async fn find_by_email(db: &Db, email: &str) -> ApiResult<Option<(User, String)>> {
    let row = sqlx::query("SELECT id, email, name, password_hash FROM users WHERE email = $1")
        .bind(email)
        .fetch_optional(db.pool())
        .await?;
    row.map(|row| Ok((User::from_row(&row)?, row.try_get("password_hash")?)))
        .transpose()
}

/// The user with this id.
pub async fn find_by_id(db: &Db, id: i64) -> ApiResult<Option<User>> {
    Ok(
        sqlx::query_as::<_, User>("SELECT id, email, name FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(db.pool())
            .await?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(normalize_email("  Ann@Example.COM ").unwrap(), "ann@example.com");
        for bad in [
            "",
            "ann",
            "@example.com",
            "ann@",
            "ann@example",
            "a b@example.com",
            "ann@@example.com",
            "ann@.com",
            "ann@example..com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn passwords_need_eight_characters() {
        assert!(check_password("1234567").is_err());
        assert!(check_password("12345678").is_ok());
        assert!(check_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }

    #[test]
    fn blank_names_are_none() {
        assert_eq!(normalize_name(Some("  ".into())).unwrap(), None);
        assert_eq!(normalize_name(Some(" Ann ".into())).unwrap().as_deref(), Some("Ann"));
        assert!(normalize_name(Some("x".repeat(101))).is_err());
    }
}
