//! `GET|POST /api/v1/evolution`, `/evolution/carteras`, `/evolution/metrics`: the request's
//! parameters validated and normalised into an [`EvolutionQuery`], answered by
//! [`crate::marts::evolution`].

use axum::extract::State;
use chrono::Duration;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::http::envelope::{Envelope, envelope};
use crate::http::json::JsonBytes;
use crate::http::params::{JsonBody, JsonObject, Query, filter_list, parse_date};
use crate::marts::evolution::{
    Comparison, EvolutionMetric, EvolutionQuery, Metric, MetricInfo, catalogue,
};
use crate::marts::known::Dim;
use crate::state::Shared;

/// A metric named by the request (any case; `inten` for intensidad).
fn parse_metric(parameter: &str, v: &str) -> Result<Metric, ApiError> {
    let v = v.trim().to_ascii_lowercase();
    let v = if v == "inten" {
        "intensidad".to_string()
    } else {
        v
    };
    Metric::from_name(&v).ok_or_else(|| {
        ApiError::invalid(
            parameter,
            format!(
                "{parameter}: unknown metric {:?}; use any of {}",
                crate::http::params::safe_text(&v),
                Metric::names().join(", ")
            ),
        )
    })
}

/// A comparison dimension named by the request, with its aliases.
fn parse_comparison(parameter: &str, v: &str) -> Result<Comparison, ApiError> {
    match v.trim() {
        "cartera" => Ok(Comparison::Cartera),
        "servicio" | "negocio" => Ok(Comparison::Servicio),
        "periodo" => Ok(Comparison::Periodo),
        "archivo" | "campana" => Ok(Comparison::Archivo),
        other => Err(ApiError::invalid(
            parameter,
            format!(
                "{parameter}: unknown comparison dimension {:?}; use cartera, servicio, periodo or archivo",
                crate::http::params::safe_text(other)
            ),
        )),
    }
}

/// `POST /api/v1/evolution` filters: lists or single values.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvolutionFilters {
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub cartera: Option<OneOrMany>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub servicio: Option<OneOrMany>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub periodo: Option<OneOrMany>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// `POST /api/v1/evolution` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvolutionRequest {
    #[serde(default)]
    pub filters: EvolutionFilters,
    /// First photo date (YYYY-MM-DD).
    pub fecha_inicio: String,
    /// Last photo date (YYYY-MM-DD).
    pub fecha_fin: String,
    /// cartera (default), servicio, periodo or archivo.
    #[serde(default)]
    pub comparison_dimension: Option<String>,
    /// Default cobertura, contacto, cierre, intensidad.
    #[serde(default)]
    pub include_metrics: Option<Vec<String>>,
}

impl JsonObject for EvolutionRequest {
    const OBJECT_FIELDS: &'static [&'static str] = &["filters"];
}

struct Raw {
    fecha_inicio: Option<String>,
    fecha_fin: Option<String>,
    cartera: Vec<String>,
    servicio: Vec<String>,
    periodo: Vec<String>,
    comparison: Option<String>,
    metrics: Vec<String>,
    default_metrics: &'static [Metric],
}

const MAX_DAYS: i64 = 400;

fn normalise(st: &Shared, raw: Raw) -> Result<EvolutionQuery, ApiError> {
    let max = st.cfg.max_list;
    let today = st.marts.today();
    let fecha_fin = match raw.fecha_fin.as_deref() {
        Some(v) => parse_date("fechaFin", v)?,
        None => today,
    };
    let fecha_inicio = match raw.fecha_inicio.as_deref() {
        Some(v) => parse_date("fechaInicio", v)?,
        None => fecha_fin - Duration::days(30),
    };
    if fecha_fin < fecha_inicio {
        return Err(ApiError::invalid(
            "fechaFin",
            "fechaFin must be on or after fechaInicio",
        ));
    }
    if (fecha_fin - fecha_inicio).num_days() > MAX_DAYS {
        return Err(ApiError::invalid(
            "fechaInicio",
            format!("the date range may span at most {MAX_DAYS} days"),
        ));
    }
    crate::http::params::check_list_len("metrics", raw.metrics.len(), max)?;
    let mut metrics = Vec::new();
    for m in &raw.metrics {
        let m = parse_metric("metrics", m)?;
        if !metrics.contains(&m) {
            metrics.push(m);
        }
    }
    if metrics.is_empty() {
        metrics = raw.default_metrics.to_vec();
    }
    let periodo = filter_list("periodo", &raw.periodo, max)?;
    for p in &periodo {
        crate::http::params::parse_month("periodo", p)?;
    }
    Ok(EvolutionQuery {
        fecha_inicio,
        fecha_fin,
        cartera: filter_list("cartera", &raw.cartera, max)?,
        servicio: filter_list("servicio", &raw.servicio, max)?,
        periodo,
        comparison: raw
            .comparison
            .as_deref()
            .map(|c| parse_comparison("comparisonDimension", c))
            .transpose()?
            .unwrap_or(Comparison::Cartera),
        metrics,
    })
}

