//! A full sync of a generated export into an empty Google (the emulator as its own
//! process, no quota): accounts per second, then a second sync with a scan that finds
//! nothing to do. `cargo bench --bench sync` (ROWS=10000 by default). With `LICENCES=1`,
//! licences are managed (a pool big enough): the calls a licensed create costs, and the
//! licence scan on its own. Figures, not assertions.

#[path = "../tests/support/bench.rs"]
mod bench;
#[path = "../tests/support/mod.rs"]
mod support;
use bench::env_or;

use belajar_sync::config::Config;
use belajar_sync::google::DirectoryClient;
use belajar_sync::reconciler::{self, Suspensions, SyncOptions};
use belajar_sync::store::Store;
use std::time::{Duration, Instant};

fn main() {
    let rows: u64 = env_or("ROWS", 10_000);
    let licences = env_or("LICENCES", 0) == 1;
    let pool = format!("1010070001={}", rows * 2);
    let args: &[&str] = if licences {
        &["--licences", &pool]
    } else {
        &[]
    };
    let (emulator, url, key_file) = support::google::spawn_emulator(args);
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().join("store"),
        ..Config::default()
    };
    config.google.key_file = key_file;
    config.google.subject = "admin@belajar.id".into();
    config.google.api_base = url.clone();
    config.licences.enabled = licences;
    config.licences.api_base = url;
    config.google.requests_per_minute = Some(100_000);
    config.google.concurrency = 16;
    let export = dir.path().join("export.csv");
    support::export_gen::ExportGen::new(1).write_csv(&export, rows);
    let store = Store::open(&config.data_dir, config.store_cache_mb).unwrap();
    bench::import_export(&store, &export);
    let accounts = store.counts().unwrap().active;

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = DirectoryClient::for_config(&config).await.unwrap();
        for (label, scan) in [("first sync (empty Google)", false), ("second sync with a scan", true)] {
            let started = Instant::now();
            let report = reconciler::sync(
                &store,
                &client,
                &config,
                reconciler::today(),
                SyncOptions {
                    scan,
                    suspensions: Suspensions::Guarded,
                    max_wait: Duration::from_secs(60),
                    control: None,
                },
                |_: &str| {},
            )
            .await
            .unwrap();
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{label}: {accounts} active accounts in {secs:.1} s ({:.0} accounts/s); done {:?}, exit {}",
                accounts as f64 / secs,
                report.done,
                report.exit_code()
            );
        }
        let calls: u64 = client.stats.answers().iter().map(|(_, n)| n).sum();
        println!(
            "calls answered in all: {calls} ({:.2} per active account); by method: {:?}",
            calls as f64 / accounts as f64,
            client.stats.answers()
        );
        if licences {
            let started = Instant::now();
            let scan = reconciler::licences::scan(&store, &client, &config)
                .await
                .unwrap();
            println!(
                "licence scan alone: {} holders in {} pages, {} links corrected, {:.2} s",
                scan.holders,
                scan.pages,
                scan.corrected,
                started.elapsed().as_secs_f64()
            );
        }
    });
    let mut emulator = emulator;
    let _ = emulator.kill();
}
