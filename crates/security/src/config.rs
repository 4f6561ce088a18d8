//! The perimeter's settings, shared by both services' command lines ([`SecurityArgs`], flattened
//! into each service's settings), and what they build ([`ServerSecurity`]).
//!
//! Secure by default: TLS is on unless `--tls off`, and authentication is on unless
//! `--auth none`. A service given neither a certificate nor an explicit `--tls off`, or no way
//! to authenticate nor an explicit `--auth none`, refuses to start and says which flags to set.
//! Running without TLS or without authentication on a listener that is not loopback is logged
//! as a warning at startup.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::authenticate::{Authenticator, Methods, MtlsPrincipal, OpenServices};
use crate::authz::{Authorizer, Limits, PolicySource};
use crate::conn::Acceptor;
use crate::jwt::{JwksSource, JwtSettings, JwtVerifier};
use crate::layer::{AuthLayer, Protocol};
use crate::limits::{LimitLayer, PrincipalLimits};
use crate::reload::Reloading;
use crate::tls::{ClientAuth, Protocols, ServerTls, ServerTlsFiles, TlsMode};
use crate::users::Users;

/// An authentication method, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthSetting {
    /// HTTP basic credentials checked against `--auth-users-file`.
    Basic,
    /// Bearer JWTs verified against `--auth-jwks-file` or `--auth-jwks-url`.
    Jwt,
    /// Client certificates verified against `--tls-client-ca-file`.
    Mtls,
    /// No authentication at all.
    None,
}

/// A gRPC service that may be called without credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OpenService {
    /// `grpc.health.v1.Health`.
    Health,
    /// gRPC server reflection.
    Reflection,
    /// None of them.
    None,
}

/// Whether requests are authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthzSetting {
    /// By the policy file (`--authz-policy-file`).
    Policy,
    /// Every authenticated principal may do everything.
    None,
}

/// TLS, authentication and authorization settings of a service's listeners.
#[derive(Debug, Clone, clap::Args)]
pub struct SecurityArgs {
    /// Serve the APIs over TLS (`on`, the default, needs --tls-cert-file and --tls-key-file) or
    /// in plaintext (`off`).
    #[arg(long = "tls", env = "TLS", value_enum, default_value = "on")]
    pub tls: TlsMode,

    /// PEM certificate chain of the listeners, leaf first (reloaded when it changes).
    #[arg(long, env = "TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key of the listeners (PKCS#8, PKCS#1 or SEC1; reloaded when it changes).
    #[arg(long, env = "TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,

    /// PEM CA bundle client certificates are verified against (reloaded when it changes).
    #[arg(long, env = "TLS_CLIENT_CA_FILE")]
    pub tls_client_ca_file: Option<PathBuf>,

    /// Whether clients present certificates: off, optional, required (default: optional when a
    /// client CA is given, else off).
    #[arg(long, env = "TLS_CLIENT_AUTH", value_enum)]
    pub tls_client_auth: Option<ClientAuth>,

    /// Longest a TLS handshake may take, in milliseconds.
    #[arg(long, env = "TLS_HANDSHAKE_TIMEOUT_MS", default_value_t = 10_000)]
    pub tls_handshake_timeout_ms: u64,

    /// Serve /metrics, /livez and /readyz over TLS too (same certificate); off by default.
    #[arg(long, env = "METRICS_TLS", value_enum, default_value = "off")]
    pub metrics_tls: TlsMode,

    /// How often certificate, key, CA, users and JWKS files are checked for changes, in
    /// milliseconds.
    #[arg(long, env = "FILES_RELOAD_INTERVAL_MS", default_value_t = 2000)]
    pub files_reload_interval_ms: u64,

    /// Authentication methods, comma separated: basic, jwt, mtls; or none (no authentication).
    /// Default: every method whose settings are given.
    #[arg(long = "auth", env = "AUTH", value_enum, value_delimiter = ',')]
    pub auth: Vec<AuthSetting>,

