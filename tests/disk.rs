//! A full disk with the real binary, on a small tmpfs: a first import into a new store
//! whose disk fills in the middle, an import refused before it starts, an import whose
//! disk fills in the middle (another process takes the space), and one
//! whose disk fills at its last commit. Each time the command ends with exit 1 and a clear
//! message, the store opens afterwards with everything committed before, and the import
//! run again finishes with `status` and `plan` agreeing.
//!
//! Mounting needs root (CI runs as root); elsewhere the test says why it did nothing.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::crash::{binary_in, plan_json, status_json};
use support::daemon::signal;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size_mb: u64) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mb}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn free(&self) -> u64 {
        let stat = nix::sys::statvfs::statvfs(self.path()).unwrap();
        stat.blocks_available() as u64 * stat.fragment_size() as u64
    }

    /// Takes the disk's space, as another process would, leaving `leave` bytes free.
    fn fill(&self, leave: u64) -> PathBuf {
        let filler = self.path().join(format!("filler-{leave}"));
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        let mut left = self.free().saturating_sub(leave);
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            match file.write_all(&chunk[..n]) {
                Ok(()) => left -= n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC: full
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// Accounts `status` counts and accounts `plan` visits.
fn counts(config: &Path) -> (u64, u64) {
    let status = status_json(config)["accounts"]["total"].as_u64().unwrap();
    let plan = plan_json(config);
    (status, plan["plan"]["accounts"].as_u64().unwrap())
}

/// Starts an import of `file` with its commits traced; stops it (SIGSTOP) once `commits`
/// of them are written, so the test can take the disk's space, then lets it go on.
fn import_paused_after(
    config: &Path,
    file: &Path,
    commits: usize,
    meanwhile: impl FnOnce(),
) -> (Option<i32>, String) {
    let mut child = binary_in(config)
        .args(["import", file.to_str().unwrap(), "--allow-mass-retire"])
        .env("RUST_LOG", "belajar_sync::store=trace")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = 0;
    let mut text = String::new();
    while seen < commits {
        let line = lines
            .next()
            .expect("the import ended before the pause")
            .unwrap();
        seen += usize::from(line.contains("transaction written"));
        text.push_str(&line);
        text.push('\n');
    }
    signal(child.id(), "-STOP");
    meanwhile();
    signal(child.id(), "-CONT");
    for line in lines {
        text.push_str(&line.unwrap());
        text.push('\n');
    }
    (child.wait().unwrap().code(), text)
}

#[test]
fn a_full_disk_before_during_and_at_the_end_of_an_import_loses_nothing() {
    let fs = match Tmpfs::mount(48) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("skipped: cannot mount a tmpfs here ({why})");
            return;
        }
    };
    let config = fs.path().join("config.toml");
    std::fs::write(&config, "data_dir = \"store\"\nmin_free_disk_mb = 1\n").unwrap();
    // The second export lives off the tmpfs, so only the store takes its space.
    let scratch = tempfile::tempdir().unwrap();
    let second = scratch.path().join("second.csv");
    support::export_gen::ExportGen::new(8).write_csv(&second, 40_000);
    let size = std::fs::metadata(&second).unwrap().len();

    // A first import into a new store (which records no undo per key: its rollback
    // empties what it wrote) whose disk fills once its first accounts landed (after its
    // start and a batch of addresses).
    let mut filler = None;
    let (code, log) = import_paused_after(&config, &second, 3, || {
        filler = Some(fs.fill(0));
    });
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("is full"), "{log}");
    std::fs::remove_file(filler.unwrap()).unwrap();
    let status = status_json(&config);
    assert_eq!(
        status["accounts"]["total"], 0,
        "rolled back whole: {status}"
    );
    assert_eq!(counts(&config), (0, 0));

    let first = fs.path().join("first.csv");
    support::export_gen::ExportGen::new(7).write_csv(&first, 2_000);
    let out = binary_in(&config)
        .args(["import", first.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = counts(&config);
    assert_eq!(before.0, before.1);

    // Before: too little space for what the import needs; refused, nothing written.
    let filler = fs.fill(size * 2);
    let out = binary_in(&config)
        .args(["import", second.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not enough free disk space") && err.contains("MiB free"),
        "{err}"
    );
    std::fs::remove_file(filler).unwrap();
    assert_eq!(counts(&config), before);

    // How many commits the import makes, on a copy of the store elsewhere.
    let copy = scratch.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    let out = Command::new("cp")
        .arg("-a")
        .arg(fs.path().join("store"))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(out.success());
    let copy_config = copy.join("config.toml");
    std::fs::write(&copy_config, "data_dir = \"store\"\nmin_free_disk_mb = 1\n").unwrap();
    let commits = {
        let out = binary_in(&copy_config)
            .args(["import", second.to_str().unwrap(), "--allow-mass-retire"])
            .env("RUST_LOG", "belajar_sync::store=trace")
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr)
            .matches("transaction written")
            .count()
    };
    assert!(commits >= 4, "the import makes {commits} commits");
    let after = counts(&copy_config);

    // During: the disk fills after the first commit. At the end: after all but the last
    // (the disk may or may not still take that small one: either way nothing is half-done).
    for (pause_after, must_fail) in [(1, true), (commits - 1, false)] {
        let mut filler = None;
        let (code, log) = import_paused_after(&config, &second, pause_after, || {
            filler = Some(fs.fill(0));
        });
        std::fs::remove_file(filler.unwrap()).unwrap();
        // The first command after says what happened.
        let status = status_json(&config);
        let now = counts(&config);
        assert_eq!(now.0, now.1, "status and plan agree");
        if code == Some(0) {
            assert!(!must_fail, "the import went on on a full disk:\n{log}");
            assert_eq!(now, after);
            continue;
        }
        assert_eq!(code, Some(1), "{log}");
        assert!(
            log.contains("is full: the store keeps what was committed before"),
            "{log}"
        );
        if must_fail || now == before {
            assert_eq!(now, before, "rolled back whole");
            assert_eq!(
                status["interrupted_import"]["file"],
                second.display().to_string()
            );
        } else {
            // Its last commit reached the disk before the disk filled.
            assert_eq!(now, after);
        }
    }

    let out = binary_in(&config)
        .args(["import", second.to_str().unwrap(), "--allow-mass-retire"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(counts(&config), after);
}

/// The daemon on a disk that runs short: it writes nothing (an export waits in the inbox),
/// says why in its phase, and goes on when space returns.
#[test]
fn the_daemon_waits_for_disk_space_and_resumes() {
    use support::daemon::{start_daemon, wait_for};
    use support::google::{KillOnDrop, spawn_emulator};
    let fs = match Tmpfs::mount(32) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("skipped: cannot mount a tmpfs here ({why})");
            return;
        }
    };
    let (emulator, url, key) = spawn_emulator(&[]);
    let _emulator = KillOnDrop(emulator);
    // Configuration, inbox and socket off the small disk: only the store is on it.
    let home = tempfile::tempdir().unwrap();
    let inbox = home.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let config = home.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\nmin_free_disk_mb = 8\n[google]\nkey_file = {key:?}\nsubject = \"admin@belajar.id\"\napi_base = \"{url}\"\nrequests_per_minute = 100000\n[daemon]\ninbox_dir = {inbox:?}\npush_interval = \"1s\"\nmetrics_listen = \"\"\ncontrol_socket = \"control.sock\"\n",
            fs.path().join("store")
        ),
    )
    .unwrap();
    let (_daemon, mut lines) = start_daemon(&config);
    wait_for(&mut lines, "sync finished");

    let filler = fs.fill(2 << 20);
    let export = inbox.join("sekolah.csv");
    std::fs::write(
        &export,
        "id_type,id,full_name,role,jenjang,npsn\nnisn,0012345678,Siti Aminah,peserta_didik,sd,20100001\n",
    )
    .unwrap();
    wait_for(&mut lines, "disk space low");
    let out = binary_in(&config).arg("status").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("waiting for disk space"), "{text}");
    assert!(text.contains("DISK"), "{text}");
    assert!(export.exists(), "the export waits in the inbox");

    std::fs::remove_file(filler).unwrap();
    wait_for(&mut lines, "imported");
    wait_for(&mut lines, "sync finished");
    let status = status_json(&config);
    assert_eq!(status["accounts"]["total"], 1, "{status}");
    assert_eq!(status["outbox"]["depth"], 0, "{status}");
}
