//! The store: one sled database on disk, holding a *keyspace* per kind of record. Each
//! keyspace is its own sled tree, read and written as a paged map ([`pages`]), and is
//! owned by one module, which declares it and alone knows its keys:
//!
//! | keyspace | owner |
//! | --- | --- |
//! | `accounts`, `addresses`, `schools` | [`crate::directory::accounts`] |
//! | `remote` (observed users and org units, scan progress) | [`crate::remote`] |
//! | `journal` | [`crate::journal`] |
//! | `history`, `held` | [`crate::audit`] |
//! | `access` | [`crate::access`] |
//! | `meta` (counters, the sequence, the import in progress) | this module |
//! | `notices` | [`crate::notices`] |
//! | `api_tokens` (hashes of the console's API tokens) | [`crate::web::tokens`] |
//! | `licence_holders` (during a licence scan) | [`crate::reconciler::licences`] |
//! | `limits` (the console's rate limits) | `crate::web::limits` |
//! | `licences_freed` (by hour) | [`crate::licences`] |
//!
//! A dry run writes nothing to the store: what it must read back (an import's new
//! addresses) goes to a scratch database in a temporary folder of the store's folder
//! ([`scratch`]), removed with the dry run.
//!
//! A set of [`Changes`] may span keyspaces: it is written in one sled transaction over
//! their trees, so a reader never sees half of it.
//!
//! One writer: a set of changes that may be written holds the store's *write lease* from
//! the moment it is made until it is dropped, so whatever it read before writing is still
//! what the store holds when it commits: no change is lost to a stale read, whoever
//! writes (an import, a round, a repair, a sheet). Work made of several sets of changes
//! that must see no other writer between them holds the lease around them all
//! ([`Store::lease`]): an import from start to end (so a round never plans from half an
//! import, and its rollback never removes another writer's change), a round's plan. The
//! lease may be taken again by the thread holding it; it is never held across a call to
//! Google. One exception: a *side record* of a keyspace no import or round ever writes
//! (the console's rate limits, the codes of Lupa kata sandi) is read and changed at once outside the lease
//! ([`Store::update_side_record`], serialised by a lock of its own), so that an import
//! holding the lease for minutes does not hold up a sign-in; an import's rollback cannot
//! touch it, since the undo log only holds pages of keyspaces the import wrote.
//!
//! Memory: sled 0.34 keeps in its cache every page a scan reads (it only considers
//! evicting after many touches of one of its 256 cache shards, which a scan never makes).
//! A scan here therefore holds no sled handle between pages, and once it has read
//! `store_cache_mb` it reopens the database when no other reader or writer is inside it,
//! which gives the memory back.
//!
//! A big change (an import) is written in many small transactions under one lease, each
//! also recording in the undo log (a plain sled tree beside the keyspaces) every page it
//! replaces, as it was before the import first rewrote it. If the import fails or the
//! process dies, the import's own error path (or the next opening of the store) puts
//! those pages back: the change lands whole or not at all. Since no other writer wrote
//! while the import held the lease, putting its pages back removes nothing else.

pub mod backup;
pub mod pages;

use pages::{Cursor, Pages};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::Transactional;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::Duration;

/// The layout version this build writes. Version 1 (every record in one tree) was a
/// development build's and is refused.
pub const SCHEMA_VERSION: u32 = 2;

const SCHEMA_KEY: &[u8] = b"schema_version";

/// A kind of record: one sled tree. Declared by the module that owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Keyspace(&'static str);

impl Keyspace {
    pub(crate) const fn new(name: &'static str) -> Keyspace {
        Keyspace(name)
    }
}

const META: Keyspace = Keyspace::new("meta");
const SEQ_KEY: &[u8] = b"seq";
const IMPORT_KEY: &[u8] = b"import";

fn counter_key(name: &str) -> Vec<u8> {
    format!("count:{name}").into_bytes()
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the store at {path} is in use by another process (is the daemon running? stop it or use its control socket)"
    )]
    Locked { path: PathBuf },
    #[error(
        "the store at {path} was written by a newer belajar-sync (schema {found}; this build knows up to {SCHEMA_VERSION}): upgrade belajar-sync"
    )]
    TooNew { path: PathBuf, found: u32 },
    #[error(
        "the store at {path} has a layout of a development build that was never released ({layout}): make it again with `belajar-sync rebuild` into an empty data_dir (or import the exports there)"
    )]
    Unreleased { path: PathBuf, layout: String },
    #[error(
        "the disk holding the store at {path} is full: the store keeps what was committed before (an import cut short is rolled back whole when the store is next opened); free some space and run the command again"
    )]
    DiskFull { path: PathBuf },
    #[error(
        "not enough free disk space for the store at {path}: {free_mb} MiB free, this needs about {needed_mb} MiB (min_free_disk_mb included); nothing was written. Free some space (or lower min_free_disk_mb)"
    )]
    LowDisk {
        path: PathBuf,
        free_mb: u64,
        needed_mb: u64,
    },
    #[error("no store at {path} (import an export first, or check data_dir)")]
    Missing { path: PathBuf },
    #[error("the store at {path} is damaged: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("store {path}: {source}")]
    Sled { path: PathBuf, source: sled::Error },
}

impl StoreError {
    /// A sled error at the store at `path`; a full disk is said in words.
    fn sled(path: &Path, source: sled::Error) -> StoreError {
        match &source {
            sled::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => {
                StoreError::DiskFull { path: path.into() }
            }
            _ => StoreError::Sled {
                path: path.into(),
                source,
            },
        }
    }

    /// Whether the disk is full or too full to begin (the daemon waits for space).
    pub fn is_disk_space(&self) -> bool {
        matches!(
            self,
            StoreError::DiskFull { .. } | StoreError::LowDisk { .. }
        )
    }
}

/// Written when an import starts and removed when it ends: found later, that import was
/// interrupted, and its changes are rolled back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportMarker {
    pub file: String,
    pub started: jiff::Timestamp,
}

/// The open database and its trees. Replaced whole when the store is reopened.
struct Handles {
    db: sled::Db,
    spaces: Mutex<HashMap<&'static str, Pages>>,
}

