//! Secrets from the environment or from files (`NAME_FILE`), the way Kubernetes and Docker mount
//! them: `DATABASE_URL_FILE=/run/secrets/database-url` instead of `DATABASE_URL=…`.

use std::path::Path;

/// Why a secret could not be read. Messages name variables and files, never contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("both {name} and {name}_FILE are set; set only one of them")]
    Both { name: String },
    #[error("{name}_FILE: cannot read {path}: {reason}")]
    Unreadable {
        name: String,
        path: String,
        reason: String,
    },
    #[error("{name}_FILE: {path} is empty")]
    Empty { name: String, path: String },
}

impl SecretError {
    /// The variable the error is about (`NAME` or `NAME_FILE`).
    pub fn variable(&self) -> String {
        match self {
            SecretError::Both { name } => name.clone(),
            SecretError::Unreadable { name, .. } | SecretError::Empty { name, .. } => {
                format!("{name}_FILE")
            }
        }
    }
}

/// `name`'s value from `env`, or the content of the file `name_FILE` names, with one trailing
/// newline removed (what `echo` and most editors add). Empty variables count as unset. Setting
/// both is an error, and so is a `_FILE` that cannot be read: a deployment that names a secret
/// file must not silently run without it.
pub fn from_env_or_file(
    env: impl Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<String>, SecretError> {
    let direct = env(name).filter(|v| !v.is_empty());
    let file = env(&format!("{name}_FILE")).filter(|v| !v.is_empty());
    match (direct, file) {
        (Some(_), Some(_)) => Err(SecretError::Both { name: name.into() }),
        (Some(v), None) => Ok(Some(v)),
        (None, None) => Ok(None),
        (None, Some(path)) => read_file(name, Path::new(&path)).map(Some),
    }
}

fn read_file(name: &str, path: &Path) -> Result<String, SecretError> {
    let mut text = std::fs::read_to_string(path).map_err(|e| SecretError::Unreadable {
        name: name.into(),
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(SecretError::Empty {
            name: name.into(),
            path: path.display().to_string(),
        });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_file_both_and_unreadable() {
        let dir = std::env::temp_dir().join(format!("pf-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("url");
        std::fs::write(&file, "postgres://u:pw@h/db\n\n").unwrap();
        let path = file.display().to_string();
        let env = |pairs: Vec<(&'static str, String)>| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        };
        assert_eq!(
            from_env_or_file(env(vec![("X", "v".into())]), "X").unwrap(),
            Some("v".into())
        );
        // Only one trailing newline goes.
        assert_eq!(
            from_env_or_file(env(vec![("X_FILE", path.clone())]), "X").unwrap(),
            Some("postgres://u:pw@h/db\n".into())
        );
        assert_eq!(from_env_or_file(env(vec![]), "X").unwrap(), None);
        let both = from_env_or_file(env(vec![("X", "v".into()), ("X_FILE", path.clone())]), "X")
            .unwrap_err();
        assert!(matches!(both, SecretError::Both { .. }));
        let missing =
            from_env_or_file(env(vec![("X_FILE", "/nonexistent/x".into())]), "X").unwrap_err();
        assert_eq!(missing.variable(), "X_FILE");
        assert!(missing.to_string().contains("/nonexistent/x"));
        std::fs::write(&file, "\n").unwrap();
        assert!(matches!(
            from_env_or_file(env(vec![("X_FILE", path)]), "X").unwrap_err(),
            SecretError::Empty { .. }
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
