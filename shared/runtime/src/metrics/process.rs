//! The `process_*` metrics dashboards expect of every server (CPU, memory, file descriptors,
//! threads, start time), under the names Prometheus' own client libraries give them. Read
//! from `/proc/self` at each scrape; on a system without it, none is exported.

use std::fs;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`): 100 on every Linux ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// Registers with `Registry::register_collector`.
#[derive(Debug, Default)]
pub struct ProcessCollector;

/// One reading of `/proc/self`.
#[derive(Debug, Default, PartialEq)]
struct Reading {
    cpu_seconds: Option<f64>,
    start_time_seconds: Option<f64>,
    resident_bytes: Option<f64>,
    virtual_bytes: Option<f64>,
    threads: Option<f64>,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
}

impl Reading {
    fn now() -> Self {
        let stat = fs::read_to_string("/proc/self/stat").ok();
        let status = fs::read_to_string("/proc/self/status").ok();
        let boot_time = fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|text| boot_time(&text));
        let (cpu_seconds, started_ticks) = stat.as_deref().map(cpu_and_start).unwrap_or_default();
        Reading {
            cpu_seconds,
            start_time_seconds: boot_time
                .zip(started_ticks)
                .map(|(boot, ticks)| boot + ticks / TICKS_PER_SECOND),
            resident_bytes: status.as_deref().and_then(|s| status_kib(s, "VmRSS:")),
            virtual_bytes: status.as_deref().and_then(|s| status_kib(s, "VmSize:")),
            threads: status.as_deref().and_then(|s| status_field(s, "Threads:")),
            open_fds: fs::read_dir("/proc/self/fd")
                .ok()
                .map(|entries| entries.count() as f64),
            max_fds: fs::read_to_string("/proc/self/limits")
                .ok()
                .and_then(|text| max_open_files(&text)),
        }
    }
}

/// User plus system CPU seconds, and the start time in ticks after boot, from
/// `/proc/self/stat`. Its second field, the command name, may hold spaces and parentheses:
/// the fields that follow are counted from the last `)`.
fn cpu_and_start(stat: &str) -> (Option<f64>, Option<f64>) {
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        return (None, None);
    };
    // After the name: state is field 3, so field N is at index N - 3.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<f64>().ok());
    let cpu = field(14)
        .zip(field(15))
        .map(|(user, system)| (user + system) / TICKS_PER_SECOND);
    (cpu, field(22))
}

fn boot_time(stat: &str) -> Option<f64> {
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

fn status_field(status: &str, name: &str) -> Option<f64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
}

fn status_kib(status: &str, name: &str) -> Option<f64> {
    status_field(status, name).map(|kib| kib * 1024.0)
}

fn max_open_files(limits: &str) -> Option<f64> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    match soft {
        "unlimited" => Some(f64::INFINITY),
        number => number.parse().ok(),
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let reading = Reading::now();
        let mut gauge = |name: &str, help: &str, value: Option<f64>| match value {
            Some(value) => ConstGauge::new(value).encode(encoder.encode_descriptor(
                name,
                help,
                None,
                MetricType::Gauge,
            )?),
            None => Ok(()),
        };
        gauge(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch in seconds",
            reading.start_time_seconds,
        )?;
        gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            reading.resident_bytes,
        )?;
        gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            reading.virtual_bytes,
        )?;
        gauge(
            "process_open_fds",
            "Number of open file descriptors",
            reading.open_fds,
        )?;
        gauge(
            "process_max_fds",
            "Maximum number of open file descriptors",
            reading.max_fds,
        )?;
        gauge(
            "process_threads",
            "Number of OS threads in the process",
            reading.threads,
        )?;
        if let Some(cpu) = reading.cpu_seconds {
            ConstCounter::new(cpu).encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                MetricType::Counter,
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        let stat = "4242 (tokio (rt) worker) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    250 125 0 0 20 0 9 0 123456 100000000 5000 18446744073709551615";
        let (cpu, start) = cpu_and_start(stat);
        assert_eq!(cpu, Some(3.75));
        assert_eq!(start, Some(123456.0));
    }

    #[test]
    fn reads_the_soft_limit_of_open_files() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max cpu time              unlimited            unlimited            seconds\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024.0));
    }

    #[test]
    fn this_process_is_read() {
        let reading = Reading::now();
        if cfg!(target_os = "linux") {
            assert!(
                reading
                    .resident_bytes
                    .is_some_and(|rss| rss > 1024.0 * 1024.0)
            );
            assert!(reading.open_fds.is_some_and(|fds| fds >= 3.0));
            assert!(reading.threads.is_some_and(|threads| threads >= 1.0));
            assert!(reading.cpu_seconds.is_some());
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            let started = reading.start_time_seconds.unwrap();
            assert!(started <= now && started > now - 86_400.0, "{started}");
        }
    }
}
