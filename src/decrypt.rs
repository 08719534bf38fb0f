//! Encrypted payloads: [`Decryptor`] turns an `isEncrypted` payload back into
//! JSON.
//!
//! Engage can encrypt payloads end to end "in the same way as with Soft
//! identification": the `payload` is then a string holding URL-safe base64 of a
//! 16-byte IV followed by AES-256-CBC ciphertext (PKCS#7 padding) under a shared
//! 32-character key, whose ASCII bytes are the 256-bit key.

use std::fmt;

use aes::Aes256;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use zeroize::Zeroizing;

use crate::error::ParseError;
use crate::lenient_base64::LENIENT_BASE64;
use crate::raw::RawPayload;
use crate::text::quote;

/// The key's length, in characters and bytes.
const KEY_LEN: usize = 32;
/// The IV's length, and the AES block size.
const BLOCK_LEN: usize = 16;

/// Why an encryption key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is not 32 characters long.
    #[error("the encryption key must be 32 characters, found {0}")]
    WrongLength(usize),
    /// The key has characters outside ASCII.
    #[error("the encryption key must be ASCII (Engage keys are letters and digits)")]
    NotAscii,
}

/// Why an encrypted payload could not be decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The payload is not a JSON string.
    #[error("an encrypted payload must be a JSON string, found {0}")]
    NotAString(String),
    /// The string is not base64 (URL-safe or standard).
    #[error("the encrypted payload is not base64")]
    Base64,
    /// Fewer bytes than a 16-byte IV and one block of ciphertext.
    #[error("the encrypted payload is {0} bytes, too short for a 16-byte IV and a block of ciphertext")]
    TooShort(usize),
    /// The ciphertext after the IV is not whole 16-byte blocks.
    #[error("the ciphertext is {0} bytes, not a multiple of the 16-byte block")]
    NotBlockAligned(usize),
    /// The padding is wrong after decryption: almost always the wrong key.
    #[error("the decrypted padding is invalid: most likely the wrong key")]
    BadPadding,
    /// The plaintext is not UTF-8.
    #[error("the decrypted payload is not UTF-8")]
    NotUtf8,
    /// The plaintext is not JSON.
    #[error("the decrypted payload is not JSON: {0}")]
    NotJson(String),
    /// The plaintext is JSON but not a valid payload for its event type.
    #[error("the decrypted payload does not parse: {0}")]
    Parse(#[from] ParseError),
}

