//! Stale presence after a crash (one node, no Redis): who was online when vgate died.
//!
//! A vehicle's presence is a retained message (`{p}/v1/{vid}/status`). A clean stop
//! publishes every vehicle offline (reason `shutdown`); a SIGKILL, an OOM kill or a power cut
//! does not, and on a broker that keeps retained messages (Mosquitto with persistence, EMQX)
//! every vehicle that does not come back would stay `online: true` for ever.
//!
//! So the node keeps a journal of who is online, `data_dir/online.journal`: one line per
//! login (`+vid protocol`) and per logout (`-vid`), appended by one task in batches (a write
//! per batch, no fsync: what a killed process wrote is in the page cache; a machine that
//! loses power loses at most the last few lines, i.e. a few vehicles left stale, never a
//! wrong offline). When the journal grows past four times the vehicles online (and 10,000
//! lines) it is rewritten from the registry.
//!
//! At start the journal is read: the vehicles it leaves online were online when the last run
//! ended without a clean stop. They get `cluster.restart_grace_s` to reconnect; those that do
//! not are then published offline with reason `gateway_restart`. A clean stop removes the
//! journal (every session published its own offline).
//!
//! # Why a journal in the data dir, not the retained messages read back
//! Reading the presence back means subscribing to `{p}/v1/+/status` and receiving every
//! vehicle's retained message (a million on a large fleet, all but a few offline already)
//! and it sees only what the broker kept (a broker without persistence restarted meanwhile
//! has none, and one shared by several gateways holds theirs too). The journal holds only
//! this node's vehicles that were online, costs one append per login/logout batch, and works
//! whatever the broker. With Redis (cluster mode) the presence keys play this part instead
//! (`cluster::presence`).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use codecs::event::PresenceReason;
use codecs::Protocol;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::registry::{LocalRegistry, Registry};
use crate::sink::Sink;

/// The journal's file name in the data dir.
pub const JOURNAL: &str = "online.journal";

enum Line {
    On(String, Protocol),
    Off(String),
}

/// Reads a journal: the vehicles it leaves online, with their protocol names.
pub fn read(path: &Path) -> std::io::Result<HashMap<String, String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e),
    };
    let mut online = HashMap::new();
    // A torn last line (killed mid-write) has no newline: ignored.
    let complete = text.rfind('\n').map_or("", |i| text.get(..i).unwrap_or(""));
    for line in complete.lines() {
        if let Some(rest) = line.strip_prefix('+') {
            if let Some((vid, proto)) = rest.split_once(' ') {
                online.insert(vid.to_owned(), proto.to_owned());
            }
        } else if let Some(vid) = line.strip_prefix('-') {
            online.remove(vid);
        }
    }
    Ok(online)
}

