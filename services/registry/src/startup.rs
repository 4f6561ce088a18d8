//! Building and running the registry process: database pool and migrations, the gRPC server with
//! health and reflection, the Confluent-compatible HTTP server, the event listener, and graceful
//! shutdown with a bounded drain of both servers.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic_health::server::HealthReporter;
use tributary_proto::registry::v1::registry_service_server::RegistryServiceServer;

use crate::config::Settings;
use crate::grpc::RegistryGrpc;
use crate::registry::{Registry, RegistrySettings};
use crate::{events, http, store};

/// How often readiness re-checks Postgres.
const HEALTH_INTERVAL: Duration = Duration::from_millis(1000);

/// A registry that is bound to its port and ready to run.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    http_listener: TcpListener,
    http_addr: SocketAddr,
    max_schema_bytes: usize,
    registry: Arc<Registry>,
    pool: PgPool,
    shutdown_timeout: Duration,
}

impl Application {
    /// Connects to Postgres, applies the migrations (under sqlx's advisory lock, so concurrent
    /// replicas do it once) and binds the gRPC and HTTP ports.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let options: PgConnectOptions = settings
            .database_url
            .expose()
            .parse()
            .context("DATABASE_URL is not a valid Postgres URL")?;
        let pool = PgPoolOptions::new()
            .max_connections(settings.db_max_connections)
            .min_connections(1)
            .acquire_timeout(Duration::from_millis(settings.db_acquire_timeout_ms))
            .connect_with(options)
            .await
            .with_context(|| format!("cannot connect to Postgres at {}", settings.database_url))?;
        sqlx::migrate!("../../migrations")
            .run(&pool)
            .await
            .context("cannot apply database migrations")?;

        let listener = TcpListener::bind(settings.grpc_addr)
            .await
            .with_context(|| format!("cannot bind the gRPC address {}", settings.grpc_addr))?;
        let local_addr = listener.local_addr()?;
        let http_listener = TcpListener::bind(settings.http_addr)
            .await
            .with_context(|| format!("cannot bind the HTTP address {}", settings.http_addr))?;
        let http_addr = http_listener.local_addr()?;
        let registry = Arc::new(Registry::new(
            pool.clone(),
            RegistrySettings {
                max_schema_bytes: settings.max_schema_bytes,
            },
        ));
        Ok(Self {
            listener,
            local_addr,
            http_listener,
            http_addr,
            max_schema_bytes: settings.max_schema_bytes,
            registry,
            pool,
            shutdown_timeout: settings.shutdown_timeout(),
        })
    }

    /// The address the gRPC API is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address the HTTP API is bound to (useful with port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
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
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        report_health(&health_reporter, false).await;

        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tributary_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tributary_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        let listener_task = tokio::spawn(events::run_listener(
            self.pool.clone(),
            Arc::clone(&self.registry),
            self.registry.event_sender(),
            stop.clone(),
        ));
        let health_task = tokio::spawn(watch_database_health(
            self.pool.clone(),
            Arc::clone(&self.registry),
            health_reporter.clone(),
            stop.clone(),
        ));

        let registry_service =
            RegistryServiceServer::new(RegistryGrpc::new(Arc::clone(&self.registry), stop.clone()))
                .max_decoding_message_size(64 * 1024 * 1024);
        let server_stop = stop.clone();
        let server = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(registry_service)
            .serve_with_incoming_shutdown(incoming_nodelay(self.listener), async move {
                server_stop.cancelled().await
            });
        let mut server = tokio::spawn(server);

        let http_stop = stop.clone();
        let http_listener = self.http_listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let http_server = axum::serve(
            http_listener,
            http::router(Arc::clone(&self.registry), self.max_schema_bytes),
        )
        .with_graceful_shutdown(async move { http_stop.cancelled().await });
        let mut http_server = tokio::spawn(http_server.into_future());
        tracing::info!(grpc_addr = %self.local_addr, http_addr = %self.http_addr, "registry serving");

        tokio::select! {
            () = shutdown => {}
            result = &mut server => {
                stop.cancel();
                return result.context("gRPC server task failed")?.context("gRPC server failed");
            }
            result = &mut http_server => {
                stop.cancel();
                server.abort();
                return result.context("HTTP server task failed")?.context("HTTP server failed");
            }
        }
        tracing::info!(
            drain_timeout_ms = self.shutdown_timeout.as_millis() as u64,
            "shutting down"
        );
        report_health(&health_reporter, false).await;
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
                server.abort();
                http_server.abort();
            }
        }
        let _ = tokio::join!(listener_task, health_task);
        self.pool.close().await;
        tracing::info!("registry stopped");
        Ok(())
    }
}

/// Accepted gRPC connections with TCP_NODELAY set. `Server::tcp_nodelay` applies only to
/// listeners tonic binds itself; without it, a response's HEADERS, DATA and trailers frames
/// meet Nagle's algorithm and the client's delayed ACK, and small replies wait ~40 ms.
fn incoming_nodelay(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    TcpListenerStream::new(listener).map(|accepted| {
        if let Ok(stream) = &accepted {
            let _ = stream.set_nodelay(true);
        }
        accepted
    })
}

/// Readiness: SERVING while Postgres answers (and once the change listener has connected for
/// the first time, so no change committed after SERVING can be missed), NOT_SERVING otherwise.
async fn watch_database_health(
    pool: PgPool,
    registry: Arc<Registry>,
    reporter: HealthReporter,
    stop: CancellationToken,
) {
    let mut serving = None;
    let mut listener_started = false;
    loop {
        listener_started |= registry.is_listening();
        let reachable = matches!(
            tokio::time::timeout(HEALTH_INTERVAL, store::ping(&pool)).await,
            Ok(Ok(()))
        );
        let healthy = reachable && listener_started;
        if serving != Some(healthy) {
            report_health(&reporter, healthy).await;
            if healthy {
                tracing::info!("Postgres reachable and change listener connected: SERVING");
            } else {
                if reachable {
                    tracing::info!("waiting for the change listener to connect: NOT_SERVING");
                } else {
                    tracing::warn!("Postgres unreachable: NOT_SERVING");
                }
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

/// Sets the registry service's status and the overall ("") status together.
async fn report_health(reporter: &HealthReporter, serving: bool) {
    let status = if serving {
        tonic_health::ServingStatus::Serving
    } else {
        tonic_health::ServingStatus::NotServing
    };
    reporter
        .set_service_status(
            <RegistryServiceServer<RegistryGrpc> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
    reporter.set_service_status("", status).await;
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
