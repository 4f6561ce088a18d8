//! Typed configuration, from command-line flags or environment variables.
//!
//! Secrets never come only from a flag: the database URL (which may hold a password) comes from
//! `DATABASE_URL` or a file, its password may come separately from a file or the environment,
//! and the TLS and authentication settings ([`SecurityArgs`]) name files.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgConnectOptions;
use tributary_avro::Limits;
use tributary_security::Secret;
pub use tributary_security::SecurityArgs;

/// A Postgres connection URL. Its `Debug` and `Display` hide the password (in the user info and
/// in `password`/`sslpassword` query parameters), so it can never be logged by accident.
#[derive(Clone)]
pub struct DatabaseUrl(pub String);

impl DatabaseUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn redacted(&self) -> String {
        let (base, query) = match self.0.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (self.0.as_str(), None),
        };
        // postgres://user:secret@host/db -> postgres://user:***@host/db
        let mut redacted = match (base.find("://"), base.rfind('@')) {
            (Some(scheme_end), Some(at)) if at > scheme_end => {
                let credentials = &base[scheme_end + 3..at];
                match credentials.find(':') {
                    Some(colon) => format!(
                        "{}{}:***{}",
                        &base[..scheme_end + 3],
                        &credentials[..colon],
                        &base[at..]
                    ),
                    None => base.to_owned(),
                }
            }
            _ => base.to_owned(),
        };
        if let Some(query) = query {
            let parameters: Vec<String> = query
                .split('&')
                .map(|parameter| match parameter.split_once('=') {
                    Some((key, _))
                        if ["password", "sslpassword"]
                            .contains(&key.to_ascii_lowercase().as_str()) =>
                    {
                        format!("{key}=***")
                    }
                    _ => parameter.to_owned(),
                })
                .collect();
            redacted.push('?');
            redacted.push_str(&parameters.join("&"));
        }
        redacted
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

    /// Postgres connection URL (its password is never logged). Prefer the environment variable
    /// or --database-url-file: a flag's value is visible to every user of the machine.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<DatabaseUrl>,

    /// A file holding the Postgres connection URL (a Kubernetes Secret mount), instead of
    /// DATABASE_URL.
    #[arg(long, env = "DATABASE_URL_FILE")]
    pub database_url_file: Option<PathBuf>,

    /// A file holding the Postgres password, for a URL without one (or DATABASE_PASSWORD).
    #[arg(long, env = "DATABASE_PASSWORD_FILE")]
    pub database_password_file: Option<PathBuf>,

    /// Most connections in the Postgres pool.
    #[arg(long, env = "REGISTRY_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// How long a request waits for a pooled connection before failing with UNAVAILABLE.
    #[arg(long, env = "REGISTRY_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 3000)]
    pub db_acquire_timeout_ms: u64,

    /// Largest schema accepted, in bytes (larger ones get 42209).
    #[arg(long, env = "REGISTRY_MAX_SCHEMA_BYTES", default_value_t = 1024 * 1024)]
    pub max_schema_bytes: usize,

    /// The other budgets of schema work (nesting, fields, symbols, ...).
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Most connections open at once on each API listener (gRPC, HTTP); more are closed as
    /// they are accepted. Lowered at startup if the two caps do not fit below the process's
    /// open-file limit (which the registry raises to the hard limit).
    #[arg(long, env = "REGISTRY_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// Most concurrent HTTP/2 streams (requests) per connection.
    #[arg(long, env = "REGISTRY_MAX_CONCURRENT_STREAMS", default_value_t = 256)]
    pub max_concurrent_streams: u32,

    /// A connection with no request in flight for this long after its last one is closed (0:
    /// never), in milliseconds; a Watch stream is a request in flight. (A connection that has
    /// not sent a first request is closed after the header-read timeout.)
    #[arg(long, env = "REGISTRY_IDLE_TIMEOUT_MS", default_value_t = 300_000)]
    pub idle_timeout_ms: u64,

    /// Longest a new connection may take, from its accept (its TLS handshake included), to
    /// send its first request's headers, on both listeners; on HTTP/1.1, also any request's
    /// headers (and so the longest an idle keep-alive connection stays open), in milliseconds.
    #[arg(
        long,
        env = "REGISTRY_HEADER_READ_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub header_read_timeout_ms: u64,

    /// How often HTTP/2 connections are pinged to find dead peers (0: never), in milliseconds.
    #[arg(
        long,
        env = "REGISTRY_HTTP2_KEEPALIVE_INTERVAL_MS",
        default_value_t = 60_000
    )]
    pub http2_keepalive_interval_ms: u64,

    /// How long a ping may go unanswered before the connection is closed, in milliseconds.
    #[arg(
        long,
        env = "REGISTRY_HTTP2_KEEPALIVE_TIMEOUT_MS",
        default_value_t = 20_000
    )]
    pub http2_keepalive_timeout_ms: u64,

    /// Longest a request may take, reading its body included (0: unbounded), in milliseconds.
    /// Watch streams are not cut.
    #[arg(long, env = "REGISTRY_REQUEST_TIMEOUT_MS", default_value_t = 60_000)]
    pub request_timeout_ms: u64,

    /// On SIGTERM, how long in-flight requests may take to finish.
    #[arg(long, env = "REGISTRY_SHUTDOWN_TIMEOUT_MS", default_value_t = 10_000)]
    pub shutdown_timeout_ms: u64,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// TLS and authentication of the gRPC and HTTP APIs.
    #[command(flatten)]
    pub security: SecurityArgs,
}

