//! The fault suite's shared parts: injecting faults into the stack's own processes through
//! `scripts/stack` (SIGKILL, SIGSTOP/SIGCONT, restart of a Kafka node or of PostgreSQL), how
//! long the load runs, and the figures each scenario records.
//!
//! The scenarios (`tests/chaos_*.rs`) run one at a time (`scripts/chaos`, or the test command's
//! short variants): they kill processes other tests use. A scenario that cannot find the
//! three-broker cluster (`TRIBUTARY_KAFKA_CLUSTER_BOOTSTRAP`, exported by `scripts/stack env`
//! after `scripts/stack up --brokers 3`) fails, never skips.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// The repository's root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the repository")
        .to_path_buf()
}

/// Runs `scripts/stack ARGS` (a fault: `node 2 kill`, `postgres start`, ...) and returns its
/// standard output; panics with its output when it fails.
pub fn stack(args: &[&str]) -> String {
    let output = std::process::Command::new(repo_root().join("scripts/stack"))
        .args(args)
        .output()
        .expect("scripts/stack runs");
    assert!(
        output.status.success(),
        "scripts/stack {} failed ({}):\n{}\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// [`stack`] on a blocking thread, for async tests.
pub async fn stack_async(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        stack(&args)
    })
    .await
    .expect("scripts/stack task")
}

/// The three-broker cluster's bootstrap servers.
pub fn cluster_bootstrap() -> String {
    std::env::var("TRIBUTARY_KAFKA_CLUSTER_BOOTSTRAP").unwrap_or_else(|_| {
        panic!(
            "TRIBUTARY_KAFKA_CLUSTER_BOOTSTRAP is not set: start the three-broker cluster with \
             `scripts/stack up --infra --brokers 3` and `eval \"$(scripts/stack env)\"` (scripts/chaos does both)"
        )
    })
}

/// How long each scenario drives its load (`TRIBUTARY_CHAOS_SECONDS`, default 12: the short
/// variant CI runs; `scripts/chaos --long` gives 60).
pub fn load_time() -> Duration {
    let seconds = std::env::var("TRIBUTARY_CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(12)
        .max(6);
    Duration::from_secs(seconds)
}

/// One figure of a scenario.
pub type Figure<'a> = (&'a str, String);

/// Records a scenario's figures: printed, and appended as one line
/// (`scenario<TAB>name=value ...`) to `target/chaos/results.tsv` (or
/// `$TRIBUTARY_CHAOS_RESULTS`), which `scripts/chaos` prints as a table.
pub fn record(scenario: &str, figures: &[Figure<'_>]) {
    let line = figures
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(" ");
    println!("chaos {scenario}: {line}");
    let path = results_path();
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("the chaos results file");
    writeln!(
        file,
        "{}\t{scenario}\t{line}",
        chrono_like_now(),
        scenario = scenario
    )
    .expect("write the chaos results");
}

/// Where figures go: `$TRIBUTARY_CHAOS_RESULTS`, else `target/chaos/results.tsv`.
fn results_path() -> PathBuf {
    std::env::var("TRIBUTARY_CHAOS_RESULTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let target = std::env::var("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|_| repo_root().join("target"));
            target.join("chaos/results.tsv")
        })
}

/// The time now as `YYYY-MM-DDTHH:MM:SSZ` (from `date`, to need no time crate).
fn chrono_like_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Milliseconds, for figures.
pub fn ms(duration: Duration) -> String {
    format!("{}", duration.as_millis())
}

/// Sends `signal` (e.g. "KILL", "STOP", "CONT", "TERM") to a process.
pub fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Held by a scenario for its whole run: scenarios of one test binary run one at a time
/// whatever `--test-threads` says, since each injects faults the others would feel.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    ONE_AT_A_TIME.lock().await
}

/// A new log file for a process a scenario starts, `target/chaos/logs/<name>-<n>.log`.
pub fn log_file(name: &str) -> std::fs::File {
    let dir = results_path()
        .parent()
        .map(|p| p.join("logs"))
        .unwrap_or_else(|| PathBuf::from("chaos-logs"));
    std::fs::create_dir_all(&dir).expect("the chaos log directory");
    let path = dir.join(format!("{}.log", crate::unique_name(name)));
    eprintln!("chaos: {name} logs to {}", path.display());
    std::fs::File::create(path).expect("a chaos log file")
}
