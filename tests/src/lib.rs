//! Test harness: throwaway Postgres databases on the stack's server, registries started in
//! process (on port 0) or as real processes, and gRPC and HTTP clients for them.
//!
//! Services run as they do by default: over TLS, with authentication ([`security`] makes the
//! certificates, users and keys). The clients here connect over TLS as the `admin` user.
//!
//! Tests need the stack (`scripts/stack up --infra`, which `scripts/test` runs). A test that
//! cannot reach Postgres fails with a message saying so; it never skips.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod chaos;
pub mod flood;
pub mod records;
pub mod registry_http;
pub mod security;

pub use security::AuthChannel;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sqlx::Connection;
use tokio_util::sync::CancellationToken;
use tributary_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tributary_registry::config::{DatabaseUrl, LogFormat};
use tributary_registry::{Application, Settings};

/// The admin URL of the stack's Postgres (`scripts/stack env` exports it).
pub fn admin_url() -> String {
    std::env::var("TRIBUTARY_PG_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55432/postgres".to_owned())
}

/// A fresh, empty database on the stack's Postgres, dropped by nobody (names are unique; the
/// stack's data folder is throwaway).
#[derive(Debug, Clone)]
pub struct TestDatabase {
    pub url: String,
    pub name: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDatabase {
    pub async fn create() -> Self {
        let admin = admin_url();
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "cannot reach the test Postgres at {admin}: {error}\n\
                 Start the stack first: scripts/stack up --infra (scripts/test does it for you)"
                )
            });
        let name = format!(
            "t_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let base = admin
            .rsplit_once('/')
            .map(|(base, _)| base.to_owned())
            .unwrap();
        Self {
            url: format!("{base}/{name}"),
            name,
        }
    }
}

/// Settings for a test registry on port 0.
pub fn registry_settings(database_url: &str) -> Settings {
    Settings {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        metrics_addr: "127.0.0.1:0".parse().unwrap(),
        grpc_threads: 0,
        http_threads: 0,
        database_url: Some(DatabaseUrl(database_url.to_owned())),
        database_url_file: None,
        database_password_file: None,
        db_max_connections: 8,
        db_acquire_timeout_ms: 2000,
        max_schema_bytes: 64 * 1024,
        limits: Default::default(),
        max_connections: 4096,
        max_concurrent_streams: 256,
        idle_timeout_ms: 300_000,
        header_read_timeout_ms: 10_000,
        http2_keepalive_interval_ms: 60_000,
        http2_keepalive_timeout_ms: 20_000,
        request_timeout_ms: 60_000,
        shutdown_timeout_ms: 2000,
        log_format: LogFormat::Text,
        security: security::server_args(),
    }
}

/// A registry running inside the test process.
#[derive(Debug)]
pub struct TestRegistry {
    pub addr: SocketAddr,
    /// Where its Confluent-compatible HTTP API listens.
    pub http_addr: SocketAddr,
    /// Where its Prometheus `/metrics` endpoint listens.
    pub metrics_addr: SocketAddr,
    pub database: TestDatabase,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestRegistry {
    /// A registry on a fresh database.
    pub async fn start() -> Self {
        Self::start_on(TestDatabase::create().await).await
    }

    /// A registry on an existing database (e.g. a second replica).
    pub async fn start_on(database: TestDatabase) -> Self {
        Self::start_with(database, |_| {}).await
    }

    pub async fn start_with(database: TestDatabase, adjust: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = registry_settings(&database.url);
        adjust(&mut settings);
        let application = Application::build(&settings)
            .await
            .expect("registry builds");
        let addr = application.local_addr();
        let http_addr = application.http_addr();
        let metrics_addr = application.metrics_addr();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task =
            tokio::spawn(application.run_until_stopped(async move { stopped.cancelled().await }));
        wait_for_port(addr).await;
        wait_for_serving(addr).await;
        Self {
            addr,
            http_addr,
            metrics_addr,
            database,
            stop,
            task,
        }
    }

    /// A client calling as `admin` over TLS.
    pub async fn client(&self) -> RegistryServiceClient<AuthChannel> {
        connect(self.addr).await
    }

    /// Its gRPC URL, `https://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The base URL of its HTTP API, e.g. `https://127.0.0.1:40123`.
    pub fn http_url(&self) -> String {
        format!("https://{}", self.http_addr)
    }

    /// Stops it as SIGTERM would and waits for the drain.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.task.await?
    }
}

