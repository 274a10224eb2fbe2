//! Per-vehicle alarm state: the alarm bits of each vehicle's last live report, which the
//! next report is compared with to publish `alarm` events (contract §3 `alarm.data`).
//!
//! The transitions themselves are computed by the protocol crates (`jt808::alarm`,
//! `gbt32960::alarm`), pure functions of (previous bits, report); this module only keeps
//! the bits. A session resets a vehicle's state at login (the first report after login
//! raises what is set) and forgets it when it closes while still holding the vehicle.
//!
//! This is the embedded, single-process implementation behind [`AlarmStore`]; one in Redis
//! for several nodes fits the same interface (get / put / remove per vehicle), like the
//! [`Registry`](crate::registry::Registry).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use codecs::event::AlarmBits;

/// Where the alarm state of vehicles lives.
pub trait AlarmStore: Send + Sync {
    /// The bits of `vehicle_id`'s last live report; empty when none since its login.
    fn get(&self, vehicle_id: &str) -> AlarmBits;
    /// Records the bits of `vehicle_id`'s last live report.
    fn put(&self, vehicle_id: &str, bits: AlarmBits);
    /// Forgets `vehicle_id`'s state (login, end of its session).
    fn remove(&self, vehicle_id: &str);
}

/// The in-process store. Only vehicles with an alarm set take an entry.
#[derive(Debug, Default, Clone)]
pub struct LocalAlarms {
    inner: Arc<Mutex<HashMap<Arc<str>, AlarmBits>>>,
}

impl LocalAlarms {
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, AlarmBits>> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl AlarmStore for LocalAlarms {
    fn get(&self, vehicle_id: &str) -> AlarmBits {
        self.map().get(vehicle_id).copied().unwrap_or_default()
    }

    fn put(&self, vehicle_id: &str, bits: AlarmBits) {
        let mut m = self.map();
        if bits.is_empty() {
            m.remove(vehicle_id);
        } else if let Some(b) = m.get_mut(vehicle_id) {
            *b = bits;
        } else {
            m.insert(Arc::from(vehicle_id), bits);
        }
    }

    fn remove(&self, vehicle_id: &str) {
        self.map().remove(vehicle_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_empty_until_put_and_after_remove_and_empty_bits_take_no_entry() {
        let s = LocalAlarms::new();
        assert_eq!(s.get("v1"), AlarmBits::EMPTY);
        s.put("v1", AlarmBits(5));
        assert_eq!(s.get("v1"), AlarmBits(5));
        s.put("v1", AlarmBits::EMPTY);
        assert_eq!(s.get("v1"), AlarmBits::EMPTY);
        assert!(s.map().is_empty());
        s.put("v1", AlarmBits(1));
        s.remove("v1");
        assert_eq!(s.get("v1"), AlarmBits::EMPTY);
    }
}
