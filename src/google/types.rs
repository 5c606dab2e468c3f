//! The Directory API resources the daemon reads and writes, typed after the discovery
//! document (camelCase, absent fields skipped so that a write sends only what it means).

use serde::{Deserialize, Serialize};

/// A Google user (`User` schema), with the fields the reconciler reads or writes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<UserName>,
    /// Write-only: sent, never read. Google documents that it never returns a password;
    /// should an answer carry one anyway, it is not read, so it can reach neither the
    /// store nor a log (fields this type does not name, `hashFunction` among them, are
    /// never read either).
    #[serde(skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_password_at_next_login: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspended: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspension_reason: Option<String>,
    /// Archived: no access, data kept, holds an Archived User licence instead of
    /// Education Fundamentals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archived: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_unit_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_ids: Option<Vec<ExternalId>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organizations: Option<Vec<Organization>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aliases: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_admin: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_time: Option<String>,
    /// Read-only: the last sign-in; `1970-01-01T00:00:00.000Z` for a user who never signed
    /// in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_login_time: Option<String>,
}

impl User {
    /// The fields set, as Google names them, in name order: what a body sends (the
    /// planner shows and records them). The test below keeps it equal to what serde
    /// writes.
    pub fn fields_set(&self) -> Vec<String> {
        let set = [
            ("aliases", self.aliases.is_some()),
            ("archived", self.archived.is_some()),
            (
                "changePasswordAtNextLogin",
                self.change_password_at_next_login.is_some(),
            ),
            ("creationTime", self.creation_time.is_some()),
            ("deletionTime", self.deletion_time.is_some()),
            ("etag", self.etag.is_some()),
            ("externalIds", self.external_ids.is_some()),
            ("id", self.id.is_some()),
            ("isAdmin", self.is_admin.is_some()),
            ("lastLoginTime", self.last_login_time.is_some()),
            ("name", self.name.is_some()),
            ("orgUnitPath", self.org_unit_path.is_some()),
            ("organizations", self.organizations.is_some()),
            ("password", self.password.is_some()),
            ("primaryEmail", self.primary_email.is_some()),
            ("suspended", self.suspended.is_some()),
            ("suspensionReason", self.suspension_reason.is_some()),
        ];
        set.into_iter()
            .filter(|(_, is_set)| *is_set)
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    /// When the user last signed in, if ever (Google answers the epoch for never).
    pub fn last_sign_in(&self) -> Option<jiff::Timestamp> {
        let at: jiff::Timestamp = self.last_login_time.as_deref()?.parse().ok()?;
        (at > jiff::Timestamp::UNIX_EPOCH).then_some(at)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserName {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
}

/// One entry of `externalIds`: `type` `organization` carries the project's marker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalId {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// One entry of `organizations`: the school's NPSN goes in `costCenter`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_center: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// An organisational unit (`OrgUnit` schema).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgUnit {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_unit_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_unit_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_org_unit_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The answer of `orgunits.list`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgUnits {
    #[serde(default)]
    pub organization_units: Vec<OrgUnit>,
}

/// One page of `users.list`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsersPage {
    #[serde(default)]
    pub users: Vec<User>,
    pub next_page_token: Option<String>,
}

/// A `LicenseAssignment` of licensing v1: who (`userId`, the current primary address)
/// holds which SKU of which product.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenceAssignment {
    pub product_id: String,
    pub sku_id: String,
    pub user_id: String,
}

/// One page of `listForProduct` / `listForProductAndSku`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicencePage {
    #[serde(default)]
    pub items: Vec<LicenceAssignment>,
    pub next_page_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_fields_set_are_the_fields_serde_writes() {
        let some = || Some(String::new());
        // Every field named (no `..`): a field added to `User` must be added here, and
        // then to `fields_set`.
        let full = User {
            id: some(),
            primary_email: some(),
            name: Some(UserName::default()),
            password: some(),
            change_password_at_next_login: Some(true),
            suspended: Some(false),
            suspension_reason: some(),
            archived: Some(false),
            org_unit_path: some(),
            external_ids: Some(vec![]),
            organizations: Some(vec![]),
            aliases: Some(vec![]),
            is_admin: Some(false),
            etag: some(),
            creation_time: some(),
            deletion_time: some(),
            last_login_time: some(),
        };
        let keys = |user: &User| -> Vec<String> {
            match serde_json::to_value(user).unwrap() {
                serde_json::Value::Object(map) => map.keys().cloned().collect(),
                _ => unreachable!(),
            }
        };
        assert_eq!(full.fields_set(), keys(&full));
        let body = User {
            primary_email: some(),
            org_unit_path: some(),
            ..User::default()
        };
        assert_eq!(body.fields_set(), keys(&body));
        assert_eq!(body.fields_set(), ["orgUnitPath", "primaryEmail"]);
    }

    #[test]
    fn the_epoch_means_never_signed_in() {
        let at = |text: &str| User {
            last_login_time: Some(text.into()),
            ..User::default()
        };
        assert_eq!(at("1970-01-01T00:00:00.000Z").last_sign_in(), None);
        assert_eq!(User::default().last_sign_in(), None);
        assert_eq!(at("garbage").last_sign_in(), None);
        assert_eq!(
            at("2026-07-14T01:02:03.000Z").last_sign_in(),
            Some("2026-07-14T01:02:03Z".parse().unwrap())
        );
    }

    #[test]
    fn secrets_in_an_answer_are_never_read() {
        let answer = json!({"id": "1", "primaryEmail": "siti@sd.belajar.id",
            "password": "rahasia-123", "hashFunction": "SHA-1", "secretToken": "x"});
        let user: User = serde_json::from_value(answer).unwrap();
        assert_eq!(user.password, None);
        let kept = serde_json::to_string(&user).unwrap();
        assert_eq!(kept, r#"{"id":"1","primaryEmail":"siti@sd.belajar.id"}"#);
    }

    #[test]
    fn writes_send_only_the_fields_set() {
        let patch = User {
            suspended: Some(true),
            ..User::default()
        };
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            json!({"suspended": true})
        );
        let marker = ExternalId {
            kind: Some("organization".into()),
            value: Some("sd:nisn:0012345678".into()),
            ..ExternalId::default()
        };
        assert_eq!(
            serde_json::to_value(&marker).unwrap(),
            json!({"type": "organization", "value": "sd:nisn:0012345678"})
        );
    }
}
