//! The tolerant primitives every field goes through.
//!
//! A field's value is first captured as raw JSON text ([`RawText`]) and then read by
//! plain Rust ([`Field::read`]). Working from the text keeps decimals exact without
//! serde_json's `arbitrary_precision` (and unaffected by it when another crate in
//! the build turns it on), and lets every error say what it found.

use std::borrow::Cow;
use std::fmt;

use rust_decimal::Decimal;
use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::SerializeMap;
use serde_json::value::RawValue;
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, Time, UtcOffset};

use crate::error::{ParseError, ParseErrorKind};
use crate::event::EventType;
use crate::raw::Extra;

pub(crate) mod scan;

/// The most characters of a bad value an error message quotes.
const FOUND_MAX_CHARS: usize = 60;

/// How deeply a kept value may nest: serde_json's own limit for what it parses.
/// Kept values are only scanned, never recursed into, but a payload nested deeper
/// is no payload Voyado sends, and would fail whoever parses it next.
pub(crate) const MAX_DEPTH: usize = 128;

/// Standard-alphabet base64, with or without padding: signing secrets are pasted
/// by people, and encrypted payloads come padded or not.
#[cfg(any(feature = "verify", feature = "decrypt"))]
pub(crate) const LENIENT_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

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
            found: shorten(raw),
        }
    }
}

/// A bad value as an error message quotes it: shortened if long, and on one line
/// (line breaks in JSON text are only ever whitespace).
pub(crate) fn shorten(raw: &str) -> String {
    let mut found: String = raw
        .chars()
        .take(FOUND_MAX_CHARS)
        .map(|c| if c.is_ascii_control() { ' ' } else { c })
        .collect();
    if found.len() < raw.len() {
        found.push('…');
    }
    found
}

/// Records what was read before a failure and the failure itself, so
/// `EventEnvelope::from_slice` can hand back a structured [`ParseError`] while a
/// generic `Deserialize` still gets a complete message.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    pub(crate) event_type: Option<EventType>,
    pub(crate) event_id: Option<String>,
    pub(crate) failure: Option<ParseError>,
}

impl Trace {
    /// Records a failure at `path` and returns it as the deserializer's error.
    pub(crate) fn fail<E: de::Error>(&mut self, path: String, kind: ParseErrorKind) -> E {
        let error =
            ParseError::new(kind, Some(path)).with_event(self.event_type.clone(), self.event_id.clone());
        let message = E::custom(&error);
        self.failure = Some(error);
        message
    }

    /// Reads `raw` as the value of `path`, recording a failure.
    #[inline]
    pub(crate) fn read<T: Field, E: de::Error>(
        &mut self,
        path: impl FnOnce() -> String,
        raw: &str,
    ) -> Result<T, E> {
        T::read(raw).map_err(|p| {
            let kind = ParseErrorKind::InvalidValue {
                expected: p.expected,
                found: p.found,
            };
            self.fail(path(), kind)
        })
    }

    /// Keeps a value of `path` as its JSON text, refusing one nested too deeply.
    pub(crate) fn keep<'de, R: RawText<'de>, E: de::Error>(
        &mut self,
        raw: R,
        path: impl FnOnce() -> String,
    ) -> Result<Box<RawValue>, E> {
        if !R::DEPTH_CHECKED && nesting(raw.text()) > MAX_DEPTH {
            let kind = ParseErrorKind::TooDeep { limit: MAX_DEPTH };
            return Err(self.fail(path(), kind));
        }
        raw.into_box().map_err(E::custom)
    }

    /// The value of a field that may be absent: its default, or a "missing" failure.
    #[inline]
    pub(crate) fn require<T: Field, E: de::Error>(
        &mut self,
        value: Option<T>,
        path: impl FnOnce() -> String,
    ) -> Result<T, E> {
        match value.or_else(T::absent) {
            Some(value) => Ok(value),
            None => Err(self.fail(path(), ParseErrorKind::MissingField)),
        }
    }
}

/// How a value's raw JSON text is captured: borrowed from the input where the
/// reader allows it (the fast path's [`scan::Span`], serde_json's `&RawValue`
/// under `from_slice` and `from_str`), owned otherwise.
pub(crate) trait RawText<'de>: Deserialize<'de> {
    /// Whether the reader already refused values nested past [`MAX_DEPTH`].
    const DEPTH_CHECKED: bool = false;
    /// The value's JSON text, exactly as received.
    fn text(&self) -> &str;
    /// The value, to keep.
    fn into_box(self) -> Result<Box<RawValue>, serde_json::Error>;
}

