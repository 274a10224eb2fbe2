//! 0x0200 location report: the basic information and the additional-item list.
//!
//! Layout (JT/T 808-2013 §8.18 table 23, unchanged in 2019):
//!
//! ```text
//! alarm DWORD | status DWORD | lat DWORD (1e-6 deg) | lon DWORD (1e-6 deg) | altitude WORD (m)
//! | speed WORD (1/10 km/h) | heading WORD (deg) | time BCD[6] YYMMDDhhmmss (GMT+8)
//! | items: id BYTE | len BYTE | value BYTE[len] ...
//! ```
//!
//! Items are kept as raw TLVs here (typed in `normalize`), copied as one run of bytes
//! (inline up to [`Items::INLINE`] bytes: no allocation for a typical report); a vendor TLV
//! whose length runs past the body is kept as `tail`, not an error for the whole message.

use std::fmt;

use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};

use super::{as_hex, Reader};
use crate::BodyError;

/// One additional item (JT/T 808-2013 table 27), owned: what [`Items::push`] takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocationItem {
    /// Item id (0x01 mileage, 0x02 fuel, 0x03 recorder speed, 0x30 signal, 0x31 satellites...).
    pub id: u8,
    /// Item value bytes.
    #[serde(serialize_with = "as_hex")]
    pub value: Vec<u8>,
}

/// One additional item, borrowed from its [`Items`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ItemRef<'a> {
    /// Item id.
    pub id: u8,
    /// Item value bytes.
    #[serde(serialize_with = "as_hex")]
    pub value: &'a [u8],
}

/// The additional items of a report in wire order: their `id BYTE | len BYTE | value`
/// runs, stored as the bytes they are on the wire, inline up to [`Items::INLINE`] bytes
/// (a typical report's items: decoding one allocates nothing), on the heap beyond.
///
/// Serializes as a list of `{"id": n, "value": "hex"}`, as a `Vec<LocationItem>` does.
#[derive(Clone)]
pub struct Items(Raw);

#[derive(Clone)]
enum Raw {
    Inline { len: u8, buf: [u8; Items::INLINE] },
    Heap(Vec<u8>),
}

impl Default for Items {
    fn default() -> Self {
        Items::new()
    }
}

impl Items {
    /// Item bytes kept without an allocation.
    pub const INLINE: usize = 54;

    /// No items.
    pub const fn new() -> Items {
        Items(Raw::Inline {
            len: 0,
            buf: [0; Items::INLINE],
        })
    }

    /// Items from their wire bytes, which must be whole `id | len | value` runs (what
    /// [`LocationReport::decode`] found).
    fn from_wire(b: &[u8]) -> Items {
        let mut buf = [0; Items::INLINE];
        match (buf.get_mut(..b.len()), u8::try_from(b.len())) {
            (Some(dst), Ok(len)) => {
                dst.copy_from_slice(b);
                Items(Raw::Inline { len, buf })
            }
            _ => Items(Raw::Heap(b.to_vec())),
        }
    }

    /// The items' wire bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Raw::Inline { len, buf } => buf.get(..usize::from(*len)).unwrap_or(buf),
            Raw::Heap(v) => v,
        }
    }

    /// Appends an item; a value longer than 255 bytes is cut to 255 (the length is a BYTE).
    pub fn push_raw(&mut self, id: u8, value: &[u8]) {
        let value = value.get(..255).unwrap_or(value);
        let add = [id, value.len() as u8];
        let need = self.as_bytes().len() + 2 + value.len();
        match &mut self.0 {
            Raw::Inline { len, buf } if need <= Items::INLINE => {
                let start = usize::from(*len);
                if let Some(dst) = buf.get_mut(start..need) {
                    let (head, rest) = dst.split_at_mut(2);
                    head.copy_from_slice(&add);
                    rest.copy_from_slice(value);
                    *len = need as u8;
                }
            }
            Raw::Inline { len, buf } => {
                let mut v = Vec::with_capacity(need);
                v.extend_from_slice(buf.get(..usize::from(*len)).unwrap_or(&[]));
                v.extend_from_slice(&add);
                v.extend_from_slice(value);
                self.0 = Raw::Heap(v);
            }
            Raw::Heap(v) => {
                v.extend_from_slice(&add);
                v.extend_from_slice(value);
            }
        }
    }

    /// Appends an item (cut to 255 bytes, see [`Items::push_raw`]).
    pub fn push(&mut self, item: LocationItem) {
        self.push_raw(item.id, &item.value);
    }

    /// The items in wire order.
    pub fn iter(&self) -> ItemsIter<'_> {
        ItemsIter(self.as_bytes())
    }

    /// How many items there are.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }
}

/// The items of an [`Items`], in wire order.
#[derive(Debug, Clone)]
pub struct ItemsIter<'a>(&'a [u8]);

impl<'a> Iterator for ItemsIter<'a> {
    type Item = ItemRef<'a>;

    fn next(&mut self) -> Option<ItemRef<'a>> {
        let (&id, rest) = self.0.split_first()?;
        let (&len, rest) = rest.split_first()?;
        let (value, rest) = rest.split_at_checked(usize::from(len))?;
        self.0 = rest;
        Some(ItemRef { id, value })
    }
}

impl<'a> IntoIterator for &'a Items {
    type Item = ItemRef<'a>;
    type IntoIter = ItemsIter<'a>;

    fn into_iter(self) -> ItemsIter<'a> {
        self.iter()
    }
}

impl From<Vec<LocationItem>> for Items {
    fn from(v: Vec<LocationItem>) -> Items {
        v.into_iter().collect()
    }
}

