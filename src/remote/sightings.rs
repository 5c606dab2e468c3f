//! What a scan under way has seen, kept aside and applied to the remote records once the
//! scan is whole.
//!
//! Why: Google lists users in its own order, not in the order of the records (by account
//! key), so recording each user as it came rewrote a store page per user (a page of 500
//! users rewrote some 500 compressed pages, most of them unchanged but for the time).
//! Sightings are instead gathered in memory and written, sorted, as a *run* (keys that
//! follow each other: a few pages appended). When the scan ends, the runs are merged in
//! key order with the records themselves: each page of records is read once and written
//! only where something changed, and the records no sighting mentions are the users the
//! scan did not find.
//!
//! The owner of the `sightings` keyspace: `{run: u64 big-endian}{remote key}` →
//! [`Sighting`]. Runs are numbered from the store's sequence: a later run holds later
//! sightings, and wins where two saw the same user.
//!
//! A scan cut short keeps its runs (those of the parts it finished are complete; the
//! parts it had under way are listed again and their sightings, seen twice, are merged);
//! a new scan starts by clearing them.

use super::{Observed, REMOTE, address_key, addresses, deleted_key, managed_key};
use crate::access;
use crate::google::types::User;
use crate::planner::marked_key;
use crate::store::{Changes, Keyspace, Store, StoreError};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

const SIGHTINGS: Keyspace = Keyspace::new("sightings");

/// How many bytes of sightings are held before they are written as a run (some 8,000
/// users): a million users make about 120 runs, each read one page at a time when they
/// are merged. Held three times over while a run is written (the sightings, the store's
/// pending changes, the pages made of them): 24 MiB runs cost 40 MB more at the peak of a
/// scan of a million than these.
const RUN_BYTES: usize = 8 << 20;

/// What a scan saw at one remote key.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Sighting {
    /// The record as listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seen: Option<Observed>,
    /// At an unmarked user's address (`u:`): the ids of the users seen carrying a marker
    /// at that address. Its record goes if it is one of them (adopted since).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    claimed_by: Vec<String>,
}

impl Sighting {
    /// `user`, listed at `at`.
    fn of(user: &User, at: Timestamp) -> Sighting {
        Sighting {
            seen: Some(Observed {
                user: user.clone(),
                at,
            }),
            claimed_by: Vec::new(),
        }
    }

    /// `self` then `later`, as one sighting.
    fn and(mut self, later: Sighting) -> Sighting {
        self.seen = later.seen.or(self.seen);
        for id in later.claimed_by {
            if !self.claimed_by.contains(&id) {
                self.claimed_by.push(id);
            }
        }
        self
    }
}

/// A sighting read without parsing the user it holds, to compare it with a record.
#[derive(Deserialize)]
struct SightingText<'a> {
    #[serde(borrow, default)]
    seen: Option<&'a RawValue>,
    #[serde(default)]
    claimed_by: Vec<String>,
}

/// A record (or a sighting's) read without parsing its user.
#[derive(Deserialize)]
struct ObservedText<'a> {
    #[serde(borrow)]
    user: &'a RawValue,
    at: Timestamp,
}

/// The last sign-in of a record, read alone.
#[derive(Deserialize)]
struct SignInText {
    user: SignInUser,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignInUser {
    last_login_time: Option<String>,
}

/// Sightings gathered in memory, written as runs.
#[derive(Default)]
pub struct Sightings {
    /// By remote key, serialised [`Sighting`]s.
    held: HashMap<Vec<u8>, Vec<u8>>,
    bytes: usize,
}

impl Sightings {
    /// Notes that `user` was listed at `at`.
    pub fn saw(&mut self, user: &User, at: Timestamp) {
        let id = user.id.clone().unwrap_or_default();
        match marked_key(user) {
            Some(key) => {
                for address in addresses(user) {
                    let claim = Sighting {
                        seen: None,
                        claimed_by: vec![id.clone()],
                    };
                    self.hold(address_key(address), claim);
                }
                self.hold(managed_key(&key, &id), Sighting::of(user, at));
            }
            None => {
                for address in addresses(user) {
                    self.hold(address_key(address), Sighting::of(user, at));
                }
            }
        }
    }

    /// Notes that the deleted `user` was listed at `at` (kept only when it carries a
    /// marker: its account is restored from it).
    pub fn saw_deleted(&mut self, user: &User, at: Timestamp) {
        if let (Some(key), Some(id)) = (marked_key(user), user.id.as_deref()) {
            self.hold(deleted_key(&key, id), Sighting::of(user, at));
        }
    }

