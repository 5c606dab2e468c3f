//! The reconciler puts the boxes of the data flow (`docs/architecture.md`) together: a scan fills the
//! remote records ([`scan`]), every account is planned against them in key order
//! ([`plan_each`]), a sync writes the actions to the journal with the guard's verdict
//! ([`enqueue`]) and drains it ([`crate::executor`]); [`repair`] is the helpdesk's repair
//! of one account.

pub mod licences;
pub mod repair;
mod round;
pub mod scan;

pub use round::enqueue;

use crate::audit::{self, GuardHeld, HeldList};
use crate::config::Config;
use crate::directory::model::{Account, AccountKey};
use crate::executor::Wait;
use crate::google::types::User;
use crate::journal;
use crate::planner::{self, ActionKind, Asker, Context, Decision};
use crate::remote::{self, Observed};
use crate::store::{Store, StoreError};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Accounts planned per step: what is read before anything is written.
const CHUNK: usize = 2048;

/// A domain's suspensions count against the share only above this many: a share of a
/// handful is noise, not a truncated export.
const SHARE_FLOOR: u64 = 10;

/// One account with its decision and what stands around it.
#[derive(Debug, Clone)]
pub struct Planned {
    pub account: Account,
    pub decision: Decision,
    /// A Google user is known for it (counts for the guard's share).
    pub managed: bool,
    /// An entry for it already waits in the journal.
    pub waiting: bool,
    /// Held in quarantine: a scheduled run leaves it for a person.
    pub quarantined: Option<String>,
    /// Held as a conflict before this plan.
    pub conflicted: Option<String>,
    /// The notices recorded for it (retiring accounts).
    pub notices: Option<audit::Notices>,
}

/// What a plan visits: an account, or a managed Google user whose account is not here.
#[derive(Debug, Clone)]
pub enum Item {
    Account(Box<Planned>),
    Orphan { key: AccountKey, user: Box<User> },
}

/// The records of one chunk of accounts, read before anything is planned or written.
struct Chunk {
    accounts: Vec<Account>,
    marked: BTreeMap<String, Vec<Observed>>,
    deleted: BTreeMap<String, Vec<Observed>>,
    waiting: HashSet<String>,
    quarantined: HashMap<String, String>,
    conflicted: HashMap<String, String>,
    notices: HashMap<String, audit::Notices>,
    /// The last account key of the chunk; `None` for the last chunk.
    hi: Option<String>,
}

/// Reads the chunk of accounts after `lo` (from the first when `None`) and what stands
/// around them.
fn read_chunk(store: &Store, lo: Option<&str>) -> Result<Chunk, StoreError> {
    let after = lo.and_then(AccountKey::parse);
    let accounts: Vec<Account> = store
        .accounts_after(after.as_ref())
        .take(CHUNK)
        .collect::<Result<_, _>>()?;
    let hi = (accounts.len() == CHUNK).then(|| accounts[CHUNK - 1].key().to_string());
    let range = (lo, hi.as_deref());
    let (marked, deleted) = remote::marked_in_range(store, range)?;
    Ok(Chunk {
        waiting: journal::waiting_in_range(store, range)?,
        quarantined: audit::held_in_range(store, HeldList::Quarantine, range)?,
        conflicted: audit::held_in_range(store, HeldList::Conflicts, range)?,
        notices: audit::notices_in_range(store, range)?,
        accounts,
        marked,
        deleted,
        hi,
    })
}

