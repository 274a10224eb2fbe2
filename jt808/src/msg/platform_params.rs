//! Platform messages about terminal parameters, control and upgrade: 0x8103 set
//! parameters, 0x8105 terminal control, 0x8106 query given parameters, 0x8108 upgrade
//! package (0x8104 and 0x8107 have empty bodies, see [`Message`](super::Message)).
//!
//! ```text
//! 0x8103 (2013): count BYTE | { id DWORD | len BYTE | value BYTE[len] }*count
//!                (values typed by the parameter table, `super::params`)
//! 0x8105 (2013): command word BYTE | parameters STRING (';'-separated)
//! 0x8106 (2013): count BYTE | ids DWORD[count]
//! 0x8108 (2013): type BYTE | maker id BYTE[5] (2019: BYTE[11]) | version len BYTE
//!                | version STRING | package len DWORD | package BYTE[len]
//! ```

use serde::Serialize;

use super::params::{read_list, serialize_params, write_list, Param};
use super::platform_misc::{invalid, put_text_u8, read_text_u8, u32_of, u8_of};
use super::{as_hex, Reader};
use crate::{BodyError, Version};

/// 0x8103 set terminal parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetParams {
    /// The parameters, in wire order, typed by the parameter table (JSON: an object keyed
    /// by parameter name or `"0xNNNN"`).
    #[serde(serialize_with = "serialize_params")]
    pub params: Vec<Param>,
}

impl SetParams {
    const ID: u16 = 0x8103;

    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(Self::ID, body);
        let count = usize::from(r.u8()?);
        Ok(SetParams {
            params: read_list(&mut r, count)?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        write_list(&self.params, Self::ID, out)
    }
}

/// 0x8105 terminal control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TerminalControl {
    /// Command word: 1 wireless upgrade, 2 connect to a server, 3 power off, 4 reset,
    /// 5 factory reset, 6 close data link, 7 close all wireless links (vendors use 0xF0+).
    pub command: u8,
    /// The parameters, `;`-separated as on the wire (empty for most commands).
    pub args: String,
}

impl TerminalControl {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x8105, body);
        Ok(TerminalControl {
            command: r.u8()?,
            args: codecs::text::decode(r.rest()),
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.command);
        out.extend_from_slice(&codecs::text::encode(&self.args));
    }
}

/// 0x8106 query the given terminal parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryParams {
    /// Parameter ids (at most 255).
    pub ids: Vec<u32>,
}

impl QueryParams {
    const ID: u16 = 0x8106;

    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(Self::ID, body);
        let count = usize::from(r.u8()?);
        let mut ids = Vec::with_capacity(count.min(r.remaining() / 4));
        for _ in 0..count {
            ids.push(r.u32()?);
        }
        Ok(QueryParams { ids })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        out.push(u8_of(Self::ID, "ids", self.ids.len())?);
        for id in &self.ids {
            out.extend_from_slice(&id.to_be_bytes());
        }
        Ok(())
    }
}

/// 0x8108 terminal upgrade package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpgradePackage {
    /// Upgrade type: 0 terminal, 12 road transport permit IC card reader, 52 GNSS module.
    pub upgrade_type: u8,
    /// Maker id, BYTE[5] (2019: BYTE[11]), kept as bytes (often NUL-padded).
    #[serde(serialize_with = "as_hex")]
    pub maker_id: Vec<u8>,
    /// Firmware version.
    pub version: String,
    /// The upgrade package.
    #[serde(serialize_with = "as_hex")]
    pub package: Vec<u8>,
}

impl UpgradePackage {
    const ID: u16 = 0x8108;

    fn maker_len(version: Version) -> usize {
        match version {
            Version::V2019 => 11,
            Version::V2011 | Version::V2013 => 5,
        }
    }

    pub(crate) fn decode(body: &[u8], version: Version) -> Result<Self, BodyError> {
        let mut r = Reader::new(Self::ID, body);
        let upgrade_type = r.u8()?;
        let maker_id = r.take(Self::maker_len(version))?.to_vec();
        let ver = read_text_u8(&mut r)?;
        let n = r.u32()?;
        let n = usize::try_from(n).map_err(|_| invalid(Self::ID, "package", usize::MAX))?;
        Ok(UpgradePackage {
            upgrade_type,
            maker_id,
            version: ver,
            package: r.take(n)?.to_vec(),
        })
    }

    pub(crate) fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), BodyError> {
        self.encode_head(version, self.package.len(), out)?;
        out.extend_from_slice(&self.package);
        Ok(())
    }

    /// Everything of the body before the package bytes, for a package of `package_len`
    /// bytes (`self.package` is not read): what [`crate::ota::Push`] sends ahead of a
    /// package it does not copy.
    pub fn encode_head(
        &self,
        version: Version,
        package_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), BodyError> {
        if self.maker_id.len() != Self::maker_len(version) {
            return Err(invalid(Self::ID, "maker_id", self.maker_id.len()));
        }
        out.push(self.upgrade_type);
        out.extend_from_slice(&self.maker_id);
        put_text_u8(Self::ID, "version", &self.version, out)?;
        out.extend_from_slice(&u32_of(Self::ID, "package", package_len)?.to_be_bytes());
        Ok(())
    }

    /// The maker id field's width in `version`: 5 bytes, 11 in 2019.
    pub fn maker_id_len(version: Version) -> usize {
        Self::maker_len(version)
    }
}
