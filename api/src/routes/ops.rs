//! The operations page: `GET /ops` (and `GET /` for browsers), `/ops/nodes/{name}`,
//! `/ops/runs/{run_id}`, and `POST /ops/refresh` (the refresh form).
//!
//! Reads the ledger through [`pulso_sinks::status`] and the pipeline file's DAG through
//! [`pulso_engine::render::Graph`]; [`crate::ops`] renders. Never cached: the page shows failed
//! runs, which do not bump the data version the cache is keyed by, and ages, which change with
//! the clock; every read is an index probe (`api_explain`).
//!
//! `/` stays the JSON welcome of the Pulso-Back contract (api.md §2) for every client that does
//! not prefer HTML; a browser (`Accept: text/html` ranked above JSON) gets the page.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use pulso_engine::render::{Graph, GraphNode, NodeShape};
use pulso_sinks::status::{self, NodeStatus};

use crate::config::ErrorDetail;
use crate::error::ApiError;
use crate::freshness;
use crate::http::auth;
use crate::http::params::{PathParam, Query, safe_text};
use crate::ops::health::Health;
use crate::ops::overview::{NodeView, Overview};
use crate::ops::page::{self, Page};
use crate::ops::{ErrorShown, RefreshForms, node, overview, run};
use crate::refresh::Started;
use crate::state::Shared;

/// Runs listed on the overview.
const RUNS_SHOWN: i64 = 20;
/// Runs of one node shown on its page.
const NODE_RUNS_SHOWN: i64 = 30;

/// The pipeline as the page draws it.
struct PipelineView {
    name: String,
    graph: Graph,
    /// Dependencies of each node, by name.
    deps: HashMap<String, Vec<String>>,
}

/// The last pipeline file compiled for the page: its path, modification time and length, and
/// what it compiled to. Compiling (YAML, interpolation, validation, the SQL files) costs more
/// than the page's reads, so it is done again only when the file changes.
type Compiled = (String, Option<SystemTime>, u64, Arc<PipelineView>);
static COMPILED: Mutex<Option<Compiled>> = Mutex::new(None);

fn compiled(file: &str) -> Option<Arc<PipelineView>> {
    let meta = std::fs::metadata(file).ok()?;
    let stamp = (meta.modified().ok(), meta.len());
    if let Ok(slot) = COMPILED.lock()
        && let Some((f, m, l, view)) = slot.as_ref()
        && f == file
        && (*m, *l) == stamp
    {
        return Some(view.clone());
    }
    let p = match pulso_engine::compile::load_pipeline(std::path::Path::new(file)) {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(%file, error = %e, "operations page: pipeline file not loaded; drawing the ledger's nodes");
            return None;
        }
    };
    let graph = Graph::from_pipeline(&p);
    let mut deps: HashMap<String, Vec<String>> = HashMap::new();
    for &(a, b) in &graph.edges {
        deps.entry(graph.nodes[b].name.clone())
            .or_default()
            .push(graph.nodes[a].name.clone());
    }
    let view = Arc::new(PipelineView {
        name: p.name.clone(),
        graph,
        deps,
    });
    if let Ok(mut slot) = COMPILED.lock() {
        *slot = Some((file.to_string(), stamp.0, stamp.1, view.clone()));
    }
    Some(view)
}

/// The DAG of the API's pipeline file (`PULSO_API_PIPELINE`), recompiled when the file changes
/// so that edits show without a restart. When the file cannot be loaded (e.g. its environment
/// is not set on this host) the page still shows every node the ledger knows, without edges.
fn pipeline_view(st: &Shared, ledger: &[NodeStatus]) -> Arc<PipelineView> {
    let file = st.refresh.pipeline_file();
    if let Some(view) = compiled(file) {
        return view;
    }
    let nodes = ledger
        .iter()
        .map(|n| GraphNode {
            name: n.node.clone(),
            shape: if n.last_kind.as_deref() == Some("sql") {
                NodeShape::Build
            } else {
                NodeShape::Source
            },
            target: n.target.clone().unwrap_or_default(),
            window: "–".into(),
            key: None,
        })
        .collect();
    Arc::new(PipelineView {
        name: file.to_string(),
        graph: Graph {
            title: file.to_string(),
            nodes,
            edges: Vec::new(),
        },
        deps: HashMap::new(),
    })
}

fn shown(st: &Shared) -> (ErrorShown, RefreshForms) {
    (
        match st.cfg.public_error_detail {
            ErrorDetail::Full => ErrorShown::Full,
            ErrorDetail::Class => ErrorShown::Class,
        },
        if st.cfg.refresh_token.is_some() {
            RefreshForms::Shown
        } else {
            RefreshForms::Hidden
        },
    )
}

fn html(status: StatusCode, title: &str, pipeline: &str, body: String) -> Response {
    let nonce = page::nonce();
    let doc = page::render(
        &Page {
            title,
            pipeline,
            now: Utc::now(),
            body,
        },
        &nonce,
    );
    (status, page::headers(&nonce), doc).into_response()
}

/// Names of every node: the pipeline file's and the ledger's.
fn names(st: &Shared) -> Vec<String> {
    st.refresh.pipeline_nodes()
}

