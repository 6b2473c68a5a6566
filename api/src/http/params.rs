//! Request parsing and validation: query strings, JSON bodies and filter values.
//!
//! Parameters are parsed into typed values before anything else happens; a value that does not
//! parse answers 400, a well-formed but unacceptable one 422, both naming the parameter. Filter
//! values only ever reach SQL as bound parameters, and are in addition restricted to a small
//! character set (letters, digits, space and `_-./+():`), so quotes, `;`, `%`, backslashes and
//! control characters are refused outright.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use chrono::NaiveDate;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Longest accepted query string.
const MAX_QUERY_BYTES: usize = 16 * 1024;
/// Longest accepted filter value.
pub const MAX_VALUE_CHARS: usize = 64;

/// A query string as `(name, value)` pairs, consumed parameter by parameter; [`Query::finish`]
/// refuses whatever was not consumed (a misspelt parameter must not be silently ignored).
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
    max_list: usize,
}

impl<S> FromRequestParts<S> for Query
where
    S: Send + Sync + Limits,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::parse(parts.uri.query().unwrap_or(""), state.max_list())
    }
}

/// Lets extractors read the configured bounds from the router state.
pub trait Limits {
    fn max_list(&self) -> usize;
    fn body_limit(&self) -> usize;
}

impl Query {
    pub fn parse(raw: &str, max_list: usize) -> Result<Self, ApiError> {
        if raw.len() > MAX_QUERY_BYTES {
            return Err(ApiError::BadRequest {
                parameter: None,
                message: format!("the query string is longer than {MAX_QUERY_BYTES} bytes"),
            });
        }
        let pairs = form_urlencoded::parse(raw.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Ok(Query { pairs, max_list })
    }

    /// Remove and return every value of the parameter known by any of `names`.
    fn take(&mut self, names: &[&str]) -> Vec<(String, String)> {
        let mut taken = Vec::new();
        let mut i = 0;
        while i < self.pairs.len() {
            if names.contains(&self.pairs[i].0.as_str()) {
                taken.push(self.pairs.remove(i));
            } else {
                i += 1;
            }
        }
        taken
    }

    /// A single-valued parameter (`names[0]` is the documented name, the rest aliases).
    pub fn one(&mut self, names: &[&str]) -> Result<Option<String>, ApiError> {
        let mut values = self.take(names);
        match values.len() {
            0 => Ok(None),
            1 => {
                let (_, v) = values.pop().expect("one value");
                let v = v.trim().to_string();
                Ok(if v.is_empty() { None } else { Some(v) })
            }
            _ => Err(ApiError::bad(
                names[0],
                format!("{} must be given at most once", names[0]),
            )),
        }
    }

    /// A list parameter: repeated (`a=1&a=2`) and/or comma-separated (`a=1,2`).
    pub fn list(&mut self, names: &[&str]) -> Result<Vec<String>, ApiError> {
        let mut out = Vec::new();
        for (_, v) in self.take(names) {
            for item in v.split(',') {
                let item = item.trim();
                if !item.is_empty() {
                    out.push(item.to_string());
                }
            }
            if out.len() > self.max_list {
                break;
            }
        }
        check_list_len(names[0], out.len(), self.max_list)?;
        Ok(out)
    }

    pub fn date(&mut self, names: &[&str]) -> Result<Option<NaiveDate>, ApiError> {
        self.one(names)?
            .map(|v| parse_date(names[0], &v))
            .transpose()
    }

    pub fn boolean(&mut self, names: &[&str]) -> Result<Option<bool>, ApiError> {
        self.one(names)?
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(ApiError::bad(
                    names[0],
                    format!("{}: {v:?} is not true or false", names[0]),
                )),
            })
            .transpose()
    }

    /// Refuse parameters nobody consumed.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.pairs.first() {
            None => Ok(()),
            Some((name, _)) => Err(ApiError::bad(
                safe_text(name),
                format!("unknown query parameter {:?}", safe_text(name)),
            )),
        }
    }
}

