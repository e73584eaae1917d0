//! Where a key path (`sheets[1].visuals[0].x`) sits in a dashboard's YAML text, so a problem
//! found after parsing still reads `file:line:column: key.path: message`.
//!
//! Invariants: reads only the text it is given (block-style YAML); a path it cannot find falls
//! back to its deepest ancestor that it can, and to no location only when not even the first
//! key is there.

use std::path::Path;

use crate::yaml::YamlError;

/// Turns `(key path, message)` problems into located errors.
pub fn located(path: &Path, text: &str, problems: Vec<(String, String)>) -> Vec<YamlError> {
    problems
        .into_iter()
        .map(|(key_path, message)| {
            let (line, column) = locate(text, &key_path).unzip();
            YamlError {
                path: path.to_path_buf(),
                line,
                column,
                key_path,
                message,
            }
        })
        .collect()
}

/// Finds the 1-based line and column of a key path (`sheets[0].visuals[2].x`) in block-style
/// YAML. Falls back to the deepest ancestor found; `None` when not even the first key is.
pub fn locate(text: &str, key_path: &str) -> Option<(usize, usize)> {
    enum Seg<'a> {
        Key(&'a str),
        Index(usize),
    }
    let mut segs = Vec::new();
    for part in key_path.split('.') {
        let (key, rest) = part.split_once('[').unwrap_or((part, ""));
        if !key.is_empty() {
            segs.push(Seg::Key(key));
        }
        for idx in rest.split('[') {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                segs.push(Seg::Index(i));
            }
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    // The block being searched: lines [from, to) with content indented more than `parent`.
    let (mut from, mut to, mut parent): (usize, usize, isize) = (0, lines.len(), -1);
    let mut found = None;
    for seg in segs {
        let mut hit = None;
        let mut seen = 0usize;
        let mut item_indent: Option<usize> = None;
        for (n, line) in lines.iter().enumerate().take(to).skip(from) {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - trimmed.len();
            match seg {
                Seg::Key(k) => {
                    // A key directly in this block: first content at this depth, maybe after "- ".
                    let (ind, body) = match trimmed.strip_prefix("- ") {
                        Some(b) if (indent as isize) == parent => (indent + 2, b),
                        _ => (indent, trimmed),
                    };
                    if (ind as isize) > parent
                        && (body.starts_with(&format!("{k}:"))
                            || body.starts_with(&format!("\"{k}\":")))
                    {
                        hit = Some((n, ind));
                        break;
                    }
                }
                Seg::Index(i) => {
                    if trimmed.starts_with("- ") || trimmed == "-" {
                        let first = *item_indent.get_or_insert(indent);
                        if indent == first {
                            if seen == i {
                                hit = Some((n, indent));
                                break;
                            }
                            seen += 1;
                        }
                    }
                }
            }
        }
        let Some((n, ind)) = hit else { break };
        found = Some((n + 1, ind + 1));
        // The block of this node: following lines indented more than it.
        let end = lines
            .iter()
            .enumerate()
            .skip(n + 1)
            .find(|(_, l)| {
                let t = l.trim_start();
                let indent = l.len() - t.len();
                let content = !t.is_empty() && !t.starts_with('#');
                // A key's list may sit at the key's own indent ("key:\n- item").
                let own_list = matches!(seg, Seg::Key(_)) && indent == ind && t.starts_with("- ");
                content && indent <= ind && !own_list
            })
            .map_or(lines.len(), |(m, _)| m);
        from = n;
        to = end;
        parent = ind as isize;
    }
    found
}
