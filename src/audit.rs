//! What people need to see later: each account's history (append-only), the accounts held
//! for a person (quarantine after a permanent failure, conflicts a machine must not
//! decide), and the mass-suspension guard.
//!
//! The owner of two keyspaces. `history`:
//! - `h:{subject}:{seq}` → an [`Event`] of the subject's history
//! - `t:{subject}` → [`Notices`]: when a retiring account's holder is to be told
//!
//! and `held`:
//! - `q:{subject}` → [`Held`]: quarantined after a permanent failure
//! - `x:{subject}` → [`Held`]: a conflict for a person to resolve
//! - `g:held` → [`GuardHeld`]: suspensions held back by the guard
//! - `g:retire:{npsn}` → [`RetireHeld`]: a school whose retirements a snapshot held back

use crate::directory::model::AccountKey;
use crate::store::{Changes, Keyspace, Store, StoreError};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

const HISTORY: Keyspace = Keyspace::new("history");
const HELD: Keyspace = Keyspace::new("held");

const GUARD_KEY: &[u8] = b"g:held";

/// Days before the suspension of a retiring account on which its holder is told.
pub const NOTICE_DAYS: [i64; 2] = [30, 3];

/// One line of an account's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: Timestamp,
    /// `observed`, `decided`, `sent`, `answered`, `failed`, `conflict`, `local`,
    /// `password`, `identity` (a wrong answer to an identity check).
    pub what: String,
    pub detail: String,
}

/// Why an account is held for a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    pub subject: String,
    pub at: Timestamp,
    pub reason: String,
    /// The org unit Google lacks that the account was held for: released once a scan
    /// finds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_unit: Option<String>,
}

/// Which list of held accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldList {
    Quarantine,
    Conflicts,
}

impl HeldList {
    fn prefix(self) -> &'static str {
        match self {
            HeldList::Quarantine => "q:",
            HeldList::Conflicts => "x:",
        }
    }

    fn key(self, subject: &str) -> Vec<u8> {
        format!("{}{subject}", self.prefix()).into_bytes()
    }
}

/// The guard's verdict on a run, kept until an operator releases it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardHeld {
    pub at: Timestamp,
    /// Suspensions the run would have made.
    pub suspensions: u64,
    /// Why that is too many, in words.
    pub reason: String,
}

/// Appends `what` to the history of `subject`.
pub fn log(
    changes: &mut Changes,
    subject: &str,
    at: Timestamp,
    what: &str,
    detail: impl Into<String>,
) -> Result<(), StoreError> {
    Line::new(at, what, detail).log(changes, subject);
    Ok(())
}

/// A history line to append to the histories of many subjects (an import's "created by the
/// import of …"), made once.
pub struct Line(Vec<u8>);

impl Line {
    pub fn new(at: Timestamp, what: &str, detail: impl Into<String>) -> Line {
        let event = Event {
            at,
            what: what.to_owned(),
            detail: detail.into(),
        };
        Line(serde_json::to_vec(&event).expect("events serialise"))
    }

    /// Appends the line to the history of `subject`.
    pub fn log(&self, changes: &mut Changes, subject: &str) {
        let seq = changes.next_seq();
        changes.put(
            HISTORY,
            format!("h:{subject}:{seq:020}").into_bytes(),
            self.0.clone(),
        );
    }
}

/// The history of `subject`, oldest first.
pub fn history(store: &Store, subject: &str) -> Result<Vec<Event>, StoreError> {
    let prefix = format!("h:{subject}:");
    store
        .scan_json::<Event>(HISTORY, prefix.as_bytes())
        .map(|e| e.map(|(_, event)| event))
        .collect()
}

/// Every account's history events as (account key, when), in account key order (an
/// account's events one after the other, oldest first). For reports that walk every
/// account beside it.
pub fn account_event_times(
    store: &Store,
) -> impl Iterator<Item = Result<(String, Timestamp), StoreError>> + '_ {
    // Org units' subjects start with '/', which sorts before every account key's letter.
    store
        .scan_json_from::<Event>(HISTORY, b"h:", b"h:a".to_vec())
        .map(|e| {
            e.map(|(key, event)| {
                let key = String::from_utf8_lossy(&key[2..]);
                let subject = key.rsplit_once(':').map_or(&*key, |(subject, _)| subject);
                (subject.to_owned(), event.at)
            })
        })
}

/// Holds `subject` on `list` with `reason`.
pub fn hold(changes: &mut Changes, list: HeldList, subject: &str, at: Timestamp, reason: &str) {
    hold_for(changes, list, subject, at, reason, None);
}

/// Holds `subject` on `list` with `reason`, until a scan finds `org_unit` when given.
pub fn hold_for(
    changes: &mut Changes,
    list: HeldList,
    subject: &str,
    at: Timestamp,
    reason: &str,
    org_unit: Option<&str>,
) {
    let held = Held {
        subject: subject.to_owned(),
        at,
        reason: reason.to_owned(),
        org_unit: org_unit.map(str::to_owned),
    };
    changes.put_json(HELD, list.key(subject), &held);
}

