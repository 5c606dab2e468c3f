//! `belajar-sync backup` and `restore`: a copy of the store taken while it works (through
//! the daemon when it runs), and a store made from such a copy.

use super::Failure;
use super::session::{Session, say};
use crate::config::Config;
use crate::store::Store;
use crate::store::backup::{BackupError, Copied};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// Where to write the backup (mode 0600). Through the running daemon, only its name
    /// is used: the daemon writes into its daemon.backup_dir (it opens no path a client
    /// names).
    pub file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// A backup written by `belajar-sync backup` (or the daemon's daily one).
    pub file: PathBuf,
    /// Restore a backup that says it belongs to another installation (another customer or
    /// other managed domains than this configuration's); by default it is refused.
    #[arg(long)]
    pub other_installation: bool,
}

impl From<BackupError> for Failure {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::Store(e) => e.into(),
            BackupError::Io { .. } => Failure::Runtime(e.to_string()),
            e => Failure::BadInput(e.to_string()),
        }
    }
}

/// What a copy was, for people.
fn described(copied: &Copied, path: &Path, started: Instant) -> String {
    format!(
        "{}: {} entries of {} keyspaces, {:.1} MB, in {:.1} s",
        path.display(),
        copied.entries,
        copied.trees,
        copied.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    )
}

pub fn backup(s: &mut Session, args: &BackupArgs) -> Result<u8, Failure> {
    let path = match s.daemon {
        None => args.file.clone(),
        Some(_) => {
            let folder = &s.config.daemon.backup_dir;
            if folder.as_os_str().is_empty() {
                return Err(Failure::BadInput(
                    "the daemon writes backups into daemon.backup_dir, which is not set: set it (and reload), or stop the service and back up directly".into(),
                ));
            }
            let name = args.file.file_name().ok_or_else(|| {
                Failure::BadInput(format!("{} names no file", args.file.display()))
            })?;
            folder.join(name)
        }
    };
    let started = Instant::now();
    let copied = s.store.backup(&path, &s.config.installation())?;
    say!(
        s.out,
        "backup written: {}",
        described(&copied, &path, started)
    );
    Ok(0)
}

/// Makes the store of `config` from a backup; never through the daemon (it holds the
/// store).
pub fn restore(config: &Config, args: &RestoreArgs) -> Result<u8, Failure> {
    let started = Instant::now();
    let ours = config.installation();
    let check = (!args.other_installation).then_some(&ours);
    let copied = Store::restore(&config.data_dir, &args.file, config.store_cache_mb, check)?;
    // Opening it checks its schema and rolls back an import the backup caught mid-way.
    let store = Store::open_existing(&config.data_dir, config.store_cache_mb)?;
    let counts = store.counts()?;
    println!(
        "restored {} into {}: {}",
        described(&copied, &args.file, started),
        config.data_dir.display(),
        crate::display::count(counts.total, "account", "accounts")
    );
    Ok(0)
}
