//! The only code that talks to Google: the Directory API client, its authentication
//! (yup-oauth2, service account with domain-wide delegation), its retries and its limiter.
//! Tests point it at the emulator; nothing below it is mocked.

pub mod circuit;
pub mod errors;
pub mod licensing;
pub mod limiter;
pub mod types;

use crate::config;
use backoff::ExponentialBackoffBuilder;
use backoff::backoff::Backoff;
use errors::{CallError, Next, from_answer, next_step};
use limiter::Limiter;
use reqwest::{Method, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use types::{OrgUnit, OrgUnits, User, UsersPage};

/// The scopes the daemon asks for (domain-wide delegation must grant both).
pub const SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/admin.directory.user",
    "https://www.googleapis.com/auth/admin.directory.orgunit",
];

/// The fields `users.list` asks for: what the planner reads, nothing more.
pub const LIST_FIELDS: &str = "nextPageToken,users(id,primaryEmail,name(givenName,familyName,displayName),suspended,suspensionReason,archived,orgUnitPath,externalIds,organizations,aliases,isAdmin,etag,creationTime,deletionTime,lastLoginTime)";

/// Longest single wait between attempts.
const MAX_WAIT: Duration = Duration::from_secs(32);

/// Longest single attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// Attempts at a connection before Google counts as unreachable (a refused connection is
/// retried briefly, not until the call's deadline).
const UNREACHABLE_TRIES: u32 = 3;

type Authenticator = yup_oauth2::authenticator::Authenticator<
    <yup_oauth2::DefaultHyperClientBuilder as yup_oauth2::HyperClientBuilder>::Connector,
>;

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "google.subject is empty: set it to the admin the service account acts as (domain-wide delegation)"
    )]
    NoSubject,
    #[error("google.api_base {0}")]
    ApiBase(String),
    #[error("cannot read the service account key {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error(
        "the service account key {path} is readable by others (mode {mode:o}): run chmod 600 {path}"
    )]
    KeyReadable { path: PathBuf, mode: u32 },
    #[error("cannot set up the HTTP client: {0}")]
    Http(String),
}

/// A call that failed for good, with how many attempts were made.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error} (after {attempts} attempt(s))")]
pub struct CallFailure {
    pub error: CallError,
    pub attempts: u32,
}

impl CallFailure {
    /// A write that was sent and never answered: it may have been applied.
    pub fn is_uncertain(&self) -> bool {
        matches!(self.error, CallError::NoAnswer(_))
    }

    pub fn status(&self) -> Option<u16> {
        self.error.status()
    }
}

/// A call that succeeded, with what it took (for the caller's audit).
#[derive(Debug, Clone)]
pub struct Called<T> {
    pub value: T,
    pub attempts: u32,
    /// The last error before success, if there were retries.
    pub last_error: Option<CallError>,
}

/// Refuses a key file that group or others can read.
fn check_key_permissions(path: &Path) -> Result<(), SetupError> {
    match crate::secret_file::readable_by_others(path) {
        Ok(None) => Ok(()),
        Ok(Some(mode)) => Err(SetupError::KeyReadable {
            path: path.into(),
            mode,
        }),
        Err(e) => Err(SetupError::KeyFile {
            path: path.into(),
            reason: e.to_string(),
        }),
    }
}

/// What the client has done, for the metrics: answers by API method and status (`lost`
/// when none came), retries, and rate-limit answers.
#[derive(Debug, Default)]
pub struct CallStats {
    answers: std::sync::Mutex<std::collections::BTreeMap<(&'static str, String), u64>>,
    retries: std::sync::atomic::AtomicU64,
    rate_limited: std::sync::atomic::AtomicU64,
}

impl CallStats {
    fn answered(&self, method: &'static str, status: String) {
        *self
            .answers
            .lock()
            .expect("stats lock")
            .entry((method, status))
            .or_default() += 1;
    }

