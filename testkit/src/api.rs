//! The dashboard API for tests: an API server on a loopback port, a private Redis server, an
//! HTTP client, the demo loaded once per test process, and OpenAPI schema checks. Real
//! PostgreSQL and Redis, never mocks.

use std::process::Command;
use std::time::Duration;

use pulso_api::{Api, ApiConfig};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::pg::{TestDb, connect, server_url, unique};

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A configuration for tests: the given database, no Redis, a unique Redis prefix, quiet logs.
pub fn config(db_url: &str) -> ApiConfig {
    let mut c = ApiConfig::new(db_url);
    c.redis_prefix = format!("pfapitest:{}", unique("p"));
    c.access_log = false;
    c.pool_size = 4;
    c.shutdown_grace = Duration::from_secs(5);
    c.pipeline_file = "/nonexistent/pipelines.yaml".into();
    c
}

/// An API server on a loopback port, stopped (gracefully) when dropped or by `stop`.
pub struct TestServer {
    pub base: String,
    pub state: pulso_api::state::Shared,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<Result<(), pulso_api::ServeError>>>,
}

impl TestServer {
    pub async fn start(cfg: ApiConfig) -> TestServer {
        let api = Api::build(cfg).await.expect("api builds");
        let state = api.state.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(api.serve(listener, async {
            let _ = rx.await;
        }));
        let server = TestServer {
            base: format!("http://{addr}"),
            state,
            stop: Some(tx),
            handle: Some(handle),
        };
        server.wait_listener().await;
        server
    }

    /// Wait until the LISTEN connection is up (so commits are learnt by notification).
    pub async fn wait_listener(&self) {
        for _ in 0..200 {
            if self.state.version.is_live() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the data-version listener did not connect");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("server task").expect("server ends cleanly");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}

/// GET `url`, returning status and JSON body.
pub async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let r = http().get(url).send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("GET {url}: body is not JSON ({e}): {text}"));
    (status, v)
}

pub async fn post_json(url: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let r = http().post(url).json(body).send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("POST {url}: body is not JSON ({e}): {text}"));
    (status, v)
}

/// A redis-server of our own on a free loopback port (so tests can stop and restart it).
pub struct OwnRedis {
    pub port: u16,
    dir: std::path::PathBuf,
}

impl OwnRedis {
    pub async fn start() -> OwnRedis {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let dir = std::env::temp_dir().join(format!("pfapi-redis-{}", unique("r")));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let r = OwnRedis { port, dir };
        r.launch().await;
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn launch(&self) {
        let status = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
                "--dir",
                self.dir.to_str().expect("dir"),
                "--pidfile",
                self.dir.join("redis.pid").to_str().expect("pid"),
            ])
            .status()
            .expect("redis-server runs (apt-get install redis-server)");
        assert!(status.success(), "redis-server failed to start");
        for _ in 0..100 {
            if self.ping() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("own redis on port {} did not come up", self.port);
    }

    fn ping(&self) -> bool {
        Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "ping"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("PONG"))
            .unwrap_or(false)
    }

    pub async fn stop(&self) {
        let _ = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "shutdown", "nosave"])
            .output();
        for _ in 0..100 {
            if !self.ping() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("own redis on port {} did not stop", self.port);
    }

    pub async fn restart(&self) {
        self.launch().await;
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "shutdown", "nosave"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Poll `f` until it returns true (at most `secs` seconds).
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// The demo pipeline file (examples/demo.yaml at the workspace root).
pub fn demo_file() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples")
        .join("demo.yaml")
}

/// Run a pipeline file against `db_url` (what `pulso-flow run FILE` does); panics unless every
/// node succeeded.
pub async fn run_pipeline(file: &std::path::Path, db_url: &str) {
    use pulso_engine::executor::{self, NodeStatus, Quiet, RunOptions};
    let pipeline = pulso_engine::compile::load_pipeline(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let report = executor::run(
        std::sync::Arc::new(pipeline),
        RunOptions {
            database_url: db_url.to_string(),
            only: None,
            full_refresh: false,
            concurrency: 2,
            wait_for_lock: true,
            run_id: format!("test-{}", unique("run")),
        },
        std::sync::Arc::new(Quiet),
        rx,
    )
    .await
    .expect("the run starts");
    let failed: Vec<String> = report
        .nodes
        .iter()
        .filter(|n| n.status != NodeStatus::Ok)
        .map(|n| format!("{}: {:?}", n.name, n.error))
        .collect();
    assert!(failed.is_empty(), "nodes failed: {failed:#?}");
}

/// One database per test process with the demo loaded (loading takes a while, so the read-only
/// tests of a binary share it: a test that changes the ledger or the data must not use it, see
/// [`demo_db_of`]). Databases of earlier, finished test processes are dropped.
pub fn demo_db() -> &'static str {
    static DB: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DB.get_or_init(|| demo_db_of("shared"))
}

