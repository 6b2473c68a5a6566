//! `GET|POST /api/v1/operation`, `/operation/kpis`, `/operation/channels`: the day and options
//! of the request (default the latest day with interactions), answered by
//! [`crate::marts::operation`].

use axum::extract::State;
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::http::json::JsonBytes;
use crate::http::params::{JsonBody, JsonObject, Query, filter_list, parse_date};
use crate::marts::known::Dim;
use crate::marts::latest::Latest;
use crate::marts::operation::{
    ChannelMetric, OperationDayAnalysisData, OperationDayKpi, OperationQuery,
};
use crate::state::Shared;

/// `POST /api/v1/operation` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperationDayRequest {
    /// `YYYY-MM-DD`.
    pub date: String,
    #[serde(default = "yes")]
    pub include_hourly_breakdown: bool,
    #[serde(default = "yes")]
    pub include_queue_details: bool,
    #[serde(default = "yes")]
    pub include_attempt_analysis: bool,
    #[serde(default)]
    pub cartera: Option<Vec<String>>,
}

impl JsonObject for OperationDayRequest {}

fn yes() -> bool {
    true
}

/// The requested day, or the latest day with interactions on or before today (Lima).
async fn resolve_day(st: &Shared, fecha: Option<NaiveDate>) -> Result<Option<NaiveDate>, ApiError> {
    if fecha.is_some() {
        return Ok(fecha);
    }
    st.latest_cached(Latest::OperationDay).await
}

async fn answer(st: &Shared, q: OperationQuery) -> Result<JsonBytes, ApiError> {
    st.cached("operation", &q, || st.marts.operation_day(&q))
        .await
}

#[utoipa::path(get, path = "/api/v1/operation", tag = "dashboard",
    params(
        ("fecha_analisis" = Option<String>, Query, description = "Lima day YYYY-MM-DD (alias fecha); default the latest day with interactions"),
        ("include_hourly" = Option<bool>, Query, description = "default true"),
        ("include_attempts" = Option<bool>, Query, description = "default true"),
        ("include_queues" = Option<bool>, Query, description = "default true"),
        ("cartera" = Option<Vec<String>>, Query, description = "Cartera of the attributed campaign"),
    ),
    responses((status = 200, body = OperationDayAnalysisData), (status = 400, body = ErrorBody)))]
pub async fn get_operation(State(st): State<Shared>, mut q: Query) -> Result<JsonBytes, ApiError> {
    let fecha = q.date(&["fecha_analisis", "fechaAnalisis", "fecha"])?;
    let hourly = q
        .boolean(&["include_hourly", "includeHourly"])?
        .unwrap_or(true);
    let attempts = q
        .boolean(&["include_attempts", "includeAttempts"])?
        .unwrap_or(true);
    let queues = q
        .boolean(&["include_queues", "includeQueues"])?
        .unwrap_or(true);
    let cartera = filter_list("cartera", &q.list(&["cartera"])?, st.cfg.max_list)?;
    q.finish()?;
    super::check_known(&st, &[(Dim::Cartera, "cartera", &cartera)]).await?;
    let fecha = resolve_day(&st, fecha).await?;
    answer(
        &st,
        OperationQuery {
            fecha,
            hourly,
            attempts,
            queues,
            cartera,
        },
    )
    .await
}

#[utoipa::path(post, path = "/api/v1/operation", tag = "dashboard",
    request_body = OperationDayRequest,
    responses((status = 200, body = OperationDayAnalysisData), (status = 400, body = ErrorBody)))]
pub async fn post_operation(
    State(st): State<Shared>,
    q: Query,
    JsonBody(body): JsonBody<OperationDayRequest>,
) -> Result<JsonBytes, ApiError> {
    q.finish()?;
    let fecha = parse_date("date", &body.date)
        .map_err(|_| ApiError::bad("date", "Formato de fecha inválido. Usar YYYY-MM-DD."))?;
    let cartera = filter_list(
        "cartera",
        &body.cartera.unwrap_or_default(),
        st.cfg.max_list,
    )?;
    super::check_known(&st, &[(Dim::Cartera, "cartera", &cartera)]).await?;
    answer(
        &st,
        OperationQuery {
            fecha: Some(fecha),
            hourly: body.include_hourly_breakdown,
            attempts: body.include_attempt_analysis,
            queues: body.include_queue_details,
            cartera,
        },
    )
    .await
}

async fn day_only(st: &Shared, q: Query) -> Result<OperationDayAnalysisData, ApiError> {
    let mut q = q;
    let fecha = q.date(&["fecha_analisis", "fechaAnalisis", "fecha"])?;
    q.finish()?;
    let fecha = resolve_day(st, fecha).await?;
    st.marts
        .operation_day(&OperationQuery {
            fecha,
            hourly: false,
            attempts: false,
            queues: false,
            cartera: vec![],
        })
        .await
}

#[utoipa::path(get, path = "/api/v1/operation/kpis", tag = "dashboard",
    params(("fecha_analisis" = Option<String>, Query, description = "Lima day")),
    responses((status = 200, body = Vec<OperationDayKpi>)))]
pub async fn kpis(
    State(st): State<Shared>,
    q: Query,
) -> Result<axum::Json<Vec<OperationDayKpi>>, ApiError> {
    Ok(axum::Json(day_only(&st, q).await?.kpis))
}

#[utoipa::path(get, path = "/api/v1/operation/channels", tag = "dashboard",
    params(("fecha_analisis" = Option<String>, Query, description = "Lima day")),
    responses((status = 200, body = Vec<ChannelMetric>)))]
pub async fn channels(
    State(st): State<Shared>,
    q: Query,
) -> Result<axum::Json<Vec<ChannelMetric>>, ApiError> {
    Ok(axum::Json(day_only(&st, q).await?.channel_performance))
}
