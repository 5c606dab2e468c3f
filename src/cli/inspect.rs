//! `belajar-sync show` and `belajar-sync status`: read-only views of the directory.

use super::Failure;
use super::session::{Session, say};
use crate::audit::{self, HeldList};
use crate::config::Config;
use crate::directory::model::{Account, AccountKey, DesiredState, IdType, Jenjang};
use crate::display::{count, time};
use crate::executor::summary;
use crate::store::Store;
use crate::{access, journal, remote};
use serde_json::json;
use std::io::Write;

#[derive(Debug, clap::Args)]
/// One account named on the command line (`show`, `resync`, `suspend`, `reinstate`).
pub struct AccountArgs {
    /// sd:nisn:0012345678, siti.aminah@sd.belajar.id, nisn:0012345678 or 0012345678.
    pub account: String,
    /// The level, when the person has accounts on several: paud, sd, smp, sma, smk, slb.
    #[arg(long, value_parser = parse_jenjang)]
    pub jenjang: Option<Jenjang>,
    /// Print the answer as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Leave the birth date out (the console's helpdesk view: the agent asks the person
    /// for it before a reset, so must not read it first).
    #[arg(long, hide = true)]
    pub hide_birth_date: bool,
}

#[derive(Debug, clap::Args)]
#[command(after_help = CHECK_CODES)]
pub struct StatusArgs {
    /// Print the status as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// For monitoring: end with a `check` line and an exit code saying how healthy the
    /// service is (see below).
    #[arg(long)]
    pub check: bool,
}

const CHECK_CODES: &str = "\
Exit codes:
  0  healthy (with --check; without it, whenever the status could be read)
  1  the store cannot be read; with --check also: the daemon is down, or the last
     believed scan of Google is older than twice daemon.scan_interval (or none ran)
  2  bad configuration, or no store at data_dir
  3  with --check: accounts or org units are held for a person (quarantine, conflicts),
     or accounts wait for a licence Google has none left of
  4  with --check: the mass-suspension guard holds, a school's retirements are held, or
     the last scan of Google was not believed";

/// What `status --check` looks at.
#[derive(Debug, Default)]
struct Health {
    /// The daemon is expected (a control socket is configured) and did not answer.
    daemon_down: bool,
    /// How long ago the last believed scan finished (`None`: never).
    scan_age: Option<jiff::SignedDuration>,
    scan_interval: jiff::SignedDuration,
    held: usize,
    guard: bool,
    retirements_held: usize,
    distrusted: bool,
    /// Assignments waiting for a licence, by SKU.
    licence_waits: std::collections::BTreeMap<String, u64>,
}

impl Health {
    /// The exit code and why: the worst finding wins (down or stale, then the guards,
    /// then held accounts).
    fn verdict(&self) -> (u8, Vec<String>) {
        let mut why = Vec::new();
        let stale = self.scan_age.is_none_or(|age| age > self.scan_interval * 2);
        if self.daemon_down {
            why.push("the daemon is not running".to_owned());
        }
        if stale {
            why.push(match self.scan_age {
                Some(age) => format!(
                    "the last believed scan of Google ended {} ago (scan_interval {})",
                    crate::display::duration(age),
                    crate::display::duration(self.scan_interval)
                ),
                None => "Google was never scanned".to_owned(),
            });
        }
        if !why.is_empty() {
            return (1, why);
        }
        if self.guard {
            why.push("the mass-suspension guard holds".to_owned());
        }
        if self.retirements_held > 0 {
            why.push(count(
                self.retirements_held as u64,
                "school's retirements are held",
                "schools' retirements are held",
            ));
        }
        if self.distrusted {
            why.push("the last scan of Google was not believed".to_owned());
        }
        if !why.is_empty() {
            return (4, why);
        }
        if self.held > 0 {
            why.push(count(
                self.held as u64,
                "account or org unit is held for a person",
                "accounts or org units are held for a person",
            ));
        }
        why.extend(licence_wait_lines(&self.licence_waits));
        if !why.is_empty() {
            return (3, why);
        }
        (0, vec!["healthy".to_owned()])
    }
}

