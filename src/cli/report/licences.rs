//! `report licences`: per SKU, the accounts known to hold it, those waiting for it
//! (Google has none left), and the licences freed by archiving in the last 24 hours (not
//! reusable yet); per school, active accounts without a licence; and a forecast for the
//! next school year: the licences the leavers now retiring will free, against the new
//! accounts the last import is creating. What Google's pools hold in all is not readable
//! through its API: "available" is known only when Google said none is left.

use super::super::Failure;
use super::super::session::{Session, say};
use crate::config::ARCHIVED_SKU;
use crate::directory::model::{Account, DesiredState};
use crate::display;
use crate::journal;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, clap::Args)]
pub struct LicencesArgs {
    /// One JSON object.
    #[arg(long)]
    pub json: bool,
}

/// One SKU as far as belajar-sync knows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sku {
    /// Accounts whose user is known to hold it.
    pub assigned: u64,
    /// Assignments waiting because Google has none left (then `available` is 0).
    pub waiting: u64,
    /// 0 when Google said none is left; unknown otherwise.
    pub available: Option<u64>,
    /// Fundamentals licences freed by archiving in the last 24 hours (Google makes them
    /// reusable within 24 hours): for the Fundamentals SKU.
    pub freed_last_24h: u64,
}

/// The whole report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub skus: BTreeMap<String, Sku>,
    /// Per school: active accounts in Google without a licence known.
    pub unlicensed_by_school: BTreeMap<String, u64>,
    pub forecast: Forecast,
}

/// The next school year.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Forecast {
    /// Retiring accounts holding a licence: freed once they are archived.
    pub leavers_will_free: u64,
    /// Active accounts not in Google yet: each needs a licence once created.
    pub new_accounts_need: u64,
    /// Licences waiting now.
    pub waiting_now: u64,
    /// Need minus what the leavers free (and nothing known to be available): when
    /// positive, the licences to ask Google for.
    pub short_by: i64,
}

pub fn run(s: &mut Session, args: &LicencesArgs) -> Result<u8, Failure> {
    let config = s.config;
    if !config.licences.enabled {
        return Err(Failure::BadInput(
            "licences are not managed in this configuration: set [licences] enabled = true (see config/example.toml)".into(),
        ));
    }
    let census = journal::census(s.store)?;
    let mut report = Report::default();
    let day_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24);
    for account in s.store.accounts() {
        count(&mut report, &account?, day_ago, &config.licences);
    }
    for (sku, waiting) in &census.licence_waits {
        let entry = report.skus.entry(sku.clone()).or_default();
        entry.waiting = *waiting;
        entry.available = Some(0);
    }
    let forecast = &mut report.forecast;
    forecast.waiting_now = census
        .licence_waits
        .iter()
        .filter(|(sku, _)| sku.as_str() != ARCHIVED_SKU)
        .map(|(_, n)| n)
        .sum();
    forecast.short_by = (forecast.new_accounts_need + forecast.waiting_now) as i64
        - forecast.leavers_will_free as i64;
    print(s, args, &report);
    Ok(0)
}

/// Adds `account` to the report.
fn count(
    report: &mut Report,
    account: &Account,
    day_ago: jiff::Timestamp,
    licences: &crate::config::Licences,
) {
    let Some(link) = &account.google else {
        if account.state == DesiredState::Active {
            report.forecast.new_accounts_need += 1;
        }
        return;
    };
    if let Some(sku) = &link.licence {
        report.skus.entry(sku.clone()).or_default().assigned += 1;
    }
    if link.licence_freed.is_some_and(|at| at > day_ago) {
        let fundamentals = licences.sku.clone();
        report.skus.entry(fundamentals).or_default().freed_last_24h += 1;
    }
    match &account.state {
        DesiredState::Active if link.licence.is_none() => {
            *report
                .unlicensed_by_school
                .entry(account.npsn.clone())
                .or_default() += 1;
        }
        DesiredState::Retiring { .. }
            if link.licence.as_deref().is_some_and(|s| s != ARCHIVED_SKU) =>
        {
            report.forecast.leavers_will_free += 1;
        }
        _ => {}
    }
}

fn print(s: &mut Session, args: &LicencesArgs, report: &Report) {
    if args.json {
        say!(
            s.out,
            "{}",
            serde_json::to_string(report).expect("the report serialises")
        );
        return;
    }
    say!(
        s.out,
        "{:<12}{:>10}{:>10}{:>11}{:>16}",
        "sku",
        "assigned",
        "waiting",
        "available",
        "freed (24 h)"
    );
    for (sku, row) in &report.skus {
        let available = row
            .available
            .map_or_else(|| "?".to_owned(), |n| n.to_string());
        say!(
            s.out,
            "{sku:<12}{:>10}{:>10}{available:>11}{:>16}",
            row.assigned,
            row.waiting,
            row.freed_last_24h
        );
    }
    let unlicensed: u64 = report.unlicensed_by_school.values().sum();
    say!(
        s.out,
        "without a licence: {unlicensed} active accounts in {} schools",
        report.unlicensed_by_school.len()
    );
    let mut worst: Vec<(&String, &u64)> = report.unlicensed_by_school.iter().collect();
    worst.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (npsn, n) in worst.into_iter().take(10) {
        say!(s.out, "  {npsn:<10}{n:>8}");
    }
    let f = &report.forecast;
    say!(
        s.out,
        "next school year: the leavers now retiring free {}; the new accounts of the last import need {}, and {} now",
        display::count(f.leavers_will_free, "licence", "licences"),
        f.new_accounts_need,
        display::count(f.waiting_now, "waits", "wait")
    );
    if f.short_by > 0 {
        say!(
            s.out,
            "  short by {} unless Google has that many free: archive more leavers or ask Google for more licences",
            f.short_by
        );
    }
}
