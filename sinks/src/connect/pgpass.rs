//! The password file (`~/.pgpass`, `PGPASSFILE`, `passfile=`), read as libpq reads it.
//!
//! Lines `hostname:port:database:username:password`; `*` in any of the first four fields matches
//! anything; `\:` and `\\` escape; `#` starts a comment line; the first matching line wins. A
//! Unix-socket connection matches the host name `localhost`. On Unix the file is ignored (with a
//! warning) when group or others can read it, as libpq does.

use std::path::Path;

/// What a connection is looked up by.
pub struct Lookup<'a> {
    pub host: &'a str,
    pub port: &'a str,
    pub dbname: &'a str,
    pub user: &'a str,
}

/// The password of the first matching line, if the file exists, is private and has one.
pub fn lookup(path: &Path, key: &Lookup<'_>) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        tracing::warn!(file = %path.display(), "password file is not a plain file; ignored");
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(file = %path.display(),
                "password file has group or world access; permissions should be u=rw (0600) or less; ignored");
            return None;
        }
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read the password file");
            return None;
        }
    };
    find(&text, key)
}

/// The matching line's password in the file's `text`.
pub fn find(text: &str, key: &Lookup<'_>) -> Option<String> {
    let host = if key.host.is_empty() || key.host.starts_with('/') {
        "localhost"
    } else {
        key.host
    };
    let wanted = [host, key.port, key.dbname, key.user];
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .find_map(|line| {
            let fields = split_fields(line.trim_end_matches('\r'));
            if fields.len() < 5 {
                return None;
            }
            let matches = fields[..4]
                .iter()
                .zip(wanted)
                .all(|(f, w)| f == "*" || f == w);
            // The password is everything after the fourth separator (it may contain ':').
            matches.then(|| fields[4..].join(":"))
        })
}

/// Split on unescaped ':' and unescape `\:` and `\\`.
fn split_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            ':' => fields.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    fields.push(current);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# comment\n\
        db.example.com:5432:pulso:ana:first\n\
        *:5432:*:ana:second\n\
        localhost:*:*:postgres:sock\\:et\n\
        h\\:x:*:*:*:pa:ss\\\\word\n";

    fn get(host: &str, port: &str, db: &str, user: &str) -> Option<String> {
        find(
            FILE,
            &Lookup {
                host,
                port,
                dbname: db,
                user,
            },
        )
    }

    #[test]
    fn first_match_wins_with_wildcards_and_escapes() {
        assert_eq!(
            get("db.example.com", "5432", "pulso", "ana").as_deref(),
            Some("first")
        );
        assert_eq!(get("other", "5432", "x", "ana").as_deref(), Some("second"));
        assert_eq!(get("other", "5433", "x", "ana"), None);
        // A Unix socket matches `localhost`.
        assert_eq!(
            get("/var/run/postgresql", "5432", "x", "postgres").as_deref(),
            Some("sock:et")
        );
        assert_eq!(get("h:x", "1", "d", "u").as_deref(), Some("pa:ss\\word"));
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_is_ignored() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pgpass-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pgpass");
        std::fs::write(&path, "*:*:*:*:secret\n").unwrap();
        let key = Lookup {
            host: "h",
            port: "5432",
            dbname: "d",
            user: "u",
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(lookup(&path, &key), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(lookup(&path, &key).as_deref(), Some("secret"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
