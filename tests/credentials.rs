//! First passwords through the real binary against an emulator process: a school's
//! sheet whose every password signs in, resets for the helpdesk, activation counted from
//! sign-ins, the same through the daemon's control socket, and no password anywhere but
//! on the sheet and the helpdesk's screen.

mod support;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use support::command::{ok, text};
use support::google::{KillOnDrop, spawn_emulator};

const EXPORT: &str = "id_type,id,full_name,role,jenjang,npsn,birth_date\n\
nisn,0010000001,Siti Aminah,peserta_didik,sd,20100001,2015-03-01\n\
nisn,0010000002,Agus Salim,peserta_didik,sd,20100001,2015-01-01\n\
nisn,0010000003,Yusuf Hamka,peserta_didik,sd,20100001,\n\
nisn,0010000004,Dewi Lestari,peserta_didik,sd,20100001,\n\
nuptk,1000000000000005,Budi Santoso,pendidik,sd,20100001,\n\
nisn,0010000006,Rina Wati,peserta_didik,sd,20100002,\n";

/// A configuration for the emulator at `url`, the store and the socket in `dir`.
fn config(dir: &Path, url: &str, key: &Path, socket: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = \"store\"\n[google]\nkey_file = {key:?}\nsubject = \"admin@belajar.id\"\napi_base = \"{url}\"\nrequests_per_minute = 100000\ncall_deadline = \"3s\"\n[daemon]\ncontrol_socket = \"{socket}\"\nmetrics_listen = \"\"\n"
        ),
    )
    .unwrap();
    path
}

/// Runs the binary in `cwd` with `RUST_LOG=trace` (so a password that reached any log
/// line would show).
fn run(config: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_belajar-sync"))
        .arg("--config")
        .arg(config)
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "trace")
        .env_remove("BELAJAR_SYNC_CONFIG")
        .output()
        .unwrap()
}

/// `credentials --school SCHOOL --out OUT MORE…`, run in `cwd`.
fn sheet_of(config: &Path, cwd: &Path, school: &str, out: &Path, more: &[&str]) -> Output {
    let mut args = vec![
        "credentials",
        "--school",
        school,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    run(config, cwd, &args)
}

/// A person at Google's sign-in page: the emulator's test route. The status and whether
/// a new password must be chosen.
fn sign_in(url: &str, email: &str, password: &str) -> (u16, Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{url}/emulator/signin"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    })
}

/// The sheet's rows: (address, password, note) by name.
fn read_sheet(path: &Path) -> Vec<(String, String, String)> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the sheet is private");
    let bytes = std::fs::read(path).unwrap();
    let text = text(&bytes);
    let text = text.strip_prefix('\u{feff}').expect("a byte-order mark");
    csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[6].to_owned(), r[7].to_owned(), r[8].to_owned())
        })
        .collect()
}

/// Every file below `dir`, read whole.
fn files_below(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_below(&path));
        } else {
            found.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    found
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// A store with `export` imported and synced to a new emulator (no daemon): its folder,
/// the emulator, its URL and the configuration.
fn synced(export: &str) -> (tempfile::TempDir, KillOnDrop, String, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, url, key) = spawn_emulator(&[]);
    let config = config(dir.path(), &url, &key, "");
    let file = dir.path().join("export.csv");
    std::fs::write(&file, export).unwrap();
    ok(&run(
        &config,
        dir.path(),
        &["import", file.to_str().unwrap()],
    ));
    ok(&run(&config, dir.path(), &["sync"]));
    (dir, KillOnDrop(emulator), url, config)
}

