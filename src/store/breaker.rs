//! One circuit breaker per store. After `MERIDIAN_BREAKER_FAILURES` consecutive failed
//! calls a store's breaker opens: calls fail at once with STORE_UNAVAILABLE instead of
//! each waiting for the store timeout, and a background probe pings the store every
//! `MERIDIAN_BREAKER_COOLDOWN_MS` until it answers, which closes the breaker.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc,
    },
    time::Duration,
};

use super::StoreKind;

#[derive(Default)]
struct Breaker {
    failures: AtomicU32,
    open: AtomicBool,
}

/// The breakers of the four stores.
#[derive(Clone)]
pub struct Breakers {
    slots: Arc<[Breaker; 4]>,
    threshold: u32,
    pub cooldown: Duration,
}

/// What recording an outcome did.
#[derive(Debug, PartialEq, Eq)]
pub enum Transition {
    None,
    /// This failure opened the breaker: start probing.
    Opened,
}

impl Breakers {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Breakers {
            slots: Arc::new(Default::default()),
            threshold,
            cooldown,
        }
    }

    fn slot(&self, store: StoreKind) -> &Breaker {
        &self.slots[store as usize]
    }

    /// Whether calls to `store` are refused right now.
    pub fn is_open(&self, store: StoreKind) -> bool {
        self.slot(store).open.load(Ordering::Acquire)
    }

    /// Counts one call's outcome.
    pub fn record(&self, store: StoreKind, ok: bool) -> Transition {
        let slot = self.slot(store);
        if ok {
            slot.failures.store(0, Ordering::Release);
            return Transition::None;
        }
        let failures = slot.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if self.threshold > 0
            && failures >= self.threshold
            && !slot.open.swap(true, Ordering::AcqRel)
        {
            tracing::warn!(%store, failures, "circuit breaker opened");
            return Transition::Opened;
        }
        Transition::None
    }

    /// Closes the breaker after a successful probe.
    pub fn close(&self, store: StoreKind) {
        let slot = self.slot(store);
        slot.failures.store(0, Ordering::Release);
        if slot.open.swap(false, Ordering::AcqRel) {
            tracing::info!(%store, "circuit breaker closed: the store answers again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = Breakers::new(3, Duration::from_millis(10));
        let s = StoreKind::Redis;
        assert_eq!(b.record(s, false), Transition::None);
        assert_eq!(b.record(s, false), Transition::None);
        assert_eq!(b.record(s, true), Transition::None);
        assert_eq!(b.record(s, false), Transition::None);
        assert_eq!(b.record(s, false), Transition::None);
        assert!(!b.is_open(s));
        assert_eq!(b.record(s, false), Transition::Opened);
        assert!(b.is_open(s));
        assert!(!b.is_open(StoreKind::Postgres));
        assert_eq!(b.record(s, false), Transition::None, "opens once");
        b.close(s);
        assert!(!b.is_open(s));
    }
}
