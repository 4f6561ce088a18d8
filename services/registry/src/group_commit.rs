//! Group commit: the concurrent writes of one key (a subject) run together, as one batch.
//!
//! Guarantee: every submitted item is handed to exactly one batch, batches of one key run one
//! at a time and in submission order (items within a batch keep their order), and each item's
//! submitter gets the answer its batch gave for that item, or [`Abandoned`] when the batch ended
//! without giving one (it panicked). A batch runs in a task of its own, so a submitter that goes
//! away (a client that disconnects, a timeout) never stops the batch that holds its item and
//! the items of the others: it runs to its end, and only that submitter's answer is dropped.
//! Nothing here knows what a batch does; the registry's batch is one Postgres transaction, so
//! "answered" means "committed" (see `registry::batch`).
//!
//! The first submitter of a key with no batch running starts a worker task for it; the worker
//! takes everything queued for the key (at most `max_batch` items), runs the batch, answers,
//! and repeats until the queue is empty, then ends. While a batch runs, new items queue up for
//! the next one, so the batch size follows the number of concurrent writers of the key.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;

/// The batch holding an item ended without answering it (it panicked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the batch holding this write ended without an answer")]
pub struct Abandoned;

type Queued<T, R> = VecDeque<(T, oneshot::Sender<R>)>;

/// Per-key queues of items waiting for their batch. A key is in the map exactly while a worker
/// runs for it.
pub struct GroupCommit<T, R> {
    queues: Arc<Mutex<HashMap<String, Queued<T, R>>>>,
    max_batch: usize,
}

impl<T, R> std::fmt::Debug for GroupCommit<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("keys_running", &self.queues.lock().len())
            .field("max_batch", &self.max_batch)
            .finish()
    }
}

impl<T: Send + 'static, R: Send + 'static> GroupCommit<T, R> {
    /// At most `max_batch` items (at least 1) per batch.
    pub fn new(max_batch: usize) -> Self {
        Self {
            queues: Arc::default(),
            max_batch: max_batch.max(1),
        }
    }

    /// Queues `item` for the next batch of `key` and waits for its answer. When no worker runs
    /// for `key`, one is spawned that runs each batch with `run` (made by `worker` only then):
    /// `run` gets the items in submission order and answers each, in the same order.
    pub async fn submit<W, F>(
        &self,
        key: &str,
        item: T,
        worker: impl FnOnce() -> W,
    ) -> Result<R, Abandoned>
    where
        W: Fn(Vec<T>) -> F + Send + 'static,
        F: Future<Output = Vec<R>> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut queues = self.queues.lock();
            match queues.get_mut(key) {
                Some(queue) => {
                    queue.push_back((item, answer));
                    false
                }
                None => {
                    queues.insert(key.to_owned(), VecDeque::from([(item, answer)]));
                    true
                }
            }
        };
        if start {
            let run = worker();
            let worker = Worker {
                queues: Arc::clone(&self.queues),
                key: key.to_owned(),
                max_batch: self.max_batch,
                finished: false,
            };
            tokio::spawn(worker.run(run));
        }
        answered.await.map_err(|_| Abandoned)
    }
}

/// The task running the batches of one key.
struct Worker<T, R> {
    queues: Arc<Mutex<HashMap<String, Queued<T, R>>>>,
    key: String,
    max_batch: usize,
    /// Set when the worker took its key out of the map itself (its queue was empty).
    finished: bool,
}

impl<T, R> Worker<T, R> {
    async fn run<W, F>(mut self, run: W)
    where
        W: Fn(Vec<T>) -> F,
        F: Future<Output = Vec<R>>,
    {
        loop {
            let (items, answers): (Vec<T>, Vec<oneshot::Sender<R>>) = {
                let mut queues = self.queues.lock();
                let Some(queue) = queues.get_mut(&self.key) else {
                    self.finished = true;
                    return;
                };
                if queue.is_empty() {
                    queues.remove(&self.key);
                    self.finished = true;
                    return;
                }
                let take = queue.len().min(self.max_batch);
                queue.drain(..take).unzip()
            };
            let results = run(items).await;
            // Fewer results than items leaves the rest unanswered: their submitters get
            // `Abandoned` when their senders drop here.
            for (answer, result) in answers.into_iter().zip(results) {
                let _ = answer.send(result);
            }
        }
    }
}

