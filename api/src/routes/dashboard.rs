//! `GET|POST /api/v1/dashboard`: the request's parameters (query string or body), validated and
//! normalised into a [`DashboardQuery`] (defaults filled, relative periods resolved against the
//! photo date), served from the cache or computed by [`crate::marts::dashboard`].

use axum::extract::State;
use chrono::{Datelike, Months};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::http::json::JsonBytes;
use crate::http::params::{JsonBody, JsonObject, Query, check_list_len, filter_list, parse_date};
use crate::marts::dashboard::{DashboardData, DashboardQuery, Dimension, default_groupings};
use crate::marts::known::Dim;
use crate::marts::latest::Latest;
use crate::marts::month_of;
use crate::state::Shared;

pub const DIMENSION_NAMES: &str = "cartera, servicio (or negocio), periodo, tramo, vencimiento, diaVencimiento, rangoDeuda, archivo";

/// A dimension named by the request (`dimensions`), with its aliases.
pub fn parse_dimension(parameter: &str, v: &str) -> Result<Dimension, ApiError> {
    let d = match v.trim() {
        "cartera" => Dimension::Cartera,
        "servicio" | "negocio" => Dimension::Servicio,
        "periodo" => Dimension::Periodo,
        "tramo" => Dimension::Tramo,
        "vencimiento" | "grupoVencimiento" | "grupo_vencimiento" => Dimension::Vencimiento,
        "diaVencimiento" | "dia_vencimiento" => Dimension::DiaVencimiento,
        "rangoDeuda" | "rango_deuda" => Dimension::RangoDeuda,
        "archivo" | "campana" => Dimension::Archivo,
        "tipoSegmento" | "tipo_segmento" => {
            return Err(ApiError::invalid(
                parameter,
                format!(
                    "{parameter}: tipoSegmento has no agreed definition yet (docs/kpis.md, \
                     open question) and is not served; use one of: {DIMENSION_NAMES}"
                ),
            ));
        }
        other => {
            return Err(ApiError::invalid(
                parameter,
                format!(
                    "{parameter}: unknown dimension {:?}; use one of: {DIMENSION_NAMES}",
                    crate::http::params::safe_text(other)
                ),
            ));
        }
    };
    Ok(d)
}

/// Filters of the dashboard request body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DashboardFilters {
    /// Cartera codes (`TODAS` = all).
    #[serde(default)]
    pub cartera: Option<Vec<String>>,
    /// MOVIL / FIJA (`TODOS` = all).
    #[serde(default)]
    pub servicio: Option<Vec<String>>,
    /// `YYYY-MM` or ACTUAL, ANTERIOR, ULTIMO_MES, ULTIMOS_3_MESES (relative to fechaCorte).
    #[serde(default)]
    pub periodo: Option<Vec<String>>,
    #[serde(default)]
    pub tramo: Option<Vec<String>>,
    /// Due days of month (1–31; 0 = unknown).
    #[serde(default)]
    pub vencimiento: Option<Vec<i32>>,
    #[serde(default)]
    pub rango_deuda: Option<Vec<String>>,
    /// Campaigns opened on or after this date.
    #[serde(default)]
    pub fecha_inicio: Option<String>,
    /// Campaigns opened on or before this date.
    #[serde(default)]
    pub fecha_fin: Option<String>,
}

/// `POST /api/v1/dashboard` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DashboardRequest {
    #[serde(default)]
    pub filters: DashboardFilters,
    /// Photo date `YYYY-MM-DD`; default the latest complete photo date.
    #[serde(default)]
    pub fecha_corte: Option<String>,
    /// Up to two dimensions: the first groups `segmentoData` and the chart, the second
    /// `negocioData`. Omitted: segmento = cartera × due-day group, negocio = servicio, chart =
    /// cartera.
    #[serde(default)]
    pub dimensions: Option<Vec<String>>,
}

impl JsonObject for DashboardRequest {
    const OBJECT_FIELDS: &'static [&'static str] = &["filters"];
}

/// Raw (unvalidated) dashboard parameters, from the query string or the body.
#[derive(Default)]
pub struct RawDashboard {
    pub fecha_corte: Option<String>,
    pub cartera: Vec<String>,
    pub servicio: Vec<String>,
    pub periodo: Vec<String>,
    pub tramo: Vec<String>,
    pub vencimiento: Vec<String>,
    pub rango_deuda: Vec<String>,
    pub fecha_inicio: Option<String>,
    pub fecha_fin: Option<String>,
    pub dimensions: Option<Vec<String>>,
}

