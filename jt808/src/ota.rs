//! Pushing an upgrade package to a terminal (0x8108), sans-I/O.
//!
//! A firmware image of megabytes is one 0x8108 message: upgrade type, maker id, version,
//! then the package (`msg::UpgradePackage`). Its body is split into packages of at most
//! 1,023 bytes (attribute bit 13, JT/T 808-2019 §4.4.3), each with its own consecutive
//! serial. Written all at once, two thousand frames would overrun a terminal's receive
//! buffer and a lost one would be noticed only at the end, so [`Push`] sends them with flow
//! control:
//!
//! - at most `window` packages are unanswered at a time; the terminal answers each with a
//!   0x0001 naming its serial, and every answer lets the next one go;
//! - a package not answered within `timeout` is sent again, `retries` more times at most;
//!   a 0x0001 with result 1 or 2 (failure, message error) asks for it again too;
//! - a 2019 terminal's resend request (0x0005) names the packages it is missing: those are
//!   sent again, and every other package sent so far counts as received.
//!
//! The upgrade result (0x0108) follows the transfer, often after the terminal restarted;
//! waiting for it is the caller's business. The package bytes are shared (`Arc<[u8]>`): a
//! package pushed to a thousand terminals is held once, and each package's body is copied
//! out only when it is written.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::header::MAX_BODY_LEN;
use crate::msg::id;
use crate::{Frame, Header, Package};

/// How a [`Push`] sends its packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushConfig {
    /// Body bytes per package (clamped to 1..=1023; go-jt808 and most terminals use 1000).
    pub package_bytes: usize,
    /// Packages sent and not yet answered, at most.
    pub window: usize,
    /// How long a package may go unanswered before it is sent again.
    pub timeout: Duration,
    /// Sends of one package after the first before the push fails.
    pub retries: u32,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            package_bytes: crate::subpackage::DEFAULT_SPLIT,
            window: 16,
            timeout: Duration::from_secs(10),
            retries: 3,
        }
    }
}

/// Why a push cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The message would need more packages than a WORD can count.
    #[error("{len} bytes in packages of {size} need more than 65,535 packages")]
    TooLarge { len: usize, size: usize },
    /// A package went unanswered through every retry.
    #[error("package {index} of {total} not answered after {attempts} sends")]
    NoAnswer {
        index: u16,
        total: u16,
        attempts: u32,
    },
    /// The terminal refused a package (result 3, unsupported) or kept refusing it.
    #[error("the terminal refused package {index} of {total} (result {result})")]
    Refused { index: u16, total: u16, result: u8 },
}

/// Where one package stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Unsent,
    /// Written, not yet answered.
    InFlight {
        sent_at: Instant,
        attempts: u32,
    },
    /// To be written again (asked for, or refused), after `attempts` sends.
    Resend {
        attempts: u32,
    },
    Received,
}

/// One 0x8108 message being pushed to one terminal.
#[derive(Debug)]
pub struct Push {
    /// The body before the package bytes (`UpgradePackage::encode_head`).
    head: Vec<u8>,
    package: Arc<[u8]>,
    size: usize,
    total: u16,
    first_serial: u16,
    cfg: PushConfig,
    parts: Vec<Part>,
    /// Packages to write again, in the order they were asked for (1-based).
    resend: VecDeque<u16>,
    /// The next package never written (0-based).
    fresh: usize,
    in_flight: usize,
    received: usize,
}

impl Push {
    /// A push of the body `head` + `package` whose packages take the serials from
    /// `first_serial` on (the caller reserves [`Push::packages`] serials).
    pub fn new(
        head: Vec<u8>,
        package: Arc<[u8]>,
        first_serial: u16,
        cfg: PushConfig,
    ) -> Result<Push, PushError> {
        let size = cfg.package_bytes.clamp(1, MAX_BODY_LEN);
        let len = head.len() + package.len();
        let total = u16::try_from(len.div_ceil(size).max(1))
            .map_err(|_| PushError::TooLarge { len, size })?;
        Ok(Push {
            head,
            package,
            size,
            total,
            first_serial,
            cfg,
            parts: vec![Part::Unsent; usize::from(total)],
            resend: VecDeque::new(),
            fresh: 0,
            in_flight: 0,
            received: 0,
        })
    }

