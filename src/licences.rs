//! The Education Fundamentals licences archiving freed, by hour, so that `status` and the
//! metrics can say how many are still inside Google's 24-hour delay before they can be
//! given again (counted apart from what the pool has free).
//!
//! The owner of the `licences_freed` keyspace: `{YYYY-MM-DDTHH}` (UTC) → how many were
//! freed in that hour; hours older than two days are removed as new ones are written.

use crate::store::{Changes, Keyspace, Store, StoreError};
use jiff::{SignedDuration, Timestamp};

const FREED: Keyspace = Keyspace::new("licences_freed");

/// Google makes a licence taken back reusable within this.
const DELAY: SignedDuration = SignedDuration::from_hours(24);

fn hour(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H").to_string()
}

fn count_of(bytes: Option<Vec<u8>>) -> u64 {
    bytes
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map_or(0, u64::from_be_bytes)
}

/// Records one licence freed at `now`, in the changes that record the archive.
pub fn record_freed(changes: &mut Changes, now: Timestamp) -> Result<(), StoreError> {
    let key = hour(now).into_bytes();
    let freed = count_of(changes.get(FREED, &key)?) + 1;
    changes.put(FREED, key, freed.to_be_bytes().to_vec());
    let stale = hour(now - DELAY * 2).into_bytes();
    let old: Vec<Vec<u8>> = changes
        .store()
        .scan(FREED, b"", Vec::new(), |key, _| Ok(key.to_vec()))
        .take_while(|key| key.as_ref().is_ok_and(|k| *k < stale))
        .collect::<Result<_, _>>()?;
    for key in old {
        changes.delete(FREED, key);
    }
    Ok(())
}

/// Licences freed in the 24 hours before `now` (to the hour): not reusable yet.
pub fn freed_last_24h(store: &Store, now: Timestamp) -> Result<u64, StoreError> {
    let from = hour(now - DELAY).into_bytes();
    let mut total = 0;
    for entry in store.scan(FREED, b"", from.clone(), |key, value| {
        Ok((key > from.as_slice()).then(|| count_of(Some(value.to_vec()))))
    }) {
        total += entry?.unwrap_or(0);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_licences_count_for_24_hours_then_go() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 8).unwrap();
        let start: Timestamp = "2026-12-04T08:30:00Z".parse().unwrap();
        let mut changes = store.changes(false);
        for _ in 0..3 {
            record_freed(&mut changes, start).unwrap();
        }
        changes.commit().unwrap();
        drop(changes);
        assert_eq!(freed_last_24h(&store, start).unwrap(), 3);
        let next_day = start + SignedDuration::from_hours(23);
        assert_eq!(freed_last_24h(&store, next_day).unwrap(), 3);
        let after = start + SignedDuration::from_hours(25);
        assert_eq!(freed_last_24h(&store, after).unwrap(), 0);
        // Written two days later, the old hours go.
        let mut changes = store.changes(false);
        record_freed(&mut changes, start + SignedDuration::from_hours(72)).unwrap();
        changes.commit().unwrap();
        drop(changes);
        let hours = store.scan(FREED, b"", Vec::new(), |_, _| Ok(())).count();
        assert_eq!(hours, 1);
    }
}
