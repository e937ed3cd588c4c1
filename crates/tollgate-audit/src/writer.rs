//! The writer: a bounded queue in front of one thread that owns the file, chains the records
//! and rotates the file by size.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::line::{self, GENESIS, Hash};
use crate::record::{self, LazyRecord};

/// How long the writer waits before it tries again after an I/O error, and the least time
/// between two "record dropped" errors in the log.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How long the writer lets records gather after the first one of a batch: at most this much
/// later in the file, and at a thousand requests a second ten records to a write (and to a
/// wake-up of the writer) instead of one.
const GATHER_WINDOW: Duration = Duration::from_millis(10);

/// How the log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditOptions {
    /// The size a file may reach before it is rotated (a single larger record gets a file of
    /// its own).
    pub max_bytes: u64,
    /// How many rotated files (`audit.jsonl.1` to `audit.jsonl.N`) are kept; older ones are
    /// deleted.
    pub max_files: usize,
    /// How many records may wait for the writer; more are dropped (and counted).
    pub buffer: usize,
}

impl Default for AuditOptions {
    /// 100 MiB files, 10 rotated files, 8192 queued records.
    fn default() -> Self {
        Self {
            max_bytes: 100 << 20,
            max_files: 10,
            buffer: 8192,
        }
    }
}

/// The log's counters, for metrics; a cheap handle that outlives the [`AuditLog`].
#[derive(Debug, Clone, Default)]
pub struct AuditCounters(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    written: AtomicU64,
    dropped: AtomicU64,
    write_errors: AtomicU64,
    /// When a dropped record was last logged.
    last_drop_logged: Mutex<Option<Instant>>,
}

impl AuditCounters {
    /// Records written to the file.
    pub fn written(&self) -> u64 {
        self.0.written.load(Ordering::Relaxed)
    }

    /// Records that did not make it into the log: refused because the buffer was full, the log
    /// was closed, or the record was not a JSON object; or still unwritable when the log
    /// closed. Once the log is closed, `written + dropped` is every record offered.
    pub fn dropped(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }

    /// Failed I/O operations (open, write, rotate, sync), and the file found deleted or
    /// replaced under the writer.
    pub fn write_errors(&self) -> u64 {
        self.0.write_errors.load(Ordering::Relaxed)
    }

    fn add(counter: &AtomicU64, n: usize) -> u64 {
        let n = n as u64;
        counter.fetch_add(n, Ordering::Relaxed) + n
    }

    /// Counts a refused record and logs it, at most once a second; returns false.
    fn drop_one(&self, reason: &dyn fmt::Display) -> bool {
        let dropped = Self::add(&self.0.dropped, 1);
        let now = Instant::now();
        // Whoever holds the lock is logging right now.
        if let Some(mut last) = self.0.last_drop_logged.try_lock()
            && last.is_none_or(|at| now.duration_since(at) >= RETRY_AFTER)
        {
            *last = Some(now);
            drop(last);
            tracing::error!(dropped, "audit record dropped: {reason}");
        }
        false
    }
}

/// What the queue carries.
enum Message {
    /// A record's JSON object without its closing brace ([`record::body`]).
    Record(Vec<u8>),
    /// A record for the writer to make and serialise.
    Lazy(Box<dyn LazyRecord>),
    /// Stop accepting, write what is queued, sync.
    Close,
}

/// The audit log: [`record`](Self::record) queues, one thread writes.
///
/// Share it behind an `Arc`; call [`close`](Self::close) at shutdown. Dropping it without
/// closing lets the thread write what is queued and stop on its own.
pub struct AuditLog {
    queue: mpsc::Sender<Message>,
    /// Closes (the sender is dropped) when the writer thread has ended.
    finished: watch::Receiver<()>,
    counters: AuditCounters,
}

impl AuditLog {
    /// Opens (or creates) the log at `path` and starts its writer thread.
    ///
    /// An existing log is continued: the chain goes on from its last complete line (or, if the
    /// file is missing or empty, from that of `path.1`). A last line cut off by a crash is left
    /// as it is: that file is rotated away first, so [`verify`](crate::verify) reports the cut
    /// and the new records start a fresh file. Fails if the file cannot be opened or its last
    /// complete line is not a sound record.
    pub fn open(path: impl Into<PathBuf>, options: AuditOptions) -> io::Result<Self> {
        let counters = AuditCounters::default();
        let sink = Sink::open(path.into(), &options, counters.clone())?;
        let capacity = options.buffer.clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        let (queue, receiver) = mpsc::channel(capacity);
        let (done, finished) = watch::channel(());
        std::thread::Builder::new()
            .name("tg-audit".into())
            .spawn(move || run(receiver, sink, capacity, done))?;
        Ok(Self {
            queue,
            finished,
            counters,
        })
    }

