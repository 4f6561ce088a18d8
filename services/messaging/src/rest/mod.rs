//! The Kafka REST Proxy compatible HTTP API (v2, the v1 produce types, and v3's produce and
//! listing routes), so that curl scripts, shell jobs and HTTP-only runtimes written for
//! Confluent's REST Proxy move over unchanged. gRPC stays the primary API.
//!
//! It runs on the same internals as the gRPC service: records are prepared, encoded and
//! produced by [`crate::produce::Producer`], keys and values decoded by the consume path's
//! decoder, topics and groups described by [`crate::kafka::Kafka`], every action authorized by
//! [`crate::access::Access`]. The routes are one table, [`routes`], which builds the router
//! and which the OpenAPI document (`services/messaging/rest-openapi.json`, served at
//! `/openapi.json`) is tested against. Every route and both fallbacks sit behind the
//! authentication and limit layers of `tributary_security`, applied to the router as a whole;
//! [`tributary_http_server::serve_connections`] serves it, TLS included.
//!
//! Consumer instances are state of the replica that created them ([`instances`]): see there
//! for their expiry, their ids and how commits work.

pub mod consumers;
pub mod error;
pub mod instances;
pub mod media;
pub mod metadata;
pub mod produce;
pub mod v3;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use serde::de::DeserializeOwned;
use tower_layer::Stack;
use tributary_http_server::{TimedOut, unread};
use tributary_security::authz::Caller;
use tributary_security::layer::AuthLayer;
use tributary_security::limits::LimitLayer;
use tributary_telemetry::http::HttpLayer;

use crate::access::Access;
use crate::kafka::Kafka;
use crate::produce::Producer;
use crate::rest::error::RestError;
use crate::rest::instances::Instances;
use crate::schemas::Schemas;

/// The OpenAPI document of the REST API.
pub const OPENAPI: &str = include_str!("../../rest-openapi.json");

/// The largest request body accepted (413 above it): a produce request of many records.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// How the REST API answers a request that outlived `--request-timeout-ms`.
pub const TIMED_OUT: TimedOut = TimedOut {
    status: 408,
    error_code: 40801,
    content_type: media::V2_JSON,
};

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct RestState {
    pub kafka: Kafka,
    pub schemas: Arc<Schemas>,
    pub access: Access,
    pub producer: Producer,
    pub instances: Arc<Instances>,
    /// Most records of one v3 streaming produce request waiting for Kafka.
    pub produce_max_in_flight: usize,
    /// The server's limit on a request, answered before (records not acknowledged by then are
    /// said to be of unknown outcome).
    pub request_timeout: Option<std::time::Duration>,
    /// `--rest-advertised-url`, without a trailing `/`.
    pub advertised_url: Option<String>,
    /// `https` when the listener speaks TLS.
    pub scheme: &'static str,
}

impl RestState {
    /// The URL clients reach this replica at: the advertised URL, else the scheme and the host
    /// the request was sent to (`Host`, or HTTP/2's `:authority`).
    pub fn base_url(&self, headers: &HeaderMap, uri: &axum::http::Uri) -> String {
        if let Some(url) = &self.advertised_url {
            return url.clone();
        }
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|host| host.to_str().ok())
            .or_else(|| uri.authority().map(|authority| authority.as_str()))
            .filter(|host| {
                !host.is_empty()
                    && host.len() <= 255
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
            })
            .unwrap_or("localhost");
        format!("{}://{host}", self.scheme)
    }
}

/// The caller of a request, from what the authentication layer put in its extensions.
#[derive(Debug, Clone)]
pub struct CallerOf(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for CallerOf {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(CallerOf(Caller::from_extensions(&parts.extensions)))
    }
}

/// A JSON request body of type `T`: the body limit's 413, a type that is not JSON 415, a body
/// that is not `T` 400.
pub fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, RestError> {
    media::check_json_body(headers)?;
    let body = read_body(body)?;
    serde_json::from_slice(&body).map_err(RestError::bad_body)
}

/// The bytes of a request body, or the REST-shaped error of reading it.
pub fn read_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, RestError> {
    body.map_err(|rejection| {
        let status = rejection.status().as_u16();
        if status == 413 {
            RestError::new(
                413,
                41301,
                format!("the request body is over the limit of {MAX_BODY_BYTES} bytes"),
            )
        } else {
            RestError::new(status, u32::from(status), rejection.body_text())
        }
    })
}

/// A JSON response of the v2 media type.
pub fn v2_json<T: serde::Serialize>(value: &T) -> Response {
    json_response(value, media::V2_JSON)
}

/// A JSON response of media type `content_type`.
pub fn json_response<T: serde::Serialize>(value: &T, content_type: &'static str) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static(content_type),
            )],
            body,
        )
            .into_response(),
        Err(error) => {
            RestError::new(500, 500, format!("cannot write the response: {error}")).into_response()
        }
    }
}

