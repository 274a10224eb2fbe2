//! Platform area and route messages: 0x8600 circles, 0x8602 rectangles, 0x8604 polygon,
//! 0x8606 route, 0x8601/0x8603/0x8605/0x8607 delete, 0x8608 query (2019).
//!
//! ```text
//! 0x8600: action BYTE | count BYTE | circle*
//!   circle: id DWORD | attr WORD | lat DWORD | lon DWORD | radius DWORD
//!           | [start BCD[6] | end BCD[6]]               if attr bit 0
//!           | [max speed WORD | overspeed s BYTE]        if attr bit 1
//!           | 2019: [night max speed WORD]               if attr bit 1
//!           | 2019: name len WORD | name STRING
//! 0x8602: action BYTE | count BYTE | rectangle*
//!   rectangle: id DWORD | attr WORD | top-left lat DWORD | top-left lon DWORD
//!           | bottom-right lat DWORD | bottom-right lon DWORD | then as a circle from [start
//! 0x8604: id DWORD | attr WORD | [start | end] bit 0 | [max speed | overspeed s] bit 1
//!           | count WORD | { lat DWORD | lon DWORD }*
//!           | 2019: [night max speed WORD] bit 1 | name len WORD | name STRING
//! 0x8606: id DWORD | attr WORD | [start | end] bit 0 | count WORD | point*
//!           | 2019: name len WORD | name STRING
//!   point: point id DWORD | segment id DWORD | lat DWORD | lon DWORD | width BYTE | attr BYTE
//!           | [too long WORD | too short WORD] if segment attr bit 0
//!           | [max speed WORD | overspeed s BYTE] if segment attr bit 1
//!           | 2019: [night max speed WORD]        if segment attr bit 1
//! 0x8601/0x8603/0x8605/0x8607: count BYTE (0: all) | ids DWORD[count]
//! 0x8608 (2019): type BYTE (1 circle, 2 rectangle, 3 polygon, 4 route) | count DWORD | ids DWORD[count]
//! ```
//!
//! Settings action: 0 update (replace all), 1 append, 2 modify. Area attribute bits:
//! 0 by time, 1 speed limit, 2/3 entry alarm to driver/platform, 4/5 exit alarm to
//! driver/platform, 6 south latitude, 7 west longitude, 8 door opening forbidden,
//! 14 communication module off on entry, 15 GNSS detail collection on entry.
//!
//! Quirk: some platforms (yezhihao/jt808-server's 2013 test vectors) write the time and
//! speed fields whatever the attribute bits say. A body that does not parse to its end by
//! the standard is read again with every optional field present; the typed form keeps
//! which fields were present (`Some`), so it writes the same bytes back.

use codecs::time::LocalTime;
use serde::Serialize;

use super::platform_misc::{invalid, put_text_u16, read_text_u16, u16_of, u32_of, u8_of};
use super::{bcd_time, put_bcd_time, Reader};
use crate::{BodyError, Version};

/// The shape an area message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AreaShape {
    /// 0x8600/0x8601.
    Circle,
    /// 0x8602/0x8603.
    Rectangle,
    /// 0x8604/0x8605.
    Polygon,
    /// 0x8606/0x8607.
    Route,
}

impl AreaShape {
    /// The id of the delete message for this shape.
    pub fn delete_id(self) -> u16 {
        match self {
            AreaShape::Circle => 0x8601,
            AreaShape::Rectangle => 0x8603,
            AreaShape::Polygon => 0x8605,
            AreaShape::Route => 0x8607,
        }
    }
}

/// Optional fields read under attribute bits; `lenient` reads them all.
struct Fields {
    version: Version,
    lenient: bool,
}

impl Fields {
    fn bit(&self, attr: u16, b: u16) -> bool {
        self.lenient || attr >> b & 1 == 1
    }

