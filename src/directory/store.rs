//! The directory store: accounts and their indexes in one paged map (see [`crate::pages`])
//! over one sled tree, so that a batch of changes to accounts, their addresses, their
//! schools and the counters lands atomically.
//!
//! Keys of the `directory` map:
//! - `a:{account key}` → the account (JSON)
//! - `e:{address}` → the account key that holds the address (current or former)
//! - `s:{npsn}:{account key}` → nothing: the accounts of a school
//! - `n:{domain}:{base}` → the next number to try for that base (u64, big-endian)
//! - `c:{name}` → a counter: how many accounts are in each state, and the counts other
//!   modules keep (i64, big-endian)
//! - `m:seq` → the last number handed out by [`Changes::next_seq`]
//!
//! and, written by the reconciler's modules, `r:`/`u:`/`o:`/`m:scan` (see
//! [`crate::remote`]), `j:`/`p:` ([`crate::journal`]), `h:`/`q:`/`x:`/`g:`
//! ([`crate::audit`]), `l:` ([`crate::access`]).

use super::model::{Account, AccountKey, IdType, Jenjang};
use super::naming;
use crate::pages::{self, Pages};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The layout version this build writes. Bump it with a migration when the layout changes.
pub const SCHEMA_VERSION: u32 = 1;

const SCHEMA_KEY: &[u8] = b"schema_version";
const IMPORT_KEY: &[u8] = b"import_in_progress";
const SEQ_KEY: &[u8] = b"m:seq";
const STATES: [&str; 3] = ["active", "retiring", "suspended"];

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
    #[error("the store at {path} is damaged: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("store {path}: {source}")]
    Sled { path: PathBuf, source: sled::Error },
}

/// The accounts of the directory, on disk.
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    pages: Pages,
    /// Held while a commit folds its counters and writes: the daemon's loop and the
    /// commands of its control socket write the same store from several threads.
    writer: Mutex<()>,
    /// The last sequence number handed out; `m:seq` is written from it at each commit, so
    /// two sets of changes built at once never get the same number.
    seq: AtomicU64,
    /// Journal subjects an executor of this process is sending now: another one (a
    /// helpdesk repair beside the daemon's push) leaves them alone.
    sending: Mutex<HashSet<String>>,
}

/// Journal subjects claimed by one executor (see [`Store::claim`]).
pub struct Claim<'a> {
    store: &'a Store,
    pub subjects: HashSet<String>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut sending = self.store.sending.lock().expect("sending lock");
        for subject in &self.subjects {
            sending.remove(subject);
        }
    }
}

/// Counts of accounts by desired state, as `status` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    pub total: u64,
    pub active: u64,
    pub retiring: u64,
    pub suspended: u64,
}

/// Written when an import starts applying and removed when it ends: if it is found later,
/// that import was interrupted and re-running it finishes the work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportMarker {
    pub file: String,
    pub started: jiff::Timestamp,
}

impl Store {
    /// Opens (or creates) the store at `path` with a page cache of `cache_mb` MiB.
    pub fn open(path: &Path, cache_mb: u64) -> Result<Store, StoreError> {
        // sled's background threads release the file lock a moment after the store that
        // held it is dropped (by this process, or by a command that just ended): a lock
        // is tried again for up to two seconds before the store counts as in use.
        let mut tries = 0;
        let db = loop {
            let opened = sled::Config::new()
                .path(path)
                .cache_capacity(cache_mb * 1024 * 1024)
                .open();
            match opened {
                Ok(db) => break db,
                Err(sled::Error::Io(io)) if io.to_string().contains("lock") => {
                    tries += 1;
                    if tries >= 20 {
                        return Err(StoreError::Locked { path: path.into() });
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(source) => {
                    return Err(StoreError::Sled {
                        path: path.into(),
                        source,
                    });
                }
            }
        };
        let mut store = Store {
            path: path.into(),
            pages: Pages::new(db.open_tree("directory").map_err(|e| sled_err(path, e))?),
            db,
            writer: Mutex::default(),
            seq: AtomicU64::new(0),
            sending: Mutex::default(),
        };
        store.check_schema()?;
        let seq = store.number(SEQ_KEY, "the sequence counter")?;
        *store.seq.get_mut() = u64::from_be_bytes(seq);
        Ok(store)
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        match self.db.get(SCHEMA_KEY).map_err(|e| self.err(e))? {
            None => {
                self.db
                    .insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())
                    .map_err(|e| self.err(e))?;
                Ok(())
            }
            Some(bytes) => {
                let found = <[u8; 4]>::try_from(bytes.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| self.corrupt("schema_version is not a 4-byte number"))?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::TooNew {
                        path: self.path.clone(),
                        found,
                    });
                }
                Ok(())
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: sled::Error) -> StoreError {
        sled_err(&self.path, source)
    }

    fn corrupt(&self, detail: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            detail: detail.into(),
        }
    }

