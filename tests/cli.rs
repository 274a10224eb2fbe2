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
fn a_long_non_ascii_argument_is_bad_input_not_a_panic() {
    let arg = "车辆".repeat(100);
    let out = vgate(&["decode", "jt808", &arg], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    let frame_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("frame 1 "))
        .collect();
    assert_eq!(frame_lines.len(), 1, "stderr: {stderr}");
    assert!(frame_lines[0].contains("invalid hex"), "stderr: {stderr}");
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

fn encode_gbt32960(edition: &str, time: &str, command: &str) -> String {
    let out = vgate(
        &[
            "encode",
            "gbt32960",
            "--vehicle",
            "LSVAU2180N2183294",
            "--edition",
            edition,
            "--time",
            time,
            "--command",
            command,
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn gbt32960_encode_writes_the_given_time_in_beijing_time() {
    let cmd = r#"{"id":"c1","type":"query_params"}"#;
    let a = encode_gbt32960("2016", "2024-01-01T08:00:00+08:00", cmd);
    // The same instant written in another zone is the same frame.
    assert_eq!(a, encode_gbt32960("2016", "2024-01-01T00:00:00Z", cmd));
    // The header (24 bytes, its data unit length included), then the command's time,
    // YYMMDDhhmmss.
    assert_eq!(&a[24 * 2..30 * 2], "180101080000", "{a}");
    assert_ne!(a, encode_gbt32960("2016", "2024-01-01T08:00:01+08:00", cmd));
}

#[test]
fn encode_refuses_a_time_it_cannot_read_or_a_jt808_time_with_status_2() {
    let cmd = r#"{"id":"c1","type":"query_params"}"#;
    let out = vgate(
        &[
            "encode",
            "gbt32960",
            "--vehicle",
            "LSVAU2180N2183294",
            "--time",
            "2024-01-01 08:00",
            "--command",
            cmd,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--time"));
    let text = r#"{"id":"c1","type":"text","params":{"text":"hi"}}"#;
    let out = vgate(
        &[
            "encode",
            "jt808",
            "--vehicle",
            "013800138000",
            "--time",
            "2024-01-01T08:00:00+08:00",
            "--command",
            text,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--time"));
}

/// The README's `vgate encode` examples, each followed by a `# <hex>` comment line: the
/// command exactly as written (run by `sh`, with this build's `vgate` first on the PATH) and
/// the output the README promises.
#[test]
fn the_readme_encode_examples_print_what_the_readme_says() {
    let readme = include_str!("../README.md");
    let lines: Vec<&str> = readme.lines().collect();
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_vgate"))
        .parent()
        .unwrap()
        .to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut checked = 0;
    for pair in lines.windows(2) {
        let [cmd, expected] = pair else { continue };
        let Some(hex) = expected.strip_prefix("# ") else {
            continue;
        };
        if !cmd.starts_with("vgate encode ") {
            continue;
        }
        let out = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .env("PATH", &path)
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), hex, "{cmd}");
        checked += 1;
    }
    assert_eq!(
        checked, 2,
        "both encode examples have their output under them"
    );
}

/// docs/commands.md's GB/T 32960 examples: each ```json block of commands, then a line
/// `2016: `hex`, ...` or `2025: ...` (continued on lines that start with a backquote) with
/// one frame per command, at the time and VIN the document names.
#[test]
fn the_gbt32960_command_examples_in_docs_reproduce_byte_for_byte() {
    let doc = include_str!("../docs/commands.md");
    let start = doc.find("## GB/T 32960").expect("GB/T 32960 section");
    let end = start + doc[start..].find("## JT/T 808").expect("next section");
    let section = &doc[start..end];
    assert!(section.contains("--time 2025-11-01T08:00:00+08:00"));
    let hex_in = |s: &str| -> Vec<String> {
        s.split('`')
            .filter(|p| p.len() > 40 && p.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_ascii_lowercase)
            .collect()
    };
    // (edition, commands, frames) per example block.
    let mut examples: Vec<(&str, Vec<&str>, Vec<String>)> = Vec::new();
    let mut commands: Vec<&str> = Vec::new();
    let (mut in_json, mut continuing) = (false, false);
    for line in section.lines() {
        if in_json {
            if line.starts_with("```") {
                in_json = false;
            } else {
                commands.push(line);
            }
            continue;
        }
        if line.starts_with("```json") {
            (in_json, continuing) = (true, false);
            commands.clear();
            continue;
        }
        if continuing && line.starts_with('`') {
            if let Some(last) = examples.last_mut() {
                last.2.extend(hex_in(line));
            }
            continue;
        }
        continuing = false;
        if let Some((edition, rest)) = line
            .split_once(": `")
            .filter(|(e, _)| *e == "2016" || *e == "2025")
        {
            examples.push((
                edition,
                std::mem::take(&mut commands),
                hex_in(&format!("`{rest}")),
            ));
            continuing = true;
        }
    }
    let mut checked = 0;
    for (edition, commands, frames) in &examples {
        assert_eq!(frames.len(), commands.len(), "{commands:?} {frames:?}");
        for (cmd, frame) in commands.iter().zip(frames) {
            let got = encode_gbt32960(edition, "2025-11-01T08:00:00+08:00", cmd);
            assert_eq!(&got, frame, "{cmd}");
            checked += 1;
        }
    }
    assert!(checked >= 6, "{checked} examples found");
}
