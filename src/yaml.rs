//! Loading YAML files into typed structs with precise error locations.
//!
//! Every YAML file the project reads (medallion.yaml, contracts, rules, pipelines) goes through
//! [`load`], so a mistake is always reported as `path:line:col: key.path: message`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A YAML file that could not be read or did not match the expected shape.
#[derive(Debug, thiserror::Error)]
pub struct YamlError {
    /// The file that was read.
    pub path: PathBuf,
    /// 1-based line of the mistake, when known.
    pub line: Option<usize>,
    /// 1-based column of the mistake, when known.
    pub column: Option<usize>,
    /// Dotted key path to the offending value (may be empty).
    pub key_path: String,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        write!(f, ": ")?;
        if !self.key_path.is_empty() && self.key_path != "." {
            write!(f, "{}: ", self.key_path)?;
        }
        write!(f, "{}", self.message)
    }
}

/// Reads and deserializes a YAML file.
///
/// # Errors
/// Returns a [`YamlError`] naming the file, line, column and key path of the first mistake
/// serde finds (unknown keys, wrong types, syntax errors), or the I/O error.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, YamlError> {
    let text = std::fs::read_to_string(path).map_err(|e| YamlError {
        path: path.to_path_buf(),
        line: None,
        column: None,
        key_path: String::new(),
        message: format!("cannot read file: {e}"),
    })?;
    parse(path, &text)
}

/// Deserializes YAML text; `path` is only used in error messages.
///
/// # Errors
/// See [`load`].
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, YamlError> {
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key_path = e.path().to_string();
        let inner = e.into_inner();
        let loc = inner.location();
        let mut message = inner.to_string();
        // serde_yaml appends " at line L column C"; we print the location up front instead.
        if let Some(i) = message.find(" at line ") {
            message.truncate(i);
        }
        // serde_yaml may start the message with (part of) the key path; we print it once.
        if let Some((head, rest)) = message.split_once(": ") {
            if !head.is_empty() && !head.contains(' ') && key_path.starts_with(head) {
                message = rest.to_string();
            }
        }
        YamlError {
            path: path.to_path_buf(),
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            key_path,
            message,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        items: Vec<Item>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        id: u32,
    }

    #[test]
    fn unknown_key_is_located() {
        let text = "name: x\nitems:\n  - id: 1\n  - idd: 2\n";
        let err = parse::<Doc>(Path::new("f.yaml"), text).unwrap_err();
        assert_eq!(err.line, Some(4));
        assert_eq!(err.column, Some(5));
        assert_eq!(err.key_path, "items[1].idd");
        let shown = err.to_string();
        assert!(
            shown.starts_with("f.yaml:4:5: items[1].idd: unknown field `idd`"),
            "{shown}"
        );
    }

    #[test]
    fn wrong_type_is_located() {
        let text = "name: x\nitems:\n  - id: one\n";
        let err = parse::<Doc>(Path::new("f.yaml"), text).unwrap_err();
        assert_eq!(err.line, Some(3));
        assert!(err.to_string().contains("items[0].id"), "{err}");
    }

    #[test]
    fn syntax_error_is_located() {
        let text = "name: x\nitems: [\n";
        let err = parse::<Doc>(Path::new("f.yaml"), text).unwrap_err();
        assert!(err.line.is_some());
    }
}
