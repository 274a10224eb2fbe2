//! Black-box tests of GB/T 32960 security: the real `vgate` binary, Mosquitto, and 2025
//! vehicles that encrypt their data units (SM4) and sign their reports (SM2), with keys from
//! the operator's key files, from an activation (0x09) or from a key exchange (0x0B).

mod support;

use std::time::Duration;

use gateway::simulate::gbt32960::{Drive, Vehicle};
use gateway::simulate::Device;
use gbt32960::crypto::{encrypt_frame, Cipher};
use gbt32960::msg::{Activation, KeyExchange, Message};
use gbt32960::Edition;
use sm2::dsa::signature::Signer;
use support::{Mosquitto, Subscriber, Vgate, VgateOptions};

const WAIT: Duration = Duration::from_secs(10);
const SM4_KEY: [u8; 16] = *b"vgate-sm4-key-01";

fn signing_key(seed: u8) -> (sm2::dsa::SigningKey, Vec<u8>) {
    let secret = sm2::SecretKey::from_slice(&[seed; 32]).expect("secret");
    let sk = sm2::dsa::SigningKey::new(gbt32960::verify::SM2_DEFAULT_ID, &secret).expect("key");
    (sk, secret.public_key().to_sec1_bytes().to_vec())
}

/// A 2025 activation of `vin` carrying `public`, signed with `sk` (R and S 32 bytes each).
fn activation(vin: &str, chip: &str, sk: &sm2::dsa::SigningKey, public: &[u8]) -> Activation {
    let mut act = Activation {
        time: drive().report(Edition::V2025).time,
        chip_id: chip.into(),
        public_key: public.to_vec(),
        vin: vin.into(),
        signature: gbt32960::msg::Signature {
            algorithm: 1,
            r: vec![0; 32],
            s: vec![0; 32],
        },
    };
    let data = Message::Activation(act.clone())
        .encode_data(Edition::V2025)
        .expect("encode");
    let sig: sm2::dsa::Signature = sk.sign(&data[..data.len() - (5 + 64)]);
    act.signature.r = sig.r().to_bytes().to_vec();
    act.signature.s = sig.s().to_bytes().to_vec();
    act
}

fn drive() -> Drive {
    Drive {
        speed_kmh: 42.0,
        soc_pct: 80,
        latitude: 31.2,
        longitude: 121.4,
        ..Default::default()
    }
}

/// A real-time report of `vin` signed with `sk` (`tamper`: one signed byte changed after).
fn signed_realtime(vin: &str, sk: &sm2::dsa::SigningKey, tamper: bool) -> gbt32960::Frame {
    let mut report = drive().report(Edition::V2025);
    let unsigned = Message::Realtime(report.clone())
        .encode_data(Edition::V2025)
        .expect("encode");
    let sig: sm2::dsa::Signature = sk.sign(&unsigned);
    report.signature = Some(gbt32960::realtime::Signature {
        kind: 1,
        r: sig.r().to_bytes().to_vec(),
        s: sig.s().to_bytes().to_vec(),
    });
    if tamper {
        report.time.second = (report.time.second + 1) % 60;
    }
    Message::Realtime(report)
        .to_frame(Edition::V2025, vin)
        .expect("frame")
}

