//! `alarm.data`: one alarm raised or cleared, and the pure transition rule that makes them.
//!
//! A session keeps, per vehicle, the alarm bits of its last live report ([`AlarmBits`]:
//! the JT/T 808 alarm word, the GB/T 32960 general alarm flags). Each new live report is
//! compared with them ([`AlarmBits::changes`]): a bit that goes 0 -> 1 is one `raised`
//! event, 1 -> 0 one `cleared` event, an unchanged bit nothing. The protocol crates name the
//! bits and add their detail; the gateway only stores the bits (contract §3 `alarm.data`).
//!
//! ```text
//!  before 0b0110, report 0b0011  ->  bit 0 raised, bit 2 cleared (bit 1 unchanged: nothing)
//! ```

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Whether the alarm started or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlarmState {
    Raised,
    Cleared,
}

/// An alarm transition. `name` is the same snake_case name as in `location.data.alarms`
/// or `telemetry.data.alarm.flags`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmEvent {
    pub name: Cow<'static, str>,
    pub state: AlarmState,
    /// GB/T 32960 alarm level (0-4) where the protocol has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    /// Protocol-specific detail (fault codes, position...), flattened into `data`.
    #[serde(flatten)]
    pub detail: serde_json::Map<String, serde_json::Value>,
}

/// The alarm bits of a vehicle's last live report, numbered as its protocol numbers them
/// (JT/T 808 alarm word bit 0 = emergency; GB/T 32960 general alarm flag bit 0 =
/// temperature difference). Empty at login: the first report raises what it sets.
///
/// Plain data (serde both ways), so a store outside the process can hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AlarmBits(pub u32);

impl AlarmBits {
    /// No alarm set.
    pub const EMPTY: AlarmBits = AlarmBits(0);

    /// Whether no bit is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Every bit that differs between `self` (the previous report) and `now`, lowest bit
    /// first: `Raised` for a bit set in `now` only, `Cleared` for a bit set in `self` only.
    /// Nothing for equal words, so an identical report publishes nothing.
    pub fn changes(self, now: AlarmBits) -> impl Iterator<Item = (u32, AlarmState)> {
        let diff = self.0 ^ now.0;
        (0..32u32)
            .filter(move |b| diff >> b & 1 == 1)
            .map(move |b| {
                if now.0 >> b & 1 == 1 {
                    (b, AlarmState::Raised)
                } else {
                    (b, AlarmState::Cleared)
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_doc_example_raises_bit_0_and_clears_bit_2() {
        let got: Vec<_> = AlarmBits(0b0110).changes(AlarmBits(0b0011)).collect();
        assert_eq!(got, [(0, AlarmState::Raised), (2, AlarmState::Cleared)]);
    }

    #[test]
    fn a_level_field_of_none_is_absent_and_detail_is_flattened() {
        let mut detail = serde_json::Map::new();
        detail.insert("bit".into(), 0.into());
        let e = AlarmEvent {
            name: "emergency".into(),
            state: AlarmState::Raised,
            level: None,
            detail,
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"name": "emergency", "state": "raised", "bit": 0})
        );
    }

    proptest::proptest! {
        #[test]
        fn applying_the_changes_to_the_previous_bits_gives_the_report(prev: u32, now: u32) {
            let mut bits = prev;
            let mut last = None;
            for (b, state) in AlarmBits(prev).changes(AlarmBits(now)) {
                proptest::prop_assert!(last.is_none_or(|l| l < b), "ascending, once each");
                last = Some(b);
                match state {
                    AlarmState::Raised => {
                        proptest::prop_assert_eq!(bits >> b & 1, 0);
                        bits |= 1 << b;
                    }
                    AlarmState::Cleared => {
                        proptest::prop_assert_eq!(bits >> b & 1, 1);
                        bits &= !(1 << b);
                    }
                }
            }
            proptest::prop_assert_eq!(bits, now);
            proptest::prop_assert_eq!(
                AlarmBits(prev).changes(AlarmBits(now)).count() as u32,
                (prev ^ now).count_ones()
            );
        }

        #[test]
        fn the_same_report_twice_changes_nothing(bits: u32) {
            proptest::prop_assert_eq!(AlarmBits(bits).changes(AlarmBits(bits)).count(), 0);
            let from_login: Vec<_> = AlarmBits::EMPTY.changes(AlarmBits(bits)).collect();
            proptest::prop_assert!(from_login.iter().all(|(_, s)| *s == AlarmState::Raised));
            proptest::prop_assert_eq!(from_login.len() as u32, bits.count_ones());
        }
    }
}
