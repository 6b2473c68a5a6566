//! `pulso-flow backfill` against the single-transaction load of the same rows, in the same run.
//!
//! N generated trandeuda rows spread over ten days (UTC). Per rep, on fresh targets:
//! - `single`     — `pulso-flow run`: the whole range in one transaction (the baseline);
//! - `chunks10`   — `pulso-flow backfill --chunk 1d --parallel 1`: ten chunks, ten transactions;
//! - `chunks10p3` — the same with `--parallel 3`.
//!
//! Reported: wall seconds, ratio to `single` of the same rep (lower is better), and peak RSS of
//! the process (GNU time's `%M` of a fresh child). Goal of issue 10: `chunks10` ≤ 1.2 × `single`,
//! peak RSS ≤ 128 MiB with `--parallel 3`.
//!
//! The generator pushes each chunk's window down (revision 0, values growing with the row id):
//! a chunk generates its own rows only, as a BigQuery chunk reads only its own.
//!
//! `cargo bench --bench backfill` (env: `BENCH_ROWS` default 5000000, `BENCH_REPS` default 3,
//! `DATABASE_URL` server, database `pf_bench_backfill` is recreated).

use pulso_testkit as common;

const COLUMNS: &str = "cod_cuenta text NOT NULL, nro_documento text NOT NULL, archivo text NOT NULL, \
    fecha_vencimiento date, monto_exigible numeric(15,2), creado_el timestamptz, \
    fecha_proceso date NOT NULL, motivo_rechazo text";
const PK: &str = "cod_cuenta, nro_documento, archivo, fecha_proceso";

/// N rows, `creado_el` from 2025-06-27T00:00Z in steps that spread them over ten days.
fn pipeline(rows: u64) -> String {
    let step_ms = (10 * 86_400_000 / rows.max(1)).max(1);
    format!(
        "name: bench-backfill
defaults: {{ time_zone: UTC }}
tables:
  - name: trandeuda
    target: bench.trandeuda
    create_target: false
    source:
      kind: generate
      rows: {rows}
      seed: 12
      columns:
        cod_cuenta: {{ from_id: \"{{}}\", offset: 5000000000, div: 2 }}
        nro_documento: {{ from_id: \"F{{}}\", offset: 100000000000 }}
        archivo: {{ from_id: \"Cartera_Gestion_{{}}_20250627\", offset: 0, div: 100000 }}
        fecha_vencimiento: {{ date: [\"2024-01-01\", \"2025-12-31\"] }}
        monto_exigible: {{ decimal: [\"1.00\", \"99999.99\"] }}
        creado_el: {{ incremental: {{ start: \"2025-06-27T00:00:00Z\", step: \"{step_ms}ms\", type: timestamp }} }}
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
    incremental: {{ column: creado_el, type: timestamp, lookback: 0s }}
"
    )
}

/// Wall seconds and peak RSS (KiB) of one pulso-flow command.
fn timed(db_url: &str, args: &[&str]) -> (f64, i64) {
    let run = common::bench::timed_run(env!("CARGO_BIN_EXE_pulso-flow"), db_url, args, &[]);
    (run.seconds, run.rss_kib)
}

async fn reset(client: &tokio_postgres::Client) {
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS pulso_flow CASCADE; DROP TABLE IF EXISTS refinery_schema_history; \
             DROP TABLE IF EXISTS bench.trandeuda; CREATE TABLE bench.trandeuda ({COLUMNS}, PRIMARY KEY ({PK}))"
        ))
        .await
        .unwrap();
    client.batch_execute("CHECKPOINT").await.unwrap();
}

async fn table_sum(client: &tokio_postgres::Client) -> (i64, String) {
    common::checksum(client, "bench.trandeuda").await
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rows: u64 = common::bench::env_number("BENCH_ROWS", 5_000_000);
    let reps: usize = common::bench::env_number("BENCH_REPS", 3);
    let (db_url, client) = common::bench::fresh_bench_database("pf_bench_backfill").await;
    let dir = tempfile::tempdir().unwrap();
    let file = common::write(dir.path(), "bench.yaml", &pipeline(rows));
    let file = file.display().to_string();
    let backfill = |parallel: &'static str| {
        vec![
            "backfill",
            file.as_str(),
            "--tables",
            "trandeuda",
            "--from",
            "2025-06-27",
            "--to",
            "2025-07-07",
            "--chunk",
            "1d",
            "--parallel",
            parallel,
        ]
    };

    println!("\nbackfill of {rows} generated trandeuda rows over 10 days, {reps} reps");
    println!(
        "{:<11} {:>4} {:>9} {:>8} {:>7} {:>8}",
        "scenario", "rep", "seconds", "rows/s", "ratio", "rss_MiB"
    );
    let mut ratios: Vec<(&str, f64)> = Vec::new();
    let mut peak_p3 = 0i64;
    for rep in 0..reps {
        reset(&client).await;
        let (single_s, single_rss) = timed(&db_url, &["run", &file]);
        let reference = table_sum(&client).await;
        assert_eq!(reference.0 as u64, rows);
        println!(
            "{:<11} {:>4} {:>9.2} {:>8.0} {:>7.2} {:>8.1}",
            "single",
            rep,
            single_s,
            rows as f64 / single_s,
            1.0,
            single_rss as f64 / 1024.0
        );
        for (name, parallel) in [("chunks10", "1"), ("chunks10p3", "3")] {
            reset(&client).await;
            let (s, rss) = timed(&db_url, &backfill(parallel));
            assert_eq!(
                table_sum(&client).await,
                reference,
                "{name} loaded another table"
            );
            println!(
                "{:<11} {:>4} {:>9.2} {:>8.0} {:>7.2} {:>8.1}",
                name,
                rep,
                s,
                rows as f64 / s,
                s / single_s,
                rss as f64 / 1024.0
            );
            ratios.push((name, s / single_s));
            if parallel == "3" {
                peak_p3 = peak_p3.max(rss);
            }
        }
    }
    for name in ["chunks10", "chunks10p3"] {
        let mut r: Vec<f64> = ratios
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, r)| *r)
            .collect();
        r.sort_by(f64::total_cmp);
        if let Some(median) = r.get(r.len() / 2) {
            println!("median ratio {name:<11} {median:.2} (goal <= 1.20 for chunks10)");
        }
    }
    println!(
        "peak RSS with --parallel 3: {:.1} MiB (goal <= 128)",
        peak_p3 as f64 / 1024.0
    );
}
