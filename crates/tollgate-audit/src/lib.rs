//! A tamper-evident audit log: one JSON object a line, each carrying the hash of the line before
//! it, so that an edited, deleted or reordered record shows up as a break in the chain.
//!
//! The caller (the proxy) decides what a record holds; this crate adds the chain. A record is
//! written as its own JSON object, then the writer's three fields, `hash` last:
//!
//! ```text
//! {"event":"request","route":"chat","seq":41,"prev":"<64 hex>","hash":"<64 hex>"}
//! ```
//!
//! - `seq` counts records from 0, across rotated files and restarts;
//! - `prev` is the `hash` of the record before, or 64 zeros for the first record of a new log;
//! - `hash` is the SHA-256, in lowercase hex, of the line's bytes from its start up to (not
//!   including) `,"hash":`.
//!
//! An edit of a line breaks its own hash; an edit that also recomputes that hash breaks the
//! next line's `prev`; a deleted or moved line breaks the `seq` that follows. [`verify`] walks
//! the files and names the first line where the chain breaks. (Records cut from the *end* of
//! the log leave no break behind: compare the last `seq` with [`AuditCounters::written`] or the
//! gateway's own logs to notice those.)
//!
//! [`AuditLog`] keeps records off the request path: [`AuditLog::record`] only queues the record
//! in a bounded buffer that one thread drains into the file, rotating it by size, and
//! [`AuditLog::record_lazily`] leaves even the serialising to that thread. When the buffer is
//! full the record is refused, counted ([`AuditCounters::dropped`]) and logged, never lost
//! silently.
//!
//! ```no_run
//! use serde_json::json;
//! use tollgate_audit::{AuditLog, AuditOptions, log_files, verify};
//!
//! # async fn example() -> std::io::Result<()> {
//! let log = AuditLog::open("/var/log/tollgate/audit.jsonl", AuditOptions::default())?;
//! log.record(&json!({"event": "request", "route": "chat", "status": 200}));
//! log.close().await;
//!
//! let files = log_files("/var/log/tollgate/audit.jsonl".as_ref());
//! match verify(&files) {
//!     Ok(report) => println!("{} records, seq {:?} to {:?}", report.records, report.first_seq, report.last_seq),
//!     Err(broken) => eprintln!("{broken}"),
//! }
//! # Ok(())
//! # }
//! ```

mod line;
mod record;
mod verify;
mod writer;

pub use record::{LazyRecord, RecordBody};
pub use verify::{ChainBreak, VerifyReport, log_files, verify};
pub use writer::{AuditCounters, AuditLog, AuditOptions};
