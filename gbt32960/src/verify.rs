//! Verifying 2025 vehicle signatures (real-time and reissue data, activation), sans-I/O.
//!
//! GB/T 32960.3-2025 ends real-time and reissue bodies with a signature (type 1 SM2, 2 RSA,
//! 3 ECC; R and S) over the body from the first time byte to the byte before the 0xFF
//! ([`crate::realtime::Report::signed_bytes`]); an activation (0x09) is signed by the key it
//! carries. The standard names the algorithms, not every parameter; this module uses:
//!
//! - **SM2**: GB/T 32918 / GM/T 0003 signature with SM3 and the default user id
//!   `1234567812345678` (GM/T 0009), public key as an SEC1 point;
//! - **ECC**: ECDSA over NIST P-256 with SHA-256 (R and S as 32-byte scalars), SEC1 point;
//! - **RSA**: PKCS#1 v1.5 with SHA-256, the signature in R (S empty), the key as PKCS#1 or
//!   SubjectPublicKeyInfo DER.
//!
//! SM2 is the one Chinese vehicle security chips ship; the ECC and RSA choices are the common
//! ones and are documented as choices (docs/security.md). A signature that cannot be checked
//! (no key for the vehicle, a key of another type) is [`Verdict::Unchecked`], never valid.

use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;

/// The user id SM2 signatures use when none is agreed (GM/T 0009).
pub const SM2_DEFAULT_ID: &str = "1234567812345678";

/// The signature types of 2025 table 8.
pub mod kind {
    pub const SM2: u8 = 1;
    pub const RSA: u8 = 2;
    pub const ECC: u8 = 3;
}

/// The name of a signature type (`sm2`, `rsa`, `ecc`), `None` for others.
pub fn kind_name(kind: u8) -> Option<&'static str> {
    match kind {
        kind::SM2 => Some("sm2"),
        kind::RSA => Some("rsa"),
        kind::ECC => Some("ecc"),
        _ => None,
    }
}

/// A signature type by name.
pub fn kind_of(name: &str) -> Option<u8> {
    match name {
        "sm2" => Some(kind::SM2),
        "rsa" => Some(kind::RSA),
        "ecc" => Some(kind::ECC),
        _ => None,
    }
}

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Valid,
    Invalid,
    /// No key to check with (or a key of another type).
    Unchecked,
}

impl Verdict {
    /// `valid`, `invalid`, `unchecked`: the event's `signature.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unchecked => "unchecked",
        }
    }
}

/// A public key that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} public key: {reason}")]
pub struct KeyError {
    pub kind: &'static str,
    pub reason: String,
}

/// A vehicle's public key.
#[derive(Debug, Clone)]
pub enum PublicKey {
    Sm2(Box<sm2::dsa::VerifyingKey>),
    Rsa(Box<rsa::RsaPublicKey>),
    Ecc(Box<p256::ecdsa::VerifyingKey>),
}

/// An SEC1 point from 64 bytes (x ‖ y, as chips often export it) or an encoded point.
fn sec1(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if bytes.len() == 64 {
        let mut p = Vec::with_capacity(65);
        p.push(0x04);
        p.extend_from_slice(bytes);
        p.into()
    } else {
        bytes.into()
    }
}

impl PublicKey {
    /// Reads a key of signature type `kind` (1 SM2, 2 RSA, 3 ECC) from its bytes.
    pub fn parse(kind: u8, bytes: &[u8]) -> Result<PublicKey, KeyError> {
        let err = |kind: &'static str, e: &dyn std::fmt::Display| KeyError {
            kind,
            reason: e.to_string(),
        };
        match kind {
            kind::SM2 => sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_DEFAULT_ID, &sec1(bytes))
                .map(|k| PublicKey::Sm2(Box::new(k)))
                .map_err(|e| err("sm2", &e)),
            kind::ECC => p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1(bytes))
                .map(|k| PublicKey::Ecc(Box::new(k)))
                .map_err(|e| err("ecc", &e)),
            kind::RSA => rsa::RsaPublicKey::from_pkcs1_der(bytes)
                .or_else(|_| rsa::RsaPublicKey::from_public_key_der(bytes))
                .map(|k| PublicKey::Rsa(Box::new(k)))
                .map_err(|e| err("rsa", &e)),
            other => Err(KeyError {
                kind: "unknown",
                reason: format!("signature type {other} is not 1 (SM2), 2 (RSA) or 3 (ECC)"),
            }),
        }
    }

    /// The signature type this key checks.
    pub fn kind(&self) -> u8 {
        match self {
            PublicKey::Sm2(_) => kind::SM2,
            PublicKey::Rsa(_) => kind::RSA,
            PublicKey::Ecc(_) => kind::ECC,
        }
    }
}

