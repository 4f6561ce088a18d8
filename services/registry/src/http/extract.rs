//! Reading requests the way Confluent's server does: query parameters (booleans are `true` in
//! any case, anything else is false; unparsable integers are a 404, as JAX-RS answers them),
//! version and id path segments, JSON bodies under the accepted content types (in UTF-8, UTF-16
//! or UTF-32, as Jackson reads them), and content negotiation of the response type.

#![warn(clippy::arithmetic_side_effects)]

use std::borrow::Cow;
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
        let content_type = request.headers().get(CONTENT_TYPE);
        check_content_type(content_type)?;
        let charset = content_type.and_then(charset_of).map(str::to_owned);
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    HttpError::BodyTooLarge
                } else {
                    HttpError::MalformedBody(rejection.body_text())
                }
            })?;
        parse_json_body_as(&bytes, charset.as_deref()).map(JsonBody)
    }
}

/// The `charset` parameter of a Content-Type, unquoted.
fn charset_of(content_type: &HeaderValue) -> Option<&str> {
    content_type
        .to_str()
        .ok()?
        .split(';')
        .skip(1)
        .filter_map(|parameter| parameter.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("charset"))
        .map(|(_, value)| value.trim().trim_matches('"').trim())
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

/// A request body read as JSON of type `T`, its encoding detected as Jackson does (a malformed
/// one is Confluent's 400).
pub fn parse_json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, HttpError> {
    parse_json_body_as(bytes, None)
}

/// A request body read as JSON of type `T`, in the Content-Type's `charset` when it names one
/// of the encodings below, else in the encoding its first bytes show ([`utf8_body`]).
pub fn parse_json_body_as<T: DeserializeOwned>(
    bytes: &[u8],
    charset: Option<&str>,
) -> Result<T, HttpError> {
    let text = utf8_body(bytes, charset)?;
    serde_json::from_slice(&text).map_err(|error| HttpError::MalformedBody(error.to_string()))
}

/// The encodings a JSON body is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Utf8,
    Utf16Be,
    Utf16Le,
    Utf32Be,
    Utf32Le,
    Latin1,
    Ascii,
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Utf16Be => "UTF-16BE",
            Encoding::Utf16Le => "UTF-16LE",
            Encoding::Utf32Be => "UTF-32BE",
            Encoding::Utf32Le => "UTF-32LE",
            Encoding::Latin1 => "ISO-8859-1",
            Encoding::Ascii => "US-ASCII",
        }
    }

    /// The byte order mark of this encoding, if it has one.
    fn bom(self) -> &'static [u8] {
        match self {
            Encoding::Utf8 => b"\xEF\xBB\xBF",
            Encoding::Utf16Be => b"\xFE\xFF",
            Encoding::Utf16Le => b"\xFF\xFE",
            Encoding::Utf32Be => b"\x00\x00\xFE\xFF",
            Encoding::Utf32Le => b"\xFF\xFE\x00\x00",
            Encoding::Latin1 | Encoding::Ascii => b"",
        }
    }
}

/// The encoding of a JSON text as Jackson detects it (`ByteSourceJsonBootstrapper`, after
/// RFC 4627 section 3): a byte order mark, else where the zero bytes are among the first four
/// (a JSON text starts with an ASCII character). `Err` for the UCS-4 orders 2143 and 3412,
/// which Jackson refuses too.
fn detect(bytes: &[u8]) -> Result<Encoding, HttpError> {
    let unusual = || {
        HttpError::MalformedBody(
            "the request body is in an unsupported UCS-4 byte order (2143 or 3412)".to_owned(),
        )
    };
    let encoding = match bytes {
        [0x00, 0x00, 0xFE, 0xFF, ..] => Encoding::Utf32Be,
        [0xFF, 0xFE, 0x00, 0x00, ..] => Encoding::Utf32Le,
        [0x00, 0x00, 0xFF, 0xFE, ..] | [0xFE, 0xFF, 0x00, 0x00, ..] => return Err(unusual()),
        [0xFE, 0xFF, ..] => Encoding::Utf16Be,
        [0xFF, 0xFE, ..] => Encoding::Utf16Le,
        [0xEF, 0xBB, 0xBF, ..] => Encoding::Utf8,
        [0x00, 0x00, 0x00, _, ..] => Encoding::Utf32Be,
        [_, 0x00, 0x00, 0x00, ..] => Encoding::Utf32Le,
        [0x00, _, 0x00, 0x00, ..] | [0x00, 0x00, _, 0x00, ..] => return Err(unusual()),
        [0x00, _, ..] => Encoding::Utf16Be,
        [_, 0x00, ..] => Encoding::Utf16Le,
        _ => Encoding::Utf8,
    };
    Ok(encoding)
}

