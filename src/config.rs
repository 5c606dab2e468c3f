//! The TOML configuration. Every key has a serde default, unknown keys are refused, and
//! every error names the key and what was expected. `config/example.toml` documents each.

use crate::directory::model::{Jenjang, RoleGroup};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the configuration is read from when neither `--config` nor
/// `$BELAJAR_SYNC_CONFIG` is given.
pub const DEFAULT_PATH: &str = "/etc/belajar-sync/config.toml";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The sled store. A relative path is taken from the configuration file's folder.
    pub data_dir: PathBuf,
    /// sled's page cache in MiB: bounds the store's memory whatever the number of accounts.
    pub store_cache_mb: u64,
    /// Free space (MiB) the disk of `data_dir` must keep: an import, a sync or a daemon's
    /// round that would leave less does not start (the daemon waits for space).
    pub min_free_disk_mb: u64,
    pub naming: Naming,
    pub lifecycle: Lifecycle,
    pub google: Google,
    pub sync: Sync,
    pub daemon: Daemon,
    pub mail: Mail,
    pub display: Display,
    /// The web console (off unless `web.listen` is set).
    pub web: crate::web::Web,
    /// Google Workspace for Education licences (off unless `licences.enabled`).
    pub licences: Licences,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("/var/lib/belajar-sync"),
            store_cache_mb: 64,
            min_free_disk_mb: 1024,
            naming: Naming::default(),
            lifecycle: Lifecycle::default(),
            google: Google::default(),
            sync: Sync::default(),
            daemon: Daemon::default(),
            mail: Mail::default(),
            display: Display::default(),
            web: crate::web::Web::default(),
            licences: Licences::default(),
        }
    }
}

/// How to reach Google: the service account, the delegated admin, the quota to keep.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Google {
    /// The service account's JSON key (must not be readable by group or others).
    pub key_file: PathBuf,
    /// The admin the service account acts as (domain-wide delegation).
    pub subject: String,
    /// The Workspace customer: its id, or `my_customer`.
    pub customer: String,
    /// Base URL of the Admin SDK; plain HTTP only to loopback (the emulator).
    pub api_base: String,
    /// A ceiling on calls per minute; unset, Google's quota is learnt (and kept full).
    pub requests_per_minute: Option<u32>,
    /// Calls in flight at once.
    pub concurrency: u32,
    /// How long one call may take, retries included.
    pub call_deadline: jiff::SignedDuration,
}

impl Default for Google {
    fn default() -> Self {
        Google {
            key_file: PathBuf::from("/etc/belajar-sync/service-account.json"),
            subject: String::new(),
            customer: "my_customer".into(),
            api_base: "https://admin.googleapis.com".into(),
            requests_per_minute: None,
            concurrency: 16,
            call_deadline: jiff::SignedDuration::from_mins(10),
        }
    }
}

impl Google {
    fn validate(&self) -> Result<(), String> {
        check_api_base(&self.api_base).map_err(|why| format!("google.api_base: {why}"))?;
        if let Some(ceiling) = self.requests_per_minute
            && !(1..=100_000).contains(&ceiling)
        {
            return Err(format!(
                "google.requests_per_minute: expected 1 to 100000 (or leave it out to learn Google's quota), got {ceiling}"
            ));
        }
        if !(1..=1_000).contains(&self.concurrency) {
            return Err(format!(
                "google.concurrency: expected 1 to 1000, got {}",
                self.concurrency
            ));
        }
        if self.call_deadline <= jiff::SignedDuration::ZERO {
            return Err(format!(
                "google.call_deadline: expected a positive duration like \"10m\", got {}",
                self.call_deadline
            ));
        }
        if !self.subject.is_empty() && !self.subject.contains('@') {
            return Err(format!(
                "google.subject: expected the delegated admin's address, got {:?}",
                self.subject
            ));
        }
        Ok(())
    }
}

/// The domain of each (role group, level): a template per group where `{jenjang}` stands
/// for the level, and optional per-level exceptions.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Naming {
    pub student: String,
    pub teacher: String,
    pub admin: String,
    /// `[naming.levels.slb] student = "..."`: a domain for one group on one level.
    pub levels: BTreeMap<Jenjang, LevelDomains>,
}

