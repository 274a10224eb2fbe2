//! `vgate decode PROTOCOL [--raw] [HEX ...]` (contract §1).
//!
//! Each input (an argument, or a line of stdin) is one wire frame in hex, spaces allowed.
//! Every frame goes through the same frame codec the listeners use, and JT/T 808 frames
//! through one subpackage reassembler, so a subpackaged message given as its packages
//! decodes as one message. Each decoded message prints as normalized event JSON lines
//! (or, with `--raw`, the protocol-level message). A frame that does not decode prints one
//! line on stderr naming the frame and the reason; the others are still printed, and the
//! exit status is then 1.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use bytes::BytesMut;
use codecs::time::parse_utc_offset;
use codecs::EventContext;
use tokio_util::codec::Decoder;

use crate::cli::{DecodeArgs, WireProtocol};
use crate::Failure;

/// Runs the subcommand.
pub fn run(args: DecodeArgs) -> Result<(), Failure> {
    let offset = parse_utc_offset(&args.device_tz).ok_or_else(|| {
        Failure::Usage(anyhow!(
            "--device-tz {:?}: expected +HH:MM or -HH:MM",
            args.device_tz
        ))
    })?;
    let mut ctx = EventContext::now(crate::node::default_node_id());
    ctx.device_utc_offset_secs = offset;

    let inputs: Vec<String> = if args.hex.is_empty() {
        std::io::stdin()
            .lock()
            .lines()
            .collect::<Result<_, _>>()
            .map_err(|e| Failure::Input(anyhow!("reading stdin: {e}")))?
    } else {
        args.hex.clone()
    };

    let mut decoder: Box<dyn FrameDecoder> = match args.protocol {
        WireProtocol::Jt808 => Box::new(Jt808Decoder::new(args.lenient_checksum)),
        WireProtocol::Gbt32960 => Box::new(Gbt32960Decoder::new()),
    };

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failures = 0usize;
    let mut frames = 0usize;
    for line in &inputs {
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        frames += 1;
        let label = format!("frame {frames} ({})", abbreviate(text));
        let bytes = match parse_hex(text) {
            Ok(b) => b,
            Err(reason) => {
                eprintln!("{label}: {reason}");
                failures += 1;
                continue;
            }
        };
        ctx.received_at = chrono::Utc::now();
        for item in decoder.decode(&bytes, &ctx, args.raw) {
            match item {
                Ok(json) => {
                    let _ = writeln!(out, "{json}");
                }
                Err(reason) => {
                    eprintln!("{label}: {reason}");
                    failures += 1;
                }
            }
        }
    }
    for reason in decoder.finish() {
        eprintln!("{reason}");
        failures += 1;
    }
    let _ = out.flush();
    if failures > 0 {
        return Err(Failure::Input(anyhow!(
            "{failures} frame(s) did not decode"
        )));
    }
    Ok(())
}

/// What decoding an input gives: per frame, JSON lines or an error reason.
type Outputs = Vec<Result<String, String>>;

/// One protocol's path from wire bytes to output lines.
trait FrameDecoder {
    /// Decodes the frames in `bytes`; each item is a JSON line or an error reason.
    fn decode(&mut self, bytes: &[u8], ctx: &EventContext, raw: bool) -> Outputs;
    /// Reasons for what is left incomplete at the end of input.
    fn finish(&mut self) -> Vec<String>;
}

struct Jt808Decoder {
    codec: jt808::Codec,
    reassembler: jt808::subpackage::Reassembler,
}

impl Jt808Decoder {
    fn new(lenient: bool) -> Self {
        let cfg = jt808::CodecConfig {
            checksum: if lenient {
                jt808::ChecksumPolicy::Lenient
            } else {
                jt808::ChecksumPolicy::Strict
            },
            ..Default::default()
        };
        Jt808Decoder {
            codec: jt808::Codec::new(cfg),
            reassembler: jt808::subpackage::Reassembler::new(Default::default()),
        }
    }

    fn message(&mut self, frame: jt808::Frame, ctx: &EventContext, raw: bool, out: &mut Outputs) {
        if frame.header.encryption != jt808::Encryption::None {
            out.push(Err(format!(
                "message 0x{:04x}: body is encrypted ({:?}); not decoded",
                frame.header.msg_id, frame.header.encryption
            )));
            return;
        }
        match jt808::Message::decode(&frame.header, &frame.body) {
            Ok(msg) => {
                if raw {
                    out.push(Ok(jt808::raw_json(&frame.header, &msg).to_string()));
                } else {
                    for ev in jt808::normalize(&frame.header, &msg, ctx) {
                        out.push(Ok(ev.to_json()));
                    }
                }
            }
            Err(e) => out.push(Err(e.to_string())),
        }
    }
}

