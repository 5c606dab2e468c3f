//! One account's page and what may be done to it: a reset (the school's operator vouches
//! for their person; the helpdesk checks the birth date), a repair (the helpdesk with a
//! ticket), a release from quarantine, and for administrators suspend and reinstate. And
//! the helpdesk's search.

use super::limits::Kind;
use super::pages::{self, csrf, layout};
use super::school::{is_npsn, server_error, state_words};
use super::session::Person;
use super::{Console, count, counters};
use crate::credentials::{self, Identity, ResetError};
use crate::directory::model::{Account, AccountKey, DesiredState, IdType};
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use std::sync::Arc;

/// The account a path names, if the person may act on it: 404 for a key that names no
/// account, 403 (and a line in the log) for one of another school.
async fn allowed(console: &Arc<Console>, person: &Person, key: &str) -> Result<Account, Response> {
    let not_found = || {
        pages::message(
            StatusCode::NOT_FOUND,
            "Akun tidak ditemukan",
            Some(person),
            "error",
            "Tidak ada akun seperti itu.",
        )
    };
    let Some(key) = AccountKey::parse(key) else {
        return Err(not_found());
    };
    let found = console
        .blocking(move |c| c.daemon.store().account(&key))
        .await
        .map_err(|e| server_error(person, &e))?;
    let Some(account) = found else {
        return Err(not_found());
    };
    if !person.role.may_act_on(&account) {
        return Err(person.refuse(&format!("account {}", account.key())));
    }
    Ok(account)
}

