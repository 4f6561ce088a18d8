//! Building and running the messaging process: Kafka clients, the registry client, the gRPC
//! server with health and reflection, the REST Proxy compatible HTTP API, the `/metrics`
//! endpoint, and graceful shutdown (streams end with UNAVAILABLE after
//! committing their acknowledged offsets, the producer is flushed, the drain is bounded).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tributary_net::{
    ConnectionLimit, ConnectionSettings, InFlightLayer, Tracked, activity_of, fds,
};
use tributary_proto::messaging::v1::messaging_service_server::MessagingServiceServer;
use tributary_security::ServerSecurity;
use tributary_security::client::ClientTls;
use tributary_security::conn::ConnectionInfo;
use tributary_security::conn::tcp_incoming;
use tributary_security::layer::Protocol;
use tributary_security::limits::streaming_methods;
use tributary_security::tls::Protocols;
use tributary_telemetry::grpc::RpcLayer;
use tributary_telemetry::health::Health;
use tributary_telemetry::http::HttpLayer;
use tributary_telemetry::metrics::{self, Metrics};

use crate::access::Access;
use crate::config::Settings;
use crate::grpc::MessagingGrpc;
use crate::kafka::Kafka;
use crate::metrics::MessagingMetrics;
use crate::produce::Producer;
use crate::rest::instances::Instances;
use crate::rest::{self, RestState};
use crate::schemas::Schemas;

/// The largest HTTP/2 frame the service accepts (SETTINGS_MAX_FRAME_SIZE; HTTP/2's default is
/// 16 KiB). A client streaming records to ProduceStream may then send them in fewer, larger
/// frames; what the service sends is bounded by the client's own setting.
const MAX_FRAME_SIZE: u32 = 1 << 20;

/// HTTP/2 flow-control windows: how much a client may send that the service has not read yet,
/// on one stream and over the connection. h2 (0.4.20) closes a connection with
/// ENHANCE_YOUR_CALM ("too_many_data_frames") once the small DATA frames it holds unread cost
/// more than half the connection window (a frame under 256 bytes counts as 256 minus its size).
/// With hyper's defaults (1 MiB for both) one ProduceStream of small records whose server
/// stops reading at its in-flight bound, while Kafka is slow, was cut after a few thousand
/// records (found by the fault suite: a broker killed, a leader paused). A 64 KiB stream window
/// holds at most 3,300 frames of 20 bytes (770 KB of that budget), under the 1 MiB budget of
/// a 2 MiB connection window; the connection window also bounds what one connection can make
/// the service buffer.
const STREAM_WINDOW_BYTES: u32 = 64 * 1024;
/// See [`STREAM_WINDOW_BYTES`].
const CONNECTION_WINDOW_BYTES: u32 = 2 * 1024 * 1024;

/// How long Kafka may go without answering a metadata request before readiness flips.
const KAFKA_DOWN_AFTER: Duration = Duration::from_secs(3);
/// How often readiness re-checks Kafka and the registry.
const HEALTH_INTERVAL: Duration = Duration::from_millis(1000);

/// The API service's name, for health.
const SERVICE_NAME: &str =
    <MessagingServiceServer<MessagingGrpc> as tonic::server::NamedService>::NAME;

/// A messaging service that is bound to its port and ready to run.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    rest_listener: TcpListener,
    rest_addr: SocketAddr,
    rest_advertised_url: Option<String>,
    replica_id: String,
    consumer_instance_timeout: Duration,
    metrics_listener: TcpListener,
    metrics_addr: SocketAddr,
    metrics: Arc<Metrics>,
    messaging_metrics: MessagingMetrics,
    kafka: Kafka,
    schemas: Arc<Schemas>,
    produce_max_in_flight: usize,
    max_consume_streams: usize,
    security: ServerSecurity,
    connections: ConnectionSettings,
    shutdown_timeout: Duration,
}

