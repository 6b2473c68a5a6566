//! `GET|POST /api/v1/assignment`, `GET /api/v1/assignment/summary`: the months and filters of
//! the request validated into an [`AssignmentQuery`], answered by [`crate::marts::assignment`].

use axum::extract::State;
use chrono::Months;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::http::json::JsonBytes;
use crate::http::params::{JsonBody, JsonObject, Query, filter_list, parse_month};
use crate::marts::assignment::{AssignmentAnalysisResponse, AssignmentQuery, AssignmentSummary};
use crate::marts::known::Dim;
use crate::marts::latest::Latest;
use crate::marts::month_of;
use crate::state::Shared;

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

impl JsonObject for AssignmentAnalysisRequest {
    const OBJECT_FIELDS: &'static [&'static str] = &["filters"];
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

/// The latest month with data, or else the current month.
async fn default_month(st: &Shared) -> Result<String, ApiError> {
    let today = st.marts.today();
    let latest = st.marts.latest(Latest::AssignmentMonth, today).await?;
    Ok(month_of(latest.unwrap_or(today)))
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
    super::check_known(
        st,
        &[
            (Dim::Cartera, "cartera", &cartera),
            (Dim::Servicio, "servicio", &servicio),
        ],
    )
    .await?;
    let actual = match actual {
        Some(m) => m,
        None => default_month(st).await?,
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
    st.cached("assignment", &q, || st.marts.assignment(&q))
        .await
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

#[utoipa::path(get, path = "/api/v1/assignment/summary", tag = "dashboard",
    params(("fecha_corte" = Option<String>, Query, description = "A date of the month; default the latest month with data")),
    responses((status = 200, body = AssignmentSummary), (status = 400, body = ErrorBody)))]
pub async fn summary(State(st): State<Shared>, mut q: Query) -> Result<JsonBytes, ApiError> {
    let fecha = q.date(&["fecha_corte", "fechaCorte"])?;
    q.finish()?;
    let month = match fecha {
        Some(d) => month_of(d),
        None => default_month(&st).await?,
    };
    st.cached("assignment_summary", &month, || {
        st.marts.assignment_summary(&month)
    })
    .await
}
