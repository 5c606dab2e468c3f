//! The quota governor against an emulator that meters a quota per minute (a rolling
//! minute): for each setting, the real binary pushes creates for SECS seconds (90 by
//! default), and the emulator's counters give the share of the quota used and the share
//! of calls refused with 403 `userRateLimitExceeded`. `cargo bench --bench quota`
//! (`ONLY=N` for the Nth setting alone).
//! Figures, not assertions.

#[path = "../tests/support/bench.rs"]
mod bench;
#[path = "../tests/support/mod.rs"]
mod support;
use belajar_sync::emulator::faults::rolling_minute_allows;
use bench::env_or;

use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::export_gen::ExportGen;
use support::google::{KillOnDrop, spawn_emulator};

/// One setting: the emulator's quota, the configured ceiling, and a new quota set
/// halfway through (or none).
struct Setting {
    quota: u32,
    ceiling: Option<u32>,
    changed_to: Option<u32>,
}

fn main() {
    let secs = env_or("SECS", 90);
    let settings = [
        (2400, None, None),
        (2400, Some(100_000), None),
        (1200, None, None),
        (1200, Some(100_000), None),
        (2400, Some(1200), None),
        (2400, None, Some(1200)),
    ];
    // ONLY=N runs the Nth setting alone (1-based).
    let only = env_or("ONLY", 0) as usize;
    for (n, (quota, ceiling, changed_to)) in settings.into_iter().enumerate() {
        if only != 0 && only != n + 1 {
            continue;
        }
        let setting = Setting {
            quota,
            ceiling,
            changed_to,
        };
        run(&setting, secs);
    }
}

fn run(setting: &Setting, secs: u64) {
    let quota = setting.quota.to_string();
    let (emulator, url, key) = spawn_emulator(&["--quota-per-minute", &quota]);
    let _emulator = KillOnDrop(emulator);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let ceiling = setting
        .ceiling
        .map(|c| format!("requests_per_minute = {c}\n"))
        .unwrap_or_default();
    std::fs::write(
        &config,
        format!(
            "data_dir = \"store\"\n[google]\nkey_file = {key:?}\nsubject = \"admin@belajar.id\"\napi_base = \"{url}\"\n{ceiling}[daemon]\ncontrol_socket = \"\"\n"
        ),
    )
    .unwrap();
    // More accounts than the run can create: the push never runs dry.
    let export = dir.path().join("export.csv");
    ExportGen::new(7).write_csv(&export, u64::from(setting.quota) * (secs / 60 + 2));
    let binary = env!("CARGO_BIN_EXE_belajar-sync");
    let imported = Command::new(binary)
        .arg("--config")
        .arg(&config)
        .args(["import", "--quiet"])
        .arg(&export)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(imported.status.success());

    let started = Instant::now();
    let mut sync = Command::new(binary)
        .arg("--config")
        .arg(&config)
        .args(["sync", "--quiet"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let changed = setting.changed_to.map(|new_quota| {
        std::thread::sleep(Duration::from_secs(secs / 2));
        put_quota(&url, new_quota);
        (started.elapsed().as_secs_f64(), new_quota)
    });
    let left = Duration::from_secs(secs).saturating_sub(started.elapsed());
    std::thread::sleep(left);
    let counters = get(&format!("{url}/emulator/counters"));
    let elapsed = started.elapsed().as_secs_f64();
    let _ = Command::new("kill")
        .args(["-INT", &sync.id().to_string()])
        .status();
    let _ = sync.wait();

    let (mut admitted, mut refused) = (0u64, 0u64);
    for (_, by_status) in counters["calls"].as_object().unwrap() {
        for (status, n) in by_status.as_object().unwrap() {
            let n = n.as_u64().unwrap_or(0);
            match status.as_str() {
                "403" | "429" => refused += n,
                s if s.starts_with('2') => admitted += n,
                _ => {}
            }
        }
    }
    // What the quota allowed over the run: a lowered quota leaves room only as the old
    // quota's calls leave the rolling minute.
    let allowed = rolling_minute_allows(setting.quota, changed, elapsed);
    let allowed = match setting.ceiling {
        Some(c) if c < setting.quota => f64::from(c) * elapsed / 60.0,
        _ => allowed,
    };
    println!(
        "quota {}/min{}, ceiling {}: {admitted} calls admitted in {elapsed:.0} s = {:.1} % of what {} allowed; {refused} refused = {:.2} % of calls",
        setting.quota,
        setting
            .changed_to
            .map(|n| format!(" then {n}/min halfway"))
            .unwrap_or_default(),
        setting
            .ceiling
            .map_or("unset".to_owned(), |c| format!("{c}/min")),
        admitted as f64 * 100.0 / allowed,
        if setting.ceiling.is_some_and(|c| c < setting.quota) {
            "the ceiling"
        } else {
            "the quota"
        },
        refused as f64 * 100.0 / (admitted + refused).max(1) as f64
    );
}

fn get(url: &str) -> Value {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        reqwest::get(url)
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    })
}

fn put_quota(url: &str, quota: u32) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        reqwest::Client::new()
            .put(format!("{url}/emulator/faults"))
            .json(&serde_json::json!({"quota_per_minute": quota}))
            .send()
            .await
            .unwrap();
    });
}
