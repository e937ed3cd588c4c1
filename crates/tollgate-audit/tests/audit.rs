//! Tests of the audit log through its public API: the chain as written, tampering caught by
//! `verify`, rotation, reopening, overflow, concurrency and I/O errors.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tollgate_audit::{
    AuditLog, AuditOptions, ChainBreak, LazyRecord, RecordBody, log_files, verify,
};

/// A directory of its own for one test, removed afterwards.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("tollgate-audit-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn log(&self) -> PathBuf {
        self.0.join("audit.jsonl")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `n` records `{"event":"request","n":i}` to a fresh log and closes it.
async fn write_log(path: &Path, n: u64, options: AuditOptions) -> AuditLog {
    let log = AuditLog::open(path, options).unwrap();
    for i in 0..n {
        assert!(log.record(&json!({"event": "request", "n": i})));
    }
    log.close().await;
    log
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

fn field(line: &str, name: &str) -> Value {
    serde_json::from_str::<Value>(line).unwrap()[name].clone()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Recomputes a line's hash, as a careful forger would.
fn rehash(line: &str) -> String {
    let at = line.rfind(",\"hash\":").unwrap();
    let prefix = &line[..at];
    format!("{prefix},\"hash\":\"{}\"}}", sha256_hex(prefix.as_bytes()))
}

fn broken(path: &Path) -> ChainBreak {
    verify(&[path.to_owned()]).unwrap_err()
}

async fn eventually(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn a_fresh_log_starts_at_seq_0_with_a_zero_prev_and_verifies() {
    let dir = TempDir::new("fresh");
    let log = write_log(&dir.log(), 100, AuditOptions::default()).await;
    assert_eq!(
        (log.written(), log.dropped(), log.write_errors()),
        (100, 0, 0)
    );

    let lines = lines(&dir.log());
    assert_eq!(lines.len(), 100);
    let zeros = "0".repeat(64);
    let prefix = format!(r#"{{"event":"request","n":0,"seq":0,"prev":"{zeros}""#);
    let hash = sha256_hex(prefix.as_bytes());
    assert_eq!(lines[0], format!(r#"{prefix},"hash":"{hash}"}}"#));
    assert_eq!(field(&lines[1], "prev"), hash.as_str());
    assert_eq!(field(&lines[99], "seq"), 99);

    let report = verify(&[dir.log()]).unwrap();
    assert_eq!(
        (
            report.records,
            report.files,
            report.first_seq,
            report.last_seq
        ),
        (100, 1, Some(0), Some(99))
    );
}

#[tokio::test]
async fn an_edited_line_is_caught_at_that_line() {
    let dir = TempDir::new("edited");
    write_log(&dir.log(), 10, AuditOptions::default()).await;
    let mut lines = lines(&dir.log());
    lines[6] = lines[6].replace(r#""n":6"#, r#""n":60"#);
    write_lines(&dir.log(), &lines);

    let broken = broken(&dir.log());
    assert_eq!((broken.file, broken.line), (dir.log(), 7));
    assert_eq!(
        broken.reason,
        "line 7 was edited: its hash does not match its content"
    );
}

#[tokio::test]
async fn an_edited_and_rehashed_line_is_caught_at_the_next_line() {
    let dir = TempDir::new("rehashed");
    write_log(&dir.log(), 10, AuditOptions::default()).await;
    let mut lines = lines(&dir.log());
    lines[6] = rehash(&lines[6].replace(r#""n":6"#, r#""n":60"#));
    write_lines(&dir.log(), &lines);

    let broken = broken(&dir.log());
    assert_eq!(broken.line, 8);
    assert!(
        broken
            .reason
            .starts_with("line 8 does not follow line 7: its prev is not the hash of line 7"),
        "{}",
        broken.reason
    );
}

#[tokio::test]
async fn a_deleted_line_is_caught_where_it_was() {
    let dir = TempDir::new("deleted");
    write_log(&dir.log(), 10, AuditOptions::default()).await;
    let mut lines = lines(&dir.log());
    lines.remove(4);
    write_lines(&dir.log(), &lines);

    let broken = broken(&dir.log());
    assert_eq!(broken.line, 5);
    assert_eq!(
        broken.reason,
        "line 5 does not follow line 4: a record was deleted or moved (seq 4 expected, 5 found)"
    );
}

#[tokio::test]
async fn swapped_lines_are_caught_at_the_first_of_them() {
    let dir = TempDir::new("swapped");
    write_log(&dir.log(), 10, AuditOptions::default()).await;
    let mut lines = lines(&dir.log());
    lines.swap(2, 3);
    write_lines(&dir.log(), &lines);

    let broken = broken(&dir.log());
    assert_eq!(broken.line, 3);
    assert!(
        broken.reason.contains("(seq 2 expected, 3 found)"),
        "{}",
        broken.reason
    );
}

#[tokio::test]
async fn a_cut_off_last_line_is_reported_as_cut_off() {
    let dir = TempDir::new("cut");
    write_log(&dir.log(), 10, AuditOptions::default()).await;
    let text = std::fs::read(dir.log()).unwrap();
    std::fs::write(dir.log(), &text[..text.len() - 30]).unwrap();

    let broken = broken(&dir.log());
    assert_eq!(broken.line, 10);
    assert!(
        broken.reason.starts_with("line 10 is cut off (no newline)"),
        "{}",
        broken.reason
    );
    assert!(
        broken
            .to_string()
            .contains("audit.jsonl: line 10 is cut off")
    );
}

#[tokio::test]
async fn a_line_that_is_not_json_is_named() {
    let dir = TempDir::new("garbage");
    write_log(&dir.log(), 5, AuditOptions::default()).await;
    let mut lines = lines(&dir.log());
    lines[2] = "garbage".to_owned();
    write_lines(&dir.log(), &lines);
    assert_eq!(broken(&dir.log()).reason, "line 3 is not JSON");
}

#[tokio::test]
async fn rotation_keeps_max_files_and_the_chain_runs_across_files() {
    let dir = TempDir::new("rotation");
    let options = AuditOptions {
        max_bytes: 1000,
        max_files: 3,
        buffer: 1000,
    };
    let log = AuditLog::open(dir.log(), options).unwrap();
    // Some batches of one record, then one batch that rotates several times by itself.
    for i in 0..20 {
        assert!(log.record(&json!({"event": "request", "n": i})));
        tokio::task::yield_now().await;
    }
    for i in 20..100 {
        assert!(log.record(&json!({"event": "request", "n": i})));
    }
    log.close().await;
    assert_eq!((log.written(), log.write_errors()), (100, 0));

    let files = log_files(&dir.log());
    let rotated = |n: usize| PathBuf::from(format!("{}.{n}", dir.log().display()));
    assert_eq!(files, [rotated(3), rotated(2), rotated(1), dir.log()]);
    assert!(!rotated(4).exists());
    for file in &files {
        assert!(std::fs::metadata(file).unwrap().len() <= 1000);
    }

    let report = verify(&files).unwrap();
    assert_eq!((report.files, report.last_seq), (4, Some(99)));
    let first_seq = report.first_seq.unwrap();
    assert!(first_seq > 0, "the oldest files were rotated away");
    assert_eq!(report.records, 100 - first_seq);

    // Across a boundary: the first record of a file follows the last one of the file before.
    let (older, newer) = (lines(&rotated(2)), lines(&rotated(1)));
    let (last, first) = (older.last().unwrap(), &newer[0]);
    assert_eq!(field(first, "prev"), field(last, "hash"));
    assert_eq!(
        field(first, "seq").as_u64().unwrap(),
        field(last, "seq").as_u64().unwrap() + 1
    );

    // Deleting a middle file breaks the chain at the start of the next one.
    let broken = verify(&[rotated(3), rotated(1), dir.log()]).unwrap_err();
    assert_eq!((broken.file, broken.line), (rotated(1), 1));
    assert!(
        broken.reason.contains("does not follow the last line of"),
        "{}",
        broken.reason
    );
}

#[tokio::test]
async fn reopening_continues_the_chain() {
    let dir = TempDir::new("reopen");
    write_log(&dir.log(), 5, AuditOptions::default()).await;
    let log = AuditLog::open(dir.log(), AuditOptions::default()).unwrap();
    assert!(log.record(&json!({"event": "restart"})));
    log.close().await;

    let lines = lines(&dir.log());
    assert_eq!(field(&lines[5], "seq"), 5);
    assert_eq!(field(&lines[5], "prev"), field(&lines[4], "hash"));
    assert_eq!(verify(&[dir.log()]).unwrap().records, 6);
}

#[tokio::test]
async fn a_torn_last_line_is_left_in_place_and_the_chain_goes_on_from_the_line_before() {
    let dir = TempDir::new("torn");
    write_log(&dir.log(), 5, AuditOptions::default()).await;
    let text = std::fs::read(dir.log()).unwrap();
    std::fs::write(dir.log(), &text[..text.len() - 20]).unwrap(); // crash while writing seq 4

    let log = AuditLog::open(dir.log(), AuditOptions::default()).unwrap();
    assert!(log.record(&json!({"event": "restart"})));
    log.close().await;

    let old = PathBuf::from(format!("{}.1", dir.log().display()));
    assert_eq!(std::fs::read(&old).unwrap(), &text[..text.len() - 20]);
    let new = lines(&dir.log());
    assert_eq!(new.len(), 1);
    assert_eq!(field(&new[0], "seq"), 4);
    assert_eq!(field(&new[0], "prev"), field(&lines(&old)[3], "hash"));

    let broken = verify(&log_files(&dir.log())).unwrap_err();
    assert_eq!((broken.file, broken.line), (old, 5));
    assert!(broken.reason.contains("cut off"), "{}", broken.reason);
    assert_eq!(verify(&[dir.log()]).unwrap().first_seq, Some(4));
}

#[tokio::test]
async fn a_full_buffer_refuses_and_counts_records() {
    let dir = TempDir::new("overflow");
    let options = AuditOptions {
        buffer: 4,
        ..AuditOptions::default()
    };
    let log = AuditLog::open(dir.log(), options).unwrap();
    // The writer takes a record off the queue now and then, but far slower than this loop
    // offers them (it lets each batch gather for a while).
    let accepted = (0..10_000).filter(|i| log.record(&json!({"n": i}))).count() as u64;
    assert!((4..1_000).contains(&accepted), "{accepted} accepted");
    assert_eq!(log.dropped(), 10_000 - accepted);
    log.close().await;
    assert_eq!(log.written(), accepted);
    assert_eq!(log.written() + log.dropped(), 10_000);
    assert_eq!(verify(&[dir.log()]).unwrap().records, accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_records_are_each_written_once_in_one_chain() {
    let dir = TempDir::new("concurrent");
    let options = AuditOptions {
        max_bytes: 64 << 10,
        ..AuditOptions::default()
    };
    let log = Arc::new(AuditLog::open(dir.log(), options).unwrap());
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..500 {
                    assert!(log.record(&json!({"task": task, "i": i})));
                    if i % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    log.close().await;
    assert_eq!((log.written(), log.dropped()), (4000, 0));

    let files = log_files(&dir.log());
    assert!(files.len() > 1, "the log rotated");
    let report = verify(&files).unwrap();
    assert_eq!((report.records, report.first_seq), (4000, Some(0)));
    let seen: BTreeSet<(u64, u64)> = files
        .iter()
        .flat_map(|file| lines(file))
        .map(|line| {
            let value: Value = serde_json::from_str(&line).unwrap();
            (
                value["task"].as_u64().unwrap(),
                value["i"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen.len(), 4000);
}

#[tokio::test]
async fn a_removed_directory_counts_write_errors_and_the_writer_recovers() {
    let dir = TempDir::new("removed");
    let sub = dir.0.join("logs");
    std::fs::create_dir(&sub).unwrap();
    let path = sub.join("audit.jsonl");
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    assert!(log.record(&json!({"n": 0})));
    eventually("the first record", || log.written() == 1).await;

    std::fs::remove_dir_all(&sub).unwrap();
    assert!(log.record(&json!({"n": 1})));
    eventually("a write error", || log.write_errors() > 0).await;
    assert_eq!(log.written(), 1);

    // The record is kept and written once the file can be created again.
    std::fs::create_dir(&sub).unwrap();
    assert!(log.record(&json!({"n": 2})));
    log.close().await;
    assert_eq!((log.written(), log.dropped()), (3, 0));
    let lines = lines(&path);
    assert_eq!(field(&lines[0], "seq"), 1);
    assert_eq!(verify(&[path]).unwrap().records, 2);
}

#[tokio::test]
async fn records_unwritable_at_close_are_counted_as_dropped() {
    let dir = TempDir::new("lost");
    let sub = dir.0.join("logs");
    std::fs::create_dir(&sub).unwrap();
    let log = AuditLog::open(sub.join("audit.jsonl"), AuditOptions::default()).unwrap();
    std::fs::remove_dir_all(&sub).unwrap();
    for i in 0..3 {
        assert!(log.record(&json!({"n": i})));
    }
    log.close().await;
    assert!(log.write_errors() > 0);
    assert_eq!((log.written(), log.dropped()), (0, 3));
}

#[tokio::test]
async fn records_that_are_not_plain_objects_and_records_after_close_are_refused() {
    let dir = TempDir::new("refused");
    let log = AuditLog::open(dir.log(), AuditOptions::default()).unwrap();
    assert!(!log.record(&json!([1, 2])));
    assert!(!log.record(&json!({"seq": 7})));
    assert!(log.record(&json!({})));
    log.close().await;
    assert!(!log.record(&json!({"late": true})));
    log.close().await;
    assert_eq!((log.written(), log.dropped()), (1, 3));

    let lines = lines(&dir.log());
    assert!(
        lines[0].starts_with(r#"{"seq":0,"prev":"000"#),
        "{}",
        lines[0]
    );
    assert_eq!(verify(&[dir.log()]).unwrap().records, 1);
}

/// A record made on the writer thread from a value: `{"event":"lazy","n":N}`, or the value
/// itself when it is not a number.
struct Lazy(Value);

impl LazyRecord for Lazy {
    fn body(self: Box<Self>) -> RecordBody {
        match self.0.as_u64() {
            Some(n) => RecordBody::of(
                &json!({"event": "lazy", "n": n, "thread": std::thread::current().name()}),
            ),
            None => RecordBody::of(&self.0),
        }
    }
}

#[tokio::test]
async fn lazy_records_are_made_by_the_writer_in_queue_order_and_bad_ones_are_counted() {
    let dir = TempDir::new("lazy");
    let log = AuditLog::open(dir.log(), AuditOptions::default()).unwrap();
    assert!(log.record(&json!({"n": 0})));
    assert!(log.record_lazily(Box::new(Lazy(json!(1)))));
    assert!(log.record_lazily(Box::new(Lazy(json!([1, 2])))));
    assert!(log.record_lazily(Box::new(Lazy(json!({"hash": "x"})))));
    assert!(log.record(&json!({"n": 2})));
    log.close().await;
    assert!(!log.record_lazily(Box::new(Lazy(json!(3)))));
    assert_eq!((log.written(), log.dropped()), (3, 3));

    let lines = lines(&dir.log());
    let numbers: Vec<Value> = lines.iter().map(|line| field(line, "n")).collect();
    assert_eq!(numbers, [json!(0), json!(1), json!(2)]);
    assert_eq!(field(&lines[1], "event"), "lazy");
    assert_eq!(field(&lines[1], "thread"), "tg-audit");
    assert_eq!(verify(&[dir.log()]).unwrap().records, 3);
}

#[tokio::test]
async fn dropping_the_log_without_closing_writes_what_was_queued() {
    let dir = TempDir::new("dropped");
    let log = AuditLog::open(dir.log(), AuditOptions::default()).unwrap();
    let counters = log.counters();
    assert!(log.record(&json!({"n": 0})));
    drop(log);
    eventually("the queued record", || counters.written() == 1).await;
    assert_eq!(verify(&[dir.log()]).unwrap().records, 1);
}

#[tokio::test]
async fn opening_a_log_whose_last_line_was_edited_fails() {
    let dir = TempDir::new("tampered");
    write_log(&dir.log(), 3, AuditOptions::default()).await;
    let mut lines = lines(&dir.log());
    lines[2] = lines[2].replace(r#""n":2"#, r#""n":20"#);
    write_lines(&dir.log(), &lines);
    let error = AuditLog::open(dir.log(), AuditOptions::default()).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
}
