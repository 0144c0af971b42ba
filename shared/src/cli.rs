//! Command-line flags that every Sluice binary shares, each with its environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::telemetry::LogFormat;

/// Flags common to `sluice-ingest` and `sluice-dispatcher`.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// NATS server to connect to.
    #[arg(long, env = "SLUICE_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,

    /// Directory of Tekton Triggers YAML documents (EventListener, Trigger, TriggerBinding,
    /// ClusterTriggerBinding, TriggerTemplate, Secret), read recursively.
    #[arg(long, env = "SLUICE_CONFIG_DIR")]
    pub config_dir: PathBuf,

    #[command(flatten)]
    pub policy: PolicyArgs,

    /// How often the configuration directory is checked for changes.
    #[arg(long, env = "SLUICE_CONFIG_RELOAD_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub config_reload_interval: Duration,

    /// Address of the operations server: /metrics, /healthz, /readyz.
    #[arg(long, env = "SLUICE_METRICS_ADDR", default_value = "0.0.0.0:9090")]
    pub metrics_addr: SocketAddr,

    /// Log line format.
    #[arg(long, env = "SLUICE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// How long the events stream keeps an event (e.g. `7d`, `12h`).
    #[arg(long, env = "SLUICE_STREAM_MAX_AGE", default_value = "7d", value_parser = parse_duration)]
    pub stream_max_age: Duration,

    /// Copies of the events stream kept by the NATS cluster (3 in production).
    #[arg(long, env = "SLUICE_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,
}

impl CommonArgs {
    /// Loads `--config-dir` and keeps it reloaded on change, under the platform's policy.
    /// Fails only when the directory cannot be read; every other problem is reported in the
    /// catalogue and logged.
    pub fn load_catalogue(
        &self,
    ) -> std::io::Result<std::sync::Arc<arc_swap::ArcSwap<crate::catalogue::Catalogue>>> {
        let options = self.load_options();
        let catalogue = crate::config::load_dir_with(&self.config_dir, &options)?;
        tracing::info!(
            listeners = catalogue.listeners().count(),
            issues = catalogue.issues().len(),
            "configuration loaded"
        );
        let catalogue = std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(catalogue));
        crate::config::spawn_reloader_with(
            self.config_dir.clone(),
            catalogue.clone(),
            self.config_reload_interval,
            options,
        );
        Ok(catalogue)
    }

    /// The platform policy every load and reload of the configuration applies.
    pub fn load_options(&self) -> crate::config::LoadOptions {
        self.policy.load_options()
    }

    pub fn stream_settings(&self) -> crate::jetstream::StreamSettings {
        crate::jetstream::StreamSettings {
            max_age: self.stream_max_age,
            replicas: self.stream_replicas,
        }
    }
}

/// The platform's policy for configurations, shared by the servers and the `sluice` CLI so
/// that `sluice validate` judges a directory as the servers will.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PolicyArgs {
    /// Refuse triggers that accept any caller: a trigger without an authentication
    /// interceptor (github, gitlab or bitbucket with a `secretRef`; gitee, slack, hmac) is
    /// reported as invalid and skipped.
    #[arg(long, env = "SLUICE_REQUIRE_AUTHENTICATION")]
    pub require_authentication: bool,

    /// Hosts webhook interceptors may call besides in-cluster services (`NAME.NAMESPACE.svc`):
    /// `host`, `host:port` or `*.domain`, comma-separated.
    #[arg(long, env = "SLUICE_INTERCEPTOR_ALLOW", value_delimiter = ',')]
    pub interceptor_allow: Vec<String>,

    /// Let an EventListener select Triggers in other namespaces (`namespaceSelector`).
    #[arg(long, env = "SLUICE_ALLOW_CROSS_NAMESPACE")]
    pub allow_cross_namespace: bool,
}

impl PolicyArgs {
    pub fn load_options(&self) -> crate::config::LoadOptions {
        crate::config::LoadOptions {
            require_authentication: self.require_authentication,
            interceptor_allow: self
                .interceptor_allow
                .iter()
                .map(|host| host.trim().to_ascii_lowercase())
                .filter(|host| !host.is_empty())
                .collect(),
            allow_cross_namespace: self.allow_cross_namespace,
        }
    }
}

/// Parses `250ms`, `30s`, `5m`, `2h` or `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` has no unit; use ms, s, m, h or d"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` does not start with a whole number"))?;
    let millis = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("`{unit}` is not a unit; use ms, s, m, h or d")),
    };
    number
        .checked_mul(millis)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("7").unwrap_err().contains("no unit"));
        assert!(parse_duration("7w").unwrap_err().contains("not a unit"));
        assert!(parse_duration("99999999999999999d").is_err());
    }
}
