//! `GET|POST /api/v1/productivity`, `/productivity/agents`, `/productivity/agents/{agent_id}`,
//! `/productivity/metrics`, over `mart.productividad` (human interactions per agent and day) and,
//! for the hourly trend, the HUMANO rows of `mart.operacion`.
//!
//! Recovery credited to agents has no agreed attribution rule yet (docs/kpis.md): `recupero` and
//! `amountRecovered` are 0 and `metadata.unavailable` says so — nothing is invented (W-34).

use std::collections::BTreeMap;
use std::time::Instant;

use axum::extract::{Path, State};
use chrono::{Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::http::json::JsonBytes;
use crate::http::params::{JsonBody, Query, filter_list, filter_value, parse_date};
use crate::marts::kpi::{pct, round2};
use crate::state::Shared;

/// A point of `dailyTrend` (day set, hour null) or `hourlyTrend` (hour set, day null).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductivityTrendPoint {
    /// 1 + days since fecha_inicio.
    pub day: Option<i32>,
    /// `HH:00` (Lima).
    pub hour: Option<String>,
    /// Interactions.
    pub llamadas: i64,
    /// Interactions with a promise to pay.
    pub compromisos: i64,
    /// Not available yet (attribution rule open): 0 on daily points, null on hourly ones.
    pub recupero: Option<f64>,
}

