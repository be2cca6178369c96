//! The OpenAPI document's frame (title, security scheme); the paths come from the routes.

use crate::tasks::{Priority, SortKey, SortOrder, StatusFilter};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

/// Title, version and the bearer-token scheme.
#[derive(OpenApi)]
#[openapi(
    info(title = "Todo API", description = "A multi-user Todo API. Log in, then send `Authorization: Bearer <token>`."),
    modifiers(&BearerAuth),
    // The list's query parameters refer to these; the routes' bodies bring in the others.
    components(schemas(StatusFilter, SortKey, SortOrder, Priority)),
    tags(
        (name = "auth", description = "Accounts and login tokens"),
        (name = "tasks", description = "Your tasks"),
        (name = "chat", description = "The assistant that manages your tasks in plain language, and your conversations with it"),
        (name = "health", description = "Liveness and readiness"),
        (name = "meta", description = "Version and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
