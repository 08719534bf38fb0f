//! The nesting guard.
//!
//! serde_json refuses a value nested past its recursion limit when it builds
//! one, but not when it only captures a value's text (`RawValue`, which this
//! crate uses for kept values, unknown payloads and decimals, and for every
//! field when it explains an error): that keeps a byte per level with no limit, so
//! 10 MB of `[` would cost 10 MB and a scan to the end before anything failed.
//! Bodies are therefore checked before serde_json reads them, in constant memory,
//! and a body that nests too deeply is refused at the limit.

/// How deeply a body may nest arrays and objects, counting the envelope object
/// itself. A value kept from a body nests at most one level less, which
/// serde_json reads on its own (it takes 127 levels).
pub(crate) const MAX_DEPTH: usize = 128;

/// A body that nests past [`MAX_DEPTH`], rewritten so that it does not: the
/// value that first goes one level too deep is replaced by `0` at byte `at`.
/// Reading the rewritten body, the field whose text holds byte `at` is the one
/// to name in the error.
#[derive(Debug)]
pub(crate) struct Rewritten {
    pub(crate) body: String,
    pub(crate) at: usize,
}

/// Checks a body's nesting: `None` if it is within [`MAX_DEPTH`].
pub(crate) fn guard(body: &str) -> Option<Rewritten> {
    if at_most_openings(body, MAX_DEPTH) {
        return None;
    }
    first_too_deep(body, MAX_DEPTH).map(|(at, open)| rewrite(body, at, &open))
}

/// Whether well-formed JSON text nests deeper than `limit` (at most [`MAX_DEPTH`]).
pub(crate) fn exceeds(json: &str, limit: usize) -> bool {
    !at_most_openings(json, limit) && first_too_deep(json, limit).is_some()
}

/// Whether `text` holds at most `limit` opening brackets, in or out of strings.
/// Nesting deeper than a limit needs more opening brackets than the limit:
/// counting them (a few vector instructions per 64 bytes) clears nearly all
/// JSON without the byte-by-byte scan of [`first_too_deep`]. (memchr's search
/// for the two bytes measured no faster on deliveries: about 230 instructions
/// a body either way.)
fn at_most_openings(text: &str, limit: usize) -> bool {
    let mut openings = 0usize;
    for chunk in text.as_bytes().chunks(64) {
        // `[` (0x5B) and `{` (0x7B) are the only bytes that give `{` with bit 5 set.
        let count = chunk
            .iter()
            .fold(0u8, |count, &b| count.wrapping_add(u8::from(b | 0x20 == b'{')));
        openings = openings.saturating_add(usize::from(count));
        if openings > limit {
            return false;
        }
    }
    true
}

/// The offsets and bytes of the brackets in JSON text, skipping strings.
fn brackets(json: &str) -> Brackets<'_> {
    Brackets {
        bytes: json.as_bytes(),
        at: 0,
    }
}

/// See [`brackets`]. A string is skipped in a loop of its own that looks for
/// nothing but its end: this scan runs over every body with more than
/// [`MAX_DEPTH`] opening brackets (a kept array of 129 objects has them), and
/// as one state machine over every byte it cost more than serde_json's whole
/// reading of such a body.
struct Brackets<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Iterator for Brackets<'_> {
    type Item = (usize, u8);

    fn next(&mut self) -> Option<(usize, u8)> {
        loop {
            let at = self.at;
            let b = *self.bytes.get(at)?;
            self.at = at.saturating_add(1);
            match b {
                b'"' => self.at = string_end(self.bytes, self.at),
                b'[' | b'{' | b']' | b'}' => return Some((at, b)),
                _ => {}
            }
        }
    }
}

/// Where the string whose text starts at `at` ends: after its closing quote,
/// or at the end of `bytes` if it has none. A backslash escapes the byte after it.
fn string_end(bytes: &[u8], mut at: usize) -> usize {
    while let Some(&b) = bytes.get(at) {
        match b {
            b'"' => return at.saturating_add(1),
            b'\\' => at = at.saturating_add(2),
            _ => at = at.saturating_add(1),
        }
    }
    bytes.len()
}

/// The offset of the first bracket that opens level `limit + 1`, with the
/// brackets open there (at most [`MAX_DEPTH`] of them, so memory is bounded by
/// the limit, whatever the depth).
fn first_too_deep(json: &str, limit: usize) -> Option<(usize, Vec<u8>)> {
    let mut open = Vec::new();
    for (at, b) in brackets(json) {
        if matches!(b, b'[' | b'{') {
            if open.len() >= limit.min(MAX_DEPTH) {
                return Some((at, open));
            }
            open.push(b);
        } else {
            open.pop();
        }
    }
    None
}

