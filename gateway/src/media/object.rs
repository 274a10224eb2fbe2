//! The media store on object storage: S3 and compatibles (MinIO, Ceph RGW, Alibaba OSS,
//! Tencent COS), through the `object_store` crate.
//!
//! Keys are `{prefix}{vehicle_id}/{name}`, as the directory store's paths. A file up to
//! [`PART_BYTES`] is one PUT (atomic: whole or absent); a larger one a multipart upload in
//! parts of that size, aborted if reading its parts fails, so memory per upload being stored
//! stays at two parts whatever the file's size. The parts of uploads still arriving stay on
//! the local disk (`scratch`): vehicles send packages for minutes, object stores want whole
//! objects.
//!
//! [`MediaStore`] is blocking (sessions call it on the blocking pool); this store runs each
//! request on the runtime it was built on.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use codecs::event::StoredMedia;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{component, MediaStore, UploadLimits};

/// Bytes of one PUT, and of each part of a multipart upload (S3 wants 5 MiB or more).
pub const PART_BYTES: usize = 8 << 20;

/// `[media.s3]`. Credentials may also come from the standard `AWS_*` environment
/// variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
/// `AWS_ENDPOINT`...); what is set here wins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    pub bucket: String,
    /// e.g. `us-east-1`, `cn-north-1`.
    pub region: Option<String>,
    /// For compatibles: `http://127.0.0.1:9000` (MinIO), `https://oss-cn-hangzhou.aliyuncs.com`.
    pub endpoint: Option<String>,
    /// Keys start with this (`vgate/media/`).
    pub prefix: String,
    pub access_key_id: Option<String>,
    /// Never printed (`vgate config`) nor logged.
    #[serde(skip_serializing)]
    pub secret_access_key: Option<String>,
    /// A file whose first line is the secret key, instead (a container secret).
    pub secret_access_key_file: Option<PathBuf>,
    /// Allow a plain `http://` endpoint (a local MinIO).
    pub allow_http: bool,
    /// Address objects as `https://{bucket}.{endpoint}` (OSS, COS) rather than by path.
    pub virtual_hosted_style: bool,
    /// Where consumers fetch files: the `media` event's `url` is `{public_url}/{key}`;
    /// unset: `s3://{bucket}/{key}`.
    pub public_url: Option<String>,
}

/// An S3 store that cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("media.s3.bucket: required with media.store = \"s3\"")]
    NoBucket,
    #[error("media.s3.secret_access_key_file {path}: {source}")]
    SecretFile { path: PathBuf, source: io::Error },
    #[error("media.s3: {0}")]
    Build(#[from] object_store::Error),
    #[error("media.store = \"s3\" needs the runtime (started outside it)")]
    NoRuntime,
}

/// Files in an object store.
pub struct ObjectMediaStore {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    url_base: String,
    scratch: PathBuf,
    limits: UploadLimits,
    rt: tokio::runtime::Handle,
}

impl std::fmt::Debug for ObjectMediaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectMediaStore")
            .field("store", &self.store.to_string())
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl ObjectMediaStore {
    /// The store `cfg` describes; parts of uploads in progress under `scratch`.
    pub fn s3(cfg: &S3Config, scratch: PathBuf, limits: UploadLimits) -> Result<Self, S3Error> {
        if cfg.bucket.is_empty() {
            return Err(S3Error::NoBucket);
        }
        let mut b = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&cfg.bucket)
            .with_allow_http(cfg.allow_http)
            .with_virtual_hosted_style_request(cfg.virtual_hosted_style);
        if let Some(r) = &cfg.region {
            b = b.with_region(r);
        }
        if let Some(e) = &cfg.endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(k) = &cfg.access_key_id {
            b = b.with_access_key_id(k);
        }
        let secret = match (&cfg.secret_access_key, &cfg.secret_access_key_file) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map_err(|source| S3Error::SecretFile {
                        path: path.clone(),
                        source,
                    })?
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        if let Some(s) = secret {
            b = b.with_secret_access_key(s);
        }
        let store = Arc::new(b.build()?);
        let url_base = match &cfg.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("s3://{}", cfg.bucket),
        };
        Self::over(store, &cfg.prefix, url_base, scratch, limits)
    }

    /// Files in `store` (any `object_store` implementation: tests use the in-memory one).
    pub fn over(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        url_base: String,
        scratch: PathBuf,
        limits: UploadLimits,
    ) -> Result<Self, S3Error> {
        let rt = tokio::runtime::Handle::try_current().map_err(|_| S3Error::NoRuntime)?;
        let _ = std::fs::remove_dir_all(&scratch);
        Ok(ObjectMediaStore {
            store,
            prefix: prefix.to_owned(),
            url_base,
            scratch,
            limits,
            rt,
        })
    }
}

