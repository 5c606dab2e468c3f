//! The emulated directory of users: the `User` resource as the discovery document defines
//! it, with Google's rules on insert, update (patch semantics), rename, suspension,
//! delete/undelete and listing. Pure data and rules: the HTTP layer is in `mod.rs`, time is
//! an argument.

use super::auth::{new_etag, random_digits};
use super::errors::ApiError;
use super::orgunits::OrgUnits;
use super::query::Clause;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::time::Duration;
use tokio::time::Instant;

/// Fields the discovery document marks read-only (and the server-assigned `id`): ignored
/// when written.
const READ_ONLY: &[&str] = &[
    "agreedToTerms",
    "aliases",
    "creationTime",
    "customerId",
    "deletionTime",
    "etag",
    "id",
    "isAdmin",
    "isDelegatedAdmin",
    "isEnforcedIn2Sv",
    "isEnrolledIn2Sv",
    "isMailboxSetup",
    "kind",
    "lastLoginTime",
    "nonEditableAliases",
    "suspensionReason",
    "thumbnailPhotoEtag",
    "thumbnailPhotoUrl",
];

/// Accepted on write, never stored or returned.
const WRITE_ONLY: &[&str] = &["password", "hashFunction"];

/// Google's limit on `givenName` and `familyName`.
const NAME_MAX: usize = 60;

/// The customer id the emulated Workspace account has.
pub const CUSTOMER_ID: &str = "C03belajar";

/// The moment of a call: the monotonic time (for propagation windows) and the wall-clock
/// text written into resources.
#[derive(Debug, Clone)]
pub struct Now {
    pub instant: Instant,
    pub rfc3339: String,
}

/// What the rules of a write depend on besides the users.
pub struct Rules<'a> {
    pub domains: &'a BTreeSet<String>,
    pub org_units: &'a OrgUnits,
    /// How long a created user stays invisible to listing and refuses writes, and how long
    /// after a rename writes answer 409.
    pub propagation: Duration,
}

#[derive(Debug, Clone)]
struct User {
    /// The resource as JSON text, read and rewritten whole: a parsed resource costs about
    /// 5 KB of memory, its text a sixth of that, and the benches hold millions of users.
    json: Box<str>,
    /// From the resource, for the indexes and listing order, and for the check every
    /// call makes of its caller.
    id: Box<str>,
    primary: Box<str>,
    admin: bool,
    created: Instant,
    renamed: Option<Instant>,
    /// The password last set through the API, salted and hashed (never returned); `None`
    /// when none was set in clear (`hashFunction` sends a hash the emulator cannot check).
    password: Option<PasswordHash>,
}

/// A salted SHA-256 of a password: enough for the sign-in route to check a password
/// without the emulator keeping it.
#[derive(Clone, PartialEq, Eq)]
struct PasswordHash {
    salt: [u8; 16],
    digest: [u8; 32],
}

impl PasswordHash {
    fn new(password: &str) -> PasswordHash {
        let salt: [u8; 16] = rand::random();
        PasswordHash {
            salt,
            digest: Self::digest(&salt, password),
        }
    }

    fn digest(salt: &[u8; 16], password: &str) -> [u8; 32] {
        use rsa::sha2::Digest;
        rsa::sha2::Sha256::new()
            .chain_update(salt)
            .chain_update(password.as_bytes())
            .finalize()
            .into()
    }

    fn matches(&self, password: &str) -> bool {
        Self::digest(&self.salt, password) == self.digest
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

/// The password a write sets: `Some(None)` when it sets one the emulator cannot check (a
/// hash in `hashFunction`), `None` when it sets none.
fn password_of(body: &Map<String, Value>) -> Option<Option<PasswordHash>> {
    let password = body.get("password").and_then(Value::as_str)?;
    Some(
        body.get("hashFunction")
            .is_none()
            .then(|| PasswordHash::new(password)),
    )
}

/// Why a sign-in through the test route was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInRefused {
    /// No such user, or a wrong password: Google does not say which.
    WrongAddressOrPassword,
    Suspended,
}

impl User {
    fn new(resource: Map<String, Value>, created: Instant) -> User {
        let mut user = User {
            json: Box::default(),
            id: Box::default(),
            primary: Box::default(),
            admin: false,
            created,
            renamed: None,
            password: None,
        };
        user.set(&resource);
        user
    }

    /// The resource, parsed.
    fn resource(&self) -> Map<String, Value> {
        serde_json::from_str(&self.json).expect("the emulator wrote this JSON")
    }

    fn set(&mut self, resource: &Map<String, Value>) {
        let text = |field: &str| resource.get(field).and_then(Value::as_str).unwrap_or("");
        self.id = text("id").into();
        self.primary = text("primaryEmail").into();
        self.admin = resource.get("isAdmin") == Some(&json!(true));
        self.json = serde_json::to_string(resource)
            .expect("a map serialises")
            .into();
    }

    /// Changes the resource through `f`.
    fn edit<T>(&mut self, f: impl FnOnce(&mut Map<String, Value>) -> T) -> T {
        let mut resource = self.resource();
        let out = f(&mut resource);
        self.set(&resource);
        out
    }

    fn id(&self) -> &str {
        &self.id
    }

    fn primary(&self) -> &str {
        &self.primary
    }

