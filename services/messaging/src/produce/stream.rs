//! A `ProduceStream`: records prepared in chunks on tasks of their own, handed to librdkafka in
//! request order, their results answered in order (see the parent module).

use std::collections::VecDeque;

use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};
use tracing::Instrument;
use tributary_proto::messaging::v1 as pb;
use tributary_security::authz::Caller;

use super::delivery::Deliveries;
use super::{Producer, Recent, Traced, result_to_wire, results_to_wire};
use crate::error::MessagingError;

/// Most records of a stream prepared by one task: the requests that have arrived together, up
/// to this many, go to one task.
const PREPARE_CHUNK: usize = 64;

/// Prepares a chunk of a stream's records, in order.
async fn prepare_chunk(
    producer: Producer,
    caller: Caller,
    records: Vec<Option<pb::ProducerRecord>>,
) -> Vec<Traced> {
    let mut prepared = Vec::with_capacity(records.len());
    let mut recent = Recent::new(producer.access(), caller);
    for record in records {
        prepared.push(match record {
            Some(record) => producer.prepare_traced(record, &mut recent).await,
            None => Traced {
                prepared: Err(MessagingError::invalid("record", "required")),
                span: tracing::Span::none(),
            },
        });
    }
    prepared
}

/// The status a stream ends with when the client's request stream failed (a request that does
/// not decode, a reset): INVALID_ARGUMENT naming what failed.
pub fn request_stream_failed(status: &Status) -> Status {
    MessagingError::RequestStream {
        message: status.message().to_owned(),
    }
    .into()
}

/// Most results in one batched `ProduceStreamResponse` (~60 KiB of results).
const MAX_RESULTS_PER_RESPONSE: usize = 1000;

/// Adds the records of one `ProduceStream` request to `records`: `record` (an absent one fails
/// as "required" at its sequence number) or `record` and `records`. The stream's first request
/// decides whether its results are `batched`: they are when it carries `records`. More than
/// `max_in_flight` records in one message end the stream.
fn take_records(
    request: pb::ProduceStreamRequest,
    max_in_flight: usize,
    records: &mut Vec<Option<pb::ProducerRecord>>,
    batched: &mut Option<bool>,
) -> Result<(), Status> {
    let pb::ProduceStreamRequest {
        record,
        records: more,
    } = request;
    batched.get_or_insert(!more.is_empty());
    if more.is_empty() {
        records.push(record);
        return Ok(());
    }
    let count = more.len().saturating_add(usize::from(record.is_some()));
    if count > max_in_flight {
        return Err(MessagingError::invalid(
            "records",
            format!(
                "{count} records in one message; at most {max_in_flight} (the server's in-flight limit)"
            ),
        )
        .into());
    }
    records.extend(record.map(Some));
    records.extend(more.into_iter().map(Some));
    Ok(())
}

/// A batched `ProduceStreamResponse`: the first [`MAX_ERROR_MESSAGES_PER_RESPONSE`] errors
/// with their messages, as [`results_to_wire`] does.
fn sequenced_results_to_wire(
    results: Vec<(u64, Result<pb::RecordMetadata, MessagingError>)>,
) -> pb::ProduceStreamResponse {
    let (sequences, results): (Vec<u64>, Vec<_>) = results.into_iter().unzip();
    let results = sequences
        .into_iter()
        .zip(results_to_wire(results).results)
        .map(|(sequence, result)| pb::SequencedProduceResult {
            sequence,
            result: Some(result),
        })
        .collect();
    pb::ProduceStreamResponse {
        sequence: 0,
        result: None,
        results,
    }
}

