//! `belajar-sync run`: the long-running service. One loop does the work — the inbox of
//! exports, pushing local changes, the scheduled scan — and a watchdog task feeds systemd
//! only while that loop shows signs of life. Operator commands arriving on the control
//! socket run beside it on the same store ([`Shared`]). A signal asks the loop to stop
//! between batches; calls in flight get `stop_timeout` to finish; the journal makes an
//! abrupt end safe.

use crate::config::{Config, ConfigError};
use crate::executor::DrainError;
use crate::executor::{Executor, RunControl};
use crate::google::DirectoryClient;
use crate::import::{self, Options, source::Source};
use crate::reconciler::{self, Suspensions, SyncOptions};
use crate::store::Store;
use crate::{journal, remote};
use jiff::Timestamp;
use sd_notify::NotifyState;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Why the daemon could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("reopening the store failed: {0}")]
    Reopen(String),
    #[error("the import of the inbox failed: {0}")]
    Inbox(String),
}

/// What the daemon's loop and the commands of its control socket share.
pub struct Shared {
    /// The store (it gives back the memory of long reads itself, see [`Store`]).
    store: Arc<Store>,
    pub client: Arc<DirectoryClient>,
    /// The stop request and heartbeat of everything that sends to Google for the daemon.
    pub control: Arc<RunControl>,
    /// The configuration in force (SIGHUP replaces what can change while running).
    config: RwLock<Arc<Config>>,
    /// Held by a round of the loop and by a `sync` asked through the socket: one at a time.
    rounds: tokio::sync::Mutex<()>,
    /// Held by an import (the inbox's or one asked through the socket): one at a time.
    imports: Mutex<()>,
    /// Set when a command changed the directory: the loop plans at its next round.
    changed: AtomicBool,
    /// Wakes the loop early (a command changed the directory).
    wake: tokio::sync::Notify,
    /// What the loop is doing, for `status`.
    phase: Mutex<String>,
    /// The inbox export waiting for disk space, once said (it is not said every round).
    inbox_waiting: Mutex<Option<PathBuf>>,
    /// When the loop next wakes (`None` while it works): the Cek Akun page tells a person
    /// whose account waits when the next round is expected.
    next_round: Mutex<Option<Timestamp>>,
}

impl Shared {
    pub fn new(config: Config, store: Arc<Store>, client: Arc<DirectoryClient>) -> Shared {
        Shared {
            store,
            client,
            control: Arc::default(),
            config: RwLock::new(Arc::new(config)),
            rounds: tokio::sync::Mutex::new(()),
            imports: Mutex::new(()),
            changed: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
            inbox_waiting: Mutex::new(None),
            phase: Mutex::new("starting".into()),
            next_round: Mutex::new(None),
        }
    }

    /// The store, held for as long as the returned value lives.
    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    pub fn config(&self) -> Arc<Config> {
        self.config.read().expect("config lock").clone()
    }

    pub fn phase(&self) -> String {
        self.phase.lock().expect("phase lock").clone()
    }

    /// The inbox export that waits for disk space, if one does.
    pub fn inbox_waiting(&self) -> Option<PathBuf> {
        self.inbox_waiting.lock().expect("inbox lock").clone()
    }

    /// Tells systemd (when it is listening), the log and `status` what the daemon does.
    pub fn set_phase(&self, text: &str) {
        tracing::info!(phase = text, "daemon");
        let _ = sd_notify::notify(&[NotifyState::Status(text)]);
        *self.phase.lock().expect("phase lock") = text.to_owned();
    }

    /// When the loop next wakes; `None` while it works (or before its first round ends).
    pub fn next_round(&self) -> Option<Timestamp> {
        *self.next_round.lock().expect("next round lock")
    }

    fn set_next_round(&self, at: Option<Timestamp>) {
        *self.next_round.lock().expect("next round lock") = at;
    }

