//! Bearer JWTs, verified against a JWKS: the signature (RS*, PS*, ES256/384, EdDSA; never
//! `none` or a shared-secret HS*), `exp` and `nbf` with a small leeway, the issuer and the
//! audience. The principal is a configurable claim (`sub` by default), its groups another
//! (`groups`).
//!
//! The JWKS comes from a file (reloaded when it changes) or an https URL: fetched at startup,
//! refreshed every `--auth-jwks-refresh-ms`, and fetched again when a token names a key id the
//! set does not hold, which is how identity providers roll their keys: at most every tenth of
//! the refresh interval, and at most every [`MIN_REFETCH_INTERVAL`], so that tokens naming
//! made-up key ids cannot make the service hammer the identity provider. Until a URL's first fetch succeeds, bearer tokens get
//! UNAVAILABLE, not UNAUTHENTICATED: the token may well be good.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use arc_swap::ArcSwapOption;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::reload::Reloading;

/// The shortest time between two fetches of a JWKS URL triggered by unknown key ids.
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// The largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// How long a JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a JWKS URL is retried while no key set was ever fetched.
const RETRY_INTERVAL: Duration = Duration::from_secs(5);

/// What a token must say, and where the principal is.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub issuer: String,
    pub audience: String,
    pub principal_claim: String,
    pub groups_claim: String,
    pub leeway: Duration,
}

/// Where the JWKS comes from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    File(PathBuf),
    Url {
        url: String,
        /// CA bundle to verify the URL's server with (else the webpki roots).
        ca_file: Option<PathBuf>,
        refresh: Duration,
    },
}

/// The family of a key, which bounds the algorithms it verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl Family {
    fn verifies(self, algorithm: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            Family::Rsa => matches!(algorithm, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            Family::P256 => algorithm == ES256,
            Family::P384 => algorithm == ES384,
            Family::Ed25519 => algorithm == EdDSA,
        }
    }
}

/// One verification key.
struct Key {
    kid: Option<String>,
    family: Family,
    /// The `alg` the JWK pins, if any.
    algorithm: Option<Algorithm>,
    key: DecodingKey,
}

/// The usable keys of a JWKS.
pub struct KeySet {
    keys: Vec<Key>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl KeySet {
    /// The signature keys of a JWKS document. Keys of other uses and kinds (encryption keys,
    /// shared secrets, P-521) are left out; a document with no usable key is an error.
    pub fn parse(document: &[u8]) -> anyhow::Result<Self> {
        let document: Value = serde_json::from_slice(document).context("the JWKS is not JSON")?;
        let entries = document
            .get("keys")
            .and_then(Value::as_array)
            .context("the JWKS has no \"keys\" array")?;
        let mut keys = Vec::new();
        for entry in entries {
            let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
                continue;
            };
            if matches!(
                jwk.common.public_key_use,
                Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
            ) {
                continue;
            }
            let family = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Family::Rsa,
                AlgorithmParameters::EllipticCurve(params) => match params.curve {
                    EllipticCurve::P256 => Family::P256,
                    EllipticCurve::P384 => Family::P384,
                    _ => continue,
                },
                AlgorithmParameters::OctetKeyPair(params) => match params.curve {
                    EllipticCurve::Ed25519 => Family::Ed25519,
                    _ => continue,
                },
                // Shared secrets would let anyone holding the JWKS mint tokens.
                _ => continue,
            };
            let algorithm = match jwk.common.key_algorithm {
                None => None,
                Some(pinned) => match signature_algorithm(pinned) {
                    Some(algorithm) if family.verifies(algorithm) => Some(algorithm),
                    _ => continue,
                },
            };
            let Ok(key) = DecodingKey::from_jwk(&jwk) else {
                continue;
            };
            keys.push(Key {
                kid: jwk.common.key_id.clone(),
                family,
                algorithm,
                key,
            });
        }
        anyhow::ensure!(
            !keys.is_empty(),
            "the JWKS holds no usable signature key (RSA, EC P-256/P-384 or Ed25519)"
        );
        Ok(Self { keys })
    }

    fn load(path: &Path) -> anyhow::Result<Self> {
        let document = std::fs::read(path)
            .with_context(|| format!("cannot read the JWKS file {}", path.display()))?;
        Self::parse(&document).with_context(|| format!("in the JWKS file {}", path.display()))
    }

    /// The keys that may verify a token with this header.
    fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        algorithm: Algorithm,
    ) -> impl Iterator<Item = &'a Key> + 'a {
        self.keys.iter().filter(move |key| {
            key.family.verifies(algorithm)
                && key.algorithm.is_none_or(|pinned| pinned == algorithm)
                && match kid {
                    Some(kid) => key.kid.as_deref() == Some(kid),
                    None => true,
                }
        })
    }

    fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid.as_deref() == Some(kid))
    }
}

