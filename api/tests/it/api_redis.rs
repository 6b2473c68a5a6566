//! Redis as the shared second level: two API instances share answers; Redis down → answers
//! still served, /ready degraded; Redis back → it recovers by itself. A private redis-server on
//! its own loopback port, so stopping it does not disturb anything else.

use pulso_testkit as common;

use std::time::Duration;

use common::*;

const REDIS_HITS: &str = "pulso_api_cache_total{level=\"redis\",result=\"hit\"}";
const DASHBOARD_QUERIES: &str = "pulso_api_db_query_seconds_count{query=\"dashboard\"}";

fn redis_keys(port: u16, prefix: &str) -> Vec<String> {
    let out = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &port.to_string(),
            "--scan",
            "--pattern",
            &format!("{prefix}:*"),
        ])
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_between_instances_and_survives_redis_outages() {
    let url = demo_db();
    let redis = OwnRedis::start().await;
    let mut cfg = config(url);
    cfg.redis_url = Some(redis.url());
    let prefix = cfg.redis_prefix.clone();
    let a = TestServer::start(cfg.clone()).await;
    let b = TestServer::start(cfg.clone()).await;
    eventually(10, "redis up on both", || async {
        let (_, ra) = get_json(&a.url("/ready")).await;
        let (_, rb) = get_json(&b.url("/ready")).await;
        ra["checks"]["redis"]["status"] == "up" && rb["checks"]["redis"]["status"] == "up"
    })
    .await;

    // A computes and stores; B (empty memory) gets it from Redis without querying PostgreSQL.
    let path = "/api/v1/dashboard?fechaCorte=2025-06-19&dimensions=cartera";
    let (s, from_a) = get_json(&a.url(path)).await;
    assert_eq!(s, 200);
    eventually(5, "the answer reaches redis", || async {
        redis_keys(redis.port, &prefix)
            .iter()
            .any(|k| k.contains(":dashboard?"))
    })
    .await;
    let (s, from_b) = get_json(&b.url(path)).await;
    assert_eq!(s, 200);
    assert_eq!(from_a, from_b);
    assert_eq!(metric(&b, REDIS_HITS).await, 1.0);
    assert_eq!(metric(&b, DASHBOARD_QUERIES).await, 0.0);

    // Redis goes away: answers still come (memory, then PostgreSQL), /ready says degraded.
    redis.stop().await;
    let t0 = std::time::Instant::now();
    for day in ["2025-06-20", "2025-06-21", "2025-06-23"] {
        let (s, v) = get_json(&a.url(&format!("/api/v1/dashboard?fechaCorte={day}"))).await;
        assert_eq!(s, 200, "{v}");
        assert!(!v["segmentoData"].as_array().unwrap().is_empty());
    }
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "a dead Redis must not slow answers down"
    );
    let (s, v) = get_json(&a.url(path)).await;
    assert_eq!(s, 200);
    assert_eq!(v, from_a);
    let (s, r) = get_json(&a.url("/ready")).await;
    assert_eq!(s, 200, "degraded is still ready to serve: {r}");
    assert_eq!(r["status"], "degraded");
    assert_eq!(r["checks"]["redis"]["status"], "down");
    assert_eq!(r["checks"]["postgres"]["status"], "up");

    // Redis comes back: the API reconnects by itself and writes to it again.
    redis.restart().await;
    // Generous: the reconnect backoff is at most 200 ms, but a loaded 2-core CI machine is slow.
    eventually(30, "redis reported up again", || async {
        let (_, r) = get_json(&a.url("/ready")).await;
        r["checks"]["redis"]["status"] == "up" && r["status"] == "ready"
    })
    .await;
    let (s, _) = get_json(&a.url("/api/v1/dashboard?fechaCorte=2025-06-24")).await;
    assert_eq!(s, 200);
    eventually(5, "new answers reach the restarted redis", || async {
        redis_keys(redis.port, &prefix)
            .iter()
            .any(|k| k.contains("2025-06-24"))
    })
    .await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_and_serves_while_redis_is_unreachable() {
    let url = demo_db();
    let mut cfg = config(url);
    // Nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    cfg.redis_url = Some(format!("redis://127.0.0.1:{port}"));
    let server = TestServer::start(cfg).await;
    let (s, v) = get_json(&server.url("/api/v1/dashboard?fechaCorte=2025-06-19")).await;
    assert_eq!(s, 200, "{v}");
    let (_, r) = get_json(&server.url("/ready")).await;
    assert_eq!(r["status"], "degraded");
    server.stop().await;
}

/// The shared machine Redis (127.0.0.1:6379) with a key prefix of this test's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machine_redis_with_private_prefix() {
    let url = demo_db();
    let mut cfg = config(url);
    cfg.redis_url = Some(redis_url());
    let server = TestServer::start(cfg).await;
    eventually(10, "redis up", || async {
        let (_, r) = get_json(&server.url("/ready")).await;
        r["checks"]["redis"]["status"] == "up"
    })
    .await;
    let (s, _) = get_json(&server.url("/api/v1/evolution/carteras")).await;
    assert_eq!(s, 200);
    server.stop().await;
}