/// A scalar as exactly 32 bytes: shorter ones padded on the left, longer ones accepted only
/// when what is cut is zeros (a DER-style sign byte).
fn scalar(v: &[u8]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if v.len() <= 32 {
        out.get_mut(32 - v.len()..)?.copy_from_slice(v);
    } else {
        let (head, tail) = v.split_at(v.len() - 32);
        if head.iter().any(|b| *b != 0) {
            return None;
        }
        out.copy_from_slice(tail);
    }
    Some(out)
}

/// Checks signature (`kind`, `r`, `s`) over `signed` with `key`.
pub fn verify(key: Option<&PublicKey>, kind: u8, r: &[u8], s: &[u8], signed: &[u8]) -> Verdict {
    let Some(key) = key.filter(|k| k.kind() == kind) else {
        return Verdict::Unchecked;
    };
    let ok = match key {
        PublicKey::Sm2(k) => match (scalar(r), scalar(s)) {
            (Some(r), Some(s)) => sm2::dsa::Signature::from_scalars(r, s)
                .is_ok_and(|sig| k.verify(signed, &sig).is_ok()),
            _ => false,
        },
        PublicKey::Ecc(k) => match (scalar(r), scalar(s)) {
            (Some(r), Some(s)) => p256::ecdsa::Signature::from_scalars(r, s)
                .is_ok_and(|sig| k.verify(signed, &sig).is_ok()),
            _ => false,
        },
        PublicKey::Rsa(k) => {
            let vk = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new((**k).clone());
            rsa::pkcs1v15::Signature::try_from(r).is_ok_and(|sig| vk.verify(signed, &sig).is_ok())
        }
    };
    if ok {
        Verdict::Valid
    } else {
        Verdict::Invalid
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use rsa::signature::{SignatureEncoding, Signer};

    const MSG: &[u8] = b"\x19\x01\x02\x03\x04\x05 real-time data units";

    #[test]
    fn sm2_signatures_verify_with_the_default_id_and_fail_when_anything_changes() {
        let secret = sm2::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let sk = sm2::dsa::SigningKey::new(SM2_DEFAULT_ID, &secret).unwrap();
        let sig: sm2::dsa::Signature = sk.sign(MSG);
        let point = secret.public_key().to_sec1_bytes();
        let (r, s) = (sig.r().to_bytes(), sig.s().to_bytes());
        // Both key forms: SEC1 (65 bytes) and bare x ‖ y (64).
        for key_bytes in [&point[..], &point[1..]] {
            let key = PublicKey::parse(kind::SM2, key_bytes).unwrap();
            assert_eq!(verify(Some(&key), 1, &r, &s, MSG), Verdict::Valid);
            assert_eq!(verify(Some(&key), 1, &r, &s, b"other"), Verdict::Invalid);
            let mut bad = s.to_vec();
            bad[5] ^= 1;
            assert_eq!(verify(Some(&key), 1, &r, &bad, MSG), Verdict::Invalid);
            assert_eq!(
                verify(Some(&key), 3, &r, &s, MSG),
                Verdict::Unchecked,
                "another type"
            );
        }
        assert_eq!(verify(None, 1, &r, &s, MSG), Verdict::Unchecked);
    }

    #[test]
    fn ecc_is_ecdsa_p256_sha256() {
        let sk = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap();
        let sig: p256::ecdsa::Signature = sk.sign(MSG);
        let key = PublicKey::parse(
            kind::ECC,
            &sk.verifying_key().to_encoded_point(false).as_bytes()[1..],
        )
        .unwrap();
        let (r, s) = (sig.r().to_bytes(), sig.s().to_bytes());
        assert_eq!(verify(Some(&key), 3, &r, &s, MSG), Verdict::Valid);
        // A DER-style leading zero is accepted; a short scalar is padded.
        let mut r33 = vec![0u8];
        r33.extend_from_slice(&r);
        assert_eq!(verify(Some(&key), 3, &r33, &s, MSG), Verdict::Valid);
        assert_eq!(verify(Some(&key), 3, &r[1..], &s, MSG), Verdict::Invalid);
    }

    #[test]
    fn rsa_is_pkcs1_v15_sha256_with_the_signature_in_r() {
        use rsa::pkcs1::EncodeRsaPublicKey;
        let mut rng = rand::thread_rng();
        let private = rsa::RsaPrivateKey::new(&mut rng, 1024).unwrap();
        let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(private.clone());
        let sig = signer.sign(MSG).to_vec();
        let der = private.to_public_key().to_pkcs1_der().unwrap();
        let key = PublicKey::parse(kind::RSA, der.as_bytes()).unwrap();
        assert_eq!(verify(Some(&key), 2, &sig, &[], MSG), Verdict::Valid);
        assert_eq!(verify(Some(&key), 2, &sig, &[], b"x"), Verdict::Invalid);
        assert!(PublicKey::parse(kind::RSA, b"not der").is_err());
        assert!(PublicKey::parse(9, b"").is_err());
    }
}
