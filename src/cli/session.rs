//! What an operator command runs with: the configuration, the store, Google, and where
//! its output goes. Either the command opens the store itself and writes to the terminal,
//! or the daemon runs it for a client of its control socket, with the daemon's store and
//! Google client, and its output goes back over the socket. The commands cannot tell.

use super::Failure;
use crate::config::Config;
use crate::daemon::Shared;
use crate::directory::store::Store;
use crate::google::DirectoryClient;
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
    /// For `import` through the socket: where the daemon put the file it received.
    pub upload: Option<&'a Path>,
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
        upload: Option<&'a Path>,
        progress: bool,
    ) -> Session<'a> {
        Session {
            config,
            store,
            google: Google::Daemon(&shared.client),
            runtime: Runtime::Daemon(tokio::runtime::Handle::current()),
            out,
            err,
            progress,
            daemon: Some(shared),
            upload,
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
                .get_or_try_init(|| DirectoryClient::new(&config.google))
                .await
                .map_err(|e| Failure::BadInput(e.to_string())),
        }
    }
}
