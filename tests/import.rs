//! Import against a real sled store in a temp dir.

mod support;

use belajar_sync::config::Naming;
use belajar_sync::directory::model::{AccountKey, DesiredState, Role};
use belajar_sync::import::{self, Options, Summary, source::Source};
use belajar_sync::store::Store;
use indicatif::ProgressBar;
use jiff::civil::{Date, date};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use support::export_gen::{ExportGen, write};
use tempfile::TempDir;

const HEADER: &str = "id_type,id,full_name,role,jenjang,npsn,status\n";
const DAY1: Date = date(2026, 7, 1);
const DAY2: Date = date(2026, 7, 15);

/// A store in a temp dir and a place for export files.
struct Bench {
    dir: TempDir,
    store: Store,
    naming: Naming,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store"), 16).unwrap();
        Bench {
            dir,
            store,
            naming: Naming::default(),
        }
    }

    fn file(&self, name: &str, rows: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        write(&path, &format!("{HEADER}{rows}"));
        path
    }

    fn import_with(&self, path: &Path, options: Options) -> Summary {
        let source = Source::new(path, None).unwrap();
        import::run(
            &self.store,
            &self.naming,
            &source,
            options,
            &ProgressBar::hidden(),
        )
        .unwrap()
    }

    fn import(&self, path: &Path, today: Date) -> Summary {
        self.import_with(path, options(today))
    }

    fn state(&self, key: &str) -> DesiredState {
        self.account(key).state
    }

    fn account(&self, key: &str) -> belajar_sync::directory::model::Account {
        let key = AccountKey::parse(key).unwrap();
        self.store.account(&key).unwrap().expect("account exists")
    }
}

fn options(today: Date) -> Options {
    Options {
        delta: false,
        skip_invalid: false,
        dry_run: false,
        today,
        actor: "operator".into(),
        max_retire_share: None,
        min_free_disk: 0,
    }
}

const SCHOOL: &str = "\
nisn,0000000001,Siti Aminah,peserta_didik,sd,20100001,aktif
nisn,0000000002,Budi Santoso,peserta_didik,sd,20100001,aktif
nisn,0000000003,Sukarno,peserta_didik,sd,20100001,aktif
nisn,0000000009,Ani Lestari,peserta_didik,sd,20100002,aktif
";

#[test]
fn snapshot_retires_the_unlisted_of_listed_schools_only() {
    let b = Bench::new();
    let first = b.import(&b.file("1.csv", SCHOOL), DAY1);
    assert_eq!((first.created, first.retiring), (4, 0));
    // School 20100001 again, without Sukarno; school 20100002 absent from the file.
    let second = b.file(
        "2.csv",
        &SCHOOL
            .lines()
            .take(2)
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    );
    let summary = b.import(&second, DAY2);
    assert_eq!((summary.unchanged, summary.retiring), (2, 1));
    assert_eq!(
        b.state("sd:nisn:0000000003"),
        DesiredState::Retiring { since: DAY2 }
    );
    assert_eq!(
        b.state("sd:nisn:0000000009"),
        DesiredState::Active,
        "school not in the file"
    );
    let counts = b.store.counts().unwrap();
    assert_eq!((counts.total, counts.active, counts.retiring), (4, 3, 1));
}

#[test]
fn delta_changes_only_the_rows_given() {
    let b = Bench::new();
    b.import(&b.file("1.csv", SCHOOL), DAY1);
    let delta = b.file(
        "d.csv",
        "nisn,0000000001,Siti Aminah Putri,peserta_didik,sd,20100001,aktif\n",
    );
    let summary = b.import_with(
        &delta,
        Options {
            delta: true,
            ..options(DAY2)
        },
    );
    assert_eq!((summary.updated, summary.retiring), (1, 0));
    assert_eq!(b.state("sd:nisn:0000000003"), DesiredState::Active);
    let siti = b.account("sd:nisn:0000000001");
    assert_eq!(siti.full_name, "Siti Aminah Putri");
    assert_eq!(
        siti.email, "siti.aminah@sd.belajar.id",
        "a name correction keeps the address"
    );
}

