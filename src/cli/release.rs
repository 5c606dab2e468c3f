//! `release`: takes accounts and org units out of quarantine once an operator fixed what
//! made their action fail, so that the next sync tries them again.

use super::Failure;
use super::inspect::resolve;
use super::session::{Session, say};
use crate::audit::{self, HeldList};
use jiff::Timestamp;

#[derive(Debug, clap::Args)]
pub struct ReleaseArgs {
    /// Accounts (key, address or person id) or org unit paths (/student/sd/20100001) to
    /// release.
    pub subjects: Vec<String>,
    /// Every quarantined account and org unit.
    #[arg(long, conflicts_with = "subjects")]
    pub all_quarantined: bool,
}

pub fn release(s: &mut Session, args: &ReleaseArgs) -> Result<u8, Failure> {
    let subjects: Vec<String> = if args.all_quarantined {
        audit::all_held(s.store, HeldList::Quarantine)
            .map(|held| held.map(|h| h.subject))
            .collect::<Result<_, _>>()?
    } else if args.subjects.is_empty() {
        return Err(Failure::BadInput(
            "name the accounts or org units to release, or --all-quarantined".into(),
        ));
    } else {
        args.subjects
            .iter()
            .map(|text| match text.trim() {
                path if path.starts_with('/') => Ok(path.trim_end_matches('/').to_owned()),
                _ => resolve(s.store, text, None).map(|a| a.key().to_string()),
            })
            .collect::<Result<_, _>>()?
    };
    let now = Timestamp::now();
    let mut released = 0;
    for chunk in subjects.chunks(5_000) {
        let mut changes = s.store.changes(false);
        for subject in chunk {
            let Some(held) = audit::held(&changes, HeldList::Quarantine, subject)? else {
                say!(s.err, "{subject}: not in quarantine");
                continue;
            };
            audit::release(&mut changes, HeldList::Quarantine, subject);
            let line = format!(
                "released from quarantine by {} (was: {})",
                s.actor, held.reason
            );
            audit::log(&mut changes, subject, now, "local", line)?;
            released += 1;
        }
        changes.commit()?;
    }
    if let Some(daemon) = s.daemon {
        daemon.directory_changed();
    }
    say!(
        s.out,
        "released   {released} from quarantine: the next sync tries them again"
    );
    Ok(0)
}
