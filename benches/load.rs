//! End-to-end load of generated trandeuda rows through the `pulso-flow` binary, side by side with
//! the PostgreSQL ceiling measured in the same run on the same rows.
//!
//! Scenarios (each rep: ceiling and pulso-flow interleaved, fresh targets):
//! - `initial`   — N rows into an empty table;
//! - `unchanged` — the same rows re-read with the watermark forgotten (plain `ON CONFLICT` merge,
//!   the path of a load without a previous watermark): nothing to write;
//! - `reread`    — the same rows re-read by a lookback that covers the whole table, watermark
//!   kept: the merge skips unchanged rows below the watermark (sinks/src/reread.rs);
//! - `incr`      — revision 1: 20% of the rows changed, N·0.8 new rows (the bench/ scenario);
//! - `initial+rec`, `incr+rec` — `initial` and `incr` again (same start state) with
//!   `reconcile: { by: fecha_proceso, sum: [monto_exigible] }` on: the cost of per-load
//!   reconciliation is their time over the same scenario's without it, same repetition.
//!
//! Ceiling = one transaction of `COPY … (FORMAT binary)` into an UNLOGGED staging table plus
//! `INSERT INTO target SELECT * FROM staging ON CONFLICT (pk) DO UPDATE SET …` (shared/bench's
//! `ceil_bin`), fed the exact bytes of the rows pulso-flow loaded. Reported: wall seconds, rows/s,
//! ratio to the ceiling (lower is better), and pulso-flow's peak RSS (getrusage of the child).
//!
//! `cargo bench --bench load` (env: `BENCH_ROWS` default 1000000, `BENCH_REPS` default 3,
//! `DATABASE_URL` server, database `pf_bench` is recreated; `PULSO_FLOW_BIN` measures another
//! build of pulso-flow against the same ceiling, `BENCH_RECONCILE=0` skips the `+rec` scenarios
//! for a build older than `reconcile:`).

use std::time::Instant;

use bytes::Bytes;
use futures::SinkExt;
use tokio_postgres::Client;

use pulso_testkit as common;

const COLUMNS: &str = "cod_cuenta text NOT NULL, nro_documento text NOT NULL, archivo text NOT NULL, \
    fecha_vencimiento date, monto_exigible numeric(15,2), creado_el timestamptz, \
    fecha_proceso date NOT NULL, motivo_rechazo text";
const PK: &str = "cod_cuenta, nro_documento, archivo, fecha_proceso";
const SET: &str = "fecha_vencimiento = EXCLUDED.fecha_vencimiento, monto_exigible = EXCLUDED.monto_exigible, \
    creado_el = EXCLUDED.creado_el, motivo_rechazo = EXCLUDED.motivo_rechazo";

