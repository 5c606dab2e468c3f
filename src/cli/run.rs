//! `belajar-sync run`: the daemon (see [`crate::daemon`]) with its signals.

use super::{Failure, open_store};
use crate::config::Config;
use crate::daemon::{self, DaemonError};
use crate::google::DirectoryClient;
use std::process::ExitCode;
use tokio::signal::unix::{SignalKind, signal};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Run even as root (the service should run as its own user).
    #[arg(long)]
    pub allow_root: bool,
}

pub fn run(config: &Config, args: &RunArgs) -> Result<ExitCode, Failure> {
    daemon::preflight(config, args.allow_root).map_err(|e| Failure::BadInput(e.to_string()))?;
    let store = open_store(config)?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::Runtime(format!("cannot start: {e}")))?;
    runtime.block_on(async {
        let client = DirectoryClient::new(&config.google)
            .await
            .map_err(|e| Failure::BadInput(e.to_string()))?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut terminate = signal(SignalKind::terminate())
            .map_err(|e| Failure::Runtime(format!("signals: {e}")))?;
        let mut interrupt = signal(SignalKind::interrupt())
            .map_err(|e| Failure::Runtime(format!("signals: {e}")))?;
        tokio::spawn(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            let _ = stop.send(true);
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            eprintln!("belajar-sync: second signal: exiting now (the journal finishes the work at the next start)");
            std::process::exit(130);
        });
        daemon::run(config, &store, &client, stopped)
            .await
            .map_err(|e| match e {
                DaemonError::Refused(why) => Failure::BadInput(why),
                DaemonError::Store(e) => e.into(),
            })
    })?;
    Ok(ExitCode::SUCCESS)
}