    /// Queues a record, which must serialise to a JSON object without `seq`, `prev` or `hash`
    /// fields; never waits. Returns false, counts the record as dropped and logs an error (at
    /// most once a second) when the buffer is full, the log is closed, or the record is not an
    /// object.
    pub fn record<T: Serialize + ?Sized>(&self, record: &T) -> bool {
        match record::body(record) {
            Ok(body) => self.queue(Message::Record(body)),
            Err(error) => self.counters.drop_one(&error),
        }
    }

    /// Queues a record that the writer thread makes and serialises (see [`LazyRecord`]); never
    /// waits. A record that turns out not to be a JSON object, or to have `seq`, `prev` or
    /// `hash` fields, is counted as dropped and logged there; false, as for
    /// [`record`](Self::record), when the buffer is full or the log is closed.
    pub fn record_lazily(&self, record: Box<dyn LazyRecord>) -> bool {
        self.queue(Message::Lazy(record))
    }

    /// Queues a message without waiting; false, counted and logged, when it cannot be.
    fn queue(&self, message: Message) -> bool {
        match self.queue.try_send(message) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.counters.drop_one(&"the buffer is full")
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.counters.drop_one(&"the log is closed")
            }
        }
    }

    /// Stops accepting records and returns once everything queued is written and synced (or,
    /// if the file cannot be written, counted as dropped). Later calls return at once.
    pub async fn close(&self) {
        // Fails only if the thread has already stopped reading.
        let _ = self.queue.send(Message::Close).await;
        let mut finished = self.finished.clone();
        // Never changes: returns when the thread drops its sender, i.e. has ended.
        let _ = finished.changed().await;
    }

    /// The counters, to read after the log is gone or register as metrics.
    pub fn counters(&self) -> AuditCounters {
        self.counters.clone()
    }

    /// Records written to the file.
    pub fn written(&self) -> u64 {
        self.counters.written()
    }

    /// Records that did not make it into the log (see [`AuditCounters::dropped`]).
    pub fn dropped(&self) -> u64 {
        self.counters.dropped()
    }

    /// Failed I/O operations (see [`AuditCounters::write_errors`]).
    pub fn write_errors(&self) -> u64 {
        self.counters.write_errors()
    }
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// The writer thread: waits for a record, gives others [`GATHER_WINDOW`] to join it, writes
/// what is queued (up to `capacity` records) as one batch, and after an I/O error keeps the
/// batch and tries again [`RETRY_AFTER`] later. Ends when the log is closed or dropped, after
/// a last attempt; `_done` tells [`AuditLog::close`].
fn run(
    mut queue: mpsc::Receiver<Message>,
    mut sink: Sink,
    capacity: usize,
    _done: watch::Sender<()>,
) {
    let counters = sink.counters.clone();
    let mut pending = VecDeque::new();
    let mut closing = false;
    loop {
        let mut exhausted = false;
        if !closing {
            if pending.is_empty() {
                let message = queue.blocking_recv();
                exhausted = !take(message, &mut pending, &mut queue, &mut closing, &counters);
                if !closing {
                    // Records sent meanwhile wake nobody: one wake-up per batch, not per record.
                    std::thread::sleep(GATHER_WINDOW);
                }
            } else {
                std::thread::sleep(RETRY_AFTER);
            }
        }
        while !exhausted && pending.len() < capacity {
            let message = if closing {
                queue.blocking_recv()
            } else {
                match queue.try_recv() {
                    Ok(message) => Some(message),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                }
            };
            exhausted = !take(message, &mut pending, &mut queue, &mut closing, &counters);
        }

        let written = pending.is_empty() || sink.write(&mut pending);
        if closing && (exhausted || !written) {
            let mut lost = pending.len();
            while let Some(message) = queue.blocking_recv() {
                lost += usize::from(!matches!(message, Message::Close));
            }
            if lost > 0 {
                let dropped = AuditCounters::add(&counters.0.dropped, lost);
                tracing::error!(dropped, "audit log closed with {lost} records unwritten");
            }
            // `close` returns once the file is synced.
            sink.sync();
            return;
        }
    }
}