#[test]
fn keluar_starts_the_grace_period_and_a_return_ends_it() {
    let b = Bench::new();
    b.import(&b.file("1.csv", SCHOOL), DAY1);
    let left = b.file(
        "2.csv",
        &SCHOOL.replace(
            "Sukarno,peserta_didik,sd,20100001,aktif",
            "Sukarno,peserta_didik,sd,20100001,keluar",
        ),
    );
    let summary = b.import(&left, DAY2);
    assert_eq!(summary.retiring, 1);
    assert_eq!(
        b.state("sd:nisn:0000000003"),
        DesiredState::Retiring { since: DAY2 }
    );
    let back = b.import(&b.file("3.csv", SCHOOL), date(2026, 7, 20));
    assert_eq!(back.updated, 1);
    assert!(
        back.notes.iter().any(|n| n.contains("active again")),
        "{:?}",
        back.notes
    );
    assert_eq!(b.state("sd:nisn:0000000003"), DesiredState::Active);
}

#[test]
fn a_file_with_an_invalid_row_changes_nothing_and_lists_every_error() {
    let b = Bench::new();
    let bad = b.file("bad.csv", &format!("{SCHOOL}nisn,123,X,peserta_didik,sd,20100001,aktif\nnisn,0000000005,Y,peserta_didik,tk,20100001,aktif\n"));
    let summary = b.import(&bad, DAY1);
    assert!(!summary.applied);
    assert_eq!((summary.invalid, summary.created), (2, 0));
    let errors: Vec<String> = summary.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        [
            "line 6: id \"123\": NISN must be 10 digits",
            "line 7: jenjang \"tk\": expected one of paud, sd, smp, sma, smk, slb",
        ]
    );
    assert_eq!(b.store.counts().unwrap().total, 0);
    assert_eq!(b.store.accounts().count(), 0);
}

#[test]
fn skip_invalid_applies_the_rest_and_never_retires_a_mistyped_person() {
    let b = Bench::new();
    b.import(&b.file("1.csv", SCHOOL), DAY1);
    // Sukarno's row has a bad role: he is still listed, so he must not retire.
    let text = SCHOOL
        .replace("Sukarno,peserta_didik", "Sukarno,siswa")
        .replace("Budi Santoso", "Budi Santosa");
    let path = b.file("2.csv", &text);
    let summary = b.import_with(
        &path,
        Options {
            skip_invalid: true,
            ..options(DAY2)
        },
    );
    assert_eq!(
        (summary.invalid, summary.updated, summary.retiring),
        (1, 1, 0)
    );
    assert_eq!(b.state("sd:nisn:0000000003"), DesiredState::Active);
    assert_eq!(b.account("sd:nisn:0000000002").full_name, "Budi Santosa");
}

#[test]
fn reimporting_the_same_file_changes_nothing() {
    let b = Bench::new();
    let path = b.dir.path().join("gen.csv");
    let made = ExportGen::new(7).write_csv(&path, 3_000);
    let first = b.import_with(&path, options(DAY1));
    assert_eq!(first.created + first.unknown_leavers, made.accounts);
    let second = b.import_with(&path, options(DAY2));
    assert!(second.changed_nothing(), "{second:?}");
    assert_eq!(second.unchanged, first.created);
}

#[test]
fn one_account_per_person_per_level() {
    let b = Bench::new();
    let rows = "\
nuptk,1111222233334444,Dewi Lestari,pendidik,sd,20100001,aktif
nuptk,1111222233334444,Dewi Lestari,kepala_sekolah,sd,20100001,aktif
nuptk,1111222233334444,Dewi Lestari,pendidik,smp,20200001,aktif
";
    let summary = b.import(&b.file("1.csv", rows), DAY1);
    assert_eq!((summary.created, summary.merged), (2, 1));
    assert!(
        summary
            .notes
            .iter()
            .any(|n| n.contains("lines 1 and 2") || n.contains("lines 2 and 3")),
        "{:?}",
        summary.notes
    );
    let sd = b.account("sd:nuptk:1111222233334444");
    assert_eq!(
        (sd.role, sd.email.as_str()),
        (Role::KepalaSekolah, "dewi.lestari@admin.sd.belajar.id")
    );
    let smp = b.account("smp:nuptk:1111222233334444");
    assert_eq!(smp.email, "dewi.lestari@guru.smp.belajar.id");
}

