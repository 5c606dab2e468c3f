//! The public pages, for everyone and without signing in: **Cek Akun** (a person finds
//! their account by the school's NPSN, their name and birth date, learns its state and
//! can ask for its repair: [`cek`]) and **Lupa kata sandi** (a one-time code mailed to the
//! personal email Dapodik records sets a new first password: [`lupa`], [`codes`]).
//!
//! What keeps a stranger from learning who attends a school, or from taking an account:
//! - every question that matched nobody gets one and the same answer, whatever did not
//!   match (the school, the name, the birth date), and every answer leaves no sooner than
//!   `web.public_answer_ms` after the question ([`steady`]): neither the words nor the
//!   time tell a wrong birth date from an unknown name;
//! - tries are limited per client address and per account (a school and a name, or an
//!   address), in the store, so a restart gives nobody a fresh hour; past the allowance
//!   each refused try makes the wait longer ([`super::limits`]). An account's allowance is
//!   keyed by a digest of what was asked, so it is kept whether or not the account exists;
//! - each form carries a token that must match a cookie the page set (another site cannot
//!   post it from a visitor's browser);
//! - no birth date, code or password is written to a log line, and the store keeps codes
//!   only as a keyed digest.

mod cek;
mod codes;
mod history;
mod lupa;

use super::Console;
use super::session;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_extra::extract::SignedCookieJar;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use codes::Codes;
pub use history::History;

/// The routes of the public pages.
pub(super) fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/cek-akun", get(cek::form).post(cek::answer))
        .route("/cek-akun/perbaiki", post(cek::repair))
        .route("/lupa-sandi", get(lupa::form).post(lupa::ask))
        .route("/lupa-sandi/kode", post(lupa::confirm))
}

/// The cookie whose value every public form must carry back.
const FORM_COOKIE: &str = "formulir";
/// How long a public form may be kept open before it is sent.
const FORM_SECONDS: i64 = 2 * 3600;

/// A visitor of a public page: their client address, and the form token of their browser
/// (new when it had none, set by [`Visitor::page`]).
pub(super) struct Visitor {
    pub address: IpAddr,
    /// The token the page's forms carry.
    pub token: String,
    /// The token the browser's cookie holds (none: absent, edited or expired).
    kept: Option<String>,
    jar: SignedCookieJar,
}

impl FromRequestParts<Arc<Console>> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Visitor, Response> {
        let jar = console.cookies(&parts.headers);
        let kept = session::read::<String>(&jar, FORM_COOKIE);
        let token = kept.clone().unwrap_or_else(random_token);
        Ok(Visitor {
            address: session::address_of(parts, console),
            token,
            kept,
            jar,
        })
    }
}

impl Visitor {
    /// The page, setting the form cookie when the browser had none.
    pub fn page(self, page: impl IntoResponse) -> Response {
        if self.kept.is_some() {
            return page.into_response();
        }
        let jar = self
            .jar
            .add(session::cookie(FORM_COOKIE, &self.token, FORM_SECONDS));
        (jar, page).into_response()
    }

    /// Who asked on `page`, for the history: the account's holder, from their address.
    pub fn actor(&self, page: &str) -> String {
        format!("the account's holder ({page}, dari {})", self.address)
    }

    /// Whether `sent` (a form's token) is the one this browser's cookie holds; a form
    /// without it is refused (403, counted, a line in the log).
    pub fn check_form(&self, sent: &str) -> Result<(), Response> {
        let same = self
            .kept
            .as_deref()
            .is_some_and(|kept| session::same_secret(kept, sent));
        if same {
            return Ok(());
        }
        count(Public::Refused);
        tracing::warn!(address = %self.address, "public page: a form without its token (or its cookie) refused");
        Err(super::pages::message(
            axum::http::StatusCode::FORBIDDEN,
            "Formulir kedaluwarsa",
            None,
            "error",
            "Formulir ini sudah kedaluwarsa atau tidak berasal dari halaman ini. Buka halamannya lagi, lalu isi kembali.",
        ))
    }
}

fn random_token() -> String {
    crate::password::digits(32).expose().to_owned()
}

/// Runs `work` and answers no sooner than `web.public_answer_ms` after it began, so that
/// how long the answer took says nothing about whether a person matched.
pub(super) async fn steady<T>(console: &Console, work: impl Future<Output = T>) -> T {
    let floor = Duration::from_millis(console.web.public_answer_ms.into());
    let deadline = tokio::time::Instant::now() + floor;
    let answer = work.await;
    tokio::time::sleep_until(deadline).await;
    answer
}

