//! `pulso-flow reconcile` on the demo: DEMO_REVISION=2 corrects one amount and deletes two
//! documents at the source long before the lookback. The run cannot see it; reconcile names
//! exactly those days, `--repair` makes a second reconcile clean and the marts equal a full
//! rebuild.

use pulso_testkit as common;

use std::path::PathBuf;

use common::{TestDb, checksum, cli, summary_json, text};
use tokio_postgres::Client;

fn demo() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples/demo.yaml")
        .display()
        .to_string()
}

async fn build_checksums(c: &Client) -> Vec<(String, (i64, String))> {
    let tables: Vec<String> = c
        .query(
            "SELECT schemaname || '.' || tablename FROM pg_tables
              WHERE schemaname IN ('raw', 'aux', 'mart') ORDER BY 1",
            &[],
        )
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::new();
    for t in tables {
        out.push((t.clone(), checksum(c, &t).await));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_revision_2_reconcile_names_the_changed_days_and_repair_equals_a_full_rebuild() {
    let db = TestDb::new("recon_demo").await;
    let demo = demo();
    let c = db.client().await;
    let run = |rev: &str, extra: &[&str]| {
        let mut args = vec!["run", demo.as_str(), "--summary", "json"];
        args.extend_from_slice(extra);
        let out = cli(&db.url, &args, &[("DEMO_REVISION", rev)]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        summary_json(&out)
    };
    let reconcile = |extra: &[&str]| {
        let mut args = vec!["reconcile", demo.as_str(), "--summary", "json"];
        args.extend_from_slice(extra);
        cli(&db.url, &args, &[("DEMO_REVISION", "2")])
    };

    run("0", &[]);
    // Every load reconciled its window cleanly.
    let s = run("2", &[]);
    for t in ["asignaciones", "trandeuda", "pagos"] {
        let n = s["nodes"]
            .as_array()
            .and_then(|a| a.iter().find(|n| n["name"] == t))
            .expect("node");
        assert_eq!(
            n["reconcile"]["mismatches"],
            serde_json::json!([]),
            "{t}: {n}"
        );
    }

    let out = reconcile(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = summary_json(&out);
    let days = |s: &serde_json::Value, t: &str| -> Vec<String> {
        s["tables"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == t))
            .unwrap_or_else(|| panic!("{t} not reconciled: {s}"))["reconcile"]["mismatches"]
            .as_array()
            .expect("mismatches")
            .iter()
            .map(|d| d["day"].as_str().unwrap_or("NULL").to_string())
            .collect()
    };
    assert_eq!(days(&s, "trandeuda"), ["2025-06-03", "2025-06-05"], "{s}");
    assert!(days(&s, "pagos").is_empty(), "{s}");
    assert!(days(&s, "asignaciones").is_empty(), "{s}");
    let t = s["tables"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == "trandeuda"))
        .expect("trandeuda");
    let m = &t["reconcile"]["mismatches"];
    assert_eq!(
        m[0]["source_rows"].as_i64().map(|n| n + 2),
        m[0]["target_rows"].as_i64(),
        "two documents deleted on 06-03: {m}"
    );
    assert_eq!(
        m[1]["source_rows"], m[1]["target_rows"],
        "one amount corrected on 06-05: {m}"
    );
    assert_ne!(m[1]["source_sums"], m[1]["target_sums"], "{m}");

    let out = reconcile(&["--repair"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&out);
    let builds = s["builds"]["nodes"].as_array().expect("rebuilt builds");
    assert!(builds.iter().any(|b| b["name"] == "deuda_diaria"), "{s}");
    assert!(builds.iter().all(|b| b["status"] == "ok"), "{s}");
    let out = reconcile(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(summary_json(&out)["clean"], true);

    // The repaired table equals a full reload of its source…
    let raw = checksum(&c, "raw.trandeuda").await;
    let s = run("2", &["--full-refresh", "--tables", "trandeuda"]);
    let t = &s["nodes"][0];
    assert_eq!(
        (
            t["inserted"].as_u64(),
            t["updated"].as_u64(),
            t["deleted"].as_u64()
        ),
        (Some(0), Some(0), Some(0)),
        "{s}"
    );
    assert_eq!(checksum(&c, "raw.trandeuda").await, raw);
    // …and the builds, recomputed incrementally for the repaired days, equal a full rebuild
    // from the same raw tables.
    let repaired = build_checksums(&c).await;
    let builds = "calendario_habiles,deuda_diaria,campana,cuenta_campana,gestion,gestion_cuenta,\
                  pago,pago_diario,cuenta_estado_diario,dashboard,evolucion,asignacion,operacion,productividad";
    run("2", &["--full-refresh", "--tables", builds]);
    let rebuilt = build_checksums(&c).await;
    assert_eq!(repaired.len(), rebuilt.len());
    for (a, b) in repaired.iter().zip(&rebuilt) {
        assert_eq!(a, b, "{} differs from a full rebuild", a.0);
    }
}
