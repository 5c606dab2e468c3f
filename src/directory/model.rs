//! The directory's vocabulary: who a person is, which level and role they hold, and what
//! state their account should be in. Everything here is plain data with no I/O.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::LazyLock;

/// Implements `as_str`, `Display` and a case-insensitive `parse` for a fieldless enum whose
/// wire names are listed once, so the names used in exports, keys and JSON never diverge.
macro_rules! named_enum {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The name used in exports, account keys and JSON.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }

            /// Parses a name, ignoring case and surrounding spaces.
            pub fn parse(text: &str) -> Option<Self> {
                let text = text.trim();
                Self::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(text))
            }

            /// The accepted names, for error messages.
            pub fn names() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// School level (jenjang). A person gets one account per level they hold a role in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Jenjang {
    Paud,
    Sd,
    Smp,
    Sma,
    Smk,
    Slb,
}

named_enum!(Jenjang { Paud => "paud", Sd => "sd", Smp => "smp", Sma => "sma", Smk => "smk", Slb => "slb" });

/// The national identifier a person is recorded under in Dapodik.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdType {
    /// Student number, 10 digits.
    Nisn,
    /// National identity number, 16 digits.
    Nik,
    /// Teacher and staff number, 16 digits.
    Nuptk,
}

named_enum!(IdType { Nisn => "nisn", Nik => "nik", Nuptk => "nuptk" });

impl IdType {
    /// How many digits an identifier of this type has.
    pub fn digits(self) -> usize {
        match self {
            IdType::Nisn => 10,
            IdType::Nik | IdType::Nuptk => 16,
        }
    }
}

/// A person's role at a school, as Dapodik names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    PesertaDidik,
    Pendidik,
    TenagaKependidikan,
    Operator,
    KepalaSekolah,
}

named_enum!(Role {
    PesertaDidik => "peserta_didik",
    Pendidik => "pendidik",
    TenagaKependidikan => "tenaga_kependidikan",
    Operator => "operator",
    KepalaSekolah => "kepala_sekolah",
});

impl Role {
    /// The role in words, for people: `peserta didik`.
    pub fn words(self) -> String {
        self.as_str().replace('_', " ")
    }

    /// Which address domain family the role belongs to.
    pub fn group(self) -> RoleGroup {
        match self {
            Role::PesertaDidik => RoleGroup::Student,
            Role::Pendidik => RoleGroup::Teacher,
            Role::TenagaKependidikan | Role::Operator | Role::KepalaSekolah => RoleGroup::Admin,
        }
    }

    /// Precedence when one person holds several roles on one level: the admin group wins
    /// over teachers, teachers over students; inside the admin group the principal wins
    /// over the operator, the operator over other staff.
    pub fn precedence(self) -> u8 {
        match self {
            Role::PesertaDidik => 0,
            Role::Pendidik => 1,
            Role::TenagaKependidikan => 2,
            Role::Operator => 3,
            Role::KepalaSekolah => 4,
        }
    }
}

/// The three families of addresses: `sd.belajar.id`, `guru.sd.belajar.id`,
/// `admin.sd.belajar.id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleGroup {
    Student,
    Teacher,
    Admin,
}

named_enum!(RoleGroup { Student => "student", Teacher => "teacher", Admin => "admin" });

/// Whether Dapodik lists the person as present (`aktif`) or gone (`keluar`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowStatus {
    Aktif,
    Keluar,
}

named_enum!(RowStatus { Aktif => "aktif", Keluar => "keluar" });

/// The identity of an account: one person on one level. Displayed and stored as
/// `{jenjang}:{id_type}:{id}`, e.g. `sd:nisn:0012345678`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountKey {
    pub jenjang: Jenjang,
    pub id_type: IdType,
    /// The identifier's digits, leading zeros kept.
    pub id: String,
}

impl AccountKey {
    /// Whether `subject` (of the journal or the audit) names an account, not an org unit.
    pub fn names_account(subject: &str) -> bool {
        AccountKey::parse(subject).is_some()
    }

    /// The key's text (`sd:nisn:0012345678`), made by joining its parts: an import makes
    /// millions (the store's keys and indexes hold it), and made through the formatting
    /// machinery they cost a tenth of its CPU.
    pub fn text(&self) -> String {
        [
            self.jenjang.as_str(),
            ":",
            self.id_type.as_str(),
            ":",
            &self.id,
        ]
        .concat()
    }

