//! Lupa kata sandi (`/lupa-sandi`): the account's address and the birth date Dapodik
//! records → a one-time code mailed to the personal email Dapodik records; the code →
//! a new first password, set in Google and shown once (Google asks for a new one at the
//! first sign-in). Where no personal email is recorded, the page sends the person to
//! their school's operator, who can reset in the console.

use super::codes::{self, Refused};
use super::{Public, Visitor, account_limit_key, birth_date, count, record, steady};
use crate::credentials::{self, Identity, ResetError};
use crate::directory::model::{Account, DesiredState};
use crate::notices::letter::Letter;
use crate::password::Secret;
use crate::web::Console;
use crate::web::pages::layout;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use maud::{Markup, html};
use serde::Deserialize;
use std::sync::Arc;

/// What the forms send: the address and birth date, or the address and the code.
#[derive(Debug, Default, Deserialize)]
pub struct Asked {
    #[serde(default)]
    token: String,
    #[serde(default)]
    alamat: String,
    #[serde(default)]
    tanggal_lahir: String,
    #[serde(default)]
    kode: String,
}

impl Asked {
    /// The address as compared (lower case), or what is wrong with it.
    fn address(&self) -> Result<String, &'static str> {
        let address = self.alamat.trim().to_ascii_lowercase();
        let valid = address.len() <= 254
            && address
                .split_once('@')
                .is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.'));
        if !valid {
            return Err("Tulis alamat akun belajar.id Anda lengkap, misalnya nama@sd.belajar.id.");
        }
        Ok(address)
    }

    /// The birth date given, or what is wrong with it.
    fn birth_date(&self) -> Result<jiff::civil::Date, &'static str> {
        birth_date(&self.tanggal_lahir)
            .ok_or("Tulis tanggal lahir Anda (hari-bulan-tahun), lalu coba lagi.")
    }
}

/// What a matched request for a code leads to.
enum Said {
    /// Nobody has that address and birth date (one answer for every reason).
    NoMatch,
    /// The code went to the personal email (shown masked).
    Sent {
        masked: String,
    },
    NoPersonalEmail,
    /// Suspended here or in Google at the end of its grace, or not in Google yet.
    CannotReset(&'static str),
}

/// `GET /lupa-sandi`.
pub async fn form(visitor: Visitor, State(console): State<Arc<Console>>) -> Response {
    let page = ask_page(&console, &visitor, &Asked::default(), html! {});
    visitor.page(page)
}

/// `POST /lupa-sandi`: a code for the address whose birth date is the one given.
pub async fn ask(
    visitor: Visitor,
    State(console): State<Arc<Console>>,
    Form(asked): Form<Asked>,
) -> Response {
    if console.relay.is_none() {
        let page = ask_page(&console, &visitor, &asked, html! {});
        return visitor.page(page);
    }
    steady(&console, async {
        let (address, date) = match checked(&console, &visitor, &asked, Asked::birth_date).await {
            Ok(valid) => valid,
            Err(refused) => return refused,
        };
        let said = console
            .blocking(move |c| -> Result<_, crate::store::StoreError> {
                let store = c.daemon.store();
                let Some(account) = store
                    .account_by_email(&address)?
                    .filter(|a| a.birth_date == Some(date))
                else {
                    return Ok((Said::NoMatch, None));
                };
                if let Some(why) = cannot_reset(c, &account) {
                    return Ok((Said::CannotReset(why), Some((account, None))));
                }
                let Some(email) = account.personal_email.clone().filter(|e| !e.trim().is_empty())
                else {
                    return Ok((Said::NoPersonalEmail, Some((account, None))));
                };
                let code = c.codes.issue(&store, &account.key().to_string(), Timestamp::now())?;
                let email = email.trim().to_owned();
                let said = Said::Sent { masked: masked(&email) };
                Ok((said, Some((account, Some((email, code))))))
            })
            .await;
        let (said, matched) = match said {
            Ok(said) => said,
            Err(error) => return crate::web::Refusal::failed("-", &error).page(None),
        };
        if let (Said::Sent { masked }, Some((account, _))) = (&said, &matched) {
            let line = format!(
                "a reset code mailed to the personal email Dapodik records ({masked}), asked by {}",
                visitor.actor("lupa-sandi")
            );
            let subject = vec![account.key().to_string()];
            if let Err(error) = record(&console, subject, "password", line).await {
                return crate::web::Refusal::failed("-", &error).page(None);
            }
        }
        if let Some((account, mail)) = matched {
            count(Public::Match);
            tracing::info!(address = %visitor.address, account = %account.key(), "lupa-sandi: found");
            if let Some((email, code)) = mail {
                count(Public::Code);
                mail_code(&console, account, email, code);
            }
        }
        answer_page(&console, &visitor, &asked, &said).into_response()
    })
    .await
}

/// Why `account` cannot get a new password here, in words, if it cannot.
fn cannot_reset(console: &Console, account: &Account) -> Option<&'static str> {
    match account.state {
        DesiredState::Suspended { .. } => Some(
            "Akun ini ditangguhkan karena pelanggaran ketentuan penggunaan: sandinya tidak dapat diatur ulang. Hanya helpdesk yang dapat mencabut penangguhan itu; minta operator sekolah Anda menghubungi helpdesk.",
        ),
        DesiredState::Retiring { since } => {
            let grace = console.daemon.config().lifecycle.grace_days;
            (crate::planner::suspension_day(since, grace) <= crate::reconciler::today()).then_some(
                "Akun ini sudah dinonaktifkan karena tidak lagi tercatat di Dapodik sekolahnya. Lihat Cek Akun untuk keterangannya.",
            )
        }
        DesiredState::Active => account.google.is_none().then_some(
            "Akun ini belum dibuat di Google. Lihat Cek Akun untuk mengetahui kapan akun dibuat.",
        ),
    }
}

