//! Svix message ids made for a given creation time.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "test helpers fail by panicking"
)]

/// A Svix message id (`msg_` and a millisecond KSUID) for a message created at
/// `created`, with `n` as the first of its random bytes, so that ids of one
/// millisecond differ.
pub fn svix_id(created: time::OffsetDateTime, n: u8) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let seconds = u32::try_from(created.unix_timestamp() - 1_400_000_000).unwrap();
    let mut bytes = [0u8; 20];
    bytes[..4].copy_from_slice(&seconds.to_be_bytes());
    bytes[4] = (created.millisecond() / 4) as u8;
    bytes[5] = n;
    // Base62, most significant digit first: divide the 160-bit number by 62.
    let mut digits = Vec::new();
    for _ in 0..27 {
        let mut remainder = 0u32;
        for byte in bytes.iter_mut() {
            let value = (remainder << 8) | u32::from(*byte);
            *byte = (value / 62) as u8;
            remainder = value % 62;
        }
        digits.push(ALPHABET[remainder as usize]);
    }
    digits.reverse();
    format!("msg_{}", String::from_utf8(digits).unwrap())
}
