//! A simulated terminal taking an upgrade (0x8108 in packages) the way a T-Box does: each
//! package answered with a 0x0001, the whole message put back together, then the result
//! (0x0108). It can lose packages (no answer to their first copy, as if they never came) and,
//! like a 2019 terminal, ask for the missing ones with a 0x0005 once the last one is in.
//!
//! [`Terminal::next_frame`] takes every upgrade this way (no loss, result 0), so the
//! vehicles of `vgate simulate` accept upgrades; tests drive losses with
//! [`Terminal::take_upgrade`].

use std::io;
use std::time::Duration;

use futures::StreamExt;
use jt808::msg::{GeneralResponse, ResendRequest, UpgradePackage, UpgradeResult};
use jt808::{Frame, Header, Message};

use super::{io_err, Terminal};

/// How a simulated terminal takes an upgrade.
#[derive(Debug, Clone, Default)]
pub struct UpgradeBehaviour {
    /// Packages (1-based) whose first copy is lost: not kept, not answered.
    pub lose: Vec<u16>,
    /// Ask for the lost packages with a 0x0005 once the last package is in, instead of
    /// waiting for the platform to send them again on its own.
    pub ask_resend: bool,
    /// The 0x0108 result sent at the end: 0 success, 1 failed, 2 cancelled; `None`: none
    /// (a terminal that restarts first and reports on its next connection).
    pub result: Option<u8>,
}

/// An upgrade whose packages are arriving.
#[derive(Debug, Default)]
pub(super) struct Incoming {
    parts: Vec<Option<bytes::Bytes>>,
    lost_once: Vec<u16>,
    first: Option<Header>,
}

impl Terminal {
    /// One 0x8108 frame: kept and answered (unless `b` loses it); the whole upgrade once
    /// every package is in (its 0x0108 sent as `b` says).
    pub(super) async fn upgrade_package(
        &mut self,
        frame: Frame,
        b: &UpgradeBehaviour,
    ) -> io::Result<Option<UpgradePackage>> {
        let (total, index) = frame.header.package.map_or((1, 1), |p| (p.total, p.index));
        let inc = self.upgrade_in.get_or_insert_with(Default::default);
        if inc.parts.len() != usize::from(total) {
            **inc = Incoming::default();
            inc.parts = vec![None; usize::from(total)];
        }
        if inc.first.is_none() {
            let mut h = frame.header.clone();
            h.serial = h.serial.wrapping_sub(index.wrapping_sub(1));
            inc.first = Some(h);
        }
        let lost = b.lose.contains(&index) && !inc.lost_once.contains(&index);
        if lost {
            inc.lost_once.push(index);
        } else if let Some(slot) = inc.parts.get_mut(usize::from(index).wrapping_sub(1)) {
            *slot = Some(frame.body.clone());
        }
        let missing: Vec<u16> = (1..=total)
            .filter(|i| {
                inc.parts
                    .get(usize::from(*i) - 1)
                    .is_some_and(Option::is_none)
            })
            .collect();
        let first = inc.first.clone();
        if !lost {
            let ack = Message::TerminalResponse(GeneralResponse {
                reply_serial: frame.header.serial,
                reply_id: jt808::msg::id::UPGRADE_PACKAGE,
                result: 0,
            });
            self.send(&ack).await?;
        }
        if missing.is_empty() {
            let inc = self.upgrade_in.take().unwrap_or_default();
            let mut header = first.unwrap_or(frame.header);
            header.package = None;
            let body: Vec<u8> = inc
                .parts
                .iter()
                .flatten()
                .flat_map(|p| p.iter().copied())
                .collect();
            let Message::UpgradePackage(up) =
                Message::decode(&header, &body).map_err(|e| io_err(e.to_string()))?
            else {
                return Err(io_err("0x8108 did not decode as an upgrade"));
            };
            if let Some(result) = b.result {
                let result = Message::UpgradeResult(UpgradeResult {
                    upgrade_type: up.upgrade_type,
                    result,
                });
                self.send(&result).await?;
            }
            return Ok(Some(up));
        }
        if b.ask_resend && index == total {
            let first_serial = first.as_ref().map_or(0, |h| h.serial);
            let req = Message::TerminalResendRequest(ResendRequest {
                first_serial,
                ids: missing,
            });
            self.send(&req).await?;
        }
        Ok(None)
    }

    /// Takes the next upgrade the platform pushes (answering other platform messages as
    /// usual), sends 0x0108 with `b.result` (if any) and returns the upgrade as it arrived.
    pub async fn take_upgrade(
        &mut self,
        b: &UpgradeBehaviour,
        wait: Duration,
    ) -> io::Result<UpgradePackage> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.link.io.next())
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no upgrade in time"))?;
            let frame = crate::simulate::platform_frame(next, |bad| bad.error.to_string())?
                .ok_or_else(crate::simulate::platform_closed)?;
            if frame.header.msg_id == jt808::msg::id::UPGRADE_PACKAGE {
                if let Some(up) = self.upgrade_package(frame, b).await? {
                    return Ok(up);
                }
                continue;
            }
            let msg =
                Message::decode(&frame.header, &frame.body).map_err(|e| io_err(e.to_string()))?;
            self.answer(&frame.header, &msg).await?;
            self.received.push((frame.header, msg));
        }
    }
}
