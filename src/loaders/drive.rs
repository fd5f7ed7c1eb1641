//! Batching that follows the query's execution instead of a timer.
//!
//! A dataloader normally collects keys for a fixed delay after the first one, then runs
//! the batch on another task. How many keys arrive within that delay depends on how fast
//! the resolvers run, so the same query can take one round trip or three.
//!
//! Here a request's batches run on the request's own task, inside [`BatchQueue::drive`]
//! (or [`BatchQueue::drive_stream`] for a subscription). Over HTTP that task is spawned
//! for the operation alone (`http::graphql`), so a batch's I/O wakes re-poll the operation
//! and not the connection's HTTP stack. Each time the task is polled:
//!
//! 1. the running batches are polled first: a batch that finishes hands its results to
//!    every field waiting on it, all in that one poll;
//! 2. then the query, again and again until it stops waking itself: it is then waiting
//!    only on things outside it (a batch, or a store call), so every sibling field that
//!    needs a loader has registered its key;
//! 3. then the batches the query queued start, all together.
//!
//! Nothing else polls the query or the batches, so no batch can finish half-way through
//! a poll of the query, and no batch starts before the wave that feeds it is complete.
//! (One way to hide progress from step 2: tokio's `yield_now`, which hands its wake-up to
//! the scheduler for later. Nothing in the graph calls it; `futures`' combinators, which
//! yield to stay fair, wake themselves at once.) So each wave costs one round trip per
//! loader because of the order of these three steps, not because of a timing guess. [`Flights`] counts the batches that start while another
//! of the same loader is still running (a wave split in two) in
//! `meridian_batch_splits_total`.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    task::{Context, Poll},
};

use futures::{
    future::BoxFuture,
    stream::FuturesUnordered,
    task::{ArcWake, AtomicWaker},
    Stream, StreamExt,
};

/// The query's waker: records that the query has progress to make, and wakes the task.
struct QueryWaker {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl ArcWake for QueryWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.woken.store(true, Ordering::Release);
        arc_self.task.wake();
    }
}

/// The batch tasks of one request.
#[derive(Clone, Default)]
pub struct BatchQueue(Arc<Inner>);

#[derive(Default)]
struct Inner {
    /// Batches queued by the loaders, not started yet.
    queued: Mutex<Vec<BoxFuture<'static, ()>>>,
    /// Whether a driver runs this request's batches.
    driven: AtomicBool,
    flights: Flights,
}

impl BatchQueue {
    /// Queues a batch for the driver, or spawns it when no driver runs this request (so a
    /// load can never wait forever).
    pub fn spawn(&self, task: BoxFuture<'static, ()>) {
        // The batch's store calls belong to the operation that asked for them.
        let task = if crate::telemetry::exporting() {
            Box::pin(tracing::Instrument::in_current_span(task))
        } else {
            task
        };
        if self.0.driven.load(Ordering::Acquire) {
            if let Ok(mut queued) = self.0.queued.lock() {
                queued.push(task);
                return;
            }
        }
        tokio::spawn(task);
    }

    /// The loaders' in-flight batches, by loader.
    pub fn flights(&self) -> &Flights {
        &self.0.flights
    }

    fn take(&self) -> Vec<BoxFuture<'static, ()>> {
        self.0
            .queued
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default()
    }

    /// Runs `main` with the request's batches on the same task (see the module docs).
    pub async fn drive<F: Future>(&self, main: F) -> F::Output {
        let mut driver = Driver::new(self.clone());
        // Unconstrained: tokio's cooperative budget would otherwise make the query's
        // futures return early (waking themselves) part-way through a wave of siblings.
        let mut main = std::pin::pin!(tokio::task::unconstrained(main));
        std::future::poll_fn(|cx| driver.poll_with(cx, |cx| main.as_mut().poll(cx))).await
    }

    /// A subscription's stream with its batches driven the same way, event by event.
    pub fn drive_stream<S: Stream + Send + Unpin>(&self, stream: S) -> DrivenStream<S> {
        DrivenStream {
            driver: Driver::new(self.clone()),
            stream,
        }
    }
}

