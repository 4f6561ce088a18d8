//! Fault suite, messaging side: real faults (SIGKILL, SIGSTOP/SIGCONT, SIGTERM, restarts) under
//! sustained load, checked from the clients' own records of what was acknowledged.
//!
//! What is promised, and checked here:
//! - a broker of the three-node cluster killed, or the leader of a partition paused, under
//!   streaming produce of keyed records: no acknowledged record lost, none duplicated, per-key
//!   order kept, readiness never flips; a record stuck behind a paused leader does not hold
//!   back the results of the others, and a unary Produce answers before its deadline, saying
//!   which records' outcomes are unknown;
//! - a messaging replica killed mid-Consume: its partitions are redelivered to the group's other
//!   member within 10 s, every record is delivered at least once, the group ends committed at
//!   the end of the log (the records redelivered are counted);
//! - SIGTERM during streaming produce: every record acknowledged is in the topic;
//! - the registry paused while messaging produces and consumes: records whose schemas are cached
//!   (by id, or the last known latest version) keep flowing, the others fail one by one with
//!   UNAVAILABLE, and everything recovers without a restart.
//!
//! Figures go to `target/chaos/results.tsv` (see `tributary_tests::chaos::record`);
//! `scripts/chaos` runs these with the three-broker cluster up and prints them.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tributary_proto::messaging::v1 as pb;
use tributary_tests::chaos::{self, ms, record};
use tributary_tests::records::text;
use tributary_tests::{MessagingProcess, RegistryProcess, TestDatabase, unique_name};

type Client = pb::messaging_service_client::MessagingServiceClient<tributary_tests::AuthChannel>;

/// A messaging process on the three-broker cluster.
async fn cluster_messaging(registry_url: &str, env: &[(&str, &str)]) -> MessagingProcess {
    let bootstrap = chaos::cluster_bootstrap();
    let mut all = vec![
        ("KAFKA_BOOTSTRAP_SERVERS", bootstrap.as_str()),
        ("RUST_LOG", "info"),
    ];
    all.extend_from_slice(env);
    MessagingProcess::spawn_logging_to(registry_url, &all, Some(chaos::log_file("messaging"))).await
}

/// A registry of its own, for the messaging processes to resolve schemas with.
async fn registry() -> RegistryProcess {
    RegistryProcess::spawn_logging_to(
        &TestDatabase::create().await.url,
        &[("RUST_LOG", "info")],
        Some(chaos::log_file("registry")),
    )
    .await
}

fn registry_url(registry: &RegistryProcess) -> String {
    format!("https://{}", registry.addr)
}

/// A topic replicated on the three nodes, writes needing two in sync.
async fn create_replicated_topic(client: &mut Client, topic: &str, partitions: i32) {
    client
        .create_topic(pb::CreateTopicRequest {
            topic: topic.to_owned(),
            partitions,
            replication_factor: 3,
            configs: HashMap::from([("min.insync.replicas".to_owned(), "2".to_owned())]),
        })
        .await
        .unwrap();
}

