//! `GET|POST /api/v1/operation`, `/operation/kpis`, `/operation/channels`, over `mart.operacion`
//! (interactions per Lima day, hour, channel, attempt and queue; nothing simulated).

use std::collections::BTreeMap;

use axum::extract::State;
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::http::json::JsonBytes;
use crate::http::params::{JsonBody, Query, filter_list, parse_date};
use crate::marts::kpi::{pct, thousands};
use crate::state::Shared;

/// A KPI card: pre-formatted value.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperationDayKpi {
    pub label: &'static str,
    pub value: String,
}

/// Per channel: `Voicebot` (BOT) or `Call Center` (HUMANO); the last row, `Total`, sums both.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelMetric {
    pub channel: String,
    /// Interactions.
    pub calls: i64,
    pub effective_contacts: i64,
    pub non_effective_contacts: i64,
    /// Interactions with a promise to pay.
    pub pdp: i64,
    /// pdp ÷ effective contacts × 100.
    pub cierre_rate: f64,
}

/// Per Lima hour `HH:00`; the last row, `Total`, sums the day.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HourlyPerformance {
    pub hour: String,
    pub calls: i64,
    pub effective_contacts: i64,
    pub non_effective_contacts: i64,
    pub pdp: i64,
}

/// Per attempt (rank of the interaction for its client that day).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptEffectiveness {
    pub attempt: i32,
    pub calls: i64,
    pub effective_contacts: i64,
    pub pdp: i64,
    /// pdp ÷ effective contacts × 100.
    pub cierre_rate: f64,
}

/// Per dialer queue (campaign_name); the last row, `Total`, sums every queue.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueuePerformance {
    pub queue_name: String,
    pub calls: i64,
    pub effective_contacts: i64,
    pub pdp: i64,
    pub cierre_rate: f64,
}

/// The day's totals (what every breakdown sums to).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationTotals {
    pub calls: i64,
    pub effective_contacts: i64,
    pub non_effective_contacts: i64,
    pub pdp: i64,
    /// effective ÷ calls × 100.
    pub contact_rate: f64,
    pub cierre_rate: f64,
}

/// `OperationDayAnalysisData`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationDayAnalysisData {
    pub kpis: Vec<OperationDayKpi>,
    pub channel_performance: Vec<ChannelMetric>,
    pub hourly_performance: Vec<HourlyPerformance>,
    pub attempt_effectiveness: Vec<AttemptEffectiveness>,
    pub queue_performance: Vec<QueuePerformance>,
    pub totals: OperationTotals,
    /// The Lima day analysed.
    #[serde(serialize_with = "crate::http::ser::date_opt::serialize")]
    #[schema(value_type = Option<String>, format = Date)]
    pub fecha: Option<NaiveDate>,
}

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

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize, Clone)]
struct OperationQuery {
    #[serde(serialize_with = "crate::http::ser::date_opt::serialize")]
    fecha: Option<NaiveDate>,
    hourly: bool,
    attempts: bool,
    queues: bool,
    cartera: Vec<String>,
}

fn channel_label(canal: &str) -> String {
    match canal {
        "BOT" => "Voicebot".into(),
        "HUMANO" => "Call Center".into(),
        other => other.to_string(),
    }
}

#[derive(Default, Clone, Copy)]
struct C {
    calls: i64,
    ce: i64,
    pdp: i64,
}

