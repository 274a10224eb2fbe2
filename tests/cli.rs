//! Black-box tests of the command line (contract §1): decode, encode, config, exit codes.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn vgate(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vgate"));
    cmd.args(args)
        .env("VGATE_NODE_ID", "cli-test")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn vgate");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().expect("wait")
}

fn lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

// traccar/traccar src/test/java/org/traccar/protocol/Jt808ProtocolDecoderTest.java line 310:
// a 2013 location report captured from a device (phone 001601285614, serial 2).
const JT808_0200: &str = "7e0200002c00160128561400020000000000040001005de1f7065c6cef00000000000017011710044201040000a9002a02000030011b3101030c7e";

#[test]
fn decode_jt808_prints_a_location_event_with_the_contract_envelope() {
    let out = vgate(&["decode", "jt808", JT808_0200], None);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = lines(&out);
    assert_eq!(evs.len(), 1);
    let e = &evs[0];
    assert_eq!(e["v"], 1);
    assert_eq!(e["type"], "location");
    assert_eq!(e["protocol"], "jt808-2013");
    assert_eq!(e["vehicle_id"], "001601285614");
    assert_eq!(e["gateway"], "cli-test");
    assert_eq!(e["msg_seq"], 2);
    assert_eq!(e["device_time"], "2017-01-17T02:04:42Z");
    assert!((e["data"]["latitude"].as_f64().unwrap() - 6.152695).abs() < 1e-6);
    assert!((e["data"]["longitude"].as_f64().unwrap() - 106.720495).abs() < 1e-6);
    assert!((e["data"]["odometer_km"].as_f64().unwrap() - 4326.4).abs() < 1e-6);
    assert_eq!(e["data"]["satellites"], 3);
    assert_eq!(e["data"]["signal_strength"], 27);
    assert_eq!(e["event_id"].as_str().unwrap().len(), 26);
}

#[test]
fn decode_raw_prints_the_protocol_level_message() {
    let out = vgate(&["decode", "jt808", "--raw", JT808_0200], None);
    assert!(out.status.success());
    let evs = lines(&out);
    assert_eq!(evs[0]["header"]["msg_id"], 0x0200);
}

#[test]
fn a_bad_frame_is_named_on_stderr_the_others_still_print_and_the_status_is_1() {
    let mut bad = JT808_0200.to_owned();
    bad.replace_range(bad.len() - 4..bad.len() - 2, "00"); // wrong checksum
    let input = format!("{JT808_0200}\n{bad}\n{JT808_0200}\n");
    let out = vgate(&["decode", "jt808"], Some(&input));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(lines(&out).len(), 2, "the good frames still print");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("frame 2"), "names the frame: {err}");
    assert!(err.to_lowercase().contains("checksum"), "says why: {err}");
}

#[test]
fn encode_then_decode_raw_gives_the_command_back() {
    let out = vgate(
        &[
            "encode",
            "jt808",
            "--vehicle",
            "013800138000",
            "--command",
            r#"{"id":"c1","type":"text","params":{"text":"你好 vgate"}}"#,
        ],
        None,
    );
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hex = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(hex.starts_with("7e8300"), "{hex}");
    let back = vgate(&["decode", "jt808", "--raw", &hex], None);
    assert!(
        back.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&back.stderr)
    );
    let text = String::from_utf8_lossy(&back.stdout);
    assert!(text.contains("你好 vgate"), "{text}");
}

#[test]
fn an_invalid_command_is_rejected_with_the_field_and_status_1() {
    let out = vgate(
        &[
            "encode",
            "jt808",
            "--vehicle",
            "013800138000",
            "--command",
            r#"{"id":"c1","type":"warp_drive"}"#,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("type"));
}

#[test]
fn bad_usage_exits_2() {
    assert_eq!(
        vgate(&["decode", "nosuchproto", "00"], None).status.code(),
        Some(2)
    );
    assert_eq!(
        vgate(
            &[
                "encode",
                "jt808",
                "--vehicle",
                "1",
                "--command",
                "{}",
                "--edition",
                "1999"
            ],
            None
        )
        .status
        .code(),
        Some(2)
    );
}

#[test]
fn the_default_config_is_printed_and_a_bad_key_is_named_with_the_file_and_exit_2() {
    let out = vgate(&["config"], None);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[jt808]") && text.contains("listen = \"0.0.0.0:6808\""));

    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, "[jt808]\nlisten_port = 1\n").unwrap();
    let out = vgate(&["config", "--check", p.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("listen_port") && err.contains("bad.toml"),
        "{err}"
    );
}

#[test]
fn version_prints() {
    let out = vgate(&["--version"], None);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("vgate "));
}

#[test]
fn the_packages_of_a_subpackaged_message_on_stdin_decode_as_one_message() {
    let raw = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/jt808/smallchi-1205-subpackaged-2.json"
    ))
    .unwrap();
    let fixture: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let frames: Vec<String> = fixture["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(frames.len(), 2);
    let out = vgate(
        &["decode", "jt808"],
        Some(&format!("{}\n{}\n", frames[0], frames[1])),
    );
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = lines(&out);
    assert_eq!(events.len(), 1, "one message from two packages: {events:?}");
    assert_eq!(events[0]["type"], "passthrough");
    assert_eq!(events[0]["vehicle_id"], "040666575062");
}
