//! The `belajar-sync` binary as an operator runs it: exit codes, messages, JSON.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::command::{run, text};
use support::export_gen::write;
use support::google::spawn_emulator;
use tempfile::TempDir;

struct Setup {
    dir: TempDir,
    config: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        write(&config, "data_dir = \"store\"\n");
        Setup { dir, config }
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        write(&path, text);
        path
    }

    fn run(&self, args: &[&str]) -> Output {
        run(&self.config, args)
    }

    fn json(&self, args: &[&str]) -> Value {
        self.json_with(&self.config, args)
    }

    fn json_with(&self, config: &Path, args: &[&str]) -> Value {
        let out = run(config, args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("one JSON object")
    }
}

const EXPORT: &str = "\u{feff}id_type,id,full_name,role,jenjang,npsn\r\n\
nisn,0012345678,Siti Aminah,peserta_didik,sd,20100001\r\n\
nuptk,1234567890123456,\"Dra. Budi Santoso, S.Pd.\",pendidik,sd,20100001\r\n\
nuptk,1234567890123456,Budi Santoso,pendidik,smp,20200001\r\n";

#[test]
fn import_show_and_status_for_an_operator() {
    let s = Setup::new();
    let export = s.file("sekolah.csv", EXPORT);
    let summary = s.json(&["import", export.to_str().unwrap(), "--json"]);
    assert_eq!(summary["rows_read"], 3);
    assert_eq!(summary["created"], 3);
    assert_eq!(summary["invalid"], 0);

    let again = s.run(&["import", export.to_str().unwrap()]);
    assert!(again.status.success());
    assert!(
        text(&again.stdout).contains("nothing changed"),
        "{}",
        text(&again.stdout)
    );

    let status = s.json(&["status", "--json"]);
    assert_eq!(status["accounts"]["total"], 3);
    assert_eq!(status["accounts"]["active"], 3);
    assert_eq!(status["accounts"]["retiring"], 0);
    assert_eq!(status["accounts"]["suspended"], 0);

    let siti = s.json(&["show", "siti.aminah@sd.belajar.id", "--json"]);
    for (field, want) in [
        ("key", "sd:nisn:0012345678"),
        ("email", "siti.aminah@sd.belajar.id"),
        ("full_name", "Siti Aminah"),
        ("role", "peserta_didik"),
        ("jenjang", "sd"),
        ("npsn", "20100001"),
        ("state", "active"),
    ] {
        assert_eq!(siti[field], want, "{field}");
    }
    let by_key = s.json(&["show", "sd:nisn:0012345678", "--json"]);
    assert_eq!(by_key, siti);

    // Two levels: the person id alone is ambiguous, --jenjang settles it.
    let ambiguous = s.run(&["show", "nuptk:1234567890123456"]);
    assert_eq!(ambiguous.status.code(), Some(2));
    assert!(
        text(&ambiguous.stderr).contains("sd:nuptk:1234567890123456, smp:nuptk:1234567890123456")
    );
    let smp = s.json(&[
        "show",
        "nuptk:1234567890123456",
        "--jenjang",
        "smp",
        "--json",
    ]);
    assert_eq!(smp["email"], "budi.santoso@guru.smp.belajar.id");

    let human = s.run(&["show", "0012345678"]);
    assert!(text(&human.stdout).contains("siti.aminah@sd.belajar.id"));
    assert!(text(&human.stdout).contains("not linked yet"));

    let missing = s.run(&["show", "nobody@sd.belajar.id"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("no account"));
}

#[test]
fn invalid_rows_exit_2_list_every_row_and_change_nothing() {
    let s = Setup::new();
    let export = s.file(
        "bad.csv",
        "id_type,id,full_name,role,jenjang,npsn\n\
         nisn,0012345678,Siti Aminah,peserta_didik,sd,20100001\n\
         nisn,00123,Ani,peserta_didik,sd,20100001\n\
         nisn,0012345679,Ani,murid,sd,2010\n",
    );
    let out = s.run(&["import", export.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    for line in [
        "line 3: id \"00123\": NISN must be 10 digits",
        "line 4: role \"murid\": expected one of",
        "line 4: npsn \"2010\": NPSN must be 8 digits",
        "nothing was changed",
    ] {
        assert!(stderr.contains(line), "missing {line:?} in {stderr}");
    }
    assert_eq!(s.json(&["status", "--json"])["accounts"]["total"], 0);

    let skipped = s.run(&[
        "import",
        export.to_str().unwrap(),
        "--skip-invalid",
        "--quiet",
    ]);
    assert_eq!(skipped.status.code(), Some(0));
    assert_eq!(s.json(&["status", "--json"])["accounts"]["total"], 1);
}

#[test]
fn a_file_that_cannot_be_read_changes_nothing() {
    let s = Setup::new();
    let export = s.file("bad.csv", "id,full_name\n1,x\n");
    let out = s.run(&["import", export.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("lacks the column(s) id_type, role, jenjang, npsn"));

    let out = s.run(&["import", s.dir.path().join("absent.csv").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot read"),
        "{}",
        text(&out.stderr)
    );

    let txt = s.file("export.txt", EXPORT);
    let out = s.run(&["import", txt.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--format csv|jsonl"));
    let out = s.run(&["import", txt.to_str().unwrap(), "--format", "csv", "--json"]);
    assert!(out.status.success());
}

#[test]
fn configuration_errors_exit_2_and_name_the_key() {
    let s = Setup::new();
    let bad = s.file("bad.toml", "data_dir = \"store\"\n[naming]\nguru = \"x\"\n");
    let out = run(&bad, &["status"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("unknown field `guru`"), "{stderr}");
    assert!(stderr.contains("bad.toml"), "{stderr}");

    let out = run(&s.dir.path().join("none.toml"), &["status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--config PATH or $BELAJAR_SYNC_CONFIG"));
}

#[test]
fn help_documents_the_exit_codes() {
    let out = Command::new(env!("CARGO_BIN_EXE_belajar-sync"))
        .arg("--help")
        .output()
        .unwrap();
    let help = text(&out.stdout);
    assert!(help.contains("Exit codes:"), "{help}");
    assert!(help.contains("2  bad input or configuration"), "{help}");
}

#[test]
fn check_says_what_works_and_what_to_fix() {
    let s = Setup::new();
    let (mut emulator, url, key) = spawn_emulator(&[]);
    // A configuration in the file `name`, acting as `subject`.
    let config_in = |name: &str, subject: &str| {
        s.file(
            name,
            &format!(
                "data_dir = \"{name}.store\"\n[google]\nkey_file = {key:?}\nsubject = \"{subject}\"\napi_base = \"{url}\"\n"
            ),
        )
    };
    let config = |subject: &str| config_in(&format!("{subject}.toml"), subject);
    let good = run(&config("admin@belajar.id"), &["check"]);
    let stdout = text(&good.stdout);
    assert_eq!(
        good.status.code(),
        Some(0),
        "{stdout}{}",
        text(&good.stderr)
    );
    assert!(
        stdout.contains("ok    users of guru.sd.belajar.id"),
        "{stdout}"
    );
    assert!(stdout.contains("ok    root org unit"), "{stdout}");
    assert!(stdout.contains("everything works"), "{stdout}");
    assert!(!stdout.contains("WARN"), "{stdout}");

    // A second partition acting as the same admin, without a ceiling: warned of.
    config_in("partition-two.toml", "admin@belajar.id");
    let shared = run(&config("admin@belajar.id"), &["check"]);
    let stdout = text(&shared.stdout);
    assert_eq!(
        shared.status.code(),
        Some(0),
        "a warning, not a failure: {stdout}"
    );
    assert!(
        stdout.contains("WARN  admin@belajar.id is also the subject of")
            && stdout.contains("partition-two.toml"),
        "{stdout}"
    );

    // Licences managed: the token asks for the licensing scope too, and licensing answers.
    let licensed = s.file(
        "licensed.toml",
        &format!(
            "data_dir = \"licensed.store\"\n[google]\nkey_file = {key:?}\nsubject = \"admin@belajar.id\"\napi_base = \"{url}\"\n[licences]\nenabled = true\napi_base = \"{url}\"\n"
        ),
    );
    let out = run(&licensed, &["check"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("auth/apps.licensing"), "{stdout}");
    assert!(
        stdout.contains("ok    licences of SKU 1010070001: listed (0 on the first page)"),
        "{stdout}"
    );

    let bad = run(&config("stranger@gmail.com"), &["check"]);
    let stdout = text(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL  access token: domain-wide delegation is not granted to client id"),
        "{stdout}"
    );
    emulator.kill().unwrap();
    emulator.wait().unwrap();
}

#[test]
fn the_emulator_command_serves_until_sigterm() {
    use std::io::{Read, Write};
    let (mut child, url, key) = spawn_emulator(&["--error-rate", "0.5", "--seed", "3"]);
    let url = url.strip_prefix("http://").unwrap().to_owned();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let mut stream = std::net::TcpStream::connect(&url).unwrap();
    write!(
        stream,
        "GET /emulator/faults HTTP/1.1\r\nHost: {url}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"error_rate\":0.5"), "{answer}");

    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!key.exists(), "the temp key file is removed on exit");
}

#[test]
fn the_emulator_refuses_rates_out_of_range() {
    let out = Command::new(env!("CARGO_BIN_EXE_belajar-sync"))
        .args(["emulator", "--listen", "127.0.0.1:0", "--error-rate", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("error_rate must be between 0 and 1"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn plan_sync_suspend_reinstate_and_resync_for_an_operator() {
    let s = Setup::new();
    let (mut emulator, url, key) = spawn_emulator(&[]);
    let config = s.file(
        "google.toml",
        &format!(
            "data_dir = \"store\"\n[google]\nkey_file = {key:?}\nsubject = \"admin@belajar.id\"\napi_base = \"{url}\"\nrequests_per_minute = 100000\n"
        ),
    );
    let run = |args: &[&str]| run(&config, args);
    let export = s.file("sekolah.csv", EXPORT);
    assert!(run(&["import", export.to_str().unwrap()]).status.success());

    let plan = run(&["plan", "--json"]);
    assert!(plan.status.success(), "{}", text(&plan.stderr));
    let lines: Vec<Value> = text(&plan.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["plan"]["actions"]["create"], 3, "{}", lines[0]);
    let creates: Vec<&Value> = lines[1..]
        .iter()
        .filter(|l| l["action"] == "create")
        .collect();
    assert_eq!(creates.len(), 3);
    for field in ["account", "action", "fields", "reason"] {
        assert!(!creates[0][field].is_null(), "{field}: {}", creates[0]);
    }

    let sync = run(&["sync", "--json"]);
    assert_eq!(sync.status.code(), Some(0), "{}", text(&sync.stderr));
    let report: Value = serde_json::from_slice(&sync.stdout).unwrap();
    assert_eq!(report["done"]["create"], 3, "{report}");

    let suspend = run(&[
        "suspend",
        "siti.aminah@sd.belajar.id",
        "--reason",
        "commercial use: crypto mining",
    ]);
    assert_eq!(
        suspend.status.code(),
        Some(0),
        "{}{}",
        text(&suspend.stdout),
        text(&suspend.stderr)
    );
    assert!(
        text(&suspend.stdout).contains("healthy"),
        "{}",
        text(&suspend.stdout)
    );
    let shown = s.json_with(&config, &["show", "sd:nisn:0012345678", "--json"]);
    assert_eq!(shown["state"], "suspended");
    assert_eq!(shown["reason"], "commercial use: crypto mining");
    assert_eq!(
        shown["google_observed"][0]["user"]["suspended"], true,
        "{shown}"
    );
    assert!(
        shown["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["detail"].as_str().unwrap().contains("crypto mining"))
    );

    let reinstate = run(&["reinstate", "sd:nisn:0012345678", "--json"]);
    assert_eq!(
        reinstate.status.code(),
        Some(0),
        "{}",
        text(&reinstate.stderr)
    );
    let report: Value = serde_json::from_slice(&reinstate.stdout).unwrap();
    assert_eq!(report["healthy"], true, "{report}");

    let resync = run(&["resync", "nisn:0012345678"]);
    assert_eq!(resync.status.code(), Some(0), "{}", text(&resync.stdout));
    assert!(
        text(&resync.stdout).contains("wrong      nothing"),
        "{}",
        text(&resync.stdout)
    );
    let unknown = run(&["resync", "sd:nisn:0099999999"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        text(&unknown.stderr).contains("no account"),
        "{}",
        text(&unknown.stderr)
    );
    let empty_reason = run(&["suspend", "sd:nisn:0012345678", "--reason", " "]);
    assert_eq!(empty_reason.status.code(), Some(2));

    let status = s.json_with(&config, &["status", "--json"]);
    assert_eq!(status["outbox"]["depth"], 0, "{status}");
    assert_eq!(status["conflicts"], serde_json::json!([]));
    emulator.kill().unwrap();
    emulator.wait().unwrap();
}

#[test]
fn the_demo_runs_a_helpdesk_morning_with_no_configuration() {
    let out = Command::new(env!("CARGO_BIN_EXE_belajar-sync"))
        .arg("demo")
        .env_remove("BELAJAR_SYNC_CONFIG")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert_eq!(stdout.matches("result     healthy").count(), 6, "{stdout}");
    for repaired in [
        "sent       unsuspend",
        "sent       update (orgUnitPath)",
        "sent       adopt (externalIds)",
        "sent       rename (orgUnitPath, primaryEmail)",
        "sent       create",
    ] {
        assert!(stdout.contains(repaired), "{repaired}: {stdout}");
    }
    assert!(stdout.contains("done       nothing to do"), "{stdout}");
    assert!(stdout.contains("1 retiring"), "{stdout}");
}

#[test]
fn a_short_snapshot_retires_nobody_of_a_school_it_mostly_leaves_out() {
    let s = Setup::new();
    let rows = |a: u32, b: u32| {
        let mut text = String::from("id_type,id,full_name,role,jenjang,npsn\n");
        for i in 0..a {
            text.push_str(&format!(
                "nisn,{:010},Murid A{i},peserta_didik,sd,20100001\n",
                i
            ));
        }
        for i in 0..b {
            text.push_str(&format!(
                "nisn,{:010},Murid B{i},peserta_didik,sd,20100002\n",
                1000 + i
            ));
        }
        text
    };
    let full = s.file("full.csv", &rows(72, 5));
    assert!(s.run(&["import", full.to_str().unwrap()]).status.success());

    // A truncated export: 3 of 72 at the big school, 4 of 5 at the small one.
    let short = s.file("short.csv", &rows(3, 4));
    let out = s.run(&["import", short.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("HELD     school 20100001: 69 of its 72 active accounts"),
        "{said}"
    );
    assert!(said.contains("--allow-mass-retire"), "{said}");
    let status = s.json(&["status", "--json"]);
    assert_eq!(
        status["accounts"]["retiring"], 1,
        "only the small school's leaver: {status}"
    );
    assert_eq!(
        status["retirements_held"][0]["npsn"], "20100001",
        "{status}"
    );
    let shown = text(&s.run(&["status"]).stdout);
    assert!(shown.contains("HELD      school 20100001"), "{shown}");

    let out = s.run(&["import", short.to_str().unwrap(), "--allow-mass-retire"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let status = s.json(&["status", "--json"]);
    assert_eq!(status["accounts"]["retiring"], 70);
    assert_eq!(
        status["retirements_held"],
        serde_json::json!([]),
        "{status}"
    );
}

/// Only an import makes a store, private whatever the umask; the other commands on a
/// mistyped `data_dir` say so and make nothing.
#[test]
fn only_an_import_makes_a_store_and_it_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let setup = Setup::new();
    let store = setup.dir.path().join("store");
    for args in [&["status"][..], &["show", "sd:nisn:0000000001"], &["plan"]] {
        let out = setup.run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(&format!("no store at {}", store.display())),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!store.exists(), "{args:?} made a store");
    }
    let export = setup.file(
        "export.csv",
        "id_type,id,full_name,role,jenjang,npsn\nnisn,0000000001,Ani Lestari,peserta_didik,sd,20100001\n",
    );
    // A umask that lets everyone read what is made, as an operator's shell may have.
    let out = Command::new("sh")
        .arg("-c")
        .arg("umask 022 && exec \"$0\" --config \"$1\" import \"$2\"")
        .arg(env!("CARGO_BIN_EXE_belajar-sync"))
        .arg(&setup.config)
        .arg(&export)
        .env_remove("BELAJAR_SYNC_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mode = std::fs::metadata(&store).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "store folder mode {mode:o}");
    assert_eq!(setup.json(&["status", "--json"])["accounts"]["total"], 1);
}

/// Huge inputs are summarised: a line past 64 KiB refuses the file in one short message
/// (the file is read no further), and a long value is quoted by its start and its size.
#[test]
fn huge_lines_and_values_are_summarised_not_echoed() {
    let setup = Setup::new();
    let header = "id_type,id,full_name,role,jenjang,npsn\n";
    let huge = setup.file(
        "huge.csv",
        &format!(
            "{header}nisn,0000000001,Ani,peserta_didik,sd,20100001\nnisn,0000000002,{},peserta_didik,sd,20100001\n",
            "A".repeat(3 << 20)
        ),
    );
    let out = setup.run(&["import", huge.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("line 3 is longer than 64 KiB"), "{err}");
    assert!(err.len() < 1_000, "{} bytes of message", err.len());

    let long = setup.file(
        "long.csv",
        &format!(
            "{header}nisn,0000000001,Ani,peserta_didik,sd,{}\n",
            "9".repeat(20_000)
        ),
    );
    let out = setup.run(&["import", long.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("line 2: npsn"), "{err}");
    assert!(err.contains("…(19 KB)"), "{err}");
    assert!(err.len() < 1_000, "{} bytes of message", err.len());
    assert!(
        !setup.dir.path().join("store").join("conf").exists()
            || setup.json(&["status", "--json"])["accounts"]["total"] == 0
    );
}

/// Calls that change something in the emulator at `url`, counted by its counters.
fn writes_in(url: &str) -> u64 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let counters = runtime.block_on(support::google::emulator_counters(url));
    counters["calls"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(method, _)| !method.ends_with(".get") && !method.ends_with(".list"))
        .flat_map(|(_, by_status)| by_status.as_object().unwrap().values())
        .map(|n| n.as_u64().unwrap())
        .sum()
}

/// A lost store made again: Google scanned first, then the exports imported; accounts
/// keep the addresses Google has even where a fresh allocation would number namesakes
/// the other way, and nothing is sent to Google.
#[test]
fn a_lost_store_is_rebuilt_from_the_exports_and_google_without_a_write() {
    let s = Setup::new();
    let (emulator, url, key) = spawn_emulator(&[]);
    let _emulator = support::google::KillOnDrop(emulator);
    let config = s.file(
        "google.toml",
        &format!(
            "data_dir = \"store\"\n[google]\nkey_file = {key:?}\nsubject = \"admin@belajar.id\"\napi_base = \"{url}\"\nrequests_per_minute = 100000\n[daemon]\ncontrol_socket = \"\"\n"
        ),
    );
    let run = |args: &[&str]| run(&config, args);
    // 2,000 students of 40 names, ids 2k+1 and 2k+2 of one name: the odd ids came first,
    // the even ones a day later, so within each name the numbers follow the order of
    // arrival, not of the ids.
    const NAMES: [&str; 8] = [
        "Siti", "Budi", "Ahmad", "Dewi", "Agus", "Putri", "Rizki", "Nur",
    ];
    const FAMILY: [&str; 5] = ["Aminah", "Santoso", "Lestari", "Saputra", "Wati"];
    let row = |i: usize| {
        format!(
            "nisn,{:010},{} {},peserta_didik,sd,{}\n",
            i + 1,
            NAMES[i / 2 % 8],
            FAMILY[i / 16 % 5],
            20_100_001 + i / 500
        )
    };
    let header = "id_type,id,full_name,role,jenjang,npsn\n";
    let even: String = (0..2_000).filter(|i| i % 2 == 0).map(row).collect();
    let all: String = (0..2_000).map(row).collect();
    let first = s.file("first.csv", &format!("{header}{even}"));
    let latest = s.file("latest.csv", &format!("{header}{all}"));
    for file in [&first, &latest] {
        let out = run(&["import", "--delta", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let out = run(&["sync"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let before = s.json(&["status", "--json"]);
    let address = |config: &Path, account: &str| {
        let out = support::command::run(config, &["show", account, "--json"]);
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["email"].clone()
    };
    // Student 2 came after student 81 of the same name: a fresh allocation by id would
    // give it the lower number.
    let (late, early) = ("sd:nisn:0000000002", "sd:nisn:0000000081");
    let late_address = address(&config, late);
    let early_address = address(&config, early);
    assert_ne!(late_address, early_address);

    std::fs::remove_dir_all(s.dir.path().join("store")).unwrap();
    let writes = writes_in(&url);
    let out = run(&["rebuild", latest.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("scanned Google: 2000 users"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(address(&config, late), late_address);
    assert_eq!(address(&config, early), early_address);

    let plan = run(&["plan", "--json"]);
    let first_line = plan.stdout.split(|&b| b == b'\n').next().unwrap();
    let plan: Value = serde_json::from_slice(first_line).unwrap();
    assert_eq!(plan["plan"]["actions"], serde_json::json!({}), "{plan}");
    assert_eq!(plan["plan"]["conflicts"], 0, "{plan}");
    let out = run(&["sync"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(writes_in(&url), writes, "nothing was written to Google");
    let after = s.json(&["status", "--json"]);
    assert_eq!(after["accounts"], before["accounts"]);

    // A store with accounts is not rebuilt over.
    let out = run(&["rebuild", latest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("holds 2000 accounts"),
        "{}",
        text(&out.stderr)
    );
}
