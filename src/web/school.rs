//! A school's pages for its operator (and the helpdesk): the figures, every account, the
//! accounts never signed into, those retiring with their day and why; and the sheet of
//! first passwords, behind a confirmation step.

use super::limits::Kind;
use super::pages::{self, csrf, layout};
use super::session::Person;
use super::{Console, Refusal, What, count};
use crate::access;
use crate::directory::model::{Account, DesiredState};
use axum::extract::{Form, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use std::sync::Arc;

/// One account as the school's page lists it.
pub struct Row {
    pub account: Account,
    pub signed_in: bool,
    /// For a retiring account: the day it is suspended, and why (from `show`'s words).
    pub retiring: Option<(jiff::civil::Date, String)>,
}

/// Whether `npsn` looks like one (8 digits): anything else is not a school's page.
pub fn is_npsn(npsn: &str) -> bool {
    npsn.len() == 8 && npsn.bytes().all(|b| b.is_ascii_digit())
}

/// The school's accounts, by role then name.
fn rows(console: &Console, npsn: &str) -> Result<Vec<Row>, crate::store::StoreError> {
    let store = console.daemon.store();
    let config = console.daemon.config();
    let today = jiff::Timestamp::now()
        .to_zoned(config.display.zone())
        .date();
    let mut rows = Vec::new();
    for key in store.school_members(npsn)? {
        let Some(account) = store.account(&key)? else {
            continue;
        };
        let signed_in = access::of(&store, &key)?.is_some_and(|a| a.signed_in());
        let retiring = match account.state {
            DesiredState::Retiring { since } => {
                let day = crate::planner::suspension_day(since, config.lifecycle.grace_days);
                let why = crate::cli::inspect::retirement(&store, &config, &account, today)
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                Some((day, why))
            }
            _ => None,
        };
        rows.push(Row {
            account,
            signed_in,
            retiring,
        });
    }
    rows.sort_by(|a, b| {
        (a.account.role as u8, &a.account.full_name)
            .cmp(&(b.account.role as u8, &b.account.full_name))
    });
    Ok(rows)
}

/// The state of an account in words.
pub fn state_words(account: &Account, signed_in: bool) -> &'static str {
    match (&account.state, signed_in) {
        (DesiredState::Active, true) => "aktif, sudah pernah masuk",
        (DesiredState::Active, false) => "aktif, belum pernah masuk",
        (DesiredState::Retiring { .. }, _) => "akan dinonaktifkan",
        (DesiredState::Suspended { .. }, _) => "ditangguhkan",
    }
}

fn account_link(account: &Account) -> Markup {
    html! { a href={ "/akun/" (account.key()) } { (account.full_name) } }
}

fn school_page(person: &Person, npsn: &str, rows: &[Row]) -> Markup {
    let active = rows
        .iter()
        .filter(|r| r.account.state == DesiredState::Active);
    let signed_in = active.clone().filter(|r| r.signed_in).count();
    let never: Vec<&Row> = active.filter(|r| !r.signed_in).collect();
    let mut retiring: Vec<&Row> = rows.iter().filter(|r| r.retiring.is_some()).collect();
    retiring.sort_by_key(|r| r.retiring.as_ref().map(|(day, _)| *day));
    let suspended = rows
        .iter()
        .filter(|r| matches!(r.account.state, DesiredState::Suspended { .. }))
        .count();
    layout(
        &format!("Sekolah {npsn}"),
        Some(person),
        html! {
            div.figures {
                div { b { (rows.len()) } "akun" }
                div { b { (signed_in) } "sudah masuk" }
                div { b { (never.len()) } "belum pernah masuk" }
                div { b { (retiring.len()) } "akan dinonaktifkan" }
                div { b { (suspended) } "ditangguhkan" }
            }
            @if person.role.may_take_sheet(npsn) {
                p { a href={ "/sekolah/" (npsn) "/lembar" } id="lembar" { "Unduh lembar akun dan sandi pertama" } }
            }
            h2 { "Belum pernah masuk (" (never.len()) ")" }
            @if never.is_empty() { p { "Semua akun aktif sudah pernah masuk." } }
            @else {
                table { tr { th { "Nama" } th { "Peran" } th { "Alamat" } }
                    @for row in &never { tr { td { (account_link(&row.account)) } td { (row.account.role.words()) } td { (row.account.email) } } }
                }
            }
            h2 { "Akan dinonaktifkan (" (retiring.len()) ")" }
            @if retiring.is_empty() { p { "Tidak ada." } }
            @else {
                table { tr { th { "Nama" } th { "Tanggal" } th { "Alasan" } }
                    @for row in &retiring {
                        @if let Some((day, why)) = &row.retiring {
                            tr { td { (account_link(&row.account)) } td { (day) } td { small { (why) } } }
                        }
                    }
                }
            }
            h2 { "Semua akun (" (rows.len()) ")" }
            table id="akun" { tr { th { "Nama" } th { "Peran" } th { "Alamat" } th { "Keadaan" } }
                @for row in rows {
                    tr { td { (account_link(&row.account)) } td { (row.account.role.words()) } td { (row.account.email) } td { (state_words(&row.account, row.signed_in)) } }
                }
            }
        },
    )
}

