//! libpq connection strings → keyword/value pairs.
//!
//! Both forms libpq accepts: the URI (`postgresql://user:pw@host1:5432,host2/db?sslmode=require`)
//! and the keyword/value string (`host=db port=5432 sslmode='verify-full'`). The result uses
//! libpq's keyword names, so the environment (`PG*`) and the URI fill the same slots. Errors name
//! the keyword or the part of the URI, never a value: a value may be a password.

use std::collections::BTreeMap;

/// Keyword → value, as written (later occurrences win, as in libpq).
pub type Params = BTreeMap<String, String>;

/// Why a connection string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid connection string: {0}")]
pub struct ParamsError(pub String);

fn err(message: impl Into<String>) -> ParamsError {
    ParamsError(message.into())
}

/// Parse a URI or a keyword/value connection string. An empty string has no parameters (every
/// value then comes from the environment or libpq's defaults).
pub fn parse(text: &str) -> Result<Params, ParamsError> {
    let trimmed = text.trim();
    for prefix in ["postgresql://", "postgres://"] {
        if let Some(rest) = trimmed.strip_prefix(prefix) {
            return parse_uri(rest);
        }
    }
    if trimmed.contains("://") && !trimmed.contains('=') {
        return Err(err("the URI scheme must be postgresql:// or postgres://"));
    }
    parse_keywords(trimmed)
}

/// `[user[:password]@][host[:port][,...]][/dbname][?key=value&...]` (after the scheme).
fn parse_uri(rest: &str) -> Result<Params, ParamsError> {
    let mut params = Params::new();
    let mut s = rest;
    // User info ends at the first '@' before any '/' (libpq's rule: a '/' or '@' inside the
    // password must be percent-encoded).
    if let Some(at) = s.find(['@', '/']).filter(|&i| s.as_bytes()[i] == b'@') {
        let userinfo = &s[..at];
        s = &s[at + 1..];
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        if !user.is_empty() {
            params.insert("user".into(), decode(user, "the user name")?);
        }
        if let Some(p) = password {
            params.insert("password".into(), decode(p, "the password")?);
        }
    }
    // Hosts and ports, up to the path or the query.
    let end = s.find(['/', '?']).unwrap_or(s.len());
    let (hostspec, tail) = s.split_at(end);
    if !hostspec.is_empty() {
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for part in split_hosts(hostspec)? {
            let (host, port) = part;
            hosts.push(decode(host, "a host name")?);
            ports.push(port.to_string());
        }
        if hosts.iter().any(|h| !h.is_empty()) {
            params.insert("host".into(), hosts.join(","));
        }
        if ports.iter().any(|p| !p.is_empty()) {
            params.insert("port".into(), ports.join(","));
        }
    }
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    if let Some(db) = path.strip_prefix('/')
        && !db.is_empty()
    {
        params.insert("dbname".into(), decode(db, "the database name")?);
    }
    if let Some(query) = query {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| err("a URI parameter without '=' (expected key=value)"))?;
            let key = decode(k, "a parameter name")?;
            let value = decode(v, &format!("the value of {key}"))?;
            // JDBC's ssl=true, which libpq translates too.
            if key == "ssl" {
                if value != "true" {
                    return Err(err("ssl= only accepts true (use sslmode=)"));
                }
                params.insert("sslmode".into(), "require".into());
                continue;
            }
            params.insert(key, value);
        }
    }
    Ok(params)
}

/// `host[:port]` items separated by commas; `[v6]` hosts keep their colons.
fn split_hosts(spec: &str) -> Result<Vec<(&str, &str)>, ParamsError> {
    let mut out = Vec::new();
    for item in spec.split(',') {
        if let Some(inner) = item.strip_prefix('[') {
            let close = inner
                .find(']')
                .ok_or_else(|| err("an IPv6 host without its closing ']'"))?;
            let host = &inner[..close];
            let after = &inner[close + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => p,
                None if after.is_empty() => "",
                None => return Err(err("unexpected text after an IPv6 host")),
            };
            out.push((host, port));
        } else {
            match item.split_once(':') {
                Some((h, p)) => out.push((h, p)),
                None => out.push((item, "")),
            }
        }
    }
    for (_, port) in &out {
        if !port.chars().all(|c| c.is_ascii_digit()) {
            return Err(err("a port that is not a number"));
        }
    }
    Ok(out)
}