    /// Users of basic authentication: `name:hash` lines, argon2id or bcrypt hashes
    /// (`hash-password` makes them; reloaded when the file changes).
    #[arg(long, env = "AUTH_USERS_FILE")]
    pub auth_users_file: Option<PathBuf>,

    /// JWKS file bearer JWTs are verified against (reloaded when it changes).
    #[arg(long, env = "AUTH_JWKS_FILE")]
    pub auth_jwks_file: Option<PathBuf>,

    /// JWKS https URL bearer JWTs are verified against (fetched and refreshed).
    #[arg(long, env = "AUTH_JWKS_URL")]
    pub auth_jwks_url: Option<String>,

    /// PEM CA bundle for the JWKS URL's server (default: the webpki roots).
    #[arg(long, env = "AUTH_JWKS_CA_FILE")]
    pub auth_jwks_ca_file: Option<PathBuf>,

    /// How often the JWKS URL is fetched again, in milliseconds.
    #[arg(long, env = "AUTH_JWKS_REFRESH_MS", default_value_t = 300_000)]
    pub auth_jwks_refresh_ms: u64,

    /// The issuer (`iss`) bearer JWTs must name.
    #[arg(long, env = "AUTH_JWT_ISSUER")]
    pub auth_jwt_issuer: Option<String>,

    /// The audience (`aud`) bearer JWTs must name.
    #[arg(long, env = "AUTH_JWT_AUDIENCE")]
    pub auth_jwt_audience: Option<String>,

    /// The JWT claim naming the principal.
    #[arg(long, env = "AUTH_JWT_PRINCIPAL_CLAIM", default_value = "sub")]
    pub auth_jwt_principal_claim: String,

    /// The JWT claim listing the principal's groups.
    #[arg(long, env = "AUTH_JWT_GROUPS_CLAIM", default_value = "groups")]
    pub auth_jwt_groups_claim: String,

    /// Clock skew allowed on `exp` and `nbf`, in milliseconds.
    #[arg(long, env = "AUTH_JWT_LEEWAY_MS", default_value_t = 30_000)]
    pub auth_jwt_leeway_ms: u64,

    /// What names a client certificate's principal: cn, dn, san-dns, san-uri, san-email.
    #[arg(long, env = "AUTH_MTLS_PRINCIPAL", value_enum, default_value = "cn")]
    pub auth_mtls_principal: MtlsPrincipal,

    /// How long a verified credential is remembered, in milliseconds (never past a JWT's exp).
    #[arg(long, env = "AUTH_CACHE_TTL_MS", default_value_t = 60_000)]
    pub auth_cache_ttl_ms: u64,

    /// gRPC services answered without credentials, comma separated: health, reflection, none.
    #[arg(
        long,
        env = "AUTH_OPEN",
        value_enum,
        value_delimiter = ',',
        default_value = "health"
    )]
    pub auth_open: Vec<OpenService>,

    /// The authorization policy (YAML: roles, bindings, groups; reloaded when it changes).
    #[arg(long, env = "AUTHZ_POLICY_FILE")]
    pub authz_policy_file: Option<PathBuf>,

    /// `policy` (the default with a policy file) or `none`: every authenticated principal may
    /// do everything. With authentication on, one of them must be given.
    #[arg(long = "authz", env = "AUTHZ", value_enum)]
    pub authz: Option<AuthzSetting>,

    /// Requests per second per principal whose roles set no rate (0: unlimited).
    #[arg(long, env = "LIMIT_REQUESTS_PER_SECOND", default_value_t = 0)]
    pub limit_requests_per_second: u32,

    /// Burst per principal whose roles set none (0: one second's worth).
    #[arg(long, env = "LIMIT_BURST", default_value_t = 0)]
    pub limit_burst: u32,

    /// Streams open at once per principal whose roles set no limit (0: unlimited).
    #[arg(long, env = "LIMIT_CONCURRENT_STREAMS", default_value_t = 0)]
    pub limit_concurrent_streams: u32,
}

