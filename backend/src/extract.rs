//! Extractors that turn every malformed request into the API's JSON error shape instead of
//! axum's plain-text rejections.

use axum::{
    extract::{FromRequest, FromRequestParts, Request, rejection::JsonRejection},
    http::{StatusCode, request::Parts},
};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest accepted request body, in bytes.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// A JSON body. Malformed JSON is a 400, a wrong content type 415, an oversized body 413, and
/// well-formed JSON of the wrong shape (missing or unknown fields, wrong types) a 422.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
        JsonRejection::JsonDataError(err) => ApiError::Unprocessable {
            code: "invalid_body",
            message: serde_message(&err.body_text()),
        },
        JsonRejection::JsonSyntaxError(err) => ApiError::BadRequest {
            code: "malformed_json",
            message: serde_message(&err.body_text()),
        },
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(BODY_LIMIT_BYTES),
        other => ApiError::BadRequest {
            code: "bad_request",
            message: other.body_text(),
        },
    }
}

/// Query parameters; anything that does not parse is a 422 naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::Unprocessable {
                code: "invalid_query",
                message: serde_message(&rejection.body_text()),
            }),
        }
    }
}

/// A numeric id from the path; anything else is a 400.
#[derive(Debug, Clone, Copy)]
pub struct IdPath(pub i64);

impl<S> FromRequestParts<S> for IdPath
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let invalid = || ApiError::BadRequest {
            code: "invalid_id",
            message: "the id in the path must be a positive integer".to_owned(),
        };
        let axum::extract::Path(raw) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| invalid())?;
        match raw.parse::<i64>() {
            Ok(id) if id > 0 => Ok(Self(id)),
            _ => Err(invalid()),
        }
    }
}

/// axum prefixes serde's message with its own ("Failed to deserialize the JSON body into the
/// target type: ..."); keep only the part that names the field.
fn serde_message(text: &str) -> String {
    text.split_once(": ").map_or(text, |(_, rest)| rest).to_owned()
}
