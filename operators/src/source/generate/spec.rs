//! The YAML shape of `kind: generate` and its parsing into typed generators.
//!
//! Column specs are parsed while the pipeline file is deserialised (`#[serde(try_from)]`), so a bad
//! bound is reported by the YAML reader with its line and column.

use chrono::{Duration, NaiveDate};
use indexmap::IndexMap;

use pulso_types::{IncType, IncValue};

/// `kind: generate`: deterministic synthetic rows.
///
/// Rows have ids `0 .. rows + revision * grow`. Revision 0 has `rows` rows; each revision
/// `r >= 1` changes a `change_share` of the existing rows (chosen by a hash of (seed, id, r)) and
/// adds `grow` new ones. A row's values are a pure function of (seed, column, id, last revision
/// that changed it), so unchanged rows are identical across runs.
///
/// `history: H` makes revision 0 start with `H` growth steps already there: `rows + H * grow`
/// rows, all born at revision 0 (a demo's history length: `rows: 0`, `grow` rows a day,
/// `history` days).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(try_from = "RawGenerateSpec")]
pub struct GenerateSpec {
    /// Rows at revision 0 (`history` included).
    pub rows: u64,
    pub seed: u64,
    /// Current revision (e.g. from `${DEMO_REVISION:-0}`).
    pub revision: u64,
    /// Share of existing rows changed by each revision r >= 1, in [0, 1].
    pub change_share: f64,
    /// Rows added by each revision r >= 1.
    pub grow: u64,
    /// Growth steps present at revision 0 (already counted in `rows`).
    pub history: u64,
    /// Output columns, in order.
    pub columns: IndexMap<String, ColumnSpec>,
}

/// [`GenerateSpec`] as written.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGenerateSpec {
    #[serde(deserialize_with = "count")]
    rows: u64,
    #[serde(default, deserialize_with = "count")]
    seed: u64,
    #[serde(default, deserialize_with = "count")]
    revision: u64,
    #[serde(default)]
    change_share: f64,
    #[serde(default, deserialize_with = "count")]
    grow: u64,
    #[serde(default, deserialize_with = "count")]
    history: u64,
    columns: IndexMap<String, ColumnSpec>,
}

impl TryFrom<RawGenerateSpec> for GenerateSpec {
    type Error = String;

    fn try_from(raw: RawGenerateSpec) -> Result<Self, String> {
        let rows = raw
            .history
            .checked_mul(raw.grow)
            .and_then(|h| h.checked_add(raw.rows))
            .ok_or_else(|| {
                format!(
                    "rows {} + history {} x grow {} is too large",
                    raw.rows, raw.history, raw.grow
                )
            })?;
        Ok(GenerateSpec {
            rows,
            seed: raw.seed,
            revision: raw.revision,
            change_share: raw.change_share,
            grow: raw.grow,
            history: raw.history,
            columns: raw.columns,
        })
    }
}

/// One generated column: a generator and the share of NULLs.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(try_from = "RawColumn")]
pub struct ColumnSpec {
    pub generator: Generator,
    /// Share of NULL values in [0, 1] (default 0: the column is non-nullable).
    pub null_share: f64,
}

