//! What was last observed of Google, kept in the store next to the directory so that one
//! commit can update an account and what is known of its user.
//!
//! The owner of the `remote` keyspace:
//! - `r:{account key}:{google id}` → a user carrying that account's marker (a second
//!   entry under one account key means two users claim it)
//! - `u:{address}` → a user without a valid marker, under its primary address and each
//!   alias (what adoption and conflicts are decided from)
//! - `d:{account key}:{google id}` → a deleted user carrying that account's marker,
//!   which Google may still restore (`users.undelete`)
//! - `o:{path}` → an org unit that exists
//! - `m:scan` → the last full scan ([`ScanRecord`])
//! - `m:scan:progress` → the scan under way, or cut short ([`ScanProgress`])
//! - `m:distrusted` → the last scan not believed, until one is ([`Distrusted`])
//! - `m:quota` → Google's quota as the limiter last learnt it (calls a minute)
//!
//! Every record carries the time it was observed as it is. A scan gathers what it lists
//! aside ([`sightings`]) and, once it has listed every domain and is believed, applies it:
//! records it found changed are written, those it did not find (users that are gone) are
//! removed.

use crate::access;
use crate::directory::model::{Account, AccountKey};
use crate::google::circuit::Outage;
use crate::google::types::User;
use crate::planner::{Seen, marked_key};
use crate::store::{Changes, Keyspace, Store, StoreError};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub mod sightings;

const REMOTE: Keyspace = Keyspace::new("remote");
const SCAN_KEY: &[u8] = b"m:scan";
const PROGRESS_KEY: &[u8] = b"m:scan:progress";
const QUOTA_KEY: &[u8] = b"m:quota";
const DISTRUSTED_KEY: &[u8] = b"m:distrusted";
const OUTAGE_KEY: &[u8] = b"m:outage";

/// One observed Google user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    pub user: User,
    /// When it was observed so (a scan that finds a user unchanged leaves its record, and
    /// this time, as they were).
    pub at: Timestamp,
}

/// The last believed full scan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanRecord {
    /// How many scans have been believed so far.
    pub id: u64,
    pub started: Option<Timestamp>,
    pub finished: Option<Timestamp>,
    /// Users listed in each domain.
    pub users: BTreeMap<String, u64>,
    /// Users listed in each part of the domains listed in parts (`domain/prefix`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parts: BTreeMap<String, u64>,
    /// Org units listed.
    pub org_units: u64,
}

impl ScanRecord {
    pub fn seconds(&self) -> Option<f64> {
        Some(self.finished?.duration_since(self.started?).as_secs_f64())
    }
}

/// The last believed scan (number 0, never finished, when none has run).
pub fn last_scan(store: &Store) -> Result<ScanRecord, StoreError> {
    Ok(store.get_json(REMOTE, SCAN_KEY)?.unwrap_or_default())
}

/// A scan under way: what it has listed so far, so that one cut short goes on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanProgress {
    /// The number the scan will have once believed.
    pub id: u64,
    pub started: Timestamp,
    /// The Google it lists: customer and API base. A scan cut short is taken up only
    /// against the same one.
    #[serde(default)]
    pub google: String,
    pub org_units_done: bool,
    pub org_units: u64,
    /// Users found in each part listed, by part name.
    pub done: BTreeMap<String, u64>,
}

/// The scan under way or cut short, if any.
pub fn scan_progress(store: &Store) -> Result<Option<ScanProgress>, StoreError> {
    store.get_json(REMOTE, PROGRESS_KEY)
}

/// Records (or, with `None`, ends) the scan under way.
pub fn set_scan_progress(changes: &mut Changes, progress: Option<&ScanProgress>) {
    match progress {
        Some(p) => changes.put_json(REMOTE, PROGRESS_KEY.to_vec(), p),
        None => changes.delete(REMOTE, PROGRESS_KEY.to_vec()),
    }
}

/// Records a believed scan (which ends any distrust).
pub fn set_last_scan(changes: &mut Changes, scan: &ScanRecord) {
    changes.put_json(REMOTE, SCAN_KEY.to_vec(), scan);
    changes.delete(REMOTE, DISTRUSTED_KEY.to_vec());
}

/// A scan that was read whole but not believed (it found far fewer users than the last):
/// kept until a scan is believed, for `status` and monitoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distrusted {
    pub at: Timestamp,
    pub reason: String,
}

pub fn set_distrusted(changes: &mut Changes, distrusted: &Distrusted) {
    changes.put_json(REMOTE, DISTRUSTED_KEY.to_vec(), distrusted);
}