    /// The number of packages, hence of serials the push uses.
    pub fn packages(&self) -> u16 {
        self.total
    }

    /// The serial of package 1, by which resend requests name the message.
    pub fn first_serial(&self) -> u16 {
        self.first_serial
    }

    /// Packages the terminal has answered.
    pub fn received(&self) -> u16 {
        u16::try_from(self.received).unwrap_or(u16::MAX)
    }

    /// Whole percent of the packages answered.
    pub fn progress_pct(&self) -> u8 {
        u8::try_from(self.received * 100 / usize::from(self.total)).unwrap_or(100)
    }

    /// Every package answered: the terminal holds the whole message.
    pub fn is_complete(&self) -> bool {
        self.received == usize::from(self.total)
    }

    fn serial_of(&self, index: u16) -> u16 {
        self.first_serial.wrapping_add(index.wrapping_sub(1))
    }

    fn index_of(&self, serial: u16) -> Option<u16> {
        let d = serial.wrapping_sub(self.first_serial);
        (d < self.total).then(|| d + 1)
    }

    fn part(&mut self, index: u16) -> Option<&mut Part> {
        self.parts.get_mut(usize::from(index).checked_sub(1)?)
    }

    /// Marks package `index` written at `now`, `attempts` sends so far.
    fn mark_sent(&mut self, index: u16, now: Instant, attempts: u32) {
        if let Some(p) = self.part(index) {
            *p = Part::InFlight {
                sent_at: now,
                attempts,
            };
        }
    }

    /// The packages to write now (1-based), marked as written at `now`: the ones asked for
    /// again first, then new ones, while fewer than `window` are unanswered.
    pub fn next(&mut self, now: Instant) -> Vec<u16> {
        let window = self.cfg.window.max(1);
        let mut out = Vec::new();
        while self.in_flight < window {
            let Some(index) = self.resend.pop_front() else {
                break;
            };
            let Some(Part::Resend { attempts }) = self.part(index).copied() else {
                continue;
            };
            self.mark_sent(index, now, attempts + 1);
            self.in_flight += 1;
            out.push(index);
        }
        while self.in_flight < window && self.fresh < self.parts.len() {
            let i = self.fresh;
            self.fresh += 1;
            if self.parts.get(i) != Some(&Part::Unsent) {
                continue;
            }
            let index = u16::try_from(i + 1).unwrap_or(u16::MAX);
            self.mark_sent(index, now, 1);
            self.in_flight += 1;
            out.push(index);
        }
        out
    }

    /// The packages unanswered for longer than `timeout`, to write again now (marked so);
    /// an error once one of them has had every retry.
    pub fn timed_out(&mut self, now: Instant) -> Result<Vec<u16>, PushError> {
        let mut out = Vec::new();
        for (i, p) in self.parts.iter_mut().enumerate() {
            let Part::InFlight { sent_at, attempts } = *p else {
                continue;
            };
            if now.saturating_duration_since(sent_at) < self.cfg.timeout {
                continue;
            }
            let index = u16::try_from(i + 1).unwrap_or(u16::MAX);
            if attempts > self.cfg.retries {
                return Err(PushError::NoAnswer {
                    index,
                    total: self.total,
                    attempts,
                });
            }
            *p = Part::InFlight {
                sent_at: now,
                attempts: attempts + 1,
            };
            out.push(index);
        }
        Ok(out)
    }

