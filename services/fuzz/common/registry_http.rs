//! The body of the fuzz target `registry_http_bodies` (shared with the stable replay test of the
//! service crate, which includes this file): arbitrary bytes as the body of each Confluent HTTP
//! route that takes one (register, lookup, the two compatibility tests, config PUT, mode PUT),
//! through the handlers' own body extraction (`http::extract`: Content-Type check, JSON), their
//! validation, the schema parse, the compatibility check against a stand-in subject, and the
//! answer or error as the HTTP response the client would get — everything but the store.
//!
//! Input: byte 0 picks the route and its query flags, byte 1 the subject's mode, level and the
//! Content-Type, the rest is the body.

use axum::http::HeaderValue;
use axum::response::IntoResponse;
use tributary_registry::http::error::HttpError;
use tributary_registry::http::extract::{check_content_type, parse_json_body};
use tributary_registry::http::handlers::{parse_level, parse_mode};
use tributary_registry::http::wire::{CompatibilityJson, ConfigUpdate, ModeJson, SchemaRequest};
use tributary_registry::model::VersionSelector;
use tributary_registry::registry::RegisterRequest;

use crate::registry::{Outcome, SUBJECT};

/// Content-Types a client sends (the last ones are refused).
const CONTENT_TYPES: [Option<&str>; 6] = [
    Some("application/vnd.schemaregistry.v1+json"),
    Some("application/json; charset=utf-8"),
    None,
    Some("application/octet-stream"),
    Some("application/vnd.schemaregistry+json"),
    Some("text/plain"),
];

/// The subject a route's path names: the stand-in subject, or another one.
fn subject(flags: u8) -> &'static str {
    if flags & 0x80 == 0 { SUBJECT } else { "other" }
}

/// Runs one input; true when it was accepted. Panics on a broken invariant only.
pub fn body(data: &[u8]) -> bool {
    let [route, setting, body @ ..] = data else {
        return false;
    };
    let mode = crate::registry::mode_of(*setting);
    let level = crate::registry::level_of(*setting / 3);
    let content_type = CONTENT_TYPES[usize::from(*setting / 21) % CONTENT_TYPES.len()];
    let flags = *route / 6;
    let normalize = flags & 1 != 0;
    let verbose = flags & 2 != 0;
    let header = content_type.map(HeaderValue::from_static);
    let outcome: Result<(), HttpError> = check_content_type(header.as_ref()).and_then(|()| {
        match route % 6 {
            // POST /subjects/{subject}/versions
            0 => {
                let mut request: SchemaRequest = parse_json_body(body)?;
                let references = request.references();
                let register = RegisterRequest {
                    subject: subject(flags).to_owned(),
                    schema: request.schema.unwrap_or_default(),
                    schema_type: request.schema_type.unwrap_or_default(),
                    references,
                    normalize,
                    id: request.id,
                    version: request.version,
                };
                match crate::registry::register(&register, mode, level)? {
                    Outcome::Registered { fingerprint } => assert_eq!(fingerprint.len(), 32),
                    _ => unreachable!("register registers"),
                }
                Ok(())
            }
            // POST /subjects/{subject}
            1 => {
                let mut request: SchemaRequest = parse_json_body(body)?;
                let references = request.references();
                crate::registry::lookup(
                    subject(flags),
                    request.schema.as_deref().unwrap_or_default(),
                    request.schema_type.as_deref().unwrap_or_default(),
                    &references,
                    normalize,
                )?;
                Ok(())
            }
            // POST /compatibility/subjects/{subject}/versions[/{version}]
            2 | 3 => {
                let mut request: SchemaRequest = parse_json_body(body)?;
                let version = (route % 6 == 3).then(|| {
                    [
                        VersionSelector::Latest,
                        VersionSelector::Number(1),
                        VersionSelector::Number(3),
                        VersionSelector::Number(4),
                    ][usize::from(flags >> 2) % 4]
                });
                let references = request.references();
                let Outcome::Tested(report) = crate::registry::check_compatibility(
                    subject(flags),
                    request.schema.as_deref().unwrap_or_default(),
                    request.schema_type.as_deref().unwrap_or_default(),
                    &references,
                    version,
                    normalize,
                    level,
                )?
                else {
                    unreachable!("a test answers a report")
                };
                let answer = CompatibilityJson::new(&report, verbose);
                let json = serde_json::to_vec(&answer).expect("the answer serializes");
                assert!(json.len() < 64 * 1024, "{} bytes of answer", json.len());
                Ok(())
            }
            // PUT /config[/{subject}]
            4 => {
                let update: ConfigUpdate = parse_json_body(body)?;
                let level = parse_level(update.compatibility.as_deref())?;
                assert_eq!(parse_level(Some(level.as_str())).ok(), Some(level));
                Ok(())
            }
            // PUT /mode[/{subject}]
            _ => {
                let update: ModeJson = parse_json_body(body)?;
                let mode = parse_mode(update.mode.as_deref())?;
                assert_eq!(parse_mode(Some(mode.as_str())).ok(), Some(mode));
                Ok(())
            }
        }
    });
    match outcome {
        Ok(()) => true,
        Err(error) => {
            if print_refusals() {
                eprintln!("  {error}");
            }
            let response = error.into_response();
            let status = response.status().as_u16();
            assert!(
                (400..500).contains(&status),
                "a request's error answered {status}"
            );
            false
        }
    }
}

/// Whether to print why an input was refused (`FUZZ_VERBOSE` set: the stable programs).
fn print_refusals() -> bool {
    static VERBOSE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *VERBOSE.get_or_init(|| std::env::var_os("FUZZ_VERBOSE").is_some())
}
