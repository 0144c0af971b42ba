//! What `/proc` says about a process: CPU time used (`/proc/<pid>/stat`) and memory
//! (`VmHWM`, the peak resident set, and `VmRSS` from `/proc/<pid>/status`). Linux only;
//! elsewhere the figures are absent.

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on every Linux
/// architecture Sluice runs on).
const TICKS_PER_SECOND: f64 = 100.0;

/// User plus system CPU seconds of `pid` (`None`: this process), threads included.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    parse_cpu_seconds(&std::fs::read_to_string(path).ok()?)
}

/// `utime + stime` (fields 14 and 15) of a `stat` line, in seconds. The command name (field
/// 2) may hold spaces and parentheses, so fields are counted after its last `)`.
fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After the name: state (3), ppid (4) … utime is field 14, the 12th after the name.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

/// The peak resident set size of `pid` in KiB (`VmHWM`).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmHWM")
}

/// The current resident set size of `pid` in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS")
}

fn status_field(pid: u32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_field(&status, name)
}

fn parse_status_field(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// The 1-minute load average, as a hint of what else the machine was doing.
pub fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_times_are_read_after_the_command_name() {
        let stat = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 2000 0 0 0 250 50 0 0 20 0 3 0 1000 100000 500";
        assert_eq!(parse_cpu_seconds(stat), Some(3.0));
        assert_eq!(parse_cpu_seconds("garbage"), None);
        assert!(cpu_seconds(None).is_some());
    }

    #[test]
    fn memory_fields_are_in_kib() {
        let status = "Name:\tsluice-ingest\nVmPeak:\t  200000 kB\nVmHWM:\t   12345 kB\nVmRSS:\t   10000 kB\n";
        assert_eq!(parse_status_field(status, "VmHWM"), Some(12_345));
        assert_eq!(parse_status_field(status, "VmRSS"), Some(10_000));
        assert_eq!(parse_status_field(status, "VmSwap"), None);
        assert!(peak_rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
    }
}
