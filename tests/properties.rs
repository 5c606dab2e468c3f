//! Properties of the import over random exports, on a real store: no two accounts ever
//! share an address, and importing the same file twice changes nothing the second time.

mod support;

use belajar_sync::config::Naming;
use belajar_sync::import::{self, Options, source::Source};
use belajar_sync::store::Store;
use indicatif::ProgressBar;
use proptest::prelude::*;
use std::collections::HashMap;
use std::path::Path;
use support::export_gen::write;

const NAMES: &[&str] = &[
    "Budi",
    "Budi Santoso",
    "Siti Aminah",
    "Admin",
    "Dra. Siti Aminah, S.Pd.",
    "Désirée",
    "Nur'aini Budi",
];
const ROLES: &[&str] = &["peserta_didik", "pendidik", "kepala_sekolah", "operator"];
const LEVELS: &[&str] = &["sd", "smp"];

/// A row from small pools, so that names, people and schools collide often.
fn row() -> impl Strategy<Value = String> {
    (
        0..NAMES.len(),
        0..ROLES.len(),
        0..LEVELS.len(),
        0u32..12,
        0u32..3,
        prop::bool::weighted(0.1),
    )
        .prop_map(|(name, role, level, person, school, leaves)| {
            let role = ROLES[role];
            let (id_type, id) = if role == "peserta_didik" {
                ("nisn", format!("{:010}", person))
            } else {
                ("nuptk", format!("{:016}", person))
            };
            let status = if leaves { "keluar" } else { "aktif" };
            format!(
                "{id_type},{id},\"{}\",{role},{},{:08},{status}\n",
                NAMES[name],
                LEVELS[level],
                20_100_000 + school
            )
        })
}

fn import(store: &Store, path: &Path, day: u8) -> import::Summary {
    let options = Options {
        delta: false,
        skip_invalid: false,
        dry_run: false,
        today: jiff::civil::date(2026, 7, day as i8),
        actor: "operator".into(),
        max_retire_share: None,
        min_free_disk: 0,
    };
    let source = Source::new(path, None).unwrap();
    import::run(
        store,
        &Naming::default(),
        &source,
        options,
        &ProgressBar::hidden(),
    )
    .unwrap()
}

/// Every address held (current or former) belongs to exactly one account.
fn assert_addresses_unique(store: &Store) -> Result<(), TestCaseError> {
    let mut holders: HashMap<String, String> = HashMap::new();
    for account in store.accounts() {
        let account = account.unwrap();
        for email in std::iter::once(&account.email).chain(&account.former_emails) {
            let key = account.key().to_string();
            if let Some(other) = holders.insert(email.clone(), key.clone()) {
                prop_assert_eq!(&other, &key, "{} held by two accounts", email);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn no_two_accounts_share_an_address_and_reimport_changes_nothing(
        first in prop::collection::vec(row(), 1..60),
        second in prop::collection::vec(row(), 1..60),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store"), 8).unwrap();
        let header = "id_type,id,full_name,role,jenjang,npsn,status\n";
        for (i, rows) in [&first, &second].into_iter().enumerate() {
            let path = dir.path().join(format!("{i}.csv"));
            write(&path, &format!("{header}{}", rows.concat()));
            import(&store, &path, 1 + i as u8);
            assert_addresses_unique(&store)?;
            let again = import(&store, &path, 10 + i as u8);
            prop_assert!(again.changed_nothing(), "re-import changed something: {:?}", again);
            let counts = store.counts().unwrap();
            prop_assert_eq!(counts.total as usize, store.accounts().count());
        }
    }
}