    /// The frame of package `index` (1-based) to the terminal `to` (its phone and edition).
    pub fn frame(&self, to: &Header, index: u16) -> Frame {
        let mut header = to.reply(id::UPGRADE_PACKAGE, self.serial_of(index));
        if self.total > 1 {
            header.package = Some(Package {
                total: self.total,
                index,
            });
        }
        Frame::new(header, self.body_of(index))
    }

    /// Package `index`'s slice of head + package.
    fn body_of(&self, index: u16) -> Bytes {
        let len = self.head.len() + self.package.len();
        let start = (usize::from(index.max(1)) - 1) * self.size;
        let end = (start + self.size).min(len);
        let mut out = Vec::with_capacity(end.saturating_sub(start));
        let h = self.head.len();
        if start < h {
            out.extend_from_slice(self.head.get(start..end.min(h)).unwrap_or_default());
        }
        let (ps, pe) = (start.max(h) - h, end.max(h) - h);
        out.extend_from_slice(self.package.get(ps..pe).unwrap_or_default());
        Bytes::from(out)
    }

    /// A 0x0001 from the terminal answering `serial` with `result`: `Ok(true)` when it
    /// answers one of this push's packages. Result 0 marks the package received; 1 and 2
    /// (failure, message error) ask for it again; anything else ends the push.
    pub fn on_response(&mut self, serial: u16, result: u8) -> Result<bool, PushError> {
        let Some(index) = self.index_of(serial) else {
            return Ok(false);
        };
        let total = self.total;
        let retries = self.cfg.retries;
        let Some(p) = self.part(index) else {
            return Ok(false);
        };
        let was = *p;
        let attempts = match was {
            Part::InFlight { attempts, .. } => attempts,
            // A late or repeated answer: nothing changes.
            Part::Unsent | Part::Resend { .. } | Part::Received => return Ok(true),
        };
        match result {
            crate::msg::response::result::OK => {
                *p = Part::Received;
                self.in_flight -= 1;
                self.received += 1;
            }
            crate::msg::response::result::FAILURE | crate::msg::response::result::MESSAGE_ERROR
                if attempts <= retries =>
            {
                *p = Part::Resend { attempts };
                self.in_flight -= 1;
                self.resend.push_back(index);
            }
            _ => {
                return Err(PushError::Refused {
                    index,
                    total,
                    result,
                })
            }
        }
        Ok(true)
    }

