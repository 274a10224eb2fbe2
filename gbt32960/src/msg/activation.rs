//! 2025 0x09 activation and 0x0A activation response (GB/T 32960.3-2025 B.3.5.5 table B.3,
//! B.3.5.6 table B.4).
//!
//! Activation: time, chip id 16 (space padded), public key (WORD length + bytes), VIN 17,
//! then a signature laid out as table 8 (type, R length WORD + R, S length WORD + S) with no
//! 0xFF marker before it (as in beidouchangxi/rtm_con's activation sample). The response:
//! status (1 ok, 2 failed) and info (0 ok, 1 chip already activated, 2 VIN duplicate).

use codecs::time::LocalTime;
use serde::Serialize;

use super::{hex_ser, id, put_fixed, put_time, Reader};
use crate::BodyError;

const CHIP_ID_LEN: usize = 16;
const VIN_LEN: usize = 17;

/// A vehicle signature (2025 table 8): 1 SM2, 2 RSA, 3 ECC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signature {
    /// Signature algorithm.
    pub algorithm: u8,
    /// R value.
    #[serde(serialize_with = "hex_ser")]
    pub r: Vec<u8>,
    /// S value (empty for RSA).
    #[serde(serialize_with = "hex_ser")]
    pub s: Vec<u8>,
}

impl Signature {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Signature, BodyError> {
        let algorithm = r.u8()?;
        let rl = r.u16()?;
        let rv = r.bytes(usize::from(rl))?.to_vec();
        let sl = r.u16()?;
        let sv = r.bytes(usize::from(sl))?.to_vec();
        Ok(Signature {
            algorithm,
            r: rv,
            s: sv,
        })
    }

    pub(crate) fn write(&self, command: u8, out: &mut Vec<u8>) -> Result<(), BodyError> {
        out.push(self.algorithm);
        for (field, v) in [("signature r", &self.r), ("signature s", &self.s)] {
            let len = u16::try_from(v.len()).map_err(|_| BodyError::OutOfRange {
                command,
                field,
                value: v.len(),
                max: usize::from(u16::MAX),
            })?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(v);
        }
        Ok(())
    }
}

/// A 2025 activation request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Activation {
    /// Collection time.
    pub time: LocalTime,
    /// Security chip id (16 characters, space padded on the wire).
    pub chip_id: String,
    /// The chip's public key.
    #[serde(serialize_with = "hex_ser")]
    pub public_key: Vec<u8>,
    /// The VIN carried in the body.
    pub vin: String,
    /// Signature over the preceding fields.
    pub signature: Signature,
}

impl Activation {
    pub(crate) fn decode(data: &[u8]) -> Result<Activation, BodyError> {
        let mut r = Reader::new(data, id::ACTIVATION);
        let time = r.time()?;
        let chip_id = r.text(CHIP_ID_LEN)?;
        let klen = r.u16()?;
        let public_key = r.bytes(usize::from(klen))?.to_vec();
        let vin = r.text(VIN_LEN)?;
        let signature = Signature::read(&mut r)?;
        r.finish()?;
        Ok(Activation {
            time,
            chip_id,
            public_key,
            vin,
            signature,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        let c = id::ACTIVATION;
        put_time(out, &self.time);
        put_fixed(out, &self.chip_id, CHIP_ID_LEN, b' ', c, "chip id")?;
        let klen = u16::try_from(self.public_key.len()).map_err(|_| BodyError::OutOfRange {
            command: c,
            field: "public key length",
            value: self.public_key.len(),
            max: usize::from(u16::MAX),
        })?;
        out.extend_from_slice(&klen.to_be_bytes());
        out.extend_from_slice(&self.public_key);
        put_fixed(out, &self.vin, VIN_LEN, 0, c, "vin")?;
        self.signature.write(c, out)
    }
}

/// A 2025 activation response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ActivationResponse {
    /// 0x01 activated, 0x02 failed.
    pub status: u8,
    /// 0x00 ok, 0x01 chip already activated, 0x02 VIN duplicate.
    pub info: u8,
}

impl ActivationResponse {
    pub(crate) fn decode(data: &[u8]) -> Result<ActivationResponse, BodyError> {
        let mut r = Reader::new(data, id::ACTIVATION_RESPONSE);
        let out = ActivationResponse {
            status: r.u8()?,
            info: r.u8()?,
        };
        r.finish()?;
        Ok(out)
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.status, self.info]);
    }
}
