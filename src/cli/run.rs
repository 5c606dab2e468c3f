//! `belajar-sync run`: the daemon (see [`crate::daemon`]) with what surrounds it: signals,
//! the metrics server, the control socket.

use super::{Failure, control, open_store};
use crate::config::Config;
use crate::daemon::{self, DaemonError, Shared};
use crate::google::DirectoryClient;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::signal::unix::{SignalKind, signal};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Run even as root (the service should run as its own user).
    #[arg(long)]
    pub allow_root: bool,
}

pub fn run(config_path: &Path, config: Config, args: &RunArgs) -> Result<ExitCode, Failure> {
    daemon::preflight(&config, args.allow_root).map_err(|e| Failure::BadInput(e.to_string()))?;
    let store = Arc::new(open_store(&config)?);
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::Runtime(format!("cannot start: {e}")))?;
    runtime.block_on(async {
        let client = Arc::new(
            DirectoryClient::for_config(&config)
                .await
                .map_err(|e| Failure::BadInput(e.to_string()))?,
        );
        // One broadcast stops every task: the loop, the metrics server, the socket, the console.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let socket_path = config.daemon.control_socket.clone();
        let socket = control::bind(&socket_path)?;
        let metrics_listen = config.daemon.metrics_listen.clone();
        let stop_timeout = config.daemon.stop_timeout.unsigned_abs();
        let shared = Arc::new(Shared::new(config, store, client));
        let metrics = match metrics_listen.as_str() {
            "" => None,
            listen => {
                let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
                    Failure::BadInput(format!("daemon.metrics_listen {listen}: {e}"))
                })?;
                let addr = listener
                    .local_addr()
                    .map_or_else(|_| listen.to_owned(), |a| a.to_string());
                tracing::info!(target: "belajar_sync::daemon", "metrics served at http://{addr}/metrics");
                Some(tokio::spawn(crate::metrics::serve(
                    listener,
                    shared.clone(),
                    stopped.clone(),
                )))
            }
        };
        let console = crate::web::bind(shared.clone())
            .await
            .map_err(|e| Failure::BadInput(e.to_string()))?
            .map(|bound| {
                tracing::info!(target: "belajar_sync::daemon", "web console served at {}", bound.url);
                tokio::spawn(crate::web::serve(bound, stopped.clone()))
            });
        let sessions = socket.map(|listener| {
            tracing::info!(target: "belajar_sync::daemon", socket = %socket_path.display(), "control socket open");
            tokio::spawn(control::serve(listener, shared.clone(), stopped.clone()))
        });
        on_signals(stop, shared.clone(), config_path.to_owned())?;

        let ran = daemon::run(shared, stopped).await.map_err(|e| match e {
            DaemonError::Refused(why) => Failure::BadInput(why),
            DaemonError::Store(e) => e.into(),
            e @ (DaemonError::Reopen(_) | DaemonError::Inbox(_)) => Failure::Runtime(e.to_string()),
        });
        if let Some(sessions) = sessions {
            // Commands asked through the socket get the same bound as calls in flight.
            if tokio::time::timeout(stop_timeout, sessions).await.is_err() {
                tracing::warn!("control socket commands still running at exit: the journal keeps their work");
            }
            let _ = std::fs::remove_file(&socket_path);
        }
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        if let Some(console) = console {
            let _ = console.await;
        }
        ran
    })?;
    // Commands of the socket still running after the bound are not waited for.
    runtime.shutdown_background();
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM or SIGINT: stop (a second one: exit now). SIGHUP: reload the configuration.
fn on_signals(
    stop: tokio::sync::watch::Sender<bool>,
    shared: Arc<Shared>,
    config_path: std::path::PathBuf,
) -> Result<(), Failure> {
    let listen = |kind| signal(kind).map_err(|e| Failure::Runtime(format!("signals: {e}")));
    let mut terminate = listen(SignalKind::terminate())?;
    let mut interrupt = listen(SignalKind::interrupt())?;
    let mut hangup = listen(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            reload(&shared, &config_path);
        }
    });
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
        eprintln!(
            "belajar-sync: second signal: exiting now (the journal finishes the work at the next start)"
        );
        std::process::exit(130);
    });
    Ok(())
}

/// Re-reads the configuration and says in the log what changed and what waits for a
/// restart; a configuration that does not load changes nothing.
fn reload(shared: &Shared, path: &Path) {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
    match shared.reload(path) {
        Ok(reloaded) => tracing::info!(
            target: "belajar_sync::daemon",
            applied = ?reloaded.applied,
            needs_restart = ?reloaded.needs_restart,
            "configuration reloaded{}",
            if reloaded.needs_restart.is_empty() {
                String::new()
            } else {
                format!(
                    "; restart the service for {} (their running values are kept)",
                    reloaded.needs_restart.join(", ")
                )
            }
        ),
        Err(error) => tracing::warn!(
            target: "belajar_sync::daemon",
            %error,
            "configuration not reloaded: the running one is kept"
        ),
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
}