/// Percent-decoding as libpq does it: `%XX` must be two hex digits and never `%00`.
fn decode(s: &str, what: &str) -> Result<String, ParamsError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| err(format!("invalid percent-encoding in {what}")))?;
            if hex == 0 {
                return Err(err(format!("forbidden %00 in {what}")));
            }
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| err(format!("{what} is not UTF-8 once decoded")))
}

/// `key = value` pairs separated by white space; values may be single-quoted, and a backslash
/// escapes the next character (quoted or not).
fn parse_keywords(s: &str) -> Result<Params, ParamsError> {
    let mut params = Params::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(params);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(err(format!("missing \"=\" after \"{key}\"")));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => {
                        return Err(err(format!("unterminated quoted value of \"{key}\"")));
                    }
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => {
                            return Err(err(format!("unterminated quoted value of \"{key}\"")));
                        }
                    },
                    Some('\'') => break,
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some(escaped) = chars.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        params.insert(key, value);
    }
}

/// Quote `value` for a keyword/value string (the inverse of [`parse`] for one value).
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<(String, String)> {
        parse(s).unwrap().into_iter().collect()
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<_> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn uri_with_everything() {
        assert_eq!(
            p(
                "postgresql://ana:p%40ss%2Fw:rd@db.example.com:6543/pulso?sslmode=verify-full&application_name=x%20y"
            ),
            kv(&[
                ("user", "ana"),
                ("password", "p@ss/w:rd"),
                ("host", "db.example.com"),
                ("port", "6543"),
                ("dbname", "pulso"),
                ("sslmode", "verify-full"),
                ("application_name", "x y"),
            ])
        );
    }

    #[test]
    fn uri_multi_host_ipv6_socket_and_defaults() {
        assert_eq!(
            p("postgres://h1:5432,[::1]:5433,h3/db"),
            kv(&[
                ("host", "h1,::1,h3"),
                ("port", "5432,5433,"),
                ("dbname", "db")
            ])
        );
        assert_eq!(
            p("postgresql://%2Fvar%2Frun%2Fpostgresql/db"),
            kv(&[("host", "/var/run/postgresql"), ("dbname", "db")])
        );
        assert_eq!(p("postgresql://"), kv(&[]));
        assert_eq!(
            p("postgresql:///db?host=/tmp"),
            kv(&[("dbname", "db"), ("host", "/tmp")])
        );
        assert_eq!(
            p("postgres://u@h?ssl=true"),
            kv(&[("user", "u"), ("host", "h"), ("sslmode", "require")])
        );
    }

    #[test]
    fn keyword_strings_with_quotes_and_escapes() {
        assert_eq!(
            p(r"host=db  port = 5432 password='it\'s a \\ secret' user=a\ b"),
            kv(&[
                ("host", "db"),
                ("port", "5432"),
                ("password", r"it's a \ secret"),
                ("user", "a b")
            ])
        );
        assert_eq!(p(""), kv(&[]));
        assert_eq!(p("  "), kv(&[]));
        assert_eq!(
            p("sslmode=require sslrootcert=system"),
            kv(&[("sslmode", "require"), ("sslrootcert", "system")])
        );
        // Later occurrences win.
        assert_eq!(p("port=1 port=2"), kv(&[("port", "2")]));
        assert!(parse("host").is_err());
    }

    #[test]
    fn quote_round_trips() {
        for v in ["plain", "with space", r"back\slash", "it's", ""] {
            let text = format!("password={}", quote(v));
            assert_eq!(parse(&text).unwrap()["password"], v);
        }
    }

    #[test]
    fn errors_never_contain_values() {
        for bad in [
            "postgresql://u:s3cr%zzet@h/db",
            "postgresql://u:s3cret@h:port/db",
            "host=h password='s3cret",
            "mysql://u:s3cret@h/db",
            "postgresql://u:s3cret@[::1/db",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(!e.contains("s3cr"), "{bad}: {e}");
        }
    }
}