#[test]
fn every_password_on_a_sheet_signs_in_and_nothing_else_ever_holds_one() {
    let (dir, _emulator, url, config) = synced(EXPORT);
    let cwd = dir.path();
    // Everything printed but the sheet and the helpdesk's screen, for the final check.
    let mut outputs: Vec<u8> = Vec::new();
    let mut keep = |out: &Output| {
        outputs.extend_from_slice(&out.stdout);
        outputs.extend_from_slice(&out.stderr);
    };

    // The school's first sheet: its four students, each with a password that works.
    let first = dir.path().join("kelas1.csv");
    let out = sheet_of(&config, cwd, "20100001", &first, &["--group", "student"]);
    let stdout = ok(&out);
    keep(&out);
    assert!(
        stdout.contains("issued     4 new first passwords"),
        "{stdout}"
    );
    let sheet = read_sheet(&first);
    let emails: Vec<&str> = sheet.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        emails,
        [
            "agus.salim@sd.belajar.id",
            "dewi.lestari@sd.belajar.id",
            "siti.aminah@sd.belajar.id",
            "yusuf.hamka@sd.belajar.id"
        ],
        "sorted by name, students of this school only"
    );
    let mut passwords: Vec<String> = Vec::new();
    for (email, password, _) in &sheet {
        assert_eq!(password.len(), 10, "{email}");
        let (status, body) = sign_in(&url, email, password);
        assert_eq!(status, 200, "{email}: {body}");
        assert_eq!(body["changePasswordRequired"], true);
        passwords.push(password.clone());
    }
    assert_eq!(sign_in(&url, emails[0], "wrong-password").0, 401);

    // The four signed in above; the scan sees it.
    let (agus, dewi) = (&sheet[0], &sheet[1]);
    let (siti, yusuf) = (&sheet[2], &sheet[3]);
    keep(&run(&config, cwd, &["sync", "--scan"]));
    let status: Value =
        serde_json::from_str(&ok(&run(&config, cwd, &["status", "--json"]))).unwrap();
    assert_eq!(status["signed_in"], 4, "{status}");

    // A second sheet for the whole school: the students who signed in are not touched,
    // the teacher gets a password, nobody's earlier password changes.
    let second = dir.path().join("sekolah.csv");
    let out = sheet_of(&config, cwd, "20100001", &second, &[]);
    let stdout = ok(&out);
    keep(&out);
    assert!(
        stdout.contains("issued     1 new first passwords"),
        "{stdout}"
    );
    assert!(
        stdout.contains("active     4 already signed in"),
        "{stdout}"
    );
    let rows = read_sheet(&second);
    let budi = rows
        .iter()
        .find(|r| r.0 == "budi.santoso@guru.sd.belajar.id")
        .unwrap();
    assert_eq!(budi.1.len(), 10);
    passwords.push(budi.1.clone());
    for (email, password, note) in &rows {
        if email != &budi.0 {
            assert_eq!(password, "", "{email}");
            assert!(note.starts_with("Sudah aktif"), "{note}");
        }
    }
    for (email, password, _) in [agus, dewi, siti, yusuf] {
        assert_eq!(sign_in(&url, email, password).0, 200, "{email} unchanged");
    }

    // Budi never signs in: a third sheet keeps his password unless --reissue names him.
    let third = dir.path().join("ulang.html");
    let out = sheet_of(
        &config,
        cwd,
        "20100001",
        &third,
        &["--group", "teacher", "--format", "html"],
    );
    let stdout = ok(&out);
    keep(&out);
    assert!(
        stdout.contains("issued     0 new first passwords"),
        "{stdout}"
    );
    assert!(
        stdout.contains("earlier    1 got a first password"),
        "{stdout}"
    );
    let out = sheet_of(
        &config,
        cwd,
        "20100001",
        &third,
        &["--format", "html", "--reissue", "nuptk:1000000000000005"],
    );
    ok(&out);
    keep(&out);
    let page = std::fs::read_to_string(&third).unwrap();
    assert_eq!(page.matches("class=\"card\"").count(), 1, "one card: Budi");
    let new = page
        .split("<div class=\"password\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .to_owned();
    assert_eq!(
        sign_in(&url, &budi.0, &budi.1).0,
        401,
        "the old card no longer works"
    );
    assert_eq!(sign_in(&url, &budi.0, &new).0, 200);
    passwords.push(new);
    keep(&run(&config, cwd, &["sync", "--scan"]));

    // The helpdesk: a wrong birth date changes nothing; the right one resets.
    let out = run(
        &config,
        cwd,
        &["reset-password", &siti.0, "--birth-date", "2015-03-02"],
    );
    keep(&out);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("does not match"));
    assert_eq!(sign_in(&url, &siti.0, &siti.1).0, 200, "still the old one");
    let out = run(
        &config,
        cwd,
        &[
            "reset-password",
            &siti.0,
            "--birth-date",
            "2015-03-01",
            "--json",
        ],
    );
    let reset: Value = serde_json::from_str(&ok(&out)).unwrap();
    let reset_password = reset["password"].as_str().unwrap().to_owned();
    assert_eq!(sign_in(&url, &siti.0, &siti.1).0, 401, "the old one fails");
    let (status, body) = sign_in(&url, &siti.0, &reset_password);
    assert_eq!(
        (status, &body["changePasswordRequired"]),
        (200, &json!(true))
    );
    keep(&Output {
        stdout: Vec::new(),
        ..out
    });
    passwords.push(reset_password);

    // Refused for an account suspended here: nothing sent.
    keep(&run(
        &config,
        cwd,
        &["suspend", &agus.0, "--reason", "commercial use"],
    ));
    let out = run(
        &config,
        cwd,
        &["reset-password", &agus.0, "--birth-date", "2015-01-01"],
    );
    keep(&out);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("reinstate"),
        "{}",
        text(&out.stderr)
    );

    // Activation per school, and who did what.
    let report = ok(&run(&config, cwd, &["report", "activation", "--json"]));
    let schools: Vec<Value> = report
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(schools[0]["npsn"], "20100002", "worst first: {report}");
    assert_eq!(schools[0]["signed_in"], 0);
    assert_eq!(schools[1]["npsn"], "20100001");
    assert_eq!(schools[1]["active"], 4, "Agus is suspended: {report}");
    assert_eq!(
        schools[1]["signed_in"], 4,
        "Dewi, Siti, Yusuf, Budi: {report}"
    );
    let shown: Value =
        serde_json::from_str(&ok(&run(&config, cwd, &["show", &siti.0, "--json"]))).unwrap();
    let actor = nix_user();
    let history = shown["history"].to_string();
    assert!(
        history.contains(&format!(
            "first password reset, asked by {actor} (birth date checked)"
        )),
        "{history}"
    );
    assert!(history.contains(&format!(
        "issued on the sheet of school 20100001, asked by {actor}"
    )));
    assert!(
        history.contains(&format!(
            "created by the import of {}, asked by {actor}",
            dir.path().join("export.csv").display()
        )),
        "{history}"
    );
    assert!(shown["access"]["last_sign_in"].is_string(), "{shown}");
    let agus_shown = ok(&run(&config, cwd, &["show", &agus.0]));
    assert!(
        agus_shown.contains(&format!("suspended here by {actor}")),
        "{agus_shown}"
    );

    // No password anywhere but where it was asked for.
    let store = files_below(&dir.path().join("store"));
    for password in &passwords {
        for (path, bytes) in &store {
            assert!(
                !contains(bytes, password),
                "{password} in {}",
                path.display()
            );
        }
        assert!(
            !contains(&outputs, password),
            "{password} in an output or log"
        );
    }
}

