//! The cache: hits, single flight, normalised keys, and invalidation at load commit.

use pulso_testkit as common;

use common::*;

const DASHBOARD_QUERIES: &str = "pulso_api_db_query_seconds_count{query=\"dashboard\"}";
const MEMORY_HITS: &str = "pulso_api_cache_total{level=\"memory\",result=\"hit\"}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_run_the_query_once_and_keys_are_normalised() {
    let url = demo_db();
    let server = TestServer::start(config(url)).await;
    let path = "/api/v1/dashboard?fechaCorte=2025-06-18&cartera=TEMPRANA,OTRAS&dimensions=tramo";
    let before = metric(&server, DASHBOARD_QUERIES).await;
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let u = server.url(path);
        tasks.push(tokio::spawn(async move { get_json(&u).await }));
    }
    let mut bodies = Vec::new();
    for t in tasks {
        let (s, v) = t.await.unwrap();
        assert_eq!(s, 200);
        bodies.push(v);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        metric(&server, DASHBOARD_QUERIES).await - before,
        1.0,
        "32 concurrent identical misses must run the query once"
    );
    // The same request spelt differently (list order, repetition, aliases, a trailing slash,
    // the default filled in explicitly) is the same key: a memory hit, no query.
    let hits = metric(&server, MEMORY_HITS).await;
    for variant in [
        "/api/v1/dashboard/?fecha_corte=2025-06-18&cartera=OTRAS&cartera=TEMPRANA&dimensions=tramo",
        "/api/v1/dashboard?dimensions=tramo&cartera=TEMPRANA&cartera=OTRAS,TEMPRANA&fechaCorte=2025-06-18",
    ] {
        let (s, v) = get_json(&server.url(variant)).await;
        assert_eq!(s, 200);
        assert_eq!(v, bodies[0]);
    }
    let (s, v) = post_json(
        &server.url("/api/v1/dashboard"),
        &serde_json::json!({"fechaCorte": "2025-06-18", "filters": {"cartera": ["OTRAS", "TEMPRANA"]}, "dimensions": ["tramo"]}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v, bodies[0]);
    assert_eq!(metric(&server, DASHBOARD_QUERIES).await - before, 1.0);
    assert_eq!(metric(&server, MEMORY_HITS).await - hits, 3.0);
    server.stop().await;
}

/// A committed load is visible to the very next request: no restart, no TTL wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_request_after_a_load_sees_the_new_numbers() {
    let db = fresh_demo("fresh").await;
    let mut cfg = config(&db.url);
    cfg.cache_ttl = std::time::Duration::from_secs(3600);
    let server = TestServer::start(cfg).await;
    let client = db.client().await;

    let (_, latest_before) = get_json(&server.url("/api/v1/dashboard")).await;
    let last: chrono::NaiveDate = latest_before["fechaCorte"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // The next days have no photo yet: empty answers, now cached.
    let next: Vec<chrono::NaiveDate> = (1..=3).map(|d| last + chrono::Duration::days(d)).collect();
    for d in &next {
        let (_, v) = get_json(&server.url(&format!("/api/v1/dashboard?fechaCorte={d}"))).await;
        assert_eq!(
            v["segmentoData"],
            serde_json::json!([]),
            "{d} has no photo yet"
        );
    }
    let evo = "/api/v1/evolution?fecha_inicio=2025-06-01&fecha_fin=2025-07-31&metrics=recupero";
    let (_, evo_before) = get_json(&server.url(evo)).await;
    let version_before = server.state.version.last_known();

    // The next day's data plus late corrections (what `DEMO_REVISION=1 pulso-flow run` loads).
    run_pipeline(&demo_revision_file(1), &db.url).await;

    // The very next requests.
    let (_, latest_after) = get_json(&server.url("/api/v1/dashboard")).await;
    let (_, evo_after) = get_json(&server.url(evo)).await;
    assert!(server.state.version.last_known() > version_before);
    let new_day: chrono::NaiveDate = client
        .query_one("SELECT max(fecha_foto) FROM mart.dashboard", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        next.contains(&new_day),
        "the revision adds a photo date after {last}"
    );
    assert_eq!(latest_after["fechaCorte"], new_day.to_string());
    let (_, after) =
        get_json(&server.url(&format!("/api/v1/dashboard?fechaCorte={new_day}"))).await;
    let r = client
        .query_one(
            "SELECT sum(cuentas)::int8, sum(recupero)::float8, sum(cuentas_gestionadas)::int8 \
             FROM mart.dashboard WHERE fecha_foto = $1",
            &[&new_day],
        )
        .await
        .unwrap();
    let total = after["segmentoData"]
        .as_array()
        .unwrap()
        .last()
        .expect("rows now")
        .clone();
    assert_eq!(total["cuentas"], r.get::<_, i64>(0));
    assert_eq!(
        total["recupero"].as_f64().unwrap(),
        (r.get::<_, f64>(1) * 100.0).round() / 100.0
    );
    assert_eq!(total["cuentasGestionadas"], r.get::<_, i64>(2));
    assert!(
        evo_after != evo_before,
        "the evolution still shows the numbers from before the load"
    );
    server.stop().await;
}

/// While the LISTEN connection is down the version is read per request, so a commit made
/// meanwhile is still seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_loss_falls_back_to_reading_the_version() {
    let db = TestDb::migrated("listener").await;
    let server = TestServer::start(config(&db.url)).await;
    let (_, r) = get_json(&server.url("/api/v1/etl/status")).await;
    let v0 = r["data_version"].as_i64().unwrap();
    // Kill the listener's backend and, in the same batch (microseconds later, long before its
    // reconnect back-off), commit a data-version bump that nobody notifies.
    let c = db.client().await;
    c.batch_execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
          WHERE application_name = 'pulso-flow-api-listener' AND datname = current_database(); \
         INSERT INTO pulso_flow.watermarks (node, target, last_status, data_version) \
         VALUES ('x', 'raw.x', 'ok', 5)",
    )
    .await
    .unwrap();
    // Seen either per request while the listener is down, or by its re-read on reconnecting.
    eventually(10, "the version includes the commit", || async {
        server
            .state
            .version
            .current()
            .await
            .ends_with(&format!(".{}", v0 + 5))
    })
    .await;
    eventually(10, "the listener reconnects", || async {
        server.state.version.is_live()
    })
    .await;
    c.batch_execute(
        "BEGIN; UPDATE pulso_flow.watermarks SET data_version = data_version + 1 WHERE node = 'x'; \
         SELECT pg_notify('pulso_flow_loads', '{\"node\":\"x\"}'); COMMIT;",
    )
    .await
    .unwrap();
    eventually(5, "the notification is learnt", || async {
        server.state.version.last_known() == v0 + 6
    })
    .await;
    server.stop().await;
}
