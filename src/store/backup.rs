//! Backups of the store: every tree, copied while no commit runs (so the copy is one
//! consistent moment, taken while the daemon keeps working), into one file ending in its
//! SHA-256; and a store made from such a file.
//!
//! Format: the line `belajar-sync backup 2\n`, a frame `I` holding the [`Installation`]
//! the store belongs to (JSON), then for each tree a frame `T`, its name, and its entries
//! as frames `E` key value (lengths `u32` little-endian before each string), then `Z` and
//! the 32 bytes of the SHA-256 of everything before. The pages are copied as stored
//! (compressed), so a backup is about the size of the store. A backup of version 1 is the
//! same without the `I` frame (it does not say whose it is).

use super::{Store, StoreError, make_private_dir, open_db};
use crate::hashing::Hashing;
use sha2::{Digest, Sha256};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8] = b"belajar-sync backup 2\n";

/// Backups written before they carried their installation.
const MAGIC_V1: &[u8] = b"belajar-sync backup 1\n";

/// What a store belongs to: the Workspace customer and the managed domains. A backup
/// carries it, so that one installation's backup does not silently become another's store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Installation {
    pub customer: String,
    pub domains: Vec<String>,
}

impl std::fmt::Display for Installation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: Vec<&str> = self.domains.iter().take(3).map(String::as_str).collect();
        let more = self.domains.len().saturating_sub(shown.len());
        write!(
            f,
            "customer {}, domains {}",
            self.customer,
            shown.join(", ")
        )?;
        if more > 0 {
            write!(f, " and {more} more")?;
        }
        Ok(())
    }
}

/// What a backup or a restore copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Copied {
    pub trees: u64,
    pub entries: u64,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a belajar-sync backup (or is of a newer version)")]
    NotABackup { path: PathBuf },
    #[error("{path} is damaged ({why}): nothing was restored")]
    Damaged { path: PathBuf, why: String },
    #[error("a store exists at {path}: restore makes a new store (move this one away first)")]
    StoreExists { path: PathBuf },
    #[error(
        "{path} is a backup of another installation ({theirs}; this configuration manages {ours}): nothing was restored. Check that it is the right file; to make this installation's store from it all the same, restore --other-installation"
    )]
    OtherInstallation {
        path: PathBuf,
        theirs: Box<Installation>,
        ours: Box<Installation>,
    },
}

fn write_part(out: &mut impl Write, part: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(part.len()).expect("a stored value under 4 GiB");
    out.write_all(&len.to_le_bytes())?;
    out.write_all(part)
}

impl Store {
    /// Writes a backup of the whole store to `path` (through a temporary file beside it,
    /// mode 0600, renamed when complete). Commits wait while the trees are copied.
    pub fn backup(&self, path: &Path, installation: &Installation) -> Result<Copied, BackupError> {
        let io = |source| BackupError::Io {
            path: path.into(),
            source,
        };
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
        let temp = tempfile::Builder::new()
            .prefix(".backup-")
            .tempfile_in(folder.unwrap_or(Path::new(".")))
            .map_err(io)?;
        let copied = self.copy_trees(temp.as_file(), installation, &io)?;
        temp.as_file().sync_all().map_err(io)?;
        temp.persist(path).map_err(|e| io(e.error))?;
        Ok(copied)
    }

    /// Writes the backup into `file` (see the module's comment).
    fn copy_trees(
        &self,
        file: &std::fs::File,
        installation: &Installation,
        io: &dyn Fn(std::io::Error) -> BackupError,
    ) -> Result<Copied, BackupError> {
        let mut out = Hashing::new(BufWriter::new(file));
        let mut copied = Copied::default();
        {
            // No commit while copying: the copy is one moment of the store.
            let _writer = self.writer.lock().expect("writer lock");
            let handles = self.handles()?;
            out.write_all(MAGIC).map_err(io)?;
            out.write_all(b"I").map_err(io)?;
            let whose = serde_json::to_vec(installation).expect("an installation serialises");
            write_part(&mut out, &whose).map_err(io)?;
            for name in handles.db.tree_names() {
                let tree = handles.db.open_tree(&name).map_err(|e| self.err(e))?;
                out.write_all(b"T").map_err(io)?;
                write_part(&mut out, &name).map_err(io)?;
                copied.trees += 1;
                for entry in tree.iter() {
                    let (key, value) = entry.map_err(|e| self.err(e))?;
                    out.write_all(b"E").map_err(io)?;
                    write_part(&mut out, &key).map_err(io)?;
                    write_part(&mut out, &value).map_err(io)?;
                    copied.entries += 1;
                }
            }
        }
        out.write_all(b"Z").map_err(io)?;
        copied.bytes = out.bytes() + 32;
        let (mut inner, digest) = out.finish();
        inner.write_all(&digest).map_err(io)?;
        inner.flush().map_err(io)?;
        Ok(copied)
    }

