//! `[web]`: where the console listens, how people sign in, who may do what, and the limits.

use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// Google's issuer: its discovery document is at `{issuer}/.well-known/openid-configuration`.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Web {
    /// Where the console listens ("0.0.0.0:443"); off when empty. Plain HTTP (no
    /// `tls_cert`) only on a loopback address, for a reverse proxy in front.
    pub listen: String,
    /// The address people open (`https://akun.example.id`), without a trailing slash: the
    /// sign-in comes back to `{public_url}/masuk/selesai`, which must be registered as the
    /// OAuth client's redirect URI. Default: `http://{listen}`.
    pub public_url: String,
    /// PEM certificate chain and private key: the console speaks HTTPS itself.
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// Reverse proxies in front: from these peers (only) the client's address is read
    /// from `X-Forwarded-For`.
    pub trusted_proxies: Vec<IpAddr>,
    /// The OpenID Connect issuer (Google's; the emulator's base URL in tests).
    pub issuer: String,
    /// The OAuth client of the console (Google Cloud console, "Web application").
    pub client_id: String,
    /// A file holding the client's secret (mode 0600).
    pub client_secret_file: PathBuf,
    /// Helpdesk agents (belajar.id addresses): find any account, repair, reset after the
    /// birth-date check, release quarantines.
    pub helpdesk: Vec<String>,
    /// Ministry administrators: the helpdesk's rights, and suspend or reinstate.
    pub admins: Vec<String>,
    /// How long a sign-in lasts, in minutes.
    pub session_minutes: u32,
    /// Password resets one signed-in person may make in an hour.
    pub resets_per_hour: u32,
    /// Sheets of first passwords one signed-in person may download in an hour.
    pub sheets_per_hour: u32,
    /// Actions (resets, sheets, repairs, sign-ins) from one client address in an hour.
    pub per_address_per_hour: u32,
    /// Whether the public pages (Cek Akun, Lupa kata sandi) are served with the console.
    pub public_pages: bool,
    /// Tries on the public pages (Cek Akun, Lupa kata sandi) from one client address in
    /// an hour. Higher than a person needs: a school's lab or a mobile network puts many
    /// people behind one address.
    pub public_per_address_per_hour: u32,
    /// Tries on the public pages for one account (a school and a name, or an address) in
    /// an hour; past it, each refused try makes the wait longer (up to a day).
    pub public_per_account_per_hour: u32,
    /// The public pages answer no sooner than this many milliseconds after the question,
    /// whether or not a person matched, so that the time says nothing.
    pub public_answer_ms: u32,
    /// How long a reset code mailed by Lupa kata sandi is valid, in seconds.
    pub reset_code_seconds: u32,
}

impl Default for Web {
    fn default() -> Self {
        Web {
            listen: String::new(),
            public_url: String::new(),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            trusted_proxies: Vec::new(),
            issuer: GOOGLE_ISSUER.into(),
            client_id: String::new(),
            client_secret_file: PathBuf::new(),
            helpdesk: Vec::new(),
            admins: Vec::new(),
            session_minutes: 480,
            resets_per_hour: 30,
            sheets_per_hour: 20,
            per_address_per_hour: 600,
            public_pages: true,
            public_per_address_per_hour: 60,
            public_per_account_per_hour: 5,
            public_answer_ms: 400,
            reset_code_seconds: 900,
        }
    }
}

impl Web {
    pub fn enabled(&self) -> bool {
        !self.listen.is_empty()
    }

    pub fn tls(&self) -> bool {
        !self.tls_cert.as_os_str().is_empty()
    }

    /// The listening address (checked by [`Web::validate`]).
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }

    /// The address people open, without a trailing slash.
    pub fn public_url(&self, bound: SocketAddr) -> String {
        if self.public_url.is_empty() {
            let scheme = if self.tls() { "https" } else { "http" };
            format!("{scheme}://{bound}")
        } else {
            self.public_url.trim_end_matches('/').to_owned()
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled() {
            return Ok(());
        }
        let listen = self.listen_addr().ok_or_else(|| {
            format!(
                "web.listen: expected an address like \"127.0.0.1:8080\" (or \"\" for no console), got {:?}",
                self.listen
            )
        })?;
        if self.tls() == self.tls_key.as_os_str().is_empty() {
            return Err("web.tls_cert and web.tls_key: give both (HTTPS) or neither".into());
        }
        if !self.tls() && !listen.ip().is_loopback() {
            return Err(format!(
                "web.listen {listen}: plain HTTP only on a loopback address (a reverse proxy with TLS in front); give web.tls_cert and web.tls_key to listen on {}",
                listen.ip()
            ));
        }
        crate::config::check_api_base(&self.issuer).map_err(|e| format!("web.issuer: {e}"))?;
        if !self.public_url.is_empty() {
            crate::config::check_api_base(&self.public_url)
                .map_err(|e| format!("web.public_url: {e}"))?;
        }
        if self.client_id.is_empty() || self.client_secret_file.as_os_str().is_empty() {
            return Err(
                "web.client_id and web.client_secret_file: the console's OAuth client (Google Cloud console, a \"Web application\" client whose redirect URI is {public_url}/masuk/selesai) is needed for people to sign in".into(),
            );
        }
        for (key, value) in [
            ("session_minutes", self.session_minutes),
            ("resets_per_hour", self.resets_per_hour),
            ("sheets_per_hour", self.sheets_per_hour),
            ("per_address_per_hour", self.per_address_per_hour),
            (
                "public_per_address_per_hour",
                self.public_per_address_per_hour,
            ),
            (
                "public_per_account_per_hour",
                self.public_per_account_per_hour,
            ),
        ] {
            if value == 0 {
                return Err(format!("web.{key}: expected a positive number, got 0"));
            }
        }
        if !(1..=3600).contains(&self.reset_code_seconds) {
            return Err(format!(
                "web.reset_code_seconds: expected 1 to 3600 (a code mailed must be used soon), got {}",
                self.reset_code_seconds
            ));
        }
        Ok(())
    }

    /// Whether `email` is one of `list` (case does not matter in addresses).
    pub fn listed(list: &[String], email: &str) -> bool {
        list.iter()
            .any(|l| l.trim().eq_ignore_ascii_case(email.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web(listen: &str) -> Web {
        Web {
            listen: listen.into(),
            client_id: "c".into(),
            client_secret_file: "s".into(),
            ..Web::default()
        }
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(web("127.0.0.1:8080").validate().is_ok());
        let err = web("0.0.0.0:8080").validate().unwrap_err();
        assert!(err.contains("plain HTTP only on a loopback"), "{err}");
        let tls = Web {
            tls_cert: "c.pem".into(),
            tls_key: "k.pem".into(),
            ..web("0.0.0.0:443")
        };
        assert!(tls.validate().is_ok());
        let half = Web {
            tls_cert: "c.pem".into(),
            ..web("0.0.0.0:443")
        };
        assert!(half.validate().is_err());
    }

    #[test]
    fn the_issuer_is_https_unless_loopback() {
        let plain = Web {
            issuer: "http://accounts.example.com".into(),
            ..web("127.0.0.1:8080")
        };
        assert!(plain.validate().unwrap_err().contains("web.issuer"));
        let client = Web {
            client_id: String::new(),
            ..web("127.0.0.1:8080")
        };
        assert!(client.validate().unwrap_err().contains("client_id"));
    }
}
