//! A local emulator of Google's Admin SDK Directory API and token endpoint, faithful to
//! the discovery document (`tests/fixtures/admin.directory_v1.json`) and `docs/architecture.md`,
//! served over real HTTP (axum) so that the daemon's own client code is what tests run.
//!
//! Choices where the references say UNVERIFIED (also in README, "The emulator"):
//! - a subject that is absent, or not a user of the emulated domains, gets
//!   `unauthorized_client`; a user of the domains who is not an admin gets a token (as
//!   domain-wide delegation does) and every Directory call then answers 403 `forbidden`;
//! - the token endpoint accepts as audience its own `token_uri` (what yup-oauth2 sends) or
//!   Google's `https://oauth2.googleapis.com/token`;
//! - `users.insert` answers 200 with the user; `users.delete` and `users.undelete` 204;
//! - a write to a user still settling after its creation answers 412 `conditionNotMet`
//!   "User creation is not complete."; `maxResults` outside 1–500 answers 400 `invalid`;
//! - `orgUnitPath=` in a query matches that unit only; a second org unit of the same path
//!   answers 409 `duplicate`;
//! - a lost response closes the connection after the write is applied, before any byte
//!   of the answer.

pub mod auth;
pub mod errors;
pub mod faults;
pub mod fields;
pub mod licences;
pub mod licensing;
pub mod orgunits;
pub mod query;
mod signin;
pub mod users;

use auth::{JWT_BEARER, ServiceAccount, random_token, scopes_granted};
use axum::extract::{Form, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use errors::{ApiError, TokenError};
use faults::{Counters, FaultState, Faults};
use orgunits::OrgUnits;
use serde_json::{Value, json};
/// Signs claims as the emulator's sign-in side signs ID tokens (tests forge with it).
pub use signin::sign_id_token;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use users::{ListParams, Now, Order, Rules, Users};

/// How to start an emulator.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    /// Domains the emulated customer owns.
    pub domains: Vec<String>,
    /// Delegated admins that may call the API.
    pub admins: Vec<String>,
    /// Where to write the service-account key file (a temp file when `None`).
    pub key_out: Option<PathBuf>,
    /// Lifetime of access tokens.
    pub token_lifetime: Duration,
    pub faults: Faults,
    /// Seed of every random fault, so runs repeat.
    pub seed: u64,
    /// Licences per SKU (`1010070001` → 1,200); a SKU not listed has none.
    pub licences: BTreeMap<String, u32>,
    /// How long a licence taken back stays unusable (24 h at Google).
    pub licence_reuse_delay: Duration,
    /// Whether new users get an Education Fundamentals licence by themselves (Google's
    /// default for existing domains since 2025), which then cannot be removed.
    pub auto_licensing: bool,
    /// The Enterprise License Manager API is not enabled in the caller's Cloud project:
    /// every licensing call answers 403 `accessNotConfigured`.
    pub licensing_disabled: bool,
}

impl Default for Options {
    fn default() -> Self {
        let mut domains = crate::config::Naming::default().domains();
        domains.push("belajar.id".into());
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            domains,
            admins: vec!["admin@belajar.id".into()],
            key_out: None,
            token_lifetime: Duration::from_secs(3599),
            faults: Faults::default(),
            seed: 0,
            licences: BTreeMap::new(),
            licence_reuse_delay: Duration::from_secs(24 * 3600),
            auto_licensing: false,
            licensing_disabled: false,
        }
    }
}

/// A token the emulator issued.
struct Grant {
    subject: String,
    expires: Instant,
    /// The scopes asked for, space-separated.
    scopes: String,
}

/// The emulated Workspace account, behind one lock (every call is short).
struct World {
    grants: HashMap<String, Grant>,
    users: Users,
    org_units: OrgUnits,
    faults: FaultState,
    counters: Counters,
    sign_in: signin::SignIn,
    licences: licences::Licences,
}

