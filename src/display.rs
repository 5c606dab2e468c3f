//! How things are shown to people: times in their time zone to the second, durations and
//! counts in words with the right plural, and dates in Bahasa Indonesia for the notices.
//! Pure, apart from the time zone chosen once at start-up (`[display] time_zone`).

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use std::sync::OnceLock;

static ZONE: OnceLock<TimeZone> = OnceLock::new();

/// Chooses the time zone times are shown in (the first choice holds: one per process).
pub fn set_zone(zone: TimeZone) {
    let _ = ZONE.set(zone);
}

fn zone() -> &'static TimeZone {
    ZONE.get_or_init(TimeZone::system)
}

/// `2026-12-03 21:15:03 WIB`: local time, to the second, with the zone's abbreviation.
pub fn time(at: Timestamp) -> String {
    time_in(at, zone())
}

/// `14:05 WIB`: the hour and minute of `at`, local time, for people.
pub fn pukul(at: Timestamp) -> String {
    at.to_zoned(zone().clone()).strftime("%H:%M %Z").to_string()
}

fn time_in(at: Timestamp, zone: &TimeZone) -> String {
    at.to_zoned(zone.clone())
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// `2026-12-03T14:15:03Z`: UTC to the second, for files read by tools.
pub fn iso(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `1 account`, `3 accounts`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A duration in its two largest units: `3 days 4 hours`, `12 minutes`, `45 seconds`.
pub fn duration(d: SignedDuration) -> String {
    let secs = d.as_secs().unsigned_abs();
    let units = [
        (86_400, "day", "days"),
        (3_600, "hour", "hours"),
        (60, "minute", "minutes"),
        (1, "second", "seconds"),
    ];
    let mut parts = Vec::new();
    let mut left = secs;
    for (size, one, many) in units {
        if left >= size || (parts.is_empty() && size == 1) {
            parts.push(count(left / size, one, many));
            left %= size;
        }
        if parts.len() == 2 || (!parts.is_empty() && left == 0) {
            break;
        }
    }
    parts.join(" ")
}

const BULAN: [&str; 12] = [
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
];

const HARI: [&str; 7] = [
    "Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu",
];

/// `Senin, 4 Januari 2027`: a date as it is written in Bahasa Indonesia.
pub fn tanggal(date: Date) -> String {
    let weekday = HARI[date.weekday().to_monday_zero_offset() as usize];
    format!("{weekday}, {}", tanggal_singkat(date))
}

/// `4 Januari 2027`: the same without the day of the week.
pub fn tanggal_singkat(date: Date) -> String {
    format!(
        "{} {} {}",
        date.day(),
        BULAN[date.month() as usize - 1],
        date.year()
    )
}

/// Text made safe to stand in HTML (element text and quoted attributes): the sheet,
/// the school report and the emulator's sign-in form.
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_local_to_the_second() {
        let at: Timestamp = "2026-12-03T14:15:03.123456789Z".parse().unwrap();
        let jakarta = TimeZone::get("Asia/Jakarta").unwrap();
        assert_eq!(time_in(at, &jakarta), "2026-12-03 21:15:03 WIB");
        let jayapura = TimeZone::get("Asia/Jayapura").unwrap();
        assert_eq!(time_in(at, &jayapura), "2026-12-03 23:15:03 WIT");
        assert_eq!(iso(at), "2026-12-03T14:15:03Z");
    }

    #[test]
    fn counts_and_durations_read_as_words() {
        assert_eq!(count(1, "conflict", "conflicts"), "1 conflict");
        assert_eq!(count(0, "conflict", "conflicts"), "0 conflicts");
        assert_eq!(
            duration(SignedDuration::from_secs(3 * 86_400 + 4 * 3_600 + 5)),
            "3 days 4 hours"
        );
        assert_eq!(duration(SignedDuration::from_hours(48)), "2 days");
        assert_eq!(duration(SignedDuration::from_secs(61)), "1 minute 1 second");
        assert_eq!(duration(SignedDuration::ZERO), "0 seconds");
    }

    #[test]
    fn dates_in_bahasa_indonesia() {
        assert_eq!(
            tanggal(jiff::civil::date(2027, 1, 4)),
            "Senin, 4 Januari 2027"
        );
        assert_eq!(
            tanggal(jiff::civil::date(2026, 8, 17)),
            "Senin, 17 Agustus 2026"
        );
    }
}
