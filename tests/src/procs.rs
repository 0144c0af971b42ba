//! Sluice's own binaries, started as users start them (flags, environment), each killed on
//! drop; plus small helpers that tests share.

use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Where the built binaries are: `SLUICE_BIN_DIR`, else the target directory this test
/// binary was built into.
pub fn bin_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("SLUICE_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().expect("test binary path");
            // target/<profile>/deps/<test binary>
            exe.parent()
                .and_then(Path::parent)
                .expect("target directory")
                .to_path_buf()
        });
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (`cargo build --bins`; scripts/test.sh does)",
        path.display()
    );
    path
}

/// A free TCP port on 127.0.0.1, below the kernel's ephemeral range (from 32768 on Linux by
/// default). A port the kernel hands out as free comes from that range, and any outgoing
/// connection of a test running alongside can take it before the process under test binds
/// it; below the range only these tests pick ports, each a different one in turn.
pub fn free_port() -> u16 {
    const FIRST: u32 = 10_000;
    const COUNT: u32 = 22_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Two test binaries running at once start far apart.
    let start = std::process::id().wrapping_mul(7_919);
    for _ in 0..COUNT {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + start.wrapping_add(n) % COUNT) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `check` until it returns `true` or `timeout` passes; returns whether it held.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GitHub's `X-Hub-Signature-256` value for `body`.
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A running Sluice binary; killed (SIGKILL) on drop.
pub struct Process {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    _dir: tempfile::TempDir,
    command: Vec<String>,
    env: Vec<(String, String)>,
}

impl Process {
    /// Starts `binary` with `args` and `env`; output goes to a log file.
    pub fn spawn(binary: &str, args: &[String], env: &[(String, String)]) -> Process {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join(format!("{binary}.log"));
        let mut process = Process {
            name: binary.to_owned(),
            child: None,
            log,
            _dir: dir,
            command: args.to_vec(),
            env: env.to_vec(),
        };
        process.start();
        process
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(bin_path(&self.name))
            .args(&self.command)
            // The tests read a process's log the moment after what they waited for: each
            // line is written before its logging call returns (a test may ask otherwise).
            .env("SLUICE_LOG_WRITES", "direct")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start {}: {e}", self.name));
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown code runs, as in a crash or an OOM kill.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits up to `timeout` for the process to exit; returns whether it did.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let Some(child) = self.child.as_mut() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Sends SIGTERM and returns at once, so a test can watch the shutdown while it happens.
    pub fn send_terminate(&self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }

    /// Waits up to `timeout` for the process to exit (polling, without blocking the async
    /// runtime) and returns its exit status; `None` if it is still running (or was already
    /// reaped by another call).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Starts the process again with the same flags (after `kill9` or `terminate`).
    pub fn restart(&mut self) {
        self.kill9();
        self.start();
    }

    /// The OS process id while the process runs (to read `/proc/<pid>/status`, say).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Everything the process wrote so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- {} log ----\n{}", self.name, self.logs());
        }
        self.kill9();
    }
}

/// `sluice-ingest` on free ports.
pub struct Ingest {
    pub process: Process,
    /// `http://127.0.0.1:<port>`
    pub url: String,
    pub metrics_url: String,
}

impl Ingest {
    /// Starts ingest and waits until it answers `/healthz` (not `/readyz`: NATS may be down
    /// on purpose).
    pub async fn start(nats_url: &str, config_dir: &Path, extra: &[&str]) -> Ingest {
        Self::start_from(nats_url, ConfigFrom::Dir(config_dir), extra).await
    }

    /// [`Ingest::start`] reading its configuration from `config`.
    pub async fn start_from(nats_url: &str, config: ConfigFrom<'_>, extra: &[&str]) -> Ingest {
        Self::start_from_env(nats_url, config, extra, &[]).await
    }

