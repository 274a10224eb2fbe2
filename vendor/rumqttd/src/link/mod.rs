pub mod alerts;
pub mod bridge;
#[cfg(feature = "console")] // vgate patch: the HTTP console is the feature `console`
pub mod console;
pub mod local;
pub mod meters;
pub mod network;
pub mod remote;
pub mod timer;