/// A ticket number as the helpdesk's system writes them: 1–40 letters, digits, `-_/#.`.
fn ticket(text: &str) -> Option<&str> {
    let text = text.trim();
    (!text.is_empty()
        && text.len() <= 40
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_/#.".contains(&b)))
    .then_some(text)
}

fn ticket_field() -> Markup {
    html! { label { "Nomor tiket " input type="text" name="ticket" required maxlength="40" pattern="[A-Za-z0-9_/#.\\-]+"; } }
}

/// `GET /akun/{key}`.
pub async fn account(
    person: Person,
    State(console): State<Arc<Console>>,
    Path(key): Path<String>,
) -> Response {
    let account = match allowed(&console, &person, &key).await {
        Ok(account) => account,
        Err(refused) => return refused,
    };
    let subject = account.key();
    let signed_in = console
        .blocking(move |c| {
            crate::access::of(&c.daemon.store(), &subject)
                .ok()
                .flatten()
                .is_some_and(|a| a.signed_in())
        })
        .await;
    // The helpdesk reads what `show` says (Google's side, history, what is held).
    let show = if person.role.is_helpdesk() {
        let argv = vec!["show".to_owned(), account.key().to_string()];
        let actor = person.actor(None);
        Some(
            console
                .act(move |c| crate::cli::control::run_for_console(&c.daemon, argv, actor))
                .await,
        )
    } else {
        None
    };
    account_page(&person, &account, signed_in, show.map(|r| r.out)).into_response()
}

fn account_page(
    person: &Person,
    account: &Account,
    signed_in: bool,
    show: Option<String>,
) -> Markup {
    let path = format!("/akun/{}", account.key());
    let helpdesk = person.role.is_helpdesk();
    layout(
        &account.full_name,
        Some(person),
        html! {
            table {
                tr { th { "Alamat" } td id="alamat" { (account.email) } }
                tr { th { "Peran" } td { (account.role.words()) } }
                tr { th { "Sekolah" } td { a href={ "/sekolah/" (account.npsn) } { (account.npsn) } } }
                tr { th { "Keadaan" } td { (state_words(account, signed_in)) } }
            }
            @if let Some(show) = show { h2 { "Rincian (show)" } pre { (show) } }
            h2 { "Atur ulang sandi" }
            form method="post" action={ (path) "/reset" } {
                (csrf(person))
                @if helpdesk {
                    label { "Tanggal lahir yang disebutkan pemilik akun " input type="date" name="birth_date" required; }
                    (ticket_field())
                } @else {
                    p { "Sandi pertama baru dibuat dan ditampilkan sekali. Pemilik akun harus menggantinya saat masuk." }
                }
                button type="submit" id="reset" { "Atur ulang sandi" }
            }
            h2 { "Perbaiki akun" }
            p { small { "Membandingkan akun di Google dengan data Dapodik dan memperbaiki perbedaannya." } }
            form method="post" action={ (path) "/perbaiki" } {
                (csrf(person))
                @if helpdesk { (ticket_field()) }
                button type="submit" id="perbaiki" { "Perbaiki" }
            }
            @if helpdesk {
                h2 { "Lepaskan dari karantina" }
                form method="post" action={ (path) "/lepas" } {
                    (csrf(person)) (ticket_field())
                    button type="submit" { "Lepaskan" }
                }
            }
            @if person.role.may_suspend() {
                h2 { "Pelanggaran ketentuan" }
                @if matches!(account.state, DesiredState::Suspended { .. }) {
                    form method="post" action={ (path) "/pulihkan" } {
                        (csrf(person)) (ticket_field())
                        button type="submit" { "Pulihkan akun" }
                    }
                } @else {
                    form method="post" action={ (path) "/tangguhkan" } {
                        (csrf(person)) (ticket_field())
                        label { "Alasan " input type="text" name="reason" required maxlength="200"; }
                        button.danger type="submit" { "Tangguhkan akun" }
                    }
                }
            }
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    ticket: String,
    #[serde(default)]
    birth_date: String,
    #[serde(default)]
    reason: String,
}

/// The checks every action makes: the account and the right to act on it, the CSRF
/// token, a ticket from the helpdesk.
async fn action<'f>(
    console: &Arc<Console>,
    person: &Person,
    key: &str,
    form: &'f ActionForm,
) -> Result<(Account, Option<&'f str>), Response> {
    let account = allowed(console, person, key).await?;
    person.check_csrf(&form.csrf)?;
    if !person.role.is_helpdesk() {
        return Ok((account, None));
    }
    match ticket(&form.ticket) {
        Some(ticket) => Ok((account, Some(ticket))),
        None => Err(pages::message(
            StatusCode::BAD_REQUEST,
            "Nomor tiket diperlukan",
            Some(person),
            "error",
            "Tulis nomor tiket (huruf, angka, - _ / # .), lalu coba lagi.",
        )),
    }
}

/// `POST /akun/{key}/reset`.
pub async fn reset(
    person: Person,
    State(console): State<Arc<Console>>,
    Path(key): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let (account, ticket) = match action(&console, &person, &key, &form).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let identity = if person.role.vouches_for(&account) {
        Identity::SchoolOperator
    } else {
        match jiff::civil::Date::strptime("%Y-%m-%d", form.birth_date.trim()) {
            Ok(date) => Identity::BirthDate(date),
            Err(_) => {
                return pages::message(
                    StatusCode::BAD_REQUEST,
                    "Tanggal lahir diperlukan",
                    Some(&person),
                    "error",
                    "Tulis tanggal lahir pemilik akun (TTTT-BB-HH), lalu coba lagi.",
                );
            }
        }
    };
    if let Err(limited) = console.allow(&person, Some(Kind::Reset)) {
        return limited;
    }
    let actor = person.actor(ticket);
    let store = console.daemon.store();
    let client = console.daemon.client.clone();
    let done = credentials::reset(&store, &client, &account, identity, &actor).await;
    let secret = match done {
        Ok(secret) => secret,
        Err(e) => {
            if matches!(
                e,
                ResetError::BirthDate { .. } | ResetError::TooManyChecks { .. }
            ) {
                count(&counters().refusals);
            }
            tracing::warn!(email = %person.email, account = %account.key(), error = %e, "console: reset not made");
            return pages::message(
                StatusCode::CONFLICT,
                "Sandi tidak diatur ulang",
                Some(&person),
                "error",
                &e.to_string(),
            );
        }
    };
    count(&counters().resets);
    tracing::info!(email = %person.email, address = %person.address, account = %account.key(), "console: password reset");
    layout(
        "Sandi pertama baru",
        Some(&person),
        html! {
            p.ok { "Sandi akun " strong { (account.email) } " telah diatur ulang. Sampaikan sandi ini hanya kepada pemiliknya; halaman ini tidak dapat dibuka lagi." }
            p { span.secret id="sandi" { (secret.expose()) } }
            p { "Pemilik akun harus mengganti sandi ini saat pertama kali masuk." }
            p { a href={ "/akun/" (account.key()) } { "Kembali ke akun" } }
        },
    )
    .into_response()
}

/// Runs an operator command on the account for the console and shows what it said.
async fn run_command(
    console: &Arc<Console>,
    person: &Person,
    account: &Account,
    title: &str,
    argv: Vec<String>,
    ticket: Option<&str>,
) -> Response {
    let actor = person.actor(ticket);
    let ran = console
        .act(move |c| crate::cli::control::run_for_console(&c.daemon, argv, actor))
        .await;
    tracing::info!(email = %person.email, address = %person.address, account = %account.key(), ticket, code = ran.code, "console: {title}");
    let (class, status) = match ran.code {
        0 => ("ok", "Selesai."),
        3 => ("note", "Sebagian menunggu: lihat rinciannya."),
        _ => ("error", "Tidak berhasil: lihat rinciannya."),
    };
    layout(
        title,
        Some(person),
        html! {
            p class=(class) { (status) }
            pre id="hasil" { (ran.out) (ran.err) }
            p { a href={ "/akun/" (account.key()) } { "Kembali ke akun" } }
        },
    )
    .into_response()
}

/// A shell command the console runs on one account.
#[derive(Debug, Clone, Copy)]
enum Asked {
    Repair,
    Release,
    Suspend,
    Reinstate,
}

impl Asked {
    /// Whether `role` may ask it (beside acting on the account at all).
    fn allowed(self, role: &super::access::Role) -> bool {
        match self {
            Asked::Repair => true,
            Asked::Release => role.is_helpdesk(),
            Asked::Suspend | Asked::Reinstate => role.may_suspend(),
        }
    }

    fn title(self) -> &'static str {
        match self {
            Asked::Repair => "Perbaikan akun",
            Asked::Release => "Lepas karantina",
            Asked::Suspend => "Penangguhan akun",
            Asked::Reinstate => "Pemulihan akun",
        }
    }

    /// The command line, from checked values only; `None` when the form lacks a reason.
    fn argv(self, account: &Account, form: &ActionForm) -> Option<Vec<String>> {
        let key = account.key().to_string();
        Some(match self {
            Asked::Repair => vec!["resync".into(), key],
            Asked::Release => vec!["release".into(), key],
            Asked::Reinstate => vec!["reinstate".into(), key],
            Asked::Suspend => {
                let reason: String = form.reason.trim().chars().take(200).collect();
                if reason.is_empty() {
                    return None;
                }
                // `--reason=` keeps the text a value whatever it starts with.
                vec!["suspend".into(), key, format!("--reason={reason}")]
            }
        })
    }
}

/// Checks the right, the account, the token and the ticket, then runs the command.
async fn ask(
    asked: Asked,
    person: Person,
    console: Arc<Console>,
    key: String,
    form: ActionForm,
) -> Response {
    if !asked.allowed(&person.role) {
        return person.refuse(asked.title());
    }
    let (account, ticket) = match action(&console, &person, &key, &form).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let Some(argv) = asked.argv(&account, &form) else {
        return pages::message(
            StatusCode::BAD_REQUEST,
            "Alasan diperlukan",
            Some(&person),
            "error",
            "Tulis alasan penangguhan, lalu coba lagi.",
        );
    };
    if let Err(limited) = console.allow(&person, None) {
        return limited;
    }
    if matches!(asked, Asked::Repair) {
        count(&counters().repairs);
    }
    run_command(&console, &person, &account, asked.title(), argv, ticket).await
}

/// `POST /akun/{key}/perbaiki`: the repair `resync` makes.
pub async fn repair(
    person: Person,
    State(console): State<Arc<Console>>,
    Path(key): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    ask(Asked::Repair, person, console, key, form).await
}

/// `POST /akun/{key}/lepas`: releases the account from quarantine (helpdesk).
pub async fn release(
    person: Person,
    State(console): State<Arc<Console>>,
    Path(key): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    ask(Asked::Release, person, console, key, form).await
}

/// `POST /akun/{key}/tangguhkan`: suspends for a terms violation (administrators).
pub async fn suspend(
    person: Person,
    State(console): State<Arc<Console>>,
    Path(key): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    ask(Asked::Suspend, person, console, key, form).await
}

/// `POST /akun/{key}/pulihkan`: reinstates (administrators).
pub async fn reinstate(
    person: Person,
    State(console): State<Arc<Console>>,
    Path(key): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    ask(Asked::Reinstate, person, console, key, form).await
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    npsn: String,
}

/// The accounts a helpdesk search names: an address, an account key, a NISN / NIK /
/// NUPTK, or a part of a name within a school.
fn find(console: &Console, q: &str, npsn: &str) -> Result<Vec<Account>, crate::store::StoreError> {
    let store = console.daemon.store();
    let q = q.trim();
    if q.contains('@') {
        return Ok(store.account_by_email(q)?.into_iter().collect());
    }
    if let Some(key) = AccountKey::parse(q) {
        return Ok(store.account(&key)?.into_iter().collect());
    }
    if !q.is_empty() && q.bytes().all(|b| b.is_ascii_digit()) {
        let mut found = Vec::new();
        for t in IdType::ALL
            .iter()
            .copied()
            .filter(|t| t.digits() == q.len())
        {
            found.extend(store.accounts_of_person(t, q)?);
        }
        return Ok(found);
    }
    if !is_npsn(npsn) || q.is_empty() {
        return Ok(Vec::new());
    }
    let wanted = q.to_lowercase();
    let mut found = Vec::new();
    for key in store.school_members(npsn)? {
        if let Some(account) = store.account(&key)?
            && account.full_name.to_lowercase().contains(&wanted)
        {
            found.push(account);
        }
    }
    Ok(found)
}

/// `GET /bantuan`: the helpdesk's search.
pub async fn search(
    person: Person,
    State(console): State<Arc<Console>>,
    Query(query): Query<SearchQuery>,
) -> Response {
    if !person.role.is_helpdesk() {
        return person.refuse("the helpdesk's search");
    }
    let (q, npsn) = (query.q.clone(), query.npsn.clone());
    let found = if q.trim().is_empty() {
        Ok(Vec::new())
    } else {
        console.blocking(move |c| find(c, &q, &npsn)).await
    };
    let found = match found {
        Ok(found) => found,
        Err(e) => return server_error(&person, &e),
    };
    layout(
        "Cari akun",
        Some(&person),
        html! {
            form method="get" action="/bantuan" {
                label { "Alamat, NISN, NUPTK, NIK, atau nama " input type="text" name="q" value=(query.q) required; }
                label { "NPSN (untuk mencari dengan nama) " input type="text" name="npsn" value=(query.npsn) inputmode="numeric" maxlength="8"; }
                button type="submit" { "Cari" }
            }
            @if !query.q.trim().is_empty() {
                h2 { (found.len()) " akun" }
                table { tr { th { "Nama" } th { "Alamat" } th { "Peran" } th { "Sekolah" } }
                    @for a in &found {
                        tr { td { a href={ "/akun/" (a.key()) } { (a.full_name) } } td { (a.email) } td { (a.role.words()) } td { (a.npsn) } }
                    }
                }
            }
        },
    )
    .into_response()
}
