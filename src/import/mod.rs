//! Import of Dapodik exports into the directory.
//!
//! Two passes over the file keep memory small and the import atomic with respect to bad
//! input: the first checks every row and picks, for each account, the row that speaks for
//! it (one account per person per level), remembering where it lies in the file; only when
//! no row is invalid (or `--skip-invalid`) are the picked rows read again, in the store's
//! key order (so each page of accounts is read and written once), 125,000 at a time (so
//! memory does not grow with the file): a first look reads each row and its account and
//! sees which need an address, which are then allocated in address order (so each page of
//! the address index is read and written once per chunk), then the rows the first look
//! kept are applied. A snapshot then starts the grace period of the accounts of its
//! schools that it no longer lists (the picked ones are known active from what was
//! applied; only the unlisted are read).
//!
//! The changes are written in small transactions (sled keeps what a transaction touches
//! until it ends), each recording what it replaced: an import that fails, or whose
//! process dies, is rolled back whole (see [`ImportMarker`]), by its own error path or by
//! the next opening of the store.

pub mod apply;
pub mod source;
pub mod validate;

use crate::audit;
use crate::config::Naming;
use crate::directory::accounts;
use crate::directory::model::{AccountKey, DesiredState, Role, RowStatus};
use crate::directory::naming::local_part;
use crate::remote;
use crate::store::{Changes, ImportMarker, Store, StoreError};
use apply::{AddressRequest, Effect, address_request, allocate, apply_row, merge, retire_absent};
use indicatif::ProgressBar;
use jiff::civil::Date;
use serde::Serialize;
use source::{FileError, Layout, Source, Span};
use std::collections::{BTreeSet, HashSet};
use std::fmt;
use validate::{Row, partial_identity, validate};

/// A row that cannot be imported: `line N: <column> "<value>": <what is wrong>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invalid {
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub reason: String,
}

impl Invalid {
    pub fn new(line: u64, column: &str, value: &str, reason: &str) -> Invalid {
        Invalid {
            line,
            column: Some(column.to_owned()),
            value: Some(summarised(value)),
            reason: reason.to_owned(),
        }
    }

    /// A row that is wrong as a whole (unreadable, wrong width).
    pub fn row(line: u64, reason: String) -> Invalid {
        Invalid {
            line,
            column: None,
            value: None,
            reason,
        }
    }
}

/// Characters of a value a message quotes at most.
const QUOTED_CHARS: usize = 80;

/// `value`, or when longer than a message should quote, its start and its size:
/// `"Siti Aminah Siti Aminah …(2 MB)"`.
pub fn summarised(value: &str) -> String {
    match value.char_indices().nth(QUOTED_CHARS) {
        None => value.to_owned(),
        Some((end, _)) => {
            let size = value.len();
            let size = if size >= 1 << 20 {
                format!("{} MB", size >> 20)
            } else if size >= 1 << 10 {
                format!("{} KB", size >> 10)
            } else {
                format!("{size} bytes")
            };
            format!("{}…({size})", &value[..end])
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.column, &self.value) {
            (Some(column), Some(value)) => {
                write!(f, "line {}: {column} {value:?}: {}", self.line, self.reason)
            }
            _ => write!(f, "line {}: {}", self.line, self.reason),
        }
    }
}

/// How to import.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only the rows given change anything; no one is retired for being absent.
    pub delta: bool,
    /// Apply the valid rows even when some are invalid.
    pub skip_invalid: bool,
    /// Do everything but write.
    pub dry_run: bool,
    /// The date retirements start on.
    pub today: Date,
    /// Who asked (the operator's Unix user, or the daemon's inbox), for the history of
    /// every account the import changes.
    pub actor: String,
    /// A snapshot that would retire more than this share of a school's active accounts
    /// retires none of them (`None`: no limit, `--allow-mass-retire`).
    pub max_retire_share: Option<f64>,
    /// Bytes the disk of the store must keep free besides what the import needs
    /// (`min_free_disk_mb`).
    pub min_free_disk: u64,
}

/// Free disk space an import needs per byte of its file, besides `min_free_disk`: the
/// store grows by about the file's size (1M rows: 77 MB of CSV, 109 MB of store), and
/// sled's log holds the old pages until it reclaims them.
pub const DISK_PER_FILE_BYTE: u64 = 3;

/// Schools this small are not guarded: a share of a handful is noise.
pub const GUARDED_SCHOOL_SIZE: u64 = 10;

/// A school whose retirements a snapshot held back: too many at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldSchool {
    pub npsn: String,
    /// Accounts the snapshot would have retired.
    pub retiring: u64,
    /// Active accounts the school has.
    pub active: u64,
}

