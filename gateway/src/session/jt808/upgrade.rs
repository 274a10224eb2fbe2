//! The `upgrade` command in a JT/T 808 session: a package pushed in 0x8108 packages with flow
//! control ([`jt808::ota::Push`]), progress published as it goes, the result taken from the
//! terminal's 0x0108.
//!
//! ```text
//! command upgrade ──▶ package resolved (packages store / URL, once per node)
//!                     0x8108 packages, `window` unanswered at most ──▶ terminal
//!   0x0001 per package ◀──  next packages; `sent` with progress_pct every 10 %
//!   0x0005 resend request ◀── the packages it names again
//!   all answered ──▶ waiting for the result (commands::upgrade::Waiting), any connection
//!   0x0108 ◀── result 0: `acked`; 1 failed, 2 cancelled: `failed`
//! ```
//!
//! One upgrade at a time per connection; other commands keep flowing beside it (the push
//! reserves its own serials). A connection that drops mid-transfer drops the push and leaves
//! the command queued: the next login pushes it again from the start, at most
//! `commands.retries` more times.

use std::time::{Duration, Instant};

use jt808::msg::{self, Message};
use jt808::ota::{Push, PushConfig};
use jt808::Header;
use tokio::io::AsyncWrite;
use tracing::{info, warn};

use super::Session;
use crate::commands::{command_of, CmdStatus, Outcome};
use crate::queue::{QueuedCommand, Settle};
use crate::session::Flow;

/// The upgrade a connection is pushing.
pub(super) struct Active {
    cmd: QueuedCommand,
    push: Push,
    upgrade_type: u8,
    result_timeout: Duration,
    /// The last progress published (a multiple of 10).
    reported_pct: u8,
    started: Instant,
}

/// Whether queued command `q` is an `upgrade`.
pub(super) fn is_upgrade(q: &QueuedCommand) -> bool {
    q.command.kind().as_deref() == Some("upgrade")
}