/// A registry client calling as `admin` over TLS.
pub async fn connect(addr: SocketAddr) -> RegistryServiceClient<AuthChannel> {
    RegistryServiceClient::new(security::admin_channel(addr).await)
}

pub async fn wait_for_port(addr: SocketAddr) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("nothing listens on {addr} after 5 s");
}

/// Waits until the registry reports SERVING (Postgres reachable, change listener connected).
pub async fn wait_for_serving(addr: SocketAddr) {
    use tonic_health::pb::health_check_response::ServingStatus;
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(security::admin_channel(addr).await);
    for _ in 0..500 {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await;
        if status.is_ok_and(|s| s.into_inner().status == ServingStatus::Serving as i32) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("registry at {addr} is not SERVING after 5 s");
}

/// The `registry` binary built by `cargo test --workspace --all-targets` (or
/// `$TRIBUTARY_REGISTRY_BIN`).
pub fn registry_binary() -> PathBuf {
    if let Ok(path) = std::env::var("TRIBUTARY_REGISTRY_BIN") {
        return PathBuf::from(path);
    }
    // target/<profile>/deps/<test-exe> -> target/<profile>/registry
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile_dir.join("registry");
    assert!(
        binary.exists(),
        "registry binary not found at {}; build it first (cargo build -p tributary-registry), or run scripts/test",
        binary.display()
    );
    binary
}

/// A registry running as its own OS process.
#[derive(Debug)]
pub struct RegistryProcess {
    pub addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    child: tokio::process::Child,
}

impl RegistryProcess {
    pub async fn spawn(database_url: &str) -> Self {
        Self::spawn_with(database_url, &[]).await
    }

    /// Spawns it with extra environment variables (e.g. `OTEL_*`).
    pub async fn spawn_with(database_url: &str, env: &[(&str, &str)]) -> Self {
        Self::spawn_logging_to(database_url, env, None).await
    }

    /// Spawns it with extra environment variables, its log (standard output and error) going
    /// to `log` when given (else its standard error is the test's, its output discarded).
    pub async fn spawn_logging_to(
        database_url: &str,
        env: &[(&str, &str)],
        log: Option<std::fs::File>,
    ) -> Self {
        Self::spawn_limited(database_url, env, log, None).await
    }

    /// Spawns it with extra environment variables, its log going to `log` when given, and its
    /// open-file limit set to `open_file_limit` when given.
    pub async fn spawn_limited(
        database_url: &str,
        env: &[(&str, &str)],
        log: Option<std::fs::File>,
        open_file_limit: Option<u32>,
    ) -> Self {
        let (child, [addr, http_addr, metrics_addr]) =
            start_listening("the registry", |[addr, http_addr, metrics_addr]| {
                let (stdout, stderr) = log_to(
                    log.as_ref()
                        .map(|file| file.try_clone().expect("the log file")),
                );
                command_with_open_file_limit(registry_binary(), open_file_limit)
                    .env_clear()
                    .envs(inherited_env())
                    .envs(security::server_env())
                    .env("DATABASE_URL", database_url)
                    .env("REGISTRY_GRPC_ADDR", addr.to_string())
                    .env("REGISTRY_HTTP_ADDR", http_addr.to_string())
                    .env("REGISTRY_METRICS_ADDR", metrics_addr.to_string())
                    .env("REGISTRY_DB_MAX_CONNECTIONS", "10")
                    .env("RUST_LOG", "warn")
                    .envs(env.iter().copied())
                    .stdout(stdout)
                    .stderr(stderr)
                    .kill_on_drop(true)
                    .spawn()
                    .expect("registry process starts")
            })
            .await;
        wait_for_serving(addr).await;
        Self {
            addr,
            http_addr,
            metrics_addr,
            child,
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("exits within 15 s")
            .unwrap()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }
}

/// Starts a service with `start(addresses)` on ports picked now and waits until it listens on
/// the first. [`free_port`] only says that a port was free a moment ago: a test running beside
/// can take it before the service binds it (its connections' ephemeral ports come from the same
/// range), and the service then exits ("Address already in use"). A service that exits before it
/// listens is started again on fresh ports, three times at most.
async fn start_listening<const N: usize>(
    what: &str,
    mut start: impl FnMut([SocketAddr; N]) -> tokio::process::Child,
) -> (tokio::process::Child, [SocketAddr; N]) {
    const ATTEMPTS: u32 = 3;
    for attempt in 1..=ATTEMPTS {
        let addrs: [SocketAddr; N] = std::array::from_fn(|_| {
            format!("127.0.0.1:{}", free_port())
                .parse()
                .expect("an address")
        });
        let mut child = start(addrs);
        let mut exited = None;
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(addrs[0]).await.is_ok() {
                return (child, addrs);
            }
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some(status);
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        match exited {
            Some(status) if attempt < ATTEMPTS => {
                eprintln!(
                    "{what} exited with {status} before listening on {}; starting it again on other ports",
                    addrs[0]
                );
            }
            Some(status) => panic!(
                "{what} exited with {status} before listening on {}, {ATTEMPTS} times (its log is above)",
                addrs[0]
            ),
            None => panic!("nothing listens on {} after 5 s", addrs[0]),
        }
    }
    unreachable!("the last attempt returns or panics")
}

/// A command that runs `program` with its open-file limit (soft and hard) set to
/// `open_file_limit`, when given.
fn command_with_open_file_limit(
    program: PathBuf,
    open_file_limit: Option<u32>,
) -> tokio::process::Command {
    match open_file_limit {
        None => tokio::process::Command::new(program),
        Some(limit) => {
            let mut command = tokio::process::Command::new("sh");
            command
                .arg("-c")
                .arg(format!("ulimit -n {limit} && exec \"$0\""))
                .arg(program);
            command
        }
    }
}

/// What a process holds: its threads and open file descriptors (from /proc).
pub fn threads_and_descriptors(pid: u32) -> (usize, usize) {
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(Iterator::count)
        .unwrap_or(0);
    let descriptors = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(Iterator::count)
        .unwrap_or(0);
    (threads, descriptors)
}

/// The part of the test process's environment a service process gets: nothing of what
/// `scripts/stack env` exports for the stack's own services (credentials, URLs) leaks into the
/// services a test starts with its own settings.
fn inherited_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars()
        .filter(|(name, _)| matches!(name.as_str(), "PATH" | "HOME" | "TMPDIR" | "LANG"))
}

/// Where a service process's output goes: both streams into `log`, or the test's standard
/// error (the log lines go to standard output, which is discarded then).
fn log_to(log: Option<std::fs::File>) -> (Stdio, Stdio) {
    match log {
        Some(file) => (Stdio::from(file.try_clone().unwrap()), Stdio::from(file)),
        None => (Stdio::null(), Stdio::inherit()),
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The Confluent error code a registry status carries in its ErrorInfo detail.
pub fn error_code(status: &tonic::Status) -> Option<u32> {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()?
        .metadata
        .get("error_code")?
        .parse()
        .ok()
}

/// A TCP proxy to Postgres that a test can cut and restore, to make the database unreachable
/// for one registry without touching the shared server.
#[derive(Debug)]
pub struct CuttableProxy {
    pub addr: SocketAddr,
    cut: tokio::sync::watch::Sender<bool>,
}

impl CuttableProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, cut_state) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let mut cut_state = cut_state.clone();
                if *cut_state.borrow() {
                    drop(inbound);
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_state.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Self { addr, cut }
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

// ---------------------------------------------------------------------------------------------
// Messaging

use tributary_proto::messaging::v1 as messaging_pb;
use tributary_proto::messaging::v1::messaging_service_client::MessagingServiceClient;

/// The stack's Kafka (`scripts/stack env` exports `KAFKA_BOOTSTRAP_SERVERS`).
pub fn kafka_bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:59092".to_owned())
}

/// A name no other test (or earlier run) uses, e.g. for topics and consumer groups.
pub fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000_000
    )
}

