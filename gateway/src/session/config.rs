//! What the session driver takes from a listener's configuration, whatever its protocol:
//! so that one `Listeners::spawn` (run.rs) serves every protocol.

use super::Limits;
use crate::config::{Gbt32960Config, Jt808Config, RawListenerConfig};

/// What the driver takes from a listener's configuration, whatever its protocol.
pub trait SessionConfig {
    /// Login and idle timeouts, heartbeat, frame rate limit of every connection.
    fn limits(&self) -> Limits;
    /// Seconds east of UTC of the vehicles' clocks (the configured zone; Beijing time when
    /// none is or it cannot be read).
    fn device_offset_secs(&self) -> i32 {
        codecs::time::BEIJING_OFFSET_SECS
    }
}

fn device_offset(tz: &str) -> i32 {
    codecs::time::parse_utc_offset(tz).unwrap_or(codecs::time::BEIJING_OFFSET_SECS)
}

/// JT/T 808 and GB/T 32960 listeners configure the same timeouts and clock zone.
macro_rules! timed_protocol {
    ($($cfg:ty),*) => {$(
        impl SessionConfig for $cfg {
            fn limits(&self) -> Limits {
                Limits::new(
                    self.login_timeout_s,
                    self.idle_timeout_s,
                    self.heartbeat_s,
                    self.max_frames_per_s,
                )
            }
            fn device_offset_secs(&self) -> i32 {
                device_offset(&self.device_tz)
            }
        }
    )*};
}

timed_protocol!(Jt808Config, Gbt32960Config);

impl SessionConfig for RawListenerConfig {
    /// No heartbeat: an idle timeout of 0 is a second, as is a login timeout.
    fn limits(&self) -> Limits {
        Limits::new(
            self.login_timeout_s.max(1),
            self.idle_timeout_s,
            0,
            self.max_frames_per_s,
        )
    }
}