/// An agent in the ranking.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentRankingRow {
    /// The agent's e-mail (the mart's key).
    pub id: String,
    pub rank: i64,
    pub agent_name: String,
    pub dni: String,
    pub calls: i64,
    /// Effective contacts.
    pub direct_contacts: i64,
    /// Promises to pay.
    pub commitments: i64,
    /// Not available yet (attribution rule open): 0.
    pub amount_recovered: f64,
    /// Promised amount.
    pub amount_promised: f64,
    /// commitments ÷ directContacts × 100.
    pub closing_rate: f64,
    /// commitments ÷ calls × 100.
    pub commitment_conversion: f64,
    /// Quartile of the rank (1 = best quarter).
    pub quartile: i32,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DailyCell {
    pub gestiones: Option<i64>,
    pub contactos_efectivos: Option<i64>,
    pub compromisos: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentHeatmapRow {
    pub id: String,
    pub dni: String,
    pub agent_name: String,
    /// Keyed by day number (1 + days since fecha_inicio), counts of that day.
    pub daily_performance: BTreeMap<String, DailyCell>,
}

/// What the ranking sums to.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductivityTotals {
    pub agents: usize,
    pub calls: i64,
    pub direct_contacts: i64,
    pub commitments: i64,
    pub amount_promised: f64,
    pub closing_rate: f64,
    pub commitment_conversion: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Period {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductivityMetadata {
    pub period: Period,
    pub filters: serde_json::Value,
    pub generated_at: String,
    pub execution_time_seconds: f64,
    pub total_agents: usize,
    pub query_count: u32,
    /// `computed` (the answer was computed for this request or its first twin); cached answers
    /// are byte-identical copies of it.
    pub cache_status: &'static str,
    /// The metric ranking and quartiles are by.
    pub rank_by: &'static str,
    /// Fields without a data source yet.
    pub unavailable: Vec<&'static str>,
}

/// `ProductivityResponse`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductivityResponse {
    pub daily_trend: Vec<ProductivityTrendPoint>,
    /// Empty when an agent is selected (hours are not kept per agent).
    pub hourly_trend: Vec<ProductivityTrendPoint>,
    pub agent_ranking: Vec<AgentRankingRow>,
    pub agent_heatmap: Vec<AgentHeatmapRow>,
    pub totals: ProductivityTotals,
    pub metadata: ProductivityMetadata,
}

/// `POST /api/v1/productivity` body (snake_case, as Pulso-Back's).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductivityRequest {
    #[serde(default)]
    pub fecha_inicio: Option<String>,
    #[serde(default)]
    pub fecha_fin: Option<String>,
    /// Agent e-mail or exact name.
    #[serde(default)]
    pub agente: Option<String>,
    #[serde(default)]
    pub filtros: ProductivityFilters,
    /// gestiones (default), contactos, compromisos, closingRate, commitmentConversion.
    #[serde(default)]
    pub metric_type: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductivityFilters {
    #[serde(default)]
    pub cartera: Option<Vec<String>>,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum RankBy {
    Calls,
    DirectContacts,
    Commitments,
    ClosingRate,
    CommitmentConversion,
}

impl RankBy {
    fn parse(parameter: &str, v: &str) -> Result<Self, ApiError> {
        Ok(match v.trim() {
            "calls" | "gestiones" | "llamadas" => RankBy::Calls,
            "directContacts" | "contactos" | "contactosEfectivos" => RankBy::DirectContacts,
            "commitments" | "compromisos" => RankBy::Commitments,
            "closingRate" => RankBy::ClosingRate,
            "commitmentConversion" => RankBy::CommitmentConversion,
            other => {
                return Err(ApiError::invalid(
                    parameter,
                    format!(
                        "{parameter}: unknown metric {:?}; use calls, directContacts, commitments, closingRate or commitmentConversion",
                        crate::http::params::safe_text(other)
                    ),
                ));
            }
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            RankBy::Calls => "calls",
            RankBy::DirectContacts => "directContacts",
            RankBy::Commitments => "commitments",
            RankBy::ClosingRate => "closingRate",
            RankBy::CommitmentConversion => "commitmentConversion",
        }
    }
}

#[derive(Debug, Serialize, Clone)]
struct ProductivityQuery {
    #[serde(serialize_with = "crate::http::ser::date::serialize")]
    fecha_inicio: NaiveDate,
    #[serde(serialize_with = "crate::http::ser::date::serialize")]
    fecha_fin: NaiveDate,
    agente: Option<String>,
    cartera: Vec<String>,
    rank_by: RankBy,
}

/// The latest day with human interactions on or before today (Lima).
async fn latest_day(st: &Shared) -> Result<NaiveDate, ApiError> {
    let today = Utc::now().with_timezone(&st.cfg.time_zone).date_naive();
    let d: Option<NaiveDate> = st
        .db
        .query(
            "latest_productivity",
            &st.marts.sql().latest_productivity,
            &[&today],
        )
        .await?[0]
        .get(0);
    Ok(d.unwrap_or(today))
}

async fn normalise(
    st: &Shared,
    fecha_inicio: Option<String>,
    fecha_fin: Option<String>,
    agente: Option<String>,
    cartera: Vec<String>,
    rank_by: Option<String>,
) -> Result<ProductivityQuery, ApiError> {
    let fi = fecha_inicio
        .as_deref()
        .map(|v| parse_date("fecha_inicio", v))
        .transpose()?;
    let ff = fecha_fin
        .as_deref()
        .map(|v| parse_date("fecha_fin", v))
        .transpose()?;
    let agente = agente
        .map(|a| filter_value_email("agente", &a))
        .transpose()?
        .filter(|a| !a.is_empty() && !a.eq_ignore_ascii_case("TODOS"));
    let cartera = filter_list("cartera", &cartera, st.cfg.max_list)?;
    let rank_by = rank_by
        .as_deref()
        .map(|r| RankBy::parse("rankBy", r))
        .transpose()?
        .unwrap_or(RankBy::Calls);
    let fecha_fin = match ff {
        Some(d) => d,
        None => latest_day(st).await?,
    };
    let fecha_inicio = fi.unwrap_or(fecha_fin - Duration::days(30));
    if fecha_fin < fecha_inicio {
        return Err(ApiError::bad(
            "fecha_fin",
            "La fecha de fin debe ser posterior a la fecha de inicio.",
        ));
    }
    if (fecha_fin - fecha_inicio).num_days() > 400 {
        return Err(ApiError::invalid(
            "fecha_inicio",
            "the date range may span at most 400 days",
        ));
    }
    Ok(ProductivityQuery {
        fecha_inicio,
        fecha_fin,
        agente,
        cartera,
        rank_by,
    })
}

/// Agent names and e-mails: the filter-value rules plus `@`.
fn filter_value_email(parameter: &str, v: &str) -> Result<String, ApiError> {
    let cleaned: String = v.replace('@', "");
    filter_value(parameter, &cleaned)?;
    Ok(v.trim().to_string())
}

#[derive(Default, Clone)]
struct Agent {
    name: String,
    dni: String,
    calls: i64,
    ce: i64,
    pdp: i64,
    promised: f64,
    days: BTreeMap<i32, (i64, i64, i64)>,
}

async fn compute(st: &Shared, q: &ProductivityQuery) -> Result<ProductivityResponse, ApiError> {
    let t0 = Instant::now();
    let hourly_fut = async {
        if q.agente.is_some() {
            return Ok(vec![]);
        }
        st.db
            .query(
                "productivity_hourly",
                &st.marts.sql().productivity_hourly,
                &[&q.fecha_inicio, &q.fecha_fin, &q.cartera],
            )
            .await
    };
    let rows_fut = async {
        st.db
            .query(
                "productivity",
                &st.marts.sql().productivity,
                &[&q.fecha_inicio, &q.fecha_fin, &q.agente, &q.cartera],
            )
            .await
    };
    let (hourly_rows, rows) = tokio::try_join!(hourly_fut, rows_fut)?;
    let mut agents: BTreeMap<String, Agent> = BTreeMap::new();
    let mut daily: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    for r in &rows {
        let fecha: NaiveDate = r.get(0);
        let day = (fecha - q.fecha_inicio).num_days() as i32 + 1;
        let calls = r.get::<_, Option<i64>>(4).unwrap_or(0);
        let ce = r.get::<_, Option<i64>>(5).unwrap_or(0);
        let pdp = r.get::<_, Option<i64>>(6).unwrap_or(0);
        let a = agents.entry(r.get(1)).or_default();
        a.name = r.get::<_, Option<String>>(2).unwrap_or_default();
        a.dni = r.get::<_, Option<String>>(3).unwrap_or_default();
        a.calls += calls;
        a.ce += ce;
        a.pdp += pdp;
        a.promised += r.get::<_, Option<f64>>(7).unwrap_or(0.0);
        let cell = a.days.entry(day).or_default();
        cell.0 += calls;
        cell.1 += ce;
        cell.2 += pdp;
        let d = daily.entry(day).or_default();
        d.0 += calls;
        d.1 += pdp;
    }
    let metric = |a: &Agent| -> f64 {
        match q.rank_by {
            RankBy::Calls => a.calls as f64,
            RankBy::DirectContacts => a.ce as f64,
            RankBy::Commitments => a.pdp as f64,
            RankBy::ClosingRate => pct(a.pdp as f64, a.ce as f64),
            RankBy::CommitmentConversion => pct(a.pdp as f64, a.calls as f64),
        }
    };
    let mut ordered: Vec<(&String, &Agent)> = agents.iter().collect();
    ordered.sort_by(|a, b| {
        metric(b.1)
            .total_cmp(&metric(a.1))
            .then_with(|| a.1.name.cmp(&b.1.name))
            .then_with(|| a.0.cmp(b.0))
    });
    let n = ordered.len();
    let agent_ranking: Vec<AgentRankingRow> = ordered
        .iter()
        .enumerate()
        .map(|(i, (id, a))| AgentRankingRow {
            id: (*id).clone(),
            rank: i as i64 + 1,
            agent_name: a.name.clone(),
            dni: a.dni.clone(),
            calls: a.calls,
            direct_contacts: a.ce,
            commitments: a.pdp,
            amount_recovered: 0.0,
            amount_promised: round2(a.promised),
            closing_rate: pct(a.pdp as f64, a.ce as f64),
            commitment_conversion: pct(a.pdp as f64, a.calls as f64),
            quartile: (1 + (i * 4) / n.max(1)).min(4) as i32,
        })
        .collect();
    let agent_heatmap: Vec<AgentHeatmapRow> = ordered
        .iter()
        .map(|(id, a)| AgentHeatmapRow {
            id: (*id).clone(),
            dni: a.dni.clone(),
            agent_name: a.name.clone(),
            daily_performance: a
                .days
                .iter()
                .map(|(d, (g, ce, pdp))| {
                    (
                        d.to_string(),
                        DailyCell {
                            gestiones: Some(*g),
                            contactos_efectivos: Some(*ce),
                            compromisos: Some(*pdp),
                        },
                    )
                })
                .collect(),
        })
        .collect();
    let daily_trend = daily
        .iter()
        .map(|(d, (calls, pdp))| ProductivityTrendPoint {
            day: Some(*d),
            hour: None,
            llamadas: *calls,
            compromisos: *pdp,
            recupero: Some(0.0),
        })
        .collect();
    let hourly_trend = hourly_rows
        .iter()
        .map(|r| ProductivityTrendPoint {
            day: None,
            hour: Some(format!("{:02}:00", r.get::<_, i32>(0))),
            llamadas: r.get::<_, Option<i64>>(1).unwrap_or(0),
            compromisos: r.get::<_, Option<i64>>(2).unwrap_or(0),
            recupero: None,
        })
        .collect();
    let (calls, ce, pdp, promised) = agents.values().fold((0, 0, 0, 0.0), |t, a| {
        (t.0 + a.calls, t.1 + a.ce, t.2 + a.pdp, t.3 + a.promised)
    });
    Ok(ProductivityResponse {
        daily_trend,
        hourly_trend,
        agent_ranking,
        agent_heatmap,
        totals: ProductivityTotals {
            agents: n,
            calls,
            direct_contacts: ce,
            commitments: pdp,
            amount_promised: round2(promised),
            closing_rate: pct(pdp as f64, ce as f64),
            commitment_conversion: pct(pdp as f64, calls as f64),
        },
        metadata: ProductivityMetadata {
            period: Period {
                start: q.fecha_inicio.to_string(),
                end: q.fecha_fin.to_string(),
            },
            filters: serde_json::json!({ "agente": q.agente, "cartera": q.cartera }),
            generated_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            execution_time_seconds: t0.elapsed().as_secs_f64(),
            total_agents: n,
            query_count: if q.agente.is_some() { 1 } else { 2 },
            cache_status: "computed",
            rank_by: q.rank_by.as_str(),
            unavailable: vec!["recupero", "amountRecovered"],
        },
    })
}

#[utoipa::path(get, path = "/api/v1/productivity", tag = "dashboard",
    params(
        ("fecha_inicio" = Option<String>, Query, description = "Default fecha_fin − 30 days"),
        ("fecha_fin" = Option<String>, Query, description = "Default the latest day with human interactions"),
        ("agente" = Option<String>, Query, description = "Agent e-mail or exact name"),
        ("cartera" = Option<Vec<String>>, Query, description = "Cartera of the attributed campaign"),
        ("rankBy" = Option<String>, Query, description = "calls (default), directContacts, commitments, closingRate, commitmentConversion"),
    ),
    responses((status = 200, body = ProductivityResponse), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get_productivity(
    State(st): State<Shared>,
    mut q: Query,
) -> Result<JsonBytes, ApiError> {
    let fi = q.one(&["fecha_inicio", "fechaInicio"])?;
    let ff = q.one(&["fecha_fin", "fechaFin"])?;
    let agente = q.one(&["agente"])?;
    let cartera = q.list(&["cartera"])?;
    let rank = q.one(&["rankBy", "rank_by", "metric_type"])?;
    q.finish()?;
    let pq = normalise(&st, fi, ff, agente, cartera, rank).await?;
    st.cached("productivity", &pq, || compute(&st, &pq)).await
}

#[utoipa::path(post, path = "/api/v1/productivity", tag = "dashboard",
    request_body = ProductivityRequest,
    responses((status = 200, body = ProductivityResponse), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_productivity(
    State(st): State<Shared>,
    q: Query,
    JsonBody(body): JsonBody<ProductivityRequest>,
) -> Result<JsonBytes, ApiError> {
    q.finish()?;
    let pq = normalise(
        &st,
        body.fecha_inicio,
        body.fecha_fin,
        body.agente,
        body.filtros.cartera.unwrap_or_default(),
        body.metric_type,
    )
    .await?;
    st.cached("productivity", &pq, || compute(&st, &pq)).await
}

#[utoipa::path(get, path = "/api/v1/productivity/agents/{agent_id}", tag = "dashboard",
    params(
        ("agent_id" = String, Path, description = "Agent e-mail (the ranking's id) or exact name"),
        ("fecha_inicio" = Option<String>, Query, description = "Default fecha_fin − 30 days"),
        ("fecha_fin" = Option<String>, Query, description = "Default the latest day with human interactions"),
    ),
    responses((status = 200, body = ProductivityResponse), (status = 404, body = ErrorBody)))]
pub async fn agent_detail(
    State(st): State<Shared>,
    Path(agent_id): Path<String>,
    mut q: Query,
) -> Result<JsonBytes, ApiError> {
    let fi = q.one(&["fecha_inicio", "fechaInicio"])?;
    let ff = q.one(&["fecha_fin", "fechaFin"])?;
    q.finish()?;
    let pq = normalise(&st, fi, ff, Some(agent_id), vec![], None).await?;
    let bytes = st.cached("productivity", &pq, || compute(&st, &pq)).await?;
    // 404 when the agent has no interactions in the range (checked on the cached answer).
    let empty = serde_json::from_slice::<serde_json::Value>(&bytes.0)
        .ok()
        .and_then(|v| v["agentRanking"].as_array().map(Vec::is_empty))
        .unwrap_or(true);
    if empty {
        return Err(ApiError::NotFound(
            "Detalles del agente no encontrados.".into(),
        ));
    }
    Ok(bytes)
}

/// An agent of the selector.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AvailableAgent {
    pub id: String,
    pub nombre: String,
    pub dni: String,
    /// `<nombre> (<dni>)`.
    pub label: String,
    /// First day with interactions in the range.
    pub fecha_inicio: String,
    pub fecha_fin: String,
}

#[utoipa::path(get, path = "/api/v1/productivity/agents", tag = "dashboard",
    params(
        ("fecha_inicio" = Option<String>, Query, description = "Default fecha_fin − 30 days"),
        ("fecha_fin" = Option<String>, Query, description = "Default the latest day with human interactions"),
    ),
    responses((status = 200, body = Vec<AvailableAgent>)))]
