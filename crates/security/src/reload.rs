//! Values built from files, rebuilt when the files change: certificates and keys, CA bundles,
//! the users file, a JWKS file, bearer tokens.
//!
//! Guarantees:
//! - The first build happens at startup; its failure is a startup error.
//! - Afterwards the files are checked every interval, by content (a SHA-256 over all of them):
//!   a Kubernetes Secret update (an atomic swap of a symlinked directory), cert-manager's
//!   rewrites and `cp` over the file are all seen, whatever their timestamps say.
//! - A rebuild that fails (a half-written file, a key that does not match its certificate yet)
//!   keeps the last good value, logs why, and counts a failure; it is tried again when the
//!   content changes again. Readers never see a partial value: [`Reloading::current`] is an
//!   atomic pointer load, so a connection or request that took the old value keeps it.
//! - The watch ends when the [`Reloading`] is dropped.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};

type Build<T> = dyn Fn() -> anyhow::Result<T> + Send + Sync;

/// A value built from files and rebuilt when they change.
pub struct Reloading<T> {
    what: &'static str,
    current: ArcSwap<T>,
    generation: AtomicU64,
    failures: AtomicU64,
    /// Whether the files as they are now failed to load (the value in use is older).
    stale: AtomicBool,
}

impl<T> std::fmt::Debug for Reloading<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading")
            .field("what", &self.what)
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> Reloading<T> {
    /// Builds the value from `paths` now, then rebuilds it whenever their content changes,
    /// checked every `interval` on a blocking thread. Must be called inside a Tokio runtime.
    /// `what` names the value in logs ("the TLS certificate").
    pub fn watch(
        what: &'static str,
        paths: Vec<PathBuf>,
        interval: Duration,
        build: impl Fn() -> anyhow::Result<T> + Send + Sync + 'static,
    ) -> anyhow::Result<Arc<Self>> {
        let seen = fingerprint(&paths);
        let value = build()?;
        let reloading = Arc::new(Self {
            what,
            current: ArcSwap::from_pointee(value),
            generation: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            stale: AtomicBool::new(false),
        });
        let build: Arc<Build<T>> = Arc::new(build);
        tokio::spawn(watch_files(
            Arc::downgrade(&reloading),
            paths,
            interval,
            seen,
            build,
        ));
        Ok(reloading)
    }

    /// A value that never changes (no files behind it).
    pub fn fixed(what: &'static str, value: T) -> Arc<Self> {
        Arc::new(Self {
            what,
            current: ArcSwap::from_pointee(value),
            generation: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            stale: AtomicBool::new(false),
        })
    }
}

impl<T> Reloading<T> {
    /// The current value.
    pub fn current(&self) -> Arc<T> {
        self.current.load_full()
    }

    /// How many times the value was rebuilt since startup.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// How many rebuilds failed since startup.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Whether the files as they are now failed to load: the value in use is the last good one,
    /// not what the files say.
    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Relaxed)
    }

    /// What the value is, for logs.
    pub fn what(&self) -> &'static str {
        self.what
    }
}

/// SHA-256 over the paths' contents (a missing or unreadable file counts as its own content).
fn fingerprint(paths: &[PathBuf]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for path in paths {
        match std::fs::read(path) {
            Ok(content) => {
                hasher.update((content.len() as u64).to_le_bytes());
                hasher.update(&content);
            }
            Err(_) => hasher.update(b"\xffunreadable"),
        }
    }
    hasher.finalize().into()
}

async fn watch_files<T: Send + Sync + 'static>(
    target: Weak<Reloading<T>>,
    paths: Vec<PathBuf>,
    interval: Duration,
    mut seen: [u8; 32],
    build: Arc<Build<T>>,
) {
    let paths = Arc::new(paths);
    loop {
        tokio::time::sleep(interval).await;
        if target.strong_count() == 0 {
            return;
        }
        let (paths_now, build_now) = (Arc::clone(&paths), Arc::clone(&build));
        let checked = tokio::task::spawn_blocking(move || {
            let now = fingerprint(&paths_now);
            if now == seen {
                return (now, None);
            }
            (now, Some(build_now()))
        })
        .await;
        let Ok((now, rebuilt)) = checked else {
            continue;
        };
        seen = now;
        let Some(rebuilt) = rebuilt else { continue };
        let Some(target) = target.upgrade() else {
            return;
        };
        match rebuilt {
            Ok(value) => {
                target.current.store(Arc::new(value));
                target.generation.fetch_add(1, Ordering::AcqRel);
                target.stale.store(false, Ordering::Relaxed);
                tracing::info!(what = target.what, "reloaded after its files changed");
            }
            Err(error) => {
                target.failures.fetch_add(1, Ordering::Relaxed);
                target.stale.store(true, Ordering::Relaxed);
                tracing::warn!(
                    what = target.what,
                    error = format!("{error:#}"),
                    "cannot reload after its files changed; keeping the previous one"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
        for _ in 0..200 {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{what} did not happen within 2 s");
    }

    #[tokio::test]
    async fn a_changed_file_is_rebuilt_and_a_broken_one_keeps_the_last_good_value() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("number");
        std::fs::write(&path, "1").unwrap_or_else(|e| panic!("{e}"));
        let read = path.clone();
        let reloading = Reloading::watch(
            "the number",
            vec![path.clone()],
            Duration::from_millis(10),
            move || Ok(std::fs::read_to_string(&read)?.trim().parse::<u32>()?),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(*reloading.current(), 1);

        std::fs::write(&path, "2").unwrap_or_else(|e| panic!("{e}"));
        eventually("the reload", || *reloading.current() == 2).await;
        assert_eq!(reloading.generation(), 1);

        std::fs::write(&path, "not a number").unwrap_or_else(|e| panic!("{e}"));
        eventually("the failed reload", || reloading.failures() == 1).await;
        assert_eq!(*reloading.current(), 2, "the last good value stays");
        assert!(reloading.is_stale());

        // Retried only when the content changes again.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(reloading.failures(), 1);
        std::fs::write(&path, "3").unwrap_or_else(|e| panic!("{e}"));
        eventually("the recovery", || *reloading.current() == 3).await;
        assert!(!reloading.is_stale());
    }

    #[tokio::test]
    async fn the_first_build_failing_is_an_error() {
        let outcome =
            Reloading::<u32>::watch("nothing", Vec::new(), Duration::from_secs(1), || {
                anyhow::bail!("broken")
            });
        assert!(outcome.is_err());
    }
}