impl FrameDecoder for Jt808Decoder {
    fn decode(&mut self, bytes: &[u8], ctx: &EventContext, raw: bool) -> Outputs {
        let mut out = Vec::new();
        for frame in frames(&mut self.codec, bytes, |bad| bad.error.to_string()) {
            match frame {
                Ok(frame) if frame.header.package.is_some() => {
                    match self.reassembler.push(frame, Instant::now()) {
                        Ok(Some(whole)) => self.message(whole.frame, ctx, raw, &mut out),
                        Ok(None) => {}
                        Err(e) => out.push(Err(e.to_string())),
                    }
                }
                Ok(frame) => self.message(frame, ctx, raw, &mut out),
                Err(e) => out.push(Err(e)),
            }
        }
        if out.is_empty() && !self.reassembler.is_empty() {
            // A package was stored: nothing to print yet, and nothing wrong.
        } else if out.is_empty() && bytes.iter().all(|b| *b != 0x7e) {
            out.push(Err("no 0x7e-delimited frame in the input".to_owned()));
        }
        out
    }

    fn finish(&mut self) -> Vec<String> {
        let later = Instant::now() + Duration::from_secs(24 * 3600);
        self.reassembler
            .poll(later)
            .into_iter()
            .map(|ev| format!("incomplete subpackaged message: {ev:?}"))
            .collect()
    }
}

struct Gbt32960Decoder {
    codec: gbt32960::Codec,
}

impl Gbt32960Decoder {
    fn new() -> Self {
        Gbt32960Decoder {
            codec: gbt32960::Codec::default(),
        }
    }
}

impl FrameDecoder for Gbt32960Decoder {
    fn decode(&mut self, bytes: &[u8], ctx: &EventContext, raw: bool) -> Outputs {
        let mut out = Vec::new();
        for frame in frames(&mut self.codec, bytes, |bad| bad.error.to_string()) {
            let msg = frame.and_then(|frame| {
                gbt32960::Message::decode(&frame)
                    .map(|msg| (frame, msg))
                    .map_err(|e| e.to_string())
            });
            match msg {
                Ok((frame, msg)) if raw => {
                    out.push(Ok(gbt32960::raw_json(&frame, &msg).to_string()));
                }
                Ok((frame, msg)) => {
                    for ev in gbt32960::normalize_message(&frame, &msg, ctx) {
                        out.push(Ok(ev.to_json()));
                    }
                }
                Err(e) => out.push(Err(e)),
            }
        }
        if out.is_empty() {
            out.push(Err("no complete ## or $$ frame in the input".to_owned()));
        }
        out
    }

    fn finish(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// Cuts `bytes` into frames with a protocol's codec (the end of input as the end of the
/// stream): each a frame or why it is not one; a framing error ends the input.
fn frames<D, F, B>(codec: &mut D, bytes: &[u8], bad: impl Fn(B) -> String) -> Vec<Result<F, String>>
where
    D: Decoder<Item = Result<F, B>>,
    D::Error: std::fmt::Display,
{
    let mut out = Vec::new();
    let mut buf = BytesMut::from(bytes);
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(item)) => out.push(item.map_err(&bad)),
            Ok(None) => break,
            Err(e) => {
                out.push(Err(e.to_string()));
                break;
            }
        }
    }
    out
}

/// Parses hex with optional spaces, tabs, `:` separators and an optional `0x` prefix.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let clean: String = t
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    // hex reports a non-ASCII input byte by byte ('è' for the first byte of '车'): name
    // the character as typed instead.
    if let Some((at, c)) = clean
        .chars()
        .enumerate()
        .find(|(_, c)| !c.is_ascii_hexdigit())
    {
        return Err(format!(
            "invalid hex: invalid character {c:?} at position {at}"
        ));
    }
    hex::decode(&clean).map_err(|e| format!("invalid hex: {e}"))
}

/// The first 24 and last 16 characters of a long input, for error lines.
///
/// Counts characters, not bytes: the input is whatever the user typed, hex or not
/// (a byte slice of a Chinese argument would cut a character and panic).
fn abbreviate(text: &str) -> String {
    let clean: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    if clean.len() <= 48 {
        clean.into_iter().collect()
    } else {
        let head: String = clean.iter().take(24).collect();
        let tail: String = clean.iter().skip(clean.len() - 16).collect();
        format!("{head}...{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_non_ascii_input_is_abbreviated_by_characters() {
        let text = "车".repeat(200);
        assert_eq!(
            abbreviate(&text),
            format!("{}...{}", "车".repeat(24), "车".repeat(16))
        );
        assert_eq!(abbreviate("7e 00 7e"), "7e007e");
        let hex = "ab".repeat(40);
        assert_eq!(abbreviate(&hex), format!("{}...{}", &hex[..24], &hex[64..]));
    }

    #[test]
    fn hex_with_spaces_and_prefix_parses() {
        assert_eq!(parse_hex("0x7e 00 01 7E"), Ok(vec![0x7e, 0, 1, 0x7e]));
        assert!(parse_hex("7g").is_err());
        assert_eq!(
            parse_hex("7e 车"),
            Err("invalid hex: invalid character '车' at position 2".to_owned())
        );
    }
}
