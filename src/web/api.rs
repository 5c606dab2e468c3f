//! The helpdesk's API for its ticketing system: what an agent does in the console, as
//! JSON under `/api/v1/`, authorised by a bearer token of the agent's ([`tokens`]) instead
//! of a session. The same checks as the console's forms (the agent's role now, the
//! account, the ticket, the birth date for a reset, the limits), the same refusals as JSON,
//! the same history: the actor is `EMAIL (api, token ID, dari CLIENT-IP, tiket T)`.
//!
//! - `GET  /api/v1/accounts?q=…&npsn=…` — the search of `/bantuan`
//! - `GET  /api/v1/accounts/{key}` — one account, with what `show` says
//! - `POST /api/v1/accounts/{key}/{action}` — `resync`, `release`, `reset`, and for
//!   administrators `suspend` and `reinstate`; the body `{"ticket": "…"}`, with
//!   `"birth_date": "YYYY-MM-DD"` for a reset and `"reason": "…"` for a suspension.
//!
//! Requests carry no cookie, so a page of another site cannot make a browser send one
//! (no CSRF token is needed).

use super::limits::Kind;
use super::people::{self, ActionForm, Asked};
use super::session::{Person, address_of};
use super::{Console, Refusal, tokens};
use crate::directory::model::{Account, DesiredState, Jenjang, Role};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;

/// The API's routes (nested under `/api/v1`).
pub fn routes() -> Router<Arc<Console>> {
    use axum::routing::{get, post};
    Router::new()
        .route("/accounts", get(search))
        .route("/accounts/{key}", get(account))
        .route("/accounts/{key}/{action}", post(act))
        .fallback(|| async { Refusal::NotFound.json() })
}

/// An agent, from the request's bearer token: 401 without a valid one (each failure
/// taken from the client address's allowance), 403 once the agent is no longer listed.
pub struct Agent(Person);

impl FromRequestParts<Arc<Console>> for Agent {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Agent, Response> {
        let address = address_of(parts, console);
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.to_owned());
        let found = match presented {
            Some(presented) => console
                .blocking(move |c| tokens::find(&c.daemon.store(), &presented))
                .await
                .map_err(|e| Refusal::failed("api", &e).json())?,
            None => None,
        };
        let Some(token) = found else {
            console
                .take(Kind::Address, address.to_string(), "", super::Who::Unknown)
                .await
                .map_err(Refusal::json)?;
            tracing::info!(%address, "console: an API request without a valid token");
            return Err(Refusal::Unauthorized.json());
        };
        let email = token.email.clone();
        let role = console.role(email).await;
        let person = Person {
            email: token.email,
            role,
            csrf: String::new(),
            address,
            token: Some(token.id),
        };
        if !person.role.is_helpdesk() {
            return Err(person
                .refusal("the API (the agent is no longer listed)")
                .json());
        }
        Ok(Agent(person))
    }
}

/// An account as the API shows it: never the birth date (the helpdesk's check asks the
/// person for it) nor the personal address.
#[derive(Debug, Serialize)]
struct AccountView<'a> {
    key: String,
    email: &'a str,
    full_name: &'a str,
    role: Role,
    jenjang: Jenjang,
    npsn: &'a str,
    #[serde(flatten)]
    state: &'a DesiredState,
}

impl<'a> From<&'a Account> for AccountView<'a> {
    fn from(a: &'a Account) -> AccountView<'a> {
        AccountView {
            key: a.key().to_string(),
            email: &a.email,
            full_name: &a.full_name,
            role: a.role,
            jenjang: a.jenjang,
            npsn: &a.npsn,
            state: &a.state,
        }
    }
}

/// `GET /api/v1/accounts?q=…&npsn=…`.
async fn search(
    Agent(person): Agent,
    State(console): State<Arc<Console>>,
    Query(query): Query<people::SearchQuery>,
) -> Response {
    let found = console
        .blocking(move |c| people::find(c, &query.q, &query.npsn))
        .await;
    match found {
        Ok(found) => {
            let views: Vec<AccountView> = found.iter().map(AccountView::from).collect();
            Json(json!({ "accounts": views })).into_response()
        }
        Err(e) => Refusal::failed(&person.email, &e).json(),
    }
}

/// `GET /api/v1/accounts/{key}`.
async fn account(
    Agent(person): Agent,
    State(console): State<Arc<Console>>,
    Path(key): Path<String>,
) -> Response {
    match people::look(&console, &person, &key).await {
        Ok(seen) => Json(json!({
            "account": AccountView::from(&seen.account),
            "signed_in": seen.signed_in,
            "show": seen.show,
        }))
        .into_response(),
        Err(refused) => refused.json(),
    }
}

/// `POST /api/v1/accounts/{key}/{action}`.
async fn act(
    Agent(person): Agent,
    State(console): State<Arc<Console>>,
    Path((key, action)): Path<(String, String)>,
    body: Result<Json<ActionForm>, JsonRejection>,
) -> Response {
    let asked = match action.as_str() {
        "reset" => None,
        "resync" => Some(Asked::Repair),
        "release" => Some(Asked::Release),
        "suspend" => Some(Asked::Suspend),
        "reinstate" => Some(Asked::Reinstate),
        _ => return Refusal::NotFound.json(),
    };
    let Ok(Json(form)) = body else {
        return Refusal::BadRequest {
            title: "JSON diperlukan",
            detail: "Kirim JSON dengan Content-Type: application/json, misalnya {\"ticket\": \"T-123\"}.",
        }
        .json();
    };
    let Some(asked) = asked else {
        return match people::reset_password(&console, &person, &key, &form).await {
            Ok((account, secret)) => Json(json!({
                "account": AccountView::from(&account),
                "password": secret.expose(),
                "must_change": true,
            }))
            .into_response(),
            Err(refused) => refused.json(),
        };
    };
    match people::run_asked(asked, &console, &person, &key, &form).await {
        Ok((account, ran)) => {
            let (status, outcome) = match ran.code {
                0 => (StatusCode::OK, "done"),
                3 => (StatusCode::ACCEPTED, "waiting"),
                _ => (StatusCode::CONFLICT, "failed"),
            };
            let body = json!({
                "account": AccountView::from(&account),
                "outcome": outcome,
                "exit_code": ran.code,
                "report": format!("{}{}", ran.out, ran.err),
            });
            (status, Json(body)).into_response()
        }
        Err(refused) => refused.json(),
    }
}
