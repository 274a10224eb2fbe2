//! A connection's frame reader: tokio-util's `FramedRead` without the idle buffer.
//!
//! `FramedRead` keeps its read buffer for the connection's whole life and reserves room in
//! it before every read, so an idle connection (most of them: a terminal reports every 30 s
//! and sends a heartbeat in between) holds a buffer it is not using: 512 bytes and its
//! allocation, times 100,000 connections. [`Frames`] reads into a scratch buffer on the
//! stack of the poll (not in the connection's task: it is gone once the read returns) and
//! copies what arrived into its buffer, which it allocates only then and drops as soon as a
//! read leaves no partial frame. An idle connection therefore holds no read buffer at all,
//! at the cost of one copy of the bytes read (they are about to be decoded, a copy of a few
//! hundred bytes is noise) and one allocation per read (a small size class in the
//! allocator's thread cache).
//!
//! Everything else is `FramedRead`'s state machine (tokio-util 0.7, `framed_impl.rs`): the
//! codec is called while the buffer may hold a frame, `decode_eof` once the stream ended, a
//! codec error ends the stream after being yielded, and no byte is lost (a partial frame
//! stays in the buffer until the rest arrives).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures::Stream;
use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::codec::Decoder;

/// The most one read takes from the socket: more than the burst of reports a terminal sends
/// at once, and small enough that a connection not logged in stays within its pre-login
/// bound ([`PRELOGIN_BUFFER`](super::driver::PRELOGIN_BUFFER) buffered, plus one read) as it did with `FramedRead`.
pub const SCRATCH: usize = 2048;

/// Frames decoded by `codec` from `rd`, read as they come (see the module docs).
pub struct Frames<R, D> {
    rd: R,
    codec: D,
    /// Bytes read and not decoded yet; unallocated while empty.
    buf: BytesMut,
    /// The buffer may hold a frame: decode before reading again.
    readable: bool,
    /// The last read returned 0 bytes: the stream ended (`decode_eof` next).
    eof: bool,
    /// The codec failed: the stream ends with the next poll.
    errored: bool,
}

impl<R, D> Frames<R, D> {
    pub fn new(rd: R, codec: D) -> Self {
        Frames {
            rd,
            codec,
            buf: BytesMut::new(),
            readable: false,
            eof: false,
            errored: false,
        }
    }

    pub fn decoder(&self) -> &D {
        &self.codec
    }

    pub fn decoder_mut(&mut self) -> &mut D {
        &mut self.codec
    }

    /// Bytes held for a frame not complete yet (tests: an idle connection holds none).
    #[cfg(test)]
    pub fn held(&self) -> (usize, usize) {
        (self.buf.len(), self.buf.capacity())
    }
}

// The codec is never pinned (it is only called through `&mut`), whatever its type.
impl<R: Unpin, D> Unpin for Frames<R, D> {}

impl<R: AsyncRead + Unpin, D: Decoder> Stream for Frames<R, D> {
    type Item = Result<D::Item, D::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.errored {
                this.errored = false;
                this.readable = false;
                return Poll::Ready(None);
            }
            if this.readable {
                if this.eof {
                    let frame = match this.codec.decode_eof(&mut this.buf) {
                        Ok(frame) => frame,
                        Err(e) => {
                            this.errored = true;
                            return Poll::Ready(Some(Err(e)));
                        }
                    };
                    if frame.is_none() {
                        this.readable = false;
                    }
                    return Poll::Ready(frame.map(Ok));
                }
                match this.codec.decode(&mut this.buf) {
                    Ok(Some(frame)) => return Poll::Ready(Some(Ok(frame))),
                    Ok(None) => this.readable = false,
                    Err(e) => {
                        this.errored = true;
                        return Poll::Ready(Some(Err(e)));
                    }
                }
            }
            if this.buf.is_empty() {
                // No partial frame: let the allocation go (the frames decoded from it may
                // still share it; it is freed with the last of them).
                this.buf = BytesMut::new();
            }
            let mut scratch = [0u8; SCRATCH];
            let mut rb = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.rd).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    this.errored = true;
                    return Poll::Ready(Some(Err(D::Error::from(e))));
                }
                Poll::Ready(Ok(())) => {}
            }
            let read = rb.filled();
            if read.is_empty() {
                if this.eof {
                    return Poll::Ready(None);
                }
                this.eof = true;
            } else {
                this.eof = false;
                this.buf.extend_from_slice(read);
            }
            this.readable = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    use tokio_util::codec::LinesCodec;

    #[tokio::test]
    async fn partial_frames_are_kept_and_an_idle_reader_holds_no_buffer() {
        let (mut tx, rx) = tokio::io::duplex(1 << 16);
        let mut frames = Frames::new(rx, LinesCodec::new());
        tx.write_all(b"one\ntw").await.unwrap();
        assert_eq!(frames.next().await.unwrap().unwrap(), "one");
        tx.write_all(b"o\nthree\n").await.unwrap();
        assert_eq!(frames.next().await.unwrap().unwrap(), "two");
        assert_eq!(frames.next().await.unwrap().unwrap(), "three");
        // Nothing more to read: the next poll finds an empty buffer and lets it go.
        assert!(futures::FutureExt::now_or_never(frames.next()).is_none());
        assert_eq!(frames.held(), (0, 0));
        // A frame longer than one read arrives in pieces.
        let long = "x".repeat(SCRATCH * 2 + 10);
        tx.write_all(long.as_bytes()).await.unwrap();
        tx.write_all(b"\nlast").await.unwrap();
        drop(tx);
        assert_eq!(frames.next().await.unwrap().unwrap(), long);
        // At the end, `decode_eof` gives the unterminated last line, then the stream ends.
        assert_eq!(frames.next().await.unwrap().unwrap(), "last");
        assert!(frames.next().await.is_none());
    }

    #[tokio::test]
    async fn a_codec_error_is_yielded_then_the_stream_ends() {
        let (mut tx, rx) = tokio::io::duplex(1 << 16);
        let mut frames = Frames::new(rx, LinesCodec::new_with_max_length(4));
        tx.write_all(b"toolong\n").await.unwrap();
        assert!(frames.next().await.unwrap().is_err());
        assert!(frames.next().await.is_none());
    }
}