    /// Waits (saying so on `err`) until no round of the loop runs; none starts while the
    /// returned guard is held. For a blocking thread.
    pub fn one_round(&self, err: &mut dyn Write) -> tokio::sync::MutexGuard<'_, ()> {
        self.rounds.try_lock().unwrap_or_else(|_| {
            let _ = writeln!(
                err,
                "waiting for the daemon's current round (sync or scan) to end"
            );
            self.rounds.blocking_lock()
        })
    }

    /// Waits (saying so on `err`) until no other import runs.
    pub fn one_import(&self, err: &mut dyn Write) -> std::sync::MutexGuard<'_, ()> {
        self.imports.try_lock().unwrap_or_else(|_| {
            let _ = writeln!(err, "waiting for the import the daemon is running to end");
            self.imports.lock().expect("import lock")
        })
    }

    /// A command changed the directory: the loop plans now.
    pub fn directory_changed(&self) {
        self.changed.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Re-reads the configuration at `path` and takes what can change while running (see
    /// [`reloaded`]).
    pub fn reload(&self, path: &Path) -> Result<Reloaded, ConfigError> {
        let new = Config::load(path)?;
        let (config, changes) = reloaded(&self.config(), new);
        *self.config.write().expect("config lock") = Arc::new(config);
        self.wake.notify_one();
        Ok(changes)
    }
}

/// The configuration to run with after a reload from `old` to `new`, and what changed:
/// the store, Google's credentials and client, and the listening sockets keep their
/// running values until a restart; the rest is taken at the loop's next round.
pub fn reloaded(old: &Config, mut new: Config) -> (Config, Reloaded) {
    let mut changes = Reloaded::default();
    let live = [
        ("naming", new.naming == old.naming),
        ("lifecycle", new.lifecycle == old.lifecycle),
        ("sync", new.sync == old.sync),
        (
            "daemon.scan_interval",
            new.daemon.scan_interval == old.daemon.scan_interval,
        ),
        (
            "daemon.push_interval",
            new.daemon.push_interval == old.daemon.push_interval,
        ),
        (
            "daemon.inbox_dir",
            new.daemon.inbox_dir == old.daemon.inbox_dir,
        ),
        (
            "daemon.stop_timeout",
            new.daemon.stop_timeout == old.daemon.stop_timeout,
        ),
        ("web.helpdesk", new.web.helpdesk == old.web.helpdesk),
        ("web.admins", new.web.admins == old.web.admins),
    ];
    // The console's other settings (its socket, TLS, sign-in client, limits) are read
    // when it starts.
    let mut web = old.web.clone();
    web.helpdesk.clone_from(&new.web.helpdesk);
    web.admins.clone_from(&new.web.admins);
    let at_restart = [
        ("data_dir", new.data_dir == old.data_dir),
        ("store_cache_mb", new.store_cache_mb == old.store_cache_mb),
        ("google", new.google == old.google),
        (
            "daemon.metrics_listen",
            new.daemon.metrics_listen == old.daemon.metrics_listen,
        ),
        (
            "daemon.control_socket",
            new.daemon.control_socket == old.daemon.control_socket,
        ),
        ("web", web == new.web),
    ];
    changes.applied = live
        .iter()
        .filter(|(_, same)| !same)
        .map(|(k, _)| *k)
        .collect();
    changes.needs_restart = at_restart
        .iter()
        .filter(|(_, same)| !same)
        .map(|(k, _)| *k)
        .collect();
    new.data_dir.clone_from(&old.data_dir);
    new.store_cache_mb = old.store_cache_mb;
    new.google.clone_from(&old.google);
    new.daemon
        .metrics_listen
        .clone_from(&old.daemon.metrics_listen);
    new.daemon
        .control_socket
        .clone_from(&old.daemon.control_socket);
    new.web = web;
    (new, changes)
}

/// What a reload took, and what waits for a restart.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    pub applied: Vec<&'static str>,
    pub needs_restart: Vec<&'static str>,
}

