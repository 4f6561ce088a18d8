//! The messaging service under hostile or broken input (issue 15, the operational side): a
//! request stream that fails ends ProduceStream with an error status, never OK; timestamps
//! outside what Kafka takes are refused per record; a Produce response stays small whatever its
//! records' errors say; Consume streams are capped, and each costs a bounded number of
//! descriptors; connections are capped and idle ones closed, quiet streams kept. After each,
//! the service answers a normal request.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::BufMut;
use tonic::Code;
use tonic_types::StatusExt;
use tributary_proto::messaging::v1 as pb;
use tributary_proto::messaging::v1::messaging_service_client::MessagingServiceClient;
use tributary_tests::records::{avro_inline, error, metadata, produce, record, text};
use tributary_tests::{
    MessagingProcess, TestConsumer, TestMessaging, TestRegistry, flood, security,
    threads_and_descriptors, unique_name,
};

const WAIT: Duration = Duration::from_secs(30);

/// A normal Produce and its record consumed back: the service is healthy.
async fn answers_normally(messaging: &TestMessaging, topic: &str) {
    let results = produce(messaging, vec![record(topic, text("healthy"))]).await;
    let written = metadata(&results[0]).clone();
    let mut consumer = messaging
        .consume(pb::Subscription {
            group_id: unique_name("healthy"),
            partitions: vec![pb::TopicPartition {
                topic: topic.to_owned(),
                partition: written.partition,
            }],
            start: pb::StartPosition::Offset as i32,
            start_offset: written.offset,
            value_format: pb::PayloadFormat::Raw as i32,
            key_format: pb::PayloadFormat::Raw as i32,
            ..Default::default()
        })
        .await;
    let consumed = consumer.next_record(WAIT).await;
    assert_eq!(consumed.offset, written.offset);
}

/// Writes request messages as given bytes (so a test can send one that does not decode) and
/// reads ProduceStream responses.
#[derive(Debug, Clone, Default)]
struct RawRequests;

#[derive(Debug)]
struct RawEncoder;

#[derive(Debug)]
struct ResponseDecoder;

impl tonic::codec::Codec for RawRequests {
    type Encode = Vec<u8>;
    type Decode = pb::ProduceStreamResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder
    }
}

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for ResponseDecoder {
    type Item = pb::ProduceStreamResponse;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Self::Item>, tonic::Status> {
        prost::Message::decode(src)
            .map(Some)
            .map_err(|error| tonic::Status::internal(error.to_string()))
    }
}

#[tokio::test]
async fn produce_stream_ends_with_an_error_status_when_the_client_stream_fails() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("client-error");
    messaging.create_topic(&topic, 1).await;

    let valid = prost::Message::encode_to_vec(&pb::ProduceStreamRequest {
        record: Some(record(&topic, text("before the bad message"))),
        ..Default::default()
    });
    // Field 1, five bytes long, with one byte there: not a ProduceStreamRequest.
    let undecodable = vec![0x0a, 0x05, 0x01];
    let mut grpc = tonic::client::Grpc::new(security::admin_channel(messaging.addr).await);
    grpc.ready().await.unwrap();
    let mut responses = grpc
        .streaming(
            tonic::Request::new(tokio_stream::iter(vec![valid, undecodable])),
            http::uri::PathAndQuery::from_static(
                "/tributary.messaging.v1.MessagingService/ProduceStream",
            ),
            RawRequests,
        )
        .await
        .unwrap()
        .into_inner();

    // The record read before the failure gets its result...
    let first = tokio::time::timeout(WAIT, responses.message())
        .await
        .unwrap()
        .unwrap()
        .expect("the result of the first record");
    assert_eq!(first.sequence, 0);
    assert!(
        matches!(
            first.result.and_then(|r| r.result),
            Some(pb::produce_result::Result::Metadata(_))
        ),
        "the first record is produced"
    );
    // ... and the stream ends with an error naming the failure, not with OK.
    let end = tokio::time::timeout(WAIT, responses.message())
        .await
        .unwrap();
    let status = end.expect_err("the stream ends with an error status");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        status.get_details_error_info().unwrap().reason,
        "REQUEST_STREAM_FAILED"
    );
    assert!(
        status.message().contains("request stream failed"),
        "{status:?}"
    );

    answers_normally(&messaging, &topic).await;
    messaging.stop().await.unwrap();
}

