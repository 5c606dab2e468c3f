//! An ordered map of byte strings stored as pages in one sled tree.
//!
//! Why: sled 0.34 costs about 25 µs per inserted key on this class of machine, whatever the
//! value's size, and a full scan of a million small keys is slow once they outgrow its
//! cache. Millions of accounts therefore live in pages of a few dozen entries each: a
//! page is one sled value, keyed by its *fence* (a lower bound of its keys; the first page's
//! fence is empty), and holds its entries sorted. A write of many changes rewrites each
//! touched page once, in one atomic sled batch; a scan reads pages in order, one at a time
//! (see [`Cursor`]).
//!
//! Page format: entries one after another, each `u32 key length, key, u32 value length,
//! value` (little-endian), stored as one zstd frame.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A page is split when its encoded size passes this. Small enough that a sled leaf of
/// such pages stays under sled's blob threshold (a quarter of a 512 KiB segment) once
/// compressed (JSON records shrink four to eight times): a leaf written as a blob is
/// charged to sled's cache as a 20-byte pointer, so the cache never looks full and keeps
/// everything it read.
pub const MAX_PAGE_BYTES: usize = 16 * 1024;

// Pages are zstd frames at its fastest level. Why here and not sled's own compression:
// sled makes a new zstd context for every node it reads or writes (a fifth of a plan's
// time went to creating them) and panics on a frame it cannot decompress; here each
// thread keeps its contexts, and a damaged page is an error naming its keyspace.

/// The first bytes of a zstd frame: what every page starts with.
pub(super) const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The largest page a frame may decompress to (a single large entry gets a page of its
/// own; none is near this): a damaged header cannot make a read allocate more.
const MAX_PLAIN_PAGE: u64 = 64 * 1024 * 1024;

thread_local! {
    /// zstd contexts are costly to make (hundreds of KiB, zeroed): one each per thread.
    static ZSTD: RefCell<(zstd::block::Compressor, zstd::block::Decompressor)> =
        RefCell::new((zstd::block::Compressor::new(), zstd::block::Decompressor::new()));
}

/// A page as it is stored: compressed.
fn compress(plain: &[u8]) -> Vec<u8> {
    ZSTD.with(|z| {
        z.borrow_mut()
            .0
            .compress(plain, 1)
            .expect("zstd compresses into a buffer of its own bound")
    })
}

/// The plain bytes of a stored page.
pub fn plain(stored: &[u8]) -> sled::Result<Cow<'_, [u8]>> {
    let damaged = |why: String| {
        sled::Error::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a page cannot be decompressed ({why})"),
        ))
    };
    if !stored.starts_with(&ZSTD_MAGIC) {
        return Err(damaged("it is not a zstd frame".into()));
    }
    let size = zstd::zstd_safe::get_frame_content_size(stored);
    if size > MAX_PLAIN_PAGE {
        return Err(damaged("its size is unreadable".into()));
    }
    ZSTD.with(|z| z.borrow_mut().1.decompress(stored, size as usize))
        .map(Cow::Owned)
        .map_err(|e| damaged(e.to_string()))
}

/// Decoded pages kept for lookups, per keyspace (each shares its bytes with sled's own
/// cache). Lookups come in key order (imports, plans), so a few dozen suffice; an import
/// touches half a dozen keyspaces.
const CACHED_PAGES: usize = 64;

/// A page read for lookups, with its key range: `fence <= key < upper` (no upper for the
/// last page), and where each entry starts, for a binary search without copying.
struct Page {
    upper: Option<Vec<u8>>,
    bytes: Vec<u8>,
    starts: Vec<u32>,
}

impl Page {
    fn new(bytes: Vec<u8>, upper: Option<Vec<u8>>) -> Page {
        let mut starts = Vec::new();
        let mut at = 0usize;
        while let Some((key_len, value_len)) = entry_lens(&bytes, at) {
            starts.push(at as u32);
            at += 8 + key_len + value_len;
        }
        Page {
            upper,
            bytes,
            starts,
        }
    }