impl Default for Naming {
    fn default() -> Self {
        Naming {
            student: "{jenjang}.belajar.id".into(),
            teacher: "guru.{jenjang}.belajar.id".into(),
            admin: "admin.{jenjang}.belajar.id".into(),
            levels: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelDomains {
    pub student: Option<String>,
    pub teacher: Option<String>,
    pub admin: Option<String>,
}

impl Naming {
    /// The domain that accounts of `group` on `jenjang` get their address in.
    pub fn domain(&self, group: RoleGroup, jenjang: Jenjang) -> String {
        let level = self.levels.get(&jenjang);
        let (template, exception) = match group {
            RoleGroup::Student => (&self.student, level.and_then(|l| l.student.as_ref())),
            RoleGroup::Teacher => (&self.teacher, level.and_then(|l| l.teacher.as_ref())),
            RoleGroup::Admin => (&self.admin, level.and_then(|l| l.admin.as_ref())),
        };
        exception
            .unwrap_or(template)
            .replace("{jenjang}", jenjang.as_str())
    }

    /// Every managed domain, each once, in a stable order.
    pub fn domains(&self) -> Vec<String> {
        let mut domains: Vec<String> = Jenjang::ALL
            .iter()
            .flat_map(|&j| RoleGroup::ALL.iter().map(move |&g| self.domain(g, j)))
            .collect();
        domains.sort();
        domains.dedup();
        domains
    }

    fn validate(&self) -> Result<(), String> {
        for &jenjang in Jenjang::ALL {
            for &group in RoleGroup::ALL {
                let domain = self.domain(group, jenjang);
                if let Err(why) = check_domain(&domain) {
                    let key = match self.levels.get(&jenjang) {
                        Some(_) => format!("naming.levels.{jenjang}.{group} or naming.{group}"),
                        None => format!("naming.{group}"),
                    };
                    return Err(format!(
                        "{key}: gives \"{domain}\" for {group}s on {jenjang}, which is not a domain name: {why}"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A DNS name Google accepts as a domain: at least two labels of `a-z`, `0-9` and `-`.
fn check_domain(domain: &str) -> Result<(), &'static str> {
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err("expected at least two labels, like sd.belajar.id");
    }
    for label in labels {
        if label.is_empty() || label.len() > 63 {
            return Err("each label between dots must have 1 to 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err("labels take lower-case letters, digits and inner hyphens only");
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lifecycle {
    /// Days an account of a person who left stays usable before it is suspended.
    pub grace_days: u32,
    /// A snapshot that would retire more than this share of a school's active accounts
    /// (schools of more than 10 accounts) retires none of them: a truncated export must
    /// not retire a school (`import --allow-mass-retire` when it is meant).
    pub max_retire_share: f64,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            grace_days: 30,
            max_retire_share: 0.2,
        }
    }
}

/// How the reconciler places accounts in Google and how far it may go on its own.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sync {
    /// The org unit of an account: `{group}` (student, teacher, admin), `{jenjang}` and
    /// `{npsn}` are replaced.
    pub org_unit: String,
    /// A run that would suspend more accounts than this suspends none of them.
    pub max_suspensions: u64,
    /// A run that would suspend more than this share of the managed accounts of one
    /// domain suspends none of them.
    pub max_suspension_share: f64,
    /// A scan that finds fewer than this share of the users the last scan found in a
    /// domain is not believed (a truncated listing must not look like mass departures).
    pub min_scan_share: f64,
    /// A domain is listed in parts of about this many users at most (by the first
    /// characters of addresses), so that each listing ends well inside Google's 60-minute
    /// limit and a scan cut short goes on from the parts it had listed.
    pub scan_part_users: u64,
}

impl Default for Sync {
    fn default() -> Self {
        Sync {
            org_unit: "/{group}/{jenjang}/{npsn}".into(),
            max_suspensions: 1000,
            max_suspension_share: 0.02,
            min_scan_share: 0.5,
            scan_part_users: 250_000,
        }
    }
}

impl Sync {
    fn validate(&self) -> Result<(), String> {
        if !self.org_unit.starts_with('/') || self.org_unit.contains("//") {
            return Err(format!(
                "sync.org_unit: expected a path from the root like \"/{{group}}/{{jenjang}}/{{npsn}}\", got {:?}",
                self.org_unit
            ));
        }
        let unknown = self
            .org_unit
            .replace("{group}", "")
            .replace("{jenjang}", "")
            .replace("{npsn}", "");
        if unknown.contains('{') || unknown.contains('}') {
            return Err(format!(
                "sync.org_unit: only {{group}}, {{jenjang}} and {{npsn}} may be used, got {:?}",
                self.org_unit
            ));
        }
        if self.scan_part_users == 0 {
            return Err("sync.scan_part_users: expected at least 1".into());
        }
        for (key, share) in [
            ("max_suspension_share", self.max_suspension_share),
            ("min_scan_share", self.min_scan_share),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return Err(format!("sync.{key}: expected 0.0 to 1.0, got {share}"));
            }
        }
        Ok(())
    }

    /// The org unit path of an account of `group` on `jenjang` at school `npsn`.
    pub fn org_unit_of(&self, group: RoleGroup, jenjang: Jenjang, npsn: &str) -> String {
        self.org_unit
            .replace("{group}", group.as_str())
            .replace("{jenjang}", jenjang.as_str())
            .replace("{npsn}", npsn)
    }
}

/// How `belajar-sync run` paces itself.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Daemon {
    /// Time between full scans of Google (one runs at start when none has).
    pub scan_interval: jiff::SignedDuration,
    /// How often the inbox and the journal are looked at.
    pub push_interval: jiff::SignedDuration,
    /// A folder watched for exports: each is imported, then moved to `processed/` or to
    /// `rejected/` with a `.error` file saying why. Off when empty.
    pub inbox_dir: PathBuf,
    /// On SIGTERM, how long calls in flight may take to finish.
    pub stop_timeout: jiff::SignedDuration,
    /// Where the Prometheus metrics are served (`GET /metrics`); off when empty.
    pub metrics_listen: String,
    /// The Unix socket through which operator commands reach the running daemon (mode
    /// 0660: members of the service's group may use it); off when empty.
    pub control_socket: PathBuf,
    /// The largest export an operator may send through the control socket, in MiB.
    pub max_upload_mb: u64,
    /// Where the daemon writes a backup of the store each day (and `backup` through the
    /// socket writes); off when empty.
    pub backup_dir: PathBuf,
    /// How many daily backups are kept.
    pub backup_keep: u32,
}

impl Default for Daemon {
    fn default() -> Self {
        Daemon {
            scan_interval: jiff::SignedDuration::from_hours(24),
            push_interval: jiff::SignedDuration::from_secs(5),
            inbox_dir: PathBuf::new(),
            stop_timeout: jiff::SignedDuration::from_secs(30),
            metrics_listen: "127.0.0.1:9464".into(),
            control_socket: "/run/belajar-sync/control.sock".into(),
            max_upload_mb: 4096,
            backup_dir: PathBuf::new(),
            backup_keep: 7,
        }
    }
}

impl Daemon {
    fn validate(&self) -> Result<(), String> {
        for (key, value) in [
            ("scan_interval", self.scan_interval),
            ("push_interval", self.push_interval),
            ("stop_timeout", self.stop_timeout),
        ] {
            if value <= jiff::SignedDuration::ZERO {
                return Err(format!(
                    "daemon.{key}: expected a positive duration like \"30s\" or \"24h\", got {value}"
                ));
            }
        }
        if !self.metrics_listen.is_empty()
            && self.metrics_listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(format!(
                "daemon.metrics_listen: expected an address like \"127.0.0.1:9464\" (or \"\" for none), got {:?}",
                self.metrics_listen
            ));
        }
        Ok(())
    }
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no configuration file at {path}: give one with --config PATH or $BELAJAR_SYNC_CONFIG (config/example.toml documents every key)"
    )]
    Missing { path: PathBuf },
    #[error("cannot read configuration {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    /// The installation this configuration manages (the customer and its domains), as a
    /// backup records it.
    pub fn installation(&self) -> crate::store::backup::Installation {
        crate::store::backup::Installation {
            customer: self.google.customer.clone(),
            domains: self.naming.domains(),
        }
    }

    /// Reads and checks the configuration at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ConfigError::Missing { path: path.into() }
            } else {
                ConfigError::Unreadable {
                    path: path.into(),
                    source,
                }
            }
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.into(),
            message,
        };
        let mut config = Config::parse(&text).map_err(invalid)?;
        // Relative paths are taken from the configuration file's folder.
        let folder = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let base = std::path::absolute(folder).unwrap_or_else(|_| folder.to_owned());
        for field in [
            &mut config.google.key_file,
            &mut config.daemon.inbox_dir,
            &mut config.daemon.control_socket,
            &mut config.daemon.backup_dir,
            &mut config.mail.credentials_file,
            &mut config.web.client_secret_file,
            &mut config.web.tls_cert,
            &mut config.web.tls_key,
            &mut config.data_dir,
        ] {
            if !field.as_os_str().is_empty() && field.is_relative() {
                *field = base.join(&*field);
            }
        }
        Ok(config)
    }

    /// Parses and checks configuration text; the error names the key at fault.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string().trim().to_owned())?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if self.data_dir.as_os_str().is_empty() {
            return Err("data_dir: expected the path of the store's folder, got \"\"".into());
        }
        if !(1..=65_536).contains(&self.store_cache_mb) {
            return Err(format!(
                "store_cache_mb: expected 1 to 65536 (MiB), got {}",
                self.store_cache_mb
            ));
        }
        if self.lifecycle.grace_days > 365 {
            return Err(format!(
                "lifecycle.grace_days: expected 0 to 365 days, got {}",
                self.lifecycle.grace_days
            ));
        }
        if !(0.0..=1.0).contains(&self.lifecycle.max_retire_share) {
            return Err(format!(
                "lifecycle.max_retire_share: expected a share from 0 to 1, got {}",
                self.lifecycle.max_retire_share
            ));
        }
        self.naming.validate()?;
        self.sync.validate()?;
        self.daemon.validate()?;
        self.mail.validate()?;
        self.display.validate()?;
        self.web.validate()?;
        self.licences.validate()?;
        self.google.validate()
    }
}

