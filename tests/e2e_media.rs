//! Black-box tests of multimedia uploads: the real `vgate` binary, Mosquitto, and a JT/T 808
//! terminal uploading a photo (0x0801) in packages, some of them lost and sent again when the
//! gateway asks (0x8003). The file lands whole in the media directory, its `media` event
//! carries its size and SHA-256, and the terminal gets 0x8800 with nothing to send again.

mod support;

use std::time::Duration;

use gateway::simulate::jt808::Terminal;
use jt808::Version;
use sha2::Digest;
use support::{Mosquitto, Subscriber, Vgate, VgateOptions};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn a_photo_with_lost_packages_arrives_whole_in_the_media_directory() {
    let Some(m) = Mosquitto::start() else { return };
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        // Ask for missing packages after one quiet second (default 5).
        config_toml: Some("[jt808]\nsubpackage_quiet_s = 1\n".into()),
        ..Default::default()
    });
    let phone = "013800138090";
    let mut sub = Subscriber::connect(m.port, &[&format!("vgate/v1/{phone}/media")]).await;
    let mut t = Terminal::connect(vgate.addr("jt808"), phone, Version::V2013)
        .await
        .expect("connect");
    let code = t
        .register()
        .await
        .expect("register")
        .auth_code
        .expect("code");
    assert_eq!(t.authenticate(&code).await.expect("authenticate"), 0);

    // 200,000 bytes in 1,000-byte packages (201 of them: the 36-byte media header first).
    let photo: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let answer = tokio::time::timeout(WAIT, t.upload_media(4242, &photo, 1000, &[2, 77, 201]))
        .await
        .expect("answered in time")
        .expect("0x8800");
    assert_eq!(answer.media_id, 4242);
    assert!(answer.retransmit_ids.is_empty());

    let ev = sub.next_on("/media", WAIT).await;
    assert_eq!(ev.json["type"], "media");
    assert_eq!(ev.json["vehicle_id"], phone);
    let d = &ev.json["data"];
    assert_eq!(d["media_id"], 4242);
    assert_eq!(d["media_type"], "image");
    assert_eq!(d["format"], "jpeg");
    assert_eq!(d["size"], 200_000);
    let sha = hex::encode(sha2::Sha256::digest(&photo));
    assert_eq!(d["sha256"], sha.as_str());
    assert!(d["location"]["latitude"].is_f64());
    let key = d["key"].as_str().expect("key");
    let stored = std::fs::read(vgate.data_dir.path().join("media").join(key)).expect("file");
    assert_eq!(stored.len(), photo.len());
    assert!(stored == photo, "the stored file is the photo");
}