    fn times(
        &self,
        r: &mut Reader<'_>,
        attr: u16,
    ) -> Result<(Option<LocalTime>, Option<LocalTime>), BodyError> {
        if self.bit(attr, 0) {
            Ok((Some(bcd_time(r)?), Some(bcd_time(r)?)))
        } else {
            Ok((None, None))
        }
    }

    fn speed(&self, r: &mut Reader<'_>, attr: u16) -> Result<(Option<u16>, Option<u8>), BodyError> {
        if self.bit(attr, 1) {
            Ok((Some(r.u16()?), Some(r.u8()?)))
        } else {
            Ok((None, None))
        }
    }

    fn night(&self, r: &mut Reader<'_>, attr: u16) -> Result<Option<u16>, BodyError> {
        if self.version == Version::V2019 && self.bit(attr, 1) {
            Ok(Some(r.u16()?))
        } else {
            Ok(None)
        }
    }

    fn name(&self, r: &mut Reader<'_>) -> Result<String, BodyError> {
        if self.version == Version::V2019 {
            read_text_u16(r)
        } else {
            Ok(String::new())
        }
    }
}

/// Reads by the standard, then (if that does not reach the end of the body) with every
/// optional field present; the standard's error if neither fits.
fn first_fit<T>(
    msg_id: u16,
    body: &[u8],
    version: Version,
    parse: impl Fn(&mut Reader<'_>, &Fields) -> Result<T, BodyError>,
) -> Result<T, BodyError> {
    let run = |lenient| {
        let mut r = Reader::new(msg_id, body);
        parse(&mut r, &Fields { version, lenient }).map(|t| (t, r.remaining()))
    };
    let strict = run(false);
    if let Ok((t, 0)) = strict {
        return Ok(t);
    }
    if let Ok((t, 0)) = run(true) {
        return Ok(t);
    }
    strict.map(|(t, _)| t)
}

fn put_opt_times(s: &Option<LocalTime>, e: &Option<LocalTime>, out: &mut Vec<u8>) {
    if let Some(t) = s {
        put_bcd_time(t, out);
    }
    if let Some(t) = e {
        put_bcd_time(t, out);
    }
}

fn put_opt_speed(max: Option<u16>, over: Option<u8>, out: &mut Vec<u8>) {
    if let Some(v) = max {
        out.extend_from_slice(&v.to_be_bytes());
    }
    if let Some(v) = over {
        out.push(v);
    }
}

/// Night speed then name, 2019 only; before 2019 neither can be written.
fn put_night(
    msg_id: u16,
    version: Version,
    night: Option<u16>,
    out: &mut Vec<u8>,
) -> Result<(), BodyError> {
    match (version, night) {
        (Version::V2019, Some(v)) => out.extend_from_slice(&v.to_be_bytes()),
        (_, None) => {}
        (_, Some(_)) => return Err(invalid(msg_id, "night_max_speed_kmh", 2)),
    }
    Ok(())
}

fn put_name(msg_id: u16, version: Version, name: &str, out: &mut Vec<u8>) -> Result<(), BodyError> {
    match version {
        Version::V2019 => put_text_u16(msg_id, "name", name, out),
        _ if name.is_empty() => Ok(()),
        _ => Err(invalid(msg_id, "name", name.len())),
    }
}

/// The time and speed rule of an area: fields present under attribute bits 0 and 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct AreaRule {
    /// Start time (attribute bit 0).
    pub start: Option<LocalTime>,
    /// End time (attribute bit 0).
    pub end: Option<LocalTime>,
    /// Maximum speed, km/h (attribute bit 1).
    pub max_speed_kmh: Option<u16>,
    /// Overspeed duration before an alarm, seconds (attribute bit 1).
    pub overspeed_s: Option<u8>,
    /// 2019: night maximum speed, km/h (attribute bit 1).
    pub night_max_speed_kmh: Option<u16>,
}

impl AreaRule {
    fn read_circle_like(r: &mut Reader<'_>, f: &Fields, attr: u16) -> Result<Self, BodyError> {
        let (start, end) = f.times(r, attr)?;
        let (max_speed_kmh, overspeed_s) = f.speed(r, attr)?;
        Ok(AreaRule {
            start,
            end,
            max_speed_kmh,
            overspeed_s,
            night_max_speed_kmh: f.night(r, attr)?,
        })
    }

