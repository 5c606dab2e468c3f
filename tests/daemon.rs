//! `belajar-sync run` as systemd runs it: the real binary as a child process, the emulator
//! as another. Progress is read from the daemon's log lines, never waited for by time.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use support::daemon::{fetch_metrics, signal, start_daemon, wait_for, wait_for_metrics_url};
use support::google::{Api, KillOnDrop, spawn_emulator, token_from_key};

/// The test configuration: the emulator at `url` with `key`, the store in `store/`, and
/// `daemon` as the [daemon] section.
fn write_config(
    dir: &std::path::Path,
    url: &str,
    key: &std::path::Path,
    daemon: &str,
) -> std::path::PathBuf {
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"store\"\n[google]\nkey_file = {key:?}\nsubject = \"admin@belajar.id\"\napi_base = \"{url}\"\nrequests_per_minute = 100000\n[daemon]\n{daemon}"
        ),
    )
    .unwrap();
    config
}

#[test]
fn the_daemon_imports_the_inbox_pushes_to_google_rejects_bad_exports_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, url, key) = spawn_emulator(&[]);
    let emulator = KillOnDrop(emulator);
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let config = write_config(
        dir.path(),
        &url,
        &key,
        "inbox_dir = \"inbox\"\npush_interval = \"1s\"\nmetrics_listen = \"127.0.0.1:0\"\ncontrol_socket = \"\"\n",
    );
    let (mut daemon, mut lines) = start_daemon(&config);
    let metrics_url = wait_for_metrics_url(&mut lines);
    wait_for(&mut lines, "sync finished"); // the first round: an empty directory, a scan

    // An export is moved into the inbox (written beside it first, as operators should).
    let staged = dir.path().join("sekolah.csv");
    std::fs::write(
        &staged,
        "id_type,id,full_name,role,jenjang,npsn\nnisn,0012345678,Siti Aminah,peserta_didik,sd,20100001\nnuptk,1234567890123456,Budi Santoso,pendidik,sd,20100001\n",
    )
    .unwrap();
    std::fs::rename(&staged, inbox.join("sekolah.csv")).unwrap();
    wait_for(&mut lines, "imported");
    let round = wait_for(&mut lines, "sync finished");
    assert!(inbox.join("processed/sekolah.csv").exists());
    // Every action is logged with its account and outcome; the password sent never is.
    assert!(
        round
            .iter()
            .any(|l| l.contains("account=sd:nisn:0012345678")
                && l.contains("action=\"create\"")
                && l.contains("outcome=\"done\"")),
        "{round:#?}"
    );
    assert!(
        !round.iter().any(|l| l.to_lowercase().contains("password")),
        "{round:#?}"
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let users = runtime.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let api = Api::new(&url, token_from_key(&key, "admin@belajar.id").await);
        let (_, siti) = api.ok("GET", "users/siti.aminah@sd.belajar.id", None).await;
        let (_, budi) = api
            .ok("GET", "users/budi.santoso@guru.sd.belajar.id", None)
            .await;
        [siti, budi]
    });
    assert_eq!(
        users[0]["orgUnitPath"], "/student/sd/20100001",
        "{}",
        users[0]
    );
    assert_eq!(
        users[1]["externalIds"][0]["value"],
        "sd:nuptk:1234567890123456"
    );
    let metrics = fetch_metrics(&runtime, &metrics_url);
    for wanted in [
        "belajar_sync_accounts{state=\"active\"} 2",
        "belajar_sync_outbox_entries 0",
        "belajar_sync_google_calls_total{method=\"users.insert\",status=\"2xx\"} 2",
        "# TYPE belajar_sync_google_calls_total counter",
        "belajar_sync_last_scan_timestamp_seconds ",
        "belajar_sync_guard_held 0",
    ] {
        assert!(metrics.contains(wanted), "{wanted}:\n{metrics}");
    }

    // A malformed export is rejected with its reason and changes nothing.
    let staged = dir.path().join("rusak.csv");
    std::fs::write(
        &staged,
        "id_type,id,full_name,role,jenjang,npsn\nnisn,12,Ani,peserta_didik,sd,20100001\n",
    )
    .unwrap();
    std::fs::rename(&staged, inbox.join("rusak.csv")).unwrap();
    wait_for(&mut lines, "export rejected");
    let error = std::fs::read_to_string(inbox.join("rejected/rusak.csv.error")).unwrap();
    assert!(error.contains("line 2"), "{error}");
    assert!(inbox.join("rejected/rusak.csv").exists());

    let kill = Command::new("kill")
        .args(["-TERM", &daemon.0.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    wait_for(&mut lines, "stopped");
    let status = daemon.0.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    drop(emulator);

    // The store is free again and holds the two accounts, nothing from the bad file.
    let out = Command::new(env!("CARGO_BIN_EXE_belajar-sync"))
        .arg("--config")
        .arg(&config)
        .args(["status", "--json"])
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["accounts"]["total"], 2, "{status}");
    assert_eq!(status["outbox"]["depth"], 0, "{status}");
}

