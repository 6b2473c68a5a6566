//! The productivity mart: `mart.productividad` (human interactions per agent and day) and, for the
//! hourly trend, the HUMANO rows of `mart.operacion`.
//!
//! Recovery credited to agents has no agreed attribution rule yet (docs/kpis.md): `recupero` and
//! `amountRecovered` are 0 and `metadata.unavailable` says so — nothing is invented (W-34). The
//! agent `closingRate` has no agreed definition either (docs/kpis.md, "not served"): it is 0 and
//! listed there too, never another figure under its name. `commitmentConversion` is PDP ÷
//! effective contacts (docs/kpis.md: tasa_conversion).

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::Marts;
use super::kpi::{pct, round2};
use crate::error::ApiError;

/// A point of `dailyTrend` (day set, hour null) or `hourlyTrend` (hour set, day null).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductivityTrendPoint {
    /// 1 + days since fecha_inicio.
    pub day: Option<i32>,
    /// `HH:00` (Lima).
    pub hour: Option<String>,
    /// Interactions.
    pub llamadas: i64,
    /// Interactions with a promise to pay.
    pub compromisos: i64,
    /// Not available yet (attribution rule open): 0 on daily points, null on hourly ones.
    pub recupero: Option<f64>,
}

/// An agent in the ranking.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentRankingRow {
    /// The agent's e-mail (the mart's key).
    pub id: String,
    pub rank: i64,
    pub agent_name: String,
    pub dni: String,
    pub calls: i64,
    /// Effective contacts.
    pub direct_contacts: i64,
    /// Promises to pay.
    pub commitments: i64,
    /// Not available yet (attribution rule open): 0.
    pub amount_recovered: f64,
    /// Promised amount.
    pub amount_promised: f64,
    /// No agreed definition yet (listed in `metadata.unavailable`): 0.
    pub closing_rate: f64,
    /// commitments ÷ directContacts × 100 (promises per effective contact).
    pub commitment_conversion: f64,
    /// Quartile of the rank (1 = best quarter).
    pub quartile: i32,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DailyCell {
    pub gestiones: Option<i64>,
    pub contactos_efectivos: Option<i64>,
    pub compromisos: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentHeatmapRow {
    pub id: String,
    pub dni: String,
    pub agent_name: String,
    /// Keyed by day number (1 + days since fecha_inicio), counts of that day.
    pub daily_performance: BTreeMap<String, DailyCell>,
}

/// What the ranking sums to.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductivityTotals {
    pub agents: usize,
    pub calls: i64,
    pub direct_contacts: i64,
    pub commitments: i64,
    pub amount_promised: f64,
    /// No agreed definition yet: 0.
    pub closing_rate: f64,
    /// commitments ÷ directContacts × 100.
    pub commitment_conversion: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Period {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductivityMetadata {
    pub period: Period,
    pub filters: serde_json::Value,
    pub generated_at: String,
    pub execution_time_seconds: f64,
    pub total_agents: usize,
    pub query_count: u32,
    /// `computed` (the answer was computed for this request or its first twin); cached answers
    /// are byte-identical copies of it.
    pub cache_status: &'static str,
    /// The metric ranking and quartiles are by.
    pub rank_by: &'static str,
    /// Fields without a data source yet.
    pub unavailable: Vec<&'static str>,
}

/// `ProductivityResponse`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductivityResponse {
    pub daily_trend: Vec<ProductivityTrendPoint>,
    /// Empty when an agent is selected (hours are not kept per agent).
    pub hourly_trend: Vec<ProductivityTrendPoint>,
    pub agent_ranking: Vec<AgentRankingRow>,
    pub agent_heatmap: Vec<AgentHeatmapRow>,
    pub totals: ProductivityTotals,
    pub metadata: ProductivityMetadata,
}

/// An agent of the selector.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AvailableAgent {
    pub id: String,
    pub nombre: String,
    pub dni: String,
    /// `<nombre> (<dni>)`.
    pub label: String,
    /// First day with interactions in the range.
    pub fecha_inicio: String,
    pub fecha_fin: String,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum RankBy {
    Calls,
    DirectContacts,
    Commitments,
    CommitmentConversion,
}

impl RankBy {
    /// The metric's name in answers (`metadata.rankBy`).
    pub fn as_str(self) -> &'static str {
        match self {
            RankBy::Calls => "calls",
            RankBy::DirectContacts => "directContacts",
            RankBy::Commitments => "commitments",
            RankBy::CommitmentConversion => "commitmentConversion",
        }
    }
}

