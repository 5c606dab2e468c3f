//! `belajar-sync run`: the long-running service. One loop does the work — the inbox of
//! exports, pushing local changes, the scheduled scan — and a watchdog task feeds systemd
//! only while that loop shows signs of life. A signal asks the loop to stop between
//! batches; calls in flight get `stop_timeout` to finish; the journal makes an abrupt end
//! safe.

use crate::config::Config;
use crate::directory::import::{self, Options, source::Source};
use crate::directory::store::Store;
use crate::executor::{Executor, RunControl};
use crate::google::DirectoryClient;
use crate::reconciler::{self, Suspensions, SyncOptions};
use crate::{journal, remote};
use jiff::Timestamp;
use sd_notify::NotifyState;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Why the daemon could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] crate::directory::store::StoreError),
}

/// Tells systemd (when it is listening) and the log what the daemon is doing.
fn status(text: &str) {
    tracing::info!(phase = text, "daemon");
    let _ = sd_notify::notify(&[NotifyState::Status(text)]);
}

/// Refuses what must not run: root without `--allow-root`, a data folder others can read.
pub fn preflight(config: &Config, allow_root: bool) -> Result<(), DaemonError> {
    use std::os::unix::fs::PermissionsExt;
    if !allow_root && effective_uid() == Some(0) {
        return Err(DaemonError::Refused(
            "refusing to run as root: run as the belajar-sync user (systemd/belajar-sync.service does), or pass --allow-root".into(),
        ));
    }
    if let Ok(meta) = std::fs::metadata(&config.data_dir) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o007 != 0 {
            return Err(DaemonError::Refused(format!(
                "the data folder {} is open to others (mode {mode:o}): run chmod o-rwx {}",
                config.data_dir.display(),
                config.data_dir.display()
            )));
        }
    }
    Ok(())
}

/// The effective user id, from /proc (Linux).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Runs until `shutdown` fires (or a second signal ends the process).
pub async fn run(
    config: &Config,
    store: &Store,
    client: &DirectoryClient,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), DaemonError> {
    let control = Arc::new(RunControl::default());
    control.beat();
    let watchdog = tokio::spawn(feed_watchdog(control.clone()));
    let _ = sd_notify::notify(&[NotifyState::Ready]);
    status("started");

    let push = config.daemon.push_interval.unsigned_abs();
    let scan_every = config.daemon.scan_interval.unsigned_abs();
    let stop_timeout = config.daemon.stop_timeout.unsigned_abs();
    let mut changed = true; // plan once at start
    loop {
        control.beat();
        if *shutdown.borrow() {
            break;
        }
        if imported_inbox(config, store)? {
            changed = true;
        }
        let last = remote::last_scan(store)?;
        let scan_due = last
            .finished
            .is_none_or(|at| Timestamp::now().duration_since(at).unsigned_abs() >= scan_every);
        // Only whether anything waits: the journal is not counted every round.
        let waiting = journal::entries(store).next().is_some();
        if scan_due || changed || waiting {
            status(if scan_due {
                "scanning and syncing"
            } else {
                "pushing changes"
            });
            let work = work(config, store, client, &control, scan_due, changed);
            tokio::pin!(work);
            let finished = tokio::select! {
                done = &mut work => Some(done),
                _ = shutdown.changed() => None,
            };
            match finished {
                Some(done) => {
                    done?;
                    changed = false;
                }
                None => {
                    // Stop taking work; let what is in flight finish within the bound.
                    status("stopping: letting calls in flight finish");
                    control.request_stop();
                    if tokio::time::timeout(stop_timeout, &mut work).await.is_err() {
                        tracing::warn!(
                            "calls still in flight after stop_timeout: left to the journal"
                        );
                    }
                    break;
                }
            }
            status("idle");
        }
        tokio::select! {
            _ = tokio::time::sleep(push) => {}
            _ = shutdown.changed() => {}
        }
    }
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
    watchdog.abort();
    store.flush()?;
    status("stopped");
    Ok(())
}

