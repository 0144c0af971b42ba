//! Reload on change: the tenants file is read every interval and, when its bytes differ from
//! the last ones seen, parsed and swapped in. Comparing contents rather than modification
//! times also catches a Kubernetes ConfigMap update (a symlink swapped under the mount) and
//! a rewrite within the file system's timestamp granularity; the file is small.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::TenantPolicy;

/// Polling faster than this would only burn a core; it also keeps a zero interval, which
/// `tokio::time::interval` refuses with a panic, from reaching it.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// What the last look at the file found, so that each change is acted on, and each problem
/// logged, once rather than at every tick.
#[derive(Debug, PartialEq)]
enum Seen {
    /// The file's bytes, whether or not they parsed.
    Content(Vec<u8>),
    Missing,
    /// Unreadable for another reason, with that reason.
    Unreadable(String),
}

impl Seen {
    fn of(read: std::io::Result<Vec<u8>>) -> Self {
        match read {
            Ok(bytes) => Self::Content(bytes),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Self::Missing,
            Err(error) => Self::Unreadable(error.to_string()),
        }
    }
}

/// Keeps `target` up to date with the file, polling every `interval` (like the config
/// reloader: a changed file that fails to parse is logged with the error and the previous
/// policy stays in force; a removed file keeps the previous policy and warns).
///
/// The file as it is when this is called is taken to be the one `target` was loaded from,
/// so load it first; a change made in between is still seen, as a change.
pub fn spawn_policy_reloader(
    path: PathBuf,
    target: Arc<ArcSwap<TenantPolicy>>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    // Taken now, not when the task first runs, so a change made in between is seen.
    let mut seen = Seen::of(std::fs::read(&path));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval.max(MIN_INTERVAL));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let now = Seen::of(tokio::fs::read(&path).await);
            if now == seen {
                continue;
            }
            match &now {
                Seen::Content(bytes) => match TenantPolicy::from_bytes(&path, bytes) {
                    Ok(policy) => {
                        tracing::info!(
                            path = %path.display(),
                            namespaces = policy.namespaces.len(),
                            paused = policy.paused.len(),
                            "tenant policy reloaded"
                        );
                        target.store(Arc::new(policy));
                    }
                    Err(error) => {
                        tracing::warn!(%error, "tenant policy file invalid; keeping the policy in force");
                    }
                },
                Seen::Missing => {
                    tracing::warn!(
                        path = %path.display(),
                        "tenant policy file removed; keeping the policy in force"
                    );
                }
                Seen::Unreadable(error) => {
                    tracing::warn!(
                        path = %path.display(),
                        %error,
                        "tenant policy file unreadable; keeping the policy in force"
                    );
                }
            }
            seen = now;
        }
    })
}
