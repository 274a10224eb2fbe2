//! `vgate simulate`: N vehicles of one protocol against a gateway, then a summary.
//!
//! Each simulated vehicle is a task that connects (optionally from one of several local
//! addresses, to go past one address's ephemeral ports), registers and logs in like a real
//! terminal, drives (moving positions, EV telemetry) at `--rate` reports per second, answers
//! platform commands as a terminal would, and records the latency from each report to the
//! gateway's acknowledgement (JT/T 808 0x8001; GB/T 32960 real-time frames are not
//! acknowledged, so there the heartbeat answer is timed). It speaks through the protocol
//! crates' own encoders: one copy of wire code.
//!
//! JT/T 808 vehicles also have a closed-loop flood mode (`--rate max --window W`): each keeps
//! up to W location reports unacknowledged and sends the next as each 0x8001 comes back, as
//! fast as the gateway answers, from pre-encoded frames with coalesced writes (see
//! [`jt808::flood`]). That measures the gateway's maximum rate rather than the offered one.
//!
//! It is the load generator of the benchmarks (`scripts/bench.sh`) and a tool on its own.

pub mod gbt32960;
pub mod jt808;
mod link;

pub use link::Device;
mod stats;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use tokio::net::{TcpSocket, TcpStream};

/// A simulated vehicle's byte stream: TCP, or TLS over it (`--tls`); boxed so that one
/// vehicle type serves both.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// A boxed [`Io`].
pub type Stream = Box<dyn Io>;

/// A TCP connection to a gateway listener, Nagle off (a vehicle's frames go out at once).
pub async fn tcp(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A protocol codec over any stream (plain, TLS, in-memory).
pub fn framed<C>(stream: impl Io + 'static, codec: C) -> tokio_util::codec::Framed<Stream, C> {
    tokio_util::codec::Framed::new(Box::new(stream) as Stream, codec)
}

/// What a simulated vehicle read from the platform (a codec's item: a frame, or one that did
/// not parse): the frame, `None` when the connection closed, an error for a read error or a
/// frame that does not parse (`why` says what was wrong with it).
pub fn platform_frame<F, B>(
    next: Option<std::io::Result<Result<F, B>>>,
    why: impl FnOnce(&B) -> String,
) -> std::io::Result<Option<F>> {
    match next {
        None => Ok(None),
        Some(Err(e)) => Err(e),
        Some(Ok(Err(bad))) => Err(std::io::Error::other(format!(
            "bad frame from the platform: {}",
            why(&bad)
        ))),
        Some(Ok(Ok(frame))) => Ok(Some(frame)),
    }
}

/// The platform closed the connection (where a simulated vehicle waited for something).
pub fn platform_closed() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the platform closed the connection",
    )
}

/// Whether the peer closes `io` within `t`; items meanwhile are read and dropped.
pub async fn closed_within<S, T, E>(io: &mut S, t: Duration) -> bool
where
    S: futures::Stream<Item = Result<T, E>> + Unpin,
{
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + t;
    loop {
        match tokio::time::timeout_at(deadline, io.next()).await {
            Err(_) => return false,
            Ok(None) | Ok(Some(Err(_))) => return true,
            Ok(Some(Ok(_))) => {}
        }
    }
}

pub use stats::{Stats, Summary};

use crate::Failure;

/// The protocol to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SimProtocol {
    Jt808,
    Gbt32960,
}

