//! Answers of a unary Produce: the deadline it is answered by, and its results on the wire.

use std::time::Duration;

use tributary_proto::messaging::v1 as pb;

use crate::error::MessagingError;

/// The `grpc-timeout` a client sent (its deadline, relative to when the call was sent), if
/// it is well formed: up to 8 digits and a unit (H, M, S, m, u, n).
pub fn grpc_timeout(metadata: &tonic::metadata::MetadataMap) -> Option<Duration> {
    let value = metadata.get("grpc-timeout")?.to_str().ok()?;
    if !(2..=9).contains(&value.len()) {
        return None;
    }
    let (digits, unit) = value.split_at(value.len().saturating_sub(1));
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// When a unary call started at `start` must be answered: a little before the earlier of the
/// client's deadline and the server's own limit (a tenth of it, at most a second, is left for
/// the answer to travel). `None` when neither is set.
pub fn answer_deadline(
    start: tokio::time::Instant,
    client: Option<Duration>,
    server: Option<Duration>,
) -> Option<tokio::time::Instant> {
    let limit = match (client, server) {
        (Some(client), Some(server)) => client.min(server),
        (client, server) => client.or(server)?,
    };
    let margin = limit
        .checked_div(10)
        .unwrap_or_default()
        .min(Duration::from_secs(1));
    start.checked_add(limit.saturating_sub(margin))
}

/// The most failed records of one Produce response whose errors carry a message; the later
/// ones carry their code and reason only (and are counted in the response's
/// `errors_without_message`), so the messages of a response stay under 32 x 1 KiB whatever the
/// number of records.
pub const MAX_ERROR_MESSAGES_PER_RESPONSE: usize = 32;

/// The results of a Produce, in order: the first [`MAX_ERROR_MESSAGES_PER_RESPONSE`] errors
/// with their messages, the rest without (counted).
pub fn results_to_wire(
    results: Vec<Result<pb::RecordMetadata, MessagingError>>,
) -> pb::ProduceResponse {
    let mut with_message = 0usize;
    let mut errors_without_message = 0u32;
    let results = results
        .into_iter()
        .map(|result| match result {
            Err(error) if with_message >= MAX_ERROR_MESSAGES_PER_RESPONSE => {
                tracing::debug!(%error, "record not produced");
                errors_without_message = errors_without_message.saturating_add(1);
                let mut wire = error.to_record_error();
                wire.message.clear();
                pb::ProduceResult {
                    result: Some(pb::produce_result::Result::Error(wire)),
                }
            }
            result => {
                if result.is_err() {
                    with_message = with_message.saturating_add(1);
                }
                result_to_wire(result)
            }
        })
        .collect();
    pb::ProduceResponse {
        results,
        errors_without_message,
    }
}

/// The wire form of one outcome (an error's message at most
/// [`crate::error::MAX_RECORD_ERROR_MESSAGE_BYTES`]).
pub fn result_to_wire(result: Result<pb::RecordMetadata, MessagingError>) -> pb::ProduceResult {
    pb::ProduceResult {
        result: Some(match result {
            Ok(metadata) => pb::produce_result::Result::Metadata(metadata),
            Err(error) => {
                tracing::debug!(%error, "record not produced");
                pb::produce_result::Result::Error(error.to_record_error())
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_are_read_as_the_protocol_writes_them() {
        let timeout = |value: &str| {
            let mut metadata = tonic::metadata::MetadataMap::new();
            metadata.insert("grpc-timeout", value.parse().expect("ascii"));
            grpc_timeout(&metadata)
        };
        assert_eq!(timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(
            timeout("99999999H"),
            Some(Duration::from_secs(99_999_999 * 3600))
        );
        assert_eq!(timeout("7n"), Some(Duration::from_nanos(7)));
        for bad in ["", "S", "3", "3s", "+3S", "-3S", "123456789S", "3 S"] {
            assert_eq!(timeout(bad), None, "{bad:?}");
        }
        assert_eq!(grpc_timeout(&tonic::metadata::MetadataMap::new()), None);
    }

    #[test]
    fn a_unary_call_is_answered_a_little_before_the_earlier_deadline() {
        let start = tokio::time::Instant::now();
        let at = |client, server| answer_deadline(start, client, server).map(|at| at - start);
        assert_eq!(at(None, None), None);
        assert_eq!(
            at(Some(Duration::from_secs(3)), None),
            Some(Duration::from_millis(2700))
        );
        assert_eq!(
            at(Some(Duration::from_secs(60)), Some(Duration::from_secs(20))),
            Some(Duration::from_secs(19))
        );
        assert_eq!(
            at(None, Some(Duration::from_secs(330))),
            Some(Duration::from_secs(329))
        );
        assert_eq!(at(Some(Duration::ZERO), None), Some(Duration::ZERO));
        // A deadline past what an Instant holds: no answer deadline, and no panic.
        assert_eq!(at(Some(Duration::MAX), None), None);
    }

    #[test]
    fn only_the_first_errors_of_a_response_carry_their_message() {
        let failed = || {
            Err(MessagingError::Registry {
                code: tonic::Code::FailedPrecondition,
                message: "incompatible: ".repeat(10_000),
                answered: true,
            })
        };
        let mut results: Vec<_> = (0..1000).map(|_| failed()).collect();
        results.insert(
            0,
            Ok(pb::RecordMetadata {
                topic: "t".to_owned(),
                ..Default::default()
            }),
        );
        let response = results_to_wire(results);
        assert_eq!(response.results.len(), 1001);
        assert_eq!(
            response.errors_without_message as usize,
            1000 - MAX_ERROR_MESSAGES_PER_RESPONSE
        );
        let bytes = prost::Message::encoded_len(&response);
        assert!(bytes < 64 * 1024, "{bytes} bytes");
        let with_message = response
            .results
            .iter()
            .filter(|result| {
                matches!(&result.result, Some(pb::produce_result::Result::Error(error)) if !error.message.is_empty())
            })
            .count();
        assert_eq!(with_message, MAX_ERROR_MESSAGES_PER_RESPONSE);
    }
}