/// The budgets of what one request may ask of the schema code (`tributary_avro::Limits`); a
/// schema over one is refused with 42209 naming the flag, a compatibility check over the work
/// budget likewise (RESOURCE_EXHAUSTED over gRPC). Stored schemas are read whatever these say.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Deepest nesting of JSON arrays and objects in a schema text (a record in a record's
    /// field adds 3); at most 256.
    #[arg(long, env = "REGISTRY_MAX_SCHEMA_DEPTH", default_value_t = Limits::default().schema_depth)]
    pub max_schema_depth: usize,

    /// Most fields of one record.
    #[arg(long, env = "REGISTRY_MAX_RECORD_FIELDS", default_value_t = Limits::default().record_fields)]
    pub max_record_fields: usize,

    /// Most symbols of one enum.
    #[arg(long, env = "REGISTRY_MAX_ENUM_SYMBOLS", default_value_t = Limits::default().enum_symbols)]
    pub max_enum_symbols: usize,

    /// Most branches of one union.
    #[arg(long, env = "REGISTRY_MAX_UNION_BRANCHES", default_value_t = Limits::default().union_branches)]
    pub max_union_branches: usize,

    /// Most named types (records, enums, fixed) in a schema and its references together.
    #[arg(long, env = "REGISTRY_MAX_NAMED_TYPES", default_value_t = Limits::default().named_types)]
    pub max_named_types: usize,

    /// Longest name, in bytes: a full name, a field name, an enum symbol or an alias.
    #[arg(long, env = "REGISTRY_MAX_NAME_BYTES", default_value_t = Limits::default().name_bytes)]
    pub max_name_bytes: usize,

    /// Most schemas one schema references, transitively, each counted once.
    #[arg(long, env = "REGISTRY_MAX_REFERENCES", default_value_t = Limits::default().references)]
    pub max_references: usize,

    /// Deepest nesting of references (a reference of a reference is 2).
    #[arg(long, env = "REGISTRY_MAX_REFERENCE_DEPTH", default_value_t = Limits::default().reference_depth)]
    pub max_reference_depth: usize,

    /// Largest precision (so also scale) of a decimal logical type.
    #[arg(long, env = "REGISTRY_MAX_DECIMAL_PRECISION", default_value_t = Limits::default().decimal_precision)]
    pub max_decimal_precision: u32,

    /// Steps one request may spend validating a schema's defaults, or checking compatibility
    /// (pairs of types compared, fields and symbols matched, over every version checked);
    /// memory follows (about 20 bytes a step at most).
    #[arg(long, env = "REGISTRY_MAX_SCHEMA_WORK", default_value_t = Limits::default().work)]
    pub max_schema_work: u64,

    /// Incompatibilities a compatibility answer lists (the others are counted); the list is
    /// also kept under 12 KiB of text.
    #[arg(long, env = "REGISTRY_MAX_INCOMPATIBILITIES", default_value_t = Limits::default().incompatibilities)]
    pub max_incompatibilities: usize,
}

impl Default for LimitArgs {
    fn default() -> Self {
        let l = Limits::default();
        LimitArgs {
            max_schema_depth: l.schema_depth,
            max_record_fields: l.record_fields,
            max_enum_symbols: l.enum_symbols,
            max_union_branches: l.union_branches,
            max_named_types: l.named_types,
            max_name_bytes: l.name_bytes,
            max_references: l.references,
            max_reference_depth: l.reference_depth,
            max_decimal_precision: l.decimal_precision,
            max_schema_work: l.work,
            max_incompatibilities: l.incompatibilities,
        }
    }
}

