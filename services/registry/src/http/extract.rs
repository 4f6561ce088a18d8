//! Reading requests the way Confluent's server does: query parameters (booleans are `true` in
//! any case, anything else is false; unparsable integers are a 404, as JAX-RS answers them),
//! version and id path segments, JSON bodies under the accepted content types, and content
//! negotiation of the response type.

#![warn(clippy::arithmetic_side_effects)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::RegistryError;
use crate::http::error::HttpError;
use crate::model::VersionSelector;

/// Confluent's versioned media type, the default of every response.
pub const V1_JSON: &str = "application/vnd.schemaregistry.v1+json";
/// Confluent's unversioned media type.
pub const DEFAULT_JSON: &str = "application/vnd.schemaregistry+json";
/// Plain JSON.
pub const JSON: &str = "application/json";

/// Request body types the API reads (a missing Content-Type is read as JSON too).
const REQUEST_TYPES: [&str; 4] = [V1_JSON, DEFAULT_JSON, JSON, "application/octet-stream"];

/// The query parameters of a request, decoded once.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>) -> Self {
        match query {
            Some(query) if !query.is_empty() => Params(
                form_urlencoded::parse(query.as_bytes())
                    .map(|(name, value)| (name.into_owned(), value.into_owned()))
                    .collect(),
            ),
            _ => Params(Vec::new()),
        }
    }

    /// The first value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// A boolean parameter: true only for `true` (any case), as Java's `Boolean.valueOf`.
    pub fn flag(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
    }

    /// An integer parameter; a value that is not one answers 404, as JAX-RS does.
    pub fn int(&self, name: &str) -> Result<Option<i64>, HttpError> {
        match self.get(name) {
            None => Ok(None),
            Some(value) if value.trim().is_empty() => Ok(None),
            Some(value) => value
                .trim()
                .parse::<i32>()
                .map(|n| Some(i64::from(n)))
                .map_err(|_| {
                    HttpError::NotFound(Some(format!(
                        "query parameter '{name}' must be an integer, not '{}'",
                        truncated(value)
                    )))
                }),
        }
    }
}

/// At most 64 characters of untrusted text, for messages.
pub fn truncated(text: &str) -> String {
    let mut cut: String = text.chars().take(64).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut.escape_debug().to_string()
}

/// A `{version}` path segment: a positive integer, `-1` or `latest`.
pub fn version_selector(text: &str) -> Result<VersionSelector, HttpError> {
    if text.eq_ignore_ascii_case("latest") {
        return Ok(VersionSelector::Latest);
    }
    match text.parse::<i32>() {
        Ok(-1) => Ok(VersionSelector::Latest),
        Ok(number) if number > 0 => Ok(VersionSelector::Number(number)),
        _ => Err(RegistryError::InvalidVersion {
            value: truncated(text),
        }
        .into()),
    }
}

/// An `{id}` path segment: an integer, or the route does not match (JAX-RS's 404).
pub fn schema_id(text: &str) -> Result<i32, HttpError> {
    text.parse::<i32>().map_err(|_| {
        HttpError::NotFound(Some(format!(
            "schema id must be an integer, not '{}'",
            truncated(text)
        )))
    })
}

/// A JSON request body of type `T`, read under one of the accepted content types.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = HttpError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        check_content_type(request.headers().get(CONTENT_TYPE))?;
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    HttpError::BodyTooLarge
                } else {
                    HttpError::MalformedBody(rejection.body_text())
                }
            })?;
        parse_json_body(&bytes).map(JsonBody)
    }
}

/// A request body's Content-Type: one of the accepted types (parameters aside), or none.
pub fn check_content_type(content_type: Option<&HeaderValue>) -> Result<(), HttpError> {
    if let Some(content_type) = content_type {
        let essence = content_type
            .to_str()
            .ok()
            .and_then(|value| value.split(';').next())
            .map(str::trim);
        if !essence.is_some_and(|essence| {
            REQUEST_TYPES
                .iter()
                .any(|accepted| accepted.eq_ignore_ascii_case(essence))
        }) {
            return Err(HttpError::UnsupportedMediaType);
        }
    }
    Ok(())
}

/// A request body read as JSON of type `T` (a malformed one is Confluent's 400).
pub fn parse_json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, HttpError> {
    serde_json::from_slice(bytes).map_err(|error| HttpError::MalformedBody(error.to_string()))
}

/// A response media type, in Confluent's order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    V1,
    Default,
    Json,
}

impl Media {
    const ALL: [(Media, &'static str, f32); 3] = [
        (Media::V1, V1_JSON, 1.0),
        (Media::Default, DEFAULT_JSON, 0.9),
        (Media::Json, JSON, 0.5),
    ];

    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Media::V1 => V1_JSON,
            Media::Default => DEFAULT_JSON,
            Media::Json => JSON,
        })
    }
}