    /// [`Ingest::start_from`] with `env` set too (`OTEL_*`, say).
    pub async fn start_from_env(
        nats_url: &str,
        config: ConfigFrom<'_>,
        extra: &[&str],
        extra_env: &[(&str, &str)],
    ) -> Ingest {
        let port = free_port();
        let metrics_port = free_port();
        let mut args = vec![
            "--listen".to_owned(),
            format!("127.0.0.1:{port}"),
            "--metrics-addr".to_owned(),
            format!("127.0.0.1:{metrics_port}"),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut env = vec![("SLUICE_NATS_URL".to_owned(), nats_url.to_owned())];
        env.push(config.env());
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let ingest = Ingest {
            process: Process::spawn("sluice-ingest", &args, &env),
            url: format!("http://127.0.0.1:{port}"),
            metrics_url: format!("http://127.0.0.1:{metrics_port}"),
        };
        ingest.wait_for("/healthz").await;
        ingest
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        self.wait_for("/readyz").await;
    }

    async fn wait_for(&self, path: &str) {
        let client = reqwest::Client::new();
        let url = format!("{}{path}", self.url);
        let ok = eventually(Duration::from_secs(60), || async {
            client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        assert!(ok, "ingest never answered {path}:\n{}", self.process.logs());
    }

    pub fn hook_url(&self, namespace: &str, listener: &str) -> String {
        format!("{}/hooks/{namespace}/{listener}", self.url)
    }
}

/// Where a server reads its Tekton Triggers configuration.
#[derive(Clone, Copy, Debug)]
pub enum ConfigFrom<'a> {
    /// `--config-dir`.
    Dir(&'a Path),
    /// The Kubernetes API this kubeconfig describes (no `--config-dir`).
    Cluster(&'a Path),
}

impl ConfigFrom<'_> {
    fn env(self) -> (String, String) {
        match self {
            ConfigFrom::Dir(dir) => ("SLUICE_CONFIG_DIR".to_owned(), dir.display().to_string()),
            ConfigFrom::Cluster(kubeconfig) => {
                ("KUBECONFIG".to_owned(), kubeconfig.display().to_string())
            }
        }
    }
}

/// Where the dispatcher puts objects.
pub enum SinkTarget<'a> {
    /// The Kubernetes API described by this kubeconfig.
    Kube(&'a Path),
    /// YAML files under this directory.
    Dir(&'a Path),
}

/// `sluice-dispatcher` on a free metrics port.
pub struct Dispatcher {
    pub process: Process,
    pub metrics_url: String,
}

impl Dispatcher {
    /// Starts a dispatcher replica and waits until its `/readyz` answers 200.
    pub async fn start(
        nats_url: &str,
        config_dir: &Path,
        sink: SinkTarget<'_>,
        extra: &[&str],
    ) -> Dispatcher {
        let dispatcher = Self::spawn(nats_url, config_dir, sink, extra);
        dispatcher.wait_ready().await;
        dispatcher
    }

    /// Starts a dispatcher replica without waiting for it to be ready.
    pub fn spawn(
        nats_url: &str,
        config_dir: &Path,
        sink: SinkTarget<'_>,
        extra: &[&str],
    ) -> Dispatcher {
        Self::spawn_from(nats_url, ConfigFrom::Dir(config_dir), sink, extra)
    }

    /// [`Dispatcher::spawn`] reading its configuration from `config`.
    pub fn spawn_from(
        nats_url: &str,
        config: ConfigFrom<'_>,
        sink: SinkTarget<'_>,
        extra: &[&str],
    ) -> Dispatcher {
        Self::spawn_from_env(nats_url, config, sink, extra, &[])
    }

    /// [`Dispatcher::spawn_from`] with `env` set too (`OTEL_*`, say).
    pub fn spawn_from_env(
        nats_url: &str,
        config: ConfigFrom<'_>,
        sink: SinkTarget<'_>,
        extra: &[&str],
        extra_env: &[(&str, &str)],
    ) -> Dispatcher {
        let metrics_port = free_port();
        let mut args = vec![
            "--metrics-addr".to_owned(),
            format!("127.0.0.1:{metrics_port}"),
            "--retry-base".to_owned(),
            "100ms".to_owned(),
            "--retry-max".to_owned(),
            "1s".to_owned(),
        ];
        let mut env = vec![("SLUICE_NATS_URL".to_owned(), nats_url.to_owned())];
        if !matches!(config, ConfigFrom::Cluster(_)) || matches!(sink, SinkTarget::Dir(_)) {
            env.push(config.env());
        }
        match sink {
            SinkTarget::Kube(kubeconfig) => {
                env.push(("KUBECONFIG".to_owned(), kubeconfig.display().to_string()))
            }
            SinkTarget::Dir(dir) => {
                args.push("--sink-dir".to_owned());
                args.push(dir.display().to_string());
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        Dispatcher {
            process: Process::spawn("sluice-dispatcher", &args, &env),
            metrics_url: format!("http://127.0.0.1:{metrics_port}"),
        }
    }

    pub async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let url = format!("{}/readyz", self.metrics_url);
        let ok = eventually(Duration::from_secs(60), || async {
            client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        assert!(
            ok,
            "dispatcher never became ready:\n{}",
            self.process.logs()
        );
    }
}
