//! The sheet a school operator hands out: a CSV for a spreadsheet, or a printable A4 page
//! of cut-out cards. Its words are for school people, in Bahasa Indonesia. Pure: rows
//! in, bytes out.

use super::{Line, Row};
use crate::directory::model::{Role, RoleGroup};
use crate::display::html as escape;
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Where people sign in to their belajar.id account (a Google account).
pub const SIGN_IN_AT: &str = "https://accounts.google.com";

/// What a sheet is for: the school, the group, when it was made.
pub struct Heading {
    pub npsn: String,
    pub group: Option<RoleGroup>,
    pub made: Timestamp,
    pub time_zone: TimeZone,
}

/// The rows in the order a teacher reads them: by name, then by account.
pub fn sort(rows: &mut [Row]) {
    rows.sort_by(|a, b| {
        let name = |r: &Row| r.account.full_name.to_lowercase();
        name(a)
            .cmp(&name(b))
            .then_with(|| a.account.key().cmp(&b.account.key()))
    });
}

/// The role as school people call it.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::PesertaDidik => "Peserta didik",
        Role::Pendidik => "Pendidik (guru)",
        Role::TenagaKependidikan => "Tenaga kependidikan",
        Role::Operator => "Operator sekolah",
        Role::KepalaSekolah => "Kepala sekolah",
    }
}

/// The group as the sheet's title names it.
fn group_name(group: Option<RoleGroup>) -> &'static str {
    match group {
        None => "semua peran",
        Some(RoleGroup::Student) => "peserta didik",
        Some(RoleGroup::Teacher) => "pendidik",
        Some(RoleGroup::Admin) => "tenaga kependidikan dan operator",
    }
}

/// `2 Desember 2026`.
fn date(at: Timestamp, zone: &TimeZone) -> String {
    crate::display::tanggal_singkat(at.to_zoned(zone.clone()).date())
}

/// `2 Desember 2026 pukul 11.05` (the Indonesian way of writing the time).
fn date_time(at: Timestamp, zone: &TimeZone) -> String {
    let zoned = at.to_zoned(zone.clone());
    format!(
        "{} pukul {:02}.{:02}",
        date(at, zone),
        zoned.hour(),
        zoned.minute()
    )
}

/// What the row's note says, and its password when it has a new one.
fn note<'a>(line: &'a Line, zone: &TimeZone) -> (String, &'a str) {
    match line {
        Line::Issued(secret) => (
            "Kata sandi pertama baru: wajib diganti saat pertama kali masuk".into(),
            secret.expose(),
        ),
        Line::SignedIn(at) => (
            format!(
                "Sudah aktif (terakhir masuk {}); kata sandi tidak diubah",
                date(*at, zone)
            ),
            "",
        ),
        Line::IssuedBefore(at) => (
            format!(
                "Kata sandi pertama sudah diberikan pada {} dan belum pernah dipakai; minta kata sandi baru ke operator bila hilang",
                date(*at, zone)
            ),
            "",
        ),
        Line::NotInGoogle => (
            "Akun belum dibuat di Google; tunggu sinkronisasi berikutnya".into(),
            "",
        ),
        Line::Suspended => ("Akun ditangguhkan; hubungi helpdesk belajar.id".into(), ""),
        Line::Held(_) => (
            "Perlu diperiksa helpdesk belajar.id sebelum kata sandi diberikan".into(),
            "",
        ),
        Line::Failed(_) => ("gagal, ulangi".into(), ""),
    }
}

/// A spreadsheet would run a cell that starts like a formula: such text is quoted.
fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// The CSV sheet (UTF-8 with a byte-order mark, which spreadsheets need to read names
/// right): one row per person.
pub fn csv(heading: &Heading, rows: &[Row]) -> Vec<u8> {
    let mut out = "\u{feff}".as_bytes().to_vec();
    {
        let mut writer = csv::Writer::from_writer(&mut out);
        let header = [
            "Nama",
            "Jenis ID",
            "Nomor ID",
            "Jenjang",
            "Peran",
            "NPSN",
            "Alamat belajar.id",
            "Kata sandi pertama",
            "Keterangan",
            "Masuk di",
        ];
        writer.write_record(header).expect("writes to memory");
        for row in rows {
            let a = &row.account;
            let (note, password) = note(&row.line, &heading.time_zone);
            writer
                .write_record([
                    cell(&a.full_name).as_str(),
                    &a.id_type.as_str().to_uppercase(),
                    &a.id,
                    &a.jenjang.as_str().to_uppercase(),
                    role_name(a.role),
                    &a.npsn,
                    &a.email,
                    password,
                    &note,
                    SIGN_IN_AT,
                ])
                .expect("writes to memory");
        }
        writer.flush().expect("writes to memory");
    }
    out
}

