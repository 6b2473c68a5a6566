//! `${VAR}` and `${VAR:-default}` interpolation of a pipeline file's text from the environment.
//!
//! It runs on the raw text before YAML parsing (as Docker Compose and Vector do), skipping
//! comments, so a variable may hold any scalar. `$$` stands for a literal `$`. An undefined
//! variable without a default is an error located at its `${`.

use crate::error::SpecError;

/// Replace every `${…}` in `text`. `lookup` is the environment (a closure so tests need not touch
/// the process environment). All undefined variables are reported, not just the first.
pub fn interpolate(
    file: &str,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<SpecError>> {
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    for (line_no, line) in text.split_inclusive('\n').enumerate() {
        let code_end = comment_start(line).unwrap_or(line.len());
        let (code, comment) = line.split_at(code_end);
        out.push_str(&interpolate_line(
            file,
            line_no as u64 + 1,
            code,
            lookup,
            &mut errors,
        ));
        out.push_str(comment);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn interpolate_line(
    file: &str,
    line_no: u64,
    code: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<SpecError>,
) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    let mut consumed_chars = 0u64;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        consumed_chars += rest[..pos].chars().count() as u64;
        let after = &rest[pos + 1..];
        let column = consumed_chars + 1;
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
            consumed_chars += 2;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                errors.push(
                    SpecError::new(
                        file,
                        line_no,
                        column,
                        "unterminated ${ in variable reference",
                    )
                    .with_hint("write ${NAME} or ${NAME:-default}; use $$ for a literal $"),
                );
                out.push_str(&rest[pos..]);
                return out;
            };
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            if !is_var_name(name) {
                errors.push(
                    SpecError::new(
                        file,
                        line_no,
                        column,
                        format!("invalid variable name {name:?}"),
                    )
                    .with_hint(
                        "variable names are letters, digits and _ (not starting with a digit)",
                    ),
                );
            } else {
                match (lookup(name), default) {
                    (Some(v), _) => out.push_str(&v),
                    (None, Some(d)) => out.push_str(d),
                    (None, None) => errors.push(
                        SpecError::new(
                            file,
                            line_no,
                            column,
                            format!("environment variable {name} is not defined"),
                        )
                        .with_hint(format!(
                            "export {name}=…, or give a default with ${{{name}:-value}}"
                        )),
                    ),
                }
            }
            let whole = 2 + end + 1; // "${" + inner + "}"
            consumed_chars += rest[pos..pos + whole].chars().count() as u64;
            rest = &rest[pos + whole..];
        } else {
            out.push('$');
            rest = after;
            consumed_chars += 1;
        }
    }
    out.push_str(rest);
    out
}

fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Byte offset where a YAML comment starts on this line: a `#` outside quotes that begins the line
/// or follows whitespace.
fn comment_start(line: &str) -> Option<usize> {
    let mut in_single = false;
    let mut in_double = false;
    let mut prev_space = true;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            '\\' if in_double => {
                escaped = !escaped;
                prev_space = false;
                continue;
            }
            '"' if !in_single && !escaped => in_double = !in_double,
            '\'' if !in_double => in_single = !in_single,
            '#' if !in_single && !in_double && prev_space => return Some(i),
            _ => {}
        }
        escaped = false;
        prev_space = c.is_whitespace();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("db.local".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn replaces_defined_variables_and_defaults() {
        let out = interpolate(
            "p.yaml",
            "a: ${HOST}\nb: ${PORT:-5432}\nc: ${EMPTY:-x}\n",
            &env,
        )
        .unwrap();
        assert_eq!(out, "a: db.local\nb: 5432\nc: \n");
    }

    #[test]
    fn dollar_dollar_is_a_literal_dollar_and_lone_dollars_stay() {
        let out = interpolate("p.yaml", "a: $${HOST} costs $5\n", &env).unwrap();
        assert_eq!(out, "a: ${HOST} costs $5\n");
    }

    #[test]
    fn comments_are_not_interpolated() {
        let out = interpolate(
            "p.yaml",
            "a: 1 # uses ${UNDEFINED}\n# ${ALSO}\nb: '#${HOST}'\n",
            &env,
        )
        .unwrap();
        assert_eq!(out, "a: 1 # uses ${UNDEFINED}\n# ${ALSO}\nb: '#db.local'\n");
    }

    #[test]
    fn undefined_variables_are_located() {
        let errs = interpolate(
            "p.yaml",
            "x: 1\nurl: pg://${USER_X}@${HOST}/${DB_X}\n",
            &env,
        )
        .unwrap_err();
        assert_eq!(errs.len(), 2);
        assert_eq!((errs[0].line, errs[0].column), (2, 11));
        assert!(errs[0].message.contains("USER_X"));
        assert_eq!((errs[1].line, errs[1].column), (2, 29));
        assert!(
            errs[0]
                .to_string()
                .starts_with("p.yaml:2:11: error: environment variable USER_X")
        );
        assert!(
            errs[0]
                .hint
                .as_deref()
                .unwrap_or("")
                .contains("${USER_X:-value}")
        );
    }

    #[test]
    fn unterminated_reference_is_an_error() {
        let errs = interpolate("p.yaml", "a: ${HOST\n", &env).unwrap_err();
        assert_eq!((errs[0].line, errs[0].column), (1, 4));
    }
}
