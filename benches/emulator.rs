//! How many calls per second the emulator serves on loopback, so that later benchmarks
//! know it is not their bottleneck: `cargo bench --bench emulator` (CALLS=20000,
//! CONCURRENCY=32 by default). The emulator runs as its own process (the release binary);
//! its CPU time is read from /proc. Figures, not assertions.

#[path = "../tests/support/bench.rs"]
mod bench;
#[path = "../tests/support/google.rs"]
mod google;
use bench::env_or;

use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let calls = env_or("CALLS", 20_000);
    let concurrency = env_or("CONCURRENCY", 32);
    let (mut child, url, key) = google::spawn_emulator(&[]);
    let token = google::token_from_key(&key, "admin@belajar.id").await;
    let api = Arc::new(google::Api::new(&url, token));

    for phase in ["users.insert", "users.get"] {
        let next = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let cpu_before = google::cpu_seconds(child.id());
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
        let cpu = google::cpu_seconds(child.id()) - cpu_before;
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