/// `body` with the value opening at `at` replaced by `0`. The rest of the body
/// is kept if it closes what is open around that value; otherwise it is
/// replaced by the closing brackets, so that the rewritten body is read at
/// least as far as the field holding the value.
fn rewrite(body: &str, at: usize, open: &[u8]) -> Rewritten {
    let (before, from) = body.split_at_checked(at).unwrap_or((body, ""));
    let closers: String = open
        .iter()
        .rev()
        .map(|&b| if b == b'[' { ']' } else { '}' })
        .collect();
    let rest = closing_at(from, 0)
        .and_then(|end| from.get(end..))
        .filter(|rest| closing_at(rest, open.len()).is_some());
    Rewritten {
        body: [before, "0", rest.unwrap_or(&closers)].concat(),
        at,
    }
}

/// Where `json`, read inside `depth` open brackets (or, for 0, starting with a
/// bracket), closes them all: the offset after the last closing bracket.
fn closing_at(json: &str, depth: usize) -> Option<usize> {
    let mut depth = depth;
    for (at, b) in brackets(json) {
        if matches!(b, b'[' | b'{') {
            depth = depth.saturating_add(1);
        } else {
            depth = depth.checked_sub(1)?;
            if depth == 0 {
                return at.checked_add(1);
            }
        }
    }
    None
}

/// Whether `text` (borrowed from a rewritten body) holds the byte at address `at`.
pub(crate) fn holds(text: &str, at: usize) -> bool {
    let start = text.as_ptr().addr();
    start <= at && at < start.saturating_add(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nest(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn bodies_within_the_limit_pass_whatever_their_brackets() {
        assert!(guard(&format!("{{\"a\":{}}}", nest(MAX_DEPTH - 1))).is_none());
        // Many brackets, little depth; and brackets inside strings do not count.
        assert!(guard(&"[]".repeat(1000)).is_none());
        assert!(guard(&format!("{{\"a\":\"{}\"}}", "[".repeat(1000))).is_none());
        assert!(guard(&format!("{{\"a\":\"\\\"{}\"}}", "[".repeat(1000))).is_none());
    }

    #[test]
    fn the_value_past_the_limit_is_replaced() {
        let body = format!("{{\"a\":{},\"b\":1}}", nest(MAX_DEPTH));
        let rewritten = guard(&body).unwrap();
        assert_eq!(rewritten.at, 5 + MAX_DEPTH - 1);
        let expected = format!(
            "{{\"a\":{}0{},\"b\":1}}",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert_eq!(rewritten.body, expected);
        assert!(serde_json::from_str::<serde::de::IgnoredAny>(&rewritten.body).is_ok());
    }

    #[test]
    fn an_unclosed_value_is_closed_after_the_replacement() {
        let body = format!("{{\"a\":[{{\"b\":{}", "[".repeat(10_000_000));
        let rewritten = guard(&body).unwrap();
        assert!(rewritten.body.len() < 400);
        assert!(serde_json::from_str::<serde::de::IgnoredAny>(&rewritten.body).is_ok());
    }

    /// The brackets outside strings, found by one state machine over every byte.
    fn reference_brackets(json: &str) -> Vec<(usize, u8)> {
        let (mut in_string, mut escaped) = (false, false);
        let mut found = Vec::new();
        for (at, b) in json.bytes().enumerate() {
            match (in_string, escaped, b) {
                (true, true, _) => escaped = false,
                (true, false, b'\\') => escaped = true,
                (_, _, b'"') => in_string = !in_string,
                (false, _, b'[' | b'{' | b']' | b'}') => found.push((at, b)),
                _ => {}
            }
        }
        found
    }

    #[test]
    fn brackets_are_found_outside_strings_only() {
        // Every text of up to 7 of these bytes, so every placement of an
        // escape, a quote and a bracket against the others and the ends.
        let alphabet = [b'"', b'\\', b'[', b']', b'{', b'}', b'a'];
        let mut texts = vec![Vec::new()];
        for _ in 0..7 {
            let longer: Vec<Vec<u8>> = texts
                .iter()
                .filter(|t| t.len() == texts.last().map_or(0, Vec::len))
                .flat_map(|t| {
                    alphabet.iter().map(move |&b| {
                        let mut t = t.clone();
                        t.push(b);
                        t
                    })
                })
                .collect();
            texts.extend(longer);
        }
        for text in texts {
            let text = String::from_utf8(text).unwrap();
            let found: Vec<(usize, u8)> = brackets(&text).collect();
            assert_eq!(found, reference_brackets(&text), "{text}");
        }
    }

    #[test]
    fn kept_values_are_measured_against_their_own_limit() {
        assert!(!exceeds(&nest(127), 127));
        assert!(exceeds(&nest(128), 127));
        assert!(!exceeds("\"[[[[\"", 1));
    }
}
