//! Checks a raw row and turns it into a typed one, listing every cell that is wrong.

use super::Invalid;
use super::source::{RawRow, Span};
use crate::directory::model::{AccountKey, IdType, Jenjang, Role, RowStatus};
use jiff::civil::Date;

/// A valid row of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: u64,
    /// Where the row lies in its file.
    pub span: Span,
    pub key: AccountKey,
    pub full_name: String,
    pub role: Role,
    pub npsn: String,
    pub status: RowStatus,
    /// `None`: the file has no such column, leave the stored value alone;
    /// `Some(None)`: the cell is empty, clear it.
    pub birth_date: Option<Option<Date>>,
    pub personal_email: Option<Option<String>>,
}

/// Longest name accepted: Google's display name limit.
const MAX_NAME_CHARS: usize = 256;

/// Earliest birth date that is not a typo.
const EARLIEST_BIRTH: Date = jiff::civil::date(1900, 1, 1);

/// Checks every cell of `raw`; `today` bounds birth dates.
pub fn validate(raw: &RawRow, today: Date) -> Result<Row, Vec<Invalid>> {
    let mut cells = Cells {
        raw,
        errors: Vec::new(),
    };
    let id_type_text = cells.required("id_type");
    let id_type = cells.check(
        "id_type",
        id_type_text,
        parsed(IdType::parse, IdType::names()),
    );
    let id = cells.required("id");
    cells.check("id", id, |id| id_shape(id_type, id));
    let name_text = raw.cell("full_name").unwrap_or_default();
    let full_name = cells.check("full_name", name_text, full_name);
    let role_text = cells.required("role");
    let role = cells.check("role", role_text, parsed(Role::parse, Role::names()));
    if let (Some(role), Some(id_type)) = (role, id_type) {
        cells.check("id_type", id_type_text, |_| role_fits_id(role, id_type));
    }
    let jenjang_text = cells.required("jenjang");
    let jenjang = cells.check(
        "jenjang",
        jenjang_text,
        parsed(Jenjang::parse, Jenjang::names()),
    );
    let npsn = cells.required("npsn");
    cells.check("npsn", npsn, npsn_shape);
    let status_text = raw.cell("status").map(str::trim).unwrap_or_default();
    let status = cells.check("status", status_text, status);
    let birth_date = cells.optional("birth_date", |text| birth_date(text, today));
    let personal_email = cells.optional("personal_email", personal_email);
    match (id_type, role, jenjang, status, full_name) {
        (Some(id_type), Some(role), Some(jenjang), Some(status), Some(full_name))
            if cells.errors.is_empty() =>
        {
            Ok(Row {
                line: raw.line,
                span: raw.span,
                key: AccountKey {
                    jenjang,
                    id_type,
                    id: id.to_owned(),
                },
                full_name,
                role,
                npsn: npsn.to_owned(),
                status,
                birth_date,
                personal_email,
            })
        }
        _ => Err(cells.errors),
    }
}

/// A row's cells, and what is wrong with them so far.
struct Cells<'r> {
    raw: &'r RawRow,
    errors: Vec<Invalid>,
}

impl<'r> Cells<'r> {
    /// A required cell, trimmed (empty when absent: its check says so).
    fn required(&self, column: &str) -> &'r str {
        self.raw.cell(column).map(str::trim).unwrap_or_default()
    }

    /// The value `check` makes of `text`, or `None` with why noted against `column`.
    fn check<T>(
        &mut self,
        column: &str,
        text: &str,
        check: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match check(text) {
            Ok(value) => Some(value),
            Err(reason) => {
                self.errors
                    .push(Invalid::new(self.raw.line, column, text, &reason));
                None
            }
        }
    }

    /// An optional column: `None` when the file has none, `Some(None)` for an empty cell,
    /// else what `check` makes of it.
    fn optional<T>(
        &mut self,
        column: &str,
        check: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<Option<T>> {
        let text = self.raw.cell(column)?.trim();
        if text.is_empty() {
            return Some(None);
        }
        Some(self.check(column, text, check))
    }
}

/// A check that `parse` knows the text, naming what it would have known.
fn parsed<T>(
    parse: impl FnOnce(&str) -> Option<T>,
    names: String,
) -> impl FnOnce(&str) -> Result<T, String> {
    move |text| parse(text).ok_or_else(|| format!("expected one of {names}"))
}

fn id_shape(id_type: Option<IdType>, id: &str) -> Result<(), String> {
    match id_type {
        Some(t) if id.len() != t.digits() || !id.bytes().all(|b| b.is_ascii_digit()) => {
            let what = t.as_str().to_ascii_uppercase();
            Err(format!("{what} must be {} digits", t.digits()))
        }
        None if id.is_empty() => Err("is empty".into()),
        _ => Ok(()),
    }
}

/// The name with its spaces made single.
fn full_name(text: &str) -> Result<String, String> {
    let name = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        Err("is empty".into())
    } else if !name.chars().any(char::is_alphabetic) {
        Err("has no letter".into())
    } else if name.chars().count() > MAX_NAME_CHARS {
        Err(format!("is longer than {MAX_NAME_CHARS} characters"))
    } else {
        Ok(name)
    }
}

/// Whether the kind of identifier suits the role.
fn role_fits_id(role: Role, id_type: IdType) -> Result<(), String> {
    match (role, id_type) {
        (Role::PesertaDidik, IdType::Nuptk) => Err(
            "NUPTK identifies teachers and staff; a peserta_didik is identified by NISN or NIK"
                .into(),
        ),
        (r, IdType::Nisn) if r != Role::PesertaDidik => Err(format!(
            "NISN identifies students; a {r} is identified by NUPTK or NIK"
        )),
        _ => Ok(()),
    }
}

