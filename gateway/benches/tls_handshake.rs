//! TLS handshakes per second per core, the gateway's side only: a full handshake (TLS 1.3,
//! no resumption; one resumed case for comparison) between a rustls client and the server configuration vgate builds from its
//! `tls` table (`gateway::tls::TlsConfig::server_config`), in memory, timing only the
//! server's calls (`iter_custom`). Cases: ECDSA P-256 and RSA-2048 server certificates, each
//! without and with a client certificate (mutual TLS, the certificate verified against the
//! CA). The PKI is made with openssl (RSA keys: ring cannot generate them), in a temporary
//! directory; without openssl the bench says so and does nothing. The client sends an X25519
//! key share, as OpenSSL does by default. (A rustls client with ring's default order sends a
//! P-384 share instead, which the server accepts: ~600 µs per handshake here instead of
//! ~200 µs, ring's P-384 being generic big-number code.)
//!
//! `cargo bench -p gateway --bench tls_handshake -- --warm-up-time 1 --measurement-time 3`

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gateway::tls::TlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};

fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// CA, ECDSA and RSA server certificates, an ECDSA client certificate; false without openssl.
fn pki(dir: &Path) -> bool {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
    let mut ok = openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-nodes",
                "-days",
                "30",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=bench CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat(),
    );
    std::fs::write(dir.join("server.ext"), "subjectAltName=DNS:localhost\n").ok();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").ok();
    for (name, key, ext) in [
        ("server-ec", &ec[..], "server.ext"),
        ("server-rsa", &["-newkey", "rsa:2048"][..], "server.ext"),
        ("client", &ec[..], "client.ext"),
    ] {
        let (k, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        ok =
            ok && openssl(
                dir,
                &[
                    &["req"][..],
                    key,
                    &[
                        "-nodes",
                        "-keyout",
                        &k,
                        "-out",
                        &csr,
                        "-subj",
                        "/CN=localhost",
                    ],
                ]
                .concat(),
            ) && openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "30",
                    "-out",
                    &pem,
                    "-extfile",
                    ext,
                ],
            );
    }
    ok
}

/// A client trusting the bench CA, with a client certificate if `with_cert`; `resume`: it
/// keeps the server's tickets and resumes (no certificate, no signature) from the second
/// handshake on; otherwise every handshake is a full one.
fn client(dir: &Path, with_cert: bool, resume: bool) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(dir.join("ca.pem")).expect("ca"))
        .expect("root");
    // The client offers an X25519 key share first, as OpenSSL and most TLS stacks do (and
    // vgate simulate --tls): the server takes the share the client sent.
    let b = ClientConfig::builder_with_provider(gateway::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let mut cfg = if with_cert {
        b.with_client_auth_cert(
            vec![CertificateDer::from_pem_file(dir.join("client.pem")).expect("cert")],
            PrivateKeyDer::from_pem_file(dir.join("client.key")).expect("key"),
        )
        .expect("client cert")
    } else {
        b.with_no_client_auth()
    };
    if !resume {
        cfg.resumption = rustls::client::Resumption::disabled();
    }
    Arc::new(cfg)
}

/// One full handshake in memory; returns the time spent in the server's calls.
fn handshake(server_cfg: &Arc<ServerConfig>, client_cfg: &Arc<ClientConfig>) -> Duration {
    let name = ServerName::try_from("localhost").expect("name");
    let mut c = ClientConnection::new(client_cfg.clone(), name).expect("client");
    let mut server_time = Duration::ZERO;
    let t = Instant::now();
    let mut s = ServerConnection::new(server_cfg.clone()).expect("server");
    server_time += t.elapsed();
    let mut buf = Vec::with_capacity(8192);
    while c.is_handshaking() || s.is_handshaking() {
        buf.clear();
        while c.wants_write() {
            c.write_tls(&mut buf).expect("client write");
        }
        let t = Instant::now();
        let mut rd = &buf[..];
        while !rd.is_empty() {
            s.read_tls(&mut rd).expect("server read");
        }
        s.process_new_packets().expect("server handshake");
        let mut out = Vec::with_capacity(8192);
        while s.wants_write() {
            s.write_tls(&mut out).expect("server write");
        }
        server_time += t.elapsed();
        let mut rd = &out[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).expect("client read");
        }
        c.process_new_packets().expect("client handshake");
    }
    server_time
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    if !pki(dir.path()) {
        eprintln!("tls_handshake: openssl is needed to make the PKI; skipped");
        return;
    }
    let mut group = c.benchmark_group("tls_handshake_server_side");
    group.throughput(Throughput::Elements(1));
    for (key, mutual, resume) in [
        ("ec", false, false),
        ("rsa", false, false),
        ("ec", true, false),
        ("rsa", true, false),
        ("ec", true, true),
    ] {
        let cfg = TlsConfig {
            cert_file: dir.path().join(format!("server-{key}.pem")),
            key_file: dir.path().join(format!("server-{key}.key")),
            client_ca_file: mutual.then(|| dir.path().join("ca.pem")),
            crl_files: Vec::new(),
            identity: gateway::tls::TlsIdentity::None,
            min_version: gateway::tls::TlsVersion::V1_2,
            handshake_timeout_s: 10,
        };
        let server = cfg.server_config().expect("server config");
        let client = client(dir.path(), mutual, resume);
        let label = format!(
            "{}{}{}",
            if key == "ec" {
                "ecdsa_p256"
            } else {
                "rsa_2048"
            },
            if mutual { "_mutual" } else { "" },
            if resume { "_resumed" } else { "" }
        );
        group.bench_function(label, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| handshake(&server, &client)).sum());
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