    fn hold(&mut self, key: Vec<u8>, sighting: Sighting) {
        let sighting = match self.held.remove(&key) {
            // Rare (a user listed twice in one run, an address claimed twice).
            Some(earlier) => serde_json::from_slice::<Sighting>(&earlier)
                .expect("sightings held are read back")
                .and(sighting),
            None => sighting,
        };
        let bytes = serde_json::to_vec(&sighting).expect("sightings serialise");
        self.bytes += key.len() + bytes.len() + 48;
        self.held.insert(key, bytes);
    }

    /// Whether enough is held to be written as a run.
    pub fn is_full(&self) -> bool {
        self.bytes >= RUN_BYTES
    }

    /// Holds what was gathered in `changes`, as the next run.
    pub fn write_run(&mut self, changes: &mut Changes) {
        if self.held.is_empty() {
            return;
        }
        let run = changes.next_seq().to_be_bytes();
        for (key, sighting) in std::mem::take(&mut self.held) {
            changes.put(SIGHTINGS, [&run[..], &key].concat(), sighting);
        }
        self.bytes = 0;
    }
}

/// Removes every run (a new scan starts, or one has been applied).
pub fn clear(store: &Store) -> Result<(), StoreError> {
    store.clear(SIGHTINGS)
}

/// How the records no sighting mentions are treated.
#[derive(Debug, Clone, Copy)]
pub struct Forget {
    /// The start of the scan: records written since (by actions taken meanwhile) stay.
    pub started: Timestamp,
    /// In a scan made of search listings, users created since then stay (the search index
    /// may not show them yet).
    pub unindexed_since: Option<Timestamp>,
}

/// What applying the sightings did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Records written (new or changed).
    pub written: u64,
    /// Records of users the scan did not find, removed.
    pub forgotten: u64,
}

/// What becomes of the record at one key. Pure.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Keep,
    /// The sighting's record (its text, as stored).
    Write(Vec<u8>),
    Remove {
        forgotten: bool,
    },
}

/// Applies the runs to the remote records, in key order, a batch at a time: a record
/// seen changed (or new) is written, one seen unchanged is left alone, and, with
/// `forget`, one not seen is removed. Runs again from the start if cut short (what it
/// does is the same the second time). The runs are left for [`clear`].
pub fn apply(store: &Store, forget: Option<Forget>) -> Result<Applied, StoreError> {
    let mut sightings = Merged::new(store)?;
    tracing::info!(runs = sightings.runs.len(), "applying what the scan saw");
    // Written behind the scan as it goes: a scan of the store sees each entry once.
    let mut records = [&b"d:"[..], b"r:", b"u:"].into_iter().flat_map(|prefix| {
        store.scan(REMOTE, prefix, prefix.to_vec(), |key, value| {
            Ok((key.to_vec(), value.to_vec()))
        })
    });
    let mut next_sighting = sightings.next().transpose()?;
    let mut next_record = records.next().transpose()?;
    let mut applied = Applied::default();
    let mut changes = store.changes(false);
    loop {
        let order = match (&next_sighting, &next_record) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((seen, _)), Some((held, _))) => seen.cmp(held),
        };
        let (mut sighting, mut held) = (None, None);
        if order.is_le() {
            sighting = std::mem::replace(&mut next_sighting, sightings.next().transpose()?);
        }
        if order.is_ge() {
            held = std::mem::replace(&mut next_record, records.next().transpose()?);
        }
        let key = match (&sighting, &held) {
            (Some((key, _)), _) | (None, Some((key, _))) => key.clone(),
            (None, None) => unreachable!("one of them is next"),
        };
        let decision = decide(
            sighting.as_ref().map(|(_, s)| s.as_slice()),
            held.as_ref().map(|(_, h)| h.as_slice()),
            forget.as_ref(),
        )
        .map_err(|e| {
            store.corrupt(format!(
                "remote record {} or what a scan saw of it: {e}",
                String::from_utf8_lossy(&key)
            ))
        })?;
        match decision {
            Decision::Keep => continue,
            Decision::Write(record) => {
                applied.written += 1;
                if let Some(account) = super::managed_account(&key) {
                    let record: SignInText = store.parse_json(REMOTE, &key, &record)?;
                    let user = User {
                        last_login_time: record.user.last_login_time,
                        ..User::default()
                    };
                    if let Some(signed_in) = user.last_sign_in() {
                        access::saw_sign_in(&mut changes, &account, signed_in)?;
                    }
                }
                changes.put(REMOTE, key, record);
            }
            Decision::Remove { forgotten } => {
                applied.forgotten += u64::from(forgotten);
                applied.written += u64::from(!forgotten);
                changes.delete(REMOTE, key);
            }
        }
        if changes.pending_bytes() >= Changes::BATCH_BYTES {
            changes.commit()?;
        }
    }
    changes.commit()?;
    Ok(applied)
}