    /// Starts a set of changes; nothing is written until [`Changes::commit`].
    pub fn changes(&self, dry_run: bool) -> Changes<'_> {
        Changes {
            store: self,
            pending: HashMap::new(),
            counted: BTreeMap::new(),
            numbered: false,
            pending_bytes: 0,
            dry_run,
        }
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

    pub fn account(&self, key: &AccountKey) -> Result<Option<Account>, StoreError> {
        self.changes(true).account(key)
    }

    /// The account holding `email`, as its current or a former address.
    pub fn account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        let owner = self
            .pages
            .get(&email_key(&email.to_ascii_lowercase()))
            .map_err(|e| self.err(e))?;
        match owner {
            None => Ok(None),
            Some(owner) => {
                let key = std::str::from_utf8(&owner)
                    .ok()
                    .and_then(AccountKey::parse)
                    .ok_or_else(|| {
                        self.corrupt(format!("address index of {email} is unreadable"))
                    })?;
                self.account(&key)
            }
        }
    }

    /// Every account of the person `id_type:id`, one per level.
    pub fn accounts_of_person(
        &self,
        id_type: IdType,
        id: &str,
    ) -> Result<Vec<Account>, StoreError> {
        let mut found = Vec::new();
        for &jenjang in Jenjang::ALL {
            let key = AccountKey {
                jenjang,
                id_type,
                id: id.to_owned(),
            };
            found.extend(self.account(&key)?);
        }
        Ok(found)
    }

    /// A JSON record of the map (remote, journal, audit), read outside any change set.
    pub fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        self.changes(true).get_json(key)
    }

    /// The records under `prefix`, in key order, with their keys.
    pub fn scan_json<'a, T: serde::de::DeserializeOwned + 'a>(
        &'a self,
        prefix: &'a [u8],
    ) -> impl Iterator<Item = Result<(Vec<u8>, T), StoreError>> + 'a {
        self.scan_json_from(prefix, prefix.to_vec())
    }

    /// The records under `prefix` whose key is at least `from`, in key order. Collect
    /// them before writing to the store (see [`Pages::scan_from`]).
    pub fn scan_json_from<'a, T: serde::de::DeserializeOwned + 'a>(
        &'a self,
        prefix: &'a [u8],
        from: Vec<u8>,
    ) -> impl Iterator<Item = Result<(Vec<u8>, T), StoreError>> + 'a {
        self.pages
            .scan_map(prefix, from, |key, value| {
                (key.to_vec(), serde_json::from_slice::<T>(value))
            })
            .map(move |entry| {
                let (key, record) = entry.map_err(|e| self.err(e))?;
                let record = record.map_err(|e| {
                    self.corrupt(format!("record {}: {e}", String::from_utf8_lossy(&key)))
                })?;
                Ok((key, record))
            })
    }

    /// Every account, in key order.
    pub fn accounts(&self) -> impl Iterator<Item = Result<Account, StoreError>> + '_ {
        self.scan_json(b"a:")
            .map(|entry| entry.map(|(_, account)| account))
    }

    /// The keys of the accounts whose school is `npsn`.
    pub fn school_members(&self, npsn: &str) -> Result<Vec<AccountKey>, StoreError> {
        let prefix = format!("s:{npsn}:");
        self.pages
            .scan_prefix(prefix.as_bytes())
            .map(|entry| {
                let (k, _) = entry.map_err(|e| self.err(e))?;
                std::str::from_utf8(&k[prefix.len()..])
                    .ok()
                    .and_then(AccountKey::parse)
                    .ok_or_else(|| self.corrupt("school index holds an unreadable key"))
            })
            .collect()
    }

    /// The 8 big-endian bytes of a number stored at `key` (zero when absent); `what` names
    /// it if it is corrupt.
    fn number(&self, key: &[u8], what: &str) -> Result<[u8; 8], StoreError> {
        match self.pages.get(key).map_err(|e| self.err(e))? {
            Some(bytes) => bytes.try_into().map_err(|_| self.corrupt(what)),
            None => Ok([0; 8]),
        }
    }

    /// The stored value of the counter `name` (a state's accounts, or another count kept
    /// with [`Changes::count`]).
    pub fn counter(&self, name: &str) -> Result<i64, StoreError> {
        let what = format!("counter of {name}");
        Ok(i64::from_be_bytes(self.number(&counter_key(name), &what)?))
    }

    pub fn counts(&self) -> Result<StateCounts, StoreError> {
        let mut counts = StateCounts::default();
        for state in STATES {
            let n = u64::try_from(self.counter(state)?).unwrap_or(0);
            match state {
                "active" => counts.active = n,
                "retiring" => counts.retiring = n,
                _ => counts.suspended = n,
            }
        }
        counts.total = counts.active + counts.retiring + counts.suspended;
        Ok(counts)
    }

    pub fn set_import_marker(&self, marker: Option<&ImportMarker>) -> Result<(), StoreError> {
        match marker {
            Some(m) => self
                .db
                .insert(
                    IMPORT_KEY,
                    serde_json::to_vec(m).expect("marker serialises"),
                )
                .map(drop),
            None => self.db.remove(IMPORT_KEY).map(drop),
        }
        .map_err(|e| self.err(e))?;
        self.flush()
    }

    pub fn import_marker(&self) -> Result<Option<ImportMarker>, StoreError> {
        let Some(bytes) = self.db.get(IMPORT_KEY).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| self.corrupt(format!("import marker: {e}")))
    }

    /// Makes every committed change durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(drop).map_err(|e| self.err(e))
    }
}