/// `GET /`: the page for browsers, the JSON welcome for everyone else.
pub async fn root(State(st): State<Shared>, headers: HeaderMap) -> Response {
    let mut r = if prefers_html(&headers) {
        match render_overview(&st).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        }
    } else {
        super::docs::root().await.into_response()
    };
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept"));
    r
}

/// Whether `Accept` ranks `text/html` above JSON (ties go to JSON, the contract's answer).
pub fn prefers_html(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let (mut html, mut json, mut app_any, mut any) = (0.0f32, None, None, None);
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "text/html" => html = q,
            "application/json" => json = Some(q),
            "application/*" => app_any = Some(q),
            "*/*" => any = Some(q),
            _ => {}
        }
    }
    let json = json.or(app_any).or(any).unwrap_or(0.0);
    html > 0.0 && html > json
}

/// `GET /ops`.
pub async fn ops(State(st): State<Shared>, q: Query) -> Result<Response, ApiError> {
    q.finish()?;
    render_overview(&st).await
}

async fn render_overview(st: &Shared) -> Result<Response, ApiError> {
    let now = Utc::now();
    let names = names(st);
    let (nodes, latest, runs) = tokio::try_join!(
        status::node_status(&st.db, &names),
        status::latest_node_runs(&st.db, &names),
        status::run_history(&st.db, RUNS_SHOWN),
    )?;
    let pv = pipeline_view(st, &nodes);
    // The pipeline file may have nodes the startup list lacked (edited since): read them too.
    let missing: Vec<String> = pv
        .graph
        .nodes
        .iter()
        .filter(|g| !names.contains(&g.name))
        .map(|g| g.name.clone())
        .collect();
    let (nodes, latest) = if missing.is_empty() {
        (nodes, latest)
    } else {
        let all: Vec<String> = names.iter().chain(&missing).cloned().collect();
        tokio::try_join!(
            status::node_status(&st.db, &all),
            status::latest_node_runs(&st.db, &all),
        )?
    };
    let latest_by: HashMap<&str, _> = latest.iter().map(|r| (r.node.as_str(), r)).collect();
    let views: HashMap<&str, NodeView<'_>> = nodes
        .iter()
        .map(|n| {
            let fresh = freshness::of_node(&st.cfg, n, now).fresh;
            (
                n.node.as_str(),
                NodeView {
                    status: n,
                    latest: latest_by.get(n.node.as_str()).copied(),
                    health: Health::of(n, fresh),
                },
            )
        })
        .collect();
    let (errors, refresh) = shown(st);
    let body = overview::render(&Overview {
        pipeline: &pv.name,
        graph: &pv.graph,
        nodes: views,
        runs: &runs,
        now,
        errors,
        refresh,
        data_version: st.version.last_known(),
    });
    Ok(html(StatusCode::OK, "Operations", &pv.name, body))
}

/// `GET /ops/nodes/{name}`.
pub async fn node_page(
    State(st): State<Shared>,
    PathParam(name): PathParam,
    q: Query,
) -> Result<Response, ApiError> {
    q.finish()?;
    let now = Utc::now();
    let mut names = names(&st);
    if !names.contains(&name) {
        names.push(name.clone());
    }
    let (nodes, runs) = tokio::try_join!(
        status::node_status(&st.db, &names),
        status::node_history(&st.db, &name, NODE_RUNS_SHOWN),
    )?;
    let pv = pipeline_view(&st, &nodes);
    let spec = pv.graph.index(&name).map(|i| &pv.graph.nodes[i]);
    let Some(n) = nodes.iter().find(|n| n.node == name) else {
        return Err(not_found_node(&name));
    };
    if spec.is_none() && n.last_status.is_none() && n.watermark.is_none() {
        // Neither in the pipeline file nor in the ledger.
        return Err(not_found_node(&name));
    }
    let f = freshness::of_node(&st.cfg, n, now);
    let upstream = pv.deps.get(&name).cloned().unwrap_or_default();
    let mut downstream: Vec<String> = pv
        .deps
        .iter()
        .filter(|(_, ds)| ds.contains(&name))
        .map(|(k, _)| k.clone())
        .collect();
    downstream.sort();
    let (errors, refresh) = shown(&st);
    let body = node::render(&node::NodePage {
        status: n,
        spec,
        health: Health::of(n, f.fresh),
        max_age_seconds: f.max_age_seconds,
        runs: &runs,
        upstream,
        downstream,
        now,
        errors,
        // Only a node of the pipeline file can be refreshed.
        refresh: if spec.is_some() {
            refresh
        } else {
            RefreshForms::Hidden
        },
    });
    Ok(html(
        StatusCode::OK,
        &format!("Node {name}"),
        &pv.name,
        body,
    ))
}

fn not_found_node(name: &str) -> ApiError {
    ApiError::NotFound(format!(
        "node {:?} is neither in the pipeline nor in the ledger",
        safe_text(name)
    ))
}

