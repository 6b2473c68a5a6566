//! The operator commands: migrate, list, watermarks show/set/reset, and the arguments `run` and
//! `watermarks` refuse (exit 2 with a message that says how to fix them).

use pulso_testkit as common;

use common::{TestDb, cli, text, write};

const PIPELINE: &str = "\
tables:
  - name: pagos
    source: { kind: csv, path: pagos.csv }
    target: t.pagos
    columns: { doc: text, creado_el: timestamptz }
    primary_key: [doc]
    incremental: { column: creado_el, type: timestamp, lookback: 1d }
";

#[tokio::test(flavor = "multi_thread")]
async fn migrate_list_and_watermarks() {
    let db = TestDb::new("cmds").await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "pagos.csv",
        "doc,creado_el\nD1,2025-06-02T10:00:00Z\nD2,2025-06-03T10:00:00Z\n",
    );
    let file = write(dir.path(), "p.yaml", PIPELINE);
    let f = file.display().to_string();

    let out = cli(&db.url, &["migrate"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("applied V1 pulso_flow_state"),
        "{}",
        text(&out)
    );
    let out = cli(&db.url, &["migrate"], &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("migrations: up to date"),
        "{}",
        text(&out)
    );

    let out = cli(&db.url, &["list", &f], &[]);
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        listing.contains("pagos")
            && listing.contains("t.pagos")
            && listing.contains("creado_el timestamp"),
        "{listing}"
    );

    let out = cli(&db.url, &["run", &f], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let show = |db: &TestDb| {
        String::from_utf8_lossy(&cli(&db.url, &["watermarks", "show"], &[]).stdout).to_string()
    };
    assert!(
        show(&db).contains("2025-06-03T10:00:00.000000Z"),
        "{}",
        show(&db)
    );

    // set: typed by the pipeline, validated.
    let out = cli(
        &db.url,
        &[
            "watermarks",
            "set",
            "pagos",
            "2025-06-01T00:00:00-05:00",
            "--file",
            &f,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        show(&db).contains("2025-06-01T05:00:00.000000Z"),
        "{}",
        show(&db)
    );
    let out = cli(
        &db.url,
        &[
            "watermarks",
            "set",
            "pagos",
            "yesterday'; DROP TABLE t.pagos; --",
            "--file",
            &f,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = cli(
        &db.url,
        &[
            "watermarks",
            "set",
            "nope",
            "2025-06-01T00:00:00Z",
            "--file",
            &f,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // reset: the next run reads everything again (both rows unchanged).
    let out = cli(
        &db.url,
        &["watermarks", "reset", "pagos", "--file", &f],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = cli(&db.url, &["run", &f, "--summary", "json"], &[]);
    let summary = common::summary_json(&out);
    assert_eq!(common::counts(&summary, "pagos"), (0, 0, 2));
    assert_eq!(summary["nodes"][0]["window_lower"], serde_json::Value::Null);
}

/// A database with the pipeline's `pagos` loaded once (watermark 2025-06-03T10:00:00Z), and the
/// pipeline file's path.
async fn loaded(tag: &str) -> (TestDb, tempfile::TempDir, String) {
    let db = TestDb::new(tag).await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "pagos.csv",
        "doc,creado_el\nD1,2025-06-02T10:00:00Z\nD2,2025-06-03T10:00:00Z\n",
    );
    let f = write(dir.path(), "p.yaml", PIPELINE).display().to_string();
    let out = cli(&db.url, &["run", &f], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    (db, dir, f)
}

const LOADED_WATERMARK: &str = "2025-06-03T10:00:00.000000Z";

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn watermarks_set_refuses_a_zone_less_timestamp_with_a_hint() {
    let (db, _dir, f) = loaded("wm_zone").await;
    // The same strict parser as `incremental.initial`: no time zone is guessed (not even UTC).
    for value in ["2025-06-01T00:00:00", "2025-06-01 00:00:00.5", "2025-06-01"] {
        let out = cli(
            &db.url,
            &["watermarks", "set", "pagos", value, "--file", &f],
            &[],
        );
        assert_eq!(out.status.code(), Some(2), "{value}: {}", text(&out));
        let err = stderr(&out);
        assert!(
            err.contains("watermark of pagos")
                && err.contains(value)
                && err.contains("needs `Z` or an offset; add one"),
            "{err}"
        );
        assert_eq!(
            common::watermark(&db.client().await, "pagos")
                .await
                .as_deref(),
            Some(LOADED_WATERMARK)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn watermarks_set_refuses_year_zero_and_the_future_unless_forced() {
    let (db, _dir, f) = loaded("wm_future").await;
    let set = |value: &str, force: bool| {
        let mut args = vec!["watermarks", "set", "pagos", value, "--file", &f];
        if force {
            args.push("--force");
        }
        cli(&db.url, &args, &[])
    };
    for (value, why) in [
        ("0000-06-01T00:00:00Z", "before year 0001"),
        ("2999-01-01T00:00:00Z", "in the future"),
    ] {
        let out = set(value, false);
        assert_eq!(out.status.code(), Some(2), "{value}: {}", text(&out));
        let err = stderr(&out);
        assert!(err.contains(why) && err.contains("--force"), "{err}");
        assert_eq!(
            common::watermark(&db.client().await, "pagos")
                .await
                .as_deref(),
            Some(LOADED_WATERMARK)
        );
    }
    // An operator who means it can.
    let out = set("2999-01-01T00:00:00-05:00", true);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        common::watermark(&db.client().await, "pagos")
            .await
            .as_deref(),
        Some("2999-01-01T05:00:00.000000Z")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn watermarks_reset_refuses_a_node_the_pipeline_does_not_have() {
    let (db, _dir, f) = loaded("wm_reset").await;
    let out = cli(
        &db.url,
        &["watermarks", "reset", "pagoz", "--file", &f],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("no node pagoz in") && err.contains("it has: pagos"),
        "{err}"
    );
    assert_eq!(
        common::watermark(&db.client().await, "pagos")
            .await
            .as_deref(),
        Some(LOADED_WATERMARK)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn run_refuses_concurrency_zero() {
    let (db, _dir, f) = loaded("conc0").await;
    let out = cli(&db.url, &["run", &f, "--concurrency", "0"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--concurrency") && err.contains("at least 1"),
        "{err}"
    );
    // Nothing ran: the ledger has only the first run.
    let runs: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM pulso_flow.runs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(runs, 1);
}