    fn put_circle_like(&self, id: u16, v: Version, out: &mut Vec<u8>) -> Result<(), BodyError> {
        put_opt_times(&self.start, &self.end, out);
        put_opt_speed(self.max_speed_kmh, self.overspeed_s, out);
        put_night(id, v, self.night_max_speed_kmh, out)
    }
}

/// One circle of 0x8600.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CircleArea {
    /// Area id.
    pub id: u32,
    /// Area attribute bits.
    pub attribute: u16,
    /// Centre latitude, 1e-6 degrees.
    pub latitude: u32,
    /// Centre longitude, 1e-6 degrees.
    pub longitude: u32,
    /// Radius, metres.
    pub radius_m: u32,
    /// Time and speed rule.
    #[serde(flatten)]
    pub rule: AreaRule,
    /// 2019: area name (empty before 2019).
    pub name: String,
}

/// 0x8600 set circle areas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetCircleAreas {
    /// 0 update, 1 append, 2 modify.
    pub action: u8,
    /// The circles.
    pub areas: Vec<CircleArea>,
}

impl SetCircleAreas {
    const ID: u16 = 0x8600;

    pub(crate) fn decode(body: &[u8], version: Version) -> Result<Self, BodyError> {
        first_fit(Self::ID, body, version, |r, f| {
            let action = r.u8()?;
            let count = usize::from(r.u8()?);
            let mut areas = Vec::with_capacity(count);
            for _ in 0..count {
                let id = r.u32()?;
                let attribute = r.u16()?;
                let (latitude, longitude, radius_m) = (r.u32()?, r.u32()?, r.u32()?);
                let rule = AreaRule::read_circle_like(r, f, attribute)?;
                areas.push(CircleArea {
                    id,
                    attribute,
                    latitude,
                    longitude,
                    radius_m,
                    rule,
                    name: f.name(r)?,
                });
            }
            Ok(SetCircleAreas { action, areas })
        })
    }

    pub(crate) fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), BodyError> {
        out.push(self.action);
        out.push(u8_of(Self::ID, "areas", self.areas.len())?);
        for a in &self.areas {
            out.extend_from_slice(&a.id.to_be_bytes());
            out.extend_from_slice(&a.attribute.to_be_bytes());
            for v in [a.latitude, a.longitude, a.radius_m] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            a.rule.put_circle_like(Self::ID, version, out)?;
            put_name(Self::ID, version, &a.name, out)?;
        }
        Ok(())
    }
}

/// One rectangle of 0x8602.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RectangleArea {
    /// Area id.
    pub id: u32,
    /// Area attribute bits.
    pub attribute: u16,
    /// Top-left latitude, 1e-6 degrees.
    pub top_left_latitude: u32,
    /// Top-left longitude, 1e-6 degrees.
    pub top_left_longitude: u32,
    /// Bottom-right latitude, 1e-6 degrees.
    pub bottom_right_latitude: u32,
    /// Bottom-right longitude, 1e-6 degrees.
    pub bottom_right_longitude: u32,
    /// Time and speed rule.
    #[serde(flatten)]
    pub rule: AreaRule,
    /// 2019: area name (empty before 2019).
    pub name: String,
}

/// 0x8602 set rectangle areas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetRectangleAreas {
    /// 0 update, 1 append, 2 modify.
    pub action: u8,
    /// The rectangles.
    pub areas: Vec<RectangleArea>,
}

impl SetRectangleAreas {
    const ID: u16 = 0x8602;

