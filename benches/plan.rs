//! `plan` over a large directory and as many observed Google users: wall time and peak
//! memory of the binary (`plan --json` to /dev/null, measured by /usr/bin/time), and of
//! the plan pass alone in this process. `cargo bench --bench plan` (ACCOUNTS=1000000 by
//! default). Figures, not assertions: this machine is noisy.
//!
//! The store is written directly (accounts in key order, each with its Google user as a
//! scan would record it; one in a hundred drifted to another org unit), which is faster
//! to set up than an import of the same size. `CREATES=1`: the accounts of a first
//! import instead, none in Google yet (a scan found nobody), so every one is a create.

#[path = "../tests/support/bench.rs"]
mod bench;
use bench::env_or;

use belajar_sync::config::Config;
use belajar_sync::directory::model::{
    Account, AccountKey, DesiredState, GoogleLink, IdType, Jenjang, Role,
};
use belajar_sync::directory::naming::google_name;
use belajar_sync::google::types::{Organization, User, UserName};
use belajar_sync::planner::marker;
use belajar_sync::reconciler::{self, Mode};
use belajar_sync::remote;
use belajar_sync::store::Store;
use std::process::Command;
use std::time::Instant;

/// The binary's allocator, so that the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const GIVEN: [&str; 8] = [
    "Siti", "Budi", "Ahmad", "Dewi", "Agus", "Putri", "Rizki", "Nur",
];
const FAMILY: [&str; 8] = [
    "Aminah", "Santoso", "Lestari", "Saputra", "Wati", "Hidayat", "Pratama", "Sari",
];

fn account(i: u64) -> (Account, User) {
    let full_name = format!(
        "{} {}",
        GIVEN[(i % 8) as usize],
        FAMILY[(i / 8 % 8) as usize]
    );
    let npsn = format!("{:08}", 20_100_000 + i / 300);
    let account = Account {
        jenjang: Jenjang::Sd,
        id_type: IdType::Nisn,
        id: format!("{i:010}"),
        full_name: full_name.clone(),
        role: Role::PesertaDidik,
        npsn: npsn.clone(),
        birth_date: None,
        personal_email: None,
        state: DesiredState::Active,
        email: format!("murid{i}@sd.belajar.id"),
        former_emails: vec![],
        google: Some(GoogleLink {
            id: format!("1{i:020}"),
            suspended_by_us: false,
            licence: None,
            licence_freed: None,
        }),
    };
    let name = google_name(&full_name);
    let org_unit = if i % 100 == 7 {
        "/".to_owned()
    } else {
        format!("/student/sd/{npsn}")
    };
    let user = User {
        id: Some(format!("1{i:020}")),
        primary_email: Some(account.email.clone()),
        name: Some(UserName {
            given_name: Some(name.given_name),
            family_name: Some(name.family_name),
            full_name: Some(full_name),
            ..UserName::default()
        }),
        suspended: Some(false),
        org_unit_path: Some(org_unit),
        external_ids: Some(vec![marker(&account.key())]),
        organizations: Some(vec![Organization {
            cost_center: Some(npsn),
            primary: Some(true),
            ..Organization::default()
        }]),
        is_admin: Some(false),
        etag: Some(format!("\"etag{i}\"")),
        creation_time: Some("2026-07-01T02:00:00.000Z".into()),
        ..User::default()
    };
    (account, user)
}

fn main() {
    let accounts: u64 = env_or("ACCOUNTS", 1_000_000);
    let creates = env_or("CREATES", 0) == 1;
    // STORE=DIR keeps the store there and reuses it on the next run (for profiling).
    let temp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("STORE").map_or_else(|| temp.path().to_owned(), Into::into);
    let mut config = Config {
        data_dir: dir.join("store"),
        ..Config::default()
    };
    config.google.key_file = dir.join("unused.json");
    let started = Instant::now();
    if !config.data_dir.exists() {
        let store = Store::open(&config.data_dir, config.store_cache_mb).unwrap();
        let now = jiff::Timestamp::now();
        for start in (0..accounts).step_by(20_000) {
            let mut changes = store.changes(false);
            for i in start..(start + 20_000).min(accounts) {
                let mut new = account(i).0;
                if creates {
                    new.google = None;
                }
                changes.put_account(None, &new).unwrap();
            }
            changes.commit().unwrap();
        }
        // The users as a scan records them: a commit per page of 500.
        let recording = Instant::now();
        for start in (0..accounts).step_by(500).filter(|_| !creates) {
            let mut changes = store.changes(false);
            for i in start..(start + 500).min(accounts) {
                remote::record(&mut changes, &account(i).1, now).unwrap();
            }
            changes.commit().unwrap();
        }
        let secs = recording.elapsed().as_secs_f64();
        if !creates {
            println!(
                "a scan's local work: {accounts} users recorded a page of 500 at a time in {secs:.1} s ({:.0} users/s)",
                accounts as f64 / secs
            );
        }
        let mut changes = store.changes(false);
        remote::set_last_scan(
            &mut changes,
            &remote::ScanRecord {
                id: 1,
                started: Some(now),
                finished: Some(now),
                ..Default::default()
            },
        );
        changes.commit().unwrap();
        let _ = AccountKey::parse("sd:nisn:0000000001");
    }
    println!(
        "set up {accounts} accounts and {} observed users in {:.1} s; store on disk {:.0} MB",
        if creates { 0 } else { accounts },
        started.elapsed().as_secs_f64(),
        bench::dir_size(&config.data_dir) as f64 / 1e6
    );

    let config_file = dir.join("config.toml");
    std::fs::write(&config_file, "data_dir = \"store\"\n").unwrap();
    for round in 1..=2 {
        let out = Command::new("/usr/bin/time")
            .args(["-f", "%e %M"])
            .arg(env!("CARGO_BIN_EXE_belajar-sync"))
            .arg("--config")
            .arg(&config_file)
            .args(["plan", "--json"])
            .stdout(std::process::Stdio::null())
            .output()
            .expect("/usr/bin/time runs");
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or_default();
        let mut parts = last.split_whitespace();
        let secs: f64 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(f64::NAN);
        let kb: f64 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(f64::NAN);
        println!(
            "belajar-sync plan --json (round {round}): {secs:.2} s wall, peak RSS {:.0} MB",
            kb / 1024.0
        );
    }

    let store = Store::open(&config.data_dir, config.store_cache_mb).unwrap();
    let started = Instant::now();
    let (totals, _) = reconciler::enqueue(
        &store,
        &config,
        jiff::Zoned::now().date(),
        Mode::DryRun,
        |_| {},
    )
    .unwrap();
    println!(
        "plan pass in process: {:.2} s for {} accounts ({} in step, actions {:?})",
        started.elapsed().as_secs_f64(),
        totals.accounts,
        totals.in_step,
        totals.actions
    );
}
