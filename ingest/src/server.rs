//! The webhook server's accept loop: HTTP/1 connections served by hyper with the
//! connection-level limits of [`crate::limits`] (which `axum::serve` cannot set), a cap on
//! open connections, and the shutdown sequence.
//!
//! Shutdown, from the first SIGTERM or SIGINT:
//!
//! 1. **Unready at once.** [`Draining`] makes `/readyz` answer 503 on both ports, so load
//!    balancers and Kubernetes endpoints stop sending new traffic here.
//! 2. **Keep serving for `--shutdown-delay`.** Endpoint removal takes a moment to reach every
//!    load balancer; webhooks that still arrive meanwhile are served normally. Answers carry
//!    `Connection: close`, so keep-alive clients reconnect, to another replica.
//! 3. **Stop accepting and drain for `--shutdown-timeout`.** The listening socket is closed;
//!    each open connection finishes its current request (publish and answer included) and
//!    closes; idle ones close at once.
//! 4. **Cut what is left.** Connections still open at the deadline are dropped: their senders
//!    see the connection close without an answer, never a 2xx for an event that was not
//!    stored (one that was stored is answered as a duplicate when the sender retries).
//!
//! A second signal during 2 or 3 skips to 4.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use pin_project_lite::pin_project;
use sluice_runtime::ops::Draining;
use sluice_triggers::duration::parse_duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::{Service, ServiceExt};

use crate::limits::LimitArgs;
use crate::metrics::IngestMetrics;

/// Pause after an accept error that is not about one connection (e.g. out of file
/// descriptors), so the loop does not spin while the cause persists.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// How `sluice-ingest` shuts down; flattened into its [`crate::args::Args`].
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ShutdownArgs {
    /// After SIGTERM, how long to keep serving while unready, so that load balancers stop
    /// sending before the listening socket closes (e.g. `5s` behind a Kubernetes Service).
    #[arg(long, env = "SLUICE_SHUTDOWN_DELAY", default_value = "0s", value_parser = parse_duration)]
    pub shutdown_delay: Duration,

    /// After the delay, how long requests in flight have to finish; those still running then
    /// are cut off. The pod's termination grace period must exceed delay plus timeout.
    #[arg(long, env = "SLUICE_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
}

impl Default for ShutdownArgs {
    /// The flags' defaults.
    fn default() -> Self {
        Self {
            shutdown_delay: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// How a shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Every connection finished within `--shutdown-timeout`.
    Drained,
    /// Connections were still open at the deadline (or a second signal came) and were cut.
    CutOff,
}

/// When and how [`serve`] shuts down.
pub struct Shutdown<S, A> {
    pub plan: ShutdownArgs,
    /// Started at the first signal; the readiness checks consult it.
    pub draining: Draining,
    /// The first signal: starts the sequence.
    pub signal: S,
    /// A second signal: cuts the sequence short. It is first polled after `signal` resolved,
    /// so it must not count the signal that started the shutdown
    /// ([`sluice_runtime::ops::termination_signal`] does not).
    pub again: A,
}

/// Serves `app` on `listener` until the shutdown signal, then runs the shutdown sequence
/// described in the [module documentation](self).
///
/// Until then, the wait for a connection to finish its request is bounded by the limits
/// themselves: a request head has `--header-read-timeout`, a body `--body-read-timeout`, a
/// publish `--publish-timeout`.
pub async fn serve<S, A>(
    listener: TcpListener,
    app: Router,
    limits: &LimitArgs,
    metrics: IngestMetrics,
    shutdown: Shutdown<S, A>,
) -> Stopped
where
    S: Future<Output = ()>,
    A: Future<Output = ()>,
{
    let Shutdown {
        plan,
        draining,
        signal,
        again,
    } = shutdown;
    let app = CloseWhenDraining {
        inner: app,
        draining: draining.clone(),
    };
    let mut server = Acceptor {
        listener,
        app,
        http: limits.http1(),
        slots: Arc::new(Semaphore::new(limits.max_connections)),
        graceful: GracefulShutdown::new(),
        cut: watch::channel(false).0,
        metrics,
    };
    server.accept_until(signal).await;

    draining.start();
    tracing::info!(
        delay_ms = plan.shutdown_delay.as_millis() as u64,
        timeout_ms = plan.shutdown_timeout.as_millis() as u64,
        "shutting down: unready, still serving for the delay"
    );
    let mut again = std::pin::pin!(again);
    let mut forced = false;
    if !plan.shutdown_delay.is_zero() {
        let delay = tokio::time::sleep(plan.shutdown_delay);
        server
            .accept_until(async {
                tokio::select! {
                    () = delay => {}
                    () = &mut again => forced = true,
                }
            })
            .await;
    }
    let Acceptor {
        listener,
        graceful,
        cut,
        ..
    } = server;
    drop(listener);
    let drained = if forced {
        false
    } else {
        tracing::info!(
            open_connections = graceful.count(),
            "stopped accepting connections; finishing requests in flight"
        );
        tokio::select! {
            result = tokio::time::timeout(plan.shutdown_timeout, graceful.shutdown()) => result.is_ok(),
            () = &mut again => false,
        }
    };
    if drained {
        tracing::info!("every request in flight finished");
        return Stopped::Drained;
    }
    tracing::warn!(
        timeout_ms = plan.shutdown_timeout.as_millis() as u64,
        "shutdown cut short (deadline or second signal): dropping the connections still open"
    );
    // Each connection task drops its connection, closing the socket, as soon as it sees this.
    let _ = cut.send(true);
    Stopped::CutOff
}

/// The accept loop's state, kept across the phases of a shutdown.
struct Acceptor {
    listener: TcpListener,
    app: CloseWhenDraining<Router>,
    http: hyper::server::conn::http1::Builder,
    slots: Arc<Semaphore>,
    graceful: GracefulShutdown,
    /// Set to `true` to drop every connection at once.
    cut: watch::Sender<bool>,
    metrics: IngestMetrics,
}

impl Acceptor {
    /// Accepts and serves connections until `stop` resolves.
    async fn accept_until(&mut self, stop: impl Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        loop {
            // A permit before `accept`: at the cap, new connections stay in the kernel's
            // backlog and cost this process nothing until a slot frees.
            let permit = tokio::select! {
                permit = self.slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return, // never closed
                },
                () = &mut stop => return,
            };
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        if !is_per_connection(&error) {
                            tracing::warn!(%error, "failed to accept a connection");
                            tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                        }
                        continue;
                    }
                },
                () = &mut stop => return,
            };
            // Answers are small and written whole: do not wait for Nagle.
            let _ = stream.set_nodelay(true);
            // Each request knows the connection's peer, which the log names as its source.
            let app = self
                .app
                .clone()
                .map_request(move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                });
            let connection = self.graceful.watch(
                self.http
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app)),
            );
            let open = self.metrics.connection();
            let mut cut = self.cut.subscribe();
            tokio::spawn(async move {
                tokio::select! {
                    result = connection => if let Err(error) = result {
                        // Header timeouts, oversize heads and resets are the client's doing.
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    },
                    // Dropping the connection closes its socket; its request is abandoned
                    // before any answer was written.
                    _ = cut.wait_for(|cut| *cut) => {
                        tracing::debug!(%peer, "connection cut off by shutdown");
                    }
                }
                drop((open, permit));
            });
        }
    }
}

