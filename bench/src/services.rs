//! The services a bench measures, started by the bench itself: a registry on a fresh Postgres
//! database and a messaging service pointed at it and at the stack's Kafka, both secured as a
//! [`Mode`] says, with the bench's own CA and user ([`Pki`]). Shared by `messaging-bench` and
//! `alternatives-bench`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use sqlx::Connection;

use crate::security::{AuthChannel, Mode, Pki, SECURITY_ENV, USER};

/// A free TCP port on the loopback interface (free when asked; a service binds it right after).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until the service at `addr` is SERVING (health is answered without credentials) and
/// returns a channel to it that calls with the mode's credentials (TLS in the TLS modes).
pub async fn wait_serving(
    addr: &str,
    what: &str,
    max_frame_size: u32,
    mode: Mode,
    pki: &Pki,
) -> anyhow::Result<AuthChannel> {
    let started = Instant::now();
    loop {
        let channel = mode.channel(pki, addr, |endpoint| {
            endpoint.max_frame_size(max_frame_size)
        })?;
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        if let Ok(response) = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            && response.into_inner().status == 1
        {
            return Ok(channel);
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("{what} not SERVING after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fresh database on the stack's Postgres, for the registry of one run; [`Database::drop`]
/// removes it.
#[derive(Debug)]
pub struct Database {
    admin: sqlx::PgConnection,
    name: String,
    /// The URL of the database.
    pub url: String,
}

impl Database {
    /// Creates database `name` through the admin URL.
    pub async fn create(admin_url: &str, name: &str) -> anyhow::Result<Self> {
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .context("cannot reach Postgres; run scripts/stack up --infra")?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await?;
        let url = format!(
            "{}/{name}",
            admin_url
                .rsplit_once('/')
                .map_or(admin_url, |(base, _)| base)
        );
        Ok(Self {
            admin,
            name: name.to_owned(),
            url,
        })
    }

    /// Drops the database (after the registry using it has stopped, or forcibly).
    pub async fn drop(mut self) -> anyhow::Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut self.admin)
        .await?;
        Ok(())
    }
}

/// The flags every bench that starts the services takes: the binaries, the stack's Postgres and
/// Kafka.
#[derive(Debug, Clone, clap::Args)]
pub struct StackArgs {
    /// The registry binary to start.
    #[arg(long, default_value = "target/release/registry")]
    pub registry_bin: PathBuf,
    /// The messaging binary to start.
    #[arg(long, default_value = "target/release/messaging")]
    pub messaging_bin: PathBuf,
    /// Admin URL of the stack's Postgres; a fresh database is created on it.
    #[arg(
        long,
        env = "TRIBUTARY_PG_ADMIN_URL",
        default_value = "postgres://postgres@127.0.0.1:55432/postgres"
    )]
    pub admin_url: String,
    /// The stack's Kafka.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:59092"
    )]
    pub bootstrap_servers: String,
}

/// How to start the services.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// The registry binary.
    pub registry_bin: PathBuf,
    /// The messaging binary.
    pub messaging_bin: PathBuf,
    /// The registry's database.
    pub database_url: String,
    /// The stack's Kafka, for the messaging service.
    pub bootstrap_servers: String,
    /// librdkafka properties of the messaging service (`KAFKA_PROPERTIES`).
    pub kafka_properties: Vec<(String, String)>,
    /// The messaging service's `MESSAGING_PRODUCE_MAX_IN_FLIGHT`.
    pub produce_max_in_flight: usize,
    /// The largest HTTP/2 frame the bench's gRPC clients accept.
    pub http2_max_frame_size: u32,
    /// How both services are secured.
    pub mode: Mode,
    /// More environment of the messaging service (e.g. `LD_PRELOAD` of another allocator), set
    /// last.
    pub messaging_env: Vec<(String, String)>,
}

