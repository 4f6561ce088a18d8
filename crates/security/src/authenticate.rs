//! Deciding who a request comes from: the `Authorization` header (basic credentials against the
//! users file, or a bearer JWT against the JWKS), else the connection's client certificate.
//!
//! The cost of a request is bounded:
//! - A credential verified once is remembered for a short time (`--auth-cache-ttl-ms`, and never
//!   past a token's `exp`), keyed by the SHA-256 of the header value: a keep-alive client pays
//!   for one password hash, not one per request, and no password is kept in memory. A new users
//!   file forgets every remembered basic credential.
//! - Password hashes are checked on blocking threads, at most one per CPU core at a time; a
//!   request waits for its turn at most [`HASH_QUEUE_TIMEOUT`] and is then told to retry.
//! - Headers longer than [`MAX_AUTHORIZATION_BYTES`] are refused before any parsing.
//!
//! Refusals never contain the credentials, and neither does any log line.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::conn::ConnectionInfo;
use crate::jwt::{JwtRefusal, JwtVerifier, now_seconds};
use crate::principal::{AuthMethod, Principal};
use crate::reload::Reloading;
use crate::secret::Secret;
use crate::users::Users;

/// The longest `Authorization` header read (a JWT with many claims fits comfortably).
pub const MAX_AUTHORIZATION_BYTES: usize = 8 * 1024;
/// How long a request waits for a turn to have its password hash checked.
pub const HASH_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);
/// How many verified credentials are remembered.
const CACHE_CAPACITY: u64 = 10_000;

/// How a client certificate names its principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MtlsPrincipal {
    /// The subject's common name (CN).
    Cn,
    /// The whole subject distinguished name, RFC 4514 style (`CN=app,O=team`).
    Dn,
    /// The first DNS subject alternative name.
    SanDns,
    /// The first URI subject alternative name (SPIFFE IDs).
    SanUri,
    /// The first e-mail subject alternative name.
    SanEmail,
}

impl MtlsPrincipal {
    /// The principal name a certificate gives under this mapping.
    pub fn map(self, der: &[u8]) -> Option<String> {
        use x509_parser::extensions::GeneralName;
        let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
        let name = match self {
            MtlsPrincipal::Cn => certificate
                .subject()
                .iter_common_name()
                .next()?
                .as_str()
                .ok()?
                .to_owned(),
            MtlsPrincipal::Dn => certificate.subject().to_string(),
            MtlsPrincipal::SanDns | MtlsPrincipal::SanUri | MtlsPrincipal::SanEmail => {
                let names = certificate.subject_alternative_name().ok()??;
                names
                    .value
                    .general_names
                    .iter()
                    .find_map(|name| match (self, name) {
                        (MtlsPrincipal::SanDns, GeneralName::DNSName(value))
                        | (MtlsPrincipal::SanUri, GeneralName::URI(value))
                        | (MtlsPrincipal::SanEmail, GeneralName::RFC822Name(value)) => {
                            Some((*value).to_owned())
                        }
                        _ => None,
                    })?
            }
        };
        (!name.is_empty() && name.len() <= 1024).then_some(name)
    }

    fn describe(self) -> &'static str {
        match self {
            MtlsPrincipal::Cn => "a subject common name (CN)",
            MtlsPrincipal::Dn => "a subject",
            MtlsPrincipal::SanDns => "a DNS subject alternative name",
            MtlsPrincipal::SanUri => "a URI subject alternative name",
            MtlsPrincipal::SanEmail => "an e-mail subject alternative name",
        }
    }
}

/// Services answered without credentials.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenServices {
    pub health: bool,
    pub reflection: bool,
}

impl OpenServices {
    fn admits(&self, path: &str) -> bool {
        (self.health && path.starts_with("/grpc.health.v1.Health/"))
            || (self.reflection
                && (path.starts_with("/grpc.reflection.v1.ServerReflection/")
                    || path.starts_with("/grpc.reflection.v1alpha.ServerReflection/")))
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub message: Cow<'static, str>,
}

/// What kind of refusal: the caller's fault, or not knowable right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// No, bad or expired credentials: HTTP 401, gRPC UNAUTHENTICATED.
    Unauthenticated,
    /// The credentials cannot be checked right now (the JWKS cannot be fetched, too many
    /// password checks queued): HTTP 503, gRPC UNAVAILABLE.
    Unavailable,
    /// Over a per-principal limit: HTTP 429 with `Retry-After`, gRPC RESOURCE_EXHAUSTED.
    RateLimited { retry_after: Duration },
}

