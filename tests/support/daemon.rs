//! The daemon as a child process, and its log read line by line (progress is read from
//! its log lines, never waited for by time).

#![allow(dead_code)] // each test binary uses a part of it

use super::google::KillOnDrop;
use std::io::{BufRead, BufReader, Lines};
use std::process::{ChildStderr, Command, Stdio};

/// Reads log lines until one contains `wanted`; all lines read, for the failure message.
pub fn wait_for(lines: &mut Lines<BufReader<ChildStderr>>, wanted: &str) -> Vec<String> {
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let found = line.contains(wanted);
        seen.push(line);
        if found {
            return seen;
        }
    }
    panic!("the daemon ended before {wanted:?}:\n{}", seen.join("\n"));
}

/// Reads log lines until the daemon says where its metrics are served; their URL.
pub fn wait_for_metrics_url(lines: &mut Lines<BufReader<ChildStderr>>) -> String {
    let started = wait_for(lines, "metrics served at ");
    started
        .last()
        .and_then(|l| l.split("metrics served at ").nth(1))
        .expect("the line names the address")
        .trim()
        .to_owned()
}

/// The text the daemon serves at `url` (its `/metrics`).
pub fn fetch_metrics(runtime: &tokio::runtime::Runtime, url: &str) -> String {
    runtime.block_on(async { reqwest::get(url).await.unwrap().text().await.unwrap() })
}

/// Starts `belajar-sync run` with `config` (as its own user would; no systemd listening);
/// the daemon and its log lines.
pub fn start_daemon(config: &std::path::Path) -> (KillOnDrop, Lines<BufReader<ChildStderr>>) {
    start_daemon_logging(config, "belajar_sync=info")
}

/// [`start_daemon`] with the log filter `filter` (`trace`: every line a secret could reach).
pub fn start_daemon_logging(
    config: &std::path::Path,
    filter: &str,
) -> (KillOnDrop, Lines<BufReader<ChildStderr>>) {
    let daemon = Command::new(env!("CARGO_BIN_EXE_belajar-sync"))
        .arg("--config")
        .arg(config)
        .args(["run", "--allow-root"])
        .env("RUST_LOG", filter)
        .env_remove("NOTIFY_SOCKET")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut daemon = KillOnDrop(daemon);
    let lines = BufReader::new(daemon.0.stderr.take().unwrap()).lines();
    (daemon, lines)
}

/// Sends signal `name` (`-TERM`, `-STOP`…) to process `pid`, as `kill` does.
pub fn signal(pid: u32, name: &str) {
    let sent = Command::new("kill")
        .args([name, &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill {name} {pid}");
}
