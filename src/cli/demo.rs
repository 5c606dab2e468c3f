//! `belajar-sync demo`: the main job on an embedded default, for a newcomer, with no
//! configuration: an emulated Google in this process, a temporary store, the sample export
//! of `config/demo-export.csv`, a sync, then a helpdesk morning of drift and repairs.

use super::Failure;
use super::reconcile::{print_report, print_sync};
use crate::config::Config;
use crate::directory::model::{Account, AccountKey, DesiredState, Jenjang, Role};
use crate::emulator;
use crate::google::DirectoryClient;
use crate::google::types::User;
use crate::import::{self, Options, source::Source};
use crate::reconciler::{self, Suspensions, SyncOptions, repair};
use crate::store::Store;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// The sample export: a few hundred realistic rows of two schools.
const EXPORT: &str = include_str!("../../config/demo-export.csv");

#[derive(Debug, clap::Args)]
pub struct DemoArgs {}

/// A demo step failed: the demo is broken, say where.
fn failed(step: &str, error: impl std::fmt::Display) -> Failure {
    Failure::Runtime(format!("demo: {step}: {error}"))
}

pub fn run() -> Result<ExitCode, Failure> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| failed("start", e))?;
    runtime.block_on(demo())
}

fn heading(text: &str) {
    println!("\n== {text}");
}

async fn demo() -> Result<ExitCode, Failure> {
    let dir = tempfile::tempdir().map_err(|e| failed("temp dir", e))?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Education licences as Google gives them since 2025: a finite pool.
    let licences = [("1010070001", 5_000), ("1010340007", 1_000)]
        .into_iter()
        .map(|(sku, n)| (sku.to_owned(), n))
        .collect();
    let google = emulator::start(emulator::Options {
        licences,
        ..emulator::Options::default()
    })
    .await
    .map_err(|e| failed("emulator", e))?;
    heading(&format!(
        "An emulated Google Workspace at {} (nothing leaves this machine); store in {}",
        google.base_url,
        dir.path().display()
    ));
    let mut config = Config {
        data_dir: dir.path().join("store"),
        ..Config::default()
    };
    config.google.key_file = google.key_file.clone();
    config.google.subject = "admin@belajar.id".into();
    config.google.api_base = google.base_url.clone();
    config.google.requests_per_minute = Some(100_000);
    config.licences.enabled = true;
    config.licences.api_base = google.base_url.clone();
    let store = Store::open(&config.data_dir, config.store_cache_mb)?;
    let client = DirectoryClient::for_config(&config)
        .await
        .map_err(|e| failed("client", e))?;
    let today = reconciler::today();

    heading("Import the Dapodik export shipped in config/demo-export.csv");
    let export = dir.path().join("demo-export.csv");
    std::fs::write(&export, EXPORT).map_err(|e| failed("export", e))?;
    let summary = import_file(&store, &config, &export, today, false)?;
    println!(
        "{} rows: {} accounts created, {} invalid",
        summary.rows_read, summary.created, summary.invalid
    );

    heading("First sync: every active account is created in Google, in its org unit");
    let report = sync(&store, &client, &config, today, false).await?;
    print_sync(&mut std::io::stdout(), &report);

    heading("A helpdesk morning");
    let morning = Morning {
        store: &store,
        client: &client,
        config: &config,
        dir: dir.path(),
        today,
    };
    for key in morning.drift().await? {
        morning.repair(&key).await?;
    }

    heading("belajar-sync sync --scan: the scheduled scan finds Google in line with the directory");
    let report = sync(&store, &client, &config, today, true).await?;
    print_sync(&mut std::io::stdout(), &report);

    heading("belajar-sync status");
    drop(client);
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let mut session = super::session::Session::direct(&config, &store, &mut out, &mut err, false);
    super::inspect::status(
        &mut session,
        &super::inspect::StatusArgs {
            json: false,
            check: false,
        },
    )?;
    heading(
        "belajar-sync report licences: every active account holds its Education Fundamentals licence",
    );
    super::report::run(
        &mut session,
        &super::report::ReportArgs {
            kind: super::report::ReportKind::Licences(super::report::licences::LicencesArgs {
                json: false,
            }),
        },
    )?;
    Ok(if report.exit_code() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(report.exit_code())
    })
}

/// The helpdesk morning: what goes wrong, then each account repaired.
struct Morning<'a> {
    store: &'a Store,
    client: &'a DirectoryClient,
    config: &'a Config,
    dir: &'a Path,
    today: jiff::civil::Date,
}

