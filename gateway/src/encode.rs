//! `vgate encode PROTOCOL --vehicle ID --command JSON [--edition E] [--time T]` (contract §1).
//!
//! Prints, one per line in hex, the wire frame(s) the gateway would send for a downstream
//! command (contract §4): the same `command::build` and frame encoders the sessions use.
//! A JT/T 808 body longer than one package prints as several subpackage frames. A GB/T 32960
//! frame carries a time: now, or `--time` (RFC 3339), so that an example reproduces.

use anyhow::anyhow;
use codecs::command::Command;

use crate::cli::{EncodeArgs, WireProtocol};
use crate::Failure;

/// Runs the subcommand.
pub fn run(args: EncodeArgs) -> Result<(), Failure> {
    // Usage errors (exit 2) before input errors (exit 1).
    if let Some(e) = args.edition.as_deref() {
        let known = match args.protocol {
            WireProtocol::Jt808 => jt808::Version::from_name(e).is_some(),
            WireProtocol::Gbt32960 => gbt32960::Edition::from_name(e).is_some(),
        };
        if !known {
            return Err(Failure::Usage(anyhow!(
                "--edition {e:?}: jt808 editions are 2011, 2013, 2019; gbt32960 editions are 2016, 2025"
            )));
        }
    }
    if args.time.is_some() && args.protocol == WireProtocol::Jt808 {
        return Err(Failure::Usage(anyhow!(
            "--time: JT/T 808 command frames carry no time (only gbt32960 ones do)"
        )));
    }
    let cmd = Command::parse(args.command.as_bytes())
        .map_err(|e| Failure::Input(anyhow!("command rejected: {e}")))?;
    codecs::vehicle_id::validate(&args.vehicle)
        .map_err(|e| Failure::Input(anyhow!("--vehicle: {e}")))?;
    let frames = match args.protocol {
        WireProtocol::Jt808 => encode_jt808(&args, &cmd)?,
        WireProtocol::Gbt32960 => encode_gbt32960(&args, &cmd)?,
    };
    for f in frames {
        println!("{}", hex::encode(f));
    }
    Ok(())
}

fn encode_jt808(args: &EncodeArgs, cmd: &Command) -> Result<Vec<Vec<u8>>, Failure> {
    let version = match args.edition.as_deref() {
        None => jt808::Version::V2013,
        Some(e) => jt808::Version::from_name(e).ok_or_else(|| {
            Failure::Usage(anyhow!(
                "--edition {e:?}: jt808 editions are 2011, 2013, 2019"
            ))
        })?,
    };
    let width = version.phone_len() * 2;
    if !args.vehicle.bytes().all(|b| b.is_ascii_digit()) || args.vehicle.len() > width {
        return Err(Failure::Input(anyhow!(
            "--vehicle {:?}: a JT/T 808 {} phone number is at most {width} digits",
            args.vehicle,
            match version {
                jt808::Version::V2019 => "2019",
                _ => "2011/2013",
            }
        )));
    }
    let msg = jt808::command::build(cmd, version)
        .map_err(|e| Failure::Input(anyhow!("command rejected: {e}")))?;
    let body = msg
        .encode_body(version)
        .map_err(|e| Failure::Input(anyhow!("command rejected: {e}")))?;
    let header = jt808::Header::to_terminal(
        msg.msg_id(),
        version,
        format!("{:0>width$}", args.vehicle),
        args.serial,
    );
    Ok(
        jt808::subpackage::split(&header, &body, jt808::subpackage::DEFAULT_SPLIT)
            .iter()
            .map(|f| f.to_wire())
            .collect(),
    )
}

fn encode_gbt32960(args: &EncodeArgs, cmd: &Command) -> Result<Vec<Vec<u8>>, Failure> {
    let edition = match args.edition.as_deref() {
        None => gbt32960::Edition::V2016,
        Some(e) => gbt32960::Edition::from_name(e).ok_or_else(|| {
            Failure::Usage(anyhow!("--edition {e:?}: gbt32960 editions are 2016, 2025"))
        })?,
    };
    if args.vehicle.len() > 17 {
        return Err(Failure::Input(anyhow!(
            "--vehicle {:?}: a VIN is at most 17 characters",
            args.vehicle
        )));
    }
    // The frame's time: `--time`, or now; in Beijing time, as the standard says.
    let at = args.time.unwrap_or_else(chrono::Utc::now);
    let time = codecs::time::LocalTime::from_utc(at, codecs::time::BEIJING_OFFSET_SECS);
    let msg = gbt32960::command::build(cmd, edition, time)
        .map_err(|e| Failure::Input(anyhow!("command rejected: {e}")))?;
    let frame = msg
        .to_frame(edition, &args.vehicle)
        .map_err(|e| Failure::Input(anyhow!("command rejected: {e}")))?;
    Ok(vec![frame.to_wire()])
}
