//! The durable store of JT/T 808 auth codes issued at registration.
//!
//! A terminal registers once (0x0100), keeps the auth code of the 0x8100 answer in flash and
//! presents it at every later connection (0x0102), often for years. If the gateway forgot the
//! code on restart every terminal would be locked out until it happens to register again, so
//! the codes live in the data directory, per listener, in two files:
//!
//! - a snapshot, one JSON object `{phone: {code, issued_at}}`, written through a temporary
//!   file, `fsync` and `rename`, so a crash leaves either the old or the new one;
//! - a journal next to it (`<snapshot>.log`), one JSON line per code issued since the
//!   snapshot, appended and `fsync`ed before the code is handed out.
//!
//! A registration costs one small append (concurrent registrations share one fsync: group
//! commit), whatever the number of terminals (rewriting the
//! whole file per registration made a fleet's first registration storm quadratic). At start
//! the journal is replayed over the snapshot, folded into a new snapshot and emptied. A torn
//! last line (a crash in the middle of an append) is ignored: its code was never handed out.
//!
//! Codes are secrets: nothing here logs one, and [`Redacted`] is what callers log instead.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

/// Length of the auth codes the gateway generates (alphanumeric, ~95 bits of entropy).
pub const CODE_LEN: usize = 16;

/// Errors of the code store.
#[derive(Debug, thiserror::Error)]
pub enum CodeStoreError {
    /// The file exists but cannot be read.
    #[error("reading auth codes {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not the JSON this module writes.
    #[error("auth codes {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// Writing the new file (temporary file, sync or rename) failed.
    #[error("writing auth codes {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The shared store (Redis, cluster mode) failed.
    #[error("shared auth codes: {0}")]
    Shared(String),
}

/// One issued code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    code: String,
    /// RFC 3339 UTC time of issue, for operators reading the file.
    issued_at: String,
    /// Journal sequence number of the append that makes it durable (0: already on disk).
    #[serde(skip)]
    seq: u64,
}

/// Journal lines not yet written, in order (group commit: one fsync for all of them).
#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    /// Sequence number of the last line in `bytes`.
    last: u64,
    next: u64,
}

/// Auth codes by terminal phone number, persisted in `path`.
#[derive(Debug)]
pub struct CodeStore {
    path: PathBuf,
    codes: Mutex<BTreeMap<String, Entry>>,
    pending: std::sync::Mutex<Pending>,
    /// Highest journal sequence number known durable.
    flushed: std::sync::atomic::AtomicU64,
    /// One journal writer at a time; the others' lines ride along with its fsync.
    flush_lock: Mutex<()>,
    /// Cluster mode: the codes every node shares ([`CodeStore::share`]).
    shared: Option<crate::cluster::codes::RedisCodes>,
}

