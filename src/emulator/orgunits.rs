//! The emulated organisational units: the root `/` and nested paths, as `orgunits.get`,
//! `orgunits.list` and `orgunits.insert` see them.

use super::auth::new_etag;
use super::errors::ApiError;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Google limits the hierarchy to 35 levels.
const MAX_DEPTH: usize = 35;

/// Every org unit by path.
#[derive(Debug)]
pub struct OrgUnits {
    by_path: BTreeMap<String, Value>,
}

impl Default for OrgUnits {
    fn default() -> Self {
        let mut by_path = BTreeMap::new();
        by_path.insert(
            "/".to_owned(),
            json!({"kind": "admin#directory#orgUnit", "name": "belajar.id", "orgUnitPath": "/",
                   "orgUnitId": unit_id(), "etag": new_etag(), "description": ""}),
        );
        OrgUnits { by_path }
    }
}

fn unit_id() -> String {
    format!("id:{}", super::auth::random_token(9).to_ascii_lowercase())
}

/// The path an API path parameter names: `{+orgUnitPath}` comes without its leading `/`;
/// `id:...` names a unit by id.
fn normalise(path: &str) -> String {
    let path = path.trim().trim_end_matches('/');
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

impl OrgUnits {
    /// Whether `path` (with its leading `/`) exists.
    pub fn contains(&self, path: &str) -> bool {
        self.by_path.contains_key(path)
    }

    fn find(&self, key: &str) -> Option<&Value> {
        if key.starts_with("id:") {
            return self.by_path.values().find(|u| u["orgUnitId"] == key);
        }
        let path = normalise(key);
        self.by_path.get(if path.is_empty() { "/" } else { &path })
    }

    /// `orgunits.get`.
    pub fn get(&self, key: &str) -> Result<Value, ApiError> {
        self.find(key)
            .cloned()
            .ok_or_else(ApiError::org_unit_not_found)
    }

    /// `orgunits.insert`: `name` and `parentOrgUnitPath` (or `parentOrgUnitId`) required,
    /// the parent must exist.
    pub fn insert(&mut self, body: &Value) -> Result<Value, ApiError> {
        let name = body["name"]
            .as_str()
            .map(str::trim)
            .filter(|n| !n.is_empty() && !n.contains('/'))
            .ok_or_else(|| ApiError::required("name"))?;
        let parent = match (
            body["parentOrgUnitPath"].as_str(),
            body["parentOrgUnitId"].as_str(),
        ) {
            (Some(path), _) => self.find(path),
            (None, Some(id)) => self.find(id),
            (None, None) => return Err(ApiError::required("parentOrgUnitPath")),
        }
        .ok_or_else(|| ApiError::invalid("Invalid Input: INVALID_OU_ID"))?
        .clone();
        let parent_path = parent["orgUnitPath"].as_str().unwrap_or("/");
        let path = if parent_path == "/" {
            format!("/{name}")
        } else {
            format!("{parent_path}/{name}")
        };
        if path.matches('/').count() > MAX_DEPTH {
            return Err(ApiError::invalid("Invalid Input: INVALID_OU_ID"));
        }
        if self.by_path.contains_key(&path) {
            return Err(ApiError::duplicate());
        }
        let unit = json!({"kind": "admin#directory#orgUnit", "name": name, "orgUnitPath": path,
                          "orgUnitId": unit_id(), "parentOrgUnitPath": parent_path,
                          "parentOrgUnitId": parent["orgUnitId"], "etag": new_etag(),
                          "description": body["description"].as_str().unwrap_or_default()});
        self.by_path.insert(path, unit.clone());
        Ok(unit)
    }

    /// `orgunits.list`: `kind` is `children` (default), `all` or `allIncludingParent`.
    pub fn list(&self, under: &str, kind: &str) -> Result<Value, ApiError> {
        let parent = self.find(under).ok_or_else(ApiError::org_unit_not_found)?;
        let base = parent["orgUnitPath"].as_str().unwrap_or("/").to_owned();
        let prefix = if base == "/" {
            "/".to_owned()
        } else {
            format!("{base}/")
        };
        let below = self
            .by_path
            .iter()
            .filter(|(p, _)| p.starts_with(&prefix) && **p != base);
        let units: Vec<Value> = match kind {
            "children" => below
                .filter(|(p, _)| !p[prefix.len()..].contains('/'))
                .map(|(_, u)| u.clone())
                .collect(),
            "all" => below.map(|(_, u)| u.clone()).collect(),
            "allIncludingParent" => std::iter::once(parent.clone())
                .chain(below.map(|(_, u)| u.clone()))
                .collect(),
            _ => return Err(ApiError::bad_request()),
        };
        Ok(
            json!({"kind": "admin#directory#orgUnits", "etag": new_etag(), "organizationUnits": units}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_units_are_created_under_existing_parents() {
        let mut units = OrgUnits::default();
        assert!(units.contains("/"));
        let student = units
            .insert(&json!({"name": "student", "parentOrgUnitPath": "/"}))
            .unwrap();
        assert_eq!(student["orgUnitPath"], "/student");
        let sd = units
            .insert(&json!({"name": "sd", "parentOrgUnitId": student["orgUnitId"]}))
            .unwrap();
        assert_eq!(sd["orgUnitPath"], "/student/sd");
        assert_eq!(
            units.get("student/sd").unwrap(),
            sd,
            "path without its leading slash"
        );
        assert_eq!(units.get(sd["orgUnitId"].as_str().unwrap()).unwrap(), sd);
        assert_eq!(
            units
                .insert(&json!({"name": "sd", "parentOrgUnitPath": "/student"}))
                .unwrap_err(),
            ApiError::duplicate()
        );
        assert_eq!(
            units
                .insert(&json!({"name": "x", "parentOrgUnitPath": "/nope"}))
                .unwrap_err()
                .message,
            "Invalid Input: INVALID_OU_ID"
        );
        assert_eq!(units.get("nope").unwrap_err().status.as_u16(), 404);
    }

    #[test]
    fn list_children_all_or_with_parent() {
        let mut units = OrgUnits::default();
        units
            .insert(&json!({"name": "student", "parentOrgUnitPath": "/"}))
            .unwrap();
        units
            .insert(&json!({"name": "sd", "parentOrgUnitPath": "/student"}))
            .unwrap();
        let paths = |v: Value| -> Vec<String> {
            v["organizationUnits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["orgUnitPath"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(paths(units.list("/", "children").unwrap()), ["/student"]);
        assert_eq!(
            paths(units.list("/", "all").unwrap()),
            ["/student", "/student/sd"]
        );
        assert_eq!(
            paths(units.list("student", "allIncludingParent").unwrap()),
            ["/student", "/student/sd"]
        );
    }
}
