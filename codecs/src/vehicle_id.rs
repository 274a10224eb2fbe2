//! What a vehicle id may be.
//!
//! The vehicle id becomes an MQTT topic level (`{p}/v1/{vid}/...`), so `/`, `+`, `#`,
//! control characters or anything else outside `[A-Za-z0-9_-]` would let one vehicle
//! publish into another's topics or subscribe wildcards. Such ids are refused at login.

use crate::Error;

/// The longest vehicle id accepted (JT/T 808 2019 phones are 20 digits, VINs 17).
pub const MAX_LEN: usize = 64;

/// Checks that `id` is a non-empty, at most [`MAX_LEN`]-byte string of `[A-Za-z0-9_-]`.
pub fn validate(id: &str) -> Result<(), Error> {
    let reason = if id.is_empty() {
        Some("empty")
    } else if id.len() > MAX_LEN {
        Some("longer than 64 characters")
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Some("contains a character outside [A-Za-z0-9_-]")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidVehicleId {
            id: id.escape_debug().to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_wildcards_and_separators_are_refused() {
        for bad in ["", "a/b", "a+", "#", "vin\u{0}", "ab cd"] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
        for good in ["013800138000", "LSVNV2182E2100001", "fleet_1-a"] {
            assert!(validate(good).is_ok(), "{good:?}");
        }
    }
}
