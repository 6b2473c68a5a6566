//! The operations page (issue 13 item 2) on a server holding the demo after one successful and
//! one failed run: every node drawn with its status colour, the failed run's error (its class
//! publicly, in full when configured), runs, node and run pages, `/` negotiated between the JSON
//! welcome and the page, the refresh form; and the same page in headless Chromium, which must
//! make no request outside the server.
//!
//! Chromium (Debian's `chromium`) is optional locally: without it the browser tests print
//! SKIPPED with the reason, unless `CHROMIUM_REQUIRED=1` (set by `.ci/run`, which installs it).

use pulso_testkit as common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;
use pulso_api::config::ErrorDetail;
use pulso_engine::executor::{self, Quiet, RunOptions};

/// The demo database of this test binary after: the demo run (every node ok), its ledger
/// changed so that `productividad` never ran and `ejecutivos` last succeeded two days ago, and
/// a failed run of `calendario` (a bad date in a re-delivered file).
struct Scenario {
    url: String,
    failed_run: String,
    /// The failed run's error, as the ledger holds it.
    error: String,
}

const FAILING: &str = "\
name: demo
tables:
  - name: calendario
    source: { kind: csv, path: calendario.csv }
    target: raw.calendario
    create_target: false
    columns: { archivo: text, periodo_date: date, fecha_apertura: date }
    primary_key: [archivo, periodo_date]
    mode: full_refresh
";

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pfapi-ops-{}", unique(tag)));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Run `file` (only `only` when given) and return the run id; failures are expected here.
async fn run_file(file: &Path, url: &str, tag: &str) -> String {
    let pipeline = pulso_engine::compile::load_pipeline(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let run_id = format!("test-{}", unique(tag));
    executor::run(
        std::sync::Arc::new(pipeline),
        RunOptions {
            database_url: url.to_string(),
            only: None,
            full_refresh: false,
            concurrency: 2,
            wait_for_lock: true,
            run_id: run_id.clone(),
        },
        std::sync::Arc::new(Quiet),
        rx,
    )
    .await
    .expect("the run starts");
    run_id
}

/// A failed run of `calendario` on `url`; returns its run id.
async fn failing_run(url: &str) -> String {
    let dir = temp_dir("fail");
    std::fs::write(
        dir.join("calendario.csv"),
        "archivo,periodo_date,fecha_apertura\nCAMP_X,2025-13-45,2025-06-01\n",
    )
    .expect("csv");
    let file = dir.join("failing.yaml");
    std::fs::write(&file, FAILING).expect("yaml");
    let id = run_file(&file, url, "failed").await;
    let _ = std::fs::remove_dir_all(&dir);
    id
}

fn scenario() -> &'static Scenario {
    static S: OnceLock<Scenario> = OnceLock::new();
    S.get_or_init(|| {
        // Its own copy of the demo: the scenario rewrites the ledger (stale and failed nodes),
        // which the shared demo's readers (e.g. /ready in api_redis) must not see.
        let url = demo_db_of("ops");
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let c = connect(&url).await;
                // A node added to the pipeline after the last run; a table last loaded two days
                // ago.
                c.batch_execute(
                    "DELETE FROM pulso_flow.node_runs WHERE node = 'productividad';
                     DELETE FROM pulso_flow.watermarks WHERE node = 'productividad';
                     UPDATE pulso_flow.node_runs SET started_at = started_at - interval '2 days'
                      WHERE node = 'ejecutivos';",
                )
                .await
                .expect("ledger fixture");
                let failed_run = failing_run(&url).await;
                let row = c
                    .query_one(
                        "SELECT status, error FROM pulso_flow.node_runs \
                         WHERE run_id = $1 AND node = 'calendario'",
                        &[&failed_run],
                    )
                    .await
                    .expect("the failed run is in the ledger");
                assert_eq!(row.get::<_, String>(0), "failed");
                Scenario {
                    url,
                    failed_run,
                    error: row.get(1),
                }
            })
        })
        .join()
        .expect("scenario")
    })
}

