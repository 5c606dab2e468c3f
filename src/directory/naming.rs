//! How a person's name becomes an address and a Google name. Pure functions: the store
//! decides which candidate is free, this module only proposes them.
//!
//! The rules, as documented in README.md:
//! - Degrees after the first comma (`Budi Santoso, S.Pd.`) and trailing degree tokens
//!   (`S.Pd`, `M.Pd.I`) are not part of the name.
//! - The local part is the first and last word joined by a dot (`budi.santoso`), or the one
//!   word of a single name (`sukarno`), transliterated to lower-case ASCII with everything
//!   but `a`–`z` dropped; honorific prefixes (`Hj.`, `Dr.`, `Prof.`) are left out. A name
//!   with no usable letter gives `pengguna`. The first holder gets the bare base, the next
//!   ones `base2`, `base3`, … within the domain. At most 64 characters.
//! - Google needs a given and a family name of at most 60 characters each. The family name
//!   is the last word and the given name the words before it; a single name is both the
//!   given and the family name (as on Indonesian passports used abroad), and the display
//!   name is the name as Dapodik spells it, so people see it once.

use deunicode::deunicode;

/// Local parts that mail systems reserve; a person named "Admin" gets `admin2`.
const RESERVED_LOCAL_PARTS: &[&str] = &[
    "abuse",
    "admin",
    "administrator",
    "hostmaster",
    "mailer-daemon",
    "noreply",
    "postmaster",
    "root",
    "security",
    "support",
    "webmaster",
];

/// Honorific prefixes left out of addresses (they stay in the Google name).
const HONORIFICS: &[&str] = &[
    "dr", "dra", "drs", "ir", "h", "hj", "hc", "kh", "prof", "ust", "ustadz", "ustazah",
];

/// Longest base, leaving room for a number up to 8 digits within Google's 64 characters.
const MAX_BASE_LEN: usize = 56;

/// The name a base falls back to when the person's name has no ASCII letter left.
const FALLBACK_BASE: &str = "pengguna";

/// Google's limit on `givenName` and `familyName`.
pub const GOOGLE_NAME_MAX: usize = 60;

/// The words of a person's name without academic degrees.
fn name_words(full_name: &str) -> Vec<&str> {
    let before_comma = full_name.split(',').next().unwrap_or_default();
    let mut words: Vec<&str> = before_comma.split_whitespace().collect();
    while words.len() > 1 && words.last().is_some_and(|w| is_degree(w)) {
        words.pop();
    }
    words
}

/// `S.Pd`, `M.Pd.I`, `A.Md.`, `S.Kom`: one or two letters, a dot, and one to four more
/// letters (dots between them allowed). `M.Rizki` is a name, not a degree.
fn is_degree(word: &str) -> bool {
    let Some((head, tail)) = word.split_once('.') else {
        return false;
    };
    let tail_letters = tail.chars().filter(|c| *c != '.').count();
    (1..=2).contains(&head.len())
        && head.chars().all(char::is_alphabetic)
        && (1..=4).contains(&tail_letters)
        && tail.chars().all(|c| c == '.' || c.is_alphabetic())
}

fn ascii_letters(word: &str) -> String {
    deunicode(word)
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The base of the local part for a name, before any number is added.
pub fn local_part_base(full_name: &str) -> String {
    let words: Vec<String> = name_words(full_name)
        .into_iter()
        .map(ascii_letters)
        .filter(|w| !w.is_empty())
        .collect();
    let first_real = words
        .iter()
        .position(|w| !HONORIFICS.contains(&w.as_str()))
        .filter(|_| words.len() > 1)
        .unwrap_or(0);
    let words = &words[first_real.min(words.len())..];
    let mut base = match words {
        [] => FALLBACK_BASE.to_owned(),
        [only] => only.clone(),
        [first, .., last] => format!("{first}.{last}"),
    };
    base.truncate(MAX_BASE_LEN);
    let trimmed = base.trim_end_matches('.').len();
    base.truncate(trimmed);
    base
}

/// The `n`th candidate local part for a base: `n = 0` is the bare base (unless reserved),
/// `n ≥ 2` appends the number. `n = 1` is never used, so numbering reads 2, 3, …
pub fn candidate(base: &str, n: u64) -> Option<String> {
    match n {
        0 if RESERVED_LOCAL_PARTS.contains(&base) => None,
        0 => Some(base.to_owned()),
        1 => None,
        n => Some(format!("{base}{n}")),
    }
}

/// The local part of an address (the text before `@`).
pub fn local_part(email: &str) -> &str {
    email.split_once('@').map_or(email, |(local, _)| local)
}

/// The names Google holds for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleName {
    pub given_name: String,
    pub family_name: String,
    pub display_name: String,
}

