//! Fault suite, registry side: real faults (SIGKILL of PostgreSQL, SIGKILL of a registry
//! replica) under sustained registration and read load on three registry processes sharing one
//! database, checked from the clients' own records of what was acknowledged.
//!
//! What is promised, and checked here:
//! - PostgreSQL killed and restarted while six writers register successive (BACKWARD
//!   compatible) versions of their subjects through the Confluent HTTP API: during the outage a
//!   write fails with 503, error code 50003 and a `Retry-After` header, never with a 500, and
//!   no request hangs; reads of schema ids a replica has already served keep being answered
//!   from its cache; every replica's readiness (`grpc.health.v1`, service "") reads
//!   NOT_SERVING within 2 s of the kill (the postmaster gone) and SERVING again within 15 s of
//!   the restart (PostgreSQL answering queries again); a registration retried after an error
//!   it may have survived, or sent again later, gets the same id (Confluent's idempotent
//!   register); afterwards, on every replica, every acknowledged registration is found under
//!   its id and version, each subject's versions are exactly 1..=n, and no id is shared by two
//!   schemas;
//! - one of the three replicas SIGKILLed under the same load, behind a client that sends each
//!   request to the next replica and retries a failed one (connection refused or reset, 503)
//!   on the next: the same invariants hold on the two survivors (nothing acknowledged lost,
//!   no schema under two ids, no version registered twice, no gap), the retries and failed
//!   requests are counted.
//!
//! Figures go to `target/chaos/results.tsv` (see `tributary_tests::chaos::record`);
//! `scripts/chaos` runs these one at a time and prints them.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use parking_lot::Mutex;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tributary_tests::chaos::{self, ms, record};
use tributary_tests::{RegistryProcess, TestDatabase};

/// The Confluent API's media type.
const V1: &str = "application/vnd.schemaregistry.v1+json";
/// Writers, each registering successive versions of a subject of its own.
const WRITERS: usize = 6;
/// Readers, fetching acknowledged schema ids.
const READERS: usize = 2;
/// A request taking longer than this has hung: counted, and the scenario fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a writer keeps retrying one registration before giving up (the scenario fails).
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);
/// Optional fields a schema version keeps: each version adds one and drops the oldest beyond
/// these, so schemas stay small however long the load runs (both steps are BACKWARD
/// compatible: the new schema reads data written with the previous one).
const FIELDS_KEPT: u32 = 8;
/// Examples of unexpected replies kept as evidence.
const EXAMPLES: usize = 6;

// ---------------------------------------------------------------------------------------------
// Requests

/// Version `version` of writer `writer`'s schema: a record `chaos.Writer{writer}` with a long
/// `id` and the optional string fields `f{k}` of the last [`FIELDS_KEPT`] versions (version 1
/// has none). Every (writer, version) gives a different text.
fn schema_text(writer: usize, version: u32) -> String {
    let mut fields = vec![json!({"name": "id", "type": "long"})];
    for k in (2..=version).filter(|k| k + FIELDS_KEPT > version) {
        fields.push(json!({"name": format!("f{k}"), "type": ["null", "string"], "default": null}));
    }
    json!({
        "type": "record",
        "name": format!("Writer{writer}"),
        "namespace": "chaos",
        "fields": fields,
    })
    .to_string()
}

/// What one HTTP request got.
#[derive(Debug)]
enum Reply {
    /// 200, with its JSON body.
    Ok(Value),
    /// Another status.
    Refused {
        status: u16,
        error_code: Option<i64>,
        retry_after: Option<String>,
        body: String,
    },
    /// No response: connection refused, reset, closed mid-response.
    Transport(String),
    /// No response within [`REQUEST_TIMEOUT`].
    TimedOut,
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Ok(body) => write!(f, "200 {body}"),
            Reply::Refused {
                status,
                retry_after,
                body,
                ..
            } => write!(f, "{status} (Retry-After: {retry_after:?}) {body}"),
            Reply::Transport(error) => write!(f, "no response: {error}"),
            Reply::TimedOut => write!(f, "no response within {REQUEST_TIMEOUT:?}"),
        }
    }
}

impl Reply {
    /// Connection refused or reset, a 503: what a retrying client tries again elsewhere.
    fn is_retriable(&self) -> bool {
        matches!(
            self,
            Reply::Transport(_) | Reply::Refused { status: 503, .. }
        )
    }
}

/// Sends `request`, giving up after [`REQUEST_TIMEOUT`].
async fn send(request: reqwest::RequestBuilder) -> Reply {
    let exchange = async {
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return Reply::Transport(error_chain(&error)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let body = match response.text().await {
            Ok(body) => body,
            Err(error) => return Reply::Transport(error_chain(&error)),
        };
        if status == 200 {
            let value = serde_json::from_str(&body)
                .unwrap_or_else(|error| panic!("a 200 whose body is not JSON ({error}): {body}"));
            return Reply::Ok(value);
        }
        let error_code = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|value| value["error_code"].as_i64());
        Reply::Refused {
            status,
            error_code,
            retry_after,
            body,
        }
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .unwrap_or(Reply::TimedOut)
}

/// An error and its sources, on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn post_schema(client: &reqwest::Client, url: String, schema: &str) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header(CONTENT_TYPE, V1)
        .body(json!({ "schema": schema }).to_string())
}

