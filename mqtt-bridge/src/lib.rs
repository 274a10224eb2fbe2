//! mqtt-bridge (in progress)