/// What an import did (or, in a dry run or when refused, would have done).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub file: String,
    pub mode: &'static str,
    pub dry_run: bool,
    /// Whether the rows were applied (false when invalid rows refused the file).
    pub applied: bool,
    pub rows_read: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub retiring: u64,
    pub invalid: u64,
    /// Rows for a person and level already given by another row.
    pub merged: u64,
    /// `keluar` rows for people who have no account.
    pub unknown_leavers: u64,
    pub notes: Vec<String>,
    pub errors: Vec<Invalid>,
    /// Schools whose retirements were held back (too many at once).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held_schools: Vec<HeldSchool>,
}

impl Summary {
    /// Whether applying changed nothing (a re-import of the same file).
    pub fn changed_nothing(&self) -> bool {
        self.created == 0 && self.updated == 0 && self.retiring == 0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The row that speaks for an account, chosen in the first pass; 8 bytes, since an import
/// keeps one for each of millions of accounts (with its key, 16): where the row lies in the
/// file (bits 0 to 39: files up to 1 TiB), its length (bits 40 to 56: lines are at most
/// 64 KiB), its role's index (bits 57 to 62) and whether it says the person is present
/// (bit 63). Its line number is found again from its place when a message needs it.
#[derive(Debug, Clone, Copy)]
struct Pick(u64);

/// The largest file an import takes (a pick's place has 40 bits).
const MAX_FILE_BYTES: u64 = 1 << 40;

impl Pick {
    fn new(row: &Row) -> Pick {
        let role = Role::ALL
            .iter()
            .position(|r| *r == row.role)
            .expect("a role") as u64;
        let present = u64::from(row.status == RowStatus::Aktif);
        debug_assert!(row.span.offset < MAX_FILE_BYTES, "checked by the survey");
        Pick(
            row.span.offset & (MAX_FILE_BYTES - 1)
                | u64::from(row.span.len.min(0x1_ffff)) << 40
                | role << 57
                | present << 63,
        )
    }

    fn offset(&self) -> u64 {
        self.0 & (MAX_FILE_BYTES - 1)
    }

    fn span(&self) -> Span {
        Span {
            offset: self.offset(),
            len: (self.0 >> 40 & 0x1_ffff) as u32,
        }
    }

    fn role(&self) -> Role {
        Role::ALL[(self.0 >> 57 & 0x3f) as usize]
    }

    /// A row that says the person is present beats one that says they left; then the
    /// role of highest precedence wins; on a tie the first row.
    fn rank(&self) -> (bool, u8) {
        (self.0 >> 63 == 1, self.role().precedence())
    }
}

/// What the first pass learnt of the file.
struct Survey {
    layout: Layout,
    /// By packed account key, in the store's key order (see [`sort_picks`]).
    picks: Vec<(u64, Pick)>,
    /// Schools present in the file: their unlisted accounts retire in a snapshot.
    schools: BTreeSet<String>,
    /// Keys of invalid rows: not retired for being absent, since they are not.
    shielded: HashSet<u64>,
    /// Schools with an invalid row whose person cannot be told: nobody there retires.
    unsure_schools: BTreeSet<String>,
}

/// Imports `source` into `store`.
pub fn run(
    store: &Store,
    naming: &Naming,
    source: &Source,
    options: Options,
    progress: &ProgressBar,
) -> Result<Summary, ImportError> {
    // An import frees as fast as it allocates: given back at once, its peak stays flat.
    let _prompt = crate::allocator::PromptRelease::start();
    run_in_chunks(store, naming, source, options, progress, APPLY_CHUNK)
}

/// [`run`], applying `chunk` picked rows at a time.
fn run_in_chunks(
    store: &Store,
    naming: &Naming,
    source: &Source,
    options: Options,
    progress: &ProgressBar,
    chunk: usize,
) -> Result<Summary, ImportError> {
    let mut summary = Summary {
        file: source.name.display().to_string(),
        mode: if options.delta { "delta" } else { "snapshot" },
        dry_run: options.dry_run,
        ..Summary::default()
    };
    let size = source.size_bytes()?;
    if !options.dry_run {
        store.ensure_free_space(size * DISK_PER_FILE_BYTE + options.min_free_disk)?;
    }
    progress.set_length(size * 3);
    progress.set_message("checking");
    let survey = survey(source, options.today, progress, &mut summary)?;
    if summary.invalid > 0 && !options.skip_invalid {
        return Ok(summary);
    }

    progress.set_position(size);
    progress.set_message("planning");
    // From here to its end (or its rollback) the import is the store's one writer: no
    // round plans from half of it, and a rollback puts back only what it replaced.
    let _lease = (!options.dry_run).then(|| store.lease());
    let marker = ImportMarker {
        file: summary.file.clone(),
        started: jiff::Timestamp::now(),
    };
    let pass = Pass {
        store,
        naming,
        source,
        options: &options,
        progress,
        started: marker.started,
        chunk,
        fresh: store.counts()?.total == 0,
    };
    if options.dry_run {
        return apply(&pass, &survey, summary);
    }
    store.set_import_marker(Some(&marker))?;
    tracing::info!(file = %marker.file, rows = survey.picks.len(), "import: writing");
    match apply(&pass, &survey, summary) {
        Ok(summary) => {
            store.set_import_marker(None)?;
            tracing::info!(file = %marker.file, "import: written");
            Ok(summary)
        }
        Err(error) => {
            store.roll_back_import()?;
            tracing::warn!(file = %marker.file, %error, "import: failed, rolled back");
            Err(error)
        }
    }
}

/// A snapshot's last step: the active accounts of each school in the file that the file
/// does not list start their grace period, unless that would retire more than
/// `max_retire_share` of a school (then none of it retires, and the school is held).
fn retire_unlisted(
    pass: &Pass,
    survey: &Survey,
    changes: &mut Changes,
    active_after: &[bool],
    summary: &mut Summary,
) -> Result<(), ImportError> {
    let Pass {
        store,
        options,
        progress,
        started,
        ..
    } = *pass;
    progress.set_message("retiring the unlisted");
    for npsn in &survey.schools {
        if survey.unsure_schools.contains(npsn) {
            summary.notes.push(format!(
                "school {npsn}: nobody retired, since an invalid row of this school could be anyone"
            ));
            continue;
        }
        let (mut active, mut absent) = (0u64, Vec::new());
        for key in store.school_members(npsn)? {
            let packed = key.packed();
            let picked = survey
                .picks
                .binary_search_by_key(&AccountKey::packed_text_order(packed), |(k, _)| {
                    AccountKey::packed_text_order(*k)
                });
            if let Ok(i) = picked {
                active += u64::from(active_after[i]);
                continue;
            }
            if changes
                .account(&key)?
                .is_none_or(|a| a.state != DesiredState::Active)
            {
                continue;
            }
            active += 1;
            if !survey.shielded.contains(&packed) {
                absent.push(key);
            }
        }
        if let Some(share) = options.max_retire_share
            && active > GUARDED_SCHOOL_SIZE
            && absent.len() as f64 > share * active as f64
        {
            let held = audit::RetireHeld {
                npsn: npsn.clone(),
                at: started,
                file: summary.file.clone(),
                retiring: absent.len() as u64,
                active,
            };
            audit::set_retire_held(changes, npsn, Some(&held));
            summary.held_schools.push(HeldSchool {
                npsn: npsn.clone(),
                retiring: held.retiring,
                active,
            });
            continue;
        }
        audit::set_retire_held(changes, npsn, None);
        for key in absent {
            if retire_absent(changes, &key, options.today)? {
                summary.retiring += 1;
                let line = format!(
                    "retiring: absent from the snapshot {} of school {npsn}, imported by {}",
                    summary.file, options.actor
                );
                audit::log(changes, &key.to_string(), started, "import", line)?;
            }
        }
        if changes.pending_bytes() >= Changes::BATCH_BYTES {
            changes.commit()?;
        }
    }
    Ok(())
}

/// Picked rows applied at a time: each is held between the two looks (about 200 bytes)
/// with its address request and allocated address (about 100 bytes). A chunk's addresses
/// are written in address order, so each chunk rewrites the address index's pages once:
/// fewer, bigger chunks write less and hold more.
const APPLY_CHUNK: usize = 100_000;

/// The local part of the address the Google user carrying `key`'s marker has, when it is
/// in `domain` (the account keeps it).
fn kept_local_part(
    store: &Store,
    key: &AccountKey,
    domain: &str,
) -> Result<Option<String>, StoreError> {
    Ok(remote::marked_address(store, key)?.and_then(|email| {
        let (local, in_domain) = email.split_once('@')?;
        (in_domain == domain).then(|| local.to_owned())
    }))
}

/// What the first look at a picked row found in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// An account that the row changes (or may: it is looked at again).
    Stored,
    /// An account the row leaves as it is.
    Settled,
    /// No account yet.
    New,
}

/// What the second pass works with.
#[derive(Clone, Copy)]
struct Pass<'a> {
    store: &'a Store,
    naming: &'a Naming,
    source: &'a Source,
    options: &'a Options,
    progress: &'a ProgressBar,
    /// When the import started (its history lines say so).
    started: jiff::Timestamp,
    /// Picked rows applied at a time ([`APPLY_CHUNK`]).
    chunk: usize,
    /// The store held no account before: every row makes a new one.
    fresh: bool,
}

