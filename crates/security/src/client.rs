//! The client side, for one service calling another (messaging -> registry), for tests and
//! benchmarks: TLS verified against a CA bundle (or the webpki roots), an optional client
//! certificate, both reloaded when their files change, and call credentials (basic, or a
//! bearer token from a file re-read when it changes).
//!
//! An `https://` URL always speaks TLS and an `http://` one never does: a URL never falls back
//! to cleartext, and TLS settings given with an `http://` URL are an error rather than ignored.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint, Uri};

use crate::reload::Reloading;
use crate::secret::Secret;
use crate::tls::{load_certificates, load_private_key, load_roots, provider};

/// A client TLS configuration: the servers' CA (else the webpki roots), an optional client
/// certificate, ALPN `alpn`.
pub fn client_config(
    ca_file: Option<&Path>,
    identity: Option<(&Path, &Path)>,
    alpn: &[&[u8]],
) -> anyhow::Result<rustls::ClientConfig> {
    let roots = match ca_file {
        Some(path) => load_roots(path)?,
        None => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("the TLS provider supports neither TLS 1.3 nor 1.2")?
        .with_root_certificates(roots);
    let mut config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(load_certificates(cert)?, load_private_key(key)?)
            .with_context(|| {
                format!(
                    "the key {} does not go with the certificate {}",
                    key.display(),
                    cert.display()
                )
            })?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    Ok(config)
}

/// Where a client's TLS files are.
#[derive(Debug, Clone, Default)]
pub struct ClientTlsFiles {
    /// The CA bundle the server's certificate is verified against (else the webpki roots).
    pub ca: Option<PathBuf>,
    /// A client certificate and its key, for mTLS.
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl ClientTlsFiles {
    pub fn is_empty(&self) -> bool {
        self.ca.is_none() && self.identity.is_none()
    }
}

/// A gRPC client's TLS (ALPN `h2`), reloaded when its files change.
#[derive(Debug, Clone)]
pub struct ClientTls {
    config: Arc<Reloading<rustls::ClientConfig>>,
}

impl ClientTls {
    /// Loads the files now and watches them every `interval` (inside a Tokio runtime).
    pub fn watch(files: ClientTlsFiles, interval: Duration) -> anyhow::Result<Self> {
        let mut paths: Vec<PathBuf> = files.ca.iter().cloned().collect();
        if let Some((cert, key)) = &files.identity {
            paths.extend([cert.clone(), key.clone()]);
        }
        let config = Reloading::watch("the client TLS files", paths, interval, move || {
            let identity = files
                .identity
                .as_ref()
                .map(|(cert, key)| (cert.as_path(), key.as_path()));
            client_config(files.ca.as_deref(), identity, &[b"h2"])
        })?;
        Ok(Self { config })
    }

    /// TLS with a fixed configuration (ALPN is set to `h2` here).
    pub fn fixed(mut config: rustls::ClientConfig) -> Self {
        config.alpn_protocols = vec![b"h2".to_vec()];
        Self {
            config: Reloading::fixed("the client TLS configuration", config),
        }
    }
}

/// A gRPC channel to `url`, connected lazily: TLS for `https://` (with `tls`, or the webpki
/// roots when `None`), cleartext for `http://` (and then `tls` must be `None`). `configure`
/// sets timeouts and the like.
pub fn channel(
    url: &str,
    tls: Option<ClientTls>,
    configure: impl FnOnce(Endpoint) -> Endpoint,
) -> anyhow::Result<Channel> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("{url} is not a valid URL"))?;
    let tls = match (endpoint.uri().scheme_str(), tls) {
        (Some("https"), Some(tls)) => Some(tls),
        (Some("https"), None) => Some(ClientTls::fixed(client_config(None, None, &[b"h2"])?)),
        (Some("http"), None) => None,
        (Some("http"), Some(_)) => anyhow::bail!(
            "{url} is http://, but TLS settings are given: use an https:// URL (a TLS setting never silently goes unused)"
        ),
        _ => anyhow::bail!("{url} is neither http:// nor https://"),
    };
    Ok(configure(endpoint).connect_with_connector_lazy(Connector { tls }))
}