/// Polls one request's batches and its query (or subscription stream) in order.
struct Driver {
    queue: BatchQueue,
    running: FuturesUnordered<BoxFuture<'static, ()>>,
    /// The query is polled only when something woke it (a batch's results, its own I/O,
    /// itself), not on every wake of a batch's I/O.
    query: Arc<QueryWaker>,
    query_waker: std::task::Waker,
}

impl Driver {
    fn new(queue: BatchQueue) -> Driver {
        queue.0.driven.store(true, Ordering::Release);
        let query = Arc::new(QueryWaker {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        Driver {
            queue,
            running: FuturesUnordered::new(),
            query_waker: futures::task::waker(query.clone()),
            query,
        }
    }

    /// One poll of the request: the batches, then `main` until it stops waking itself,
    /// then the batches it queued; repeated while new batches were queued.
    fn poll_with<T>(
        &mut self,
        cx: &mut Context<'_>,
        mut main: impl FnMut(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        self.query.task.register(cx.waker());
        loop {
            // 1. Batches that finish hand out all their results now.
            while let Poll::Ready(Some(())) = self.running.poll_next_unpin(cx) {}
            // 2. The query, until it waits only on something outside itself: polled
            // again as long as it was woken, by a batch's results or by itself.
            while self.query.woken.swap(false, Ordering::AcqRel) {
                if let Poll::Ready(out) = main(&mut Context::from_waker(&self.query_waker)) {
                    // A stream that yielded an item is polled again on the next call
                    // without waking anyone: the next call must reach it.
                    self.query.woken.store(true, Ordering::Release);
                    return Poll::Ready(out);
                }
            }
            // 3. The wave's batches start together.
            let queued = self.queue.take();
            if queued.is_empty() {
                return Poll::Pending;
            }
            self.running.extend(queued);
        }
    }
}

impl Drop for Driver {
    /// Batches left when the query ends (one whose result nobody awaits any more, or all
    /// of them when the request timed out) run to the end on their own: a loader whose
    /// batch never ran would keep its keys pending and never start another.
    fn drop(&mut self) {
        self.queue.0.driven.store(false, Ordering::Release);
        for task in std::mem::take(&mut self.running)
            .into_iter()
            .chain(self.queue.take())
        {
            tokio::spawn(task);
        }
    }
}

/// A subscription's stream whose events resolve with their batches on its own task.
pub struct DrivenStream<S> {
    driver: Driver,
    stream: S,
}

impl<S: Stream + Unpin> Stream for DrivenStream<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.get_mut();
        let stream = &mut this.stream;
        this.driver.poll_with(cx, |cx| stream.poll_next_unpin(cx))
    }
}

/// The batches of each loader in flight, to count waves that split: a batch that starts
/// while another of the same loader is still running got only part of its wave's keys.
#[derive(Default)]
pub struct Flights {
    running: Mutex<HashMap<&'static str, usize>>,
}

impl Flights {
    /// Marks a batch of `loader` as running until the returned guard drops; `split` is
    /// called when another batch of it was already running.
    pub fn start(&self, loader: &'static str, split: impl FnOnce()) -> Flight<'_> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let count = running.entry(loader).or_default();
        if *count > 0 {
            split();
        }
        *count += 1;
        Flight {
            flights: self,
            loader,
        }
    }
}

/// One running batch (see [`Flights::start`]).
pub struct Flight<'a> {
    flights: &'a Flights,
    loader: &'static str,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut running = self
            .flights
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(count) = running.get_mut(self.loader) {
            *count = count.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::atomic::AtomicUsize, time::Duration};

    use async_graphql::dataloader::{DataLoader, Loader};

    use super::*;