async fn check_known(st: &Shared, eq: &EvolutionQuery) -> Result<(), ApiError> {
    super::check_known(
        st,
        &[
            (Dim::Cartera, "cartera", &eq.cartera),
            (Dim::Servicio, "servicio", &eq.servicio),
        ],
    )
    .await
}

const GET_DEFAULT: &[Metric] = &[
    Metric::Cobertura,
    Metric::Contacto,
    Metric::Cd,
    Metric::Ci,
    Metric::Cierre,
    Metric::Recupero,
];
const POST_DEFAULT: &[Metric] = &[
    Metric::Cobertura,
    Metric::Contacto,
    Metric::Cierre,
    Metric::Intensidad,
];

#[utoipa::path(get, path = "/api/v1/evolution", tag = "dashboard",
    params(
        ("fecha_inicio" = Option<String>, Query, description = "First photo date (alias fechaInicio); default fecha_fin − 30 days"),
        ("fecha_fin" = Option<String>, Query, description = "Last photo date (alias fechaFin); default today (Lima)"),
        ("cartera" = Option<Vec<String>>, Query, description = "Cartera codes"),
        ("servicio" = Option<Vec<String>>, Query, description = "MOVIL / FIJA"),
        ("periodo" = Option<Vec<String>>, Query, description = "Campaign periods YYYY-MM"),
        ("metrics" = Option<String>, Query, description = "Comma-separated; default cobertura,contacto,cd,ci,cierre,recupero"),
        ("comparisonDimension" = Option<String>, Query, description = "cartera (default), servicio, periodo, archivo"),
    ),
    responses(
        (status = 200, body = Vec<EvolutionMetric>),
        (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get_evolution(State(st): State<Shared>, mut q: Query) -> Result<JsonBytes, ApiError> {
    let raw = Raw {
        fecha_inicio: q.one(&["fecha_inicio", "fechaInicio"])?,
        fecha_fin: q.one(&["fecha_fin", "fechaFin"])?,
        cartera: q.list(&["cartera"])?,
        servicio: q.list(&["servicio"])?,
        periodo: q.list(&["periodo"])?,
        comparison: q.one(&["comparisonDimension", "comparison_dimension"])?,
        metrics: q.list(&["metrics"])?,
        default_metrics: GET_DEFAULT,
    };
    q.finish()?;
    let eq = normalise(&st, raw)?;
    check_known(&st, &eq).await?;
    st.cached("evolution", &eq, || st.marts.evolution(&eq))
        .await
}

#[utoipa::path(post, path = "/api/v1/evolution", tag = "dashboard",
    request_body = EvolutionRequest,
    responses(
        (status = 200, body = Vec<EvolutionMetric>),
        (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_evolution(
    State(st): State<Shared>,
    q: Query,
    JsonBody(body): JsonBody<EvolutionRequest>,
) -> Result<JsonBytes, ApiError> {
    q.finish()?;
    let f = body.filters;
    let raw = Raw {
        fecha_inicio: Some(body.fecha_inicio),
        fecha_fin: Some(body.fecha_fin),
        cartera: f.cartera.map(OneOrMany::into_vec).unwrap_or_default(),
        servicio: f.servicio.map(OneOrMany::into_vec).unwrap_or_default(),
        periodo: f.periodo.map(OneOrMany::into_vec).unwrap_or_default(),
        comparison: body.comparison_dimension,
        metrics: body.include_metrics.unwrap_or_default(),
        default_metrics: POST_DEFAULT,
    };
    let eq = normalise(&st, raw)?;
    check_known(&st, &eq).await?;
    st.cached("evolution", &eq, || st.marts.evolution(&eq))
        .await
}

#[utoipa::path(get, path = "/api/v1/evolution/carteras", tag = "dashboard",
    responses((status = 200, description = "Carteras with evolution data, sorted", body = Vec<String>)))]
pub async fn carteras(State(st): State<Shared>, q: Query) -> Result<JsonBytes, ApiError> {
    q.finish()?;
    st.cached("evolution_carteras", &(), || st.marts.evolution_carteras())
        .await
}

#[utoipa::path(get, path = "/api/v1/evolution/metrics", tag = "dashboard",
    responses((status = 200, body = Envelope<Vec<MetricInfo>>)))]
pub async fn metrics(q: Query) -> Result<axum::Json<Envelope<Vec<MetricInfo>>>, ApiError> {
    q.finish()?;
    Ok(axum::Json(envelope(
        "Available evolution metrics",
        catalogue(),
    )))
}
