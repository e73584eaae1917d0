//! The folder lake: `<lake>/landing/<dataset>/<sha256>.<ext>` with a `.meta.json` beside each
//! file, and Delta tables under `<lake>/<stage>/<table>/`.
//!
//! Invariants: a landed file and its manifest are created with create-new (never overwritten);
//! the landing time is the caller's (its clock), never read here.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use url::Url;

use super::{Digest, LandOutcome, LandedFile, Result, StorageError, TableStore};
use crate::vocab::Stage;

/// A lake in a local folder.
#[derive(Debug, Clone)]
pub struct LocalTableStore {
    root: PathBuf,
}

fn io(path: &Path, source: std::io::Error) -> StorageError {
    StorageError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl LocalTableStore {
    /// A lake rooted at `root` (created when needed).
    ///
    /// # Errors
    /// When the folder cannot be created or resolved.
    pub fn new(root: &Path) -> Result<Self> {
        Ok(Self {
            root: Self::resolve(root)?,
        })
    }

    /// The lake folder at `root`, created when needed and resolved to its canonical path (where
    /// a store on `root` keeps its files, and the local catalog and logs theirs).
    ///
    /// # Errors
    /// When the folder cannot be created or resolved.
    pub fn resolve(root: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(root).map_err(|e| io(root, e))?;
        root.canonicalize().map_err(|e| io(root, e))
    }

    /// The lake folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn landing_dir(&self, dataset: &str) -> PathBuf {
        self.root.join("landing").join(dataset)
    }

    fn dir_url(&self, dir: &Path) -> Result<Url> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        Url::from_directory_path(dir).map_err(|()| StorageError::Corrupt {
            path: dir.display().to_string(),
            message: "not an absolute path".into(),
        })
    }
}

#[async_trait]
impl TableStore for LocalTableStore {
    fn name(&self) -> &'static str {
        "local"
    }

    fn table_url(&self, stage: Stage, table: &str) -> Result<Url> {
        self.dir_url(&self.root.join(stage.as_str()).join(table))
    }

    fn ops_table_url(&self, table: &str) -> Result<Url> {
        self.dir_url(&self.root.join("_ops").join(table))
    }

    fn storage_options(&self) -> HashMap<String, String> {
        HashMap::new()
    }

    async fn land(
        &self,
        dataset: &str,
        original_name: &str,
        format: &str,
        bytes: &[u8],
        landed_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<LandOutcome> {
        let dir = self.landing_dir(dataset);
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        sweep_parts(&dir);
        let file = match self
            .plan_landing(
                dataset,
                original_name,
                format,
                &Digest::of(bytes),
                landed_at,
            )
            .await?
        {
            Ok(f) => f,
            Err(already) => return Ok(already),
        };
        let sha256 = &file.sha256;
        let data_path = dir.join(format!("{sha256}.{format}"));
        write_new(&data_path, bytes)?;
        write_manifest(&dir, &file)?;
        Ok(LandOutcome::Landed(file))
    }

    async fn land_path(
        &self,
        dataset: &str,
        original_name: &str,
        format: &str,
        path: &Path,
        landed_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<LandOutcome> {
        let dir = self.landing_dir(dataset);
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        sweep_parts(&dir);
        // Copied and hashed in one streaming pass into a part file of this landing folder
        // (invisible: only manifests are listed), then published under its content's name.
        let tmp = dir.join(format!(".{}.{}.part", std::process::id(), part_seq()));
        let copied = copy_hashed(path, &tmp);
        let digest = match copied {
            Ok(d) => d,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let file = match self
            .plan_landing(dataset, original_name, format, &digest, landed_at)
            .await?
        {
            Ok(f) => f,
            Err(already) => {
                let _ = std::fs::remove_file(&tmp);
                return Ok(already);
            }
        };
        publish(&tmp, &dir.join(format!("{}.{format}", file.sha256)))?;
        write_manifest(&dir, &file)?;
        Ok(LandOutcome::Landed(file))
    }

    async fn list_landed(&self, dataset: &str) -> Result<Vec<LandedFile>> {
        let dir = self.landing_dir(dataset);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| io(&dir, e))?.path();
            if !path.to_string_lossy().ends_with(".meta.json") {
                continue;
            }
            let text = std::fs::read(&path).map_err(|e| io(&path, e))?;
            let f: LandedFile =
                serde_json::from_slice(&text).map_err(|e| StorageError::Corrupt {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
            out.push(f);
        }
        LandedFile::settle(&mut out);
        Ok(out)
    }

    async fn replace_landed(&self, old: &LandedFile, bytes: &[u8]) -> Result<LandedFile> {
        let dir = self.landing_dir(&old.dataset);
        let new = old.replaced_by(bytes);
        let data = dir.join(format!("{}.{}", new.sha256, new.format));
        let manifest = dir.join(format!("{}.meta.json", new.sha256));
        if new.sha256 != old.sha256 {
            if !data.exists() {
                write_new(&data, bytes)?;
            }
            if !manifest.exists() {
                let meta = serde_json::to_vec_pretty(&new).map_err(|e| StorageError::Corrupt {
                    path: manifest.display().to_string(),
                    message: e.to_string(),
                })?;
                write_new(&manifest, &meta)?;
            }
            for stale in [
                dir.join(format!("{}.meta.json", old.sha256)),
                dir.join(format!("{}.{}", old.sha256, old.format)),
            ] {
                match std::fs::remove_file(&stale) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(io(&stale, e))
                    }
                    _ => {}
                }
            }
        }
        Ok(new)
    }

    async fn open_landed(&self, file: &LandedFile) -> Result<Box<dyn Read + Send>> {
        let path = self
            .landing_dir(&file.dataset)
            .join(format!("{}.{}", file.sha256, file.format));
        let f = std::fs::File::open(&path).map_err(|e| io(&path, e))?;
        Ok(Box::new(std::io::BufReader::with_capacity(1 << 20, f)))
    }
}

