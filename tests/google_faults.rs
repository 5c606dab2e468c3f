//! When Google misbehaves, the real binary stays right: each test puts a hostile proxy
//! (tests/support/hostile.rs) or a dead address between belajar-sync and the emulator and
//! checks the exit code, the message, what Google holds and what the journal holds.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::google::{KillOnDrop, spawn_emulator};
use support::hostile::{self, Misbehaviour, Rule};

/// A school of `n` students: NPSN `2010{school:04}`.
fn school(school: u32, n: u32) -> String {
    let mut rows = String::from("id_type,id,full_name,role,jenjang,npsn\n");
    for i in 0..n {
        rows.push_str(&format!(
            "nisn,{:010},Murid {} Sekolah{school},peserta_didik,sd,2010{school:04}\n",
            school * 1000 + i,
            [
                "Satu", "Dua", "Tiga", "Empat", "Lima", "Enam", "Tujuh", "Delapan"
            ][i as usize % 8]
        ));
    }
    rows
}

struct World {
    dir: tempfile::TempDir,
    _emulator: KillOnDrop,
    url: String,
    key: PathBuf,
    proxy: hostile::Hostile,
}

impl World {
    fn new() -> World {
        World::with_emulator(&[])
    }

    /// With the emulator started with `args`.
    fn with_emulator(args: &[&str]) -> World {
        let (emulator, url, key) = spawn_emulator(args);
        World {
            dir: tempfile::tempdir().unwrap(),
            _emulator: KillOnDrop(emulator),
            proxy: hostile::start(&url),
            url,
            key,
        }
    }

