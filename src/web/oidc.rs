//! Sign in with Google: the console as an OpenID Connect relying party. Authorization
//! code flow with PKCE (S256), `state` and `nonce`; the ID token's RS256 signature is
//! checked against the issuer's published keys (by `kid`, fetched again once when an
//! unknown one appears: Google rotates them), then its `iss`, `aud`, expiry, `nonce`,
//! `email_verified` and `hd` (a managed domain, matching the address's own).
//!
//! Why not the `openidconnect` crate: it verifies RS256 with the `rsa` crate, which this
//! daemon keeps out of its production build (RUSTSEC-2023-0071), and brings a second HTTP
//! client. The signature checks here are `jsonwebtoken`'s (on `ring`, the one crypto
//! library of the build); what remains is three HTTP calls and the checks below.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;

/// Why a sign-in failed. Said to the person in general words; logged in these.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("the sign-in provider cannot be reached or answered unreadably: {0}")]
    Provider(String),
    #[error("the sign-in came back without its state, or with another one")]
    State,
    #[error("the provider refused the code: {0}")]
    Exchange(String),
    #[error("the ID token is not valid: {0}")]
    Token(String),
    #[error("the ID token is not for this sign-in (nonce)")]
    Nonce,
    #[error("the address is not verified")]
    Unverified,
    #[error("the account is not of a managed domain (hd {0:?})")]
    Domain(Option<String>),
}

/// What the provider's discovery document says of its endpoints.
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// A sign-in on its way: kept (signed) in the browser until the provider sends it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    /// Where to go once signed in (a path of the console).
    pub next: String,
}

/// Who signed in, as the ID token says.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub sub: String,
    pub email: String,
}

/// The ID token's claims the console reads (signature, `iss`, `aud` and `exp` are
/// checked by `jsonwebtoken` before these are looked at).
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub email_verified: bool,
    pub hd: Option<String>,
    pub nonce: Option<String>,
}

/// A random URL-safe value of 32 bytes (state, nonce, PKCE verifier).
pub fn random() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The PKCE challenge of a verifier (S256).
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The checks on a token's claims after its signature, issuer, audience and lifetime:
/// the nonce of this sign-in, a verified address, and a Workspace domain that is one of
/// `domains` and the address's own (Google's `hd` parameter only narrows the chooser).
pub fn check_claims(
    claims: Claims,
    nonce: &str,
    domains: &[String],
) -> Result<Identity, SignInError> {
    if claims.nonce.as_deref() != Some(nonce) {
        return Err(SignInError::Nonce);
    }
    if !claims.email_verified {
        return Err(SignInError::Unverified);
    }
    let email = claims.email.trim().to_ascii_lowercase();
    let domain = email.rsplit_once('@').map(|(_, d)| d.to_owned());
    let managed = claims.hd.as_deref().is_some_and(|hd| {
        domain.as_deref() == Some(&hd.to_ascii_lowercase())
            && domains.iter().any(|d| d.eq_ignore_ascii_case(hd))
    });
    if !managed {
        return Err(SignInError::Domain(claims.hd));
    }
    Ok(Identity {
        sub: claims.sub,
        email,
    })
}

/// The provider as discovered, its keys, and this console's client.
pub struct Provider {
    http: reqwest::Client,
    discovery: Discovery,
    keys: RwLock<JwkSet>,
    client_id: String,
    client_secret: String,
    redirect_uri: String,
}

impl Provider {
    /// Reads the issuer's discovery document and keys. The document must name the issuer
    /// configured, and every endpoint must be HTTPS (or loopback).
    pub async fn discover(
        http: reqwest::Client,
        issuer: &str,
        client_id: String,
        client_secret: String,
        redirect_uri: String,
    ) -> Result<Provider, SignInError> {
        let issuer = issuer.trim_end_matches('/');
        let url = format!("{issuer}/.well-known/openid-configuration");
        let discovery: Discovery = get_json(&http, &url).await?;
        if discovery.issuer.trim_end_matches('/') != issuer {
            return Err(SignInError::Provider(format!(
                "the discovery document names issuer {:?}, not {issuer:?}",
                discovery.issuer
            )));
        }
        for endpoint in [
            &discovery.authorization_endpoint,
            &discovery.token_endpoint,
            &discovery.jwks_uri,
        ] {
            crate::config::check_api_base(endpoint).map_err(SignInError::Provider)?;
        }
        let keys = get_json(&http, &discovery.jwks_uri).await?;
        Ok(Provider {
            http,
            discovery,
            keys: RwLock::new(keys),
            client_id,
            client_secret,
            redirect_uri,
        })
    }