    pub(crate) fn decode(body: &[u8], version: Version) -> Result<Self, BodyError> {
        first_fit(Self::ID, body, version, |r, f| {
            let action = r.u8()?;
            let count = usize::from(r.u8()?);
            let mut areas = Vec::with_capacity(count);
            for _ in 0..count {
                let id = r.u32()?;
                let attribute = r.u16()?;
                let (a, b, c, d) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?);
                let rule = AreaRule::read_circle_like(r, f, attribute)?;
                areas.push(RectangleArea {
                    id,
                    attribute,
                    top_left_latitude: a,
                    top_left_longitude: b,
                    bottom_right_latitude: c,
                    bottom_right_longitude: d,
                    rule,
                    name: f.name(r)?,
                });
            }
            Ok(SetRectangleAreas { action, areas })
        })
    }

    pub(crate) fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), BodyError> {
        out.push(self.action);
        out.push(u8_of(Self::ID, "areas", self.areas.len())?);
        for a in &self.areas {
            out.extend_from_slice(&a.id.to_be_bytes());
            out.extend_from_slice(&a.attribute.to_be_bytes());
            for v in [
                a.top_left_latitude,
                a.top_left_longitude,
                a.bottom_right_latitude,
                a.bottom_right_longitude,
            ] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            a.rule.put_circle_like(Self::ID, version, out)?;
            put_name(Self::ID, version, &a.name, out)?;
        }
        Ok(())
    }
}

/// A vertex of a polygon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Vertex {
    /// Latitude, 1e-6 degrees.
    pub latitude: u32,
    /// Longitude, 1e-6 degrees.
    pub longitude: u32,
}

/// 0x8604 set a polygon area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetPolygonArea {
    /// Area id.
    pub id: u32,
    /// Area attribute bits.
    pub attribute: u16,
    /// Time and speed rule (the 2019 night speed follows the vertices on the wire).
    #[serde(flatten)]
    pub rule: AreaRule,
    /// Vertices.
    pub vertices: Vec<Vertex>,
    /// 2019: area name (empty before 2019).
    pub name: String,
}

impl SetPolygonArea {
    const ID: u16 = 0x8604;

    pub(crate) fn decode(body: &[u8], version: Version) -> Result<Self, BodyError> {
        first_fit(Self::ID, body, version, |r, f| {
            let id = r.u32()?;
            let attribute = r.u16()?;
            let (start, end) = f.times(r, attribute)?;
            let (max_speed_kmh, overspeed_s) = f.speed(r, attribute)?;
            let count = usize::from(r.u16()?);
            let mut vertices = Vec::with_capacity(count.min(r.remaining() / 8));
            for _ in 0..count {
                vertices.push(Vertex {
                    latitude: r.u32()?,
                    longitude: r.u32()?,
                });
            }
            let night_max_speed_kmh = f.night(r, attribute)?;
            Ok(SetPolygonArea {
                id,
                attribute,
                rule: AreaRule {
                    start,
                    end,
                    max_speed_kmh,
                    overspeed_s,
                    night_max_speed_kmh,
                },
                vertices,
                name: f.name(r)?,
            })
        })
    }

    pub(crate) fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), BodyError> {
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.attribute.to_be_bytes());
        put_opt_times(&self.rule.start, &self.rule.end, out);
        put_opt_speed(self.rule.max_speed_kmh, self.rule.overspeed_s, out);
        let n = u16_of(Self::ID, "vertices", self.vertices.len())?;
        out.extend_from_slice(&n.to_be_bytes());
        for v in &self.vertices {
            out.extend_from_slice(&v.latitude.to_be_bytes());
            out.extend_from_slice(&v.longitude.to_be_bytes());
        }
        put_night(Self::ID, version, self.rule.night_max_speed_kmh, out)?;
        put_name(Self::ID, version, &self.name, out)
    }
}

