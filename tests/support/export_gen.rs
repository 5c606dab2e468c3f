//! A generator of realistic Dapodik exports for tests, benchmarks and the demo data:
//! schools of every level, Indonesian names (with single names, accents, apostrophes and
//! academic degrees), teachers who teach on two levels (two accounts), staff listed twice
//! on one level with two roles (one account), and a few leavers. Deterministic per seed.

#![allow(dead_code)] // each test binary uses a part of it

use belajar_sync::import::source::COLUMNS;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::path::Path;

const GIVEN: &[&str] = &[
    "Muhammad",
    "Ahmad",
    "Siti",
    "Nur",
    "Dewi",
    "Putri",
    "Rizki",
    "Budi",
    "Agus",
    "Sri",
    "Fajar",
    "Aditya",
    "Ayu",
    "Indah",
    "Rina",
    "Andi",
    "Dian",
    "Eka",
    "Wahyu",
    "Yusuf",
    "Nurul",
    "Fitri",
    "Hendra",
    "Rahmat",
    "Intan",
    "Bayu",
    "Citra",
    "Gilang",
    "Nabila",
    "Aisyah",
    "Rafi",
    "Zahra",
    "Kevin",
    "Nadia",
    "Firda",
    "Jasmiati",
    "Désirée",
    "Nur'aini",
    "I Gede",
    "Ni Made",
    "Kadek",
    "Komang",
    "Putu",
    "Yohanes",
    "Maria",
    "Theresia",
];
const FAMILY: &[&str] = &[
    "Pratama",
    "Saputra",
    "Wijaya",
    "Kusuma",
    "Hidayat",
    "Nugroho",
    "Santoso",
    "Lestari",
    "Sari",
    "Rahmawati",
    "Permana",
    "Setiawan",
    "Hasibuan",
    "Siregar",
    "Nasution",
    "Lubis",
    "Simanjuntak",
    "Sitompul",
    "Manurung",
    "Tanjung",
    "Harahap",
    "Wibowo",
    "Susanto",
    "Ramadhan",
    "Utami",
    "Purnamasari",
    "Nursina",
    "Fauzi",
    "Syahputra",
    "Daulay",
];
const MONONYMS: &[&str] = &[
    "Sukarno", "Suharto", "Jasmiati", "Sutrisno", "Mulyadi", "Suparman", "Ngatini", "Paijo",
    "Sumarni", "Tukiyem", "Wagiman", "Karsini",
];
const DEGREES: &[&str] = &[
    ", S.Pd.",
    ", S.Pd., M.Pd.",
    ", S.Ag.",
    ", S.Kom.",
    " S.Pd",
    "",
];
const LEVELS: &[(&str, u32)] = &[
    ("paud", 5),
    ("sd", 45),
    ("smp", 20),
    ("sma", 12),
    ("smk", 12),
    ("slb", 6),
];

/// Counts of what was generated, for assertions.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Generated {
    pub rows: u64,
    /// Distinct (person, level) pairs: the accounts an import should hold.
    pub accounts: u64,
    /// Rows that repeat a person on the same level (merged by the import).
    pub repeats: u64,
    /// People with accounts on two levels.
    pub two_levels: u64,
    pub schools: u64,
}

pub struct ExportGen {
    rng: SmallRng,
    next_school: u32,
    next_student: u64,
    next_staff: u64,
}

impl ExportGen {
    pub fn new(seed: u64) -> Self {
        ExportGen {
            rng: SmallRng::seed_from_u64(seed),
            next_school: 0,
            next_student: 0,
            next_staff: 0,
        }
    }

    fn name(&mut self, adult: bool) -> String {
        let r = &mut self.rng;
        let mut name = if r.random_bool(0.12) {
            MONONYMS[r.random_range(0..MONONYMS.len())].to_owned()
        } else {
            let given = GIVEN[r.random_range(0..GIVEN.len())];
            let family = FAMILY[r.random_range(0..FAMILY.len())];
            if r.random_bool(0.3) {
                let middle = GIVEN[r.random_range(0..GIVEN.len())];
                format!("{given} {middle} {family}")
            } else {
                format!("{given} {family}")
            }
        };
        if adult && r.random_bool(0.4) {
            name.push_str(DEGREES[r.random_range(0..DEGREES.len())]);
        }
        name
    }

