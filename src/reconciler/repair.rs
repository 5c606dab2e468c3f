//! The helpdesk's repair of one account, now, whatever the schedule: read the Google user
//! fresh (by link, by address, by the users known to carry the marker), say what is
//! wrong, send the fix in the lane a person waits in, and read it back. `suspend` and
//! `reinstate` change the account here, then repair it the same way.

use crate::audit::{self, HeldList};
use crate::config::Config;
use crate::directory::model::{Account, DesiredState};
use crate::executor::{DrainError, Executor, summary};
use crate::google::types::User;
use crate::google::{CallFailure, DirectoryClient};
use crate::journal::Lane;
use crate::journal::{missing_org_units, org_unit_action, queue};
use crate::planner::{self, ActionKind, Asker, Context, Decision, Outcome, Seen, marked_key};
use crate::remote;
use crate::store::{Store, StoreError};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;
use std::collections::{BTreeSet, HashSet};

/// Why a repair could not be carried out (the account is unchanged in Google).
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read the account's Google user: {0}")]
    Observe(CallFailure),
    #[error(transparent)]
    Drain(#[from] DrainError),
}

/// What a repair saw, found wrong, sent and got back: what the helpdesk reads.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub account: String,
    pub email: String,
    pub observed: Vec<String>,
    pub problems: Vec<String>,
    pub sent: Vec<String>,
    pub answers: Vec<String>,
    pub after: Vec<String>,
    /// Healthy afterwards: Google matches the directory.
    pub healthy: bool,
    /// When not healthy: what a person must do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_do: Option<String>,
    /// When the account retires: the day it is suspended, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retires: Option<String>,
    /// What was sent, by kind and the Google fields written (for words other than these).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fixes: Vec<Fix>,
    /// The account's Google user is suspended (as read before the repair, and again
    /// after it when something was sent).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suspended_in_google: bool,
}

/// One call a repair sent.
#[derive(Debug, Clone, Serialize)]
pub struct Fix {
    pub kind: ActionKind,
    pub fields: Vec<String>,
}

/// Repairs one account now, as `actor` asked: a person (the helpdesk, an operator), or
/// the account's holder on the Cek Akun page (`asker`: what an administrator did in Google
/// then stays).
pub async fn resync(
    store: &Store,
    client: &DirectoryClient,
    config: &Config,
    account: &Account,
    today: Date,
    (actor, asker): (&str, Asker),
) -> Result<Report, RepairError> {
    let subject = account.key().to_string();
    let mut report = Report {
        account: subject.clone(),
        email: account.email.clone(),
        ..Report::default()
    };
    let started = Timestamp::now();
    let seen = observe(store, client, account, &mut report.observed).await?;
    report.suspended_in_google = seen.marked.iter().any(|u| u.suspended == Some(true));
    let account = &observe_licence(store, client, config, account, &mut report.observed).await?;
    let ctx = Context::new(config, today, asker);
    let decision = planner::plan(account, &seen, &ctx);
    let kind = match &decision.outcome {
        Outcome::Act(action) => Some(action.kind),
        _ => None,
    };
    let undeleting = kind == Some(ActionKind::Undelete);
    report.problems = decision.problems.clone();

    // A person asked: what was held is tried again.
    let mut subjects: HashSet<String> = HashSet::from([subject.clone()]);
    let asked = Asked {
        store,
        account,
        started,
        actor,
    };
    if !asked.queue(decision, &mut report, &mut subjects)? {
        return Ok(report);
    }

    let executor = Executor::new(store, client, config, Some(1), None);
    let drained = executor.drain(Some(&subjects)).await?;
    report.answers = audit::history(store, &subject)?
        .into_iter()
        .filter(|e| e.at >= started && matches!(e.what.as_str(), "answered" | "failed" | "retry"))
        .map(|e| format!("{}: {}", e.what, e.detail))
        .collect();

    // Read back: the state after, as Google has it now.
    let account = store
        .account(&account.key())?
        .unwrap_or_else(|| account.clone());
    let seen = observe(store, client, &account, &mut report.after).await?;
    report.suspended_in_google = seen.marked.iter().any(|u| u.suspended == Some(true));
    let after = planner::plan(&account, &seen, &ctx);
    let next = match &after.outcome {
        Outcome::Act(action) => Some(action.kind),
        _ => None,
    };
    // Google could no longer restore the user (the history says so): a new one now. Or
    // the user is in step and only its licence is left (an adopted user): assigned now.
    let follow_up = (undeleting && next == Some(ActionKind::Create))
        || (kind != Some(ActionKind::Licence) && next == Some(ActionKind::Licence));
    if follow_up {
        let again = Box::pin(resync(
            store,
            client,
            config,
            &account,
            today,
            (actor, asker),
        ))
        .await?;
        report.sent.extend(again.sent);
        report.fixes.extend(again.fixes);
        report.suspended_in_google = again.suspended_in_google;
        report.answers.extend(again.answers);
        report.after = again.after;
        report.healthy = again.healthy;
        report.to_do = again.to_do;
        return Ok(report);
    }
    report.judge(store, after.outcome, &drained)?;
    Ok(report)
}