/// `GET /sekolah/{npsn}`.
pub async fn page(
    person: Person,
    State(console): State<Arc<Console>>,
    Path(npsn): Path<String>,
) -> Response {
    if !is_npsn(&npsn) || !person.role.may_see_school(&npsn) {
        return person.refuse(&format!("the pages of school {npsn:?}"));
    }
    let school = npsn.clone();
    match console.blocking(move |c| rows(c, &school)).await {
        Ok(rows) => school_page(&person, &npsn, &rows).into_response(),
        Err(e) => Refusal::failed(&person.email, &e).page(Some(&person)),
    }
}

/// `GET /sekolah/{npsn}/lembar`: what the sheet does, and the confirmation.
pub async fn sheet_form(person: Person, Path(npsn): Path<String>) -> Response {
    if !is_npsn(&npsn) || !person.role.may_take_sheet(&npsn) {
        return person.refuse(&format!("the sheet form of school {npsn:?}"));
    }
    layout(
        "Lembar akun dan sandi pertama",
        Some(&person),
        html! {
            p { "Lembar ini berisi alamat akun belajar.id setiap orang di sekolah " (npsn) ". Akun yang belum pernah masuk mendapat sandi pertama baru, yang harus diganti saat pertama kali masuk. Akun yang sudah pernah masuk tidak diubah." }
            p.note { "Simpan lembar ini dengan aman dan bagikan setiap kartu hanya kepada pemiliknya. Sandi pertama hanya ditampilkan sekali." }
            form method="post" action={ "/sekolah/" (npsn) "/lembar" } {
                (csrf(&person))
                fieldset {
                    label { "Bentuk " select name="format" { option value="html" { "Kartu untuk dicetak (HTML)" } option value="csv" { "Tabel (CSV)" } } }
                    label { "Kelompok " select name="group" { option value="" { "Semua" } option value="student" { "Peserta didik" } option value="teacher" { "Pendidik" } option value="admin" { "Tenaga kependidikan, operator, kepala sekolah" } } }
                    label { input type="checkbox" name="reissue" value="all"; " Terbitkan ulang sandi pertama bagi akun yang sudah pernah menerima lembar tetapi belum pernah masuk (lembar hilang)" }
                    label { input type="checkbox" name="confirm" value="yes" required; " Saya mengerti bahwa sandi pertama akan dibuat dan lembar ini harus dijaga kerahasiaannya" }
                }
                button type="submit" id="unduh" { "Buat dan unduh lembar" }
            }
        },
    )
    .into_response()
}

#[derive(Debug, Deserialize)]
pub struct SheetForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    reissue: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /sekolah/{npsn}/lembar`: makes the sheet and sends it as a download.
pub async fn sheet(
    person: Person,
    State(console): State<Arc<Console>>,
    Path(npsn): Path<String>,
    Form(form): Form<SheetForm>,
) -> Response {
    if !is_npsn(&npsn) || !person.role.may_take_sheet(&npsn) {
        return person.refuse(&format!("the sheet of school {npsn:?}"));
    }
    if let Err(refused) = person.check_csrf(&form.csrf) {
        return refused;
    }
    if form.confirm != "yes" {
        return pages::message(
            StatusCode::BAD_REQUEST,
            "Belum dikonfirmasi",
            Some(&person),
            "error",
            "Centang konfirmasi dahulu, lalu buat lembar lagi.",
        );
    }
    if let Err(limited) = console.allow(&person, Some(Kind::Sheet)).await {
        return limited.page(Some(&person));
    }
    let format = if form.format == "csv" { "csv" } else { "html" };
    let name = format!("akun-belajar-{npsn}.{format}");
    let mut argv = vec![
        "credentials".to_owned(),
        "--school".into(),
        npsn.clone(),
        "--format".into(),
        format.into(),
        "--out".into(),
        name.clone(),
    ];
    if let Some(group) = ["student", "teacher", "admin"]
        .into_iter()
        .find(|g| *g == form.group)
    {
        argv.extend(["--group".into(), group.into()]);
    }
    if form.reissue == "all" {
        argv.extend(["--reissue".into(), "all".into()]);
    }
    let actor = person.actor(None);
    let ran = console
        .act(move |c| crate::cli::control::run_for_console(&c.daemon, argv, actor))
        .await;
    let Some((_, contents)) = ran.files.into_iter().next() else {
        tracing::warn!(email = %person.email, npsn, code = ran.code, "console: no sheet was made");
        return pages::message(
            StatusCode::CONFLICT,
            "Lembar tidak dibuat",
            Some(&person),
            "error",
            &format!("Lembar tidak dapat dibuat: {}", ran.err.trim()),
        );
    };
    count(What::Sheet, person.who());
    tracing::info!(email = %person.email, address = %person.address, npsn, "console: sheet downloaded");
    let kind = if format == "csv" {
        "text/csv; charset=utf-8"
    } else {
        "text/html; charset=utf-8"
    };
    (
        [
            (header::CONTENT_TYPE, kind.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        contents,
    )
        .into_response()
}
