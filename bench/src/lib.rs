//! What the bench binaries share: reading a process's CPU time and memory from `/proc`, so
//! that a table can say what a request or a record cost the process that served it (a figure
//! that hardly depends on what else runs on the machine, unlike a rate); the records they send
//! ([`records`]); how the services they start are secured ([`security`]) and started
//! ([`services`]).

pub mod hot_subject;
pub mod records;
pub mod security;
pub mod services;

/// The resident set size of a process, in MiB (`VmRSS` of `/proc/<pid>/status`); NaN when it
/// cannot be read.
pub fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU time (user + system, all threads) a process has used so far, in seconds, from
/// `/proc/<pid>/stat` (Linux; its clock ticks are 10 ms).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses: state is the first, then utime
    // and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_and_cpu_time() {
        let pid = std::process::id();
        assert!(rss_mib(pid) > 0.0);
        let before = cpu_seconds(pid).expect("own /proc/<pid>/stat");
        let mut x = 0u64;
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_millis(50) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(cpu_seconds(pid).expect("own stat") >= before);
        assert!(rss_mib(u32::MAX).is_nan());
        assert_eq!(cpu_seconds(u32::MAX), None);
    }
}