/// Settings for a test messaging service on port 0, calling the registry at `registry_url` over
/// TLS as user `messaging`.
pub fn messaging_settings(registry_url: &str) -> tributary_messaging::Settings {
    let pki = security::pki();
    tributary_messaging::Settings {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        metrics_addr: "127.0.0.1:0".parse().unwrap(),
        rest_addr: "127.0.0.1:0".parse().unwrap(),
        rest_advertised_url: None,
        consumer_instance_timeout_ms: 300_000,
        replica_id: Some("test".to_owned()),
        kafka_bootstrap_servers: kafka_bootstrap(),
        kafka_property_flags: Vec::new(),
        kafka_properties_list: None,
        kafka_properties_file: None,
        kafka_sasl_password_file: None,
        kafka_allow_weaker_durability: false,
        registry_url: registry_url.to_owned(),
        registry_client: tributary_messaging::config::RegistryClientArgs {
            registry_ca_file: Some(pki.ca.clone()),
            registry_username: Some("messaging".to_owned()),
            registry_password_file: Some(pki.messaging_password_file.clone()),
            ..Default::default()
        },
        latest_schema_ttl_ms: 5000,
        latest_schema_max_stale_ms: 3_600_000,
        delivery_timeout_ms: 30_000,
        kafka_timeout_ms: 10_000,
        produce_max_in_flight: 100,
        limits: Default::default(),
        max_consume_streams: 512,
        max_connections: 4096,
        max_concurrent_streams: 1024,
        idle_timeout_ms: 300_000,
        header_read_timeout_ms: 10_000,
        http2_keepalive_interval_ms: 60_000,
        http2_keepalive_timeout_ms: 20_000,
        request_timeout_ms: 330_000,
        shutdown_timeout_ms: 5000,
        log_format: tributary_messaging::config::LogFormat::Text,
        security: security::server_args(),
    }
}

