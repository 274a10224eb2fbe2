//! Vehicles an operator has banned for a while (`DELETE /api/v1/vehicles/{vid}/connection?ban_s=N`).
//!
//! One list per process: every listener's [`Authenticator`](crate::auth::Authenticator) asks
//! it before its own policy, so a banned vehicle is refused (`rejected`, reason `banned`) on
//! any listener until the ban ends. Bans are not persisted: a restart lifts them.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

fn list() -> &'static Mutex<HashMap<String, Instant>> {
    static BANS: OnceLock<Mutex<HashMap<String, Instant>>> = OnceLock::new();
    BANS.get_or_init(Default::default)
}

fn lock() -> std::sync::MutexGuard<'static, HashMap<String, Instant>> {
    list().lock().unwrap_or_else(|p| p.into_inner())
}

/// Refuses `vehicle`'s logins for `d` from now (a later ban replaces an earlier one).
pub fn ban(vehicle: &str, d: Duration) {
    let until = Instant::now() + d;
    let mut m = lock();
    let now = Instant::now();
    m.retain(|_, t| *t > now);
    m.insert(vehicle.to_owned(), until);
}

/// Whether `vehicle` is banned now.
pub fn is_banned(vehicle: &str) -> bool {
    lock().get(vehicle).is_some_and(|t| *t > Instant::now())
}

/// How many bans are in force.
pub fn count() -> usize {
    let now = Instant::now();
    lock().values().filter(|t| **t > now).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ban_ends_after_its_duration() {
        ban("ban-test-1", Duration::from_millis(50));
        assert!(is_banned("ban-test-1"));
        assert!(!is_banned("ban-test-2"));
        std::thread::sleep(Duration::from_millis(80));
        assert!(!is_banned("ban-test-1"));
    }
}
