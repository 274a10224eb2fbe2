//! A simulated GB/T 32960 vehicle: the [`Vehicle`] that tests drive step by step, and
//! [`drive`], one vehicle of `vgate simulate`.
//!
//! Frames are built with the `gbt32960` crate's own message encoders and frame codec.
//! Real-time reports carry a whole-vehicle unit (0x01) and a position unit (0x05) built
//! from a [`Drive`] snapshot; the platform does not answer real-time frames on success, so
//! the simulator times heartbeat answers for its latency figures.

use std::io;
use std::time::{Duration, Instant};

pub use super::link::Device;
use super::link::{self, io_err, Link};
use super::{Stats, VehiclePlan};
use codecs::time::{LocalTime, BEIJING_OFFSET_SECS};
use futures::{SinkExt, StreamExt};
use gbt32960::msg::{EmptyBody, Login, LoginBatteries, Logout};
use gbt32960::realtime::{Alarm, Position, Report, Unit, Vehicle as VehicleUnit};
use gbt32960::{Codec, CodecConfig, Edition, Frame, Message};

/// A snapshot of the vehicle's state, in physical units.
#[derive(Debug, Clone, PartialEq)]
pub struct Drive {
    pub speed_kmh: f64,
    pub soc_pct: u8,
    pub total_voltage_v: f64,
    /// Negative while charging.
    pub total_current_a: f64,
    pub odometer_km: f64,
    pub latitude: f64,
    pub longitude: f64,
    /// An alarm unit (2016 0x07, 2025 0x06): (highest level, general alarm flag bits);
    /// `None` sends none.
    pub alarm: Option<(u8, u32)>,
}

impl Default for Drive {
    fn default() -> Self {
        Drive {
            speed_kmh: 0.0,
            soc_pct: 80,
            total_voltage_v: 360.0,
            total_current_a: 0.0,
            odometer_km: 1000.0,
            latitude: 31.230416,
            longitude: 121.473701,
            alarm: None,
        }
    }
}

impl Drive {
    /// The real-time report of this snapshot, collected now.
    pub fn report(&self, edition: Edition) -> Report {
        let current =
            ((self.total_current_a - VehicleUnit::current_offset(edition)) * 10.0).round();
        let mut status = 0u8;
        if self.latitude < 0.0 {
            status |= 0x02;
        }
        if self.longitude < 0.0 {
            status |= 0x04;
        }
        let mut units = vec![
            Unit::Vehicle(VehicleUnit {
                state: 1,
                charging: if self.total_current_a < 0.0 && self.speed_kmh == 0.0 {
                    1
                } else {
                    3
                },
                mode: 1,
                speed: (self.speed_kmh * 10.0).round().clamp(0.0, 65_533.0) as u16,
                odometer: (self.odometer_km * 10.0)
                    .round()
                    .clamp(0.0, 4_294_967_293.0) as u32,
                total_voltage: (self.total_voltage_v * 10.0).round().clamp(0.0, 65_533.0) as u16,
                total_current: current.clamp(0.0, 65_533.0) as u16,
                soc: self.soc_pct.min(100),
                dcdc: 1,
                gear: 0x0E,
                insulation: 5000,
                pedals: match edition {
                    Edition::V2016 => Some((20, 0)),
                    Edition::V2025 => None,
                },
            }),
            Unit::Location(Position {
                status,
                coord_system: match edition {
                    Edition::V2016 => None,
                    Edition::V2025 => Some(1),
                },
                longitude: (self.longitude.abs() * 1e6).round() as u32,
                latitude: (self.latitude.abs() * 1e6).round() as u32,
            }),
        ];
        if let Some((level, flags)) = self.alarm {
            units.push(Unit::Alarm(Alarm {
                level,
                flags,
                ress_faults: Vec::new(),
                motor_faults: Vec::new(),
                engine_faults: Vec::new(),
                other_faults: Vec::new(),
                general: (edition == Edition::V2025).then(Vec::new),
            }));
        }
        Report {
            time: now_beijing(),
            units,
            tail: None,
            signature: None,
        }
    }
}

fn now_beijing() -> LocalTime {
    LocalTime::from_utc(chrono::Utc::now(), BEIJING_OFFSET_SECS)
}

/// The platform's answer to a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The response flag byte (0x01 success, 0x02 error...).
    pub flag: u8,
    /// The time in the answer's body, when it has one.
    pub time: Option<LocalTime>,
}

