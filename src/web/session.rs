//! Sessions: who signed in, kept in the browser in a cookie signed with the console's key
//! (HMAC-SHA256), with its own expiry inside (a cookie kept past it, or edited, is
//! refused). `HttpOnly`, `Secure`, `SameSite=Lax` (the sign-in comes back from Google as
//! a top-level navigation). The session carries the CSRF token every form must send.

use super::access::Role;
use super::{Console, Peer, Refusal, client_address};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Response;
use axum_extra::extract::SignedCookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;

/// The session's cookie.
pub const SESSION: &str = "sesi";
/// The cookie of a sign-in on its way (state, nonce, PKCE verifier).
pub const LOGIN: &str = "masuk";

/// What the session cookie holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub email: String,
    pub csrf: String,
}

/// A value kept in a signed cookie with its expiry.
#[derive(Debug, Serialize, Deserialize)]
struct Expiring<T> {
    value: T,
    expires: i64,
}

/// A signed cookie holding `value` until `seconds` from now.
pub fn cookie<T: Serialize>(name: &'static str, value: &T, seconds: i64) -> Cookie<'static> {
    let expires = jiff::Timestamp::now().as_second() + seconds;
    let text = serde_json::to_string(&Expiring { value, expires }).expect("cookies serialise");
    Cookie::build((name, text))
        .path("/")
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Lax)
        .build()
}

/// The cookie's value, when its signature holds and it has not expired.
pub fn read<T: DeserializeOwned>(jar: &SignedCookieJar, name: &str) -> Option<T> {
    let cookie = jar.get(name)?;
    let kept: Expiring<T> = serde_json::from_str(cookie.value()).ok()?;
    (kept.expires > jiff::Timestamp::now().as_second()).then_some(kept.value)
}

/// A cookie that removes `name`.
pub fn removal(name: &'static str) -> Cookie<'static> {
    Cookie::build((name, "")).path("/").build()
}

/// Who makes a request: signed in (or with an API token), with the role the
/// configuration and the directory give them now, from this client address.
#[derive(Debug, Clone)]
pub struct Person {
    pub email: String,
    pub role: Role,
    /// The session's CSRF token (empty for the API, whose requests carry no cookie).
    pub csrf: String,
    pub address: IpAddr,
    /// The API token's id when the request came through the API.
    pub token: Option<String>,
}

impl Person {
    /// Who asked, for the history of what an action changes.
    pub fn actor(&self, ticket: Option<&str>) -> String {
        let ticket = ticket.map(|t| format!(", tiket {t}")).unwrap_or_default();
        let via = match &self.token {
            Some(id) => format!("api, token {id}"),
            None => "konsol".into(),
        };
        format!("{} ({via}, dari {}{ticket})", self.email, self.address)
    }

    /// Refuses a form that does not carry this session's token.
    pub fn check_csrf(&self, token: &str) -> Result<(), Response> {
        if same_secret(token, &self.csrf) {
            return Ok(());
        }
        Err(self.refuse("a form without this session's CSRF token"))
    }

    /// Who this is, for the metrics.
    pub fn who(&self) -> super::Who {
        match self.token {
            Some(_) => super::Who::Api,
            None => super::Who::of(&self.role),
        }
    }

    /// 403, a line in the log, a count in the metrics.
    pub fn refusal(&self, what: &str) -> Refusal {
        super::count(super::What::Refused, self.who());
        tracing::warn!(email = %self.email, role = self.role.words(), address = %self.address, token = self.token, refused = what, "console: refused");
        Refusal::Forbidden
    }

    /// [`Person::refusal`] as a page.
    pub fn refuse(&self, what: &str) -> Response {
        self.refusal(what).page(Some(self))
    }
}

/// Whether two secrets are the same, in a time that does not depend on where they
/// differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The client address of a request (see [`client_address`]).
pub fn address_of(parts: &Parts, console: &Console) -> IpAddr {
    let peer = parts
        .extensions
        .get::<Peer>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |p| p.0.ip());
    let forwarded = parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    client_address(peer, forwarded, &console.web.trusted_proxies)
}

impl FromRequestParts<Arc<Console>> for Person {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Person, Response> {
        let jar = console.cookies(&parts.headers);
        let address = address_of(parts, console);
        let Some(session) = read::<Session>(&jar, SESSION) else {
            if jar.get(SESSION).is_some() {
                tracing::info!(%address, "console: a session cookie refused (expired or not signed by this console)");
            }
            return Err(Refusal::Unauthorized.page(None));
        };
        let email = session.email.clone();
        let role = console.role(email).await;
        Ok(Person {
            email: session.email,
            role,
            csrf: session.csrf,
            address,
            token: None,
        })
    }
}