fn signature_algorithm(algorithm: KeyAlgorithm) -> Option<Algorithm> {
    Some(match algorithm {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Why a token was refused. The messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtRefusal {
    #[error("the bearer token is not a well-formed JWT")]
    Malformed,
    #[error("the bearer token's algorithm is not accepted (RS*, PS*, ES256, ES384 or EdDSA)")]
    Algorithm,
    #[error("no key of the JWKS matches the bearer token's key id and algorithm")]
    UnknownKey,
    #[error("the bearer token's signature does not verify")]
    Signature,
    #[error("the bearer token has expired")]
    Expired,
    #[error("the bearer token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the bearer token's issuer is not accepted")]
    Issuer,
    #[error("the bearer token's audience is not accepted")]
    Audience,
    #[error("the bearer token has no valid '{0}' claim")]
    MissingClaim(String),
    /// The JWKS URL could not be fetched yet: the token cannot be judged.
    #[error("the identity provider's keys (JWKS) cannot be fetched")]
    KeysUnavailable,
}

/// A verified token's principal.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub principal: String,
    pub groups: Vec<String>,
    /// When the token expires (the `exp` claim, seconds since the epoch).
    pub expires_at: u64,
}

/// A JWKS fetched from a URL.
struct RemoteKeys {
    url: String,
    client: reqwest::Client,
    /// The shortest time between fetches triggered by unknown key ids.
    min_refetch: Duration,
    keys: ArcSwapOption<KeySet>,
    /// When the last fetch started; serializes fetches.
    last_fetch: Mutex<Option<tokio::time::Instant>>,
}

impl RemoteKeys {
    async fn fetch(&self) -> anyhow::Result<KeySet> {
        let mut response = self
            .client
            .get(&self.url)
            .send()
            .await
            .with_context(|| format!("cannot fetch the JWKS from {}", self.url))?
            .error_for_status()
            .with_context(|| format!("the JWKS URL {} answered with an error", self.url))?;
        let mut document = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .with_context(|| format!("cannot read the JWKS from {}", self.url))?
        {
            anyhow::ensure!(
                document.len() + chunk.len() <= MAX_JWKS_BYTES,
                "the JWKS at {} is larger than {MAX_JWKS_BYTES} bytes",
                self.url
            );
            document.extend_from_slice(&chunk);
        }
        KeySet::parse(&document).with_context(|| format!("in the JWKS from {}", self.url))
    }

    /// Fetches the JWKS unless another fetch started less than `min_interval` ago.
    async fn refresh(&self, min_interval: Duration) {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < min_interval) {
            return;
        }
        *last = Some(tokio::time::Instant::now());
        match self.fetch().await {
            Ok(keys) => self.keys.store(Some(Arc::new(keys))),
            Err(error) => tracing::warn!(
                error = format!("{error:#}"),
                "JWKS refresh failed; keeping the keys fetched before"
            ),
        }
    }
}

enum Keys {
    File(Arc<Reloading<KeySet>>),
    Url(Arc<RemoteKeys>),
}

/// Verifies bearer JWTs.
pub struct JwtVerifier {
    settings: JwtSettings,
    keys: Keys,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// A verifier for tokens of `settings`' issuer and audience, with keys from `source`. A
    /// JWKS file must load now; a URL is fetched in the background (started here, inside the
    /// Tokio runtime).
    pub fn new(
        settings: JwtSettings,
        source: JwksSource,
        reload_interval: Duration,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !settings.issuer.is_empty() && !settings.audience.is_empty(),
            "JWT authentication needs the issuer and the audience tokens must carry (--auth-jwt-issuer, --auth-jwt-audience)"
        );
        let keys = match source {
            JwksSource::File(path) => {
                let watched = path.clone();
                Keys::File(Reloading::watch(
                    "the JWKS file",
                    vec![path],
                    reload_interval,
                    move || KeySet::load(&watched),
                )?)
            }
            JwksSource::Url {
                url,
                ca_file,
                refresh,
            } => {
                anyhow::ensure!(
                    url.starts_with("https://"),
                    "the JWKS URL must be https:// (keys fetched in the clear could be replaced)"
                );
                let client = reqwest::Client::builder()
                    .use_preconfigured_tls(crate::client::client_config(
                        ca_file.as_deref(),
                        None,
                        &[b"http/1.1"],
                    )?)
                    .timeout(FETCH_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::limited(3))
                    .build()
                    .context("cannot build the JWKS HTTP client")?;
                let remote = Arc::new(RemoteKeys {
                    url,
                    client,
                    min_refetch: MIN_REFETCH_INTERVAL.min(refresh / 10),
                    keys: ArcSwapOption::empty(),
                    last_fetch: Mutex::new(None),
                });
                tokio::spawn(refresh_keys(Arc::downgrade(&remote), refresh));
                Keys::Url(remote)
            }
        };
        Ok(Self { settings, keys })
    }

    /// Whether the keys are there to verify tokens with (always, for a file).
    pub fn has_keys(&self) -> bool {
        match &self.keys {
            Keys::File(_) => true,
            Keys::Url(remote) => remote.keys.load().is_some(),
        }
    }

    /// Verifies a token (the part after `Bearer `).
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, JwtRefusal> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtRefusal::Malformed)?;
        let algorithm = header.alg;
        if matches!(
            algorithm,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            return Err(JwtRefusal::Algorithm);
        }
        let kid = header.kid.as_deref();
        let keys = match &self.keys {
            Keys::File(keys) => keys.current(),
            Keys::Url(remote) => {
                let known = remote.keys.load_full();
                match (known, kid) {
                    (Some(keys), Some(kid)) if !keys.has_kid(kid) => {
                        // Perhaps a key the provider rolled in since the last fetch.
                        remote.refresh(remote.min_refetch).await;
                        remote.keys.load_full().ok_or(JwtRefusal::KeysUnavailable)?
                    }
                    (Some(keys), _) => keys,
                    (None, _) => {
                        remote.refresh(remote.min_refetch).await;
                        remote.keys.load_full().ok_or(JwtRefusal::KeysUnavailable)?
                    }
                }
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.settings.leeway.as_secs();
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.required_spec_claims =
            HashSet::from(["exp".to_owned(), "iss".to_owned(), "aud".to_owned()]);
        validation.validate_nbf = true;
        let mut last = JwtRefusal::UnknownKey;
        for key in keys.candidates(kid, algorithm) {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => return self.verified(data.claims),
                Err(error) => {
                    last = refusal(error.kind());
                    // Only a bad signature is worth trying the next key for.
                    if last != JwtRefusal::Signature {
                        return Err(last);
                    }
                }
            }
        }
        Err(last)
    }

    fn verified(&self, claims: Map<String, Value>) -> Result<VerifiedToken, JwtRefusal> {
        let principal = claims
            .get(&self.settings.principal_claim)
            .and_then(Value::as_str)
            .filter(|name| !name.is_empty() && name.len() <= 256)
            .ok_or_else(|| JwtRefusal::MissingClaim(self.settings.principal_claim.clone()))?
            .to_owned();
        let groups = match claims.get(&self.settings.groups_claim) {
            Some(Value::Array(groups)) => groups
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(group)) => vec![group.clone()],
            _ => Vec::new(),
        };
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or_else(|| JwtRefusal::MissingClaim("exp".to_owned()))?;
        Ok(VerifiedToken {
            principal,
            groups,
            expires_at,
        })
    }
}

