//! `GET|POST /api/v1/dashboard` and `GET /api/v1/filters`, over `mart.dashboard`.
//!
//! One photo date at a time (`fechaCorte`, default the latest complete one): the mart's counters
//! are cumulative per photo date, so summing two dates would double count. The rows of that date
//! are filtered, grouped by the requested dimensions with `GROUPING SETS` (the tables, the chart
//! and the totals in one scan of the date's rows, found through the primary key) and every KPI is
//! computed from the summed counters.

use std::collections::BTreeMap;

use axum::extract::State;
use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::http::envelope::{Envelope, envelope};
use crate::http::json::JsonBytes;
use crate::http::params::{JsonBody, Query, check_list_len, filter_list, parse_date};
use crate::kpi::{pct, ratio, round2};
use crate::state::Shared;

/// A grouping dimension of the dashboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Dimension {
    /// Portfolio family: TEMPRANA, CUOTA_FRACCIONAMIENTO, ALTAS_NUEVAS, OTRAS.
    Cartera,
    /// MOVIL / FIJA (`negocio` is accepted as an alias).
    Servicio,
    /// Campaign period `YYYY-MM`.
    Periodo,
    /// Collection bracket (tramo_gestion).
    Tramo,
    /// Due-day group: GRUPO_1_5, GRUPO_9_13, GRUPO_17_25, DIA_n, SIN_VTO.
    Vencimiento,
    /// Due day of month (0 = unknown).
    DiaVencimiento,
    /// Assigned-debt bracket.
    RangoDeuda,
    /// Campaign (file name without .txt).
    Archivo,
}

pub const DIMENSION_NAMES: &str = "cartera, servicio (or negocio), periodo, tramo, vencimiento, diaVencimiento, rangoDeuda, archivo";

impl Dimension {
    pub fn parse(parameter: &str, v: &str) -> Result<Self, ApiError> {
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

    /// The mart column (a static identifier: never user text).
    pub fn column(self) -> &'static str {
        match self {
            Dimension::Cartera => "cartera",
            Dimension::Servicio => "servicio",
            Dimension::Periodo => "periodo",
            Dimension::Tramo => "tramo",
            Dimension::Vencimiento => "grupo_vencimiento",
            Dimension::DiaVencimiento => "dia_vencimiento",
            Dimension::RangoDeuda => "rango_deuda",
            Dimension::Archivo => "archivo",
        }
    }
}

/// `IconStatus` of the frontend. No thresholds are defined anywhere yet: always `none`.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IconStatus {
    Up,
    Down,
    Neutral,
    Warning,
    Ok,
    Bad,
    None,
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

