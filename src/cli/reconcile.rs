//! `plan`, `sync`, `resync`, `suspend` and `reinstate`: the reconciler's commands.

use super::inspect::{AccountArgs, parse_jenjang, resolve};
use super::{Cli, Failure, open_store};
use crate::config::Config;
use crate::directory::model::Jenjang;
use crate::directory::store::Store;
use crate::google::DirectoryClient;
use crate::planner::{self, Asker, Context, Outcome};
use crate::reconciler::repair::{self, Report};
use crate::reconciler::{self, Mode, PlanLine, Suspensions, SyncOptions, SyncReport, Totals};
use crate::remote;
use std::io::{BufRead, BufWriter, Seek, Write};
use std::process::ExitCode;

/// Exit code when accounts wait for a person (conflict, quarantine) or for Google.
pub const EXIT_PERSON: u8 = 3;

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Only these accounts (key, address or person id); all when none is given.
    pub accounts: Vec<String>,
    /// The level, when a person id has accounts on several.
    #[arg(long, value_parser = parse_jenjang)]
    pub jenjang: Option<Jenjang>,
    /// Plan as of this day (YYYY-MM-DD) instead of today: shows which grace periods will
    /// have ended.
    #[arg(long)]
    pub on: Option<jiff::civil::Date>,
    /// Counts as one JSON object, then one JSON object per action.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Scan Google first (done anyway when no scan has run yet).
    #[arg(long)]
    pub scan: bool,
    /// Release the mass-suspension guard for this run.
    #[arg(long)]
    pub allow_mass_suspend: bool,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct SuspendArgs {
    #[command(flatten)]
    pub target: AccountArgs,
    /// Why (kept in the directory and the audit), e.g. "commercial use: crypto mining".
    #[arg(long)]
    pub reason: String,
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Runtime::new().map_err(|e| Failure::Runtime(format!("cannot start: {e}")))
}

async fn client(config: &Config) -> Result<DirectoryClient, Failure> {
    DirectoryClient::new(&config.google)
        .await
        .map_err(|e| Failure::BadInput(e.to_string()))
}

