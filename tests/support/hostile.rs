//! A hostile stand-in for Google: a small axum app in front of the emulator that passes
//! every call through, except those a rule catches, which it answers as a misbehaving
//! Google would: an HTML 502 from a proxy, JSON that cannot be read (after the write was
//! applied), an empty 200, 401 or 403 refusals, a 429 asking to wait an hour, a hang.

#![allow(dead_code)] // each test binary uses a part of it

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a caught call gets.
#[derive(Debug, Clone, PartialEq)]
pub enum Misbehaviour {
    /// 502 with an HTML page, as a proxy in front of Google gives: nothing applied.
    Html502,
    /// The call is applied, then answered 200 with JSON that is not JSON.
    InvalidJson,
    /// The call is passed on, then answered 200 with JSON that is not JSON whatever
    /// Google said (a broken proxy: a refusal reads like the rest).
    InvalidJsonAlways,
    /// The call is applied, then answered 200 with half of Google's answer.
    TruncatedJson,
    /// The call is applied, then answered 200 with an empty body.
    Empty200,
    /// 400 `invalid` "Invalid Input": refused for good, nothing applied.
    Invalid400,
    /// 401 `authError` "Invalid Credentials": nothing applied.
    Refuse401,
    /// 403 `forbidden` "Not Authorized to access this resource/api": nothing applied.
    Forbidden403,
    /// 429 `rateLimitExceeded` with `Retry-After: 3600`: nothing applied.
    RetryAfterHour,
    /// No answer for this long, then the call is passed on.
    Hang(Duration),
    /// The call is applied, then answered with Google's answer plus the request's
    /// `password` and `hashFunction` echoed and an unknown secret-looking field (each
    /// password echoed is kept in [`Rules::echoed`]).
    EchoSecrets,
}

/// Which calls a rule catches.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `GET`, `POST`, `PUT`, … ; `None`: any method but `GET` (the writes).
    pub method: Option<&'static str>,
    /// The path starts with this (below the host).
    pub path: &'static str,
    /// The query string holds this (as sent, percent-encoded); `None`: any.
    pub query: Option<&'static str>,
    pub what: Misbehaviour,
}

/// The proxy's rules, changed while it runs.
#[derive(Default)]
pub struct Rules {
    rules: Mutex<Vec<Rule>>,
    /// Calls caught so far.
    caught: Mutex<u64>,
    /// The passwords an [`Misbehaviour::EchoSecrets`] answer carried back.
    echoed: Mutex<Vec<String>>,
}

impl Rules {
    pub fn set(&self, rules: Vec<Rule>) {
        *self.rules.lock().unwrap() = rules;
    }

    pub fn caught(&self) -> u64 {
        *self.caught.lock().unwrap()
    }

    pub fn echoed(&self) -> Vec<String> {
        self.echoed.lock().unwrap().clone()
    }

    fn catch(&self, method: &str, path_and_query: &str) -> Option<Misbehaviour> {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let rules = self.rules.lock().unwrap();
        let rule = rules.iter().find(|r| {
            path.starts_with(r.path)
                && r.query.is_none_or(|q| query.contains(q))
                && match r.method {
                    Some(m) => m == method,
                    None => method != "GET",
                }
        })?;
        *self.caught.lock().unwrap() += 1;
        Some(rule.what.clone())
    }
}

struct Proxy {
    upstream: String,
    rules: Arc<Rules>,
    client: reqwest::Client,
}

/// A running proxy: its base URL (the `api_base` to give belajar-sync) and its rules.
pub struct Hostile {
    pub base_url: String,
    pub rules: Arc<Rules>,
    _runtime: tokio::runtime::Runtime,
}

/// Starts a proxy on `127.0.0.1:0` in front of `upstream` (the emulator's base URL), on a
/// runtime of its own (so that the test may block on the binary it runs).
pub fn start(upstream: &str) -> Hostile {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rules = Arc::new(Rules::default());
    let proxy = Arc::new(Proxy {
        upstream: upstream.trim_end_matches('/').to_owned(),
        rules: rules.clone(),
        client: reqwest::Client::new(),
    });
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    runtime.spawn(async move { axum::serve(listener, app).await });
    Hostile {
        base_url,
        rules,
        _runtime: runtime,
    }
}

