//! Licences in the life cycle, through the real binary and the emulator (its own process):
//! every account created gets exactly one licence; a pool short by 50 leaves exactly 50
//! waiting, said by `status --check` with the SKU, with nobody quarantined, until licences
//! are added; a sync killed in the middle of its assignments ends with every account
//! holding exactly one.

mod support;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use support::crash::{binary_in, emulator_config, import, json_of, kill_sync_after, status_json};
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
    let licences = format!(
        "[daemon]\ncontrol_socket = \"\"\n[licences]\nenabled = true\napi_base = {url:?}\n"
    );
    let config = emulator_config(dir.path(), &url, &key_file, &licences);
    if rows > 0 {
        let export = dir.path().join("export.csv");
        ExportGen::new(seed).write_csv(&export, rows);
        import(&config, &export, &[]);
    }
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
        self.sync_with(&[])
    }

    fn sync_with(&self, args: &[&str]) -> (Option<i32>, Value) {
        let out = binary_in(&self.config)
            .args(["sync", "--json"])
            .args(args)
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

    /// What the daemon's metrics endpoint would serve now (the daemon's own renderer, on
    /// the store between two commands).
    async fn metrics(&self) -> String {
        let store = belajar_sync::store::Store::open(&self.dir.path().join("store"), 8).unwrap();
        let google = belajar_sync::config::Google {
            key_file: self.key_file.clone(),
            subject: "admin@belajar.id".into(),
            api_base: self.url.clone(),
            ..Default::default()
        };
        let client = belajar_sync::google::DirectoryClient::new(&google)
            .await
            .unwrap();
        belajar_sync::metrics::render(&store, &client).unwrap()
    }

    fn licence_report(&self) -> Value {
        json_of(&self.config, &["report", "licences", "--json"])
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

    /// An admin removes `user`'s Fundamentals licence in the Admin console.
    async fn remove_by_hand(&self, user: &str) {
        let token = token_from_key_with(&self.key_file, "admin@belajar.id", LICENSING).await;
        let answer = reqwest::Client::new()
            .delete(format!(
                "{}/apps/licensing/v1/product/Google-Apps/sku/{FUNDAMENTALS}/user/{user}",
                self.url
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{}", answer.status());
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

/// An export of the students `ids` (ten schools), as CSV.
fn students(ids: std::ops::Range<u32>) -> String {
    const GIVEN: [&str; 10] = [
        "Siti", "Budi", "Dewi", "Agus", "Rina", "Putri", "Fajar", "Indah", "Andi", "Ayu",
    ];
    const FAMILY: [&str; 10] = [
        "Aminah", "Santoso", "Lestari", "Saputra", "Wati", "Hidayat", "Nugroho", "Sari", "Siregar",
        "Pratama",
    ];
    let mut csv = String::from("id_type,id,full_name,role,jenjang,npsn\n");
    for i in ids {
        let name = format!(
            "{} {}",
            GIVEN[i as usize % 10],
            FAMILY[i as usize / 10 % 10]
        );
        let npsn = 20_100_001 + i % 10;
        csv.push_str(&format!(
            "nisn,{:010},{name},peserta_didik,sd,{npsn}\n",
            10_000 + i
        ));
    }
    csv
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
    let metrics = w.metrics().await;
    assert!(
        metrics.contains("belajar_sync_licence_waiting_accounts{sku=\"1010070001\"} 50"),
        "{metrics}"
    );

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
    let holders = w.holders().await;
    assert_one_each(&holders, active);

    // An admin takes two licences back by hand: `resync` gives one back at once, the
    // next scan finds the other.
    let (first, second) = (&holders[0], &holders[1]);
    w.remove_by_hand(first).await;
    w.remove_by_hand(second).await;
    let out = binary_in(&w.config)
        .args(["resync", first])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("licence 1010070001: not held"), "{said}");
    assert_eq!(w.holders().await.len() as u64, active - 1);
    let (code, summary) = w.sync_with(&["--scan"]);
    assert_eq!(code, Some(0), "{summary}");
    assert_eq!(summary["done"]["licence"], 1, "{summary}");
    assert_one_each(&w.holders().await, active);
}

/// 1,000 accounts with 1,100 Fundamentals licences each get one; 200 of them leave (a
/// grace of 0 days), are suspended, then archived, freeing theirs; 300 new accounts then
/// get licences from the 100 left and the 200 freed.
#[tokio::test(flavor = "multi_thread")]
async fn leavers_archived_free_their_licences_for_the_new_school_year() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let w = world(
        0,
        1,
        &[
            "--licences",
            "1010070001=1100,1010340007=300",
            "--licence-reuse-secs",
            "0",
        ],
    );
    let mut config = std::fs::read_to_string(&w.config).unwrap();
    config.push_str("[lifecycle]\ngrace_days = 0\n");
    std::fs::write(&w.config, config).unwrap();
    let import_csv = |name: &str, csv: String| {
        let path = w.dir.path().join(name);
        std::fs::write(&path, csv).unwrap();
        import(&w.config, &path, &["--allow-mass-retire"]);
    };

    import_csv("year1.csv", students(0..1_000));
    assert_eq!(w.sync().0, Some(0));
    assert_one_each(&w.holders().await, 1_000);

    // 200 leave: suspended by one round, archived by the next.
    import_csv("leavers.csv", students(200..1_000));
    // (A fifth of the domain: the mass-suspension guard is released for it.)
    let (_, first) = w.sync_with(&["--allow-mass-suspend"]);
    assert_eq!(first["done"]["suspend"], 200, "{first}");
    let (code, second) = w.sync();
    assert_eq!(second["done"]["archive"], 200, "{second}");
    assert_eq!(code, Some(0), "{second}");
    let pools = pools(&w.url).await;
    assert_eq!(pools[FUNDAMENTALS]["assigned"], 800, "{pools}");
    assert_eq!(pools[FUNDAMENTALS]["available"], 300, "{pools}");
    assert_eq!(pools["1010340007"]["assigned"], 200, "{pools}");

    assert_eq!(status_json(&w.config)["licences_freed_last_24h"], 200);
    let report = w.licence_report();
    assert_eq!(report["skus"][FUNDAMENTALS]["assigned"], 800, "{report}");
    assert_eq!(
        report["skus"][FUNDAMENTALS]["freed_last_24h"], 200,
        "{report}"
    );
    assert_eq!(report["skus"]["1010340007"]["assigned"], 200, "{report}");

    // The new school year: 300 new pupils take the 100 left and the 200 freed.
    import_csv("year2.csv", students(200..1_300));
    let report = w.licence_report();
    assert_eq!(report["forecast"]["new_accounts_need"], 300, "{report}");
    assert_eq!(report["forecast"]["leavers_will_free"], 0, "{report}");
    let (code, summary) = w.sync();
    assert_eq!(code, Some(0), "{summary}");
    assert_eq!(summary["done"]["licence"], 300, "{summary}");
    assert_one_each(&w.holders().await, 1_100);
    let status = status_json(&w.config);
    assert_eq!(status["waiting_for_licence"], json!({}));
    assert_eq!(status["quarantine"], json!([]));
    let school = json_of(
        &w.config,
        &["report", "school", "20100001", "--format", "json"],
    );
    assert_eq!(school["without_licence"], 0, "{school}");
    let out = binary_in(&w.config)
        .args(["report", "school", "20100001", "--format", "html"])
        .output()
        .unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.contains("<h2>Licences</h2>") && page.contains("0 active accounts without a licence"),
        "{page}"
    );
}

/// With Google's auto-licensing (`auto_assigned = true`), belajar-sync assigns nothing:
/// it checks each new account holds its licence.
#[tokio::test(flavor = "multi_thread")]
async fn with_auto_licensing_belajar_sync_checks_and_assigns_nothing() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let w = world(
        200,
        9,
        &["--licences", "1010070001=1000", "--auto-licensing"],
    );
    let mut config = std::fs::read_to_string(&w.config).unwrap();
    config.push_str("auto_assigned = true\n"); // in [licences], the last table
    std::fs::write(&w.config, config).unwrap();
    let (code, summary) = w.sync();
    assert_eq!(code, Some(0), "{summary}");
    let active = w.active();
    assert_eq!(summary["done"]["licence"], active, "{summary}");
    assert_one_each(&w.holders().await, active);
    let counters = get_json(format!("{}/emulator/counters", w.url)).await;
    let calls = &counters["calls"];
    assert_eq!(
        calls["licensing.licenseAssignments.insert"],
        Value::Null,
        "{calls}"
    );
    assert_eq!(
        calls["licensing.licenseAssignments.get"]["200"], active,
        "{calls}"
    );
}

/// The Enterprise License Manager API not enabled in the Cloud project (Google answers
/// 403 to every licensing call): the accounts are still created, their assignments wait
/// in the journal with one refused call a round, nobody is quarantined, the run says what
/// to do, and `check` names the API.
#[tokio::test(flavor = "multi_thread")]
async fn licensing_refused_leaves_assignments_waiting_not_quarantined() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let w = world(
        200,
        4,
        &["--licences", "1010070001=1000", "--licensing-disabled"],
    );
    let active = w.active();
    let out = binary_in(&w.config)
        .args(["sync", "--json"])
        .env("RUST_LOG", "belajar_sync=info")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["done"]["create"], active, "{summary}");
    assert_eq!(summary["quarantine"], 0, "{summary}");
    let waiting = summary["waiting"].to_string();
    assert!(
        waiting.contains(&format!(
            "{active} licence assignments wait: Google refuses licensing calls"
        )),
        "{summary}"
    );
    assert!(
        waiting.contains("Enterprise License Manager API"),
        "{summary}"
    );
    let status = status_json(&w.config);
    assert_eq!(status["outbox"]["depth"], active, "{status}");
    assert_eq!(status["quarantine"], json!([]), "{status}");
    let counters = get_json(format!("{}/emulator/counters", w.url)).await;
    let refused = counters["calls"]["licensing.licenseAssignments.insert"]["403"]
        .as_u64()
        .unwrap();
    assert!(
        refused <= 8,
        "the calls under way when the first refusal came (concurrency 8), not one per account: {counters}"
    );

    let out = binary_in(&w.config).arg("check").output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("FAIL  licences of SKU 1010070001: an API is not enabled")
            && said.contains("Enterprise License Manager API"),
        "{said}"
    );
}

async fn pools(url: &str) -> Value {
    get_json(format!("{url}/emulator/licences")).await
}

/// What the emulator answers at `url` (its own pages: counters, pools).
async fn get_json(url: String) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
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
        killed += u32::from(kill_sync_after(&w.config, wanted).is_some());
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
