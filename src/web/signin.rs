//! Signing in and out: `/masuk` sends the browser to the provider with a fresh state,
//! nonce and PKCE verifier (kept in a signed cookie for ten minutes), `/masuk/selesai`
//! takes the code back, checks everything ([`super::oidc`]) and opens a session.

use super::access::Role;
use super::limits::Kind;
use super::oidc::{Pending, random};
use super::session::{self, LOGIN, Person, SESSION, Session};
use super::{Console, What, Who, count, pages};
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::sync::Arc;

/// How long a sign-in may take at the provider.
const LOGIN_SECONDS: i64 = 600;

/// `GET /`: the sign-in page, or where the signed-in person works.
pub async fn home(
    State(console): State<Arc<Console>>,
    person: Result<Person, Response>,
) -> Response {
    let Ok(person) = person else {
        return pages::sign_in(None, console.web.public_pages).into_response();
    };
    match &person.role {
        Role::Operator { npsn } => Redirect::to(&format!("/sekolah/{npsn}")).into_response(),
        Role::Admin | Role::Helpdesk => Redirect::to("/bantuan").into_response(),
        Role::Other => pages::not_for_you(&person).into_response(),
    }
}

/// The domains whose accounts may sign in: the managed ones, and those of the listed
/// agents and administrators.
fn sign_in_domains(console: &Console) -> Vec<String> {
    let config = console.daemon.config();
    let mut domains = config.naming.domains();
    for email in config.web.helpdesk.iter().chain(&config.web.admins) {
        if let Some((_, domain)) = email.trim().rsplit_once('@') {
            domains.push(domain.to_ascii_lowercase());
        }
    }
    domains.sort();
    domains.dedup();
    domains
}

/// Counts an action from the request's client address; 429 when its hour is spent.
async fn address_allowance(console: &Arc<Console>, parts: &Parts) -> Result<(), Response> {
    let address = session::address_of(parts, console);
    console
        .take(Kind::Address, address.to_string(), "", Who::Unknown)
        .await
        .map_err(|refusal| {
            tracing::warn!(%address, "console: too many requests from one address");
            refusal.page(None)
        })
}

/// `GET /masuk`.
pub async fn start(
    State(console): State<Arc<Console>>,
    request: axum::extract::Request,
) -> Response {
    let (parts, _) = request.into_parts();
    if let Err(limited) = address_allowance(&console, &parts).await {
        return limited;
    }
    let jar = console.cookies(&parts.headers);
    let provider = match console.provider().await {
        Ok(provider) => provider,
        Err(e) => {
            tracing::error!(error = %e, "console: the sign-in provider cannot be used");
            return pages::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Masuk belum dapat dilakukan",
                None,
                "error",
                "Layanan masuk Google tidak dapat dihubungi saat ini. Coba lagi beberapa menit lagi.",
            );
        }
    };
    let (url, pending) = provider.start("/".into(), None);
    let jar = jar.add(session::cookie(LOGIN, &pending, LOGIN_SECONDS));
    (jar, Redirect::to(&url)).into_response()
}

#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /masuk/selesai`: the provider sends the browser back here.
pub async fn finish(
    State(console): State<Arc<Console>>,
    Query(callback): Query<Callback>,
    request: axum::extract::Request,
) -> Response {
    let (parts, _) = request.into_parts();
    if let Err(limited) = address_allowance(&console, &parts).await {
        return limited;
    }
    let address = session::address_of(&parts, &console);
    let jar = console.cookies(&parts.headers);
    let failed = |why: &dyn std::fmt::Display| {
        count(What::Refused, Who::Unknown);
        tracing::warn!(%address, error = %why, "console: a sign-in failed");
        pages::message(
            StatusCode::FORBIDDEN,
            "Masuk gagal",
            None,
            "error",
            "Masuk tidak berhasil. Gunakan akun belajar.id Anda dan coba lagi dari halaman awal.",
        )
    };
    if let Some(error) = callback.error {
        return failed(&format!("the provider said {error:?}"));
    }
    let pending = session::read::<Pending>(&jar, LOGIN);
    let (Some(pending), Some(code), Some(state)) = (pending, callback.code, callback.state) else {
        return failed(&super::oidc::SignInError::State);
    };
    if state != pending.state {
        return failed(&super::oidc::SignInError::State);
    }
    let provider = match console.provider().await {
        Ok(provider) => provider,
        Err(e) => return failed(&e),
    };
    let identity = match provider
        .finish(&code, &pending, &sign_in_domains(&console))
        .await
    {
        Ok(identity) => identity,
        Err(e) => return failed(&e),
    };
    let email = identity.email.clone();
    let who = Who::of(&console.role(email).await);
    count(What::SignIn, who);
    tracing::info!(email = %identity.email, %address, "console: signed in");
    let minutes = i64::from(console.web.session_minutes);
    let session = Session {
        email: identity.email,
        csrf: random(),
    };
    let jar =
        jar.remove(session::removal(LOGIN))
            .add(session::cookie(SESSION, &session, minutes * 60));
    (jar, Redirect::to(&pending.next)).into_response()
}

#[derive(Debug, Deserialize)]
pub struct Token {
    #[serde(default)]
    csrf: String,
}

/// `POST /keluar`.
pub async fn sign_out(
    person: Person,
    State(console): State<Arc<Console>>,
    headers: axum::http::HeaderMap,
    Form(form): Form<Token>,
) -> Response {
    let jar = console.cookies(&headers);
    if let Err(refused) = person.check_csrf(&form.csrf) {
        return refused;
    }
    tracing::info!(email = %person.email, "console: signed out");
    (jar.remove(session::removal(SESSION)), Redirect::to("/")).into_response()
}