/// The history lines an import appends to the accounts it creates, updates or retires.
struct Lines {
    created: audit::Line,
    updated: audit::Line,
    retiring: audit::Line,
}

impl Lines {
    fn new(file: &str, actor: &str, at: jiff::Timestamp) -> Lines {
        let line = |what| {
            let detail = format!("{what} by the import of {file}, asked by {actor}");
            audit::Line::new(at, "import", detail)
        };
        Lines {
            created: line("created"),
            updated: line("updated"),
            retiring: line("retiring: listed as keluar"),
        }
    }
}

/// Reads picked rows again and checks them (the second pass holds no row between chunks).
struct Reread<'a> {
    rows: source::RowReader,
    source: &'a Source,
    today: Date,
}

impl Reread<'_> {
    /// The row of `pick`. The file was checked in the first pass: a row that now fails to
    /// read or check means the file changed under the import. (Picks hold no line: the row
    /// is read as line 1, and its line counted only for the message.)
    fn row(&mut self, pick: &Pick) -> Result<Row, ImportError> {
        let read = self
            .rows
            .read(1, pick.span())
            .map_err(|e| vec![e])
            .and_then(|raw| validate(&raw, self.today));
        read.map_err(|errors| {
            let mut first = errors.into_iter().next();
            let line = self.source.lines_at(&[pick.offset()]).ok();
            if let (Some(first), Some(&line)) = (&mut first, line.iter().flatten().next()) {
                first.line = line;
            }
            ImportError::from(FileError::Changed {
                path: self.source.name.clone(),
                detail: first.map(|e| e.to_string()).unwrap_or_default(),
            })
        })
    }

    /// Sends the rows of `picks`, in order, in batches; stops at the first that fails (sent
    /// too) or when nobody receives any more.
    fn send_rows(
        &mut self,
        picks: &[(u64, Pick)],
        rows: std::sync::mpsc::SyncSender<Vec<Result<Row, ImportError>>>,
    ) {
        let read = picks.iter().map(|(_, pick)| self.row(pick));
        send_in_batches(read, Result::is_err, &rows);
    }
}