/// One row of `segmentoData` / `negocioData` (the last row, id `total`, sums every row).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataRow {
    pub id: String,
    pub name: String,
    pub status: IconStatus,
    /// Assigned accounts.
    pub cuentas: i64,
    /// Share of the accounts of all rows (%).
    pub porcentaje_cuentas: f64,
    /// Assigned debt.
    pub deuda_asig: f64,
    /// Share of the assigned debt of all rows (%).
    pub porcentaje_deuda: f64,
    pub porcentaje_deuda_status: IconStatus,
    /// Current debt (latest snapshot on or before the photo date).
    pub deuda_act: f64,
    /// Share of the current debt of all rows (%).
    pub porcentaje_deuda_act: f64,
    pub porcentaje_deuda_act_status: IconStatus,
    /// Managed accounts ÷ accounts (%).
    pub cobertura: f64,
    /// (direct + indirect contact accounts) ÷ accounts (%).
    pub contacto: f64,
    pub contacto_status: IconStatus,
    /// Direct-contact accounts ÷ accounts (%).
    pub cd: f64,
    /// Indirect-contact accounts ÷ accounts (%).
    pub ci: f64,
    /// Managed accounts without contact ÷ accounts (%).
    pub sc: f64,
    /// Paying accounts ÷ accounts (%).
    pub cierre: f64,
    pub cierre_status: IconStatus,
    /// Interactions ÷ managed accounts.
    pub inten: f64,
    pub inten_status: IconStatus,
    pub cd_count: i64,
    pub ci_count: i64,
    pub sc_count: i64,
    /// Accounts without management.
    pub sg_count: i64,
    /// Accounts with a promise to pay.
    pub pdp_count: i64,
    /// Installment accounts: no source defines them yet (open question) — always 0.
    pub frac_count: i64,
    /// PDP + installment accounts (= pdpCount while fracCount has no source).
    pub pdp_frac_count: i64,
    /// Campaign opening date (rows of one campaign only).
    #[serde(serialize_with = "crate::http::ser::date_opt::serialize")]
    #[schema(value_type = Option<String>, format = Date)]
    pub fecha_asignacion: Option<NaiveDate>,
    /// Campaign closing date (rows of one campaign only).
    #[serde(serialize_with = "crate::http::ser::date_opt::serialize")]
    #[schema(value_type = Option<String>, format = Date)]
    pub fecha_cierre: Option<NaiveDate>,
    /// Management day (business days since opening) at the photo date (greatest of the row).
    pub dias_gestion: Option<i64>,
    /// Planned business days of the campaign (rows of one campaign only).
    pub dias_habiles: Option<i64>,
    /// Assigned clients (each client once per campaign).
    pub clientes: i64,
    pub cuentas_gestionadas: i64,
    pub cuentas_gestionables: i64,
    pub cuentas_pagadoras: i64,
    /// Recovered amount up to the photo date.
    pub recupero: f64,
    /// Recovered ÷ assigned debt (%).
    pub pct_recupero: f64,
    /// Interactions (each counted once).
    pub gestiones: i64,
}

/// One point of `integralChartData`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegralChartDataPoint {
    pub name: String,
    pub cobertura: f64,
    pub contacto: f64,
    pub contacto_directo: f64,
    pub contacto_indirecto: f64,
    pub tasa_de_cierre: f64,
    pub intensidad: f64,
}

/// The dashboard answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DashboardData {
    pub segmento_data: Vec<DataRow>,
    pub negocio_data: Vec<DataRow>,
    pub integral_chart_data: Vec<IntegralChartDataPoint>,
    /// The photo date served.
    #[serde(serialize_with = "crate::http::ser::date_opt::serialize")]
    #[schema(value_type = Option<String>, format = Date)]
    pub fecha_corte: Option<NaiveDate>,
}

