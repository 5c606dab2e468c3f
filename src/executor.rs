//! The executor: sends the journal's entries through the client (its limiter and retries),
//! and applies each answer — link, remote record, audit, entry done — in one commit.
//!
//! The decision of what an answer means is [`judge`], separate from the I/O so that it is
//! tested on its own.

use crate::audit::{self, HeldList};
use crate::config::{Config, Licences};
use crate::directory::model::{Account, AccountKey, GoogleLink};
use crate::google::errors::CallError;
use crate::google::types::User;
use crate::google::{CallFailure, DirectoryClient};
use crate::journal::{self, Entry, Lane};
use crate::password;
use crate::planner::{ActionKind, marked_key};
use crate::remote;
use crate::store::{Changes, Store, StoreError};
use futures_util::StreamExt;
use jiff::Timestamp;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// Entries marked in flight at once (one commit), and sent with bounded concurrency.
const BATCH: usize = 512;

/// Entries of `lane` looked at for one batch: org units are all read (up to a bound), so
/// that the shallowest are sent first whatever order they were queued in.
fn batch_limit(lane: Lane) -> usize {
    if lane == Lane::OrgUnit {
        64 * BATCH
    } else {
        BATCH
    }
}

/// Answers applied per commit.
const APPLY_EVERY: usize = 128;

/// How long a user created this recently may still answer 404/403/409/412 to writes.
const SETTLING: Duration = Duration::from_secs(30 * 60);

/// How long to wait before sending again to a user that is still settling, or after a
/// transient failure that outlasted the call's deadline.
const RETRY_LATER: Duration = Duration::from_secs(60);

/// How long an entry sent twice without an answer waits before the next send.
const NO_ANSWER_WAIT: Duration = Duration::from_secs(10);

/// Sends without an answer after which an entry is quarantined rather than sent again.
const MAX_UNANSWERED: u32 = 8;

/// Sends after which an entry whose org unit Google keeps not knowing is quarantined.
const MAX_ORG_UNIT_TRIES: u32 = 5;

/// What an answer means for the entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The call took effect; the user as Google now has it.
    User(Box<User>),
    /// The org unit exists.
    OrgUnit,
    /// Google is settling a new user, or stayed unavailable past the deadline: try again
    /// after `wait`.
    Later {
        error: String,
        wait: Duration,
        why: Wait,
    },
    /// Sent without an answer: it may have been applied. Send again (a create is first
    /// looked up by its address).
    Unknown(String),
    /// Sent again after an unknown outcome, and again no answer: sent again a little
    /// later rather than at once.
    UnknownAgain(String),
    /// It cannot succeed: quarantine the account with the reason.
    Failed(String),
    /// Google does not know an org unit the action names (an admin deleted it since it was
    /// last seen): create the org units of its path again, then send it again.
    NoOrgUnit(String),
    /// Google cannot be reached, or refuses our token or our writes: nothing was done;
    /// stop the run.
    Stop(String),
    /// Not sent: an earlier answer of the batch stopped the run.
    NotSent,
    /// The deleted user to restore is gone for good: the account gets a new user at the
    /// next plan.
    Gone(String),
    /// The user holds the licence the entry assigns.
    Licensed,
    /// Google has no licence of this SKU left, or refuses licensing calls: the entry
    /// waits, due, and is tried at the next drain (one call per SKU per drain, not one per
    /// account). What it waits for is in [`Executor::blocked`].
    Blocked(String),
}

/// Why an entry waits in the journal: what the operator is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Wait {
    /// Google is still settling a user created minutes ago.
    Settling,
    /// Google answered this status (5xx, or a rate limit) until the call's deadline.
    Answered(u16),
    /// Google's org unit is missing and is being created first.
    OrgUnit,
    /// Sent twice without an answer: sent again a little later.
    NoAnswer,
    /// Google has no licence of the SKU left.
    NoLicence,
    /// Google refuses licensing calls (the scope not delegated, the API not enabled).
    LicensingRefused,
}

impl Wait {
    /// `20 creates wait: …`, in words.
    pub fn describe(self, action: &str, count: u64) -> String {
        let plural = |n: u64, word: &str| {
            if n == 1 {
                format!("1 {word}")
            } else {
                format!("{n} {word}s")
            }
        };
        let action = match action {
            "create_org_unit" => "org unit creation",
            other => other,
        };
        match self {
            Wait::Settling => format!(
                "{} to users Google is still settling (created minutes ago): sent again within minutes",
                plural(count, action)
            ),
            Wait::Answered(status) => format!(
                "Google answered {status} to {}: they stay queued and are sent at the next round",
                plural(count, action)
            ),
            Wait::OrgUnit => format!(
                "{} wait for the org units they need to be created in Google first",
                plural(count, action)
            ),
            Wait::NoLicence => format!(
                "{} wait: Google has no licence of their SKU left (archive more leavers, or ask Google for more licences); tried again at the next round",
                plural(count, "licence assignment")
            ),
            Wait::LicensingRefused => format!(
                "{} wait: Google refuses licensing calls (403): delegate the scope https://www.googleapis.com/auth/apps.licensing and enable the Enterprise License Manager API, then check with belajar-sync check",
                plural(count, "licence assignment")
            ),
            Wait::NoAnswer => format!(
                "Google did not answer {} twice (they may or may not have been applied): checked and sent again shortly",
                plural(count, action)
            ),
        }
    }
}

/// How long an entry waits after Google answered `error`: a minute, or longer when Google
/// said so with `Retry-After` (at most an hour).
fn wait_after(error: &CallError) -> Duration {
    match error {
        CallError::Api {
            retry_after: Some(after),
            ..
        } => (*after).clamp(RETRY_LATER, Duration::from_secs(3600)),
        _ => RETRY_LATER,
    }
}

