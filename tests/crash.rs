//! Crash safety with the real binary: killed with SIGKILL at seeded points of a sync while
//! the emulator loses answers, then run to convergence. A few seeds here; many in
//! `cargo bench --bench crash`.

mod support;

#[test]
fn killed_syncs_converge_with_every_account_exactly_once() {
    for seed in [1, 2] {
        let outcome = support::crash::run(seed, 120, 4);
        assert!(outcome.active_accounts > 50, "{outcome:?}");
        assert!(
            outcome.kills_mid_push > 0,
            "some run was killed in the middle of its push, after calls were answered: {outcome:?}"
        );
    }
}

/// An import killed (SIGKILL) after a seeded number of its transactions: the next command
/// rolls it back whole and says so; run again, it finishes, and every count agrees. The
/// first import into an empty store (which records no undo per key) and a later one.
#[test]
fn an_import_killed_mid_way_is_rolled_back_and_finished_by_running_it_again() {
    use support::crash::{binary_in, plan_json, status_json};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "data_dir = \"store\"\n").unwrap();
    let run = |args: &[&str]| binary_in(&config).args(args).output().unwrap();
    // Imports `file`, killed once `kill_after` transactions are written; the next command
    // says which import it rolled back. Returns what `status` says then.
    let kill_import = |file: &std::path::Path, kill_after: usize| {
        let mut child = binary_in(&config)
            .args(["import", file.to_str().unwrap(), "--allow-mass-retire"])
            .env("RUST_LOG", "belajar_sync::store=trace")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let lines = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
        let written = lines
            .map_while(Result::ok)
            .filter(|l| l.contains("transaction written"))
            .take(kill_after)
            .count();
        assert_eq!(written, kill_after, "the import ended before the kill");
        child.kill().unwrap(); // SIGKILL, in the middle of the import
        child.wait().unwrap();

        let after = status_json(&config);
        assert_eq!(
            after["interrupted_import"]["file"],
            file.display().to_string(),
            "{after}"
        );
        after
    };

    // Killed after its first batch of accounts landed (the start of an import is a
    // transaction too).
    let big_first = dir.path().join("big-first.csv");
    support::export_gen::ExportGen::new(7).write_csv(&big_first, 20_000);
    let after = kill_import(&big_first, 2);
    assert_eq!(after["accounts"]["total"], 0, "rolled back whole: {after}");

    let first = dir.path().join("first.csv");
    support::export_gen::ExportGen::new(7).write_csv(&first, 2_000);
    assert!(run(&["import", first.to_str().unwrap()]).status.success());
    let before = status_json(&config);
    assert!(
        before["accounts"]["total"].as_u64().unwrap() > 1_500,
        "{before}"
    );

    let second = dir.path().join("second.csv");
    support::export_gen::ExportGen::new(8).write_csv(&second, 20_000);
    for kill_after in [1usize, 3] {
        let after = kill_import(&second, kill_after);
        assert_eq!(after["accounts"], before["accounts"], "rolled back whole");
    }
    // The same schools as the first export: updates, role changes and retirements too.
    let out = run(&[
        "import",
        second.to_str().unwrap(),
        "--allow-mass-retire",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{:?} {} {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(summary["created"].as_u64().unwrap() > 15_000, "{summary}");
    let status = status_json(&config);
    assert_eq!(status["interrupted_import"], serde_json::Value::Null);
    let plan = plan_json(&config);
    let total =
        before["accounts"]["total"].as_u64().unwrap() + summary["created"].as_u64().unwrap();
    assert_eq!(status["accounts"]["total"], total);
    assert_eq!(plan["plan"]["accounts"], total, "{plan}");
}
