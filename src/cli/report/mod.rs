//! Reports over the directory: `report activation` (how many active accounts of each
//! school have ever been signed into, worst schools first: the programme's measure of
//! success), `report school` (one school in detail, or every school ranked) and `report
//! licences`.

mod html;
pub mod licences;
mod school;

use super::Failure;
use super::session::{Session, say};
use crate::access::{self, Access};
use crate::directory::model::{Account, DesiredState};
use crate::store::StoreError;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub kind: ReportKind,
}

#[derive(Debug, clap::Subcommand)]
pub enum ReportKind {
    /// Per school: active accounts, how many were ever signed into, how many never, and
    /// the share, worst schools first. Sign-ins are what the last scan (or any read of a
    /// user) saw.
    Activation(ActivationArgs),
    /// Per school: accounts by role and state, signed in and never signed in, retiring
    /// accounts with the day they are suspended, accounts held for a person with why, and
    /// the last change. One school (NPSN) in detail, or --all ranked: most held first,
    /// then the lowest share signed in.
    School(school::SchoolArgs),
    /// Licences (with [licences] enabled): per SKU, the accounts known to hold it, those
    /// waiting because Google has none left, and the Fundamentals licences archiving freed
    /// in the last 24 hours; per school, active accounts without a licence; a forecast of
    /// the licences the leavers now retiring free against the new accounts that need one.
    Licences(licences::LicencesArgs),
}

#[derive(Debug, clap::Args)]
pub struct ActivationArgs {
    /// Only this school (NPSN).
    #[arg(long, value_name = "NPSN")]
    pub school: Option<String>,
    /// One JSON object per school.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// CSV, one row per school.
    #[arg(long)]
    pub csv: bool,
}

/// The activation of one school.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct School {
    pub npsn: String,
    pub active: u64,
    pub signed_in: u64,
    pub never_signed_in: u64,
    /// Signed in / active, 0 to 1.
    pub share: f64,
}

pub fn run(s: &mut Session, args: &ReportArgs) -> Result<u8, Failure> {
    match &args.kind {
        ReportKind::Activation(args) => activation(s, args),
        ReportKind::School(args) => school::run(s, args),
        ReportKind::Licences(args) => licences::run(s, args),
    }
}

fn activation(s: &mut Session, args: &ActivationArgs) -> Result<u8, Failure> {
    let mut schools: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut count = |account: &Account, access: Option<&Access>| {
        if account.state == DesiredState::Active {
            let school = schools.entry(account.npsn.clone()).or_default();
            school.0 += 1;
            school.1 += u64::from(access.is_some_and(Access::signed_in));
        }
    };
    match &args.school {
        Some(npsn) => {
            let members = s.store.school_members(npsn.trim())?;
            if members.is_empty() {
                return Err(Failure::BadInput(format!(
                    "no accounts of school {npsn:?} in the directory"
                )));
            }
            for key in members {
                if let Some(account) = s.store.account(&key)? {
                    count(&account, access::of(s.store, &key)?.as_ref());
                }
            }
        }
        None => each_with_access(s, &mut count)?,
    }
    let mut rows: Vec<School> = schools
        .into_iter()
        .map(|(npsn, (active, signed_in))| School {
            npsn,
            active,
            signed_in,
            never_signed_in: active - signed_in,
            share: if active == 0 {
                0.0
            } else {
                signed_in as f64 / active as f64
            },
        })
        .collect();
    rows.sort_by(|a, b| {
        a.share
            .total_cmp(&b.share)
            .then(b.active.cmp(&a.active))
            .then(a.npsn.cmp(&b.npsn))
    });
    print(s, args, &rows);
    Ok(0)
}

/// Walks every account with its access record: both keyspaces are in account key order,
/// so one pass over each side by side (memory stays flat).
fn each_with_access(
    s: &Session,
    mut visit: impl FnMut(&Account, Option<&Access>),
) -> Result<(), StoreError> {
    let mut records = Joined::new(access::all(s.store));
    for account in s.store.accounts() {
        let account = account?;
        let found = records.last_for(&account.key().to_string())?;
        visit(&account, found.as_ref());
    }
    Ok(())
}

/// Records keyed by account, read beside the accounts: both in account key order, so
/// the records of each account are found by walking forward (memory stays flat).
pub struct Joined<I: Iterator> {
    records: std::iter::Peekable<I>,
}

impl<T, I: Iterator<Item = Result<(String, T), StoreError>>> Joined<I> {
    pub fn new(records: I) -> Self {
        Joined {
            records: records.peekable(),
        }
    }

    /// The last record of `key` (accounts asked for in key order), skipping the records
    /// of keys before it.
    pub fn last_for(&mut self, key: &str) -> Result<Option<T>, StoreError> {
        let mut found = None;
        while let Some(entry) = self.records.peek() {
            match entry {
                Ok((k, _)) if k.as_str() < key => {
                    self.records.next();
                }
                Ok((k, _)) if k == key => {
                    found = self.records.next().transpose()?.map(|(_, t)| t);
                }
                Ok(_) => break,
                Err(_) => {
                    return match self.records.next() {
                        Some(Err(e)) => Err(e),
                        _ => unreachable!("peeked an error"),
                    };
                }
            }
        }
        Ok(found)
    }
}

fn print(s: &mut Session, args: &ActivationArgs, rows: &[School]) {
    if args.json {
        for row in rows {
            say!(
                s.out,
                "{}",
                serde_json::to_string(row).expect("rows serialise")
            );
        }
        return;
    }
    if args.csv {
        say!(s.out, "npsn,active,signed_in,never_signed_in,share");
        for r in rows {
            say!(
                s.out,
                "{},{},{},{},{:.4}",
                r.npsn,
                r.active,
                r.signed_in,
                r.never_signed_in,
                r.share
            );
        }
        return;
    }
    say!(
        s.out,
        "{:<10}{:>10}{:>11}{:>9}{:>8}",
        "school",
        "active",
        "signed in",
        "never",
        "share"
    );
    let (mut active, mut signed_in) = (0, 0);
    for r in rows {
        active += r.active;
        signed_in += r.signed_in;
        say!(
            s.out,
            "{:<10}{:>10}{:>11}{:>9}{:>7.1}%",
            r.npsn,
            r.active,
            r.signed_in,
            r.never_signed_in,
            r.share * 100.0
        );
    }
    if rows.len() > 1 {
        let share = if active == 0 {
            0.0
        } else {
            signed_in as f64 * 100.0 / active as f64
        };
        say!(
            s.out,
            "{:<10}{:>10}{:>11}{:>9}{:>7.1}%",
            "all",
            active,
            signed_in,
            active - signed_in,
            share
        );
    }
}