const STYLE: &str = r#"
@page { size: A4; margin: 8mm; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; margin: 0; color: #000; }
header { padding: 0 2mm 3mm; }
header h1 { font-size: 15pt; margin: 0 0 1mm; }
header p { font-size: 9.5pt; margin: 0; }
.cards { display: grid; grid-template-columns: 1fr 1fr; }
.card { border: 1px dashed #777; padding: 3mm 4mm; height: 64mm; overflow: hidden;
        break-inside: avoid; page-break-inside: avoid; position: relative; }
.top { display: flex; justify-content: space-between; font-size: 8.5pt; color: #333; }
.brand { font-weight: bold; color: #0b57d0; }
.name { font-size: 14pt; font-weight: bold; margin: 1mm 0 0.5mm; line-height: 1.15; }
.id { font-size: 8.5pt; color: #333; margin-bottom: 1mm; }
.label { font-size: 8.5pt; color: #333; margin-top: 0.8mm; }
.email { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 11pt; word-break: break-all; }
.password { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 18pt;
            letter-spacing: 1.5mm; border: 0.6mm solid #000; border-radius: 1.5mm;
            padding: 0.5mm 2.5mm; display: inline-block; margin-top: 0.5mm; }
ol { font-size: 8.5pt; margin: 1.5mm 0 0; padding-left: 4.5mm; line-height: 1.25; }
.others { break-before: page; page-break-before: always; padding: 2mm; }
.others h2 { font-size: 13pt; }
table { border-collapse: collapse; width: 100%; font-size: 9pt; }
th, td { border: 1px solid #999; padding: 1mm 2mm; text-align: left; vertical-align: top; }
@media screen { body { background: #eee; } main { background: #fff; width: 210mm; margin: 0 auto; padding: 8mm; } }
"#;

/// The printable sheet: one cut-out card per new password (name, address, first password
/// and how to sign in), eight to an A4 page, then a table of everyone else with why they
/// have no card. Self-contained: no script, no fetched font or image.
pub fn html(heading: &Heading, rows: &[Row]) -> String {
    let zone = &heading.time_zone;
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"id\">\n<head>\n<meta charset=\"utf-8\">\n<title>Akun belajar.id — NPSN {npsn}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n<header>\n<h1>Akun belajar.id — NPSN {npsn} ({group})</h1>\n<p>Dibuat {made}. Gunting tiap kartu di garis putus-putus dan berikan kepada pemiliknya saja. Kata sandi pertama hanya berlaku sampai pemilik membuat kata sandinya sendiri.</p>\n</header>\n<section class=\"cards\">\n",
        npsn = escape(&heading.npsn),
        group = group_name(heading.group),
        made = date_time(heading.made, zone),
    );
    for row in rows {
        let Line::Issued(secret) = &row.line else {
            continue;
        };
        let a = &row.account;
        page.push_str(&format!(
            "<div class=\"card\">\n<div class=\"top\"><span class=\"brand\">Akun belajar.id</span><span>{jenjang} · {role}</span></div>\n<div class=\"name\">{name}</div>\n<div class=\"id\">{id_type} {id} · NPSN {npsn}</div>\n<div class=\"label\">Alamat email</div>\n<div class=\"email\">{email}</div>\n<div class=\"label\">Kata sandi pertama</div>\n<div class=\"password\">{password}</div>\n<ol><li>Buka <b>accounts.google.com</b> di peramban (browser).</li><li>Ketik alamat email di atas, tekan <b>Berikutnya</b>.</li><li>Ketik kata sandi pertama, tekan <b>Berikutnya</b>.</li><li>Buat kata sandi baru milikmu sendiri. Jangan beri tahu siapa pun.</li></ol>\n</div>\n",
            jenjang = a.jenjang.as_str().to_uppercase(),
            role = role_name(a.role),
            name = escape(&a.full_name),
            id_type = a.id_type.as_str().to_uppercase(),
            id = escape(&a.id),
            npsn = escape(&a.npsn),
            email = escape(&a.email),
            password = escape(secret.expose()),
        ));
    }
    page.push_str("</section>\n");
    let others: Vec<&Row> = rows
        .iter()
        .filter(|r| !matches!(r.line, Line::Issued(_)))
        .collect();
    if !others.is_empty() {
        page.push_str("<section class=\"others\">\n<h2>Tanpa kartu</h2>\n<table>\n<tr><th>Nama</th><th>Alamat belajar.id</th><th>Keterangan</th></tr>\n");
        for row in others {
            let (note, _) = note(&row.line, zone);
            page.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                escape(&row.account.full_name),
                escape(&row.account.email),
                escape(&note)
            ));
        }
        page.push_str("</table>\n</section>\n");
    }
    page.push_str("</main>\n</body>\n</html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::model::Account;
    use crate::password;

    fn row(id: &str, name: &str, line: Line) -> Row {
        let email = format!("{}@sd.belajar.id", name.to_lowercase().replace(' ', "."));
        Row {
            account: Account::student(id, name, &email),
            line,
        }
    }

    fn heading() -> Heading {
        Heading {
            npsn: "20100001".into(),
            group: Some(RoleGroup::Student),
            made: "2026-12-02T04:05:00Z".parse().unwrap(),
            time_zone: TimeZone::get("Asia/Jakarta").unwrap_or(TimeZone::UTC),
        }
    }

    #[test]
    fn csv_rows_are_sorted_by_name_and_only_new_passwords_are_written() {
        let secret = password::generate();
        let mut rows = vec![
            row("0000000002", "Yusuf", Line::Failed("503".into())),
            row("0000000001", "agus Salim", Line::Issued(secret.clone())),
            row(
                "0000000003",
                "=cmd Evil",
                Line::SignedIn("2026-07-14T01:00:00Z".parse().unwrap()),
            ),
        ];
        sort(&mut rows);
        let text = String::from_utf8(csv(&heading(), &rows)).unwrap();
        let text = text.strip_prefix('\u{feff}').expect("a byte-order mark");
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        let names: Vec<&str> = records.iter().map(|r| &r[0]).collect();
        assert_eq!(names, ["'=cmd Evil", "agus Salim", "Yusuf"]);
        assert_eq!(&records[1][7], secret.expose());
        assert_eq!(&records[1][1], "NISN");
        assert_eq!(&records[1][9], SIGN_IN_AT);
        assert_eq!(&records[0][7], "", "a signed-in account gets no password");
        assert!(records[0][8].contains("Sudah aktif"), "{}", &records[0][8]);
        assert_eq!(&records[2][7], "");
        assert_eq!(&records[2][8], "gagal, ulangi");
        assert_eq!(
            text.matches(secret.expose()).count(),
            1,
            "the password appears once"
        );
    }

    #[test]
    fn html_has_one_card_per_new_password_and_escapes_names() {
        let secret = password::generate();
        let rows = vec![
            row(
                "0000000001",
                "Siti <b>Aminah</b> & co",
                Line::Issued(secret.clone()),
            ),
            row("0000000002", "Yusuf", Line::NotInGoogle),
        ];
        let page = html(&heading(), &rows);
        assert_eq!(page.matches("class=\"card\"").count(), 1);
        assert!(page.contains("Siti &lt;b&gt;Aminah&lt;/b&gt; &amp; co"));
        assert!(!page.contains("<b>Aminah"));
        assert!(page.contains(&format!(
            "<div class=\"password\">{}</div>",
            secret.expose()
        )));
        assert!(page.contains("Akun belum dibuat di Google"));
        assert!(page.contains("2 Desember 2026"));
        assert!(!page.contains("<script"), "self-contained, nothing to run");
        assert!(
            !page.contains("http://") && !page.contains("src="),
            "nothing fetched"
        );
    }
}