/// `plan`: what a sync would do now, from what was last observed; nothing is written.
pub fn plan(config: &Config, args: &PlanArgs) -> Result<ExitCode, Failure> {
    let store = open_store(config)?;
    let today = args.on.unwrap_or_else(reconciler::today);
    if !args.accounts.is_empty() {
        return plan_accounts(&store, config, args, today);
    }
    // Lines go to a temporary file so that the counts can come first with flat memory.
    let spool = tempfile::tempfile().map_err(|e| Failure::Runtime(format!("temp file: {e}")))?;
    let mut out = BufWriter::new(spool);
    let mut failed = None;
    let (totals, guard) = reconciler::enqueue(&store, config, today, Mode::DryRun, |line| {
        if let Err(e) = writeln!(
            out,
            "{}",
            serde_json::to_string(&line).expect("lines serialise")
        ) {
            failed.get_or_insert(e);
        }
    })?;
    let mut spool = out
        .into_inner()
        .map_err(|e| Failure::Runtime(format!("temp file: {e}")))?;
    if let Some(e) = failed {
        return Err(Failure::Runtime(format!("temp file: {e}")));
    }
    spool
        .rewind()
        .map_err(|e| Failure::Runtime(format!("temp file: {e}")))?;
    let scan = remote::last_scan(&store)?;
    if args.json {
        let counts = serde_json::json!({
            "plan": totals,
            "on": today,
            "last_scan": scan.finished,
            "guard": guard,
        });
        println!("{counts}");
    } else {
        print_totals(&totals, today, scan.finished);
        if let Some(held) = &guard {
            println!(
                "guard      would hold {} suspensions: {}",
                held.suspensions, held.reason
            );
        }
    }
    let stdout = std::io::stdout();
    let mut stdout = stdout.lock();
    for line in std::io::BufReader::new(spool).lines() {
        let line = line.map_err(|e| Failure::Runtime(format!("temp file: {e}")))?;
        let result = if args.json {
            writeln!(stdout, "{line}")
        } else {
            let line: PlanLine = serde_json::from_str(&line).expect("written above");
            writeln!(stdout, "{}", text_line(&line))
        };
        if result.is_err() {
            break; // the reader went away (a pager closed): nothing more to say
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn plan_accounts(
    store: &Store,
    config: &Config,
    args: &PlanArgs,
    today: jiff::civil::Date,
) -> Result<ExitCode, Failure> {
    let ctx = Context {
        today,
        grace_days: config.lifecycle.grace_days,
        sync: &config.sync,
        asker: Asker::Schedule,
    };
    for text in &args.accounts {
        let account = resolve(store, text, args.jenjang)?;
        let marked = remote::marked_users(store, &account.key())?;
        let seen = remote::seen(&store.changes(true), &account, marked)?;
        let decision = planner::plan(&account, &seen, &ctx);
        let key = account.key().to_string();
        let line = match &decision.outcome {
            Outcome::InStep => PlanLine {
                account: key,
                action: "in_step".into(),
                email: account.email.clone(),
                fields: vec![],
                reason: "Google matches the directory (as last observed)".into(),
            },
            Outcome::Conflict(reason) => PlanLine {
                account: key,
                action: "conflict".into(),
                email: account.email.clone(),
                fields: vec![],
                reason: reason.clone(),
            },
            Outcome::Act(action) => PlanLine {
                account: key,
                action: action.kind.as_str().into(),
                email: account.email.clone(),
                fields: action.fields.clone(),
                reason: action.reason.clone(),
            },
        };
        if args.json {
            let mut value = serde_json::to_value(&line).expect("lines serialise");
            value["problems"] = serde_json::json!(decision.problems);
            println!("{value}");
        } else {
            println!("{}", text_line(&line));
            for problem in &decision.problems {
                println!("    wrong: {problem}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn text_line(line: &PlanLine) -> String {
    let fields = if line.fields.is_empty() {
        String::new()
    } else {
        format!(" [{}]", line.fields.join(", "))
    };
    format!(
        "{:<16}{:<28}{}{}: {}",
        line.action, line.account, line.email, fields, line.reason
    )
}

fn print_totals(totals: &Totals, today: jiff::civil::Date, scan: Option<jiff::Timestamp>) {
    let last_scan = scan.map_or_else(|| "never".to_owned(), |t| t.to_string());
    println!(
        "plan on {today} (last scan of Google: {last_scan}): {} accounts, {} in step",
        totals.accounts, totals.in_step
    );
    for (action, n) in &totals.actions {
        println!("  {action:<16}{n}");
    }
    for (label, n) in [
        ("create_org_unit", totals.org_units),
        ("conflict", totals.conflicts),
        ("orphan", totals.orphans),
        ("relinked here", totals.relinked),
        ("already queued", totals.waiting),
        ("quarantined", totals.quarantined),
    ] {
        if n > 0 {
            println!("  {label:<16}{n}");
        }
    }
}

/// `sync`: one full pass.
pub fn sync(cli: &Cli, config: &Config, args: &SyncArgs) -> Result<ExitCode, Failure> {
    let store = open_store(config)?;
    let options = SyncOptions {
        scan: args.scan,
        suspensions: if args.allow_mass_suspend {
            Suspensions::Allowed
        } else {
            Suspensions::Guarded
        },
        max_wait: std::time::Duration::from_secs(5 * 60),
        control: None,
    };
    let quiet = cli.quiet || args.json;
    let report = runtime()?.block_on(async {
        let client = client(config).await?;
        reconciler::sync(
            &store,
            &client,
            config,
            reconciler::today(),
            options,
            |phase| {
                if !quiet {
                    eprintln!("{phase}");
                }
            },
        )
        .await
        .map_err(|e| Failure::Runtime(e.to_string()))
    })?;
    print_as(args.json, &report, print_sync);
    Ok(ExitCode::from(report.exit_code()))
}

/// Prints `report` as one JSON object, or for people.
fn print_as<T: serde::Serialize>(json: bool, report: &T, for_people: fn(&T)) {
    if json {
        println!(
            "{}",
            serde_json::to_string(report).expect("reports serialise")
        );
    } else {
        for_people(report);
    }
}

pub(super) fn print_sync(report: &SyncReport) {
    if let Some(reason) = &report.distrusted {
        println!("NOT SYNCED: {reason}");
        return;
    }
    if let Some(scan) = &report.scan {
        println!(
            "scanned    {} users in {} domains, {} org units ({:.1}s)",
            scan.users.values().sum::<u64>(),
            scan.users.len(),
            scan.org_units,
            scan.seconds().unwrap_or(0.0)
        );
    }
    let plan = &report.plan;
    println!(
        "planned    {} accounts: {} in step, {} to change, {} conflicts",
        plan.accounts,
        plan.in_step,
        plan.actions.values().sum::<u64>(),
        plan.conflicts + plan.orphans
    );
    let done: Vec<String> = report
        .done
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    println!(
        "done       {}",
        if done.is_empty() {
            "nothing to do".to_owned()
        } else {
            done.join(", ")
        }
    );
    if let Some(held) = &report.guard {
        println!(
            "GUARD HELD {} suspensions were not made: {}. Check the last export; if they are meant, run `belajar-sync sync --allow-mass-suspend`",
            held.suspensions, held.reason
        );
    }
    if report.left_in_journal > 0 {
        println!(
            "waiting    {} actions wait for Google (a user still settling): the next run finishes them",
            report.left_in_journal
        );
    }
    if report.conflicts + report.quarantine > 0 {
        println!(
            "held       {} conflicts and {} quarantined accounts need a person: see `belajar-sync status`",
            report.conflicts, report.quarantine
        );
    }
}

/// Which repair a person asked for.
enum Repair<'a> {
    Resync,
    Suspend(&'a str),
    Reinstate,
}

/// `resync`: repair one account now.
pub fn resync(config: &Config, args: &AccountArgs) -> Result<ExitCode, Failure> {
    repair_command(config, args, Repair::Resync)
}

/// `suspend`: suspend one account here and in Google.
pub fn suspend(config: &Config, args: &SuspendArgs) -> Result<ExitCode, Failure> {
    let reason = args.reason.trim();
    if reason.is_empty() {
        return Err(Failure::BadInput(
            "--reason is empty: say why the account is suspended (it is kept in the audit)".into(),
        ));
    }
    repair_command(config, &args.target, Repair::Suspend(reason))
}

/// `reinstate`: make one account active again here and in Google.
pub fn reinstate(config: &Config, args: &AccountArgs) -> Result<ExitCode, Failure> {
    repair_command(config, args, Repair::Reinstate)
}

fn repair_command(
    config: &Config,
    args: &AccountArgs,
    repair: Repair,
) -> Result<ExitCode, Failure> {
    let store = open_store(config)?;
    let account = resolve(&store, &args.account, args.jenjang)?;
    let today = reconciler::today();
    let report = runtime()?.block_on(async {
        let client = client(config).await?;
        match repair {
            Repair::Resync => repair::resync(&store, &client, config, &account, today).await,
            Repair::Suspend(reason) => {
                repair::suspend(&store, &client, config, &account, reason, today).await
            }
            Repair::Reinstate => repair::reinstate(&store, &client, config, &account, today).await,
        }
        .map_err(|e| Failure::Runtime(e.to_string()))
    })?;
    print_as(args.json, &report, print_report);
    Ok(if report.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_PERSON)
    })
}

pub(super) fn print_report(report: &Report) {
    println!("account    {} ({})", report.account, report.email);
    let sections = [
        ("observed", &report.observed),
        ("wrong", &report.problems),
        ("sent", &report.sent),
        ("google", &report.answers),
        ("after", &report.after),
    ];
    for (label, lines) in sections {
        if lines.is_empty() && label == "wrong" {
            println!("{label:<11}nothing");
        }
        for line in lines {
            println!("{label:<11}{line}");
        }
    }
    match &report.to_do {
        None => println!("result     healthy: Google matches the directory"),
        Some(to_do) => println!("result     NEEDS A PERSON: {to_do}"),
    }
}
