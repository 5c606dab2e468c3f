//! What operators see and what people are told, through the binary: school reports,
//! lists, `status --check`, and the notices to retiring accounts sent through a real SMTP
//! server on 127.0.0.1, across a SIGKILL of the sender.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use support::daemon::{fetch_metrics, start_daemon, wait_for, wait_for_metrics_url};
use support::export_gen::write;
use support::google::{Api, KillOnDrop, spawn_emulator, token_from_key};
use support::smtp::{Received, SmtpServer};

/// An emulated Google, an SMTP server, and a store with its configuration.
struct World {
    dir: tempfile::TempDir,
    url: String,
    key: PathBuf,
    _emulator: KillOnDrop,
    smtp: SmtpServer,
}

impl World {
    fn new() -> World {
        let (emulator, url, key) = spawn_emulator(&[]);
        World {
            dir: tempfile::tempdir().unwrap(),
            url,
            key,
            _emulator: KillOnDrop(emulator),
            smtp: SmtpServer::start(),
        }
    }

    /// A configuration: `grace_days`, the test's mail relay, and the control socket or none.
    fn config(&self, grace_days: u32, socket: bool) -> PathBuf {
        let mail = format!("relay = \"127.0.0.1\"\nport = {}\n", self.smtp.port);
        self.config_with(grace_days, socket, &mail)
    }

    /// A configuration with `mail` as the relay's settings.
    fn config_with(&self, grace_days: u32, socket: bool, mail: &str) -> PathBuf {
        let path = self.dir.path().join("config.toml");
        let socket = if socket {
            self.dir.path().join("control.sock")
        } else {
            PathBuf::new()
        };
        write(
            &path,
            &format!(
                "data_dir = \"store\"\n\
                 [lifecycle]\ngrace_days = {grace_days}\n\
                 [google]\nkey_file = {key:?}\nsubject = \"admin@belajar.id\"\napi_base = \"{url}\"\n\
                 [daemon]\ncontrol_socket = {socket:?}\nmetrics_listen = \"127.0.0.1:0\"\n\
                 [mail]\n{mail}security = \"none\"\nfrom = \"Akun belajar.id <noreply@belajar.id>\"\n\
                 [display]\ntime_zone = \"Asia/Jakarta\"\n",
                key = self.key,
                url = self.url,
            ),
        );
        path
    }

    /// Day one imported and synced, then day two imported: four students retire.
    fn four_leave(&self, config: &Path) {
        let one = self.file("1.csv", &day_one());
        expect(config, &["import", "--quiet", one.to_str().unwrap()], 0);
        expect(config, &["sync", "--quiet"], 0);
        let two = self.file("2.csv", &day_two());
        let two = two.to_str().unwrap();
        expect(
            config,
            &["import", "--quiet", "--allow-mass-retire", two],
            0,
        );
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        write(&path, text);
        path
    }
}

fn command(config: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_belajar-sync"));
    command
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("BELAJAR_SYNC_CONFIG");
    command
}

fn run(config: &Path, args: &[&str]) -> Output {
    command(config, args).output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs and expects exit `code`.
fn expect(config: &Path, args: &[&str], code: i32) -> String {
    let out = run(config, args);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {}", said(&out));
    stdout(&out)
}

/// School 20100001: twelve students (two with a personal address) and a teacher.
fn day_one() -> String {
    let mut rows = String::from("id_type,id,full_name,role,jenjang,npsn,personal_email\n");
    for i in 1..=12 {
        let personal = if i <= 2 {
            format!("ortu{i}@example.com")
        } else {
            String::new()
        };
        rows.push_str(&format!(
            "nisn,00000000{i:02},Murid Nomor {},peserta_didik,sd,20100001,{personal}\n",
            words(i)
        ));
    }
    rows.push_str("nuptk,1234567890123456,Budi Santoso,pendidik,sd,20100001,\n");
    rows
}

/// Day two: students 1 to 4 leave the school; student 1 moves up to SMP 20200001.
fn day_two() -> String {
    let mut rows = String::from("id_type,id,full_name,role,jenjang,npsn,personal_email\n");
    for i in 5..=12 {
        rows.push_str(&format!(
            "nisn,00000000{i:02},Murid Nomor {},peserta_didik,sd,20100001,\n",
            words(i)
        ));
    }
    rows.push_str("nuptk,1234567890123456,Budi Santoso,pendidik,sd,20100001,\n");
    rows.push_str("nisn,0000000001,Murid Nomor Satu,peserta_didik,smp,20200001,\n");
    rows
}

fn words(i: u32) -> &'static str {
    [
        "Satu", "Dua", "Tiga", "Empat", "Lima", "Enam", "Tujuh", "Delapan", "Sembilan", "Sepuluh",
        "Sebelas", "Duabelas",
    ][i as usize - 1]
}