pub fn check_list_len(parameter: &str, len: usize, max: usize) -> Result<(), ApiError> {
    if len > max {
        return Err(ApiError::invalid(
            parameter,
            format!("{parameter}: at most {max} values are accepted"),
        ));
    }
    Ok(())
}

/// Dates outside these years are refused (422): nothing in the marts is older, and a bound keeps
/// the cache's key space finite.
const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// `YYYY-MM-DD`, or a whole ISO datetime (`YYYY-MM-DDTHH:MM:SS[.fff][Z|±hh:mm]`, also with a space)
/// whose date is taken. The whole value must parse: nothing may follow it.
pub fn parse_date(parameter: &str, v: &str) -> Result<NaiveDate, ApiError> {
    let v = v.trim();
    let bad = || {
        ApiError::bad(
            parameter,
            format!("{parameter}: {:?} is not a date (YYYY-MM-DD)", safe_text(v)),
        )
    };
    let date = if v.len() == 10 {
        NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| bad())?
    } else {
        [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
        ]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(v, f).ok())
        .or_else(|| {
            chrono::DateTime::parse_from_rfc3339(v)
                .ok()
                .map(|t| t.naive_local())
        })
        .map(|t| t.date())
        .ok_or_else(bad)?
    };
    in_years(parameter, v, date)
}

fn in_years(parameter: &str, v: &str, d: NaiveDate) -> Result<NaiveDate, ApiError> {
    if YEARS.contains(&chrono::Datelike::year(&d)) {
        Ok(d)
    } else {
        Err(ApiError::invalid(
            parameter,
            format!(
                "{parameter}: {} is outside {}–{}",
                safe_text(v),
                YEARS.start(),
                YEARS.end()
            ),
        ))
    }
}

/// `YYYY-MM` (years 2000–2100).
pub fn parse_month(parameter: &str, v: &str) -> Result<NaiveDate, ApiError> {
    let v = v.trim();
    let d = NaiveDate::parse_from_str(&format!("{v}-01"), "%Y-%m-%d")
        .ok()
        .filter(|_| v.len() == 7)
        .ok_or_else(|| {
            ApiError::bad(
                parameter,
                format!("{parameter}: {:?} is not a month (YYYY-MM)", safe_text(v)),
            )
        })?;
    in_years(parameter, v, d)
}

/// A filter value: trimmed, at most [`MAX_VALUE_CHARS`] characters of letters, digits, space and
/// `_-./+():`.
pub fn filter_value(parameter: &str, v: &str) -> Result<String, ApiError> {
    let v = v.trim();
    if v.chars().count() > MAX_VALUE_CHARS {
        return Err(ApiError::invalid(
            parameter,
            format!("{parameter}: a value is longer than {MAX_VALUE_CHARS} characters"),
        ));
    }
    if let Some(c) = v
        .chars()
        .find(|&c| !(c.is_alphanumeric() || " _-./+():".contains(c)))
    {
        return Err(ApiError::bad(
            parameter,
            format!(
                "{parameter}: the value {:?} contains {c:?}; only letters, digits, space and _-./+(): are allowed",
                safe_text(v)
            ),
        ));
    }
    Ok(v.to_string())
}

