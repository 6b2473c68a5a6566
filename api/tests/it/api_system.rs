//! Liveness, readiness, metrics, OpenAPI, docs, hardening (headers, CORS, errors, limits).

use pulso_testkit as common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_metrics_openapi_docs() {
    let db = TestDb::migrated("sys").await;
    let server = TestServer::start(config(&db.url)).await;

    let (s, v) = get_json(&server.url("/health")).await;
    assert_eq!(s, 200);
    assert_eq!(v["status"], "healthy");

    let (s, v) = get_json(&server.url("/ready")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["checks"]["postgres"]["status"], "up");
    assert_eq!(v["checks"]["redis"]["status"], "disabled");
    assert_eq!(v["checks"]["listener"]["status"], "up");
    assert_eq!(v["status"], "ready");
    assert!(v["dataVersion"].is_i64());

    let (s, v) = get_json(&server.url("/api/v1/openapi.json")).await;
    assert_eq!(s, 200);
    assert!(v["openapi"].as_str().unwrap().starts_with("3."));
    assert!(v["paths"]["/ready"].is_object());
    assert!(v["paths"]["/api/v1/etl/status"].is_object());
    assert!(v["components"]["securitySchemes"]["bearer"].is_object());

    let r = http().get(server.url("/docs")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.text().await.unwrap().contains("/api/v1/openapi.json"));

    // Metrics count what was just served, per route template.
    let text = http()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"http_requests_total{endpoint="/health",method="GET",status="200"} 1"#),
        "{text}"
    );
    assert!(text.contains("http_request_duration_seconds_bucket"));
    assert!(text.contains("pulso_api_db_query_seconds"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_request_id_errors_and_trailing_slashes() {
    let db = TestDb::migrated("hdr").await;
    let server = TestServer::start(config(&db.url)).await;
    let c = http();

    let r = c.get(server.url("/health")).send().await.unwrap();
    let h = r.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let generated = h["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    assert!(h.contains_key("x-process-time"));

    // A well-formed incoming request id is kept; a malformed one is replaced.
    let r = c
        .get(server.url("/health"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let r = c
        .get(server.url("/health"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "bad id with spaces");

    // Unknown paths and methods: JSON errors.
    let (s, v) = get_json(&server.url("/api/v1/nope")).await;
    assert_eq!(s, 404);
    assert_eq!(v["status"], "error");
    assert_eq!(v["code"], 404);
    let r = c.delete(server.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 405);

    // Both trailing-slash variants.
    for p in [
        "/api/v1/etl/status",
        "/api/v1/etl/status/",
        "/api/v1/health",
        "/api/v1/health/",
    ] {
        let (s, v) = get_json(&server.url(p)).await;
        assert_eq!(s, 200, "{p}: {v}");
    }

    // Unknown query parameters are refused, naming the parameter.
    let (s, v) = get_json(&server.url("/api/v1/etl/status?bogus=1")).await;
    assert_eq!(s, 400);
    assert_eq!(v["parameter"], "bogus");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_only_configured_origins() {
    let db = TestDb::migrated("cors").await;
    let mut cfg = config(&db.url);
    cfg.cors_origins = vec!["http://dash.example".into()];
    cfg.cors_credentials = true;
    let server = TestServer::start(cfg).await;
    let c = http();

    let r = c
        .request(reqwest::Method::OPTIONS, server.url("/api/v1/etl/status"))
        .header("origin", "http://dash.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://dash.example"
    );
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");

    let r = c
        .get(server.url("/health"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    let r = c
        .get(server.url("/health"))
        .header("origin", "http://dash.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://dash.example"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_limit_and_malformed_json() {
    let db = TestDb::migrated("body").await;
    let mut cfg = config(&db.url);
    cfg.body_limit = 1024;
    cfg.refresh_token = Some("0123456789abcdef-token".into());
    let server = TestServer::start(cfg).await;
    let c = http();
    let url = server.url("/api/v1/etl/refresh/dashboard");
    let auth = "Bearer 0123456789abcdef-token";

    let big = json!({ "tables": vec!["x".repeat(100); 50] });
    let r = c
        .post(&url)
        .header("authorization", auth)
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["code"], 413);

    let r = c
        .post(&url)
        .header("authorization", auth)
        .header("content-type", "application/json")
        .body("{\"force\": tru")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["message"].as_str().unwrap().contains("not valid JSON"),
        "{v}"
    );

    let r = c
        .post(&url)
        .header("authorization", auth)
        .json(&json!({ "force": "yes" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["parameter"], "force", "{v}");

    let r = c
        .post(&url)
        .header("authorization", auth)
        .json(&json!({ "max_concurrent": 99 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_reports_postgres_down_but_health_stays_up() {
    let mut cfg = config("postgres://postgres@127.0.0.1:1/nowhere");
    cfg.pool_wait = std::time::Duration::from_millis(500);
    let api = pulso_api::Api::build(cfg)
        .await
        .expect("builds without a database");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let h = tokio::spawn(api.serve(listener, async {
        let _ = rx.await;
    }));
    let (s, _) = get_json(&format!("{base}/health")).await;
    assert_eq!(s, 200);
    let (s, v) = get_json(&format!("{base}/ready")).await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["status"], "unavailable");
    assert_eq!(v["checks"]["postgres"]["status"], "down");
    let _ = tx.send(());
    h.await.unwrap().unwrap();
}

/// The served OpenAPI document is byte-identical to `api/tests/openapi.golden.json`, so a change
/// of the documented contract (or of its serialisation) is always a visible, reviewed edit of that
/// file. After an intended change, regenerate it with
/// `PULSO_UPDATE_OPENAPI_GOLDEN=1 cargo test -p pulso-api --test it api_system::openapi_golden`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_matches_the_golden_file() {
    let golden_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openapi.golden.json");
    let db = TestDb::migrated("openapi").await;
    let server = TestServer::start(config(&db.url)).await;
    let r = http()
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let served = r.bytes().await.unwrap();
    server.stop().await;
    if std::env::var_os("PULSO_UPDATE_OPENAPI_GOLDEN").is_some() {
        std::fs::write(&golden_path, &served).unwrap();
    }
    let golden =
        std::fs::read(&golden_path).unwrap_or_else(|e| panic!("{}: {e}", golden_path.display()));
    if served[..] != golden[..] {
        let at = served
            .iter()
            .zip(&golden)
            .position(|(a, b)| a != b)
            .unwrap_or(served.len().min(golden.len()));
        let around = |b: &[u8]| {
            String::from_utf8_lossy(&b[at.saturating_sub(200)..(at + 200).min(b.len())])
                .into_owned()
        };
        panic!(
            "the served OpenAPI document differs from {} at byte {at} (served {} bytes, golden {}):\n\
             served: …{}…\ngolden: …{}…",
            golden_path.display(),
            served.len(),
            golden.len(),
            around(&served),
            around(&golden),
        );
    }
}
