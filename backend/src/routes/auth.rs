//! `/auth/register`, `/auth/login`, `/auth/me`.

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::{AuthUser, hash_password, verify_password},
    error::{ApiError, ApiResult, ErrorBody},
    extract::ApiJson,
    state::AppState,
    users::{self, User},
};

/// The auth routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
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
        (status = 409, description = "Email already registered (`email_taken`)", body = ErrorBody),
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

/// Log in with email and password.
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = AuthResponse),
        (status = 401, description = "Wrong email or password (the same answer for both)", body = ErrorBody),
    )
)]
async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<axum::Json<AuthResponse>> {
    let found = users::find_by_email(&state.db, body.email.trim().to_lowercase().as_str()).await?;
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let matches = verify_password(body.password, hash).await?;
    let user = user
        .filter(|_| matches)
        .ok_or_else(|| ApiError::Unauthorized("wrong email or password".to_owned()))?;
    let token = state.tokens.issue(user.id)?;
    Ok(axum::Json(AuthResponse { token, user }))
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
        .ok_or_else(|| ApiError::Unauthorized("the account for this token no longer exists".to_owned()))
}
