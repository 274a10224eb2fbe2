//! `type = "delimited"`: frames end with a delimiter, or with `both_ends` are enclosed in
//! it (`7e ... 7e`).
//!
//! Resync: a delimiter always marks a frame boundary, so this framing never needs to give
//! up on a connection. When a frame grows past `max_frame_len` before its delimiter shows
//! up, the decoder reports [`RawFrameError::TooLarge`] once, then drops bytes (without
//! buffering them) until the next delimiter and carries on from there. The buffer therefore
//! holds at most `max_frame_len` plus two delimiters between reads.
//!
//! Details:
//! - Empty frames (two delimiters in a row: blank lines, `7e 7e`) are skipped.
//! - With `both_ends`, a frame's closing delimiter is left in the buffer, because some
//!   devices share one delimiter between frames (`7e A 7e B 7e`) and others do not
//!   (`7e A 7e 7e B 7e`); both decode to `A`, `B`. Bytes before the first opening
//!   delimiter are dropped and reported once as [`RawFrameError::Junk`]; bytes between a
//!   closing delimiter and the next opening one cannot be told from a frame and are
//!   emitted as one.
//! - At end of stream, an unterminated tail is emitted as a last frame when
//!   `both_ends = false` (like tokio-util's `LinesCodec`) and reported as
//!   [`RawFrameError::Truncated`] when `both_ends = true` (its closing delimiter is missing).
//! - The scan for the delimiter restarts where the previous call stopped, so a stream
//!   arriving a byte at a time costs O(n), not O(n²).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::config::{ConfigError, DelimitedFraming};
use super::error::{CodecError, RawFrameError};

/// The first occurrence of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    match needle {
        [b] => hay.iter().position(|x| x == b),
        _ => hay.windows(needle.len()).position(|w| w == needle),
    }
}

/// The delimited framer: a tokio-util [`Decoder`] and [`Encoder`].
#[derive(Debug, Clone)]
pub struct DelimitedCodec {
    delim: Vec<u8>,
    both_ends: bool,
    max: usize,
    /// Where the next scan for a (closing) delimiter starts.
    next_index: usize,
    /// Dropping bytes up to the next delimiter after `TooLarge`.
    skipping: bool,
    /// Junk bytes dropped but not yet reported (`both_ends`).
    junk: usize,
}