    /// A configuration reaching Google at `api_base`.
    fn config(&self, name: &str, api_base: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "data_dir = \"store\"\n[google]\nkey_file = {:?}\nsubject = \"admin@belajar.id\"\napi_base = \"{api_base}\"\nrequests_per_minute = 100000\ncall_deadline = \"3s\"\n[daemon]\ncontrol_socket = \"\"\n",
                self.key
            ),
        )
        .unwrap();
        path
    }

    /// Through the hostile proxy.
    fn hostile(&self) -> PathBuf {
        self.config("hostile.toml", &self.proxy.base_url)
    }

    fn command(&self, config: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_belajar-sync"));
        command
            .arg("--config")
            .arg(config)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("BELAJAR_SYNC_CONFIG");
        command
    }

    fn run(&self, config: &Path, args: &[&str]) -> Output {
        self.command(config, args).output().unwrap()
    }

    fn import(&self, config: &Path, rows: &str) {
        let file = self.dir.path().join("export.csv");
        std::fs::write(&file, rows).unwrap();
        let out = self.run(config, &["import", "--delta", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    fn status(&self, config: &Path) -> Value {
        let out = self.run(config, &["status", "--json"]);
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// How many users Google has in the org unit of `school`.
    fn users_of(&self, school: u32) -> usize {
        users_in(
            &self.url,
            &self.key,
            &format!("/student/sd/2010{school:04}"),
        )
    }
}

/// One call to the Directory API at `url` as the emulator's admin: status and body.
fn admin_call(url: &str, key: &Path, method: &str, path: &str) -> (u16, Value) {
    admin_write(url, key, method, path, None)
}

/// The same with a body.
fn admin_write(
    url: &str,
    key: &Path,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let token = support::google::token_from_key(key, "admin@belajar.id").await;
        support::google::Api::new(url, token)
            .ok(method, path, body)
            .await
    })
}

/// How many org units (below the root) the Google at `url` has.
fn org_units_in(url: &str, key: &Path) -> usize {
    let (_, listed) = admin_call(url, key, "GET", "customer/my_customer/orgunits?type=all");
    listed["organizationUnits"].as_array().map_or(0, Vec::len)
}

/// Schools `from..=to` of `n` students each, in one export.
fn schools(from: u32, to: u32, n: u32) -> String {
    let mut rows = school(from, n);
    for number in from + 1..=to {
        rows.extend(school(number, n).lines().skip(1).map(|l| format!("{l}\n")));
    }
    rows
}

const ORG_UNITS: &str = "/admin/directory/v1/customer/my_customer/orgunits";

/// How many users of `sd.belajar.id` the Google at `url` has in `org_unit`.
fn users_in(url: &str, key: &Path, org_unit: &str) -> usize {
    let (_, page) = admin_call(url, key, "GET", "users?domain=sd.belajar.id&maxResults=500");
    page["users"].as_array().map_or(0, |users| {
        users
            .iter()
            .filter(|u| u["orgUnitPath"] == org_unit)
            .count()
    })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn all_output(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

#[test]
fn an_outage_ends_the_round_at_once_and_loses_nothing() {
    let w = World::new();
    let good = w.hostile();
    w.import(&good, &school(1, 5));
    assert!(w.run(&good, &["sync"]).status.success());

    // Google goes away (nothing listens there) while 40 accounts wait to be created.
    let dead = w.config("dead.toml", "http://127.0.0.1:9");
    w.import(&good, &school(2, 40));
    let out = w.run(&dead, &["sync"]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    assert!(
        text(&out.stderr).contains("cannot reach Google"),
        "{}",
        all_output(&out)
    );
    let status = w.status(&good);
    assert_eq!(status["quarantine"], serde_json::json!([]), "{status}");
    assert!(
        status["outbox"]["depth"].as_u64().unwrap() >= 40,
        "{status}"
    );
    assert_eq!(
        status["outbox"]["in_flight"], 0,
        "nothing was sent: {status}"
    );
    let outage = &status["google_unreachable"];
    assert!(
        outage["reason"].as_str().is_some_and(|r| !r.is_empty()) && outage["since"].is_string(),
        "the outage the sync met is said without a daemon: {status}"
    );
    let said = text(&w.run(&good, &["status"]).stdout);
    assert!(
        said.contains("GOOGLE    unreachable at the last sync"),
        "{said}"
    );

    // Back: everything is created, once.
    let out = w.run(&good, &["sync"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert!(
        text(&out.stdout).contains("google     as last scanned at"),
        "a sync without a scan says how old its view of Google is: {}",
        all_output(&out)
    );
    assert_eq!(w.users_of(2), 40);
    let status = w.status(&good);
    assert_eq!(status["outbox"]["depth"], 0);
    assert_eq!(status["google_unreachable"], Value::Null, "{status}");
}

#[test]
fn creates_answered_unreadably_are_read_back_never_quarantined() {
    let w = World::new();
    let config = w.hostile();
    for (n, misbehaviour) in [
        Misbehaviour::InvalidJson,
        Misbehaviour::TruncatedJson,
        Misbehaviour::Empty200,
    ]
    .into_iter()
    .enumerate()
    {
        let school_no = 10 + n as u32;
        w.proxy.rules.set(vec![Rule {
            query: None,
            method: Some("POST"),
            path: "/admin/directory/v1/users",
            what: misbehaviour.clone(),
        }]);
        w.import(&config, &school(school_no, 8));
        let out = w.run(&config, &["sync"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{misbehaviour:?}: {}",
            all_output(&out)
        );
        assert_eq!(w.users_of(school_no), 8, "{misbehaviour:?}: each user once");
        let status = w.status(&config);
        assert_eq!(status["quarantine"], serde_json::json!([]), "{status}");
        assert_eq!(status["outbox"]["depth"], 0, "{status}");
    }
    assert!(w.proxy.rules.caught() >= 24);
}

#[test]
fn refused_writes_stop_the_run_and_quarantine_nobody() {
    let w = World::new();
    let config = w.hostile();
    for (n, misbehaviour) in [Misbehaviour::Forbidden403, Misbehaviour::Refuse401]
        .into_iter()
        .enumerate()
    {
        let school_no = 20 + n as u32;
        w.proxy.rules.set(vec![Rule {
            query: None,
            method: None,
            path: "/admin/directory/v1/",
            what: misbehaviour.clone(),
        }]);
        w.import(&config, &school(school_no, 30));
        let out = w.run(&config, &["sync"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{misbehaviour:?}: {}",
            all_output(&out)
        );
        assert!(
            text(&out.stderr).contains("belajar-sync check"),
            "the cause is named: {}",
            all_output(&out)
        );
        let status = w.status(&config);
        assert_eq!(status["quarantine"], serde_json::json!([]), "{status}");
        assert!(
            status["outbox"]["depth"].as_u64().unwrap() >= 30,
            "{status}"
        );
        assert!(
            w.proxy.rules.caught() < 30 * (n as u64 + 1),
            "the first refusal stops the batch: {} calls caught",
            w.proxy.rules.caught()
        );

        w.proxy.rules.set(vec![]);
        let out = w.run(&config, &["sync"]);
        assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
        assert_eq!(w.users_of(school_no), 30);
    }
}

#[test]
fn a_502_or_an_hour_long_retry_after_leaves_the_work_queued_with_the_right_words() {
    let w = World::new();
    let config = w.hostile();
    w.import(&config, &school(30, 5));
    assert!(w.run(&config, &["sync"]).status.success());

    let mut queued = 0;
    for (school_no, misbehaviour, words) in [
        (
            31,
            Misbehaviour::Html502,
            "Google answered 502 to 20 creates: they stay queued and are sent at the next round",
        ),
        (
            32,
            Misbehaviour::RetryAfterHour,
            "Google answered 429 to 20 creates: they stay queued",
        ),
    ] {
        w.proxy.rules.set(vec![Rule {
            query: None,
            method: Some("POST"),
            path: "/admin/directory/v1/users",
            what: misbehaviour.clone(),
        }]);
        w.import(&config, &school(school_no, 20));
        let out = w.run(&config, &["sync"]);
        let said = all_output(&out);
        assert_eq!(out.status.code(), Some(3), "{misbehaviour:?}: {said}");
        assert!(said.contains(words), "{misbehaviour:?}: {said}");
        assert!(!said.contains("settl"), "no user was being created: {said}");
        assert_eq!(w.users_of(school_no), 0);
        let status = w.status(&config);
        assert_eq!(status["quarantine"], serde_json::json!([]), "{status}");
        queued += 20;
        assert_eq!(status["outbox"]["depth"], queued, "{status}");
        w.proxy.rules.set(vec![]);
        if misbehaviour == Misbehaviour::Html502 {
            // Sent again a minute later: not at once, Google is given time.
            let out = w.run(&config, &["sync"]);
            assert!(
                all_output(&out).contains("20 actions wait"),
                "{}",
                all_output(&out)
            );
        }
    }
}

#[test]
fn a_hung_answer_is_bounded_by_the_deadline() {
    let w = World::new();
    let config = w.hostile();
    w.import(&config, &school(40, 5));
    assert!(w.run(&config, &["sync"]).status.success());
    w.proxy.rules.set(vec![Rule {
        query: None,
        method: Some("PUT"),
        path: "/admin/directory/v1/users",
        what: Misbehaviour::Hang(std::time::Duration::from_secs(30)),
    }]);
    let out = w.run(
        &config,
        &["suspend", "nisn:0000040000", "--reason", "commercial use"],
    );
    let said = all_output(&out);
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(
        said.contains("Google did not answer 1 suspend twice"),
        "{said}"
    );
    let shown = w.run(&config, &["show", "nisn:0000040000", "--json"]);
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["state"], "suspended");
    assert_eq!(
        shown["pending"]["action"]["kind"], "suspend",
        "the journal finishes it later: {shown}"
    );
}

#[test]
fn a_managed_user_deleted_in_google_is_restored_never_replaced() {
    let w = World::new();
    let config = w.config("direct.toml", &w.url);
    w.import(&config, &school(50, 5));
    assert!(w.run(&config, &["sync"]).status.success());
    let account = "sd:nisn:0000050002";
    let shown: Value =
        serde_json::from_slice(&w.run(&config, &["show", account, "--json"]).stdout).unwrap();
    let (id, email) = (
        shown["google"]["id"].as_str().unwrap().to_owned(),
        shown["email"].as_str().unwrap().to_owned(),
    );

    // An admin deletes the user in the Admin console.
    let (status, _) = admin_call(&w.url, &w.key, "DELETE", &format!("users/{email}"));
    assert_eq!(status, 204);

    // The scheduled run does not create a new, empty user in its place: it holds it.
    let out = w.run(&config, &["sync", "--scan"]);
    assert_eq!(out.status.code(), Some(3), "{}", all_output(&out));
    assert_eq!(w.users_of(50), 4, "no new user: {}", all_output(&out));
    let status = w.status(&config);
    let reason = status["conflicts"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("deleted in Google at") && reason.contains("resync` restores it"),
        "{status}"
    );

    // The helpdesk restores it: the same user, with its mail and files.
    let out = w.run(&config, &["resync", account]);
    let said = all_output(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("sent       undelete"), "{said}");
    let (status, user) = admin_call(&w.url, &w.key, "GET", &format!("users/{email}"));
    assert_eq!(status, 200);
    assert_eq!(user["id"], id.as_str(), "the same user came back");
    assert_eq!(user["orgUnitPath"], "/student/sd/20100050");
    assert_eq!(
        user["name"]["displayName"], "Murid Tiga Sekolah50",
        "the name as Dapodik spells it"
    );
    assert_eq!(w.users_of(50), 5);
    let out = w.run(&config, &["sync", "--scan"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert_eq!(w.status(&config)["conflicts"], serde_json::json!([]));
}

#[test]
fn org_units_lost_three_levels_deep_are_made_again_before_their_accounts() {
    // A store that knows Google's org units, pointed at a Google that has none of them
    // (a new Workspace, or an admin who deleted the tree).
    let w = World::new();
    let first = w.config("first.toml", &w.url);
    w.import(&first, &school(60, 5));
    assert!(w.run(&first, &["sync"]).status.success());
    let (fresh, fresh_url, fresh_key) = spawn_emulator(&[]);
    let _fresh = KillOnDrop(fresh);
    let config = w.dir.path().join("fresh.toml");
    std::fs::write(
        &config,
        std::fs::read_to_string(&first)
            .unwrap()
            .replace(&w.url, &fresh_url)
            .replace(&format!("{:?}", w.key), &format!("{fresh_key:?}")),
    )
    .unwrap();
    let mut more = school(60, 12);
    more.push_str(&school(61, 3).lines().skip(1).collect::<Vec<_>>().join("\n"));
    w.import(&config, &more);
    let out = w.run(&config, &["sync"]);
    let said = all_output(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let status = w.status(&config);
    assert_eq!(status["quarantine"], serde_json::json!([]), "{status}");
    assert_eq!(status["outbox"]["depth"], 0, "{status}");
    // The new accounts are in Google, in their org unit three levels down.
    assert_eq!(
        users_in(&fresh_url, &fresh_key, "/student/sd/20100061"),
        3,
        "{said}"
    );
    assert_eq!(
        users_in(&fresh_url, &fresh_key, "/student/sd/20100060"),
        7,
        "the 7 new accounts of the school whose units were lost: {said}"
    );
}

#[test]
fn a_sync_stopped_with_ctrl_c_says_what_it_leaves_queued_and_loses_nothing() {
    use std::io::BufRead;
    let w = World::new();
    let config = w.hostile();
    w.import(&config, &school(70, 2));
    assert!(w.run(&config, &["sync"]).status.success());
    // Each create takes a second: the push is caught in the middle.
    w.proxy.rules.set(vec![Rule {
        query: None,
        method: Some("POST"),
        path: "/admin/directory/v1/users",
        what: Misbehaviour::Hang(std::time::Duration::from_secs(1)),
    }]);
    w.import(&config, &school(71, 100));
    let mut child = Command::new(env!("CARGO_BIN_EXE_belajar-sync"))
        .arg("--config")
        .arg(&config)
        .arg("sync")
        .current_dir(w.dir.path())
        .env_remove("BELAJAR_SYNC_CONFIG")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let pushing = line.contains("pushing to Google");
        said.push(line);
        if pushing {
            break;
        }
    }
    // Interrupted once the creates are on their way (their org unit exists by then).
    let caught_before = w.proxy.rules.caught();
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while w.proxy.rules.caught() == caught_before && std::time::Instant::now() < give_up {
        std::thread::yield_now();
    }
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    said.extend(lines.map_while(Result::ok));
    let status = child.wait().unwrap();
    let said = said.join("\n");
    assert_eq!(status.code(), Some(1), "{said}");
    assert!(
        said.contains("actions stay queued in the journal"),
        "{said}"
    );
    let status = w.status(&config);
    let queued = status["outbox"]["depth"].as_u64().unwrap();
    assert!(queued > 0, "stopped before the end: {status}");
    assert_eq!(status["outbox"]["in_flight"], 0, "{status}");
    assert_eq!(
        w.users_of(71) as u64 + queued,
        100,
        "every account created or queued, none twice: {status}"
    );
}

#[test]
fn quarantined_org_units_and_accounts_are_released_once_the_cause_is_fixed() {
    let w = World::new();
    let config = w.hostile();
    w.import(&config, &school(80, 2));
    assert!(w.run(&config, &["sync"]).status.success());
    // Google refuses for good to create the org unit of a new school.
    w.proxy.rules.set(vec![Rule {
        query: None,
        method: Some("POST"),
        path: "/admin/directory/v1/customer/",
        what: Misbehaviour::Invalid400,
    }]);
    w.import(&config, &school(81, 4));
    let out = w.run(&config, &["sync"]);
    assert_eq!(out.status.code(), Some(3), "{}", all_output(&out));
    let status = w.run(&config, &["status"]);
    let said = text(&status.stdout);
    assert!(said.contains("org units could not be created"), "{said}");
    assert!(said.contains("/student/sd/20100081"), "{said}");
    assert!(said.contains("release --all-quarantined"), "{said}");

    // Fixed: the org unit is repaired by its path, the accounts released.
    w.proxy.rules.set(vec![]);
    let out = w.run(&config, &["resync", "/student/sd/20100081"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let out = w.run(&config, &["release", "--all-quarantined"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let out = w.run(&config, &["sync"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert_eq!(w.users_of(81), 4);
    assert_eq!(w.status(&config)["quarantine"], serde_json::json!([]));
}

#[test]
fn a_sheet_stops_at_the_first_refused_write_and_says_so_on_every_row() {
    let w = World::new();
    let config = w.hostile();
    w.import(&config, &school(90, 40));
    assert!(w.run(&config, &["sync"]).status.success());
    w.proxy.rules.set(vec![Rule {
        query: None,
        method: Some("PUT"),
        path: "/admin/directory/v1/users",
        what: Misbehaviour::Forbidden403,
    }]);
    let sheet = w.dir.path().join("sheet.csv");
    let out = w.run(
        &config,
        &[
            "credentials",
            "--school",
            "20100090",
            "--out",
            sheet.to_str().unwrap(),
        ],
    );
    let said = all_output(&out);
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(
        said.contains("belajar-sync check"),
        "the cause is named: {said}"
    );
    assert!(
        w.proxy.rules.caught() < 40,
        "stopped early: {} refused writes",
        w.proxy.rules.caught()
    );
    let text = std::fs::read_to_string(&sheet).unwrap();
    assert_eq!(text.matches("gagal, ulangi").count(), 40, "{text}");
}

/// How many user listings (pages) the emulator at `url` has answered.
fn listed(url: &str) -> u64 {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let counters = runtime.block_on(support::google::emulator_counters(url));
    counters["calls"]["directory.users.list"]
        .as_object()
        .map_or(0, |by| {
            by.values().map(|n| n.as_u64().unwrap()).sum::<u64>()
        })
}

/// Students whose addresses start with every letter: `n` of them at school `school`.
fn lettered_school(school: u32, n: u32) -> String {
    const GIVEN: [&str; 26] = [
        "Ani", "Budi", "Citra", "Dewi", "Eko", "Fitri", "Gilang", "Hadi", "Indah", "Joko",
        "Kartika", "Lestari", "Maya", "Nur", "Oki", "Putri", "Qori", "Rina", "Sari", "Tono",
        "Umar", "Vina", "Wati", "Xena", "Yusuf", "Zahra",
    ];
    let mut rows = String::from("id_type,id,full_name,role,jenjang,npsn\n");
    for i in 0..n {
        rows.push_str(&format!(
            "nisn,{:010},{} Murid{i},peserta_didik,sd,2010{school:04}\n",
            school * 1000 + i,
            GIVEN[i as usize % 26]
        ));
    }
    rows
}

/// Google ends listings that page too long: a big domain is listed in parts by the first
/// letter of addresses, each within the limit; a scan cut short by a failing part keeps
/// the parts it listed and the next sync lists only what is left.
#[test]
fn a_scan_in_parts_stays_inside_the_listing_limit_and_goes_on_after_a_failure() {
    // Every listing that needs a second page is refused: only parts of one page pass.
    let world = World::with_emulator(&["--listing-limit-secs", "0"]);
    let write = |name: &str, api_base: &str| {
        let path = world.config(name, api_base);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("[sync]\nscan_part_users = 100\n");
        std::fs::write(&path, text).unwrap();
        path
    };
    let direct = write("direct.toml", &world.url);
    let hostile = write("hostile-parts.toml", &world.proxy.base_url);
    world.import(&direct, &lettered_school(1, 600));
    let out = world.run(&direct, &["sync"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));

    // A whole listing of the domain (600 users, two pages) is refused at its second page.
    let first = "users?domain=sd.belajar.id&maxResults=500";
    let (status, page) = admin_call(&world.url, &world.key, "GET", first);
    assert_eq!(status, 200);
    let token = page["nextPageToken"].as_str().unwrap();
    let (status, _) = admin_call(
        &world.url,
        &world.key,
        "GET",
        &format!("{first}&pageToken={token}"),
    );
    assert_eq!(status, 503, "Google's listing limit");

    // The part of addresses starting with "m" fails; the others are listed and kept.
    world.proxy.rules.set(vec![Rule {
        method: Some("GET"),
        path: "/admin/directory/v1/users",
        query: Some("query=email%3Am"),
        what: Misbehaviour::Html502,
    }]);
    let out = world.run(&hostile, &["sync", "--scan"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        all_output(&out).contains("sd.belajar.id/m"),
        "the failing part is named: {}",
        all_output(&out)
    );
    let before = world.status(&direct)["last_scan"].clone();

    // The same Google answers again (a scan goes on only against the API base it began on).
    world.proxy.rules.set(vec![]);
    let listings_before = listed(&world.url);
    let out = world.run(&hostile, &["sync", "--scan"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let listings = listed(&world.url) - listings_before;
    assert!(
        listings <= 2,
        "only the part left was listed again ({listings} listings)"
    );
    let status = world.status(&direct);
    assert_ne!(status["last_scan"], before, "a new scan was believed");
    assert_eq!(
        status["last_scan"]["users"]["sd.belajar.id"], 600,
        "{status}"
    );
}

/// `sync --scan` started with `RUST_LOG=filter`, and the lines it logs.
fn scan_logging(
    world: &World,
    config: &std::path::Path,
    filter: &str,
) -> (
    std::process::Child,
    std::io::Lines<std::io::BufReader<std::process::ChildStderr>>,
) {
    let mut child = world
        .command(config, &["sync", "--scan"])
        .env("RUST_LOG", filter)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    (child, std::io::BufRead::lines(stderr))
}

/// A scan in parts killed (SIGKILL) after a seeded number of its parts were recorded: the
/// next scan goes on with the parts left (no part listed twice over the runs) and counts
/// every user once. Then one killed while it applies what it saw: the next ends it.
#[test]
fn a_scan_killed_at_seeded_points_goes_on_with_the_parts_left_and_counts_every_user_once() {
    let world = World::new();
    let config = world.config("config.toml", &world.url);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[sync]\nscan_part_users = 100\n");
    std::fs::write(&config, text).unwrap();
    world.import(&config, &lettered_school(1, 600));
    let out = world.run(&config, &["sync"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let before = world.status(&config)["last_scan"].clone();

    let listings_before = listed(&world.url);
    for kill_after in [5usize, 30] {
        let (mut child, lines) = scan_logging(&world, &config, "belajar_sync::reconciler=debug");
        let recorded = lines
            .map_while(Result::ok)
            .filter(|l| l.contains("part of the scan recorded"))
            .take(kill_after)
            .count();
        assert_eq!(recorded, kill_after, "the scan ended before the kill");
        child.kill().unwrap(); // SIGKILL, in the middle of the scan
        child.wait().unwrap();
        assert_eq!(
            world.status(&config)["last_scan"],
            before,
            "a scan cut short is not a scan"
        );
    }
    let out = world.run(&config, &["sync", "--scan"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let status = world.status(&config);
    assert_ne!(status["last_scan"], before, "a new scan was believed");
    assert_eq!(
        status["last_scan"]["users"]["sd.belajar.id"], 600,
        "{status}"
    );
    // Every part listed once (one page each; as many parts again of deleted users), but
    // for the four in flight at each kill; listing again from the start would be at least
    // 5 + 30 more.
    let parts = 2 * status["last_scan"]["parts"].as_object().unwrap().len() as u64;
    let listings = listed(&world.url) - listings_before;
    assert!(
        listings <= parts + 2 * 4,
        "parts recorded before a kill are not listed again: {listings} listings of {parts} parts"
    );
    let in_step = |world: &World| {
        let plan = world.run(&config, &["plan", "--json"]);
        let first_line = plan.stdout.split(|&b| b == b'\n').next().unwrap();
        let plan: Value = serde_json::from_slice(first_line).unwrap();
        plan["plan"]["in_step"].clone()
    };
    assert_eq!(in_step(&world), 600);

    // Killed once it applies what it saw to the records (wherever the kill lands: in the
    // middle, or once done): the next scan ends it, and every record is right.
    let (mut child, lines) = scan_logging(&world, &config, "belajar_sync=info");
    let applying = lines
        .map_while(Result::ok)
        .any(|l| l.contains("applying what the scan saw"));
    assert!(applying, "the scan applies what it saw");
    child.kill().unwrap();
    child.wait().unwrap();
    let out = world.run(&config, &["sync", "--scan"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let status = world.status(&config);
    assert_eq!(
        status["last_scan"]["users"]["sd.belajar.id"], 600,
        "{status}"
    );
    assert_eq!(in_step(&world), 600, "each user recorded once, none lost");
}

/// Org unit creates Google made but answered unreadably are read back (`orgunits.get`)
/// and believed, never quarantined; an org unit held for a refusal is released by the
/// first scan that sees it.
#[test]
fn org_unit_creates_answered_unreadably_are_read_back_and_a_scan_releases_a_held_one() {
    let w = World::new();
    let config = w.hostile();
    w.proxy.rules.set(vec![Rule {
        method: Some("POST"),
        path: ORG_UNITS,
        query: None,
        what: Misbehaviour::InvalidJsonAlways,
    }]);
    w.import(&config, &schools(1, 16, 2));
    let out = w.run(&config, &["sync"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let status = w.status(&config);
    assert_eq!(status["quarantine"], serde_json::json!([]), "{status}");
    assert_eq!(status["outbox"]["depth"], 0, "{status}");
    assert!(
        w.proxy.rules.caught() >= 18,
        "/student, /student/sd and 16 schools"
    );
    for number in 1..=16 {
        assert_eq!(w.users_of(number), 2, "school {number}");
    }

    // Refused for good: held. An admin then makes it by hand; the scan that sees it
    // releases it, and its accounts follow.
    w.proxy.rules.set(vec![Rule {
        method: Some("POST"),
        path: ORG_UNITS,
        query: None,
        what: Misbehaviour::Invalid400,
    }]);
    w.import(&config, &school(17, 3));
    let out = w.run(&config, &["sync"]);
    assert_eq!(out.status.code(), Some(3), "{}", all_output(&out));
    let held = w.status(&config)["quarantine"].to_string();
    assert!(held.contains("/student/sd/20100017"), "{held}");
    let (made, unit) = admin_write(
        &w.url,
        &w.key,
        "POST",
        "customer/my_customer/orgunits",
        Some(serde_json::json!({"name": "20100017", "parentOrgUnitPath": "/student/sd"})),
    );
    assert_eq!(made, 200, "{unit}");
    w.proxy.rules.set(vec![]);
    let out = w.run(&config, &["sync", "--scan"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let status = w.status(&config);
    assert_eq!(status["quarantine"], serde_json::json!([]), "{status}");
    assert_eq!(w.users_of(17), 3);
}

/// An answer that echoes the request's password (and other secret-looking fields) is
/// read without them: none reaches the store's record of the user, the history, the
/// output or a log line at `RUST_LOG=trace`.
#[test]
fn secrets_echoed_in_answers_are_never_stored_or_logged() {
    let w = World::new();
    let config = w.hostile();
    w.proxy.rules.set(vec![Rule {
        method: None,
        path: "/admin/directory/v1/users",
        query: None,
        what: Misbehaviour::EchoSecrets,
    }]);
    w.import(&config, &school(1, 20));
    let traced = |args: &[&str]| {
        let out = w
            .command(&config, args)
            .env("RUST_LOG", "trace")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", all_output(&out));
        all_output(&out)
    };
    let mut seen = traced(&["sync"]);
    let sheet = w.dir.path().join("akun.csv");
    seen += &traced(&[
        "credentials",
        "--school",
        "20100001",
        "--out",
        sheet.to_str().unwrap(),
    ]);
    let echoed = w.proxy.rules.echoed();
    assert_eq!(echoed.len(), 40, "20 creates and 20 first passwords echoed");
    for n in 0..20 {
        let shown = w.run(
            &config,
            &["show", &format!("nisn:{:010}", 1000 + n), "--json"],
        );
        assert_eq!(shown.status.code(), Some(0), "{}", all_output(&shown));
        seen += &all_output(&shown);
    }
    seen += &traced(&["list", "--format", "jsonl"]);
    seen += &traced(&["status", "--json"]);
    assert!(seen.contains("google_observed"), "the records were shown");
    for password in &echoed {
        assert!(
            !seen.contains(password.as_str()),
            "{password} was kept or logged"
        );
    }
    assert!(!seen.contains("hashFunction") && !seen.contains("recoveryToken"));
}

/// A scan cut short against one Google is not taken up against another: the scan of
/// the second lists its org units itself.
#[test]
fn a_scan_cut_short_against_another_google_starts_over() {
    let w = World::new();
    let config = w.hostile();
    w.import(&config, &schools(1, 5, 2));
    let out = w.run(&config, &["sync"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let units = org_units_in(&w.url, &w.key);
    assert_eq!(units, 7, "/student, /student/sd and 5 schools");

    // Another Google (an empty one, no org units), whose user listing fails half-way.
    let (other, other_url, other_key) = spawn_emulator(&[]);
    let _other = KillOnDrop(other);
    let other_proxy = hostile::start(&other_url);
    other_proxy.rules.set(vec![Rule {
        method: Some("GET"),
        path: "/admin/directory/v1/users",
        query: None,
        what: Misbehaviour::Html502,
    }]);
    let elsewhere = w.dir.path().join("elsewhere.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&w.proxy.base_url, &other_proxy.base_url)
        .replace(&format!("{:?}", w.key), &format!("{other_key:?}"));
    std::fs::write(&elsewhere, text).unwrap();
    let out = w.run(&elsewhere, &["sync", "--scan"]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));

    let out = w.run(&config, &["sync", "--scan"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let status = w.status(&config);
    assert_eq!(status["last_scan"]["org_units"], units, "{status}");
}
