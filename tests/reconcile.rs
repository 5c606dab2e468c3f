//! The reconciler end to end: a real sled store in a temp dir, the emulator over loopback
//! HTTP, the production client. Drift is made by hand through the emulator's admin API.

mod support;

use belajar_sync::config::Config;
use belajar_sync::directory::model::{Account, AccountKey, DesiredState};
use belajar_sync::emulator::{Emulator, Options as EmulatorOptions};
use belajar_sync::google::DirectoryClient;
use belajar_sync::import::{self, Options, source::Source};
use belajar_sync::reconciler::{self, Suspensions, SyncOptions, SyncReport, repair};
use belajar_sync::store::Store;
use belajar_sync::{audit, journal};
use indicatif::ProgressBar;
use jiff::Span;
use jiff::civil::{Date, date};
use serde_json::{Value, json};
use std::time::Duration;
use support::export_gen::write;
use support::google::{Api, start};
use tempfile::TempDir;

const HEADER: &str = "id_type,id,full_name,role,jenjang,npsn,status\n";
const DAY1: Date = date(2026, 7, 1);

const SCHOOLS: &str = "\
nisn,0000000001,Siti Aminah,peserta_didik,sd,20100001,aktif
nisn,0000000002,Budi Santoso,peserta_didik,sd,20100001,aktif
nisn,0000000003,Sukarno,peserta_didik,sd,20100001,aktif
nuptk,1111222233334444,Dewi Lestari,pendidik,sd,20100001,aktif
nuptk,5555666677778888,Agus Salim,kepala_sekolah,smp,20200001,aktif
";

/// An emulator, a store, and the configuration that joins them.
struct World {
    dir: TempDir,
    emu: Emulator,
    store: Store,
    config: Config,
    client: DirectoryClient,
    api: Api,
}

impl World {
    async fn new() -> World {
        Self::with(EmulatorOptions::default()).await
    }

    async fn with(options: EmulatorOptions) -> World {
        let emu = start(options).await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().join("store"),
            ..Config::default()
        };
        config.google.key_file = emu.key_file.clone();
        config.google.subject = "admin@belajar.id".into();
        config.google.api_base = emu.base_url.clone();
        config.google.requests_per_minute = Some(600_000);
        config.google.call_deadline = jiff::SignedDuration::from_secs(20);
        let store = Store::open(&config.data_dir, 16).unwrap();
        let client = DirectoryClient::new(&config.google).await.unwrap();
        let api = Api::admin(&emu).await;
        World {
            dir,
            emu,
            store,
            config,
            client,
            api,
        }
    }

    fn import(&self, name: &str, rows: &str, today: Date) {
        let path = self.dir.path().join(name);
        write(&path, &format!("{HEADER}{rows}"));
        let source = Source::new(&path, None).unwrap();
        let options = Options {
            delta: false,
            skip_invalid: false,
            dry_run: false,
            today,
            actor: "operator".into(),
            max_retire_share: None,
            min_free_disk: 0,
        };
        import::run(
            &self.store,
            &self.config.naming,
            &source,
            options,
            &ProgressBar::hidden(),
        )
        .unwrap();
    }

    async fn sync_on(&self, today: Date, scan: bool, suspensions: Suspensions) -> SyncReport {
        let options = SyncOptions {
            scan,
            suspensions,
            max_wait: Duration::from_secs(5),
            control: None,
        };
        reconciler::sync(
            &self.store,
            &self.client,
            &self.config,
            today,
            options,
            |_: &str| {},
        )
        .await
        .unwrap()
    }

    async fn sync(&self, scan: bool) -> SyncReport {
        self.sync_on(DAY1, scan, Suspensions::Guarded).await
    }

    async fn resync(&self, key: &str) -> repair::Report {
        let account = self.account(key);
        repair::resync(
            &self.store,
            &self.client,
            &self.config,
            &account,
            DAY1,
            ("helpdesk", belajar_sync::planner::Asker::Person),
        )
        .await
        .unwrap()
    }

    /// Forgets the account's link to its Google user, here.
    fn unlink(&self, key: &str) {
        let old = self.account(key);
        let mut changes = self.store.changes(false);
        changes
            .put_account(
                Some(&old),
                &Account {
                    google: None,
                    ..old.clone()
                },
            )
            .unwrap();
        changes.commit().unwrap();
    }

    fn account(&self, key: &str) -> Account {
        self.store
            .account(&AccountKey::parse(key).unwrap())
            .unwrap()
            .expect("account exists")
    }

    /// The Google user of an account, read as an admin would.
    async fn user(&self, key: &str) -> Value {
        let email = self.account(key).email;
        let (status, user) = self.api.ok("GET", &format!("users/{email}"), None).await;
        assert_eq!(status, 200, "{key}: {user}");
        user
    }

    async fn put(&self, who: &Value, body: Value) {
        let id = who["id"].as_str().unwrap();
        let (status, answer) = self.api.ok("PUT", &format!("users/{id}"), Some(body)).await;
        assert_eq!(status, 200, "{answer}");
    }

    /// Every user in Google with its marker, by marker value.
    async fn markers(&self) -> Vec<String> {
        let mut markers = Vec::new();
        for domain in self.config.naming.domains() {
            let (_, page) = self
                .api
                .ok(
                    "GET",
                    &format!("users?domain={domain}&maxResults=500"),
                    None,
                )
                .await;
            for user in page["users"].as_array().into_iter().flatten() {
                for id in user["externalIds"].as_array().into_iter().flatten() {
                    if id["type"] == "organization" {
                        markers.push(id["value"].as_str().unwrap().to_owned());
                    }
                }
            }
        }
        markers.sort();
        markers
    }

    fn conflicts(&self) -> Vec<audit::Held> {
        audit::all_held(&self.store, audit::HeldList::Conflicts)
            .collect::<Result<_, _>>()
            .unwrap()
    }
}

