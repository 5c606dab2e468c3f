//! `credentials` (a school's sheet of first passwords) and `reset-password` (the
//! helpdesk's reset of one account): the commands that put accounts into people's hands.

use super::Failure;
use super::inspect::{AccountArgs, resolve};
use super::reconcile::{EXIT_PERSON, print_as};
use super::session::{Session, check_writable, say};
use crate::credentials::sheet::{self, Heading};
use crate::credentials::{self, Identity, Line, Reissue, ResetError, Row};
use crate::directory::model::{Account, DesiredState, RoleGroup};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct CredentialsArgs {
    /// The school (NPSN, 8 digits).
    #[arg(long, value_name = "NPSN")]
    pub school: String,
    /// Only one group: student, teacher, or admin (principals, operators, staff).
    #[arg(long, value_parser = parse_group)]
    pub group: Option<RoleGroup>,
    /// Where the sheet is written (mode 0600, replaced whole). Default: a new file
    /// akun-belajar-NPSN[-GROUP]-YYYYMMDD-HHMMSS.csv (or .html) in the current folder.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// csv: one row per person, for a spreadsheet. html: cut-out cards to print on A4
    /// (open the file in a browser and print it).
    #[arg(long, value_enum, default_value_t = SheetFormat::Csv)]
    pub format: SheetFormat,
    /// New first passwords for these accounts (key, address or person id) of the school
    /// although an earlier sheet gave them one (lost sheet); `all` for every such account.
    /// An account that has signed in is never reset here (reset-password is for that).
    #[arg(long, value_name = "ACCOUNT", num_args = 1..)]
    pub reissue: Vec<String>,
    /// Print the summary as one JSON object (the passwords are only on the sheet).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SheetFormat {
    Csv,
    Html,
}

impl SheetFormat {
    fn extension(self) -> &'static str {
        match self {
            SheetFormat::Csv => "csv",
            SheetFormat::Html => "html",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    #[command(flatten)]
    pub target: AccountArgs,
    /// The birth date the person gives (YYYY-MM-DD), checked against the directory's:
    /// nothing is changed when it differs or when the directory records none. Each wrong
    /// one goes into the account's history; after three in a row the next check waits a
    /// minute, and twice as long after each further one (up to a day).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub birth_date: jiff::civil::Date,
}

fn parse_group(text: &str) -> Result<RoleGroup, String> {
    RoleGroup::parse(text).ok_or_else(|| format!("expected one of {}", RoleGroup::names()))
}

/// Checks, before anything is sent, that the sheet can be written where it is asked for:
/// run by `main` for every `credentials`, before it is sent to the daemon or run here, so
/// the check happens in the folder of the process that writes the sheet.
pub fn preflight(args: &CredentialsArgs) -> Result<(), Failure> {
    let folder = args.out.clone().unwrap_or_else(|| PathBuf::from("sheet"));
    check_writable(&folder).map_err(|e| Failure::BadInput(format!("the sheet: {e}")))
}

/// What the sheet holds, by kind, for the operator.
#[derive(Debug, Default, Serialize)]
struct Summary {
    sheet: String,
    school: String,
    issued: usize,
    signed_in: usize,
    issued_before: usize,
    not_in_google: usize,
    suspended: usize,
    held: Vec<(String, String)>,
    failed: Vec<(String, String)>,
}

/// `credentials`: first passwords for a school's accounts that were never signed into.
pub fn credentials(s: &mut Session, args: &CredentialsArgs) -> Result<u8, Failure> {
    let npsn = args.school.trim();
    if npsn.len() != 8 || !npsn.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Failure::BadInput(format!(
            "--school {npsn:?}: an NPSN has 8 digits"
        )));
    }
    let accounts = sheet_accounts(s, npsn, args.group)?;
    let reissue = reissue(s, args, &accounts)?;
    let made = Timestamp::now();
    let path = args.out.clone().unwrap_or_else(|| {
        let group = args.group.map(|g| format!("-{g}")).unwrap_or_default();
        let zone = jiff::tz::TimeZone::system();
        let stamp = made.to_zoned(zone).strftime("%Y%m%d-%H%M%S");
        PathBuf::from(format!(
            "akun-belajar-{npsn}{group}-{stamp}.{}",
            args.format.extension()
        ))
    });

    let total = accounts.len();
    let (store, config, google, err) = (s.store, s.config, &s.google, &mut *s.err);
    let progress = s.progress && !args.json;
    if progress {
        say!(
            err,
            "issuing first passwords to {total} accounts of {npsn} in Google…"
        );
    }
    let mut rows = s.runtime.block_on(async {
        let client = google.client(config).await?;
        let mut shown = 0;
        credentials::issue(store, client, accounts, &reissue, |done, total| {
            if progress && (done * 10 / total > shown || done == total) {
                shown = done * 10 / total;
                say!(err, "  {done}/{total}");
            }
        })
        .await
        .map_err(Failure::from)
    })??;
    sheet::sort(&mut rows);

    let heading = Heading {
        npsn: npsn.to_owned(),
        group: args.group,
        made,
        time_zone: jiff::tz::TimeZone::system(),
    };
    let contents = match args.format {
        SheetFormat::Csv => sheet::csv(&heading, &rows),
        SheetFormat::Html => sheet::html(&heading, &rows).into_bytes(),
    };
    let issued = rows
        .iter()
        .filter(|r| matches!(r.line, Line::Issued(_)))
        .count();
    if let Err(why) = s.files.deliver(&path, &contents) {
        return Err(Failure::Runtime(format!(
            "the sheet could not be written to {}: {why}. The {issued} passwords set in Google are lost with it: run the same command again, they get new ones",
            path.display()
        )));
    }
    let what = format!("the sheet of school {npsn}");
    credentials::record_issued(store, &rows, &s.actor, &what)?;

    let summary = summarise(&path, npsn, &rows);
    print_as(s.out, args.json, &summary, print_summary);
    Ok(if summary.failed.is_empty() {
        0
    } else {
        EXIT_PERSON
    })
}

