//! Limits on what is worth abusing: resets and sheets per signed-in person, and every
//! action (sign-ins included) per client address. A generic cell rate (GCRA): a burst of
//! the hour's allowance, then one more as each share of the hour passes.
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

/// The allowances of one console, per hour.
pub struct Limits {
    resets: u32,
    sheets: u32,
    address: u32,
}

/// What is limited.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Reset,
    Sheet,
    /// Any action from one client address.
    Address,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Reset => "reset",
            Kind::Sheet => "sheet",
            Kind::Address => "address",
        }
    }
}

/// One take of an allowance of `per_hour` whose state is `tat` (none: untouched), at
/// `now` (ms): the new state, or how long to wait. Pure.
fn gcra(tat: Option<i64>, now: i64, per_hour: u32) -> Result<i64, Duration> {
    let interval = HOUR_MS / i64::from(per_hour.max(1));
    let tolerance = HOUR_MS - interval;
    let tat = tat.unwrap_or(now).max(now);
    let early = tat - tolerance - now;
    if early > 0 {
        return Err(Duration::from_millis(early as u64));
    }
    Ok(tat + interval)
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
        }
    }

    /// Takes one of `who`'s allowance of `kind` at `now`: `Ok(Err(wait))` when it is
    /// spent. Read and written at once as a side record of the store (two requests cannot
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
        };
        let mut answer = Ok(());
        store.update_side_record(LIMITS, &key(kind, who), |stored| {
            let tat = stored
                .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
                .map(i64::from_be_bytes);
            match gcra(tat, now.as_millisecond(), per_hour) {
                Ok(next) => SideChange::Put(next.to_be_bytes().to_vec()),
                Err(wait) => {
                    answer = Err(wait);
                    SideChange::Keep
                }
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
            tat = Some(gcra(tat, now, 3).expect("within the allowance"));
        }
        let wait = gcra(tat, now, 3).unwrap_err();
        assert_eq!(wait, Duration::from_secs(20 * 60), "a third of the hour");
        let later = now + 20 * 60 * 1000;
        assert!(
            gcra(tat, later, 3).is_ok(),
            "one more after a third of the hour"
        );
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