    /// Parses `jenjang:id_type:id`; `None` when the text is not of that form.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().splitn(3, ':');
        let jenjang = Jenjang::parse(parts.next()?)?;
        let id_type = IdType::parse(parts.next()?)?;
        let id = parts.next()?;
        (id.len() == id_type.digits() && id.bytes().all(|b| b.is_ascii_digit())).then(|| {
            AccountKey {
                jenjang,
                id_type,
                id: id.to_owned(),
            }
        })
    }

    /// A 64-bit value that identifies the key exactly (the id has at most 16 digits, which
    /// fits in 54 bits, and its length is fixed by its type), so that an import can hold
    /// the keys of millions of rows in a small set.
    pub fn packed(&self) -> u64 {
        let number: u64 = self.id.parse().unwrap_or(u64::MAX >> 5);
        (number << 5) | ((self.jenjang as u64) << 2) | self.id_type as u64
    }

    /// The key a [`packed`](Self::packed) value stands for.
    pub fn from_packed(packed: u64) -> AccountKey {
        let id_type = IdType::ALL[(packed & 3) as usize];
        AccountKey {
            jenjang: Jenjang::ALL[((packed >> 2) & 7) as usize],
            id_type,
            id: format!("{:0width$}", packed >> 5, width = id_type.digits()),
        }
    }

    /// Orders packed keys as their text sorts (the order of the store), without building
    /// the text. Called millions of times by an import's sorts: the ranks of the names are
    /// worked out once.
    pub fn packed_text_order(packed: u64) -> (u8, u8, u64) {
        static RANKS: LazyLock<(Vec<u8>, Vec<u8>)> = LazyLock::new(|| {
            let rank =
                |name: &str, names: &[&str]| names.iter().filter(|n| **n < name).count() as u8;
            let jenjang: Vec<&str> = Jenjang::ALL.iter().map(|j| j.as_str()).collect();
            let id_type: Vec<&str> = IdType::ALL.iter().map(|t| t.as_str()).collect();
            (
                jenjang.iter().map(|j| rank(j, &jenjang)).collect(),
                id_type.iter().map(|t| rank(t, &id_type)).collect(),
            )
        });
        let (jenjang, id_type) = &*RANKS;
        (
            jenjang[((packed >> 2) & 7) as usize],
            id_type[(packed & 3) as usize],
            packed >> 5,
        )
    }
}

impl fmt::Display for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

/// What the account should look like in Google. Accounts are never deleted: a person who
/// leaves first retires (a grace period during which the account still works), then is
/// suspended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum DesiredState {
    Active,
    /// Left Dapodik (or the level) on `since`; suspended when the grace period ends.
    Retiring {
        since: Date,
    },
    /// Suspended on `since` for `reason` (terms of use, end of grace). Only an explicit
    /// reinstatement makes it active again.
    Suspended {
        reason: String,
        since: Date,
    },
}

impl DesiredState {
    /// The state's name, as `status` counts it.
    pub fn name(&self) -> &'static str {
        match self {
            DesiredState::Active => "active",
            DesiredState::Retiring { .. } => "retiring",
            DesiredState::Suspended { .. } => "suspended",
        }
    }
}

/// The link between a local account and its Google user, filled in by the reconciler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoogleLink {
    /// Google's immutable user id.
    pub id: String,
    /// Whether the user's suspension in Google was made by this daemon (so a scheduled run
    /// may lift it); a suspension made by someone else is only lifted when a person asks.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspended_by_us: bool,
    /// The licence SKU the user is known to hold (when licences are managed): set when
    /// an assignment lands or is found in Google.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<String>,
    /// When archiving freed the user's Education Fundamentals licence (Google makes it
    /// reusable within 24 hours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence_freed: Option<jiff::Timestamp>,
}

/// One account of the directory: the stored record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub jenjang: Jenjang,
    pub id_type: IdType,
    pub id: String,
    pub full_name: String,
    pub role: Role,
    /// The school (NPSN, 8 digits).
    pub npsn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_email: Option<String>,
    #[serde(flatten)]
    pub state: DesiredState,
    /// The address allocated to the account. Never changes silently: only a role change
    /// between groups moves it to another domain.
    pub email: String,
    /// Addresses the account held before a role change; Google keeps them as aliases, so
    /// they stay reserved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub former_emails: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google: Option<GoogleLink>,
}

