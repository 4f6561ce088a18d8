//! Secrets: values that are never printed, read from files (Kubernetes Secret mounts) or from
//! the environment, never from a command-line flag (which any user of the machine can read in
//! `/proc/<pid>/cmdline`).
//!
//! [`Secret`]'s `Debug` and `Display` print `***`; errors about a secret file name the file,
//! never its content.

use std::fmt;
use std::path::Path;

use anyhow::Context;

/// A secret value. Printing it in any form gives `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The secret in a file: its content without one trailing line break (`echo x > file` and
    /// Kubernetes Secrets created from literals both work). An empty secret is refused.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the secret file {}", path.display()))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("the secret file {} is not UTF-8", path.display()))?;
        let value = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(&text);
        anyhow::ensure!(
            !value.is_empty(),
            "the secret file {} is empty",
            path.display()
        );
        Ok(Self(value.to_owned()))
    }

    /// The secret from `file` when given, else from the environment variable `env`; `None` when
    /// neither is set. Both set is an error (which one wins would be a guess).
    pub fn from_file_or_env(file: Option<&Path>, env: &str) -> anyhow::Result<Option<Self>> {
        let from_env = std::env::var(env).ok().filter(|value| !value.is_empty());
        match (file, from_env) {
            (Some(_), Some(_)) => anyhow::bail!(
                "both {env} and its file variant are set; give the secret one way only"
            ),
            (Some(path), None) => Self::from_file(path).map(Some),
            (None, Some(value)) => Ok(Some(Self(value))),
            (None, None) => Ok(None),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_never_printed() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(***)");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn secret_files_lose_one_line_break_and_errors_never_show_content() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("password");
        std::fs::write(&path, "pa ss,word\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            Secret::from_file(&path).map(|s| s.expose().to_owned()).ok(),
            Some("pa ss,word".to_owned())
        );
        std::fs::write(&path, "two\r\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            Secret::from_file(&path).map(|s| s.expose().to_owned()).ok(),
            Some("two".to_owned())
        );
        std::fs::write(&path, "\n").unwrap_or_else(|e| panic!("{e}"));
        let error = Secret::from_file(&path)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(error.contains("is empty"), "{error}");
        std::fs::write(&path, [0xff, b'Z', b'Q', b'9', b'X']).unwrap_or_else(|e| panic!("{e}"));
        let error = Secret::from_file(&path)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(
            error.contains("not UTF-8") && !error.contains("ZQ9X"),
            "{error}"
        );
        let missing = Secret::from_file(&dir.path().join("nope"))
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(missing.contains("cannot read the secret file"), "{missing}");
    }
}