/// `GET /ops/runs/{run_id}`.
pub async fn run_page(
    State(st): State<Shared>,
    PathParam(run_id): PathParam,
    q: Query,
) -> Result<Response, ApiError> {
    q.finish()?;
    let now = Utc::now();
    let (found, nodes) = tokio::try_join!(
        status::run(&st.db, &run_id),
        status::run_nodes(&st.db, &run_id),
    )?;
    let pv = pipeline_view(&st, &[]);
    let Some(r) = found else {
        // A refresh this server just started may not have written its ledger row yet.
        if st.refresh.running().is_some_and(|r| r.run_id == run_id) {
            return Ok(html(
                StatusCode::OK,
                &format!("Run {run_id}"),
                &pv.name,
                "<p>started; not yet recorded in the ledger: reload this page in a moment.</p>\n"
                    .into(),
            ));
        }
        return Err(ApiError::NotFound(format!(
            "run {:?} is not in the ledger",
            safe_text(&run_id)
        )));
    };
    let (errors, _) = shown(&st);
    let body = run::render(&run::RunPage {
        run: &r,
        nodes: &nodes,
        deps: &pv.deps,
        now,
        errors,
    });
    Ok(html(
        StatusCode::OK,
        &format!("Run {run_id}"),
        &pv.name,
        body,
    ))
}

/// `POST /ops/refresh` (`application/x-www-form-urlencoded`: `token`, optional `node` and
/// `full_refresh=true`): the refresh form. The token travels in the body, as a browser form
/// cannot set `Authorization`; it is checked like the bearer header of the refresh endpoints
/// (digests compared in constant time, wrong tokens limited per client address), and the answer
/// is a redirect to the run's page (303), or an HTML page saying what was refused (409 with a
/// link to the running run while another refresh runs: nothing was started).
pub async fn refresh(State(st): State<Shared>, req: Request) -> Response {
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let headers = req.headers().clone();
    let refused = |e: ApiError| {
        html(
            e.status(),
            "Refresh refused",
            "",
            format!(
                "<p>{}</p><p><a href=\"/ops\">back to the operations page</a></p>\n",
                page::text(&e.to_string())
            ),
        )
    };
    let body = match axum::body::to_bytes(req.into_body(), st.cfg.body_limit).await {
        Ok(b) => b,
        Err(_) => return refused(ApiError::PayloadTooLarge(st.cfg.body_limit)),
    };
    match start_refresh(&st, &headers, &body, client) {
        Ok(Started::New(r)) => (
            StatusCode::SEE_OTHER,
            [(
                header::LOCATION,
                HeaderValue::from_str(&format!("/ops/runs/{}", page::seg(&r.run_id)))
                    .unwrap_or_else(|_| HeaderValue::from_static("/ops")),
            )],
        )
            .into_response(),
        Ok(Started::AlreadyRunning(r)) => html(
            StatusCode::CONFLICT,
            "Refresh not started",
            "",
            format!(
                "<p>another refresh is running: <a href=\"/ops/runs/{}\">{}</a>; nothing was \
                 started.</p><p><a href=\"/ops\">back to the operations page</a></p>\n",
                page::seg(&r.run_id),
                page::text(&r.run_id)
            ),
        ),
        Err(e) => refused(e),
    }
}

fn start_refresh(
    st: &Shared,
    headers: &HeaderMap,
    body: &[u8],
    client: Option<IpAddr>,
) -> Result<Started, ApiError> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !form {
        return Err(ApiError::UnsupportedMediaType(
            "the refresh form posts application/x-www-form-urlencoded".into(),
        ));
    }
    let (mut token, mut node, mut full) = (None, None, false);
    for (k, v) in form_urlencoded::parse(body) {
        match k.as_ref() {
            "token" if token.is_none() => token = Some(v.into_owned()),
            "node" if node.is_none() => {
                node = Some(v.into_owned()).filter(|n| !n.is_empty());
            }
            "full_refresh" => full = v == "true",
            other => {
                return Err(ApiError::BadRequest {
                    parameter: Some(safe_text(other)),
                    message: format!("unexpected or repeated form field {:?}", safe_text(other)),
                });
            }
        }
    }
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(ApiError::Unauthorized(
            "the refresh form needs the refresh token".into(),
        ));
    };
    let Some(expected) = st.cfg.refresh_token.as_deref() else {
        return Err(ApiError::Forbidden(
            "refresh is disabled on this server (no PULSO_API_REFRESH_TOKEN)".into(),
        ));
    };
    auth::check(&token, &[expected], &st.auth_failures, client)?;
    let tables = node.map(|n| vec![n]);
    st.refresh.start(tables.as_deref(), full, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn only_clients_that_prefer_html_get_the_page_at_the_root() {
        // Chromium's and Firefox's navigation Accept.
        assert!(prefers_html(&accept(
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
        )));
        assert!(!prefers_html(&HeaderMap::new()));
        assert!(!prefers_html(&accept("*/*")));
        assert!(!prefers_html(&accept("application/json, text/plain, */*")));
        assert!(!prefers_html(&accept("application/json, text/html")));
        assert!(prefers_html(&accept("text/html, application/json;q=0.5")));
        assert!(!prefers_html(&accept("text/html;q=0")));
    }
}
