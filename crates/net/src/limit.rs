//! The cap on a listener's connections, and the admitted connection that holds its place under
//! it and closes itself when idle.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tributary_security::conn::{Accepted, ServerStream};

use crate::inflight::Activity;

/// How often, at most, a listener logs that it refuses connections.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The cap on the connections of one listener. Cloning shares the cap.
#[derive(Debug, Clone)]
pub struct ConnectionLimit {
    name: &'static str,
    max: usize,
    timeouts: Timeouts,
    permits: Arc<Semaphore>,
    refused: Arc<AtomicU64>,
    last_logged: Arc<Mutex<Option<Instant>>>,
}

/// A place under a listener's cap, taken when a connection is accepted; [`Permit::admit`] gives
/// it to the connection once it is on the runtime that serves it.
#[derive(Debug)]
pub struct Permit {
    permit: OwnedSemaphorePermit,
    timeouts: Timeouts,
}

/// How long a connection may go without a request in flight: before its first request (from
/// its accept: the TLS handshake and the first request's headers), and after it.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    first_request: Option<Duration>,
    idle: Option<Duration>,
}

impl ConnectionLimit {
    /// A cap of `max` connections on the listener `name` (for logs), whose connections are
    /// closed when no request has started `first_request_timeout` after they were accepted,
    /// or once they have had no request in flight for `idle_timeout`.
    pub fn new(
        name: &'static str,
        max: usize,
        first_request_timeout: Option<Duration>,
        idle_timeout: Option<Duration>,
    ) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            name,
            max,
            timeouts: Timeouts {
                first_request: first_request_timeout,
                idle: idle_timeout,
            },
            permits: Arc::new(Semaphore::new(max)),
            refused: Arc::default(),
            last_logged: Arc::default(),
        }
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max.saturating_sub(self.permits.available_permits())
    }

    /// Connections refused so far because the cap was reached.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Registers, labelled with this listener's name, `tributary.connections.open` (connections
    /// open now), `tributary.connections.limit` (the cap) and `tributary.connections.refused`
    /// (refused at the cap so far) on `meter`: read when scraped, nothing per connection.
    pub fn register_metrics(&self, meter: &opentelemetry::metrics::Meter) {
        let labels = [opentelemetry::KeyValue::new("listener", self.name)];
        let limit = self.clone();
        let open_labels = labels.clone();
        meter
            .u64_observable_gauge("tributary.connections.open")
            .with_description("Connections open on the listener")
            .with_callback(move |observer| observer.observe(limit.open() as u64, &open_labels))
            .build();
        let limit = self.clone();
        let max_labels = labels.clone();
        meter
            .u64_observable_gauge("tributary.connections.limit")
            .with_description("The listener's cap on open connections")
            .with_callback(move |observer| observer.observe(limit.max() as u64, &max_labels))
            .build();
        let limit = self.clone();
        meter
            .u64_observable_counter("tributary.connections.refused")
            .with_description("Connections closed at accept because the listener was at its cap")
            .with_callback(move |observer| observer.observe(limit.refused(), &labels))
            .build();
    }

    /// A place for a connection just accepted, or `None` when the listener is at its cap: the
    /// caller then drops the connection, which closes it (logged at most every 10 s).
    pub fn try_acquire(&self) -> Option<Permit> {
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => Some(Permit {
                permit,
                timeouts: self.timeouts,
            }),
            Err(_) => {
                let refused = self
                    .refused
                    .fetch_add(1, Ordering::Relaxed)
                    .saturating_add(1);
                let now = Instant::now();
                let mut last = self.last_logged.lock();
                if last.is_none_or(|last| now.duration_since(last) >= REFUSAL_LOG_INTERVAL) {
                    *last = Some(now);
                    tracing::warn!(
                        listener = self.name,
                        max_connections = self.max,
                        refused_so_far = refused,
                        "connection refused: the listener is at its connection cap"
                    );
                }
                None
            }
        }
    }

    /// Takes a place for `io` and admits it (on the current runtime), or `None` at the cap.
    pub fn admit<IO>(&self, io: IO) -> Option<Admitted<IO>> {
        self.try_acquire().map(|permit| permit.admit(io))
    }
}

impl Permit {
    /// The connection `io`, holding this place until it is dropped. Must be called on the
    /// runtime that serves it (its idle timer belongs to that runtime).
    pub fn admit<IO>(self, io: IO) -> Admitted<IO> {
        let activity = Arc::new(Activity::new());
        let first = self.timeouts.first_request.or(self.timeouts.idle);
        let idle = first.map(|first| IdleTimer {
            timeouts: self.timeouts,
            sleep: Box::pin(tokio::time::sleep(first)),
        });
        Admitted {
            io,
            _permit: self.permit,
            activity,
            idle,
            timed_out: false,
        }
    }
}

