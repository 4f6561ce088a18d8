//! Building and running the registry process: database pool and migrations, the gRPC server with
//! health and reflection, the Confluent-compatible HTTP server (both on per-core threads, see
//! [`crate::per_core`], both behind the perimeter of [`tributary_security`]: TLS and one
//! authentication layer each), the `/metrics`, `/livez` and `/readyz` endpoint, the event
//! listener, and graceful shutdown with a bounded drain of both servers.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use opentelemetry::KeyValue;
use opentelemetry::metrics::Meter;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tributary_net::{
    ConnectionLimit, ConnectionSettings, InFlightLayer, Tracked, activity_of, fds,
};
use tributary_proto::registry::v1::registry_service_server::RegistryServiceServer;
use tributary_security::ServerSecurity;
use tributary_security::conn::ConnectionInfo;
use tributary_security::layer::Protocol;
use tributary_security::limits::streaming_methods;
use tributary_security::tls::Protocols;
use tributary_telemetry::grpc::RpcLayer;
use tributary_telemetry::health::Health;
use tributary_telemetry::http::HttpLayer;
use tributary_telemetry::metrics::{self, Metrics};

use crate::access::Access;
use crate::coalesce::CoalescingStream;
use crate::config::Settings;
use crate::grpc::RegistryGrpc;
use crate::listener::run_listener;
use crate::registry::{Registry, RegistrySettings};
use crate::{http, per_core, store};

/// How often readiness re-checks Postgres.
const HEALTH_INTERVAL: Duration = Duration::from_millis(250);
/// How long a readiness check may take before Postgres counts as unreachable (a paused or
/// partitioned server answers nothing at all).
const HEALTH_TIMEOUT: Duration = Duration::from_millis(600);

/// How often the schema and subject gauges are re-counted in Postgres.
const COUNT_INTERVAL: Duration = Duration::from_secs(30);

/// The API service's name, for health.
const SERVICE_NAME: &str =
    <RegistryServiceServer<RegistryGrpc> as tonic::server::NamedService>::NAME;

/// A registry that is bound to its port and ready to run.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    http_listener: TcpListener,
    http_addr: SocketAddr,
    metrics_listener: TcpListener,
    metrics_addr: SocketAddr,
    metrics: Arc<Metrics>,
    max_schema_bytes: usize,
    grpc_threads: usize,
    http_threads: usize,
    registry: Arc<Registry>,
    pool: PgPool,
    security: ServerSecurity,
    connections: ConnectionSettings,
    shutdown_timeout: Duration,
}

impl Application {
    /// Loads the TLS and authentication files, connects to Postgres, applies the migrations
    /// (under sqlx's advisory lock, so concurrent replicas do it once) and binds the gRPC and
    /// HTTP ports.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let security = ServerSecurity::from_args(&settings.security, "registry")?;
        let limits = settings.limits()?;
        let connections = fit_connections(settings);
        let (options, database_url) = settings.database_options()?;
        let pool = PgPoolOptions::new()
            .max_connections(settings.db_max_connections)
            .min_connections(1)
            .acquire_timeout(Duration::from_millis(settings.db_acquire_timeout_ms))
            .connect_with(options)
            .await
            .with_context(|| format!("cannot connect to Postgres at {database_url}"))?;
        sqlx::migrate!("../../migrations")
            .run(&pool)
            .await
            .context("cannot apply database migrations")?;