impl Morning<'_> {
    /// An active account of `role` on `jenjang` (the `skip`-th).
    fn pick(&self, role: Role, jenjang: Jenjang, skip: usize) -> Result<Account, Failure> {
        self.store
            .accounts()
            .filter_map(Result::ok)
            .filter(|a| a.role == role && a.jenjang == jenjang && a.state == DesiredState::Active)
            .nth(skip)
            .ok_or_else(|| failed("pick", format!("no active {role} on {jenjang}")))
    }

    /// Drift made by hand in Google and here, and changes in Dapodik; the accounts to
    /// repair.
    async fn drift(&self) -> Result<Vec<AccountKey>, Failure> {
        let (store, client) = (self.store, self.client);
        let suspended = self.pick(Role::PesertaDidik, Jenjang::Sd, 0)?;
        let moved = self.pick(Role::PesertaDidik, Jenjang::Sd, 1)?;
        let unlinked = self.pick(Role::PesertaDidik, Jenjang::Smk, 0)?;
        let teacher = self.pick(Role::Pendidik, Jenjang::Sd, 0)?;
        let graduate = self.pick(Role::PesertaDidik, Jenjang::Sd, 2)?;

        println!(
            "- a school admin suspends {} by hand in the Admin console",
            suspended.email
        );
        let suspend = User {
            suspended: Some(true),
            ..User::default()
        };
        admin_write(client, &suspended, suspend).await?;
        println!("- someone moves {} to the root org unit", moved.email);
        let to_root = User {
            org_unit_path: Some("/".into()),
            ..User::default()
        };
        admin_write(client, &moved, to_root).await?;
        println!(
            "- {} loses its link: the marker is stripped in Google and the link here is gone",
            unlinked.email
        );
        let no_marker = User {
            external_ids: Some(vec![]),
            ..User::default()
        };
        admin_write(client, &unlinked, no_marker).await?;
        let mut changes = store.changes(false);
        let cut = Account {
            google: None,
            ..unlinked.clone()
        };
        changes.put_account(Some(&unlinked), &cut)?;
        changes.commit()?;
        drop(changes);
        println!(
            "- {} ({}) is appointed principal",
            teacher.full_name, teacher.email
        );
        println!(
            "- {} ({}) moves up to SMP",
            graduate.full_name, graduate.email
        );
        let delta = self.dir.join("delta.csv");
        let rows = format!(
            "id_type,id,full_name,role,jenjang,npsn,status\n\
             {t},{tid},\"{tname}\",kepala_sekolah,sd,{tnpsn},aktif\n\
             {g},{gid},\"{gname}\",peserta_didik,sd,{gnpsn},keluar\n\
             {g},{gid},\"{gname}\",peserta_didik,smp,20200001,aktif\n",
            t = teacher.id_type,
            tid = teacher.id,
            tname = teacher.full_name,
            tnpsn = teacher.npsn,
            g = graduate.id_type,
            gid = graduate.id,
            gname = graduate.full_name,
            gnpsn = graduate.npsn,
        );
        std::fs::write(&delta, rows).map_err(|e| failed("delta export", e))?;
        import_file(store, self.config, &delta, self.today, true)?;
        let smp = AccountKey {
            jenjang: Jenjang::Smp,
            ..graduate.key()
        };
        Ok(vec![
            suspended.key(),
            moved.key(),
            unlinked.key(),
            teacher.key(),
            smp,
            graduate.key(),
        ])
    }

    /// `resync` of one account, as the helpdesk runs it, and its report.
    async fn repair(&self, key: &AccountKey) -> Result<(), Failure> {
        let (store, config, today) = (self.store, self.config, self.today);
        let account = store
            .account(key)?
            .ok_or_else(|| failed("resync", format!("{key} is gone")))?;
        heading(&format!("belajar-sync resync {key}"));
        let mut report = repair::resync(
            store,
            self.client,
            config,
            &account,
            today,
            ("helpdesk", crate::planner::Asker::Person),
        )
        .await
        .map_err(|e| failed("resync", e))?;
        super::reconcile::say_retirement(store, config, &mut report, key, today)?;
        print_report(&mut std::io::stdout(), &report);
        Ok(())
    }
}

fn import_file(
    store: &Store,
    config: &Config,
    path: &Path,
    today: jiff::civil::Date,
    delta: bool,
) -> Result<import::Summary, Failure> {
    let source = Source::new(path, None).map_err(|e| failed("import", e))?;
    let options = Options {
        delta,
        skip_invalid: false,
        dry_run: false,
        today,
        actor: "demo".into(),
        max_retire_share: None,
        min_free_disk: 0,
    };
    Ok(import::run(
        store,
        &config.naming,
        &source,
        options,
        &indicatif::ProgressBar::hidden(),
    )?)
}

async fn sync(
    store: &Store,
    client: &DirectoryClient,
    config: &Config,
    today: jiff::civil::Date,
    scan: bool,
) -> Result<reconciler::SyncReport, Failure> {
    let options = SyncOptions {
        scan,
        suspensions: Suspensions::Guarded,
        max_wait: Duration::from_secs(10),
        control: None,
    };
    reconciler::sync(store, client, config, today, options, |_: &str| {})
        .await
        .map_err(|e| failed("sync", e))
}

/// A change made as an admin would in the Admin console (the same API, the same admin).
async fn admin_write(
    client: &DirectoryClient,
    account: &Account,
    patch: User,
) -> Result<(), Failure> {
    let id = account
        .google
        .as_ref()
        .map(|g| g.id.clone())
        .ok_or_else(|| failed("drift", format!("{} is not linked", account.key())))?;
    client
        .update_user(&id, &patch)
        .await
        .map(drop)
        .map_err(|e| failed("drift", e))
}
