//! The `messaging` binary: parse settings, set up logging and telemetry, build, run until SIGTERM,
//! flush telemetry. `messaging hash-password [--user NAME]` makes a users file line instead.

use std::time::Duration;

use clap::Parser;
use tributary_messaging::{Application, Settings, shutdown_signal};

/// jemalloc as the process's allocator, for librdkafka's C allocations too (the crate's
/// unprefixed `malloc`): producing, glibc's malloc spent 12% of the service's time, much of it in
/// lock waits between librdkafka's threads and the runtime's (docs/benchmarks/alternatives.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The log filter when `RUST_LOG` is not set.
const DEFAULT_LOG_FILTER: &str = "info,rdkafka=warn,h2=warn,tower=warn,rustls=error";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<_> = std::env::args_os().collect();
    if let Some(outcome) = tributary_security::config::hash_password_tool(&args) {
        return outcome;
    }
    let settings = Settings::parse();
    let telemetry = tributary_telemetry::init(
        "tributary-messaging",
        settings.log_format,
        DEFAULT_LOG_FILTER,
    );
    let result = match Application::build(&settings).await {
        Ok(application) => application.run_until_stopped(shutdown_signal()).await,
        Err(error) => Err(error),
    };
    telemetry.shutdown(Duration::from_secs(5)).await;
    result
}
