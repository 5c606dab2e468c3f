//! `belajar-sync rebuild`: a lost store made again without touching Google. Google is
//! scanned first into the new store, then the exports are imported: an account whose
//! Google user carries its marker takes the address that user has (instead of whatever
//! a fresh allocation would give a namesake), and the next plan links it without a call.

use super::Failure;
use super::import::{self, ImportArgs};
use super::session::{Session, say};
use crate::import::source::Format;
use crate::reconciler::scan;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct RebuildArgs {
    /// The exports the directory was built from (every school's latest), in order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Format of the files, when their extensions do not say.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

pub fn run(s: &mut Session, args: &RebuildArgs) -> Result<u8, Failure> {
    if s.daemon.is_some() {
        return Err(Failure::BadInput(
            "rebuild needs the store to itself: stop the service, rebuild, start it again".into(),
        ));
    }
    let accounts = s.store.counts()?.total;
    if accounts > 0 {
        return Err(Failure::BadInput(format!(
            "the store at {} holds {accounts} accounts: rebuild makes a lost store again (move this one away first, or import into it)",
            s.store.path().display()
        )));
    }
    if s.progress {
        say!(s.err, "scanning Google");
    }
    let (store, config, google) = (s.store, s.config, &s.google);
    let record = s.runtime.block_on(async {
        let client = google.client(config).await?;
        scan::run(store, client, config, |_, _| {})
            .await
            .map_err(|e| {
                Failure::Runtime(format!(
                    "the scan failed: {e}; run rebuild again (the scan goes on where it stopped)"
                ))
            })
    })??;
    say!(
        s.out,
        "scanned Google: {}",
        crate::display::count(record.users.values().sum::<u64>(), "user", "users")
    );
    let mut code = 0;
    for file in &args.files {
        let import = ImportArgs {
            file: file.clone(),
            format: args.format,
            delta: false,
            skip_invalid: false,
            dry_run: false,
            allow_mass_retire: false,
            json: false,
        };
        code = code.max(import::run(s, &import)?);
    }
    say!(
        s.out,
        "rebuilt: `belajar-sync plan` shows what a sync would do (accounts whose Google user carries their marker are linked without a call)"
    );
    Ok(code)
}