/// A messaging service running inside the test process, with its own registry (on a fresh
/// database), against the stack's Kafka.
#[derive(Debug)]
pub struct TestMessaging {
    pub addr: SocketAddr,
    /// Where its REST Proxy compatible HTTP API listens.
    pub rest_addr: SocketAddr,
    /// Where its Prometheus `/metrics` endpoint listens.
    pub metrics_addr: SocketAddr,
    pub registry: TestRegistry,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestMessaging {
    /// A messaging service with a registry of its own, once it is SERVING.
    pub async fn start() -> Self {
        Self::start_with(|_| {}, true).await
    }

    /// A messaging service with adjusted settings; waits for SERVING only when asked (a test of
    /// NOT_SERVING points it at something unreachable).
    pub async fn start_with(
        adjust: impl FnOnce(&mut tributary_messaging::Settings),
        wait_until_serving: bool,
    ) -> Self {
        let bootstrap = kafka_bootstrap();
        let first = bootstrap.split(',').next().unwrap_or_default().to_owned();
        if tokio::net::TcpStream::connect(&first).await.is_err() {
            panic!(
                "cannot reach the test Kafka at {bootstrap}\n\
                 Start the stack first: scripts/stack up --infra (scripts/test does it for you)"
            );
        }
        let registry = TestRegistry::start().await;
        let mut settings = messaging_settings(&registry.endpoint());
        adjust(&mut settings);
        let application = tributary_messaging::Application::build(&settings)
            .await
            .expect("messaging builds");
        let addr = application.local_addr();
        let rest_addr = application.rest_addr();
        let metrics_addr = application.metrics_addr();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task =
            tokio::spawn(application.run_until_stopped(async move { stopped.cancelled().await }));
        wait_for_port(addr).await;
        if wait_until_serving {
            wait_for_messaging_serving(addr).await;
        }
        Self {
            addr,
            rest_addr,
            metrics_addr,
            registry,
            stop,
            task,
        }
    }

    /// A client calling as `admin` over TLS.
    pub async fn client(&self) -> MessagingServiceClient<AuthChannel> {
        MessagingServiceClient::new(security::admin_channel(self.addr).await)
            .max_decoding_message_size(64 * 1024 * 1024)
    }

    /// Creates a topic with `partitions` partitions and replication factor 1.
    pub async fn create_topic(&self, name: &str, partitions: i32) {
        create_topic(self.client().await, name, partitions).await;
    }

    /// Opens a Consume stream with `subscription`.
    pub async fn consume(&self, subscription: messaging_pb::Subscription) -> TestConsumer {
        TestConsumer::open(self.client().await, subscription).await
    }

    /// Stops it as SIGTERM would and waits for the drain.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.task.await?
    }
}

/// Waits until a messaging service reports SERVING (Kafka and its registry reachable).
pub async fn wait_for_messaging_serving(addr: SocketAddr) {
    use tonic_health::pb::health_check_response::ServingStatus;
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(security::admin_channel(addr).await);
    for _ in 0..300 {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await;
        if status.is_ok_and(|s| s.into_inner().status == ServingStatus::Serving as i32) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "messaging at {addr} is not SERVING after 15 s: is Kafka ({}) up?",
        kafka_bootstrap()
    );
}

/// The client side of a Consume stream.
#[derive(Debug)]
pub struct TestConsumer {
    pub requests: tokio::sync::mpsc::Sender<messaging_pb::ConsumeRequest>,
    pub responses: tonic::Streaming<messaging_pb::ConsumeResponse>,
}