/// A person's request to repair one account.
struct Asked<'a> {
    store: &'a Store,
    account: &'a Account,
    started: Timestamp,
    actor: &'a str,
}

impl Asked<'_> {
    /// Releases what was held, records the request, the link and what `decision` calls
    /// for (the org units it needs first); whether there is anything to send (a conflict
    /// is held and reported instead). The changes hold the write lease, let go before
    /// Google is called.
    fn queue(
        &self,
        decision: Decision,
        report: &mut Report,
        subjects: &mut HashSet<String>,
    ) -> Result<bool, RepairError> {
        let (store, started) = (self.store, self.started);
        let subject = report.account.clone();
        let mut changes = store.changes(false);
        audit::release(&mut changes, HeldList::Quarantine, &subject);
        audit::release(&mut changes, HeldList::Conflicts, &subject);
        let line = format!(
            "asked by {}; observed: {}",
            self.actor,
            report.observed.join("; ")
        );
        audit::log(&mut changes, &subject, started, "resync", line)?;
        if let Some(link) = &decision.link
            && !matches!(decision.outcome, Outcome::Conflict(_))
            && let Some(stored) = changes.account(&self.account.key())?
        {
            let mut relinked = stored.clone();
            relinked.google = Some(link.clone());
            changes.put_account(Some(&stored), &relinked)?;
            report
                .sent
                .push(format!("link recorded here: Google user {}", link.id));
        }
        match decision.outcome {
            Outcome::InStep => {}
            Outcome::Conflict(reason) => {
                audit::hold(
                    &mut changes,
                    HeldList::Conflicts,
                    &subject,
                    started,
                    &reason,
                );
                audit::log(&mut changes, &subject, started, "conflict", reason.clone())?;
                changes.commit()?;
                report.to_do = Some(reason);
                return Ok(false);
            }
            Outcome::Act(action) => {
                if let Some(path) = &action.body.org_unit_path {
                    let known = known_prefixes(store, path)?;
                    queue_org_units(&mut changes, path, &known, started, subjects)?;
                }
                report.sent.push(format!(
                    "{} ({}): {}",
                    action.kind.as_str(),
                    action.fields.join(", "),
                    action.reason
                ));
                report.fixes.push(Fix {
                    kind: action.kind,
                    fields: action.fields.clone(),
                });
                queue(&mut changes, Lane::Person, &subject, *action, started)?;
            }
        }
        changes.commit()?;
        Ok(true)
    }
}

impl Report {
    /// What the plan after the repair says: healthy, a conflict, waiting for the daemon,
    /// or failed (its quarantine's reason).
    fn judge(
        &mut self,
        store: &Store,
        after: Outcome,
        drained: &crate::executor::Drained,
    ) -> Result<(), RepairError> {
        match after {
            Outcome::InStep => self.healthy = true,
            Outcome::Conflict(reason) => self.to_do = Some(reason),
            Outcome::Act(_) if !drained.waits.is_empty() => {
                let waits: Vec<String> = drained
                    .waits
                    .iter()
                    .map(|((why, action), n)| why.describe(action, *n))
                    .collect();
                self.to_do = Some(format!(
                    "{}; the daemon finishes the repair, run resync again to see it",
                    waits.join("; ")
                ))
            }
            Outcome::Act(action) => {
                let held = audit::held(&store.changes(true), HeldList::Quarantine, &self.account)?;
                self.to_do = Some(match held {
                    Some(held) => format!("the repair failed: {}", held.reason),
                    None => format!("still to do: {}", action.reason),
                })
            }
        }
        Ok(())
    }
}

/// Changes the account to suspended here (terms violation) with `reason`, then repairs it.
pub async fn suspend(
    store: &Store,
    client: &DirectoryClient,
    config: &Config,
    account: &Account,
    reason: &str,
    today: Date,
    actor: &str,
) -> Result<Report, RepairError> {
    let state = DesiredState::Suspended {
        reason: reason.to_owned(),
        since: today,
    };
    let line = format!("suspended here by {actor}: {reason}");
    let account = set_state(store, account, state, line)?;
    resync(
        store,
        client,
        config,
        &account,
        today,
        (actor, Asker::Person),
    )
    .await
}