    fn aliases(&self) -> Vec<String> {
        self.resource()
            .get("aliases")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn settling(&self, now: Instant, window: Duration) -> bool {
        now < self.created + window
    }
}

/// Every user of the emulated customer, with the indexes of addresses.
#[derive(Debug, Default)]
pub struct Users {
    by_id: BTreeMap<String, User>,
    /// Primary address → id, in address order (for `orderBy=email`).
    primaries: BTreeMap<String, String>,
    /// Alias → id, in address order (for `email:PREFIX*`).
    aliases: BTreeMap<String, String>,
    deleted: BTreeMap<String, User>,
}

/// How `users.list` orders its users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Id,
    Email,
    GivenName,
    FamilyName,
}

/// The checked parameters of a `users.list` call.
#[derive(Debug, Clone)]
pub struct ListParams {
    pub domain: Option<String>,
    pub max_results: usize,
    pub page_token: Option<String>,
    pub order: Order,
    pub descending: bool,
    pub show_deleted: bool,
    pub query: Vec<Clause>,
    /// A listing that pages for longer than this is refused (Google: 60 minutes).
    pub listing_limit: Option<Duration>,
    /// How long a new user stays out of `query` results (Google's search index lags).
    pub query_lag: Duration,
}

fn domain_of(email: &str) -> &str {
    email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
}

fn check_names(name: Option<&Value>, on_insert: bool) -> Result<(), ApiError> {
    for (part, label) in [("givenName", "GivenName"), ("familyName", "FamilyName")] {
        let value = name.and_then(|n| n.get(part));
        let bad = match value {
            None if on_insert => true,
            None => false,
            Some(v) => v
                .as_str()
                .map(str::trim)
                .is_none_or(|s| s.is_empty() || s.chars().count() > NAME_MAX),
        };
        if bad {
            return Err(ApiError::invalid(format!(
                "Invalid Given/Family Name: {label}"
            )));
        }
    }
    Ok(())
}

/// Merges `patch` into `target` with Google's patch semantics: present fields replace,
/// `null` clears, objects merge field by field, arrays are replaced whole.
fn merge(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match (value, target.get_mut(key)) {
            (Value::Null, _) => {
                target.remove(key);
            }
            (Value::Object(patch), Some(Value::Object(existing))) => merge(existing, patch),
            _ => {
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

impl Users {
    /// Adds an administrator (the delegated admin the daemon acts as), visible at once.
    pub fn add_admin(&mut self, email: &str, now: &Now) {
        let resource = json!({"primaryEmail": email.to_ascii_lowercase(),
                              "name": {"givenName": "Admin", "familyName": "Belajar"}});
        let mut user = self.new_user(resource.as_object().expect("object").clone(), now);
        user.created = now
            .instant
            .checked_sub(Duration::from_secs(86_400))
            .unwrap_or(now.instant);
        user.edit(|r| r.insert("isAdmin".into(), json!(true)));
        self.store(user);
    }

    pub(super) fn id_of(&self, key: &str) -> Option<String> {
        let key = key.trim().to_ascii_lowercase();
        self.primaries
            .get(&key)
            .or_else(|| self.aliases.get(&key))
            .cloned()
            .or_else(|| self.by_id.contains_key(&key).then_some(key))
    }

    /// The primary address of the user of id `id`.
    pub(super) fn primary_of(&self, id: &str) -> Option<&str> {
        self.by_id.get(id).map(User::primary)
    }

    fn find(&self, key: &str) -> Option<&User> {
        self.by_id.get(&self.id_of(key)?)
    }

    /// Whether `email` names an administrator.
    pub fn is_admin(&self, email: &str) -> bool {
        self.find(email).is_some_and(|u| u.admin)
    }

    /// Whether `email` names a user of the customer.
    pub fn exists(&self, email: &str) -> bool {
        self.find(email).is_some()
    }

    /// How many users there are (not counting deleted ones).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// `users.get`: by primary address, alias, or id. A user created within the
    /// propagation window is not found by id yet.
    pub fn get(&self, key: &str, now: Instant, propagation: Duration) -> Result<Value, ApiError> {
        let user = self.find(key).ok_or_else(ApiError::user_not_found)?;
        if user.id() == key.trim() && user.settling(now, propagation) {
            return Err(ApiError::user_not_found());
        }
        Ok(Value::Object(user.resource()))
    }

    /// `users.insert` with Google's checks.
    pub fn insert(
        &mut self,
        body: &Value,
        rules: &Rules<'_>,
        now: &Now,
    ) -> Result<Value, ApiError> {
        let body = body
            .as_object()
            .ok_or_else(|| ApiError::invalid("Invalid Input"))?;
        let email = body
            .get("primaryEmail")
            .and_then(Value::as_str)
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .ok_or_else(|| ApiError::required("primaryEmail"))?;
        check_names(body.get("name"), true)?;
        if body
            .get("password")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(ApiError::required("password"));
        }
        if !rules.domains.contains(domain_of(&email)) {
            return Err(ApiError::forbidden());
        }
        if self.id_of(&email).is_some() {
            return Err(ApiError::duplicate());
        }
        let org_unit = body
            .get("orgUnitPath")
            .and_then(Value::as_str)
            .unwrap_or("/");
        if !rules.org_units.contains(org_unit) {
            return Err(ApiError::invalid("Invalid Input: INVALID_OU_ID"));
        }
        let mut resource: Map<String, Value> = body
            .iter()
            .filter(|(k, _)| !READ_ONLY.contains(&k.as_str()) && !WRITE_ONLY.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        resource.insert("primaryEmail".into(), json!(email));
        resource.insert("orgUnitPath".into(), json!(org_unit));
        apply_suspension(&mut resource, None);
        let mut user = self.new_user(resource, now);
        user.password = password_of(body).flatten();
        let out = Value::Object(user.resource());
        self.store(user);
        Ok(out)
    }

    /// `users.update` and `users.patch`: patch semantics, a rename when `primaryEmail`
    /// changes (the old address stays as an alias), `suspensionReason` `ADMIN` when
    /// suspended through the API.
    pub fn update(
        &mut self,
        key: &str,
        body: &Value,
        rules: &Rules<'_>,
        now: &Now,
    ) -> Result<Value, ApiError> {
        let body = body
            .as_object()
            .ok_or_else(|| ApiError::invalid("Invalid Input"))?;
        let id = self.id_of(key).ok_or_else(ApiError::user_not_found)?;
        let user = &self.by_id[&id];
        if user.settling(now.instant, rules.propagation) {
            return Err(ApiError::creation_not_complete());
        }
        if user
            .renamed
            .is_some_and(|at| now.instant < at + rules.propagation)
        {
            return Err(ApiError::duplicate());
        }
        check_names(body.get("name"), false)?;
        if let Some(unit) = body.get("orgUnitPath").and_then(Value::as_str)
            && !rules.org_units.contains(unit)
        {
            return Err(ApiError::invalid("Invalid Input: INVALID_OU_ID"));
        }
        let old_primary = user.primary().to_owned();
        let new_primary = match body.get("primaryEmail").and_then(Value::as_str) {
            Some(email) if email.trim().to_ascii_lowercase() != old_primary => {
                let email = email.trim().to_ascii_lowercase();
                if !rules.domains.contains(domain_of(&email)) {
                    return Err(ApiError::forbidden());
                }
                if self.id_of(&email).is_some_and(|owner| owner != id) {
                    return Err(ApiError::duplicate());
                }
                Some(email)
            }
            _ => None,
        };
        let mut user = self.unstore(&id);
        let mut resource = user.resource();
        let was_suspended = resource.get("suspended").and_then(Value::as_bool);
        let writable: Map<String, Value> = body
            .iter()
            .filter(|(k, _)| {
                !READ_ONLY.contains(&k.as_str())
                    && !WRITE_ONLY.contains(&k.as_str())
                    && *k != "primaryEmail"
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut aliases = user.aliases();
        merge(&mut resource, &writable);
        if let Some(password) = password_of(body) {
            user.password = password;
        }
        apply_suspension(&mut resource, was_suspended);
        if let Some(email) = new_primary {
            aliases.retain(|a| *a != email);
            aliases.push(old_primary);
            resource.insert("aliases".into(), json!(aliases));
            resource.insert("primaryEmail".into(), json!(email));
            user.renamed = Some(now.instant);
        }
        set_full_name(&mut resource);
        resource.insert("etag".into(), json!(new_etag()));
        user.set(&resource);
        let out = Value::Object(resource);
        self.store(user);
        Ok(out)
    }

    /// `users.delete`: the user leaves the directory but can be undeleted by id.
    pub fn delete(&mut self, key: &str, now: &Now) -> Result<(), ApiError> {
        let id = self.id_of(key).ok_or_else(ApiError::user_not_found)?;
        let mut user = self.unstore(&id);
        user.edit(|r| r.insert("deletionTime".into(), json!(now.rfc3339)));
        self.deleted.insert(id, user);
        Ok(())
    }

    /// `users.undelete`: by id only; the address must still be free.
    pub fn undelete(
        &mut self,
        id: &str,
        org_unit: Option<&str>,
        rules: &Rules<'_>,
    ) -> Result<(), ApiError> {
        let user = self.deleted.get(id).ok_or_else(ApiError::user_not_found)?;
        if std::iter::once(user.primary().to_owned())
            .chain(user.aliases())
            .any(|a| self.id_of(&a).is_some())
        {
            return Err(ApiError::duplicate());
        }
        let unit = org_unit.unwrap_or("/");
        if !rules.org_units.contains(unit) {
            return Err(ApiError::invalid("Invalid Input: INVALID_OU_ID"));
        }
        let mut user = self.deleted.remove(id).expect("checked above");
        user.edit(|r| {
            r.remove("deletionTime");
            r.insert("orgUnitPath".into(), json!(unit));
            r.insert("etag".into(), json!(new_etag()));
        });
        self.store(user);
        Ok(())
    }

    /// A person signs in at `email` (primary address or alias) with `password`, as the
    /// test route `POST /emulator/signin` lets tests do: refused for a wrong address or
    /// password and for a suspended user; otherwise `lastLoginTime` becomes now and the
    /// answer says whether a new password must be chosen. `new_password`, when a change is
    /// required, is that choice: it is set and the requirement cleared.
    pub fn sign_in(
        &mut self,
        email: &str,
        password: &str,
        new_password: Option<&str>,
        now: &Now,
    ) -> Result<bool, SignInRefused> {
        let id = self
            .id_of(email)
            .filter(|id| *id != email.trim().to_ascii_lowercase())
            .ok_or(SignInRefused::WrongAddressOrPassword)?;
        let user = self.by_id.get_mut(&id).expect("id from the index");
        if !user.password.as_ref().is_some_and(|p| p.matches(password)) {
            return Err(SignInRefused::WrongAddressOrPassword);
        }
        let mut resource = user.resource();
        if resource.get("suspended") == Some(&json!(true)) {
            return Err(SignInRefused::Suspended);
        }
        resource.insert("lastLoginTime".into(), json!(now.rfc3339));
        let mut must_change = resource.get("changePasswordAtNextLogin") == Some(&json!(true));
        if must_change && let Some(new_password) = new_password {
            user.password = Some(PasswordHash::new(new_password));
            resource.insert("changePasswordAtNextLogin".into(), json!(false));
            must_change = false;
        }
        user.set(&resource);
        Ok(must_change)
    }

    /// `users.list`: one page of the users matching `params`, in their order, with a
    /// keyset page token (stable while users are added or removed). Users created within
    /// the propagation window are not listed yet.
    pub fn list(
        &self,
        params: &ListParams,
        now: Instant,
        propagation: Duration,
    ) -> Result<Value, ApiError> {
        let token = params.page_token.as_deref().map(decode_token).transpose()?;
        let started = token.as_ref().map_or(now, |t| t.started);
        if let Some(limit) = params.listing_limit
            && now.saturating_duration_since(started) > limit
        {
            return Err(ApiError::backend_error());
        }
        let after = token.map(|t| (t.key, t.id));
        let visible = |u: &&User| {
            (params.show_deleted || !u.settling(now, propagation))
                && (params.query.is_empty() || !u.settling(now, params.query_lag))
                && params
                    .domain
                    .as_deref()
                    .is_none_or(|d| domain_of(u.primary()) == d)
                && (params.query.is_empty() || {
                    let resource = u.resource();
                    params.query.iter().all(|c| c.matches(&resource))
                })
        };
        let source = if params.show_deleted {
            &self.deleted
        } else {
            &self.by_id
        };
        let fast = params.order == Order::Id && !params.descending;
        // `email:PREFIX*` (a scan in parts): the users are found through the address
        // indexes, as Google's search index would, not by reading every user.
        let by_prefix = match params.query.as_slice() {
            [clause] if fast && !params.show_deleted => clause.email_prefix(),
            _ => None,
        };
        // Where the page's last user was found, when not by its sort key (a prefix
        // listing goes in address order).
        let (mut page, last_address) = match by_prefix {
            Some(prefix) => self.page_by_prefix(source, prefix, &after, params, &visible),
            None if fast => (Self::page_by_id(source, &after, params, &visible), None),
            None => (Self::page_sorted(source, &after, params, &visible), None),
        };
        let more = page.len() > params.max_results;
        page.truncate(params.max_results);
        let mut out = json!({"kind": "admin#directory#users", "etag": new_etag()});
        if !page.is_empty() {
            out["users"] = page.iter().map(|u| Value::Object(u.resource())).collect();
        }
        if more && let Some(last) = page.last() {
            let token = PageToken {
                key: last_address.unwrap_or_else(|| sort_key(last, params.order)),
                id: last.id().to_owned(),
                started,
            };
            out["nextPageToken"] = json!(encode_token(&token));
        }
        Ok(out)
    }

    /// A page of the users with an address starting with `prefix`, in address order from
    /// the token on (each page costs its size): primaries and aliases merged, a user found
    /// by an alias only when its primary address does not match too (it is listed there).
    /// With the address the page's last user was found at.
    fn page_by_prefix<'u>(
        &'u self,
        source: &'u BTreeMap<String, User>,
        prefix: &str,
        after: &Option<(String, String)>,
        params: &ListParams,
        visible: &dyn Fn(&&User) -> bool,
    ) -> (Vec<&'u User>, Option<String>) {
        let mut page = Vec::with_capacity(params.max_results + 1);
        let mut last_address = None;
        let from = after.as_ref().map(|(address, _)| address.as_str());
        let mut primaries = matching(&self.primaries, prefix, from).peekable();
        let mut aliases = matching(&self.aliases, prefix, from).peekable();
        while page.len() <= params.max_results {
            let by_primary = match (primaries.peek(), aliases.peek()) {
                (None, None) => break,
                (Some(p), Some(a)) => p.0 < a.0,
                (p, _) => p.is_some(),
            };
            let next = if by_primary {
                &mut primaries
            } else {
                &mut aliases
            };
            let Some((address, id)) = next.next() else {
                break;
            };
            let Some(user) = source.get(id) else { continue };
            if !by_primary && user.primary().starts_with(prefix) {
                continue;
            }
            if visible(&user) {
                page.push(user);
                if page.len() <= params.max_results {
                    last_address = Some(address.clone());
                }
            }
        }
        (page, last_address)
    }

    /// A page in id order, ascending: the index walked from the token on.
    fn page_by_id<'u>(
        source: &'u BTreeMap<String, User>,
        after: &Option<(String, String)>,
        params: &ListParams,
        visible: &dyn Fn(&&User) -> bool,
    ) -> Vec<&'u User> {
        let start = after.as_ref().map_or(String::new(), |(_, id)| id.clone());
        source
            .range(start..)
            .map(|(_, u)| u)
            .filter(|u| after.as_ref().is_none_or(|(_, id)| u.id() > id.as_str()))
            .filter(visible)
            .take(params.max_results + 1)
            .collect()
    }

    /// A page in another order: every visible user sorted, then the ones past the token.
    fn page_sorted<'u>(
        source: &'u BTreeMap<String, User>,
        after: &Option<(String, String)>,
        params: &ListParams,
        visible: &dyn Fn(&&User) -> bool,
    ) -> Vec<&'u User> {
        let mut all: Vec<(String, &User)> = source
            .values()
            .filter(visible)
            .map(|u| (sort_key(u, params.order), u))
            .collect();
        all.sort_by(|a, b| (&a.0, a.1.id()).cmp(&(&b.0, b.1.id())));
        if params.descending {
            all.reverse();
        }
        let past = |(key, u): &(String, &User)| match after {
            None => true,
            Some(pos) if params.descending => {
                (key.as_str(), u.id()) < (pos.0.as_str(), pos.1.as_str())
            }
            Some(pos) => (key.as_str(), u.id()) > (pos.0.as_str(), pos.1.as_str()),
        };
        all.iter()
            .filter(|e| past(e))
            .map(|(_, u)| *u)
            .take(params.max_results + 1)
            .collect()
    }

    fn new_user(&self, mut resource: Map<String, Value>, now: &Now) -> User {
        let id = loop {
            // 21 decimal digits, as Google's user ids are.
            let id = random_digits(21);
            if !self.by_id.contains_key(&id) && !self.deleted.contains_key(&id) {
                break id;
            }
        };
        for (field, value) in [
            ("kind", json!("admin#directory#user")),
            ("id", json!(id)),
            ("etag", json!(new_etag())),
            ("customerId", json!(CUSTOMER_ID)),
            ("creationTime", json!(now.rfc3339)),
            ("lastLoginTime", json!("1970-01-01T00:00:00.000Z")),
            ("isAdmin", json!(false)),
            ("isDelegatedAdmin", json!(false)),
            ("agreedToTerms", json!(false)),
            ("isMailboxSetup", json!(true)),
            ("isEnrolledIn2Sv", json!(false)),
            ("isEnforcedIn2Sv", json!(false)),
        ] {
            resource.insert(field.into(), value);
        }
        for (field, default) in [
            ("suspended", json!(false)),
            ("archived", json!(false)),
            ("changePasswordAtNextLogin", json!(false)),
            ("includeInGlobalAddressList", json!(true)),
            ("orgUnitPath", json!("/")),
        ] {
            resource.entry(field).or_insert(default);
        }
        set_full_name(&mut resource);
        User::new(resource, now.instant)
    }

    fn store(&mut self, user: User) {
        let id = user.id().to_owned();
        self.primaries.insert(user.primary().to_owned(), id.clone());
        for alias in user.aliases() {
            self.aliases.insert(alias, id.clone());
        }
        self.by_id.insert(id, user);
    }

    fn unstore(&mut self, id: &str) -> User {
        let user = self.by_id.remove(id).expect("id from the index");
        self.primaries.remove(user.primary());
        for alias in user.aliases() {
            self.aliases.remove(&alias);
        }
        user
    }
}

/// `suspensionReason` is `ADMIN` while suspended through the API, absent otherwise.
fn apply_suspension(resource: &mut Map<String, Value>, was_suspended: Option<bool>) {
    let suspended = resource
        .get("suspended")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    resource.insert("suspended".into(), json!(suspended));
    if !suspended {
        resource.remove("suspensionReason");
    } else if was_suspended != Some(true) || !resource.contains_key("suspensionReason") {
        resource.insert("suspensionReason".into(), json!("ADMIN"));
    }
}

fn set_full_name(resource: &mut Map<String, Value>) {
    if let Some(Value::Object(name)) = resource.get_mut("name") {
        let part = |p: &str| {
            name.get(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let full = format!("{} {}", part("givenName"), part("familyName"));
        name.insert("fullName".into(), json!(full.trim()));
    }
}

/// The entries of an address index that start with `prefix`, after the address `from`.
fn matching<'a>(
    index: &'a BTreeMap<String, String>,
    prefix: &'a str,
    from: Option<&str>,
) -> impl Iterator<Item = (&'a String, &'a String)> + use<'a> {
    let start = match from {
        Some(from) if from >= prefix => Bound::Excluded(from),
        _ => Bound::Included(prefix),
    };
    index
        .range::<str, _>((start, Bound::Unbounded))
        .take_while(move |(address, _)| address.starts_with(prefix))
}

fn sort_key(user: &User, order: Order) -> String {
    let at = |p: &str| {
        user.resource()
            .get("name")
            .and_then(|n| n.get(p))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_lowercase()
    };
    match order {
        Order::Id => String::new(),
        Order::Email => user.primary().to_owned(),
        Order::GivenName => at("givenName"),
        Order::FamilyName => at("familyName"),
    }
}

/// Where a listing stands: after the user with this sort key and id, in a listing that
/// started at `started` (for the listing limit).
struct PageToken {
    key: String,
    id: String,
    started: Instant,
}

/// The instant page tokens count their listing's start from.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn encode_token(token: &PageToken) -> String {
    let started = token.started.saturating_duration_since(epoch()).as_millis() as u64;
    URL_SAFE_NO_PAD.encode(json!([token.key, token.id, started]).to_string())
}

