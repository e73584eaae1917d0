//! Parsing a landed file line by line, faithfully: every data line becomes either a raw row
//! (its fields as text, identifiers already treated) or a reject naming line, column and error.
//!
//! polars' CSV reader cannot say which line was ragged or held invalid UTF-8 (it cuts or
//! replaces silently), so lines are split here with the `csv` crate and every field is checked
//! before it is kept. Output arrives in chunks of at most `chunk_rows` rows and rejects, so a
//! file of any size is parsed in bounded memory.
//!
//! Files: [`chunks`](mod@chunks) reads a file chunk by chunk, [`row`] turns one line into a
//! row or a reject, [`lines`] numbers CSV records; this file holds the output types and the
//! [`Parser`] with its header mapping.
//!
//! Invariants: every data line becomes exactly one row or one reject, located by its line
//! in the file; identifiers are treated before a value is stored; memory is bounded by
//! `chunk_rows`, never by the file's size.

mod chunks;
mod lines;
mod row;

use std::io::Read;

use super::mapping::{LookupTable, Mapping, MappingSpec};
use super::parquet::ParquetRows;
use crate::contract::Contract;
use crate::crypto::Pseudonymizer;
use chunks::Source;
use lines::NewlineIndex;
use row::Treat;

pub use chunks::Chunks;

/// Why a line was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    /// More or fewer fields than the header.
    RaggedLine,
    /// Bytes that are not UTF-8.
    InvalidUtf8,
    /// The file's header does not match the contract.
    SchemaDrift,
    /// A JSON line that does not parse or is not an object.
    InvalidJson,
    /// A JSON object with a key the contract does not know.
    UnexpectedField,
    /// A value the pipeline's `source.map` could not compute from (a day that is not a number).
    Unmappable,
}

impl RejectKind {
    /// snake_case name stored in the rejects table.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RaggedLine => "ragged_line",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::SchemaDrift => "schema_drift",
            Self::InvalidJson => "invalid_json",
            Self::UnexpectedField => "unexpected_field",
            Self::Unmappable => "unmappable",
        }
    }
}

/// One rejected line.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    /// 1-based physical line where the record starts.
    pub line: u64,
    /// Error kind.
    pub kind: RejectKind,
    /// Column concerned, when one is.
    pub column: Option<String>,
    /// The error in words (never the line's content: it may hold identifiers in clear).
    pub message: String,
}

/// A chunk of parsed rows: one text vector per raw column, plus line numbers and id issues.
#[derive(Debug, Default)]
pub struct Chunk {
    /// Values per raw column (contract order, dropped columns excluded).
    pub columns: Vec<Vec<Option<String>>>,
    /// Source line of each row.
    pub lines: Vec<i64>,
    /// Identifier checks that failed before pseudonymisation (`contract.<col>.pattern`, ...).
    pub id_issues: Vec<Option<String>>,
    /// Rejected lines in this chunk.
    pub rejects: Vec<Reject>,
}

impl Chunk {
    fn new(width: usize) -> Self {
        Self {
            columns: vec![Vec::new(); width],
            ..Self::default()
        }
    }

    /// Rows kept in this chunk.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether no row was kept.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// Errors that stop parsing a file altogether (I/O); everything else is a reject.
#[derive(Debug, thiserror::Error)]
#[error("reading landed file: {0}")]
pub struct ParseError(#[from] std::io::Error);

/// Parses landed files for one contract.
pub struct Parser<'a> {
    contract: &'a Contract,
    treat: Treat<'a>,
    chunk_rows: usize,
    mapping: Option<(&'a MappingSpec, &'a [LookupTable])>,
}

/// How a file's fields become the contract's source columns.
enum RowMap<'a> {
    /// By name: the field index of each source column.
    Direct(Vec<usize>),
    /// By the pipeline's `source.map`.
    Mapped(Mapping<'a>),
}

impl<'a> Parser<'a> {
    /// A parser for `contract`, pseudonymising with `keys`.
    pub fn new(contract: &'a Contract, keys: &'a Pseudonymizer, chunk_rows: usize) -> Self {
        let patterns = contract
            .source
            .iter()
            .map(|c| c.pattern.as_deref().and_then(|p| regex::Regex::new(p).ok()))
            .collect();
        Self {
            contract,
            treat: Treat::new(keys, patterns),
            chunk_rows: chunk_rows.max(1),
            mapping: None,
        }
    }