fn rewrite(path: &Path, online: &[(String, String)]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    let mut buf = Vec::with_capacity(online.len() * 32);
    for (vid, proto) in online {
        buf.extend_from_slice(format!("+{vid} {proto}\n").as_bytes());
    }
    f.write_all(&buf)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The registry of a node without Redis: the local registry, journaled.
pub struct JournaledRegistry {
    local: LocalRegistry,
    tx: mpsc::UnboundedSender<Line>,
    /// Vehicles online when the last run died, not back yet.
    stale: Arc<Mutex<HashMap<String, String>>>,
}

impl JournaledRegistry {
    /// Reads the journal in `data_dir`, starts the writer, and after `grace` publishes on
    /// `sink` the vehicles of the last run that did not come back offline.
    pub fn start(
        local: LocalRegistry,
        data_dir: &Path,
        sink: Sink,
        node: Arc<str>,
        grace: Duration,
    ) -> std::io::Result<Arc<JournaledRegistry>> {
        let path = data_dir.join(JOURNAL);
        let stale = read(&path)?;
        // The stale vehicles stay in the journal until published offline: a second crash
        // during the grace period must not forget them.
        let mut keep: Vec<(String, String)> =
            stale.iter().map(|(v, p)| (v.clone(), p.clone())).collect();
        keep.sort();
        rewrite(&path, &keep)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let stale = Arc::new(Mutex::new(stale));
        let n = keep.len();
        tokio::spawn(writer(path, rx, local.clone()));
        if n > 0 {
            info!(vehicles = n, grace_s = grace.as_secs(), "vgate did not stop cleanly last time: vehicles that were online get the grace period to reconnect");
            tokio::spawn(expire(
                stale.clone(),
                tx.clone(),
                local.clone(),
                sink,
                node,
                grace,
            ));
        }
        Ok(Arc::new(JournaledRegistry { local, tx, stale }))
    }

    /// The journal is no longer needed: every session published its own offline.
    pub fn clean_stop(data_dir: &Path) {
        let _ = std::fs::remove_file(data_dir.join(JOURNAL));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn expire(
    stale: Arc<Mutex<HashMap<String, String>>>,
    tx: mpsc::UnboundedSender<Line>,
    local: LocalRegistry,
    sink: Sink,
    node: Arc<str>,
    grace: Duration,
) {
    tokio::time::sleep(grace).await;
    let gone: Vec<(String, String)> = lock(&stale).drain().collect();
    let mut n = 0usize;
    for (vid, proto) in gone {
        if local.get(&vid).is_some() {
            continue;
        }
        let protocol = crate::commands::protocol_from_name(&proto).unwrap_or(Protocol::Unknown);
        let ctx = codecs::EventContext {
            gateway: node.clone(),
            received_at: chrono::Utc::now(),
            device_utc_offset_secs: codecs::time::BEIJING_OFFSET_SECS,
        };
        let _ = sink
            .presence(
                &ctx,
                Arc::from(vid.as_str()),
                protocol,
                false,
                PresenceReason::GatewayRestart,
                None,
            )
            .await;
        let _ = tx.send(Line::Off(vid));
        n += 1;
    }
    metrics::counter!("vgate_stale_presence_cleared_total").increment(n as u64);
    info!(
        vehicles = n,
        "vehicles online before the restart and not back: published offline (gateway_restart)"
    );
}

async fn writer(path: PathBuf, mut rx: mpsc::UnboundedReceiver<Line>, local: LocalRegistry) {
    let mut batch = Vec::with_capacity(1024);
    let mut lines_since = 0usize;
    while rx.recv_many(&mut batch, 4096).await > 0 {
        let mut buf = Vec::with_capacity(batch.len() * 32);
        for l in batch.drain(..) {
            match l {
                Line::On(v, p) => {
                    buf.extend_from_slice(format!("+{v} {}\n", p.as_str()).as_bytes())
                }
                Line::Off(v) => buf.extend_from_slice(format!("-{v}\n").as_bytes()),
            }
            lines_since += 1;
        }
        let compact = lines_since > 10_000 && lines_since > 4 * local.online();
        let p = path.clone();
        let snapshot: Option<Vec<(String, String)>> = compact.then(|| {
            local
                .all()
                .into_iter()
                .map(|(v, h)| (v, h.protocol.as_str().to_owned()))
                .collect()
        });
        let r = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)?;
            f.write_all(&buf)?;
            if let Some(s) = snapshot {
                rewrite(&p, &s)?;
            }
            Ok(())
        })
        .await;
        if compact {
            lines_since = 0;
        }
        if let Ok(Err(e)) = r {
            warn!(path = %path.display(), error = %e, "presence journal not written: a crash now may leave vehicles retained online");
        }
    }
}

impl Registry for JournaledRegistry {
    fn local(&self) -> &LocalRegistry {
        &self.local
    }

    fn claimed(&self, vehicle_id: &str, protocol: Protocol, replaced: bool) {
        lock(&self.stale).remove(vehicle_id);
        if !replaced {
            let _ = self.tx.send(Line::On(vehicle_id.to_owned(), protocol));
        }
    }

    fn released(&self, vehicle_id: &str) {
        let _ = self.tx.send(Line::Off(vehicle_id.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_folds_logins_and_logouts_and_ignores_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(JOURNAL);
        std::fs::write(&p, "+a jt808-2013\n+b raw\n-a\n+c gbt32960-2016\n+d jt8").unwrap();
        let online = read(&p).unwrap();
        let mut ids: Vec<_> = online.keys().cloned().collect();
        ids.sort();
        assert_eq!(ids, ["b", "c"]);
        assert_eq!(online["c"], "gbt32960-2016");
        assert!(read(&dir.path().join("none")).unwrap().is_empty());
    }
}