    /// Answers so far, by (API method, status).
    pub fn answers(&self) -> Vec<((&'static str, String), u64)> {
        let answers = self.answers.lock().expect("stats lock");
        answers.iter().map(|(k, n)| (k.clone(), *n)).collect()
    }

    pub fn retries(&self) -> u64 {
        self.retries.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The discovery document's name of the method a request calls.
fn method_name(method: &Method, url: &Url) -> &'static str {
    let path = url.path();
    if path.contains("/apps/licensing/") {
        return match method.as_str() {
            "GET" if path.ends_with("/users") => "licenseAssignments.listForProductAndSku",
            "GET" => "licenseAssignments.get",
            "POST" => "licenseAssignments.insert",
            "DELETE" => "licenseAssignments.delete",
            _ => "licenseAssignments.patch",
        };
    }
    let org_units = path.contains("/orgunits");
    match (method.as_str(), org_units) {
        ("GET", true) if path.ends_with("/orgunits") => "orgunits.list",
        ("GET", true) => "orgunits.get",
        ("POST", true) => "orgunits.insert",
        ("GET", false) if path.ends_with("/users") => "users.list",
        ("GET", false) => "users.get",
        ("POST", false) if path.ends_with("/undelete") => "users.undelete",
        ("POST", false) => "users.insert",
        _ => "users.update",
    }
}

/// The Directory API client.
pub struct DirectoryClient {
    /// What the client has done (metrics).
    pub stats: CallStats,
    http: reqwest::Client,
    auth: Authenticator,
    api_base: Url,
    customer: String,
    limiter: Limiter,
    deadline: Duration,
    /// The OAuth client id of the service account (for explaining delegation errors).
    pub client_id: Option<String>,
    /// Whether Google can be reached: while it cannot, calls are not sent.
    pub circuit: circuit::Circuit,
    /// The scopes every token is asked for.
    scopes: Vec<&'static str>,
    /// Where licensing v1 is called (`None`: licences are not managed).
    licensing_base: Option<Url>,
}

impl DirectoryClient {
    /// Builds the client from `[google]`: reads and checks the key, sets up yup-oauth2 with
    /// the delegated subject and one TLS stack (rustls with ring).
    pub async fn new(config: &config::Google) -> Result<DirectoryClient, SetupError> {
        if config.subject.is_empty() {
            return Err(SetupError::NoSubject);
        }
        let api_base = config::check_api_base(&config.api_base).map_err(SetupError::ApiBase)?;
        check_key_permissions(&config.key_file)?;
        let key = yup_oauth2::read_service_account_key(&config.key_file)
            .await
            .map_err(|e| SetupError::KeyFile {
                path: config.key_file.clone(),
                reason: e.to_string(),
            })?;
        let client_id = key.client_id.clone();
        // reqwest is built without a crypto provider: ring, the one yup-oauth2 uses too.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let auth = yup_oauth2::ServiceAccountAuthenticator::builder(key)
            .subject(config.subject.clone())
            .build()
            .await
            .map_err(|e| SetupError::Http(e.to_string()))?;
        let http = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .user_agent(concat!("belajar-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SetupError::Http(e.to_string()))?;
        Ok(DirectoryClient {
            http,
            auth,
            api_base,
            customer: config.customer.clone(),
            limiter: Limiter::new(config.requests_per_minute, config.concurrency),
            stats: CallStats::default(),
            deadline: config.call_deadline.unsigned_abs(),
            client_id,
            circuit: circuit::Circuit::default(),
            scopes: SCOPES.to_vec(),
            licensing_base: None,
        })
    }

    /// The client `config` asks for: the Directory API, and licensing when
    /// `licences.enabled`.
    pub async fn for_config(config: &config::Config) -> Result<DirectoryClient, SetupError> {
        DirectoryClient::new(&config.google)
            .await?
            .with_licences(&config.licences)
    }

    /// The scopes every token is asked for.
    pub fn scopes(&self) -> &[&'static str] {
        &self.scopes
    }

    /// Obtains a token (for `check`): whether the key, the delegation and the scopes work.
    pub async fn check_token(&self) -> Result<(), CallError> {
        let token = self
            .auth
            .token(&self.scopes)
            .await
            .map_err(|e| CallError::Token(e.to_string()))?;
        token
            .token()
            .map(drop)
            .ok_or_else(|| CallError::Token("the token endpoint gave no access token".into()))
    }

    /// The limiter every call goes through.
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// `users.get` by address, alias or id.
    pub async fn get_user(&self, key: &str) -> Result<Called<User>, CallFailure> {
        let url = self.url(&["users", key]);
        self.call(Method::GET, url, None::<&()>, false).await
    }

    /// `users.insert`.
    pub async fn insert_user(&self, user: &User) -> Result<Called<User>, CallFailure> {
        let url = self.url(&["users"]);
        self.call(Method::POST, url, Some(user), true).await
    }

    /// `users.update` with patch semantics: only the fields set in `patch` change.
    pub async fn update_user(&self, key: &str, patch: &User) -> Result<Called<User>, CallFailure> {
        let url = self.url(&["users", key]);
        self.call(Method::PUT, url, Some(patch), true).await
    }

    /// `orgunits.get` by full path (`/student/sd`). The root has no path to address it
    /// by, so it is read from `orgunits.list` with `type=allIncludingParent`.
    pub async fn get_org_unit(&self, path: &str) -> Result<Called<OrgUnit>, CallFailure> {
        let mut segments = vec!["customer", self.customer.as_str(), "orgunits"];
        segments.extend(path.split('/').filter(|s| !s.is_empty()));
        let mut url = self.url(&segments);
        if segments.len() > 3 {
            return self.call(Method::GET, url, None::<&()>, false).await;
        }
        url.query_pairs_mut()
            .append_pair("orgUnitPath", "/")
            .append_pair("type", "allIncludingParent");
        let listed: Called<OrgUnits> = self.call(Method::GET, url, None::<&()>, false).await?;
        let root = listed
            .value
            .organization_units
            .into_iter()
            .find(|u| u.org_unit_path.as_deref() == Some("/"))
            .ok_or_else(|| CallFailure {
                error: CallError::Unreadable("orgunits.list did not include the root".into()),
                attempts: listed.attempts,
            })?;
        Ok(Called {
            value: root,
            attempts: listed.attempts,
            last_error: listed.last_error,
        })
    }

    /// `orgunits.list` of every org unit below the root.
    pub async fn list_org_units(&self) -> Result<Called<OrgUnits>, CallFailure> {
        let mut url = self.url(&["customer", self.customer.as_str(), "orgunits"]);
        url.query_pairs_mut()
            .append_pair("orgUnitPath", "/")
            .append_pair("type", "all");
        self.call(Method::GET, url, None::<&()>, false).await
    }

    /// `users.undelete` of the deleted user `id` into `org_unit`.
    pub async fn undelete_user(&self, id: &str, org_unit: &str) -> Result<(), CallFailure> {
        let url = self.url(&["users", id, "undelete"]);
        let body = serde_json::json!({ "orgUnitPath": org_unit });
        self.call::<()>(Method::POST, url, Some(&body), true)
            .await
            .map(drop)
    }

    /// `orgunits.insert` of `name` under `parent`.
    pub async fn insert_org_unit(
        &self,
        name: &str,
        parent: &str,
    ) -> Result<Called<OrgUnit>, CallFailure> {
        let url = self.url(&["customer", self.customer.as_str(), "orgunits"]);
        let unit = OrgUnit {
            name: Some(name.to_owned()),
            parent_org_unit_path: Some(parent.to_owned()),
            ..OrgUnit::default()
        };
        self.call(Method::POST, url, Some(&unit), true).await
    }

    /// The users of `domain`, page by page (500 a page, only the fields the planner reads).
    pub fn list_users(&self, domain: &str) -> UserPages<'_> {
        self.list_users_matching(domain, None)
    }

    /// The users of `domain` that `query` finds (Google's search syntax, served from an
    /// index that lags behind changes by up to 36 hours), page by page.
    pub fn list_users_matching(&self, domain: &str, query: Option<String>) -> UserPages<'_> {
        UserPages {
            client: self,
            domain: domain.to_owned(),
            deleted: false,
            query,
            next: None,
            done: false,
            seen: HashSet::new(),
        }
    }

    /// The deleted users of `domain` that Google can still restore (`showDeleted`), page
    /// by page.
    pub fn list_deleted_users(&self, domain: &str) -> UserPages<'_> {
        UserPages {
            deleted: true,
            ..self.list_users(domain)
        }
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.api_base.clone();
        url.path_segments_mut()
            .expect("http(s) URLs have paths")
            .pop_if_empty()
            .extend(["admin", "directory", "v1"])
            .extend(segments);
        url
    }

    /// One call with its retries: the limiter, the token, the request, and the decision of
    /// what follows each error, until success, a permanent failure or the deadline.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&impl Serialize>,
        is_write: bool,
    ) -> Result<Called<T>, CallFailure> {
        let mut policy = ExponentialBackoffBuilder::new()
            .with_initial_interval(Duration::from_millis(500))
            .with_multiplier(2.0)
            .with_randomization_factor(0.5)
            .with_max_interval(MAX_WAIT)
            .with_max_elapsed_time(Some(self.deadline))
            .build();
        let mut attempts = 0;
        let mut refreshed = false;
        let mut refresh_now = false;
        let mut last_error = None;
        let name = method_name(&method, &url);
        let started = tokio::time::Instant::now();
        loop {
            if let circuit::Admission::Refused(outage) = self.circuit.admit() {
                return Err(CallFailure {
                    error: CallError::Unreachable(format!(
                        "Google unreachable since {} ({}); not sent",
                        outage.since, outage.reason
                    )),
                    attempts,
                });
            }
            attempts += 1;
            if attempts > 1 {
                self.stats
                    .retries
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            // An attempt never outlasts the call's deadline (a hung connection included).
            let left = self.deadline.saturating_sub(started.elapsed());
            let outcome = self
                .attempt(
                    &method,
                    &url,
                    body,
                    std::mem::take(&mut refresh_now),
                    left.clamp(Duration::from_secs(1), ATTEMPT_TIMEOUT),
                )
                .await;
            let status = match &outcome {
                Ok(_) => "2xx".to_owned(),
                Err(CallError::Api { status, .. }) => status.to_string(),
                Err(CallError::NoAnswer(_)) => "lost".to_owned(),
                Err(_) => "unsent".to_owned(),
            };
            self.stats.answered(name, status);
            match &outcome {
                Ok(_) | Err(CallError::Api { .. } | CallError::Unreadable(_)) => {
                    self.circuit.answered();
                }
                Err(CallError::Token(reason)) => self.circuit.failed(reason),
                Err(CallError::Unreachable(reason)) if attempts >= UNREACHABLE_TRIES => {
                    self.circuit.failed(reason);
                }
                Err(_) => {}
            }
            let error = match outcome {
                Ok(value) => {
                    return Ok(Called {
                        value,
                        attempts,
                        last_error,
                    });
                }
                Err(error) => error,
            };
            if error.is_rate_limit() {
                self.stats
                    .rate_limited
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let wait = match next_step(&error, is_write) {
                Next::Fail => None,
                Next::RefreshToken if refreshed => None,
                Next::RefreshToken => {
                    refreshed = true;
                    refresh_now = true;
                    Some(Duration::ZERO)
                }
                Next::Retry if matches!(error, CallError::Unreachable(_)) => (attempts
                    < UNREACHABLE_TRIES)
                    .then(|| policy.next_backoff())
                    .flatten(),
                Next::Retry => policy.next_backoff(),
                Next::RetryAfter(after) => policy.next_backoff().map(|_| after.min(MAX_WAIT)),
            };
            // No wait outlasts the call's deadline: Google asking for longer than is left
            // ends the call now (its caller decides when to try again).
            let left = self.deadline.saturating_sub(started.elapsed());
            let wait = wait.filter(|w| *w <= left);
            tracing::debug!(%url, attempts, error = %error, ?wait, "Directory API call failed");
            let Some(wait) = wait else {
                return Err(CallFailure { error, attempts });
            };
            last_error = Some(error);
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt, in a slot of the limiter, which learns from the answer. `fresh_token`
    /// asks yup-oauth2 for a new token (after a 401).
    async fn attempt<T: DeserializeOwned>(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&impl Serialize>,
        fresh_token: bool,
        timeout: Duration,
    ) -> Result<T, CallError> {
        let slot = self.limiter.acquire().await;
        let outcome: Result<T, CallError> = async {
            let token = if fresh_token {
                self.auth.force_refreshed_token(&self.scopes).await
            } else {
                self.auth.token(&self.scopes).await
            }
            .map_err(|e| CallError::Token(e.to_string()))?;
            let token = token.token().ok_or_else(|| {
                CallError::Token("the token endpoint gave no access token".into())
            })?;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .timeout(timeout)
                .bearer_auth(token);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(|e| {
                if e.is_connect() {
                    CallError::Unreachable(e.to_string())
                } else {
                    CallError::NoAnswer(e.to_string())
                }
            })?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let bytes = response
                .bytes()
                .await
                .map_err(|e| CallError::NoAnswer(e.to_string()))?;
            if !(200..300).contains(&status) {
                return Err(from_answer(status, &bytes, retry_after));
            }
            // An empty answer (204) reads as null: what `()` expects.
            let body: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            serde_json::from_slice(body).map_err(|e| CallError::Unreadable(unreadable(&e)))
        }
        .await;
        match &outcome {
            Ok(_) => slot.admitted(),
            Err(error) if error.is_quota_signal() => slot.refused(),
            Err(_) => drop(slot),
        }
        outcome
    }
}

/// Why an answer could not be read, without quoting it: serde's own message may quote a
/// value of the answer, and an answer is not trusted to hold no secret.
fn unreadable(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match error.classify() {
        Category::Eof => "the answer ends early",
        Category::Syntax => "the answer is not JSON",
        Category::Data => "the answer is JSON of another shape than the API's",
        Category::Io => "the answer could not be read",
    };
    format!("{what} (line {}, column {})", error.line(), error.column())
}

/// The pages of a `users.list`, read one at a time so memory stays flat.
pub struct UserPages<'a> {
    client: &'a DirectoryClient,
    domain: String,
    /// Deleted users (`showDeleted=true`) instead of the others.
    deleted: bool,
    query: Option<String>,
    next: Option<String>,
    done: bool,
    /// Page tokens seen: a token that comes back means the listing cycles.
    seen: HashSet<String>,
}

impl UserPages<'_> {
    /// The next page, or `None` after the last.
    pub async fn next_page(&mut self) -> Result<Option<Vec<User>>, CallFailure> {
        if self.done {
            return Ok(None);
        }
        let mut url = self.client.url(&["users"]);
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("customer", &self.client.customer)
                .append_pair("domain", &self.domain)
                .append_pair("maxResults", "500")
                .append_pair("fields", LIST_FIELDS);
            if self.deleted {
                query.append_pair("showDeleted", "true");
            }
            if let Some(text) = &self.query {
                query.append_pair("query", text);
            }
            if let Some(token) = &self.next {
                query.append_pair("pageToken", token);
            }
        }
        let called: Called<UsersPage> = self
            .client
            .call(Method::GET, url, None::<&()>, false)
            .await?;
        let page = called.value;
        match page.next_page_token {
            Some(token) if !self.seen.insert(token.clone()) => {
                return Err(CallFailure {
                    error: CallError::Unreadable(format!(
                        "users.list of {} returned a page token twice: the listing cycles",
                        self.domain
                    )),
                    attempts: called.attempts,
                });
            }
            Some(token) => self.next = Some(token),
            None => self.done = true,
        }
        Ok(Some(page.users))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_answer_is_described_without_quoting_it() {
        let error =
            serde_json::from_str::<types::User>(r#"{"suspended": "rahasia-123"}"#).unwrap_err();
        assert!(error.to_string().contains("rahasia-123"), "serde quotes it");
        let described = unreadable(&error);
        assert!(!described.contains("rahasia"), "{described}");
        assert!(described.contains("another shape"), "{described}");
    }

    #[test]
    fn keys_readable_by_others_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        std::fs::write(&path, "{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = check_key_permissions(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(check_key_permissions(&path).is_ok());
    }
}