impl TestConsumer {
    /// Opens a Consume stream with `subscription` on `client`.
    pub async fn open(
        mut client: MessagingServiceClient<AuthChannel>,
        subscription: messaging_pb::Subscription,
    ) -> Self {
        let (requests, rx) = tokio::sync::mpsc::channel(1024);
        requests
            .send(messaging_pb::ConsumeRequest {
                kind: Some(messaging_pb::consume_request::Kind::Subscription(
                    subscription,
                )),
            })
            .await
            .unwrap();
        let responses = client
            .consume(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .expect("Consume opens")
            .into_inner();
        TestConsumer {
            requests,
            responses,
        }
    }

    /// The next message of the stream (record or rebalance), failing after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> messaging_pb::consume_response::Kind {
        let next = tokio::time::timeout(timeout, self.responses.message())
            .await
            .unwrap_or_else(|_| panic!("nothing consumed within {timeout:?}"))
            .unwrap_or_else(|status| panic!("the Consume stream failed: {status:?}"))
            .expect("the Consume stream ended");
        next.kind.expect("a response with a kind")
    }

    /// The next record, skipping rebalance notifications.
    pub async fn next_record(&mut self, timeout: Duration) -> messaging_pb::ConsumedRecord {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if let messaging_pb::consume_response::Kind::Record(record) = self.next(left).await {
                return record;
            }
        }
    }

    /// `count` records, skipping rebalance notifications.
    pub async fn records(
        &mut self,
        count: usize,
        timeout: Duration,
    ) -> Vec<messaging_pb::ConsumedRecord> {
        let mut records = Vec::new();
        while records.len() < count {
            records.push(self.next_record(timeout).await);
        }
        records
    }

    /// The records of the next batch (a subscription with `max_batch_records`), skipping
    /// rebalance notifications; fails on a single-record response.
    pub async fn next_batch(&mut self, timeout: Duration) -> Vec<messaging_pb::ConsumedRecord> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                messaging_pb::consume_response::Kind::Batch(batch) => return batch.records,
                messaging_pb::consume_response::Kind::Record(record) => {
                    panic!("a single record where a batch was expected: {record:?}")
                }
                messaging_pb::consume_response::Kind::Rebalance(_) => {}
            }
        }
    }

    /// Batches until they hold `count` records in all.
    pub async fn batches(
        &mut self,
        count: usize,
        timeout: Duration,
    ) -> Vec<Vec<messaging_pb::ConsumedRecord>> {
        let mut batches = Vec::new();
        let mut received = 0;
        while received < count {
            let batch = self.next_batch(timeout).await;
            received += batch.len();
            batches.push(batch);
        }
        batches
    }

    /// Sends several acknowledgements in one request.
    pub async fn acks(&self, acks: messaging_pb::Acks) {
        self.requests
            .send(messaging_pb::ConsumeRequest {
                kind: Some(messaging_pb::consume_request::Kind::Acks(acks)),
            })
            .await
            .unwrap();
    }

    /// Acknowledges every record of a partition delivered up to `offset`.
    pub async fn ack_up_to(&self, topic: &str, partition: i32, offset: i64) {
        self.acks(messaging_pb::Acks {
            records: Vec::new(),
            up_to: vec![messaging_pb::AckUpTo {
                topic: topic.to_owned(),
                partition,
                offset,
            }],
        })
        .await;
    }

    pub async fn ack(&self, record: &messaging_pb::ConsumedRecord) {
        self.requests
            .send(messaging_pb::ConsumeRequest {
                kind: Some(messaging_pb::consume_request::Kind::Ack(
                    messaging_pb::Ack {
                        topic: record.topic.clone(),
                        partition: record.partition,
                        offset: record.offset,
                    },
                )),
            })
            .await
            .unwrap();
    }
}

