//! A scan and sync of a large directory that Google already holds: the binary's wall
//! time and peak memory for `sync --scan` (the first links every account found by its
//! marker; the second finds nothing to do), the store's size on disk, then the daemon's
//! idle memory on that store.
//! `cargo bench --bench scan` (ROWS=1000000 by default). Figures, not assertions.
//!
//! The export is imported in this process; the emulator runs in this process too, seeded
//! directly with each account's user as belajar-sync would create it (creating a million
//! users through the API takes minutes of quota).

#[path = "../tests/support/bench.rs"]
mod bench;
#[path = "../tests/support/export_gen.rs"]
mod export_gen;
use bench::env_or;

use belajar_sync::config::Config;
use belajar_sync::emulator;
use belajar_sync::planner::{self, Asker, Context, Outcome, Seen};
use belajar_sync::store::Store;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The binary's allocator, so that the figures of this process are comparable.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What a run of the binary cost.
struct Timed {
    wall_secs: f64,
    /// User and system CPU time of the binary alone: its local work, whatever the
    /// emulator (in this process, on the same cores) costs.
    cpu_secs: f64,
    peak_mb: f64,
    code: Option<i32>,
    printed: String,
}

/// Runs the binary with `args` under /usr/bin/time.
fn timed(config: &std::path::Path, args: &[&str]) -> Timed {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%e %M %U %S"])
        .arg(env!("CARGO_BIN_EXE_belajar-sync"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("MIMALLOC_ARENA_EAGER_COMMIT", "0")
        .output()
        .expect("/usr/bin/time runs");
    let err = String::from_utf8_lossy(&out.stderr);
    let figures: Vec<f64> = err
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .map(|s| s.parse().unwrap_or(f64::NAN))
        .collect();
    let figure = |i: usize| figures.get(i).copied().unwrap_or(f64::NAN);
    Timed {
        wall_secs: figure(0),
        cpu_secs: figure(2) + figure(3),
        peak_mb: figure(1) / 1024.0,
        code: out.status.code(),
        printed: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

/// Resident memory of process `pid` now, in MB.
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let rows: u64 = env_or("ROWS", 1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export.csv");
    export_gen::ExportGen::new(1).write_csv(&export, rows);
    let config_file = dir.path().join("config.toml");
    let mut config = Config {
        data_dir: dir.path().join("store"),
        ..Config::default()
    };
    let store = Store::open(&config.data_dir, config.store_cache_mb).unwrap();
    let started = Instant::now();
    bench::import_export(&store, &export);
    let accounts = store.counts().unwrap().active;
    println!(
        "imported {accounts} active accounts in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let emulator = runtime
        .block_on(emulator::start(emulator::Options::default()))
        .unwrap();
    let started = Instant::now();
    let ctx = Context::new(&config, jiff::Zoned::now().date(), Asker::Schedule);
    let users = store.accounts_after(None).filter_map(|account| {
        let account = account.unwrap();
        match planner::plan(&account, &Seen::default(), &ctx).outcome {
            Outcome::Act(action) => {
                let mut body = serde_json::to_value(&action.body).unwrap();
                body["password"] = "Bench-password-1".into();
                Some(body)
            }
            _ => None,
        }
    });
    let seeded = emulator.seed_users(users).unwrap();
    println!(
        "seeded the emulator with {seeded} users in {:.1} s (this process, emulator included: {:.0} MB)",
        started.elapsed().as_secs_f64(),
        rss_mb(std::process::id())
    );
    drop(store);

    config.google.key_file = emulator.key_file.clone();
    std::fs::write(
        &config_file,
        format!(
            "data_dir = \"store\"\n[google]\nkey_file = {:?}\nsubject = \"admin@belajar.id\"\napi_base = \"{}\"\nrequests_per_minute = 100000\nconcurrency = 16\n[daemon]\ncontrol_socket = \"\"\nmetrics_listen = \"\"\n",
            emulator.key_file, emulator.base_url
        ),
    )
    .unwrap();
    // The emulator answers on this runtime's threads while the binary runs.
    let _serving = runtime.enter();
    for label in [
        "sync --scan (links every account by its marker)",
        "sync --scan (nothing to do)",
    ] {
        let run = timed(&config_file, &["sync", "--scan", "--json"]);
        let report: serde_json::Value = serde_json::from_str(&run.printed).unwrap_or_default();
        println!(
            "{label}: {:.1} s wall ({:.0} users/s), {:.1} s of CPU ({:.0} users/s of local work), peak RSS {:.0} MB, exit {:?}; relinked {}",
            run.wall_secs,
            seeded as f64 / run.wall_secs,
            run.cpu_secs,
            seeded as f64 / run.cpu_secs,
            run.peak_mb,
            run.code,
            report["plan"]["relinked"]
        );
    }

    let disk = bench::dir_size(&dir.path().join("store"));
    println!(
        "store on disk after the import, the syncs and the scans: {:.0} MB, {:.0} bytes an account",
        disk as f64 / 1e6,
        disk as f64 / accounts as f64
    );

    let mut daemon = Command::new(env!("CARGO_BIN_EXE_belajar-sync"))
        .arg("--config")
        .arg(&config_file)
        .args(["run", "--allow-root"])
        .env("RUST_LOG", "belajar_sync=info")
        .env("MIMALLOC_ARENA_EAGER_COMMIT", "0")
        .env_remove("NOTIFY_SOCKET")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(daemon.stderr.take().unwrap()).lines();
    let started = Instant::now();
    for line in lines.by_ref() {
        if line.unwrap().contains("sync finished") {
            break;
        }
    }
    println!(
        "daemon start-up round: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Keep reading its log in the background, so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    std::thread::sleep(Duration::from_secs(30));
    println!("daemon idle RSS after 30 s: {:.0} MB", rss_mb(daemon.id()));
    let _ = daemon.kill();
    let _ = daemon.wait();
}
