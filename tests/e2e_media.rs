//! Black-box tests of multimedia uploads: the real `vgate` binary, Mosquitto, and JT/T 808
//! terminals uploading photos (0x0801) in packages, some of them lost and sent again when the
//! gateway asks (0x8800 with the missing list). The file lands whole in the media directory
//! (its packages went to disk as they came, not to memory), its `media` event carries its
//! size and SHA-256, and the terminal gets 0x8800 with nothing to send again.

mod support;

use std::time::Duration;

use jt808::Version;
use sha2::Digest;
use support::{Mosquitto, Subscriber, Vgate, VgateOptions};

const WAIT: Duration = Duration::from_secs(20);

/// The resident set of process `pid`, KiB (Linux).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_3_mb_photo_with_lost_packages_arrives_whole_in_the_media_directory() {
    let Some(m) = Mosquitto::start() else { return };
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        // Ask for missing packages after one quiet second (default 5).
        config_toml: Some("[jt808]\nsubpackage_quiet_s = 1\n".into()),
        ..Default::default()
    });
    let phone = "013800138090";
    let mut sub = Subscriber::connect(m.port, &[&format!("vgate/v1/{phone}/media")]).await;
    let mut t = support::online_terminal(vgate.addr("jt808"), phone, Version::V2013).await;

    // 3,000,000 bytes in 1,000-byte packages (3,001 of them: the 36-byte media header
    // first), the second, two in the middle and the last one lost on the first pass.
    let photo: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let last = (photo.len() + 36).div_ceil(1000) as u16;
    let pid = vgate.child.as_ref().expect("running").id();
    let rss_before = rss_kib(pid);
    let lost = [2, 777, 1500, last];
    let answer = tokio::time::timeout(WAIT, t.upload_media(4242, &photo, 1000, &lost))
        .await
        .expect("answered in time")
        .expect("0x8800");
    assert_eq!(answer.media_id, 4242);
    assert!(answer.retransmit_ids.is_empty());
    let grew = rss_kib(pid).saturating_sub(rss_before);
    eprintln!("vgate RSS grew by {grew} KiB over a 3 MB upload");
    // Reassembled in memory the file alone would be 3 MB; its packages went to disk.
    assert!(grew < 2048, "vgate grew by {grew} KiB");

    let ev = sub.next_on("/media", WAIT).await;
    assert_eq!(ev.json["type"], "media");
    assert_eq!(ev.json["vehicle_id"], phone);
    let d = &ev.json["data"];
    assert_eq!(d["media_id"], 4242);
    assert_eq!(d["media_type"], "image");
    assert_eq!(d["format"], "jpeg");
    assert_eq!(d["size"], 3_000_000);
    let sha = hex::encode(sha2::Sha256::digest(&photo));
    assert_eq!(d["sha256"], sha.as_str());
    assert!(d["location"]["latitude"].is_f64());
    let key = d["key"].as_str().expect("key");
    let stored = std::fs::read(vgate.data_dir.path().join("media").join(key)).expect("file");
    assert_eq!(stored.len(), photo.len());
    assert!(stored == photo, "the stored file is the photo");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_terminals_uploading_at_once_each_get_their_own_file() {
    let Some(m) = Mosquitto::start() else { return };
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        ..Default::default()
    });
    let mut sub = Subscriber::connect(m.port, &["vgate/v1/+/media"]).await;
    let addr = vgate.addr("jt808");
    let tasks: Vec<_> = (0..100u32)
        .map(|n| {
            tokio::spawn(async move {
                let phone = format!("013800139{n:03}");
                let mut t = support::online_terminal(addr, &phone, Version::V2013).await;
                let photo: Vec<u8> = (0..100_000u32).map(|i| (i ^ n) as u8).collect();
                let a = t.upload_media(n, &photo, 1000, &[]).await.expect("0x8800");
                assert!(a.retransmit_ids.is_empty());
                (phone, hex::encode(sha2::Sha256::digest(&photo)))
            })
        })
        .collect();
    let mut want = std::collections::HashMap::new();
    for t in tasks {
        let (phone, sha) = tokio::time::timeout(WAIT, t)
            .await
            .expect("in time")
            .unwrap();
        want.insert(phone, sha);
    }
    for _ in 0..100 {
        let ev = sub.next_on("/media", WAIT).await;
        let phone = ev.json["vehicle_id"].as_str().unwrap().to_owned();
        let sha = want.remove(&phone).expect("one event per terminal");
        assert_eq!(ev.json["data"]["sha256"], sha.as_str());
        let key = ev.json["data"]["key"].as_str().unwrap();
        let file = std::fs::read(vgate.data_dir.path().join("media").join(key)).unwrap();
        assert_eq!(hex::encode(sha2::Sha256::digest(&file)), sha);
    }
    assert!(want.is_empty());
    let parts = vgate.data_dir.path().join("media/.parts");
    assert_eq!(
        std::fs::read_dir(parts).map_or(0, |d| d.count()),
        0,
        "no parts left"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn simulated_terminals_upload_photos_with_photo_every() {
    let Some(m) = Mosquitto::start() else { return };
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        ..Default::default()
    });
    let mut sub = Subscriber::connect(m.port, &["vgate/v1/+/media"]).await;
    let target = vgate.addr("jt808").to_string();
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_vgate"))
            .args(["simulate", "--protocol", "jt808", "--vehicles", "2"])
            .args(["--rate", "10", "--duration", "2s"])
            .args(["--photo-every", "5", "--photo-kb", "8"])
            .args(["--target", &target])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run the simulator")
    })
    .await
    .unwrap();
    assert!(status.success(), "{status}");
    let got = sub.drain(Duration::from_secs(1)).await;
    // 20 reports a vehicle: a photo after the 5th, 10th, 15th and 20th.
    assert!(got.len() >= 4, "{got:?}");
    for ev in &got {
        assert_eq!(ev.json["data"]["size"], 8192, "{}", ev.json);
        assert_eq!(ev.json["data"]["format"], "jpeg");
    }
}

