//! Crash safety over many seeds: `cargo bench --bench crash` (SEEDS=20, ROWS=300,
//! KILLS=6 by default). Each seed syncs an export with the real binary, kills it with
//! SIGKILL at seeded points while the emulator loses answers, runs it to convergence and
//! checks Google holds every active account exactly once with an empty journal.

#[path = "../tests/support/bench.rs"]
mod bench;
#[path = "../tests/support/mod.rs"]
mod support;
use bench::env_or;

fn main() {
    let (seeds, rows, kills) = (env_or("SEEDS", 20), env_or("ROWS", 300), env_or("KILLS", 6));
    let started = std::time::Instant::now();
    for seed in 1..=seeds {
        let outcome = support::crash::run(seed, rows, kills as u32);
        println!(
            "seed {seed}: {} kills ({} mid-push), converged after {} more run(s); {} active accounts = {} Google users, none twice",
            outcome.kills,
            outcome.kills_mid_push,
            outcome.runs_to_converge,
            outcome.active_accounts,
            outcome.google_users
        );
    }
    println!(
        "{seeds} seeds passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}