/// What a failed call means: `settling` is whether the user was created so recently that
/// Google may not have finished (`docs/architecture.md`, "Consistency").
pub fn judge(failure: &CallFailure, settling: bool) -> Answer {
    let error = &failure.error;
    let text = failure.to_string();
    match error {
        // An answer that cannot be read may still be a write Google applied: read back.
        _ if failure.is_uncertain() => Answer::Unknown(text),
        CallError::Unreadable(_) => Answer::Unknown(text),
        CallError::Unreachable(_) | CallError::Token(_) => Answer::Stop(text),
        CallError::Api { status, .. }
            if settling && matches!(status, 403 | 404 | 409 | 412) && !error.is_rate_limit() =>
        {
            Answer::Later {
                error: text,
                wait: RETRY_LATER,
                why: Wait::Settling,
            }
        }
        // Our token is refused (after a fresh one) or our admin may not write: every
        // other write would be refused too. Stop; the accounts are not at fault.
        CallError::Api { status: 401, .. } => Answer::Stop(format!(
            "{text}: the token is refused; check the service account key and its domain-wide delegation (belajar-sync check)"
        )),
        CallError::Api {
            status: 403,
            reason,
            ..
        } if matches!(
            reason.as_str(),
            "forbidden" | "notAuthorized" | "insufficientPermissions"
        ) =>
        {
            Answer::Stop(format!(
                "{text}: Google refuses our writes; check that google.subject is an admin with rights over users and org units and that the delegation grants both scopes (belajar-sync check)"
            ))
        }
        CallError::Api { message, .. } if message.contains("User creation is not complete") => {
            Answer::Later {
                error: text,
                wait: RETRY_LATER,
                why: Wait::Settling,
            }
        }
        CallError::Api { status, .. } if error.is_rate_limit() || *status >= 500 => Answer::Later {
            error: text,
            wait: wait_after(error),
            why: Wait::Answered(*status),
        },
        CallError::Api {
            status: 400,
            message,
            ..
        } if message.contains("INVALID_OU_ID") => Answer::NoOrgUnit(text),
        _ => Answer::Failed(text),
    }
}

/// For an entry Google answered "no such org unit": forgets here each org unit of the path
/// it needs and queues their creation (in their own lane, sent first, parents before
/// children; one that exists answers 409, which is what was wanted). When to send the
/// entry again; `None`: quarantine it (no path to create, or that did not help before).
fn recreate_org_units(
    changes: &mut Changes,
    entry: &Entry,
    now: Timestamp,
) -> Result<Option<Duration>, StoreError> {
    // Sent again at once: the org units it needs are due and go first (parents before
    // children), so it follows them.
    let (path, wait) = match entry.action.kind {
        // Its parent is missing.
        ActionKind::CreateOrgUnit => (
            entry.subject.rsplit_once('/').map(|(parent, _)| parent),
            Duration::ZERO,
        ),
        _ => (entry.action.body.org_unit_path.as_deref(), Duration::ZERO),
    };
    let Some(path) = path.filter(|p| !p.is_empty() && *p != "/") else {
        return Ok(None);
    };
    if entry.attempts > MAX_ORG_UNIT_TRIES {
        return Ok(None);
    }
    for missing in journal::missing_org_units(path, &Default::default()) {
        remote::forget_org_unit(changes, &missing);
        match journal::pending_for(changes, &missing)? {
            // Already queued, perhaps waiting after its own parent was missing: now.
            Some(mut waiting) if !waiting.in_flight => {
                waiting.not_before = None;
                journal::save(changes, &waiting);
            }
            Some(_) => {}
            None => {
                let create = journal::org_unit_action(&missing);
                journal::queue(changes, Lane::OrgUnit, &missing, create, now)?;
            }
        }
    }
    Ok(Some(wait))
}

/// The entry waits in the journal and is sent again after `wait`.
fn defer(
    changes: &mut Changes,
    mut entry: Entry,
    error: String,
    wait: Duration,
    why: Wait,
    now: Timestamp,
    drained: &mut Drained,
) -> Result<(), StoreError> {
    *drained
        .waits
        .entry((why, entry.action.kind.as_str().to_owned()))
        .or_default() += 1;
    let (subject, kind) = (&entry.subject, entry.action.kind.as_str());
    entry.in_flight = false;
    entry.not_before = Some(now + wait);
    audit::log(
        changes,
        subject,
        now,
        "retry",
        format!("{kind}: {error}; again after {}s", wait.as_secs()),
    )?;
    tracing::info!(account = %subject, action = kind, outcome = "later", %error, "deferred");
    entry.last_error = Some(error);
    journal::save(changes, &entry);
    drained.deferred += 1;
    Ok(())
}

/// The entry cannot succeed: it leaves the journal and the account is quarantined (until a
/// scan finds `org_unit`, when that is what it lacks).
fn quarantine(
    changes: &mut Changes,
    entry: &Entry,
    error: &str,
    org_unit: Option<&str>,
    now: Timestamp,
    drained: &mut Drained,
) -> Result<(), StoreError> {
    let (subject, kind) = (&entry.subject, entry.action.kind.as_str());
    let reason = match entry.attempts {
        0 | 1 => format!("{kind}: {error}"),
        sends => format!("{kind}, sent {sends} times: {error}"),
    };
    let reason = match org_unit {
        Some(path) => {
            format!("{reason} (Google lacks the org unit {path}; released once a scan finds it)")
        }
        None => reason,
    };
    audit::hold_for(
        changes,
        HeldList::Quarantine,
        subject,
        now,
        &reason,
        org_unit,
    );
    audit::log(changes, subject, now, "failed", reason)?;
    journal::finish(changes, entry);
    tracing::warn!(account = %subject, action = kind, outcome = "quarantined", %error, "failed");
    drained.quarantined += 1;
    Ok(())
}

