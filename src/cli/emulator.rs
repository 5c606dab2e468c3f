//! `belajar-sync emulator`: the emulator of Google's Directory API and token endpoint as a
//! process of its own, for people and for benchmarks from another process.

use super::Failure;
use crate::emulator::{self, Options, faults::Faults};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct EmulatorArgs {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8089")]
    pub listen: SocketAddr,
    /// A domain the emulated customer owns; repeat for several (default: every domain of
    /// the default belajar.id naming, and belajar.id).
    #[arg(long = "domain", value_name = "D")]
    pub domains: Vec<String>,
    /// Where to write the service-account key file (default: a temp file removed on exit).
    #[arg(long)]
    pub key_out: Option<PathBuf>,
    /// The delegated admin that may call the API; repeat for several.
    #[arg(
        long = "admin",
        value_name = "EMAIL",
        default_value = "admin@belajar.id"
    )]
    pub admins: Vec<String>,
    /// Calls per delegated admin per minute before 403 userRateLimitExceeded (2400 is
    /// Google's default; off when absent).
    #[arg(long)]
    pub quota_per_minute: Option<u32>,
    /// Calls in flight at once before 403 quotaExceeded (off when absent).
    #[arg(long)]
    pub max_concurrent: Option<u32>,
    /// Share of calls answered 503 backendError, 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Latency added to every call, in ms.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Uniform random latency on top, in ms.
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u64,
    /// Share of writes applied and then answered by closing the connection, 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    pub lost_response_rate: f64,
    /// How long a new user stays unlisted and refuses writes (and a renamed one answers 409).
    #[arg(long, default_value_t = 0)]
    pub propagation_delay_ms: u64,
    /// A listing of users that pages for longer than this many seconds is answered 503
    /// backendError, as Google ends listings after 60 minutes (3600).
    #[arg(long)]
    pub listing_limit_secs: Option<u64>,
    /// How long a new user is missing from `query` listings, in ms (Google's search
    /// index lags: up to 36 hours).
    #[arg(long, default_value_t = 0)]
    pub query_lag_ms: u64,
    /// Seed of the random faults, so runs repeat.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, default_value_t = 3599)]
    pub token_lifetime_secs: u64,
    /// Licences per SKU, e.g. `1010070001=1200,1010340007=300` (Education Fundamentals,
    /// Archived User); a SKU not listed has none.
    #[arg(long, value_name = "SKU=N,...", value_delimiter = ',', value_parser = parse_pool)]
    pub licences: Vec<(String, u32)>,
    /// How long a licence taken back (removed, or freed by archiving) stays unusable, in
    /// seconds (Google: up to 24 hours).
    #[arg(long, default_value_t = 24 * 3600)]
    pub licence_reuse_secs: u64,
    /// New users get an Education Fundamentals licence by themselves (Google's default
    /// for existing domains since 2025); removing one is then refused.
    #[arg(long)]
    pub auto_licensing: bool,
    /// The Enterprise License Manager API is not enabled: every licensing call answers
    /// 403 accessNotConfigured.
    #[arg(long)]
    pub licensing_disabled: bool,
}

/// `SKU=N`: a SKU the emulator knows and a number of licences.
fn parse_pool(text: &str) -> Result<(String, u32), String> {
    let (sku, count) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected SKU=N, e.g. 1010070001=1200"))?;
    let sku = sku.trim();
    if emulator::licences::product_of(sku).is_none() {
        let known: Vec<&str> = emulator::licences::SKUS.iter().map(|s| s.1).collect();
        return Err(format!(
            "unknown SKU {sku:?}: known are {}",
            known.join(", ")
        ));
    }
    let count = count
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: the number of licences must be a whole number"))?;
    Ok((sku.to_owned(), count))
}

impl EmulatorArgs {
    fn options(&self) -> Result<Options, Failure> {
        let defaults = Options::default();
        let faults = Faults {
            quota_per_minute: self.quota_per_minute,
            max_concurrent: self.max_concurrent,
            error_rate: self.error_rate,
            latency_ms: self.latency_ms,
            jitter_ms: self.jitter_ms,
            lost_response_rate: self.lost_response_rate,
            propagation_delay_ms: self.propagation_delay_ms,
            hold_listing: false,
            listing_limit_secs: self.listing_limit_secs,
            query_lag_ms: self.query_lag_ms,
        };
        faults.validate().map_err(Failure::BadInput)?;
        Ok(Options {
            listen: self.listen,
            domains: if self.domains.is_empty() {
                defaults.domains
            } else {
                self.domains.clone()
            },
            admins: self.admins.clone(),
            key_out: self.key_out.clone(),
            token_lifetime: Duration::from_secs(self.token_lifetime_secs),
            faults,
            seed: self.seed,
            licences: self.licences.iter().cloned().collect(),
            licence_reuse_delay: Duration::from_secs(self.licence_reuse_secs),
            auto_licensing: self.auto_licensing,
            licensing_disabled: self.licensing_disabled,
        })
    }
}

pub fn run(args: &EmulatorArgs) -> Result<ExitCode, Failure> {
    let options = args.options()?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::Runtime(format!("cannot start tokio: {e}")))?;
    runtime.block_on(async {
        let emulator = emulator::start(options).await.map_err(|e| {
            Failure::Runtime(format!("cannot start the emulator on {}: {e}", args.listen))
        })?;
        // Listening for SIGTERM before the URL is announced: a test may stop it at once.
        let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        // Announced once; a reader that has gone away must not stop the emulator.
        let announcement = format!(
            "emulator listening on {}\nkey file: {}\nadmin: {}\n",
            emulator.base_url,
            emulator.key_file.display(),
            args.admins.join(", ")
        );
        let mut stdout = std::io::stdout();
        let _ = stdout
            .write_all(announcement.as_bytes())
            .and_then(|()| stdout.flush());
        stopped(term).await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Waits for SIGINT or SIGTERM (`term`, when it could be listened for).
async fn stopped(term: Option<tokio::signal::unix::Signal>) {
    match term {
        Some(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