/// Runs one `ProduceStream`: reads records, prepares them in chunks on tasks of their own, hands
/// them to librdkafka in request order and sends one result per record, in request order (one per
/// response, or the results known together in one response when the first request carried
/// `records`), with at most `max_in_flight` records being prepared or awaiting Kafka's
/// acknowledgement (checked before each message is read). Ends when
/// the client half-closes and every result is sent, when the client goes away, or (after the
/// results of what was read) with UNAVAILABLE when `stop` fires.
pub async fn run_stream(
    producer: Producer,
    caller: Caller,
    mut inbound: Streaming<pb::ProduceStreamRequest>,
    out: mpsc::Sender<Result<pb::ProduceStreamResponse, Status>>,
    max_in_flight: usize,
    stop: CancellationToken,
) {
    // Chunks being prepared, in request order, how many records each holds, and how many they
    // hold in all.
    let mut preparing: FuturesOrdered<JoinHandle<Vec<Traced>>> = FuturesOrdered::new();
    let mut chunk_sizes = VecDeque::new();
    let mut preparing_records: usize = 0;
    // Records handed to librdkafka, in request order.
    let mut in_flight = Deliveries::default();
    // The sequence number of the next record handed over (or failed before that).
    let mut sequence: u64 = 0;
    // Whether the results go out batched: when the first request carried `records`.
    let mut batched: Option<bool> = None;
    let mut reading = true;
    let mut end: Option<Status> = None;
    loop {
        if !reading && preparing.is_empty() && in_flight.is_empty() {
            break;
        }
        let room = max_in_flight.saturating_sub(preparing_records.saturating_add(in_flight.len()));
        tokio::select! {
            biased;
            Some((sequence, result)) = std::future::poll_fn(|cx| in_flight.poll_next(cx)),
                if !in_flight.is_empty() =>
            {
                let response = if batched == Some(true) {
                    // With the results known by now (polled without waiting: the next turn of
                    // the loop polls the oldest again, with this task's waker).
                    let mut results = vec![(sequence, result)];
                    while results.len() < MAX_RESULTS_PER_RESPONSE {
                        match std::future::poll_fn(|cx| in_flight.poll_next(cx)).now_or_never() {
                            Some(Some(next)) => results.push(next),
                            _ => break,
                        }
                    }
                    sequenced_results_to_wire(results)
                } else {
                    pb::ProduceStreamResponse {
                        sequence,
                        result: Some(result_to_wire(result)),
                        results: Vec::new(),
                    }
                };
                if out.send(Ok(response)).await.is_err() {
                    return;
                }
            }
            Some(chunk) = preparing.next(), if !preparing.is_empty() => {
                let count = chunk_sizes.pop_front().unwrap_or_default();
                preparing_records = preparing_records.saturating_sub(count);
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                    Err(_) => (0..count)
                        .map(|_| Traced {
                            prepared: Err(MessagingError::ShuttingDown),
                            span: tracing::Span::none(),
                        })
                        .collect(),
                };
                for traced in chunk {
                    let started = producer.send_traced(traced).await;
                    in_flight.push(sequence, started);
                    sequence = sequence.wrapping_add(1);
                }
            }
            () = stop.cancelled(), if reading => {
                reading = false;
                end = Some(MessagingError::ShuttingDown.into());
            }
            request = inbound.next(), if reading && room > 0 => {
                let mut records = Vec::new();
                match request {
                    Some(Ok(request)) => {
                        if let Err(status) =
                            take_records(request, max_in_flight, &mut records, &mut batched)
                        {
                            reading = false;
                            end = Some(status);
                            continue;
                        }
                    }
                    Some(Err(status)) => {
                        // The client's stream failed: the results of what was read still go
                        // out, then the stream ends with an error, never with OK.
                        reading = false;
                        end = Some(request_stream_failed(&status));
                        continue;
                    }
                    None => {
                        reading = false;
                        continue;
                    }
                }
                // The requests that have arrived already join the chunk.
                while records.len() < PREPARE_CHUNK.min(room) {
                    match inbound.next().now_or_never() {
                        Some(Some(Ok(request))) => {
                            if let Err(status) =
                                take_records(request, max_in_flight, &mut records, &mut batched)
                            {
                                reading = false;
                                end = Some(status);
                                break;
                            }
                        }
                        Some(Some(Err(status))) => {
                            reading = false;
                            end = Some(request_stream_failed(&status));
                            break;
                        }
                        Some(None) => {
                            reading = false;
                            break;
                        }
                        None => break,
                    }
                }
                // Prepared PREPARE_CHUNK at a time (a message may hold many records), the
                // chunks on tasks of their own, their results taken in order.
                let mut records = records.into_iter().peekable();
                while records.peek().is_some() {
                    let chunk: Vec<_> = records.by_ref().take(PREPARE_CHUNK).collect();
                    preparing_records = preparing_records.saturating_add(chunk.len());
                    chunk_sizes.push_back(chunk.len());
                    let chunk =
                        prepare_chunk(producer.clone(), caller.clone(), chunk).in_current_span();
                    preparing.push_back(tokio::spawn(chunk));
                }
            }
        }
    }
    if let Some(status) = end {
        let _ = out.send(Err(status)).await;
    }
}