/// The encoding a Content-Type `charset` names; `None` for a name not known here (Jackson, as
/// Confluent's server runs it, reads the bytes whatever the charset says). `UTF-16` and
/// `UTF-32` without a byte order say which one by the byte order mark, else by the zeros.
fn named(charset: &str, bytes: &[u8]) -> Result<Option<Encoding>, HttpError> {
    let charset = charset.to_ascii_lowercase();
    let encoding = match charset.as_str() {
        "utf-8" | "utf8" => Encoding::Utf8,
        "utf-16be" | "utf16be" => Encoding::Utf16Be,
        "utf-16le" | "utf16le" => Encoding::Utf16Le,
        "utf-32be" | "utf32be" => Encoding::Utf32Be,
        "utf-32le" | "utf32le" => Encoding::Utf32Le,
        "utf-16" | "utf16" => match detect(bytes)? {
            Encoding::Utf16Le => Encoding::Utf16Le,
            _ => Encoding::Utf16Be,
        },
        "utf-32" | "utf32" => match detect(bytes)? {
            Encoding::Utf32Le => Encoding::Utf32Le,
            _ => Encoding::Utf32Be,
        },
        "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "latin1" | "l1" => Encoding::Latin1,
        "us-ascii" | "ascii" => Encoding::Ascii,
        _ => return Ok(None),
    };
    Ok(Some(encoding))
}

