//! Text on the wire: GBK (GB18030 superset on decode) there, UTF-8 in Rust.
//!
//! Both standards carry Chinese text (plates, driver names, text messages) in GBK.
//! Fixed-width fields are padded by devices with 0x00, spaces or 0xFF; the helpers here
//! strip that padding so `"ABC\0\0\0"` and `"ABC   "` read as `"ABC"`.

use crate::Error;

/// Decodes GBK/GB18030 bytes; invalid sequences become U+FFFD (never an error, never a panic).
pub fn decode(bytes: &[u8]) -> String {
    if bytes.is_ascii() {
        // Fast path: most fields are ASCII.
        return String::from_utf8_lossy(bytes).into_owned();
    }
    // Without BOM sniffing: valid GBK may begin with EF BB BF or FE FF / FF FE, which
    // `decode` would take for a UTF-8 / UTF-16 byte-order mark (found by fuzzing).
    let (s, _) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
    s.into_owned()
}

/// Whether the bytes are valid GB18030 (for callers that must refuse invalid text).
pub fn is_valid(bytes: &[u8]) -> bool {
    bytes.is_ascii()
        || encoding_rs::GB18030
            .decode_without_bom_handling_and_without_replacement(bytes)
            .is_some()
}

/// Strips device padding from both ends of a fixed-width field: 0x00, 0xFF and ASCII spaces.
pub fn trim_padding(bytes: &[u8]) -> &[u8] {
    let pad = |b: &u8| *b == 0 || *b == b' ' || *b == 0xff;
    let start = bytes.iter().position(|b| !pad(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !pad(b)).map_or(start, |e| e + 1);
    bytes.get(start..end).unwrap_or(&[])
}

/// Decodes a fixed-width text field, padding stripped.
pub fn decode_fixed(bytes: &[u8]) -> String {
    decode(trim_padding(bytes))
}

/// Encodes UTF-8 text as GBK (characters GBK lacks become `?`-like numeric references,
/// as encoding_rs does).
pub fn encode(s: &str) -> Vec<u8> {
    if s.is_ascii() {
        return s.as_bytes().to_vec();
    }
    let (b, _, _) = encoding_rs::GBK.encode(s);
    b.into_owned()
}

/// Encodes text into exactly `width` bytes, right-padded with `pad`.
pub fn encode_fixed(s: &str, width: usize, pad: u8, out: &mut Vec<u8>) -> Result<(), Error> {
    let b = encode(s);
    if b.len() > width {
        return Err(Error::TextTooLong {
            len: b.len(),
            max: width,
        });
    }
    out.extend_from_slice(&b);
    out.resize(out.len() + (width - b.len()), pad);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbk_plate_round_trips() {
        let plate = "粤B12345";
        let b = encode(plate);
        assert_eq!(b.first(), Some(&0xd4));
        assert_eq!(decode(&b), plate);
    }

    #[test]
    fn padding_of_every_kind_is_stripped() {
        assert_eq!(decode_fixed(b"ABC\0\0\0"), "ABC");
        assert_eq!(decode_fixed(b"ABC   "), "ABC");
        assert_eq!(decode_fixed(b"\0\0"), "");
    }

    #[test]
    fn fixed_width_overflow_is_an_error() {
        let mut v = Vec::new();
        assert_eq!(
            encode_fixed("ABCDEF", 5, 0, &mut v),
            Err(Error::TextTooLong { len: 6, max: 5 })
        );
        encode_fixed("AB", 5, 0, &mut v).unwrap();
        assert_eq!(v, b"AB\0\0\0");
    }
}

#[cfg(test)]
mod bom_tests {
    #[test]
    fn gbk_that_starts_like_a_byte_order_mark_is_gbk() {
        // "锘縜你" in GBK starts with EF BB BF.
        assert_eq!(
            super::decode(&[0xef, 0xbb, 0xbf, 0x61, 0xc4, 0xe3]),
            "锘縜你"
        );
        assert_eq!(super::decode(&[0xfe, 0xff, 0x00, 0x41]).chars().count(), 3);
    }
}
