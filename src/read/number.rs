//! Numbers read exactly from their JSON text: integers and decimals, never
//! through a float.

use rust_decimal::Decimal;

/// An integer written as plain digits (`-` allowed) that surely fits an `i64`
/// (up to 18 digits); `None` for anything else, left to [`parse_decimal`].
pub(crate) fn parse_integer(text: &str) -> Option<i64> {
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

/// Splits off the leading ASCII digits.
pub(crate) fn split_digits(bytes: &[u8]) -> (&[u8], &[u8]) {
    let end = bytes
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(bytes.len());
    bytes.split_at(end)
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
}