/// A body as UTF-8 bytes: borrowed when it is UTF-8 already (its byte order mark skipped),
/// transcoded otherwise. Invalid code units (an odd length of UTF-16, a lone surrogate, a
/// UTF-32 value that is not a character) are Confluent's 400.
fn utf8_body<'a>(bytes: &'a [u8], charset: Option<&str>) -> Result<Cow<'a, [u8]>, HttpError> {
    let encoding = match charset.map(|charset| named(charset, bytes)).transpose()? {
        Some(Some(encoding)) => encoding,
        _ => detect(bytes)?,
    };
    let bytes = bytes.strip_prefix(encoding.bom()).unwrap_or(bytes);
    let invalid = |what: &str| {
        HttpError::MalformedBody(format!(
            "the request body is not valid {}: {what}",
            encoding.name()
        ))
    };
    let text: String = match encoding {
        Encoding::Utf8 => return Ok(Cow::Borrowed(bytes)),
        Encoding::Ascii if bytes.is_ascii() => return Ok(Cow::Borrowed(bytes)),
        Encoding::Ascii => return Err(invalid("it holds a byte above 0x7F")),
        Encoding::Latin1 => bytes.iter().map(|&byte| char::from(byte)).collect(),
        Encoding::Utf16Be | Encoding::Utf16Le => {
            let units = bytes.chunks_exact(2);
            if !units.remainder().is_empty() {
                return Err(invalid("its length is an odd number of bytes"));
            }
            let units = units.map(|pair| {
                let pair = [pair[0], pair[1]];
                if encoding == Encoding::Utf16Be {
                    u16::from_be_bytes(pair)
                } else {
                    u16::from_le_bytes(pair)
                }
            });
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .map_err(|error| invalid(&error.to_string()))?
        }
        Encoding::Utf32Be | Encoding::Utf32Le => {
            let units = bytes.chunks_exact(4);
            if !units.remainder().is_empty() {
                return Err(invalid("its length is not a multiple of 4 bytes"));
            }
            units
                .map(|quad| {
                    let quad = [quad[0], quad[1], quad[2], quad[3]];
                    let value = if encoding == Encoding::Utf32Be {
                        u32::from_be_bytes(quad)
                    } else {
                        u32::from_le_bytes(quad)
                    };
                    char::from_u32(value)
                        .ok_or_else(|| invalid(&format!("{value:#x} is not a character")))
                })
                .collect::<Result<String, _>>()?
        }
    };
    Ok(Cow::Owned(text.into_bytes()))
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
            // As JAX-RS's `MediaType.isCompatible`: a wildcard type matches every type whatever
            // the subtype (`*/*`, `*/json`), a wildcard subtype every subtype of its type.
            let (main, sub) = kind.split_once('/').unwrap_or((kind, "*"));
            let specificity = if kind.eq_ignore_ascii_case(name) {
                3
            } else if main.trim() == "*" {
                1
            } else if main.trim().eq_ignore_ascii_case("application") && sub.trim() == "*" {
                2
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
        // Wildcards in either part, as JAX-RS matches them.
        for wildcard in [
            "*/*",
            "*",
            "*/anything",
            "*/json",
            "application/*",
            "APPLICATION/*",
        ] {
            assert_eq!(accept(wildcard), Some(Media::V1), "{wildcard}");
        }
        assert_eq!(accept("text/*"), None);
        assert_eq!(accept("text/html, */whatever;q=0.2"), Some(Media::V1));
        assert_eq!(accept("application/json, */json;q=0.1"), Some(Media::Json));
        assert_eq!(accept("application/json;q=0"), None);
        assert_eq!(accept("application/json;q=banana"), None);
        assert_eq!(accept(",,;;=,"), None);
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Body {
        schema: String,
    }

    fn encode(text: &str, encoding: Encoding, bom: bool) -> Vec<u8> {
        let mut bytes = if bom {
            encoding.bom().to_vec()
        } else {
            Vec::new()
        };
        for c in text.chars() {
            match encoding {
                Encoding::Utf8 | Encoding::Ascii | Encoding::Latin1 => {
                    bytes.extend(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                Encoding::Utf16Be | Encoding::Utf16Le => {
                    for unit in c.encode_utf16(&mut [0; 2]) {
                        bytes.extend(if encoding == Encoding::Utf16Be {
                            unit.to_be_bytes()
                        } else {
                            unit.to_le_bytes()
                        });
                    }
                }
                Encoding::Utf32Be => bytes.extend(u32::from(c).to_be_bytes()),
                Encoding::Utf32Le => bytes.extend(u32::from(c).to_le_bytes()),
            }
        }
        bytes
    }

    #[test]
    fn bodies_are_read_in_utf_16_and_utf_32_as_jackson_reads_them() {
        let text = r#"{"schema": "\"string\" é 𝄞"}"#;
        let expected = Body {
            schema: "\"string\" é 𝄞".to_owned(),
        };
        for encoding in [
            Encoding::Utf8,
            Encoding::Utf16Be,
            Encoding::Utf16Le,
            Encoding::Utf32Be,
            Encoding::Utf32Le,
        ] {
            for bom in [false, true] {
                let bytes = encode(text, encoding, bom);
                let charsets: &[Option<&str>] = match encoding {
                    Encoding::Utf16Be | Encoding::Utf16Le => &[None, Some("UTF-16")],
                    Encoding::Utf32Be | Encoding::Utf32Le => &[None, Some("utf-32")],
                    _ => &[None, Some("utf-8")],
                };
                for charset in charsets.iter().copied().chain([Some(encoding.name())]) {
                    let body: Result<Body, _> = parse_json_body_as(&bytes, charset);
                    assert_eq!(
                        body.ok().as_ref(),
                        Some(&expected),
                        "{encoding:?} bom={bom} charset={charset:?}"
                    );
                }
                let unknown: Result<Body, _> = parse_json_body_as(&bytes, Some("x-unknown"));
                assert_eq!(unknown.ok().as_ref(), Some(&expected), "{encoding:?}");
            }
        }
        // Latin-1 by its charset only.
        let latin1 = b"{\"schema\": \"caf\xE9\"}";
        let body: Result<Body, _> = parse_json_body_as(latin1, Some("ISO-8859-1"));
        assert_eq!(body.ok().map(|b| b.schema), Some("café".to_owned()));
        // Bad encodings: Confluent's 400.
        let utf16 = encode(text, Encoding::Utf16Le, false);
        let cases: [(&[u8], Option<&str>); 6] = [
            (&utf16[..utf16.len() - 1], None),
            (b"{\x00\"\x00\x00\xD8}\x00", None),
            (&[0x00, 0x00, 0xFF, 0xFE, 0, 0, 0, b'{'], None),
            (&[b'{', 0, 0, 0, 0, 0, 0x11, 0x00], None),
            (b"{\"schema\": \"\xE9\"}", Some("us-ascii")),
            (b"{\"schema\": \"\xE9\"}", None),
        ];
        for (bytes, charset) in cases {
            assert!(
                matches!(
                    parse_json_body_as::<Body>(bytes, charset),
                    Err(HttpError::MalformedBody(_))
                ),
                "{bytes:?} {charset:?}"
            );
        }
        let content_type = HeaderValue::from_static("application/json; Charset=\"UTF-16LE\"");
        assert_eq!(charset_of(&content_type), Some("UTF-16LE"));
        assert_eq!(charset_of(&HeaderValue::from_static(JSON)), None);
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