/// The normalised request: the cache key and the query's parameters.
#[derive(Debug, Clone, Serialize)]
pub struct DashboardQuery {
    #[serde(serialize_with = "crate::http::ser::date_opt::serialize")]
    pub fecha_corte: Option<NaiveDate>,
    pub cartera: Vec<String>,
    pub servicio: Vec<String>,
    pub periodo: Vec<String>,
    pub tramo: Vec<String>,
    pub vencimiento: Vec<i32>,
    pub rango_deuda: Vec<String>,
    #[serde(serialize_with = "crate::http::ser::date_opt::serialize")]
    pub fecha_inicio: Option<NaiveDate>,
    #[serde(serialize_with = "crate::http::ser::date_opt::serialize")]
    pub fecha_fin: Option<NaiveDate>,
    pub segment: Vec<Dimension>,
    pub negocio: Vec<Dimension>,
    pub chart: Vec<Dimension>,
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

fn month(d: NaiveDate) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}

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
        None => (
            vec![Dimension::Cartera, Dimension::Vencimiento],
            vec![Dimension::Servicio],
            vec![Dimension::Cartera],
        ),
        Some(dims) => {
            let mut parsed = Vec::new();
            for d in dims.iter().flat_map(|d| d.split(',')) {
                if d.trim().is_empty() {
                    continue;
                }
                let d = Dimension::parse("dimensions", d)?;
                if !parsed.contains(&d) {
                    parsed.push(d);
                }
            }
            match parsed.as_slice() {
                [] => (
                    vec![Dimension::Cartera, Dimension::Vencimiento],
                    vec![Dimension::Servicio],
                    vec![Dimension::Cartera],
                ),
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
        latest_photo(st).await?
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
                "ACTUAL" => periodo.push(month(first)),
                "ANTERIOR" => periodo.push(month(first - Months::new(1))),
                "ULTIMO_MES" => periodo.push(month(latest.unwrap_or(base))),
                _ => {
                    for k in 0..3 {
                        periodo.push(month(first - Months::new(k)));
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

/// The latest complete photo date: the latest `fecha_foto` before today (Lima) — today's photo
/// is still growing during the day — or the latest one if there is none before today. Every
/// photo date in the mart has its debt snapshot (campaign days stop at the latest snapshot).
pub async fn latest_photo(st: &Shared) -> Result<Option<NaiveDate>, ApiError> {
    let today = chrono::Utc::now()
        .with_timezone(&st.cfg.time_zone)
        .date_naive();
    let bytes = st
        .cached("meta:latest_photo", &today.to_string(), || async {
            let rows = st
                .db
                .query("latest_photo", &st.sql.latest_photo, &[&today])
                .await?;
            let d: Option<NaiveDate> = rows[0].get(0);
            Ok(d.map(|d| d.to_string()))
        })
        .await?;
    let d: Option<String> = serde_json::from_slice(&bytes.0).map_err(ApiError::internal)?;
    Ok(d.and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()))
}

/// Summed counters of one group.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub cuentas: f64,
    pub clientes: f64,
    pub gestionables: f64,
    pub deuda_asig: f64,
    pub deuda_act: f64,
    pub gestionadas: f64,
    pub sg: f64,
    pub cd: f64,
    pub ci: f64,
    pub sc: f64,
    pub pdp: f64,
    pub pagadoras: f64,
    pub recupero: f64,
    pub gestiones: f64,
}

pub const COUNTER_SQL: &str = "sum(cuentas)::float8, sum(clientes)::float8, \
    sum(cuentas_gestionables)::float8, sum(deuda_asig)::float8, sum(deuda_act)::float8, \
    sum(cuentas_gestionadas)::float8, sum(cuentas_sg)::float8, sum(cuentas_cd)::float8, \
    sum(cuentas_ci)::float8, sum(cuentas_sc)::float8, sum(cuentas_pdp)::float8, \
    sum(cuentas_pagadoras)::float8, sum(recupero)::float8, sum(gestiones)::float8";

impl Counters {
    pub fn from_row(r: &tokio_postgres::Row, at: usize) -> Self {
        let g = |i: usize| r.get::<_, Option<f64>>(at + i).unwrap_or(0.0);
        Counters {
            cuentas: g(0),
            clientes: g(1),
            gestionables: g(2),
            deuda_asig: g(3),
            deuda_act: g(4),
            gestionadas: g(5),
            sg: g(6),
            cd: g(7),
            ci: g(8),
            sc: g(9),
            pdp: g(10),
            pagadoras: g(11),
            recupero: g(12),
            gestiones: g(13),
        }
    }
}

struct Group {
    keys: Vec<String>,
    c: Counters,
    dia_gestion: Option<i64>,
}

#[derive(Default)]
struct Campaign {
    apertura: Option<NaiveDate>,
    cierre: Option<NaiveDate>,
    dias_habiles: Option<i64>,
}

fn data_row(
    id: String,
    name: String,
    c: &Counters,
    total: &Counters,
    dia_gestion: Option<i64>,
    campaign: Option<&Campaign>,
) -> DataRow {
    DataRow {
        id,
        name,
        status: IconStatus::None,
        cuentas: c.cuentas as i64,
        porcentaje_cuentas: pct(c.cuentas, total.cuentas),
        deuda_asig: round2(c.deuda_asig),
        porcentaje_deuda: pct(c.deuda_asig, total.deuda_asig),
        porcentaje_deuda_status: IconStatus::None,
        deuda_act: round2(c.deuda_act),
        porcentaje_deuda_act: pct(c.deuda_act, total.deuda_act),
        porcentaje_deuda_act_status: IconStatus::None,
        cobertura: pct(c.gestionadas, c.cuentas),
        contacto: pct(c.cd + c.ci, c.cuentas),
        contacto_status: IconStatus::None,
        cd: pct(c.cd, c.cuentas),
        ci: pct(c.ci, c.cuentas),
        sc: pct(c.sc, c.cuentas),
        cierre: pct(c.pagadoras, c.cuentas),
        cierre_status: IconStatus::None,
        inten: ratio(c.gestiones, c.gestionadas),
        inten_status: IconStatus::None,
        cd_count: c.cd as i64,
        ci_count: c.ci as i64,
        sc_count: c.sc as i64,
        sg_count: c.sg as i64,
        pdp_count: c.pdp as i64,
        frac_count: 0,
        pdp_frac_count: c.pdp as i64,
        fecha_asignacion: campaign.and_then(|k| k.apertura),
        fecha_cierre: campaign.and_then(|k| k.cierre),
        dias_gestion: dia_gestion,
        dias_habiles: campaign.and_then(|k| k.dias_habiles),
        clientes: c.clientes as i64,
        cuentas_gestionadas: c.gestionadas as i64,
        cuentas_gestionables: c.gestionables as i64,
        cuentas_pagadoras: c.pagadoras as i64,
        recupero: round2(c.recupero),
        pct_recupero: pct(c.recupero, c.deuda_asig),
        gestiones: c.gestiones as i64,
    }
}

fn chart_point(name: String, c: &Counters) -> IntegralChartDataPoint {
    IntegralChartDataPoint {
        name,
        cobertura: pct(c.gestionadas, c.cuentas),
        contacto: pct(c.cd + c.ci, c.cuentas),
        contacto_directo: pct(c.cd, c.cuentas),
        contacto_indirecto: pct(c.ci, c.cuentas),
        tasa_de_cierre: pct(c.pagadoras, c.cuentas),
        intensidad: ratio(c.gestiones, c.gestionadas),
    }
}

/// Run the dashboard query for a normalised request.
pub async fn compute(st: &Shared, q: &DashboardQuery) -> Result<DashboardData, ApiError> {
    let empty = DashboardData {
        segmento_data: vec![],
        negocio_data: vec![],
        integral_chart_data: vec![],
        fecha_corte: q.fecha_corte,
    };
    let Some(fecha) = q.fecha_corte else {
        return Ok(empty);
    };
    // The distinct columns of every grouping, and one grouping set per distinct grouping.
    let mut cols: Vec<Dimension> = Vec::new();
    for d in q.segment.iter().chain(&q.negocio).chain(&q.chart) {
        if !cols.contains(d) {
            cols.push(*d);
        }
    }
    let mut sets: Vec<Vec<Dimension>> = Vec::new();
    for s in [&q.segment, &q.negocio, &q.chart] {
        if !s.is_empty() && !sets.contains(s) {
            sets.push(s.clone());
        }
    }
    let sql = st.sql.dashboard(&cols, &sets);
    let rows = st
        .db
        .query(
            "dashboard",
            &sql,
            &[
                &fecha,
                &q.cartera,
                &q.servicio,
                &q.periodo,
                &q.tramo,
                &q.vencimiento,
                &q.rango_deuda,
                &q.fecha_inicio,
                &q.fecha_fin,
            ],
        )
        .await?;
    let n = cols.len();
    let mask_of = |set: &[Dimension]| -> i32 {
        cols.iter()
            .enumerate()
            .filter(|(_, d)| !set.contains(d))
            .map(|(i, _)| 1 << (n - 1 - i))
            .sum()
    };
    let mut by_mask: BTreeMap<i32, Vec<Group>> = BTreeMap::new();
    for r in &rows {
        let mask: i32 = r.get(0);
        let keys: Vec<String> = (0..n)
            .map(|i| r.get::<_, Option<String>>(1 + i).unwrap_or_default())
            .collect();
        by_mask.entry(mask).or_default().push(Group {
            keys,
            c: Counters::from_row(r, 1 + n),
            dia_gestion: r.get::<_, Option<i32>>(1 + n + 14).map(i64::from),
        });
    }
    let full = (1 << n) - 1;
    let Some(total) = by_mask.get(&full).and_then(|g| g.first()) else {
        return Ok(empty);
    };
    if total.c.cuentas == 0.0 && total.c.deuda_asig == 0.0 {
        return Ok(empty);
    }
    let total_c = total.c;
    // Campaign attributes for rows of one campaign.
    let campaigns = if cols.contains(&Dimension::Archivo) {
        let ids: Vec<String> = by_mask
            .values()
            .flatten()
            .filter_map(|g| {
                cols.iter()
                    .position(|d| *d == Dimension::Archivo)
                    .map(|i| g.keys[i].clone())
            })
            .filter(|k| !k.is_empty())
            .collect();
        let rows = st.db.query("campaigns", &st.sql.campaigns, &[&ids]).await?;
        rows.iter()
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    Campaign {
                        apertura: r.get(1),
                        cierre: r.get(2),
                        dias_habiles: r.get::<_, Option<i32>>(3).map(i64::from),
                    },
                )
            })
            .collect::<BTreeMap<_, _>>()
    } else {
        BTreeMap::new()
    };
    let archivo_idx = cols.iter().position(|d| *d == Dimension::Archivo);
    let table = |set: &[Dimension]| -> Vec<DataRow> {
        if set.is_empty() {
            return vec![];
        }
        let idx: Vec<usize> = set
            .iter()
            .map(|d| cols.iter().position(|c| c == d).expect("column"))
            .collect();
        let mut groups: Vec<&Group> = by_mask
            .get(&mask_of(set))
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        groups.sort_by(|a, b| {
            idx.iter()
                .map(|&i| &a.keys[i])
                .cmp(idx.iter().map(|&i| &b.keys[i]))
        });
        let mut out: Vec<DataRow> = groups
            .iter()
            .map(|g| {
                let parts: Vec<&str> = idx.iter().map(|&i| g.keys[i].as_str()).collect();
                let campaign = archivo_idx
                    .filter(|i| idx.contains(i))
                    .and_then(|i| campaigns.get(&g.keys[i]));
                data_row(
                    parts.join("_"),
                    parts.join(" "),
                    &g.c,
                    &total_c,
                    g.dia_gestion,
                    campaign,
                )
            })
            .collect();
        out.push(data_row(
            "total".into(),
            "Total".into(),
            &total_c,
            &total_c,
            total.dia_gestion,
            None,
        ));
        out
    };
    let segmento_data = table(&q.segment);
    let negocio_data = table(&q.negocio);
    let integral_chart_data = {
        let idx: Vec<usize> = q
            .chart
            .iter()
            .map(|d| cols.iter().position(|c| c == d).expect("column"))
            .collect();
        let mut groups: Vec<&Group> = by_mask
            .get(&mask_of(&q.chart))
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        groups.sort_by(|a, b| {
            idx.iter()
                .map(|&i| &a.keys[i])
                .cmp(idx.iter().map(|&i| &b.keys[i]))
        });
        groups
            .iter()
            .map(|g| {
                let parts: Vec<&str> = idx.iter().map(|&i| g.keys[i].as_str()).collect();
                chart_point(parts.join(" "), &g.c)
            })
            .collect()
    };
    Ok(DashboardData {
        segmento_data,
        negocio_data,
        integral_chart_data,
        fecha_corte: Some(fecha),
    })
}

