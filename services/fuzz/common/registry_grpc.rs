//! The body of the fuzz target `registry_grpc_requests` (shared with the stable replay test of
//! the service crate, which includes this file): arbitrary bytes decoded (prost) as each
//! `tributary.registry.v1` request message, then what `grpc.rs`'s handler does with it before the
//! store: the wire values' validation and conversion (versions, levels, modes, page tokens,
//! references, IMPORT ids), the registry's checks, schema parse and compatibility against a
//! stand-in subject, the answer as its protobuf and an error as the gRPC status the client would
//! get.
//!
//! Input: byte 0 picks the message (and the subject's mode and level), the rest is the message.

use prost::Message;
use tributary_proto::registry::v1 as pb;
use tributary_registry::RegistryError;
use tributary_registry::grpc::{
    compatibility_to_wire, decode_page_token, encode_page_token, level_from_wire, level_to_wire,
    list_subjects_from_wire, mode_from_wire, mode_to_wire, references_from_wire,
};
use tributary_registry::model::VersionSelector;
use tributary_registry::registry::{MAX_PAGE_SIZE, RegisterRequest, validate_subject};

use crate::registry::Outcome;

/// How many request messages there are.
const MESSAGES: u8 = 17;

/// `validate_subject` where the registry checks a subject that may be empty (the global one).
fn subject_or_global(subject: &str) -> Result<(), RegistryError> {
    if subject.is_empty() {
        Ok(())
    } else {
        validate_subject(subject)
    }
}

fn handle(kind: u8, setting: u8, message: &[u8]) -> Result<bool, RegistryError> {
    let mode = crate::registry::mode_of(setting);
    let level = crate::registry::level_of(setting / 3);
    // A message that does not decode is tonic's INVALID_ARGUMENT before any handler.
    macro_rules! decode {
        ($t:ty) => {
            match <$t>::decode(message) {
                Ok(request) => request,
                Err(_) => return Ok(false),
            }
        };
    }
    match kind {
        0 => {
            let request = decode!(pb::RegisterSchemaRequest);
            let register = RegisterRequest {
                subject: request.subject,
                schema: request.schema,
                schema_type: request.schema_type,
                references: references_from_wire(request.references),
                normalize: request.normalize,
                id: (request.id != 0).then_some(request.id),
                version: (request.version != 0).then_some(request.version),
            };
            let Outcome::Registered { .. } = crate::registry::register(&register, mode, level)?
            else {
                unreachable!("register registers")
            };
            let answer = pb::RegisterSchemaResponse {
                id: 1,
                version: 1,
                schema: register.schema,
            };
            assert!(!answer.encode_to_vec().is_empty());
        }
        1 => {
            let request = decode!(pb::LookupSchemaRequest);
            let references = references_from_wire(request.references);
            crate::registry::lookup(
                &request.subject,
                &request.schema,
                &request.schema_type,
                &references,
                request.normalize,
            )?;
        }
        2 => {
            let request = decode!(pb::GetSchemaRequest);
            let _ = request.id;
        }
        3 => {
            let request = decode!(pb::ListSchemaUsagesRequest);
            let _ = request.id;
        }
        4 => {
            let request = decode!(pb::GetSubjectVersionRequest);
            VersionSelector::from_wire(request.version)?;
            validate_subject(&request.subject)?;
        }
        5 => {
            let request = decode!(pb::ListSubjectsRequest);
            let (_filter, after, page_size) = list_subjects_from_wire(&request)?;
            assert!((1..=MAX_PAGE_SIZE).contains(&page_size) || page_size > MAX_PAGE_SIZE);
            assert_eq!(
                decode_page_token(&encode_page_token(&after))
                    .ok()
                    .as_deref(),
                Some(after.as_str()),
                "page tokens round-trip"
            );
        }
        6 => {
            let request = decode!(pb::ListVersionsRequest);
            validate_subject(&request.subject)?;
        }
        7 => {
            let request = decode!(pb::ListReferencedByRequest);
            VersionSelector::from_wire(request.version)?;
        }
        8 => {
            let request = decode!(pb::DeleteSubjectRequest);
            validate_subject(&request.subject)?;
        }
        9 => {
            let request = decode!(pb::DeleteSubjectVersionRequest);
            VersionSelector::from_wire(request.version)?;
            validate_subject(&request.subject)?;
        }
        10 => {
            let request = decode!(pb::CheckCompatibilityRequest);
            let version = match request.version {
                0 => None,
                other => Some(VersionSelector::from_wire(other)?),
            };
            let references = references_from_wire(request.references);
            let Outcome::Tested(report) = crate::registry::check_compatibility(
                &request.subject,
                &request.schema,
                &request.schema_type,
                &references,
                version,
                request.normalize,
                level,
            )?
            else {
                unreachable!("a test answers a report")
            };
            let answer = compatibility_to_wire(&report);
            assert_eq!(answer.is_compatible, answer.total_incompatibilities == 0);
            assert!(answer.total_incompatibilities >= answer.incompatibilities.len() as i64);
            assert!(
                answer.encoded_len() < 64 * 1024,
                "{} bytes",
                answer.encoded_len()
            );
        }
        11 => {
            let request = decode!(pb::GetCompatibilityLevelRequest);
            subject_or_global(&request.subject)?;
        }
        12 => {
            let request = decode!(pb::SetCompatibilityLevelRequest);
            let level = level_from_wire(request.level)?;
            assert_eq!(level_to_wire(level), request.level, "levels round-trip");
            subject_or_global(&request.subject)?;
        }
        13 => {
            let request = decode!(pb::DeleteCompatibilityLevelRequest);
            subject_or_global(&request.subject)?;
        }
        14 => {
            let request = decode!(pb::GetModeRequest);
            subject_or_global(&request.subject)?;
        }
        15 => {
            let request = decode!(pb::SetModeRequest);
            let mode = mode_from_wire(request.mode)?;
            assert_eq!(mode_to_wire(mode), request.mode, "modes round-trip");
            subject_or_global(&request.subject)?;
        }
        _ => {
            let request = decode!(pb::DeleteModeRequest);
            subject_or_global(&request.subject)?;
        }
    }
    Ok(true)
}

/// Runs one input; true when it was accepted. Panics on a broken invariant only.
pub fn body(data: &[u8]) -> bool {
    let [selector, setting, message @ ..] = data else {
        return false;
    };
    match handle(selector % MESSAGES, *setting, message) {
        Ok(accepted) => accepted,
        Err(error) => {
            if print_refusals() {
                eprintln!("  {error}");
            }
            let internal = matches!(
                error,
                RegistryError::Store(_) | RegistryError::StoreUnavailable(_)
            );
            assert!(!internal, "a request's error is a store error: {error}");
            let status = tonic::Status::from(error);
            assert_ne!(status.code(), tonic::Code::Internal, "{status:?}");
            // What goes on the wire: the trailers of the error (grpc-status, grpc-message
            // percent-encoded, grpc-status-details-bin), within a client's header limits.
            let mut trailers = tonic::codegen::http::HeaderMap::new();
            status
                .add_header(&mut trailers)
                .expect("the status makes valid trailers");
            let size: usize = trailers
                .iter()
                .map(|(name, value)| name.as_str().len() + value.len())
                .sum();
            assert!(size < 64 * 1024, "{size} bytes of trailers");
            false
        }
    }
}

/// Whether to print why an input was refused (`FUZZ_VERBOSE` set: the stable programs).
fn print_refusals() -> bool {
    static VERBOSE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *VERBOSE.get_or_init(|| std::env::var_os("FUZZ_VERBOSE").is_some())
}
