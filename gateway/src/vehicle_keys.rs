//! GB/T 32960 vehicle keys: the symmetric keys that decrypt data units (AES-128, SM4) and
//! the public keys that check 2025 signatures, one vehicle one secret.
//!
//! Where they come from, in order of precedence:
//!
//! 1. the operator's key files, `{gbt32960.security.keys_dir}/{VIN}.toml`, and
//!    `fleet.toml` there for fleet-wide symmetric keys;
//! 2. what vehicles told this gateway: a 2025 activation (0x09, whose public key signed it)
//!    when `trust_activation` is on, and a key exchange (0x0B), kept in
//!    `{data_dir}/vehicle-keys/{VIN}.toml`.
//!
//! A key file:
//!
//! ```toml
//! aes128 = "00112233445566778899aabbccddeeff"   # 32 hex digits
//! sm4 = "..."
//! public_key = "04a1b2..."                      # hex: SEC1 point (SM2, ECC) or DER (RSA)
//! public_key_type = "sm2"                       # sm2, rsa or ecc
//! ```
//!
//! A vehicle's files are read when it logs in (a small read per login, none per frame), so
//! a key file added or replaced takes effect at the vehicle's next login, without a reload.
//! No key ever appears in the configuration file, a log line or `vgate config`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gbt32960::crypto::{Cipher, Key, KeyStore};
use gbt32960::verify::PublicKey;
use serde::{Deserialize, Serialize};

/// `[gbt32960.security]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// The operator's key files (`{VIN}.toml`, `fleet.toml`); unset: none.
    pub keys_dir: Option<PathBuf>,
    /// What to do with real-time/reissue data whose 2025 signature does not verify.
    pub signatures: SignaturePolicy,
    /// Keep the public key of an activation (0x09) whose signature it verifies, for the
    /// vehicle's later signatures (trust on first activation).
    pub trust_activation: bool,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            keys_dir: None,
            signatures: SignaturePolicy::Flag,
            trust_activation: true,
        }
    }
}

/// What to do with data whose signature is invalid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignaturePolicy {
    /// Publish it with `signature.status = "invalid"`.
    #[default]
    Flag,
    /// Answer 0x05 (signature error) and publish nothing.
    Refuse,
}

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Bad { path: PathBuf, reason: String },
}

/// One key file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct KeyFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    aes128: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sm4: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key_type: Option<String>,
}

/// One vehicle's keys, as its session uses them.
#[derive(Debug, Default)]
pub struct VinKeys {
    /// Decryption keys: the vehicle's own, else the fleet's.
    pub symmetric: KeyStore,
    /// The key its signatures are checked with.
    pub public: Option<PublicKey>,
}

/// The gateway's key files.
#[derive(Debug, Clone)]
pub struct VehicleKeys {
    cfg: SecurityConfig,
    learned: PathBuf,
}

fn key16(hex_key: &str, path: &Path, field: &str) -> Result<Key, KeyFileError> {
    hex::decode(hex_key.trim())
        .ok()
        .and_then(|v| Key::try_from(v.as_slice()).ok())
        .ok_or_else(|| KeyFileError::Bad {
            path: path.to_owned(),
            reason: format!("{field}: must be 32 hex digits (a 128-bit key)"),
        })
}

/// Reads `path` if it exists.
fn read(path: &Path) -> Result<Option<KeyFile>, KeyFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(KeyFileError::Io {
                path: path.to_owned(),
                source,
            })
        }
    };
    toml::from_str(&text)
        .map(Some)
        .map_err(|e| KeyFileError::Bad {
            path: path.to_owned(),
            reason: e.message().to_owned(),
        })
}

