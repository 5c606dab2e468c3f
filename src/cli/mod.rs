//! The command line: arguments, dispatch, and the mapping of failures to exit codes.

mod backup;
mod check;
pub(crate) mod control;
mod credentials;
#[cfg(feature = "emulator")]
mod demo;
#[cfg(feature = "emulator")]
mod emulator;
mod import;
pub(crate) mod inspect;
mod list;
mod rebuild;
mod reconcile;
mod release;
mod report;
mod run;
mod session;
mod web;

use crate::config::{self, Config, ConfigError};
use crate::import::ImportError;
use crate::store::{Store, StoreError};
use clap::{Parser, Subcommand};
use session::Session;
use std::path::PathBuf;
use std::process::ExitCode;

/// Every exit code, for the top-level help (each command lists the ones it can end with).
const EXIT_CODES: &str = "\
Exit codes:
  0  success (sync, resync: Google matches the directory)
  1  runtime failure (store, file system, Google unreachable)
  2  bad input or configuration (invalid rows, unknown account, bad config)
  3  accounts need a person (conflict, quarantine) or wait for Google
  4  the mass-suspension guard held, a scan of Google was not believed, or an import held
     a school's retirements";

/// The exit codes of commands that read or write without deciding for anyone.
const PLAIN_CODES: &str = "\
Exit codes:
  0  success
  1  runtime failure (store, file system)
  2  bad input or configuration (unknown account or school, bad config, no store)";

/// The exit codes of `sync` (and `demo`, which runs one).
const SYNC_CODES: &str = "\
Exit codes:
  0  Google matches the directory
  1  runtime failure (store, file system, Google unreachable)
  2  bad configuration, or no store
  3  accounts need a person (conflict, quarantine) or wait for Google (left queued)
  4  the mass-suspension guard held, or the scan of Google was not believed";

/// The exit codes of the commands that repair one account.
const REPAIR_CODES: &str = "\
Exit codes:
  0  Google matches the directory for this account
  1  runtime failure (store, Google unreachable)
  2  bad input (unknown account, several accounts match) or configuration
  3  the account needs a person (conflict, quarantine, refused by Google)";

/// The exit codes of `import` and `rebuild`.
const IMPORT_CODES: &str = "\
Exit codes:
  0  imported
  1  runtime failure (store, disk full: the import is rolled back whole)
  2  the file has invalid rows (nothing imported; all are listed), cannot be read, or
     the configuration is bad
  4  a school's retirements were held (the snapshot left out too much of it; the rest
     was imported): --allow-mass-retire when they did leave";

/// The exit codes of the password commands.
const PASSWORD_CODES: &str = "\
Exit codes:
  0  every password was set
  1  runtime failure (store, Google unreachable)
  2  bad input (unknown school or account; a wrong birth date, none on record, or too
     many wrong ones in a row) or configuration
  3  a password was not set (refused, the account cannot take one, or another worker
     has it in hand): see the output";

