//! What every binary's metrics share: the registry with the `process_*` metrics
//! ([`process`]), label values spelled in `snake_case` ([`label_values!`]), and the
//! configured listeners to start each listener's counters at zero ([`follow_listeners`]).

pub mod process;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use prometheus_client::registry::Registry;
use sluice_triggers::catalogue::Catalogue;

/// Implements `EncodeLabelValue` for a fieldless enum with an explicit spelling per variant:
///
/// ```ignore
/// sluice_runtime::label_values!(Outcome { Accepted => "accepted", NotFound => "not_found" });
/// ```
#[macro_export]
macro_rules! label_values {
    ($ty:ty { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl prometheus_client::encoding::EncodeLabelValue for $ty {
            fn encode(
                &self,
                encoder: &mut prometheus_client::encoding::LabelValueEncoder<'_>,
            ) -> ::std::fmt::Result {
                ::std::fmt::Write::write_str(encoder, match self { $(Self::$variant => $text),+ })
            }
        }
    };
}

/// A registry holding the `process_*` metrics and the count of trace spans dropped
/// ([`crate::telemetry::export`]): what each binary registers its own in.
pub fn registry() -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(process::ProcessCollector));
    crate::telemetry::export::register(&mut registry);
    registry
}

/// A configured listener: namespace and name.
pub type ListenerKey = (String, String);

/// Calls `changed` with the configured listeners (all of them added, at first), and again
/// with those added and removed whenever the catalogue swapped in changes them (checked every
/// `every`), until the process ends. So each listener's counters can start at zero, for a
/// rate or an `increase()` to see its first event, and a deleted listener's series go away.
pub fn follow_listeners(
    catalogue: Arc<ArcSwap<Catalogue>>,
    every: Duration,
    mut changed: impl FnMut(&[ListenerKey], &[ListenerKey]) + Send + 'static,
) {
    let listeners = |catalogue: &Catalogue| -> BTreeSet<ListenerKey> {
        catalogue
            .listeners()
            .map(|l| (l.namespace.clone(), l.name.clone()))
            .collect()
    };
    let mut seen = catalogue.load_full();
    let mut current = listeners(&seen);
    changed(&current.iter().cloned().collect::<Vec<_>>(), &[]);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = catalogue.load_full();
            if Arc::ptr_eq(&now, &seen) {
                continue;
            }
            seen = now;
            let next = listeners(&seen);
            let added: Vec<ListenerKey> = next.difference(&current).cloned().collect();
            let removed: Vec<ListenerKey> = current.difference(&next).cloned().collect();
            if !added.is_empty() || !removed.is_empty() {
                changed(&added, &removed);
            }
            current = next;
        }
    });
}
