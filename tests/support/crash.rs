//! The crash-safety scenario, shared by `tests/crash.rs` (a few seeds) and
//! `benches/crash.rs` (many): the real binary syncs an export into the emulator (its own
//! process, losing some responses after applying them) and is killed with SIGKILL at
//! seeded points of its progress; then it is run until it converges, and Google must hold
//! every active account exactly once with an empty journal.
//!
//! Kill points are counted in the executor's log lines ("applied"), not in time, so a run
//! repeats whatever the machine's speed.

#![allow(dead_code)] // each test binary uses a part of it

use super::export_gen::ExportGen;
use super::google::{Api, KillOnDrop, spawn_emulator, token_from_key};
use belajar_sync::directory::model::DesiredState;
use belajar_sync::journal;
use belajar_sync::store::Store;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What one seed did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub seed: u64,
    /// Runs killed while still working (the others had finished).
    pub kills: u32,
    /// Of those, runs killed in the middle of the push: after some calls were answered.
    pub kills_mid_push: u32,
    /// Runs needed after the kills to converge.
    pub runs_to_converge: u32,
    pub active_accounts: usize,
    pub google_users: usize,
}

/// The binary, with `config` and quiet.
pub fn binary_in(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_belajar-sync"));
    command
        .arg("--config")
        .arg(config)
        .arg("--quiet")
        .env_remove("BELAJAR_SYNC_CONFIG");
    command
}

/// `dir/config.toml`: a store in `dir/store`, the emulator at `url` (its key file
/// `key_file`) with no quota to speak of, and `extra` (TOML tables) after.
pub fn emulator_config(dir: &Path, url: &str, key_file: &Path, extra: &str) -> PathBuf {
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"store\"\n[google]\nkey_file = {key:?}\nsubject = \"admin@belajar.id\"\napi_base = {url:?}\nrequests_per_minute = 100000\nconcurrency = 8\ncall_deadline = \"30s\"\n{extra}",
            key = key_file.display().to_string()
        ),
    )
    .unwrap();
    config
}

/// Imports `export` with the binary (and `flags`); panics with what it said when it fails.
pub fn import(config: &Path, export: &Path, flags: &[&str]) {
    let out = binary_in(config)
        .arg("import")
        .arg(export)
        .args(flags)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The counts `plan --json` prints first.
pub fn plan_json(config: &Path) -> serde_json::Value {
    let out = binary_in(config).args(["plan", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = out.stdout.split(|&b| b == b'\n').next().unwrap();
    serde_json::from_slice(first).unwrap()
}

/// What `status --json` says.
pub fn status_json(config: &Path) -> serde_json::Value {
    json_of(config, &["status", "--json"])
}

/// The JSON a command of the binary prints, which must succeed.
pub fn json_of(config: &Path, args: &[&str]) -> serde_json::Value {
    let out = binary_in(config).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs `sync` and kills it (SIGKILL) once its executor has applied `wanted` answers;
/// how many it had applied when killed (`None`: it finished first).
pub fn kill_sync_after(config: &Path, wanted: usize) -> Option<usize> {
    let mut child = binary_in(config)
        .arg("sync")
        .env("RUST_LOG", "belajar_sync::executor=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let applied = lines
        .map_while(Result::ok)
        .filter(|l| l.contains("applied"))
        .take(wanted)
        .count();
    let running = applied == wanted && child.try_wait().unwrap().is_none();
    if running {
        child.kill().unwrap();
    }
    child.wait().unwrap();
    running.then_some(applied)
}

/// Runs the scenario for `seed`: `rows` rows, `kills` kills. Panics when an account is
/// missing or doubled in Google, or the journal is not empty after convergence.
pub fn run(seed: u64, rows: u64, kills: u32) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let seed_text = seed.to_string();
    let (emulator, url, key_file) =
        spawn_emulator(&["--lost-response-rate", "0.05", "--seed", &seed_text]);
    // Killed however this ends, so that a failure does not leave it running.
    let emulator = KillOnDrop(emulator);
    let config = emulator_config(dir.path(), &url, &key_file, "");
    let export = dir.path().join("export.csv");
    ExportGen::new(seed).write_csv(&export, rows);
    import(&config, &export, &[]);

    let mut rng = SmallRng::seed_from_u64(seed);
    let (mut killed, mut mid_push) = (0, 0);
    for _ in 0..kills {
        let wanted = rng.random_range(0..rows / 2);
        if let Some(applied) = kill_sync_after(&config, wanted as usize) {
            killed += 1;
            mid_push += u32::from(applied > 0);
        }
    }

    let mut runs_to_converge = 0;
    loop {
        runs_to_converge += 1;
        let status = binary_in(&config)
            .arg("sync")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        if status.code() == Some(0) {
            break;
        }
        assert!(
            runs_to_converge < 10,
            "seed {seed}: no convergence (last exit {status})"
        );
    }

    let store = Store::open(&dir.path().join("store"), 8).unwrap();
    let active: Vec<String> = store
        .accounts()
        .map(Result::unwrap)
        .filter(|a| a.state == DesiredState::Active)
        .map(|a| a.key().to_string())
        .collect();
    assert_eq!(
        journal::depth(&store).unwrap(),
        (0, 0),
        "seed {seed}: journal not empty"
    );
    drop(store);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (markers, users) = runtime.block_on(google_markers(&url, &key_file));
    drop(emulator);
    let doubled: Vec<_> = markers.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        doubled.is_empty(),
        "seed {seed}: created twice: {doubled:?}"
    );
    let missing: Vec<_> = active
        .iter()
        .filter(|k| !markers.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "seed {seed}: missing in Google: {missing:?}"
    );
    assert_eq!(
        users,
        active.len(),
        "seed {seed}: users in Google vs active accounts"
    );
    Outcome {
        seed,
        kills: killed,
        kills_mid_push: mid_push,
        runs_to_converge,
        active_accounts: active.len(),
        google_users: users,
    }
}

/// Markers of every user in the managed domains (how many users carry each) and the
/// number of users, listed as an admin would.
async fn google_markers(url: &str, key_file: &Path) -> (BTreeMap<String, usize>, usize) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let api = Api::new(url, token_from_key(key_file, "admin@belajar.id").await);
    let (mut markers, mut users) = (BTreeMap::new(), 0);
    for domain in belajar_sync::config::Naming::default().domains() {
        let mut token: Option<String> = None;
        loop {
            let mut path = format!("users?domain={domain}&maxResults=500");
            if let Some(token) = &token {
                path.push_str(&format!("&pageToken={token}"));
            }
            let mut tries = 0;
            let page = loop {
                // The emulator loses some answers: read again.
                tries += 1;
                match api.call("GET", &path, None).await {
                    Ok((200, page)) => break page,
                    Ok((status, body)) => panic!("listing {domain}: {status} {body}"),
                    Err(e) => assert!(tries < 50, "listing {domain}: {e}"),
                }
            };
            for user in page["users"].as_array().into_iter().flatten() {
                users += 1;
                for id in user["externalIds"].as_array().into_iter().flatten() {
                    if id["type"] == "organization" {
                        *markers
                            .entry(id["value"].as_str().unwrap().to_owned())
                            .or_insert(0) += 1;
                    }
                }
            }
            match page["nextPageToken"].as_str() {
                Some(next) => token = Some(next.to_owned()),
                None => break,
            }
        }
    }
    (markers, users)
}