/// Takes one message off the queue into `pending` (making the body of a lazy record, or
/// counting it as dropped when it cannot be one); false when the queue is exhausted (closed
/// and empty, or every sender gone).
fn take(
    message: Option<Message>,
    pending: &mut VecDeque<Vec<u8>>,
    queue: &mut mpsc::Receiver<Message>,
    closing: &mut bool,
    counters: &AuditCounters,
) -> bool {
    match message {
        Some(Message::Record(body)) => pending.push_back(body),
        Some(Message::Lazy(record)) => match record.body().0 {
            Ok(body) => pending.push_back(body),
            Err(error) => _ = counters.drop_one(&error),
        },
        Some(Message::Close) => {
            queue.close();
            *closing = true;
        }
        None => {
            *closing = true;
            return false;
        }
    }
    true
}

/// The file end of the log, used on blocking threads: where the chain stands and the open file.
struct Sink {
    path: PathBuf,
    max_bytes: u64,
    max_files: usize,
    file: Option<File>,
    /// The size of `file`.
    size: u64,
    /// Which file `file` is, to notice when `path` names another (see [`FileId`]).
    file_id: FileId,
    /// The `seq` and `prev` of the next record.
    seq: u64,
    prev: Hash,
    counters: AuditCounters,
}

impl Sink {
    /// Opens the log, continuing the chain of what is there (see [`AuditLog::open`]).
    fn open(path: PathBuf, options: &AuditOptions, counters: AuditCounters) -> io::Result<Self> {
        let tail = Tail::read(&path)?;
        let mut last = tail.last_record(&path)?;
        if last.is_none() {
            last = Tail::read(&rotated(&path, 1))?.last_record(&rotated(&path, 1))?;
        }
        let (seq, prev) = last.map_or((0, GENESIS), |last| (last.seq.wrapping_add(1), last.hash));
        let mut sink = Self {
            path,
            max_bytes: options.max_bytes,
            max_files: options.max_files,
            file: None,
            size: 0,
            file_id: FileId::default(),
            seq,
            prev,
            counters,
        };
        if tail.torn {
            tracing::warn!(
                path = %sink.path.display(),
                "the audit log ends in a line cut off mid-write; rotating it away as it is",
            );
            sink.shift()?;
        }
        sink.reopen()?;
        Ok(sink)
    }

    /// Writes the records of `pending` in order, removing each one written; rotates the file
    /// when the next record would not fit. Returns false on an I/O error, with the unwritten
    /// records still in `pending`.
    fn write(&mut self, pending: &mut VecDeque<Vec<u8>>) -> bool {
        let mut ignore_limit = false;
        // Each line is its record and the writer's fields (about 180 bytes).
        let mut buf = Vec::with_capacity(pending.iter().map(|body| body.len() + 192).sum());
        while !pending.is_empty() {
            if let Err(error) = self.ensure_open() {
                self.failed("cannot open the audit log", &error);
                return false;
            }
            buf.clear();
            let (mut seq, mut prev, mut count) = (self.seq, self.prev, 0);
            for body in pending.iter() {
                let start = buf.len();
                let hash = line::seal(&mut buf, body, seq, &prev);
                let before = self.size + start as u64;
                if !ignore_limit
                    && before > 0
                    && before + (buf.len() - start) as u64 > self.max_bytes
                {
                    buf.truncate(start);
                    break;
                }
                (seq, prev, count) = (seq.wrapping_add(1), hash, count + 1);
            }
            if let Some(file) = self.file.as_mut().filter(|_| count > 0) {
                if let Err(error) = file.write_all(&buf) {
                    // Takes back the part of the batch that made it, so no torn line stays.
                    let _ = file.set_len(self.size);
                    self.file = None;
                    self.failed("cannot write the audit log", &error);
                    return false;
                }
                self.size += buf.len() as u64;
                (self.seq, self.prev) = (seq, prev);
                pending.drain(..count);
                AuditCounters::add(&self.counters.0.written, count);
            }
            if !pending.is_empty()
                && let Err(error) = self.rotate()
            {
                // Better an oversized file than no log: rotation is tried again next batch.
                self.failed("cannot rotate the audit log", &error);
                ignore_limit = true;
            }
        }
        true
    }

    /// Syncs the file (at close).
    fn sync(&mut self) {
        if let Some(Err(error)) = self.file.as_ref().map(File::sync_data) {
            self.failed("cannot sync the audit log", &error);
        }
    }