    fn entry(&self, i: usize) -> (&[u8], &[u8]) {
        let at = self.starts[i] as usize;
        let (key_len, value_len) = entry_lens(&self.bytes, at).expect("checked in new");
        let key = &self.bytes[at + 4..at + 4 + key_len];
        let value = &self.bytes[at + 8 + key_len..at + 8 + key_len + value_len];
        (key, value)
    }

    fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let (mut lo, mut hi) = (0, self.starts.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let (k, v) = self.entry(mid);
            match k.cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(v),
            }
        }
        None
    }
}

/// The key and value lengths of the entry at `at`, when a whole entry is there.
fn entry_lens(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    let len = |at: usize| -> Option<usize> {
        let raw: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(u32::from_le_bytes(raw) as usize)
    };
    let key_len = len(at)?;
    let value_len = len(at + 4 + key_len)?;
    (bytes.len() >= at + 8 + key_len + value_len).then_some((key_len, value_len))
}

/// The ordered map. Cheap to clone (sled trees are handles).
#[derive(Clone)]
pub struct Pages {
    tree: sled::Tree,
    /// Decoded pages by fence, emptied by each `apply`.
    cache: Arc<Mutex<BTreeMap<Vec<u8>, Arc<Page>>>>,
    /// Counts the applies: a page read while one was written is not cached (it may be
    /// the old version).
    generation: Arc<AtomicU64>,
    /// Bytes lookups read from sled since last taken (sled keeps them: see
    /// [`take_fetched`](Self::take_fetched)).
    fetched: Arc<AtomicU64>,
}

/// Pending changes: `None` removes the key.
pub type Changes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Changes made ready to write: the sled batch of the rewritten pages, and the pages it
/// replaces.
pub struct Prepared {
    pub batch: sled::Batch,
    /// When asked for: the fence of every page the batch writes or removes, and the page
    /// stored there before (`None`: a page the batch adds).
    pub replaced: Vec<(Vec<u8>, Option<sled::IVec>)>,
    /// Bytes of the pages written.
    pub bytes: usize,
}

impl Pages {
    pub fn new(tree: sled::Tree) -> Pages {
        Pages {
            tree,
            cache: Arc::default(),
            generation: Arc::default(),
            fetched: Arc::default(),
        }
    }

    pub fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// The fence and stored bytes of the page that holds (or would hold) `key`.
    fn locate(&self, key: &[u8]) -> sled::Result<Option<(sled::IVec, sled::IVec)>> {
        self.tree.range(..=key).next_back().transpose()
    }

    /// The fence of the page after the one fenced by `fence`.
    fn next_fence(&self, fence: &[u8]) -> sled::Result<Option<Vec<u8>>> {
        Ok(self.page_after(fence)?.map(|(k, _)| k.to_vec()))
    }

    /// The page that holds (or would hold) `key`, or the first page after it.
    pub fn page_from(&self, key: &[u8]) -> sled::Result<Option<(sled::IVec, sled::IVec)>> {
        match self.locate(key)? {
            Some(page) => Ok(Some(page)),
            None => self.tree.first(),
        }
    }

    /// The page after the one fenced by `fence`.
    pub fn page_after(&self, fence: &[u8]) -> sled::Result<Option<(sled::IVec, sled::IVec)>> {
        let after = (Bound::Excluded(fence), Bound::Unbounded);
        self.tree.range::<&[u8], _>(after).next().transpose()
    }