/// What becomes of the record `held` given what the scan saw at its key (a serialised
/// [`Sighting`]). Pure. Records are compared as text: records and sightings are both
/// written by [`Observed`]'s serialisation, so the same user reads the same.
fn decide(
    sighting: Option<&[u8]>,
    held: Option<&[u8]>,
    forget: Option<&Forget>,
) -> Result<Decision, serde_json::Error> {
    let sighting: Option<SightingText> = sighting.map(serde_json::from_slice).transpose()?;
    let seen = sighting.as_ref().and_then(|s| s.seen);
    let Some(held) = held else {
        return Ok(match seen {
            Some(seen) => Decision::Write(seen.get().as_bytes().to_vec()),
            None => Decision::Keep,
        });
    };
    if let Some(seen) = seen {
        let held_text: ObservedText = serde_json::from_slice(held)?;
        let seen_text: ObservedText = serde_json::from_str(seen.get())?;
        // Unchanged, or written since it was listed (by an action taken meanwhile).
        let unchanged = held_text.user.get() == seen_text.user.get();
        return Ok(if unchanged || held_text.at > seen_text.at {
            Decision::Keep
        } else {
            Decision::Write(seen.get().as_bytes().to_vec())
        });
    }
    let claimed_by = sighting.as_ref().map_or(&[][..], |s| &s.claimed_by[..]);
    if claimed_by.is_empty() && forget.is_none() {
        return Ok(Decision::Keep);
    }
    let held: Observed = serde_json::from_slice(held)?;
    if held
        .user
        .id
        .as_ref()
        .is_some_and(|id| claimed_by.contains(id))
    {
        return Ok(Decision::Remove { forgotten: false });
    }
    let Some(forget) = forget else {
        return Ok(Decision::Keep);
    };
    let unindexed = forget.unindexed_since.is_some_and(|since| {
        held.user
            .creation_time
            .as_deref()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .is_some_and(|created| created >= since)
    });
    Ok(if held.at < forget.started && !unindexed {
        Decision::Remove { forgotten: true }
    } else {
        Decision::Keep
    })
}

/// A remote key and what was seen there (a serialised [`Sighting`]).
type Entry = (Vec<u8>, Vec<u8>);

type Entries<'a> = Box<dyn Iterator<Item = Result<Entry, StoreError>> + 'a>;

/// The next sighting of a run: key, the run's place, sighting.
type Head = Reverse<(Vec<u8>, usize, Vec<u8>)>;

/// The sightings of every run, merged in key order: one per key, later runs winning.
struct Merged<'a> {
    store: &'a Store,
    runs: Vec<Entries<'a>>,
    /// The next sighting of each run not yet given.
    heads: BinaryHeap<Head>,
}

