//! The OpenAPI 3 document of the operator API, generated from the handlers' annotations
//! (utoipa), served at `GET /api/v1/openapi.json`.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{commands, packages, recent, stats, traces, vehicles, ErrorBody};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "vgate operator API",
        description = "Vehicles, commands, kick, stats and reload of a vgate node (CONTRACT section 6). \
            With tokens configured, every /api/ call needs `Authorization: Bearer <token>`.",
        license(name = "see the repository")
    ),
    paths(
        stats::readyz,
        vehicles::list,
        vehicles::one,
        recent::recent,
        vehicles::kick,
        commands::submit,
        commands::waiting,
        commands::cancel,
        packages::upload,
        packages::list,
        stats::stats,
        stats::reload,
        traces::start,
        traces::list,
        traces::read,
    ),
    components(schemas(ErrorBody)),
    // Every route but /readyz needs a token (`stats::readyz` says so itself).
    security(("bearer" = [])),
    modifiers(&Bearer),
    tags(
        (name = "vehicles", description = "Who is known, who is online, kick"),
        (name = "commands", description = "Downstream commands (CONTRACT section 4)"),
        (name = "operations", description = "Readiness, counters, reload"),
    )
)]
pub struct ApiDoc;

/// The `bearer` security scheme the paths name.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_names_every_route() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/readyz",
            "/api/v1/vehicles",
            "/api/v1/vehicles/{vid}",
            "/api/v1/vehicles/{vid}/connection",
            "/api/v1/vehicles/{vid}/commands",
            "/api/v1/vehicles/{vid}/commands/{id}",
            "/api/v1/stats",
            "/api/v1/reload",
            "/api/v1/traces",
            "/api/v1/traces/{trace_id}",
        ] {
            assert!(paths.contains_key(p), "{p} missing");
        }
    }
}