fn calls(emu: &Emulator, method: &str) -> u64 {
    emu.counters()
        .calls
        .get(method)
        .map_or(0, |by_status| by_status.values().sum())
}

#[tokio::test]
async fn a_first_sync_creates_every_account_once_in_place_and_a_second_does_nothing() {
    let w = World::new().await;
    w.import("1.csv", SCHOOLS, DAY1);
    let first = w.sync(false).await;
    assert_eq!(first.done["create"], 5, "{first:?}");
    assert_eq!(first.exit_code(), 0, "{first:?}");
    assert_eq!(w.emu.user_count(), 6, "5 accounts and the delegated admin");
    assert_eq!(
        w.markers().await,
        [
            "sd:nisn:0000000001",
            "sd:nisn:0000000002",
            "sd:nisn:0000000003",
            "sd:nuptk:1111222233334444",
            "smp:nuptk:5555666677778888",
        ]
    );
    let siti = w.user("sd:nisn:0000000001").await;
    assert_eq!(siti["orgUnitPath"], "/student/sd/20100001");
    assert_eq!(siti["organizations"][0]["costCenter"], "20100001");
    assert_eq!(siti["name"]["givenName"], "Siti");
    let agus = w.user("smp:nuptk:5555666677778888").await;
    assert_eq!(agus["primaryEmail"], "agus.salim@admin.smp.belajar.id");
    assert_eq!(agus["orgUnitPath"], "/admin/smp/20200001");
    assert_eq!(
        w.account("sd:nisn:0000000001").google.unwrap().id,
        siti["id"].as_str().unwrap(),
        "linked by Google id"
    );

    let inserts = calls(&w.emu, "directory.users.insert");
    let second = w.sync(true).await;
    assert!(second.done.is_empty(), "{second:?}");
    assert_eq!(second.plan.in_step, 5);
    assert_eq!(second.exit_code(), 0);
    assert_eq!(calls(&w.emu, "directory.users.insert"), inserts);
    assert_eq!(journal::depth(&w.store).unwrap(), (0, 0));
}