        let listener = tributary_net::listen::bind(settings.grpc_addr)
            .with_context(|| format!("cannot bind the gRPC address {}", settings.grpc_addr))?;
        let local_addr = listener.local_addr()?;
        let http_listener = tributary_net::listen::bind(settings.http_addr)
            .with_context(|| format!("cannot bind the HTTP address {}", settings.http_addr))?;
        let http_addr = http_listener.local_addr()?;
        let metrics_listener = metrics::bind(settings.metrics_addr).await?;
        let metrics_addr = metrics_listener.local_addr()?;
        let registry = Arc::new(Registry::new(
            pool.clone(),
            RegistrySettings {
                max_schema_bytes: settings.max_schema_bytes,
                limits,
            },
        ));
        let metrics = Arc::new(Metrics::new("tributary-registry")?);
        register_gauges(
            metrics.meter(),
            &registry,
            &pool,
            settings.db_max_connections,
        );
        Ok(Self {
            listener,
            local_addr,
            http_listener,
            http_addr,
            metrics_listener,
            metrics_addr,
            metrics,
            max_schema_bytes: settings.max_schema_bytes,
            grpc_threads: per_core::thread_count(settings.grpc_threads),
            http_threads: per_core::thread_count(settings.http_threads),
            registry,
            pool,
            security,
            connections,
            shutdown_timeout: settings.shutdown_timeout(),
        })
    }

    /// The connection cap of each API listener (after fitting below the open-file limit).
    pub fn max_connections(&self) -> usize {
        self.connections.max_connections
    }

    /// The address the gRPC API is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address the HTTP API is bound to (useful with port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The address the Prometheus `/metrics` endpoint is bound to (useful with port 0).
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// The registry core, for embedding and tests.
    pub fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.registry)
    }

    /// Serves until `shutdown` completes, then stops accepting, reports NOT_SERVING, ends watch
    /// streams and gives in-flight requests up to the shutdown timeout to finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let metrics_stop = CancellationToken::new();
        let (health, health_service) = Health::new(SERVICE_NAME, &["postgres"]).await;
        health.register_gauges(self.metrics.meter());
        self.security
            .authorizer()
            .register_metrics(self.metrics.meter());
        let metrics_limit = metrics::connection_limit(
            self.connections.header_read_timeout,
            self.connections.idle_timeout,
        );
        metrics_limit.register_metrics(self.metrics.meter());
        let metrics_task = tokio::spawn(metrics::serve(
            self.metrics_listener,
            self.security.metrics_acceptor(),
            metrics_limit,
            self.connections.header_read_timeout,
            metrics::router(Arc::clone(&self.metrics), Arc::clone(&health)),
            metrics_stop.clone(),
        ));

        let (reflection_v1, reflection_v1alpha) = tributary_telemetry::reflection::services(
            tributary_proto::registry::v1::registry_service_server::SERVICE_NAME,
        )?;

        let listener_task = tokio::spawn(run_listener(
            self.pool.clone(),
            Arc::clone(&self.registry),
            self.registry.event_sender(),
            stop.clone(),
        ));
        let health_task = tokio::spawn(watch_database_health(
            self.pool.clone(),
            Arc::clone(&self.registry),
            Arc::clone(&health),
            stop.clone(),
        ));
        let count_task = tokio::spawn(count_schemas_and_subjects(
            self.pool.clone(),
            Arc::clone(&self.registry),
            stop.clone(),
        ));

        let access = Access::new(
            Arc::clone(self.security.authorizer()),
            Arc::clone(&self.registry),
        );
        let registry_service = RegistryServiceServer::new(RegistryGrpc::new(
            Arc::clone(&self.registry),
            access.clone(),
            stop.clone(),
        ))
        .max_decoding_message_size(64 * 1024 * 1024);
        let descriptor_sets = [
            tributary_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
        ];
        let rpc_layer = RpcLayer::new(self.metrics.meter(), &descriptor_sets);
        // Requests in flight per connection outermost (they keep it from being closed as idle),
        // then instrumentation, so that refused calls are counted too.
        let connections = &self.connections;
        let mut builder = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .max_concurrent_streams(connections.max_concurrent_streams)
            .http2_keepalive_interval(connections.keepalive_interval)
            .http2_keepalive_timeout(Some(connections.keepalive_timeout));
        if let Some(timeout) = connections.request_timeout {
            builder = builder.timeout(timeout);
        }
        let router = builder
            .layer(InFlightLayer::<ConnectionInfo>::new())
            .layer(rpc_layer)
            .layer(self.security.grpc_layer())
            .layer(
                self.security
                    .limit_layer(Protocol::Grpc, streaming_methods(&descriptor_sets)),
            )
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(registry_service);
        // Cancelled when the drain runs out of time: the per-core threads drop what is left.
        let force_stop = CancellationToken::new();
        let grpc_acceptor = self.security.acceptor(Protocols::Grpc);
        let serve_grpc = move |incoming: per_core::Incoming, stop: CancellationToken| {
            // TLS handshakes on this thread, each a task of its own; then one write per flush.
            let incoming = grpc_acceptor
                .accept_all(incoming.map(|stream| {
                    stream.map(|stream| {
                        let peer = stream.get_ref().peer_addr().ok();
                        (stream, peer)
                    })
                }))
                .map(|accepted| {
                    accepted.map(|accepted| {
                        let activity = activity_of(&accepted);
                        Tracked::new(CoalescingStream::new(accepted), activity)
                    })
                });
            let serving = router
                .clone()
                .serve_with_incoming_shutdown(incoming, stop.cancelled_owned());
            async move { serving.await.context("gRPC server failed") }
        };
        let grpc_limit = ConnectionLimit::new(
            "grpc",
            connections.max_connections,
            Some(connections.header_read_timeout),
            connections.idle_timeout,
        );
        grpc_limit.register_metrics(self.metrics.meter());
        let http_limit = ConnectionLimit::new(
            "http",
            self.connections.max_connections,
            Some(self.connections.header_read_timeout),
            self.connections.idle_timeout,
        );
        http_limit.register_metrics(self.metrics.meter());
        let mut server = tokio::spawn(per_core::serve(
            "grpc",
            serve_grpc,
            self.listener,
            self.grpc_threads,
            grpc_limit,
            stop.clone(),
            force_stop.clone(),
        )?);

        let app = http::router(
            Arc::clone(&self.registry),
            access,
            self.max_schema_bytes,
            HttpLayer::new(self.metrics.meter()),
            http::Perimeter {
                authentication: self.security.http_layer(http::extract::V1_JSON),
                limits: self.security.limit_layer(
                    Protocol::Http {
                        content_type: http::extract::V1_JSON,
                    },
                    Default::default(),
                ),
            },
        );
        let http_acceptor = self.security.acceptor(Protocols::Http);
        let http_connections = self.connections.clone();
        let serve_http = move |incoming, stop| {
            let served = tributary_http_server::serve_connections(
                app.clone(),
                http_acceptor.clone(),
                http_connections.clone(),
                incoming,
                http::TIMED_OUT,
                stop,
            );
            async move {
                served.await;
                Ok(())
            }
        };
        let mut http_server = tokio::spawn(per_core::serve(
            "http",
            serve_http,
            self.http_listener,
            self.http_threads,
            http_limit,
            stop.clone(),
            force_stop.clone(),
        )?);
        self.security.announce("grpc", self.local_addr, true);
        self.security.announce("http", self.http_addr, true);
        self.security.announce("metrics", self.metrics_addr, false);
        tracing::info!(
            grpc_addr = %self.local_addr,
            http_addr = %self.http_addr,
            metrics_addr = %self.metrics_addr,
            "registry serving"
        );

        tokio::select! {
            () = shutdown => {}
            result = &mut server => {
                stop.cancel();
                metrics_stop.cancel();
                return result.context("gRPC server task failed")?.context("gRPC server failed");
            }
            result = &mut http_server => {
                stop.cancel();
                metrics_stop.cancel();
                server.abort();
                return result.context("HTTP server task failed")?.context("HTTP server failed");
            }
        }
        tracing::info!(
            drain_timeout_ms = self.shutdown_timeout.as_millis() as u64,
            "shutting down"
        );
        health.shutting_down().await;
        stop.cancel();
        let drained = tokio::time::timeout(self.shutdown_timeout, async {
            let grpc = (&mut server).await;
            let http = (&mut http_server).await;
            (grpc, http)
        })
        .await;
        match drained {
            Ok((grpc, http)) => {
                grpc.context("gRPC server task failed")?
                    .context("gRPC server failed")?;
                http.context("HTTP server task failed")?
                    .context("HTTP server failed")?;
            }
            Err(_) => {
                tracing::warn!(
                    "in-flight requests did not finish within the shutdown timeout; aborting them"
                );
                force_stop.cancel();
                server.abort();
                http_server.abort();
            }
        }
        let _ = tokio::join!(listener_task, health_task, count_task);
        self.pool.close().await;
        metrics_stop.cancel();
        let _ = metrics_task.await;
        self.metrics.shutdown(self.shutdown_timeout).await;
        tracing::info!("registry stopped");
        Ok(())
    }
}

