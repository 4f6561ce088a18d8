//! Typed configuration, from command-line flags or environment variables.
//!
//! Secrets never come only from a flag: Kafka properties can come from a properties file (any
//! character in a value) and `sasl.password` from its own file or variable; the registry
//! credentials from a file or the environment. Errors about properties name the entry, never
//! its value, and no property value is ever printed ([`KafkaProperty`]'s `Debug`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tributary_avro::Limits;
use tributary_security::Secret;
pub use tributary_security::SecurityArgs;
use tributary_security::client::{CallCredentials, ClientTlsFiles};
pub use tributary_telemetry::LogFormat;

/// One librdkafka property, `key=value`. Its `Debug` prints the key only, so settings can be
/// logged whatever the values hold.
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaProperty {
    pub key: String,
    pub value: String,
}

impl KafkaProperty {
    /// `key=value` (spaces around both trimmed), or `None`.
    pub fn parse(entry: &str) -> Option<Self> {
        let (key, value) = entry.split_once('=')?;
        let key = key.trim();
        (!key.is_empty()).then(|| KafkaProperty {
            key: key.to_owned(),
            value: value.trim().to_owned(),
        })
    }
}

impl std::fmt::Debug for KafkaProperty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}=***", self.key)
    }
}

/// Raw text of a setting holding Kafka properties, parsed after the command line so that no
/// parse error of the command-line parser ever prints it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RawProperties(pub String);

impl std::fmt::Debug for RawProperties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::str::FromStr for RawProperties {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// `KAFKA_PROPERTIES`: `k=v,k=v`, where `\,` is a comma inside a value and `\\` a backslash.
fn split_property_list(list: &str) -> Vec<String> {
    let mut entries = vec![String::new()];
    let mut chars = list.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next @ (',' | '\\')) => entries.last_mut().map_or((), |e| e.push(next)),
                Some(next) => {
                    if let Some(entry) = entries.last_mut() {
                        entry.push('\\');
                        entry.push(next);
                    }
                }
                None => entries.last_mut().map_or((), |e| e.push('\\')),
            },
            ',' => entries.push(String::new()),
            c => entries.last_mut().map_or((), |e| e.push(c)),
        }
    }
    entries.retain(|entry| !entry.trim().is_empty());
    entries
}

/// A properties file: `key=value` (or `key: value`) lines, `#` and `!` comments; a value is
/// everything after the separator but leading spaces, taken literally.
fn parse_properties_file(path: &Path) -> anyhow::Result<Vec<KafkaProperty>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the Kafka properties file {}", path.display()))?;
    let mut properties = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        let separator = trimmed
            .find(['=', ':'])
            .with_context(|| format!("{} line {} is not key=value", path.display(), index + 1))?;
        let key = trimmed[..separator].trim();
        anyhow::ensure!(
            !key.is_empty(),
            "{} line {} has no key",
            path.display(),
            index + 1
        );
        properties.push(KafkaProperty {
            key: key.to_owned(),
            value: trimmed[separator + 1..].trim_start().to_owned(),
        });
    }
    Ok(properties)
}

/// How the messaging service reaches the registry, besides its URL.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RegistryClientArgs {
    /// PEM CA bundle the registry's certificate is verified against (https:// URLs; default:
    /// the webpki roots). Reloaded when it changes.
    #[arg(long, env = "REGISTRY_CA_FILE")]
    pub registry_ca_file: Option<PathBuf>,

    /// PEM client certificate presented to the registry (mTLS).
    #[arg(
        long,
        env = "REGISTRY_CLIENT_CERT_FILE",
        requires = "registry_client_key_file"
    )]
    pub registry_client_cert_file: Option<PathBuf>,

    /// PEM key of the client certificate.
    #[arg(
        long,
        env = "REGISTRY_CLIENT_KEY_FILE",
        requires = "registry_client_cert_file"
    )]
    pub registry_client_key_file: Option<PathBuf>,

    /// User name for basic authentication to the registry.
    #[arg(long, env = "REGISTRY_USERNAME")]
    pub registry_username: Option<String>,

    /// File holding the registry password (or the REGISTRY_PASSWORD variable).
    #[arg(long, env = "REGISTRY_PASSWORD_FILE")]
    pub registry_password_file: Option<PathBuf>,

    /// File holding a bearer token for the registry, re-read when it changes.
    #[arg(long, env = "REGISTRY_BEARER_TOKEN_FILE")]
    pub registry_bearer_token_file: Option<PathBuf>,
}