#[tokio::test]
async fn drift_made_by_hand_is_repaired_by_the_next_scan_and_sync() {
    let w = World::new().await;
    w.import("1.csv", SCHOOLS, DAY1);
    w.sync(false).await;

    let siti = w.user("sd:nisn:0000000001").await;
    w.put(&siti, json!({"orgUnitPath": "/"})).await;
    let budi = w.user("sd:nisn:0000000002").await;
    w.put(
        &budi,
        json!({"name": {"givenName": "Bambang", "familyName": "Santoso"}}),
    )
    .await;
    let sukarno = w.user("sd:nisn:0000000003").await;
    w.put(
        &sukarno,
        json!({"externalIds": [{"type": "custom", "customType": "nis", "value": "77"}]}),
    )
    .await;
    // The local link is lost as well.
    w.unlink("sd:nisn:0000000003");

    let report = w.sync(true).await;
    assert_eq!(report.exit_code(), 0, "{report:?}");
    assert_eq!(report.done.values().sum::<u64>(), 3, "{report:?}");
    assert_eq!(
        w.user("sd:nisn:0000000001").await["orgUnitPath"],
        "/student/sd/20100001"
    );
    assert_eq!(
        w.user("sd:nisn:0000000002").await["name"]["givenName"],
        "Budi"
    );
    let sukarno = w.user("sd:nisn:0000000003").await;
    assert_eq!(
        sukarno["externalIds"],
        json!([{"type": "custom", "customType": "nis", "value": "77"},
               {"type": "organization", "value": "sd:nisn:0000000003"}]),
        "the marker is written back and the other external id kept"
    );
    assert_eq!(
        w.account("sd:nisn:0000000003").google.unwrap().id,
        sukarno["id"].as_str().unwrap()
    );
    assert_eq!(w.emu.user_count(), 6, "nothing created twice");
    assert!(w.sync(true).await.done.is_empty());
}

#[tokio::test]
async fn resync_repairs_one_account_and_says_what_was_wrong() {
    let w = World::new().await;
    w.import("1.csv", SCHOOLS, DAY1);
    w.sync(false).await;

    // Suspended by an admin while active here: a scheduled run reports it, resync lifts it.
    let siti = w.user("sd:nisn:0000000001").await;
    w.put(&siti, json!({"suspended": true, "orgUnitPath": "/"}))
        .await;
    let scheduled = w.sync(true).await;
    assert_eq!(scheduled.exit_code(), 3, "{scheduled:?}");
    let held = w.conflicts();
    assert_eq!(held.len(), 1);
    assert!(held[0].reason.contains("by an administrator"), "{held:?}");
    assert_eq!(
        w.user("sd:nisn:0000000001").await["suspended"],
        true,
        "left alone"
    );

    let report = w.resync("sd:nisn:0000000001").await;
    assert!(report.healthy, "{report:?}");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("suspended in Google")),
        "{report:?}"
    );
    assert!(
        report.problems.iter().any(|p| p.contains("org unit")),
        "{report:?}"
    );
    assert!(
        report.answers.iter().any(|a| a.starts_with("answered")),
        "{report:?}"
    );
    let after = w.user("sd:nisn:0000000001").await;
    assert_eq!(
        (after["suspended"].clone(), after["orgUnitPath"].clone()),
        (json!(false), json!("/student/sd/20100001"))
    );
    assert!(w.conflicts().is_empty(), "the conflict is released");

    // Deleted in Google: undeleted (same id: mail and files come back).
    let budi = w.user("sd:nisn:0000000002").await;
    let id = budi["id"].as_str().unwrap();
    let (status, _) = w.api.ok("DELETE", &format!("users/{id}"), None).await;
    assert_eq!(status, 204);
    let report = w.resync("sd:nisn:0000000002").await;
    assert!(report.healthy, "{report:?}");
    assert_eq!(w.user("sd:nisn:0000000002").await["id"], id);

    // A healthy account: nothing wrong, nothing sent.
    let report = w.resync("sd:nisn:0000000003").await;
    assert!(
        report.healthy && report.problems.is_empty() && report.sent.is_empty(),
        "{report:?}"
    );
    let history = audit::history(&w.store, "sd:nisn:0000000001").unwrap();
    assert!(history.iter().any(|e| e.what == "resync"), "{history:?}");
}