impl Application {
    /// Loads the TLS and authentication files, creates the Kafka and registry clients (both
    /// connect lazily: the service starts while they are down and reports NOT_SERVING) and
    /// binds the gRPC port.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let security = ServerSecurity::from_args(&settings.security, "messaging")?;
        let (connections, max_consume_streams) = fit_connections(settings);
        let kafka = Kafka::new(settings).context("cannot create the Kafka clients")?;
        let schemas = Arc::new(registry_client(settings)?);
        let listener = tributary_net::listen::bind(settings.grpc_addr)
            .with_context(|| format!("cannot bind the gRPC address {}", settings.grpc_addr))?;
        let local_addr = listener.local_addr()?;
        let rest_listener = tributary_net::listen::bind(settings.rest_addr)
            .with_context(|| format!("cannot bind the REST API address {}", settings.rest_addr))?;
        let rest_addr = rest_listener.local_addr()?;
        let metrics_listener = metrics::bind(settings.metrics_addr).await?;
        let metrics_addr = metrics_listener.local_addr()?;
        let metrics = Arc::new(Metrics::new("tributary-messaging")?);
        let messaging_metrics = MessagingMetrics::new(metrics.meter(), &kafka);
        messaging_metrics.count_stale_latest(metrics.meter(), schemas.stale_latest_served());
        Ok(Self {
            listener,
            local_addr,
            rest_listener,
            rest_addr,
            rest_advertised_url: settings
                .rest_advertised_url
                .as_ref()
                .map(|url| url.trim_end_matches('/').to_owned()),
            replica_id: settings.replica_id(),
            consumer_instance_timeout: Duration::from_millis(
                settings.consumer_instance_timeout_ms.max(1),
            ),
            metrics_listener,
            metrics_addr,
            metrics,
            messaging_metrics,
            kafka,
            schemas,
            produce_max_in_flight: settings.produce_max_in_flight,
            max_consume_streams,
            security,
            connections,
            shutdown_timeout: settings.shutdown_timeout(),
        })
    }

    /// The connection cap of the gRPC listener (after fitting below the open-file limit).
    pub fn max_connections(&self) -> usize {
        self.connections.max_connections
    }

    /// The most Consume streams open at once (after fitting below the open-file limit).
    pub fn max_consume_streams(&self) -> usize {
        self.max_consume_streams
    }

    /// The address the gRPC API is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address the REST API is bound to (useful with port 0).
    pub fn rest_addr(&self) -> SocketAddr {
        self.rest_addr
    }

    /// The address the Prometheus `/metrics` endpoint is bound to (useful with port 0).
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// Serves until `shutdown` completes, then reports NOT_SERVING, ends streams (each commits
    /// what its client acknowledged and leaves its group), flushes the producer and gives
    /// in-flight requests up to the shutdown timeout to finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let metrics_stop = CancellationToken::new();
        let (health, health_service) = Health::new(SERVICE_NAME, &["kafka", "registry"]).await;
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
            tributary_proto::messaging::v1::messaging_service_server::SERVICE_NAME,
        )?;

        let health_task = tokio::spawn(watch_health(
            self.kafka.clone(),
            self.messaging_metrics.clone(),
            Arc::clone(&self.schemas),
            Arc::clone(&health),
            stop.clone(),
        ));

        let access = Access::new(
            Arc::clone(self.security.authorizer()),
            Arc::clone(&self.schemas),
        );
        let max_consume_streams = self.max_consume_streams.clamp(1, Semaphore::MAX_PERMITS);
        let consume_places = Arc::new(Semaphore::new(max_consume_streams));
        let instances = Arc::new(Instances::new(
            self.kafka.clone(),
            Arc::clone(&consume_places),
            max_consume_streams,
            self.replica_id.clone(),
            self.consumer_instance_timeout,
        ));
        self.messaging_metrics
            .count_rest_instances(self.metrics.meter(), Arc::clone(&instances));
        let rest_stop = CancellationToken::new();
        let expiry_task = tokio::spawn(Arc::clone(&instances).run_expiry(rest_stop.clone()));
        let rest_state = RestState {
            kafka: self.kafka.clone(),
            schemas: Arc::clone(&self.schemas),
            access: access.clone(),
            producer: Producer::new(
                self.kafka.clone(),
                Arc::clone(&self.schemas),
                access.clone(),
                self.messaging_metrics.clone(),
            ),
            instances,
            produce_max_in_flight: self.produce_max_in_flight.max(1),
            request_timeout: self.connections.request_timeout,
            advertised_url: self.rest_advertised_url.clone(),
            scheme: if self.security.acceptor(Protocols::Http).is_tls() {
                "https"
            } else {
                "http"
            },
        };
        let rest_app = rest::router(
            rest_state,
            HttpLayer::new(self.metrics.meter()),
            rest::Perimeter {
                authentication: self.security.http_layer(rest::media::V2_JSON),
                limits: self.security.limit_layer(
                    Protocol::Http {
                        content_type: rest::media::V2_JSON,
                    },
                    Default::default(),
                ),
            },
        );
        let rest_limit = ConnectionLimit::new(
            "rest",
            self.connections.max_connections,
            Some(self.connections.header_read_timeout),
            self.connections.idle_timeout,
        );
        rest_limit.register_metrics(self.metrics.meter());
        let rest_incoming = tcp_incoming(self.rest_listener).filter_map(move |accepted| {
            std::future::ready(match accepted {
                // Over the cap: dropped here, which closes it.
                Ok((stream, _)) => rest_limit.admit(stream).map(Ok),
                Err(error) => Some(Err(error)),
            })
        });
        let rest_server = tokio::spawn(tributary_http_server::serve_connections(
            rest_app,
            self.security.acceptor(Protocols::Http),
            self.connections.clone(),
            rest_incoming,
            rest::TIMED_OUT,
            stop.clone(),
        ));
        let service = MessagingServiceServer::new(
            MessagingGrpc::new(
                self.kafka.clone(),
                Arc::clone(&self.schemas),
                access,
                self.messaging_metrics.clone(),
                self.produce_max_in_flight,
                (consume_places, max_consume_streams),
                stop.clone(),
            )
            .with_request_timeout(self.connections.request_timeout),
        )
        .max_decoding_message_size(64 * 1024 * 1024);
        let server_stop = stop.clone();
        let descriptor_sets = [
            tributary_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
        ];
        let rpc_layer = RpcLayer::new(self.metrics.meter(), &descriptor_sets);
        // Calls in flight per connection outermost (they keep it from being closed as idle),
        // then instrumentation, so that refused calls are counted too.
        let connections = &self.connections;
        let mut builder = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .max_frame_size(MAX_FRAME_SIZE)
            .max_concurrent_streams(connections.max_concurrent_streams)
            .initial_stream_window_size(STREAM_WINDOW_BYTES)
            .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
            .http2_keepalive_interval(connections.keepalive_interval)
            .http2_keepalive_timeout(Some(connections.keepalive_timeout));
        if let Some(timeout) = connections.request_timeout {
            builder = builder.timeout(timeout);
        }
        let limit = ConnectionLimit::new(
            "grpc",
            connections.max_connections,
            Some(connections.header_read_timeout),
            connections.idle_timeout,
        );
        limit.register_metrics(self.metrics.meter());
        let incoming = tcp_incoming(self.listener).filter_map(move |accepted| {
            std::future::ready(match accepted {
                // Over the cap: dropped here, which closes it.
                Ok((stream, peer)) => limit.admit(stream).map(|admitted| Ok((admitted, peer))),
                Err(error) => Some(Err(error)),
            })
        });
        let incoming = self
            .security
            .acceptor(Protocols::Grpc)
            .accept_all(incoming)
            .map(|accepted| {
                accepted.map(|accepted| {
                    let activity = activity_of(&accepted);
                    Tracked::new(accepted, activity)
                })
            });
        let server = builder
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
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, async move { server_stop.cancelled().await });
        let mut server = tokio::spawn(server);
        self.security.announce("grpc", self.local_addr, true);
        self.security.announce("rest", self.rest_addr, true);
        self.security.announce("metrics", self.metrics_addr, false);
        tracing::info!(
            grpc_addr = %self.local_addr,
            rest_addr = %self.rest_addr,
            replica = %self.replica_id,
            metrics_addr = %self.metrics_addr,
            "messaging serving"
        );

        tokio::select! {
            () = shutdown => {}
            result = &mut server => {
                stop.cancel();
                rest_stop.cancel();
                metrics_stop.cancel();
                return result.context("gRPC server task failed")?.context("gRPC server failed");
            }
        }
        tracing::info!(
            drain_timeout_ms = self.shutdown_timeout.as_millis() as u64,
            "shutting down"
        );
        health.shutting_down().await;
        stop.cancel();
        let drained = tokio::time::timeout(self.shutdown_timeout, &mut server).await;
        match drained {
            Ok(result) => result
                .context("gRPC server task failed")?
                .context("gRPC server failed")?,
            Err(_) => {
                tracing::warn!(
                    "in-flight requests did not finish within the shutdown timeout; aborting them"
                );
                server.abort();
            }
        }
        // The REST API drains with the gRPC server (both stop taking requests at `stop`); its
        // consumer instances close after it (committing, with auto-commit).
        if tokio::time::timeout(self.shutdown_timeout, rest_server)
            .await
            .is_err()
        {
            tracing::warn!("REST requests did not finish within the shutdown timeout");
        }
        rest_stop.cancel();
        let _ = expiry_task.await;
        self.kafka.flush(self.shutdown_timeout).await;
        let _ = health_task.await;
        metrics_stop.cancel();
        let _ = metrics_task.await;
        self.metrics.shutdown(self.shutdown_timeout).await;
        tracing::info!("messaging stopped");
        Ok(())
    }
}

