//! The perimeter material of a test or benchmark run, made when it starts (rcgen, ECDSA
//! P-256), so that no certificate or key is ever committed: a certificate authority issuing
//! server and client certificates, users files of argon2id hashes, a JWT signing key with its
//! JWKS, and throwaway passwords. The integration tests and the benchmarks both run the services
//! as they are deployed (TLS, authentication), with what this crate makes.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// A certificate authority.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    certificate: String,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    pub certificate: String,
    pub key: String,
}

impl Issued {
    /// Writes the certificate to `cert` and the key (mode 0600) to `key`.
    pub fn write(&self, cert: &Path, key: &Path) -> anyhow::Result<()> {
        std::fs::write(cert, &self.certificate)
            .with_context(|| format!("cannot write {}", cert.display()))?;
        write_private(key, self.key.as_bytes())
    }
}

impl Authority {
    /// A new CA named `name`.
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let certificate = params.self_signed(&key)?.pem();
        Ok(Self {
            issuer: Issuer::new(params, key),
            certificate,
        })
    }

    /// The CA's certificate, PEM.
    pub fn certificate(&self) -> &str {
        &self.certificate
    }

    /// A server certificate for `names` (DNS names or IP addresses; the first is also its CN).
    pub fn issue_server(&self, names: &[&str]) -> anyhow::Result<Issued> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("server"),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// A client certificate whose subject's CN is `common_name`.
    pub fn issue_client(&self, common_name: &str) -> anyhow::Result<Issued> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    fn issue(&self, params: CertificateParams) -> anyhow::Result<Issued> {
        let key = KeyPair::generate()?;
        Ok(Issued {
            certificate: params.signed_by(&key, &self.issuer)?.pem(),
            key: key.serialize_pem(),
        })
    }
}

/// An ES256 key that signs JWTs, and its JWKS.
pub struct SigningKey {
    kid: String,
    key: jsonwebtoken::EncodingKey,
    jwk: serde_json::Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn base64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl SigningKey {
    /// A new P-256 key with key id `kid`.
    pub fn new(kid: &str) -> anyhow::Result<Self> {
        let pair = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let point = pair.public_key_raw();
        anyhow::ensure!(point.len() == 65, "unexpected P-256 public key encoding");
        Ok(Self {
            kid: kid.to_owned(),
            key: jsonwebtoken::EncodingKey::from_ec_der(&pair.serialize_der()),
            jwk: serde_json::json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                "x": base64url(&point[1..33]), "y": base64url(&point[33..65]),
            }),
        })
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> &serde_json::Value {
        &self.jwk
    }

    /// A JWKS document of this key alone.
    pub fn jwks(&self) -> String {
        serde_json::json!({ "keys": [self.jwk] }).to_string()
    }

    /// A JWT of `claims`, signed with this key (its kid in the header).
    pub fn sign(&self, claims: &serde_json::Value) -> anyhow::Result<String> {
        self.sign_naming(&self.kid, claims)
    }

    /// A JWT of `claims` signed with this key, its header naming key id `kid` (a test of a
    /// token naming another key, or one no JWKS holds).
    pub fn sign_naming(&self, kid: &str, claims: &serde_json::Value) -> anyhow::Result<String> {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.key).context("cannot sign a JWT")
    }
}

/// A users file of `users` (name, password), each hashed with argon2id.
pub fn users_file(users: &[(&str, &str)]) -> anyhow::Result<String> {
    let mut file = String::from("# made for this run\n");
    for (name, password) in users {
        let hash = tributary_security::users::hash_password(password.as_bytes())?;
        file.push_str(&format!("{name}:{hash}\n"));
    }
    Ok(file)
}

/// 128 random bits, base64url: std's randomly seeded hasher, enough for a throwaway password.
pub fn random_password() -> String {
    use std::hash::BuildHasher;
    let state = std::collections::hash_map::RandomState::new();
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&state.hash_one(1u8).to_le_bytes());
    bytes[8..].copy_from_slice(&state.hash_one(2u8).to_le_bytes());
    base64url(&bytes)
}

/// Writes a file only its owner can read.
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents)?;
    Ok(())
}