/// Keeps the Google Workspace accounts of Akun belajar.id in line with the local account
/// directory fed from Dapodik.
///
/// While the daemon (`run`) is up, the operator commands (all but run, demo, check,
/// emulator and restore) go through its control socket (daemon.control_socket) and run
/// there, with the same output and exit codes; otherwise they open the store themselves.
#[derive(Debug, Parser)]
#[command(name = "belajar-sync", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Configuration file (TOML; config/example.toml documents every key).
    #[arg(long, global = true, env = "BELAJAR_SYNC_CONFIG", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,

    /// No progress bar.
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// Log lines (standard error; levels from RUST_LOG): text for people and journald, or
    /// one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Operator(Operator),
    /// The daemon: pushes local changes within seconds, scans Google on a schedule, imports
    /// the exports dropped in the inbox, runs the operator commands sent to its control
    /// socket, tells systemd how it is (READY, WATCHDOG, STATUS). SIGTERM or SIGINT: stops
    /// taking work, lets calls in flight finish (stop_timeout), exits 0; a second signal
    /// exits at once (the journal makes that safe). SIGHUP: re-reads the configuration and
    /// logs what changed and what needs a restart.
    #[command(after_help = PLAIN_CODES)]
    Run(run::RunArgs),
    /// The main job on an embedded default, for a first look: an emulated Google in this
    /// process, a temporary store, the sample export of config/demo-export.csv, a sync,
    /// then a helpdesk morning (an admin suspends an account by hand, another is moved,
    /// a third loses its link, a teacher becomes principal, a student moves up to SMP),
    /// each repaired with resync, and the status. Needs no configuration.
    #[cfg(feature = "emulator")]
    #[command(after_help = SYNC_CODES)]
    Demo(demo::DemoArgs),
    /// Check that the configuration reaches Google: the key, a token for the delegated
    /// admin, one user of each managed domain, the root org unit; and that the mail relay
    /// answers when [mail] is set. Says what to fix.
    #[command(after_help = PLAIN_CODES)]
    Check(check::CheckArgs),
    /// Run a local emulator of Google's Directory API and token endpoint (plain HTTP, for
    /// tests, benchmarks and trying belajar-sync out); prints its URL and key file, stops
    /// on Ctrl-C or SIGTERM. Needs no configuration.
    #[cfg(feature = "emulator")]
    #[command(after_help = PLAIN_CODES)]
    Emulator(emulator::EmulatorArgs),
    /// Make the store at data_dir from a backup (`belajar-sync backup`, or the daemon's
    /// daily one in daemon.backup_dir). Needs the service stopped and no store at
    /// data_dir; the backup's checksum is checked before the store is put in place.
    #[command(after_help = PLAIN_CODES)]
    Restore(backup::RestoreArgs),
}

/// The commands an operator runs against the directory: through the daemon's control
/// socket while it runs, else on the store directly.
#[derive(Debug, Subcommand)]
pub enum Operator {
    /// Import a Dapodik export (CSV or JSON Lines) into the directory.
    ///
    /// By default the file is a snapshot: for every school (NPSN) it lists, that school's
    /// active accounts it does not list, or lists as `keluar`, start their grace period.
    /// A file with any invalid row changes nothing: every invalid row is listed.
    ///
    /// Columns (the CSV header, or the keys of each JSON object; any order):
    ///   id_type     nisn, nik or nuptk
    ///   id          the identifier's digits (10 for nisn, 16 for nik and nuptk)
    ///   full_name   as Dapodik has it
    ///   role        peserta_didik, pendidik, tenaga_kependidikan, operator, kepala_sekolah
    ///   jenjang     paud, sd, smp, sma, smk, slb
    ///   npsn        the school, 8 digits
    ///   status      aktif or keluar (optional; aktif when absent)
    ///   birth_date  YYYY-MM-DD (optional; checked by reset-password)
    ///   personal_email  (optional; notices are sent there too)
    #[command(verbatim_doc_comment, after_help = IMPORT_CODES)]
    Import(import::ImportArgs),
    /// Show one account: ACCOUNT is an account key (sd:nisn:0012345678), an address, or a
    /// person id (nisn:0012345678, or just the digits) with --jenjang when they have
    /// accounts on several levels.
    #[command(after_help = PLAIN_CODES)]
    Show(inspect::AccountArgs),
    /// Counts of accounts by state, and anything that needs an operator. With --check, an
    /// exit code for monitoring.
    Status(inspect::StatusArgs),
    /// The accounts, one per row (CSV or JSON Lines): key, address, person, name, role,
    /// level, school, state, dates, Google id; filtered by school, state, role or level.
    #[command(after_help = PLAIN_CODES)]
    List(list::ListArgs),
    /// What a sync would do now, from what was last observed of Google: counts per
    /// action, then the actions. Writes nothing, calls nothing.
    #[command(after_help = PLAIN_CODES)]
    Plan(reconcile::PlanArgs),
    /// One full pass: scan Google (when asked, or when no scan has run), plan, push the
    /// changes, and wait for them to land. Suspends nothing when the suspensions would be
    /// too many (the guard; see [sync] in the configuration).
    #[command(after_help = SYNC_CODES)]
    Sync(reconcile::SyncArgs),
    /// Repair one account now (the helpdesk's "my account no longer syncs with Google"):
    /// reads its Google user fresh, says what is wrong, sends the fix, reads it back.
    /// Lifts a suspension an admin made in Google and restores a user an admin deleted: a
    /// person is asking. An org unit path (/student/sd/20100001) repairs that org unit.
    #[command(after_help = REPAIR_CODES)]
    Resync(inspect::AccountArgs),
    /// Suspend one account for a terms violation, here and in Google, with the reason.
    #[command(after_help = REPAIR_CODES)]
    Suspend(reconcile::SuspendArgs),
    /// Make a suspended or retiring account active again, here and in Google.
    #[command(after_help = REPAIR_CODES)]
    Reinstate(inspect::AccountArgs),
    /// A school's sheet of first passwords, for its operator to hand out: every active
    /// account of the school (of the group) whose Google user was never signed into gets
    /// a new first password, which the person replaces at the first sign-in. Accounts that
    /// signed in are listed as active and never changed; accounts that got a password on
    /// an earlier sheet keep it unless --reissue names them. The passwords exist only on
    /// the sheet (mode 0600; through the control socket it is written by this command, in
    /// this folder, never by the daemon). A row whose password Google did not set says
    /// "gagal, ulangi" and the exit code is 3.
    #[command(after_help = PASSWORD_CODES)]
    Credentials(credentials::CredentialsArgs),
    /// The helpdesk resets one account's password ("I cannot sign in"): after the
    /// birth date the person gives is checked against the directory's, a new first
    /// password is set and printed once. Refused (exit 3, nothing sent) for accounts
    /// suspended here or in Google, admins and conflicts; a wrong birth date, none on
    /// record, or too many wrong ones in a row exit 2.
    #[command(name = "reset-password", after_help = PASSWORD_CODES)]
    ResetPassword(credentials::ResetArgs),
    /// Take accounts and org units out of quarantine once the cause is fixed (the next sync
    /// tries them again): name them, or --all-quarantined.
    #[command(after_help = PLAIN_CODES)]
    Release(release::ReleaseArgs),
    /// Reports over the directory (activation per school).
    #[command(after_help = PLAIN_CODES)]
    Report(report::ReportArgs),
    /// Copy the whole store into FILE, consistent at one moment, while it works (through
    /// the running daemon too, which then writes into its daemon.backup_dir). `restore`
    /// makes a store from it.
    #[command(after_help = PLAIN_CODES)]
    Backup(backup::BackupArgs),
    /// Make a lost store again from the exports and Google, changing nothing in Google:
    /// Google is scanned into a new store first, then the exports are imported, and each
    /// account whose Google user carries its marker keeps the address Google has. Then
    /// `plan` shows nothing to do but links. Needs the store to itself (the service
    /// stopped) and no store, or an empty one, at data_dir.
    #[command(after_help = IMPORT_CODES)]
    Rebuild(rebuild::RebuildArgs),
    /// The web console's API tokens: `web token add EMAIL` makes one for a helpdesk agent
    /// (printed once, kept as a hash), `web token list`, `web token revoke ID`.
    #[command(after_help = PLAIN_CODES)]
    Web(web::WebArgs),
}

