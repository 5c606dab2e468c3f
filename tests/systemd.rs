//! The unit files in `systemd/`: `systemd-analyze verify` accepts them (with this build's
//! binary in place of /usr/bin/belajar-sync) and `systemd-analyze security` rates the
//! service's exposure 2.0 or lower. `.ci/run` installs systemd's tools when missing.

use std::process::Command;

fn analyze(args: &[&str]) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .output()
        .expect("systemd-analyze is installed (.ci/run installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_unit_files_verify_and_are_hardened() {
    let dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_belajar-sync");
    let mut units = Vec::new();
    for name in ["belajar-sync.service", "belajar-sync@.service"] {
        let text = std::fs::read_to_string(format!("systemd/{name}")).unwrap();
        assert!(
            text.contains("Type=notify") && text.contains("WatchdogSec="),
            "{name}"
        );
        let path = dir.path().join(name);
        std::fs::write(&path, text.replace("/usr/bin/belajar-sync", binary)).unwrap();
        units.push(path);
    }
    let instance = dir.path().join("belajar-sync@jawa-barat.service");
    std::fs::copy(&units[1], &instance).unwrap();
    for unit in [&units[0], &instance] {
        let (ok, text) = analyze(&["verify", unit.to_str().unwrap()]);
        assert!(ok && text.trim().is_empty(), "{}: {text}", unit.display());
    }
    let (_, text) = analyze(&["security", "--offline=yes", units[0].to_str().unwrap()]);
    let level: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for belajar-sync.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    assert!(level <= 2.0, "exposure {level}:\n{text}");
}
