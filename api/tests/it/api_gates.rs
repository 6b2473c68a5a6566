//! Quality gates and reconciliation of the last run in `/api/v1/etl/status` and `/metrics`, read
//! from the run ledger (`node_runs.details.checks` / `.reconcile`). Offending keys (row keys) are
//! shown only with the monitor token, like full error messages.

use pulso_testkit as common;

use common::{TestDb, TestServer, config, demo_file, get_json, http};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_metrics_show_the_last_runs_gates() {
    let db = TestDb::migrated("gates_api").await;
    let c = db.client().await;
    let details = json!({
        "checks": [
            {"name": "monto_no_negativo", "kind": "range", "severity": "error", "passed": false,
             "offending": 2, "sample": ["doc=D1 monto=-1.00", "doc=D3 monto=-3.00"]},
            {"name": "claves_no_nulas", "kind": "not_null", "severity": "error", "passed": true,
             "offending": 0, "sample": []}
        ],
        "reconcile": {"by": "fecha_proceso", "sum": ["monto_exigible"], "on_mismatch": "fail",
                      "days": 2, "source_rows": 3, "target_rows": 4,
                      "mismatches": [{"day": "2025-06-02", "source_rows": 1, "target_rows": 2,
                                      "source_sums": ["300.30"], "target_sums": ["700.70"]}]}
    });
    c.execute(
        "INSERT INTO pulso_flow.runs (run_id, pipeline, status, started_at, finished_at) \
         VALUES ('r1', 'p', 'failed', now(), now())",
        &[],
    )
    .await
    .unwrap();
    c.execute(
        "INSERT INTO pulso_flow.node_runs (run_id, node, kind, status, started_at, duration_ms, error, details) \
         VALUES ('r1', 'trandeuda', 'table', 'failed', now(), 5, \
                 'table trandeuda: quality gate failed: check monto_no_negativo (range): 2 offending row(s); nothing was committed', $1)",
        &[&tokio_postgres::types::Json(&details)],
    )
    .await
    .unwrap();
    let mut cfg = config(&db.url);
    cfg.monitor_token = Some("monitor-token-0123456789".into());
    cfg.pipeline_file = demo_file().to_string_lossy().into_owned();
    let server = TestServer::start(cfg).await;

    let table = |v: &Value| -> Value {
        v["tables"]
            .as_array()
            .and_then(|a| a.iter().find(|t| t["table_name"] == "trandeuda"))
            .cloned()
            .unwrap_or_else(|| panic!("{v}"))
    };
    let (s, v) = get_json(&server.url("/api/v1/etl/status")).await;
    assert_eq!(s, 200, "{v}");
    let t = table(&v);
    assert_eq!(t["error_class"], "check", "{t}");
    assert_eq!(t["checks"][0]["name"], "monto_no_negativo", "{t}");
    assert_eq!(t["checks"][0]["offending"], 2, "{t}");
    assert!(
        t["checks"][0].get("sample").is_none(),
        "keys without a token: {t}"
    );
    assert_eq!(t["reconcile"]["mismatches"][0]["day"], "2025-06-02", "{t}");
    let full: Value = http()
        .get(server.url("/api/v1/etl/status"))
        .header("authorization", "Bearer monitor-token-0123456789")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        table(&full)["checks"][0]["sample"],
        json!(["doc=D1 monto=-1.00", "doc=D3 monto=-3.00"])
    );

    let metrics = http()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "pulso_flow_check_failed{node=\"trandeuda\",check=\"monto_no_negativo\",severity=\"error\"} 1",
        "pulso_flow_check_failed{node=\"trandeuda\",check=\"claves_no_nulas\",severity=\"error\"} 0",
        "pulso_flow_check_offending_rows{node=\"trandeuda\",check=\"monto_no_negativo\"} 2",
        "pulso_flow_reconcile_mismatched_days{node=\"trandeuda\"} 1",
        "# TYPE pulso_flow_check_failed gauge",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    server.stop().await;
}
