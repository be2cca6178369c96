//! `/static/{file}`: the compiled-in assets, cached for a year (their URLs change with their content).

use axum::{
    Router,
    extract::Path,
    http::header,
    response::{IntoResponse, Response},
    routing::get,
};

use crate::{assets, error::AppError, state::AppState};

/// `Cache-Control` of hashed assets.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The static file route.
pub fn router() -> Router<AppState> {
    Router::new().route("/static/{file}", get(asset))
}

async fn asset(Path(file): Path<String>) -> Response {
    match assets::find(&file) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, IMMUTABLE),
            ],
            asset.body,
        )
            .into_response(),
        None => AppError::NotFound.into_response(),
    }
}
