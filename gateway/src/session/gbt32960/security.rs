//! GB/T 32960 session security: encrypted data units, 2025 signatures, activation (0x09)
//! and key exchange (0x0B), with the keys of `crate::vehicle_keys`.
//!
//! ```text
//! frame, encryption 0x03/0x05 ──▶ the vehicle's key (else the fleet's) ──▶ plaintext frame
//!        no key: stays Encrypted (passthrough); a key that fails: 0x07 decryption error
//! 0x02/0x03 with a signature ──▶ verify (key file or activation) ──▶ signature.status
//!        invalid + `signatures = "refuse"`: 0x05 signature error, nothing published
//! 0x09 activation ──▶ its own signature checked with the key it carries ──▶ 0x0A
//!        valid + `trust_activation` + no key known for the VIN yet: the key kept
//! 0x0B key exchange (AES-128 / SM4, 16 bytes) ──▶ kept as the vehicle's data key
//! ```

use std::sync::Arc;

use codecs::{Data, Event};
use gbt32960::crypto::Cipher;
use gbt32960::frame::Encryption;
use gbt32960::msg::{id, ActivationResponse, Message};
use gbt32960::verify::Verdict;
use gbt32960::{BodyError, Edition, Frame, ResponseFlag};
use tokio::io::AsyncWrite;
use tracing::{info, warn};

use super::{Session, LISTENER};
use crate::session::Flow;
use crate::vehicle_keys::{SignaturePolicy, VinKeys};