/// The active accounts of the school (of the group).
fn sheet_accounts(
    s: &Session,
    npsn: &str,
    group: Option<RoleGroup>,
) -> Result<Vec<Account>, Failure> {
    let mut accounts = Vec::new();
    for key in s.store.school_members(npsn)? {
        if let Some(account) = s.store.account(&key)?
            && account.state == DesiredState::Active
            && group.is_none_or(|g| account.role.group() == g)
        {
            accounts.push(account);
        }
    }
    if accounts.is_empty() {
        return Err(Failure::BadInput(format!(
            "school {npsn} has no active accounts{} in the directory: check the NPSN (is its export imported?)",
            group
                .map(|g| format!(" of the {g} group"))
                .unwrap_or_default()
        )));
    }
    Ok(accounts)
}

/// The accounts `--reissue` names, each of them on the sheet.
fn reissue(s: &Session, args: &CredentialsArgs, on_sheet: &[Account]) -> Result<Reissue, Failure> {
    if args.reissue.is_empty() {
        return Ok(Reissue::None);
    }
    if args.reissue.iter().any(|a| a.eq_ignore_ascii_case("all")) {
        return Ok(Reissue::All);
    }
    let mut keys = BTreeSet::new();
    for text in &args.reissue {
        let account = resolve(s.store, text, None)?;
        let key = account.key().to_string();
        if !on_sheet.iter().any(|a| a.key().to_string() == key) {
            return Err(Failure::BadInput(format!(
                "--reissue {text}: {key} is not an active account of this sheet (school {}, {})",
                args.school,
                args.group
                    .map_or("every group".to_owned(), |g| format!("group {g}"))
            )));
        }
        keys.insert(key);
    }
    Ok(Reissue::Only(keys))
}