impl Handles {
    fn pages(&self, space: Keyspace) -> sled::Result<Pages> {
        let mut spaces = self.spaces.lock().expect("keyspaces lock");
        if let Some(pages) = spaces.get(space.0) {
            return Ok(pages.clone());
        }
        let pages = Pages::new(self.db.open_tree(space.0)?);
        spaces.insert(space.0, pages.clone());
        Ok(pages)
    }
}

/// The store on disk. Cheap to clone: clones share the open database, so that a commit
/// can be written by another thread while the next changes are made
/// ([`Changes::commit_behind`]).
#[derive(Clone)]
pub struct Store(Arc<Open>);

impl std::ops::Deref for Store {
    type Target = Open;

    fn deref(&self) -> &Open {
        &self.0
    }
}

/// What a [`Store`] and its clones share.
pub struct Open {
    path: PathBuf,
    /// Bytes a scan reads before the store is reopened to give back sled's cache.
    relief_bytes: u64,
    /// `None` only while being reopened (or after a reopen failed).
    handles: RwLock<Option<Handles>>,
    /// Bytes read by scans and written by commits since the store was last opened.
    touched: AtomicU64,
    /// How many times the store was reopened to give back memory.
    reopens: AtomicU64,
    /// The write lease: every set of [`Changes`] that may be written holds it from the
    /// moment it is made (before its first read) until it is dropped, so a change that
    /// depends on what it read is never built on a stale read; an import holds it from
    /// start to end. Taken again freely by its holder's thread.
    lease: parking_lot::ReentrantMutex<()>,
    /// Held while a commit folds its counters and writes: the daemon's loop and the
    /// commands of its control socket write the same store from several threads.
    writer: Mutex<()>,
    /// The last sequence number handed out; written at each commit, so two sets of
    /// changes built at once never get the same number.
    seq: AtomicU64,
    /// Journal subjects an executor of this process is sending now: another one (a
    /// helpdesk repair beside the daemon's push) leaves them alone.
    sending: Mutex<HashSet<String>>,
    /// Serialises [`Store::update_side_record`].
    side: Mutex<()>,
    /// An import found interrupted when the store was opened, and rolled back.
    rolled_back: Mutex<Option<ImportMarker>>,
}

/// Journal subjects claimed by one executor (see [`Store::claim`]).
pub struct Claim<'a> {
    store: &'a Store,
    pub subjects: HashSet<String>,
}

impl Claim<'_> {
    /// Claims those of `subjects` no other executor is sending as well; returns which.
    pub fn extend<'s>(&mut self, subjects: impl IntoIterator<Item = &'s str>) -> HashSet<String> {
        // Held by `self` from now on: `more` is dropped empty.
        let taken = std::mem::take(&mut self.store.claim(subjects).subjects);
        self.subjects.extend(taken.iter().cloned());
        taken
    }

    /// Lets go of `subject` (its answer is applied).
    pub fn release(&mut self, subject: &str) {
        if self.subjects.remove(subject) {
            self.store
                .sending
                .lock()
                .expect("sending lock")
                .remove(subject);
        }
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut sending = self.store.sending.lock().expect("sending lock");
        for subject in &self.subjects {
            sending.remove(subject);
        }
    }
}

/// How long an opening waits for sled to let go of the files of a store just closed (by
/// this process's reopen, or by a command that just ended).
const OPEN_PATIENCE: Duration = Duration::from_secs(60);
const OPEN_STEP: Duration = Duration::from_millis(20);

impl Store {
    /// Opens (or creates) the store at `path`; scans reopen it after reading `cache_mb`
    /// MiB. An import found interrupted is rolled back.
    pub fn open(path: &Path, cache_mb: u64) -> Result<Store, StoreError> {
        make_private_dir(path).map_err(|e| StoreError::sled(path, e.into()))?;
        scratch::remove_leftovers(path);
        // A store just closed by a command that ended is let go of within moments.
        let handles = open_db(path, cache_mb, Duration::from_secs(2))?;
        let store = Store(Arc::new(Open {
            path: path.into(),
            relief_bytes: cache_mb.max(1) * 1024 * 1024,
            handles: RwLock::new(Some(handles)),
            touched: AtomicU64::new(0),
            reopens: AtomicU64::new(0),
            lease: parking_lot::ReentrantMutex::new(()),
            writer: Mutex::default(),
            seq: AtomicU64::new(0),
            sending: Mutex::default(),
            side: Mutex::default(),
            rolled_back: Mutex::default(),
        }));
        store.check_schema()?;
        let seq = store.number(SEQ_KEY, "the sequence counter")?;
        store.seq.store(u64::from_be_bytes(seq), Ordering::SeqCst);
        if let Some(marker) = store.import_marker()? {
            store.roll_back_import()?;
            tracing::warn!(
                file = %marker.file,
                started = %marker.started,
                "an import was interrupted: its changes were rolled back"
            );
            *store.rolled_back.lock().expect("rolled back lock") = Some(marker);
        }
        Ok(store)
    }

