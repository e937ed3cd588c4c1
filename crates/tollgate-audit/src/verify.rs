//! The verifier: walks the files of a log, oldest first, and names the first broken link.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::line::{self, GENESIS, LineError};
use crate::writer::rotated;

/// What a sound log holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records checked.
    pub records: u64,
    /// Files checked.
    pub files: usize,
    /// The `seq` of the first record, if any (above 0 when older files were rotated away).
    pub first_seq: Option<u64>,
    /// The `seq` of the last record, if any.
    pub last_seq: Option<u64>,
}

/// Where and why the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", file.display())]
pub struct ChainBreak {
    /// The file holding the broken line.
    pub file: PathBuf,
    /// The broken line, from 1; 0 when the file itself cannot be read.
    pub line: u64,
    /// What is wrong, for a human.
    pub reason: String,
}

/// The files of the log at `path` that exist, oldest first: `path.N` … `path.1`, then `path`
/// (the order [`verify`] needs; a shell glob would put `path.10` before `path.2`).
pub fn log_files(path: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (1..)
        .map(|n| rotated(path, n))
        .take_while(|file| file.exists())
        .collect();
    files.reverse();
    files.push(path.to_owned());
    files
}

/// Checks the chain through `paths`, given oldest first (`audit.jsonl.2 audit.jsonl.1
/// audit.jsonl`); an empty file is fine.
///
/// Every line must be a record whose hash matches its content, whose `seq` is one more than
/// the line before's and whose `prev` is that line's `hash`, across file boundaries too. The
/// first record is taken as it is (older files may have been rotated away), except that a log
/// starting at `seq` 0 must start with a `prev` of 64 zeros.
pub fn verify(paths: &[PathBuf]) -> Result<VerifyReport, ChainBreak> {
    let mut report = VerifyReport {
        records: 0,
        files: 0,
        first_seq: None,
        last_seq: None,
    };
    // The last record seen: its file's index, line, seq and hash.
    let mut last: Option<(usize, u64, u64, line::Hash)> = None;
    for (index, path) in paths.iter().enumerate() {
        let broken = |number: u64, reason: String| ChainBreak {
            file: path.clone(),
            line: number,
            reason,
        };
        let mut reader = File::open(path)
            .map(BufReader::new)
            .map_err(|error| broken(0, format!("cannot be read: {error}")))?;
        let mut text = Vec::new();
        let mut number = 0;
        loop {
            text.clear();
            let read = reader
                .read_until(b'\n', &mut text)
                .map_err(|error| broken(number + 1, format!("cannot be read: {error}")))?;
            if read == 0 {
                break;
            }
            number += 1;
            if text.pop() != Some(b'\n') {
                return Err(broken(
                    number,
                    format!(
                        "line {number} is cut off (no newline): the write stopped midway, or the file was truncated"
                    ),
                ));
            }
            let record = line::open(&text).map_err(|error| {
                broken(
                    number,
                    match error {
                        LineError::NotJson => format!("line {number} is not JSON"),
                        LineError::NotARecord => format!(
                            "line {number} is not an audit record: it does not end with seq, prev and hash"
                        ),
                        LineError::Edited => format!(
                            "line {number} was edited: its hash does not match its content"
                        ),
                    },
                )
            })?;
            match last {
                None if record.seq == 0 && record.prev != GENESIS => {
                    return Err(broken(
                        number,
                        format!(
                            "line {number} starts the log (seq 0) but its prev is not 64 zeros"
                        ),
                    ));
                }
                None => {}
                Some((file, line, seq, hash)) => {
                    let before = if file == index {
                        format!("line {line}")
                    } else {
                        format!("the last line of {}", paths[file].display())
                    };
                    let expected = seq.wrapping_add(1);
                    if record.seq != expected {
                        return Err(broken(
                            number,
                            format!(
                                "line {number} does not follow {before}: a record was deleted or moved (seq {expected} expected, {} found)",
                                record.seq
                            ),
                        ));
                    }
                    if record.prev != hash {
                        return Err(broken(
                            number,
                            format!(
                                "line {number} does not follow {before}: its prev is not the hash of {before}, which was changed and re-hashed (or this line was replaced)"
                            ),
                        ));
                    }
                }
            }
            last = Some((index, number, record.seq, record.hash));
            report.records += 1;
            report.first_seq.get_or_insert(record.seq);
            report.last_seq = Some(record.seq);
        }
        report.files += 1;
    }
    Ok(report)
}