/// The shared key for encrypted payloads.
///
/// ```
/// use voyado_webhooks::{Decryptor, EventEnvelope, RawPayload};
///
/// let decryptor = Decryptor::new("VoyadoEngageFixtureKey0123456789")?;
/// let plain = RawPayload::from_json(r#"{"balance": 12.50, "contactId": "c-1"}"#)?;
/// let encrypted = decryptor.encrypt_payload(&plain, &[7; 16]);
///
/// let body = format!(r#"{{"eventType": "point.balance.updated", "isEncrypted": true, "payload": {encrypted}}}"#);
/// let event = EventEnvelope::from_slice(body.as_bytes())?.decrypt(&decryptor)?;
/// let EventEnvelope::PointBalanceUpdated(event) = event else { unreachable!() };
/// assert_eq!(event.payload.balance.to_string(), "12.50");
/// assert!(!event.is_encrypted);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Decryptor {
    /// Wiped when dropped, as are the ciphers made from it.
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl Decryptor {
    /// A decryptor from the 32-character key configured in Engage. Surrounding
    /// whitespace is ignored.
    pub fn new(key: &str) -> Result<Decryptor, KeyError> {
        let key = key.trim();
        if !key.is_ascii() {
            return Err(KeyError::NotAscii);
        }
        let bytes = Zeroizing::new(
            <[u8; KEY_LEN]>::try_from(key.as_bytes()).map_err(|_| KeyError::WrongLength(key.len()))?,
        );
        Ok(Decryptor::from_bytes(&bytes))
    }

    /// A decryptor from the raw 256-bit key.
    pub fn from_bytes(key: &[u8; KEY_LEN]) -> Decryptor {
        Decryptor {
            key: Zeroizing::new(*key),
        }
    }

    /// Decrypts an encrypted payload (a JSON string) into the JSON it holds.
    /// URL-safe and standard base64 are accepted, with or without padding, and
    /// with surrounding whitespace.
    pub fn decrypt_payload(&self, payload: &RawPayload) -> Result<RawPayload, DecryptError> {
        let text: String = serde_json::from_str(payload.get())
            .map_err(|_| DecryptError::NotAString(quote(payload.get())))?;
        let standard: String = text
            .trim()
            .trim_end_matches('=')
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                c => c,
            })
            .collect();
        // URL-safe text was mapped to the standard alphabet above.
        let bytes = LENIENT_BASE64
            .decode(standard)
            .map_err(|_| DecryptError::Base64)?;
        let (iv, ciphertext) = bytes
            .split_at_checked(BLOCK_LEN)
            .ok_or(DecryptError::TooShort(bytes.len()))?;
        if ciphertext.is_empty() {
            return Err(DecryptError::TooShort(bytes.len()));
        }
        if ciphertext.len() % BLOCK_LEN != 0 {
            return Err(DecryptError::NotBlockAligned(ciphertext.len()));
        }
        let cipher = cbc::Decryptor::<Aes256>::new_from_slices(&*self.key, iv)
            .map_err(|_| DecryptError::TooShort(bytes.len()))?;
        let plain = cipher
            .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
            .map_err(|_| DecryptError::BadPadding)?;
        let plain = String::from_utf8(plain).map_err(|_| DecryptError::NotUtf8)?;
        RawPayload::from_json(plain).map_err(|e| DecryptError::NotJson(e.to_string()))
    }

    /// Encrypts a payload the way Engage does, with the given IV, into the JSON
    /// string an encrypted delivery carries (URL-safe base64 without padding).
    /// For building test deliveries: real IVs must be random and never reused.
    pub fn encrypt_payload(&self, payload: &RawPayload, iv: &[u8; BLOCK_LEN]) -> RawPayload {
        let cipher = cbc::Encryptor::<Aes256>::new(&(*self.key).into(), &(*iv).into());
        let mut bytes = iv.to_vec();
        bytes.extend(cipher.encrypt_padded_vec_mut::<Pkcs7>(payload.get().as_bytes()));
        // Base64 in quotes is always a valid JSON string, so the fallback is never taken.
        let json = format!("\"{}\"", URL_SAFE_NO_PAD.encode(bytes));
        RawPayload::from_json(json)
            .unwrap_or_else(|_| RawPayload::from(serde_json::value::RawValue::NULL.to_owned()))
    }
}