/// The entries to send next, and what waits.
struct NextBatch {
    batch: Vec<Entry>,
    /// Entries waiting for a later time, and the earliest.
    deferred: u64,
    next_due: Option<Timestamp>,
    /// Assignments of a SKU blocked in this drain, by why.
    licence_waiting: BTreeMap<Wait, u64>,
}

/// What a drain of the journal did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Drained {
    /// Calls that took effect, by action.
    pub done: BTreeMap<String, u64>,
    /// Accounts quarantined.
    pub quarantined: u64,
    /// Entries left waiting for a later time, and the earliest of those times.
    pub deferred: u64,
    #[serde(skip)]
    pub next_due: Option<Timestamp>,
    /// Entries this drain left waiting, by why and by action.
    #[serde(skip)]
    pub waits: BTreeMap<(Wait, String), u64>,
}

/// Why a drain stopped before the journal was empty.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stopped: {0} (nothing is lost: the journal finishes the work on the next run)")]
    Stopped(String),
}

/// Shared between a long run and the daemon around it: a request to stop taking work, and
/// a heartbeat that shows the run is alive (what the systemd watchdog is fed from).
#[derive(Debug, Default)]
pub struct RunControl {
    stop: std::sync::atomic::AtomicBool,
    /// Unix seconds of the last sign of progress.
    beat: std::sync::atomic::AtomicI64,
}

impl RunControl {
    pub fn request_stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn stop_requested(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Records progress now.
    pub fn beat(&self) {
        self.beat.store(
            Timestamp::now().as_second(),
            std::sync::atomic::Ordering::SeqCst,
        );
    }

    /// Seconds since the last sign of progress.
    pub fn silent_for(&self) -> i64 {
        Timestamp::now().as_second() - self.beat.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Sends journal entries.
pub struct Executor<'a> {
    pub store: &'a Store,
    pub client: &'a DirectoryClient,
    pub concurrency: usize,
    /// When set: stop between batches when asked, beat after each.
    pub control: Option<&'a RunControl>,
    /// The licence rules, when belajar-sync manages licences.
    licences: Option<&'a Licences>,
    /// SKUs Google answered it has none left of, or refused to assign, in this drain, with
    /// why and the words for the journal: the other assignments of those SKUs wait without
    /// a call (one refusal, not one per account).
    blocked: std::sync::Mutex<BTreeMap<String, (Wait, String)>>,
}

impl<'a> Executor<'a> {
    /// An executor for `config`: its concurrency (`google.concurrency` unless given) and
    /// licence rules.
    pub fn new(
        store: &'a Store,
        client: &'a DirectoryClient,
        config: &'a Config,
        concurrency: Option<usize>,
        control: Option<&'a RunControl>,
    ) -> Executor<'a> {
        Executor {
            store,
            client,
            concurrency: concurrency.unwrap_or(config.google.concurrency as usize),
            control,
            licences: config.licences.enabled.then_some(&config.licences),
            blocked: Default::default(),
        }
    }
}

impl Executor<'_> {
    /// Sends every entry that is due (only those of `subjects` when given), org units
    /// first, until none is left but the ones waiting for a later time.
    pub async fn drain(&self, subjects: Option<&HashSet<String>>) -> Result<Drained, DrainError> {
        // The quota learnt by an earlier run is the start; what this one learns is kept.
        let kept = remote::learnt_quota(self.store)?;
        if let Some(quota) = kept {
            self.client.limiter().recall(quota);
        }
        let drained = self.send_all(subjects).await;
        let learnt = self.client.limiter().learnt_per_minute();
        if let Some(quota) = learnt.filter(|q| Some(*q) != kept) {
            let mut changes = self.store.changes(false);
            remote::set_learnt_quota(&mut changes, quota);
            changes.commit()?;
        }
        drained
    }

