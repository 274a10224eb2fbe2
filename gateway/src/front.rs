//! The front door of a vehicle listener: what happens to a connection before its session
//! starts, and what limits a listener puts on who may knock (contract §5, docs/security.md).
//!
//! ```text
//! accept ─▶ max_connections? ──full──▶ closed (counted: max_connections)
//!             │ permit (held for the connection's life)
//!             ▼
//!           PROXY v1/v2 header (proxy_protocol = true) ─▶ the vehicle's real address
//!             ▼
//!           address refused for failed logins? ──▶ closed (counted: banned)
//!             ▼
//!           TLS handshake (tls table; ≤ handshake_timeout_s) ──▶ refused (counted by reason)
//!             ▼
//!           session driver over the plain or TLS stream (one code path: [`VStream`])
//! ```
//!
//! Every refusal is counted in `vgate_connections_refused_total{listener,reason}` and logged
//! with the listener, the peer and the reason.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{info, warn};

use crate::tls::{TlsIdentity, TlsSlot};

/// A vehicle connection's byte stream: plain TCP or TLS over it. The session driver runs
/// over this one type, so plain and TLS share one compiled session path.
pub enum VStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl AsyncRead for VStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            VStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            VStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for VStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            VStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            VStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            VStream::Plain(s) => Pin::new(s).poll_flush(cx),
            VStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            VStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            VStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            VStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            VStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            VStream::Plain(s) => s.is_write_vectored(),
            VStream::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// A listener's front-door settings (the keys `max_connections`, `proxy_protocol`,
/// `reuse_port`, `max_failed_logins`, `failed_login_window_s`, `failed_login_ban_s`).
#[derive(Debug, Clone, PartialEq)]
pub struct FrontConfig {
    /// Connections open at once; 0: no limit.
    pub max_connections: usize,
    /// Connections open at once from one source address; 0: no limit.
    pub max_connections_per_address: usize,
    pub proxy_protocol: bool,
    pub reuse_port: bool,
    /// Failed logins from one address within `failed_login_window` before the address is
    /// refused for `failed_login_ban`; 0: no cap.
    pub max_failed_logins: u32,
    pub failed_login_window: Duration,
    pub failed_login_ban: Duration,
}

/// Failed logins per source address, and the addresses refused for a while.
struct FailedLogins {
    max: u32,
    window: Duration,
    ban: Duration,
    by_ip: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    since: Instant,
    banned_until: Option<Instant>,
}

/// Addresses tracked at most (an attacker with many addresses cannot grow the table past it).
const MAX_TRACKED: usize = 65_536;

impl FailedLogins {
    fn banned(&self, ip: IpAddr, now: Instant) -> bool {
        if self.max == 0 {
            return false;
        }
        let Ok(map) = self.by_ip.lock() else {
            return false;
        };
        map.get(&ip)
            .and_then(|f| f.banned_until)
            .is_some_and(|until| now < until)
    }

    /// One failed login from `ip`; true when it makes the address refused.
    fn failed(&self, ip: IpAddr, now: Instant) -> bool {
        if self.max == 0 {
            return false;
        }
        let Ok(mut map) = self.by_ip.lock() else {
            return false;
        };
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            let (window, ban) = (self.window, self.ban);
            map.retain(|_, f| {
                now.duration_since(f.since) < window.max(ban)
                    || f.banned_until.is_some_and(|u| now < u)
            });
            if map.len() >= MAX_TRACKED {
                return false;
            }
        }
        let f = map.entry(ip).or_insert(Failures {
            count: 0,
            since: now,
            banned_until: None,
        });
        if now.duration_since(f.since) > self.window {
            *f = Failures {
                count: 0,
                since: now,
                banned_until: f.banned_until.filter(|u| now < *u),
            };
        }
        f.count += 1;
        if f.count >= self.max && !matches!(f.banned_until, Some(u) if now < u) {
            f.banned_until = Some(now + self.ban);
            f.count = 0;
            f.since = now;
            return true;
        }
        false
    }
}

/// One listener's front door.
pub struct FrontDoor {
    pub name: &'static str,
    pub tls: Option<Arc<TlsSlot>>,
    pub proxy_protocol: bool,
    connections: Option<Arc<Semaphore>>,
    per_address: Option<Arc<PerAddress>>,
    failed: FailedLogins,
    refusal_log: Mutex<RefusalLog>,
}

/// Connections open per source address, for `max_connections_per_address`.
struct PerAddress {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection counted against its address while it lives.
pub struct AddressSlot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.table.open.lock() {
            if let Some(n) = open.get_mut(&self.ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.remove(&self.ip);
                }
            }
        }
    }
}