/// Keeps what Google accepts in a name: letters, digits, spaces, `-`, `/` and `.`.
fn google_word(word: &str) -> String {
    word.chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '/' | '.'))
        .collect()
}

/// Cuts at a word boundary so the result has at most `max` characters (or cuts the word
/// when a single word is longer).
fn fit(words: &[String], max: usize) -> String {
    let mut out = String::new();
    for word in words {
        let extra = word.chars().count() + usize::from(!out.is_empty());
        if out.chars().count() + extra > max {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        out = words
            .first()
            .map(|w| w.chars().take(max).collect())
            .unwrap_or_default();
    }
    out
}

/// Splits a Dapodik name into the given, family and display names Google needs.
pub fn google_name(full_name: &str) -> GoogleName {
    let words: Vec<String> = name_words(full_name)
        .into_iter()
        .map(google_word)
        .filter(|w| !w.is_empty())
        .collect();
    let (given, family) = match words.as_slice() {
        [] => (
            vec![FALLBACK_BASE.to_owned()],
            vec![FALLBACK_BASE.to_owned()],
        ),
        [only] => (vec![only.clone()], vec![only.clone()]),
        [given @ .., last] => (given.to_vec(), vec![last.clone()]),
    };
    GoogleName {
        given_name: fit(&given, GOOGLE_NAME_MAX),
        family_name: fit(&family, GOOGLE_NAME_MAX),
        display_name: full_name.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// A name as a person's own spelling is compared with Dapodik's (Cek Akun): letters and
/// digits without accents, in capitals, words separated by one space; apostrophes dropped
/// (`Nur'aini` = `Nuraini`), other marks separating words.
pub fn compared_name(name: &str) -> String {
    let plain = deunicode::deunicode(name).to_uppercase();
    let mut words = String::with_capacity(plain.len());
    for c in plain.chars() {
        match c {
            '\'' | '`' => {}
            c if c.is_ascii_alphanumeric() => words.push(c),
            _ => words.push(' '),
        }
    }
    words.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What the school index keeps of a person to find them by name and birth date without
/// reading every account of the school: 8 bytes of the SHA-256 of the compared name and
/// the birth date (`[0]` when no birth date is recorded: nobody can be found by it).
pub fn person_tag(full_name: &str, birth_date: Option<jiff::civil::Date>) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let Some(birth_date) = birth_date else {
        return vec![0];
    };
    let mut hasher = Sha256::new();
    hasher.update(compared_name(full_name).as_bytes());
    hasher.update([0]);
    hasher.update(birth_date.to_string().as_bytes());
    hasher.finalize()[..8].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_without_case_accents_or_spacing() {
        assert_eq!(compared_name("  Siti   Nur'aini "), "SITI NURAINI");
        assert_eq!(compared_name("SITI NURAINI"), "SITI NURAINI");
        assert_eq!(compared_name("Muh. Rizky-Pratama"), "MUH RIZKY PRATAMA");
        assert_eq!(compared_name("Débora Ñusa"), "DEBORA NUSA");
        assert_ne!(compared_name("Siti Aminah"), compared_name("Siti Amina"));
        assert_eq!(compared_name("'. -"), "");
        let born = Some(jiff::civil::date(2015, 3, 1));
        assert_eq!(
            person_tag("siti  AMINAH", born),
            person_tag("Siti Aminah", born)
        );
        assert_ne!(
            person_tag("Siti Aminah", born),
            person_tag("Siti Aminah", Some(jiff::civil::date(2015, 3, 2)))
        );
        assert_eq!(person_tag("Siti Aminah", None), [0]);
    }

    #[test]
    fn base_is_first_and_last_word_in_lower_case_ascii() {
        assert_eq!(local_part_base("Budi Santoso"), "budi.santoso");
        assert_eq!(
            local_part_base("  Muhammad  Rizki   Pratama "),
            "muhammad.pratama"
        );
        assert_eq!(local_part_base("Sukarno"), "sukarno");
    }

    #[test]
    fn accents_are_transliterated_and_other_characters_dropped() {
        assert_eq!(local_part_base("Désirée Nur'aini"), "desiree.nuraini");
        assert_eq!(local_part_base("Abdul-Rahman O'Neil"), "abdulrahman.oneil");
        assert_eq!(local_part_base("Ahmad 2nd"), "ahmad.nd");
    }

    #[test]
    fn degrees_and_honorifics_are_left_out() {
        assert_eq!(
            local_part_base("Dra. Siti Aminah, S.Pd., M.Pd."),
            "siti.aminah"
        );
        assert_eq!(local_part_base("Hj. Nurhayati S.Pd"), "nurhayati");
        assert_eq!(
            local_part_base("Prof. Dr. Ir. Bambang Wijaya"),
            "bambang.wijaya"
        );
        assert_eq!(local_part_base("H"), "h", "a lone initial is still a name");
        assert_eq!(local_part_base("Ahmad M.Rizki"), "ahmad.mrizki");
    }

    #[test]
    fn names_without_ascii_letters_fall_back() {
        assert_eq!(local_part_base("—"), "pengguna");
        assert_eq!(local_part_base("李"), "li", "transliterated");
    }

    #[test]
    fn long_names_fit_google_limit_with_a_number() {
        let long = format!("{} {}", "a".repeat(40), "b".repeat(40));
        let base = local_part_base(&long);
        assert!(base.len() <= MAX_BASE_LEN);
        assert!(!base.ends_with('.'));
        assert!(candidate(&base, 99_999_999).unwrap().len() <= 64);
    }

    #[test]
    fn candidates_number_from_two_and_skip_reserved_bases() {
        assert_eq!(candidate("budi", 0).as_deref(), Some("budi"));
        assert_eq!(candidate("budi", 1), None);
        assert_eq!(candidate("budi", 2).as_deref(), Some("budi2"));
        assert_eq!(candidate("admin", 0), None);
        assert_eq!(candidate("admin", 2).as_deref(), Some("admin2"));
    }

    #[test]
    fn single_names_are_both_given_and_family_name() {
        let name = google_name("Sukarno");
        assert_eq!(name.given_name, "Sukarno");
        assert_eq!(name.family_name, "Sukarno");
        assert_eq!(name.display_name, "Sukarno");
    }

    #[test]
    fn last_word_is_family_name_and_characters_google_refuses_are_dropped() {
        let name = google_name("Siti Nur'aini  Rahmawati, S.Pd.");
        assert_eq!(name.given_name, "Siti Nuraini");
        assert_eq!(name.family_name, "Rahmawati");
        assert_eq!(name.display_name, "Siti Nur'aini Rahmawati, S.Pd.");
    }

    #[test]
    fn google_names_are_cut_at_sixty_characters_on_a_word_boundary() {
        let given: Vec<String> = (0..12).map(|i| format!("Nama{i:02}")).collect();
        let full = format!("{} {}", given.join(" "), "X".repeat(70));
        let name = google_name(&full);
        assert!(name.given_name.chars().count() <= GOOGLE_NAME_MAX);
        assert!(name.given_name.ends_with(|c: char| c.is_ascii_digit()));
        assert_eq!(name.family_name.chars().count(), GOOGLE_NAME_MAX);
    }
}
