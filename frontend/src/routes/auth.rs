//! `/register`, `/login`, `/logout`. On success the backend's token goes into the HttpOnly
//! session cookie and the browser is sent to the task list (303). The backend's refusals (409
//! email taken, 401 wrong login, 422 invalid input) are shown on the form, with what the user
//! typed kept, except the password.

use axum::{
    Router,
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use serde::Deserialize;

use crate::{
    backend_client::{Api, AuthResponse, BackendError, LoginRequest, RegisterRequest},
    csrf::{CsrfForm, CsrfToken},
    error::{AppError, AppResult},
    session::{CSRF_COOKIE, SESSION_COOKIE, SessionToken},
    state::AppState,
    views::{FormError, Layout, LoginPage, RegisterPage},
};

/// The auth routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/register", get(register_form).post(register))
        .route("/login", get(login_form).post(login))
        .route("/logout", axum::routing::post(logout))
}

/// The sign-up form's fields.
#[derive(Deserialize)]
struct RegisterForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    name: String,
}

/// The log-in form's fields.
#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// A form with nothing but the CSRF token.
#[derive(Deserialize)]
struct EmptyForm {}

async fn register_form(csrf: CsrfToken) -> RegisterPage {
    RegisterPage {
        layout: Layout::guest(csrf.value()),
        email: String::new(),
        name: String::new(),
        error: None,
    }
}

async fn register(
    axum::extract::State(state): axum::extract::State<AppState>,
    api: Api,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<RegisterForm>,
) -> AppResult<Response> {
    let name = form.name.trim();
    let request = RegisterRequest {
        email: form.email.trim(),
        password: &form.password,
        name: (!name.is_empty()).then_some(name),
    };
    let error = match api.register(&request).await {
        Ok(auth) => return Ok(signed_in(&state, auth)),
        Err(BackendError::Rejected { status, code, message }) if status == StatusCode::CONFLICT => (
            status,
            if code == "email_taken" {
                FormError {
                    field: "email",
                    message: "An account with this email already exists. Log in instead?".to_owned(),
                }
            } else {
                FormError::general(message)
            },
        ),
        Err(BackendError::Rejected { status, message, .. }) if status.is_client_error() => (
            status,
            FormError::from_message(&message, &["email", "password", "name"]),
        ),
        Err(err) => return Err(err.into()),
    };
    let (status, error) = error;
    let page = RegisterPage {
        layout: Layout::guest(csrf.value()),
        email: form.email,
        name: form.name,
        error: Some(error),
    };
    Ok((status, page).into_response())
}

async fn login_form(csrf: CsrfToken) -> LoginPage {
    LoginPage {
        layout: Layout::guest(csrf.value()),
        email: String::new(),
        error: None,
    }
}

async fn login(
    axum::extract::State(state): axum::extract::State<AppState>,
    api: Api,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> AppResult<Response> {
    let request = LoginRequest {
        email: form.email.trim(),
        password: &form.password,
    };
    let (status, error) = match api.login(&request).await {
        Ok(auth) => return Ok(signed_in(&state, auth)),
        Err(BackendError::Unauthorized(_)) => {
            (StatusCode::UNAUTHORIZED, FormError::general("Wrong email or password."))
        }
        Err(BackendError::Rejected { status, message, .. }) if status.is_client_error() => {
            (status, FormError::from_message(&message, &["email", "password"]))
        }
        Err(err) => return Err(err.into()),
    };
    let page = LoginPage {
        layout: Layout::guest(csrf.value()),
        email: form.email,
        error: Some(error),
    };
    Ok((status, page).into_response())
}

/// Ends the session: the backend revokes the token (so a copy of the cookie stops working too),
/// then the browser forgets it and the CSRF token (the next page issues a new one).
async fn logout(
    axum::extract::State(state): axum::extract::State<AppState>,
    api: Api,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> AppResult<Response> {
    match api.logout().await {
        // Already logged out or expired: nothing left to revoke.
        Ok(()) | Err(BackendError::Unauthorized(_)) => {}
        // Keep the cookie: the token still works, and the user should know logging out failed.
        Err(err) => return Err(err.into()),
    }
    let mut response = Redirect::to("/login").into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, state.cookies.clear(SESSION_COOKIE));
    headers.append(header::SET_COOKIE, state.cookies.clear(CSRF_COOKIE));
    Ok(response)
}

/// Stores the token in the session cookie and goes to the task list.
fn signed_in(state: &AppState, auth: AuthResponse) -> Response {
    tracing::info!(user_id = auth.user.id, "signed in");
    let token = SessionToken::new(auth.token);
    let mut response = Redirect::to("/").into_response();
    match state.cookies.session(&token) {
        Some(cookie) => {
            response.headers_mut().append(header::SET_COOKIE, cookie);
            response
        }
        None => AppError::Internal(anyhow::anyhow!(
            "the backend issued a token that cannot be stored in a cookie"
        ))
        .into_response(),
    }
}
