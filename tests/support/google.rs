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

/// A new user's body as the client sends it (`users.insert`), with a password.
pub fn new_user(email: &str) -> belajar_sync::google::types::User {
    use belajar_sync::google::types::{User, UserName};
    User {
        primary_email: Some(email.into()),
        password: Some("rahasia-123".into()),
        name: Some(UserName {
            given_name: Some("Murid".into()),
            family_name: Some("Baru".into()),
            ..UserName::default()
        }),
        ..User::default()
    }
}

/// An emulator with these faults and otherwise the defaults.
pub async fn start_with(faults: belajar_sync::emulator::faults::Faults) -> Emulator {
    start(Options {
        faults,
        ..Options::default()
    })
    .await
}

pub async fn start(options: Options) -> Emulator {
    let _ = rustls::crypto::ring::default_provider().install_default();
    emulator::start(options).await.expect("emulator starts")
}

/// A token for `subject`, from an assertion signed with the emulator's key file (no client
/// library, so that it works under tokio's paused clock too).
pub async fn token_for(emu: &Emulator, subject: &str) -> String {
    token_from_key(&emu.key_file, subject).await
}

/// The emulator's service-account key file, as JSON.
pub fn read_key(key_file: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(key_file).unwrap()).unwrap()
}

/// An RS256 assertion of `claims`, signed with the key file's private key.
pub fn sign(key: &Value, claims: &Value) -> String {
    let pem = key["private_key"].as_str().unwrap();
    let signer = SigningKey::<Sha256>::new(rsa::RsaPrivateKey::from_pkcs8_pem(pem).unwrap());
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signed = format!(
        "{}.{}",
        b64.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    );
    format!(
        "{signed}.{}",
        b64.encode(signer.sign(signed.as_bytes()).to_bytes())
    )
}

/// Posts a JWT-bearer grant to the key's token endpoint.
pub async fn post_assertion(key: &Value, assertion: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(key["token_uri"].as_str().unwrap())
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion),
        ])
        .send()
        .await
        .unwrap()
}

/// A token for `subject` from the emulator whose key file is `key_file`.
pub async fn token_from_key(key_file: &std::path::Path, subject: &str) -> String {
    token_from_key_with(key_file, subject, SCOPES).await
}

/// A token for `subject` asked with `scopes` (space-separated).
pub async fn token_from_key_with(
    key_file: &std::path::Path,
    subject: &str,
    scopes: &str,
) -> String {
    let key = read_key(key_file);
    let iat = jiff::Timestamp::now().as_second();
    let claims = json!({"iss": key["client_email"], "aud": key["token_uri"], "iat": iat, "exp": iat + 3600,
                        "sub": subject, "scope": scopes});
    let response = post_assertion(&key, &sign(&key, &claims)).await;
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().expect("a token").to_owned()
}

/// Starts `belajar-sync emulator ARGS` as a process and reads the base URL and key file
/// it announces.
pub fn spawn_emulator(args: &[&str]) -> (std::process::Child, String, std::path::PathBuf) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_belajar-sync"))
        .args(["emulator", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the emulator starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines.next().unwrap().unwrap();
    let url = url
        .strip_prefix("emulator listening on ")
        .expect("announces its URL")
        .to_owned();
    let key = lines.next().unwrap().unwrap();
    let key = key
        .strip_prefix("key file: ")
        .expect("announces its key file")
        .into();
    (child, url, key)
}

/// CPU seconds (user + system) process `pid` has used, from /proc (for benchmarks).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
    }) / 100.0
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

/// A child process killed when dropped, so that a failing test leaves nothing running (a
/// child left holding a pipe would hang the test harness).
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The emulator's counters of calls answered (`GET /emulator/counters`).
pub async fn emulator_counters(url: &str) -> Value {
    reqwest::get(format!("{url}/emulator/counters"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