impl RegistryClientArgs {
    /// The TLS files (`None` when none is given).
    pub fn tls_files(&self) -> Option<ClientTlsFiles> {
        let files = ClientTlsFiles {
            ca: self.registry_ca_file.clone(),
            identity: self
                .registry_client_cert_file
                .clone()
                .zip(self.registry_client_key_file.clone()),
        };
        (!files.is_empty()).then_some(files)
    }

    /// The credentials sent with every registry call.
    pub fn credentials(&self, reload_interval: Duration) -> anyhow::Result<CallCredentials> {
        let password =
            Secret::from_file_or_env(self.registry_password_file.as_deref(), "REGISTRY_PASSWORD")
                .context("cannot read the registry password")?;
        match (
            &self.registry_username,
            password,
            &self.registry_bearer_token_file,
        ) {
            (Some(user), Some(password), None) => CallCredentials::basic(user, &password),
            (None, None, Some(path)) => CallCredentials::bearer_file(path.clone(), reload_interval),
            (None, None, None) => Ok(CallCredentials::None),
            (Some(_), None, _) => anyhow::bail!(
                "REGISTRY_USERNAME is set but no password: give REGISTRY_PASSWORD_FILE or REGISTRY_PASSWORD"
            ),
            (None, Some(_), _) => {
                anyhow::bail!("a registry password is given but no REGISTRY_USERNAME")
            }
            (Some(_), Some(_), Some(_)) => anyhow::bail!(
                "give the registry basic credentials or a bearer token file, not both"
            ),
        }
    }
}

/// The messaging service's settings.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "messaging",
    version,
    about = "tributary messaging: produce to and consume from Kafka over gRPC, Avro through the tributary registry"
)]
pub struct Settings {
    /// Address the gRPC API listens on (port 0 picks a free port).
    #[arg(long, env = "MESSAGING_GRPC_ADDR", default_value = "0.0.0.0:50052")]
    pub grpc_addr: SocketAddr,

    /// Address the Prometheus `/metrics` endpoint listens on (port 0 picks a free port).
    #[arg(long, env = "MESSAGING_METRICS_ADDR", default_value = "0.0.0.0:9465")]
    pub metrics_addr: SocketAddr,

    /// Address the Kafka REST Proxy compatible HTTP API listens on (port 0 picks a free port).
    /// It serves the same authentication, authorization and limits as the gRPC API.
    #[arg(long, env = "MESSAGING_REST_ADDR", default_value = "0.0.0.0:8082")]
    pub rest_addr: SocketAddr,

    /// The URL clients reach this replica's REST API at, for the `base_uri` of the consumer
    /// instances it creates (default: the scheme and `Host` of the request that creates one).
    /// Behind a load balancer, give each replica its own reachable URL, as the REST Proxy's
    /// `advertised.listeners`.
    #[arg(long, env = "MESSAGING_REST_ADVERTISED_URL")]
    pub rest_advertised_url: Option<String>,

