//! One socket write per HTTP/2 flush for the gRPC server's connections.
//!
//! A unary gRPC response is three HTTP/2 frames: HEADERS, DATA and trailing HEADERS. The `h2`
//! crate keeps a DATA payload of 256 bytes or more out of its frame buffer (it is written from
//! its own buffer with a vectored write), and it must flush before it can queue the next frame.
//! So every response bigger than 256 bytes, which is every schema, left in two `writev` calls
//! (HEADERS + DATA, then the trailers): two TCP segments, two wake-ups of the client, and twice
//! the kernel work of the HTTP/1.1 API, whose responses leave in one write.
//!
//! [`CoalescingStream`] takes every write into its own buffer and writes it out when `h2`
//! flushes. It reports no vectored-write support, which makes `h2` copy DATA payloads of up to
//! 1 KiB into its frame buffer (1,024 bytes is `h2`'s threshold for such streams), so a response
//! of that size leaves in one write, and with several streams on a connection, many responses
//! leave in one write. Larger payloads leave in two writes, as before. Writes are bounded: past
//! [`MAX_BUFFERED`] bytes, the buffer is written out before more is taken (backpressure).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// Bytes taken before the buffer must be written out.
pub const MAX_BUFFERED: usize = 64 * 1024;

/// Buffer capacity kept for the next flush; a bigger buffer is given back once written out.
const RETAINED_CAPACITY: usize = 16 * 1024;

/// A stream whose writes reach the inner stream only on flush (or when [`MAX_BUFFERED`] bytes
/// are waiting).
#[derive(Debug)]
pub struct CoalescingStream<S> {
    inner: S,
    buffered: Vec<u8>,
    /// How much of `buffered` the inner stream has taken already.
    written: usize,
}

impl<S> CoalescingStream<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            buffered: Vec::new(),
            written: 0,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncWrite + Unpin> CoalescingStream<S> {
    /// Writes out everything buffered.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buffered.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buffered[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        if self.buffered.capacity() > RETAINED_CAPACITY {
            self.buffered = Vec::new();
        } else {
            self.buffered.clear();
        }
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CoalescingStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CoalescingStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.buffered.len() >= MAX_BUFFERED {
            ready!(self.poll_write_out(cx))?;
        }
        self.buffered.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.buffered.len() >= MAX_BUFFERED {
            ready!(self.poll_write_out(cx))?;
        }
        let mut taken = 0;
        for buf in bufs {
            self.buffered.extend_from_slice(buf);
            taken += buf.len();
        }
        Poll::Ready(Ok(taken))
    }

    /// `false`, so that `h2` copies small DATA payloads into its frame buffer (see the module
    /// documentation); the copies are coalesced here anyway.
    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_out(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_out(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: Connected> Connected for CoalescingStream<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn writes_reach_the_peer_only_on_flush_and_in_order() {
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let mut client = CoalescingStream::new(client);
        client.write_all(b"HEADERS ").await.expect("write");
        let taken = client
            .write_vectored(&[io::IoSlice::new(b"DATA "), io::IoSlice::new(b"TRAILERS")])
            .await
            .expect("vectored write");
        assert_eq!(taken, "DATA TRAILERS".len(), "every slice is taken at once");
        let mut byte = [0u8; 1];
        assert!(
            tokio::time::timeout(
                std::time::Duration::from_millis(50),
                server.read_exact(&mut byte)
            )
            .await
            .is_err(),
            "nothing may reach the peer before the flush"
        );
        client.flush().await.expect("flush");
        let mut received = vec![0u8; "HEADERS DATA TRAILERS".len()];
        server.read_exact(&mut received).await.expect("read");
        assert_eq!(received, b"HEADERS DATA TRAILERS");
    }

    #[tokio::test]
    async fn a_full_buffer_is_written_out_before_more_is_taken() {
        // A peer that takes at most 1 KiB at a time and is never read: the writer must stop
        // taking bytes once MAX_BUFFERED are waiting, rather than buffer without bound.
        let (client, _server) = tokio::io::duplex(1024);
        let mut client = CoalescingStream::new(client);
        let chunk = vec![7u8; 4096];
        let mut taken = 0usize;
        let outcome = tokio::time::timeout(std::time::Duration::from_millis(200), async {
            loop {
                taken += client.write(&chunk).await.expect("write");
            }
        })
        .await;
        assert!(
            outcome.is_err(),
            "the writer blocks on a peer that reads nothing"
        );
        assert!(
            taken <= MAX_BUFFERED + chunk.len(),
            "{taken} bytes taken, more than the bound"
        );
    }

    #[tokio::test]
    async fn shutdown_writes_out_what_is_buffered() {
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let mut client = CoalescingStream::new(client);
        client.write_all(b"GOAWAY").await.expect("write");
        client.shutdown().await.expect("shutdown");
        let mut received = Vec::new();
        server.read_to_end(&mut received).await.expect("read");
        assert_eq!(received, b"GOAWAY");
    }
}
