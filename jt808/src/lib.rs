//! JT/T 808 (2011, 2013, 2019): bytes in, typed messages and normalized events out, and
//! bytes out for every message a platform or a terminal sends. No sockets, no runtime.
//!
//! (Overview, frame diagram and `# Layout` are completed as the modules land.)

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod error;
pub mod header;
pub mod version;

pub use error::{BodyError, FrameError};
pub use header::{Encryption, Header, Package};
pub use version::Version;
