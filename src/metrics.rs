//! Metrics in the Prometheus text format, served on `metrics_listen` while the daemon
//! runs: the directory's state and the client's calls, read when scraped.

use crate::audit::{self, HeldList};
use crate::daemon::Shared;
use crate::google::DirectoryClient;
use crate::store::{Store, StoreError};
use crate::{access, journal, remote};
use axum::response::IntoResponse;
use std::fmt::Write;
use std::sync::Arc;

/// One metric family: its help line, type, and samples (labels, value).
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// The web console's counters since the daemon started (kept in memory).
fn console(out: &mut String) {
    use crate::web::{What, Who};
    let c = crate::web::counters();
    let samples: Vec<(String, f64)> = What::ALL
        .iter()
        .flat_map(|what| Who::ALL.iter().map(move |who| (*what, *who)))
        .map(|(what, who)| {
            let labels = format!("{{what=\"{}\",who=\"{}\"}}", what.name(), who.name());
            (labels, c.get(what, who) as f64)
        })
        .collect();
    family(
        out,
        "belajar_sync_console_total",
        "counter",
        "What the web console did since the daemon started (sign-ins, refusals: 403 and failed sign-ins, password resets, sheets, repairs, answers limited: 429), by who asked (operator, helpdesk, admin, api: a ticketing system with an agent's token, other: signed in but not for the console, unknown: not signed in).",
        &samples,
    );
}

/// The public pages' counters since the daemon started (kept in memory).
fn public_pages(out: &mut String) {
    use crate::web::public::{Public, counted};
    let samples: Vec<(String, f64)> = Public::ALL
        .iter()
        .map(|what| {
            (
                format!("{{what=\"{}\"}}", what.name()),
                counted(*what) as f64,
            )
        })
        .collect();
    family(
        out,
        "belajar_sync_cek_akun_total",
        "counter",
        "What the public pages (Cek Akun, Lupa kata sandi) did since the daemon started: tries within the limits, tries that found the person, reset codes mailed, passwords reset with a code, repairs asked, refusals (a wrong code, a form without its token), tries past a limit (429), codes whose mail the relay did not take (mail_failed: the person was told it was sent; see the log).",
        &samples,
    );
}

/// The metrics now, as Prometheus reads them.
pub fn render(store: &Store, client: &DirectoryClient) -> Result<String, StoreError> {
    let mut out = String::new();
    let counts = store.counts()?;
    let states = [
        ("active", counts.active),
        ("retiring", counts.retiring),
        ("suspended", counts.suspended),
    ];
    let by_state: Vec<(String, f64)> = states
        .iter()
        .map(|(state, n)| (format!("{{state=\"{state}\"}}"), *n as f64))
        .collect();
    family(
        &mut out,
        "belajar_sync_accounts",
        "gauge",
        "Accounts of the directory by desired state.",
        &by_state,
    );
    family(
        &mut out,
        "belajar_sync_accounts_signed_in",
        "gauge",
        "Accounts whose Google user has been seen signed in (activation).",
        &[(String::new(), access::signed_in_count(store)? as f64)],
    );
    if let Some(quota) = client.limiter().learnt_per_minute() {
        family(
            &mut out,
            "belajar_sync_quota_learnt_per_minute",
            "gauge",
            "Google's quota as learnt from its rate-limit answers (calls a minute).",
            &[(String::new(), quota)],
        );
    }
    let outage = client.circuit.outage();
    family(
        &mut out,
        "belajar_sync_google_unreachable",
        "gauge",
        "1 while Google cannot be reached (calls are not sent until a probe gets an answer).",
        &[(String::new(), f64::from(u8::from(outage.is_some())))],
    );
    if let Some(outage) = outage {
        family(
            &mut out,
            "belajar_sync_google_unreachable_since_seconds",
            "gauge",
            "When the outage began (Unix seconds).",
            &[(String::new(), outage.since.as_second() as f64)],
        );
    }
    family(
        &mut out,
        "belajar_sync_store_disk_free_bytes",
        "gauge",
        "Free space on the disk of the store (the daemon waits below min_free_disk_mb).",
        &[(String::new(), store.free_space()? as f64)],
    );
    let census = journal::census(store)?;
    family(
        &mut out,
        "belajar_sync_outbox_entries",
        "gauge",
        "Actions waiting in the journal.",
        &[(String::new(), census.depth as f64)],
    );
    family(
        &mut out,
        "belajar_sync_outbox_in_flight_entries",
        "gauge",
        "Actions sent without a known answer.",
        &[(String::new(), census.in_flight as f64)],
    );
    let waits: Vec<(String, f64)> = census
        .licence_waits
        .iter()
        .map(|(sku, n)| (format!("{{sku=\"{sku}\"}}"), *n as f64))
        .collect();
    family(
        &mut out,
        "belajar_sync_licences_freed_last_24h",
        "gauge",
        "Licences archiving freed in the last 24 hours: not reusable yet (Google's delay).",
        &[(
            String::new(),
            crate::licences::freed_last_24h(store, jiff::Timestamp::now())? as f64,
        )],
    );
    family(
        &mut out,
        "belajar_sync_licence_waiting_accounts",
        "gauge",
        "Accounts waiting for a licence Google has none left of, by SKU.",
        &waits,
    );
    notices_held_and_scanned(&mut out, store)?;
    client_calls(&mut out, client);
    console(&mut out);
    public_pages(&mut out);
    Ok(out)
}

