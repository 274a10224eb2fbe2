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

#[cfg(test)]
mod tests {
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
