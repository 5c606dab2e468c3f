//! Licences in the life cycle, through the real binary and the emulator (its own process):
//! every account created gets exactly one licence; a pool short by 50 leaves exactly 50
//! waiting, said by `status --check` with the SKU, with nobody quarantined, until licences
//! are added; a sync killed in the middle of its assignments ends with every account
//! holding exactly one.

mod support;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use support::crash::{binary_in, status_json};
use support::export_gen::ExportGen;
use support::google::{KillOnDrop, spawn_emulator, token_from_key_with};

const FUNDAMENTALS: &str = "1010070001";
const LICENSING: &str = "https://www.googleapis.com/auth/apps.licensing";

/// A store with `rows` rows imported, and its configuration (licences managed, at the
/// emulator that `emulator_args` start).
struct World {
    dir: tempfile::TempDir,
    config: PathBuf,
    url: String,
    key_file: PathBuf,
    _emulator: KillOnDrop,
}

fn world(rows: u64, seed: u64, emulator_args: &[&str]) -> World {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, url, key_file) = spawn_emulator(emulator_args);
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"store\"\n[daemon]\ncontrol_socket = \"\"\n[google]\nkey_file = {key:?}\nsubject = \"admin@belajar.id\"\napi_base = {url:?}\nrequests_per_minute = 100000\nconcurrency = 8\ncall_deadline = \"30s\"\n[licences]\nenabled = true\napi_base = {url:?}\n",
            key = key_file.display().to_string()
        ),
    )
    .unwrap();
    let export = dir.path().join("export.csv");
    ExportGen::new(seed).write_csv(&export, rows);
    let out = binary_in(&config)
        .arg("import")
        .arg(&export)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    World {
        dir,
        config,
        url,
        key_file,
        _emulator: KillOnDrop(emulator),
    }
}

impl World {
    fn sync(&self) -> (Option<i32>, Value) {
        let out = binary_in(&self.config)
            .args(["sync", "--json"])
            .output()
            .unwrap();
        let summary = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "sync printed no summary: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code(), summary)
    }

    fn check(&self) -> (Option<i32>, String) {
        let out = binary_in(&self.config)
            .args(["status", "--check"])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    fn active(&self) -> u64 {
        status_json(&self.config)["accounts"]["active"]
            .as_u64()
            .unwrap()
    }

    /// Every holder of Fundamentals, read page by page from licensing v1.
    async fn holders(&self) -> Vec<String> {
        let token = token_from_key_with(&self.key_file, "admin@belajar.id", LICENSING).await;
        let http = reqwest::Client::new();
        let (mut holders, mut page) = (Vec::new(), None::<String>);
        loop {
            let mut url = format!(
                "{}/apps/licensing/v1/product/Google-Apps/sku/{FUNDAMENTALS}/users?customerId=my_customer&maxResults=100",
                self.url
            );
            if let Some(token) = &page {
                url.push_str(&format!("&pageToken={token}"));
            }
            let answer: Value = http
                .get(url)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for item in answer["items"].as_array().unwrap() {
                holders.push(item["userId"].as_str().unwrap().to_owned());
            }
            match answer["nextPageToken"].as_str() {
                Some(next) => page = Some(next.to_owned()),
                None => return holders,
            }
        }
    }

    async fn grant(&self, add: u32) {
        let answer = reqwest::Client::new()
            .post(format!("{}/emulator/licences", self.url))
            .json(&json!({"sku": FUNDAMENTALS, "add": add}))
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success());
    }
}

/// Licence assignments marked in flight in the journal (sent, answer unknown).
fn licences_in_flight(store: &Path) -> usize {
    let store = belajar_sync::store::Store::open(store, 8).unwrap();
    belajar_sync::journal::entries(&store)
        .map(Result::unwrap)
        .filter(|e| e.in_flight && e.action.kind == belajar_sync::planner::ActionKind::Licence)
        .count()
}

/// The holders are the active accounts, each once.
fn assert_one_each(holders: &[String], active: u64) {
    let mut seen: BTreeMap<&str, u32> = BTreeMap::new();
    for h in holders {
        *seen.entry(h).or_default() += 1;
    }
    assert!(seen.values().all(|n| *n == 1), "a user holds two: {seen:?}");
    assert_eq!(
        holders.len() as u64,
        active,
        "one licence per active account"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_short_pool_leaves_exactly_the_missing_accounts_waiting_until_licences_come() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The pool is set once the import says how many accounts are active.
    let probe = world(1_000, 3, &[]);
    let active = probe.active();
    drop(probe);
    let pool = format!("{FUNDAMENTALS}={}", active - 50);
    let w = world(1_000, 3, &["--licences", &pool]);

    let (code, summary) = w.sync();
    assert_eq!(code, Some(3), "work left queued: {summary}");
    let status = status_json(&w.config);
    assert_eq!(
        status["waiting_for_licence"],
        json!({ FUNDAMENTALS: 50 }),
        "{status}"
    );
    assert_eq!(status["quarantine"], json!([]), "nobody quarantined");
    let (code, check) = w.check();
    assert_eq!(code, Some(3), "{check}");
    assert!(
        check.contains("50 accounts wait for a licence of SKU 1010070001"),
        "{check}"
    );
    assert!(check.contains("ask Google for more licences"), "{check}");
    assert_eq!(w.holders().await.len() as u64, active - 50);

    // A second round without licences: still the same 50 waiting, one call refused.
    let (code, _) = w.sync();
    assert_eq!(code, Some(3));
    assert_eq!(
        status_json(&w.config)["waiting_for_licence"],
        json!({ FUNDAMENTALS: 50 })
    );

    w.grant(60).await;
    let (code, summary) = w.sync();
    assert_eq!(code, Some(0), "{summary}");
    let status = status_json(&w.config);
    assert_eq!(status["waiting_for_licence"], json!({}), "{status}");
    assert_one_each(&w.holders().await, active);
}

/// Killed (SIGKILL) after a seeded number of applied answers, over and over, then run to
/// the end: every active account holds exactly one licence, and the journal is empty.
#[tokio::test(flavor = "multi_thread")]
async fn syncs_killed_among_the_assignments_end_with_one_licence_each() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let w = world(400, 5, &["--licences", "1010070001=2000"]);
    let active = w.active();
    let (mut killed, mut assignments_cut) = (0, 0);
    for wanted in [150usize, 420, 480, 600] {
        let mut child = binary_in(&w.config)
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
        if applied == wanted && child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        assignments_cut += licences_in_flight(&w.dir.path().join("store"));
    }
    assert!(killed >= 2, "killed in the middle of the work: {killed}");
    assert!(
        assignments_cut > 0,
        "some kill left assignments sent without an answer"
    );
    for _ in 0..5 {
        if w.sync().0 == Some(0) {
            break;
        }
    }
    let (code, summary) = w.sync();
    assert_eq!(code, Some(0), "{summary}");
    assert_eq!(status_json(&w.config)["outbox"]["depth"], 0);
    assert_one_each(&w.holders().await, active);
}
