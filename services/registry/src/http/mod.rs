//! The Confluent Schema Registry HTTP API, so every Kafka client library's schema registry
//! client works against this registry unchanged.
//!
//! The same [`Registry`] core serves it and the gRPC API: handlers only translate requests and
//! responses (see [`handlers`]). Errors are Confluent's `{"error_code", "message"}` bodies
//! ([`error`]); requests and responses use Confluent's media types, negotiated as its server does
//! ([`extract`]). The routes are one table, [`routes`], that builds the router and that the
//! OpenAPI document (`services/registry/openapi.json`, served at `/openapi.json`) is tested
//! against. Every route and both fallbacks sit behind the authentication layer
//! ([`tributary_security::layer`]), applied to the router as a whole.
//! [`tributary_http_server::serve_connections`] serves the router on each of the HTTP API's
//! per-core threads ([`crate::per_core`]), TLS included.

pub mod error;
pub mod extract;
pub mod handlers;
pub mod wire;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post, put};
use tower_layer::Stack;
use tributary_http_server::{TimedOut, unread};
use tributary_security::layer::AuthLayer;
use tributary_security::limits::LimitLayer;
use tributary_telemetry::http::HttpLayer;

use crate::access::Access;
use crate::registry::Registry;
use handlers::ApiState;

pub use handlers::OPENAPI;

/// Every route: method, path (axum syntax) and handler.
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<ApiState>)> {
    use handlers::*;
    vec![
        (Method::GET, "/", get(root)),
        (Method::GET, "/v1/metadata/id", get(metadata_id)),
        (Method::GET, "/openapi.json", get(openapi)),
        (Method::GET, "/subjects", get(list_subjects)),
        (Method::POST, "/subjects/{subject}", post(lookup)),
        (
            Method::DELETE,
            "/subjects/{subject}",
            delete(delete_subject),
        ),
        (
            Method::GET,
            "/subjects/{subject}/versions",
            get(list_versions),
        ),
        (Method::POST, "/subjects/{subject}/versions", post(register)),
        (
            Method::GET,
            "/subjects/{subject}/versions/{version}",
            get(get_version),
        ),
        (
            Method::DELETE,
            "/subjects/{subject}/versions/{version}",
            delete(delete_version),
        ),
        (
            Method::GET,
            "/subjects/{subject}/versions/{version}/schema",
            get(get_version_schema),
        ),
        (
            Method::GET,
            "/subjects/{subject}/versions/{version}/referencedby",
            get(referenced_by),
        ),
        (Method::GET, "/schemas", get(list_schemas)),
        (Method::GET, "/schemas/types", get(schema_types)),
        (Method::GET, "/contexts", get(contexts)),
        (Method::GET, "/schemas/ids/{id}", get(schema_by_id)),
        (
            Method::GET,
            "/schemas/ids/{id}/schema",
            get(schema_text_by_id),
        ),
        (
            Method::GET,
            "/schemas/ids/{id}/subjects",
            get(subjects_by_id),
        ),
        (
            Method::GET,
            "/schemas/ids/{id}/versions",
            get(versions_by_id),
        ),
        (
            Method::POST,
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compatibility_with_version),
        ),
        (
            Method::POST,
            "/compatibility/subjects/{subject}/versions",
            post(compatibility_with_level),
        ),
        (Method::GET, "/config", get(get_config)),
        (Method::PUT, "/config", put(put_config)),
        (Method::DELETE, "/config", delete(delete_config)),
        (Method::GET, "/config/{subject}", get(get_subject_config)),
        (Method::PUT, "/config/{subject}", put(put_subject_config)),
        (
            Method::DELETE,
            "/config/{subject}",
            delete(delete_subject_config),
        ),
        (Method::GET, "/mode", get(get_mode)),
        (Method::PUT, "/mode", put(put_mode)),
        (Method::DELETE, "/mode", delete(delete_mode)),
        (Method::GET, "/mode/{subject}", get(get_subject_mode)),
        (Method::PUT, "/mode/{subject}", put(put_subject_mode)),
        (
            Method::DELETE,
            "/mode/{subject}",
            delete(delete_subject_mode),
        ),
    ]
}

