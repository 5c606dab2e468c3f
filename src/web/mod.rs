//! The web console, served by the daemon: school operators and the helpdesk sign in with
//! their belajar.id account (Google's OpenID Connect, [`oidc`]) and do there what the
//! shell commands do, for their own school or, for the helpdesk, for anyone.
//!
//! - Pages are rendered on the server (maud, which escapes what it is given) in Bahasa
//!   Indonesia, and work without JavaScript.
//! - Who may do what is decided for each request from the signed-in address, the
//!   configuration (helpdesk, admins) and the store (an active operator's school):
//!   [`access`]. Everything else gets 403 and a line in the log.
//! - A session is a signed, expiring cookie (`HttpOnly`, `SameSite=Lax`, `Secure`);
//!   every form carries the session's CSRF token; every page says `no-store` and a strict
//!   Content-Security-Policy; resets, sheets and sign-ins are limited per person and per
//!   client address ([`limits`]).
//! - Actions run the daemon's own code (the commands of the control socket, or the
//!   credentials module), recorded in the account's history with who signed in, the
//!   client's address and the ticket.

// Handlers answer early with a page (`Result<_, Response>`), as axum's own extractors do.
#![allow(clippy::result_large_err)]

pub mod access;
mod api;
pub mod config;
mod limits;
pub mod oidc;
mod pages;
mod people;
pub mod public;
mod refusal;
mod school;
pub(crate) mod session;
mod signin;
pub mod tokens;

use crate::daemon::Shared;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum_extra::extract::cookie::Key;
pub use config::Web;
use refusal::Refusal;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Why the console could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("web.listen {listen}: {source}")]
    Listen {
        listen: String,
        source: std::io::Error,
    },
    #[error("web.client_secret_file {path}: {why}")]
    Secret { path: String, why: String },
    #[error("web.tls_cert / web.tls_key: {0}")]
    Tls(String),
    #[error("{0} (the codes of the Lupa kata sandi page go through it)")]
    Mail(String),
    #[error("the console's cookie key {path}: {source}")]
    CookieKey {
        path: String,
        source: std::io::Error,
    },
}

/// What every handler of the console shares.
pub struct Console {
    daemon: Arc<Shared>,
    web: Web,
    cookie_key: Key,
    /// Discovered at the first sign-in (and again after a failure), so that the console
    /// starts while the provider cannot be reached.
    provider: tokio::sync::Mutex<Option<Arc<oidc::Provider>>>,
    http: reqwest::Client,
    client_secret: String,
    redirect_uri: String,
    limits: limits::Limits,
    /// Store work of the console at once: it is CPU-bound, so more threads only hold more
    /// memory (200 clients at once grew the daemon by 500 MiB without it).
    workers: tokio::sync::Semaphore,
    /// The emailed codes of Lupa kata sandi.
    codes: public::Codes,
    /// The public pages' lines in accounts' histories, written together.
    history: public::History,
    /// The mail relay the codes go through (`None`: no `[mail]`, the page sends people
    /// to their school's operator).
    relay: Option<Arc<crate::notices::Relay>>,
}

impl Console {
    /// The request's cookies, checked against the console's key.
    fn cookies(&self, headers: &axum::http::HeaderMap) -> axum_extra::extract::SignedCookieJar {
        axum_extra::extract::SignedCookieJar::from_headers(headers, self.cookie_key.clone())
    }

    /// The provider, discovered now if it was not yet.
    async fn provider(&self) -> Result<Arc<oidc::Provider>, oidc::SignInError> {
        let mut provider = self.provider.lock().await;
        if let Some(known) = &*provider {
            return Ok(known.clone());
        }
        let found = Arc::new(
            oidc::Provider::discover(
                self.http.clone(),
                &self.web.issuer,
                self.web.client_id.clone(),
                self.client_secret.clone(),
                self.redirect_uri.clone(),
            )
            .await?,
        );
        *provider = Some(found.clone());
        Ok(found)
    }

