//! The files a pipeline names — a file source's `path`, a build's `file:` — checked when the
//! pipeline is compiled, so `validate` refuses a missing one the same way for both and `run`
//! never starts a table whose file is not there.
//!
//! Both resolve alike: an absolute path as written, a relative one against the folder of the
//! pipeline file (never the working directory, so a run behaves the same from any folder). A file
//! source reads exactly one file: a folder or a glob pattern is not a file and is refused.

use std::path::{Path, PathBuf};

use pulso_operators::source::SourceSpec;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::Compiler;
use crate::spec::TableSpec;

/// Where each table's `source.path` is written, in table order (`None`: no `path` key).
///
/// The source specs themselves carry no positions (they live in `pulso-operators`, which knows
/// nothing of YAML), so the text is read a second time for just these spans. Any problem here
/// was already reported by the main parse; an empty list then only costs precision.
pub(super) fn source_path_spans(text: &str) -> Vec<Option<Spanned<String>>> {
    #[derive(Deserialize)]
    struct Pipeline {
        #[serde(default)]
        tables: Vec<Table>,
    }
    #[derive(Deserialize)]
    struct Table {
        #[serde(default)]
        source: Option<Source>,
    }
    #[derive(Deserialize)]
    struct Source {
        #[serde(default)]
        path: Option<Spanned<String>>,
    }
    serde_saphyr::from_str::<Pipeline>(text)
        .map(|p| {
            p.tables
                .into_iter()
                .map(|t| t.source.and_then(|s| s.path))
                .collect()
        })
        .unwrap_or_default()
}

/// The hint of every missing or unreadable file: how its path was resolved.
pub(super) fn hint(base_dir: &Path) -> String {
    let folder = if base_dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base_dir
    };
    format!(
        "paths are relative to the folder of the pipeline file ({}), not to the working directory",
        folder.display()
    )
}

/// The file a pipeline path names, resolved like [`pulso_operators::source::SourceContext::resolve`].
pub(super) fn resolve(base_dir: &Path, path: &Path) -> PathBuf {
    base_dir.join(path)
}

/// `Ok` when `path` is a regular file this process can open; otherwise what is wrong with it.
fn check_source_file(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(format!(
            "source path {} is a directory, not a file",
            path.display()
        )),
        Ok(_) => std::fs::File::open(path)
            .map(|_| ())
            .map_err(|e| format!("cannot read source file {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let pattern = path.to_string_lossy().contains(['*', '?', '[']);
            Err(format!(
                "source file {} does not exist{}",
                path.display(),
                if pattern {
                    " (patterns are not expanded)"
                } else {
                    ""
                }
            ))
        }
        Err(e) => Err(format!("cannot read source file {}: {e}", path.display())),
    }
}

impl Compiler<'_> {
    /// Refuses a file source whose file is missing, a folder or unreadable, at its `path`.
    pub(super) fn check_source_file(&mut self, t: &TableSpec, at: Option<&Spanned<String>>) {
        let path = match &t.source.value {
            SourceSpec::Csv(s) => &s.path,
            SourceSpec::Ndjson(s) => &s.path,
            SourceSpec::Parquet(s) => &s.path,
            SourceSpec::Generate(_) | SourceSpec::Bigquery(_) => return,
        };
        let resolved = resolve(self.base_dir, path);
        if let Err(problem) = check_source_file(&resolved) {
            let message = format!("table {}: {problem}", t.name.value);
            let hint = Some(format!(
                "{}; a file source reads exactly one file (no folders or globs)",
                hint(self.base_dir)
            ));
            match at {
                Some(at) => self.error(at, message, hint),
                None => self.error(&t.source, message, hint),
            }
        }
    }
}
