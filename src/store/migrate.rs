//! Moves a version-1 store (every record in one paged tree, `directory`, told apart by a
//! key prefix) into keyspaces. Idempotent: cut short, it is done again at the next
//! opening, since the schema version is written only after it.

use super::pages::Cursor;
use super::{Changes, Keyspace, META, Store, StoreError};

/// Where a version-1 key goes: its keyspace and its key there.
fn route(key: &[u8]) -> Option<(Keyspace, Vec<u8>)> {
    let strip = |space: &'static str| Some((Keyspace::new(space), key[2..].to_vec()));
    let keep = |space: &'static str| Some((Keyspace::new(space), key.to_vec()));
    match key.get(..2)? {
        b"a:" => strip("accounts"),
        b"s:" => strip("schools"),
        b"e:" | b"n:" => keep("addresses"),
        b"c:" => Some((META, [&b"count:"[..], &key[2..]].concat())),
        b"m:" if key == b"m:seq" => Some((META, super::SEQ_KEY.to_vec())),
        b"r:" | b"u:" | b"d:" | b"o:" | b"m:" => keep("remote"),
        b"j:" | b"p:" => keep("journal"),
        b"h:" | b"t:" => keep("history"),
        b"q:" | b"x:" | b"g:" => keep("held"),
        b"l:" => keep("access"),
        _ => None,
    }
}

pub(super) fn from_one_tree(store: &Store) -> Result<(), StoreError> {
    tracing::info!(path = %store.path.display(), "moving a version-1 store into keyspaces");
    let (old, marker) = {
        let handles = store.handles()?;
        let old = super::Pages::new(
            handles
                .db
                .open_tree("directory")
                .map_err(|e| store.err(e))?,
            handles.codec,
        );
        let marker = handles
            .db
            .get("import_in_progress")
            .map_err(|e| store.err(e))?;
        (old, marker)
    };
    let mut cursor = Cursor::new(b"", Vec::new());
    let mut changes = store.changes(false);
    let mut unknown = None;
    loop {
        let step = cursor.step(&old, |key, value| match route(key) {
            Some((space, key)) => changes.put(space, key, value.to_vec()),
            None => unknown = Some(String::from_utf8_lossy(key).into_owned()),
        });
        let more = step.map_err(|e| store.err(e))?.is_some();
        if let Some(key) = unknown.take() {
            return Err(store.corrupt(format!("a version-1 record {key:?} has no place")));
        }
        if !more || changes.pending_bytes() >= Changes::BATCH_BYTES {
            changes.commit()?;
        }
        if !more {
            break;
        }
    }
    if let Some(marker) = marker {
        changes.put(META, super::IMPORT_KEY.to_vec(), marker.to_vec());
        changes.commit()?;
    }
    let handles = store.handles()?;
    drop(old);
    handles
        .db
        .drop_tree("directory")
        .map_err(|e| store.err(e))?;
    handles
        .db
        .remove("import_in_progress")
        .map_err(|e| store.err(e))?;
    Ok(())
}
