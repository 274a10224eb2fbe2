//! A simulated terminal taking an upgrade (0x8108 in packages) the way a T-Box does: each
//! package answered with a 0x0001, the whole message put back together, then the result
//! (0x0108). It can lose packages (no answer to their first copy, as if they never came) and,
//! like a 2019 terminal, ask for the missing ones with a 0x0005 once the last one is in.

use std::io;
use std::time::Duration;

use futures::StreamExt;
use jt808::msg::{GeneralResponse, ResendRequest, UpgradePackage, UpgradeResult};
use jt808::{Header, Message};

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

impl Terminal {
    /// Takes the next upgrade the platform pushes (answering other platform messages as
    /// usual), sends 0x0108 with `b.result` (if any) and returns the upgrade as it arrived.
    pub async fn take_upgrade(
        &mut self,
        b: &UpgradeBehaviour,
        wait: Duration,
    ) -> io::Result<UpgradePackage> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut parts: Vec<Option<bytes::Bytes>> = Vec::new();
        let mut lost_once: Vec<u16> = Vec::new();
        let mut first: Option<Header> = None;
        loop {
            let next = tokio::time::timeout_at(deadline, self.io.next())
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no upgrade in time"))?;
            let frame = match next {
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the platform closed the connection",
                    ))
                }
                Some(Err(e)) => return Err(e),
                Some(Ok(Err(bad))) => return Err(io_err(format!("bad frame: {}", bad.error))),
                Some(Ok(Ok(f))) => f,
            };
            if frame.header.msg_id != jt808::msg::id::UPGRADE_PACKAGE {
                let msg = Message::decode(&frame.header, &frame.body)
                    .map_err(|e| io_err(e.to_string()))?;
                self.answer(&frame.header, &msg).await?;
                self.received.push((frame.header, msg));
                continue;
            }
            let (total, index) = frame.header.package.map_or((1, 1), |p| (p.total, p.index));
            if parts.len() != usize::from(total) {
                parts = vec![None; usize::from(total)];
            }
            if index == 1 || first.is_none() {
                let mut h = frame.header.clone();
                h.serial = h.serial.wrapping_sub(index.wrapping_sub(1));
                first = Some(h);
            }
            if b.lose.contains(&index) && !lost_once.contains(&index) {
                lost_once.push(index);
            } else {
                if let Some(slot) = parts.get_mut(usize::from(index).wrapping_sub(1)) {
                    *slot = Some(frame.body.clone());
                }
                let ack = Message::TerminalResponse(GeneralResponse {
                    reply_serial: frame.header.serial,
                    reply_id: jt808::msg::id::UPGRADE_PACKAGE,
                    result: 0,
                });
                self.send(&ack).await?;
            }
            let missing: Vec<u16> = (1..=total)
                .filter(|i| parts.get(usize::from(*i) - 1).is_some_and(Option::is_none))
                .collect();
            if missing.is_empty() {
                let mut header = first.clone().unwrap_or(frame.header);
                header.package = None;
                let body: Vec<u8> = parts
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
                return Ok(up);
            }
            if b.ask_resend && index == total {
                let first_serial = first.as_ref().map_or(0, |h| h.serial);
                let req = Message::TerminalResendRequest(ResendRequest {
                    first_serial,
                    ids: missing,
                });
                self.send(&req).await?;
            }
        }
    }
}