#[tokio::test]
async fn timestamps_and_offsets_outside_what_kafka_takes_are_refused() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("timestamps");
    messaging.create_topic(&topic, 1).await;
    let stamped = |seconds: i64, nanos: i32| pb::ProducerRecord {
        timestamp: Some(prost_types::Timestamp { seconds, nanos }),
        ..record(&topic, text(&format!("{seconds}")))
    };
    let results = produce(
        &messaging,
        vec![
            stamped(i64::MIN, 0),
            stamped(-1, 0),
            stamped(253_402_300_800, 0),
            stamped(i64::MAX, 999_999_999),
            stamped(1_700_000_000, 1_000_000_000),
            stamped(1_700_000_000, 250_000_000),
        ],
    )
    .await;
    for result in &results[..5] {
        let error = error(result);
        assert_eq!(error.code, Code::InvalidArgument as i32, "{error:?}");
        assert!(error.message.contains("timestamp"), "{error:?}");
    }
    let written = metadata(&results[5]).clone();

    // Only the valid record reached Kafka, with its timestamp.
    let mut consumer = messaging
        .consume(pb::Subscription {
            group_id: unique_name("g"),
            partitions: vec![pb::TopicPartition {
                topic: topic.clone(),
                partition: 0,
            }],
            start: pb::StartPosition::Earliest as i32,
            value_format: pb::PayloadFormat::Raw as i32,
            key_format: pb::PayloadFormat::Raw as i32,
            ..Default::default()
        })
        .await;
    let consumed = consumer.next_record(WAIT).await;
    assert_eq!(consumed.offset, written.offset);
    assert_eq!(consumed.offset, 0, "nothing before the valid record");
    assert_eq!(
        consumed.timestamp,
        Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 250_000_000
        })
    );

    // A Consume from a timestamp out of range is refused too, naming the field.
    let status = messaging
        .client()
        .await
        .consume(tokio_stream::iter(vec![pb::ConsumeRequest {
            kind: Some(pb::consume_request::Kind::Subscription(pb::Subscription {
                group_id: unique_name("g"),
                partitions: vec![pb::TopicPartition {
                    topic: topic.clone(),
                    partition: 0,
                }],
                start: pb::StartPosition::Timestamp as i32,
                start_time: Some(prost_types::Timestamp {
                    seconds: i64::MIN,
                    nanos: 0,
                }),
                ..Default::default()
            })),
        }]))
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("start_time"), "{status:?}");

    // Negative offsets (librdkafka's logical ones: -2010 would be "10 from the end") too.
    let status = messaging
        .client()
        .await
        .consume(tokio_stream::iter(vec![pb::ConsumeRequest {
            kind: Some(pb::consume_request::Kind::Subscription(pb::Subscription {
                group_id: unique_name("g"),
                partitions: vec![pb::TopicPartition {
                    topic: topic.clone(),
                    partition: 0,
                }],
                start: pb::StartPosition::Offset as i32,
                start_offset: -2010,
                ..Default::default()
            })),
        }]))
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("start_offset"), "{status:?}");
    consumer
        .requests
        .send(pb::ConsumeRequest {
            kind: Some(pb::consume_request::Kind::Seek(pb::Seek {
                topic: topic.clone(),
                partition: 0,
                offset: -2,
            })),
        })
        .await
        .unwrap();
    let ended = tokio::time::timeout(WAIT, consumer.responses.message())
        .await
        .unwrap()
        .expect_err("a negative seek ends the stream with an error");
    assert_eq!(ended.code(), Code::InvalidArgument, "{ended:?}");

    answers_normally(&messaging, &topic).await;
    messaging.stop().await.unwrap();
}