    /// An action (a sheet, a repair: calls to Google that may take minutes), off the async
    /// runtime and not counted among the [`Console::workers`] that build pages.
    async fn act<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&Console) -> T + Send + 'static,
    ) -> T {
        let console = self.clone();
        tokio::task::spawn_blocking(move || work(&console))
            .await
            .expect("console work panicked")
    }

    /// Takes one of `person`'s allowance of `kind` (resets, sheets) if given, then one of
    /// their client address's: 429 (and a line in the log) when either is spent.
    async fn allow(
        self: &Arc<Self>,
        person: &session::Person,
        kind: Option<limits::Kind>,
    ) -> Result<(), Refusal> {
        let address = (limits::Kind::Address, person.address.to_string());
        let own = kind.map(|kind| (kind, person.email.clone()));
        for (kind, key) in own.into_iter().chain([address]) {
            self.take(kind, key, &person.email, person.who()).await?;
        }
        Ok(())
    }

    /// Takes one of `key`'s allowance of `kind` (kept in the store, off the async
    /// runtime): 429 (and a line in the log naming `who`) when it is spent.
    async fn take(
        self: &Arc<Self>,
        kind: limits::Kind,
        key: String,
        email: &str,
        who: Who,
    ) -> Result<(), Refusal> {
        match self.take_limit(kind, key).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(wait)) => {
                tracing::warn!(email, limit = ?kind, "console: limit reached");
                Err(Refusal::limited(wait, who))
            }
            Err(error) => Err(Refusal::failed(email, &error)),
        }
    }

    /// One of `key`'s allowance of `kind`, taken in the store off the async runtime:
    /// `Ok(Err(wait))` when it is spent.
    async fn take_limit(
        self: &Arc<Self>,
        kind: limits::Kind,
        key: String,
    ) -> Result<Result<(), Duration>, crate::store::StoreError> {
        self.blocking(move |c| {
            c.limits
                .take(&c.daemon.store(), kind, &key, jiff::Timestamp::now())
        })
        .await
    }

    /// The role of `email` now: the helpdesk and admin lists of the configuration in force
    /// (a SIGHUP that takes an agent off takes their rights at once), and their account.
    async fn role(self: &Arc<Self>, email: String) -> access::Role {
        self.blocking(move |c| {
            let account = c.daemon.store().account_by_email(&email).ok().flatten();
            access::role_of(&c.daemon.config().web, &email, account.as_ref())
        })
        .await
    }

    /// Reading the store for a page, off the async runtime, a few at once.
    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&Console) -> T + Send + 'static,
    ) -> T {
        let _permit = self.workers.acquire().await.expect("never closed");
        self.act(work).await
    }
}

/// What the console counts, for the metrics and `status`.
#[derive(Debug, Clone, Copy)]
pub enum What {
    SignIn,
    /// 403s and failed sign-ins.
    Refused,
    Reset,
    Sheet,
    Repair,
    /// 429s.
    Limited,
}

impl What {
    pub const ALL: [What; 6] = [
        What::SignIn,
        What::Refused,
        What::Reset,
        What::Sheet,
        What::Repair,
        What::Limited,
    ];

    pub fn name(self) -> &'static str {
        match self {
            What::SignIn => "sign_in",
            What::Refused => "refused",
            What::Reset => "reset",
            What::Sheet => "sheet",
            What::Repair => "repair",
            What::Limited => "limited",
        }
    }
}

/// Who asked what the console counts.
#[derive(Debug, Clone, Copy)]
pub enum Who {
    Operator,
    Helpdesk,
    Admin,
    /// The helpdesk's ticketing system, with an agent's token.
    Api,
    /// Signed in, and the console is not for them.
    Other,
    /// Not (yet) signed in: a failed sign-in, an address over its limit, a bad token.
    Unknown,
}

impl Who {
    pub const ALL: [Who; 6] = [
        Who::Operator,
        Who::Helpdesk,
        Who::Admin,
        Who::Api,
        Who::Other,
        Who::Unknown,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Who::Operator => "operator",
            Who::Helpdesk => "helpdesk",
            Who::Admin => "admin",
            Who::Api => "api",
            Who::Other => "other",
            Who::Unknown => "unknown",
        }
    }

    fn of(role: &access::Role) -> Who {
        match role {
            access::Role::Admin => Who::Admin,
            access::Role::Helpdesk => Who::Helpdesk,
            access::Role::Operator { .. } => Who::Operator,
            access::Role::Other => Who::Other,
        }
    }
}

/// Counters of the console since the daemon started, by what and who asked.
#[derive(Debug)]
pub struct Counters([[AtomicU64; Who::ALL.len()]; What::ALL.len()]);

impl Counters {
    pub fn get(&self, what: What, who: Who) -> u64 {
        self.0[what as usize][who as usize].load(Ordering::Relaxed)
    }

