//! `belajar-sync import`: runs an import and reports it for people or as JSON.

use super::{Cli, Failure, open_store};
use crate::config::Config;
use crate::directory::import::{self, Options, Summary, source::Format, source::Source};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// Notes printed before the rest are left to `--json`.
const NOTES_SHOWN: usize = 20;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The export: .csv (header row) or .jsonl (one JSON object per line).
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
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cli: &Cli, config: &Config, args: &ImportArgs) -> Result<ExitCode, Failure> {
    let source = Source::new(&args.file, args.format).map_err(import::ImportError::from)?;
    let store = open_store(config)?;
    let options = Options {
        delta: args.delta,
        skip_invalid: args.skip_invalid,
        dry_run: args.dry_run,
        today: crate::reconciler::today(),
    };
    let progress = progress_bar(cli.quiet || args.json);
    let summary = import::run(&store, &config.naming, &source, options, &progress)?;
    let refused = summary.invalid > 0 && !args.skip_invalid;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&summary).expect("summary serialises")
        );
    } else {
        print_summary(&summary, refused);
    }
    Ok(if refused {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
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

fn print_summary(summary: &Summary, refused: bool) {
    for error in &summary.errors {
        eprintln!("{error}");
    }
    let dry = if summary.dry_run {
        " (dry run: nothing written)"
    } else {
        ""
    };
    println!("{} ({}){dry}", summary.file, summary.mode);
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
        println!("  {label:<16}{n:>10}");
    }
    for note in summary.notes.iter().take(NOTES_SHOWN) {
        println!("  note: {note}");
    }
    if summary.notes.len() > NOTES_SHOWN {
        println!(
            "  … and {} more notes (--json lists them all)",
            summary.notes.len() - NOTES_SHOWN
        );
    }
    if refused {
        eprintln!(
            "nothing was changed: {} invalid row(s); fix them, or pass --skip-invalid to apply the valid rows",
            summary.invalid
        );
    } else if summary.changed_nothing() {
        println!("nothing changed: the directory already matches this file");
    }
}
