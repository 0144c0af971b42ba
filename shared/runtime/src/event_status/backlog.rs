//! Events stored and not yet done: what the events stream holds past the ack floor of the
//! consumer that owes it (the common consumer, or a diverted tenant's own from where it
//! starts) that no record tells of yet.
//!
//! The dispatcher records an event once it has run it, so an event waiting behind a deep
//! backlog (or a tenant's rate limit) has no record. Rather than have ingest write one for
//! every event it stores, a query that finds no record reads the tenant's backlog itself:
//! the consumers' info says where the ack floors are and whether anything is outstanding
//! (usually not, and the query ends there), then the events past the floor are read once,
//! bounded. An event past the floor that has a record was done out of order and is not
//! waiting; one without is waiting, or being run at that moment.

use std::collections::{HashMap, HashSet};
use std::ops::{ControlFlow, Range};

use async_nats::jetstream::consumer::{self, DeliverPolicy};
use async_nats::jetstream::context::ConsumerInfoErrorKind;
use futures_util::StreamExt;

use super::read::{SCAN_BOUND, stream_not_found};
use super::{EventRecord, EventStatus, ReadError, StatusReader};
use crate::envelope::{Envelope, EventMeta};
use crate::jetstream::{EVENTS_STREAM, consumer_released_at, consumer_start};
use crate::subject::{EVENTS_WILDCARD, event_subject, namespace_filter, tenant_consumer};

/// Where the events to look at are.
pub(super) struct Scope<'a> {
    /// Every namespace a dispatcher consumes when `None`.
    pub namespace: Option<&'a str>,
    /// Every listener of the namespace when `None`.
    pub listener: Option<&'a str>,
}

impl StatusReader {
    /// Up to `max` events in `scope` stored past the ack floor of the consumer that owes
    /// them, without
    /// a record (`recorded` holds the event ids that have one), that `wanted` accepts, in
    /// stream order, each trigger `pending` with how many of its namespace's events are
    /// still ahead of it.
    pub(super) async fn waiting(
        &self,
        scope: Scope<'_>,
        recorded: &HashSet<String>,
        max: usize,
        wanted: impl Fn(&EventMeta) -> bool,
    ) -> Result<Vec<EventStatus>, ReadError> {
        let floors = self.floors(scope.namespace).await?;
        let Some(lowest) = floors.lowest() else {
            return Ok(Vec::new());
        };
        let filter = match (scope.namespace, scope.listener) {
            (Some(namespace), Some(listener)) => event_subject(namespace, listener),
            (Some(namespace), None) => namespace_filter(namespace),
            (None, _) => EVENTS_WILDCARD.to_owned(),
        };
        let start = DeliverPolicy::ByStartSequence {
            start_sequence: lowest + 1,
        };
        let mut ahead: HashMap<String, u64> = HashMap::new();
        let mut found = Vec::new();
        self.scan(EVENTS_STREAM, &filter, start, SCAN_BOUND, |message| {
            let Ok(info) = message.info() else {
                return ControlFlow::Continue(());
            };
            let sequence = info.stream_sequence;
            let Ok(envelope) = Envelope::decode(message.payload.clone()) else {
                return ControlFlow::Continue(());
            };
            let meta = &envelope.meta;
            let waiting =
                floors.owed(&meta.namespace, sequence) && !recorded.contains(&meta.event_id);
            if !waiting {
                return ControlFlow::Continue(());
            }
            let earlier = ahead.entry(meta.namespace.clone()).or_default();
            if wanted(meta) {
                found.push(waiting_status(meta, sequence, *earlier));
            }
            *earlier += 1;
            if found.len() >= max {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .await?;
        Ok(found)
    }

    /// The ack floors of the common consumer and of the diverted tenants' own (of
    /// `namespace`'s only, when given).
    async fn floors(&self, namespace: Option<&str>) -> Result<Floors, ReadError> {
        let mut floors = Floors::default();
        let stream = match self.js.get_stream(EVENTS_STREAM).await {
            Ok(stream) => stream,
            Err(error) if stream_not_found(&error) => return Ok(floors),
            Err(error) => return Err(ReadError::from(error)),
        };
        floors.common = match stream.consumer_info(&self.consumer).await {
            Ok(info) => outstanding(&info),
            // No dispatcher consumed yet: every stored event waits.
            Err(error) if error.kind() == ConsumerInfoErrorKind::NotFound => Some(0),
            Err(error) => return Err(ReadError::from(error)),
        };
        if let Some(namespace) = namespace {
            match stream
                .consumer_info(tenant_consumer(&self.consumer, namespace))
                .await
            {
                Ok(info) => floors.own(namespace, &info),
                Err(error) => match error.kind() {
                    ConsumerInfoErrorKind::NotFound | ConsumerInfoErrorKind::InvalidName => {}
                    _ => return Err(ReadError::from(error)),
                },
            }
            return Ok(floors);
        }
        let prefix = tenant_consumer(&self.consumer, "");
        let mut consumers = stream.consumers();
        while let Some(info) = consumers.next().await {
            let info = info.map_err(ReadError::from)?;
            if let Some(namespace) = info.name.strip_prefix(&prefix) {
                floors.own(namespace, &info);
            }
        }
        Ok(floors)
    }
}

/// Which consumer owes an event, and how far each has acknowledged.
#[derive(Debug, Default)]
struct Floors {
    /// The common consumer's ack floor, when anything is outstanding on it.
    common: Option<u64>,
    /// Diverted tenants: the sequences their own consumer owes, and its ack floor when
    /// anything is outstanding on it.
    own: HashMap<String, (Range<u64>, Option<u64>)>,
}

impl Floors {
    fn own(&mut self, namespace: &str, info: &consumer::Info) {
        let start = consumer_start(&info.config);
        let end = consumer_released_at(&info.config).unwrap_or(u64::MAX);
        // Nothing before its start is its to acknowledge.
        let floor = outstanding(info).map(|floor| floor.max(start.saturating_sub(1)));
        self.own.insert(namespace.to_owned(), (start..end, floor));
    }

    /// Whether the event at `sequence` of `namespace` is past the floor of the consumer
    /// that owes it.
    fn owed(&self, namespace: &str, sequence: u64) -> bool {
        let floor = match self.own.get(namespace) {
            Some((owes, floor)) if owes.contains(&sequence) => *floor,
            _ => self.common,
        };
        floor.is_some_and(|floor| sequence > floor)
    }

    /// Where reading must start.
    fn lowest(&self) -> Option<u64> {
        let own = self.own.values().filter_map(|(_, floor)| *floor);
        self.common.into_iter().chain(own).min()
    }
}

/// The consumer's ack floor, if it has anything outstanding.
fn outstanding(info: &consumer::Info) -> Option<u64> {
    (info.num_pending > 0 || info.num_ack_pending > 0).then_some(info.ack_floor.stream_sequence)
}

fn waiting_status(meta: &EventMeta, sequence: u64, ahead: u64) -> EventStatus {
    let mut status = EventStatus::new(EventRecord::of(meta, sequence), Vec::new());
    let reason = format!(
        "stored, waiting for a dispatcher (or being run now); {ahead} earlier events of \
         namespace {} not done yet",
        meta.namespace
    );
    for trigger in &mut status.triggers {
        trigger.reason = Some(reason.clone());
    }
    status
}
