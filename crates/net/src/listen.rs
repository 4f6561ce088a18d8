//! Binding an API listener with an accept queue deep enough for a burst of connections.
//!
//! tokio's `TcpListener::bind` asks for a queue of 128. A burst larger than the queue (a
//! reconnect storm after a restart, a flood) overflows it, and Linux then answers with SYN
//! cookies: the client's connection is established on its side while the server has no record
//! of it, so a client that waits for the server to speak first waits forever. A deep queue
//! (capped by the kernel at `net.core.somaxconn`, 4096 by default) lets every connection of
//! such a burst reach `accept`, where the connection cap closes the ones over it at once.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// The accept queue asked for (the kernel caps it at `net.core.somaxconn`).
pub const ACCEPT_BACKLOG: u32 = 4096;

/// A listener on `addr` (address reuse on, as tokio's `bind` does) with an accept queue of
/// [`ACCEPT_BACKLOG`].
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_larger_than_the_default_queue_is_accepted() {
        let listener = bind("127.0.0.1:0".parse().expect("an address")).expect("bound");
        let addr = listener.local_addr().expect("a local address");
        // 300 connections before a single accept: more than a queue of 128 holds.
        let mut clients = Vec::new();
        for _ in 0..300 {
            clients.push(
                tokio::net::TcpStream::connect(addr)
                    .await
                    .expect("connected"),
            );
        }
        for _ in 0..300 {
            tokio::time::timeout(std::time::Duration::from_secs(5), listener.accept())
                .await
                .expect("every connection of the burst reaches accept (net.core.somaxconn >= 300)")
                .expect("accepted");
        }
    }
}
