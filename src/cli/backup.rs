//! `belajar-sync backup` and `restore`: a copy of the store taken while it works (through
//! the daemon when it runs), and a store made from such a copy.

use super::Failure;
use super::session::{Session, say};
use crate::config::Config;
use crate::store::Store;
use crate::store::backup::{BackupError, Copied, Installation};
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

/// The installation this configuration manages, as a backup records it.
pub fn installation(config: &Config) -> Installation {
    Installation {
        customer: config.google.customer.clone(),
        domains: config.naming.domains(),
    }
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
    let copied = s.store.backup(&path, &installation(s.config))?;
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
    let ours = installation(config);
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

/// The daemon's daily backup: when the newest file in `backup_dir` is a day old (or there
/// is none), writes `belajar-sync-DATE.backup` and keeps the `keep` newest.
pub fn daily(store: &Store, config: &Config) -> Result<Option<PathBuf>, Failure> {
    let folder = &config.daemon.backup_dir;
    if folder.as_os_str().is_empty() {
        return Ok(None);
    }
    let cannot =
        |e: std::io::Error| Failure::Runtime(format!("backup folder {}: {e}", folder.display()));
    std::fs::create_dir_all(folder).map_err(cannot)?;
    let day = std::time::Duration::from_secs(24 * 3600);
    let mut backups: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(folder)
        .map_err(cannot)?
        .filter_map(Result::ok)
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(modified) = entry.metadata().ok().and_then(|m| m.modified().ok()) else {
            continue;
        };
        if name.starts_with("belajar-sync-") && name.ends_with(".backup") {
            backups.push((modified, entry.path()));
        } else if name.starts_with(".backup-") && modified.elapsed().is_ok_and(|age| age > day) {
            // What a backup killed half-way left (one under way is never a day old).
            let _ = std::fs::remove_file(entry.path());
        }
    }
    backups.sort();
    if backups
        .last()
        .is_some_and(|(at, _)| at.elapsed().is_ok_and(|age| age < day))
    {
        return Ok(None);
    }
    let name = format!(
        "belajar-sync-{}.backup",
        jiff::Zoned::now().strftime("%Y-%m-%dT%H%M%S")
    );
    let path = folder.join(name);
    store.backup(&path, &installation(config))?;
    backups.push((std::time::SystemTime::now(), path.clone()));
    let keep = config.daemon.backup_keep.max(1) as usize;
    let excess = backups.len().saturating_sub(keep);
    for (_, old) in backups.drain(..excess) {
        let _ = std::fs::remove_file(old);
    }
    Ok(Some(path))
}