/// Rows handed from a thread that reads them to the one that uses them at a time.
const ROW_BATCH: usize = 512;

/// Sends `items` through `batches` in order, [`ROW_BATCH`] at a time; stops after an item
/// that `last` says ends them, or when nobody receives any more.
fn send_in_batches<T>(
    items: impl Iterator<Item = T>,
    last: impl Fn(&T) -> bool,
    batches: &std::sync::mpsc::SyncSender<Vec<T>>,
) {
    let mut batch = Vec::with_capacity(ROW_BATCH);
    for item in items {
        let ends = last(&item);
        batch.push(item);
        if ends {
            break;
        }
        if batch.len() == ROW_BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(ROW_BATCH));
            if batches.send(full).is_err() {
                return;
            }
        }
    }
    let _ = batches.send(batch);
}

/// The second pass: applies the rows picked by the survey (see the module's comment).
fn apply(pass: &Pass, survey: &Survey, mut summary: Summary) -> Result<Summary, ImportError> {
    let Pass {
        store,
        source,
        options,
        progress,
        started,
        chunk,
        fresh,
        ..
    } = *pass;
    let mut reread = Reread {
        rows: source.row_reader(survey.layout.clone())?,
        source,
        today: options.today,
    };
    // A dry run forgets what it would write as it goes, but for the addresses it reads
    // back, which it keeps on disk (the store's scratch): its memory stays flat.
    // The school index is written once a chunk (its pages would be rewritten by every
    // batch otherwise).
    let mut changes = store
        .changes(options.dry_run)
        .undoable()
        .dry_run_keeps(accounts::READ_BACK_BY_IMPORT)
        .defer(accounts::SPREAD_BY_IMPORT);
    // Once Google was scanned, a new account whose Google user carries its marker (a lost
    // store made again) keeps the address that user has where it is free.
    let google_known = remote::last_scan(store)?.finished.is_some();
    if google_known && fresh && survey.picks.len() > chunk {
        reserve_kept_addresses(pass, survey, &mut reread, &mut changes)?;
    }
    // The history lines of the rows applied, made once.
    let lines = Lines::new(&summary.file, &options.actor, started);
    // Whether each picked row's account is active once applied: a snapshot's retirements
    // count the active accounts of a school without reading the picked ones again.
    let mut active_after = vec![false; survey.picks.len()];
    // A chunk of the picked rows at a time: what the two looks keep (the rows, addresses
    // to find, addresses found) stays the size of a chunk, whatever the size of the file.
    for (first, picks) in (0..).step_by(chunk).zip(survey.picks.chunks(chunk)) {
        let active_after = &mut active_after[first..first + picks.len()];
        let look = Look {
            pass,
            picks,
            google_known,
        };
        let (requests, looked) = look.first(&mut reread, &changes, active_after)?;
        progress.set_message("allocating addresses");
        let addresses = allocate_in_order(&mut changes, requests)?;
        look.second(
            &mut changes,
            looked,
            addresses,
            &lines,
            active_after,
            &mut summary,
        )?;
        changes.commit_behind_all()?;
    }
    // The school index read below is the store's: what is pending goes in first.
    changes.commit()?;

    if !options.delta {
        retire_unlisted(pass, survey, &mut changes, &active_after, &mut summary)?;
    }
    changes.commit()?;
    summary.applied = !options.dry_run;
    progress.finish_and_clear();
    Ok(summary)
}