async fn compute(st: &Shared, q: &OperationQuery) -> Result<OperationDayAnalysisData, ApiError> {
    let mut by_channel: BTreeMap<String, C> = BTreeMap::new();
    let mut by_hour: BTreeMap<i32, C> = BTreeMap::new();
    let mut by_attempt: BTreeMap<i32, C> = BTreeMap::new();
    let mut by_queue: BTreeMap<String, C> = BTreeMap::new();
    let mut total = C::default();
    if let Some(fecha) = q.fecha {
        let rows = st
            .db
            .query(
                "operation",
                &st.marts.sql().operation,
                &[&fecha, &q.cartera],
            )
            .await?;
        for r in &rows {
            let c = C {
                calls: r.get::<_, Option<i64>>(5).unwrap_or(0),
                ce: r.get::<_, Option<i64>>(6).unwrap_or(0),
                pdp: r.get::<_, Option<i64>>(8).unwrap_or(0),
            };
            // GROUPING(canal, hora, intento, cola): 0b0111 canal, 0b1011 hora, …, 0b1111 total.
            match r.get::<_, i32>(0) {
                0b0111 => {
                    by_channel.insert(r.get(1), c);
                }
                0b1011 => {
                    by_hour.insert(r.get(2), c);
                }
                0b1101 => {
                    by_attempt.insert(r.get(3), c);
                }
                0b1110 => {
                    by_queue.insert(r.get(4), c);
                }
                _ => total = c,
            }
        }
    }
    let channel = |name: String, c: &C| ChannelMetric {
        channel: name,
        calls: c.calls,
        effective_contacts: c.ce,
        non_effective_contacts: c.calls - c.ce,
        pdp: c.pdp,
        cierre_rate: pct(c.pdp as f64, c.ce as f64),
    };
    let mut channel_performance: Vec<ChannelMetric> = by_channel
        .iter()
        .map(|(k, c)| channel(channel_label(k), c))
        .collect();
    let hour = |name: String, c: &C| HourlyPerformance {
        hour: name,
        calls: c.calls,
        effective_contacts: c.ce,
        non_effective_contacts: c.calls - c.ce,
        pdp: c.pdp,
    };
    let mut hourly_performance: Vec<HourlyPerformance> = if q.hourly {
        by_hour
            .iter()
            .map(|(h, c)| hour(format!("{h:02}:00"), c))
            .collect()
    } else {
        vec![]
    };
    let attempt_effectiveness: Vec<AttemptEffectiveness> = if q.attempts {
        by_attempt
            .iter()
            .map(|(a, c)| AttemptEffectiveness {
                attempt: *a,
                calls: c.calls,
                effective_contacts: c.ce,
                pdp: c.pdp,
                cierre_rate: pct(c.pdp as f64, c.ce as f64),
            })
            .collect()
    } else {
        vec![]
    };
    let queue = |name: String, c: &C| QueuePerformance {
        queue_name: name,
        calls: c.calls,
        effective_contacts: c.ce,
        pdp: c.pdp,
        cierre_rate: pct(c.pdp as f64, c.ce as f64),
    };
    let mut queue_performance: Vec<QueuePerformance> = if q.queues {
        by_queue.iter().map(|(k, c)| queue(k.clone(), c)).collect()
    } else {
        vec![]
    };
    let has_data = total.calls > 0;
    if has_data {
        channel_performance.push(channel("Total".into(), &total));
        if q.hourly {
            hourly_performance.push(hour("Total".into(), &total));
        }
        if q.queues {
            queue_performance.push(queue("Total".into(), &total));
        }
    }
    let kpis = if has_data {
        vec![
            OperationDayKpi {
                label: "Total Llamadas",
                value: thousands(total.calls),
            },
            OperationDayKpi {
                label: "Contactos Efectivos",
                value: thousands(total.ce),
            },
            OperationDayKpi {
                label: "Tasa de Contacto",
                value: format!("{:.1}%", pct(total.ce as f64, total.calls as f64)),
            },
            OperationDayKpi {
                label: "Compromisos de Pago",
                value: thousands(total.pdp),
            },
            OperationDayKpi {
                label: "Tasa de Cierre",
                value: format!("{:.1}%", pct(total.pdp as f64, total.ce as f64)),
            },
        ]
    } else {
        vec![]
    };
    Ok(OperationDayAnalysisData {
        kpis,
        channel_performance,
        hourly_performance,
        attempt_effectiveness,
        queue_performance,
        totals: OperationTotals {
            calls: total.calls,
            effective_contacts: total.ce,
            non_effective_contacts: total.calls - total.ce,
            pdp: total.pdp,
            contact_rate: pct(total.ce as f64, total.calls as f64),
            cierre_rate: pct(total.pdp as f64, total.ce as f64),
        },
        fecha: q.fecha,
    })
}

/// The requested day, or the latest day with interactions on or before today (Lima).
async fn resolve_day(st: &Shared, fecha: Option<NaiveDate>) -> Result<Option<NaiveDate>, ApiError> {
    if fecha.is_some() {
        return Ok(fecha);
    }
    let today = Utc::now().with_timezone(&st.cfg.time_zone).date_naive();
    let bytes = st
        .cached("meta:latest_operation", &today.to_string(), || async {
            let d: Option<NaiveDate> = st
                .db
                .query(
                    "latest_operation",
                    &st.marts.sql().latest_operation,
                    &[&today],
                )
                .await?[0]
                .get(0);
            Ok(d.map(|d| d.to_string()))
        })
        .await?;
    let d: Option<String> = serde_json::from_slice(&bytes.0).map_err(ApiError::internal)?;
    Ok(d.and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()))
}

async fn answer(st: &Shared, q: OperationQuery) -> Result<JsonBytes, ApiError> {
    st.cached("operation", &q, || compute(st, &q)).await
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
    compute(
        st,
        &OperationQuery {
            fecha,
            hourly: false,
            attempts: false,
            queues: false,
            cartera: vec![],
        },
    )
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
