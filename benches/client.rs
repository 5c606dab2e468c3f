//! The Google client pushing inserts into the emulator (its own process, on the same 2
//! cores): `cargo bench --bench client`.
//! (a) no quota: 20,000 inserts (CALLS), calls per second and the emulator's CPU share;
//! (b) an emulator quota of 6,000 per minute for 3 minutes (MINUTES): the share of the
//!     quota the client used and the share of its calls refused for rate.
//! Figures, not assertions.

#[path = "../tests/support/bench.rs"]
mod bench;
#[path = "../tests/support/google.rs"]
mod google;
use bench::env_or;

use belajar_sync::config;
use belajar_sync::google::DirectoryClient;
use belajar_sync::google::types::{User, UserName};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

async fn client(
    url: &str,
    key: &std::path::Path,
    requests_per_minute: u32,
    concurrency: u32,
) -> Arc<DirectoryClient> {
    let settings = config::Google {
        key_file: key.to_path_buf(),
        subject: "admin@belajar.id".into(),
        api_base: url.into(),
        requests_per_minute: Some(requests_per_minute),
        concurrency,
        ..config::Google::default()
    };
    Arc::new(DirectoryClient::new(&settings).await.expect("client"))
}

/// Inserts users from `concurrency` tasks until `calls` are done or `until` passes;
/// returns how many succeeded.
async fn push(
    client: Arc<DirectoryClient>,
    concurrency: u32,
    calls: u64,
    until: Option<Instant>,
) -> u64 {
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, next, done) = (client.clone(), next.clone(), done.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= calls || until.is_some_and(|u| Instant::now() >= u) {
                        break;
                    }
                    let user = User {
                        primary_email: Some(format!("murid{i}@sd.belajar.id")),
                        password: Some("rahasia-123".into()),
                        name: Some(UserName {
                            given_name: Some("Murid".into()),
                            family_name: Some(format!("Ke{i}")),
                            ..UserName::default()
                        }),
                        ..User::default()
                    };
                    if client.insert_user(&user).await.is_ok() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    done.load(Ordering::Relaxed)
}

#[tokio::main]
async fn main() {
    let calls = env_or("CALLS", 20_000);
    let minutes = env_or("MINUTES", 3);

    let (mut child, url, key) = google::spawn_emulator(&[]);
    let client_a = client(&url, &key, 1_000_000, 64).await;
    let cpu_before = google::cpu_seconds(child.id());
    let started = Instant::now();
    let done = push(client_a, 64, calls, None).await;
    let secs = started.elapsed().as_secs_f64();
    let cpu = google::cpu_seconds(child.id()) - cpu_before;
    println!(
        "(a) no quota: {done} of {calls} inserts in {secs:.1} s = {:.0} calls/s; emulator CPU {cpu:.1} s = {:.0} % of one core ({:.0} % of the machine)",
        done as f64 / secs,
        100.0 * cpu / secs,
        50.0 * cpu / secs
    );
    let _ = child.kill();
    let _ = child.wait();

    let quota = 6_000u64;
    let (mut child, url, key) = google::spawn_emulator(&["--quota-per-minute", &quota.to_string()]);
    // Configured at 98 % of the quota, as an operator would set it just under Google's.
    let client_b = client(&url, &key, 5_880, 16).await;
    let started = Instant::now();
    let done = push(
        client_b,
        16,
        u64::MAX,
        Some(started + Duration::from_secs(60 * minutes)),
    )
    .await;
    let secs = started.elapsed().as_secs_f64();
    let counted = google::emulator_counters(&url).await;
    let inserts = &counted["calls"]["directory.users.insert"];
    let refused = inserts["403"].as_u64().unwrap_or(0);
    let total: u64 = inserts
        .as_object()
        .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    let allowed = quota as f64 * secs / 60.0;
    println!(
        "(b) quota {quota}/min for {secs:.0} s: {done} inserts = {:.1} % of the quota; {refused} of {total} calls refused for rate = {:.2} %",
        100.0 * done as f64 / allowed,
        100.0 * refused as f64 / total.max(1) as f64
    );
    let _ = child.kill();
    let _ = child.wait();
}
