//! The command line (contract §1), declared with clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// vgate: JT/T 808, GB/T 32960 and raw TCP vehicles onto MQTT, and commands back.
#[derive(Debug, Parser)]
#[command(name = "vgate", version, about, long_about = None, disable_help_subcommand = false)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Run(RunArgs),
    /// Simulate vehicles against a gateway (load generator), then print a summary.
    Simulate(Box<crate::simulate::SimulateArgs>),
    /// Decode wire frames (hex) into normalized event JSON, one per line.
    Decode(DecodeArgs),
    /// Print the wire frame (hex) the gateway would send for a downstream command.
    Encode(EncodeArgs),
    /// Print the default configuration file, every key documented.
    Config(ConfigArgs),
}

/// A protocol that has a wire codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WireProtocol {
    Jt808,
    Gbt32960,
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// jt808 or gbt32960.
    pub protocol: WireProtocol,
    /// Print the protocol-level message instead of normalized events.
    #[arg(long)]
    pub raw: bool,
    /// Device clock offset from UTC, e.g. +08:00 (the standards' Beijing time by default).
    #[arg(long, default_value = "+08:00")]
    pub device_tz: String,
    /// Accept frames whose checksum is wrong (some fleets' firmware gets it wrong).
    #[arg(long)]
    pub lenient_checksum: bool,
    /// Frames in hex (spaces allowed). Without any, frames are read from stdin, one per line.
    pub hex: Vec<String>,
}

#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// jt808 or gbt32960.
    pub protocol: WireProtocol,
    /// The vehicle: JT/T 808 phone number, GB/T 32960 VIN.
    #[arg(long)]
    pub vehicle: String,
    /// The command JSON (contract §4), e.g. '{"id":"c1","type":"text","params":{"text":"hi"}}'.
    #[arg(long)]
    pub command: String,
    /// Edition: 2011, 2013 or 2019 for jt808 (default 2013); 2016 or 2025 for gbt32960 (default 2016).
    #[arg(long)]
    pub edition: Option<String>,
    /// Frame serial number (JT/T 808).
    #[arg(long, default_value_t = 1)]
    pub serial: u16,
    /// The time a GB/T 32960 frame carries (default: now), RFC 3339 with its offset, e.g.
    /// 2024-01-01T08:00:00+08:00 or 2024-01-01T00:00:00Z; written in Beijing time (GMT+8)
    /// as the standard says. Fixes the output, byte for byte.
    #[arg(long, value_parser = parse_time)]
    pub time: Option<chrono::DateTime<chrono::Utc>>,
}

/// Parses `--time`: an RFC 3339 date and time with its offset.
fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| {
            format!("{s:?}: {e}; expected RFC 3339 with an offset, e.g. 2024-01-01T08:00:00+08:00")
        })
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Check this file instead of printing the default: exit 0 if valid, 2 with the key otherwise.
    #[arg(long)]
    pub check: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file (TOML); without it, the defaults and the environment.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}