fn counter_key(state: &str) -> Vec<u8> {
    format!("c:{state}").into_bytes()
}

fn sled_err(path: &Path, source: sled::Error) -> StoreError {
    StoreError::Sled {
        path: path.into(),
        source,
    }
}

fn account_key(key: &AccountKey) -> Vec<u8> {
    format!("a:{key}").into_bytes()
}

/// The index key of an address: domain first, so that the addresses of one domain, and
/// the numbered variants of one base, lie together in the index's pages.
fn email_key(email: &str) -> Vec<u8> {
    let (local, domain) = email.rsplit_once('@').unwrap_or((email, ""));
    format!("e:{domain}:{local}").into_bytes()
}

fn school_key(npsn: &str, key: &AccountKey) -> Vec<u8> {
    format!("s:{npsn}:{key}").into_bytes()
}

/// Changes to the store, held in memory and read back through, then written in one atomic
/// sled batch by [`Changes::commit`]. In a dry run `commit` writes nothing and keeps the
/// changes, so later reads still see them.
pub struct Changes<'a> {
    store: &'a Store,
    /// A hash map: looked up for every row, sorted only when written.
    pending: HashMap<Vec<u8>, Option<Vec<u8>>>,
    /// What these changes add to each state's counter: added to the stored counter when
    /// written, so that changes built at once by two threads both count.
    counted: BTreeMap<&'static str, i64>,
    /// Whether a sequence number was handed out (`m:seq` is then written).
    numbered: bool,
    /// Approximate size of `pending`, so callers can commit before memory grows.
    pending_bytes: usize,
    dry_run: bool,
}

