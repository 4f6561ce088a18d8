//! Servers on per-core threads: one accept loop hands connections round-robin to N threads, each
//! running its own single-threaded tokio runtime, which then serves everything on that
//! connection. Both APIs run this way, each on its own threads and listener: gRPC (tonic: its
//! HTTP/2 state machine and one task per request, `--grpc-threads`) and the Confluent HTTP API
//! (hyper serving the axum router, `--http-threads`, see [`tributary_http_server::serve_connections`]).
//!
//! On the shared multi-threaded runtime, a connection's task and the tasks it woke (hyper spawns
//! one per HTTP/2 stream; the runtime's I/O driver wakes an HTTP/1.1 connection's task from
//! whichever worker polls it) ran on different worker threads: futex wake-ups, work stealing and
//! contended locks cost about as much CPU as the request itself. Keeping a connection on one
//! thread removes that; the threads still spread connections over every core. Everything else
//! (the database pool, the change listener, `/metrics`) stays on the process's main runtime.
//! Resources are shared across runtimes as usual with tokio (the registry core, the pool, the
//! health reporter, the cancellation tokens).
//!
//! The accept loop holds each listener's connection cap ([`ConnectionLimit`]): a connection
//! over it is closed as it is accepted, before any thread sees it; an admitted one holds its
//! place until it is closed, and is closed by its thread once idle ([`Admitted`]).

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
use tributary_net::{Admitted, ConnectionLimit, Permit};

/// The connections one thread is handed (TCP_NODELAY set, admitted under the listener's cap),
/// registered with its runtime.
pub type Incoming = Pin<Box<dyn Stream<Item = io::Result<Admitted<TcpStream>>> + Send>>;

/// How many threads to run for a `--grpc-threads` or `--http-threads` value (0 = one per CPU
/// core).
pub fn thread_count(configured: usize) -> usize {
    if configured > 0 {
        configured
    } else {
        std::thread::available_parallelism().map_or(1, usize::from)
    }
}

/// Starts `threads` threads named `{name}-{index}`, each serving the connections it is handed
/// with `serve_connections` (a server over [`Incoming`] that stops taking connections when its
/// token is cancelled and completes once the ones it has are drained), and returns the accept
/// loop: it hands every connection accepted on `listener` to the next thread until `stop` is
/// cancelled, then completes once every thread has drained its connections or `force` is
/// cancelled. At most `limit` connections are open at once.
pub fn serve<S, F>(
    name: &'static str,
    serve_connections: S,
    listener: TcpListener,
    threads: usize,
    limit: ConnectionLimit,
    stop: CancellationToken,
    force: CancellationToken,
) -> anyhow::Result<impl Future<Output = anyhow::Result<()>> + Send + 'static>
where
    S: Fn(Incoming, CancellationToken) -> F + Clone + Send + 'static,
    F: Future<Output = anyhow::Result<()>>,
{
    let mut connections = Vec::with_capacity(threads);
    let mut finished = Vec::with_capacity(threads);
    for index in 0..threads.max(1) {
        let (connection_sender, connection_receiver) = mpsc::unbounded_channel();
        let (done_sender, done_receiver) = oneshot::channel();
        let (serve_connections, stop, force) =
            (serve_connections.clone(), stop.clone(), force.clone());
        std::thread::Builder::new()
            .name(format!("{name}-{index}"))
            .spawn(move || {
                let outcome =
                    serve_on_this_thread(serve_connections, connection_receiver, stop, force);
                let _ = done_sender.send(outcome);
            })
            .with_context(|| format!("cannot start a {name} thread"))?;
        connections.push(connection_sender);
        finished.push(done_receiver);
    }
    Ok(async move {
        accept_until_stopped(name, listener, connections, limit, stop).await;
        for done in finished {
            done.await
                .with_context(|| format!("a {name} thread ended without reporting"))??;
        }
        Ok(())
    })
}

/// One thread: a single-threaded runtime serving the connections it is handed.
fn serve_on_this_thread<S, F>(
    serve_connections: S,
    connections: mpsc::UnboundedReceiver<(StdTcpStream, Permit)>,
    stop: CancellationToken,
    force: CancellationToken,
) -> anyhow::Result<()>
where
    S: Fn(Incoming, CancellationToken) -> F,
    F: Future<Output = anyhow::Result<()>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build a server thread's runtime")?;
    runtime.block_on(async move {
        // Registered with this thread's I/O driver (and timer) here, where they are served.
        let incoming: Incoming = Box::pin(UnboundedReceiverStream::new(connections).map(
            |(stream, permit)| TcpStream::from_std(stream).map(|stream| permit.admit(stream)),
        ));
        tokio::select! {
            served = serve_connections(incoming, stop) => served,
            () = force.cancelled() => Ok(()),
        }
    })
    // Dropping the runtime here ends whatever `force` cut short.
}

/// Accepts connections (TCP_NODELAY set: without it a response meets Nagle's algorithm and the
/// client's delayed ACK; tonic's `Server::tcp_nodelay` applies only to listeners it binds itself)
/// and hands them round-robin to the threads until `stop` is cancelled; a connection over the
/// cap is closed at once.
async fn accept_until_stopped(
    name: &'static str,
    listener: TcpListener,
    threads: Vec<mpsc::UnboundedSender<(StdTcpStream, Permit)>>,
    limit: ConnectionLimit,
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
                tracing::warn!(%error, server = name, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Some(permit) = limit.try_acquire() else {
            // Over the cap: closed now (a client sees its connection closed, and retries).
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, server = name, "cannot hand a connection to a thread");
                continue;
            }
        };
        if threads[next % threads.len()]
            .send((stream, permit))
            .is_err()
        {
            // The thread ended early; its outcome (an error) is what the server reports.
            tracing::error!(
                server = name,
                thread = next % threads.len(),
                "a server thread has stopped"
            );
            return;
        }
        next = next.wrapping_add(1);
    }
}