/// Makes the account active again here, then repairs it (lifting the suspension in Google).
pub async fn reinstate(
    store: &Store,
    client: &DirectoryClient,
    config: &Config,
    account: &Account,
    today: Date,
    actor: &str,
) -> Result<Report, RepairError> {
    let line = format!("reinstated here by {actor}");
    let account = set_state(store, account, DesiredState::Active, line)?;
    resync(
        store,
        client,
        config,
        &account,
        today,
        (actor, Asker::Person),
    )
    .await
}

fn set_state(
    store: &Store,
    account: &Account,
    state: DesiredState,
    line: String,
) -> Result<Account, StoreError> {
    let mut changes = store.changes(false);
    let stored = changes
        .account(&account.key())?
        .unwrap_or_else(|| account.clone());
    let mut changed = stored.clone();
    changed.state = state;
    changes.put_account(Some(&stored), &changed)?;
    audit::log(
        &mut changes,
        &account.key().to_string(),
        Timestamp::now(),
        "local",
        line,
    )?;
    changes.commit()?;
    Ok(changed)
}

/// Reads the account's Google users fresh: the linked one, the one at its address and at
/// its former addresses, and any other user known to carry its marker. Records what it
/// reads; describes it in `lines`.
/// When licences are managed and the account is active and linked: whether its user
/// holds the licence of its role, asked of Google now (`licenseAssignments.get`); the
/// account as it is then, its link corrected in the store when it said otherwise.
async fn observe_licence(
    store: &Store,
    client: &DirectoryClient,
    config: &Config,
    account: &Account,
    lines: &mut Vec<String>,
) -> Result<Account, RepairError> {
    let licences = &config.licences;
    let Some(link) = account.google.as_ref().filter(|_| licences.enabled) else {
        return Ok(account.clone());
    };
    if account.state != crate::directory::model::DesiredState::Active {
        return Ok(account.clone());
    }
    let sku = licences.sku_for(account.role.group());
    let held = client
        .licence_held(sku, &account.email)
        .await
        .map_err(RepairError::Observe)?;
    lines.push(format!(
        "licence {sku}: {}",
        if held { "held" } else { "not held" }
    ));
    let held = held.then(|| sku.to_owned());
    if held == link.licence {
        return Ok(account.clone());
    }
    let mut changes = store.changes(false);
    let Some(old) = changes.account(&account.key())? else {
        return Ok(account.clone());
    };
    let mut corrected = old.clone();
    if let Some(link) = corrected.google.as_mut() {
        link.licence = held;
    }
    changes.put_account(Some(&old), &corrected)?;
    changes.commit()?;
    Ok(corrected)
}

async fn observe(
    store: &Store,
    client: &DirectoryClient,
    account: &Account,
    lines: &mut Vec<String>,
) -> Result<Seen, RepairError> {
    let key = account.key();
    let mut keys: Vec<(String, String)> = Vec::new();
    if let Some(link) = &account.google {
        keys.push((format!("linked user {}", link.id), link.id.clone()));
    }
    keys.push((format!("address {}", account.email), account.email.clone()));
    for former in &account.former_emails {
        keys.push((format!("former address {former}"), former.clone()));
    }
    for observed in remote::marked_users(store, &key)? {
        if let Some(id) = observed.user.id {
            keys.push((format!("user {id} last seen with the marker"), id));
        }
    }
    let mut found: Vec<User> = Vec::new();
    let mut fetched: HashSet<String> = HashSet::new();
    for (what, user_key) in keys {
        if !fetched.insert(user_key.clone()) {
            continue;
        }
        match client.get_user(&user_key).await {
            Ok(called) => {
                let user = called.value;
                lines.push(format!("{what}: {}", summary(&user)));
                if !found.iter().any(|f| f.id == user.id) {
                    found.push(user);
                }
            }
            Err(f) if f.status() == Some(404) => lines.push(format!("{what}: not in Google")),
            Err(f) => return Err(RepairError::Observe(f)),
        }
    }
    let now = Timestamp::now();
    let mut changes = store.changes(false);
    for stale in remote::marked_users(store, &key)? {
        let id = stale.user.id.unwrap_or_default();
        let still = found
            .iter()
            .any(|u| u.id.as_deref() == Some(id.as_str()) && marked_key(u).as_ref() == Some(&key));
        if !still {
            remote::forget_managed(&mut changes, &key, &id);
        }
    }
    let mut seen = Seen {
        deleted: remote::deleted_users(store, &key)?
            .into_iter()
            .map(|o| o.user)
            .collect(),
        ..Seen::default()
    };
    // The linked user is nowhere: it may be deleted and still restorable (a scan that
    // would have listed it may not have run since).
    if let Some(link) = &account.google
        && found.is_empty()
        && !seen
            .deleted
            .iter()
            .any(|u| u.id.as_deref() == Some(link.id.as_str()))
    {
        seen.deleted.push(User {
            id: Some(link.id.clone()),
            ..User::default()
        });
    }
    for user in found {
        remote::record(&mut changes, &user, now)?;
        if marked_key(&user).as_ref() == Some(&key) {
            seen.marked.push(user);
        } else if seen.at_address.is_none()
            && (holds_address(&user, &account.email)
                || account
                    .google
                    .as_ref()
                    .is_some_and(|l| user.id.as_deref() == Some(l.id.as_str())))
        {
            seen.at_address = Some(user);
        }
    }
    changes.commit()?;
    Ok(seen)
}

