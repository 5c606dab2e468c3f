//! The `belajar-sync` command: see `belajar-sync --help`.

/// mimalloc rather than the system allocator: planning and importing millions of accounts
/// allocate many small strings, which glibc's allocator spends a third of the time on and
/// fragments into hundreds of megabytes (benches/plan.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    belajar_sync::cli::main()
}
