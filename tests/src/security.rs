//! The test suite's perimeter: a certificate authority made by rcgen at the start of the test
//! process (no certificate is committed), a server certificate for `localhost`/`127.0.0.1`,
//! client certificates, a users file of argon2id hashes and a JWKS with a signing key, so that
//! every test runs the services as they run by default: TLS, and authentication.
//!
//! Files live under `target/test-pki/<pid>/` (removed by `cargo clean`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tributary_security::SecurityArgs;
use tributary_security::client::{CallCredentials, ClientTls, ClientTlsFiles};
use tributary_security::config::AuthSetting;
use tributary_security::tls::ClientAuth;
use tributary_testkit::{Authority, SigningKey, random_password, users_file, write_private};

/// The issuer test JWTs name.
pub const ISSUER: &str = "https://issuer.tributary.test";
/// The audience test JWTs name.
pub const AUDIENCE: &str = "tributary-tests";
/// The key id of the test JWKS's key.
pub const KEY_ID: &str = "test-key-1";

/// A gRPC channel whose calls carry credentials.
pub type AuthChannel = InterceptedService<Channel, CallCredentials>;

/// The test process's certificates, users and keys.
pub struct Pki {
    pub dir: PathBuf,
    /// The CA that signed the server and client certificates.
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// Users `admin` and `messaging`.
    pub users: PathBuf,
    pub jwks: PathBuf,
    /// The authorization policy of the tests' services: every authenticated principal may do
    /// everything (the authorization tests bring policies of their own).
    pub policy: PathBuf,
    pub admin_password: String,
    pub messaging_password: String,
    pub messaging_password_file: PathBuf,
    /// A client certificate for principal `cert-admin` (CN).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A client certificate from a CA the services do not know.
    pub foreign_client_cert: PathBuf,
    pub foreign_client_key: PathBuf,
    authority: Authority,
    signing_key: SigningKey,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Pki {
    fn create() -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/test-pki")
            .join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).unwrap();

        let authority = Authority::new("tributary test CA").unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, authority.certificate()).unwrap();

        let (server_cert, server_key) = (dir.join("server.pem"), dir.join("server.key"));
        authority
            .issue_server(&["localhost", "127.0.0.1"])
            .and_then(|issued| issued.write(&server_cert, &server_key))
            .unwrap();
        let (client_cert, client_key) = (dir.join("client.pem"), dir.join("client.key"));
        authority
            .issue_client("cert-admin")
            .and_then(|issued| issued.write(&client_cert, &client_key))
            .unwrap();
        let (foreign_client_cert, foreign_client_key) =
            (dir.join("foreign.pem"), dir.join("foreign.key"));
        Authority::new("an unknown CA")
            .and_then(|foreign| foreign.issue_client("cert-admin"))
            .and_then(|issued| issued.write(&foreign_client_cert, &foreign_client_key))
            .unwrap();

        let admin_password = random_password();
        let messaging_password = format!("{}m", random_password());
        let users = dir.join("users");
        let users_text = users_file(&[
            ("admin", &admin_password),
            ("messaging", &messaging_password),
        ])
        .unwrap();
        write_private(&users, users_text.as_bytes()).unwrap();
        let messaging_password_file = dir.join("messaging.password");
        write_private(
            &messaging_password_file,
            format!("{messaging_password}\n").as_bytes(),
        )
        .unwrap();

        let signing_key = SigningKey::new(KEY_ID).unwrap();
        let jwks = dir.join("jwks.json");
        std::fs::write(&jwks, signing_key.jwks()).unwrap();
        let policy = dir.join("policy.yaml");
        std::fs::write(
            &policy,
            "roles:\n  everything:\n    rules:\n      - allow: ['*']\n        on: ['*']\n\
             bindings:\n  - role: everything\n    to: ['*']\n",
        )
        .unwrap();

        Self {
            dir,
            ca,
            server_cert,
            server_key,
            users,
            jwks,
            policy,
            admin_password,
            messaging_password,
            messaging_password_file,
            client_cert,
            client_key,
            foreign_client_cert,
            foreign_client_key,
            authority,
            signing_key,
        }
    }

    /// Writes a new server certificate for `names`, signed by the test CA.
    pub fn issue_server_certificate(&self, names: &[&str], cert: &Path, key: &Path) {
        self.authority
            .issue_server(names)
            .and_then(|issued| issued.write(cert, key))
            .unwrap();
    }

    /// Writes a new client certificate with CN `common_name`, signed by the test CA.
    pub fn issue_client_certificate(&self, common_name: &str, cert: &Path, key: &Path) {
        self.authority
            .issue_client(common_name)
            .and_then(|issued| issued.write(cert, key))
            .unwrap();
    }

    /// A JWT with `claims`, signed by the JWKS's key.
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        self.signing_key.sign(claims).unwrap()
    }

    /// A valid JWT for `subject`, expiring in an hour.
    pub fn jwt(&self, subject: &str) -> String {
        self.sign(&claims(subject, ISSUER, AUDIENCE, 3600))
    }
}

/// Standard claims: `sub`, `iss`, `aud`, `iat`, `exp` = now + `lifetime` seconds (negative:
/// expired), and `groups`.
pub fn claims(subject: &str, issuer: &str, audience: &str, lifetime: i64) -> serde_json::Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    serde_json::json!({
        "sub": subject, "iss": issuer, "aud": audience,
        "iat": now, "exp": now + lifetime, "groups": ["team-a"],
    })
}

/// The test process's PKI, created on first use.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(Pki::create)
}