/// State shared by the handlers and the handle.
struct Shared {
    account: ServiceAccount,
    token_uri: String,
    domains: BTreeSet<String>,
    token_lifetime: Duration,
    /// See [`Options::licensing_disabled`].
    licensing_disabled: bool,
    world: Mutex<World>,
    /// Whether user listings are held (the `hold_listing` fault), for them to wait on.
    listing_held: tokio::sync::watch::Sender<bool>,
}

impl Shared {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().expect("emulator state lock")
    }
}

/// Closes the connection a request came on, without an answer (a lost response).
#[derive(Clone)]
struct Hangup(Arc<Notify>);

/// A running emulator. Dropping it stops accepting connections.
pub struct Emulator {
    /// `http://127.0.0.1:PORT`: the API base and the token endpoint's host.
    pub base_url: String,
    /// The service-account key file for this emulator (mode 0600).
    pub key_file: PathBuf,
    shared: Arc<Shared>,
    _key_dir: Option<tempfile::TempDir>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
    }
}

impl Emulator {
    /// How many access tokens are live.
    pub fn live_tokens(&self) -> usize {
        let now = Instant::now();
        self.shared
            .world()
            .grants
            .values()
            .filter(|g| g.expires > now)
            .count()
    }

    /// Invalidates every access token issued so far (as an expiry or a revocation would).
    pub fn revoke_tokens(&self) {
        self.shared.world().grants.clear();
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.shared.world().faults.faults.clone()
    }

    /// Changes the faults (as `PUT /emulator/faults` does).
    pub fn set_faults(&self, faults: Faults) -> Result<(), String> {
        faults.validate()?;
        self.shared.world().faults.faults = faults;
        Ok(())
    }

    /// Calls answered so far, by method and status.
    pub fn counters(&self) -> Counters {
        self.shared.world().counters.clone()
    }

    /// Registers an OAuth client of the sign-in side with its exact redirect URIs;
    /// returns its id and secret.
    pub fn register_oauth_client(&self, redirect_uris: Vec<String>) -> (String, String) {
        let new = signin::NewClient {
            client_id: None,
            client_secret: None,
            redirect_uris,
        };
        let answer = signin::register(&self.shared, new);
        let text = |k: &str| answer[k].as_str().unwrap_or_default().to_owned();
        (text("client_id"), text("client_secret"))
    }

    /// Adds `more` licences of `sku` (as Google support would).
    pub fn grant_licences(&self, sku: &str, more: u32) {
        self.shared.world().licences.grant(sku, more);
    }

    /// Licences of `sku` free now, and taken back but not yet reusable.
    pub fn licences_free(&self, sku: &str) -> (u32, u32) {
        let mut world = self.shared.world();
        let now = Instant::now();
        let free = world.licences.available(sku, now);
        (free, world.licences.cooling(sku, now))
    }

    /// The SKU of `product` the user `key` (address or id) holds.
    pub fn licence_of(&self, product: &str, key: &str) -> Option<String> {
        let world = self.shared.world();
        let id = world.users.id_of(key)?;
        world.licences.held(product, &id).map(str::to_owned)
    }

    /// How many users exist (not counting deleted ones).
    pub fn user_count(&self) -> usize {
        self.shared.world().users.len()
    }

    /// Creates `users` (bodies as `users.insert` takes them) and the org units they are
    /// in, without HTTP: a directory of millions for benchmarks, in seconds.
    pub fn seed_users(&self, users: impl IntoIterator<Item = Value>) -> Result<usize, String> {
        let mut world = self.shared.world();
        let now = now();
        let mut created = 0;
        for user in users {
            let path = user["orgUnitPath"].as_str().unwrap_or("/").to_owned();
            let mut parent = String::from("/");
            for name in path.split('/').filter(|n| !n.is_empty()) {
                let unit = json!({"name": name, "parentOrgUnitPath": parent});
                match world.org_units.insert(&unit) {
                    Ok(made) => parent = made["orgUnitPath"].as_str().unwrap_or("/").to_owned(),
                    Err(_) if parent == "/" => parent = format!("/{name}"),
                    Err(_) => parent = format!("{parent}/{name}"),
                }
            }
            write_users(&self.shared, &mut world, |users, rules| {
                users.insert(&user, rules, &now)
            })
            .map_err(|e| format!("{}: {e:?}", user["primaryEmail"]))?;
            created += 1;
        }
        Ok(created)
    }
}