/// A store made again holds none of the file's accounts: every address a new account
/// keeps (its Google user's, found by its marker) is reserved before any chunk allocates
/// a fresh one, so that no account of an earlier chunk takes the address a namesake of a
/// later chunk has in Google (within a chunk, the addresses kept are given first anyway).
fn reserve_kept_addresses(
    pass: &Pass,
    survey: &Survey,
    reread: &mut Reread,
    changes: &mut Changes,
) -> Result<(), ImportError> {
    pass.progress
        .set_message("reserving the addresses Google has");
    for picks in survey.picks.chunks(pass.chunk) {
        let mut keeps = Requests::default();
        for (packed, pick) in picks {
            let row = reread.row(pick)?;
            if let Some(mut request) = address_request(None, &row, pass.naming) {
                request.keep = kept_local_part(pass.store, &row.key, &request.domain)?;
                if request.keep.is_some() {
                    keeps.push(request, *packed);
                }
            }
        }
        for (request, packed) in keeps.in_address_order() {
            allocate(changes, &request, &AccountKey::from_packed(packed))?;
            if changes.pending_bytes() >= Changes::BATCH_BYTES {
                changes.commit_behind()?;
            }
        }
    }
    Ok(())
}

/// Allocates the addresses `requests` asks for, in address order (each page of the
/// address index is then written once); the local parts by packed account key, the last
/// key first.
fn allocate_in_order(
    changes: &mut Changes,
    requests: Requests,
) -> Result<Vec<(u64, Box<str>)>, ImportError> {
    // Only the local part: the domain follows from the row again.
    let mut addresses: Vec<(u64, Box<str>)> = Vec::with_capacity(requests.len());
    for (request, packed) in requests.in_address_order() {
        let email = allocate(changes, &request, &AccountKey::from_packed(packed))?;
        addresses.push((packed, local_part(&email).into()));
        if changes.pending_bytes() >= Changes::BATCH_BYTES {
            changes.commit_behind()?;
        }
    }
    addresses
        .sort_unstable_by_key(|(key, _)| std::cmp::Reverse(AccountKey::packed_text_order(*key)));
    Ok(addresses)
}

/// What the first look at each picked row found, and the row when the second look
/// applies it.
type Looked = Vec<(Found, Option<Row>)>;

/// The two looks at one chunk of picked rows.
struct Look<'p, 'a> {
    pass: &'p Pass<'a>,
    picks: &'p [(u64, Pick)],
    google_known: bool,
}

impl Look<'_, '_> {
    /// Which rows need an address, and which change nothing (so need no second look).
    /// The rows are read and checked again on another core while this one looks them up.
    fn first(
        &self,
        reread: &mut Reread,
        changes: &Changes,
        active_after: &mut [bool],
    ) -> Result<(Requests, Looked), ImportError> {
        let Pass {
            store,
            naming,
            options,
            progress,
            fresh,
            ..
        } = *self.pass;
        progress.set_message("planning");
        let mut requests = Requests::default();
        let mut looked: Looked = Vec::with_capacity(self.picks.len());
        let picks = self.picks;
        // (The receiver is the scope's: returned early, it is dropped, and the reader stops.)
        std::thread::scope(|scope| -> Result<(), ImportError> {
            let (rows, read) = std::sync::mpsc::sync_channel(4);
            scope.spawn(move || reread.send_rows(picks, rows));
            let mut read = read.iter().flatten();
            for (i, (packed, pick)) in picks.iter().enumerate() {
                progress.inc(u64::from(pick.span().len));
                let row = read.next().expect("a row for each pick")?;
                // Into a store that held no account, every picked row (one per account) is new.
                let old = if fresh {
                    None
                } else {
                    changes.account(&row.key)?
                };
                let found = match (address_request(old.as_ref(), &row, naming), old) {
                    (Some(mut request), None) => {
                        if self.google_known {
                            request.keep = kept_local_part(store, &row.key, &request.domain)?;
                        }
                        requests.push(request, *packed);
                        Found::New
                    }
                    (Some(request), Some(_)) => {
                        requests.push(request, *packed);
                        Found::Stored
                    }
                    (None, Some(old)) => {
                        if merge(&old, &row, None, options.today).1 == Effect::Unchanged {
                            active_after[i] = old.state == DesiredState::Active;
                            Found::Settled
                        } else {
                            Found::Stored
                        }
                    }
                    (None, None) => Found::New,
                };
                looked.push((found, (found != Found::Settled).then_some(row)));
            }
            Ok(())
        })?;
        Ok((requests, looked))
    }