impl<'a> Merged<'a> {
    fn new(store: &'a Store) -> Result<Merged<'a>, StoreError> {
        let mut merged = Merged {
            store,
            runs: Vec::new(),
            heads: BinaryHeap::new(),
        };
        let mut from = Vec::new();
        // Each run is found by looking past the last.
        while let Some(first) = store
            .scan(SIGHTINGS, b"", from.clone(), |key, _| Ok(key.to_vec()))
            .next()
        {
            let first = first?;
            let run: [u8; 8] = first
                .get(..8)
                .and_then(|r| r.try_into().ok())
                .ok_or_else(|| store.corrupt("a sighting's key names no run"))?;
            let entries = store.scan(SIGHTINGS, &run, run.to_vec(), |key, value| {
                Ok((key[8..].to_vec(), value.to_vec()))
            });
            merged.runs.push(Box::new(entries));
            merged.advance(merged.runs.len() - 1)?;
            from = (u64::from_be_bytes(run) + 1).to_be_bytes().to_vec();
            if from == [0; 8] {
                break; // the last run number there is
            }
        }
        Ok(merged)
    }

    /// Takes the next sighting of run `i` into the heads.
    fn advance(&mut self, i: usize) -> Result<(), StoreError> {
        if let Some(entry) = self.runs[i].next() {
            let (key, value) = entry?;
            self.heads.push(Reverse((key, i, value)));
        }
        Ok(())
    }

    fn next_sighting(&mut self) -> Result<Option<Entry>, StoreError> {
        let Some(Reverse((key, i, value))) = self.heads.pop() else {
            return Ok(None);
        };
        self.advance(i)?;
        let mut combined: Option<Sighting> = None;
        while let Some(Reverse((next, ..))) = self.heads.peek()
            && *next == key
        {
            let Some(Reverse((_, j, later))) = self.heads.pop() else {
                break;
            };
            self.advance(j)?;
            let earlier = match combined.take() {
                Some(c) => c,
                None => self.store.parse_json(SIGHTINGS, &key, &value)?,
            };
            let later: Sighting = self.store.parse_json(SIGHTINGS, &key, &later)?;
            combined = Some(earlier.and(later));
        }
        Ok(Some(match combined {
            Some(c) => (key, serde_json::to_vec(&c).expect("sightings serialise")),
            None => (key, value),
        }))
    }
}

impl Iterator for Merged<'_> {
    type Item = Result<Entry, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_sighting().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::model::AccountKey;
    use crate::planner::marker;
    use jiff::SignedDuration;

    fn user(id: &str, email: &str, key: Option<&str>) -> User {
        User {
            id: Some(id.into()),
            primary_email: Some(email.into()),
            external_ids: key.map(|k| vec![marker(&AccountKey::parse(k).unwrap())]),
            ..User::default()
        }
    }

    fn observed(user: &User, at: Timestamp) -> Vec<u8> {
        serde_json::to_vec(&Observed {
            user: user.clone(),
            at,
        })
        .unwrap()
    }

    fn sighting(user: Option<&User>, at: Timestamp, claimed_by: &[&str]) -> Vec<u8> {
        serde_json::to_vec(&Sighting {
            seen: user.map(|u| Observed {
                user: u.clone(),
                at,
            }),
            claimed_by: claimed_by.iter().map(|c| c.to_string()).collect(),
        })
        .unwrap()
    }

    #[test]
    fn a_record_is_written_only_when_the_scan_saw_it_changed_since() {
        let t0: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let t1 = t0 + SignedDuration::from_hours(1);
        let siti = user("1", "siti@sd.belajar.id", Some("sd:nisn:0012345678"));
        let renamed = User {
            primary_email: Some("siti.a@sd.belajar.id".into()),
            ..siti.clone()
        };
        let decide = |seen: &[u8], held: &[u8]| decide(Some(seen), Some(held), None).unwrap();
        assert_eq!(
            decide(&sighting(Some(&siti), t1, &[]), &observed(&siti, t0)),
            Decision::Keep,
            "unchanged: its record and its time stay"
        );
        assert_eq!(
            decide(&sighting(Some(&renamed), t1, &[]), &observed(&siti, t0)),
            Decision::Write(observed(&renamed, t1))
        );
        assert_eq!(
            decide(&sighting(Some(&siti), t0, &[]), &observed(&renamed, t1)),
            Decision::Keep,
            "written by an action after the scan listed it"
        );
        assert_eq!(
            super::decide(Some(&sighting(Some(&siti), t1, &[])), None, None).unwrap(),
            Decision::Write(observed(&siti, t1))
        );
    }

    #[test]
    fn a_record_not_seen_goes_only_from_a_believed_scan_and_not_when_too_new_to_be_indexed() {
        let started: Timestamp = "2026-12-02T00:00:00Z".parse().unwrap();
        let before = started - SignedDuration::from_hours(1);
        let forget = Forget {
            started,
            unindexed_since: None,
        };
        let budi = user("2", "budi@sd.belajar.id", None);
        let held = observed(&budi, before);
        assert_eq!(
            decide(None, Some(&held), Some(&forget)).unwrap(),
            Decision::Remove { forgotten: true }
        );
        assert_eq!(decide(None, Some(&held), None).unwrap(), Decision::Keep);
        let since_started = observed(&budi, started + SignedDuration::from_secs(5));
        assert_eq!(
            decide(None, Some(&since_started), Some(&forget)).unwrap(),
            Decision::Keep,
            "recorded by an action during the scan"
        );
        let new = User {
            creation_time: Some("2026-12-01T12:00:00Z".into()),
            ..budi.clone()
        };
        let split = Forget {
            unindexed_since: Some(started - SignedDuration::from_hours(36)),
            ..forget
        };
        assert_eq!(
            decide(None, Some(&observed(&new, before)), Some(&split)).unwrap(),
            Decision::Keep,
            "created in the last 36 hours: a search listing may miss it"
        );
        assert_eq!(
            decide(None, Some(&observed(&new, before)), Some(&forget)).unwrap(),
            Decision::Remove { forgotten: true },
            "a whole listing does not miss it"
        );
    }