    /// Sends batches until none is due. The next batch is read (and marked in flight) as
    /// soon as the current one is all under way, so that a slow answer does not hold the
    /// quota unused; org units wait for the whole batch, since their children (and the
    /// accounts in them) need them made first.
    async fn send_all(&self, subjects: Option<&HashSet<String>>) -> Result<Drained, DrainError> {
        let mut drained = Drained::default();
        let mut claim = self.store.claim(std::iter::empty());
        // Once one answer says Google cannot be reached or refuses us, nothing more is
        // sent: the entries not sent are left as they were.
        let halt = std::sync::atomic::AtomicBool::new(false);
        // Marked in flight, not yet sent; and sent, not yet answered.
        let mut queued: std::collections::VecDeque<(Entry, bool)> = Default::default();
        let mut sending = futures_util::stream::FuturesUnordered::new();
        let mut ready = Vec::new();
        let mut stop = None;
        // The lane of the last batch; whether the last look found nothing due (looked at
        // again once every answer is in); whether nothing is left at all.
        let (mut lane, mut nothing_due, mut exhausted) = (None, false, false);
        loop {
            let stopping = self.control.is_some_and(RunControl::stop_requested);
            let halted = halt.load(std::sync::atomic::Ordering::SeqCst);
            let overlap = lane != Some(Lane::OrgUnit) && !nothing_due;
            if queued.is_empty()
                && !exhausted
                && !stopping
                && !halted
                && (overlap || sending.is_empty())
            {
                if let Some(control) = self.control {
                    control.beat();
                }
                let NextBatch {
                    batch,
                    deferred,
                    next_due,
                    licence_waiting,
                } = self.next_batch(subjects)?;
                drained.deferred = deferred;
                drained.next_due = next_due;
                for (why, n) in licence_waiting {
                    let key = (why, ActionKind::Licence.as_str().to_owned());
                    drained.waits.insert(key, n);
                }
                nothing_due = batch.is_empty();
                exhausted = nothing_due && sending.is_empty();
                lane = batch.first().map(|e| e.lane).or(lane);
                // Another executor (a helpdesk repair beside the daemon) may have taken some.
                let taken = claim.extend(batch.iter().map(|e| e.subject.as_str()));
                // Marked in flight, durably, before anything is sent.
                let mut changes = self.store.changes(false);
                for mut entry in batch.into_iter().filter(|e| taken.contains(&e.subject)) {
                    let uncertain = entry.in_flight;
                    entry.in_flight = true;
                    entry.attempts += 1;
                    journal::save(&mut changes, &entry);
                    queued.push_back((entry, uncertain));
                }
                changes.commit()?;
            }
            while sending.len() < self.concurrency.max(1)
                && let Some((entry, uncertain)) = queued.pop_front()
            {
                sending.push(self.send_once(entry, uncertain, &halt));
            }
            let Some((entry, answer)) = sending.next().await else {
                if queued.is_empty() && (exhausted || stopping || halted) {
                    break;
                }
                continue;
            };
            if let Answer::Stop(reason) = &answer {
                stop.get_or_insert_with(|| reason.clone());
            }
            ready.push((entry, answer));
            if ready.len() >= APPLY_EVERY || sending.is_empty() {
                let applied = std::mem::take(&mut ready);
                let subjects: Vec<String> =
                    applied.iter().map(|(e, _)| e.subject.clone()).collect();
                self.apply(applied, &mut drained)?;
                for subject in &subjects {
                    claim.release(subject);
                }
            }
        }
        self.apply(ready, &mut drained)?;
        if let Some(reason) = stop {
            return Err(DrainError::Stopped(reason));
        }
        if self.control.is_some_and(RunControl::stop_requested) {
            return Err(DrainError::Stopped("asked to stop".into()));
        }
        Ok(drained)
    }

    /// Sends `entry` unless the run halted or is asked to stop (then it is left as it was).
    async fn send_once(
        &self,
        mut entry: Entry,
        uncertain: bool,
        halt: &std::sync::atomic::AtomicBool,
    ) -> (Entry, Answer) {
        let stopping = self.control.is_some_and(RunControl::stop_requested);
        let answer = if halt.load(std::sync::atomic::Ordering::SeqCst) || stopping {
            Answer::NotSent
        } else {
            match self.send(&entry, uncertain).await {
                Answer::Unknown(error) if uncertain => Answer::UnknownAgain(error),
                answer => answer,
            }
        };
        if matches!(answer, Answer::Stop(_) | Answer::NotSent) {
            halt.store(true, std::sync::atomic::Ordering::SeqCst);
            entry.in_flight = uncertain;
            entry.attempts -= 1;
        }
        (entry, answer)
    }

    /// The next entries to send: all due ones of the first lane that has any, and for org
    /// units only those of the smallest depth due (parents before children, whatever
    /// order they were queued in).
    fn next_batch(&self, subjects: Option<&HashSet<String>>) -> Result<NextBatch, StoreError> {
        let now = Timestamp::now();
        let mut batch: Vec<Entry> = Vec::new();
        let (mut deferred, mut next_due) = (0, None::<Timestamp>);
        let mut licence_waiting = BTreeMap::new();
        for entry in journal::entries(self.store) {
            let entry = entry?;
            if subjects.is_some_and(|s| !s.contains(&entry.subject))
                || self.store.is_claimed(&entry.subject)
            {
                continue;
            }
            if let Some(why) = self.blocked_why(&entry) {
                // Its SKU is blocked in this drain: left for the next (see `licence`).
                *licence_waiting.entry(why).or_default() += 1;
                continue;
            }
            if let Some(due) = entry.not_before.filter(|due| *due > now) {
                deferred += 1;
                next_due = Some(next_due.map_or(due, |d| d.min(due)));
                continue;
            }
            if let Some(first) = batch.first()
                && (first.lane != entry.lane || batch.len() >= batch_limit(entry.lane))
            {
                break;
            }
            batch.push(entry);
        }
        if batch.first().is_some_and(|e| e.lane == Lane::OrgUnit) {
            let shallowest = batch.iter().map(|e| depth(&e.subject)).min().unwrap_or(0);
            batch.retain(|e| depth(&e.subject) == shallowest);
            batch.truncate(BATCH);
        }
        Ok(NextBatch {
            batch,
            deferred,
            next_due,
            licence_waiting,
        })
    }

    /// Sends one entry and judges the answer. `uncertain`: it was sent before without a
    /// known outcome.
    async fn send(&self, entry: &Entry, uncertain: bool) -> Answer {
        let action = &entry.action;
        if uncertain && entry.attempts > MAX_UNANSWERED {
            return Answer::Failed(format!(
                "sent {} times without an answer; last: {}",
                entry.attempts - 1,
                entry.last_error.as_deref().unwrap_or("none")
            ));
        }
        match action.kind {
            ActionKind::CreateOrgUnit => self.create_org_unit(&entry.subject, uncertain).await,
            ActionKind::Create => self.create(entry, uncertain).await,
            ActionKind::Undelete => self.undelete(entry).await,
            ActionKind::Licence => self.licence(entry).await,
            _ => self.update(entry).await,
        }
    }

