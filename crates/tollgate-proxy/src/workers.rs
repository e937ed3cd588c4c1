//! The threads that serve Gateway traffic. Each runs its own single-threaded tokio runtime and
//! accepts on every listening socket; each connection is served from first byte to last,
//! upstream calls included, by one worker, as nginx's workers do: the one serving the fewest
//! connections (see [`Placement`]). A request never changes thread, so it never waits for
//! another thread to wake up, and no lock or queue is shared between requests on different
//! threads. Configuration, the audit writer, exporters and the admin server stay on the
//! caller's runtime.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// The worker threads, stopped when dropped (after [`crate::Proxy::drain`] has let their
/// connections finish).
pub(crate) struct Workers {
    handles: Arc<[Handle]>,
    /// How many connections each worker serves.
    open: Arc<[AtomicUsize]>,
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
            open: handles.iter().map(|_| AtomicUsize::new(0)).collect(),
            handles: handles.into(),
            _stop: stop,
        })
    }

    /// Where the connections accepted by worker `local` go.
    pub(crate) fn placement(&self, local: usize) -> Placement {
        Placement {
            handles: self.handles.clone(),
            open: self.open.clone(),
            local,
        }
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

/// Places each connection a worker accepts on the worker serving the fewest connections: the
/// kernel wakes every worker that watches a listening socket, and the first one awake accepts
/// all that wait, so a burst of new connections (a client opening its pool) would otherwise
/// land on one worker while another idles. The accepting worker keeps the connection when it
/// serves no more than any other, so a balanced load hops no thread.
#[derive(Clone)]
pub(crate) struct Placement {
    handles: Arc<[Handle]>,
    open: Arc<[AtomicUsize]>,
    /// The worker that accepts.
    local: usize,
}

impl Placement {
    /// Serves `stream`, accepted on this worker, with `serve` (a task to run until the
    /// connection closes) on the least busy worker. A stream that changes worker is moved to
    /// that worker's event loop, so its readiness wakes the thread that serves it.
    pub(crate) fn serve<F, Fut>(&self, stream: TcpStream, serve: F)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let target = least_busy(&self.open, self.local);
        if target == self.local {
            tokio::spawn(self.counted(target, serve(stream)));
            return;
        }
        match stream.into_std() {
            Ok(stream) => {
                let connection = async move {
                    match TcpStream::from_std(stream) {
                        Ok(stream) => serve(stream).await,
                        Err(error) => tracing::warn!(%error, "a worker cannot watch a connection"),
                    }
                };
                self.handles[target].spawn(self.counted(target, connection));
            }
            Err(error) => tracing::warn!(%error, "a connection cannot be handed to another worker"),
        }
    }

    /// `connection`, counted as one of worker `index`'s while it runs: counted down however
    /// it ends, done or dropped with its runtime.
    fn counted(
        &self,
        index: usize,
        connection: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        self.open[index].fetch_add(1, Ordering::Relaxed);
        let counted = Counted {
            open: self.open.clone(),
            index,
        };
        async move {
            let _counted = counted;
            connection.await;
        }
    }
}

/// The worker with the fewest connections in `open`: `local` when none has fewer.
fn least_busy(open: &[AtomicUsize], local: usize) -> usize {
    // On a tie `false` (the local worker) sorts first.
    (0..open.len())
        .min_by_key(|&index| (open[index].load(Ordering::Relaxed), index != local))
        .unwrap_or(local)
}

/// One connection counted in a worker's `open`, until dropped.
struct Counted {
    open: Arc<[AtomicUsize]>,
    index: usize,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.open[self.index].fetch_sub(1, Ordering::Relaxed);
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

    fn counts(open: &[usize]) -> Vec<AtomicUsize> {
        open.iter().map(|&n| AtomicUsize::new(n)).collect()
    }

    #[test]
    fn the_accepting_worker_keeps_a_connection_unless_another_serves_fewer() {
        assert_eq!(least_busy(&counts(&[0, 0, 0]), 1), 1);
        assert_eq!(least_busy(&counts(&[2, 2, 3]), 1), 1);
        assert_eq!(least_busy(&counts(&[3, 5, 1]), 1), 2);
        assert_eq!(least_busy(&counts(&[4, 2, 2]), 0), 1);
        assert_eq!(least_busy(&counts(&[7]), 0), 0);
    }

    #[tokio::test]
    async fn a_burst_accepted_by_one_worker_is_spread_over_all_and_counted_down_when_served() {
        let workers = Workers::start(2).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let accepting = workers.spawn_on_each(
            [(workers.placement(0), listener)],
            |(placement, listener)| {
                let tx = tx.clone();
                async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    for _ in 0..6 {
                        let (stream, _) = listener.accept().await.unwrap();
                        let tx = tx.clone();
                        placement.serve(stream, move |mut stream| async move {
                            // Served where it was placed: the byte is read on that worker.
                            let mut byte = [0];
                            tokio::io::AsyncReadExt::read_exact(&mut stream, &mut byte)
                                .await
                                .unwrap();
                            let _ = tx.send(std::thread::current().name().map(String::from));
                            let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut byte).await;
                        });
                    }
                }
            },
        );
        let mut clients = Vec::new();
        for _ in 0..6 {
            clients.push(tokio::net::TcpStream::connect(address).await.unwrap());
        }
        accepting.into_iter().next().unwrap().await.unwrap();
        let open = |index: usize| workers.open[index].load(Ordering::Relaxed);
        assert_eq!((open(0), open(1)), (3, 3));
        for client in &mut clients {
            tokio::io::AsyncWriteExt::write_all(client, b"x")
                .await
                .unwrap();
        }
        let mut threads = Vec::new();
        for _ in 0..6 {
            threads.push(rx.recv().await.unwrap().unwrap());
        }
        threads.sort();
        assert_eq!(
            threads,
            [
                "tg-worker-0",
                "tg-worker-0",
                "tg-worker-0",
                "tg-worker-1",
                "tg-worker-1",
                "tg-worker-1"
            ]
        );
        drop(clients);
        for _ in 0..200 {
            if (open(0), open(1)) == (0, 0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!((open(0), open(1)), (0, 0));
    }
}
