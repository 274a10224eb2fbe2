//! Upgrade packages: uploaded through the operator API or downloaded from a URL, kept once.
//!
//! An `upgrade` command names its package by SHA-256 (what `POST /api/v1/packages`
//! returned) or by URL. The store is content-addressed (`data_dir/packages/<sha256>`), so a
//! package pushed to a broadcast group of ten thousand vehicles is one file, downloaded once
//! per node, and held in memory once (a weak cache: one `Arc<[u8]>` while any session is
//! pushing it, none when no one is). A download checks the size cap while it streams and
//! the SHA-256 the command gave, before anything is stored.
//!
//! With several nodes each node keeps its own store: a package uploaded to one node's API is
//! not on the others; give such fleets a URL (docs/commands.md says so).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jt808::command::PackageRef;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `[commands.upgrade]`: how upgrade packages are kept and pushed.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpgradeConfig {
    /// Packages of one transfer sent and not yet answered by the terminal.
    pub window: usize,
    /// Body bytes per package, unless the command says (1..=1023).
    pub package_bytes: usize,
    /// Seconds a package may go unanswered before it is sent again.
    pub package_timeout_s: u64,
    /// Sends of one package after the first before the upgrade is `failed`.
    pub package_retries: u32,
    /// Seconds to wait for the terminal's upgrade result (0x0108) after the transfer,
    /// unless the command says (terminals often restart first).
    pub result_timeout_s: u64,
    /// The largest package accepted, uploaded or downloaded, in bytes.
    pub max_package_bytes: u64,
    /// Seconds a package download may take.
    pub download_timeout_s: u64,
}

impl Default for UpgradeConfig {
    fn default() -> Self {
        UpgradeConfig {
            window: 16,
            package_bytes: jt808::subpackage::DEFAULT_SPLIT,
            package_timeout_s: 10,
            package_retries: 3,
            result_timeout_s: 900,
            max_package_bytes: 64 * 1024 * 1024,
            download_timeout_s: 300,
        }
    }
}

/// Why a package cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("no package {0} on this node (upload it to POST /api/v1/packages, or give a url)")]
    NotFound(String),
    #[error("package of {size} bytes is larger than max_package_bytes ({max})")]
    TooLarge { size: u64, max: u64 },
    #[error("package has SHA-256 {got}, the command expects {expected}")]
    Checksum { expected: String, got: String },
    #[error("downloading {url}: {reason}")]
    Download { url: String, reason: String },
    #[error("package store {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A stored package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PackageInfo {
    /// The package's SHA-256, lowercase hex: the `package` param of an `upgrade` command.
    pub package: String,
    pub size: u64,
}

