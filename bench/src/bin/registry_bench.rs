//! `registry-bench`: starts a registry (release build) on a fresh Postgres database, loads
//! 10,000 schemas into 1,000 subjects, then drives it with concurrent gRPC clients and prints a
//! table of throughput and latency per operation, RSS, start-to-SERVING time, and the cost of
//! registering into a 1,000-version subject under FULL_TRANSITIVE.
//!
//! The reads and re-registrations are then driven by C load generators, and one table sets the
//! two APIs side by side: gRPC with h2load (`--wrk-connections` connections, `--h2load-streams`
//! concurrent streams on each, as gRPC clients multiplex calls, and again with one stream per
//! connection) and the Confluent-compatible HTTP API with wrk (HTTP/1.1 keep-alive, the same
//! connections; Lua scripts for the request mix and POST bodies). p50/p99 come from wrk's
//! `--latency` and from h2load's per-request log.
//!
//! Those tables run the registry in one security mode (`--mode`: plaintext by default, as every
//! earlier result in docs/benchmarks/registry.md was measured; `basic` or `jwt` for TLS with
//! authentication), printed in the header. Then the security table: the registry started once
//! per mode of `--security-modes` (plaintext, TLS + basic, TLS + JWT) on the same database,
//! get-by-id and register-existing measured against each with the same clients (keep-alive
//! connections), the modes alternating scenario by scenario, each row with its ratio to
//! plaintext; and the rate of new connections (connect, one GetSchema, close), with full TLS
//! handshakes and with resumed sessions.
//!
//! Protobuf beside Avro: after the Avro rows of the first table, as many Protobuf schemas (an
//! order message with a nested message, an enum, a map, a oneof and a WKT import; each version
//! adds a field) are registered into as many subjects, then read by id and re-registered; a
//! small table sets those three rows beside their Avro counterparts with the registry's CPU time
//! per request, and the side-by-side table repeats get-by-id and register-existing of Protobuf
//! schemas over h2load and wrk. `--skip-protobuf` leaves all of it out.
//!
//! Run it through `scripts/bench registry` (which starts the stack and builds in release mode).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use sqlx::Connection;
use tonic::service::interceptor::InterceptedService;
use tributary_bench::hot_subject::HotSubject;
use tributary_bench::security::{AuthChannel, Mode, Pki, SECURITY_ENV};
use tributary_bench::{cpu_seconds, rss_mib};
use tributary_proto::registry::v1 as pb;
use tributary_proto::registry::v1::registry_service_client::RegistryServiceClient;

/// The bench's gRPC client: the security crate's channel (TLS or not) with call credentials
/// (none in plaintext mode), the same client code in every mode.
type Client = RegistryServiceClient<AuthChannel>;

#[derive(Debug, Parser)]
struct Args {
    /// The registry binary to start.
    #[arg(long, default_value = "target/release/registry")]
    registry_bin: PathBuf,
    /// Another registry binary, for the `before` mode (TLS + basic, as `basic`): typically a
    /// release build of an earlier commit, so that `--security-modes before,basic` measures what
    /// a change costs in one run, the two alternating scenario by scenario.
    #[arg(long)]
    before_bin: Option<PathBuf>,
    /// Admin URL of the stack's Postgres; a fresh database is created on it.
    #[arg(
        long,
        env = "TRIBUTARY_PG_ADMIN_URL",
        default_value = "postgres://postgres@127.0.0.1:55432/postgres"
    )]
    admin_url: String,
    /// Concurrent requests in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// HTTP/2 connections the requests are spread over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Seconds each read scenario runs.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Subjects to load.
    #[arg(long, default_value_t = 1000)]
    subjects: usize,
    /// Versions per subject.
    #[arg(long, default_value_t = 10)]
    versions: usize,
    /// Versions in the big FULL_TRANSITIVE subject.
    #[arg(long, default_value_t = 1000)]
    big_versions: usize,
    /// The wrk binary driving the HTTP API (Debian package `wrk`); the HTTP scenarios are skipped,
    /// saying so, when it is missing.
    #[arg(long, default_value = "wrk")]
    wrk: PathBuf,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    wrk_threads: usize,
    /// wrk connections (HTTP/1.1 keep-alive); h2load uses as many for gRPC.
    #[arg(long, default_value_t = 64)]
    wrk_connections: usize,
    /// The h2load binary (Debian package `nghttp2-client`) driving gRPC with the same kind of C
    /// load generator as wrk drives HTTP; skipped, saying so, when it is missing.
    #[arg(long, default_value = "h2load")]
    h2load: PathBuf,
    /// Concurrent streams on each h2load connection for the headline gRPC figures (a run with 1
    /// stream per connection, as many requests in flight as wrk, is printed next to them).
    #[arg(long, default_value_t = 10)]
    h2load_streams: usize,
    /// How the registry of the first tables (operations, gRPC next to HTTP, RSS and start-up)
    /// is secured: `plaintext` (`--tls off --auth none`, as every earlier result was measured),
    /// `basic` (TLS + basic authentication, the services' default shape) or `jwt` (TLS + bearer
    /// JWTs).
    #[arg(long, value_enum, default_value_t = Mode::Plaintext)]
    mode: Mode,
    /// The modes of the security table, comma separated (the first is the baseline of the
    /// ratios; plaintext belongs there).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "plaintext,basic,jwt,policy"
    )]
    security_modes: Vec<Mode>,
    /// Rounds of the security table; each row is the median round (by req/s). The modes
    /// alternate within a round, and the order rotates from round to round.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    security_rounds: u32,
    /// Concurrent clients of the new-connection rows (each: connect, one GetSchema, close).
    #[arg(long, default_value_t = 16)]
    handshake_concurrency: usize,
    /// AUTH_CACHE_TTL_MS of the authenticating registries of the security table (default: the
    /// service's own, 60 s). 0 shows what requests cost when every one is verified again (an
    /// argon2id hash per basic-auth request, a signature check per JWT).
    #[arg(long)]
    auth_cache_ttl_ms: Option<u64>,
    /// What to run: `all`, `tables` (the first tables only, as before the security table),
    /// `security` (load the data, then the security table only) or `hot-subject` (only the
    /// hot-subject table: `--hot-clients` HTTP clients registering new schemas into one subject
    /// for `--seconds`, then every acknowledged registration checked in Postgres).
    #[arg(long, value_enum, default_value_t = Only::All)]
    only: Only,
    /// Concurrent HTTP/1.1 keep-alive clients (one connection each) of the hot-subject table.
    #[arg(long, default_value_t = 64)]
    hot_clients: usize,
    /// The compatibility level of the hot subject.
    #[arg(long, default_value = "NONE")]
    hot_compatibility: String,
    /// Leave out the Protobuf rows (register-new, get-by-id and register-existing of Protobuf
    /// schemas, measured after the Avro rows of the first two tables, and the Protobuf/Avro
    /// table), as the bench ran before they came.
    #[arg(long)]
    skip_protobuf: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Only {
    All,
    Tables,
    Security,
    HotSubject,
}

