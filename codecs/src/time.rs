//! Device time to UTC and back.
//!
//! Both JT/T 808 (BCD `YYMMDDhhmmss`) and GB/T 32960 (six binary bytes) send the
//! vehicle's *local* time, which the standards fix at Beijing time (GMT+8). Fleets with
//! terminals set to another zone configure the offset per listener; events always carry
//! UTC. Two-digit years are 2000-2099. A date that does not exist is an error for that
//! field, never a panic.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Offset, TimeZone, Timelike, Utc};

use crate::Error;

/// Beijing time, GMT+8: the default device zone of both standards, in seconds east of UTC.
pub const BEIJING_OFFSET_SECS: i32 = 8 * 3600;

/// A wall-clock time as a device sends it: two-digit-year fields, no zone.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct LocalTime {
    /// Years since 2000 (0..=99).
    pub year: u8,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl LocalTime {
    /// The UTC instant of this local time in a zone `offset_secs` east of UTC.
    pub fn to_utc(&self, offset_secs: i32) -> Result<DateTime<Utc>, Error> {
        let bad = || Error::ImpossibleTime {
            year: 2000 + i32::from(self.year),
            month: self.month,
            day: self.day,
            hour: self.hour,
            minute: self.minute,
            second: self.second,
        };
        let offset = FixedOffset::east_opt(offset_secs).ok_or_else(bad)?;
        let naive = NaiveDate::from_ymd_opt(
            2000 + i32::from(self.year),
            u32::from(self.month),
            u32::from(self.day),
        )
        .and_then(|d| {
            d.and_hms_opt(
                u32::from(self.hour),
                u32::from(self.minute),
                u32::from(self.second),
            )
        })
        .ok_or_else(bad)?;
        offset
            .from_local_datetime(&naive)
            .single()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(bad)
    }

    /// The local wall-clock fields of a UTC instant in a zone `offset_secs` east of UTC.
    /// Years outside 2000..=2099 are clamped into it (the wire cannot say otherwise).
    pub fn from_utc(t: DateTime<Utc>, offset_secs: i32) -> LocalTime {
        let offset = FixedOffset::east_opt(offset_secs).unwrap_or(Utc.fix());
        let l = t.with_timezone(&offset);
        let year = (l.year() - 2000).clamp(0, 99) as u8;
        LocalTime {
            year,
            month: l.month() as u8,
            day: l.day() as u8,
            hour: l.hour() as u8,
            minute: l.minute() as u8,
            second: l.second() as u8,
        }
    }

    /// Whether every field is in its calendar range (the date need not exist).
    pub fn fields_in_range(&self) -> bool {
        self.year <= 99
            && (1..=12).contains(&self.month)
            && (1..=31).contains(&self.day)
            && self.hour <= 23
            && self.minute <= 59
            && self.second <= 59
    }
}

