//! The media store, and uploads in progress: where the files vehicles upload (JT/T 808
//! 0x0801 photos, audio, video) go.
//!
//! [`DirStore`], the default, writes each file under a directory (`{data_dir}/media`),
//! one subdirectory per vehicle: written to a temporary name while its SHA-256 is computed,
//! synced, then renamed, so a file is either whole or absent. An object-storage
//! [`object::ObjectMediaStore`] puts them in S3 or a compatible object store instead
//! (`[media] store = "s3"`), through the same [`MediaStore`] interface.
//!
//! [`Uploads`] holds one connection's subpackaged uploads while their packages arrive: each
//! package is written straight to a parts file in the store's scratch directory at its slot
//! (`jt808::media::Assembly` says where and what is missing), so memory stays at a few bytes
//! per package whatever the file's size. A whole upload is then streamed from the parts file
//! into the store ([`Parts`], a reader) and the parts file removed. Bounds ([`UploadLimits`],
//! `[media]`): at most `max_uploads_per_connection` uploads in progress per connection,
//! `max_file_bytes` per file, and an upload without a new package for the listener's
//! `subpackage_timeout_s` is dropped.

pub mod object;

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use codecs::event::StoredMedia;
use jt808::media::{Assembly, AssemblyError, UPLOAD_HEADER_LEN};
use jt808::msg::MediaUpload;
use jt808::{Frame, Header};
use sha2::{Digest, Sha256};

/// `[media]`: where uploaded files go, and the bounds of uploads in progress.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// `dir` (files under `dir`, default `{data_dir}/media`) or `s3` (`[media.s3]`).
    pub store: StoreKind,
    /// The directory of the `dir` store; unset: `{data_dir}/media`.
    pub dir: Option<PathBuf>,
    /// Uploads in progress on one connection; a further one is refused.
    pub max_uploads_per_connection: usize,
    /// The largest file one upload may carry, bytes.
    pub max_file_bytes: u64,
    /// The `s3` store.
    pub s3: object::S3Config,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            store: StoreKind::Dir,
            dir: None,
            max_uploads_per_connection: 2,
            max_file_bytes: 32 << 20,
            s3: object::S3Config::default(),
        }
    }
}

/// Which media store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    Dir,
    S3,
}

/// The bounds of one connection's uploads in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    pub max_open: usize,
    pub max_file_bytes: u64,
}

impl Default for UploadLimits {
    fn default() -> Self {
        let c = MediaConfig::default();
        UploadLimits {
            max_open: c.max_uploads_per_connection,
            max_file_bytes: c.max_file_bytes,
        }
    }
}

impl From<&MediaConfig> for UploadLimits {
    fn from(c: &MediaConfig) -> Self {
        UploadLimits {
            max_open: c.max_uploads_per_connection.max(1),
            max_file_bytes: c.max_file_bytes,
        }
    }
}

/// The media store `cfg` names, files of the `dir` store under `data_dir/media` unless
/// `cfg.dir` says otherwise; the S3 store's parts of uploads in progress in
/// `data_dir/media-parts`. Must be called on the runtime (the S3 store keeps its handle).
pub fn open(cfg: &MediaConfig, data_dir: &Path) -> Result<Arc<dyn MediaStore>, object::S3Error> {
    let limits = UploadLimits::from(cfg);
    Ok(match cfg.store {
        StoreKind::Dir => {
            let root = cfg.dir.clone().unwrap_or_else(|| data_dir.join("media"));
            Arc::new(DirStore::open(root).with_limits(limits))
        }
        StoreKind::S3 => Arc::new(object::ObjectMediaStore::s3(
            &cfg.s3,
            data_dir.join("media-parts"),
            limits,
        )?),
    })
}

/// Where uploaded files are kept.
pub trait MediaStore: Send + Sync {
    /// Stores what `src` yields as `name` of `vehicle` and says where it went, with the
    /// size and SHA-256 of what it read. Blocking (file or network I/O): sessions call it on
    /// the blocking pool.
    fn put_reader(&self, vehicle: &str, name: &str, src: &mut dyn Read) -> io::Result<StoredMedia>;

    /// A local directory for the parts of uploads in progress.
    fn scratch(&self) -> PathBuf;