/// The name of the user the tests run as (what the history records).
fn nix_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    text(&out.stdout).trim().to_owned()
}

#[test]
fn a_failed_call_leaves_its_row_saying_so_and_no_password_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, url, key) = spawn_emulator(&[]);
    let _emulator = KillOnDrop(emulator);
    let config = config(dir.path(), &url, &key, "");
    let export = dir.path().join("export.csv");
    std::fs::write(&export, EXPORT).unwrap();
    ok(&run(
        &config,
        dir.path(),
        &["import", export.to_str().unwrap()],
    ));
    ok(&run(&config, dir.path(), &["sync"]));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .put(format!("{url}/emulator/faults"))
            .json(&json!({"error_rate": 1.0}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    });
    let sheet = dir.path().join("sheet.csv");
    let out = sheet_of(&config, dir.path(), "20100002", &sheet, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("FAILED"),
        "{}",
        text(&out.stdout)
    );
    let rows = read_sheet(&sheet);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].1.as_str(), rows[0].2.as_str()),
        ("", "gagal, ulangi")
    );

    // A sheet that cannot be written: refused before anything is sent.
    let out = sheet_of(
        &config,
        dir.path(),
        "20100002",
        std::path::Path::new("/nonexistent/sheet.csv"),
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cannot write in /nonexistent"));
}

