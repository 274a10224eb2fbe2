//! Data-unit decryption: AES-128 (0x03) and SM4 (0x05, 2025) with configured keys.
//!
//! The standard encrypts the data unit only (header and BCC stay clear; the BCC covers the
//! ciphertext: "应先加密后校验,先校验后解密", 2025 table 2). It names the algorithm but
//! not the block mode or padding, and the frame has no field for an IV; so this crate uses
//! **ECB with PKCS#7 padding**, the one mode that needs nothing beyond the key. This is a
//! documented choice, not a fact from the standard: no open implementation we could check
//! (EMQX's gateway, rtm_con) decrypts at all. Keys come from configuration (per VIN, else
//! per fleet) or from a 2025 0x0B key exchange the gateway stores with
//! [`KeyStore::set_vin_key`].
//!
//! An encrypted data unit is never read as plaintext: without a key, or with RSA/SM2
//! (asymmetric, not decrypted here) or an abnormal/invalid encryption byte, [`decode`]
//! gives [`Message::Encrypted`], which the gateway passes through.

use std::collections::{BTreeMap, HashMap};

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyInit};
use bytes::Bytes;
use serde::Deserialize;

use crate::frame::{Encryption, Frame};
use crate::{BodyError, Message};

/// A symmetric algorithm this crate decrypts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cipher {
    /// AES-128 (encryption byte 0x03).
    Aes128,
    /// SM4 (encryption byte 0x05, 2025).
    Sm4,
}

impl Cipher {
    /// The encryption byte value of this algorithm.
    pub fn encryption(self) -> Encryption {
        match self {
            Cipher::Aes128 => Encryption::Aes128,
            Cipher::Sm4 => Encryption::Sm4,
        }
    }
}

/// A 128-bit key.
pub type Key = [u8; 16];

/// Encrypts `plain` (ECB, PKCS#7): what a vehicle (or the simulator) sends.
pub fn encrypt(cipher: Cipher, key: &Key, plain: &[u8]) -> Vec<u8> {
    match cipher {
        Cipher::Aes128 => {
            ecb::Encryptor::<aes::Aes128>::new(key.into()).encrypt_padded_vec_mut::<Pkcs7>(plain)
        }
        Cipher::Sm4 => {
            ecb::Encryptor::<sm4::Sm4>::new(key.into()).encrypt_padded_vec_mut::<Pkcs7>(plain)
        }
    }
}

/// Decrypts `data` (ECB, PKCS#7); None when its length is not a block multiple or the
/// padding is wrong (a wrong key, most of the time).
pub fn decrypt(cipher: Cipher, key: &Key, data: &[u8]) -> Option<Vec<u8>> {
    match cipher {
        Cipher::Aes128 => ecb::Decryptor::<aes::Aes128>::new(key.into())
            .decrypt_padded_vec_mut::<Pkcs7>(data)
            .ok(),
        Cipher::Sm4 => ecb::Decryptor::<sm4::Sm4>::new(key.into())
            .decrypt_padded_vec_mut::<Pkcs7>(data)
            .ok(),
    }
}

/// The keys of one vehicle or of the fleet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    /// AES-128 key.
    pub aes128: Option<Key>,
    /// SM4 key.
    pub sm4: Option<Key>,
}

impl Keys {
    fn get(&self, cipher: Cipher) -> Option<&Key> {
        match cipher {
            Cipher::Aes128 => self.aes128.as_ref(),
            Cipher::Sm4 => self.sm4.as_ref(),
        }
    }
}

/// Keys in configuration: 32 hex digits each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyHex {
    /// AES-128 key, 32 hex digits.
    pub aes128: Option<String>,
    /// SM4 key, 32 hex digits.
    pub sm4: Option<String>,
}

/// The `[gbt32960.keys]` configuration: fleet-wide keys and per-VIN overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyConfig {
    /// Keys for every vehicle without its own.
    pub fleet: KeyHex,
    /// Keys per VIN.
    pub vins: BTreeMap<String, KeyHex>,
}

/// A key in configuration that is not 32 hex digits; `field` names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: must be 32 hex digits (a 128-bit key)")]
pub struct KeyError {
    /// The configuration path, e.g. `vins.LSVAU2180N2183294.sm4`.
    pub field: String,
}

/// Keys by VIN, then for the fleet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyStore {
    fleet: Keys,
    vins: HashMap<String, Keys>,
}

