//! The emulated directory of users: the `User` resource as the discovery document defines
//! it, with Google's rules on insert and lookup. Pure data: the HTTP layer is in `http`.

use super::errors::ApiError;
use rsa::rand_core::{OsRng, RngCore};
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};

/// Fields the discovery document marks read-only: ignored when written.
const READ_ONLY: &[&str] = &[
    "agreedToTerms",
    "aliases",
    "creationTime",
    "customerId",
    "deletionTime",
    "etag",
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
    "id",
];

/// Google's limit on `givenName` and `familyName`.
const NAME_MAX: usize = 60;

/// The customer id the emulated Workspace account has.
pub const CUSTOMER_ID: &str = "C03belajar";

/// One user as stored: the resource as it is returned, and its password apart (never
/// returned).
#[derive(Debug, Clone)]
struct User {
    resource: Map<String, Value>,
}

/// Every user of the emulated customer, with the index of addresses (primary and aliases).
#[derive(Debug, Default)]
pub struct Users {
    by_id: HashMap<String, User>,
    by_email: HashMap<String, String>,
}

fn new_id() -> String {
    // 21 decimal digits, as Google's user ids are.
    let mut bytes = [0u8; 21];
    OsRng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .enumerate()
        .map(|(i, b)| char::from(b'0' + if i == 0 { 1 } else { b % 10 }))
        .collect()
}

fn new_etag() -> String {
    format!(
        "\"{}/{}\"",
        super::auth::random_token(20),
        super::auth::random_token(20)
    )
}

fn name_part<'a>(name: Option<&'a Value>, part: &str) -> Option<&'a str> {
    name?
        .get(part)?
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

impl Users {
    /// Adds an administrator (the delegated admin the daemon acts as).
    pub fn add_admin(&mut self, email: &str, now: &str) {
        let mut resource = Map::new();
        resource.insert("primaryEmail".into(), json!(email));
        resource.insert(
            "name".into(),
            json!({"givenName": "Admin", "familyName": "Belajar"}),
        );
        let id = self.store_new(resource, now);
        self.by_id
            .get_mut(&id)
            .expect("just stored")
            .resource
            .insert("isAdmin".into(), json!(true));
    }

    /// Whether `email` names an administrator.
    pub fn is_admin(&self, email: &str) -> bool {
        self.find(email)
            .is_some_and(|u| u.resource.get("isAdmin") == Some(&json!(true)))
    }

    /// Whether `email` names a user of the customer.
    pub fn exists(&self, email: &str) -> bool {
        self.find(email).is_some()
    }

    fn find(&self, key: &str) -> Option<&User> {
        let key = key.trim().to_ascii_lowercase();
        let id = self.by_email.get(&key).unwrap_or(&key);
        self.by_id.get(id)
    }

    /// `users.get`: by primary address, alias, or id.
    pub fn get(&self, key: &str) -> Result<Value, ApiError> {
        self.find(key)
            .map(|u| Value::Object(u.resource.clone()))
            .ok_or_else(ApiError::user_not_found)
    }