fn ops_config(url: &str, errors: ErrorDetail) -> pulso_api::ApiConfig {
    let mut cfg = config(url);
    cfg.pipeline_file = demo_file().to_string_lossy().into_owned();
    cfg.public_error_detail = errors;
    cfg
}

/// What each demo node must show.
fn expected_status(node: &str) -> &'static str {
    match node {
        "calendario" => "failed",
        "productividad" => "never",
        "ejecutivos" => "stale",
        _ => "ok",
    }
}

const FILLS: [(&str, &str); 4] = [
    ("ok", "#c8e6c9"),
    ("failed", "#ffcdd2"),
    ("stale", "#ffe0b2"),
    ("never", "#eceff1"),
];

/// Every DAG node of a page (served HTML or a browser's DOM): name → (data-status, fill of its
/// shape).
fn drawn_nodes(html: &str) -> BTreeMap<String, (String, String)> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let key = format!(" {name}=\"");
        let i = tag.find(&key)? + key.len();
        Some(tag[i..].split('"').next()?.to_string())
    };
    let mut out = BTreeMap::new();
    let mut rest = html;
    while let Some(i) = rest.find("<g class=\"node ") {
        rest = &rest[i..];
        let tag_end = rest.find('>').expect("tag end");
        let tag = &rest[..tag_end];
        let shape_at = rest.find("class=\"shape\"").expect("node shape");
        let shape_end = shape_at + rest[shape_at..].find('>').expect("shape end");
        let shape_start = rest[..shape_at].rfind('<').expect("shape start");
        let shape = &rest[shape_start..shape_end];
        out.insert(
            attr(tag, "data-node").expect("data-node"),
            (
                attr(tag, "data-status").expect("data-status"),
                attr(shape, "fill").expect("fill"),
            ),
        );
        rest = &rest[tag_end..];
    }
    out
}

fn demo_nodes() -> Vec<String> {
    let p = pulso_engine::compile::load_pipeline(&demo_file()).expect("demo loads");
    p.nodes.iter().map(|n| n.name.clone()).collect()
}

fn check_statuses(html: &str, what: &str) {
    let drawn = drawn_nodes(html);
    let nodes = demo_nodes();
    assert_eq!(
        drawn.len(),
        nodes.len(),
        "{what}: one drawn node per pipeline node"
    );
    for n in &nodes {
        let (status, fill) = drawn
            .get(n)
            .unwrap_or_else(|| panic!("{what}: node {n} not drawn"));
        assert_eq!(status, expected_status(n), "{what}: status of {n}");
        let want = FILLS.iter().find(|(s, _)| s == status).unwrap().1;
        assert_eq!(fill, want, "{what}: colour of {n} ({status})");
    }
}

/// HTML-escaped text, as the page writes it.
fn escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn get_page(url: &str, accept: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let r = http()
        .get(url)
        .header("accept", accept)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.expect("body"))
}

