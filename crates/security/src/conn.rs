//! Accepted connections: the TLS handshake (or none), and what the connection tells about its
//! peer ([`ConnectionInfo`]: address, TLS, client certificate), which reaches every request's
//! extensions: through tonic's [`Connected`] for gRPC, through [`WithConnectionInfo`] for a
//! hyper-served HTTP API.
//!
//! Handshakes run as tasks of their own, each bounded by a timeout, so a client that stops
//! halfway through one (or never starts) holds nothing but its socket for that long and never
//! delays other connections.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use crate::tls::{Protocols, ServerTls};

/// What is known about the peer of a connection.
#[derive(Debug, Clone, Default)]
pub struct ConnectionInfo {
    pub remote_addr: Option<SocketAddr>,
    /// Whether the connection speaks TLS.
    pub tls: bool,
    /// The client certificate the TLS handshake verified, with its mapped principal name.
    pub client_certificate: Option<Arc<ClientCertificate>>,
}

/// A verified client certificate.
#[derive(Debug)]
pub struct ClientCertificate {
    pub der: CertificateDer<'static>,
    /// The principal name under each mapping, computed once per connection.
    pub(crate) mapped: OnceLock<Option<Arc<str>>>,
}

impl ClientCertificate {
    pub fn new(der: CertificateDer<'static>) -> Self {
        Self {
            der,
            mapped: OnceLock::new(),
        }
    }
}

/// A connection's stream: TCP (or any byte stream) with or without TLS.
#[derive(Debug)]
pub enum ServerStream<IO> {
    Plain(IO),
    Tls(Box<tokio_rustls::server::TlsStream<IO>>),
}

/// An accepted connection: its stream and what it tells about the peer.
#[derive(Debug)]
pub struct Accepted<IO> {
    pub stream: ServerStream<IO>,
    pub info: ConnectionInfo,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for Accepted<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.stream {
            ServerStream::Plain(io) => Pin::new(io).poll_read(cx, buf),
            ServerStream::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Accepted<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.stream {
            ServerStream::Plain(io) => Pin::new(io).poll_write(cx, buf),
            ServerStream::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.stream {
            ServerStream::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            ServerStream::Tls(io) => Pin::new(io.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            ServerStream::Plain(io) => io.is_write_vectored(),
            ServerStream::Tls(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.stream {
            ServerStream::Plain(io) => Pin::new(io).poll_flush(cx),
            ServerStream::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.stream {
            ServerStream::Plain(io) => Pin::new(io).poll_shutdown(cx),
            ServerStream::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }
}

/// tonic inserts the [`ConnectionInfo`] into every request's extensions.
impl<IO> Connected for Accepted<IO> {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.info.clone()
    }
}

/// How a listener's connections are accepted: with TLS or without, and how long a handshake
/// may take.
#[derive(Debug, Clone)]
pub struct Acceptor {
    tls: Option<ServerTls>,
    protocols: Protocols,
    handshake_timeout: Duration,
}

impl Acceptor {
    pub fn new(tls: Option<ServerTls>, protocols: Protocols, handshake_timeout: Duration) -> Self {
        Self {
            tls,
            protocols,
            handshake_timeout,
        }
    }

    /// Whether connections speak TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Accepts one connection: the TLS handshake when TLS is on (bounded by the handshake
    /// timeout), nothing otherwise.
    pub async fn accept<IO>(
        &self,
        io: IO,
        remote_addr: Option<SocketAddr>,
    ) -> io::Result<Accepted<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let Some(tls) = &self.tls else {
            return Ok(Accepted {
                stream: ServerStream::Plain(io),
                info: ConnectionInfo {
                    remote_addr,
                    tls: false,
                    client_certificate: None,
                },
            });
        };
        let acceptor = tls.acceptor(self.protocols);
        let stream = tokio::time::timeout(self.handshake_timeout, acceptor.accept(io))
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, "the TLS handshake timed out")
            })??;
        let client_certificate = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| Arc::new(ClientCertificate::new(leaf.clone().into_owned())));
        Ok(Accepted {
            stream: ServerStream::Tls(Box::new(stream)),
            info: ConnectionInfo {
                remote_addr,
                tls: true,
                client_certificate,
            },
        })
    }

    /// The accepted connections of `incoming` (pairs of a stream and its peer's address), for a
    /// server that takes a stream of connections (tonic's `serve_with_incoming`). Handshakes
    /// run concurrently, each in a task of the current runtime; one that fails or times out is
    /// dropped (logged at debug level: scanners and health checkers make many).
    pub fn accept_all<IO, S>(
        &self,
        incoming: S,
    ) -> Pin<Box<dyn Stream<Item = io::Result<Accepted<IO>>> + Send>>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: Stream<Item = io::Result<(IO, Option<SocketAddr>)>> + Send + 'static,
    {
        if self.tls.is_none() {
            return Box::pin(incoming.map(|accepted| {
                let (io, remote_addr) = accepted?;
                Ok(Accepted {
                    stream: ServerStream::Plain(io),
                    info: ConnectionInfo {
                        remote_addr,
                        tls: false,
                        client_certificate: None,
                    },
                })
            }));
        }
        let (sender, receiver) = mpsc::channel(64);
        let acceptor = self.clone();
        tokio::spawn(async move {
            let mut incoming = std::pin::pin!(incoming);
            while let Some(next) = incoming.next().await {
                let (io, remote_addr) = match next {
                    Ok(connection) => connection,
                    Err(error) => {
                        if sender.send(Err(error)).await.is_err() {
                            return;
                        }
                        continue;
                    }
                };
                let (acceptor, sender) = (acceptor.clone(), sender.clone());
                tokio::spawn(async move {
                    match acceptor.accept(io, remote_addr).await {
                        Ok(accepted) => {
                            let _ = sender.send(Ok(accepted)).await;
                        }
                        Err(error) => {
                            tracing::debug!(%error, remote_addr = ?remote_addr, "TLS handshake failed");
                        }
                    }
                });
            }
        });
        Box::pin(ReceiverStream::new(receiver))
    }
}

/// The connections `listener` accepts, with TCP_NODELAY set and their peers' addresses. A failed
/// accept (e.g. out of file descriptors) is logged and retried after 10 ms instead of spinning.
pub fn tcp_incoming(
    listener: TcpListener,
) -> impl Stream<Item = io::Result<(TcpStream, Option<SocketAddr>)>> + Send + 'static {
    futures::stream::unfold(listener, |listener| async move {
        loop {
            match listener.accept().await {
                Ok((stream, remote_addr)) => {
                    let _ = stream.set_nodelay(true);
                    return Some((Ok((stream, Some(remote_addr))), listener));
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    })
}

/// A service that puts its connection's [`ConnectionInfo`] into every request's extensions (what
/// tonic does through [`Connected`], for servers built on hyper directly).
#[derive(Debug, Clone)]
pub struct WithConnectionInfo<S> {
    inner: S,
    info: ConnectionInfo,
}

impl<S> WithConnectionInfo<S> {
    pub fn new(inner: S, info: ConnectionInfo) -> Self {
        Self { inner, info }
    }
}

impl<S, B> tower_service::Service<http::Request<B>> for WithConnectionInfo<S>
where
    S: tower_service::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        request.extensions_mut().insert(self.info.clone());
        self.inner.call(request)
    }
}