/// Plans the accounts of a chunk; the managed users whose account is not in the
/// directory come last.
fn plan_chunk(store: &Store, ctx: &Context, chunk: Chunk) -> Result<Vec<Item>, StoreError> {
    let Chunk {
        accounts,
        mut marked,
        mut deleted,
        waiting,
        quarantined,
        conflicted,
        mut notices,
        hi: _,
    } = chunk;
    let reader = store.changes(true);
    let mut items = Vec::with_capacity(accounts.len());
    for account in accounts {
        let key = account.key().to_string();
        let claims = marked.remove(&key).unwrap_or_default();
        let gone = deleted.remove(&key).unwrap_or_default();
        let seen = remote::seen(&reader, &account, claims, gone)?;
        let managed = !seen.marked.is_empty()
            || seen.at_address.as_ref().is_some_and(|u| {
                account
                    .google
                    .as_ref()
                    .is_some_and(|g| u.id.as_deref() == Some(g.id.as_str()))
            });
        let decision = planner::plan(&account, &seen, ctx);
        items.push(Item::Account(Box::new(Planned {
            managed,
            waiting: waiting.contains(&key),
            quarantined: quarantined.get(&key).cloned(),
            conflicted: conflicted.get(&key).cloned(),
            notices: notices.remove(&key),
            account,
            decision,
        })));
    }
    for (key, users) in marked {
        if let Some(key) = AccountKey::parse(&key) {
            for observed in users {
                items.push(Item::Orphan {
                    key: key.clone(),
                    user: Box::new(observed.user),
                });
            }
        }
    }
    Ok(items)
}

/// Plans every account against what was last observed, in key order, a chunk at a time:
/// the chunk's records are read first, then `visit` may write. When `visit` writes
/// nothing (a dry run), reading, planning and visiting are three threads, each a chunk
/// ahead of the next (the system shares them out over the cores): a write while a chunk
/// is read could show a split page twice.
pub fn plan_each<E: From<StoreError>>(
    store: &Store,
    config: &Config,
    today: Date,
    dry_run: bool,
    mut visit: impl FnMut(Vec<Item>) -> Result<(), E>,
) -> Result<(), E> {
    let ctx = Context::new(config, today, Asker::Schedule);
    if !dry_run {
        let mut lo: Option<String> = None;
        loop {
            let chunk = read_chunk(store, lo.as_deref())?;
            let hi = chunk.hi.clone();
            visit(plan_chunk(store, &ctx, chunk)?)?;
            match hi {
                Some(hi) => lo = Some(hi),
                None => return Ok(()),
            }
        }
    }
    std::thread::scope(|scope| {
        let (chunks, read) = std::sync::mpsc::sync_channel::<Result<Chunk, StoreError>>(1);
        let (planned, ready) = std::sync::mpsc::sync_channel::<Result<Vec<Item>, StoreError>>(1);
        let ctx = &ctx;
        // A closed channel means the next stage stopped on an error: this one stops too.
        scope.spawn(move || {
            let mut lo: Option<String> = None;
            loop {
                let chunk = read_chunk(store, lo.as_deref());
                let next = chunk.as_ref().ok().and_then(|c| c.hi.clone());
                if chunks.send(chunk).is_err() || next.is_none() {
                    return;
                }
                lo = next;
            }
        });
        scope.spawn(move || {
            for chunk in read {
                if planned
                    .send(chunk.and_then(|c| plan_chunk(store, ctx, c)))
                    .is_err()
                {
                    return;
                }
            }
        });
        for items in ready {
            visit(items?)?;
        }
        Ok(())
    })
}

/// What a plan found, by kind.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub accounts: u64,
    pub in_step: u64,
    /// Calls to make, by action.
    pub actions: BTreeMap<String, u64>,
    pub conflicts: u64,
    /// Managed Google users whose account is not in the directory.
    pub orphans: u64,
    /// Links corrected without a call.
    pub relinked: u64,
    /// Accounts skipped because an entry already waits or they are quarantined.
    pub waiting: u64,
    pub quarantined: u64,
    /// Org units to create first.
    pub org_units: u64,
    /// Suspensions the guard held back.
    pub suspensions_held: u64,
    /// Notices to retiring accounts due and not yet in the outbox, by days before the
    /// suspension.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub notices_due: BTreeMap<i64, u64>,
}

impl Totals {
    pub fn count(&mut self, kind: ActionKind) {
        *self.actions.entry(kind.as_str().to_owned()).or_default() += 1;
    }
}

/// Counts suspensions per domain against the managed accounts, for the guard.
#[derive(Debug, Default)]
pub struct Guard {
    managed: BTreeMap<String, u64>,
    suspensions: BTreeMap<String, u64>,
}

impl Guard {
    pub fn managed(&mut self, email: &str) {
        *self.managed.entry(domain_of(email)).or_default() += 1;
    }