    /// Opens the store at `path` only if there is one: commands that only read (and the
    /// ones that write to what an import made) never make an empty store where a
    /// mistyped `data_dir` points.
    pub fn open_existing(path: &Path, cache_mb: u64) -> Result<Store, StoreError> {
        // sled writes its `conf` first when it makes a database.
        if !path.join("conf").is_file() {
            return Err(StoreError::Missing { path: path.into() });
        }
        Store::open(path, cache_mb)
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        let handles = self.handles()?;
        let stored = handles.db.get(SCHEMA_KEY).map_err(|e| self.err(e))?;
        let found = match stored {
            None if handles.db.tree_names().len() <= 1 => 0,
            None => 1,
            Some(bytes) => <[u8; 4]>::try_from(bytes.as_ref())
                .map(u32::from_be_bytes)
                .map_err(|_| self.corrupt("schema_version is not a 4-byte number"))?,
        };
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found,
            });
        }
        if found == 1 {
            return Err(StoreError::Unreleased {
                path: self.path.clone(),
                layout: "schema 1, every record in one tree".into(),
            });
        }
        self.check_no_old_undo(&handles.db)?;
        if found != SCHEMA_VERSION {
            handles
                .db
                .insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())
                .map_err(|e| self.err(e))?;
            handles.db.flush().map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Earlier builds kept an import's undo log per key, in a tree named `undo`, emptied
    /// when the import ended. An empty one goes; one that holds records was left by an
    /// import interrupted under such a build, which only that build can roll back.
    fn check_no_old_undo(&self, db: &sled::Db) -> Result<(), StoreError> {
        const OLD: &str = "undo";
        if !db.tree_names().iter().any(|name| name == OLD.as_bytes()) {
            return Ok(());
        }
        let tree = db.open_tree(OLD).map_err(|e| self.err(e))?;
        if !tree.is_empty() {
            return Err(self.corrupt(
                "an import interrupted under an earlier belajar-sync left an undo log this build cannot read: open the store once with that build (it rolls the import back), or restore the last backup",
            ));
        }
        drop(tree);
        db.drop_tree(OLD).map(drop).map_err(|e| self.err(e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: sled::Error) -> StoreError {
        StoreError::sled(&self.path, source)
    }

    /// Bytes free (for this user) on the disk holding the store.
    pub fn free_space(&self) -> Result<u64, StoreError> {
        let stat = nix::sys::statvfs::statvfs(&self.path)
            .map_err(|e| self.err(std::io::Error::from(e).into()))?;
        Ok(stat.blocks_available() as u64 * stat.fragment_size() as u64)
    }

    /// Refuses, before writing, when the disk holding the store has less than `needed`
    /// bytes free: a write that fills the disk is undone, but costs the time it took.
    pub fn ensure_free_space(&self, needed: u64) -> Result<(), StoreError> {
        let free = self.free_space()?;
        if free < needed {
            return Err(StoreError::LowDisk {
                path: self.path.clone(),
                free_mb: free >> 20,
                needed_mb: needed.div_ceil(1 << 20),
            });
        }
        Ok(())
    }

    pub(crate) fn corrupt(&self, detail: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            detail: detail.into(),
        }
    }

    /// The open database, held (as a reader) while the guard lives.
    fn handles(&self) -> Result<HandlesGuard<'_>, StoreError> {
        let guard = self.handles.read().expect("store handles lock");
        if guard.is_none() {
            return Err(self.corrupt("the store could not be reopened; restart belajar-sync"));
        }
        Ok(HandlesGuard(guard))
    }

    /// The JSON record `value` stored at `key` of `space`.
    pub(crate) fn parse_json<'de, T: Deserialize<'de>>(
        &self,
        space: Keyspace,
        key: &[u8],
        value: &'de [u8],
    ) -> Result<T, StoreError> {
        serde_json::from_slice(value).map_err(|e| {
            self.corrupt(format!(
                "{} record {}: {e}",
                space.0,
                String::from_utf8_lossy(key)
            ))
        })
    }

    /// Runs `f` on the paged map of `space`.
    fn with<T>(
        &self,
        space: Keyspace,
        f: impl FnOnce(&Pages) -> sled::Result<T>,
    ) -> Result<T, StoreError> {
        let handles = self.handles()?;
        let pages = handles.pages(space).map_err(|e| self.err(e))?;
        f(&pages).map_err(|e| self.err(e))
    }

    /// The write lease (see [`Open::lease`]), held while the returned guard lives: for
    /// work that spans several sets of changes and must see no other writer between them
    /// (an import, a round's plan).
    pub fn lease(&self) -> Lease<'_> {
        Lease(self.lease.lock())
    }

    /// Starts a set of changes; nothing is written until [`Changes::commit`]. Unless a dry
    /// run, it holds the write lease until dropped: another writer waits meanwhile.
    pub fn changes(&self, dry_run: bool) -> Changes<'_> {
        Changes {
            lease: (!dry_run).then(|| self.lease()),
            store: self,
            pending: BTreeMap::new(),
            counted: BTreeMap::new(),
            numbered: false,
            pending_bytes: 0,
            dry_run,
            undoable: false,
            behind: None,
            dry_run_keeps: &[],
            scratch: None,
            deferred: &[],
            deferred_bytes: 0,
        }
    }

    /// Reads the side record `key` of `space` and writes what `change` makes of it, in a
    /// transaction of its own, outside the write lease (see the module doc: only for
    /// keyspaces no import or round writes).
    pub(crate) fn update_side_record(
        &self,
        space: Keyspace,
        key: &[u8],
        change: impl FnOnce(Option<&[u8]>) -> SideChange,
    ) -> Result<(), StoreError> {
        let _side = self.side.lock().expect("side records lock");
        let old = self.get(space, key)?;
        let new = match change(old.as_deref()) {
            SideChange::Keep => return Ok(()),
            SideChange::Put(value) => Some(value),
            SideChange::Remove => None,
        };
        let pending: Pending = BTreeMap::from([(space, HashMap::from([(key.to_vec(), new)]))]);
        Transaction {
            pending: Arc::new(pending),
            counted: BTreeMap::new(),
            numbered: false,
            undoable: false,
        }
        .write(self)
    }

    /// Claims those of `subjects` that no other executor of this process is sending; the
    /// claim ends when the returned value is dropped.
    pub fn claim<'s>(&self, subjects: impl IntoIterator<Item = &'s str>) -> Claim<'_> {
        let mut sending = self.sending.lock().expect("sending lock");
        let subjects = subjects
            .into_iter()
            .filter(|s| sending.insert((*s).to_owned()))
            .map(str::to_owned)
            .collect();
        Claim {
            store: self,
            subjects,
        }
    }

    /// Whether an executor of this process is sending `subject` now.
    pub fn is_claimed(&self, subject: &str) -> bool {
        self.sending.lock().expect("sending lock").contains(subject)
    }

    /// The stored bytes at `key` of `space`.
    pub(crate) fn get(&self, space: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let (value, fetched) =
            self.with(space, |pages| Ok((pages.get(key)?, pages.take_fetched())))?;
        // Millions of lookups (an import's) fill sled's cache as a scan does.
        self.relieve(fetched as usize)?;
        Ok(value)
    }

    /// A JSON record, read outside any change set.
    pub(crate) fn get_json<T: DeserializeOwned>(
        &self,
        space: Keyspace,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        self.changes(true).get_json(space, key)
    }

    /// The entries of `space` whose key starts with `prefix` and is at least `from`, in
    /// key order, each given to `read` as slices of the stored page. Written meanwhile,
    /// the scan sees each entry once (see [`Cursor`]).
    pub(crate) fn scan<'a, T: 'a>(
        &'a self,
        space: Keyspace,
        prefix: &[u8],
        from: Vec<u8>,
        read: impl FnMut(&[u8], &[u8]) -> Result<T, StoreError> + 'a,
    ) -> impl Iterator<Item = Result<T, StoreError>> + 'a {
        Scan {
            store: self,
            space,
            cursor: Cursor::new(prefix, from),
            read,
            buffer: std::collections::VecDeque::new(),
            failed: false,
        }
    }

    /// The JSON records of `space` under `prefix`, in key order, with their keys.
    pub(crate) fn scan_json<'a, T: DeserializeOwned + 'a>(
        &'a self,
        space: Keyspace,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<(Vec<u8>, T), StoreError>> + 'a {
        self.scan_json_from(space, prefix, prefix.to_vec())
    }

    /// The JSON records of `space` under `prefix` from the key `from` on.
    pub(crate) fn scan_json_from<'a, T: DeserializeOwned + 'a>(
        &'a self,
        space: Keyspace,
        prefix: &[u8],
        from: Vec<u8>,
    ) -> impl Iterator<Item = Result<(Vec<u8>, T), StoreError>> + 'a {
        self.scan(space, prefix, from, move |key, value| {
            Ok((key.to_vec(), self.parse_json(space, key, value)?))
        })
    }

    /// The JSON records of `space` under `prefix` whose key, after the prefix, lies in
    /// `(lo, hi]` (unbounded where `None`) and is `accepted`, with that rest of the key
    /// (up to its last `:` when `up_to_colon`: records keyed `prefix + owner + ":" + more`).
    /// The rests must sort as the owners do (account keys, for the plan's chunks).
    pub(crate) fn range_json<T: DeserializeOwned>(
        &self,
        space: Keyspace,
        prefix: &str,
        (lo, hi): (Option<&str>, Option<&str>),
        up_to_colon: bool,
        accepted: impl Fn(&str) -> bool,
    ) -> Result<Vec<(String, T)>, StoreError> {
        // ';' sorts right after ':': past every key of `lo` itself.
        let from = match lo {
            None => prefix.as_bytes().to_vec(),
            Some(lo) => format!("{prefix}{lo};").into_bytes(),
        };
        let mut out = Vec::new();
        for entry in self.scan_json_from::<T>(space, prefix.as_bytes(), from) {
            let (key, record) = entry?;
            let rest = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            let rest = match (up_to_colon, rest.rsplit_once(':')) {
                (true, Some((owner, _))) => owner.to_owned(),
                _ => rest,
            };
            if !accepted(&rest) {
                continue;
            }
            if hi.is_some_and(|hi| rest.as_str() > hi) {
                break;
            }
            out.push((rest, record));
        }
        Ok(out)
    }

    /// Counts what a scan read or a commit wrote (sled keeps both); past the relief
    /// threshold, reopens the database when no one else is inside it.
    fn relieve(&self, bytes: usize) -> Result<(), StoreError> {
        let total = self.touched.fetch_add(bytes as u64, Ordering::Relaxed) + bytes as u64;
        if total < self.relief_bytes {
            return Ok(());
        }
        self.give_back_memory().map(drop)
    }

    /// Closes and reopens the database, when no one else is inside it, to give back the
    /// memory of what sled keeps from earlier reads and writes. Whether it did.
    pub fn give_back_memory(&self) -> Result<bool, StoreError> {
        let Ok(mut slot) = self.handles.try_write() else {
            return Ok(false);
        };
        let Ok(_writer) = self.writer.try_lock() else {
            return Ok(false);
        };
        self.touched.store(0, Ordering::Relaxed);
        if let Some(old) = slot.take() {
            old.db.flush().map_err(|e| self.err(e))?;
            drop(old);
        }
        crate::allocator::give_back_freed_memory();
        *slot = Some(open_db(&self.path, self.relief_bytes >> 20, OPEN_PATIENCE)?);
        self.reopens.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// How many times the store was reopened to give back memory.
    pub fn reopens(&self) -> u64 {
        self.reopens.load(Ordering::Relaxed)
    }

    /// The 8 big-endian bytes of a number of the meta keyspace (zero when absent); `what`
    /// names it if it is corrupt.
    fn number(&self, key: &[u8], what: &str) -> Result<[u8; 8], StoreError> {
        match self.get(META, key)? {
            Some(bytes) => bytes.try_into().map_err(|_| self.corrupt(what)),
            None => Ok([0; 8]),
        }
    }

    /// Removes every record of `space` at once (not undoable: for keyspaces that hold
    /// work in progress).
    pub(crate) fn clear(&self, space: Keyspace) -> Result<(), StoreError> {
        self.with(space, |pages| {
            pages.tree().clear()?;
            pages.written();
            Ok(())
        })
    }

    /// The stored value of the counter `name` (see [`Changes::count`]).
    pub fn counter(&self, name: &str) -> Result<i64, StoreError> {
        let what = format!("counter of {name}");
        Ok(i64::from_be_bytes(self.number(&counter_key(name), &what)?))
    }

    /// Records that an import starts (`Some`) or ended (`None`); see [`ImportMarker`].
    /// The undo log is emptied before an import starts (one left by an import whose end
    /// was recorded but not the emptying must not be mistaken for this one's) and after
    /// its end is recorded (a crash in between then rolls back nothing).
    pub fn set_import_marker(&self, marker: Option<&ImportMarker>) -> Result<(), StoreError> {
        let mut changes = self.changes(false);
        match marker {
            Some(m) => {
                self.clear_undo_log()?;
                changes.put_json(META, IMPORT_KEY.to_vec(), m);
                changes.commit()
            }
            None => {
                changes.delete(META, IMPORT_KEY.to_vec());
                changes.commit()?;
                self.clear_undo_log()?;
                self.flush()
            }
        }
    }

    fn undo_log(&self) -> Result<sled::Tree, StoreError> {
        let handles = self.handles()?;
        handles.db.open_tree(undo::TREE).map_err(|e| self.err(e))
    }

    fn clear_undo_log(&self) -> Result<(), StoreError> {
        self.undo_log()?.clear().map_err(|e| self.err(e))
    }

    fn import_marker(&self) -> Result<Option<ImportMarker>, StoreError> {
        self.get_json(META, IMPORT_KEY)
    }

    /// The import found interrupted, and rolled back, when the store was opened.
    pub fn rolled_back_import(&self) -> Option<ImportMarker> {
        self.rolled_back.lock().expect("rolled back lock").clone()
    }

    /// Puts back the pages the import in progress replaced, in transactions of about
    /// [`Changes::BATCH_BYTES`] (each also removing the records it used, so a rollback cut
    /// short goes on where it stopped), then ends the import. The sequence stays where it
    /// is: a number handed out is never handed out again.
    pub fn roll_back_import(&self) -> Result<(), StoreError> {
        while self.put_back_some_pages()? {}
        let mut sequence = self.changes(false);
        let seq = self.seq.load(Ordering::SeqCst).to_be_bytes().to_vec();
        sequence.put(META, SEQ_KEY.to_vec(), seq);
        sequence.commit()?;
        self.set_import_marker(None)
    }

    /// Puts back the first pages of the undo log; whether there were any.
    fn put_back_some_pages(&self) -> Result<bool, StoreError> {
        let _writer = self.writer.lock().expect("writer lock");
        let handles = self.handles()?;
        let log = handles.db.open_tree(undo::TREE).map_err(|e| self.err(e))?;
        let mut spaces: BTreeMap<String, sled::Batch> = BTreeMap::new();
        let (mut used, mut bytes) = (sled::Batch::default(), 0);
        for record in log.iter() {
            let (key, value) = record.map_err(|e| self.err(e))?;
            let record = undo::parse(&key, &value)
                .ok_or_else(|| self.corrupt("a record of the undo log is malformed"))?;
            let batch = spaces.entry(record.space.to_owned()).or_default();
            match record.page {
                Some(page) => batch.insert(record.fence, page),
                None => batch.remove(record.fence),
            }
            used.remove(&key);
            bytes += value.len();
            if bytes >= Changes::BATCH_BYTES {
                break;
            }
        }
        if spaces.is_empty() {
            return Ok(false);
        }
        let mut trees = Vec::new();
        for name in spaces.keys() {
            trees.push(handles.db.open_tree(name).map_err(|e| self.err(e))?);
        }
        trees.push(log);
        let mut batches: Vec<sled::Batch> = spaces.into_values().collect();
        batches.push(used);
        apply_together(&trees, batches).map_err(|e| self.err(e))?;
        // The pages read before are the import's: forgotten.
        for pages in handles.spaces.lock().expect("keyspaces lock").values() {
            pages.written();
        }
        handles.db.flush().map_err(|e| self.err(e))?;
        Ok(true)
    }

    /// Makes every committed change durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        let handles = self.handles()?;
        handles.db.flush().map(drop).map_err(|e| self.err(e))
    }
}