    fn level(&mut self) -> &'static str {
        let total: u32 = LEVELS.iter().map(|(_, w)| w).sum();
        let mut pick = self.rng.random_range(0..total);
        for (level, weight) in LEVELS {
            if pick < *weight {
                return level;
            }
            pick -= weight;
        }
        "sd"
    }

    fn staff_id(&mut self) -> (&'static str, String) {
        self.next_staff += 1;
        let id_type = if self.rng.random_bool(0.3) {
            "nik"
        } else {
            "nuptk"
        };
        (
            id_type,
            format!("{:016}", 3_200_000_000_000_000u64 + self.next_staff * 7919),
        )
    }

    /// Writes an export of about `rows` rows (whole schools) as CSV.
    pub fn write_csv(&mut self, path: &Path, rows: u64) -> Generated {
        let file = std::fs::File::create(path).expect("create export");
        let mut out = csv::Writer::from_writer(std::io::BufWriter::with_capacity(1 << 20, file));
        out.write_record(COLUMNS).unwrap();
        let mut made = Generated::default();
        // Teachers waiting to appear on a second level at a later school.
        let mut travelling: Vec<(&'static str, String, String, &'static str)> = Vec::new();
        while made.rows < rows {
            self.next_school += 1;
            made.schools += 1;
            let npsn = format!("{:08}", 20_100_000 + self.next_school);
            let level = self.level();
            let students = self.rng.random_range(150..400);
            for _ in 0..students {
                self.next_student += 1;
                let nisn = format!("{:010}", 100_000 + self.next_student * 13);
                let name = self.name(false);
                let status = if self.rng.random_bool(0.01) {
                    "keluar"
                } else {
                    "aktif"
                };
                let years = match level {
                    "paud" => 2020..2023,
                    "sd" => 2014..2020,
                    "smp" => 2011..2015,
                    "sma" | "smk" => 2008..2012,
                    _ => 2008..2020,
                };
                let birth = format!(
                    "{}-{:02}-{:02}",
                    self.rng.random_range(years),
                    self.rng.random_range(1..13),
                    self.rng.random_range(1..29)
                );
                emit(
                    &mut out,
                    &mut made,
                    [
                        "nisn",
                        &nisn,
                        &name,
                        "peserta_didik",
                        level,
                        &npsn,
                        status,
                        &birth,
                        "",
                    ],
                );
                made.accounts += 1;
            }
            let staff = students / 15 + 2;
            for i in 0..staff {
                let (id_type, id) = self.staff_id();
                let name = self.name(true);
                let email = format!("{}{}@gmail.com", email_local(&name), self.next_staff);
                let role = match i {
                    0 => "kepala_sekolah",
                    1 => "operator",
                    2 | 3 => "tenaga_kependidikan",
                    _ => "pendidik",
                };
                emit(
                    &mut out,
                    &mut made,
                    [id_type, &id, &name, role, level, &npsn, "aktif", "", &email],
                );
                made.accounts += 1;
                if role == "pendidik" && self.rng.random_bool(0.02) {
                    // Also the school's operator: one account, the admin role wins.
                    emit(
                        &mut out,
                        &mut made,
                        [
                            id_type, &id, &name, "operator", level, &npsn, "aktif", "", &email,
                        ],
                    );
                    made.repeats += 1;
                }
                if role == "pendidik" && self.rng.random_bool(0.03) {
                    travelling.push((id_type, id, name, level));
                }
            }
            // A teacher from an earlier school who also teaches here, on another level.
            if let Some(pos) = travelling.iter().position(|t| t.3 != level) {
                let (id_type, id, name, _) = travelling.swap_remove(pos);
                emit(
                    &mut out,
                    &mut made,
                    [
                        id_type, &id, &name, "pendidik", level, &npsn, "aktif", "", "",
                    ],
                );
                made.accounts += 1;
                made.two_levels += 1;
            }
        }
        out.flush().unwrap();
        made
    }
}

impl ExportGen {
    /// Writes an export of `rows` rows shaped as Dapodik's national exports come: rows in
    /// id order, each school's rows scattered through the file (a school is drawn for
    /// every row), and full names drawn from a skewed distribution (a few names very
    /// common: about 19,000 distinct full names, the commonest some 3 % of all rows). One
    /// row in fifteen is a teacher.
    pub fn write_csv_shaped_like_dapodik(&mut self, path: &Path, rows: u64) -> Generated {
        let file = std::fs::File::create(path).expect("create export");
        let mut out = csv::Writer::from_writer(std::io::BufWriter::with_capacity(1 << 20, file));
        out.write_record(COLUMNS).unwrap();
        let mut made = Generated::default();
        let schools = (rows / 250).max(1) as u32;
        let levels: Vec<&'static str> = (0..schools).map(|_| self.level()).collect();
        // Full names by rank; rank k drawn with weight 1 / (k + 3).
        let names: Vec<String> = (0..19_000)
            .map(|k| {
                let given = GIVEN[k % GIVEN.len()];
                let family = FAMILY[(k / GIVEN.len()) % FAMILY.len()];
                match k / (GIVEN.len() * FAMILY.len()) {
                    0 => format!("{given} {family}"),
                    n => format!("{given} {} {family}", GIVEN[(k + n) % GIVEN.len()]),
                }
            })
            .collect();
        let mut cumulative = Vec::with_capacity(names.len());
        let mut total = 0.0;
        for k in 0..names.len() {
            total += 1.0 / (k as f64 + 3.0);
            cumulative.push(total);
        }
        for n in 0..rows {
            let school = self.rng.random_range(0..schools);
            let (level, npsn) = (
                levels[school as usize],
                format!("{:08}", 20_100_001 + school),
            );
            let drawn = self.rng.random_range(0.0..total);
            let name = &names[cumulative
                .partition_point(|c| *c < drawn)
                .min(names.len() - 1)];
            if n % 15 == 14 {
                let id = format!("{:016}", 3_200_000_000_000_000u64 + n);
                emit(
                    &mut out,
                    &mut made,
                    [
                        "nuptk", &id, name, "pendidik", level, &npsn, "aktif", "", "",
                    ],
                );
            } else {
                let nisn = format!("{:010}", 100_000 + n);
                emit(
                    &mut out,
                    &mut made,
                    [
                        "nisn",
                        &nisn,
                        name,
                        "peserta_didik",
                        level,
                        &npsn,
                        "aktif",
                        "",
                        "",
                    ],
                );
            }
            made.accounts += 1;
        }
        made.schools = u64::from(schools);
        out.flush().unwrap();
        made
    }
}

fn emit<W: Write>(out: &mut csv::Writer<W>, made: &mut Generated, record: [&str; 9]) {
    out.write_record(record).unwrap();
    made.rows += 1;
}

fn email_local(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphabetic)
        .take(12)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Writes `text` to `path`, for small hand-made exports.
pub fn write(path: &Path, text: &str) {
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("write export");
}
