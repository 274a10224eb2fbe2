//! A simulated JT/T 808 terminal: the [`Terminal`] that tests drive step by step, and
//! [`drive`], one vehicle of `vgate simulate`.
//!
//! The terminal speaks through the `jt808` crate's own frame codec and message encoders,
//! so the simulator and the gateway share one copy of the wire code; what it tests is the
//! gateway's behaviour, not a second implementation of the protocol.
//!
//! While it waits for an answer the terminal answers whatever the platform sends it as a
//! real terminal would: 0x8201 with a 0x0201 location, 0x8104/0x8106 with an empty 0x0104,
//! 0x8107 with a 0x0107-shaped general answer, everything else with a 0x0001 (result 0).

use std::collections::HashMap;
use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use jt808::msg::{Authenticate, GeneralResponse, LocationItem, LocationReport, Register};
use jt808::{Codec, CodecConfig, Frame, Header, Message, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::{Decoder, Encoder, Framed, FramedParts};

pub use super::link::Device;
use super::link::{self, io_err, Link};
use super::{FloodPlan, Stats, VehiclePlan};

mod upgrade;
pub use upgrade::UpgradeBehaviour;

/// One position fix to report (0x0200). Negative latitude is south, negative longitude west.
#[derive(Debug, Clone, PartialEq)]
pub struct Fix {
    /// The position in degrees (WGS-84), sent in millionths.
    pub latitude: f64,
    pub longitude: f64,
    /// Speed in km/h (sent in tenths), heading in degrees from north (0..=359), altitude in
    /// metres.
    pub speed_kmh: f64,
    pub heading_deg: u16,
    pub altitude_m: u16,
    /// The alarm bits (JT/T 808 table 24).
    pub alarm: u32,
    /// Status bits besides positioned/south/west, which follow from the fields.
    pub status: u32,
    /// Odometer in km (item 0x01), if any.
    pub mileage_km: Option<f64>,
    /// The fix time; `None` is now.
    pub time: Option<DateTime<Utc>>,
}

impl Default for Fix {
    fn default() -> Self {
        Fix {
            latitude: 22.543096,
            longitude: 114.057865,
            speed_kmh: 0.0,
            heading_deg: 0,
            altitude_m: 0,
            alarm: 0,
            status: 0b1, // ACC on
            mileage_km: None,
            time: None,
        }
    }
}

impl Fix {
    /// The 0x0200 body of this fix.
    pub fn report(&self) -> LocationReport {
        let mut status = self.status | 0b10; // positioned
        if self.latitude < 0.0 {
            status |= 1 << 2;
        }
        if self.longitude < 0.0 {
            status |= 1 << 3;
        }
        let t = codecs::time::LocalTime::from_utc(
            self.time.unwrap_or_else(Utc::now),
            codecs::time::BEIJING_OFFSET_SECS,
        );
        let time = [t.year, t.month, t.day, t.hour, t.minute, t.second].map(codecs::bcd::byte_of);
        let mut items = Vec::new();
        if let Some(km) = self.mileage_km {
            items.push(LocationItem {
                id: 0x01,
                value: ((km * 10.0).round() as u32).to_be_bytes().to_vec(),
            });
        }
        LocationReport {
            alarm: self.alarm,
            status,
            latitude: (self.latitude.abs() * 1e6).round() as u32,
            longitude: (self.longitude.abs() * 1e6).round() as u32,
            altitude: self.altitude_m,
            speed: (self.speed_kmh * 10.0).round().clamp(0.0, 65535.0) as u16,
            heading: self.heading_deg,
            time,
            items: items.into(),
            tail: Vec::new(),
        }
    }
}

/// The 0x8100 answer to a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterReply {
    pub result: u8,
    pub auth_code: Option<String>,
}

/// A simulated terminal on one TCP connection.
pub struct Terminal {
    version: Version,
    link: Link<Codec>,
    /// The current position, answered to 0x8201.
    pub fix: Fix,
    /// Platform messages received (and answered) while waiting for something else.
    pub received: Vec<(Header, Message)>,
    /// An upgrade (0x8108) whose packages are arriving.
    upgrade_in: Option<Box<upgrade::Incoming>>,
}

