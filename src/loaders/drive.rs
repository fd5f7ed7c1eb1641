//! Batching that follows the query's execution instead of a timer.
//!
//! A dataloader normally collects keys for a fixed delay after the first one, then runs
//! the batch on another task. How many keys arrive within that delay depends on how fast
//! the resolvers run, so the same query can take one round trip or three. Here the batch
//! tasks of a request are queued, and [`BatchQueue::drive`] runs them on the request's
//! own task only when the query future cannot make progress: by then every sibling field
//! waiting on a loader has registered its key, so each wave of the query costs one round
//! trip per loader, whatever the number of parents and however fast the machine.

use std::{
    future::Future,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    task::Poll,
};

use futures::{future::BoxFuture, stream::FuturesUnordered, StreamExt};

/// How many times in a row the query may wake itself before queued batches run anyway.
const MAX_SELF_WAKES: u32 = 64;

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
}

impl BatchQueue {
    /// Queues a batch for the driver, or spawns it when no driver runs this request (so a
    /// load can never wait forever).
    pub fn spawn(&self, task: BoxFuture<'static, ()>) {
        if self.0.driven.load(Ordering::Acquire) {
            if let Ok(mut tasks) = self.0.tasks.lock() {
                tasks.push(task);
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

    /// Runs `main`, and the batches it queues each time it stops making progress.
    pub async fn drive<F: Future>(&self, main: F) -> F::Output {
        self.0.driven.store(true, Ordering::Release);
        // Unconstrained: tokio's cooperative budget would otherwise make the query's
        // futures return early (waking themselves) part-way through a wave of siblings.
        let mut main = std::pin::pin!(tokio::task::unconstrained(main));
        let mut running = FuturesUnordered::new();
        let mut self_wakes = 0u32;
        let output = std::future::poll_fn(|cx| loop {
            let flag = Arc::new(WakeFlag {
                woken: AtomicBool::new(false),
                inner: cx.waker().clone(),
            });
            let waker = futures::task::waker(flag.clone());
            if let Poll::Ready(out) = main
                .as_mut()
                .poll(&mut std::task::Context::from_waker(&waker))
            {
                return Poll::Ready(out);
            }
            // A query that woke itself has more to do before it waits on a loader: let it
            // run on (a bounded number of times) before starting the batches.
            if flag.woken.load(Ordering::Acquire) && self_wakes < MAX_SELF_WAKES {
                self_wakes += 1;
                return Poll::Pending;
            }
            self_wakes = 0;
            let queued = self.take();
            let started = !queued.is_empty();
            running.extend(queued);
            let mut finished = false;
            while let Poll::Ready(Some(())) = running.poll_next_unpin(cx) {
                finished = true;
            }
            if !started && !finished {
                return Poll::Pending;
            }
        })
        .await;
        self.0.driven.store(false, Ordering::Release);
        // Batches still queued (none in practice) must not be lost.
        for task in self.take() {
            tokio::spawn(task);
        }
        for task in running {
            tokio::spawn(task);
        }
        output
    }
}
