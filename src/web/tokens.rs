//! Bearer tokens of the helpdesk's API: one per agent (or per ticketing system acting for
//! one), made by `belajar-sync web token add`, shown once, kept only as the SHA-256 of the
//! token (a token has 256 random bits, so a plain hash cannot be searched back), revoked by
//! its short id. A token carries no rights of its own: the agent's address must still be
//! in `web.helpdesk` or `web.admins` when it is used, so taking an agent off the list ends
//! their tokens too.
//!
//! The owner of the `api_tokens` keyspace: `t:{sha-256 of the token, hex}` → [`Token`].

use crate::password::Secret;
use crate::store::{Keyspace, Store, StoreError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const TOKENS: Keyspace = Keyspace::new("api_tokens");

/// What every token starts with: a secret scanner (and a reader) can tell what it is.
const PREFIX: &str = "bsapi_";

/// What is kept of a token (never the token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    /// The first 12 hex digits of the hash: what `list` shows and `revoke` takes.
    pub id: String,
    /// The agent the token acts for.
    pub email: String,
    /// What the token is for ("Zammad", "laptop of agent 7").
    #[serde(default)]
    pub note: String,
    pub made: Timestamp,
    /// The operator's Unix user who made it.
    pub by: String,
}

fn digest(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

fn key_of(digest: &str) -> Vec<u8> {
    format!("t:{digest}").into_bytes()
}

/// Makes a token for `email` and keeps its hash; the token itself is returned only here.
pub fn issue(
    store: &Store,
    email: &str,
    note: &str,
    by: &str,
) -> Result<(Secret, Token), StoreError> {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let token = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let digest = digest(&token);
    let kept = Token {
        id: digest[..12].to_owned(),
        email: email.trim().to_lowercase(),
        note: note.trim().to_owned(),
        made: Timestamp::now(),
        by: by.to_owned(),
    };
    let mut changes = store.changes(false);
    changes.put_json(TOKENS, key_of(&digest), &kept);
    changes.commit()?;
    Ok((Secret::from(token), kept))
}

/// The token `presented` (what followed `Bearer `), if one was made and not revoked.
pub fn find(store: &Store, presented: &str) -> Result<Option<Token>, StoreError> {
    let presented = presented.trim();
    if !presented.starts_with(PREFIX) || presented.len() > 100 {
        return Ok(None);
    }
    store.get_json(TOKENS, &key_of(&digest(presented)))
}

/// Every token kept, in hash order.
pub fn all(store: &Store) -> Result<Vec<Token>, StoreError> {
    store
        .scan_json::<Token>(TOKENS, b"t:")
        .map(|e| e.map(|(_, token)| token))
        .collect()
}

/// Revokes the token whose id is `id`; the token revoked, if there was one.
pub fn revoke(store: &Store, id: &str) -> Result<Option<Token>, StoreError> {
    let id = id.trim().to_lowercase();
    let mut changes = store.changes(false);
    let found = store
        .scan_json::<Token>(TOKENS, b"t:")
        .find(|e| !matches!(e, Ok((_, token)) if token.id != id))
        .transpose()?;
    let Some((key, token)) = found else {
        return Ok(None);
    };
    changes.delete(TOKENS, key);
    changes.commit()?;
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_found_by_itself_only_and_kept_as_a_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 16).unwrap();
        let (token, kept) = issue(&store, " Agen@Belajar.id ", "Zammad", "root").unwrap();
        assert!(token.expose().starts_with(PREFIX));
        assert_eq!(token.expose().len(), PREFIX.len() + 43);
        assert_eq!(kept.email, "agen@belajar.id");
        let found = find(&store, token.expose()).unwrap().unwrap();
        assert_eq!(found, kept);
        // One character changed, another prefix, nothing: no token.
        let mut edited = token.expose().to_owned();
        let last = if edited.ends_with('A') { "B" } else { "A" };
        edited.replace_range(edited.len() - 1.., last);
        assert_eq!(find(&store, &edited).unwrap(), None);
        assert_eq!(find(&store, "").unwrap(), None);
        assert_eq!(find(&store, &digest(token.expose())).unwrap(), None);
        // The store holds the hash, never the token.
        let listed = all(&store).unwrap();
        assert_eq!(listed, vec![kept.clone()]);
        assert!(
            !serde_json::to_string(&listed)
                .unwrap()
                .contains(token.expose())
        );
        // Revoked, it is found no more; a second revoke finds nothing.
        assert_eq!(revoke(&store, &kept.id.to_uppercase()).unwrap(), Some(kept));
        assert_eq!(find(&store, token.expose()).unwrap(), None);
        assert_eq!(revoke(&store, &listed[0].id).unwrap(), None);
    }
}
