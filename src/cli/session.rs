//! What an operator command runs with: the configuration, the store, Google, and where
//! its output goes. Either the command opens the store itself and writes to the terminal,
//! or the daemon runs it for a client of its control socket, with the daemon's store and
//! Google client, and its output goes back over the socket. The commands cannot tell.

use super::Failure;
use crate::config::Config;
use crate::daemon::Shared;
use crate::google::DirectoryClient;
use crate::store::Store;
use std::io::Write;
use std::path::Path;

/// Writes one line to `writer` (a session's `out` or `err`); a reader that went away
/// (a closed pager, a client that hung up) is not an error of the command.
macro_rules! say {
    ($writer:expr, $($arg:tt)*) => {{
        let _ = writeln!($writer, $($arg)*);
    }};
}

pub(crate) use say;

pub struct Session<'a> {
    pub config: &'a Config,
    pub store: &'a Store,
    pub google: Google<'a>,
    pub runtime: Runtime,
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    /// Progress (a sync's phases, an import's bar on a terminal) may be shown on standard
    /// error: `--quiet` was not given.
    pub progress: bool,
    /// Set when the daemon runs the command: its locks, its stop, its wake-up.
    pub daemon: Option<&'a Shared>,
    /// For `import`: where the file to read was put (what the daemon received through the
    /// socket, or an export read from a pipe), when not at the path the operator named.
    pub upload: Option<&'a Path>,
    /// Who asked: the operator's Unix user (this process's, or the socket client's from
    /// its peer credentials), recorded in the history of what the command changes.
    pub actor: String,
    /// Where a file made for the operator (a credentials sheet) goes.
    pub files: Box<dyn Deliver + 'a>,
}

/// What the daemon knows of a client of its control socket.
pub struct Caller<'a> {
    /// For `import`: where the daemon put the file it received.
    pub upload: Option<&'a Path>,
    /// Progress may be shown (the client was not given `--quiet`).
    pub progress: bool,
    /// The client's Unix user.
    pub actor: String,
    /// Sends files back to the client, which writes them.
    pub files: Box<dyn Deliver + 'a>,
}

/// Puts a file made for the operator where they asked, private and whole or not at all.
pub trait Deliver {
    fn deliver(&mut self, path: &Path, contents: &[u8]) -> Result<(), String>;
}

/// The command runs in the operator's own process: it writes the file itself.
pub struct WriteHere;

impl Deliver for WriteHere {
    fn deliver(&mut self, path: &Path, contents: &[u8]) -> Result<(), String> {
        write_private(path, contents).map_err(|e| e.to_string())
    }
}

/// Writes `contents` to `path` with mode 0600, atomically: a temporary file in the same
/// folder, synced, then renamed over `path`. A failure (a full disk) leaves no file.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let folder = folder_of(path);
    // tempfile creates its files with mode 0600 whatever the umask.
    let mut file = tempfile::Builder::new()
        .prefix(".belajar-sync-")
        .tempfile_in(folder)?;
    file.write_all(contents)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(folder)?.sync_all()
}

/// Checks, before any work, that a file can be written beside `path`.
pub fn check_writable(path: &Path) -> Result<(), String> {
    tempfile::Builder::new()
        .prefix(".belajar-sync-")
        .tempfile_in(folder_of(path))
        .map(drop)
        .map_err(|e| format!("cannot write in {}: {e}", folder_of(path).display()))
}

fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The name of the Unix user `uid` (its number when the system has no name for it).
pub fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| format!("uid {uid}"), |u| u.name)
}

/// The Google client: made on first use by a command that opened the store itself, or
/// the daemon's.
pub enum Google<'a> {
    Own(Box<tokio::sync::OnceCell<DirectoryClient>>),
    Daemon(&'a DirectoryClient),
}

/// Where async work runs: a runtime made on first use, or the daemon's (the command runs
/// on one of its blocking threads).
pub enum Runtime {
    Own(std::sync::OnceLock<tokio::runtime::Runtime>),
    Daemon(tokio::runtime::Handle),
}

impl<'a> Session<'a> {
    /// A command that opened the store itself, writing to this process's terminal.
    pub fn direct(
        config: &'a Config,
        store: &'a Store,
        out: &'a mut dyn Write,
        err: &'a mut dyn Write,
        progress: bool,
    ) -> Session<'a> {
        Session {
            config,
            store,
            google: Google::Own(Box::default()),
            runtime: Runtime::Own(std::sync::OnceLock::new()),
            out,
            err,
            progress,
            daemon: None,
            upload: None,
            actor: user_name(nix::unistd::getuid().as_raw()),
            files: Box::new(WriteHere),
        }
    }

    /// A command the daemon runs for a client of its control socket. Must be called on a
    /// thread of the daemon's runtime's blocking pool.
    pub fn in_daemon(
        shared: &'a Shared,
        store: &'a Store,
        config: &'a Config,
        out: &'a mut dyn Write,
        err: &'a mut dyn Write,
        caller: Caller<'a>,
    ) -> Session<'a> {
        Session {
            config,
            store,
            google: Google::Daemon(&shared.client),
            runtime: Runtime::Daemon(tokio::runtime::Handle::current()),
            out,
            err,
            progress: caller.progress,
            daemon: Some(shared),
            upload: caller.upload,
            actor: caller.actor,
            files: caller.files,
        }
    }
}

impl Runtime {
    /// Runs `future` to its end.
    pub fn block_on<F: Future>(&self, future: F) -> Result<F::Output, Failure> {
        match self {
            Runtime::Own(cell) => {
                if cell.get().is_none() {
                    let runtime = tokio::runtime::Runtime::new()
                        .map_err(|e| Failure::Runtime(format!("cannot start: {e}")))?;
                    let _ = cell.set(runtime);
                }
                Ok(cell.get().expect("set above").block_on(future))
            }
            Runtime::Daemon(handle) => Ok(handle.block_on(future)),
        }
    }
}

impl Google<'_> {
    /// The Google client (made now when the command opened the store itself).
    pub async fn client(&self, config: &Config) -> Result<&DirectoryClient, Failure> {
        match self {
            Google::Daemon(client) => Ok(client),
            Google::Own(cell) => cell
                .get_or_try_init(|| DirectoryClient::for_config(config))
                .await
                .map_err(|e| Failure::BadInput(e.to_string())),
        }
    }
}