/// Runs `sync` while the SMTP server holds its `nth` message, kills it with SIGKILL there,
/// and lets the server go on.
fn sync_killed_at_message(w: &World, config: &Path, nth: usize) {
    let (reached, release) = w.smtp.hold(w.smtp.started() + nth);
    let child = command(config, &["sync", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    reached
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the sender reached the held message");
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    assert!(!status.success(), "killed");
    release.send(()).unwrap();
}

/// The notice a message is (its account address and days before), from its Message-ID.
fn notice_of(message: &Received) -> (String, u32) {
    let id = message.header("Message-ID").expect("a Message-ID");
    let days: u32 = id
        .rsplit_once('.')
        .and_then(|(_, tail)| tail.split_once('d'))
        .map(|(d, _)| d.parse().unwrap())
        .expect("days in the Message-ID");
    (message.to[0].clone(), days)
}

#[test]
fn retiring_accounts_get_one_30_day_and_one_3_day_notice_across_a_kill_of_the_sender() {
    let w = World::new();
    let config = w.config(30, false);
    let check = expect(&config, &["check"], 0);
    assert!(check.contains("ok    mail relay: 127.0.0.1:"), "{check}");
    w.four_leave(&config);
    assert!(w.smtp.received().is_empty(), "nobody was told before");
    // Planned before anything is sent: four 30-day notices are due.
    let plan = expect(&config, &["plan"], 0);
    assert!(plan.contains("notices    4 due: 4 30-day"), "{plan}");

    // The sender is killed while the relay holds its second notice: the first is sent,
    // the second not accepted.
    sync_killed_at_message(&w, &config, 2);
    assert_eq!(w.smtp.received().len(), 1);
    let out = expect(&config, &["sync", "--quiet"], 0);
    assert!(out.contains("notices    3 sent, 0 failed"), "{out}");
    let out = expect(&config, &["sync", "--quiet"], 0);
    assert!(
        out.contains("notices    0 sent, 0 failed"),
        "sent once: {out}"
    );

    // Three days before the suspension (the grace period shortened to three days).
    let config = w.config(3, false);
    let plan = expect(&config, &["plan"], 0);
    assert!(plan.contains("notices    4 due: 4 3-day"), "{plan}");
    sync_killed_at_message(&w, &config, 3);
    expect(&config, &["sync", "--quiet"], 0);
    expect(&config, &["sync", "--quiet"], 0);

    let received = w.smtp.received();
    let mut notices: BTreeMap<(String, u32), usize> = BTreeMap::new();
    for message in &received {
        *notices.entry(notice_of(message)).or_default() += 1;
    }
    let retiring: Vec<String> = (1..=4)
        .map(|i| format!("murid.{}@sd.belajar.id", words(i).to_lowercase()))
        .collect();
    let mut expected = BTreeMap::new();
    for address in &retiring {
        expected.insert((address.clone(), 30), 1);
        expected.insert((address.clone(), 3), 1);
    }
    assert_eq!(notices, expected, "exactly one of each: {received:#?}");

    // To the account and to the personal address the directory has; in Bahasa Indonesia.
    let first = received
        .iter()
        .find(|m| m.to[0] == retiring[0] && notice_of(m).1 == 30)
        .unwrap();
    assert_eq!(
        first.to,
        vec![retiring[0].clone(), "ortu1@example.com".into()]
    );
    assert_eq!(first.from, "noreply@belajar.id");
    let subject = first.header("Subject").unwrap();
    assert!(
        subject.starts_with(&format!(
            "Akun belajar.id {} akan dinonaktifkan pada ",
            retiring[0]
        )),
        "{subject}"
    );
    let body = unfold_quoted_printable(&first.data);
    assert!(body.contains("Yth. Murid Nomor Satu,"), "{body}");
    assert!(body.contains("(30 hari lagi)"), "{body}");
    assert!(body.contains("https://takeout.google.com"), "{body}");
    assert!(
        body.contains("jenjang SMP adalah murid.satu@smp.belajar.id"),
        "the new account is named: {body}"
    );
    let second = received
        .iter()
        .find(|m| m.to[0] == retiring[1] && notice_of(m).1 == 3)
        .unwrap();
    let body = unfold_quoted_printable(&second.data);
    assert!(body.contains("(3 hari lagi)"), "{body}");
    assert!(body.contains("memperbarui data Anda di Dapodik"), "{body}");

    // Counted by status and recorded in the account's history.
    let status: Value = serde_json::from_str(&expect(&config, &["status", "--json"], 0)).unwrap();
    assert_eq!(status["notices"]["sent"], 8, "{status}");
    assert_eq!(status["notices"]["waiting"], 0, "{status}");
    let show = expect(&config, &["show", &retiring[0]], 0);
    assert_eq!(
        show.matches("-day notice of the suspension on").count(),
        2,
        "{show}"
    );
    assert!(show.contains("3-day notice of the suspension on"), "{show}");
}

/// The message text with quoted-printable soft breaks and escapes undone (lettre encodes
/// long lines so).
fn unfold_quoted_printable(data: &str) -> String {
    let text = data.replace("=\r\n", "").replace("=\n", "");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).replace("\r\n", "\n")
}

#[test]
fn school_reports_lists_and_the_health_check_through_the_binary_and_the_socket() {
    let w = World::new();
    let config = w.config(30, false);
    // Never scanned: the check says so (1).
    let one = w.file("1.csv", &day_one());
    expect(&config, &["import", "--quiet", one.to_str().unwrap()], 0);
    let check = expect(&config, &["status", "--check"], 1);
    assert!(
        check.contains("check     1: Google was never scanned"),
        "{check}"
    );
    expect(&config, &["sync", "--quiet"], 0);
    let check = expect(&config, &["status", "--check"], 0);
    assert!(check.contains("check     0: healthy"), "{check}");

    // A stranger holds the address the next student would get: held (3).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let api = Api::new(&w.url, token_from_key(&w.key, "admin@belajar.id").await);
        api.create("murid.tigabelas@sd.belajar.id", "Rina", "Wati")
            .await;
    });
    let mut rows = day_two();
    rows.push_str("nisn,0000000013,Murid Nomor Tigabelas,peserta_didik,sd,20100001,\n");
    let two = w.file("2.csv", &rows);
    expect(
        &config,
        &[
            "import",
            "--quiet",
            "--allow-mass-retire",
            two.to_str().unwrap(),
        ],
        0,
    );
    expect(&config, &["sync", "--quiet"], 3);
    let check = expect(&config, &["status", "--check"], 3);
    assert!(
        check.contains("check     3: 1 account or org unit is held for a person"),
        "{check}"
    );

    // The school in detail, as a table.
    let table = expect(&config, &["report", "school", "20100001"], 0);
    assert!(
        table.starts_with("school 20100001: 14 accounts; last change 20"),
        "{table}"
    );
    assert!(
        table.contains(" WIB\n"),
        "local time, to the second: {table}"
    );
    for line in [
        "peserta didik                9         4          0",
        "pendidik                     1         0          0",
        "retiring   4 accounts, suspended unless Dapodik lists them again:",
        "held       1 account for a person:",
        "sd:nisn:0000000013  murid.tigabelas@sd.belajar.id (quarantine): create: murid.tigabelas@sd.belajar.id is held in Google by",
    ] {
        assert!(table.contains(line), "{line:?} in:\n{table}");
    }
    // JSON and CSV say the same.
    let json: Value = serde_json::from_str(&expect(
        &config,
        &["report", "school", "20100001", "--format", "json"],
        0,
    ))
    .unwrap();
    assert_eq!(json["accounts"]["retiring"], 4, "{json}");
    assert_eq!(json["held"], 1);
    assert_eq!(json["retiring"].as_array().unwrap().len(), 4);
    assert_eq!(json["held_accounts"][0]["list"], "quarantine");
    assert_eq!(json["roles"]["peserta_didik"]["active"], 9);
    let csv = expect(
        &config,
        &["report", "school", "--all", "--format", "csv"],
        0,
    );
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two schools: {csv}");
    assert!(lines[0].starts_with("npsn,accounts,active,retiring,suspended,peserta_didik_active"));
    assert!(
        lines[1].starts_with("20100001,14,10,4,0,"),
        "the school with a held account first: {csv}"
    );
    // The page stands alone: no script, nothing fetched, a chart.
    let html = expect(
        &config,
        &["report", "school", "--all", "--format", "html"],
        0,
    );
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<svg") && html.contains("<rect"), "a chart");
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href="));
    assert!(html.contains("20200001"));
    let one_page = expect(
        &config,
        &["report", "school", "20100001", "--format", "html"],
        0,
    );
    assert!(one_page.contains("Murid Nomor Satu"), "the retiring listed");
    assert!(one_page.contains("is held in Google by"), "why it is held");
    // An unknown school is bad input.
    let out = run(&config, &["report", "school", "99999999"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(said(&out).contains("no accounts of school \"99999999\""));

    // Lists, filtered.
    let retiring = expect(&config, &["list", "--state", "retiring"], 0);
    let rows: Vec<&str> = retiring.lines().collect();
    assert_eq!(rows.len(), 5, "a header and four: {retiring}");
    assert!(
        rows[0].starts_with("account,email,person,name,role,jenjang,school,state,since,suspend_on")
    );
    assert!(rows[1..].iter().all(|r| r.contains(",retiring,")));
    let jsonl = expect(
        &config,
        &[
            "list",
            "--school",
            "20200001",
            "--jenjang",
            "smp",
            "--format",
            "jsonl",
        ],
        0,
    );
    let rows: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{jsonl}");
    assert_eq!(rows[0]["email"], "murid.satu@smp.belajar.id");
    assert_eq!(rows[0]["person"], "nisn:0000000001");
    assert!(rows[0]["google_id"].is_string(), "linked: {jsonl}");
    let teachers = expect(
        &config,
        &["list", "--role", "pendidik", "--format", "jsonl"],
        0,
    );
    assert_eq!(teachers.lines().count(), 1);
    let out = run(&config, &["list", "--school", "2010000"]);
    assert_eq!(out.status.code(), Some(2), "a mistyped school is said");
    assert!(said(&out).contains("no accounts of school \"2010000\""));
    let out = run(&config, &["list", "--jenjang", "tk"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        said(&out).contains("paud, sd, smp, sma, smk, slb"),
        "{}",
        said(&out)
    );

    // The same through the daemon's control socket; and with the daemon down, the check
    // says 1.
    let config = w.config(30, true);
    let check = expect(&config, &["status", "--check"], 1);
    assert!(check.contains("the daemon is not running"), "{check}");
    let direct_table = table;
    let direct_list = retiring;
    let (_daemon, mut lines) = start_daemon(&config);
    let metrics_url = wait_for_metrics_url(&mut lines);
    wait_for(&mut lines, "sync finished");
    // The four 30-day notices were sent by the syncs above: counted for Prometheus.
    let metrics = fetch_metrics(&runtime, &metrics_url);
    for wanted in [
        "belajar_sync_notices_sent_total 4",
        "belajar_sync_notices_failed_total 0",
        "belajar_sync_notices_waiting 0",
    ] {
        assert!(metrics.contains(wanted), "{wanted} in:\n{metrics}");
    }
    let through = expect(&config, &["report", "school", "20100001"], 0);
    assert_eq!(
        through.lines().skip(1).collect::<Vec<_>>(),
        direct_table.lines().skip(1).collect::<Vec<_>>(),
        "the same report (but the last change)"
    );
    assert_eq!(
        expect(&config, &["list", "--state", "retiring"], 0),
        direct_list
    );
    let check = expect(&config, &["status", "--check"], 3);
    assert!(check.contains("daemon    running"), "{check}");

    // A snapshot that leaves out most of a school (of more than ten accounts) retires
    // none of it: held (4).
    let more = w.file(
        "more.csv",
        "id_type,id,full_name,role,jenjang,npsn\n\
         nisn,0000000021,Ani Wulandari,peserta_didik,sd,20100001\n\
         nisn,0000000022,Bima Prakoso,peserta_didik,sd,20100001\n\
         nisn,0000000023,Citra Lestari,peserta_didik,sd,20100001\n",
    );
    expect(
        &config,
        &["import", "--quiet", "--delta", more.to_str().unwrap()],
        0,
    );
    let short = w.file(
        "3.csv",
        "id_type,id,full_name,role,jenjang,npsn\nnisn,0000000005,Murid Nomor Lima,peserta_didik,sd,20100001\n",
    );
    expect(&config, &["import", "--quiet", short.to_str().unwrap()], 4);
    let check = expect(&config, &["status", "--check"], 4);
    assert!(
        check.contains("check     4: 1 school's retirements are held"),
        "{check}"
    );
}

#[test]
fn a_relay_that_is_down_or_set_up_wrong_loses_no_notice_and_no_secret() {
    let w = World::new();
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = w.config_with(
        30,
        false,
        &format!("relay = \"127.0.0.1\"\nport = {closed}\n"),
    );
    let check = run(&config, &["check"]);
    assert_eq!(check.status.code(), Some(1), "{}", said(&check));
    assert!(
        said(&check).contains(&format!("FAIL  mail relay 127.0.0.1:{closed}:")),
        "{}",
        said(&check)
    );
    w.four_leave(&config);
    // The first failure ends the run: the others are not tried against a relay that is down.
    let out = expect(&config, &["sync", "--quiet"], 0);
    assert!(out.contains("notices    0 sent, 1 failed (last: "), "{out}");
    let status: Value = serde_json::from_str(&expect(&config, &["status", "--json"], 0)).unwrap();
    assert_eq!(status["notices"]["failed"], 1, "{status}");
    assert_eq!(
        status["notices"]["waiting"], 4,
        "kept to be tried again: {status}"
    );
    // The failed one is tried again after a wait, not at once; the next in line is tried.
    let out = expect(&config, &["sync", "--quiet"], 0);
    assert!(out.contains("notices    0 sent, 1 failed"), "{out}");
    let status: Value = serde_json::from_str(&expect(&config, &["status", "--json"], 0)).unwrap();
    assert_eq!(status["notices"]["waiting"], 4, "{status}");

    // A credentials file others can read: nothing is sent, the run says why (never the
    // password), and the daemon does not start.
    let secret = w.file("smtp.secret", "relay-user\nsangat-rahasia-123\n");
    let config = w.config_with(
        30,
        false,
        &format!(
            "relay = \"127.0.0.1\"\nport = {}\ncredentials_file = {secret:?}\n",
            w.smtp.port
        ),
    );
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = run(&config, &["sync", "--quiet"]);
    let text = said(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("notices    NOT SENT: mail.credentials_file")
            && text.contains("is readable by others (mode 644): run chmod 600"),
        "{text}"
    );
    assert!(!text.contains("sangat-rahasia"), "no secret: {text}");
    let daemon = run(&config, &["run", "--allow-root"]);
    let text = said(&daemon);
    assert_eq!(daemon.status.code(), Some(2), "{text}");
    assert!(text.contains("is readable by others"), "{text}");
    assert!(!text.contains("sangat-rahasia"), "no secret: {text}");
    assert!(w.smtp.received().is_empty());
}
