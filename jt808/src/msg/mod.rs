//! Typed JT/T 808 message bodies, both directions, decode and encode.
//!
//! Why: the gateway answers and normalizes uplinks, and tests and the simulator speak as a
//! terminal, so every typed message here decodes *and* encodes. A message id without a
//! typed body decodes to [`Message::Unknown`] with its raw body: nothing is lost.
//!
//! Typed so far: 0x0001/0x8001 general responses, 0x0002 heartbeat, 0x0003 logout,
//! 0x0100 register (2011/2013/2019 layouts), 0x8100 register response, 0x0102
//! authentication (2013/2019), 0x0200 location report, 0x0201 location answer, 0x0500 control answer,
//! 0x0704 batch. Terminal messages: 0x0005 resend request, 0x0104 parameters (with the
//! parameter table in `params`), 0x0107 attributes, 0x0108 upgrade result, 0x0301-0x0303
//! information services, 0x0608 area query answer, 0x0700 recorder data, 0x0701 waybill,
//! 0x0702 driver identity, 0x0705 CAN data, 0x0800/0x0801/0x0802/0x0805 multimedia,
//! 0x0900/0x0901 transparent and compressed data, 0x0A00 RSA key. Platform messages
//! 0x8103-0x8A00 (`platform_*.rs`: parameters, control, text, areas and routes, media,
//! recorder, transparent data, RSA key) are typed only when the typed form writes back the
//! same bytes, else `Unknown`. Other ids are `Unknown`.

pub mod area_query;
pub mod attributes;
pub mod can;
pub mod driver;
pub(crate) mod fields;
pub mod id;
pub mod info;
pub mod location;
pub mod multimedia;
pub mod params;
pub mod platform_area;
pub mod platform_control;
pub mod platform_media;
pub mod platform_misc;
pub mod platform_params;
pub mod platform_text;
pub mod query_params_answer;
pub mod recorder;
pub mod register;
pub mod resend;
pub mod response;
pub mod time;
pub mod transparent;
pub mod upgrade;

use serde::{Serialize, Serializer};

use crate::{BodyError, Header, Version};

pub use area_query::AreaQueryAnswer;
pub use attributes::Attributes;
pub use can::{CanData, CanItem};
pub use driver::DriverIdentity;
pub use info::{EventReport, InfoDemand, QuestionAnswer};
pub use location::{ItemRef, Items, ItemsIter, LocationItem, LocationReport};
pub use multimedia::{MediaEvent, MediaItem, MediaSearchAnswer, MediaUpload, ShotAnswer};
pub use params::{param_by_id, param_by_name, Param, ParamDef, ParamType, ParamValue};
pub use platform_area::{
    AreaRule, AreaShape, CircleArea, DeleteAreas, QueryAreas, RectangleArea, RoutePoint,
    SetCircleAreas, SetPolygonArea, SetRectangleAreas, SetRoute, Vertex,
};
pub use platform_control::{ControlItem, VehicleControl};
pub use platform_media::{
    CameraShot, MediaUploadAnswer, RecordAudio, SingleMediaUpload, StoredMediaSearch,
    StoredMediaUpload,
};
pub use platform_misc::{
    AlarmConfirm, DownlinkTransparent, PlatformRsaKey, RecorderCommand, TemporaryTracking,
};
pub use platform_params::{QueryParams, SetParams, TerminalControl, UpgradePackage};
pub use platform_text::{
    Answer, CallBack, Contact, EventItem, EventSetting, InfoMenu, InfoMenuItem, InfoService,
    PhoneBook, Question, TextMessage,
};
pub use query_params_answer::QueryParamsAnswer;
pub use recorder::{RecorderUpload, Waybill};
pub use register::{Authenticate, Register, RegisterResponse};
pub use resend::ResendRequest;
pub use response::GeneralResponse;
pub use time::ServerTime;
pub use transparent::{CompressedUpload, RsaPublicKey, UplinkTransparent};
pub use upgrade::UpgradeResult;

