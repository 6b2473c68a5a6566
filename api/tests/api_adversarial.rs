//! The adversarial suite of issue 14: replays the classes of hostile input and faults an
//! adversarial run found against one API instance (loopback only, bounded in count and time,
//! deterministic pseudo-random input) and asserts, for every answer:
//!
//! * no 5xx, except 503 while a fault is injected (a terminated PostgreSQL backend);
//! * every error answer is JSON with its contract (`status: error`, `code` = the HTTP status,
//!   a message);
//!
//! and, across the run: `/metrics` and the process's memory stay bounded, the Redis key count
//! stays within the write budget per data version, the service recovers from each fault within
//! a second, and no answer computed before a commit is served after it.
//!
//! Classes: random method names, invented filter values, malformed dates and bodies, slow
//! headers, PostgreSQL backends terminated under load, Redis stopped under load, a commit under
//! load. The fault figures (errors during each fault, recovery time) are printed on stderr
//! (`cargo test -p pulso-api --test api_adversarial -- --nocapture`) and recorded in
//! docs/benchmarks.md.

use pulso_testkit as common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// xorshift64*: deterministic input without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn text(&mut self, alphabet: &[char], max: usize) -> String {
        let n = 1 + self.below(max);
        (0..n).map(|_| *self.pick(alphabet)).collect()
    }
}

/// What was answered, and whether a 503 was acceptable then.
#[derive(Default)]
struct Tally {
    answers: AtomicU64,
    unavailable: AtomicU64,
}

/// The contract of every answer: no 5xx but an allowed 503; error answers are JSON errors.
fn check(what: &str, status: u16, ctype: &str, body: &[u8], fault: bool) {
    assert!(
        status < 500 || (status == 503 && fault),
        "{what}: {status} {}",
        String::from_utf8_lossy(body)
    );
    if status >= 400 {
        assert!(
            ctype.starts_with("application/json"),
            "{what}: {status} answered {ctype:?}"
        );
        let v: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
            panic!(
                "{what}: {status} body not JSON ({e}): {}",
                String::from_utf8_lossy(body)
            )
        });
        assert_eq!(v["status"], "error", "{what}: {v}");
        assert_eq!(v["code"], status, "{what}: {v}");
        assert!(v["message"].is_string(), "{what}: {v}");
    }
}

async fn send(c: &reqwest::Client, req: reqwest::RequestBuilder, what: &str, fault: bool) -> u16 {
    let r = match req.send().await {
        Ok(r) => r,
        Err(e) => panic!("{what}: no answer: {e}"),
    };
    let _ = c;
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = r.bytes().await.unwrap_or_default();
    check(what, status, &ctype, &body, fault);
    status
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn redis_cli(redis: &OwnRedis, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port.to_string()])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Keys per data version (the key is `prefix:version:route?params`; the test prefix holds one
/// colon).
fn keys_per_version(redis: &OwnRedis) -> std::collections::BTreeMap<String, usize> {
    let mut by = std::collections::BTreeMap::new();
    for k in redis_cli(redis, &["--scan"]).lines() {
        let version = k.split(':').nth(2).unwrap_or("?").to_string();
        *by.entry(version).or_insert(0) += 1;
    }
    by
}

/// Drop the fields that hold the time an answer was computed.
fn without_clock(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in [
                "generated_at",
                "execution_time_seconds",
                "queryTime",
                "timestamp",
                "last_refresh",
                "lastRefresh",
            ] {
                m.remove(k);
            }
            m.values_mut().for_each(without_clock);
        }
        Value::Array(a) => a.iter_mut().for_each(without_clock),
        _ => {}
    }
}