    /// Assigns the entry's licence, or (when Google assigns by itself) checks it is there.
    /// A 412 is read by its message: none left (the SKU's other assignments then wait
    /// without a call), or already held (read back: held is what was wanted, which makes
    /// an assignment sent twice after a crash land once).
    async fn licence(&self, entry: &Entry) -> Answer {
        let sku = entry.action.sku.as_deref().unwrap_or_default();
        // Licensing names users by their current primary address (not by id).
        let user = entry.action.email.as_str();
        if self.blocked_why(entry).is_some() {
            return Answer::Blocked(sku.to_owned());
        }
        let auto = self.licences.is_some_and(|l| l.auto_assigned);
        if !auto {
            match self.client.assign_licence(sku, user).await {
                Ok(_) => return Answer::Licensed,
                Err(f) if f.status() == Some(412) && !is_pool_empty(&f.error) => {}
                Err(f) if f.is_uncertain() => {}
                Err(f) => {
                    if let Some(answer) = self.block(sku, &f.error) {
                        return answer;
                    }
                    let id = entry.action.target.as_deref().unwrap_or_default();
                    return judge(&f, self.settling(&entry.subject, id));
                }
            }
        }
        match self.client.licence_held(sku, user).await {
            Ok(true) => Answer::Licensed,
            Ok(false) if auto => Answer::Later {
                error: format!("Google's auto-licensing has not given {user} licence {sku} yet"),
                wait: RETRY_LATER,
                why: Wait::Answered(412),
            },
            Ok(false) => Answer::Failed(format!(
                "Google refuses licence {sku} to {user} and it does not hold it: it may hold another SKU of the product; see the Admin console's licence page"
            )),
            Err(f) => self
                .block(sku, &f.error)
                .unwrap_or_else(|| judge(&f, false)),
        }
    }

    /// Why the SKU of `entry` (an assignment or an archive) is blocked in this drain.
    fn blocked_why(&self, entry: &Entry) -> Option<Wait> {
        if !matches!(entry.action.kind, ActionKind::Licence | ActionKind::Archive) {
            return None;
        }
        let sku = entry.action.sku.as_deref()?;
        let blocked = self.blocked.lock().expect("blocked lock");
        blocked.get(sku).map(|(why, _)| *why)
    }

    /// Blocks `sku` for this drain when `error` says no licence is left or licensing is
    /// refused (the answer for the entry); `None` for any other error.
    fn block(&self, sku: &str, error: &CallError) -> Option<Answer> {
        let (why, words) = match error {
            _ if is_pool_empty(error) => (
                Wait::NoLicence,
                format!("{} {sku} left in Google", journal::NO_LICENCE),
            ),
            CallError::Api { status: 403, .. } if !error.is_rate_limit() => (
                Wait::LicensingRefused,
                format!("Google refuses licensing calls: {error}"),
            ),
            _ => return None,
        };
        let mut blocked = self.blocked.lock().expect("blocked lock");
        blocked.insert(sku.to_owned(), (why, words));
        Some(Answer::Blocked(sku.to_owned()))
    }

    /// Restores a deleted user into its org unit, then reads it. Google not knowing the
    /// deleted user means it was restored already (read back) or can no longer be.
    async fn undelete(&self, entry: &Entry) -> Answer {
        let id = entry.action.target.as_deref().unwrap_or_default();
        let unit = entry.action.body.org_unit_path.as_deref().unwrap_or("/");
        match self.client.undelete_user(id, unit).await {
            Ok(()) => {}
            Err(f) if f.status() == Some(404) => {}
            Err(f) => return judge(&f, false),
        }
        match self.client.get_user(id).await {
            Ok(called) => Answer::User(Box::new(called.value)),
            Err(f) if f.status() == Some(404) => Answer::Gone(format!(
                "Google can no longer restore the deleted user {id} (deleted for good, or past its 20 days)"
            )),
            Err(f) => judge(&f, false),
        }
    }

    /// An org unit create. One sent before without a known outcome, or answered now with
    /// none, is read back (`orgunits.get`): an org unit Google has is what was wanted,
    /// whoever made it.
    async fn create_org_unit(&self, path: &str, uncertain: bool) -> Answer {
        if uncertain && self.org_unit_exists(path).await {
            return Answer::OrgUnit;
        }
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        let parent = if parent.is_empty() { "/" } else { parent };
        match self.client.insert_org_unit(name, parent).await {
            Ok(_) => Answer::OrgUnit,
            // Already there (made by a crashed run, or by hand): what was wanted.
            Err(f) if f.status() == Some(409) => Answer::OrgUnit,
            Err(f) => match judge(&f, false) {
                Answer::Unknown(_) if self.org_unit_exists(path).await => Answer::OrgUnit,
                answer => answer,
            },
        }
    }

    /// Whether Google has the org unit `path`, as `orgunits.get` answers (no answer: not
    /// known to exist).
    async fn org_unit_exists(&self, path: &str) -> bool {
        self.client
            .get_org_unit(path)
            .await
            .is_ok_and(|called| called.value.org_unit_path.is_some())
    }

    /// A create, checked first by its address when an earlier send may have landed: the
    /// address was allocated here, so `users.get` on it is authoritative (a search is not).
    async fn create(&self, entry: &Entry, uncertain: bool) -> Answer {
        let email = &entry.action.email;
        if uncertain {
            match self.owner_of(entry).await {
                Ok(Some(answer)) => return answer,
                Ok(None) => {}
                Err(answer) => return answer,
            }
        }
        let mut body = entry.action.body.clone();
        // A first password nobody is told: the person gets theirs from the school's sheet
        // or the helpdesk (`credentials`, `reset-password`), which set a new one.
        body.password = Some(password::generate().expose().to_owned());
        match self.client.insert_user(&body).await {
            Ok(called) => Answer::User(Box::new(called.value)),
            Err(f) if f.status() == Some(409) => match self.owner_of(entry).await {
                Ok(Some(answer)) => answer,
                Ok(None) => Answer::Later {
                    error: format!("{email} is reported taken but cannot be read yet"),
                    wait: RETRY_LATER,
                    why: Wait::Settling,
                },
                Err(answer) => answer,
            },
            Err(f) => judge(&f, false),
        }
    }