/// Serializes a UTC time as RFC 3339 with a `Z` and whole seconds (`device_time`).
pub fn rfc3339_secs(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Serializes a UTC time as RFC 3339 with a `Z` and milliseconds (`received_at`).
pub fn rfc3339_millis(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// An RFC 3339 UTC time on the stack: `2024-01-01T00:00:00Z` or `2024-01-01T00:00:00.123Z`.
///
/// The event JSON writes two per event; this is chrono's `%Y-%m-%dT%H:%M:%SZ` /
/// `%Y-%m-%dT%H:%M:%S%.3fZ` without its format-string parser or allocations. Years
/// outside 0..=9999 and leap seconds (where chrono writes `+10000` or `:60`) give `None`,
/// and the caller formats with chrono.
#[derive(Debug, Clone, Copy)]
pub struct Rfc3339 {
    buf: [u8; 24],
    len: u8,
}

impl Rfc3339 {
    /// Whole seconds: `YYYY-MM-DDThh:mm:ssZ`.
    pub fn secs(t: &DateTime<Utc>) -> Option<Rfc3339> {
        Rfc3339::new(t, false)
    }

    /// Milliseconds (truncated, as chrono's `%.3f`): `YYYY-MM-DDThh:mm:ss.mmmZ`.
    pub fn millis(t: &DateTime<Utc>) -> Option<Rfc3339> {
        Rfc3339::new(t, true)
    }

    fn new(t: &DateTime<Utc>, millis: bool) -> Option<Rfc3339> {
        let time = t.time();
        let nanos = time.nanosecond();
        let date = t.date_naive();
        let year = date.year();
        if nanos >= 1_000_000_000 || !(0..=9999).contains(&year) {
            return None;
        }
        let year = year as u32;
        let (month, day) = (date.month(), date.day());
        let sod = time.num_seconds_from_midnight();
        let mut buf = *b"0000-00-00T00:00:00.000Z";
        let mut put2 = |at: usize, v: u32| {
            if let Some([a, b]) = buf.get_mut(at..at + 2) {
                *a = b'0' + (v / 10 % 10) as u8;
                *b = b'0' + (v % 10) as u8;
            }
        };
        put2(0, year / 100);
        put2(2, year % 100);
        put2(5, month);
        put2(8, day);
        put2(11, sod / 3600);
        put2(14, sod / 60 % 60);
        put2(17, sod % 60);
        let len = if millis {
            let ms = nanos / 1_000_000;
            if let Some([a, b, c]) = buf.get_mut(20..23) {
                *a = b'0' + (ms / 100) as u8;
                *b = b'0' + (ms / 10 % 10) as u8;
                *c = b'0' + (ms % 10) as u8;
            }
            24
        } else {
            if let Some(z) = buf.get_mut(19) {
                *z = b'Z';
            }
            20
        };
        Some(Rfc3339 { buf, len })
    }

    /// The text (ASCII).
    pub fn as_str(&self) -> &str {
        let bytes = self.buf.get(..usize::from(self.len)).unwrap_or_default();
        std::str::from_utf8(bytes).unwrap_or_default()
    }

    /// The text as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or_default()
    }
}

/// Parses a device time zone as written in the configuration or on the command line:
/// `+08:00`, `-05:30`, `+8`, `Z`/`UTC` into seconds east of UTC.
pub fn parse_utc_offset(s: &str) -> Option<i32> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("z") || s.eq_ignore_ascii_case("utc") {
        return Some(0);
    }
    let (sign, rest) = if let Some(r) = s.strip_prefix('+') {
        (1, r)
    } else if let Some(r) = s.strip_prefix('-') {
        (-1, r)
    } else {
        (1, s)
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?),
        None => (rest.parse::<i32>().ok()?, 0),
    };
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    #[test]
    fn offsets_parse_in_every_usual_spelling() {
        use super::parse_utc_offset;
        assert_eq!(parse_utc_offset("+08:00"), Some(28800));
        assert_eq!(parse_utc_offset("-05:30"), Some(-19800));
        assert_eq!(parse_utc_offset("8"), Some(28800));
        assert_eq!(parse_utc_offset("UTC"), Some(0));
        assert_eq!(parse_utc_offset("+25:00"), None);
    }

    use super::*;

    #[test]
    fn beijing_midnight_is_previous_day_utc() {
        let t = LocalTime {
            year: 24,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
        };
        let utc = t.to_utc(BEIJING_OFFSET_SECS).unwrap();
        assert_eq!(rfc3339_secs(&utc), "2023-12-31T16:00:00Z");
        assert_eq!(LocalTime::from_utc(utc, BEIJING_OFFSET_SECS), t);
    }

    #[test]
    fn rfc3339_matches_chrono_formatting() {
        use chrono::Duration;
        let start = Utc.with_ymd_and_hms(1969, 12, 25, 23, 59, 58).unwrap();
        let mut samples = vec![
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap()
                + Duration::nanoseconds(999_999_999),
            Utc.with_ymd_and_hms(2000, 2, 29, 12, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2100, 3, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(1600, 2, 29, 1, 2, 3).unwrap(),
        ];
        // Every ~37 hours for ~150 years, with varying sub-second parts.
        for i in 0..36_000i64 {
            samples.push(
                start
                    + Duration::seconds(i * 133_337)
                    + Duration::nanoseconds(i * 7_654_321 % 1_000_000_000),
            );
        }
        for t in samples {
            let secs = Rfc3339::secs(&t).unwrap();
            assert_eq!(secs.as_str(), t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            assert_eq!(secs.as_str(), rfc3339_secs(&t));
            let ms = Rfc3339::millis(&t).unwrap();
            assert_eq!(ms.as_str(), t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
            assert_eq!(ms.as_bytes(), rfc3339_millis(&t).as_bytes());
        }
        let far = Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap();
        assert!(Rfc3339::secs(&far).is_none());
        let before = Utc.with_ymd_and_hms(-1, 12, 31, 0, 0, 0).unwrap();
        assert!(Rfc3339::millis(&before).is_none());
    }

    #[test]
    fn thirty_first_of_february_is_an_error() {
        let t = LocalTime {
            year: 24,
            month: 2,
            day: 31,
            hour: 0,
            minute: 0,
            second: 0,
        };
        assert!(matches!(
            t.to_utc(0),
            Err(Error::ImpossibleTime {
                month: 2,
                day: 31,
                ..
            })
        ));
    }
}
