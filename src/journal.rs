//! The journal: the outbox of calls to Google. Every action is written here, in the same
//! commit as the decision, before it is sent; an entry leaves only in the commit that
//! applies its answer. After a crash the outbox is the truth of what may have happened.
//!
//! The owner of the `journal` keyspace:
//! - `j:{lane}:{seq}` → an [`Entry`]; lanes sort org units first, then the work a person
//!   waits for, then bulk work
//! - `p:{subject}` → the `j:` key of the subject's entry (one at a time per account or
//!   org unit)

use crate::directory::model::AccountKey;
use crate::google::types::User;
use crate::planner::{Action, ActionKind};
use crate::store::{Changes, Keyspace, Store, StoreError};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

const JOURNAL: Keyspace = Keyspace::new("journal");

/// Which queue an entry waits in. Org units go first (accounts need them), then what a
/// person waits for (`resync`, `suspend`, `reinstate`), then bulk work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    OrgUnit,
    Person,
    Bulk,
}

impl Lane {
    fn digit(self) -> u8 {
        match self {
            Lane::OrgUnit => 0,
            Lane::Person => 1,
            Lane::Bulk => 2,
        }
    }
}

/// One call waiting to be made, or made without a known outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub lane: Lane,
    /// The account key, or the org unit path.
    pub subject: String,
    pub action: Action,
    /// Set when the call is about to be sent; found set after a crash, the outcome is
    /// unknown (a create is then checked against Google before it is sent again).
    #[serde(default)]
    pub in_flight: bool,
    #[serde(default)]
    pub attempts: u32,
    /// Not to be sent before this (Google asked for time: a user still being created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub queued: Timestamp,
}

impl Entry {
    pub fn key(&self) -> Vec<u8> {
        entry_key(self.lane, self.seq)
    }
}

fn entry_key(lane: Lane, seq: u64) -> Vec<u8> {
    format!("j:{}:{seq:020}", lane.digit()).into_bytes()
}

fn pending_key(subject: &str) -> Vec<u8> {
    format!("p:{subject}").into_bytes()
}

/// The entry waiting for `subject`, if any.
pub fn pending_for(changes: &Changes, subject: &str) -> Result<Option<Entry>, StoreError> {
    let Some(key) = changes.get_json::<String>(JOURNAL, &pending_key(subject))? else {
        return Ok(None);
    };
    changes.get_json(JOURNAL, key.as_bytes())
}

/// Queues `action` for `subject` unless an entry for it is already waiting; a person's
/// action replaces a waiting bulk one (unless it is in flight). Returns the entry queued.
pub fn enqueue(
    changes: &mut Changes,
    lane: Lane,
    subject: &str,
    action: Action,
    now: Timestamp,
) -> Result<Option<Entry>, StoreError> {
    if let Some(waiting) = pending_for(changes, subject)? {
        if waiting.in_flight || waiting.lane <= lane {
            return Ok(None);
        }
        changes.delete(JOURNAL, waiting.key());
    }
    let entry = Entry {
        seq: changes.next_seq(),
        lane,
        subject: subject.to_owned(),
        action,
        in_flight: false,
        attempts: 0,
        not_before: None,
        last_error: None,
        queued: now,
    };
    save(changes, &entry);
    Ok(Some(entry))
}

/// Writes `entry` back (marked in flight, or waiting again).
pub fn save(changes: &mut Changes, entry: &Entry) {
    let key = entry.key();
    changes.put_json(
        JOURNAL,
        pending_key(&entry.subject),
        &String::from_utf8_lossy(&key).into_owned(),
    );
    changes.put_json(JOURNAL, key, entry);
}

/// Removes `entry`: its answer is applied in the same commit.
pub fn finish(changes: &mut Changes, entry: &Entry) {
    changes.delete(JOURNAL, entry.key());
    changes.delete(JOURNAL, pending_key(&entry.subject));
}

/// Writes `action` to the journal with its audit line.
pub fn queue(
    changes: &mut Changes,
    lane: Lane,
    subject: &str,
    action: Action,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let line = format!(
        "{} ({}): {}",
        action.kind.as_str(),
        action.fields.join(", "),
        action.reason
    );
    let queued = enqueue(changes, lane, subject, action, now)?.is_some();
    if queued {
        crate::audit::log(changes, subject, now, "decided", line)?;
    }
    Ok(queued)
}

/// The org units on the way to `path` that are not known to exist, parents first.
pub fn missing_org_units(path: &str, known: &BTreeSet<String>) -> Vec<String> {
    let mut missing = Vec::new();
    if known.contains(path) {
        return missing; // and so are its parents: Google has no org unit without its parent
    }
    let mut at = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        if !known.contains(&at) {
            missing.push(at.clone());
        }
    }
    missing
}

/// The journal action that creates the org unit `path`.
pub fn org_unit_action(path: &str) -> Action {
    Action {
        kind: ActionKind::CreateOrgUnit,
        target: Some(path.to_owned()),
        email: String::new(),
        body: User::default(),
        fields: Vec::new(),
        reason: "needed by accounts placed in it".into(),
        sku: None,
    }
}

/// The entries, in the order they are to be sent.
pub fn entries(store: &Store) -> impl Iterator<Item = Result<Entry, StoreError>> + '_ {
    store
        .scan_json::<Entry>(JOURNAL, b"j:")
        .map(|entry| entry.map(|(_, e)| e))
}

/// How many entries wait, and how many of them were in flight when last seen.
pub fn depth(store: &Store) -> Result<(u64, u64), StoreError> {
    census(store).map(|c| (c.depth, c.in_flight))
}

/// What the journal holds, counted in one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    pub depth: u64,
    pub in_flight: u64,
    /// Assignments waiting because Google has no licence of their SKU left, by SKU.
    pub licence_waits: std::collections::BTreeMap<String, u64>,
}

/// How an assignment waiting for a licence says so (its `last_error` starts with this,
/// then the SKU).
pub const NO_LICENCE: &str = "no licence of SKU";

/// Counts the journal's entries.
pub fn census(store: &Store) -> Result<Census, StoreError> {
    let mut census = Census::default();
    for entry in entries(store) {
        let entry = entry?;
        census.depth += 1;
        census.in_flight += u64::from(entry.in_flight);
        let waiting = matches!(entry.action.kind, ActionKind::Licence | ActionKind::Archive)
            && entry
                .last_error
                .as_deref()
                .is_some_and(|e| e.starts_with(NO_LICENCE));
        if let (true, Some(sku)) = (waiting, entry.action.sku) {
            *census.licence_waits.entry(sku).or_default() += 1;
        }
    }
    Ok(census)
}

/// The accounts with an entry waiting whose key lies in `range` (see
/// [`Store::range_json`]).
pub fn waiting_in_range(
    store: &Store,
    range: (Option<&str>, Option<&str>),
) -> Result<std::collections::HashSet<String>, StoreError> {
    Ok(store
        .range_json::<String>(JOURNAL, "p:", range, false, AccountKey::names_account)?
        .into_iter()
        .map(|(subject, _)| subject)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_units_are_created_parents_first_and_only_when_missing() {
        let known: BTreeSet<String> = ["/student".to_owned()].into();
        assert_eq!(
            missing_org_units("/student/sd/20100001", &known),
            ["/student/sd", "/student/sd/20100001"]
        );
        assert!(missing_org_units("/", &known).is_empty());
    }
}
