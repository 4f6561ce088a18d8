//! The messaging service's gRPC API against the stack's real Kafka and a real registry: topic
//! administration, produce (raw, JSON, text, Avro) with per-record errors, and at-least-once
//! consumption (acks, commits, redelivery, undecodable records, group rebalances).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use tonic::Code;
use tributary_proto::messaging::v1 as pb;
use tributary_proto::registry::v1 as registry_pb;
use tributary_tests::{TestConsumer, TestMessaging, unique_name};

use tributary_tests::records::{avro_inline, error, json, metadata, produce, raw, record, text};

const WAIT: Duration = Duration::from_secs(30);

fn group_subscription(group: &str, topic: &str, format: pb::PayloadFormat) -> pb::Subscription {
    pb::Subscription {
        group_id: group.to_owned(),
        topics: vec![topic.to_owned()],
        value_format: format as i32,
        key_format: pb::PayloadFormat::Raw as i32,
        ..Default::default()
    }
}

fn partition_subscription(topic: &str, format: pb::PayloadFormat) -> pb::Subscription {
    pb::Subscription {
        group_id: unique_name("g"),
        partitions: vec![pb::TopicPartition {
            topic: topic.to_owned(),
            partition: 0,
        }],
        start: pb::StartPosition::Earliest as i32,
        value_format: format as i32,
        key_format: pb::PayloadFormat::Raw as i32,
        ..Default::default()
    }
}

fn value_raw(record: &pb::ConsumedRecord) -> Vec<u8> {
    match record.value.as_ref().and_then(|v| v.data.as_ref()) {
        Some(pb::consumed_payload::Data::Raw(bytes)) => bytes.to_vec(),
        other => panic!("expected raw bytes, got {other:?}"),
    }
}

fn value_json(record: &pb::ConsumedRecord) -> serde_json::Value {
    let value = record.value.as_ref().unwrap();
    assert!(value.error.is_none(), "decoding failed: {:?}", value.error);
    match &value.data {
        Some(pb::consumed_payload::Data::Json(text)) => serde_json::from_str(text).unwrap(),
        other => panic!("expected JSON, got {other:?}"),
    }
}