impl CodeStore {
    /// Loads `path` and its journal (absent files are an empty store; the directory is
    /// created on first write), then folds the journal into a new snapshot.
    pub async fn open(path: PathBuf) -> Result<CodeStore, CodeStoreError> {
        let mut codes: BTreeMap<String, Entry> = match tokio::fs::read(&path).await {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| CodeStoreError::Parse {
                    path: path.clone(),
                    source,
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(CodeStoreError::Read { path, source }),
        };
        let journal = journal_path(&path);
        let replayed = match tokio::fs::read(&journal).await {
            Ok(bytes) => replay(&bytes, &mut codes).map_err(|source| CodeStoreError::Parse {
                path: journal.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => {
                return Err(CodeStoreError::Read {
                    path: journal,
                    source,
                })
            }
        };
        let store = CodeStore {
            path,
            codes: Mutex::new(codes),
            pending: std::sync::Mutex::new(Pending {
                bytes: Vec::new(),
                last: 0,
                next: 1,
            }),
            flushed: std::sync::atomic::AtomicU64::new(0),
            flush_lock: Mutex::new(()),
            shared: None,
        };
        if replayed > 0 {
            let codes = store.codes.lock().await.clone();
            store.write(&codes).await?;
            let journal = journal_path(&store.path);
            tokio::fs::remove_file(&journal)
                .await
                .map_err(|source| CodeStoreError::Write {
                    path: journal,
                    source,
                })?;
        }
        Ok(store)
    }

    /// Where the codes are kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Shares the codes with the other nodes through Redis (cluster mode,
    /// [`crate::cluster::codes`]); this store stays the local copy.
    pub fn share(mut self, shared: crate::cluster::codes::RedisCodes) -> CodeStore {
        self.shared = Some(shared);
        self
    }

    /// The code stored for `phone`, if any: the shared one in cluster mode (kept here too),
    /// the local copy when Redis does not answer.
    pub async fn get(&self, phone: &str) -> Option<String> {
        if let Some(shared) = &self.shared {
            match shared.get(phone).await {
                Ok(Some(code)) => {
                    if self.local(phone).await.as_deref() != Some(code.as_str()) {
                        if let Err(e) = self.set_local(phone, &code).await {
                            tracing::warn!(vehicle_id = phone, error = %e, "auth code not copied locally");
                        }
                    }
                    return Some(code);
                }
                Ok(None) => return None,
                Err(e) => {
                    tracing::warn!(vehicle_id = phone, error = %e, "Redis unavailable: auth code from the local copy");
                }
            }
        }
        self.local(phone).await
    }

    async fn local(&self, phone: &str) -> Option<String> {
        self.codes.lock().await.get(phone).map(|e| e.code.clone())
    }

    /// Binds `code` to `phone` and persists the store (a no-op when it is already bound);
    /// in cluster mode in Redis first.
    pub async fn set(&self, phone: &str, code: &str) -> Result<(), CodeStoreError> {
        if let Some(shared) = &self.shared {
            shared
                .set(phone, code)
                .await
                .map_err(|e| CodeStoreError::Shared(e.to_string()))?;
        }
        self.set_local(phone, code).await
    }

    async fn set_local(&self, phone: &str, code: &str) -> Result<(), CodeStoreError> {
        let seq = {
            let mut codes = self.codes.lock().await;
            match codes.get(phone) {
                Some(e) if e.code == code => e.seq,
                _ => self.insert(&mut codes, phone, code)?,
            }
        };
        self.durable(seq).await
    }

    /// The code stored for `phone`, or a fresh random one bound to it and persisted.
    pub async fn get_or_issue(&self, phone: &str) -> Result<String, CodeStoreError> {
        if let Some(shared) = &self.shared {
            // Issued in Redis (every node must know it), then kept here.
            let code = shared
                .get_or_issue(phone, &generate())
                .await
                .map_err(|e| CodeStoreError::Shared(e.to_string()))?;
            self.set_local(phone, &code).await?;
            return Ok(code);
        }
        // One lock for the look-up and the insert: two concurrent registrations of one phone
        // get the same code. The code is handed out only once durable (after the lock, so
        // concurrent registrations of other phones share one fsync).
        let (code, seq) = {
            let mut codes = self.codes.lock().await;
            match codes.get(phone) {
                Some(e) => (e.code.clone(), e.seq),
                None => {
                    let code = generate();
                    let seq = self.insert(&mut codes, phone, &code)?;
                    (code, seq)
                }
            }
        };
        self.durable(seq).await?;
        Ok(code)
    }

    /// Records `phone -> code` and queues its journal line; returns the line's sequence number.
    fn insert(
        &self,
        codes: &mut BTreeMap<String, Entry>,
        phone: &str,
        code: &str,
    ) -> Result<u64, CodeStoreError> {
        let issued_at = chrono::Utc::now().to_rfc3339();
        let mut line = serde_json::to_vec(&JournalLine {
            phone,
            code,
            issued_at: &issued_at,
        })
        .map_err(|e| CodeStoreError::Write {
            path: journal_path(&self.path),
            source: std::io::Error::other(e),
        })?;
        line.push(b'\n');
        let seq = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let seq = p.next;
            p.next += 1;
            p.bytes.extend_from_slice(&line);
            p.last = seq;
            seq
        };
        codes.insert(
            phone.to_owned(),
            Entry {
                code: code.to_owned(),
                issued_at,
                seq,
            },
        );
        Ok(seq)
    }

    /// Waits until journal line `seq` is on disk, writing (with everything queued with it)
    /// if no other caller is doing so.
    async fn durable(&self, seq: u64) -> Result<(), CodeStoreError> {
        use std::sync::atomic::Ordering;
        loop {
            if self.flushed.load(Ordering::Acquire) >= seq {
                return Ok(());
            }
            let _writer = self.flush_lock.lock().await;
            if self.flushed.load(Ordering::Acquire) >= seq {
                return Ok(());
            }
            let (bytes, last) = {
                let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                (std::mem::take(&mut p.bytes), p.last)
            };
            if bytes.is_empty() {
                continue;
            }
            let journal = journal_path(&self.path);
            let path = journal.clone();
            let written = tokio::task::spawn_blocking(move || {
                let r = append_synced(&path, &bytes);
                (r, bytes)
            })
            .await;
            match written {
                Ok((Ok(()), _)) => self.flushed.store(last, Ordering::Release),
                Ok((Err(source), bytes)) => {
                    // Put the lines back in front: the next caller retries them.
                    let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                    let mut back = bytes;
                    back.extend_from_slice(&p.bytes);
                    p.bytes = back;
                    return Err(CodeStoreError::Write {
                        path: journal,
                        source,
                    });
                }
                Err(e) => {
                    return Err(CodeStoreError::Write {
                        path: journal,
                        source: std::io::Error::other(e),
                    })
                }
            }
        }
    }

    async fn write(&self, codes: &BTreeMap<String, Entry>) -> Result<(), CodeStoreError> {
        let err = |source| CodeStoreError::Write {
            path: self.path.clone(),
            source,
        };
        let json = serde_json::to_vec_pretty(codes).map_err(|e| err(std::io::Error::other(e)))?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&path, &json))
            .await
            .map_err(|e| err(std::io::Error::other(e)))?
            .map_err(err)
    }
}

