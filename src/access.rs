//! How people get into their accounts: when a first password was last issued to them
//! (and by whom; never the password itself) and the sign-ins seen in Google. Activation
//! (how many accounts have ever been signed into) is the programme's measure of success.
//!
//! The owner of the `access` keyspace: `l:{account key}` → [`Access`]; the counter `signed_in` counts the accounts of
//! the directory whose user has been seen signed in.

use crate::directory::model::AccountKey;
use crate::store::{Changes, Keyspace, Store, StoreError};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

const ACCESS: Keyspace = Keyspace::new("access");

/// The store's counter of accounts seen signed in.
pub const SIGNED_IN: &str = "signed_in";

/// What is known of how an account's person gets in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Access {
    /// The earliest sign-in seen (Google reports only the last one: this is the last
    /// sign-in of the first read that found one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_sign_in: Option<Timestamp>,
    /// The latest sign-in seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sign_in: Option<Timestamp>,
    /// The last first password issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<Issued>,
    /// Wrong answers in a row to the identity check (a birth date) before a reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_checks: Option<FailedChecks>,
    /// When belajar-sync created the account's Google user, with a random password nobody
    /// was ever told; gone once a first password is issued. Until then nobody can have
    /// signed in, so a sheet sets the first password without reading the user first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_here: Option<Timestamp>,
}

impl Access {
    /// Whether nobody can know the user's password: created here, never given one since.
    pub fn password_unseen(&self) -> bool {
        self.created_here.is_some() && self.issued.is_none() && !self.signed_in()
    }
}

/// Wrong answers in a row to an account's identity check: what makes the next check wait.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FailedChecks {
    pub count: u32,
    pub last: Timestamp,
}

/// Wrong answers after which the next check waits (a person may mistype a date twice).
const FREE_CHECKS: u32 = 3;

/// The longest wait between two checks.
const LONGEST_WAIT: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// Until when an account's identity check refuses to be tried, after `failed` (`None`:
/// it may be tried now). Two wrong answers are free; the third makes the next check wait a
/// minute, and each one after doubles the wait, up to a day; a day after the last wrong
/// answer the count starts over.
/// Pure.
pub fn check_wait(failed: Option<&FailedChecks>, now: Timestamp) -> Option<Timestamp> {
    let failed = failed?;
    if failed.count < FREE_CHECKS || now.duration_since(failed.last) >= LONGEST_WAIT {
        return None;
    }
    let doublings = (failed.count - FREE_CHECKS).min(11);
    let wait = jiff::SignedDuration::from_mins(1 << doublings).min(LONGEST_WAIT);
    let until = failed.last + wait;
    (until > now).then_some(until)
}

/// Records a wrong answer to the identity check of `account`; the wrong answers in a row
/// now.
pub fn failed_check(
    changes: &mut Changes,
    account: &AccountKey,
    at: Timestamp,
) -> Result<FailedChecks, StoreError> {
    let mut failed = FailedChecks { count: 1, last: at };
    update(changes, account, |access| {
        let earlier = access
            .failed_checks
            .filter(|f| at.duration_since(f.last) < LONGEST_WAIT)
            .map_or(0, |f| f.count);
        failed.count += earlier;
        access.failed_checks = Some(failed);
    })?;
    Ok(failed)
}

impl Access {
    pub fn signed_in(&self) -> bool {
        self.last_sign_in.is_some()
    }
}

/// Records that belajar-sync created the Google user of `account` at `at`, with a
/// password nobody is told.
pub fn created_here(
    changes: &mut Changes,
    account: &AccountKey,
    at: Timestamp,
) -> Result<(), StoreError> {
    update(changes, account, |access| {
        access.created_here = Some(at);
        access.issued = None;
    })
}

/// A first password given out: on a school's sheet or by a helpdesk reset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issued {
    pub at: Timestamp,
    /// The operator's Unix user.
    pub by: String,
    /// `sheet` or `reset`.
    pub how: String,
}

fn key_of(account: &AccountKey) -> Vec<u8> {
    format!("l:{account}").into_bytes()
}

/// What is known of `account`, read through `changes`.
pub fn get(changes: &Changes, account: &AccountKey) -> Result<Option<Access>, StoreError> {
    changes.get_json(ACCESS, &key_of(account))
}

/// Changes what is known of `account` (read through `changes`) with `change`.
fn update(
    changes: &mut Changes,
    account: &AccountKey,
    change: impl FnOnce(&mut Access),
) -> Result<(), StoreError> {
    let mut access = get(changes, account)?.unwrap_or_default();
    change(&mut access);
    changes.put_json(ACCESS, key_of(account), &access);
    Ok(())
}

