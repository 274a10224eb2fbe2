//! Subpackaged messages (attribute bit 13): reassembly of incoming packages and splitting
//! of outgoing bodies over the 1023-byte limit of the 10-bit body length.
//!
//! Sans-I/O: the caller passes `now`, polls for overdue groups and builds the 0x8003
//! "resend subpackages" request itself from [`ReassemblyEvent::Missing`] (BYTE count in
//! 2013, WORD in 2019; notes §1). Groups are keyed by (phone, msg id, total) like
//! yezhihao `MultiPacketDecoder.java`; go-jt808 `service/packet_parse.go` asks for the
//! missing indexes after 5 s without a new package, with the first package's serial;
//! yezhihao's `JTMultiPacketListener.java` retries up to 5 times. Memory is bounded per
//! group, per phone and overall so a terminal cannot grow the gateway without limit.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use crate::frame::Frame;
use crate::header::{Header, Package, MAX_BODY_LEN};
use crate::Version;

/// Limits and timers of the [`Reassembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// Quiet time after the last package before `Missing` is reported (default 5 s).
    pub quiet: Duration,
    /// How many times `Missing` is reported for one group (default 5).
    pub max_reports: u32,
    /// Time after the last package after which the group is dropped (default 60 s).
    pub timeout: Duration,
    /// Largest accepted package total (default 1024: about 1 MiB of body).
    pub max_total: u16,
    /// Bytes buffered per phone across its groups (default 2 MiB).
    pub max_bytes_per_phone: usize,
    /// Groups in progress overall (default 4096).
    pub max_groups: usize,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            quiet: Duration::from_secs(5),
            max_reports: 5,
            timeout: Duration::from_secs(60),
            max_total: 1024,
            max_bytes_per_phone: 2 << 20,
            max_groups: 4096,
        }
    }
}

/// A package that cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReassemblyError {
    #[error("message 0x{msg_id:04x}: package total is 0")]
    ZeroTotal { msg_id: u16 },
    #[error("message 0x{msg_id:04x}: package index {index} outside 1..={total}")]
    BadIndex { msg_id: u16, index: u16, total: u16 },
    #[error("message 0x{msg_id:04x}: {total} packages, max {max}")]
    TooManyPackages { msg_id: u16, total: u16, max: u16 },
    #[error("phone {phone}: {bytes} bytes buffered, max {max}")]
    PhoneOverBudget {
        phone: String,
        bytes: usize,
        max: usize,
    },
    #[error("{groups} subpackage groups in progress, max {max}")]
    TooManyGroups { groups: usize, max: usize },
}

/// A whole message out of its packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassembled {
    /// Header of the first package with `package: None`, body = bodies in index order.
    pub frame: Frame,
    /// Serials of all packages in index order (a reply may name any of them).
    pub serials: Vec<u16>,
}

/// Something [`Reassembler::poll`] has to tell the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReassemblyEvent {
    /// Packages are missing after the quiet time: send 0x8003 with these indexes.
    Missing {
        phone: String,
        msg_id: u16,
        version: Version,
        /// Serial of package 1 (0x8003's "original serial").
        first_serial: u16,
        missing: Vec<u16>,
    },
    /// The group timed out and was discarded.
    Dropped {
        phone: String,
        msg_id: u16,
        total: u16,
        received: usize,
    },
}

type Key = (String, u16, u16);

#[derive(Debug)]
struct Group {
    header: Header,
    first_serial: u16,
    parts: BTreeMap<u16, (u16, Bytes)>,
    bytes: usize,
    last: Instant,
    reported_at: Option<Instant>,
    reports: u32,
}

/// Sans-I/O reassembly of subpackaged messages.
#[derive(Debug, Default)]
pub struct Reassembler {
    config: ReassemblyConfig,
    groups: HashMap<Key, Group>,
    phone_bytes: HashMap<String, usize>,
}

impl Reassembler {
    /// A reassembler with `config`.
    pub fn new(config: ReassemblyConfig) -> Reassembler {
        Reassembler {
            config,
            ..Reassembler::default()
        }
    }