impl Changes<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.pending.get(key) {
            Some(value) => Ok(value.clone()),
            None => self.store.pages.get(key).map_err(|e| self.store.err(e)),
        }
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.pending_bytes += key.len() + value.len() + 64;
        self.pending.insert(key, Some(value));
    }

    fn remove(&mut self, key: Vec<u8>) {
        self.pending_bytes += key.len() + 64;
        self.pending.insert(key, None);
    }

    pub fn account(&self, key: &AccountKey) -> Result<Option<Account>, StoreError> {
        let Some(bytes) = self.get(&account_key(key))? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| self.store.corrupt(format!("account {key}: {e}")))
    }

    /// The key of the account holding `email`, if any.
    fn email_owner(&self, email: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .get(&email_key(email))?
            .map(|owner| String::from_utf8_lossy(&owner).into_owned()))
    }

    /// Adds `delta` to the counter `name` when the changes are committed (so that two sets
    /// of changes built at once both count).
    pub fn count(&mut self, name: &'static str, delta: i64) {
        *self.counted.entry(name).or_default() += delta;
    }

    /// A JSON record of the map, read through the held changes.
    pub fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        let Some(bytes) = self.get(key)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            self.store
                .corrupt(format!("record {}: {e}", String::from_utf8_lossy(key)))
        })
    }

    /// Holds a JSON record for the next commit.
    pub fn put_json<T: Serialize>(&mut self, key: Vec<u8>, value: &T) {
        self.put(key, serde_json::to_vec(value).expect("records serialise"));
    }

    /// Holds the removal of a record for the next commit.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.remove(key);
    }

    /// The next number of the store's one sequence (journal entries, audit entries), so
    /// that records sort in the order they were made.
    pub fn next_seq(&mut self) -> Result<u64, StoreError> {
        self.numbered = true;
        Ok(self.store.seq.fetch_add(1, Ordering::SeqCst) + 1)
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Writes `account`, keeping the address index, the school index and the state
    /// counters in step with what `old` (the stored version, if any) had.
    pub fn put_account(
        &mut self,
        old: Option<&Account>,
        account: &Account,
    ) -> Result<(), StoreError> {
        let key = account.key();
        let owner = key.to_string().into_bytes();
        for email in std::iter::once(&account.email).chain(&account.former_emails) {
            self.put(email_key(email), owner.clone());
        }
        match old {
            Some(old) if old.npsn == account.npsn => {}
            Some(old) => {
                self.remove(school_key(&old.npsn, &key));
                self.put(school_key(&account.npsn, &key), Vec::new());
            }
            None => self.put(school_key(&account.npsn, &key), Vec::new()),
        }
        let old_state = old.map(|o| o.state.name());
        if old_state != Some(account.state.name()) {
            if let Some(old_state) = old_state {
                self.count(old_state, -1);
            }
            self.count(account.state.name(), 1);
        }
        let json = serde_json::to_vec(account).expect("accounts serialise");
        self.put(account_key(&key), json);
        Ok(())
    }

    /// Reserves `email` for `key` in the address index.
    pub fn reserve_email(&mut self, email: &str, key: &AccountKey) {
        self.put(email_key(email), key.to_string().into_bytes());
    }

    /// Finds a free address for `key` in `domain` from `base` (see
    /// [`naming::local_part_base`]): the bare base if free, else the next numbered
    /// candidate. Deterministic for a given order of allocation; an address already held by
    /// `key` counts as free. The counter of numbered candidates is only written once a base
    /// is taken, which most are not. The caller reserves the address.
    pub fn allocate_email(
        &mut self,
        base: &str,
        domain: &str,
        key: &AccountKey,
    ) -> Result<String, StoreError> {
        if let Some(local) = naming::candidate(base, 0) {
            let email = format!("{local}@{domain}");
            if self.email_free_for(&email, key)? {
                return Ok(email);
            }
        }
        let counter_key = format!("n:{domain}:{base}").into_bytes();
        let mut n = match self.get(&counter_key)? {
            Some(bytes) => <[u8; 8]>::try_from(bytes.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| {
                    self.store
                        .corrupt(format!("address counter of {base}@{domain}"))
                })?,
            None => 2,
        };
        let email = loop {
            if let Some(local) = naming::candidate(base, n) {
                let email = format!("{local}@{domain}");
                if self.email_free_for(&email, key)? {
                    break email;
                }
            }
            n += 1;
        };
        self.put(counter_key, (n + 1).to_be_bytes().to_vec());
        Ok(email)
    }

    /// Whether `email` is free for `key` (unheld, or already held by it).
    pub fn email_free_for(&self, email: &str, key: &AccountKey) -> Result<bool, StoreError> {
        Ok(self
            .email_owner(email)?
            .is_none_or(|owner| owner == key.to_string()))
    }

    /// About how many bytes of memory the held changes take.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Writes the held changes in one atomic batch (nothing in a dry run).
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if self.dry_run {
            return Ok(());
        }
        self.pending_bytes = 0;
        let mut pending: pages::Changes = std::mem::take(&mut self.pending).into_iter().collect();
        let _writer = self.store.writer.lock().expect("writer lock");
        for (state, delta) in std::mem::take(&mut self.counted) {
            let value = self.store.counter(state)? + delta;
            pending.insert(counter_key(state), Some(value.to_be_bytes().to_vec()));
        }
        if std::mem::take(&mut self.numbered) {
            let seq = self.store.seq.load(Ordering::SeqCst);
            pending.insert(SEQ_KEY.to_vec(), Some(seq.to_be_bytes().to_vec()));
        }
        self.store
            .pages
            .apply(pending)
            .map_err(|e| self.store.err(e))?;
        self.store.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::model::DesiredState;

    fn account(id: &str, name: &str, email: &str) -> Account {
        Account::student(id, name, email)
    }

    #[test]
    fn allocation_numbers_collisions_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut emails = Vec::new();
        for round in 0..2 {
            let store = Store::open(dir.path(), 8).unwrap();
            let mut changes = store.changes(false);
            for i in 0..3 {
                let id = format!("00000000{round}{i}");
                let a = account(&id, "Budi", "");
                let email = changes
                    .allocate_email("budi", "sd.belajar.id", &a.key())
                    .unwrap();
                changes
                    .put_account(
                        None,
                        &Account {
                            email: email.clone(),
                            ..a
                        },
                    )
                    .unwrap();
                emails.push(email);
            }
            changes.commit().unwrap();
        }
        assert_eq!(
            emails,
            ["budi", "budi2", "budi3", "budi4", "budi5", "budi6"]
                .map(|l| format!("{l}@sd.belajar.id"))
        );
    }

    #[test]
    fn counters_follow_state_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 8).unwrap();
        let mut changes = store.changes(false);
        let a = account("0000000001", "Ani", "ani@sd.belajar.id");
        changes.put_account(None, &a).unwrap();
        let retiring = Account {
            state: DesiredState::Retiring {
                since: jiff::civil::date(2026, 1, 2),
            },
            ..a.clone()
        };
        changes.put_account(Some(&a), &retiring).unwrap();
        changes.commit().unwrap();
        let counts = store.counts().unwrap();
        assert_eq!((counts.total, counts.active, counts.retiring), (1, 0, 1));
        assert_eq!(
            store.account_by_email("ANI@sd.belajar.id").unwrap(),
            Some(retiring)
        );
    }

    #[test]
    fn changes_built_at_once_by_two_threads_all_count() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 8).unwrap();
        let seqs: Vec<Vec<u64>> = std::thread::scope(|scope| {
            let writers: Vec<_> = (0..2)
                .map(|t| {
                    let store = &store;
                    scope.spawn(move || {
                        let mut seqs = Vec::new();
                        for i in 0..200 {
                            let mut changes = store.changes(false);
                            let id = format!("{t}{i:09}");
                            let email = format!("a{id}@sd.belajar.id");
                            changes
                                .put_account(None, &account(&id, "Ani", &email))
                                .unwrap();
                            seqs.push(changes.next_seq().unwrap());
                            changes.commit().unwrap();
                        }
                        seqs
                    })
                })
                .collect();
            writers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        assert_eq!(store.counts().unwrap().active, 400);
        let mut all: Vec<u64> = seqs.concat();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 400, "every sequence number handed out once");
        drop(store);
        let reopened = Store::open(dir.path(), 8).unwrap();
        assert_eq!(reopened.changes(false).next_seq().unwrap(), 401);
    }

    #[test]
    fn a_store_dropped_can_be_opened_again_at_once() {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..20u64 {
            let store = Store::open(dir.path(), 8).unwrap();
            let mut changes = store.changes(false);
            assert_eq!(changes.next_seq().unwrap(), round + 1);
            changes.commit().unwrap();
        }
    }

    #[test]
    fn dry_run_changes_are_read_back_but_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 8).unwrap();
        let mut changes = store.changes(true);
        let a = account("0000000001", "Ani", "ani@sd.belajar.id");
        changes.put_account(None, &a).unwrap();
        changes.commit().unwrap();
        assert_eq!(changes.account(&a.key()).unwrap(), Some(a.clone()));
        assert_eq!(store.account(&a.key()).unwrap(), None);
    }

    #[test]
    fn a_store_from_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            db.insert(SCHEMA_KEY, &(SCHEMA_VERSION + 1).to_be_bytes())
                .unwrap();
            db.flush().unwrap();
        }
        let err = Store::open(dir.path(), 8).err().expect("refused");
        assert!(matches!(err, StoreError::TooNew { .. }));
        assert!(err.to_string().contains("upgrade belajar-sync"), "{err}");
    }

    #[test]
    fn a_second_process_is_told_the_store_is_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path(), 8).unwrap();
        // sled's lock is per process (fcntl), so open it from a child: the test binary
        // itself, running only the helper test below.
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "directory::store::tests::open_locked_store_helper",
                "--ignored",
                "--nocapture",
            ])
            .env("LOCKED_STORE", dir.path())
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&status.stdout);
        assert!(out.contains("is in use by another process"), "{out}");
    }

    #[test]
    #[ignore = "run by a_second_process_is_told_the_store_is_in_use"]
    fn open_locked_store_helper() {
        if let Some(path) = std::env::var_os("LOCKED_STORE") {
            match Store::open(Path::new(&path), 8) {
                Ok(_) => println!("opened"),
                Err(e) => println!("{e}"),
            }
        }
    }
}
