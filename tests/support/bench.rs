//! What the benchmarks share (included by `#[path]` from `benches/`).

/// The number in the environment variable `name`, or `default` (benchmarks take their
/// sizes from the environment: `cargo bench` passes only `--bench`).
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds this process has used so far, on every thread (user and system): on two
/// cores, a wall time above half of it is time some thread waited.
#[allow(dead_code)] // not every bench reports it
pub fn cpu_secs() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage of this process");
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    secs(usage.user_time()) + secs(usage.system_time())
}

/// Bytes the files under `path` take.
#[allow(dead_code)] // not every bench reports it
pub fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Imports the export at `path` into `store` as a snapshot, with no progress shown and no
/// disk check (benchmarks set up their stores this way).
#[allow(dead_code)] // not every bench imports
pub fn import_export(store: &belajar_sync::store::Store, path: &std::path::Path) {
    use belajar_sync::import::{self, Options, source::Source};
    let options = Options {
        delta: false,
        skip_invalid: false,
        dry_run: false,
        today: jiff::Zoned::now().date(),
        actor: "bench".into(),
        max_retire_share: None,
        min_free_disk: 0,
    };
    let source = Source::new(path, None).unwrap();
    let naming = belajar_sync::config::Config::default().naming;
    import::run(
        store,
        &naming,
        &source,
        options,
        &indicatif::ProgressBar::hidden(),
    )
    .unwrap();
}

/// A process's peak resident memory in MiB (VmHWM).
#[allow(dead_code)] // not every bench reports it
pub fn peak_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

/// The `p` quantile (0 to 1) of `sorted` latencies (zero when there are none).
#[allow(dead_code)] // not every bench reports it
pub fn quantile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or_default()
}