    /// All of `what`, whoever asked.
    pub fn total(&self, what: What) -> u64 {
        Who::ALL.iter().map(|who| self.get(what, *who)).sum()
    }
}

/// The console's counters (one set per process).
pub fn counters() -> &'static Counters {
    static COUNTERS: Counters =
        Counters([const { [const { AtomicU64::new(0) }; Who::ALL.len()] }; What::ALL.len()]);
    &COUNTERS
}

fn count(what: What, who: Who) {
    counters().0[what as usize][who as usize].fetch_add(1, Ordering::Relaxed);
}

/// The peer a connection came from (set per connection by [`serve`]).
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

/// The client's address: the peer's, or from `X-Forwarded-For` when the peer is a
/// configured proxy (the rightmost address no trusted proxy added).
fn client_address(peer: IpAddr, forwarded: Option<&str>, proxies: &[IpAddr]) -> IpAddr {
    if !proxies.contains(&peer) {
        return peer;
    }
    forwarded
        .into_iter()
        .flat_map(|f| f.rsplit(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .find(|a| !proxies.contains(a))
        .unwrap_or(peer)
}

/// The strict policy: nothing but this origin's stylesheet and forms; no scripts at all.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Headers of every answer: no caching (pages show passwords and personal data), the
/// policy, no framing, no sniffing, no referrer.
async fn safety_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(signin::home))
        .route("/masuk", get(signin::start))
        .route("/masuk/selesai", get(signin::finish))
        .route("/keluar", post(signin::sign_out))
        .route("/gaya.css", get(pages::stylesheet))
        .route("/sekolah/{npsn}", get(school::page))
        .route(
            "/sekolah/{npsn}/lembar",
            get(school::sheet_form).post(school::sheet),
        )
        .route("/akun/{key}", get(people::account))
        .route("/akun/{key}/reset", post(people::reset))
        .route("/akun/{key}/{action}", post(people::act))
        .route("/bantuan", get(people::search))
        .merge(match console.web.public_pages {
            true => public::routes(),
            false => Router::new(),
        })
        .nest("/api/v1", api::routes())
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn(safety_headers))
        .with_state(console)
}

