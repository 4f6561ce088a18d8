//! Connection floods, for the tests of connection caps and timeouts: many connections opened
//! at once, each sending a little or nothing, and held until the server closes them.

#![allow(clippy::missing_panics_doc)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A connection of a flood, TLS or plain TCP.
pub trait Held: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Held for T {}

/// Opens `count` TLS connections to `addr` at once, offering `alpn`, and writes `first` on
/// each (nothing when empty). Returns the connections whose handshake succeeded: those the
/// server admitted (it closes connections over its cap as they are accepted).
pub async fn open_tls(
    addr: SocketAddr,
    alpn: &[u8],
    count: usize,
    first: &[u8],
) -> Vec<Box<dyn Held>> {
    let opened = futures::future::join_all((0..count).map(|_| async move {
        let mut stream = crate::security::tls_connect(addr, alpn).await.ok()?;
        if !first.is_empty() {
            stream.write_all(first).await.ok()?;
            stream.flush().await.ok()?;
        }
        Some(Box::new(stream) as Box<dyn Held>)
    }))
    .await;
    opened.into_iter().flatten().collect()
}

/// Opens `count` plain TCP connections to `addr` at once, sending nothing.
pub async fn open_tcp(addr: SocketAddr, count: usize) -> Vec<Box<dyn Held>> {
    let opened = futures::future::join_all(
        (0..count).map(|_| async move { tokio::net::TcpStream::connect(addr).await.ok() }),
    )
    .await;
    opened
        .into_iter()
        .flatten()
        .map(|stream| Box::new(stream) as Box<dyn Held>)
        .collect()
}

/// Whether the server closes `stream` within `within`: a read finds the end of the stream (or
/// an error: a reset) rather than waiting. What the server writes before closing is read past.
pub async fn closed_within(stream: &mut dyn Held, within: Duration) -> bool {
    tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// How many of `streams` the server closes within `within` (all of them, checked at once).
pub async fn count_closed(streams: &mut [Box<dyn Held>], within: Duration) -> usize {
    let closed = futures::future::join_all(
        streams
            .iter_mut()
            .map(|stream| closed_within(stream.as_mut(), within)),
    )
    .await;
    closed.into_iter().filter(|closed| *closed).count()
}