fn summarise(path: &std::path::Path, npsn: &str, rows: &[Row]) -> Summary {
    let mut summary = Summary {
        sheet: path.display().to_string(),
        school: npsn.to_owned(),
        ..Summary::default()
    };
    for row in rows {
        let key = || row.account.key().to_string();
        match &row.line {
            Line::Issued(_) => summary.issued += 1,
            Line::SignedIn(_) => summary.signed_in += 1,
            Line::IssuedBefore(_) => summary.issued_before += 1,
            Line::NotInGoogle => summary.not_in_google += 1,
            Line::Suspended => summary.suspended += 1,
            Line::Held(why) => summary.held.push((key(), why.clone())),
            Line::Failed(why) => summary.failed.push((key(), why.clone())),
        }
    }
    summary
}

fn print_summary(out: &mut dyn std::io::Write, s: &Summary) {
    say!(
        out,
        "sheet      {} (mode 0600): give each person only their own row",
        s.sheet
    );
    say!(
        out,
        "issued     {} new first passwords (changed at the first sign-in)",
        s.issued
    );
    let lines = [
        (s.signed_in, "active", "already signed in: not changed"),
        (
            s.issued_before,
            "earlier",
            "got a first password on an earlier sheet and never signed in: kept (--reissue ACCOUNT… or --reissue all for new ones)",
        ),
        (
            s.not_in_google,
            "waiting",
            "are not in Google yet: the next sync creates them",
        ),
        (
            s.suspended,
            "suspended",
            "are suspended in Google: no password set",
        ),
    ];
    for (count, label, what) in lines {
        if count > 0 {
            say!(out, "{label:<11}{count} {what}");
        }
    }
    for (account, why) in &s.held {
        say!(out, "held       {account}: {why}");
    }
    // One line per cause: a refusal that stopped the sheet is the same for every row.
    let mut causes: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (account, why) in &s.failed {
        let why = why.strip_prefix("not sent: ").unwrap_or(why);
        causes.entry(why).or_default().push(account);
    }
    for (why, accounts) in causes {
        let shown: Vec<&str> = accounts.iter().take(3).copied().collect();
        let more = accounts.len().saturating_sub(shown.len());
        say!(
            out,
            "FAILED     {} ({}{}): {why}; their rows say \"gagal, ulangi\": run the command again",
            crate::display::count(accounts.len() as u64, "account", "accounts"),
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
    }
}

/// `reset-password`: a new first password for one account, shown once.
pub fn reset_password(s: &mut Session, args: &ResetArgs) -> Result<u8, Failure> {
    let (store, config, google, actor) = (s.store, s.config, &s.google, s.actor.as_str());
    let account = resolve(store, &args.target.account, args.target.jenjang)?;
    let reset = s.runtime.block_on(async {
        let client = google.client(config).await?;
        Ok::<_, Failure>(
            credentials::reset(
                store,
                client,
                &account,
                Identity::BirthDate(args.birth_date),
                actor,
            )
            .await,
        )
    })??;
    let secret = match reset {
        Ok(secret) => secret,
        Err(
            e @ (ResetError::BirthDate { .. }
            | ResetError::NoBirthDate
            | ResetError::TooManyChecks { .. }),
        ) => return Err(Failure::BadInput(e.to_string())),
        Err(ResetError::Refused(why)) => {
            say!(s.err, "belajar-sync: not reset: {why}");
            return Ok(EXIT_PERSON);
        }
        Err(e) => return Err(Failure::Runtime(e.to_string())),
    };
    let key = account.key().to_string();
    if args.target.json {
        say!(
            s.out,
            "{}",
            json!({"account": key, "email": account.email, "password": secret.expose(),
                   "change_password_at_next_login": true})
        );
    } else {
        say!(s.out, "account    {key} ({})", account.email);
        say!(s.out, "password   {}", secret.expose());
        say!(
            s.out,
            "           shown once: give it to the person now; they choose their own at the next sign-in"
        );
    }
    Ok(0)
}