#[derive(Debug)]
struct IdleTimer {
    timeouts: Timeouts,
    sleep: Pin<Box<Sleep>>,
}

/// An admitted connection: it holds its place under the listener's cap until dropped, and
/// once it has had no request in flight for the idle timeout, its reads find the end of the
/// stream (the server then closes it). Requests in flight are counted on its [`Activity`].
#[derive(Debug)]
pub struct Admitted<IO> {
    io: IO,
    _permit: OwnedSemaphorePermit,
    activity: Arc<Activity>,
    idle: Option<IdleTimer>,
    timed_out: bool,
}

impl<IO> Admitted<IO> {
    pub fn get_ref(&self) -> &IO {
        &self.io
    }

    /// What counts this connection's requests in flight.
    pub fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }

    /// Whether the idle timeout has closed the connection.
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.timed_out {
            return true;
        }
        let Some(idle) = &mut self.idle else {
            return false;
        };
        while idle.sleep.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            let timeout = if self.activity.started_any() {
                idle.timeouts.idle
            } else {
                idle.timeouts.first_request
            };
            let Some(timeout) = timeout else {
                // No timeout for this phase (idle after a first request, say): none to wait for.
                idle.sleep
                    .as_mut()
                    .reset(now + Duration::from_secs(24 * 60 * 60));
                continue;
            };
            match self.activity.idle_since() {
                Some(since) if now.saturating_duration_since(since) >= timeout => {
                    tracing::debug!(
                        idle_for = ?timeout,
                        first_request = !self.activity.started_any(),
                        "closing an idle connection"
                    );
                    self.timed_out = true;
                    return true;
                }
                // Idle for less than the timeout: wait for the rest of it.
                Some(since) => idle.sleep.as_mut().reset(since + timeout),
                // Requests in flight: look again a timeout from now.
                None => idle.sleep.as_mut().reset(now + timeout),
            }
        }
        false
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Admitted<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.idle_expired(cx) {
            // End of stream: the server closes the connection as if the client had.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Admitted<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The [`Activity`] of an admitted connection after its TLS handshake (or none).
pub fn activity_of<IO>(accepted: &Accepted<Admitted<IO>>) -> Arc<Activity> {
    let admitted = match &accepted.stream {
        ServerStream::Plain(admitted) => admitted,
        ServerStream::Tls(tls) => tls.get_ref().0,
    };
    Arc::clone(admitted.activity())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn the_cap_refuses_connections_past_it_and_frees_places_on_close() {
        let limit = ConnectionLimit::new("test", 2, None, None);
        let first = limit.admit(());
        let second = limit.admit(());
        assert!(first.is_some() && second.is_some());
        assert!(limit.admit(()).is_none());
        assert_eq!((limit.open(), limit.refused()), (2, 1));
        drop(first);
        assert!(limit.admit(()).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_reads_the_end_of_the_stream_and_a_busy_one_does_not() {
        let limit = ConnectionLimit::new("test", 2, None, Some(Duration::from_secs(30)));
        let (client, server) = tokio::io::duplex(64);
        let mut admitted = limit.admit(server).expect("under the cap");
        let (mut client_read, mut client_write) = tokio::io::split(client);
        // A request in flight for longer than the timeout keeps the connection.
        let guard = admitted.activity().begin();
        tokio::time::sleep(Duration::from_secs(45)).await;
        client_write.write_all(b"ping").await.expect("written");
        let mut buf = [0u8; 4];
        admitted.read_exact(&mut buf).await.expect("still open");
        drop(guard);
        // Then, 30 s with nothing in flight: end of stream.
        let started = Instant::now();
        let mut rest = Vec::new();
        admitted
            .read_to_end(&mut rest)
            .await
            .expect("closed cleanly");
        assert!(rest.is_empty());
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        admitted
            .write_all(b"bye")
            .await
            .expect("writes still go out");
        drop(admitted);
        let mut echoed = Vec::new();
        client_read.read_to_end(&mut echoed).await.expect("read");
        assert_eq!(echoed, b"bye");
        assert_eq!(limit.open(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_never_starts_a_request_is_closed_sooner() {
        let limit = ConnectionLimit::new(
            "test",
            2,
            Some(Duration::from_secs(10)),
            Some(Duration::from_secs(300)),
        );
        let (_client, server) = tokio::io::duplex(64);
        let mut silent = limit.admit(server).expect("under the cap");
        let started = Instant::now();
        let mut rest = Vec::new();
        silent.read_to_end(&mut rest).await.expect("closed cleanly");
        assert_eq!(started.elapsed(), Duration::from_secs(10));

        let (_client, server) = tokio::io::duplex(64);
        let mut used = limit.admit(server).expect("under the cap");
        drop(used.activity().begin());
        let started = Instant::now();
        used.read_to_end(&mut rest).await.expect("closed cleanly");
        assert_eq!(started.elapsed(), Duration::from_secs(300));
    }
}