fn now() -> Now {
    Now {
        instant: Instant::now(),
        rfc3339: jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string(),
    }
}

/// Starts an emulator on `options.listen` and returns once it accepts connections.
pub async fn start(options: Options) -> std::io::Result<Emulator> {
    options.faults.validate().map_err(std::io::Error::other)?;
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let token_uri = format!("{base_url}/token");
    let account = ServiceAccount::generate();
    let (key_dir, key_file) = match &options.key_out {
        Some(path) => (None, path.clone()),
        None => {
            let dir = tempfile::tempdir()?;
            let path = dir.path().join("service-account.json");
            (Some(dir), path)
        }
    };
    account.write_key_file(&key_file, &token_uri)?;
    let mut users = Users::default();
    let started = now();
    for admin in &options.admins {
        users.add_admin(admin, &started);
    }
    let shared = Arc::new(Shared {
        account,
        token_uri,
        domains: options
            .domains
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .collect(),
        token_lifetime: options.token_lifetime,
        licensing_disabled: options.licensing_disabled,
        listing_held: tokio::sync::watch::Sender::new(options.faults.hold_listing),
        world: Mutex::new(World {
            grants: HashMap::new(),
            users,
            org_units: OrgUnits::default(),
            faults: FaultState::new(options.faults.clone(), options.seed),
            counters: Counters::default(),
            sign_in: signin::SignIn::default(),
            licences: licences::Licences::new(
                &options.licences,
                options.licence_reuse_delay,
                options.auto_licensing,
            ),
        }),
    });
    let app = router(shared.clone());
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "emulator accept failed");
                        continue;
                    }
                },
                _ = &mut stopped => break,
            };
            tokio::spawn(serve_connection(stream, app.clone()));
        }
    });
    Ok(Emulator {
        base_url,
        key_file,
        shared,
        _key_dir: key_dir,
        shutdown: Some(stop),
    })
}

/// Serves one connection until it ends or a handler hangs it up (a lost response).
async fn serve_connection(stream: tokio::net::TcpStream, app: Router) {
    let hangup = Hangup(Arc::new(Notify::new()));
    let app = app.layer(Extension(hangup.clone()));
    let service = hyper_util::service::TowerToHyperService::new(app);
    let builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        // Dropping the connection closes the socket with nothing sent.
        _ = hangup.0.notified() => {}
    }
}

fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route(
            "/admin/directory/v1/users",
            get(list_users).post(insert_user),
        )
        .route(
            "/admin/directory/v1/users/{user_key}",
            get(get_user)
                .put(update_user)
                .patch(update_user)
                .delete(delete_user),
        )
        .route(
            "/admin/directory/v1/users/{user_key}/undelete",
            post(undelete_user),
        )
        .route(
            "/admin/directory/v1/customer/{customer}/orgunits",
            get(list_org_units).post(insert_org_unit),
        )
        .route(
            "/admin/directory/v1/customer/{customer}/orgunits/{*path}",
            get(get_org_unit),
        )
        .merge(licensing::router())
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            faults_layer,
        ));
    Router::new()
        .route("/token", post(token))
        .route("/emulator/faults", get(get_faults).put(put_faults))
        .route("/emulator/counters", get(get_counters))
        .route(
            "/emulator/licences",
            get(licensing::pools).post(licensing::grant),
        )
        .route("/emulator/signin", post(sign_in))
        .route("/emulator/oauth-clients", post(register_oauth_client))
        .route("/.well-known/openid-configuration", get(signin::discovery))
        .route(
            "/o/oauth2/v2/auth",
            get(signin::authorize).post(signin::sign_in),
        )
        .route("/oauth2/v3/certs", get(signin::jwks))
        .merge(api)
        .fallback(|| async { ApiError::no_such_method() })
        .with_state(shared)
}