/// Hands the code's mail to the relay, in the background (the answer does not wait for
/// the relay: its time would tell a match). A failure is logged; the person asks again.
fn mail_code(console: &Arc<Console>, account: Account, to: String, code: Secret) {
    let Some(relay) = console.relay.clone() else {
        return;
    };
    let letter = letter(&account, &code, console.codes.minutes());
    let id = format!("kode-{}@belajar-sync", super::random_token());
    tokio::spawn(async move {
        match relay.send(&[to], &letter, &id).await {
            Ok(()) => {
                tracing::info!(account = %account.key(), "lupa-sandi: the code's mail handed to the relay")
            }
            Err(e) => {
                count(Public::MailFailed);
                tracing::warn!(account = %account.key(), reason = %e.reason, "lupa-sandi: the code's mail was not handed over");
            }
        }
    });
}

/// The mail with the code.
fn letter(account: &Account, code: &Secret, minutes: i64) -> Letter {
    Letter {
        subject: "Kode untuk mengatur ulang sandi akun belajar.id".into(),
        body: format!(
            "Yth. {name},\n\
             \n\
             Seseorang (semoga Anda sendiri) meminta sandi baru untuk akun belajar.id \
             {email}. Kode Anda:\n\
             \n\
             {code}\n\
             \n\
             Masukkan kode ini di halaman Lupa kata sandi dalam {minutes} menit. Kode hanya \
             berlaku sekali.\n\
             \n\
             Jangan berikan kode ini kepada siapa pun: operator sekolah dan helpdesk tidak \
             pernah memintanya. Jika Anda tidak meminta sandi baru, abaikan email ini; sandi \
             Anda tidak berubah.\n",
            name = account.full_name,
            email = account.email,
            code = code.expose(),
        ),
    }
}