/// `vgate simulate` arguments.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct SimulateArgs {
    /// jt808 or gbt32960.
    #[arg(long)]
    pub protocol: SimProtocol,
    /// Number of vehicles (one TCP connection each).
    #[arg(long, default_value_t = 10)]
    pub vehicles: usize,
    /// Reports per second per vehicle, open loop (0 = log in and stay idle, heartbeats only);
    /// or `max`: closed-loop flood (JT/T 808 only), each vehicle sends as fast as the gateway
    /// acknowledges, with up to --window reports unacknowledged.
    #[arg(long, default_value = "1", value_parser = parse_rate)]
    pub rate: f64,
    /// With `--rate max`: location reports each vehicle keeps unacknowledged (1-4096,
    /// default 8); a new one goes out as each 0x8001 comes back.
    #[arg(long)]
    pub window: Option<usize>,
    /// With `--rate max`: stop after this many location reports in all (shared evenly by the
    /// vehicles), or at --duration, whichever comes first.
    #[arg(long)]
    pub count: Option<u64>,
    /// How long to drive, e.g. 30s, 5m (after every vehicle has connected; with `--rate max`
    /// after every vehicle has logged in).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// The gateway's listener, HOST:PORT (default 127.0.0.1:6808 or 127.0.0.1:32960); a
    /// list `a,b,c` or the option repeated spreads the vehicles over several (vehicle i
    /// goes to the (i mod n)-th).
    #[arg(long, value_delimiter = ',')]
    pub target: Vec<SocketAddr>,
    /// Local source addresses to spread connections over (vehicle i connects from the
    /// (i mod n)-th): a list `127.0.0.2,127.0.0.3` or a range `127.0.0.2-127.0.0.20`. Each
    /// address gives one ephemeral port range (~28,000 connections here); any address of
    /// 127.0.0.0/8 works on loopback without setup.
    #[arg(long, alias = "source-ip", value_parser = parse_addrs)]
    pub local_addrs: Option<LocalAddrs>,
    /// Run as this many processes: this one starts N children of itself, each with an equal
    /// share of the vehicles (and of --count and --connect-rate), and prints their summaries
    /// merged. A process is capped at its open-file limit (20,000 here), so 100,000
    /// connections need several.
    #[arg(long, default_value_t = 1)]
    pub processes: usize,
    /// The index of this process's first vehicle in the whole run (set by --processes for
    /// its children: targets and source addresses are picked by this index).
    #[arg(long, default_value_t = 0, hide = true)]
    pub first_index: usize,
    /// Edition: 2013 (default) or 2019 / 2011 for jt808; 2016 (default) or 2025 for gbt32960.
    #[arg(long)]
    pub edition: Option<String>,
    /// First vehicle number; vehicle i is numbered first_id + i (phone digits / VIN suffix).
    #[arg(long, default_value_t = 13_800_000_000)]
    pub first_id: u64,
    /// New connections per second while ramping up (0 = all at once: a reconnect storm).
    #[arg(long, default_value_t = 0.0)]
    pub connect_rate: f64,
    /// Heartbeat period in seconds.
    #[arg(long, default_value_t = 30)]
    pub heartbeat_s: u64,
    /// Raise an alarm on every Nth report of each vehicle and clear it on the Nth after
    /// (0 = never): JT/T 808 the emergency bit, GB/T 32960 an alarm unit with the battery
    /// high temperature flag at level 3 (and the same unit with no flag to clear it), so
    /// the gateway publishes `alarm` events. Open-loop reports only (not `--rate max`).
    #[arg(long, default_value_t = 0)]
    pub alarm_every: u64,
    /// JT/T 808: after every Nth report, upload a photo (0x0801 in 1,000-byte packages,
    /// waiting for the 0x8800) of --photo-kb KiB (0 = never). Open-loop reports only.
    #[arg(long, default_value_t = 0)]
    pub photo_every: u64,
    /// Size of each --photo-every photo, KiB.
    #[arg(long, default_value_t = 64)]
    pub photo_kb: usize,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Speak TLS to the listener (TLS 1.2 or 1.3; rustls).
    #[arg(long)]
    pub tls: bool,
    /// With --tls: the CA bundle (PEM) the gateway's certificate is checked against.
    #[arg(long, requires = "tls")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// With --tls: the client certificate chain (PEM) every vehicle presents (mutual TLS).
    #[arg(long, requires_all = ["tls", "tls_key"])]
    pub tls_cert: Option<std::path::PathBuf>,
    /// With --tls-cert: its private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// With --tls: the name the gateway's certificate must carry (default: the target's IP
    /// address).
    #[arg(long, requires = "tls")]
    pub tls_server_name: Option<String>,
}

/// The TLS client side of `--tls`: one configuration for every vehicle.
#[derive(Clone)]
pub struct TlsClient {
    connector: tokio_rustls::TlsConnector,
    name: rustls::pki_types::ServerName<'static>,
}

