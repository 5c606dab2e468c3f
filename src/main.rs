//! The `belajar-sync` command: see `belajar-sync --help`.

fn main() -> std::process::ExitCode {
    belajar_sync::cli::main()
}