    /// Maps files by the pipeline's `source.map` (with its loaded `lookups`) instead of by
    /// column name.
    pub fn with_mapping(mut self, spec: &'a MappingSpec, lookups: &'a [LookupTable]) -> Self {
        self.mapping = Some((spec, lookups));
        self
    }

    /// The mapping of a file with columns `names`, or why it does not fit.
    fn row_map(&'a self, names: &[String]) -> Result<RowMap<'a>, String> {
        match self.mapping {
            Some((spec, lookups)) => {
                let outputs: Vec<String> = self
                    .contract
                    .source
                    .iter()
                    .map(|c| c.name.clone())
                    .collect();
                Mapping::compile(spec, lookups, names, &outputs)
                    .map(RowMap::Mapped)
                    .map_err(|e| format!("source.map does not fit the file: {e}"))
            }
            None => self.map_names(names).map(RowMap::Direct),
        }
    }

    /// The columns a file delivers as far as the contract is concerned: the contract's when
    /// a mapping fits, else the file's own.
    fn delivered_names(&self, names: Vec<String>, map: &Result<RowMap<'a>, String>) -> Vec<String> {
        match map {
            Ok(RowMap::Mapped(_)) => self
                .contract
                .source
                .iter()
                .map(|c| c.name.clone())
                .collect(),
            _ => names,
        }
    }

    /// Starts parsing a parquet file (`bytes`, delivered as `name`); chunks come from
    /// [`Chunks::next_chunk`].
    ///
    /// # Errors
    /// Not a parquet file.
    pub fn parquet<R: Read>(
        &'a self,
        bytes: Vec<u8>,
        name: &str,
    ) -> Result<Chunks<'a, R>, ParseError> {
        let rows = ParquetRows::open(bytes, name, self.chunk_rows)
            .map_err(|e| ParseError(std::io::Error::other(e)))?;
        let map = self.row_map(&rows.header);
        let delivered = Some(self.delivered_names(rows.header.clone(), &map));
        Ok(Chunks {
            parser: self,
            source: Source::Parquet { rows, map, row: 0 },
            done: false,
            delivered,
        })
    }

    fn width(&self) -> usize {
        self.contract.raw_columns().count()
    }