impl LimitArgs {
    /// The budgets, with `schema_bytes` from `--max-schema-bytes`; an error when one is above
    /// its ceiling.
    pub fn limits(&self, schema_bytes: usize) -> anyhow::Result<Limits> {
        let limits = Limits {
            schema_bytes,
            schema_depth: self.max_schema_depth,
            record_fields: self.max_record_fields,
            enum_symbols: self.max_enum_symbols,
            union_branches: self.max_union_branches,
            named_types: self.max_named_types,
            name_bytes: self.max_name_bytes,
            references: self.max_references,
            reference_depth: self.max_reference_depth,
            decimal_precision: self.max_decimal_precision,
            work: self.max_schema_work,
            incompatibilities: self.max_incompatibilities,
            ..Limits::default()
        };
        limits.check().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(limits)
    }
}

impl Settings {
    /// The budgets of schema work.
    pub fn limits(&self) -> anyhow::Result<Limits> {
        self.limits.limits(self.max_schema_bytes)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }

    /// How the API listeners treat connections (before fitting the cap below the open-file
    /// limit).
    pub fn connections(&self) -> tributary_net::ConnectionSettings {
        tributary_net::ConnectionSettings {
            max_connections: self.max_connections,
            max_concurrent_streams: self.max_concurrent_streams,
            idle_timeout: tributary_net::millis(self.idle_timeout_ms),
            keepalive_interval: tributary_net::millis(self.http2_keepalive_interval_ms),
            keepalive_timeout: Duration::from_millis(self.http2_keepalive_timeout_ms),
            request_timeout: tributary_net::millis(self.request_timeout_ms),
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms.max(1)),
        }
    }

    /// The database URL, from DATABASE_URL or its file (exactly one of them).
    pub fn database_url(&self) -> anyhow::Result<DatabaseUrl> {
        match (&self.database_url, &self.database_url_file) {
            (Some(url), None) => Ok(url.clone()),
            (None, Some(path)) => Ok(DatabaseUrl(Secret::from_file(path)?.expose().to_owned())),
            (Some(_), Some(_)) => {
                anyhow::bail!("give DATABASE_URL or DATABASE_URL_FILE, not both")
            }
            (None, None) => anyhow::bail!(
                "the Postgres URL is required: DATABASE_URL, --database-url or DATABASE_URL_FILE"
            ),
        }
    }

    /// How to connect to Postgres: the URL, plus the password from DATABASE_PASSWORD_FILE or
    /// DATABASE_PASSWORD when given. Errors never show the URL's password.
    pub fn database_options(&self) -> anyhow::Result<(PgConnectOptions, DatabaseUrl)> {
        let url = self.database_url()?;
        let options: PgConnectOptions = url.expose().parse().map_err(|_| {
            anyhow::anyhow!("the Postgres URL {url} is not valid (postgres://user@host:port/database?sslmode=...)")
        })?;
        let password =
            Secret::from_file_or_env(self.database_password_file.as_deref(), "DATABASE_PASSWORD")
                .context("cannot read the Postgres password")?;
        let options = match password {
            Some(password) => options.password(password.expose()),
            None => options,
        };
        Ok((options, url))
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
        let in_query = DatabaseUrl(
            "postgres://app@db/registry?sslmode=verify-full&password=hunter2&SSLPassword=pw2"
                .to_owned(),
        );
        assert_eq!(
            in_query.to_string(),
            "postgres://app@db/registry?sslmode=verify-full&password=***&SSLPassword=***"
        );
        let both = DatabaseUrl("postgres://a:p@ss@db/x?password=q".to_owned());
        let shown = both.to_string();
        assert!(!shown.contains("p@ss") && !shown.contains("=q"), "{shown}");
    }

    #[test]
    fn budgets_come_from_their_flags_and_depths_stay_under_their_ceilings() {
        use clap::Parser;
        let parse = |extra: &[&str]| {
            let mut args = vec!["registry", "--tls", "off", "--auth", "none"];
            args.extend_from_slice(extra);
            Settings::try_parse_from(args).unwrap_or_else(|e| panic!("{e}"))
        };
        let limits = parse(&[]).limits().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(limits, Limits::default());
        let limits = parse(&["--max-record-fields", "7", "--max-schema-bytes", "100"])
            .limits()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((limits.record_fields, limits.schema_bytes), (7, 100));
        let error = parse(&["--max-schema-depth", "300"])
            .limits()
            .expect_err("above the ceiling");
        assert!(error.to_string().contains("ceiling"), "{error}");
    }

    #[test]
    fn an_invalid_url_is_refused_without_its_password() {
        use clap::Parser;
        let settings = Settings::try_parse_from([
            "registry",
            "--database-url",
            "postgres://app:hunter2@db:notaport/registry",
            "--tls",
            "off",
            "--auth",
            "none",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let error = settings
            .database_options()
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(error.contains("is not valid"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }
}