impl<W: AsyncWrite + Unpin + Send + 'static> Session<W> {
    /// The keys of `vin`, read now if the session does not hold them yet (or holds
    /// another vehicle's).
    pub(super) async fn keys_for(&mut self, vin: &str) -> Arc<VinKeys> {
        if let Some((v, k)) = &self.keys {
            if **v == *vin {
                return k.clone();
            }
        }
        let keys = match self.l.shared.vehicle_keys.load_async(vin).await {
            Ok(k) => k,
            Err(e) => {
                metrics::counter!("vgate_key_file_errors_total").increment(1);
                warn!(peer = %self.c.peer, vin, error = %e, "vehicle key file unusable: its data is not decrypted nor its signatures checked");
                VinKeys::default()
            }
        };
        let keys = Arc::new(keys);
        self.keys = Some((Arc::from(vin), keys.clone()));
        keys
    }

    /// The plaintext of an encrypted frame, or the frame itself when it has no key for it
    /// (it is then passed through as `Encrypted`). `Err` when a key failed to decrypt it
    /// (answered 0x07 in 2025, counted as a bad frame).
    pub(super) async fn plaintext(&mut self, frame: Frame) -> Result<Frame, Flow> {
        let keys = self.keys_for(&frame.vin).await;
        match keys.symmetric.decrypt(&frame) {
            Ok(plain) => Ok(plain),
            Err(BodyError::Encrypted { .. } | BodyError::UnsupportedEncryption { .. }) => Ok(frame),
            Err(e) => {
                let detail = format!("command 0x{:02x}: {e}", frame.command);
                let flag = match frame.edition {
                    Edition::V2025 => ResponseFlag::DecryptionError,
                    Edition::V2016 => ResponseFlag::Error,
                };
                let max = self.l.cfg.max_bad_frames;
                let too_many = self
                    .c
                    .bad_frame(LISTENER, "decrypt", &detail, &frame.data, max);
                if frame.response == gbt32960::frame::FLAG_COMMAND {
                    if let Flow::Close(r) = self.reply(&frame, flag).await {
                        return Err(Flow::Close(r));
                    }
                }
                Err(if too_many {
                    Flow::Close(codecs::event::PresenceReason::Error)
                } else {
                    Flow::Continue
                })
            }
        }
    }

    /// The verdict on a real-time/reissue report's 2025 signature (`None`: it has none).
    pub(super) async fn signature_verdict(
        &mut self,
        frame: &Frame,
        msg: &Message,
    ) -> Option<Verdict> {
        let (Message::Realtime(report) | Message::Reissue(report)) = msg else {
            return None;
        };
        let sig = report.signature.as_ref()?;
        let keys = self.keys_for(&frame.vin).await;
        let verdict = match report.signed_bytes(&frame.data) {
            Some(signed) => {
                gbt32960::verify::verify(keys.public.as_ref(), sig.kind, &sig.r, &sig.s, signed)
            }
            None => Verdict::Invalid,
        };
        metrics::counter!("vgate_signatures_total", "status" => verdict.as_str()).increment(1);
        Some(verdict)
    }

    /// Whether a report with `verdict` is refused (answered 0x05, not published).
    pub(super) fn refuses(&self, verdict: Verdict) -> bool {
        verdict == Verdict::Invalid && self.l.cfg.security.signatures == SignaturePolicy::Refuse
    }

    /// A 2025 activation: its signature is checked with the key it carries; a valid one
    /// (with `trust_activation`, for a VIN with no key yet) keeps that key for the vehicle.
    /// Answered 0x0A (status 1 activated, 2 failed), its events published.
    pub(super) async fn on_activation(&mut self, frame: &Frame, msg: &Message) -> Flow {
        let Message::Activation(a) = msg else {
            return Flow::Continue;
        };
        let sig = &a.signature;
        let sig_len = 5 + sig.r.len() + sig.s.len();
        let signed = frame
            .data
            .len()
            .checked_sub(sig_len)
            .and_then(|n| frame.data.get(..n));
        let verdict = match (
            gbt32960::verify::PublicKey::parse(sig.algorithm, &a.public_key),
            signed,
        ) {
            (Ok(key), Some(signed)) => {
                gbt32960::verify::verify(Some(&key), sig.algorithm, &sig.r, &sig.s, signed)
            }
            _ => Verdict::Invalid,
        };
        let trust = self.l.cfg.security.trust_activation;
        // Trust on first activation only: a VIN that has a public key already (the operator's
        // file, or an earlier activation) keeps it, so a stranger cannot replace a vehicle's
        // key by activating in its name; and a client certificate, when the listener checks
        // identities, must name the VIN.
        let known = self.keys_for(&frame.vin).await.public.is_some();
        let ok = verdict == Verdict::Valid
            && trust
            && !known
            && *a.vin == *frame.vin
            && self.c.certificate_allows(&frame.vin);
        if ok {
            let keys = self.l.shared.vehicle_keys.clone();
            let (vin, kind, key) = (frame.vin.clone(), sig.algorithm, a.public_key.clone());
            let learned =
                tokio::task::spawn_blocking(move || keys.learn(&vin, Some((kind, &key)), None))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
            if let Err(e) = learned {
                warn!(peer = %self.c.peer, vin = %frame.vin, error = %e, "activation key not kept");
            }
            // Read again at the next look.
            self.keys = None;
        }
        info!(peer = %self.c.peer, vin = %frame.vin, chip = %a.chip_id, signature = verdict.as_str(), activated = ok, "activation");
        metrics::counter!("vgate_activations_total", "result" => if ok { "activated" } else { "failed" }).increment(1);
        let events = gbt32960::normalize_message(frame, msg, &self.ctx());
        if let Flow::Close(r) = self.l.shared.publish(events).await {
            return Flow::Close(r);
        }
        let answer = Message::ActivationResponse(ActivationResponse {
            status: if ok { 1 } else { 2 },
            info: 0,
        });
        match answer.to_frame(frame.edition, &frame.vin) {
            Ok(f) => self.write(&f).await,
            Err(e) => {
                warn!(error = %e, "activation answer not encoded");
                Flow::Continue
            }
        }
    }

    /// A 2025 data-key exchange from the logged-in vehicle: a 16-byte AES-128 (0x03) or
    /// SM4 (0x05) key becomes its data key (kept with what it told this gateway); anything
    /// else is answered with the error flag.
    pub(super) async fn on_key_exchange(&mut self, frame: &Frame, msg: &Message) -> Flow {
        let Message::KeyExchange(k) = msg else {
            return Flow::Continue;
        };
        let cipher = match Encryption::from_byte(k.key_type) {
            Some(Encryption::Aes128) => Some(Cipher::Aes128),
            Some(Encryption::Sm4) => Some(Cipher::Sm4),
            _ => None,
        };
        let key: Option<[u8; 16]> = k.key.as_slice().try_into().ok();
        let (Some(cipher), Some(key)) = (cipher, key) else {
            warn!(peer = %self.c.peer, vin = %frame.vin, key_type = k.key_type, len = k.key.len(), "key exchange refused: not a 16-byte AES-128 or SM4 key");
            return self.reply(frame, ResponseFlag::Error).await;
        };
        let keys = self.l.shared.vehicle_keys.clone();
        let vin = frame.vin.clone();
        let learned =
            tokio::task::spawn_blocking(move || keys.learn(&vin, None, Some((cipher, &key))))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
        let flag = match learned {
            Ok(()) => {
                metrics::counter!("vgate_key_exchanges_total").increment(1);
                info!(peer = %self.c.peer, vin = %frame.vin, "data key exchanged");
                self.keys = None;
                ResponseFlag::Success
            }
            Err(e) => {
                warn!(peer = %self.c.peer, vin = %frame.vin, error = %e, "exchanged key not kept");
                ResponseFlag::Error
            }
        };
        self.reply(frame, flag).await
    }
}

/// Writes `verdict` into the `signature` of the report's telemetry events
/// (`data.signature.status`).
pub(super) fn mark_signature(events: &mut [Event], verdict: Verdict) {
    for ev in events {
        if let Data::Telemetry(t) = &mut ev.data {
            if let Some(codecs::event::Json::Object(fields)) = &mut t.signature {
                fields.retain(|(k, _)| *k != "status");
                fields.push(("status", codecs::event::Json::Str(verdict.as_str().into())));
                fields.sort_by(|a, b| a.0.cmp(b.0));
            }
        }
    }
}

/// The command byte of frames handled here before login.
pub(super) fn before_login(command: u8) -> bool {
    command == id::ACTIVATION
}
