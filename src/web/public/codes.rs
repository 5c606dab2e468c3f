//! The one-time codes of Lupa kata sandi: 8 digits, valid 15 minutes
//! (`web.reset_code_seconds`), five wrong tries and the code is void, used once. The store keeps only an HMAC-SHA256 of the code and
//! the account (keyed by a secret derived from the console's cookie key), so a copy of
//! the store does not give the codes, whose 10⁸ values would otherwise be tried in
//! seconds.
//!
//! Kept in the `reset_codes` keyspace as side records (no import or round writes it):
//! asked for and used at once, outside the write lease, so a long import does not hold
//! up a person at the page.

use crate::store::{Keyspace, SideChange, Store, StoreError};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

const CODES: Keyspace = Keyspace::new("reset_codes");

/// Digits in a code.
pub const DIGITS: usize = 8;
/// Wrong tries that void a code.
const WRONG_TRIES: u32 = 5;

/// The codes of one console: the key of their digests, and how long they are valid.
pub struct Codes {
    key: ring::hmac::Key,
    valid_ms: i64,
}

/// A code waiting to be used.
#[derive(Debug, Serialize, Deserialize)]
struct Waiting {
    /// HMAC-SHA256 of the account's key and the code, hex.
    digest: String,
    /// Milliseconds since the epoch.
    expires: i64,
    wrong: u32,
}

/// Why a code was not accepted (all said to the person in the same words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// None asked for, used already, or voided by wrong tries.
    NoCode,
    Expired,
    /// Wrong; `void` when this was the last try it had.
    Wrong {
        void: bool,
    },
}

/// What a code is worth when it is shown: `Accepted` takes it away.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Accepted,
    Refused(Refused),
}

/// What a try of `digest` does to the code `waiting` at `now` (ms): the verdict, and the
/// code to keep (none: removed). Pure.
fn judge(waiting: Option<Waiting>, digest: &str, now: i64) -> (Verdict, Option<Waiting>) {
    let Some(mut waiting) = waiting else {
        return (Verdict::Refused(Refused::NoCode), None);
    };
    if now >= waiting.expires {
        return (Verdict::Refused(Refused::Expired), None);
    }
    if crate::web::session::same_secret(&waiting.digest, digest) {
        return (Verdict::Accepted, None);
    }
    waiting.wrong += 1;
    let void = waiting.wrong >= WRONG_TRIES;
    (
        Verdict::Refused(Refused::Wrong { void }),
        (!void).then_some(waiting),
    )
}

