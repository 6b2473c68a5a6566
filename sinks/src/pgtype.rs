//! The PostgreSQL column types a pulso-flow target table may have.
//!
//! A [`PgType`] is parsed from the spelling a user writes in `pipelines.yaml` or the spelling
//! `pg_catalog.format_type()` prints, and printed back ([`PgType::sql`]) in the canonical
//! `format_type()` spelling, so a type read from the catalog compares equal to the configured one.

use std::fmt;
use std::str::FromStr;

/// Largest precision PostgreSQL accepts in `numeric(p,s)`.
pub const NUMERIC_MAX_PRECISION: u32 = 1000;

/// Largest length PostgreSQL accepts in `character varying(n)`.
pub const VARCHAR_MAX_LENGTH: u32 = 10_485_760;

/// The type names [`PgType::parse`] accepts, listed in error hints.
const ACCEPTED: &str = "boolean (bool), smallint (int2), integer (int, int4), bigint (int8), \
real (float4), double precision (float8), numeric[(p[,s])] (decimal), text, \
character varying[(n)] (varchar), date, time [without time zone], \
timestamp [without time zone], timestamp with time zone (timestamptz), json, jsonb, bytea, uuid";

/// A PostgreSQL column type supported as a pulso-flow load target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PgType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// `numeric(p,s)`. `precision: None` is an unconstrained `numeric`: it stores any value at
    /// the value's own scale, and `scale` is then ignored (parse sets it to 0). `numeric(p)` is
    /// `numeric(p,0)`.
    Numeric {
        precision: Option<u32>,
        scale: u32,
    },
    Text,
    /// `character varying(n)`; `None` is an unbounded `character varying`.
    Varchar(Option<u32>),
    Date,
    Time,
    Timestamp,
    Timestamptz,
    Json,
    Jsonb,
    Bytea,
    Uuid,
}

/// A column type name that [`PgType::parse`] rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PgTypeError {
    #[error("unknown column type \"{input}\"; expected one of: {ACCEPTED}")]
    Unknown { input: String },
    #[error("invalid column type \"{input}\": {reason}; expected one of: {ACCEPTED}")]
    Invalid { input: String, reason: String },
}

impl PgType {
    /// Parse a type name as a user writes it in `pipelines.yaml` or as
    /// `pg_catalog.format_type()` prints it: case-insensitive, any amount of white space between
    /// words and around modifiers. Aliases: `int`/`integer`/`int4`, `smallint`/`int2`,
    /// `bigint`/`int8`, `real`/`float4`, `double precision`/`float8`,
    /// `numeric`/`decimal[(p[,s])]`, `varchar(n)`/`character varying(n)`, `text`,
    /// `bool`/`boolean`, `date`, `time [without time zone]`, `timestamp [without time zone]`,
    /// `timestamptz`/`timestamp with time zone`, `json`, `jsonb`, `bytea`, `uuid`.
    ///
    /// `numeric(p,s)` needs `1 <= p <= 1000` and `0 <= s <= p`; `varchar(n)` needs
    /// `1 <= n <= 10485760`.
    pub fn parse(s: &str) -> Result<PgType, PgTypeError> {
        let normalized = normalize(s);
        let (name, modifiers) = split_modifiers(&normalized)
            .ok_or_else(|| invalid(s, "unbalanced or misplaced parentheses"))?;
        match modifiers {
            None => parse_plain(name).ok_or_else(|| PgTypeError::Unknown {
                input: s.to_string(),
            }),
            Some(mods) => parse_with_modifiers(s, name, mods),
        }
    }

    /// Canonical SQL spelling for DDL and casts — the spelling `pg_catalog.format_type()`
    /// prints, e.g. `numeric(15,2)`, `character varying(20)`, `timestamp with time zone`.
    pub fn sql(&self) -> String {
        match self {
            PgType::Bool => "boolean".into(),
            PgType::Int2 => "smallint".into(),
            PgType::Int4 => "integer".into(),
            PgType::Int8 => "bigint".into(),
            PgType::Float4 => "real".into(),
            PgType::Float8 => "double precision".into(),
            PgType::Numeric {
                precision: Some(p),
                scale,
            } => format!("numeric({p},{scale})"),
            PgType::Numeric {
                precision: None, ..
            } => "numeric".into(),
            PgType::Text => "text".into(),
            PgType::Varchar(Some(n)) => format!("character varying({n})"),
            PgType::Varchar(None) => "character varying".into(),
            PgType::Date => "date".into(),
            PgType::Time => "time without time zone".into(),
            PgType::Timestamp => "timestamp without time zone".into(),
            PgType::Timestamptz => "timestamp with time zone".into(),
            PgType::Json => "json".into(),
            PgType::Jsonb => "jsonb".into(),
            PgType::Bytea => "bytea".into(),
            PgType::Uuid => "uuid".into(),
        }
    }
}