pub async fn agents(State(st): State<Shared>, mut q: Query) -> Result<JsonBytes, ApiError> {
    let fi = q.one(&["fecha_inicio", "fechaInicio"])?;
    let ff = q.one(&["fecha_fin", "fechaFin"])?;
    q.finish()?;
    let pq = normalise(&st, fi, ff, None, vec![], None).await?;
    let key = (pq.fecha_inicio, pq.fecha_fin);
    st.cached(
        "productivity_agents",
        &(key.0.to_string(), key.1.to_string()),
        || async {
            let rows = st
                .db
                .query("agents", &st.marts.sql().agents, &[&key.0, &key.1])
                .await?;
            Ok(rows
                .iter()
                .map(|r| {
                    let nombre: String = r.get::<_, Option<String>>(1).unwrap_or_default();
                    let dni: String = r.get::<_, Option<String>>(2).unwrap_or_default();
                    AvailableAgent {
                        id: r.get(0),
                        label: format!("{nombre} ({dni})"),
                        nombre,
                        dni,
                        fecha_inicio: r.get::<_, NaiveDate>(3).to_string(),
                        fecha_fin: r.get::<_, NaiveDate>(4).to_string(),
                    }
                })
                .collect::<Vec<_>>())
        },
    )
    .await
}

/// `GET /api/v1/productivity/metrics`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductivityMetrics {
    pub heatmap_metrics: Vec<&'static str>,
    pub trend_metrics: Vec<&'static str>,
    pub ranking_metrics: Vec<&'static str>,
}

#[utoipa::path(get, path = "/api/v1/productivity/metrics", tag = "dashboard",
    responses((status = 200, body = ProductivityMetrics)))]
pub async fn metrics(q: Query) -> Result<axum::Json<ProductivityMetrics>, ApiError> {
    q.finish()?;
    Ok(axum::Json(ProductivityMetrics {
        heatmap_metrics: vec!["gestiones", "contactosEfectivos", "compromisos"],
        trend_metrics: vec!["llamadas", "compromisos", "recupero"],
        ranking_metrics: vec![
            "calls",
            "directContacts",
            "commitments",
            "amountRecovered",
            "closingRate",
            "commitmentConversion",
        ],
    }))
}