/// The SMTP relay through which retiring accounts' holders are told (30 and 3 days before
/// the suspension). Off when `relay` is empty.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mail {
    /// The relay's host name; off when empty.
    pub relay: String,
    pub port: u16,
    /// `starttls` (usually port 587), `tls` (465), or `none` (only to a relay on loopback).
    pub security: MailSecurity,
    /// The sender, e.g. `Akun belajar.id <noreply@belajar.id>`.
    pub from: String,
    /// A file holding the relay's user name on its first line and its password on the
    /// second, readable by its owner only; no authentication when empty.
    pub credentials_file: PathBuf,
}

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailSecurity {
    Starttls,
    Tls,
    None,
}

impl Default for Mail {
    fn default() -> Self {
        Mail {
            relay: String::new(),
            port: 587,
            security: MailSecurity::Starttls,
            from: "Akun belajar.id <noreply@belajar.id>".into(),
            credentials_file: PathBuf::new(),
        }
    }
}

impl Mail {
    /// Whether notices are sent.
    pub fn enabled(&self) -> bool {
        !self.relay.is_empty()
    }

    fn validate(&self) -> Result<(), String> {
        if !self.enabled() {
            return Ok(());
        }
        if self.security == MailSecurity::None && !is_loopback(&self.relay) {
            return Err(format!(
                "mail.security: \"none\" sends in the clear: only to a relay on loopback, and {:?} is not; use \"starttls\" or \"tls\"",
                self.relay
            ));
        }
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(format!(
                "mail.from: {:?} is not an address: expected e.g. \"Akun belajar.id <noreply@belajar.id>\"",
                self.from
            ));
        }
        Ok(())
    }
}

