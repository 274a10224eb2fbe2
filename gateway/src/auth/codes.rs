//! The durable store of JT/T 808 auth codes issued at registration.
//!
//! A terminal registers once (0x0100), keeps the auth code of the 0x8100 answer in flash and
//! presents it at every later connection (0x0102), often for years. If the gateway forgot the
//! code on restart every terminal would be locked out until it happens to register again, so
//! the codes live in the data directory: one small JSON object `{phone: {code, issued_at}}`
//! per listener, loaded at start and rewritten whole on every change through a temporary
//! file, `fsync` and `rename`, so a crash leaves either the old or the new file, never half
//! of one. Registrations are rare (once per terminal), so rewriting the whole file is cheap.
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
}

/// One issued code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    code: String,
    /// RFC 3339 UTC time of issue, for operators reading the file.
    issued_at: String,
}

/// Auth codes by terminal phone number, persisted in `path`.
#[derive(Debug)]
pub struct CodeStore {
    path: PathBuf,
    codes: Mutex<BTreeMap<String, Entry>>,
}

impl CodeStore {
    /// Loads `path` (an absent file is an empty store; the directory is created on first write).
    pub async fn open(path: PathBuf) -> Result<CodeStore, CodeStoreError> {
        let codes = match tokio::fs::read(&path).await {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| CodeStoreError::Parse {
                    path: path.clone(),
                    source,
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(CodeStoreError::Read { path, source }),
        };
        Ok(CodeStore {
            path,
            codes: Mutex::new(codes),
        })
    }

    /// Where the codes are kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The code stored for `phone`, if any.
    pub async fn get(&self, phone: &str) -> Option<String> {
        self.codes.lock().await.get(phone).map(|e| e.code.clone())
    }

    /// Binds `code` to `phone` and persists the store (a no-op when it is already bound).
    pub async fn set(&self, phone: &str, code: &str) -> Result<(), CodeStoreError> {
        let mut codes = self.codes.lock().await;
        if codes.get(phone).is_some_and(|e| e.code == code) {
            return Ok(());
        }
        self.insert(&mut codes, phone, code).await
    }

    /// The code stored for `phone`, or a fresh random one bound to it and persisted.
    pub async fn get_or_issue(&self, phone: &str) -> Result<String, CodeStoreError> {
        // One lock for the look-up and the insert: two concurrent registrations of one phone
        // get the same code.
        let mut codes = self.codes.lock().await;
        if let Some(e) = codes.get(phone) {
            return Ok(e.code.clone());
        }
        let code = generate();
        self.insert(&mut codes, phone, &code).await?;
        Ok(code)
    }

    async fn insert(
        &self,
        codes: &mut BTreeMap<String, Entry>,
        phone: &str,
        code: &str,
    ) -> Result<(), CodeStoreError> {
        let mut next = codes.clone();
        next.insert(
            phone.to_owned(),
            Entry {
                code: code.to_owned(),
                issued_at: chrono::Utc::now().to_rfc3339(),
            },
        );
        // Persist before publishing in memory: a code the file does not hold must not be handed out.
        self.write(&next).await?;
        *codes = next;
        Ok(())
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
    }

    #[tokio::test]
    async fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("codes.json");
        std::fs::write(&path, b"{not json").unwrap();
        let e = CodeStore::open(path).await.unwrap_err();
        assert!(e.to_string().contains("codes.json"), "{e}");
    }

    #[test]
    fn redacted_shows_only_the_length() {
        let shown = format!("{} {:?}", Redacted("s3cretCODE"), Redacted("s3cretCODE"));
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("10 chars"), "{shown}");
    }
}
