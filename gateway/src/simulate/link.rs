//! What both simulated devices share: the framed connection to the platform, the id the
//! device puts in its frames (a VIN or a phone number) and its message counter. The device
//! types ([`super::jt808::Terminal`], [`super::gbt32960::Vehicle`]) add what their protocol
//! needs on top; reading with a deadline and watching for the platform to close are the same
//! for both, so they live here once.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio_util::codec::Framed;

use super::{Io, Stream};

/// A simulated device's connection: codec `C` over a plain, TLS or in-memory stream.
pub struct Link<C> {
    /// The framed stream (the device types send and read through it).
    pub io: Framed<Stream, C>,
    /// The id in the device's frames: the VIN (GB/T 32960) or the phone number (JT/T 808).
    pub id: String,
    /// The device's counter: the next message serial (JT/T 808) or the login sequence
    /// (GB/T 32960).
    pub seq: u16,
}

impl<C> Link<C> {
    /// A link over an already connected stream.
    pub fn over(stream: impl Io + 'static, codec: C, id: &str, seq: u16) -> Link<C> {
        Link {
            io: super::framed(stream, codec),
            id: id.to_string(),
            seq,
        }
    }

    /// Takes the counter's value and moves it on by one (wrapping, as serials do).
    pub fn next_seq(&mut self) -> u16 {
        let seq = self.seq;
        self.seq = seq.wrapping_add(1);
        seq
    }

    /// Writes raw wire bytes, past the codec (bursts, malformed-input tests).
    pub async fn send_wire(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.get_mut().write_all(bytes).await
    }

    /// Whether the platform closes the connection within `t` (frames meanwhile are read and
    /// dropped).
    pub async fn closed_within<T, E>(&mut self, t: Duration) -> bool
    where
        Framed<Stream, C>: futures::Stream<Item = Result<T, E>> + Unpin,
    {
        super::closed_within(&mut self.io, t).await
    }
}

/// A kind of simulated device: how one is made over a stream, and so how one connects.
pub trait Device: Sized + Send {
    /// The protocol edition or version the device speaks.
    type Edition: Send;

    /// A device over an already connected stream (plain, TLS, in-memory), saying `id` (its
    /// VIN or phone number) in its frames.
    fn over(stream: impl Io + 'static, id: &str, edition: Self::Edition) -> Self;

    /// Connects to a gateway listener over TCP (Nagle off: a device's frames go out at once).
    fn connect(
        addr: SocketAddr,
        id: &str,
        edition: Self::Edition,
    ) -> impl Future<Output = io::Result<Self>> + Send {
        async move { Ok(Self::over(super::tcp(addr).await?, id, edition)) }
    }
}

/// `read`, or a `TimedOut` error if the platform has not answered by `deadline`.
pub async fn before<T>(
    deadline: tokio::time::Instant,
    read: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    tokio::time::timeout_at(deadline, read)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer from the platform"))?
}

/// An I/O error saying `msg` (what the simulated device could not encode or decode).
pub fn io_err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}