    /// `users.insert` with Google's checks: required fields, name rules, an address in a
    /// domain the customer owns and not taken by another user's address or alias.
    pub fn insert(
        &mut self,
        body: &Value,
        domains: &BTreeSet<String>,
        org_units: &BTreeSet<String>,
        now: &str,
    ) -> Result<Value, ApiError> {
        let Some(body) = body.as_object() else {
            return Err(ApiError::invalid("Invalid Input"));
        };
        let email = body
            .get("primaryEmail")
            .and_then(Value::as_str)
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .ok_or_else(|| ApiError::required("primaryEmail"))?;
        let name = body.get("name");
        for (part, label) in [("givenName", "GivenName"), ("familyName", "FamilyName")] {
            match name_part(name, part) {
                None => {
                    return Err(ApiError::invalid(format!(
                        "Invalid Given/Family Name: {label}"
                    )));
                }
                Some(text) if text.chars().count() > NAME_MAX => {
                    return Err(ApiError::invalid(format!(
                        "Invalid Given/Family Name: {label}"
                    )));
                }
                Some(_) => {}
            }
        }
        if body
            .get("password")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(ApiError::required("password"));
        }
        let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        if !domains.contains(domain) {
            return Err(ApiError::forbidden());
        }
        if self.by_email.contains_key(&email) {
            return Err(ApiError::duplicate());
        }
        let org_unit = body
            .get("orgUnitPath")
            .and_then(Value::as_str)
            .unwrap_or("/");
        if !org_units.contains(org_unit) {
            return Err(ApiError::invalid("Invalid Input: INVALID_OU_ID"));
        }
        let mut resource: Map<String, Value> = body
            .iter()
            .filter(|(k, _)| {
                !READ_ONLY.contains(&k.as_str()) && *k != "password" && *k != "hashFunction"
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        resource.insert("primaryEmail".into(), json!(email));
        resource.insert("orgUnitPath".into(), json!(org_unit));
        let id = self.store_new(resource, now);
        self.get(&id)
    }

    /// Stores a new user with the server-assigned fields.
    fn store_new(&mut self, mut resource: Map<String, Value>, now: &str) -> String {
        let id = loop {
            let id = new_id();
            if !self.by_id.contains_key(&id) {
                break id;
            }
        };
        let email = resource["primaryEmail"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if let Some(Value::Object(name)) = resource.get_mut("name") {
            let full = format!(
                "{} {}",
                name.get("givenName")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                name.get("familyName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            );
            name.insert("fullName".into(), json!(full));
        }
        for (field, value) in [
            ("kind", json!("admin#directory#user")),
            ("id", json!(id)),
            ("etag", json!(new_etag())),
            ("customerId", json!(CUSTOMER_ID)),
            ("creationTime", json!(now)),
            ("lastLoginTime", json!("1970-01-01T00:00:00.000Z")),
            ("isAdmin", json!(false)),
            ("isDelegatedAdmin", json!(false)),
            ("agreedToTerms", json!(false)),
            ("isMailboxSetup", json!(true)),
            ("isEnrolledIn2Sv", json!(false)),
            ("isEnforcedIn2Sv", json!(false)),
            ("includeInGlobalAddressList", json!(true)),
        ] {
            resource.insert(field.into(), value);
        }
        for (field, default) in [
            ("suspended", json!(false)),
            ("archived", json!(false)),
            ("changePasswordAtNextLogin", json!(false)),
            ("orgUnitPath", json!("/")),
        ] {
            resource.entry(field).or_insert(default);
        }
        self.by_email.insert(email, id.clone());
        self.by_id.insert(id.clone(), User { resource });
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-11-28T10:00:00.000Z";

    fn setup() -> (Users, BTreeSet<String>, BTreeSet<String>) {
        let mut users = Users::default();
        users.add_admin("admin@belajar.id", NOW);
        let domains = ["belajar.id", "sd.belajar.id"].map(String::from).into();
        let units = ["/".to_owned()].into();
        (users, domains, units)
    }

    fn siti() -> Value {
        json!({"primaryEmail": "Siti@sd.belajar.id", "password": "rahasia-123",
               "name": {"givenName": "Siti", "familyName": "Aminah"},
               "isAdmin": true, "id": "1", "externalIds": [{"type": "organization", "value": "sd:nisn:0012345678"}]})
    }

    #[test]
    fn insert_assigns_server_fields_ignores_read_only_ones_and_hides_the_password() {
        let (mut users, domains, units) = setup();
        let user = users.insert(&siti(), &domains, &units, NOW).unwrap();
        let id = user["id"].as_str().unwrap();
        assert_eq!(id.len(), 21);
        assert!(id.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(user["primaryEmail"], "siti@sd.belajar.id");
        assert_eq!(user["isAdmin"], false, "read-only field ignored");
        assert_eq!(user["name"]["fullName"], "Siti Aminah");
        assert_eq!(user["lastLoginTime"], "1970-01-01T00:00:00.000Z");
        assert_eq!(user["orgUnitPath"], "/");
        assert_eq!(user["externalIds"][0]["value"], "sd:nisn:0012345678");
        assert!(user.get("password").is_none());
        assert_eq!(users.get(id).unwrap(), user);
        assert_eq!(users.get("SITI@sd.belajar.id").unwrap(), user);
    }

    #[test]
    fn insert_refuses_what_google_refuses() {
        let (mut users, domains, units) = setup();
        users.insert(&siti(), &domains, &units, NOW).unwrap();
        let refuse = |users: &mut Users, patch: Value| {
            let mut body = siti();
            for (k, v) in patch.as_object().unwrap() {
                body[k] = v.clone();
            }
            users.insert(&body, &domains, &units, NOW).unwrap_err()
        };
        assert_eq!(refuse(&mut users, json!({})), ApiError::duplicate());
        let other = |e: &str| json!({"primaryEmail": e});
        assert_eq!(
            refuse(&mut users, other("a@gmail.com")),
            ApiError::forbidden()
        );
        assert_eq!(
            refuse(
                &mut users,
                json!({"primaryEmail": "b@sd.belajar.id", "orgUnitPath": "/nope"})
            )
            .message,
            "Invalid Input: INVALID_OU_ID"
        );
        assert_eq!(
            refuse(
                &mut users,
                json!({"primaryEmail": "c@sd.belajar.id", "name": {"givenName": "C"}})
            )
            .message,
            "Invalid Given/Family Name: FamilyName"
        );
        let long = "x".repeat(61);
        assert_eq!(
            refuse(&mut users, json!({"primaryEmail": "d@sd.belajar.id", "name": {"givenName": long, "familyName": "D"}})).message,
            "Invalid Given/Family Name: GivenName"
        );
        assert_eq!(
            refuse(
                &mut users,
                json!({"primaryEmail": "e@sd.belajar.id", "password": ""})
            )
            .reason,
            "required"
        );
        assert_eq!(
            users.get("nobody@sd.belajar.id").unwrap_err(),
            ApiError::user_not_found()
        );
    }

    #[test]
    fn admins_are_known() {
        let (mut users, domains, units) = setup();
        users.insert(&siti(), &domains, &units, NOW).unwrap();
        assert!(users.is_admin("admin@belajar.id"));
        assert!(!users.is_admin("siti@sd.belajar.id"));
        assert!(users.exists("siti@sd.belajar.id"));
        assert!(!users.exists("x@sd.belajar.id"));
    }
}