const PERIODO_CODES: [&str; 4] = ["ACTUAL", "ANTERIOR", "ULTIMO_MES", "ULTIMOS_3_MESES"];

/// Validate and normalise; resolves the default photo date and relative period codes.
pub async fn normalise(st: &Shared, raw: RawDashboard) -> Result<DashboardQuery, ApiError> {
    let max = st.cfg.max_list;
    let cartera = filter_list("cartera", &raw.cartera, max)?;
    let servicio: Vec<String> = filter_list("servicio", &raw.servicio, max)?
        .into_iter()
        .map(|s| {
            // "Móvil"/"movil" → MOVIL, as the filter options label them.
            let up = s.to_uppercase().replace('Ó', "O");
            if up == "MOVIL" || up == "FIJA" { up } else { s }
        })
        .collect();
    let tramo = filter_list("tramo", &raw.tramo, max)?;
    let rango_deuda = filter_list("rangoDeuda", &raw.rango_deuda, max)?;
    super::check_known(
        st,
        &[
            (Dim::Cartera, "cartera", &cartera),
            (Dim::Servicio, "servicio", &servicio),
            (Dim::Tramo, "tramo", &tramo),
            (Dim::RangoDeuda, "rangoDeuda", &rango_deuda),
        ],
    )
    .await?;
    check_list_len("vencimiento", raw.vencimiento.len(), max)?;
    let mut vencimiento = Vec::with_capacity(raw.vencimiento.len());
    for v in &raw.vencimiento {
        let n: i32 = v.trim().parse().map_err(|_| {
            ApiError::bad(
                "vencimiento",
                format!(
                    "vencimiento: {:?} is not a day of month (an integer)",
                    crate::http::params::safe_text(v)
                ),
            )
        })?;
        if !(0..=31).contains(&n) {
            return Err(ApiError::invalid(
                "vencimiento",
                format!("vencimiento: {n} is not a day of month (1–31, 0 = unknown)"),
            ));
        }
        vencimiento.push(n);
    }
    vencimiento.sort_unstable();
    vencimiento.dedup();
    let fecha_inicio = raw
        .fecha_inicio
        .as_deref()
        .map(|v| parse_date("fechaInicio", v))
        .transpose()?;
    let fecha_fin = raw
        .fecha_fin
        .as_deref()
        .map(|v| parse_date("fechaFin", v))
        .transpose()?;
    if let (Some(a), Some(b)) = (fecha_inicio, fecha_fin)
        && b < a
    {
        return Err(ApiError::invalid(
            "fechaFin",
            "fechaFin must be on or after fechaInicio",
        ));
    }
    let (segment, negocio, chart) = match &raw.dimensions {
        None => default_groupings(),
        Some(dims) => {
            let mut parsed = Vec::new();
            for d in dims.iter().flat_map(|d| d.split(',')) {
                if d.trim().is_empty() {
                    continue;
                }
                let d = parse_dimension("dimensions", d)?;
                if !parsed.contains(&d) {
                    parsed.push(d);
                }
            }
            match parsed.as_slice() {
                [] => default_groupings(),
                [a] => (vec![*a], vec![], vec![*a]),
                [a, b] => (vec![*a], vec![*b], vec![*a]),
                _ => {
                    return Err(ApiError::invalid(
                        "dimensions",
                        "dimensions: at most two (the first groups segmentoData and the chart, \
                         the second negocioData)",
                    ));
                }
            }
        }
    };
    // The latest photo date is only looked up when needed (no default, or ULTIMO_MES).
    let needs_latest = raw.fecha_corte.is_none()
        || raw
            .periodo
            .iter()
            .any(|p| p.trim().eq_ignore_ascii_case("ULTIMO_MES"));
    let latest = if needs_latest {
        st.latest_cached(Latest::Photo).await?
    } else {
        None
    };
    let fecha_corte = match raw.fecha_corte.as_deref() {
        Some(v) => Some(parse_date("fechaCorte", v)?),
        None => latest,
    };
    // Period codes relative to the photo date; explicit months as given.
    let mut periodo = Vec::new();
    for p in filter_list("periodo", &raw.periodo, max)? {
        let code = p.to_ascii_uppercase();
        if PERIODO_CODES.contains(&code.as_str()) {
            let Some(base) = fecha_corte else { continue };
            let first = base.with_day(1).expect("day 1");
            match code.as_str() {
                "ACTUAL" => periodo.push(month_of(first)),
                "ANTERIOR" => periodo.push(month_of(first - Months::new(1))),
                "ULTIMO_MES" => periodo.push(month_of(latest.unwrap_or(base))),
                _ => {
                    for k in 0..3 {
                        periodo.push(month_of(first - Months::new(k)));
                    }
                }
            }
        } else {
            crate::http::params::parse_month("periodo", &p).map_err(|_| {
                ApiError::invalid(
                    "periodo",
                    format!(
                        "periodo: {:?} is neither a month (YYYY-MM) nor one of {}",
                        crate::http::params::safe_text(&p),
                        PERIODO_CODES.join(", ")
                    ),
                )
            })?;
            periodo.push(p);
        }
    }
    periodo.sort();
    periodo.dedup();
    Ok(DashboardQuery {
        fecha_corte,
        cartera,
        servicio,
        periodo,
        tramo,
        vencimiento,
        rango_deuda,
        fecha_inicio,
        fecha_fin,
        segment,
        negocio,
        chart,
    })
}

