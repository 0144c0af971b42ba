//! The parts a benchmark starts: nats-server, the Kubernetes API double, and the measured
//! processes (`sluice-ingest`, `sluice-dispatcher`, the reference), each killed on drop.
//!
//! Processes are started as users start them (flags and `SLUICE_*` variables) with their
//! output in a log file, and timed from spawn until their `/readyz` answers 200
//! (start-to-ready). Their memory is read from `/proc` (see [`crate::procstat`]).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde::{Deserialize, Serialize};
use sluice_tests::{ApiDouble, NatsCluster, NatsServer};

use crate::client;
use crate::config_dir;
use crate::procstat;
use crate::scenario::Scenario;

/// How long a process may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// A free port on 127.0.0.1, as an address.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .context("failed to find a free port on 127.0.0.1")
}

/// The directory of the Sluice binaries: `--bin-dir`, else this binary's directory.
pub fn bin_dir(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir.to_owned());
    }
    let exe = std::env::current_exe().context("failed to find this binary's path")?;
    exe.parent()
        .map(Path::to_path_buf)
        .context("this binary's path has no directory")
}

/// `dir/name`, or an error that says how to build it.
pub fn binary(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} is missing: build it with `cargo build --release --bin {name}` (or point \
             --bin-dir / SLUICE_BIN_DIR at the directory that holds it)",
            path.display()
        );
    }
    Ok(path)
}

/// What a measured process cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessFigures {
    /// From spawn until `/readyz` answered 200.
    pub start_to_ready_ms: f64,
    /// Resident set once ready, before any load.
    pub rss_ready_kib: u64,
    /// Peak resident set (`VmHWM`) when last measured.
    pub peak_rss_kib: u64,
    /// CPU seconds used when last measured.
    pub cpu_seconds: f64,
}

/// A child process, killed (SIGKILL) when dropped.
pub struct Service {
    name: String,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
    spawned: Instant,
    pub figures: ProcessFigures,
}