    /// Groups in progress.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether no group is in progress.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Takes one frame. A frame without package passes through; the last missing
    /// package of a group yields the whole message; duplicates are ignored.
    pub fn push(
        &mut self,
        frame: Frame,
        now: Instant,
    ) -> Result<Option<Reassembled>, ReassemblyError> {
        let Some(Package { total, index }) = frame.header.package else {
            let serials = vec![frame.header.serial];
            return Ok(Some(Reassembled { frame, serials }));
        };
        let msg_id = frame.header.msg_id;
        if total == 0 {
            return Err(ReassemblyError::ZeroTotal { msg_id });
        }
        if index == 0 || index > total {
            return Err(ReassemblyError::BadIndex {
                msg_id,
                index,
                total,
            });
        }
        if total > self.config.max_total {
            return Err(ReassemblyError::TooManyPackages {
                msg_id,
                total,
                max: self.config.max_total,
            });
        }
        let phone = frame.header.phone.clone();
        let key = (phone.clone(), msg_id, total);
        if !self.groups.contains_key(&key) && self.groups.len() >= self.config.max_groups {
            return Err(ReassemblyError::TooManyGroups {
                groups: self.groups.len(),
                max: self.config.max_groups,
            });
        }
        let used = self.phone_bytes.get(&phone).copied().unwrap_or(0);
        if used + frame.body.len() > self.config.max_bytes_per_phone {
            return Err(ReassemblyError::PhoneOverBudget {
                phone,
                bytes: used + frame.body.len(),
                max: self.config.max_bytes_per_phone,
            });
        }
        let serial = frame.header.serial;
        let group = self.groups.entry(key.clone()).or_insert_with(|| Group {
            header: Header {
                package: None,
                ..frame.header.clone()
            },
            first_serial: serial.wrapping_sub(index - 1),
            parts: BTreeMap::new(),
            bytes: 0,
            last: now,
            reported_at: None,
            reports: 0,
        });
        group.last = now;
        if group.parts.contains_key(&index) {
            return Ok(None);
        }
        if index == 1 {
            group.first_serial = serial;
            group.header = Header {
                package: None,
                ..frame.header.clone()
            };
        }
        group.bytes += frame.body.len();
        *self.phone_bytes.entry(phone).or_insert(0) += frame.body.len();
        group.parts.insert(index, (serial, frame.body));
        if group.parts.len() < usize::from(total) {
            return Ok(None);
        }
        let Some(group) = self.remove(&key) else {
            return Ok(None);
        };
        let mut body = BytesMut::with_capacity(group.bytes);
        let mut serials = Vec::with_capacity(group.parts.len());
        for (serial, part) in group.parts.into_values() {
            body.extend_from_slice(&part);
            serials.push(serial);
        }
        let header = Header {
            serial: group.first_serial,
            ..group.header
        };
        Ok(Some(Reassembled {
            frame: Frame::new(header, body.freeze()),
            serials,
        }))
    }

    fn remove(&mut self, key: &Key) -> Option<Group> {
        let group = self.groups.remove(key)?;
        if let Some(used) = self.phone_bytes.get_mut(&key.0) {
            *used = used.saturating_sub(group.bytes);
            if *used == 0 {
                self.phone_bytes.remove(&key.0);
            }
        }
        Some(group)
    }

    /// Reports groups quiet for [`ReassemblyConfig::quiet`] (`Missing`, again every quiet
    /// period up to `max_reports` times) and drops groups idle for `timeout` (`Dropped`).
    pub fn poll(&mut self, now: Instant) -> Vec<ReassemblyEvent> {
        let mut events = Vec::new();
        let mut expired = Vec::new();
        for (key, group) in &mut self.groups {
            let idle = now.saturating_duration_since(group.last);
            if idle >= self.config.timeout {
                expired.push(key.clone());
                continue;
            }
            let since_report = group
                .reported_at
                .map_or(idle, |at| now.saturating_duration_since(at));
            if idle >= self.config.quiet
                && since_report >= self.config.quiet
                && group.reports < self.config.max_reports
            {
                group.reports += 1;
                group.reported_at = Some(now);
                events.push(ReassemblyEvent::Missing {
                    phone: key.0.clone(),
                    msg_id: key.1,
                    version: group.header.version,
                    first_serial: group.first_serial,
                    missing: (1..=key.2)
                        .filter(|i| !group.parts.contains_key(i))
                        .collect(),
                });
            }
        }
        for key in expired {
            if let Some(group) = self.remove(&key) {
                events.push(ReassemblyEvent::Dropped {
                    phone: key.0,
                    msg_id: key.1,
                    total: key.2,
                    received: group.parts.len(),
                });
            }
        }
        events
    }
}

/// Default package body size for [`split`] (go-jt808 uses 1000).
pub const DEFAULT_SPLIT: usize = 1000;

/// Splits an outgoing body into frames of at most `max_body` bytes (clamped to 1..=1023).
/// A body that fits gives one frame without package; otherwise packages 1..=n with
/// consecutive serials from `header.serial`.
pub fn split(header: &Header, body: &[u8], max_body: usize) -> Vec<Frame> {
    let size = max_body.clamp(1, MAX_BODY_LEN);
    if body.len() <= size {
        let header = Header {
            package: None,
            ..header.clone()
        };
        return vec![Frame::new(header, Bytes::copy_from_slice(body))];
    }
    let chunks: Vec<&[u8]> = body.chunks(size).collect();
    let total = u16::try_from(chunks.len()).unwrap_or(u16::MAX);
    chunks
        .into_iter()
        .zip(1..=total)
        .map(|(chunk, index)| {
            let header = Header {
                serial: header.serial.wrapping_add(index - 1),
                package: Some(Package { total, index }),
                ..header.clone()
            };
            Frame::new(header, Bytes::copy_from_slice(chunk))
        })
        .collect()
}
