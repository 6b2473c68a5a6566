//! Exact decimal → PostgreSQL `numeric` binary encoding.
//!
//! Every input (Arrow decimals, integers, decimal text, floats via their shortest round-trip
//! decimal text) is brought to the same form — a sign, a run of decimal digits and a decimal
//! scale — and never passes through `f64`. From there [`write_numeric`] checks that the value
//! fits the target exactly — only fractional zeros may be dropped to reach the column's scale,
//! nothing is ever rounded — checks the precision and writes the base-10000 wire format:
//!
//! ```text
//! ndigits i16 | weight i16 | sign u16 | dscale u16 | ndigits × digit i16 (0..=9999)
//! ```
//!
//! `weight` is the power of 10000 of the first digit; `dscale` the number of decimal digits
//! after the point that PostgreSQL displays.
//!
//! `NaN` and `±Infinity` (as text, or from float columns) are refused for every `numeric`
//! column: PostgreSQL would take `NaN` even in `numeric(5,2)`, but it is not an amount, and
//! arithmetic in the marts would silently propagate it.

use bytes::{BufMut, BytesMut};

const SIGN_POS: u16 = 0x0000;
const SIGN_NEG: u16 = 0x4000;

/// Largest display scale the binary format carries (`NUMERIC_DSCALE_MASK`).
const MAX_DSCALE: i64 = 0x3FFF;

/// Largest digit count `numeric_recv` accepts (`NUMERIC_MAX_PRECISION + NUMERIC_MAX_RESULT_SCALE`
/// in PostgreSQL's numeric.c).
const MAX_NDIGITS: i64 = 3000;

/// `u128::MAX` has 39 decimal digits; one spare slot is kept for symmetry with the text path.
pub(super) const U128_DIGITS: usize = 40;

/// The target column's `numeric` type modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NumericTarget {
    /// `None` for an unconstrained `numeric`.
    pub precision: Option<u32>,
    /// `None` keeps each value's own scale (unconstrained `numeric`).
    pub scale: Option<u32>,
}

impl NumericTarget {
    /// From `PgType::Numeric`: without a precision the column is unconstrained and its scale
    /// is ignored.
    pub fn new(precision: Option<u32>, scale: u32) -> Self {
        NumericTarget {
            precision,
            scale: precision.map(|_| scale),
        }
    }
}

/// Why a value does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NumericError {
    /// More integer digits than `precision - scale`.
    Overflow,
    /// Non-zero digits beyond the column's scale: storing it would round.
    Inexact,
    /// `NaN`, `Infinity` or `-Infinity`.
    NotFinite,
    /// Beyond what the binary format can carry (weight, digit count or display scale).
    OutOfRange,
    /// Text that is not a number.
    Invalid,
}

/// A parsed decimal text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ParsedDecimal {
    /// The digits were written to the caller's buffer; value = ± digits × 10^-scale.
    Finite {
        negative: bool,
        scale: i64,
    },
    NaN,
    PosInf,
    NegInf,
}

/// Write the decimal digits (values 0..=9, most significant first) of `m` at the end of
/// `buf`; returns the start index. Zero yields an empty run.
pub(super) fn u128_digits(m: u128, buf: &mut [u8; U128_DIGITS]) -> usize {
    let mut i = U128_DIGITS;
    // The u64 loop is several times faster than u128 division, and covers every decimal of
    // precision ≤ 19 — the common case.
    if let Ok(mut small) = u64::try_from(m) {
        while small > 0 {
            i -= 1;
            buf[i] = (small % 10) as u8;
            small /= 10;
        }
    } else {
        let mut big = m;
        while big > 0 {
            i -= 1;
            buf[i] = (big % 10) as u8;
            big /= 10;
        }
    }
    i
}