    /// Applies the rows the first look left, with the addresses allocated for them.
    fn second(
        &self,
        changes: &mut Changes,
        looked: Looked,
        mut addresses: Vec<(u64, Box<str>)>,
        lines: &Lines,
        active_after: &mut [bool],
        summary: &mut Summary,
    ) -> Result<(), ImportError> {
        let Pass {
            naming,
            options,
            progress,
            ..
        } = *self.pass;
        for (i, ((packed, pick), (found, row))) in self.picks.iter().zip(looked).enumerate() {
            progress.inc(u64::from(pick.span().len));
            let Some(row) = row else {
                summary.unchanged += 1;
                continue;
            };
            let old = match found {
                Found::New => None,
                _ => changes.account(&row.key)?,
            };
            let address = match addresses.last() {
                Some((key, _)) if key == packed => addresses.pop().map(|(_, local)| {
                    let domain = naming.domain(row.role.group(), row.key.jenjang);
                    format!("{local}@{domain}")
                }),
                _ => None,
            };
            let applied = apply_row(changes, old, &row, address, options.today)?;
            active_after[i] = applied.active;
            let line = match applied.effect {
                Effect::Created => Some(&lines.created),
                Effect::Updated => Some(&lines.updated),
                Effect::Retiring => Some(&lines.retiring),
                Effect::Unchanged | Effect::UnknownLeaver => None,
            };
            if let Some(line) = line {
                line.log(changes, &row.key.text());
            }
            match applied.effect {
                Effect::Created => summary.created += 1,
                Effect::Updated => summary.updated += 1,
                Effect::Unchanged => summary.unchanged += 1,
                Effect::Retiring => summary.retiring += 1,
                Effect::UnknownLeaver => summary.unknown_leavers += 1,
            }
            summary.notes.extend(applied.note);
            if changes.pending_bytes() >= Changes::BATCH_BYTES {
                changes.commit_behind()?;
            }
        }
        Ok(())
    }
}

/// The addresses an import needs, held compactly (a million of them): the domain as an
/// index into the few domains there are.
#[derive(Default)]
struct Requests {
    domains: Vec<String>,
    wanted: Vec<Wanted>,
    /// The local parts to keep, for the few role changes, by packed key.
    keep: std::collections::HashMap<u64, String>,
}

struct Wanted {
    /// Whether a local part is to be kept: these are given first, so that no namesake's
    /// fresh allocation takes the address an account already has.
    keeps: bool,
    domain: u8,
    base: Box<str>,
    packed: u64,
}

impl Requests {
    fn push(&mut self, request: AddressRequest, packed: u64) {
        let domain = match self.domains.iter().position(|d| *d == request.domain) {
            Some(i) => i,
            None => {
                self.domains.push(request.domain);
                self.domains.len() - 1
            }
        };
        self.wanted.push(Wanted {
            keeps: request.keep.is_some(),
            domain: u8::try_from(domain).expect("fewer than 256 domains"),
            base: request.base.into_boxed_str(),
            packed,
        });
        if let Some(keep) = request.keep {
            self.keep.insert(packed, keep);
        }
    }

    fn len(&self) -> usize {
        self.wanted.len()
    }

    /// The requests keeping a local part first, then by domain, base and account key:
    /// each page of the address index is then read and written once or twice, and
    /// numbering is the same on every run.
    fn in_address_order(self) -> impl Iterator<Item = (AddressRequest, u64)> {
        let Requests {
            domains,
            mut wanted,
            mut keep,
        } = self;
        wanted.sort_unstable_by(|a, b| {
            (
                !a.keeps,
                &domains[a.domain as usize],
                &a.base,
                AccountKey::packed_text_order(a.packed),
            )
                .cmp(&(
                    !b.keeps,
                    &domains[b.domain as usize],
                    &b.base,
                    AccountKey::packed_text_order(b.packed),
                ))
        });
        wanted.into_iter().map(move |w| {
            let request = AddressRequest {
                domain: domains[w.domain as usize].clone(),
                base: w.base.into(),
                keep: keep.remove(&w.packed),
            };
            (request, w.packed)
        })
    }
}

/// The first pass: checks every row, records the invalid ones in `summary`, and picks the
/// row that speaks for each account.
fn survey(
    source: &Source,
    today: Date,
    progress: &ProgressBar,
    summary: &mut Summary,
) -> Result<Survey, ImportError> {
    let mut survey = Survey {
        layout: Layout::Jsonl,
        // Room for every row at once: a vector of millions grown by doubling would hold
        // the old and the new copy together.
        picks: Vec::with_capacity(usize::try_from(source.count_lines()?).unwrap_or(0)),
        schools: BTreeSet::new(),
        shielded: HashSet::new(),
        unsure_schools: BTreeSet::new(),
    };
    // The file is read on another core while this one checks and picks its rows. (The
    // receiver is the scope's: returned early, it is dropped, and the reader stops.)
    let (layout, unknown_columns) = std::thread::scope(|scope| {
        let (batches, read) = std::sync::mpsc::sync_channel(4);
        let reader = scope.spawn(move || read_rows(source, progress, batches));
        for raw in read.iter().flatten() {
            summary.rows_read += 1;
            let raw = match raw {
                Ok(raw) => raw,
                Err(invalid) => {
                    summary.invalid += 1;
                    summary.errors.push(invalid);
                    continue;
                }
            };
            match validate(&raw, today) {
                Ok(row) => pick(&mut survey, &row, source)?,
                Err(errors) => {
                    summary.invalid += 1;
                    summary.errors.extend(errors);
                    match partial_identity(&raw) {
                        (Some(key), _) => {
                            survey.shielded.insert(key.packed());
                        }
                        (None, Some(npsn)) => {
                            survey.unsure_schools.insert(npsn);
                        }
                        (None, None) => {}
                    }
                }
            }
        }
        reader.join().expect("the reading thread panicked")
    })?;
    survey.layout = layout;
    for column in &unknown_columns {
        summary.notes.push(format!(
            "column {:?} is not one belajar-sync knows: ignored",
            summarised(column)
        ));
    }
    let merged = sort_picks(&mut survey.picks, summary);
    note_merged(source, merged, summary)?;
    Ok(survey)
}

