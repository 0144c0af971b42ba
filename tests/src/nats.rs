//! A real `nats-server` with JetStream, one per test, on a free loopback port.
//!
//! [`NatsServer::start`] spawns `nats-server -js -sd <tempdir>/store -a 127.0.0.1 -p <port>`,
//! waits until JetStream answers, and kills the process when the value is dropped (the
//! temporary directory goes with it). Fault tests take the server away with
//! [`NatsServer::stop`] or [`NatsServer::kill`] and bring it back with
//! [`NatsServer::restart`], on the same port and the same store, so durable JetStream data
//! survives as it would in production.
//!
//! [`NatsServer::start_configured`] appends configuration (an `authorization` or `tls` block,
//! or operator mode's settings) to the server's `nats.conf` and takes the client options the
//! readiness probe connects with. [`TestPki`](crate::pki::TestPki) writes a private CA and
//! certificates for TLS tests; [`OperatorMode`](crate::nats_jwt::OperatorMode) makes an
//! operator, accounts and `.creds` files for JWT tests.
//!
//! [`NatsCluster::start`] runs three of them as one JetStream cluster on loopback.
//!
//! The binary is `$SLUICE_NATS_SERVER` when set, else `nats-server` on `PATH`; it must be 2.10
//! or newer. `scripts/install-nats.sh` installs one.

use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::procs::free_port;

/// Environment variable naming the `nats-server` binary to run instead of the one on `PATH`.
pub const BINARY_ENV: &str = "SLUICE_NATS_SERVER";

/// How long a start or restart may take before the test fails.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a graceful stop may take before the process is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The tests' `max_payload`: room for ingest's default 4 MiB body with its envelope, as
/// `docs/reliability.md` tells production to configure (nats-server's own default is 1 MiB).
const TEST_MAX_PAYLOAD: &str = "8MB";
/// Oldest server whose JetStream API async-nats 0.51 fully speaks (KV, consumer features).
const MIN_VERSION: (u32, u32) = (2, 10);

/// Builds the client options the readiness probe connects with (credentials, TLS).
pub type ProbeOptions = Arc<dyn Fn() -> async_nats::ConnectOptions + Send + Sync>;

/// A running (or deliberately stopped) `nats-server` owned by one test.
pub struct NatsServer {
    binary: PathBuf,
    port: u16,
    child: Mutex<Option<Child>>,
    probe: ProbeOptions,
    // Declared last so that it is removed after `Drop::drop` has killed the process.
    dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts a server on a free port with an empty JetStream store and waits until JetStream
    /// answers. Panics with the server's log when it does not come up.
    pub async fn start() -> NatsServer {
        Self::start_with(false, TEST_MAX_PAYLOAD).await
    }

    /// [`NatsServer::start`] with `conf` appended to its `nats.conf` (for example an
    /// `authorization { … }` or `tls { … }` block). `probe` builds the options a client
    /// that the server accepts connects with; readiness is checked with them.
    pub async fn start_configured(
        conf: &str,
        probe: impl Fn() -> async_nats::ConnectOptions + Send + Sync + 'static,
    ) -> NatsServer {
        Self::start_full(false, TEST_MAX_PAYLOAD, conf, Arc::new(probe)).await
    }

    /// [`NatsServer::start`] with this `max_payload` (a nats-server size: `1MB`, the
    /// server's default, or a number of bytes).
    pub async fn start_with_max_payload(max_payload: &str) -> NatsServer {
        Self::start_with(false, max_payload).await
    }

    /// [`NatsServer::start`] with `jetstream { sync_interval: always }`: every stored message
    /// is flushed to disk before JetStream acknowledges it, so an acknowledged message survives
    /// a `SIGKILL` of the server (and a power loss).
    pub async fn start_synced() -> NatsServer {
        Self::start_with(true, TEST_MAX_PAYLOAD).await
    }

    async fn start_with(sync_always: bool, max_payload: &str) -> NatsServer {
        Self::start_full(
            sync_always,
            max_payload,
            "",
            Arc::new(async_nats::ConnectOptions::new),
        )
        .await
    }