/// Version `v` of subject `s`: each version adds an optional field, so BACKWARD holds.
fn schema_for(subject: usize, version: usize) -> String {
    let fields: Vec<String> = (0..=version)
        .map(|f| format!(r#"{{"name":"f{f}","type":["null","string"],"default":null}}"#))
        .collect();
    format!(
        r#"{{"type":"record","name":"Rec{subject}","namespace":"bench","fields":[{{"name":"id","type":"long"}},{}]}}"#,
        fields.join(",")
    )
}

fn big_schema(version: usize) -> String {
    format!(
        r#"{{"type":"record","name":"Big","namespace":"bench","doc":"revision {version}","fields":[{{"name":"id","type":"long"}},{{"name":"note","type":["null","string"],"default":null}}]}}"#
    )
}

/// Version `version` of Protobuf subject `subject`: an order as a shop would send it (15 fields:
/// scalars, a nested message, an enum, a map, a oneof, a `google.protobuf.Timestamp`), to
/// which each version adds an optional field, so BACKWARD holds, as the Avro versions do. The
/// package names the subject, so that every subject's schemas are distinct texts (as `Rec{s}`
/// The registration of version `version` of Protobuf subject `subject`.
fn proto_registration(subject: usize, version: usize) -> pb::RegisterSchemaRequest {
    pb::RegisterSchemaRequest {
        subject: format!("proto-subject-{subject}"),
        schema: proto_schema_for(subject, version),
        schema_type: "PROTOBUF".to_owned(),
        ..Default::default()
    }
}

/// makes the Avro ones).
fn proto_schema_for(subject: usize, version: usize) -> String {
    let mut text = format!(
        r#"syntax = "proto3";

package bench.s{subject}.v1;

import "google/protobuf/timestamp.proto";

// An order placed in the shop.
message Order {{
  enum Status {{
    STATUS_UNSPECIFIED = 0;
    STATUS_PLACED = 1;
    STATUS_PAID = 2;
    STATUS_SHIPPED = 3;
    STATUS_CANCELLED = 4;
  }}
  // One line of the order.
  message Line {{
    string sku = 1;
    int32 quantity = 2;
    int64 unit_price_micros = 3;
    repeated string options = 4;
  }}
  string order_id = 1;
  int64 customer_id = 2;
  google.protobuf.Timestamp placed_at = 3;
  Status status = 4;
  repeated Line lines = 5;
  string currency = 6;
  int64 total_micros = 7;
  string country = 8;
  bool gift = 9;
  double discount = 10;
  map<string, string> labels = 11;
  optional string coupon = 12;
  oneof payment {{
    string card_token = 13;
    string iban = 14;
  }}
  string note = 15;
"#
    );
    for field in 0..=version {
        text.push_str(&format!(
            "  optional string extra_{field} = {};\n",
            100 + field
        ));
    }
    text.push_str("}\n");
    text
}

/// The schema ids the reads pick from: the Avro schemas, loaded first, are ids `1..=avro_max`;
/// the Protobuf ones, loaded after the Avro rows, `first..=last` (when they were loaded).
#[derive(Debug, Clone, Copy)]
struct Ids {
    avro_max: i32,
    protobuf: Option<(i32, i32)>,
}

impl Ids {
    fn avro(avro_max: i32) -> Self {
        Self {
            avro_max,
            protobuf: None,
        }
    }

    /// The `n`th pick of a get-by-id scenario (Avro or Protobuf ids).
    fn pick(&self, n: usize, protobuf: bool) -> i32 {
        let (first, last) = match self.protobuf {
            Some(range) if protobuf => range,
            _ => (1, self.avro_max),
        };
        let span = usize::try_from(last - first + 1).unwrap_or(1).max(1);
        first + (n.wrapping_mul(7919) % span) as i32
    }

    /// The id h2load repeats in a get-by-id scenario.
    fn middle(&self, protobuf: bool) -> i32 {
        match self.protobuf {
            Some((first, last)) if protobuf => first + (last - first) / 2,
            _ => self.avro_max / 2 + 1,
        }
    }
}

struct Registry {
    child: tokio::process::Child,
    addr: String,
    http_addr: String,
    mode: Mode,
}

impl Registry {
    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// SIGTERM, then waits for the process to end.
    async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let _ = self.child.wait().await;
    }
}

/// Starts the registry in `mode` and waits until it is SERVING (health is answered without
/// credentials, over TLS in the TLS modes).
async fn start_registry(
    args: &Args,
    database_url: &str,
    mode: Mode,
    pki: &Pki,
    port: u16,
    http_port: u16,
    auth_cache_ttl_ms: Option<u64>,
) -> anyhow::Result<(Registry, Duration)> {
    let addr = format!("127.0.0.1:{port}");
    let http_addr = format!("127.0.0.1:{http_port}");
    let started = Instant::now();
    let binary = match mode {
        Mode::Before => args.before_bin.as_ref().context(
            "the `before` mode needs --before-bin (the registry binary to compare with)",
        )?,
        _ => &args.registry_bin,
    };
    let mut command = tokio::process::Command::new(binary);
    for name in SECURITY_ENV {
        command.env_remove(name);
    }
    if let Some(ttl) = auth_cache_ttl_ms.filter(|_| mode != Mode::Plaintext) {
        command.env("AUTH_CACHE_TTL_MS", ttl.to_string());
    }
    let child = command
        .envs(mode.server_env(pki))
        .env("DATABASE_URL", database_url)
        .env("REGISTRY_GRPC_ADDR", &addr)
        .env("REGISTRY_HTTP_ADDR", &http_addr)
        .env("REGISTRY_METRICS_ADDR", "127.0.0.1:0")
        // rustls warns about every handshake whose SNI is an IP address, which wrk and h2load
        // (OpenSSL) send for https://127.0.0.1: a line per connection, not the bench's output.
        .env("RUST_LOG", "warn,rustls=error")
        // Builds from before registering an existing schema stopped being audited write an
        // audit line per register-existing request (gigabytes in a run): to /dev/null, where
        // writing them costs what a log shipper's pipe would.
        .stdout(if mode == Mode::Before {
            std::process::Stdio::null()
        } else {
            std::process::Stdio::inherit()
        })
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let mut registry = Registry {
        child,
        addr,
        http_addr,
        mode,
    };
    loop {
        let channel = mode.channel(pki, &registry.addr, |endpoint| endpoint)?;
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        if let Ok(response) = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            && response.into_inner().status == 1
        {
            break;
        }
        if let Ok(Some(status)) = registry.child.try_wait() {
            bail!(
                "the registry ({}) exited with {status} before SERVING (its log is above)",
                mode.label()
            );
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("registry ({}) not SERVING after 30 s", mode.label());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok((registry, started.elapsed()))
}

/// Runs a load and records how much of the registry's CPU time each request cost: unlike
/// req/s, this hardly depends on what else runs on the machine.
fn measuring_server_cpu(
    server_pid: u32,
    load: impl FnOnce() -> anyhow::Result<LoadOutcome>,
) -> anyhow::Result<LoadOutcome> {
    let before = cpu_seconds(server_pid);
    let mut outcome = load()?;
    outcome.server_cpu_us = match (before, cpu_seconds(server_pid)) {
        (Some(before), Some(after)) if outcome.requests > 0 => {
            (after - before) / outcome.requests as f64 * 1e6
        }
        _ => f64::NAN,
    };
    Ok(outcome)
}

/// `connections` clients of the registry, each on its own connection (made now: TCP with
/// `TCP_NODELAY`, TLS in the TLS modes), calling with the mode's credentials.
async fn clients(
    registry: &Registry,
    pki: &Pki,
    connections: usize,
) -> anyhow::Result<Vec<Client>> {
    let mut clients = Vec::new();
    for _ in 0..connections {
        let channel = registry
            .mode
            .channel(pki, &registry.addr, |endpoint| endpoint)?;
        // Connect now (health is open), so that the measurements start on open connections.
        tonic_health::pb::health_client::HealthClient::new(channel.clone())
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .with_context(|| {
                format!("cannot connect to the registry ({})", registry.mode.label())
            })?;
        clients.push(RegistryServiceClient::new(channel));
    }
    Ok(clients)
}

struct Outcome {
    name: &'static str,
    requests: u64,
    errors: u64,
    elapsed: Duration,
    histogram: Histogram<u64>,
}

impl Outcome {
    /// As a load generator's outcome (the registry's CPU time not measured).
    fn load(&self) -> LoadOutcome {
        let millis = |q: f64| self.histogram.value_at_quantile(q) as f64 / 1000.0;
        LoadOutcome {
            rate: self.requests as f64 / self.elapsed.as_secs_f64(),
            p50_ms: millis(0.50),
            p99_ms: millis(0.99),
            requests: self.requests,
            errors: self.errors,
            server_cpu_us: f64::NAN,
        }
    }
}

/// Where a load generator sends its requests: the listener's base URL (`http://` or
/// `https://`) and the `Authorization` value of the registry's mode.
#[derive(Debug, Clone)]
struct Target {
    base_url: String,
    authorization: Option<String>,
}

impl Target {
    fn new(mode: Mode, pki: &Pki, addr: &str) -> Self {
        Self {
            base_url: mode.url(addr),
            authorization: mode.authorization(pki),
        }
    }
}

/// Runs `op` from `concurrency` tasks until `deadline` or until `limit` operations were issued.
async fn drive<F, Fut>(
    name: &'static str,
    clients: &[Client],
    concurrency: usize,
    run_for: Duration,
    limit: Option<usize>,
    op: F,
) -> Outcome
where
    F: Fn(Client, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), tonic::Status>> + Send,
{
    let op = Arc::new(op);
    let counter = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + run_for;
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let client = clients[task % clients.len()].clone();
        let op = Arc::clone(&op);
        let counter = Arc::clone(&counter);
        tasks.push(tokio::spawn(async move {
            let mut histogram =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let mut errors = 0u64;
            loop {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                if limit.is_some_and(|limit| n >= limit) || Instant::now() >= deadline {
                    break;
                }
                let begun = Instant::now();
                if op(client.clone(), n).await.is_err() {
                    errors += 1;
                }
                let _ = histogram.record(begun.elapsed().as_micros().max(1) as u64);
            }
            (histogram, errors)
        }));
    }
    let mut histogram =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
    let mut errors = 0;
    for task in tasks {
        if let Ok((h, e)) = task.await {
            let _ = histogram.add(h);
            errors += e;
        }
    }
    Outcome {
        name,
        requests: histogram.len(),
        errors,
        elapsed: started.elapsed(),
        histogram,
    }
}

/// What one wrk or h2load run measured.
#[derive(Debug, Default, Clone, Copy)]
struct LoadOutcome {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    errors: u64,
    /// CPU time the registry process spent per request, in microseconds.
    server_cpu_us: f64,
}

/// A wrk latency like `812.00us`, `1.23ms` or `2.01s`, in milliseconds.
fn wrk_millis(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (text, 1.0)
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

/// Reads `wrk --latency` output: Requests/sec, the 50% and 99% latencies, the request count
/// and the non-2xx responses and socket errors.
fn parse_wrk(output: &str) -> LoadOutcome {
    let mut outcome = LoadOutcome::default();
    for line in output.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", value] => outcome.rate = value.parse().unwrap_or(0.0),
            ["50%", value] => outcome.p50_ms = wrk_millis(value).unwrap_or(f64::NAN),
            ["99%", value] => outcome.p99_ms = wrk_millis(value).unwrap_or(f64::NAN),
            [count, "requests", "in", ..] => outcome.requests = count.parse().unwrap_or(0),
            ["Non-2xx", "or", "3xx", "responses:", count] => {
                outcome.errors += count.parse::<u64>().unwrap_or(0)
            }
            ["Socket", "errors:", rest @ ..] => {
                outcome.errors += rest
                    .iter()
                    .filter_map(|word| word.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    outcome
}

/// Lua long-bracket text, safe for any schema JSON.
fn lua_string(text: &str) -> String {
    format!("[==[{text}]==]")
}

/// A wrk script cycling through `requests` (method, path, body) from a per-thread offset, every
/// request with `authorization` when given (wrk sends it in full on each request, as HTTP/1.1
/// clients do).
fn wrk_script(requests: &[(&str, String, Option<String>)], authorization: Option<&str>) -> String {
    let mut script = String::from("local requests = {\n");
    for (method, path, body) in requests {
        let body = body.as_deref().map_or("nil".to_owned(), lua_string);
        script.push_str(&format!(
            "  {{ {}, {}, {} }},\n",
            lua_string(method),
            lua_string(path),
            body
        ));
    }
    script.push_str("}\n");
    script.push_str(&format!(
        "local authorization = {}\n",
        authorization.map_or("nil".to_owned(), lua_string)
    ));
    script.push_str(
        r#"local function headers(body)
  local h = {}
  for name, value in pairs(wrk.headers) do h[name] = value end
  if body then h["Content-Type"] = "application/vnd.schemaregistry.v1+json" end
  if authorization then h["Authorization"] = authorization end
  return h
end
local formatted = {}
for i, r in ipairs(requests) do
  formatted[i] = wrk.format(r[1], r[2], headers(r[3]), r[3])
end
counter = 0
function setup(thread)
  thread:set("counter", math.random(#formatted))
end
function request()
  counter = counter + 1
  return formatted[(counter % #formatted) + 1]
end
"#,
    );
    script
}

/// Runs wrk against `target` (HTTPS in the TLS modes) with a script; fails when wrk fails.
fn run_wrk(args: &Args, target: &Target, name: &str, script: &str) -> anyhow::Result<LoadOutcome> {
    let path =
        std::env::temp_dir().join(format!("registry-bench-{}-{name}.lua", std::process::id()));
    std::fs::write(&path, script)?;
    let output = std::process::Command::new(&args.wrk)
        .arg(format!("-t{}", args.wrk_threads))
        .arg(format!("-c{}", args.wrk_connections))
        .arg(format!("-d{}s", args.seconds))
        .arg("--latency")
        .arg("-s")
        .arg(&path)
        .arg(&target.base_url)
        .output()
        .with_context(|| format!("cannot run {}", args.wrk.display()))?;
    let _ = std::fs::remove_file(&path);
    anyhow::ensure!(
        output.status.success(),
        "wrk failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(parse_wrk(&String::from_utf8_lossy(&output.stdout)))
}

/// The side-by-side scenarios: each is measured over gRPC (h2load) and over HTTP (wrk); the
/// Protobuf ones after the Avro ones, when the Protobuf schemas were loaded.
fn side_by_side(ids: Ids) -> Vec<&'static str> {
    let mut scenarios = vec!["get-by-id", "get-latest", "register-existing", "lookup"];
    if ids.protobuf.is_some() {
        scenarios.extend(["get-by-id (Protobuf)", "register-existing (Protobuf)"]);
    }
    scenarios
}

/// Whether a load generator can run; says so (with the package to install) when not.
fn available(tool: &std::path::Path, what: &str, package: &str) -> bool {
    let found = std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        println!();
        println!(
            "({what} skipped: {} not found; apt-get install -y {package})",
            tool.display()
        );
    }
    found
}

/// The HTTP requests of a side-by-side scenario (the same mixes as the gRPC scenarios of the
/// bench's own client: 1,000 distinct requests).
fn http_requests(
    args: &Args,
    scenario: &str,
    ids: Ids,
) -> Vec<(&'static str, String, Option<String>)> {
    let (subjects, versions) = (args.subjects, args.versions);
    let picks = (0..1000).map(move |n: usize| (n.wrapping_mul(7919) % subjects, n % versions));
    let body = |subject: usize, version: usize| {
        Some(serde_json::json!({ "schema": schema_for(subject, version) }).to_string())
    };
    match scenario {
        "get-by-id" | "get-by-id (Protobuf)" => (0..1000)
            .map(|n: usize| {
                (
                    "GET",
                    format!("/schemas/ids/{}", ids.pick(n, scenario != "get-by-id")),
                    None,
                )
            })
            .collect(),
        "get-latest" => picks
            .map(|(subject, _)| {
                (
                    "GET",
                    format!("/subjects/subject-{subject}/versions/latest"),
                    None,
                )
            })
            .collect(),
        "register-existing" => picks
            .map(|(subject, version)| {
                (
                    "POST",
                    format!("/subjects/subject-{subject}/versions"),
                    body(subject, version),
                )
            })
            .collect(),
        "lookup" => picks
            .map(|(subject, version)| {
                (
                    "POST",
                    format!("/subjects/subject-{subject}"),
                    body(subject, version),
                )
            })
            .collect(),
        "register-existing (Protobuf)" => picks
            .map(|(subject, version)| {
                (
                    "POST",
                    format!("/subjects/proto-subject-{subject}/versions"),
                    Some(
                        serde_json::json!({
                            "schemaType": "PROTOBUF",
                            "schema": proto_schema_for(subject, version),
                        })
                        .to_string(),
                    ),
                )
            })
            .collect(),
        other => unreachable!("no HTTP requests for scenario {other}"),
    }
}

/// One side-by-side scenario over HTTP/1.1 keep-alive with wrk, the registry's CPU time
/// measured.
fn http_scenario(
    args: &Args,
    target: &Target,
    server_pid: u32,
    scenario: &str,
    ids: Ids,
) -> anyhow::Result<LoadOutcome> {
    let script = wrk_script(
        &http_requests(args, scenario, ids),
        target.authorization.as_deref(),
    );
    measuring_server_cpu(server_pid, || run_wrk(args, target, scenario, &script))
}

/// get-by-id, get-latest, register-existing and lookup (and the Protobuf scenarios) over
/// HTTP/1.1 keep-alive with wrk; `None` (saying so) when wrk is missing.
fn http_scenarios(
    args: &Args,
    target: &Target,
    server_pid: u32,
    ids: Ids,
) -> anyhow::Result<Option<Vec<LoadOutcome>>> {
    if !available(&args.wrk, "HTTP scenarios", "wrk") {
        return Ok(None);
    }
    side_by_side(ids)
        .into_iter()
        .map(|scenario| http_scenario(args, target, server_pid, scenario, ids))
        .collect::<anyhow::Result<Vec<_>>>()
        .map(Some)
}

/// Reads h2load's summary: Requests/sec, the request count and the failed ones. h2load sees
/// HTTP statuses only, and a refused gRPC call is an HTTP 200 without a message (its status is
/// in the trailers): responses that together carry less than a gRPC message header (5 bytes)
/// each count as errors, so that a run whose calls were all refused cannot pass for a fast one.
fn parse_h2load(output: &str) -> LoadOutcome {
    let mut outcome = LoadOutcome::default();
    let mut data_bytes = None;
    for line in output.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["traffic:", rest @ ..] => {
                data_bytes = rest
                    .windows(2)
                    .find(|pair| pair[1].trim_end_matches(',') == "data")
                    .and_then(|pair| {
                        pair[0]
                            .trim_matches(|c| c == '(' || c == ')')
                            .parse::<u64>()
                            .ok()
                    });
            }
            ["finished", "in", _, rate, "req/s,", ..] => outcome.rate = rate.parse().unwrap_or(0.0),
            ["requests:", total, "total,", rest @ ..] => {
                outcome.requests = total.parse().unwrap_or(0);
                outcome.errors = rest
                    .windows(2)
                    .filter(|pair| {
                        matches!(
                            pair[1].trim_end_matches(','),
                            "failed" | "errored" | "timeout"
                        )
                    })
                    .filter_map(|pair| pair[0].parse::<u64>().ok())
                    .sum();
            }
            _ => {}
        }
    }
    if let Some(data_bytes) = data_bytes {
        let with_message = data_bytes / 5;
        outcome.errors = outcome
            .errors
            .max(outcome.requests.saturating_sub(with_message));
    }
    outcome
}

/// p50 and p99 in milliseconds from h2load's `--log-file` (tab-separated: start time, HTTP
/// status, microseconds to the end of the response); responses other than 200 count as errors.
fn h2load_latencies(log: &str) -> (f64, f64, u64) {
    let mut histogram =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
    let mut not_ok = 0;
    for line in log.lines() {
        let mut columns = line.split('\t');
        let status = columns.nth(1).and_then(|s| s.trim().parse::<u16>().ok());
        let micros = columns.next().and_then(|s| s.trim().parse::<u64>().ok());
        if status != Some(200) {
            not_ok += 1;
        }
        if let Some(micros) = micros {
            let _ = histogram.record(micros.max(1));
        }
    }
    let millis = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    (millis(0.50), millis(0.99), not_ok)
}

/// One gRPC request, as h2load sends it: the RPC's path and its length-prefixed message.
struct GrpcCall {
    method: &'static str,
    body: Vec<u8>,
}

impl GrpcCall {
    fn new(method: &'static str, message: impl prost::Message) -> Self {
        let message = message.encode_to_vec();
        let mut body = vec![0u8];
        body.extend(
            u32::try_from(message.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        body.extend(message);
        Self { method, body }
    }
}

/// Runs h2load with `streams` concurrent streams on each connection, repeating `call` (TLS with
/// ALPN h2 in the TLS modes; the `Authorization` value HPACK-indexed after the first request,
/// as h2load sends it as an ordinary header).
fn run_h2load(
    args: &Args,
    target: &Target,
    name: &str,
    call: &GrpcCall,
    streams: usize,
) -> anyhow::Result<LoadOutcome> {
    let base = std::env::temp_dir().join(format!("registry-bench-{}-{name}", std::process::id()));
    let (body_path, log_path) = (base.with_extension("grpc"), base.with_extension("log"));
    std::fs::write(&body_path, &call.body)?;
    let mut command = std::process::Command::new(&args.h2load);
    if let Some(authorization) = &target.authorization {
        command
            .arg("-H")
            .arg(format!("authorization: {authorization}"));
    }
    let output = command
        .arg("-D")
        .arg(args.seconds.to_string())
        .arg("-c")
        .arg(args.wrk_connections.to_string())
        .arg("-m")
        .arg(streams.to_string())
        .arg("-t")
        .arg(args.wrk_threads.to_string())
        .arg("-d")
        .arg(&body_path)
        .arg("--log-file")
        .arg(&log_path)
        .arg("-H")
        .arg("content-type: application/grpc")
        .arg("-H")
        .arg("te: trailers")
        .arg(format!(
            "{}/tributary.registry.v1.RegistryService/{}",
            target.base_url, call.method
        ))
        .output()
        .with_context(|| format!("cannot run {}", args.h2load.display()))?;
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&body_path);
    let _ = std::fs::remove_file(&log_path);
    anyhow::ensure!(
        output.status.success(),
        "h2load failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut outcome = parse_h2load(&String::from_utf8_lossy(&output.stdout));
    let (p50_ms, p99_ms, not_ok) = h2load_latencies(&log);
    outcome.p50_ms = p50_ms;
    outcome.p99_ms = p99_ms;
    outcome.errors += not_ok;
    Ok(outcome)
}

/// The side-by-side scenarios over gRPC with h2load, with `streams` streams per connection and
/// with one; `None` (saying so) when h2load is missing. Each run repeats one request (h2load
/// sends one body), which the registry serves from memory like any other of its kind.
fn grpc_scenarios(
    args: &Args,
    target: &Target,
    server_pid: u32,
    ids: Ids,
) -> anyhow::Result<Option<Vec<(LoadOutcome, LoadOutcome)>>> {
    if !available(&args.h2load, "gRPC via h2load", "nghttp2-client") {
        return Ok(None);
    }
    let mut outcomes = Vec::new();
    for name in side_by_side(ids) {
        let call = grpc_call(args, name, ids.middle(name == "get-by-id (Protobuf)"));
        let multiplexed = measuring_server_cpu(server_pid, || {
            run_h2load(args, target, name, &call, args.h2load_streams)
        })?;
        let single = measuring_server_cpu(server_pid, || run_h2load(args, target, name, &call, 1))?;
        outcomes.push((multiplexed, single));
    }
    Ok(Some(outcomes))
}

/// The one request h2load repeats in a side-by-side scenario.
fn grpc_call(args: &Args, scenario: &str, id: i32) -> GrpcCall {
    let (subject, version) = (args.subjects / 2, args.versions - 1);
    match scenario {
        "get-by-id" | "get-by-id (Protobuf)" => GrpcCall::new(
            "GetSchema",
            pb::GetSchemaRequest {
                id,
                ..Default::default()
            },
        ),
        "get-latest" => GrpcCall::new(
            "GetSubjectVersion",
            pb::GetSubjectVersionRequest {
                subject: format!("subject-{subject}"),
                version: -1,
                include_deleted: false,
            },
        ),
        "register-existing" => GrpcCall::new(
            "RegisterSchema",
            pb::RegisterSchemaRequest {
                subject: format!("subject-{subject}"),
                schema: schema_for(subject, version),
                ..Default::default()
            },
        ),
        "lookup" => GrpcCall::new(
            "LookupSchema",
            pb::LookupSchemaRequest {
                subject: format!("subject-{subject}"),
                schema: schema_for(subject, version),
                ..Default::default()
            },
        ),
        "register-existing (Protobuf)" => GrpcCall::new(
            "RegisterSchema",
            pb::RegisterSchemaRequest {
                subject: format!("proto-subject-{subject}"),
                schema: proto_schema_for(subject, version),
                schema_type: "PROTOBUF".to_owned(),
                ..Default::default()
            },
        ),
        other => unreachable!("no gRPC call for scenario {other}"),
    }
}

/// gRPC (h2load) and HTTP (wrk) figures of the same scenarios in one table.
fn print_side_by_side(
    args: &Args,
    ids: Ids,
    grpc: Option<&[(LoadOutcome, LoadOutcome)]>,
    http: Option<&[LoadOutcome]>,
) {
    let (connections, streams) = (args.wrk_connections, args.h2load_streams);
    println!();
    println!(
        "gRPC via h2load ({} threads, {connections} connections x {streams} streams, and x 1 stream) \
         next to HTTP/1.1 keep-alive via wrk ({} threads, {connections} connections), {} s each, \
         registry {}; µs CPU = the registry's CPU time per request:",
        args.wrk_threads,
        args.wrk_threads,
        args.seconds,
        args.mode.label()
    );
    println!();
    println!(
        "| operation                    | {:>15} | p50 (ms) | p99 (ms) | µs CPU | {:>15} | p99 (ms) | µs CPU | HTTP req/s | p50 (ms) | p99 (ms) | µs CPU | gRPC/HTTP | errors |",
        format!("gRPC {connections}x{streams} req/s"),
        format!("gRPC {connections}x1 req/s"),
    );
    println!(
        "|------------------------------|----------------:|---------:|---------:|-------:|----------------:|---------:|-------:|-----------:|---------:|---------:|-------:|----------:|-------:|"
    );
    let missing = LoadOutcome {
        rate: f64::NAN,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        server_cpu_us: f64::NAN,
        ..LoadOutcome::default()
    };
    for (index, name) in side_by_side(ids).into_iter().enumerate() {
        let (multiplexed, single) = grpc
            .and_then(|outcomes| outcomes.get(index).copied())
            .unwrap_or((missing, missing));
        let http = http
            .and_then(|outcomes| outcomes.get(index).copied())
            .unwrap_or(missing);
        println!(
            "| {:<28} | {:>15.0} | {:>8.2} | {:>8.2} | {:>6.1} | {:>15.0} | {:>8.2} | {:>6.1} | {:>10.0} | {:>8.2} | {:>8.2} | {:>6.1} | {:>9.2} | {:>6} |",
            name,
            multiplexed.rate,
            multiplexed.p50_ms,
            multiplexed.p99_ms,
            multiplexed.server_cpu_us,
            single.rate,
            single.p99_ms,
            single.server_cpu_us,
            http.rate,
            http.p50_ms,
            http.p99_ms,
            http.server_cpu_us,
            multiplexed.rate / http.rate,
            multiplexed.errors + single.errors + http.errors
        );
    }
}

/// The Protobuf rows of the first table: register-new (as many schemas as the Avro rows
/// loaded, into as many `proto-subject-N` subjects, version by version), get-by-id over the
/// Protobuf ids, register-existing; each with the registry's CPU time per request. Returns the
/// ids (the Protobuf ones follow the Avro ones) and the three outcomes.
async fn protobuf_rows(
    args: &Args,
    pool: &[Client],
    pid: u32,
    avro_max: i32,
) -> anyhow::Result<(Ids, Vec<(Outcome, f64)>)> {
    let (subjects, versions) = (args.subjects, args.versions);
    let run_for = Duration::from_secs(args.seconds);
    let mut rows = Vec::new();

    let cpu_before = cpu_seconds(pid);
    let register_new = drive(
        "register-new (Protobuf)",
        pool,
        args.concurrency,
        Duration::from_secs(3600),
        Some(subjects * versions),
        move |mut client, n| async move {
            let (version, subject) = (n / subjects, n % subjects);
            client
                .register_schema(proto_registration(subject, version))
                .await
                .map(|_| ())
        },
    )
    .await;
    let cpu = cpu_per(cpu_before, cpu_seconds(pid), register_new.requests);
    print_row(&register_new);
    rows.push((register_new, cpu));

    // The Protobuf ids: from the first registration's (a version 1, as the first `subjects`
    // registrations were) to the last one's (a latest version), every id between them taken by
    // a Protobuf schema (all registered after the Avro ones).
    let mut client = pool[0].clone();
    let (mut first, mut last) = (i32::MAX, 0);
    for subject in 0..subjects {
        for version in [1, -1] {
            let found = client
                .get_subject_version(pb::GetSubjectVersionRequest {
                    subject: format!("proto-subject-{subject}"),
                    version,
                    include_deleted: false,
                })
                .await?
                .into_inner();
            if let Some(found) = found.subject_version {
                first = first.min(found.id);
                last = last.max(found.id);
            }
        }
    }
    anyhow::ensure!(
        last >= first && first > avro_max,
        "no Protobuf schema was registered after the Avro ones (ids {first}..={last})"
    );
    for (id, expected) in [(first - 1, "AVRO"), (first, "PROTOBUF"), (last, "PROTOBUF")] {
        let schema = client
            .get_schema(pb::GetSchemaRequest {
                id,
                ..Default::default()
            })
            .await?
            .into_inner();
        anyhow::ensure!(
            schema.schema_type == expected,
            "schema {id} is {}, not {expected}: the ids are not in the order the bench expects",
            schema.schema_type
        );
    }
    let ids = Ids {
        avro_max,
        protobuf: Some((first, last)),
    };

    let cpu_before = cpu_seconds(pid);
    let get_by_id = drive(
        "get-by-id (Protobuf)",
        pool,
        args.concurrency,
        run_for,
        None,
        move |mut client, n| async move {
            client
                .get_schema(pb::GetSchemaRequest {
                    id: ids.pick(n, true),
                    ..Default::default()
                })
                .await
                .map(|_| ())
        },
    )
    .await;
    let cpu = cpu_per(cpu_before, cpu_seconds(pid), get_by_id.requests);
    print_row(&get_by_id);
    rows.push((get_by_id, cpu));

    let cpu_before = cpu_seconds(pid);
    let register_existing = drive(
        "register-existing (Protobuf)",
        pool,
        args.concurrency,
        run_for,
        None,
        move |mut client, n| async move {
            let subject = n.wrapping_mul(7919) % subjects;
            let version = n % versions;
            client
                .register_schema(proto_registration(subject, version))
                .await
                .map(|_| ())
        },
    )
    .await;
    let cpu = cpu_per(cpu_before, cpu_seconds(pid), register_existing.requests);
    print_row(&register_existing);
    rows.push((register_existing, cpu));
    Ok((ids, rows))
}

/// The Protobuf rows of the first table against their Avro counterparts: req/s, p50 and the
/// registry's CPU time per request, with the Protobuf/Avro ratios.
fn print_protobuf_next_to_avro(args: &Args, avro: &[(&Outcome, f64)], protobuf: &[(Outcome, f64)]) {
    let middle = args.versions / 2;
    println!();
    println!(
        "Protobuf next to Avro (the rows above: tonic, {} calls in flight over {} connections; \
         schema text of version {} of a subject: Avro {} B, Protobuf {} B); µs CPU = the \
         registry's CPU time per request:",
        args.concurrency,
        args.connections,
        middle + 1,
        schema_for(0, middle).len(),
        proto_schema_for(0, middle).len()
    );
    println!();
    println!(
        "| operation         | Avro req/s | Protobuf req/s | Protobuf/Avro | Avro p50 (ms) | Protobuf p50 (ms) | Avro µs CPU | Protobuf µs CPU | CPU Protobuf/Avro |"
    );
    println!(
        "|-------------------|-----------:|---------------:|--------------:|--------------:|------------------:|------------:|----------------:|------------------:|"
    );
    for (name, ((avro, avro_cpu), (protobuf, protobuf_cpu))) in
        ["register-new", "get-by-id", "register-existing"]
            .into_iter()
            .zip(avro.iter().zip(protobuf))
    {
        let (avro_load, protobuf_load) = (avro.load(), protobuf.load());
        println!(
            "| {:<17} | {:>10.0} | {:>14.0} | {:>13.2} | {:>13.2} | {:>17.2} | {:>11.1} | {:>15.1} | {:>17.2} |",
            name,
            avro_load.rate,
            protobuf_load.rate,
            protobuf_load.rate / avro_load.rate,
            avro_load.p50_ms,
            protobuf_load.p50_ms,
            avro_cpu,
            protobuf_cpu,
            protobuf_cpu / avro_cpu
        );
    }
}

fn print_row(outcome: &Outcome) {
    let rate = outcome.requests as f64 / outcome.elapsed.as_secs_f64();
    println!(
        "| {:<28} | {:>10.0} | {:>8.2} | {:>8.2} | {:>9} | {:>6} |",
        outcome.name,
        rate,
        outcome.histogram.value_at_quantile(0.50) as f64 / 1000.0,
        outcome.histogram.value_at_quantile(0.99) as f64 / 1000.0,
        outcome.requests,
        outcome.errors
    );
}

/// The operations of the security table, each measured with the bench's own client, h2load and
/// wrk.
const SECURED_OPERATIONS: [&str; 2] = ["get-by-id", "register-existing"];

/// Who drives a row of the security table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Driver {
    /// The bench's tonic client, `--concurrency` calls over `--connections` connections.
    Tonic,
    /// h2load, `--wrk-connections` connections x `--h2load-streams` streams.
    H2load,
    /// wrk, HTTP/1.1 keep-alive, `--wrk-connections` connections.
    Wrk,
    /// A new connection per call (connect, one GetSchema, close), `--handshake-concurrency`
    /// at a time; with TLS, a full handshake each time, or a resumed session.
    NewConnection { resumed: bool },
}

/// A row group of the security table: an operation, who drives it, and which row its ratio is
/// taken against (the plaintext row of the same scenario, except for resumed sessions, which
/// have no plaintext counterpart and compare with plaintext new connections).
#[derive(Debug, Clone)]
struct Scenario {
    operation: &'static str,
    driver: Driver,
    client: String,
    baseline: usize,
}

/// One registry of the security table, with its keep-alive clients.
struct Secured {
    registry: Registry,
    pool: Vec<Client>,
}

/// The registry started once per mode on the loaded database, warmed up, then every scenario
/// measured against each mode in turn (the order rotating from round to round), and one table
/// with the ratio of each row to plaintext.
async fn security_table(
    args: &Args,
    pki: &Pki,
    database_url: &str,
    max_id: i32,
) -> anyhow::Result<()> {
    let mut modes: Vec<Mode> = Vec::new();
    for mode in &args.security_modes {
        if !modes.contains(mode) {
            modes.push(*mode);
        }
    }
    if modes.is_empty() {
        return Ok(());
    }
    let mut secured = HashMap::new();
    for &mode in &modes {
        let (registry, _) = start_registry(
            args,
            database_url,
            mode,
            pki,
            free_port()?,
            free_port()?,
            args.auth_cache_ttl_ms,
        )
        .await?;
        let pool = clients(&registry, pki, args.connections).await?;
        warm_up(args, &registry, &pool, max_id).await?;
        secured.insert(mode, Secured { registry, pool });
    }

    let has_h2load = available(
        &args.h2load,
        "gRPC via h2load in the security table",
        "nghttp2-client",
    );
    let has_wrk = available(&args.wrk, "HTTP via wrk in the security table", "wrk");
    let mut scenarios = Vec::new();
    for operation in SECURED_OPERATIONS {
        let index = scenarios.len();
        scenarios.push(Scenario {
            operation,
            driver: Driver::Tonic,
            client: format!(
                "gRPC, tonic: {} conns, {} in flight",
                args.connections, args.concurrency
            ),
            baseline: index,
        });
        if has_h2load {
            let index = scenarios.len();
            scenarios.push(Scenario {
                operation,
                driver: Driver::H2load,
                client: format!(
                    "gRPC, h2load: {} conns x {} streams",
                    args.wrk_connections, args.h2load_streams
                ),
                baseline: index,
            });
        }
        if has_wrk {
            let index = scenarios.len();
            scenarios.push(Scenario {
                operation,
                driver: Driver::Wrk,
                client: format!("HTTP/1.1, wrk: {} conns", args.wrk_connections),
                baseline: index,
            });
        }
    }
    let fresh = scenarios.len();
    scenarios.push(Scenario {
        operation: "new conn + get-by-id",
        driver: Driver::NewConnection { resumed: false },
        client: format!(
            "gRPC, tonic: {} at a time, full handshake",
            args.handshake_concurrency
        ),
        baseline: fresh,
    });
    if modes.iter().any(|mode| mode.is_tls()) {
        scenarios.push(Scenario {
            operation: "new conn + get-by-id",
            driver: Driver::NewConnection { resumed: true },
            client: format!(
                "gRPC, tonic: {} at a time, resumed session",
                args.handshake_concurrency
            ),
            baseline: fresh,
        });
    }

    let mut measured: HashMap<(usize, Mode), Vec<LoadOutcome>> = HashMap::new();
    for round in 0..args.security_rounds as usize {
        for (index, scenario) in scenarios.iter().enumerate() {
            let mut order = modes.clone();
            order.rotate_left(round % modes.len());
            for mode in order {
                if scenario.driver == (Driver::NewConnection { resumed: true }) && !mode.is_tls() {
                    continue;
                }
                let Some(target) = secured.get(&mode) else {
                    continue;
                };
                let outcome = measure_secured(args, pki, target, scenario, max_id).await?;
                measured.entry((index, mode)).or_default().push(outcome);
            }
        }
    }
    for (_, target) in secured.drain() {
        drop(target.pool);
        target.registry.stop().await;
    }

    let median = |index: usize, mode: Mode| -> Option<LoadOutcome> {
        let mut outcomes = measured.get(&(index, mode))?.clone();
        outcomes.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        outcomes.get(outcomes.len() / 2).copied()
    };
    let baseline_mode = modes[0];
    println!();
    println!(
        "Security: the registry started once per mode on the same database ({}{}), each warmed up. \
         Keep-alive rows: the clients of the tables above, {} s each (tonic sends the credentials \
         as a sensitive header, never HPACK-indexed, so in full on every call; h2load's header is \
         indexed; wrk sends it on every request). New-connection rows: connect (TCP; TLS 1.3, \
         X25519, ECDSA P-256 certificate, no session resumption, or resumed sessions; HTTP/2), \
         one GetSchema, close. Modes alternate scenario by scenario, median of {} round(s). \
         µs CPU = the registry's CPU time per request (per connection on the new-connection \
         rows); x req/s and x CPU = the row's req/s and µs CPU over those of the {} row of the \
         same scenario (of the full-handshake scenario for resumed sessions; the policy's rows \
         over TLS + basic's, which has no policy); goal: x req/s >= 0.70 on the keep-alive rows \
         (>= 0.90 for the policy's).",
        modes
            .iter()
            .map(|mode| match mode {
                Mode::Plaintext => "plaintext: --tls off --auth none",
                Mode::Basic => "TLS + basic: users file of one argon2id user, --authz none",
                Mode::Jwt => "TLS + JWT: JWKS file, one ES256 token, --authz none",
                Mode::Policy => "+ 1k rules: TLS + basic with a policy of 1,000 rules, all bound to the bench's user, no registry read (get-by-id decided through the id's subjects)",
                Mode::Before => "before: TLS + basic served by the --before-bin registry (when first, the other rows are compared with it; goal >= 0.97)",
            })
            .collect::<Vec<_>>()
            .join("; "),
        args.auth_cache_ttl_ms
            .map_or(String::new(), |ttl| format!("; AUTH_CACHE_TTL_MS={ttl}")),
        args.seconds,
        args.security_rounds,
        baseline_mode.label(),
    );
    println!();
    println!(
        "| operation            | client                                       | mode        |      req/s | p50 (ms) | p99 (ms) | µs CPU | x req/s | x CPU |  goal  | errors |"
    );
    println!(
        "|----------------------|----------------------------------------------|-------------|-----------:|---------:|---------:|-------:|--------:|------:|:------:|-------:|"
    );
    for (index, scenario) in scenarios.iter().enumerate() {
        for &mode in &modes {
            let Some(outcome) = median(index, mode) else {
                continue;
            };
            // The policy's row is compared with the same authentication without a policy
            // (goal 0.9); the others with the first mode (goal 0.7).
            // With `before` first, every row is compared with the earlier build (goal: no more
            // than 3% lost).
            let (compared_with, goal_ratio) = match mode {
                Mode::Policy if modes.contains(&Mode::Basic) => (Mode::Basic, 0.9),
                _ if baseline_mode == Mode::Before => (baseline_mode, 0.97),
                _ => (baseline_mode, 0.7),
            };
            let base = median(scenario.baseline, compared_with);
            let (rate_ratio, cpu_ratio) = match base {
                Some(base) if index != scenario.baseline || mode != compared_with => (
                    format!("{:.2}", outcome.rate / base.rate),
                    format!("{:.2}", outcome.server_cpu_us / base.server_cpu_us),
                ),
                _ => (String::new(), String::new()),
            };
            let goal = match (scenario.driver, rate_ratio.parse::<f64>()) {
                (Driver::NewConnection { .. }, _) | (_, Err(_)) => "",
                (_, Ok(ratio)) if ratio >= goal_ratio => "yes",
                (_, Ok(_)) => "NO",
            };
            println!(
                "| {:<20} | {:<44} | {:<11} | {:>10.0} | {:>8.2} | {:>8.2} | {:>6.1} | {:>7} | {:>5} | {:^6} | {:>6} |",
                scenario.operation,
                scenario.client,
                mode.label(),
                outcome.rate,
                outcome.p50_ms,
                outcome.p99_ms,
                outcome.server_cpu_us,
                rate_ratio,
                cpu_ratio,
                goal,
                outcome.errors
            );
        }
    }
    Ok(())
}

/// Warms a freshly started registry of the security table: every schema id read once and every
/// (subject, version) re-registered once, so that its caches hold what the measurements ask
/// for, as the first registry's do after the first tables. Fails on the first refused call,
/// naming the mode (a broken credential would otherwise only show as an error count).
async fn warm_up(
    args: &Args,
    registry: &Registry,
    pool: &[Client],
    max_id: i32,
) -> anyhow::Result<()> {
    let mode = registry.mode;
    let mut client = pool[0].clone();
    client
        .get_schema(pb::GetSchemaRequest {
            id: 1,
            ..Default::default()
        })
        .await
        .map_err(|status| {
            anyhow::anyhow!(
                "GetSchema against the registry ({}) failed: {:?}: {}",
                mode.label(),
                status.code(),
                status.message()
            )
        })?;
    let (subjects, versions) = (args.subjects, args.versions);
    let ids = usize::try_from(max_id).unwrap_or(1).max(1);
    let reads = drive(
        "(warm-up reads)",
        pool,
        args.concurrency,
        Duration::from_secs(3600),
        Some(ids),
        move |mut client, n| async move {
            client
                .get_schema(pb::GetSchemaRequest {
                    id: 1 + (n % ids) as i32,
                    ..Default::default()
                })
                .await
                .map(|_| ())
        },
    )
    .await;
    let registrations = drive(
        "(warm-up registrations)",
        pool,
        args.concurrency,
        Duration::from_secs(3600),
        Some(subjects * versions),
        move |mut client, n| async move {
            let (subject, version) = (n % subjects, n / subjects);
            client
                .register_schema(pb::RegisterSchemaRequest {
                    subject: format!("subject-{subject}"),
                    schema: schema_for(subject, version),
                    ..Default::default()
                })
                .await
                .map(|_| ())
        },
    )
    .await;
    anyhow::ensure!(
        reads.errors + registrations.errors == 0,
        "warming up the registry ({}): {} of {} calls failed",
        mode.label(),
        reads.errors + registrations.errors,
        reads.requests + registrations.requests
    );
    Ok(())
}

/// One row of the security table against one registry.
async fn measure_secured(
    args: &Args,
    pki: &Pki,
    secured: &Secured,
    scenario: &Scenario,
    max_id: i32,
) -> anyhow::Result<LoadOutcome> {
    let registry = &secured.registry;
    let pid = registry.pid();
    let run_for = Duration::from_secs(args.seconds);
    let (subjects, versions) = (args.subjects, args.versions);
    let ids = usize::try_from(max_id).unwrap_or(1).max(1);
    match scenario.driver {
        Driver::Tonic => {
            let before = cpu_seconds(pid);
            let outcome = if scenario.operation == "get-by-id" {
                drive(
                    "get-by-id",
                    &secured.pool,
                    args.concurrency,
                    run_for,
                    None,
                    move |mut client, n| async move {
                        let id = 1 + (n.wrapping_mul(7919) % ids) as i32;
                        client
                            .get_schema(pb::GetSchemaRequest {
                                id,
                                ..Default::default()
                            })
                            .await
                            .map(|_| ())
                    },
                )
                .await
            } else {
                drive(
                    "register-existing",
                    &secured.pool,
                    args.concurrency,
                    run_for,
                    None,
                    move |mut client, n| async move {
                        let subject = n.wrapping_mul(7919) % subjects;
                        let version = n % versions;
                        client
                            .register_schema(pb::RegisterSchemaRequest {
                                subject: format!("subject-{subject}"),
                                schema: schema_for(subject, version),
                                ..Default::default()
                            })
                            .await
                            .map(|_| ())
                    },
                )
                .await
            };
            let mut load = outcome.load();
            load.server_cpu_us = cpu_per(before, cpu_seconds(pid), load.requests);
            Ok(load)
        }
        Driver::H2load => {
            let target = Target::new(registry.mode, pki, &registry.addr);
            let call = grpc_call(args, scenario.operation, max_id / 2 + 1);
            measuring_server_cpu(pid, || {
                run_h2load(
                    args,
                    &target,
                    scenario.operation,
                    &call,
                    args.h2load_streams,
                )
            })
        }
        Driver::Wrk => {
            let target = Target::new(registry.mode, pki, &registry.http_addr);
            http_scenario(args, &target, pid, scenario.operation, Ids::avro(max_id))
        }
        Driver::NewConnection { resumed } => {
            let before = cpu_seconds(pid);
            let mut load = new_connections(args, pki, registry, resumed, max_id)
                .await?
                .load();
            load.server_cpu_us = cpu_per(before, cpu_seconds(pid), load.requests);
            Ok(load)
        }
    }
}

/// CPU seconds between two readings, per request, in microseconds.
fn cpu_per(before: Option<f64>, after: Option<f64>, requests: u64) -> f64 {
    match (before, after) {
        (Some(before), Some(after)) if requests > 0 => (after - before) / requests as f64 * 1e6,
        _ => f64::NAN,
    }
}

/// `--handshake-concurrency` clients, each in a loop for `--seconds`: a new channel (TCP, TLS in
/// the TLS modes: full handshakes, or resumed sessions with a shared session cache; HTTP/2),
/// one GetSchema with the mode's credentials, then the channel dropped, which closes the
/// connection.
async fn new_connections(
    args: &Args,
    pki: &Pki,
    registry: &Registry,
    resumed: bool,
    max_id: i32,
) -> anyhow::Result<Outcome> {
    let mode = registry.mode;
    let tls = if mode.is_tls() {
        Some(tributary_security::client::ClientTls::fixed(
            pki.client_config(resumed)?,
        ))
    } else {
        None
    };
    let credentials = mode.credentials(pki)?;
    let url = mode.url(&registry.addr);
    let ids = usize::try_from(max_id).unwrap_or(1).max(1);
    let counter = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for _ in 0..args.handshake_concurrency.max(1) {
        let (tls, credentials, url, counter) = (
            tls.clone(),
            credentials.clone(),
            url.clone(),
            Arc::clone(&counter),
        );
        tasks.push(tokio::spawn(async move {
            let mut histogram =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let mut errors = 0u64;
            let mut first_error = None;
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let id = 1 + (n.wrapping_mul(7919) % ids) as i32;
                let begun = Instant::now();
                let outcome = match tributary_security::client::channel(&url, tls.clone(), |e| e) {
                    Ok(channel) => {
                        let mut client = RegistryServiceClient::new(InterceptedService::new(
                            channel,
                            credentials.clone(),
                        ));
                        client
                            .get_schema(pb::GetSchemaRequest {
                                id,
                                ..Default::default()
                            })
                            .await
                            .map(|_| ())
                            .map_err(|status| format!("{:?}: {}", status.code(), status.message()))
                    }
                    Err(error) => Err(format!("{error:#}")),
                };
                if let Err(error) = outcome {
                    errors += 1;
                    first_error.get_or_insert(error);
                }
                let _ = histogram.record(begun.elapsed().as_micros().max(1) as u64);
            }
            (histogram, errors, first_error)
        }));
    }
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut errors = 0;
    let mut first_error = None;
    for task in tasks {
        if let Ok((h, e, first)) = task.await {
            let _ = histogram.add(h);
            errors += e;
            first_error = first_error.or(first);
        }
    }
    if let Some(error) = first_error {
        eprintln!(
            "new connections to the registry ({}): {errors} failed, the first with: {error}",
            mode.label()
        );
    }
    Ok(Outcome {
        name: "new connection",
        requests: histogram.len(),
        errors,
        elapsed: started.elapsed(),
        histogram,
    })
}

/// The first number of /proc/loadavg (NaN when unreadable).
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Transactions committed and rolled back in `database` so far, as Postgres's statistics count
/// them (every statement outside a transaction is one; they are flushed about once a second:
/// read after a pause).
async fn transactions(pool: &sqlx::PgPool, database: &str) -> anyhow::Result<(i64, i64)> {
    Ok(
        sqlx::query_as(
            "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = $1",
        )
        .bind(database)
        .fetch_one(pool)
        .await?,
    )
}

/// The hot-subject table (see `tributary_bench::hot_subject`): fails, saying why, when an
/// acknowledged registration is not in Postgres or an id or version is given twice.
async fn hot_subject_table(
    args: &Args,
    registry: &Registry,
    pki: &Pki,
    database_url: &str,
    database: &str,
) -> anyhow::Result<()> {
    let hot = HotSubject {
        base_url: registry.mode.url(&registry.http_addr),
        authorization: registry.mode.authorization(pki),
        ca_pem: if registry.mode.is_tls() {
            Some(std::fs::read(&pki.ca)?)
        } else {
            None
        },
        subject: "hot-subject".to_owned(),
        compatibility: args.hot_compatibility.clone(),
        clients: args.hot_clients,
        run_for: Duration::from_secs(args.seconds),
    };
    let pool = sqlx::PgPool::connect(database_url).await?;
    let pid = registry.pid();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (commits_before, rollbacks_before) = transactions(&pool, database).await?;
    let (load_before, cpu_before) = (load_average(), cpu_seconds(pid));
    let outcome = tributary_bench::hot_subject::run(&hot, &pool).await;
    let (load_after, cpu_after) = (load_average(), cpu_seconds(pid));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (commits_after, rollbacks_after) = transactions(&pool, database).await?;
    pool.close().await;
    let outcome = outcome?;
    println!(
        "registry-bench: one hot subject, {} concurrent HTTP/1.1 keep-alive clients registering new schemas ({}), {} s, registry {}; load average {:.2} before, {:.2} after",
        hot.clients,
        hot.compatibility,
        args.seconds,
        registry.mode.label(),
        load_before,
        load_after
    );
    println!();
    println!(
        "| scenario | writes/s | p50 (ms) | p99 (ms) | acknowledged | errors | versions committed | Postgres commits/write | rollbacks/write | µs CPU/write |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let writes = outcome.acknowledged.max(1) as f64;
    println!(
        "| one hot subject: {} HTTP clients registering new schemas ({}) | {:.0} | {:.2} | {:.2} | {} | {} | {} | {:.2} | {:.2} | {:.0} |",
        hot.clients,
        hot.compatibility,
        outcome.rate(),
        outcome.millis(0.50),
        outcome.millis(0.99),
        outcome.acknowledged,
        outcome.errors,
        outcome.committed,
        (commits_after - commits_before) as f64 / writes,
        (rollbacks_after - rollbacks_before) as f64 / writes,
        cpu_per(cpu_before, cpu_after, outcome.acknowledged),
    );
    println!();
    println!(
        "verified in Postgres: versions 1..={} of {} without a gap, no id or version twice, every acknowledged id committed and holding its own schema",
        outcome.committed, hot.subject
    );
    for error in &outcome.first_errors {
        println!("error answer: {error}");
    }
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let database = format!(
        "bench_{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
    );
    let mut admin = sqlx::PgConnection::connect(&args.admin_url)
        .await
        .context("cannot reach Postgres; run scripts/stack up --infra")?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin)
        .await?;
    let outcome = run(&args, &database).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await?;
    outcome
}

#[allow(clippy::too_many_lines)]
async fn run(args: &Args, database: &str) -> anyhow::Result<()> {
    // The run's CA, certificates, users and token (removed at the end).
    let pki =
        Pki::create(std::env::temp_dir().join(format!("registry-bench-{}", std::process::id())))?;
    // Loopback, without TLS (the stack's cluster offers TLS, and sqlx's default `prefer` would
    // take it): what the reference figures were measured on. The cost of TLS to Postgres is
    // measured on its own below.
    let database_url = format!(
        "{}/{database}?sslmode=disable",
        args.admin_url
            .rsplit_once('/')
            .map_or(args.admin_url.as_str(), |(base, _)| base)
    );
    let port = free_port()?;
    let http_port = free_port()?;

    let (registry, cold_start) =
        start_registry(args, &database_url, args.mode, &pki, port, http_port, None).await?;
    if args.only == Only::HotSubject {
        let outcome = hot_subject_table(args, &registry, &pki, &database_url, database).await;
        registry.stop().await;
        return outcome;
    }
    let pool = clients(&registry, &pki, args.connections).await?;
    let run_for = Duration::from_secs(args.seconds);
    let total = args.subjects * args.versions;
    let (subjects, versions) = (args.subjects, args.versions);

    println!(
        "registry-bench: {} subjects x {} versions, concurrency {}, {} connections, {} s per read scenario; \
         registry of the first tables: {}{}",
        subjects,
        versions,
        args.concurrency,
        args.connections,
        args.seconds,
        args.mode.label(),
        match args.mode {
            Mode::Plaintext => " (--tls off --auth none)",
            Mode::Basic => " (TLS, basic authentication)",
            Mode::Jwt => " (TLS, bearer JWT)",
            Mode::Policy => " (TLS, basic authentication, a policy of 1,000 rules)",
            Mode::Before => " (TLS, basic authentication, the --before-bin registry)",
        }
    );
    println!();
    println!(
        "| operation                    |      req/s | p50 (ms) | p99 (ms) |  requests | errors |"
    );
    println!(
        "|------------------------------|-----------:|---------:|---------:|----------:|-------:|"
    );
    // register-new: load every schema; version v of every subject before v+1, so versions are in
    // order within a subject while subjects run concurrently.
    let pid = registry.pid();
    let cpu_before = cpu_seconds(pid);
    let register_new = drive(
        "register-new",
        &pool,
        args.concurrency,
        Duration::from_secs(3600),
        Some(total),
        move |mut client, n| async move {
            let (version, subject) = (n / subjects, n % subjects);
            client
                .register_schema(pb::RegisterSchemaRequest {
                    subject: format!("subject-{subject}"),
                    schema: schema_for(subject, version),
                    ..Default::default()
                })
                .await
                .map(|_| ())
        },
    )
    .await;
    let register_new_cpu = cpu_per(cpu_before, cpu_seconds(pid), register_new.requests);
    print_row(&register_new);

    let ids: Vec<i32> = {
        let mut client = pool[0].clone();
        let mut ids = Vec::new();
        for subject in [0, subjects / 2, subjects - 1] {
            let latest = client
                .get_subject_version(pb::GetSubjectVersionRequest {
                    subject: format!("subject-{subject}"),
                    version: -1,
                    include_deleted: false,
                })
                .await?
                .into_inner();
            ids.push(latest.subject_version.map_or(0, |v| v.id));
        }
        ids
    };
    let max_id = *ids.iter().max().unwrap_or(&1);

    if args.only == Only::Security {
        drop(pool);
        registry.stop().await;
    } else {
        let cpu_before = cpu_seconds(pid);
        let get_by_id = drive(
            "get-by-id",
            &pool,
            args.concurrency,
            run_for,
            None,
            move |mut client, n| async move {
                let id = 1 + (n.wrapping_mul(7919) % max_id as usize) as i32;
                client
                    .get_schema(pb::GetSchemaRequest {
                        id,
                        ..Default::default()
                    })
                    .await
                    .map(|_| ())
            },
        )
        .await;
        let get_by_id_cpu = cpu_per(cpu_before, cpu_seconds(pid), get_by_id.requests);
        print_row(&get_by_id);

        let get_latest = drive(
            "get-latest",
            &pool,
            args.concurrency,
            run_for,
            None,
            move |mut client, n| async move {
                let subject = format!("subject-{}", n.wrapping_mul(7919) % subjects);
                client
                    .get_subject_version(pb::GetSubjectVersionRequest {
                        subject,
                        version: -1,
                        include_deleted: false,
                    })
                    .await
                    .map(|_| ())
            },
        )
        .await;
        print_row(&get_latest);

        let cpu_before = cpu_seconds(pid);
        let register_existing = drive(
            "register-existing",
            &pool,
            args.concurrency,
            run_for,
            None,
            move |mut client, n| async move {
                let subject = n.wrapping_mul(7919) % subjects;
                let version = n % versions;
                client
                    .register_schema(pb::RegisterSchemaRequest {
                        subject: format!("subject-{subject}"),
                        schema: schema_for(subject, version),
                        ..Default::default()
                    })
                    .await
                    .map(|_| ())
            },
        )
        .await;
        let register_existing_cpu =
            cpu_per(cpu_before, cpu_seconds(pid), register_existing.requests);
        print_row(&register_existing);

        let compatibility = drive(
            "compatibility-check",
            &pool,
            args.concurrency,
            run_for,
            None,
            move |mut client, n| async move {
                let subject = n.wrapping_mul(7919) % subjects;
                let response = client
                    .check_compatibility(pb::CheckCompatibilityRequest {
                        subject: format!("subject-{subject}"),
                        schema: schema_for(subject, versions),
                        ..Default::default()
                    })
                    .await?;
                if response.into_inner().is_compatible {
                    Ok(())
                } else {
                    Err(tonic::Status::internal("unexpectedly incompatible"))
                }
            },
        )
        .await;
        print_row(&compatibility);

        let lookup = drive(
            "lookup",
            &pool,
            args.concurrency,
            run_for,
            None,
            move |mut client, n| async move {
                let subject = n.wrapping_mul(7919) % subjects;
                let version = n % versions;
                client
                    .lookup_schema(pb::LookupSchemaRequest {
                        subject: format!("subject-{subject}"),
                        schema: schema_for(subject, version),
                        ..Default::default()
                    })
                    .await
                    .map(|_| ())
            },
        )
        .await;
        print_row(&lookup);

        // Protobuf beside Avro: as many Protobuf schemas, loaded now (after the Avro rows, which
        // are measured as before), then read and re-registered as the Avro ones were.
        let rss_avro = rss_mib(pid);
        let ids = if args.skip_protobuf {
            Ids::avro(max_id)
        } else {
            let (ids, protobuf) = protobuf_rows(args, &pool, pid, max_id).await?;
            print_protobuf_next_to_avro(
                args,
                &[
                    (&register_new, register_new_cpu),
                    (&get_by_id, get_by_id_cpu),
                    (&register_existing, register_existing_cpu),
                ],
                &protobuf,
            );
            ids
        };

        // The reads and re-registrations again, with C load generators for both APIs.
        let grpc = grpc_scenarios(
            args,
            &Target::new(args.mode, &pki, &registry.addr),
            pid,
            ids,
        )?;
        let http = http_scenarios(
            args,
            &Target::new(args.mode, &pki, &registry.http_addr),
            pid,
            ids,
        )?;
        print_side_by_side(args, ids, grpc.as_deref(), http.as_deref());

        let rss_loaded = rss_mib(pid);

        // A subject with many versions under FULL_TRANSITIVE: load it under NONE, then time new
        // registrations that are checked against every version.
        let mut client = pool[0].clone();
        let big = "big-subject".to_owned();
        client
            .set_compatibility_level(pb::SetCompatibilityLevelRequest {
                subject: big.clone(),
                level: pb::CompatibilityLevel::None as i32,
            })
            .await?;
        let big_versions = args.big_versions;
        drive(
            "(load big subject)",
            &pool[..1],
            1,
            Duration::from_secs(3600),
            Some(big_versions),
            {
                let big = big.clone();
                move |mut client, n| {
                    let big = big.clone();
                    async move {
                        client
                            .register_schema(pb::RegisterSchemaRequest {
                                subject: big,
                                schema: big_schema(n),
                                ..Default::default()
                            })
                            .await
                            .map(|_| ())
                    }
                }
            },
        )
        .await;
        client
            .set_compatibility_level(pb::SetCompatibilityLevelRequest {
                subject: big.clone(),
                level: pb::CompatibilityLevel::FullTransitive as i32,
            })
            .await?;
        let mut big_timings = Vec::new();
        for extra in 0..5 {
            let begun = Instant::now();
            let response = client
                .register_schema(pb::RegisterSchemaRequest {
                    subject: big.clone(),
                    schema: big_schema(big_versions + extra),
                    ..Default::default()
                })
                .await?
                .into_inner();
            big_timings.push(begun.elapsed());
            anyhow::ensure!(
                response.version as usize == big_versions + extra + 1,
                "unexpected version {}",
                response.version
            );
        }
        let rss_after_big = rss_mib(pid);

        // Restart with all that data present: time from process start to SERVING.
        drop(pool);
        registry.stop().await;
        let mut warm_starts = Vec::new();
        for _ in 0..3 {
            let (restarted, took) =
                start_registry(args, &database_url, args.mode, &pki, port, http_port, None).await?;
            warm_starts.push(took);
            restarted.stop().await;
        }
        let tls_url = database_url.replace("sslmode=disable", "sslmode=require");
        let (with_tls, tls_start) =
            start_registry(args, &tls_url, args.mode, &pki, port, http_port, None).await?;
        with_tls.stop().await;

        println!();
        println!("| measure                                              | value |");
        println!("|------------------------------------------------------|------:|");
        if ids.protobuf.is_some() {
            println!(
                "| RSS after the Avro rows, before loading the Protobuf schemas (MiB) | {rss_avro:.1} |"
            );
            println!(
                "| RSS after loading {total} Avro + {total} Protobuf schemas / {} subjects (MiB) | {rss_loaded:.1} |",
                2 * subjects
            );
        } else {
            println!(
                "| RSS after loading {total} schemas / {subjects} subjects (MiB) | {rss_loaded:.1} |"
            );
        }
        println!(
            "| RSS after the {big_versions}-version subject too (MiB)        | {rss_after_big:.1} |"
        );
        println!(
            "| start to SERVING, empty database (ms)                | {:.1} |",
            cold_start.as_secs_f64() * 1000.0
        );
        for (index, took) in warm_starts.iter().enumerate() {
            println!(
                "| start to SERVING with the data present, run {} (ms)    | {:.1} |",
                index + 1,
                took.as_secs_f64() * 1000.0
            );
        }
        println!(
            "| start to SERVING with the data, TLS to Postgres (ms) | {:.1} |",
            tls_start.as_secs_f64() * 1000.0
        );
        for (index, took) in big_timings.iter().enumerate() {
            println!(
                "| register into {big_versions}-version FULL_TRANSITIVE subject, #{} (ms) | {:.1} |",
                index + 1,
                took.as_secs_f64() * 1000.0
            );
        }
    }

    if args.only != Only::Tables {
        security_table(args, &pki, &database_url, max_id).await?;
    }
    Ok(())
}
