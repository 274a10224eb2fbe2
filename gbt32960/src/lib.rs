//! GB/T 32960.3 (2016 `##` and 2025 `$$` editions): bytes in, typed messages and
//! normalized events out, and bytes out for every message either side sends. Sans-I/O.
//!
//! (Overview, frame diagram and `# Layout` are completed as the modules land.)

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod edition;
pub mod error;
pub mod realtime;

pub use edition::Edition;
pub use error::{BodyError, FrameError};
