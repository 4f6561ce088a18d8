//! The gRPC server's threads: one accept loop hands connections round-robin to N threads, each
//! running its own single-threaded tokio runtime, which then serves everything on that
//! connection (its HTTP/2 state machine and one task per request).
//!
//! On the shared multi-threaded runtime, a connection's task and its per-request tasks (hyper
//! spawns one per HTTP/2 stream) woke each other across worker threads: futex wake-ups, work
//! stealing and contended stream locks cost about as much CPU as the request itself. Keeping a
//! connection on one thread removes that; the threads still spread connections over every
//! core. Everything else (the HTTP API, the database pool, the change listener) stays on the
//! process's main runtime. Resources are shared across runtimes as usual with tokio (the
//! registry core, the pool, the health reporter, the cancellation tokens).

use std::future::Future;
use std::io;
use std::net::TcpStream as StdTcpStream;
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::coalesce::CoalescingStream;

/// The connections one gRPC thread is handed, ready for tonic's `serve_with_incoming_shutdown`.
pub type Incoming = Pin<Box<dyn Stream<Item = io::Result<CoalescingStream<TcpStream>>> + Send>>;

/// How many gRPC threads to run for a `--grpc-threads` value (0 = one per CPU core).
pub fn thread_count(configured: usize) -> usize {
    if configured > 0 {
        configured
    } else {
        std::thread::available_parallelism().map_or(1, usize::from)
    }
}

/// Starts `threads` gRPC threads, each serving the connections it is handed with
/// `serve_connections` (tonic's server over [`Incoming`], ending gracefully when its token is
/// cancelled), and returns the accept loop: it hands every connection accepted on `listener` to
/// the next thread until `stop` is cancelled, then completes once every thread has drained its
/// connections or `force` is cancelled.
pub fn serve<S, F>(
    serve_connections: S,
    listener: TcpListener,
    threads: usize,
    stop: CancellationToken,
    force: CancellationToken,
) -> anyhow::Result<impl Future<Output = anyhow::Result<()>> + Send + 'static>
where
    S: Fn(Incoming, CancellationToken) -> F + Clone + Send + 'static,
    F: Future<Output = Result<(), tonic::transport::Error>>,
{
    let mut connections = Vec::with_capacity(threads);
    let mut finished = Vec::with_capacity(threads);
    for index in 0..threads.max(1) {
        let (connection_sender, connection_receiver) = mpsc::unbounded_channel();
        let (done_sender, done_receiver) = oneshot::channel();
        let (serve_connections, stop, force) =
            (serve_connections.clone(), stop.clone(), force.clone());
        std::thread::Builder::new()
            .name(format!("grpc-{index}"))
            .spawn(move || {
                let outcome =
                    serve_on_this_thread(serve_connections, connection_receiver, stop, force);
                let _ = done_sender.send(outcome);
            })
            .context("cannot start a gRPC thread")?;
        connections.push(connection_sender);
        finished.push(done_receiver);
    }
    Ok(async move {
        accept_until_stopped(listener, connections, stop).await;
        for done in finished {
            done.await
                .context("a gRPC thread ended without reporting")??;
        }
        Ok(())
    })
}

/// One gRPC thread: a single-threaded runtime serving the connections it is handed.
fn serve_on_this_thread<S, F>(
    serve_connections: S,
    connections: mpsc::UnboundedReceiver<StdTcpStream>,
    stop: CancellationToken,
    force: CancellationToken,
) -> anyhow::Result<()>
where
    S: Fn(Incoming, CancellationToken) -> F,
    F: Future<Output = Result<(), tonic::transport::Error>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build a gRPC thread's runtime")?;
    runtime.block_on(async move {
        // Registered with this thread's I/O driver here, where they are served.
        let incoming: Incoming = Box::pin(
            UnboundedReceiverStream::new(connections)
                .map(|stream| TcpStream::from_std(stream).map(CoalescingStream::new)),
        );
        tokio::select! {
            served = serve_connections(incoming, stop) => {
                served.context("gRPC server failed")
            }
            () = force.cancelled() => Ok(()),
        }
    })
}

/// Accepts connections (TCP_NODELAY set: `Server::tcp_nodelay` applies only to listeners tonic
/// binds itself, and without it a response meets Nagle's algorithm and the client's delayed
/// ACK) and hands them round-robin to the threads until `stop` is cancelled.
async fn accept_until_stopped(
    listener: TcpListener,
    threads: Vec<mpsc::UnboundedSender<StdTcpStream>>,
    stop: CancellationToken,
) {
    let mut next = 0usize;
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tracing::warn!(%error, "cannot accept a gRPC connection");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, "cannot hand a gRPC connection to a thread");
                continue;
            }
        };
        if threads[next % threads.len()].send(stream).is_err() {
            // The thread ended early; its outcome (an error) is what the server reports.
            tracing::error!(thread = next % threads.len(), "a gRPC thread has stopped");
            return;
        }
        next = next.wrapping_add(1);
    }
}