const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_every_node_with_its_status_and_the_failure_at_once() {
    let s = scenario();
    let server = TestServer::start(ops_config(&s.url, ErrorDetail::Class)).await;

    let (code, headers, html) = get_page(&server.url("/ops"), BROWSER_ACCEPT).await;
    assert_eq!(code, 200, "{html}");
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    // The CSP allows only the page's own nonced stylesheet; no script anywhere.
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'nonce-"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    assert!(html.contains(&format!("<style nonce=\"{nonce}\">")));
    assert!(!html.contains("<script"), "no script");
    assert!(!html.contains(" style=\""), "no inline style attributes");
    let without_ns = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(
        !without_ns.contains("http://") && !without_ns.contains("https://"),
        "no external URL"
    );
    check_statuses(&html, "/ops");

    // The failure: its class and run publicly, never the text (it may hold values and paths).
    assert!(html.contains(&s.failed_run), "failed run listed");
    assert!(html.contains("<h2>Failures</h2>"));
    assert!(
        !html.contains(&escaped(&s.error)),
        "full error shown publicly"
    );
    assert!(!html.contains("2025-13-45"), "a cell value leaked");
    assert!(
        html.contains("error; the full text is in the server log"),
        "{html}"
    );
    // Read-only without a refresh token.
    assert!(!html.contains("<form"), "no refresh form without a token");

    // `/`: the page for a browser, the JSON welcome for everyone else (api.md §2).
    let (code, headers, root) = get_page(&server.url("/"), BROWSER_ACCEPT).await;
    assert_eq!(code, 200);
    assert_eq!(headers["vary"], "accept");
    check_statuses(&root, "/ for a browser");
    for accept in [
        "*/*",
        "application/json",
        "application/json, text/plain, */*",
    ] {
        let (code, headers, body) = get_page(&server.url("/"), accept).await;
        assert_eq!(code, 200);
        assert_eq!(headers["vary"], "accept");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON welcome");
        assert_eq!(v["docs_url"], "/docs", "{accept}");
    }
    let (code, _) = get_json(&server.url("/")).await;
    assert_eq!(code, 200);

    // Another failed run shows on the next request: failures do not bump the data version the
    // cache is keyed by, and the page is not cached.
    let version = server.state.version.last_known();
    let again = failing_run(&s.url).await;
    let (_, _, html) = get_page(&server.url("/ops"), BROWSER_ACCEPT).await;
    assert!(
        html.contains(&again),
        "the new failed run is not on the page"
    );
    assert_eq!(server.state.version.last_known(), version);

    // Unknown parameters are refused like everywhere else.
    let (code, _, _) = get_page(&server.url("/ops?x=1"), BROWSER_ACCEPT).await;
    assert_eq!(code, 400);
    server.stop().await;

    // With PULSO_API_PUBLIC_ERROR_DETAIL=full the error is shown whole.
    let server = TestServer::start(ops_config(&s.url, ErrorDetail::Full)).await;
    let (_, _, html) = get_page(&server.url("/ops"), BROWSER_ACCEPT).await;
    assert!(
        html.contains(&escaped(&s.error)),
        "full error missing:\n{}",
        s.error
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_and_run_pages() {
    let s = scenario();
    let server = TestServer::start(ops_config(&s.url, ErrorDetail::Full)).await;

    // calendario: its two runs (ok, then failed, newest first), the error, the chart.
    let (code, _, html) = get_page(&server.url("/ops/nodes/calendario"), BROWSER_ACCEPT).await;
    assert_eq!(code, 200, "{html}");
    assert!(html.contains("id=\"health\" data-status=\"failed\""));
    assert!(html.matches("<tr data-run=").count() >= 2, "{html}");
    assert!(html.contains(&escaped(&s.error)));
    assert!(html.contains("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"runs-chart\""));
    assert!(html.matches("<rect class=\"rows\"").count() >= 2);
    assert!(html.contains("Checks and reconciliation"));
    assert!(html.contains("raw.calendario") && html.contains("key"));
    assert!(
        html.contains("href=\"/ops/nodes/calendario_habiles\""),
        "feeds link"
    );
    // A node that never ran, and one that does not exist.
    let (code, _, html) = get_page(&server.url("/ops/nodes/productividad"), BROWSER_ACCEPT).await;
    assert_eq!(code, 200);
    assert!(html.contains("data-status=\"never\"") && html.contains("never ran"));
    let (code, _, _) = get_page(&server.url("/ops/nodes/no_such_node"), BROWSER_ACCEPT).await;
    assert_eq!(code, 404);

    // The demo's ok run: one Gantt bar per node run, the chain that held it up.
    let ok_run: String = connect(&s.url)
        .await
        .query_one(
            "SELECT run_id FROM pulso_flow.runs WHERE status = 'ok' ORDER BY started_at LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let node_runs: i64 = connect(&s.url)
        .await
        .query_one(
            "SELECT count(*) FROM pulso_flow.node_runs WHERE run_id = $1",
            &[&ok_run],
        )
        .await
        .unwrap()
        .get(0);
    let (code, _, html) =
        get_page(&server.url(&format!("/ops/runs/{ok_run}")), BROWSER_ACCEPT).await;
    assert_eq!(code, 200, "{html}");
    assert_eq!(
        html.matches("<rect class=\"bar").count() as i64,
        node_runs,
        "one bar per node run"
    );
    assert!(
        html.matches("class=\"bar critical\"").count() >= 2,
        "critical chain"
    );
    assert!(html.contains("<p id=\"critical\">held up by: "));
    // The failed run: its error under Errors.
    let (code, _, html) = get_page(
        &server.url(&format!("/ops/runs/{}", s.failed_run)),
        BROWSER_ACCEPT,
    )
    .await;
    assert_eq!(code, 200);
    assert!(html.contains("<h2>Errors</h2>") && html.contains(&escaped(&s.error)));
    let (code, _, _) = get_page(&server.url("/ops/runs/nope"), BROWSER_ACCEPT).await;
    assert_eq!(code, 404);
    server.stop().await;
}

const TOKEN: &str = "ops-page-refresh-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresh_form_posts_the_token_without_it_being_in_the_page() {
    let db = TestDb::migrated("opsrefresh").await;
    let dir = temp_dir("refresh");
    std::fs::write(
        dir.join("pagos.csv"),
        "doc,creado_el\nD1,2025-06-02T10:00:00Z\n",
    )
    .unwrap();
    let file = dir.join("p.yaml");
    std::fs::write(
        &file,
        "name: small\ntables:\n  - name: pagos\n    source: { kind: csv, path: pagos.csv }\n    \
         target: t.pagos\n    columns: { doc: text, creado_el: timestamptz }\n    \
         primary_key: [doc]\n",
    )
    .unwrap();
    let mut cfg = config(&db.url);
    cfg.pipeline_file = file.to_string_lossy().into_owned();
    cfg.refresh_token = Some(TOKEN.into());
    let server = TestServer::start(cfg).await;

    let (_, _, html) = get_page(&server.url("/ops"), BROWSER_ACCEPT).await;
    assert!(html.contains("<form class=\"refresh\" method=\"post\" action=\"/ops/refresh\">"));
    assert!(html.contains("type=\"password\" name=\"token\""));
    assert!(!html.contains(TOKEN), "the token is in the page");
    let (_, _, node) = get_page(&server.url("/ops/nodes/pagos"), BROWSER_ACCEPT).await;
    assert!(node.contains("<input type=\"hidden\" name=\"node\" value=\"pagos\">"));
    assert!(!node.contains(TOKEN));

    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |body: String, ctype: &'static str| {
        let c = no_redirect.clone();
        let url = server.url("/ops/refresh");
        async move {
            let r = c
                .post(url)
                .header("content-type", ctype)
                .body(body)
                .send()
                .await
                .expect("post");
            let status = r.status().as_u16();
            let location = r
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_string());
            let ct = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap_or("").to_string())
                .unwrap_or_default();
            (status, location, ct, r.text().await.unwrap())
        }
    };
    const FORM: &str = "application/x-www-form-urlencoded";
    let (code, _, ct, body) = post("node=pagos".into(), FORM).await;
    assert_eq!(code, 401, "{body}");
    assert!(ct.starts_with("text/html"));
    let (code, _, _, body) = post("token=wrong-token-wrong-token&node=pagos".into(), FORM).await;
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("invalid token"));
    let (code, _, _, _) = post(format!("token={TOKEN}"), "text/plain").await;
    assert_eq!(code, 415);
    let (code, _, _, _) = post(format!("token={TOKEN}&evil=1"), FORM).await;
    assert_eq!(code, 400);
    let (code, _, _, body) = post(format!("token={TOKEN}&node=nope"), FORM).await;
    assert_eq!(code, 404, "{body}");

    let (code, location, _, _) = post(format!("token={TOKEN}&node=pagos"), FORM).await;
    assert_eq!(code, 303);
    let location = location.expect("Location");
    assert!(location.starts_with("/ops/runs/"), "{location}");
    eventually(60, "the refresh run is recorded ok", || {
        let url = server.url(&location);
        async move {
            let (code, _, html) = get_page(&url, BROWSER_ACCEPT).await;
            code == 200 && html.contains("<span class=\"badge s-ok\">ok</span>")
        }
    })
    .await;
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- headless Chromium ---------------------------------------------------------------------

