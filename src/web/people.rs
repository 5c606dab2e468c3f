//! One account's page and what may be done to it: a reset (the school's operator vouches
//! for their person; the helpdesk checks the birth date), a repair (the helpdesk with a
//! ticket), a release from quarantine, and for administrators suspend and reinstate. And
//! the helpdesk's search.

use super::limits::Kind;
use super::pages::{csrf, layout};
use super::school::{is_npsn, state_words};
use super::session::Person;
use super::{Console, Refusal, What, count};
use crate::cli::control::Ran;
use crate::credentials::{self, Identity, ResetError};
use crate::directory::model::{Account, AccountKey, DesiredState, IdType};
use crate::password::Secret;
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use std::sync::Arc;

/// The account a path names, if the person may act on it: 404 for a key that names no
/// account, 403 (and a line in the log) for one of another school.
pub(super) async fn allowed(
    console: &Arc<Console>,
    person: &Person,
    key: &str,
) -> Result<Account, Refusal> {
    let key = AccountKey::parse(key).ok_or(Refusal::NotFound)?;
    let found = console
        .blocking(move |c| c.daemon.store().account(&key))
        .await
        .map_err(|e| Refusal::failed(&person.email, &e))?
        .ok_or(Refusal::NotFound)?;
    if !person.role.may_act_on(&found) {
        return Err(person.refusal(&format!("account {}", found.key())));
    }
    Ok(found)
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
    match look(&console, &person, &key).await {
        Ok(seen) => account_page(&person, &seen).into_response(),
        Err(refused) => refused.page(Some(&person)),
    }
}

/// What is shown of one account: to the helpdesk also what `show` says (Google's side,
/// the history, what is held).
pub(super) struct Seen {
    pub account: Account,
    pub signed_in: bool,
    pub show: Option<String>,
}

pub(super) async fn look(
    console: &Arc<Console>,
    person: &Person,
    key: &str,
) -> Result<Seen, Refusal> {
    let account = allowed(console, person, key).await?;
    let subject = account.key();
    let signed_in = console
        .blocking(move |c| {
            crate::access::of(&c.daemon.store(), &subject)
                .ok()
                .flatten()
                .is_some_and(|a| a.signed_in())
        })
        .await;
    let show = if person.role.is_helpdesk() {
        let argv = vec![
            "show".to_owned(),
            account.key().to_string(),
            "--hide-birth-date".into(),
        ];
        let actor = person.actor(None);
        let ran = console
            .act(move |c| crate::cli::control::run_for_console(&c.daemon, argv, actor))
            .await;
        Some(ran.out)
    } else {
        None
    };
    Ok(Seen {
        account,
        signed_in,
        show,
    })
}

fn account_page(person: &Person, seen: &Seen) -> Markup {
    let Seen {
        account,
        signed_in,
        show,
    } = seen;
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
                tr { th { "Keadaan" } td { (state_words(account, *signed_in)) } }
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

/// What an action's form (or the API's JSON) gives: the ticket (the helpdesk's), the birth
/// date the person said (a helpdesk reset), the reason (a suspension).
#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) ticket: String,
    #[serde(default)]
    pub(super) birth_date: String,
    #[serde(default)]
    pub(super) reason: String,
}

/// The ticket the helpdesk must give with every action (`None` for an operator).
fn ticket_of<'f>(person: &Person, form: &'f ActionForm) -> Result<Option<&'f str>, Refusal> {
    if !person.role.is_helpdesk() {
        return Ok(None);
    }
    ticket(&form.ticket).map(Some).ok_or(Refusal::BadRequest {
        title: "Nomor tiket diperlukan",
        detail: "Tulis nomor tiket (huruf, angka, - _ / # .), lalu coba lagi.",
    })
}

/// Resets the password of the account `key` names: the checks (the right, the ticket,
/// the birth date unless the person's own operator asks, the limits), then the reset.
pub(super) async fn reset_password(
    console: &Arc<Console>,
    person: &Person,
    key: &str,
    form: &ActionForm,
) -> Result<(Account, Secret), Refusal> {
    let account = allowed(console, person, key).await?;
    let ticket = ticket_of(person, form)?;
    let identity = if person.role.vouches_for(&account) {
        Identity::SchoolOperator
    } else {
        let date =
            jiff::civil::Date::strptime("%Y-%m-%d", form.birth_date.trim()).map_err(|_| {
                Refusal::BadRequest {
                    title: "Tanggal lahir diperlukan",
                    detail: "Tulis tanggal lahir pemilik akun (TTTT-BB-HH), lalu coba lagi.",
                }
            })?;
        Identity::BirthDate(date)
    };
    console.allow(person, Some(Kind::Reset)).await?;
    let actor = person.actor(ticket);
    let store = console.daemon.store();
    let client = console.daemon.client.clone();
    match credentials::reset(&store, &client, &account, identity, &actor).await {
        Ok(secret) => {
            count(What::Reset, person.who());
            tracing::info!(email = %person.email, address = %person.address, token = person.token, account = %account.key(), ticket, "console: password reset");
            Ok((account, secret))
        }
        Err(e) => {
            if matches!(
                e,
                ResetError::BirthDate { .. } | ResetError::TooManyChecks { .. }
            ) {
                count(What::Refused, person.who());
            }
            tracing::warn!(email = %person.email, account = %account.key(), error = %e, "console: reset not made");
            Err(Refusal::NotDone {
                title: "Sandi tidak diatur ulang",
                detail: e.to_string(),
            })
        }
    }
}