/// One message body, tagged by kind for `--raw` output (bytes as lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Message {
    /// 0x0001 terminal general response.
    TerminalResponse(GeneralResponse),
    /// 0x8001 platform general response.
    PlatformResponse(GeneralResponse),
    /// 0x0002 heartbeat; some terminals send a body, kept as `extra`.
    Heartbeat {
        #[serde(serialize_with = "as_hex")]
        extra: Vec<u8>,
    },
    /// 0x0003 terminal logout (empty body).
    Logout,
    /// 0x8003 platform resend request for missing packages.
    ResendRequest(ResendRequest),
    /// 0x0004 server-time query (2019, empty body).
    TimeQuery,
    /// 0x8004 server-time answer (2019, UTC).
    ServerTime(ServerTime),
    // Platform (downlink) messages, typed in `platform_*.rs`.
    /// 0x8103 set terminal parameters.
    SetParams(SetParams),
    /// 0x8104 query all terminal parameters (empty body).
    QueryAllParams,
    /// 0x8105 terminal control.
    TerminalControl(TerminalControl),
    /// 0x8106 query the given terminal parameters.
    QueryParams(QueryParams),
    /// 0x8107 query terminal attributes (empty body).
    QueryAttributes,
    /// 0x8108 terminal upgrade package.
    UpgradePackage(UpgradePackage),
    /// 0x8201 location query (empty body).
    QueryLocation,
    /// 0x8202 temporary location tracking.
    TemporaryTracking(TemporaryTracking),
    /// 0x8203 manual alarm confirmation.
    AlarmConfirm(AlarmConfirm),
    /// 0x8204 link check (2019, empty body).
    LinkCheck,
    /// 0x8300 text message.
    Text(TextMessage),
    /// 0x8301 event setting (2011/2013).
    EventSetting(EventSetting),
    /// 0x8302 question (2011/2013).
    Question(Question),
    /// 0x8303 information menu setting (2011/2013).
    InfoMenu(InfoMenu),
    /// 0x8304 information service (2011/2013).
    InfoService(InfoService),
    /// 0x8400 call back.
    CallBack(CallBack),
    /// 0x8401 phone book setting.
    PhoneBook(PhoneBook),
    /// 0x8500 vehicle control (2013 flag byte, 2019 item list).
    VehicleControl(VehicleControl),
    /// 0x8600 set circle areas.
    SetCircleAreas(SetCircleAreas),
    /// 0x8602 set rectangle areas.
    SetRectangleAreas(SetRectangleAreas),
    /// 0x8604 set a polygon area.
    SetPolygonArea(SetPolygonArea),
    /// 0x8606 set a route.
    SetRoute(SetRoute),
    /// 0x8601/0x8603/0x8605/0x8607 delete areas or routes.
    DeleteAreas(DeleteAreas),
    /// 0x8608 query areas or routes (2019).
    QueryAreas(QueryAreas),
    /// 0x8700 recorder data collection.
    RecorderCollect(RecorderCommand),
    /// 0x8701 recorder parameter download.
    RecorderParamsDownload(RecorderCommand),
    /// 0x8702 driver identity request (empty body).
    DriverIdentityRequest,
    /// 0x8800 multimedia upload answer.
    MediaUploadAnswer(MediaUploadAnswer),
    /// 0x8801 camera shot command.
    CameraShotCommand(CameraShot),
    /// 0x8802 stored multimedia search.
    StoredMediaSearch(StoredMediaSearch),
    /// 0x8803 stored multimedia upload.
    StoredMediaUpload(StoredMediaUpload),
    /// 0x8804 record audio.
    RecordAudio(RecordAudio),
    /// 0x8805 single stored multimedia upload.
    SingleMediaUpload(SingleMediaUpload),
    /// 0x8900 downlink transparent data.
    DownlinkTransparent(DownlinkTransparent),
    /// 0x8A00 platform RSA public key.
    PlatformRsaKey(PlatformRsaKey),
    /// 0x0100 terminal registration.
    Register(Register),
    /// 0x8100 registration response.
    RegisterResponse(RegisterResponse),
    /// 0x0102 terminal authentication.
    Authenticate(Authenticate),
    /// 0x0200 location report.
    Location(LocationReport),
    /// 0x0201 location query answer: the 0x8201 serial, then a location body.
    LocationAnswer {
        reply_serial: u16,
        report: LocationReport,
    },
    /// 0x0500 vehicle control answer: the 0x8500 serial, then a location body (§8.57).
    VehicleControlAnswer {
        reply_serial: u16,
        report: LocationReport,
    },
    /// 0x0704 location batch: type 0 normal, 1 blind-area reissue (JT/T 808-2013 §8.53).
    LocationBatch {
        batch_type: u8,
        items: Vec<LocationReport>,
    },
    /// 0x0104 query-parameters answer.
    QueryParamsAnswer(QueryParamsAnswer),
    // Terminal (uplink) messages, one file each under `msg/`.
    /// 0x0005 terminal resend request (2019; same layout as 0x8003).
    TerminalResendRequest(ResendRequest),
    /// 0x0107 terminal attributes (answer to 0x8107).
    Attributes(Attributes),
    /// 0x0108 terminal upgrade result.
    UpgradeResult(UpgradeResult),
    /// 0x0301 event report.
    EventReport(EventReport),
    /// 0x0302 question answer.
    QuestionAnswer(QuestionAnswer),
    /// 0x0303 information on-demand or cancel.
    InfoDemand(InfoDemand),
    /// 0x0608 query areas or routes answer (2019).
    AreaQueryAnswer(AreaQueryAnswer),
    /// 0x0700 driving recorder data upload.
    RecorderUpload(RecorderUpload),
    /// 0x0701 electronic waybill.
    Waybill(Waybill),
    /// 0x0702 driver identity report.
    DriverIdentity(DriverIdentity),
    /// 0x0705 CAN bus data upload.
    CanData(CanData),
    /// 0x0800 multimedia event.
    MediaEvent(MediaEvent),
    /// 0x0801 multimedia data upload.
    MediaUpload(MediaUpload),
    /// 0x0802 stored multimedia search answer.
    MediaSearchAnswer(MediaSearchAnswer),
    /// 0x0805 camera shot answer.
    ShotAnswer(ShotAnswer),
    /// 0x0900 uplink transparent data.
    UplinkTransparent(UplinkTransparent),
    /// 0x0901 compressed data upload.
    CompressedUpload(CompressedUpload),
    /// 0x0A00 terminal RSA public key.
    RsaPublicKey(RsaPublicKey),
    /// Any id without a typed body here: the raw body.
    Unknown {
        msg_id: u16,
        #[serde(serialize_with = "as_hex")]
        body: Vec<u8>,
    },
}