    #[test]
    fn an_unmarked_record_goes_when_its_user_is_seen_carrying_a_marker() {
        let budi = user("2", "budi@sd.belajar.id", None);
        let held = observed(&budi, "2026-12-01T00:00:00Z".parse().unwrap());
        let at = "2026-12-02T00:00:00Z".parse().unwrap();
        assert_eq!(
            decide(Some(&sighting(None, at, &["2"])), Some(&held), None).unwrap(),
            Decision::Remove { forgotten: false }
        );
        assert_eq!(
            decide(Some(&sighting(None, at, &["9"])), Some(&held), None).unwrap(),
            Decision::Keep,
            "another user claims the address"
        );
    }

    #[test]
    fn runs_are_merged_in_key_order_the_later_winning_and_unseen_users_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 8).unwrap();
        let t0: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let started = t0 + SignedDuration::from_hours(1);
        let siti = user("1", "siti@sd.belajar.id", Some("sd:nisn:0012345678"));
        let gone = user("3", "gone@sd.belajar.id", Some("sd:nisn:0099999999"));
        let adopted = user("4", "rina@sd.belajar.id", None);
        let mut changes = store.changes(false);
        for held in [&siti, &gone, &adopted] {
            super::super::record(&mut changes, held, t0).unwrap();
        }
        changes.commit().unwrap();

        // Two runs see Siti renamed (the later run's name wins); the second sees Rina
        // adopted and a new user.
        let named = |family: &str| User {
            name: Some(crate::google::types::UserName {
                given_name: Some("Siti".into()),
                family_name: Some(family.into()),
                ..Default::default()
            }),
            ..siti.clone()
        };
        let (first, second) = (named("A"), named("B"));
        let adopted_now = user("4", "rina@sd.belajar.id", Some("sd:nisn:0011111111"));
        let new = user("5", "new@sd.belajar.id", None);
        let mut seen = Sightings::default();
        seen.saw(&first, started);
        let mut changes = store.changes(false);
        seen.write_run(&mut changes);
        changes.commit().unwrap();
        for later in [&second, &adopted_now, &new] {
            seen.saw(later, started + SignedDuration::from_secs(1));
        }
        let mut changes = store.changes(false);
        seen.write_run(&mut changes);
        changes.commit().unwrap();

        let forget = Forget {
            started,
            unindexed_since: None,
        };
        let applied = apply(&store, Some(forget)).unwrap();
        assert_eq!(
            applied,
            Applied {
                written: 4,
                forgotten: 1
            },
            "Siti, Rina's marked record, her unmarked one removed, the new user; the gone one"
        );
        let siti_key = AccountKey::parse("sd:nisn:0012345678").unwrap();
        let marked = super::super::marked_users(&store, &siti_key).unwrap();
        assert_eq!(marked.len(), 1);
        assert_eq!(marked[0].user, second, "the later run wins");
        let gone_key = AccountKey::parse("sd:nisn:0099999999").unwrap();
        assert!(
            super::super::marked_users(&store, &gone_key)
                .unwrap()
                .is_empty()
        );
        let rina = AccountKey::parse("sd:nisn:0011111111").unwrap();
        assert_eq!(super::super::marked_users(&store, &rina).unwrap().len(), 1);
        let changes = store.changes(true);
        assert!(
            super::super::user_at(&changes, "rina@sd.belajar.id")
                .unwrap()
                .is_none()
        );
        assert!(
            super::super::user_at(&changes, "new@sd.belajar.id")
                .unwrap()
                .is_some()
        );

        // Applied again (a scan cut short after applying), nothing more changes.
        assert_eq!(
            apply(&store, Some(forget)).unwrap(),
            Applied::default(),
            "applying twice does what applying once did"
        );
        clear(&store).unwrap();
        assert_eq!(apply(&store, None).unwrap(), Applied::default());
    }
}
