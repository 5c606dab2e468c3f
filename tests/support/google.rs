//! Talking to the emulator over loopback HTTP as a Google admin would: a token from the
//! emulator's own token endpoint (an assertion signed with its key file) and plain calls.

#![allow(dead_code)] // each test binary uses a part of it

use base64::Engine;
use belajar_sync::emulator::{self, Emulator, Options};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{Value, json};

pub const SCOPES: &str = "https://www.googleapis.com/auth/admin.directory.user https://www.googleapis.com/auth/admin.directory.orgunit";

pub async fn start(options: Options) -> Emulator {
    let _ = rustls::crypto::ring::default_provider().install_default();
    emulator::start(options).await.expect("emulator starts")
}

/// A token for `subject`, from an assertion signed with the emulator's key file (no client
/// library, so that it works under tokio's paused clock too).
pub async fn token_for(emu: &Emulator, subject: &str) -> String {
    token_from_key(&emu.key_file, subject).await
}

/// A token for `subject` from the emulator whose key file is `key_file`.
pub async fn token_from_key(key_file: &std::path::Path, subject: &str) -> String {
    let key: Value = serde_json::from_slice(&std::fs::read(key_file).unwrap()).unwrap();
    let pem = key["private_key"].as_str().unwrap();
    let signer = SigningKey::<Sha256>::new(rsa::RsaPrivateKey::from_pkcs8_pem(pem).unwrap());
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let iat = jiff::Timestamp::now().as_second();
    let claims = json!({"iss": key["client_email"], "aud": key["token_uri"], "iat": iat, "exp": iat + 3600,
                        "sub": subject, "scope": SCOPES});
    let signed = format!(
        "{}.{}",
        b64.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    );
    let assertion = format!(
        "{signed}.{}",
        b64.encode(signer.sign(signed.as_bytes()).to_bytes())
    );
    let response = reqwest::Client::new()
        .post(key["token_uri"].as_str().unwrap())
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().expect("a token").to_owned()
}

/// Calls of the Directory API as one admin.
pub struct Api {
    pub base: String,
    pub token: String,
    client: reqwest::Client,
}

impl Api {
    pub async fn admin(emu: &Emulator) -> Api {
        Api::new(&emu.base_url, token_for(emu, "admin@belajar.id").await)
    }

    pub fn new(base: &str, token: String) -> Api {
        Api {
            base: base.to_owned(),
            token,
            client: reqwest::Client::new(),
        }
    }

    /// One call: `path` is below `/admin/directory/v1/`. The status and the JSON body
    /// (`null` when empty); `Err` when no answer came.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let url = format!("{}/admin/directory/v1/{path}", self.base);
        let mut request = self
            .client
            .request(method.parse().unwrap(), url)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        Ok((
            status,
            if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap()
            },
        ))
    }

    pub async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, path, body).await.expect("an answer")
    }

    pub async fn create(&self, email: &str, given: &str, family: &str) -> Value {
        let (status, user) = self
            .ok(
                "POST",
                "users",
                Some(json!({"primaryEmail": email, "password": "rahasia-123",
                                              "name": {"givenName": given, "familyName": family}})),
            )
            .await;
        assert_eq!(status, 200, "{user}");
        user
    }
}
