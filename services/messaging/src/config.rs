//! Typed configuration, from command-line flags or environment variables.

use std::net::SocketAddr;
use std::time::Duration;

pub use tributary_telemetry::LogFormat;

/// One librdkafka property, `key=value`. Its `Debug` hides the values of secrets
/// (`sasl.password`, `ssl.key.password`, ...), so settings can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaProperty {
    pub key: String,
    pub value: String,
}

impl KafkaProperty {
    fn is_secret(&self) -> bool {
        let key = self.key.to_ascii_lowercase();
        ["password", "secret", "key.pem", "token"]
            .iter()
            .any(|word| key.contains(word))
    }
}

impl std::fmt::Debug for KafkaProperty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_secret() {
            write!(f, "{}=***", self.key)
        } else {
            write!(f, "{}={}", self.key, self.value)
        }
    }
}

impl std::str::FromStr for KafkaProperty {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => Ok(KafkaProperty {
                key: key.trim().to_owned(),
                value: value.trim().to_owned(),
            }),
            _ => Err(format!("'{s}' is not key=value")),
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

    /// Kafka bootstrap servers, comma separated.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub kafka_bootstrap_servers: String,

    /// Extra librdkafka properties for every Kafka client, `key=value` (repeatable; the
    /// environment variable takes a comma-separated list). They override the service's defaults
    /// (e.g. `acks=all`, `enable.idempotence=true`).
    #[arg(
        long = "kafka-property",
        env = "KAFKA_PROPERTIES",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub kafka_properties: Vec<KafkaProperty>,

    /// The tributary registry's gRPC URL.
    #[arg(long, env = "REGISTRY_URL", default_value = "http://127.0.0.1:50051")]
    pub registry_url: String,

    /// How long the latest version of a subject is cached, in milliseconds.
    #[arg(long, env = "MESSAGING_LATEST_SCHEMA_TTL_MS", default_value_t = 5000)]
    pub latest_schema_ttl_ms: u64,

    /// Timeout of Kafka admin and metadata requests, in milliseconds.
    #[arg(long, env = "MESSAGING_KAFKA_TIMEOUT_MS", default_value_t = 10_000)]
    pub kafka_timeout_ms: u64,

    /// Most records of one ProduceStream waiting for their acknowledgement from Kafka.
    #[arg(long, env = "MESSAGING_PRODUCE_MAX_IN_FLIGHT", default_value_t = 1000)]
    pub produce_max_in_flight: usize,

    /// On SIGTERM, how long streams and in-flight requests may take to finish.
    #[arg(long, env = "MESSAGING_SHUTDOWN_TIMEOUT_MS", default_value_t = 10_000)]
    pub shutdown_timeout_ms: u64,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl Settings {
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }

    pub fn kafka_timeout(&self) -> Duration {
        Duration::from_millis(self.kafka_timeout_ms)
    }

    /// The value of a librdkafka property given in the settings.
    pub fn kafka_property(&self, key: &str) -> Option<&str> {
        self.kafka_properties
            .iter()
            .rev()
            .find(|p| p.key == key)
            .map(|p| p.value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn kafka_properties_parse_from_flags_and_last_one_wins() {
        let settings = Settings::try_parse_from([
            "messaging",
            "--kafka-property",
            "acks=1",
            "--kafka-property",
            "linger.ms = 5",
            "--kafka-property",
            "acks=all",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings.kafka_property("acks"), Some("all"));
        assert_eq!(settings.kafka_property("linger.ms"), Some("5"));
        assert_eq!(settings.kafka_property("missing"), None);
        assert!(Settings::try_parse_from(["messaging", "--kafka-property", "nope"]).is_err());
    }

    #[test]
    fn secret_properties_are_never_printed() {
        let secret: KafkaProperty = "sasl.password=hunter2"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(format!("{secret:?}"), "sasl.password=***");
        let plain: KafkaProperty = "acks=all".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(format!("{plain:?}"), "acks=all");
    }
}