/// Never shows the key.
impl fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decryptor").field("key", &"<redacted>").finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "VoyadoEngageFixtureKey0123456789";

    fn decryptor() -> Decryptor {
        Decryptor::new(KEY).unwrap()
    }

    fn raw(json: &str) -> RawPayload {
        RawPayload::from_json(json).unwrap()
    }

    fn encrypted_text(plain: &str) -> String {
        let payload = decryptor().encrypt_payload(&raw(plain), &[9; 16]);
        serde_json::from_str(payload.get()).unwrap()
    }

    #[test]
    fn keys_are_32_ascii_characters() {
        assert!(Decryptor::new(KEY).is_ok());
        assert!(Decryptor::new(&format!(" {KEY}\n")).is_ok());
        assert_eq!(Decryptor::new("short").err(), Some(KeyError::WrongLength(5)));
        assert_eq!(
            Decryptor::new(&format!("{KEY}x")).err(),
            Some(KeyError::WrongLength(33))
        );
        assert_eq!(Decryptor::new("").err(), Some(KeyError::WrongLength(0)));
        assert_eq!(Decryptor::new(&"é".repeat(16)).err(), Some(KeyError::NotAscii));
        let from_bytes = Decryptor::from_bytes(KEY.as_bytes().try_into().unwrap());
        assert_eq!(from_bytes.key, decryptor().key);
    }

    #[test]
    fn the_key_and_the_ciphers_made_from_it_are_wiped_on_drop() {
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>(_: &T) {}
        wiped_on_drop(&decryptor().key);
        let iv = [0u8; BLOCK_LEN];
        wiped_on_drop(&cbc::Decryptor::<Aes256>::new(
            &(*decryptor().key).into(),
            &iv.into(),
        ));
        wiped_on_drop(&cbc::Encryptor::<Aes256>::new(
            &(*decryptor().key).into(),
            &iv.into(),
        ));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let debug = format!("{:?}", decryptor());
        assert_eq!(debug, r#"Decryptor { key: "<redacted>" }"#);
    }

    #[test]
    fn round_trips_and_accepts_every_base64_form() {
        let plain = r#"{"amount": 1.50, "contactId": "c-1", "note": "åäö €"}"#;
        let text = encrypted_text(plain);
        assert!(!text.contains(['+', '/', '=']), "URL-safe without padding");
        let standard = text.replace('-', "+").replace('_', "/");
        let padded = format!("{standard}{}", "=".repeat((4 - standard.len() % 4) % 4));
        for form in [text.clone(), standard, padded, format!("  {text}\n")] {
            let json = serde_json::to_string(&form).unwrap();
            let decrypted = decryptor().decrypt_payload(&raw(&json)).unwrap();
            assert_eq!(decrypted.get(), plain, "{form:?}");
        }
    }

    #[test]
    fn every_error_is_distinguished() {
        let decrypt = |json: &str| decryptor().decrypt_payload(&raw(json)).unwrap_err();
        let encrypt = |plain: &[u8]| {
            let cipher = cbc::Encryptor::<Aes256>::new(&(*decryptor().key).into(), &[0u8; 16].into());
            let mut bytes = vec![0u8; 16];
            bytes.extend(cipher.encrypt_padded_vec_mut::<Pkcs7>(plain));
            serde_json::to_string(&URL_SAFE_NO_PAD.encode(bytes)).unwrap()
        };
        assert_eq!(
            decrypt(r#"{"a": 1}"#),
            DecryptError::NotAString(r#"{"a": 1}"#.into())
        );
        assert_eq!(decrypt("null"), DecryptError::NotAString("null".into()));
        assert_eq!(decrypt(r#""not base64!""#), DecryptError::Base64);
        assert_eq!(decrypt(r#""AAAA""#), DecryptError::TooShort(3));
        assert_eq!(
            decrypt(&format!("\"{}\"", URL_SAFE_NO_PAD.encode([0u8; 16]))),
            DecryptError::TooShort(16)
        );
        assert_eq!(
            decrypt(&format!("\"{}\"", URL_SAFE_NO_PAD.encode([0u8; 40]))),
            DecryptError::NotBlockAligned(24)
        );
        assert_eq!(
            decrypt(&format!("\"{}\"", URL_SAFE_NO_PAD.encode([0u8; 48]))),
            DecryptError::BadPadding
        );
        assert_eq!(decrypt(&encrypt(b"\xff\xfe")), DecryptError::NotUtf8);
        assert!(matches!(
            decrypt(&encrypt(b"{not json")),
            DecryptError::NotJson(_)
        ));
    }

    #[test]
    fn the_wrong_key_is_bad_padding_or_garbage_never_a_payload() {
        let wrong = Decryptor::new("WrongKeyWrongKeyWrongKeyWrongKey").unwrap();
        // A wrong key gives random bytes, whose padding is invalid about 255 times
        // in 256; the rest fail as UTF-8 or JSON. Over many IVs, never a payload.
        let outcomes: Vec<_> = (0..=255u8)
            .map(|i| wrong.decrypt_payload(&decryptor().encrypt_payload(&raw("{}"), &[i; 16])))
            .collect();
        assert!(outcomes.iter().all(Result::is_err));
        assert!(
            outcomes
                .iter()
                .filter(|o| **o == Err(DecryptError::BadPadding))
                .count()
                > 200
        );
    }
}