impl fmt::Display for PgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql())
    }
}

impl FromStr for PgType {
    type Err = PgTypeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PgType::parse(s)
    }
}

/// A column of a target table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgColumn {
    pub name: String,
    pub ty: PgType,
    pub nullable: bool,
}

impl PgColumn {
    pub fn new(name: impl Into<String>, ty: PgType, nullable: bool) -> Self {
        PgColumn {
            name: name.into(),
            ty,
            nullable,
        }
    }
}

fn invalid(input: &str, reason: impl Into<String>) -> PgTypeError {
    PgTypeError::Invalid {
        input: input.to_string(),
        reason: reason.into(),
    }
}

/// Lower-case, trim, collapse runs of white space to one space and drop white space next to
/// parentheses and commas, so `Numeric ( 15 , 2 )` and `numeric(15,2)` read the same.
fn normalize(s: &str) -> String {
    let lower = s.trim().to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    let mut out = words.join(" ");
    for punct in ["(", ")", ","] {
        out = out.replace(&format!(" {punct}"), punct);
        out = out.replace(&format!("{punct} "), punct);
    }
    out
}

/// Split `name(mods)` into the name and the modifier text. `None` when the parentheses are
/// malformed or followed by more words (typmods of the time types, as in
/// `time(3) with time zone`, are not supported).
fn split_modifiers(s: &str) -> Option<(&str, Option<&str>)> {
    match s.find('(') {
        None => (!s.contains(')')).then_some((s, None)),
        Some(open) => {
            let close = s.find(')')?;
            // Exactly one pair, closing the string.
            if close != s.len() - 1 || close < open || s[open + 1..].contains('(') {
                return None;
            }
            Some((&s[..open], Some(&s[open + 1..close])))
        }
    }
}

fn parse_plain(name: &str) -> Option<PgType> {
    let ty = match name {
        "bool" | "boolean" => PgType::Bool,
        "smallint" | "int2" => PgType::Int2,
        "int" | "integer" | "int4" => PgType::Int4,
        "bigint" | "int8" => PgType::Int8,
        "real" | "float4" => PgType::Float4,
        "double precision" | "float8" => PgType::Float8,
        "numeric" | "decimal" => PgType::Numeric {
            precision: None,
            scale: 0,
        },
        "text" => PgType::Text,
        "varchar" | "character varying" => PgType::Varchar(None),
        "date" => PgType::Date,
        "time" | "time without time zone" => PgType::Time,
        "timestamp" | "timestamp without time zone" => PgType::Timestamp,
        "timestamptz" | "timestamp with time zone" => PgType::Timestamptz,
        "json" => PgType::Json,
        "jsonb" => PgType::Jsonb,
        "bytea" => PgType::Bytea,
        "uuid" => PgType::Uuid,
        _ => return None,
    };
    Some(ty)
}

fn parse_with_modifiers(input: &str, name: &str, mods: &str) -> Result<PgType, PgTypeError> {
    let numbers = mods
        .split(',')
        .map(|m| {
            m.parse::<u32>()
                .map_err(|_| invalid(input, format!("type modifier \"{m}\" is not a number")))
        })
        .collect::<Result<Vec<u32>, _>>()?;
    match (name, numbers.as_slice()) {
        ("numeric" | "decimal", [p]) => numeric(input, *p, 0),
        ("numeric" | "decimal", [p, s]) => numeric(input, *p, *s),
        ("numeric" | "decimal", _) => Err(invalid(input, "numeric takes (precision[,scale])")),
        ("varchar" | "character varying", [n]) => {
            if (1..=VARCHAR_MAX_LENGTH).contains(n) {
                Ok(PgType::Varchar(Some(*n)))
            } else {
                Err(invalid(
                    input,
                    format!("length {n} must be between 1 and {VARCHAR_MAX_LENGTH}"),
                ))
            }
        }
        ("varchar" | "character varying", _) => {
            Err(invalid(input, "character varying takes one length"))
        }
        _ if parse_plain(name).is_some() => Err(invalid(
            input,
            format!("type \"{name}\" takes no modifiers here"),
        )),
        _ => Err(PgTypeError::Unknown {
            input: input.to_string(),
        }),
    }
}