impl TlsClient {
    /// From the `--tls*` arguments (files named in the error).
    pub fn from_args(args: &SimulateArgs, target: SocketAddr) -> anyhow::Result<TlsClient> {
        use anyhow::Context;
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = &args.tls_ca {
            for c in CertificateDer::pem_file_iter(ca)
                .with_context(|| format!("--tls-ca {}", ca.display()))?
            {
                let c = c.with_context(|| format!("--tls-ca {}", ca.display()))?;
                roots
                    .add(c)
                    .with_context(|| format!("--tls-ca {}", ca.display()))?;
            }
        }
        // The gateway's provider (ring, X25519 first: gateway/src/tls.rs).
        let builder = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .with_root_certificates(roots);
        let cfg = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .with_context(|| format!("--tls-cert {}", cert.display()))?;
                let key_der = PrivateKeyDer::from_pem_file(key)
                    .with_context(|| format!("--tls-key {}", key.display()))?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .context("--tls-cert / --tls-key")?
            }
            _ => builder.with_no_client_auth(),
        };
        // Every simulated vehicle is another vehicle: no resuming one's session as another's
        // (each connection makes a full handshake, as a fleet's first connections do).
        let mut cfg = cfg;
        cfg.resumption = rustls::client::Resumption::disabled();
        let name = match &args.tls_server_name {
            Some(n) => ServerName::try_from(n.clone())
                .map_err(|e| anyhow!("--tls-server-name {n:?}: {e}"))?,
            None => ServerName::from(target.ip()),
        };
        Ok(TlsClient {
            connector: tokio_rustls::TlsConnector::from(Arc::new(cfg)),
            name,
        })
    }
}

/// The window of `--rate max` when `--window` is not given.
pub const DEFAULT_WINDOW: usize = 8;
/// The largest `--window`.
pub const MAX_WINDOW: usize = 4096;

/// Parses `--rate`: a number of reports per second, or `max` (infinity: flood mode).
fn parse_rate(s: &str) -> Result<f64, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("max") {
        return Ok(f64::INFINITY);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "bad rate {s:?}: a number of reports per second >= 0, or `max`"
        )),
    }
}

/// How the vehicles report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// `rate` reports per second per vehicle on a timer, whatever the gateway does.
    OpenLoop { rate: f64 },
    /// Closed loop: up to `window` reports unacknowledged per vehicle; `count` in all.
    Flood { window: usize, count: Option<u64> },
}

impl Mode {
    /// The mode that `args` ask for, or why the combination is not valid.
    pub fn of(args: &SimulateArgs) -> Result<Mode, String> {
        let rate = args.rate;
        if rate.is_nan() || rate < 0.0 {
            return Err("--rate must be a number >= 0 or `max`".into());
        }
        if rate.is_finite() {
            if args.window.is_some() {
                return Err(
                    "--window is for the closed-loop flood mode: use it with --rate max".into(),
                );
            }
            if args.count.is_some() {
                return Err(
                    "--count is for the closed-loop flood mode: use it with --rate max \
                     (open loop, use --duration)"
                        .into(),
                );
            }
            return Ok(Mode::OpenLoop { rate });
        }
        if args.protocol != SimProtocol::Jt808 {
            return Err(
                "--rate max (closed-loop flood) needs acknowledged reports: jt808 only \
                 (GB/T 32960 real-time frames are not acknowledged)"
                    .into(),
            );
        }
        let window = args.window.unwrap_or(DEFAULT_WINDOW);
        if !(1..=MAX_WINDOW).contains(&window) {
            return Err(format!("--window must be 1 to {MAX_WINDOW}"));
        }
        if args.count == Some(0) {
            return Err("--count must be at least 1".into());
        }
        if args.vehicles == 0 {
            return Err("--rate max needs at least one vehicle".into());
        }
        Ok(Mode::Flood {
            window,
            count: args.count,
        })
    }
}

/// Vehicle `index`'s share of `count` reports over `vehicles` (the first ones take the rest).
pub fn share(count: u64, vehicles: usize, index: usize) -> u64 {
    let v = vehicles.max(1) as u64;
    count / v + u64::from((index as u64) < count % v)
}

/// Holds flood-mode vehicles until every vehicle has logged in (or failed to), so that they
/// all start at once and the measured rate is not that of a ramp.
pub struct StartGate {
    expected: usize,
    arrived: AtomicUsize,
    open: tokio::sync::watch::Sender<bool>,
}

impl StartGate {
    /// A gate for `expected` vehicles.
    pub fn new(expected: usize) -> StartGate {
        StartGate {
            expected,
            arrived: AtomicUsize::new(0),
            open: tokio::sync::watch::Sender::new(expected == 0),
        }
    }