/// While draining, asks each client to close its connection after the answer, so that its
/// next request opens a new connection, which the load balancer sends elsewhere.
#[derive(Clone)]
struct CloseWhenDraining<S> {
    inner: S,
    draining: Draining,
}

impl<S, R> Service<R> for CloseWhenDraining<S>
where
    S: Service<R, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = CloseWhenDrainingFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        CloseWhenDrainingFuture {
            inner: self.inner.call(request),
            draining: self.draining.clone(),
        }
    }
}

pin_project! {
    struct CloseWhenDrainingFuture<F> {
        #[pin]
        inner: F,
        draining: Draining,
    }
}

impl<F, E> Future for CloseWhenDrainingFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        // Checked when the answer is ready: a drain that started meanwhile counts.
        if this.draining.is_draining() {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        Poll::Ready(Ok(response))
    }
}

/// Errors that concern only the connection being accepted; the listener is fine.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::routing::post;
    use prometheus_client::registry::Registry;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::{Notify, oneshot};

    use super::*;

    /// `/slow` answers after `delay`; the request is in flight meanwhile. `started` is
    /// notified when the handler runs.
    fn app(delay: Duration, started: Arc<Notify>) -> Router {
        Router::new().route(
            "/slow",
            post(move || async move {
                started.notify_one();
                tokio::time::sleep(delay).await;
                "done"
            }),
        )
    }

    /// Starts `serve` with `plan`; returns its address, the trigger of the first signal, and
    /// the server task.
    async fn start(
        app: Router,
        plan: ShutdownArgs,
        draining: Draining,
    ) -> (
        String,
        oneshot::Sender<()>,
        tokio::task::JoinHandle<Stopped>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (signal, signalled) = oneshot::channel::<()>();
        let metrics = IngestMetrics::register(&mut Registry::default());
        let server = tokio::spawn(async move {
            let shutdown = Shutdown {
                plan,
                draining,
                signal: async {
                    let _ = signalled.await;
                },
                again: std::future::pending(),
            };
            serve(listener, app, &LimitArgs::default(), metrics, shutdown).await
        });
        (addr, signal, server)
    }

    /// Sends a request to `/slow` and returns the connection, to read the answer later.
    async fn send(addr: &str) -> TcpStream {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap();
        stream
    }

    async fn answer(mut stream: TcpStream) -> String {
        let mut raw = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw)).await;
        String::from_utf8_lossy(&raw).into_owned()
    }

    #[tokio::test]
    async fn requests_in_flight_finish_and_new_connections_are_refused() {
        let plan = ShutdownArgs {
            shutdown_delay: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(5),
        };
        let draining = Draining::new();
        let started = Arc::new(Notify::new());
        let app = app(Duration::from_millis(300), started.clone());
        let (addr, signal, server) = start(app, plan, draining.clone()).await;
        let in_flight = send(&addr).await;
        started.notified().await;
        signal.send(()).unwrap();
        let answer = answer(in_flight).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
        assert!(answer.ends_with("done"), "{answer}");
        assert_eq!(server.await.unwrap(), Stopped::Drained);
        assert!(draining.is_draining());
        assert!(TcpStream::connect(&addr).await.is_err());
    }

    #[tokio::test]
    async fn requests_still_running_at_the_deadline_are_cut_off_without_an_answer() {
        let plan = ShutdownArgs {
            shutdown_delay: Duration::ZERO,
            shutdown_timeout: Duration::from_millis(200),
        };
        let started = Arc::new(Notify::new());
        let app = app(Duration::from_secs(3600), started.clone());
        let (addr, signal, server) = start(app, plan, Draining::new()).await;
        let stuck = send(&addr).await;
        started.notified().await;
        let signalled = Instant::now();
        signal.send(()).unwrap();
        assert_eq!(server.await.unwrap(), Stopped::CutOff);
        assert!(signalled.elapsed() < Duration::from_secs(2));
        let answer = answer(stuck).await;
        assert_eq!(answer, "", "a cut-off request gets no answer");
    }
}
