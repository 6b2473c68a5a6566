//! Hostile input, one test per defect of issue 14 that the API had (items 1, 2, 3, 7, 8, 9, 10,
//! 11; items 12 and 13 are in `api_refresh.rs`, 4 in `api_adversarial.rs`, 14 in the
//! configuration's unit tests). Loopback only, bounded in count and time.

use pulso_testkit as common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Every error answer keeps the contract: JSON, `status: error`, `code` = the HTTP status, a
/// message.
async fn error_contract(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    assert!(
        ctype.starts_with("application/json"),
        "{status} {ctype}: {text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(v["status"], "error", "{v}");
    assert_eq!(v["code"], status, "{v}");
    assert!(v["message"].is_string(), "{v}");
    (status, v)
}

/// Item 1: invented method names are one `OTHER` label, so `/metrics` does not grow with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_methods_do_not_grow_metrics() {
    let db = TestDb::migrated("h_methods").await;
    let server = TestServer::start(config(&db.url)).await;
    let c = http();
    let size = || async {
        http()
            .get(server.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    // Warm up the series a normal client creates.
    let _ = c.get(server.url("/health")).send().await.unwrap();
    let _ = size().await;
    let before = size().await.len();
    for i in 0..300 {
        let name = format!("M{i:04}{}", "X".repeat(2048));
        let m = reqwest::Method::from_bytes(name.as_bytes()).unwrap();
        let r = c.request(m, server.url("/health")).send().await.unwrap();
        let (s, _) = error_contract(r).await;
        assert_eq!(s, 405);
    }
    let text = size().await;
    assert!(
        !text.contains("M0001X"),
        "an invented method became a label"
    );
    assert!(text.contains(r#"method="OTHER""#));
    assert!(
        text.len() < before + 4096,
        "/metrics grew from {before} to {} bytes",
        text.len()
    );
    server.stop().await;
}

/// Item 2: a filter value that exists nowhere in the marts is refused before a cache key is
/// made, so invented values add nothing to Redis; valid requests are bounded per data version
/// by the write budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_filter_values_never_reach_redis() {
    let url = demo_db();
    let redis = OwnRedis::start().await;
    let mut cfg = config(url);
    cfg.redis_url = Some(redis.url());
    cfg.redis_max_keys = 5;
    let server = TestServer::start(cfg).await;
    let r = server.state.cache.redis().unwrap().clone();
    eventually(10, "redis up", || {
        let r = r.clone();
        async move { r.is_up() }
    })
    .await;
    let c = http();
    let paths = [
        "/api/v1/dashboard?cartera=",
        "/api/v1/dashboard?tramo=",
        "/api/v1/dashboard?rangoDeuda=",
        "/api/v1/dashboard?servicio=",
        "/api/v1/evolution?cartera=",
        "/api/v1/assignment?servicio=",
        "/api/v1/operation?cartera=",
        "/api/v1/productivity?cartera=",
        "/api/v1/productivity?agente=",
    ];
    for i in 0..400 {
        let path = format!("{}INVENTED{i}", paths[i % paths.len()]);
        let r = c.get(server.url(&path)).send().await.unwrap();
        let (s, v) = error_contract(r).await;
        assert_eq!(s, 422, "{path}: {v}");
        assert!(v["message"].as_str().unwrap().contains("INVENTED"), "{v}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        redis_keys(&redis),
        0,
        "invented values were cached in Redis"
    );
    // Real values are served; at most 5 of their answers go to Redis for this data version.
    for d in 10..=25 {
        let r = c
            .get(server.url(&format!(
                "/api/v1/dashboard?cartera=TEMPRANA&fechaCorte=2025-06-{d}"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let keys = redis_keys(&redis);
    assert!((1..=5).contains(&keys), "{keys} keys in Redis");
    assert!(metric(&server, "pulso_api_redis_writes_skipped_total").await >= 10.0);
    server.stop().await;
}

fn redis_keys(redis: &OwnRedis) -> u64 {
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "dbsize"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Read from `s` until EOF or an error; what was read and whether it ended within `within`.
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(within, async {
        let mut chunk = [0u8; 4096];
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&buf).into_owned(), closed)
}

/// Item 3: half-sent headers and idle keep-alive connections are closed after the header
/// timeout; past the connection limit a connection gets a JSON 503 and is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_connections_limited() {
    let db = TestDb::migrated("h_slow").await;
    let mut cfg = config(&db.url);
    cfg.header_timeout = Duration::from_millis(300);
    cfg.request_timeout = Duration::from_secs(1);
    cfg.idle_timeout = Duration::from_secs(2);
    cfg.max_connections = 4;
    let server = TestServer::start(cfg).await;
    let addr = server.base.trim_start_matches("http://").to_string();

    // Half the headers, then nothing: closed after ~300 ms.
    let t0 = Instant::now();
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(3)).await;
    assert!(closed, "a half-sent request head kept the connection open");
    assert!(
        t0.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t0.elapsed()
    );

    // A keep-alive connection that asks nothing more is closed too.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (text, closed) = read_until_closed(&mut s, Duration::from_secs(3)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(closed, "an idle keep-alive connection stayed open");

    // A body that never comes: 503 within the request timeout, as JSON.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(
        b"POST /api/v1/dashboard HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"fil",
    )
    .await
    .unwrap();
    let (text, _) = read_until_closed(&mut s, Duration::from_secs(4)).await;
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("\"code\":503"), "{text}");

    // The connection limit: 4 open, the 5th is refused with a JSON 503 and closed.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut extra = TcpStream::connect(&addr).await.unwrap();
    extra
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (text, closed) = read_until_closed(&mut extra, Duration::from_secs(2)).await;
    assert!(closed);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    let body = text.split("\r\n\r\n").nth(1).unwrap();
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["code"], 503);
    // Once the held connections time out, new ones are served again.
    drop(held);
    eventually(5, "a connection is served again", || async {
        http()
            .get(server.url("/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(metric(&server, "pulso_api_connections_refused_total").await >= 1.0);
    server.stop().await;
}

/// Item 7: without a token, the ETL status names the error class and node only; with the
/// monitor token the full text. Private endpoints need the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_exposes_error_text_only_with_the_token() {
    let db = TestDb::migrated("h_status").await;
    let c = db.client().await;
    let secret = "table trandeuda: source failed: arrow: Parser error at /srv/data/x.csv row 7 \
                  cuenta=123456789 value='secret'";
    c.execute(
        "INSERT INTO pulso_flow.runs (run_id, pipeline, status, started_at, finished_at) \
         VALUES ('r1', 'p', 'failed', now(), now())",
        &[],
    )
    .await
    .unwrap();
    c.execute(
        "INSERT INTO pulso_flow.node_runs (run_id, node, kind, status, started_at, duration_ms, error) \
         VALUES ('r1', 'trandeuda', 'table', 'failed', now(), 5, $1)",
        &[&secret],
    )
    .await
    .unwrap();
    let mut cfg = config(&db.url);
    cfg.monitor_token = Some("monitor-token-0123456789".into());
    cfg.pipeline_file = demo_file().to_string_lossy().into_owned();
    let server = TestServer::start(cfg).await;
    let (s, v) = get_json(&server.url("/api/v1/etl/status")).await;
    assert_eq!(s, 200, "{v}");
    let t = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table_name"] == "trandeuda")
        .unwrap_or_else(|| panic!("{v}"))
        .clone();
    assert_eq!(t["error_class"], "source");
    let public = t["error_message"].as_str().unwrap();
    assert!(
        public.contains("trandeuda") && public.contains("source"),
        "{public}"
    );
    for leak in ["/srv/data", "123456789", "secret", "Parser"] {
        assert!(!v.to_string().contains(leak), "{leak} leaked: {v}");
    }
    let (_, t) = get_json(&server.url("/api/v1/etl/status/table/trandeuda")).await;
    assert!(!t.to_string().contains("secret"), "{t}");
    let full = http()
        .get(server.url("/api/v1/etl/status/table/trandeuda"))
        .header("authorization", "Bearer monitor-token-0123456789")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(full["error_message"], secret);
    let r = http()
        .get(server.url("/api/v1/etl/status"))
        .header("authorization", "Bearer wrong-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(error_contract(r).await.0, 403);
    server.stop().await;

    // Everything private: 401 without the token, served with it.
    let mut cfg = config(&db.url);
    cfg.monitor_token = Some("monitor-token-0123456789".into());
    cfg.pipeline_file = demo_file().to_string_lossy().into_owned();
    cfg.private_endpoints = pulso_api::config::PrivateEndpoints {
        metrics: true,
        docs: true,
        ready: true,
        status: true,
    };
    let server = TestServer::start(cfg).await;
    for path in [
        "/metrics",
        "/ready",
        "/docs",
        "/redoc",
        "/api/v1/openapi.json",
        "/api/v1/etl/status",
        "/api/v1/etl/status/table/trandeuda",
    ] {
        let r = http().get(server.url(path)).send().await.unwrap();
        assert_eq!(error_contract(r).await.0, 401, "{path}");
        let r = http()
            .get(server.url(path))
            .header("authorization", "Bearer monitor-token-0123456789")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    // Liveness stays public.
    let (s, _) = get_json(&server.url("/health")).await;
    assert_eq!(s, 200);
    server.stop().await;
}

/// Item 8: the viewers' scripts come from this server, and the pages' CSP names no other origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_viewers_are_served_from_the_binary() {
    let db = TestDb::migrated("h_docs").await;
    let server = TestServer::start(config(&db.url)).await;
    for page in ["/docs", "/redoc"] {
        let r = http().get(server.url(page)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(!csp.contains("http"), "{page}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        let html = r.text().await.unwrap();
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{html}"
        );
        let src = html
            .split("<script src=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_else(|| panic!("{html}"));
        assert!(src.starts_with("/docs/assets/"), "{src}");
        let js = http().get(server.url(src)).send().await.unwrap();
        assert_eq!(js.status(), 200);
        assert!(
            js.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/javascript")
        );
        assert!(js.bytes().await.unwrap().len() > 500_000, "{src}");
    }
    server.stop().await;
}

/// Item 9: "all agents" is not an agent: its detail page is 404, as is an agent the data does
/// not have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_detail_of_all_agents_is_404() {
    let url = demo_db();
    let server = TestServer::start(config(url)).await;
    for agent in ["TODOS", "todos", "%20", "ALL", "nadie%40example.com"] {
        let r = http()
            .get(server.url(&format!(
                "/api/v1/productivity/agents/{agent}?fecha_inicio=2025-06-01&fecha_fin=2025-06-30"
            )))
            .send()
            .await
            .unwrap();
        let (s, v) = error_contract(r).await;
        assert_eq!(s, 404, "{agent}: {v}");
    }
    server.stop().await;
}

/// Item 10: whole values only — nothing after a valid prefix is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loose_values_are_refused() {
    let url = demo_db();
    let server = TestServer::start(config(url)).await;
    let c = http();
    for (path, status, parameter) in [
        (
            "/api/v1/dashboard?fechaCorte=2025-06-30T99:99:99';DROP%20TABLE%20x",
            400,
            "fechaCorte",
        ),
        (
            "/api/v1/dashboard?fechaCorte=2025-06-30Tx",
            400,
            "fechaCorte",
        ),
        ("/api/v1/dashboard?cartera=TODAS,';DROP", 400, "cartera"),
        (
            "/api/v1/assignment?currentPeriod=0000-01",
            422,
            "currentPeriod",
        ),
        ("/api/v1/evolution?periodo=JUNIO", 400, "periodo"),
    ] {
        let r = c.get(server.url(path)).send().await.unwrap();
        let (s, v) = error_contract(r).await;
        assert_eq!(s, status, "{path}: {v}");
        assert_eq!(v["parameter"], parameter, "{path}: {v}");
    }
    for (body, parameter) in [
        (r#"{"fechaCorte":"2025-06-30"} trailing"#, Value::Null),
        (r#"{}{}"#, Value::Null),
        (r#"[]"#, Value::Null),
        (r#"{"filters":[null]}"#, json!("filters")),
        (r#"{"filters":[]}"#, json!("filters")),
        (
            r#"{"filters":{"cartera":[null]}}"#,
            json!("filters.cartera[0]"),
        ),
        (r#"{"dimensions":[["cartera"]]}"#, json!("dimensions[0]")),
    ] {
        let r = c
            .post(server.url("/api/v1/dashboard"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (s, v) = error_contract(r).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert_eq!(v["parameter"], parameter, "{body}: {v}");
    }
    server.stop().await;
}

/// Item 11: error answers keep their own contract (405 says 405, a bad path segment is JSON,
/// the table status route refuses unknown parameters and long queries).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_answers_keep_their_contract() {
    let db = TestDb::migrated("h_errors").await;
    let server = TestServer::start(config(&db.url)).await;
    let c = http();
    let r = c
        .delete(server.url("/api/v1/dashboard"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_contract(r).await.0, 405);
    let r = c
        .get(server.url("/api/v1/etl/status/table/%FF%FE"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_contract(r).await.0, 400);
    let r = c
        .get(server.url("/api/v1/productivity/agents/%C3%28"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_contract(r).await.0, 400);
    let r = c
        .get(server.url("/api/v1/etl/status/table/trandeuda?bogus=1"))
        .send()
        .await
        .unwrap();
    let (s, v) = error_contract(r).await;
    assert_eq!(s, 400);
    assert_eq!(v["parameter"], "bogus");
    let long = format!(
        "/api/v1/etl/status/table/trandeuda?x={}",
        "a".repeat(17_000)
    );
    let r = c.get(server.url(&long)).send().await.unwrap();
    assert_eq!(error_contract(r).await.0, 400);
    let r = c
        .post(server.url("/api/v1/dashboard"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("cartera=TEMPRANA")
        .send()
        .await
        .unwrap();
    assert_eq!(error_contract(r).await.0, 415);
    server.stop().await;
}