    /// Starts parsing a CSV file; chunks come from [`Chunks::next_chunk`].
    pub fn csv<R: Read>(&'a self, reader: R) -> Chunks<'a, R> {
        let (reader, lines) = NewlineIndex::new(reader);
        let rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(reader);
        Chunks {
            parser: self,
            source: Source::Csv {
                rdr,
                header: None,
                lines,
            },
            done: false,
            delivered: None,
        }
    }

    /// Starts parsing a JSON-lines file; chunks come from [`Chunks::next_chunk`].
    pub fn jsonl<R: Read>(&'a self, reader: R) -> Chunks<'a, R> {
        let source = Source::Jsonl {
            rdr: std::io::BufReader::new(reader),
            line: 0,
        };
        Chunks {
            parser: self,
            source,
            done: false,
            delivered: None,
        }
    }

    /// Maps each source column to its field index (or applies the mapping), or explains the
    /// drift.
    fn map_header(&'a self, header: &csv::ByteRecord) -> Result<RowMap<'a>, String> {
        let mut names = Vec::with_capacity(header.len());
        for (i, raw) in header.iter().enumerate() {
            let raw = if i == 0 {
                raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw)
            } else {
                raw
            };
            match std::str::from_utf8(raw) {
                Ok(s) => names.push(s.trim().to_string()),
                Err(_) => return Err(format!("header field {} is not UTF-8", i + 1)),
            }
        }
        self.row_map(&names)
    }

    /// Maps each source column to the position of its name in `names`, or explains the drift.
    fn map_names(&self, names: &[String]) -> Result<Vec<usize>, String> {
        let missing: Vec<&str> = self
            .contract
            .source
            .iter()
            .filter(|c| !names.iter().any(|n| n == &c.name))
            .map(|c| c.name.as_str())
            .collect();
        let extra: Vec<&str> = names
            .iter()
            .filter(|n| !self.contract.source.iter().any(|c| &c.name == *n))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() || !extra.is_empty() {
            let mut parts = Vec::new();
            if !missing.is_empty() {
                parts.push(format!("missing column(s) {}", missing.join(", ")));
            }
            if !extra.is_empty() {
                parts.push(format!("unexpected column(s) {}", extra.join(", ")));
            }
            return Err(format!(
                "header does not match contract {} v{}: {}",
                self.contract.dataset,
                self.contract.version,
                parts.join("; ")
            ));
        }
        Ok(self
            .contract
            .source
            .iter()
            .map(|c| {
                names
                    .iter()
                    .position(|n| n == &c.name)
                    .unwrap_or(usize::MAX)
            })
            .collect())
    }
}

fn header_names(header: &csv::ByteRecord) -> Vec<String> {
    header
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let raw = if i == 0 {
                raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw)
            } else {
                raw
            };
            String::from_utf8_lossy(raw).trim().to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn contract() -> Contract {
        let raw = crate::yaml::parse(
            Path::new("c.yaml"),
            include_str!("../../../contracts/attendance.yaml"),
        )
        .unwrap();
        crate::contract::validate(raw, Path::new("c.yaml")).unwrap()
    }

    const HEADER: &str = "record_id,student_id,student_name,student_email,course_id,section,session_date,status,minutes_attended,recorded_by,recorded_at\n";

    fn parse(bytes: &[u8]) -> Vec<Chunk> {
        let c = contract();
        let keys = Pseudonymizer::new([1; 32]);
        let p = Parser::new(&c, &keys, 2);
        let mut chunks = p.csv(bytes);
        let mut out = Vec::new();
        while let Some(ch) = chunks.next_chunk().unwrap() {
            out.push(ch);
        }
        out
    }

    #[test]
    fn crlf_exports_name_the_right_lines() {
        // Regression: the csv crate's line count lags by one after a CRLF terminator.
        let mut data = HEADER.replace('\n', "\r\n").into_bytes();
        data.extend_from_slice(b"A1,S000001,Ann Lee,ann@x.edu,MAT101,01,2026-11-02,present,50,T0001,2026-11-02T10:00:00Z\r\n");
        data.extend_from_slice(b"A2,S000002,Bo,bo@x.edu,MAT101,01,2026-11-02,absent,0,T0001\r\n");
        data.extend_from_slice(b"A3,S000003,\"Two\r\nLines\",c@x.edu,MAT101,01,2026-11-02,absent,0,T0001,2026-11-02T10:00:00Z\r\n");
        data.extend_from_slice(b"A4,S000004,Di\r\n");
        let chunks = parse(&data);
        let rejects: Vec<u64> = chunks
            .iter()
            .flat_map(|c| &c.rejects)
            .map(|r| r.line)
            .collect();
        assert_eq!(rejects, [3, 6]);
        let lines: Vec<i64> = chunks.iter().flat_map(|c| c.lines.clone()).collect();
        assert_eq!(lines, [2, 4]);
    }

    #[test]
    fn rows_and_rejects_are_located() {
        let mut data = HEADER.as_bytes().to_vec();
        data.extend_from_slice(b"A1,S000001,Ann Lee,ann@x.edu,MAT101,01,2026-11-02,present,50,T0001,2026-11-02T10:00:00Z\n");
        data.extend_from_slice(b"A2,S000002,Bo,bo@x.edu,MAT101,01,2026-11-02,absent,0,T0001\n");
        data.extend_from_slice(
            b"A3,S000003,Z\xE9,z@x.edu,MAT101,01,2026-11-02,absent,0,T0001,2026-11-02T10:00:00Z\n",
        );
        data.extend_from_slice(b"A4,<S12>,\"Multi\nLine\",m@x.edu,MAT101,01,2026-11-02,late,,T0001,2026-11-02T10:00:00Z\n");
        let chunks = parse(&data);
        let rows: usize = chunks.iter().map(Chunk::len).sum();
        let rejects: Vec<&Reject> = chunks.iter().flat_map(|c| &c.rejects).collect();
        assert_eq!(rows, 2);
        assert_eq!(rejects.len(), 2);
        assert_eq!(
            (rejects[0].line, rejects[0].kind),
            (3, RejectKind::RaggedLine)
        );
        assert_eq!(
            (rejects[1].line, rejects[1].kind),
            (4, RejectKind::InvalidUtf8)
        );
        assert_eq!(rejects[1].column.as_deref(), Some("student_name"));
        let all: Vec<&Chunk> = chunks.iter().filter(|c| !c.is_empty()).collect();
        let last = all.last().unwrap();
        assert_eq!(last.lines.last(), Some(&5));
        // student_id is pseudonymised; names and emails are gone; empty means missing.
        let sid = all[0].columns[1][0].as_deref().unwrap();
        assert!(sid.starts_with("p_") && !sid.contains("000001"));
        assert!(all.iter().all(|c| c.columns.len() == 9));
        assert_eq!(last.columns[6].last().unwrap(), &None);
        assert_eq!(
            last.id_issues.last().unwrap().as_deref(),
            Some("contract.student_id.pattern")
        );
    }

    #[test]
    fn a_repeated_identifier_gets_the_same_pseudonym_and_the_same_check() {
        let mut data = HEADER.as_bytes().to_vec();
        for (i, sid) in ["S000001", " S000001", "<S12>", "S000001", "<S12>"]
            .iter()
            .enumerate()
        {
            data.extend_from_slice(
                format!("A{i},{sid},Ann,a@x.edu,MAT101,01,2026-11-02,present,50,T0001,2026-11-02T10:00:00Z\n")
                    .as_bytes(),
            );
        }
        let chunks = parse(&data);
        let ids: Vec<Option<String>> = chunks.iter().flat_map(|c| c.columns[1].clone()).collect();
        let issues: Vec<Option<String>> = chunks.iter().flat_map(|c| c.id_issues.clone()).collect();
        let keys = Pseudonymizer::new([1; 32]);
        let (good, bad) = (keys.pseudonym("S000001"), keys.pseudonym("<S12>"));
        assert_eq!(
            ids,
            [&good, &good, &bad, &good, &bad].map(|p| Some(p.clone()))
        );
        let pattern = Some("contract.student_id.pattern".to_string());
        assert_eq!(issues, [None, None, pattern.clone(), None, pattern]);
    }

    #[test]
    fn drifted_header_rejects_every_line_with_the_reason() {
        let data = "record_id,student_id,extra\nA1,S000001,x\nA2,S000002,y\n";
        let chunks = parse(data.as_bytes());
        let rejects: Vec<&Reject> = chunks.iter().flat_map(|c| &c.rejects).collect();
        assert_eq!(rejects.len(), 2);
        assert!(rejects.iter().all(|r| r.kind == RejectKind::SchemaDrift));
        assert!(
            rejects[0].message.contains("unexpected column(s) extra"),
            "{}",
            rejects[0].message
        );
        assert!(
            rejects[0]
                .message
                .contains("missing column(s) student_name"),
            "{}",
            rejects[0].message
        );
    }

    #[test]
    fn empty_file_and_bom_and_reordered_columns() {
        assert_eq!(parse(b"").iter().map(Chunk::len).sum::<usize>(), 0);
        let reordered = "\u{feff}student_id,record_id,student_name,student_email,course_id,section,session_date,status,minutes_attended,recorded_by,recorded_at\nS000001,A1,,,MAT101,01,2026-11-02,present,50,T1,2026-11-02T10:00:00Z\n";
        let chunks = parse(reordered.as_bytes());
        let c = chunks.iter().find(|c| !c.is_empty()).unwrap();
        assert_eq!(c.columns[0][0].as_deref(), Some("A1"));
    }

    fn parquet_bytes(batch: deltalake::arrow::array::RecordBatch) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut w = deltalake::parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None)
            .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        buf
    }