    /// A REST consumer instance unused for this long is closed, in milliseconds (the REST
    /// Proxy's `consumer.instance.timeout.ms`).
    #[arg(
        long,
        env = "MESSAGING_CONSUMER_INSTANCE_TIMEOUT_MS",
        default_value_t = 300_000
    )]
    pub consumer_instance_timeout_ms: u64,

    /// This replica's name, part of the id of every REST consumer instance it names itself
    /// (default: the host name, which is the pod's name on Kubernetes).
    #[arg(long, env = "MESSAGING_REPLICA_ID")]
    pub replica_id: Option<String>,

    /// Kafka bootstrap servers, comma separated.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub kafka_bootstrap_servers: String,

    /// An extra librdkafka property for every Kafka client, `key=value` (repeatable). Properties
    /// override the service's defaults; weakening the producer's durability (`acks`,
    /// `enable.idempotence`) needs --kafka-allow-weaker-durability. Put secrets in
    /// --kafka-properties-file instead: flags are visible to every user of the machine.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    pub kafka_property_flags: Vec<RawProperties>,

    /// Extra librdkafka properties, `key=value,key=value` (`\,` is a comma inside a value).
    #[arg(
        long = "kafka-properties",
        env = "KAFKA_PROPERTIES",
        hide_env_values = true
    )]
    pub kafka_properties_list: Option<RawProperties>,

    /// A file of librdkafka properties, `key=value` lines (values taken literally, any
    /// character), e.g. a Kubernetes Secret holding `sasl.password`.
    #[arg(long, env = "KAFKA_PROPERTIES_FILE")]
    pub kafka_properties_file: Option<PathBuf>,

    /// A file holding `sasl.password` (or the KAFKA_SASL_PASSWORD variable).
    #[arg(long, env = "KAFKA_SASL_PASSWORD_FILE")]
    pub kafka_sasl_password_file: Option<PathBuf>,

    /// Allow Kafka properties that make the producer less durable than `acks=all` with
    /// idempotence (records acknowledged and then lost, or written twice).
    #[arg(long, env = "KAFKA_ALLOW_WEAKER_DURABILITY", default_value_t = false)]
    pub kafka_allow_weaker_durability: bool,

    /// The tributary registry's gRPC URL: `https://` speaks TLS (never falling back to
    /// cleartext), `http://` does not.
    #[arg(long, env = "REGISTRY_URL", default_value = "http://127.0.0.1:50051")]
    pub registry_url: String,

    /// TLS and credentials towards the registry.
    #[command(flatten)]
    pub registry_client: RegistryClientArgs,

    /// How long the latest version of a subject is cached, in milliseconds.
    #[arg(long, env = "MESSAGING_LATEST_SCHEMA_TTL_MS", default_value_t = 5000)]
    pub latest_schema_ttl_ms: u64,

    /// While the registry cannot be reached, a subject's last known latest version keeps
    /// being used for up to this long after it was fetched, in milliseconds (0: never past
    /// the TTL). Counted in `messaging.schema.stale_latest_lookups`.
    #[arg(
        long,
        env = "MESSAGING_LATEST_SCHEMA_MAX_STALE_MS",
        default_value_t = 3_600_000
    )]
    pub latest_schema_max_stale_ms: u64,

    /// Timeout of Kafka admin and metadata requests, in milliseconds.
    #[arg(long, env = "MESSAGING_KAFKA_TIMEOUT_MS", default_value_t = 10_000)]
    pub kafka_timeout_ms: u64,

    /// How long a record may wait for Kafka's acknowledgement (retries included) before it
    /// fails with OUTCOME_UNKNOWN, in milliseconds: librdkafka's `message.timeout.ms`, unless
    /// KAFKA_PROPERTIES sets that. librdkafka's default, 300 s, would leave clients without an
    /// answer for five minutes of a Kafka outage.
    #[arg(
        long,
        env = "MESSAGING_DELIVERY_TIMEOUT_MS",
        default_value_t = 30_000,
        value_parser = clap::value_parser!(u64).range(1..=2_147_483_647)
    )]
    pub delivery_timeout_ms: u64,

    /// Most records of one ProduceStream waiting for their acknowledgement from Kafka.
    #[arg(long, env = "MESSAGING_PRODUCE_MAX_IN_FLIGHT", default_value_t = 1000)]
    pub produce_max_in_flight: usize,

    /// Budgets of schema work: reader and inline schemas, JSON <-> Avro.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Most Consume streams open at once; more are refused with RESOURCE_EXHAUSTED. Each holds
    /// a Kafka consumer of its own: librdkafka's threads (about four) and descriptors (about
    /// nine, more with more brokers). Lowered at startup if they do not fit below the
    /// process's open-file limit next to the connection cap.
    #[arg(long, env = "MESSAGING_MAX_CONSUME_STREAMS", default_value_t = 512)]
    pub max_consume_streams: usize,

    /// Most connections open at once on the gRPC listener; more are closed as they are
    /// accepted. Lowered at startup if it does not fit below the open-file limit (which the
    /// service raises to the hard limit).
    #[arg(long, env = "MESSAGING_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// Most concurrent HTTP/2 streams (calls, Consume and ProduceStream streams included) per
    /// connection.
    #[arg(long, env = "MESSAGING_MAX_CONCURRENT_STREAMS", default_value_t = 1024)]
    pub max_concurrent_streams: u32,

    /// A connection with no call in flight for this long after its last one is closed (0:
    /// never), in milliseconds; a Consume stream, however quiet, is a call in flight. (A
    /// connection that has not sent a first call is closed after the header-read timeout.)
    #[arg(long, env = "MESSAGING_IDLE_TIMEOUT_MS", default_value_t = 300_000)]
    pub idle_timeout_ms: u64,

    /// Longest a new connection may take, from its accept (its TLS handshake included), to
    /// send its first call's headers, in milliseconds.
    #[arg(
        long,
        env = "MESSAGING_HEADER_READ_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub header_read_timeout_ms: u64,

    /// How often HTTP/2 connections are pinged to find dead peers (0: never), in milliseconds.
    #[arg(
        long,
        env = "MESSAGING_HTTP2_KEEPALIVE_INTERVAL_MS",
        default_value_t = 60_000
    )]
    pub http2_keepalive_interval_ms: u64,

    /// How long a ping may go unanswered before the connection is closed, in milliseconds.
    #[arg(
        long,
        env = "MESSAGING_HTTP2_KEEPALIVE_TIMEOUT_MS",
        default_value_t = 20_000
    )]
    pub http2_keepalive_timeout_ms: u64,

    /// Longest a unary call may take, reading its request included (0: unbounded), in
    /// milliseconds; streams are not limited. A Produce is answered before it (records not yet
    /// acknowledged then fail with OUTCOME_UNKNOWN), so keep it above the delivery timeout.
    #[arg(long, env = "MESSAGING_REQUEST_TIMEOUT_MS", default_value_t = 330_000)]
    pub request_timeout_ms: u64,

    /// On SIGTERM, how long streams and in-flight requests may take to finish.
    #[arg(long, env = "MESSAGING_SHUTDOWN_TIMEOUT_MS", default_value_t = 10_000)]
    pub shutdown_timeout_ms: u64,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// TLS and authentication of the gRPC API.
    #[command(flatten)]
    pub security: SecurityArgs,
}