fn google_error(status: StatusCode, reason: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": status.as_u16(), "message": message,
        "errors": [{"domain": "global", "reason": reason, "message": message}]}});
    (status, axum::Json(body)).into_response()
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let method = request.method().clone();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(ToString::to_string)
        .unwrap_or_default();
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let caught = proxy.rules.catch(method.as_str(), &path_and_query);
    match caught {
        Some(Misbehaviour::Html502) => {
            return (
                StatusCode::BAD_GATEWAY,
                [("content-type", "text/html")],
                "<html><body><h1>502 Bad Gateway</h1></body></html>",
            )
                .into_response();
        }
        Some(Misbehaviour::Invalid400) => {
            return google_error(StatusCode::BAD_REQUEST, "invalid", "Invalid Input");
        }
        Some(Misbehaviour::Refuse401) => {
            return google_error(StatusCode::UNAUTHORIZED, "authError", "Invalid Credentials");
        }
        Some(Misbehaviour::Forbidden403) => {
            return google_error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Not Authorized to access this resource/api",
            );
        }
        Some(Misbehaviour::RetryAfterHour) => {
            let mut response = google_error(
                StatusCode::TOO_MANY_REQUESTS,
                "rateLimitExceeded",
                "Rate Limit Exceeded",
            );
            response
                .headers_mut()
                .insert("retry-after", "3600".parse().unwrap());
            return response;
        }
        Some(Misbehaviour::Hang(how_long)) => tokio::time::sleep(how_long).await,
        _ => {}
    }
    let request_body = body.clone();
    let (status, answer) = match pass(&proxy, &method, &path_and_query, &headers, body).await {
        Ok(answered) => answered,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let mangled: Option<Bytes> = match caught {
        Some(Misbehaviour::InvalidJson) => {
            Some(Bytes::from_static(b"{\"kind\": admin#directory#user"))
        }
        Some(Misbehaviour::TruncatedJson) => Some(answer.slice(..answer.len() / 2)),
        Some(Misbehaviour::Empty200) => Some(Bytes::new()),
        Some(Misbehaviour::EchoSecrets) => echo_secrets(&proxy.rules, &request_body, &answer),
        _ => None,
    };
    let always = caught == Some(Misbehaviour::InvalidJsonAlways);
    let mangled = mangled.or_else(|| always.then(|| Bytes::from_static(b"{\"kind\": admin#")));
    match mangled {
        Some(body) if status.is_success() || always => {
            (StatusCode::OK, Body::from(body)).into_response()
        }
        _ => (
            status,
            [("content-type", "application/json; charset=UTF-8")],
            answer,
        )
            .into_response(),
    }
}

/// Google's `answer` with the request's password and hash function added, and a field
/// Google never sends that looks like a secret.
fn echo_secrets(rules: &Rules, request: &[u8], answer: &[u8]) -> Option<Bytes> {
    let request: serde_json::Value = serde_json::from_slice(request).ok()?;
    let mut answer: serde_json::Value = serde_json::from_slice(answer).ok()?;
    let password = request["password"].as_str()?.to_owned();
    answer["password"] = password.clone().into();
    answer["hashFunction"] = "SHA-1".into();
    answer["recoveryToken"] = format!("token-{password}").into();
    rules.echoed.lock().unwrap().push(password);
    Some(Bytes::from(answer.to_string()))
}

async fn pass(
    proxy: &Proxy,
    method: &axum::http::Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Bytes), reqwest::Error> {
    let mut request = proxy.client.request(
        method.as_str().parse().unwrap(),
        format!("{}{path_and_query}", proxy.upstream),
    );
    for name in ["authorization", "content-type"] {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value.to_str().unwrap_or_default());
        }
    }
    let response = request.body(body.to_vec()).send().await?;
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    Ok((status, response.bytes().await?))
}