/// Every route: method, path (axum syntax) and handler.
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<RestState>)> {
    use consumers::*;
    use metadata::*;
    vec![
        (Method::GET, "/", get(root)),
        (Method::GET, "/openapi.json", get(openapi)),
        (Method::GET, "/topics", get(list_topics)),
        (Method::GET, "/topics/{topic}", get(describe_topic)),
        (Method::POST, "/topics/{topic}", post(produce::to_topic)),
        (
            Method::GET,
            "/topics/{topic}/partitions",
            get(list_partitions),
        ),
        (
            Method::GET,
            "/topics/{topic}/partitions/{partition}",
            get(describe_partition),
        ),
        (
            Method::POST,
            "/topics/{topic}/partitions/{partition}",
            post(produce::to_partition),
        ),
        (Method::GET, "/brokers", get(list_brokers)),
        (Method::POST, "/consumers/{group}", post(create_instance)),
        (
            Method::DELETE,
            "/consumers/{group}/instances/{instance}",
            delete(delete_instance),
        ),
        (
            Method::POST,
            "/consumers/{group}/instances/{instance}/subscription",
            post(subscribe),
        ),
        (
            Method::GET,
            "/consumers/{group}/instances/{instance}/subscription",
            get(subscription),
        ),
        (
            Method::DELETE,
            "/consumers/{group}/instances/{instance}/subscription",
            delete(unsubscribe),
        ),
        (
            Method::POST,
            "/consumers/{group}/instances/{instance}/assignments",
            post(assign),
        ),
        (
            Method::GET,
            "/consumers/{group}/instances/{instance}/assignments",
            get(assignments),
        ),
        (
            Method::POST,
            "/consumers/{group}/instances/{instance}/positions",
            post(seek),
        ),
        (
            Method::POST,
            "/consumers/{group}/instances/{instance}/positions/beginning",
            post(seek_to_beginning),
        ),
        (
            Method::POST,
            "/consumers/{group}/instances/{instance}/positions/end",
            post(seek_to_end),
        ),
        (
            Method::GET,
            "/consumers/{group}/instances/{instance}/records",
            get(records),
        ),
        (
            Method::GET,
            "/consumers/{group}/instances/{instance}/topics/{topic}",
            get(records_of_topic),
        ),
        (
            Method::POST,
            "/consumers/{group}/instances/{instance}/offsets",
            post(commit),
        ),
        (
            Method::GET,
            "/consumers/{group}/instances/{instance}/offsets",
            get(committed),
        ),
        (Method::GET, "/v3/clusters", get(v3::list_clusters)),
        (
            Method::GET,
            "/v3/clusters/{cluster}",
            get(v3::describe_cluster),
        ),
        (
            Method::GET,
            "/v3/clusters/{cluster}/topics",
            get(v3::list_topics),
        ),
        (
            Method::GET,
            "/v3/clusters/{cluster}/topics/{topic}",
            get(v3::describe_topic),
        ),
        (
            Method::POST,
            "/v3/clusters/{cluster}/topics/{topic}/records",
            post(v3::produce),
        ),
        (
            Method::GET,
            "/v3/clusters/{cluster}/consumer-groups",
            get(v3::list_groups),
        ),
        (
            Method::GET,
            "/v3/clusters/{cluster}/consumer-groups/{group}",
            get(v3::describe_group),
        ),
    ]
}

/// The perimeter's layers for the REST API: authentication, then the caller's limits.
#[derive(Debug, Clone)]
pub struct Perimeter {
    pub authentication: AuthLayer,
    pub limits: LimitLayer,
}

/// The REST API over `state`, each route (and the fallbacks) instrumented by
/// `instrumentation`, behind `perimeter`.
pub fn router(state: RestState, instrumentation: HttpLayer, perimeter: Perimeter) -> Router {
    let mut router = Router::new();
    for (_, path, handler) in routes() {
        router = router.route(path, handler);
    }
    // One `Router::layer` call with the whole stack (see the registry's HTTP API). From the
    // outside in: `Connection: close` after unread bodies, instrumentation (refusals are
    // counted too), authentication, the caller's limits, the body limit.
    let layers = Stack::new(
        Stack::new(
            Stack::new(
                Stack::new(DefaultBodyLimit::max(MAX_BODY_BYTES), perimeter.limits),
                perimeter.authentication,
            ),
            instrumentation,
        ),
        unread::CloseUnreadLayer,
    );
    router
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(layers)
        .with_state(state)
}

/// `GET /`: the REST Proxy answers `{}`.
async fn root() -> Response {
    v2_json(&serde_json::json!({}))
}

/// `GET /openapi.json`.
async fn openapi() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static(media::JSON),
        )],
        OPENAPI,
    )
        .into_response()
}

async fn unknown_route() -> RestError {
    RestError::new(404, 404, "HTTP 404 Not Found")
}

async fn wrong_method() -> RestError {
    RestError::new(405, 405, "HTTP 405 Method Not Allowed")
}

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
            for (method, _) in item.as_object().into_iter().flatten() {
                if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
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
            "routes missing from rest-openapi.json: {undocumented:?}"
        );
        assert!(
            unrouted.is_empty(),
            "documented operations with no route: {unrouted:?}"
        );
    }
}