/// The bench's pipeline; `reconcile` adds per-load reconciliation (the `+rec` scenarios).
fn pipeline(rows: u64, reconcile: bool) -> String {
    let reconcile = if reconcile {
        "    reconcile: { by: fecha_proceso, sum: [monto_exigible] }\n"
    } else {
        ""
    };
    format!(
        "name: bench-load
tables:
  - name: trandeuda
    target: bench.trandeuda
    create_target: false
    source:
      kind: generate
      rows: {rows}
      seed: 12
      revision: ${{REV:-0}}
      change_share: 0.2
      grow: {grow}
      columns:
        cod_cuenta: {{ from_id: \"{{}}\", offset: 5000000000, div: 2 }}
        nro_documento: {{ from_id: \"F{{}}\", offset: 100000000000 }}
        archivo: {{ from_id: \"Cartera_Gestion_{{}}_20250627\", offset: 0, div: 100000 }}
        fecha_vencimiento: {{ date: [\"2024-01-01\", \"2025-12-31\"] }}
        monto_exigible: {{ decimal: [\"1.00\", \"99999.99\"] }}
        creado_el: {{ incremental: {{ start: \"2025-06-27T05:00:00Z\", step: \"10ms\", type: timestamp }} }}
        fecha_proceso: {{ date: [\"2025-06-27\", \"2025-06-27\"] }}
        motivo_rechazo: {{ choice: [\"CUENTA CERRADA\", \"DUPLICADO\"], null_share: 0.99 }}
    columns:
      cod_cuenta: text
      nro_documento: text
      archivo: text
      fecha_vencimiento: date
      monto_exigible: \"numeric(15,2)\"
      creado_el: timestamptz
      fecha_proceso: date
      motivo_rechazo: text
    primary_key: [cod_cuenta, nro_documento, archivo, fecha_proceso]
    incremental: {{ column: creado_el, type: timestamp, lookback: ${{LOOKBACK:-0s}} }}
{reconcile}",
        grow = rows * 4 / 5,
    )
}

/// The binary measured: `PULSO_FLOW_BIN` (e.g. an older build, for a before/after comparison
/// against the same ceiling), else this checkout's.
fn binary() -> String {
    std::env::var("PULSO_FLOW_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_pulso-flow").into())
}

/// Wall seconds and peak RSS (KiB) of one `pulso-flow run`, its written rows checked against
/// `expect_written`.
fn run_pulso(
    db_url: &str,
    file: &std::path::Path,
    rev: &str,
    expect_written: Option<u64>,
    env: &[(&str, &str)],
) -> (f64, i64) {
    let file = file.display().to_string();
    let mut all = vec![("REV", rev)];
    all.extend_from_slice(env);
    let run = common::bench::timed_run(
        &binary(),
        db_url,
        &["run", &file, "--summary", "json"],
        &all,
    );
    if let Some(expected) = expect_written {
        let v: serde_json::Value =
            serde_json::from_slice(&run.output.stdout).expect("summary json");
        let n = &v["nodes"][0];
        let written = n["inserted"].as_u64().unwrap_or(0) + n["updated"].as_u64().unwrap_or(0);
        assert_eq!(written, expected, "unexpected counts: {n}");
    }
    (run.seconds, run.rss_kib)
}

/// The ceiling: binary COPY of `data` into UNLOGGED staging + INSERT … ON CONFLICT, one transaction.
async fn run_ceiling(client: &Client, target: &str, data: &Bytes) -> f64 {
    let t0 = Instant::now();
    client.batch_execute("BEGIN").await.unwrap();
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS bench.stg; CREATE UNLOGGED TABLE bench.stg (LIKE {target})"
        ))
        .await
        .unwrap();
    let sink = client
        .copy_in::<_, Bytes>("COPY bench.stg FROM STDIN (FORMAT binary)")
        .await
        .unwrap();
    futures::pin_mut!(sink);
    for chunk in data.chunks(1 << 20) {
        sink.send(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    sink.as_mut().finish().await.unwrap();
    client
        .batch_execute(&format!(
            "INSERT INTO {target} SELECT * FROM bench.stg ON CONFLICT ({PK}) DO UPDATE SET {SET}; DROP TABLE bench.stg; COMMIT"
        ))
        .await
        .unwrap();
    t0.elapsed().as_secs_f64()
}

async fn copy_out(client: &Client, query: &str) -> Bytes {
    use futures::TryStreamExt;
    let stream = client
        .copy_out(&format!("COPY ({query}) TO STDOUT (FORMAT binary)"))
        .await
        .unwrap();
    let parts: Vec<Bytes> = stream.try_collect().await.unwrap();
    let mut all = Vec::with_capacity(parts.iter().map(Bytes::len).sum());
    for p in parts {
        all.extend_from_slice(&p);
    }
    Bytes::from(all)
}

async fn reset_table(client: &Client, name: &str) {
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {name}; CREATE TABLE {name} ({COLUMNS}, PRIMARY KEY ({PK}))"
        ))
        .await
        .unwrap();
}

struct Row {
    scenario: &'static str,
    rep: usize,
    rows: u64,
    ceiling_s: f64,
    pulso_s: f64,
    rss_kib: i64,
    /// Where pulso-flow's load spent its time (`node_runs.details.phases_ms`).
    phases: String,
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing we need: only run when benching.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rows: u64 = common::bench::env_number("BENCH_ROWS", 1_000_000);
    let reps: usize = common::bench::env_number("BENCH_REPS", 3);
    let (db_url, client) = common::bench::fresh_bench_database("pf_bench").await;
    let dir = tempfile::tempdir().unwrap();
    let file = common::write(dir.path(), "bench.yaml", &pipeline(rows, false));
    let file_rec = common::write(dir.path(), "bench-rec.yaml", &pipeline(rows, true));
    // BENCH_RECONCILE=0 skips the `+rec` scenarios (a binary older than `reconcile:`).
    let with_reconcile = common::bench::env_number::<u32>("BENCH_RECONCILE", 1) != 0;

    let mut results = Vec::new();
    for rep in 0..reps {
        // initial
        client.batch_execute("DROP SCHEMA IF EXISTS pulso_flow CASCADE; DROP TABLE IF EXISTS refinery_schema_history").await.unwrap();
        reset_table(&client, "bench.trandeuda").await;
        client.batch_execute("CHECKPOINT").await.unwrap();
        let (pulso_s, rss) = run_pulso(&db_url, &file, "0", Some(rows), &[]);
        let base = copy_out(&client, "SELECT * FROM bench.trandeuda").await;
        reset_table(&client, "bench.ceiling").await;
        client.batch_execute("CHECKPOINT").await.unwrap();
        let ceiling_s = run_ceiling(&client, "bench.ceiling", &base).await;
        results.push(Row {
            scenario: "initial",
            rep,
            rows,
            ceiling_s,
            pulso_s,
            rss_kib: rss,
            phases: phases(&client).await,
        });
        // initial+rec: the same initial load with per-load reconciliation (same ceiling).
        if with_reconcile {
            client.batch_execute("DROP SCHEMA IF EXISTS pulso_flow CASCADE; DROP TABLE IF EXISTS refinery_schema_history").await.unwrap();
            reset_table(&client, "bench.trandeuda").await;
            client.batch_execute("CHECKPOINT").await.unwrap();
            let (rec_s, rss) = run_pulso(&db_url, &file_rec, "0", Some(rows), &[]);
            assert_reconciled(&client).await;
            results.push(Row {
                scenario: "initial+rec",
                rep,
                rows,
                ceiling_s,
                pulso_s: rec_s,
                rss_kib: rss,
                phases: phases(&client).await,
            });
        }

        // unchanged: the same window again (lookback 0s re-reads the last instant only, so reset
        // the watermark to re-read everything, as a lookback covering the whole table would).
        client
            .batch_execute("UPDATE pulso_flow.watermarks SET value = NULL")
            .await
            .unwrap();
        each(&client, &["VACUUM ANALYZE bench.trandeuda", "CHECKPOINT"]).await;
        let (pulso_s, rss) = run_pulso(&db_url, &file, "0", Some(0), &[]);
        each(&client, &["VACUUM ANALYZE bench.ceiling", "CHECKPOINT"]).await;
        let ceiling_s = run_ceiling(&client, "bench.ceiling", &base).await;
        results.push(Row {
            scenario: "unchanged",
            rep,
            rows,
            ceiling_s,
            pulso_s,
            rss_kib: rss,
            phases: phases(&client).await,
        });

        // reread: the same rows again, but as a lookback re-reads them: the watermark (restored by
        // the run above) stays and the lookback covers the whole table.
        each(&client, &["VACUUM ANALYZE bench.trandeuda", "CHECKPOINT"]).await;
        let (pulso_s, rss) = run_pulso(&db_url, &file, "0", Some(0), &[("LOOKBACK", "36500d")]);
        each(&client, &["VACUUM ANALYZE bench.ceiling", "CHECKPOINT"]).await;
        let ceiling_s = run_ceiling(&client, "bench.ceiling", &base).await;
        results.push(Row {
            scenario: "reread",
            rep,
            rows,
            ceiling_s,
            pulso_s,
            rss_kib: rss,
            phases: phases(&client).await,
        });

        // incr: revision 1 = 20% of the rows changed + 0.8·N new rows, read past the watermark.
        each(
            &client,
            &[
                "UPDATE pulso_flow.watermarks SET value = (SELECT to_char(max(creado_el) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM bench.trandeuda)",
                "TRUNCATE bench.ceiling",
                "INSERT INTO bench.ceiling SELECT * FROM bench.trandeuda",
                "VACUUM ANALYZE bench.ceiling",
                "VACUUM ANALYZE bench.trandeuda",
                "CHECKPOINT",
            ],
        )
        .await;
        let before = chrono_free_max(&client).await;
        let (pulso_s, rss) = run_pulso(&db_url, &file, "1", None, &[]);
        let incr = copy_out(
            &client,
            &format!("SELECT * FROM bench.trandeuda WHERE creado_el > '{before}'::timestamptz"),
        )
        .await;
        client.batch_execute("CHECKPOINT").await.unwrap();
        let ceiling_s = run_ceiling(&client, "bench.ceiling", &incr).await;
        let n: i64 = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM bench.trandeuda WHERE creado_el > '{before}'::timestamptz"
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        results.push(Row {
            scenario: "incr",
            rep,
            rows: n as u64,
            ceiling_s,
            pulso_s,
            rss_kib: rss,
            phases: phases(&client).await,
        });

        // incr+rec: back to the state before `incr` (the initial rows, the same watermark), then
        // the same increment with per-load reconciliation.
        if !with_reconcile {
            continue;
        }
        client
            .batch_execute("TRUNCATE bench.trandeuda")
            .await
            .unwrap();
        copy_in(&client, "bench.trandeuda", &base).await;
        each(
            &client,
            &[
                &format!("UPDATE pulso_flow.watermarks SET value = (SELECT to_char('{before}'::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))"),
                "VACUUM ANALYZE bench.trandeuda",
                "CHECKPOINT",
            ],
        )
        .await;
        let (rec_s, rss) = run_pulso(&db_url, &file_rec, "1", None, &[]);
        assert_reconciled(&client).await;
        results.push(Row {
            scenario: "incr+rec",
            rep,
            rows: n as u64,
            ceiling_s,
            pulso_s: rec_s,
            rss_kib: rss,
            phases: phases(&client).await,
        });
    }

    println!(
        "\nend-to-end load, {rows} generated trandeuda rows, {reps} reps (ratio = pulso-flow / ceiling wall time)"
    );
    println!(
        "{:<10} {:>4} {:>9} {:>10} {:>10} {:>12} {:>7} {:>10}",
        "scenario", "rep", "rows", "ceiling_s", "pulso_s", "pulso_rows/s", "ratio", "rss_MiB"
    );
    for r in &results {
        println!(
            "{:<10} {:>4} {:>9} {:>10.2} {:>10.2} {:>12.0} {:>7.2} {:>10.1}",
            r.scenario,
            r.rep,
            r.rows,
            r.ceiling_s,
            r.pulso_s,
            r.rows as f64 / r.pulso_s,
            r.pulso_s / r.ceiling_s,
            r.rss_kib as f64 / 1024.0
        );
    }
    for scenario in [
        "initial",
        "initial+rec",
        "unchanged",
        "reread",
        "incr",
        "incr+rec",
    ] {
        let mut ratios: Vec<f64> = results
            .iter()
            .filter(|r| r.scenario == scenario)
            .map(|r| r.pulso_s / r.ceiling_s)
            .collect();
        ratios.sort_by(f64::total_cmp);
        if let Some(median) = ratios.get(ratios.len() / 2) {
            println!("median ratio {scenario:<10} {median:.2}");
        }
    }
    println!(
        "\nwhere pulso-flow's time went (ms; the run's wall time also holds start-up and commit):"
    );
    for r in &results {
        println!("{:<10} {:>4} {}", r.scenario, r.rep, r.phases);
    }
    // The cost of reconciliation: with / without, same scenario and repetition.
    for (with, without) in [("initial+rec", "initial"), ("incr+rec", "incr")] {
        let mut ratios: Vec<f64> = results
            .iter()
            .filter(|r| r.scenario == with)
            .filter_map(|w| {
                results
                    .iter()
                    .find(|o| o.scenario == without && o.rep == w.rep)
                    .map(|o| w.pulso_s / o.pulso_s)
            })
            .collect();
        let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        ratios.sort_by(f64::total_cmp);
        if let Some(median) = ratios.get(ratios.len() / 2) {
            println!(
                "reconcile cost {without:<8} with/without {median:.2} (reps: {})",
                each.join(", ")
            );
        }
    }
    let peak = results.iter().map(|r| r.rss_kib).max().unwrap_or(0);
    println!("peak RSS of pulso-flow: {:.1} MiB", peak as f64 / 1024.0);
}

/// The phases of pulso-flow's latest load (see sinks/src/load.rs), as compact JSON.
async fn phases(client: &Client) -> String {
    client
        .query_one(
            "SELECT coalesce((details->'phases_ms')::text, '') FROM pulso_flow.node_runs \
             ORDER BY started_at DESC LIMIT 1",
            &[],
        )
        .await
        .map(|r| r.get::<_, String>(0))
        .unwrap_or_default()
}

/// Run statements one by one (VACUUM refuses the implicit transaction of a multi-statement query).
async fn each(client: &Client, statements: &[&str]) {
    for s in statements {
        client
            .batch_execute(s)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

/// The latest load reconciled, and its days matched (the bench measures a clean run).
async fn assert_reconciled(client: &Client) {
    let r: Option<String> = client
        .query_one(
            "SELECT (details->'reconcile'->'mismatches')::text FROM pulso_flow.node_runs \
             ORDER BY started_at DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        r.as_deref(),
        Some("[]"),
        "the load did not reconcile cleanly"
    );
}

/// Binary COPY of `data` (from [`copy_out`]) into `table`.
async fn copy_in(client: &Client, table: &str, data: &Bytes) {
    let sink = client
        .copy_in::<_, Bytes>(&format!("COPY {table} FROM STDIN (FORMAT binary)"))
        .await
        .unwrap();
    futures::pin_mut!(sink);
    sink.send(data.clone()).await.unwrap();
    sink.as_mut().finish().await.unwrap();
}

/// The table's greatest creado_el as text (no chrono needed in the bench).
async fn chrono_free_max(client: &Client) -> String {
    client
        .query_one("SELECT max(creado_el)::text FROM bench.trandeuda", &[])
        .await
        .unwrap()
        .get(0)
}