/// The first pass's reading of the file, on a thread of its own: sends its rows in order,
/// in batches; answers how to read a row again and the columns it does not know, or why
/// the file could not be read to its end. Stops early when nobody receives any more.
fn read_rows(
    source: &Source,
    progress: &ProgressBar,
    batches: std::sync::mpsc::SyncSender<Vec<Result<source::RawRow, Invalid>>>,
) -> Result<(Layout, BTreeSet<String>), FileError> {
    let rows = source.rows(|f| Box::new(progress.wrap_read(f)))?;
    let finished = rows.finished();
    send_in_batches(rows.rows, |_| false, &batches);
    finished()?;
    Ok((rows.layout, rows.unknown_columns))
}

fn pick(survey: &mut Survey, row: &Row, source: &Source) -> Result<(), FileError> {
    if row.span.end() > MAX_FILE_BYTES {
        return Err(FileError::TooBig {
            path: source.name.clone(),
            limit: MAX_FILE_BYTES,
        });
    }
    if !survey.schools.contains(&row.npsn) {
        survey.schools.insert(row.npsn.clone());
    }
    survey.picks.push((row.key.packed(), Pick::new(row)));
    Ok(())
}

/// Rows of one account, one of them used (see [`sort_picks`]).
struct Merged {
    key: u64,
    kept: Pick,
    dropped: Pick,
}

/// Sorts the rows picked by the survey into the store's key order and keeps, of the rows
/// of one account, the one that speaks for it: a row that says the person is present beats
/// one that says they left, then the role of highest precedence, then the first row.
/// Returns the rows merged so, for the notes.
fn sort_picks(picks: &mut Vec<(u64, Pick)>, summary: &mut Summary) -> Vec<Merged> {
    // The rows of one account stay in file order (an unstable sort needs no scratch
    // space the size of the picks).
    picks.sort_unstable_by_key(|(key, pick)| (AccountKey::packed_text_order(*key), pick.offset()));
    let mut merged = Vec::new();
    picks.dedup_by(|(key, candidate), (kept_key, current)| {
        if key != kept_key {
            return false;
        }
        summary.merged += 1;
        let (kept, dropped) = if candidate.rank() > current.rank() {
            (*candidate, std::mem::replace(current, *candidate))
        } else {
            (*current, *candidate)
        };
        merged.push(Merged {
            key: *key,
            kept,
            dropped,
        });
        true
    });
    picks.shrink_to_fit();
    merged
}

