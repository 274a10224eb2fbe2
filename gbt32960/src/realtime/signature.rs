//! 2025 vehicle signature, the last item of a real-time/reissue body: 0xFF, signature type
//! BYTE (1 SM2, 2 RSA, 3 ECC), R length WORD + R, S length WORD + S. It covers the body
//! from the first time byte to the byte before the 0xFF (source: protocol notes;
//! `docs/standard/2025.md` §7.2.3). Verification needs keys from activation and is left to
//! the caller: [`super::Report::signed_bytes`] gives the covered range.

use serde::Serialize;

use super::Cursor;

/// A 2025 signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signature {
    /// 1 SM2, 2 RSA, 3 ECC.
    pub kind: u8,
    #[serde(serialize_with = "super::ser_hex")]
    pub r: Vec<u8>,
    #[serde(serialize_with = "super::ser_hex")]
    pub s: Vec<u8>,
}

impl Signature {
    /// Reads type, R and S after the 0xFF byte (already consumed).
    pub(crate) fn decode(c: &mut Cursor<'_>) -> Option<Self> {
        let kind = c.u8()?;
        let rl = c.u16()?;
        let r = c.bytes(usize::from(rl))?.to_vec();
        let sl = c.u16()?;
        let s = c.bytes(usize::from(sl))?.to_vec();
        Some(Signature { kind, r, s })
    }

    /// Bytes this signature takes on the wire, 0xFF included.
    pub fn wire_len(&self) -> usize {
        6 + self.r.len().min(usize::from(u16::MAX)) + self.s.len().min(usize::from(u16::MAX))
    }

    /// Writes 0xFF, type, R and S (each cut at 65535 bytes).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[0xFF, self.kind]);
        for part in [&self.r, &self.s] {
            let n = part.len().min(usize::from(u16::MAX));
            out.extend_from_slice(&(n as u16).to_be_bytes());
            out.extend_from_slice(part.get(..n).unwrap_or(&[]));
        }
    }
}
