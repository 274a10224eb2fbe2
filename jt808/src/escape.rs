//! JT/T 808 byte stuffing (JT/T 808-2013 §4.4.2, notes §1): inside a frame `0x7E` is sent
//! as `7D 02` and `0x7D` as `7D 01`, so `0x7E` only ever delimits frames.
//!
//! Unescaping is where real devices misbehave: a `7D` followed by anything else is an
//! error (EMQX `emqx_jt808_frame.erl` does the same; Traccar drops both bytes silently),
//! except for the one quirk seen in the field: a checksum of `0x7D` sent unescaped right
//! before the closing `0x7E`, which is read as the literal byte (notes §7.1).

use memchr::{memchr, memchr2};

use crate::FrameError;

const FLAG: u8 = 0x7e;
const ESC: u8 = 0x7d;

/// Appends `src` escaped to `out` (no delimiters).
pub fn escape_into(src: &[u8], out: &mut Vec<u8>) {
    out.reserve(src.len() + src.len() / 16 + 2);
    let mut rest = src;
    while let Some(pos) = memchr2(FLAG, ESC, rest) {
        let (plain, tail) = rest.split_at(pos);
        out.extend_from_slice(plain);
        if let Some((&b, after)) = tail.split_first() {
            out.push(ESC);
            out.push(if b == FLAG { 0x02 } else { 0x01 });
            rest = after;
        } else {
            rest = tail;
        }
    }
    out.extend_from_slice(rest);
}

/// `src` escaped (no delimiters).
pub fn escape(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() + 2);
    escape_into(src, &mut out);
    out
}

/// Unescapes `src` (frame content without the 0x7E delimiters), handing the plain bytes
/// to `sink` in runs (so callers choose the buffer: `Vec`, `BytesMut`).
///
/// A `7D` as the very last byte is kept as the literal byte (the unescaped-checksum
/// quirk); a `7D` followed by anything but 01/02 is [`FrameError::BadEscape`] with the
/// offset of the `7D` in `src`.
pub fn unescape_with(src: &[u8], mut sink: impl FnMut(&[u8])) -> Result<(), FrameError> {
    let mut rest = src;
    let mut offset = 0usize;
    while let Some(pos) = memchr(ESC, rest) {
        let (plain, tail) = rest.split_at(pos);
        sink(plain);
        match tail.get(1) {
            Some(0x01) => sink(&[ESC]),
            Some(0x02) => sink(&[FLAG]),
            None => {
                sink(&[ESC]);
                return Ok(());
            }
            Some(&byte) => {
                return Err(FrameError::BadEscape {
                    offset: offset + pos,
                    byte,
                })
            }
        }
        rest = tail.get(2..).unwrap_or_default();
        offset += pos + 2;
    }
    sink(rest);
    Ok(())
}

/// Unescapes `buf` in place and returns the length of the plain content, now at the
/// front of `buf`; same rules as [`unescape_with`]. The second value is whether the last
/// byte was a lone `7D` read as the literal byte (the unescaped-checksum quirk), which
/// [`escape_into`] would not reproduce.
///
/// On [`FrameError::BadEscape`] `buf` is restored to its input when it holds no bare
/// 0x7E (as frame content between delimiters), so the caller can still log the wire bytes.
/// Without a `7D` this is one `memchr` and no copy.
pub fn unescape_in_place(buf: &mut [u8]) -> Result<(usize, bool), FrameError> {
    match memchr(ESC, buf) {
        Some(first) => unescape_in_place_from(buf, first),
        None => Ok((buf.len(), false)),
    }
}

/// [`unescape_in_place`] when the caller already knows that `buf[first]` is the first 7D.
pub(crate) fn unescape_in_place_from(
    buf: &mut [u8],
    first: usize,
) -> Result<(usize, bool), FrameError> {
    let len = buf.len();
    // One pass: `w <= r` throughout, so runs move left and never overlap unread bytes.
    let (mut w, mut r) = (first, first);
    while r < len {
        // buf[r] is a 7D here.
        let plain = match buf.get(r + 1) {
            Some(0x01) => ESC,
            Some(0x02) => FLAG,
            None => {
                // The quirk: a trailing lone 7D is the literal byte.
                if let Some(b) = buf.get_mut(w) {
                    *b = ESC;
                }
                return Ok((w + 1, true));
            }
            Some(&byte) => {
                restore(buf, w, r);
                return Err(FrameError::BadEscape { offset: r, byte });
            }
        };
        if let Some(b) = buf.get_mut(w) {
            *b = plain;
        }
        w += 1;
        r += 2;
        let run = buf
            .get(r..)
            .and_then(|tail| memchr(ESC, tail))
            .unwrap_or(len.saturating_sub(r));
        if run > 0 {
            buf.copy_within(r..r + run, w);
            w += run;
            r += run;
        }
    }
    Ok((w, false))
}

