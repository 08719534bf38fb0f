//! The fast path for the common delivery: a JSON reader that only finds where
//! each value starts and ends, validating it as serde_json would when capturing
//! raw text, and hands the same visitors the same text. It gives up on anything
//! it does not read plainly (an escaped key, deep nesting, a payload that is not
//! an object, any error at all); the delivery is then read again by serde_json,
//! which also explains any error.

use std::fmt;

use serde::de::value::{BorrowedStrDeserializer, MapDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::RawText;

/// The fast path gave up: read the delivery with serde_json instead.
#[derive(Debug)]
pub(crate) struct GiveUp;

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a plain delivery")
    }
}

impl std::error::Error for GiveUp {}

impl de::Error for GiveUp {
    fn custom<T: fmt::Display>(_: T) -> Self {
        GiveUp
    }
}

/// Nesting the fast path reads; deeper values are left to serde_json's path,
/// which enforces the real limit.
const MAX_DEPTH: usize = 32;
const _: () = assert!(MAX_DEPTH <= super::MAX_DEPTH);

/// A position in well-formed UTF-8 text.
pub(crate) struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Scanner { text, at: 0 }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    #[inline]
    fn bump(&mut self) {
        self.at = self.at.saturating_add(1);
    }

    #[inline]
    fn skip_space(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.bump();
        }
    }

    #[inline]
    fn eat(&mut self, byte: u8) -> Result<(), GiveUp> {
        match self.peek() {
            Some(b) if b == byte => {
                self.bump();
                Ok(())
            }
            _ => Err(GiveUp),
        }
    }

    /// Only whitespace is left.
    pub(crate) fn end(&mut self) -> Result<(), GiveUp> {
        self.skip_space();
        match self.at == self.text.len() {
            true => Ok(()),
            false => Err(GiveUp),
        }
    }

    /// A string; returns its contents (escapes kept) and whether it has escapes.
    /// Escapes are checked as serde_json checks a captured string: one of
    /// `\" \\ \/ \b \f \n \r \t`, or `\u` and four hex digits.
    #[inline(always)]
    fn string(&mut self) -> Result<(&'a str, bool), GiveUp> {
        self.eat(b'"')?;
        let start = self.at;
        let mut escaped = false;
        loop {
            self.skip_plain();
            match self.peek().ok_or(GiveUp)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    self.bump();
                    match self.peek().ok_or(GiveUp)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.bump(),
                        b'u' => {
                            self.bump();
                            for _ in 0..4 {
                                if !self.peek().is_some_and(|b| b.is_ascii_hexdigit()) {
                                    return Err(GiveUp);
                                }
                                self.bump();
                            }
                        }
                        _ => return Err(GiveUp),
                    }
                }
                // `skip_plain` stops only at those two or a control character.
                _ => return Err(GiveUp),
            }
        }
        let contents = self.text.get(start..self.at).ok_or(GiveUp)?;
        self.bump();
        Ok((contents, escaped))
    }

    /// Skips string bytes that need no attention (not `"`, `\` or a control
    /// character), eight at a time.
    #[inline]
    fn skip_plain(&mut self) {
        const ONES: u64 = u64::from_le_bytes([0x01; 8]);
        const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
        // The high bit of each byte of `word` below `limit` (the classic bit
        // trick: a byte above a flagged one may be flagged too, so only the
        // lowest flag is exact, and only it is used).
        let below =
            |word: u64, limit: u8| word.wrapping_sub(ONES.wrapping_mul(u64::from(limit))) & !word & HIGHS;
        let rest = self.text.as_bytes().get(self.at..).unwrap_or_default();
        let mut skipped = 0usize;
        for chunk in rest.chunks_exact(8) {
            let word = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or([0; 8]));
            let flags = below(word, 0x20)
                | below(word ^ ONES.wrapping_mul(u64::from(b'"')), 1)
                | below(word ^ ONES.wrapping_mul(u64::from(b'\\')), 1);
            if flags != 0 {
                // Little-endian: the lowest flag is the first such byte.
                let first = usize::try_from(flags.trailing_zeros() / 8).unwrap_or(0);
                self.at = self.at.saturating_add(skipped).saturating_add(first);
                return;
            }
            skipped = skipped.saturating_add(8);
        }
        self.at = self.at.saturating_add(skipped);
        while let Some(b) = self.peek() {
            if b == b'"' || b == b'\\' || b < 0x20 {
                break;
            }
            self.bump();
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.bump();
        }
        self.at.saturating_sub(start)
    }

    /// A number, in JSON's grammar.
    fn number(&mut self) -> Result<(), GiveUp> {
        if self.peek() == Some(b'-') {
            self.bump();
        }
        match self.peek() {
            // One leading zero, not followed by a digit.
            Some(b'0') => {
                self.bump();
                if self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    return Err(GiveUp);
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(GiveUp),
        }
        if self.peek() == Some(b'.') {
            self.bump();
            if self.digits() == 0 {
                return Err(GiveUp);
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.bump();
            if let Some(b'+' | b'-') = self.peek() {
                self.bump();
            }
            if self.digits() == 0 {
                return Err(GiveUp);
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &str) -> Result<(), GiveUp> {
        let rest = self.text.get(self.at..).ok_or(GiveUp)?;
        match rest.starts_with(word) {
            true => {
                self.at = self.at.saturating_add(word.len());
                Ok(())
            }
            false => Err(GiveUp),
        }
    }

    /// The members or items of an object or array, after its opening bracket.
    fn list(&mut self, close: u8, depth: usize, object: bool) -> Result<(), GiveUp> {
        self.skip_space();
        if self.peek() == Some(close) {
            self.bump();
            return Ok(());
        }
        loop {
            if object {
                self.string()?;
                self.skip_space();
                self.eat(b':')?;
                self.skip_space();
            }
            self.value(depth)?;
            self.skip_space();
            match self.peek() {
                Some(b',') => {
                    self.bump();
                    self.skip_space();
                }
                Some(b) if b == close => {
                    self.bump();
                    return Ok(());
                }
                _ => return Err(GiveUp),
            }
        }
    }

    /// One value, validated; returns its text.
    fn value(&mut self, depth: usize) -> Result<&'a str, GiveUp> {
        let start = self.at;
        match self.peek().ok_or(GiveUp)? {
            b'"' => {
                self.string()?;
            }
            open @ (b'{' | b'[') => {
                let depth = depth.saturating_add(1);
                if depth > MAX_DEPTH {
                    return Err(GiveUp);
                }
                self.bump();
                let (close, object) = if open == b'{' { (b'}', true) } else { (b']', false) };
                self.list(close, depth, object)?;
            }
            b't' => self.literal("true")?,
            b'f' => self.literal("false")?,
            b'n' => self.literal("null")?,
            _ => self.number()?,
        }
        self.text.get(start..self.at).ok_or(GiveUp)
    }
}

/// The value at a [`Scanner`]'s position, as a serde deserializer: an object is
/// visited as a map, and [`Span`] takes any value's text. Anything else gives up
/// (a typed payload that is not an object is an error or an encrypted payload:
/// serde_json's path handles both).
pub(crate) struct Value<'s, 'a>(pub(crate) &'s mut Scanner<'a>);

impl<'de> Deserializer<'de> for Value<'_, 'de> {
    type Error = GiveUp;

    #[inline]
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        self.0.skip_space();
        self.0.eat(b'{')?;
        visitor.visit_map(Object {
            scanner: self.0,
            first: true,
        })
    }

    #[inline]
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, GiveUp> {
        self.0.skip_space();
        visitor.visit_borrowed_str(self.0.value(1)?)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct seq tuple tuple_struct map struct
        enum identifier ignored_any
    }
}

/// The members of an object, after its `{`.
struct Object<'s, 'a> {
    scanner: &'s mut Scanner<'a>,
    first: bool,
}

impl<'de> MapAccess<'de> for Object<'_, 'de> {
    type Error = GiveUp;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, GiveUp> {
        let s = &mut *self.scanner;
        s.skip_space();
        if s.peek() == Some(b'}') {
            s.bump();
            return Ok(None);
        }
        if !self.first {
            s.eat(b',')?;
            s.skip_space();
        }
        self.first = false;
        let (key, escaped) = s.string()?;
        if escaped {
            return Err(GiveUp);
        }
        s.skip_space();
        s.eat(b':')?;
        seed.deserialize(BorrowedStrDeserializer::new(key)).map(Some)
    }

    #[inline]
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, GiveUp> {
        seed.deserialize(Value(&mut *self.scanner))
    }
}

/// A value's raw JSON text, as found by the [`Scanner`]. Only [`Value`] can
/// produce one.
#[derive(Clone, Copy)]
pub(crate) struct Span<'de>(&'de str);