    /// The bounds of one connection's uploads in progress.
    fn limits(&self) -> UploadLimits {
        UploadLimits::default()
    }

    /// Stores `data` (see [`MediaStore::put_reader`]).
    fn put(&self, vehicle_id: &str, name: &str, data: &[u8]) -> io::Result<StoredMedia> {
        self.put_reader(vehicle_id, name, &mut &data[..])
    }
}

/// Files under a directory: `{root}/{vehicle_id}/{name}`, key `{vehicle_id}/{name}`; parts
/// of uploads in progress in `{root}/.parts`.
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
    limits: UploadLimits,
}

impl DirStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirStore {
            root: root.into(),
            limits: UploadLimits::default(),
        }
    }

    /// The same store with other upload bounds.
    pub fn with_limits(mut self, limits: UploadLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The store at `root`, without the parts of uploads a previous run left unfinished
    /// (their connections are gone; the terminals upload those files again).
    pub fn open(root: impl Into<PathBuf>) -> Self {
        let store = DirStore::new(root);
        let _ = std::fs::remove_dir_all(store.scratch());
        store
    }

    /// The directory files go under.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// A path component from a vehicle id or file name: vehicle ids are already
/// `[A-Za-z0-9_-]` (contract §2) and names are made by the protocol crate, so this only
/// guards against a separator or `..` ever reaching the file system.
fn component(s: &str) -> io::Result<&str> {
    let ok = !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(s)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a file name: {s:?}"),
        ))
    }
}

impl MediaStore for DirStore {
    fn put_reader(&self, vehicle: &str, name: &str, src: &mut dyn Read) -> io::Result<StoredMedia> {
        let (vid, name) = (component(vehicle)?, component(name)?);
        let dir = self.root.join(vid);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.{:016x}.part", rand::random::<u64>()));
        let mut hash = Sha256::new();
        let mut size = 0u64;
        let written = (|| {
            let mut f = File::create(&tmp)?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match src.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                let chunk = buf.get(..n).unwrap_or(&[]);
                hash.update(chunk);
                f.write_all(chunk)?;
                size += n as u64;
            }
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(StoredMedia {
            size,
            sha256: hex::encode(hash.finalize()),
            key: format!("{vid}/{name}"),
            url: None,
        })
    }

    fn scratch(&self) -> PathBuf {
        self.root.join(".parts")
    }

    fn limits(&self) -> UploadLimits {
        self.limits
    }
}

/// A whole upload's parts file read back in package order, without the upload's header:
/// the file's bytes. Removes the parts file when dropped.
pub struct Parts {
    file: File,
    path: PathBuf,
    /// (offset, length) of what is left to read, in order.
    parts: std::vec::IntoIter<(u64, usize)>,
    current: Option<(u64, usize)>,
}

impl Read for Parts {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let (offset, len) = match self.current {
                Some(c) if c.1 > 0 => c,
                _ => match self.parts.next() {
                    Some(p) => {
                        self.current = Some(p);
                        continue;
                    }
                    None => return Ok(0),
                },
            };
            let n = len.min(buf.len());
            let dst = buf.get_mut(..n).unwrap_or(&mut []);
            self.file.read_exact_at(dst, offset)?;
            self.current = Some((offset + n as u64, len - n));
            return Ok(n);
        }
    }
}

