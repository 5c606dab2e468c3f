//! Load on the web console: an operator's school page (a school of PUPILS accounts,
//! 1,000 by default) asked by CLIENTS clients at once (200) for SECS seconds (10), with
//! the operator's session, through the real daemon. Prints pages per second, latency
//! quantiles and the daemon's peak memory. `cargo bench --bench console`. Figures, not
//! assertions.

#[path = "../tests/support/bench.rs"]
mod bench;
#[path = "../tests/support/mod.rs"]
mod support;
use bench::{env_or, peak_mib, quantile};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::console::{Browser, EXPORT, Setup, start_console_logging};

fn main() {
    let pupils = env_or("PUPILS", 1_000);
    let clients = env_or("CLIENTS", 200) as usize;
    let secs = env_or("SECS", 10);
    let mut export = EXPORT.to_owned();
    for i in 0..pupils {
        export.push_str(&format!(
            "nisn,{:010},Murid Nomor {i},peserta_didik,sd,20100001,2015-01-01\n",
            20_000_000 + i
        ));
    }
    let setup = Setup::with_export(&export);
    let (op, first) = setup.reset_by_shell("nuptk:1000000000000001", "1985-05-05");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (daemon, console, _log) = start_console_logging(&runtime, &setup, "info");
    let pid = daemon.0.id();
    runtime.block_on(async {
        let mut operator = Browser::new(&console);
        let signed = operator.sign_in(&op, &first, Some("sandi-baru-ani-1")).await;
        assert_eq!(signed.status, 303, "the operator signs in");
        let cookie = operator.cookie_header();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(clients)
            .build()
            .unwrap();
        let url = format!("{console}/sekolah/20100001");
        let first = http.get(&url).header("cookie", &cookie).send().await.unwrap();
        let bytes = first.bytes().await.unwrap().len();
        let started = Instant::now();
        let until = started + Duration::from_secs(secs);
        let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..clients {
            let (http, url, cookie, latencies) =
                (http.clone(), url.clone(), cookie.clone(), latencies.clone());
            tasks.spawn(async move {
                let mut errors = 0u64;
                while Instant::now() < until {
                    let asked = Instant::now();
                    match http.get(&url).header("cookie", &cookie).send().await {
                        Ok(r) if r.status() == 200 => {
                            let _ = r.bytes().await;
                            latencies.lock().unwrap().push(asked.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
                errors
            });
        }
        let mut errors = 0;
        while let Some(done) = tasks.join_next().await {
            errors += done.unwrap();
        }
        let elapsed = started.elapsed().as_secs_f64();
        let mut latencies = latencies.lock().unwrap().clone();
        latencies.sort();
        let q = |p: f64| quantile(&latencies, p);
        println!(
            "school of {} accounts, page {} KiB, {clients} clients for {secs} s: {:.0} pages/s, {} errors, latency p50 {:?} p99 {:?}; daemon peak RSS {} MiB",
            pupils + 4,
            bytes / 1024,
            latencies.len() as f64 / elapsed,
            errors,
            q(0.5),
            q(0.99),
            peak_mib(pid)
        );
    });
}