/// Picks the response type from an Accept header: for each type the API writes, the quality of
/// the most specific range that matches it, times the server's preference (1, 0.9, 0.5, as
/// Confluent's `@Produces` weights); `None` when nothing acceptable is left.
pub fn negotiate(accept: Option<&HeaderValue>) -> Option<Media> {
    let Some(accept) = accept
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.trim().is_empty())
    else {
        return Some(Media::V1);
    };
    let mut best: Option<(Media, f32)> = None;
    for (media, name, preference) in Media::ALL {
        // (specificity, quality) of the most specific matching range.
        let mut matched: Option<(u8, f32)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let kind = parts.next().unwrap_or_default().trim();
            let specificity = if kind.eq_ignore_ascii_case(name) {
                3
            } else if kind.eq_ignore_ascii_case("application/*") {
                2
            } else if kind == "*/*" || kind == "*" {
                1
            } else {
                continue;
            };
            let quality = parts
                .filter_map(|parameter| parameter.split_once('='))
                .find(|(key, _)| key.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, value)| {
                    value.trim().parse::<f32>().unwrap_or(0.0).clamp(0.0, 1.0)
                });
            if matched.is_none_or(|(known, _)| specificity > known) {
                matched = Some((specificity, quality));
            }
        }
        if let Some((_, quality)) = matched {
            let score = quality * preference;
            if score > 0.0 && best.is_none_or(|(_, known)| score > known) {
                best = Some((media, score));
            }
        }
    }
    best.map(|(media, _)| media)
}

/// Layer answering 406 when the Accept header allows none of the API's types, and giving each
/// JSON response the negotiated Content-Type. Hand-written (no boxed future per request), as it
/// runs on every request.
#[derive(Debug, Clone, Copy, Default)]
pub struct NegotiationLayer;

impl<S> tower_layer::Layer<S> for NegotiationLayer {
    type Service = Negotiation<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Negotiation { inner }
    }
}

/// The service of [`NegotiationLayer`].
#[derive(Debug, Clone)]
pub struct Negotiation<S> {
    inner: S,
}

impl<S, B> tower_service::Service<axum::http::Request<B>> for Negotiation<S>
where
    S: tower_service::Service<axum::http::Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = NegotiationFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        match negotiate(request.headers().get(ACCEPT)) {
            Some(media) => NegotiationFuture::Inner {
                future: self.inner.call(request),
                media,
            },
            None => NegotiationFuture::Refused {
                response: Some(HttpError::NotAcceptable.into_response()),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Negotiation`].
    #[project = NegotiationProjection]
    pub enum NegotiationFuture<F> {
        Inner { #[pin] future: F, media: Media },
        Refused { response: Option<Response> },
    }
}

impl<F, E> Future for NegotiationFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            NegotiationProjection::Inner { future, media } => {
                let mut response = std::task::ready!(future.poll(cx))?;
                if *media != Media::V1
                    && response
                        .headers()
                        .get(CONTENT_TYPE)
                        .is_some_and(|value| value == V1_JSON)
                {
                    response.headers_mut().insert(CONTENT_TYPE, media.header());
                }
                Poll::Ready(Ok(response))
            }
            NegotiationProjection::Refused { response } => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| HttpError::NotAcceptable.into_response()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Option<Media> {
        negotiate(Some(
            &HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")),
        ))
    }

    #[test]
    fn negotiation_follows_confluent_weights() {
        assert_eq!(negotiate(None), Some(Media::V1));
        assert_eq!(accept("*/*"), Some(Media::V1));
        assert_eq!(accept("application/json"), Some(Media::Json));
        assert_eq!(
            accept("application/vnd.schemaregistry+json"),
            Some(Media::Default)
        );
        assert_eq!(
            accept(
                "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json"
            ),
            Some(Media::V1)
        );
        assert_eq!(accept("application/json, */*;q=0.1"), Some(Media::Json));
        assert_eq!(accept("text/html"), None);
        assert_eq!(accept("application/json;q=0"), None);
        assert_eq!(accept("application/json;q=banana"), None);
        assert_eq!(accept(",,;;=,"), None);
    }

    #[test]
    fn params_are_read_like_jax_rs() {
        let params = Params::parse(Some(
            "deleted=True&permanent=yes&limit=5&offset=x&subjectPrefix=a%2Fb&empty=",
        ));
        assert!(params.flag("deleted"));
        assert!(!params.flag("permanent"));
        assert!(!params.flag("missing"));
        assert_eq!(params.int("limit").ok().flatten(), Some(5));
        assert!(matches!(params.int("offset"), Err(HttpError::NotFound(_))));
        assert_eq!(params.int("empty").ok().flatten(), None);
        assert_eq!(params.get("subjectPrefix"), Some("a/b"));
        assert!(Params::parse(Some("%zz=%ff&&=&")).get("x").is_none());
        assert!(matches!(
            Params::parse(Some("limit=99999999999")).int("limit"),
            Err(HttpError::NotFound(_))
        ));
    }

    #[test]
    fn versions_and_ids_are_parsed_like_confluent() {
        assert_eq!(
            version_selector("latest").ok(),
            Some(VersionSelector::Latest)
        );
        assert_eq!(version_selector("-1").ok(), Some(VersionSelector::Latest));
        assert_eq!(version_selector("3").ok(), Some(VersionSelector::Number(3)));
        for bad in ["0", "-2", "x", "", "99999999999", "1.5"] {
            assert!(
                matches!(
                    version_selector(bad),
                    Err(HttpError::Registry(RegistryError::InvalidVersion { .. }))
                ),
                "{bad}"
            );
        }
        assert_eq!(schema_id("7").ok(), Some(7));
        assert!(matches!(schema_id("seven"), Err(HttpError::NotFound(_))));
    }
}