fn parse_key(hex_key: &Option<String>, field: String) -> Result<Option<Key>, KeyError> {
    match hex_key {
        None => Ok(None),
        Some(h) => hex::decode(h.trim())
            .ok()
            .and_then(|v| Key::try_from(v.as_slice()).ok())
            .map(Some)
            .ok_or(KeyError { field }),
    }
}

fn parse_keys(k: &KeyHex, prefix: &str) -> Result<Keys, KeyError> {
    Ok(Keys {
        aes128: parse_key(&k.aes128, format!("{prefix}.aes128"))?,
        sm4: parse_key(&k.sm4, format!("{prefix}.sm4"))?,
    })
}

impl KeyStore {
    /// No keys: every encrypted frame stays [`Message::Encrypted`].
    pub fn new() -> KeyStore {
        KeyStore::default()
    }

    /// Keys from configuration.
    pub fn from_config(config: &KeyConfig) -> Result<KeyStore, KeyError> {
        let mut vins = HashMap::new();
        for (vin, k) in &config.vins {
            vins.insert(vin.clone(), parse_keys(k, &format!("vins.{vin}"))?);
        }
        Ok(KeyStore {
            fleet: parse_keys(&config.fleet, "fleet")?,
            vins,
        })
    }

    /// Sets the fleet-wide key of an algorithm.
    pub fn set_fleet_key(&mut self, cipher: Cipher, key: Key) {
        set(&mut self.fleet, cipher, key);
    }

    /// Sets one vehicle's key of an algorithm (configuration or a 0x0B key exchange).
    pub fn set_vin_key(&mut self, vin: &str, cipher: Cipher, key: Key) {
        set(self.vins.entry(vin.to_string()).or_default(), cipher, key);
    }

    /// The key for `vin` and `cipher`: the vehicle's own, else the fleet's.
    pub fn key(&self, vin: &str, cipher: Cipher) -> Option<&Key> {
        self.vins
            .get(vin)
            .and_then(|k| k.get(cipher))
            .or_else(|| self.fleet.get(cipher))
    }

    /// The plaintext frame of `frame` (the same frame when not encrypted).
    ///
    /// Errors: [`BodyError::Encrypted`] (no key), [`BodyError::UnsupportedEncryption`]
    /// (RSA, SM2, abnormal, invalid), [`BodyError::Decrypt`] (bad length or padding).
    pub fn decrypt(&self, frame: &Frame) -> Result<Frame, BodyError> {
        let command = frame.command;
        let encryption = frame.encryption.to_byte();
        let cipher = match frame.encryption {
            Encryption::None => return Ok(frame.clone()),
            Encryption::Aes128 => Cipher::Aes128,
            Encryption::Sm4 => Cipher::Sm4,
            Encryption::Rsa | Encryption::Sm2 | Encryption::Abnormal | Encryption::Invalid => {
                return Err(BodyError::UnsupportedEncryption {
                    command,
                    encryption,
                })
            }
        };
        let key = self.key(&frame.vin, cipher).ok_or(BodyError::Encrypted {
            command,
            encryption,
        })?;
        let plain = decrypt(cipher, key, &frame.data).ok_or(BodyError::Decrypt {
            command,
            encryption,
            len: frame.data.len(),
        })?;
        Ok(Frame {
            encryption: Encryption::None,
            data: Bytes::from(plain),
            ..frame.clone()
        })
    }
}

fn set(keys: &mut Keys, cipher: Cipher, key: Key) {
    match cipher {
        Cipher::Aes128 => keys.aes128 = Some(key),
        Cipher::Sm4 => keys.sm4 = Some(key),
    }
}

/// `frame` with its data unit encrypted (what an encrypting vehicle sends).
pub fn encrypt_frame(frame: &Frame, cipher: Cipher, key: &Key) -> Frame {
    Frame {
        encryption: cipher.encryption(),
        data: Bytes::from(encrypt(cipher, key, &frame.data)),
        ..frame.clone()
    }
}

/// Decrypts with `keys` when it can, then decodes. Without a key (or for RSA/SM2) the
/// result is [`Message::Encrypted`]; a decryption that fails with a configured key is an
/// error (the gateway may answer 0x07 "decryption error" in 2025).
pub fn decode(frame: &Frame, keys: &KeyStore) -> Result<Message, BodyError> {
    match keys.decrypt(frame) {
        Ok(plain) => Message::decode(&plain),
        Err(BodyError::Encrypted { .. } | BodyError::UnsupportedEncryption { .. }) => {
            Message::decode(frame)
        }
        Err(e) => Err(e),
    }
}