/// Debian's Chromium, or why the browser tests are skipped.
fn chromium() -> Option<PathBuf> {
    let candidates = [
        std::env::var("CHROMIUM").ok(),
        Some("/usr/bin/chromium".into()),
        Some("/usr/bin/chromium-browser".into()),
    ];
    let found = candidates
        .into_iter()
        .flatten()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        let why = "chromium not found (apt-get install chromium, or set CHROMIUM)";
        if std::env::var("CHROMIUM_REQUIRED").as_deref() == Ok("1") {
            panic!("{why}; CHROMIUM_REQUIRED=1");
        }
        println!("SKIPPED: {why}");
    }
    found
}

/// Where the screenshots and net logs go (under the target directory; printed).
fn artifacts() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ops-page");
    std::fs::create_dir_all(&d).expect("artifact dir");
    d
}

/// One headless Chromium run on `url` with a fresh profile and no network but loopback; `mode`
/// is `--dump-dom` or `--screenshot=FILE`. Returns stdout and the URLs the page itself asked
/// for (net log events with a page initiator; the browser's own background requests have
/// none).
fn browse(bin: &Path, url: &str, mode: &[&str], tag: &str) -> (String, Vec<String>) {
    let dir = artifacts();
    let profile = dir.join(format!("profile-{}", unique(tag)));
    let netlog = dir.join(format!("{tag}.netlog.json"));
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1700,1100",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--log-net-log={}", netlog.display()))
        .args(mode)
        .arg(url)
        .output()
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&netlog).expect("net log")).expect("net log JSON");
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
        .as_i64()
        .expect("event type");
    let requested = log["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"].as_i64() == Some(start_job))
        .filter(|e| e["params"]["initiator"].as_str() != Some("not an origin"))
        .filter_map(|e| e["params"]["url"].as_str().map(str::to_string))
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), requested)
}

