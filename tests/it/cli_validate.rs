//! `pulso-flow validate` / `explain` on good and broken pipeline files: exit codes and
//! `file:line:col` errors with hints. No database needed.

use pulso_testkit as common;

use common::{cli, text, write};

const GOOD: &str = "\
tables:
  - name: pagos
    source: { kind: csv, path: pagos.csv }
    target: raw.pagos
    columns:
      nro_documento: text
      monto_cancelado: numeric(15,2)
      fecha_pago: date
      creado_el: timestamptz
    primary_key: [nro_documento, fecha_pago, monto_cancelado]
    incremental: { column: creado_el, type: timestamp, lookback: 2d }
builds:
  - name: daily
    sql: SELECT 1
    depends_on: [pagos]
";

/// Validate `content` (next to the `pagos.csv` that GOOD reads) and return (exit code, stderr,
/// the file path as the CLI printed it).
fn validate(content: &str, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "pagos.csv", "nro_documento\n");
    validate_in(dir.path(), content, env)
}

/// Validate `content` written as `p.yaml` in `dir`; the CLI runs in the package folder, so a
/// relative path that resolves only against `dir` proves it is read from the pipeline's folder.
fn validate_in(
    dir: &std::path::Path,
    content: &str,
    env: &[(&str, &str)],
) -> (Option<i32>, String, String) {
    let path = write(dir, "p.yaml", content);
    let path_s = path.display().to_string();
    let out = cli("postgres://127.0.0.1:1/none", &["validate", &path_s], env);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
        path_s,
    )
}

/// 1-based line and column of the first `needle` in `content`.
fn position_of(content: &str, needle: &str) -> (u32, u32) {
    let (i, line) = content
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in the pipeline"));
    let col = line.find(needle).expect("found") + 1;
    (i as u32 + 1, col as u32)
}

fn assert_error_at(content: &str, line: u32, col: u32, needle: &str) {
    let (code, out, path) = validate(content, &[]);
    assert_eq!(code, Some(2), "{out}");
    let loc = format!("{path}:{line}:{col}: error:");
    assert!(out.contains(&loc), "expected {loc} in:\n{out}");
    assert!(out.contains(needle), "expected {needle:?} in:\n{out}");
    assert!(out.contains("hint:"), "expected a hint in:\n{out}");
}