/// How a column's values are made.
#[derive(Debug, Clone, PartialEq)]
pub enum Generator {
    /// `{ from_id: "F{}", offset: 100, div: 2 }`: Utf8, `{}` replaced by `id / div + offset`.
    /// Depends on the id only, never on the revision: use it for key columns.
    FromId {
        template: String,
        offset: u64,
        div: u64,
    },
    /// `{ choice: ["A", "B"] }`: Utf8, one of the values, uniformly.
    Choice(Vec<String>),
    /// `{ date: ["2024-01-01", "2025-12-31"] }`: Date32, uniform, bounds inclusive.
    Date { min: NaiveDate, max: NaiveDate },
    /// `{ decimal: ["1.00", "99999.99"] }`: Decimal128, uniform and exact, bounds inclusive.
    /// Scale = the larger scale of the bounds; precision = the digits the bounds need.
    Decimal {
        min: i128,
        max: i128,
        precision: u8,
        scale: i8,
    },
    /// `{ int: [1, 10] }`: Int64, uniform, bounds inclusive.
    Int { min: i64, max: i64 },
    /// `{ bool: 0.3 }`: Boolean, true with this probability.
    Bool { true_share: f64 },
    /// `{ incremental: { start: "2025-06-01T05:00:00Z", step: "1s", type: timestamp } }`: the
    /// incremental column (Date32, Timestamp(µs) or Timestamp(µs, "UTC") by `type`).
    ///
    /// Value = start + step * (offset(last revision) + id / rows_per_step), where offset(r)
    /// leaves room for every row that exists at r. So every row changed or born at revision r is
    /// above every row whose last change is older: a watermark taken at revision r-1 is below
    /// all of revision r's changes.
    ///
    /// `late: { from: 34000, by: "3h" }`: within each step, the rows from position `from` on
    /// (id % rows_per_step >= from) are a later delivery, `by` after the step's first rows (a
    /// correction file loaded the same afternoon). `by` < `step`, so values still never decrease
    /// with the id and the window is still pushed down.
    Incremental {
        start: IncValue,
        step: Duration,
        rows_per_step: u64,
        late: Option<LateDelivery>,
    },
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    from_id: Option<String>,
    offset: Option<u64>,
    div: Option<u64>,
    choice: Option<Vec<String>>,
    date: Option<(String, String)>,
    decimal: Option<(DecimalText, DecimalText)>,
    int: Option<(i64, i64)>,
    bool: Option<f64>,
    incremental: Option<RawIncremental>,
    #[serde(default)]
    null_share: f64,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIncremental {
    start: String,
    step: String,
    #[serde(rename = "type")]
    ty: IncType,
    #[serde(default = "one")]
    rows_per_step: u64,
    late: Option<RawLate>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLate {
    from: u64,
    by: String,
}

/// The tail of each step of an incremental column delivered later (see [`Generator::Incremental`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LateDelivery {
    /// First position within a step that is late.
    pub from: u64,
    /// How much later than the step's value.
    pub by: Duration,
}

fn one() -> u64 {
    1
}

/// A non-negative integer written as a number or as digits in a string: environment
/// interpolation (`revision: "${DEMO_REVISION:-0}"`) produces text.
fn count<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a non-negative integer")
        }
        fn visit_u64<E>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("{v} is negative")))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<u64, E> {
            v.trim()
                .parse()
                .map_err(|_| E::custom(format!("{v:?} is not a non-negative integer")))
        }
    }
    deserializer.deserialize_any(V)
}

/// A decimal bound, which must be written as a string: an unquoted `1.00` reaches serde as the
/// float 1.0 and would lose its scale.
struct DecimalText(String);