/// Write one complete COPY field (length prefix included) for ± `m` × 10^-`scale`.
pub(super) fn write_u128(
    out: &mut BytesMut,
    negative: bool,
    m: u128,
    scale: i64,
    target: NumericTarget,
) -> Result<(), NumericError> {
    let mut buf = [0u8; U128_DIGITS];
    let start = u128_digits(m, &mut buf);
    write_numeric(out, negative, &buf[start..], scale, target)
}

/// Write one complete COPY field (length prefix included) for ± `digits` × 10^-`scale`.
///
/// `digits` are decimal digit values (0..=9), most significant first, leading zeros allowed.
/// `scale` may be negative (trailing zeros implied). Refuses, rather than rounds, a value with
/// non-zero digits beyond the target's scale.
pub(super) fn write_numeric(
    out: &mut BytesMut,
    negative: bool,
    digits: &[u8],
    scale: i64,
    target: NumericTarget,
) -> Result<(), NumericError> {
    let first_nonzero = digits.iter().position(|&d| d != 0).unwrap_or(digits.len());
    let digits = &digits[first_nonzero..];
    let dscale = match target.scale {
        Some(s) => i64::from(s),
        None => scale.max(0),
    };
    if dscale > MAX_DSCALE {
        return Err(NumericError::OutOfRange);
    }
    let (digits, scale) = strip_trailing_zeros(digits, scale);
    if digits.is_empty() {
        // Zero: PostgreSQL keeps no digits and a positive sign, even for "-0.000".
        put_head(out, 0, 0, SIGN_POS, dscale as u16);
        return Ok(());
    }
    if scale > dscale {
        // The last non-zero digit is beyond the column's scale.
        return Err(NumericError::Inexact);
    }
    let n = digits.len() as i64;
    if let Some(precision) = target.precision {
        let integer_digits = n - scale;
        if integer_digits > i64::from(precision) - dscale {
            return Err(NumericError::Overflow);
        }
    }
    // Exponent (power of ten) of the first and last digit, and the base-10000 groups they fall in.
    let first_exp = n - 1 - scale;
    let weight = first_exp.div_euclid(4);
    let last_group = (-scale).div_euclid(4);
    let ndigits = weight - last_group + 1;
    if ndigits > MAX_NDIGITS || weight > i64::from(i16::MAX) || weight < i64::from(i16::MIN) {
        return Err(NumericError::OutOfRange);
    }
    let sign = if negative { SIGN_NEG } else { SIGN_POS };
    put_head(out, ndigits as i16, weight as i16, sign, dscale as u16);
    put_groups(out, digits, first_exp, weight);
    Ok(())
}

/// The length prefix and the four header fields; the caller then writes `ndigits` groups.
fn put_head(out: &mut BytesMut, ndigits: i16, weight: i16, sign: u16, dscale: u16) {
    out.put_i32(8 + 2 * i32::from(ndigits));
    out.put_i16(ndigits);
    out.put_i16(weight);
    out.put_u16(sign);
    out.put_u16(dscale);
}

/// Pack decimal digits into base-10000 groups aligned on the decimal point. The digits have
/// consecutive exponents, so every group from `weight` down to the last one receives at least
/// one digit and the groups come out in order.
fn put_groups(out: &mut BytesMut, digits: &[u8], first_exp: i64, weight: i64) {
    const POW10: [i16; 4] = [1, 10, 100, 1000];
    let mut group = weight;
    let mut acc: i16 = 0;
    for (i, &d) in digits.iter().enumerate() {
        let exp = first_exp - i as i64;
        let g = exp.div_euclid(4);
        if g != group {
            out.put_i16(acc);
            group = g;
            acc = 0;
        }
        acc += i16::from(d) * POW10[exp.rem_euclid(4) as usize];
    }
    out.put_i16(acc);
}

/// Drops trailing zero digits, lowering the scale to match (the value is unchanged).
fn strip_trailing_zeros(digits: &[u8], scale: i64) -> (&[u8], i64) {
    let end = digits.iter().rposition(|&d| d != 0).map_or(0, |i| i + 1);
    let zeros = (digits.len() - end) as i64;
    (&digits[..end], scale - zeros)
}

