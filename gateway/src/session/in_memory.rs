//! Whole sessions in memory: the driver with each protocol over `tokio::io::duplex`, events
//! into `Sink::Memory`, no socket and no broker (quinn's `tests/util.rs` `Pair`). The
//! protocol crates speak as the vehicle, so these tests check the order of things (login,
//! answers, events, presence) without the binary.

use std::sync::Arc;
use std::time::Duration;

use codecs::event::PresenceReason;
use codecs::Data;
use futures::StreamExt;
use tokio::io::{AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio_util::codec::{Decoder, FramedRead};

use super::{driver, Limits, Listener, Protocol, Shared};
use crate::config::AuthConfig;
use crate::sink::{Published, Sink};

/// A session of protocol `P` on one end of a duplex pipe; the test holds the other end and
/// what the session published.
struct Pair {
    vehicle: DuplexStream,
    /// The command queue the session delivers from.
    queue: Arc<dyn crate::queue::CommandQueue>,
    published: mpsc::Receiver<Published>,
    session: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn pair<P>(name: &'static str, cfg: P::Config) -> Pair
where
    P: Protocol<WriteHalf<DuplexStream>>,
{
    pair_with::<P>(name, cfg, crate::commands::CommandsConfig::default()).await
}

/// [`pair`] with the command settings `commands_cfg`.
async fn pair_with<P>(
    name: &'static str,
    cfg: P::Config,
    commands_cfg: crate::commands::CommandsConfig,
) -> Pair
where
    P: Protocol<WriteHalf<DuplexStream>>,
{
    let (l, queue, published, dir) = listener::<P::Config>(name, cfg, commands_cfg).await;
    let (vehicle, gateway) = tokio::io::duplex(4096);
    let peer = "127.0.0.1:40000".parse().expect("peer");
    let session = tokio::spawn(driver::run::<_, P>(gateway, peer, l));
    Pair {
        vehicle,
        queue,
        published,
        session,
        _dir: dir,
    }
}

/// A listener named `name` with its configuration `cfg`, publishing into memory: it, its
/// command queue, what it publishes, and the directory its stores are in.
async fn listener<C>(
    name: &'static str,
    cfg: C,
    commands_cfg: crate::commands::CommandsConfig,
) -> (
    Arc<Listener<C>>,
    Arc<dyn crate::queue::CommandQueue>,
    mpsc::Receiver<Published>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (tx, published) = mpsc::channel(64);
    let sink = Sink::Memory(tx);
    let node: Arc<str> = Arc::from("test-node");
    let (seen_tx, _seen_rx) = mpsc::channel(16);
    let queue: Arc<dyn crate::queue::CommandQueue> = Arc::new(crate::queue::MemoryQueue::new(
        crate::queue::QueueLimits::default(),
    ));
    let commands = Arc::new(crate::commands::Commands {
        cfg: commands_cfg,
        settle: crate::commands::settle::Settler::spawn(
            queue.clone(),
            Some(crate::commands::ResultPublisher::new(
                node.clone(),
                sink.clone(),
            )),
        ),
        queue: queue.clone(),
        sink: sink.clone(),
        node: node.clone(),
        seen_tx,
        packages: Arc::new(
            crate::packages::Packages::open(dir.path().join("packages"), Default::default())
                .expect("package store"),
        ),
        upgrades: Default::default(),
    });
    let shared = Shared {
        node,
        sink,
        registry: Arc::new(crate::registry::LocalRegistry::new()),
        alarms: Arc::new(crate::alarms::LocalAlarms::new()),
        media: Arc::new(crate::media::DirStore::new(dir.path().join("media"))),
        commands,
        vehicle_keys: Arc::new(crate::vehicle_keys::VehicleKeys::new(
            Default::default(),
            dir.path(),
        )),
        shutdown: tokio_util::sync::CancellationToken::new(),
    };
    let auth = crate::auth::Authenticator::new(name, &AuthConfig::default(), dir.path())
        .await
        .expect("open authenticator");
    let l = Arc::new(Listener {
        name,
        cfg,
        auth,
        shared,
        device_offset_secs: codecs::time::BEIJING_OFFSET_SECS,
        limits: Limits::new(30, 60, 0, 0.0),
        span: super::session_span(name),
        front: Arc::new(crate::front::FrontDoor::new(
            name,
            &crate::front::FrontConfig {
                max_connections: 0,
                max_connections_per_address: 0,
                proxy_protocol: false,
                reuse_port: false,
                max_failed_logins: 0,
                failed_login_window: std::time::Duration::from_secs(60),
                failed_login_ban: std::time::Duration::from_secs(60),
            },
            None,
        )),
    });
    (l, queue, published, dir)
}

impl Pair {
    /// The next published event, waiting at most a few seconds.
    async fn next(&mut self) -> Published {
        tokio::time::timeout(Duration::from_secs(5), self.published.recv())
            .await
            .expect("an event in time")
            .expect("the sink is open")
    }

    /// The vehicle's end, split: the gateway's answers read with `codec`, and the writer.
    /// (Drop both before [`Pair::hang_up`].)
    fn speak<D: Decoder>(
        &mut self,
        codec: D,
    ) -> (
        FramedRead<ReadHalf<DuplexStream>, D>,
        WriteHalf<DuplexStream>,
    ) {
        let end = std::mem::replace(&mut self.vehicle, tokio::io::duplex(1).0);
        let (rd, wr) = tokio::io::split(end);
        (FramedRead::new(rd, codec), wr)
    }

    /// The first presence published (after the vehicle's own events).
    async fn presence(&mut self) -> codecs::event::Presence {
        for _ in 0..8 {
            if let Data::Status(s) = self.next().await.event.data {
                return s;
            }
        }
        panic!("no presence published")
    }

    /// The vehicle hangs up; the session ends with its vehicle offline (reason closed).
    async fn hang_up(self) {
        let Pair {
            vehicle,
            mut published,
            session,
            _dir,
            ..
        } = self;
        drop(vehicle);
        let offline = loop {
            let p = tokio::time::timeout(Duration::from_secs(5), published.recv())
                .await
                .expect("an event in time")
                .expect("the sink is open");
            if let Data::Status(s) = p.event.data {
                break s;
            }
        };
        assert!(!offline.online);
        assert_eq!(offline.reason, PresenceReason::Closed);
        tokio::time::timeout(Duration::from_secs(5), session)
            .await
            .expect("the session ends")
            .expect("no panic");
    }
}

/// The next frame the gateway wrote, waiting at most a few seconds.
async fn answer<D, F, B>(r: &mut FramedRead<ReadHalf<DuplexStream>, D>) -> F
where
    D: Decoder<Item = Result<F, B>>,
    D::Error: std::fmt::Debug,
    B: std::fmt::Debug,
{
    tokio::time::timeout(Duration::from_secs(5), r.next())
        .await
        .expect("an answer in time")
        .expect("a frame")
        .expect("readable")
        .expect("well formed")
}

fn jt808_frame(msg: &jt808::Message, serial: u16) -> Vec<u8> {
    let version = jt808::Version::V2013;
    let header = jt808::Header::to_terminal(msg.msg_id(), version, "013800138000".into(), serial);
    let body = msg.encode_body(version).expect("encode");
    let mut out = Vec::new();
    for f in jt808::subpackage::split(&header, &body, 1000) {
        f.write_wire(&mut out);
    }
    out
}

/// A JT/T 808 session with the command settings `commands_cfg`, and the terminal's end.
async fn jt808_pair(
    commands_cfg: crate::commands::CommandsConfig,
) -> (
    Pair,
    FramedRead<ReadHalf<DuplexStream>, jt808::Codec>,
    WriteHalf<DuplexStream>,
) {
    type P = super::jt808::Session<WriteHalf<DuplexStream>>;
    let mut p = pair_with::<P>("jt808", crate::config::Jt808Config::default(), commands_cfg).await;
    let (answers, wr) = p.speak(jt808::Codec::new(jt808::CodecConfig::default()));
    (p, answers, wr)
}

/// The terminal authenticates (the default configuration's token) in the frame `serial`.
async fn jt808_authenticate(wr: &mut WriteHalf<DuplexStream>, serial: u16) {
    let auth = jt808::msg::Message::Authenticate(jt808::msg::Authenticate {
        token: "secret".into(),
        imei: None,
        software_version: None,
    });
    wr.write_all(&jt808_frame(&auth, serial))
        .await
        .expect("write");
}

/// A location report in Shenzhen with the alarm bits `alarm`.
fn jt808_report(alarm: u32) -> jt808::msg::LocationReport {
    jt808::msg::LocationReport {
        alarm,
        status: 0b10,
        latitude: 22_543_096,
        longitude: 114_057_865,
        altitude: 0,
        speed: 0,
        heading: 0,
        time: [0x24, 0x01, 0x01, 0x08, 0x00, 0x00],
        items: Default::default(),
        tail: Vec::new(),
    }
}

#[tokio::test]
async fn a_jt808_terminal_authenticates_and_its_heartbeat_is_answered_in_memory() {
    use jt808::msg::{self, Message};
    let (mut p, mut answers, mut wr) = jt808_pair(Default::default()).await;
    let decode = |f: jt808::Frame| Message::decode(&f.header, &f.body).expect("decodes");

    jt808_authenticate(&mut wr, 1).await;
    let Message::PlatformResponse(r) = decode(answer(&mut answers).await) else {
        panic!("0x8001 expected")
    };
    assert_eq!((r.reply_id, r.reply_serial), (msg::id::AUTHENTICATE, 1));
    assert_eq!(r.result, msg::response::result::OK);

    let heartbeat = Message::Heartbeat { extra: Vec::new() };
    wr.write_all(&jt808_frame(&heartbeat, 2))
        .await
        .expect("write");
    let Message::PlatformResponse(r) = decode(answer(&mut answers).await) else {
        panic!("0x8001 expected")
    };
    assert_eq!(
        (r.reply_id, r.reply_serial, r.result),
        (msg::id::HEARTBEAT, 2, 0)
    );

    // Published: the login lifecycle event, then the vehicle online.
    let online = p.presence().await;
    assert!(online.online);
    assert_eq!(online.reason, PresenceReason::Login);

    drop((answers, wr));
    p.hang_up().await;
}

#[tokio::test]
async fn packages_before_authentication_are_answered_failure_and_not_reassembled() {
    use jt808::msg::{self, Message};
    let (mut p, mut answers, mut wr) = jt808_pair(Default::default()).await;
    let decode = |f: jt808::Frame| Message::decode(&f.header, &f.body).expect("decodes");
    // Transparent data (0x0900) of 2,500 bytes: three packages of at most 1,000.
    let long = Message::Unknown {
        msg_id: 0x0900,
        body: vec![0x41; 2500],
    };
    wr.write_all(&jt808_frame(&long, 10)).await.expect("write");
    for _ in 0..3 {
        let Message::PlatformResponse(r) = decode(answer(&mut answers).await) else {
            panic!("0x8001 expected")
        };
        assert_eq!(r.reply_id, 0x0900);
        assert_eq!(r.result, msg::response::result::FAILURE, "each package");
    }
    // Authenticated, the same message is reassembled and published.
    jt808_authenticate(&mut wr, 20).await;
    let Message::PlatformResponse(r) = decode(answer(&mut answers).await) else {
        panic!("0x8001 expected")
    };
    assert_eq!(r.result, msg::response::result::OK);
    wr.write_all(&jt808_frame(&long, 30)).await.expect("write");
    let mut passthrough = false;
    for _ in 0..6 {
        if matches!(p.next().await.event.data, Data::Passthrough(_)) {
            passthrough = true;
            break;
        }
    }
    assert!(passthrough, "the reassembled message is published");
}

#[tokio::test]
async fn a_gbt32960_vehicle_logs_in_and_its_heartbeat_is_answered_in_memory() {
    use gbt32960::msg::{id, EmptyBody, Login, LoginBatteries, Message};
    type P = super::gbt32960::Session<WriteHalf<DuplexStream>>;
    let mut p = pair::<P>("gbt32960", crate::config::Gbt32960Config::default()).await;
    let (mut answers, mut wr) = p.speak(gbt32960::Codec::new(gbt32960::CodecConfig::default()));
    let vin = "LSVNV2182E2100001";
    let now = codecs::time::LocalTime::from_utc(chrono::Utc::now(), 8 * 3600);
    let edition = gbt32960::Edition::V2016;

    let login = Message::VehicleLogin(Login {
        time: now,
        seq: 1,
        iccid: "89860000000000000001".into(),
        batteries: LoginBatteries::Ress2016 {
            ress_code_len: 0,
            ress_codes: Vec::new(),
        },
    });
    let frame = login.to_frame(edition, vin).expect("encode");
    wr.write_all(&frame.to_wire()).await.expect("write");
    let reply = answer(&mut answers).await;
    assert_eq!(reply.command, id::VEHICLE_LOGIN);
    assert_eq!(
        gbt32960::ResponseFlag::from_byte(reply.response),
        Some(gbt32960::ResponseFlag::Success)
    );

    let heartbeat = Message::Heartbeat(EmptyBody::default());
    let frame = heartbeat.to_frame(edition, vin).expect("encode");
    wr.write_all(&frame.to_wire()).await.expect("write");
    let reply = answer(&mut answers).await;
    assert_eq!(reply.command, id::HEARTBEAT);

    assert!(p.presence().await.online);

    drop((answers, wr));
    p.hang_up().await;
}

#[tokio::test]
async fn a_raw_tracker_names_itself_and_its_lines_are_published_in_memory() {
    type P = super::raw::Session<WriteHalf<DuplexStream>>;
    let cfg: crate::config::RawListenerConfig = toml::from_str(
        r#"
        name = "json-trackers"
        listen = "127.0.0.1:0"
        payload = "json"
        ack = { mode = "none" }
        [framing]
        type = "delimited"
        delimiter = "\n"
        max_frame_len = 8192
        [identity]
        mode = "first_frame"
        encoding = "ascii"
        pattern = { charset = "vin", min_len = 17, max_len = 17 }
        "#,
    )
    .expect("raw listener config");
    let mut p = pair::<P>("json-trackers", cfg).await;
    p.vehicle
        .write_all(b"LSVNV2182E2100001\n{\"soc\": 80}\n")
        .await
        .expect("write");
    let mut passthrough = None;
    let mut online = false;
    for _ in 0..4 {
        match p.next().await.event.data {
            Data::Status(s) => online = s.online,
            Data::Passthrough(v) => {
                passthrough = Some(v.0);
                break;
            }
            _ => {}
        }
    }
    assert!(online, "online before its data");
    let data = passthrough.expect("the line published");
    assert_eq!(data.get("soc"), Some(&serde_json::json!(80)), "{data}");
    p.hang_up().await;
}

/// The `(name, state)` of every alarm event published so far (the others are skipped).
fn alarms_published(p: &mut Pair) -> Vec<(String, codecs::event::AlarmState)> {
    let mut out = Vec::new();
    while let Ok(e) = p.published.try_recv() {
        if let Data::Alarm(a) = e.event.data {
            out.push((a.name.to_string(), a.state));
        }
    }
    out
}

#[tokio::test]
async fn jt808_alarms_are_raised_once_cleared_once_and_never_by_a_reissue_in_memory() {
    use codecs::event::AlarmState::{Cleared, Raised};
    use jt808::msg::Message;
    let (mut p, mut answers, mut wr) = jt808_pair(Default::default()).await;
    jt808_authenticate(&mut wr, 1).await;
    let _ = answer(&mut answers).await;
    assert!(p.presence().await.online);
    let report = jt808_report;
    let mut serial = 2;
    let mut send = async |m: Message| {
        wr.write_all(&jt808_frame(&m, serial)).await.expect("write");
        serial += 1;
        let _ = answer(&mut answers).await;
    };
    send(Message::Location(report(1))).await;
    assert_eq!(alarms_published(&mut p), [("emergency".into(), Raised)]);
    send(Message::Location(report(1))).await;
    assert_eq!(alarms_published(&mut p), []);
    send(Message::LocationBatch {
        batch_type: 1,
        items: vec![report(0), report(1 << 29)],
    })
    .await;
    assert_eq!(
        alarms_published(&mut p),
        [],
        "a reissue neither clears nor raises"
    );
    send(Message::Location(report(0))).await;
    assert_eq!(alarms_published(&mut p), [("emergency".into(), Cleared)]);
    drop((answers, wr));
    p.hang_up().await;
}

#[tokio::test]
async fn jt808_photos_subpackaged_or_not_are_stored_whole_published_and_answered_0x8800_in_memory()
{
    use jt808::msg::{self, Message};
    let (mut p, mut answers, mut wr) = jt808_pair(Default::default()).await;
    let decode = |f: jt808::Frame| Message::decode(&f.header, &f.body).expect("decodes");
    jt808_authenticate(&mut wr, 1).await;
    let _ = answer(&mut answers).await;
    assert!(p.presence().await.online);

    // 5,000 bytes: six packages of at most 1,000 body bytes; then 500 bytes in one frame.
    for (media_id, size, serial) in [(77u32, 5000u32, 2u16), (78, 500, 20)] {
        let photo: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        let upload = Message::MediaUpload(msg::MediaUpload {
            media_id,
            media_type: 0,
            format: 0,
            event: 1,
            channel: 1,
            location: jt808_report(0),
            data: photo.clone(),
        });
        wr.write_all(&jt808_frame(&upload, serial))
            .await
            .expect("write");
        let Message::MediaUploadAnswer(a) = decode(answer(&mut answers).await) else {
            panic!("0x8800 expected")
        };
        assert_eq!(a.media_id, media_id);
        assert!(a.retransmit_ids.is_empty());
        let media = loop {
            if let Data::Media(m) = p.next().await.event.data {
                break m;
            }
        };
        assert_eq!(media.media_id, media_id);
        assert_eq!(media.format, "jpeg");
        assert_eq!(media.stored.size, u64::from(size));
        let path = p._dir.path().join("media").join(&media.stored.key);
        assert_eq!(std::fs::read(path).expect("stored file"), photo);
        use sha2::Digest;
        assert_eq!(
            media.stored.sha256,
            hex::encode(sha2::Sha256::digest(&photo))
        );
    }
    let parts = p._dir.path().join("media/.parts");
    assert_eq!(
        std::fs::read_dir(parts).map_or(0, |d| d.count()),
        0,
        "no parts left"
    );
    drop((answers, wr));
    p.hang_up().await;
}

/// The (command id, status) of every command result published until `until` is seen.
async fn results_until(
    p: &mut Pair,
    until: (&str, codecs::event::CmdStatus),
) -> Vec<(String, codecs::event::CmdStatus)> {
    let mut seen = Vec::new();
    for _ in 0..64 {
        if let Data::CmdResult(r) = p.next().await.event.data {
            seen.push((r.id.clone(), r.status));
            if (r.id.as_str(), r.status) == until {
                return seen;
            }
        }
    }
    panic!("no {until:?} among {seen:?}")
}

#[tokio::test]
async fn answers_of_one_read_are_settled_together_and_the_window_filled_again_in_memory() {
    use codecs::event::CmdStatus::{Acked, Sent};
    use jt808::msg::{self, Message};
    let commands_cfg = crate::commands::CommandsConfig {
        window: 2,
        ..Default::default()
    };
    let (mut p, mut answers, mut wr) = jt808_pair(commands_cfg).await;
    let vehicle = "013800138000";
    let queued: Vec<crate::queue::QueuedCommand> = ["c1", "c2", "c3"]
        .iter()
        .enumerate()
        .map(|(i, id)| crate::queue::QueuedCommand {
            vehicle: vehicle.into(),
            id: (*id).into(),
            priority: 5,
            enqueued_at_ms: i as i64,
            expires_at_ms: i64::MAX,
            command: serde_json::json!({"id": id, "type": "text", "params": {"text": id}}).into(),
            response_topic: None,
            correlation_data: None,
            attempts: 0,
        })
        .collect();
    p.queue.enqueue_many(queued).expect("queued");
    let decode = |f: jt808::Frame| {
        (
            f.header.serial,
            Message::decode(&f.header, &f.body).expect("decodes"),
        )
    };

    jt808_authenticate(&mut wr, 1).await;
    assert!(matches!(
        decode(answer(&mut answers).await).1,
        Message::PlatformResponse(_)
    ));
    // The window's two commands, best (oldest) first.
    let mut texts = Vec::new();
    for _ in 0..2 {
        let (serial, m) = decode(answer(&mut answers).await);
        let Message::Text(t) = m else {
            panic!("0x8300 expected, got {m:?}")
        };
        texts.push((serial, t.text));
    }
    assert_eq!(
        texts.iter().map(|t| t.1.as_str()).collect::<Vec<_>>(),
        ["c1", "c2"]
    );

    // Both answered in one write: one read batch.
    let mut both = Vec::new();
    for (i, (serial, _)) in texts.iter().enumerate() {
        let ok = Message::TerminalResponse(msg::GeneralResponse {
            reply_serial: *serial,
            reply_id: 0x8300,
            result: 0,
        });
        both.extend(jt808_frame(&ok, 10 + i as u16));
    }
    wr.write_all(&both).await.expect("write");
    // The third takes their place, under the serial its frame carries.
    let (serial3, m) = decode(answer(&mut answers).await);
    let Message::Text(t) = m else {
        panic!("0x8300 expected, got {m:?}")
    };
    assert_eq!(t.text, "c3");
    let ok = Message::TerminalResponse(msg::GeneralResponse {
        reply_serial: serial3,
        reply_id: 0x8300,
        result: 0,
    });
    wr.write_all(&jt808_frame(&ok, 12)).await.expect("write");

    let seen = results_until(&mut p, ("c3", Acked)).await;
    let of = |id: &str| {
        seen.iter()
            .filter(|r| r.0 == id)
            .map(|r| r.1)
            .collect::<Vec<_>>()
    };
    for id in ["c1", "c2", "c3"] {
        assert_eq!(of(id), [Sent, Acked], "{id}: sent, then acked, once each");
    }
    assert!(
        p.queue.pending(vehicle, 0, 10).expect("read").is_empty(),
        "nothing left queued"
    );
    drop((answers, wr));
    p.hang_up().await;
}

/// The size of a connection's task with protocol `P` (its future, before it runs).
async fn task_size<P>(name: &'static str, cfg: P::Config) -> usize
where
    P: Protocol<WriteHalf<DuplexStream>>,
{
    let (l, ..) = listener(name, cfg, Default::default()).await;
    let (_vehicle, gateway) = tokio::io::duplex(64);
    let peer = "127.0.0.1:40000".parse().expect("peer");
    std::mem::size_of_val(&driver::run::<_, P>(gateway, peer, l))
}

/// What every connection holds, idle or not: its task (issue 19; docs/PERFORMANCE.md,
/// "Idle connections"). Prints the sizes and their parts
/// (`cargo test -p gateway --lib idle_connection -- --nocapture`).
#[tokio::test]
async fn an_idle_connections_task_stays_small() {
    use std::mem::size_of_val;
    type W = WriteHalf<DuplexStream>;
    let task = task_size::<super::jt808::Session<W>>("jt808", Default::default()).await;
    let gbt = task_size::<super::gbt32960::Session<W>>("gbt32960", Default::default()).await;
    println!("connection task: jt808 {task} bytes, gbt32960 {gbt} bytes");
    {
        use std::mem::size_of;
        type R = tokio::io::ReadHalf<DuplexStream>;
        let token = tokio_util::sync::CancellationToken::new();
        println!(
            "of which: session state {} (its Conn {}), reader {}, timer {}, shutdown wait {}, rate limit {}",
            size_of::<super::jt808::Session<W>>(),
            size_of::<super::Conn<W>>(),
            size_of::<super::reader::Frames<R, super::driver::Gate<jt808::Codec>>>(),
            size_of::<tokio::time::Sleep>(),
            size_of_val(&token.cancelled()),
            size_of::<super::RateLimit>(),
        );
    }
    // 1,256 bytes (JT/T 808, debug build) when this was written: a state that grows it,
    // for every connection, should be boxed (see the driver's module docs).
    assert!(task <= 1_450, "{task}");
}