    pub fn suspension(&mut self, email: &str) {
        *self.suspensions.entry(domain_of(email)).or_default() += 1;
    }

    pub fn total(&self) -> u64 {
        self.suspensions.values().sum()
    }

    /// Why the suspensions are too many, if they are (pure: the numbers and the limits).
    pub fn verdict(&self, max: u64, max_share: f64) -> Option<String> {
        let total = self.total();
        if total > max {
            return Some(format!(
                "{total} suspensions exceed sync.max_suspensions = {max}"
            ));
        }
        self.suspensions.iter().find_map(|(domain, &n)| {
            let managed = self.managed.get(domain).copied().unwrap_or(0).max(1);
            let share = n as f64 / managed as f64;
            (n > SHARE_FLOOR && share > max_share).then(|| {
                format!(
                    "{n} suspensions in {domain} are {:.1} % of its {managed} managed accounts, over sync.max_suspension_share = {:.1} %",
                    share * 100.0,
                    max_share * 100.0
                )
            })
        })
    }
}

fn domain_of(email: &str) -> String {
    email.rsplit_once('@').map_or("", |(_, d)| d).to_owned()
}

/// How a sync pass treats suspensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suspensions {
    /// Held back when the guard says they are too many.
    Guarded,
    /// Released once by an operator (`--allow-mass-suspend`).
    Allowed,
}

/// One line of a plan: what is to be done about one account (or org unit), for `plan`.
/// It borrows what it shows (a plan of a million lines copies none of them); read back
/// from JSON, it owns it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PlanLine<'a> {
    pub account: Cow<'a, str>,
    pub action: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub email: Cow<'a, str>,
    pub fields: Cow<'a, [String]>,
    pub reason: Cow<'a, str>,
}

fn is_empty(text: &str) -> bool {
    text.is_empty()
}

impl<'a> PlanLine<'a> {
    pub fn new(
        subject: &'a str,
        action: &'a str,
        email: &'a str,
        fields: &'a [String],
        reason: &'a str,
    ) -> PlanLine<'a> {
        PlanLine {
            account: Cow::Borrowed(subject),
            action: Cow::Borrowed(action),
            email: Cow::Borrowed(email),
            fields: Cow::Borrowed(fields),
            reason: Cow::Borrowed(reason),
        }
    }
}

/// Whether a plan is written to the journal (a sync) or only shown (`plan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    DryRun,
    Write(Suspensions),
}

/// Today, in the machine's time zone: the day imports and plans are made on.
pub fn today() -> Date {
    jiff::Zoned::now().date()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_holds_on_the_count_or_on_a_domain_share() {
        let mut guard = Guard::default();
        for i in 0..1000 {
            guard.managed(&format!("s{i}@sd.belajar.id"));
        }
        for i in 0..5 {
            guard.suspension(&format!("s{i}@sd.belajar.id"));
        }
        assert_eq!(guard.verdict(1000, 0.02), None, "5 of 1000 is under 2 %");
        assert_eq!(
            guard
                .verdict(4, 0.02)
                .map(|r| r.contains("max_suspensions")),
            Some(true)
        );
        for i in 5..30 {
            guard.suspension(&format!("s{i}@sd.belajar.id"));
        }
        let verdict = guard.verdict(1000, 0.02).expect("30 of 1000 is over 2 %");
        assert!(verdict.contains("sd.belajar.id"), "{verdict}");
        let mut small = Guard::default();
        small.managed("a@smp.belajar.id");
        small.suspension("a@smp.belajar.id");
        assert_eq!(
            small.verdict(1000, 0.02),
            None,
            "one suspension is not a mass"
        );
    }
}

/// How a sync runs.
#[derive(Debug, Clone, Copy)]
pub struct SyncOptions<'a> {
    /// Scan Google first (also done when no scan has run yet).
    pub scan: bool,
    pub suspensions: Suspensions,
    /// How long to wait for entries Google asked to retry later before leaving them to
    /// the next run.
    pub max_wait: std::time::Duration,
    /// The daemon's stop request and heartbeat, when run by it.
    pub control: Option<&'a crate::executor::RunControl>,
}