/// Writes `file`'s manifest into `dir`. Written last: a landed file without one is
/// invisible and is landed again.
fn write_manifest(dir: &Path, file: &LandedFile) -> Result<()> {
    let manifest = dir.join(format!("{}.meta.json", file.sha256));
    let meta = serde_json::to_vec_pretty(file).map_err(|e| StorageError::Corrupt {
        path: manifest.display().to_string(),
        message: e.to_string(),
    })?;
    write_new(&manifest, &meta)
}

/// Writes a file that must not exist yet, durably, via a temporary name.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("part{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| io(&tmp, e))?;
    f.sync_all().map_err(|e| io(&tmp, e))?;
    publish(&tmp, path)
}

/// How long a part file may go unwritten before it counts as left by a crashed `land`.
const STALE_PART: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes the part files a crashed `land` left in the landing folder `dir` (untouched for
/// [`STALE_PART`]; a land in progress keeps writing its own). They are never listed as landed,
/// but they hold the export as delivered, identifiers in clear, and `forget` would not see
/// them. Best effort: a part that cannot be removed now is tried again on the next land.
fn sweep_parts(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_part = path
            .extension()
            .is_some_and(|e| e.to_string_lossy().starts_with("part"));
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_PART);
        if is_part && stale {
            tracing::info!(path = %path.display(), "Removing a part file a crashed land left.");
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Gives the finished file `tmp` its final name `path` (a hard link: an existing `path`, the
/// same content landed concurrently, is left as it is) and removes `tmp`.
fn publish(tmp: &Path, path: &Path) -> Result<()> {
    let r = std::fs::hard_link(tmp, path);
    let _ = std::fs::remove_file(tmp);
    match r {
        Ok(()) => Ok(()),
        // Someone landed the same content concurrently: identical bytes, nothing to do.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(path, e)),
    }
}

/// A number distinguishing this process's part files from one another.
fn part_seq() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Copies `from` to a new file `to` in bounded buffers, hashing on the way, and syncs it.
fn copy_hashed(from: &Path, to: &Path) -> Result<Digest> {
    let src = std::fs::File::open(from).map_err(|e| io(from, e))?;
    let dst = std::fs::File::create(to).map_err(|e| io(to, e))?;
    let mut dst = std::io::BufWriter::with_capacity(1 << 20, dst);
    let digest = Digest::copy(src, &mut dst).map_err(|e| io(from, e))?;
    let dst = dst.into_inner().map_err(|e| io(to, e.into_error()))?;
    dst.sync_all().map_err(|e| io(to, e))?;
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_part_file_left_by_a_crashed_land_is_removed_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalTableStore::new(dir.path()).unwrap();
        let landing = store.landing_dir("attendance");
        std::fs::create_dir_all(&landing).unwrap();
        let (old, fresh) = (landing.join(".1.0.part"), landing.join("abc.part77"));
        for p in [&old, &fresh] {
            std::fs::write(p, b"student_id\nS000001\n").unwrap();
        }
        let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
        let src = dir.path().join("a.csv");
        std::fs::write(&src, b"x\n1\n").unwrap();
        store
            .land_path("attendance", "a.csv", "csv", &src, chrono::Utc::now())
            .await
            .unwrap();
        assert!(!old.exists(), "the stale part is removed");
        assert!(fresh.exists(), "a part being written is left alone");
        assert_eq!(store.list_landed("attendance").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn landing_is_content_addressed_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalTableStore::new(dir.path()).unwrap();
        let a = store
            .land("attendance", "a.csv", "csv", b"x\n1\n", chrono::Utc::now())
            .await
            .unwrap();
        let b = store
            .land(
                "attendance",
                "copy-of-a.csv",
                "csv",
                b"x\n1\n",
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        let c = store
            .land("attendance", "c.csv", "csv", b"x\n2\n", chrono::Utc::now())
            .await
            .unwrap();
        assert!(matches!(a, LandOutcome::Landed(_)));
        assert!(matches!(b, LandOutcome::AlreadyLanded(ref f) if f.original_name == "a.csv"));
        assert!(matches!(c, LandOutcome::Landed(ref f) if f.seq == 2));
        let listed = store.list_landed("attendance").await.unwrap();
        assert_eq!(listed.len(), 2);
        let mut text = String::new();
        store
            .open_landed(&listed[1])
            .await
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "x\n2\n");
    }
}
