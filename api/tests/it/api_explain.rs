//! Every statement the API runs is served by an index the migrations create (EXPLAIN of the
//! generic plan, with sequential scans disabled so that the planner must say whether an index
//! can serve it at all — the demo tables are small enough that it would otherwise scan them).

use pulso_testkit as common;

use common::*;
use pulso_api::marts::Sql;
use pulso_api::marts::dashboard::Dimension;
use tokio_postgres::types::ToSql;

async fn plan(c: &tokio_postgres::Client, sql: &str, params: &[&(dyn ToSql + Sync)]) -> String {
    let rows = c
        .query(&format!("EXPLAIN (FORMAT TEXT) {sql}"), params)
        .await
        .unwrap_or_else(|e| panic!("EXPLAIN {sql}: {e}"));
    rows.iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_uses(plan: &str, index: &str, what: &str) {
    assert!(
        plan.contains(index),
        "{what}: expected index {index} in the plan:\n{plan}"
    );
    for line in plan.lines() {
        assert!(
            !(line.contains("Seq Scan on")
                && (line.contains(" mart.")
                    || line.contains(" dashboard")
                    || line.contains(" evolucion")
                    || line.contains(" operacion")
                    || line.contains(" productividad")
                    || line.contains(" asignacion"))),
            "{what}: sequential scan of a mart:\n{plan}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statement_uses_an_index() {
    let url = demo_db();
    let c = connect(url).await;
    c.batch_execute("SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    let sql = Sql::new("mart");
    let d: chrono::NaiveDate = "2025-06-20".parse().unwrap();
    let d2: chrono::NaiveDate = "2025-06-30".parse().unwrap();
    let texts: Vec<String> = vec![];
    let ints: Vec<i32> = vec![];
    let none: Option<chrono::NaiveDate> = None;

    let dash = sql.dashboard(
        &[
            Dimension::Cartera,
            Dimension::Vencimiento,
            Dimension::Servicio,
        ],
        &[
            vec![Dimension::Cartera, Dimension::Vencimiento],
            vec![Dimension::Servicio],
            vec![Dimension::Cartera],
        ],
    );
    let p = plan(
        &c,
        &dash,
        &[
            &d, &texts, &texts, &texts, &texts, &ints, &texts, &none, &none,
        ],
    )
    .await;
    assert_uses(&p, "dashboard_pkey", "dashboard");
    let p = plan(&c, &sql.latest_photo, &[&d]).await;
    assert_uses(&p, "dashboard_pkey", "latest photo");
    let p = plan(&c, &sql.filter_options, &[&d]).await;
    assert_uses(&p, "dashboard_pkey", "filter options");
    assert_uses(&p, "asignacion_pkey", "filter options (periods)");
    let p = plan(
        &c,
        &sql.evolution,
        &[&d, &d2, &texts, &texts, &texts, &"cartera"],
    )
    .await;
    assert_uses(&p, "evolucion_pkey", "evolution");
    let p = plan(&c, &sql.carteras, &[]).await;
    assert_uses(&p, "evolucion_cartera", "evolution carteras");
    let months = vec!["2025-06".to_string(), "2025-05".to_string()];
    let p = plan(&c, &sql.assignment, &[&months, &texts, &texts]).await;
    assert_uses(&p, "asignacion_pkey", "assignment");
    let p = plan(&c, &sql.latest_month, &[&"2025-07"]).await;
    assert_uses(&p, "asignacion_pkey", "latest month");
    let p = plan(&c, &sql.latest_photo_in, &[&d, &d2]).await;
    assert_uses(&p, "dashboard_pkey", "latest photo in month");
    let p = plan(&c, &sql.operation, &[&d, &texts]).await;
    assert_uses(&p, "operacion_pkey", "operation");
    let p = plan(&c, &sql.latest_operation, &[&d]).await;
    assert_uses(&p, "operacion_pkey", "latest operation day");
    let agent: Option<String> = None;
    let p = plan(&c, &sql.productivity, &[&d, &d2, &agent, &texts]).await;
    assert_uses(&p, "productividad_pkey", "productivity");
    let p = plan(&c, &sql.productivity_hourly, &[&d, &d2, &texts]).await;
    assert_uses(&p, "operacion_pkey", "productivity hourly");
    let p = plan(&c, &sql.agents, &[&d, &d2]).await;
    assert_uses(&p, "productividad_pkey", "agents");
    let p = plan(&c, &sql.latest_productivity, &[&d]).await;
    assert_uses(&p, "productividad_pkey", "latest productivity day");
    // The ETL status statements, over pulso_flow's ledger.
    let nodes = vec!["trandeuda".to_string(), "dashboard".to_string()];
    let p = plan(&c, pulso_sinks::status::NODES_SQL, &[&nodes]).await;
    assert_uses(&p, "node_runs_node_started", "etl nodes");
    let p = plan(&c, pulso_sinks::status::RUNS_SQL, &[]).await;
    assert_uses(&p, "runs_pkey", "etl runs");
    let p = plan(&c, pulso_sinks::status::ACTIVITY_SQL, &[]).await;
    assert_uses(&p, "node_runs_pkey", "etl activity");
    // The run history of the operations page and `pulso-flow runs`.
    let limit = 20i64;
    let p = plan(&c, pulso_sinks::status::RUN_HISTORY_SQL, &[&limit]).await;
    assert_uses(&p, "runs_pkey", "run history");
    assert_uses(&p, "node_runs_pkey", "run history's node counts");
    let run_id = "x".to_string();
    let p = plan(&c, pulso_sinks::status::RUN_SQL, &[&run_id]).await;
    assert_uses(&p, "runs_pkey", "one run");
    let p = plan(&c, pulso_sinks::status::RUN_NODES_SQL, &[&run_id]).await;
    assert_uses(&p, "node_runs_pkey", "a run's nodes");
    let p = plan(
        &c,
        pulso_sinks::status::NODE_HISTORY_SQL,
        &[&run_id, &limit],
    )
    .await;
    assert_uses(&p, "node_runs_node_started", "a node's history");
    let p = plan(&c, pulso_sinks::status::LATEST_NODE_RUNS_SQL, &[&nodes]).await;
    assert_uses(&p, "node_runs_node_started", "each node's latest run");
    let ids = vec!["x".to_string()];
    let p = plan(&c, &sql.campaigns, &[&ids]).await;
    assert_uses(&p, "campana_pkey", "campaigns");
}
