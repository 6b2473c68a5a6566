//! The assignment mart (`mart.asignacion`: the portfolio per month, cartera and servicio — real
//! clients, never accounts ÷ 1.2): two months compared per cartera, and one month's summary.

use std::collections::BTreeMap;

use chrono::{Months, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::Marts;
use super::dashboard::{DashboardData, DashboardQuery, default_groupings};
use super::kpi::{ValueType, ratio, round2, variacion};
use crate::error::ApiError;

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

/// The normalised request: the cache key and the query's parameters (months as `YYYY-MM`).
#[derive(Debug, Serialize)]
pub struct AssignmentQuery {
    pub actual: String,
    pub anterior: String,
    pub cartera: Vec<String>,
    pub servicio: Vec<String>,
    pub detail: bool,
    pub composition: bool,
}

/// Accounts, clients and debts per month and cartera, for the given months (`$1`).
pub fn statement(m: &str) -> String {
    format!(
        "SELECT periodo, cartera, sum(cuentas)::float8, sum(clientes)::float8, \
                sum(deuda_asig)::float8, sum(deuda_act)::float8 \
         FROM {m}.asignacion \
         WHERE periodo = ANY($1::text[]) \
           AND (cardinality($2::text[]) = 0 OR cartera = ANY($2::text[])) \
           AND (cardinality($3::text[]) = 0 OR servicio = ANY($3::text[])) \
         GROUP BY periodo, cartera ORDER BY periodo, cartera"
    )
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

impl Marts {
    /// The current month against the previous one, per cartera, with the dashboard of the
    /// current month's latest photo date (default grouping).
    pub async fn assignment(
        &self,
        q: &AssignmentQuery,
    ) -> Result<AssignmentAnalysisResponse, ApiError> {
        let months = vec![q.actual.clone(), q.anterior.clone()];
        let rows = self
            .db
            .query(
                "assignment",
                &self.sql.assignment,
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
        // A cartera with no accounts in either month is only the month-after placeholder of
        // `mart.asignacion` (a zero row for M + 1): not a row of the table (compositionData drops
        // them too).
        let mut detail_breakdown: Vec<DetailBreakdownRow> = if q.detail {
            by_cartera
                .iter()
                .filter(|(_, (a, b))| a.cuentas > 0.0 || b.cuentas > 0.0)
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
        if q.detail && !detail_breakdown.is_empty() {
            detail_breakdown.push(row("total".into(), "Total".into(), &total.0, &total.1));
        }
        // The dashboard at the current month's latest photo date.
        let first = NaiveDate::parse_from_str(&format!("{}-01", q.actual), "%Y-%m-%d")
            .map_err(ApiError::internal)?;
        let last = first + Months::new(1) - chrono::Duration::days(1);
        let photo = self.latest_photo_between(first, last).await?;
        let data = match photo {
            Some(p) => {
                let (segment, negocio, chart) = default_groupings();
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
                    segment,
                    negocio,
                    chart,
                };
                self.dashboard(&dq).await?
            }
            None => DashboardData::empty(None),
        };
        let last_refresh = pulso_sinks::status::last_successful_commit(&self.db)
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

    /// One month's totals over every cartera.
    pub async fn assignment_summary(&self, month: &str) -> Result<AssignmentSummary, ApiError> {
        let months = vec![month.to_string()];
        let empty: Vec<String> = vec![];
        let rows = self
            .db
            .query(
                "assignment",
                &self.sql.assignment,
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
    }
}