/// Education licences: which one an active account holds and what a retired one gets.
/// Since 2025 every user needs an Education Fundamentals licence and their number is
/// finite; a retired account archived with the Archived User licence gives its
/// Fundamentals licence back (reusable after up to 24 hours).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Licences {
    /// Whether belajar-sync manages licences at all (asks for the licensing scope,
    /// assigns, reads and repairs them).
    pub enabled: bool,
    /// Base URL of the Enterprise License Manager API; plain HTTP only to loopback.
    pub api_base: String,
    /// The SKU every active account holds (`1010070001`, Education Fundamentals).
    pub sku: String,
    /// Another SKU of the same product for a role group (`student`, `teacher`, `admin`),
    /// e.g. `{ teacher = "1010070004" }`.
    pub by_role: BTreeMap<String, String>,
    /// What a retired account gets at the end of its grace period: `archive` (suspended,
    /// then archived with an Archived User licence, which frees its Fundamentals licence)
    /// or `suspend` (suspended only: it keeps its licence).
    pub retired: RetiredLicence,
    /// Google assigns Fundamentals by itself (auto-licensing, on by default for domains
    /// that existed in 2025): belajar-sync then checks that the licence is there and
    /// assigns none.
    pub auto_assigned: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetiredLicence {
    Archive,
    Suspend,
}

impl Default for Licences {
    fn default() -> Self {
        Licences {
            enabled: false,
            api_base: "https://licensing.googleapis.com".into(),
            sku: "1010070001".into(),
            by_role: BTreeMap::new(),
            retired: RetiredLicence::Archive,
            auto_assigned: false,
        }
    }
}