/// Validate, deduplicate and sort a list of filter values; `TODAS`/`TODOS`/`ALL` mean "no filter".
pub fn filter_list(
    parameter: &str,
    values: &[String],
    max: usize,
) -> Result<Vec<String>, ApiError> {
    check_list_len(parameter, values.len(), max)?;
    let mut out = Vec::with_capacity(values.len());
    let mut all = false;
    // Every value is checked, also after an "all": `TODAS,';DROP` is refused, not cut short.
    for v in values {
        let v = filter_value(parameter, v)?;
        if is_all(&v) {
            all = true;
        } else if !v.is_empty() {
            out.push(v);
        }
    }
    if all {
        return Ok(Vec::new());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// `TODAS`/`TODOS`/`ALL` (any case): "no filter".
pub fn is_all(v: &str) -> bool {
    matches!(v.to_ascii_uppercase().as_str(), "TODAS" | "TODOS" | "ALL")
}

/// Text safe to echo back in an error message: printable, at most 80 characters.
pub fn safe_text(v: &str) -> String {
    let mut s: String = v.chars().filter(|c| !c.is_control()).take(80).collect();
    if v.chars().count() > 80 {
        s.push('…');
    }
    s
}

/// The shape a request body must have beyond what serde checks: serde lets a struct be read
/// from an array (`[]`, `[null]`) and ignores nothing else, so the body is first checked to be
/// an object whose [`OBJECT_FIELDS`](JsonObject::OBJECT_FIELDS) are objects too and whose arrays
/// hold only strings, numbers or booleans (every list of the API is a list of values).
pub trait JsonObject {
    /// Fields whose value must be a JSON object (e.g. `filters`).
    const OBJECT_FIELDS: &'static [&'static str] = &[];
}

/// A JSON body, parsed with the path of the offending field in the error (400), within the body
/// size limit (413), of type JSON (415), one value with nothing after it, of the
/// [`JsonObject`] shape.
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned + JsonObject,
    S: Send + Sync + Limits,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = state.body_limit();
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let v = v.to_ascii_lowercase();
                v.starts_with("application/json") || v.contains("+json")
            })
            .unwrap_or(false);
        // Reading stops at the limit, whatever Content-Length said.
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| ApiError::PayloadTooLarge(limit))?;
        if bytes.is_empty() {
            return serde_json::from_slice(b"{}")
                .map(JsonBody)
                .map_err(|_| ApiError::BadRequest {
                    parameter: None,
                    message: "a JSON body is required".into(),
                });
        }
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "the body must be JSON (Content-Type: application/json)".into(),
            ));
        }
        // One JSON value and nothing after it (from_slice refuses trailing data).
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| ApiError::BadRequest {
                parameter: None,
                message: format!("the body is not valid JSON: {e}"),
            })?;
        check_shape(&value, T::OBJECT_FIELDS)?;
        serde_path_to_error::deserialize(value)
            .map(JsonBody)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                ApiError::BadRequest {
                    message: format!("{path}: {inner}"),
                    parameter: (path != ".").then_some(path),
                }
            })
    }
}

