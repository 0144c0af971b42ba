//! One pull request as a loop reads it, common or a tenant's own: the messages delivered
//! and not yet started, kept in progress while they wait, and the start of each.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;

use async_nats::jetstream::Message;
use async_nats::jetstream::consumer::pull::Batch;
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::delivery::{InProgress, Received, handle};
use super::{ConsumeSettings, Shared};

pub(super) struct Pull {
    batch: Batch,
    /// Delivered, waiting to be started.
    waiting: VecDeque<Message>,
    /// Progress reports for the waiting ones.
    held: InProgress,
    ended: bool,
    /// Why the pull ended early, when it did.
    pub failed: Option<String>,
}

impl Pull {
    pub fn new(batch: Batch, settings: &ConsumeSettings) -> Self {
        Self {
            batch,
            waiting: VecDeque::new(),
            held: InProgress::new(settings),
            ended: false,
            failed: None,
        }
    }

    /// The next message: the oldest waiting, else the next delivered; `None` once the pull
    /// has ended, or when `stoppable` and shutdown comes first.
    pub async fn next(
        &mut self,
        shutdown: &mut watch::Receiver<bool>,
        stoppable: bool,
    ) -> Option<Message> {
        if let Some(message) = self.waiting.pop_front() {
            return Some(message);
        }
        if self.ended {
            return None;
        }
        let next = tokio::select! {
            next = self.batch.next() => next,
            _ = shutdown.wait_for(|stop| *stop), if stoppable => None,
        };
        let message = self.read(next);
        if message.is_none() {
            self.ended = true;
        }
        message
    }

    /// Waits for `acquire`, reading the rest of the pull meanwhile: async-nats ends a pull
    /// that is not read from 5 s past its expiry and drops what it had buffered, which
    /// JetStream would only hand out again after the ack wait. What is read waits, kept in
    /// progress.
    pub async fn while_reading<T>(&mut self, acquire: impl Future<Output = T>) -> T {
        tokio::pin!(acquire);
        loop {
            tokio::select! {
                done = &mut acquire => return done,
                () = tokio::time::sleep(self.held.due_in()), if !self.waiting.is_empty() => {
                    self.held.report_all(&self.waiting).await;
                }
                next = self.batch.next(), if !self.ended => match self.read(next) {
                    Some(message) => self.waiting.push_back(message),
                    None => self.ended = true,
                },
            }
        }
    }

    fn read(&mut self, next: Option<Result<Message, async_nats::Error>>) -> Option<Message> {
        match next? {
            Ok(message) => Some(message),
            Err(error) => {
                self.failed = Some(error.to_string());
                None
            }
        }
    }
}

/// Runs one event on a task of `tasks`; `hold` (its slot and its place under the tenant's
/// cap) is given back when it is done.
pub(super) fn start(
    tasks: &mut JoinSet<()>,
    shared: &Arc<Shared>,
    delivered: Received,
    progress: InProgress,
    hold: impl Send + 'static,
) {
    // A finished task keeps its allocation until it is joined: join them as they finish,
    // or a backlog would be held until its pull ends.
    while tasks.try_join_next().is_some() {}
    let shared = shared.clone();
    tasks.spawn(async move {
        handle(
            &shared.dispatcher,
            &shared.settings,
            delivered,
            progress,
            shared.abort.clone(),
        )
        .await;
        drop(hold);
    });
}
