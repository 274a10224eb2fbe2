//! Answers: any frame whose response flag is not 0xFE (2016/2025 6.3.2 and table 4).
//!
//! The standard describes two answer bodies and field devices and platforms use both:
//! "change the flag, keep the message time, delete the rest" (2016 and 2025 6.3.2, 2025
//! B.3.3.2: the **time-only** style, e.g. beidouchangxi/rtm_con's 2025 login answer) and
//! "change the flag and the time, keep the rest" (2016 B.3.3.2, followed by EMQX: the
//! **echo** style). Both decode here: the first six bytes are the time, whatever follows is
//! kept in `rest`. A 0x80 answer carries the queried values (table B.6), read as
//! parameters. Building answers is [`crate::reply`].

use codecs::time::LocalTime;
use serde::Serialize;

use super::params::{read_params, write_params, Param};
use super::{hex_ser, id, put_time, Reader};
use crate::frame::ResponseFlag;
use crate::{BodyError, Edition};

/// An answer to a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Response {
    /// The command answered.
    pub command: u8,
    /// The answer's flag.
    pub flag: ResponseFlag,
    /// The time of the answer (None when the body is shorter than a time: heartbeat
    /// answers with an empty body).
    pub time: Option<LocalTime>,
    /// For a 0x80 answer: the parameter values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<Vec<Param>>,
    /// Bytes after the time (echo style), or the whole body when shorter than a time.
    #[serde(serialize_with = "hex_ser")]
    pub rest: Vec<u8>,
}

impl Response {
    pub(crate) fn decode(
        command: u8,
        flag: ResponseFlag,
        data: &[u8],
        edition: Edition,
    ) -> Result<Response, BodyError> {
        if data.len() < 6 {
            return Ok(Response {
                command,
                flag,
                time: None,
                params: None,
                rest: data.to_vec(),
            });
        }
        let mut r = Reader::new(data, command);
        let time = r.time()?;
        let rest = r.rest();
        if command == id::QUERY_PARAMS && !rest.is_empty() {
            let mut pr = Reader::new(rest, command);
            let parsed = pr
                .u8()
                .and_then(|n| read_params(&mut pr, n, edition, command))
                .and_then(|p| pr.finish().map(|_| p));
            if let Ok(params) = parsed {
                return Ok(Response {
                    command,
                    flag,
                    time: Some(time),
                    params: Some(params),
                    rest: Vec::new(),
                });
            }
        }
        Ok(Response {
            command,
            flag,
            time: Some(time),
            params: None,
            rest: rest.to_vec(),
        })
    }

    pub(crate) fn encode(&self, edition: Edition, out: &mut Vec<u8>) -> Result<(), BodyError> {
        if let Some(t) = &self.time {
            put_time(out, t);
        }
        if let Some(params) = &self.params {
            write_params(out, params, edition, self.command)?;
        }
        out.extend_from_slice(&self.rest);
        Ok(())
    }
}

/// Which answer body the gateway sends (see the module docs); both are accepted inbound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyStyle {
    /// Keep the request's time, drop the rest (2016/2025 6.3.2, 2025 B.3.3.2). Default.
    #[default]
    TimeOnly,
    /// Put the platform's time in place of the request's, keep the rest (2016 B.3.3.2, EMQX).
    Echo,
}

/// Builds the answer to `frame`: same edition, command and identifier, flag `flag`,
/// plaintext. Time-only style keeps the request's time; echo style puts `now_beijing`
/// (the platform's current Beijing time) first and keeps the rest of the body. A request
/// without a time (0x07 heartbeat, 0x08 time calibration, whose answer exists to carry the
/// platform's time) or with an encrypted body is answered with `now_beijing` alone.
pub fn reply(
    frame: &crate::Frame,
    flag: ResponseFlag,
    now_beijing: LocalTime,
    style: ReplyStyle,
) -> crate::Frame {
    let plain = frame.encryption == crate::Encryption::None;
    let has_time = plain
        && frame.data.len() >= 6
        && frame.command != id::HEARTBEAT
        && frame.command != id::TIME_CALIBRATION;
    let mut data = Vec::with_capacity(frame.data.len().max(6));
    match (style, has_time) {
        (ReplyStyle::TimeOnly, true) => data.extend_from_slice(frame.data.get(..6).unwrap_or(&[])),
        (ReplyStyle::Echo, true) => {
            put_time(&mut data, &now_beijing);
            data.extend_from_slice(frame.data.get(6..).unwrap_or(&[]));
        }
        (_, false) => put_time(&mut data, &now_beijing),
    }
    crate::Frame {
        edition: frame.edition,
        command: frame.command,
        response: flag.to_byte(),
        vin: frame.vin.clone(),
        encryption: crate::Encryption::None,
        data: bytes::Bytes::from(data),
    }
}