impl FromIterator<LocationItem> for Items {
    fn from_iter<I: IntoIterator<Item = LocationItem>>(iter: I) -> Items {
        let mut items = Items::new();
        for it in iter {
            items.push(it);
        }
        items
    }
}

impl PartialEq for Items {
    fn eq(&self, other: &Items) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Items {}

impl fmt::Debug for Items {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Items {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for it in self {
            seq.serialize_element(&it)?;
        }
        seq.end()
    }
}

/// 0x0200 (also the body of 0x0201 after its serial, and of each 0x0704 item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocationReport {
    /// Alarm flag bits (table 24).
    pub alarm: u32,
    /// Status bits (table 25).
    pub status: u32,
    /// Latitude in 1e-6 degrees, unsigned (south is status bit 2).
    pub latitude: u32,
    /// Longitude in 1e-6 degrees, unsigned (west is status bit 3).
    pub longitude: u32,
    /// Altitude in metres.
    pub altitude: u16,
    /// Speed in 1/10 km/h.
    pub speed: u16,
    /// Heading in degrees, 0-359, north 0, clockwise.
    pub heading: u16,
    /// The BCD time bytes (their hex is the digits `YYMMDDhhmmss`).
    #[serde(serialize_with = "as_hex")]
    pub time: [u8; 6],
    /// Additional items in wire order.
    pub items: Items,
    /// Bytes after the last whole item (a TLV whose length runs past the body).
    #[serde(serialize_with = "as_hex")]
    pub tail: Vec<u8>,
}

impl LocationReport {
    /// Decodes a location body (28 bytes of basic information then items).
    pub fn decode(msg_id: u16, body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(msg_id, body);
        let alarm = r.u32()?;
        let status = r.u32()?;
        let latitude = r.u32()?;
        let longitude = r.u32()?;
        let altitude = r.u16()?;
        let speed = r.u16()?;
        let heading = r.u16()?;
        let mut time = [0u8; 6];
        time.copy_from_slice(r.take(6)?);
        // Whole items up to `end`; bytes after the last whole item are the tail.
        let start = r.pos;
        let mut end = start;
        let mut tail = Vec::new();
        while r.remaining() > 0 {
            let head = (r.u8(), r.u8());
            let whole = match head {
                (Ok(_), Ok(len)) => r.take(usize::from(len)).is_ok(),
                _ => false,
            };
            if !whole {
                tail = body.get(end..).unwrap_or(&[]).to_vec();
                break;
            }
            end = r.pos;
        }
        let items = Items::from_wire(body.get(start..end).unwrap_or(&[]));
        Ok(LocationReport {
            alarm,
            status,
            latitude,
            longitude,
            altitude,
            speed,
            heading,
            time,
            items,
            tail,
        })
    }

    /// Appends the body. Items longer than 255 bytes are cut to 255 (the length is a BYTE).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.alarm.to_be_bytes());
        out.extend_from_slice(&self.status.to_be_bytes());
        out.extend_from_slice(&self.latitude.to_be_bytes());
        out.extend_from_slice(&self.longitude.to_be_bytes());
        out.extend_from_slice(&self.altitude.to_be_bytes());
        out.extend_from_slice(&self.speed.to_be_bytes());
        out.extend_from_slice(&self.heading.to_be_bytes());
        out.extend_from_slice(&self.time);
        // Items are whole runs of at most 255 bytes each (`Items::push` cuts them).
        out.extend_from_slice(self.items.as_bytes());
        out.extend_from_slice(&self.tail);
    }

    /// The item with `id`, if present.
    pub fn item(&self, id: u8) -> Option<&[u8]> {
        self.items.iter().find(|i| i.id == id).map(|i| i.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_spill_to_the_heap_past_the_inline_size_and_read_back_the_same() {
        let mut pushed = Items::new();
        let mut wire = Vec::new();
        for id in 0..40u8 {
            let value = vec![id; usize::from(id % 5)];
            wire.extend_from_slice(&[id, value.len() as u8]);
            wire.extend_from_slice(&value);
            pushed.push(LocationItem { id, value });
        }
        assert!(wire.len() > Items::INLINE);
        let decoded = Items::from_wire(&wire);
        assert_eq!(pushed, decoded);
        assert_eq!(pushed.as_bytes(), &wire[..]);
        assert_eq!(decoded.len(), 40);
        let third = decoded.iter().nth(3).expect("item 3");
        assert_eq!((third.id, third.value), (3, &[3u8, 3, 3][..]));
        // Inline and heap storage of the same items are equal.
        let small: Items = vec![LocationItem {
            id: 1,
            value: vec![9; 4],
        }]
        .into();
        let mut heap = Items(Raw::Heap(vec![1, 4, 9, 9, 9, 9]));
        assert_eq!(small, heap);
        heap.push_raw(2, &[0; 300]);
        assert_eq!(heap.iter().nth(1).map(|i| i.value.len()), Some(255));
    }

    #[test]
    fn a_truncated_last_item_is_the_tail_and_the_whole_ones_stay_items() {
        let mut body = vec![0u8; 28];
        body.extend_from_slice(&[0x30, 1, 0x1f, 0x31, 1, 5, 0xe1, 9, 1, 2]);
        let r = LocationReport::decode(0x0200, &body).expect("decodes");
        assert_eq!(r.items.len(), 2);
        assert_eq!(r.item(0x31), Some(&[5u8][..]));
        assert_eq!(r.tail, vec![0xe1, 9, 1, 2]);
        let mut back = Vec::new();
        r.encode(&mut back);
        assert_eq!(back, body);
    }
}
