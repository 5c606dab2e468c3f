//! The service account the emulator plays, its key file, and the JWT-bearer token flow as
//! Google implements it (`docs/architecture.md`, "Tokens"): RS256 assertions signed with the
//! key file's private key, verified here against the public half.

use super::errors::TokenError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::rand_core::{OsRng, RngCore};
use rsa::sha2::Sha256;
use rsa::signature::Verifier;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::Deserialize;
use serde_json::json;
use std::io::Write;
use std::path::Path;

/// The audience Google itself expects; yup-oauth2 sends the key file's `token_uri`
/// instead, so both are accepted.
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// The grant type of the JWT-bearer flow.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Scopes the emulated domain-wide delegation grants.
pub const GRANTED_SCOPES: &[&str] = &[
    "https://www.googleapis.com/auth/admin.directory.user",
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.orgunit",
    "https://www.googleapis.com/auth/admin.directory.orgunit.readonly",
    "https://www.googleapis.com/auth/apps.licensing",
];

/// Longest assertion lifetime Google accepts, and the clock skew it tolerates.
const MAX_LIFETIME_SECS: i64 = 3600;
const SKEW_SECS: i64 = 300;

/// The emulator's service account: a fresh RSA key pair per start.
pub struct ServiceAccount {
    pub client_email: String,
    pub client_id: String,
    pub private_key_id: String,
    private_key_pem: String,
    verifying_key: VerifyingKey<Sha256>,
}

/// What a valid assertion claims.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// `n` random decimal digits, the first not zero (ids of users and OAuth clients).
pub fn random_digits(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    OsRng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .enumerate()
        .map(|(i, b)| char::from(b'0' + if i == 0 { 1 + b % 9 } else { b % 10 }))
        .collect()
}

/// A fresh etag in the form Google's have (`"xxxx/yyyy"`, quotes included).
pub fn new_etag() -> String {
    format!("\"{}/{}\"", random_token(20), random_token(20))
}

/// A random URL-safe token of `bytes` random bytes.
pub fn random_token(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    OsRng.fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

impl ServiceAccount {
    /// Creates a key pair (2048-bit RSA, PKCS#8 as Google issues them).
    pub fn generate() -> ServiceAccount {
        let private = RsaPrivateKey::new(&mut OsRng, 2048).expect("RSA key generation");
        let private_key_pem = private
            .to_pkcs8_pem(LineEnding::LF)
            .expect("PKCS#8 encoding")
            .to_string();
        ServiceAccount {
            client_email: "belajar-sync@belajar-sync-emulator.iam.gserviceaccount.com".into(),
            client_id: random_digits(21),
            private_key_id: random_token(20),
            private_key_pem,
            verifying_key: VerifyingKey::new(RsaPublicKey::from(&private)),
        }
    }

    /// The key file as Google issues it, with `token_uri` pointing at the emulator.
    pub fn key_file(&self, token_uri: &str) -> serde_json::Value {
        let email = &self.client_email;
        json!({
            "type": "service_account",
            "project_id": "belajar-sync-emulator",
            "private_key_id": self.private_key_id,
            "private_key": self.private_key_pem,
            "client_email": email,
            "client_id": self.client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": format!("https://www.googleapis.com/robot/v1/metadata/x509/{}", email.replace('@', "%40")),
            "universe_domain": "googleapis.com",
        })
    }

    /// Writes the key file, readable by its owner only.
    pub fn write_key_file(&self, path: &Path, token_uri: &str) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        let text = serde_json::to_string_pretty(&self.key_file(token_uri)).expect("key serialises");
        file.write_all(text.as_bytes())
    }

    /// Checks an assertion as Google does: signature, issuer, audience, lifetime (`now` in
    /// seconds since the epoch). The subject and scopes are the caller's to judge.
    pub fn verify(&self, assertion: &str, token_uri: &str, now: i64) -> Result<Claims, TokenError> {
        let mut parts = assertion.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::invalid_signature());
        };
        // yup-oauth2 pads its base64url with `=`; Google accepts it, so do we.
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part.trim_end_matches('='));
        let signed = &assertion[..header.len() + 1 + claims.len()];
        let signature = decode(signature)
            .ok()
            .and_then(|s| Signature::try_from(s.as_slice()).ok())
            .ok_or_else(TokenError::invalid_signature)?;
        self.verifying_key
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| TokenError::invalid_signature())?;
        let header: serde_json::Value = decode(header)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or_else(TokenError::invalid_signature)?;
        if header["alg"] != "RS256" {
            return Err(TokenError::invalid_signature());
        }
        let claims: Claims = decode(claims)
            .ok()
            .and_then(|c| serde_json::from_slice(&c).ok())
            .ok_or_else(|| TokenError::bad_request("Invalid JWT claims."))?;
        if claims.iss != self.client_email {
            return Err(TokenError::invalid_signature());
        }
        if claims.aud != token_uri && claims.aud != GOOGLE_TOKEN_URI {
            return Err(TokenError::bad_request("Invalid JWT audience."));
        }
        let lifetime = claims.exp - claims.iat;
        if !(1..=MAX_LIFETIME_SECS).contains(&lifetime)
            || claims.iat > now + SKEW_SECS
            || claims.exp < now - SKEW_SECS
        {
            return Err(TokenError::not_short_lived());
        }
        Ok(claims)
    }
}

