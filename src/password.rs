//! First passwords: drawn from the operating system's random source at the moment they
//! are issued, from an alphabet a child can copy from paper without confusing letters
//! (no 0/O, 1/l/I), and held in a type that never prints itself.

use rand::rngs::OsRng;
use rand::{RngCore, TryRngCore};

/// Lower-case letters and digits without the look-alikes `0 o 1 l i`: 31 symbols, so each
/// character carries almost 5 bits.
pub const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// Characters in a first password: about 49 bits, and the person replaces it at the first
/// sign-in (Google asks for at least 8).
pub const LENGTH: usize = 10;

/// A password in memory. `Debug` and `Display` print a placeholder, so a password cannot
/// reach a log line or an error message by accident; [`Secret::expose`] is the one way
/// to read it (to send it, or to put it on the sheet).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A secret made elsewhere (an API token), kept from printing like a password.
impl From<String> for Secret {
    fn from(secret: String) -> Secret {
        Secret(secret)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// A new first password. Panics only when the operating system has no random source,
/// which no password could be made without.
pub fn generate() -> Secret {
    drawn(ALPHABET, LENGTH)
}

/// A code of `length` decimal digits (the emailed reset codes), drawn the same way.
pub fn digits(length: usize) -> Secret {
    drawn(b"0123456789", length)
}

/// `length` symbols of `alphabet`, each equally likely, from the OS's random source.
fn drawn(alphabet: &[u8], length: usize) -> Secret {
    let mut rng = OsRng.unwrap_err();
    // Rejection sampling: bytes above the largest multiple of the alphabet's size are
    // drawn again, so every symbol is equally likely.
    let limit = 256 - 256 % alphabet.len();
    let mut drawn = String::with_capacity(length);
    while drawn.len() < length {
        let byte = (rng.next_u32() & 0xff) as usize;
        if byte < limit {
            drawn.push(alphabet[byte % alphabet.len()] as char);
        }
    }
    Secret(drawn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn passwords_are_long_from_the_alphabet_and_never_repeat() {
        let drawn: Vec<Secret> = (0..2000).map(|_| generate()).collect();
        let distinct: HashSet<&str> = drawn.iter().map(Secret::expose).collect();
        assert_eq!(distinct.len(), drawn.len());
        for password in &drawn {
            assert_eq!(password.expose().len(), LENGTH);
            assert!(password.expose().bytes().all(|b| ALPHABET.contains(&b)));
        }
        // Every symbol turns up in 20,000 characters (each is expected ~645 times).
        let used: HashSet<u8> = drawn.iter().flat_map(|p| p.expose().bytes()).collect();
        assert_eq!(used.len(), ALPHABET.len());
    }

    #[test]
    fn the_alphabet_has_no_look_alikes() {
        for confusable in b"0Oo1lIi" {
            assert!(!ALPHABET.contains(confusable), "{}", *confusable as char);
        }
    }

    #[test]
    fn a_secret_never_prints_itself() {
        let secret = generate();
        let printed = format!("{secret:?} {:?}", Some(&secret));
        assert!(!printed.contains(secret.expose()), "{printed}");
    }
}