/// Serializes bytes as lowercase hex.
pub(crate) fn as_hex<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(b))
}

/// What the platform answers to an uplink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ack {
    /// A 0x8001 general response.
    General,
    /// A dedicated reply with this id (0x0100 -> 0x8100, 0x0004 -> 0x8004).
    Dedicated(u16),
    /// No reply: the uplink is itself a response (0x0001, 0x0104, 0x0201, 0x0500, 0x0107...).
    None,
}

/// Which reply an uplink with `msg_id` needs (JT/T 808-2013 §8.1/§8.2: every message not
/// itself a response gets a 0x8001; registration gets 0x8100; 2019 time query gets 0x8004).
pub fn ack_policy(msg_id: u16) -> Ack {
    match msg_id {
        id::REGISTER => Ack::Dedicated(id::REGISTER_RESPONSE),
        id::TIME_QUERY => Ack::Dedicated(id::SERVER_TIME),
        // Responses to platform queries (JT/T 808-2013 table of messages: 0x0001 general
        // response, 0x0104 params, 0x0107 attributes, 0x0108 upgrade result is NOT a
        // response and is acked, 0x0201 location query, 0x0302 question answer is acked,
        // 0x0500 vehicle control, 0x0700 recorder data, 0x0802 media search, 0x0805 shot).
        0x0001 | 0x0104 | 0x0107 | 0x0201 | 0x0500 | 0x0700 | 0x0802 | 0x0805 => Ack::None,
        _ => Ack::General,
    }
}

/// Which request of the platform's an uplink answers, so a session can match it against the
/// commands it has in flight without knowing each answer's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answers {
    /// A 0x0001 general response: the id and serial of the request, and the result code.
    Request {
        msg_id: u16,
        serial: u16,
        result: u8,
    },
    /// A typed answer that carries the request's serial as the first WORD of its body
    /// (0x0104, 0x0201, 0x0500, 0x0700, 0x0802, 0x0805).
    Serial(u16),
    /// An answer that names only the kind of request: 0x0107 answers 0x8107.
    Kind(u16),
}

