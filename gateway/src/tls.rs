//! TLS on vehicle listeners (contract §5, docs/security.md): the `tls` table, the rustls
//! server configuration it builds, the vehicle id a client certificate names, and reload.
//!
//! ```text
//! accept ─▶ [PROXY header] ─▶ TlsSlot::acceptor() ─▶ handshake (≤ handshake_timeout_s)
//!                                  ▲                     │ refused: counted by reason, logged
//!   SIGHUP / reload_tls() ─────────┘                     ▼
//!   (files re-read; a bad one keeps the old)   session driver over the TLS stream,
//!                                              with the certificate's names (identity)
//! ```
//!
//! rustls with the ring provider; TLS 1.2 and 1.3 (`min_version`). With `client_ca_file` a
//! client certificate signed by that CA is required (rustls' `WebPkiClientVerifier`): an
//! expired one, one of another CA, and one a CRL of `crl_files` revokes are refused during the
//! handshake. A certificate whose issuer has no CRL in `crl_files` is not checked for
//! revocation (several CAs may share a bundle while only some publish CRLs).
//!
//! The listener's current configuration sits in a [`TlsSlot`]; [`TlsReloader::reload`] builds
//! a new one from the files and swaps it in, so new handshakes use the new files while
//! established sessions keep theirs (a rustls connection holds its own `Arc` of the config it
//! started with). A file that cannot be read or parsed keeps the old configuration and says
//! why. Keys are never logged: errors name the file and the key, never the content.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use serde::{Deserialize, Serialize};
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

/// Which field of the client certificate must name the vehicle id the vehicle claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TlsIdentity {
    /// No check: any certificate the CA signed may claim any id.
    #[default]
    None,
    /// The subject's common name (CN).
    Cn,
    /// One of the subject alternative names (DNS, URI, e-mail or directory name's CN).
    San,
}

/// The lowest TLS version accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
pub enum TlsVersion {
    #[default]
    #[serde(rename = "1.2")]
    V1_2,
    #[serde(rename = "1.3")]
    V1_3,
}

fn default_handshake_timeout() -> u64 {
    10
}

/// A listener's `tls` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server certificate chain (PEM), leaf first.
    pub cert_file: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// CA bundle (PEM); set: mutual TLS, a client certificate signed by it is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<PathBuf>,
    /// CRLs (PEM or DER) of the client CA(s).
    #[serde(default)]
    pub crl_files: Vec<PathBuf>,
    /// The certificate field that must equal the vehicle id claimed at login.
    #[serde(default)]
    pub identity: TlsIdentity,
    #[serde(default)]
    pub min_version: TlsVersion,
    /// Seconds a connection may take to finish its handshake.
    #[serde(default = "default_handshake_timeout")]
    pub handshake_timeout_s: u64,
}

/// The crypto provider of every TLS listener (and of `vgate simulate --tls`): rustls' ring
/// provider, with the key exchanges in the order X25519, P-256, P-384.
///
/// ring builds with a C compiler alone (aws-lc-rs wants cmake); rustls 0.23.48 deprecates it
/// for lacking post-quantum key exchange, which vehicle firmware does not offer yet. Its
/// default order puts P-384 first, which ring computes with generic big-number code: a
/// handshake then cost the server ~600 µs, against ~200 µs with X25519 first
/// (`cargo bench -p gateway --bench tls_handshake`, docs/PERFORMANCE.md). A client that offers
/// only P-384 still gets it.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    use rustls::crypto::ring::kx_group;
    #[allow(deprecated)]
    let ring = rustls::crypto::ring::default_provider();
    Arc::new(rustls::crypto::CryptoProvider {
        kx_groups: vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1],
        ..ring
    })
}

/// A `tls` file that cannot be used: the key (relative to the `tls` table) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct TlsFileError {
    /// `cert_file`, `key_file`, `client_ca_file`, `crl_files[1]`, `identity`...
    pub key: String,
    pub reason: String,
}

fn file_error(key: impl Into<String>, path: &Path, reason: impl std::fmt::Display) -> TlsFileError {
    TlsFileError {
        key: key.into(),
        reason: format!("{}: {reason}", path.display()),
    }
}