/// What a terminal at `fix` answers to a platform message (`None` for answers and the
/// server time: nothing to say).
fn terminal_reply(header: &Header, msg: &Message, fix: &Fix, version: Version) -> Option<Message> {
    if matches!(
        msg,
        Message::PlatformResponse(_)
            | Message::RegisterResponse(_)
            | Message::ServerTime(_)
            // Its packages were answered as they came (`upgrade`).
            | Message::UpgradePackage(_)
    ) {
        return None;
    }
    Some(match header.msg_id {
        0x8201 => Message::LocationAnswer {
            reply_serial: header.serial,
            report: fix.report(),
        },
        0x8104 | 0x8106 => {
            // 0x0104: reply serial, count 0.
            let mut body = header.serial.to_be_bytes().to_vec();
            body.push(0);
            let own = Header {
                msg_id: 0x0104,
                version,
                ..header.clone()
            };
            Message::decode(&own, &body).unwrap_or(Message::Unknown {
                msg_id: 0x0104,
                body,
            })
        }
        _ => Message::TerminalResponse(GeneralResponse {
            reply_serial: header.serial,
            reply_id: header.msg_id,
            result: 0,
        }),
    })
}

impl Device for Terminal {
    type Edition = Version;

    fn over(stream: impl super::Io + 'static, phone: &str, version: Version) -> Terminal {
        Terminal {
            version,
            link: Link::over(stream, Codec::new(CodecConfig::default()), phone, 0),
            fix: Fix::default(),
            received: Vec::new(),
            upgrade_in: None,
        }
    }
}

impl Terminal {
    /// The phone number this terminal uses in its headers.
    pub fn phone(&self) -> &str {
        &self.link.id
    }

    fn header(&mut self, msg_id: u16) -> Header {
        let serial = self.link.next_seq();
        Header::to_terminal(msg_id, self.version, self.link.id.clone(), serial)
    }

    /// Sends `msg` and returns the serial it went out with.
    pub async fn send(&mut self, msg: &Message) -> io::Result<u16> {
        let body = msg
            .encode_body(self.version)
            .map_err(|e| io_err(e.to_string()))?;
        let header = self.header(msg.msg_id());
        let serial = header.serial;
        self.link.io.send(Frame::new(header, body)).await?;
        Ok(serial)
    }

    /// Sends raw wire bytes (for malformed-input tests).
    pub async fn send_wire(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.link.send_wire(bytes).await
    }

    /// The next frame from the platform, `None` when the connection closed. The packages of
    /// an upgrade (0x8108) are taken as a terminal does (each answered, result 0x0108 sent
    /// once whole) and come out as one `UpgradePackage` message.
    pub async fn next_frame(&mut self) -> io::Result<Option<(Header, Message)>> {
        loop {
            let next = self.link.io.next().await;
            let Some(frame) = super::platform_frame(next, |bad| bad.error.to_string())? else {
                return Ok(None);
            };
            if frame.header.msg_id == jt808::msg::id::UPGRADE_PACKAGE {
                let header = frame.header.clone();
                let accept = UpgradeBehaviour {
                    result: Some(0),
                    ..Default::default()
                };
                match self.upgrade_package(frame, &accept).await? {
                    Some(up) => return Ok(Some((header, Message::UpgradePackage(up)))),
                    None => continue,
                }
            }
            let msg =
                Message::decode(&frame.header, &frame.body).map_err(|e| io_err(e.to_string()))?;
            return Ok(Some((frame.header, msg)));
        }
    }