/// The connection settings and the Consume stream cap, fitted below the open-file limit (raised
/// to the hard limit first): the connections of the gRPC and REST listeners, and the Kafka
/// consumers of streams and REST consumer instances at
/// [`crate::consume::DESCRIPTORS_PER_STREAM`] descriptors each.
fn fit_connections(settings: &Settings) -> (ConnectionSettings, usize) {
    let mut connections = settings.connections();
    let limit = fds::raise_open_file_limit();
    let budget = fds::fit(
        limit.soft,
        2,
        connections.max_connections,
        settings.max_consume_streams,
        crate::consume::DESCRIPTORS_PER_STREAM,
        0,
    );
    connections.max_connections = budget.max_connections;
    tracing::info!(
        open_file_limit = ?limit.soft,
        max_connections = connections.max_connections,
        max_consume_streams = budget.max_others,
        "connections and Consume streams capped"
    );
    (connections, budget.max_others.max(1))
}

/// The registry client: TLS for an https:// URL (with the CA and client certificate given,
/// reloaded when they change), the service's own credentials on every call.
fn registry_client(settings: &Settings) -> anyhow::Result<Schemas> {
    let interval = Duration::from_millis(settings.security.files_reload_interval_ms.max(10));
    let client = &settings.registry_client;
    let tls = client
        .tls_files()
        .map(|files| ClientTls::watch(files, interval))
        .transpose()?;
    let credentials = client.credentials(interval)?;
    let url = &settings.registry_url;
    if !matches!(
        credentials,
        tributary_security::client::CallCredentials::None
    ) && url.starts_with("http://")
        && !is_loopback_url(url)
    {
        anyhow::bail!(
            "registry credentials would travel in the clear to {url}: use an https:// REGISTRY_URL"
        );
    }
    let channel = tributary_security::client::channel(url, tls, |endpoint| {
        endpoint
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
    })
    .with_context(|| format!("invalid registry URL {url}"))?;
    Ok(Schemas::new(
        channel,
        credentials,
        Duration::from_millis(settings.latest_schema_ttl_ms),
    )
    .with_latest_max_stale(Duration::from_millis(settings.latest_schema_max_stale_ms))
    .with_limits(settings.limits.limits()?))
}