/// A failed command: what to print and which exit code to end with.
#[derive(Debug)]
pub enum Failure {
    /// Exit 2: the input or the configuration is wrong; the message says what to fix.
    BadInput(String),
    /// Exit 1: something failed at run time.
    Runtime(String),
}

impl Failure {
    /// What is printed, after "belajar-sync: ".
    fn message(&self) -> &str {
        let (Failure::BadInput(message) | Failure::Runtime(message)) = self;
        message
    }

    fn code(&self) -> u8 {
        match self {
            Failure::BadInput(_) => 2,
            Failure::Runtime(_) => 1,
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure::BadInput(e.to_string())
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Missing { .. } => Failure::BadInput(e.to_string()),
            e => Failure::Runtime(e.to_string()),
        }
    }
}

impl From<ImportError> for Failure {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::File(e) => Failure::BadInput(e.to_string()),
            ImportError::Store(e) => e.into(),
        }
    }
}

/// Parses the command line, runs the command, and returns its exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, matches!(cli.command, Command::Run(_)));
    match run(&cli) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("belajar-sync: {}", failure.message());
            ExitCode::from(failure.code())
        }
    }
}

fn run(cli: &Cli) -> Result<ExitCode, Failure> {
    let config =
        || Config::load(&cli.config).inspect(|c| crate::display::set_zone(c.display.zone()));
    match &cli.command {
        Command::Operator(command) => {
            let config = config()?;
            // An export read from a pipe (or any stream) is kept whole first: an import
            // reads its file twice, and an upload says its length before it is sent.
            let spooled = match command {
                Operator::Import(args) => import::spool_stream(&args.file)?,
                _ => None,
            };
            let upload = match command {
                Operator::Import(args) => Some(spooled.as_deref().unwrap_or(&args.file)),
                _ => None,
            };
            if let Operator::Credentials(args) = command {
                credentials::preflight(args)?;
            }
            if let Some(code) = control::forward(&config.daemon.control_socket, upload)? {
                return Ok(ExitCode::from(code));
            }
            // Only an import (or a rebuild) makes a store; the other commands need one.
            let store = if matches!(command, Operator::Import(_) | Operator::Rebuild(_)) {
                open_store(&config)?
            } else {
                Store::open_existing(&config.data_dir, config.store_cache_mb)?
            };
            let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr());
            let mut session = Session::direct(&config, &store, &mut out, &mut err, !cli.quiet);
            session.upload = spooled.as_deref();
            Ok(ExitCode::from(execute(&mut session, command)?))
        }
        #[cfg(feature = "emulator")]
        Command::Demo(_) => demo::run(),
        Command::Run(args) => run::run(&cli.config, config()?, args),
        Command::Check(_) => check::run(&cli.config, &config()?),
        #[cfg(feature = "emulator")]
        Command::Emulator(args) => emulator::run(args),
        Command::Restore(args) => backup::restore(&config()?, args).map(ExitCode::from),
    }
}