    /// One vehicle is ready (or gave up); the last one opens the gate.
    pub fn arrive(&self) {
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 >= self.expected {
            self.open.send_replace(true);
        }
    }

    /// Waits until the gate is open.
    pub async fn wait(&self) {
        let mut rx = self.open.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }
}

/// What a flood-mode vehicle needs besides its [`VehiclePlan`].
#[derive(Clone)]
pub struct FloodPlan {
    /// Reports kept unacknowledged.
    pub window: usize,
    /// This vehicle's reports in all (`u64::MAX` without `--count`).
    pub budget: u64,
    /// How long to drive once the gate opens.
    pub duration: Duration,
    pub gate: Arc<StartGate>,
}

/// A set of local source addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAddrs(pub Vec<IpAddr>);

fn parse_addrs(s: &str) -> Result<LocalAddrs, String> {
    if let Some((a, b)) = s.split_once('-') {
        let (a, b): (std::net::Ipv4Addr, std::net::Ipv4Addr) = (
            a.trim().parse().map_err(|e| format!("{a}: {e}"))?,
            b.trim().parse().map_err(|e| format!("{b}: {e}"))?,
        );
        let (lo, hi) = (u32::from(a), u32::from(b));
        if hi < lo || hi - lo > 65_535 {
            return Err(format!("bad range {s}"));
        }
        return Ok(LocalAddrs(
            (lo..=hi).map(|n| IpAddr::V4(n.into())).collect(),
        ));
    }
    s.split(',')
        .map(|p| p.trim().parse::<IpAddr>().map_err(|e| format!("{p}: {e}")))
        .collect::<Result<Vec<_>, _>>()
        .map(LocalAddrs)
}

/// Parses `30s`, `5m`, `1h`, `250ms` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, ""), |i| s.split_at(i));
    let v: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "" | "s" => v,
        "ms" => v / 1000.0,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("bad duration unit in {s:?} (use ms, s, m, h)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("bad duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Connects to `target`, from the `i`-th local address when some are given.
pub async fn connect(
    target: SocketAddr,
    local: Option<&LocalAddrs>,
    i: usize,
) -> std::io::Result<TcpStream> {
    let socket = if target.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(addrs) = local.filter(|a| !a.0.is_empty()) {
        if let Some(ip) = addrs.0.get(i % addrs.0.len()) {
            socket.bind(SocketAddr::new(*ip, 0))?;
        }
    }
    let stream = socket.connect(target).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// What one simulated vehicle needs.
#[derive(Clone)]
pub struct VehiclePlan {
    pub index: usize,
    pub target: SocketAddr,
    pub local: Option<Arc<LocalAddrs>>,
    pub rate: f64,
    pub drive_until: Instant,
    pub heartbeat: Duration,
    pub stats: Arc<Stats>,
    /// Closed-loop flood mode (JT/T 808), instead of `rate`.
    pub flood: Option<FloodPlan>,
    /// `--alarm-every`: reports between raising and clearing an alarm (0 = never).
    pub alarm_every: u64,
    /// `--photo-every` (0 = never) and `--photo-kb`.
    pub photo_every: u64,
    pub photo_bytes: usize,
    /// `--tls`: the handshake after the TCP connect.
    pub tls: Option<TlsClient>,
}

impl VehiclePlan {
    /// Whether report number `step` (from 1) has the simulated alarm set: off for the first
    /// `alarm_every - 1` reports, on for the next `alarm_every`, and so on.
    pub fn alarm_on(&self, step: u64) -> bool {
        self.alarm_every > 0 && (step / self.alarm_every) % 2 == 1
    }

    /// The report timer: every `1 / rate` seconds (every heartbeat period at rate 0), the
    /// first tick spread over one period by the vehicle's index so that the vehicles do not
    /// beat in step; a late tick delays the next rather than bunching them.
    pub fn report_ticks(&self) -> tokio::time::Interval {
        let period = if self.rate > 0.0 {
            Duration::from_secs_f64(1.0 / self.rate)
        } else {
            self.heartbeat
        };
        let offset = period.mul_f64((self.index % 97) as f64 / 97.0);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick
    }

    /// Opens the vehicle's connection and makes a `D` over it saying `id`; `None` (counted as
    /// a connect error) when the connection failed.
    pub async fn device<D: Device>(&self, id: &str, edition: D::Edition) -> Option<D> {
        match open(self).await {
            Ok(stream) => {
                Stats::add(&self.stats.connected);
                Some(D::over(stream, id, edition))
            }
            Err(_) => {
                Stats::add(&self.stats.connect_errors);
                None
            }
        }
    }

    /// Counts how a login went (`Ok(true)` accepted, `Ok(false)` refused, an error: the
    /// connection broke) and returns whether the vehicle is logged in.
    pub fn logged_in(&self, login: std::io::Result<bool>) -> bool {
        let stats = &self.stats;
        match login {
            Ok(true) => stats.logged_in(),
            Ok(false) => Stats::add(&stats.login_refused),
            Err(_) => {
                Stats::add(&stats.errors);
                Stats::add(&stats.disconnects);
            }
        }
        matches!(login, Ok(true))
    }
}

/// The vehicle's connection: TCP ([`connect`]), then TLS with `--tls`.
pub async fn open(plan: &VehiclePlan) -> std::io::Result<Stream> {
    let tcp = connect(plan.target, plan.local.as_deref(), plan.index).await?;
    match &plan.tls {
        None => Ok(Box::new(tcp)),
        Some(t) => {
            let tls = t.connector.connect(t.name.clone(), tcp).await?;
            Ok(Box::new(tls))
        }
    }
}

/// Runs the subcommand.
pub fn run(args: SimulateArgs) -> Result<(), Failure> {
    let summary = if args.processes > 1 {
        processes(&args)?
    } else {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::Usage(anyhow!("runtime: {e}")))?;
        rt.block_on(simulate(args.clone()))?
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).unwrap_or_default()
        );
    } else {
        print!("{summary}");
    }
    if summary.logins == 0 && args.vehicles > 0 {
        return Err(Failure::Input(anyhow!("no vehicle could log in")));
    }
    Ok(())
}