const MAX_KEYS: u64 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adversarial_suite() {
    let suite_start = Instant::now();
    let db = fresh_demo("adversarial").await;
    let redis = OwnRedis::start().await;
    let mut cfg = config(&db.url);
    cfg.redis_url = Some(redis.url());
    cfg.redis_max_keys = MAX_KEYS;
    cfg.cache_max_bytes = 4 * 1024 * 1024;
    cfg.header_timeout = Duration::from_millis(500);
    cfg.request_timeout = Duration::from_secs(10);
    cfg.idle_timeout = Duration::from_secs(15);
    cfg.max_connections = 256;
    cfg.pool_size = 4;
    cfg.max_list = 20;
    let server = TestServer::start(cfg).await;
    let redis_handle = server.state.cache.redis().unwrap().clone();
    eventually(10, "redis up", || {
        let r = redis_handle.clone();
        async move { r.is_up() }
    })
    .await;
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(16)
        .build()
        .unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0042);
    let mut sent = 0u64;

    // Warm up what a normal dashboard does, then take the baselines.
    for p in [
        "/api/v1/dashboard",
        "/api/v1/filters",
        "/api/v1/evolution",
        "/api/v1/assignment",
        "/api/v1/operation",
        "/api/v1/productivity",
        "/api/v1/etl/status",
        "/ready",
    ] {
        let s = send(&c, c.get(server.url(p)), p, false).await;
        assert_eq!(s, 200, "{p}");
        sent += 1;
    }
    let metrics_before = c
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .len();
    let rss_before = rss_kib();

    // 1. Random method names (up to 4 KiB).
    let token_chars: Vec<char> =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~"
            .chars()
            .collect();
    for _ in 0..300 {
        let name = rng.text(&token_chars, 4096);
        let Ok(m) = reqwest::Method::from_bytes(name.as_bytes()) else {
            continue;
        };
        let path = *rng.pick(&["/health", "/api/v1/dashboard", "/metrics", "/nope"]);
        send(&c, c.request(m, server.url(path)), "random method", false).await;
        sent += 1;
    }

    // 2. Invented filter values (valid characters, nothing the marts hold): all 422, nothing
    // cached.
    let value_chars: Vec<char> = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-./+():ñÓ"
        .chars()
        .collect();
    let filters = [
        ("/api/v1/dashboard", "cartera"),
        ("/api/v1/dashboard", "servicio"),
        ("/api/v1/dashboard", "tramo"),
        ("/api/v1/dashboard", "rangoDeuda"),
        ("/api/v1/evolution", "cartera"),
        ("/api/v1/evolution", "servicio"),
        ("/api/v1/assignment", "cartera"),
        ("/api/v1/operation", "cartera"),
        ("/api/v1/productivity", "cartera"),
        ("/api/v1/productivity", "agente"),
    ];
    for _ in 0..600 {
        let (path, param) = *rng.pick(&filters);
        let value = format!("ZZ{}", rng.text(&value_chars, 40));
        let s = send(
            &c,
            c.get(server.url(path)).query(&[(param, value.as_str())]),
            "invented value",
            false,
        )
        .await;
        assert_eq!(s, 422, "{path}?{param}={value}");
        sent += 1;
    }

    // 3. Malformed dates and bodies.
    let junk: Vec<char> = "T:'\";%\\ -_0123456789xZ+é\u{0}\u{7f}€".chars().collect();
    let bases = [
        "2025-06-30",
        "0000-01-01",
        "9999-12-31",
        "2025-02-30",
        "2025-6-1",
        "20250630",
    ];
    let date_params = [
        ("/api/v1/dashboard", "fechaCorte"),
        ("/api/v1/evolution", "fecha_inicio"),
        ("/api/v1/operation", "fecha_analisis"),
        ("/api/v1/productivity", "fecha_fin"),
        ("/api/v1/assignment", "currentPeriod"),
        ("/api/v1/assignment/summary", "fecha_corte"),
    ];
    for _ in 0..300 {
        let (path, param) = *rng.pick(&date_params);
        let mut v = rng.pick(&bases).to_string();
        if rng.below(4) > 0 {
            v.push_str(&rng.text(&junk, 30));
        }
        send(
            &c,
            c.get(server.url(path)).query(&[(param, v.as_str())]),
            "malformed date",
            false,
        )
        .await;
        sent += 1;
    }
    let valid_bodies = [
        (
            "/api/v1/dashboard",
            r#"{"filters":{"cartera":["TEMPRANA"]},"fechaCorte":"2025-06-30"}"#,
        ),
        (
            "/api/v1/evolution",
            r#"{"fechaInicio":"2025-06-01","fechaFin":"2025-06-30","filters":{"cartera":"TEMPRANA"}}"#,
        ),
        (
            "/api/v1/assignment",
            r#"{"currentPeriod":"2025-06","filters":{"servicio":["MOVIL"]}}"#,
        ),
        (
            "/api/v1/operation",
            r#"{"date":"2025-06-16","cartera":["TEMPRANA"]}"#,
        ),
        (
            "/api/v1/productivity",
            r#"{"fecha_inicio":"2025-06-01","filtros":{"cartera":["TEMPRANA"]}}"#,
        ),
    ];
    let inserts = [
        "null", "[]", "[null]", "{}", "1e999999", "\"x\"", "[[[[]]]]", "true", "-1",
    ];
    for i in 0..300 {
        let (path, body) = *rng.pick(&valid_bodies);
        let mut bytes = body.as_bytes().to_vec();
        match i % 6 {
            0 => bytes.truncate(rng.below(bytes.len())),
            1 => bytes.extend_from_slice(rng.text(&junk, 10).as_bytes()),
            2 => {
                // Replace a value (after a colon) by another JSON value.
                let colons: Vec<usize> = body.match_indices(':').map(|(j, _)| j).collect();
                let at = *rng.pick(&colons) + 1;
                let end = body[at..]
                    .find([',', '}'])
                    .map(|e| at + e)
                    .unwrap_or(body.len());
                let mut s = body.to_string();
                let insert = inserts[rng.below(inserts.len())];
                s.replace_range(at..end, insert);
                bytes = s.into_bytes();
            }
            3 => bytes = format!("[{body}]").into_bytes(),
            4 => {
                let at = rng.below(bytes.len());
                bytes.insert(at, 0xff);
            }
            _ => bytes = format!("{}1{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
        }
        let ctype = *rng.pick(&[
            "application/json",
            "application/json",
            "text/plain",
            "application/x-www-form-urlencoded",
        ]);
        send(
            &c,
            c.post(server.url(path))
                .header("content-type", ctype)
                .body(bytes),
            "malformed body",
            false,
        )
        .await;
        sent += 1;
    }

    // 4. Slow headers: every half-sent head is closed after the header timeout.
    let addr = server.base.trim_start_matches("http://").to_string();
    let t0 = Instant::now();
    let mut slow = Vec::new();
    for i in 0..20 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(format!("GET /api/v1/dashboard HTTP/1.1\r\nHost: x\r\nX-{i}: ").as_bytes())
            .await
            .unwrap();
        slow.push(s);
    }
    for mut s in slow {
        let mut buf = [0u8; 64];
        let closed = tokio::time::timeout(Duration::from_secs(3), async {
            use tokio::io::AsyncReadExt;
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "a slow client kept its connection");
    }
    assert!(t0.elapsed() < Duration::from_secs(4));

    // Bounds after the input classes.
    let metrics_after = c
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Bounded by design: label values are the standard methods (or OTHER) and route templates
    // (or `unmatched`), never request text, so the size is capped by routes × methods × codes.
    assert!(
        metrics_after.len() < 192 * 1024,
        "/metrics grew from {metrics_before} to {} bytes",
        metrics_after.len()
    );
    for line in metrics_after
        .lines()
        .filter(|l| l.starts_with("http_request"))
    {
        let label = |name: &str| {
            line.split(&format!("{name}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .map(str::to_string)
        };
        if let Some(m) = label("method") {
            assert!(
                [
                    "GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "TRACE", "CONNECT",
                    "OTHER"
                ]
                .contains(&m.as_str()),
                "{line}"
            );
        }
        if let Some(e) = label("endpoint") {
            assert!(
                e == "unmatched" || e.starts_with('/') && e.len() < 64,
                "{line}"
            );
            assert!(!e.contains("nope"), "a raw path became a label: {line}");
        }
    }
    let per_version = keys_per_version(&redis);
    assert!(
        per_version.values().all(|&n| n as u64 <= MAX_KEYS),
        "{per_version:?}"
    );

    // 5. Faults under load: PostgreSQL backends terminated, then Redis stopped.
    let c2 = c.clone();
    let base = server.base.clone();
    let fault = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    // (time since start, status) of every answer that needed PostgreSQL.
    let log = Arc::new(std::sync::Mutex::new(Vec::<(Duration, u16, bool)>::new()));
    let load_start = Instant::now();
    let mut workers = Vec::new();
    for w in 0..6u64 {
        let (c, base, fault, stop, tally, log) = (
            c2.clone(),
            base.clone(),
            fault.clone(),
            stop.clone(),
            tally.clone(),
            log.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut i = w;
            let mut n = 0;
            // Bounded: stops when told or after 4,000 requests per worker.
            while !stop.load(Ordering::Acquire) && n < 4000 {
                n += 1;
                i += 7;
                // Uncached: the ETL status reads PostgreSQL each time; dashboards of ever new
                // photo-date/dimension combinations miss both caches.
                let path = if i % 2 == 0 {
                    "/api/v1/etl/status".to_string()
                } else {
                    let day = 1 + (i / 2) % 30;
                    let dims = [
                        "cartera",
                        "servicio",
                        "tramo",
                        "periodo",
                        "rangoDeuda",
                        "archivo",
                    ];
                    format!(
                        "/api/v1/dashboard?fechaCorte=2025-06-{day:02}&dimensions={},{}",
                        dims[(i / 60) as usize % 6],
                        dims[(i / 360 + 1) as usize % 6]
                    )
                };
                let in_fault = fault.load(Ordering::Acquire);
                let t = load_start.elapsed();
                let status = send(&c, c.get(format!("{base}{path}")), &path, true).await;
                // A 503 is only acceptable while a fault is on (or just after it began/ended:
                // the request may have started during it).
                let fault_now = in_fault || fault.load(Ordering::Acquire);
                tally.answers.fetch_add(1, Ordering::Relaxed);
                if status == 503 {
                    tally.unavailable.fetch_add(1, Ordering::Relaxed);
                }
                log.lock().unwrap().push((t, status, fault_now));
            }
        }));
    }
    let admin = db.client().await;
    // The baseline: the same load without a fault.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // 5a. Terminate every backend of the API (pool and listener) every 200 ms for 3 s.
    let pg_fault_start = load_start.elapsed();
    fault.store(true, Ordering::Release);
    let mut terminated = 0i64;
    let t_end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < t_end {
        let r = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = current_database() AND application_name LIKE 'pulso-flow-api%' \
                   AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        terminated += r.get::<_, i64>(0);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pg_fault_end = load_start.elapsed();
    fault.store(false, Ordering::Release);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // 5b. Redis stopped for 2 s under the same load, then started again.
    let redis_fault_start = load_start.elapsed();
    redis.stop().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.restart().await;
    let redis_back = Instant::now();
    let redis_fault_end = load_start.elapsed();
    eventually(10, "redis seen up again", || {
        let r = redis_handle.clone();
        async move { r.is_up() }
    })
    .await;
    let redis_recovery = redis_back.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Release);
    for w in workers {
        w.await.unwrap();
    }
    let log = log.lock().unwrap().clone();
    assert!(terminated > 0, "no backend was terminated");
    let in_window = |t: Duration, a: Duration, b: Duration| t >= a && t <= b;
    let pg_answers = log
        .iter()
        .filter(|(t, _, _)| in_window(*t, pg_fault_start, pg_fault_end))
        .count();
    let pg_errors = log
        .iter()
        .filter(|(t, s, _)| *s != 200 && in_window(*t, pg_fault_start, pg_fault_end))
        .count();
    // Recovery: from the last termination to the first success of a request started after it.
    let first_ok_after = log
        .iter()
        .filter(|(t, s, _)| *t >= pg_fault_end && *s == 200)
        .map(|(t, _, _)| *t)
        .min()
        .expect("answers after the fault");
    let pg_recovery = first_ok_after.saturating_sub(pg_fault_end);
    let late_errors = log
        .iter()
        .filter(|(t, s, _)| *s != 200 && *t > pg_fault_end + Duration::from_secs(1))
        .count();
    let redis_answers = log
        .iter()
        .filter(|(t, _, _)| in_window(*t, redis_fault_start, redis_fault_end))
        .count();
    let redis_errors = log
        .iter()
        .filter(|(t, s, _)| *s != 200 && in_window(*t, redis_fault_start, redis_fault_end))
        .count();
    let rate = |a: Duration, b: Duration| {
        log.iter().filter(|(t, _, _)| in_window(*t, a, b)).count() as f64 / (b - a).as_secs_f64()
    };
    let baseline_rate = rate(Duration::ZERO, pg_fault_start);
    let pg_rate = rate(pg_fault_start, pg_fault_end);
    let redis_rate = rate(redis_fault_start, redis_fault_end);
    eprintln!(
        "fault throughput vs the same-run baseline ({baseline_rate:.0} answers/s): backends \
         terminated {:.2}×, Redis stopped {:.2}×",
        pg_rate / baseline_rate,
        redis_rate / baseline_rate
    );
    let answers = tally.answers.load(Ordering::Relaxed);
    let unavailable = tally.unavailable.load(Ordering::Relaxed);
    eprintln!(
        "fault figures: postgres backends terminated: {terminated} over {:?}; answers during it: \
         {pg_answers}, of which not 200: {pg_errors} (all 503); recovery after the last \
         termination: {:?}; answers not 200 later than 1 s after it: {late_errors}. redis \
         stopped {:?}: answers during it: {redis_answers}, not 200: {redis_errors}; redis seen \
         up again {:?} after its restart. load total: {answers} answers, {unavailable} × 503",
        pg_fault_end - pg_fault_start,
        pg_recovery,
        redis_fault_end - redis_fault_start,
        redis_recovery,
    );
    assert!(answers > 100, "the load ran: {answers}");
    assert!(
        log.iter()
            .all(|(t, s, _)| *s == 200 || *t >= pg_fault_start),
        "errors before any fault"
    );
    // Memory after the input classes and the faults (the pipeline run below, in this same
    // process, is not the server's).
    let rss_after = rss_kib();
    assert!(
        pg_recovery < Duration::from_secs(1),
        "recovery took {pg_recovery:?}"
    );
    assert_eq!(late_errors, 0, "errors more than 1 s after the fault");
    assert_eq!(redis_errors, 0, "a Redis outage is not an error");
    sent += answers;

    // 6. No stale answer after a commit: answers cached before a load equal, right after it,
    // those of an instance that never cached anything.
    let probes = [
        "/api/v1/dashboard",
        "/api/v1/filters",
        "/api/v1/evolution?fecha_inicio=2025-06-01&fecha_fin=2025-07-31&metrics=recupero,cobertura",
        "/api/v1/assignment",
        "/api/v1/operation",
        "/api/v1/productivity",
    ];
    for p in probes {
        send(&c, c.get(server.url(p)), p, false).await;
    }
    run_pipeline(&demo_revision_file(1), &db.url).await;
    let mut fresh_cfg = config(&db.url);
    fresh_cfg.cache_max_bytes = 1;
    let fresh = TestServer::start(fresh_cfg).await;
    for p in probes {
        let (s, mut served) = get_json(&server.url(p)).await;
        assert_eq!(s, 200, "{p}: {served}");
        let (_, mut truth) = get_json(&fresh.url(p)).await;
        without_clock(&mut served);
        without_clock(&mut truth);
        assert_eq!(served, truth, "{p}: a stale answer after the commit");
        sent += 2;
    }
    fresh.stop().await;

    // Bounds at the end: memory, metrics, Redis keys per data version.
    let per_version = keys_per_version(&redis);
    eprintln!(
        "adversarial suite: {sent} requests in {:?}; RSS {} → {} MiB; /metrics {metrics_before} → \
         {} bytes; Redis keys per data version: max {}",
        suite_start.elapsed(),
        rss_before / 1024,
        rss_after / 1024,
        metrics_after.len(),
        per_version.values().max().copied().unwrap_or(0)
    );
    assert!(
        per_version.values().all(|&n| n as u64 <= MAX_KEYS),
        "{per_version:?}"
    );
    assert!(
        rss_after < rss_before + 256 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    server.stop().await;
}
