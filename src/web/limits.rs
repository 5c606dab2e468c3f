//! Limits on what is worth abusing: resets and sheets per signed-in person, every action
//! (sign-ins included) per client address, and the public pages' tries per client address
//! and per account. A generic cell rate (GCRA): a burst of the hour's allowance, then one
//! more as each share of the hour passes. On the public pages a try past the allowance
//! also pushes the next one back by a share of the hour (up to a day): whoever keeps
//! guessing waits longer and longer.
//!
//! The state of each limit (its "theoretical arrival time") is kept in the store, in the
//! `limits` keyspace this module owns (`{kind}:{key}` → milliseconds since the epoch), so
//! a restart of the daemon gives nobody a fresh allowance. A take that is refused writes
//! nothing; entries whose allowance is whole again are removed every few minutes. (The
//! GCRA is a few lines; the `governor` crate keeps its state in memory only.)

use super::Web;
use crate::store::{Keyspace, SideChange, Store, StoreError};
use jiff::Timestamp;
use std::time::Duration;

const LIMITS: Keyspace = Keyspace::new("limits");

const HOUR_MS: i64 = 3_600_000;

/// The longest wait refused public tries can build up.
const LONGEST_WAIT_MS: i64 = 24 * HOUR_MS;

/// The allowances of one console, per hour.
pub struct Limits {
    resets: u32,
    sheets: u32,
    address: u32,
    public_address: u32,
    public_account: u32,
}

/// What is limited.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Reset,
    Sheet,
    /// Any action from one client address.
    Address,
    /// Tries on the public pages from one client address.
    PublicAddress,
    /// Tries on the public pages for one account (keyed by a digest: see
    /// [`super::public`]).
    PublicAccount,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Reset => "reset",
            Kind::Sheet => "sheet",
            Kind::Address => "address",
            Kind::PublicAddress => "public-address",
            Kind::PublicAccount => "public-account",
        }
    }

    /// Whether a refused try makes the wait longer.
    fn grows(self) -> bool {
        matches!(self, Kind::PublicAddress | Kind::PublicAccount)
    }
}

/// One take of an allowance of `per_hour` whose state is `tat` (none: untouched), at
/// `now` (ms): the state to write (if any), and whether it was granted or how long to
/// wait. When `grows`, a refused take pushes the state back by one share of the hour
/// (at most [`LONGEST_WAIT_MS`] ahead). Pure.
fn gcra(
    tat: Option<i64>,
    now: i64,
    per_hour: u32,
    grows: bool,
) -> (Option<i64>, Result<(), Duration>) {
    let interval = HOUR_MS / i64::from(per_hour.max(1));
    let tolerance = HOUR_MS - interval;
    let tat = tat.unwrap_or(now).max(now);
    if tat - tolerance - now <= 0 {
        return (Some(tat + interval), Ok(()));
    }
    let later = grows.then(|| (tat + interval).min(now + tolerance + LONGEST_WAIT_MS));
    let early = later.unwrap_or(tat) - tolerance - now;
    (later, Err(Duration::from_millis(early as u64)))
}

fn key(kind: Kind, key: &str) -> Vec<u8> {
    format!("{}:{key}", kind.name()).into_bytes()
}

impl Limits {
    pub fn new(web: &Web) -> Limits {
        Limits {
            resets: web.resets_per_hour,
            sheets: web.sheets_per_hour,
            address: web.per_address_per_hour,
            public_address: web.public_per_address_per_hour,
            public_account: web.public_per_account_per_hour,
        }
    }

    /// Takes one of `who`'s allowance of `kind` at `now`: `Ok(Err(wait))` when it is
    /// spent (a refused try writes nothing, except on the public pages where it makes the
    /// wait longer). Read and written at once as a side record of the store (two requests cannot
    /// both take the last one, and an import holding the write lease does not hold up a
    /// sign-in). Blocking: called off the async runtime.
    pub fn take(
        &self,
        store: &Store,
        kind: Kind,
        who: &str,
        now: Timestamp,
    ) -> Result<Result<(), Duration>, StoreError> {
        let per_hour = match kind {
            Kind::Reset => self.resets,
            Kind::Sheet => self.sheets,
            Kind::Address => self.address,
            Kind::PublicAddress => self.public_address,
            Kind::PublicAccount => self.public_account,
        };
        let mut answer = Ok(());
        store.update_side_record(LIMITS, &key(kind, who), |stored| {
            let tat = stored
                .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
                .map(i64::from_be_bytes);
            let (next, taken) = gcra(tat, now.as_millisecond(), per_hour, kind.grows());
            answer = taken;
            match next {
                Some(next) => SideChange::Put(next.to_be_bytes().to_vec()),
                None => SideChange::Keep,
            }
        })?;
        Ok(answer)
    }