    /// Reads until `pick` accepts a platform message, answering the others as a terminal would.
    pub async fn wait_for<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(&Header, &Message) -> Option<T>,
    ) -> io::Result<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = link::before(deadline, self.next_frame()).await?;
            let Some((header, msg)) = next else {
                return Err(super::platform_closed());
            };
            if let Some(t) = pick(&header, &msg) {
                return Ok(t);
            }
            self.answer(&header, &msg).await?;
            self.received.push((header, msg));
        }
    }

    /// Answers a platform message as a terminal does. Returns whether it was a command.
    pub async fn answer(&mut self, header: &Header, msg: &Message) -> io::Result<bool> {
        let Some(reply) = terminal_reply(header, msg, &self.fix, self.version) else {
            return Ok(false);
        };
        self.send(&reply).await?;
        Ok(true)
    }

    /// The result of the 0x8001 answering the message sent with `serial`, whatever its id.
    pub async fn general_answer_for(&mut self, serial: u16) -> io::Result<u8> {
        self.wait_for(Duration::from_secs(10), |_, m| match m {
            Message::PlatformResponse(r) if r.reply_serial == serial => Some(r.result),
            _ => None,
        })
        .await
    }

    async fn general_answer(&mut self, serial: u16, msg_id: u16) -> io::Result<u8> {
        self.wait_for(Duration::from_secs(10), |_, m| match m {
            Message::PlatformResponse(r) if r.reply_serial == serial && r.reply_id == msg_id => {
                Some(r.result)
            }
            _ => None,
        })
        .await
    }

    /// Registers (0x0100) and returns the 0x8100 answer.
    pub async fn register(&mut self) -> io::Result<RegisterReply> {
        let reg = Register {
            province: 44,
            city: 300,
            manufacturer: "VGSIM".into(),
            model: "SIM-1".into(),
            terminal_id: "T000001".into(),
            plate_color: 1,
            plate: format!(
                "粤B{}",
                self.link
                    .id
                    .get(self.link.id.len().saturating_sub(5)..)
                    .unwrap_or("00000")
            ),
            layout: self.version,
        };
        let serial = self.send(&Message::Register(reg)).await?;
        self.wait_for(Duration::from_secs(10), |_, m| match m {
            Message::RegisterResponse(r) if r.reply_serial == serial => Some(RegisterReply {
                result: r.result,
                auth_code: r.token.clone(),
            }),
            _ => None,
        })
        .await
    }

    /// Authenticates (0x0102) and returns the 0x8001 result.
    pub async fn authenticate(&mut self, code: &str) -> io::Result<u8> {
        let (imei, software_version) = match self.version {
            Version::V2019 => (
                Some("860000000000001".to_string()),
                Some("vgate-sim-1.0".to_string()),
            ),
            _ => (None, None),
        };
        let serial = self
            .send(&Message::Authenticate(Authenticate {
                token: code.to_string(),
                imei,
                software_version,
            }))
            .await?;
        self.general_answer(serial, 0x0102).await
    }

    /// Reports a fix (0x0200) and returns the 0x8001 result.
    pub async fn report(&mut self, fix: &Fix) -> io::Result<u8> {
        self.fix = fix.clone();
        let serial = self.send(&Message::Location(fix.report())).await?;
        self.general_answer(serial, 0x0200).await
    }

    /// Reports several fixes in one 0x0704 batch (type 0 live, type 1 reissue: data the
    /// terminal stored while offline) and returns the 0x8001 result.
    pub async fn report_batch(&mut self, fixes: &[Fix], reissue: bool) -> io::Result<u8> {
        let batch = Message::LocationBatch {
            batch_type: u8::from(reissue),
            items: fixes.iter().map(Fix::report).collect(),
        };
        let serial = self.send(&batch).await?;
        self.general_answer(serial, 0x0704).await
    }

    /// Uploads a file as 0x0801 multimedia data (image, JPEG, event 0 platform command,
    /// channel 1, the current fix as its location) in packages of at most `package` body
    /// bytes, and returns the platform's 0x8800 answer. Packages whose index is in `skip`
    /// are left out of the first pass and sent only when the platform asks for them
    /// (0x8003 or 0x8800 with a list): a lossy link.
    pub async fn upload_media(
        &mut self,
        media_id: u32,
        data: &[u8],
        package: usize,
        skip: &[u16],
    ) -> io::Result<jt808::msg::MediaUploadAnswer> {
        let upload = Message::MediaUpload(jt808::msg::MediaUpload {
            media_id,
            media_type: 0,
            format: 0,
            event: 0,
            channel: 1,
            location: self.fix.report(),
            data: data.to_vec(),
        });
        let body = upload
            .encode_body(self.version)
            .map_err(|e| io_err(e.to_string()))?;
        let first = self.header(upload.msg_id());
        let frames = jt808::subpackage::split(&first, &body, package);
        self.link.seq = first.serial.wrapping_add(frames.len().max(1) as u16);
        for f in &frames {
            let index = f.header.package.map_or(1, |p| p.index);
            if !skip.contains(&index) {
                self.link.io.feed(f.clone()).await?;
            }
        }
        SinkExt::<jt808::Frame>::flush(&mut self.link.io).await?;
        loop {
            let resend = self
                .wait_for(Duration::from_secs(30), |_, m| match m {
                    Message::MediaUploadAnswer(a) if a.media_id == media_id => Some(Ok(a.clone())),
                    Message::ResendRequest(r) if r.first_serial == first.serial => {
                        Some(Err(r.ids.clone()))
                    }
                    _ => None,
                })
                .await?;
            let ids = match resend {
                Ok(a) if a.retransmit_ids.is_empty() => return Ok(a),
                Ok(a) => a.retransmit_ids,
                Err(ids) => ids,
            };
            for f in &frames {
                if f.header.package.is_some_and(|p| ids.contains(&p.index)) {
                    self.link.io.feed(f.clone()).await?;
                }
            }
            SinkExt::<jt808::Frame>::flush(&mut self.link.io).await?;
        }
    }

    /// Sends a heartbeat (0x0002) and returns the 0x8001 result.
    pub async fn heartbeat(&mut self) -> io::Result<u8> {
        let serial = self.send(&Message::Heartbeat { extra: Vec::new() }).await?;
        self.general_answer(serial, 0x0002).await
    }

    /// Logs out (0x0003) and returns the 0x8001 result.
    pub async fn logout(&mut self) -> io::Result<u8> {
        let serial = self.send(&Message::Logout).await?;
        self.general_answer(serial, 0x0003).await
    }

    /// Whether the platform closes the connection within `t` (frames meanwhile are read and dropped).
    pub async fn closed_within(&mut self, t: Duration) -> bool {
        self.link.closed_within(t).await
    }
}