/// The last scan not believed, if no scan was believed since.
pub fn distrusted(store: &Store) -> Result<Option<Distrusted>, StoreError> {
    store.get_json(REMOTE, DISTRUSTED_KEY)
}

/// Google as the last sync run by hand left it: unreachable since when and why (`None`:
/// it answered). What `status` says when no daemon runs to ask.
pub fn last_outage(store: &Store) -> Result<Option<Outage>, StoreError> {
    store.get_json(REMOTE, OUTAGE_KEY)
}

/// Records how a sync run by hand left Google (written only when that changed).
pub fn record_outage(store: &Store, outage: Option<&Outage>) -> Result<(), StoreError> {
    if last_outage(store)?.as_ref() == outage {
        return Ok(());
    }
    let mut changes = store.changes(false);
    match outage {
        Some(outage) => changes.put_json(REMOTE, OUTAGE_KEY.to_vec(), outage),
        None => changes.delete(REMOTE, OUTAGE_KEY.to_vec()),
    }
    changes.commit()
}

/// Google's quota as last learnt (calls a minute), kept across restarts.
pub fn learnt_quota(store: &Store) -> Result<Option<f64>, StoreError> {
    store.get_json(REMOTE, QUOTA_KEY)
}

pub fn set_learnt_quota(changes: &mut Changes, per_minute: f64) {
    changes.put_json(REMOTE, QUOTA_KEY.to_vec(), &per_minute);
}

fn managed_key(key: &AccountKey, id: &str) -> Vec<u8> {
    format!("r:{key}:{id}").into_bytes()
}

/// The account a `r:` key names.
fn managed_account(key: &[u8]) -> Option<AccountKey> {
    let rest = std::str::from_utf8(key.strip_prefix(b"r:")?).ok()?;
    AccountKey::parse(rest.rsplit_once(':')?.0)
}

fn address_key(address: &str) -> Vec<u8> {
    format!("u:{}", address.to_ascii_lowercase()).into_bytes()
}

fn org_unit_key(path: &str) -> Vec<u8> {
    format!("o:{path}").into_bytes()
}

/// Records `user` as observed at `at`. A user that now carries a marker is no longer
/// listed among the unmarked ones under its addresses; its last sign-in is kept in the
/// account's [`access`] record.
pub fn record(changes: &mut Changes, user: &User, at: Timestamp) -> Result<(), StoreError> {
    let id = user.id.clone().unwrap_or_default();
    let observed = Observed {
        user: user.clone(),
        at,
    };
    let addresses = addresses(user);
    match marked_key(user) {
        Some(key) => {
            for address in addresses {
                let held: Option<Observed> = changes.get_json(REMOTE, &address_key(address))?;
                if held.is_some_and(|h| h.user.id.as_deref() == Some(id.as_str())) {
                    changes.delete(REMOTE, address_key(address));
                }
            }
            changes.put_json(REMOTE, managed_key(&key, &id), &observed);
            if let Some(signed_in) = user.last_sign_in() {
                access::saw_sign_in(changes, &key, signed_in)?;
            }
        }
        None => {
            for address in addresses {
                changes.put_json(REMOTE, address_key(address), &observed);
            }
        }
    }
    Ok(())
}

/// The addresses of `user`: its primary, then its aliases.
fn addresses(user: &User) -> impl Iterator<Item = &String> {
    user.primary_email
        .iter()
        .chain(user.aliases.iter().flatten())
}

fn deleted_key(key: &AccountKey, id: &str) -> Vec<u8> {
    format!("d:{key}:{id}").into_bytes()
}

/// Forgets the deleted user `id` of `key` (restored, or Google can no longer restore it).
pub fn forget_deleted(changes: &mut Changes, key: &AccountKey, id: &str) {
    changes.delete(REMOTE, deleted_key(key, id));
}

/// The deleted users seen carrying the marker of `key`.
pub fn deleted_users(store: &Store, key: &AccountKey) -> Result<Vec<Observed>, StoreError> {
    let prefix = format!("d:{key}:");
    store
        .scan_json::<Observed>(REMOTE, prefix.as_bytes())
        .map(|entry| entry.map(|(_, observed)| observed))
        .collect()
}

/// Forgets that `key` is claimed by the user `id` (its marker was seen on another account
/// or the user is gone).
pub fn forget_managed(changes: &mut Changes, key: &AccountKey, id: &str) {
    changes.delete(REMOTE, managed_key(key, id));
}

/// Records that the org unit `path` exists, as observed at `at`.
pub fn record_org_unit(changes: &mut Changes, path: &str, at: Timestamp) {
    changes.put_json(REMOTE, org_unit_key(path), &at);
}