async fn serve(st: &Shared, raw: RawDashboard) -> Result<JsonBytes, ApiError> {
    let q = normalise(st, raw).await?;
    st.cached("dashboard", &q, || compute(st, &q)).await
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

/// A filter option.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FilterOption {
    pub value: String,
    pub label: String,
}

/// `data` of `GET /api/v1/filters`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FilterOptions {
    pub cartera: Vec<FilterOption>,
    pub servicio: Vec<FilterOption>,
    pub periodo: Vec<FilterOption>,
    pub tramo: Vec<FilterOption>,
    pub vencimiento: Vec<FilterOption>,
    pub rango_deuda: Vec<FilterOption>,
    /// The photo date the options were read from.
    #[serde(serialize_with = "crate::http::ser::date_opt::serialize")]
    #[schema(value_type = Option<String>, format = Date)]
    pub fecha_corte: Option<NaiveDate>,
}

fn cartera_label(code: &str) -> String {
    match code {
        "TEMPRANA" => "Temprana".into(),
        "ALTAS_NUEVAS" => "Altas Nuevas".into(),
        "CUOTA_FRACCIONAMIENTO" => "Cuota Fraccionamiento".into(),
        "OTRAS" => "Otras".into(),
        other => other.to_string(),
    }
}

fn servicio_label(code: &str) -> String {
    match code {
        "MOVIL" => "Móvil".into(),
        "FIJA" => "Fija".into(),
        other => other.to_string(),
    }
}