/// What [`Store::update_side_record`] does with the record it read.
pub enum SideChange {
    Keep,
    Put(Vec<u8>),
    Remove,
}

/// The store's write lease, held while it lives (on one thread: it is not `Send`, so it
/// cannot be held across an `.await` of a task that may move).
pub struct Lease<'a>(#[allow(dead_code)] parking_lot::ReentrantMutexGuard<'a, ()>);

/// A read guard on the open database.
struct HandlesGuard<'a>(RwLockReadGuard<'a, Option<Handles>>);

impl std::ops::Deref for HandlesGuard<'_> {
    type Target = Handles;

    fn deref(&self) -> &Handles {
        self.0.as_ref().expect("checked when taken")
    }
}

/// Makes the store's folder, when missing, readable by its owner only whatever the umask:
/// it holds the whole directory of people.
fn make_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if path.exists() {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::DirBuilder::new().mode(0o700).create(path)?;
    // The umask may have taken bits away, never added any; set exactly.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o700))
}

/// Opens the sled database at `path`, waiting up to `patience` for another holder of its
/// lock to let go.
fn open_db(path: &Path, cache_mb: u64, patience: Duration) -> Result<Handles, StoreError> {
    if compressed_by_sled(path) {
        return Err(StoreError::Unreleased {
            path: path.into(),
            layout: "pages compressed by sled".into(),
        });
    }
    let mut waited = Duration::ZERO;
    loop {
        let opened = sled::Config::new()
            .path(path)
            .cache_capacity(cache_mb * 1024 * 1024)
            .open();
        match opened {
            Ok(db) => {
                return Ok(Handles {
                    db,
                    spaces: Mutex::default(),
                });
            }
            Err(sled::Error::Io(io)) if io.to_string().contains("lock") => {
                if waited >= patience {
                    return Err(StoreError::Locked { path: path.into() });
                }
                std::thread::sleep(OPEN_STEP);
                waited += OPEN_STEP;
            }
            Err(source) => return Err(StoreError::sled(path, source)),
        }
    }
}

