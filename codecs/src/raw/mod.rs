//! Raw TCP listeners: vehicles that speak a private protocol over plain TCP.
//!
//! Many fleets have no JT/T 808 or GB/T 32960 terminals but a vendor box that sends its
//! own frames. vgate cannot understand those frames, but it can still cut the stream into
//! frames, tell which vehicle is talking, and publish every frame as a `passthrough` event
//! (`protocol = "raw"`) so the platform gets the bytes on the usual topics. A `[[raw]]`
//! listener is configured with four parts, each a piece of this module:
//!
//! ```text
//!  TCP bytes --framing--> frames --identity--> vehicle id
//!                           |                      |
//!                           +--payload--> passthrough Event --> MQTT
//!                           +--ack------> bytes written back
//! ```
//!
//! - [`config`]: the serde structs of those four parts ([`Framing`], [`Identity`],
//!   [`PayloadMode`], [`Ack`], grouped as [`RawListenerSpec`]) and their validation
//!   ([`ConfigError`] names the key).
//! - The framers, tokio-util [`Decoder`](tokio_util::codec::Decoder)s and
//!   [`Encoder`](tokio_util::codec::Encoder)s over `BytesMut`, so the gateway can wrap a
//!   socket in `Framed` and downlink bodies are framed the same way as uplink ones:
//!   [`DelimitedCodec`], [`LengthPrefixedCodec`], [`FixedCodec`], and [`RawCodec`], which
//!   is whichever of them the config names. Items are `Result<Bytes, RawFrameError>`: an
//!   `Err` *item* is a bad frame the stream recovered from (count it, keep reading); a
//!   decoder `Err` ([`CodecError`]) means the stream cannot recover (close it), because an
//!   `Err` ends `FramedRead` anyway.
//! - [`identity`]: the vehicle id from the login frame, a field of every frame, or the peer
//!   address ([`Identifier`] is the per-connection state).
//! - [`payload`]: the event `data` of a frame (base64/hex, or the frame's JSON object).
//! - [`Acker`]: the bytes written back for each accepted frame.
//!
//! # Resync, per framing
//! - `delimited`: always recovers. An oversize frame is reported once
//!   ([`RawFrameError::TooLarge`]) and skipped up to the next delimiter; the buffer never
//!   holds more than `max_frame_len` plus two delimiters between reads.
//! - `length_prefixed`: cannot recover. A length that is impossible or above
//!   `max_frame_len` (checked from the header, before buffering the frame) or a wrong
//!   `prefix` is a fatal [`CodecError`]: nothing in the stream says where the next frame
//!   starts.
//! - `fixed`: nothing to recover from; every `size` bytes are a frame.
//!
//! At end of stream (`decode_eof`) an incomplete frame is reported as
//! [`RawFrameError::Truncated`], except a `delimited` tail without `both_ends`, which is the
//! last frame (like tokio-util's `LinesCodec`).
//!
//! No I/O here: sockets, timers, auth and MQTT belong to the gateway.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

mod ack;
mod codec;
mod command;
pub mod config;
mod delimited;
mod error;
mod fixed;
pub mod identity;
mod length_prefixed;
pub mod payload;

pub use ack::Acker;
pub use codec::RawCodec;
pub use command::command_body;
pub use config::{
    Ack, ByteRange, Charset, ConfigError, DelimitedFraming, Endian, FieldIdentity,
    FirstFrameIdentity, FixedFraming, Framing, IdEncoding, IdPattern, Identity,
    LengthPrefixedFraming, PayloadMode, RawListenerSpec, DEFAULT_MAX_FRAME_LEN, MAX_FRAME_LEN_CAP,
};
pub use delimited::DelimitedCodec;
pub use error::{CodecError, RawFrameError};
pub use fixed::FixedCodec;
pub use identity::{peer_id, FrameRole, Identifier, IdentityError};
pub use length_prefixed::LengthPrefixedCodec;
pub use payload::PayloadError;
