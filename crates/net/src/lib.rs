//! Connection-level protections both services put in front of their API listeners, so that no
//! client can hold the process's connections or file descriptors:
//!
//! - [`ConnectionLimit`]: a cap on the connections of one listener. A connection over the cap
//!   is closed as soon as it is accepted (counted and logged), so the process never runs out
//!   of file descriptors for its database, Kafka and health checks. [`fds`] raises the
//!   open-file limit to what the system allows and checks that the caps fit below it.
//! - [`Admitted`]: an admitted connection. It holds its place under the cap until it is
//!   closed, and it is closed when no request has started within the header-read timeout of
//!   its accept (a client that connects and sends nothing, or half a request), or once it has
//!   had no request in flight for the idle timeout (an idle keep-alive connection): its reads
//!   then find the end of the stream.
//! - [`inflight`]: what tells a connection that requests are in flight: a tower layer for
//!   tonic servers (through [`Tracked`] connections) and a service wrapper for hyper-served
//!   ones. A request is in flight from the moment its headers are read until its response
//!   body is sent (or dropped), so long streams (Watch, Consume, ProduceStream) keep their
//!   connection, however quiet.
//!
//! - [`listen::bind`]: API listeners with an accept queue deep enough for a burst of
//!   connections (tokio's default of 128 overflows into SYN cookies and silently lost
//!   connections).
//!
//! The HTTP/2 settings that go with these (keep-alive pings, concurrent streams per
//! connection), the HTTP/1.1 header-read timeout and the request timeout are set on each
//! server's builder; [`ConnectionSettings`] carries them all.

pub mod fds;
pub mod inflight;
mod limit;
pub mod listen;

use std::time::Duration;

pub use inflight::{Activity, InFlightLayer, Tracked, TrackedInfo, WithActivity};
pub use limit::{Admitted, ConnectionLimit, Permit, activity_of};

/// How a service's API listeners treat connections (each service's flags fill it).
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// Most connections open at once on each API listener.
    pub max_connections: usize,
    /// Most concurrent HTTP/2 streams (requests) per connection.
    pub max_concurrent_streams: u32,
    /// A connection with no request in flight for this long is closed (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// How often an HTTP/2 connection is pinged (`None`: never).
    pub keepalive_interval: Option<Duration>,
    /// How long a ping may go unanswered before the connection is closed.
    pub keepalive_timeout: Duration,
    /// Longest a unary request may take, reading its body included (`None`: unbounded).
    pub request_timeout: Option<Duration>,
    /// Longest a new connection may take, from its accept, to send its first request's headers
    /// (and on HTTP/1.1 each request's headers).
    pub header_read_timeout: Duration,
}

/// A duration from a flag in milliseconds, where 0 means "none".
pub fn millis(value: u64) -> Option<Duration> {
    (value > 0).then(|| Duration::from_millis(value))
}