    /// Makes a store at `path` from the backup at `backup`: written into a folder beside
    /// it and moved in place only once the whole backup was read and its checksum holds.
    /// A backup of another installation than `ours` is refused, unless `ours` is `None`
    /// (the operator said it is meant).
    pub fn restore(
        path: &Path,
        backup: &Path,
        cache_mb: u64,
        ours: Option<&Installation>,
    ) -> Result<Copied, BackupError> {
        if path.exists() && std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some()) {
            return Err(BackupError::StoreExists { path: path.into() });
        }
        if let Some(ours) = ours
            && let Some(theirs) = installation_of(backup)?
            && theirs != *ours
        {
            return Err(BackupError::OtherInstallation {
                path: backup.into(),
                theirs: Box::new(theirs),
                ours: Box::new(ours.clone()),
            });
        }
        let file = std::fs::File::open(backup).map_err(|source| BackupError::Io {
            path: backup.into(),
            source,
        })?;
        let mut name = path.file_name().unwrap_or_default().to_owned();
        name.push(".restoring");
        let building = path.with_file_name(name);
        let _ = std::fs::remove_dir_all(&building);
        make_private_dir(&building).map_err(|e| StoreError::sled(&building, e.into()))?;
        let copied = read_into(&building, backup, file, cache_mb);
        match copied {
            Ok(copied) => {
                if path.exists() {
                    std::fs::remove_dir(path).map_err(|source| BackupError::Io {
                        path: path.into(),
                        source,
                    })?;
                }
                std::fs::rename(&building, path).map_err(|source| BackupError::Io {
                    path: path.into(),
                    source,
                })?;
                Ok(copied)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&building);
                Err(e)
            }
        }
    }
}

/// The installation a backup says it belongs to (`None` for a backup of version 1, which
/// does not say). Only its start is read; the checksum is checked by the restore.
pub fn installation_of(backup: &Path) -> Result<Option<Installation>, BackupError> {
    let io = |source| BackupError::Io {
        path: backup.into(),
        source,
    };
    let not_a_backup = || BackupError::NotABackup {
        path: backup.into(),
    };
    let mut input = BufReader::new(std::fs::File::open(backup).map_err(io)?);
    let mut magic = vec![0; MAGIC.len()];
    input.read_exact(&mut magic).map_err(|_| not_a_backup())?;
    if magic == MAGIC_V1 {
        return Ok(None);
    }
    let mut frame = [0u8; 5];
    if magic != MAGIC || input.read_exact(&mut frame).is_err() || frame[0] != b'I' {
        return Err(not_a_backup());
    }
    let len = u32::from_le_bytes(frame[1..].try_into().expect("4 bytes")) as usize;
    let mut whose = vec![0; len.min(1 << 20)];
    input.read_exact(&mut whose).map_err(|_| not_a_backup())?;
    serde_json::from_slice(&whose)
        .map(Some)
        .map_err(|_| not_a_backup())
}

