//! Steady-state loads against a real PostgreSQL (issues 14 item 5 and 15): rows whose incremental
//! column is NULL (counted, loaded once, never re-merged, or warned about / refused per
//! `incremental.nulls`), the lateness of new rows (ledger, `watermarks show`, the lookback
//! warning), and re-reads of the lookback that skip unchanged rows but still apply corrections.

use pulso_testkit as common;

use std::path::Path;

use common::{TestDb, checksum, cli, counts, summary_json, text, watermark, write};

fn run(db: &TestDb, file: &Path, extra: &[&str]) -> std::process::Output {
    let file = file.display().to_string();
    let mut args = vec!["run", file.as_str(), "--summary", "json"];
    args.extend_from_slice(extra);
    cli(&db.url, &args, &[])
}

fn pipeline(dir: &Path, incremental: &str) -> std::path::PathBuf {
    write(
        dir,
        "p.yaml",
        &format!(
            "tables:\n  - name: pagos\n    source: {{ kind: csv, path: pagos.csv }}\n    target: t.pagos\n    \
             columns: {{ doc: text, monto: \"numeric(15,2)\", creado_el: timestamptz }}\n    \
             primary_key: [doc]\n    incremental: {{ {incremental} }}\n"
        ),
    )
}

fn node(summary: &serde_json::Value) -> &serde_json::Value {
    &summary["nodes"][0]
}