/// The [`JsonObject`] rules on a parsed body.
fn check_shape(body: &serde_json::Value, object_fields: &[&str]) -> Result<(), ApiError> {
    use serde_json::Value;
    let Value::Object(top) = body else {
        return Err(ApiError::BadRequest {
            parameter: None,
            message: "the body must be a JSON object".into(),
        });
    };
    for f in object_fields {
        if let Some(v) = top.get(*f)
            && !v.is_object()
        {
            return Err(ApiError::bad(*f, format!("{f}: must be a JSON object")));
        }
    }
    fn arrays(v: &Value, path: &str) -> Result<(), ApiError> {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    arrays(v, &p)?;
                }
                Ok(())
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if !(item.is_string() || item.is_number() || item.is_boolean()) {
                        let p = safe_text(&format!("{path}[{i}]"));
                        return Err(ApiError::bad(
                            p.clone(),
                            format!("{p}: a list may hold only strings, numbers or booleans"),
                        ));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    arrays(body, "")
}

/// One path segment (`{table_name}`, `{agent_id}`), refused with a JSON 400 when it is not
/// UTF-8 after percent-decoding or longer than 256 bytes (axum's own rejection is plain text).
pub struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) if v.len() <= 256 => Ok(PathParam(v)),
            Ok(_) => Err(ApiError::bad(
                "path",
                "a path segment is longer than 256 bytes",
            )),
            Err(_) => Err(ApiError::bad(
                "path",
                "a path segment is not valid UTF-8 text after percent-decoding",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_repeated_or_comma_separated() {
        let mut q = Query::parse("cartera=B&cartera=A,C&x=1", 10).unwrap();
        assert_eq!(q.list(&["cartera"]).unwrap(), vec!["B", "A", "C"]);
        assert!(q.finish().is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(matches!(
            filter_value("cartera", "TEMPRANA'; DROP TABLE x; --"),
            Err(ApiError::BadRequest { .. })
        ));
        assert!(filter_value("cartera", "TEMPRANA\"").is_err());
        assert!(filter_value("cartera", "a%b").is_err());
        assert_eq!(filter_value("tramo", " TRAMO 1 ").unwrap(), "TRAMO 1");
        assert_eq!(filter_value("servicio", "Móvil").unwrap(), "Móvil");
        let many: Vec<String> = (0..11).map(|i| i.to_string()).collect();
        assert!(matches!(
            filter_list("cartera", &many, 10),
            Err(ApiError::Unprocessable { .. })
        ));
        assert_eq!(
            filter_list("cartera", &["B".into(), "A".into(), "B".into()], 10).unwrap(),
            vec!["A", "B"]
        );
        assert!(
            filter_list("cartera", &["TODAS".into(), "A".into()], 10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn dates() {
        assert_eq!(
            parse_date("d", "2025-06-30").unwrap(),
            NaiveDate::from_ymd_opt(2025, 6, 30).unwrap()
        );
        assert!(parse_date("d", "2025-06-30T10:00:00").is_ok());
        assert!(matches!(
            parse_date("d", "2025-13-01"),
            Err(ApiError::BadRequest { .. })
        ));
        assert!(parse_date("d", "30/06/2025").is_err());
        assert!(parse_date("d", "2025-06-301").is_err());
        assert!(matches!(
            parse_date("d", "1900-01-01"),
            Err(ApiError::Unprocessable { .. })
        ));
        assert!(parse_month("m", "2025-06").is_ok());
        assert!(parse_month("m", "2025-6").is_err());
    }

    /// Issue 14 item 10: values are parsed whole; nothing after a valid prefix is ignored.
    #[test]
    fn whole_values_only() {
        assert!(matches!(
            parse_date("d", "2025-06-30T99:99:99';DROP TABLE x"),
            Err(ApiError::BadRequest { .. })
        ));
        assert!(parse_date("d", "2025-06-30Tgarbage").is_err());
        assert!(parse_date("d", "2025-06-30 ").is_ok());
        assert!(parse_date("d", "2025-06-30T10:00:00Z").is_ok());
        assert!(parse_date("d", "2025-06-30T10:00:00.123-05:00").is_ok());
        assert!(parse_date("d", "2025-06-30 10:00:00").is_ok());
        assert!(matches!(
            parse_month("m", "0000-01"),
            Err(ApiError::Unprocessable { .. })
        ));
        assert!(matches!(
            filter_list("cartera", &["TODAS".into(), "';DROP".into()], 10),
            Err(ApiError::BadRequest { .. })
        ));
        assert!(matches!(
            filter_list("cartera", &["TODAS".into(), "x".repeat(65)], 10),
            Err(ApiError::Unprocessable { .. })
        ));
    }

    #[test]
    fn body_shapes() {
        use serde_json::json;
        assert!(check_shape(&json!([]), &[]).is_err());
        assert!(check_shape(&json!("x"), &[]).is_err());
        assert!(check_shape(&json!({"filters": []}), &["filters"]).is_err());
        assert!(check_shape(&json!({"filters": [null]}), &["filters"]).is_err());
        let e = check_shape(&json!({"filters": {"cartera": [null]}}), &["filters"]).unwrap_err();
        assert!(
            matches!(e, ApiError::BadRequest { parameter: Some(p), .. } if p == "filters.cartera[0]")
        );
        assert!(check_shape(&json!({"tables": [["a"]]}), &[]).is_err());
        assert!(check_shape(&json!({"tables": [{"a": 1}]}), &[]).is_err());
        assert!(
            check_shape(
                &json!({"filters": {"cartera": ["A"], "vencimiento": [5]}}),
                &["filters"]
            )
            .is_ok()
        );
    }
}