/// What is known of `account`.
pub fn of(store: &Store, account: &AccountKey) -> Result<Option<Access>, StoreError> {
    store.get_json(ACCESS, &key_of(account))
}

/// Records that the user of `account` was seen signed in last at `at`. The first time for
/// an account of the directory, it is counted as signed in.
pub fn saw_sign_in(
    changes: &mut Changes,
    account: &AccountKey,
    at: Timestamp,
) -> Result<(), StoreError> {
    let mut access = get(changes, account)?.unwrap_or_default();
    if access.last_sign_in.is_some_and(|last| last >= at) {
        return Ok(());
    }
    if access.first_sign_in.is_none() {
        if changes.account(account)?.is_none() {
            return Ok(()); // a marker naming no account of ours: nothing to measure
        }
        access.first_sign_in = Some(at);
        changes.count(SIGNED_IN, 1);
    }
    access.last_sign_in = Some(at);
    changes.put_json(ACCESS, key_of(account), &access);
    Ok(())
}

/// Records that a first password was issued to `account`.
pub fn set_issued(
    changes: &mut Changes,
    account: &AccountKey,
    issued: Issued,
) -> Result<(), StoreError> {
    update(changes, account, |access| {
        if issued.how == "reset" {
            access.failed_checks = None; // the check held
        }
        access.issued = Some(issued);
    })
}

/// How many accounts have been seen signed in.
pub fn signed_in_count(store: &Store) -> Result<u64, StoreError> {
    Ok(u64::try_from(store.counter(SIGNED_IN)?).unwrap_or(0))
}

/// Every record, in account key order (the order of [`Store::accounts`], so the two can
/// be walked side by side).
pub fn all(store: &Store) -> impl Iterator<Item = Result<(String, Access), StoreError>> + '_ {
    store
        .scan_json::<Access>(ACCESS, b"l:")
        .map(|e| e.map(|(key, access)| (String::from_utf8_lossy(&key[2..]).into_owned(), access)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::model::Account;

    #[test]
    fn wrong_identity_checks_wait_longer_each_time_and_are_forgotten_after_a_day() {
        let t0: Timestamp = "2026-12-04T08:00:00Z".parse().unwrap();
        let failed = |count, last| Some(FailedChecks { count, last });
        let min = jiff::SignedDuration::from_mins;
        assert_eq!(check_wait(None, t0), None);
        assert_eq!(
            check_wait(failed(2, t0).as_ref(), t0),
            None,
            "a typo is free"
        );
        assert_eq!(check_wait(failed(3, t0).as_ref(), t0), Some(t0 + min(1)));
        assert_eq!(check_wait(failed(4, t0).as_ref(), t0), Some(t0 + min(2)));
        assert_eq!(check_wait(failed(8, t0).as_ref(), t0), Some(t0 + min(32)));
        assert_eq!(
            check_wait(failed(40, t0).as_ref(), t0),
            Some(t0 + min(24 * 60))
        );
        assert_eq!(check_wait(failed(4, t0).as_ref(), t0 + min(2)), None);
        assert_eq!(
            check_wait(failed(40, t0).as_ref(), t0 + min(24 * 60)),
            None,
            "a day later it starts over"
        );
    }

    #[test]
    fn sign_ins_are_counted_once_per_account_of_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 8).unwrap();
        let ours = AccountKey::parse("sd:nisn:0012345678").unwrap();
        let stranger = AccountKey::parse("sd:nisn:0099999999").unwrap();
        let mut changes = store.changes(false);
        let siti = Account::student(&ours.id, "Siti Aminah", "siti.aminah@sd.belajar.id");
        changes.put_account(None, &siti).unwrap();
        changes.commit().unwrap();

        let (t1, t2): (Timestamp, Timestamp) = (
            "2026-07-14T01:00:00Z".parse().unwrap(),
            "2026-08-01T01:00:00Z".parse().unwrap(),
        );
        for at in [t1, t2, t1] {
            let mut changes = store.changes(false);
            saw_sign_in(&mut changes, &ours, at).unwrap();
            saw_sign_in(&mut changes, &stranger, at).unwrap();
            changes.commit().unwrap();
        }
        let access = of(&store, &ours).unwrap().unwrap();
        assert_eq!(access.first_sign_in, Some(t1));
        assert_eq!(
            access.last_sign_in,
            Some(t2),
            "an older read does not go back"
        );
        assert_eq!(signed_in_count(&store).unwrap(), 1);
        assert_eq!(of(&store, &stranger).unwrap(), None);
    }
}
