//! Platform messages carrying text for the driver: 0x8300 text, 0x8301 event setting,
//! 0x8302 question, 0x8303 information menu, 0x8304 information service, 0x8400 call
//! back, 0x8401 phone book. Text is GBK on the wire.
//!
//! ```text
//! 0x8300 2013: flags BYTE | text STRING
//! 0x8300 2019: flags BYTE | text type BYTE (1 notice, 2 service) | text STRING
//! 0x8301 (2013, dropped in 2019): type BYTE | count BYTE | { id BYTE | len BYTE | text }*
//! 0x8302 (2013, dropped in 2019): flags BYTE | len BYTE | question | { id BYTE | len WORD | answer }* to the end
//! 0x8303 (2013, dropped in 2019): type BYTE | count BYTE | { info type BYTE | len WORD | name }*
//! 0x8304 (2013, dropped in 2019): info type BYTE | len WORD | content
//! 0x8400 (2013): flag BYTE (0 call, 1 listen) | phone STRING (max 20)
//! 0x8401 (2013): type BYTE | count BYTE | { flag BYTE | len BYTE | number | len BYTE | name }*
//! ```

use serde::Serialize;

use super::platform_misc::{
    invalid, put_text_u16, put_text_u8, read_text_u16, read_text_u8, u8_of,
};
use super::Reader;
use crate::{BodyError, Version};

/// 0x8300 text message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TextMessage {
    /// Flags: bit 0 emergency, 2 display, 3 TTS, 4 advertising screen (2013),
    /// 5: 0 navigation, 1 CAN fault code.
    pub flags: u8,
    /// 2019 text type: 1 notice, 2 service (absent in 2011/2013).
    pub text_type: Option<u8>,
    /// The text.
    pub text: String,
}

impl TextMessage {
    const ID: u16 = 0x8300;

    pub(crate) fn decode(body: &[u8], version: Version) -> Result<Self, BodyError> {
        let mut r = Reader::new(Self::ID, body);
        let flags = r.u8()?;
        let text_type = match version {
            Version::V2019 => Some(r.u8()?),
            Version::V2011 | Version::V2013 => None,
        };
        Ok(TextMessage {
            flags,
            text_type,
            text: codecs::text::decode(r.rest()),
        })
    }

    /// In 2019 a missing `text_type` is written as 1 (notice); before 2019 a text type
    /// cannot be written.
    pub(crate) fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), BodyError> {
        out.push(self.flags);
        match (version, self.text_type) {
            (Version::V2019, t) => out.push(t.unwrap_or(1)),
            (_, None) => {}
            (_, Some(_)) => return Err(invalid(Self::ID, "text_type", 1)),
        }
        out.extend_from_slice(&codecs::text::encode(&self.text));
        Ok(())
    }
}

/// One event of 0x8301.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventItem {
    /// Event id.
    pub id: u8,
    /// Event text (empty when deleting by id).
    pub text: String,
}

/// 0x8301 event setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventSetting {
    /// 0 delete all, 1 update, 2 append, 3 modify, 4 delete the listed events.
    pub setting_type: u8,
    /// The events.
    pub events: Vec<EventItem>,
}

impl EventSetting {
    const ID: u16 = 0x8301;

    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(Self::ID, body);
        let setting_type = r.u8()?;
        let count = usize::from(r.u8()?);
        let mut events = Vec::with_capacity(count.min(r.remaining() / 2));
        for _ in 0..count {
            let id = r.u8()?;
            events.push(EventItem {
                id,
                text: read_text_u8(&mut r)?,
            });
        }
        Ok(EventSetting {
            setting_type,
            events,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        out.push(self.setting_type);
        out.push(u8_of(Self::ID, "events", self.events.len())?);
        for e in &self.events {
            out.push(e.id);
            put_text_u8(Self::ID, "events.text", &e.text, out)?;
        }
        Ok(())
    }
}

/// One candidate answer of 0x8302.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Answer {
    /// Answer id.
    pub id: u8,
    /// Answer text.
    pub text: String,
}

/// 0x8302 question to the driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Question {
    /// Flags: bit 0 emergency, 3 TTS, 4 advertising screen.
    pub flags: u8,
    /// The question.
    pub question: String,
    /// Candidate answers (they run to the end of the body; there is no count).
    pub answers: Vec<Answer>,
}