fn holds_address(user: &User, email: &str) -> bool {
    user.primary_email
        .iter()
        .chain(user.aliases.iter().flatten())
        .any(|a| a.eq_ignore_ascii_case(email))
}

/// Queues the creation of the org units on the way to `path` not in `known`, parents
/// first, in the org-unit lane; adds them to the `subjects` to send.
fn queue_org_units(
    changes: &mut crate::store::Changes,
    path: &str,
    known: &BTreeSet<String>,
    now: Timestamp,
    subjects: &mut HashSet<String>,
) -> Result<(), StoreError> {
    for missing in missing_org_units(path, known) {
        queue(
            changes,
            Lane::OrgUnit,
            &missing,
            org_unit_action(&missing),
            now,
        )?;
        subjects.insert(missing);
    }
    Ok(())
}

/// The org units on the way to `path` known to exist.
fn known_prefixes(store: &Store, path: &str) -> Result<BTreeSet<String>, StoreError> {
    let mut known = BTreeSet::new();
    let mut at = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        if remote::org_unit_known(store, &at)? {
            known.insert(at.clone());
        }
    }
    Ok(known)
}

/// Repairs one org unit now (one held in quarantine, or missing in Google): releases it,
/// reads it in Google, and creates it (with any missing parent) when Google lacks it.
pub async fn resync_org_unit(
    store: &Store,
    client: &DirectoryClient,
    config: &Config,
    path: &str,
    actor: &str,
) -> Result<Report, RepairError> {
    let mut report = Report {
        account: path.to_owned(),
        ..Report::default()
    };
    let started = Timestamp::now();
    {
        let mut changes = store.changes(false);
        if let Some(held) = audit::held(&changes, HeldList::Quarantine, path)? {
            report
                .problems
                .push(format!("held in quarantine: {}", held.reason));
        }
        audit::release(&mut changes, HeldList::Quarantine, path);
        audit::log(
            &mut changes,
            path,
            started,
            "resync",
            format!("asked by {actor}"),
        )?;
        changes.commit()?;
    }
    if read_org_unit(store, client, path, &mut report.observed).await? {
        report.healthy = true;
        return Ok(report);
    }
    report.problems.push("Google does not have it".into());
    let mut subjects = HashSet::new();
    {
        let mut changes = store.changes(false);
        // Every level: those that exist answer 409, which is what is wanted.
        queue_org_units(&mut changes, path, &BTreeSet::new(), started, &mut subjects)?;
        changes.commit()?;
    }
    report
        .sent
        .push(format!("create_org_unit of {path} and its parents"));
    let executor = Executor::new(store, client, config, Some(1), None);
    executor.drain(Some(&subjects)).await?;
    report.healthy = read_org_unit(store, client, path, &mut report.after).await?;
    if !report.healthy {
        report.to_do = Some(
            match audit::held(&store.changes(true), HeldList::Quarantine, path)? {
                Some(held) => format!("Google did not create it: {}", held.reason),
                None => "Google did not create it yet: run resync again".into(),
            },
        );
    }
    Ok(report)
}

/// Reads the org unit `path` in Google and records what was found; whether it exists.
async fn read_org_unit(
    store: &Store,
    client: &DirectoryClient,
    path: &str,
    lines: &mut Vec<String>,
) -> Result<bool, RepairError> {
    let found = client.get_org_unit(path).await;
    let mut changes = store.changes(false);
    let exists = match found {
        Ok(_) => {
            remote::record_org_unit(&mut changes, path, Timestamp::now());
            lines.push(format!("org unit {path}: in Google"));
            true
        }
        Err(f) if f.status() == Some(404) => {
            remote::forget_org_unit(&mut changes, path);
            lines.push(format!("org unit {path}: not in Google"));
            false
        }
        Err(f) => return Err(RepairError::Observe(f)),
    };
    changes.commit()?;
    Ok(exists)
}