impl<T, R> Drop for Worker<T, R> {
    /// A worker that ends otherwise than by finding its queue empty (it panicked, or its
    /// runtime shut down) leaves no queue behind without a worker: what is still queued is
    /// dropped, so its submitters get `Abandoned` rather than wait forever, and the next
    /// submitter of the key starts a new worker.
    fn drop(&mut self) {
        if !self.finished {
            self.queues.lock().remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_items_are_grouped_in_order_and_each_gets_its_own_answer() {
        let group = Arc::new(GroupCommit::<usize, (usize, usize)>::new(1000));
        let batches = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for n in 0..200 {
            let group = Arc::clone(&group);
            let batches = Arc::clone(&batches);
            let seen = Arc::clone(&seen);
            tasks.push(tokio::spawn(async move {
                group
                    .submit("subject", n, move || {
                        move |items: Vec<usize>| {
                            let batch = batches.fetch_add(1, Ordering::SeqCst);
                            let seen = Arc::clone(&seen);
                            async move {
                                tokio::time::sleep(Duration::from_millis(5)).await;
                                seen.lock().extend(items.iter().copied());
                                items.into_iter().map(|n| (n, batch)).collect()
                            }
                        }
                    })
                    .await
            }));
        }
        for (n, task) in tasks.into_iter().enumerate() {
            let (answer, _batch) = task.await.expect("task").expect("answered");
            assert_eq!(answer, n, "each submitter gets its own item back");
        }
        let seen = seen.lock().clone();
        assert_eq!(seen.len(), 200, "every item ran exactly once");
        let mut sorted = seen.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 200, "no item ran twice");
        assert!(
            batches.load(Ordering::SeqCst) < 200,
            "concurrent items were grouped ({} batches for 200 items)",
            batches.load(Ordering::SeqCst)
        );
        assert!(group.queues.lock().is_empty(), "no worker left behind");
    }

    #[tokio::test]
    async fn batches_are_bounded() {
        let group = Arc::new(GroupCommit::<usize, usize>::new(3));
        let largest = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for n in 0..10 {
            let group = Arc::clone(&group);
            let largest = Arc::clone(&largest);
            tasks.push(tokio::spawn(async move {
                group
                    .submit("s", n, move || {
                        move |items: Vec<usize>| {
                            largest.fetch_max(items.len(), Ordering::SeqCst);
                            async move {
                                tokio::task::yield_now().await;
                                items
                            }
                        }
                    })
                    .await
            }));
        }
        for (n, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.await.expect("task"), Ok(n));
        }
        assert!(largest.load(Ordering::SeqCst) <= 3);
    }

    #[tokio::test]
    async fn an_unanswered_item_is_abandoned_and_the_key_recovers() {
        let group = GroupCommit::<usize, usize>::new(10);
        let outcome = group
            .submit("s", 1, || |_items: Vec<usize>| async { Vec::new() })
            .await;
        assert_eq!(outcome, Err(Abandoned));
        let outcome = group
            .submit("s", 2, || |items: Vec<usize>| async move { items })
            .await;
        assert_eq!(outcome, Ok(2));
    }

    #[tokio::test]
    async fn a_submitter_that_goes_away_does_not_stop_the_batch() {
        let group = Arc::new(GroupCommit::<usize, usize>::new(10));
        let ran = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&ran);
        let submitted = group.submit("s", 7, move || {
            move |items: Vec<usize>| {
                let counted = Arc::clone(&counted);
                async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    counted.fetch_add(items.len(), Ordering::SeqCst);
                    items
                }
            }
        });
        // Give up on the answer long before the batch ends.
        assert!(
            tokio::time::timeout(Duration::from_millis(5), submitted)
                .await
                .is_err()
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(ran.load(Ordering::SeqCst), 1, "the batch ran to its end");
        assert!(group.queues.lock().is_empty());
    }
}
