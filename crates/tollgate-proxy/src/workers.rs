//! The threads that serve Gateway traffic. Each runs its own single-threaded tokio runtime,
//! accepts on every listening socket, and serves the connections it accepts from first byte to
//! last, upstream calls included, as nginx's workers do. A request never changes thread, so it
//! never waits for another thread to wake up, and no lock or queue is shared between requests
//! on different threads. Configuration, the audit writer, exporters and the admin server stay
//! on the caller's runtime.

use std::future::Future;
use std::io;
use std::time::Duration;
use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// The worker threads, stopped when dropped (after [`crate::Proxy::drain`] has let their
/// connections finish).
pub(crate) struct Workers {
    handles: Vec<Handle>,
    /// Each worker runs until its sender is dropped.
    _stop: Vec<oneshot::Sender<()>>,
}

impl Workers {
    /// Starts `count` workers (at least one), threads named `tg-worker-N` (short enough for
    /// the 15 characters Linux keeps, so `top -H` tells them apart).
    pub(crate) fn start(count: usize) -> io::Result<Self> {
        let mut handles = Vec::with_capacity(count.max(1));
        let mut stop = Vec::with_capacity(count.max(1));
        for index in 0..count.max(1) {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            handles.push(runtime.handle().clone());
            stop.push(stop_tx);
            std::thread::Builder::new()
                .name(format!("tg-worker-{index}"))
                .spawn(move || runtime.block_on(run_until(stop_rx)))?;
        }
        Ok(Self {
            handles,
            _stop: stop,
        })
    }

    /// Runs on every worker the task `make` makes of that worker's item of `items` (one
    /// item per worker, in order; workers without an item run nothing).
    pub(crate) fn spawn_on_each<T, F>(
        &self,
        items: impl IntoIterator<Item = T>,
        mut make: impl FnMut(T) -> F,
    ) -> Vec<JoinHandle<()>>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.handles
            .iter()
            .zip(items)
            .map(|(handle, item)| handle.spawn(make(item)))
            .collect()
    }

    /// How many workers there are.
    pub(crate) fn count(&self) -> usize {
        self.handles.len()
    }
}

/// How often a worker's clock ticks while it waits for work. Tokio wakes its event loop (a
/// system call) whenever a timer is set to fire before the loop's next planned wake-up, even
/// when the loop is busy and awake (tokio-rs/tokio#5207); hyper sets one for every request
/// (the header read timeout). A tick at least this often keeps the planned wake-up close, so
/// setting those timers costs nothing more, for one wake-up a second when idle.
const TICK: Duration = Duration::from_secs(1);

/// A worker's main task: ticks (see [`TICK`]) until `stop` fires or is dropped.
async fn run_until(stop: oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    tokio::select! {
        _ = stop => {}
        () = async { loop { tick.tick().await; } } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_worker_runs_a_copy_on_its_own_thread() {
        let workers = Workers::start(3).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let tasks = workers.spawn_on_each(0..3, |index| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((index, std::thread::current().name().map(String::from)));
            }
        });
        for task in tasks {
            task.await.unwrap();
        }
        drop(tx);
        let mut seen = Vec::new();
        while let Some(seen_one) = rx.recv().await {
            seen.push(seen_one);
        }
        seen.sort();
        let expected: Vec<_> = (0..3)
            .map(|i| (i, Some(format!("tg-worker-{i}"))))
            .collect();
        assert_eq!(seen, expected);
        assert_eq!(Workers::start(0).unwrap().count(), 1);
    }
}