    /// The decoded page holding `key`, from the cache when it is there.
    fn page_for(&self, key: &[u8]) -> sled::Result<Option<Arc<Page>>> {
        {
            let cache = self.cache.lock().expect("page cache lock");
            if let Some((_, page)) = cache
                .range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
                .next_back()
                && page
                    .upper
                    .as_ref()
                    .is_none_or(|upper| key < upper.as_slice())
            {
                return Ok(Some(page.clone()));
            }
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let Some((fence, bytes)) = self.locate(key)? else {
            return Ok(None);
        };
        self.fetched
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let page = Arc::new(Page::new(
            plain(&bytes)?.into_owned(),
            self.next_fence(&fence)?,
        ));
        let mut cache = self.cache.lock().expect("page cache lock");
        if self.generation.load(Ordering::SeqCst) == generation {
            if cache.len() >= CACHED_PAGES {
                cache.clear();
            }
            cache.insert(fence.to_vec(), page.clone());
        }
        Ok(Some(page))
    }

    /// Bytes lookups read from sled since the last call: a store counts them with what
    /// scans read, since sled keeps both.
    pub fn take_fetched(&self) -> u64 {
        self.fetched.swap(0, Ordering::Relaxed)
    }

    pub fn get(&self, key: &[u8]) -> sled::Result<Option<Vec<u8>>> {
        Ok(self
            .page_for(key)?
            .and_then(|page| page.get(key).map(<[u8]>::to_vec)))
    }

    /// Makes `changes` (in key order, each key once) ready to write: each touched page is
    /// read once, its entries and the changes merged in one ordered pass, and split when
    /// too big. With `record_old`, what each changed key held is kept in
    /// [`Prepared::old`] (for an undoable change; a copy per key otherwise spared). Nothing is written; the caller applies the batch (alone or in a
    /// transaction with other trees) and then calls [`written`](Self::written). One writer
    /// at a time: the caller holds a lock (the store's commit does).
    pub fn prepare<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        changes: impl IntoIterator<Item = (K, Option<V>)>,
        record_replaced: bool,
    ) -> sled::Result<Prepared> {
        let mut prepared = Prepared {
            batch: sled::Batch::default(),
            replaced: Vec::new(),
            bytes: 0,
        };
        let mut changes = changes.into_iter().peekable();
        while let Some((first_key, _)) = changes.peek() {
            let (fence, stored) = match self.locate(first_key.as_ref())? {
                Some((fence, stored)) => (fence.to_vec(), Some(stored)),
                None => (Vec::new(), None),
            };
            let plain_page = match &stored {
                Some(stored) => plain(stored)?,
                None => Cow::Borrowed(&[][..]),
            };
            let upper = self.next_fence(&fence)?;
            let mut existing = entries(&plain_page).peekable();
            let mut out = Splitter::default();
            loop {
                let change = changes
                    .peek()
                    .filter(|(key, _)| upper.as_ref().is_none_or(|u| key.as_ref() < u.as_slice()));
                let order = match (existing.peek(), change) {
                    (None, None) => break,
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (Some((held, _)), Some((key, _))) => (*held).cmp(key.as_ref()),
                };
                if order.is_lt() {
                    let (key, value) = existing.next().expect("peeked");
                    out.push(key, value);
                    continue;
                }
                let (key, value) = changes.next().expect("peeked");
                let key = key.as_ref();
                if order.is_eq() {
                    existing.next();
                }
                if let Some(value) = &value {
                    out.push(key, value.as_ref());
                }
            }
            if record_replaced {
                prepared.replaced.push((fence.clone(), stored.clone()));
            }
            let pages = out.pages;
            if pages.is_empty() {
                prepared.batch.remove(fence);
                continue;
            }
            for (i, (page_fence, bytes)) in pages.into_iter().enumerate() {
                let page_fence = if i == 0 {
                    fence.clone()
                } else {
                    if record_replaced {
                        // Between two fences there was no page: the split adds this one.
                        prepared.replaced.push((page_fence.clone(), None));
                    }
                    page_fence
                };
                let stored = compress(&bytes);
                prepared.bytes += stored.len();
                prepared.batch.insert(page_fence, stored);
            }
        }
        Ok(prepared)
    }

    /// Forgets the pages read before a write: they may be the old versions.
    pub fn written(&self) {
        let mut cache = self.cache.lock().expect("page cache lock");
        self.generation.fetch_add(1, Ordering::SeqCst);
        cache.clear();
    }