impl<'de> RawText<'de> for &'de RawValue {
    #[inline]
    fn text(&self) -> &str {
        self.get()
    }
    fn into_box(self) -> Result<Box<RawValue>, serde_json::Error> {
        Ok(self.to_owned())
    }
}

impl RawText<'_> for Box<RawValue> {
    #[inline]
    fn text(&self) -> &str {
        self.get()
    }
    fn into_box(self) -> Result<Box<RawValue>, serde_json::Error> {
        Ok(self)
    }
}

/// How deeply well-formed JSON text nests its arrays and objects.
fn nesting(json: &str) -> usize {
    if !json.starts_with(['[', '{']) {
        return 0;
    }
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for b in json.bytes() {
        match (in_string, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') | (false, _, b'"') => in_string = !in_string,
            (false, _, b'[' | b'{') => {
                depth = depth.saturating_add(1);
                deepest = deepest.max(depth);
            }
            (false, _, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// A map key, borrowed from the input when it holds no escapes.
pub(crate) enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }

    pub(crate) fn into_owned(self) -> String {
        match self {
            Key::Borrowed(s) => s.to_owned(),
            Key::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Whether a received key names a field: exactly, or ignoring ASCII case and `_`/`-`.
pub(crate) fn key_matches(key: &str, name: &str) -> bool {
    fn folded(s: &str) -> impl Iterator<Item = u8> + '_ {
        s.bytes()
            .filter(|b| !matches!(b, b'_' | b'-'))
            .map(|b| b.to_ascii_lowercase())
    }
    key == name || folded(key).eq(folded(name))
}

/// Finds which field a key not spelled as documented names, ignoring ASCII case
/// and `_`/`-` (see [`field_names!`]).
pub(crate) fn match_key<F: Copy>(key: &str, fields: &[(F, &[&str])]) -> Option<F> {
    fields
        .iter()
        .find(|(_, names)| names.iter().any(|name| key_matches(key, name)))
        .map(|(field, _)| *field)
}

/// Declares the fields an object is read into: an enum of them, the names each
/// is documented under (the first is the one written), and `of(key)`, which
/// finds the field a key names. A documented spelling is found by a `match`,
/// which is what the usual delivery pays for; any other by [`match_key`].
macro_rules! field_names {
    (enum $name:ident { $($field:ident = [$($spelling:literal),+],)* }) => {
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy)]
        enum $name { $($field),* }

        impl $name {
            const SPELLINGS: &[($name, &[&str])] = &[$(($name::$field, &[$($spelling),+])),*];

            #[inline]
            fn of(key: &str) -> Option<$name> {
                match key {
                    $( $($spelling)|+ => Some($name::$field), )*
                    other => $crate::de::match_key(other, Self::SPELLINGS),
                }
            }
        }
    };
}
pub(crate) use field_names;

/// One JSON value, as far as a scalar field cares.
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    Number(&'a str),
    String(Cow<'a, str>),
    /// An object or array: never a scalar.
    Composite,
}

impl<'a> Json<'a> {
    /// Classifies raw JSON text (as captured by serde_json or the fast path's
    /// scanner, so already well-formed).
    #[inline(always)]
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
                // A fold, not `contains`: on short strings (most of them) its
                // few vector instructions beat `memchr`'s setup.
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
    /// Reads the field from its raw JSON text.
    fn read(raw: &str) -> Result<Self, Problem>;
    /// The value when the field is absent, if it may be.
    fn absent() -> Option<Self>;
    /// Whether this value is an absent one (`None`): a later spelling of the
    /// field may then take its place.
    fn is_absent(&self) -> bool {
        false
    }
    /// Writes the field under `key`. An absent field is left out, unless `extra`
    /// holds a field that would be read in its place (one of `names`): it is then
    /// written as `null`, so reading the output back keeps that one in `extra`.
    fn write<M: SerializeMap>(
        &self,
        key: &'static str,
        names: &[&str],
        extra: &Extra,
        map: &mut M,
    ) -> Result<(), M::Error>;
}

/// A non-optional field type.
pub(crate) trait Scalar: Sized {
    /// What the field expects, for error messages.
    const EXPECTED: &'static str;
    /// Reads a non-null JSON value, or `None` if it has the wrong type or form.
    fn from_json(json: Json<'_>) -> Option<Self>;
    /// Writes the value in the wire form.
    fn write<M: SerializeMap>(&self, key: &'static str, map: &mut M) -> Result<(), M::Error>;
}

impl<T: Scalar> Field for T {
    #[inline]
    fn read(raw: &str) -> Result<Self, Problem> {
        match Json::classify(raw) {
            Json::Null => None,
            json => T::from_json(json),
        }
        .ok_or_else(|| Problem::new(T::EXPECTED, raw))
    }
    fn absent() -> Option<Self> {
        None
    }
    fn write<M: SerializeMap>(
        &self,
        key: &'static str,
        _: &[&str],
        _: &Extra,
        map: &mut M,
    ) -> Result<(), M::Error> {
        Scalar::write(self, key, map)
    }
}

/// Optional fields: absent, `null` and `""` are all `None`.
impl<T: Scalar> Field for Option<T> {
    #[inline]
    fn read(raw: &str) -> Result<Self, Problem> {
        match Json::classify(raw) {
            Json::Null => Ok(None),
            Json::String(s) if s.is_empty() => Ok(None),
            json => T::from_json(json)
                .map(Some)
                .ok_or_else(|| Problem::new(T::EXPECTED, raw)),
        }
    }
    fn absent() -> Option<Self> {
        Some(None)
    }
    fn is_absent(&self) -> bool {
        self.is_none()
    }
    fn write<M: SerializeMap>(
        &self,
        key: &'static str,
        names: &[&str],
        extra: &Extra,
        map: &mut M,
    ) -> Result<(), M::Error> {
        match self {
            Some(value) => Scalar::write(value, key, map),
            None if names.iter().any(|name| extra.has_field(name)) => map.serialize_entry(key, &()),
            None => Ok(()),
        }
    }
}

/// Strings also accept a JSON number, kept as its exact text.
impl Scalar for String {
    const EXPECTED: &'static str = "a string";
    fn from_json(json: Json<'_>) -> Option<Self> {
        match json {
            Json::String(s) => Some(s.into_owned()),
            Json::Number(n) => Some(n.to_owned()),
            _ => None,
        }
    }
    fn write<M: SerializeMap>(&self, key: &'static str, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry(key, self)
    }
}

/// Integers: a number or numeric string, integral floats (`42.0`, `4.2e1`) included.
impl Scalar for i64 {
    const EXPECTED: &'static str = "an integer";
    fn from_json(json: Json<'_>) -> Option<Self> {
        let text = match json {
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
    fn write<M: SerializeMap>(&self, key: &'static str, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry(key, self)
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
    fn write<M: SerializeMap>(&self, key: &'static str, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry(key, self)
    }
}

/// Decimals: a number or numeric string, exact in digits and scale.
impl Scalar for Decimal {
    const EXPECTED: &'static str = "a decimal number";
    fn from_json(json: Json<'_>) -> Option<Self> {
        match json {
            Json::Number(n) => parse_decimal(n),
            Json::String(s) => parse_decimal(trim(&s)),
            _ => None,
        }
    }
    fn write<M: SerializeMap>(&self, key: &'static str, map: &mut M) -> Result<(), M::Error> {
        // A JSON number with exactly these digits: serde_json's own numbers would
        // go through f64 and lose them.
        let number = RawValue::from_string(self.to_string()).map_err(serde::ser::Error::custom)?;
        map.serialize_entry(key, &number)
    }
}

/// Timestamps: see [`parse_timestamp`]; written as RFC 3339 with their offset.
impl Scalar for OffsetDateTime {
    const EXPECTED: &'static str = "an ISO 8601 timestamp";
    fn from_json(json: Json<'_>) -> Option<Self> {
        match json {
            Json::String(s) => parse_timestamp(trim(&s)),
            _ => None,
        }
    }
    fn write<M: SerializeMap>(&self, key: &'static str, map: &mut M) -> Result<(), M::Error> {
        let text = self.format(&Rfc3339).map_err(serde::ser::Error::custom)?;
        map.serialize_entry(key, &text)
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
    fn write<M: SerializeMap>(&self, key: &'static str, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry(key, self)
    }
}

/// `str::trim`, at no cost for text that starts and ends with a visible ASCII
/// character (nearly all of it).
#[inline]
fn trim(text: &str) -> &str {
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

/// An integer written as plain digits (`-` allowed) that surely fits an `i64`
/// (up to 18 digits); `None` for anything else, left to [`parse_decimal`].
#[inline]
fn parse_integer(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes() {
        [b'-', digits @ ..] => (true, digits),
        digits => (false, digits),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude = digits.iter().fold(0i64, |value, &b| {
        value
            .wrapping_mul(10)
            .wrapping_add(i64::from(b.wrapping_sub(b'0')))
    });
    Some(if negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    })
}

/// Parses a JSON-style number exactly: `-12.340`, `1.5e-3`, `2E2`. `None` if it is
/// not such a number or does not fit a [`Decimal`] without rounding.
pub(crate) fn parse_decimal(text: &str) -> Option<Decimal> {
    let (negative, unsigned) = match text.as_bytes() {
        [b'-', unsigned @ ..] => (true, unsigned),
        unsigned => (false, unsigned),
    };
    let (int, rest) = split_digits(unsigned);
    let (frac, rest) = match rest {
        [b'.', rest @ ..] => match split_digits(rest) {
            ([], _) => return None,
            found => found,
        },
        rest => (&[][..], rest),
    };
    if int.is_empty() {
        return None;
    }
    let exponent: i64 = match rest {
        [] => 0,
        [b'e' | b'E', exponent @ ..] => {
            let (negative, unsigned) = match exponent {
                [b'-', unsigned @ ..] => (true, unsigned),
                [b'+', unsigned @ ..] => (false, unsigned),
                unsigned => (false, unsigned),
            };
            let (exponent, rest) = split_digits(unsigned);
            if exponent.is_empty() || !rest.is_empty() {
                return None;
            }
            let mut value = 0i64;
            for &b in exponent {
                value = value
                    .checked_mul(10)?
                    .checked_add(i64::from(b.wrapping_sub(b'0')))?;
            }
            if negative { value.wrapping_neg() } else { value }
        }
        _ => return None,
    };
    // The value is digits × 10^-scale; every digit is kept, and what a Decimal
    // cannot hold (over 2^96 - 1, or a scale over 28) is refused, never rounded.
    // No sum below overflows, so none needs a check per digit: any 19 digits fit
    // 64 bits (the usual case), and 29 significant ones (as many as 2^96 - 1
    // has) fit 128.
    let mut digits: i128 = if int.len().saturating_add(frac.len()) <= 19 {
        let sum = |sum: u64, &b: &u8| sum.wrapping_mul(10).wrapping_add(u64::from(b.wrapping_sub(b'0')));
        i128::from(frac.iter().fold(int.iter().fold(0, sum), sum))
    } else {
        let mut digits = 0i128;
        let mut significant = 0usize;
        for &b in int.iter().chain(frac) {
            let digit = b.wrapping_sub(b'0');
            significant = significant.saturating_add(usize::from(digits != 0 || digit != 0));
            if significant > 29 {
                return None;
            }
            digits = digits.wrapping_mul(10).wrapping_add(i128::from(digit));
        }
        digits
    };
    let mut scale = i64::try_from(frac.len()).ok()?.checked_sub(exponent)?;
    if scale < 0 {
        // At most 29 digits fit, so a longer shift of anything but zero overflows.
        if digits != 0 {
            let shift = u32::try_from(scale.unsigned_abs()).ok().filter(|&s| s <= 29)?;
            digits = digits.checked_mul(10i128.checked_pow(shift)?)?;
        }
        scale = 0;
    }
    let mut value = Decimal::try_from_i128_with_scale(digits, u32::try_from(scale).ok()?).ok()?;
    value.set_sign_negative(negative);
    Some(value)
}

/// Parses a .NET `DateTimeOffset` as Voyado writes it, tolerantly:
/// `YYYY-MM-DD`, then `T`, `t` or a space, `HH:MM:SS`, any number of fraction
/// digits (past nanoseconds truncated), and `Z`, `z`, `±HH:MM`, `±HHMM`, `±HH` or
/// nothing (UTC). The offset is kept.
pub(crate) fn parse_timestamp(text: &str) -> Option<OffsetDateTime> {
    let mut s = Scanner(text.as_bytes());
    let year = s.number(4)?;
    s.byte(b"-")?;
    let month = Month::try_from(u8::try_from(s.number(2)?).ok()?).ok()?;
    s.byte(b"-")?;
    let day = u8::try_from(s.number(2)?).ok()?;
    s.byte(b"Tt ")?;
    let hour = u8::try_from(s.number(2)?).ok()?;
    s.byte(b":")?;
    let minute = u8::try_from(s.number(2)?).ok()?;
    s.byte(b":")?;
    let second = u8::try_from(s.number(2)?).ok()?;
    let mut nanosecond = 0u32;
    if s.byte(b".").is_some() {
        let digits = s.digits();
        if digits.is_empty() {
            return None;
        }
        for place in 0..9 {
            let digit = digits.get(place).map_or(Some(0), |&d| digit(d))?;
            nanosecond = nanosecond.checked_mul(10)?.checked_add(digit)?;
        }
    }
    let offset = match s.0.first() {
        None => UtcOffset::UTC,
        Some(b'Z' | b'z') => {
            s.0 = s.0.get(1..)?;
            UtcOffset::UTC
        }
        Some(sign @ (b'+' | b'-')) => {
            let negative = *sign == b'-';
            s.0 = s.0.get(1..)?;
            // RFC 3339's range (`time` would take up to 25 hours).
            let hours = i8::try_from(s.number(2)?).ok().filter(|&h| h <= 23)?;
            let minutes = if s.0.is_empty() {
                0
            } else {
                let _ = s.byte(b":");
                i8::try_from(s.number(2)?).ok()?
            };
            let (hours, minutes) = if negative {
                (hours.checked_neg()?, minutes.checked_neg()?)
            } else {
                (hours, minutes)
            };
            UtcOffset::from_hms(hours, minutes, 0).ok()?
        }
        Some(_) => return None,
    };
    if !s.0.is_empty() {
        return None;
    }
    let date = Date::from_calendar_date(i32::try_from(year).ok()?, month, day).ok()?;
    let time = Time::from_hms_nano(hour, minute, second, nanosecond).ok()?;
    Some(date.with_time(time).assume_offset(offset))
}

/// Splits off the leading ASCII digits.
fn split_digits(bytes: &[u8]) -> (&[u8], &[u8]) {
    let end = bytes
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(bytes.len());
    bytes.split_at(end)
}

/// The value of an ASCII digit.
fn digit(byte: u8) -> Option<u32> {
    char::from(byte).to_digit(10)
}

/// A cursor over ASCII bytes for [`parse_timestamp`].
struct Scanner<'a>(&'a [u8]);

impl Scanner<'_> {
    /// Consumes one byte if it is one of `allowed`.
    fn byte(&mut self, allowed: &[u8]) -> Option<()> {
        let (first, rest) = self.0.split_first()?;
        allowed.contains(first).then(|| self.0 = rest)
    }

    /// Consumes exactly `count` ASCII digits and returns their value.
    fn number(&mut self, count: usize) -> Option<u32> {
        let (digits, rest) = self.0.split_at_checked(count)?;
        let mut value = 0u32;
        for &d in digits {
            value = value.checked_mul(10)?.checked_add(digit(d)?)?;
        }
        self.0 = rest;
        Some(value)
    }

    /// Consumes every leading ASCII digit.
    fn digits(&mut self) -> &[u8] {
        let (digits, rest) = split_digits(self.0);
        self.0 = rest;
        digits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decimal(text: &str) -> Option<String> {
        parse_decimal(text).map(|d| d.to_string())
    }

    #[test]
    fn decimals_keep_digits_and_scale() {
        assert_eq!(decimal("100.10").as_deref(), Some("100.10"));
        assert_eq!(decimal("250.0000").as_deref(), Some("250.0000"));
        assert_eq!(decimal("-0.5").as_deref(), Some("-0.5"));
        assert_eq!(decimal("122").as_deref(), Some("122"));
        assert_eq!(
            decimal("1234567890123456.789012345678").as_deref(),
            Some("1234567890123456.789012345678")
        );
        assert_eq!(decimal("1.5e-3").as_deref(), Some("0.0015"));
        assert_eq!(decimal("1.50E2").as_deref(), Some("150"));
        assert_eq!(decimal("2e+2").as_deref(), Some("200"));
        assert_eq!(decimal("-0.0").as_deref(), Some("-0.0"));
        // Exact whatever the text's own scale: zero shifts any distance, and a
        // scale above 28 is fine once the exponent brings it back.
        assert_eq!(decimal("0e30").as_deref(), Some("0"));
        assert_eq!(
            decimal("0.00000000000000000000000000000e1").as_deref(),
            Some("0.0000000000000000000000000000")
        );
        assert_eq!(decimal("1.00000000000000000000000000000e1").as_deref(), None);
        assert_eq!(
            decimal("1.0000000000000000000000000000e28").as_deref(),
            Some("10000000000000000000000000000")
        );
        assert_eq!(parse_decimal("79228162514264337593543950335"), Some(Decimal::MAX));
        assert_eq!(decimal("79228162514264337593543950336"), None);
    }

    #[test]
    fn decimals_that_would_round_or_are_not_numbers_are_refused() {
        for bad in [
            "",
            "-",
            "1.",
            ".5",
            "1_000",
            "+1",
            "1e",
            "1e+",
            "abc",
            "1.2.3",
            "0x10",
            " 1",
            // 30 significant digits: a Decimal would have to round.
            "1.23456789012345678901234567890",
            "1e400",
            "1e-400",
            "99999999999999999999999999999999",
        ] {
            assert_eq!(decimal(bad), None, "{bad:?}");
        }
    }

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
        assert_eq!(found.chars().count(), FOUND_MAX_CHARS + 1);
        assert!(found.ends_with('…'));
    }

    fn timestamp(text: &str) -> Option<String> {
        parse_timestamp(text).and_then(|t| t.format(&Rfc3339).ok())
    }

    #[test]
    fn timestamps_take_every_documented_form() {
        let cases = [
            ("2022-01-11T15:17:00+01:00", "2022-01-11T15:17:00+01:00"),
            ("2023-02-08T12:15:59.212Z", "2023-02-08T12:15:59.212Z"),
            (
                "2024-05-13T10:12:33.1234567+02:00",
                "2024-05-13T10:12:33.1234567+02:00",
            ),
            ("2024-05-13t10:12:33z", "2024-05-13T10:12:33Z"),
            ("2024-05-13 10:12:33", "2024-05-13T10:12:33Z"),
            ("2024-05-13T10:12:33-0530", "2024-05-13T10:12:33-05:30"),
            ("2024-05-13T10:12:33+02", "2024-05-13T10:12:33+02:00"),
            (
                "2024-05-13T10:12:33.123456789123-00:00",
                "2024-05-13T10:12:33.123456789Z",
            ),
            ("2024-05-13T10:12:33.5", "2024-05-13T10:12:33.5Z"),
        ];
        for (input, expected) in cases {
            assert_eq!(timestamp(input).as_deref(), Some(expected), "{input}");
        }
        let kept = parse_timestamp("2022-01-11T15:17:00+01:00").map(|t| t.offset());
        assert_eq!(kept, UtcOffset::from_hms(1, 0, 0).ok());
    }

    #[test]
    fn malformed_timestamps_are_refused() {
        for bad in [
            "",
            "2024",
            "2024-05-13",
            "2024-13-01T00:00:00Z",
            "2024-02-30T00:00:00Z",
            "2024-05-13T25:00:00Z",
            "2024-05-13X10:12:33Z",
            "2024-05-13T10:12:33.Z",
            "2024-05-13T10:12:33+2",
            "2024-05-13T10:12:33+24:00",
            "2024-05-13T10:12:33Zjunk",
            "2024-05-13T10:12",
            "２０２４-05-13T10:12:33Z",
            "2024-05-13T10:12:33+01:",
        ] {
            assert_eq!(timestamp(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn nesting_counts_brackets_outside_strings() {
        assert_eq!(nesting("1"), 0);
        assert_eq!(nesting("\"[[[\""), 0);
        assert_eq!(nesting("[]"), 1);
        assert_eq!(nesting(r#"{"a": [{"b": "]]]\\"}, [[]]]}"#), 4);
        assert_eq!(nesting(r#"["\"[", {"x": "\\\"{"}]"#), 2);
    }

    #[test]
    fn keys_match_ignoring_case_and_separators() {
        assert!(key_matches("contactId", "contactId"));
        assert!(key_matches("ContactId", "contactId"));
        assert!(key_matches("contact_id", "contactId"));
        assert!(key_matches("CONTACT-ID", "contactId"));
        assert!(!key_matches("contactIds", "contactId"));
        assert!(!key_matches("contact", "contactId"));
        let fields: &[(u8, &[&str])] = &[(0, &["id", "eventId"]), (1, &["tenant"])];
        assert_eq!(match_key("event_id", fields), Some(0));
        assert_eq!(match_key("Tenant", fields), Some(1));
        assert_eq!(match_key("other", fields), None);
    }
}