#[test]
fn the_daemon_refuses_root_and_a_data_folder_open_to_others() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "data_dir = \"store\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_belajar-sync"))
        .arg("--config")
        .arg(&config)
        .args(["run", "--allow-root"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("chmod o-rwx"), "{stderr}");
}

/// Runs `belajar-sync ARGS` with `config`; (exit code, stdout, stderr).
fn belajar(config: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_belajar-sync"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn operator_commands_reach_the_running_daemon_through_its_socket_even_during_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, url, key) = spawn_emulator(&[]);
    let _emulator = KillOnDrop(emulator);
    let config = write_config(
        dir.path(),
        &url,
        &key,
        "push_interval = \"1s\"\nmetrics_listen = \"\"\ncontrol_socket = \"run/control.sock\"\n",
    );
    let socket = dir.path().join("run/control.sock");
    let (mut daemon, mut lines) = start_daemon(&config);
    wait_for(&mut lines, "control socket open");
    wait_for(&mut lines, "sync finished");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
    }

    // import: the file travels through the socket; the daemon pushes it at once.
    let export = dir.path().join("sekolah.csv");
    std::fs::write(
        &export,
        "id_type,id,full_name,role,jenjang,npsn\nnisn,0012345678,Siti Aminah,peserta_didik,sd,20100001\nnuptk,1234567890123456,Budi Santoso,pendidik,sd,20100001\n",
    )
    .unwrap();
    let (code, out, err) = belajar(&config, &["import", export.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(export.to_str().unwrap()), "{out}");
    assert!(out.contains("created                  2"), "{out}");
    wait_for(&mut lines, "sync finished");
    // Nobody holds the store after the round: it is reopened (sled's memory given back),
    // and every command after this runs on the reopened store.
    wait_for(&mut lines, "store reopened");

    // A malformed export through the socket: refused with its line, exit 2, nothing changed.
    let bad = dir.path().join("rusak.csv");
    std::fs::write(
        &bad,
        "id_type,id,full_name,role,jenjang,npsn\nnisn,12,Ani,peserta_didik,sd,20100001\n",
    )
    .unwrap();
    let (code, out, err) = belajar(&config, &["import", bad.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("line 2"), "{err}");

    // An admin moves Siti by hand; then the listing of users is held: a scan will hang.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let api = runtime.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let api = Api::new(&url, token_from_key(&key, "admin@belajar.id").await);
        api.ok(
            "PUT",
            "users/siti.aminah@sd.belajar.id",
            Some(serde_json::json!({"orgUnitPath": "/"})),
        )
        .await;
        let held = reqwest::Client::new()
            .put(format!("{url}/emulator/faults"))
            .json(&serde_json::json!({"hold_listing": true}))
            .send()
            .await
            .unwrap();
        assert!(held.status().is_success());
        api
    });
    let mut scan = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_belajar-sync"))
            .arg("--config")
            .arg(&config)
            .args(["sync", "--scan"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut scan_phases = BufReader::new(scan.0.stderr.take().unwrap()).lines();
    let phase = scan_phases.next().unwrap().unwrap();
    assert_eq!(phase, "scanning Google");

    // While that scan waits on Google: the helpdesk's resync, and status.
    let (code, out, err) = belajar(&config, &["resync", "siti.aminah@sd.belajar.id"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("wrong      the org unit in Google is /,"),
        "{out}"
    );
    assert!(out.contains("result     healthy"), "{out}");
    let (_, siti) = runtime.block_on(api.ok("GET", "users/siti.aminah@sd.belajar.id", None));
    assert_eq!(siti["orgUnitPath"], "/student/sd/20100001");
    let (code, out, err) = belajar(&config, &["status"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("daemon    running: syncing (asked through the control socket)"),
        "{out}"
    );
    assert!(out.contains("accounts  2 total: 2 active"), "{out}");

    // The scan goes on once Google answers again.
    runtime.block_on(async {
        reqwest::Client::new()
            .put(format!("{url}/emulator/faults"))
            .json(&serde_json::json!({"hold_listing": false}))
            .send()
            .await
            .unwrap()
    });
    let mut scanned = String::new();
    std::io::Read::read_to_string(&mut scan.0.stdout.take().unwrap(), &mut scanned).unwrap();
    assert_eq!(scan.0.wait().unwrap().code(), Some(0), "{scanned}");
    assert!(scanned.contains("scanned    "), "{scanned}");
    let shown_by_daemon = belajar(&config, &["show", "sd:nisn:0012345678"]);
    assert_eq!(shown_by_daemon.0, Some(0));

    // SIGHUP: what can change is taken, the rest named as waiting for a restart; a
    // configuration that does not load changes nothing.
    let text = std::fs::read_to_string(&config).unwrap();
    let signal = |name: &str| {
        let sent = Command::new("kill")
            .args([name, &daemon.0.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    std::fs::write(
        &config,
        text.replace("push_interval = \"1s\"", "push_interval = \"2s\"")
            .replace("requests_per_minute = 100000", "requests_per_minute = 1200"),
    )
    .unwrap();
    signal("-HUP");
    let reloaded = wait_for(&mut lines, "configuration reloaded");
    let reloaded = reloaded.last().unwrap();
    assert!(
        reloaded.contains("daemon.push_interval")
            && reloaded.contains("restart the service for google"),
        "{reloaded}"
    );
    std::fs::write(&config, "[daemon]\npush_interval = \"0s\"\n").unwrap();
    signal("-HUP");
    let refused = wait_for(&mut lines, "not reloaded");
    assert!(
        refused.last().unwrap().contains("push_interval"),
        "{refused:?}"
    );
    std::fs::write(&config, &text).unwrap();

    signal("-TERM");
    wait_for(&mut lines, "stopped");
    assert_eq!(daemon.0.wait().unwrap().code(), Some(0));
    assert!(!socket.exists(), "the socket is removed at exit");

    // Without the daemon the same command opens the store: the same answer.
    assert_eq!(
        belajar(&config, &["show", "sd:nisn:0012345678"]),
        shown_by_daemon
    );
    let (_, out, _) = belajar(&config, &["status"]);
    assert!(out.contains("daemon    not running"), "{out}");
}

/// Sends `request` and `body` on the control socket as a client that then dies (its
/// writing half shut); the daemon's (exit code, standard error).
fn raw_request(
    socket: &std::path::Path,
    request: &serde_json::Value,
    body: &[u8],
) -> (u64, String) {
    use std::io::Write;
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    writeln!(stream, "{request}").unwrap();
    stream.write_all(body).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut err = String::new();
    for line in BufReader::new(&stream).lines() {
        let frame: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if let Some(text) = frame["err"].as_str() {
            err.push_str(text);
        }
        if let Some(code) = frame["exit"].as_u64() {
            return (code, err);
        }
    }
    panic!("no exit frame; stderr: {err}");
}

/// The socket is a protocol, not a shell: an upload that ends early (at a line boundary
/// or mid-line) or arrives damaged changes nothing, the daemon opens no path a client
/// names, and a request of another version or over the size cap is refused.
#[test]
fn uploads_cut_short_paths_and_other_versions_are_refused_with_nothing_changed() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, url, key) = spawn_emulator(&[]);
    let _emulator = KillOnDrop(emulator);
    let config = write_config(
        dir.path(),
        &url,
        &key,
        "push_interval = \"1s\"\nmetrics_listen = \"\"\ncontrol_socket = \"run/control.sock\"\nmax_upload_mb = 1\n",
    );
    let socket = dir.path().join("run/control.sock");
    let (_daemon, mut lines) = start_daemon(&config);
    wait_for(&mut lines, "control socket open");

    let mut export = String::from("id_type,id,full_name,role,jenjang,npsn\n");
    for i in 0..30 {
        export.push_str(&format!(
            "nisn,{:010},Murid Nomor{i},peserta_didik,sd,20100001\n",
            i + 1
        ));
    }
    let file = dir.path().join("sekolah.csv");
    std::fs::write(&file, &export).unwrap();
    let (code, out, err) = belajar(&config, &["import", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    let active = || {
        let (_, out, _) = belajar(&config, &["status", "--json"]);
        let status: serde_json::Value = serde_json::from_str(&out).unwrap();
        (
            status["accounts"]["active"].clone(),
            status["accounts"]["retiring"].clone(),
        )
    };
    assert_eq!(active(), (30.into(), 0.into()));

    let request = |length: usize| serde_json::json!({"version": 2, "argv": ["import", "sekolah.csv"], "upload": true, "length": length});
    let bytes = export.as_bytes();
    let at_line = export.match_indices('\n').nth(10).unwrap().0 + 1;
    for cut in [at_line, at_line + 7] {
        let (code, err) = raw_request(&socket, &request(bytes.len()), &bytes[..cut]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("the upload was cut short"), "{err}");
        assert_eq!(
            active(),
            (30.into(), 0.into()),
            "nothing retired by a cut upload"
        );
        let logged = wait_for(&mut lines, "control socket: command failed");
        assert!(
            logged.last().unwrap().contains("the upload was cut short"),
            "the service's log says why: {logged:?}"
        );
    }
    let mut body = bytes.to_vec();
    body.extend_from_slice(b"{\"sha256\":\"00\"}\n");
    let (code, err) = raw_request(&socket, &request(bytes.len()), &body);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("arrived damaged"), "{err}");

    // A path the daemon could read and the client not: never opened, never quoted.
    let secret = dir.path().join("secret.csv");
    std::fs::write(&secret, "RAHASIA-first-line\n").unwrap();
    let path_request =
        serde_json::json!({"version": 2, "argv": ["import", secret], "upload": false});
    let (code, err) = raw_request(&socket, &path_request, b"");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("opens no path named by a client"), "{err}");
    assert!(!err.contains("RAHASIA"), "{err}");

    let old_client = serde_json::json!({"argv": ["status"], "upload": false});
    let (code, err) = raw_request(&socket, &old_client, b"");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("control protocol 2"), "{err}");

    let (code, err) = raw_request(&socket, &request(5 << 20), b"");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("max_upload_mb = 1"), "{err}");
    assert_eq!(active(), (30.into(), 0.into()));

    // An export from a pipe is read to its end and sent whole: the snapshot with a 31st
    // pupil adds one, and retires nobody.
    let mut piped = Command::new(env!("CARGO_BIN_EXE_belajar-sync"))
        .arg("--config")
        .arg(&config)
        .args(["import", "/dev/stdin", "--format", "csv"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = piped.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, export.as_bytes()).unwrap();
    std::io::Write::write_all(
        &mut stdin,
        b"nisn,0000000031,Murid Nomor30,peserta_didik,sd,20100001\n",
    )
    .unwrap();
    drop(stdin);
    let out = piped.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert_eq!(active(), (31.into(), 0.into()), "{said}");
}

/// Backups while the daemon runs: one a day on its own, one asked through the socket
/// (written into its backup folder, never at a path the client names); with the service
/// stopped and the store lost, `restore` makes it again with every account.
#[test]
fn the_daemon_backs_up_the_store_and_restore_makes_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, url, key) = spawn_emulator(&[]);
    let _emulator = KillOnDrop(emulator);
    let config = write_config(
        dir.path(),
        &url,
        &key,
        "push_interval = \"1s\"\nmetrics_listen = \"\"\ncontrol_socket = \"run/control.sock\"\nbackup_dir = \"backups\"\n",
    );
    // What a backup killed half-way two days ago left, and one under way now.
    let backups = dir.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    let (stale, busy) = (backups.join(".backup-killed"), backups.join(".backup-busy"));
    std::fs::write(&stale, "half").unwrap();
    std::fs::write(&busy, "half").unwrap();
    let touched = std::process::Command::new("touch")
        .args(["-d", "2 days ago"])
        .arg(&stale)
        .status()
        .unwrap();
    assert!(touched.success());
    let (mut daemon, mut lines) = start_daemon(&config);
    wait_for(&mut lines, "daily backup written");
    assert!(!stale.exists(), "a day-old leftover is removed");
    assert!(busy.exists(), "a backup under way is left alone");
    std::fs::remove_file(&busy).unwrap();
    let daily: Vec<_> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(daily.len(), 1, "{daily:?}");
    assert!(daily[0].starts_with("belajar-sync-") && daily[0].ends_with(".backup"));

    let export = dir.path().join("sekolah.csv");
    std::fs::write(
        &export,
        "id_type,id,full_name,role,jenjang,npsn\nnisn,0012345678,Siti Aminah,peserta_didik,sd,20100001\nnuptk,1234567890123456,Budi Santoso,pendidik,sd,20100001\n",
    )
    .unwrap();
    let (code, out, err) = belajar(&config, &["import", export.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    wait_for(&mut lines, "sync finished");
    let elsewhere = dir.path().join("elsewhere/snap.backup");
    let (code, out, err) = belajar(&config, &["backup", elsewhere.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    let written = dir.path().join("backups/snap.backup");
    assert!(out.contains(&written.display().to_string()), "{out}");
    assert!(written.exists() && !elsewhere.exists());
    let (_, before, _) = belajar(&config, &["status", "--json"]);
    let before: serde_json::Value = serde_json::from_str(&before).unwrap();

    // With the daemon running, restore is refused (the store is in use).
    let (code, _, err) = belajar(&config, &["restore", written.to_str().unwrap()]);
    assert_ne!(code, Some(0), "{err}");
    signal(daemon.0.id(), "-TERM");
    assert!(daemon.0.wait().unwrap().success());

    std::fs::rename(dir.path().join("store"), dir.path().join("lost")).unwrap();
    let (code, out, err) = belajar(&config, &["restore", written.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("2 accounts"), "{out}");
    let (_, after, _) = belajar(&config, &["status", "--json"]);
    let after: serde_json::Value = serde_json::from_str(&after).unwrap();
    assert_eq!(after["accounts"], before["accounts"]);
    assert_eq!(after["last_scan"], before["last_scan"]);

    // Another installation (another Workspace customer) refuses the backup by name,
    // and takes it only when told it is meant.
    let other = dir.path().join("other.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("data_dir = \"store\"", "data_dir = \"other-store\"")
        .replace("[google]\n", "[google]\ncustomer = \"C03other\"\n");
    std::fs::write(&other, text).unwrap();
    let (code, out, err) = belajar(&other, &["restore", written.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains("another installation") && err.contains("customer my_customer"),
        "{err}"
    );
    assert!(!dir.path().join("other-store").exists(), "nothing was made");
    let (code, out, err) = belajar(
        &other,
        &["restore", "--other-installation", written.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{out}{err}");
}

#[test]
fn a_failing_daily_backup_is_said_once_not_every_round() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, url, key) = spawn_emulator(&[]);
    let _emulator = KillOnDrop(emulator);
    // The backup folder cannot be made: a file is in the way.
    std::fs::write(dir.path().join("blocked"), "").unwrap();
    let config = write_config(
        dir.path(),
        &url,
        &key,
        "push_interval = \"1s\"\nmetrics_listen = \"\"\ncontrol_socket = \"run/control.sock\"\nbackup_dir = \"blocked/backups\"\n",
    );
    let (_daemon, mut lines) = start_daemon(&config);
    let first = wait_for(&mut lines, "the daily backup failed");
    assert!(
        first.last().unwrap().contains("tried again in an hour"),
        "{first:?}"
    );
    // Three rounds later (each an import through the socket), it was not tried again.
    let mut after = Vec::new();
    for n in 0..3 {
        let export = dir.path().join(format!("sekolah-{n}.csv"));
        std::fs::write(
            &export,
            format!("id_type,id,full_name,role,jenjang,npsn\nnisn,001234567{n},Siti Aminah,peserta_didik,sd,20100001\n"),
        )
        .unwrap();
        let (code, out, err) = belajar(&config, &["import", "--delta", export.to_str().unwrap()]);
        assert_eq!(code, Some(0), "{out}{err}");
        after.extend(wait_for(&mut lines, "sync finished"));
    }
    let again = after
        .iter()
        .filter(|l| l.contains("daily backup failed"))
        .count();
    assert_eq!(again, 0, "{after:#?}");
}