impl<'de> serde::Deserialize<'de> for DecimalText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = DecimalText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a decimal written as a quoted string, e.g. \"1.00\"")
            }
            fn visit_str<E>(self, v: &str) -> Result<DecimalText, E> {
                Ok(DecimalText(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<DecimalText, E> {
                Err(E::custom(format!(
                    "decimal bound {v} must be a quoted string (e.g. \"{v:.2}\") so that its scale is kept"
                )))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<DecimalText, E> {
                Err(E::custom(format!(
                    "decimal bound {v} must be a quoted string (e.g. \"{v}.00\") so that its scale is kept"
                )))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<DecimalText, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl TryFrom<RawColumn> for ColumnSpec {
    type Error = String;

    fn try_from(raw: RawColumn) -> Result<Self, String> {
        let mut kinds = Vec::new();
        let names = [
            ("from_id", raw.from_id.is_some()),
            ("choice", raw.choice.is_some()),
            ("date", raw.date.is_some()),
            ("decimal", raw.decimal.is_some()),
            ("int", raw.int.is_some()),
            ("bool", raw.bool.is_some()),
            ("incremental", raw.incremental.is_some()),
        ];
        for (name, present) in names {
            if present {
                kinds.push(name);
            }
        }
        if kinds.len() != 1 {
            return Err(format!(
                "a generated column needs exactly one of from_id, choice, date, decimal, int, bool, \
                 incremental (found {})",
                if kinds.is_empty() {
                    "none".to_string()
                } else {
                    kinds.join(", ")
                }
            ));
        }
        if raw.from_id.is_none() && (raw.offset.is_some() || raw.div.is_some()) {
            return Err("`offset` and `div` only apply to from_id".to_string());
        }
        let generator = if let Some(template) = raw.from_id {
            Generator::FromId {
                template,
                offset: raw.offset.unwrap_or(0),
                div: raw.div.unwrap_or(1),
            }
        } else if let Some(values) = raw.choice {
            Generator::Choice(values)
        } else if let Some((lo, hi)) = raw.date {
            Generator::Date {
                min: parse_date(&lo)?,
                max: parse_date(&hi)?,
            }
        } else if let Some((lo, hi)) = raw.decimal {
            decimal_generator(&lo.0, &hi.0)?
        } else if let Some((min, max)) = raw.int {
            Generator::Int { min, max }
        } else if let Some(true_share) = raw.bool {
            Generator::Bool { true_share }
        } else if let Some(inc) = raw.incremental {
            Generator::Incremental {
                start: IncValue::parse(inc.ty, &inc.start).map_err(|e| e.to_string())?,
                step: parse_step(&inc.step)?,
                rows_per_step: inc.rows_per_step,
                late: inc
                    .late
                    .map(|l| parse_step(&l.by).map(|by| LateDelivery { from: l.from, by }))
                    .transpose()?,
            }
        } else {
            return Err("no generator".to_string());
        };
        let spec = ColumnSpec {
            generator,
            null_share: raw.null_share,
        };
        spec.validate()?;
        Ok(spec)
    }
}

impl ColumnSpec {
    /// Checks bounds and shares (also done when deserialising; this covers specs built in code).
    pub fn validate(&self) -> Result<(), String> {
        share("null_share", self.null_share)?;
        match &self.generator {
            Generator::FromId { template, div, .. } => {
                if template.matches("{}").count() != 1 {
                    return Err(format!(
                        "from_id template {template:?} must contain `{{}}` exactly once"
                    ));
                }
                if *div == 0 {
                    return Err("from_id div must be at least 1".to_string());
                }
            }
            Generator::Choice(values) if values.is_empty() => {
                return Err("choice needs at least one value".to_string());
            }
            Generator::Choice(_) => {}
            Generator::Date { min, max } => ordered("date", min, max)?,
            Generator::Decimal {
                min,
                max,
                precision,
                scale,
            } => {
                ordered("decimal", min, max)?;
                if *precision == 0
                    || *precision > 38
                    || *scale < 0
                    || i16::from(*scale) > i16::from(*precision)
                {
                    return Err(format!(
                        "decimal({precision}, {scale}) is not a valid Decimal128 type"
                    ));
                }
                let limit = 10i128.pow(u32::from(*precision));
                if min.abs() >= limit || max.abs() >= limit {
                    return Err(format!(
                        "decimal bounds do not fit decimal({precision}, {scale})"
                    ));
                }
            }
            Generator::Int { min, max } => ordered("int", min, max)?,
            Generator::Bool { true_share } => share("bool", *true_share)?,
            Generator::Incremental {
                start,
                step,
                rows_per_step,
                late,
            } => {
                if *step <= Duration::zero() {
                    return Err("incremental step must be positive".to_string());
                }
                whole_units("the step", *step, start.ty())?;
                if *rows_per_step == 0 {
                    return Err("incremental rows_per_step must be at least 1".to_string());
                }
                if let Some(late) = late {
                    if late.from == 0 || late.from >= *rows_per_step {
                        return Err(format!(
                            "incremental late.from must be within a step: 1 .. {}",
                            rows_per_step - 1
                        ));
                    }
                    // Values must not decrease with the id (the window push-down bisects).
                    if late.by <= Duration::zero() || late.by >= *step {
                        return Err("incremental late.by must be positive and below step".into());
                    }
                    whole_units("late.by", late.by, start.ty())?;
                }
            }
        }
        Ok(())
    }
}

fn share(what: &str, v: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(format!("{what} {v} is not in [0, 1]"))
    }
}

fn ordered<T: PartialOrd + std::fmt::Debug>(what: &str, min: &T, max: &T) -> Result<(), String> {
    if min <= max {
        Ok(())
    } else {
        Err(format!("{what} bounds are reversed: {min:?} > {max:?}"))
    }
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|e| format!("date {s:?}: {e} (expected YYYY-MM-DD)"))
}

/// Parses `"1d"`, `"2h"`, `"30m"`/`"30min"`, `"1s"`, `"500ms"`, `"250us"`.
/// A duration of an incremental column must be a whole number of its units: days for a date
/// column, microseconds otherwise.
fn whole_units(what: &str, d: Duration, ty: IncType) -> Result<(), String> {
    if ty == IncType::Date && (d.num_seconds() % 86_400 != 0 || d.subsec_nanos() != 0) {
        return Err(format!(
            "{what} of a date incremental column must be whole days, e.g. \"1d\""
        ));
    }
    if d.subsec_nanos() % 1_000 != 0 {
        return Err(format!(
            "{what} of an incremental column must be a whole number of microseconds"
        ));
    }
    Ok(())
}

pub(crate) fn parse_step(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().map_err(|_| {
        format!("step {s:?}: expected a number followed by a unit (us, ms, s, m, h, d)")
    })?;
    let step = match unit.trim() {
        "us" => Some(Duration::microseconds(n)),
        "ms" => Duration::try_milliseconds(n),
        "s" => Duration::try_seconds(n),
        "m" | "min" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        other => {
            return Err(format!(
                "step {s:?}: unknown unit {other:?} (use us, ms, s, m, h or d)"
            ));
        }
    };
    step.ok_or_else(|| format!("step {s:?} is too large"))
}

/// Parses `[-]digits[.digits]` into (unscaled value, scale).
fn parse_decimal(s: &str) -> Result<(i128, u32), String> {
    let text = s.trim();
    let bad = || format!("decimal {s:?} is not a plain decimal number like \"-12.30\"");
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int_part, frac_part) = body.split_once('.').unwrap_or((body, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(bad());
    }
    if !int_part
        .chars()
        .chain(frac_part.chars())
        .all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let digits = format!("{int_part}{frac_part}");
    let value: i128 = digits
        .parse()
        .map_err(|_| format!("decimal {s:?} has too many digits"))?;
    let scale = u32::try_from(frac_part.len()).map_err(|_| bad())?;
    Ok((if negative { -value } else { value }, scale))
}

fn decimal_generator(lo: &str, hi: &str) -> Result<Generator, String> {
    let (lo_v, lo_s) = parse_decimal(lo)?;
    let (hi_v, hi_s) = parse_decimal(hi)?;
    let scale = lo_s.max(hi_s);
    if scale > 38 {
        return Err(format!("decimal scale {scale} exceeds 38"));
    }
    let rescale = |v: i128, s: u32| {
        10i128
            .checked_pow(scale - s)
            .and_then(|m| v.checked_mul(m))
            .ok_or_else(|| "decimal bound out of range".to_string())
    };
    let (min, max) = (rescale(lo_v, lo_s)?, rescale(hi_v, hi_s)?);
    let digits = |v: i128| v.unsigned_abs().checked_ilog10().map_or(1, |d| d + 1);
    let precision = digits(min).max(digits(max)).max(scale).max(1);
    if precision > 38 {
        return Err(format!(
            "decimal bounds need {precision} digits; Decimal128 holds 38"
        ));
    }
    Ok(Generator::Decimal {
        min,
        max,
        precision: precision as u8,
        scale: scale as i8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps() {
        assert_eq!(parse_step("1s").unwrap(), Duration::seconds(1));
        assert_eq!(parse_step("500ms").unwrap(), Duration::milliseconds(500));
        assert_eq!(parse_step("2d").unwrap(), Duration::days(2));
        assert_eq!(parse_step("5min").unwrap(), Duration::minutes(5));
        assert!(parse_step("1 fortnight").is_err());
        assert!(parse_step("s").is_err());
    }

    #[test]
    fn decimals() {
        assert_eq!(
            decimal_generator("1.00", "99999.99").unwrap(),
            Generator::Decimal {
                min: 100,
                max: 9_999_999,
                precision: 7,
                scale: 2
            }
        );
        assert_eq!(
            decimal_generator("-5", "0.125").unwrap(),
            Generator::Decimal {
                min: -5000,
                max: 125,
                precision: 4,
                scale: 3
            }
        );
        assert_eq!(
            decimal_generator("0.01", "0.99").unwrap(),
            Generator::Decimal {
                min: 1,
                max: 99,
                precision: 2,
                scale: 2
            }
        );
        assert!(decimal_generator("1e5", "2").is_err());
        assert!(decimal_generator("", "2").is_err());
        assert!(decimal_generator("1.", "2").is_ok());
    }
}