/// The budgets of what one request may ask of the schema code (`tributary_avro::Limits`): the
/// schemas a client gives (a consumer's reader schema, a producer's inline schema) are held to
/// them (INVALID_ARGUMENT naming the flag); schemas the registry serves were accepted there and
/// are read whatever these say, except for the nesting of data and the work of checking a
/// reader schema (RESOURCE_EXHAUSTED).
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Largest reader or inline schema, in bytes.
    #[arg(long, env = "MESSAGING_MAX_SCHEMA_BYTES", default_value_t = Limits::default().schema_bytes)]
    pub max_schema_bytes: usize,

    /// Deepest nesting of JSON arrays and objects in a schema text (a record in a record's
    /// field adds 3); at most 256.
    #[arg(long, env = "MESSAGING_MAX_SCHEMA_DEPTH", default_value_t = Limits::default().schema_depth)]
    pub max_schema_depth: usize,

    /// Most fields of one record.
    #[arg(long, env = "MESSAGING_MAX_RECORD_FIELDS", default_value_t = Limits::default().record_fields)]
    pub max_record_fields: usize,

    /// Most symbols of one enum.
    #[arg(long, env = "MESSAGING_MAX_ENUM_SYMBOLS", default_value_t = Limits::default().enum_symbols)]
    pub max_enum_symbols: usize,

    /// Most branches of one union.
    #[arg(long, env = "MESSAGING_MAX_UNION_BRANCHES", default_value_t = Limits::default().union_branches)]
    pub max_union_branches: usize,

    /// Most named types (records, enums, fixed) in one schema.
    #[arg(long, env = "MESSAGING_MAX_NAMED_TYPES", default_value_t = Limits::default().named_types)]
    pub max_named_types: usize,

    /// Longest name, in bytes: a full name, a field name, an enum symbol or an alias.
    #[arg(long, env = "MESSAGING_MAX_NAME_BYTES", default_value_t = Limits::default().name_bytes)]
    pub max_name_bytes: usize,

    /// Most schemas a registry schema references, transitively, each fetched once.
    #[arg(long, env = "MESSAGING_MAX_REFERENCES", default_value_t = Limits::default().references)]
    pub max_references: usize,

    /// Deepest nesting of the references of a registry schema.
    #[arg(long, env = "MESSAGING_MAX_REFERENCE_DEPTH", default_value_t = Limits::default().reference_depth)]
    pub max_reference_depth: usize,

    /// Largest precision (so also scale) of a decimal logical type.
    #[arg(long, env = "MESSAGING_MAX_DECIMAL_PRECISION", default_value_t = Limits::default().decimal_precision)]
    pub max_decimal_precision: u32,

    /// Steps one schema may take to validate its defaults, and a reader schema to be checked
    /// against a writer's (pairs of types compared, fields and symbols matched).
    #[arg(long, env = "MESSAGING_MAX_SCHEMA_WORK", default_value_t = Limits::default().work)]
    pub max_schema_work: u64,

    /// Deepest nesting of a key or value, in JSON (producing) and in Avro (consuming); at
    /// most 128.
    #[arg(long, env = "MESSAGING_MAX_JSON_DEPTH", default_value_t = Limits::default().json_depth)]
    pub max_json_depth: usize,
}

