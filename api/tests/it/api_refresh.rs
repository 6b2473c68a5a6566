//! ETL refresh: refused without the token (401) or with a wrong one (403); with it, a real run
//! starts in the background (one at a time) and its data is served without a restart.

use pulso_testkit as common;

use std::time::Duration;

use common::*;
use serde_json::json;

const TOKEN: &str = "test-refresh-token-0123456789";

async fn post_auth(
    url: &str,
    auth: Option<&str>,
    body: &serde_json::Value,
) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let mut r = http().post(url).json(body);
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.json().await.unwrap(), headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_needs_the_token_and_runs_the_pipeline() {
    let db = TestDb::migrated("refresh").await;
    let mut cfg = config(&db.url);
    cfg.refresh_token = Some(TOKEN.into());
    cfg.pipeline_file = demo_file().to_string_lossy().into_owned();
    let server = TestServer::start(cfg).await;
    let url = server.url("/api/v1/etl/refresh/dashboard");

    let (s, v, h) = post_auth(&url, None, &json!({})).await;
    assert_eq!(s, 401, "{v}");
    assert!(
        h["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let (s, _, _) = post_auth(&url, Some("Basic dXNlcjpwYXNz"), &json!({})).await;
    assert_eq!(s, 401);
    let (s, v, _) = post_auth(&url, Some("Bearer wrong-token-wrong-token"), &json!({})).await;
    assert_eq!(s, 403, "{v}");
    for path in ["/api/v1/etl/refresh/table/trandeuda", "/api/v1/refresh"] {
        let (s, _, _) = post_auth(&server.url(path), None, &json!({})).await;
        assert_eq!(s, 401, "{path}");
        let (s, _, _) = post_auth(&server.url(path), Some("Bearer nope"), &json!({})).await;
        assert_eq!(s, 403, "{path}");
    }
    // Nothing ran.
    let c = db.client().await;
    let runs: i64 = c
        .query_one("SELECT count(*) FROM pulso_flow.runs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(runs, 0);

    let auth = format!("Bearer {TOKEN}");
    let (s, v, _) = post_auth(
        &server.url("/api/v1/etl/refresh/table/nope"),
        Some(&auth),
        &json!({}),
    )
    .await;
    assert_eq!(s, 404, "{v}");

    let (s, started, _) = post_auth(&url, Some(&auth), &json!({ "max_concurrent": 2 })).await;
    assert_eq!(s, 200, "{started}");
    assert_eq!(started["status"], "started");
    let id = started["pipeline_id"].as_str().unwrap().to_string();
    assert!(
        started["nodes"]
            .as_array()
            .unwrap()
            .contains(&json!("dashboard"))
    );
    // One at a time: asking for tables while a run is active is 409 with the running run's
    // id — those tables were not refreshed (issue 14 item 12; it used to be 200 "running").
    for (path, body) in [
        (
            "/api/v1/etl/refresh/dashboard",
            json!({ "tables": ["pagos"] }),
        ),
        ("/api/v1/etl/refresh/table/pagos", json!({})),
        ("/api/v1/refresh", json!({})),
    ] {
        let (s, again, _) = post_auth(&server.url(path), Some(&auth), &body).await;
        assert_eq!(s, 409, "{path}: {again}");
        assert_eq!(again["status"], "error");
        assert_eq!(again["code"], 409);
        assert_eq!(again["running"]["run_id"], id, "{again}");
        assert!(again["message"].as_str().unwrap().contains("not refreshed"));
    }

    eventually(180, "the refresh finishes", || async {
        let (_, st) = get_json(&server.url("/api/v1/etl/status")).await;
        st["running_refresh"].is_null()
    })
    .await;
    let (_, st) = get_json(&server.url("/api/v1/etl/status")).await;
    let run = st["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["run_id"] == id.as_str())
        .unwrap_or_else(|| panic!("run {id} not in {st}"));
    assert_eq!(run["status"], "ok", "{st}");
    assert_eq!(st["failed_tables"], 0);
    // Served at once by the running API.
    let (s, d) = get_json(&server.url("/api/v1/dashboard")).await;
    assert_eq!(s, 200);
    assert!(!d["segmentoData"].as_array().unwrap().is_empty());

    // A table and its dependants only.
    let (s, t, _) = post_auth(
        &server.url("/api/v1/etl/refresh/table/pagos"),
        Some(&auth),
        &json!({}),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    let nodes: Vec<&str> = t["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(nodes.contains(&"pagos") && nodes.contains(&"pago") && nodes.contains(&"dashboard"));
    assert!(
        !nodes.contains(&"trandeuda") && !nodes.contains(&"gestion"),
        "{nodes:?}"
    );
    eventually(120, "the table refresh finishes", || async {
        let (_, st) = get_json(&server.url("/api/v1/etl/status")).await;
        st["running_refresh"].is_null()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    server.stop().await;
}

/// Issue 14 item 12: the token is checked before the body is parsed, and an empty table list is
/// refused instead of starting a run of nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_before_body_and_no_empty_runs() {
    let db = TestDb::migrated("refresh_order").await;
    let mut cfg = config(&db.url);
    cfg.refresh_token = Some(TOKEN.into());
    cfg.pipeline_file = demo_file().to_string_lossy().into_owned();
    let server = TestServer::start(cfg).await;
    let url = server.url("/api/v1/etl/refresh/dashboard");
    let c = http();
    // A malformed body without a token: 401 (the body is not even read), not 400.
    let r = c
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(&url)
        .header("authorization", "Bearer wrong-token-wrong-token")
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Any case of the scheme.
    let (s, v, _) = post_auth(
        &url,
        Some(&format!("BEARER {TOKEN}")),
        &json!({"tables": []}),
    )
    .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["parameter"], "tables");
    let c = db.client().await;
    let runs: i64 = c
        .query_one("SELECT count(*) FROM pulso_flow.runs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(runs, 0, "nothing ran");
    server.stop().await;
}

/// Issue 14 item 13: wrong tokens are limited per client (429 with Retry-After past the limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tokens_are_rate_limited() {
    let db = TestDb::migrated("refresh_limit").await;
    let mut cfg = config(&db.url);
    cfg.refresh_token = Some(TOKEN.into());
    cfg.auth_failures_per_minute = 3;
    let server = TestServer::start(cfg).await;
    let url = server.url("/api/v1/refresh");
    for _ in 0..3 {
        let (s, _, _) = post_auth(&url, Some("Bearer wrong-token-wrong-token"), &json!({})).await;
        assert_eq!(s, 403);
    }
    let (s, v, h) = post_auth(&url, Some("Bearer wrong-token-wrong-token"), &json!({})).await;
    assert_eq!(s, 429, "{v}");
    assert_eq!(v["code"], 429);
    assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_is_disabled_without_a_configured_token() {
    let db = TestDb::migrated("notoken").await;
    let server = TestServer::start(config(&db.url)).await;
    let url = server.url("/api/v1/etl/refresh/dashboard");
    let (s, _, _) = post_auth(&url, None, &json!({})).await;
    assert_eq!(s, 401);
    let (s, v, _) = post_auth(&url, Some("Bearer anything-at-all-123"), &json!({})).await;
    assert_eq!(s, 403);
    assert!(v["message"].as_str().unwrap().contains("disabled"));
    server.stop().await;
}