/// What a sync did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan: Option<remote::ScanRecord>,
    pub plan: Totals,
    /// Calls that took effect, by action.
    pub done: BTreeMap<String, u64>,
    /// Accounts quarantined during this run.
    pub quarantined_now: u64,
    /// Entries still in the journal at the end (Google asked for time).
    pub left_in_journal: u64,
    /// Why the entries this run left in the journal wait, in words.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<String>,
    /// Accounts held for a person after the run.
    pub conflicts: u64,
    pub quarantine: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<GuardHeld>,
    /// Why the scan was not believed, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distrusted: Option<String>,
    /// Without a scan: when the view of Google the plan used was taken (the last scan).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view_from: Option<Timestamp>,
    /// The notices to retiring accounts sent after the push (when `[mail]` is set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notices: Option<crate::notices::Delivery>,
}

impl SyncReport {
    /// 0 converged, 3 accounts wait for a person (or for Google), 4 the guard held.
    pub fn exit_code(&self) -> u8 {
        if self.guard.is_some() || self.distrusted.is_some() {
            4
        } else if self.conflicts + self.quarantine + self.left_in_journal > 0 {
            3
        } else {
            0
        }
    }
}

/// Why a sync stopped (nothing is lost: the journal holds what was not done).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Scan(scan::ScanError),
    #[error(transparent)]
    Drain(#[from] crate::executor::DrainError),
}

/// One full pass: scan when asked or when none has run, plan, journal, push, and wait for
/// the journal to drain.
pub async fn sync(
    store: &Store,
    client: &crate::google::DirectoryClient,
    config: &Config,
    today: Date,
    options: SyncOptions<'_>,
    mut progress: impl FnMut(&str),
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    let mut progress = |phase: &str| {
        if let Some(control) = options.control {
            control.beat();
        }
        progress(phase)
    };
    if options.scan || remote::last_scan(store)?.finished.is_none() {
        progress("scanning Google");
        let scanned = scan::run(store, client, config, |domain, users| {
            progress(&format!("scanning {domain}: {users} users"))
        })
        .await;
        match scanned {
            Ok(record) => report.scan = Some(record),
            Err(e) if e.is_distrust() => {
                report.distrusted = Some(e.to_string());
                return Ok(report);
            }
            Err(e) => return Err(SyncError::Scan(e)),
        }
    }
    if report.scan.is_none() {
        report.view_from = remote::last_scan(store)?.finished;
    }
    progress("planning");
    let (totals, guard) = enqueue(
        store,
        config,
        today,
        Mode::Write(options.suspensions),
        |_| {},
    )?;
    report.plan = totals;
    report.guard = guard;

    progress("pushing to Google");
    let executor = crate::executor::Executor::new(store, client, config, None, options.control);
    let give_up = tokio::time::Instant::now() + options.max_wait;
    loop {
        let drained = executor.drain(None).await?;
        for (kind, n) in drained.done {
            *report.done.entry(kind).or_default() += n;
        }
        report.quarantined_now += drained.quarantined;
        report.waiting = drained
            .waits
            .iter()
            .map(|((why, action), n)| why.describe(action, *n))
            .collect();
        // Worth waiting for: users Google is settling, org units being made, answers that
        // got lost. Entries Google refused with an error (502, a rate limit) are left to
        // the next round.
        let settling = drained
            .waits
            .keys()
            .any(|(why, _)| matches!(why, Wait::Settling | Wait::OrgUnit | Wait::NoAnswer));
        let Some(due) = drained
            .next_due
            .filter(|_| drained.deferred > 0 && settling)
        else {
            break;
        };
        let wait = due
            .duration_since(Timestamp::now())
            .unsigned_abs()
            .max(std::time::Duration::from_millis(100));
        if tokio::time::Instant::now() + wait > give_up {
            break;
        }
        progress(&format!(
            "waiting {}s: {}",
            wait.as_secs(),
            report.waiting.join("; ")
        ));
        tokio::time::sleep(wait).await;
    }
    report.left_in_journal = journal::depth(store)?.0;
    report.conflicts = audit::all_held(store, HeldList::Conflicts).count() as u64;
    report.quarantine = audit::all_held(store, HeldList::Quarantine).count() as u64;
    Ok(report)
}
