//! A paused tenant (`paused: true` in the tenants file): its loop pulls nothing, so its
//! events stay in the stream, neither delivered nor acknowledged, and count in its backlog;
//! none is redelivered, handed back or dead-lettered meanwhile. Once a reload lifts the
//! pause, the loop pulls again and they run in order. Events delivered before the pause was
//! seen (the tenant's current pull) still run.

use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use tokio::sync::watch;
use tokio::time::Instant;

use super::Shared;
use super::tenant::report_backlog;

/// How often a paused tenant's loop looks at the policy again.
const RECHECK: Duration = Duration::from_millis(250);
/// How often a paused tenant's backlog is asked of JetStream: it grows while nothing is
/// delivered, so no delivered event reports it.
const BACKLOG_EVERY: Duration = Duration::from_secs(2);

/// Whether the tenant is paused, as its loop last saw it, so that each change is logged and
/// shown once.
#[derive(Debug, Default)]
pub(super) struct Pause {
    paused: Option<bool>,
}

impl Pause {
    /// Whether the policy pauses the tenant now. A change (and the first look) sets the
    /// tenant's `sluice_dispatch_tenant_paused` gauge; a pause or a resume is logged.
    pub fn check(&mut self, shared: &Shared, namespace: &str) -> bool {
        let paused = shared.dispatcher.is_paused(namespace);
        let before = self.paused.replace(paused);
        if before != Some(paused) {
            shared.dispatcher.metrics().paused(namespace, paused);
            if paused {
                tracing::info!(
                    %namespace,
                    "tenant paused: its events wait in the stream until it is resumed"
                );
            } else if before.is_some() {
                tracing::info!(%namespace, "tenant resumed: dispatching its events again");
            }
        }
        paused
    }
}

/// Waits, pulling nothing, until the tenant is resumed or the replica shuts down; reports
/// the tenant's backlog meanwhile.
pub(super) async fn wait_while_paused(
    shared: &Shared,
    namespace: &str,
    pause: &mut Pause,
    consumer: &mut PullConsumer,
    backlog: &mut Option<u64>,
    shutdown: &mut watch::Receiver<bool>,
) {
    let mut next_backlog = Instant::now();
    while pause.check(shared, namespace) {
        if Instant::now() >= next_backlog {
            match consumer.info().await {
                Ok(info) => report_backlog(shared, namespace, backlog, info.num_pending),
                Err(error) => {
                    tracing::debug!(%namespace, %error, "cannot read the paused tenant's backlog");
                }
            }
            next_backlog = Instant::now() + BACKLOG_EVERY;
        }
        tokio::select! {
            () = tokio::time::sleep(RECHECK) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}