/// Whether sled compresses the store at `path` itself: stores of development builds,
/// before pages were compressed here (never released; sled refuses to change the setting
/// of an existing store).
fn compressed_by_sled(path: &Path) -> bool {
    // The file ends in a binary checksum.
    std::fs::read(path.join("conf")).is_ok_and(|conf| {
        String::from_utf8_lossy(&conf)
            .lines()
            .any(|l| l.trim() == "use_compression: true")
    })
}

/// The entries of a scan (see [`Store::scan`]): read a page at a time under a read guard
/// that is let go between pages.
struct Scan<'a, T, F> {
    store: &'a Store,
    space: Keyspace,
    cursor: Cursor,
    read: F,
    buffer: std::collections::VecDeque<Result<T, StoreError>>,
    failed: bool,
}

impl<T, F: FnMut(&[u8], &[u8]) -> Result<T, StoreError>> Iterator for Scan<'_, T, F> {
    type Item = Result<T, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.buffer.is_empty() && !self.failed {
            let Scan {
                store,
                space,
                cursor,
                read,
                buffer,
                ..
            } = self;
            let step = store.with(*space, |pages| {
                cursor.step(pages, |key, value| buffer.push_back(read(key, value)))
            });
            match step {
                Ok(Some(bytes)) => {
                    if let Err(e) = store.relieve(bytes) {
                        self.buffer.push_back(Err(e));
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    self.failed = true;
                    self.buffer.push_back(Err(e));
                }
            }
        }
        self.buffer.pop_front()
    }
}