/// A forward cursor over a body; every read is bounds-checked.
pub(crate) struct Reader<'a> {
    pub(crate) msg_id: u16,
    pub(crate) buf: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(msg_id: u16, buf: &'a [u8]) -> Self {
        Reader {
            msg_id,
            buf,
            pos: 0,
        }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], BodyError> {
        let end = self.pos.saturating_add(n);
        let out = self.buf.get(self.pos..end).ok_or(BodyError::TooShort {
            msg_id: self.msg_id,
            len: self.buf.len(),
            need: end,
        })?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, BodyError> {
        match self.take(1)? {
            [a] => Ok(*a),
            _ => unreachable_short(self.msg_id, self.buf.len()),
        }
    }

    pub(crate) fn u16(&mut self) -> Result<u16, BodyError> {
        match self.take(2)? {
            [a, b] => Ok(u16::from_be_bytes([*a, *b])),
            _ => unreachable_short(self.msg_id, self.buf.len()),
        }
    }

    pub(crate) fn u32(&mut self) -> Result<u32, BodyError> {
        match self.take(4)? {
            [a, b, c, d] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
            _ => unreachable_short(self.msg_id, self.buf.len()),
        }
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        out
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
}

/// Reads a BCD[6] `YYMMDDhhmmss` time; a nibble above 9 is an error.
pub(crate) fn bcd_time(r: &mut Reader<'_>) -> Result<codecs::time::LocalTime, BodyError> {
    let msg_id = r.msg_id;
    let b = r.take(6)?;
    let mut f = [0u8; 6];
    for (i, (dst, src)) in f.iter_mut().zip(b).enumerate() {
        *dst = codecs::bcd::byte_value(*src, i).map_err(|_| BodyError::Invalid {
            msg_id,
            field: "time",
            len: 6,
        })?;
    }
    let [year, month, day, hour, minute, second] = f;
    Ok(codecs::time::LocalTime {
        year,
        month,
        day,
        hour,
        minute,
        second,
    })
}

/// Writes a BCD[6] `YYMMDDhhmmss` time.
pub(crate) fn put_bcd_time(t: &codecs::time::LocalTime, out: &mut Vec<u8>) {
    for v in [t.year, t.month, t.day, t.hour, t.minute, t.second] {
        out.push(codecs::bcd::byte_of(v));
    }
}

fn unreachable_short<T>(msg_id: u16, len: usize) -> Result<T, BodyError> {
    Err(BodyError::TooShort {
        msg_id,
        len,
        need: len + 1,
    })
}

impl Message {
    /// Decodes `body` as the message `header.msg_id` names, in `header.version`'s layout.
    pub fn decode(header: &Header, body: &[u8]) -> Result<Message, BodyError> {
        let id = header.msg_id;
        Ok(match id {
            id::TERMINAL_RESPONSE => Message::TerminalResponse(GeneralResponse::decode(id, body)?),
            id::PLATFORM_RESPONSE => Message::PlatformResponse(GeneralResponse::decode(id, body)?),
            id::HEARTBEAT => Message::Heartbeat {
                extra: body.to_vec(),
            },
            id::LOGOUT if body.is_empty() => Message::Logout,
            id::RESEND_REQUEST => {
                Message::ResendRequest(ResendRequest::decode(body, header.version)?)
            }
            id::TIME_QUERY if body.is_empty() => Message::TimeQuery,
            id::SERVER_TIME => Message::ServerTime(ServerTime::decode(body)?),
            // Platform messages: typed when lossless, else `Unknown` (platform_misc.rs).
            0x8103..=0x8A00 => platform_misc::decode(id, header.version, body)?,
            id::REGISTER => Message::Register(Register::decode(body, header.version)?),
            id::REGISTER_RESPONSE => Message::RegisterResponse(RegisterResponse::decode(body)?),
            id::AUTHENTICATE => Message::Authenticate(Authenticate::decode(body, header.version)?),
            id::LOCATION => Message::Location(LocationReport::decode(id, body)?),
            id::LOCATION_ANSWER | id::VEHICLE_CONTROL_ANSWER => {
                let mut r = Reader::new(id, body);
                let reply_serial = r.u16()?;
                let report = LocationReport::decode(id, r.rest())?;
                if id == id::LOCATION_ANSWER {
                    Message::LocationAnswer {
                        reply_serial,
                        report,
                    }
                } else {
                    Message::VehicleControlAnswer {
                        reply_serial,
                        report,
                    }
                }
            }
            // 0x0704 (JT/T 808-2013 §8.53): count WORD | type BYTE | { len WORD | body }*.
            id::LOCATION_BATCH => {
                let mut r = Reader::new(id, body);
                let count = r.u16()?;
                let batch_type = r.u8()?;
                let mut items = Vec::new();
                for _ in 0..count {
                    let n = usize::from(r.u16()?);
                    items.push(LocationReport::decode(id, r.take(n)?)?);
                }
                Message::LocationBatch { batch_type, items }
            }
            id::QUERY_PARAMS_ANSWER => Message::QueryParamsAnswer(QueryParamsAnswer::decode(body)?),
            id::TERMINAL_RESEND_REQUEST => Message::TerminalResendRequest(
                ResendRequest::decode(body, header.version).map_err(|e| fields::retag(e, id))?,
            ),
            id::ATTRIBUTES => Message::Attributes(Attributes::decode(body, header.version)?),
            id::UPGRADE_RESULT => Message::UpgradeResult(UpgradeResult::decode(body)?),
            id::EVENT_REPORT => Message::EventReport(EventReport::decode(body)?),
            id::QUESTION_ANSWER => Message::QuestionAnswer(QuestionAnswer::decode(body)?),
            id::INFO_DEMAND => Message::InfoDemand(InfoDemand::decode(body)?),
            id::AREA_QUERY_ANSWER => Message::AreaQueryAnswer(AreaQueryAnswer::decode(body)?),
            id::RECORDER_UPLOAD => Message::RecorderUpload(RecorderUpload::decode(body)?),
            id::WAYBILL => Message::Waybill(Waybill::decode(body)?),
            id::DRIVER_IDENTITY => {
                Message::DriverIdentity(DriverIdentity::decode(body, header.version)?)
            }
            id::CAN_DATA => Message::CanData(CanData::decode(body)?),
            id::MEDIA_EVENT => Message::MediaEvent(MediaEvent::decode(body)?),
            id::MEDIA_UPLOAD => Message::MediaUpload(MediaUpload::decode(body)?),
            id::MEDIA_SEARCH_ANSWER => Message::MediaSearchAnswer(MediaSearchAnswer::decode(body)?),
            id::SHOT_ANSWER => Message::ShotAnswer(ShotAnswer::decode(body)?),
            id::UPLINK_TRANSPARENT => Message::UplinkTransparent(UplinkTransparent::decode(body)?),
            id::COMPRESSED_UPLOAD => Message::CompressedUpload(CompressedUpload::decode(body)?),
            id::RSA_PUBLIC_KEY => Message::RsaPublicKey(RsaPublicKey::decode(id, body)?),
            _ => Message::Unknown {
                msg_id: id,
                body: body.to_vec(),
            },
        })
    }

    /// The message id of this message.
    pub fn msg_id(&self) -> u16 {
        match self {
            Message::TerminalResponse(_) => id::TERMINAL_RESPONSE,
            Message::PlatformResponse(_) => id::PLATFORM_RESPONSE,
            Message::Heartbeat { .. } => id::HEARTBEAT,
            Message::Logout => id::LOGOUT,
            Message::ResendRequest(_) => id::RESEND_REQUEST,
            Message::TimeQuery => id::TIME_QUERY,
            Message::ServerTime(_) => id::SERVER_TIME,
            Message::SetParams(_) => id::SET_PARAMS,
            Message::QueryAllParams => id::QUERY_ALL_PARAMS,
            Message::TerminalControl(_) => id::TERMINAL_CONTROL,
            Message::QueryParams(_) => id::QUERY_PARAMS,
            Message::QueryAttributes => id::QUERY_ATTRIBUTES,
            Message::UpgradePackage(_) => id::UPGRADE_PACKAGE,
            Message::QueryLocation => id::QUERY_LOCATION,
            Message::TemporaryTracking(_) => id::TEMPORARY_TRACKING,
            Message::AlarmConfirm(_) => id::ALARM_CONFIRM,
            Message::LinkCheck => id::LINK_CHECK,
            Message::Text(_) => id::TEXT,
            Message::EventSetting(_) => id::EVENT_SETTING,
            Message::Question(_) => id::QUESTION,
            Message::InfoMenu(_) => id::INFO_MENU,
            Message::InfoService(_) => id::INFO_SERVICE,
            Message::CallBack(_) => id::CALL_BACK,
            Message::PhoneBook(_) => id::PHONE_BOOK,
            Message::VehicleControl(_) => id::VEHICLE_CONTROL,
            Message::SetCircleAreas(_) => id::SET_CIRCLE_AREAS,
            Message::SetRectangleAreas(_) => id::SET_RECTANGLE_AREAS,
            Message::SetPolygonArea(_) => id::SET_POLYGON_AREA,
            Message::SetRoute(_) => id::SET_ROUTE,
            Message::DeleteAreas(d) => d.shape.delete_id(),
            Message::QueryAreas(_) => id::QUERY_AREAS,
            Message::RecorderCollect(_) => id::RECORDER_COLLECT,
            Message::RecorderParamsDownload(_) => id::RECORDER_PARAMS_DOWNLOAD,
            Message::DriverIdentityRequest => id::DRIVER_IDENTITY_REQUEST,
            Message::MediaUploadAnswer(_) => id::MEDIA_UPLOAD_ANSWER,
            Message::CameraShotCommand(_) => id::CAMERA_SHOT,
            Message::StoredMediaSearch(_) => id::STORED_MEDIA_SEARCH,
            Message::StoredMediaUpload(_) => id::STORED_MEDIA_UPLOAD,
            Message::RecordAudio(_) => id::RECORD_AUDIO,
            Message::SingleMediaUpload(_) => id::SINGLE_MEDIA_UPLOAD,
            Message::DownlinkTransparent(_) => id::DOWNLINK_TRANSPARENT,
            Message::PlatformRsaKey(_) => id::PLATFORM_RSA_KEY,
            Message::Register(_) => id::REGISTER,
            Message::RegisterResponse(_) => id::REGISTER_RESPONSE,
            Message::Authenticate(_) => id::AUTHENTICATE,
            Message::Location(_) => id::LOCATION,
            Message::LocationAnswer { .. } => id::LOCATION_ANSWER,
            Message::VehicleControlAnswer { .. } => id::VEHICLE_CONTROL_ANSWER,
            Message::LocationBatch { .. } => id::LOCATION_BATCH,
            Message::QueryParamsAnswer(_) => id::QUERY_PARAMS_ANSWER,
            Message::TerminalResendRequest(_) => id::TERMINAL_RESEND_REQUEST,
            Message::Attributes(_) => id::ATTRIBUTES,
            Message::UpgradeResult(_) => id::UPGRADE_RESULT,
            Message::EventReport(_) => id::EVENT_REPORT,
            Message::QuestionAnswer(_) => id::QUESTION_ANSWER,
            Message::InfoDemand(_) => id::INFO_DEMAND,
            Message::AreaQueryAnswer(_) => id::AREA_QUERY_ANSWER,
            Message::RecorderUpload(_) => id::RECORDER_UPLOAD,
            Message::Waybill(_) => id::WAYBILL,
            Message::DriverIdentity(_) => id::DRIVER_IDENTITY,
            Message::CanData(_) => id::CAN_DATA,
            Message::MediaEvent(_) => id::MEDIA_EVENT,
            Message::MediaUpload(_) => id::MEDIA_UPLOAD,
            Message::MediaSearchAnswer(_) => id::MEDIA_SEARCH_ANSWER,
            Message::ShotAnswer(_) => id::SHOT_ANSWER,
            Message::UplinkTransparent(_) => id::UPLINK_TRANSPARENT,
            Message::CompressedUpload(_) => id::COMPRESSED_UPLOAD,
            Message::RsaPublicKey(_) => id::RSA_PUBLIC_KEY,
            Message::Unknown { msg_id, .. } => *msg_id,
        }
    }

    /// The body bytes of this message in `version`'s layout.
    pub fn encode_body(&self, version: Version) -> Result<Vec<u8>, BodyError> {
        let mut out = Vec::with_capacity(32);
        match self {
            Message::TerminalResponse(r) | Message::PlatformResponse(r) => r.encode(&mut out),
            Message::Heartbeat { extra } => out.extend_from_slice(extra),
            Message::Logout | Message::TimeQuery => {}
            Message::ResendRequest(r) => r.encode(version, &mut out)?,
            Message::ServerTime(t) => t.encode(&mut out),
            Message::QueryAllParams
            | Message::QueryAttributes
            | Message::QueryLocation
            | Message::LinkCheck
            | Message::DriverIdentityRequest => {}
            Message::SetParams(m) => m.encode(&mut out)?,
            Message::TerminalControl(m) => m.encode(&mut out),
            Message::QueryParams(m) => m.encode(&mut out)?,
            Message::UpgradePackage(m) => m.encode(version, &mut out)?,
            Message::TemporaryTracking(m) => m.encode(&mut out),
            Message::AlarmConfirm(m) => m.encode(&mut out),
            Message::Text(m) => m.encode(version, &mut out)?,
            Message::EventSetting(m) => m.encode(&mut out)?,
            Message::Question(m) => m.encode(&mut out)?,
            Message::InfoMenu(m) => m.encode(&mut out)?,
            Message::InfoService(m) => m.encode(&mut out)?,
            Message::CallBack(m) => m.encode(&mut out),
            Message::PhoneBook(m) => m.encode(&mut out)?,
            Message::VehicleControl(m) => m.encode(version, &mut out)?,
            Message::SetCircleAreas(m) => m.encode(version, &mut out)?,
            Message::SetRectangleAreas(m) => m.encode(version, &mut out)?,
            Message::SetPolygonArea(m) => m.encode(version, &mut out)?,
            Message::SetRoute(m) => m.encode(version, &mut out)?,
            Message::DeleteAreas(m) => m.encode(&mut out)?,
            Message::QueryAreas(m) => m.encode(&mut out)?,
            Message::RecorderCollect(m) | Message::RecorderParamsDownload(m) => m.encode(&mut out),
            Message::MediaUploadAnswer(m) => m.encode(&mut out)?,
            Message::CameraShotCommand(m) => m.encode(&mut out),
            Message::StoredMediaSearch(m) => m.encode(&mut out),
            Message::StoredMediaUpload(m) => m.encode(&mut out),
            Message::RecordAudio(m) => m.encode(&mut out),
            Message::SingleMediaUpload(m) => m.encode(&mut out),
            Message::DownlinkTransparent(m) => m.encode(&mut out),
            Message::PlatformRsaKey(m) => m.encode(&mut out)?,
            Message::Register(r) => r.encode(version, &mut out)?,
            Message::RegisterResponse(r) => r.encode(&mut out),
            Message::Authenticate(a) => a.encode(version, &mut out)?,
            Message::Location(l) => l.encode(&mut out),
            Message::LocationAnswer {
                reply_serial,
                report,
            }
            | Message::VehicleControlAnswer {
                reply_serial,
                report,
            } => {
                out.extend_from_slice(&reply_serial.to_be_bytes());
                report.encode(&mut out);
            }
            Message::LocationBatch { batch_type, items } => {
                let count = u16::try_from(items.len()).map_err(|_| BodyError::Invalid {
                    msg_id: 0x0704,
                    field: "items",
                    len: items.len(),
                })?;
                out.extend_from_slice(&count.to_be_bytes());
                out.push(*batch_type);
                for it in items {
                    let mut b = Vec::with_capacity(40);
                    it.encode(&mut b);
                    let n = u16::try_from(b.len()).map_err(|_| BodyError::Invalid {
                        msg_id: 0x0704,
                        field: "items",
                        len: b.len(),
                    })?;
                    out.extend_from_slice(&n.to_be_bytes());
                    out.extend_from_slice(&b);
                }
            }
            Message::QueryParamsAnswer(a) => a.encode(&mut out)?,
            Message::TerminalResendRequest(r) => r
                .encode(version, &mut out)
                .map_err(|e| fields::retag(e, 0x0005))?,
            Message::Attributes(m) => m.encode(version, &mut out)?,
            Message::UpgradeResult(m) => m.encode(&mut out),
            Message::EventReport(m) => m.encode(&mut out),
            Message::QuestionAnswer(m) => m.encode(&mut out),
            Message::InfoDemand(m) => m.encode(&mut out),
            Message::AreaQueryAnswer(m) => m.encode(&mut out),
            Message::RecorderUpload(m) => m.encode(&mut out),
            Message::Waybill(m) => m.encode(&mut out)?,
            Message::DriverIdentity(m) => m.encode(version, &mut out)?,
            Message::CanData(m) => m.encode(&mut out)?,
            Message::MediaEvent(m) => m.encode(&mut out),
            Message::MediaUpload(m) => m.encode(&mut out),
            Message::MediaSearchAnswer(m) => m.encode(&mut out)?,
            Message::ShotAnswer(m) => m.encode(&mut out)?,
            Message::UplinkTransparent(m) => m.encode(&mut out),
            Message::CompressedUpload(m) => m.encode(&mut out)?,
            Message::RsaPublicKey(m) => m.encode(0x0A00, &mut out)?,
            Message::Unknown { body, .. } => out.extend_from_slice(body),
        }
        Ok(out)
    }

    /// Which request of the platform's this uplink answers, if it is an answer.
    pub fn answers(&self) -> Option<Answers> {
        match self {
            Message::TerminalResponse(r) => Some(Answers::Request {
                msg_id: r.reply_id,
                serial: r.reply_serial,
                result: r.result,
            }),
            _ => match self.msg_id() {
                id::ATTRIBUTES => Some(Answers::Kind(id::QUERY_ATTRIBUTES)),
                id::QUERY_PARAMS_ANSWER
                | id::LOCATION_ANSWER
                | id::VEHICLE_CONTROL_ANSWER
                | id::RECORDER_UPLOAD
                | id::MEDIA_SEARCH_ANSWER
                | id::SHOT_ANSWER => self
                    .reply_serial()
                    .or_else(|| match self {
                        // Not typed (yet): the serial is still the body's first WORD.
                        Message::Unknown { body, .. } => match body.as_slice() {
                            [a, b, ..] => Some(u16::from_be_bytes([*a, *b])),
                            _ => None,
                        },
                        _ => None,
                    })
                    .map(Answers::Serial),
                _ => None,
            },
        }
    }

    /// The serial of the message this one answers, for responses.
    pub fn reply_serial(&self) -> Option<u16> {
        match self {
            Message::TerminalResponse(r) | Message::PlatformResponse(r) => Some(r.reply_serial),
            Message::RegisterResponse(r) => Some(r.reply_serial),
            Message::QueryParamsAnswer(a) => Some(a.reply_serial),
            Message::QuestionAnswer(a) => Some(a.reply_serial),
            Message::RecorderUpload(a) => Some(a.reply_serial),
            Message::MediaSearchAnswer(a) => Some(a.reply_serial),
            Message::ShotAnswer(a) => Some(a.reply_serial),
            Message::LocationAnswer { reply_serial, .. }
            | Message::VehicleControlAnswer { reply_serial, .. } => Some(*reply_serial),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_gets_a_dedicated_reply_and_location_a_general_one() {
        assert_eq!(ack_policy(0x0100), Ack::Dedicated(0x8100));
        assert_eq!(ack_policy(0x0200), Ack::General);
        assert_eq!(ack_policy(0x0001), Ack::None);
        assert_eq!(ack_policy(0x0F0F), Ack::General);
    }

    #[test]
    fn answers_name_the_request_by_id_and_serial_by_serial_or_by_kind() {
        let r = Message::TerminalResponse(GeneralResponse {
            reply_serial: 7,
            reply_id: id::SET_PARAMS,
            result: response::result::OK,
        });
        assert_eq!(
            r.answers(),
            Some(Answers::Request {
                msg_id: id::SET_PARAMS,
                serial: 7,
                result: 0
            })
        );
        let untyped = Message::Unknown {
            msg_id: id::SHOT_ANSWER,
            body: vec![0x01, 0x02, 0x00],
        };
        assert_eq!(untyped.answers(), Some(Answers::Serial(0x0102)));
        let attrs = Message::Unknown {
            msg_id: id::ATTRIBUTES,
            body: vec![],
        };
        assert_eq!(attrs.answers(), Some(Answers::Kind(id::QUERY_ATTRIBUTES)));
        assert_eq!(Message::Logout.answers(), None);
    }

    #[test]
    fn reader_reports_short_bodies_instead_of_panicking() {
        let mut r = Reader::new(0x0200, &[1, 2, 3]);
        assert_eq!(r.u16(), Ok(0x0102));
        assert_eq!(
            r.u16(),
            Err(BodyError::TooShort {
                msg_id: 0x0200,
                len: 3,
                need: 4
            })
        );
    }
}