/// The `messaging` binary built by `cargo test --workspace --all-targets` (or
/// `$TRIBUTARY_MESSAGING_BIN`).
pub fn messaging_binary() -> PathBuf {
    if let Ok(path) = std::env::var("TRIBUTARY_MESSAGING_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile_dir.join("messaging");
    assert!(
        binary.exists(),
        "messaging binary not found at {}; build it first (cargo build -p tributary-messaging), or run scripts/test",
        binary.display()
    );
    binary
}

/// A messaging service running as its own OS process.
#[derive(Debug)]
pub struct MessagingProcess {
    pub addr: SocketAddr,
    /// The REST Proxy compatible HTTP API.
    pub rest_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    child: tokio::process::Child,
}

impl MessagingProcess {
    /// Spawns it against the stack's Kafka and the registry at `registry_url`, and waits for
    /// SERVING.
    pub async fn spawn(registry_url: &str) -> Self {
        Self::spawn_with(registry_url, &[]).await
    }

    /// Spawns it with extra environment variables (e.g. `OTEL_*`).
    pub async fn spawn_with(registry_url: &str, env: &[(&str, &str)]) -> Self {
        Self::spawn_logging_to(registry_url, env, None).await
    }

    /// Spawns it with extra environment variables, its log (standard output and error) going
    /// to `log` when given (else its standard error is the test's, its output discarded).
    pub async fn spawn_logging_to(
        registry_url: &str,
        env: &[(&str, &str)],
        log: Option<std::fs::File>,
    ) -> Self {
        Self::spawn_limited(registry_url, env, log, None).await
    }

    /// Spawns it with extra environment variables, its log going to `log` when given, and its
    /// open-file limit set to `open_file_limit` when given.
    pub async fn spawn_limited(
        registry_url: &str,
        env: &[(&str, &str)],
        log: Option<std::fs::File>,
        open_file_limit: Option<u32>,
    ) -> Self {
        let (child, [addr, rest_addr, metrics_addr]) = start_listening(
            "the messaging service",
            |[addr, rest_addr, metrics_addr]| {
                let (stdout, stderr) = log_to(
                    log.as_ref()
                        .map(|file| file.try_clone().expect("the log file")),
                );
                command_with_open_file_limit(messaging_binary(), open_file_limit)
                    .env_clear()
                    .envs(inherited_env())
                    .envs(security::server_env())
                    .envs(security::messaging_registry_env())
                    .env("MESSAGING_GRPC_ADDR", addr.to_string())
                    .env("MESSAGING_REST_ADDR", rest_addr.to_string())
                    .env("MESSAGING_METRICS_ADDR", metrics_addr.to_string())
                    .env("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap())
                    .env("KAFKA_PROPERTIES", "linger.ms=1,client.id=tributary-test")
                    .env("REGISTRY_URL", registry_url)
                    .env("RUST_LOG", "warn")
                    .envs(env.iter().copied())
                    .stdout(stdout)
                    .stderr(stderr)
                    .kill_on_drop(true)
                    .spawn()
                    .expect("messaging process starts")
            },
        )
        .await;
        wait_for_messaging_serving(addr).await;
        Self {
            addr,
            rest_addr,
            metrics_addr,
            child,
        }
    }

    /// A client calling as `admin` over TLS.
    pub async fn client(&self) -> MessagingServiceClient<AuthChannel> {
        MessagingServiceClient::new(security::admin_channel(self.addr).await)
    }

    /// Creates a topic with `partitions` partitions and replication factor 1.
    pub async fn create_topic(&self, name: &str, partitions: i32) {
        create_topic(self.client().await, name, partitions).await;
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("exits within 15 s")
            .unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics

/// The Prometheus exposition served at `http://{addr}/metrics`.
pub async fn scrape(addr: SocketAddr) -> String {
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap_or_else(|error| panic!("cannot scrape {addr}/metrics: {error}"));
    assert!(
        response.status().is_success(),
        "{addr}/metrics: {}",
        response.status()
    );
    response.text().await.unwrap()
}

/// The value of the sample `name{labels...}` (labels given are a subset of the sample's).
pub fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let rest = series.strip_prefix(name)?;
        if !(rest.is_empty() || rest.starts_with('{')) {
            return None;
        }
        labels
            .iter()
            .all(|(key, value)| rest.contains(&format!("{key}=\"{value}\"")))
            .then(|| value.parse().ok())?
    })
}

/// Runs `promtool check metrics` on an exposition; panics when promtool is missing (install
/// Debian's `prometheus` package; scripts/test does) or finds a problem.
pub fn promtool_check(exposition: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run promtool ({error}); install it: apt-get install prometheus \
                 (scripts/test installs it)"
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}\n--- exposition ---\n{exposition}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Creates a topic with `partitions` partitions and replication factor 1 through `client`.
async fn create_topic(
    mut client: MessagingServiceClient<AuthChannel>,
    name: &str,
    partitions: i32,
) {
    client
        .create_topic(messaging_pb::CreateTopicRequest {
            topic: name.to_owned(),
            partitions,
            replication_factor: 1,
            configs: Default::default(),
        })
        .await
        .unwrap_or_else(|status| panic!("cannot create topic {name}: {status:?}"));
}