fn read(key: &str, path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|e| file_error(key, path, format!("cannot read it: {e}")))
}

/// Every certificate of a PEM file; none is an error.
fn certificates(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let bytes = read(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(key, path, format!("not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(file_error(key, path, "no PEM certificate in it"));
    }
    Ok(certs)
}

impl TlsConfig {
    /// How long a handshake may take.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout_s.max(1))
    }

    /// Whether clients must present a certificate.
    pub fn mutual(&self) -> bool {
        self.client_ca_file.is_some()
    }

    /// Reads every file and builds the rustls server configuration: what start-up, the
    /// configuration check and a reload all do.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsFileError> {
        if self.identity != TlsIdentity::None && self.client_ca_file.is_none() {
            return Err(TlsFileError {
                key: "identity".into(),
                reason: "needs client_ca_file (mutual TLS): without a client certificate there is nothing to compare".into(),
            });
        }
        if !self.crl_files.is_empty() && self.client_ca_file.is_none() {
            return Err(TlsFileError {
                key: "crl_files".into(),
                reason: "needs client_ca_file (CRLs revoke client certificates)".into(),
            });
        }
        let chain = certificates("cert_file", &self.cert_file)?;
        let key_bytes = read("key_file", &self.key_file)?;
        let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
            file_error(
                "key_file",
                &self.key_file,
                format!("no PEM private key in it ({e})"),
            )
        })?;
        let provider = provider();
        let versions: &[&'static rustls::SupportedProtocolVersion] = match self.min_version {
            TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersion::V1_3 => &[&rustls::version::TLS13],
        };
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| TlsFileError {
                key: "min_version".into(),
                reason: e.to_string(),
            })?;
        let builder = match &self.client_ca_file {
            None => builder.with_no_client_auth(),
            Some(ca_path) => {
                let mut roots = RootCertStore::empty();
                for ca in certificates("client_ca_file", ca_path)? {
                    roots.add(ca).map_err(|e| {
                        file_error("client_ca_file", ca_path, format!("unusable CA ({e})"))
                    })?;
                }
                let mut crls = Vec::new();
                for (i, path) in self.crl_files.iter().enumerate() {
                    crls.extend(crl(&format!("crl_files[{i}]"), path)?);
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .with_crls(crls)
                        .allow_unknown_revocation_status()
                        .build()
                        .map_err(|e| TlsFileError {
                            key: "client_ca_file".into(),
                            reason: format!("{}: {e}", ca_path.display()),
                        })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let cfg = builder.with_single_cert(chain, key).map_err(|e| {
            file_error(
                "key_file",
                &self.key_file,
                format!(
                    "does not go with cert_file {} ({e})",
                    self.cert_file.display()
                ),
            )
        })?;
        Ok(Arc::new(cfg))
    }
}

/// The CRLs of one file: PEM (one or more) or DER.
fn crl(key: &str, path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsFileError> {
    let bytes = read(key, path)?;
    if bytes.starts_with(b"-----") || bytes.iter().take(64).all(u8::is_ascii) {
        let crls = CertificateRevocationListDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| file_error(key, path, format!("not a PEM CRL file ({e})")))?;
        if crls.is_empty() {
            return Err(file_error(key, path, "no PEM CRL in it"));
        }
        return Ok(crls);
    }
    Ok(vec![CertificateRevocationListDer::from(bytes)])
}

/// A listener's current TLS configuration: read by every handshake, replaced by a reload.
pub struct TlsSlot {
    /// The listener's name (logs, metrics).
    pub listener: &'static str,
    /// The `tls` table's key in the configuration (`jt808.tls`), for reload errors.
    pub key: String,
    pub cfg: TlsConfig,
    current: RwLock<TlsAcceptor>,
}

impl TlsSlot {
    /// Builds the slot from the files (start-up: an error is a configuration error).
    pub fn new(
        listener: &'static str,
        key: String,
        cfg: TlsConfig,
    ) -> Result<Arc<TlsSlot>, TlsFileError> {
        let server = cfg.server_config()?;
        Ok(Arc::new(TlsSlot {
            listener,
            key,
            cfg,
            current: RwLock::new(TlsAcceptor::from(server)),
        }))
    }

    /// The acceptor for a new handshake.
    pub fn acceptor(&self) -> TlsAcceptor {
        match self.current.read() {
            Ok(a) => a.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the files; on success new handshakes use them. On error the old
    /// configuration stays and the error says which key and file.
    pub fn reload(&self) -> Result<(), TlsFileError> {
        let server = self.cfg.server_config()?;
        let acceptor = TlsAcceptor::from(server);
        match self.current.write() {
            Ok(mut a) => *a = acceptor,
            Err(poisoned) => *poisoned.into_inner() = acceptor,
        }
        Ok(())
    }
}

/// Every TLS listener of the process, for a reload (SIGHUP, `POST /api/v1/reload`).
#[derive(Clone, Default)]
pub struct TlsReloader {
    slots: Arc<RwLock<Vec<Arc<TlsSlot>>>>,
}

/// What one reload did, per listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadOutcome {
    pub listener: String,
    /// `None`: reloaded; `Some(why)`: kept the old files.
    pub error: Option<String>,
}

impl TlsReloader {
    pub fn add(&self, slot: Arc<TlsSlot>) {
        if let Ok(mut s) = self.slots.write() {
            s.push(slot);
        }
    }

    /// Re-reads every TLS listener's certificate, key, CA bundle and CRLs. Logged and
    /// counted (`vgate_tls_reloads_total{listener,result}`) per listener.
    pub fn reload(&self) -> Vec<ReloadOutcome> {
        let slots: Vec<Arc<TlsSlot>> = match self.slots.read() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        };
        slots
            .iter()
            .map(|slot| {
                let listener = slot.listener;
                let error = match slot.reload() {
                    Ok(()) => {
                        info!(listener, "TLS files reloaded");
                        metrics::counter!("vgate_tls_reloads_total", "listener" => listener, "result" => "ok").increment(1);
                        None
                    }
                    Err(e) => {
                        warn!(listener, key = %format!("{}.{}", slot.key, e.key), error = %e.reason, "TLS reload failed; keeping the previous certificates");
                        metrics::counter!("vgate_tls_reloads_total", "listener" => listener, "result" => "error").increment(1);
                        Some(format!("{}.{}: {}", slot.key, e.key, e.reason))
                    }
                };
                ReloadOutcome {
                    listener: listener.to_owned(),
                    error,
                }
            })
            .collect()
    }
}

/// A snake_case reason for a failed handshake (metrics label, log field).
pub fn handshake_failure(e: &std::io::Error) -> &'static str {
    use rustls::{CertificateError, Error};
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<Error>()) else {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof => "eof",
            _ => "io",
        };
    };
    match tls {
        Error::NoCertificatesPresented => "no_client_certificate",
        Error::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => "expired",
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "not_yet_valid"
            }
            CertificateError::Revoked => "revoked",
            CertificateError::UnknownIssuer => "unknown_ca",
            CertificateError::BadSignature => "bad_signature",
            _ => "bad_certificate",
        },
        Error::InvalidMessage(_) => "not_tls",
        Error::PeerIncompatible(_) => "incompatible",
        Error::AlertReceived(_) => "alert_received",
        Error::PeerMisbehaved(_) => "misbehaved",
        _ => "other",
    }
}

/// The names a client certificate gives, as `identity` reads them: the subject CN, or the
/// subject alternative names. Empty when the certificate cannot be read (refused later as a
/// mismatch).
pub fn certificate_names(cert: &[u8], identity: TlsIdentity) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, x509)) = x509_parser::parse_x509_certificate(cert) else {
        return Vec::new();
    };
    match identity {
        TlsIdentity::None => Vec::new(),
        TlsIdentity::Cn => x509
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
            .collect(),
        TlsIdentity::San => {
            let Ok(Some(san)) = x509.subject_alternative_name() else {
                return Vec::new();
            };
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(s) | GeneralName::URI(s) | GeneralName::RFC822Name(s) => {
                        Some((*s).to_owned())
                    }
                    GeneralName::DirectoryName(dn) => dn
                        .iter_common_name()
                        .next()
                        .and_then(|cn| cn.as_str().ok().map(str::to_owned)),
                    _ => None,
                })
                .collect()
        }
    }
}