/// A connection that passed the front door.
pub struct Admitted {
    pub stream: VStream,
    /// The vehicle's address (the PROXY header's when the listener expects one).
    pub peer: SocketAddr,
    /// The names the client certificate gives for the listener's `identity` (`None`: no
    /// identity check on this listener).
    pub names: Option<Arc<[String]>>,
    /// Its place under `max_connections_per_address`, released when dropped.
    pub slot: Option<AddressSlot>,
}

/// Refusal log lines per listener per second; the rest are counted, and the next line says
/// how many were left out (an attack must not flood the log; the counter has them all).
const REFUSAL_LOG_PER_S: u32 = 10;

/// The refusal log's window: lines this second, and those left out since the last line.
struct RefusalLog {
    second: Instant,
    lines: u32,
    suppressed: u64,
}

impl FrontDoor {
    /// Counts one refused connection (`vgate_connections_refused_total{listener,reason}`)
    /// and logs it, at most [`REFUSAL_LOG_PER_S`] lines a second.
    fn refused(&self, peer: SocketAddr, reason: &'static str, detail: &str) {
        let listener = self.name;
        metrics::counter!("vgate_connections_refused_total", "listener" => listener, "reason" => reason)
            .increment(1);
        let Ok(mut log) = self.refusal_log.lock() else {
            return;
        };
        let now = Instant::now();
        if now.duration_since(log.second) >= Duration::from_secs(1) {
            log.second = now;
            log.lines = 0;
        }
        if log.lines >= REFUSAL_LOG_PER_S {
            log.suppressed += 1;
            return;
        }
        log.lines += 1;
        let suppressed = std::mem::take(&mut log.suppressed);
        drop(log);
        info!(listener, %peer, reason, detail, suppressed, "connection refused");
    }
}

impl FrontDoor {
    pub fn new(name: &'static str, cfg: &FrontConfig, tls: Option<Arc<TlsSlot>>) -> FrontDoor {
        FrontDoor {
            name,
            tls,
            proxy_protocol: cfg.proxy_protocol,
            connections: (cfg.max_connections > 0)
                .then(|| Arc::new(Semaphore::new(cfg.max_connections))),
            per_address: (cfg.max_connections_per_address > 0).then(|| {
                Arc::new(PerAddress {
                    max: cfg.max_connections_per_address,
                    open: Mutex::new(HashMap::new()),
                })
            }),
            failed: FailedLogins {
                max: cfg.max_failed_logins,
                window: cfg.failed_login_window,
                ban: cfg.failed_login_ban,
                by_ip: Mutex::new(HashMap::new()),
            },
            refusal_log: Mutex::new(RefusalLog {
                second: Instant::now(),
                lines: 0,
                suppressed: 0,
            }),
        }
    }

    /// A place for one more connection: `Ok(None)` when the listener has no limit, `Err`
    /// (counted and logged) when it is full.
    #[allow(clippy::result_unit_err)]
    pub fn permit(&self, peer: SocketAddr) -> Result<Option<OwnedSemaphorePermit>, ()> {
        let Some(sem) = &self.connections else {
            return Ok(None);
        };
        match sem.clone().try_acquire_owned() {
            Ok(p) => Ok(Some(p)),
            Err(_) => {
                self.refused(peer, "max_connections", "listener full");
                Err(())
            }
        }
    }

    /// A login from `peer` was refused: counted towards its address's cap.
    pub fn failed_login(&self, peer: SocketAddr) {
        if self.failed.failed(peer.ip(), Instant::now()) {
            metrics::counter!("vgate_addresses_banned_total", "listener" => self.name).increment(1);
            warn!(listener = self.name, %peer, ban_s = self.failed.ban.as_secs(), "too many failed logins from this address: refusing it for a while");
        }
    }

