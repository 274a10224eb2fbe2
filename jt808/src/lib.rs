//! JT/T 808 (2011, 2013, 2019): bytes in, typed messages and normalized events out, and
//! bytes out for every message a platform or a terminal sends. No sockets, no runtime.
//!
//! (Overview, frame diagram and `# Layout` are completed as the modules land.)
//!
//! # Layout
//!
//! - `msg/`: typed message bodies, decode and encode ([`Message`], [`ack_policy`]); the
//!   message-id table (`msg::id`: constants and metric labels) and general-response result
//!   codes (`msg::response::result`).
//! - `command`: contract commands to platform messages ([`command::build`]).
//! - `normalize`: messages to contract events ([`normalize()`]; [`normalize_as`] for a session
//!   that knows its edition) and `--raw` JSON ([`raw_json`]).

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod codec;
pub mod command;
pub mod error;
pub mod escape;
pub mod frame;
pub mod header;
pub mod msg;
pub mod normalize;
pub mod subpackage;
pub mod version;

pub use codec::{BadFrame, Codec, CodecConfig};
pub use error::{BodyError, FrameError};
pub use frame::{ChecksumPolicy, Frame};
pub use header::{Encryption, Header, Package};
pub use msg::{ack_policy, Ack, Answers, Message};
pub use normalize::{normalize, normalize_as, raw_json};
pub use subpackage::{
    split, Reassembled, Reassembler, ReassemblyConfig, ReassemblyError, ReassemblyEvent,
};
pub use version::Version;