#[test]
fn in_chromium_every_node_has_its_colour_the_error_shows_and_nothing_leaves_the_server() {
    let Some(bin) = chromium() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = scenario();
    let server = rt.block_on(TestServer::start(ops_config(&s.url, ErrorDetail::Full)));
    let url = server.url("/ops");

    let (dom, requested) = browse(&bin, &url, &["--dump-dom"], "ops-dom");
    check_statuses(&dom, "DOM of /ops in Chromium");
    assert!(
        dom.contains(&escaped(&s.error)),
        "the failed run's error is not in the DOM"
    );
    for r in &requested {
        assert!(
            r.starts_with(&server.base),
            "the page asked for {r}, outside the server"
        );
    }

    let shot = artifacts().join("ops.png");
    let (_, requested) = browse(
        &bin,
        &url,
        &[&format!("--screenshot={}", shot.display())],
        "ops-shot",
    );
    assert!(
        requested.iter().all(|r| r.starts_with(&server.base)),
        "{requested:?}"
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "screenshot"
    );
    println!("screenshot of the operations page: {}", shot.display());

    // The node and run pages render too, and stay on the server.
    for path in [
        "/ops/nodes/calendario".to_string(),
        format!("/ops/runs/{}", s.failed_run),
    ] {
        let (dom, requested) = browse(&bin, &server.url(&path), &["--dump-dom"], "ops-sub");
        assert!(dom.contains(&escaped(&s.error)), "{path}: error missing");
        assert!(
            requested.iter().all(|r| r.starts_with(&server.base)),
            "{path}: {requested:?}"
        );
    }
    rt.block_on(server.stop());
}

#[test]
fn in_chromium_docs_render_offline() {
    let Some(bin) = chromium() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated("opsdocs"));
    let server = rt.block_on(TestServer::start(config(&db.url)));
    // The viewer is a script: give it (virtual) time to render before the DOM is dumped.
    let (dom, requested) = browse(
        &bin,
        &server.url("/docs"),
        &["--virtual-time-budget=15000", "--dump-dom"],
        "docs-dom",
    );
    for r in &requested {
        assert!(
            r.starts_with(&server.base),
            "/docs asked for {r}, outside the server"
        );
    }
    // The viewer ran: it replaced the placeholder with the rendered reference.
    assert!(
        dom.contains("/api/v1/dashboard"),
        "the API reference did not render"
    );
    rt.block_on(server.stop());
}
