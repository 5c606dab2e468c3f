//! The accounts of the directory and their indexes: the owner of three keyspaces of the
//! store.
//!
//! - `accounts`: `{account key}` → the account (JSON)
//! - `addresses`: `e:{domain}:{local}` → the account key that holds the address (current
//!   or former); `n:{domain}:{base}` → the next number to try for that base (u64,
//!   big-endian)
//! - `schools`: `{npsn}:{account key}` → nothing: the accounts of a school
//!
//! and the counters of accounts by desired state. The methods below are the only way to
//! them; they extend [`Store`] and [`Changes`] so that one commit can change an account
//! and what other modules keep about it.

use super::model::{Account, AccountKey, DesiredState, IdType, Jenjang};
use super::naming;
use crate::store::{Changes, Keyspace, SideChange, Store, StoreError};
use serde::{Deserialize, Serialize};

pub(crate) const ACCOUNTS: Keyspace = Keyspace::new("accounts");
const ADDRESSES: Keyspace = Keyspace::new("addresses");
const SCHOOLS: Keyspace = Keyspace::new("schools");
/// Whether the school index's person tags were filled once ([`Store::tag_school_index`]).
const TAGGED: Keyspace = Keyspace::new("school_tags");
const TAGGED_KEY: &[u8] = b"done";

/// What an import reads back of its own earlier changes: the address index (an address
/// allocated for one row is taken for the rows after it). A dry run keeps only these.
pub(crate) const READ_BACK_BY_IMPORT: &[Keyspace] = &[ADDRESSES];

/// What an import writes all over when its rows come in id order with the schools
/// interleaved (as Dapodik's exports do): the school index, written once per chunk.
pub(crate) const SPREAD_BY_IMPORT: &[Keyspace] = &[SCHOOLS];
const STATES: [&str; 3] = ["active", "retiring", "suspended"];

/// Counts of accounts by desired state, as `status` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    pub total: u64,
    pub active: u64,
    pub retiring: u64,
    pub suspended: u64,
}

fn account_key(key: &AccountKey) -> Vec<u8> {
    key.text().into_bytes()
}

/// The index key of an address: domain first, so that the addresses of one domain, and
/// the numbered variants of one base, lie together in the index's pages.
fn email_key(email: &str) -> Vec<u8> {
    let (local, domain) = email.rsplit_once('@').unwrap_or((email, ""));
    ["e:", domain, ":", local].concat().into_bytes()
}

fn school_key(npsn: &str, key: &AccountKey) -> Vec<u8> {
    [npsn, ":", &key.text()].concat().into_bytes()
}

fn parse_account(
    store: &Store,
    key: &dyn std::fmt::Display,
    bytes: &[u8],
) -> Result<Account, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| store.corrupt(format!("account {key}: {e}")))
}

impl Store {
    pub fn account(&self, key: &AccountKey) -> Result<Option<Account>, StoreError> {
        self.changes(true).account(key)
    }

    /// The account holding `email`, as its current or a former address.
    pub fn account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        let owner = self.get(ADDRESSES, &email_key(&email.to_ascii_lowercase()))?;
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

    /// The person's active account on another level than `account`'s (a student who
    /// moved up), if any.
    pub fn active_elsewhere(&self, account: &Account) -> Result<Option<Account>, StoreError> {
        Ok(self
            .accounts_of_person(account.id_type, &account.id)?
            .into_iter()
            .find(|a| a.jenjang != account.jenjang && a.state == DesiredState::Active))
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

    /// Every account, in key order.
    pub fn accounts(&self) -> impl Iterator<Item = Result<Account, StoreError>> + '_ {
        self.accounts_after(None)
    }

