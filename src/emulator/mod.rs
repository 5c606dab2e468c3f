//! A local emulator of Google's Admin SDK Directory API and token endpoint, faithful to
//! `reference/admin.directory_v1.json`, `directory-api.md` and `oauth-service-account.md`,
//! served over real HTTP (axum) so the daemon's own client code is what the tests run.
//!
//! Choices where the references say UNVERIFIED (also in README, "The emulator"):
//! - a subject that is absent, or not a user of the emulated domains, gets
//!   `unauthorized_client`; a user of the domains who is not an admin gets a token (as
//!   domain-wide delegation does) and every Directory call then answers 403 `forbidden`;
//! - the token endpoint accepts as audience its own `token_uri` (what yup-oauth2 sends) or
//!   Google's `https://oauth2.googleapis.com/token`;
//! - `users.insert` answers 200 with the created user.

pub mod auth;
pub mod errors;
pub mod users;

use auth::{JWT_BEARER, ServiceAccount, random_token, scopes_granted};
use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use errors::{ApiError, TokenError};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;
use users::Users;

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
}

impl Default for Options {
    fn default() -> Self {
        let naming = crate::config::Naming::default();
        let mut domains = naming.domains();
        domains.push("belajar.id".into());
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            domains,
            admins: vec!["admin@belajar.id".into()],
            key_out: None,
            token_lifetime: Duration::from_secs(3599),
        }
    }
}

/// A token the emulator issued.
struct Grant {
    subject: String,
    expires: Instant,
}

/// Everything the emulator holds, behind one lock (calls are short).
struct World {
    grants: HashMap<String, Grant>,
    users: Users,
    org_units: BTreeSet<String>,
}

/// State shared by the handlers and the test handle.
struct Shared {
    account: ServiceAccount,
    token_uri: String,
    domains: BTreeSet<String>,
    token_lifetime: Duration,
    world: Mutex<World>,
}

impl Shared {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().expect("emulator state lock")
    }
}

/// A running emulator. Dropping it stops the server.
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
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Starts an emulator on `options.listen` and returns once it accepts connections.
pub async fn start(options: Options) -> std::io::Result<Emulator> {
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
    let now = now_rfc3339();
    let mut users = Users::default();
    for admin in &options.admins {
        users.add_admin(admin, &now);
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
        world: Mutex::new(World {
            grants: HashMap::new(),
            users,
            org_units: ["/".to_owned()].into(),
        }),
    });
    let app = Router::new()
        .route("/token", post(token))
        .route("/admin/directory/v1/users", post(insert_user))
        .route("/admin/directory/v1/users/{user_key}", get(get_user))
        .with_state(shared.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(e) = server.await {
            tracing::error!(error = %e, "emulator server failed");
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

/// `POST /token`: the JWT-bearer grant.
async fn token(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Json<Value>, TokenError> {
    if form.get("grant_type").map(String::as_str) != Some(JWT_BEARER) {
        return Err(TokenError {
            error: "unsupported_grant_type",
            ..TokenError::bad_request("Invalid grant_type.")
        });
    }
    let assertion = form
        .get("assertion")
        .ok_or_else(|| TokenError::bad_request("Missing required parameter: assertion"))?;
    let now = jiff::Timestamp::now().as_second();
    let claims = shared.account.verify(assertion, &shared.token_uri, now)?;
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
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(ApiError::login_required)?;
    let world = shared.world();
    let grant = world
        .grants
        .get(token.trim())
        .filter(|g| g.expires > Instant::now())
        .ok_or_else(ApiError::invalid_credentials)?;
    if !world.users.is_admin(&grant.subject) {
        return Err(ApiError::forbidden());
    }
    Ok(world)
}

/// `users.get`.
async fn get_user(
    State(shared): State<Arc<Shared>>,
    Path(user_key): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let world = authorize(&shared, &headers)?;
    world.users.get(&user_key).map(Json)
}

/// `users.insert`.
async fn insert_user(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let mut world = authorize(&shared, &headers)?;
    let body: Value =
        serde_json::from_slice(&body).map_err(|_| ApiError::invalid("Invalid Input"))?;
    let World {
        users, org_units, ..
    } = &mut *world;
    users
        .insert(&body, &shared.domains, org_units, &now_rfc3339())
        .map(Json)
}