    /// The PROXY header, the address cap and the TLS handshake, in that order; `None` when
    /// the connection is refused (counted and logged).
    pub async fn admit(&self, mut tcp: TcpStream, mut peer: SocketAddr) -> Option<Admitted> {
        if self.proxy_protocol {
            let limit = self
                .tls
                .as_ref()
                .map_or(Duration::from_secs(10), |t| t.cfg.handshake_timeout());
            match tokio::time::timeout(limit, read_proxy_header(&mut tcp)).await {
                Ok(Ok(Some(real))) => peer = real,
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    self.refused(peer, "proxy_header", &e.to_string());
                    return None;
                }
                Err(_) => {
                    self.refused(peer, "proxy_header", "no PROXY header in time");
                    return None;
                }
            }
        }
        if self.failed.banned(peer.ip(), Instant::now()) {
            self.refused(peer, "banned", "too many failed logins from this address");
            return None;
        }
        let address_slot = match &self.per_address {
            None => None,
            Some(table) => {
                let taken = match table.open.lock() {
                    Ok(mut open) => {
                        let n = open.entry(peer.ip()).or_insert(0);
                        if *n >= table.max {
                            false
                        } else {
                            *n += 1;
                            true
                        }
                    }
                    Err(_) => false,
                };
                if !taken {
                    self.refused(
                        peer,
                        "max_connections_per_address",
                        "too many connections from this address",
                    );
                    return None;
                }
                Some(AddressSlot {
                    table: table.clone(),
                    ip: peer.ip(),
                })
            }
        };
        let Some(slot) = &self.tls else {
            return Some(Admitted {
                stream: VStream::Plain(tcp),
                peer,
                names: None,
                slot: address_slot,
            });
        };
        let acceptor = slot.acceptor();
        let tls =
            match tokio::time::timeout(slot.cfg.handshake_timeout(), acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    let reason = crate::tls::handshake_failure(&e);
                    self.refused(peer, reason, &format!("TLS handshake: {e}"));
                    return None;
                }
                Err(_) => {
                    self.refused(
                        peer,
                        "handshake_timeout",
                        "TLS handshake not finished in time",
                    );
                    return None;
                }
            };
        let names = match slot.cfg.identity {
            TlsIdentity::None => None,
            identity => {
                let (_, conn) = tls.get_ref();
                let names = conn
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|leaf| crate::tls::certificate_names(leaf, identity))
                    .unwrap_or_default();
                Some(Arc::from(names))
            }
        };
        metrics::counter!("vgate_tls_handshakes_total", "listener" => self.name).increment(1);
        Some(Admitted {
            stream: VStream::Tls(Box::new(tls)),
            peer,
            names,
            slot: address_slot,
        })
    }
}

/// Why a PROXY header was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("reading the PROXY header: {0}")]
    Io(#[from] io::Error),
    #[error("no PROXY protocol header (v1 or v2) at the start of the connection")]
    Missing,
    #[error("malformed PROXY header: {0}")]
    Malformed(&'static str),
}

/// The PROXY protocol v2 signature.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Reads a PROXY protocol v1 or v2 header, exactly (nothing after it is consumed): the
/// source address it carries, or `None` for `UNKNOWN` / `LOCAL` (the load balancer's own
/// health check: the socket's peer stays).
pub async fn read_proxy_header<S: AsyncRead + Unpin>(
    s: &mut S,
) -> Result<Option<SocketAddr>, ProxyError> {
    let mut head = [0u8; 8];
    s.read_exact(&mut head).await?;
    if &head[..6] == b"PROXY " {
        // v1: a text line of at most 107 bytes ending in CRLF.
        let mut line = head.to_vec();
        while !line.ends_with(b"\r\n") {
            if line.len() >= 107 {
                return Err(ProxyError::Malformed("v1 line longer than 107 bytes"));
            }
            line.push(s.read_u8().await?);
        }
        return parse_v1(&line);
    }
    if head[..] != V2_SIGNATURE[..8] {
        return Err(ProxyError::Missing);
    }
    let mut rest = [0u8; 8];
    s.read_exact(&mut rest).await?;
    if rest[..4] != V2_SIGNATURE[8..] {
        return Err(ProxyError::Missing);
    }
    let [_, _, _, _, ver_cmd, family, len_hi, len_lo] = rest;
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::Malformed("v2 version is not 2"));
    }
    let len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
    if len > 1024 {
        return Err(ProxyError::Malformed("v2 header longer than 1024 bytes"));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    match ver_cmd & 0x0f {
        0 => Ok(None),
        1 => parse_v2_address(family, &body),
        _ => Err(ProxyError::Malformed(
            "v2 command is neither LOCAL nor PROXY",
        )),
    }
}

fn parse_v1(line: &[u8]) -> Result<Option<SocketAddr>, ProxyError> {
    let text = std::str::from_utf8(line)
        .map_err(|_| ProxyError::Malformed("v1 line is not text"))?
        .trim_end();
    let parts: Vec<&str> = text.split(' ').collect();
    match parts.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(None),
        ["PROXY", "TCP4" | "TCP6", src, _dst, sport, _dport] => {
            let ip: IpAddr = src
                .parse()
                .map_err(|_| ProxyError::Malformed("v1 source address"))?;
            let port: u16 = sport
                .parse()
                .map_err(|_| ProxyError::Malformed("v1 source port"))?;
            Ok(Some(SocketAddr::new(ip, port)))
        }
        _ => Err(ProxyError::Malformed("v1 line")),
    }
}