    /// Counts its batches; answers every key with itself after a short wait.
    struct Counting(Arc<AtomicUsize>);

    impl Loader<u32> for Counting {
        type Value = u32;
        type Error = ();

        async fn load(&self, keys: &[u32]) -> Result<HashMap<u32, u32>, ()> {
            self.0.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok(keys.iter().map(|k| (*k, *k)).collect())
        }
    }

    /// Returns Pending once, waking itself first.
    async fn yield_once() {
        let mut yielded = false;
        std::future::poll_fn(|cx| {
            if yielded {
                return Poll::Ready(());
            }
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await
    }

    /// Two waves: the second depends on the first's answers.
    async fn two_waves(loader: &DataLoader<Counting>, width: u32) -> Vec<u32> {
        futures::future::join_all((0..width).map(|k| async move {
            let first = loader.load_one(k).await.expect("loads").expect("value");
            // A sibling that yields part-way (waking itself, as `futures`' combinators do
            // to stay fair) gives the others time to race ahead.
            if k % 7 == 0 {
                yield_once().await;
            }
            loader
                .load_one(first + 10_000)
                .await
                .expect("loads")
                .expect("value")
        }))
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_wave_of_loads_is_one_batch_however_wide() {
        for width in [1u32, 10, 500] {
            let batches = Arc::new(AtomicUsize::new(0));
            let queue = BatchQueue::default();
            let spawner = queue.clone();
            let loader = DataLoader::new(Counting(batches.clone()), move |t| spawner.spawn(t))
                .delay(Duration::ZERO);
            let total = queue.drive(two_waves(&loader, width)).await;
            assert_eq!(total.len(), width as usize);
            assert_eq!(batches.load(Ordering::SeqCst), 2, "width {width}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_driven_stream_batches_each_event_in_one_wave_per_loader() {
        let batches = Arc::new(AtomicUsize::new(0));
        let queue = BatchQueue::default();
        let spawner = queue.clone();
        let loader = Arc::new(
            DataLoader::new(Counting(batches.clone()), move |t| spawner.spawn(t))
                .delay(Duration::ZERO),
        );
        let events = futures::stream::iter(0..5u32).then(move |_| {
            let loader = loader.clone();
            async move { two_waves(&loader, 100).await.len() }
        });
        let sizes: Vec<usize> = queue.drive_stream(Box::pin(events)).collect().await;
        assert_eq!(sizes, vec![100; 5]);
        // The loader has no cache: every event costs its two waves again.
        assert_eq!(batches.load(Ordering::SeqCst), 10);
    }

    #[tokio::test]
    async fn a_driven_stream_yields_items_that_need_no_wake() {
        let queue = BatchQueue::default();
        let items: Vec<u32> = queue
            .drive_stream(futures::stream::iter(0..100u32))
            .collect()
            .await;
        assert_eq!(items.len(), 100);
    }

    #[tokio::test]
    async fn without_a_driver_batches_still_run() {
        let batches = Arc::new(AtomicUsize::new(0));
        let queue = BatchQueue::default();
        let loader = DataLoader::new(Counting(batches.clone()), move |t| queue.spawn(t));
        assert_eq!(loader.load_one(7).await, Ok(Some(7)));
        assert_eq!(batches.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_batch_started_beside_a_running_one_of_its_loader_is_a_split() {
        let flights = Flights::default();
        let splits = AtomicUsize::new(0);
        let split = || {
            splits.fetch_add(1, Ordering::SeqCst);
        };
        let users = flights.start("users", split);
        let _trades = flights.start("trades", split);
        assert_eq!(splits.load(Ordering::SeqCst), 0);
        let again = flights.start("users", split);
        assert_eq!(splits.load(Ordering::SeqCst), 1);
        drop(again);
        drop(users);
        let _later = flights.start("users", split);
        assert_eq!(splits.load(Ordering::SeqCst), 1);
    }
}