/// The product of the SKUs belajar-sync assigns to active accounts (Education Fundamentals
/// and Gmail Only are both `Google-Apps`).
pub const LICENCE_PRODUCT: &str = "Google-Apps";

/// The Education Fundamentals – Archived User SKU an archived user takes.
pub const ARCHIVED_SKU: &str = "1010340007";

/// The product of a SKU belajar-sync reads or assigns.
pub fn licence_product(sku: &str) -> &'static str {
    match sku {
        ARCHIVED_SKU => "101034",
        _ => LICENCE_PRODUCT,
    }
}

impl Licences {
    /// The SKU an active account of `group` holds.
    pub fn sku_for(&self, group: RoleGroup) -> &str {
        self.by_role
            .get(group.as_str())
            .map_or(self.sku.as_str(), String::as_str)
    }

    fn validate(&self) -> Result<(), String> {
        check_api_base(&self.api_base).map_err(|why| format!("licences.api_base: {why}"))?;
        let is_sku = |s: &str| s.len() == 10 && s.bytes().all(|b| b.is_ascii_digit());
        if !is_sku(&self.sku) {
            return Err(format!(
                "licences.sku: expected a 10-digit SKU id like \"1010070001\" (Education Fundamentals), got {:?}",
                self.sku
            ));
        }
        for (role, sku) in &self.by_role {
            if RoleGroup::parse(role).is_none() {
                return Err(format!(
                    "licences.by_role: {role:?} is not a role group: expected student, teacher or admin"
                ));
            }
            if !is_sku(sku) {
                return Err(format!(
                    "licences.by_role.{role}: expected a 10-digit SKU id, got {sku:?}"
                ));
            }
        }
        Ok(())
    }
}

/// How times are shown to people.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Display {
    /// An IANA time zone (`Asia/Jakarta`, `Asia/Makassar`, `Asia/Jayapura`); the machine's
    /// when empty.
    pub time_zone: String,
}

impl Display {
    /// The time zone times are shown in.
    pub fn zone(&self) -> jiff::tz::TimeZone {
        if self.time_zone.is_empty() {
            jiff::tz::TimeZone::system()
        } else {
            jiff::tz::TimeZone::get(&self.time_zone).unwrap_or(jiff::tz::TimeZone::UTC)
        }
    }

    fn validate(&self) -> Result<(), String> {
        if !self.time_zone.is_empty() && jiff::tz::TimeZone::get(&self.time_zone).is_err() {
            return Err(format!(
                "display.time_zone: {:?} is not a time zone: expected a name like \"Asia/Jakarta\"",
                self.time_zone
            ));
        }
        Ok(())
    }
}