impl Account {
    pub fn key(&self) -> AccountKey {
        AccountKey {
            jenjang: self.jenjang,
            id_type: self.id_type,
            id: self.id.clone(),
        }
    }
}

#[cfg(test)]
impl Account {
    /// An active student of SD 20100001, for tests.
    pub fn student(id: &str, full_name: &str, email: &str) -> Account {
        Account {
            jenjang: Jenjang::Sd,
            id_type: IdType::Nisn,
            id: id.into(),
            full_name: full_name.into(),
            role: Role::PesertaDidik,
            npsn: "20100001".into(),
            birth_date: None,
            personal_email: None,
            state: DesiredState::Active,
            email: email.into(),
            former_emails: vec![],
            google: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_round_trips_and_rejects_malformed_text() {
        let key = AccountKey::parse("sd:nisn:0012345678").unwrap();
        assert_eq!(key.to_string(), "sd:nisn:0012345678");
        assert_eq!(AccountKey::parse(" SD:NISN:0012345678 "), Some(key));
        assert_eq!(AccountKey::parse("sd:nisn:12345678"), None, "too short");
        assert_eq!(
            AccountKey::parse("sd:nik:0012345678"),
            None,
            "NIK has 16 digits"
        );
        assert_eq!(
            AccountKey::parse("tk:nisn:0012345678"),
            None,
            "unknown level"
        );
        assert_eq!(AccountKey::parse("0012345678"), None);
    }

    #[test]
    fn packed_keys_differ_whenever_keys_differ() {
        let keys = [
            "sd:nisn:0012345678",
            "smp:nisn:0012345678",
            "sd:nisn:0012345679",
            "sd:nik:3201234567890123",
            "sd:nuptk:3201234567890123",
            "slb:nuptk:9999999999999999",
        ];
        let packed: std::collections::HashSet<u64> = keys
            .iter()
            .map(|k| AccountKey::parse(k).unwrap().packed())
            .collect();
        assert_eq!(packed.len(), keys.len());
    }

    #[test]
    fn packed_keys_unpack_and_sort_as_their_text() {
        let mut keys: Vec<AccountKey> = Jenjang::ALL
            .iter()
            .flat_map(|&jenjang| {
                IdType::ALL.iter().flat_map(move |&id_type| {
                    [1u64, 42, 10u64.pow(id_type.digits() as u32) - 1].map(|n| AccountKey {
                        jenjang,
                        id_type,
                        id: format!("{n:0width$}", width = id_type.digits()),
                    })
                })
            })
            .collect();
        for key in &keys {
            assert_eq!(&AccountKey::from_packed(key.packed()), key);
        }
        let mut by_packed = keys.clone();
        by_packed.sort_by_key(|k| AccountKey::packed_text_order(k.packed()));
        keys.sort_by_key(ToString::to_string);
        assert_eq!(by_packed, keys);
    }

    #[test]
    fn admin_roles_outrank_teachers_and_teachers_outrank_students() {
        assert!(Role::Pendidik.precedence() > Role::PesertaDidik.precedence());
        for admin in [
            Role::TenagaKependidikan,
            Role::Operator,
            Role::KepalaSekolah,
        ] {
            assert_eq!(admin.group(), RoleGroup::Admin);
            assert!(admin.precedence() > Role::Pendidik.precedence());
        }
    }

    #[test]
    fn account_json_names_the_state() {
        let account = Account {
            jenjang: Jenjang::Sd,
            id_type: IdType::Nisn,
            id: "0012345678".into(),
            full_name: "Siti Aminah".into(),
            role: Role::PesertaDidik,
            npsn: "20100001".into(),
            birth_date: None,
            personal_email: None,
            state: DesiredState::Retiring {
                since: jiff::civil::date(2026, 7, 1),
            },
            email: "siti.aminah@sd.belajar.id".into(),
            former_emails: vec![],
            google: None,
        };
        let json = serde_json::to_value(&account).unwrap();
        assert_eq!(json["state"], "retiring");
        assert_eq!(json["since"], "2026-07-01");
        let back: Account = serde_json::from_value(json).unwrap();
        assert_eq!(back, account);
    }
}
