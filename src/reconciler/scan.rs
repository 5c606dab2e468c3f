//! The full scan: every org unit, and every user of every managed domain page by page
//! (memory stays flat: what a page shows is set aside as sightings, written sorted a few
//! megabytes at a time), then the deleted users that carry a marker (so that their
//! accounts are restored, not replaced). Once every part is listed, the sightings are
//! applied to the remote records in key order. Believed only when no domain, and no part
//! of one, shrank past `sync.min_scan_share` of the last scan and no page token came
//! back: only then are the users it did not find forgotten.
//!
//! A scan survives: Google ends a listing that pages for more than 60 minutes, and a scan
//! of a domain of millions takes hours, so a big domain is listed in *parts* (the users
//! whose address starts with one or two characters, through `query`), each small enough
//! to finish well inside the limit. Parts are listed side by side, and each one listed is
//! recorded: a scan cut short (a crash, a restart, Google failing) goes on with the parts
//! still to do at the next sync, keeping its start, for a day, and only against the same
//! Google (customer and API base): a scan of another one starts over.
//!
//! `query` listings come from Google's search index, which may miss users created in the
//! last 36 hours: in a scan made of parts, such a user is not forgotten for being missed.

use crate::audit::{self, HeldList};
use crate::config::Config;
use crate::google::types::User;
use crate::google::{CallFailure, DirectoryClient};
use crate::remote::sightings::{self, Forget, Sightings};
use crate::remote::{self, ScanProgress, ScanRecord};
use crate::store::{Store, StoreError};
use futures_util::StreamExt;
use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;

/// The first characters of addresses, as belajar-sync makes them.
const PREFIX_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Parts listed at once.
const PARTS_AT_ONCE: usize = 4;

/// How long a scan cut short may be taken up again before it starts over.
const RESUME_WITHIN: SignedDuration = SignedDuration::from_hours(24);

/// How far behind Google's search index may be.
const INDEX_LAG: SignedDuration = SignedDuration::from_hours(36);

/// Why a scan was not believed or could not finish. Either way nothing is acted on.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "scan of {what}: {failure} (the parts listed are kept: the next sync goes on from there)"
    )]
    Google { what: String, failure: CallFailure },
    #[error(
        "scan of {part} found {found} users where {before} were known: not believed, nothing was acted on (check the domain in the Admin console; the next scan tries again)"
    )]
    Shrunk {
        part: String,
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

/// What a scan lists in one go: a domain's users, those of them whose address starts
/// with `prefix`, or its deleted users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub domain: String,
    pub prefix: Option<String>,
    pub deleted: bool,
}

impl Part {
    /// The name progress and counts are kept under: `sd.belajar.id`, `sd.belajar.id/ab`,
    /// `sd.belajar.id (deleted)`.
    pub fn name(&self) -> String {
        match (&self.prefix, self.deleted) {
            (_, true) => format!("{} (deleted)", self.domain),
            (Some(prefix), _) => format!("{}/{prefix}", self.domain),
            (None, _) => self.domain.clone(),
        }
    }

    /// Whether `user` belongs to this part (a prefix listing also finds users by an alias:
    /// each is counted in the part of its primary address).
    fn counts(&self, user: &User) -> bool {
        let Some(prefix) = &self.prefix else {
            return true;
        };
        user.primary_email
            .as_deref()
            .is_some_and(|e| e.to_ascii_lowercase().starts_with(prefix.as_str()))
    }
}

/// The parts of `domain`, which had `known` users at the last scan: whole when small,
/// else by prefixes long enough that each part holds about `part_users` at most (the
/// default, 250,000, is listed in minutes at Google's pace of a page of 500 in about a
/// second); then its deleted users. Pure.
pub fn parts(domain: &str, known: u64, part_users: u64) -> Vec<Part> {
    let mut length = 0;
    let mut per_part = known;
    while per_part > part_users && length < 3 {
        length += 1;
        per_part /= PREFIX_CHARS.len() as u64;
    }
    let mut prefixes = vec![String::new()];
    for _ in 0..length {
        prefixes = prefixes
            .iter()
            .flat_map(|p| {
                PREFIX_CHARS
                    .iter()
                    .map(move |c| format!("{p}{}", *c as char))
            })
            .collect();
    }
    let mut parts: Vec<Part> = prefixes
        .into_iter()
        .map(|p| Part {
            domain: domain.to_owned(),
            prefix: (!p.is_empty()).then_some(p),
            deleted: false,
        })
        .collect();
    parts.push(Part {
        domain: domain.to_owned(),
        prefix: None,
        deleted: true,
    });
    parts
}