/// `POST /akun/{key}/reset`.
pub async fn reset(
    person: Person,
    State(console): State<Arc<Console>>,
    Path(key): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Err(refused) = person.check_csrf(&form.csrf) {
        return refused;
    }
    let (account, secret) = match reset_password(&console, &person, &key, &form).await {
        Ok(done) => done,
        Err(refused) => return refused.page(Some(&person)),
    };
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

/// A shell command the console runs on one account.
#[derive(Debug, Clone, Copy)]
pub(super) enum Asked {
    Repair,
    Release,
    Suspend,
    Reinstate,
}

impl Asked {
    /// The action a form of the account's page posts to (the last part of its path).
    fn from_page(action: &str) -> Option<Asked> {
        Some(match action {
            "perbaiki" => Asked::Repair,
            "lepas" => Asked::Release,
            "tangguhkan" => Asked::Suspend,
            "pulihkan" => Asked::Reinstate,
            _ => return None,
        })
    }

    /// Whether `role` may ask it (beside acting on the account at all).
    fn allowed(self, role: &super::access::Role) -> bool {
        match self {
            Asked::Repair => true,
            Asked::Release => role.is_helpdesk(),
            Asked::Suspend | Asked::Reinstate => role.may_suspend(),
        }
    }

    pub(super) fn title(self) -> &'static str {
        match self {
            Asked::Repair => "Perbaikan akun",
            Asked::Release => "Lepas karantina",
            Asked::Suspend => "Penangguhan akun",
            Asked::Reinstate => "Pemulihan akun",
        }
    }

    /// The command line, from checked values only.
    fn argv(self, account: &Account, form: &ActionForm) -> Result<Vec<String>, Refusal> {
        let key = account.key().to_string();
        Ok(match self {
            Asked::Repair => vec!["resync".into(), key],
            Asked::Release => vec!["release".into(), key],
            Asked::Reinstate => vec!["reinstate".into(), key],
            Asked::Suspend => {
                let reason: String = form.reason.trim().chars().take(200).collect();
                if reason.is_empty() {
                    return Err(Refusal::BadRequest {
                        title: "Alasan diperlukan",
                        detail: "Tulis alasan penangguhan, lalu coba lagi.",
                    });
                }
                // `--reason=` keeps the text a value whatever it starts with.
                vec!["suspend".into(), key, format!("--reason={reason}")]
            }
        })
    }
}

/// Checks the right, the account, the ticket and the limit, then runs the command on the
/// account; what it said.
pub(super) async fn run_asked(
    asked: Asked,
    console: &Arc<Console>,
    person: &Person,
    key: &str,
    form: &ActionForm,
) -> Result<(Account, Ran), Refusal> {
    if !asked.allowed(&person.role) {
        return Err(person.refusal(asked.title()));
    }
    let account = allowed(console, person, key).await?;
    let ticket = ticket_of(person, form)?;
    let argv = asked.argv(&account, form)?;
    console.allow(person, None).await?;
    if matches!(asked, Asked::Repair) {
        count(What::Repair, person.who());
    }
    let actor = person.actor(ticket);
    let ran = console
        .act(move |c| crate::cli::control::run_for_console(&c.daemon, argv, actor))
        .await;
    tracing::info!(email = %person.email, address = %person.address, token = person.token, account = %account.key(), ticket, code = ran.code, "console: {}", asked.title());
    Ok((account, ran))
}

/// `POST /akun/{key}/{perbaiki|lepas|tangguhkan|pulihkan}`: the repair `resync` makes, a
/// release from quarantine (helpdesk), a suspension for a terms violation and a
/// reinstatement (administrators); the page of what the command said.
pub async fn act(
    person: Person,
    State(console): State<Arc<Console>>,
    Path((key, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    let Some(asked) = Asked::from_page(&action) else {
        return Refusal::NotFound.page(Some(&person));
    };
    if let Err(refused) = person.check_csrf(&form.csrf) {
        return refused;
    }
    let (account, ran) = match run_asked(asked, &console, &person, &key, &form).await {
        Ok(done) => done,
        Err(refused) => return refused.page(Some(&person)),
    };
    let (class, status) = match ran.code {
        0 => ("ok", "Selesai."),
        3 => ("note", "Sebagian menunggu: lihat rinciannya."),
        _ => ("error", "Tidak berhasil: lihat rinciannya."),
    };
    layout(
        asked.title(),
        Some(&person),
        html! {
            p class=(class) { (status) }
            pre id="hasil" { (ran.out) (ran.err) }
            p { a href={ "/akun/" (account.key()) } { "Kembali ke akun" } }
        },
    )
    .into_response()
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    pub(super) q: String,
    #[serde(default)]
    pub(super) npsn: String,
}

/// The accounts a helpdesk search names: an address, an account key, a NISN / NIK /
/// NUPTK, or a part of a name within a school.
pub(super) fn find(
    console: &Console,
    q: &str,
    npsn: &str,
) -> Result<Vec<Account>, crate::store::StoreError> {
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
        Err(e) => return Refusal::failed(&person.email, &e).page(Some(&person)),
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