/// Parse decimal text — `[+-]digits[.digits][e[+-]digits]`, or `.5`, `5.`, surrounding white
/// space allowed — and the specials `NaN`, `Infinity`, `inf` (any case, signed). The digits
/// are written to `buf` (cleared first). `None` when the text is not a number.
pub(super) fn parse_decimal(text: &[u8], buf: &mut Vec<u8>) -> Option<ParsedDecimal> {
    buf.clear();
    let s = text.trim_ascii();
    let (negative, body) = split_sign(s)?;
    if let Some(special) = parse_special(body, negative) {
        return Some(special);
    }
    let mut i = 0;
    let mut frac_digits: i64 = 0;
    let mut seen_point = false;
    while i < body.len() {
        match body[i] {
            b @ b'0'..=b'9' => {
                buf.push(b - b'0');
                if seen_point {
                    frac_digits += 1;
                }
            }
            b'.' if !seen_point => seen_point = true,
            _ => break,
        }
        i += 1;
    }
    if buf.is_empty() {
        return None;
    }
    let exponent = match body.get(i) {
        None => 0,
        Some(b'e' | b'E') => parse_exponent(&body[i + 1..])?,
        Some(_) => return None,
    };
    Some(ParsedDecimal::Finite {
        negative,
        scale: frac_digits - exponent,
    })
}

/// An optional leading sign; `None` for empty text.
fn split_sign(s: &[u8]) -> Option<(bool, &[u8])> {
    Some(match s.first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    })
}

fn parse_special(body: &[u8], negative: bool) -> Option<ParsedDecimal> {
    if body.eq_ignore_ascii_case(b"nan") {
        // PostgreSQL has no signed NaN; "-NaN" is not valid numeric input.
        return (!negative).then_some(ParsedDecimal::NaN);
    }
    if body.eq_ignore_ascii_case(b"infinity") || body.eq_ignore_ascii_case(b"inf") {
        return Some(if negative {
            ParsedDecimal::NegInf
        } else {
            ParsedDecimal::PosInf
        });
    }
    None
}

