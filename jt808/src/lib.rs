//! JT/T 808 (2011, 2013, 2019): bytes in, typed messages and normalized events out, and
//! bytes out for every message a platform or a terminal sends. No sockets, no runtime.
//!
//! The frame (JT/T 808-2013 §4.4, -2019 §4; big-endian; notes §1):
//!
//! ```text
//!  7E | escaped( header                                   | body       | BCC ) | 7E
//!
//!  header 2011/2013: msg_id u16 | attrs u16 | phone BCD[6]          | serial u16 | [total u16 | index u16]
//!  header 2019:      msg_id u16 | attrs u16 | ver u8 | phone BCD[10] | serial u16 | [total u16 | index u16]
//!  attrs:            bit 14 edition 2019 | bit 13 subpackaged | bits 12-10 encryption | bits 9-0 body length
//!  escaping:         7E -> 7D 02, 7D -> 7D 01 inside the frame, so 7E only delimits
//!  BCC:              XOR of every byte from msg_id to the end of the body, before escaping
//! ```
//!
//! The edition of a frame is read from its header (bit 14; a 2011 and a 2013 header look the
//! same, the register body tells them apart), and the body layouts that differ between
//! editions follow it ([`Version`]). A body longer than 1023 bytes travels in packages
//! (bit 13) that [`subpackage`] reassembles or splits. An encrypted body is returned as such
//! and never parsed as plaintext.
//!
//! ```text
//!  bytes --Codec--> Frame --(Reassembler if subpackaged)--> Message::decode --> Message
//!        Message --normalize--> codecs::Event (location, lifecycle, passthrough...)
//!        Message --ack_policy--> the answer the platform owes (0x8001, 0x8100...)
//!  Command JSON --command::build--> Message --encode--> Frame --Codec--> bytes
//! ```
//!
//! The same message module decodes uplink and encodes downlink, so the gateway, the tests
//! and `vgate simulate` (which speaks as a terminal) share one copy of the wire code. Like
//! every protocol crate, this one is panic-free on any input (the `clippy::unwrap_used` and
//! `clippy::indexing_slicing` fence below).
//!
//! # Layout
//!
//! - [`codec`]: [`Codec`], the `tokio_util` framing on 0x7E (resync after junk, size limit
//!   before buffering, a bad frame as an item so the connection survives it).
//! - [`escape`]: 0x7D byte stuffing, and the unescaped-0x7D-checksum quirk seen in the field.
//! - [`frame`]: [`Frame`] parse and to-wire, the checksum and its [`ChecksumPolicy`].
//! - [`header`]: [`Header`], body attributes, [`Encryption`], [`Package`].
//! - [`version`]: the three editions and what differs between them on the wire.
//! - [`subpackage`]: [`Reassembler`] of incoming packages (with the 0x8003 resend request)
//!   and [`split`] of outgoing bodies.
//! - `msg/`: typed message bodies, decode and encode, one file per message family
//!   ([`Message`], [`ack_policy`]); the message-id table (`msg::id`: constants and metric
//!   labels) and general-response result codes (`msg::response::result`).
//! - [`alarm`]: alarm transitions of live reports (previous bits + report -> `alarm` events).
//! - [`media`]: multimedia uploads (0x0801) to `media` events (names of the codes, file
//!   names); the gateway stores the file.
//! - [`command`]: contract commands to platform messages ([`command::build`]).
//! - [`normalize`](mod@normalize): messages to contract events ([`normalize()`];
//!   [`normalize_as`] for a session that knows its edition) and `--raw` JSON ([`raw_json`]).
//! - [`error`]: [`FrameError`] and [`BodyError`].

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod alarm;
pub mod codec;
pub mod command;
pub mod error;
pub mod escape;
pub mod frame;
pub mod header;
pub mod media;
pub mod msg;
pub mod normalize;
pub mod ota;
pub mod subpackage;
pub mod version;

pub use codec::{BadFrame, Codec, CodecConfig};
pub use error::{BodyError, FrameError};
pub use frame::{ChecksumPolicy, Frame};
pub use header::{Encryption, Header, Package};
pub use msg::{ack_policy, Ack, Answers, Message};
pub use normalize::{normalize, normalize_as, raw_json, Normalizer};
pub use subpackage::{
    split, Reassembled, Reassembler, ReassemblyConfig, ReassemblyError, ReassemblyEvent,
};
pub use version::Version;