/// Runs a simulation and returns its summary.
pub async fn simulate(args: SimulateArgs) -> Result<Summary, Failure> {
    let targets = if args.target.is_empty() {
        vec![match args.protocol {
            SimProtocol::Jt808 => SocketAddr::from(([127, 0, 0, 1], 6808)),
            SimProtocol::Gbt32960 => SocketAddr::from(([127, 0, 0, 1], 32960)),
        }]
    } else {
        args.target.clone()
    };
    let target = targets
        .first()
        .copied()
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
    let mode = Mode::of(&args).map_err(|e| Failure::Usage(anyhow!(e)))?;
    let edition = args.edition.as_deref();
    let bad_edition = |e: &str, which: &str| Failure::Usage(anyhow!("--edition {e}: {which}"));
    let jt_version = match (args.protocol, edition) {
        (SimProtocol::Jt808, e) => Some(match e {
            None => ::jt808::Version::V2013,
            Some(e) => ::jt808::Version::from_name(e)
                .ok_or_else(|| bad_edition(e, "2011, 2013 or 2019"))?,
        }),
        _ => None,
    };
    let gb_edition = match (args.protocol, edition) {
        (SimProtocol::Gbt32960, e) => Some(match e {
            None => ::gbt32960::Edition::V2016,
            Some(e) => {
                ::gbt32960::Edition::from_name(e).ok_or_else(|| bad_edition(e, "2016 or 2025"))?
            }
        }),
        _ => None,
    };
    let tls = if args.tls {
        Some(TlsClient::from_args(&args, target).map_err(Failure::Usage)?)
    } else {
        None
    };
    let stats = Arc::new(Stats::default());
    let local = args.local_addrs.clone().map(Arc::new);
    let started = Instant::now();
    let ramp = if args.connect_rate > 0.0 {
        args.vehicles as f64 / args.connect_rate
    } else {
        0.0
    };
    let drive_until = started + Duration::from_secs_f64(ramp) + args.duration;
    let gate = Arc::new(StartGate::new(args.vehicles));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.vehicles {
        if args.connect_rate > 0.0 {
            let at = started + Duration::from_secs_f64(i as f64 / args.connect_rate);
            tokio::time::sleep_until(at.into()).await;
        }
        let index = args.first_index + i;
        let plan = VehiclePlan {
            index,
            target: targets
                .get(index % targets.len())
                .copied()
                .unwrap_or(target),
            local: local.clone(),
            rate: match mode {
                Mode::OpenLoop { rate } => rate,
                Mode::Flood { .. } => 0.0,
            },
            drive_until,
            heartbeat: Duration::from_secs(args.heartbeat_s.max(1)),
            stats: stats.clone(),
            flood: match mode {
                Mode::OpenLoop { .. } => None,
                Mode::Flood { window, count } => Some(FloodPlan {
                    window,
                    budget: count.map_or(u64::MAX, |n| share(n, args.vehicles, i)),
                    duration: args.duration,
                    gate: gate.clone(),
                }),
            },
            alarm_every: args.alarm_every,
            photo_every: args.photo_every,
            photo_bytes: args.photo_kb.saturating_mul(1024),
            tls: tls.clone(),
        };
        let id = args.first_id + i as u64;
        match (jt_version, gb_edition) {
            (Some(v), _) => {
                tasks.spawn(jt808::drive(plan, format!("{id:012}"), v));
            }
            (_, Some(e)) => {
                tasks.spawn(gbt32960::drive(plan, sim_vin(id), e));
            }
            _ => {}
        }
    }
    while tasks.join_next().await.is_some() {}
    let mut summary = stats.summary(started.elapsed(), args.vehicles);
    if let Mode::Flood { window, .. } = mode {
        summary.mode = "flood".into();
        summary.window = Some(window);
    }
    Ok(summary)
}

