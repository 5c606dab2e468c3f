//! The console's pages, in Bahasa Indonesia: plain HTML that reads on a cheap phone and
//! works without JavaScript. maud escapes every value it is given.

use super::session::Person;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// The one stylesheet (the policy allows no inline style).
const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:0;color:#1d1d1d;background:#fafafa;line-height:1.45}
header{background:#0b5394;color:#fff;padding:.6em 1em;display:flex;flex-wrap:wrap;gap:.5em;align-items:center;justify-content:space-between}
header a{color:#fff}
main{padding:1em;max-width:60em;margin:auto}
h1{font-size:1.35em}h2{font-size:1.1em;margin-top:1.5em}
table{border-collapse:collapse;width:100%;font-size:.93em}
td,th{padding:.3em .4em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
.figures{display:flex;flex-wrap:wrap;gap:.6em}
.figures div{background:#fff;border:1px solid #ddd;padding:.5em .8em;min-width:7em}
.figures b{display:block;font-size:1.4em}
form.inline{display:inline}
fieldset{border:1px solid #ccc;margin:.8em 0;background:#fff}
label{display:block;margin:.4em 0}
input,select,button{font-size:1em;padding:.35em}
button{background:#0b5394;color:#fff;border:0;border-radius:3px;padding:.45em .9em}
button.danger{background:#b3261e}
.note{background:#fff8e1;border-left:4px solid #f9a825;padding:.6em}
.error{background:#fdecea;border-left:4px solid #b3261e;padding:.6em}
.ok{background:#e8f5e9;border-left:4px solid #2e7d32;padding:.6em}
.secret{font-family:monospace;font-size:1.5em;background:#fff;border:2px dashed #0b5394;padding:.4em;display:inline-block}
pre{white-space:pre-wrap;background:#fff;border:1px solid #ddd;padding:.6em;font-size:.85em}
small{color:#555}
";

/// `GET /gaya.css`.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

/// A page of the console around `body`.
pub fn layout(title: &str, person: Option<&Person>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="id" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Konsol Akun belajar.id" }
                link rel="stylesheet" href="/gaya.css";
            }
            body {
                header {
                    a href="/" { strong { "Konsol Akun belajar.id" } }
                    @if let Some(person) = person {
                        span {
                            (person.email) " · " (person.role.words()) " "
                            form.inline method="post" action="/keluar" {
                                input type="hidden" name="csrf" value=(person.csrf);
                                button type="submit" { "Keluar" }
                            }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// The hidden CSRF field of every form.
pub fn csrf(person: &Person) -> Markup {
    html! { input type="hidden" name="csrf" value=(person.csrf); }
}

/// A page saying one thing (`class`: note, error or ok).
pub fn message(
    status: StatusCode,
    title: &str,
    person: Option<&Person>,
    class: &str,
    text: &str,
) -> Response {
    let body = html! {
        p class=(class) { (text) }
        p { a href="/" { "Kembali ke beranda" } }
    };
    (status, layout(title, person, body)).into_response()
}

/// The sign-in page (with the links to the public pages when they are served).
pub fn sign_in(note: Option<&str>, public: bool) -> Markup {
    layout(
        "Masuk",
        None,
        html! {
            p { "Konsol ini untuk operator sekolah, kepala sekolah dan helpdesk program Akun belajar.id." }
            @if let Some(note) = note { p.error { (note) } }
            p { a href="/masuk" id="masuk" { "Masuk dengan akun belajar.id" } }
            p { small { "Anda akan diarahkan ke halaman masuk Google. Gunakan akun belajar.id Anda, bukan akun pribadi." } }
            @if public {
                h2 { "Siswa, guru dan tenaga kependidikan" }
                p { a href="/cek-akun" id="cek-akun" { "Cek Akun" } ": cari akun belajar.id Anda dan lihat keadaannya." }
                p { a href="/lupa-sandi" id="lupa-sandi" { "Lupa kata sandi" } ": atur ulang sandi dengan kode yang dikirim ke email pribadi Anda." }
            }
        },
    )
}

/// Said to someone not signed in (or whose session ended).
pub fn signed_out() -> Markup {
    sign_in(
        Some("Anda belum masuk, atau sesi Anda telah berakhir. Silakan masuk lagi."),
        false,
    )
}

/// What every refusal says (the log says what was refused).
pub const REFUSED: &str = "Anda tidak berhak membuka halaman ini atau melakukan tindakan ini. Operator sekolah hanya dapat mengelola akun sekolahnya sendiri.";

/// 403: the same words whatever was refused (the log says what).
pub fn refused(person: Option<&Person>) -> (StatusCode, Markup) {
    (
        StatusCode::FORBIDDEN,
        layout(
            "Tidak diizinkan",
            person,
            html! {
                p.error id="ditolak" { (REFUSED) }
                p { a href="/" { "Kembali ke beranda" } }
            },
        ),
    )
}

/// Students, teachers and others who signed in: politely, not for them.
pub fn not_for_you(person: &Person) -> Markup {
    layout(
        "Konsol ini bukan untuk Anda",
        Some(person),
        html! {
            p.note { "Terima kasih sudah masuk. Konsol ini hanya untuk operator sekolah, kepala sekolah dan helpdesk. Akun belajar.id Anda dapat langsung digunakan di layanan Google (Gmail, Classroom, Drive)." }
            p { "Jika ada masalah dengan akun Anda, hubungi operator sekolah Anda." }
        },
    )
}

/// 404.
pub async fn not_found() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "Halaman tidak ditemukan",
        None,
        "error",
        "Halaman yang Anda cari tidak ada.",
    )
}
