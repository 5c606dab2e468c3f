//! `report school`: per school, its accounts by role and state, how many were signed
//! into, who retires and when, who is held for a person and why, and when anything of it
//! last changed. One school in detail, or every school ranked (most held, then worst
//! activation, first) with one pass over the store (memory grows with the number of
//! schools, not of accounts).

use super::{Joined, html};
use crate::access::{self, Access};
use crate::audit::{self, HeldList};
use crate::cli::Failure;
use crate::cli::session::{Session, say};
use crate::directory::model::{Account, DesiredState, Role};
use crate::display;
use crate::planner::suspension_day;
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, clap::Args)]
pub struct SchoolArgs {
    /// The school (NPSN, 8 digits).
    #[arg(
        value_name = "NPSN",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub npsn: Option<String>,
    /// Every school, most held accounts first, then the worst activation.
    #[arg(long)]
    pub all: bool,
    /// `table` for people; `csv` (one row per school) and `json` for tools; `html`, one
    /// self-contained page with a chart, for sharing.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Html,
}

/// Accounts of one role (or of the school) by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct States {
    pub active: u64,
    pub retiring: u64,
    pub suspended: u64,
}

impl States {
    fn add(&mut self, state: &DesiredState) {
        match state {
            DesiredState::Active => self.active += 1,
            DesiredState::Retiring { .. } => self.retiring += 1,
            DesiredState::Suspended { .. } => self.suspended += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.active + self.retiring + self.suspended
    }
}

/// A retiring account of the school.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Retiring {
    pub account: String,
    pub email: String,
    pub name: String,
    pub suspend_on: Date,
}

/// An account of the school held for a person.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Held {
    pub account: String,
    pub email: String,
    /// `quarantine` (a permanent failure) or `conflict` (a machine must not decide).
    pub list: &'static str,
    pub reason: String,
}

/// The figures of one school.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct School {
    pub npsn: String,
    pub accounts: States,
    /// By role, in the order of [`Role`] (roles without accounts left out).
    pub roles: BTreeMap<&'static str, States>,
    /// Active accounts whose Google user was ever seen signed into.
    pub signed_in: u64,
    pub never_signed_in: u64,
    /// Signed in / active, 0 to 1.
    pub activation: f64,
    pub held: u64,
    /// With licences managed: active accounts in Google not known to hold a licence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub without_licence: Option<u64>,
    /// The first day one of its retiring accounts is suspended.
    pub next_suspension: Option<Date>,
    /// The last change recorded in the history of one of its accounts.
    pub last_change: Option<Timestamp>,
    /// With one school: its retiring accounts, first suspended first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retiring: Vec<Retiring>,
    /// With one school: its held accounts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held_accounts: Vec<Held>,
}

/// What is known of one account beside its record.
struct Seen<'a> {
    access: Option<&'a Access>,
    last_change: Option<Timestamp>,
    held: Option<(&'static str, String)>,
}

impl School {
    fn add(&mut self, account: &Account, seen: Seen, grace_days: u32, detail: bool) {
        self.accounts.add(&account.state);
        self.roles
            .entry(account.role.as_str())
            .or_default()
            .add(&account.state);
        if account.state == DesiredState::Active {
            if account.google.as_ref().is_some_and(|g| g.licence.is_none()) {
                *self.without_licence.get_or_insert(0) += 1;
            }
            if seen.access.is_some_and(Access::signed_in) {
                self.signed_in += 1;
            } else {
                self.never_signed_in += 1;
            }
        }
        if let DesiredState::Retiring { since } = account.state {
            let day = suspension_day(since, grace_days);
            self.next_suspension = Some(self.next_suspension.map_or(day, |d| d.min(day)));
            if detail {
                self.retiring.push(Retiring {
                    account: account.key().to_string(),
                    email: account.email.clone(),
                    name: account.full_name.clone(),
                    suspend_on: day,
                });
            }
        }
        self.last_change = self.last_change.max(seen.last_change);
        if let Some((list, reason)) = seen.held {
            self.held += 1;
            if detail {
                self.held_accounts.push(Held {
                    account: account.key().to_string(),
                    email: account.email.clone(),
                    list,
                    reason,
                });
            }
        }
    }

    fn finish(&mut self) {
        let active = self.signed_in + self.never_signed_in;
        self.activation = if active == 0 {
            0.0
        } else {
            self.signed_in as f64 / active as f64
        };
        self.retiring
            .sort_by(|a, b| a.suspend_on.cmp(&b.suspend_on).then(a.email.cmp(&b.email)));
    }
}