/// Forgets that Google has the org unit `path` (Google said it does not).
pub fn forget_org_unit(changes: &mut Changes, path: &str) {
    changes.delete(REMOTE, org_unit_key(path));
}

/// Whether the org unit `path` is known to exist.
pub fn org_unit_known(store: &Store, path: &str) -> Result<bool, StoreError> {
    Ok(path == "/"
        || store
            .get_json::<Timestamp>(REMOTE, &org_unit_key(path))?
            .is_some())
}

/// Every known org unit.
pub fn org_units(store: &Store) -> impl Iterator<Item = Result<String, StoreError>> + '_ {
    store
        .scan_json::<Timestamp>(REMOTE, b"o:")
        .map(|entry| entry.map(|(key, _)| String::from_utf8_lossy(&key[2..]).into_owned()))
}

/// The users carrying the marker of `key`.
pub fn marked_users(store: &Store, key: &AccountKey) -> Result<Vec<Observed>, StoreError> {
    let prefix = format!("r:{key}:");
    store
        .scan_json::<Observed>(REMOTE, prefix.as_bytes())
        .map(|entry| entry.map(|(_, observed)| observed))
        .collect()
}

/// The address of the one Google user carrying the marker of `key`, if one does (a lost
/// store made again: the account keeps the address it has in Google).
pub fn marked_address(store: &Store, key: &AccountKey) -> Result<Option<String>, StoreError> {
    let users = marked_users(store, key)?;
    Ok(match users.as_slice() {
        [one] => one.user.primary_email.clone(),
        _ => None,
    })
}

/// The unmarked user at `address`, if one was seen.
pub fn user_at(changes: &Changes, address: &str) -> Result<Option<Observed>, StoreError> {
    changes.get_json(REMOTE, &address_key(address))
}

/// What is known of `account` in Google: the users carrying its marker and, when none
/// does, the unmarked user at its address.
pub fn seen(
    changes: &Changes,
    account: &Account,
    marked: Vec<Observed>,
    deleted: Vec<Observed>,
) -> Result<Seen, StoreError> {
    let at_address = if marked.is_empty() {
        user_at(changes, &account.email)?.map(|o| o.user)
    } else {
        None
    };
    Ok(Seen {
        marked: marked.into_iter().map(|o| o.user).collect(),
        at_address,
        deleted: deleted.into_iter().map(|o| o.user).collect(),
    })
}

/// The users known in each domain (by primary address), what a new scan is compared with.
pub fn users_by_domain(store: &Store) -> Result<BTreeMap<String, u64>, StoreError> {
    let mut counts = BTreeMap::new();
    for prefix in [&b"r:"[..], b"u:"] {
        for entry in store.scan_json::<Observed>(REMOTE, prefix) {
            let (key, observed) = entry?;
            let Some(primary) = observed.user.primary_email else {
                continue;
            };
            // An unmarked user is listed under each of its addresses: count it once.
            if prefix == b"u:" && key[2..] != *primary.to_ascii_lowercase().as_bytes() {
                continue;
            }
            let domain = primary.rsplit_once('@').map_or("", |(_, d)| d);
            *counts.entry(domain.to_ascii_lowercase()).or_default() += 1;
        }
    }
    Ok(counts)
}

/// Removes the org units observed before `started` (the start of a believed scan): those
/// the scan no longer found. Returns how many were removed.
pub fn forget_org_units_before(store: &Store, started: Timestamp) -> Result<u64, StoreError> {
    // Collected first (org units are few): the map is not written while it is scanned.
    let mut stale = Vec::new();
    for entry in store.scan_json::<Timestamp>(REMOTE, b"o:") {
        let (key, at) = entry?;
        if at < started {
            stale.push(key);
        }
    }
    let mut changes = store.changes(false);
    for key in &stale {
        changes.delete(REMOTE, key.clone());
    }
    changes.commit()?;
    Ok(stale.len() as u64)
}

/// The users carrying the marker, and the deleted ones, of the accounts whose key lies in
/// `range` (see [`Store::range_json`]), by account key.
pub fn marked_in_range(
    store: &Store,
    range: (Option<&str>, Option<&str>),
) -> Result<(MarkedByAccount, MarkedByAccount), StoreError> {
    let mut found = [MarkedByAccount::new(), MarkedByAccount::new()];
    for (prefix, into) in ["r:", "d:"].into_iter().zip(&mut found) {
        for (key, observed) in
            store.range_json::<Observed>(REMOTE, prefix, range, true, |_| true)?
        {
            into.entry(key).or_default().push(observed);
        }
    }
    let [marked, deleted] = found;
    Ok((marked, deleted))
}

/// Observed users by the account key their marker names.
pub type MarkedByAccount = BTreeMap<String, Vec<Observed>>;
