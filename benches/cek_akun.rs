//! Load on Cek Akun, as in the rush of a new school year: CLIENTS people at once (500)
//! for SECS seconds (15), each asking with their school's NPSN, their name and birth date
//! through the real daemon, against SCHOOLS schools (20) of PUPILS pupils each (500), an
//! export shaped like Dapodik's (rows in id order, schools interleaved, one name in ten
//! the same). MATCH (70) percent of the questions find someone; the rest give a wrong
//! birth date. The limits are raised (all clients share 127.0.0.1) but still taken.
//! Prints answers per second, latency quantiles of matched and unmatched questions (the
//! steady answer time: `web.public_answer_ms`, 400 ms) and the daemon's peak memory.
//! `cargo bench --bench cek_akun`. Figures, not assertions.

#[path = "../tests/support/bench.rs"]
mod bench;
#[path = "../tests/support/mod.rs"]
mod support;
use bench::{env_or, peak_mib, quantile as q};
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::console::{Browser, Setup, start_console_logging};

/// One person of the export: school, name, birth date.
struct Person {
    npsn: String,
    name: String,
    birth: String,
}

fn people(schools: u64, pupils: u64) -> (String, Vec<Person>) {
    let mut export = String::from(
        "id_type,id,full_name,role,jenjang,npsn,birth_date\n\
        nuptk,1000000000000001,Ani Operator,operator,sd,20100001,1985-05-05\n",
    );
    let mut people = Vec::new();
    for i in 0..schools * pupils {
        let npsn = format!("{}", 20_100_001 + i % schools);
        let name = if i % 10 == 0 {
            "Muhammad Rizki".to_owned()
        } else {
            format!("Murid Nomor {i}")
        };
        let birth = format!("201{}-{:02}-{:02}", i % 6, 1 + i % 12, 1 + i % 28);
        export.push_str(&format!(
            "nisn,{:010},{name},peserta_didik,sd,{npsn},{birth}\n",
            20_000_000 + i
        ));
        people.push(Person { npsn, name, birth });
    }
    (export, people)
}

fn main() {
    let schools = env_or("SCHOOLS", 20);
    let pupils = env_or("PUPILS", 500);
    let clients = env_or("CLIENTS", 500) as usize;
    let secs = env_or("SECS", 15);
    let matched = env_or("MATCH", 70);
    let (export, people) = people(schools, pupils);
    let tail = "public_per_address_per_hour = 100000000\npublic_per_account_per_hour = 100000\n";
    let setup = Setup::custom(&export, &[], tail);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (daemon, console, _log) = start_console_logging(&runtime, &setup, "info");
    let pid = daemon.0.id();
    let people = Arc::new(people);
    runtime.block_on(async {
        // Every client's browser: its form cookie and token.
        let mut browser = Browser::new(&console);
        let form = browser.get("/cek-akun").await;
        let at = form.body.find(r#"name="token" value=""#).unwrap() + 20;
        let token = form.body[at..at + 32].to_owned();
        let cookie = browser.cookie_header();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(clients)
            .build()
            .unwrap();
        let url = format!("{console}/cek-akun");
        let started = Instant::now();
        let until = started + Duration::from_secs(secs);
        let latencies = Arc::new(std::sync::Mutex::new((Vec::new(), Vec::new())));
        let mut tasks = tokio::task::JoinSet::new();
        for client in 0..clients {
            let (http, url, cookie, token) =
                (http.clone(), url.clone(), cookie.clone(), token.clone());
            let (people, latencies) = (people.clone(), latencies.clone());
            tasks.spawn(async move {
                let mut rng = rand::rngs::SmallRng::seed_from_u64(client as u64);
                let mut errors = 0u64;
                while Instant::now() < until {
                    let person = &people[rng.random_range(0..people.len())];
                    let hit = rng.random_range(0..100) < matched;
                    let birth = if hit { person.birth.clone() } else { "2009-12-31".into() };
                    let form = [
                        ("token", token.as_str()),
                        ("npsn", &person.npsn),
                        ("nama", &person.name),
                        ("tanggal_lahir", &birth),
                    ];
                    let asked = Instant::now();
                    let sent = http.post(&url).header("cookie", &cookie).form(&form).send().await;
                    match sent {
                        Ok(r) if r.status() == 200 => {
                            let body = r.text().await.unwrap_or_default();
                            let found = body.contains(r#"id="keadaan""#);
                            let mut l = latencies.lock().unwrap();
                            if found { l.0.push(asked.elapsed()) } else { l.1.push(asked.elapsed()) }
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
        let (mut found, mut missed) = latencies.lock().unwrap().clone();
        found.sort();
        missed.sort();
        println!(
            "{schools} schools of {pupils} pupils, {clients} clients for {secs} s: {:.0} answers/s ({} found, {} not), {errors} errors; \
             found p50 {:?} p99 {:?}; not found p50 {:?} p99 {:?}; daemon peak RSS {} MiB",
            (found.len() + missed.len()) as f64 / elapsed,
            found.len(),
            missed.len(),
            q(&found, 0.5),
            q(&found, 0.99),
            q(&missed, 0.5),
            q(&missed, 0.99),
            peak_mib(pid)
        );
    });
}