/// Whether `host` is this machine (`localhost` or a loopback address).
fn is_loopback(host: &str) -> bool {
    match url::Host::parse(host) {
        Ok(url::Host::Domain(d)) => d == "localhost",
        Ok(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Ok(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Err(_) => host
            .trim_matches(['[', ']'])
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|ip| ip.is_loopback()),
    }
}

/// Checks that `api_base` is HTTPS, or plain HTTP to loopback (the emulator).
pub fn check_api_base(api_base: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(api_base)
        .map_err(|e| format!("is not a URL ({e}): expected https://admin.googleapis.com"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if url.host_str().is_some_and(is_loopback) => Ok(url),
        "http" => Err(format!(
            "{api_base:?} uses plain http to a host that is not loopback: use https"
        )),
        other => Err(format!("{api_base:?} has scheme {other}: expected https")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(check_api_base("https://admin.googleapis.com").is_ok());
        assert!(check_api_base("http://127.0.0.1:8089").is_ok());
        assert!(check_api_base("http://[::1]:8089").is_ok());
        assert!(check_api_base("http://localhost:8089").is_ok());
        assert!(check_api_base("http://admin.googleapis.com").is_err());
        assert!(check_api_base("http://10.0.0.1").is_err());
        assert!(check_api_base("ftp://x").is_err());
        assert!(check_api_base("not a url").is_err());
    }

    #[test]
    fn empty_file_gives_the_belajar_id_defaults() {
        let config = Config::parse("").unwrap();
        assert_eq!(config, Config::default());
        let n = &config.naming;
        assert_eq!(n.domain(RoleGroup::Student, Jenjang::Sd), "sd.belajar.id");
        assert_eq!(
            n.domain(RoleGroup::Teacher, Jenjang::Smp),
            "guru.smp.belajar.id"
        );
        assert_eq!(
            n.domain(RoleGroup::Admin, Jenjang::Slb),
            "admin.slb.belajar.id"
        );
        assert_eq!(n.domains().len(), 18);
    }

    #[test]
    fn example_file_parses_to_the_defaults() {
        let text = include_str!("../config/example.toml");
        let mut config = Config::parse(text).unwrap();
        config.data_dir = Config::default().data_dir;
        assert_eq!(config, Config::default());
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::parse("[lifecycle]\ngrace_dayz = 3\n").unwrap_err();
        assert!(err.contains("grace_dayz"), "{err}");
        assert!(err.contains("grace_days"), "lists what is expected: {err}");
    }

    #[test]
    fn wrong_types_name_the_key_and_the_expected_type() {
        let err = Config::parse("[lifecycle]\ngrace_days = \"thirty\"\n").unwrap_err();
        assert!(err.contains("grace_days"), "{err}");
        assert!(
            err.contains("expected u32") || err.contains("integer"),
            "{err}"
        );
    }

    #[test]
    fn out_of_range_values_name_the_key() {
        let err = Config::parse("[lifecycle]\ngrace_days = 400\n").unwrap_err();
        assert!(err.starts_with("lifecycle.grace_days"), "{err}");
        let err = Config::parse("store_cache_mb = 0\n").unwrap_err();
        assert!(err.starts_with("store_cache_mb"), "{err}");
    }

    #[test]
    fn a_bad_domain_template_is_refused_with_its_key() {
        let err = Config::parse("[naming]\nteacher = \"Guru_{jenjang}\"\n").unwrap_err();
        assert!(err.starts_with("naming.teacher"), "{err}");
    }

    #[test]
    fn a_level_exception_overrides_the_template() {
        let config =
            Config::parse("[naming.levels.slb]\nstudent = \"siswa.slb.belajar.id\"\n").unwrap();
        assert_eq!(
            config.naming.domain(RoleGroup::Student, Jenjang::Slb),
            "siswa.slb.belajar.id"
        );
        assert_eq!(
            config.naming.domain(RoleGroup::Student, Jenjang::Sd),
            "sd.belajar.id"
        );
    }

    #[test]
    fn google_settings_are_checked() {
        let err =
            Config::parse("[google]\napi_base = \"http://admin.googleapis.com\"\n").unwrap_err();
        assert!(err.starts_with("google.api_base"), "{err}");
        assert!(Config::parse("[google]\napi_base = \"http://127.0.0.1:8089\"\n").is_ok());
        let config = Config::parse("[google]\ncall_deadline = \"90s\"\n").unwrap();
        assert_eq!(
            config.google.call_deadline,
            jiff::SignedDuration::from_secs(90)
        );
        let err = Config::parse("[google]\ncall_deadline = \"soon\"\n").unwrap_err();
        assert!(err.contains("call_deadline"), "{err}");
        let err = Config::parse("[google]\nconcurrency = 0\n").unwrap_err();
        assert!(err.starts_with("google.concurrency"), "{err}");
    }

    #[test]
    fn relative_data_dir_is_taken_from_the_config_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "data_dir = \"store\"\n").unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.data_dir, dir.path().join("store"));
        assert!(config.data_dir.is_absolute());
        let missing = Config::load(&dir.path().join("nope.toml")).unwrap_err();
        assert!(matches!(missing, ConfigError::Missing { .. }));
    }

    #[test]
    fn mail_and_display_settings_are_checked_and_name_the_key() {
        let ok = Config::parse(
            "[mail]\nrelay = \"smtp.example.id\"\n[display]\ntime_zone = \"Asia/Makassar\"\n",
        )
        .unwrap();
        assert!(ok.mail.enabled());
        assert_eq!(ok.mail.security, MailSecurity::Starttls);
        assert!(!Config::default().mail.enabled(), "off by default");
        let err = Config::parse("[mail]\nrelay = \"smtp.example.id\"\nsecurity = \"none\"\n")
            .unwrap_err();
        assert!(
            err.starts_with("mail.security"),
            "clear text off loopback: {err}"
        );
        assert!(
            Config::parse("[mail]\nrelay = \"127.0.0.1\"\nsecurity = \"none\"\n").is_ok(),
            "clear text to a relay on loopback"
        );
        let err = Config::parse("[mail]\nrelay = \"x\"\nfrom = \"not an address\"\n").unwrap_err();
        assert!(err.starts_with("mail.from"), "{err}");
        let err = Config::parse("[display]\ntime_zone = \"Mars/Olympus\"\n").unwrap_err();
        assert!(err.starts_with("display.time_zone"), "{err}");
    }
}