fn decode_token(token: &str) -> Result<PageToken, ApiError> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|raw| serde_json::from_slice::<(String, String, u64)>(&raw).ok())
        .map(|(key, id, started)| PageToken {
            key,
            id,
            started: epoch() + Duration::from_millis(started),
        })
        .ok_or_else(|| ApiError::invalid("Invalid Input"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(10);

    struct Fixture {
        users: Users,
        domains: BTreeSet<String>,
        units: OrgUnits,
        now: Now,
    }

    impl Fixture {
        fn new() -> Fixture {
            let now = Now {
                instant: Instant::now(),
                rfc3339: "2026-11-28T10:00:00.000Z".into(),
            };
            let mut users = Users::default();
            users.add_admin("admin@belajar.id", &now);
            Fixture {
                users,
                domains: ["belajar.id", "sd.belajar.id", "admin.sd.belajar.id"]
                    .map(String::from)
                    .into(),
                units: {
                    let mut units = OrgUnits::default();
                    units
                        .insert(&json!({"name": "student", "parentOrgUnitPath": "/"}))
                        .unwrap();
                    units
                },
                now,
            }
        }

        fn insert(&mut self, body: Value) -> Result<Value, ApiError> {
            let rules = Rules {
                domains: &self.domains,
                org_units: &self.units,
                propagation: WINDOW,
            };
            self.users.insert(&body, &rules, &self.now)
        }

        fn update(
            &mut self,
            key: &str,
            body: Value,
            propagation: Duration,
        ) -> Result<Value, ApiError> {
            let rules = Rules {
                domains: &self.domains,
                org_units: &self.units,
                propagation,
            };
            self.users.update(key, &body, &rules, &self.now)
        }

        fn later(&mut self, by: Duration) {
            self.now.instant += by;
        }
    }

    fn siti() -> Value {
        json!({"primaryEmail": "Siti@sd.belajar.id", "password": "rahasia-123",
               "name": {"givenName": "Siti", "familyName": "Aminah"}, "isAdmin": true, "id": "1",
               "externalIds": [{"type": "organization", "value": "sd:nisn:0012345678"}]})
    }

    #[test]
    fn insert_assigns_server_fields_ignores_read_only_ones_and_hides_the_password() {
        let mut f = Fixture::new();
        let user = f.insert(siti()).unwrap();
        let id = user["id"].as_str().unwrap();
        assert_eq!(id.len(), 21);
        assert!(id.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(user["primaryEmail"], "siti@sd.belajar.id");
        assert_eq!(user["isAdmin"], false, "read-only field ignored");
        assert_eq!(user["name"]["fullName"], "Siti Aminah");
        assert_eq!(user["lastLoginTime"], "1970-01-01T00:00:00.000Z");
        assert!(user.get("password").is_none());
        assert_eq!(
            f.users
                .get("SITI@sd.belajar.id", f.now.instant, WINDOW)
                .unwrap(),
            user
        );
        assert_eq!(
            f.users.get(id, f.now.instant, WINDOW).unwrap_err(),
            ApiError::user_not_found(),
            "settling"
        );
        f.later(WINDOW);
        assert_eq!(f.users.get(id, f.now.instant, WINDOW).unwrap(), user);
    }

    #[test]
    fn a_person_signs_in_with_the_last_password_set_and_is_then_seen_signed_in() {
        let mut f = Fixture::new();
        let user = f.insert(siti()).unwrap();
        let id = user["id"].as_str().unwrap().to_owned();
        let email = "siti@sd.belajar.id";
        let wrong = SignInRefused::WrongAddressOrPassword;
        assert_eq!(f.users.sign_in(email, "x", None, &f.now), Err(wrong));
        assert_eq!(
            f.users.sign_in(&id, "rahasia-123", None, &f.now),
            Err(wrong),
            "by address only"
        );
        f.later(WINDOW);
        f.update(
            email,
            json!({"password": "pertama-456", "changePasswordAtNextLogin": true}),
            WINDOW,
        )
        .unwrap();
        assert_eq!(
            f.users.sign_in(email, "rahasia-123", None, &f.now),
            Err(wrong)
        );
        f.now.rfc3339 = "2026-11-29T07:00:00.000Z".into();
        assert_eq!(
            f.users.sign_in(email, "pertama-456", None, &f.now),
            Ok(true)
        );
        let seen = f.users.get(email, f.now.instant, WINDOW).unwrap();
        assert_eq!(seen["lastLoginTime"], "2026-11-29T07:00:00.000Z");
        // The person chooses their own: the first password is gone.
        assert_eq!(
            f.users
                .sign_in(email, "pertama-456", Some("milik-siti-789"), &f.now),
            Ok(false)
        );
        assert_eq!(
            f.users.sign_in(email, "pertama-456", None, &f.now),
            Err(wrong)
        );
        assert_eq!(
            f.users.sign_in(email, "milik-siti-789", None, &f.now),
            Ok(false)
        );
        f.update(email, json!({"suspended": true}), WINDOW).unwrap();
        assert_eq!(
            f.users.sign_in(email, "milik-siti-789", None, &f.now),
            Err(SignInRefused::Suspended)
        );
    }

    #[test]
    fn insert_refuses_what_google_refuses() {
        let mut f = Fixture::new();
        f.insert(siti()).unwrap();
        let mut with = |patch: Value| {
            let mut body = siti();
            for (k, v) in patch.as_object().unwrap() {
                body[k] = v.clone();
            }
            f.insert(body).unwrap_err()
        };
        assert_eq!(with(json!({})), ApiError::duplicate());
        assert_eq!(
            with(json!({"primaryEmail": "a@gmail.com"})),
            ApiError::forbidden()
        );
        assert_eq!(
            with(json!({"primaryEmail": "b@sd.belajar.id", "orgUnitPath": "/nope"})).message,
            "Invalid Input: INVALID_OU_ID"
        );
        assert_eq!(
            with(json!({"primaryEmail": "c@sd.belajar.id", "name": {"givenName": "C"}})).message,
            "Invalid Given/Family Name: FamilyName"
        );
        let long = "x".repeat(61);
        assert_eq!(with(json!({"primaryEmail": "d@sd.belajar.id", "name": {"givenName": long, "familyName": "D"}})).message, "Invalid Given/Family Name: GivenName");
        assert_eq!(
            with(json!({"primaryEmail": "e@sd.belajar.id", "password": ""})).reason,
            "required"
        );
    }

    #[test]
    fn update_has_patch_semantics_and_a_new_etag() {
        let mut f = Fixture::new();
        let before = f.insert(siti()).unwrap();
        f.later(WINDOW);
        let after = f
            .update("siti@sd.belajar.id", json!({"name": {"givenName": "Sitti"}, "orgUnitPath": "/student",
                                                  "externalIds": [{"type": "custom", "customType": "x", "value": "1"}]}), WINDOW)
            .unwrap();
        assert_eq!(after["name"]["familyName"], "Aminah", "kept");
        assert_eq!(after["name"]["fullName"], "Sitti Aminah");
        assert_eq!(after["orgUnitPath"], "/student");
        assert_eq!(
            after["externalIds"].as_array().unwrap().len(),
            1,
            "arrays are replaced whole"
        );
        assert_ne!(after["etag"], before["etag"]);
        let cleared = f
            .update("siti@sd.belajar.id", json!({"externalIds": null}), WINDOW)
            .unwrap();
        assert!(cleared.get("externalIds").is_none());
    }

    #[test]
    fn suspension_through_the_api_has_reason_admin() {
        let mut f = Fixture::new();
        f.insert(siti()).unwrap();
        f.later(WINDOW);
        let s = f
            .update("siti@sd.belajar.id", json!({"suspended": true}), WINDOW)
            .unwrap();
        assert_eq!(
            (s["suspended"].clone(), s["suspensionReason"].clone()),
            (json!(true), json!("ADMIN"))
        );
        let u = f
            .update("siti@sd.belajar.id", json!({"suspended": false}), WINDOW)
            .unwrap();
        assert!(u.get("suspensionReason").is_none());
    }

    #[test]
    fn rename_keeps_the_old_address_as_an_alias_and_settles() {
        let mut f = Fixture::new();
        let user = f.insert(siti()).unwrap();
        f.insert(
            json!({"primaryEmail": "taken@admin.sd.belajar.id", "password": "x",
                        "name": {"givenName": "T", "familyName": "T"}}),
        )
        .unwrap();
        f.later(WINDOW);
        assert_eq!(
            f.update(
                "siti@sd.belajar.id",
                json!({"primaryEmail": "taken@admin.sd.belajar.id"}),
                WINDOW
            )
            .unwrap_err(),
            ApiError::duplicate()
        );
        assert_eq!(
            f.update(
                "siti@sd.belajar.id",
                json!({"primaryEmail": "siti@gmail.com"}),
                WINDOW
            )
            .unwrap_err(),
            ApiError::forbidden()
        );
        let renamed = f
            .update(
                "siti@sd.belajar.id",
                json!({"primaryEmail": "siti@admin.sd.belajar.id"}),
                WINDOW,
            )
            .unwrap();
        assert_eq!(renamed["aliases"], json!(["siti@sd.belajar.id"]));
        assert_eq!(
            f.users
                .get("siti@sd.belajar.id", f.now.instant, WINDOW)
                .unwrap()["id"],
            user["id"],
            "get by alias"
        );
        assert_eq!(
            f.update(
                "siti@admin.sd.belajar.id",
                json!({"suspended": true}),
                WINDOW
            )
            .unwrap_err(),
            ApiError::duplicate(),
            "settling after rename"
        );
        f.later(WINDOW);
        assert!(
            f.update(
                "siti@admin.sd.belajar.id",
                json!({"suspended": true}),
                WINDOW
            )
            .is_ok()
        );
    }

    #[test]
    fn writes_to_a_user_created_moments_ago_are_not_complete() {
        let mut f = Fixture::new();
        f.insert(siti()).unwrap();
        let err = f
            .update("siti@sd.belajar.id", json!({"suspended": true}), WINDOW)
            .unwrap_err();
        assert!(
            err.message.contains("User creation is not complete"),
            "{err:?}"
        );
        assert!(
            f.update(
                "siti@sd.belajar.id",
                json!({"suspended": true}),
                Duration::ZERO
            )
            .is_ok()
        );
    }

    #[test]
    fn delete_then_undelete_by_id() {
        let mut f = Fixture::new();
        let user = f.insert(siti()).unwrap();
        let id = user["id"].as_str().unwrap().to_owned();
        f.users.delete("siti@sd.belajar.id", &f.now).unwrap();
        assert_eq!(
            f.users
                .get("siti@sd.belajar.id", f.now.instant, WINDOW)
                .unwrap_err(),
            ApiError::user_not_found()
        );
        let rules = Rules {
            domains: &f.domains,
            org_units: &f.units,
            propagation: WINDOW,
        };
        assert_eq!(
            f.users
                .undelete("siti@sd.belajar.id", None, &rules)
                .unwrap_err(),
            ApiError::user_not_found(),
            "by id only"
        );
        f.users.undelete(&id, Some("/student"), &rules).unwrap();
        let back = f
            .users
            .get("siti@sd.belajar.id", f.now.instant, WINDOW)
            .unwrap();
        assert_eq!(
            (back["id"].clone(), back["orgUnitPath"].clone()),
            (json!(id), json!("/student"))
        );
    }

    fn params(max: usize) -> ListParams {
        ListParams {
            domain: Some("sd.belajar.id".into()),
            max_results: max,
            page_token: None,
            order: Order::Id,
            descending: false,
            show_deleted: false,
            query: Vec::new(),
            listing_limit: None,
            query_lag: Duration::ZERO,
        }
    }

    #[test]
    fn a_listing_paging_past_its_limit_is_refused_and_queries_lag() {
        let mut f = Fixture::new();
        f.insert(siti()).unwrap();
        f.insert(
            json!({"primaryEmail": "budi@sd.belajar.id", "password": "x",
            "name": {"givenName": "Budi", "familyName": "Santoso"}}),
        )
        .unwrap();
        let limited = ListParams {
            listing_limit: Some(Duration::from_secs(60)),
            ..params(1)
        };
        let first = f
            .users
            .list(&limited, f.now.instant, Duration::ZERO)
            .unwrap();
        let next = ListParams {
            page_token: first["nextPageToken"].as_str().map(str::to_owned),
            ..limited.clone()
        };
        let soon = f.now.instant + Duration::from_secs(59);
        assert!(f.users.list(&next, soon, Duration::ZERO).is_ok());
        let late = f.now.instant + Duration::from_secs(61);
        let refused = f.users.list(&next, late, Duration::ZERO).unwrap_err();
        assert_eq!(refused.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        // A new listing starts its own clock.
        assert!(f.users.list(&limited, late, Duration::ZERO).is_ok());

        let lagging = ListParams {
            query: super::super::query::parse("email:b*").unwrap(),
            query_lag: Duration::from_secs(3600),
            ..params(100)
        };
        let unlisted = f.users.list(&lagging, soon, Duration::ZERO).unwrap();
        assert!(emails(&unlisted).is_empty(), "not in the index yet");
        let whole = f.users.list(&params(100), soon, Duration::ZERO).unwrap();
        assert_eq!(emails(&whole).len(), 2, "a listing without query sees it");
        let later = f.now.instant + Duration::from_secs(3601);
        assert_eq!(
            emails(&f.users.list(&lagging, later, Duration::ZERO).unwrap()),
            ["budi@sd.belajar.id"]
        );
    }

    fn emails(page: &Value) -> Vec<String> {
        page["users"]
            .as_array()
            .map(|u| {
                u.iter()
                    .map(|u| u["primaryEmail"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn list_pages_are_stable_while_users_come_and_go() {
        let mut f = Fixture::new();
        for i in 0..25 {
            f.insert(
                json!({"primaryEmail": format!("u{i:02}@sd.belajar.id"), "password": "x",
                            "name": {"givenName": "U", "familyName": format!("{i}")}}),
            )
            .unwrap();
        }
        assert_eq!(
            f.users
                .list(&params(10), f.now.instant, WINDOW)
                .unwrap()
                .get("users"),
            None,
            "not visible yet"
        );
        f.later(WINDOW);
        for order in [Order::Id, Order::Email, Order::FamilyName] {
            let mut seen = Vec::new();
            let mut p = ListParams {
                order,
                ..params(10)
            };
            loop {
                let page = f.users.list(&p, f.now.instant, Duration::ZERO).unwrap();
                seen.extend(emails(&page));
                // A user added between pages is listed at most once, nothing repeats.
                if seen.len() == 10 && order == Order::Id {
                    f.insert(
                        json!({"primaryEmail": "late@sd.belajar.id", "password": "x",
                                    "name": {"givenName": "L", "familyName": "L"}}),
                    )
                    .unwrap();
                }
                match page["nextPageToken"].as_str() {
                    Some(t) => p.page_token = Some(t.to_owned()),
                    None => break,
                }
            }
            let unique: BTreeSet<&String> = seen.iter().collect();
            assert_eq!(unique.len(), seen.len(), "{order:?}: no repeats");
            assert!(seen.len() >= 25, "{order:?}: {}", seen.len());
            if order == Order::Email {
                assert!(seen.windows(2).all(|w| w[0] < w[1]));
            }
        }
    }

    /// `email:PREFIX*` is served from the address indexes: page by page, the same users
    /// (aliases included) as reading every user would give, each once, in address order.
    #[test]
    fn an_email_prefix_listing_pages_through_exactly_the_matching_users() {
        let mut f = Fixture::new();
        for name in ["ani", "anto", "budi", "andi", "citra", "ana", "anwar"] {
            f.insert(
                json!({"primaryEmail": format!("{name}@sd.belajar.id"), "password": "x",
                            "name": {"givenName": name, "familyName": "X"}}),
            )
            .unwrap();
        }
        // Renamed: its old address stays as an alias, which the query matches.
        f.insert(
            json!({"primaryEmail": "anonim@sd.belajar.id", "password": "x",
                        "name": {"givenName": "Zed", "familyName": "X"}}),
        )
        .unwrap();
        f.later(WINDOW);
        f.update(
            "anonim@sd.belajar.id",
            json!({"primaryEmail": "zed@sd.belajar.id"}),
            Duration::ZERO,
        )
        .unwrap();
        let mut p = ListParams {
            query: super::super::query::parse("email:an*").unwrap(),
            ..params(2)
        };
        let mut seen = Vec::new();
        loop {
            let page = f.users.list(&p, f.now.instant, WINDOW).unwrap();
            seen.extend(emails(&page));
            match page["nextPageToken"].as_str() {
                Some(token) => p.page_token = Some(token.to_owned()),
                None => break,
            }
        }
        assert_eq!(
            seen,
            // Zed by its old address, kept as an alias.
            ["ana", "andi", "ani", "zed", "anto", "anwar"].map(|n| format!("{n}@sd.belajar.id"))
        );
    }

    #[test]
    fn list_filters_by_query_and_shows_deleted_on_request() {
        let mut f = Fixture::new();
        f.insert(siti()).unwrap();
        f.insert(
            json!({"primaryEmail": "budi@sd.belajar.id", "password": "x", "suspended": true,
                        "name": {"givenName": "Budi", "familyName": "Santoso"}}),
        )
        .unwrap();
        f.later(WINDOW);
        let q = |text: &str| ListParams {
            query: super::super::query::parse(text).unwrap(),
            ..params(100)
        };
        assert_eq!(
            emails(
                &f.users
                    .list(&q("isSuspended=true"), f.now.instant, WINDOW)
                    .unwrap()
            ),
            ["budi@sd.belajar.id"]
        );
        assert_eq!(
            emails(
                &f.users
                    .list(&q("externalId=sd:nisn:0012345678"), f.now.instant, WINDOW)
                    .unwrap()
            ),
            ["siti@sd.belajar.id"]
        );
        f.users.delete("budi@sd.belajar.id", &f.now).unwrap();
        let deleted = ListParams {
            show_deleted: true,
            ..params(100)
        };
        let page = f.users.list(&deleted, f.now.instant, WINDOW).unwrap();
        assert_eq!(emails(&page), ["budi@sd.belajar.id"]);
        assert!(page["users"][0]["deletionTime"].is_string());
        assert!(f.users.list(&params(100), f.now.instant, WINDOW).is_ok());
        let bad = ListParams {
            page_token: Some("garbage!".into()),
            ..params(100)
        };
        assert_eq!(
            f.users
                .list(&bad, f.now.instant, WINDOW)
                .unwrap_err()
                .reason,
            "invalid"
        );
    }
}