    /// Where to send the browser to sign in, and what to keep until it comes back.
    pub fn start(&self, next: String, domain_hint: Option<&str>) -> (String, Pending) {
        let pending = Pending {
            state: random(),
            nonce: random(),
            verifier: random(),
            next,
        };
        let mut url =
            url::Url::parse(&self.discovery.authorization_endpoint).expect("checked at discovery");
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid email profile")
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &challenge(&pending.verifier))
            .append_pair("code_challenge_method", "S256")
            .append_pair("prompt", "select_account");
        if let Some(hd) = domain_hint {
            url.query_pairs_mut().append_pair("hd", hd);
        }
        (url.into(), pending)
    }

    /// Exchanges the code the browser brought back for an ID token and checks it.
    pub async fn finish(
        &self,
        code: &str,
        pending: &Pending,
        domains: &[String],
    ) -> Result<Identity, SignInError> {
        let answer = self
            .http
            .post(&self.discovery.token_endpoint)
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.redirect_uri),
                ("client_id", &self.client_id),
                ("client_secret", &self.client_secret),
                ("code_verifier", &pending.verifier),
            ])
            .send()
            .await
            .map_err(|e| SignInError::Provider(e.without_url().to_string()))?;
        let status = answer.status();
        let body: serde_json::Value = answer
            .json()
            .await
            .map_err(|_| SignInError::Provider(format!("an unreadable answer ({status})")))?;
        let Some(id_token) = body["id_token"].as_str().filter(|_| status.is_success()) else {
            // Only the error's code: the answer is never quoted whole.
            let error = body["error"].as_str().unwrap_or("no id_token");
            return Err(SignInError::Exchange(format!("{status}: {error}")));
        };
        let claims = self.verify(id_token).await?;
        check_claims(claims, &pending.nonce, domains)
    }

    /// Checks the token's signature (by its `kid`), issuer, audience and lifetime.
    pub async fn verify(&self, token: &str) -> Result<Claims, SignInError> {
        let bad = |e: jsonwebtoken::errors::Error| SignInError::Token(e.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(bad)?;
        if header.alg != Algorithm::RS256 {
            return Err(SignInError::Token(format!("{:?} is not RS256", header.alg)));
        }
        let kid = header
            .kid
            .ok_or_else(|| SignInError::Token("no kid".into()))?;
        let mut jwk = self.keys.read().await.find(&kid).cloned();
        if jwk.is_none() {
            // Keys rotate: read them again once.
            let fresh: JwkSet = get_json(&self.http, &self.discovery.jwks_uri).await?;
            jwk = fresh.find(&kid).cloned();
            *self.keys.write().await = fresh;
        }
        let jwk = jwk.ok_or_else(|| SignInError::Token(format!("unknown key {kid:?}")))?;
        let key = DecodingKey::from_jwk(&jwk).map_err(bad)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[&self.client_id]);
        // Google also issues the issuer without its scheme (legacy clients).
        let bare = self.discovery.issuer.split_once("://").map(|(_, b)| b);
        let issuers: Vec<&str> = [Some(self.discovery.issuer.as_str()), bare]
            .into_iter()
            .flatten()
            .collect();
        validation.set_issuer(&issuers);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 60;
        Ok(jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(bad)?
            .claims)
    }
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<T, SignInError> {
    let answer = http
        .get(url)
        .send()
        .await
        .map_err(|e| SignInError::Provider(format!("{url}: {}", e.without_url())))?;
    let status = answer.status();
    if !status.is_success() {
        return Err(SignInError::Provider(format!("{url}: {status}")));
    }
    answer
        .json()
        .await
        .map_err(|_| SignInError::Provider(format!("{url}: an unreadable answer")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(hd: Option<&str>, email: &str) -> Claims {
        Claims {
            sub: "1".into(),
            email: email.into(),
            email_verified: true,
            hd: hd.map(str::to_owned),
            nonce: Some("n".into()),
        }
    }

    fn domains() -> Vec<String> {
        vec!["admin.sd.belajar.id".into(), "belajar.id".into()]
    }

    #[test]
    fn a_managed_domain_signs_in() {
        let who = check_claims(
            claims(Some("admin.sd.belajar.id"), "Op@Admin.SD.belajar.id"),
            "n",
            &domains(),
        )
        .unwrap();
        assert_eq!(who.email, "op@admin.sd.belajar.id");
    }

    #[test]
    fn other_domains_nonces_and_unverified_addresses_are_refused() {
        let d = domains();
        // A consumer account (no hd), another Workspace, an hd that is not the address's.
        for (hd, email) in [
            (None, "op@admin.sd.belajar.id"),
            (Some("evil.example"), "op@evil.example"),
            (Some("belajar.id"), "op@evil.example"),
        ] {
            let refused = check_claims(claims(hd, email), "n", &d).unwrap_err();
            assert!(matches!(refused, SignInError::Domain(_)), "{hd:?} {email}");
        }
        let other_nonce = check_claims(claims(Some("belajar.id"), "a@belajar.id"), "m", &d);
        assert!(matches!(other_nonce, Err(SignInError::Nonce)));
        let mut unverified = claims(Some("belajar.id"), "a@belajar.id");
        unverified.email_verified = false;
        assert!(matches!(
            check_claims(unverified, "n", &d),
            Err(SignInError::Unverified)
        ));
    }

    #[test]
    fn the_challenge_is_s256_of_the_verifier() {
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
