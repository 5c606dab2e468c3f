//! The `fields` standard parameter (partial response): `nextPageToken,users(id,primaryEmail)`,
//! `name/givenName`. Selections apply to every element of an array.

use serde_json::{Map, Value};

/// Splits `a,b(c,d),e` at the commas outside parentheses.
fn split_top(spec: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in spec.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(spec[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(spec[start..].trim());
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// Keeps the parts of `value` that `spec` selects.
pub fn select(value: &Value, spec: &str) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(|i| select(i, spec)).collect()),
        Value::Object(object) => {
            let mut out = Map::new();
            for part in split_top(spec) {
                let (path, sub) = match part.split_once('(') {
                    Some((path, rest)) => (path, Some(rest.strip_suffix(')').unwrap_or(rest))),
                    None => (part, None),
                };
                let (head, tail) = match path.split_once('/') {
                    Some((head, tail)) => (head, Some(tail)),
                    None => (path, None),
                };
                let Some(field) = object.get(head) else {
                    continue;
                };
                let inner = match (tail, sub) {
                    (Some(tail), Some(sub)) => select(field, &format!("{tail}({sub})")),
                    (Some(tail), None) => select(field, tail),
                    (None, Some(sub)) => select(field, sub),
                    (None, None) => field.clone(),
                };
                match (out.get_mut(head), inner) {
                    (Some(Value::Object(existing)), Value::Object(more)) => existing.extend(more),
                    (_, inner) => {
                        out.insert(head.to_owned(), inner);
                    }
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selects_fields_nested_paths_and_array_elements() {
        let page = json!({"kind": "k", "nextPageToken": "t", "users": [
            {"id": "1", "primaryEmail": "a@x", "name": {"givenName": "A", "familyName": "B"}, "suspended": false},
            {"id": "2", "primaryEmail": "b@x", "name": {"givenName": "C", "familyName": "D"}}]});
        assert_eq!(
            select(&page, "nextPageToken,users(id,primaryEmail)"),
            json!({"nextPageToken": "t", "users": [{"id": "1", "primaryEmail": "a@x"}, {"id": "2", "primaryEmail": "b@x"}]})
        );
        assert_eq!(
            select(&page, "users(name/givenName,suspended)"),
            json!({"users": [{"name": {"givenName": "A"}, "suspended": false}, {"name": {"givenName": "C"}}]})
        );
        assert_eq!(
            select(&page, "users/id"),
            json!({"users": [{"id": "1"}, {"id": "2"}]})
        );
    }
}