impl<'de> de::Deserialize<'de> for Span<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpanVisitor;
        impl<'de> Visitor<'de> for SpanVisitor {
            type Value = Span<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Span<'de>, E> {
                Ok(Span(text))
            }
        }
        deserializer.deserialize_newtype_struct("Span", SpanVisitor)
    }
}

impl<'de> RawText<'de> for Span<'de> {
    // The scanner gives up on anything deeper than its own, lower limit.
    const DEPTH_CHECKED: bool = true;

    #[inline]
    fn text(&self) -> &str {
        self.0
    }

    /// Copies the text without validating it again: the scanner validated it
    /// as serde_json would. Should serde_json ever stop speaking the protocol
    /// [`Verbatim`] relies on, the text is validated again, never altered.
    fn into_box(self) -> Result<Box<RawValue>, serde_json::Error> {
        match <Box<RawValue> as de::Deserialize>::deserialize(Verbatim(self.0)) {
            Ok(raw) if raw.get() == self.0 => Ok(raw),
            _ => RawValue::from_string(self.0.to_owned()),
        }
    }
}

/// The name under which serde_json's `RawValue` deserializes itself: a newtype
/// struct around one map entry whose value is the JSON text. It is serde_json's
/// private protocol, not its API, hence the check and the fallback in
/// [`Span::into_box`].
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Validated JSON text, offered to `Box<RawValue>` the way serde_json's own
/// reader offers it: copied, not parsed again.
struct Verbatim<'a>(&'a str);