/// Takes `subject` off `list` (it converged, or a person asked to try again).
pub fn release(changes: &mut Changes, list: HeldList, subject: &str) {
    changes.delete(HELD, list.key(subject));
}

/// Why `subject` is held on `list`, if it is.
pub fn held(changes: &Changes, list: HeldList, subject: &str) -> Result<Option<Held>, StoreError> {
    changes.get_json(HELD, &list.key(subject))
}

/// Every subject held on `list`, in subject order.
pub fn all_held(
    store: &Store,
    list: HeldList,
) -> impl Iterator<Item = Result<Held, StoreError>> + '_ {
    store
        .scan_json::<Held>(HELD, list.prefix().as_bytes())
        .map(|e| e.map(|(_, held)| held))
}

pub fn guard(store: &Store) -> Result<Option<GuardHeld>, StoreError> {
    store.get_json(HELD, GUARD_KEY)
}

pub fn set_guard(changes: &mut Changes, held: Option<&GuardHeld>) {
    match held {
        Some(held) => changes.put_json(HELD, GUARD_KEY.to_vec(), held),
        None => changes.delete(HELD, GUARD_KEY.to_vec()),
    }
}

/// The notices of a retiring account: the day it is suspended and the days its holder is
/// told (30 and 3 days before), from which `notices` sends them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notices {
    pub email: String,
    pub suspend_on: jiff::civil::Date,
    pub notify_on: Vec<jiff::civil::Date>,
}

impl Notices {
    pub fn new(email: &str, suspend_on: jiff::civil::Date) -> Notices {
        Notices {
            email: email.to_owned(),
            suspend_on,
            notify_on: NOTICE_DAYS
                .iter()
                .map(|days| suspend_on.saturating_sub(jiff::Span::new().days(*days)))
                .collect(),
        }
    }
}

fn notices_key(subject: &str) -> Vec<u8> {
    format!("t:{subject}").into_bytes()
}

/// Records (or, with `None`, removes) the notices of `subject`.
pub fn set_notices(changes: &mut Changes, subject: &str, notices: Option<&Notices>) {
    match notices {
        Some(n) => changes.put_json(HISTORY, notices_key(subject), n),
        None => changes.delete(HISTORY, notices_key(subject)),
    }
}

/// The notices of `subject`, if it is retiring.
pub fn notices(store: &Store, subject: &str) -> Result<Option<Notices>, StoreError> {
    store.get_json(HISTORY, &notices_key(subject))
}

/// Every recorded notice schedule, by account.
pub fn all_notices(
    store: &Store,
) -> impl Iterator<Item = Result<(String, Notices), StoreError>> + '_ {
    store
        .scan_json::<Notices>(HISTORY, b"t:")
        .map(|e| e.map(|(key, n)| (String::from_utf8_lossy(&key[2..]).into_owned(), n)))
}

/// A school whose retirements the last snapshot of it held back: it left out too much of
/// the school to be believed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetireHeld {
    pub npsn: String,
    pub at: Timestamp,
    /// The export that held them.
    pub file: String,
    pub retiring: u64,
    pub active: u64,
}

fn retire_key(npsn: &str) -> Vec<u8> {
    format!("g:retire:{npsn}").into_bytes()
}

/// Records (or, with `None`, clears) the held retirements of school `npsn`.
pub fn set_retire_held(changes: &mut Changes, npsn: &str, held: Option<&RetireHeld>) {
    match held {
        Some(held) => changes.put_json(HELD, retire_key(npsn), held),
        None => changes.delete(HELD, retire_key(npsn)),
    }
}

/// Every school whose retirements are held, by NPSN.
pub fn retirements_held(
    store: &Store,
) -> impl Iterator<Item = Result<RetireHeld, StoreError>> + '_ {
    store
        .scan_json::<RetireHeld>(HELD, b"g:retire:")
        .map(|e| e.map(|(_, held)| held))
}

/// The accounts held on `list` whose key lies in `range`, with why (see
/// [`Store::range_json`]).
pub fn held_in_range(
    store: &Store,
    list: HeldList,
    range: (Option<&str>, Option<&str>),
) -> Result<HashMap<String, String>, StoreError> {
    Ok(store
        .range_json::<Held>(HELD, list.prefix(), range, false, AccountKey::names_account)?
        .into_iter()
        .map(|(k, held)| (k, held.reason))
        .collect())
}

/// The notices of the accounts whose key lies in `range`.
pub fn notices_in_range(
    store: &Store,
    range: (Option<&str>, Option<&str>),
) -> Result<HashMap<String, Notices>, StoreError> {
    Ok(store
        .range_json::<Notices>(HISTORY, "t:", range, false, AccountKey::names_account)?
        .into_iter()
        .collect())
}
