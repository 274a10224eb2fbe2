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
//! It is the load generator of the benchmarks (`scripts/bench.sh`) and a tool on its own.

pub mod gbt32960;
pub mod jt808;
mod stats;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use tokio::net::{TcpSocket, TcpStream};

pub use stats::{Stats, Summary};

use crate::Failure;

/// The protocol to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SimProtocol {
    Jt808,
    Gbt32960,
}

/// `vgate simulate` arguments.
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// jt808 or gbt32960.
    #[arg(long)]
    pub protocol: SimProtocol,
    /// Number of vehicles (one TCP connection each).
    #[arg(long, default_value_t = 10)]
    pub vehicles: usize,
    /// Reports per second per vehicle (0 = log in and stay idle, heartbeats only).
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// How long to drive, e.g. 30s, 5m (after every vehicle has connected).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// The gateway's listener, HOST:PORT (default 127.0.0.1:6808 or 127.0.0.1:32960).
    #[arg(long)]
    pub target: Option<SocketAddr>,
    /// Local source addresses to spread connections over: a list `127.0.0.2,127.0.0.3` or a
    /// range `127.0.0.2-127.0.0.20`.
    #[arg(long, value_parser = parse_addrs)]
    pub local_addrs: Option<LocalAddrs>,
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
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
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
}

/// Runs the subcommand.
pub fn run(args: SimulateArgs) -> Result<(), Failure> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Usage(anyhow!("runtime: {e}")))?;
    let summary = rt.block_on(simulate(args.clone()))?;
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
    let target = args.target.unwrap_or_else(|| match args.protocol {
        SimProtocol::Jt808 => SocketAddr::from(([127, 0, 0, 1], 6808)),
        SimProtocol::Gbt32960 => SocketAddr::from(([127, 0, 0, 1], 32960)),
    });
    if !(args.rate.is_finite() && args.rate >= 0.0) {
        return Err(Failure::Usage(anyhow!("--rate must be a number >= 0")));
    }
    let jt_version = match (args.protocol, args.edition.as_deref()) {
        (SimProtocol::Jt808, None) => Some(::jt808::Version::V2013),
        (SimProtocol::Jt808, Some(e)) => Some(
            ::jt808::Version::from_name(e)
                .ok_or_else(|| Failure::Usage(anyhow!("--edition {e}: 2011, 2013 or 2019")))?,
        ),
        _ => None,
    };
    let gb_edition = match (args.protocol, args.edition.as_deref()) {
        (SimProtocol::Gbt32960, None) => Some(::gbt32960::Edition::V2016),
        (SimProtocol::Gbt32960, Some(e)) => Some(
            ::gbt32960::Edition::from_name(e)
                .ok_or_else(|| Failure::Usage(anyhow!("--edition {e}: 2016 or 2025")))?,
        ),
        _ => None,
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
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.vehicles {
        if args.connect_rate > 0.0 {
            let at = started + Duration::from_secs_f64(i as f64 / args.connect_rate);
            tokio::time::sleep_until(at.into()).await;
        }
        let plan = VehiclePlan {
            index: i,
            target,
            local: local.clone(),
            rate: args.rate,
            drive_until,
            heartbeat: Duration::from_secs(args.heartbeat_s.max(1)),
            stats: stats.clone(),
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
    Ok(stats.summary(started.elapsed(), args.vehicles))
}

/// A 17-character simulated VIN ending with the vehicle number.
pub fn sim_vin(n: u64) -> String {
    format!("VGSIM{:012}", n % 1_000_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
