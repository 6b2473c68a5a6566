//! docs/pipeline.md against the parser: every YAML example of the page compiles as a pipeline,
//! and the "Sources" table lists, for each source kind, exactly the options the parser accepts,
//! each of them used by at least one example. A renamed, added or removed option that the page
//! does not follow (or a page that names an option the parser refuses) fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use pulso_operators::source::SourceSpec;
use serde::Deserialize;
use serde::de::IgnoredAny;

fn page() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/pipeline.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The ```yaml blocks of the page, with the line each starts at.
fn yaml_blocks(page: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in page.lines().enumerate() {
        let fence = line.trim_start();
        match &mut current {
            None if fence == "```yaml" => current = Some((i + 1, String::new())),
            Some(_) if fence.starts_with("```") => blocks.extend(current.take()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// kind → options, from the rows of the "Sources" table: the backquoted identifiers of the
/// options cell.
fn documented_options(page: &str) -> BTreeMap<String, BTreeSet<String>> {
    let section = page
        .split("\n## Sources\n")
        .nth(1)
        .expect("a Sources section");
    let mut table = BTreeMap::new();
    for line in section.lines().skip_while(|l| !l.starts_with('|')) {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(kind), Some(options)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        let Some(kind) = kind.strip_prefix('`').and_then(|k| k.strip_suffix('`')) else {
            continue; // the header and separator rows
        };
        let names = options
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .map(str::to_string)
            .collect();
        table.insert(kind.to_string(), names);
    }
    table
}

/// The options the parser accepts for `kind`, from serde's own "unknown field" message, which
/// lists every field of the variant ("… expected one of path, header, …").
fn parser_options(kind: &str) -> BTreeSet<String> {
    let err = serde_saphyr::from_str::<SourceSpec>(&format!("kind: {kind}\nzz_not_an_option: 1\n"))
        .expect_err("an unknown option is refused")
        .to_string();
    let list = err
        .lines()
        .next()
        .and_then(|l| l.split_once("expected "))
        .map(|(_, list)| list.trim_start_matches("one of "))
        .unwrap_or_else(|| panic!("no field list in {err:?}"));
    let options: BTreeSet<String> = list
        .split(',')
        .map(|o| o.trim().trim_matches('`').to_string())
        .collect();
    assert!(
        options.iter().all(|o| !o.is_empty() && !o.contains(' ')),
        "cannot read the field list of {err:?}"
    );
    options
}

#[derive(Deserialize)]
struct Example {
    #[serde(default)]
    tables: Vec<ExampleTable>,
    #[serde(default)]
    builds: Vec<ExampleBuild>,
}

#[derive(Deserialize)]
struct ExampleTable {
    source: ExampleSource,
}

/// A source as written: its kind and the names of its other keys.
#[derive(Deserialize)]
struct ExampleSource {
    kind: String,
    #[serde(flatten)]
    options: IndexMap<String, IgnoredAny>,
}

#[derive(Deserialize)]
struct ExampleBuild {
    #[serde(default)]
    file: Option<String>,
}

/// The files a compiled example names, created empty under `dir` (absolute paths are mapped
/// into it), so that the existence check of `validate` passes.
fn example_dir(dir: &Path, text: &str) -> String {
    let mut text = text.to_string();
    let example: Example = serde_saphyr::from_str(&text).expect("example parses");
    let mut files: Vec<PathBuf> = example
        .builds
        .iter()
        .filter_map(|b| b.file.as_ref().map(PathBuf::from))
        .collect();
    #[derive(Deserialize)]
    struct Paths {
        #[serde(default)]
        tables: Vec<PathTable>,
    }
    #[derive(Deserialize)]
    struct PathTable {
        source: PathSource,
    }
    #[derive(Deserialize)]
    struct PathSource {
        #[serde(default)]
        path: Option<String>,
    }
    let paths: Paths = serde_saphyr::from_str(&text).expect("example parses");
    for t in paths.tables {
        if let Some(p) = t.source.path {
            if Path::new(&p).is_absolute() {
                let inside = dir.join(p.trim_start_matches('/'));
                text = text.replace(&p, &inside.display().to_string());
                files.push(inside);
            } else {
                files.push(PathBuf::from(p));
            }
        }
    }
    for f in files {
        let f = dir.join(f);
        std::fs::create_dir_all(f.parent().expect("a folder")).expect("mkdir");
        std::fs::write(&f, "").expect("touch");
    }
    text
}

/// The variables the examples use, as a deployment would set them.
fn env(name: &str) -> Option<String> {
    let value = match name {
        "DATABASE_URL" => "postgres://postgres@127.0.0.1:5432/pulso",
        "BQ_PROJECT" => "pulso-project",
        "BQ_DATASET" => "pulso_dataset",
        "UID" => "u42",
        _ => return None,
    };
    Some(value.to_string())
}

#[test]
fn every_yaml_example_of_the_page_compiles() {
    let page = page();
    let blocks = yaml_blocks(&page);
    assert!(blocks.len() >= 4, "found {} YAML examples", blocks.len());
    for (line, text) in &blocks {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = example_dir(dir.path(), text);
        let name = format!("docs/pipeline.md example at line {line}");
        if let Err(e) = pulso_engine::compile::compile_text(&name, dir.path(), &text, &env) {
            panic!("{e}\n--- example:\n{text}");
        }
    }
}

#[test]
fn the_sources_table_lists_exactly_the_parsers_options_and_examples_use_each() {
    let page = page();
    let documented = documented_options(&page);
    let kinds: BTreeSet<&str> = documented.keys().map(String::as_str).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["bigquery", "csv", "generate", "ndjson", "parquet"]),
        "one row per source kind"
    );
    let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, text) in yaml_blocks(&page) {
        let example: Example = serde_saphyr::from_str(&text).expect("example parses");
        for t in example.tables {
            used.entry(t.source.kind)
                .or_default()
                .extend(t.source.options.into_keys());
        }
    }
    for (kind, options) in &documented {
        let parser = parser_options(kind);
        assert_eq!(
            options, &parser,
            "kind {kind}: the Sources table lists {options:?}, the parser accepts {parser:?}"
        );
        let missing: Vec<&String> = options
            .iter()
            .filter(|o| !used.get(kind).is_some_and(|u| u.contains(*o)))
            .collect();
        assert!(
            missing.is_empty(),
            "kind {kind}: no example of docs/pipeline.md uses {missing:?}"
        );
    }
}
