//! Where a dry run keeps the changes it reads back (an import's address index) once they
//! are handed on: a scratch sled database in a temporary folder inside the store's own
//! (private) folder, removed with the changes. A dry run of 5M new accounts then holds
//! them on disk, not in memory (976 MB before).

use super::pages::Pages;
use super::{Keyspace, Pending, Store, StoreError};
use std::collections::BTreeMap;
use std::path::Path;

/// The folder names a scratch database takes inside the store's folder.
const PREFIX: &str = ".dry-run-";

/// The scratch database's cache: what it may hold in memory.
const CACHE_BYTES: u64 = 4 << 20;

pub(super) struct Scratch {
    db: sled::Db,
    /// One set of pages a keyspace (compressed pages, as the store keeps them: sled
    /// holding a million small entries of its own took more memory than the import).
    pages: BTreeMap<Keyspace, Pages>,
    // Removed after the database is closed (fields drop in order).
    dir: tempfile::TempDir,
}

impl Scratch {
    pub(super) fn open(store: &Store) -> Result<Scratch, StoreError> {
        let io = |e: std::io::Error| StoreError::sled(store.path(), e.into());
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempdir_in(store.path())
            .map_err(io)?;
        let db = sled::Config::new()
            .path(dir.path())
            .cache_capacity(CACHE_BYTES)
            .open()
            .map_err(|e| StoreError::sled(store.path(), e))?;
        Ok(Scratch {
            db,
            pages: BTreeMap::new(),
            dir,
        })
    }

    /// Keeps `pending` (a later value of a key replaces an earlier one).
    pub(super) fn keep(&mut self, pending: Pending) -> Result<(), StoreError> {
        for (space, changes) in pending {
            let mut sorted: Vec<(Vec<u8>, Option<Vec<u8>>)> = changes
                .into_iter()
                .map(|(key, value)| (key, Some(encode(value.as_deref()))))
                .collect();
            sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let pages = self.pages_of(space)?;
            let prepared = pages.prepare(sorted, false).map_err(|e| self.err(e))?;
            let applied = pages.tree().apply_batch(prepared.batch);
            pages.written();
            applied.map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// The value kept for `key` of `space`: `Some(None)` for a removal, `None` when
    /// nothing is kept.
    pub(super) fn get(
        &self,
        space: Keyspace,
        key: &[u8],
    ) -> Result<Option<Option<Vec<u8>>>, StoreError> {
        let Some(pages) = self.pages.get(&space) else {
            return Ok(None);
        };
        let kept = pages.get(key).map_err(|e| self.err(e))?;
        Ok(kept.map(|bytes| decode(&bytes)))
    }

    fn pages_of(&mut self, space: Keyspace) -> Result<Pages, StoreError> {
        if let Some(pages) = self.pages.get(&space) {
            return Ok(pages.clone());
        }
        let tree = self.db.open_tree(space.0).map_err(|e| self.err(e))?;
        let pages = Pages::new(tree);
        self.pages.insert(space, pages.clone());
        Ok(pages)
    }

    fn err(&self, e: sled::Error) -> StoreError {
        StoreError::sled(self.dir.path(), e)
    }
}

/// A value or a removal, as kept: a first byte says which.
fn encode(value: Option<&[u8]>) -> Vec<u8> {
    match value {
        Some(bytes) => [&[1u8][..], bytes].concat(),
        None => vec![0],
    }
}

fn decode(kept: &[u8]) -> Option<Vec<u8>> {
    match kept.split_first() {
        Some((1, bytes)) => Some(bytes.to_vec()),
        _ => None,
    }
}

/// Removes the scratch folders a dry run killed before its end left in `store_dir`.
pub(super) fn remove_leftovers(store_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(store_dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(PREFIX) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