impl DelimitedCodec {
    /// A codec for `config`, which is validated.
    pub fn new(config: &DelimitedFraming) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(DelimitedCodec {
            delim: config.delimiter_bytes()?,
            both_ends: config.both_ends,
            max: config.max_frame_len,
            next_index: 0,
            skipping: false,
            junk: 0,
        })
    }

    /// The delimiter bytes.
    pub fn delimiter(&self) -> &[u8] {
        &self.delim
    }

    /// The largest frame emitted or accepted, delimiters not counted.
    pub fn max_frame_len(&self) -> usize {
        self.max
    }

    /// Bytes that may be the start of a delimiter split across reads.
    fn keep(&self) -> usize {
        self.delim.len().saturating_sub(1)
    }

    /// Drops all of `buf` but a possible partial delimiter at its end; returns how many
    /// bytes were dropped.
    fn drop_all_but_tail(&mut self, buf: &mut BytesMut) -> usize {
        let n = buf.len().saturating_sub(self.keep());
        buf.advance(n);
        self.next_index = 0;
        n
    }

    fn decode_trailing(&mut self, buf: &mut BytesMut) -> Option<Result<Bytes, RawFrameError>> {
        let dlen = self.delim.len();
        loop {
            if self.skipping {
                match find(buf, &self.delim) {
                    Some(p) => {
                        buf.advance(p.saturating_add(dlen));
                        self.skipping = false;
                        self.next_index = 0;
                    }
                    None => {
                        self.drop_all_but_tail(buf);
                        return None;
                    }
                }
            }
            let from = self.next_index.min(buf.len());
            let found = buf.get(from..).and_then(|tail| find(tail, &self.delim));
            match found {
                Some(rel) => {
                    let end = from.saturating_add(rel);
                    self.next_index = 0;
                    let frame = buf.split_to(end).freeze();
                    buf.advance(dlen);
                    if end == 0 {
                        continue;
                    }
                    if end > self.max {
                        return Some(Err(RawFrameError::TooLarge {
                            len: end,
                            max: self.max,
                        }));
                    }
                    return Some(Ok(frame));
                }
                None => {
                    let at_least = buf.len().saturating_sub(self.keep());
                    self.next_index = at_least;
                    if at_least > self.max {
                        self.drop_all_but_tail(buf);
                        self.skipping = true;
                        return Some(Err(RawFrameError::TooLarge {
                            len: at_least,
                            max: self.max,
                        }));
                    }
                    return None;
                }
            }
        }
    }

    fn decode_both(&mut self, buf: &mut BytesMut) -> Option<Result<Bytes, RawFrameError>> {
        let dlen = self.delim.len();
        loop {
            if buf.starts_with(&self.delim) {
                self.skipping = false;
            } else {
                match find(buf, &self.delim) {
                    Some(p) => {
                        if !self.skipping {
                            self.junk = self.junk.saturating_add(p);
                        }
                        self.skipping = false;
                        buf.advance(p);
                        self.next_index = 0;
                    }
                    None => {
                        let n = self.drop_all_but_tail(buf);
                        if !self.skipping {
                            self.junk = self.junk.saturating_add(n);
                        }
                        return None;
                    }
                }
            }
            if self.junk > 0 {
                let len = std::mem::take(&mut self.junk);
                return Some(Err(RawFrameError::Junk { len }));
            }
            // The buffer starts with an opening delimiter: find the closing one.
            let from = self.next_index.max(dlen).min(buf.len());
            let found = buf.get(from..).and_then(|tail| find(tail, &self.delim));
            match found {
                Some(rel) => {
                    let end = from.saturating_add(rel);
                    self.next_index = 0;
                    let content = end.saturating_sub(dlen);
                    if content == 0 {
                        // `d d`: the second delimiter opens the next frame.
                        buf.advance(dlen);
                        continue;
                    }
                    let mut frame = buf.split_to(end);
                    frame.advance(dlen);
                    // The closing delimiter stays: it may open the next frame.
                    if content > self.max {
                        return Some(Err(RawFrameError::TooLarge {
                            len: content,
                            max: self.max,
                        }));
                    }
                    return Some(Ok(frame.freeze()));
                }
                None => {
                    self.next_index = buf.len().saturating_sub(self.keep()).max(dlen);
                    let at_least = buf.len().saturating_sub(dlen).saturating_sub(self.keep());
                    if at_least > self.max {
                        self.drop_all_but_tail(buf);
                        self.skipping = true;
                        return Some(Err(RawFrameError::TooLarge {
                            len: at_least,
                            max: self.max,
                        }));
                    }
                    return None;
                }
            }
        }
    }

    /// Frames `body` into `dst`; on error `dst` is left as it was.
    pub fn encode_body(&mut self, body: &[u8], dst: &mut BytesMut) -> Result<(), RawFrameError> {
        if body.len() > self.max {
            return Err(RawFrameError::TooLarge {
                len: body.len(),
                max: self.max,
            });
        }
        let dlen = self.delim.len();
        let start = dst.len();
        dst.reserve(body.len().saturating_add(2 * dlen));
        if self.both_ends {
            dst.put_slice(&self.delim);
        }
        dst.put_slice(body);
        dst.put_slice(&self.delim);
        // The first delimiter after the body's start must be the one just written (this
        // also catches delimiters that overlap the body's end, such as `aba` after `ab`).
        let body_at = start.saturating_add(if self.both_ends { dlen } else { 0 });
        let first = dst.get(body_at..).and_then(|w| find(w, &self.delim));
        if first != Some(body.len()) {
            dst.truncate(start);
            return Err(RawFrameError::ContainsDelimiter {
                at: first.unwrap_or_default(),
            });
        }
        Ok(())
    }
}