/// The daemon's daily backup into `folder`: when the newest `belajar-sync-*.backup` there is
/// a day old (or there is none), writes `belajar-sync-DATE.backup` and keeps the `keep`
/// newest; removes what a backup killed half-way left (a day old). The file written, if
/// one was due.
pub fn daily(
    store: &Store,
    folder: &Path,
    keep: u32,
    installation: &Installation,
) -> Result<Option<PathBuf>, BackupError> {
    let cannot = |source| BackupError::Io {
        path: folder.into(),
        source,
    };
    std::fs::create_dir_all(folder).map_err(cannot)?;
    let day = std::time::Duration::from_secs(24 * 3600);
    let mut backups: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(folder)
        .map_err(cannot)?
        .filter_map(Result::ok)
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(modified) = entry.metadata().ok().and_then(|m| m.modified().ok()) else {
            continue;
        };
        if name.starts_with("belajar-sync-") && name.ends_with(".backup") {
            backups.push((modified, entry.path()));
        } else if name.starts_with(".backup-") && modified.elapsed().is_ok_and(|age| age > day) {
            // What a backup killed half-way left (one under way is never a day old).
            let _ = std::fs::remove_file(entry.path());
        }
    }
    backups.sort();
    if backups
        .last()
        .is_some_and(|(at, _)| at.elapsed().is_ok_and(|age| age < day))
    {
        return Ok(None);
    }
    let name = format!(
        "belajar-sync-{}.backup",
        jiff::Zoned::now().strftime("%Y-%m-%dT%H%M%S")
    );
    let path = folder.join(name);
    store.backup(&path, installation)?;
    backups.push((std::time::SystemTime::now(), path.clone()));
    let excess = backups.len().saturating_sub(keep.max(1) as usize);
    for (_, old) in backups.drain(..excess) {
        let _ = std::fs::remove_file(old);
    }
    Ok(Some(path))
}

/// Reads the backup in `file` into a new database at `folder`.
fn read_into(
    folder: &Path,
    backup: &Path,
    file: std::fs::File,
    cache_mb: u64,
) -> Result<Copied, BackupError> {
    let damaged = |why: &str| BackupError::Damaged {
        path: backup.into(),
        why: why.into(),
    };
    let mut input = BufReader::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let mut read = |n: usize, hasher: &mut Sha256| -> Result<Vec<u8>, BackupError> {
        let mut buf = vec![0; n];
        input
            .read_exact(&mut buf)
            .map_err(|_| damaged("it ends too early"))?;
        hasher.update(&buf);
        Ok(buf)
    };
    let magic = read(MAGIC.len(), &mut hasher).ok();
    if magic.as_deref() != Some(MAGIC) && magic.as_deref() != Some(MAGIC_V1) {
        return Err(BackupError::NotABackup {
            path: backup.into(),
        });
    }
    let db = open_db(folder, cache_mb, std::time::Duration::ZERO)?.db;
    let sled_err = |e: sled::Error| BackupError::Store(StoreError::sled(folder, e));
    let mut copied = Copied::default();
    let mut tree: Option<sled::Tree> = None;
    let mut batch = sled::Batch::default();
    let mut batch_bytes = 0usize;
    loop {
        let tag = read(1, &mut hasher)?;
        let mut part = |hasher: &mut Sha256| -> Result<Vec<u8>, BackupError> {
            let len = read(4, hasher)?;
            let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
            if len > 1 << 30 {
                return Err(damaged("a length is out of range"));
            }
            read(len, hasher)
        };
        match tag[0] {
            b'T' => {
                if let Some(tree) = &tree {
                    tree.apply_batch(std::mem::take(&mut batch))
                        .map_err(sled_err)?;
                }
                let name = part(&mut hasher)?;
                tree = Some(db.open_tree(name).map_err(sled_err)?);
                copied.trees += 1;
            }
            b'E' => {
                let Some(tree) = &tree else {
                    return Err(damaged("an entry comes before any tree"));
                };
                let key = part(&mut hasher)?;
                let value = part(&mut hasher)?;
                batch_bytes += key.len() + value.len();
                batch.insert(key, value);
                copied.entries += 1;
                if batch_bytes >= 4 << 20 {
                    tree.apply_batch(std::mem::take(&mut batch))
                        .map_err(sled_err)?;
                    batch_bytes = 0;
                }
            }
            // Whose it is: checked before the restore began.
            b'I' if tree.is_none() => {
                part(&mut hasher)?;
            }
            b'Z' => break,
            _ => return Err(damaged("an unknown frame")),
        }
    }
    if let Some(tree) = &tree {
        tree.apply_batch(batch).map_err(sled_err)?;
    }
    let expected = hasher.finalize();
    let mut stored = [0u8; 32];
    input
        .read_exact(&mut stored)
        .map_err(|_| damaged("its checksum is missing"))?;
    if stored[..] != expected[..] {
        return Err(damaged("its checksum differs"));
    }
    db.flush().map_err(sled_err)?;
    copied.bytes = std::fs::metadata(backup).map(|m| m.len()).unwrap_or(0);
    Ok(copied)
}
