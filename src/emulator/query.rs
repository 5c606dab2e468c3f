//! The `query` of `users.list` ("Search for users"): clauses `field operator value`
//! separated by spaces (implicit AND); `=` exact, `:` contains, `:PREFIX*` prefix; values
//! may be quoted with single quotes; a clause without a field matches the given name,
//! family name or address. Comparisons ignore case.

use serde_json::{Map, Value};

/// One clause of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    pub field: Option<Field>,
    pub op: Op,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Email,
    ExternalId,
    IsSuspended,
    IsAdmin,
    OrgUnitPath,
    GivenName,
    FamilyName,
    Name,
    OrgCostCenter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Exact,
    Contains,
    Prefix,
}

/// Splits a query into clauses; `None` when it is not a query Google would accept.
pub fn parse(query: &str) -> Option<Vec<Clause>> {
    let mut clauses = Vec::new();
    let mut rest = query.trim();
    while !rest.is_empty() {
        let (clause, tail) = parse_clause(rest)?;
        clauses.push(clause);
        rest = tail.trim_start();
    }
    Some(clauses)
}

fn parse_clause(text: &str) -> Option<(Clause, &str)> {
    let op_at = text.find(['=', ':']);
    let space_at = text.find(char::is_whitespace).unwrap_or(text.len());
    let (field, op, value_start) = match op_at {
        Some(i) if i < space_at => {
            let field = match text[..i].trim() {
                "email" => Field::Email,
                "externalId" => Field::ExternalId,
                "isSuspended" => Field::IsSuspended,
                "isAdmin" => Field::IsAdmin,
                "orgUnitPath" => Field::OrgUnitPath,
                "givenName" => Field::GivenName,
                "familyName" => Field::FamilyName,
                "name" => Field::Name,
                "orgCostCenter" => Field::OrgCostCenter,
                _ => return None,
            };
            let op = if text.as_bytes()[i] == b'=' {
                Op::Exact
            } else {
                Op::Contains
            };
            (Some(field), op, i + 1)
        }
        _ => (None, Op::Contains, 0),
    };
    let text = &text[value_start..];
    let (mut value, tail) = if let Some(quoted) = text.strip_prefix('\'') {
        let end = quoted.find('\'')?;
        (quoted[..end].to_owned(), &quoted[end + 1..])
    } else {
        let end = text.find(char::is_whitespace).unwrap_or(text.len());
        (text[..end].to_owned(), &text[end..])
    };
    let mut op = op;
    if op == Op::Contains && value.ends_with('*') {
        value.pop();
        op = Op::Prefix;
    }
    if value.is_empty() {
        return None;
    }
    if matches!(field, Some(Field::IsSuspended | Field::IsAdmin))
        && !matches!(value.as_str(), "true" | "false")
    {
        return None;
    }
    Some((Clause { field, op, value }, tail))
}

fn text_matches(op: Op, candidate: &str, value: &str) -> bool {
    let candidate = candidate.to_lowercase();
    let value = value.to_lowercase();
    match op {
        Op::Exact => candidate == value,
        Op::Contains => candidate.contains(&value),
        Op::Prefix => candidate.starts_with(&value),
    }
}

/// The text at `pointer` (`/name/givenName`) of a user resource, or "".
fn str_at<'a>(user: &'a Map<String, Value>, pointer: &str) -> &'a str {
    let mut parts = pointer.split('/').filter(|p| !p.is_empty());
    let first = parts.next().and_then(|p| user.get(p));
    parts
        .try_fold(first, |at, part| Some(at?.get(part)))
        .flatten()
        .and_then(Value::as_str)
        .unwrap_or_default()
}

impl Clause {
    /// The prefix of an `email:PREFIX*` clause, lowercased as addresses are kept.
    pub fn email_prefix(&self) -> Option<&str> {
        (self.field == Some(Field::Email) && self.op == Op::Prefix)
            .then_some(self.value.as_str())
            .filter(|v| *v == v.to_lowercase())
    }

    /// Whether `user` (a `User` resource, read in place: a listing checks millions)
    /// satisfies the clause.
    pub fn matches(&self, user: &Map<String, Value>) -> bool {
        let m = |candidate: &str| text_matches(self.op, candidate, &self.value);
        let array_values = |field: &str, key: &str| -> Vec<String> {
            user.get(field)
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i.get(key).and_then(Value::as_str).map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        match self.field {
            None => [
                str_at(user, "/name/givenName"),
                str_at(user, "/name/familyName"),
                str_at(user, "/primaryEmail"),
            ]
            .into_iter()
            .any(m),
            Some(Field::Email) => {
                let aliases = user.get("aliases").and_then(Value::as_array);
                m(str_at(user, "/primaryEmail"))
                    || aliases.is_some_and(|a| a.iter().filter_map(Value::as_str).any(m))
            }
            Some(Field::ExternalId) => array_values("externalIds", "value").iter().any(|v| m(v)),
            Some(Field::OrgCostCenter) => array_values("organizations", "costCenter")
                .iter()
                .any(|v| m(v)),
            Some(Field::IsSuspended) => {
                user.get("suspended")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                    .to_string()
                    == self.value
            }
            Some(Field::IsAdmin) => {
                user.get("isAdmin")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                    .to_string()
                    == self.value
            }
            Some(Field::OrgUnitPath) => {
                str_at(user, "/orgUnitPath").eq_ignore_ascii_case(&self.value)
            }
            Some(Field::GivenName) => m(str_at(user, "/name/givenName")),
            Some(Field::FamilyName) => m(str_at(user, "/name/familyName")),
            Some(Field::Name) => m(&format!(
                "{} {}",
                str_at(user, "/name/givenName"),
                str_at(user, "/name/familyName")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({"primaryEmail": "siti.aminah@sd.belajar.id", "aliases": ["siti@guru.sd.belajar.id"],
               "name": {"givenName": "Siti", "familyName": "Aminah"}, "suspended": false,
               "orgUnitPath": "/student/sd/20100001",
               "externalIds": [{"type": "organization", "value": "sd:nisn:0012345678"}]})
    }

    fn hits(query: &str) -> bool {
        parse(query)
            .expect("query parses")
            .iter()
            .all(|c| c.matches(user().as_object().unwrap()))
    }

    #[test]
    fn fields_operators_and_implicit_and() {
        assert!(hits("email=siti.aminah@sd.belajar.id"));
        assert!(hits("email=siti@guru.sd.belajar.id"), "aliases count");
        assert!(hits("email:siti*"));
        assert!(!hits("email:budi*"));
        assert!(hits("externalId=sd:nisn:0012345678"));
        assert!(hits("isSuspended=false orgUnitPath='/student/sd/20100001'"));
        assert!(!hits("isSuspended=true orgUnitPath='/student/sd/20100001'"));
        assert!(hits("givenName:sit* familyName=AMINAH"));
        assert!(hits("name:'siti amin'"));
        assert!(hits("aminah"), "a bare word matches names or address");
    }

    #[test]
    fn malformed_queries_are_refused() {
        assert_eq!(parse("colour=red"), None);
        assert_eq!(parse("isSuspended=maybe"), None);
        assert_eq!(parse("email='unterminated"), None);
        assert_eq!(parse("email="), None);
        assert_eq!(parse("").map(|c| c.len()), Some(0));
    }
}