/// Lists Google into the remote records, going on with a scan cut short; `progress(part,
/// users so far)` after each page.
pub async fn run(
    store: &Store,
    client: &DirectoryClient,
    config: &Config,
    progress: impl FnMut(&str, u64),
) -> Result<ScanRecord, ScanError> {
    // Called by the parts listed side by side (one task: never at once).
    let progress = std::cell::RefCell::new(progress);
    let progress = |part: &str, found: u64| (progress.borrow_mut())(part, found);
    let last = remote::last_scan(store)?;
    let known = remote::users_by_domain(store)?;
    let mut state = resume_or_start(store, config, &last)?;
    if !state.org_units_done {
        list_org_units(store, client, &mut state).await?;
    }
    let domains = config.naming.domains();
    let (todo, split) = parts_to_list(store, config, &domains, &last, &known, &state)?;
    list_users(store, client, todo, &mut state, &progress).await?;
    let mut record = record_of(&state);
    let share = config.sync.min_scan_share;
    if let Some(shrunk) = shrunk(&domains, &known, &last, &record, share) {
        return Err(distrust(store, shrunk)?);
    }
    let started = state.started;
    // Users a search listing may not show yet are not forgotten for being missed.
    let unindexed_since = split.then(|| started - INDEX_LAG);
    let applied = sightings::apply(
        store,
        Some(Forget {
            started,
            unindexed_since,
        }),
    )?;
    let forgotten = applied.forgotten + remote::forget_org_units_before(store, started)?;
    // Cut short from here, the scan is applied again (to the same end) by the next sync.
    sightings::clear(store)?;
    record.finished = Some(Timestamp::now());
    {
        let mut changes = store.changes(false);
        remote::set_last_scan(&mut changes, &record);
        remote::set_scan_progress(&mut changes, None);
        changes.commit()?;
    }
    tracing::info!(
        scan = record.id,
        users = record.users.values().sum::<u64>(),
        parts = state.done.len(),
        written = applied.written,
        forgotten,
        "scan finished"
    );
    // Licences are read after the users, and a failure there leaves the users' scan
    // standing (the links keep what the store believed; the assignments say why they
    // wait).
    if config.licences.enabled
        && let Err(error) = super::licences::scan(store, client, config).await
    {
        tracing::warn!(%error, "the licence scan failed; the scan of users stands");
    }
    Ok(record)
}

/// The scan to make: the one cut short, when it is the next of this Google and recent;
/// else a new one (forgetting what the old one had seen).
fn resume_or_start(
    store: &Store,
    config: &Config,
    last: &ScanRecord,
) -> Result<ScanProgress, ScanError> {
    let now = Timestamp::now();
    let listing = format!("{} at {}", config.google.customer, config.google.api_base);
    let cut = remote::scan_progress(store)?;
    if let Some(cut) = cut
        .as_ref()
        .filter(|cut| cut.id == last.id + 1 && now.duration_since(cut.started) < RESUME_WITHIN)
        .filter(|cut| cut.google == listing)
    {
        tracing::info!(
            scan = cut.id,
            parts_done = cut.done.len(),
            "going on with a scan cut short"
        );
        return Ok(cut.clone());
    }
    if let Some(cut) = cut.filter(|cut| cut.google != listing) {
        tracing::info!(
            was = %cut.google,
            now = %listing,
            "a scan cut short listed another Google: this one starts over"
        );
    }
    // What a scan cut short long ago, or of another Google, had seen is not this one's.
    sightings::clear(store)?;
    Ok(ScanProgress {
        id: last.id + 1,
        started: now,
        google: listing,
        ..ScanProgress::default()
    })
}

/// Lists the org units and records them, with the scan's progress.
async fn list_org_units(
    store: &Store,
    client: &DirectoryClient,
    state: &mut ScanProgress,
) -> Result<(), ScanError> {
    let units = client
        .list_org_units()
        .await
        .map_err(|failure| ScanError::Google {
            what: "org units".into(),
            failure,
        })?
        .value
        .organization_units;
    let paths = units.iter().filter_map(|u| u.org_unit_path.as_deref());
    let mut changes = store.changes(false);
    record_org_units(&mut changes, paths, state.started)?;
    state.org_units = units.len() as u64;
    state.org_units_done = true;
    remote::set_scan_progress(&mut changes, Some(state));
    changes.commit()?;
    Ok(())
}