#[test]
fn through_the_daemon_the_sheet_is_written_by_the_operators_own_client() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, url, key) = spawn_emulator(&[]);
    let _emulator = KillOnDrop(emulator);
    let socket = dir.path().join("control.sock");
    let config = config(dir.path(), &url, &key, socket.to_str().unwrap());
    let export = dir.path().join("export.csv");
    std::fs::write(&export, EXPORT).unwrap();
    ok(&run(
        &config,
        dir.path(),
        &["import", export.to_str().unwrap()],
    ));
    ok(&run(&config, dir.path(), &["sync"]));
    use std::os::unix::fs::PermissionsExt;
    let private = std::fs::Permissions::from_mode(0o700);
    std::fs::set_permissions(dir.path().join("store"), private).unwrap();

    let daemon = Command::new(env!("CARGO_BIN_EXE_belajar-sync"))
        .arg("--config")
        .arg(&config)
        .args(["run", "--allow-root"])
        .current_dir(dir.path())
        .env("RUST_LOG", "belajar_sync=info")
        .env_remove("NOTIFY_SOCKET")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut daemon = KillOnDrop(daemon);
    let mut log = std::io::BufRead::lines(std::io::BufReader::new(daemon.0.stderr.take().unwrap()));
    let mut seen = Vec::new();
    for line in log.by_ref() {
        let line = line.unwrap();
        let ready = line.contains("control socket open");
        seen.push(line);
        if ready {
            break;
        }
    }
    assert!(socket.exists(), "{seen:#?}");

    // The operator runs it in a folder of their own, with a relative path.
    let operator = dir.path().join("operator");
    std::fs::create_dir(&operator).unwrap();
    let out = run(
        &config,
        &operator,
        &["credentials", "--school", "20100001", "--out", "akun.csv"],
    );
    let stdout = ok(&out);
    assert!(
        stdout.contains("issued     5 new first passwords"),
        "{stdout}"
    );
    let rows = read_sheet(&operator.join("akun.csv"));
    assert_eq!(rows.len(), 5);
    for (email, password, _) in &rows {
        assert_eq!(sign_in(&url, email, password).0, 200, "{email}");
    }
    let reset = run(
        &config,
        &operator,
        &[
            "reset-password",
            &rows[0].0,
            "--birth-date",
            "2015-01-01",
            "--json",
        ],
    );
    let reset: Value = serde_json::from_str(&ok(&reset)).unwrap();
    assert_eq!(
        sign_in(&url, &rows[0].0, reset["password"].as_str().unwrap()).0,
        200
    );
    let status = ok(&run(&config, &operator, &["status"]));
    assert!(status.contains("daemon    running"), "{status}");

    let _ = Command::new("kill")
        .args(["-TERM", &daemon.0.id().to_string()])
        .status();
    let rest: Vec<String> = log.map_while(Result::ok).collect();
    let store = files_below(&dir.path().join("store"));
    for (_, password, _) in &rows {
        for line in seen.iter().chain(&rest) {
            assert!(!line.contains(password.as_str()), "{line}");
        }
        for (path, bytes) in &store {
            assert!(!contains(bytes, password), "{}", path.display());
        }
    }
    assert!(
        !store.iter().any(|(p, _)| p.ends_with("akun.csv")),
        "the daemon never writes the sheet"
    );
}