    /// Forgets the limits whose allowance is whole again (the store stays small).
    pub fn forget_old(store: &Store, now: Timestamp) -> Result<u64, StoreError> {
        let now = now.as_millisecond();
        let old: Vec<Vec<u8>> = store
            .scan(LIMITS, b"", Vec::new(), |key, value| {
                let tat = <[u8; 8]>::try_from(value).map_or(0, i64::from_be_bytes);
                Ok((tat <= now).then(|| key.to_vec()))
            })
            .filter_map(Result::transpose)
            .collect::<Result<_, _>>()?;
        for key in &old {
            // Taken again since it was read: kept.
            store.update_side_record(LIMITS, key, |stored| {
                let tat = stored
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(i64::from_be_bytes);
                match tat.is_some_and(|tat| tat <= now) {
                    true => SideChange::Remove,
                    false => SideChange::Keep,
                }
            })?;
        }
        Ok(old.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hours_allowance_then_a_wait_that_shrinks() {
        let mut tat = None;
        let now = 1_000_000_000;
        for _ in 0..3 {
            let (next, taken) = gcra(tat, now, 3, false);
            assert!(taken.is_ok(), "within the allowance");
            tat = next;
        }
        let (next, taken) = gcra(tat, now, 3, false);
        assert_eq!(next, None, "a refused take writes nothing");
        assert_eq!(
            taken,
            Err(Duration::from_secs(20 * 60)),
            "a third of the hour"
        );
        let later = now + 20 * 60 * 1000;
        assert!(
            gcra(tat, later, 3, false).1.is_ok(),
            "one more after a third of the hour"
        );
    }

    #[test]
    fn on_the_public_pages_each_refused_try_makes_the_wait_longer_up_to_a_day() {
        let now = 1_000_000_000;
        let mut tat = None;
        for _ in 0..5 {
            tat = gcra(tat, now, 5, true).0;
        }
        let mut waits = Vec::new();
        for _ in 0..200 {
            let (next, taken) = gcra(tat, now, 5, true);
            waits.push(taken.unwrap_err());
            tat = next;
        }
        // A fifth of the hour, and this try's fifth on top; then a fifth more each time.
        assert_eq!(waits[0], Duration::from_secs(2 * 12 * 60));
        assert_eq!(waits[1], Duration::from_secs(3 * 12 * 60));
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "never shorter");
        assert_eq!(waits[199], Duration::from_secs(24 * 3600), "a day at most");
        // Once the wait is over, one try again.
        let later = now + 24 * 3600 * 1000;
        assert!(gcra(tat, later, 5, true).1.is_ok());
    }

    /// An import holds the write lease for minutes: a sign-in's limit does not wait for it.
    #[test]
    fn a_limit_is_taken_while_another_writer_holds_the_lease() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 8).unwrap();
        let limits = Limits::new(&Web::default());
        let lease = store.lease();
        let (done, heard) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let taken = limits.take(&store, Kind::Address, "10.0.0.1", Timestamp::now());
                let _ = done.send(taken.unwrap().is_ok());
            });
            // Far longer than a take; with the lease in its way it would never come.
            let taken = heard.recv_timeout(Duration::from_secs(30));
            drop(lease);
            assert_eq!(taken, Ok(true), "the take waited for the lease");
        });
    }

    #[test]
    fn limits_live_in_the_store_and_survive_a_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let web = Web {
            resets_per_hour: 2,
            ..Web::default()
        };
        let limits = Limits::new(&web);
        let now = Timestamp::now();
        {
            let store = Store::open(dir.path(), 8).unwrap();
            for _ in 0..2 {
                assert!(
                    limits
                        .take(&store, Kind::Reset, "op@x", now)
                        .unwrap()
                        .is_ok()
                );
            }
            assert!(
                limits
                    .take(&store, Kind::Reset, "op@x", now)
                    .unwrap()
                    .is_err()
            );
            // Another person has their own allowance.
            assert!(
                limits
                    .take(&store, Kind::Reset, "other@x", now)
                    .unwrap()
                    .is_ok()
            );
        }
        let store = Store::open(dir.path(), 8).unwrap();
        let wait = limits
            .take(&store, Kind::Reset, "op@x", now)
            .unwrap()
            .unwrap_err();
        assert!(wait > Duration::from_secs(29 * 60), "{wait:?}");
        assert_eq!(Limits::forget_old(&store, now).unwrap(), 0);
        let hour_later = now + jiff::SignedDuration::from_hours(1);
        assert_eq!(Limits::forget_old(&store, hour_later).unwrap(), 2);
        assert!(
            limits
                .take(&store, Kind::Reset, "op@x", hour_later)
                .unwrap()
                .is_ok()
        );
    }
}
