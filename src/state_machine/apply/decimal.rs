//! Exact decimal addition for `INCRBYFLOAT`/`HINCRBYFLOAT`.
//!
//! Redis adds in `long double` and prints 17 decimals with trailing zeros trimmed, so
//! `0.1 + 0.2` is `0.3` there, while `f64` gives `0.30000000000000004`. When both operands
//! are decimals with at most [`SCALE_MAX`] fractional digits, their exact sum is what Redis
//! prints for results of moderate size; otherwise the caller falls back to `f64`.

/// Most fractional digits kept (Redis prints `%.17Lf`).
const SCALE_MAX: u32 = 17;

/// A decimal `mantissa * 10^-scale`.
type Decimal = (i128, u32);

/// Parses `[-+]digits[.digits][e[-+]digits]` exactly, or `None`.
fn parse(text: &str) -> Option<Decimal> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'-' => (-1, &text[1..]),
        b'+' => (1, &text[1..]),
        _ => (1, text),
    };
    let (number, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut mantissa: i128 = 0;
    for byte in whole.bytes().chain(fraction.bytes()) {
        if !byte.is_ascii_digit() {
            return None;
        }
        mantissa = mantissa.checked_mul(10)?.checked_add(i128::from(byte - b'0'))?;
    }
    let mut scale = i32::try_from(fraction.len()).ok()?.checked_sub(exponent)?;
    while scale < 0 {
        mantissa = mantissa.checked_mul(10)?;
        scale += 1;
    }
    let scale = u32::try_from(scale).ok()?;
    (scale <= SCALE_MAX).then_some((sign * mantissa, scale))
}

/// The exact sum of two decimal texts as Redis prints it, or `None` when either is not a
/// short decimal (or the sum overflows).
#[must_use]
pub fn add(current: &str, delta: &str) -> Option<Vec<u8>> {
    let ((a, a_scale), (b, b_scale)) = (parse(current)?, parse(delta)?);
    let scale = a_scale.max(b_scale);
    let a = a.checked_mul(10_i128.checked_pow(scale - a_scale)?)?;
    let b = b.checked_mul(10_i128.checked_pow(scale - b_scale)?)?;
    Some(format(a.checked_add(b)?, scale))
}

fn format(mantissa: i128, scale: u32) -> Vec<u8> {
    let digits = mantissa.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded =
        if digits.len() <= scale { "0".repeat(scale + 1 - digits.len()) + &digits } else { digits };
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    let fraction = fraction.trim_end_matches('0');
    let mut text = String::new();
    if mantissa < 0 && (whole != "0" || !fraction.is_empty()) {
        text.push('-');
    }
    text.push_str(whole);
    if !fraction.is_empty() {
        text.push('.');
        text.push_str(fraction);
    }
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::add;

    fn sum(a: &str, b: &str) -> Option<String> {
        add(a, b).map(|bytes| String::from_utf8(bytes).unwrap())
    }

    #[test]
    fn decimal_sums_print_like_redis() {
        assert_eq!(sum("0.1", "0.2").as_deref(), Some("0.3"));
        assert_eq!(sum("10.50", "0.1").as_deref(), Some("10.6"));
        assert_eq!(sum("5.0e3", "2.0e2").as_deref(), Some("5200"));
        assert_eq!(sum("-1", "1").as_deref(), Some("0"));
        assert_eq!(sum("-0.5", "0.25").as_deref(), Some("-0.25"));
        assert_eq!(sum("3", "-10").as_deref(), Some("-7"));
        assert_eq!(sum("0", "0.000001").as_deref(), Some("0.000001"));
        assert_eq!(sum("1e-18", "1"), None, "more than 17 decimals");
        assert_eq!(sum("inf", "1"), None);
        assert_eq!(sum("abc", "1"), None);
        assert_eq!(sum(".5", "5.").as_deref(), Some("5.5"));
        assert_eq!(sum(".", "1"), None);
    }
}