/// Whether every requested scope is one the delegation grants.
pub fn scopes_granted(scope: Option<&str>) -> bool {
    scope.is_some_and(|s| {
        let mut scopes = s.split_whitespace().peekable();
        scopes.peek().is_some() && scopes.all(|s| GRANTED_SCOPES.contains(&s))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::SigningKey;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};
    use std::sync::OnceLock;

    fn account() -> &'static ServiceAccount {
        static ACCOUNT: OnceLock<ServiceAccount> = OnceLock::new();
        ACCOUNT.get_or_init(ServiceAccount::generate)
    }

    /// Signs claims the way yup-oauth2 does (padded base64url).
    fn assertion(pem: &str, claims: serde_json::Value) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE;
        let key = SigningKey::<Sha256>::new(RsaPrivateKey::from_pkcs8_pem(pem).unwrap());
        let head = b64.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let body = b64.encode(claims.to_string());
        let signed = format!("{head}.{body}");
        let signature = b64.encode(key.sign(signed.as_bytes()).to_bytes());
        format!("{signed}.{signature}")
    }

    fn claims(iat: i64, exp: i64) -> serde_json::Value {
        json!({"iss": account().client_email, "aud": "http://127.0.0.1:1/token", "iat": iat, "exp": exp,
               "sub": "admin@belajar.id", "scope": GRANTED_SCOPES[0]})
    }

    const URI: &str = "http://127.0.0.1:1/token";

    #[test]
    fn a_padded_assertion_signed_with_the_key_is_accepted() {
        let a = assertion(&account().private_key_pem, claims(1000, 4595));
        assert!(a.contains('='), "padded like yup-oauth2");
        let c = account().verify(&a, URI, 1000).unwrap();
        assert_eq!(c.sub.as_deref(), Some("admin@belajar.id"));
    }

    #[test]
    fn another_key_is_an_invalid_signature() {
        let other = ServiceAccount::generate();
        let a = assertion(&other.private_key_pem, claims(1000, 4595));
        assert_eq!(
            account().verify(&a, URI, 1000).unwrap_err(),
            TokenError::invalid_signature()
        );
    }

    #[test]
    fn long_lived_or_stale_assertions_are_refused() {
        let pem = &account().private_key_pem;
        let long = assertion(pem, claims(1000, 1000 + 3601));
        assert_eq!(
            account().verify(&long, URI, 1000).unwrap_err(),
            TokenError::not_short_lived()
        );
        let stale = assertion(pem, claims(1000, 4595));
        assert_eq!(
            account().verify(&stale, URI, 4595 + 301).unwrap_err(),
            TokenError::not_short_lived()
        );
    }

    #[test]
    fn scopes_must_all_be_granted() {
        assert!(scopes_granted(Some(&GRANTED_SCOPES[..2].join(" "))));
        assert!(!scopes_granted(Some(
            "https://www.googleapis.com/auth/drive"
        )));
        assert!(!scopes_granted(Some("")));
        assert!(!scopes_granted(None));
    }

    #[test]
    fn the_key_file_has_googles_fields_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        account().write_key_file(&path, URI).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let key: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for field in [
            "type",
            "project_id",
            "private_key_id",
            "private_key",
            "client_email",
            "client_id",
            "auth_uri",
            "token_uri",
            "auth_provider_x509_cert_url",
            "client_x509_cert_url",
        ] {
            assert!(key[field].is_string(), "{field}");
        }
        assert!(
            key["private_key"]
                .as_str()
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        assert_eq!(key["client_id"].as_str().unwrap().len(), 21);
    }
}