impl Default for SecurityArgs {
    /// The command line's defaults: TLS on, authentication on, nothing configured yet.
    fn default() -> Self {
        Self {
            tls: TlsMode::On,
            tls_cert_file: None,
            tls_key_file: None,
            tls_client_ca_file: None,
            tls_client_auth: None,
            tls_handshake_timeout_ms: 10_000,
            metrics_tls: TlsMode::Off,
            files_reload_interval_ms: 2000,
            auth: Vec::new(),
            auth_users_file: None,
            auth_jwks_file: None,
            auth_jwks_url: None,
            auth_jwks_ca_file: None,
            auth_jwks_refresh_ms: 300_000,
            auth_jwt_issuer: None,
            auth_jwt_audience: None,
            auth_jwt_principal_claim: "sub".to_owned(),
            auth_jwt_groups_claim: "groups".to_owned(),
            auth_jwt_leeway_ms: 30_000,
            auth_mtls_principal: MtlsPrincipal::Cn,
            auth_cache_ttl_ms: 60_000,
            auth_open: vec![OpenService::Health],
            authz_policy_file: None,
            authz: None,
            limit_requests_per_second: 0,
            limit_burst: 0,
            limit_concurrent_streams: 0,
        }
    }
}

impl SecurityArgs {
    /// No TLS, no authentication, no authorization (`--tls off --auth none --authz none`).
    pub fn insecure() -> Self {
        Self {
            tls: TlsMode::Off,
            auth: vec![AuthSetting::None],
            authz: Some(AuthzSetting::None),
            ..Self::default()
        }
    }

    /// The limits of a principal whose roles set none.
    fn default_limits(&self) -> Limits {
        let some = |value: u32| (value > 0).then_some(value);
        Limits {
            requests_per_second: some(self.limit_requests_per_second),
            burst: some(self.limit_burst),
            concurrent_streams: some(self.limit_concurrent_streams),
        }
    }

    /// Where decisions come from.
    fn policy_source(&self, authenticated: bool) -> anyhow::Result<PolicySource> {
        match (self.authz, &self.authz_policy_file) {
            (Some(AuthzSetting::None), None) => Ok(PolicySource::AllowAuthenticated),
            (Some(AuthzSetting::None), Some(_)) => {
                anyhow::bail!("--authz none, but a policy file is given: drop one of them")
            }
            (_, Some(path)) => Ok(PolicySource::File(path.clone())),
            (Some(AuthzSetting::Policy), None) => {
                anyhow::bail!("--authz policy needs --authz-policy-file (AUTHZ_POLICY_FILE)")
            }
            // Without authentication there are no principals to tell apart.
            (None, None) if !authenticated => Ok(PolicySource::AllowAuthenticated),
            (None, None) => anyhow::bail!(
                "authorization is on by default with authentication: give a policy \
                 (--authz-policy-file, AUTHZ_POLICY_FILE), or let every authenticated principal \
                 do everything explicitly with --authz none"
            ),
        }
    }

    fn reload_interval(&self) -> Duration {
        Duration::from_millis(self.files_reload_interval_ms.max(10))
    }

    fn client_auth(&self) -> ClientAuth {
        self.tls_client_auth
            .unwrap_or(if self.tls_client_ca_file.is_some() {
                ClientAuth::Optional
            } else {
                ClientAuth::Off
            })
    }

