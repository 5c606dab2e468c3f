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
    let store = std::sync::Arc::new(open_store(config)?);
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::Runtime(format!("cannot start: {e}")))?;
    runtime.block_on(async {
        let client = std::sync::Arc::new(
            DirectoryClient::new(&config.google)
                .await
                .map_err(|e| Failure::BadInput(e.to_string()))?,
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let metrics = if config.daemon.metrics_listen.is_empty() {
            None
        } else {
            let listen = &config.daemon.metrics_listen;
            let listener = tokio::net::TcpListener::bind(listen.as_str())
                .await
                .map_err(|e| Failure::BadInput(format!("daemon.metrics_listen {listen}: {e}")))?;
            let addr = listener
                .local_addr()
                .map_or_else(|_| listen.clone(), |a| a.to_string());
            tracing::info!(target: "belajar_sync::daemon", "metrics served at http://{addr}/metrics");
            Some(tokio::spawn(crate::metrics::serve(
                listener,
                store.clone(),
                client.clone(),
                stopped.clone(),
            )))
        };
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
        let ran = daemon::run(config, &store, &client, stopped)
            .await
            .map_err(|e| match e {
                DaemonError::Refused(why) => Failure::BadInput(why),
                DaemonError::Store(e) => e.into(),
            });
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        ran
    })?;
    Ok(ExitCode::SUCCESS)
}
