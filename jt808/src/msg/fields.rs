//! Field helpers shared by the terminal message bodies: length-prefixed text, fixed-width
//! text, BCD digit strings, the 28-byte location basic information.

use super::{LocationReport, Reader};
use crate::BodyError;

/// Reads `len BYTE | text` (GBK).
pub(crate) fn len_text(r: &mut Reader<'_>) -> Result<String, BodyError> {
    let n = usize::from(r.u8()?);
    Ok(codecs::text::decode(r.take(n)?))
}

/// Writes `len BYTE | text` (GBK); text over 255 bytes is [`BodyError::Invalid`].
pub(crate) fn put_len_text(
    s: &str,
    field: &'static str,
    msg_id: u16,
    out: &mut Vec<u8>,
) -> Result<(), BodyError> {
    let b = codecs::text::encode(s);
    let n = u8::try_from(b.len()).map_err(|_| BodyError::Invalid {
        msg_id,
        field,
        len: b.len(),
    })?;
    out.push(n);
    out.extend_from_slice(&b);
    Ok(())
}

/// Writes text into exactly `width` bytes, padded with 0x00 (the standard's "后补 0x00").
pub(crate) fn put_fixed(
    s: &str,
    width: usize,
    field: &'static str,
    msg_id: u16,
    out: &mut Vec<u8>,
) -> Result<(), BodyError> {
    codecs::text::encode_fixed(s, width, 0, out).map_err(|_| BodyError::Invalid {
        msg_id,
        field,
        len: s.len(),
    })
}

/// Reads `N` bytes into an array.
pub(crate) fn array<const N: usize>(r: &mut Reader<'_>) -> Result<[u8; N], BodyError> {
    let mut a = [0u8; N];
    a.copy_from_slice(r.take(N)?);
    Ok(a)
}

/// Writes a digit string (hex of BCD bytes, as [`hex::encode`] gives) as exactly `width`
/// bytes; anything else is [`BodyError::Invalid`].
pub(crate) fn put_bcd_digits(
    s: &str,
    width: usize,
    field: &'static str,
    msg_id: u16,
    out: &mut Vec<u8>,
) -> Result<(), BodyError> {
    match hex::decode(s) {
        Ok(b) if b.len() == width => {
            out.extend_from_slice(&b);
            Ok(())
        }
        _ => Err(BodyError::Invalid {
            msg_id,
            field,
            len: s.len(),
        }),
    }
}

/// Size of the location basic information (JT/T 808-2013 table 23) embedded in 0x0801/0x0802.
pub(crate) const LOCATION_LEN: usize = 28;

/// Reads the 28-byte location basic information (no additional items).
pub(crate) fn location(r: &mut Reader<'_>) -> Result<LocationReport, BodyError> {
    let msg_id = r.msg_id;
    LocationReport::decode(msg_id, r.take(LOCATION_LEN)?)
}

/// Writes the 28-byte location basic information; items and tail are not written (the
/// embedded location has none).
pub(crate) fn put_location(l: &LocationReport, out: &mut Vec<u8>) {
    let mut b = Vec::with_capacity(LOCATION_LEN + 8);
    l.encode(&mut b);
    b.truncate(LOCATION_LEN);
    out.extend_from_slice(&b);
}

/// A `u16`/`u32` count of `n` items, or [`BodyError::Invalid`] naming `field`.
pub(crate) fn count<T: TryFrom<usize>>(
    n: usize,
    field: &'static str,
    msg_id: u16,
) -> Result<T, BodyError> {
    T::try_from(n).map_err(|_| BodyError::Invalid {
        msg_id,
        field,
        len: n,
    })
}

/// `e` with its message id replaced by `msg_id` (a body shared by two ids, such as
/// 0x8003/0x0005, reports the id it was read as).
pub(crate) fn retag(e: BodyError, msg_id: u16) -> BodyError {
    match e {
        BodyError::TooShort { len, need, .. } => BodyError::TooShort { msg_id, len, need },
        BodyError::Invalid { field, len, .. } => BodyError::Invalid { msg_id, field, len },
    }
}