/// Refuses what must not run: root without `--allow-root`, a data folder others can read,
/// a mail relay whose settings or credentials file are wrong.
pub fn preflight(config: &Config, allow_root: bool) -> Result<(), DaemonError> {
    use std::os::unix::fs::PermissionsExt;
    if config.mail.enabled() {
        crate::notices::check(&config.mail).map_err(DaemonError::Refused)?;
    }
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

/// How often the daemon looks for notices to send when no sync ran, and at most after one.
const NOTICES_EVERY: std::time::Duration = std::time::Duration::from_secs(10 * 60);
const NOTICES_AFTER_SYNC: std::time::Duration = std::time::Duration::from_secs(60);

/// How long after a failed daily backup the next is tried.
const BACKUP_RETRY: std::time::Duration = std::time::Duration::from_secs(3600);

/// How long one round may spend sending notices (the journal's pushes and a stop wait
/// for it); what is left goes at the next round.
const NOTICES_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

/// Runs until `shutdown` fires (or a second signal ends the process).
pub async fn run(
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), DaemonError> {
    let control = shared.control.clone();
    control.beat();
    let watchdog = tokio::spawn(feed_watchdog(control.clone()));
    let _ = sd_notify::notify(&[NotifyState::Ready]);
    shared.set_phase("started");

    let mut changed = true; // plan once at start
    let mut notices = NoticeRounds::default();
    let mut backup_failed_at: Option<tokio::time::Instant> = None;
    loop {
        control.beat();
        if *shutdown.borrow() {
            break;
        }
        let store = shared.store();
        // The configuration of this round (a reload takes effect at the next).
        let config = shared.config();
        // On a disk too full, nothing is written: the work waits (and the phase says why).
        if disk_too_full(&shared, &config, &store)? {
            drop(store);
            tokio::select! {
                _ = tokio::time::sleep(config.daemon.push_interval.unsigned_abs()) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        if import_inbox(&shared, &config).await? {
            changed = true;
        }
        changed |= shared.changed.swap(false, Ordering::SeqCst);
        let last = remote::last_scan(&store)?;
        let scan_every = config.daemon.scan_interval.unsigned_abs();
        let scan_due = last
            .finished
            .is_none_or(|at| Timestamp::now().duration_since(at).unsigned_abs() >= scan_every);
        // Only whether anything waits: the journal is not counted every round.
        let waiting = journal::entries(&store).next().is_some();
        let mut synced = false;
        if scan_due || changed || waiting {
            let round_held = tokio::select! {
                held = shared.rounds.lock() => held,
                _ = shutdown.changed() => break,
            };
            shared.set_phase(if scan_due {
                "scanning and syncing"
            } else {
                "pushing changes"
            });
            let planned = scan_due || changed;
            synced = planned;
            let finished =
                round(&shared, &config, &store, scan_due, changed, &mut shutdown).await?;
            drop(round_held);
            if !finished {
                break;
            }
            changed = false;
            drop(store);
            after_round(&shared, planned).await?;
        }
        notices.deliver_if_due(&shared, &config, synced).await;
        daily_backup(&shared, &config, &mut backup_failed_at).await;
        shared.set_next_round(Some(Timestamp::now() + config.daemon.push_interval));
        tokio::select! {
            _ = tokio::time::sleep(config.daemon.push_interval.unsigned_abs()) => {}
            _ = shared.wake.notified() => {}
            _ = shutdown.changed() => {}
        }
        shared.set_next_round(None);
    }
    control.request_stop();
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
    watchdog.abort();
    shared.store().flush()?;
    shared.set_phase("stopped");
    Ok(())
}

/// Whether the disk is too full to write (the phase then says so); an error other than
/// the disk's ends the daemon.
fn disk_too_full(shared: &Shared, config: &Config, store: &Store) -> Result<bool, DaemonError> {
    let Err(low) = store.ensure_free_space(config.min_free_disk_mb << 20) else {
        return Ok(false);
    };
    if !low.is_disk_space() {
        return Err(low.into());
    }
    let waiting = format!("waiting for disk space: {low}");
    if shared.phase() != waiting {
        tracing::warn!(error = %low, "disk space low: the daemon writes nothing until there is space");
        shared.set_phase(&waiting);
    }
    Ok(true)
}

/// After a round: the phase says whether Google answers; a planned round's memory is
/// given back by reopening the store.
async fn after_round(shared: &Shared, planned: bool) -> Result<(), DaemonError> {
    let after = match shared.client.circuit.outage() {
        Some(outage) => format!(
            "Google unreachable since {} ({}): the journal keeps the work",
            outage.since, outage.reason
        ),
        None => "idle".to_owned(),
    };
    if planned {
        let store = shared.store();
        let reopened = tokio::task::spawn_blocking(move || store.give_back_memory())
            .await
            .map_err(|e| DaemonError::Reopen(e.to_string()))??;
        if reopened {
            tracing::info!("store reopened to give back the memory of the round");
        }
    }
    shared.set_phase(&after);
    Ok(())
}

/// When notices to retiring accounts were last sent, and whether that pass left some.
#[derive(Default)]
struct NoticeRounds {
    at: Option<tokio::time::Instant>,
    left: bool,
}

impl NoticeRounds {
    /// Notices to retiring accounts: after a sync (it may have retired accounts) but at
    /// most once a minute, since the due ones are found by reading every retiring
    /// account's schedule; and at least every NOTICES_EVERY (a new day brings new ones,
    /// failed ones are tried again); at once while a round's budget left some.
    async fn deliver_if_due(&mut self, shared: &Shared, config: &Config, synced: bool) {
        let every = if synced {
            NOTICES_AFTER_SYNC
        } else {
            NOTICES_EVERY
        };
        if !config.mail.enabled() || !(self.left || self.at.is_none_or(|at| at.elapsed() >= every))
        {
            return;
        }
        let started = tokio::time::Instant::now();
        self.at = Some(started);
        let store = shared.store();
        let until = Some(started + NOTICES_BUDGET);
        let d = crate::notices::deliver(&store, config, reconciler::today(), until).await;
        self.left = d.cut_short;
        match d.not_sent {
            Some(error) => tracing::warn!(%error, "notices not sent"),
            None if d.queued + d.sent + d.failed > 0 => tracing::info!(
                queued = d.queued,
                sent = d.sent,
                failed = d.failed,
                last_error = d.last_error,
                more = d.cut_short,
                "notices"
            ),
            None => {}
        }
    }
}

/// A copy of the store a day, when a backup folder is set; after a failure, not tried
/// again (nor logged again) for BACKUP_RETRY.
async fn daily_backup(
    shared: &Shared,
    config: &Arc<Config>,
    failed_at: &mut Option<tokio::time::Instant>,
) {
    if config.daemon.backup_dir.as_os_str().is_empty()
        || failed_at.is_some_and(|at| at.elapsed() < BACKUP_RETRY)
    {
        return;
    }
    let (store, config) = (shared.store(), config.clone());
    let backup = tokio::task::spawn_blocking(move || {
        let (folder, keep) = (&config.daemon.backup_dir, config.daemon.backup_keep);
        crate::store::backup::daily(&store, folder, keep, &config.installation())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|done| done);
    *failed_at = None;
    match backup {
        Ok(Some(path)) => tracing::info!(path = %path.display(), "daily backup written"),
        Ok(None) => {}
        // Not fatal: the store is whole.
        Err(error) => {
            tracing::warn!(%error, "the daily backup failed; tried again in an hour");
            *failed_at = Some(tokio::time::Instant::now());
        }
    }
}

/// One round, cut short by `shutdown` (calls in flight then get `stop_timeout`): whether
/// it finished.
async fn round(
    shared: &Shared,
    config: &Config,
    store: &Store,
    scan: bool,
    changed: bool,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<bool, DaemonError> {
    let control = &*shared.control;
    let work = work(config, store, &shared.client, control, scan, changed);
    tokio::pin!(work);
    tokio::select! {
        done = &mut work => done.map(|()| true),
        _ = shutdown.changed() => {
            // Stop taking work; let what is in flight finish within the bound.
            shared.set_phase("stopping: letting calls in flight finish");
            control.request_stop();
            let stop_timeout = config.daemon.stop_timeout.unsigned_abs();
            if tokio::time::timeout(stop_timeout, &mut work).await.is_err() {
                tracing::warn!("calls still in flight after stop_timeout: left to the journal");
            }
            Ok(false)
        }
    }
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
        .map_err(Stopped::from)
    } else {
        let executor = Executor::new(store, client, config, None, Some(control));
        executor.drain(None).await.map(drop).map_err(Stopped::from)
    };
    match result {
        Ok(()) => Ok(()),
        // The disk filled during the round: what was written is whole (commits are
        // atomic) and the journal keeps the rest; the loop waits for space.
        Err(Stopped::Store(e)) if e.is_disk_space() => {
            tracing::warn!(error = %e, "round stopped; the journal keeps the work");
            Ok(())
        }
        // The store failed: the daemon stops (systemd restarts it) rather than go on blind.
        Err(Stopped::Store(e)) => Err(DaemonError::Store(e)),
        Err(Stopped::Other(error)) => {
            // Google unreachable, a token refused: the journal keeps the work for the next
            // round.
            tracing::warn!(%error, "round stopped; the journal keeps the work");
            Ok(())
        }
    }
}

/// Why a round stopped: the store (fatal), or anything else (the next round tries again).
enum Stopped {
    Store(crate::store::StoreError),
    Other(String),
}

impl From<reconciler::SyncError> for Stopped {
    fn from(e: reconciler::SyncError) -> Self {
        use reconciler::SyncError;
        use reconciler::scan::ScanError;
        match e {
            SyncError::Store(e)
            | SyncError::Scan(ScanError::Store(e))
            | SyncError::Drain(DrainError::Store(e)) => Stopped::Store(e),
            other => Stopped::Other(other.to_string()),
        }
    }
}

impl From<DrainError> for Stopped {
    fn from(e: DrainError) -> Self {
        match e {
            DrainError::Store(e) => Stopped::Store(e),
            other => Stopped::Other(other.to_string()),
        }
    }
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

/// Imports the inbox on a thread of its own while the loop feeds the watchdog from the
/// import's progress (an export of millions of rows outlasts `WatchdogSec`; an import
/// that stops moving does not keep the watchdog fed).
async fn import_inbox(shared: &Arc<Shared>, config: &Arc<Config>) -> Result<bool, DaemonError> {
    if config.daemon.inbox_dir.as_os_str().is_empty() {
        return Ok(false);
    }
    let progress = indicatif::ProgressBar::hidden();
    let import = {
        let (shared, config, progress) = (shared.clone(), config.clone(), progress.clone());
        tokio::task::spawn_blocking(move || imported_inbox(&shared, &config, &progress))
    };
    tokio::pin!(import);
    let mut seen = progress.position();
    loop {
        tokio::select! {
            done = &mut import => return done.map_err(|e| DaemonError::Inbox(e.to_string()))?,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {
                if progress.position() != seen {
                    seen = progress.position();
                    shared.control.beat();
                }
            }
        }
    }
}

/// Imports each export found in the inbox (oldest name first), then moves it to
/// `processed/`, or to `rejected/` with a `.error` file saying why. Whether any changed
/// the directory.
fn imported_inbox(
    shared: &Shared,
    config: &Config,
    progress: &indicatif::ProgressBar,
) -> Result<bool, DaemonError> {
    let inbox = &config.daemon.inbox_dir;
    // An import asked through the socket runs: the inbox waits for the next round.
    let Ok(_one_import) = shared.imports.try_lock() else {
        return Ok(false);
    };
    let store = &*shared.store();
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
        shared.set_phase(&format!("importing {}", file.display()));
        let mut out_of_space = None;
        let outcome = Source::new(&file, None)
            .map_err(|e| e.to_string())
            .and_then(|source| {
                let options = Options {
                    delta: false,
                    skip_invalid: false,
                    dry_run: false,
                    today: reconciler::today(),
                    actor: "the daemon's inbox".into(),
                    max_retire_share: Some(config.lifecycle.max_retire_share),
                    min_free_disk: config.min_free_disk_mb << 20,
                };
                import::run(store, &config.naming, &source, options, progress).map_err(|e| {
                    match e {
                        // Not the file's fault: it stays in the inbox for when there is room.
                        import::ImportError::Store(e) if e.is_disk_space() => {
                            out_of_space = Some(e.to_string());
                            e.to_string()
                        }
                        e => e.to_string(),
                    }
                })
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
        let mut waiting = shared.inbox_waiting.lock().expect("inbox lock");
        if let Some(error) = out_of_space {
            if waiting.as_ref() != Some(&file) {
                tracing::warn!(file = %file.display(), %error, "export left in the inbox until there is disk space");
                *waiting = Some(file);
            }
            break;
        }
        *waiting = None;
        drop(waiting);
        match outcome {
            Ok(summary) => {
                changed |= !summary.changed_nothing();
                move_to(&file, "processed", None);
                tracing::info!(file = %file.display(), created = summary.created, updated = summary.updated, retiring = summary.retiring, "imported");
                for held in &summary.held_schools {
                    tracing::warn!(
                        file = %file.display(),
                        school = %held.npsn,
                        retiring = held.retiring,
                        active = held.active,
                        "retirements held: the snapshot leaves out too much of the school (a truncated export?); if meant, belajar-sync import --allow-mass-retire FILE"
                    );
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_store_ends_the_daemon_and_a_failed_google_waits_for_the_next_round() {
        use crate::store::StoreError;
        let corrupt = || StoreError::Corrupt {
            path: "/var/lib/belajar-sync".into(),
            detail: "bad page".into(),
        };
        let scan = reconciler::scan::ScanError::Store(corrupt());
        for stopped in [
            Stopped::from(reconciler::SyncError::Store(corrupt())),
            Stopped::from(reconciler::SyncError::Scan(scan)),
            Stopped::from(DrainError::Store(corrupt())),
        ] {
            assert!(matches!(stopped, Stopped::Store(_)));
        }
        let outage = DrainError::Stopped("cannot reach Google".into());
        assert!(matches!(Stopped::from(outage), Stopped::Other(_)));
    }

    #[test]
    fn a_reload_takes_what_can_change_and_keeps_the_rest_until_a_restart() {
        let old = Config::default();
        let mut new = Config::default();
        new.daemon.push_interval = jiff::SignedDuration::from_secs(2);
        new.sync.max_suspensions = 10;
        new.google.requests_per_minute = Some(1200);
        new.data_dir = "/elsewhere".into();
        new.web.helpdesk = vec!["agen@belajar.id".into()];
        new.web.resets_per_hour = 99;
        let (running, changes) = reloaded(&old, new);
        assert_eq!(
            changes.applied,
            ["sync", "daemon.push_interval", "web.helpdesk"]
        );
        assert_eq!(changes.needs_restart, ["data_dir", "google", "web"]);
        assert_eq!(running.web.helpdesk, ["agen@belajar.id"]);
        assert_eq!(running.web.resets_per_hour, old.web.resets_per_hour);
        assert_eq!(
            running.daemon.push_interval,
            jiff::SignedDuration::from_secs(2)
        );
        assert_eq!(running.sync.max_suspensions, 10);
        assert_eq!(running.google, old.google);
        assert_eq!(running.data_dir, old.data_dir);
        let (_, nothing) = reloaded(&old, old.clone());
        assert_eq!(nothing, Reloaded::default());
    }
}
