//! The OpenAPI 3 document of the operator API, generated from the handlers' annotations
//! (utoipa), served at `GET /api/v1/openapi.json`.

use axum::Json;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, Response, ResponseBuilder};
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
    modifiers(&Bearer, &Refusals),
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

/// The refusals the token check (`auth.rs`) gives, added to every operation here instead of
/// being listed in each handler's annotation: 401 (no or unknown token) wherever the
/// document's bearer security applies (every route that does not set its own `security`),
/// and 403 (a read-only token) on every route but GET, the only method a read-only token may
/// use.
struct Refusals;

impl Modify for Refusals {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let reads = [&mut item.get, &mut item.head];
            let writes = [
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for (op, writes) in reads
                .into_iter()
                .map(|op| (op, false))
                .chain(writes.into_iter().map(|op| (op, true)))
            {
                if let Some(op) = op.as_mut().filter(|op| op.security.is_none()) {
                    refuse(op, "401", "No or unknown token");
                    if writes {
                        refuse(op, "403", "A read-only token");
                    }
                }
            }
        }
    }
}

/// Adds the `status` answer, an [`ErrorBody`] saying why, to `op`.
fn refuse(op: &mut Operation, status: &str, why: &str) {
    let body = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build();
    let answer: Response = ResponseBuilder::new()
        .description(why)
        .content("application/json", body)
        .build();
    op.responses
        .responses
        .insert(status.to_owned(), answer.into());
}

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_behind_a_token_document_its_refusals() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let answers = |path: &str, method: &str| -> Vec<String> {
            let op = &doc["paths"][path][method];
            op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        };
        // A read: 401 only; a write: 401 and 403; /readyz (no token): neither.
        assert_eq!(answers("/api/v1/stats", "get"), ["200", "401"]);
        assert_eq!(
            answers("/api/v1/reload", "post"),
            ["200", "400", "401", "403"]
        );
        assert_eq!(
            answers("/api/v1/vehicles/{vid}/connection", "delete"),
            ["204", "400", "401", "403", "404"]
        );
        assert_eq!(answers("/readyz", "get"), ["200", "503"]);
        let refusal = &doc["paths"]["/api/v1/reload"]["post"]["responses"]["403"];
        assert_eq!(refusal["description"], "A read-only token");
        assert_eq!(
            refusal["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody"
        );
    }

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