fn numeric(input: &str, precision: u32, scale: u32) -> Result<PgType, PgTypeError> {
    if !(1..=NUMERIC_MAX_PRECISION).contains(&precision) {
        return Err(invalid(
            input,
            format!("precision {precision} must be between 1 and {NUMERIC_MAX_PRECISION}"),
        ));
    }
    if scale > precision {
        return Err(invalid(
            input,
            format!("scale {scale} must be between 0 and the precision {precision}"),
        ));
    }
    Ok(PgType::Numeric {
        precision: Some(precision),
        scale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(p: u32, s: u32) -> PgType {
        PgType::Numeric {
            precision: Some(p),
            scale: s,
        }
    }

    #[test]
    fn parses_aliases_case_insensitively() {
        let cases = [
            ("INT", PgType::Int4),
            ("integer", PgType::Int4),
            ("int4", PgType::Int4),
            ("SmallInt", PgType::Int2),
            ("int2", PgType::Int2),
            ("bigint", PgType::Int8),
            ("int8", PgType::Int8),
            ("real", PgType::Float4),
            ("float4", PgType::Float4),
            ("double   precision", PgType::Float8),
            ("float8", PgType::Float8),
            ("bool", PgType::Bool),
            ("Boolean", PgType::Bool),
            ("text", PgType::Text),
            ("varchar", PgType::Varchar(None)),
            ("character varying", PgType::Varchar(None)),
            ("varchar(20)", PgType::Varchar(Some(20))),
            ("character varying ( 20 )", PgType::Varchar(Some(20))),
            ("date", PgType::Date),
            ("time", PgType::Time),
            ("time without time zone", PgType::Time),
            ("timestamp", PgType::Timestamp),
            ("timestamp without time zone", PgType::Timestamp),
            ("timestamptz", PgType::Timestamptz),
            ("TIMESTAMP WITH TIME ZONE", PgType::Timestamptz),
            ("json", PgType::Json),
            ("jsonb", PgType::Jsonb),
            ("bytea", PgType::Bytea),
            ("uuid", PgType::Uuid),
            (
                "numeric",
                PgType::Numeric {
                    precision: None,
                    scale: 0,
                },
            ),
            ("decimal(15,2)", num(15, 2)),
            (" numeric( 15 , 2 ) ", num(15, 2)),
            ("numeric(10)", num(10, 0)),
            ("numeric(1000,1000)", num(1000, 1000)),
        ];
        for (input, want) in cases {
            assert_eq!(PgType::parse(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn sql_round_trips_through_parse() {
        for ty in [
            PgType::Bool,
            PgType::Int2,
            PgType::Int4,
            PgType::Int8,
            PgType::Float4,
            PgType::Float8,
            num(15, 2),
            PgType::Numeric {
                precision: None,
                scale: 0,
            },
            PgType::Text,
            PgType::Varchar(Some(20)),
            PgType::Varchar(None),
            PgType::Date,
            PgType::Time,
            PgType::Timestamp,
            PgType::Timestamptz,
            PgType::Json,
            PgType::Jsonb,
            PgType::Bytea,
            PgType::Uuid,
        ] {
            assert_eq!(PgType::parse(&ty.sql()), Ok(ty.clone()), "{}", ty.sql());
        }
        assert_eq!(num(15, 2).sql(), "numeric(15,2)");
        assert_eq!(PgType::Varchar(Some(20)).sql(), "character varying(20)");
        assert_eq!(PgType::Timestamptz.sql(), "timestamp with time zone");
    }

    #[test]
    fn rejects_with_a_hint() {
        let err = PgType::parse("integr").unwrap_err().to_string();
        assert!(
            err.starts_with("unknown column type \"integr\"; expected one of: boolean"),
            "{err}"
        );
        for (input, reason) in [
            ("numeric(0,0)", "precision 0 must be between 1 and 1000"),
            ("numeric(1001)", "precision 1001 must be between 1 and 1000"),
            (
                "numeric(5,6)",
                "scale 6 must be between 0 and the precision 5",
            ),
            ("numeric(5,-1)", "type modifier \"-1\" is not a number"),
            ("numeric(1,2,3)", "numeric takes (precision[,scale])"),
            ("varchar(0)", "length 0 must be between 1 and 10485760"),
            ("int(4)", "type \"int\" takes no modifiers here"),
            ("numeric(15,2", "unbalanced or misplaced parentheses"),
            ("numeric(15,2) x", "unbalanced or misplaced parentheses"),
        ] {
            let err = PgType::parse(input).unwrap_err().to_string();
            assert!(
                err.contains(reason) && err.contains("expected one of"),
                "{input}: {err}"
            );
        }
        assert!(matches!(
            PgType::parse("frobnicate(3)"),
            Err(PgTypeError::Unknown { .. })
        ));
        assert!(matches!(
            PgType::parse(""),
            Err(PgTypeError::Unknown { .. })
        ));
    }
}