    /// Who holds the entry's address in Google: `Some(User)` when it is ours (an earlier
    /// create landed), `Some(Failed)` when it is someone else, `None` when nobody.
    async fn owner_of(&self, entry: &Entry) -> Result<Option<Answer>, Answer> {
        let email = &entry.action.email;
        match self.client.get_user(email).await {
            Ok(called) => {
                let user = called.value;
                let ours = marked_key(&user).map(|k| k.to_string()) == Some(entry.subject.clone())
                    && user
                        .primary_email
                        .as_deref()
                        .is_some_and(|p| p.eq_ignore_ascii_case(email));
                Ok(Some(if ours {
                    Answer::User(Box::new(user))
                } else {
                    Answer::Failed(format!(
                        "{email} is held in Google by {} ({}), which is not this account's: resolve it in the Admin console, then run resync",
                        user.primary_email.as_deref().unwrap_or("?"),
                        user.id.as_deref().unwrap_or("?")
                    ))
                }))
            }
            Err(f) if f.status() == Some(404) => Ok(None),
            Err(f) => Err(judge(&f, false)),
        }
    }

    /// Any write to an existing user (patch semantics: only the fields that change).
    /// Idempotent, so an unanswered one is simply sent again.
    async fn update(&self, entry: &Entry) -> Answer {
        let action = &entry.action;
        let Some(target) = action.target.as_deref() else {
            return Answer::Failed("an update without a target user".into());
        };
        if self.blocked_why(entry).is_some() {
            return Answer::Blocked(action.sku.clone().unwrap_or_default());
        }
        let failure = match self.client.update_user(target, &action.body).await {
            Ok(called) => return Answer::User(Box::new(called.value)),
            Err(f) => f,
        };
        if action.kind == ActionKind::Archive
            && is_pool_empty(&failure.error)
            && let Some(answer) =
                self.block(action.sku.as_deref().unwrap_or_default(), &failure.error)
        {
            return answer;
        }
        // Google has answered 409 to a rename it applied: read back before believing it.
        if failure.status() == Some(409)
            && let Ok(called) = self.client.get_user(target).await
            && applied(&action.body, &called.value)
        {
            return Answer::User(Box::new(called.value));
        }
        judge(&failure, self.settling(&entry.subject, target))
    }

    /// Whether the user `id` of `subject` was created so recently that Google may still be
    /// settling it.
    fn settling(&self, subject: &str, id: &str) -> bool {
        let Some(key) = AccountKey::parse(subject) else {
            return false;
        };
        let Ok(observed) = remote::marked_users(self.store, &key) else {
            return false;
        };
        observed
            .iter()
            .filter(|o| o.user.id.as_deref() == Some(id))
            .filter_map(|o| o.user.creation_time.as_deref()?.parse::<Timestamp>().ok())
            .any(|created| Timestamp::now().duration_since(created).unsigned_abs() < SETTLING)
    }

    /// Applies answers in one commit: link, remote record, audit, entry done.
    fn apply(
        &self,
        answers: Vec<(Entry, Answer)>,
        drained: &mut Drained,
    ) -> Result<(), StoreError> {
        if answers.is_empty() {
            return Ok(());
        }
        let now = Timestamp::now();
        let mut changes = self.store.changes(false);
        for (mut entry, answer) in answers {
            let subject = entry.subject.clone();
            let kind = entry.action.kind.as_str();
            match answer {
                Answer::User(user) => {
                    user_done(&mut changes, &entry, &user, now)?;
                    if entry.action.kind == ActionKind::Create
                        && let Some(licences) = self.licences
                    {
                        queue_licence(&mut changes, &entry, &user, licences, now)?;
                    }
                    if entry.action.kind == ActionKind::Archive {
                        crate::licences::record_freed(&mut changes, now)?;
                    }
                    *drained.done.entry(kind.to_owned()).or_default() += 1;
                }
                Answer::OrgUnit => {
                    remote::record_org_unit(&mut changes, &subject, now);
                    journal::finish(&mut changes, &entry);
                    tracing::info!(org_unit = %subject, action = kind, outcome = "done", "applied");
                    *drained.done.entry(kind.to_owned()).or_default() += 1;
                }
                Answer::Later { error, wait, why } => {
                    defer(&mut changes, entry, error, wait, why, now, drained)?;
                }
                Answer::Unknown(error) => {
                    // Left in flight: the next send checks before repeating a create.
                    tracing::warn!(account = %subject, action = kind, outcome = "unknown", %error, "no answer");
                    entry.last_error = Some(error);
                    journal::save(&mut changes, &entry);
                }
                Answer::UnknownAgain(error) => {
                    // Twice without an answer (a hang?): still in flight, and not sent
                    // again at once.
                    tracing::warn!(account = %subject, action = kind, outcome = "unknown", %error, "no answer again");
                    *drained
                        .waits
                        .entry((Wait::NoAnswer, kind.to_owned()))
                        .or_default() += 1;
                    entry.not_before = Some(now + NO_ANSWER_WAIT);
                    drained.deferred += 1;
                    entry.last_error = Some(error);
                    journal::save(&mut changes, &entry);
                }
                Answer::Failed(error) => {
                    quarantine(&mut changes, &entry, &error, None, now, drained)?;
                }
                Answer::NoOrgUnit(error) => {
                    no_org_unit(&mut changes, entry, error, now, drained)?;
                }
                Answer::Stop(error) => {
                    // Nothing was applied: the entry waits as it was before this send.
                    entry.last_error = Some(error);
                    journal::save(&mut changes, &entry);
                }
                Answer::NotSent => journal::save(&mut changes, &entry),
                Answer::Gone(error) => gone(&mut changes, &entry, &error, now)?,
                Answer::Licensed => {
                    licence_done(&mut changes, &entry, now)?;
                    *drained.done.entry(kind.to_owned()).or_default() += 1;
                }
                Answer::Blocked(sku) => {
                    // Due again at the next drain; this one skips it (`next_batch`).
                    entry.in_flight = false;
                    let blocked = self.blocked.lock().expect("blocked lock");
                    entry.last_error = blocked.get(&sku).map(|(_, words)| words.clone());
                    drop(blocked);
                    journal::save(&mut changes, &entry);
                }
            }
        }
        changes.commit()
    }
}