impl Drop for Parts {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One upload in progress.
struct Upload {
    asm: Assembly,
    /// The first package's header (its serial is the upload's first serial).
    header: Header,
    first_serial: u16,
    file: File,
    path: PathBuf,
    /// The media id, once package 1 arrived.
    media_id: Option<u32>,
    last: Instant,
    reported_at: Option<Instant>,
    reports: u32,
}

impl Drop for Upload {
    fn drop(&mut self) {
        // A complete upload's file has been handed to `Parts` (renamed away): harmless.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What a package did.
pub enum Pushed {
    /// Taken; more to come.
    Pending,
    /// The last package arrived and some are missing: ask for them.
    Missing(Missing),
    /// Every package is there.
    Complete(Complete),
}

/// Packages to ask for again: with 0x8800 and the media id when package 1 arrived (it
/// carries the id), else with 0x8003 and the first serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub header: Header,
    pub first_serial: u16,
    pub media_id: Option<u32>,
    pub ids: Vec<u16>,
}

/// A whole upload: its header (the 0x0801's fields, `data` empty), the header of its first
/// package (serial = first serial), and its file.
pub struct Complete {
    pub header: Header,
    pub upload: MediaUpload,
    pub file: Parts,
}

/// A package that cannot be taken.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("0x0801 package: {0}")]
    Assembly(#[from] AssemblyError),
    #[error("0x0801: {open} uploads in progress, max {max}")]
    TooManyUploads { open: usize, max: usize },
    #[error("0x0801 without its package attributes")]
    NotAPackage,
    #[error("0x0801 header: {0}")]
    Header(#[from] jt808::BodyError),
    #[error("0x0801 parts file: {0}")]
    Io(#[from] io::Error),
}

impl UploadError {
    /// A label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            UploadError::Assembly(AssemblyError::BadIndex { .. }) => "media_bad_index",
            UploadError::Assembly(AssemblyError::TooLong { .. }) => "media_package_too_long",
            UploadError::Assembly(AssemblyError::TooLarge { .. }) => "media_too_large",
            UploadError::TooManyUploads { .. } => "media_too_many_uploads",
            UploadError::NotAPackage => "media_not_a_package",
            UploadError::Header(_) => "media_bad_header",
            UploadError::Io(_) => "media_io",
        }
    }
}

/// One connection's subpackaged uploads in progress (see the module docs).
pub struct Uploads {
    dir: PathBuf,
    limits: UploadLimits,
    quiet: Duration,
    timeout: Duration,
    max_reports: u32,
    open: Vec<Upload>,
}

impl Uploads {
    /// Parts files under `dir`; missing packages asked for after `quiet` without a new
    /// package (at most 5 times), an upload dropped after `timeout` without one.
    pub fn new(dir: PathBuf, quiet: Duration, timeout: Duration, limits: UploadLimits) -> Self {
        Uploads {
            dir,
            limits,
            quiet,
            timeout,
            max_reports: 5,
            open: Vec::new(),
        }
    }

    /// Whether no upload is in progress.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Takes one package of a 0x0801: writes it at its slot.
    pub fn push(&mut self, frame: Frame, now: Instant) -> Result<Pushed, UploadError> {
        let pkg = frame.header.package.ok_or(UploadError::NotAPackage)?;
        let first_serial = frame.header.serial.wrapping_sub(pkg.index.wrapping_sub(1));
        let at = match self.open.iter().position(|u| u.asm.total() == pkg.total) {
            Some(i) => i,
            None => {
                if self.open.len() >= self.limits.max_open {
                    return Err(UploadError::TooManyUploads {
                        open: self.open.len(),
                        max: self.limits.max_open,
                    });
                }
                if pkg.total == 0 {
                    return Err(AssemblyError::BadIndex {
                        index: pkg.index,
                        total: 0,
                    }
                    .into());
                }
                std::fs::create_dir_all(&self.dir)?;
                let path = self.dir.join(format!(
                    "{}-{first_serial}-{:016x}.part",
                    frame.header.phone,
                    rand::random::<u64>()
                ));
                let file = File::options()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&path)?;
                self.open.push(Upload {
                    asm: Assembly::new(
                        pkg.total,
                        self.limits.max_file_bytes + UPLOAD_HEADER_LEN as u64,
                    ),
                    header: Header {
                        package: None,
                        ..frame.header.clone()
                    },
                    first_serial,
                    file,
                    path,
                    media_id: None,
                    last: now,
                    reported_at: None,
                    reports: 0,
                });
                self.open.len() - 1
            }
        };
        let Some(u) = self.open.get_mut(at) else {
            return Ok(Pushed::Pending);
        };
        u.last = now;
        let placed = u.asm.accept(pkg.index, frame.body.len())?;
        if !placed.duplicate {
            u.file.write_all_at(&frame.body, placed.offset)?;
        }
        if pkg.index == 1 {
            u.first_serial = frame.header.serial;
            u.header = Header {
                package: None,
                ..frame.header.clone()
            };
            u.media_id = frame
                .body
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes);
        }
        if u.asm.is_complete() {
            let u = self.open.swap_remove(at);
            return Ok(Pushed::Complete(complete(u)?));
        }
        if pkg.index == pkg.total && !placed.duplicate {
            u.reported_at = Some(now);
            return Ok(Pushed::Missing(missing(u)));
        }
        Ok(Pushed::Pending)
    }

