//! The allowlist file: which terminals (JT/T 808 phone numbers) or vehicles (GB/T 32960 VINs)
//! may connect, optionally with a fixed JT/T 808 auth code.
//!
//! The format is deliberately trivial so that a fleet operator can produce it with a
//! spreadsheet export or `echo >>`:
//!
//! ```text
//! # one id per line; blank lines and `#` comments are ignored
//! 013800138000
//! 013800138001,FIXEDCODE   # a terminal that authenticates with a code set at the factory
//! LSVAU2180N2183294
//! ```
//!
//! Fleets change while the gateway runs, so the file is re-read when its modification time or
//! size changes. The check is a `stat` made at each decision (decisions happen once per
//! connection, so this is cheap and needs no background task). A file that fails to parse or
//! to read keeps the previous list in force and logs an error: a typo while editing must not
//! lock the whole fleet out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tokio::sync::RwLock;
use tracing::{error, info, warn};

/// Errors reading or parsing the allowlist.
#[derive(Debug, thiserror::Error)]
pub enum AllowlistError {
    /// The file cannot be read.
    #[error("reading allowlist {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A line is not `id` or `id,code`.
    #[error("allowlist {path} line {line}: {reason}")]
    Syntax {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// A parsed allowlist: id -> optional fixed auth code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entries(HashMap<String, Option<String>>);

impl Entries {
    /// Parses the file format described in the module documentation.
    pub fn parse(path: &Path, text: &str) -> Result<Entries, AllowlistError> {
        let mut map = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let syntax = |reason: String| AllowlistError::Syntax {
                path: path.to_owned(),
                line: i + 1,
                reason,
            };
            let mut fields = line.split(',').map(str::trim);
            let id = fields.next().unwrap_or("");
            let code = fields.next();
            if fields.next().is_some() {
                return Err(syntax(
                    "expected `id` or `id,auth_code`, found more than one comma".to_owned(),
                ));
            }
            codecs::vehicle_id::validate(id).map_err(|e| syntax(e.to_string()))?;
            let code = match code {
                Some("") => return Err(syntax("empty auth code after the comma".to_owned())),
                Some(c) => Some(c.to_owned()),
                None => None,
            };
            if map.insert(id.to_owned(), code).is_some() {
                warn!(path = %path.display(), line = i + 1, vehicle_id = id, "allowlist lists an id twice; the last line wins");
            }
        }
        Ok(Entries(map))
    }

    /// Whether `id` is listed.
    pub fn contains(&self, id: &str) -> bool {
        self.0.contains_key(id)
    }

    /// The fixed auth code of `id`, when it is listed with one.
    pub fn fixed_code(&self, id: &str) -> Option<&str> {
        self.0.get(id).and_then(|c| c.as_deref())
    }

    /// How many ids are listed.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no id is listed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What identifies one version of the file on disk.
type Stamp = (Option<SystemTime>, u64);

#[derive(Debug)]
struct Loaded {
    entries: Entries,
    /// The stamp of the last version looked at (loaded or refused), so a broken file is
    /// reported once, not at every decision.
    seen: Stamp,
}

/// The allowlist of one listener, reloaded when the file changes.
#[derive(Debug)]
pub struct Allowlist {
    path: PathBuf,
    state: RwLock<Loaded>,
}

impl Allowlist {
    /// Loads `path`; an unreadable or invalid file is an error (a configuration error at start).
    pub async fn load(path: PathBuf) -> Result<Allowlist, AllowlistError> {
        let (entries, seen) = read(&path).await?;
        info!(path = %path.display(), ids = entries.len(), "allowlist loaded");
        Ok(Allowlist {
            path,
            state: RwLock::new(Loaded { entries, seen }),
        })
    }

    /// The current entries, re-reading the file first if it changed since it was last seen.
    pub async fn current(&self) -> Entries {
        let stamp = stamp(&self.path).await;
        {
            let state = self.state.read().await;
            if stamp.as_ref().is_ok_and(|s| *s == state.seen) {
                return state.entries.clone();
            }
        }
        let mut state = self.state.write().await;
        match stamp {
            Err(e) => {
                // Keep the list in force; report each distinct failure once.
                if state.seen != (None, 0) {
                    error!(path = %self.path.display(), error = %e, "allowlist unreadable; keeping the previous list");
                    state.seen = (None, 0);
                }
            }
            Ok(s) if s == state.seen => {}
            Ok(s) => {
                state.seen = s;
                match read(&self.path).await {
                    Ok((entries, s)) => {
                        info!(path = %self.path.display(), ids = entries.len(), "allowlist reloaded");
                        state.entries = entries;
                        state.seen = s;
                    }
                    Err(e) => {
                        error!(path = %self.path.display(), error = %e, "allowlist reload failed; keeping the previous list")
                    }
                }
            }
        }
        state.entries.clone()
    }
}

async fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = tokio::fs::metadata(path).await?;
    Ok((m.modified().ok(), m.len()))
}

async fn read(path: &Path) -> Result<(Entries, Stamp), AllowlistError> {
    let err = |source| AllowlistError::Read {
        path: path.to_owned(),
        source,
    };
    // Stamp first: if the file changes while it is read, the next decision sees a new stamp.
    let s = stamp(path).await.map_err(err)?;
    let text = tokio::fs::read_to_string(path).await.map_err(err)?;
    Ok((Entries::parse(path, &text)?, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Entries, AllowlistError> {
        Entries::parse(Path::new("allow.txt"), text)
    }

    #[test]
    fn ids_codes_comments_and_blank_lines() {
        let e = parse(
            "# fleet A\n\n013800138000\n 013800138001 , CODE1  # factory code\nLSVAU2180N2183294\n",
        )
        .unwrap();
        assert_eq!(e.len(), 3);
        assert!(e.contains("013800138000") && e.contains("LSVAU2180N2183294"));
        assert_eq!(e.fixed_code("013800138000"), None);
        assert_eq!(e.fixed_code("013800138001"), Some("CODE1"));
        assert!(!e.contains("013800138002"));
    }

    #[test]
    fn bad_lines_name_the_line() {
        let e = parse("013800138000\nbad id\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(parse("a,b,c\n").is_err());
        assert!(parse("013800138000,\n").is_err());
    }
}