impl Default for LimitArgs {
    fn default() -> Self {
        let l = Limits::default();
        LimitArgs {
            max_schema_bytes: l.schema_bytes,
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
            max_json_depth: l.json_depth,
        }
    }
}

impl LimitArgs {
    /// The budgets; an error when one is above its ceiling.
    pub fn limits(&self) -> anyhow::Result<Limits> {
        let limits = Limits {
            schema_bytes: self.max_schema_bytes,
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
            json_depth: self.max_json_depth,
            ..Limits::default()
        };
        limits.check().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(limits)
    }
}

impl Settings {
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }

    /// This replica's name: `--replica-id`, else the host name, else "messaging".
    pub fn replica_id(&self) -> String {
        let named = self.replica_id.clone().or_else(|| {
            std::env::var("HOSTNAME").ok().or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|name| name.trim().to_owned())
            })
        });
        named
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "messaging".to_owned())
    }

    pub fn kafka_timeout(&self) -> Duration {
        Duration::from_millis(self.kafka_timeout_ms)
    }

    /// How the gRPC listener treats connections (before fitting the cap below the open-file
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

    /// Every librdkafka property given, in the order they apply (a later one wins): the
    /// properties file, KAFKA_PROPERTIES, --kafka-property flags, then `sasl.password` from its
    /// file or variable. Refuses properties that weaken the producer's durability unless
    /// allowed.
    pub fn kafka_properties(&self) -> anyhow::Result<Vec<KafkaProperty>> {
        let mut properties = match &self.kafka_properties_file {
            Some(path) => parse_properties_file(path)?,
            None => Vec::new(),
        };
        if let Some(list) = &self.kafka_properties_list {
            for (index, entry) in split_property_list(&list.0).iter().enumerate() {
                properties.push(KafkaProperty::parse(entry).with_context(|| {
                    format!(
                        "KAFKA_PROPERTIES entry {} is not key=value (write a comma inside a value as \\,)",
                        index + 1
                    )
                })?);
            }
        }
        for (index, flag) in self.kafka_property_flags.iter().enumerate() {
            properties.push(KafkaProperty::parse(&flag.0).with_context(|| {
                format!("--kafka-property number {} is not key=value", index + 1)
            })?);
        }
        if let Some(password) = Secret::from_file_or_env(
            self.kafka_sasl_password_file.as_deref(),
            "KAFKA_SASL_PASSWORD",
        )
        .context("cannot read the Kafka SASL password")?
        {
            properties.push(KafkaProperty {
                key: "sasl.password".to_owned(),
                value: password.expose().to_owned(),
            });
        }
        if !self.kafka_allow_weaker_durability {
            check_durability(&properties)?;
        }
        Ok(properties)
    }
}

/// The value a property list ends up with for `key` (the last one given).
pub fn property<'a>(properties: &'a [KafkaProperty], key: &str) -> Option<&'a str> {
    properties
        .iter()
        .rev()
        .find(|p| p.key == key)
        .map(|p| p.value.as_str())
}