/// Replies counted by kind, with a few examples of the unexpected ones.
#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    by_status: BTreeMap<u16, u64>,
    transport: u64,
    timed_out: u64,
    /// 503s without error code 50003, or without a `Retry-After` of at least one second.
    malformed_503: u64,
    /// The longest a request took to fail (any reply but a 200).
    slowest_failure: Duration,
    examples: Vec<String>,
}

impl Tally {
    fn note(&mut self, reply: &Reply, took: Duration, what: &str) {
        if !matches!(reply, Reply::Ok(_)) {
            self.slowest_failure = self.slowest_failure.max(took);
        }
        match reply {
            Reply::Ok(_) => {
                self.ok += 1;
                return;
            }
            Reply::Refused {
                status,
                error_code,
                retry_after,
                ..
            } => {
                *self.by_status.entry(*status).or_default() += 1;
                if *status == 503 {
                    let waits = retry_after
                        .as_deref()
                        .and_then(|after| after.trim().parse::<u64>().ok())
                        .is_some_and(|seconds| seconds >= 1);
                    if *error_code == Some(50003) && waits {
                        return;
                    }
                    self.malformed_503 += 1;
                }
            }
            Reply::Transport(_) => self.transport += 1,
            Reply::TimedOut => self.timed_out += 1,
        }
        if self.examples.len() < EXAMPLES {
            self.examples
                .push(format!("{what}: {reply} ({} ms)", took.as_millis()));
        }
    }

    fn status(&self, status: u16) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }

    /// Failed requests: every reply but a 200.
    fn failed(&self) -> u64 {
        self.by_status.values().sum::<u64>() + self.transport + self.timed_out
    }

    /// Statuses other than 200 and 503.
    fn other_statuses(&self) -> u64 {
        self.by_status
            .iter()
            .filter(|(status, _)| **status != 503)
            .map(|(_, n)| n)
            .sum()
    }

    /// Statuses of 500 and above but 503.
    fn server_errors(&self) -> u64 {
        self.by_status
            .iter()
            .filter(|(status, _)| **status >= 500 && **status != 503)
            .map(|(_, n)| n)
            .sum()
    }

    /// The statuses, compactly (`{503:12}`).
    fn statuses(&self) -> String {
        format!("{:?}", self.by_status).replace(' ', "")
    }
}

// ---------------------------------------------------------------------------------------------
// Load

/// One acknowledged registration.
#[derive(Debug, Clone)]
struct Acked {
    subject: String,
    /// The writer's count: the k-th registration of a subject must be its version k.
    version: u32,
    schema: String,
    id: i64,
    at: Instant,
}

/// What the writers and readers share.
struct Load {
    client: reqwest::Client,
    /// The replicas' HTTP base URLs (`https://127.0.0.1:port`).
    replicas: Vec<String>,
    /// When the load started (examples say when they happened from it).
    started: Instant,
    /// No registration starts after this.
    end: Instant,
    /// Pause before retrying a failed registration.
    retry_pause: Duration,
    acked: Mutex<Vec<Acked>>,
    writes: Mutex<Tally>,
    reads: Mutex<Tally>,
    retries: AtomicU64,
    /// Set from shortly before PostgreSQL is killed until it is back: readers then read only
    /// ids their replica has served before (from its cache).
    cached_only: AtomicBool,
    /// Those reads: when each was sent, and whether it was answered.
    cached_reads: Mutex<Vec<(Instant, bool)>>,
    /// Reads answered with a schema other than the one registered under the id.
    wrong_reads: AtomicU64,
}

impl Load {
    fn new(replicas: Vec<String>, load_time: Duration, retry_pause: Duration) -> Arc<Self> {
        Arc::new(Self {
            client: tributary_tests::security::admin_http_client(),
            replicas,
            started: Instant::now(),
            end: Instant::now() + load_time,
            retry_pause,
            acked: Mutex::default(),
            writes: Mutex::default(),
            reads: Mutex::default(),
            retries: AtomicU64::new(0),
            cached_only: AtomicBool::new(false),
            cached_reads: Mutex::default(),
            wrong_reads: AtomicU64::new(0),
        })
    }

    fn acked(&self) -> Vec<Acked> {
        self.acked.lock().clone()
    }
}

/// How a writer's load went.
#[derive(Debug, Default)]
struct WriterOutcome {
    /// The registration it gave up on after [`GIVE_UP_AFTER`] of failures, if any.
    unfinished: Option<String>,
    /// The longest a registration took to be acknowledged, retries included.
    slowest: Duration,
}

