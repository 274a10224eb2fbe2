//! The media store: where the files vehicles upload (JT/T 808 0x0801 photos, audio, video)
//! go once reassembled, before their `media` event is published.
//!
//! [`DirStore`], the default, writes each file under a directory (`{data_dir}/media`),
//! one subdirectory per vehicle: written to a temporary name, synced, then renamed, so a
//! file is either whole or absent. An object-storage implementation (S3 and compatibles)
//! fits the same [`MediaStore`] interface.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use codecs::event::StoredMedia;
use sha2::{Digest, Sha256};

/// Where uploaded files are kept.
pub trait MediaStore: Send + Sync {
    /// Stores `data` as `name` of `vehicle_id` and says where it went. Blocking (file or
    /// network I/O): sessions call it on the blocking pool.
    fn put(&self, vehicle_id: &str, name: &str, data: &[u8]) -> io::Result<StoredMedia>;
}

/// Files under a directory: `{root}/{vehicle_id}/{name}`, key `{vehicle_id}/{name}`.
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirStore { root: root.into() }
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
    fn put(&self, vehicle_id: &str, name: &str, data: &[u8]) -> io::Result<StoredMedia> {
        let (vid, name) = (component(vehicle_id)?, component(name)?);
        let dir = self.root.join(vid);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.{:016x}.part", rand::random::<u64>()));
        let written = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(StoredMedia {
            size: data.len() as u64,
            sha256: hex::encode(Sha256::digest(data)),
            key: format!("{vid}/{name}"),
            url: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_name_with_a_separator_or_dot_dot_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        for (vid, name) in [("..", "a"), ("v", "../a"), ("v/w", "a"), ("v", "")] {
            assert!(store.put(vid, name, b"x").is_err(), "{vid:?} {name:?}");
        }
    }
}
