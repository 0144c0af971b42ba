//! A tenant's cap on events in flight in this replica (`maxConcurrentCreates`), read from
//! the policy at every start rather than fixed when the tenant's loop began: when a reload
//! lowers it, no event starts until those in flight are below the new cap, so at no moment do
//! more than the new cap run; when a reload raises it, waiting events start at once.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

/// How often a waiting start looks at the policy again, for a cap raised while nothing
/// finished.
const RECHECK: Duration = Duration::from_millis(250);

/// Events in flight for one tenant, and a way to wait for room.
#[derive(Debug, Default)]
pub(super) struct TenantCap {
    in_flight: Mutex<usize>,
    released: Notify,
}

/// One event's place under its tenant's cap, given back when dropped.
#[derive(Debug)]
pub(super) struct CapPermit(Arc<TenantCap>);

impl TenantCap {
    /// Waits until fewer events than the cap `current()` gives (read anew at every look;
    /// `None` is no cap) are in flight, and takes a place. Cancel-safe: dropped while
    /// waiting, it takes nothing.
    pub async fn acquire(self: &Arc<Self>, current: impl Fn() -> Option<u32>) -> CapPermit {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            // Registered before looking, so a release in between is not missed.
            released.as_mut().enable();
            if self.try_take(current()) {
                return CapPermit(self.clone());
            }
            tokio::select! {
                () = released => {}
                () = tokio::time::sleep(RECHECK) => {}
            }
        }
    }

    /// Takes a place if there is room now.
    pub fn try_acquire(self: &Arc<Self>, cap: Option<u32>) -> Option<CapPermit> {
        self.try_take(cap).then(|| CapPermit(self.clone()))
    }

    fn try_take(&self, cap: Option<u32>) -> bool {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let room = cap.is_none_or(|cap| *in_flight < cap.max(1) as usize);
        if room {
            *in_flight += 1;
        }
        room
    }

    /// The tenant's events in flight in this replica.
    pub fn in_flight(&self) -> usize {
        *self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for CapPermit {
    fn drop(&mut self) {
        let mut in_flight = self
            .0
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *in_flight = in_flight.saturating_sub(1);
        drop(in_flight);
        self.0.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// Whether a start would get a place now.
    async fn starts(cap: &Arc<TenantCap>, current: &Arc<AtomicU32>) -> Option<CapPermit> {
        let current = current.clone();
        let acquire = cap.acquire(move || Some(current.load(Ordering::SeqCst)));
        tokio::time::timeout(Duration::from_millis(50), acquire)
            .await
            .ok()
    }

    #[tokio::test]
    async fn a_lowered_cap_holds_from_the_moment_it_changes_and_a_raised_one_frees_at_once() {
        let cap = Arc::new(TenantCap::default());
        let policy = Arc::new(AtomicU32::new(4));
        let mut running = Vec::new();
        for _ in 0..4 {
            running.push(starts(&cap, &policy).await.expect("room for four"));
        }
        assert!(starts(&cap, &policy).await.is_none(), "a fifth waits");

        // The platform lowers the cap to 1 while four are in flight.
        policy.store(1, Ordering::SeqCst);
        for left in (1..=3).rev() {
            running.pop();
            assert_eq!(cap.in_flight(), left);
            assert!(
                starts(&cap, &policy).await.is_none(),
                "{left} still in flight: nothing starts under a cap of 1"
            );
        }
        running.pop();
        let only = starts(&cap, &policy).await.expect("the last one finished");
        assert!(starts(&cap, &policy).await.is_none(), "one at a time");

        // Raised to 3 while one runs: a waiting start goes ahead without any finishing.
        let waiting = {
            let cap = cap.clone();
            let policy = policy.clone();
            tokio::spawn(async move {
                cap.acquire(move || Some(policy.load(Ordering::SeqCst)))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        policy.store(3, Ordering::SeqCst);
        let second = tokio::time::timeout(Duration::from_secs(2), waiting)
            .await
            .expect("the raised cap is seen")
            .unwrap();
        let third = starts(&cap, &policy).await.expect("room for a third");
        assert!(starts(&cap, &policy).await.is_none());
        drop((only, second, third));
        assert_eq!(cap.in_flight(), 0);
    }

    #[tokio::test]
    async fn no_cap_lets_everything_start_and_a_cancelled_wait_takes_nothing() {
        let cap = Arc::new(TenantCap::default());
        let permits: Vec<_> =
            futures_util::future::join_all((0..100).map(|_| cap.acquire(|| None))).await;
        assert_eq!(cap.in_flight(), 100);
        drop(permits);
        let held = cap.acquire(|| Some(1)).await;
        let waiting =
            tokio::time::timeout(Duration::from_millis(30), cap.acquire(|| Some(1))).await;
        assert!(waiting.is_err());
        assert_eq!(cap.in_flight(), 1, "the cancelled wait took no place");
        drop(held);
    }
}
