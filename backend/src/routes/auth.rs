//! `/auth/register`, `/auth/login`, `/auth/me`.

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::{AuthUser, hash_password, verify_password},
    error::{ApiError, ApiResult, ErrorBody},
    extract::ApiJson,
    login_throttle::{self, Attempt, ClientAddress},
    sessions,
    state::AppState,
    users::{self, User},
};

/// The auth routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
}

/// Sign-up form.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// A valid email address (stored lower-cased).
    pub email: String,
    /// At least 8 characters.
    pub password: String,
    /// Optional display name, up to 100 characters.
    #[serde(default)]
    pub name: Option<String>,
}

/// Login form.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The email used to register.
    pub email: String,
    /// The password.
    pub password: String,
}

/// A token and whom it belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthResponse {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// The user.
    pub user: User,
}

/// Create an account and log in.
#[utoipa::path(
    post,
    path = "/auth/register",
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created", body = AuthResponse),
        (status = 400, description = "The body is not valid JSON", body = ErrorBody),
        (status = 409, description = "Email already registered (`email_taken`)", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "Invalid email, short password or bad name", body = ErrorBody),
    )
)]
async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, axum::Json<AuthResponse>)> {
    let email = users::normalize_email(&body.email)?;
    users::check_password(&body.password)?;
    let name = users::normalize_name(body.name)?;
    let hash = hash_password(body.password).await?;
    let user = users::create(&state.db, &email, name.as_deref(), &hash).await?;
    let token = state.tokens.issue(user.id)?;
    tracing::info!(user_id = user.id, "user registered");
    Ok((StatusCode::CREATED, axum::Json(AuthResponse { token, user })))
}

/// Log in with email and password. Failed attempts are counted per account and per client;
/// past the limit the answer is 429 with `Retry-After`, even for the right password.
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = AuthResponse),
        (status = 400, description = "The body is not valid JSON", body = ErrorBody),
        (status = 401, description = "Wrong email or password (the same answer for both)", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "A field is missing, of the wrong type, or holds control characters", body = ErrorBody),
        (status = 429, description = "Too many failed logins for this account or from this client (`too_many_attempts`); see `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until logging in is allowed again"))),
    )
)]
async fn login(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<axum::Json<AuthResponse>> {
    let email = body.email.trim().to_lowercase();
    if email.chars().any(char::is_control) || email.len() > 254 {
        return Err(ApiError::validation(
            "email must be at most 254 characters, without control characters",
        ));
    }
    let attempt = Attempt::new(&email, &client);
    login_throttle::check(&state.db, &state.login, &attempt).await?;
    let found = users::find_by_email(&state.db, &email).await?;
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let matches = verify_password(body.password, hash).await?;
    let Some(user) = user.filter(|_| matches) else {
        login_throttle::record_failure(&state.db, &state.login, &attempt).await?;
        return Err(ApiError::Unauthorized("wrong email or password".to_owned()));
    };
    login_throttle::clear_account(&state.db, &attempt).await?;
    let token = state.tokens.issue(user.id)?;
    Ok(axum::Json(AuthResponse { token, user }))
}

/// Log out: the token stops working at once, on every replica (it is recorded as revoked until
/// it would have expired).
#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out; the token no longer works"),
        (status = 401, description = "Missing, invalid, expired or already logged-out token", body = ErrorBody),
    )
)]
async fn logout(State(state): State<AppState>, auth: AuthUser) -> ApiResult<StatusCode> {
    sessions::revoke(&state.db, &auth.token).await?;
    tracing::info!(user_id = auth.id, "logged out");
    Ok(StatusCode::NO_CONTENT)
}

/// The logged-in user.
#[utoipa::path(
    get,
    path = "/auth/me",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user the token belongs to", body = User),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
    )
)]
async fn me(State(state): State<AppState>, auth: AuthUser) -> ApiResult<axum::Json<User>> {
    users::find_by_id(&state.db, auth.id)
        .await?
        .map(axum::Json)
        .ok_or_else(crate::error::account_gone)
}