/// Google did what `entry` asked and answered `user`: recorded, linked, in the history,
/// out of quarantine and conflicts, off the journal.
fn user_done(
    changes: &mut Changes,
    entry: &Entry,
    user: &User,
    now: Timestamp,
) -> Result<(), StoreError> {
    let subject = &entry.subject;
    let kind = entry.action.kind;
    remote::record(changes, user, now)?;
    let key = AccountKey::parse(subject);
    if let Some(key) = &key {
        if kind == ActionKind::Undelete
            && let Some(id) = &user.id
        {
            remote::forget_deleted(changes, key, id);
        }
        if kind == ActionKind::Create {
            // Its password was random and shown to nobody.
            crate::access::created_here(changes, key, now)?;
        }
        if let Some(old) = changes.account(key)? {
            let id = user.id.clone().unwrap_or_default();
            let suspended_by_us = match kind {
                ActionKind::Suspend => true,
                ActionKind::Unsuspend => false,
                _ => old
                    .google
                    .as_ref()
                    .is_some_and(|g| g.id == id && g.suspended_by_us),
            };
            // What the user holds stays known while the link is to the same user.
            let licence = match kind {
                ActionKind::Licence => entry.action.sku.clone(),
                // Archiving trades the Fundamentals licence for an Archived User one;
                // unarchived, it has none yet.
                ActionKind::Archive => entry.action.sku.clone(),
                _ if entry.action.body.archived == Some(false) => None,
                _ => old
                    .google
                    .as_ref()
                    .filter(|g| g.id == id)
                    .and_then(|g| g.licence.clone()),
            };
            let licence_freed = match kind {
                ActionKind::Archive => Some(now),
                _ => old.google.as_ref().and_then(|g| g.licence_freed),
            };
            let mut account = old.clone();
            account.google = Some(GoogleLink {
                id,
                suspended_by_us,
                licence,
                licence_freed,
            });
            if account != old {
                changes.put_account(Some(&old), &account)?;
            }
        }
    }
    let done = format!(
        "{} done ({}); Google has {}",
        kind.as_str(),
        entry.action.fields.join(", "),
        summary(user)
    );
    audit::log(changes, subject, now, "answered", done)?;
    audit::release(changes, HeldList::Quarantine, subject);
    audit::release(changes, HeldList::Conflicts, subject);
    journal::finish(changes, entry);
    tracing::info!(account = %subject, action = kind.as_str(), outcome = "done", "applied");
    Ok(())
}

/// A user just created gets its licence next, in the same commit as the create's answer
/// (so exactly once across crashes, like every journal entry).
fn queue_licence(
    changes: &mut Changes,
    entry: &Entry,
    user: &User,
    licences: &Licences,
    now: Timestamp,
) -> Result<(), StoreError> {
    let (Some(key), Some(id)) = (AccountKey::parse(&entry.subject), user.id.as_deref()) else {
        return Ok(());
    };
    let Some(account) = changes.account(&key)? else {
        return Ok(());
    };
    if let Some((_, action)) = crate::planner::licence_action(&account, id, licences) {
        journal::queue(changes, entry.lane, &entry.subject, action, now)?;
    }
    Ok(())
}

/// Whether Google answered that no licence of the SKU is left.
fn is_pool_empty(error: &CallError) -> bool {
    matches!(error, CallError::Api { status: 412, message, .. }
        if message.contains("available licenses") || message.contains("archived user licenses"))
}

/// The user of `entry` holds its licence: recorded on the account, in the history, off
/// the journal.
fn licence_done(changes: &mut Changes, entry: &Entry, now: Timestamp) -> Result<(), StoreError> {
    let subject = &entry.subject;
    let sku = entry.action.sku.clone();
    if let Some(key) = AccountKey::parse(subject)
        && let Some(old) = changes.account(&key)?
    {
        let mut account = old.clone();
        if let Some(link) = account.google.as_mut() {
            link.licence = sku.clone();
        }
        if account != old {
            changes.put_account(Some(&old), &account)?;
        }
    }
    let line = format!("licence {} held", sku.as_deref().unwrap_or("?"));
    audit::log(changes, subject, now, "answered", line)?;
    audit::release(changes, HeldList::Quarantine, subject);
    journal::finish(changes, entry);
    tracing::info!(account = %subject, action = "licence", outcome = "done", "applied");
    Ok(())
}

/// Google says the org unit `entry` needs is missing: it is created again first (the
/// entry waits), or, when that cannot help, the entry is quarantined.
fn no_org_unit(
    changes: &mut Changes,
    entry: Entry,
    error: String,
    now: Timestamp,
    drained: &mut Drained,
) -> Result<(), StoreError> {
    if let Some(wait) = recreate_org_units(changes, &entry, now)? {
        return defer(changes, entry, error, wait, Wait::OrgUnit, now, drained);
    }
    let lacking = match entry.action.kind {
        ActionKind::CreateOrgUnit => None,
        _ => entry.action.body.org_unit_path.clone(),
    };
    quarantine(changes, &entry, &error, lacking.as_deref(), now, drained)
}