impl Refusal {
    fn unauthenticated(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind: RefusalKind::Unauthenticated,
            message: message.into(),
        }
    }

    fn unavailable(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind: RefusalKind::Unavailable,
            message: message.into(),
        }
    }

    /// Over a limit; the client may retry after `retry_after`.
    pub fn rate_limited(message: impl Into<Cow<'static, str>>, retry_after: Duration) -> Self {
        Self {
            kind: RefusalKind::RateLimited { retry_after },
            message: message.into(),
        }
    }
}

/// Credentials that need verifying (a cache miss).
#[derive(Debug)]
pub struct Pending {
    key: [u8; 32],
    credentials: Credentials,
}

#[derive(Debug)]
enum Credentials {
    Basic { user: String, password: Secret },
    Bearer(Secret),
}

/// What [`Authenticator::check`] decided without waiting.
#[derive(Debug)]
pub enum Decision {
    Allow(Principal),
    Deny(Refusal),
    /// Credentials to verify with [`Authenticator::verify`].
    Verify(Pending),
}

/// A remembered credential.
#[derive(Debug, Clone)]
struct Remembered {
    principal: Principal,
    /// For basic credentials: the users file generation they were checked against.
    users_generation: Option<u64>,
    /// How long the entry lives.
    valid_for: Duration,
}

struct RememberedExpiry;

impl moka::Expiry<[u8; 32], Remembered> for RememberedExpiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Remembered,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.valid_for)
    }
}

/// The methods a service authenticates with.
#[derive(Debug, Default)]
pub struct Methods {
    pub basic: Option<Arc<Reloading<Users>>>,
    pub jwt: Option<JwtVerifier>,
    pub mtls: Option<MtlsPrincipal>,
}

impl Methods {
    pub fn is_empty(&self) -> bool {
        self.basic.is_none() && self.jwt.is_none() && self.mtls.is_none()
    }
}