/// One inflection point of a route, with the segment that starts at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoutePoint {
    /// Inflection point id.
    pub point_id: u32,
    /// Segment id.
    pub segment_id: u32,
    /// Latitude, 1e-6 degrees.
    pub latitude: u32,
    /// Longitude, 1e-6 degrees.
    pub longitude: u32,
    /// Segment width, metres.
    pub width_m: u8,
    /// Segment attribute bits: 0 travel time limits, 1 speed limit, 2/3 south/west.
    pub attribute: u8,
    /// Travel time above which the segment is "too long", seconds (segment bit 0).
    pub too_long_s: Option<u16>,
    /// Travel time below which the segment is "too short", seconds (segment bit 0).
    pub too_short_s: Option<u16>,
    /// Maximum speed, km/h (segment bit 1).
    pub max_speed_kmh: Option<u16>,
    /// Overspeed duration, seconds (segment bit 1).
    pub overspeed_s: Option<u8>,
    /// 2019: night maximum speed, km/h (segment bit 1).
    pub night_max_speed_kmh: Option<u16>,
}

/// 0x8606 set a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetRoute {
    /// Route id.
    pub id: u32,
    /// Route attribute bits (0 by time, 2-5 entry/exit alarms).
    pub attribute: u16,
    /// Start time (route bit 0).
    pub start: Option<LocalTime>,
    /// End time (route bit 0).
    pub end: Option<LocalTime>,
    /// Inflection points.
    pub points: Vec<RoutePoint>,
    /// 2019: route name (empty before 2019).
    pub name: String,
}

impl SetRoute {
    const ID: u16 = 0x8606;

    pub(crate) fn decode(body: &[u8], version: Version) -> Result<Self, BodyError> {
        first_fit(Self::ID, body, version, |r, f| {
            let id = r.u32()?;
            let attribute = r.u16()?;
            let (start, end) = f.times(r, attribute)?;
            let count = usize::from(r.u16()?);
            let mut points = Vec::with_capacity(count.min(r.remaining() / 18));
            for _ in 0..count {
                let (point_id, segment_id, latitude, longitude) =
                    (r.u32()?, r.u32()?, r.u32()?, r.u32()?);
                let width_m = r.u8()?;
                let attribute = r.u8()?;
                let seg = u16::from(attribute);
                let (too_long_s, too_short_s) = if f.bit(seg, 0) {
                    (Some(r.u16()?), Some(r.u16()?))
                } else {
                    (None, None)
                };
                let (max_speed_kmh, overspeed_s) = f.speed(r, seg)?;
                points.push(RoutePoint {
                    point_id,
                    segment_id,
                    latitude,
                    longitude,
                    width_m,
                    attribute,
                    too_long_s,
                    too_short_s,
                    max_speed_kmh,
                    overspeed_s,
                    night_max_speed_kmh: f.night(r, seg)?,
                });
            }
            Ok(SetRoute {
                id,
                attribute,
                start,
                end,
                points,
                name: f.name(r)?,
            })
        })
    }

    pub(crate) fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), BodyError> {
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.attribute.to_be_bytes());
        put_opt_times(&self.start, &self.end, out);
        let n = u16_of(Self::ID, "points", self.points.len())?;
        out.extend_from_slice(&n.to_be_bytes());
        for p in &self.points {
            for v in [p.point_id, p.segment_id, p.latitude, p.longitude] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            out.push(p.width_m);
            out.push(p.attribute);
            for v in [p.too_long_s, p.too_short_s].into_iter().flatten() {
                out.extend_from_slice(&v.to_be_bytes());
            }
            put_opt_speed(p.max_speed_kmh, p.overspeed_s, out);
            put_night(Self::ID, version, p.night_max_speed_kmh, out)?;
        }
        put_name(Self::ID, version, &self.name, out)
    }
}

/// 0x8601/0x8603/0x8605/0x8607 delete areas or routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeleteAreas {
    /// Which kind of area (gives the message id).
    pub shape: AreaShape,
    /// Ids to delete (empty: all of this shape; at most 125 by the standard).
    pub ids: Vec<u32>,
}