/// Registers versions 1, 2, ... of subject `chaos-w{writer}` until the load ends, each request
/// to the next replica; a failed registration is retried (the same schema) after the load's
/// pause, on the next replica, until acknowledged — also after the load's end, so every
/// registration it sent was acknowledged in the end.
async fn writer(load: Arc<Load>, writer: usize) -> WriterOutcome {
    let subject = format!("chaos-w{writer}");
    let mut next = writer;
    let mut outcome = WriterOutcome::default();
    let mut version = 1;
    while Instant::now() < load.end {
        let schema = schema_text(writer, version);
        let started = Instant::now();
        let id = loop {
            let base = &load.replicas[next % load.replicas.len()];
            next += 1;
            let sent = Instant::now();
            let reply = send(post_schema(
                &load.client,
                format!("{base}/subjects/{subject}/versions"),
                &schema,
            ))
            .await;
            load.writes.lock().note(
                &reply,
                sent.elapsed(),
                &format!(
                    "+{}ms register {subject} #{version} at {base}",
                    sent.duration_since(load.started).as_millis()
                ),
            );
            if let Reply::Ok(body) = &reply {
                break body["id"]
                    .as_i64()
                    .unwrap_or_else(|| panic!("a registration without an id: {body}"));
            }
            if started.elapsed() > GIVE_UP_AFTER {
                outcome.unfinished = Some(format!(
                    "{subject} #{version}, last reply {reply} after {:?}",
                    started.elapsed()
                ));
                return outcome;
            }
            load.retries.fetch_add(1, Ordering::Relaxed);
            if !reply.is_retriable() || !load.retry_pause.is_zero() {
                tokio::time::sleep(load.retry_pause.max(Duration::from_millis(20))).await;
            }
        };
        outcome.slowest = outcome.slowest.max(started.elapsed());
        load.acked.lock().push(Acked {
            subject: subject.clone(),
            version,
            schema,
            id,
            at: Instant::now(),
        });
        version += 1;
    }
    outcome
}

