//! Reading one field's value from its raw JSON text, tolerantly: the value forms
//! each field type takes.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use rust_decimal::Decimal;
use serde::de::{self, DeserializeSeed, Deserializer, Visitor};
use time::OffsetDateTime;

use super::number::{parse_decimal, parse_integer};
use super::timestamp::parse_timestamp;
use crate::event_type::EventType;
use crate::text::quote;

/// What was wrong with one value: what the field expects, and what it got.
#[derive(Debug)]
pub(crate) struct Problem {
    pub(crate) expected: &'static str,
    pub(crate) found: String,
}

impl Problem {
    fn new(expected: &'static str, raw: &str) -> Self {
        Problem {
            expected,
            found: quote(raw),
        }
    }
}

/// One JSON value, as far as a scalar field cares: classified from its raw text
/// ([`Json::classify`]) or handed over by a deserializer ([`Visit`]).
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    /// A number's text, exactly as received.
    Number(&'a str),
    /// An integer a deserializer read: its text is the number's own digits.
    Integer(i128),
    String(Cow<'a, str>),
    /// An object or array: never a scalar.
    Composite,
}

impl<'a> Json<'a> {
    /// Classifies raw JSON text (as captured by serde_json, so well-formed).
    fn classify(raw: &'a str) -> Json<'a> {
        match raw.as_bytes().first() {
            Some(b'n') => Json::Null,
            Some(b't') => Json::Bool(true),
            Some(b'f') => Json::Bool(false),
            Some(b'{' | b'[') | None => Json::Composite,
            Some(b'"') => {
                let inner = raw
                    .strip_prefix('"')
                    .and_then(|s| s.strip_suffix('"'))
                    .unwrap_or_default();
                // A fold, not `contains`: on short strings (most of them) its few
                // vector instructions beat `memchr`'s setup (about 400 instructions
                // a delivery, measured with callgrind).
                if inner.bytes().fold(false, |found, b| found | (b == b'\\')) {
                    // Escapes: let serde_json undo them (rare, so a second look is fine).
                    match serde_json::from_str::<String>(raw) {
                        Ok(s) => Json::String(Cow::Owned(s)),
                        Err(_) => Json::Composite,
                    }
                } else {
                    Json::String(Cow::Borrowed(inner))
                }
            }
            Some(_) => Json::Number(raw),
        }
    }
}

/// A type a field can have: a scalar, or an `Option` of one.
pub(crate) trait Field: Sized {
    /// What the field expects, for error messages.
    const EXPECTED: &'static str;
    /// Whether the field is always read from its text, never from a value a
    /// deserializer made (a decimal: serde_json would make a fraction an `f64`).
    const FROM_TEXT: bool;
    /// Reads the field from a JSON value, or `None` if it has the wrong type or form.
    fn from_json(json: Json<'_>) -> Option<Self>;
    /// [`Field::from_json`] of a JSON string, in a form the compiler inlines
    /// for string fields (most of a delivery's): returning a `String` through
    /// `from_json`'s call cost a stall on every one of them.
    fn from_string(s: Cow<'_, str>) -> Option<Self>;
    /// The value when the field is absent, if it may be.
    fn absent() -> Option<Self>;
    /// Whether this value is an absent one (`None`): a later spelling of the
    /// field may then take its place.
    fn is_absent(&self) -> bool {
        false
    }
    /// Reads the field from its raw JSON text.
    fn read(raw: &str) -> Result<Self, Problem> {
        Self::from_json(Json::classify(raw)).ok_or_else(|| Problem::new(Self::EXPECTED, raw))
    }
}

/// A non-optional field type.
pub(crate) trait Scalar: Sized {
    /// What the field expects, for error messages.
    const EXPECTED: &'static str;
    /// See [`Field::FROM_TEXT`].
    const FROM_TEXT: bool = false;
    /// Reads a non-null JSON value, or `None` if it has the wrong type or form.
    fn from_json(json: Json<'_>) -> Option<Self>;
    /// [`Scalar::from_json`] of a JSON string (see [`Field::from_string`]).
    fn from_string(s: Cow<'_, str>) -> Option<Self> {
        Self::from_json(Json::String(s))
    }
}

impl<T: Scalar> Field for T {
    const EXPECTED: &'static str = T::EXPECTED;
    const FROM_TEXT: bool = T::FROM_TEXT;
    fn from_json(json: Json<'_>) -> Option<Self> {
        match json {
            Json::Null => None,
            json => T::from_json(json),
        }
    }
    #[inline]
    fn from_string(s: Cow<'_, str>) -> Option<Self> {
        T::from_string(s)
    }
    fn absent() -> Option<Self> {
        None
    }
}

/// Optional fields: absent, `null` and `""` are all `None`.
impl<T: Scalar> Field for Option<T> {
    const EXPECTED: &'static str = T::EXPECTED;
    const FROM_TEXT: bool = T::FROM_TEXT;
    fn from_json(json: Json<'_>) -> Option<Self> {
        match json {
            Json::Null => Some(None),
            Json::String(s) if s.is_empty() => Some(None),
            json => T::from_json(json).map(Some),
        }
    }
    #[inline]
    fn from_string(s: Cow<'_, str>) -> Option<Self> {
        if s.is_empty() {
            Some(None)
        } else {
            T::from_string(s).map(Some)
        }
    }
    fn absent() -> Option<Self> {
        Some(None)
    }
    fn is_absent(&self) -> bool {
        self.is_none()
    }
}

/// Reads a field straight from a deserializer's value, for the forms that read
/// the same from the value as from its text: a string, a boolean, `null`, an
/// integer. Anything else (a fraction or exponent, which serde_json makes an
/// `f64`; an object or array; a value of the wrong form) is an error, and the
/// caller reads the body again from its text ([`Field::read`]), which says what
/// was wrong.
pub(crate) struct Visit<T>(PhantomData<fn() -> T>);

impl<T> Visit<T> {
    pub(crate) fn new() -> Self {
        Visit(PhantomData)
    }
}

impl<'de, T: Field> DeserializeSeed<'de> for Visit<T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<T: Field> Visit<T> {
    fn read<E: de::Error>(json: Json<'_>) -> Result<T, E> {
        Self::found(T::from_json(json))
    }

    fn found<E: de::Error>(value: Option<T>) -> Result<T, E> {
        value.ok_or_else(|| E::custom(T::EXPECTED))
    }
}

impl<'de, T: Field> Visitor<'de> for Visit<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTED)
    }

    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        Self::read(Json::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
        Self::read(Json::Bool(v))
    }

    // serde_json reads `-0` as a float, so an integer's text is its digits.
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        Self::read(Json::Integer(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Self::read(Json::Integer(v.into()))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<T, E> {
        Self::found(T::from_string(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        Self::found(T::from_string(Cow::Owned(v.to_owned())))
    }
}

/// Strings also accept a JSON number, kept as its exact text.
impl Scalar for String {
    const EXPECTED: &'static str = "a string";
    fn from_json(json: Json<'_>) -> Option<Self> {
        match json {
            Json::String(s) => Some(s.into_owned()),
            Json::Number(n) => Some(n.to_owned()),
            Json::Integer(n) => Some(n.to_string()),
            _ => None,
        }
    }
    #[inline]
    fn from_string(s: Cow<'_, str>) -> Option<Self> {
        Some(s.into_owned())
    }
}

/// Integers: a number or numeric string, integral floats (`42.0`, `4.2e1`) included.
impl Scalar for i64 {
    const EXPECTED: &'static str = "an integer";
    // `4712.0` is an integer, which serde_json would make an `f64`.
    const FROM_TEXT: bool = true;
    fn from_json(json: Json<'_>) -> Option<Self> {
        let text = match json {
            Json::Integer(n) => return i64::try_from(n).ok(),
            Json::Number(n) => n,
            Json::String(ref s) => trim(s),
            _ => return None,
        };
        // Plain digits, the usual form, are read directly; `42.0` and `4.2e1` as
        // decimals.
        if let Some(integer) = parse_integer(text) {
            return Some(integer);
        }
        let decimal = parse_decimal(text)?;
        if decimal.fract().is_zero() {
            i64::try_from(decimal).ok()
        } else {
            None
        }
    }
}

/// Booleans: `true`/`false`, or those words as a string.
impl Scalar for bool {
    const EXPECTED: &'static str = "a boolean";
    fn from_json(json: Json<'_>) -> Option<Self> {
        match json {
            Json::Bool(b) => Some(b),
            Json::String(s) if trim(&s).eq_ignore_ascii_case("true") => Some(true),
            Json::String(s) if trim(&s).eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }
}

/// Decimals: a number or numeric string, exact in digits and scale.
impl Scalar for Decimal {
    const EXPECTED: &'static str = "a decimal number";
    const FROM_TEXT: bool = true;
    fn from_json(json: Json<'_>) -> Option<Self> {
        match json {
            Json::Number(n) => parse_decimal(n),
            Json::Integer(n) => Decimal::try_from_i128_with_scale(n, 0).ok(),
            Json::String(s) => parse_decimal(trim(&s)),
            _ => None,
        }
    }
}

/// Timestamps: see [`parse_timestamp`].
impl Scalar for OffsetDateTime {
    const EXPECTED: &'static str = "an ISO 8601 timestamp";
    // Inlined: the timestamp it returned through memory was copied out with
    // wide loads that stalled on its narrow stores.
    #[inline]
    fn from_json(json: Json<'_>) -> Option<Self> {
        match json {
            Json::String(s) => parse_timestamp(trim(&s)),
            _ => None,
        }
    }
}

impl Scalar for EventType {
    const EXPECTED: &'static str = "an event type name";
    fn from_json(json: Json<'_>) -> Option<Self> {
        match json {
            Json::String(s) if !trim(&s).is_empty() => Some(EventType::from(trim(&s))),
            _ => None,
        }
    }
}

/// `str::trim`, at no cost for text that starts and ends with a visible ASCII
/// character (nearly all of it).
fn trim(text: &str) -> &str {
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_accept_numbers_strings_and_integral_floats() {
        let int = |raw: &str| i64::read(raw).ok();
        assert_eq!(int("42"), Some(42));
        assert_eq!(int("\"42\""), Some(42));
        assert_eq!(int("42.0"), Some(42));
        assert_eq!(int("4.2e1"), Some(42));
        assert_eq!(int("-7"), Some(-7));
        assert_eq!(int("42.5"), None);
        assert_eq!(int("9223372036854775808"), None);
        assert_eq!(int("true"), None);
        let problem = i64::read("\"4x\"").err();
        assert_eq!(
            problem.map(|p| (p.expected, p.found)),
            Some(("an integer", "\"4x\"".into()))
        );
    }

    #[test]
    fn optional_fields_treat_null_and_empty_as_none() {
        assert_eq!(Option::<String>::read("null").ok(), Some(None));
        assert_eq!(Option::<String>::read("\"\"").ok(), Some(None));
        assert_eq!(Option::<i64>::read("\"\"").ok(), Some(None));
        assert_eq!(Option::<String>::absent(), Some(None));
        assert!(String::absent().is_none());
        assert!(String::read("null").is_err());
    }

    #[test]
    fn strings_accept_numbers_as_their_text_and_undo_escapes() {
        assert_eq!(String::read("1").ok().as_deref(), Some("1"));
        assert_eq!(String::read("1.50").ok().as_deref(), Some("1.50"));
        assert_eq!(String::read(r#""a\"b\u00e9""#).ok().as_deref(), Some("a\"bé"));
        assert!(String::read("{}").is_err());
        assert!(String::read("true").is_err());
    }

    #[test]
    fn strings_read_the_same_through_either_door() {
        fn same<T: Field + PartialEq + fmt::Debug>(text: &str) {
            let json = T::from_json(Json::String(Cow::Borrowed(text)));
            assert_eq!(T::from_string(Cow::Borrowed(text)), json, "{text:?}");
        }
        for text in [
            "",
            " ",
            "a",
            "true",
            " FALSE ",
            "42",
            "4.2e1",
            "1.50",
            "2024-05-13T10:00:00Z",
            "xå",
        ] {
            same::<String>(text);
            same::<Option<String>>(text);
            same::<bool>(text);
            same::<Option<bool>>(text);
            same::<i64>(text);
            same::<Option<Decimal>>(text);
            same::<Option<OffsetDateTime>>(text);
            same::<EventType>(text);
        }
    }

    #[test]
    fn booleans_accept_strings() {
        assert_eq!(bool::read("true").ok(), Some(true));
        assert_eq!(bool::read("\"false\"").ok(), Some(false));
        assert_eq!(bool::read("\"TRUE\"").ok(), Some(true));
        assert!(bool::read("1").is_err());
    }

    #[test]
    fn long_bad_values_are_quoted_shortened() {
        let raw = format!("\"{}\"", "x".repeat(500));
        let found = bool::read(&raw).err().map(|p| p.found).unwrap_or_default();
        assert_eq!(found.chars().count(), crate::text::QUOTE_MAX_CHARS + 1);
        assert!(found.ends_with('…'));
    }
}