/// One simulated vehicle of `vgate simulate`: connect, register, authenticate, then report
/// positions along a circle at `plan.rate` per second (heartbeats when idle) until
/// `plan.drive_until`, or as fast as the gateway acknowledges in flood mode
/// (`plan.flood`, see [`flood`]), answering platform commands; then log out.
pub async fn drive(plan: VehiclePlan, phone: String, version: Version) {
    let stats = plan.stats.clone();
    let terminal = log_in(&plan, &phone, version).await;
    let Some(flood_plan) = plan.flood.clone() else {
        let Some(mut t) = terminal else { return };
        if run_reports(&mut t, &plan).await.is_err() {
            Stats::add(&stats.disconnects);
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), t.logout()).await;
        return;
    };
    // Flood mode: every vehicle starts once all have logged in (or failed to).
    flood_plan.gate.arrive();
    let Some(t) = terminal else { return };
    flood_plan.gate.wait().await;
    match flood(t, &plan, &flood_plan).await {
        Ok(mut t) => {
            let _ = tokio::time::timeout(Duration::from_secs(5), t.logout()).await;
        }
        Err(_) => Stats::add(&stats.disconnects),
    }
}

/// Connects, registers and authenticates; `None` (counted) when that failed.
async fn log_in(plan: &VehiclePlan, phone: &str, version: Version) -> Option<Terminal> {
    let mut t = plan.device::<Terminal>(phone, version).await?;
    let login = async {
        let reg = t.register().await?;
        let Some(code) = reg.auth_code.filter(|_| reg.result == 0) else {
            return Ok(false);
        };
        Ok::<_, io::Error>(t.authenticate(&code).await? == 0)
    };
    let login = login.await;
    plan.logged_in(login).then_some(t)
}

async fn run_reports(t: &mut Terminal, plan: &VehiclePlan) -> io::Result<()> {
    let stats = &plan.stats;
    let mut tick = plan.report_ticks();
    let until = tokio::time::Instant::from_std(plan.drive_until);
    let mut pending: HashMap<u16, Instant> = HashMap::new();
    let mut samples: Vec<u32> = Vec::with_capacity(64);
    let mut step: u64 = 0;
    let (mut first_send, mut last_ack) = (None::<Instant>, None::<Instant>);
    let result = loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => break Ok(()),
            _ = tick.tick() => {
                let msg = if plan.rate > 0.0 {
                    step += 1;
                    t.fix = circle_fix(plan.index, step);
                    if plan.alarm_on(step) {
                        t.fix.alarm |= 1; // emergency
                    }
                    Message::Location(t.fix.report())
                } else {
                    Message::Heartbeat { extra: Vec::new() }
                };
                let serial = t.send(&msg).await?;
                Stats::add(&stats.frames_sent);
                let now = Instant::now();
                first_send.get_or_insert(now);
                pending.insert(serial, now);
                if pending.len() > 10_000 {
                    pending.clear();
                }
                if plan.photo_every > 0 && step > 0 && step.is_multiple_of(plan.photo_every) {
                    // A photo: a JPEG start and end around bytes that vary per vehicle.
                    let middle = plan.photo_bytes.max(4) - 4;
                    let photo: Vec<u8> = [0xFF, 0xD8]
                        .into_iter()
                        .chain((0..middle).map(|i| (i as u64 ^ step ^ plan.index as u64) as u8))
                        .chain([0xFF, 0xD9])
                        .collect();
                    let n = photo.len();
                    t.upload_media(step as u32, &photo, 1000, &[]).await?;
                    stats.frames_sent.fetch_add(
                        (n + jt808::media::UPLOAD_HEADER_LEN).div_ceil(1000) as u64,
                        Ordering::Relaxed,
                    );
                }
            }
            next = t.next_frame() => {
                let Some((header, msg)) = next? else {
                    break Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed by the gateway"));
                };
                match &msg {
                    Message::PlatformResponse(r) => {
                        if let Some(sent) = pending.remove(&r.reply_serial) {
                            Stats::add(&stats.acks);
                            last_ack = Some(Instant::now());
                            if r.result != 0 {
                                Stats::add(&stats.errors);
                            }
                            samples.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                            if samples.len() >= 64 {
                                stats.record(&mut samples);
                            }
                        }
                    }
                    _ => {
                        if t.answer(&header, &msg).await? {
                            Stats::add(&stats.commands_answered);
                        }
                    }
                }
            }
        }
    };
    stats.record(&mut samples);
    stats.drove(first_send, last_ack);
    result
}

