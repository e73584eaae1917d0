//! Line numbers of CSV records as the file counts them: the `csv` crate reports byte offsets,
//! so a reader in between records where every newline is, and a record's offset is turned
//! into its line.
//!
//! Invariants: lines count `\n` only (a CRLF export is numbered like its LF twin); the index
//! keeps only the newlines not yet passed, so memory stays bounded on any file size.

use std::io::Read;

/// Offsets of the newlines a reader has passed on, so a record's line can be told exactly.
/// (The csv crate's own line count lags by one after a CRLF terminator: in a Windows export
/// every record after the header would be named one line too early.)
pub(super) struct NewlineIndex<R> {
    inner: R,
    offset: u64,
    seen: std::sync::Arc<std::sync::Mutex<LineCursor>>,
}

/// Newline offsets not yet passed by a record, and how many were passed.
#[derive(Default)]
pub(super) struct LineCursor {
    ahead: std::collections::VecDeque<u64>,
    passed: u64,
}

impl LineCursor {
    /// The 1-based line of a record starting at byte `start` (records come in file order).
    fn line_at(&mut self, start: u64) -> u64 {
        while self.ahead.front().is_some_and(|&o| o <= start) {
            self.ahead.pop_front();
            self.passed += 1;
        }
        self.passed + 1
    }
}

impl<R: Read> NewlineIndex<R> {
    pub(super) fn new(inner: R) -> (Self, std::sync::Arc<std::sync::Mutex<LineCursor>>) {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(LineCursor::default()));
        (
            Self {
                inner,
                offset: 0,
                seen: seen.clone(),
            },
            seen,
        )
    }
}

impl<R: Read> Read for NewlineIndex<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut seen) = self.seen.lock() {
            for (i, b) in buf[..n].iter().enumerate() {
                if *b == b'\n' {
                    seen.ahead.push_back(self.offset + i as u64);
                }
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

pub(super) fn line_of(lines: &std::sync::Mutex<LineCursor>, pos: Option<&csv::Position>) -> u64 {
    match (pos, lines.lock()) {
        (Some(p), Ok(mut c)) => c.line_at(p.byte()),
        (Some(p), Err(_)) => p.line(),
        (None, _) => 0,
    }
}