    /// Writes `changes` at once (see [`prepare`](Self::prepare)).
    #[cfg(test)]
    pub fn apply(&self, changes: Changes) -> sled::Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let prepared = self.prepare(changes, false)?;
        self.tree.apply_batch(prepared.batch)?;
        self.written();
        Ok(())
    }
}

/// The entries of a stored page, in key order, as slices of it.
pub fn entries(bytes: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let (key_len, value_len) = entry_lens(bytes, at)?;
        let key = &bytes[at + 4..at + 4 + key_len];
        let value = &bytes[at + 8 + key_len..at + 8 + key_len + value_len];
        at += 8 + key_len + value_len;
        Some((key, value))
    })
}

/// Where a scan of the map stands: it reads one page at a time and holds no sled handle
/// between pages, so the store may be reopened (or written) while a scan is under way.
/// An entry written after the scan passed its place is not seen, and none is seen twice
/// (a page split by a write moves entries already given into a later page: skipped).
pub struct Cursor {
    prefix: Vec<u8>,
    from: Vec<u8>,
    /// The fence of the page read last.
    fence: Option<Vec<u8>>,
    /// The last key given.
    last: Option<Vec<u8>>,
    done: bool,
}

impl Cursor {
    /// A scan of the entries whose key starts with `prefix` and is at least `from`.
    pub fn new(prefix: &[u8], from: Vec<u8>) -> Cursor {
        Cursor {
            prefix: prefix.to_vec(),
            from,
            fence: None,
            last: None,
            done: false,
        }
    }

    /// Reads the next page and gives its entries in the scan to `f`. Returns the bytes
    /// read, or `None` when the scan is over.
    pub fn step(
        &mut self,
        pages: &Pages,
        mut f: impl FnMut(&[u8], &[u8]),
    ) -> sled::Result<Option<usize>> {
        if self.done {
            return Ok(None);
        }
        let page = match &self.fence {
            None => pages.page_from(&self.from)?,
            Some(fence) => pages.page_after(fence)?,
        };
        let Some((fence, stored)) = page else {
            self.done = true;
            return Ok(None);
        };
        for (key, value) in entries(&plain(&stored)?) {
            if key < self.from.as_slice() || self.last.as_deref().is_some_and(|l| key <= l) {
                continue;
            }
            if !key.starts_with(&self.prefix) {
                self.done = true;
                break;
            }
            let last = self.last.get_or_insert_with(Vec::new);
            last.clear();
            last.extend_from_slice(key);
            f(key, value);
        }
        self.fence = Some(fence.to_vec());
        Ok(Some(stored.len()))
    }
}