    /// Makes sure `file` is open and is still the file at `path`.
    fn ensure_open(&mut self) -> io::Result<()> {
        if self.file.is_some() {
            if FileId::at(&self.path).is_some_and(|at| at == self.file_id) {
                return Ok(());
            }
            self.file = None;
            let error = io::Error::new(io::ErrorKind::NotFound, "deleted or moved away");
            self.failed("the audit log file is gone; starting it again", &error);
        }
        self.reopen()
    }

    /// Syncs and rotates the file, and opens a new one.
    fn rotate(&mut self) -> io::Result<()> {
        if let Some(file) = self.file.take() {
            file.sync_data()?;
        }
        self.shift()?;
        self.reopen()
    }

    /// Moves `path` to `path.1`, `path.1` to `path.2` and so on, deleting `path.{max_files}`.
    fn shift(&self) -> io::Result<()> {
        if self.max_files == 0 {
            return remove_if_exists(&self.path);
        }
        remove_if_exists(&rotated(&self.path, self.max_files))?;
        for n in (1..self.max_files).rev() {
            match std::fs::rename(rotated(&self.path, n), rotated(&self.path, n + 1)) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))
    }

    /// Opens `path` for appending.
    fn reopen(&mut self) -> io::Result<()> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let metadata = file.metadata()?;
        (self.size, self.file_id) = (metadata.len(), FileId::of(&metadata));
        self.file = Some(file);
        Ok(())
    }

    /// Counts and logs a failed I/O operation.
    fn failed(&self, what: &str, error: &io::Error) {
        let write_errors = AuditCounters::add(&self.counters.0.write_errors, 1);
        tracing::error!(path = %self.path.display(), write_errors, "{what}: {error}");
    }
}

/// The end of a log file.
struct Tail {
    /// Its last complete line, without the newline.
    line: Option<Vec<u8>>,
    /// Whether the file ends in a line without a newline.
    torn: bool,
}

impl Tail {
    /// Reads the end of the file at `path`, backwards until the last complete line is whole;
    /// a missing file has an empty tail.
    fn read(path: &Path) -> io::Result<Self> {
        const CHUNK: u64 = 64 << 10;
        let mut file = match File::open(path) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Ok(Self {
                    line: None,
                    torn: false,
                });
            }
            file => file?,
        };
        let mut start = file.metadata()?.len();
        let mut end = Vec::new();
        // Enough is read once two newlines are in (or the whole file): the last complete line
        // ends at the last newline and starts after the one before.
        while start > 0 && end.iter().filter(|&&b| b == b'\n').count() < 2 {
            let from = start.saturating_sub(CHUNK);
            let mut chunk = vec![0; (start - from) as usize];
            file.seek(SeekFrom::Start(from))?;
            file.read_exact(&mut chunk)?;
            chunk.append(&mut end);
            (end, start) = (chunk, from);
        }
        let torn = end.last().is_some_and(|&b| b != b'\n');
        let line = end.iter().rposition(|&b| b == b'\n').map(|last| {
            let first = end[..last].iter().rposition(|&b| b == b'\n');
            end[first.map_or(0, |at| at + 1)..last].to_vec()
        });
        Ok(Self { line, torn })
    }

    /// The last complete line as a record; an error if it is not a sound one.
    fn last_record(&self, path: &Path) -> io::Result<Option<line::Sealed>> {
        let Some(text) = &self.line else {
            return Ok(None);
        };
        line::open(text).map(Some).map_err(|error| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the last line of {} is not a sound audit record ({error:?}); move the file away to start a new log",
                    path.display()
                ),
            )
        })
    }
}

/// `path.n`.
pub(crate) fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    name.into()
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Which file a path names: its device and inode, read once when the file is opened, so that
/// checking that the path still names it takes one `stat` of the path.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct FileId {
    #[cfg(unix)]
    device: u64,
    #[cfg(unix)]
    inode: u64,
}

impl FileId {
    #[cfg(unix)]
    fn of(metadata: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            device: metadata.dev(),
            inode: metadata.ino(),
        }
    }

    /// Elsewhere, only whether the path exists is checked.
    #[cfg(not(unix))]
    fn of(_metadata: &std::fs::Metadata) -> Self {
        Self {}
    }

    /// The file `path` names now, if any.
    fn at(path: &Path) -> Option<Self> {
        std::fs::metadata(path)
            .ok()
            .map(|metadata| Self::of(&metadata))
    }
}