/// One round of work: a sync with a scan when due, a sync without when the directory
/// changed, else only the journal drained.
async fn work(
    config: &Config,
    store: &Store,
    client: &DirectoryClient,
    control: &RunControl,
    scan: bool,
    changed: bool,
) -> Result<(), DaemonError> {
    let result = if scan || changed {
        let options = SyncOptions {
            scan,
            suspensions: Suspensions::Guarded,
            max_wait: Duration::ZERO,
            control: Some(control),
        };
        reconciler::sync(
            store,
            client,
            config,
            reconciler::today(),
            options,
            |phase| tracing::debug!(phase, "sync"),
        )
        .await
        .map(|report| {
            tracing::info!(
                done = ?report.done,
                conflicts = report.conflicts,
                quarantine = report.quarantine,
                guard_held = report.guard.is_some(),
                scan_distrusted = report.distrusted.is_some(),
                "sync finished"
            );
        })
        .map_err(|e| e.to_string())
    } else {
        let executor = Executor {
            store,
            client,
            concurrency: config.google.concurrency as usize,
            control: Some(control),
        };
        executor
            .drain(None)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    };
    if let Err(error) = result {
        // Google unreachable, a token refused: the journal keeps the work for the next round.
        tracing::warn!(%error, "round stopped; the journal keeps the work");
    }
    Ok(())
}

/// Sends `WATCHDOG=1` at half the interval systemd asked for, but only while the work
/// loop has shown progress within the interval: a stuck loop gets restarted.
async fn feed_watchdog(control: Arc<RunControl>) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let half = interval / 2;
    loop {
        tokio::time::sleep(half).await;
        if control.silent_for() < interval.as_secs().max(1) as i64 {
            let _ = sd_notify::notify(&[NotifyState::Watchdog]);
        } else {
            tracing::warn!("the work loop shows no progress: not feeding the watchdog");
        }
    }
}

/// Imports each export found in the inbox (oldest name first), then moves it to
/// `processed/`, or to `rejected/` with a `.error` file saying why. Whether any changed
/// the directory.
fn imported_inbox(config: &Config, store: &Store) -> Result<bool, DaemonError> {
    let inbox = &config.daemon.inbox_dir;
    if inbox.as_os_str().is_empty() {
        return Ok(false);
    }
    let Ok(entries) = std::fs::read_dir(inbox) else {
        tracing::warn!(inbox = %inbox.display(), "cannot read the inbox");
        return Ok(false);
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    let mut changed = false;
    for file in files {
        status(&format!("importing {}", file.display()));
        let outcome = Source::new(&file, None)
            .map_err(|e| e.to_string())
            .and_then(|source| {
                let options = Options {
                    delta: false,
                    skip_invalid: false,
                    dry_run: false,
                    today: reconciler::today(),
                };
                import::run(
                    store,
                    &config.naming,
                    &source,
                    options,
                    &indicatif::ProgressBar::hidden(),
                )
                .map_err(|e| e.to_string())
            })
            .and_then(|summary| {
                if summary.invalid == 0 {
                    return Ok(summary);
                }
                // Nothing was applied: say which rows are wrong.
                let lines: Vec<String> = summary.errors.iter().map(ToString::to_string).collect();
                Err(format!(
                    "{} invalid rows, nothing imported:\n{}",
                    summary.invalid,
                    lines.join("\n")
                ))
            });
        match outcome {
            Ok(summary) => {
                changed |= !summary.changed_nothing();
                move_to(&file, "processed", None);
                tracing::info!(file = %file.display(), created = summary.created, updated = summary.updated, retiring = summary.retiring, "imported");
            }
            Err(error) => {
                move_to(&file, "rejected", Some(&error));
                tracing::warn!(file = %file.display(), %error, "export rejected");
            }
        }
    }
    Ok(changed)
}

/// Moves `file` into the sibling folder `folder` of its inbox, with an `.error` file.
fn move_to(file: &Path, folder: &str, error: Option<&str>) {
    let Some(inbox) = file.parent() else { return };
    let target_dir = inbox.join(folder);
    let _ = std::fs::create_dir_all(&target_dir);
    let name = file.file_name().unwrap_or_default();
    let target = target_dir.join(name);
    if let Err(e) = std::fs::rename(file, &target) {
        tracing::warn!(file = %file.display(), error = %e, "cannot move the export out of the inbox");
        return;
    }
    if let Some(error) = error {
        let mut note = target.into_os_string();
        note.push(".error");
        let _ = std::fs::write(note, format!("{error}\n"));
    }
}
