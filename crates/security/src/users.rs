//! The users file of basic authentication: htpasswd-style lines `name:hash`, where the hash is
//! an argon2id PHC string (`$argon2id$v=19$m=...`, made by `registry hash-password`) or a bcrypt
//! hash (`$2a$`/`$2b$`/`$2y$`, as `htpasswd -B` makes). `#` starts a comment line.
//!
//! A password in the clear, or a hash too weak to store passwords (htpasswd's MD5, SHA-1 and
//! crypt variants, argon2i/argon2d), is refused when the file is loaded, naming the line and the
//! user, never the value. Hash parameters are bounded so that no entry makes one verification
//! cost more than about a second or a few hundred MiB.
//!
//! An unknown user is checked against a decoy hash, so that a wrong name and a wrong password
//! take the same time.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2};

/// Most memory an argon2id entry may ask for, in KiB (256 MiB).
const MAX_ARGON2_MEMORY_KIB: u32 = 256 * 1024;
/// Most argon2id passes.
const MAX_ARGON2_ITERATIONS: u32 = 16;
/// Most argon2id lanes.
const MAX_ARGON2_LANES: u32 = 16;
/// Highest bcrypt cost (each step doubles the time; 14 is about a second).
const MAX_BCRYPT_COST: u32 = 14;
/// Longest user name.
const MAX_NAME_LEN: usize = 256;

/// One user's stored hash.
#[derive(Clone)]
enum StoredHash {
    Argon2id(String),
    Bcrypt(String),
}

impl StoredHash {
    fn verify(&self, password: &[u8]) -> bool {
        match self {
            StoredHash::Argon2id(phc) => PasswordHash::new(phc)
                .map(|hash| Argon2::default().verify_password(password, &hash).is_ok())
                .unwrap_or(false),
            StoredHash::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
        }
    }
}

/// The users of basic authentication.
#[derive(Clone)]
pub struct Users {
    by_name: HashMap<String, StoredHash>,
    decoy: StoredHash,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users")
            .field("count", &self.by_name.len())
            .finish_non_exhaustive()
    }
}

impl Users {
    /// The users in a file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the users file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in the users file {}", path.display()))
    }

    /// The users in a file's text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut by_name = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let Some((name, hash)) = line.split_once(':') else {
                anyhow::bail!("line {number} is not `name:hash`");
            };
            anyhow::ensure!(
                !name.is_empty()
                    && name.len() <= MAX_NAME_LEN
                    && !name.chars().any(|c| c.is_whitespace() || c.is_control()),
                "line {number}: a user name is 1 to {MAX_NAME_LEN} characters without spaces"
            );
            let stored = stored_hash(hash.trim())
                .with_context(|| format!("line {number} (user '{name}')"))?;
            anyhow::ensure!(
                by_name.insert(name.to_owned(), stored).is_none(),
                "line {number}: user '{name}' appears twice"
            );
        }
        anyhow::ensure!(!by_name.is_empty(), "it names no user");
        let decoy = StoredHash::Argon2id(hash_password(b"decoy: this hash matches no user")?);
        Ok(Self { by_name, decoy })
    }

    /// Whether `password` is `user`'s. Costs one hash verification either way.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        match self.by_name.get(user) {
            Some(stored) => stored.verify(password),
            None => {
                let _ = self.decoy.verify(password);
                false
            }
        }
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// The stored form of a hash from the file, or why it is refused.
fn stored_hash(hash: &str) -> anyhow::Result<StoredHash> {
    if hash.starts_with("$argon2id$") {
        let parsed = PasswordHash::new(hash)
            .map_err(|_| anyhow::anyhow!("the argon2id hash is not a valid PHC string"))?;
        anyhow::ensure!(
            parsed.algorithm == Algorithm::Argon2id.ident(),
            "the argon2id hash is not a valid PHC string"
        );
        let params = argon2::Params::try_from(&parsed)
            .map_err(|_| anyhow::anyhow!("the argon2id hash has invalid parameters"))?;
        anyhow::ensure!(
            params.m_cost() <= MAX_ARGON2_MEMORY_KIB
                && params.t_cost() <= MAX_ARGON2_ITERATIONS
                && params.p_cost() <= MAX_ARGON2_LANES,
            "the argon2id parameters exceed m={MAX_ARGON2_MEMORY_KIB},t={MAX_ARGON2_ITERATIONS},p={MAX_ARGON2_LANES}"
        );
        return Ok(StoredHash::Argon2id(hash.to_owned()));
    }
    if let Some(rest) = ["$2a$", "$2b$", "$2y$"]
        .iter()
        .find_map(|prefix| hash.strip_prefix(prefix))
    {
        let cost: u32 = rest
            .get(..2)
            .and_then(|digits| digits.parse().ok())
            .filter(|_| rest.len() == 2 + 1 + 53 && rest.as_bytes().get(2) == Some(&b'$'))
            .ok_or_else(|| anyhow::anyhow!("the bcrypt hash is malformed"))?;
        anyhow::ensure!(
            (4..=MAX_BCRYPT_COST).contains(&cost),
            "the bcrypt cost must be 4 to {MAX_BCRYPT_COST}"
        );
        return Ok(StoredHash::Bcrypt(hash.to_owned()));
    }
    if hash.starts_with("$argon2i$") || hash.starts_with("$argon2d$") {
        anyhow::bail!("only argon2id hashes are accepted, not argon2i or argon2d");
    }
    if ["$apr1$", "{SHA}", "$1$", "$5$", "$6$"]
        .iter()
        .any(|prefix| hash.starts_with(prefix))
    {
        anyhow::bail!(
            "an MD5, SHA or crypt hash is too weak for passwords; use argon2id (`registry hash-password`) or bcrypt (`htpasswd -B`)"
        );
    }
    anyhow::bail!(
        "the password is not hashed: the users file holds argon2id or bcrypt hashes only; make one with `registry hash-password --user NAME`"
    )
}