impl Codes {
    /// The codes whose digests are keyed by `secret` (the console's signing key), valid
    /// `valid_seconds`.
    pub fn new(secret: &[u8], valid_seconds: u32) -> Codes {
        let master = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        // A key of its own, not the cookies' signing key itself.
        let derived = ring::hmac::sign(&master, b"belajar-sync reset codes");
        Codes {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref()),
            valid_ms: i64::from(valid_seconds) * 1000,
        }
    }

    /// How long a code is valid, in whole minutes (as people are told).
    pub fn minutes(&self) -> i64 {
        (self.valid_ms / 60_000).max(1)
    }

    fn digest(&self, account: &str, code: &str) -> String {
        let tag = ring::hmac::sign(&self.key, format!("{account}\0{code}").as_bytes());
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A new code for `account` (the one before it, if any, no longer counts), valid
    /// from `now`. The code is returned to be mailed; only its digest is kept.
    pub fn issue(
        &self,
        store: &Store,
        account: &str,
        now: Timestamp,
    ) -> Result<crate::password::Secret, StoreError> {
        let code = crate::password::digits(DIGITS);
        let waiting = Waiting {
            digest: self.digest(account, code.expose()),
            expires: now.as_millisecond() + self.valid_ms,
            wrong: 0,
        };
        let bytes = serde_json::to_vec(&waiting).expect("codes serialise");
        store.update_side_record(CODES, account.as_bytes(), |_| SideChange::Put(bytes))?;
        Ok(code)
    }

    /// Uses `code` for `account` at `now`: accepted once (then gone), refused when none
    /// waits, it expired, or it is wrong (five wrong tries void it).
    pub fn redeem(
        &self,
        store: &Store,
        account: &str,
        code: &str,
        now: Timestamp,
    ) -> Result<Result<(), Refused>, StoreError> {
        let digest = self.digest(account, code.trim());
        let mut verdict = Verdict::Refused(Refused::NoCode);
        store.update_side_record(CODES, account.as_bytes(), |stored| {
            let waiting = stored.and_then(|b| serde_json::from_slice(b).ok());
            let (judged, keep) = judge(waiting, &digest, now.as_millisecond());
            verdict = judged;
            match keep {
                Some(waiting) => {
                    SideChange::Put(serde_json::to_vec(&waiting).expect("codes serialise"))
                }
                None if stored.is_some() => SideChange::Remove,
                None => SideChange::Keep,
            }
        })?;
        Ok(match verdict {
            Verdict::Accepted => Ok(()),
            Verdict::Refused(why) => Err(why),
        })
    }

    /// Removes the codes that expired unused (the store stays small).
    pub fn forget_expired(store: &Store, now: Timestamp) -> Result<u64, StoreError> {
        let now = now.as_millisecond();
        let expired: Vec<Vec<u8>> = store
            .scan(CODES, b"", Vec::new(), |key, value| {
                let waiting: Option<Waiting> = serde_json::from_slice(value).ok();
                Ok(waiting
                    .is_none_or(|w| w.expires <= now)
                    .then(|| key.to_vec()))
            })
            .filter_map(Result::transpose)
            .collect::<Result<_, _>>()?;
        for key in &expired {
            store.update_side_record(CODES, key, |stored| {
                let waiting: Option<Waiting> = stored.and_then(|b| serde_json::from_slice(b).ok());
                match waiting.is_none_or(|w| w.expires <= now) {
                    true => SideChange::Remove,
                    false => SideChange::Keep, // asked for again meanwhile
                }
            })?;
        }
        Ok(expired.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "sd:nisn:0012345678";

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 8).unwrap();
        (dir, store)
    }

    #[test]
    fn a_code_is_used_once_within_fifteen_minutes() {
        let (_dir, store) = store();
        let codes = Codes::new(&[7; 64], 900);
        let now = Timestamp::now();
        let code = codes.issue(&store, ACCOUNT, now).unwrap();
        assert_eq!(code.expose().len(), DIGITS);
        assert!(code.expose().bytes().all(|b| b.is_ascii_digit()));
        let stored = store.scan(CODES, b"", Vec::new(), |_, v| Ok(v.to_vec()));
        let stored: Vec<Vec<u8>> = stored.collect::<Result<_, _>>().unwrap();
        let stored = String::from_utf8(stored.concat()).unwrap();
        assert!(!stored.contains(code.expose()), "only a digest is kept");

        let later = now + jiff::SignedDuration::from_mins(14);
        assert_eq!(
            codes.redeem(&store, ACCOUNT, code.expose(), later).unwrap(),
            Ok(())
        );
        assert_eq!(
            codes.redeem(&store, ACCOUNT, code.expose(), later).unwrap(),
            Err(Refused::NoCode),
            "used once"
        );

        let code = codes.issue(&store, ACCOUNT, now).unwrap();
        let late = now + jiff::SignedDuration::from_mins(15);
        assert_eq!(
            codes.redeem(&store, ACCOUNT, code.expose(), late).unwrap(),
            Err(Refused::Expired)
        );
        assert_eq!(
            codes
                .redeem(&store, "sd:nisn:0099999999", code.expose(), now)
                .unwrap(),
            Err(Refused::NoCode),
            "another account's code is not this one's"
        );
    }

    #[test]
    fn five_wrong_tries_void_the_code() {
        let (_dir, store) = store();
        let codes = Codes::new(&[7; 64], 900);
        let now = Timestamp::now();
        let code = codes.issue(&store, ACCOUNT, now).unwrap();
        let wrong = if code.expose() == "00000000" {
            "00000001"
        } else {
            "00000000"
        };
        for n in 1..=5 {
            let refused = codes.redeem(&store, ACCOUNT, wrong, now).unwrap();
            assert_eq!(refused, Err(Refused::Wrong { void: n == 5 }), "try {n}");
        }
        assert_eq!(
            codes.redeem(&store, ACCOUNT, code.expose(), now).unwrap(),
            Err(Refused::NoCode),
            "the right code after five wrong ones"
        );
    }

    #[test]
    fn a_new_code_replaces_the_old_and_expired_ones_are_forgotten() {
        let (_dir, store) = store();
        let codes = Codes::new(&[7; 64], 900);
        let now = Timestamp::now();
        let first = codes.issue(&store, ACCOUNT, now).unwrap();
        let second = codes.issue(&store, ACCOUNT, now).unwrap();
        if first.expose() != second.expose() {
            assert!(
                codes
                    .redeem(&store, ACCOUNT, first.expose(), now)
                    .unwrap()
                    .is_err()
            );
        }
        assert_eq!(Codes::forget_expired(&store, now).unwrap(), 0);
        let late = now + jiff::SignedDuration::from_mins(16);
        assert_eq!(Codes::forget_expired(&store, late).unwrap(), 1);
        assert_eq!(
            codes.redeem(&store, ACCOUNT, second.expose(), now).unwrap(),
            Err(Refused::NoCode)
        );
    }
}
