//! Google's sign-in side (OpenID Connect) as the emulator plays it: the discovery
//! document, the authorization endpoint with a sign-in form that checks the emulated
//! users' passwords (a first password must be changed first, as Google asks), the
//! authorization-code grant of the token endpoint (PKCE S256 checked), ID tokens signed
//! RS256 with a key published at the JWKS endpoint, `hd` for the users of the domains.
//!
//! OAuth clients are registered as in Google's Cloud console, with their exact redirect
//! URIs: `POST /emulator/oauth-clients` (or `belajar-sync emulator --oauth-client`).
//! The issuer is the emulator's own base URL.

// An authorization request refused answers with a page at once.
#![allow(clippy::result_large_err)]

use super::auth::random_token;
use super::errors::TokenError;
use super::{Shared, now, users::SignInRefused};
use crate::display::html as escape;
use axum::Json;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::rand_core::OsRng;
use rsa::sha2::{Digest, Sha256};
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::time::Instant;

/// How long an authorization code may wait for its exchange (Google: minutes).
const CODE_LIFETIME: Duration = Duration::from_secs(600);
/// Lifetime of an ID token (Google: one hour).
const ID_TOKEN_SECS: i64 = 3600;

/// An OAuth client as registered in the console.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub secret: String,
    pub redirect_uris: Vec<String>,
}

/// A code handed to a client, waiting for its exchange (once).
#[derive(Debug, Clone)]
pub struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: Option<String>,
    nonce: Option<String>,
    claims: Value,
    expires: Instant,
}

/// The sign-in side's own state (in the emulator's world, behind its lock).
#[derive(Default)]
pub struct SignIn {
    pub clients: HashMap<String, OAuthClient>,
    codes: HashMap<String, Code>,
}

/// The key ID tokens are signed with: made at the first sign-in (RSA key generation is
/// slow, and most emulators never sign anyone in).
struct IdKey {
    kid: String,
    signing: SigningKey<Sha256>,
    jwk: Value,
}

fn id_key() -> &'static IdKey {
    static KEY: OnceLock<IdKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let private = RsaPrivateKey::new(&mut OsRng, 2048).expect("RSA key generation");
        let kid = random_token(20);
        let public = private.to_public_key();
        let jwk = json!({
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        });
        IdKey {
            kid,
            signing: SigningKey::new(private),
            jwk,
        }
    })
}

/// Signs `claims` as Google signs an ID token (RS256, the key named by `kid`).
pub fn sign_id_token(claims: &Value) -> String {
    let key = id_key();
    let header = json!({"alg": "RS256", "kid": key.kid, "typ": "JWT"});
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"));
    let signed = format!("{}.{}", encode(&header), encode(claims));
    let signature = key.signing.sign(signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// `GET /.well-known/openid-configuration`.
pub(super) async fn discovery(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let base = shared.token_uri.trim_end_matches("/token");
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/o/oauth2/v2/auth"),
        "token_endpoint": format!("{base}/token"),
        "userinfo_endpoint": format!("{base}/v1/userinfo"),
        "revocation_endpoint": format!("{base}/revoke"),
        "jwks_uri": format!("{base}/oauth2/v3/certs"),
        "response_types_supported": ["code", "token", "id_token", "code token", "code id_token", "token id_token", "code token id_token", "none"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": ["aud", "email", "email_verified", "exp", "family_name", "given_name", "iat", "iss", "name", "picture", "sub"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "grant_types_supported": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:jwt-bearer"],
    }))
}

/// `GET /oauth2/v3/certs`.
pub async fn jwks() -> Json<Value> {
    Json(json!({"keys": [id_key().jwk.clone()]}))
}

/// The parameters of an authorization request (kept in the form while the person signs in).
#[derive(Debug, Clone, Deserialize)]
pub struct AuthRequest {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    scope: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    hd: Option<String>,
}

/// What the sign-in form sends back: the request, and what the person typed.
#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(flatten)]
    request: AuthRequest,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    new_password: Option<String>,
}

/// An error page of the authorization endpoint (no redirect: the client is not trusted).
fn error_page(what: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Html(format!(
            "<!DOCTYPE html><title>Error 400</title><h1>Access blocked: authorization error</h1><p>Error 400: {}</p>",
            escape(what)
        )),
    )
        .into_response()
}

