//! The interactive SQL shell of `medallion query` (no SQL given): a `rustyline` editor with
//! arrow-key editing, reverse history search (Ctrl-R), multi-line statements and tab completion
//! of `<stage>.<table>` names, column names and SQL keywords from the catalog.
//!
//! A statement runs once its last token outside strings and comments is `;`; a line starting
//! with `\` is a command and is always one line. History is the file the shell always kept
//! (`.medallion/query_history`): the old one-statement-per-line files load as they are, and
//! rustyline rewrites them in its own format (newlines escaped) on the first new statement.
//! Only statements enter the history, never commands. When stdin is not a terminal (a pipe),
//! rustyline reads plain lines and applies the same statement rules, with no prompt.

//!
//! [`complete`] holds the completion and validation helper.

mod complete;

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use rustyline::config::{CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::Editor;

use super::query::render;
use super::{Exit, QueryFormat};
use crate::catalog::TableEntry;
use crate::query::Engine;
use complete::SqlHelper;

const HELP: &str = "\\tables, \\describe TABLE, \\history, \\N (rerun N), \\q";
/// History entries kept (rustyline's default is 100).
const HISTORY_SIZE: usize = 10_000;
/// Runs the shell until `\q` or end of input.
///
/// # Errors
/// When the terminal or `out` cannot be written.
pub(super) async fn run(
    engine: &Engine,
    entries: &[TableEntry],
    format: QueryFormat,
    history_file: &Path,
    out: &mut dyn Write,
) -> Result<Exit> {
    writeln!(
        out,
        "medallion SQL ({} tables). End statements with `;`; Tab completes, Ctrl-R searches history. {HELP} to quit.",
        engine.tables.len()
    )?;
    let config = Config::builder()
        .max_history_size(HISTORY_SIZE)?
        .history_ignore_dups(false)?
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .build();
    let mut rl: Editor<SqlHelper, DefaultHistory> = Editor::with_config(config)?;
    let registered: Vec<TableEntry> = entries
        .iter()
        .filter(|e| engine.tables.contains(&e.table))
        .cloned()
        .collect();
    rl.set_helper(Some(SqlHelper::new(&registered)));
    if history_file.exists() {
        if let Err(e) = rl.load_history(history_file) {
            tracing::warn!(file = %history_file.display(), "Cannot read the query history: {e}");
        }
    }
    loop {
        out.flush()?;
        let input = match rl.readline("medallion> ") {
            Ok(s) => s,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let t = input.trim();
        if t.is_empty() {
            continue;
        }
        if t.starts_with('\\') {
            let mut words = t.split_whitespace();
            match (words.next(), words.next()) {
                (Some("\\q"), _) => break,
                (Some("\\tables"), _) => {
                    for name in &engine.tables {
                        writeln!(out, "{name}")?;
                    }
                }
                (Some("\\describe"), Some(table)) => {
                    match engine.sql(&format!("SELECT * FROM {table} LIMIT 0")).await {
                        Ok((schema, _)) => {
                            for f in schema.fields() {
                                writeln!(out, "{:<28} {}", f.name(), f.data_type())?;
                            }
                        }
                        Err(e) => writeln!(out, "error: {e}")?,
                    }
                }
                (Some("\\history"), _) => {
                    for (i, h) in rl.history().iter().enumerate() {
                        writeln!(out, "{:>4}  {}", i + 1, one_line(h))?;
                    }
                }
                (Some(cmd), _) if cmd[1..].parse::<usize>().is_ok() => {
                    let n = cmd[1..].parse::<usize>().unwrap_or(0);
                    let Some(sql) = n
                        .checked_sub(1)
                        .and_then(|i| rl.history().iter().nth(i))
                        .cloned()
                    else {
                        writeln!(out, "no statement {n} in \\history")?;
                        continue;
                    };
                    writeln!(out, "{}", one_line(&sql))?;
                    execute(engine, &sql, format, out).await?;
                }
                _ => writeln!(out, "unknown command; try {HELP}")?,
            }
            continue;
        }
        rl.add_history_entry(t)?;
        if let Some(dir) = history_file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = rl.append_history(history_file) {
            tracing::warn!(file = %history_file.display(), "Cannot write the query history: {e}");
        }
        execute(engine, t, format, out).await?;
    }
    Ok(Exit::Ok)
}

/// Runs one statement and prints its result or its error.
async fn execute(
    engine: &Engine,
    sql: &str,
    format: QueryFormat,
    out: &mut dyn Write,
) -> Result<()> {
    match engine.sql(sql).await {
        Ok((schema, batches)) => render(&schema, &batches, format, out)?,
        Err(e) => writeln!(out, "error: {e}")?,
    }
    Ok(())
}

/// A statement on one line for `\\history`, whitespace folded, without its final `;` (the
/// statement itself runs as typed, so a `--` comment in it stays a one-line comment).
fn one_line(sql: &str) -> String {
    sql.trim()
        .trim_end_matches(';')
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `input` is ready to run: blank, a `\` command, or SQL whose last token outside
/// strings and comments is `;`.
fn is_complete(input: &str) -> bool {
    enum In {
        Code,
        Quote(char),
        LineComment,
        BlockComment,
    }
    let t = input.trim_start();
    if t.is_empty() || t.starts_with('\\') {
        return true;
    }
    let mut state = In::Code;
    let mut last = None;
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        match state {
            In::Code => match c {
                '\'' | '"' => {
                    state = In::Quote(c);
                    last = Some(c);
                }
                '-' if chars.peek() == Some(&'-') => state = In::LineComment,
                '/' if chars.peek() == Some(&'*') => {
                    chars.next();
                    state = In::BlockComment;
                }
                c if c.is_whitespace() => {}
                c => last = Some(c),
            },
            In::Quote(q) if c == q => state = In::Code,
            In::Quote(_) => {}
            In::LineComment if c == '\n' => state = In::Code,
            In::LineComment => {}
            In::BlockComment if c == '*' && chars.peek() == Some(&'/') => {
                chars.next();
                state = In::Code;
            }
            In::BlockComment => {}
        }
    }
    matches!(state, In::Code | In::LineComment) && last == Some(';')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_end_with_a_semicolon_outside_strings_and_comments() {
        assert!(is_complete(""));
        assert!(is_complete("\\tables"));
        assert!(is_complete("SELECT 1;"));
        assert!(is_complete("SELECT 1\n  FROM t;\n"));
        assert!(is_complete("SELECT 1; -- done"));
        assert!(is_complete("SELECT ';' /* ; */;"));
        assert!(!is_complete("SELECT 1"));
        assert!(!is_complete("SELECT 'a;"));
        assert!(!is_complete("SELECT 1 -- not yet;"));
        assert!(!is_complete("SELECT 1 /* ; */"));
        assert!(!is_complete("SELECT 1 /* ;"));
    }

    #[test]
    fn history_lines_fold_whitespace_and_drop_the_semicolon() {
        assert_eq!(
            one_line("SELECT count(*) AS n\n  FROM trusted.courses;"),
            "SELECT count(*) AS n FROM trusted.courses"
        );
    }
}