/// One journal line.
#[derive(Serialize, Deserialize)]
struct JournalLine<'a> {
    phone: &'a str,
    code: &'a str,
    issued_at: &'a str,
}

fn journal_path(snapshot: &Path) -> PathBuf {
    let mut name = snapshot.file_name().unwrap_or_default().to_os_string();
    name.push(".log");
    snapshot.with_file_name(name)
}

/// Applies journal lines to `codes`; returns how many were applied. An unparsable line is an
/// error unless it is the last one and has no newline (a torn append).
fn replay(bytes: &[u8], codes: &mut BTreeMap<String, Entry>) -> Result<usize, serde_json::Error> {
    let mut n = 0;
    let mut rest = bytes;
    while !rest.is_empty() {
        let (line, next, complete) = match rest.iter().position(|b| *b == b'\n') {
            Some(i) => (
                rest.get(..i).unwrap_or_default(),
                rest.get(i + 1..).unwrap_or_default(),
                true,
            ),
            None => (rest, &[][..], false),
        };
        rest = next;
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<JournalLine<'_>>(line) {
            Ok(l) => {
                codes.insert(
                    l.phone.to_owned(),
                    Entry {
                        code: l.code.to_owned(),
                        issued_at: l.issued_at.to_owned(),
                        seq: 0,
                    },
                );
                n += 1;
            }
            Err(_) if !complete => break,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Appends `bytes` to `path` (created if missing) and syncs the data.
fn append_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_data()
}

/// Writes `bytes` to `path` via a synced temporary file renamed over it.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    // Make the rename itself durable (best effort: not every platform can open a directory).
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A fresh random auth code.
pub fn generate() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), CODE_LEN)
}

/// An auth code as it may appear in logs: its length, never its characters.
pub struct Redacted<'a>(pub &'a str);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted {} chars>", self.0.chars().count())
    }
}

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn issued_codes_survive_a_reopen_and_are_stable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("codes.json");
        let store = CodeStore::open(path.clone()).await.unwrap();
        assert_eq!(store.get("013800138000").await, None);
        let code = store.get_or_issue("013800138000").await.unwrap();
        assert_eq!(code.len(), CODE_LEN);
        assert_eq!(store.get_or_issue("013800138000").await.unwrap(), code);
        assert_ne!(store.get_or_issue("013800138001").await.unwrap(), code);
        let reopened = CodeStore::open(path.clone()).await.unwrap();
        assert_eq!(
            reopened.get("013800138000").await.as_deref(),
            Some(code.as_str())
        );
        assert!(!dir.path().join("sub").join("codes.json.tmp").exists());
        assert!(!dir.path().join("sub").join("codes.json.log").exists());
    }

    #[tokio::test]
    async fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("codes.json");
        std::fs::write(&path, b"{not json").unwrap();
        let e = CodeStore::open(path).await.unwrap_err();
        assert!(e.to_string().contains("codes.json"), "{e}");
    }

    #[tokio::test]
    async fn codes_are_journaled_and_a_torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("codes.json");
        let store = std::sync::Arc::new(CodeStore::open(path.clone()).await.unwrap());
        // Concurrent registrations share fsyncs; each gets its own durable code.
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let s = store.clone();
                tokio::spawn(async move { s.get_or_issue(&format!("0138{i:08}")).await.unwrap() })
            })
            .collect();
        let mut issued = Vec::new();
        for t in tasks {
            issued.push(t.await.unwrap());
        }
        drop(store);
        // A crash in the middle of an append.
        let journal = journal_path(&path);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&journal)
            .unwrap();
        std::io::Write::write_all(&mut f, b"{\"phone\":\"0138999").unwrap();
        drop(f);
        let reopened = CodeStore::open(path.clone()).await.unwrap();
        for (i, code) in issued.iter().enumerate() {
            assert_eq!(
                reopened.get(&format!("0138{i:08}")).await.as_deref(),
                Some(code.as_str())
            );
        }
        assert_eq!(reopened.get("0138999").await, None);
        assert!(!journal.exists(), "folded into the snapshot at open");
        let again = CodeStore::open(path).await.unwrap();
        assert_eq!(
            again.get("013800000049").await.as_deref(),
            Some(issued[49].as_str())
        );
    }

    #[test]
    fn redacted_shows_only_the_length() {
        let shown = format!("{} {:?}", Redacted("s3cretCODE"), Redacted("s3cretCODE"));
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("10 chars"), "{shown}");
    }
}