/// Changes held in memory, by keyspace, then key (`None` removes the key): looked up for
/// every row, sorted only when written.
type Pending = BTreeMap<Keyspace, HashMap<Vec<u8>, Option<Vec<u8>>>>;

/// Changes to the store, held in memory and read back through, then written in one
/// transaction by [`Changes::commit`]. In a dry run `commit` writes nothing and keeps the
/// changes, so later reads still see them.
pub struct Changes<'a> {
    /// The write lease, held by changes that may be written.
    #[allow(dead_code)]
    lease: Option<Lease<'a>>,
    store: &'a Store,
    pending: Pending,
    /// What these changes add to each counter: added to the stored counter when written,
    /// so that changes built at once by two threads both count.
    counted: BTreeMap<&'static str, i64>,
    /// Whether a sequence number was handed out (the sequence is then written).
    numbered: bool,
    /// Approximate size of `pending`, so callers can commit before memory grows.
    pending_bytes: usize,
    dry_run: bool,
    /// Record what each change replaces (see [`Changes::undoable`]).
    undoable: bool,
    /// The thread writing what [`Changes::commit_behind`] handed it (started by the first).
    behind: Option<Behind>,
    /// In a dry run, the keyspaces whose changes are kept (see
    /// [`dry_run_keeps`](Self::dry_run_keeps); empty: all of them).
    dry_run_keeps: &'static [Keyspace],
    /// Where a dry run keeps those changes once handed on (made at the first).
    scratch: Option<scratch::Scratch>,
    /// Keyspaces whose changes wait for `commit_behind_all` (see [`Changes::defer`]), and
    /// about how many bytes they hold.
    deferred: &'static [Keyspace],
    deferred_bytes: usize,
}

/// The thread that writes what [`Changes::commit_behind`] hands it, one transaction after
/// the other (one thread for all of them, so that its compression contexts are made once).
struct Behind {
    store: Store,
    transactions: std::sync::mpsc::Sender<Transaction>,
    results: std::sync::mpsc::Receiver<Result<(), StoreError>>,
    thread: std::thread::JoinHandle<()>,
    /// The changes being written, read through until they land. One at a time: two (a
    /// slow one of big records taken while the next is made) measured no faster at 5M
    /// rows, and 15 MB more at the import's peak.
    landing: Option<Arc<Pending>>,
}