/// Every API route served: HTTP method, axum path, and the discovery document's method id
/// (the contract tests check each against the document).
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/admin/directory/v1/users", "directory.users.list"),
    (
        "POST",
        "/admin/directory/v1/users",
        "directory.users.insert",
    ),
    (
        "GET",
        "/admin/directory/v1/users/{user_key}",
        "directory.users.get",
    ),
    (
        "PUT",
        "/admin/directory/v1/users/{user_key}",
        "directory.users.update",
    ),
    (
        "PATCH",
        "/admin/directory/v1/users/{user_key}",
        "directory.users.patch",
    ),
    (
        "DELETE",
        "/admin/directory/v1/users/{user_key}",
        "directory.users.delete",
    ),
    (
        "POST",
        "/admin/directory/v1/users/{user_key}/undelete",
        "directory.users.undelete",
    ),
    (
        "GET",
        "/admin/directory/v1/customer/{customer}/orgunits",
        "directory.orgunits.list",
    ),
    (
        "POST",
        "/admin/directory/v1/customer/{customer}/orgunits",
        "directory.orgunits.insert",
    ),
    (
        "GET",
        "/admin/directory/v1/customer/{customer}/orgunits/{*path}",
        "directory.orgunits.get",
    ),
];

/// The discovery document's id of the method a request calls.
fn method_id(method: &Method, path: &str) -> &'static str {
    ROUTES
        .iter()
        .chain(licensing::ROUTES)
        .find(|(m, p, _)| *m == method.as_str() && *p == path)
        .map_or("unknown", |(_, _, id)| id)
}

/// Latency, concurrency, injected errors, quota and lost responses around every API call,
/// and the counters of what was answered.
async fn faults_layer(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let method = method_id(
        request.method(),
        request
            .extensions()
            .get::<MatchedPath>()
            .map_or("", MatchedPath::as_str),
    );
    let is_write = request.method() != Method::GET;
    let hangup = request.extensions().get::<Hangup>().cloned();
    let subject = bearer(request.headers()).and_then(|t| {
        let world = shared.world();
        world
            .grants
            .get(t)
            .filter(|g| g.expires > Instant::now())
            .map(|g| g.subject.clone())
    });
    let latency = {
        let mut world = shared.world();
        world.faults.in_flight += 1;
        world.faults.latency()
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if method == "directory.users.list" {
        let _ = shared.listing_held.subscribe().wait_for(|held| !held).await;
    }
    let admitted = shared
        .world()
        .faults
        .admit(subject.as_deref(), Instant::now());
    let response = match admitted {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    };
    let lost = {
        let mut world = shared.world();
        world.faults.in_flight -= 1;
        let lost = is_write && response.status().is_success() && world.faults.lose_response();
        world
            .counters
            .record(method, if lost { 0 } else { response.status().as_u16() });
        lost
    };
    if lost && let Some(hangup) = hangup {
        // The write is applied; the caller never hears of it.
        hangup.0.notify_one();
        std::future::pending::<()>().await;
    }
    response
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// `POST /token`: the JWT-bearer grant.
async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Json<Value>, TokenError> {
    if form.get("grant_type").map(String::as_str) == Some("authorization_code") {
        return signin::exchange(&shared, &form, basic_auth(&headers)).map(Json);
    }
    if form.get("grant_type").map(String::as_str) != Some(JWT_BEARER) {
        return Err(TokenError {
            error: "unsupported_grant_type",
            ..TokenError::bad_request("Invalid grant_type.")
        });
    }
    let assertion = form
        .get("assertion")
        .ok_or_else(|| TokenError::bad_request("Missing required parameter: assertion"))?;
    let claims = shared.account.verify(
        assertion,
        &shared.token_uri,
        jiff::Timestamp::now().as_second(),
    )?;
    if !scopes_granted(claims.scope.as_deref()) {
        return Err(TokenError::invalid_scope());
    }
    let subject = claims
        .sub
        .map(|s| s.to_ascii_lowercase())
        .filter(|s| shared.world().users.exists(s))
        .ok_or_else(TokenError::unauthorized_client)?;
    let access_token = format!("ya29.{}", random_token(48));
    let lifetime = shared.token_lifetime;
    shared.world().grants.insert(
        access_token.clone(),
        Grant {
            subject,
            expires: Instant::now() + lifetime,
            scopes: claims.scope.clone().unwrap_or_default(),
        },
    );
    Ok(Json(json!({
        "access_token": access_token,
        "expires_in": lifetime.as_secs(),
        "token_type": "Bearer",
    })))
}

/// Checks the bearer token of an API call: 401 without or with a bad token, 403 when its
/// subject is not an admin. Returns the world, locked, for the call to use.
fn authorize<'a>(
    shared: &'a Shared,
    headers: &HeaderMap,
) -> Result<MutexGuard<'a, World>, ApiError> {
    let token = bearer(headers).ok_or_else(ApiError::login_required)?;
    let world = shared.world();
    let grant = world
        .grants
        .get(token)
        .filter(|g| g.expires > Instant::now())
        .ok_or_else(ApiError::invalid_credentials)?;
    if !world.users.is_admin(&grant.subject) {
        return Err(ApiError::forbidden());
    }
    Ok(world)
}

