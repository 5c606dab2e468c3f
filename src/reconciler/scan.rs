//! The full scan: every org unit, and every user of every managed domain page by page into
//! the remote records (memory stays flat), then the deleted users that carry a marker
//! (so that their accounts are restored, not replaced). Believed only when no domain shrank past
//! `sync.min_scan_share` of the last scan and no page token came back: only then are the
//! users it did not find forgotten.

use crate::config::Config;
use crate::google::{CallFailure, DirectoryClient};
use crate::remote::{self, ScanRecord};
use crate::store::{Store, StoreError};
use jiff::Timestamp;

/// Why a scan was not believed or could not finish. Either way nothing is acted on.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("scan of {what}: {failure}")]
    Google { what: String, failure: CallFailure },
    #[error(
        "scan of {domain} found {found} users where {before} were known: not believed, nothing was acted on (check the domain in the Admin console; the next scan tries again)"
    )]
    Shrunk {
        domain: String,
        found: u64,
        before: u64,
    },
}

impl ScanError {
    /// Whether the scan was read whole but not believed (the guard's business), rather
    /// than failed.
    pub fn is_distrust(&self) -> bool {
        matches!(self, ScanError::Shrunk { .. })
            || matches!(self, ScanError::Google { failure, .. } if failure.to_string().contains("cycles"))
    }
}

/// Lists Google into the remote records; `progress(domain, users so far)` after each page.
pub async fn run(
    store: &Store,
    client: &DirectoryClient,
    config: &Config,
    mut progress: impl FnMut(&str, u64),
) -> Result<ScanRecord, ScanError> {
    let last = remote::last_scan(store)?;
    let known = remote::users_by_domain(store)?;
    let id = last.id + 1;
    let started = Timestamp::now();
    let google = |what: &str| {
        let what = what.to_owned();
        move |failure| ScanError::Google { what, failure }
    };

    let units = client
        .list_org_units()
        .await
        .map_err(google("org units"))?
        .value
        .organization_units;
    let mut changes = store.changes(false);
    for unit in &units {
        if let Some(path) = &unit.org_unit_path {
            remote::record_org_unit(&mut changes, path, started);
        }
    }
    changes.commit()?;

    let mut record = ScanRecord {
        id,
        started: Some(started),
        finished: None,
        users: Default::default(),
        org_units: units.len() as u64,
    };
    for domain in config.naming.domains() {
        let mut pages = client.list_users(&domain);
        let mut found = 0u64;
        while let Some(users) = pages.next_page().await.map_err(google(&domain))? {
            let now = Timestamp::now();
            let mut changes = store.changes(false);
            for user in &users {
                remote::record(&mut changes, user, now)?;
            }
            changes.commit()?;
            found += users.len() as u64;
            progress(&domain, found);
        }
        // Deleted users that carry a marker: their accounts are restored, not replaced.
        let mut pages = client.list_deleted_users(&domain);
        let what = format!("deleted users of {domain}");
        while let Some(users) = pages.next_page().await.map_err(google(&what))? {
            let now = Timestamp::now();
            let mut changes = store.changes(false);
            for user in &users {
                remote::record_deleted(&mut changes, user, now);
            }
            changes.commit()?;
        }
        let before = known.get(&domain).copied().unwrap_or(0);
        if before > 0 && (found as f64) < before as f64 * config.sync.min_scan_share {
            return Err(ScanError::Shrunk {
                domain,
                found,
                before,
            });
        }
        record.users.insert(domain, found);
    }
    let forgotten = remote::forget_observed_before(store, started)?;
    record.finished = Some(Timestamp::now());
    let mut changes = store.changes(false);
    remote::set_last_scan(&mut changes, &record);
    changes.commit()?;
    tracing::info!(
        scan = id,
        users = record.users.values().sum::<u64>(),
        forgotten,
        "scan finished"
    );
    Ok(record)
}
