//! `GET|POST /api/v1/productivity`, `/productivity/agents`, `/productivity/agents/{agent_id}`,
//! `/productivity/metrics`: the request's days, agent, filter and ranking metric validated into a
//! [`ProductivityQuery`], answered by [`crate::marts::productivity`].

use axum::extract::State;
use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::http::json::JsonBytes;
use crate::http::params::{
    JsonBody, JsonObject, PathParam, Query, filter_list, filter_value, is_all, parse_date,
};
use crate::marts::known::Dim;
use crate::marts::latest::Latest;
use crate::marts::productivity::{AvailableAgent, ProductivityQuery, ProductivityResponse, RankBy};
use crate::state::Shared;

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
    /// gestiones (default), contactos, compromisos, commitmentConversion.
    #[serde(default)]
    pub metric_type: Option<String>,
}

impl JsonObject for ProductivityRequest {
    const OBJECT_FIELDS: &'static [&'static str] = &["filtros"];
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductivityFilters {
    #[serde(default)]
    pub cartera: Option<Vec<String>>,
}

/// The ranking metric named by the request, with its aliases.
fn parse_rank_by(parameter: &str, v: &str) -> Result<RankBy, ApiError> {
    Ok(match v.trim() {
        "calls" | "gestiones" | "llamadas" => RankBy::Calls,
        "directContacts" | "contactos" | "contactosEfectivos" => RankBy::DirectContacts,
        "commitments" | "compromisos" => RankBy::Commitments,
        "commitmentConversion" => RankBy::CommitmentConversion,
        "closingRate" => {
            return Err(ApiError::invalid(
                parameter,
                format!(
                    "{parameter}: closingRate has no agreed definition yet (docs/kpis.md) and is \
                     not served; use calls, directContacts, commitments or commitmentConversion"
                ),
            ));
        }
        other => {
            return Err(ApiError::invalid(
                parameter,
                format!(
                    "{parameter}: unknown metric {:?}; use calls, directContacts, commitments or commitmentConversion",
                    crate::http::params::safe_text(other)
                ),
            ));
        }
    })
}

/// The latest day with human interactions on or before today (Lima), or else today.
async fn latest_day(st: &Shared) -> Result<NaiveDate, ApiError> {
    let today = st.marts.today();
    let latest = st.marts.latest(Latest::ProductivityDay, today).await?;
    Ok(latest.unwrap_or(today))
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
    super::check_known(
        st,
        &[
            (Dim::Cartera, "cartera", &cartera),
            (Dim::Agente, "agente", agente.as_slice()),
        ],
    )
    .await?;
    let rank_by = rank_by
        .as_deref()
        .map(|r| parse_rank_by("rankBy", r))
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

#[utoipa::path(get, path = "/api/v1/productivity", tag = "dashboard",
    params(
        ("fecha_inicio" = Option<String>, Query, description = "Default fecha_fin − 30 days"),
        ("fecha_fin" = Option<String>, Query, description = "Default the latest day with human interactions"),
        ("agente" = Option<String>, Query, description = "Agent e-mail or exact name"),
        ("cartera" = Option<Vec<String>>, Query, description = "Cartera of the attributed campaign"),
        ("rankBy" = Option<String>, Query, description = "calls (default), directContacts, commitments, commitmentConversion"),
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
    st.cached("productivity", &pq, || st.marts.productivity(&pq))
        .await
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
    st.cached("productivity", &pq, || st.marts.productivity(&pq))
        .await
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
    PathParam(agent_id): PathParam,
    mut q: Query,
) -> Result<JsonBytes, ApiError> {
    let fi = q.one(&["fecha_inicio", "fechaInicio"])?;
    let ff = q.one(&["fecha_fin", "fechaFin"])?;
    q.finish()?;
    // One agent: "all" (TODOS, blank) is not an agent, nor is a name the data does not have.
    let agent_id = filter_value_email("agent_id", &agent_id)?;
    if agent_id.is_empty()
        || is_all(&agent_id)
        || !st.known_values().await?.contains(Dim::Agente, &agent_id)
    {
        return Err(ApiError::NotFound(
            "Detalles del agente no encontrados.".into(),
        ));
    }
    let pq = normalise(&st, fi, ff, Some(agent_id), vec![], None).await?;
    let bytes = st
        .cached("productivity", &pq, || st.marts.productivity(&pq))
        .await?;
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
        || st.marts.agents(key.0, key.1),
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
            "commitmentConversion",
        ],
    }))
}