/// A database with the demo loaded, `pfapi_demo_<owner>_<pid>`, for a group of tests (`owner`)
/// that changes it and so cannot share [`demo_db`]; it lives as long as the test process, and
/// the next test process drops it. Blocks until loaded.
pub fn demo_db_of(owner: &str) -> String {
    let owner = owner.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let admin = connect(&format!("{}/postgres", server_url())).await;
            for r in admin
                .query(
                    "SELECT datname FROM pg_database WHERE datname LIKE 'pfapi_demo_%'",
                    &[],
                )
                .await
                .expect("list databases")
            {
                let name: String = r.get(0);
                let pid: Option<u32> = name.rsplit('_').next().and_then(|p| p.parse().ok());
                let alive =
                    pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
                if !alive {
                    let _ = admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            }
            let name = format!("pfapi_demo_{owner}_{}", std::process::id());
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .expect("drop");
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create");
            let url = format!("{}/{name}", server_url());
            pulso_sinks::migrate::migrate_url(&url)
                .await
                .expect("migrations apply");
            run_pipeline(&demo_file(), &url).await;
            url
        })
    })
    .join()
    .expect("demo load")
}

/// A copy of the demo pipeline with `DEMO_REVISION` fixed to `revision` (so a test can load "the
/// next day's data" without touching the process environment), written to a temp folder.
pub fn demo_revision_file(revision: u32) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("workspace root");
    let text = std::fs::read_to_string(demo_file()).expect("demo.yaml");
    let text = text
        .replace("${DEMO_REVISION:-0}", &revision.to_string())
        .replace(
            "path: data/",
            &format!("path: {}/examples/data/", root.display()),
        )
        .replace("file: ../sql/", &format!("file: {}/sql/", root.display()));
    let dir = std::env::temp_dir().join(format!("pfapi-demo-{}", unique("rev")));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("demo.yaml");
    std::fs::write(&path, text).expect("write pipeline");
    path
}

/// Check `value` against the OpenAPI `schema` (resolving `$ref`s in `doc`): types, required
/// properties, enums, and that every served property is documented. Returns the mismatches.
pub fn schema_errors(
    doc: &serde_json::Value,
    schema: &serde_json::Value,
    value: &serde_json::Value,
) -> Vec<String> {
    let mut errors = Vec::new();
    check_schema(doc, schema, value, "$", &mut errors);
    errors
}

fn resolve<'a>(doc: &'a serde_json::Value, schema: &'a serde_json::Value) -> &'a serde_json::Value {
    match schema.get("$ref").and_then(|r| r.as_str()) {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            let target = &doc["components"]["schemas"][name];
            assert!(!target.is_null(), "unresolved {r}");
            resolve(doc, target)
        }
        None => schema,
    }
}

fn check_schema(
    doc: &serde_json::Value,
    schema: &serde_json::Value,
    v: &serde_json::Value,
    path: &str,
    errors: &mut Vec<String>,
) {
    use serde_json::Value;
    let schema = resolve(doc, schema);
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = schema.get(key).and_then(Value::as_array) {
            let ok = alts.iter().any(|s| {
                let mut e = Vec::new();
                check_schema(doc, s, v, path, &mut e);
                e.is_empty()
            });
            if !ok {
                errors.push(format!("{path}: {v} matches none of {key}"));
            }
            return;
        }
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            check_schema(doc, s, v, path, errors);
        }
        return;
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        errors.push(format!("{path}: {v} not in enum {e:?}"));
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return, // any
    };
    let kind_ok = types.iter().any(|t| match *t {
        "null" => v.is_null(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => false,
    });
    if !kind_ok {
        errors.push(format!("{path}: {v} is not of type {types:?}"));
        return;
    }
    match v {
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check_schema(doc, item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            if let Some(req) = schema.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !map.contains_key(r) {
                        errors.push(format!("{path}: required property {r} missing"));
                    }
                }
            }
            for (k, item) in map {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => check_schema(doc, s, item, &format!("{path}.{k}"), errors),
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) | None if props.is_some() => errors
                            .push(format!("{path}: property {k} is served but not documented")),
                        Some(s) if s.is_object() => {
                            check_schema(doc, s, item, &format!("{path}.{k}"), errors)
                        }
                        _ => {}
                    },
                }
            }
        }
        _ => {}
    }
}

/// The documented 200 schema of `method path` in the OpenAPI document.
pub fn response_schema<'a>(
    doc: &'a serde_json::Value,
    path: &str,
    method: &str,
) -> &'a serde_json::Value {
    let s =
        &doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"];
    assert!(
        !s.is_null(),
        "no documented 200 JSON response for {method} {path}"
    );
    s
}

/// The value of a metric line (`name{labels} value`) in `/metrics`, 0 if absent.
pub async fn metric(server: &TestServer, line_prefix: &str) -> f64 {
    let text = http()
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A fresh database with the demo loaded (for tests that change data).
pub async fn fresh_demo(tag: &str) -> TestDb {
    let db = TestDb::migrated(tag).await;
    run_pipeline(&demo_file(), &db.url).await;
    db
}