#[tokio::test]
async fn a_role_change_renames_and_a_level_change_retires_then_suspends() {
    let w = World::new().await;
    w.import("1.csv", SCHOOLS, DAY1);
    w.sync(false).await;
    let dewi = w.user("sd:nuptk:1111222233334444").await;
    assert_eq!(dewi["primaryEmail"], "dewi.lestari@guru.sd.belajar.id");

    // Dewi is appointed principal; Siti moves up to SMP (and leaves her SD school).
    let day2 = DAY1 + Span::new().days(10);
    let rows = SCHOOLS
        .replace("Dewi Lestari,pendidik", "Dewi Lestari,kepala_sekolah")
        .replace(
            "nisn,0000000001,Siti Aminah,peserta_didik,sd,20100001,aktif\n",
            "",
        )
        + "nisn,0000000001,Siti Aminah,peserta_didik,smp,20200001,aktif\n";
    w.import("2.csv", &rows, day2);
    let report = w.sync_on(day2, false, Suspensions::Guarded).await;
    assert_eq!(report.done.get("rename"), Some(&1), "{report:?}");
    assert_eq!(report.done.get("create"), Some(&1), "{report:?}");
    let renamed = w.user("sd:nuptk:1111222233334444").await;
    assert_eq!(
        renamed["id"], dewi["id"],
        "the same user: mailbox and Drive kept"
    );
    assert_eq!(renamed["primaryEmail"], "dewi.lestari@admin.sd.belajar.id");
    assert_eq!(renamed["orgUnitPath"], "/admin/sd/20100001");
    assert_eq!(
        renamed["aliases"],
        json!(["dewi.lestari@guru.sd.belajar.id"])
    );
    assert!(matches!(
        w.account("sd:nisn:0000000001").state,
        DesiredState::Retiring { .. }
    ));
    assert_eq!(
        w.user("sd:nisn:0000000001").await["suspended"],
        false,
        "usable during grace"
    );
    assert_eq!(
        w.user("smp:nisn:0000000001").await["primaryEmail"],
        "siti.aminah@smp.belajar.id"
    );

    let after_grace = day2 + Span::new().days(31);
    let report = w.sync_on(after_grace, false, Suspensions::Guarded).await;
    assert_eq!(report.done.get("suspend"), Some(&1), "{report:?}");
    assert_eq!(w.user("sd:nisn:0000000001").await["suspended"], true);
    assert!(
        w.account("sd:nisn:0000000001")
            .google
            .unwrap()
            .suspended_by_us
    );
}

