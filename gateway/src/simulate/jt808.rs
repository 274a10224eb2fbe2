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
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use jt808::msg::{Authenticate, GeneralResponse, LocationItem, LocationReport, Register};
use jt808::{Codec, CodecConfig, Frame, Header, Message, Version};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use super::{Stats, VehiclePlan};

/// One position fix to report (0x0200). Negative latitude is south, negative longitude west.
#[derive(Debug, Clone, PartialEq)]
pub struct Fix {
    pub latitude: f64,
    pub longitude: f64,
    pub speed_kmh: f64,
    pub heading_deg: u16,
    pub altitude_m: u16,
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
            items,
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
    io: Framed<TcpStream, Codec>,
    phone: String,
    version: Version,
    serial: u16,
    /// The current position, answered to 0x8201.
    pub fix: Fix,
    /// Platform messages received (and answered) while waiting for something else.
    pub received: Vec<(Header, Message)>,
}

fn io_err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

impl Terminal {
    /// Connects to a gateway's JT/T 808 listener.
    pub async fn connect(addr: SocketAddr, phone: &str, version: Version) -> io::Result<Terminal> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Terminal::over(stream, phone, version))
    }

    /// A terminal over an already connected stream.
    pub fn over(stream: TcpStream, phone: &str, version: Version) -> Terminal {
        Terminal {
            io: Framed::new(stream, Codec::new(CodecConfig::default())),
            phone: phone.to_string(),
            version,
            serial: 0,
            fix: Fix::default(),
            received: Vec::new(),
        }
    }

    /// The phone number this terminal uses in its headers.
    pub fn phone(&self) -> &str {
        &self.phone
    }

    fn header(&mut self, msg_id: u16) -> Header {
        let serial = self.serial;
        self.serial = self.serial.wrapping_add(1);
        Header {
            msg_id,
            version: self.version,
            protocol_version: u8::from(self.version == Version::V2019),
            phone: self.phone.clone(),
            serial,
            encryption: jt808::Encryption::None,
            package: None,
        }
    }

    /// Sends `msg` and returns the serial it went out with.
    pub async fn send(&mut self, msg: &Message) -> io::Result<u16> {
        let body = msg
            .encode_body(self.version)
            .map_err(|e| io_err(e.to_string()))?;
        let header = self.header(msg.msg_id());
        let serial = header.serial;
        self.io.send(Frame::new(header, body)).await?;
        Ok(serial)
    }

    /// Sends raw wire bytes (for malformed-input tests).
    pub async fn send_wire(&mut self, bytes: &[u8]) -> io::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.io.get_mut().write_all(bytes).await
    }

    /// The next frame from the platform, `None` when the connection closed.
    pub async fn next_frame(&mut self) -> io::Result<Option<(Header, Message)>> {
        match self.io.next().await {
            None => Ok(None),
            Some(Err(e)) => Err(e),
            Some(Ok(Err(bad))) => Err(io_err(format!(
                "bad frame from the platform: {}",
                bad.error
            ))),
            Some(Ok(Ok(frame))) => {
                let msg = Message::decode(&frame.header, &frame.body)
                    .map_err(|e| io_err(e.to_string()))?;
                Ok(Some((frame.header, msg)))
            }
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
            let next = tokio::time::timeout_at(deadline, self.next_frame())
                .await
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "no answer from the platform")
                })??;
            let Some((header, msg)) = next else {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the platform closed the connection",
                ));
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
        if matches!(
            msg,
            Message::PlatformResponse(_) | Message::RegisterResponse(_) | Message::ServerTime(_)
        ) {
            return Ok(false);
        }
        let reply = match header.msg_id {
            0x8201 => Message::LocationAnswer {
                reply_serial: header.serial,
                report: self.fix.report(),
            },
            0x8104 | 0x8106 => {
                // 0x0104: reply serial, count 0.
                let mut body = header.serial.to_be_bytes().to_vec();
                body.push(0);
                Message::decode(&self.header(0x0104), &body).unwrap_or(Message::Unknown {
                    msg_id: 0x0104,
                    body,
                })
            }
            _ => Message::TerminalResponse(GeneralResponse {
                reply_serial: header.serial,
                reply_id: header.msg_id,
                result: 0,
            }),
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
                self.phone
                    .get(self.phone.len().saturating_sub(5)..)
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
        let deadline = tokio::time::Instant::now() + t;
        loop {
            match tokio::time::timeout_at(deadline, self.io.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }
}

/// One simulated vehicle of `vgate simulate`: connect, register, authenticate, then report
/// positions along a circle at `plan.rate` per second (heartbeats when idle) until
/// `plan.drive_until`, answering platform commands; then log out.
pub async fn drive(plan: VehiclePlan, phone: String, version: Version) {
    let stats = plan.stats.clone();
    let stream = match super::connect(plan.target, plan.local.as_deref(), plan.index).await {
        Ok(s) => s,
        Err(_) => {
            Stats::add(&stats.connect_errors);
            return;
        }
    };
    Stats::add(&stats.connected);
    let mut t = Terminal::over(stream, &phone, version);
    let login = async {
        let reg = t.register().await?;
        let Some(code) = reg.auth_code.filter(|_| reg.result == 0) else {
            return Ok(false);
        };
        Ok::<_, io::Error>(t.authenticate(&code).await? == 0)
    };
    match login.await {
        Ok(true) => stats.logged_in(),
        Ok(false) => {
            Stats::add(&stats.login_refused);
            return;
        }
        Err(_) => {
            Stats::add(&stats.errors);
            Stats::add(&stats.disconnects);
            return;
        }
    }
    if run_reports(&mut t, &plan).await.is_err() {
        Stats::add(&stats.disconnects);
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), t.logout()).await;
}

async fn run_reports(t: &mut Terminal, plan: &VehiclePlan) -> io::Result<()> {
    let stats = &plan.stats;
    let period = if plan.rate > 0.0 {
        Duration::from_secs_f64(1.0 / plan.rate)
    } else {
        plan.heartbeat
    };
    // Spread the vehicles' first reports over one period so they do not beat in step.
    let offset = period.mul_f64((plan.index % 97) as f64 / 97.0);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let until = tokio::time::Instant::from_std(plan.drive_until);
    let mut pending: HashMap<u16, Instant> = HashMap::new();
    let mut samples: Vec<u32> = Vec::with_capacity(64);
    let mut step: u64 = 0;
    let result = loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => break Ok(()),
            _ = tick.tick() => {
                let msg = if plan.rate > 0.0 {
                    step += 1;
                    let a = (plan.index as f64 * 0.37 + step as f64 * 0.01) % std::f64::consts::TAU;
                    t.fix = Fix {
                        latitude: 22.54 + 0.01 * a.sin(),
                        longitude: 114.05 + 0.01 * a.cos(),
                        speed_kmh: 40.0 + 20.0 * a.sin().abs(),
                        heading_deg: (a.to_degrees() as u16 + 90) % 360,
                        altitude_m: 20,
                        mileage_km: Some(1000.0 + step as f64 * 0.01),
                        ..Fix::default()
                    };
                    Message::Location(t.fix.report())
                } else {
                    Message::Heartbeat { extra: Vec::new() }
                };
                let serial = t.send(&msg).await?;
                Stats::add(&stats.frames_sent);
                pending.insert(serial, Instant::now());
                if pending.len() > 10_000 {
                    pending.clear();
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
    result
}
