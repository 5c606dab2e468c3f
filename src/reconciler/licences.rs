//! The licence scan, after a believed scan of users when `[licences]` is enabled: who
//! holds the SKUs belajar-sync assigns, read from licensing v1 (`listForProductAndSku`,
//! 1,000 a page), set on each account's link. A licence an admin removed by hand is then
//! assigned again by the next round; one given by hand (or by Google's auto-licensing) is
//! not assigned twice.
//!
//! Memory stays flat: the holders are written to the store page by page (`licence_holders`,
//! address → SKU, emptied at each scan), then the accounts are walked in key order and
//! their links corrected in batches.
//!
//! The owner of the `licence_holders` keyspace.

use super::scan::ScanError;
use crate::config::{ARCHIVED_SKU, Config, RetiredLicence};
use crate::google::DirectoryClient;
use crate::store::{Keyspace, Store, StoreError};
use std::collections::BTreeSet;

const HOLDERS: Keyspace = Keyspace::new("licence_holders");

/// Links corrected per commit.
const BATCH: usize = 10_000;

/// What a licence scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LicenceScan {
    /// Users holding one of the SKUs, as listed.
    pub holders: u64,
    /// Accounts whose link said otherwise, corrected.
    pub corrected: u64,
    pub pages: u64,
}

/// Reads every holder of the SKUs `[licences]` assigns and corrects the links.
pub async fn scan(
    store: &Store,
    client: &DirectoryClient,
    config: &Config,
) -> Result<LicenceScan, ScanError> {
    let licences = &config.licences;
    let archived = (licences.retired == RetiredLicence::Archive).then_some(ARCHIVED_SKU);
    let skus: BTreeSet<&str> = std::iter::once(licences.sku.as_str())
        .chain(licences.by_role.values().map(String::as_str))
        .chain(archived)
        .collect();
    store.clear(HOLDERS)?;
    let mut found = LicenceScan::default();
    for sku in skus {
        let mut token: Option<String> = None;
        loop {
            let page = client
                .list_licences(sku, token.as_deref())
                .await
                .map_err(|failure| ScanError::Google {
                    what: format!("the licences of SKU {sku}"),
                    failure,
                })?;
            found.pages += 1;
            let mut changes = store.changes(false);
            for item in &page.items {
                let address = item.user_id.to_ascii_lowercase().into_bytes();
                changes.put(HOLDERS, address, item.sku_id.clone().into_bytes());
                found.holders += 1;
            }
            changes.commit()?;
            match page.next_page_token {
                Some(next) if Some(&next) != token.as_ref() => token = Some(next),
                _ => break,
            }
        }
    }
    found.corrected = correct_links(store)?;
    store.clear(HOLDERS)?;
    tracing::info!(
        holders = found.holders,
        corrected = found.corrected,
        pages = found.pages,
        "licence scan finished"
    );
    Ok(found)
}

/// Sets each linked account's licence to what the holders say; how many changed.
fn correct_links(store: &Store) -> Result<u64, StoreError> {
    let mut corrected = 0;
    let mut batch = Vec::new();
    for account in store.accounts() {
        let account = account?;
        let Some(link) = &account.google else {
            continue;
        };
        let held = store
            .get(HOLDERS, account.email.to_ascii_lowercase().as_bytes())?
            .map(|sku| String::from_utf8_lossy(&sku).into_owned());
        if held != link.licence {
            batch.push((account.clone(), held));
        }
        if batch.len() >= BATCH {
            corrected += write(store, std::mem::take(&mut batch))?;
        }
    }
    corrected += write(store, batch)?;
    Ok(corrected)
}

/// Writes the licences found on the accounts of `batch` (re-read under the write lease:
/// a change made meanwhile is not lost).
fn write(
    store: &Store,
    batch: Vec<(crate::directory::model::Account, Option<String>)>,
) -> Result<u64, StoreError> {
    let mut changes = store.changes(false);
    let mut corrected = 0;
    for (seen, held) in batch {
        let Some(old) = changes.account(&seen.key())? else {
            continue;
        };
        let mut account = old.clone();
        if let Some(link) = account.google.as_mut() {
            link.licence = held;
        }
        if account != old {
            changes.put_account(Some(&old), &account)?;
            corrected += 1;
        }
    }
    changes.commit()?;
    Ok(corrected)
}