/// Undoes a partial [`unescape_in_place`]: `buf[..w]` holds the plain bytes of the wire
/// bytes `buf[..r]` (no quirk among them), so escaping them again, right to left, fills
/// exactly `buf[..r]` without overwriting a byte not yet read. Exact when the wire bytes
/// hold no bare 0x7E (frame content never does: it is the delimiter); otherwise the
/// restored prefix is the canonical escaping, cut to fit.
fn restore(buf: &mut [u8], w: usize, r: usize) {
    let mut j = r;
    for i in (0..w).rev() {
        let Some(&b) = buf.get(i) else { return };
        let code = match b {
            FLAG => 0x02,
            ESC => 0x01,
            _ => {
                j = j.saturating_sub(1);
                if let Some(slot) = buf.get_mut(j) {
                    *slot = b;
                }
                continue;
            }
        };
        if j < 2 || j - 2 < i {
            // Only with a bare 0x7E in the input: no room to expand without overwriting.
            return;
        }
        j -= 2;
        if let Some([e, c]) = buf.get_mut(j..j + 2) {
            *e = ESC;
            *c = code;
        }
    }
}

/// `src` unescaped; see [`unescape_with`].
pub fn unescape(src: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::with_capacity(src.len());
    unescape_with(src, |run| out.extend_from_slice(run))?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn flag_and_escape_bytes_are_stuffed_and_restored() {
        let plain = [0x30, 0x7e, 0x08, 0x7d, 0x55];
        let wire = escape(&plain);
        assert_eq!(wire, [0x30, 0x7d, 0x02, 0x08, 0x7d, 0x01, 0x55]);
        assert_eq!(unescape(&wire).unwrap(), plain);
    }

    fn in_place(src: &[u8]) -> Result<(Vec<u8>, bool), FrameError> {
        let mut buf = src.to_vec();
        let (n, quirk) = unescape_in_place(&mut buf)?;
        buf.truncate(n);
        Ok((buf, quirk))
    }

    #[test]
    fn in_place_matches_the_copying_unescape() {
        let cases: [&[u8]; 9] = [
            &[],
            &[0x7d],
            &[0x01, 0x02],
            &[0x7d, 0x01],
            &[0x7d, 0x02, 0x7d, 0x01],
            &[0x30, 0x7d, 0x02, 0x08, 0x7d, 0x01, 0x55],
            &[0x30, 0x7d, 0x02, 0x7d],
            &[0x01, 0x7d, 0x01, 0x7d, 0x03, 0x00],
            &[0x7d, 0x7d],
        ];
        for c in cases {
            let expect = unescape(c);
            let got = in_place(c);
            assert_eq!(
                got.as_ref().map(|g| &g.0).ok(),
                expect.as_ref().ok(),
                "{c:02x?}"
            );
            assert_eq!(got.as_ref().err(), expect.as_ref().err(), "{c:02x?}");
            if let Ok((plain, quirk)) = got {
                let mut wire = Vec::new();
                let cut = plain.len() - usize::from(quirk);
                escape_into(plain.get(..cut).unwrap(), &mut wire);
                if quirk {
                    wire.push(0x7d);
                }
                assert_eq!(wire, c, "re-escaping restores the wire bytes");
            }
        }
    }

    #[test]
    fn in_place_leaves_a_bad_escape_untouched() {
        let src = [
            0x7d, 0x02, 0x11, 0x7d, 0x01, 0x7d, 0x02, 0x7d, 0x05, 0x7d, 0x01,
        ];
        let mut buf = src;
        assert_eq!(
            unescape_in_place(&mut buf),
            Err(FrameError::BadEscape {
                offset: 7,
                byte: 0x05
            })
        );
        assert_eq!(buf, src);
    }

    proptest::proptest! {
        #[test]
        fn in_place_agrees_with_unescape_and_restores_on_error(
            src in proptest::collection::vec(
                proptest::sample::select(vec![0x00u8, 0x01, 0x02, 0x7d, 0x7e, 0x55]),
                0..40,
            )
        ) {
            let mut buf = src.clone();
            let got = unescape_in_place(&mut buf);
            match (got, unescape(&src)) {
                (Ok((n, _)), Ok(plain)) => proptest::prop_assert_eq!(buf.get(..n).unwrap(), plain.as_slice()),
                (Err(a), Err(b)) => {
                    proptest::prop_assert_eq!(a, b);
                    if !src.contains(&0x7e) {
                        proptest::prop_assert_eq!(&buf, &src);
                    }
                }
                (a, b) => proptest::prop_assert!(false, "{a:?} vs {b:?}"),
            }
        }
    }

    #[test]
    fn a_lone_trailing_7d_is_the_literal_byte() {
        assert_eq!(unescape(&[0x01, 0x7d]).unwrap(), [0x01, 0x7d]);
    }

    #[test]
    fn an_escape_followed_by_another_byte_is_refused_with_its_offset() {
        assert_eq!(
            unescape(&[0x01, 0x7d, 0x01, 0x7d, 0x03, 0x00]),
            Err(FrameError::BadEscape {
                offset: 3,
                byte: 0x03
            })
        );
    }
}