    /// A resend request (0x0005) naming the message by `first_serial`: `true` when it is
    /// this push's. The packages in `ids` are written again; every other package written
    /// so far is taken as received (the terminal has looked at the whole message).
    pub fn on_resend_request(&mut self, first_serial: u16, ids: &[u16]) -> bool {
        if first_serial != self.first_serial {
            return false;
        }
        for i in 0..self.parts.len() {
            let index = u16::try_from(i + 1).unwrap_or(u16::MAX);
            let asked = ids.contains(&index);
            let Some(p) = self.parts.get_mut(i) else {
                continue;
            };
            match (*p, asked) {
                (Part::InFlight { attempts, .. }, true) => {
                    *p = Part::Resend { attempts };
                    self.in_flight -= 1;
                    self.resend.push_back(index);
                }
                (Part::InFlight { .. }, false) => {
                    *p = Part::Received;
                    self.in_flight -= 1;
                    self.received += 1;
                }
                (Part::Received, true) => {
                    *p = Part::Resend { attempts: 1 };
                    self.received -= 1;
                    self.resend.push_back(index);
                }
                (Part::Resend { .. }, false) => {
                    *p = Part::Received;
                    self.received += 1;
                }
                _ => {}
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::msg::{Message, UpgradePackage};
    use crate::subpackage::{Reassembler, ReassemblyConfig};
    use crate::Version;
    use proptest::prelude::*;

    fn order(version: Version, package: &[u8]) -> (UpgradePackage, Vec<u8>) {
        let m = UpgradePackage {
            upgrade_type: 0,
            maker_id: vec![b'A'; UpgradePackage::maker_id_len(version)],
            version: "F2.01".into(),
            package: package.to_vec(),
        };
        let mut head = Vec::new();
        m.encode_head(version, package.len(), &mut head).unwrap();
        (m, head)
    }

    fn terminal(version: Version) -> Header {
        let phone = match version {
            Version::V2019 => "00000000013912345678",
            _ => "013912345678",
        };
        Header::to_terminal(0x0002, version, phone.into(), 1)
    }

    fn cfg(window: usize) -> PushConfig {
        PushConfig {
            package_bytes: 100,
            window,
            timeout: Duration::from_secs(5),
            retries: 2,
        }
    }

    /// Feeds `frames` to a reassembler the way a terminal would and returns the message.
    fn reassemble(frames: &[Frame]) -> Option<(Header, Vec<u8>)> {
        let mut r = Reassembler::new(ReassemblyConfig {
            max_total: u16::MAX,
            ..Default::default()
        });
        let now = Instant::now();
        for f in frames {
            if f.header.package.is_none() {
                return Some((f.header.clone(), f.body.to_vec()));
            }
            if let Some(whole) = r.push(f.clone(), now).unwrap() {
                return Some((whole.frame.header.clone(), whole.frame.body.to_vec()));
            }
        }
        None
    }

    #[test]
    fn a_lossless_push_goes_in_windows_and_reassembles_to_the_whole_message() {
        let package: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let (m, head) = order(Version::V2013, &package);
        let to = terminal(Version::V2013);
        let mut p = Push::new(head, package.into(), 40, cfg(4)).unwrap();
        assert_eq!(p.packages(), 11, "1,014 bytes in packages of 100");
        let now = Instant::now();
        let mut frames = Vec::new();
        let first = p.next(now);
        assert_eq!(first, vec![1, 2, 3, 4], "a window of four");
        assert!(p.next(now).is_empty(), "nothing more until an answer");
        let mut pending: VecDeque<u16> = first.into();
        while let Some(i) = pending.pop_front() {
            let f = p.frame(&to, i);
            assert_eq!(f.header.serial, 40 + i - 1);
            assert_eq!(
                f.header.package,
                Some(Package {
                    total: 11,
                    index: i
                })
            );
            assert_eq!(f.header.msg_id, 0x8108);
            assert!(p.on_response(f.header.serial, 0).unwrap());
            frames.push(f);
            pending.extend(p.next(now));
            assert!(p.progress_pct() <= 100);
        }
        assert!(p.is_complete());
        assert_eq!(p.progress_pct(), 100);
        let (h, body) = reassemble(&frames).unwrap();
        let mut whole = Vec::new();
        m.encode(Version::V2013, &mut whole).unwrap();
        assert_eq!(body, whole);
        assert_eq!(
            Message::decode(&h, &body).unwrap(),
            Message::UpgradePackage(m)
        );
    }

    #[test]
    fn a_small_package_is_one_frame_without_package_fields() {
        let (_, head) = order(Version::V2019, b"tiny");
        let mut p = Push::new(head, Arc::from(&b"tiny"[..]), 7, cfg(4)).unwrap();
        assert_eq!(p.packages(), 1);
        assert_eq!(p.next(Instant::now()), vec![1]);
        let f = p.frame(&terminal(Version::V2019), 1);
        assert_eq!(f.header.package, None);
        assert_eq!(f.header.serial, 7);
        assert!(!p.on_response(8, 0).unwrap(), "serial 8 is not ours");
        assert!(p.on_response(7, 0).unwrap());
        assert!(p.is_complete());
    }

    #[test]
    fn unanswered_packages_go_again_then_the_push_fails() {
        let package = vec![1u8; 500];
        let (_, head) = order(Version::V2013, &package);
        let mut p = Push::new(head, package.into(), 0, cfg(2)).unwrap();
        let t0 = Instant::now();
        assert_eq!(p.next(t0), vec![1, 2]);
        p.on_response(0, 0).unwrap();
        assert_eq!(p.next(t0), vec![3]);
        assert!(p.timed_out(t0 + Duration::from_secs(4)).unwrap().is_empty());
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(p.timed_out(t1).unwrap(), vec![2, 3], "sent again");
        let t2 = t1 + Duration::from_secs(5);
        assert_eq!(p.timed_out(t2).unwrap(), vec![2, 3], "second retry");
        let err = p.timed_out(t2 + Duration::from_secs(5)).unwrap_err();
        assert_eq!(
            err,
            PushError::NoAnswer {
                index: 2,
                total: 6,
                attempts: 3
            }
        );
    }

    #[test]
    fn a_resend_request_sends_what_is_missing_and_counts_the_rest_received() {
        let package = vec![9u8; 800];
        let (_, head) = order(Version::V2019, &package);
        let mut p = Push::new(head, package.into(), 100, cfg(5)).unwrap();
        let now = Instant::now();
        assert_eq!(p.next(now), vec![1, 2, 3, 4, 5]);
        assert!(!p.on_resend_request(99, &[2]), "another message");
        assert!(p.on_resend_request(100, &[2, 4]));
        assert_eq!(p.received(), 3);
        assert_eq!(
            p.next(now),
            vec![2, 4, 6, 7, 8],
            "asked-for first, then new"
        );
        // A refusal (result 1) asks for the package again; result 3 ends the push.
        assert!(p.on_response(101, 1).unwrap());
        assert_eq!(p.next(now), vec![2]);
        assert_eq!(
            p.on_response(105, 3).unwrap_err(),
            PushError::Refused {
                index: 6,
                total: 9,
                result: 3
            }
        );
    }

    #[test]
    fn more_than_a_word_of_packages_is_refused() {
        let package: Arc<[u8]> = vec![0u8; 70_000].into();
        let c = PushConfig {
            package_bytes: 1,
            ..cfg(1)
        };
        assert!(matches!(
            Push::new(Vec::new(), package, 0, c),
            Err(PushError::TooLarge { .. })
        ));
    }

    proptest! {
        /// Whatever the terminal loses (answers it never sends, some refusals), the push
        /// ends with every package answered and the terminal holding the exact message.
        #[test]
        fn lossy_pushes_deliver_every_byte(
            len in 0usize..3000,
            size in 1usize..1100,
            window in 1usize..8,
            losses in proptest::collection::vec(0u8..10, 64),
            v2019 in any::<bool>(),
        ) {
            let version = if v2019 { Version::V2019 } else { Version::V2013 };
            let package: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let (m, head) = order(version, &package);
            let to = terminal(version);
            let c = PushConfig { package_bytes: size, window, timeout: Duration::from_secs(1), retries: 1000 };
            let mut p = Push::new(head, package.into(), 65_530, c).unwrap();
            let mut got: Vec<Option<Frame>> = vec![None; usize::from(p.packages())];
            let mut now = Instant::now();
            let mut k = 0usize;
            for _round in 0..100_000 {
                if p.is_complete() { break; }
                let mut send = p.next(now);
                send.extend(p.timed_out(now).unwrap());
                for i in send {
                    let f = p.frame(&to, i);
                    let roll = losses[k % losses.len()];
                    k += 1;
                    match roll {
                        0 => {} // lost
                        1 => { p.on_response(f.header.serial, 1).unwrap(); }
                        _ => {
                            got[usize::from(i) - 1] = Some(f.clone());
                            p.on_response(f.header.serial, 0).unwrap();
                        }
                    }
                }
                now += Duration::from_secs(1);
            }
            prop_assert!(p.is_complete());
            let frames: Vec<Frame> = got.into_iter().map(|f| f.unwrap()).collect();
            let (_, body) = reassemble(&frames).unwrap();
            let mut whole = Vec::new();
            m.encode(version, &mut whole).unwrap();
            prop_assert_eq!(body, whole);
        }
    }
}
