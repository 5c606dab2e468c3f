//! Writes a realistic Dapodik export (CSV) for trying belajar-sync out or benchmarking it:
//! `cargo run --release --example gen_export -- OUT.csv [ROWS] [SEED]`.

#[path = "../tests/support/export_gen.rs"]
mod export_gen;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: gen_export OUT.csv [ROWS=1000] [SEED=1]");
        std::process::exit(2);
    };
    let rows = args
        .next()
        .map_or(1000, |r| r.parse().expect("ROWS is a number"));
    let seed = args
        .next()
        .map_or(1, |s| s.parse().expect("SEED is a number"));
    let made = export_gen::ExportGen::new(seed).write_csv(out.as_ref(), rows);
    eprintln!("{out}: {made:?}");
}