/// Authenticates requests, remembering what it verified.
pub struct Authenticator {
    /// `None`: authentication is off (`--auth none`).
    methods: Option<Methods>,
    open: OpenServices,
    cache: moka::sync::Cache<[u8; 32], Remembered>,
    cache_ttl: Duration,
    hashing: Arc<Semaphore>,
    challenges: Vec<http::HeaderValue>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("methods", &self.methods)
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Authentication with `methods` (at least one), credentials remembered for `cache_ttl`.
    pub fn new(methods: Methods, open: OpenServices, cache_ttl: Duration) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !methods.is_empty(),
            "authentication needs at least one method"
        );
        let mut challenges = Vec::new();
        if methods.basic.is_some() {
            challenges.push(http::HeaderValue::from_static(
                "Basic realm=\"tributary\", charset=\"UTF-8\"",
            ));
        }
        if methods.jwt.is_some() {
            challenges.push(http::HeaderValue::from_static("Bearer realm=\"tributary\""));
        }
        if challenges.is_empty() {
            // Client certificates only: no HTTP scheme names them; say what is expected.
            challenges.push(http::HeaderValue::from_static(
                "ClientCertificate realm=\"tributary\"",
            ));
        }
        Ok(Self {
            methods: Some(methods),
            open,
            cache: moka::sync::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .expire_after(RememberedExpiry)
                .build(),
            cache_ttl,
            hashing: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(1, usize::from),
            )),
            challenges,
        })
    }

    /// No authentication: every request is the anonymous principal.
    pub fn disabled() -> Self {
        Self {
            methods: None,
            open: OpenServices::default(),
            cache: moka::sync::Cache::new(1),
            cache_ttl: Duration::ZERO,
            hashing: Arc::new(Semaphore::new(1)),
            challenges: Vec::new(),
        }
    }

    /// Whether requests are authenticated at all.
    pub fn is_enabled(&self) -> bool {
        self.methods.is_some()
    }

    /// The `WWW-Authenticate` challenges of an HTTP 401.
    pub fn challenges(&self) -> &[http::HeaderValue] {
        &self.challenges
    }

    /// Decides what can be decided without waiting: no authentication, an open service, a
    /// remembered credential, a client certificate, or a malformed header.
    pub fn check(
        &self,
        headers: &HeaderMap,
        connection: Option<&ConnectionInfo>,
        path: &str,
    ) -> Decision {
        let Some(methods) = &self.methods else {
            return Decision::Allow(Principal::anonymous());
        };
        if self.open.admits(path) {
            return Decision::Allow(Principal::anonymous());
        }
        let mut values = headers.get_all(AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return self.by_certificate(methods, connection);
        };
        if values.next().is_some() {
            return Decision::Deny(Refusal::unauthenticated(
                "more than one Authorization header",
            ));
        }
        if value.len() > MAX_AUTHORIZATION_BYTES {
            return Decision::Deny(Refusal::unauthenticated(format!(
                "the Authorization header is longer than {MAX_AUTHORIZATION_BYTES} bytes"
            )));
        }
        let key: [u8; 32] = Sha256::digest(value.as_bytes()).into();
        if let Some(remembered) = self.cache.get(&key) {
            let current = remembered.users_generation.is_none_or(|generation| {
                methods
                    .basic
                    .as_ref()
                    .is_some_and(|users| users.generation() == generation)
            });
            if current {
                return Decision::Allow(remembered.principal);
            }
            self.cache.invalidate(&key);
        }
        match parse_authorization(value.as_bytes()) {
            Ok(Credentials::Basic { .. }) if methods.basic.is_none() => Decision::Deny(
                Refusal::unauthenticated("basic authentication is not enabled on this service"),
            ),
            Ok(Credentials::Bearer(_)) if methods.jwt.is_none() => Decision::Deny(
                Refusal::unauthenticated("bearer tokens are not accepted by this service"),
            ),
            Ok(credentials) => Decision::Verify(Pending { key, credentials }),
            Err(refusal) => Decision::Deny(refusal),
        }
    }

    fn by_certificate(&self, methods: &Methods, connection: Option<&ConnectionInfo>) -> Decision {
        let certificate = connection.and_then(|info| info.client_certificate.as_ref());
        match (methods.mtls, certificate) {
            (Some(mapping), Some(certificate)) => {
                let name = certificate
                    .mapped
                    .get_or_init(|| mapping.map(certificate.der.as_ref()).map(Arc::from));
                match name {
                    Some(name) => {
                        Decision::Allow(Principal::new(Arc::clone(name), AuthMethod::Mtls))
                    }
                    None => Decision::Deny(Refusal::unauthenticated(format!(
                        "the client certificate has no {} to take the principal from",
                        mapping.describe()
                    ))),
                }
            }
            _ => Decision::Deny(Refusal::unauthenticated(self.credentials_required())),
        }
    }

    fn credentials_required(&self) -> &'static str {
        let Some(methods) = &self.methods else {
            return "";
        };
        match (
            methods.basic.is_some(),
            methods.jwt.is_some(),
            methods.mtls.is_some(),
        ) {
            (true, true, true) => {
                "authentication required: send basic credentials or a bearer token, or present a client certificate"
            }
            (true, true, false) => {
                "authentication required: send basic credentials or a bearer token"
            }
            (true, false, true) => {
                "authentication required: send basic credentials or present a client certificate"
            }
            (false, true, true) => {
                "authentication required: send a bearer token or present a client certificate"
            }
            (true, false, false) => "authentication required: send basic credentials",
            (false, true, false) => "authentication required: send a bearer token",
            (false, false, _) => "authentication required: present a client certificate",
        }
    }

    /// Verifies credentials [`Self::check`] could not decide on, and remembers them.
    pub async fn verify(&self, pending: Pending) -> Result<Principal, Refusal> {
        let Some(methods) = &self.methods else {
            return Ok(Principal::anonymous());
        };
        match pending.credentials {
            Credentials::Basic { user, password } => {
                let Some(users) = &methods.basic else {
                    return Err(Refusal::unauthenticated(
                        "basic authentication is not enabled on this service",
                    ));
                };
                let _turn = tokio::time::timeout(HASH_QUEUE_TIMEOUT, self.hashing.acquire())
                    .await
                    .map_err(|_| {
                        Refusal::unavailable("too many credential checks in progress; retry")
                    })?
                    .map_err(|_| Refusal::unavailable("shutting down"))?;
                // Another request may have verified the same credentials while this one waited.
                if let Some(remembered) = self.cache.get(&pending.key)
                    && remembered.users_generation == Some(users.generation())
                {
                    return Ok(remembered.principal);
                }
                let current = users.current();
                let generation = users.generation();
                let checked_user = user.clone();
                let valid = tokio::task::spawn_blocking(move || {
                    current.verify(&checked_user, password.expose().as_bytes())
                })
                .await
                .unwrap_or(false);
                if !valid {
                    tracing::debug!(user = %user, "basic authentication failed");
                    return Err(Refusal::unauthenticated("invalid user name or password"));
                }
                let principal = Principal::new(user, AuthMethod::Basic);
                self.cache.insert(
                    pending.key,
                    Remembered {
                        principal: principal.clone(),
                        users_generation: Some(generation),
                        valid_for: self.cache_ttl,
                    },
                );
                Ok(principal)
            }
            Credentials::Bearer(token) => {
                let Some(jwt) = &methods.jwt else {
                    return Err(Refusal::unauthenticated(
                        "bearer tokens are not accepted by this service",
                    ));
                };
                let verified = jwt.verify(token.expose()).await.map_err(|refusal| {
                    tracing::debug!(reason = %refusal, "bearer authentication failed");
                    match refusal {
                        JwtRefusal::KeysUnavailable => Refusal::unavailable(refusal.to_string()),
                        refusal => Refusal::unauthenticated(refusal.to_string()),
                    }
                })?;
                let principal = Principal::with_groups(
                    verified.principal,
                    AuthMethod::Bearer,
                    verified.groups.into(),
                );
                let left = verified.expires_at.saturating_sub(now_seconds());
                let valid_for = self.cache_ttl.min(Duration::from_secs(left));
                if !valid_for.is_zero() {
                    self.cache.insert(
                        pending.key,
                        Remembered {
                            principal: principal.clone(),
                            users_generation: None,
                            valid_for,
                        },
                    );
                }
                Ok(principal)
            }
        }
    }
}

