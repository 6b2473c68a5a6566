//! `GET|POST /api/v1/evolution`, `/evolution/carteras`, `/evolution/metrics`, over
//! `mart.evolucion` (the dashboard's counters per campaign and management day).
//!
//! One series per value of the comparison dimension (default cartera) plus a `Total` series;
//! each point sums the campaigns' counters at that management day (`dia_gestion`, business days
//! since opening) and computes the metric from the sums.

use std::collections::BTreeMap;

use axum::extract::State;
use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::http::envelope::{Envelope, envelope};
use crate::http::json::JsonBytes;
use crate::http::params::{JsonBody, Query, filter_list, parse_date};
use crate::marts::kpi::{pct, ratio, round2};
use crate::state::Shared;

/// How a metric's values read.
#[derive(Clone, Copy, Debug, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    Percent,
    Currency,
    Number,
}

/// The metrics the evolution charts can plot.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    Cobertura,
    Contacto,
    Cd,
    Ci,
    Sc,
    Cierre,
    Recupero,
    Intensidad,
    Pdp,
}

const METRICS: [(Metric, &str, &str, ValueType); 9] = [
    (
        Metric::Cobertura,
        "cobertura",
        "Coverage percentage",
        ValueType::Percent,
    ),
    (
        Metric::Contacto,
        "contacto",
        "Contact percentage",
        ValueType::Percent,
    ),
    (
        Metric::Cd,
        "cd",
        "Direct contact percentage",
        ValueType::Percent,
    ),
    (
        Metric::Ci,
        "ci",
        "Indirect contact percentage",
        ValueType::Percent,
    ),
    (
        Metric::Sc,
        "sc",
        "No contact percentage",
        ValueType::Percent,
    ),
    (
        Metric::Cierre,
        "cierre",
        "Closure rate percentage (paying accounts)",
        ValueType::Percent,
    ),
    (
        Metric::Recupero,
        "recupero",
        "Recovery amount",
        ValueType::Currency,
    ),
    (
        Metric::Intensidad,
        "intensidad",
        "Intensity (attempts per account)",
        ValueType::Number,
    ),
    (
        Metric::Pdp,
        "pdp",
        "Accounts with a promise to pay (percentage)",
        ValueType::Percent,
    ),
];

impl Metric {
    fn parse(parameter: &str, v: &str) -> Result<Metric, ApiError> {
        let v = v.trim().to_ascii_lowercase();
        let v = if v == "inten" {
            "intensidad".to_string()
        } else {
            v
        };
        METRICS
            .iter()
            .find(|(_, name, _, _)| *name == v)
            .map(|(m, ..)| *m)
            .ok_or_else(|| {
                let names: Vec<&str> = METRICS.iter().map(|(_, n, _, _)| *n).collect();
                ApiError::invalid(
                    parameter,
                    format!(
                        "{parameter}: unknown metric {:?}; use any of {}",
                        crate::http::params::safe_text(&v),
                        names.join(", ")
                    ),
                )
            })
    }

    fn info(self) -> (&'static str, &'static str, ValueType) {
        let (_, n, d, t) = METRICS.iter().find(|(m, ..)| *m == self).expect("metric");
        (n, d, *t)
    }
}

/// A series key.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Comparison {
    Cartera,
    Servicio,
    Periodo,
    Archivo,
}