pub fn run(s: &mut Session, args: &SchoolArgs) -> Result<u8, Failure> {
    let grace_days = s.config.lifecycle.grace_days;
    let store = s.store;
    let mut schools = match &args.npsn {
        Some(npsn) => {
            let npsn = npsn.trim();
            let members = store.school_members(npsn)?;
            if members.is_empty() {
                return Err(Failure::BadInput(format!(
                    "no accounts of school {npsn:?} in the directory (`belajar-sync report school --all` lists the schools)"
                )));
            }
            let mut school = School {
                npsn: npsn.to_owned(),
                ..School::default()
            };
            let reader = store.changes(true);
            for key in members {
                let Some(account) = store.account(&key)? else {
                    continue;
                };
                let subject = key.to_string();
                let held = match audit::held(&reader, HeldList::Quarantine, &subject)? {
                    Some(h) => Some(("quarantine", h.reason)),
                    None => audit::held(&reader, HeldList::Conflicts, &subject)?
                        .map(|h| ("conflict", h.reason)),
                };
                let access = access::of(store, &key)?;
                let seen = Seen {
                    access: access.as_ref(),
                    last_change: audit::history(store, &subject)?.last().map(|e| e.at),
                    held,
                };
                school.add(&account, seen, grace_days, true);
            }
            vec![school]
        }
        None => every_school(s, grace_days)?,
    };
    for school in &mut schools {
        school.finish();
        school.without_licence = match s.config.licences.enabled {
            true => Some(school.without_licence.unwrap_or(0)),
            false => None,
        };
    }
    // Most held first, then the worst activation, then the biggest.
    schools.sort_by(|a, b| {
        b.held
            .cmp(&a.held)
            .then(a.activation.total_cmp(&b.activation))
            .then(b.accounts.total().cmp(&a.accounts.total()))
            .then(a.npsn.cmp(&b.npsn))
    });
    let generated = Timestamp::now();
    // Sign-ins are as Google's users were last read.
    let scanned = crate::remote::last_scan(store)?.finished;
    match args.format {
        Format::Table if args.npsn.is_some() => detail_table(s, &schools[0], scanned),
        Format::Table => ranking_table(s, &schools, scanned),
        Format::Csv => csv(s, &schools)?,
        Format::Json if args.npsn.is_some() => say!(s.out, "{}", json(&schools[0])),
        Format::Json => say!(s.out, "{}", json(&schools)),
        Format::Html => {
            let page = html::page(&schools, generated, scanned, args.npsn.is_some());
            let _ = s.out.write_all(page.as_bytes());
        }
    }
    Ok(0)
}

/// Every school, from one walk over the accounts beside their access records and history.
fn every_school(s: &Session, grace_days: u32) -> Result<Vec<School>, Failure> {
    let store = s.store;
    // Held accounts are few: looked up by key.
    let mut held: HashMap<String, (&'static str, String)> = HashMap::new();
    for (list, name) in [
        (HeldList::Conflicts, "conflict"),
        (HeldList::Quarantine, "quarantine"),
    ] {
        for h in audit::all_held(store, list) {
            let h = h?;
            held.insert(h.subject, (name, h.reason));
        }
    }
    let mut access = Joined::new(access::all(store));
    let mut events = Joined::new(audit::account_event_times(store));
    let mut schools: HashMap<String, School> = HashMap::new();
    for account in store.accounts() {
        let account = account?;
        let key = account.key().to_string();
        let record = access.last_for(&key)?;
        let seen = Seen {
            access: record.as_ref(),
            last_change: events.last_for(&key)?,
            held: held.remove(&key),
        };
        schools
            .entry(account.npsn.clone())
            .or_insert_with(|| School {
                npsn: account.npsn.clone(),
                ..School::default()
            })
            .add(&account, seen, grace_days, false);
    }
    Ok(schools.into_values().collect())
}

fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("reports serialise")
}

pub(super) fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

fn date_or_dash(date: Option<Date>) -> String {
    date.map_or_else(|| "-".to_owned(), |d| d.to_string())
}

pub(super) fn time_or_never(at: Option<Timestamp>) -> String {
    at.map_or_else(|| "never".to_owned(), display::time)
}