/// The largest request body accepted: room for a schema of `max_schema_bytes` JSON-escaped,
/// plus references; larger ones get 413.
fn body_limit(max_schema_bytes: usize) -> usize {
    max_schema_bytes
        .saturating_mul(2)
        .saturating_add(64 * 1024)
        .max(256 * 1024)
}

/// The perimeter's layers for the HTTP API: authentication, then the caller's limits.
#[derive(Debug, Clone)]
pub struct Perimeter {
    pub authentication: AuthLayer,
    pub limits: LimitLayer,
}

/// The HTTP API over a registry core, each route (and the fallbacks) instrumented by
/// `instrumentation`, behind `perimeter`, and authorized by `access`.
pub fn router(
    registry: Arc<Registry>,
    access: Access,
    max_schema_bytes: usize,
    instrumentation: HttpLayer,
    perimeter: Perimeter,
) -> Router {
    let mut router = Router::new();
    for (_, path, handler) in routes() {
        router = router.route(path, handler);
    }
    // One `Router::layer` call with the whole stack: each call wraps every route in another
    // boxed service, which costs a clone and a boxed future per request. From the outside in:
    // `Connection: close` after unread bodies, instrumentation (refusals are counted too),
    // authentication (before anything looks at the request), the caller's limits, negotiation
    // and the body limit.
    let layers = Stack::new(
        Stack::new(
            Stack::new(
                Stack::new(
                    Stack::new(
                        extract::NegotiationLayer,
                        DefaultBodyLimit::max(body_limit(max_schema_bytes)),
                    ),
                    perimeter.limits,
                ),
                perimeter.authentication,
            ),
            instrumentation,
        ),
        unread::CloseUnreadLayer,
    );
    router
        .fallback(handlers::unknown_route)
        .method_not_allowed_fallback(handlers::wrong_method)
        .layer(layers)
        .with_state(ApiState::new(registry, access))
}

/// How the HTTP API answers a request that outlived `--request-timeout-ms`: Confluent's
/// "operation timed out", 500 with 50002.
pub const TIMED_OUT: TimedOut = TimedOut {
    status: 500,
    error_code: 50002,
    content_type: extract::V1_JSON,
};

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// (METHOD, path) of every operation in the OpenAPI document.
    fn documented() -> BTreeSet<(String, String)> {
        let document: serde_json::Value = serde_json::from_str(OPENAPI).unwrap_or_default();
        assert_eq!(
            document["openapi"].as_str().map(|v| v.starts_with("3.")),
            Some(true),
            "an OpenAPI 3 document"
        );
        let mut operations = BTreeSet::new();
        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            for method in item
                .as_object()
                .into_iter()
                .flatten()
                .map(|(method, _)| method)
            {
                if ["get", "put", "post", "delete", "patch", "head", "options"]
                    .contains(&method.as_str())
                {
                    operations.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        operations
    }

    #[test]
    fn every_route_is_documented_and_every_documented_operation_is_routed() {
        let routed: BTreeSet<(String, String)> = routes()
            .into_iter()
            .map(|(method, path, _)| (method.to_string(), path.to_owned()))
            .collect();
        let documented = documented();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty(),
            "routes missing from openapi.json: {undocumented:?}"
        );
        assert!(
            unrouted.is_empty(),
            "openapi.json operations with no route: {unrouted:?}"
        );
    }

    #[test]
    fn bodies_have_room_for_the_largest_schema() {
        assert!(body_limit(1024 * 1024) > 2 * 1024 * 1024);
        assert_eq!(body_limit(10), 256 * 1024);
        assert_eq!(body_limit(usize::MAX), usize::MAX);
    }
}