impl<'de> Deserializer<'de> for Verbatim<'de> {
    type Error = GiveUp;

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, GiveUp> {
        if name != RAW_VALUE_TOKEN {
            return Err(GiveUp);
        }
        visitor.visit_map(MapDeserializer::new(std::iter::once((RAW_VALUE_TOKEN, self.0))))
    }

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, GiveUp> {
        Err(GiveUp)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct seq tuple tuple_struct map struct
        enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(text: &str) -> Option<&str> {
        let mut scanner = Scanner::new(text);
        scanner.skip_space();
        let value = scanner.value(0).ok()?;
        scanner.end().ok()?;
        Some(value)
    }

    #[test]
    fn reads_what_serde_json_reads() {
        for ok in [
            "0",
            "-0",
            "1.5",
            "-12.340e+10",
            "1E5",
            "true",
            "false",
            "null",
            "\"\"",
            "\"a\\\"b\\u00E5\\n\"",
            "{}",
            "[]",
            "{\"a\": [1, {\"b\": null}], \"c\": \"d\"}",
            " [ 1 , 2 ] ",
        ] {
            assert!(serde_json::from_str::<&RawValue>(ok).is_ok(), "{ok}");
            assert_eq!(span(ok), Some(ok.trim()), "{ok}");
        }
    }

    #[test]
    fn gives_up_on_what_serde_json_refuses() {
        for bad in [
            "",
            "01",
            "-",
            "1.",
            ".5",
            "+1",
            "1e",
            "1e+",
            "tru",
            "nul",
            "\"a",
            "\"\\x\"",
            "\"\\u12g4\"",
            "\"a\u{1}b\"",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{a:1}",
            "[1 2]",
            "1 2",
            "NaN",
        ] {
            assert!(serde_json::from_str::<&RawValue>(bad).is_err(), "{bad}");
            assert_eq!(span(bad), None, "{bad}");
        }
    }

    #[test]
    fn plain_runs_end_at_the_first_byte_that_needs_attention() {
        // Neighbours of the bytes looked for, and bytes above 0x7f.
        let plain = [" ", "!", "#", "[", "]", "\u{7f}", "é", "a"];
        for special in ["\"", "\\", "\n", "\u{1f}", "\u{0}"] {
            for len in 0..24 {
                let prefix: String = plain.iter().cycle().take(len).copied().collect();
                let text = format!("{prefix}{special}\"\\");
                let mut scanner = Scanner::new(&text);
                scanner.skip_plain();
                assert_eq!(scanner.at, prefix.len(), "{text:?}");
            }
        }
    }

    /// serde_json still takes text it need not validate again; if this fails,
    /// kept values are validated twice (slower, still exact).
    #[test]
    fn kept_text_is_copied_without_a_second_validation() {
        let text = "{\"a\": [1, \"\\u00E5\"]}";
        let raw: Result<Box<RawValue>, GiveUp> = de::Deserialize::deserialize(Verbatim(text));
        assert_eq!(raw.ok().as_deref().map(RawValue::get), Some(text));
        let kept = Span(text).into_box().ok();
        assert_eq!(kept.as_deref().map(RawValue::get), Some(text));
    }

    #[test]
    fn gives_up_on_deep_nesting() {
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(span(&deep), None);
        let fine = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(span(&fine).is_some());
    }
}
