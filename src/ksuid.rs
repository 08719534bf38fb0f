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
    let mut bytes = [0u8; BYTES];
    for c in text.bytes() {
        let digit = match c {
            b'0'..=b'9' => c.checked_sub(b'0')?,
            b'A'..=b'Z' => c.checked_sub(b'A')?.checked_add(10)?,
            b'a'..=b'z' => c.checked_sub(b'a')?.checked_add(36)?,
            _ => return None,
        };
        // bytes = bytes * 62 + digit, from the least significant byte up.
        let mut carry = u32::from(digit);
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