/// Entries, given in key order, encoded into pages of at most [`MAX_PAGE_BYTES`] (a
/// single larger entry gets a page of its own), each with the key of its first entry.
#[derive(Default)]
struct Splitter {
    pages: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Splitter {
    fn push(&mut self, key: &[u8], value: &[u8]) {
        let size = 8 + key.len() + value.len();
        let full = self
            .pages
            .last()
            .is_none_or(|(_, bytes)| bytes.len() + size > MAX_PAGE_BYTES);
        if full {
            self.pages
                .push((key.to_vec(), Vec::with_capacity(MAX_PAGE_BYTES)));
        }
        let (_, bytes) = self.pages.last_mut().expect("a page is open");
        encode_entry(bytes, key, value);
    }
}

fn encode_entry(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    for part in [key, value] {
        out.extend_from_slice(
            &u32::try_from(part.len())
                .expect("entry under 4 GiB")
                .to_le_bytes(),
        );
        out.extend_from_slice(part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pages() -> (tempfile::TempDir, Pages) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        (dir, Pages::new(db.open_tree("t").unwrap()))
    }

    /// Every entry under `prefix`, read through a cursor.
    fn scan(pages: &Pages, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut cursor = Cursor::new(prefix, prefix.to_vec());
        let mut out = Vec::new();
        while cursor
            .step(pages, |k, v| out.push((k.to_vec(), v.to_vec())))
            .unwrap()
            .is_some()
        {}
        out
    }

    fn put(k: &str, v: &str) -> (Vec<u8>, Option<Vec<u8>>) {
        (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))
    }

    #[test]
    fn many_entries_split_into_pages_and_read_back_in_order() {
        let (_dir, pages) = pages();
        let value = "v".repeat(200);
        let changes: Changes = (0..2_000)
            .map(|i| put(&format!("a:{i:05}"), &value))
            .collect();
        pages.apply(changes).unwrap();
        assert!(
            pages.tree.len() > 20,
            "split into {} pages",
            pages.tree.len()
        );
        assert_eq!(pages.get(b"a:01234").unwrap().unwrap(), value.as_bytes());
        assert_eq!(pages.get(b"a:99999").unwrap(), None);
        let keys: Vec<Vec<u8>> = scan(&pages, b"a:00").into_iter().map(|e| e.0).collect();
        assert_eq!(keys.len(), 1_000);
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_scan_sees_each_entry_once_while_pages_split_under_it() {
        const N: usize = 20_000;
        let (_dir, pages) = pages();
        let small = "s".repeat(10);
        let changes: Changes = (0..N)
            .map(|i| put(&format!("k:{:07}", i * 10), &small))
            .collect();
        pages.apply(changes).unwrap();
        let pages_before = pages.tree.len();
        let mut cursor = Cursor::new(b"k:", b"k:".to_vec());
        let mut keys = Vec::new();
        while keys.len() < N / 2 {
            cursor.step(&pages, |k, _| keys.push(k.to_vec())).unwrap();
        }
        // Values grown in place: every page splits, moving entries already seen forward.
        let big = "B".repeat(100);
        let grown: Changes = (0..N)
            .map(|i| put(&format!("k:{:07}", i * 10), &big))
            .collect();
        pages.apply(grown).unwrap();
        assert!(pages.tree.len() > pages_before * 4, "pages split");
        while cursor
            .step(&pages, |k, _| keys.push(k.to_vec()))
            .unwrap()
            .is_some()
        {}
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "in order, none twice");
        assert_eq!(keys.len(), N);
    }

    #[test]
    fn keys_below_every_fence_and_removals_land_in_the_right_page() {
        let (_dir, pages) = pages();
        let value = "x".repeat(1000);
        pages
            .apply((100..200).map(|i| put(&format!("m{i}"), &value)).collect())
            .unwrap();
        pages
            .apply([put("a", "first"), put("z", "last")].into_iter().collect())
            .unwrap();
        pages
            .apply([(b"m150".to_vec(), None)].into_iter().collect())
            .unwrap();
        assert_eq!(pages.get(b"a").unwrap().unwrap(), b"first");
        assert_eq!(pages.get(b"z").unwrap().unwrap(), b"last");
        assert_eq!(pages.get(b"m150").unwrap(), None);
        assert_eq!(scan(&pages, b"m").len(), 99);
        assert_eq!(scan(&pages, b"").len(), 101);
    }

    proptest! {
        /// The paged map behaves as a BTreeMap under any sequence of batched changes.
        #[test]
        fn behaves_like_a_btreemap(batches in prop::collection::vec(
            prop::collection::btree_map("[a-d]{1,3}", prop::option::of("[x]{0,3000}"), 0..40), 1..8)
        ) {
            let (_dir, pages) = pages();
            let mut model = BTreeMap::new();
            for batch in batches {
                let changes: Changes = batch.iter()
                    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_ref().map(|v| v.as_bytes().to_vec())))
                    .collect();
                for (k, v) in &changes {
                    match v { Some(v) => { model.insert(k.clone(), v.clone()); } None => { model.remove(k); } }
                }
                pages.apply(changes).unwrap();
                let stored = scan(&pages, b"");
                let expected: Vec<(Vec<u8>, Vec<u8>)> = model.clone().into_iter().collect();
                prop_assert_eq!(stored, expected);
                for k in model.keys() {
                    prop_assert_eq!(pages.get(k).unwrap(), model.get(k).cloned());
                }
            }
        }
    }
}