/// Vehicle `index`'s position at its `step`-th report: along a circle near Shenzhen.
fn circle_fix(index: usize, step: u64) -> Fix {
    let a = (index as f64 * 0.37 + step as f64 * 0.01) % std::f64::consts::TAU;
    Fix {
        latitude: 22.54 + 0.01 * a.sin(),
        longitude: 114.05 + 0.01 * a.cos(),
        speed_kmh: 40.0 + 20.0 * a.sin().abs(),
        heading_deg: (a.to_degrees() as u16 + 90) % 360,
        altitude_m: 20,
        mileage_km: Some(1000.0 + step as f64 * 0.01),
        ..Fix::default()
    }
}

/// When each report in flight went out, by serial, for latency samples: a power-of-two ring
/// (at least 4 x the window) of `(serial, instant)`, no map and no allocation per frame. A
/// slot reused before its answer came (the window plus interleaved command answers went
/// round the ring) only costs that sample: the serial stored in the slot must match.
pub struct SerialRing {
    slots: Vec<Option<(u16, Instant)>>,
    mask: usize,
}

impl SerialRing {
    /// A ring for `window` reports in flight.
    pub fn new(window: usize) -> SerialRing {
        let len = window
            .max(1)
            .saturating_mul(4)
            .next_power_of_two()
            .clamp(64, 1 << 16);
        SerialRing {
            slots: vec![None; len],
            mask: len - 1,
        }
    }

    /// The number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the ring has no slots (never: at least 64).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The report with `serial` went out `at`.
    pub fn sent(&mut self, serial: u16, at: Instant) {
        if let Some(slot) = self.slots.get_mut(usize::from(serial) & self.mask) {
            *slot = Some((serial, at));
        }
    }

    /// When the report with `serial` went out, if the ring still knows (once).
    pub fn acked(&mut self, serial: u16) -> Option<Instant> {
        let slot = self.slots.get_mut(usize::from(serial) & self.mask)?;
        match *slot {
            Some((s, at)) if s == serial => {
                *slot = None;
                Some(at)
            }
            _ => None,
        }
    }
}

/// Frames between two refreshes of the flood's location body (a new position and time).
const REFRESH_EVERY: u32 = 16;
/// One acknowledged report in this many (by serial) is a latency sample.
const SAMPLE_EVERY: u16 = 16;
/// Flood mode gives up on reports unanswered this long (counted as errors).
const STALL: Duration = Duration::from_secs(10);
/// After the driving period, how long flood mode waits for the last answers.
const DRAIN: Duration = Duration::from_secs(5);

/// A flood-mode vehicle's state: the connection taken out of its [`Terminal`], the report
/// frame re-encoded with a new serial each time (the body is encoded every
/// [`REFRESH_EVERY`] frames), and its counters.
struct Flooder {
    stream: super::Stream,
    codec: Codec,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// The 0x0200 frame: header (serial set per frame) and body.
    report: Frame,
    version: Version,
    serial: u16,
    fix: Fix,
    index: usize,
    step: u64,
    since_refresh: u32,
    ring: SerialRing,
    samples: Vec<u32>,
    first_send: Option<Instant>,
    last_ack: Option<Instant>,
    in_flight: usize,
    sent: u64,
}

impl Flooder {
    fn header(&mut self, msg_id: u16) -> Header {
        let serial = self.serial;
        self.serial = self.serial.wrapping_add(1);
        self.report.header.reply(msg_id, serial)
    }