/// The normalised request: the cache key and the query's parameters.
#[derive(Debug, Serialize, Clone)]
pub struct ProductivityQuery {
    #[serde(serialize_with = "crate::http::ser::date::serialize")]
    pub fecha_inicio: NaiveDate,
    #[serde(serialize_with = "crate::http::ser::date::serialize")]
    pub fecha_fin: NaiveDate,
    pub agente: Option<String>,
    pub cartera: Vec<String>,
    pub rank_by: RankBy,
}

/// Per agent and day over a date range (optionally one agent).
pub fn statement(m: &str) -> String {
    format!(
        "SELECT fecha, correo_agente, min(nombre_agente), min(documento_agente), \
                sum(gestiones)::int8, sum(contactos_efectivos)::int8, sum(pdp)::int8, \
                sum(monto_compromiso)::float8 \
         FROM {m}.productividad \
         WHERE fecha BETWEEN $1 AND $2 \
           AND ($3::text IS NULL OR correo_agente = $3 OR nombre_agente = $3) \
           AND (cardinality($4::text[]) = 0 OR cartera = ANY($4::text[])) \
         GROUP BY fecha, correo_agente ORDER BY fecha, correo_agente"
    )
}

/// The hourly trend: human (HUMANO) interactions of `mart.operacion` per hour over a date range.
pub fn hourly_statement(m: &str) -> String {
    format!(
        "SELECT hora, sum(gestiones)::int8, sum(pdp)::int8 \
         FROM {m}.operacion \
         WHERE fecha BETWEEN $1 AND $2 AND canal = 'HUMANO' \
           AND (cardinality($3::text[]) = 0 OR cartera = ANY($3::text[])) \
         GROUP BY hora ORDER BY hora"
    )
}

/// The agents with interactions over a date range, with their first and last day.
pub fn agents_statement(m: &str) -> String {
    format!(
        "SELECT correo_agente, min(nombre_agente), min(documento_agente), min(fecha), \
                max(fecha) \
         FROM {m}.productividad WHERE fecha BETWEEN $1 AND $2 \
         GROUP BY correo_agente ORDER BY 2, 1"
    )
}

#[derive(Default, Clone)]
struct Agent {
    name: String,
    dni: String,
    calls: i64,
    ce: i64,
    pdp: i64,
    promised: f64,
    days: BTreeMap<i32, (i64, i64, i64)>,
}

