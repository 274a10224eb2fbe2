//! Recent events and track of the vehicles an operator is looking at (the status page's
//! vehicle view, `GET /api/v1/vehicles/{vid}/recent`).
//!
//! vgate keeps no history: events go to MQTT and the platform stores them. Keeping the last
//! events of every vehicle would cost memory with fleet size (100,000 vehicles x 50 events of
//! 1-5 KB is gigabytes), so history is kept only for vehicles being *watched*: asking for a
//! vehicle's recent events starts (or extends) a watch of [`WATCH_FOR`], and from then on its
//! events are kept, the newest [`KEEP_EVENTS`] in full and the positions of the newest
//! [`KEEP_POINTS`] location events as its track. At most [`MAX_WATCHED`] vehicles are watched at
//! once; a watch that ends is dropped with what it held.
//!
//! Cost: while nothing is watched, one atomic load per event ([`any`]); while something is,
//! one lock and hash lookup per event, and a JSON copy of the watched vehicles' events only.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use codecs::{Data, Event};
use serde::Serialize;
use utoipa::ToSchema;

/// How long a watch lasts after the last time it was asked for.
pub const WATCH_FOR: Duration = Duration::from_secs(600);
/// Events kept per watched vehicle.
pub const KEEP_EVENTS: usize = 50;
/// Track points kept per watched vehicle.
pub const KEEP_POINTS: usize = 500;
/// Vehicles watched at once.
pub const MAX_WATCHED: usize = 64;

/// One position of a vehicle's track.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Point {
    /// When the gateway received it (UTC).
    pub time: String,
    pub latitude: f64,
    pub longitude: f64,
    pub speed_kmh: Option<f64>,
}

/// What is kept of a watched vehicle.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Recent {
    /// When the watch began: nothing before it is kept.
    pub watching_since: String,
    /// Until when the watch lasts unless asked for again.
    pub watching_until: String,
    /// The newest events, newest first, as published (contract section 3).
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
    /// Positions of its location events, oldest first.
    pub track: Vec<Point>,
}

struct Watched {
    since: chrono::DateTime<chrono::Utc>,
    until: Instant,
    events: VecDeque<serde_json::Value>,
    track: VecDeque<Point>,
}

/// Why a watch cannot start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WatchError {
    #[error("{MAX_WATCHED} vehicles are watched already; try again when a watch ends")]
    Full,
}

/// When the last watch to end ends, ms after [`epoch`]: past it, events are not looked up.
static LAST_END_MS: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static E: OnceLock<Instant> = OnceLock::new();
    *E.get_or_init(Instant::now)
}

fn ms_since_epoch(t: Instant) -> u64 {
    t.saturating_duration_since(epoch()).as_millis() as u64
}

fn watched() -> std::sync::MutexGuard<'static, HashMap<String, Watched>> {
    static W: OnceLock<Mutex<HashMap<String, Watched>>> = OnceLock::new();
    W.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Whether any vehicle may be watched (one atomic load: the per-event check).
pub fn any() -> bool {
    let end = LAST_END_MS.load(Ordering::Relaxed);
    end > 0 && ms_since_epoch(Instant::now()) < end
}

/// Starts or extends the watch of `vehicle` for `for_`, and returns what it holds.
pub fn watch(vehicle: &str, for_: Duration) -> Result<Recent, WatchError> {
    epoch();
    let now = Instant::now();
    let mut w = watched();
    w.retain(|_, v| v.until > now);
    if !w.contains_key(vehicle) && w.len() >= MAX_WATCHED {
        return Err(WatchError::Full);
    }
    let entry = w.entry(vehicle.to_owned()).or_insert_with(|| Watched {
        since: chrono::Utc::now(),
        until: now,
        events: VecDeque::new(),
        track: VecDeque::new(),
    });
    entry.until = now + for_;
    LAST_END_MS.fetch_max(ms_since_epoch(entry.until), Ordering::SeqCst);
    let left = chrono::Duration::from_std(for_).unwrap_or_default();
    Ok(Recent {
        watching_since: crate::api::time(entry.since),
        watching_until: crate::api::time(chrono::Utc::now() + left),
        events: entry.events.iter().rev().cloned().collect(),
        track: entry.track.iter().cloned().collect(),
    })
}