/// `--processes N`: runs the simulation as N children of this executable, each with its share
/// of the vehicles (consecutive ids, and the global vehicle index that picks targets and
/// source addresses), all started at once, and merges their summaries.
fn processes(args: &SimulateArgs) -> Result<Summary, Failure> {
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().map_err(|e| Failure::Usage(anyhow!("own path: {e}")))?;
    let n = args.processes;
    let mut children = Vec::with_capacity(n);
    let mut first = 0usize;
    for k in 0..n {
        let vehicles = share(args.vehicles as u64, n, k) as usize;
        let child = child_args(args, k, first, vehicles);
        first += vehicles;
        let spawned = Command::new(&exe)
            .arg("simulate")
            .args(child.to_args())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Failure::Usage(anyhow!("starting simulator process {k}: {e}")))?;
        children.push(spawned);
    }
    let mut parts = Vec::with_capacity(n);
    for (k, c) in children.into_iter().enumerate() {
        let out = c
            .wait_with_output()
            .map_err(|e| Failure::Usage(anyhow!("simulator process {k}: {e}")))?;
        let part: Summary = serde_json::from_slice(&out.stdout).map_err(|e| {
            Failure::Input(anyhow!(
                "simulator process {k} ({}) gave no summary: {e}",
                out.status
            ))
        })?;
        parts.push(part);
    }
    Ok(Summary::merge(&parts))
}

/// The arguments of child `k` of `--processes`, which simulates `vehicles` vehicles from
/// the run's vehicle number `first`.
fn child_args(args: &SimulateArgs, k: usize, first: usize, vehicles: usize) -> SimulateArgs {
    let n = args.processes.max(1);
    SimulateArgs {
        vehicles,
        count: args.count.map(|c| share(c, n, k)),
        first_id: args.first_id + first as u64,
        first_index: args.first_index + first,
        connect_rate: args.connect_rate / n as f64,
        processes: 1,
        json: true,
        ..args.clone()
    }
}

impl SimulateArgs {
    /// The command line that parses back to these arguments (after `simulate`).
    pub fn to_args(&self) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let mut opt = |k: &str, v: String| {
            a.push(format!("--{k}"));
            a.push(v);
        };
        opt(
            "protocol",
            match self.protocol {
                SimProtocol::Jt808 => "jt808",
                SimProtocol::Gbt32960 => "gbt32960",
            }
            .into(),
        );
        opt("vehicles", self.vehicles.to_string());
        opt(
            "rate",
            if self.rate.is_infinite() {
                "max".into()
            } else {
                self.rate.to_string()
            },
        );
        if let Some(w) = self.window {
            opt("window", w.to_string());
        }
        if let Some(c) = self.count {
            opt("count", c.to_string());
        }
        opt("duration", format!("{}ms", self.duration.as_millis()));
        for t in &self.target {
            opt("target", t.to_string());
        }
        if let Some(l) = &self.local_addrs {
            let list: Vec<String> = l.0.iter().map(|ip| ip.to_string()).collect();
            opt("local-addrs", list.join(","));
        }
        if let Some(e) = &self.edition {
            opt("edition", e.clone());
        }
        opt("first-id", self.first_id.to_string());
        opt("first-index", self.first_index.to_string());
        opt("connect-rate", self.connect_rate.to_string());
        opt("heartbeat-s", self.heartbeat_s.to_string());
        opt("alarm-every", self.alarm_every.to_string());
        opt("photo-every", self.photo_every.to_string());
        opt("photo-kb", self.photo_kb.to_string());
        opt("processes", self.processes.to_string());
        if let Some(p) = &self.tls_ca {
            opt("tls-ca", p.display().to_string());
        }
        if let Some(p) = &self.tls_cert {
            opt("tls-cert", p.display().to_string());
        }
        if let Some(p) = &self.tls_key {
            opt("tls-key", p.display().to_string());
        }
        if let Some(n) = &self.tls_server_name {
            opt("tls-server-name", n.clone());
        }
        if self.json {
            a.push("--json".into());
        }
        if self.tls {
            a.push("--tls".into());
        }
        a
    }
}

