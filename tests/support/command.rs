//! The real binary run as an operator runs it: with a configuration file, its output
//! read back.

#![allow(dead_code)] // each test binary uses a part of it

use std::path::Path;
use std::process::{Command, Output};

/// `belajar-sync --config CONFIG ARGS…`, whatever `$BELAJAR_SYNC_CONFIG` says.
pub fn run(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_belajar-sync"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("BELAJAR_SYNC_CONFIG")
        .output()
        .unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Standard output of a command that must have exited 0 (both outputs shown otherwise).
pub fn ok(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}