impl Decoder for DelimitedCodec {
    type Item = Result<Bytes, RawFrameError>;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, CodecError> {
        Ok(if self.both_ends {
            self.decode_both(buf)
        } else {
            self.decode_trailing(buf)
        })
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, CodecError> {
        if let Some(item) = self.decode(buf)? {
            return Ok(Some(item));
        }
        self.next_index = 0;
        if self.skipping {
            // The rest of a frame already reported as too large.
            self.skipping = false;
            buf.clear();
            return Ok(None);
        }
        if self.both_ends {
            let item = if buf.starts_with(&self.delim) {
                let len = buf.len().saturating_sub(self.delim.len());
                (len > 0).then_some(RawFrameError::Truncated { len })
            } else {
                let len = self.junk.saturating_add(buf.len());
                self.junk = 0;
                (len > 0).then_some(RawFrameError::Junk { len })
            };
            buf.clear();
            return Ok(item.map(Err));
        }
        if buf.is_empty() {
            return Ok(None);
        }
        let len = buf.len();
        let frame = buf.split().freeze();
        Ok(Some(if len > self.max {
            Err(RawFrameError::TooLarge { len, max: self.max })
        } else {
            Ok(frame)
        }))
    }
}

impl Encoder<Bytes> for DelimitedCodec {
    type Error = CodecError;
    fn encode(&mut self, body: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(self.encode_body(&body, dst)?)
    }
}

impl Encoder<&[u8]> for DelimitedCodec {
    type Error = CodecError;
    fn encode(&mut self, body: &[u8], dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(self.encode_body(body, dst)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(delim: &str, both_ends: bool, max: usize) -> DelimitedCodec {
        DelimitedCodec::new(&DelimitedFraming {
            delimiter: delim.into(),
            both_ends,
            max_frame_len: max,
        })
        .expect("valid")
    }

    fn all(c: &mut DelimitedCodec, input: &[u8]) -> Vec<Result<Bytes, RawFrameError>> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(item) = c.decode_eof(&mut buf).expect("never fatal") {
            out.push(item);
        }
        assert!(buf.is_empty());
        out
    }

    #[test]
    fn lines_with_crlf_delimiter_and_blank_lines() {
        let got = all(&mut codec("\r\n", false, 64), b"a\r\n\r\nbc\r\nd");
        assert_eq!(
            got,
            vec![
                Ok(Bytes::from_static(b"a")),
                Ok(Bytes::from_static(b"bc")),
                Ok(Bytes::from_static(b"d"))
            ]
        );
    }

    #[test]
    fn shared_and_separate_closing_delimiters_both_work() {
        let a = all(&mut codec("0x7e", true, 64), b"\x7eA\x7eB\x7e");
        let b = all(&mut codec("0x7e", true, 64), b"\x7eA\x7e\x7eB\x7e");
        let want = vec![Ok(Bytes::from_static(b"A")), Ok(Bytes::from_static(b"B"))];
        assert_eq!(a, want);
        assert_eq!(b, want);
    }

    #[test]
    fn junk_before_opening_delimiter_is_reported_once() {
        let got = all(&mut codec("0x7e", true, 64), b"GET /\x7eA\x7e");
        assert_eq!(
            got,
            vec![
                Err(RawFrameError::Junk { len: 5 }),
                Ok(Bytes::from_static(b"A"))
            ]
        );
    }

    #[test]
    fn self_overlapping_delimiter_is_refused_when_encoding() {
        let mut c = codec("aba", false, 64);
        let mut dst = BytesMut::new();
        assert!(c.encode_body(b"ab", &mut dst).is_err());
        assert!(dst.is_empty());
        c.encode_body(b"xx", &mut dst).expect("fits");
        assert_eq!(&dst[..], b"xxaba");
    }
}