    /// A new position and time in the report body.
    fn refresh(&mut self) -> io::Result<()> {
        self.step += 1;
        self.fix = circle_fix(self.index, self.step);
        let body = Message::Location(self.fix.report())
            .encode_body(self.version)
            .map_err(|e| io_err(e.to_string()))?;
        self.report.body = Bytes::from(body);
        self.since_refresh = 0;
        Ok(())
    }

    /// Appends `k` location reports, sent `at`, to the write buffer.
    fn push_reports(&mut self, k: usize, at: Instant) -> io::Result<()> {
        if k == 0 {
            return Ok(());
        }
        for _ in 0..k {
            if self.since_refresh >= REFRESH_EVERY {
                self.refresh()?;
            }
            self.since_refresh += 1;
            let serial = self.serial;
            self.serial = self.serial.wrapping_add(1);
            self.report.header.serial = serial;
            self.ring.sent(serial, at);
            Encoder::<&Frame>::encode(&mut self.codec, &self.report, &mut self.wbuf)?;
        }
        self.first_send.get_or_insert(at);
        self.in_flight += k;
        self.sent += k as u64;
        Ok(())
    }

    /// Appends a terminal message (an answer to a platform command) to the write buffer.
    fn push_message(&mut self, msg: &Message) -> io::Result<()> {
        let body = msg
            .encode_body(self.version)
            .map_err(|e| io_err(e.to_string()))?;
        let frame = Frame::new(self.header(msg.msg_id()), body);
        Encoder::<&Frame>::encode(&mut self.codec, &frame, &mut self.wbuf)
    }

    /// Writes what the buffer holds, in one `write_all`.
    async fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Decodes the frames read so far: counts the 0x8001 answers to reports (returned) and
    /// queues answers to platform commands.
    fn take_answers(&mut self, now: Instant, stats: &Stats) -> io::Result<u64> {
        let mut acks = 0u64;
        while let Some(item) = self.codec.decode(&mut self.rbuf)? {
            let frame =
                item.map_err(|bad| io_err(format!("bad frame from the platform: {}", bad.error)))?;
            let msg =
                Message::decode(&frame.header, &frame.body).map_err(|e| io_err(e.to_string()))?;
            match &msg {
                Message::PlatformResponse(r) if r.reply_id == 0x0200 => {
                    acks += 1;
                    self.in_flight = self.in_flight.saturating_sub(1);
                    if r.result != 0 {
                        Stats::add(&stats.errors);
                    }
                    if r.reply_serial % SAMPLE_EVERY == 0 {
                        if let Some(at) = self.ring.acked(r.reply_serial) {
                            let us = now.saturating_duration_since(at).as_micros();
                            self.samples.push(us.min(u128::from(u32::MAX)) as u32);
                        }
                    }
                }
                _ => {
                    if let Some(reply) =
                        terminal_reply(&frame.header, &msg, &self.fix, self.version)
                    {
                        self.push_message(&reply)?;
                        Stats::add(&stats.commands_answered);
                    }
                }
            }
        }
        if acks > 0 {
            self.last_ack = Some(now);
        }
        Ok(acks)
    }

    /// The closed loop: fill the window, then top it up after each read that brought answers,
    /// until the budget is spent or `duration` is over, and every report is answered (or
    /// given up after [`STALL`] / [`DRAIN`]).
    async fn run(
        &mut self,
        stats: &Stats,
        window: usize,
        budget: u64,
        duration: Duration,
    ) -> io::Result<()> {
        let start = Instant::now();
        let deadline = start + duration;
        let mut draining = false;
        let mut drain_until = deadline + DRAIN;
        let mut last_progress = start;
        let wake = tokio::time::sleep_until(deadline.min(start + STALL).into());
        tokio::pin!(wake);
        let first = window.min(usize::try_from(budget).unwrap_or(usize::MAX));
        self.push_reports(first, start)?;
        stats.frames_sent.fetch_add(first as u64, Ordering::Relaxed);
        self.flush().await?;
        loop {
            if self.in_flight == 0 && (draining || self.sent >= budget) {
                return Ok(());
            }
            if self.rbuf.capacity() - self.rbuf.len() < 4096 {
                self.rbuf.reserve(16 * 1024);
            }
            let n = tokio::select! {
                biased;
                r = self.stream.read_buf(&mut self.rbuf) => r?,
                _ = &mut wake => {
                    let now = Instant::now();
                    if !draining && now >= deadline {
                        draining = true;
                        drain_until = now + DRAIN;
                    }
                    if now >= last_progress + STALL || (draining && now >= drain_until) {
                        // Unanswered reports: given up.
                        stats.errors.fetch_add(self.in_flight as u64, Ordering::Relaxed);
                        self.in_flight = 0;
                        return Ok(());
                    }
                    let next = if draining { drain_until } else { deadline };
                    wake.as_mut().reset(next.min(last_progress + STALL).into());
                    continue;
                }
            };
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed by the gateway",
                ));
            }
            let now = Instant::now();
            let acks = self.take_answers(now, stats)?;
            if acks > 0 {
                stats.acks.fetch_add(acks, Ordering::Relaxed);
                last_progress = now;
            }
            if !draining && now >= deadline {
                draining = true;
                drain_until = now + DRAIN;
            }
            if !draining {
                let room = window.saturating_sub(self.in_flight);
                let left = usize::try_from(budget.saturating_sub(self.sent)).unwrap_or(usize::MAX);
                let k = room.min(left);
                if k > 0 {
                    self.push_reports(k, now)?;
                    stats.frames_sent.fetch_add(k as u64, Ordering::Relaxed);
                }
            }
            self.flush().await?;
            if self.samples.len() >= 256 {
                stats.record(&mut self.samples);
            }
        }
    }
}