    /// The methods asked for: `--auth`, or every configured one.
    fn methods_asked(&self) -> anyhow::Result<Option<Vec<AuthSetting>>> {
        if self.auth.contains(&AuthSetting::None) {
            anyhow::ensure!(
                self.auth.len() == 1,
                "--auth none cannot be combined with other methods"
            );
            return Ok(None);
        }
        if !self.auth.is_empty() {
            return Ok(Some(self.auth.clone()));
        }
        let mut configured = Vec::new();
        if self.auth_users_file.is_some() {
            configured.push(AuthSetting::Basic);
        }
        if self.auth_jwks_file.is_some() || self.auth_jwks_url.is_some() {
            configured.push(AuthSetting::Jwt);
        }
        if self.tls == TlsMode::On && self.client_auth() != ClientAuth::Off {
            configured.push(AuthSetting::Mtls);
        }
        anyhow::ensure!(
            !configured.is_empty(),
            "authentication is on by default and nothing is configured for it: give \
             --auth-users-file (basic), --auth-jwks-file or --auth-jwks-url with \
             --auth-jwt-issuer and --auth-jwt-audience (jwt), or --tls-client-ca-file (mtls); \
             or turn it off explicitly with --auth none"
        );
        Ok(Some(configured))
    }
}

/// What a service's perimeter is made of, built from [`SecurityArgs`].
#[derive(Debug, Clone)]
pub struct ServerSecurity {
    tls: Option<ServerTls>,
    metrics_tls: bool,
    handshake_timeout: Duration,
    authenticator: Arc<Authenticator>,
    authorizer: Arc<Authorizer>,
}

impl ServerSecurity {
    /// Loads certificates, users, keys and the policy (errors name the file and what is wrong
    /// with it) and starts watching them, for `service` ("registry", "messaging": the audit
    /// log's and the metrics' name for it). Must be called inside a Tokio runtime.
    pub fn from_args(args: &SecurityArgs, service: &'static str) -> anyhow::Result<Self> {
        let interval = args.reload_interval();
        let tls = match args.tls {
            TlsMode::Off => {
                anyhow::ensure!(
                    args.tls_cert_file.is_none() && args.tls_key_file.is_none(),
                    "--tls off, but a certificate or key is given: drop them or turn TLS on"
                );
                None
            }
            TlsMode::On => {
                let (Some(cert), Some(key)) = (&args.tls_cert_file, &args.tls_key_file) else {
                    anyhow::bail!(
                        "TLS is on by default: give --tls-cert-file and --tls-key-file \
                         (TLS_CERT_FILE, TLS_KEY_FILE), or serve plaintext explicitly with --tls off"
                    );
                };
                Some(ServerTls::watch(
                    ServerTlsFiles {
                        cert: cert.clone(),
                        key: key.clone(),
                        client_ca: args.tls_client_ca_file.clone(),
                        client_auth: args.client_auth(),
                    },
                    interval,
                )?)
            }
        };
        anyhow::ensure!(
            args.metrics_tls == TlsMode::Off || tls.is_some(),
            "--metrics-tls on needs TLS on (the metrics listener uses the same certificate)"
        );
        let authenticator = match args.methods_asked()? {
            None => Authenticator::disabled(),
            Some(asked) => Authenticator::new(
                methods(args, &asked, tls.as_ref(), interval)?,
                OpenServices {
                    health: args.auth_open.contains(&OpenService::Health),
                    reflection: args.auth_open.contains(&OpenService::Reflection),
                },
                Duration::from_millis(args.auth_cache_ttl_ms),
            )?,
        };
        let authorizer = Authorizer::new(
            service,
            args.policy_source(authenticator.is_enabled())?,
            args.default_limits(),
            interval,
        )?;
        Ok(Self {
            tls,
            metrics_tls: args.metrics_tls == TlsMode::On,
            handshake_timeout: Duration::from_millis(args.tls_handshake_timeout_ms.max(1)),
            authenticator: Arc::new(authenticator),
            authorizer: Arc::new(authorizer),
        })
    }

    /// What decides authorization, for the handlers' checks.
    pub fn authorizer(&self) -> &Arc<Authorizer> {
        &self.authorizer
    }