/// The credentials in an `Authorization` header value.
fn parse_authorization(value: &[u8]) -> Result<Credentials, Refusal> {
    let malformed = || Refusal::unauthenticated("malformed Authorization header");
    let text = std::str::from_utf8(value).map_err(|_| malformed())?;
    let (scheme, rest) = text.split_once(' ').ok_or_else(malformed)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| Refusal::unauthenticated("the basic credentials are not valid base64"))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| Refusal::unauthenticated("the basic credentials are not UTF-8"))?;
        let (user, password) = decoded.split_once(':').ok_or_else(|| {
            Refusal::unauthenticated("the basic credentials are not `user:password`")
        })?;
        if user.is_empty() {
            return Err(Refusal::unauthenticated(
                "the basic credentials have no user name",
            ));
        }
        Ok(Credentials::Basic {
            user: user.to_owned(),
            password: Secret::new(password),
        })
    } else if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Err(malformed());
        }
        Ok(Credentials::Bearer(Secret::new(rest)))
    } else {
        Err(Refusal::unauthenticated(
            "unsupported authorization scheme (Basic or Bearer)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::hash_password;

    fn users(lines: &str) -> Arc<Reloading<Users>> {
        Reloading::fixed(
            "users",
            Users::parse(lines).unwrap_or_else(|e| panic!("{e:#}")),
        )
    }

    fn basic_header(credentials: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        headers.insert(
            AUTHORIZATION,
            http::HeaderValue::from_str(&format!("Basic {encoded}"))
                .unwrap_or_else(|e| panic!("{e}")),
        );
        headers
    }

    fn authenticator() -> Authenticator {
        let hash = hash_password(b"right").unwrap_or_default();
        Authenticator::new(
            Methods {
                basic: Some(users(&format!("ann:{hash}"))),
                jwt: None,
                mtls: None,
            },
            OpenServices {
                health: true,
                reflection: false,
            },
            Duration::from_secs(60),
        )
        .unwrap_or_else(|e| panic!("{e:#}"))
    }

    async fn decide(
        auth: &Authenticator,
        headers: &HeaderMap,
        path: &str,
    ) -> Result<Principal, Refusal> {
        match auth.check(headers, None, path) {
            Decision::Allow(principal) => Ok(principal),
            Decision::Deny(refusal) => Err(refusal),
            Decision::Verify(pending) => auth.verify(pending).await,
        }
    }

    #[tokio::test]
    async fn basic_credentials_are_verified_once_then_remembered() {
        let auth = authenticator();
        let headers = basic_header("ann:right");
        assert!(matches!(
            auth.check(&headers, None, "/x"),
            Decision::Verify(_)
        ));
        let principal = decide(&auth, &headers, "/x")
            .await
            .unwrap_or_else(|r| panic!("{r:?}"));
        assert_eq!(&*principal.name, "ann");
        assert_eq!(principal.method, AuthMethod::Basic);
        assert!(
            matches!(auth.check(&headers, None, "/x"), Decision::Allow(_)),
            "remembered, no second hash"
        );
    }

    #[tokio::test]
    async fn refusals_say_why_without_the_secret() {
        let auth = authenticator();
        let wrong = decide(&auth, &basic_header("ann:wrong-pass-zq"), "/x").await;
        assert_eq!(
            wrong.err().map(|r| r.message.into_owned()),
            Some("invalid user name or password".to_owned())
        );
        let unknown = decide(&auth, &basic_header("bob:right"), "/x").await;
        assert_eq!(
            unknown.err().map(|r| r.message.into_owned()),
            Some("invalid user name or password".to_owned()),
            "an unknown user is not told apart from a wrong password"
        );
        let anonymous = decide(&auth, &HeaderMap::new(), "/x").await;
        assert_eq!(
            anonymous.err().map(|r| r.message.into_owned()),
            Some("authentication required: send basic credentials".to_owned())
        );
        for (value, expected) in [
            ("Basic !!!", "not valid base64"),
            ("Basic Ym9i", "not `user:password`"),
            ("Digest abc", "unsupported authorization scheme"),
            ("Basic", "malformed"),
            ("Bearer abc", "not accepted"),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, http::HeaderValue::from_static(value));
            let refusal = decide(&auth, &headers, "/x")
                .await
                .err()
                .map(|r| r.message.into_owned())
                .unwrap_or_default();
            assert!(refusal.contains(expected), "{value}: {refusal}");
        }
        let mut huge = HeaderMap::new();
        huge.insert(
            AUTHORIZATION,
            http::HeaderValue::from_str(&format!("Basic {}", "A".repeat(64 * 1024)))
                .unwrap_or_else(|e| panic!("{e}")),
        );
        let refusal = decide(&auth, &huge, "/x")
            .await
            .err()
            .map(|r| r.message.into_owned())
            .unwrap_or_default();
        assert!(refusal.contains("longer than 8192 bytes"), "{refusal}");
    }

    #[test]
    fn client_certificates_name_their_principal_by_the_chosen_field() {
        use rcgen::{CertificateParams, DnType, KeyPair, SanType};
        let mut params =
            CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "orders-app");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "team-a");
        params.subject_alt_names = vec![
            SanType::DnsName(
                "orders.team-a.svc"
                    .try_into()
                    .unwrap_or_else(|e| panic!("{e}")),
            ),
            SanType::URI(
                "spiffe://cluster/ns/team-a/sa/orders"
                    .try_into()
                    .unwrap_or_else(|e| panic!("{e}")),
            ),
            SanType::Rfc822Name(
                "orders@team-a.example"
                    .try_into()
                    .unwrap_or_else(|e| panic!("{e}")),
            ),
        ];
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let certificate = params.self_signed(&key).unwrap_or_else(|e| panic!("{e}"));
        let der = certificate.der();
        assert_eq!(MtlsPrincipal::Cn.map(der).as_deref(), Some("orders-app"));
        let dn = MtlsPrincipal::Dn.map(der).unwrap_or_default();
        assert!(
            dn.contains("CN=orders-app") && dn.contains("O=team-a"),
            "{dn}"
        );
        assert_eq!(
            MtlsPrincipal::SanDns.map(der).as_deref(),
            Some("orders.team-a.svc")
        );
        assert_eq!(
            MtlsPrincipal::SanUri.map(der).as_deref(),
            Some("spiffe://cluster/ns/team-a/sa/orders")
        );
        assert_eq!(
            MtlsPrincipal::SanEmail.map(der).as_deref(),
            Some("orders@team-a.example")
        );

        // Without the field: no principal (the request is refused naming what is missing).
        let mut bare =
            CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
        bare.distinguished_name = rcgen::DistinguishedName::new();
        bare.distinguished_name
            .push(DnType::OrganizationName, "team-a");
        let bare = bare.self_signed(&key).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(MtlsPrincipal::Cn.map(bare.der()), None);
        assert_eq!(MtlsPrincipal::SanUri.map(bare.der()), None);
        assert_eq!(MtlsPrincipal::Cn.map(b"not a certificate"), None);
    }

    #[tokio::test]
    async fn open_services_and_disabled_authentication_admit_anyone() {
        let auth = authenticator();
        let principal = decide(&auth, &HeaderMap::new(), "/grpc.health.v1.Health/Check").await;
        assert_eq!(
            principal.ok().map(|p| p.method),
            Some(AuthMethod::Anonymous)
        );
        let reflection = decide(
            &auth,
            &HeaderMap::new(),
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        )
        .await;
        assert!(reflection.is_err(), "reflection is not open here");
        let off = Authenticator::disabled();
        assert!(!off.is_enabled());
        assert!(decide(&off, &HeaderMap::new(), "/anything").await.is_ok());
    }
}