/// Fetches acknowledged ids (`GET /schemas/ids/{id}`) from the replicas in turn until the load
/// ends, checking the schema answered is the one registered. Around PostgreSQL's outage it asks
/// each replica only for ids that replica has served before (its cache), recording the answers.
async fn reader(load: Arc<Load>, reader: usize) {
    // Per replica, the indexes (into the acknowledged list) of the ids it has served.
    let mut served: Vec<(HashSet<usize>, Vec<usize>)> =
        vec![Default::default(); load.replicas.len()];
    let mut random = 0x9E37_79B9_7F4A_7C15_u64 ^ (reader as u64 + 1);
    let mut next = reader;
    while Instant::now() < load.end {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let replica = next % load.replicas.len();
        next += 1;
        let cached_only = load.cached_only.load(Ordering::SeqCst);
        let index = if cached_only {
            let known = &served[replica].1;
            (!known.is_empty()).then(|| known[random as usize % known.len()])
        } else {
            let count = load.acked.lock().len();
            (count > 0).then(|| random as usize % count)
        };
        let Some(index) = index else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (id, schema) = {
            let acked = load.acked.lock();
            (acked[index].id, acked[index].schema.clone())
        };
        let base = &load.replicas[replica];
        let sent = Instant::now();
        let reply = send(load.client.get(format!("{base}/schemas/ids/{id}"))).await;
        load.reads.lock().note(
            &reply,
            sent.elapsed(),
            &format!(
                "+{}ms read id {id} at {base}",
                sent.duration_since(load.started).as_millis()
            ),
        );
        if cached_only {
            load.cached_reads
                .lock()
                .push((sent, matches!(reply, Reply::Ok(_))));
        }
        if let Reply::Ok(body) = &reply {
            let answered = body["schema"]
                .as_str()
                .and_then(|text| serde_json::from_str::<Value>(text).ok());
            if answered != serde_json::from_str::<Value>(&schema).ok() {
                load.wrong_reads.fetch_add(1, Ordering::Relaxed);
                eprintln!("id {id} at {base} answered {body}, registered as {schema}");
            }
            if served[replica].0.insert(index) {
                served[replica].1.push(index);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The writers' and readers' tasks.
fn start_load(
    load: &Arc<Load>,
) -> (
    Vec<tokio::task::JoinHandle<WriterOutcome>>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let writers = (0..WRITERS)
        .map(|w| tokio::spawn(writer(Arc::clone(load), w)))
        .collect();
    let readers = (0..READERS)
        .map(|r| tokio::spawn(reader(Arc::clone(load), r)))
        .collect();
    (writers, readers)
}

/// Waits for the writers and readers; the writers' outcomes.
async fn finish_load(
    writers: Vec<tokio::task::JoinHandle<WriterOutcome>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
) -> Vec<WriterOutcome> {
    for reader in readers {
        reader.await.unwrap();
    }
    let mut outcomes = Vec::new();
    for writer in writers {
        outcomes.push(writer.await.unwrap());
    }
    outcomes
}

/// Three registry processes on a fresh database.
async fn three_replicas() -> Vec<RegistryProcess> {
    let database = TestDatabase::create().await;
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(RegistryProcess::spawn(&database.url).await);
    }
    replicas
}

fn http_url(replica: &RegistryProcess) -> String {
    format!("https://{}", replica.http_addr)
}

// ---------------------------------------------------------------------------------------------
// Readiness

/// What a health check read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Serving,
    NotServing,
    Other(i32),
    /// No answer within a second.
    Unreachable,
}

/// A replica's readiness (`grpc.health.v1`, service ""), read every 50 ms until `stop`: each
/// change, with when it was read.
fn watch_health(
    addr: SocketAddr,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<Vec<(Instant, Seen)>> {
    tokio::spawn(async move {
        let mut health = HealthClient::new(tributary_tests::security::admin_channel(addr).await);
        let mut changes: Vec<(Instant, Seen)> = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let check = health.check(HealthCheckRequest {
                service: String::new(),
            });
            let seen = match tokio::time::timeout(Duration::from_secs(1), check).await {
                Ok(Ok(response)) => match ServingStatus::try_from(response.into_inner().status) {
                    Ok(ServingStatus::Serving) => Seen::Serving,
                    Ok(ServingStatus::NotServing) => Seen::NotServing,
                    _ => Seen::Other(0),
                },
                _ => Seen::Unreachable,
            };
            if changes.last().map(|(_, last)| *last) != Some(seen) {
                changes.push((Instant::now(), seen));
            }
        }
        changes
    })
}

/// When `wanted` was first read at or after `since`.
fn first_seen(changes: &[(Instant, Seen)], since: Instant, wanted: Seen) -> Option<Instant> {
    changes
        .iter()
        .find(|(at, seen)| *at >= since && *seen == wanted)
        .map(|(at, _)| *at)
}

/// What was read at `at` (the last change before it).
fn seen_at(changes: &[(Instant, Seen)], at: Instant) -> Option<Seen> {
    changes
        .iter()
        .take_while(|(changed, _)| *changed <= at)
        .last()
        .map(|(_, seen)| *seen)
}

/// The changes, relative to `origin`, for messages.
fn timeline(changes: &[(Instant, Seen)], origin: Instant) -> String {
    changes
        .iter()
        .map(|(at, seen)| {
            let offset = if *at >= origin {
                format!("+{}ms", at.duration_since(origin).as_millis())
            } else {
                format!("-{}ms", origin.duration_since(*at).as_millis())
            };
            format!("{offset} {seen:?}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits (at most until `deadline`) for every replica to read SERVING.
async fn wait_until_serving(addrs: &[SocketAddr], deadline: Instant) {
    for addr in addrs {
        let mut health = HealthClient::new(tributary_tests::security::admin_channel(*addr).await);
        while Instant::now() < deadline {
            let check = health.check(HealthCheckRequest {
                service: String::new(),
            });
            if let Ok(Ok(response)) = tokio::time::timeout(Duration::from_secs(1), check).await
                && response.into_inner().status == ServingStatus::Serving as i32
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Checks

/// What the replicas hold, against what was acknowledged.
#[derive(Debug, Default)]
struct Verdict {
    /// Acknowledged registrations a replica does not find under their id and version.
    lost: u64,
    /// Ids given to two different schema texts, texts under two ids, versions beyond the
    /// acknowledged ones or listed twice (a registration recorded twice), and registrations
    /// that, sent again, got another id.
    duplicated: u64,
    /// Versions missing below a subject's last acknowledged one.
    gaps: u64,
    /// Check requests that failed (any reply but a 200 or a lookup's 404).
    check_errors: u64,
    examples: Vec<String>,
}

impl Verdict {
    fn example(&mut self, example: String) {
        if self.examples.len() < EXAMPLES {
            self.examples.push(example);
        }
    }
}

/// Checks the acknowledged registrations on each of `replicas` (HTTP base URLs).
async fn verify(client: &reqwest::Client, replicas: &[String], acked: &[Acked]) -> Verdict {
    let mut verdict = Verdict::default();

    // Ids and texts, from the clients' own records.
    let mut texts_of_id: HashMap<i64, HashSet<&str>> = HashMap::new();
    let mut ids_of_text: HashMap<&str, HashSet<i64>> = HashMap::new();
    for registration in acked {
        texts_of_id
            .entry(registration.id)
            .or_default()
            .insert(&registration.schema);
        ids_of_text
            .entry(&registration.schema)
            .or_default()
            .insert(registration.id);
    }
    for (id, texts) in &texts_of_id {
        if texts.len() > 1 {
            verdict.duplicated += texts.len() as u64 - 1;
            verdict.example(format!("id {id} acknowledged for {} schemas", texts.len()));
        }
    }
    for (text, ids) in &ids_of_text {
        if ids.len() > 1 {
            verdict.duplicated += ids.len() as u64 - 1;
            verdict.example(format!("schema {text} acknowledged under ids {ids:?}"));
        }
    }

    // A registration sent again (as a client does whose acknowledgement was lost) gets the
    // same id and registers nothing new: each subject's first and last, on each replica.
    let mut first_and_last: BTreeMap<&str, (&Acked, &Acked)> = BTreeMap::new();
    for registration in acked {
        let (first, last) = first_and_last
            .entry(&registration.subject)
            .or_insert((registration, registration));
        if registration.version < first.version {
            *first = registration;
        }
        if registration.version > last.version {
            *last = registration;
        }
    }
    for base in replicas {
        for (subject, (first, last)) in &first_and_last {
            for registration in [first, last] {
                let url = format!("{base}/subjects/{subject}/versions");
                let reply = send(post_schema(client, url, &registration.schema)).await;
                match &reply {
                    Reply::Ok(body) if body["id"].as_i64() == Some(registration.id) => {}
                    Reply::Ok(body) => {
                        verdict.duplicated += 1;
                        verdict.example(format!(
                            "{subject} #{} (id {}) registered again at {base}: {body}",
                            registration.version, registration.id
                        ));
                    }
                    _ => {
                        verdict.check_errors += 1;
                        verdict.example(format!(
                            "{subject} #{} registered again at {base}: {reply}",
                            registration.version
                        ));
                    }
                }
            }
        }
    }

    // Each subject's versions, on each replica.
    let last_version: BTreeMap<&str, u32> = first_and_last
        .iter()
        .map(|(subject, (_, last))| (*subject, last.version))
        .collect();
    for base in replicas {
        for (subject, last) in &last_version {
            let reply = send(client.get(format!("{base}/subjects/{subject}/versions"))).await;
            let Reply::Ok(body) = reply else {
                verdict.check_errors += 1;
                verdict.example(format!("versions of {subject} at {base}: {reply}"));
                continue;
            };
            let versions: Vec<u32> = serde_json::from_value(body).unwrap();
            let expected: Vec<u32> = (1..=*last).collect();
            if versions != expected {
                let present: HashSet<u32> = versions.iter().copied().collect();
                verdict.gaps += expected.iter().filter(|v| !present.contains(v)).count() as u64;
                verdict.duplicated += versions.iter().filter(|v| **v > *last).count() as u64
                    + (versions.len() - present.len()) as u64;
                verdict.example(format!(
                    "versions of {subject} at {base}: {versions:?}, expected 1..={last}"
                ));
            }
        }
    }

    // Each acknowledged registration, looked up on each replica.
    let checks = replicas
        .iter()
        .flat_map(|base| acked.iter().map(move |registration| (base, registration)));
    let replies: Vec<(String, &Acked, Reply)> = futures::stream::iter(checks)
        .map(|(base, registration)| async move {
            let url = format!("{base}/subjects/{}", registration.subject);
            let reply = send(post_schema(client, url, &registration.schema)).await;
            (base.clone(), registration, reply)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for (base, registration, reply) in replies {
        let Acked {
            subject,
            version,
            id,
            ..
        } = registration;
        match &reply {
            Reply::Ok(body)
                if body["id"].as_i64() == Some(*id)
                    && body["version"].as_u64() == Some(u64::from(*version)) => {}
            Reply::Ok(body) => {
                verdict.lost += 1;
                verdict.example(format!(
                    "{subject} #{version} (id {id}) at {base}: found as {body}"
                ));
            }
            Reply::Refused { status: 404, .. } => {
                verdict.lost += 1;
                verdict.example(format!(
                    "{subject} #{version} (id {id}) at {base}: not found: {reply}"
                ));
            }
            _ => {
                verdict.check_errors += 1;
                verdict.example(format!(
                    "lookup of {subject} #{version} (id {id}) at {base}: {reply}"
                ));
            }
        }
    }
    verdict
}

/// Registrations acknowledged per second of load.
/// Prints the examples the load and the checks kept, then asserts what both scenarios promise:
/// every registration acknowledged in the end, none lost, none under two ids, no version gap.
fn assert_registrations_kept(
    writes: &Tally,
    reads: &Tally,
    verdict: &Verdict,
    unfinished: &[&String],
) {
    for example in writes
        .examples
        .iter()
        .chain(&reads.examples)
        .chain(&verdict.examples)
    {
        println!("  {example}");
    }

    assert!(
        unfinished.is_empty(),
        "registrations never acknowledged: {unfinished:?}"
    );
    assert_eq!(
        verdict.check_errors, 0,
        "the checks failed: {:?}",
        verdict.examples
    );
    assert_eq!(
        verdict.lost, 0,
        "acknowledged registrations lost: {:?}",
        verdict.examples
    );
    assert_eq!(verdict.duplicated, 0, "duplicates: {:?}", verdict.examples);
    assert_eq!(verdict.gaps, 0, "version gaps: {:?}", verdict.examples);
}

fn rate(acknowledged: usize, load_time: Duration) -> String {
    format!("{:.0}", acknowledged as f64 / load_time.as_secs_f64())
}

/// The longest, over the writers, from `since` to their first acknowledgement after it.
fn writers_resumed_after(acked: &[Acked], since: Instant) -> Option<Duration> {
    let mut first: HashMap<&str, Instant> = HashMap::new();
    for registration in acked.iter().filter(|r| r.at >= since) {
        let slot = first
            .entry(&registration.subject)
            .or_insert(registration.at);
        *slot = (*slot).min(registration.at);
    }
    (first.len() == WRITERS).then(|| {
        first
            .values()
            .map(|at| at.duration_since(since))
            .max()
            .unwrap_or_default()
    })
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// The stack's PostgreSQL postmaster's pid.
fn postgres_pid() -> u32 {
    let pid = chaos::stack(&["postgres", "pid"]);
    pid.trim()
        .parse()
        .unwrap_or_else(|_| panic!("scripts/stack postgres pid said {pid:?}"))
}

/// Whether process `pid` is gone: exited, or dead and not yet reaped.
fn process_gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| matches!(state, 'Z' | 'X'))
    })
}

/// When process `pid` was first seen gone (polled every 5 ms for at most `within`): the moment
/// of the kill, whatever `scripts/stack` did before and after it.
async fn gone_at(pid: u32, within: Duration) -> Option<Instant> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if process_gone(pid) {
            return Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// When the stack's PostgreSQL first answered a query again (polled every 50 ms for at most
/// `within`): the moment it is back, whatever `scripts/stack` did before and after starting it.
async fn answering_at(within: Duration) -> Option<Instant> {
    use sqlx::Connection;
    let deadline = Instant::now() + within;
    let url = tributary_tests::admin_url();
    while Instant::now() < deadline {
        let attempt = async {
            let mut connection = sqlx::PgConnection::connect(&url).await?;
            sqlx::query("SELECT 1").execute(&mut connection).await?;
            connection.close().await
        };
        if let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(1), attempt).await {
            return Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Starts the stack's PostgreSQL again when dropped before [`Self::started`]: a scenario that
/// fails during the outage does not leave the stack without its database.
struct RestartPostgresOnDrop {
    armed: bool,
}

impl RestartPostgresOnDrop {
    fn started(mut self) {
        self.armed = false;
    }
}

impl Drop for RestartPostgresOnDrop {
    fn drop(&mut self) {
        if self.armed {
            eprintln!("starting PostgreSQL again after a failure during the outage");
            let _ = std::process::Command::new(chaos::repo_root().join("scripts/stack"))
                .args(["postgres", "start"])
                .status();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_killed_and_restarted_under_registration_load() {
    let _one_at_a_time = chaos::exclusive().await;
    let replicas = three_replicas().await;
    let addrs: Vec<SocketAddr> = replicas.iter().map(|r| r.addr).collect();
    let stop_watching = CancellationToken::new();
    let watchers: Vec<_> = addrs
        .iter()
        .map(|addr| watch_health(*addr, stop_watching.clone()))
        .collect();

    let load_time = chaos::load_time();
    let load = Load::new(
        replicas.iter().map(http_url).collect(),
        load_time,
        Duration::from_millis(100),
    );
    let (writers, readers) = start_load(&load);

    // The fault: SIGKILL PostgreSQL at a third of the load, start it again 3 s later. The
    // readers ask for cached ids only from a moment before (a read of an uncached id in flight
    // at the kill would wait for the database) until PostgreSQL is back.
    tokio::time::sleep(load_time / 3).await;
    load.cached_only.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let acknowledged_before_kill = load.acked.lock().len();
    let postmaster = postgres_pid();
    let restart_guard = RestartPostgresOnDrop { armed: true };
    let kill_started = Instant::now();
    let ((), killed_at) = tokio::join!(
        async {
            chaos::stack_async(&["postgres", "kill"]).await;
        },
        gone_at(postmaster, Duration::from_secs(30)),
    );
    let kill_took = kill_started.elapsed();
    // The script waits for every server process to be gone: the postmaster is.
    let killed_at =
        killed_at.expect("the postmaster is gone once scripts/stack postgres kill returns");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let restart_started = Instant::now();
    let ((), back_at) = tokio::join!(
        async {
            chaos::stack_async(&["postgres", "start"]).await;
        },
        answering_at(Duration::from_secs(120)),
    );
    let restart_took = restart_started.elapsed();
    restart_guard.started();
    let back_at = back_at.expect("PostgreSQL answers once scripts/stack postgres start returns");
    load.cached_only.store(false, Ordering::SeqCst);

    let outcomes = finish_load(writers, readers).await;
    let loaded_for = load.started.elapsed();
    wait_until_serving(&addrs, back_at + Duration::from_secs(15)).await;
    stop_watching.cancel();
    let mut health = Vec::new();
    for watcher in watchers {
        health.push(watcher.await.unwrap());
    }

    // Readiness: NOT_SERVING after the kill (from the moment the postmaster was gone), SERVING
    // again after the restart (from the moment PostgreSQL answered again).
    let mut not_serving_after = Vec::new();
    let mut serving_again_after = Vec::new();
    for (replica, changes) in health.iter().enumerate() {
        assert_eq!(
            seen_at(changes, kill_started),
            Some(Seen::Serving),
            "replica {replica} was not SERVING before the kill: {}",
            timeline(changes, killed_at)
        );
        not_serving_after.push(
            first_seen(changes, kill_started, Seen::NotServing)
                .map(|at| at.saturating_duration_since(killed_at)),
        );
        serving_again_after.push(
            first_seen(changes, restart_started, Seen::Serving)
                .map(|at| at.saturating_duration_since(back_at)),
        );
    }
    let worst = |durations: &[Option<Duration>]| {
        durations
            .iter()
            .map(|d| d.map_or_else(|| "never".to_owned(), ms))
            .max_by_key(|text| text.parse::<u128>().unwrap_or(u128::MAX))
            .unwrap_or_default()
    };

    let acked = load.acked();
    let verdict = verify(&load.client, &load.replicas, &acked).await;
    let writes = std::mem::take(&mut *load.writes.lock());
    let reads = std::mem::take(&mut *load.reads.lock());
    let unfinished: Vec<&String> = outcomes
        .iter()
        .filter_map(|o| o.unfinished.as_ref())
        .collect();
    let slowest = outcomes.iter().map(|o| o.slowest).max().unwrap_or_default();
    let resumed = writers_resumed_after(&acked, back_at);
    let (cached_ok, cached_failed) = load
        .cached_reads
        .lock()
        .iter()
        .filter(|(sent, _)| *sent >= killed_at && *sent < back_at)
        .fold((0u64, 0u64), |(ok, failed), (_, answered)| {
            if *answered {
                (ok + 1, failed)
            } else {
                (ok, failed + 1)
            }
        });
    let wrong_reads = load.wrong_reads.load(Ordering::Relaxed);
    record(
        "postgres-kill",
        &[
            ("acknowledged", acked.len().to_string()),
            (
                "acknowledged_before_kill",
                acknowledged_before_kill.to_string(),
            ),
            ("registrations_per_s", rate(acked.len(), loaded_for)),
            ("lost", verdict.lost.to_string()),
            ("duplicated", verdict.duplicated.to_string()),
            ("version_gaps", verdict.gaps.to_string()),
            ("errors_503", writes.status(503).to_string()),
            ("errors_500", writes.status(500).to_string()),
            (
                "errors_other",
                (writes.other_statuses() + writes.transport + writes.timed_out).to_string(),
            ),
            ("write_statuses", writes.statuses()),
            ("malformed_503", writes.malformed_503.to_string()),
            ("retries", load.retries.load(Ordering::Relaxed).to_string()),
            (
                "timed_out",
                (writes.timed_out + reads.timed_out).to_string(),
            ),
            ("reads_ok", reads.ok.to_string()),
            ("read_statuses", reads.statuses()),
            ("cached_reads_ok_during_outage", cached_ok.to_string()),
            (
                "cached_reads_failed_during_outage",
                cached_failed.to_string(),
            ),
            ("wrong_reads", wrong_reads.to_string()),
            ("not_serving_after_ms", worst(&not_serving_after)),
            ("serving_again_after_ms", worst(&serving_again_after)),
            (
                "writers_resumed_after_ms",
                resumed.map_or_else(|| "never".to_owned(), ms),
            ),
            ("slowest_registration_ms", ms(slowest)),
            ("slowest_failed_write_ms", ms(writes.slowest_failure)),
            ("slowest_failed_read_ms", ms(reads.slowest_failure)),
            ("postgres_down_ms", ms(back_at.duration_since(killed_at))),
            ("kill_command_ms", ms(kill_took)),
            ("start_command_ms", ms(restart_took)),
        ],
    );
    for (replica, changes) in health.iter().enumerate() {
        println!(
            "  replica {replica} readiness (from the kill; PostgreSQL answered again at +{} ms): {}",
            back_at.duration_since(killed_at).as_millis(),
            timeline(changes, killed_at)
        );
    }
    assert_registrations_kept(&writes, &reads, &verdict, &unfinished);
    assert_eq!(
        writes.server_errors() + reads.server_errors(),
        0,
        "a restarting PostgreSQL gave 5xx other than 503: writes {}, reads {}: {:?} {:?}",
        writes.statuses(),
        reads.statuses(),
        writes.examples,
        reads.examples
    );
    assert_eq!(
        writes.other_statuses() + reads.other_statuses(),
        0,
        "statuses other than 200 and 503 (a refusal, or an acknowledged id not found): writes \
         {}, reads {}: {:?} {:?}",
        writes.statuses(),
        reads.statuses(),
        writes.examples,
        reads.examples
    );
    assert_eq!(
        writes.malformed_503 + reads.malformed_503,
        0,
        "503s without error code 50003 and Retry-After: {:?} {:?}",
        writes.examples,
        reads.examples
    );
    assert_eq!(
        writes.timed_out + reads.timed_out,
        0,
        "requests hung for {REQUEST_TIMEOUT:?}"
    );
    assert_eq!(
        wrong_reads, 0,
        "reads answered another schema than the id's"
    );
    assert!(
        writes.status(503) > 0,
        "no registration failed with 503 while PostgreSQL was down: the fault did not happen"
    );
    assert!(
        acknowledged_before_kill > 0 && acked.len() > acknowledged_before_kill,
        "registrations before the kill ({acknowledged_before_kill}) and after the restart ({})",
        acked.len()
    );
    assert!(
        resumed.is_some(),
        "some writer never registered after the restart"
    );
    assert!(cached_ok > 0, "no cached id was read during the outage");
    assert_eq!(
        cached_failed, 0,
        "reads of ids a replica had served failed while PostgreSQL was down"
    );
    for (replica, changes) in health.iter().enumerate() {
        let after_kill = not_serving_after[replica];
        assert!(
            after_kill.is_some_and(|d| d <= Duration::from_secs(2)),
            "replica {replica} did not read NOT_SERVING within 2 s of the kill: {}",
            timeline(changes, killed_at)
        );
        let after_restart = serving_again_after[replica];
        assert!(
            after_restart.is_some_and(|d| d <= Duration::from_secs(15)),
            "replica {replica} did not read SERVING within 15 s of PostgreSQL's return: {}",
            timeline(changes, back_at)
        );
    }
    for replica in replicas {
        assert!(replica.terminate().await.success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registry_replica_killed_behind_a_retrying_client() {
    let _one_at_a_time = chaos::exclusive().await;
    let mut replicas = three_replicas().await;
    let load_time = chaos::load_time();
    let load = Load::new(
        replicas.iter().map(http_url).collect(),
        load_time,
        Duration::ZERO,
    );
    let (writers, readers) = start_load(&load);

    // The fault: SIGKILL the first replica at a third of the load.
    tokio::time::sleep(load_time / 3).await;
    let acknowledged_before_kill = load.acked.lock().len();
    let killed = replicas.remove(0);
    let killed_addr = killed.http_addr;
    let killed_at = Instant::now();
    chaos::signal(killed.pid(), "KILL");
    let mut gone = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(killed_addr).await.is_err() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        gone,
        "the killed replica still accepts connections after 1 s"
    );

    let outcomes = finish_load(writers, readers).await;
    let loaded_for = load.started.elapsed();
    let acked = load.acked();
    let survivors: Vec<String> = replicas.iter().map(http_url).collect();
    let verdict = verify(&load.client, &survivors, &acked).await;
    let writes = std::mem::take(&mut *load.writes.lock());
    let reads = std::mem::take(&mut *load.reads.lock());
    let unfinished: Vec<&String> = outcomes
        .iter()
        .filter_map(|o| o.unfinished.as_ref())
        .collect();
    let slowest = outcomes.iter().map(|o| o.slowest).max().unwrap_or_default();
    let resumed = writers_resumed_after(&acked, killed_at);
    let wrong_reads = load.wrong_reads.load(Ordering::Relaxed);
    record(
        "registry-replica-kill",
        &[
            ("acknowledged", acked.len().to_string()),
            (
                "acknowledged_before_kill",
                acknowledged_before_kill.to_string(),
            ),
            ("registrations_per_s", rate(acked.len(), loaded_for)),
            ("lost", verdict.lost.to_string()),
            ("duplicated", verdict.duplicated.to_string()),
            ("version_gaps", verdict.gaps.to_string()),
            ("retries", load.retries.load(Ordering::Relaxed).to_string()),
            ("failed_requests", writes.failed().to_string()),
            ("transport_errors", writes.transport.to_string()),
            ("errors_503", writes.status(503).to_string()),
            ("errors_other", writes.other_statuses().to_string()),
            ("write_statuses", writes.statuses()),
            (
                "timed_out",
                (writes.timed_out + reads.timed_out).to_string(),
            ),
            ("reads_ok", reads.ok.to_string()),
            ("reads_failed", reads.failed().to_string()),
            ("wrong_reads", wrong_reads.to_string()),
            (
                "writers_resumed_after_ms",
                resumed.map_or_else(|| "never".to_owned(), ms),
            ),
            ("slowest_registration_ms", ms(slowest)),
            ("slowest_failed_write_ms", ms(writes.slowest_failure)),
        ],
    );
    assert_registrations_kept(&writes, &reads, &verdict, &unfinished);
    assert_eq!(
        writes.other_statuses() + reads.other_statuses(),
        0,
        "statuses other than 200 and 503: writes {}, reads {}: {:?} {:?}",
        writes.statuses(),
        reads.statuses(),
        writes.examples,
        reads.examples
    );
    assert_eq!(
        writes.timed_out + reads.timed_out,
        0,
        "requests hung for {REQUEST_TIMEOUT:?}"
    );
    assert_eq!(
        wrong_reads, 0,
        "reads answered another schema than the id's"
    );
    assert!(
        writes.transport > 0,
        "no request failed on the killed replica: the fault did not happen"
    );
    assert!(
        acknowledged_before_kill > 0 && acked.len() > acknowledged_before_kill,
        "registrations before the kill ({acknowledged_before_kill}) and after it ({})",
        acked.len()
    );
    assert!(
        resumed.is_some(),
        "some writer never registered after the kill"
    );
    drop(killed);
    for replica in replicas {
        assert!(replica.terminate().await.success());
    }
}