impl Comparison {
    fn parse(parameter: &str, v: &str) -> Result<Self, ApiError> {
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

    fn as_str(self) -> &'static str {
        match self {
            Comparison::Cartera => "cartera",
            Comparison::Servicio => "servicio",
            Comparison::Periodo => "periodo",
            Comparison::Archivo => "archivo",
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EvolutionPoint {
    /// Management day (business days since the campaign opened, 1-based).
    pub day: i32,
    pub value: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EvolutionSeries {
    /// The comparison dimension's value, or `Total`.
    pub name: String,
    pub data: Vec<EvolutionPoint>,
}

/// One metric of the (bare array) evolution answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvolutionMetric {
    pub metric: String,
    pub value_type: ValueType,
    pub series: Vec<EvolutionSeries>,
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

#[derive(Debug, Serialize)]
struct EvolutionQuery {
    #[serde(serialize_with = "crate::http::ser::date::serialize")]
    fecha_inicio: NaiveDate,
    #[serde(serialize_with = "crate::http::ser::date::serialize")]
    fecha_fin: NaiveDate,
    cartera: Vec<String>,
    servicio: Vec<String>,
    periodo: Vec<String>,
    comparison: Comparison,
    metrics: Vec<Metric>,
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
    let today = chrono::Utc::now()
        .with_timezone(&st.cfg.time_zone)
        .date_naive();
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
        let m = Metric::parse("metrics", m)?;
        if !metrics.contains(&m) {
            metrics.push(m);
        }
    }
    if metrics.is_empty() {
        metrics = raw.default_metrics.to_vec();
    }
    Ok(EvolutionQuery {
        fecha_inicio,
        fecha_fin,
        cartera: filter_list("cartera", &raw.cartera, max)?,
        servicio: filter_list("servicio", &raw.servicio, max)?,
        periodo: filter_list("periodo", &raw.periodo, max)?,
        comparison: raw
            .comparison
            .as_deref()
            .map(|c| Comparison::parse("comparisonDimension", c))
            .transpose()?
            .unwrap_or(Comparison::Cartera),
        metrics,
    })
}

#[derive(Default, Clone, Copy)]
struct Sums {
    cuentas: f64,
    gestionadas: f64,
    cd: f64,
    ci: f64,
    sc: f64,
    pdp: f64,
    pagadoras: f64,
    recupero: f64,
    gestiones: f64,
}

fn value(m: Metric, s: &Sums) -> f64 {
    match m {
        Metric::Cobertura => pct(s.gestionadas, s.cuentas),
        Metric::Contacto => pct(s.cd + s.ci, s.cuentas),
        Metric::Cd => pct(s.cd, s.cuentas),
        Metric::Ci => pct(s.ci, s.cuentas),
        Metric::Sc => pct(s.sc, s.cuentas),
        Metric::Cierre => pct(s.pagadoras, s.cuentas),
        Metric::Recupero => round2(s.recupero),
        Metric::Intensidad => ratio(s.gestiones, s.gestionadas),
        Metric::Pdp => pct(s.pdp, s.cuentas),
    }
}

async fn compute(st: &Shared, q: &EvolutionQuery) -> Result<Vec<EvolutionMetric>, ApiError> {
    let rows = st
        .db
        .query(
            "evolution",
            &st.marts.sql().evolution,
            &[
                &q.fecha_inicio,
                &q.fecha_fin,
                &q.cartera,
                &q.servicio,
                &q.periodo,
                &q.comparison.as_str(),
            ],
        )
        .await?;
    // series name → points (day, sums); the Total series (GROUPING = 1) last.
    let mut series: BTreeMap<String, Vec<(i32, Sums)>> = BTreeMap::new();
    let mut total: Vec<(i32, Sums)> = Vec::new();
    for r in &rows {
        let g = |i: usize| r.get::<_, Option<f64>>(i).unwrap_or(0.0);
        let sums = Sums {
            cuentas: g(2),
            gestionadas: g(3),
            cd: g(4),
            ci: g(5),
            sc: g(6),
            pdp: g(7),
            pagadoras: g(8),
            recupero: g(9),
            gestiones: g(10),
        };
        let day: i32 = r.get(1);
        if r.get::<_, i32>(14) == 1 {
            total.push((day, sums));
        } else {
            series
                .entry(r.get::<_, Option<String>>(0).unwrap_or_default())
                .or_default()
                .push((day, sums));
        }
    }
    Ok(q.metrics
        .iter()
        .map(|&m| {
            let (name, _, value_type) = m.info();
            let to_series = |name: &str, points: &[(i32, Sums)]| EvolutionSeries {
                name: name.to_string(),
                data: points
                    .iter()
                    .map(|(day, s)| EvolutionPoint {
                        day: *day,
                        value: value(m, s),
                    })
                    .collect(),
            };
            let mut out: Vec<EvolutionSeries> =
                series.iter().map(|(n, p)| to_series(n, p)).collect();
            if !total.is_empty() {
                out.push(to_series("Total", &total));
            }
            EvolutionMetric {
                metric: name.to_string(),
                value_type,
                series: out,
            }
        })
        .collect())
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
    st.cached("evolution", &eq, || compute(&st, &eq)).await
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
    st.cached("evolution", &eq, || compute(&st, &eq)).await
}

#[utoipa::path(get, path = "/api/v1/evolution/carteras", tag = "dashboard",
    responses((status = 200, description = "Carteras with evolution data, sorted", body = Vec<String>)))]
pub async fn carteras(State(st): State<Shared>, q: Query) -> Result<JsonBytes, ApiError> {
    q.finish()?;
    st.cached("evolution_carteras", &(), || async {
        let rows = st
            .db
            .query("carteras", &st.marts.sql().carteras, &[])
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.get::<_, String>(0))
            .filter(|c| c != "Total")
            .collect::<Vec<_>>())
    })
    .await
}

/// An entry of the metric catalogue.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricInfo {
    pub metric: &'static str,
    pub description: &'static str,
    pub value_type: ValueType,
}

#[utoipa::path(get, path = "/api/v1/evolution/metrics", tag = "dashboard",
    responses((status = 200, body = Envelope<Vec<MetricInfo>>)))]
pub async fn metrics(q: Query) -> Result<axum::Json<Envelope<Vec<MetricInfo>>>, ApiError> {
    q.finish()?;
    Ok(axum::Json(envelope(
        "Available evolution metrics",
        METRICS
            .iter()
            .map(|(_, metric, description, value_type)| MetricInfo {
                metric,
                description,
                value_type: *value_type,
            })
            .collect(),
    )))
}
