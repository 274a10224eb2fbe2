//! Black-box tests of TLS and the front door (contract §5): the real `vgate` binary with
//! TLS listeners whose PKI the test makes with rcgen (a CA, the server, vehicles whose
//! certificates name their phone or VIN, one of another CA, an expired one, a revoked one and
//! the CRL revoking it); rustls clients at TLS 1.2 and 1.3, and an OpenSSL one (Python's
//! `ssl`); events checked on MQTT.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gateway::simulate::gbt32960::Vehicle;
use gateway::simulate::jt808::{Fix, Terminal};
use gateway::simulate::Device;
use gbt32960::Edition;
use jt808::Version;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams,
    SanType, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use support::{Subscriber, Vgate, VgateOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const WAIT: Duration = Duration::from_secs(10);

/// A certificate authority of the test.
struct Ca {
    cert: Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = p.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A leaf: `cn` as its common name, `san` as its DNS alternative name.
    fn leaf(&self, cn: &str, san: &str, serial: u64, expired: bool, server: bool) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec![san.to_owned()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.serial_number = Some(SerialNumber::from(serial));
        if server {
            p.subject_alt_names
                .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        } else {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        if expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A CRL revoking `serials`.
    fn crl(&self, serials: &[u64]) -> String {
        CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2024, 1, 1),
            next_update: rcgen::date_time_ymd(2090, 1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: rcgen::date_time_ymd(2024, 6, 1),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&self.cert, &self.key)
        .unwrap()
        .pem()
        .unwrap()
    }
}

struct Leaf {
    cert: String,
    key: String,
    der: Vec<u8>,
}

const PHONE: &str = "013800138100";
const VIN: &str = "LVGTLS00000000001";
const REVOKED_SERIAL: u64 = 66;

/// The test's PKI, written in `dir`.
struct Pki {
    ca: Ca,
    ca_file: PathBuf,
    server: Leaf,
    /// Vehicles of the CA: `PHONE`/`VIN` as CN and SAN.
    good: Leaf,
    ev: Leaf,
    /// Another CA's, for `PHONE`.
    stranger: Leaf,
    expired: Leaf,
    revoked: Leaf,
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let ca = Ca::new("vgate test vehicle CA");
        let other = Ca::new("another CA");
        let server = ca.leaf("vgate.test", "localhost", 2, false, true);
        let pki = Pki {
            ca_file: write(dir, "ca.pem", &ca.cert.pem()),
            good: ca.leaf(PHONE, PHONE, 10, false, false),
            ev: ca.leaf(VIN, VIN, 11, false, false),
            stranger: other.leaf(PHONE, PHONE, 12, false, false),
            expired: ca.leaf(PHONE, PHONE, 13, true, false),
            revoked: ca.leaf(PHONE, PHONE, REVOKED_SERIAL, false, false),
            server,
            ca,
        };
        write(dir, "server.pem", &pki.server.cert);
        write(dir, "server.key", &pki.server.key);
        write(dir, "crl.pem", &pki.ca.crl(&[REVOKED_SERIAL]));
        pki
    }
}

/// A config with a plain `[jt808]`, a mutual-TLS JT/T 808 listener `model-x` (identity CN,
/// auth `certificate`, the CRL), a mutual-TLS GB/T 32960 listener `ev-tls` (identity SAN), a
/// TLS-only listener `tls-only` (no client certificate, TLS 1.3 only), and `small`: plain,
/// two connections at most, two failed logins per address; `lb`: plain, behind a load
/// balancer speaking the PROXY protocol, one connection per vehicle address; `raw-tls`: a
/// raw line protocol over mutual TLS, the first line naming the vehicle (identity CN).
fn config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"
[[jt808.listeners]]
name = "model-x"
listen = "127.0.0.1:0"
auth = {{ mode = "certificate" }}
tls = {{ cert_file = "{d}/server.pem", key_file = "{d}/server.key", client_ca_file = "{d}/ca.pem", crl_files = ["{d}/crl.pem"], identity = "cn", handshake_timeout_s = 2 }}

[[jt808.listeners]]
name = "tls-only"
listen = "127.0.0.1:0"
tls = {{ cert_file = "{d}/server.pem", key_file = "{d}/server.key", min_version = "1.3" }}

[[jt808.listeners]]
name = "small"
listen = "127.0.0.1:0"
max_connections = 2
max_failed_logins = 2
auth = {{ mode = "allowlist", allowlist_file = "{d}/allow.txt" }}

[[jt808.listeners]]
name = "lb"
listen = "127.0.0.1:0"
proxy_protocol = true
max_connections_per_address = 1

[[gbt32960.listeners]]
name = "ev-tls"
listen = "127.0.0.1:0"
auth = {{ mode = "certificate" }}
tls = {{ cert_file = "{d}/server.pem", key_file = "{d}/server.key", client_ca_file = "{d}/ca.pem", identity = "san" }}

[[raw]]
name = "raw-tls"
listen = "127.0.0.1:0"
auth = {{ mode = "certificate" }}
tls = {{ cert_file = "{d}/server.pem", key_file = "{d}/server.key", client_ca_file = "{d}/ca.pem", identity = "cn" }}
[raw.framing]
type = "delimited"
delimiter = "\n"
[raw.identity]
mode = "first_frame"
pattern = {{ charset = "alphanumeric", min_len = 4, max_len = 20 }}
"#
    )
}

