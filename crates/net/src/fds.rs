//! The process's open-file limit: raised to what the system allows at startup, and the budget
//! every connection cap must fit in.
//!
//! Every connection, every pooled database connection, every Kafka socket and librdkafka's
//! wake-up pipes take a file descriptor. When a process reaches its limit, `accept` fails and
//! so does everything else that opens one: health checks, database reconnects. The services
//! keep their connection caps below the limit, so a flood of connections is refused at the cap
//! instead.

/// The soft and hard open-file limits (`None`: unlimited or unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFileLimit {
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

/// Descriptors kept for what is not a connection: the listeners, logs, certificate and users
/// files, the metrics listener and its scrapes, DNS, the tokio runtime's own.
pub const RESERVED: u64 = 256;

/// The open-file limit now.
pub fn open_file_limit() -> OpenFileLimit {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    OpenFileLimit {
        soft: limit.current,
        hard: limit.maximum,
    }
}

/// Raises the soft open-file limit to the hard one (as Go's runtime and the JVM do: the soft
/// limit is often 1,024 for compatibility with `select`, which nothing here uses), and returns
/// the limit in force.
pub fn raise_open_file_limit() -> OpenFileLimit {
    let before = open_file_limit();
    // An unlimited hard limit still stops at the kernel's per-process maximum.
    let target = before.hard.or_else(|| {
        std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|text| text.trim().parse().ok())
    });
    if before.soft.is_some() && target.is_some() && before.soft < target {
        let raised = rustix::process::Rlimit {
            current: target,
            maximum: before.hard,
        };
        if let Err(error) = rustix::process::setrlimit(rustix::process::Resource::Nofile, raised) {
            tracing::warn!(%error, soft = ?before.soft, hard = ?before.hard, "cannot raise the open-file limit");
        }
    }
    open_file_limit()
}

/// What a process's connection caps come to, once fitted below its open-file limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Connections per API listener.
    pub max_connections: usize,
    /// Other descriptor users that scale (e.g. Consume streams), each costing `cost` descriptors.
    pub max_others: usize,
}

/// Fits `listeners` caps of `max_connections` connections, `others` users of `cost` descriptors
/// each and `fixed` more descriptors (a database pool) below `limit`, keeping [`RESERVED`]
/// free. What does not fit is cut down (connections first kept, then split evenly), with a
/// warning naming the flags; `None` as a limit means nothing to fit.
pub fn fit(
    limit: Option<u64>,
    listeners: usize,
    max_connections: usize,
    others: usize,
    cost: usize,
    fixed: u64,
) -> Budget {
    let wanted = Budget {
        max_connections,
        max_others: others,
    };
    let Some(limit) = limit else {
        return wanted;
    };
    let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    let available = limit.saturating_sub(RESERVED).saturating_sub(fixed);
    let listeners = as_u64(listeners.max(1));
    let cost = as_u64(cost.max(1));
    let needed = listeners
        .saturating_mul(as_u64(max_connections))
        .saturating_add(as_u64(others).saturating_mul(cost));
    if needed <= available {
        return wanted;
    }
    // Half the descriptors for connections, half for the others (all of them for connections
    // when there are no others), never more than was asked for.
    let for_connections = if others == 0 {
        available
    } else {
        available / 2
    };
    let connections = (for_connections / listeners).min(as_u64(max_connections));
    let left = available.saturating_sub(connections.saturating_mul(listeners));
    let fitted = Budget {
        max_connections: usize::try_from(connections.max(1)).unwrap_or(usize::MAX),
        max_others: usize::try_from((left / cost).min(as_u64(others))).unwrap_or(usize::MAX),
    };
    tracing::warn!(
        open_file_limit = limit,
        max_connections_asked = max_connections,
        max_connections = fitted.max_connections,
        others_asked = others,
        others = fitted.max_others,
        "the connection caps do not fit below the open-file limit: lowered (raise the limit, ulimit -n / LimitNOFILE, or lower the caps)"
    );
    fitted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_that_fit_are_kept() {
        let budget = fit(Some(65_536), 2, 4096, 0, 1, 16);
        assert_eq!(
            budget,
            Budget {
                max_connections: 4096,
                max_others: 0
            }
        );
        assert_eq!(
            fit(None, 2, usize::MAX, 7, 9, 0).max_connections,
            usize::MAX
        );
    }

    #[test]
    fn caps_that_do_not_fit_are_lowered_below_the_limit() {
        // The common soft limit: two listeners of 4,096 do not fit in 1,024.
        let budget = fit(Some(1024), 2, 4096, 0, 1, 16);
        assert_eq!(budget.max_connections, (1024 - 256 - 16) / 2);
        // With Consume streams of 16 descriptors each: half for connections.
        let budget = fit(Some(1024), 1, 4096, 512, 16, 0);
        assert_eq!(budget.max_connections, (1024 - 256) / 2);
        assert_eq!(budget.max_others, (1024 - 256 - 384) / 16);
        let used = budget.max_connections + budget.max_others * 16 + 256;
        assert!(used <= 1024, "{used}");
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let limit = raise_open_file_limit();
        if limit.hard.is_some() {
            assert_eq!(limit.soft, limit.hard);
        }
    }
}
