//! Text taken from a delivery, made safe to put in a message: bounded in size,
//! and on one line.

use std::fmt;

/// Whether a character would break a log line or let a delivery forge one: the
/// control characters (U+0085 among them) and the Unicode line and paragraph
/// separators.
fn breaks_lines(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// The longest prefix of `text` of at most `max_chars` characters whose escaped
/// form takes at most `max_bytes`, with `…` added when it is cut.
pub(crate) fn excerpt(text: &str, max_chars: usize, max_bytes: usize) -> String {
    let mut bytes = 0usize;
    let mut end = text.len();
    for (count, (at, c)) in text.char_indices().enumerate() {
        // `escape_debug` is the longest form any message writes a character in.
        bytes = bytes.saturating_add(c.escape_debug().len());
        if count >= max_chars || bytes > max_bytes {
            end = at;
            break;
        }
    }
    match text.get(..end) {
        Some(kept) if end < text.len() => format!("{kept}…"),
        _ => text.to_owned(),
    }
}

/// The most characters of a bad value an error message quotes.
pub(crate) const QUOTE_MAX_CHARS: usize = 60;
/// The most bytes a quoted bad value takes, escapes included.
const QUOTE_MAX_BYTES: usize = 240;

/// A bad value as an error message quotes it: shortened if long, on one line.
pub(crate) fn quote(raw: &str) -> String {
    one_line_excerpt(raw, QUOTE_MAX_CHARS, QUOTE_MAX_BYTES)
}

/// [`excerpt`] with every line-breaking character escaped: text that is shown
/// as it is stored.
pub(crate) fn one_line_excerpt(text: &str, max_chars: usize, max_bytes: usize) -> String {
    let mut out = String::new();
    // Writing to a `String` cannot fail.
    let _ = write_one_line(&mut out, &excerpt(text, max_chars, max_bytes));
    out
}

/// Writes `text` with its line-breaking characters escaped.
pub(crate) fn write_one_line(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    text.chars().try_for_each(|c| match breaks_lines(c) {
        true => write!(out, "{}", c.escape_debug()),
        false => out.write_char(c),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_bounded_in_characters_and_bytes() {
        assert_eq!(excerpt("abc", 3, 100), "abc");
        assert_eq!(excerpt("abcd", 3, 100), "abc…");
        assert_eq!(excerpt("abcd", 100, 2), "ab…");
        // Each separator takes 8 bytes escaped (`\u{2028}`).
        let separators = "\u{2028}".repeat(10);
        assert_eq!(excerpt(&separators, 100, 20).chars().count(), 3);
        assert!(one_line_excerpt(&separators, 100, 20).len() <= 20 + '…'.len_utf8());
    }

    #[test]
    fn line_breaks_of_every_kind_are_escaped() {
        let escaped = one_line_excerpt("a\nb\rc\u{85}d\u{2028}e\u{2029}f\u{1b}g", 100, 1000);
        assert_eq!(escaped, r"a\nb\rc\u{85}d\u{2028}e\u{2029}f\u{1b}g");
        assert_eq!(one_line_excerpt("é ✓ \"q\"", 100, 1000), "é ✓ \"q\"");
    }
}