/// The exponent after `e`, capped far below `i64` overflow and far above what any column can
/// hold, so absurd exponents fail later as out of range rather than wrapping.
fn parse_exponent(s: &[u8]) -> Option<i64> {
    const CAP: i64 = 1_000_000_000;
    let (negative, digits) = split_sign(s)?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude = digits
        .iter()
        .fold(0i64, |acc, &d| (acc * 10 + i64::from(d - b'0')).min(CAP));
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decoded wire value: (ndigits, weight, sign, dscale, digits).
    type Wire = (i16, i16, u16, u16, Vec<i16>);

    fn decode(field: &[u8]) -> Wire {
        let len = i32::from_be_bytes(field[0..4].try_into().unwrap());
        assert_eq!(len as usize, field.len() - 4, "length prefix");
        let i16_at = |o: usize| i16::from_be_bytes(field[o..o + 2].try_into().unwrap());
        let ndigits = i16_at(4);
        let digits = (0..ndigits as usize).map(|k| i16_at(12 + 2 * k)).collect();
        (
            ndigits,
            i16_at(6),
            i16_at(8) as u16,
            i16_at(10) as u16,
            digits,
        )
    }

    fn unconstrained() -> NumericTarget {
        NumericTarget::new(None, 0)
    }

    fn typmod(p: u32, s: u32) -> NumericTarget {
        NumericTarget::new(Some(p), s)
    }

    fn encode_text(text: &str, target: NumericTarget) -> Result<Wire, NumericError> {
        let mut buf = Vec::new();
        let mut out = BytesMut::new();
        match parse_decimal(text.as_bytes(), &mut buf).expect("parses") {
            ParsedDecimal::Finite { negative, scale } => {
                write_numeric(&mut out, negative, &buf, scale, target)?
            }
            _ => return Err(NumericError::NotFinite),
        }
        Ok(decode(&out))
    }

    fn wire(ndigits: i16, weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Wire {
        (ndigits, weight, sign, dscale, digits.to_vec())
    }

    #[test]
    fn binary_layout_unconstrained() {
        let cases: &[(&str, Wire)] = &[
            ("0", wire(0, 0, SIGN_POS, 0, &[])),
            ("0.000", wire(0, 0, SIGN_POS, 3, &[])),
            ("-0", wire(0, 0, SIGN_POS, 0, &[])),
            ("1", wire(1, 0, SIGN_POS, 0, &[1])),
            ("-1", wire(1, 0, SIGN_NEG, 0, &[1])),
            ("9999", wire(1, 0, SIGN_POS, 0, &[9999])),
            ("10000", wire(1, 1, SIGN_POS, 0, &[1])),
            ("12345", wire(2, 1, SIGN_POS, 0, &[1, 2345])),
            ("-12.345", wire(2, 0, SIGN_NEG, 3, &[12, 3450])),
            ("0.5", wire(1, -1, SIGN_POS, 1, &[5000])),
            ("0.0001", wire(1, -1, SIGN_POS, 4, &[1])),
            ("0.00001", wire(1, -2, SIGN_POS, 5, &[1000])),
            ("100000000", wire(1, 2, SIGN_POS, 0, &[1])),
            ("100000000.00", wire(1, 2, SIGN_POS, 2, &[1])),
            (
                "1000000000000.0001",
                wire(5, 3, SIGN_POS, 4, &[1, 0, 0, 0, 1]),
            ),
            ("1e3", wire(1, 0, SIGN_POS, 0, &[1000])),
            ("1.5E-3", wire(1, -1, SIGN_POS, 4, &[15])),
            ("1e4", wire(1, 1, SIGN_POS, 0, &[1])),
            ("  +007.50  ", wire(2, 0, SIGN_POS, 2, &[7, 5000])),
            (".5", wire(1, -1, SIGN_POS, 1, &[5000])),
            ("5.", wire(1, 0, SIGN_POS, 0, &[5])),
            (
                "123456789012345678901234567890.123456789",
                wire(
                    11,
                    7,
                    SIGN_POS,
                    9,
                    &[
                        12, 3456, 7890, 1234, 5678, 9012, 3456, 7890, 1234, 5678, 9000,
                    ],
                ),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(
                encode_text(text, unconstrained()).as_ref(),
                Ok(want),
                "{text}"
            );
        }
    }

    #[test]
    fn never_rounds_and_checks_precision() {
        let cases: &[(&str, u32, u32, Result<Wire, NumericError>)] = &[
            ("0.5", 1, 0, Err(NumericError::Inexact)),
            ("-0.5", 1, 0, Err(NumericError::Inexact)),
            ("0.49", 1, 0, Err(NumericError::Inexact)),
            ("-0.001", 5, 2, Err(NumericError::Inexact)),
            ("1.005", 15, 2, Err(NumericError::Inexact)),
            ("1.239", 5, 2, Err(NumericError::Inexact)),
            ("9.995", 15, 2, Err(NumericError::Inexact)),
            ("0.00000000005", 15, 10, Err(NumericError::Inexact)),
            // Fractional zeros beyond the scale are not rounding.
            ("1.2300", 5, 2, Ok(wire(2, 0, SIGN_POS, 2, &[1, 2300]))),
            ("-0.000", 5, 2, Ok(wire(0, 0, SIGN_POS, 2, &[]))),
            ("12.5e-1", 5, 2, Ok(wire(2, 0, SIGN_POS, 2, &[1, 2500]))),
            ("5.0", 1, 0, Ok(wire(1, 0, SIGN_POS, 0, &[5]))),
            ("1.50e1", 2, 0, Ok(wire(1, 0, SIGN_POS, 0, &[15]))),
            (
                "0.0000000001",
                15,
                10,
                Ok(wire(1, -3, SIGN_POS, 10, &[100])),
            ),
            ("12", 15, 2, Ok(wire(1, 0, SIGN_POS, 2, &[12]))),
            (
                "9999999999999.99",
                15,
                2,
                Ok(wire(5, 3, SIGN_POS, 2, &[9, 9999, 9999, 9999, 9900])),
            ),
            ("9999999999999.995", 15, 2, Err(NumericError::Inexact)),
            ("123456789012345.67", 15, 2, Err(NumericError::Overflow)),
            ("100", 2, 0, Err(NumericError::Overflow)),
            ("0.99", 2, 2, Ok(wire(1, -1, SIGN_POS, 2, &[9900]))),
            ("1", 2, 2, Err(NumericError::Overflow)),
            ("1e1000", 1000, 0, Err(NumericError::Overflow)),
        ];
        for (text, p, s, want) in cases {
            assert_eq!(
                &encode_text(text, typmod(*p, *s)),
                want,
                "{text} → numeric({p},{s})"
            );
        }
    }

    #[test]
    fn refuses_nan_and_infinities_everywhere() {
        for text in ["NaN", "nan", "Infinity", "-Infinity", "inf", "+INF"] {
            for target in [unconstrained(), typmod(15, 2)] {
                assert_eq!(
                    encode_text(text, target),
                    Err(NumericError::NotFinite),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn max_precision_and_scale() {
        let nines = "9".repeat(1000);
        let w = encode_text(&nines, typmod(1000, 0)).unwrap();
        assert_eq!((w.0, w.1), (250, 249));
        assert!(w.4.iter().all(|&g| g == 9999));
        let tiny = format!("0.{}1", "0".repeat(998));
        let w = encode_text(&tiny, typmod(1000, 999)).unwrap();
        assert_eq!((w.0, w.1, w.3, w.4.as_slice()), (1, -250, 999, &[10][..]));
        assert_eq!(
            encode_text("1e-20000", unconstrained()),
            Err(NumericError::OutOfRange)
        );
        assert_eq!(
            encode_text("1e200000", unconstrained()),
            Err(NumericError::OutOfRange)
        );
    }

    #[test]
    fn u128_paths_agree_with_text() {
        let values: &[(i128, i64)] = &[
            (0, 0),
            (1, 0),
            (-1, 2),
            (12345, 2),
            (-12345, 7),
            (i64::MAX as i128, 0),
            (i64::MIN as i128, 3),
            (i128::MAX, 0),
            (i128::MIN + 1, 38),
            (99_999_999_999_999_999_999_999_999_999_999_999_999, 38),
            (5, -3),
        ];
        for &(v, scale) in values {
            let text = if scale >= 0 {
                let digits = v.unsigned_abs().to_string();
                let s = scale as usize;
                let padded = format!("{digits:0>width$}", width = s + 1);
                let (int, frac) = padded.split_at(padded.len() - s);
                let sign = if v < 0 { "-" } else { "" };
                format!("{sign}{int}.{frac}")
            } else {
                format!("{v}e{}", -scale)
            };
            for target in [unconstrained(), typmod(1000, 5), typmod(40, 0)] {
                let mut out = BytesMut::new();
                let got = write_u128(&mut out, v < 0, v.unsigned_abs(), scale, target)
                    .map(|()| decode(&out));
                assert_eq!(
                    got,
                    encode_text(&text, target),
                    "{v} scale {scale} ({text})"
                );
            }
        }
    }

    #[test]
    fn rejects_non_numbers() {
        let mut buf = Vec::new();
        for bad in [
            "", " ", "-", "+", ".", "1.2.3", "12a", "a1", "1e", "1e+", "e5", "--1", "1 2", "-NaN",
            "0x10",
        ] {
            assert_eq!(parse_decimal(bad.as_bytes(), &mut buf), None, "{bad:?}");
        }
    }
}
