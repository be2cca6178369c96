//! Users: validation of sign-up input and the queries behind it.

use rusqlite::OptionalExtension;
use serde::Serialize;
use sqlx::{Row, postgres::PgRow};
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
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    /// Numeric id.
    #[schema(minimum = 1)]
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
    let taken = || ApiError::Conflict {
        code: "email_taken",
        message: "an account with this email already exists".to_owned(),
    };
    let now = now_millis();
    match db {
        Db::Sqlite(db) => {
            let (email, name, hash) = (email.to_owned(), name.map(str::to_owned), password_hash.to_owned());
            db.write(move |conn| {
                let mut insert = conn.prepare_cached(
                    "INSERT INTO users (email, name, password_hash, created_at) VALUES (?1, ?2, ?3, ?4) \
                     RETURNING id, email, name",
                )?;
                match insert.query_row(rusqlite::params![email, name, hash, now], sqlite_user) {
                    Err(err) if err.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
                        Err(taken())
                    }
                    other => Ok(other?),
                }
            })
            .await
        }
        Db::Postgres(db) => {
            let result = sqlx::query(
                "INSERT INTO users (email, name, password_hash, created_at) VALUES ($1, $2, $3, $4) \
                 RETURNING id, email, name",
            )
            .bind(email)
            .bind(name)
            .bind(password_hash)
            .bind(now)
            .fetch_one(db.pool())
            .await;
            match result {
                Err(err) if err.as_database_error().is_some_and(|e| e.is_unique_violation()) => Err(taken()),
                other => Ok(pg_user(&other?)?),
            }
        }
    }
}

fn pg_user(row: &PgRow) -> sqlx::Result<User> {
    Ok(User {
        id: row.try_get(0)?,
        email: row.try_get(1)?,
        name: row.try_get(2)?,
    })
}

fn sqlite_user(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        email: row.get(1)?,
        name: row.get(2)?,
    })
}

/// The user with this email and their password hash.
pub async fn find_by_email(db: &Db, email: &str) -> ApiResult<Option<(User, String)>> {
    match db {
        Db::Sqlite(db) => db.read(|conn| {
            let mut select =
                conn.prepare_cached("SELECT id, email, name, password_hash FROM users WHERE email = ?1")?;
            let found = select
                .query_row([email], |row| Ok((sqlite_user(row)?, row.get(3)?)))
                .optional()?;
            Ok(found)
        }),
        Db::Postgres(db) => {
            let row = sqlx::query("SELECT id, email, name, password_hash FROM users WHERE email = $1")
                .bind(email)
                .fetch_optional(db.pool())
                .await?;
            row.map(|row| Ok((pg_user(&row)?, row.try_get(3)?))).transpose()
        }
    }
}

/// The user with this id.
pub async fn find_by_id(db: &Db, id: i64) -> ApiResult<Option<User>> {
    match db {
        Db::Sqlite(db) => db.read(|conn| {
            let mut select = conn.prepare_cached("SELECT id, email, name FROM users WHERE id = ?1")?;
            Ok(select.query_row([id], sqlite_user).optional()?)
        }),
        Db::Postgres(db) => {
            let row = sqlx::query("SELECT id, email, name FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(db.pool())
                .await?;
            Ok(row.as_ref().map(pg_user).transpose()?)
        }
    }
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