/// Refuses properties that would make an acknowledged record losable or duplicable.
fn check_durability(properties: &[KafkaProperty]) -> anyhow::Result<()> {
    for key in ["acks", "request.required.acks"] {
        if let Some(acks) = property(properties, key)
            && !matches!(acks.trim(), "all" | "-1")
        {
            anyhow::bail!(
                "the Kafka property {key}={acks} would acknowledge records before every in-sync replica has them; \
                 the service produces with acks=all (pass --kafka-allow-weaker-durability to allow it)"
            );
        }
    }
    if let Some(idempotence) = property(properties, "enable.idempotence")
        && idempotence.trim() != "true"
    {
        anyhow::bail!(
            "the Kafka property enable.idempotence={idempotence} would let retries write records twice or out of order; \
             the service produces idempotently (pass --kafka-allow-weaker-durability to allow it)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// Settings from `args` alone: what the environment says about Kafka properties (e.g. the
    /// stack's KAFKA_SASL_PASSWORD_FILE, exported by `scripts/stack env`) is dropped.
    fn parse(args: &[&str]) -> Settings {
        let mut all = vec!["messaging"];
        all.extend_from_slice(args);
        let mut settings = Settings::try_parse_from(all).unwrap_or_else(|e| panic!("{e}"));
        if !args.contains(&"--kafka-sasl-password-file") {
            settings.kafka_sasl_password_file = None;
        }
        if !args.contains(&"--kafka-properties") {
            settings.kafka_properties_list = None;
        }
        if !args.contains(&"--kafka-properties-file") {
            settings.kafka_properties_file = None;
        }
        settings
    }

    #[test]
    fn budgets_come_from_their_flags_and_depths_stay_under_their_ceilings() {
        let limits = parse(&[]).limits.limits().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(limits, Limits::default());
        let limits = parse(&["--max-schema-bytes", "100", "--max-json-depth", "8"])
            .limits
            .limits()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((limits.schema_bytes, limits.json_depth), (100, 8));
        let error = parse(&["--max-json-depth", "129"])
            .limits
            .limits()
            .expect_err("above the ceiling");
        assert!(error.to_string().contains("ceiling"), "{error}");
    }

    fn error_of(settings: &Settings) -> String {
        settings
            .kafka_properties()
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default()
    }

    #[test]
    fn kafka_properties_merge_in_order_and_the_last_one_wins() {
        let settings = parse(&[
            "--kafka-properties",
            "linger.ms=5,sasl.password=pa\\,ss word\\\\",
            "--kafka-property",
            "linger.ms = 7",
        ]);
        let properties = settings
            .kafka_properties()
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(property(&properties, "linger.ms"), Some("7"));
        assert_eq!(property(&properties, "sasl.password"), Some("pa,ss word\\"));
        assert_eq!(property(&properties, "missing"), None);
    }

    #[test]
    fn a_properties_file_takes_any_character_and_errors_never_show_values() {
        let dir = std::env::temp_dir().join(format!("tributary-props-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("kafka.properties");
        std::fs::write(
            &path,
            "# comment\nsecurity.protocol=SASL_SSL\nsasl.password = a,b c=d:e#f\n! other\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let settings = parse(&["--kafka-properties-file", path.to_str().unwrap_or_default()]);
        let properties = settings
            .kafka_properties()
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(property(&properties, "sasl.password"), Some("a,b c=d:e#f"));
        assert_eq!(property(&properties, "security.protocol"), Some("SASL_SSL"));

        let broken = parse(&["--kafka-properties", "acks=all,hunter2-ZQX"]);
        let error = error_of(&broken);
        assert!(error.contains("entry 2 is not key=value"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        let broken = parse(&["--kafka-property", "hunter2-ZQX"]);
        let error = error_of(&broken);
        assert!(
            error.contains("number 1") && !error.contains("hunter2"),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn property_values_are_never_printed() {
        let secret = KafkaProperty::parse("sasl.password=hunter2").unwrap_or_else(|| panic!());
        assert_eq!(format!("{secret:?}"), "sasl.password=***");
        let settings = parse(&["--kafka-properties", "sasl.password=hunter2"]);
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn weaker_durability_is_refused_unless_allowed() {
        for weak in [
            "acks=1",
            "acks=0",
            "request.required.acks=1",
            "enable.idempotence=false",
        ] {
            let settings = parse(&["--kafka-property", weak]);
            let error = error_of(&settings);
            assert!(
                error.contains("--kafka-allow-weaker-durability"),
                "{weak}: {error}"
            );
            let allowed = parse(&["--kafka-property", weak, "--kafka-allow-weaker-durability"]);
            assert!(allowed.kafka_properties().is_ok(), "{weak} allowed");
        }
        assert!(
            parse(&["--kafka-property", "acks=-1"])
                .kafka_properties()
                .is_ok()
        );
        assert!(
            parse(&["--kafka-property", "acks=all"])
                .kafka_properties()
                .is_ok()
        );
    }
}