fn start() -> (Vgate, Pki) {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    write(dir.path(), "allow.txt", "013800138199\n");
    let vgate = Vgate::start_in(
        VgateOptions {
            config_toml: Some(config(dir.path())),
            extra_listeners: 6,
            ..Default::default()
        },
        dir,
    );
    (vgate, pki)
}

#[allow(deprecated)] // ring's provider, as vgate's (see gateway/src/tls.rs)
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls client trusting the test CA, presenting `client` if given, at `version` (both
/// when `None`).
async fn connect(
    addr: SocketAddr,
    pki: &Pki,
    client: Option<&Leaf>,
    version: Option<&'static rustls::SupportedProtocolVersion>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(pki.ca.cert.der().to_vec()))
        .unwrap();
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = match version {
        Some(v) => vec![v],
        None => vec![&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&versions)
        .unwrap()
        .with_root_certificates(roots);
    let cfg = match client {
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(leaf.cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

async fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect http");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// Waits until `/metrics` has a line containing every one of `parts`.
async fn metric_line(vgate: &Vgate, parts: &[&str]) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let body = http_get(vgate.addr("http"), "/metrics").await;
        if let Some(line) = body
            .lines()
            .find(|l| !l.starts_with('#') && parts.iter().all(|p| l.contains(p)))
        {
            return line.to_owned();
        }
        if tokio::time::Instant::now() > deadline {
            panic!("no metric line with {parts:?} in:\n{body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vehicle_with_its_own_certificate_logs_in_over_mutual_tls_and_its_events_arrive() {
    let (vgate, pki) = start();
    let mqtt = vgate.mqtt_port().unwrap();
    let mut sub = Subscriber::connect(mqtt, &[&format!("vgate/v1/{PHONE}/#")]).await;
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let tls = connect(vgate.addr("model-x"), &pki, Some(&pki.good), Some(version))
            .await
            .expect("handshake");
        assert_eq!(
            tls.get_ref().1.protocol_version(),
            Some(version.version),
            "negotiated"
        );
        let mut t = Terminal::over(tls, PHONE, Version::V2013);
        let reg = t.register().await.unwrap();
        assert_eq!(reg.result, 0);
        // Auth mode `certificate`: the certificate decides, whatever the code.
        assert_eq!(t.authenticate("any code").await.unwrap(), 0);
        let fix = Fix {
            latitude: 22.5,
            longitude: 114.0,
            ..Default::default()
        };
        assert_eq!(t.report(&fix).await.unwrap(), 0);
        let loc = sub.next_on("/location", WAIT).await;
        assert_eq!(loc.json["vehicle_id"], PHONE);
        assert_eq!(t.logout().await.unwrap(), 0);
    }

    // GB/T 32960 on its own mutual-TLS listener, the VIN in the SAN.
    let mut ev_sub = Subscriber::connect(mqtt, &[&format!("vgate/v1/{VIN}/#")]).await;
    let tls = connect(vgate.addr("ev-tls"), &pki, Some(&pki.ev), None)
        .await
        .expect("handshake");
    let mut v = Vehicle::over(tls, VIN, Edition::V2016);
    let reply = v.login().await.unwrap();
    assert_eq!(reply.flag, 0x01, "success");
    let lc = ev_sub.next_on("/lifecycle", WAIT).await;
    assert_eq!(lc.json["data"]["event"], "login");
    let st = ev_sub.next_on("/status", WAIT).await;
    assert_eq!(st.json["data"]["online"], true);

    // The plain listener beside them is unchanged.
    let mut t = Terminal::connect(vgate.addr("jt808"), "013800138101", Version::V2013)
        .await
        .unwrap();
    let code = t.register().await.unwrap().auth_code.unwrap();
    assert_eq!(t.authenticate(&code).await.unwrap(), 0);

    let line = metric_line(&vgate, &["vgate_tls_handshakes_total", "model-x"]).await;
    assert!(line.ends_with(" 2"), "{line}");
    // Logins are counted per listener: two on model-x, one on ev-tls, one on jt808.
    for (listener, protocol, count) in [
        ("model-x", "jt808", " 2"),
        ("ev-tls", "gbt32960", " 1"),
        ("jt808", "jt808", " 1"),
    ] {
        let labels = [
            "vgate_logins_total{",
            &format!("listener=\"{listener}\""),
            &format!("protocol=\"{protocol}\""),
        ];
        let line = metric_line(&vgate, &labels).await;
        assert!(line.ends_with(count), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_naming_another_vehicle_is_rejected_with_certificate_mismatch() {
    let (vgate, pki) = start();
    let other = "013800138102";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{other}/#")],
    )
    .await;
    let tls = connect(vgate.addr("model-x"), &pki, Some(&pki.good), None)
        .await
        .expect("handshake");
    let mut t = Terminal::over(tls, other, Version::V2013);
    let reg = t.register().await.unwrap();
    assert_eq!(reg.result, 4, "0x8100 no such terminal");
    let lc = sub.next_on("/lifecycle", WAIT).await;
    assert_eq!(lc.json["data"]["event"], "rejected");
    assert_eq!(lc.json["data"]["reason"], "certificate_mismatch");
    assert!(t.closed_within(WAIT).await, "connection closed");

    // Authenticating without registering: refused the same way (0x8001 failure).
    let tls = connect(vgate.addr("model-x"), &pki, Some(&pki.good), None)
        .await
        .unwrap();
    let mut t = Terminal::over(tls, other, Version::V2013);
    assert_eq!(t.authenticate("x").await.unwrap(), 1);
    assert!(t.closed_within(WAIT).await);

    // GB/T 32960: a VIN the certificate does not name.
    let tls = connect(vgate.addr("ev-tls"), &pki, Some(&pki.ev), None)
        .await
        .unwrap();
    let mut v = Vehicle::over(tls, "LVGTLS00000000002", Edition::V2016);
    let reply = v.login().await.unwrap();
    assert_eq!(reply.flag, 0x02, "error");

    // A raw listener: the first line names the vehicle, the certificate must too.
    let mut raw_sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &["vgate/v1/TRUCK0042/#", &format!("vgate/v1/{PHONE}/#")],
    )
    .await;
    let mut tls = connect(vgate.addr("raw-tls"), &pki, Some(&pki.good), None)
        .await
        .unwrap();
    tls.write_all(b"TRUCK0042\n").await.unwrap();
    let lc = raw_sub.next_on("/lifecycle", WAIT).await;
    assert_eq!(lc.json["vehicle_id"], "TRUCK0042");
    assert_eq!(lc.json["data"]["reason"], "certificate_mismatch");
    let mut b = [0u8; 8];
    assert!(matches!(
        tokio::time::timeout(WAIT, tls.read(&mut b)).await,
        Ok(Ok(0)) | Ok(Err(_))
    ));
    let mut tls = connect(vgate.addr("raw-tls"), &pki, Some(&pki.good), None)
        .await
        .unwrap();
    tls.write_all(format!("{PHONE}\n").as_bytes())
        .await
        .unwrap();
    let lc = raw_sub.next_on("/lifecycle", WAIT).await;
    assert_eq!(lc.json["vehicle_id"], PHONE);
    assert_eq!(lc.json["data"]["event"], "login");
    assert_eq!(lc.json["protocol"], "raw");

    metric_line(
        &vgate,
        &[
            "vgate_login_refusals_total",
            "listener=\"model-x\"",
            "certificate_mismatch",
        ],
    )
    .await;
    assert!(vgate.wait_log("certificate_mismatch", WAIT));
}

/// Whether a JT/T 808 terminal can register over `tls` (a refused handshake shows up as an
/// error or a closed connection at the first read under TLS 1.3).
async fn registers(tls: std::io::Result<TlsStream<TcpStream>>) -> bool {
    let Ok(tls) = tls else { return false };
    let mut t = Terminal::over(tls, PHONE, Version::V2013);
    matches!(t.register().await, Ok(r) if r.result == 0)
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_ca_expired_revoked_and_missing_client_certificates_are_refused_at_the_handshake() {
    let (vgate, pki) = start();
    let addr = vgate.addr("model-x");
    for (leaf, reason) in [
        (Some(&pki.stranger), "unknown_ca"),
        (Some(&pki.expired), "expired"),
        (Some(&pki.revoked), "revoked"),
        (None, "no_client_certificate"),
    ] {
        assert!(
            !registers(connect(addr, &pki, leaf, None).await).await,
            "{reason}: refused"
        );
        metric_line(
            &vgate,
            &[
                "vgate_connections_refused_total",
                "listener=\"model-x\"",
                &format!("reason=\"{reason}\""),
            ],
        )
        .await;
    }
    // The good one still gets in.
    assert!(registers(connect(addr, &pki, Some(&pki.good), None).await).await);

    // Plain TCP to a TLS port: refused cleanly (closed), counted.
    let mut t = Terminal::connect(addr, PHONE, Version::V2013)
        .await
        .unwrap();
    assert!(t.register().await.is_err(), "no answer in plain text");
    metric_line(
        &vgate,
        &["vgate_connections_refused_total", "reason=\"not_tls\""],
    )
    .await;

    // A connection that never finishes its handshake is closed after handshake_timeout_s.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let mut b = [0u8; 16];
    let r = tokio::time::timeout(WAIT, idle.read(&mut b)).await;
    assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "closed: {r:?}");
    metric_line(&vgate, &["reason=\"handshake_timeout\""]).await;

    // TLS 1.2 where the listener wants 1.3: refused.
    let tls12 = connect(
        vgate.addr("tls-only"),
        &pki,
        None,
        Some(&rustls::version::TLS12),
    )
    .await;
    assert!(tls12.is_err(), "TLS 1.2 refused by a 1.3 listener");
    assert!(
        registers(
            connect(
                vgate.addr("tls-only"),
                &pki,
                None,
                Some(&rustls::version::TLS13)
            )
            .await
        )
        .await
    );
}

/// One JT/T 808 2013 registration of `phone` as wire bytes.
fn register_frame(phone: &str) -> Vec<u8> {
    let reg = jt808::msg::Message::Register(jt808::msg::Register {
        province: 44,
        city: 300,
        manufacturer: "VGSSL".into(),
        model: "OPENSSL".into(),
        terminal_id: "T1".into(),
        plate_color: 1,
        plate: "TEST1".into(),
        layout: Version::V2013,
    });
    let body = reg.encode_body(Version::V2013).unwrap();
    let header = jt808::Header::to_terminal(0x0100, Version::V2013, phone.to_owned(), 7);
    let mut out = Vec::new();
    jt808::Frame::new(header, body).write_wire(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn an_openssl_client_registers_over_tls_1_2_and_1_3() {
    let (vgate, pki) = start();
    let dir = vgate.data_dir.path();
    let cert = write(dir, "vehicle.pem", &pki.good.cert);
    let key = write(dir, "vehicle.key", &pki.good.key);
    let addr = vgate.addr("model-x");
    let frame = hex::encode(register_frame(PHONE));
    for version in ["TLSv1_2", "TLSv1_3"] {
        let script = format!(
            r#"
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.minimum_version = ssl.TLSVersion.{version}
ctx.maximum_version = ssl.TLSVersion.{version}
ctx.load_verify_locations("{ca}")
ctx.load_cert_chain("{cert}", "{key}")
with socket.create_connection(("127.0.0.1", {port}), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(bytes.fromhex("{frame}"))
        buf = b""
        while buf.count(b"\x7e") < 2:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        print(s.version(), buf.hex())
"#,
            ca = pki.ca_file.display(),
            cert = cert.display(),
            key = key.display(),
            port = addr.port(),
        );
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("python3")
                .arg("-c")
                .arg(script)
                .output()
                .expect("python3 runs")
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{version}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (negotiated, answer) = stdout.trim().split_once(' ').expect("version and hex");
        assert_eq!(negotiated, version.replace('_', "."));
        assert!(answer.starts_with("7e8100"), "a 0x8100 answer: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_rotates_the_server_certificate_without_dropping_a_vehicle() {
    let (vgate, pki) = start();
    let addr = vgate.addr("model-x");
    let mut terminals = Vec::new();
    for _ in 0..100 {
        let tls = connect(addr, &pki, Some(&pki.good), None).await.unwrap();
        assert_eq!(
            tls.get_ref().1.peer_certificates().unwrap()[0].as_ref(),
            pki.server.der.as_slice()
        );
        terminals.push(Terminal::over(tls, PHONE, Version::V2013));
    }
    // One vehicle id on all of them would be taken over: each registers only (no login),
    // and the login timeout (30 s) is longer than the test.
    for t in &mut terminals {
        assert_eq!(t.register().await.unwrap().result, 0);
    }
    let rotated = pki.ca.leaf("vgate.rotated", "localhost", 3, false, true);
    let dir = vgate.data_dir.path();
    // A bad file first: the old configuration stays, and the log says why.
    write(dir, "server.key", "not a key");
    let pid = vgate.child.as_ref().unwrap().id().to_string();
    let hup = || {
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
    };
    assert!(hup().success());
    let line = vgate
        .wait_log_line("TLS reload failed", WAIT)
        .expect("reload failure logged");
    assert!(
        line.contains("key_file") && !line.contains("not a key"),
        "{line}"
    );
    assert!(registers(connect(addr, &pki, Some(&pki.good), None).await).await);

    write(dir, "server.pem", &rotated.cert);
    write(dir, "server.key", &rotated.key);
    assert!(hup().success());
    assert!(vgate.wait_log("TLS files reloaded", WAIT));
    let fresh = connect(addr, &pki, Some(&pki.good), None).await.unwrap();
    assert_eq!(
        fresh.get_ref().1.peer_certificates().unwrap()[0].as_ref(),
        rotated.der.as_slice(),
        "new handshakes see the new certificate"
    );
    for (i, t) in terminals.iter_mut().enumerate() {
        assert_eq!(
            t.register()
                .await
                .unwrap_or_else(|e| panic!("vehicle {i} dropped: {e}"))
                .result,
            0
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_listener_refuses_and_an_address_failing_logins_is_refused_for_a_while() {
    let (vgate, _pki) = start();
    let addr = vgate.addr("small");
    let a = TcpStream::connect(addr).await.unwrap();
    let b = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 8];
    let r = tokio::time::timeout(WAIT, third.read(&mut buf)).await;
    assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "closed: {r:?}");
    metric_line(
        &vgate,
        &[
            "vgate_connections_refused_total",
            "listener=\"small\"",
            "reason=\"max_connections\"",
        ],
    )
    .await;
    drop((a, b));
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Two refused logins (not in the allowlist), then the address is refused at once.
    for _ in 0..2 {
        let mut t = Terminal::connect(addr, "013800138150", Version::V2013)
            .await
            .unwrap();
        assert_ne!(t.register().await.unwrap().result, 0);
        assert!(t.closed_within(WAIT).await);
    }
    let mut t = Terminal::connect(addr, "013800138199", Version::V2013)
        .await
        .unwrap();
    assert!(
        t.register().await.is_err(),
        "even an allowed vehicle, from that address"
    );
    metric_line(&vgate, &["listener=\"small\"", "reason=\"banned\""]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_load_balancer_the_proxy_header_gives_the_vehicles_address() {
    let (vgate, _pki) = start();
    let phone = "013800138120";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{phone}/#")],
    )
    .await;
    let mut tcp = TcpStream::connect(vgate.addr("lb")).await.unwrap();
    tcp.write_all(b"PROXY TCP4 203.0.113.7 10.0.0.1 40001 6808\r\n")
        .await
        .unwrap();
    let mut t = Terminal::over(tcp, phone, Version::V2013);
    let code = t.register().await.unwrap().auth_code.unwrap();
    assert_eq!(t.authenticate(&code).await.unwrap(), 0);
    let st = sub.next_on("/status", WAIT).await;
    assert_eq!(st.json["data"]["peer"], "203.0.113.7:40001");

    // One connection per vehicle address (max_connections_per_address = 1): the addresses
    // are the headers', not the load balancer's.
    let mut again = TcpStream::connect(vgate.addr("lb")).await.unwrap();
    again
        .write_all(b"PROXY TCP4 203.0.113.7 10.0.0.1 40002 6808\r\n")
        .await
        .unwrap();
    let mut again = Terminal::over(again, "013800138121", Version::V2013);
    assert!(again.register().await.is_err(), "a second from 203.0.113.7");
    metric_line(&vgate, &["reason=\"max_connections_per_address\""]).await;
    let mut other = TcpStream::connect(vgate.addr("lb")).await.unwrap();
    other
        .write_all(b"PROXY TCP4 203.0.113.8 10.0.0.1 40003 6808\r\n")
        .await
        .unwrap();
    let mut other = Terminal::over(other, "013800138122", Version::V2013);
    assert_eq!(other.register().await.unwrap().result, 0, "another address");
    drop(other);

    // No header: refused, counted.
    let mut t = Terminal::connect(vgate.addr("lb"), phone, Version::V2013)
        .await
        .unwrap();
    assert!(t.register().await.is_err());
    metric_line(&vgate, &["listener=\"lb\"", "reason=\"proxy_header\""]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_that_has_not_logged_in_cannot_make_vgate_buffer_a_large_frame() {
    let (vgate, _pki) = start();
    // A GB/T 32960 header announcing 60,000 bytes of data, then 5,000 of them: the frame is
    // within max_frame_len, but not before login.
    let mut s = TcpStream::connect(vgate.addr("gbt32960")).await.unwrap();
    let mut head = b"##\x02\xfeLVGTLS00000000009\x01".to_vec();
    head.extend_from_slice(&60_000u16.to_be_bytes());
    s.write_all(&head).await.unwrap();
    let _ = s.write_all(&[0u8; 5000]).await;
    let mut b = [0u8; 64];
    let r = tokio::time::timeout(WAIT, s.read(&mut b)).await;
    assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "closed: {r:?}");
    metric_line(
        &vgate,
        &["vgate_prelogin_overflows_total", "listener=\"gbt32960\""],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulator_drives_tls_vehicles() {
    let (vgate, pki) = start();
    let addr = vgate.addr("tls-only");
    let ca = pki.ca_file.display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_vgate"))
            .args(["simulate", "--protocol", "jt808", "--vehicles", "5"])
            .args(["--rate", "2", "--duration", "1s", "--json", "--tls"])
            .args(["--tls-ca", &ca, "--tls-server-name", "localhost"])
            .args(["--target", &addr.to_string()])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["logins"], 5, "{summary}");
    assert!(summary["acks"].as_u64().unwrap() > 0, "{summary}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vehicle_revoked_by_a_new_crl_is_refused_after_sighup() {
    let (vgate, pki) = start();
    let addr = vgate.addr("model-x");
    let tls = connect(addr, &pki, Some(&pki.good), None).await.unwrap();
    let mut connected = Terminal::over(tls, PHONE, Version::V2013);
    assert_eq!(connected.register().await.unwrap().result, 0);

    // The operator revokes the vehicle's certificate (serial 10) and sends SIGHUP.
    write(
        vgate.data_dir.path(),
        "crl.pem",
        &pki.ca.crl(&[REVOKED_SERIAL, 10]),
    );
    let pid = vgate.child.as_ref().unwrap().id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    assert!(vgate.wait_log("TLS files reloaded", WAIT));
    assert!(
        !registers(connect(addr, &pki, Some(&pki.good), None).await).await,
        "a new connection with the revoked certificate is refused"
    );
    metric_line(&vgate, &["listener=\"model-x\"", "reason=\"revoked\""]).await;
    // The established session is not cut by the reload.
    assert_eq!(connected.register().await.unwrap().result, 0);
}