impl Service {
    /// Starts `program` with `args` and `env`; stdout and stderr go to a log file.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, String)],
    ) -> anyhow::Result<Service> {
        let dir = tempfile::Builder::new()
            .prefix("sluice-loadtest-")
            .tempdir()
            .context("failed to create a temporary directory")?;
        let log = dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log)
            .with_context(|| format!("failed to create {}", log.display()))?;
        let errors = file.try_clone().context("failed to share the log file")?;
        let spawned = Instant::now();
        // Benchmarks that want a configuration directory pass it; one inherited from the
        // shell would turn a run against the Kubernetes API into one against files.
        let child = Command::new(program)
            .env_remove("SLUICE_CONFIG_DIR")
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(errors)
            .spawn()
            .with_context(|| format!("failed to start {}", program.display()))?;
        Ok(Service {
            name: name.to_owned(),
            child,
            log,
            _dir: dir,
            spawned,
            figures: ProcessFigures::default(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last `lines` lines of the process's output.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The process's whole output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails with the log when the process has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            bail!("{} exited ({status}):\n{}", self.name, self.log_tail(30));
        }
        Ok(())
    }

    /// Polls `GET path` on `addr` until it answers 200; records start-to-ready and the
    /// resident set at that moment.
    pub async fn wait_ready(&mut self, addr: SocketAddr, path: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            self.check_running()?;
            if let Ok(200) = client::get_status(addr, path, Duration::from_secs(1)).await {
                self.figures.start_to_ready_ms = self.spawned.elapsed().as_secs_f64() * 1000.0;
                self.figures.rss_ready_kib = procstat::rss_kib(self.pid()).unwrap_or(0);
                self.measure();
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} was not ready within {READY_TIMEOUT:?}:\n{}",
                    self.name,
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Reads the peak resident set and CPU time now.
    pub fn measure(&mut self) -> &ProcessFigures {
        if let Some(peak) = procstat::peak_rss_kib(self.pid()) {
            self.figures.peak_rss_kib = peak;
        }
        if let Some(cpu) = procstat::cpu_seconds(Some(self.pid())) {
            self.figures.cpu_seconds = cpu;
        }
        &self.figures
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A NATS server this tool started, or one it was pointed at.
pub enum Nats {
    Owned(Box<NatsServer>),
    External(String),
}

impl Nats {
    /// Connects to `url`, or starts a nats-server with JetStream on a free port.
    pub async fn start(url: Option<&str>) -> anyhow::Result<Nats> {
        if let Some(url) = url {
            return Ok(Nats::External(url.to_owned()));
        }
        check_nats_binary()?;
        // The harness panics with the server's log when it cannot start it; a task turns
        // that into an error.
        let server = tokio::spawn(NatsServer::start())
            .await
            .map_err(|error| anyhow!("nats-server did not start: {error}"))?;
        Ok(Nats::Owned(Box::new(server)))
    }

    pub fn url(&self) -> String {
        match self {
            Nats::Owned(server) => server.url(),
            Nats::External(url) => url.clone(),
        }
    }

    /// The process id of a server this tool started.
    pub fn pid(&self) -> Option<u32> {
        match self {
            Nats::Owned(server) => server.pid(),
            Nats::External(_) => None,
        }
    }

    pub fn owned(&self) -> bool {
        matches!(self, Nats::Owned(_))
    }

    /// A JetStream context on this server.
    pub async fn jetstream(&self) -> anyhow::Result<async_nats::jetstream::Context> {
        let url = self.url();
        let client = async_nats::ConnectOptions::new()
            .name("sluice-loadtest")
            .connect(&url)
            .await
            .with_context(|| format!("failed to connect to NATS at {url}"))?;
        Ok(async_nats::jetstream::new(client))
    }

    /// Empties `stream` if it exists, on a server this tool started (never on someone
    /// else's).
    pub async fn purge(
        &self,
        js: &async_nats::jetstream::Context,
        stream: &str,
    ) -> anyhow::Result<()> {
        if !self.owned() {
            return Ok(());
        }
        if let Ok(stream_handle) = js.get_stream(stream).await {
            stream_handle
                .purge()
                .await
                .with_context(|| format!("failed to purge stream {stream}"))?;
        }
        Ok(())
    }
}

/// Fails with a hint when the nats-server the harness would run is missing.
pub fn check_nats_binary() -> anyhow::Result<()> {
    let hint = "nats-server 2.10+ is needed: run `export SLUICE_NATS_SERVER=$(bash \
                scripts/install-nats.sh)`, or pass --nats URL";
    if let Some(path) = std::env::var_os(sluice_tests::nats::BINARY_ENV) {
        if Path::new(&path).is_file() {
            return Ok(());
        }
        bail!(
            "{} is {} which does not exist; {hint}",
            sluice_tests::nats::BINARY_ENV,
            Path::new(&path).display()
        );
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join("nats-server").is_file()))
        .unwrap_or(false);
    if !on_path {
        bail!("nats-server is not on PATH; {hint}");
    }
    Ok(())
}

/// The Kubernetes API double, with every service account allowed to create PipelineRuns
/// in every namespace; and its kubeconfig.
pub struct Api {
    pub double: ApiDouble,
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Api {
    pub async fn start() -> anyhow::Result<Api> {
        let double = tokio::spawn(ApiDouble::start())
            .await
            .map_err(|error| anyhow!("the Kubernetes API double did not start: {error}"))?;
        double.grant_group(
            "system:serviceaccounts",
            &["create"],
            "tekton.dev",
            "pipelineruns",
            "*",
        );
        let dir = tempfile::tempdir().context("failed to create a temporary directory")?;
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, double.kubeconfig_yaml())
            .with_context(|| format!("failed to write {}", kubeconfig.display()))?;
        Ok(Api {
            double,
            kubeconfig,
            _dir: dir,
        })
    }
}

/// A started `sluice-ingest`, ready.
pub struct Ingest {
    pub service: Service,
    pub addr: SocketAddr,
}

impl Ingest {
    pub async fn start(
        bin_dir: &Path,
        nats_url: &str,
        config_dir: &Path,
        extra: &[String],
    ) -> anyhow::Result<Ingest> {
        let program = binary(bin_dir, "sluice-ingest")?;
        let addr = free_addr()?;
        let metrics = free_addr()?;
        let mut args = vec![
            "--listen".to_owned(),
            addr.to_string(),
            "--metrics-addr".to_owned(),
            metrics.to_string(),
        ];
        args.extend(extra.iter().cloned());
        let env = [
            ("SLUICE_NATS_URL", nats_url.to_owned()),
            ("SLUICE_CONFIG_DIR", config_dir.display().to_string()),
        ];
        let mut service = Service::spawn("sluice-ingest", &program, &args, &env)?;
        service.wait_ready(addr, "/readyz").await?;
        Ok(Ingest { service, addr })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A started reference server (this binary's `reference` subcommand), ready.
pub struct Reference {
    pub service: Service,
    pub addr: SocketAddr,
}

impl Reference {
    pub async fn start(nats_url: &str, secret: &str) -> anyhow::Result<Reference> {
        let addr = free_addr()?;
        let args = ["--listen", &addr.to_string(), "--nats", nats_url];
        // The secret goes by environment, out of `ps`.
        let env = [("SLUICE_LOADTEST_SECRET", secret.to_owned())];
        let service = start_own("reference", &args, &env, addr).await?;
        Ok(Reference { service, addr })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A started reference dispatcher (this binary's `reference-dispatcher` subcommand) creating
/// through the API double, ready.
pub struct ReferenceDispatcher {
    pub service: Service,
}

impl ReferenceDispatcher {
    pub async fn start(nats_url: &str, api: &Api) -> anyhow::Result<ReferenceDispatcher> {
        let ready = free_addr()?;
        let args = [
            "--nats",
            nats_url,
            "--api",
            &api.double.url(),
            "--ready-addr",
            &ready.to_string(),
        ];
        // The token goes by environment, out of `ps`.
        let env = [("SLUICE_REFERENCE_API_TOKEN", api.double.token().to_owned())];
        let service = start_own("reference-dispatcher", &args, &env, ready).await?;
        Ok(ReferenceDispatcher { service })
    }
}

/// Starts this binary's `subcommand` with `args` and `env`, and waits until it answers
/// `/readyz` on `ready`.
async fn start_own(
    subcommand: &str,
    args: &[&str],
    env: &[(&str, String)],
    ready: SocketAddr,
) -> anyhow::Result<Service> {
    let program = std::env::current_exe().context("failed to find this binary's path")?;
    let args: Vec<String> = std::iter::once(subcommand)
        .chain(args.iter().copied())
        .map(str::to_owned)
        .collect();
    let mut service = Service::spawn(subcommand, &program, &args, env)?;
    service.wait_ready(ready, "/readyz").await?;
    Ok(service)
}

/// A started `sluice-dispatcher` creating through the API double, ready.
pub struct Dispatcher {
    pub service: Service,
}

impl Dispatcher {
    /// Spawns the dispatcher; [`Dispatcher::wait_ready`] waits for it.
    pub fn spawn(
        bin_dir: &Path,
        nats_url: &str,
        config_dir: &Path,
        kubeconfig: &Path,
        extra: &[String],
    ) -> anyhow::Result<(Dispatcher, SocketAddr)> {
        let program = binary(bin_dir, "sluice-dispatcher")?;
        let metrics = free_addr()?;
        let mut args = vec!["--metrics-addr".to_owned(), metrics.to_string()];
        args.extend(extra.iter().cloned());
        let env = [
            ("SLUICE_NATS_URL", nats_url.to_owned()),
            ("SLUICE_CONFIG_DIR", config_dir.display().to_string()),
            ("KUBECONFIG", kubeconfig.display().to_string()),
        ];
        let service = Service::spawn("sluice-dispatcher", &program, &args, &env)?;
        Ok((Dispatcher { service }, metrics))
    }

    pub async fn wait_ready(&mut self, metrics: SocketAddr) -> anyhow::Result<()> {
        self.service.wait_ready(metrics, "/readyz").await
    }
}

/// Nodes of the JetStream cluster [`ReplicatedStack`] starts.
pub const NODES: usize = 3;

/// What `soak` and `tenant-scale` run on, as production runs it: a [`NODES`]-node JetStream
/// cluster with every stream and bucket in [`NODES`] copies, the API double, a scenario's
/// configuration, and `sluice-ingest` given every node's URL. Dispatchers are the caller's
/// ([`ReplicatedStack::start_dispatcher`]).
pub struct ReplicatedStack {
    pub cluster: NatsCluster,
    /// Every node's URL, comma-separated.
    pub urls: String,
    pub api: Api,
    pub ingest: Ingest,
    bin_dir: PathBuf,
    config: tempfile::TempDir,
    /// `--stream-replicas`, then the caller's flags.
    dispatcher_args: Vec<String>,
}

impl ReplicatedStack {
    pub async fn start(
        bin_dir: PathBuf,
        scenario: &Scenario,
        secret: &str,
        ingest_args: &[String],
        dispatcher_args: &[String],
    ) -> anyhow::Result<ReplicatedStack> {
        check_nats_binary()?;
        // The harness panics with a node's log when the cluster does not form; a task turns
        // that into an error.
        let cluster = tokio::spawn(NatsCluster::start(NODES))
            .await
            .map_err(|error| anyhow!("the NATS cluster did not start: {error}"))?;
        let urls = cluster.urls();
        let api = Api::start().await?;
        let config = tempfile::tempdir().context("failed to create a temporary directory")?;
        config_dir::write(scenario, secret, config.path(), false)?;
        let with_replicas = |extra: &[String]| {
            let mut args = vec![format!("--stream-replicas={NODES}")];
            args.extend(extra.iter().cloned());
            args
        };
        let ingest =
            Ingest::start(&bin_dir, &urls, config.path(), &with_replicas(ingest_args)).await?;
        Ok(ReplicatedStack {
            cluster,
            urls,
            api,
            ingest,
            bin_dir,
            config,
            dispatcher_args: with_replicas(dispatcher_args),
        })
    }

    /// Starts a dispatcher replica and waits until it is ready.
    pub async fn start_dispatcher(&self) -> anyhow::Result<Dispatcher> {
        let (mut dispatcher, metrics) = Dispatcher::spawn(
            &self.bin_dir,
            &self.urls,
            self.config.path(),
            &self.api.kubeconfig,
            &self.dispatcher_args,
        )?;
        dispatcher.wait_ready(metrics).await?;
        Ok(dispatcher)
    }
}