/// Whether an http:// URL names a loopback host.
fn is_loopback_url(url: &str) -> bool {
    url.parse::<tonic::transport::Uri>()
        .ok()
        .and_then(|uri| uri.host().map(str::to_owned))
        .is_some_and(|host| {
            host == "localhost"
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
}

/// Whether the registry answers its health check with SERVING.
async fn registry_serving(schemas: &Schemas) -> bool {
    use tonic_health::pb::health_check_response::ServingStatus;
    let mut client = tonic_health::pb::health_client::HealthClient::new(schemas.channel());
    client
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32)
}

/// Readiness: SERVING while a Kafka broker answers, NOT_SERVING otherwise.
///
/// The registry is a dependency of Avro records only: while it is unreachable, records in other
/// formats and records whose schemas are cached keep flowing (the others fail one by one with
/// UNAVAILABLE), so its state is `dependency.registry` and a metric, not readiness: a
/// registry outage must not take every messaging pod out of its Service.
///
/// Kafka counts as unreachable once, for [`KAFKA_DOWN_AFTER`], no broker has answered a
/// metadata request and no record has been acknowledged or consumed: a request that went to a
/// broker just killed or paused (one of three) times out while the others still serve, and
/// readiness must not flip for it.
async fn watch_health(
    kafka: Kafka,
    metrics: MessagingMetrics,
    schemas: Arc<Schemas>,
    health: Arc<Health>,
    stop: CancellationToken,
) {
    let mut serving = None;
    let mut kafka_answered: Option<tokio::time::Instant> = None;
    let mut records_seen = metrics.records_through_kafka();
    let mut registry_answered_once = false;
    loop {
        let (kafka_answers, registry_up) = tokio::join!(
            kafka.ping(HEALTH_INTERVAL),
            tokio::time::timeout(HEALTH_INTERVAL, registry_serving(&schemas)),
        );
        let now = tokio::time::Instant::now();
        let records = metrics.records_through_kafka();
        let records_flowed = records != records_seen;
        records_seen = records;
        if kafka_answers || records_flowed {
            kafka_answered = Some(now);
        }
        let kafka_up = kafka_answered.is_some_and(|at| now.duration_since(at) < KAFKA_DOWN_AFTER);
        let registry_up = matches!(registry_up, Ok(true));
        // Lookups fail fast only once the registry has answered before: until then (a
        // service starting beside its registry) they try it.
        registry_answered_once |= registry_up;
        schemas.set_registry_reachable(registry_up || !registry_answered_once);
        health.set_dependency("kafka", kafka_up).await;
        health.set_dependency("registry", registry_up).await;
        if serving != Some(kafka_up) {
            health.set_ready(kafka_up).await;
            if kafka_up {
                tracing::info!(registry_up, "Kafka reachable: SERVING");
            } else {
                tracing::warn!(registry_up, "no Kafka broker answers: NOT_SERVING");
            }
            serving = Some(kafka_up);
        }
        // Every second while Kafka answers; at once after a failed request (librdkafka sends
        // the next one to another broker), a little slower once it is down.
        let pause = if kafka_answers {
            HEALTH_INTERVAL
        } else if kafka_up {
            Duration::from_millis(50)
        } else {
            Duration::from_millis(100)
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}