impl Behind {
    fn start(store: &Store) -> Result<Behind, StoreError> {
        let (transactions, to_write) = std::sync::mpsc::channel::<Transaction>();
        let (answer, results) = std::sync::mpsc::channel();
        let writer = store.clone();
        let thread = std::thread::Builder::new()
            .name("commit".into())
            .spawn(move || {
                for transaction in to_write {
                    if answer.send(transaction.write(&writer)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| store.err(sled::Error::Io(e)))?;
        Ok(Behind {
            store: store.clone(),
            transactions,
            results,
            thread,
            landing: None,
        })
    }

    /// Hands `transaction` to the thread (the one before has landed).
    fn write(&mut self, transaction: Transaction) {
        self.landing = Some(transaction.pending.clone());
        // A thread that ended has panicked: `land` says so (an error, not a second panic
        // while the changes are dropped).
        let _ = self.transactions.send(transaction);
    }

    /// Waits for the transaction being written to land.
    fn land(&mut self) -> Result<(), StoreError> {
        if self.landing.take().is_none() {
            return Ok(());
        }
        self.results.recv().unwrap_or_else(|_| {
            let ended = sled::Error::ReportableBug("the thread writing changes panicked".into());
            Err(self.store.err(ended))
        })
    }

    /// The value `key` of `space` takes in the transaction being written.
    fn get(&self, space: Keyspace, key: &[u8]) -> Option<Option<Vec<u8>>> {
        self.landing.as_ref()?.get(&space)?.get(key).cloned()
    }

    /// Waits for the changes being written, and for the thread to end.
    fn stop(mut self) -> Result<(), StoreError> {
        let landed = self.land();
        drop(self.transactions);
        let _ = self.thread.join();
        landed
    }
}

/// One change of a transaction: a key and its new value (`None` removes it).
type Change<'a> = (&'a [u8], Option<&'a [u8]>);

/// What one transaction writes.
struct Transaction {
    pending: Arc<Pending>,
    counted: BTreeMap<&'static str, i64>,
    numbered: bool,
    undoable: bool,
}

impl<'a> Changes<'a> {
    /// About how much a big change should hold before it commits: sled holds everything a
    /// transaction touches until it ends, so small, ordered transactions keep memory flat.
    pub const BATCH_BYTES: usize = 4 << 20;

    pub fn store(&self) -> &'a Store {
        self.store
    }

    /// Makes every commit of these changes record, in `undo`, what the keys it changes
    /// held before, so that [`Store::roll_back_import`] can put it back. For imports,
    /// between [`Store::set_import_marker`] `Some` and `None`.
    pub fn undoable(mut self) -> Self {
        self.undoable = true;
        self
    }

    /// The bytes at `key` of `space`, read through the held changes and those landing.
    pub(crate) fn get(&self, space: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let held = self.pending.get(&space).and_then(|p| p.get(key)).cloned();
        let landing = || self.behind.as_ref()?.get(space, key);
        if let Some(value) = held.or_else(landing) {
            return Ok(value);
        }
        if let Some(scratch) = &self.scratch
            && let Some(value) = scratch.get(space, key)?
        {
            return Ok(value);
        }
        self.store.get(space, key)
    }

    pub(crate) fn put(&mut self, space: Keyspace, key: Vec<u8>, value: Vec<u8>) {
        self.held(space, key.len() + value.len() + 64);
        self.pending
            .entry(space)
            .or_default()
            .insert(key, Some(value));
    }

    /// Adds `delta` to the counter `name` when the changes are committed.
    pub fn count(&mut self, name: &'static str, delta: i64) {
        *self.counted.entry(name).or_default() += delta;
    }

    /// A JSON record, read through the held changes.
    pub(crate) fn get_json<T: DeserializeOwned>(
        &self,
        space: Keyspace,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        let Some(bytes) = self.get(space, key)? else {
            return Ok(None);
        };
        self.store.parse_json(space, key, &bytes).map(Some)
    }

    /// Holds a JSON record for the next commit.
    pub(crate) fn put_json<T: Serialize>(&mut self, space: Keyspace, key: Vec<u8>, value: &T) {
        self.put(
            space,
            key,
            serde_json::to_vec(value).expect("records serialise"),
        );
    }

    /// Holds the removal of a record for the next commit.
    pub(crate) fn delete(&mut self, space: Keyspace, key: Vec<u8>) {
        self.held(space, key.len() + 64);
        self.pending.entry(space).or_default().insert(key, None);
    }

    /// Counts `bytes` more held for `space` (apart for a deferred keyspace).
    fn held(&mut self, space: Keyspace, bytes: usize) {
        if self.deferred.contains(&space) {
            self.deferred_bytes += bytes;
        } else {
            self.pending_bytes += bytes;
        }
    }

    /// The changes to `spaces` are held until [`commit_behind_all`](Self::commit_behind_all)
    /// or [`commit`](Self::commit), not written by each [`commit_behind`](Self::commit_behind):
    /// for a keyspace a big change writes all over (a school index, when rows come in id
    /// order with schools interleaved), so that each of its pages is rewritten once per
    /// batch of the caller's, not once per transaction.
    pub(crate) fn defer(mut self, spaces: &'static [Keyspace]) -> Self {
        self.deferred = spaces;
        self
    }

    /// Like [`commit_behind`](Self::commit_behind), with the deferred keyspaces too.
    pub fn commit_behind_all(&mut self) -> Result<(), StoreError> {
        self.hand_behind(true)
    }

    /// The next number of the store's one sequence (journal entries, history), so that
    /// records sort in the order they were made.
    pub fn next_seq(&mut self) -> u64 {
        self.numbered = true;
        self.store.seq.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.counted.is_empty()
    }

    /// About how many bytes of memory the held changes take.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Writes the held changes in one transaction (nothing in a dry run), once those
    /// handed to [`commit_behind`](Self::commit_behind) landed.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        self.land()?;
        match self.take(true) {
            Some(transaction) => transaction.write(self.store),
            None => Ok(()),
        }
    }

    /// For a dry run: only the changes to `spaces` are kept for later reads, on disk
    /// ([`scratch`]); the rest is forgotten at each [`commit_behind`](Self::commit_behind),
    /// so that a dry run of a big change holds about one batch in memory.
    pub(crate) fn dry_run_keeps(mut self, spaces: &'static [Keyspace]) -> Self {
        self.dry_run_keeps = spaces;
        self
    }

    /// Like [`commit`](Self::commit), but the transaction is written by another thread
    /// while the caller goes on making changes (read through it until it lands): a big
    /// change (an import) makes its next batch on one core while the last is compressed
    /// and written on the other. The transactions still land one after the other, in
    /// order; an error is answered by a later `commit` or `commit_behind` (the changes
    /// held then are kept), and dropping the changes waits for those being written.
    pub fn commit_behind(&mut self) -> Result<(), StoreError> {
        self.hand_behind(false)
    }

    /// Hands the held changes (the deferred ones too when `all`) to the commit thread.
    fn hand_behind(&mut self, all: bool) -> Result<(), StoreError> {
        if self.dry_run {
            let keeps = self.dry_run_keeps;
            if !keeps.is_empty() {
                let mut pending = std::mem::take(&mut self.pending);
                pending.retain(|space, _| keeps.contains(space));
                let scratch = match &mut self.scratch {
                    Some(scratch) => scratch,
                    None => self.scratch.insert(scratch::Scratch::open(self.store)?),
                };
                scratch.keep(pending)?;
                self.counted.clear();
                self.pending_bytes = 0;
                self.deferred_bytes = 0;
            }
            return Ok(());
        }
        let behind = match &mut self.behind {
            Some(behind) => behind,
            None => self.behind.insert(Behind::start(self.store)?),
        };
        behind.land()?;
        if let Some(transaction) = self.take(all) {
            self.behind.as_mut().expect("started").write(transaction);
        }
        Ok(())
    }

    /// Waits for the changes handed to [`commit_behind`](Self::commit_behind) to land.
    fn land(&mut self) -> Result<(), StoreError> {
        self.behind.as_mut().map_or(Ok(()), Behind::land)
    }

    /// The held changes as a transaction (`None` when nothing is held, and in a dry run,
    /// which keeps them).
    fn take(&mut self, all: bool) -> Option<Transaction> {
        if self.dry_run || self.is_empty() && !self.numbered {
            return None;
        }
        self.pending_bytes = 0;
        // Unless `all`, the deferred keyspaces stay held (see `defer`).
        let held: Pending = match all {
            true => {
                self.deferred_bytes = 0;
                Pending::new()
            }
            false => self
                .deferred
                .iter()
                .filter_map(|space| Some((*space, self.pending.remove(space)?)))
                .collect(),
        };
        let pending = std::mem::replace(&mut self.pending, held);
        Some(Transaction {
            pending: Arc::new(pending),
            counted: std::mem::take(&mut self.counted),
            numbered: std::mem::take(&mut self.numbered),
            undoable: self.undoable,
        })
    }
}

impl Drop for Changes<'_> {
    /// Changes dropped while some land (an import ending on an error) wait for them: what
    /// comes next (rolling the import back) must see them written.
    fn drop(&mut self) {
        if let Some(Err(error)) = self.behind.take().map(Behind::stop) {
            tracing::warn!(%error, "changes written in the background failed");
        }
    }
}

