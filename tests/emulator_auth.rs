//! The emulator's token endpoint through yup-oauth2 itself (the client production uses),
//! and the authentication of API calls, over real HTTP on loopback.

mod support;

use belajar_sync::emulator::{Emulator, Options};
use serde_json::{Value, json};
use std::time::Duration;
use support::google;
use yup_oauth2::error::{AuthError, AuthErrorCode};

const USER_SCOPE: &str = "https://www.googleapis.com/auth/admin.directory.user";

async fn start(options: Options) -> Emulator {
    google::start(options).await
}

/// A token for `subject` (or none) from the key file at `key`, through yup-oauth2.
async fn token(key: &std::path::Path, subject: Option<&str>) -> Result<String, yup_oauth2::Error> {
    let key = yup_oauth2::read_service_account_key(key)
        .await
        .expect("key file parses");
    let mut builder = yup_oauth2::ServiceAccountAuthenticator::builder(key);
    if let Some(subject) = subject {
        builder = builder.subject(subject);
    }
    let auth = builder.build().await.expect("authenticator");
    let token = auth.token(&[USER_SCOPE]).await?;
    Ok(token.token().expect("an access token").to_owned())
}

fn auth_error(result: Result<String, yup_oauth2::Error>) -> AuthError {
    match result {
        Err(yup_oauth2::Error::AuthError(e)) => e,
        other => panic!("expected an OAuth error, got {other:?}"),
    }
}

async fn get_user(emu: &Emulator, bearer: Option<&str>, key: &str) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut request = client.get(format!("{}/admin/directory/v1/users/{key}", emu.base_url));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn an_admin_subject_gets_a_token_that_the_api_accepts() {
    let emu = start(Options::default()).await;
    let bearer = token(&emu.key_file, Some("admin@belajar.id"))
        .await
        .unwrap();
    assert!(bearer.starts_with("ya29."));
    assert_eq!(emu.live_tokens(), 1);
    let (status, admin) = get_user(&emu, Some(&bearer), "admin@belajar.id").await;
    assert_eq!(status, 200, "{admin}");
    assert_eq!(admin["kind"], "admin#directory#user");
    assert_eq!(admin["isAdmin"], true);
}

#[tokio::test]
async fn api_calls_without_or_with_a_bad_token_get_401() {
    let emu = start(Options::default()).await;
    let (status, body) = get_user(&emu, None, "admin@belajar.id").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["errors"][0]["reason"], "required");
    assert_eq!(body["error"]["message"], "Login Required");
    let (status, body) = get_user(&emu, Some("ya29.forged"), "admin@belajar.id").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["errors"][0]["reason"], "authError");
    assert_eq!(body["error"]["message"], "Invalid Credentials");
}

#[tokio::test]
async fn an_expired_token_is_invalid_credentials() {
    let emu = start(Options {
        token_lifetime: Duration::ZERO,
        ..Options::default()
    })
    .await;
    let bearer = token(&emu.key_file, Some("admin@belajar.id"))
        .await
        .unwrap();
    let (status, body) = get_user(&emu, Some(&bearer), "admin@belajar.id").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["errors"][0]["reason"], "authError");
}

#[tokio::test]
async fn a_key_of_another_service_account_is_an_invalid_signature() {
    let emu = start(Options::default()).await;
    let other = start(Options::default()).await;
    // The other emulator's key, sent to this emulator's token endpoint.
    let mut key: Value = serde_json::from_slice(&std::fs::read(&other.key_file).unwrap()).unwrap();
    let mine: Value = serde_json::from_slice(&std::fs::read(&emu.key_file).unwrap()).unwrap();
    key["token_uri"] = mine["token_uri"].clone();
    key["client_email"] = mine["client_email"].clone();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wrong.json");
    std::fs::write(&path, key.to_string()).unwrap();
    let error = auth_error(token(&path, Some("admin@belajar.id")).await);
    assert_eq!(error.error, AuthErrorCode::InvalidGrant);
    assert_eq!(
        error.error_description.as_deref(),
        Some("Invalid JWT Signature.")
    );
}

#[tokio::test]
async fn a_missing_or_unknown_subject_is_an_unauthorized_client() {
    let emu = start(Options::default()).await;
    for subject in [None, Some("stranger@gmail.com")] {
        let error = auth_error(token(&emu.key_file, subject).await);
        assert_eq!(
            error.error,
            AuthErrorCode::UnauthorizedClient,
            "{subject:?}"
        );
    }
}

#[tokio::test]
async fn a_non_admin_subject_gets_a_token_but_every_call_is_forbidden() {
    let emu = start(Options::default()).await;
    let admin = token(&emu.key_file, Some("admin@belajar.id"))
        .await
        .unwrap();
    let created = reqwest::Client::new()
        .post(format!("{}/admin/directory/v1/users", emu.base_url))
        .bearer_auth(&admin)
        .json(
            &json!({"primaryEmail": "guru@guru.sd.belajar.id", "password": "rahasia-123",
                      "name": {"givenName": "Budi", "familyName": "Santoso"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);

    let teacher = token(&emu.key_file, Some("guru@guru.sd.belajar.id"))
        .await
        .unwrap();
    let (status, body) = get_user(&emu, Some(&teacher), "admin@belajar.id").await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["errors"][0]["reason"], "forbidden");
    assert_eq!(
        body["error"]["message"],
        "Not Authorized to access this resource/api"
    );
}

#[tokio::test]
async fn a_stale_assertion_is_refused_with_googles_message() {
    let emu = start(Options::default()).await;
    let key = google::read_key(&emu.key_file);
    let iat = jiff::Timestamp::now().as_second() - 7200;
    let claims = json!({"iss": key["client_email"], "aud": key["token_uri"], "iat": iat, "exp": iat + 3600,
                        "sub": "admin@belajar.id", "scope": USER_SCOPE});
    let response = google::post_assertion(&key, &google::sign(&key, &claims)).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("Invalid JWT: Token must be a short-lived token")
    );
}