    async fn start_full(
        sync_always: bool,
        max_payload: &str,
        extra_conf: &str,
        probe: ProbeOptions,
    ) -> NatsServer {
        let binary = binary().clone();
        let dir = tempfile::Builder::new()
            .prefix("sluice-nats-")
            .tempdir()
            .expect("failed to create a temporary directory for nats-server");
        std::fs::create_dir_all(dir.path().join("store"))
            .expect("failed to create the JetStream store directory");

        let mut conf = format!("max_payload: {max_payload}\n");
        if sync_always {
            conf.push_str("jetstream {\n  sync_interval: always\n}\n");
        }
        conf.push_str(extra_conf);
        conf.push('\n');
        std::fs::write(dir.path().join("nats.conf"), conf)
            .expect("failed to write the nats-server configuration");
        let mut server = NatsServer {
            binary,
            port: 0,
            child: Mutex::new(None),
            probe,
            dir,
        };
        // A free port can be taken by someone else between our probe and the server's bind;
        // a fresh port on the next attempt settles that.
        let mut last_error = String::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.spawn_and_wait(Instant::now() + READY_TIMEOUT).await {
                Ok(()) => return server,
                Err(error) => {
                    last_error = error;
                    server.kill();
                }
            }
        }
        panic!("nats-server did not start: {last_error}");
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// `tls://127.0.0.1:PORT`, for a server configured with a `tls` block.
    pub fn tls_url(&self) -> String {
        format!("tls://127.0.0.1:{}", self.port)
    }

