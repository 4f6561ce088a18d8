//! The benches' perimeter, made at the start of a run (no certificate is committed): a CA and a
//! server certificate for `127.0.0.1`/`localhost` (rcgen, ECDSA P-256), a users file with one
//! argon2id user, a JWKS with one ES256 key and a token signed by it (valid for a day), all in a
//! directory removed when the [`Pki`] is dropped. [`Mode`] says how a service started by a bench
//! is secured, which environment starts it that way and how a client calls it.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use base64::Engine;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tributary_security::Secret;
use tributary_security::client::{CallCredentials, ClientTls};
use tributary_security::reload::Reloading;
use tributary_testkit::{Authority, SigningKey, random_password, users_file, write_private};

/// The issuer the bench's JWTs name (and the services require).
pub const ISSUER: &str = "https://issuer.bench.tributary.invalid";
/// The audience the bench's JWTs name (and the services require).
pub const AUDIENCE: &str = "tributary-bench";
/// The key id of the bench's JWKS key.
pub const KEY_ID: &str = "bench-key-1";
/// The basic-auth user the bench calls the services as.
pub const USER: &str = "bench";
/// How long the bench's JWT is valid: longer than any run.
const TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// A gRPC channel whose calls carry credentials (none in plaintext mode).
pub type AuthChannel = InterceptedService<Channel, CallCredentials>;

/// Environment variables of the services' security settings (and of the messaging service's
/// way to the registry). They are removed from a started service's environment before a
/// [`Mode`]'s are set, so that a shell's settings (e.g. `scripts/stack env`) never leak in.
pub const SECURITY_ENV: &[&str] = &[
    "TLS",
    "TLS_CERT_FILE",
    "TLS_KEY_FILE",
    "TLS_CLIENT_CA_FILE",
    "TLS_CLIENT_AUTH",
    "METRICS_TLS",
    "AUTH",
    "AUTH_USERS_FILE",
    "AUTH_JWKS_FILE",
    "AUTH_JWKS_URL",
    "AUTH_JWKS_CA_FILE",
    "AUTH_JWT_ISSUER",
    "AUTH_JWT_AUDIENCE",
    "AUTH_OPEN",
    "AUTH_CACHE_TTL_MS",
    "AUTHZ",
    "AUTHZ_POLICY_FILE",
    "REGISTRY_CA_FILE",
    "REGISTRY_CLIENT_CERT_FILE",
    "REGISTRY_CLIENT_KEY_FILE",
    "REGISTRY_USERNAME",
    "REGISTRY_PASSWORD",
    "REGISTRY_PASSWORD_FILE",
    "REGISTRY_BEARER_TOKEN_FILE",
];

/// How a service is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Mode {
    /// `--tls off --auth none`: as the benches ran before security landed.
    Plaintext,
    /// TLS and basic authentication (users file of argon2id hashes): the services' default
    /// shape, and the one the messaging service calls the registry with.
    Basic,
    /// TLS and bearer JWTs (ES256, verified against a JWKS file).
    Jwt,
    /// TLS, basic authentication and an authorization policy of 1,000 rules, every one of
    /// them bound to the bench's user (compared with [`Mode::Basic`], which has none).
    Policy,
    /// TLS and basic authentication, as [`Mode::Basic`], served by another registry binary
    /// (`registry-bench --before-bin`): a build of an earlier commit, so that the cost of a change
    /// is measured in the same run as [`Mode::Basic`] on the current one.
    Before,
}

impl Mode {
    /// A short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Plaintext => "plaintext",
            Mode::Basic => "TLS + basic",
            Mode::Jwt => "TLS + JWT",
            Mode::Policy => "+ 1k rules",
            Mode::Before => "before",
        }
    }

    /// Whether the service speaks TLS.
    pub fn is_tls(self) -> bool {
        self != Mode::Plaintext
    }

    /// The URL of a listener at `addr` (`host:port`).
    pub fn url(self, addr: &str) -> String {
        if self.is_tls() {
            format!("https://{addr}")
        } else {
            format!("http://{addr}")
        }
    }

    /// The environment that starts a service in this mode.
    pub fn server_env(self, pki: &Pki) -> Vec<(&'static str, String)> {
        let path = |p: &Path| p.display().to_string();
        let tls = || {
            vec![
                ("TLS", "on".to_owned()),
                ("TLS_CERT_FILE", path(&pki.server_cert)),
                ("TLS_KEY_FILE", path(&pki.server_key)),
            ]
        };
        match self {
            Mode::Plaintext => vec![("TLS", "off".to_owned()), ("AUTH", "none".to_owned())],
            Mode::Basic | Mode::Before => {
                let mut env = tls();
                env.push(("AUTH", "basic".to_owned()));
                env.push(("AUTH_USERS_FILE", path(&pki.users)));
                env.push(("AUTHZ", "none".to_owned()));
                env
            }
            Mode::Policy => {
                let mut env = tls();
                env.push(("AUTH", "basic".to_owned()));
                env.push(("AUTH_USERS_FILE", path(&pki.users)));
                env.push(("AUTHZ_POLICY_FILE", path(&pki.policy)));
                env
            }
            Mode::Jwt => {
                let mut env = tls();
                env.push(("AUTH", "jwt".to_owned()));
                env.push(("AUTH_JWKS_FILE", path(&pki.jwks)));
                env.push(("AUTH_JWT_ISSUER", ISSUER.to_owned()));
                env.push(("AUTH_JWT_AUDIENCE", AUDIENCE.to_owned()));
                env.push(("AUTHZ", "none".to_owned()));
                env
            }
        }
    }

    /// The `Authorization` header value a client sends in this mode, if any.
    pub fn authorization(self, pki: &Pki) -> Option<String> {
        match self {
            Mode::Plaintext => None,
            Mode::Basic | Mode::Policy | Mode::Before => Some(pki.basic_authorization()),
            Mode::Jwt => Some(format!("Bearer {}", pki.token)),
        }
    }

    /// The call credentials of a gRPC client in this mode (the security crate's, as the
    /// messaging service uses them: the header is marked sensitive, so HTTP/2 never indexes it
    /// and every call carries it in full).
    pub fn credentials(self, pki: &Pki) -> anyhow::Result<CallCredentials> {
        Ok(match self {
            Mode::Plaintext => CallCredentials::None,
            Mode::Basic | Mode::Policy | Mode::Before => {
                CallCredentials::basic(USER, &Secret::new(pki.password.clone()))?
            }
            Mode::Jwt => {
                let mut value = MetadataValue::<Ascii>::try_from(format!("Bearer {}", pki.token))
                    .context("the bench's token is not valid header text")?;
                value.set_sensitive(true);
                CallCredentials::Bearer(Reloading::fixed("the bench's bearer token", value))
            }
        })
    }

    /// The client TLS of this mode: the bench CA, ALPN `h2`, session resumption as rustls does
    /// by default (a keep-alive client hardly ever needs it).
    pub fn client_tls(self, pki: &Pki) -> anyhow::Result<Option<ClientTls>> {
        if self.is_tls() {
            Ok(Some(ClientTls::fixed(pki.client_config(true)?)))
        } else {
            Ok(None)
        }
    }

    /// A gRPC channel to `addr` in this mode, connected lazily; `configure` sets HTTP/2
    /// settings and the like.
    pub fn channel(
        self,
        pki: &Pki,
        addr: &str,
        configure: impl FnOnce(Endpoint) -> Endpoint,
    ) -> anyhow::Result<AuthChannel> {
        let channel =
            tributary_security::client::channel(&self.url(addr), self.client_tls(pki)?, configure)?;
        Ok(InterceptedService::new(channel, self.credentials(pki)?))
    }
}