fn refusal(kind: &ErrorKind) -> JwtRefusal {
    match kind {
        ErrorKind::InvalidSignature => JwtRefusal::Signature,
        ErrorKind::ExpiredSignature => JwtRefusal::Expired,
        ErrorKind::ImmatureSignature => JwtRefusal::NotYetValid,
        ErrorKind::InvalidIssuer => JwtRefusal::Issuer,
        ErrorKind::InvalidAudience => JwtRefusal::Audience,
        ErrorKind::MissingRequiredClaim(claim) | ErrorKind::InvalidClaimFormat(claim) => {
            JwtRefusal::MissingClaim(claim.clone())
        }
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => JwtRefusal::Algorithm,
        _ => JwtRefusal::Malformed,
    }
}

/// Keeps a JWKS URL's keys fresh until the verifier is dropped.
async fn refresh_keys(remote: std::sync::Weak<RemoteKeys>, every: Duration) {
    loop {
        let Some(keys) = remote.upgrade() else { return };
        keys.refresh(Duration::ZERO).await;
        let pause = if keys.keys.load().is_some() {
            every
        } else {
            RETRY_INTERVAL
        };
        drop(keys);
        tokio::time::sleep(pause).await;
    }
}

/// Seconds since the epoch.
pub(crate) fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