impl Marts {
    /// Ranking, heatmap and trends of the agents over the query's days.
    pub async fn productivity(
        &self,
        q: &ProductivityQuery,
    ) -> Result<ProductivityResponse, ApiError> {
        let t0 = Instant::now();
        let hourly_fut = async {
            if q.agente.is_some() {
                return Ok(vec![]);
            }
            self.db
                .query(
                    "productivity_hourly",
                    &self.sql.productivity_hourly,
                    &[&q.fecha_inicio, &q.fecha_fin, &q.cartera],
                )
                .await
        };
        let rows_fut = async {
            self.db
                .query(
                    "productivity",
                    &self.sql.productivity,
                    &[&q.fecha_inicio, &q.fecha_fin, &q.agente, &q.cartera],
                )
                .await
        };
        let (hourly_rows, rows) = tokio::try_join!(hourly_fut, rows_fut)?;
        let mut agents: BTreeMap<String, Agent> = BTreeMap::new();
        let mut daily: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
        for r in &rows {
            let fecha: NaiveDate = r.get(0);
            let day = (fecha - q.fecha_inicio).num_days() as i32 + 1;
            let calls = r.get::<_, Option<i64>>(4).unwrap_or(0);
            let ce = r.get::<_, Option<i64>>(5).unwrap_or(0);
            let pdp = r.get::<_, Option<i64>>(6).unwrap_or(0);
            let a = agents.entry(r.get(1)).or_default();
            a.name = r.get::<_, Option<String>>(2).unwrap_or_default();
            a.dni = r.get::<_, Option<String>>(3).unwrap_or_default();
            a.calls += calls;
            a.ce += ce;
            a.pdp += pdp;
            a.promised += r.get::<_, Option<f64>>(7).unwrap_or(0.0);
            let cell = a.days.entry(day).or_default();
            cell.0 += calls;
            cell.1 += ce;
            cell.2 += pdp;
            let d = daily.entry(day).or_default();
            d.0 += calls;
            d.1 += pdp;
        }
        let metric = |a: &Agent| -> f64 {
            match q.rank_by {
                RankBy::Calls => a.calls as f64,
                RankBy::DirectContacts => a.ce as f64,
                RankBy::Commitments => a.pdp as f64,
                RankBy::CommitmentConversion => pct(a.pdp as f64, a.ce as f64),
            }
        };
        let mut ordered: Vec<(&String, &Agent)> = agents.iter().collect();
        ordered.sort_by(|a, b| {
            metric(b.1)
                .total_cmp(&metric(a.1))
                .then_with(|| a.1.name.cmp(&b.1.name))
                .then_with(|| a.0.cmp(b.0))
        });
        let n = ordered.len();
        let agent_ranking: Vec<AgentRankingRow> = ordered
            .iter()
            .enumerate()
            .map(|(i, (id, a))| AgentRankingRow {
                id: (*id).clone(),
                rank: i as i64 + 1,
                agent_name: a.name.clone(),
                dni: a.dni.clone(),
                calls: a.calls,
                direct_contacts: a.ce,
                commitments: a.pdp,
                amount_recovered: 0.0,
                amount_promised: round2(a.promised),
                closing_rate: 0.0,
                commitment_conversion: pct(a.pdp as f64, a.ce as f64),
                quartile: (1 + (i * 4) / n.max(1)).min(4) as i32,
            })
            .collect();
        let agent_heatmap: Vec<AgentHeatmapRow> = ordered
            .iter()
            .map(|(id, a)| AgentHeatmapRow {
                id: (*id).clone(),
                dni: a.dni.clone(),
                agent_name: a.name.clone(),
                daily_performance: a
                    .days
                    .iter()
                    .map(|(d, (g, ce, pdp))| {
                        (
                            d.to_string(),
                            DailyCell {
                                gestiones: Some(*g),
                                contactos_efectivos: Some(*ce),
                                compromisos: Some(*pdp),
                            },
                        )
                    })
                    .collect(),
            })
            .collect();
        let daily_trend = daily
            .iter()
            .map(|(d, (calls, pdp))| ProductivityTrendPoint {
                day: Some(*d),
                hour: None,
                llamadas: *calls,
                compromisos: *pdp,
                recupero: Some(0.0),
            })
            .collect();
        let hourly_trend = hourly_rows
            .iter()
            .map(|r| ProductivityTrendPoint {
                day: None,
                hour: Some(format!("{:02}:00", r.get::<_, i32>(0))),
                llamadas: r.get::<_, Option<i64>>(1).unwrap_or(0),
                compromisos: r.get::<_, Option<i64>>(2).unwrap_or(0),
                recupero: None,
            })
            .collect();
        let (calls, ce, pdp, promised) = agents.values().fold((0, 0, 0, 0.0), |t, a| {
            (t.0 + a.calls, t.1 + a.ce, t.2 + a.pdp, t.3 + a.promised)
        });
        Ok(ProductivityResponse {
            daily_trend,
            hourly_trend,
            agent_ranking,
            agent_heatmap,
            totals: ProductivityTotals {
                agents: n,
                calls,
                direct_contacts: ce,
                commitments: pdp,
                amount_promised: round2(promised),
                closing_rate: 0.0,
                commitment_conversion: pct(pdp as f64, ce as f64),
            },
            metadata: ProductivityMetadata {
                period: Period {
                    start: q.fecha_inicio.to_string(),
                    end: q.fecha_fin.to_string(),
                },
                filters: serde_json::json!({ "agente": q.agente, "cartera": q.cartera }),
                generated_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                execution_time_seconds: t0.elapsed().as_secs_f64(),
                total_agents: n,
                query_count: if q.agente.is_some() { 1 } else { 2 },
                cache_status: "computed",
                rank_by: q.rank_by.as_str(),
                unavailable: vec!["recupero", "amountRecovered", "closingRate"],
            },
        })
    }

    /// The agents with interactions from `from` to `to`, by name.
    pub async fn agents(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<AvailableAgent>, ApiError> {
        let rows = self
            .db
            .query("agents", &self.sql.agents, &[&from, &to])
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let nombre: String = r.get::<_, Option<String>>(1).unwrap_or_default();
                let dni: String = r.get::<_, Option<String>>(2).unwrap_or_default();
                AvailableAgent {
                    id: r.get(0),
                    label: format!("{nombre} ({dni})"),
                    nombre,
                    dni,
                    fecha_inicio: r.get::<_, NaiveDate>(3).to_string(),
                    fecha_fin: r.get::<_, NaiveDate>(4).to_string(),
                }
            })
            .collect())
    }
}
