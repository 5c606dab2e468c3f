//! How many calls per second the emulator serves on loopback, so that later benchmarks
//! know it is not their bottleneck: `cargo bench --bench emulator` (CALLS=20000,
//! CONCURRENCY=32 by default). The emulator runs as its own process (the release binary);
//! its CPU time is read from /proc. Figures, not assertions.

#[path = "../tests/support/google.rs"]
mod google;

use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// CPU seconds (user + system) the process `pid` has used, from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
    });
    ticks / 100.0
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let calls = env_or("CALLS", 20_000);
    let concurrency = env_or("CONCURRENCY", 32);
    let mut child = Command::new(env!("CARGO_BIN_EXE_belajar-sync"))
        .args(["emulator", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the emulator starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines
        .next()
        .unwrap()
        .unwrap()
        .replace("emulator listening on ", "");
    let key = lines.next().unwrap().unwrap().replace("key file: ", "");
    let token = google::token_from_key(key.as_ref(), "admin@belajar.id").await;
    let api = Arc::new(google::Api::new(&url, token));

    for phase in ["users.insert", "users.get"] {
        let next = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let cpu_before = cpu_seconds(child.id());
        let started = Instant::now();
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                let (api, next, failed) = (api.clone(), next.clone(), failed.clone());
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= calls {
                            break;
                        }
                        let email = format!("murid{i}@sd.belajar.id");
                        let (status, _) = if phase == "users.insert" {
                            let body = json!({"primaryEmail": email, "password": "rahasia-123",
                                              "name": {"givenName": "Murid", "familyName": format!("Ke{i}")}});
                            api.ok("POST", "users", Some(body)).await
                        } else {
                            api.ok("GET", &format!("users/{email}"), None).await
                        };
                        if status != 200 {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds(child.id()) - cpu_before;
        println!(
            "{phase}: {calls} calls, {concurrency} at once: {:.0} calls/s, {:.1} s; emulator CPU {:.1} s ({:.0} % of one core); failed {}",
            calls as f64 / secs,
            secs,
            cpu,
            100.0 * cpu / secs,
            failed.load(Ordering::Relaxed)
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}
