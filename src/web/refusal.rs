//! Why a request is not served, decided once and shown two ways: a page in Bahasa
//! Indonesia to people, JSON to the helpdesk's API.

use super::pages;
use super::session::Person;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

#[derive(Debug)]
pub enum Refusal {
    /// 401: not signed in (or the session ended); for the API, no valid token.
    Unauthorized,
    /// 403, with the same words whatever was refused (logged and counted where decided:
    /// [`Person::refusal`]).
    Forbidden,
    /// 404: no account has that key.
    NotFound,
    /// 400: what is missing, and what to do.
    BadRequest {
        title: &'static str,
        detail: &'static str,
    },
    /// 409: the action was not made, and why.
    NotDone { title: &'static str, detail: String },
    /// 429 until the wait is over ([`Refusal::limited`]).
    Limited(Duration),
    /// 500; what failed is in the log only ([`Refusal::failed`]).
    Failed,
}

impl Refusal {
    /// 429 until `wait` is over, counted in the metrics.
    pub fn limited(wait: Duration, who: super::Who) -> Refusal {
        super::count(super::What::Limited, who);
        Refusal::Limited(wait)
    }

    /// 500, with `error` in the log.
    pub fn failed(email: &str, error: &dyn std::fmt::Display) -> Refusal {
        tracing::error!(email, error = %error, "console: a request failed");
        Refusal::Failed
    }

    fn status(&self) -> StatusCode {
        match self {
            Refusal::Unauthorized => StatusCode::UNAUTHORIZED,
            Refusal::Forbidden => StatusCode::FORBIDDEN,
            Refusal::NotFound => StatusCode::NOT_FOUND,
            Refusal::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Refusal::NotDone { .. } => StatusCode::CONFLICT,
            Refusal::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
            Refusal::Failed => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The title and the sentence said, in Bahasa Indonesia.
    fn words(&self) -> (&'static str, String) {
        match self {
            Refusal::Unauthorized => (
                "Belum masuk",
                "Tidak ada sesi atau token yang berlaku: masuk lagi, atau minta token baru.".into(),
            ),
            Refusal::Forbidden => ("Tidak diizinkan", pages::REFUSED.into()),
            Refusal::NotFound => ("Akun tidak ditemukan", "Tidak ada akun seperti itu.".into()),
            Refusal::BadRequest { title, detail } => (title, (*detail).into()),
            Refusal::NotDone { title, detail } => (title, detail.clone()),
            Refusal::Limited(wait) => (
                "Terlalu banyak permintaan",
                format!(
                    "Batas permintaan tercapai. Coba lagi dalam {} menit.",
                    wait.as_secs().div_ceil(60).max(1)
                ),
            ),
            Refusal::Failed => (
                "Terjadi kesalahan",
                "Terjadi kesalahan di server. Coba lagi; jika tetap gagal, hubungi helpdesk."
                    .into(),
            ),
        }
    }

    /// The machine-readable name of the refusal, for the API.
    fn code(&self) -> &'static str {
        match self {
            Refusal::Unauthorized => "unauthorized",
            Refusal::Forbidden => "forbidden",
            Refusal::NotFound => "not_found",
            Refusal::BadRequest { .. } => "bad_request",
            Refusal::NotDone { .. } => "not_done",
            Refusal::Limited(_) => "limited",
            Refusal::Failed => "failed",
        }
    }

    /// `Retry-After` on a 429.
    fn with_headers(&self, mut response: Response) -> Response {
        if let Refusal::Limited(wait) = self
            && let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }

    /// As a page for `person`.
    pub fn page(self, person: Option<&Person>) -> Response {
        let response = match &self {
            Refusal::Forbidden => pages::refused(person).into_response(),
            Refusal::Unauthorized => (self.status(), pages::signed_out()).into_response(),
            _ => {
                let (title, text) = self.words();
                pages::message(self.status(), title, person, "error", &text)
            }
        };
        self.with_headers(response)
    }

    /// As the API's answer: `{"error": CODE, "message": WORDS}`; a 401 says how to
    /// authenticate (a bearer token).
    pub fn json(self) -> Response {
        let (_, message) = self.words();
        let body = serde_json::json!({ "error": self.code(), "message": message });
        let mut response = (self.status(), axum::Json(body)).into_response();
        if matches!(self, Refusal::Unauthorized) {
            let challenge = HeaderValue::from_static("Bearer realm=\"belajar-sync\"");
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        self.with_headers(response)
    }
}