/// Every record of `topic`, read from the beginning to the high watermarks of now.
async fn read_all(client: &mut Client, topic: &str) -> Vec<pb::ConsumedRecord> {
    // A broker just restarted may not know every topic for a moment: ask again for up to 10 s.
    let asked = Instant::now();
    let marks = loop {
        match client
            .get_watermarks(pb::GetWatermarksRequest {
                topic: topic.to_owned(),
            })
            .await
        {
            Ok(marks) => break marks.into_inner().partitions,
            Err(status)
                if status.code() == tonic::Code::NotFound
                    && asked.elapsed() < Duration::from_secs(10) =>
            {
                eprintln!("watermarks of {topic}: {status:?}; asking again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => panic!("watermarks of {topic}: {status:?}"),
        }
    };
    let mut wanted: HashMap<i32, i64> = marks
        .iter()
        .filter(|m| m.high > m.low)
        .map(|m| (m.partition, m.high))
        .collect();
    let mut records = Vec::new();
    if wanted.is_empty() {
        return records;
    }
    let mut consumer = tributary_tests::TestConsumer::open(
        client.clone(),
        pb::Subscription {
            group_id: unique_name("chaos-reader"),
            partitions: wanted
                .keys()
                .map(|p| pb::TopicPartition {
                    topic: topic.to_owned(),
                    partition: *p,
                })
                .collect(),
            start: pb::StartPosition::Earliest as i32,
            value_format: pb::PayloadFormat::Raw as i32,
            key_format: pb::PayloadFormat::Raw as i32,
            auto_ack: true,
            max_batch_records: 1000,
            ..Default::default()
        },
    )
    .await;
    while !wanted.is_empty() {
        for record in consumer.next_batch(Duration::from_secs(30)).await {
            if wanted
                .get(&record.partition)
                .is_some_and(|high| record.offset + 1 >= *high)
            {
                wanted.remove(&record.partition);
            }
            records.push(record);
        }
    }
    records
}

fn raw_text(payload: &Option<pb::ConsumedPayload>) -> String {
    match payload.as_ref().and_then(|p| p.data.as_ref()) {
        Some(pb::consumed_payload::Data::Raw(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
        Some(pb::consumed_payload::Data::Json(json)) => json.clone(),
        None => String::new(),
    }
}

/// Polls readiness (`""`) every 100 ms until stopped; counts the NOT_SERVING answers.
fn watch_readiness(addr: std::net::SocketAddr) -> (Arc<Mutex<u32>>, tokio::task::JoinHandle<()>) {
    let not_serving = Arc::new(Mutex::new(0u32));
    let counted = Arc::clone(&not_serving);
    let task = tokio::spawn(async move {
        let mut health = HealthClient::new(tributary_tests::security::admin_channel(addr).await);
        loop {
            let status = health
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(|r| r.into_inner().status)
                .unwrap_or(-1);
            if status != ServingStatus::Serving as i32 {
                *counted.lock() += 1;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (not_serving, task)
}

/// What one record of the streaming load became.
#[derive(Debug, Clone)]
enum Outcome {
    Written { partition: i32, offset: i64 },
    Failed { reason: String },
}

/// Which fault the streaming-produce scenario injects.
#[derive(Debug, Clone, Copy)]
enum BrokerFault {
    /// SIGKILL node 2, start it again.
    KillNode,
    /// SIGSTOP the leader of partition 0, SIGCONT it.
    PauseLeader,
}

/// Streams keyed records (24 keys, values `key:sequence`) at a steady pace through one
/// ProduceStream while `fault` happens between a third and two thirds of the load time; then
/// checks every acknowledged record against the topic.
async fn streaming_produce_under(fault: BrokerFault, scenario: &str) {
    let registry = registry().await;
    let messaging = cluster_messaging(&registry_url(&registry), &[]).await;
    let mut client = messaging.client().await;
    let topic = unique_name("chaos-produce");
    create_replicated_topic(&mut client, &topic, 6).await;
    let (not_serving, readiness) = watch_readiness(messaging.addr);

    let load = chaos::load_time();
    let (requests, inbound) = tokio::sync::mpsc::channel::<pb::ProduceStreamRequest>(256);
    let mut responses = client
        .produce_stream(tokio_stream::wrappers::ReceiverStream::new(inbound))
        .await
        .unwrap()
        .into_inner();
    let sent_at: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let started = Instant::now();
    let sender = {
        let sent_at = Arc::clone(&sent_at);
        let topic = topic.clone();
        tokio::spawn(async move {
            let mut sequence: u64 = 0;
            let mut tick = tokio::time::interval(Duration::from_millis(2));
            while started.elapsed() < load {
                tick.tick().await;
                let key = format!("k{}", sequence % 24);
                let request = pb::ProduceStreamRequest {
                    record: Some(pb::ProducerRecord {
                        topic: topic.clone(),
                        key: text(&key),
                        value: text(&format!("{key}:{sequence}")),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                sent_at.lock().push(Instant::now());
                if requests.send(request).await.is_err() {
                    break;
                }
                sequence += 1;
            }
            sequence
        })
    };

    // The fault, in its own task.
    let fault_task = {
        let mut client = client.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            tokio::time::sleep(load / 3).await;
            let node = match fault {
                BrokerFault::KillNode => {
                    chaos::stack_async(&["node", "2", "kill"]).await;
                    2
                }
                BrokerFault::PauseLeader => {
                    let described = client
                        .describe_topic(pb::DescribeTopicRequest {
                            topic: topic.clone(),
                        })
                        .await
                        .unwrap()
                        .into_inner();
                    let leader = described.partitions[0].leader;
                    chaos::stack_async(&["node", &leader.to_string(), "stop"]).await;
                    leader
                }
            };
            let faulted = Instant::now();
            // While it lasts: a unary Produce with a 3 s deadline to partition 0 answers in
            // time, each record written or of unknown outcome, never a bare deadline error.
            let mut request = tonic::Request::new(pb::ProduceRequest {
                records: vec![pb::ProducerRecord {
                    topic: topic.clone(),
                    key: text("unary"),
                    value: text("unary:0"),
                    partition: Some(0),
                    ..Default::default()
                }],
            });
            request.set_timeout(Duration::from_secs(3));
            let unary_started = Instant::now();
            let unary = client.produce(request).await;
            let unary_took = unary_started.elapsed();
            tokio::time::sleep((load / 3).saturating_sub(faulted.elapsed())).await;
            let node = node.to_string();
            match fault {
                BrokerFault::KillNode => chaos::stack_async(&["node", &node, "start"]).await,
                BrokerFault::PauseLeader => chaos::stack_async(&["node", &node, "cont"]).await,
            };
            (unary, unary_took)
        })
    };

    // Results, as they come.
    let mut outcomes: BTreeMap<u64, Outcome> = BTreeMap::new();
    let mut latencies = Vec::new();
    let mut out_of_order = 0u64;
    let mut highest_answered: Option<u64> = None;
    let mut stream_end = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(90), responses.message()).await {
            Ok(Ok(Some(response))) => {
                let sequence = response.sequence;
                if let Some(sent) = sent_at.lock().get(sequence as usize) {
                    latencies.push(sent.elapsed());
                }
                if highest_answered.is_some_and(|h| sequence < h) {
                    out_of_order += 1;
                }
                highest_answered = highest_answered.max(Some(sequence));
                let outcome = match response.result.and_then(|r| r.result) {
                    Some(pb::produce_result::Result::Metadata(m)) => Outcome::Written {
                        partition: m.partition,
                        offset: m.offset,
                    },
                    Some(pb::produce_result::Result::Error(e)) => {
                        Outcome::Failed { reason: e.reason }
                    }
                    None => panic!("a result without an outcome"),
                };
                assert!(
                    outcomes.insert(sequence, outcome).is_none(),
                    "two results for record {sequence}"
                );
            }
            Ok(Ok(None)) => break,
            Ok(Err(status)) => {
                eprintln!(
                    "the stream ended after {:?} with {} results: {status:?}",
                    started.elapsed(),
                    outcomes.len()
                );
                stream_end = Some(status);
                break;
            }
            Err(_) => panic!("no result for 90 s; {} so far", outcomes.len()),
        }
    }
    let sent = sender.await.unwrap();
    let (unary, unary_took) = fault_task.await.unwrap();
    readiness.abort();
    assert!(stream_end.is_none(), "the stream failed: {stream_end:?}");
    assert_eq!(outcomes.len() as u64, sent, "one result per record sent");

    // The unary call answered before its deadline, with an outcome per record.
    let unary = unary.unwrap_or_else(|status| {
        panic!("the unary Produce failed as a whole after {unary_took:?}: {status:?}")
    });
    let unary_outcome = match unary.into_inner().results[0].result.clone().unwrap() {
        pb::produce_result::Result::Metadata(_) => "written".to_owned(),
        pb::produce_result::Result::Error(e) => e.reason,
    };
    assert!(
        ["written", "OUTCOME_UNKNOWN", "NOT_SENT"].contains(&unary_outcome.as_str()),
        "{unary_outcome}"
    );

    // Against the topic.
    let in_topic = read_all(&mut client, &topic).await;
    let mut by_position: HashMap<(i32, i64), String> = HashMap::new();
    let mut copies: HashMap<String, u32> = HashMap::new();
    let mut order_violations = 0u64;
    let mut last_of_key: HashMap<(i32, String), u64> = HashMap::new();
    for consumed in &in_topic {
        let value = raw_text(&consumed.value);
        by_position.insert((consumed.partition, consumed.offset), value.clone());
        *copies.entry(value.clone()).or_default() += 1;
        let Some((key, sequence)) = value.split_once(':') else {
            continue;
        };
        let Ok(sequence) = sequence.parse::<u64>() else {
            continue;
        };
        if key == "unary" {
            continue;
        }
        let slot = last_of_key
            .entry((consumed.partition, key.to_owned()))
            .or_insert(sequence);
        if sequence < *slot {
            order_violations += 1;
        }
        *slot = sequence;
    }
    let in_topic_values: HashSet<&String> = copies.keys().collect();
    let mut acknowledged = 0u64;
    let mut lost = 0u64;
    let mut misplaced = 0u64;
    let mut offset_unknown = 0u64;
    let mut failed: BTreeMap<String, u64> = BTreeMap::new();
    let mut failed_but_written = 0u64;
    let mut unknown_written = 0u64;
    for (sequence, outcome) in &outcomes {
        let value = format!("k{}:{sequence}", sequence % 24);
        match outcome {
            Outcome::Written { partition, offset } => {
                acknowledged += 1;
                if !in_topic_values.contains(&value) {
                    lost += 1;
                } else if *offset < 0 {
                    // librdkafka acknowledges a retried record that the broker had already
                    // written (its idempotent producer's duplicate sequence) without an offset.
                    offset_unknown += 1;
                } else if by_position.get(&(*partition, *offset)) != Some(&value) {
                    misplaced += 1;
                }
            }
            Outcome::Failed { reason } => {
                *failed.entry(reason.clone()).or_default() += 1;
                if copies.contains_key(&value) {
                    if reason == "OUTCOME_UNKNOWN" {
                        unknown_written += 1;
                    } else {
                        failed_but_written += 1;
                    }
                }
            }
        }
    }
    let duplicated = copies.values().filter(|n| **n > 1).count();
    latencies.sort();
    let p99 = latencies
        .get(latencies.len().saturating_mul(99) / 100)
        .copied()
        .unwrap_or_default();
    let max = latencies.last().copied().unwrap_or_default();
    let not_serving = *not_serving.lock();
    record(
        scenario,
        &[
            ("sent", sent.to_string()),
            ("acknowledged", acknowledged.to_string()),
            ("lost", lost.to_string()),
            ("misplaced", misplaced.to_string()),
            ("offset_unknown", offset_unknown.to_string()),
            ("duplicated", duplicated.to_string()),
            ("order_violations", order_violations.to_string()),
            ("failed", format!("{failed:?}").replace(' ', "")),
            ("failed_but_written", failed_but_written.to_string()),
            ("unknown_but_written", unknown_written.to_string()),
            ("out_of_order_results", out_of_order.to_string()),
            ("ack_p99_ms", ms(p99)),
            ("ack_max_ms", ms(max)),
            ("unary_deadline_3s_answered_in_ms", ms(unary_took)),
            ("unary_outcome", unary_outcome),
            ("readiness_not_serving_polls", not_serving.to_string()),
        ],
    );
    assert_eq!(lost, 0, "acknowledged records missing from the topic");
    assert_eq!(
        misplaced, 0,
        "acknowledged records not at the partition and offset they were acknowledged with"
    );
    assert_eq!(duplicated, 0, "records written twice");
    assert_eq!(order_violations, 0, "per-key order broken");
    assert_eq!(
        failed_but_written, 0,
        "records reported failed were written"
    );
    assert!(acknowledged > 0);
    assert!(
        unary_took < Duration::from_secs(3),
        "the unary Produce took {unary_took:?}"
    );
    assert_eq!(
        not_serving, 0,
        "readiness flipped while two of three brokers served"
    );
    let _ = messaging.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_broker_of_three_killed_and_restarted_under_streaming_produce() {
    let _one_at_a_time = chaos::exclusive().await;
    streaming_produce_under(BrokerFault::KillNode, "broker-kill").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partition_leader_paused_and_resumed_under_streaming_produce() {
    let _one_at_a_time = chaos::exclusive().await;
    streaming_produce_under(BrokerFault::PauseLeader, "leader-pause").await;
}

/// A Consume stream that acknowledges each record after `pace`, noting what it got and which
/// partitions the group gives it.
struct PacedConsumer {
    delivered: Arc<Mutex<Vec<(i32, i64, Instant)>>>,
    assigned: Arc<Mutex<HashSet<i32>>>,
    /// Each partition given to it, and when.
    assignments: Arc<Mutex<Vec<(i32, Instant)>>>,
    /// Whether it still waits `pace` before acknowledging (cleared: it acknowledges at once).
    paced: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

fn paced_consumer(client: Client, topic: &str, group: &str, pace: Duration) -> PacedConsumer {
    let delivered: Arc<Mutex<Vec<(i32, i64, Instant)>>> = Arc::default();
    let noted = Arc::clone(&delivered);
    let assigned: Arc<Mutex<HashSet<i32>>> = Arc::default();
    let assignment = Arc::clone(&assigned);
    let assignments: Arc<Mutex<Vec<(i32, Instant)>>> = Arc::default();
    let given = Arc::clone(&assignments);
    let paced = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let pacing = Arc::clone(&paced);
    let subscription = pb::Subscription {
        group_id: group.to_owned(),
        topics: vec![topic.to_owned()],
        start: pb::StartPosition::Earliest as i32,
        value_format: pb::PayloadFormat::Raw as i32,
        key_format: pb::PayloadFormat::Raw as i32,
        max_unacked: 50,
        ..Default::default()
    };
    let task = tokio::spawn(async move {
        let mut consumer = tributary_tests::TestConsumer::open(client, subscription).await;
        loop {
            let next =
                tokio::time::timeout(Duration::from_secs(60), consumer.responses.message()).await;
            let Ok(Ok(Some(response))) = next else {
                return;
            };
            match response.kind {
                Some(pb::consume_response::Kind::Record(record)) => {
                    noted
                        .lock()
                        .push((record.partition, record.offset, Instant::now()));
                    if pacing.load(std::sync::atomic::Ordering::Relaxed) {
                        tokio::time::sleep(pace).await;
                    }
                    consumer.ack(&record).await;
                }
                Some(pb::consume_response::Kind::Rebalance(rebalance)) => {
                    let mut assignment = assignment.lock();
                    for tp in rebalance.revoked {
                        assignment.remove(&tp.partition);
                    }
                    assignment.extend(rebalance.assigned.iter().map(|tp| tp.partition));
                    let now = Instant::now();
                    given
                        .lock()
                        .extend(rebalance.assigned.iter().map(|tp| (tp.partition, now)));
                }
                _ => {}
            }
        }
    });
    PacedConsumer {
        delivered,
        assigned,
        assignments,
        paced,
        task,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messaging_replica_killed_mid_consume() {
    let _one_at_a_time = chaos::exclusive().await;
    let registry = registry().await;
    let url = registry_url(&registry);
    let first = cluster_messaging(&url, &[]).await;
    let second = cluster_messaging(&url, &[]).await;
    let mut client = second.client().await;
    let topic = unique_name("chaos-consume");
    create_replicated_topic(&mut client, &topic, 4).await;
    let total = 6000u64;
    for chunk in 0..(total / 500) {
        let records = (0..500)
            .map(|i| pb::ProducerRecord {
                topic: topic.clone(),
                key: text(&format!("k{}", i % 16)),
                value: text(&format!("{}", chunk * 500 + i)),
                ..Default::default()
            })
            .collect();
        let results = client
            .produce(pb::ProduceRequest { records })
            .await
            .unwrap()
            .into_inner()
            .results;
        assert!(
            results
                .iter()
                .all(|r| matches!(r.result, Some(pb::produce_result::Result::Metadata(_))))
        );
    }

    let group = unique_name("chaos-group");
    let pace = Duration::from_millis(4);
    let a = paced_consumer(first.client().await, &topic, &group, pace);
    // The second member joins once the first has started reading.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let b = paced_consumer(client.clone(), &topic, &group, pace);
    // Once the group has given both members partitions, both read for a while; then the
    // first dies with records in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (on_a, on_b) = (a.assigned.lock().clone(), b.assigned.lock().clone());
        if !on_a.is_empty() && !on_b.is_empty() && on_a.union(&on_b).count() == 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the group did not settle on two members: {on_a:?} {on_b:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The partitions the first member holds when it dies.
    let a_partitions: HashSet<i32> = a.assigned.lock().clone();
    assert!(!a_partitions.is_empty(), "the first member was reading");
    chaos::signal(first.pid(), "KILL");
    let killed = Instant::now();
    a.task.abort();
    // The survivor now reads as fast as it can, so that the time to its first record of the
    // dead member's partitions is the group's recovery, not its backlog at 4 ms a record.
    b.paced.store(false, std::sync::atomic::Ordering::Relaxed);

    // The survivor takes everything over and reaches the end.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got: HashSet<(i32, i64)> = a
            .delivered
            .lock()
            .iter()
            .chain(b.delivered.lock().iter())
            .map(|(p, o, _)| (*p, *o))
            .collect();
        if got.len() as u64 >= total {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {total} records delivered",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let redelivered_after = b
        .delivered
        .lock()
        .iter()
        .filter(|(p, _, at)| *at > killed && a_partitions.contains(p))
        .map(|(_, _, at)| at.duration_since(killed))
        .min()
        .expect("the survivor got the dead member's partitions");
    let reassigned_after = b
        .assignments
        .lock()
        .iter()
        .filter(|(p, at)| *at > killed && a_partitions.contains(p))
        .map(|(_, at)| at.duration_since(killed))
        .min()
        .expect("the group gave the dead member's partitions to the survivor");
    // The group commits past the last record once the survivor acknowledged it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let lag = loop {
        let described = client
            .describe_consumer_group(pb::DescribeConsumerGroupRequest {
                group_id: group.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let lag: i64 = described.offsets.iter().map(|o| o.lag).sum();
        let committed: i64 = described.offsets.iter().map(|o| o.offset).sum();
        if lag == 0 && committed as u64 == total {
            break lag;
        }
        if Instant::now() > deadline {
            break lag;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    b.task.abort();
    let from_a = a.delivered.lock().len();
    let from_b = b.delivered.lock().len();
    // Each record's deliveries, in time order: a record delivered again after the kill was
    // in flight or not yet committed when its member died; one delivered again before it
    // was moved by the rebalance when the second member joined.
    let mut seen: HashMap<(i32, i64), Vec<Instant>> = HashMap::new();
    for (p, o, at) in a.delivered.lock().iter().chain(b.delivered.lock().iter()) {
        seen.entry((*p, *o)).or_default().push(*at);
    }
    // Per partition of the killed member: the last offset it received, and where the
    // survivor started after the kill (the group's committed offset then).
    let mut resumed_at: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    for partition in &a_partitions {
        let last_on_a = a
            .delivered
            .lock()
            .iter()
            .filter(|(p, _, _)| p == partition)
            .map(|(_, o, _)| *o)
            .max()
            .unwrap_or(-1);
        let first_on_b = b
            .delivered
            .lock()
            .iter()
            .filter(|(p, _, at)| p == partition && *at > killed)
            .map(|(_, o, _)| *o)
            .min()
            .unwrap_or(-1);
        resumed_at.insert(*partition, (last_on_a, first_on_b));
    }
    let mut redelivered_after_kill = 0usize;
    let mut redelivered_at_join = 0usize;
    // How long before the kill the oldest record delivered again had first been delivered:
    // the window of acknowledgements a crash loses (those not yet committed), plus the
    // records in flight.
    let mut crash_window = Duration::ZERO;
    for deliveries in seen.values_mut().filter(|d| d.len() > 1) {
        deliveries.sort();
        if deliveries[1] > killed {
            redelivered_after_kill += 1;
            crash_window = crash_window.max(killed.saturating_duration_since(deliveries[0]));
        } else {
            redelivered_at_join += 1;
        }
    }
    record(
        "messaging-kill-mid-consume",
        &[
            ("records", total.to_string()),
            ("delivered_to_killed", from_a.to_string()),
            ("delivered_to_survivor", from_b.to_string()),
            ("redelivered_after_kill", redelivered_after_kill.to_string()),
            ("redelivered_at_join", redelivered_at_join.to_string()),
            ("redelivered_window_ms", ms(crash_window)),
            (
                "last_on_killed_vs_resumed_at",
                format!("{resumed_at:?}").replace(' ', ""),
            ),
            ("lost", (total - seen.len() as u64).to_string()),
            ("reassigned_after_ms", ms(reassigned_after)),
            ("redelivery_after_ms", ms(redelivered_after)),
            ("lag_at_end", lag.to_string()),
        ],
    );
    assert_eq!(seen.len() as u64, total, "every record delivered");
    assert_eq!(lag, 0, "the group committed past every record");
    assert!(
        reassigned_after < Duration::from_secs(10),
        "the group took {reassigned_after:?} to give the dead member's partitions away"
    );
    assert!(
        redelivered_after < Duration::from_secs(10),
        "the group took {redelivered_after:?} to redeliver"
    );
    // At-least-once, bounded: what the killed member had not acknowledged and the
    // acknowledgements it had not committed yet come again: the records of its last moments
    // (commits are sent with every burst of acks), not more.
    assert!(
        crash_window < Duration::from_secs(3),
        "records first delivered {crash_window:?} before the kill came again ({redelivered_after_kill} of them)"
    );
    let _ = second.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messaging_sigterm_during_streaming_produce() {
    let _one_at_a_time = chaos::exclusive().await;
    let registry = registry().await;
    let url = registry_url(&registry);
    let messaging = cluster_messaging(&url, &[]).await;
    let checker = cluster_messaging(&url, &[]).await;
    let mut client = checker.client().await;
    let topic = unique_name("chaos-sigterm");
    create_replicated_topic(&mut client, &topic, 3).await;

    let (requests, inbound) = tokio::sync::mpsc::channel::<pb::ProduceStreamRequest>(256);
    let mut responses = messaging
        .client()
        .await
        .produce_stream(tokio_stream::wrappers::ReceiverStream::new(inbound))
        .await
        .unwrap()
        .into_inner();
    let sender = {
        let topic = topic.clone();
        tokio::spawn(async move {
            let mut sent = 0u64;
            loop {
                let request = pb::ProduceStreamRequest {
                    record: Some(pb::ProducerRecord {
                        topic: topic.clone(),
                        value: text(&sent.to_string()),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                if requests.send(request).await.is_err() {
                    return sent;
                }
                sent += 1;
                if sent.is_multiple_of(50) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        })
    };
    let pid = messaging.pid();
    let terminate = tokio::spawn(async move {
        tokio::time::sleep(chaos::load_time() / 2).await;
        chaos::signal(pid, "TERM");
    });
    let mut acknowledged: Vec<(u64, i32, i64)> = Vec::new();
    let mut failed = 0u64;
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(60), responses.message()).await {
            Ok(Ok(Some(response))) => match response.result.and_then(|r| r.result) {
                Some(pb::produce_result::Result::Metadata(m)) => {
                    acknowledged.push((response.sequence, m.partition, m.offset));
                }
                _ => failed += 1,
            },
            Ok(Ok(None)) => break None,
            Ok(Err(status)) => break Some(status),
            Err(_) => panic!("the stream went silent"),
        }
    };
    terminate.await.unwrap();
    let sent = {
        drop(responses);
        sender.await.unwrap()
    };
    let exit = messaging.terminate().await;

    let in_topic = read_all(&mut client, &topic).await;
    let by_position: HashMap<(i32, i64), String> = in_topic
        .iter()
        .map(|r| ((r.partition, r.offset), raw_text(&r.value)))
        .collect();
    let missing = acknowledged
        .iter()
        .filter(|(sequence, p, o)| by_position.get(&(*p, *o)) != Some(&sequence.to_string()))
        .count();
    let answered: HashSet<u64> = acknowledged.iter().map(|(s, _, _)| *s).collect();
    let written_unanswered = in_topic
        .iter()
        .filter_map(|r| raw_text(&r.value).parse::<u64>().ok())
        .filter(|s| !answered.contains(s))
        .count();
    record(
        "messaging-sigterm-produce",
        &[
            ("sent", sent.to_string()),
            ("acknowledged", acknowledged.len().to_string()),
            ("failed", failed.to_string()),
            ("acknowledged_missing", missing.to_string()),
            (
                "written_without_acknowledgement",
                written_unanswered.to_string(),
            ),
            (
                "stream_end",
                end.as_ref()
                    .map_or("OK".to_owned(), |s| format!("{:?}", s.code())),
            ),
            ("exit", format!("{exit}")),
        ],
    );
    assert_eq!(missing, 0, "acknowledged records missing");
    assert!(!acknowledged.is_empty());
    assert_eq!(
        end.map(|s| s.code()),
        Some(tonic::Code::Unavailable),
        "the stream ends with UNAVAILABLE at shutdown"
    );
    assert!(exit.success(), "{exit}");
}

const SCHEMA_A: &str = r#"{"type":"record","name":"A","fields":[{"name":"n","type":"long"}]}"#;
const SCHEMA_B: &str = r#"{"type":"record","name":"B","fields":[{"name":"s","type":"string"}]}"#;

fn avro_value(schema: pb::avro_payload::Schema, json: &str) -> Option<pb::Payload> {
    tributary_tests::records::avro(json, schema)
}

fn latest_of(subject: &str) -> pb::avro_payload::Schema {
    pb::avro_payload::Schema::SubjectVersion(pb::SubjectVersionSelector {
        subject: subject.to_owned(),
        version: -1,
        strategy: 0,
    })
}

async fn produce_one(
    client: &mut Client,
    topic: &str,
    value: Option<pb::Payload>,
) -> pb::ProduceResult {
    client
        .produce(pb::ProduceRequest {
            records: vec![pb::ProducerRecord {
                topic: topic.to_owned(),
                value,
                ..Default::default()
            }],
        })
        .await
        .unwrap()
        .into_inner()
        .results
        .remove(0)
}

fn reason(result: &pb::ProduceResult) -> String {
    match &result.result {
        Some(pb::produce_result::Result::Metadata(_)) => "written".to_owned(),
        Some(pb::produce_result::Result::Error(e)) => format!("{}:{}", e.code, e.reason),
        None => "none".to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registry_paused_while_messaging_produces_and_consumes() {
    let _one_at_a_time = chaos::exclusive().await;
    let registry = registry().await;
    let messaging = cluster_messaging(
        &registry_url(&registry),
        &[("MESSAGING_LATEST_SCHEMA_TTL_MS", "1000")],
    )
    .await;
    let mut client = messaging.client().await;
    let topic = unique_name("chaos-registry");
    create_replicated_topic(&mut client, &topic, 1).await;
    // A second topic, whose subject the registry has never seen.
    let other_topic = unique_name("chaos-registry-other");
    create_replicated_topic(&mut client, &other_topic, 1).await;
    let subject = format!("{topic}-value");

    // Before: schema A registered (inline), its latest version and its id in use.
    let first = produce_one(
        &mut client,
        &topic,
        tributary_tests::records::avro_inline(SCHEMA_A, r#"{"n":1}"#),
    )
    .await;
    let id_a = tributary_tests::records::metadata(&first)
        .value_schema_id
        .unwrap();
    assert_eq!(
        reason(
            &produce_one(
                &mut client,
                &topic,
                avro_value(latest_of(&subject), r#"{"n":2}"#)
            )
            .await
        ),
        "written"
    );
    let mut consumer = tributary_tests::TestConsumer::open(
        client.clone(),
        pb::Subscription {
            group_id: unique_name("chaos-registry-group"),
            topics: vec![topic.clone()],
            start: pb::StartPosition::Earliest as i32,
            value_format: pb::PayloadFormat::AvroPlain as i32,
            auto_ack: true,
            ..Default::default()
        },
    )
    .await;
    for _ in 0..2 {
        let record = consumer.next_record(Duration::from_secs(30)).await;
        assert!(
            matches!(
                record.value.and_then(|v| v.data),
                Some(pb::consumed_payload::Data::Json(_))
            ),
            "decoded before the outage"
        );
    }

    // The registry stops answering (paused: connections hang, as a partitioned host's do).
    chaos::signal(registry.pid(), "STOP");
    let paused = Instant::now();
    let mut health =
        HealthClient::new(tributary_tests::security::admin_channel(messaging.addr).await);
    let noticed = loop {
        let status = health
            .check(HealthCheckRequest {
                service: "dependency.registry".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        if status == ServingStatus::NotServing as i32 {
            break paused.elapsed();
        }
        assert!(
            paused.elapsed() < Duration::from_secs(10),
            "the registry outage went unnoticed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ready = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    // Past the latest TTL, the cached schemas keep serving.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let by_latest = reason(
        &produce_one(
            &mut client,
            &topic,
            avro_value(latest_of(&subject), r#"{"n":3}"#),
        )
        .await,
    );
    let by_id = reason(
        &produce_one(
            &mut client,
            &topic,
            avro_value(pb::avro_payload::Schema::SchemaId(id_a), r#"{"n":4}"#),
        )
        .await,
    );
    let plain = reason(&produce_one(&mut client, &topic, text("plain")).await);
    let uncached_started = Instant::now();
    let uncached = reason(
        &produce_one(
            &mut client,
            &other_topic,
            tributary_tests::records::avro_inline(SCHEMA_B, r#"{"s":"x"}"#),
        )
        .await,
    );
    let uncached_took = uncached_started.elapsed();
    // The consumer decodes the two Avro records of cached ids (the plain one comes raw).
    let mut decoded_during = 0;
    for _ in 0..3 {
        let record = consumer.next_record(Duration::from_secs(30)).await;
        if matches!(
            record.value.and_then(|v| v.data),
            Some(pb::consumed_payload::Data::Json(_))
        ) {
            decoded_during += 1;
        }
    }

    // Back: the registry answers again, and the uncached schema goes through without a
    // restart of the messaging service.
    chaos::signal(registry.pid(), "CONT");
    let resumed = Instant::now();
    let recovered_after = loop {
        let result = produce_one(
            &mut client,
            &other_topic,
            tributary_tests::records::avro_inline(SCHEMA_B, r#"{"s":"y"}"#),
        )
        .await;
        if reason(&result) == "written" {
            break resumed.elapsed();
        }
        assert!(
            resumed.elapsed() < Duration::from_secs(30),
            "no recovery: {}",
            reason(&result)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let metrics = tributary_tests::scrape(messaging.metrics_addr).await;
    let stale =
        tributary_tests::sample(&metrics, "messaging_schema_stale_latest_lookups_total", &[]);
    record(
        "registry-pause",
        &[
            ("registry_outage_noticed_ms", ms(noticed)),
            (
                "ready_during_outage",
                (ready == ServingStatus::Serving as i32).to_string(),
            ),
            ("latest_during_outage", by_latest.clone()),
            ("by_id_during_outage", by_id.clone()),
            ("plain_during_outage", plain.clone()),
            ("uncached_during_outage", uncached.clone()),
            ("uncached_failed_after_ms", ms(uncached_took)),
            ("decoded_during_outage", decoded_during.to_string()),
            ("recovered_after_ms", ms(recovered_after)),
            ("stale_latest_lookups", format!("{stale:?}")),
        ],
    );
    assert_eq!(
        ready,
        ServingStatus::Serving as i32,
        "still ready without the registry"
    );
    assert_eq!(by_latest, "written");
    assert_eq!(by_id, "written");
    assert_eq!(plain, "written");
    assert_eq!(
        uncached,
        format!("{}:REGISTRY_ERROR", tonic::Code::Unavailable as i32)
    );
    assert_eq!(decoded_during, 2, "records of cached schemas decode");
    assert!(
        uncached_took < Duration::from_secs(2),
        "a schema the service has not cached fails at once while the registry is known to be down, took {uncached_took:?}"
    );
    assert!(stale.is_some_and(|n| n >= 1.0), "{stale:?}");
    let _ = messaging.terminate().await;
}