/// Keeps `event` if its vehicle is watched.
pub fn record(event: &Event) {
    if !any() {
        return;
    }
    let mut w = watched();
    let Some(v) = w.get_mut(&*event.vehicle_id) else {
        return;
    };
    if v.until <= Instant::now() {
        w.remove(&*event.vehicle_id);
        return;
    }
    let json = serde_json::from_str(&event.to_json()).unwrap_or(serde_json::Value::Null);
    if v.events.len() == KEEP_EVENTS {
        v.events.pop_front();
    }
    v.events.push_back(json);
    if let Data::Location(l) = &event.data {
        if v.track.len() == KEEP_POINTS {
            v.track.pop_front();
        }
        v.track.push_back(Point {
            time: crate::api::time(event.received_at),
            latitude: l.latitude,
            longitude: l.longitude,
            speed_kmh: l.speed_kmh,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use codecs::{EventContext, Protocol};

    /// The watches are one table for the process: these tests take turns.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn location(vehicle: &str, lat: f64) -> Event {
        let l = codecs::event::Location {
            latitude: lat,
            longitude: 116.4,
            speed_kmh: Some(42.0),
            ..Default::default()
        };
        Event::new(
            &EventContext::now("n"),
            vehicle.into(),
            Protocol::Jt808_2013,
            None,
            None,
            Data::Location(l),
        )
    }

    #[test]
    fn a_watched_vehicle_keeps_its_newest_events_and_its_track_others_nothing() {
        let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let r = watch("watch-unit-1", Duration::from_secs(60)).unwrap();
        assert!(r.events.is_empty() && r.track.is_empty());
        assert!(any());
        for i in 0..(KEEP_EVENTS + 5) {
            record(&location("watch-unit-1", 39.0 + i as f64 * 0.001));
            record(&location("watch-unit-other", 10.0));
        }
        let r = watch("watch-unit-1", Duration::from_secs(60)).unwrap();
        assert_eq!(r.events.len(), KEEP_EVENTS);
        assert_eq!(r.track.len(), KEEP_EVENTS + 5);
        // Newest event first; track oldest first.
        let newest = r.events[0]["data"]["latitude"].as_f64().unwrap();
        assert!((newest - (39.0 + (KEEP_EVENTS + 4) as f64 * 0.001)).abs() < 1e-9);
        assert_eq!(r.events[0]["vehicle_id"], "watch-unit-1");
        assert!((r.track[0].latitude - 39.0).abs() < 1e-9);
        assert_eq!(r.track[0].speed_kmh, Some(42.0));
        assert!(!watched().contains_key("watch-unit-other"));
    }

    #[test]
    fn an_ended_watch_keeps_nothing_and_the_number_of_watches_is_capped() {
        let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let first = watch("watch-unit-short", Duration::from_millis(1)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        record(&location("watch-unit-short", 1.0));
        // Asked for again, it is a new watch: nothing from after the old one ended.
        std::thread::sleep(Duration::from_millis(2));
        let again = watch("watch-unit-short", Duration::from_millis(1)).unwrap();
        assert!(again.events.is_empty() && again.track.is_empty());
        assert_ne!(again.watching_since, first.watching_since);
        // Fill up to the cap (the other test's watch counts too).
        let mut started = Vec::new();
        let mut refused = None;
        for i in 0..=MAX_WATCHED {
            match watch(&format!("watch-unit-cap-{i}"), Duration::from_millis(300)) {
                Ok(_) => started.push(i),
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        assert_eq!(refused, Some(WatchError::Full), "{} started", started.len());
        // A vehicle watched already may be asked for again at the cap.
        assert!(watch("watch-unit-cap-0", Duration::from_millis(300)).is_ok());
        std::thread::sleep(Duration::from_millis(350));
        assert!(watch("watch-unit-after", Duration::from_secs(1)).is_ok());
        // Leave no full table behind: the other test's watch lasts a minute.
        watched().retain(|k, _| !k.starts_with("watch-unit-cap-"));
    }
}