/// A service's security settings in tests: TLS with the test certificate, client certificates
/// optional (verified against the test CA), and all three authentication methods.
pub fn server_args() -> SecurityArgs {
    let pki = pki();
    SecurityArgs {
        tls_cert_file: Some(pki.server_cert.clone()),
        tls_key_file: Some(pki.server_key.clone()),
        tls_client_ca_file: Some(pki.ca.clone()),
        tls_client_auth: Some(ClientAuth::Optional),
        auth: vec![AuthSetting::Basic, AuthSetting::Jwt, AuthSetting::Mtls],
        auth_users_file: Some(pki.users.clone()),
        auth_jwks_file: Some(pki.jwks.clone()),
        auth_jwt_issuer: Some(ISSUER.to_owned()),
        auth_jwt_audience: Some(AUDIENCE.to_owned()),
        authz_policy_file: Some(pki.policy.clone()),
        ..SecurityArgs::default()
    }
}

/// The same settings as environment variables, for services started as processes.
pub fn server_env() -> Vec<(&'static str, String)> {
    let pki = pki();
    let path = |p: &Path| p.display().to_string();
    vec![
        ("TLS", "on".to_owned()),
        ("TLS_CERT_FILE", path(&pki.server_cert)),
        ("TLS_KEY_FILE", path(&pki.server_key)),
        ("TLS_CLIENT_CA_FILE", path(&pki.ca)),
        ("TLS_CLIENT_AUTH", "optional".to_owned()),
        ("AUTH", "basic,jwt,mtls".to_owned()),
        ("AUTH_USERS_FILE", path(&pki.users)),
        ("AUTH_JWKS_FILE", path(&pki.jwks)),
        ("AUTH_JWT_ISSUER", ISSUER.to_owned()),
        ("AUTH_JWT_AUDIENCE", AUDIENCE.to_owned()),
        ("AUTHZ_POLICY_FILE", path(&pki.policy)),
    ]
}

/// The messaging service's way to the registry in tests: TLS with the test CA, user
/// `messaging`.
pub fn messaging_registry_env() -> Vec<(&'static str, String)> {
    let pki = pki();
    vec![
        ("REGISTRY_CA_FILE", pki.ca.display().to_string()),
        ("REGISTRY_USERNAME", "messaging".to_owned()),
        (
            "REGISTRY_PASSWORD_FILE",
            pki.messaging_password_file.display().to_string(),
        ),
    ]
}

/// Client TLS trusting the test CA.
pub fn client_tls() -> ClientTls {
    ClientTls::fixed(
        tributary_security::client::client_config(Some(&pki().ca), None, &[b"h2"]).unwrap(),
    )
}

/// Client TLS trusting the test CA and presenting a client certificate.
pub fn client_tls_with(cert: &Path, key: &Path) -> ClientTls {
    ClientTls::fixed(
        tributary_security::client::client_config(Some(&pki().ca), Some((cert, key)), &[b"h2"])
            .unwrap(),
    )
}

/// Client TLS files for the test CA.
pub fn client_tls_files() -> ClientTlsFiles {
    ClientTlsFiles {
        ca: Some(pki().ca.clone()),
        identity: None,
    }
}

/// Basic credentials of the `admin` user.
pub fn admin() -> CallCredentials {
    CallCredentials::basic(
        "admin",
        &tributary_security::Secret::new(&pki().admin_password),
    )
    .unwrap()
}

/// `Authorization` value of the `admin` user.
pub fn admin_authorization() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{}", pki().admin_password))
    )
}

/// A TLS gRPC channel to `addr` (connected now) whose calls carry `credentials`.
pub async fn channel_with(
    addr: std::net::SocketAddr,
    tls: ClientTls,
    credentials: CallCredentials,
) -> Result<AuthChannel, tonic::transport::Error> {
    let channel =
        tributary_security::client::channel(&format!("https://{addr}"), Some(tls), |e| e).unwrap();
    // Connect now, so that a refused handshake is the caller's error.
    let mut ready = channel.clone();
    std::future::poll_fn(|cx| tower_service::Service::poll_ready(&mut ready, cx)).await?;
    Ok(InterceptedService::new(channel, credentials))
}

/// A TLS gRPC channel to `addr` as `admin` (basic credentials; the connection also presents
/// the test client certificate, so that services requiring one accept it).
pub async fn admin_channel(addr: std::net::SocketAddr) -> AuthChannel {
    let pki = pki();
    channel_with(
        addr,
        client_tls_with(&pki.client_cert, &pki.client_key),
        admin(),
    )
    .await
    .unwrap_or_else(|error| panic!("cannot connect to {addr} over TLS: {error:?}"))
}

/// An HTTPS client trusting the test CA (no credentials: add them per request, or use
/// [`admin_http_client`]).
pub fn http_client() -> reqwest::Client {
    http_client_builder().build().unwrap()
}

/// An HTTPS client trusting the test CA, sending `admin`'s basic credentials.
pub fn admin_http_client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let mut value = reqwest::header::HeaderValue::from_str(&admin_authorization()).unwrap();
    value.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, value);
    http_client_builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// An HTTPS client builder trusting the test CA.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    let ca = std::fs::read(&pki().ca).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .tls_built_in_root_certs(false)
}

/// A raw TLS connection to `addr` offering `alpn` (e.g. `http/1.1`), for tests that write
/// requests by hand.
pub async fn tls_connect(
    addr: std::net::SocketAddr,
    alpn: &[u8],
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let config = tributary_security::client::client_config(Some(&pki().ca), None, &[alpn]).unwrap();
    tls_connect_with(addr, config).await
}

/// A raw TLS connection to `addr` with a client configuration of the caller's.
pub async fn tls_connect_with(
    addr: std::net::SocketAddr,
    config: rustls::ClientConfig,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
}