/// Reads up to `buf.len()` bytes (fewer only at the end of `src`).
fn fill(src: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(buf.get_mut(n..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl MediaStore for ObjectMediaStore {
    fn put_reader(&self, vehicle: &str, name: &str, src: &mut dyn Read) -> io::Result<StoredMedia> {
        let (vid, name) = (component(vehicle)?, component(name)?);
        let key = format!("{}{vid}/{name}", self.prefix);
        tracing::debug!(key, "storing to the object store");
        let location = ObjectPath::from(key.as_str());
        let mut hash = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; PART_BYTES];
        let n = fill(src, &mut buf)?;
        let first = buf.get(..n).unwrap_or_default();
        hash.update(first);
        size += n as u64;
        let store = self.store.clone();
        if n < PART_BYTES {
            let payload = PutPayload::from(first.to_vec());
            self.rt
                .block_on(store.put(&location, payload))
                .map_err(io::Error::other)?;
            tracing::debug!(key, "stored");
        } else {
            let upload = self
                .rt
                .block_on(store.put_multipart(&location))
                .map_err(io::Error::other)?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
            w.write(first);
            let streamed: io::Result<()> = (|| loop {
                self.rt
                    .block_on(w.wait_for_capacity(2))
                    .map_err(io::Error::other)?;
                let n = fill(src, &mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                let chunk = buf.get(..n).unwrap_or_default();
                hash.update(chunk);
                size += n as u64;
                w.write(chunk);
            })();
            if let Err(e) = streamed {
                let _ = self.rt.block_on(w.abort());
                return Err(e);
            }
            self.rt.block_on(w.finish()).map_err(io::Error::other)?;
        }
        Ok(StoredMedia {
            size,
            sha256: hex::encode(hash.finalize()),
            url: Some(format!("{}/{key}", self.url_base)),
            key,
        })
    }

    fn scratch(&self) -> PathBuf {
        self.scratch.clone()
    }

    fn limits(&self) -> UploadLimits {
        self.limits
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use object_store::memory::InMemory;

    async fn stored(store: &InMemory, key: &str) -> Vec<u8> {
        store
            .get(&ObjectPath::from(key))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn small_files_are_one_put_large_ones_a_multipart_upload_with_their_sha256() {
        let mem = Arc::new(InMemory::new());
        let dir = tempfile::tempdir().unwrap();
        let media = ObjectMediaStore::over(
            mem.clone(),
            "fleet-a/",
            "https://cdn.example.com/media".into(),
            dir.path().join("parts"),
            UploadLimits::default(),
        )
        .unwrap();
        let media = Arc::new(media);
        let small: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let large: Vec<u8> = (0..(PART_BYTES as u32 * 2 + 12_345))
            .map(|i| (i % 251) as u8)
            .collect();
        let (m, s, l) = (media.clone(), small.clone(), large.clone());
        let (a, b) = tokio::task::spawn_blocking(move || {
            (
                m.put("013800138000", "1-photo.jpg", &s).unwrap(),
                m.put("013800138000", "2-video.mp4", &l).unwrap(),
            )
        })
        .await
        .unwrap();
        assert_eq!(a.key, "fleet-a/013800138000/1-photo.jpg");
        assert_eq!(
            a.url.as_deref(),
            Some("https://cdn.example.com/media/fleet-a/013800138000/1-photo.jpg")
        );
        assert_eq!(a.size, small.len() as u64);
        assert_eq!(a.sha256, hex::encode(Sha256::digest(&small)));
        assert_eq!(stored(&mem, &a.key).await, small);
        assert_eq!(b.size, large.len() as u64);
        assert_eq!(b.sha256, hex::encode(Sha256::digest(&large)));
        assert!(
            stored(&mem, &b.key).await == large,
            "multipart upload whole"
        );
        let m = media.clone();
        let bad = tokio::task::spawn_blocking(move || m.put("../x", "a", b"x"))
            .await
            .unwrap();
        assert!(bad.is_err());
    }

    #[tokio::test]
    async fn an_s3_store_needs_a_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let err = ObjectMediaStore::s3(
            &S3Config::default(),
            dir.path().into(),
            UploadLimits::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("bucket"));
    }
}