fn parse_v2_address(family: u8, body: &[u8]) -> Result<Option<SocketAddr>, ProxyError> {
    match family >> 4 {
        // AF_INET
        1 => {
            let b: &[u8; 12] = body
                .get(..12)
                .and_then(|b| b.try_into().ok())
                .ok_or(ProxyError::Malformed("v2 IPv4 addresses too short"))?;
            let [a, b2, c, d, _, _, _, _, p1, p2, _, _] = *b;
            Ok(Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(a, b2, c, d)),
                u16::from_be_bytes([p1, p2]),
            )))
        }
        // AF_INET6
        2 => {
            let src: [u8; 16] = body
                .get(..16)
                .and_then(|b| b.try_into().ok())
                .ok_or(ProxyError::Malformed("v2 IPv6 addresses too short"))?;
            let port: [u8; 2] = body
                .get(32..34)
                .and_then(|b| b.try_into().ok())
                .ok_or(ProxyError::Malformed("v2 IPv6 addresses too short"))?;
            Ok(Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(src)),
                u16::from_be_bytes(port),
            )))
        }
        // AF_UNSPEC, AF_UNIX: no address to use.
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> (Result<Option<SocketAddr>, ProxyError>, Vec<u8>) {
        let mut r = bytes;
        let got = read_proxy_header(&mut r).await;
        (got, r.to_vec())
    }

    #[tokio::test]
    async fn a_v1_header_gives_the_source_and_leaves_the_rest() {
        let (got, rest) = parse(b"PROXY TCP4 203.0.113.7 10.0.0.1 40001 6808\r\n~frame").await;
        assert_eq!(got.unwrap(), Some("203.0.113.7:40001".parse().unwrap()));
        assert_eq!(rest, b"~frame");
        let (got, _) = parse(b"PROXY TCP6 2001:db8::1 2001:db8::2 5 6\r\n").await;
        assert_eq!(got.unwrap(), Some("[2001:db8::1]:5".parse().unwrap()));
        let (got, rest) = parse(b"PROXY UNKNOWN\r\nxy").await;
        assert_eq!(got.unwrap(), None);
        assert_eq!(rest, b"xy");
    }

    #[tokio::test]
    async fn a_v2_header_gives_the_source_and_leaves_the_rest() {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend_from_slice(&[0x21, 0x11, 0, 12]);
        h.extend_from_slice(&[198, 51, 100, 9, 10, 0, 0, 1, 0x9c, 0x41, 0x1a, 0x98]);
        h.extend_from_slice(b"##");
        let (got, rest) = parse(&h).await;
        assert_eq!(got.unwrap(), Some("198.51.100.9:40001".parse().unwrap()));
        assert_eq!(rest, b"##");
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        assert_eq!(parse(&local).await.0.unwrap(), None);
    }

    #[tokio::test]
    async fn no_header_or_a_bad_one_is_refused() {
        assert!(matches!(
            parse(b"~\x01\x02\x00\x00\x00\x00\x00\x00").await.0,
            Err(ProxyError::Missing)
        ));
        assert!(matches!(
            parse(b"PROXY TCP4 nonsense\r\n").await.0,
            Err(ProxyError::Malformed(_))
        ));
        let long = [b"PROXY ".as_slice(), &[b'x'; 200]].concat();
        assert!(matches!(
            parse(&long).await.0,
            Err(ProxyError::Malformed(_))
        ));
    }

    #[test]
    fn an_address_is_refused_after_the_cap_and_for_the_ban() {
        let f = FailedLogins {
            max: 3,
            window: Duration::from_secs(60),
            ban: Duration::from_secs(300),
            by_ip: Mutex::new(HashMap::new()),
        };
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        assert!(!f.failed(ip, t0));
        assert!(!f.failed(ip, t0));
        assert!(!f.banned(ip, t0));
        assert!(f.failed(ip, t0), "the third failure bans");
        assert!(f.banned(ip, t0 + Duration::from_secs(299)));
        assert!(!f.banned(other, t0));
        assert!(!f.banned(ip, t0 + Duration::from_secs(301)), "for a while");
        // Failures spread over more than the window do not add up.
        assert!(!f.failed(other, t0));
        assert!(!f.failed(other, t0 + Duration::from_secs(61)));
        assert!(!f.failed(other, t0 + Duration::from_secs(62)));
        assert!(!f.banned(other, t0 + Duration::from_secs(62)));
    }
}