/// Checks a request as Google does before showing any form: the client and its exact
/// redirect URI, the response type, the scope and the PKCE method.
fn check_request(shared: &Shared, request: &AuthRequest) -> Result<(), Response> {
    let world = shared.world();
    let Some(client) = world.sign_in.clients.get(&request.client_id) else {
        return Err(error_page("invalid_client"));
    };
    if !client.redirect_uris.contains(&request.redirect_uri) {
        return Err(error_page("redirect_uri_mismatch"));
    }
    if request.response_type != "code" {
        return Err(error_page("unsupported_response_type"));
    }
    if !request.scope.split_whitespace().any(|s| s == "openid") {
        return Err(error_page("invalid_scope"));
    }
    if request.code_challenge.is_some()
        && !matches!(
            request.code_challenge_method.as_deref(),
            Some("S256") | Some("plain") | None
        )
    {
        return Err(error_page("invalid_request: code_challenge_method"));
    }
    Ok(())
}

/// The sign-in form, carrying the request's parameters.
fn form_page(request: &AuthRequest, email: &str, message: Option<&str>, change: bool) -> Response {
    let mut hidden = String::new();
    let fields = [
        ("client_id", Some(&request.client_id)),
        ("redirect_uri", Some(&request.redirect_uri)),
        ("response_type", Some(&request.response_type)),
        ("scope", Some(&request.scope)),
        ("state", request.state.as_ref()),
        ("nonce", request.nonce.as_ref()),
        ("code_challenge", request.code_challenge.as_ref()),
        (
            "code_challenge_method",
            request.code_challenge_method.as_ref(),
        ),
        ("hd", request.hd.as_ref()),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            hidden.push_str(&format!(
                r#"<input type="hidden" name="{name}" value="{}">"#,
                escape(value)
            ));
        }
    }
    let message = message
        .map(|m| format!(r#"<p id="error" role="alert">{}</p>"#, escape(m)))
        .unwrap_or_default();
    let change = if change {
        r#"<p>Change password: you must choose a new password for this account.</p>
<label>New password <input type="password" name="new_password" id="new_password" autocomplete="new-password" required></label>"#
    } else {
        ""
    };
    Html(format!(
        r#"<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Sign in - Google Accounts</title></head><body>
<h1>Sign in</h1>{message}
<form method="post" action="/o/oauth2/v2/auth">{hidden}
<label>Email <input type="email" name="email" id="identifierId" value="{}" autocomplete="username" required></label>
<label>Password <input type="password" name="password" id="password" autocomplete="current-password" required></label>
{change}
<button type="submit" id="next">Next</button>
</form></body></html>"#,
        escape(email)
    ))
    .into_response()
}

/// `GET /o/oauth2/v2/auth`: the sign-in form.
pub(super) async fn authorize(
    State(shared): State<Arc<Shared>>,
    Query(request): Query<AuthRequest>,
) -> Response {
    if let Err(page) = check_request(&shared, &request) {
        return page;
    }
    form_page(&request, "", None, false)
}

/// `POST /o/oauth2/v2/auth`: checks the password (and a first password's change), then
/// sends the browser back to the client with a code.
pub(super) async fn sign_in(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<SignInForm>,
) -> Response {
    let request = form.request;
    if let Err(page) = check_request(&shared, &request) {
        return page;
    }
    let new_password = form.new_password.as_deref().filter(|p| !p.is_empty());
    if new_password.is_some_and(|p| p.chars().count() < 8) {
        let note = "Use 8 characters or more for your password";
        return form_page(&request, &form.email, Some(note), true);
    }
    let at = now();
    let mut world = shared.world();
    let must_change = match world
        .users
        .sign_in(&form.email, &form.password, new_password, &at)
    {
        Ok(must_change) => must_change,
        Err(SignInRefused::WrongAddressOrPassword) => {
            drop(world);
            let note = "Wrong password. Try again or click Forgot password to reset it.";
            return form_page(&request, &form.email, Some(note), false);
        }
        Err(SignInRefused::Suspended) => {
            drop(world);
            let note = "Account disabled: this account has been suspended by your administrator.";
            return form_page(&request, &form.email, Some(note), false);
        }
    };
    if must_change {
        drop(world);
        return form_page(&request, &form.email, None, true);
    }
    let user = world
        .users
        .get(&form.email, at.instant, Duration::ZERO)
        .expect("a user just signed in");
    let email = user["primaryEmail"].as_str().unwrap_or_default().to_owned();
    let domain = email.rsplit('@').next().unwrap_or_default().to_owned();
    let mut claims = json!({
        "sub": user["id"],
        "email": email,
        "email_verified": true,
        "name": user["name"]["fullName"],
        "given_name": user["name"]["givenName"],
        "family_name": user["name"]["familyName"],
    });
    // A Workspace user's token names its domain.
    if shared.domains.contains(&domain) {
        claims["hd"] = json!(domain);
    }
    let code = format!("4/{}", random_token(32));
    world.sign_in.codes.retain(|_, c| c.expires > at.instant);
    world.sign_in.codes.insert(
        code.clone(),
        Code {
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            challenge: request.code_challenge.clone(),
            nonce: request.nonce.clone(),
            claims,
            expires: at.instant + CODE_LIFETIME,
        },
    );
    let mut target = url::Url::parse(&request.redirect_uri).expect("a registered redirect URI");
    target.query_pairs_mut().append_pair("code", &code);
    if let Some(state) = &request.state {
        target.query_pairs_mut().append_pair("state", state);
    }
    Redirect::to(target.as_str()).into_response()
}

fn invalid_grant(description: &'static str) -> TokenError {
    TokenError {
        error: "invalid_grant",
        ..TokenError::bad_request(description)
    }
}

/// The token endpoint's `authorization_code` grant: the code once, from the client it was
/// given to, with the same redirect URI and the PKCE verifier of its challenge.
pub(super) fn exchange(
    shared: &Shared,
    form: &HashMap<String, String>,
    basic: Option<(String, String)>,
) -> Result<Value, TokenError> {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let (client_id, secret) = basic.unwrap_or_else(|| {
        (
            field("client_id").to_owned(),
            field("client_secret").to_owned(),
        )
    });
    let mut world = shared.world();
    let client = world.sign_in.clients.get(&client_id).cloned();
    if client.is_none_or(|c| c.secret != secret) {
        return Err(TokenError {
            error: "invalid_client",
            ..TokenError::unauthorized_client()
        });
    }
    // A code is used once, whatever the outcome.
    let code = world
        .sign_in
        .codes
        .remove(field("code"))
        .filter(|c| c.expires > Instant::now())
        .ok_or_else(|| invalid_grant("Malformed auth code."))?;
    drop(world);
    if code.client_id != client_id || code.redirect_uri != field("redirect_uri") {
        return Err(invalid_grant("Bad Request"));
    }
    if let Some(challenge) = &code.challenge {
        let verifier = field("code_verifier");
        let hashed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        if verifier.is_empty() || (hashed != *challenge && verifier != challenge) {
            return Err(invalid_grant("Invalid code verifier."));
        }
    }
    let issued = jiff::Timestamp::now().as_second();
    let mut claims = code.claims;
    claims["iss"] = json!(shared.token_uri.trim_end_matches("/token"));
    claims["aud"] = json!(client_id);
    claims["azp"] = json!(client_id);
    claims["iat"] = json!(issued);
    claims["exp"] = json!(issued + ID_TOKEN_SECS);
    if let Some(nonce) = code.nonce {
        claims["nonce"] = json!(nonce);
    }
    Ok(json!({
        "access_token": format!("ya29.{}", random_token(48)),
        "expires_in": ID_TOKEN_SECS - 1,
        "token_type": "Bearer",
        "scope": "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile",
        "id_token": sign_id_token(&claims),
    }))
}

/// What `POST /emulator/oauth-clients` takes.
#[derive(Debug, Deserialize)]
pub struct NewClient {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub redirect_uris: Vec<String>,
}

/// Registers an OAuth client (as the Cloud console does); answers its id and secret.
pub(super) fn register(shared: &Shared, new: NewClient) -> Value {
    let client_id = new.client_id.unwrap_or_else(|| {
        format!(
            "{}-{}.apps.googleusercontent.com",
            super::auth::random_digits(12),
            random_token(16).to_ascii_lowercase()
        )
    });
    let secret = new
        .client_secret
        .unwrap_or_else(|| format!("GOCSPX-{}", random_token(21)));
    shared.world().sign_in.clients.insert(
        client_id.clone(),
        OAuthClient {
            secret: secret.clone(),
            redirect_uris: new.redirect_uris,
        },
    );
    json!({"client_id": client_id, "client_secret": secret})
}
