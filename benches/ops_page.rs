//! The operations page with 100 runs in the ledger (issue 13: ≤ 50 ms server-side).
//!
//! A database `pf_bench_ops` is recreated with the demo pipeline's 23 nodes and 100 runs of
//! them in `pulso_flow.runs`/`node_runs` (every tenth run failed, with an error text), and the API
//! is served in process on loopback with the demo as its pipeline file. Measured over HTTP:
//! `GET /health` (the baseline: a request that reads nothing), `GET /ops`,
//! `GET /ops/nodes/trandeuda` and `GET /ops/runs/<latest>`. After criterion's figures it prints
//! the median server-side time of each page (the `X-Process-Time` header the API sets on every
//! answer) and its ratio to the baseline's.
//!
//! `cargo bench --bench ops_page` (release; env `DATABASE_URL` names the server).

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

use common::{connect, server_url};
use pulso_testkit as common;

const RUNS: usize = 100;

async fn setup() -> (String, String) {
    let admin = connect(&format!("{}/postgres", server_url())).await;
    admin
        .batch_execute("DROP DATABASE IF EXISTS pf_bench_ops WITH (FORCE)")
        .await
        .expect("drop");
    admin
        .batch_execute("CREATE DATABASE pf_bench_ops")
        .await
        .expect("create");
    let url = format!("{}/pf_bench_ops", server_url());
    pulso_sinks::migrate::migrate_url(&url)
        .await
        .expect("migrations");
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.yaml");
    let p = pulso_engine::compile::load_pipeline(&demo).expect("demo loads");
    let nodes: Vec<(String, &'static str)> = p
        .dag
        .order
        .iter()
        .map(|&i| (p.nodes[i].name.clone(), p.nodes[i].kind.as_str()))
        .collect();
    let c = connect(&url).await;
    let t0 = chrono::Utc::now() - chrono::Duration::hours(3 * RUNS as i64);
    let mut latest = String::new();
    for r in 0..RUNS {
        let started = t0 + chrono::Duration::hours(3 * r as i64);
        let run_id = format!("{}-bench{r:04}", started.format("%Y%m%dT%H%M%SZ"));
        let failed = r % 10 == 9;
        let status = if failed { "failed" } else { "ok" };
        c.execute(
            "INSERT INTO pulso_flow.runs (run_id, pipeline, started_at, finished_at, status) \
             VALUES ($1, 'demo', $2::timestamptz, $2::timestamptz + interval '95 seconds', $3)",
            &[&run_id, &started, &status],
        )
        .await
        .expect("run row");
        for (k, (node, kind)) in nodes.iter().enumerate() {
            let node_failed = failed && k == 2;
            let error: Option<String> = node_failed.then(|| {
                format!("table {node}: source failed: cannot parse value 'x{r}' at row {k}")
            });
            c.execute(
                "INSERT INTO pulso_flow.node_runs (run_id, node, kind, target, mode, rows_read, \
                 rows_staged, inserted, updated, unchanged, started_at, duration_ms, status, \
                 error, watermark_before, watermark_after, details) \
                 VALUES ($1, $2, $3, 'raw.x', 'incremental', $4, $4, $5, $6, 0, \
                 $7::timestamptz + ($8::float8 * interval '3 seconds'), $9, $10, $11, '2025-06-01', '2025-06-02', \
                 '{\"days\": [\"2025-06-01\"]}'::jsonb)",
                &[
                    &run_id,
                    node,
                    kind,
                    &(1000 + r as i64),
                    &(r as i64),
                    &(k as i64),
                    &started,
                    &(k as f64),
                    &(500 + 40 * k as i64),
                    &if node_failed { "failed" } else { "ok" },
                    &error,
                ],
            )
            .await
            .expect("node run row");
        }
        latest = run_id;
    }
    for (node, _) in &nodes {
        c.execute(
            "INSERT INTO pulso_flow.watermarks (node, target, inc_type, value, last_status, \
             data_version, updated_at) VALUES ($1, 'raw.x', 'date', '2025-06-02', 'ok', $2, now())",
            &[node, &(RUNS as i64)],
        )
        .await
        .expect("watermark row");
    }
    (url, latest)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (url, latest) = rt.block_on(setup());
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.yaml");
    let mut cfg = pulso_api::ApiConfig::new(url);
    cfg.pipeline_file = demo.to_string_lossy().into_owned();
    cfg.access_log = false;
    cfg.redis_prefix = format!("pfbenchops{}", std::process::id());
    let (base, stop) = rt.block_on(async {
        let api = pulso_api::Api::build(cfg).await.expect("api builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(api.serve(listener, async {
            let _ = rx.await;
        }));
        (base, tx)
    });
    let client = reqwest::Client::new();
    let pages = [
        ("health (baseline)", "/health".to_string()),
        ("ops", "/ops".to_string()),
        ("ops node", "/ops/nodes/trandeuda".to_string()),
        ("ops run", format!("/ops/runs/{latest}")),
    ];
    let get = |path: &str| {
        let url = format!("{base}{path}");
        let client = client.clone();
        rt.block_on(async move {
            let r = client.get(url).send().await.expect("request");
            assert_eq!(r.status().as_u16(), 200, "{}", r.status());
            let server_s: f64 = r.headers()["x-process-time"]
                .to_str()
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN);
            let body = r.bytes().await.expect("body");
            (server_s, body.len())
        })
    };
    let mut group = c.benchmark_group("ops_page");
    group.measurement_time(Duration::from_secs(5));
    for (name, path) in &pages {
        group.bench_function(*name, |b| b.iter(|| get(path)));
    }
    group.finish();

    // Server-side medians (X-Process-Time) over 100 requests each, and ratios to the baseline.
    let mut medians = Vec::new();
    for (name, path) in &pages {
        let mut times: Vec<f64> = (0..100).map(|_| get(path).0 * 1000.0).collect();
        times.sort_by(f64::total_cmp);
        let bytes = get(path).1;
        medians.push((*name, times[50], times[95], bytes));
    }
    let base_ms = medians[0].1;
    println!("\nserver-side time (X-Process-Time), 100 requests, {RUNS} runs in the ledger:");
    for (name, p50, p95, bytes) in medians {
        println!(
            "  {name:<18} p50 {p50:8.3} ms  p95 {p95:8.3} ms  ({:6.1}x baseline)  {bytes} bytes",
            p50 / base_ms
        );
    }
    let _ = stop.send(());
}

criterion_group!(benches, bench);
criterion_main!(benches);