/// The connection settings, with the cap of the two API listeners fitted below the open-file
/// limit (raised to the hard limit first), next to the database pool.
fn fit_connections(settings: &Settings) -> ConnectionSettings {
    let mut connections = settings.connections();
    let limit = fds::raise_open_file_limit();
    let budget = fds::fit(
        limit.soft,
        2,
        connections.max_connections,
        0,
        1,
        u64::from(settings.db_max_connections),
    );
    connections.max_connections = budget.max_connections;
    tracing::info!(
        open_file_limit = ?limit.soft,
        max_connections = connections.max_connections,
        "connections capped per API listener"
    );
    connections
}

/// Readiness: SERVING while Postgres answers (and once the change listener has connected for
/// the first time, so no change committed after SERVING can be missed), NOT_SERVING otherwise.
///
/// The check runs on its own connection, not the pool's: a pool busy with requests is not an
/// outage, and a dropped connection is noticed on the next check. Checks run every
/// [`HEALTH_INTERVAL`] and give up after [`HEALTH_TIMEOUT`], so an outage (a killed or a paused
/// Postgres) is noticed within their sum, under a second; from then on requests that need the
/// database fail at once with 503 instead of waiting for a connection.
async fn watch_database_health(
    pool: PgPool,
    registry: Arc<Registry>,
    health: Arc<Health>,
    stop: CancellationToken,
) {
    let options = pool.connect_options();
    let mut connection: Option<sqlx::PgConnection> = None;
    let mut serving = None;
    let mut listener_started = false;
    loop {
        listener_started |= registry.is_listening();
        let reachable = tokio::time::timeout(HEALTH_TIMEOUT, async {
            let open = match connection.as_mut() {
                Some(open) => open,
                None => connection.insert(
                    <sqlx::PgConnection as sqlx::Connection>::connect_with(&*options).await?,
                ),
            };
            store::ping(open).await
        })
        .await;
        let reachable = matches!(reachable, Ok(Ok(())));
        if !reachable {
            // Closed, broken or stuck: the next check opens a new one.
            connection = None;
        }
        let healthy = reachable && listener_started;
        registry.set_store_reachable(reachable);
        health.set_dependency("postgres", reachable).await;
        if serving != Some(healthy) {
            health.set_ready(healthy).await;
            if healthy {
                tracing::info!("Postgres reachable and change listener connected: SERVING");
            } else if reachable {
                tracing::info!("waiting for the change listener to connect: NOT_SERVING");
            } else {
                tracing::warn!("Postgres unreachable: NOT_SERVING");
            }
            serving = Some(healthy);
        }
        let pause = if healthy {
            HEALTH_INTERVAL
        } else {
            Duration::from_millis(20)
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Keeps the schema and subject counts fresh: one COUNT query every [`COUNT_INTERVAL`] (never
/// per scrape), into the registry's gauges.
async fn count_schemas_and_subjects(
    pool: PgPool,
    registry: Arc<Registry>,
    stop: CancellationToken,
) {
    loop {
        match store::counts(&pool).await {
            Ok((schemas, subjects)) => registry.set_counts(schemas, subjects),
            Err(error) => tracing::debug!(%error, "cannot count schemas and subjects"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(COUNT_INTERVAL) => {}
        }
    }
}

/// The registry's own gauges and counters: cache hits and misses, schema and subject counts,
/// connection pool use.
fn register_gauges(meter: &Meter, registry: &Arc<Registry>, pool: &PgPool, max_connections: u32) {
    let caches = Arc::clone(registry);
    let labels: Vec<[KeyValue; 2]> = caches
        .cache_stats()
        .all()
        .iter()
        .flat_map(|(cache, _)| {
            ["hit", "miss"].map(|result| {
                [
                    KeyValue::new("cache", *cache),
                    KeyValue::new("result", result),
                ]
            })
        })
        .collect();
    meter
        .u64_observable_counter("registry.cache.requests")
        .with_description("Registry cache lookups by cache and result (hit or miss)")
        .with_callback(move |observer| {
            let counts = caches
                .cache_stats()
                .all()
                .into_iter()
                .flat_map(|(_, counters)| {
                    [
                        counters.hits.load(std::sync::atomic::Ordering::Relaxed),
                        counters.misses.load(std::sync::atomic::Ordering::Relaxed),
                    ]
                });
            for (count, labels) in counts.zip(&labels) {
                observer.observe(count, labels);
            }
        })
        .build();
    let counted = Arc::clone(registry);
    meter
        .u64_observable_gauge("registry.schemas")
        .with_description("Distinct schema ids (counted every 30 s)")
        .with_callback(move |observer| {
            if let Some((schemas, _)) = counted.counts() {
                observer.observe(schemas, &[]);
            }
        })
        .build();
    let counted = Arc::clone(registry);
    meter
        .u64_observable_gauge("registry.subjects")
        .with_description("Subjects with at least one live version (counted every 30 s)")
        .with_callback(move |observer| {
            if let Some((_, subjects)) = counted.counts() {
                observer.observe(subjects, &[]);
            }
        })
        .build();
    let pooled = pool.clone();
    let idle = [KeyValue::new("state", "idle")];
    let used = [KeyValue::new("state", "used")];
    meter
        .u64_observable_gauge("db.client.connections.usage")
        .with_description("Postgres connections in the pool, by state")
        .with_callback(move |observer| {
            let size = u64::from(pooled.size());
            let idle_count = pooled.num_idle() as u64;
            observer.observe(idle_count, &idle);
            observer.observe(size.saturating_sub(idle_count), &used);
        })
        .build();
    meter
        .u64_observable_gauge("db.client.connection.max")
        .with_description("Most Postgres connections the pool opens")
        .with_callback(move |observer| observer.observe(u64::from(max_connections), &[]))
        .build();
}
