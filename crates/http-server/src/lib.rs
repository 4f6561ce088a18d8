//! Serving an axum router the way both tributary services serve their HTTP APIs (the registry's
//! Confluent Schema Registry API, the messaging service's Kafka REST Proxy API).
//!
//! [`serve_connections`] takes admitted TCP connections (each under its listener's connection
//! cap, see [`tributary_net`]), runs the TLS handshake when the acceptor says so, and serves
//! HTTP/1.1, or HTTP/2 by ALPN or prior knowledge, until stopped; then shuts every connection
//! down gracefully. Around the router, per connection: requests that outlive the request timeout
//! get the API's own timeout answer ([`timeout`]), connections the server closes linger
//! ([`lingering`]), and answers given before a request's body was read say `Connection: close`
//! ([`unread`], a layer the router applies itself). Errors are Confluent-shaped bodies,
//! `{"error_code": ..., "message": ...}` ([`error_response`]).

pub mod lingering;
pub mod timeout;
pub mod unread;

use std::io;
use std::sync::Arc;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpStream;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tributary_net::{Admitted, ConnectionSettings, WithActivity};
use tributary_security::conn::{Acceptor, WithConnectionInfo};

use lingering::LingeringClose;
pub use timeout::TimedOut;

/// A Confluent-shaped error body.
#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    error_code: u32,
    message: &'a str,
}

/// The Confluent-shaped error response: `status` with `{"error_code": code, "message": ...}`,
/// of media type `content_type`.
pub fn error_response(
    status: u16,
    code: u32,
    content_type: &'static str,
    message: &str,
) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(&ErrorBody {
        error_code: code,
        message,
    })
    .unwrap_or_else(|_| br#"{"error_code":50001,"message":"error"}"#.to_vec());
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

/// Serves `app` on every connection of `incoming`, each in a task of the current runtime that
/// first runs the TLS handshake when `acceptor` says so, until `stop` is cancelled; then shuts
/// every connection down gracefully (requests in flight are answered, with `Connection: close`
/// on HTTP/1.1, idle keep-alive connections close at once) and completes once they are all
/// closed.
///
/// Per `settings`: an HTTP/1.1 client has the header-read timeout to send each request's
/// headers (hyper's timer runs while a keep-alive connection waits for its next request, so it
/// also closes idle HTTP/1.1 connections); HTTP/2 connections are pinged and hold at most
/// `max_concurrent_streams` requests; a request that takes longer than the request timeout
/// (its body read included) gets `timed_out`; a connection with no request in flight for the
/// idle timeout is closed ([`tributary_net::Admitted`]).
pub async fn serve_connections<S>(
    app: Router,
    acceptor: Acceptor,
    settings: ConnectionSettings,
    incoming: S,
    timed_out: TimedOut,
    stop: CancellationToken,
) where
    S: Stream<Item = io::Result<Admitted<TcpStream>>>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(settings.max_concurrent_streams)
        .keep_alive_interval(settings.keepalive_interval)
        .keep_alive_timeout(settings.keepalive_timeout);
    let builder = Arc::new(builder);
    let request_timeout = settings.request_timeout;
    let graceful = GracefulShutdown::new();
    let mut incoming = std::pin::pin!(incoming);
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => break,
            next = incoming.next() => next,
        };
        let stream = match next {
            Some(Ok(stream)) => stream,
            Some(Err(error)) => {
                tracing::warn!(%error, "cannot serve an HTTP connection");
                continue;
            }
            None => break,
        };
        let (builder, watcher) = (Arc::clone(&builder), graceful.watcher());
        let (app, acceptor) = (app.clone(), acceptor.clone());
        tokio::spawn(async move {
            let peer = stream.get_ref().peer_addr().ok();
            let activity = Arc::clone(stream.activity());
            let accepted = match acceptor.accept(LingeringClose::new(stream), peer).await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::debug!(%error, ?peer, "TLS handshake failed");
                    return;
                }
            };
            let service = TowerToHyperService::new(WithActivity::new(
                timeout::RequestTimeout::new(
                    WithConnectionInfo::new(app, accepted.info.clone()),
                    request_timeout,
                    timed_out,
                ),
                activity,
            ));
            let connection = builder.serve_connection(TokioIo::new(accepted), service);
            if let Err(error) = watcher.watch(connection).await {
                // A client that goes away mid-request, a malformed request line and the like.
                tracing::debug!(%error, "HTTP connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
}