#[tokio::test]
async fn a_produce_response_stays_small_whatever_its_errors_say() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("errors");
    messaging.create_topic(&topic, 1).await;
    // A record of 12 int fields, registered by a first record; then 100 records with every
    // field a string: each is refused by the registry with 12 incompatibilities (a message of
    // 1.4 KiB).
    let schema = |kind: &str| {
        let fields: Vec<serde_json::Value> = (0..12)
            .map(|i| serde_json::json!({"name": format!("field_{i}"), "type": kind}))
            .collect();
        serde_json::json!({"type": "record", "name": "Wide", "fields": fields}).to_string()
    };
    let ints = schema("int");
    let strings = schema("string");
    let value = |v: serde_json::Value| {
        let object: serde_json::Map<String, serde_json::Value> =
            (0..12).map(|i| (format!("field_{i}"), v.clone())).collect();
        serde_json::Value::Object(object).to_string()
    };
    let first = produce(
        &messaging,
        vec![record(
            &topic,
            avro_inline(&ints, &value(serde_json::json!(1))),
        )],
    )
    .await;
    metadata(&first[0]);
    let records = (0..100)
        .map(|_| {
            record(
                &topic,
                avro_inline(&strings, &value(serde_json::json!("x"))),
            )
        })
        .collect();
    let response = messaging
        .client()
        .await
        .produce(pb::ProduceRequest { records })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.results.len(), 100);
    let bytes = prost::Message::encoded_len(&response);
    assert!(bytes < 64 * 1024, "a response of {bytes} bytes");
    let mut with_message = 0;
    for result in &response.results {
        let error = error(result);
        assert_eq!(error.code, Code::FailedPrecondition as i32, "{error:?}");
        assert!(error.message.len() <= 1100, "{} bytes", error.message.len());
        if !error.message.is_empty() {
            with_message += 1;
        }
    }
    assert_eq!(with_message, 32);
    assert_eq!(response.errors_without_message, 68);

    answers_normally(&messaging, &topic).await;
    messaging.stop().await.unwrap();
}

/// Opens a group Consume stream on `topic` and waits for its partition assignment (its
/// consumer has then joined the group: its threads and sockets are up).
async fn assigned_stream(
    client: MessagingServiceClient<tributary_tests::AuthChannel>,
    topic: &str,
) -> TestConsumer {
    let mut consumer = TestConsumer::open(
        client,
        pb::Subscription {
            group_id: unique_name("cost"),
            topics: vec![topic.to_owned()],
            value_format: pb::PayloadFormat::Raw as i32,
            key_format: pb::PayloadFormat::Raw as i32,
            ..Default::default()
        },
    )
    .await;
    match consumer.next(WAIT).await {
        pb::consume_response::Kind::Rebalance(rebalance) => {
            assert!(!rebalance.assigned.is_empty(), "{rebalance:?}")
        }
        other => panic!("expected an assignment, got {other:?}"),
    }
    consumer
}

