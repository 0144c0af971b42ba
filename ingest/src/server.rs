//! The webhook server's accept loop: HTTP/1 connections served by hyper with the
//! connection-level limits of [`crate::limits`] (which `axum::serve` cannot set), a cap on
//! open connections, and graceful shutdown.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::limits::LimitArgs;
use crate::metrics::IngestMetrics;

/// Pause after an accept error that is not about one connection (e.g. out of file
/// descriptors), so the loop does not spin while the cause persists.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and waits for
/// the open connections to finish their current request. That wait is bounded by the
/// limits themselves: idle connections close at once, a request head has
/// `--header-read-timeout`, a body `--body-read-timeout`, a publish `--publish-timeout`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &LimitArgs,
    metrics: IngestMetrics,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let http = limits.http1();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A permit before `accept`: at the cap, new connections stay in the kernel's backlog
        // and cost this process nothing until a slot frees.
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // never closed
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if !is_per_connection(&error) {
                        tracing::warn!(%error, "failed to accept a connection");
                        tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers are small and written whole: do not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let connection = graceful.watch(
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone())),
        );
        let open = metrics.connection();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // Header timeouts, oversize heads and resets are the client's doing.
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop((open, permit));
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
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