/// A 17-character simulated VIN ending with the vehicle number.
pub fn sim_vin(n: u64) -> String {
    format!("VGSIM{:012}", n % 1_000_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimulateArgs,
    }

    fn parse(line: &str) -> Result<SimulateArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("simulate").chain(line.split_whitespace()))
            .map(|c| c.args)
    }

    fn mode(line: &str) -> Result<Mode, String> {
        Mode::of(&parse(line).map_err(|e| e.to_string())?)
    }

    #[test]
    fn rate_max_and_window_select_the_flood_mode() {
        assert_eq!(mode("--protocol jt808"), Ok(Mode::OpenLoop { rate: 1.0 }));
        assert_eq!(
            mode("--protocol jt808 --rate 200"),
            Ok(Mode::OpenLoop { rate: 200.0 })
        );
        assert_eq!(
            mode("--protocol gbt32960 --rate 0"),
            Ok(Mode::OpenLoop { rate: 0.0 })
        );
        assert_eq!(
            mode("--protocol jt808 --rate max"),
            Ok(Mode::Flood {
                window: DEFAULT_WINDOW,
                count: None
            })
        );
        assert_eq!(
            mode("--protocol jt808 --rate MAX --window 32 --count 1000"),
            Ok(Mode::Flood {
                window: 32,
                count: Some(1000)
            })
        );
    }

    #[test]
    fn alarm_every_raises_for_n_reports_then_clears_for_n() {
        let args = parse("--protocol jt808 --alarm-every 3").unwrap();
        assert_eq!(args.alarm_every, 3);
        let plan = |alarm_every| VehiclePlan {
            index: 0,
            target: "127.0.0.1:1".parse().unwrap(),
            local: None,
            rate: 1.0,
            drive_until: Instant::now(),
            heartbeat: Duration::from_secs(30),
            stats: Arc::new(Stats::default()),
            flood: None,
            alarm_every,
            photo_every: 0,
            photo_bytes: 0,
            tls: None,
        };
        let on: Vec<bool> = (1..=9).map(|s| plan(3).alarm_on(s)).collect();
        assert_eq!(
            on,
            [false, false, true, true, true, false, false, false, true]
        );
        assert!((1..100).all(|s| !plan(0).alarm_on(s)));
    }

    #[test]
    fn invalid_combinations_are_refused_clearly() {
        let err = |line: &str| mode(line).err().unwrap_or_default();
        assert!(err("--protocol jt808 --window 8").contains("--rate max"));
        assert!(err("--protocol jt808 --rate 5 --count 10").contains("--rate max"));
        assert!(err("--protocol gbt32960 --rate max").contains("jt808 only"));
        assert!(err("--protocol jt808 --rate max --window 0").contains("--window must be"));
        assert!(err("--protocol jt808 --rate max --window 5000").contains("--window must be"));
        assert!(err("--protocol jt808 --rate max --count 0").contains("--count"));
        assert!(err("--protocol jt808 --rate max --vehicles 0").contains("vehicle"));
        assert!(err("--protocol jt808 --rate fast").contains("bad rate"));
        assert!(err("--protocol jt808 --rate=-1").contains("rate"));
        assert!(parse_rate("nan").is_err());
        assert!(parse_rate("inf").is_err());
    }

    #[test]
    fn count_is_shared_evenly() {
        let shares: Vec<u64> = (0..3).map(|i| share(10, 3, i)).collect();
        assert_eq!(shares, [4, 3, 3]);
        assert_eq!((0..7).map(|i| share(400_000, 7, i)).sum::<u64>(), 400_000);
        assert_eq!(share(2, 4, 3), 0);
    }

    #[tokio::test]
    async fn the_start_gate_opens_when_the_last_vehicle_arrives() {
        let gate = Arc::new(StartGate::new(2));
        gate.arrive();
        let waiting = tokio::time::timeout(Duration::from_millis(50), gate.wait()).await;
        assert!(waiting.is_err(), "open after 1 of 2");
        gate.arrive();
        let open = tokio::time::timeout(Duration::from_secs(1), gate.wait()).await;
        assert!(open.is_ok(), "still closed after 2 of 2");
    }

    #[test]
    fn durations_and_address_ranges_parse() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert!(parse_duration("5x").is_err());
        assert_eq!(parse_addrs("127.0.0.2-127.0.0.4").unwrap().0.len(), 3);
        assert_eq!(parse_addrs("127.0.0.2,127.0.0.9").unwrap().0.len(), 2);
        assert_eq!(sim_vin(13_800_000_000).len(), 17);
    }

    #[test]
    fn a_child_command_line_parses_back_to_its_arguments() {
        let args = parse(
            "--protocol gbt32960 --vehicles 100001 --rate 2.5 --count 7 --duration 90s \
             --target 127.0.0.1:7001,127.0.0.1:7002 --target 127.0.0.1:7003 \
             --source-ip 127.0.0.2-127.0.0.4 --edition 2025 --first-id 500 --connect-rate 3000 \
             --heartbeat-s 60 --alarm-every 3 --photo-every 2 --photo-kb 8 --processes 6 --json",
        )
        .unwrap();
        assert_eq!(args.target.len(), 3);
        assert_eq!(args.local_addrs.as_ref().map(|l| l.0.len()), Some(3));
        let mut first = 0;
        let mut count = 0;
        for k in 0..6 {
            let vehicles = share(args.vehicles as u64, 6, k) as usize;
            let child = child_args(&args, k, first, vehicles);
            assert_eq!(child.first_id, 500 + first as u64, "consecutive ids");
            assert_eq!(child.first_index, first, "the run's vehicle index");
            assert_eq!(child.processes, 1);
            assert_eq!(child.connect_rate, 500.0, "the rate shared");
            count += child.count.unwrap();
            first += vehicles;
            let back = parse(&child.to_args().join(" ")).unwrap();
            assert_eq!(back, child);
        }
        assert_eq!(first, 100_001, "every vehicle in one child");
        assert_eq!(count, 7, "the count shared");
        let flood =
            parse("--protocol jt808 --rate max --window 4 --tls --tls-server-name x").unwrap();
        assert_eq!(parse(&flood.to_args().join(" ")).unwrap(), flood);
    }

    #[tokio::test]
    async fn connections_come_from_each_source_address_in_turn() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = listener.local_addr().unwrap();
        let local = parse_addrs("127.0.0.2,127.0.0.3").unwrap();
        let mut peers = Vec::new();
        for i in 0..4 {
            let _c = connect(target, Some(&local), i).await.unwrap();
            let (_, peer) = listener.accept().await.unwrap();
            peers.push(peer.ip().to_string());
        }
        assert_eq!(peers, ["127.0.0.2", "127.0.0.3", "127.0.0.2", "127.0.0.3"]);
    }

    #[test]
    fn summaries_of_several_processes_add_up() {
        let part = |logins: u64, all_in: f64, p99: f64, samples: usize, p50: f64| Summary {
            logins,
            all_logged_in_s: all_in,
            latency_ms_p99: p99,
            latency_samples: samples,
            latency_ms_p50: p50,
            ..Summary::merge(&[])
        };
        let m = Summary::merge(&[part(10, 1.5, 4.0, 100, 1.0), part(20, 2.5, 3.0, 300, 2.0)]);
        assert_eq!(m.logins, 30);
        assert_eq!(m.all_logged_in_s, 2.5, "the last login of any process");
        assert_eq!(m.latency_ms_p99, 4.0, "the highest");
        assert_eq!(m.latency_samples, 400);
        assert_eq!(m.latency_ms_p50, 1.75, "weighted by samples");
    }
}