/// The notices, what is held for a person, the guard and the last scan.
fn notices_held_and_scanned(out: &mut String, store: &Store) -> Result<(), StoreError> {
    let notices = crate::notices::counts(store)?;
    family(
        out,
        "belajar_sync_notices_sent_total",
        "counter",
        "Notices to retiring accounts handed to the mail relay.",
        &[(String::new(), notices.sent as f64)],
    );
    family(
        out,
        "belajar_sync_notices_failed_total",
        "counter",
        "Attempts at sending a notice that failed.",
        &[(String::new(), notices.failed as f64)],
    );
    family(
        out,
        "belajar_sync_notices_waiting",
        "gauge",
        "Notices in the outbox not sent yet (refused for good not counted).",
        &[(String::new(), notices.waiting as f64)],
    );
    let quarantine = audit::all_held(store, HeldList::Quarantine).count();
    let conflicts = audit::all_held(store, HeldList::Conflicts).count();
    family(
        out,
        "belajar_sync_quarantined_accounts",
        "gauge",
        "Accounts held after a permanent failure.",
        &[(String::new(), quarantine as f64)],
    );
    family(
        out,
        "belajar_sync_conflict_accounts",
        "gauge",
        "Accounts held for a person to decide.",
        &[(String::new(), conflicts as f64)],
    );
    let guard = f64::from(u8::from(audit::guard(store)?.is_some()));
    family(
        out,
        "belajar_sync_guard_held",
        "gauge",
        "1 while the mass-suspension guard holds suspensions back.",
        &[(String::new(), guard)],
    );
    let scan = remote::last_scan(store)?;
    if let Some(finished) = scan.finished {
        family(
            out,
            "belajar_sync_last_scan_timestamp_seconds",
            "gauge",
            "When the last believed scan of Google finished.",
            &[(String::new(), finished.as_second() as f64)],
        );
        family(
            out,
            "belajar_sync_last_scan_duration_seconds",
            "gauge",
            "How long the last believed scan took.",
            &[(String::new(), scan.seconds().unwrap_or(0.0))],
        );
    }
    Ok(())
}

/// The client's calls to Google: answers by method and status, retries, rate limits, and
/// the pace the governor keeps.
fn client_calls(out: &mut String, client: &DirectoryClient) {
    let calls: Vec<(String, f64)> = client
        .stats
        .answers()
        .into_iter()
        .map(|((method, status), n)| {
            (
                format!("{{method=\"{method}\",status=\"{status}\"}}"),
                n as f64,
            )
        })
        .collect();
    family(
        out,
        "belajar_sync_google_calls_total",
        "counter",
        "Attempts of Directory API calls by method and answer (lost: no answer came).",
        &calls,
    );
    family(
        out,
        "belajar_sync_google_retries_total",
        "counter",
        "Attempts that repeated a call.",
        &[(String::new(), client.stats.retries() as f64)],
    );
    family(
        out,
        "belajar_sync_google_rate_limited_total",
        "counter",
        "Answers saying the calls go too fast.",
        &[(String::new(), client.stats.rate_limited() as f64)],
    );
    family(
        out,
        "belajar_sync_limiter_rate_per_minute",
        "gauge",
        "The pace the limiter allows now, in calls per minute.",
        &[(String::new(), client.limiter().rate_per_minute())],
    );
}

/// Serves `GET /metrics` on `listen` until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let shared = shared.clone();
            async move {
                // Reading the store blocks (a long journal is scanned): off the runtime.
                let rendered =
                    tokio::task::spawn_blocking(move || render(&shared.store(), &shared.client))
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.map_err(|e| format!("store unreadable: {e}")));
                match rendered {
                    Ok(text) => (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        text,
                    )
                        .into_response(),
                    Err(e) => (
                        [(axum::http::header::CONTENT_TYPE, "text/plain")],
                        format!("# {e}\n"),
                    )
                        .into_response(),
                }
            }
        }),
    );
    let stop = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::warn!(error = %e, "metrics server stopped");
    }
}