    /// Once a second: uploads quiet for `quiet` ask for their missing packages again;
    /// uploads quiet for `timeout`, or asked too often, are dropped (returned: how many).
    pub fn poll(&mut self, now: Instant) -> (Vec<Missing>, usize) {
        let before = self.open.len();
        let timeout = self.timeout;
        let max_reports = self.max_reports;
        self.open.retain(|u| {
            now.duration_since(u.last) < timeout
                && !(u.reports >= max_reports
                    && u.reported_at
                        .is_some_and(|t| now.duration_since(t) >= timeout))
        });
        let dropped = before - self.open.len();
        let mut out = Vec::new();
        for u in &mut self.open {
            let quiet_since = u.reported_at.map_or(u.last, |t| t.max(u.last));
            if now.duration_since(quiet_since) >= self.quiet && u.reports < self.max_reports {
                u.reported_at = Some(now);
                u.reports += 1;
                out.push(missing(u));
            }
        }
        (out, dropped)
    }
}

fn missing(u: &Upload) -> Missing {
    Missing {
        header: u.header.clone(),
        first_serial: u.first_serial,
        media_id: u.media_id,
        ids: u.asm.missing(),
    }
}

/// A whole upload's header read from its parts file, and the file handed to [`Parts`].
fn complete(mut u: Upload) -> Result<Complete, UploadError> {
    let parts: Vec<(u64, usize)> = u.asm.parts().collect();
    let mut head = Vec::with_capacity(UPLOAD_HEADER_LEN);
    let mut rest = Vec::with_capacity(parts.len());
    for (offset, len) in parts {
        let take = (UPLOAD_HEADER_LEN - head.len()).min(len);
        if take > 0 {
            let mut b = vec![0u8; take];
            u.file.read_exact_at(&mut b, offset)?;
            head.extend_from_slice(&b);
        }
        if len > take {
            rest.push((offset + take as u64, len - take));
        }
    }
    let upload = jt808::media::upload_header(&head)?;
    // The parts file now belongs to `Parts` (which removes it when done).
    let file = u.file.try_clone()?;
    let path = std::mem::take(&mut u.path);
    let header = Header {
        serial: u.first_serial,
        ..u.header.clone()
    };
    Ok(Complete {
        header,
        upload,
        file: Parts {
            file,
            path,
            parts: rest.into_iter(),
            current: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The packages of a 0x0801 carrying `data` (media id 9), `size` body bytes each.
    fn packages(data: &[u8], size: usize) -> Vec<Frame> {
        let msg = jt808::Message::MediaUpload(MediaUpload {
            media_id: 9,
            media_type: 0,
            format: 0,
            event: 1,
            channel: 1,
            location: jt808::msg::LocationReport {
                alarm: 0,
                status: 0,
                latitude: 1,
                longitude: 2,
                altitude: 0,
                speed: 0,
                heading: 0,
                time: [0x24, 1, 1, 0, 0, 0],
                items: Default::default(),
                tail: Vec::new(),
            },
            data: data.to_vec(),
        });
        let body = msg.encode_body(jt808::Version::V2013).unwrap();
        let h = Header::to_terminal(0x0801, jt808::Version::V2013, "013800138000".into(), 100);
        jt808::subpackage::split(&h, &body, size)
    }

    /// Uploads with parts files in `scratch`: asked again after 1 s quiet, dropped after
    /// `timeout_s`, the default limits.
    fn uploads(scratch: &Path, timeout_s: u64) -> Uploads {
        Uploads::new(
            scratch.to_path_buf(),
            Duration::from_secs(1),
            Duration::from_secs(timeout_s),
            UploadLimits::default(),
        )
    }

    fn parts_files(dir: &Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |d| d.count())
    }

    #[test]
    fn packages_go_to_a_parts_file_a_lost_one_is_asked_for_and_the_file_streams_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = dir.path().join(".parts");
        let mut up = uploads(&scratch, 60);
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        let frames = packages(&data, 1000);
        assert_eq!(frames.len(), 11);
        let now = Instant::now();
        let lost = frames[4].clone();
        for (i, f) in frames.into_iter().enumerate() {
            if i == 4 {
                continue;
            }
            match up.push(f, now).unwrap() {
                Pushed::Pending => assert!(i < 10),
                Pushed::Missing(m) => {
                    assert_eq!(i, 10, "asked once the last package is in");
                    assert_eq!(m.ids, [5]);
                    assert_eq!(m.media_id, Some(9));
                    assert_eq!(m.first_serial, 100);
                }
                Pushed::Complete(_) => panic!("not complete yet"),
            }
        }
        assert_eq!(parts_files(&scratch), 1);
        let Pushed::Complete(mut c) = up.push(lost, now).unwrap() else {
            panic!("complete")
        };
        assert!(up.is_empty());
        assert_eq!((c.upload.media_id, c.upload.event), (9, 1));
        assert_eq!(c.header.serial, 100);
        let store = DirStore::new(dir.path());
        let stored = store
            .put_reader("013800138000", "9_100.jpg", &mut c.file)
            .unwrap();
        assert_eq!(stored.size, 10_000);
        assert_eq!(stored.sha256, hex::encode(Sha256::digest(&data)));
        assert_eq!(std::fs::read(dir.path().join(&stored.key)).unwrap(), data);
        drop(c);
        assert_eq!(parts_files(&scratch), 0, "the parts file is removed");
    }

    #[test]
    fn a_stalled_upload_is_asked_again_when_quiet_and_dropped_with_its_file_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = dir.path().join(".parts");
        let mut up = uploads(&scratch, 10);
        let frames = packages(&[7u8; 3000], 1000);
        let t0 = Instant::now();
        // Package 1 only: the id is known, three packages are missing.
        assert!(matches!(
            up.push(frames[0].clone(), t0).unwrap(),
            Pushed::Pending
        ));
        assert!(up.poll(t0).0.is_empty(), "not quiet yet");
        let (asks, dropped) = up.poll(t0 + Duration::from_secs(2));
        assert_eq!(dropped, 0);
        assert_eq!(asks.len(), 1);
        assert_eq!(asks[0].ids, [2, 3, 4]);
        assert_eq!(parts_files(&scratch), 1);
        let (_, dropped) = up.poll(t0 + Duration::from_secs(11));
        assert_eq!(dropped, 1);
        assert!(up.is_empty());
        assert_eq!(parts_files(&scratch), 0);
    }

    #[test]
    fn a_third_upload_at_once_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut up = uploads(dir.path(), 10);
        let now = Instant::now();
        for size in [2000, 3000] {
            assert!(up
                .push(packages(&vec![0; size], 1000)[0].clone(), now)
                .is_ok());
        }
        let third = packages(&[0; 4000], 1000)[0].clone();
        assert!(matches!(
            up.push(third, now),
            Err(UploadError::TooManyUploads { .. })
        ));
    }

    #[test]
    fn a_file_is_written_whole_under_its_vehicle_with_its_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path().join("media"));
        let s = store.put("013800138000", "7_9.jpg", b"abc").unwrap();
        assert_eq!(s.key, "013800138000/7_9.jpg");
        assert_eq!(s.size, 3);
        assert_eq!(
            s.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let path = dir.path().join("media/013800138000/7_9.jpg");
        assert_eq!(std::fs::read(path).unwrap(), b"abc");
        let left: Vec<_> = std::fs::read_dir(dir.path().join("media/013800138000"))
            .unwrap()
            .collect();
        assert_eq!(left.len(), 1, "no temporary file left");
    }

    #[test]
    fn opening_the_store_removes_parts_left_by_a_previous_run_and_keeps_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        store.put("v1", "1_1.jpg", b"x").unwrap();
        std::fs::create_dir_all(store.scratch()).unwrap();
        std::fs::write(store.scratch().join("v1-1-0.part"), b"half").unwrap();
        let store = DirStore::open(dir.path());
        assert!(!store.scratch().exists());
        assert_eq!(std::fs::read(dir.path().join("v1/1_1.jpg")).unwrap(), b"x");
    }

    #[test]
    fn a_name_with_a_separator_or_dot_dot_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        for (vid, name) in [("..", "a"), ("v", "../a"), ("v/w", "a"), ("v", "")] {
            assert!(store.put(vid, name, b"x").is_err(), "{vid:?} {name:?}");
        }
    }
}