    /// The accounts whose key comes after `after` (all when `None`), in key order.
    pub fn accounts_after(
        &self,
        after: Option<&AccountKey>,
    ) -> impl Iterator<Item = Result<Account, StoreError>> + '_ {
        // ';' sorts right after every character of a key: past `after` itself.
        let from = after.map_or_else(Vec::new, |k| format!("{k};").into_bytes());
        self.scan(ACCOUNTS, b"", from, move |key, value| {
            parse_account(self, &String::from_utf8_lossy(key), value)
        })
    }

    /// The keys of the accounts whose school is `npsn`.
    pub fn school_members(&self, npsn: &str) -> Result<Vec<AccountKey>, StoreError> {
        let prefix = format!("{npsn}:");
        self.scan(
            SCHOOLS,
            prefix.as_bytes(),
            prefix.clone().into_bytes(),
            |k, _| {
                std::str::from_utf8(&k[prefix.len()..])
                    .ok()
                    .and_then(AccountKey::parse)
                    .ok_or_else(|| self.corrupt("school index holds an unreadable key"))
            },
        )
        .collect()
    }

    /// The keys of the accounts of school `npsn` whose [`naming::person_tag`] is `tag`,
    /// and of those whose index entry has no tag yet (a store made by an earlier build):
    /// the caller reads them and compares. One scan of the school's index, no account read.
    pub fn school_members_tagged(
        &self,
        npsn: &str,
        tag: &[u8],
    ) -> Result<Vec<AccountKey>, StoreError> {
        let prefix = format!("{npsn}:");
        self.scan(
            SCHOOLS,
            prefix.as_bytes(),
            prefix.clone().into_bytes(),
            |k, v| {
                if !v.is_empty() && v != tag {
                    return Ok(None);
                }
                std::str::from_utf8(&k[prefix.len()..])
                    .ok()
                    .and_then(AccountKey::parse)
                    .map(Some)
                    .ok_or_else(|| self.corrupt("school index holds an unreadable key"))
            },
        )
        .filter_map(Result::transpose)
        .collect()
    }

    /// Writes the person tag of every school index entry an earlier build wrote without
    /// one (Cek Akun reads such accounts one by one), in changes of a few thousand, each
    /// under the write lease for a moment. Done once: a side record then says so.
    /// Returns how many entries it tagged.
    pub fn tag_school_index(&self) -> Result<u64, StoreError> {
        const BATCH: usize = 5_000;
        if self.get(TAGGED, TAGGED_KEY)?.is_some() {
            return Ok(0);
        }
        let mut tagged = 0;
        let mut from = Vec::new();
        loop {
            let untagged: Vec<Vec<u8>> = self
                .scan(SCHOOLS, b"", from.clone(), |k, v| {
                    Ok(v.is_empty().then(|| k.to_vec()))
                })
                .filter_map(Result::transpose)
                .take(BATCH)
                .collect::<Result<_, _>>()?;
            let Some(last) = untagged.last() else {
                break;
            };
            from = [last.as_slice(), b"\0"].concat();
            let mut changes = self.changes(false);
            for entry in &untagged {
                let key = std::str::from_utf8(entry)
                    .ok()
                    .and_then(|text| text.split_once(':'))
                    .and_then(|(_, key)| AccountKey::parse(key))
                    .ok_or_else(|| self.corrupt("school index holds an unreadable key"))?;
                // Read again under the lease: an import may have moved it meanwhile.
                if changes.get(SCHOOLS, entry)?.is_some_and(|v| v.is_empty())
                    && let Some(account) = changes.account(&key)?
                {
                    let tag = naming::person_tag(&account.full_name, account.birth_date);
                    changes.put(SCHOOLS, entry.clone(), tag);
                    tagged += 1;
                }
            }
            changes.commit()?;
        }
        self.update_side_record(TAGGED, TAGGED_KEY, |_| SideChange::Put(vec![1]))?;
        Ok(tagged)
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
}