/// Connects TCP, then TLS when configured.
#[derive(Debug, Clone)]
struct Connector {
    tls: Option<ClientTls>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<ClientStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let tls = self.tls.as_ref().map(|tls| tls.config.current());
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the URL has no host"))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri
                .port_u16()
                .unwrap_or(if tls.is_some() { 443 } else { 80 });
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let Some(config) = tls else {
                return Ok(TokioIo::new(ClientStream::Plain(tcp)));
            };
            let name = ServerName::try_from(host)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "invalid server name"))?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok(TokioIo::new(ClientStream::Tls(Box::new(stream))))
        })
    }
}

/// A client connection, with or without TLS.
#[derive(Debug)]
pub enum ClientStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(io) => Pin::new(io).poll_read(cx, buf),
            ClientStream::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(io) => Pin::new(io).poll_write(cx, buf),
            ClientStream::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            ClientStream::Tls(io) => Pin::new(io.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ClientStream::Plain(io) => io.is_write_vectored(),
            ClientStream::Tls(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(io) => Pin::new(io).poll_flush(cx),
            ClientStream::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(io) => Pin::new(io).poll_shutdown(cx),
            ClientStream::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }
}

/// What a client sends to authenticate each call.
#[derive(Debug, Clone, Default)]
pub enum CallCredentials {
    /// Nothing (the server authenticates the client certificate, or nobody).
    #[default]
    None,
    /// `authorization: Basic ...`.
    Basic(MetadataValue<Ascii>),
    /// `authorization: Bearer ...`, the token read from a file whenever it changes.
    Bearer(Arc<Reloading<MetadataValue<Ascii>>>),
}

impl CallCredentials {
    /// Basic credentials.
    pub fn basic(user: &str, password: &Secret) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !user.contains(':'),
            "a basic-auth user name cannot contain ':'"
        );
        let encoded = base64::engine::general_purpose::STANDARD
            .encode(format!("{user}:{}", password.expose()));
        let mut value = MetadataValue::try_from(format!("Basic {encoded}"))
            .map_err(|_| anyhow::anyhow!("the basic credentials are not valid header text"))?;
        value.set_sensitive(true);
        Ok(Self::Basic(value))
    }

    /// A bearer token read from `path`, re-read when it changes (checked every `interval`).
    pub fn bearer_file(path: PathBuf, interval: Duration) -> anyhow::Result<Self> {
        let read = path.clone();
        let token = Reloading::watch("the bearer token file", vec![path], interval, move || {
            let token = Secret::from_file(&read)?;
            let mut value =
                MetadataValue::try_from(format!("Bearer {}", token.expose())).map_err(|_| {
                    anyhow::anyhow!(
                        "the bearer token in {} is not valid header text",
                        read.display()
                    )
                })?;
            value.set_sensitive(true);
            Ok(value)
        })?;
        Ok(Self::Bearer(token))
    }

    /// The `authorization` value to send, if any.
    pub fn authorization(&self) -> Option<MetadataValue<Ascii>> {
        match self {
            CallCredentials::None => None,
            CallCredentials::Basic(value) => Some(value.clone()),
            CallCredentials::Bearer(token) => Some((*token.current()).clone()),
        }
    }

    /// Adds the credentials to a request's metadata.
    pub fn apply<T>(&self, request: &mut tonic::Request<T>) {
        if let Some(value) = self.authorization() {
            request.metadata_mut().insert("authorization", value);
        }
    }
}

/// A tonic interceptor sending [`CallCredentials`] with every call.
impl tonic::service::Interceptor for CallCredentials {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        self.apply(&mut request);
        Ok(request)
    }
}
