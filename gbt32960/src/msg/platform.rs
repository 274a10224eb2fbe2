//! 0x05 platform login (platform-to-platform forwarding): time, seq, user name 12,
//! password 20, encryption rule (2016 7.4; 2025 7.4 table 29). Its logout (0x06) is in
//! [`super::logout`].

use codecs::time::LocalTime;
use serde::Serialize;

use super::{id, put_fixed, put_time, Reader};
use crate::BodyError;

const USER_LEN: usize = 12;
const PASSWORD_LEN: usize = 20;

/// A platform login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformLogin {
    /// Login time.
    pub time: LocalTime,
    /// Login sequence number.
    pub seq: u16,
    /// User name (12 bytes on the wire).
    pub user: String,
    /// Password (20 bytes on the wire).
    pub password: String,
    /// Encryption rule byte (same codes as the frame's encryption byte).
    pub encryption_rule: u8,
}

impl PlatformLogin {
    pub(crate) fn decode(data: &[u8]) -> Result<PlatformLogin, BodyError> {
        let mut r = Reader::new(data, id::PLATFORM_LOGIN);
        let out = PlatformLogin {
            time: r.time()?,
            seq: r.u16()?,
            user: r.text(USER_LEN)?,
            password: r.text(PASSWORD_LEN)?,
            encryption_rule: r.u8()?,
        };
        r.finish()?;
        Ok(out)
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        let c = id::PLATFORM_LOGIN;
        put_time(out, &self.time);
        out.extend_from_slice(&self.seq.to_be_bytes());
        put_fixed(out, &self.user, USER_LEN, 0, c, "user")?;
        put_fixed(out, &self.password, PASSWORD_LEN, 0, c, "password")?;
        out.push(self.encryption_rule);
        Ok(())
    }
}