/// The last ledger row of `pagos`: its details.
async fn last_details(client: &tokio_postgres::Client) -> serde_json::Value {
    let row = client
        .query_one(
            "SELECT details::text FROM pulso_flow.node_runs WHERE node = 'pagos' \
             ORDER BY started_at DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    serde_json::from_str(row.get::<_, &str>(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn null_incremental_rows_are_loaded_counted_and_never_re_merged() {
    let db = TestDb::new("nullinc").await;
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(dir.path(), "column: creado_el, type: timestamp");
    write(
        dir.path(),
        "pagos.csv",
        "doc,monto,creado_el\nD1,10.00,2025-06-01T10:00:00Z\nD2,20.00,\n",
    );
    let first = run(&db, &file, &[]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let s = summary_json(&first);
    assert_eq!(node(&s)["null_incremental"], 1, "{s}");
    assert_eq!(counts(&s, "pagos"), (2, 0, 0));

    // The reported defect: on an incremental run a new NULL row was read and silently dropped.
    write(
        dir.path(),
        "pagos.csv",
        "doc,monto,creado_el\nD1,10.00,2025-06-01T10:00:00Z\nD2,20.00,\nD3,30.00,\n\
         D4,40.00,2025-06-01T11:00:00Z\n",
    );
    let second = run(&db, &file, &[]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let s = summary_json(&second);
    let n = node(&s);
    // The window is [10:00, ∞) or NULL: D1 (at the watermark), D2, D3, D4 are staged.
    assert_eq!(
        (n["rows_read"].as_u64(), n["rows_staged"].as_u64()),
        (Some(4), Some(4)),
        "{s}"
    );
    assert_eq!(n["null_incremental"], 2, "{s}");
    // D3 and D4 are new; D2 (NULL, re-read) and D1 are unchanged.
    assert_eq!(counts(&s, "pagos"), (2, 0, 2));
    assert!(n["warnings"].as_array().unwrap().is_empty(), "{s}");
    let client = db.client().await;
    assert_eq!(checksum(&client, "t.pagos").await.0, 4);
    assert_eq!(last_details(&client).await["null_incremental"], 2);
    // NULLs never move the watermark.
    assert_eq!(
        watermark(&client, "pagos").await.as_deref(),
        Some("2025-06-01T11:00:00.000000Z")
    );
    let human = cli(&db.url, &["run", &file.display().to_string()], &[]);
    assert!(
        text(&human).contains("2 staged rows have a NULL incremental value"),
        "{}",
        text(&human)
    );

    // Re-read every run, but neither inserted nor updated again; a changed NULL row is updated.
    write(
        dir.path(),
        "pagos.csv",
        "doc,monto,creado_el\nD1,10.00,2025-06-01T10:00:00Z\nD2,21.00,\nD3,30.00,\n\
         D4,40.00,2025-06-01T11:00:00Z\n",
    );
    let third = run(&db, &file, &[]);
    assert_eq!(third.status.code(), Some(0), "{}", text(&third));
    let s = summary_json(&third);
    assert_eq!(counts(&s, "pagos"), (0, 1, 2), "{s}");
    let fourth = run(&db, &file, &[]);
    assert_eq!(counts(&summary_json(&fourth), "pagos"), (0, 0, 3));
    let d2: String = client
        .query_one("SELECT monto::text FROM t.pagos WHERE doc = 'D2'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(d2, "21.00");
}

#[tokio::test(flavor = "multi_thread")]
async fn null_incremental_rows_warn_or_fail_when_the_pipeline_says_so() {
    let db = TestDb::new("nullpolicy").await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "pagos.csv",
        "doc,monto,creado_el\nD1,10.00,2025-06-01T10:00:00Z\n",
    );
    let warn = pipeline(
        dir.path(),
        "column: creado_el, type: timestamp, nulls: warn",
    );
    assert_eq!(run(&db, &warn, &[]).status.code(), Some(0));
    write(
        dir.path(),
        "pagos.csv",
        "doc,monto,creado_el\nD1,10.00,2025-06-01T10:00:00Z\nD2,20.00,\n",
    );
    let out = run(&db, &warn, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&out);
    let warnings = node(&s)["warnings"].to_string();
    assert!(
        warnings.contains("1 rows of t.pagos have no creado_el"),
        "{warnings}"
    );
    let client = db.client().await;
    assert_eq!(checksum(&client, "t.pagos").await.0, 2);
    assert!(
        last_details(&client).await["warnings"]
            .to_string()
            .contains("NULL incremental value")
    );

    let fail = pipeline(
        dir.path(),
        "column: creado_el, type: timestamp, nulls: fail",
    );
    write(
        dir.path(),
        "pagos.csv",
        "doc,monto,creado_el\nD1,10.00,2025-06-01T10:00:00Z\nD2,20.00,\nD3,30.00,\n\
         D4,40.00,2025-06-02T10:00:00Z\n",
    );
    let before = checksum(&client, "t.pagos").await;
    let out = run(&db, &fail, &[]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("2 rows have a NULL incremental value in column creado_el")
            && all.contains("(D2)")
            && all.contains("t.pagos"),
        "{all}"
    );
    // Nothing committed: not D4 either, and the watermark stays.
    assert_eq!(checksum(&client, "t.pagos").await, before);
    assert_eq!(
        watermark(&client, "pagos").await.as_deref(),
        Some("2025-06-01T10:00:00.000000Z")
    );

    let bad = pipeline(
        dir.path(),
        "column: creado_el, type: timestamp, nulls: skip",
    );
    let out = cli(&db.url, &["validate", &bad.display().to_string()], &[]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out).contains("unknown incremental.nulls \"skip\""),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lateness_is_recorded_shown_and_warned_about_and_rereads_still_apply_corrections() {
    let db = TestDb::new("lateness").await;
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "column: creado_el, type: timestamp, lookback: 6h",
    );
    write(
        dir.path(),
        "pagos.csv",
        "doc,monto,creado_el\nD1,10.00,2025-06-01T10:00:00Z\nD2,20.00,2025-06-01T11:00:00Z\n\
         D3,30.00,2025-06-01T12:00:00Z\n",
    );
    assert_eq!(run(&db, &file, &[]).status.code(), Some(0));
    let client = db.client().await;
    // A first load has no previous watermark: nothing to be late against.
    assert!(last_details(&client).await["lateness"].is_null());

    // Inside the 6 h lookback: a late new row (3 h below the watermark 12:00), a correction of
    // D2, and two duplicates of D1 where the one identical to the target wins (greater value):
    // a re-read may skip only rows the merge would leave unchanged.
    write(
        dir.path(),
        "pagos.csv",
        "doc,monto,creado_el\nD1,10.00,2025-06-01T10:00:00Z\nD1,99.00,2025-06-01T09:30:00Z\n\
         D2,25.00,2025-06-01T11:00:00Z\nD3,30.00,2025-06-01T12:00:00Z\n\
         L1,1.00,2025-06-01T09:00:00Z\nL2,2.00,2025-06-01T11:59:30Z\nN1,5.00,2025-06-01T13:00:00Z\n",
    );
    let out = run(&db, &file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&out);
    // L1, L2, N1 new; D2 corrected; D1, D3 unchanged.
    assert_eq!(counts(&s, "pagos"), (3, 1, 2), "{s}");
    let rows: Vec<(String, String)> = client
        .query("SELECT doc, monto::text FROM t.pagos ORDER BY doc", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected: Vec<(String, String)> = [
        ("D1", "10.00"),
        ("D2", "25.00"),
        ("D3", "30.00"),
        ("L1", "1.00"),
        ("L2", "2.00"),
        ("N1", "5.00"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(rows, expected);
    let late = &last_details(&client).await["lateness"];
    assert_eq!(late["rows"], 2, "{late}");
    assert_eq!(late["max_seconds"], 3 * 3600, "{late}");
    assert_eq!(late["lookback_seconds"], 6 * 3600, "{late}");
    assert_eq!(
        late["histogram"],
        serde_json::json!({"le_1m": 1, "le_6h": 1}),
        "{late}"
    );
    assert_eq!(node(&s)["lateness"]["max_seconds"], 3 * 3600);
    assert!(node(&s)["warnings"].as_array().unwrap().is_empty(), "{s}");

    // A full refresh sees what the lookback hides: a new row two days below the watermark.
    write(
        dir.path(),
        "pagos.csv",
        "doc,monto,creado_el\nD1,10.00,2025-06-01T10:00:00Z\nD2,25.00,2025-06-01T11:00:00Z\n\
         D3,30.00,2025-06-01T12:00:00Z\nL1,1.00,2025-06-01T09:00:00Z\nL2,2.00,2025-06-01T11:59:30Z\n\
         N1,5.00,2025-06-01T13:00:00Z\nOLD,7.00,2025-05-30T13:00:00Z\n",
    );
    let out = run(&db, &file, &["--full-refresh"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&out);
    assert_eq!(counts(&s, "pagos"), (1, 0, 6), "{s}");
    let warnings = node(&s)["warnings"].to_string();
    assert!(
        warnings.contains("rows arrived up to 2d late") && warnings.contains("lookback is 6h"),
        "{warnings}"
    );
    assert!(
        last_details(&client).await["warnings"]
            .to_string()
            .contains("lengthen incremental.lookback")
    );

    // `watermarks show` reports the greatest lateness of recent loads and the warning.
    let show = cli(&db.url, &["watermarks", "show"], &[]);
    assert_eq!(show.status.code(), Some(0), "{}", text(&show));
    let shown = String::from_utf8_lossy(&show.stdout).to_string();
    let line = shown
        .lines()
        .find(|l| l.starts_with("pagos "))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(line.contains("2d") && line.contains("6h"), "{line}");
    assert!(
        line.contains("{\"le_1m\":1,\"le_3d\":1,\"le_6h\":1}"),
        "{line}"
    );
    assert!(
        shown.contains("warning: table pagos: rows arrived up to 2d late"),
        "{shown}"
    );

    // The status reader the API uses.
    let l = pulso_sinks::status::lateness(&client).await.unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].max_seconds, Some(2 * 86_400));
    assert_eq!(l[0].late_rows, 3);
    assert_eq!(l[0].lookback_seconds, Some(6 * 3600));
    assert!(l[0].warning().is_some());
}

/// `unchanged_days` of the last ledger row of `pagos`: (whole days, unchanged days, rows left
/// out, merge skipped).
async fn unchanged_days(client: &tokio_postgres::Client) -> (u64, u64, u64, bool) {
    let d = last_details(client).await;
    let u = &d["unchanged_days"];
    (
        u["whole_days"].as_u64().unwrap_or_else(|| panic!("{d}")),
        u["days"].as_u64().unwrap(),
        u["rows"].as_u64().unwrap(),
        u["merge_skipped"].as_bool().unwrap(),
    )
}

async fn pagos_rows(client: &tokio_postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT doc || ' ' || monto || ' ' || to_char(creado_el AT TIME ZONE 'UTC', 'MM-DD HH24:MI') \
               FROM t.pagos ORDER BY doc",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Issue 15 item 2: the days a lookback re-reads exactly as the previous load staged them are
/// left out of the merge (per-day fingerprints), corrections and late rows in other days still
/// apply, the row that wins a key is the same as without the skip, and anything else that
/// writes the table (here `watermarks set`) makes the stored fingerprints stale.
#[tokio::test(flavor = "multi_thread")]
async fn unchanged_days_of_a_lookback_are_left_out_of_the_merge() {
    let db = TestDb::new("prints").await;
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "column: creado_el, type: timestamp, lookback: 3d",
    );
    // Four UTC days; the greatest value is 06-04 00:00, so the next window starts at 06-01
    // 00:00 and every staged day is whole. K has a row on 06-03 (it wins) and on 06-01.
    let base = "doc,monto,creado_el\n\
                A1,1.00,2025-06-01T00:00:00Z\nA2,2.00,2025-06-01T23:59:59Z\nK,50.00,2025-06-01T08:00:00Z\n\
                B1,3.00,2025-06-02T10:00:00Z\nB2,4.00,2025-06-02T11:00:00Z\n\
                C1,5.00,2025-06-03T10:00:00Z\nK,60.00,2025-06-03T09:00:00Z\n\
                E1,6.00,2025-06-04T00:00:00Z\n";
    write(dir.path(), "pagos.csv", base);
    let first = run(&db, &file, &[]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let client = db.client().await;
    let stored: i64 = client
        .query_one(
            "SELECT count(*) FROM pulso_flow.day_fingerprints WHERE node = 'pagos'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 4, "the first load stores its four days");
    let loaded = pagos_rows(&client).await;
    assert!(
        loaded.contains(&"K 60.00 06-03 09:00".to_string()),
        "{loaded:?}"
    );

    // The same file again: every day unchanged, no merge at all.
    let again = run(&db, &file, &[]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(counts(&summary_json(&again), "pagos"), (0, 0, 8));
    assert_eq!(unchanged_days(&client).await, (4, 4, 8, true));
    assert_eq!(pagos_rows(&client).await, loaded);

    // 06-02 gets a correction (B2) and a late row (L1); 06-04 a new row above the watermark;
    // 06-01 gets a new row for K, which still loses to K's 06-03 row (an unchanged day): the
    // skip happens after deduplication, so K keeps 60.00.
    let changed = base.replace("B2,4.00", "B2,4.50")
        + "L1,7.00,2025-06-02T12:00:00Z\nN1,8.00,2025-06-04T05:00:00Z\nK,70.00,2025-06-01T09:00:00Z\n";
    write(dir.path(), "pagos.csv", &changed);
    let third = run(&db, &file, &[]);
    assert_eq!(third.status.code(), Some(0), "{}", text(&third));
    let s = summary_json(&third);
    // L1 and N1 new, B2 corrected; K, A1, A2, B1, C1, E1 unchanged.
    assert_eq!(counts(&s, "pagos"), (2, 1, 6), "{s}");
    // 06-03 is the only unchanged day (06-01 got K's new row, 06-02 and 06-04 changed).
    assert_eq!(unchanged_days(&client).await, (4, 1, 2, false));
    let rows = pagos_rows(&client).await;
    for want in [
        "B2 4.50 06-02 11:00",
        "K 60.00 06-03 09:00",
        "L1 7.00 06-02 12:00",
        "N1 8.00 06-04 05:00",
    ] {
        assert!(rows.contains(&want.to_string()), "{want} in {rows:?}");
    }
    assert_eq!(rows.len(), 9, "{rows:?}");

    // The watermark is now 06-04 05:00: the window starts at 06-01 05:00, so 06-01 is cut and
    // only 06-02..06-04 are compared; they are unchanged.
    let fourth = run(&db, &file, &[]);
    assert_eq!(fourth.status.code(), Some(0), "{}", text(&fourth));
    assert_eq!(unchanged_days(&client).await, (3, 3, 7, false));
    assert_eq!(pagos_rows(&client).await, rows);

    // An operator sets the watermark: whatever the stored fingerprints said no longer counts.
    let file_arg = file.display().to_string();
    let set = cli(
        &db.url,
        &[
            "watermarks",
            "set",
            "pagos",
            "2025-06-04T05:00:00Z",
            "--file",
            file_arg.as_str(),
        ],
        &[],
    );
    assert_eq!(set.status.code(), Some(0), "{}", text(&set));
    let fifth = run(&db, &file, &[]);
    assert_eq!(fifth.status.code(), Some(0), "{}", text(&fifth));
    assert_eq!(unchanged_days(&client).await, (3, 0, 0, false));
    assert_eq!(counts(&summary_json(&fifth), "pagos"), (0, 0, 8));
    // And the load after it skips again.
    assert_eq!(run(&db, &file, &[]).status.code(), Some(0));
    assert_eq!(unchanged_days(&client).await, (3, 3, 7, false));
    assert_eq!(pagos_rows(&client).await, rows);
}