fn detail_table(s: &mut Session, school: &School, scanned: Option<Timestamp>) {
    say!(
        s.out,
        "school {}: {}; last change {}",
        school.npsn,
        display::count(school.accounts.total(), "account", "accounts"),
        time_or_never(school.last_change)
    );
    say!(s.out, "");
    say!(
        s.out,
        "{:<22}{:>8}{:>10}{:>11}",
        "role",
        "active",
        "retiring",
        "suspended"
    );
    for role in Role::ALL {
        if let Some(st) = school.roles.get(role.as_str()) {
            say!(
                s.out,
                "{:<22}{:>8}{:>10}{:>11}",
                role.words(),
                st.active,
                st.retiring,
                st.suspended
            );
        }
    }
    let all = school.accounts;
    say!(
        s.out,
        "{:<22}{:>8}{:>10}{:>11}",
        "all",
        all.active,
        all.retiring,
        all.suspended
    );
    say!(s.out, "");
    say!(
        s.out,
        "signed in  {} of {} ({}); {} never signed in (as of the last scan of Google: {})",
        school.signed_in,
        display::count(all.active, "active account", "active accounts"),
        percent(school.activation),
        school.never_signed_in,
        time_or_never(scanned)
    );
    if let Some(n) = school.without_licence {
        say!(
            s.out,
            "licences   {} without a licence (`report licences` for the SKUs)",
            display::count(n, "active account", "active accounts")
        );
    }
    if school.retiring.is_empty() {
        say!(s.out, "retiring   none");
    } else {
        say!(
            s.out,
            "retiring   {}, suspended unless Dapodik lists them again:",
            display::count(school.retiring.len() as u64, "account", "accounts")
        );
        for r in &school.retiring {
            say!(
                s.out,
                "  {}  {:<36} {:<28} suspended on {}",
                r.account,
                r.email,
                r.name,
                r.suspend_on
            );
        }
    }
    if school.held_accounts.is_empty() {
        say!(s.out, "held       none");
    } else {
        say!(
            s.out,
            "held       {} for a person:",
            display::count(school.held_accounts.len() as u64, "account", "accounts")
        );
        for h in &school.held_accounts {
            say!(
                s.out,
                "  {}  {} ({}): {}",
                h.account,
                h.email,
                h.list,
                h.reason
            );
        }
    }
}

fn ranking_table(s: &mut Session, schools: &[School], scanned: Option<Timestamp>) {
    say!(
        s.out,
        "{:<10}{:>9}{:>8}{:>10}{:>11}{:>11}{:>6}  {:<17}{}",
        "school",
        "accounts",
        "active",
        "retiring",
        "suspended",
        "signed in",
        "held",
        "next suspension",
        "last change"
    );
    for school in schools {
        let st = school.accounts;
        say!(
            s.out,
            "{:<10}{:>9}{:>8}{:>10}{:>11}{:>11}{:>6}  {:<17}{}",
            school.npsn,
            st.total(),
            st.active,
            st.retiring,
            st.suspended,
            percent(school.activation),
            school.held,
            date_or_dash(school.next_suspension),
            time_or_never(school.last_change)
        );
    }
    say!(
        s.out,
        "{}; most held first, then the lowest share signed in (as of the last scan of Google: {})",
        display::count(schools.len() as u64, "school", "schools"),
        time_or_never(scanned)
    );
}

fn csv(s: &mut Session, schools: &[School]) -> Result<(), Failure> {
    let mut header = vec![
        "npsn".to_owned(),
        "accounts".into(),
        "active".into(),
        "retiring".into(),
        "suspended".into(),
    ];
    for role in Role::ALL {
        header.push(format!("{role}_active"));
        header.push(format!("{role}_retiring"));
        header.push(format!("{role}_suspended"));
    }
    header.extend(
        [
            "signed_in",
            "never_signed_in",
            "activation",
            "held",
            "next_suspension",
            "last_change",
        ]
        .map(str::to_owned),
    );
    let mut out = csv::Writer::from_writer(&mut *s.out);
    let mut write = || -> Result<(), csv::Error> {
        out.write_record(&header)?;
        for school in schools {
            let st = school.accounts;
            let mut row = vec![
                school.npsn.clone(),
                st.total().to_string(),
                st.active.to_string(),
                st.retiring.to_string(),
                st.suspended.to_string(),
            ];
            for role in Role::ALL {
                let r = school.roles.get(role.as_str()).copied().unwrap_or_default();
                row.extend([r.active, r.retiring, r.suspended].map(|n| n.to_string()));
            }
            row.extend([
                school.signed_in.to_string(),
                school.never_signed_in.to_string(),
                format!("{:.4}", school.activation),
                school.held.to_string(),
                school
                    .next_suspension
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                school.last_change.map(display::iso).unwrap_or_default(),
            ]);
            out.write_record(&row)?;
        }
        out.flush()?;
        Ok(())
    };
    match write() {
        Ok(()) => Ok(()),
        Err(e) if e.is_io_error() => Ok(()), // the reader went away
        Err(e) => Err(Failure::Runtime(format!("cannot write the report: {e}"))),
    }
}
