//! Batching that follows the query's execution instead of a timer.
//!
//! A dataloader normally collects keys for a fixed delay after the first one, then runs
//! the batch on another task. How many keys arrive within that delay depends on how fast
//! the resolvers run, so the same query can take one round trip or three. Here the batch
//! tasks of a request are queued, and [`BatchQueue::drive`] starts them only when the
//! query future cannot make progress: by then every sibling field waiting on a loader has
//! registered its key, so each wave of the query costs one round trip per loader,
//! whatever the number of parents and however fast the machine.

use std::{
    future::Future,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    task::Poll,
};

use futures::future::BoxFuture;

/// How many times in a row the query may wake itself before queued batches run anyway.
/// A query over thousands of fields wakes itself many times while it works through a wave
/// (list futures yield to stay fair); at 64 a 100-entry dashboard under CPU load sometimes
/// ran a wave's batches before the wave was complete, splitting them in two. The cap only
/// guards against a query that never stops waking itself.
const MAX_SELF_WAKES: u32 = 4096;

/// Records whether a poll woke its own task.
struct WakeFlag {
    woken: AtomicBool,
    inner: std::task::Waker,
}

impl futures::task::ArcWake for WakeFlag {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.woken.store(true, Ordering::Release);
        arc_self.inner.wake_by_ref();
    }
}

/// The batch tasks of one request.
#[derive(Clone, Default)]
pub struct BatchQueue(Arc<Inner>);

#[derive(Default)]
struct Inner {
    tasks: Mutex<Vec<BoxFuture<'static, ()>>>,
    driven: AtomicBool,
    /// Held while the query future or one of its batches is being polled. A batch hands
    /// its results to every waiting field in one poll; without the gate, the query could be
    /// polled on another thread half-way through, see no progress for the fields not yet
    /// served, and start their next loads as a second, partial batch.
    gate: Mutex<()>,
}

/// A batch that polls only while it holds the queue's gate.
struct Gated {
    queue: Arc<Inner>,
    task: BoxFuture<'static, ()>,
}

impl Future for Gated {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let queue = self.queue.clone();
        let _held = queue.gate.lock().unwrap_or_else(|e| e.into_inner());
        self.task.as_mut().poll(cx)
    }
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
            if let Ok(mut tasks) = self.0.tasks.lock() {
                tasks.push(Box::pin(Gated {
                    queue: self.0.clone(),
                    task,
                }));
                return;
            }
        }
        tokio::spawn(task);
    }

    fn take(&self) -> Vec<BoxFuture<'static, ()>> {
        self.0
            .tasks
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default()
    }

    /// Runs `main`; each time it stops making progress, starts the batches it queued.
    ///
    /// The batches are spawned rather than polled here, so that their I/O completes on
    /// another worker while this task goes on resolving fields.
    pub async fn drive<F: Future>(&self, main: F) -> F::Output {
        self.0.driven.store(true, Ordering::Release);
        // Unconstrained: tokio's cooperative budget would otherwise make the query's
        // futures return early (waking themselves) part-way through a wave of siblings.
        let mut main = std::pin::pin!(tokio::task::unconstrained(main));
        let mut self_wakes = 0u32;
        let output = std::future::poll_fn(|cx| {
            let flag = Arc::new(WakeFlag {
                woken: AtomicBool::new(false),
                inner: cx.waker().clone(),
            });
            let waker = futures::task::waker(flag.clone());
            let polled = {
                let _held = self.0.gate.lock().unwrap_or_else(|e| e.into_inner());
                main.as_mut()
                    .poll(&mut std::task::Context::from_waker(&waker))
            };
            if let Poll::Ready(out) = polled {
                return Poll::Ready(out);
            }
            // A query that woke itself has more to do before it waits on a loader: let it
            // run on (a bounded number of times) before starting the batches.
            if flag.woken.load(Ordering::Acquire) && self_wakes < MAX_SELF_WAKES {
                self_wakes += 1;
                return Poll::Pending;
            }
            self_wakes = 0;
            for task in self.take() {
                tokio::spawn(task);
            }
            Poll::Pending
        })
        .await;
        self.0.driven.store(false, Ordering::Release);
        // Batches still queued (none in practice) must not be lost.
        for task in self.take() {
            tokio::spawn(task);
        }
        output
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, sync::atomic::AtomicUsize, time::Duration};

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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_wave_of_loads_is_one_batch_however_wide() {
        for width in [1u32, 10, 500] {
            let batches = Arc::new(AtomicUsize::new(0));
            let queue = BatchQueue::default();
            let spawner = queue.clone();
            let loader = DataLoader::new(Counting(batches.clone()), move |t| spawner.spawn(t))
                .delay(Duration::ZERO);
            // Two waves: the second depends on the first's answers.
            let total = queue
                .drive(futures::future::join_all((0..width).map(|k| {
                    let loader = &loader;
                    async move {
                        let first = loader.load_one(k).await.expect("loads").expect("value");
                        loader
                            .load_one(first + 10_000)
                            .await
                            .expect("loads")
                            .expect("value")
                    }
                })))
                .await;
            assert_eq!(total.len(), width as usize);
            assert_eq!(batches.load(Ordering::SeqCst), 2, "width {width}");
        }
    }

    #[tokio::test]
    async fn without_a_driver_batches_still_run() {
        let batches = Arc::new(AtomicUsize::new(0));
        let queue = BatchQueue::default();
        let loader = DataLoader::new(Counting(batches.clone()), move |t| queue.spawn(t));
        assert_eq!(loader.load_one(7).await, Ok(Some(7)));
        assert_eq!(batches.load(Ordering::SeqCst), 1);
    }
}
