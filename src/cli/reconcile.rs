//! `plan`, `sync`, `resync`, `suspend` and `reinstate`: the reconciler's commands.

use super::Failure;
use super::inspect::{AccountArgs, parse_jenjang, resolve};
use super::session::{Session, say};
use crate::directory::model::Jenjang;
use crate::display::{count, duration, time};
use crate::executor::RunControl;
use crate::planner::{self, ActionKind, Asker, Context, Outcome};
use crate::reconciler::repair::{self, Report};
use crate::reconciler::{self, Mode, PlanLine, Suspensions, SyncOptions, SyncReport, Totals};
use crate::remote;
use std::io::{BufRead, BufWriter, Seek, Write};

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

/// `plan`: what a sync would do now, from what was last observed; nothing is written.
pub fn plan(s: &mut Session, args: &PlanArgs) -> Result<u8, Failure> {
    let (store, config) = (s.store, s.config);
    let today = args.on.unwrap_or_else(reconciler::today);
    if !args.accounts.is_empty() {
        return plan_accounts(s, args, today);
    }
    // Lines go to a temporary file so that the counts can come first with flat memory.
    let spool = tempfile::tempfile().map_err(|e| Failure::Runtime(format!("temp file: {e}")))?;
    let mut out = BufWriter::new(spool);
    let mut failed = None;
    let (totals, guard) = reconciler::enqueue(store, config, today, Mode::DryRun, |line| {
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
    let scan = remote::last_scan(store)?;
    if args.json {
        let counts = serde_json::json!({
            "plan": totals,
            "on": today,
            "last_scan": scan.finished,
            "guard": guard,
        });
        say!(s.out, "{counts}");
    } else {
        print_totals(s.out, &totals, today, scan.finished);
        let due: u64 = totals.notices_due.values().sum();
        if due > 0 {
            let kinds: Vec<String> = totals
                .notices_due
                .iter()
                .rev()
                .map(|(days, n)| format!("{n} {days}-day"))
                .collect();
            say!(
                s.out,
                "notices    {} due: {}{}",
                due,
                kinds.join(", "),
                if config.mail.enabled() {
                    " (sent by the next sync)"
                } else {
                    " (not sent: no mail relay is set in [mail])"
                }
            );
        }
        if let Some(held) = &guard {
            say!(
                s.out,
                "guard      would hold {}: {}",
                count(held.suspensions, "suspension", "suspensions"),
                held.reason
            );
        }
    }
    // (A write error is the reader gone, a pager closed: nothing more to say.)
    if args.json {
        let _ = std::io::copy(&mut spool, s.out);
        return Ok(0);
    }
    for line in std::io::BufReader::new(spool).lines() {
        let line = line.map_err(|e| Failure::Runtime(format!("temp file: {e}")))?;
        let line: PlanLine = serde_json::from_str(&line).expect("written above");
        if writeln!(s.out, "{}", text_line(&line)).is_err() {
            break;
        }
    }
    Ok(0)
}

fn plan_accounts(
    s: &mut Session,
    args: &PlanArgs,
    today: jiff::civil::Date,
) -> Result<u8, Failure> {
    let (store, config) = (s.store, s.config);
    let ctx = Context::new(config, today, Asker::Schedule);
    for text in &args.accounts {
        let account = resolve(store, text, args.jenjang)?;
        let marked = remote::marked_users(store, &account.key())?;
        let deleted = remote::deleted_users(store, &account.key())?;
        let seen = remote::seen(&store.changes(true), &account, marked, deleted)?;
        let decision = planner::plan(&account, &seen, &ctx);
        let key = account.key().to_string();
        let email = &account.email;
        let line = match &decision.outcome {
            Outcome::InStep => PlanLine::new(
                &key,
                "in step",
                email,
                &[],
                "Google matches the directory (as last observed)",
            ),
            Outcome::Conflict(reason) => PlanLine::new(&key, "conflict", email, &[], reason),
            Outcome::Act(action) => PlanLine::new(
                &key,
                action.kind.as_str(),
                email,
                &action.fields,
                &action.reason,
            ),
        };
        if args.json {
            let mut value = serde_json::to_value(&line).expect("lines serialise");
            value["problems"] = serde_json::json!(decision.problems);
            say!(s.out, "{value}");
        } else {
            say!(s.out, "{}", text_line(&line));
            for problem in &decision.problems {
                say!(s.out, "    wrong: {problem}");
            }
        }
    }
    Ok(0)
}

fn text_line(line: &PlanLine) -> String {
    let fields = if line.fields.is_empty() {
        String::new()
    } else {
        format!(" [{}]", line.fields.join(", "))
    };
    let action = action_words(&line.action);
    format!(
        "{:<16}{:<28}{}{}: {}",
        action, line.account, line.email, fields, line.reason
    )
}

/// An action's name (`create_org_unit`) in words (`create org unit`).
fn action_words(name: &str) -> String {
    ActionKind::parse(name).map_or_else(|| name.to_owned(), ActionKind::verb)
}

fn print_totals(
    out: &mut dyn Write,
    totals: &Totals,
    today: jiff::civil::Date,
    scan: Option<jiff::Timestamp>,
) {
    let last_scan = scan.map_or_else(|| "never".to_owned(), crate::display::time);
    say!(
        out,
        "plan on {today} (last scan of Google: {last_scan}): {}, {} in step",
        count(totals.accounts, "account", "accounts"),
        totals.in_step
    );
    for (action, n) in &totals.actions {
        let action = action_words(action);
        say!(out, "  {action:<16}{n}");
    }
    for (label, n) in [
        ("create org unit", totals.org_units),
        ("conflict", totals.conflicts),
        ("orphan", totals.orphans),
        ("relinked here", totals.relinked),
        ("already queued", totals.waiting),
        ("quarantined", totals.quarantined),
    ] {
        if n > 0 {
            say!(out, "  {label:<16}{n}");
        }
    }
}

/// `sync`: one full pass. In the daemon, it waits for the daemon's own round to end, and
/// its shutdown stops it between batches.
pub fn sync(s: &mut Session, args: &SyncArgs) -> Result<u8, Failure> {
    s.store.ensure_free_space(s.config.min_free_disk_mb << 20)?;
    let _round = match s.daemon {
        Some(daemon) => {
            let round = daemon.one_round(s.err);
            daemon.set_phase("syncing (asked through the control socket)");
            Some(round)
        }
        None => None,
    };
    // Run by hand, Ctrl-C stops between batches: what is in flight finishes, the rest stays
    // queued (a second Ctrl-C quits at once; the journal makes that safe too).
    let by_hand = RunControl::default();
    let options = SyncOptions {
        scan: args.scan,
        suspensions: if args.allow_mass_suspend {
            Suspensions::Allowed
        } else {
            Suspensions::Guarded
        },
        max_wait: std::time::Duration::from_secs(5 * 60),
        control: Some(s.daemon.map_or(&by_hand, |d| &*d.control)),
    };
    let direct = s.daemon.is_none();
    let phases = s.progress && !args.json;
    let (store, config, google, err) = (s.store, s.config, &s.google, &mut *s.err);
    let report = s.runtime.block_on(async {
        let client = google.client(config).await?;
        let sync = reconciler::sync(
            store,
            client,
            config,
            reconciler::today(),
            options,
            |phase| {
                if phases {
                    say!(err, "{phase}");
                }
            },
        );
        tokio::pin!(sync);
        let synced = tokio::select! {
            synced = &mut sync => synced,
            _ = tokio::signal::ctrl_c(), if direct => {
                eprintln!("stopping: calls in flight finish, the rest stays queued (Ctrl-C again quits at once)");
                by_hand.request_stop();
                tokio::spawn(async {
                    let _ = tokio::signal::ctrl_c().await;
                    std::process::exit(130);
                });
                sync.await
            }
        };
        // Said by `status` while no daemon runs (the daemon's status asks its own client).
        if direct {
            crate::remote::record_outage(store, client.circuit.outage().as_ref())?;
        }
        let mut report = synced.map_err(|e| {
            let queued = crate::journal::depth(store).map_or(0, |(depth, _)| depth);
            Failure::Runtime(format!(
                "{e}; {queued} actions stay queued in the journal for the next run"
            ))
        })?;
        if config.mail.enabled() && report.distrusted.is_none() {
            let deliver = crate::notices::deliver(store, config, reconciler::today(), None);
            tokio::pin!(deliver);
            report.notices = Some(tokio::select! {
                delivery = &mut deliver => delivery,
                // Ctrl-C: the message being handed over is not marked sent (the next run
                // sends it), nor are the rest.
                _ = tokio::signal::ctrl_c(), if direct => crate::notices::Delivery {
                    not_sent: Some("stopped (Ctrl-C)".into()),
                    ..Default::default()
                },
            });
        }
        Ok::<_, Failure>(report)
    })?;
    if let Some(daemon) = s.daemon {
        daemon.set_phase("idle");
    }
    let report = report?;
    print_as(s.out, args.json, &report, print_sync);
    // Notices stopped by the relay's settings or the store are a failure of the run (the
    // sync itself is done).
    let relay_unusable = report
        .notices
        .as_ref()
        .is_some_and(|n| n.not_sent.is_some());
    Ok(if relay_unusable {
        report.exit_code().max(1)
    } else {
        report.exit_code()
    })
}

/// Prints `report` as one JSON object, or for people.
pub(super) fn print_as<T: serde::Serialize>(
    out: &mut dyn Write,
    json: bool,
    report: &T,
    for_people: fn(&mut dyn Write, &T),
) {
    if json {
        say!(
            out,
            "{}",
            serde_json::to_string(report).expect("reports serialise")
        );
    } else {
        for_people(out, report);
    }
}

pub(super) fn print_sync(out: &mut dyn Write, report: &SyncReport) {
    if let Some(reason) = &report.distrusted {
        say!(out, "NOT SYNCED: {reason}");
        return;
    }
    if let Some(scan) = &report.scan {
        say!(
            out,
            "scanned    {} in {}, {} ({:.1}s)",
            count(scan.users.values().sum::<u64>(), "user", "users"),
            count(scan.users.len() as u64, "domain", "domains"),
            count(scan.org_units, "org unit", "org units"),
            scan.seconds().unwrap_or(0.0)
        );
    }
    if let Some(at) = report.view_from {
        say!(
            out,
            "google     as last scanned at {} ({} ago); `sync --scan` reads it afresh",
            time(at),
            duration(jiff::Timestamp::now().duration_since(at))
        );
    }
    let plan = &report.plan;
    say!(
        out,
        "planned    {}: {} in step, {} to change, {}",
        count(plan.accounts, "account", "accounts"),
        plan.in_step,
        plan.actions.values().sum::<u64>(),
        count(plan.conflicts + plan.orphans, "conflict", "conflicts")
    );
    let done: Vec<String> = report
        .done
        .iter()
        .map(|(k, n)| ActionKind::parse(k).map_or_else(|| format!("{n} {k}"), |k| k.done(*n)))
        .collect();
    say!(
        out,
        "done       {}",
        if done.is_empty() {
            "nothing to do".to_owned()
        } else {
            done.join(", ")
        }
    );
    if let Some(held) = &report.guard {
        say!(
            out,
            "GUARD HELD {} not made: {}. Check the last export; if they are meant, run `belajar-sync sync --allow-mass-suspend`",
            count(held.suspensions, "suspension was", "suspensions were"),
            held.reason
        );
    }
    for why in &report.waiting {
        say!(out, "waiting    {why}");
    }
    if report.left_in_journal > 0 && report.waiting.is_empty() {
        say!(
            out,
            "waiting    {} in the journal: the next run sends them",
            count(report.left_in_journal, "action waits", "actions wait")
        );
    }
    if report.conflicts + report.quarantine > 0 {
        say!(
            out,
            "held       {} and {} need a person: see `belajar-sync status`",
            count(report.conflicts, "conflict", "conflicts"),
            count(
                report.quarantine,
                "quarantined account",
                "quarantined accounts"
            )
        );
    }
    if let Some(reason) = report.notices.as_ref().and_then(|n| n.not_sent.as_ref()) {
        say!(
            out,
            "notices    NOT SENT: {reason} (they stay queued; the next sync sends them)"
        );
    } else if let Some(n) = &report.notices {
        say!(
            out,
            "notices    {} sent, {} failed{}",
            n.sent,
            n.failed,
            n.last_error
                .as_ref()
                .map(|e| format!(" (last: {e}); failed notices are tried again later"))
                .unwrap_or_default()
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
pub fn resync(s: &mut Session, args: &AccountArgs) -> Result<u8, Failure> {
    repair_command(s, args, Repair::Resync)
}

/// `suspend`: suspend one account here and in Google.
pub fn suspend(s: &mut Session, args: &SuspendArgs) -> Result<u8, Failure> {
    let reason = args.reason.trim();
    if reason.is_empty() {
        return Err(Failure::BadInput(
            "--reason is empty: say why the account is suspended (it is kept in the audit)".into(),
        ));
    }
    repair_command(s, &args.target, Repair::Suspend(reason))
}

/// `reinstate`: make one account active again here and in Google.
pub fn reinstate(s: &mut Session, args: &AccountArgs) -> Result<u8, Failure> {
    repair_command(s, args, Repair::Reinstate)
}

fn repair_command(s: &mut Session, args: &AccountArgs, repair: Repair) -> Result<u8, Failure> {
    let (store, config, google, actor) = (s.store, s.config, &s.google, s.actor.as_str());
    let text = args.account.trim();
    if text.starts_with('/') {
        let path = if text.len() > 1 {
            text.trim_end_matches('/')
        } else {
            text
        };
        if !matches!(repair, Repair::Resync) {
            return Err(Failure::BadInput(format!(
                "{path} is an org unit: only resync takes one"
            )));
        }
        let report = s.runtime.block_on(async {
            let client = google.client(config).await?;
            repair::resync_org_unit(store, client, config, path, actor)
                .await
                .map_err(|e| Failure::Runtime(e.to_string()))
        })??;
        if let Some(daemon) = s.daemon {
            daemon.directory_changed();
        }
        print_as(s.out, args.json, &report, print_report);
        return Ok(if report.healthy { 0 } else { EXIT_PERSON });
    }
    let account = resolve(store, &args.account, args.jenjang)?;
    let today = reconciler::today();
    let mut report = s.runtime.block_on(async {
        let client = google.client(config).await?;
        match repair {
            Repair::Resync => {
                repair::resync(
                    store,
                    client,
                    config,
                    &account,
                    today,
                    (actor, Asker::Person),
                )
                .await
            }
            Repair::Suspend(reason) => {
                repair::suspend(store, client, config, &account, reason, today, actor).await
            }
            Repair::Reinstate => {
                repair::reinstate(store, client, config, &account, today, actor).await
            }
        }
        .map_err(|e| Failure::Runtime(e.to_string()))
    })??;
    say_retirement(store, config, &mut report, &account.key(), today)?;
    print_as(s.out, args.json, &report, print_report);
    Ok(if report.healthy { 0 } else { EXIT_PERSON })
}

/// Adds to a repair's report when the account retires and why (the helpdesk must say so).
pub(super) fn say_retirement(
    store: &crate::store::Store,
    config: &crate::config::Config,
    report: &mut Report,
    key: &crate::directory::model::AccountKey,
    today: jiff::civil::Date,
) -> Result<(), Failure> {
    if let Some(account) = store.account(key)? {
        report.retires = super::inspect::retirement(store, config, &account, today)?;
    }
    Ok(())
}

pub(super) fn print_report(out: &mut dyn Write, report: &Report) {
    say!(out, "account    {} ({})", report.account, report.email);
    let sections = [
        ("observed", &report.observed),
        ("wrong", &report.problems),
        ("sent", &report.sent),
        ("google", &report.answers),
        ("after", &report.after),
    ];
    for (label, lines) in sections {
        if lines.is_empty() && label == "wrong" {
            say!(out, "{label:<11}nothing");
        }
        for line in lines {
            say!(out, "{label:<11}{line}");
        }
    }
    if let Some(retires) = &report.retires {
        say!(out, "retires    {retires}");
    }
    match &report.to_do {
        None => say!(out, "result     healthy: Google matches the directory"),
        Some(to_do) => say!(out, "result     NEEDS A PERSON: {to_do}"),
    }
}
