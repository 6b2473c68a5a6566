//! `GET|POST /api/v1/assignment`, `GET /api/v1/assignment/summary`, over `mart.asignacion`
//! (portfolio per month, cartera and servicio: real clients, never accounts ÷ 1.2).

use std::collections::BTreeMap;

use axum::extract::State;
use chrono::{Datelike, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::http::json::JsonBytes;
use crate::http::params::{JsonBody, Query, filter_list, parse_month};
use crate::marts::dashboard::{DashboardData, DashboardQuery, Dimension};
use crate::marts::kpi::ValueType;
use crate::marts::kpi::{ratio, round2, variacion};
use crate::state::Shared;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentKpi {
    pub label: &'static str,
    pub valor_actual: f64,
    pub valor_anterior: f64,
    /// (actual − anterior) ÷ anterior × 100, 1 decimal; 100 when anterior is 0 and actual > 0.
    pub variacion: f64,
    pub value_type: ValueType,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompositionDataPoint {
    pub name: String,
    /// Assigned debt of the current month.
    pub value: f64,
}

/// Per cartera (the last row, id `total`, sums every row).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetailBreakdownRow {
    pub id: String,
    pub name: String,
    pub clientes_actual: i64,
    pub clientes_anterior: i64,
    pub cuentas_actual: i64,
    pub cuentas_anterior: i64,
    /// Assigned debt.
    pub saldo_actual: f64,
    pub saldo_anterior: f64,
    pub ticket_promedio_actual: f64,
    pub ticket_promedio_anterior: f64,
    /// Current debt (each account's last day of the month).
    pub deuda_actual: f64,
    pub deuda_actual_anterior: f64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentMetadata {
    /// First day of the current month.
    pub fecha_actual: String,
    /// First day of the previous month compared.
    pub fecha_anterior: String,
    pub total_carteras: usize,
    /// When pulso-flow last committed a load or build.
    pub last_refresh: Option<String>,
}

/// `AssignmentAnalysisResponse`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentAnalysisResponse {
    /// `success`.
    pub status: &'static str,
    pub message: String,
    /// The dashboard of the current month's latest photo date (default grouping).
    pub data: DashboardData,
    pub kpis: Vec<AssignmentKpi>,
    pub composition_data: Vec<CompositionDataPoint>,
    pub detail_breakdown: Vec<DetailBreakdownRow>,
    pub metadata: AssignmentMetadata,
    pub success: bool,
    /// First day of the current month (ISO date).
    pub current_period: String,
    /// First day of the previous month compared (ISO date).
    pub previous_period: String,
    /// When the answer was computed (ISO timestamp).
    pub query_time: String,
}

/// `POST /api/v1/assignment` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignmentAnalysisRequest {
    #[serde(default)]
    pub filters: AssignmentFilters,
    /// `YYYY-MM`; default the latest month with data.
    #[serde(default)]
    pub current_period: Option<String>,
    /// `YYYY-MM`; default the month before currentPeriod.
    #[serde(default)]
    pub previous_period: Option<String>,
    #[serde(default = "yes")]
    pub include_detail_breakdown: bool,
    #[serde(default = "yes")]
    pub include_composition: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentFilters {
    #[serde(default)]
    pub cartera: Option<Vec<String>>,
    #[serde(default)]
    pub servicio: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
struct AssignmentQuery {
    actual: String,
    anterior: String,
    cartera: Vec<String>,
    servicio: Vec<String>,
    detail: bool,
    composition: bool,
}

fn month_of(d: NaiveDate) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}

async fn latest_month(st: &Shared) -> Result<Option<String>, ApiError> {
    let today = Utc::now().with_timezone(&st.cfg.time_zone).date_naive();
    let rows = st
        .db
        .query(
            "latest_month",
            &st.marts.sql().latest_month,
            &[&month_of(today)],
        )
        .await?;
    Ok(rows[0].get(0))
}

#[derive(Default, Clone, Copy)]
struct Month {
    cuentas: f64,
    clientes: f64,
    deuda_asig: f64,
    deuda_act: f64,
}

fn add(a: &mut Month, b: &Month) {
    a.cuentas += b.cuentas;
    a.clientes += b.clientes;
    a.deuda_asig += b.deuda_asig;
    a.deuda_act += b.deuda_act;
}

async fn compute(st: &Shared, q: &AssignmentQuery) -> Result<AssignmentAnalysisResponse, ApiError> {
    let months = vec![q.actual.clone(), q.anterior.clone()];
    let rows = st
        .db
        .query(
            "assignment",
            &st.marts.sql().assignment,
            &[&months, &q.cartera, &q.servicio],
        )
        .await?;
    // cartera → (actual, anterior)
    let mut by_cartera: BTreeMap<String, (Month, Month)> = BTreeMap::new();
    for r in &rows {
        let periodo: String = r.get(0);
        let g = |i: usize| r.get::<_, Option<f64>>(i).unwrap_or(0.0);
        let m = Month {
            cuentas: g(2),
            clientes: g(3),
            deuda_asig: g(4),
            deuda_act: g(5),
        };
        let e = by_cartera.entry(r.get(1)).or_default();
        if periodo == q.actual {
            add(&mut e.0, &m);
        }
        if periodo == q.anterior {
            add(&mut e.1, &m);
        }
    }
    let mut total = (Month::default(), Month::default());
    for (a, b) in by_cartera.values() {
        add(&mut total.0, a);
        add(&mut total.1, b);
    }
    let kpi = |label, a: f64, b: f64, value_type| AssignmentKpi {
        label,
        valor_actual: round2(a),
        valor_anterior: round2(b),
        variacion: variacion(round2(a), round2(b)),
        value_type,
    };
    let kpis = vec![
        kpi(
            "Total Clientes",
            total.0.clientes,
            total.1.clientes,
            ValueType::Number,
        ),
        kpi(
            "Total Cuentas",
            total.0.cuentas,
            total.1.cuentas,
            ValueType::Number,
        ),
        kpi(
            "Saldo Total Deuda",
            total.0.deuda_asig,
            total.1.deuda_asig,
            ValueType::Currency,
        ),
        kpi(
            "Ticket Promedio",
            ratio(total.0.deuda_asig, total.0.cuentas.max(1.0)),
            ratio(total.1.deuda_asig, total.1.cuentas.max(1.0)),
            ValueType::Currency,
        ),
    ];
    let mut composition_data: Vec<CompositionDataPoint> = if q.composition {
        by_cartera
            .iter()
            .filter(|(_, (a, _))| a.cuentas > 0.0 || a.deuda_asig > 0.0)
            .map(|(name, (a, _))| CompositionDataPoint {
                name: name.clone(),
                value: round2(a.deuda_asig),
            })
            .collect()
    } else {
        vec![]
    };
    composition_data.sort_by(|a, b| b.value.total_cmp(&a.value).then(a.name.cmp(&b.name)));
    let row = |id: String, name: String, a: &Month, b: &Month| DetailBreakdownRow {
        id,
        name,
        clientes_actual: a.clientes as i64,
        clientes_anterior: b.clientes as i64,
        cuentas_actual: a.cuentas as i64,
        cuentas_anterior: b.cuentas as i64,
        saldo_actual: round2(a.deuda_asig),
        saldo_anterior: round2(b.deuda_asig),
        ticket_promedio_actual: ratio(a.deuda_asig, a.cuentas.max(1.0)),
        ticket_promedio_anterior: ratio(b.deuda_asig, b.cuentas.max(1.0)),
        deuda_actual: round2(a.deuda_act),
        deuda_actual_anterior: round2(b.deuda_act),
    };
    let mut detail_breakdown: Vec<DetailBreakdownRow> = if q.detail {
        by_cartera
            .iter()
            .map(|(name, (a, b))| row(name.to_lowercase(), name.clone(), a, b))
            .collect()
    } else {
        vec![]
    };
    detail_breakdown.sort_by(|a, b| {
        b.saldo_actual
            .total_cmp(&a.saldo_actual)
            .then(a.name.cmp(&b.name))
    });
    if q.detail && !by_cartera.is_empty() {
        detail_breakdown.push(row("total".into(), "Total".into(), &total.0, &total.1));
    }
    // The dashboard at the current month's latest photo date.
    let first = NaiveDate::parse_from_str(&format!("{}-01", q.actual), "%Y-%m-%d")
        .map_err(ApiError::internal)?;
    let last = first + Months::new(1) - chrono::Duration::days(1);
    let photo: Option<NaiveDate> = st
        .db
        .query(
            "latest_photo_in",
            &st.marts.sql().latest_photo_in,
            &[&first, &last],
        )
        .await?[0]
        .get(0);
    let data = match photo {
        Some(p) => {
            let dq = DashboardQuery {
                fecha_corte: Some(p),
                cartera: q.cartera.clone(),
                servicio: q.servicio.clone(),
                periodo: vec![],
                tramo: vec![],
                vencimiento: vec![],
                rango_deuda: vec![],
                fecha_inicio: None,
                fecha_fin: None,
                segment: vec![Dimension::Cartera, Dimension::Vencimiento],
                negocio: vec![Dimension::Servicio],
                chart: vec![Dimension::Cartera],
            };
            st.marts.dashboard(&dq).await?
        }
        None => DashboardData {
            segmento_data: vec![],
            negocio_data: vec![],
            integral_chart_data: vec![],
            fecha_corte: None,
        },
    };
    let last_refresh = pulso_sinks::status::last_successful_commit(&st.db)
        .await?
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let fecha_actual = format!("{}-01", q.actual);
    let fecha_anterior = format!("{}-01", q.anterior);
    Ok(AssignmentAnalysisResponse {
        status: "success",
        message: format!(
            "Assignment analysis generated for {} vs {}",
            q.actual, q.anterior
        ),
        data,
        kpis,
        composition_data,
        metadata: AssignmentMetadata {
            fecha_actual: fecha_actual.clone(),
            fecha_anterior: fecha_anterior.clone(),
            total_carteras: by_cartera.values().filter(|(a, _)| a.cuentas > 0.0).count(),
            last_refresh,
        },
        detail_breakdown,
        success: true,
        current_period: fecha_actual,
        previous_period: fecha_anterior,
        query_time: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    })
}

async fn serve(
    st: &Shared,
    actual: Option<String>,
    anterior: Option<String>,
    cartera: Vec<String>,
    servicio: Vec<String>,
    detail: bool,
    composition: bool,
) -> Result<JsonBytes, ApiError> {
    let max = st.cfg.max_list;
    let cartera = filter_list("cartera", &cartera, max)?;
    let servicio = filter_list("servicio", &servicio, max)?;
    let actual = match actual {
        Some(m) => m,
        None => match latest_month(st).await? {
            Some(m) => m,
            None => month_of(Utc::now().with_timezone(&st.cfg.time_zone).date_naive()),
        },
    };
    let actual_first = parse_month("currentPeriod", &actual)?;
    let anterior = match anterior {
        Some(m) => m,
        None => month_of(actual_first - Months::new(1)),
    };
    let anterior_first = parse_month("previousPeriod", &anterior)?;
    if anterior_first > actual_first {
        return Err(ApiError::invalid(
            "previousPeriod",
            "the previous period must not be after the current one",
        ));
    }
    let q = AssignmentQuery {
        actual,
        anterior,
        cartera,
        servicio,
        detail,
        composition,
    };
    st.cached("assignment", &q, || compute(st, &q)).await
}

#[utoipa::path(get, path = "/api/v1/assignment", tag = "dashboard",
    params(
        ("fecha_actual" = Option<String>, Query, description = "A date of the current month (alias fechaActual); default the latest month with data"),
        ("fecha_anterior" = Option<String>, Query, description = "A date of the month to compare with; default the month before"),
        ("currentPeriod" = Option<String>, Query, description = "YYYY-MM, instead of fecha_actual"),
        ("previousPeriod" = Option<String>, Query, description = "YYYY-MM, instead of fecha_anterior"),
        ("cartera" = Option<Vec<String>>, Query, description = "Cartera filter"),
        ("servicio" = Option<Vec<String>>, Query, description = "Servicio filter"),
    ),
    responses(
        (status = 200, body = AssignmentAnalysisResponse),
        (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get_assignment(State(st): State<Shared>, mut q: Query) -> Result<JsonBytes, ApiError> {
    let fecha_actual = q.date(&["fecha_actual", "fechaActual"])?;
    let fecha_anterior = q.date(&["fecha_anterior", "fechaAnterior"])?;
    let current = q.one(&["currentPeriod", "current_period"])?;
    let previous = q.one(&["previousPeriod", "previous_period"])?;
    let cartera = q.list(&["cartera"])?;
    let servicio = q.list(&["servicio"])?;
    q.finish()?;
    let actual = current.or(fecha_actual.map(month_of));
    let anterior = previous.or(fecha_anterior.map(month_of));
    serve(&st, actual, anterior, cartera, servicio, true, true).await
}

#[utoipa::path(post, path = "/api/v1/assignment", tag = "dashboard",
    request_body = AssignmentAnalysisRequest,
    responses(
        (status = 200, body = AssignmentAnalysisResponse),
        (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_assignment(
    State(st): State<Shared>,
    q: Query,
    JsonBody(body): JsonBody<AssignmentAnalysisRequest>,
) -> Result<JsonBytes, ApiError> {
    q.finish()?;
    serve(
        &st,
        body.current_period,
        body.previous_period,
        body.filters.cartera.unwrap_or_default(),
        body.filters.servicio.unwrap_or_default(),
        body.include_detail_breakdown,
        body.include_composition,
    )
    .await
}

/// `GET /api/v1/assignment/summary`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentSummary {
    /// The month summarised (YYYY-MM-01).
    pub fecha_corte: String,
    pub total_cuentas: i64,
    pub total_clientes: i64,
    pub saldo_total: f64,
    pub ticket_promedio: f64,
    pub total_carteras: usize,
    pub timestamp: String,
}

#[utoipa::path(get, path = "/api/v1/assignment/summary", tag = "dashboard",
    params(("fecha_corte" = Option<String>, Query, description = "A date of the month; default the latest month with data")),
    responses((status = 200, body = AssignmentSummary), (status = 400, body = ErrorBody)))]
pub async fn summary(State(st): State<Shared>, mut q: Query) -> Result<JsonBytes, ApiError> {
    let fecha = q.date(&["fecha_corte", "fechaCorte"])?;
    q.finish()?;
    let month = match fecha {
        Some(d) => month_of(d),
        None => match latest_month(&st).await? {
            Some(m) => m,
            None => month_of(Utc::now().with_timezone(&st.cfg.time_zone).date_naive()),
        },
    };
    st.cached("assignment_summary", &month, || async {
        let months = vec![month.clone()];
        let empty: Vec<String> = vec![];
        let rows = st
            .db
            .query(
                "assignment",
                &st.marts.sql().assignment,
                &[&months, &empty, &empty],
            )
            .await?;
        let mut t = Month::default();
        let mut carteras = 0;
        for r in &rows {
            let g = |i: usize| r.get::<_, Option<f64>>(i).unwrap_or(0.0);
            if g(2) > 0.0 {
                carteras += 1;
            }
            add(
                &mut t,
                &Month {
                    cuentas: g(2),
                    clientes: g(3),
                    deuda_asig: g(4),
                    deuda_act: g(5),
                },
            );
        }
        Ok(AssignmentSummary {
            fecha_corte: format!("{month}-01"),
            total_cuentas: t.cuentas as i64,
            total_clientes: t.clientes as i64,
            saldo_total: round2(t.deuda_asig),
            ticket_promedio: ratio(t.deuda_asig, t.cuentas.max(1.0)),
            total_carteras: carteras,
            timestamp: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })
    })
    .await
}