/// A simulated vehicle on one TCP connection.
pub struct Vehicle {
    link: Link<Codec>,
    edition: Edition,
    /// Platform commands received (and answered) while waiting for something else.
    pub received: Vec<Frame>,
}

impl Device for Vehicle {
    type Edition = Edition;

    fn over(stream: impl super::Io + 'static, vin: &str, edition: Edition) -> Vehicle {
        Vehicle {
            link: Link::over(stream, Codec::new(CodecConfig::default()), vin, 1),
            edition,
            received: Vec::new(),
        }
    }
}

impl Vehicle {
    fn frame(&self, msg: &Message) -> io::Result<Frame> {
        msg.to_frame(self.edition, &self.link.id)
            .map_err(|e| io_err(e.to_string()))
    }

    /// Sends a message as a command (response flag 0xFE).
    pub async fn send(&mut self, msg: &Message) -> io::Result<()> {
        let frame = self.frame(msg)?;
        self.link.io.send(&frame).await
    }

    /// Reads until the answer to `command` arrives, answering platform commands meanwhile.
    pub async fn answer_to(&mut self, command: u8, timeout: Duration) -> io::Result<Reply> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = link::before(deadline, async { Ok(self.link.io.next().await) }).await?;
            let frame = super::platform_frame(next, |bad| bad.error.to_string())?
                .ok_or_else(super::platform_closed)?;
            if frame.response != 0xFE && frame.command == command {
                let time = match Message::decode(&frame) {
                    Ok(Message::Response(r)) => r.time,
                    _ => None,
                };
                return Ok(Reply {
                    flag: frame.response,
                    time,
                });
            }
            self.answer(&frame).await?;
            self.received.push(frame);
        }
    }

    /// Answers a platform command (0x80/0x81/0x82) with success and the command's own time.
    pub async fn answer(&mut self, frame: &Frame) -> io::Result<bool> {
        if frame.response != 0xFE {
            return Ok(false);
        }
        let answer = gbt32960::reply(
            frame,
            gbt32960::ResponseFlag::Success,
            now_beijing(),
            gbt32960::ReplyStyle::TimeOnly,
        );
        self.link.io.send(&answer).await?;
        Ok(true)
    }

    /// Logs in (0x01) and returns the answer.
    pub async fn login(&mut self) -> io::Result<Reply> {
        let batteries = match self.edition {
            Edition::V2016 => LoginBatteries::Ress2016 {
                ress_code_len: 0,
                ress_codes: Vec::new(),
            },
            Edition::V2025 => LoginBatteries::Packs2025 {
                pack_codes: Vec::new(),
            },
        };
        let login = Login {
            time: now_beijing(),
            seq: self.link.seq,
            iccid: "89860000000000000001".into(),
            batteries,
        };
        self.send(&Message::VehicleLogin(login)).await?;
        self.answer_to(0x01, Duration::from_secs(10)).await
    }

    /// Sends a real-time (0x02) or reissue (0x03) report; neither is answered on success.
    pub async fn realtime(&mut self, drive: &Drive, reissue: bool) -> io::Result<()> {
        let report = drive.report(self.edition);
        let msg = if reissue {
            Message::Reissue(report)
        } else {
            Message::Realtime(report)
        };
        self.send(&msg).await
    }

    /// Sends several real-time (or reissue) reports in one write, as a vehicle uploading the
    /// data it stored while out of coverage does.
    pub async fn realtime_burst(&mut self, drives: &[Drive], reissue: bool) -> io::Result<()> {
        let mut wire = Vec::new();
        for drive in drives {
            let report = drive.report(self.edition);
            let msg = if reissue {
                Message::Reissue(report)
            } else {
                Message::Realtime(report)
            };
            wire.extend_from_slice(&self.frame(&msg)?.to_wire());
        }
        self.link.send_wire(&wire).await
    }

    /// Sends a heartbeat (0x07) and returns the answer.
    pub async fn heartbeat(&mut self) -> io::Result<Reply> {
        self.send(&Message::Heartbeat(EmptyBody { extra: Vec::new() }))
            .await?;
        self.answer_to(0x07, Duration::from_secs(10)).await
    }

    /// Asks for the platform's time (0x08) and returns the answer.
    pub async fn time_calibration(&mut self) -> io::Result<Reply> {
        self.send(&Message::TimeCalibration(EmptyBody { extra: Vec::new() }))
            .await?;
        self.answer_to(0x08, Duration::from_secs(10)).await
    }

    /// Logs out (0x04).
    pub async fn logout(&mut self) -> io::Result<()> {
        let logout = Logout {
            time: now_beijing(),
            seq: self.link.seq,
        };
        self.send(&Message::VehicleLogout(logout)).await
    }

    /// Sends a real-time frame whose BCC is wrong and returns the platform's answer.
    pub async fn send_bad_checksum_realtime(&mut self) -> io::Result<Reply> {
        let mut wire = self
            .frame(&Message::Realtime(Drive::default().report(self.edition)))?
            .to_wire();
        if let Some(bcc) = wire.last_mut() {
            *bcc ^= 0x5A;
        }
        self.link.send_wire(&wire).await?;
        self.answer_to(0x02, Duration::from_secs(10)).await
    }

    /// Sends raw wire bytes.
    pub async fn send_wire(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.link.send_wire(bytes).await
    }

    /// Whether the platform closes the connection within `t`.
    pub async fn closed_within(&mut self, t: Duration) -> bool {
        self.link.closed_within(t).await
    }
}