fn opt(value: &str, label: impl Into<String>) -> FilterOption {
    FilterOption {
        value: value.into(),
        label: label.into(),
    }
}

#[utoipa::path(get, path = "/api/v1/filters", tag = "dashboard",
    responses((status = 200, description = "Envelope whose data is FilterOptions", body = Envelope<FilterOptions>)))]
pub async fn filters(State(st): State<Shared>, q: Query) -> Result<JsonBytes, ApiError> {
    q.finish()?;
    let latest = latest_photo(&st).await?;
    st.cached("filters", &latest.map(|d| d.to_string()), || async {
        let mut by_dim: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Some(d) = latest {
            for r in st
                .db
                .query("filter_options", &st.sql.filter_options, &[&d])
                .await?
            {
                by_dim
                    .entry(r.get::<_, String>(0))
                    .or_default()
                    .push(r.get::<_, String>(1));
            }
        }
        let values = |k: &str| by_dim.get(k).cloned().unwrap_or_default();
        let mut cartera = vec![opt("TODAS", "Todas las Carteras")];
        cartera.extend(values("cartera").iter().map(|c| opt(c, cartera_label(c))));
        let mut servicio = vec![opt("TODOS", "Todos los Servicios")];
        servicio.extend(values("servicio").iter().map(|c| opt(c, servicio_label(c))));
        let mut periodo = vec![
            opt("ACTUAL", "Período Actual"),
            opt("ANTERIOR", "Período Anterior"),
            opt("ULTIMO_MES", "Último Mes"),
            opt("ULTIMOS_3_MESES", "Últimos 3 Meses"),
        ];
        periodo.extend(values("periodo").iter().map(|p| opt(p, p.clone())));
        let tramo = values("tramo").iter().map(|t| opt(t, t.clone())).collect();
        let mut days: Vec<i32> = values("dia_vencimiento")
            .iter()
            .filter_map(|d| d.parse().ok())
            .collect();
        days.sort_unstable();
        let vencimiento = days
            .iter()
            .map(|d| {
                let label = if *d == 0 {
                    "Sin vencimiento".to_string()
                } else {
                    format!("Día {d}")
                };
                opt(&d.to_string(), label)
            })
            .collect();
        let rango_deuda = values("rango_deuda")
            .iter()
            .map(|r| opt(r, r.clone()))
            .collect();
        Ok(envelope(
            "Filter options",
            FilterOptions {
                cartera,
                servicio,
                periodo,
                tramo,
                vencimiento,
                rango_deuda,
                fecha_corte: latest,
            },
        ))
    })
    .await
}