async fn serve(st: &Shared, raw: RawDashboard) -> Result<JsonBytes, ApiError> {
    let q = normalise(st, raw).await?;
    st.cached("dashboard", &q, || st.marts.dashboard(&q)).await
}

#[utoipa::path(get, path = "/api/v1/dashboard", tag = "dashboard",
    params(
        ("fechaCorte" = Option<String>, Query, description = "Photo date YYYY-MM-DD (alias fecha_corte); default the latest complete one"),
        ("cartera" = Option<Vec<String>>, Query, description = "Repeatable or comma-separated"),
        ("servicio" = Option<Vec<String>>, Query, description = "MOVIL / FIJA"),
        ("periodo" = Option<Vec<String>>, Query, description = "YYYY-MM or ACTUAL, ANTERIOR, ULTIMO_MES, ULTIMOS_3_MESES"),
        ("tramo" = Option<Vec<String>>, Query, description = "Collection bracket"),
        ("vencimiento" = Option<Vec<i32>>, Query, description = "Due days of month"),
        ("rangoDeuda" = Option<Vec<String>>, Query, description = "Debt bracket"),
        ("fechaInicio" = Option<String>, Query, description = "Campaigns opened on or after"),
        ("fechaFin" = Option<String>, Query, description = "Campaigns opened on or before"),
        ("dimensions" = Option<Vec<String>>, Query, description = "Up to two grouping dimensions"),
    ),
    responses(
        (status = 200, body = DashboardData),
        (status = 400, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn get_dashboard(State(st): State<Shared>, mut q: Query) -> Result<JsonBytes, ApiError> {
    let raw = RawDashboard {
        fecha_corte: q.one(&["fechaCorte", "fecha_corte"])?,
        cartera: q.list(&["cartera"])?,
        servicio: q.list(&["servicio"])?,
        periodo: q.list(&["periodo"])?,
        tramo: q.list(&["tramo"])?,
        vencimiento: q.list(&["vencimiento"])?,
        rango_deuda: q.list(&["rangoDeuda", "rango_deuda"])?,
        fecha_inicio: q.one(&["fechaInicio", "fecha_inicio"])?,
        fecha_fin: q.one(&["fechaFin", "fecha_fin"])?,
        dimensions: {
            let d = q.list(&["dimensions"])?;
            if d.is_empty() { None } else { Some(d) }
        },
    };
    q.finish()?;
    serve(&st, raw).await
}

#[utoipa::path(post, path = "/api/v1/dashboard", tag = "dashboard",
    request_body = DashboardRequest,
    responses(
        (status = 200, body = DashboardData),
        (status = 400, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn post_dashboard(
    State(st): State<Shared>,
    q: Query,
    JsonBody(body): JsonBody<DashboardRequest>,
) -> Result<JsonBytes, ApiError> {
    q.finish()?;
    let f = body.filters;
    let raw = RawDashboard {
        fecha_corte: body.fecha_corte,
        cartera: f.cartera.unwrap_or_default(),
        servicio: f.servicio.unwrap_or_default(),
        periodo: f.periodo.unwrap_or_default(),
        tramo: f.tramo.unwrap_or_default(),
        vencimiento: f
            .vencimiento
            .unwrap_or_default()
            .iter()
            .map(i32::to_string)
            .collect(),
        rango_deuda: f.rango_deuda.unwrap_or_default(),
        fecha_inicio: f.fecha_inicio,
        fecha_fin: f.fecha_fin,
        dimensions: body.dimensions,
    };
    serve(&st, raw).await
}