/// Runs an operator command in `session`; its exit code.
fn execute(session: &mut Session, command: &Operator) -> Result<u8, Failure> {
    match command {
        Operator::Import(args) => import::run(session, args),
        Operator::Show(args) => inspect::show(session, args),
        Operator::Status(args) => inspect::status(session, args),
        Operator::List(args) => list::run(session, args),
        Operator::Plan(args) => reconcile::plan(session, args),
        Operator::Sync(args) => reconcile::sync(session, args),
        Operator::Resync(args) => reconcile::resync(session, args),
        Operator::Suspend(args) => reconcile::suspend(session, args),
        Operator::Reinstate(args) => reconcile::reinstate(session, args),
        Operator::Credentials(args) => credentials::credentials(session, args),
        Operator::ResetPassword(args) => credentials::reset_password(session, args),
        Operator::Report(args) => report::run(session, args),
        Operator::Release(args) => release::release(session, args),
        Operator::Rebuild(args) => rebuild::run(session, args),
        Operator::Backup(args) => backup::backup(session, args),
        Operator::Web(args) => web::run(session, args),
    }
}

fn open_store(config: &Config) -> Result<Store, Failure> {
    Ok(Store::open(&config.data_dir, config.store_cache_mb)?)
}

/// Whether an event may be logged whatever `RUST_LOG` says: yup-oauth2 prints the signed
/// assertion and the access token at debug level, so it never gets past info.
fn may_log(target: &str, level: &tracing::Level) -> bool {
    !(target.starts_with("yup_oauth2") && *level > tracing::Level::INFO)
}

/// Logs go to standard error, filtered by `RUST_LOG` (default: warnings; for the daemon
/// also its phases and every action with its account and outcome), never a secret. A
/// command run by hand leaves out sled's own lines: every store error reaches the operator
/// as the command's message (on a full disk sled printed a dozen lines before it).
fn init_logging(format: LogFormat, daemon: bool) {
    use tracing_subscriber::prelude::*;
    let default = if daemon {
        "warn,belajar_sync=info"
    } else {
        "warn,sled=off"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let no_secrets =
        tracing_subscriber::filter::filter_fn(|meta| may_log(meta.target(), meta.level()));
    // Colours only for a terminal: journald and files get plain text.
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let layer = match format {
        LogFormat::Text => layer.boxed(),
        LogFormat::Json => layer.json().boxed(),
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(filter).with_filter(no_secrets))
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yup_oauth2_never_logs_below_info() {
        assert!(!may_log(
            "yup_oauth2::service_account",
            &tracing::Level::DEBUG
        ));
        assert!(!may_log("yup_oauth2", &tracing::Level::TRACE));
        assert!(may_log("yup_oauth2", &tracing::Level::WARN));
        assert!(may_log("belajar_sync::google", &tracing::Level::DEBUG));
    }
}
