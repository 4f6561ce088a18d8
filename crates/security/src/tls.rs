//! Server-side TLS: rustls (ring) configurations built from PEM files and rebuilt when they
//! change (see [`crate::reload`]), TLS 1.2 and 1.3 only, client certificates verified against a
//! CA bundle when asked (`off | optional | required`).
//!
//! A rebuilt configuration applies to connections accepted afterwards; connections already
//! established keep theirs, so a rotation never fails a request in flight.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::{ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::reload::Reloading;

/// Whether a listener speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsMode {
    On,
    Off,
}

/// Whether clients must present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientAuth {
    /// No client certificates are asked for.
    Off,
    /// A client may present a certificate (verified against the client CA); one that does not
    /// authenticates otherwise.
    Optional,
    /// Every connection must present a certificate the client CA verifies.
    Required,
}

/// Which protocols a listener offers in ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocols {
    /// gRPC: HTTP/2 only (gRPC clients insist on `h2`).
    Grpc,
    /// An HTTP API: HTTP/2 and HTTP/1.1.
    Http,
}

/// Where a server's certificate, key and client CA come from.
#[derive(Debug, Clone)]
pub struct ServerTlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
}

/// The crypto provider of every TLS configuration here: ring, named explicitly, so that no
/// process-wide default is needed.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates in a PEM file (a chain, leaf first, or a CA bundle).
pub fn load_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read the certificate file {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a valid PEM certificate file", path.display()))?;
    anyhow::ensure!(
        !certificates.is_empty(),
        "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        path.display()
    );
    Ok(certificates)
}

/// The private key in a PEM file (PKCS#8, PKCS#1 or SEC1). Errors never show the key.
pub fn load_private_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|error| {
        let why = match error {
            rustls_pki_types::pem::Error::NoItemsFound => {
                "holds no PEM private key (PKCS#8, PKCS#1 or SEC1)".to_owned()
            }
            rustls_pki_types::pem::Error::Io(error) => format!("cannot be read: {error}"),
            _ => "is not a valid PEM private key file".to_owned(),
        };
        anyhow::anyhow!("the key file {} {why}", path.display())
    })
}

/// A root store of the CA certificates in a PEM file.
pub fn load_roots(path: &Path) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for certificate in load_certificates(path)? {
        roots.add(certificate).with_context(|| {
            format!(
                "{} holds a CA certificate rustls cannot use",
                path.display()
            )
        })?;
    }
    Ok(roots)
}

/// The configurations of one set of files, per protocol set.
#[derive(Debug)]
struct Configs {
    grpc: Arc<rustls::ServerConfig>,
    http: Arc<rustls::ServerConfig>,
}

/// A server's TLS, reloaded when its files change.
#[derive(Debug, Clone)]
pub struct ServerTls {
    configs: Arc<Reloading<Configs>>,
    client_auth: ClientAuth,
}

impl ServerTls {
    /// Loads the files (an error names what is wrong) and watches them every `interval`.
    pub fn watch(files: ServerTlsFiles, interval: Duration) -> anyhow::Result<Self> {
        if files.client_auth != ClientAuth::Off && files.client_ca.is_none() {
            anyhow::bail!(
                "--tls-client-auth {} needs a CA to verify client certificates against (--tls-client-ca-file)",
                if files.client_auth == ClientAuth::Required {
                    "required"
                } else {
                    "optional"
                }
            );
        }
        let mut paths = vec![files.cert.clone(), files.key.clone()];
        paths.extend(files.client_ca.clone());
        // Shared across rebuilds: sessions resumed after a rotation stay resumable.
        let sessions = ServerSessionMemoryCache::new(4096);
        let ticketer = rustls::crypto::ring::Ticketer::new()
            .context("cannot create the TLS session ticketer")?;
        let client_auth = files.client_auth;
        let configs = Reloading::watch("the TLS certificate", paths, interval, move || {
            let build = |protocols| {
                let mut config = server_config(&files, protocols)?;
                config.session_storage = Arc::clone(&sessions) as _;
                config.ticketer = Arc::clone(&ticketer);
                Ok::<_, anyhow::Error>(Arc::new(config))
            };
            Ok(Configs {
                grpc: build(Protocols::Grpc)?,
                http: build(Protocols::Http)?,
            })
        })?;
        Ok(Self {
            configs,
            client_auth,
        })
    }

    /// An acceptor with the current configuration for `protocols`.
    pub fn acceptor(&self, protocols: Protocols) -> TlsAcceptor {
        let configs = self.configs.current();
        TlsAcceptor::from(match protocols {
            Protocols::Grpc => Arc::clone(&configs.grpc),
            Protocols::Http => Arc::clone(&configs.http),
        })
    }

    /// Whether client certificates are asked for.
    pub fn client_auth(&self) -> ClientAuth {
        self.client_auth
    }

    /// How many times the files were reloaded (for tests and metrics).
    pub fn generation(&self) -> u64 {
        self.configs.generation()
    }

    /// How many reloads failed.
    pub fn reload_failures(&self) -> u64 {
        self.configs.failures()
    }
}

/// A server configuration from the files, offering `protocols` in ALPN.
fn server_config(
    files: &ServerTlsFiles,
    protocols: Protocols,
) -> anyhow::Result<rustls::ServerConfig> {
    let provider = provider();
    let certificates = load_certificates(&files.cert)?;
    let key = load_private_key(&files.key)?;
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("the TLS provider supports neither TLS 1.3 nor 1.2")?;
    let builder = match (&files.client_ca, files.client_auth) {
        (Some(ca), ClientAuth::Optional | ClientAuth::Required) => {
            let roots = Arc::new(load_roots(ca)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier = if files.client_auth == ClientAuth::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().with_context(|| {
                format!("cannot verify client certificates with {}", ca.display())
            })?)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certificates, key)
        .with_context(|| {
            format!(
                "the key {} does not go with the certificate {}",
                files.key.display(),
                files.cert.display()
            )
        })?;
    config.alpn_protocols = match protocols {
        Protocols::Grpc => vec![b"h2".to_vec()],
        Protocols::Http => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    };
    Ok(config)
}
