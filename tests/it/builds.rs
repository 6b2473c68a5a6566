//! SQL builds recompute only the days their dependencies changed, inside one transaction with
//! their ledger row; everything on the first run or with --full-refresh.

use pulso_testkit as common;

use common::{TestDb, cli, text, write};

const PIPELINE: &str = "\
defaults: { schema: t }
tables:
  - name: deuda
    source:
      kind: generate
      rows: 20000
      seed: 3
      revision: ${REV:-0}
      change_share: 0.001
      grow: 50
      columns:
        cuenta: { from_id: \"C{}\" }
        monto: { decimal: [\"1.00\", \"999.99\"] }
        creado_el: { incremental: { start: \"2025-06-01T05:00:00Z\", step: \"1m\", type: timestamp } }
    transform:
      derive:
        fecha: \"CAST(creado_el - INTERVAL '5 hours' AS DATE)\"
    columns: { cuenta: text, monto: \"numeric(12,2)\", creado_el: timestamptz, fecha: date }
    primary_key: [cuenta]
    change_date: fecha
    incremental: { column: creado_el, type: timestamp, lookback: 0s }
builds:
  - name: deuda_diaria
    depends_on: [deuda]
    sql: |
      CREATE TABLE IF NOT EXISTS t.deuda_diaria (fecha date PRIMARY KEY, cuentas bigint NOT NULL, monto numeric NOT NULL);
      DELETE FROM t.deuda_diaria
       WHERE pg_temp.full_refresh()
          OR fecha = ANY (pg_temp.changed_days());
      INSERT INTO t.deuda_diaria
      SELECT fecha, count(*), sum(monto) FROM t.deuda
       WHERE pg_temp.full_refresh()
          OR fecha = ANY (pg_temp.changed_days())
       GROUP BY fecha;
";

async fn last_build(client: &tokio_postgres::Client) -> serde_json::Value {
    last_build_of(client, "deuda_diaria").await
}

async fn assert_mart_matches_full_recompute(client: &tokio_postgres::Client) {
    let diff: i64 = client
        .query_one(
            "SELECT count(*) FROM ((SELECT fecha, count(*)::bigint, sum(monto) FROM t.deuda GROUP BY fecha) \
             EXCEPT ALL (SELECT fecha, cuentas, monto FROM t.deuda_diaria)) d",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let extra: i64 = client
        .query_one(
            "SELECT count(*) FROM t.deuda_diaria m WHERE NOT EXISTS (SELECT 1 FROM t.deuda d WHERE d.fecha = m.fecha)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        (diff, extra),
        (0, 0),
        "incremental build differs from a full recompute"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn builds_recompute_only_changed_days() {
    let db = TestDb::new("builds").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", PIPELINE);
    let f = file.display().to_string();
    let client = db.client().await;

    // First run: everything.
    let out = cli(&db.url, &["run", &f], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let d = last_build(&client).await;
    assert_eq!(
        (d["ran"].as_bool(), d["full"].as_bool()),
        (Some(true), Some(true)),
        "{d}"
    );
    assert_mart_matches_full_recompute(&client).await;

    // Nothing new upstream: the build's SQL does not run.
    let out = cli(&db.url, &["run", &f], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let d = last_build(&client).await;
    assert_eq!(d["ran"].as_bool(), Some(false), "{d}");

    // Revision 1 moves ~20 changed rows to new days and adds 50 rows: exactly the days they
    // left and the days they landed on are recomputed.
    let before: Vec<(String, String)> = client
        .query("SELECT cuenta, fecha::text FROM t.deuda", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let out = cli(&db.url, &["run", &f], &[("REV", "1")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let after: std::collections::HashMap<String, String> = client
        .query("SELECT cuenta, fecha::text FROM t.deuda", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut expected = std::collections::BTreeSet::new();
    let before_map: std::collections::HashMap<_, _> = before.into_iter().collect();
    for (cuenta, fecha) in &after {
        match before_map.get(cuenta) {
            Some(old) if old == fecha => {}
            Some(old) => {
                expected.insert(old.clone());
                expected.insert(fecha.clone());
            }
            None => {
                expected.insert(fecha.clone());
            }
        }
    }
    let d = last_build(&client).await;
    assert_eq!(
        (d["ran"].as_bool(), d["full"].as_bool()),
        (Some(true), Some(false)),
        "{d}"
    );
    let got: std::collections::BTreeSet<String> = d["changed_days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(got, expected);
    assert_mart_matches_full_recompute(&client).await;

    // --full-refresh rebuilds everything.
    let out = cli(&db.url, &["run", &f, "--full-refresh"], &[("REV", "1")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(last_build(&client).await["full"].as_bool(), Some(true));
    assert_mart_matches_full_recompute(&client).await;

    // Tables and builds write node_runs.mode in one vocabulary (a build's full rebuild used to
    // be `full` where a table's is `full_refresh`).
    let modes: Vec<(String, String)> = client
        .query(
            "SELECT node, mode FROM pulso_flow.node_runs WHERE run_id = \
               (SELECT run_id FROM pulso_flow.runs ORDER BY started_at DESC LIMIT 1) ORDER BY node",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let full = |node: &str| (node.to_string(), "full_refresh".to_string());
    assert_eq!(modes, vec![full("deuda"), full("deuda_diaria")]);
    let vocabulary: Vec<String> = client
        .query(
            "SELECT DISTINCT mode FROM pulso_flow.node_runs ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(vocabulary, ["full_refresh", "incremental"]);
}

/// A build sees its inputs as constants the planner folds: `pg_temp.full_refresh()`,
/// `pg_temp.changed_days()` (the received days, sorted) and `pg_temp.first_changed_day()`. So a
/// scheduled run's `pg_temp.full_refresh() OR fecha = ANY (pg_temp.changed_days())` reads the
/// changed days through the index, where `current_setting(…) OR …` scanned the whole history.
#[tokio::test(flavor = "multi_thread")]
async fn build_parameters_are_constants_the_planner_folds() {
    const PARAMS: &str = "\
defaults: { schema: t }
tables:
  - name: deuda
    source:
      kind: generate
      rows: 20160
      seed: 3
      revision: ${REV:-0}
      change_share: 0
      grow: 1440
      columns:
        cuenta: { from_id: \"C{}\" }
        creado_el: { incremental: { start: \"2025-06-01T05:00:00Z\", step: \"1m\", type: timestamp } }
    transform:
      derive:
        fecha: \"CAST(creado_el - INTERVAL '5 hours' AS DATE)\"
    columns: { cuenta: text, creado_el: timestamptz, fecha: date }
    primary_key: [cuenta]
    change_date: fecha
    incremental: { column: creado_el, type: timestamp, lookback: 0s }
builds:
  - name: vistos
    depends_on: [deuda]
    # `$$$$` is `$$` after the pipeline's interpolation.
    sql: |
      CREATE TABLE IF NOT EXISTS t.vistos (full_refresh boolean, days date[], first_day date,
                                           plan text, plan_setting text);
      CREATE INDEX IF NOT EXISTS deuda_fecha ON t.deuda (fecha);
      ANALYZE t.deuda;
      DO $$$$ DECLARE p text; q text; BEGIN
        EXECUTE 'EXPLAIN SELECT * FROM t.deuda
                  WHERE pg_temp.full_refresh() OR fecha = ANY (pg_temp.changed_days())' INTO p;
        EXECUTE 'EXPLAIN SELECT * FROM t.deuda
                  WHERE current_setting(''pulso_flow.full_refresh'')::boolean
                     OR fecha IN (SELECT day FROM pulso_flow_changed_days)' INTO q;
        INSERT INTO t.vistos
        SELECT pg_temp.full_refresh(), pg_temp.changed_days(), pg_temp.first_changed_day(), p, q;
      END $$$$;
";
    let db = TestDb::new("build_params").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", PARAMS);
    let f = file.display().to_string();
    let client = db.client().await;
    type Seen = (
        bool,
        Vec<chrono::NaiveDate>,
        Option<chrono::NaiveDate>,
        String,
        String,
    );
    let last_seen = || async {
        let r = client
            .query_one(
                "SELECT full_refresh, days, first_day, plan, plan_setting FROM t.vistos \
                 ORDER BY ctid DESC LIMIT 1",
                &[],
            )
            .await
            .unwrap();
        let seen: Seen = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        seen
    };

    // First run: a full refresh, no days, and every row is read.
    let out = cli(&db.url, &["run", &f], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (full, days, first, plan, _) = last_seen().await;
    assert!(full);
    assert!(days.is_empty(), "{days:?}");
    assert_eq!(first, None);
    assert!(plan.starts_with("Seq Scan on deuda"), "{plan}");

    // Revision 1 adds one day of rows (the generator starts a revision's values after room for
    // all of revision 0's: 20160 minutes on, 2025-06-29 05:00Z .. 2025-06-30 04:59Z, one date
    // after the 5-hour shift): the build receives exactly that day, through the index.
    let out = cli(&db.url, &["run", &f], &[("REV", "1")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (full, days, first, plan, plan_setting) = last_seen().await;
    let received: Vec<String> = last_build_of(&client, "vistos").await["received_days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(!full);
    assert_eq!(
        days.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        received
    );
    assert_eq!(received, ["2025-06-29"], "one new day of rows");
    assert_eq!(first, days.first().copied());
    assert!(
        plan.contains("Index") && !plan.contains("Seq Scan"),
        "the changed days are read through the index: {plan}"
    );
    // Why the functions exist: the setting hides the day predicate from the planner.
    assert!(
        plan_setting.starts_with("Seq Scan on deuda"),
        "{plan_setting}"
    );
}

async fn last_build_of(client: &tokio_postgres::Client, node: &str) -> serde_json::Value {
    client
        .query_one(
            "SELECT details FROM pulso_flow.node_runs WHERE node = $1 \
             ORDER BY started_at DESC, run_id DESC LIMIT 1",
            &[&node],
        )
        .await
        .unwrap()
        .get(0)
}