fn start(m: &Mosquitto, keys_dir: &std::path::Path, policy: &str) -> Vgate {
    Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        config_toml: Some(format!(
            "[gbt32960.security]\nkeys_dir = {:?}\nsignatures = {policy:?}\n",
            keys_dir.display().to_string()
        )),
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn key_files_decrypt_sm4_data_and_check_sm2_signatures() {
    let Some(m) = Mosquitto::start() else { return };
    let keys = tempfile::tempdir().expect("dir");
    let vin = "LVGBSEC0000000001";
    let (sk, public) = signing_key(3);
    std::fs::write(
        keys.path().join(format!("{vin}.toml")),
        format!(
            "sm4 = \"{}\"\npublic_key = \"{}\"\npublic_key_type = \"sm2\"\n",
            hex::encode(SM4_KEY),
            hex::encode(&public)
        ),
    )
    .expect("key file");
    let vgate = start(&m, keys.path(), "flag");
    let mut sub = Subscriber::connect(m.port, &[&format!("vgate/v1/{vin}/telemetry")]).await;
    let mut v = Vehicle::connect(vgate.addr("gbt32960"), vin, Edition::V2025)
        .await
        .expect("connect");
    assert_eq!(v.login().await.expect("login").flag, 0x01);

    // Signed and valid, then tampered: published with the verdict.
    v.send_wire(&signed_realtime(vin, &sk, false).to_wire())
        .await
        .expect("send");
    let t = sub.next_on("/telemetry", WAIT).await;
    assert_eq!(t.json["data"]["signature"]["status"], "valid", "{}", t.json);
    v.send_wire(&signed_realtime(vin, &sk, true).to_wire())
        .await
        .expect("send");
    let t = sub.next_on("/telemetry", WAIT).await;
    assert_eq!(t.json["data"]["signature"]["status"], "invalid");
    // Signed with a key the gateway does not hold for this vehicle: invalid too.
    let (other, _) = signing_key(4);
    v.send_wire(&signed_realtime(vin, &other, false).to_wire())
        .await
        .expect("send");
    let t = sub.next_on("/telemetry", WAIT).await;
    assert_eq!(t.json["data"]["signature"]["status"], "invalid");

    // SM4-encrypted data unit: decrypted with the vehicle's key and published.
    let plain = signed_realtime(vin, &sk, false);
    v.send_wire(&encrypt_frame(&plain, Cipher::Sm4, &SM4_KEY).to_wire())
        .await
        .expect("send");
    let t = sub.next_on("/telemetry", WAIT).await;
    assert_eq!(t.json["data"]["signature"]["status"], "valid");
    assert_eq!(t.json["data"]["vehicle"]["soc_pct"], 80.0);
    // Encrypted with another key: answered 0x07 (decryption error), nothing published.
    let wrong = encrypt_frame(&plain, Cipher::Sm4, b"another-key-0000");
    v.send_wire(&wrong.to_wire()).await.expect("send");
    assert_eq!(v.answer_to(0x02, WAIT).await.expect("answer").flag, 0x07);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_activated_key_checks_later_signatures_and_refuse_answers_0x05() {
    let Some(m) = Mosquitto::start() else { return };
    let keys = tempfile::tempdir().expect("dir");
    let vgate = start(&m, keys.path(), "refuse");
    let vin = "LVGBSEC0000000002";
    let (sk, public) = signing_key(5);
    let mut sub = Subscriber::connect(m.port, &[&format!("vgate/v1/{vin}/telemetry")]).await;
    let mut v = Vehicle::connect(vgate.addr("gbt32960"), vin, Edition::V2025)
        .await
        .expect("connect");

    // Activation, signed by the key it carries.
    let act = activation(vin, "CHIP000000000001", &sk, &public);
    v.send(&Message::Activation(act)).await.expect("activation");
    // The 0x0A answer is the platform's own command: the simulated vehicle keeps it (in
    // `received`) while it waits for its login answer.
    assert_eq!(v.login().await.expect("login").flag, 0x01);
    let answered = v
        .received
        .iter()
        .find(|f| f.command == 0x0A)
        .map(|f| Message::decode(f).expect("0x0a"));
    match answered {
        Some(Message::ActivationResponse(r)) => assert_eq!((r.status, r.info), (1, 0)),
        other => panic!("no activation answer: {other:?}"),
    }
    assert!(vgate
        .data_dir
        .path()
        .join("vehicle-keys")
        .join(format!("{vin}.toml"))
        .exists());

    v.send_wire(&signed_realtime(vin, &sk, false).to_wire())
        .await
        .expect("send");
    let t = sub.next_on("/telemetry", WAIT).await;
    assert_eq!(t.json["data"]["signature"]["status"], "valid");

    // A second activation in the vehicle's name with another key (a stranger's): refused,
    // the first key stays.
    let (other, other_public) = signing_key(6);
    let act2 = activation(vin, "CHIP000000000002", &other, &other_public);
    v.received.clear();
    v.send(&Message::Activation(act2))
        .await
        .expect("activation");
    assert_eq!(v.heartbeat().await.expect("heartbeat").flag, 0x01);
    match v
        .received
        .iter()
        .find(|f| f.command == 0x0A)
        .map(Message::decode)
    {
        Some(Ok(Message::ActivationResponse(r))) => assert_eq!(r.status, 2, "not activated"),
        other => panic!("no activation answer: {other:?}"),
    }
    v.send_wire(&signed_realtime(vin, &sk, false).to_wire())
        .await
        .expect("send");
    let t = sub.next_on("/telemetry", WAIT).await;
    assert_eq!(
        t.json["data"]["signature"]["status"], "valid",
        "the first key stays"
    );

    // Refused: answered 0x05, nothing published.
    v.send_wire(&signed_realtime(vin, &sk, true).to_wire())
        .await
        .expect("send");
    assert_eq!(v.answer_to(0x02, WAIT).await.expect("answer").flag, 0x05);

    // A key exchange gives the vehicle a data key; its encrypted data then decrypts.
    let kx = KeyExchange {
        key_type: 0x05,
        key: SM4_KEY.to_vec(),
        valid_from: drive().report(Edition::V2025).time,
        valid_until: drive().report(Edition::V2025).time,
    };
    v.send(&Message::KeyExchange(kx))
        .await
        .expect("key exchange");
    assert_eq!(v.answer_to(0x0B, WAIT).await.expect("answer").flag, 0x01);
    let plain = signed_realtime(vin, &sk, false);
    v.send_wire(&encrypt_frame(&plain, Cipher::Sm4, &SM4_KEY).to_wire())
        .await
        .expect("send");
    let t = sub.next_on("/telemetry", WAIT).await;
    assert_eq!(t.json["data"]["signature"]["status"], "valid");
    assert!(sub.drain(Duration::from_millis(300)).await.is_empty());
}
