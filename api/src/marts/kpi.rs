//! KPI arithmetic on summed counters (docs/kpis.md): every percentage is a ratio of two sums,
//! computed after grouping — never an average of percentages.

use serde::Serialize;
use utoipa::ToSchema;

/// How a metric's values read.
#[derive(Clone, Copy, Debug, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    Percent,
    Currency,
    Number,
}

/// `num ÷ den × 100`, rounded to 2 decimals; 0 when the denominator is 0.
pub fn pct(num: f64, den: f64) -> f64 {
    if den == 0.0 {
        0.0
    } else {
        round2(num / den * 100.0)
    }
}

/// `num ÷ den`, rounded to 2 decimals; 0 when the denominator is 0.
pub fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 { 0.0 } else { round2(num / den) }
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Period change: (actual − anterior) ÷ anterior × 100 with 1 decimal; 100 when anterior is 0
/// and actual is positive; 0 when both are 0.
pub fn variacion(actual: f64, anterior: f64) -> f64 {
    if anterior == 0.0 {
        if actual > 0.0 { 100.0 } else { 0.0 }
    } else {
        round1((actual - anterior) / anterior * 100.0)
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: i64) -> String {
    group_digits(n, ',')
}

/// `n` with its digits in groups of three, `separator` between the groups.
pub fn group_digits(n: i64, separator: char) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(separator);
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic() {
        assert_eq!(pct(1.0, 3.0), 33.33);
        assert_eq!(pct(5.0, 0.0), 0.0);
        assert_eq!(ratio(7.0, 2.0), 3.5);
        assert_eq!(variacion(110.0, 100.0), 10.0);
        assert_eq!(variacion(5.0, 0.0), 100.0);
        assert_eq!(variacion(0.0, 0.0), 0.0);
        assert_eq!(variacion(0.0, 4.0), -100.0);
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(-1000), "-1,000");
        assert_eq!(thousands(0), "0");
    }
}