/// One line per SKU accounts wait for, with what to do.
fn licence_wait_lines(waits: &std::collections::BTreeMap<String, u64>) -> Vec<String> {
    waits
        .iter()
        .map(|(sku, n)| match sku.as_str() {
            crate::config::ARCHIVED_SKU => format!(
                "{} to be archived: Google has no Archived User licence (SKU {sku}) left (ask Google for more)",
                count(*n, "retired account waits", "retired accounts wait")
            ),
            _ => format!(
                "{} for a licence of SKU {sku}: Google has none left (archive more leavers, or ask Google for more licences)",
                count(*n, "account waits", "accounts wait")
            ),
        })
        .collect()
}

pub fn parse_jenjang(text: &str) -> Result<Jenjang, String> {
    Jenjang::parse(text).ok_or_else(|| format!("expected one of {}", Jenjang::names()))
}

/// Finds the one account `text` names.
pub fn resolve(store: &Store, text: &str, jenjang: Option<Jenjang>) -> Result<Account, Failure> {
    let text = text.trim();
    let not_found = || Failure::BadInput(format!("no account {text:?} in the directory"));
    if text.contains('@') {
        return store.account_by_email(text)?.ok_or_else(not_found);
    }
    if let Some(key) = AccountKey::parse(text) {
        return store.account(&key)?.ok_or_else(not_found);
    }
    let (types, id): (Vec<IdType>, &str) = match text.split_once(':') {
        Some((t, id)) => {
            let t = IdType::parse(t).ok_or_else(|| {
                Failure::BadInput(format!(
                    "{text:?} is not an account: expected an account key (sd:nisn:0012345678), an address, or ID_TYPE:ID with ID_TYPE one of {}",
                    IdType::names()
                ))
            })?;
            (vec![t], id)
        }
        None => (IdType::ALL.to_vec(), text),
    };
    let mut found = Vec::new();
    for t in types.into_iter().filter(|t| t.digits() == id.len()) {
        found.extend(store.accounts_of_person(t, id)?);
    }
    found.retain(|a| jenjang.is_none_or(|j| a.jenjang == j));
    match found.len() {
        0 => Err(not_found()),
        1 => Ok(found.remove(0)),
        _ => Err(Failure::BadInput(format!(
            "{text:?} has several accounts: {}; name one by its key",
            found
                .iter()
                .map(|a| a.key().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

pub fn show(s: &mut Session, args: &AccountArgs) -> Result<u8, Failure> {
    let mut account = resolve(s.store, &args.account, args.jenjang)?;
    if args.hide_birth_date {
        account.birth_date = None;
    }
    let shown = Shown::read(s.store, s.config, account)?;
    if args.json {
        say!(s.out, "{}", shown.json());
        return Ok(0);
    }
    let mut lines = shown.directory_lines(s.store, s.config)?;
    lines.extend(shown.google_lines());
    lines.extend(shown.held_lines());
    for (label, value) in lines {
        say!(s.out, "{label:<15}{value}");
    }
    shown.print_history(s.out);
    Ok(0)
}

/// Everything `show` says of one account, read at one moment.
struct Shown {
    account: Account,
    key: String,
    grace_ends: Option<jiff::civil::Date>,
    observed: Vec<remote::Observed>,
    pending: Option<journal::Entry>,
    quarantine: Option<audit::Held>,
    conflict: Option<audit::Held>,
    notices: Option<audit::Notices>,
    history: Vec<audit::Event>,
    access: access::Access,
}

impl Shown {
    fn read(store: &Store, config: &Config, account: Account) -> Result<Shown, Failure> {
        let grace_ends = match &account.state {
            DesiredState::Retiring { since } => Some(
                since
                    .saturating_add(jiff::Span::new().days(i64::from(config.lifecycle.grace_days))),
            ),
            _ => None,
        };
        let key = account.key().to_string();
        let reader = store.changes(true);
        let observed: Vec<remote::Observed> = match remote::marked_users(store, &account.key())? {
            marked if !marked.is_empty() => marked,
            _ => remote::user_at(&reader, &account.email)?
                .into_iter()
                .collect(),
        };
        Ok(Shown {
            grace_ends,
            observed,
            pending: journal::pending_for(&reader, &key)?,
            quarantine: audit::held(&reader, HeldList::Quarantine, &key)?,
            conflict: audit::held(&reader, HeldList::Conflicts, &key)?,
            notices: audit::notices(store, &key)?,
            history: audit::history(store, &key)?,
            access: access::of(store, &account.key())?.unwrap_or_default(),
            key,
            account,
        })
    }

    fn json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(&self.account).expect("accounts serialise");
        value["key"] = json!(self.key);
        value["group"] = json!(self.account.role.group());
        if let Some(end) = self.grace_ends {
            value["grace_ends"] = json!(end);
        }
        value["google_observed"] = json!(self.observed);
        value["pending"] = json!(self.pending);
        value["quarantine"] = json!(self.quarantine);
        value["conflict"] = json!(self.conflict);
        value["notices"] = json!(self.notices);
        value["access"] = json!(self.access);
        value["history"] = json!(self.history);
        value
    }

    /// Who the account is and its state here.
    fn directory_lines(
        &self,
        store: &Store,
        config: &Config,
    ) -> Result<Vec<(&'static str, String)>, Failure> {
        let account = &self.account;
        let state = match &account.state {
            DesiredState::Active => "active".to_owned(),
            DesiredState::Retiring { since } => format!(
                "retiring since {since}: {}",
                retirement(store, config, account, crate::reconciler::today())?
                    .expect("a retiring account retires")
            ),
            DesiredState::Suspended { reason, since } => {
                format!("suspended since {since}: {reason}")
            }
        };
        let mut lines = vec![
            ("account", self.key.clone()),
            ("email", account.email.clone()),
            ("name", account.full_name.clone()),
            (
                "role",
                format!("{} ({})", account.role.words(), account.role.group()),
            ),
            ("jenjang", account.jenjang.to_string()),
            ("school", account.npsn.clone()),
            ("state", state),
        ];
        if !account.former_emails.is_empty() {
            lines.push(("former", account.former_emails.join(", ")));
        }
        if let Some(date) = account.birth_date {
            lines.push(("birth date", date.to_string()));
        }
        if let Some(email) = &account.personal_email {
            lines.push(("personal email", email.clone()));
        }
        Ok(lines)
    }

    /// Its Google user: the link, what was seen, sign-ins, first passwords, notices.
    fn google_lines(&self) -> Vec<(&'static str, String)> {
        let (account, access) = (&self.account, &self.access);
        let link = account.google.as_ref().map_or_else(
            || "not linked yet".to_owned(),
            |g| {
                if g.suspended_by_us {
                    format!("{} (suspended by belajar-sync)", g.id)
                } else {
                    g.id.clone()
                }
            },
        );
        let mut lines = vec![("google", link)];
        if self.observed.is_empty() {
            lines.push(("observed", "no Google user seen yet".into()));
        }
        for o in &self.observed {
            lines.push((
                "observed",
                format!("{} (at {})", summary(&o.user), time(o.at)),
            ));
        }
        lines.push((
            "signed in",
            match (access.first_sign_in, access.last_sign_in) {
                (Some(first), Some(last)) => {
                    format!("first seen {}, last {}", time(first), time(last))
                }
                _ if account.google.is_some() => "never (as of the last read of its user)".into(),
                _ => "never".into(),
            },
        ));
        if let Some(issued) = &access.issued {
            let how = if issued.how == "reset" {
                "reset"
            } else {
                "issued on a school sheet"
            };
            let at = time(issued.at);
            lines.push((
                "password",
                format!("first password {how} at {at} by {}", issued.by),
            ));
        }
        if let Some(n) = &self.notices {
            let days: Vec<String> = n.notify_on.iter().map(ToString::to_string).collect();
            lines.push((
                "notices",
                format!("on {}; suspension on {}", days.join(" and "), n.suspend_on),
            ));
        }
        lines
    }

    /// What waits or is held: the journal's entry, a quarantine, a conflict.
    fn held_lines(&self) -> Vec<(&'static str, String)> {
        let mut lines = Vec::new();
        if let Some(entry) = &self.pending {
            let in_flight = if entry.in_flight {
                ", sent without an answer yet"
            } else {
                ""
            };
            let error = entry
                .last_error
                .as_ref()
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default();
            lines.push((
                "pending",
                format!(
                    "{} ({}) queued {}{in_flight}{error}",
                    entry.action.kind.as_str(),
                    entry.action.fields.join(", "),
                    time(entry.queued),
                ),
            ));
        }
        if let Some(held) = &self.quarantine {
            lines.push((
                "QUARANTINE",
                format!(
                    "{} (since {}); `resync` tries again",
                    held.reason,
                    time(held.at)
                ),
            ));
        }
        if let Some(held) = &self.conflict {
            lines.push((
                "CONFLICT",
                format!("{} (since {})", held.reason, time(held.at)),
            ));
        }
        lines
    }

    /// The latest events of its history.
    fn print_history(&self, out: &mut dyn Write) {
        let history = &self.history;
        if history.is_empty() {
            return;
        }
        say!(out, "history");
        for event in history.iter().rev().take(HISTORY_SHOWN).rev() {
            say!(
                out,
                "  {} {:<10} {}",
                time(event.at),
                event.what,
                event.detail
            );
        }
        if history.len() > HISTORY_SHOWN {
            say!(
                out,
                "  ({} earlier events: --json shows all)",
                history.len() - HISTORY_SHOWN
            );
        }
    }
}

/// When and why a retiring account is suspended, in words (`None` for other accounts):
/// the day, the days left, what made it retire (its history), and the person's active
/// account on another level when there is one.
pub fn retirement(
    store: &Store,
    config: &crate::config::Config,
    account: &Account,
    today: jiff::civil::Date,
) -> Result<Option<String>, Failure> {
    let DesiredState::Retiring { since } = account.state else {
        return Ok(None);
    };
    let day = crate::planner::suspension_day(since, config.lifecycle.grace_days);
    let left = (day - today).get_days();
    let when = match left {
        ..=0 => "at the next sync".to_owned(),
        1 => "tomorrow".to_owned(),
        n => format!("in {n} days"),
    };
    let key = account.key().to_string();
    let why = audit::history(store, &key)?
        .into_iter()
        .rev()
        .find_map(|e| e.detail.strip_prefix("retiring: ").map(str::to_owned))
        .unwrap_or_else(|| "no longer listed by Dapodik".to_owned());
    let mut text = format!(
        "suspended on {day} ({when}) unless Dapodik lists it again; it retires because it was {why}"
    );
    if let Some(next) = store.active_elsewhere(account)? {
        text.push_str(&format!(
            "; the person's account on {} is {}",
            next.jenjang.as_str().to_uppercase(),
            next.email
        ));
    }
    Ok(Some(text))
}

/// Events of an account's history shown by `show` (the most recent).
const HISTORY_SHOWN: usize = 20;

/// Held accounts listed by `status` (all with `--json`).
const HELD_SHOWN: usize = 10;

/// What `status` reports, read from the store (and the daemon, when it runs).
struct Facts {
    counts: crate::directory::accounts::StateCounts,
    interrupted: Option<crate::store::ImportMarker>,
    outbox: u64,
    in_flight: u64,
    licence_waits: std::collections::BTreeMap<String, u64>,
    /// Fundamentals licences archiving freed in the last 24 hours (not reusable yet).
    licences_freed: u64,
    quarantine: Vec<audit::Held>,
    conflicts: Vec<audit::Held>,
    guard: Option<audit::GuardHeld>,
    retire_held: Vec<audit::RetireHeld>,
    scan: remote::ScanRecord,
    signed_in: u64,
    quota: Option<f64>,
    notices_due: u64,
    notices: crate::notices::Counts,
    distrusted: Option<remote::Distrusted>,
    outage: Option<crate::google::circuit::Outage>,
}

/// Reads what `status` reports.
fn gather(s: &Session) -> Result<Facts, Failure> {
    let store = s.store;
    let counts = store.counts()?;
    let interrupted = store.rolled_back_import();
    let journal::Census {
        depth: outbox,
        in_flight,
        licence_waits,
    } = journal::census(store)?;
    let licences_freed = crate::licences::freed_last_24h(store, jiff::Timestamp::now())?;
    let quarantine: Vec<audit::Held> =
        audit::all_held(store, HeldList::Quarantine).collect::<Result<_, _>>()?;
    let conflicts: Vec<audit::Held> =
        audit::all_held(store, HeldList::Conflicts).collect::<Result<_, _>>()?;
    let guard = audit::guard(store)?;
    let retire_held: Vec<audit::RetireHeld> =
        audit::retirements_held(store).collect::<Result<_, _>>()?;
    let scan = remote::last_scan(store)?;
    let signed_in = access::signed_in_count(store)?;
    let quota = remote::learnt_quota(store)?;
    let today = crate::reconciler::today();
    // Retiring accounts with a notice due and not yet in the outbox.
    let mut notices_due = 0u64;
    for entry in audit::all_notices(store) {
        let (account, notices) = entry?;
        if crate::notices::unqueued_due(store, &account, &notices, today)?.is_some() {
            notices_due += 1;
        }
    }
    let notices = crate::notices::counts(store)?;
    let distrusted = remote::distrusted(store)?;
    // The daemon's client knows now; without it, the last sync run by hand said.
    let outage = match s.daemon {
        Some(daemon) => daemon.client.circuit.outage(),
        None => remote::last_outage(store)?,
    };
    Ok(Facts {
        counts,
        interrupted,
        outbox,
        in_flight,
        licence_waits,
        licences_freed,
        quarantine,
        conflicts,
        guard,
        retire_held,
        scan,
        signed_in,
        quota,
        notices_due,
        notices,
        distrusted,
        outage,
    })
}

pub fn status(s: &mut Session, args: &StatusArgs) -> Result<u8, Failure> {
    let facts = gather(s)?;
    let store = s.store;
    let health = Health {
        daemon_down: s.daemon.is_none() && !s.config.daemon.control_socket.as_os_str().is_empty(),
        scan_age: facts
            .scan
            .finished
            .map(|at| jiff::Timestamp::now().duration_since(at)),
        scan_interval: s.config.daemon.scan_interval,
        held: facts.quarantine.len() + facts.conflicts.len(),
        guard: facts.guard.is_some(),
        retirements_held: facts.retire_held.len(),
        distrusted: facts.distrusted.is_some(),
        licence_waits: facts.licence_waits.clone(),
    };
    let (verdict, why) = health.verdict();
    let code = if args.check { verdict } else { 0 };
    if args.json {
        let value = json!({
            "accounts": facts.counts,
            "signed_in": facts.signed_in,
            "quota_learnt_per_minute": facts.quota,
            "requests_per_minute_ceiling": s.config.google.requests_per_minute,
            "store": store.path(),
            "disk_free_bytes": store.free_space()?,
            "daemon": s.daemon.map(|d| d.phase()),
            "inbox_waiting_for_space": s.daemon.and_then(|d| d.inbox_waiting()),
            "google_unreachable": facts.outage,
            "interrupted_import": facts.interrupted,
            "outbox": {"depth": facts.outbox, "in_flight": facts.in_flight},
            "waiting_for_licence": facts.licence_waits,
            "licences_freed_last_24h": facts.licences_freed,
            "quarantine": facts.quarantine,
            "conflicts": facts.conflicts,
            "guard": facts.guard,
            "retirements_held": facts.retire_held,
            "last_scan": facts.scan.finished.map(|_| &facts.scan),
            "notices_due": facts.notices_due,
            "notices": facts.notices,
            "scan_distrusted": facts.distrusted,
            "check": {"code": verdict, "why": why},
        });
        say!(s.out, "{value}");
        return Ok(code);
    }
    print_service(s, &facts);
    print_held(s, &facts);
    if args.check {
        say!(s.out, "check     {code}: {}", why.join("; "));
    }
    Ok(code)
}

/// `status` for people: the service, the directory, Google, the outbox and the notices.
/// What the web console did since the daemon started.
fn console_line() -> String {
    use crate::web::What;
    let c = crate::web::counters();
    format!(
        "{} sign-ins, {} resets, {} sheets, {} repairs since start; {} refused, {} limited",
        c.total(What::SignIn),
        c.total(What::Reset),
        c.total(What::Sheet),
        c.total(What::Repair),
        c.total(What::Refused),
        c.total(What::Limited)
    ) + &public_line()
}

/// What the public pages did since the daemon started.
fn public_line() -> String {
    use crate::web::public::{Public, counted};
    format!(
        "; Cek Akun and Lupa kata sandi: {} tries, {} found, {} codes mailed, {} resets, {} repairs, {} refused, {} limited",
        counted(Public::Try),
        counted(Public::Match),
        counted(Public::Code),
        counted(Public::Reset),
        counted(Public::Repair),
        counted(Public::Refused),
        counted(Public::Limited)
    )
}

fn print_service(s: &mut Session, facts: &Facts) {
    print_process(s, facts);
    print_work(s, facts);
    print_notices(s, facts);
}

/// The store, its disk, the daemon and Google's reachability.
fn print_process(s: &mut Session, facts: &Facts) {
    let outage = &facts.outage;
    let store = s.store;
    say!(s.out, "store     {}", store.path().display());
    if let Err(low) = store.ensure_free_space(s.config.min_free_disk_mb << 20) {
        say!(s.out, "DISK      {low}");
    }
    match s.daemon {
        Some(daemon) => {
            say!(s.out, "daemon    running: {}", daemon.phase());
            if s.config.web.enabled() {
                say!(s.out, "console   {}", console_line());
            }
            if let Some(file) = daemon.inbox_waiting() {
                say!(
                    s.out,
                    "INBOX     {} waits in the inbox for disk space (imported once there is room)",
                    file.display()
                );
            }
            if let Some(outage) = &outage {
                say!(
                    s.out,
                    "GOOGLE    unreachable since {}: {} (nothing is lost: the journal keeps the work; calls resume when a probe gets an answer)",
                    time(outage.since),
                    outage.reason
                );
            }
        }
        None => {
            say!(
                s.out,
                "daemon    not running (this command opened the store)"
            );
            if let Some(outage) = &outage {
                say!(
                    s.out,
                    "GOOGLE    unreachable at the last sync, since {}: {} (nothing is lost: the journal keeps the work; the next sync tries again)",
                    time(outage.since),
                    outage.reason
                );
            }
        }
    }
}

/// The directory, activation, the quota, the last import and scan, the outbox.
fn print_work(s: &mut Session, facts: &Facts) {
    let Facts {
        ref counts,
        ref interrupted,
        outbox,
        in_flight,
        ref scan,
        signed_in,
        quota,
        ..
    } = *facts;
    say!(
        s.out,
        "accounts  {} total: {} active, {} retiring, {} suspended",
        counts.total,
        counts.active,
        counts.retiring,
        counts.suspended
    );
    say!(
        s.out,
        "signed in {} been signed into{}",
        count(signed_in, "account has", "accounts have"),
        match (signed_in * 1000).checked_div(counts.total) {
            Some(permille) => format!(" ({:.1}% of all)", permille as f64 / 10.0),
            None => String::new(),
        }
    );
    say!(
        s.out,
        "quota     {}; {}",
        quota.map_or_else(
            || "not learnt yet (Google has not said \"too fast\")".to_owned(),
            |q| format!("Google's learnt: {q:.0} calls a minute")
        ),
        s.config.google.requests_per_minute.map_or_else(
            || "no ceiling configured".to_owned(),
            |c| format!("ceiling {c} a minute")
        )
    );
    for line in licence_wait_lines(&facts.licence_waits) {
        say!(s.out, "licences  {line}");
    }
    if facts.licences_freed > 0 {
        say!(
            s.out,
            "licences  {} by archiving in the last 24 hours: Google makes them reusable within 24 hours",
            count(facts.licences_freed, "licence freed", "licences freed")
        );
    }
    if let Some(marker) = interrupted {
        say!(
            s.out,
            "warning   the import of {} started at {} did not finish: its changes were rolled back; run it again",
            marker.file,
            time(marker.started)
        );
    }
    match (scan.finished, scan.seconds()) {
        (Some(at), Some(secs)) => say!(
            s.out,
            "scan      last at {} ({}, {})",
            time(at),
            crate::display::duration(jiff::SignedDuration::from_secs_f64(secs)),
            count(scan.users.values().sum::<u64>(), "user", "users")
        ),
        _ => say!(s.out, "scan      never: the next sync scans Google first"),
    }
    say!(
        s.out,
        "outbox    {} waiting{}",
        count(outbox, "action", "actions"),
        if in_flight > 0 {
            format!(", {in_flight} sent without a known answer (checked before sending again)")
        } else {
            String::new()
        }
    );
}

/// Notices to retiring accounts: sent, failed, waiting, still to be told.
fn print_notices(s: &mut Session, facts: &Facts) {
    let (notices_due, notices) = (facts.notices_due, &facts.notices);
    if notices_due > 0 || *notices != crate::notices::Counts::default() {
        let mut line = format!(
            "{} sent, {}, {} waiting",
            notices.sent,
            count(notices.failed as u64, "failed attempt", "failed attempts"),
            notices.waiting
        );
        if notices.refused > 0 {
            line.push_str(&format!(
                ", {} refused by the relay for good (see `show`)",
                notices.refused
            ));
        }
        if notices_due > 0 {
            line.push_str(&format!(
                "; {} still to be told{}",
                count(notices_due, "retiring account is", "retiring accounts are"),
                if s.config.mail.enabled() {
                    ""
                } else {
                    " (no mail relay is set: [mail] relay)"
                }
            ));
        }
        say!(s.out, "notices   {line}");
    }
}

/// `status` for people: what is held for a person.
fn print_held(s: &mut Session, facts: &Facts) {
    let Facts {
        guard,
        retire_held,
        quarantine,
        conflicts,
        distrusted,
        ..
    } = facts;
    if let Some(held) = &guard {
        say!(
            s.out,
            "GUARD     held since {}: {} not made: {}. If they are meant: belajar-sync sync --allow-mass-suspend",
            time(held.at),
            count(held.suspensions, "suspension", "suspensions"),
            held.reason
        );
    }
    for held in retire_held {
        say!(
            s.out,
            "HELD      school {}: the export {} of {} left out {} of its {} active accounts; none retired. If they left: belajar-sync import --allow-mass-retire FILE",
            held.npsn,
            held.file,
            time(held.at),
            held.retiring,
            held.active
        );
    }
    let (org_units, accounts): (Vec<&audit::Held>, Vec<&audit::Held>) =
        quarantine.iter().partition(|h| h.subject.starts_with('/'));
    let conflicts: Vec<&audit::Held> = conflicts.iter().collect();
    for (label, one, many, held) in [
        (
            "quarantine",
            "account needs a person",
            "accounts need a person",
            &accounts,
        ),
        (
            "org units",
            "org unit could not be created",
            "org units could not be created",
            &org_units,
        ),
        (
            "conflicts",
            "account needs a person",
            "accounts need a person",
            &conflicts,
        ),
    ] {
        if held.is_empty() {
            continue;
        }
        say!(s.out, "{label:<9} {}:", count(held.len() as u64, one, many));
        for h in held.iter().take(HELD_SHOWN) {
            say!(s.out, "  {} {}", h.subject, h.reason);
        }
        if held.len() > HELD_SHOWN {
            say!(
                s.out,
                "  … {} more (status --json lists all)",
                held.len() - HELD_SHOWN
            );
        }
    }
    if !accounts.is_empty() || !org_units.is_empty() {
        say!(
            s.out,
            "          once the cause is fixed: belajar-sync resync ACCOUNT|/ORG/UNIT, or belajar-sync release --all-quarantined"
        );
    }
    if let Some(d) = &distrusted {
        say!(
            s.out,
            "SCAN      not believed at {}: {}",
            time(d.at),
            d.reason
        );
    }
}