    /// The per-principal limits layer, after authentication; `streaming` are the gRPC paths
    /// that count as streams (see [`crate::limits::streaming_methods`]).
    pub fn limit_layer(
        &self,
        protocol: Protocol,
        streaming: std::collections::HashSet<String>,
    ) -> LimitLayer {
        LimitLayer::new(
            Arc::new(PrincipalLimits::new(
                Arc::clone(&self.authorizer),
                streaming,
            )),
            protocol,
        )
    }

    /// How a listener of `protocols` accepts connections.
    pub fn acceptor(&self, protocols: Protocols) -> Acceptor {
        Acceptor::new(self.tls.clone(), protocols, self.handshake_timeout)
    }

    /// How the metrics listener accepts connections (TLS only with `--metrics-tls on`).
    pub fn metrics_acceptor(&self) -> Acceptor {
        let tls = if self.metrics_tls {
            self.tls.clone()
        } else {
            None
        };
        Acceptor::new(tls, Protocols::Http, self.handshake_timeout)
    }

    /// The authentication layer for a gRPC server.
    pub fn grpc_layer(&self) -> AuthLayer {
        AuthLayer::new(Arc::clone(&self.authenticator), Protocol::Grpc)
    }

    /// The authentication layer for an HTTP API answering errors with `content_type`.
    pub fn http_layer(&self, content_type: &'static str) -> AuthLayer {
        AuthLayer::new(
            Arc::clone(&self.authenticator),
            Protocol::Http { content_type },
        )
    }

    /// The server TLS, when on.
    pub fn tls(&self) -> Option<&ServerTls> {
        self.tls.as_ref()
    }

    pub fn authenticator(&self) -> &Arc<Authenticator> {
        &self.authenticator
    }

    /// Logs how a listener is protected, with a warning when it is reachable beyond loopback
    /// without TLS or without authentication. The metrics listener (`authenticated` false)
    /// speaks TLS only with `--metrics-tls on`.
    pub fn announce(&self, listener: &str, addr: SocketAddr, authenticated: bool) {
        let tls = self.tls.is_some() && (authenticated || self.metrics_tls);
        let authentication = authenticated && self.authenticator.is_enabled();
        if !addr.ip().is_loopback() && authenticated {
            if !tls {
                tracing::warn!(%listener, %addr, "listening WITHOUT TLS on a non-loopback address: traffic, credentials included, travels in the clear");
            }
            if authenticated && !self.authenticator.is_enabled() {
                tracing::warn!(%listener, %addr, "listening WITHOUT authentication (--auth none) on a non-loopback address: anyone who can reach it can call every method");
            }
        }
        tracing::info!(%listener, %addr, tls, authentication, "listener protection");
    }
}

fn methods(
    args: &SecurityArgs,
    asked: &[AuthSetting],
    tls: Option<&ServerTls>,
    interval: Duration,
) -> anyhow::Result<Methods> {
    let mut methods = Methods::default();
    for method in asked {
        match method {
            AuthSetting::Basic => {
                let path = args.auth_users_file.clone().context(
                    "basic authentication needs a users file (--auth-users-file, AUTH_USERS_FILE)",
                )?;
                let watched = path.clone();
                methods.basic = Some(Reloading::watch(
                    "the users file",
                    vec![path],
                    interval,
                    move || Users::load(&watched),
                )?);
            }
            AuthSetting::Jwt => {
                let source = match (&args.auth_jwks_file, &args.auth_jwks_url) {
                    (Some(file), None) => JwksSource::File(file.clone()),
                    (None, Some(url)) => JwksSource::Url {
                        url: url.clone(),
                        ca_file: args.auth_jwks_ca_file.clone(),
                        refresh: Duration::from_millis(args.auth_jwks_refresh_ms.max(1000)),
                    },
                    (Some(_), Some(_)) => {
                        anyhow::bail!("give --auth-jwks-file or --auth-jwks-url, not both")
                    }
                    (None, None) => anyhow::bail!(
                        "JWT authentication needs a JWKS (--auth-jwks-file or --auth-jwks-url)"
                    ),
                };
                methods.jwt = Some(JwtVerifier::new(
                    JwtSettings {
                        issuer: args.auth_jwt_issuer.clone().unwrap_or_default(),
                        audience: args.auth_jwt_audience.clone().unwrap_or_default(),
                        principal_claim: args.auth_jwt_principal_claim.clone(),
                        groups_claim: args.auth_jwt_groups_claim.clone(),
                        leeway: Duration::from_millis(args.auth_jwt_leeway_ms),
                    },
                    source,
                    interval,
                )?);
            }
            AuthSetting::Mtls => {
                anyhow::ensure!(
                    tls.is_some_and(|tls| tls.client_auth() != ClientAuth::Off),
                    "mTLS authentication needs TLS with client certificates (--tls-client-ca-file)"
                );
                methods.mtls = Some(args.auth_mtls_principal);
            }
            AuthSetting::None => {}
        }
    }
    Ok(methods)
}