/// A JSON answer, cut to the `fields` parameter when there is one.
fn answer(value: Value, params: &HashMap<String, String>) -> Json<Value> {
    Json(match params.get("fields") {
        Some(spec) => fields::select(&value, spec),
        None => value,
    })
}

fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|_| ApiError::invalid("Invalid Input"))
}

/// Runs a write on the users under the rules of the moment (owned domains, existing org
/// units, the propagation window).
fn write_users<T>(
    shared: &Shared,
    world: &mut World,
    write: impl FnOnce(&mut Users, &Rules<'_>) -> T,
) -> T {
    let World {
        users,
        org_units,
        faults,
        ..
    } = world;
    let rules = Rules {
        domains: &shared.domains,
        org_units,
        propagation: faults.faults.propagation(),
    };
    write(users, &rules)
}

/// `users.get`.
async fn get_user(
    State(shared): State<Arc<Shared>>,
    Path(user_key): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let world = authorize(&shared, &headers)?;
    let propagation = world.faults.faults.propagation();
    let user = world.users.get(&user_key, Instant::now(), propagation)?;
    Ok(answer(project(user, &params), &params))
}

/// Drops custom schema fields unless `projection=full` (or `custom`) asks for them.
fn project(mut user: Value, params: &HashMap<String, String>) -> Value {
    if !matches!(
        params.get("projection").map(String::as_str),
        Some("full" | "custom")
    ) && let Some(object) = user.as_object_mut()
    {
        object.remove("customSchemas");
    }
    user
}

/// `users.insert`.
async fn insert_user(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let mut world = authorize(&shared, &headers)?;
    let body = json_body(&body)?;
    let user = write_users(&shared, &mut world, |users, rules| {
        users.insert(&body, rules, &now())
    })?;
    if let Some(id) = user["id"].as_str() {
        world.licences.created(id, Instant::now());
    }
    Ok(answer(user, &params))
}

/// `users.update` (PUT) and `users.patch` (PATCH): both with patch semantics.
async fn update_user(
    State(shared): State<Arc<Shared>>,
    Path(user_key): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let mut world = authorize(&shared, &headers)?;
    let body = json_body(&body)?;
    let archiving = archiving(&mut world, &user_key, &body)?;
    let user = write_users(&shared, &mut world, |users, rules| {
        users.update(&user_key, &body, rules, &now())
    })?;
    if let Some((id, archived)) = archiving {
        world.licences.archived(&id, archived, Instant::now())?;
    }
    Ok(answer(user, &params))
}

/// `users.delete`: an empty answer.
async fn delete_user(
    State(shared): State<Arc<Shared>>,
    Path(user_key): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let mut world = authorize(&shared, &headers)?;
    let id = world.users.id_of(&user_key);
    world.users.delete(&user_key, &now())?;
    if let Some(id) = id {
        world.licences.deleted(&id, Instant::now());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// An update that changes `archived`: the user's id and the new value, once checked that
/// archiving has an Archived User licence to take (412 before anything changes if not).
fn archiving(
    world: &mut World,
    user_key: &str,
    body: &Value,
) -> Result<Option<(String, bool)>, ApiError> {
    let (Some(archived), Some(id)) = (body["archived"].as_bool(), world.users.id_of(user_key))
    else {
        return Ok(None);
    };
    let now = Instant::now();
    let holds = world.licences.held("101034", &id).is_some();
    if archived && !holds && world.licences.available(licences::ARCHIVED, now) == 0 {
        return Err(ApiError::condition_not_met(
            "Insufficient archived user licenses",
        ));
    }
    Ok(Some((id, archived)))
}

/// `users.undelete`: by id, into `orgUnitPath` (the root when absent).
async fn undelete_user(
    State(shared): State<Arc<Shared>>,
    Path(user_key): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    let mut world = authorize(&shared, &headers)?;
    let body = if body.is_empty() {
        json!({})
    } else {
        json_body(&body)?
    };
    write_users(&shared, &mut world, |users, rules| {
        users.undelete(&user_key, body["orgUnitPath"].as_str(), rules)
    })?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reads the parameters of `users.list`, with Google's answers to bad ones.
fn list_params(
    params: &HashMap<String, String>,
    domains: &BTreeSet<String>,
) -> Result<ListParams, ApiError> {
    let domain = match (params.get("customer"), params.get("domain")) {
        (None, None) => return Err(ApiError::bad_request()),
        (Some(c), _) if c != "my_customer" && c != users::CUSTOMER_ID => {
            return Err(ApiError::bad_request());
        }
        (_, Some(d)) if !domains.contains(&d.to_ascii_lowercase()) => {
            return Err(ApiError::forbidden());
        }
        (_, d) => d.map(|d| d.to_ascii_lowercase()),
    };
    let max_results = match params.get("maxResults") {
        None => 100,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| ApiError::invalid("Invalid Input"))?,
    };
    let order = match params.get("orderBy").map(String::as_str) {
        None => Order::Id,
        Some("email") => Order::Email,
        Some("givenName") => Order::GivenName,
        Some("familyName") => Order::FamilyName,
        Some(_) => return Err(ApiError::invalid("Invalid Input")),
    };
    let descending = match params.get("sortOrder").map(String::as_str) {
        None | Some("ASCENDING") => false,
        Some("DESCENDING") => true,
        Some(_) => return Err(ApiError::invalid("Invalid Input")),
    };
    let query = match params.get("query") {
        None => Vec::new(),
        Some(text) => query::parse(text).ok_or_else(|| ApiError::invalid("Invalid Input"))?,
    };
    Ok(ListParams {
        domain,
        max_results,
        page_token: params.get("pageToken").filter(|t| !t.is_empty()).cloned(),
        order,
        descending,
        // Google reads booleans case-insensitively (its own clients send `True`).
        show_deleted: params
            .get("showDeleted")
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        query,
        listing_limit: None,
        query_lag: Duration::ZERO,
    })
}

/// `users.list`.
async fn list_users(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let world = authorize(&shared, &headers)?;
    let mut list = list_params(&params, &shared.domains)?;
    list.listing_limit = world
        .faults
        .faults
        .listing_limit_secs
        .map(Duration::from_secs);
    list.query_lag = Duration::from_millis(world.faults.faults.query_lag_ms);
    let mut page = world
        .users
        .list(&list, Instant::now(), world.faults.faults.propagation())?;
    if let Some(users) = page.get_mut("users").and_then(Value::as_array_mut) {
        for user in users.iter_mut() {
            *user = project(user.take(), &params);
        }
    }
    Ok(answer(page, &params))
}

fn check_customer(customer: &str) -> Result<(), ApiError> {
    if customer == "my_customer" || customer == users::CUSTOMER_ID {
        Ok(())
    } else {
        Err(ApiError::bad_request())
    }
}

/// `orgunits.list`.
async fn list_org_units(
    State(shared): State<Arc<Shared>>,
    Path(customer): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let world = authorize(&shared, &headers)?;
    check_customer(&customer)?;
    let under = params.get("orgUnitPath").map_or("/", String::as_str);
    let kind = params.get("type").map_or("children", String::as_str);
    Ok(answer(world.org_units.list(under, kind)?, &params))
}

/// `orgunits.get`.
async fn get_org_unit(
    State(shared): State<Arc<Shared>>,
    Path((customer, path)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let world = authorize(&shared, &headers)?;
    check_customer(&customer)?;
    Ok(answer(world.org_units.get(&path)?, &params))
}

/// `orgunits.insert`.
async fn insert_org_unit(
    State(shared): State<Arc<Shared>>,
    Path(customer): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let mut world = authorize(&shared, &headers)?;
    check_customer(&customer)?;
    let body = json_body(&body)?;
    Ok(answer(world.org_units.insert(&body)?, &params))
}

/// `GET /emulator/faults`.
async fn get_faults(State(shared): State<Arc<Shared>>) -> Json<Faults> {
    Json(shared.world().faults.faults.clone())
}

/// `PUT /emulator/faults`: replaces the faults.
async fn put_faults(State(shared): State<Arc<Shared>>, Json(faults): Json<Faults>) -> Response {
    match faults.validate() {
        Ok(()) => {
            shared.world().faults.faults = faults.clone();
            shared.listing_held.send_replace(faults.hold_listing);
            Json(faults).into_response()
        }
        Err(why) => (StatusCode::BAD_REQUEST, why).into_response(),
    }
}

/// What a test sends to `POST /emulator/signin`: a person signing in.
#[derive(serde::Deserialize)]
struct SignIn {
    email: String,
    password: String,
    /// The password chosen when a change is required.
    #[serde(default)]
    new_password: Option<String>,
}

/// `POST /emulator/signin`: 200 `{"changePasswordRequired": bool}` when the password is
/// right and the user active (its `lastLoginTime` becomes now), 401 otherwise. Not a
/// Google API: the stand-in for a person at Google's sign-in page.
async fn sign_in(State(shared): State<Arc<Shared>>, Json(body): Json<SignIn>) -> Response {
    let signed_in = shared.world().users.sign_in(
        &body.email,
        &body.password,
        body.new_password.as_deref(),
        &now(),
    );
    match signed_in {
        Ok(must_change) => Json(json!({"changePasswordRequired": must_change})).into_response(),
        Err(refused) => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": match refused {
                users::SignInRefused::WrongAddressOrPassword => "wrong address or password",
                users::SignInRefused::Suspended => "account suspended",
            }})),
        )
            .into_response(),
    }
}

/// A client's id and secret from an `Authorization: Basic` header.
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let (id, secret) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

/// `POST /emulator/oauth-clients`: registers an OAuth client for the sign-in side.
async fn register_oauth_client(
    State(shared): State<Arc<Shared>>,
    Json(new): Json<signin::NewClient>,
) -> Json<Value> {
    Json(signin::register(&shared, new))
}

/// `GET /emulator/counters`.
async fn get_counters(State(shared): State<Arc<Shared>>) -> Json<Counters> {
    Json(shared.world().counters.clone())
}