#[tokio::test]
async fn consume_streams_are_capped_and_each_costs_a_bounded_number_of_descriptors() {
    let registry = TestRegistry::start().await;
    let messaging = MessagingProcess::spawn_with(
        &registry.endpoint(),
        &[("MESSAGING_MAX_CONSUME_STREAMS", "11")],
    )
    .await;
    let topic = unique_name("cost");
    messaging.create_topic(&topic, 1).await;
    let client = messaging.client().await;

    let first = assigned_stream(client.clone(), &topic).await;
    let (threads_before, descriptors_before) = threads_and_descriptors(messaging.pid());
    let mut streams = vec![first];
    for _ in 0..10 {
        streams.push(assigned_stream(client.clone(), &topic).await);
    }
    let (threads_after, descriptors_after) = threads_and_descriptors(messaging.pid());
    let threads = threads_after.saturating_sub(threads_before) as f64 / 10.0;
    let descriptors = descriptors_after.saturating_sub(descriptors_before) as f64 / 10.0;
    eprintln!("each Consume stream: {threads} threads, {descriptors} file descriptors");
    assert!(
        descriptors <= tributary_messaging::consume::DESCRIPTORS_PER_STREAM as f64,
        "{descriptors} descriptors per stream, over the budget the cap is fitted with"
    );

    // The twelfth stream is refused, naming the limit and the flag.
    let status = client
        .clone()
        .consume(tokio_stream::iter(vec![pb::ConsumeRequest {
            kind: Some(pb::consume_request::Kind::Subscription(pb::Subscription {
                group_id: unique_name("refused"),
                topics: vec![topic.clone()],
                ..Default::default()
            })),
        }]))
        .await
        .expect_err("over the cap");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("11") && status.message().contains("MAX_CONSUME_STREAMS"),
        "{status:?}"
    );
    assert_eq!(
        status.get_details_error_info().unwrap().reason,
        "TOO_MANY_CONSUME_STREAMS"
    );

    // A stream that ends gives its place back.
    drop(streams.pop());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let opened = client
            .clone()
            .consume(tokio_stream::iter(vec![pb::ConsumeRequest {
                kind: Some(pb::consume_request::Kind::Subscription(pb::Subscription {
                    group_id: unique_name("again"),
                    topics: vec![topic.clone()],
                    ..Default::default()
                })),
            }]))
            .await;
        match opened {
            Ok(_) => break,
            Err(status) if status.code() == Code::ResourceExhausted => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the place never came back"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!("{status:?}"),
        }
    }
    drop(streams);
    let results = client
        .clone()
        .produce(pb::ProduceRequest {
            records: vec![record(&topic, text("healthy"))],
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    metadata(&results[0]);
    messaging.terminate().await;
}

#[tokio::test]
async fn connections_past_the_cap_are_refused_and_idle_ones_closed_but_quiet_streams_kept() {
    let registry = TestRegistry::start().await;
    let messaging = MessagingProcess::spawn_with(
        &registry.endpoint(),
        &[
            ("MESSAGING_MAX_CONNECTIONS", "20"),
            // Silent connections go after 10 s; a connection idle after a call after 5 s.
            ("MESSAGING_HEADER_READ_TIMEOUT_MS", "10000"),
            ("MESSAGING_IDLE_TIMEOUT_MS", "5000"),
        ],
    )
    .await;
    let topic = unique_name("quiet");
    messaging.create_topic(&topic, 1).await;
    // A Consume stream with nothing to read: a call in flight, however quiet.
    let mut quiet = assigned_stream(messaging.client().await, &topic).await;

    let mut held = flood::open_tls(messaging.addr, b"h2", 30, b"").await;
    assert!(
        (15..=19).contains(&held.len()),
        "{} connections admitted under a cap of 20 (the stream's among them)",
        held.len()
    );
    // Every silent connection is closed...
    assert_eq!(
        flood::count_closed(&mut held, Duration::from_secs(60)).await,
        held.len()
    );
    // ... and the stream, open for longer than the idle timeout by now, still delivers.
    let results = produce_to(&messaging, &topic).await;
    let consumed = quiet.next_record(WAIT).await;
    assert_eq!(consumed.offset, metadata(&results[0]).offset);
    messaging.terminate().await;
}

async fn produce_to(messaging: &MessagingProcess, topic: &str) -> Vec<pb::ProduceResult> {
    messaging
        .client()
        .await
        .produce(pb::ProduceRequest {
            records: vec![record(topic, text("after the flood"))],
        })
        .await
        .unwrap()
        .into_inner()
        .results
}