/// The allowance of one account on the public pages, keyed by a digest of what names it
/// (`what`: the page; `parts`: the school and the name, or the address), never by the
/// text itself: the store keeps no name a stranger typed.
pub(super) fn account_limit_key(what: &str, parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(what.as_bytes());
    for part in parts {
        hasher.update([0]);
        hasher.update(part.as_bytes());
    }
    hasher.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Console {
    /// Takes one try of the client address's allowance, then one of the account's
    /// (`account`: [`account_limit_key`]), and counts the try: 429 with the wait when
    /// either is spent.
    pub(super) async fn take_public(
        self: &Arc<Self>,
        address: IpAddr,
        account: String,
    ) -> Result<(), Response> {
        use super::limits::Kind;
        for (kind, key) in [
            (Kind::PublicAddress, address.to_string()),
            (Kind::PublicAccount, account),
        ] {
            match self.take_limit(kind, key).await {
                Ok(Ok(())) => {}
                Ok(Err(wait)) => {
                    count(Public::Limited);
                    tracing::warn!(%address, limit = ?kind, "public page: limit reached");
                    return Err(super::Refusal::Limited(wait).page(None));
                }
                Err(error) => return Err(super::Refusal::failed("-", &error).page(None)),
            }
        }
        count(Public::Try);
        Ok(())
    }
}

/// Appends `line` (`what`) to the history of each of `subjects`, once written (see
/// [`history`]).
pub(super) async fn record(
    console: &Arc<Console>,
    subjects: Vec<String>,
    what: &'static str,
    line: String,
) -> Result<(), String> {
    console.history.record(subjects, what, line).await
}

/// A birth date as people type it: `2012-03-04` (the date field), `04-03-2012` or
/// `04/03/2012`.
pub(super) fn birth_date(text: &str) -> Option<jiff::civil::Date> {
    let text = text.trim();
    ["%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y"]
        .iter()
        .find_map(|format| jiff::civil::Date::strptime(format, text).ok())
}

/// The words the helpdesk and the metrics count the public pages by.
#[derive(Debug, Clone, Copy)]
pub enum Public {
    /// A question asked (within the limits).
    Try,
    /// A question that found the person.
    Match,
    /// A reset code mailed.
    Code,
    /// A password set with a code.
    Reset,
    /// A repair asked on Cek Akun.
    Repair,
    /// A wrong code, a form without its token.
    Refused,
    /// A try past a limit (429).
    Limited,
    /// A code's mail the relay did not take (the person was told it was sent).
    MailFailed,
}

impl Public {
    pub const ALL: [Public; 8] = [
        Public::Try,
        Public::Match,
        Public::Code,
        Public::Reset,
        Public::Repair,
        Public::Refused,
        Public::Limited,
        Public::MailFailed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Public::Try => "try",
            Public::Match => "match",
            Public::Code => "code",
            Public::Reset => "reset",
            Public::Repair => "repair",
            Public::Refused => "refused",
            Public::Limited => "limited",
            Public::MailFailed => "mail_failed",
        }
    }
}

static PUBLIC: [AtomicU64; Public::ALL.len()] = [const { AtomicU64::new(0) }; Public::ALL.len()];

/// What the public pages did since the daemon started.
pub fn counted(what: Public) -> u64 {
    PUBLIC[what as usize].load(Ordering::Relaxed)
}

fn count(what: Public) {
    PUBLIC[what as usize].fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn birth_dates_as_people_type_them() {
        let date = jiff::civil::date(2012, 3, 4);
        for typed in ["2012-03-04", "04-03-2012", " 04/03/2012 "] {
            assert_eq!(birth_date(typed), Some(date), "{typed}");
        }
        for wrong in ["", "2012-13-04", "4 Maret 2012", "31-02-2012"] {
            assert_eq!(birth_date(wrong), None, "{wrong}");
        }
    }

    #[test]
    fn an_accounts_limit_is_keyed_by_a_digest_not_the_name() {
        let key = account_limit_key("cek", &["20100001", "SITI AMINAH"]);
        assert_eq!(key.len(), 32);
        assert!(!key.contains("SITI"));
        assert_ne!(key, account_limit_key("cek", &["20100001", "SITI AMINA"]));
        // The parts cannot run into each other.
        assert_ne!(
            account_limit_key("cek", &["2010000", "1SITI"]),
            account_limit_key("cek", &["20100001", "SITI"])
        );
    }
}
