//! `belajar-sync list`: the accounts of the directory, one per row, filtered by school,
//! state, role or level (what `gam print users` gives a Workspace admin). Streamed: a row
//! is written as it is read, so memory stays flat on a million accounts.

use super::Failure;
use super::inspect::parse_jenjang;
use super::session::Session;
use crate::directory::model::{Account, DesiredState, Jenjang, Role};
use crate::planner::suspension_day;
use crate::store::StoreError;
use serde::Serialize;
use std::io::Write;

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only the accounts of this school (NPSN).
    #[arg(long, value_name = "NPSN")]
    pub school: Option<String>,
    /// Only accounts in this state.
    #[arg(long, value_enum)]
    pub state: Option<StateFilter>,
    /// Only accounts with this role: peserta_didik, pendidik, tenaga_kependidikan,
    /// operator, kepala_sekolah.
    #[arg(long, value_parser = parse_role)]
    pub role: Option<Role>,
    /// Only accounts of this level: paud, sd, smp, sma, smk, slb.
    #[arg(long, value_parser = parse_jenjang)]
    pub jenjang: Option<Jenjang>,
    /// CSV with a header, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = ListFormat::Csv)]
    pub format: ListFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateFilter {
    Active,
    Retiring,
    Suspended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Csv,
    Jsonl,
}

pub fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| format!("expected one of {}", Role::names()))
}

/// One row of the list.
#[derive(Debug, Serialize)]
struct Row<'a> {
    account: String,
    email: &'a str,
    person: String,
    name: &'a str,
    role: Role,
    jenjang: Jenjang,
    school: &'a str,
    state: &'static str,
    /// Since when the account retires or is suspended.
    since: Option<jiff::civil::Date>,
    /// The day a retiring account is suspended.
    suspend_on: Option<jiff::civil::Date>,
    /// Why a suspended account is.
    reason: Option<&'a str>,
    /// Google's id of the linked user (empty: not linked yet).
    google_id: Option<&'a str>,
}

impl ListArgs {
    fn wants(&self, account: &Account) -> bool {
        let state = match account.state {
            DesiredState::Active => StateFilter::Active,
            DesiredState::Retiring { .. } => StateFilter::Retiring,
            DesiredState::Suspended { .. } => StateFilter::Suspended,
        };
        self.state.is_none_or(|s| s == state)
            && self.role.is_none_or(|r| r == account.role)
            && self.jenjang.is_none_or(|j| j == account.jenjang)
            && self
                .school
                .as_deref()
                .is_none_or(|n| n.trim() == account.npsn)
    }
}

/// Where rows go.
enum Sink<'w> {
    Csv(Box<csv::Writer<&'w mut dyn Write>>),
    Jsonl(&'w mut dyn Write),
}

impl Sink<'_> {
    fn write(&mut self, row: &Row) -> std::io::Result<()> {
        match self {
            Sink::Csv(csv) => csv.serialize(row).map_err(|e| match e.into_kind() {
                csv::ErrorKind::Io(e) => e,
                other => std::io::Error::other(format!("{other:?}")),
            }),
            Sink::Jsonl(out) => {
                serde_json::to_writer(&mut *out, row)?;
                out.write_all(b"\n")
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Csv(csv) => csv.flush(),
            Sink::Jsonl(out) => out.flush(),
        }
    }
}

pub fn run(s: &mut Session, args: &ListArgs) -> Result<u8, Failure> {
    let grace_days = s.config.lifecycle.grace_days;
    let store = s.store;
    // One school: its index; otherwise every account, in key order.
    let accounts: Box<dyn Iterator<Item = Result<Account, StoreError>>> = match &args.school {
        Some(npsn) => {
            let members = store.school_members(npsn.trim())?;
            if members.is_empty() {
                return Err(Failure::BadInput(format!(
                    "no accounts of school {:?} in the directory (`belajar-sync report school --all` lists the schools)",
                    npsn.trim()
                )));
            }
            Box::new(
                members
                    .into_iter()
                    .filter_map(move |key| store.account(&key).transpose()),
            )
        }
        None => Box::new(store.accounts()),
    };
    let mut sink = match args.format {
        ListFormat::Csv => Sink::Csv(Box::new(csv::Writer::from_writer(&mut *s.out))),
        ListFormat::Jsonl => Sink::Jsonl(&mut *s.out),
    };
    for account in accounts {
        let account = account?;
        if !args.wants(&account) {
            continue;
        }
        if let Err(e) = sink.write(&Row::of(&account, grace_days)) {
            return gone_or_failed(e);
        }
    }
    match sink.flush() {
        Ok(()) => Ok(0),
        Err(e) => gone_or_failed(e),
    }
}

/// A reader that went away (`| head`, a client that hung up) ends the list quietly.
fn gone_or_failed(e: std::io::Error) -> Result<u8, Failure> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(0)
    } else {
        Err(Failure::Runtime(format!("cannot write the list: {e}")))
    }
}

impl<'a> Row<'a> {
    fn of(account: &'a Account, grace_days: u32) -> Row<'a> {
        let (since, reason) = match &account.state {
            DesiredState::Active => (None, None),
            DesiredState::Retiring { since } => (Some(*since), None),
            DesiredState::Suspended { since, reason } => (Some(*since), Some(reason.as_str())),
        };
        Row {
            account: account.key().to_string(),
            email: &account.email,
            person: format!("{}:{}", account.id_type, account.id),
            name: &account.full_name,
            role: account.role,
            jenjang: account.jenjang,
            school: &account.npsn,
            state: account.state.name(),
            since,
            suspend_on: match account.state {
                DesiredState::Retiring { since } => Some(suspension_day(since, grace_days)),
                _ => None,
            },
            reason,
            google_id: account.google.as_ref().map(|g| g.id.as_str()),
        }
    }
}