/// Notes, for each account listed on several rows, which rows and which one is used (their
/// lines counted in one read of the file).
fn note_merged(
    source: &Source,
    merged: Vec<Merged>,
    summary: &mut Summary,
) -> Result<(), FileError> {
    let mut offsets: Vec<u64> = merged
        .iter()
        .flat_map(|m| [m.kept.offset(), m.dropped.offset()])
        .collect();
    offsets.sort_unstable();
    offsets.dedup();
    let lines = source.lines_at(&offsets)?;
    let line = |pick: &Pick| {
        let at = offsets.binary_search(&pick.offset()).expect("counted");
        lines[at]
    };
    for Merged { key, kept, dropped } in merged {
        let why = if kept.role() != dropped.role() {
            format!(
                "the account takes the role {} over {}",
                kept.role(),
                dropped.role()
            )
        } else {
            "one account per person per level".to_owned()
        };
        let (kept_line, dropped_line) = (line(&kept), line(&dropped));
        summary.notes.push(format!(
            "{}: lines {} and {} are one account: line {kept_line} is used ({why})",
            AccountKey::from_packed(key),
            kept_line.min(dropped_line),
            kept_line.max(dropped_line),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot import by a test, with no limit on retirements.
    fn snapshot() -> Options {
        Options {
            delta: false,
            skip_invalid: false,
            dry_run: false,
            today: jiff::civil::date(2026, 12, 3),
            actor: "test".into(),
            max_retire_share: None,
            min_free_disk: 0,
        }
    }

    /// A lost store made again in chunks of one row: the second Siti Aminah's Google user
    /// (carrying her marker) has the plain address; the first Siti, new to Google and in
    /// the earlier chunk, must not take it.
    #[test]
    fn a_store_made_again_keeps_the_addresses_google_has_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store"), 8).unwrap();
        let now = jiff::Timestamp::now();
        let user: crate::google::types::User = serde_json::from_value(serde_json::json!({
            "id": "g2",
            "primaryEmail": "siti.aminah@sd.belajar.id",
            "externalIds": [{"type": "organization", "value": "sd:nisn:0000000002"}],
        }))
        .unwrap();
        let mut changes = store.changes(false);
        remote::record(&mut changes, &user, now).unwrap();
        let scan = remote::ScanRecord {
            id: 1,
            started: Some(now),
            finished: Some(now),
            ..remote::ScanRecord::default()
        };
        remote::set_last_scan(&mut changes, &scan);
        changes.commit().unwrap();
        let path = dir.path().join("export.csv");
        std::fs::write(
            &path,
            "id_type,id,full_name,role,jenjang,npsn\n\
             nisn,0000000001,Siti Aminah,peserta_didik,sd,20100001\n\
             nisn,0000000002,Siti Aminah,peserta_didik,sd,20100001\n",
        )
        .unwrap();
        let source = Source::new(&path, None).unwrap();
        let naming = Naming::default();
        run_in_chunks(
            &store,
            &naming,
            &source,
            snapshot(),
            &ProgressBar::hidden(),
            1,
        )
        .unwrap();
        let email = |key: &str| {
            let key = AccountKey::parse(key).unwrap();
            store.account(&key).unwrap().unwrap().email
        };
        assert_eq!(email("sd:nisn:0000000002"), "siti.aminah@sd.belajar.id");
        assert_eq!(email("sd:nisn:0000000001"), "siti.aminah2@sd.belajar.id");
    }

    /// The rows of one account are named by their lines (counted again from their places,
    /// a multi-line quoted cell included), and the one used is said.
    #[test]
    fn rows_of_one_account_are_noted_with_their_lines() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store"), 8).unwrap();
        let path = dir.path().join("export.csv");
        std::fs::write(
            &path,
            "id_type,id,full_name,role,jenjang,npsn\n\
             nik,3201010101900001,Budi Santoso,pendidik,sd,20100001\n\
             nisn,0000000002,\"Siti\nAminah\",peserta_didik,sd,20100001\n\
             nik,3201010101900001,Budi Santoso,kepala_sekolah,sd,20100001\n",
        )
        .unwrap();
        let source = Source::new(&path, None).unwrap();
        let summary = run(
            &store,
            &Naming::default(),
            &source,
            snapshot(),
            &ProgressBar::hidden(),
        )
        .unwrap();
        assert_eq!(summary.merged, 1, "{summary:?}");
        let note = summary
            .notes
            .iter()
            .find(|n| n.contains("are one account"))
            .expect("a note");
        assert!(
            note.starts_with(
                "sd:nik:3201010101900001: lines 2 and 5 are one account: line 5 is used"
            ),
            "{note}"
        );
    }

    #[test]
    fn rows_are_handed_over_in_order_up_to_the_last() {
        let (batches, received) = std::sync::mpsc::sync_channel(16);
        send_in_batches(0..1500u32, |&n| n == 1000, &batches);
        drop(batches);
        let batches: Vec<Vec<u32>> = received.iter().collect();
        assert!(batches.iter().all(|b| b.len() <= ROW_BATCH));
        let items: Vec<u32> = batches.into_iter().flatten().collect();
        assert_eq!(items, (0..=1000).collect::<Vec<_>>());
        // Nobody receiving: the sender stops instead of blocking.
        let (batches, received) = std::sync::mpsc::sync_channel(0);
        drop(received);
        send_in_batches(0..1500u32, |_| false, &batches);
    }

    #[test]
    fn a_pick_keeps_its_place_role_and_rank_in_8_bytes() {
        assert_eq!(std::mem::size_of::<Pick>(), 8);
        for (role, status) in [
            (Role::KepalaSekolah, RowStatus::Aktif),
            (Role::PesertaDidik, RowStatus::Keluar),
        ] {
            let row = Row {
                line: 4_000_000_000,
                span: Span {
                    offset: 300 << 30,
                    len: source::MAX_LINE_BYTES as u32 + 1,
                },
                key: AccountKey::parse("sd:nisn:0012345678").unwrap(),
                full_name: "Siti Aminah".into(),
                role,
                npsn: "20100001".into(),
                status,
                birth_date: None,
                personal_email: None,
            };
            let pick = Pick::new(&row);
            assert_eq!(std::mem::size_of::<(u64, Pick)>(), 16);
            assert_eq!(pick.span(), row.span);
            assert_eq!(pick.role(), role);
            assert_eq!(pick.rank(), (status == RowStatus::Aktif, role.precedence()));
        }
    }
}