#[tokio::test]
async fn conflicts_are_reported_and_the_users_left_alone() {
    // An admin already has Budi's address, someone else Siti's.
    let w = World::with(EmulatorOptions {
        admins: vec![
            "admin@belajar.id".into(),
            "budi.santoso@sd.belajar.id".into(),
        ],
        ..EmulatorOptions::default()
    })
    .await;
    let stranger = w
        .api
        .create("siti.aminah@sd.belajar.id", "Rina", "Wati")
        .await;
    // Sukarno's address holds a user of the same name: adopted.
    let sukarno = w
        .api
        .create("sukarno@sd.belajar.id", "Sukarno", "Sukarno")
        .await;
    w.import("1.csv", SCHOOLS, DAY1);
    let report = w.sync(false).await;
    assert_eq!(report.exit_code(), 3, "{report:?}");
    assert_eq!(report.done.get("adopt"), Some(&1), "{report:?}");
    let held = w.conflicts();
    let siti = held
        .iter()
        .find(|h| h.subject == "sd:nisn:0000000001")
        .expect("siti held");
    assert!(siti.reason.contains("Rina Wati"), "{siti:?}");
    let budi = held
        .iter()
        .find(|h| h.subject == "sd:nisn:0000000002")
        .expect("budi held");
    assert!(budi.reason.contains("Google admin"), "{budi:?}");
    let (_, after) = w
        .api
        .ok(
            "GET",
            &format!("users/{}", stranger["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(
        after["externalIds"],
        Value::Null,
        "the stranger is not touched"
    );
    assert_eq!(after["name"]["givenName"], "Rina");
    let adopted = w.user("sd:nisn:0000000003").await;
    assert_eq!(adopted["id"], sukarno["id"]);
    assert_eq!(adopted["externalIds"][0]["value"], "sd:nisn:0000000003");
}

#[tokio::test]
async fn the_guard_holds_a_mass_suspension_until_an_operator_releases_it() {
    let w = World::new().await;
    let rows: String = (0..40)
        .map(|i| {
            format!(
                "nisn,{:010},Murid Nomor{i},peserta_didik,sd,20100001,aktif\n",
                100 + i
            )
        })
        .collect();
    w.import("1.csv", &rows, DAY1);
    w.sync(false).await;
    // A truncated export lists 5 of 40.
    let truncated: String = rows.lines().take(5).map(|l| format!("{l}\n")).collect();
    w.import("2.csv", &truncated, DAY1);
    let later = DAY1 + Span::new().days(40);
    let report = w.sync_on(later, false, Suspensions::Guarded).await;
    assert_eq!(report.exit_code(), 4, "{report:?}");
    let held = report.guard.clone().expect("guard held");
    assert_eq!(held.suspensions, 35);
    assert!(held.reason.contains("sd.belajar.id"), "{held:?}");
    assert_eq!(report.done.get("suspend"), None);
    assert!(
        audit::guard(&w.store).unwrap().is_some(),
        "status can show it"
    );
    let suspended = calls(&w.emu, "directory.users.update");
    assert_eq!(suspended, 0, "nothing suspended");

    let released = w.sync_on(later, false, Suspensions::Allowed).await;
    assert_eq!(released.done.get("suspend"), Some(&35), "{released:?}");
    assert!(audit::guard(&w.store).unwrap().is_none());
}

#[tokio::test]
async fn a_scan_that_finds_far_fewer_users_is_not_believed() {
    let w = World::new().await;
    w.import("1.csv", SCHOOLS, DAY1);
    w.sync(false).await;
    for key in [
        "sd:nisn:0000000001",
        "sd:nisn:0000000002",
        "sd:nisn:0000000003",
    ] {
        let user = w.user(key).await;
        let (status, _) = w
            .api
            .ok(
                "DELETE",
                &format!("users/{}", user["id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(status, 204);
    }
    let inserts = calls(&w.emu, "directory.users.insert");
    let report = w.sync(true).await;
    assert_eq!(report.exit_code(), 4, "{report:?}");
    assert!(
        report
            .distrusted
            .as_deref()
            .unwrap()
            .contains("sd.belajar.id"),
        "{report:?}"
    );
    assert_eq!(
        calls(&w.emu, "directory.users.insert"),
        inserts,
        "nothing acted on"
    );
}

#[tokio::test]
async fn a_write_to_a_user_google_is_still_creating_is_retried_later_not_quarantined() {
    // Google takes 30 s to settle a new user here, longer than a call may take.
    let mut w = World::with(EmulatorOptions {
        faults: belajar_sync::emulator::faults::Faults {
            propagation_delay_ms: 30_000,
            ..Default::default()
        },
        ..EmulatorOptions::default()
    })
    .await;
    w.config.google.call_deadline = jiff::SignedDuration::from_secs(1);
    w.client = DirectoryClient::new(&w.config.google).await.unwrap();
    w.import("1.csv", SCHOOLS, DAY1);
    w.sync(false).await;
    // Appointed principal minutes after her account was created: the rename must wait.
    let rows = SCHOOLS.replace("Dewi Lestari,pendidik", "Dewi Lestari,kepala_sekolah");
    w.import("2.csv", &rows, DAY1);
    let report = w.sync(false).await;
    assert_eq!(report.quarantine, 0, "{report:?}");
    assert_eq!(report.left_in_journal, 1, "{report:?}");
    assert_eq!(report.exit_code(), 3, "waits for Google: {report:?}");
    assert_eq!(
        report.waiting,
        [
            "1 rename to users Google is still settling (created minutes ago): sent again within minutes"
        ],
        "{report:?}"
    );
    let waiting = journal::entries(&w.store).next().unwrap().unwrap();
    assert_eq!(waiting.subject, "sd:nuptk:1111222233334444");
    assert!(waiting.not_before.is_some(), "{waiting:?}");
    assert!(!waiting.in_flight);
    let history = audit::history(&w.store, "sd:nuptk:1111222233334444").unwrap();
    assert!(history.iter().any(|e| e.what == "retry"), "{history:?}");
}

#[tokio::test]
async fn resync_repairs_a_wrong_name_a_lost_marker_and_link_and_an_unfinished_role_change() {
    let w = World::new().await;
    w.import("1.csv", SCHOOLS, DAY1);
    w.sync(false).await;

    let budi = w.user("sd:nisn:0000000002").await;
    w.put(
        &budi,
        json!({"name": {"givenName": "Bambang", "familyName": "S"}}),
    )
    .await;
    let report = w.resync("sd:nisn:0000000002").await;
    assert!(report.healthy, "{report:?}");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("the name in Google")),
        "{report:?}"
    );
    assert_eq!(
        w.user("sd:nisn:0000000002").await["name"]["givenName"],
        "Budi"
    );

    // Marker stripped in Google and link lost here: found by address, names match.
    let sukarno = w.user("sd:nisn:0000000003").await;
    w.put(&sukarno, json!({"externalIds": []})).await;
    w.unlink("sd:nisn:0000000003");
    let report = w.resync("sd:nisn:0000000003").await;
    assert!(report.healthy, "{report:?}");
    assert_eq!(
        w.user("sd:nisn:0000000003").await["externalIds"][0]["value"],
        "sd:nisn:0000000003"
    );
    assert_eq!(
        w.account("sd:nisn:0000000003").google.unwrap().id,
        sukarno["id"].as_str().unwrap()
    );

    // Appointed principal, no sync since: resync moves her to the admin domain.
    let rows = SCHOOLS.replace("Dewi Lestari,pendidik", "Dewi Lestari,kepala_sekolah");
    w.import("2.csv", &rows, DAY1);
    let report = w.resync("sd:nuptk:1111222233334444").await;
    assert!(report.healthy, "{report:?}");
    assert!(
        report.sent.iter().any(|s| s.starts_with("rename")),
        "{report:?}"
    );
    let dewi = w.user("sd:nuptk:1111222233334444").await;
    assert_eq!(dewi["primaryEmail"], "dewi.lestari@admin.sd.belajar.id");
    assert_eq!(dewi["orgUnitPath"], "/admin/sd/20100001");
    assert_eq!(w.emu.user_count(), 6, "nothing created");
}

#[tokio::test]
async fn an_org_unit_gone_from_google_is_created_again_and_the_account_moved_into_it() {
    let w = World::new().await;
    w.import("day1.csv", SCHOOLS, DAY1);
    assert_eq!(w.sync(false).await.exit_code(), 0);
    // Siti moves to a school whose org unit this store believes Google has (as if an
    // admin deleted it after the last scan): nothing queues its creation.
    let moved = SCHOOLS.replace(
        "nisn,0000000001,Siti Aminah,peserta_didik,sd,20100001",
        "nisn,0000000001,Siti Aminah,peserta_didik,sd,20100009",
    );
    w.import("day2.csv", &moved, DAY1);
    {
        let mut changes = w.store.changes(false);
        belajar_sync::remote::record_org_unit(
            &mut changes,
            "/student/sd/20100009",
            jiff::Timestamp::now(),
        );
        changes.commit().unwrap();
    }

    let report = w.sync(false).await;
    assert_eq!(report.exit_code(), 0, "{report:?}");
    assert_eq!(report.quarantine, 0, "{report:?}");
    let siti = w.user("sd:nisn:0000000001").await;
    assert_eq!(siti["orgUnitPath"], "/student/sd/20100009");
    let history = audit::history(&w.store, "sd:nisn:0000000001").unwrap();
    assert!(
        history
            .iter()
            .any(|e| e.what == "retry" && e.detail.contains("INVALID_OU_ID")),
        "{history:#?}"
    );
}

/// A sheet leaves alone an account another worker has in hand (a reset, a repair, the
/// journal's push of an update), so that their writes never race: its row says so, and
/// the rest of the school gets its passwords.
#[tokio::test]
async fn a_sheet_leaves_an_account_another_worker_has_in_hand() {
    use belajar_sync::credentials::{self, Line, Reissue};
    let w = World::new().await;
    w.import("day1.csv", SCHOOLS, DAY1);
    assert_eq!(w.sync(false).await.exit_code(), 0);
    let school: Vec<Account> = w
        .store
        .accounts()
        .map(Result::unwrap)
        .filter(|a| a.npsn == "20100001")
        .collect();
    assert_eq!(school.len(), 4);

    let busy = "sd:nisn:0000000001";
    let in_hand = w.store.claim([busy]);
    let rows = credentials::issue(&w.store, &w.client, school, &Reissue::None, |_, _| {})
        .await
        .unwrap();
    for row in &rows {
        let key = row.account.key().to_string();
        match &row.line {
            Line::Held(why) if key == busy => assert!(why.contains("at work"), "{why}"),
            Line::Issued(_) if key != busy => {}
            other => panic!("{key}: {other:?}"),
        }
    }
    assert!(
        !w.store.is_claimed("sd:nisn:0000000002"),
        "the sheet lets go of its accounts"
    );
    drop(in_hand);
    assert!(
        !w.store.is_claimed(busy),
        "let go once the other worker is done"
    );
}