/// One simulated vehicle of `vgate simulate`: connect, log in, send real-time reports at
/// `plan.rate` per second and a heartbeat every `plan.heartbeat` (timed), answer platform
/// commands, then log out.
pub async fn drive(plan: VehiclePlan, vin: String, edition: Edition) {
    let Some(mut v) = plan.device::<Vehicle>(&vin, edition).await else {
        return;
    };
    if !plan.logged_in(v.login().await.map(|r| r.flag == 0x01)) {
        return;
    }
    if run_reports(&mut v, &plan).await.is_err() {
        Stats::add(&plan.stats.disconnects);
        return;
    }
    let _ = v.logout().await;
}

async fn run_reports(v: &mut Vehicle, plan: &VehiclePlan) -> io::Result<()> {
    let stats = &plan.stats;
    let until = tokio::time::Instant::from_std(plan.drive_until);
    let mut tick = plan.report_ticks();
    let mut beat =
        tokio::time::interval_at(tokio::time::Instant::now() + plan.heartbeat, plan.heartbeat);
    let mut heartbeat_sent: Option<Instant> = None;
    let mut samples = Vec::with_capacity(16);
    let mut step: u64 = 0;
    let result = loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => break Ok(()),
            _ = tick.tick(), if plan.rate > 0.0 => {
                step += 1;
                let a = (plan.index as f64 * 0.37 + step as f64 * 0.01) % std::f64::consts::TAU;
                let d = Drive {
                    speed_kmh: 50.0 + 30.0 * a.sin().abs(),
                    soc_pct: (90.0 - (step as f64 * 0.01) % 80.0) as u8,
                    total_voltage_v: 370.0 + 10.0 * a.cos(),
                    total_current_a: 40.0 * a.sin(),
                    odometer_km: 1000.0 + step as f64 * 0.01,
                    latitude: 31.23 + 0.01 * a.sin(),
                    longitude: 121.47 + 0.01 * a.cos(),
                    // Battery high temperature (bit 1) at level 3, then cleared.
                    alarm: (plan.alarm_every > 0)
                        .then(|| if plan.alarm_on(step) { (3, 1 << 1) } else { (0, 0) }),
                };
                v.realtime(&d, false).await?;
                Stats::add(&stats.frames_sent);
            }
            _ = beat.tick() => {
                v.send(&Message::Heartbeat(EmptyBody { extra: Vec::new() })).await?;
                Stats::add(&stats.frames_sent);
                heartbeat_sent = Some(Instant::now());
            }
            next = v.link.io.next() => {
                let frame = match next {
                    None => break Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed by the gateway")),
                    Some(Err(e)) => break Err(e),
                    Some(Ok(Err(_))) => { Stats::add(&stats.errors); continue; }
                    Some(Ok(Ok(f))) => f,
                };
                if frame.response == 0xFE {
                    if v.answer(&frame).await? {
                        Stats::add(&stats.commands_answered);
                    }
                } else {
                    Stats::add(&stats.acks);
                    if frame.response != 0x01 {
                        Stats::add(&stats.errors);
                    }
                    if let (0x07, Some(sent)) = (frame.command, heartbeat_sent.take()) {
                        samples.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    }
                }
            }
        }
    };
    stats.record(&mut samples);
    result
}