/// A VIN fit to be a file name (VINs are 17 letters and digits; anything else is refused
/// rather than turned into a path).
fn safe_name(vin: &str) -> bool {
    !vin.is_empty() && vin.len() <= 64 && vin.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl VehicleKeys {
    /// The key files of `cfg`, learned keys in `data_dir/vehicle-keys`.
    pub fn new(cfg: SecurityConfig, data_dir: &Path) -> VehicleKeys {
        VehicleKeys {
            cfg,
            learned: data_dir.join("vehicle-keys"),
        }
    }

    pub fn config(&self) -> &SecurityConfig {
        &self.cfg
    }

    /// Sets `f`'s symmetric keys in `keys` for `vin` (`None`: fleet-wide).
    fn apply_symmetric(
        keys: &mut VinKeys,
        f: &KeyFile,
        vin: Option<&str>,
        path: &Path,
    ) -> Result<(), KeyFileError> {
        for (cipher, hex_key, field) in [
            (Cipher::Aes128, &f.aes128, "aes128"),
            (Cipher::Sm4, &f.sm4, "sm4"),
        ] {
            let Some(h) = hex_key else { continue };
            let k = key16(h, path, field)?;
            match vin {
                Some(v) => keys.symmetric.set_vin_key(v, cipher, k),
                None => keys.symmetric.set_fleet_key(cipher, k),
            }
        }
        Ok(())
    }

    /// `f`'s public key, if it gives one.
    fn public_key(f: &KeyFile, path: &Path) -> Result<Option<PublicKey>, KeyFileError> {
        let Some(h) = &f.public_key else {
            return Ok(None);
        };
        let bad = |reason: String| KeyFileError::Bad {
            path: path.to_owned(),
            reason,
        };
        let kind_name = f.public_key_type.as_deref().unwrap_or("sm2");
        let kind = gbt32960::verify::kind_of(kind_name)
            .ok_or_else(|| bad(format!("public_key_type {kind_name:?}: sm2, rsa or ecc")))?;
        let bytes =
            hex::decode(h.trim()).map_err(|_| bad("public_key: expected hex".to_owned()))?;
        PublicKey::parse(kind, &bytes)
            .map(Some)
            .map_err(|e| bad(format!("public_key: {e}")))
    }

    /// `vin`'s keys: from the operator's file first, then what the vehicle told this
    /// gateway, then (symmetric keys) the fleet's. Blocking (small file reads).
    pub fn load(&self, vin: &str) -> Result<VinKeys, KeyFileError> {
        let mut keys = VinKeys::default();
        if !safe_name(vin) {
            return Ok(keys);
        }
        let file = format!("{vin}.toml");
        // Most authoritative first.
        let mut paths: Vec<PathBuf> = Vec::new();
        if let Some(dir) = &self.cfg.keys_dir {
            paths.push(dir.join(&file));
        }
        paths.push(self.learned.join(&file));
        let mut found = Vec::new();
        for p in paths {
            if let Some(f) = read(&p)? {
                found.push((f, p));
            }
        }
        for (f, p) in &found {
            if keys.public.is_none() {
                keys.public = Self::public_key(f, p)?;
            }
        }
        // Applied least authoritative first, so the operator's keys are set last.
        for (f, p) in found.iter().rev() {
            Self::apply_symmetric(&mut keys, f, Some(vin), p)?;
        }
        if let Some(dir) = &self.cfg.keys_dir {
            let p = dir.join("fleet.toml");
            if let Some(f) = read(&p)? {
                Self::apply_symmetric(&mut keys, &f, None, &p)?;
            }
        }
        Ok(keys)
    }

    /// Async [`VehicleKeys::load`] (off the runtime's threads).
    pub async fn load_async(self: &Arc<Self>, vin: &str) -> Result<VinKeys, KeyFileError> {
        let me = self.clone();
        let vin = vin.to_owned();
        tokio::task::spawn_blocking(move || me.load(&vin))
            .await
            .unwrap_or_else(|e| {
                Err(KeyFileError::Io {
                    path: PathBuf::new(),
                    source: std::io::Error::other(e.to_string()),
                })
            })
    }

    /// Remembers what `vin` told this gateway (a public key from its activation, a data key
    /// from its key exchange) in its learned file, merged with what that file held.
    pub fn learn(
        &self,
        vin: &str,
        public: Option<(u8, &[u8])>,
        symmetric: Option<(Cipher, &Key)>,
    ) -> Result<(), KeyFileError> {
        if !safe_name(vin) {
            return Err(KeyFileError::Bad {
                path: self.learned.clone(),
                reason: format!("{vin:?} is not a VIN that can name a file"),
            });
        }
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| KeyFileError::Io { path, source }
        };
        std::fs::create_dir_all(&self.learned).map_err(io(&self.learned))?;
        let path = self.learned.join(format!("{vin}.toml"));
        let mut f = read(&path)?.unwrap_or_default();
        if let Some((kind, bytes)) = public {
            f.public_key = Some(hex::encode(bytes));
            f.public_key_type = gbt32960::verify::kind_name(kind).map(str::to_owned);
        }
        match symmetric {
            Some((Cipher::Aes128, k)) => f.aes128 = Some(hex::encode(k)),
            Some((Cipher::Sm4, k)) => f.sm4 = Some(hex::encode(k)),
            None => {}
        }
        let text = toml::to_string(&f).map_err(|e| KeyFileError::Bad {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const VIN: &str = "LVGBT000000000001";

    #[test]
    fn operator_files_win_over_learned_keys_and_the_fleet_key_is_the_fallback() {
        let data = tempfile::tempdir().unwrap();
        let ops = tempfile::tempdir().unwrap();
        std::fs::write(
            ops.path().join("fleet.toml"),
            "aes128 = \"00000000000000000000000000000001\"\nsm4 = \"00000000000000000000000000000002\"\n",
        )
        .unwrap();
        let keys = VehicleKeys::new(
            SecurityConfig {
                keys_dir: Some(ops.path().to_owned()),
                ..Default::default()
            },
            data.path(),
        );
        let k = keys.load(VIN).unwrap();
        assert_eq!(
            k.symmetric.key(VIN, Cipher::Sm4),
            Some(&{
                let mut b = [0u8; 16];
                b[15] = 2;
                b
            })
        );
        assert!(k.public.is_none());

        // Learned from the vehicle: its own SM4 key and a public key.
        let secret = sm2::SecretKey::from_slice(&[5u8; 32]).unwrap();
        let point = secret.public_key().to_sec1_bytes();
        keys.learn(VIN, Some((1, &point)), Some((Cipher::Sm4, &[9u8; 16])))
            .unwrap();
        let k = keys.load(VIN).unwrap();
        assert_eq!(k.symmetric.key(VIN, Cipher::Sm4), Some(&[9u8; 16]));
        assert_eq!(k.public.as_ref().map(PublicKey::kind), Some(1));

        // The operator's file for the VIN overrides what was learned.
        std::fs::write(
            ops.path().join(format!("{VIN}.toml")),
            "sm4 = \"0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a\"\n",
        )
        .unwrap();
        let k = keys.load(VIN).unwrap();
        assert_eq!(k.symmetric.key(VIN, Cipher::Sm4), Some(&[10u8; 16]));
        assert!(k.public.is_some(), "the learned public key still applies");

        std::fs::write(ops.path().join(format!("{VIN}.toml")), "sm4 = \"zz\"\n").unwrap();
        let e = keys.load(VIN).unwrap_err().to_string();
        assert!(e.contains("sm4") && e.contains(VIN), "{e}");
        assert!(keys.load("../etc/passwd").unwrap().public.is_none());
    }
}