/// The user `entry` was to restore is gone for good: forgotten and unlinked, so that a
/// new user is created.
fn gone(
    changes: &mut Changes,
    entry: &Entry,
    error: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let (subject, kind) = (&entry.subject, entry.action.kind.as_str());
    if let (Some(key), Some(id)) = (AccountKey::parse(subject), entry.action.target.as_deref()) {
        remote::forget_deleted(changes, &key, id);
        // The link to a user gone for good goes with it.
        if let Some(old) = changes.account(&key)?
            && old.google.as_ref().is_some_and(|g| g.id == id)
        {
            let unlinked = Account {
                google: None,
                ..old.clone()
            };
            changes.put_account(Some(&old), &unlinked)?;
        }
    }
    let line = format!("{kind}: {error}; a new user is created");
    audit::log(changes, subject, now, "answered", line)?;
    tracing::warn!(account = %subject, action = kind, outcome = "gone", %error, "cannot restore");
    journal::finish(changes, entry);
    Ok(())
}

/// Whether `user` already has every field `body` sets that can be compared after a write.
fn applied(body: &User, user: &User) -> bool {
    let same = |a: Option<&str>, b: Option<&str>| match (a, b) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        (None, _) => true,
        _ => false,
    };
    same(body.primary_email.as_deref(), user.primary_email.as_deref())
        && same(body.org_unit_path.as_deref(), user.org_unit_path.as_deref())
        && body.suspended.is_none_or(|s| user.suspended == Some(s))
}

/// The depth of an org unit path (parents are created before their children).
fn depth(path: &str) -> usize {
    path.matches('/').count()
}

/// The state of a user in a few words, for the audit.
pub fn summary(user: &User) -> String {
    format!(
        "{} id {} in {}{}",
        user.primary_email.as_deref().unwrap_or("?"),
        user.id.as_deref().unwrap_or("?"),
        user.org_unit_path.as_deref().unwrap_or("?"),
        if user.suspended == Some(true) {
            ", suspended"
        } else {
            ", active"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::google::errors::tests::api;

    fn failure(error: CallError) -> CallFailure {
        CallFailure { error, attempts: 3 }
    }

    #[test]
    fn answers_are_judged_by_what_they_mean() {
        let lost = failure(CallError::NoAnswer("connection closed".into()));
        assert!(matches!(judge(&lost, false), Answer::Unknown(_)));
        let down = failure(CallError::Unreachable("refused".into()));
        assert!(matches!(judge(&down, false), Answer::Stop(_)));
        let token = failure(CallError::Token("invalid_grant".into()));
        assert!(matches!(judge(&token, false), Answer::Stop(_)));
        let not_found = failure(api(404, "notFound", "Resource Not Found: userKey"));
        assert!(matches!(judge(&not_found, false), Answer::Failed(_)));
        assert!(
            matches!(judge(&not_found, true), Answer::Later { .. }),
            "a user created minutes ago is retried later, not quarantined"
        );
        let conflict = failure(api(409, "duplicate", "Entity already exists."));
        assert!(matches!(judge(&conflict, true), Answer::Later { .. }));
        assert!(matches!(judge(&conflict, false), Answer::Failed(_)));
        let settling = failure(api(
            412,
            "conditionNotMet",
            "User creation is not complete.",
        ));
        assert!(matches!(judge(&settling, false), Answer::Later { .. }));
        let quota = failure(api(403, "userRateLimitExceeded", "Rate limit"));
        assert!(matches!(judge(&quota, false), Answer::Later { .. }));
        let backend = failure(api(503, "backendError", "Backend Error"));
        assert!(matches!(judge(&backend, false), Answer::Later { .. }));
        let forbidden = failure(api(
            403,
            "forbidden",
            "Not Authorized to access this resource/api",
        ));
        assert!(
            matches!(judge(&forbidden, false), Answer::Stop(why) if why.contains("belajar-sync check")),
            "our admin may not write: stop, do not quarantine the account"
        );
        assert!(
            matches!(judge(&forbidden, true), Answer::Later { .. }),
            "Google's 403 about a user created minutes ago is its settling"
        );
        let refused = failure(api(401, "authError", "Invalid Credentials"));
        assert!(matches!(judge(&refused, false), Answer::Stop(_)));
        let garbage = failure(CallError::Unreadable("expected value at line 1".into()));
        assert!(
            matches!(judge(&garbage, false), Answer::Unknown(_)),
            "an answer that cannot be read may be a write that was applied"
        );
        let bad = failure(api(400, "invalid", "Invalid Input: primary_user_email"));
        assert!(matches!(judge(&bad, true), Answer::Failed(_)));
        let no_org_unit = failure(api(400, "invalid", "Invalid Input: INVALID_OU_ID"));
        assert!(matches!(judge(&no_org_unit, false), Answer::NoOrgUnit(_)));
    }

    #[test]
    fn a_read_back_counts_only_what_the_write_meant() {
        let body = User {
            primary_email: Some("budi@admin.sd.belajar.id".into()),
            ..User::default()
        };
        let mut user = User {
            primary_email: Some("Budi@admin.sd.belajar.id".into()),
            org_unit_path: Some("/x".into()),
            ..User::default()
        };
        assert!(applied(&body, &user));
        user.primary_email = Some("budi@guru.sd.belajar.id".into());
        assert!(!applied(&body, &user));
    }
}