    #[test]
    fn parquet_rows_are_matched_by_name_like_csv() {
        use deltalake::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
        use std::sync::Arc;
        let names: Vec<&str> = HEADER.trim().split(',').collect();
        let cols: Vec<ArrayRef> = names
            .iter()
            .map(|n| match *n {
                "minutes_attended" => Arc::new(Int64Array::from(vec![Some(50), None])) as ArrayRef,
                "record_id" => Arc::new(StringArray::from(vec!["A1", "A2"])) as ArrayRef,
                "student_id" => Arc::new(StringArray::from(vec!["S000001", "<bad>"])) as ArrayRef,
                _ => Arc::new(StringArray::from(vec![Some("x"), None])) as ArrayRef,
            })
            .collect();
        let bytes = parquet_bytes(RecordBatch::try_from_iter(names.iter().zip(cols)).unwrap());
        let c = contract();
        let keys = Pseudonymizer::new([1; 32]);
        let p = Parser::new(&c, &keys, 100);
        let mut chunks = p.parquet::<&[u8]>(bytes, "attendance.parquet").unwrap();
        let ch = chunks.next_chunk().unwrap().unwrap();
        assert!(chunks.next_chunk().unwrap().is_none());
        assert_eq!(ch.lines, vec![1, 2]);
        assert!(ch.rejects.is_empty());
        // minutes_attended (raw column 6 after the dropped name and email): text, null kept.
        assert_eq!(ch.columns[6], vec![Some("50".to_string()), None]);
        assert_eq!(
            ch.id_issues[1].as_deref(),
            Some("contract.student_id.pattern")
        );
        assert_eq!(
            chunks.delivered_columns().map(<[String]>::len),
            Some(names.len())
        );
        // A file without the contract's columns: every row a schema_drift reject, located.
        let only = RecordBatch::try_from_iter([(
            "record_id",
            Arc::new(StringArray::from(vec!["A1", "A2", "A3"])) as ArrayRef,
        )])
        .unwrap();
        let mut chunks = p
            .parquet::<&[u8]>(parquet_bytes(only), "x.parquet")
            .unwrap();
        let ch = chunks.next_chunk().unwrap().unwrap();
        let got: Vec<(u64, RejectKind)> = ch.rejects.iter().map(|r| (r.line, r.kind)).collect();
        assert_eq!(
            got,
            vec![
                (1, RejectKind::SchemaDrift),
                (2, RejectKind::SchemaDrift),
                (3, RejectKind::SchemaDrift)
            ]
        );
        assert!(ch.rejects[0].message.contains("missing column(s)"));
        // Not parquet at all: an error naming why, not a panic.
        assert!(p
            .parquet::<&[u8]>(b"not parquet".to_vec(), "y.parquet")
            .is_err());
    }

    #[test]
    fn jsonl_lines_are_parsed_or_rejected() {
        let c = contract();
        let keys = Pseudonymizer::new([1; 32]);
        let p = Parser::new(&c, &keys, 100);
        let data = b"{\"record_id\":\"A1\",\"student_id\":\"S000001\",\"minutes_attended\":45}\nnot json\n{\"record_id\":\"A2\",\"bogus\":1}\n";
        let mut chunks = p.jsonl(&data[..]);
        let mut out = Vec::new();
        while let Some(ch) = chunks.next_chunk().unwrap() {
            out.push(ch);
        }
        assert_eq!(out[0].len(), 1);
        assert_eq!(out[0].columns[6][0].as_deref(), Some("45"));
        let kinds: Vec<RejectKind> = out[0].rejects.iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            vec![RejectKind::InvalidJson, RejectKind::UnexpectedField]
        );
    }
}