/// Reads the cookie key at `path`, making it (64 random bytes, mode 0600) the first time:
/// sessions survive a restart of the daemon.
fn cookie_key(path: &Path) -> std::io::Result<Key> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() >= 64 => return Ok(Key::from(&bytes)),
        Ok(_) => {
            return Err(std::io::Error::other(
                "shorter than 64 bytes: remove it to make a new one (everyone signs in again)",
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let key = Key::generate();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(key.master())?;
    file.sync_all()?;
    Ok(key)
}

fn client_secret(web: &Web) -> Result<String, WebError> {
    let path = &web.client_secret_file;
    let refuse = |why: String| WebError::Secret {
        path: path.display().to_string(),
        why,
    };
    match crate::secret_file::readable_by_others(path) {
        Ok(Some(mode)) => {
            return Err(refuse(format!(
                "readable by others (mode {mode:o}): chmod 600 it"
            )));
        }
        Ok(None) => {}
        Err(e) => return Err(refuse(e.to_string())),
    }
    let secret = std::fs::read_to_string(path).map_err(|e| refuse(e.to_string()))?;
    let secret = secret.trim().to_owned();
    if secret.is_empty() {
        return Err(refuse("empty".into()));
    }
    Ok(secret)
}

fn tls_acceptor(web: &Web) -> Result<Option<tokio_rustls::TlsAcceptor>, WebError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    if !web.tls() {
        return Ok(None);
    }
    let bad =
        |what: &Path, e: &dyn std::fmt::Display| WebError::Tls(format!("{}: {e}", what.display()));
    let certs = CertificateDer::pem_file_iter(&web.tls_cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad(&web.tls_cert, &e))?;
    if let Ok(Some(mode)) = crate::secret_file::readable_by_others(&web.tls_key) {
        return Err(bad(
            &web.tls_key,
            &format!("readable by others (mode {mode:o}): chmod 600 it"),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&web.tls_key).map_err(|e| bad(&web.tls_key, &e))?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| WebError::Tls(e.to_string()))?;
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
}

/// A console bound and ready to serve.
pub struct Bound {
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// The store, for the limits' cleanup.
    store: Arc<crate::store::Store>,
    app: Router,
    pub url: String,
}

/// Binds the console of `daemon` as `[web]` says (`None` when it is off). Errors name
/// the setting at fault; nothing is served until [`serve`].
pub async fn bind(daemon: Arc<Shared>) -> Result<Option<Bound>, WebError> {
    let config = daemon.config();
    let web = config.web.clone();
    let Some(listen) = web.listen_addr().filter(|_| web.enabled()) else {
        return Ok(None);
    };
    let client_secret = client_secret(&web)?;
    let tls = tls_acceptor(&web)?;
    let key_path = config.data_dir.join("web-cookie.key");
    let cookie_key = cookie_key(&key_path).map_err(|source| WebError::CookieKey {
        path: key_path.display().to_string(),
        source,
    })?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| WebError::Listen {
            listen: web.listen.clone(),
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| WebError::Listen {
        listen: web.listen.clone(),
        source,
    })?;
    let url = web.public_url(bound);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| WebError::Tls(format!("the HTTP client: {e}")))?;
    let limits = limits::Limits::new(&web);
    let relay = match config.mail.enabled() {
        true => Some(Arc::new(
            crate::notices::Relay::new(&config.mail).map_err(WebError::Mail)?,
        )),
        false => None,
    };
    let store = daemon.store();
    let console = Arc::new(Console {
        daemon,
        limits,
        codes: public::Codes::new(cookie_key.signing(), web.reset_code_seconds),
        history: public::History::start(store.clone()),
        relay,
        workers: tokio::sync::Semaphore::new(WORKERS),
        redirect_uri: format!("{url}/masuk/selesai"),
        web,
        cookie_key,
        provider: tokio::sync::Mutex::new(None),
        http,
        client_secret,
    });
    Ok(Some(Bound {
        listener,
        tls,
        store,
        app: router(console),
        url,
    }))
}

/// Blocking workers of the console at once (see [`Console::workers`]).
const WORKERS: usize = 4;

/// How long a connection may take to send its request's head (slow clients are cut).
const HEADER_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the connections in flight at shutdown may take to finish.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves the console until `shutdown`, then lets the requests in flight finish.
pub async fn serve(bound: Bound, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let Bound {
        listener,
        tls,
        store,
        app,
        ..
    } = bound;
    let mut connections = tokio::task::JoinSet::new();
    let mut cleanup = tokio::time::interval(Duration::from_secs(600));
    // Cek Akun finds people by the school index's tags: a store an earlier build made
    // gets them once, in the background (lookups read those accounts meanwhile).
    let tagging = store.clone();
    tokio::task::spawn_blocking(move || match tagging.tag_school_index() {
        Ok(0) => {}
        Ok(n) => tracing::info!(entries = n, "console: the school index tagged for Cek Akun"),
        Err(error) => {
            tracing::warn!(%error, "console: the school index could not be tagged; Cek Akun reads those accounts one by one")
        }
    });
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let app = app.clone().layer(axum::Extension(Peer(peer)));
                    let tls = tls.clone();
                    connections.spawn(async move {
                        match tls {
                            Some(tls) => match tokio::time::timeout(HEADER_TIMEOUT, tls.accept(stream)).await {
                                Ok(Ok(stream)) => serve_connection(stream, app).await,
                                _ => tracing::debug!(%peer, "console: a TLS handshake failed"),
                            },
                            None => serve_connection(stream, app).await,
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "console: accept failed"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = cleanup.tick() => {
                let store = store.clone();
                let forgot = tokio::task::spawn_blocking(move || {
                    let now = jiff::Timestamp::now();
                    limits::Limits::forget_old(&store, now)?;
                    public::Codes::forget_expired(&store, now)
                });
                if let Ok(Err(error)) = forgot.await {
                    tracing::warn!(%error, "console: the old limits and codes could not be removed");
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    let drained = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        connections.abort_all();
    }
}

async fn serve_connection<S>(stream: S, app: Router)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(app);
    let mut builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let _ = builder
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_address_is_forwarded_only_by_a_trusted_proxy() {
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        let forged = "198.51.100.1, 203.0.113.7";
        // Straight from the client: its header is not believed.
        assert_eq!(client_address(client, Some("10.0.0.1"), &[proxy]), client);
        // Through the proxy: the rightmost address the proxy did not add.
        assert_eq!(client_address(proxy, Some(forged), &[proxy]), client);
        assert_eq!(client_address(proxy, None, &[proxy]), proxy);
        assert_eq!(client_address(proxy, Some("garbage"), &[proxy]), proxy);
    }
}