#[test]
fn role_change_moves_the_address_to_the_other_domain_keeping_the_local_part() {
    let b = Bench::new();
    b.import(
        &b.file(
            "1.csv",
            "nuptk,1111222233334444,Dewi Lestari,pendidik,sd,20100001,aktif\n",
        ),
        DAY1,
    );
    let summary = b.import(
        &b.file(
            "2.csv",
            "nuptk,1111222233334444,Dewi Lestari,kepala_sekolah,sd,20100001,aktif\n",
        ),
        DAY2,
    );
    assert_eq!(summary.updated, 1);
    let dewi = b.account("sd:nuptk:1111222233334444");
    assert_eq!(dewi.email, "dewi.lestari@admin.sd.belajar.id");
    assert_eq!(dewi.former_emails, ["dewi.lestari@guru.sd.belajar.id"]);
    // The old address stays reserved: a new teacher of the same name gets a number.
    b.import(
        &b.file(
            "3.csv",
            "nuptk,5555222233334444,Dewi Lestari,pendidik,sd,20100001,aktif\n",
        ),
        DAY2,
    );
    assert_eq!(
        b.account("sd:nuptk:5555222233334444").email,
        "dewi.lestari2@guru.sd.belajar.id"
    );
    assert_eq!(
        b.store
            .account_by_email("dewi.lestari@guru.sd.belajar.id")
            .unwrap()
            .unwrap()
            .key()
            .to_string(),
        "sd:nuptk:1111222233334444"
    );
}

#[test]
fn dry_run_counts_but_writes_nothing() {
    let b = Bench::new();
    let summary = b.import_with(
        &b.file("1.csv", SCHOOL),
        Options {
            dry_run: true,
            ..options(DAY1)
        },
    );
    assert_eq!((summary.created, summary.applied), (4, false));
    assert_eq!(b.store.accounts().count(), 0);
}

/// A dry run big enough to forget what it would write as it goes (it keeps only the
/// addresses it reads back) says what the import then does, address numbers included.
#[test]
fn a_big_dry_run_says_what_the_import_does() {
    let b = Bench::new();
    let path = b.dir.path().join("big.csv");
    ExportGen::new(5).write_csv_shaped_like_dapodik(&path, 30_000);
    let dry = b.import_with(
        &path,
        Options {
            dry_run: true,
            ..options(DAY1)
        },
    );
    assert_eq!(b.store.accounts().count(), 0, "nothing written");
    let real = b.import(&path, DAY1);
    assert_eq!(
        (
            dry.created,
            dry.updated,
            dry.unchanged,
            dry.merged,
            &dry.notes
        ),
        (
            real.created,
            real.updated,
            real.unchanged,
            real.merged,
            &real.notes
        )
    );
    assert_eq!(real.created, 30_000);
    // The commonest name was numbered across the whole file, as the dry run counted it.
    let numbered = b
        .store
        .accounts()
        .filter(|a| {
            a.as_ref()
                .unwrap()
                .email
                .split('@')
                .next()
                .unwrap()
                .ends_with(char::is_numeric)
        })
        .count();
    assert!(numbered > 10_000, "{numbered} numbered addresses");
}

#[test]
fn jsonl_and_csv_give_the_same_directory() {
    let csv = Bench::new();
    csv.import(&csv.file("1.csv", SCHOOL), DAY1);
    let jsonl = Bench::new();
    let lines: String = SCHOOL
        .lines()
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            format!(
                "{{\"id_type\":\"{}\",\"id\":\"{}\",\"full_name\":\"{}\",\"role\":\"{}\",\"jenjang\":\"{}\",\"npsn\":\"{}\"}}\n",
                c[0], c[1], c[2], c[3], c[4], c[5]
            )
        })
        .collect();
    let path = jsonl.dir.path().join("1.jsonl");
    write(&path, &lines);
    jsonl.import(&path, DAY1);
    let all = |b: &Bench| b.store.accounts().collect::<Result<Vec<_>, _>>().unwrap();
    assert_eq!(all(&csv), all(&jsonl));
}

#[test]
fn generated_export_gives_every_account_a_distinct_address() {
    let b = Bench::new();
    let path = b.dir.path().join("gen.csv");
    let made = ExportGen::new(11).write_csv(&path, 5_000);
    let summary = b.import_with(&path, options(DAY1));
    assert_eq!(summary.merged, made.repeats);
    let accounts: Vec<_> = b.store.accounts().collect::<Result<_, _>>().unwrap();
    assert_eq!(accounts.len() as u64, summary.created);
    let emails: HashSet<&str> = accounts.iter().map(|a| a.email.as_str()).collect();
    assert_eq!(emails.len(), accounts.len());
    assert!(
        accounts
            .iter()
            .all(|a| a.email.len() <= 64 + 1 + "admin.paud.belajar.id".len())
    );
    let two_levels = accounts
        .iter()
        .filter(|a| {
            accounts
                .iter()
                .filter(|b| b.id == a.id && b.id_type == a.id_type)
                .count()
                == 2
        })
        .count() as u64;
    assert_eq!(two_levels, 2 * made.two_levels);
}