impl DeleteAreas {
    pub(crate) fn decode(msg_id: u16, body: &[u8]) -> Result<Self, BodyError> {
        let shape = match msg_id {
            0x8601 => AreaShape::Circle,
            0x8603 => AreaShape::Rectangle,
            0x8605 => AreaShape::Polygon,
            _ => AreaShape::Route,
        };
        let mut r = Reader::new(msg_id, body);
        let count = usize::from(r.u8()?);
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            ids.push(r.u32()?);
        }
        Ok(DeleteAreas { shape, ids })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        out.push(u8_of(self.shape.delete_id(), "ids", self.ids.len())?);
        for id in &self.ids {
            out.extend_from_slice(&id.to_be_bytes());
        }
        Ok(())
    }
}

/// 0x8608 query areas or routes (2019).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryAreas {
    /// 1 circle, 2 rectangle, 3 polygon, 4 route.
    pub area_type: u8,
    /// Ids to query (empty: all of this type).
    pub ids: Vec<u32>,
}

impl QueryAreas {
    const ID: u16 = 0x8608;

    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(Self::ID, body);
        let area_type = r.u8()?;
        let count = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
        let mut ids = Vec::with_capacity(count.min(r.remaining() / 4));
        for _ in 0..count {
            ids.push(r.u32()?);
        }
        Ok(QueryAreas { area_type, ids })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        out.push(self.area_type);
        out.extend_from_slice(&u32_of(Self::ID, "ids", self.ids.len())?.to_be_bytes());
        for id in &self.ids {
            out.extend_from_slice(&id.to_be_bytes());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One 2013 circle without time or speed rule.
    fn plain_body() -> Vec<u8> {
        let annotated = concat!(
            "00",       // action: update
            "01",       // one circle
            "00000007", // id
            "0000",     // attribute: no time, no speed rule
            "01c9c380", // latitude 30.000000
            "06ca9f18", // longitude 113.942296
            "000003e8", // radius 1000 m
        );
        hex::decode(annotated).unwrap_or_default()
    }

    #[test]
    fn optional_fields_follow_the_attribute_bits() {
        let s = SetCircleAreas::decode(&plain_body(), Version::V2013);
        let area = s.as_ref().ok().and_then(|s| s.areas.first().cloned());
        assert_eq!(
            area.map(|a| (a.radius_m, a.rule)),
            Some((1000, AreaRule::default()))
        );
    }

    #[test]
    fn times_and_speed_written_against_the_attribute_are_read_leniently() {
        // Same circle, attribute still 0000, then start | end BCD[6] | speed 0050 | 0a.
        let mut body = plain_body();
        body.extend_from_slice(&[
            0x24, 0x01, 0x01, 0, 0, 0, 0x24, 0x12, 0x31, 0x23, 0x59, 0x59,
        ]);
        body.extend_from_slice(&[0x00, 0x50, 0x0a]);
        let s = SetCircleAreas::decode(&body, Version::V2013);
        let rule = s
            .as_ref()
            .ok()
            .and_then(|s| s.areas.first())
            .map(|a| a.rule.clone());
        assert_eq!(rule.as_ref().and_then(|r| r.max_speed_kmh), Some(80));
        assert_eq!(rule.as_ref().and_then(|r| r.overspeed_s), Some(10));
        assert_eq!(rule.and_then(|r| r.end).map(|t| t.month), Some(12));
        // ...and written back as they came.
        let mut out = Vec::new();
        let written = s.map(|s| s.encode(Version::V2013, &mut out));
        assert_eq!(written, Ok(Ok(())));
        assert_eq!(out, body);
    }

    #[test]
    fn a_2019_name_cannot_be_written_in_2013() {
        let route = SetRoute {
            id: 1,
            attribute: 0,
            start: None,
            end: None,
            points: vec![],
            name: "A".into(),
        };
        let mut out = Vec::new();
        assert!(matches!(
            route.encode(Version::V2013, &mut out),
            Err(BodyError::Invalid { field: "name", .. })
        ));
        out.clear();
        assert_eq!(route.encode(Version::V2019, &mut out), Ok(()));
        // id 00000001 | attr 0000 | count 0000 | name len 0001 | "A"
        assert_eq!(hex::encode(out), "0000000100000000000141");
    }
}
