//! [`Chunks`]: a landed file (CSV, JSON lines or parquet) read chunk by chunk, each line
//! turned into a raw row or a reject.
//!
//! Invariants: a chunk holds at most `chunk_rows` rows and rejects; every data line ends up in
//! exactly one chunk, as a row or a reject, in file order; the header is read once, before the
//! first data line, and a header the contract cannot map rejects every line with the reason.

use std::io::{BufRead, Read};

use super::lines::{line_of, LineCursor, NewlineIndex};
use super::{header_names, Chunk, ParseError, Parser, Reject, RejectKind, RowMap};
use crate::stage::parquet::ParquetRows;

pub(super) enum Source<'a, R: Read> {
    Csv {
        rdr: csv::Reader<NewlineIndex<R>>,
        /// Field count and column mapping (or the drift message), once the header is read.
        header: Option<(usize, Result<RowMap<'a>, String>)>,
        /// Newlines read so far (exact line numbers).
        lines: std::sync::Arc<std::sync::Mutex<LineCursor>>,
    },
    Jsonl {
        rdr: std::io::BufReader<R>,
        line: u64,
    },
    Parquet {
        rows: ParquetRows,
        /// Column mapping (or the drift message).
        map: Result<RowMap<'a>, String>,
        /// Rows read so far.
        row: u64,
    },
}

/// A landed file being parsed, chunk by chunk (bounded memory).
pub struct Chunks<'a, R: Read> {
    pub(super) parser: &'a Parser<'a>,
    pub(super) source: Source<'a, R>,
    pub(super) done: bool,
    pub(super) delivered: Option<Vec<String>>,
}

impl<R: Read> Chunks<'_, R> {
    /// The column names of a CSV file's header (trimmed, BOM removed, invalid UTF-8
    /// replaced), once the first chunk has been read; `None` for JSON lines.
    pub fn delivered_columns(&self) -> Option<&[String]> {
        self.delivered.as_deref()
    }

    /// The next chunk of at most `chunk_rows` rows and rejects, `None` at the end.
    ///
    /// # Errors
    /// I/O errors; bad lines are rejects, never errors.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, ParseError> {
        if self.done {
            return Ok(None);
        }
        let p = self.parser;
        let mut chunk = Chunk::new(p.width());
        let full = |c: &Chunk| c.len() + c.rejects.len() >= p.chunk_rows;
        match &mut self.source {
            Source::Csv { rdr, header, lines } => {
                let mut rec = csv::ByteRecord::new();
                if header.is_none() {
                    match rdr.read_byte_record(&mut rec) {
                        Ok(true) => {
                            let map = p.map_header(&rec);
                            self.delivered = Some(p.delivered_names(header_names(&rec), &map));
                            *header = Some((rec.len(), map));
                        }
                        Ok(false) => {
                            self.done = true;
                            return Ok(None);
                        }
                        Err(e) => return Err(ParseError(std::io::Error::other(e))),
                    }
                }
                let Some((width, mapping)) = header.as_ref() else {
                    return Ok(None);
                };
                while !full(&chunk) {
                    match rdr.read_byte_record(&mut rec) {
                        Ok(true) => {}
                        Ok(false) => {
                            self.done = true;
                            break;
                        }
                        Err(e) => {
                            if let csv::ErrorKind::Io(_) = e.kind() {
                                return Err(ParseError(std::io::Error::other(e)));
                            }
                            let line = line_of(lines, e.position());
                            chunk.rejects.push(Reject {
                                line,
                                kind: RejectKind::RaggedLine,
                                column: None,
                                message: e.to_string(),
                            });
                            continue;
                        }
                    }
                    let line = line_of(lines, rec.position());
                    match mapping {
                        Err(message) => chunk.rejects.push(Reject {
                            line,
                            kind: RejectKind::SchemaDrift,
                            column: None,
                            message: message.clone(),
                        }),
                        Ok(map) => p.csv_row(&rec, *width, map, line, &mut chunk),
                    }
                }
            }
            Source::Jsonl { rdr, line } => {
                let mut buf = Vec::new();
                while !full(&chunk) {
                    buf.clear();
                    let n = rdr.read_until(b'\n', &mut buf)?;
                    if n == 0 {
                        self.done = true;
                        break;
                    }
                    *line += 1;
                    let text = buf.strip_suffix(b"\n").unwrap_or(&buf);
                    let text = text.strip_suffix(b"\r").unwrap_or(text);
                    if text.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    p.json_row(text, *line, &mut chunk);
                }
            }
            Source::Parquet { rows, map, row } => {
                let Some(batch) = rows
                    .next_batch()
                    .map_err(|e| ParseError(std::io::Error::other(e)))?
                else {
                    self.done = true;
                    return Ok(None);
                };
                match batch {
                    Err((column, message, n)) => {
                        for _ in 0..n {
                            *row += 1;
                            chunk.rejects.push(Reject {
                                line: *row,
                                kind: RejectKind::SchemaDrift,
                                column: Some(column.clone()),
                                message: message.clone(),
                            });
                        }
                    }
                    Ok(columns) => {
                        let n = columns.first().map_or(0, Vec::len);
                        for i in 0..n {
                            *row += 1;
                            let fields: Vec<Option<&str>> =
                                columns.iter().map(|c| c[i].as_deref()).collect();
                            match map {
                                Err(message) => chunk.rejects.push(Reject {
                                    line: *row,
                                    kind: RejectKind::SchemaDrift,
                                    column: None,
                                    message: message.clone(),
                                }),
                                Ok(RowMap::Mapped(m)) => p.mapped_row(m, &fields, *row, &mut chunk),
                                Ok(RowMap::Direct(idx)) => {
                                    let values: Vec<Option<&str>> = idx
                                        .iter()
                                        .map(|&fi| fields.get(fi).copied().flatten())
                                        .collect();
                                    p.keep(&values, *row, &mut chunk);
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(Some(chunk))
    }
}
