//! When Svix created a message, read from its id.
//!
//! A Svix message id is `msg_` and a millisecond KSUID: 27 base62 characters
//! (`0-9A-Za-z`) for 20 bytes, a big-endian `u32` of seconds since
//! 1,400,000,000 (KSUID's epoch, 2014-05-13), a byte of milliseconds divided
//! by 4, then 15 random bytes. The same on every retry, so unlike
//! `svix-timestamp` (when an attempt was signed) it orders messages.
//!
//! Decoded here rather than with `svix-ksuid`: reading 27 characters is all
//! that is needed, and that crate (for making ids) needs Rust 1.88 and `rand`.

use time::{Duration, OffsetDateTime};

/// The prefix of a Svix message id.
const PREFIX: &str = "msg_";
/// KSUID's epoch, in Unix seconds.
const EPOCH: i64 = 1_400_000_000;
/// Base62 characters in a KSUID, and bytes they stand for.
const CHARS: usize = 27;
const BYTES: usize = 20;

/// When the message with Svix id `message_id` was created, to 4 ms; `None` if
/// the id is not `msg_` and a KSUID.
pub(crate) fn created_at(message_id: &str) -> Option<OffsetDateTime> {
    let bytes = decode(message_id.strip_prefix(PREFIX)?)?;
    let [s0, s1, s2, s3, quarter_ms, ..] = bytes;
    let seconds = i64::from(u32::from_be_bytes([s0, s1, s2, s3]));
    let at = OffsetDateTime::from_unix_timestamp(EPOCH.checked_add(seconds)?).ok()?;
    at.checked_add(Duration::milliseconds(i64::from(quarter_ms).checked_mul(4)?))
}

/// The 20 bytes a 27-character base62 KSUID stands for; `None` for any other
/// text, or a number past 20 bytes.
fn decode(text: &str) -> Option<[u8; BYTES]> {
    if text.len() != CHARS {
        return None;
    }
    // The number as five 32-bit limbs, least significant first. Five base62
    // digits at a time (62^5 < 2^30) make one multiply-add per limb: 30 in all,
    // where a byte at a time took 540, most of a delivery's context.
    let mut limbs = [0u32; BYTES / 4];
    for group in text.as_bytes().chunks(5) {
        let (mut value, mut scale) = (0u64, 1u64);
        for &c in group {
            value = value.checked_mul(62)?.checked_add(base62(c)?)?;
            scale = scale.checked_mul(62)?;
        }
        let mut carry = value;
        for limb in &mut limbs {
            let product = u64::from(*limb).checked_mul(scale)?.checked_add(carry)?;
            let [b0, b1, b2, b3, ..] = product.to_le_bytes();
            *limb = u32::from_le_bytes([b0, b1, b2, b3]);
            carry = product >> 32;
        }
        if carry != 0 {
            return None;
        }
    }
    let mut bytes = [0u8; BYTES];
    for (chunk, limb) in bytes.chunks_exact_mut(4).zip(limbs.iter().rev()) {
        chunk.copy_from_slice(&limb.to_be_bytes());
    }
    Some(bytes)
}

/// The value of a base62 digit (`0-9A-Za-z`).
fn base62(c: u8) -> Option<u64> {
    let digit = match c {
        b'0'..=b'9' => c.checked_sub(b'0')?,
        b'A'..=b'Z' => c.checked_sub(b'A')?.checked_add(10)?,
        b'a'..=b'z' => c.checked_sub(b'a')?.checked_add(36)?,
        _ => return None,
    };
    Some(u64::from(digit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Segment's published KSUIDs: its README's example (raw
    /// `0669F7EFB5A1CD34B5F99D1154FB6853345C9735`, timestamp 107608047,
    /// 2017-10-09 21:00:47 -0700), and the smallest and largest KSUIDs.
    #[test]
    fn segment_vectors() {
        assert_eq!(
            decode("0ujtsYcgvSTl8PAuAdqWYSMnLOv").map(|b| b[..5].to_vec()),
            Some(vec![0x06, 0x69, 0xF7, 0xEF, 0xB5])
        );
        // 0xB5 = 181 quarter-milliseconds: 724 ms into the second.
        assert_eq!(
            created_at("msg_0ujtsYcgvSTl8PAuAdqWYSMnLOv"),
            Some(at("2017-10-10T04:00:47.724Z"))
        );
        assert_eq!(decode("000000000000000000000000000"), Some([0; BYTES]));
        assert_eq!(
            created_at("msg_000000000000000000000000000"),
            Some(at("2014-05-13T16:53:20Z"))
        );
        assert_eq!(decode("aWgEPTl1tmebfsQzFP4bxwgy80V"), Some([0xFF; BYTES]));
    }

    #[test]
    fn not_a_ksuid_has_no_creation_time() {
        for id in [
            "msg_p5jXN8AQM9LWM0D4loKWxJek",    // Svix's documentation example: 24 characters
            "0ujtsYcgvSTl8PAuAdqWYSMnLOv",     // a KSUID without the prefix
            "msg_aWgEPTl1tmebfsQzFP4bxwgy80W", // one past the largest
            "msg_0ujtsYcgvSTl8PAuAdqWYSMnLO-", // not base62
            "msg_0ujtsYcgvSTl8PAuAdqWYSMnLOvv", // 28 characters
            "msg_1",
            "",
            "msg_0ujtsYcgvSTl8PAuAdqWYSMnLOé",
        ] {
            assert_eq!(created_at(id), None, "{id}");
        }
    }

    /// The byte-at-a-time reading this one replaced, as the reference.
    fn decode_bytewise(text: &str) -> Option<[u8; BYTES]> {
        if text.len() != CHARS {
            return None;
        }
        let mut bytes = [0u8; BYTES];
        for c in text.bytes() {
            let mut carry = u32::try_from(base62(c)?).ok()?;
            for byte in bytes.iter_mut().rev() {
                let value = u32::from(*byte).checked_mul(62)?.checked_add(carry)?;
                *byte = value.to_le_bytes()[0];
                carry = value >> 8;
            }
            if carry != 0 {
                return None;
            }
        }
        Some(bytes)
    }

    #[test]
    fn grouped_decoding_equals_bytewise_decoding() {
        const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let (mut read, mut overflowed) = (0, 0);
        for _ in 0..20_000 {
            let text: String = (0..CHARS)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    char::from(
                        DIGITS
                            .get(usize::try_from(state % 62).unwrap_or(0))
                            .copied()
                            .unwrap_or(b'0'),
                    )
                })
                .collect();
            let expected = decode_bytewise(&text);
            assert_eq!(decode(&text), expected, "{text}");
            if expected.is_some() {
                read += 1
            } else {
                overflowed += 1
            }
        }
        // Both outcomes were met: 41 % of random 27-digit texts are past 20 bytes.
        assert!(read > 0 && overflowed > 0, "{read} {overflowed}");
    }

    /// Ids sort as their creation times: Svix's ids sort as strings.
    #[test]
    fn later_ids_sort_later() {
        let earlier = created_at("msg_0ujtsYcgvSTl8PAuAdqWYSMnLOv");
        let later = created_at("msg_0ujtsYcgvSTl8PAuAdqWYSMnLOw");
        assert!(earlier.is_some() && earlier <= later);
        assert!(
            created_at("msg_0ujtsYcgvSTl8PAuAdqWYSMnLOv") < created_at("msg_1ujtsYcgvSTl8PAuAdqWYSMnLOv")
        );
    }
}
