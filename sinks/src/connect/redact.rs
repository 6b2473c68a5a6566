//! The one place that makes connection strings safe to show.
//!
//! Any text that may hold a database or Redis URL, or a libpq keyword/value string, goes through
//! [`redact`] before it is logged, printed or returned by the API: the password of a URL's user
//! info (`scheme://user:PASSWORD@host`), `password=` in a URL's query, and `password=` in a
//! keyword/value string become `***`.

const MASK: &str = "***";

/// `text` with every password it holds replaced by `***`.
pub fn redact(text: &str) -> String {
    let text = redact_userinfo(text);
    redact_password_params(&text)
}

/// `scheme://user:secret@host` → `scheme://user:***@host`, for every URL in `text`. The user
/// info ends at the last '@' before white space (a raw '@' or '/' in a password is then still
/// covered).
fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let token_end = tail.find(char::is_whitespace).unwrap_or(tail.len());
        let token = &tail[..token_end];
        match token.rfind('@') {
            Some(at) => {
                let userinfo = &token[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon + 1]);
                        out.push_str(MASK);
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&token[at..]);
            }
            None => out.push_str(token),
        }
        rest = &tail[token_end..];
    }
    out.push_str(rest);
    out
}

/// `password=secret` (a URL query or a keyword/value string, quoted or not) → `password=***`.
fn redact_password_params(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = find_password_key(rest) {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        // Keep the key and '=' with the spaces around it.
        let eq = tail.find('=').map(|e| e + 1).unwrap_or(tail.len());
        let mut value_start = eq;
        while tail[value_start..].starts_with([' ', '\t']) {
            value_start += 1;
        }
        out.push_str(&tail[..value_start]);
        let value = &tail[value_start..];
        let value_len = if let Some(quoted) = value.strip_prefix('\'') {
            let mut len = 1;
            let mut chars = quoted.char_indices();
            loop {
                match chars.next() {
                    Some((_, '\\')) => {
                        chars.next();
                    }
                    Some((j, '\'')) => {
                        len += j + 1;
                        break;
                    }
                    Some(_) => {}
                    None => {
                        len = value.len();
                        break;
                    }
                }
            }
            len
        } else {
            value
                .find(|c: char| c.is_whitespace() || c == '&' || c == '#')
                .unwrap_or(value.len())
        };
        out.push_str(MASK);
        rest = &value[value_len..];
    }
    out.push_str(rest);
    out
}

/// Start of the next `password` keyword followed by optional blanks and '=', at a word start.
fn find_password_key(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("password") {
        let at = from + i;
        let before_ok = at == 0
            || matches!(
                lower.as_bytes()[at - 1],
                b' ' | b'\t' | b'\n' | b'?' | b'&' | b'"' | b'\''
            );
        let after = lower[at + "password".len()..].trim_start_matches([' ', '\t']);
        if before_ok && after.starts_with('=') {
            return Some(at);
        }
        from = at + "password".len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            redact("postgres://ana:s3cret@db:5432/pulso?sslmode=require"),
            "postgres://ana:***@db:5432/pulso?sslmode=require"
        );
        assert_eq!(
            redact("rediss://default:p@ss/w@cache:6380/0"),
            "rediss://default:***@cache:6380/0"
        );
        assert_eq!(
            redact("postgresql://db/x?user=a&password=s3cret&sslmode=verify-full"),
            "postgresql://db/x?user=a&password=***&sslmode=verify-full"
        );
        assert_eq!(redact("postgres://ana@db/x"), "postgres://ana@db/x");
        assert_eq!(
            redact("error: a=postgres://u:one@h/x and redis://:two@r"),
            "error: a=postgres://u:***@h/x and redis://:***@r"
        );
    }

    #[test]
    fn keyword_strings_lose_their_passwords() {
        assert_eq!(
            redact("host=db password=s3cret user=ana"),
            "host=db password=*** user=ana"
        );
        assert_eq!(
            redact(r"host=db password = 'it\'s secret' user=ana"),
            "host=db password = *** user=ana"
        );
        assert_eq!(redact("password="), "password=***");
        // Not a password parameter.
        assert_eq!(redact("no passwordless login"), "no passwordless login");
        assert_eq!(redact("sslpassword=x"), "sslpassword=x");
    }
}