/// The run's certificates, users and keys, in a directory removed on drop.
pub struct Pki {
    pub dir: PathBuf,
    /// The CA that signed the server certificate.
    pub ca: PathBuf,
    /// The services' certificate (for `127.0.0.1` and `localhost`) and key.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// The users file: [`USER`] with an argon2id hash of [`Self::password`].
    pub users: PathBuf,
    pub password: String,
    /// [`Self::password`] in a file (0600), for `REGISTRY_PASSWORD_FILE`.
    pub password_file: PathBuf,
    /// The JWKS with the key [`Self::token`] is signed with.
    pub jwks: PathBuf,
    /// An ES256 JWT for subject [`USER`], valid for a day.
    pub token: String,
    /// The policy of [`Mode::Policy`]: 1,000 rules bound to [`USER`], 999 of them on other
    /// teams' subjects, the last on the bench's own (`subject-*`). The user holds no read on the
    /// registry, so every get-by-id is decided through the subjects that use the id.
    pub policy: PathBuf,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Pki {
    /// Makes the CA, the server certificate, the users file, the JWKS and the token in `dir`
    /// (created; removed when the returned value is dropped).
    pub fn create(dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;

        let authority = Authority::new("tributary bench CA")?;
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, authority.certificate())?;
        let (server_cert, server_key) = (dir.join("server.pem"), dir.join("server.key"));
        authority
            .issue_server(&["127.0.0.1", "localhost"])?
            .write(&server_cert, &server_key)?;

        let password = random_password();
        let users = dir.join("users");
        write_private(&users, users_file(&[(USER, &password)])?.as_bytes())?;
        let password_file = dir.join("bench.password");
        write_private(&password_file, format!("{password}\n").as_bytes())?;

        let signing_key = SigningKey::new(KEY_ID)?;
        let jwks = dir.join("jwks.json");
        std::fs::write(&jwks, signing_key.jwks())?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let token = signing_key.sign(&serde_json::json!({
            "sub": USER, "iss": ISSUER, "aud": AUDIENCE, "iat": now,
            "exp": now + TOKEN_LIFETIME.as_secs(), "groups": ["bench"],
        }))?;
        let policy = dir.join("policy.yaml");
        let mut rules = String::new();
        for team in 0..999 {
            rules.push_str(&format!(
                "      - allow: [read, write]\n        on: [\"subject:team-{team}-*\"]\n"
            ));
        }
        rules.push_str("      - allow: [read, write]\n        on: [\"subject:subject-*\"]\n");
        std::fs::write(
            &policy,
            format!(
                "roles:\n  bench:\n    rules:\n{rules}bindings:\n  - role: bench\n    to: [\"user:{USER}\"]\n"
            ),
        )?;

        Ok(Self {
            dir,
            ca,
            server_cert,
            server_key,
            users,
            password,
            password_file,
            jwks,
            token,
            policy,
        })
    }

    /// `Basic base64(user:password)`.
    pub fn basic_authorization(&self) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{}", self.password))
        )
    }

    /// A client TLS configuration trusting the bench CA, ALPN `h2`; without `resumption`, every
    /// connection makes a full handshake (no session tickets, no session IDs).
    pub fn client_config(&self, resumption: bool) -> anyhow::Result<rustls::ClientConfig> {
        let mut config = tributary_security::client::client_config(Some(&self.ca), None, &[b"h2"])?;
        if !resumption {
            config.resumption = rustls::client::Resumption::disabled();
        }
        Ok(config)
    }
}