impl Question {
    const ID: u16 = 0x8302;

    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(Self::ID, body);
        let flags = r.u8()?;
        let question = read_text_u8(&mut r)?;
        let mut answers = Vec::new();
        while r.remaining() > 0 {
            let id = r.u8()?;
            answers.push(Answer {
                id,
                text: read_text_u16(&mut r)?,
            });
        }
        Ok(Question {
            flags,
            question,
            answers,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        out.push(self.flags);
        put_text_u8(Self::ID, "question", &self.question, out)?;
        for a in &self.answers {
            out.push(a.id);
            put_text_u16(Self::ID, "answers.text", &a.text, out)?;
        }
        Ok(())
    }
}

/// One entry of the 0x8303 information menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InfoMenuItem {
    /// Information type.
    pub info_type: u8,
    /// Information name.
    pub name: String,
}

/// 0x8303 information on-demand menu setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InfoMenu {
    /// 0 delete all, 1 update, 2 append, 3 modify.
    pub setting_type: u8,
    /// Menu entries.
    pub items: Vec<InfoMenuItem>,
}

impl InfoMenu {
    const ID: u16 = 0x8303;

    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(Self::ID, body);
        let setting_type = r.u8()?;
        let count = usize::from(r.u8()?);
        let mut items = Vec::with_capacity(count.min(r.remaining() / 3));
        for _ in 0..count {
            let info_type = r.u8()?;
            items.push(InfoMenuItem {
                info_type,
                name: read_text_u16(&mut r)?,
            });
        }
        Ok(InfoMenu {
            setting_type,
            items,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        out.push(self.setting_type);
        out.push(u8_of(Self::ID, "items", self.items.len())?);
        for i in &self.items {
            out.push(i.info_type);
            put_text_u16(Self::ID, "items.name", &i.name, out)?;
        }
        Ok(())
    }
}

/// 0x8304 information service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InfoService {
    /// Information type.
    pub info_type: u8,
    /// Content.
    pub content: String,
}

impl InfoService {
    const ID: u16 = 0x8304;

    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(Self::ID, body);
        Ok(InfoService {
            info_type: r.u8()?,
            content: read_text_u16(&mut r)?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        out.push(self.info_type);
        put_text_u16(Self::ID, "content", &self.content, out)
    }
}

/// 0x8400 call back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallBack {
    /// 0 normal call, 1 listen (monitor).
    pub flag: u8,
    /// Phone number (the rest of the body).
    pub phone: String,
}

impl CallBack {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x8400, body);
        Ok(CallBack {
            flag: r.u8()?,
            phone: codecs::text::decode(r.rest()),
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.flag);
        out.extend_from_slice(&codecs::text::encode(&self.phone));
    }
}

/// One contact of 0x8401.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact {
    /// 1 incoming only, 2 outgoing only, 3 both.
    pub flag: u8,
    /// Phone number.
    pub number: String,
    /// Contact name.
    pub name: String,
}

/// 0x8401 phone book setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhoneBook {
    /// 0 delete all, 1 update (replace), 2 append, 3 modify (by name).
    pub setting_type: u8,
    /// Contacts.
    pub contacts: Vec<Contact>,
}

impl PhoneBook {
    const ID: u16 = 0x8401;

    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(Self::ID, body);
        let setting_type = r.u8()?;
        let count = usize::from(r.u8()?);
        let mut contacts = Vec::with_capacity(count.min(r.remaining() / 3));
        for _ in 0..count {
            let flag = r.u8()?;
            let number = read_text_u8(&mut r)?;
            contacts.push(Contact {
                flag,
                number,
                name: read_text_u8(&mut r)?,
            });
        }
        Ok(PhoneBook {
            setting_type,
            contacts,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        out.push(self.setting_type);
        out.push(u8_of(Self::ID, "contacts", self.contacts.len())?);
        for c in &self.contacts {
            out.push(c.flag);
            put_text_u8(Self::ID, "contacts.number", &c.number, out)?;
            put_text_u8(Self::ID, "contacts.name", &c.name, out)?;
        }
        Ok(())
    }
}
