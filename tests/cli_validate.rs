//! `pulso-flow validate` / `explain` on good and broken pipeline files: exit codes and
//! `file:line:col` errors with hints. No database needed.

mod common;

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

/// Validate `content` and return (exit code, stderr, the file path as the CLI printed it).
fn validate(content: &str, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "p.yaml", content);
    let path_s = path.display().to_string();
    let out = cli("postgres://127.0.0.1:1/none", &["validate", &path_s], env);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
        path_s,
    )
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

#[test]
fn explain_json_works_without_a_database() {
    let dir = tempfile::tempdir().expect("tempdir");
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
