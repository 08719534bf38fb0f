//! Timestamps: .NET `DateTimeOffset`s as Voyado writes them, read tolerantly.

use time::{Date, Month, OffsetDateTime, Time, UtcOffset};

use super::number::split_digits;

/// Parses a .NET `DateTimeOffset` as Voyado writes it, tolerantly:
/// `YYYY-MM-DD`, then `T`, `t` or a space, `HH:MM:SS`, any number of fraction
/// digits (past nanoseconds truncated), and `Z`, `z`, `±HH:MM`, `±HHMM`, `±HH` or
/// nothing (UTC). The offset is kept.
pub(crate) fn parse_timestamp(text: &str) -> Option<OffsetDateTime> {
    let mut s = Cursor(text.as_bytes());
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

/// The value of an ASCII digit.
fn digit(byte: u8) -> Option<u32> {
    char::from(byte).to_digit(10)
}

/// A cursor over ASCII bytes for [`parse_timestamp`].
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
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
    use time::format_description::well_known::Rfc3339;

    use super::*;

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
}