#[test]
fn an_identity_check_fails_closed_and_slows_down_guessing() {
    let (dir, _emulator, _url, config) = synced(EXPORT);
    let cwd = dir.path();
    let reset =
        |who: &str, born: &str| run(&config, cwd, &["reset-password", who, "--birth-date", born]);

    // Nothing on file: nothing to check, so no reset, whatever date is given.
    let out = reset("yusuf.hamka@sd.belajar.id", "1900-01-01");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no birth date is recorded"),
        "{}",
        text(&out.stderr)
    );

    // Two wrong dates are free; the third makes the next check wait, and while it
    // waits even the right date is refused.
    for n in 1..=3 {
        let out = reset("siti.aminah@sd.belajar.id", &format!("2015-04-0{n}"));
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(stderr.contains("does not match"), "{stderr}");
        assert_eq!(stderr.contains("waits until"), n >= 3, "try {n}: {stderr}");
        assert!(!stderr.contains(&format!("2015-04-0{n}")), "{stderr}");
    }
    let out = reset("siti.aminah@sd.belajar.id", "2015-03-01");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("3 wrong birth dates in a row"),
        "{}",
        text(&out.stderr)
    );
    let shown: Value = serde_json::from_str(&ok(&run(
        &config,
        cwd,
        &["show", "siti.aminah@sd.belajar.id", "--json"],
    )))
    .unwrap();
    let refused = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["what"] == "identity")
        .count();
    assert_eq!(refused, 3, "each wrong date is in the history: {shown}");

    // Another account is not slowed down by Siti's.
    let out = run(
        &config,
        cwd,
        &[
            "reset-password",
            "agus.salim@sd.belajar.id",
            "--birth-date",
            "2015-01-01",
            "--json",
        ],
    );
    ok(&out);
}

/// Calls of the Directory API method `method` the emulator at `url` has answered.
fn calls(url: &str, method: &str) -> u64 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let counters = runtime.block_on(support::google::emulator_counters(url));
    counters["calls"][method]
        .as_object()
        .map_or(0, |by| by.values().map(|n| n.as_u64().unwrap()).sum())
}

/// A new school's first sheet costs one call an account: a user belajar-sync created with
/// a password nobody was told cannot have been signed into, so it is not read first. Once
/// a password was given out, a sheet reads again (the person may have signed in).
#[test]
fn a_new_schools_first_sheet_writes_each_password_without_reading_first() {
    let mut export = String::from("id_type,id,full_name,role,jenjang,npsn\n");
    for i in 0..30 {
        export.push_str(&format!(
            "nisn,{:010},Murid Baru{i},peserta_didik,sd,20100007\n",
            7000 + i
        ));
    }
    let (dir, _emulator, url, config) = synced(&export);
    let cwd = dir.path();

    let (gets, updates) = (
        calls(&url, "directory.users.get"),
        calls(&url, "directory.users.update"),
    );
    let sheet = dir.path().join("baru-akun.csv");
    let stdout = ok(&sheet_of(&config, cwd, "20100007", &sheet, &[]));
    assert!(
        stdout.contains("issued     30 new first passwords"),
        "{stdout}"
    );
    assert_eq!(calls(&url, "directory.users.get") - gets, 0, "no read");
    assert_eq!(calls(&url, "directory.users.update") - updates, 30);
    let rows = read_sheet(&sheet);
    for (email, password, _) in &rows[..3] {
        assert_eq!(sign_in(&url, email, password).0, 200, "{email}");
    }

    // Given out now: the next sheet reads each user first.
    let gets = calls(&url, "directory.users.get");
    let again = dir.path().join("lagi.csv");
    let stdout = ok(&sheet_of(
        &config,
        cwd,
        "20100007",
        &again,
        &["--reissue", "all"],
    ));
    assert_eq!(calls(&url, "directory.users.get") - gets, 30);
    assert!(
        stdout.contains("issued     27 new first passwords"),
        "the 3 who signed in keep theirs: {stdout}"
    );
}
