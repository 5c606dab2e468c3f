//! Import of a large generated export into a fresh store: wall time and peak memory.
//! `cargo bench --bench import` (ROWS=1000000 by default; `ROWS=200000 cargo bench ...`),
//! for two shapes of export: the generator's schools in blocks, and one shaped like
//! Dapodik's (`SHAPE=shaped` for that one alone). A dry run into the empty store first
//! (`DRY=0`: none), then the first import and a re-import. Peak RSS is the process's, so
//! far.
//! Figures, not assertions: this machine is noisy.

#[path = "../tests/support/bench.rs"]
mod bench;
#[path = "../tests/support/export_gen.rs"]
mod export_gen;
use bench::env_or;

use belajar_sync::config::Config;
use belajar_sync::import::{self, Options, source::Source};
use belajar_sync::store::Store;
use indicatif::ProgressBar;
use std::time::Instant;

/// The binary's allocator, so that the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Peak resident memory of this process so far, from /proc (Linux).
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken from the command line.
    let rows: u64 = env_or("ROWS", 1_000_000);
    let only = std::env::var("SHAPE").unwrap_or_default();
    type Generate = fn(&mut export_gen::ExportGen, &std::path::Path, u64) -> export_gen::Generated;
    let shapes: [(&str, Generate); 2] = [
        ("schools in blocks", export_gen::ExportGen::write_csv),
        (
            "shaped like Dapodik (id order, schools interleaved, skewed names)",
            export_gen::ExportGen::write_csv_shaped_like_dapodik,
        ),
    ];
    for (shape, generate) in shapes {
        if !only.is_empty() && !shape.starts_with(&only) {
            continue;
        }
        println!("== {shape}");
        run_shape(rows, generate);
    }
}

fn run_shape(
    rows: u64,
    generate: fn(&mut export_gen::ExportGen, &std::path::Path, u64) -> export_gen::Generated,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.csv");
    let started = Instant::now();
    let made = generate(&mut export_gen::ExportGen::new(1), &path, rows);
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "generated {} rows ({} accounts, {} schools, {:.0} MB) in {:.1} s; peak RSS so far {:.0} MB",
        made.rows,
        made.accounts,
        made.schools,
        size as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        peak_rss_mb()
    );

    let mut config = Config::default();
    if let Some(mb) = std::env::var("CACHE_MB").ok().and_then(|v| v.parse().ok()) {
        config.store_cache_mb = mb;
    }
    let store = Store::open(&dir.path().join("store"), config.store_cache_mb).unwrap();
    let source = Source::new(&path, None).unwrap();
    let today = jiff::Zoned::now().date();
    // DRY=0 leaves the dry run out (its peak would hide the import's).
    let dry = std::env::var("DRY").map_or(true, |v| v != "0");
    for (label, dry_run) in [
        ("dry run into an empty store", true),
        ("first import", false),
        ("re-import", false),
    ] {
        if dry_run && !dry {
            continue;
        }
        let options = Options {
            delta: false,
            skip_invalid: false,
            dry_run,
            today,
            actor: "bench".into(),
            max_retire_share: None,
            min_free_disk: 0,
        };
        let (started, cpu) = (Instant::now(), bench::cpu_secs());
        let summary = import::run(
            &store,
            &config.naming,
            &source,
            options,
            &ProgressBar::hidden(),
        )
        .unwrap();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{label}: {:.2} s wall, {:.1} s CPU, {:.0} rows/s, created {}, unchanged {}, peak RSS {:.0} MB",
            secs,
            bench::cpu_secs() - cpu,
            made.rows as f64 / secs,
            summary.created,
            summary.unchanged,
            peak_rss_mb()
        );
    }
    let disk: u64 = bench::dir_size(&dir.path().join("store"));
    println!("store on disk: {:.0} MB", disk as f64 / 1e6);
}