/// A registry and a messaging service pointed at it, both stopped when this is dropped.
#[derive(Debug)]
pub struct Services {
    /// The registry's gRPC address (`host:port`).
    pub registry_addr: String,
    /// The registry's Confluent-compatible HTTP API (`host:port`).
    pub registry_http_addr: String,
    /// The messaging service's gRPC address.
    pub messaging_addr: String,
    /// The messaging service's REST Proxy API (`host:port`).
    pub messaging_rest_addr: String,
    /// A channel to the registry, with the mode's credentials.
    pub registry: AuthChannel,
    /// A channel to the messaging service, with the mode's credentials.
    pub messaging: AuthChannel,
    /// The messaging service's process id (for its CPU time and memory).
    pub messaging_pid: Option<u32>,
    _registry: tokio::process::Child,
    _messaging: tokio::process::Child,
}

impl Services {
    /// Starts the registry, waits for it, starts the messaging service, waits for it.
    pub async fn start(options: &ServiceOptions, pki: &Pki) -> anyhow::Result<Self> {
        let mode = options.mode;
        // The registry, on the fresh database.
        let registry_addr = format!("127.0.0.1:{}", free_port()?);
        let registry_http_addr = format!("127.0.0.1:{}", free_port()?);
        let mut registry_command = tokio::process::Command::new(&options.registry_bin);
        for name in SECURITY_ENV {
            registry_command.env_remove(name);
        }
        let registry_child = registry_command
            .envs(mode.server_env(pki))
            .env("DATABASE_URL", &options.database_url)
            .env("REGISTRY_GRPC_ADDR", &registry_addr)
            .env("REGISTRY_HTTP_ADDR", &registry_http_addr)
            .env("REGISTRY_METRICS_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", options.registry_bin.display()))?;
        let registry = wait_serving(
            &registry_addr,
            "registry",
            options.http2_max_frame_size,
            mode,
            pki,
        )
        .await?;

        // The messaging service, pointed at it (over TLS as the bench's user, unless
        // plaintext) and at the stack's Kafka.
        let messaging_addr = format!("127.0.0.1:{}", free_port()?);
        let messaging_rest_addr = format!("127.0.0.1:{}", free_port()?);
        let mut messaging_command = tokio::process::Command::new(&options.messaging_bin);
        for name in SECURITY_ENV {
            messaging_command.env_remove(name);
        }
        messaging_command.envs(mode.server_env(pki));
        if mode.is_tls() {
            messaging_command
                .env("REGISTRY_CA_FILE", &pki.ca)
                .env("REGISTRY_USERNAME", USER)
                .env("REGISTRY_PASSWORD_FILE", &pki.password_file);
        }
        if !options.kafka_properties.is_empty() {
            messaging_command.env(
                "KAFKA_PROPERTIES",
                options
                    .kafka_properties
                    .iter()
                    .map(|(key, value)| format!("{key}={value}"))
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // As the image and scripts/stack run it (README).
            messaging_command.env("MALLOC_ARENA_MAX", "2");
        }
        let messaging_child = messaging_command
            .env("MESSAGING_GRPC_ADDR", &messaging_addr)
            .env("MESSAGING_METRICS_ADDR", "127.0.0.1:0")
            .env("MESSAGING_REST_ADDR", &messaging_rest_addr)
            .env("KAFKA_BOOTSTRAP_SERVERS", &options.bootstrap_servers)
            .env("REGISTRY_URL", mode.url(&registry_addr))
            .env(
                "MESSAGING_PRODUCE_MAX_IN_FLIGHT",
                options.produce_max_in_flight.to_string(),
            )
            .env("RUST_LOG", "warn")
            .envs(options.messaging_env.iter().cloned())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", options.messaging_bin.display()))?;
        let messaging_pid = messaging_child.id();
        let messaging = wait_serving(
            &messaging_addr,
            "messaging",
            options.http2_max_frame_size,
            mode,
            pki,
        )
        .await?;
        Ok(Self {
            registry_addr,
            registry_http_addr,
            messaging_addr,
            messaging_rest_addr,
            registry,
            messaging,
            messaging_pid,
            _registry: registry_child,
            _messaging: messaging_child,
        })
    }
}

/// Creates `topics` with `partitions` each (replication 1).
pub async fn create_topics(
    admin: &AdminClient<DefaultClientContext>,
    topics: &[String],
    partitions: i32,
) -> anyhow::Result<()> {
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    for result in admin.create_topics(&new, &AdminOptions::new()).await? {
        if let Err((topic, error)) = result {
            bail!("cannot create {topic}: {error}");
        }
    }
    Ok(())
}
