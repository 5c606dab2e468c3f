//! What the benchmarks share (included by `#[path]` from `benches/`).

/// The number in the environment variable `name`, or `default` (benchmarks take their
/// sizes from the environment: `cargo bench` passes only `--bench`).
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