/// The parts of every domain still to list, and whether any domain is listed in parts.
fn parts_to_list(
    store: &Store,
    config: &Config,
    domains: &[String],
    last: &ScanRecord,
    known: &BTreeMap<String, u64>,
    state: &ScanProgress,
) -> Result<(Vec<Part>, bool), ScanError> {
    // How big each domain may be: what the last scan found, what is known of it since
    // (users created), and before any scan as many users as the directory has accounts.
    let directory = match last.finished {
        Some(_) => 0,
        None => store.counts()?.total,
    };
    let size = |d: &String| {
        let found = last.users.get(d).copied().unwrap_or(0);
        found.max(known.get(d).copied().unwrap_or(0)).max(directory)
    };
    let part_users = config.sync.scan_part_users;
    let planned: Vec<Part> = domains
        .iter()
        .flat_map(|d| parts(d, size(d), part_users))
        .collect();
    let split = planned.iter().any(|p| p.prefix.is_some());
    let todo = planned
        .into_iter()
        .filter(|p| !state.done.contains_key(&p.name()))
        .collect();
    Ok((todo, split))
}

/// Lists the parts `todo`, a few side by side, recording each as it is done; the first
/// failure, once the other parts are listed (what they list is kept for the next sync).
async fn list_users(
    store: &Store,
    client: &DirectoryClient,
    todo: Vec<Part>,
    state: &mut ScanProgress,
    progress: &dyn Fn(&str, u64),
) -> Result<(), ScanError> {
    let started = state.started;
    // Shared by the parts listed side by side (one task: never borrowed at once).
    let seen = std::cell::RefCell::new(Sightings::default());
    let mut listed = futures_util::stream::iter(todo)
        .map(|part| list_part(store, client, part, started, &seen, progress))
        .buffer_unordered(PARTS_AT_ONCE);
    let mut failed = None;
    while let Some(outcome) = listed.next().await {
        match outcome {
            Ok((part, found)) => {
                state.done.insert(part.name(), found);
                // The part is recorded with all it saw (and what other parts saw so far).
                let mut changes = store.changes(false);
                seen.borrow_mut().write_run(&mut changes);
                remote::set_scan_progress(&mut changes, Some(state));
                changes.commit()?;
                tracing::debug!(part = %part.name(), found, "part of the scan recorded");
            }
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    // Sightings not written belong to parts that failed: they are listed again.
    failed.map_or(Ok(()), Err)
}

/// A scan that found a domain shrunk is not believed: what it saw is recorded, nothing
/// forgotten, and the next one lists again from the start. The error to answer.
fn distrust(store: &Store, shrunk: ScanError) -> Result<ScanError, ScanError> {
    sightings::apply(store, None)?;
    sightings::clear(store)?;
    let mut changes = store.changes(false);
    remote::set_scan_progress(&mut changes, None);
    remote::set_distrusted(
        &mut changes,
        &remote::Distrusted {
            at: Timestamp::now(),
            reason: shrunk.to_string(),
        },
    );
    changes.commit()?;
    Ok(shrunk)
}

/// The record a scan whose parts are all listed will have (not yet finished): users by
/// domain, and by part for the domains listed in parts. Pure.
fn record_of(state: &ScanProgress) -> ScanRecord {
    let mut record = ScanRecord {
        id: state.id,
        started: Some(state.started),
        finished: None,
        users: Default::default(),
        parts: Default::default(),
        org_units: state.org_units,
    };
    for (name, found) in &state.done {
        if name.ends_with(" (deleted)") {
            continue;
        }
        let domain = name.split_once('/').map_or(name.as_str(), |(d, _)| d);
        *record.users.entry(domain.to_owned()).or_default() += found;
        if name.contains('/') {
            record.parts.insert(name.clone(), *found);
        }
    }
    record
}

/// The first domain (against the users known of it) or part (against the last scan) that
/// `record` found shrunk below `share` of what it held: such a scan is not believed. Pure.
fn shrunk(
    domains: &[String],
    known: &std::collections::BTreeMap<String, u64>,
    last: &ScanRecord,
    record: &ScanRecord,
    share: f64,
) -> Option<ScanError> {
    let of_domains = domains.iter().map(|d| {
        (
            d.clone(),
            known.get(d).copied().unwrap_or(0),
            record.users.get(d).copied().unwrap_or(0),
        )
    });
    let of_parts = record.parts.iter().filter_map(|(name, found)| {
        last.parts
            .get(name)
            .map(|before| (name.clone(), *before, *found))
    });
    of_domains
        .chain(of_parts)
        .find(|(_, before, found)| *before > 0 && (*found as f64) < *before as f64 * share)
        .map(|(part, before, found)| ScanError::Shrunk {
            part,
            found,
            before,
        })
}

/// Records the org units a scan listed, and releases what was held in quarantine for one
/// of them Google lacked (its create failed, or the accounts in it).
fn record_org_units<'p>(
    changes: &mut crate::store::Changes,
    paths: impl Iterator<Item = &'p str>,
    started: Timestamp,
) -> Result<(), StoreError> {
    let mut held: std::collections::HashMap<String, Vec<String>> = Default::default();
    for entry in audit::all_held(changes.store(), HeldList::Quarantine) {
        let entry = entry?;
        let lacking = match entry.org_unit {
            Some(path) => path,
            None if entry.subject.starts_with('/') => entry.subject.clone(),
            None => continue,
        };
        held.entry(lacking).or_default().push(entry.subject);
    }
    for path in paths {
        remote::record_org_unit(changes, path, started);
        for subject in held.get(path).into_iter().flatten() {
            audit::release(changes, HeldList::Quarantine, subject);
            tracing::info!(%subject, org_unit = %path, "the scan found the org unit: released");
        }
    }
    Ok(())
}

/// Lists one part into `seen` (written as a run whenever it is full); returns how many
/// users the part holds.
async fn list_part(
    store: &Store,
    client: &DirectoryClient,
    part: Part,
    started: Timestamp,
    seen: &std::cell::RefCell<Sightings>,
    progress: &dyn Fn(&str, u64),
) -> Result<(Part, u64), ScanError> {
    let query = part.prefix.as_ref().map(|p| format!("email:{p}*"));
    let mut pages = if part.deleted {
        client.list_deleted_users(&part.domain)
    } else {
        client.list_users_matching(&part.domain, query)
    };
    let mut found = 0u64;
    loop {
        let page = pages
            .next_page()
            .await
            .map_err(|failure| ScanError::Google {
                what: part.name(),
                failure,
            })?;
        let Some(users) = page else { break };
        let now = Timestamp::now().max(started);
        let mut seen = seen.borrow_mut();
        for user in &users {
            if part.deleted {
                seen.saw_deleted(user, now);
            } else {
                seen.saw(user, now);
                found += u64::from(part.counts(user));
            }
        }
        if seen.is_full() {
            let mut changes = store.changes(false);
            seen.write_run(&mut changes);
            changes.commit()?;
        }
        drop(seen);
        progress(&part.name(), found);
    }
    Ok((part, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_or_a_part_found_shrunk_is_not_believed() {
        let progress = |done: &[(&str, u64)]| ScanProgress {
            id: 2,
            done: done.iter().map(|(n, f)| (n.to_string(), *f)).collect(),
            ..ScanProgress::default()
        };
        let domains = vec!["sd.belajar.id".to_owned()];
        let known = [("sd.belajar.id".to_owned(), 1_000u64)]
            .into_iter()
            .collect();
        let last = record_of(&progress(&[
            ("sd.belajar.id/a", 500),
            ("sd.belajar.id/b", 500),
        ]));
        let whole = record_of(&progress(&[
            ("sd.belajar.id/a", 480),
            ("sd.belajar.id/b", 520),
            ("sd.belajar.id (deleted)", 7),
        ]));
        assert_eq!(
            whole.users["sd.belajar.id"], 1_000,
            "deleted users are not counted"
        );
        assert!(shrunk(&domains, &known, &last, &whole, 0.9).is_none());
        // The domain as a whole is fine; one of its parts lost most of its users.
        let part_lost = record_of(&progress(&[
            ("sd.belajar.id/a", 100),
            ("sd.belajar.id/b", 900),
        ]));
        assert!(matches!(
            shrunk(&domains, &known, &last, &part_lost, 0.9),
            Some(ScanError::Shrunk { part, found: 100, before: 500 }) if part == "sd.belajar.id/a"
        ));
        let domain_lost = record_of(&progress(&[("sd.belajar.id", 10)]));
        assert!(matches!(
            shrunk(&domains, &known, &last, &domain_lost, 0.9),
            Some(ScanError::Shrunk {
                found: 10,
                before: 1_000,
                ..
            })
        ));
    }

    #[test]
    fn small_domains_are_listed_whole_and_big_ones_in_parts_small_enough() {
        let names = |parts: Vec<Part>| parts.iter().map(Part::name).collect::<Vec<_>>();
        assert_eq!(
            names(parts("guru.sd.belajar.id", 200_000, 250_000)),
            ["guru.sd.belajar.id", "guru.sd.belajar.id (deleted)"]
        );
        let big = parts("sd.belajar.id", 24_000_000, 250_000);
        assert_eq!(big.len(), 36 * 36 + 1);
        assert_eq!(big[0].name(), "sd.belajar.id/aa");
        assert_eq!(parts("smp.belajar.id", 5_000_000, 250_000).len(), 37);
        let part = &big[1];
        let user = |email: &str| User {
            primary_email: Some(email.into()),
            ..User::default()
        };
        assert!(part.counts(&user("AB.siti@sd.belajar.id")));
        assert!(
            !part.counts(&user("siti@sd.belajar.id")),
            "found by an alias"
        );
    }
}
