//! GB/T 32960.3 (2016 `##` and 2025 `$$` editions): bytes in, typed messages and
//! normalized events out, and bytes out for every message either side sends. Sans-I/O.
//!
//! The frame (GB/T 32960.3-2016 table 2; -2025 table 2 and B.1; big-endian):
//!
//! ```text
//!  0      2    3    4                    21   22     24          24+n
//! +------+----+----+--------------------+----+------+-----------+-----+
//! |##/$$ |cmd |flag| VIN (17, padded)   |enc | n    | data (n)  | BCC |
//! +------+----+----+--------------------+----+------+-----------+-----+
//!  start  0x01 login .. 0x82 control     0x01 none, 0x02 RSA, 0x03 AES-128,
//!         flag 0xFE command, 0x01.. answer     2025: 0x04 SM2, 0x05 SM4
//!                                         n <= 65531; BCC = XOR of bytes 2 .. 23+n
//! ```
//!
//! The start marker gives the edition of each frame (both may share a listener); the
//! body layouts that differ (login, real-time units, parameter widths 0x02/0x03) follow it.
//! An encrypted data unit is decrypted with a configured key or passed through, never read
//! as plaintext.
//!
//! ```text
//!  bytes --Codec--> Frame --(crypto)--> Message::decode --> Message --(normalize)--> events
//!  Command --command::build--> Message --to_frame--> Frame --to_wire--> bytes
//! ```
//!
//! # Layout
//! - [`alarm`]: alarm transitions of real-time reports (previous flags + report -> `alarm`
//!   events).
//! - [`edition`]: the two editions.
//! - [`frame`]: [`Frame`] parse/to_wire, [`Encryption`], [`ResponseFlag`], BCC.
//! - [`codec`]: [`Codec`], the `tokio_util` framing (resync, size limit, bad frames as items).
//! - [`msg`]: [`Message`] and one module per command family (login, logout, platform,
//!   heartbeat/time calibration, activation, key exchange, params, control, responses);
//!   `msg::id`, the command-byte table (constants, metric labels, `is_report`,
//!   `is_platform_command`).
//! - [`realtime`]: the 0x02/0x03 real-time and reissue report and its info units.
//! - [`crypto`]: AES-128 and SM4 data-unit decryption with configured keys.
//! - [`command`]: contract commands (`query_params`, `set_params`, `terminal_control`,
//!   `raw`) to messages.
//! - [`normalize`]: messages to normalized events (telemetry, location, lifecycle,
//!   passthrough).
//! - [`raw`]: the protocol-level JSON of a frame ([`raw_json`]).
//! - [`error`]: [`FrameError`] and [`BodyError`], each with a bounded metric `reason()`.

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]
// Unit tests may unwrap: a panic there is a failed test. The library build is still fenced.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod alarm;
pub mod codec;
pub mod command;
pub mod crypto;
pub mod edition;
pub mod error;
pub mod frame;
pub mod msg;
pub mod normalize;
pub mod raw;
pub mod realtime;
pub mod verify;

pub use codec::{BadFrame, Codec, CodecConfig};
pub use edition::Edition;
pub use error::{BodyError, FrameError};
pub use frame::{Encryption, Frame, ResponseFlag};
pub use msg::response::{reply, ReplyStyle};
pub use msg::Message;
pub use normalize::{
    normalize, normalize_message, normalize_message_with, normalize_with, CellLists, Options,
};
pub use raw::raw_json;