#[test]
fn a_good_file_validates() {
    let (code, out, _) = validate(GOOD, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ok (1 tables, 1 builds, 1 edges)"), "{out}");
}

#[test]
fn unknown_key_is_located() {
    let bad = GOOD.replace(
        "    primary_key:",
        "    primary_keys: [x]\n    primary_key:",
    );
    assert_error_at(&bad, 10, 5, "primary_keys");
}

#[test]
fn missing_primary_key_is_located() {
    let bad = GOOD.replace(
        "    primary_key: [nro_documento, fecha_pago, monto_cancelado]\n",
        "",
    );
    assert_error_at(&bad, 2, 11, "table pagos has no primary_key");
}

#[test]
fn cycles_are_located() {
    let bad = GOOD.replace(
        "    incremental: { column: creado_el, type: timestamp, lookback: 2d }\n",
        "    incremental: { column: creado_el, type: timestamp, lookback: 2d }\n    depends_on: [daily]\n",
    );
    assert_error_at(&bad, 16, 18, "dependency cycle: ");
}

#[test]
fn unknown_dependencies_are_located() {
    let bad = GOOD.replace("depends_on: [pagos]", "depends_on: [pagoz]");
    assert_error_at(&bad, 15, 18, "unknown dependency \"pagoz\"");
}

#[test]
fn undefined_environment_variables_are_located() {
    let bad = GOOD.replace(
        "target: raw.pagos",
        "target: ${PF_TEST_UNDEFINED_SCHEMA}.pagos",
    );
    assert_error_at(
        &bad,
        4,
        13,
        "environment variable PF_TEST_UNDEFINED_SCHEMA is not defined",
    );
    // Defined (or defaulted) variables are fine.
    let (code, out, _) = validate(&bad, &[("PF_TEST_UNDEFINED_SCHEMA", "raw")]);
    assert_eq!(code, Some(0), "{out}");
    let defaulted = GOOD.replace(
        "target: raw.pagos",
        "target: ${PF_TEST_UNDEFINED_SCHEMA:-raw}.pagos",
    );
    assert_eq!(validate(&defaulted, &[]).0, Some(0));
}

#[test]
fn bad_type_names_are_located() {
    let bad = GOOD.replace(
        "monto_cancelado: numeric(15,2)",
        "monto_cancelado: numerc(15,2)",
    );
    assert_error_at(&bad, 7, 24, "column monto_cancelado");
    let bad = GOOD.replace("type: timestamp,", "type: timestmp,");
    assert_error_at(&bad, 11, 45, "unknown incremental type \"timestmp\"");
}

/// A file source whose file is missing is refused by `validate` exactly like a build whose SQL
/// file is missing: `file:line:col` of the path, the resolved path, a hint on how paths resolve.
#[test]
fn missing_source_files_are_located_like_missing_build_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("data")).expect("mkdir");
    write(&dir.path().join("data"), "there.ndjson", "{}\n");
    let cases = [
        // (pipeline, the text the error points at, message)
        (
            GOOD.replace("path: pagos.csv", "path: data/pagos.csv"),
            "data/pagos.csv",
            format!(
                "table pagos: source file {} does not exist",
                dir.path().join("data/pagos.csv").display()
            ),
        ),
        (
            GOOD.replace("path: pagos.csv", "path: data"),
            "data }",
            format!(
                "table pagos: source path {} is a directory, not a file",
                dir.path().join("data").display()
            ),
        ),
        (
            GOOD.replace("path: pagos.csv", "path: \"data/*.ndjson\""),
            "\"data/*.ndjson\"",
            "does not exist".to_string(),
        ),
        (
            GOOD.replace(
                "    source: { kind: csv, path: pagos.csv }\n",
                "    source:\n      kind: parquet\n      path: /nonexistent/pulso/x.parquet\n",
            ),
            "/nonexistent/pulso/x.parquet",
            "table pagos: source file /nonexistent/pulso/x.parquet does not exist".to_string(),
        ),
        (
            GOOD.replace("    sql: SELECT 1\n", "    file: sql/daily.sql\n"),
            "sql/daily.sql",
            format!(
                "build daily: cannot read {}",
                dir.path().join("sql/daily.sql").display()
            ),
        ),
    ];
    for (content, at, message) in &cases {
        let (code, out, path) = validate_in(dir.path(), content, &[]);
        assert_eq!(code, Some(2), "{out}");
        let (line, col) = position_of(content, at);
        let loc = format!("{path}:{line}:{col}: error: ");
        assert!(out.contains(&loc), "expected {loc} in:\n{out}");
        assert!(
            out.contains(message.as_str()),
            "expected {message:?} in:\n{out}"
        );
        assert!(
            out.contains("hint: paths are relative to the folder of the pipeline file"),
            "{out}"
        );
    }
    // Present files validate, whichever kind and however they are written.
    let ok = GOOD.replace(
        "    source: { kind: csv, path: pagos.csv }\n",
        "    source:\n      kind: ndjson\n      path: ./data/../data/there.ndjson\n",
    );
    let (code, out, _) = validate_in(dir.path(), &ok, &[]);
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn explain_json_works_without_a_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "pagos.csv", "nro_documento\n");
    let path = write(dir.path(), "p.yaml", GOOD);
    let out = cli(
        "postgres://postgres@127.0.0.1:1/nowhere",
        &["explain", &path.display().to_string(), "--format", "json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let names: Vec<&str> = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pagos", "daily"]);
    assert_eq!(v["nodes"][0]["kind"], "table");
    assert_eq!(v["nodes"][1]["kind"], "sql");
    assert_eq!(v["edges"], serde_json::json!([["pagos", "daily"]]));
    assert!(
        v["nodes"][0]["window"]
            .as_str()
            .unwrap()
            .starts_with("unknown: no database"),
        "{v}"
    );
    let merge = v["nodes"][0]["sql"]["merge"].as_str().unwrap();
    assert!(
        merge.contains(
            "ON CONFLICT (\"nro_documento\", \"fecha_pago\", \"monto_cancelado\") DO UPDATE"
        ),
        "{merge}"
    );
    // The same in DOT.
    let out = cli(
        "postgres://postgres@127.0.0.1:1/nowhere",
        &["explain", &path.display().to_string(), "--format", "dot"],
        &[],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"pagos\" -> \"daily\";"),
        "{}",
        text(&out)
    );
}