/// Polls DescribeConsumerGroup until `group` has committed `offset` on partition 0 of `topic`.
async fn wait_for_commit(
    messaging: &TestMessaging,
    group: &str,
    topic: &str,
    offset: i64,
) -> pb::CommittedOffset {
    let mut client = messaging.client().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(described) = client
            .describe_consumer_group(pb::DescribeConsumerGroupRequest {
                group_id: group.to_owned(),
            })
            .await
            && let Some(found) = described
                .into_inner()
                .offsets
                .into_iter()
                .find(|o| o.topic == topic && o.partition == 0 && o.offset == offset)
        {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "group {group} did not commit offset {offset} of {topic} within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn topics_are_created_described_listed_measured_and_deleted() {
    let messaging = TestMessaging::start().await;
    let mut client = messaging.client().await;
    let topic = unique_name("admin");

    let created = client
        .create_topic(pb::CreateTopicRequest {
            topic: topic.clone(),
            partitions: 3,
            replication_factor: 1,
            configs: [("retention.ms".to_owned(), "3600000".to_owned())].into(),
        })
        .await
        .unwrap()
        .into_inner()
        .topic
        .unwrap();
    assert_eq!(created.topic, topic);
    assert_eq!(created.partitions.len(), 3);
    for (index, partition) in created.partitions.iter().enumerate() {
        assert_eq!(partition.partition, index as i32);
        assert!(partition.leader >= 0);
        assert_eq!(partition.replicas, vec![partition.leader]);
        assert_eq!(partition.in_sync_replicas, vec![partition.leader]);
    }
    let retention = created
        .configs
        .iter()
        .find(|c| c.name == "retention.ms")
        .unwrap();
    assert_eq!(retention.value.as_deref(), Some("3600000"));
    assert!(!retention.is_default);

    let again = client
        .create_topic(pb::CreateTopicRequest {
            topic: topic.clone(),
            partitions: 1,
            replication_factor: 1,
            configs: Default::default(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);

    let described = client
        .describe_topic(pb::DescribeTopicRequest {
            topic: topic.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(described.partitions.len(), 3);

    let listed = client
        .list_topics(pb::ListTopicsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .topics;
    assert!(
        listed
            .iter()
            .any(|t| t.name == topic && t.partition_count == 3)
    );
    assert!(listed.iter().all(|t| !t.name.starts_with("__")));

    let results = produce(
        &messaging,
        vec![
            pb::ProducerRecord {
                partition: Some(2),
                ..record(&topic, raw(b"a"))
            },
            pb::ProducerRecord {
                partition: Some(2),
                ..record(&topic, raw(b"b"))
            },
        ],
    )
    .await;
    assert_eq!(metadata(&results[0]).offset, 0);
    assert_eq!(metadata(&results[1]).offset, 1);
    let watermarks = client
        .get_watermarks(pb::GetWatermarksRequest {
            topic: topic.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .partitions;
    let marks: Vec<(i32, i64, i64)> = watermarks
        .iter()
        .map(|w| (w.partition, w.low, w.high))
        .collect();
    assert_eq!(marks, vec![(0, 0, 0), (1, 0, 0), (2, 0, 2)]);

    client
        .delete_topic(pb::DeleteTopicRequest {
            topic: topic.clone(),
        })
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match client
            .describe_topic(pb::DescribeTopicRequest {
                topic: topic.clone(),
            })
            .await
        {
            Err(status) if status.code() == Code::NotFound => break,
            _ => {
                assert!(tokio::time::Instant::now() < deadline, "topic still there");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let missing = client
        .get_watermarks(pb::GetWatermarksRequest { topic })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    messaging.stop().await.unwrap();
}

#[tokio::test]
async fn one_bad_record_fails_only_itself() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("errors");
    messaging.create_topic(&topic, 1).await;
    let schema = r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":"int"}]}"#;
    let results = produce(
        &messaging,
        vec![
            record(&topic, text("first")),
            record(&unique_name("missing"), text("nowhere")),
            record(&topic, avro_inline(schema, r#"{"name":"ann","age":"old"}"#)),
            record(&topic, raw(&vec![b'x'; 1_100_000])),
            record(&topic, json("{not json")),
            pb::ProducerRecord {
                partition: Some(7),
                ..record(&topic, text("no such partition"))
            },
            record(&topic, text("last")),
        ],
    )
    .await;
    assert_eq!(results.len(), 7);
    assert_eq!(metadata(&results[0]).offset, 0);
    let missing = error(&results[1]);
    assert_eq!(missing.code, Code::NotFound as i32);
    assert_eq!(missing.reason, "TOPIC_NOT_FOUND");
    let mismatch = error(&results[2]);
    assert_eq!(mismatch.code, Code::InvalidArgument as i32);
    assert_eq!(mismatch.reason, "SCHEMA_MISMATCH");
    assert!(mismatch.message.contains("$.age"), "{}", mismatch.message);
    let too_large = error(&results[3]);
    assert_eq!(too_large.code, Code::InvalidArgument as i32);
    assert!(
        too_large.message.contains("message.max.bytes"),
        "{}",
        too_large.message
    );
    assert_eq!(error(&results[4]).code, Code::InvalidArgument as i32);
    assert_eq!(error(&results[5]).code, Code::NotFound as i32);
    assert_eq!(metadata(&results[6]).offset, 1);

    // The missing topic was not created by the attempt.
    let listed = messaging
        .client()
        .await
        .list_topics(pb::ListTopicsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .topics;
    assert!(!listed.iter().any(|t| t.name.starts_with("missing-")));
    messaging.stop().await.unwrap();
}

#[tokio::test]
async fn produce_stream_acks_every_record_in_order() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("stream");
    messaging.create_topic(&topic, 1).await;
    // Every third record is Avro from JSON, which the service encodes on its preparing tasks,
    // so the results of records prepared on different tasks must still come back in order.
    let schema = r#"{"type":"record","name":"Seq","fields":[{"name":"i","type":"int"}]}"#;
    let mut requests: Vec<pb::ProduceStreamRequest> = (0..250)
        .map(|i| pb::ProduceStreamRequest {
            record: Some(record(
                &topic,
                if i % 3 == 0 {
                    avro_inline(schema, &format!(r#"{{"i":{i}}}"#))
                } else {
                    text(&format!("r{i}"))
                },
            )),
            ..Default::default()
        })
        .collect();
    requests.insert(
        100,
        pb::ProduceStreamRequest {
            record: Some(record(&unique_name("missing"), text("x"))),
            ..Default::default()
        },
    );
    requests.insert(
        180,
        pb::ProduceStreamRequest {
            record: Some(record(&topic, avro_inline(schema, r#"{"i":"not an int"}"#))),
            ..Default::default()
        },
    );
    requests.insert(
        200,
        pb::ProduceStreamRequest {
            record: None,
            ..Default::default()
        },
    );
    let mut responses = messaging
        .client()
        .await
        .produce_stream(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut next_offset = 0;
    for sequence in 0..253u64 {
        let response = tokio::time::timeout(WAIT, responses.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(response.sequence, sequence);
        let result = response.result.unwrap();
        if sequence == 100 {
            assert_eq!(error(&result).code, Code::NotFound as i32);
        } else if sequence == 180 {
            assert_eq!(error(&result).reason, "SCHEMA_MISMATCH");
        } else if sequence == 200 {
            assert_eq!(error(&result).code, Code::InvalidArgument as i32);
        } else {
            assert_eq!(metadata(&result).offset, next_offset);
            next_offset += 1;
        }
    }
    assert!(responses.message().await.unwrap().is_none());
    messaging.stop().await.unwrap();
}

/// Every response of a stream, until it ends (the end's status, if not OK, last).
async fn stream_responses(
    messaging: &TestMessaging,
    requests: Vec<pb::ProduceStreamRequest>,
) -> (Vec<pb::ProduceStreamResponse>, Option<tonic::Status>) {
    let mut responses = messaging
        .client()
        .await
        .produce_stream(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, responses.message())
            .await
            .unwrap()
        {
            Ok(Some(response)) => got.push(response),
            Ok(None) => return (got, None),
            Err(status) => return (got, Some(status)),
        }
    }
}

#[tokio::test]
async fn produce_stream_takes_records_in_batches_and_answers_in_batches() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("stream-batches");
    messaging.create_topic(&topic, 1).await;
    let schema = r#"{"type":"record","name":"Seq","fields":[{"name":"i","type":"int"}]}"#;
    let batch = |range: std::ops::Range<usize>| -> Vec<pb::ProducerRecord> {
        range
            .map(|i| {
                record(
                    &topic,
                    if i % 3 == 0 {
                        avro_inline(schema, &format!(r#"{{"i":{i}}}"#))
                    } else {
                        text(&format!("r{i}"))
                    },
                )
            })
            .collect()
    };
    // Sequences 0-59 in the first message (`record` first), 60 alone, 61-100 in `records` only.
    let mut first = batch(1..60);
    first[20] = record(&unique_name("missing"), text("x"));
    first[40] = record(&topic, avro_inline(schema, r#"{"i":"not an int"}"#));
    let requests = vec![
        pb::ProduceStreamRequest {
            record: Some(record(&topic, text("r0"))),
            records: first,
        },
        pb::ProduceStreamRequest {
            record: Some(record(&topic, text("r60"))),
            records: Vec::new(),
        },
        pb::ProduceStreamRequest {
            record: None,
            records: batch(61..101),
        },
    ];
    let (responses, end) = stream_responses(&messaging, requests).await;
    assert!(end.is_none(), "{end:?}");
    let mut results = Vec::new();
    for response in responses {
        // A stream that began with `records` is answered in `results` only.
        assert!(response.result.is_none() && response.sequence == 0);
        assert!(!response.results.is_empty());
        results.extend(response.results);
    }
    let sequences: Vec<u64> = results.iter().map(|r| r.sequence).collect();
    assert_eq!(sequences, (0..101).collect::<Vec<u64>>());
    let mut next_offset = 0;
    for result in &results {
        let outcome = result.result.as_ref().unwrap();
        match result.sequence {
            21 => assert_eq!(error(outcome).code, Code::NotFound as i32),
            41 => assert_eq!(error(outcome).reason, "SCHEMA_MISMATCH"),
            _ => {
                assert_eq!(metadata(outcome).offset, next_offset);
                next_offset += 1;
            }
        }
    }
    assert_eq!(next_offset, 99);

    // A stream that began with `record` keeps one result per response, batches or not.
    let requests = vec![
        pb::ProduceStreamRequest {
            record: Some(record(&topic, text("single"))),
            records: Vec::new(),
        },
        pb::ProduceStreamRequest {
            record: None,
            records: batch(0..2),
        },
    ];
    let (responses, end) = stream_responses(&messaging, requests).await;
    assert!(end.is_none(), "{end:?}");
    assert_eq!(responses.len(), 3);
    for (sequence, response) in (0..).zip(&responses) {
        assert!(response.results.is_empty());
        assert_eq!(response.sequence, sequence);
        metadata(response.result.as_ref().unwrap());
    }

    // More records in one message than the in-flight limit (100 here): the stream fails,
    // naming the field and the limit, after the results of what came before.
    let requests = vec![
        pb::ProduceStreamRequest {
            record: None,
            records: batch(0..1),
        },
        pb::ProduceStreamRequest {
            record: None,
            records: batch(0..101),
        },
    ];
    let (responses, end) = stream_responses(&messaging, requests).await;
    let end = end.expect("the stream fails");
    assert_eq!(end.code(), Code::InvalidArgument, "{end:?}");
    assert!(
        end.message().contains("records") && end.message().contains("at most 100"),
        "{end:?}"
    );
    let answered: usize = responses.iter().map(|r| r.results.len()).sum();
    assert_eq!(answered, 1);
    messaging.stop().await.unwrap();
}

#[tokio::test]
async fn raw_text_and_json_records_come_back_and_acks_commit_the_group() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("plain");
    let group = unique_name("group");
    messaging.create_topic(&topic, 1).await;
    let results = produce(
        &messaging,
        vec![
            pb::ProducerRecord {
                key: text("k1"),
                headers: vec![pb::Header {
                    key: "trace".to_owned(),
                    value: b"abc".to_vec().into(),
                }],
                ..record(&topic, raw(&[0xde, 0xad, 0xbe, 0xef]))
            },
            record(&topic, json(r#"{"a":1}"#)),
            record(&topic, text("hello")),
            record(&topic, None),
        ],
    )
    .await;
    for result in &results {
        metadata(result);
    }

    let mut consumer = messaging
        .consume(group_subscription(&group, &topic, pb::PayloadFormat::Raw))
        .await;
    let records = consumer.records(4, WAIT).await;
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    assert_eq!(value_raw(&records[0]), vec![0xde, 0xad, 0xbe, 0xef]);
    let key = records[0].key.as_ref().unwrap();
    assert_eq!(
        key.data,
        Some(pb::consumed_payload::Data::Raw(b"k1".to_vec().into()))
    );
    assert_eq!(records[0].headers[0].key, "trace");
    assert_eq!(records[0].headers[0].value, b"abc".as_slice());
    assert!(records[0].timestamp.is_some());
    assert_eq!(value_raw(&records[1]), br#"{"a":1}"#);
    assert_eq!(value_raw(&records[2]), b"hello");
    assert!(records[3].value.is_none(), "a null value stays null");
    assert!(records[1].key.is_none());

    for record in &records {
        consumer.ack(record).await;
    }
    let committed = wait_for_commit(&messaging, &group, &topic, 4).await;
    assert_eq!((committed.high_watermark, committed.lag), (4, 0));
    let groups = messaging
        .client()
        .await
        .list_consumer_groups(pb::ListConsumerGroupsRequest {})
        .await
        .unwrap()
        .into_inner()
        .groups;
    assert!(groups.iter().any(|g| g.group_id == group));
    drop(consumer);
    messaging.stop().await.unwrap();
}

#[tokio::test]
async fn unacknowledged_records_are_delivered_again_after_the_stream_is_dropped() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("redeliver");
    let group = unique_name("group");
    messaging.create_topic(&topic, 1).await;
    let records = (0..4)
        .map(|i| record(&topic, text(&format!("m{i}"))))
        .collect();
    produce(&messaging, records).await;

    let mut first = messaging
        .consume(group_subscription(&group, &topic, pb::PayloadFormat::Raw))
        .await;
    let delivered = first.records(4, WAIT).await;
    // Ack 0 and 2, not 1 and 3: only offset 0 is contiguous, so the group commits 1.
    first.ack(&delivered[0]).await;
    first.ack(&delivered[2]).await;
    wait_for_commit(&messaging, &group, &topic, 1).await;
    drop(first);

    let mut second = messaging
        .consume(group_subscription(&group, &topic, pb::PayloadFormat::Raw))
        .await;
    let again = second.records(3, WAIT).await;
    assert_eq!(
        again.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![1, 2, 3],
        "every record after the last contiguous ack comes again"
    );
    assert_eq!(value_raw(&again[0]), b"m1");
    for record in &again {
        second.ack(record).await;
    }
    wait_for_commit(&messaging, &group, &topic, 4).await;
    drop(second);
    messaging.stop().await.unwrap();
}

#[tokio::test]
async fn avro_by_inline_schema_is_registered_and_consumed_as_the_same_json() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("avro");
    messaging.create_topic(&topic, 1).await;
    let schema = r#"{"type":"record","name":"User","namespace":"com.example","fields":[{"name":"name","type":"string"},{"name":"age","type":"int"},{"name":"email","type":["null","string"],"default":null},{"name":"tags","type":{"type":"array","items":"string"}}]}"#;
    let datum = serde_json::json!({"name": "ann", "age": 30, "email": {"string": "ann@example.com"}, "tags": ["a", "b"]});
    let results = produce(
        &messaging,
        vec![
            pb::ProducerRecord {
                key: avro_inline(r#""string""#, r#""user-1""#),
                ..record(&topic, avro_inline(schema, &datum.to_string()))
            },
            record(
                &topic,
                avro_inline(schema, r#"{"name":"bob","age":7,"email":null,"tags":[]}"#),
            ),
        ],
    )
    .await;
    let produced = metadata(&results[0]);
    let value_id = produced.value_schema_id.unwrap();
    assert_eq!(metadata(&results[1]).value_schema_id, Some(value_id));

    // Registered under TopicNameStrategy subjects.
    let mut registry = messaging.registry.client().await;
    let registered = registry
        .get_subject_version(registry_pb::GetSubjectVersionRequest {
            subject: format!("{topic}-value"),
            version: -1,
            include_deleted: false,
        })
        .await
        .unwrap()
        .into_inner()
        .subject_version
        .unwrap();
    assert_eq!(registered.id, value_id);
    let key_subject = registry
        .get_subject_version(registry_pb::GetSubjectVersionRequest {
            subject: format!("{topic}-key"),
            version: -1,
            include_deleted: false,
        })
        .await
        .unwrap()
        .into_inner()
        .subject_version
        .unwrap();
    assert_eq!(Some(key_subject.id), produced.key_schema_id);

    let mut consumer = messaging
        .consume(pb::Subscription {
            key_format: pb::PayloadFormat::AvroTagged as i32,
            ..partition_subscription(&topic, pb::PayloadFormat::AvroTagged)
        })
        .await;
    let records = consumer.records(2, WAIT).await;
    assert_eq!(value_json(&records[0]), datum);
    assert_eq!(records[0].value.as_ref().unwrap().schema_id, Some(value_id));
    assert_eq!(
        records[0].key.as_ref().unwrap().data,
        Some(pb::consumed_payload::Data::Json(r#""user-1""#.to_owned()))
    );
    assert_eq!(
        value_json(&records[1]),
        serde_json::json!({"name": "bob", "age": 7, "email": null, "tags": []})
    );
    drop(consumer);

    // Plain unions on request.
    let mut plain = messaging
        .consume(partition_subscription(&topic, pb::PayloadFormat::AvroPlain))
        .await;
    let first = plain.next_record(WAIT).await;
    assert_eq!(value_json(&first)["email"], "ann@example.com");
    drop(plain);
    messaging.stop().await.unwrap();
}

#[tokio::test]
async fn records_written_with_v1_are_read_with_a_v2_reader_schema() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("evolve");
    messaging.create_topic(&topic, 1).await;
    let v1 = r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"}]}"#;
    let v2 = r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":"int","default":-1}]}"#;
    let results = produce(
        &messaging,
        vec![record(&topic, avro_inline(v1, r#"{"name":"ann"}"#))],
    )
    .await;
    let v1_id = metadata(&results[0]).value_schema_id.unwrap();
    // v2 is a backward-compatible next version of the subject; select it by subject + version.
    let results = produce(
        &messaging,
        vec![record(
            &topic,
            avro_inline(v2, r#"{"name":"bob","age":41}"#),
        )],
    )
    .await;
    let v2_id = metadata(&results[0]).value_schema_id.unwrap();
    assert_ne!(v1_id, v2_id);
    let by_version = produce(
        &messaging,
        vec![record(
            &topic,
            Some(pb::Payload {
                kind: Some(pb::payload::Kind::Avro(pb::AvroPayload {
                    json: r#"{"name":"cy","age":3}"#.to_owned(),
                    schema: Some(pb::avro_payload::Schema::SubjectVersion(
                        pb::SubjectVersionSelector {
                            subject: String::new(),
                            version: -1,
                            strategy: 0,
                        },
                    )),
                })),
            }),
        )],
    )
    .await;
    assert_eq!(metadata(&by_version[0]).value_schema_id, Some(v2_id));

    let mut consumer = messaging
        .consume(pb::Subscription {
            reader_schema: v2.to_owned(),
            ..partition_subscription(&topic, pb::PayloadFormat::AvroPlain)
        })
        .await;
    let records = consumer.records(3, WAIT).await;
    assert_eq!(
        value_json(&records[0]),
        serde_json::json!({"name": "ann", "age": -1})
    );
    assert_eq!(records[0].value.as_ref().unwrap().schema_id, Some(v1_id));
    assert_eq!(
        value_json(&records[1]),
        serde_json::json!({"name": "bob", "age": 41})
    );
    assert_eq!(
        value_json(&records[2]),
        serde_json::json!({"name": "cy", "age": 3})
    );
    drop(consumer);

    let in_batches_as = |reader: &str| pb::Subscription {
        reader_schema: reader.to_owned(),
        max_batch_records: 10,
        ..partition_subscription(&topic, pb::PayloadFormat::AvroPlain)
    };
    // In batches (a response checks the reader against each writer it meets once): the same.
    let mut batched = messaging.consume(in_batches_as(v2)).await;
    assert_eq!(batched.batches(3, WAIT).await.concat(), records);
    drop(batched);

    // A reader that can't read them (a new field without a default): each record comes with
    // the error, and its bytes.
    let v3 = r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"email","type":"string"}]}"#;
    let mut unreadable = messaging.consume(in_batches_as(v3)).await;
    let refused = unreadable.batches(3, WAIT).await.concat();
    for record in &refused {
        let value = record.value.as_ref().expect("a value");
        let error = value.error.as_ref().expect("the reader can't read it");
        assert_eq!(error.reason, "UNDECODABLE", "{error:?}");
        assert!(error.message.contains("email"), "{}", error.message);
        assert!(matches!(
            value.data,
            Some(pb::consumed_payload::Data::Raw(_))
        ));
    }
    drop(unreadable);
    messaging.stop().await.unwrap();
}

/// The Confluent frame of a schema id no registry has.
const UNKNOWN_SCHEMA_ID_FRAME: [u8; 6] = [0u8, 0x7f, 0xff, 0xff, 0xf0, 0x02];

/// Produces, in order: a good Avro record, one that is not Confluent-framed, one framed with an
/// unknown schema id, and a good one again.
async fn produce_undecodable_mix(messaging: &TestMessaging, topic: &str) {
    let schema = r#"{"type":"record","name":"Ping","fields":[{"name":"n","type":"long"}]}"#;
    produce(
        messaging,
        vec![
            record(topic, avro_inline(schema, r#"{"n":1}"#)),
            record(topic, text("not framed")),
            record(topic, raw(&UNKNOWN_SCHEMA_ID_FRAME)),
            record(topic, avro_inline(schema, r#"{"n":2}"#)),
        ],
    )
    .await;
}

/// Checks the records of `produce_undecodable_mix` as consumed: each bad one carries its own
/// error and raw bytes, the good ones around them are decoded.
fn check_undecodable_mix(records: &[pb::ConsumedRecord]) {
    assert_eq!(records.len(), 4);
    assert_eq!(value_json(&records[0]), serde_json::json!({"n": 1}));

    let not_framed = records[1].value.as_ref().unwrap();
    let error = not_framed
        .error
        .as_ref()
        .expect("an error for the bad record");
    assert_eq!(error.reason, "UNDECODABLE");
    assert_eq!(
        not_framed.data,
        Some(pb::consumed_payload::Data::Raw(
            b"not framed".to_vec().into()
        ))
    );

    let unknown = records[2].value.as_ref().unwrap();
    assert_eq!(unknown.error.as_ref().unwrap().code, Code::NotFound as i32);
    assert_eq!(unknown.schema_id, Some(0x7fff_fff0));
    assert_eq!(
        unknown.data,
        Some(pb::consumed_payload::Data::Raw(
            UNKNOWN_SCHEMA_ID_FRAME.to_vec().into()
        ))
    );

    assert_eq!(value_json(&records[3]), serde_json::json!({"n": 2}));
}

#[tokio::test]
async fn an_undecodable_record_is_delivered_with_an_error_and_the_stream_goes_on() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("undecodable");
    messaging.create_topic(&topic, 1).await;
    produce_undecodable_mix(&messaging, &topic).await;
    let mut consumer = messaging
        .consume(partition_subscription(
            &topic,
            pb::PayloadFormat::AvroTagged,
        ))
        .await;
    check_undecodable_mix(&consumer.records(4, WAIT).await);
    drop(consumer);
    messaging.stop().await.unwrap();
}

#[tokio::test]
async fn an_undecodable_record_inside_a_batch_carries_its_own_error() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("undecodable-batch");
    messaging.create_topic(&topic, 1).await;
    produce_undecodable_mix(&messaging, &topic).await;
    let mut consumer = messaging
        .consume(pb::Subscription {
            max_batch_records: 10,
            batch_linger_ms: 500,
            ..partition_subscription(&topic, pb::PayloadFormat::AvroTagged)
        })
        .await;
    let batches = consumer.batches(4, WAIT).await;
    // The four records were in the log before the stream opened, and the server waits up to
    // 500 ms to fill a batch: the bad records share a batch with good ones.
    assert!(
        batches.iter().any(|batch| batch.len() > 1),
        "every record came alone: {batches:?}"
    );
    check_undecodable_mix(&batches.concat());
    drop(consumer);
    messaging.stop().await.unwrap();
}

#[tokio::test]
async fn batches_keep_their_bounds_and_cumulative_acks_commit_with_redelivery_after_a_drop() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("batches");
    let group = unique_name("group");
    messaging.create_topic(&topic, 1).await;
    let records = (0..10)
        .map(|i| record(&topic, text(&format!("b{i}"))))
        .collect();
    produce(&messaging, records).await;
    let batched = |max_batch_records| pb::Subscription {
        max_batch_records,
        batch_linger_ms: 300,
        ..group_subscription(&group, &topic, pb::PayloadFormat::Raw)
    };

    let mut first = messaging.consume(batched(4)).await;
    let batches = first.batches(10, WAIT).await;
    assert!(
        batches.iter().all(|batch| (1..=4).contains(&batch.len())),
        "batch sizes outside 1..=4: {:?}",
        batches.iter().map(Vec::len).collect::<Vec<_>>()
    );
    assert!(batches.iter().any(|batch| batch.len() > 1));
    let delivered = batches.concat();
    assert_eq!(
        delivered.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..10).collect::<Vec<i64>>(),
        "batches hold the records in offset order, none twice, none missing"
    );
    assert_eq!(value_raw(&delivered[3]), b"b3");
    // Everything up to offset 5 acknowledged in one request: the group commits 6.
    first.ack_up_to(&topic, 0, 5).await;
    wait_for_commit(&messaging, &group, &topic, 6).await;
    drop(first);

    // The unacknowledged records 6..=9 come again on a new stream.
    let mut second = messaging.consume(batched(100)).await;
    let again = second.batches(4, WAIT).await.concat();
    assert_eq!(
        again.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![6, 7, 8, 9]
    );
    // 7 alone and everything up to 6, in one request: 6 and 7 are done, 8 is the next.
    second
        .acks(pb::Acks {
            records: vec![pb::Ack {
                topic: topic.clone(),
                partition: 0,
                offset: 7,
            }],
            up_to: vec![pb::AckUpTo {
                topic: topic.clone(),
                partition: 0,
                offset: 6,
            }],
        })
        .await;
    wait_for_commit(&messaging, &group, &topic, 8).await;
    // An offset past the last delivered one acknowledges what was delivered, no more.
    second.ack_up_to(&topic, 0, 1_000).await;
    let committed = wait_for_commit(&messaging, &group, &topic, 10).await;
    assert_eq!(committed.lag, 0);
    drop(second);
    messaging.stop().await.unwrap();
}

#[tokio::test]
async fn batches_stop_at_max_batch_bytes_and_max_unacked_and_bad_options_are_rejected() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("batch-bounds");
    messaging.create_topic(&topic, 1).await;
    let records = (0..6)
        .map(|i| record(&topic, raw(&[b'a' + i; 1000])))
        .collect();
    produce(&messaging, records).await;

    // Bytes: a batch stops growing once it reaches 2500 bytes, so no batch holds more than
    // 2500 bytes before its last record.
    let mut consumer = messaging
        .consume(pb::Subscription {
            max_batch_records: 100,
            max_batch_bytes: 2500,
            batch_linger_ms: 300,
            ..partition_subscription(&topic, pb::PayloadFormat::Raw)
        })
        .await;
    let batches = consumer.batches(6, WAIT).await;
    for batch in &batches {
        let before_last: usize = batch[..batch.len() - 1]
            .iter()
            .map(|r| value_raw(r).len())
            .sum();
        assert!(
            before_last < 2500,
            "batch grew past 2500 bytes: {before_last}"
        );
    }
    assert!(batches.iter().any(|batch| batch.len() > 1));
    assert_eq!(batches.concat().len(), 6);
    drop(consumer);

    // Flow control: with max_unacked 2, a batch holds at most 2 records and the next waits for
    // acknowledgements.
    let mut consumer = messaging
        .consume(pb::Subscription {
            max_batch_records: 100,
            max_unacked: 2,
            batch_linger_ms: 300,
            ..partition_subscription(&topic, pb::PayloadFormat::Raw)
        })
        .await;
    let mut first = consumer.batches(2, WAIT).await.concat();
    assert_eq!(first.len(), 2);
    let paused =
        tokio::time::timeout(Duration::from_millis(1500), consumer.responses.message()).await;
    assert!(paused.is_err(), "a batch came past max_unacked: {paused:?}");
    consumer
        .ack_up_to(&topic, 0, first.pop().unwrap().offset)
        .await;
    let next = consumer.next_batch(WAIT).await;
    assert_eq!(next[0].offset, 2);
    assert!(next.len() <= 2);
    drop(consumer);

    // Options out of range are INVALID_ARGUMENT naming the field.
    for (subscription, field) in [
        (
            pb::Subscription {
                max_batch_records: -1,
                ..partition_subscription(&topic, pb::PayloadFormat::Raw)
            },
            "max_batch_records",
        ),
        (
            pb::Subscription {
                max_batch_records: 10,
                max_batch_bytes: -5,
                ..partition_subscription(&topic, pb::PayloadFormat::Raw)
            },
            "max_batch_bytes",
        ),
        (
            pb::Subscription {
                max_batch_records: 10,
                batch_linger_ms: 60_000,
                ..partition_subscription(&topic, pb::PayloadFormat::Raw)
            },
            "batch_linger_ms",
        ),
    ] {
        let mut rejected = messaging.consume(subscription).await;
        let status = rejected.responses.message().await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().contains(field),
            "{field} not named: {}",
            status.message()
        );
    }
    messaging.stop().await.unwrap();
}

/// Reads rebalance notifications until this consumer holds exactly `count` partitions.
async fn wait_for_assignment(consumer: &mut TestConsumer, count: usize) -> BTreeSet<i32> {
    let mut held = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match consumer.next(left).await {
            pb::consume_response::Kind::Rebalance(rebalance) => {
                for p in rebalance.revoked {
                    held.remove(&p.partition);
                }
                for p in rebalance.assigned {
                    held.insert(p.partition);
                }
                if held.len() == count {
                    return held;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn two_consumers_of_a_group_split_the_partitions() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("split");
    let group = unique_name("group");
    messaging.create_topic(&topic, 2).await;

    let mut a = messaging
        .consume(group_subscription(&group, &topic, pb::PayloadFormat::Raw))
        .await;
    assert_eq!(wait_for_assignment(&mut a, 2).await, BTreeSet::from([0, 1]));
    let mut b = messaging
        .consume(group_subscription(&group, &topic, pb::PayloadFormat::Raw))
        .await;
    let (held_a, held_b) = tokio::join!(
        wait_for_assignment(&mut a, 1),
        wait_for_assignment(&mut b, 1)
    );
    assert_eq!(
        held_a.union(&held_b).copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([0, 1])
    );

    let records = (0..6)
        .map(|i| pb::ProducerRecord {
            partition: Some(i % 2),
            ..record(&topic, text(&format!("p{}-{i}", i % 2)))
        })
        .collect();
    produce(&messaging, records).await;
    let (from_a, from_b) = tokio::join!(a.records(3, WAIT), b.records(3, WAIT));
    for (records, held) in [(&from_a, &held_a), (&from_b, &held_b)] {
        let partition = *held.first().unwrap();
        assert!(records.iter().all(|r| r.partition == partition));
        assert_eq!(
            records.iter().map(|r| r.offset).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert_eq!(
            value_raw(&records[0]),
            format!("p{partition}-{partition}").into_bytes()
        );
    }
    drop((a, b));
    messaging.stop().await.unwrap();
}

#[tokio::test]
async fn delivery_pauses_at_max_unacked_until_acks_arrive() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("flow");
    messaging.create_topic(&topic, 1).await;
    let records = (0..5)
        .map(|i| record(&topic, text(&format!("f{i}"))))
        .collect();
    produce(&messaging, records).await;
    let mut consumer = messaging
        .consume(pb::Subscription {
            max_unacked: 2,
            ..partition_subscription(&topic, pb::PayloadFormat::Raw)
        })
        .await;
    let first = consumer.records(2, WAIT).await;
    let paused =
        tokio::time::timeout(Duration::from_millis(1500), consumer.responses.message()).await;
    assert!(
        paused.is_err(),
        "a third record came while two were unacknowledged: {paused:?}"
    );
    consumer.ack(&first[1]).await;
    let third = consumer.next_record(WAIT).await;
    assert_eq!(third.offset, 2);
    drop(consumer);

    // A partition the topic does not have is NOT_FOUND.
    let mut client = messaging.client().await;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(pb::ConsumeRequest {
        kind: Some(pb::consume_request::Kind::Subscription(pb::Subscription {
            partitions: vec![pb::TopicPartition {
                topic: topic.clone(),
                partition: 5,
            }],
            ..partition_subscription(&topic, pb::PayloadFormat::Raw)
        })),
    })
    .await
    .unwrap();
    let mut rejected = client
        .consume(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rejected.message().await.unwrap_err().code(), Code::NotFound);
    messaging.stop().await.unwrap();
}

#[tokio::test]
async fn unacknowledged_records_are_delivered_again_after_a_rebalance() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("rebalance");
    let group = unique_name("group");
    messaging.create_topic(&topic, 2).await;

    let mut a = messaging
        .consume(group_subscription(&group, &topic, pb::PayloadFormat::Raw))
        .await;
    assert_eq!(wait_for_assignment(&mut a, 2).await, BTreeSet::from([0, 1]));
    let records = (0..4)
        .map(|i| pb::ProducerRecord {
            partition: Some(i / 2),
            ..record(&topic, text(&format!("p{}-{}", i / 2, i % 2)))
        })
        .collect();
    produce(&messaging, records).await;
    let delivered = a.records(4, WAIT).await;
    // Partition 0's records are acknowledged (and committed), partition 1's are not.
    for record in delivered.iter().filter(|r| r.partition == 0) {
        a.ack(record).await;
    }
    wait_for_commit(&messaging, &group, &topic, 2).await;

    let mut b = messaging
        .consume(group_subscription(&group, &topic, pb::PayloadFormat::Raw))
        .await;
    let (held_a, _) = tokio::join!(
        wait_for_assignment(&mut a, 1),
        wait_for_assignment(&mut b, 1)
    );
    // Whoever holds partition 1 now gets its two unacknowledged records again; partition 0
    // starts past its acknowledged records, so its holder gets nothing.
    let (mut holder, mut other) = if held_a.contains(&1) { (a, b) } else { (b, a) };
    let again = holder.records(2, WAIT).await;
    assert!(again.iter().all(|r| r.partition == 1));
    assert_eq!(
        again.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(value_raw(&again[0]), b"p1-0");
    let nothing =
        tokio::time::timeout(Duration::from_millis(1000), other.responses.message()).await;
    assert!(
        nothing.is_err(),
        "partition 0 was delivered again: {nothing:?}"
    );
    drop((holder, other));
    messaging.stop().await.unwrap();
}

#[tokio::test]
async fn auto_ack_commits_records_as_they_are_sent() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("autoack");
    let group = unique_name("group");
    messaging.create_topic(&topic, 1).await;
    let records = (0..3)
        .map(|i| record(&topic, text(&format!("a{i}"))))
        .collect();
    produce(&messaging, records).await;
    let mut consumer = messaging
        .consume(pb::Subscription {
            auto_ack: true,
            ..group_subscription(&group, &topic, pb::PayloadFormat::Raw)
        })
        .await;
    let delivered = consumer.records(3, WAIT).await;
    assert_eq!(delivered[2].offset, 2);
    let committed = wait_for_commit(&messaging, &group, &topic, 3).await;
    assert_eq!(committed.lag, 0);
    drop(consumer);

    // Batches too: three more records, in batches, committed without acks.
    let records = (3..6)
        .map(|i| record(&topic, text(&format!("a{i}"))))
        .collect();
    produce(&messaging, records).await;
    let mut consumer = messaging
        .consume(pb::Subscription {
            auto_ack: true,
            max_batch_records: 10,
            ..group_subscription(&group, &topic, pb::PayloadFormat::Raw)
        })
        .await;
    let delivered = consumer.batches(3, WAIT).await.concat();
    assert_eq!(
        delivered.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    let committed = wait_for_commit(&messaging, &group, &topic, 6).await;
    assert_eq!(committed.lag, 0);
    drop(consumer);
    messaging.stop().await.unwrap();
}

/// Kafka's `Utils.murmur2`, the Java client's key hash.
fn java_murmur2(data: &[u8]) -> i32 {
    const M: i32 = 0x5bd1_e995;
    let mut h: i32 = 0x9747_b28c_u32 as i32 ^ data.len() as i32;
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for chunk in chunks {
        let mut k = i32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= ((k as u32) >> 24) as i32;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    if tail.len() >= 3 {
        h ^= i32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= i32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= i32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= ((h as u32) >> 13) as i32;
    h = h.wrapping_mul(M);
    h ^= ((h as u32) >> 15) as i32;
    h
}

#[test]
fn java_murmur2_matches_kafkas_own_test_vectors() {
    // From Kafka's UtilsTest.testMurmur2.
    assert_eq!(java_murmur2(b"21"), -973_932_308);
    assert_eq!(java_murmur2(b"foobar"), -790_332_482);
    assert_eq!(java_murmur2(b"a-little-bit-long-string"), -985_981_536);
    assert_eq!(java_murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
    assert_eq!(
        java_murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
        -58_897_971
    );
    assert_eq!(java_murmur2(b"abc"), 479_470_107);
}

#[tokio::test]
async fn keyed_records_land_in_the_partition_the_java_client_would_pick() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("keyed");
    let partitions = 6;
    messaging.create_topic(&topic, partitions).await;
    let keys: Vec<String> = (0..40).map(|i| format!("user-{i}")).collect();
    let records = keys
        .iter()
        .map(|key| pb::ProducerRecord {
            key: text(key),
            ..record(&topic, text("v"))
        })
        .collect();
    let results = produce(&messaging, records).await;
    let mut used = BTreeSet::new();
    for (key, result) in keys.iter().zip(&results) {
        let expected = (java_murmur2(key.as_bytes()) & 0x7fff_ffff) % partitions;
        assert_eq!(metadata(result).partition, expected, "key {key}");
        used.insert(expected);
    }
    assert!(
        used.len() > 1,
        "40 keys should spread over several partitions"
    );
    messaging.stop().await.unwrap();
}
