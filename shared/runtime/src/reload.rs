//! Reload on change: the configuration directory is polled, and when the fingerprint of its files (paths,
//! sizes, modification times) changes, the catalogue is rebuilt and swapped in atomically.
//! Readers never wait: they keep the catalogue they loaded until their next lookup.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use sluice_triggers::catalogue::Catalogue;
use sluice_triggers::config::{self, LoadOptions};

/// Polls `dir` every `interval` and replaces `target` when a file was added, removed or
/// changed, with the default [`LoadOptions`]. An unreadable directory keeps the catalogue
/// that is serving.
pub fn spawn_reloader(
    dir: PathBuf,
    target: Arc<ArcSwap<Catalogue>>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    spawn_reloader_with(dir, target, interval, LoadOptions::default())
}

/// [`spawn_reloader`] under the platform's [`LoadOptions`]: pass the ones the first load used.
pub fn spawn_reloader_with(
    dir: PathBuf,
    target: Arc<ArcSwap<Catalogue>>,
    interval: Duration,
    options: LoadOptions,
) -> tokio::task::JoinHandle<()> {
    spawn_reloader_watching(
        dir,
        target,
        interval,
        Arc::new(move || options.clone()),
        None,
    )
}

/// [`spawn_reloader`] whose [`LoadOptions`] can change: `options` is asked again at every
/// reload, and a change of `also_watch` (the platform's policy file, say) reloads too.
pub fn spawn_reloader_watching(
    dir: PathBuf,
    target: Arc<ArcSwap<Catalogue>>,
    interval: Duration,
    options: Arc<dyn Fn() -> LoadOptions + Send + Sync>,
    also_watch: Option<PathBuf>,
) -> tokio::task::JoinHandle<()> {
    let stamp = move |dir: &Path| {
        let files = fingerprint(dir)?;
        let mut hasher = DefaultHasher::new();
        files.hash(&mut hasher);
        if let Some(path) = &also_watch
            && let Ok(meta) = std::fs::metadata(path)
        {
            meta.len().hash(&mut hasher);
            meta.modified().ok().hash(&mut hasher);
        }
        Some(hasher.finish())
    };
    let stamp = Arc::new(stamp);
    // Taken now, not when the task first runs, so a change made in between is seen.
    let mut last = stamp(&dir);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let dir = dir.clone();
            let options = options.clone();
            let stamp = stamp.clone();
            let unchanged = last;
            let Ok((current, loaded)) = tokio::task::spawn_blocking(move || {
                let current = stamp(&dir);
                // Parsed only when something changed: a large directory (thousands of
                // tenants) costs a stat per file per interval, not a parse.
                let changed = current.is_some() && current != unchanged;
                let loaded = changed.then(|| config::load_dir_with(&dir, &options()));
                (current, loaded)
            })
            .await
            else {
                continue;
            };
            if current == last {
                continue;
            }
            match loaded {
                Some(Ok(catalogue)) => {
                    tracing::info!(
                        listeners = catalogue.listeners().count(),
                        issues = catalogue.issues().len(),
                        "configuration reloaded"
                    );
                    target.store(Arc::new(catalogue));
                    last = current;
                }
                Some(Err(error)) => {
                    tracing::warn!(%error, "configuration directory unreadable; keeping the loaded configuration");
                }
                None => {
                    tracing::warn!(
                        "configuration directory unreadable; keeping the loaded configuration"
                    );
                }
            }
        }
    })
}

/// A hash of every configuration file's path, size and modification time; `None` when the
/// directory cannot be read.
fn fingerprint(dir: &Path) -> Option<u64> {
    let files = config::files(dir).ok()?;
    let mut hasher = DefaultHasher::new();
    for file in files {
        file.hash(&mut hasher);
        if let Ok(meta) = std::fs::metadata(&file) {
            meta.len().hash(&mut hasher);
            meta.modified().ok().hash(&mut hasher);
        }
    }
    Some(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTENER: &str = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: NAME, namespace: team-a}
spec:
  triggers:
    - template:
        spec:
          resourcetemplates:
            - {apiVersion: tekton.dev/v1, kind: PipelineRun, metadata: {generateName: ci-}}
"#;

    #[tokio::test]
    async fn a_changed_directory_is_swapped_in_and_a_missing_one_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), LISTENER.replace("NAME", "first")).unwrap();
        let target = Arc::new(ArcSwap::from_pointee(config::load_dir(dir.path()).unwrap()));
        let task = spawn_reloader(
            dir.path().to_owned(),
            target.clone(),
            Duration::from_millis(20),
        );

        std::fs::write(
            dir.path().join("b.yaml"),
            LISTENER.replace("NAME", "second"),
        )
        .unwrap();
        let mut reloaded = false;
        for _ in 0..200 {
            if target.load().listener("team-a", "second").is_some() {
                reloaded = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(reloaded, "the new listener was picked up");
        assert!(target.load().listener("team-a", "first").is_some());

        let path = dir.path().to_owned();
        drop(dir);
        assert!(!path.exists());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            target.load().listener("team-a", "second").is_some(),
            "a vanished directory does not empty the catalogue"
        );
        task.abort();
    }

    #[tokio::test]
    async fn an_unchanged_directory_is_not_parsed_again() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), LISTENER.replace("NAME", "first")).unwrap();
        let target = Arc::new(ArcSwap::from_pointee(config::load_dir(dir.path()).unwrap()));
        let loads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = loads.clone();
        let task = spawn_reloader_watching(
            dir.path().to_owned(),
            target.clone(),
            Duration::from_millis(10),
            Arc::new(move || {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                LoadOptions::default()
            }),
            None,
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(loads.load(std::sync::atomic::Ordering::Relaxed), 0);

        // Renamed in whole, so that no poll sees a half-written file.
        let staging = tempfile::tempdir().unwrap();
        let staged = staging.path().join("b.yaml");
        std::fs::write(&staged, LISTENER.replace("NAME", "second")).unwrap();
        std::fs::rename(&staged, dir.path().join("b.yaml")).unwrap();
        for _ in 0..200 {
            if target.load().listener("team-a", "second").is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(target.load().listener("team-a", "second").is_some());
        assert_eq!(loads.load(std::sync::atomic::Ordering::Relaxed), 1);
        task.abort();
    }
}
