//! One circuit breaker per store. After `MERIDIAN_BREAKER_FAILURES` consecutive outages
//! (timeouts, connection failures: see `Error::is_store_outage`; a store that answers "no"
//! is up) a store's breaker opens: calls fail at once with STORE_UNAVAILABLE instead of
//! each waiting for the store timeout. Once `MERIDIAN_BREAKER_COOLDOWN_MS` has passed, the
//! breaker is half-open: the next call goes through as a trial, alone (the others are
//! still refused). Its success closes the breaker; its failure opens it for another
//! cooldown. A background probe also pings the store every cooldown, so that a store with
//! no traffic is seen back as well.

use std::{
    sync::{
        atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use super::StoreKind;

const CLOSED: u8 = 0;
const OPEN: u8 = 1;

#[derive(Default)]
struct Breaker {
    failures: AtomicU32,
    state: AtomicU8,
    /// When the breaker last opened or let a trial through, in ns since `Breakers::epoch`.
    since: AtomicU64,
}

/// The breakers of the four stores.
#[derive(Clone)]
pub struct Breakers {
    slots: Arc<[Breaker; 5]>,
    threshold: u32,
    pub cooldown: Duration,
    epoch: Instant,
}

/// Whether a call may go to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The breaker is closed.
    Closed,
    /// The breaker is half-open and this call is its trial.
    Trial,
    /// The breaker is open: fail at once.
    Refused,
}

/// What recording an outcome did.
#[derive(Debug, PartialEq, Eq)]
pub enum Transition {
    None,
    /// This failure opened the breaker: start probing.
    Opened,
    /// A trial failed: open for another cooldown.
    Reopened,
    /// A trial succeeded: closed.
    Closed,
}

impl Breakers {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Breakers {
            slots: Arc::new(Default::default()),
            threshold,
            cooldown,
            epoch: Instant::now(),
        }
    }

    fn slot(&self, store: StoreKind) -> &Breaker {
        &self.slots[store as usize]
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether calls to `store` are refused right now (the breaker is open or half-open).
    pub fn is_open(&self, store: StoreKind) -> bool {
        self.slot(store).state.load(Ordering::Acquire) != CLOSED
    }

    /// Whether a call to `store` may go now.
    pub fn admit(&self, store: StoreKind) -> Admission {
        self.admit_at(store, Instant::now())
    }

    fn admit_at(&self, store: StoreKind, now: Instant) -> Admission {
        let slot = self.slot(store);
        if slot.state.load(Ordering::Acquire) == CLOSED {
            return Admission::Closed;
        }
        let since = slot.since.load(Ordering::Acquire);
        let now = self.nanos(now);
        let cooldown = u64::try_from(self.cooldown.as_nanos()).unwrap_or(u64::MAX);
        let cooled = now.saturating_sub(since) >= cooldown;
        // One caller wins the trial; a trial that never reports back (its request was
        // dropped) is replaced by another after one more cooldown.
        if cooled
            && slot
                .since
                .compare_exchange(since, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            return Admission::Trial;
        }
        Admission::Refused
    }

    /// Counts one call's outcome (`trial`: the call was admitted as the trial).
    pub fn record(&self, store: StoreKind, ok: bool, trial: bool) -> Transition {
        self.record_at(store, ok, trial, Instant::now())
    }

    fn record_at(&self, store: StoreKind, ok: bool, trial: bool, now: Instant) -> Transition {
        let slot = self.slot(store);
        if ok {
            slot.failures.store(0, Ordering::Release);
            if trial && slot.state.swap(CLOSED, Ordering::AcqRel) != CLOSED {
                tracing::info!(%store, "circuit breaker closed: a trial call succeeded");
                return Transition::Closed;
            }
            return Transition::None;
        }
        if trial {
            slot.since.store(self.nanos(now), Ordering::Release);
            tracing::warn!(%store, "circuit breaker trial failed; open for another cooldown");
            return Transition::Reopened;
        }
        let failures = slot.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if self.threshold > 0
            && failures >= self.threshold
            && slot
                .state
                .compare_exchange(CLOSED, OPEN, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            slot.since.store(self.nanos(now), Ordering::Release);
            tracing::warn!(%store, failures, "circuit breaker opened");
            return Transition::Opened;
        }
        Transition::None
    }

    /// Closes the breaker after a successful probe.
    pub fn close(&self, store: StoreKind) {
        let slot = self.slot(store);
        slot.failures.store(0, Ordering::Release);
        if slot.state.swap(CLOSED, Ordering::AcqRel) != CLOSED {
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
        assert_eq!(b.record(s, false, false), Transition::None);
        assert_eq!(b.record(s, false, false), Transition::None);
        assert_eq!(b.record(s, true, false), Transition::None);
        assert_eq!(b.record(s, false, false), Transition::None);
        assert_eq!(b.record(s, false, false), Transition::None);
        assert!(!b.is_open(s));
        assert_eq!(b.record(s, false, false), Transition::Opened);
        assert!(b.is_open(s));
        assert!(!b.is_open(StoreKind::Postgres));
        assert_eq!(b.record(s, false, false), Transition::None, "opens once");
        b.close(s);
        assert!(!b.is_open(s));
        assert_eq!(b.admit(s), Admission::Closed);
    }

    /// The clock is passed in: no test here waits for a cooldown.
    #[test]
    fn after_the_cooldown_one_trial_goes_through_and_decides() {
        let cooldown = Duration::from_secs(1);
        let b = Breakers::new(1, cooldown);
        let s = StoreKind::ClickHouse;
        let t0 = b.epoch + Duration::from_secs(5);
        assert_eq!(b.record_at(s, false, false, t0), Transition::Opened);
        assert_eq!(b.admit_at(s, t0), Admission::Refused);
        assert_eq!(b.admit_at(s, t0 + cooldown / 2), Admission::Refused);
        // After the cooldown: one trial, the others still refused.
        let t1 = t0 + cooldown;
        assert_eq!(b.admit_at(s, t1), Admission::Trial);
        assert_eq!(b.admit_at(s, t1), Admission::Refused);
        // The trial fails: open for another cooldown from then.
        assert_eq!(b.record_at(s, false, true, t1), Transition::Reopened);
        assert_eq!(b.admit_at(s, t1 + cooldown / 2), Admission::Refused);
        let t2 = t1 + cooldown;
        assert_eq!(b.admit_at(s, t2), Admission::Trial);
        // A trial that never reports is replaced after one more cooldown.
        let t3 = t2 + cooldown;
        assert_eq!(b.admit_at(s, t3), Admission::Trial);
        // The trial succeeds: closed, every call goes.
        assert_eq!(b.record_at(s, true, true, t3), Transition::Closed);
        assert_eq!(b.admit_at(s, t3), Admission::Closed);
        assert!(!b.is_open(s));
    }
}