fn npsn_shape(npsn: &str) -> Result<(), String> {
    if npsn.len() == 8 && npsn.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err("NPSN must be 8 digits".into())
    }
}

/// `aktif` when empty.
fn status(text: &str) -> Result<RowStatus, String> {
    if text.is_empty() {
        return Ok(RowStatus::Aktif);
    }
    RowStatus::parse(text)
        .ok_or_else(|| format!("expected {} (or empty for aktif)", RowStatus::names()))
}

fn birth_date(text: &str, today: Date) -> Result<Date, String> {
    match text.parse::<Date>() {
        Ok(date) if date < EARLIEST_BIRTH || date > today => {
            Err(format!("must be between {EARLIEST_BIRTH} and today"))
        }
        Ok(date) => Ok(date),
        Err(_) => Err("expected a date as YYYY-MM-DD".into()),
    }
}

fn personal_email(text: &str) -> Result<String, String> {
    if looks_like_email(text) {
        Ok(text.to_owned())
    } else {
        Err("expected an address like nama@contoh.id".into())
    }
}

/// The identity of an invalid row where its cells give it: the key (so a snapshot does not
/// retire a person whose row was merely mistyped) and the school.
pub fn partial_identity(raw: &RawRow) -> (Option<AccountKey>, Option<String>) {
    let key = || {
        let id_type = IdType::parse(raw.cell("id_type")?)?;
        let jenjang = Jenjang::parse(raw.cell("jenjang")?)?;
        AccountKey::parse(&format!("{jenjang}:{id_type}:{}", raw.cell("id")?.trim()))
    };
    let npsn = raw
        .cell("npsn")
        .map(str::trim)
        .filter(|n| n.len() == 8 && n.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned);
    (key(), npsn)
}

/// One `@`, something before it, a dotted domain after it, no spaces.
fn looks_like_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !text.contains(char::is_whitespace)
        && !domain.contains('@')
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| !label.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::source::COLUMNS;

    const TODAY: Date = jiff::civil::date(2026, 11, 28);

    fn raw(cells: &[(&str, &str)]) -> RawRow {
        let mut row = RawRow::new(7, Span::default(), 0);
        let defaults = [
            ("id_type", "nisn"),
            ("id", "0012345678"),
            ("full_name", "Siti  Aminah"),
            ("role", "peserta_didik"),
            ("jenjang", "sd"),
            ("npsn", "20100001"),
        ];
        for (column, value) in defaults.iter().chain(cells) {
            let i = COLUMNS.iter().position(|c| c == column).unwrap();
            row.set(i, value);
        }
        row
    }

    fn errors(cells: &[(&str, &str)]) -> Vec<String> {
        validate(&raw(cells), TODAY)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_good_row_is_typed_and_tidied() {
        let row = validate(
            &raw(&[("status", " Keluar "), ("birth_date", "2015-03-01")]),
            TODAY,
        )
        .unwrap();
        assert_eq!(row.key.to_string(), "sd:nisn:0012345678");
        assert_eq!(row.full_name, "Siti Aminah");
        assert_eq!(row.status, RowStatus::Keluar);
        assert_eq!(row.birth_date, Some(Some(jiff::civil::date(2015, 3, 1))));
        assert_eq!(row.personal_email, None, "absent column");
    }

    #[test]
    fn every_wrong_cell_is_listed_with_line_column_value_and_reason() {
        assert_eq!(
            errors(&[("id", "12345"), ("npsn", "2010"), ("jenjang", "tk")]),
            [
                "line 7: id \"12345\": NISN must be 10 digits",
                "line 7: jenjang \"tk\": expected one of paud, sd, smp, sma, smk, slb",
                "line 7: npsn \"2010\": NPSN must be 8 digits",
            ]
        );
    }

    #[test]
    fn identifier_must_fit_the_role() {
        assert_eq!(
            errors(&[("role", "pendidik")]),
            [
                "line 7: id_type \"nisn\": NISN identifies students; a pendidik is identified by NUPTK or NIK"
            ]
        );
        let teacher = [
            ("role", "pendidik"),
            ("id_type", "nuptk"),
            ("id", "1234567890123456"),
        ];
        assert!(validate(&raw(&teacher), TODAY).is_ok());
    }

    #[test]
    fn names_dates_and_emails_are_checked() {
        assert_eq!(
            errors(&[("full_name", "  ")]),
            ["line 7: full_name \"  \": is empty"]
        );
        assert_eq!(
            errors(&[("full_name", "123")]),
            ["line 7: full_name \"123\": has no letter"]
        );
        assert_eq!(
            errors(&[("birth_date", "01-02-2015")]),
            ["line 7: birth_date \"01-02-2015\": expected a date as YYYY-MM-DD"]
        );
        assert_eq!(
            errors(&[("birth_date", "2030-01-01")]),
            ["line 7: birth_date \"2030-01-01\": must be between 1900-01-01 and today"]
        );
        assert_eq!(
            errors(&[("personal_email", "siti at gmail")]),
            ["line 7: personal_email \"siti at gmail\": expected an address like nama@contoh.id"]
        );
        let cleared =
            validate(&raw(&[("personal_email", ""), ("birth_date", " ")]), TODAY).unwrap();
        assert_eq!(
            (cleared.birth_date, cleared.personal_email),
            (Some(None), Some(None))
        );
    }

    #[test]
    fn invalid_rows_still_give_what_identity_they_can() {
        let (key, npsn) = partial_identity(&raw(&[("full_name", "")]));
        assert_eq!(key.unwrap().to_string(), "sd:nisn:0012345678");
        assert_eq!(npsn.as_deref(), Some("20100001"));
        let (key, npsn) = partial_identity(&raw(&[("id", "x"), ("npsn", "1")]));
        assert_eq!((key, npsn), (None, None));
    }
}
