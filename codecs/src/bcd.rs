//! Packed BCD: two decimal digits per byte, high nibble first.
//!
//! JT/T 808 carries the terminal phone number (6 bytes in 2011/2013, 10 in 2019) and
//! every time (`YYMMDDhhmmss`, 6 bytes) as BCD.

use crate::Error;

/// Decodes packed BCD into its digits (`[0x01, 0x38]` -> `"0138"`), keeping leading zeros.
pub fn decode(bytes: &[u8]) -> Result<String, Error> {
    let mut s = String::with_capacity(bytes.len() * 2);
    for (offset, &b) in bytes.iter().enumerate() {
        let (hi, lo) = (b >> 4, b & 0x0f);
        if hi > 9 || lo > 9 {
            return Err(Error::InvalidBcd { offset, byte: b });
        }
        s.push(char::from(b'0' + hi));
        s.push(char::from(b'0' + lo));
    }
    Ok(s)
}

/// The value of one BCD byte (`0x59` -> 59).
pub fn byte_value(b: u8, offset: usize) -> Result<u8, Error> {
    let (hi, lo) = (b >> 4, b & 0x0f);
    if hi > 9 || lo > 9 {
        return Err(Error::InvalidBcd { offset, byte: b });
    }
    Ok(hi * 10 + lo)
}

/// The BCD byte of a value 0..=99 (`59` -> `0x59`); values above 99 keep their last two digits.
pub fn byte_of(v: u8) -> u8 {
    let v = v % 100;
    ((v / 10) << 4) | (v % 10)
}

/// Encodes decimal digits into exactly `width` bytes of packed BCD, left-padding with zeros
/// (`"13800138000"`, 6 -> `01 38 00 13 80 00`). Non-digit characters count as 0; extra
/// leading digits beyond the width are dropped (the field cannot hold them).
pub fn encode(digits: &str, width: usize, out: &mut Vec<u8>) {
    let d = digits.as_bytes();
    let want = width * 2;
    let start = d.len().saturating_sub(want);
    let pad = want.saturating_sub(d.len());
    let digit = |i: usize| -> u8 {
        if i < pad {
            0
        } else {
            match d.get(start + i - pad) {
                Some(c) if c.is_ascii_digit() => c - b'0',
                _ => 0,
            }
        }
    };
    for i in 0..width {
        out.push((digit(2 * i) << 4) | digit(2 * i + 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_phone_with_leading_zero() {
        assert_eq!(
            decode(&[0x01, 0x38, 0x00, 0x13, 0x80, 0x00]).as_deref(),
            Ok("013800138000")
        );
    }

    #[test]
    fn rejects_hex_nibble() {
        assert_eq!(
            decode(&[0x12, 0x3a]),
            Err(Error::InvalidBcd {
                offset: 1,
                byte: 0x3a
            })
        );
    }

    #[test]
    fn encode_pads_left() {
        let mut v = Vec::new();
        encode("13800138000", 6, &mut v);
        assert_eq!(v, [0x01, 0x38, 0x00, 0x13, 0x80, 0x00]);
    }

    proptest! {
        #[test]
        fn round_trip(digits in "[0-9]{0,20}") {
            let width = 10;
            let mut v = Vec::new();
            encode(&digits, width, &mut v);
            let back = decode(&v).unwrap_or_default();
            prop_assert_eq!(back.len(), width * 2);
            prop_assert!(back.ends_with(&digits));
        }
    }
}