/// The S3 store against a local S3 emulator (moto): an 8.5 MB video goes up as a multipart
/// upload, a photo as one PUT, both read back whole; the event's `url` names the object.
#[tokio::test(flavor = "multi_thread")]
async fn uploads_land_in_an_s3_bucket_whole() {
    use object_store::ObjectStore;
    let Some(m) = Mosquitto::start() else { return };
    let Some(s3) = test_support::s3::S3Emulator::start() else {
        return;
    };
    s3.create_bucket("fleet-media");
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        config_toml: Some(format!(
            "[jt808]\nsubpackage_quiet_s = 1\n\n[media]\nstore = \"s3\"\n\n[media.s3]\nbucket = \"fleet-media\"\nregion = \"us-east-1\"\nendpoint = \"{}\"\nallow_http = true\nprefix = \"vgate/\"\naccess_key_id = \"test\"\nsecret_access_key = \"test\"\n",
            s3.endpoint()
        )),
        ..Default::default()
    });
    let phone = "013800138091";
    let mut sub = Subscriber::connect(m.port, &[&format!("vgate/v1/{phone}/media")]).await;
    let mut t = support::online_terminal(vgate.addr("jt808"), phone, Version::V2013).await;
    let bucket = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name("fleet-media")
        .with_region("us-east-1")
        .with_endpoint(s3.endpoint())
        .with_allow_http(true)
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .build()
        .expect("client");
    tokio::time::timeout(
        WAIT,
        bucket.put(
            &object_store::path::Path::from("probe"),
            object_store::PutPayload::from_static(b"probe"),
        ),
    )
    .await
    .expect("the emulator answers in time")
    .expect("the emulator takes a PUT");
    for (media_id, len) in [(1u32, 200_000usize), (2, 8_500_000)] {
        let data: Vec<u8> = (0..len as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        // 8,500 packages: slow in a debug build on a busy machine.
        let wait = Duration::from_secs(120);
        let answer = tokio::time::timeout(wait, t.upload_media(media_id, &data, 1000, &[3]))
            .await
            .expect("answered in time")
            .expect("0x8800");
        assert!(answer.retransmit_ids.is_empty());
        let ev = sub.next_on("/media", WAIT).await;
        let d = &ev.json["data"];
        let key = d["key"].as_str().expect("key").to_owned();
        assert!(key.starts_with(&format!("vgate/{phone}/")), "{key}");
        assert_eq!(d["url"], format!("s3://fleet-media/{key}").as_str());
        assert_eq!(d["size"], len);
        let stored = bucket
            .get(&object_store::path::Path::from(key.as_str()))
            .await
            .expect("object")
            .bytes()
            .await
            .expect("bytes");
        assert_eq!(stored.len(), len);
        assert!(stored[..] == data[..], "the object is the file");
        assert_eq!(
            d["sha256"],
            hex::encode(sha2::Sha256::digest(&data)).as_str()
        );
    }
}