impl Changes<'_> {
    pub fn account(&self, key: &AccountKey) -> Result<Option<Account>, StoreError> {
        let Some(bytes) = self.get(ACCOUNTS, &account_key(key))? else {
            return Ok(None);
        };
        parse_account(self.store(), key, &bytes).map(Some)
    }

    /// The key of the account holding `email`, if any.
    fn email_owner(&self, email: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .get(ADDRESSES, &email_key(email))?
            .map(|owner| String::from_utf8_lossy(&owner).into_owned()))
    }

    /// Writes `account`, keeping the address index, the school index and the state
    /// counters in step with what `old` (the stored version, if any) had. Addresses `old`
    /// already held, or reserved for it beforehand ([`reserve_email`](Self::reserve_email)),
    /// are not written again.
    pub fn put_account(
        &mut self,
        old: Option<&Account>,
        account: &Account,
    ) -> Result<(), StoreError> {
        self.put_account_reserved(old, account, None)
    }

    /// [`put_account`](Self::put_account), told which address the caller reserved for it
    /// just before (an import's allocation): that one is not looked up again, which for
    /// a million new accounts is a million reads of the address index in random order.
    pub fn put_account_reserved(
        &mut self,
        old: Option<&Account>,
        account: &Account,
        reserved: Option<&str>,
    ) -> Result<(), StoreError> {
        let key = account.key();
        let owner = key.text();
        for email in std::iter::once(&account.email).chain(&account.former_emails) {
            let held_before = reserved == Some(email.as_str())
                || old.is_some_and(|o| o.email == *email || o.former_emails.contains(email));
            if !held_before && self.email_owner(email)?.as_deref() != Some(owner.as_str()) {
                self.put(ADDRESSES, email_key(email), owner.clone().into_bytes());
            }
        }
        // The school index keeps the person's tag (Cek Akun finds them by it).
        let tag = || naming::person_tag(&account.full_name, account.birth_date);
        match old {
            Some(old)
                if old.npsn == account.npsn
                    && old.full_name == account.full_name
                    && old.birth_date == account.birth_date => {}
            Some(old) => {
                if old.npsn != account.npsn {
                    self.delete(SCHOOLS, school_key(&old.npsn, &key));
                }
                self.put(SCHOOLS, school_key(&account.npsn, &key), tag());
            }
            None => self.put(SCHOOLS, school_key(&account.npsn, &key), tag()),
        }
        let old_state = old.map(|o| o.state.name());
        if old_state != Some(account.state.name()) {
            if let Some(old_state) = old_state {
                self.count(old_state, -1);
            }
            self.count(account.state.name(), 1);
        }
        let json = serde_json::to_vec(account).expect("accounts serialise");
        self.put(ACCOUNTS, account_key(&key), json);
        Ok(())
    }

    /// Reserves `email` for `key` in the address index.
    pub fn reserve_email(&mut self, email: &str, key: &AccountKey) {
        self.put(ADDRESSES, email_key(email), key.text().into_bytes());
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
            let email = [&local, "@", domain].concat();
            if self.email_free_for(&email, key)? {
                return Ok(email);
            }
        }
        let counter_key = ["n:", domain, ":", base].concat().into_bytes();
        let mut n = match self.get(ADDRESSES, &counter_key)? {
            Some(bytes) => <[u8; 8]>::try_from(bytes.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| {
                    self.store()
                        .corrupt(format!("address counter of {base}@{domain}"))
                })?,
            None => 2,
        };
        let email = loop {
            if let Some(local) = naming::candidate(base, n) {
                let email = [&local, "@", domain].concat();
                if self.email_free_for(&email, key)? {
                    break email;
                }
            }
            n += 1;
        };
        self.put(ADDRESSES, counter_key, (n + 1).to_be_bytes().to_vec());
        Ok(email)
    }

    /// Whether `email` is free for `key` (unheld, or already held by it).
    pub fn email_free_for(&self, email: &str, key: &AccountKey) -> Result<bool, StoreError> {
        Ok(self
            .email_owner(email)?
            .is_none_or(|owner| owner == key.text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::model::DesiredState;

    fn account(id: &str, name: &str, email: &str) -> Account {
        Account::student(id, name, email)
    }

    /// Cek Akun finds a person by the tag of the school index; entries an earlier build
    /// wrote without one are still found, and tagged once.
    #[test]
    fn a_person_is_found_by_the_school_index_tag_and_old_entries_are_tagged_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 8).unwrap();
        let born = Some(jiff::civil::date(2015, 3, 1));
        let siti = Account {
            birth_date: born,
            ..account("0012345678", "Siti Aminah", "siti.aminah@sd.belajar.id")
        };
        let agus = Account {
            birth_date: born,
            ..account("0012345679", "Agus Salim", "agus.salim@sd.belajar.id")
        };
        let mut changes = store.changes(false);
        changes.put_account(None, &siti).unwrap();
        changes.put_account(None, &agus).unwrap();
        changes.commit().unwrap();
        let tag = naming::person_tag("SITI  aminah", born);
        let found = store.school_members_tagged("20100001", &tag).unwrap();
        assert_eq!(found, [siti.key()], "only Siti's entry, no account read");
        // A rename writes the new tag.
        let renamed = Account {
            full_name: "Siti Aminah Putri".into(),
            ..siti.clone()
        };
        let mut changes = store.changes(false);
        changes.put_account(Some(&siti), &renamed).unwrap();
        changes.commit().unwrap();
        assert!(
            store
                .school_members_tagged("20100001", &tag)
                .unwrap()
                .is_empty()
        );

        // As an earlier build left it: entries without a tag are candidates for anyone.
        let mut changes = store.changes(false);
        for key in [siti.key(), agus.key()] {
            changes.put(SCHOOLS, school_key("20100001", &key), Vec::new());
        }
        changes.commit().unwrap();
        let other = naming::person_tag("Nama Lain", born);
        assert_eq!(
            store
                .school_members_tagged("20100001", &other)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(store.tag_school_index().unwrap(), 2);
        assert!(
            store
                .school_members_tagged("20100001", &other)
                .unwrap()
                .is_empty()
        );
        let agus_tag = naming::person_tag("Agus Salim", born);
        assert_eq!(
            store.school_members_tagged("20100001", &agus_tag).unwrap(),
            [agus.key()]
        );
        assert_eq!(store.tag_school_index().unwrap(), 0, "done once");
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
                            seqs.push(changes.next_seq());
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
        assert_eq!(reopened.changes(false).next_seq(), 401);
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
}