impl<W: AsyncWrite + Unpin + Send + 'static> Session<W> {
    /// Whether an uplink with `msg_id` may concern an upgrade (so it is looked at even
    /// with no command in flight).
    pub(super) fn upgrade_listens(&self, msg_id: u16) -> bool {
        self.upgrade.is_some() || msg_id == msg::id::UPGRADE_RESULT
    }

    /// A queued `upgrade` for this terminal: started, unless one is being pushed on this
    /// connection already or this one waits for its result.
    pub(super) async fn offer_upgrade(&mut self, addr: &Header, q: QueuedCommand) -> Flow {
        let commands = self.l.shared.commands.clone();
        if self.upgrade.is_some() || commands.upgrades.contains(&q.vehicle, &q.id) {
            return Flow::Continue;
        }
        let protocol = self.protocol();
        let (push, upgrade_type, result_timeout) = match self.prepare_upgrade(addr, &q).await {
            Ok(p) => p,
            Err((status, reason)) => {
                commands
                    .finish(&q, protocol, status, Some(reason), None)
                    .await;
                return Flow::Continue;
            }
        };
        self.serial = self.serial.wrapping_add(push.packages());
        // `sent` (progress 0) is stored and published before any progress can follow it.
        let op = Settle::Attempt {
            vehicle: q.vehicle.clone(),
            id: q.id.clone(),
        };
        let mut sent = Outcome::of(&q, protocol, CmdStatus::Sent);
        sent.progress_pct = Some(0);
        commands.settle.record_and_wait(op, sent).await;
        metrics::counter!("vgate_commands_sent_total", "protocol" => "jt808").increment(1);
        self.upgrade = Some(Box::new(Active {
            upgrade_type,
            result_timeout,
            cmd: q,
            push,
            reported_pct: 0,
            started: Instant::now(),
        }));
        self.pump_upgrade(addr, Vec::new()).await
    }

    /// The push of upgrade `q` (its type and how long to wait for its result), or the
    /// final status and reason it ends with instead: `rejected` for params the edition
    /// cannot carry, `failed` for a package that cannot be had or pushed, or a transfer
    /// interrupted more than `commands.retries` times.
    async fn prepare_upgrade(
        &mut self,
        addr: &Header,
        q: &QueuedCommand,
    ) -> Result<(Push, u8, Duration), (CmdStatus, String)> {
        let commands = self.l.shared.commands.clone();
        if q.attempts > commands.cfg.retries {
            let reason = format!("transfer interrupted {} times", q.attempts);
            return Err((CmdStatus::Failed, reason));
        }
        let version = self.version.unwrap_or(addr.version);
        let rejected = |e: &dyn std::fmt::Display| (CmdStatus::Rejected, e.to_string());
        let order = command_of(q)
            .and_then(|c| jt808::command::upgrade(&c, version))
            .map_err(|e| rejected(&e))?;
        let (package_id, package) = commands
            .packages
            .resolve(&order.package, order.sha256.as_deref())
            .await
            .map_err(|e| {
                metrics::counter!("vgate_upgrades_total", "result" => "no_package").increment(1);
                (CmdStatus::Failed, e.to_string())
            })?;
        let ucfg = commands.packages.config();
        let mut head = Vec::new();
        order
            .message
            .encode_head(version, package.len(), &mut head)
            .map_err(|e| rejected(&e))?;
        let cfg = PushConfig {
            package_bytes: order.package_bytes.unwrap_or(ucfg.package_bytes),
            window: ucfg.window,
            timeout: Duration::from_secs(ucfg.package_timeout_s),
            retries: ucfg.package_retries,
        };
        let push = Push::new(head, package, self.serial, cfg)
            .map_err(|e| (CmdStatus::Failed, e.to_string()))?;
        info!(vehicle = %q.vehicle, id = %q.id, package = %package_id, packages = push.packages(), "upgrade transfer started");
        let result_timeout =
            Duration::from_secs(order.result_timeout_s.unwrap_or(ucfg.result_timeout_s));
        Ok((push, order.message.upgrade_type, result_timeout))
    }

    /// Writes `again` (packages to send again) and the packages the window lets go now, in
    /// one write.
    async fn pump_upgrade(&mut self, addr: &Header, again: Vec<u16>) -> Flow {
        let Some(a) = self.upgrade.as_mut() else {
            return Flow::Continue;
        };
        let mut send = again;
        send.extend(a.push.next(Instant::now()));
        if send.is_empty() {
            return Flow::Continue;
        }
        let mut out = Vec::with_capacity(send.len() * 1040);
        for i in &send {
            a.push.frame(addr, *i).write_wire(&mut out);
        }
        metrics::counter!("vgate_frames_out_total", "protocol" => "jt808", "msg_id" => msg::id::label(msg::id::UPGRADE_PACKAGE)).increment(send.len() as u64);
        metrics::counter!("vgate_upgrade_packages_sent_total").increment(send.len() as u64);
        if let Flow::Close(r) = self.flush_deferred().await {
            return Flow::Close(r);
        }
        self.c.write(&out).await
    }

    /// An uplink that may answer the upgrade: `Some` when it did (a package's 0x0001, a
    /// 0x0005 naming the push, a 0x0108).
    pub(super) async fn on_upgrade_answer(&mut self, header: &Header, m: &Message) -> Option<Flow> {
        let addr = self.addr.clone()?;
        match m {
            Message::TerminalResponse(r) if r.reply_id == msg::id::UPGRADE_PACKAGE => {
                let a = self.upgrade.as_mut()?;
                let answered = a.push.on_response(r.reply_serial, r.result);
                Some(self.after_upgrade_step(&addr, answered, Vec::new()).await)
            }
            Message::TerminalResendRequest(req) => {
                let a = self.upgrade.as_mut()?;
                let mine = a.push.on_resend_request(req.first_serial, &req.ids);
                Some(self.after_upgrade_step(&addr, Ok(mine), Vec::new()).await)
            }
            Message::UpgradeResult(r) => Some(self.on_upgrade_result(header, r).await),
            _ => None,
        }
    }

    /// After the push took an answer: the push failed, finished (now waiting for 0x0108),
    /// or goes on (progress published, more packages written).
    async fn after_upgrade_step(
        &mut self,
        addr: &Header,
        step: Result<bool, jt808::ota::PushError>,
        again: Vec<u16>,
    ) -> Flow {
        let commands = self.l.shared.commands.clone();
        let protocol = self.protocol();
        match step {
            Err(e) => {
                if let Some(a) = self.upgrade.take() {
                    warn!(vehicle = %a.cmd.vehicle, id = %a.cmd.id, error = %e, "upgrade transfer failed");
                    metrics::counter!("vgate_upgrades_total", "result" => "transfer_failed")
                        .increment(1);
                    commands
                        .finish(
                            &a.cmd,
                            protocol,
                            CmdStatus::Failed,
                            Some(e.to_string()),
                            None,
                        )
                        .await;
                }
                return self.deliver_commands().await;
            }
            Ok(false) => return Flow::Continue,
            Ok(true) => {}
        }
        let Some(a) = self.upgrade.as_mut() else {
            return Flow::Continue;
        };
        let pct = a.push.progress_pct() / 10 * 10;
        if pct > a.reported_pct {
            a.reported_pct = pct;
            let mut o = Outcome::of(&a.cmd, protocol, CmdStatus::Sent);
            o.progress_pct = Some(pct);
            commands.publisher().publish(o).await;
        }
        if a.push.is_complete() {
            if let Some(a) = self.upgrade.take() {
                let secs = a.started.elapsed().as_secs_f64();
                info!(vehicle = %a.cmd.vehicle, id = %a.cmd.id, packages = a.push.packages(), secs, "upgrade package transferred; waiting for the result (0x0108)");
                metrics::histogram!("vgate_upgrade_transfer_seconds").record(secs);
                commands
                    .upgrades
                    .add(a.cmd, protocol, a.upgrade_type, a.result_timeout);
            }
            return self.deliver_commands().await;
        }
        self.pump_upgrade(addr, again).await
    }

    /// Once a second while pushing: packages unanswered too long go again.
    pub(super) async fn upgrade_housekeeping(&mut self) -> Flow {
        let (Some(addr), Some(a)) = (self.addr.clone(), self.upgrade.as_mut()) else {
            return Flow::Continue;
        };
        match a.push.timed_out(Instant::now()) {
            Ok(again) if again.is_empty() => Flow::Continue,
            Ok(again) => self.after_upgrade_step(&addr, Ok(true), again).await,
            Err(e) => self.after_upgrade_step(&addr, Err(e), Vec::new()).await,
        }
    }

    /// The terminal's upgrade result (0x0108): finishes the upgrade it reports on (the one
    /// waiting on this node, else the oldest sent one of that type still queued).
    async fn on_upgrade_result(&mut self, header: &Header, r: &msg::UpgradeResult) -> Flow {
        let commands = self.l.shared.commands.clone();
        let protocol = self.protocol();
        let vehicle = header.phone.clone();
        let version = self.version.unwrap_or(header.version);
        let waiting = commands
            .upgrades
            .take(&vehicle, r.upgrade_type)
            .map(|e| e.cmd);
        let pushing = self.upgrade.as_ref().map(|a| a.cmd.id.clone());
        let cmd = match waiting {
            Some(c) => Some(c),
            None => commands
                .pending(&vehicle, commands.cfg.max_per_vehicle)
                .await
                .into_iter()
                .filter(|q| is_upgrade(q) && q.attempts > 0)
                .filter(|q| pushing.as_deref() != Some(q.id.as_str()))
                .find(|q| {
                    command_of(q)
                        .and_then(|c| jt808::command::upgrade(&c, version))
                        .is_ok_and(|o| o.message.upgrade_type == r.upgrade_type)
                }),
        };
        let Some(cmd) = cmd else {
            info!(vehicle = %vehicle, upgrade_type = r.upgrade_type, result = r.result, "upgrade result with no upgrade waiting");
            return Flow::Continue;
        };
        let response = serde_json::json!({"upgrade_type": r.upgrade_type, "result": r.result});
        let (status, reason, label) = match r.result {
            0 => (CmdStatus::Acked, None, "acked"),
            1 => (
                CmdStatus::Failed,
                Some("the terminal reports the upgrade failed (0x0108 result 1)".to_owned()),
                "failed",
            ),
            2 => (
                CmdStatus::Failed,
                Some("the terminal cancelled the upgrade (0x0108 result 2)".to_owned()),
                "cancelled",
            ),
            n => (
                CmdStatus::Failed,
                Some(format!("the terminal answered 0x0108 result {n}")),
                "failed",
            ),
        };
        metrics::counter!("vgate_upgrades_total", "result" => label).increment(1);
        info!(vehicle = %vehicle, id = %cmd.id, result = r.result, "upgrade result");
        commands
            .finish(&cmd, protocol, status, reason, Some(response))
            .await;
        Flow::Continue
    }
}