/// One flood-mode vehicle after login: keeps up to `f.window` location reports
/// unacknowledged, sending a new one for each 0x8001 that comes back, until `f.budget`
/// reports or `f.duration`; then waits for the last answers and hands the terminal back
/// (to log out).
///
/// Per read of the socket, not per frame: one clock read, the decoding of every answer the
/// read brought (the `jt808` crate's codec over one buffer), and one `write_all` of as many
/// new reports as came back, encoded into a reused buffer from a frame whose body changes
/// every [`REFRESH_EVERY`] reports. No timer per frame, no map: a [`SerialRing`] of send
/// instants, sampled one answer in [`SAMPLE_EVERY`]. Platform commands are answered as
/// [`Terminal::answer`] does.
pub async fn flood(t: Terminal, plan: &VehiclePlan, f: &FloodPlan) -> io::Result<Terminal> {
    let stats = &plan.stats;
    let Terminal {
        link,
        version,
        fix,
        received,
        upgrade_in,
    } = t;
    let Link {
        io,
        id,
        seq: serial,
    } = link;
    let parts = io.into_parts();
    let report = Frame::new(
        Header::to_terminal(jt808::msg::id::LOCATION, version, id.clone(), 0),
        Bytes::new(),
    );
    let mut fl = Flooder {
        stream: parts.io,
        codec: parts.codec,
        rbuf: parts.read_buf,
        wbuf: BytesMut::with_capacity(f.window.saturating_mul(128).clamp(1024, 1 << 20)),
        report,
        version,
        serial,
        fix,
        index: plan.index,
        step: 0,
        since_refresh: REFRESH_EVERY,
        ring: SerialRing::new(f.window),
        samples: Vec::with_capacity(256),
        first_send: None,
        last_ack: None,
        in_flight: 0,
        sent: 0,
    };
    let result = fl.run(stats, f.window, f.budget, f.duration).await;
    stats.record(&mut fl.samples);
    stats.drove(fl.first_send, fl.last_ack);
    result?;
    let mut parts = FramedParts::new::<Frame>(fl.stream, fl.codec);
    parts.read_buf = fl.rbuf;
    Ok(Terminal {
        link: Link {
            io: Framed::from_parts(parts),
            id,
            seq: fl.serial,
        },
        version,
        fix: fl.fix,
        received,
        upgrade_in,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;

    #[test]
    fn the_serial_ring_matches_each_serial_once() {
        let ring_len = SerialRing::new(8).len();
        assert_eq!(ring_len, 64);
        assert_eq!(SerialRing::new(100).len(), 512);
        assert_eq!(SerialRing::new(1 << 20).len(), 1 << 16);
        let mut ring = SerialRing::new(8);
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(1);
        ring.sent(10, t0);
        ring.sent(11, t1);
        assert_eq!(ring.acked(11), Some(t1));
        assert_eq!(ring.acked(11), None, "one answer, one sample");
        assert_eq!(ring.acked(12), None, "never sent");
        // Serial 10 + 64 reuses 10's slot: 10's answer no longer matches.
        ring.sent(74, t1);
        assert_eq!(ring.acked(10), None);
        assert_eq!(ring.acked(74), Some(t1));
        // Serials wrap around u16.
        ring.sent(u16::MAX, t0);
        ring.sent(0, t1);
        assert_eq!(ring.acked(u16::MAX), Some(t0));
        assert_eq!(ring.acked(0), Some(t1));
    }

    /// A minimal JT/T 808 platform: registers every terminal, acknowledges every message
    /// with 0x8001, and once per connection, after the 50th report, asks for the position
    /// (0x8201), which the terminal must answer.
    /// `vgate simulate` arguments from a command line.
    fn args(line: &str) -> super::super::SimulateArgs {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: super::super::SimulateArgs,
        }
        <Cli as clap::Parser>::try_parse_from(line.split_whitespace())
            .unwrap()
            .args
    }

    async fn acker(listener: tokio::net::TcpListener, located: Arc<AtomicU64>) {
        while let Ok((stream, _)) = listener.accept().await {
            let located = located.clone();
            tokio::spawn(async move {
                let mut io = Framed::new(stream, Codec::new(CodecConfig::default()));
                let mut serial = 0u16;
                let mut reports = 0u32;
                while let Some(Ok(Ok(frame))) = io.next().await {
                    let h = &frame.header;
                    let mut replies = vec![match h.msg_id {
                        0x0100 => Message::RegisterResponse(jt808::msg::RegisterResponse {
                            reply_serial: h.serial,
                            result: 0,
                            token: Some("sim-code".into()),
                        }),
                        0x0201 => {
                            located.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        id => Message::PlatformResponse(GeneralResponse {
                            reply_serial: h.serial,
                            reply_id: id,
                            result: 0,
                        }),
                    }];
                    if h.msg_id == 0x0200 {
                        reports += 1;
                        if reports == 50 {
                            replies.push(Message::QueryLocation);
                        }
                    }
                    for msg in replies {
                        let Ok(body) = msg.encode_body(h.version) else {
                            return;
                        };
                        let header = h.reply(msg.msg_id(), serial);
                        serial = serial.wrapping_add(1);
                        if io.send(Frame::new(header, body)).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn flood_mode_gets_every_report_acknowledged() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = listener.local_addr().unwrap();
        let located = Arc::new(AtomicU64::new(0));
        let platform = tokio::spawn(acker(listener, located.clone()));
        let line = format!(
            "simulate --protocol jt808 --vehicles 4 --rate max --window 8 --count 2001 \
             --duration 20s --target {target}"
        );
        let summary =
            tokio::time::timeout(Duration::from_secs(20), super::super::simulate(args(&line)))
                .await
                .unwrap()
                .map_err(|e| format!("{e:?}"))
                .unwrap();
        platform.abort();
        assert_eq!(summary.mode, "flood");
        assert_eq!(summary.window, Some(8));
        assert_eq!(summary.logins, 4);
        assert_eq!(summary.frames_sent, 2001);
        assert_eq!(summary.acks, summary.frames_sent);
        assert_eq!(summary.errors, 0);
        assert_eq!(summary.disconnects, 0);
        assert_eq!(summary.commands_answered, 4, "one 0x8201 per vehicle");
        assert_eq!(located.load(Ordering::Relaxed), 4);
        assert!(summary.latency_samples > 0);
        assert!(summary.drive_s > 0.0 && summary.drive_frames_per_s > 0.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn vehicles_are_spread_over_every_target() {
        let mut targets = Vec::new();
        let mut counts = Vec::new();
        let mut platforms = Vec::new();
        for _ in 0..3 {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            targets.push(listener.local_addr().unwrap().to_string());
            let located = Arc::new(AtomicU64::new(0));
            platforms.push(tokio::spawn(acker(listener, located.clone())));
            counts.push(located);
        }
        // Two targets as a list, the third with the option repeated.
        let line = format!(
            "simulate --protocol jt808 --vehicles 6 --rate max --window 2 --count 600 \
             --duration 20s --target {},{} --target {} --source-ip 127.0.0.2,127.0.0.3",
            targets[0], targets[1], targets[2]
        );
        let args = args(&line);
        assert_eq!(args.target.len(), 3);
        let summary = tokio::time::timeout(Duration::from_secs(20), super::super::simulate(args))
            .await
            .unwrap()
            .map_err(|e| format!("{e:?}"))
            .unwrap();
        platforms.iter().for_each(|p| p.abort());
        assert_eq!(summary.logins, 6);
        assert_eq!(summary.acks, 600);
        // Each vehicle answers one 0x8201 (after its 50th report), on the target it
        // connected to: two each.
        let per_target: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        assert_eq!(per_target, [2, 2, 2]);
    }
}