impl Transaction {
    /// Writes the changes in one transaction over their keyspaces: each keyspace's changes
    /// sorted and merged into its pages, the counters folded in and, for an undoable
    /// change, the pages it replaces recorded in the undo log (the first time).
    fn write(self, store: &Store) -> Result<(), StoreError> {
        let _writer = store.writer.lock().expect("writer lock");
        let mut meta: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for (name, delta) in &self.counted {
            let value = store.counter(name)? + delta;
            meta.push((counter_key(name), value.to_be_bytes().to_vec()));
        }
        if self.numbered {
            let seq = store.seq.load(Ordering::SeqCst);
            meta.push((SEQ_KEY.to_vec(), seq.to_be_bytes().to_vec()));
        }
        let mut spaces: BTreeMap<Keyspace, Vec<Change>> = BTreeMap::new();
        for (space, changes) in self.pending.iter() {
            let sorted = changes
                .iter()
                .filter(|(key, _)| *space != META || !meta.iter().any(|(m, _)| m == *key))
                .map(|(key, value)| (key.as_slice(), value.as_deref()));
            spaces.entry(*space).or_default().extend(sorted);
        }
        if !meta.is_empty() {
            let folded = meta
                .iter()
                .map(|(key, value)| (key.as_slice(), Some(value.as_slice())));
            spaces.entry(META).or_default().extend(folded);
        }
        if spaces.is_empty() {
            return Ok(());
        }
        let handles = store.handles()?;
        let undo_tree = match self.undoable {
            true => Some(handles.db.open_tree(undo::TREE).map_err(|e| store.err(e))?),
            false => None,
        };
        let (mut written, mut trees, mut batches) = (Vec::new(), Vec::new(), Vec::new());
        let mut bytes = 0;
        let mut undo_log = BTreeMap::new();
        for (space, mut sorted) in spaces {
            let pages = handles.pages(space).map_err(|e| store.err(e))?;
            sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
            let prepared = pages
                .prepare(sorted, undo_tree.is_some())
                .map_err(|e| store.err(e))?;
            if let Some(tree) = &undo_tree {
                undo::record(tree, space.0, prepared.replaced, &mut undo_log)
                    .map_err(|e| store.err(e))?;
            }
            bytes += prepared.bytes;
            trees.push(pages.tree().clone());
            written.push(pages);
            batches.push(prepared.batch);
        }
        if let Some(tree) = undo_tree.filter(|_| !undo_log.is_empty()) {
            let mut batch = sled::Batch::default();
            for (key, value) in undo_log {
                bytes += value.len();
                batch.insert(key, value);
            }
            trees.push(tree);
            batches.push(batch);
        }
        let result = apply_together(&trees, batches);
        for pages in &written {
            pages.written();
        }
        result.map_err(|e| store.err(e))?;
        handles.db.flush().map_err(|e| store.err(e))?;
        tracing::trace!(keyspaces = written.len(), "transaction written");
        // Every handle on the database goes before `relieve` may reopen it.
        drop((written, trees, handles, _writer));
        store.relieve(bytes)
    }
}

/// Applies `batches[i]` to `trees[i]`, all or none.
fn apply_together(trees: &[sled::Tree], mut batches: Vec<sled::Batch>) -> sled::Result<()> {
    if let [tree] = trees {
        return tree.apply_batch(batches.pop().expect("one batch a tree"));
    }
    trees
        .transaction(|views| {
            for (view, batch) in views.iter().zip(&batches) {
                view.apply_batch(batch)?;
            }
            Ok(())
        })
        .map_err(|e: sled::transaction::TransactionError<()>| match e {
            sled::transaction::TransactionError::Storage(e) => e,
            sled::transaction::TransactionError::Abort(()) => {
                unreachable!("the transaction never aborts")
            }
        })
}

/// The undo log of the import in progress: a plain sled tree (its values are pages,
/// compressed already), keyed by a keyspace's name, a zero byte and a page's fence,
/// holding the page as the import found it (`1` and its bytes) or that there was none
/// (`0`). Only the first rewrite of a page is recorded: that is the page to put back.
mod undo {
    use std::collections::BTreeMap;

    /// The tree. (An earlier build kept one record per key in a tree named `undo`: see
    /// [`super::Store::check_no_old_undo`].)
    pub const TREE: &str = "undo_pages";

    /// Adds to `log` the record of each page in `replaced` of the keyspace `space` that
    /// neither the tree nor `log` records yet.
    pub fn record(
        tree: &sled::Tree,
        space: &str,
        replaced: Vec<(Vec<u8>, Option<sled::IVec>)>,
        log: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    ) -> sled::Result<()> {
        for (fence, old) in replaced {
            let key = [space.as_bytes(), &[0], &fence].concat();
            if log.contains_key(&key) || tree.contains_key(&key)? {
                continue;
            }
            let value = match old {
                Some(page) => [&[1u8][..], &page].concat(),
                None => vec![0],
            };
            log.insert(key, value);
        }
        Ok(())
    }

    /// A record read back: where, and the page to put back (`None`: remove the page).
    pub struct Record<'a> {
        pub space: &'a str,
        pub fence: &'a [u8],
        pub page: Option<&'a [u8]>,
    }

    /// The record of `key` and `value`; `None` if malformed.
    pub fn parse<'a>(key: &'a [u8], value: &'a [u8]) -> Option<Record<'a>> {
        let at = key.iter().position(|&b| b == 0)?;
        let page = match value.split_first()? {
            (1, page) => Some(page),
            (0, []) => None,
            _ => return None,
        };
        Some(Record {
            space: std::str::from_utf8(&key[..at]).ok()?,
            fence: &key[at + 1..],
            page,
        })
    }
}

mod scratch;

#[cfg(test)]
mod tests;
