//! The operation mart (`mart.operacion`: interactions per Lima day, hour, channel, attempt and
//! queue; nothing simulated): one day's breakdowns and totals.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use super::Marts;
use super::kpi::{pct, thousands};
use crate::error::ApiError;

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

/// The normalised request: the day (none: the mart is empty), the breakdowns wanted, the filter.
#[derive(Debug, Serialize, Clone)]
pub struct OperationQuery {
    #[serde(serialize_with = "crate::http::ser::date_opt::serialize")]
    pub fecha: Option<NaiveDate>,
    pub hourly: bool,
    pub attempts: bool,
    pub queues: bool,
    pub cartera: Vec<String>,
}

/// One scan of the day: per channel, hour, attempt, queue, and the day's total.
pub fn statement(m: &str) -> String {
    format!(
        "SELECT GROUPING(canal, hora, intento, cola)::int4, canal, hora, intento, cola, \
                sum(gestiones)::int8, sum(contactos_efectivos)::int8, \
                sum(contactos_no_efectivos)::int8, sum(pdp)::int8, \
                sum(duracion_total)::int8 \
         FROM {m}.operacion \
         WHERE fecha = $1 \
           AND (cardinality($2::text[]) = 0 OR cartera = ANY($2::text[])) \
         GROUP BY GROUPING SETS ((canal), (hora), (intento), (cola), ())"
    )
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

impl Marts {
    /// One day's interactions per channel, hour, attempt and queue, in one scan of the day.
    pub async fn operation_day(
        &self,
        q: &OperationQuery,
    ) -> Result<OperationDayAnalysisData, ApiError> {
        let mut by_channel: BTreeMap<String, C> = BTreeMap::new();
        let mut by_hour: BTreeMap<i32, C> = BTreeMap::new();
        let mut by_attempt: BTreeMap<i32, C> = BTreeMap::new();
        let mut by_queue: BTreeMap<String, C> = BTreeMap::new();
        let mut total = C::default();
        if let Some(fecha) = q.fecha {
            let rows = self
                .db
                .query("operation", &self.sql.operation, &[&fecha, &q.cartera])
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
}
