//! Lingering close for HTTP/1.1 connections, as web servers do it (nginx's `lingering_close`):
//! when the server closes a connection whose client is still sending, e.g. after answering 413
//! to a body over the limit before reading it all, closing the socket with unread data makes
//! the kernel send a reset, and the client, still writing its body, gets "connection reset" or
//! "broken pipe" instead of the answer. [`LingeringClose`] closes such a connection in the
//! background instead: it ends the sending side (the client sees the answer and end of
//! stream), then reads and discards what the client still sends until it closes its side or
//! [`LINGER_FOR`] has passed.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The longest a closed connection is read from before the socket is closed.
pub const LINGER_FOR: Duration = Duration::from_secs(2);

/// A TCP stream (admitted under its listener's cap, which it holds while it lingers) that, when
/// dropped before its client closed its side, is closed in the background (a task on the
/// current runtime) after a lingering read.
#[derive(Debug)]
pub struct LingeringClose<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> {
    /// `None` once handed to the lingering task.
    stream: Option<S>,
    /// Whether the client has closed its side (a read found end of stream).
    client_closed: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> LingeringClose<S> {
    pub fn new(stream: S) -> Self {
        Self {
            stream: Some(stream),
            client_closed: false,
        }
    }

    fn stream(&mut self) -> Pin<&mut S> {
        Pin::new(
            self.stream
                .as_mut()
                .expect("the stream is present until drop"),
        )
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Drop for LingeringClose<S> {
    fn drop(&mut self) {
        let Some(stream) = self.stream.take() else {
            return;
        };
        if self.client_closed {
            return;
        }
        // Without a runtime (or when it is shutting down), the socket simply closes.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(linger(stream));
        }
    }
}

/// Ends the sending side, then discards what the client sends until it closes its side, an
/// error, or [`LINGER_FOR`].
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let _ = tokio::time::timeout(LINGER_FOR, async {
        let _ = stream.shutdown().await;
        let mut discarded = [0u8; 8192];
        while let Ok(1..) = stream.read(&mut discarded).await {}
    })
    .await;
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncRead for LingeringClose<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = self.stream().poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && buf.filled().len() == before
            && buf.remaining() > 0
        {
            self.client_closed = true;
        }
        polled
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncWrite for LingeringClose<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.stream().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.stream().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream
            .as_ref()
            .is_some_and(AsyncWrite::is_write_vectored)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_shutdown(cx)
    }
}
