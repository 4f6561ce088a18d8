//! Typed configuration, from command-line flags or environment variables.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// A Postgres connection URL. Its `Debug` and `Display` hide the password, so it can never be
/// logged by accident.
#[derive(Clone)]
pub struct DatabaseUrl(pub String);

impl DatabaseUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn redacted(&self) -> String {
        // postgres://user:secret@host/db -> postgres://user:***@host/db
        match (self.0.find("://"), self.0.rfind('@')) {
            (Some(scheme_end), Some(at)) if at > scheme_end => {
                let credentials = &self.0[scheme_end + 3..at];
                match credentials.find(':') {
                    Some(colon) => format!(
                        "{}{}:***{}",
                        &self.0[..scheme_end + 3],
                        &credentials[..colon],
                        &self.0[at..]
                    ),
                    None => self.0.clone(),
                }
            }
            _ => self.0.clone(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(DatabaseUrl(s.to_owned()))
    }
}

pub use tributary_telemetry::LogFormat;

/// The registry's settings.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "registry",
    version,
    about = "tributary schema registry: Avro schemas over gRPC and Confluent's HTTP API, stored in Postgres"
)]
pub struct Settings {
    /// Address the gRPC API listens on (port 0 picks a free port).
    #[arg(long, env = "REGISTRY_GRPC_ADDR", default_value = "0.0.0.0:50051")]
    pub grpc_addr: SocketAddr,

    /// Address the Confluent-compatible HTTP API listens on (port 0 picks a free port).
    #[arg(long, env = "REGISTRY_HTTP_ADDR", default_value = "0.0.0.0:8081")]
    pub http_addr: SocketAddr,

    /// Address the Prometheus `/metrics` endpoint listens on (port 0 picks a free port).
    #[arg(long, env = "REGISTRY_METRICS_ADDR", default_value = "0.0.0.0:9464")]
    pub metrics_addr: SocketAddr,

    /// Threads serving gRPC connections, each running its own single-threaded runtime
    /// (connections are spread over them); 0 means one per CPU core.
    #[arg(long, env = "REGISTRY_GRPC_THREADS", default_value_t = 0)]
    pub grpc_threads: usize,

    /// Threads serving HTTP API connections, each running its own single-threaded runtime
    /// (connections are spread over them); 0 means one per CPU core.
    #[arg(long, env = "REGISTRY_HTTP_THREADS", default_value_t = 0)]
    pub http_threads: usize,

    /// Postgres connection URL (its password is never logged).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: DatabaseUrl,

    /// Most connections in the Postgres pool.
    #[arg(long, env = "REGISTRY_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// How long a request waits for a pooled connection before failing with UNAVAILABLE.
    #[arg(long, env = "REGISTRY_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 3000)]
    pub db_acquire_timeout_ms: u64,

    /// Largest schema accepted, in bytes (larger ones get 42209).
    #[arg(long, env = "REGISTRY_MAX_SCHEMA_BYTES", default_value_t = 1024 * 1024)]
    pub max_schema_bytes: usize,

    /// On SIGTERM, how long in-flight requests may take to finish.
    #[arg(long, env = "REGISTRY_SHUTDOWN_TIMEOUT_MS", default_value_t = 10_000)]
    pub shutdown_timeout_ms: u64,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl Settings {
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_password_is_never_printed() {
        let url = DatabaseUrl("postgres://app:hunter2@db:5432/registry".to_owned());
        assert_eq!(url.to_string(), "postgres://app:***@db:5432/registry");
        assert!(!format!("{url:?}").contains("hunter2"));
        let no_password = DatabaseUrl("postgres://app@db/registry".to_owned());
        assert_eq!(no_password.to_string(), "postgres://app@db/registry");
    }
}
