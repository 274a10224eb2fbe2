//! Message ids (JT/T 808-2019 table 3), one table: the constants, the list of known ids and
//! their metric labels are generated from it.
//!
//! Why one table: the gateway labels metrics by message id and must keep the label set
//! bounded (a terminal must not grow a metric's cardinality with made-up ids). A label list
//! kept in the gateway was a third copy of the ids, after [`Message::decode`] and
//! [`Message::msg_id`], and drifted from them. Adding an id here names it everywhere.
//!
//! [`Message::decode`]: super::Message::decode
//! [`Message::msg_id`]: super::Message::msg_id

codecs::id_table! { u16;
    /// 0x0001 terminal general response.
    TERMINAL_RESPONSE = 0x0001, "0x0001";
    /// 0x0002 heartbeat.
    HEARTBEAT = 0x0002, "0x0002";
    /// 0x0003 terminal logout.
    LOGOUT = 0x0003, "0x0003";
    /// 0x0004 server-time query (2019).
    TIME_QUERY = 0x0004, "0x0004";
    /// 0x0005 terminal resend request.
    TERMINAL_RESEND_REQUEST = 0x0005, "0x0005";
    /// 0x0100 terminal registration.
    REGISTER = 0x0100, "0x0100";
    /// 0x0102 terminal authentication.
    AUTHENTICATE = 0x0102, "0x0102";
    /// 0x0104 query parameters answer.
    QUERY_PARAMS_ANSWER = 0x0104, "0x0104";
    /// 0x0107 terminal attributes answer.
    ATTRIBUTES = 0x0107, "0x0107";
    /// 0x0108 upgrade result.
    UPGRADE_RESULT = 0x0108, "0x0108";
    /// 0x0200 location report.
    LOCATION = 0x0200, "0x0200";
    /// 0x0201 location query answer.
    LOCATION_ANSWER = 0x0201, "0x0201";
    /// 0x0301 event report.
    EVENT_REPORT = 0x0301, "0x0301";
    /// 0x0302 question answer.
    QUESTION_ANSWER = 0x0302, "0x0302";
    /// 0x0303 information demand.
    INFO_DEMAND = 0x0303, "0x0303";
    /// 0x0500 vehicle control answer.
    VEHICLE_CONTROL_ANSWER = 0x0500, "0x0500";
    /// 0x0608 area query answer.
    AREA_QUERY_ANSWER = 0x0608, "0x0608";
    /// 0x0700 recorder data upload.
    RECORDER_UPLOAD = 0x0700, "0x0700";
    /// 0x0701 waybill.
    WAYBILL = 0x0701, "0x0701";
    /// 0x0702 driver identity.
    DRIVER_IDENTITY = 0x0702, "0x0702";
    /// 0x0704 location batch.
    LOCATION_BATCH = 0x0704, "0x0704";
    /// 0x0705 CAN data.
    CAN_DATA = 0x0705, "0x0705";
    /// 0x0800 multimedia event.
    MEDIA_EVENT = 0x0800, "0x0800";
    /// 0x0801 multimedia upload.
    MEDIA_UPLOAD = 0x0801, "0x0801";
    /// 0x0802 stored multimedia search answer.
    MEDIA_SEARCH_ANSWER = 0x0802, "0x0802";
    /// 0x0805 camera shot answer.
    SHOT_ANSWER = 0x0805, "0x0805";
    /// 0x0900 uplink transparent data.
    UPLINK_TRANSPARENT = 0x0900, "0x0900";
    /// 0x0901 compressed upload.
    COMPRESSED_UPLOAD = 0x0901, "0x0901";
    /// 0x0A00 terminal RSA public key.
    RSA_PUBLIC_KEY = 0x0A00, "0x0a00";
    /// 0x8001 platform general response.
    PLATFORM_RESPONSE = 0x8001, "0x8001";
    /// 0x8003 platform resend request.
    RESEND_REQUEST = 0x8003, "0x8003";
    /// 0x8004 server time (2019).
    SERVER_TIME = 0x8004, "0x8004";
    /// 0x8100 registration response.
    REGISTER_RESPONSE = 0x8100, "0x8100";
    /// 0x8103 set terminal parameters.
    SET_PARAMS = 0x8103, "0x8103";
    /// 0x8104 query all terminal parameters.
    QUERY_ALL_PARAMS = 0x8104, "0x8104";
    /// 0x8105 terminal control.
    TERMINAL_CONTROL = 0x8105, "0x8105";
    /// 0x8106 query the given terminal parameters.
    QUERY_PARAMS = 0x8106, "0x8106";
    /// 0x8107 query terminal attributes.
    QUERY_ATTRIBUTES = 0x8107, "0x8107";
    /// 0x8108 upgrade package.
    UPGRADE_PACKAGE = 0x8108, "0x8108";
    /// 0x8201 location query.
    QUERY_LOCATION = 0x8201, "0x8201";
    /// 0x8202 temporary location tracking.
    TEMPORARY_TRACKING = 0x8202, "0x8202";
    /// 0x8203 manual alarm confirmation.
    ALARM_CONFIRM = 0x8203, "0x8203";
    /// 0x8204 link check.
    LINK_CHECK = 0x8204, "0x8204";
    /// 0x8300 text message.
    TEXT = 0x8300, "0x8300";
    /// 0x8301 event setting.
    EVENT_SETTING = 0x8301, "0x8301";
    /// 0x8302 question.
    QUESTION = 0x8302, "0x8302";
    /// 0x8303 information menu.
    INFO_MENU = 0x8303, "0x8303";
    /// 0x8304 information service.
    INFO_SERVICE = 0x8304, "0x8304";
    /// 0x8400 call back.
    CALL_BACK = 0x8400, "0x8400";
    /// 0x8401 phone book.
    PHONE_BOOK = 0x8401, "0x8401";
    /// 0x8500 vehicle control.
    VEHICLE_CONTROL = 0x8500, "0x8500";
    /// 0x8600 set circle areas.
    SET_CIRCLE_AREAS = 0x8600, "0x8600";
    /// 0x8601 delete circle areas.
    DELETE_CIRCLE_AREAS = 0x8601, "0x8601";
    /// 0x8602 set rectangle areas.
    SET_RECTANGLE_AREAS = 0x8602, "0x8602";
    /// 0x8603 delete rectangle areas.
    DELETE_RECTANGLE_AREAS = 0x8603, "0x8603";
    /// 0x8604 set polygon area.
    SET_POLYGON_AREA = 0x8604, "0x8604";
    /// 0x8605 delete polygon areas.
    DELETE_POLYGON_AREAS = 0x8605, "0x8605";
    /// 0x8606 set route.
    SET_ROUTE = 0x8606, "0x8606";
    /// 0x8607 delete routes.
    DELETE_ROUTES = 0x8607, "0x8607";
    /// 0x8608 query areas and routes.
    QUERY_AREAS = 0x8608, "0x8608";
    /// 0x8700 recorder data collection.
    RECORDER_COLLECT = 0x8700, "0x8700";
    /// 0x8701 recorder parameters download.
    RECORDER_PARAMS_DOWNLOAD = 0x8701, "0x8701";
    /// 0x8702 driver identity request.
    DRIVER_IDENTITY_REQUEST = 0x8702, "0x8702";
    /// 0x8800 multimedia upload answer.
    MEDIA_UPLOAD_ANSWER = 0x8800, "0x8800";
    /// 0x8801 camera shot command.
    CAMERA_SHOT = 0x8801, "0x8801";
    /// 0x8802 stored multimedia search.
    STORED_MEDIA_SEARCH = 0x8802, "0x8802";
    /// 0x8803 stored multimedia upload.
    STORED_MEDIA_UPLOAD = 0x8803, "0x8803";
    /// 0x8804 record audio.
    RECORD_AUDIO = 0x8804, "0x8804";
    /// 0x8805 single multimedia upload.
    SINGLE_MEDIA_UPLOAD = 0x8805, "0x8805";
    /// 0x8900 downlink transparent data.
    DOWNLINK_TRANSPARENT = 0x8900, "0x8900";
    /// 0x8A00 platform RSA public key.
    PLATFORM_RSA_KEY = 0x8A00, "0x8a00";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_is_its_id_in_lowercase_hex() {
        for &id in KNOWN {
            assert_eq!(label(id), format!("0x{id:04x}"));
        }
        assert_eq!(label(0x0F0F), "other");
    }

    #[test]
    fn the_table_lists_each_id_once() {
        let mut ids = KNOWN.to_vec();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), KNOWN.len());
    }
}
