//! The local file catalog: `<lake>/_catalog/catalog.json`, replaced atomically on each write.

use std::path::PathBuf;

use async_trait::async_trait;
use tokio::sync::Mutex;

use super::{Catalog, CatalogError, TableEntry};

/// A catalog in one JSON file.
#[derive(Debug)]
pub struct FileCatalog {
    path: PathBuf,
    lock: Mutex<()>,
}

impl FileCatalog {
    /// A catalog stored at `path`.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            lock: Mutex::new(()),
        }
    }

    fn err(&self, message: impl ToString) -> CatalogError {
        CatalogError::File {
            path: self.path.display().to_string(),
            message: message.to_string(),
        }
    }

    fn read(&self) -> Result<Vec<TableEntry>, CatalogError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| self.err(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(self.err(e)),
        }
    }
}

#[async_trait]
impl Catalog for FileCatalog {
    fn name(&self) -> &'static str {
        "file"
    }

    async fn register(&self, entry: TableEntry) -> Result<(), CatalogError> {
        let _guard = self.lock.lock().await;
        let mut entries = self.read()?;
        entries.retain(|e| e.table != entry.table);
        entries.push(entry);
        entries
            .sort_by(|a, b| (&a.dataset, &a.stage, &a.kind).cmp(&(&b.dataset, &b.stage, &b.kind)));
        let text = serde_json::to_vec_pretty(&entries).map_err(|e| self.err(e))?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.err(e))?;
        }
        let tmp = self
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, text).map_err(|e| self.err(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.err(e))
    }

    async fn list(&self) -> Result<Vec<TableEntry>, CatalogError> {
        self.read()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(table: &str, rows: u64) -> TableEntry {
        TableEntry {
            dataset: "attendance".into(),
            stage: "raw".into(),
            kind: "data".into(),
            table: table.into(),
            location: "file:///x".into(),
            version: 0,
            rows,
            schema: vec![],
            contract_version: "1.0.0".into(),
            last_batch: None,
            description: String::new(),
            updated_at: String::new(),
        }
    }

    #[tokio::test]
    async fn register_replaces_by_table() {
        let dir = tempfile::tempdir().unwrap();
        let c = FileCatalog::new(dir.path().join("c/catalog.json"));
        c.register(entry("raw.attendance", 1)).await.unwrap();
        c.register(entry("raw.attendance", 2)).await.unwrap();
        let all = c.list().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].rows, 2);
    }
}
