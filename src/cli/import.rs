//! `belajar-sync import`: runs an import and reports it for people or as JSON.

use super::Failure;
use super::session::{Session, say};
use crate::import::{self, Options, Summary, source::Format, source::Source};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Notes printed before the rest are left to `--json`.
const NOTES_SHOWN: usize = 20;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The export: .csv (header row) or .jsonl (one JSON object per line). A stream works
    /// too (`zcat export.csv.gz | belajar-sync import /dev/stdin --format csv`): it is read
    /// to its end into $TMPDIR first.
    pub file: PathBuf,
    /// Format of the file, when its extension does not say.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Only the rows given change anything: nobody is retired for being absent.
    #[arg(long)]
    pub delta: bool,
    /// Apply the valid rows even when some rows are invalid (they are still listed).
    #[arg(long)]
    pub skip_invalid: bool,
    /// Check and count everything, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Retire the accounts a snapshot leaves out even where that is more than
    /// lifecycle.max_retire_share of a school (by default such a school retires nobody and
    /// the import exits 4).
    #[arg(long)]
    pub allow_mass_retire: bool,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Imports the file, or in the daemon the copy it received (one import at a time; the
/// daemon's loop is told the directory changed).
pub fn run(s: &mut Session, args: &ImportArgs) -> Result<u8, Failure> {
    let read_from = s.upload.unwrap_or(&args.file);
    let source =
        Source::named(read_from, &args.file, args.format).map_err(import::ImportError::from)?;
    let _one_import = s.daemon.map(|daemon| daemon.one_import(s.err));
    let options = Options {
        delta: args.delta,
        skip_invalid: args.skip_invalid,
        dry_run: args.dry_run,
        today: crate::reconciler::today(),
        actor: s.actor.clone(),
        max_retire_share: (!args.allow_mass_retire).then_some(s.config.lifecycle.max_retire_share),
        min_free_disk: s.config.min_free_disk_mb << 20,
    };
    // A bar is for a terminal of this process, not the daemon's log.
    let progress = progress_bar(!s.progress || args.json || s.daemon.is_some());
    let summary = import::run(s.store, &s.config.naming, &source, options, &progress)?;
    if let Some(daemon) = s.daemon
        && !args.dry_run
        && !summary.changed_nothing()
    {
        daemon.directory_changed();
    }
    let refused = summary.invalid > 0 && !args.skip_invalid;
    if args.json {
        say!(
            s.out,
            "{}",
            serde_json::to_string(&summary).expect("summary serialises")
        );
    } else {
        print_summary(s, &summary, refused);
    }
    Ok(if refused {
        2
    } else if !summary.held_schools.is_empty() {
        4
    } else {
        0
    })
}

/// When `path` is not a regular file (a pipe, `/dev/stdin`, a FIFO), reads it to its end
/// into a private temporary file (in `$TMPDIR`) and returns that; `None` for a file.
pub fn spool_stream(path: &std::path::Path) -> Result<Option<tempfile::TempPath>, Failure> {
    let cannot_read =
        |e: std::io::Error| Failure::BadInput(format!("cannot read {}: {e}", path.display()));
    if std::fs::metadata(path).map_err(cannot_read)?.is_file() {
        return Ok(None);
    }
    let mut stream = std::fs::File::open(path).map_err(cannot_read)?;
    let cannot_keep = |e: std::io::Error| {
        Failure::Runtime(format!(
            "cannot keep what {} gives in {}: {e} (set TMPDIR to a folder with room for the export)",
            path.display(),
            std::env::temp_dir().display()
        ))
    };
    let mut kept = tempfile::NamedTempFile::new().map_err(cannot_keep)?;
    // A read error is the stream's; a write error is the temporary file's.
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = match std::io::Read::read(&mut stream, &mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(cannot_read(e)),
        };
        std::io::Write::write_all(&mut kept, &buffer[..read]).map_err(cannot_keep)?;
    }
    std::io::Write::flush(&mut kept).map_err(cannot_keep)?;
    Ok(Some(kept.into_temp_path()))
}

/// A bar on standard error when it is a terminal; hidden otherwise or when asked.
fn progress_bar(quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{msg:>22} [{bar:40}] {percent:>3}% ({eta} left)")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

fn print_summary(s: &mut Session, summary: &Summary, refused: bool) {
    for error in &summary.errors {
        say!(s.err, "{error}");
    }
    let dry = if summary.dry_run {
        " (dry run: nothing written)"
    } else {
        ""
    };
    say!(s.out, "{} ({}){dry}", summary.file, summary.mode);
    for (label, n) in [
        ("rows read", summary.rows_read),
        ("created", summary.created),
        ("updated", summary.updated),
        ("unchanged", summary.unchanged),
        ("retiring", summary.retiring),
        ("invalid", summary.invalid),
        ("merged rows", summary.merged),
        ("leavers unknown", summary.unknown_leavers),
    ] {
        say!(s.out, "  {label:<16}{n:>10}");
    }
    for note in summary.notes.iter().take(NOTES_SHOWN) {
        say!(s.out, "  note: {note}");
    }
    if summary.notes.len() > NOTES_SHOWN {
        say!(
            s.out,
            "  … and {} more notes (--json lists them all)",
            summary.notes.len() - NOTES_SHOWN
        );
    }
    for held in &summary.held_schools {
        say!(
            s.out,
            "HELD     school {}: {} of its {} active accounts are not in this snapshot: none of them retires (a truncated export?). Everything else was applied. If they did leave: belajar-sync import --allow-mass-retire {}",
            held.npsn,
            held.retiring,
            held.active,
            summary.file
        );
    }
    if refused {
        say!(
            s.err,
            "nothing was changed: {} invalid row(s); fix them, or pass --skip-invalid to apply the valid rows",
            summary.invalid
        );
    } else if summary.changed_nothing() && summary.held_schools.is_empty() {
        say!(
            s.out,
            "nothing changed: the directory already matches this file"
        );
    }
}