/// `<binary> hash-password [--user NAME]`: reads a password from standard input (its first
/// line) and prints its argon2id hash, as a users file line when a user is named. Returns
/// `None` when the command line is not this tool's, so the service starts as usual.
pub fn hash_password_tool(args: &[std::ffi::OsString]) -> Option<anyhow::Result<()>> {
    if args.get(1).and_then(|arg| arg.to_str()) != Some("hash-password") {
        return None;
    }
    Some((|| {
        const USAGE: &str = "usage: hash-password [--user NAME] < password\n\
            Reads a password (the first line of standard input) and prints its argon2id hash, as a\n\
            users file line `NAME:$argon2id$...` when --user is given.";
        let user = match args.get(2..).unwrap_or_default() {
            [flag] if flag == "--help" || flag == "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            [] => None,
            [flag, name] if flag == "--user" => Some(
                name.to_str()
                    .filter(|name| !name.is_empty() && !name.contains(':'))
                    .context("the user name must be text without ':'")?
                    .to_owned(),
            ),
            _ => anyhow::bail!("{USAGE}"),
        };
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        let password = line
            .strip_suffix("\r\n")
            .or_else(|| line.strip_suffix('\n'))
            .unwrap_or(&line);
        anyhow::ensure!(!password.is_empty(), "the password is empty");
        let hash = crate::users::hash_password(password.as_bytes())?;
        match user {
            Some(user) => println!("{user}:{hash}"),
            None => println!("{hash}"),
        }
        Ok(())
    })())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        security: SecurityArgs,
    }

    #[test]
    fn defaults_match_the_command_line() {
        let parsed = Cli::try_parse_from(["x"]).unwrap_or_else(|e| panic!("{e}"));
        let defaults = SecurityArgs::default();
        // Only where no environment variable of this process could interfere.
        assert_eq!(
            format!("{:?}", parsed.security.auth_open),
            format!("{:?}", defaults.auth_open)
        );
        assert_eq!(
            parsed.security.auth_jwt_principal_claim,
            defaults.auth_jwt_principal_claim
        );
        assert_eq!(
            parsed.security.auth_cache_ttl_ms,
            defaults.auth_cache_ttl_ms
        );
        assert_eq!(
            parsed.security.tls_handshake_timeout_ms,
            defaults.tls_handshake_timeout_ms
        );
    }

    #[tokio::test]
    async fn secure_by_default_means_refusing_to_start_unconfigured() {
        let error = ServerSecurity::from_args(&SecurityArgs::default(), "test")
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(
            error.contains("--tls-cert-file") && error.contains("--tls off"),
            "{error}"
        );
        let error = ServerSecurity::from_args(
            &SecurityArgs {
                tls: TlsMode::Off,
                ..SecurityArgs::default()
            },
            "test",
        )
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
        assert!(error.contains("--auth none"), "{error}");
        let insecure = ServerSecurity::from_args(&SecurityArgs::insecure(), "test")
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(!insecure.authenticator().is_enabled());
        assert!(insecure.tls().is_none());
    }
}