/// The package store of this node.
pub struct Packages {
    dir: PathBuf,
    cfg: UpgradeConfig,
    /// Packages in memory while someone holds them.
    held: Mutex<HashMap<String, Weak<[u8]>>>,
    /// URL -> package id of what was downloaded; one lock per URL so that a thousand
    /// sessions asking at once download it once.
    urls: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<String>>>>>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Packages {
    /// Opens (creating) the store in `dir`.
    pub fn open(dir: PathBuf, cfg: UpgradeConfig) -> Result<Packages, PackageError> {
        std::fs::create_dir_all(&dir).map_err(|source| PackageError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Packages {
            dir,
            cfg,
            held: Mutex::new(HashMap::new()),
            urls: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &UpgradeConfig {
        &self.cfg
    }

    fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PackageError + '_ {
        move |source| PackageError::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// Stores `bytes` (written to a temporary file, synced, renamed: a crash leaves no
    /// half package under its name) and returns its id. Blocking.
    pub fn put(&self, bytes: &[u8]) -> Result<PackageInfo, PackageError> {
        let size = bytes.len() as u64;
        if size > self.cfg.max_package_bytes {
            return Err(PackageError::TooLarge {
                size,
                max: self.cfg.max_package_bytes,
            });
        }
        let id = sha256_hex(bytes);
        let path = self.path_of(&id);
        if !path.exists() {
            // A name of its own: two uploads of the same bytes at once must not share a file.
            let tmp = self
                .dir
                .join(format!(".{id}.{:016x}.tmp", rand::random::<u64>()));
            let mut f = std::fs::File::create(&tmp).map_err(Self::io(&tmp))?;
            f.write_all(bytes).map_err(Self::io(&tmp))?;
            f.sync_all().map_err(Self::io(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(Self::io(&path))?;
            metrics::counter!("vgate_upgrade_packages_stored_total").increment(1);
        }
        Ok(PackageInfo { package: id, size })
    }

    /// The packages in the store. Blocking.
    pub fn list(&self) -> Result<Vec<PackageInfo>, PackageError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(Self::io(&self.dir))? {
            let entry = entry.map_err(Self::io(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let size = entry.metadata().map_err(Self::io(&entry.path()))?.len();
            out.push(PackageInfo {
                package: name,
                size,
            });
        }
        out.sort_by(|a, b| a.package.cmp(&b.package));
        Ok(out)
    }

    fn held(&self, id: &str) -> Option<Arc<[u8]>> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.get(id).and_then(Weak::upgrade)
    }

    fn hold(&self, id: &str, bytes: Arc<[u8]>) -> Arc<[u8]> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.retain(|_, w| w.strong_count() > 0);
        match held.get(id).and_then(Weak::upgrade) {
            Some(b) => b,
            None => {
                held.insert(id.to_owned(), Arc::downgrade(&bytes));
                bytes
            }
        }
    }

    /// Package `id`, from memory when someone holds it, else from its file.
    pub async fn get(self: &Arc<Self>, id: &str) -> Result<Arc<[u8]>, PackageError> {
        if let Some(b) = self.held(id) {
            return Ok(b);
        }
        let path = self.path_of(id);
        let missing = id.to_owned();
        let read = tokio::task::spawn_blocking(move || std::fs::read(&path).map_err(|e| (e, path)))
            .await
            .map_err(|e| PackageError::Io {
                path: self.dir.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
        let bytes = match read {
            Ok(b) => b,
            Err((e, _)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(PackageError::NotFound(missing))
            }
            Err((source, path)) => return Err(PackageError::Io { path, source }),
        };
        Ok(self.hold(id, Arc::from(bytes)))
    }

    /// The package an `upgrade` command names, downloaded first if it is a URL not yet
    /// fetched by this node; checked against `sha256` when the command gives one.
    pub async fn resolve(
        self: &Arc<Self>,
        r: &PackageRef,
        sha256: Option<&str>,
    ) -> Result<(String, Arc<[u8]>), PackageError> {
        let (id, bytes) = match r {
            PackageRef::Stored(id) => (id.clone(), self.get(id).await?),
            PackageRef::Url(url) => self.fetch(url).await?,
        };
        match sha256 {
            Some(expected) if expected != id => Err(PackageError::Checksum {
                expected: expected.to_owned(),
                got: id,
            }),
            _ => Ok((id, bytes)),
        }
    }

    /// Downloads `url` once per node (later callers get the stored package).
    async fn fetch(self: &Arc<Self>, url: &str) -> Result<(String, Arc<[u8]>), PackageError> {
        let slot = {
            let mut urls = self.urls.lock().unwrap_or_else(|p| p.into_inner());
            urls.entry(url.to_owned()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some(id) = slot.as_ref() {
            match self.get(id).await {
                Ok(b) => return Ok((id.clone(), b)),
                // Deleted from the store since: download again.
                Err(PackageError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let timeout = Duration::from_secs(self.cfg.download_timeout_s);
        let bytes = tokio::time::timeout(timeout, self.download(url))
            .await
            .map_err(|_| PackageError::Download {
                url: url.to_owned(),
                reason: format!("no complete answer within {} s", timeout.as_secs()),
            })??;
        metrics::counter!("vgate_upgrade_downloads_total").increment(1);
        let store = self.clone();
        let info = tokio::task::spawn_blocking(move || store.put(&bytes).map(|i| (i, bytes)))
            .await
            .map_err(|e| PackageError::Io {
                path: self.dir.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
        let (info, bytes) = info?;
        *slot = Some(info.package.clone());
        let held = self.hold(&info.package, Arc::from(bytes));
        Ok((info.package, held))
    }

    /// GETs `url`, following no redirect, reading at most `max_package_bytes`.
    async fn download(&self, url: &str) -> Result<Vec<u8>, PackageError> {
        let fail = |reason: String| PackageError::Download {
            url: url.to_owned(),
            reason,
        };
        let uri: Uri = url.parse().map_err(|e| fail(format!("{e}")))?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(crate::tls::provider())
            .map_err(|e| fail(format!("no CA certificates: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
        let resp = client.get(uri).await.map_err(|e| fail(format!("{e}")))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(fail(format!("HTTP {status}")));
        }
        let max = self.cfg.max_package_bytes;
        let mut body = resp.into_body();
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| fail(format!("{e}")))?;
            if let Ok(data) = frame.into_data() {
                out.extend_from_slice(&data);
                if out.len() as u64 > max {
                    return Err(PackageError::TooLarge {
                        size: out.len() as u64,
                        max,
                    });
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn store(max: u64) -> (tempfile::TempDir, Arc<Packages>) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = UpgradeConfig {
            max_package_bytes: max,
            ..Default::default()
        };
        let p = Packages::open(dir.path().join("packages"), cfg).unwrap();
        (dir, Arc::new(p))
    }

    #[tokio::test]
    async fn a_package_is_stored_once_by_its_sha256_and_held_once_in_memory() {
        let (_d, p) = store(1 << 20);
        let a = p.put(b"firmware").unwrap();
        assert_eq!(a.package, sha256_hex(b"firmware"));
        assert_eq!(p.put(b"firmware").unwrap(), a, "same bytes, same package");
        assert_eq!(p.list().unwrap(), vec![a.clone()]);
        let one = p.get(&a.package).await.unwrap();
        let two = p.get(&a.package).await.unwrap();
        assert!(Arc::ptr_eq(&one, &two), "one copy while held");
        assert_eq!(&one[..], b"firmware");
        let r = PackageRef::Stored(a.package.clone());
        let wrong = "0".repeat(64);
        assert!(matches!(
            p.resolve(&r, Some(&wrong)).await,
            Err(PackageError::Checksum { .. })
        ));
        assert!(matches!(
            p.get(&wrong).await,
            Err(PackageError::NotFound(_))
        ));
        assert!(matches!(
            p.put(&vec![0u8; (1 << 20) + 1]),
            Err(PackageError::TooLarge { .. })
        ));
    }

    /// Serves `body` to every connection, counting them.
    async fn http_server(body: Vec<u8>) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let (addr, hits) = test_support::http::file_server(body).await;
        (format!("http://{addr}/fw.bin"), hits)
    }

    #[tokio::test]
    async fn a_url_is_downloaded_once_for_many_callers_and_capped() {
        let body: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let (url, hits) = http_server(body.clone()).await;
        let (_d, p) = store(1 << 20);
        let r = PackageRef::Url(url.clone());
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (p, r) = (p.clone(), r.clone());
            tasks.push(tokio::spawn(async move { p.resolve(&r, None).await }));
        }
        for t in tasks {
            let (id, bytes) = t.await.unwrap().unwrap();
            assert_eq!(id, sha256_hex(&body));
            assert_eq!(&bytes[..], &body[..]);
        }
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);

        let (_d2, small) = store(1000);
        assert!(matches!(
            small.resolve(&r, None).await,
            Err(PackageError::TooLarge { .. })
        ));
        let bad = PackageRef::Url("http://127.0.0.1:1/none".into());
        assert!(matches!(
            p.resolve(&bad, None).await,
            Err(PackageError::Download { .. })
        ));
    }
}
