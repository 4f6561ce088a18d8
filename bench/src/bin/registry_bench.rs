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
//! Run it through `scripts/bench registry` (which starts the stack and builds in release mode).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use sqlx::Connection;
use tonic::transport::Channel;
use tributary_bench::{cpu_seconds, rss_mib};
use tributary_proto::registry::v1 as pb;
use tributary_proto::registry::v1::registry_service_client::RegistryServiceClient;

#[derive(Debug, Parser)]
struct Args {
    /// The registry binary to start.
    #[arg(long, default_value = "target/release/registry")]
    registry_bin: PathBuf,
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

struct Registry {
    child: tokio::process::Child,
    addr: String,
    http_addr: String,
}

async fn start_registry(
    args: &Args,
    database_url: &str,
    port: u16,
    http_port: u16,
) -> anyhow::Result<(Registry, Duration)> {
    let addr = format!("127.0.0.1:{port}");
    let http_addr = format!("127.0.0.1:{http_port}");
    let started = Instant::now();
    let child = tokio::process::Command::new(&args.registry_bin)
        .env("DATABASE_URL", database_url)
        .env("REGISTRY_GRPC_ADDR", &addr)
        .env("REGISTRY_HTTP_ADDR", &http_addr)
        .env("REGISTRY_METRICS_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", args.registry_bin.display()))?;
    loop {
        if let Ok(channel) = Channel::from_shared(format!("http://{addr}"))?
            .connect()
            .await
        {
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
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("registry not SERVING after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok((
        Registry {
            child,
            addr,
            http_addr,
        },
        started.elapsed(),
    ))
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

async fn clients(
    addr: &str,
    connections: usize,
) -> anyhow::Result<Vec<RegistryServiceClient<Channel>>> {
    let mut clients = Vec::new();
    for _ in 0..connections {
        let channel = Channel::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect()
            .await?;
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

/// Runs `op` from `concurrency` tasks until `deadline` or until `limit` operations were issued.
async fn drive<F, Fut>(
    name: &'static str,
    clients: &[RegistryServiceClient<Channel>],
    concurrency: usize,
    run_for: Duration,
    limit: Option<usize>,
    op: F,
) -> Outcome
where
    F: Fn(RegistryServiceClient<Channel>, usize) -> Fut + Send + Sync + 'static,
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

/// A wrk script cycling through `requests` (method, path, body) from a per-thread offset.
fn wrk_script(requests: &[(&str, String, Option<String>)]) -> String {
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
    script.push_str(
        r#"}
local headers = { ["Content-Type"] = "application/vnd.schemaregistry.v1+json" }
local formatted = {}
for i, r in ipairs(requests) do
  if r[3] then
    formatted[i] = wrk.format(r[1], r[2], headers, r[3])
  else
    formatted[i] = wrk.format(r[1], r[2])
  end
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

/// Runs wrk against `http_addr` with a script; fails when wrk fails.
fn run_wrk(args: &Args, http_addr: &str, name: &str, script: &str) -> anyhow::Result<LoadOutcome> {
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
        .arg(format!("http://{http_addr}"))
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

/// The side-by-side scenarios: each is measured over gRPC (h2load) and over HTTP (wrk).
const SIDE_BY_SIDE: [&str; 4] = ["get-by-id", "get-latest", "register-existing", "lookup"];

/// get-by-id, get-latest, register-existing and lookup over HTTP/1.1 keep-alive with wrk; `None`
/// (saying so) when wrk is missing.
fn http_scenarios(
    args: &Args,
    http_addr: &str,
    server_pid: u32,
    max_id: i32,
) -> anyhow::Result<Option<Vec<LoadOutcome>>> {
    if std::process::Command::new(&args.wrk)
        .arg("--version")
        .output()
        .is_err()
    {
        println!();
        println!(
            "(HTTP scenarios skipped: {} not found; apt-get install -y wrk)",
            args.wrk.display()
        );
        return Ok(None);
    }
    let (subjects, versions) = (args.subjects, args.versions);
    // The same request mixes as the gRPC scenarios (1,000 distinct requests each).
    let picks: Vec<(usize, usize)> = (0..1000)
        .map(|n: usize| (n.wrapping_mul(7919) % subjects, n % versions))
        .collect();
    let body = |subject: usize, version: usize| {
        serde_json::json!({ "schema": schema_for(subject, version) }).to_string()
    };
    let get_by_id: Vec<_> = (0..1000)
        .map(|n: usize| {
            (
                "GET",
                format!(
                    "/schemas/ids/{}",
                    1 + (n.wrapping_mul(7919) % max_id.max(1) as usize)
                ),
                None,
            )
        })
        .collect();
    let get_latest: Vec<_> = picks
        .iter()
        .map(|(subject, _)| {
            (
                "GET",
                format!("/subjects/subject-{subject}/versions/latest"),
                None,
            )
        })
        .collect();
    let register: Vec<_> = picks
        .iter()
        .map(|(subject, version)| {
            (
                "POST",
                format!("/subjects/subject-{subject}/versions"),
                Some(body(*subject, *version)),
            )
        })
        .collect();
    let lookup: Vec<_> = picks
        .iter()
        .map(|(subject, version)| {
            (
                "POST",
                format!("/subjects/subject-{subject}"),
                Some(body(*subject, *version)),
            )
        })
        .collect();

    let mut outcomes = Vec::new();
    for (name, requests) in SIDE_BY_SIDE
        .into_iter()
        .zip([get_by_id, get_latest, register, lookup])
    {
        let script = wrk_script(&requests);
        outcomes.push(measuring_server_cpu(server_pid, || {
            run_wrk(args, http_addr, name, &script)
        })?);
    }
    Ok(Some(outcomes))
}

/// Reads h2load's summary: Requests/sec, the request count and the failed ones.
fn parse_h2load(output: &str) -> LoadOutcome {
    let mut outcome = LoadOutcome::default();
    for line in output.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
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

/// Runs h2load with `streams` concurrent streams on each connection, repeating `call`.
fn run_h2load(
    args: &Args,
    grpc_addr: &str,
    name: &str,
    call: &GrpcCall,
    streams: usize,
) -> anyhow::Result<LoadOutcome> {
    let base = std::env::temp_dir().join(format!("registry-bench-{}-{name}", std::process::id()));
    let (body_path, log_path) = (base.with_extension("grpc"), base.with_extension("log"));
    std::fs::write(&body_path, &call.body)?;
    let output = std::process::Command::new(&args.h2load)
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
            "http://{grpc_addr}/tributary.registry.v1.RegistryService/{}",
            call.method
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
    grpc_addr: &str,
    server_pid: u32,
    id: i32,
) -> anyhow::Result<Option<Vec<(LoadOutcome, LoadOutcome)>>> {
    if std::process::Command::new(&args.h2load)
        .arg("--version")
        .output()
        .is_err()
    {
        println!();
        println!(
            "(gRPC via h2load skipped: {} not found; apt-get install -y nghttp2-client)",
            args.h2load.display()
        );
        return Ok(None);
    }
    let (subject, version) = (args.subjects / 2, args.versions - 1);
    let calls = [
        GrpcCall::new("GetSchema", pb::GetSchemaRequest { id }),
        GrpcCall::new(
            "GetSubjectVersion",
            pb::GetSubjectVersionRequest {
                subject: format!("subject-{subject}"),
                version: -1,
                include_deleted: false,
            },
        ),
        GrpcCall::new(
            "RegisterSchema",
            pb::RegisterSchemaRequest {
                subject: format!("subject-{subject}"),
                schema: schema_for(subject, version),
                ..Default::default()
            },
        ),
        GrpcCall::new(
            "LookupSchema",
            pb::LookupSchemaRequest {
                subject: format!("subject-{subject}"),
                schema: schema_for(subject, version),
                ..Default::default()
            },
        ),
    ];
    let mut outcomes = Vec::new();
    for (name, call) in SIDE_BY_SIDE.into_iter().zip(&calls) {
        let multiplexed = measuring_server_cpu(server_pid, || {
            run_h2load(args, grpc_addr, name, call, args.h2load_streams)
        })?;
        let single =
            measuring_server_cpu(server_pid, || run_h2load(args, grpc_addr, name, call, 1))?;
        outcomes.push((multiplexed, single));
    }
    Ok(Some(outcomes))
}

/// gRPC (h2load) and HTTP (wrk) figures of the same scenarios in one table.
fn print_side_by_side(
    args: &Args,
    grpc: Option<&[(LoadOutcome, LoadOutcome)]>,
    http: Option<&[LoadOutcome]>,
) {
    let (connections, streams) = (args.wrk_connections, args.h2load_streams);
    println!();
    println!(
        "gRPC via h2load ({} threads, {connections} connections x {streams} streams, and x 1 stream) \
         next to HTTP/1.1 keep-alive via wrk ({} threads, {connections} connections), {} s each; \
         µs CPU = the registry's CPU time per request:",
        args.wrk_threads, args.wrk_threads, args.seconds
    );
    println!();
    println!(
        "| operation         | {:>15} | p50 (ms) | p99 (ms) | µs CPU | {:>15} | p99 (ms) | µs CPU | HTTP req/s | p50 (ms) | p99 (ms) | µs CPU | gRPC/HTTP | errors |",
        format!("gRPC {connections}x{streams} req/s"),
        format!("gRPC {connections}x1 req/s"),
    );
    println!(
        "|-------------------|----------------:|---------:|---------:|-------:|----------------:|---------:|-------:|-----------:|---------:|---------:|-------:|----------:|-------:|"
    );
    let missing = LoadOutcome {
        rate: f64::NAN,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        server_cpu_us: f64::NAN,
        ..LoadOutcome::default()
    };
    for (index, name) in SIDE_BY_SIDE.into_iter().enumerate() {
        let (multiplexed, single) = grpc
            .and_then(|outcomes| outcomes.get(index).copied())
            .unwrap_or((missing, missing));
        let http = http
            .and_then(|outcomes| outcomes.get(index).copied())
            .unwrap_or(missing);
        println!(
            "| {:<17} | {:>15.0} | {:>8.2} | {:>8.2} | {:>6.1} | {:>15.0} | {:>8.2} | {:>6.1} | {:>10.0} | {:>8.2} | {:>8.2} | {:>6.1} | {:>9.2} | {:>6} |",
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

fn print_row(outcome: &Outcome) {
    let rate = outcome.requests as f64 / outcome.elapsed.as_secs_f64();
    println!(
        "| {:<22} | {:>10.0} | {:>8.2} | {:>8.2} | {:>9} | {:>6} |",
        outcome.name,
        rate,
        outcome.histogram.value_at_quantile(0.50) as f64 / 1000.0,
        outcome.histogram.value_at_quantile(0.99) as f64 / 1000.0,
        outcome.requests,
        outcome.errors
    );
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
    // Loopback, without TLS (the stack's cluster offers TLS, and sqlx's default `prefer` would
    // take it): what the reference figures were measured on. The cost of TLS to Postgres is
    // measured on its own below.
    let database_url = format!(
        "{}/{database}?sslmode=disable",
        args.admin_url
            .rsplit_once('/')
            .map_or(args.admin_url.as_str(), |(base, _)| base)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let http_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();

    let (mut registry, cold_start) = start_registry(&args, &database_url, port, http_port).await?;
    let pool = clients(&registry.addr, args.connections).await?;
    let run_for = Duration::from_secs(args.seconds);
    let total = args.subjects * args.versions;
    let (subjects, versions) = (args.subjects, args.versions);

    println!(
        "registry-bench: {} subjects x {} versions, concurrency {}, {} connections, {} s per read scenario",
        subjects, versions, args.concurrency, args.connections, args.seconds
    );
    println!();
    println!("| operation              |      req/s | p50 (ms) | p99 (ms) |  requests | errors |");
    println!("|------------------------|-----------:|---------:|---------:|----------:|-------:|");

    // register-new: load every schema; version v of every subject before v+1, so versions are in
    // order within a subject while subjects run concurrently.
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

    let get_by_id = drive(
        "get-by-id",
        &pool,
        args.concurrency,
        run_for,
        None,
        move |mut client, n| async move {
            let id = 1 + (n.wrapping_mul(7919) % max_id as usize) as i32;
            client
                .get_schema(pb::GetSchemaRequest { id })
                .await
                .map(|_| ())
        },
    )
    .await;
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

    // The reads and re-registrations again, with C load generators for both APIs.
    let pid = registry.child.id().unwrap_or(0);
    let grpc = grpc_scenarios(&args, &registry.addr, pid, max_id / 2 + 1)?;
    let http = http_scenarios(&args, &registry.http_addr, pid, max_id)?;
    print_side_by_side(&args, grpc.as_deref(), http.as_deref());

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
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let _ = registry.child.wait().await;
    let mut warm_starts = Vec::new();
    for _ in 0..3 {
        let (mut restarted, took) = start_registry(&args, &database_url, port, http_port).await?;
        warm_starts.push(took);
        let restarted_pid = restarted.child.id().unwrap_or(0);
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(restarted_pid.to_string())
            .status();
        let _ = restarted.child.wait().await;
        registry = restarted;
    }
    drop(registry);
    let tls_url = database_url.replace("sslmode=disable", "sslmode=require");
    let (mut with_tls, tls_start) = start_registry(&args, &tls_url, port, http_port).await?;
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(with_tls.child.id().unwrap_or(0).to_string())
        .status();
    let _ = with_tls.child.wait().await;

    println!();
    println!("| measure                                              | value |");
    println!("|------------------------------------------------------|------:|");
    println!("| RSS after loading {total} schemas / {subjects} subjects (MiB) | {rss_loaded:.1} |");
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
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await?;
    Ok(())
}