/// `s***@gmail.com`: enough for the person to know which of their mailboxes to open.
fn masked(email: &str) -> String {
    match email.split_once('@') {
        Some((user, domain)) => {
            let first: String = user.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// The form's token, the address and what `also` reads from the form (said wrong before
/// any try is taken), the limits (one try of the client address's and of the account's
/// allowance): the address and what `also` read, or the answer that refuses it.
async fn checked<T>(
    console: &Arc<Console>,
    visitor: &Visitor,
    asked: &Asked,
    also: impl FnOnce(&Asked) -> Result<T, &'static str>,
) -> Result<(String, T), Response> {
    visitor.check_form(&asked.token)?;
    let valid = asked
        .address()
        .and_then(|address| Ok((address, also(asked)?)));
    let (address, also) = valid.map_err(|wrong| {
        let said = html! { p.error { (wrong) } };
        (
            StatusCode::BAD_REQUEST,
            ask_page(console, visitor, asked, said),
        )
            .into_response()
    })?;
    let limit = account_limit_key("lupa", &[&address]);
    console.take_public(visitor.address, limit).await?;
    Ok((address, also))
}

/// `POST /lupa-sandi/kode`: the code → a new first password, shown once.
pub async fn confirm(
    visitor: Visitor,
    State(console): State<Arc<Console>>,
    Form(asked): Form<Asked>,
) -> Response {
    let redeemed = steady(&console, async {
        let (address, ()) = checked(&console, &visitor, &asked, |_| Ok(())).await?;
        let code: String = asked.kode.chars().filter(|c| !c.is_whitespace()).collect();
        let found = console
            .blocking(move |c| -> Result<_, crate::store::StoreError> {
                let store = c.daemon.store();
                let account = store.account_by_email(&address)?;
                // No account: a code is judged all the same (it is refused), in the same time.
                let subject = account.as_ref().map_or(address, |a| a.key().to_string());
                let redeemed = c.codes.redeem(&store, &subject, &code, Timestamp::now())?;
                Ok(redeemed.map(|()| account))
            })
            .await
            .map_err(|error| crate::web::Refusal::failed("-", &error).page(None))?;
        let why = match found {
            Ok(Some(account)) => return Ok(account),
            Ok(None) => Refused::NoCode,
            Err(why) => why,
        };
        count(Public::Refused);
        tracing::info!(address = %visitor.address, refused = ?why, "lupa-sandi: a code refused");
        let said = html! {
            p.error id="kode-ditolak" { "Kode salah, sudah dipakai, atau sudah tidak berlaku (" (console.codes.minutes()) " menit). Periksa kode di email Anda, atau minta kode baru." }
        };
        // The form again while the code still counts (a slip of the finger).
        let again = why == Refused::Wrong { void: false };
        Err((StatusCode::CONFLICT, code_page(&visitor, &asked.alamat, said, again)).into_response())
    })
    .await;
    let account = match redeemed {
        Ok(account) => account,
        Err(answer) => return answer,
    };
    let actor = visitor.actor("lupa-sandi");
    let store = console.daemon.store();
    let reset = credentials::reset(
        &store,
        &console.daemon.client,
        &account,
        Identity::MailedCode,
        &actor,
    )
    .await;
    let body = match reset {
        Ok(secret) => {
            count(Public::Reset);
            tracing::info!(address = %visitor.address, account = %account.key(), "lupa-sandi: password reset");
            html! {
                p.ok { "Sandi akun " strong { (account.email) } " telah diatur ulang. Catat sandi ini sekarang: halaman ini tidak dapat dibuka lagi." }
                p { span.secret id="sandi" { (secret.expose()) } }
                p { "Masuklah ke akun Anda dengan sandi ini. Google akan meminta Anda membuat sandi baru yang hanya Anda ketahui." }
            }
        }
        Err(error) => {
            tracing::warn!(account = %account.key(), %error, "lupa-sandi: reset not made");
            let said = match error {
                ResetError::Uncertain | ResetError::Read(_) | ResetError::Write(_) => {
                    "Google tidak dapat dihubungi, sehingga sandi belum diatur ulang. Minta kode baru dan coba lagi beberapa saat lagi."
                }
                _ => {
                    "Sandi akun ini tidak dapat diatur ulang di sini. Minta operator sekolah Anda mengatur ulang sandinya di konsol, atau gunakan Cek Akun untuk melihat keadaan akun Anda."
                }
            };
            html! { p.error id="hasil" { (said) } }
        }
    };
    visitor.page(layout("Lupa kata sandi", None, body))
}

/// The answer to a request for a code.
fn answer_page(console: &Console, visitor: &Visitor, asked: &Asked, said: &Said) -> Markup {
    match said {
        Said::Sent { masked } => code_page(
            visitor,
            &asked.alamat,
            html! {
                p.ok id="terkirim" { "Kode telah dikirim ke email pribadi yang tercatat di Dapodik: " strong { (masked) } ". Kode berlaku " (console.codes.minutes()) " menit. Periksa juga folder spam." }
            },
            true,
        ),
        Said::NoMatch => ask_page(
            console,
            visitor,
            asked,
            html! {
                div.note id="tidak-ditemukan" {
                    p { strong { "Data tidak cocok." } }
                    p { "Periksa kembali alamat akun dan tanggal lahir Anda. Tidak tahu alamat akun Anda? Gunakan " a href="/cek-akun" { "Cek Akun" } ". Jika tetap tidak cocok, minta operator sekolah Anda memeriksa data Anda di Dapodik." }
                }
            },
        ),
        Said::NoPersonalEmail => ask_page(
            console,
            visitor,
            asked,
            html! {
                p.note id="tanpa-email" { "Tidak ada email pribadi yang tercatat di Dapodik untuk akun ini, sehingga kode tidak dapat dikirim. Minta operator sekolah Anda mengatur ulang sandi di konsol, atau meminta agar email pribadi Anda dicatat di Dapodik." }
            },
        ),
        Said::CannotReset(why) => ask_page(
            console,
            visitor,
            asked,
            html! { p.note id="tidak-bisa" { (why) } },
        ),
    }
}

/// The page asking for the code.
fn code_page(visitor: &Visitor, address: &str, said: Markup, form: bool) -> Markup {
    layout(
        "Lupa kata sandi",
        None,
        html! {
            (said)
            @if form {
                form method="post" action="/lupa-sandi/kode" {
                    input type="hidden" name="token" value=(visitor.token);
                    input type="hidden" name="alamat" value=(address.trim());
                    label { "Kode dari email (" (codes::DIGITS) " angka) " input type="text" id="kode" name="kode" inputmode="numeric" autocomplete="one-time-code" maxlength="12" required; }
                    button type="submit" id="kirim-kode" { "Atur ulang sandi" }
                }
            }
            p { a href="/lupa-sandi" { "Minta kode baru" } }
        },
    )
}

/// The page asking for the address and the birth date (or saying to ask the operator,
/// when no mail relay is configured).
fn ask_page(console: &Console, visitor: &Visitor, asked: &Asked, said: Markup) -> Markup {
    layout(
        "Lupa kata sandi",
        None,
        html! {
            (said)
            @if console.relay.is_none() {
                p.note { "Pengaturan ulang sandi sendiri belum tersedia. Minta operator sekolah Anda mengatur ulang sandi Anda di konsol." }
            } @else {
                p { "Kode untuk mengatur ulang sandi dikirim ke email pribadi Anda yang tercatat di Dapodik." }
                form method="post" action="/lupa-sandi" {
                    input type="hidden" name="token" value=(visitor.token);
                    label { "Alamat akun belajar.id " input type="email" id="alamat" name="alamat" value=(asked.alamat) autocomplete="username" required; }
                    label { "Tanggal lahir " input type="date" id="tanggal_lahir" name="tanggal_lahir" value=(asked.tanggal_lahir) required; }
                    button type="submit" id="minta-kode" { "Kirim kode" }
                }
            }
            p { small { "Tidak tahu alamat akun Anda? " a href="/cek-akun" { "Cek Akun" } "." } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_personal_email_is_shown_masked() {
        assert_eq!(masked("siti.aminah@gmail.com"), "s***@gmail.com");
        assert_eq!(masked("garbage"), "***");
    }

    #[test]
    fn the_letter_carries_the_code_and_says_nobody_asks_for_it() {
        let account = Account::student("0012345678", "Siti Aminah", "siti@sd.belajar.id");
        let letter = letter(&account, &Secret::from("12345678".to_owned()), 15);
        assert!(letter.body.contains("\n12345678\n"));
        assert!(letter.body.contains("15 menit"));
        assert!(
            letter.body.contains("tidak \npernah memintanya")
                || letter.body.contains("tidak pernah memintanya")
        );
    }
}
