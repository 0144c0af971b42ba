//! One delivered message, from its decoding to its acknowledgement: decoded once when it
//! arrives, kept in progress while it waits and while it runs (so that JetStream does not
//! hand it to another replica before `--ack-wait` passes without news), then acked, handed
//! back with a delay, or handed back at once when the replica stops.

use std::time::{Duration, Instant};

use async_nats::jetstream::{AckKind, Message};
use sluice_runtime::envelope::{DecodeError, Envelope};
use tokio::sync::watch;
use tracing::Instrument;

use super::ConsumeSettings;
use crate::dispatch::{Delivery, Dispatcher, Disposition};

/// A message as pulled: its event decoded once, for the throttle and the dispatch alike.
pub(super) struct Received {
    pub message: Message,
    pub event: Result<Envelope, DecodeError>,
    /// 1 for the first delivery.
    pub attempt: u64,
}

impl Received {
    pub fn new(message: Message) -> Self {
        let attempt = message
            .info()
            .map_or(1, |info| info.delivered.max(1) as u64);
        let event = Envelope::decode(message.payload.clone());
        Self {
            message,
            event,
            attempt,
        }
    }
}

/// Tells JetStream a message is still being worked on, at most every `every`, so that its
/// ack timer never runs out while the replica holds it.
pub(super) struct InProgress {
    every: Duration,
    last: Instant,
}

impl InProgress {
    pub fn new(settings: &ConsumeSettings) -> Self {
        Self {
            every: settings.progress_interval(),
            last: Instant::now(),
        }
    }

    /// How long until the next progress report is due.
    pub fn due_in(&self) -> Duration {
        self.every.saturating_sub(self.last.elapsed())
    }

    /// Reports progress for every one of `messages` if it is due.
    pub async fn report_all(&mut self, messages: impl IntoIterator<Item = &Message>) {
        if self.last.elapsed() >= self.every {
            self.last = Instant::now();
            for message in messages {
                ack(message, AckKind::Progress).await;
            }
        }
    }

    /// Reports progress if it is due.
    pub async fn report(&mut self, message: &Message) {
        if self.last.elapsed() >= self.every {
            self.last = Instant::now();
            ack(message, AckKind::Progress).await;
        }
    }
}

/// Runs one delivered event and acknowledges it as its disposition says; keeps it in
/// progress meanwhile.
pub(super) async fn handle(
    dispatcher: &Dispatcher,
    settings: &ConsumeSettings,
    received: Received,
    mut progress: InProgress,
    mut abort: watch::Receiver<bool>,
) {
    let Received {
        message,
        event,
        attempt,
    } = received;
    let last = attempt >= settings.max_deliver.max(1) as u64;
    let span = crate::trace::delivery(
        &message.subject,
        message.headers.as_ref(),
        event.as_ref().ok(),
        attempt,
    );
    let work = async {
        match &event {
            Ok(envelope) => {
                let delivery = Delivery {
                    envelope,
                    raw: &message.payload,
                    attempt,
                    last,
                    sequence: message.info().map_or(0, |info| info.stream_sequence),
                };
                dispatcher.dispatch(delivery).await
            }
            Err(error) => {
                tracing::error!(%error, subject = %message.subject, "stored message cannot be decoded");
                dispatcher
                    .dead_letter_undecodable(&message.subject, &message.payload, attempt, error)
                    .await
            }
        }
    }
    .instrument(span.clone());
    tokio::pin!(work);
    let kind = loop {
        let next = tokio::select! {
            disposition = &mut work => Next::Settled(disposition),
            // Interceptor calls and creates may outlast the ack wait: say so in time, or
            // JetStream hands the event to another replica while this one still runs it.
            () = tokio::time::sleep(progress.due_in()) => Next::Progress,
            // Shutting down past the deadline: hand the event back for another replica now
            // rather than after ack-wait. Objects already created are found by name next time.
            _ = abort.wait_for(|abort| *abort) => Next::Abort,
        };
        if let Next::Settled(disposition) = &next {
            crate::trace::settled(&span, Some(disposition));
        }
        match next {
            Next::Settled(Disposition::Done) => break AckKind::Ack,
            Next::Settled(Disposition::Retry { min_delay }) => {
                let delay = settings
                    .retry
                    .delay(u32::try_from(attempt).unwrap_or(u32::MAX))
                    .max(min_delay.unwrap_or_default());
                break AckKind::Nak(Some(delay));
            }
            Next::Progress => progress.report(&message).await,
            Next::Abort => {
                crate::trace::settled(&span, None);
                break AckKind::Nak(None);
            }
        }
    };
    ack(&message, kind).await;
}

/// What woke a running event's watch.
enum Next {
    Settled(Disposition),
    Progress,
    Abort,
}

pub(super) async fn ack(message: &Message, kind: AckKind) {
    if let Err(error) = message.ack_with(kind).await {
        // The event stays pending and JetStream redelivers it after ack-wait.
        tracing::warn!(%error, "ack failed");
    }
}