    /// The directory holding `nats.conf` and the log; removed with the server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The port the server listens on; it stays the same across [`restart`](Self::restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory (`-sd`); it survives stop and restart.
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The file that receives the server's stdout and stderr, across restarts.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Whether the server process is alive.
    pub fn is_running(&self) -> bool {
        let mut child = self.lock();
        match child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(_)) | Err(_)) => {
                *child = None;
                false
            }
            None => false,
        }
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.lock().as_ref().map(Child::id)
    }

    /// Shuts the server down cleanly (as `SIGINT` does: JetStream flushes its store), and
    /// kills it if it has not exited within a few seconds. Keeps the port and the store.
    pub async fn stop(&self) {
        let Some(pid) = self.lock().as_ref().map(Child::id) else {
            return;
        };
        // `nats-server --signal` sends the signal for us: `std` can only send SIGKILL and
        // this crate forbids `unsafe`.
        let _ = Command::new(&self.binary)
            .arg("--signal")
            .arg(format!("quit={pid}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if !self.is_running() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill();
    }

    /// Kills the server with `SIGKILL`, as a crash would, and reaps it. Keeps the port and
    /// the store. Data JetStream acknowledged but had not yet flushed may be lost, as in a
    /// real crash.
    pub fn kill(&self) {
        if let Some(mut child) = self.lock().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the process in its tracks (`SIGSTOP`): connections stay open and nothing
    /// answers, as with a stalled or cut-off node. [`Self::resume`] lets it go on.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a [`paused`](Self::pause) server go on (`SIGCONT`).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.pid().expect("the server runs");
        // `kill(1)`: `std` sends no other signal than SIGKILL, and this crate forbids `unsafe`.
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    /// Starts the server again on the same port with the same store and waits until
    /// JetStream answers. Stops it first if it is running. Retries for a while when the port
    /// is still held (for example by the old process's socket), then panics with the log.
    pub async fn restart(&self) {
        self.stop().await;
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last_error;
        loop {
            match self.spawn_and_wait(deadline).await {
                Ok(()) => return,
                Err(error) => last_error = error,
            }
            self.kill();
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "nats-server did not restart on port {}: {last_error}\n--- log ---\n{}",
            self.port,
            self.log()
        );
    }

    fn lock(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Spawns the process and waits until it serves JetStream, or returns why not.
    async fn spawn_and_wait(&self, deadline: Instant) -> Result<(), String> {
        self.spawn()?;
        self.wait_ready(deadline).await
    }

    /// Spawns the process, logging to [`Self::log_path`].
    fn spawn(&self) -> Result<(), String> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("failed to open {}: {e}", self.log_path().display()))?;
        let stderr = log
            .try_clone()
            .map_err(|e| format!("failed to clone the log file handle: {e}"))?;
        let mut command = Command::new(&self.binary);
        command.arg("-c").arg(self.dir.path().join("nats.conf"));
        let child = command
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(self.store_dir())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("{}", missing_binary_message(&self.binary, &e)));
        *self.lock() = Some(child);
        Ok(())
    }

    async fn wait_ready(&self, deadline: Instant) -> Result<(), String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut last_error = String::from("no attempt made");
        while Instant::now() < deadline {
            if !self.is_running() {
                return Err(format!(
                    "nats-server exited while starting\n--- log ---\n{}",
                    self.log()
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                match jetstream_answers(&self.url(), (self.probe)()).await {
                    Ok(()) => return Ok(()),
                    Err(error) => last_error = error,
                }
            } else {
                last_error = format!("nothing accepts connections on {addr} yet");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err(format!(
            "JetStream was not ready in time: {last_error}\n--- log ---\n{}",
            self.log()
        ))
    }
}

/// Three `nats-server`s on loopback forming one JetStream cluster (routes between them,
/// each node its own store), as production runs it. Each node is a [`NatsServer`] that can be
/// killed, stopped and restarted on its own ports and store.
pub struct NatsCluster {
    pub nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `size` nodes named `n1`, `n2`… and waits until JetStream answers on every one
    /// (which needs a meta leader, so a quorum of them).
    pub async fn start(size: usize) -> NatsCluster {
        let binary = binary().clone();
        let ports: Vec<(u16, u16)> = (0..size).map(|_| (free_port(), free_port())).collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, route)| format!("nats-route://127.0.0.1:{route}"))
            .collect();
        let nodes: Vec<NatsServer> = ports
            .iter()
            .enumerate()
            .map(|(index, (port, route))| {
                let dir = tempfile::Builder::new()
                    .prefix("sluice-nats-cluster-")
                    .tempdir()
                    .expect("failed to create a temporary directory for nats-server");
                std::fs::create_dir_all(dir.path().join("store"))
                    .expect("failed to create the JetStream store directory");
                let conf = format!(
                    "server_name: n{}\nmax_payload: {TEST_MAX_PAYLOAD}\n\
                     cluster {{\n  name: sluice-test\n  listen: 127.0.0.1:{route}\n  routes: [{}]\n}}\n",
                    index + 1,
                    routes.join(", ")
                );
                std::fs::write(dir.path().join("nats.conf"), conf)
                    .expect("failed to write the nats-server configuration");
                NatsServer {
                    binary: binary.clone(),
                    port: *port,
                    child: Mutex::new(None),
                    probe: Arc::new(async_nats::ConnectOptions::new),
                    dir,
                }
            })
            .collect();
        for node in &nodes {
            node.spawn().unwrap_or_else(|error| panic!("{error}"));
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        for node in &nodes {
            if let Err(error) = node.wait_ready(deadline).await {
                panic!("JetStream cluster did not form: {error}");
            }
        }
        NatsCluster { nodes }
    }

    /// Every node's URL, comma-separated, as `--nats-url` takes them.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The node named `name` (`n1`…), as JetStream names stream and consumer leaders.
    pub fn node(&self, name: &str) -> &NatsServer {
        let index: usize = name
            .strip_prefix('n')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no node {name}"));
        &self.nodes[index - 1]
    }
}

impl std::fmt::Debug for NatsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsServer")
            .field("binary", &self.binary)
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Connects and asks JetStream for the account info, the cheapest call that needs JetStream.
async fn jetstream_answers(url: &str, options: async_nats::ConnectOptions) -> Result<(), String> {
    let attempt = async {
        let client = options
            .connection_timeout(Duration::from_secs(1))
            .connect(url)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        async_nats::jetstream::new(client)
            .query_account()
            .await
            .map(|_| ())
            .map_err(|e| format!("JetStream account info: {e}"))
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .unwrap_or_else(|_| Err("JetStream did not answer within 2s".to_owned()))
}

/// The `nats-server` binary, checked once per test process to be 2.10 or newer.
fn binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let binary = std::env::var_os(BINARY_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("nats-server"));
        let output = Command::new(&binary)
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("{}", missing_binary_message(&binary, &e)));
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        match parse_version(&text) {
            Some(version) if version >= MIN_VERSION => binary,
            Some((major, minor)) => panic!(
                "{} is nats-server {major}.{minor}; Sluice's tests need {}.{} or newer \
                 (run scripts/install-nats.sh, or set {BINARY_ENV})",
                binary.display(),
                MIN_VERSION.0,
                MIN_VERSION.1
            ),
            None => panic!(
                "could not read the version of {} from {text:?} (run scripts/install-nats.sh, \
                 or set {BINARY_ENV})",
                binary.display()
            ),
        }
    })
}