/// An argon2id hash of `password` (OWASP's parameters: 19 MiB, 2 passes, 1 lane) as a PHC
/// string.
pub fn hash_password(password: &[u8]) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password)
        .map(|hash| hash.to_string())
        .map_err(|error| anyhow::anyhow!("cannot hash the password: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> String {
        Users::parse(text)
            .err()
            .map(|error| format!("{error:#}"))
            .unwrap_or_default()
    }

    #[test]
    fn argon2id_and_bcrypt_entries_verify_their_passwords_only() {
        let argon = hash_password(b"s3cret:with colon").unwrap_or_default();
        let bcrypt = bcrypt::hash("htpasswd-made", 4).unwrap_or_default();
        let users = Users::parse(&format!("# comment\n\nann:{argon}\r\nbob:{bcrypt}\n"))
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(users.len(), 2);
        assert!(users.verify("ann", b"s3cret:with colon"));
        assert!(!users.verify("ann", b"s3cret"));
        assert!(users.verify("bob", b"htpasswd-made"));
        assert!(!users.verify("bob", b"s3cret:with colon"));
        assert!(!users.verify("carl", b"htpasswd-made"));
    }

    #[test]
    fn clear_or_weak_passwords_are_refused_naming_the_line_never_the_value() {
        let error = error_of("ann:hunter2\n");
        assert!(
            error.contains("line 1") && error.contains("'ann'"),
            "{error}"
        );
        assert!(error.contains("not hashed"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");

        let error = error_of("# x\nann:$apr1$abc$hunter2hunter2hunter2\n");
        assert!(
            error.contains("line 2") && error.contains("too weak"),
            "{error}"
        );
        assert!(!error.contains("hunter2"), "{error}");

        let error = error_of("ann:$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g\n");
        assert!(error.contains("only argon2id"), "{error}");

        assert!(
            error_of("ann:$2b$31$abcdefghijklmnopqrstuOabcdefghijklmnopqrstuvwxyz01234")
                .contains("cost")
        );
        assert!(error_of("ann:$2b$12$short").contains("malformed"));
        assert!(error_of("ann$argon2id").contains("not `name:hash`"));
        assert!(error_of("").contains("names no user"));
        let argon = hash_password(b"x").unwrap_or_default();
        assert!(error_of(&format!("ann:{argon}\nann:{argon}\n")).contains("appears twice"));
        assert!(error_of(&format!("an n:{argon}\n")).contains("without spaces"));
    }

    #[test]
    fn costly_argon2_parameters_are_refused() {
        // m = 1 GiB
        let error = error_of(
            "ann:$argon2id$v=19$m=1048576,t=2,p=1$c2FsdHNhbHRzYWx0$0kTnp6cJmxwP8v0wL2dPtTrwq0RjzD5+dBBT8ZkpV2M\n",
        );
        assert!(error.contains("parameters exceed"), "{error}");
    }
}