fn missing_binary_message(binary: &Path, error: &std::io::Error) -> String {
    format!(
        "failed to run {} ({error}): nats-server 2.10+ is needed for these tests; \
         run scripts/install-nats.sh, or set {BINARY_ENV} to the binary's path",
        binary.display()
    )
}

/// `(major, minor)` from `nats-server: v2.10.22`.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let version = text
        .split_whitespace()
        .find_map(|word| word.strip_prefix('v'))?;
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_nats::jetstream::{self, stream};

    #[test]
    fn version_is_read_from_the_version_line() {
        assert_eq!(parse_version("nats-server: v2.10.22\n"), Some((2, 10)));
        assert_eq!(parse_version("nats-server: v2.9.25"), Some((2, 9)));
        assert_eq!(parse_version("garbage"), None);
    }

    #[tokio::test]
    async fn started_server_serves_jetstream_on_its_port() {
        let server = NatsServer::start().await;
        assert!(server.is_running());
        assert_eq!(server.url(), format!("nats://127.0.0.1:{}", server.port()));
        let client = async_nats::connect(server.url()).await.unwrap();
        let account = jetstream::new(client).query_account().await.unwrap();
        assert_eq!(account.streams, 0);
        assert!(server.log().contains("Server is ready"), "{}", server.log());
    }

    #[tokio::test]
    async fn stream_data_survives_stop_and_restart_on_the_same_port() {
        let server = NatsServer::start().await;
        let port = server.port();
        let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
        js.create_stream(stream::Config {
            name: "KEEP".into(),
            subjects: vec!["keep.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        js.publish("keep.one", "kept".into())
            .await
            .unwrap()
            .await
            .unwrap();

        server.stop().await;
        assert!(!server.is_running());
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "a stopped server still accepts connections"
        );

        server.restart().await;
        assert!(server.is_running());
        assert_eq!(server.port(), port);
        let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
        let mut stream = js.get_stream("KEEP").await.unwrap();
        assert_eq!(stream.info().await.unwrap().state.messages, 1);
        let message = stream.get_raw_message(1).await.unwrap();
        assert_eq!(message.subject.as_str(), "keep.one");
        assert_eq!(&message.payload[..], b"kept");
    }

    #[tokio::test]
    async fn killed_server_restarts_with_its_store() {
        let server = NatsServer::start().await;
        let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
        js.create_stream(stream::Config {
            name: "CRASH".into(),
            subjects: vec!["crash".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        server.kill();
        assert!(!server.is_running());
        server.restart().await;
        let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
        js.get_stream("CRASH").await.unwrap();
    }

    #[tokio::test]
    async fn drop_kills_the_server_and_removes_its_directory() {
        let server = NatsServer::start().await;
        let port = server.port();
        let dir = server.store_dir();
        assert!(dir.exists());
        drop(server);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
        assert!(!dir.exists());
    }
}
