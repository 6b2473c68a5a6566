//! The evolution mart (`mart.evolucion`: the dashboard's counters per campaign and management
//! day). One series per value of the comparison dimension (default cartera) plus a `Total` series;
//! each point sums the campaigns' counters at that management day (`dia_gestion`, business days
//! since opening) and computes the metric from the sums.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use super::Marts;
use super::kpi::{ValueType, pct, ratio, round2};
use crate::error::ApiError;

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
    /// The metric of a catalogue name (`cobertura`, `contacto`, …).
    pub fn from_name(name: &str) -> Option<Metric> {
        METRICS
            .iter()
            .find(|(_, n, _, _)| *n == name)
            .map(|(m, ..)| *m)
    }

    /// Every catalogue name, in catalogue order.
    pub fn names() -> Vec<&'static str> {
        METRICS.iter().map(|(_, n, _, _)| *n).collect()
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

#[derive(Debug, Serialize)]
pub struct EvolutionQuery {
    #[serde(serialize_with = "crate::http::ser::date::serialize")]
    pub fecha_inicio: NaiveDate,
    #[serde(serialize_with = "crate::http::ser::date::serialize")]
    pub fecha_fin: NaiveDate,
    pub cartera: Vec<String>,
    pub servicio: Vec<String>,
    pub periodo: Vec<String>,
    pub comparison: Comparison,
    pub metrics: Vec<Metric>,
}

/// The series statement: the series key (`$6` picks the column), summed per management day, and
/// the Total series (GROUPING = 1).
pub fn statement(m: &str) -> String {
    format!(
        "SELECT serie, dia_gestion, \
                sum(cuentas)::float8, sum(cuentas_gestionadas)::float8, \
                sum(cuentas_cd)::float8, sum(cuentas_ci)::float8, sum(cuentas_sc)::float8, \
                sum(cuentas_pdp)::float8, sum(cuentas_pagadoras)::float8, \
                sum(recupero)::float8, sum(gestiones)::float8, sum(gestiones_ce)::float8, \
                sum(gestiones_pdp)::float8, sum(deuda_asig)::float8, \
                GROUPING(serie)::int4 \
         FROM (SELECT CASE $6::text WHEN 'servicio' THEN servicio \
                                    WHEN 'periodo' THEN periodo \
                                    WHEN 'archivo' THEN archivo \
                                    ELSE cartera END AS serie, * \
                 FROM {m}.evolucion \
                WHERE fecha_foto BETWEEN $1 AND $2 \
                  AND (cardinality($3::text[]) = 0 OR cartera = ANY($3::text[])) \
                  AND (cardinality($4::text[]) = 0 OR servicio = ANY($4::text[])) \
                  AND (cardinality($5::text[]) = 0 OR periodo = ANY($5::text[]))) e \
         GROUP BY GROUPING SETS ((serie, dia_gestion), (dia_gestion)) \
         ORDER BY 15, 1, 2"
    )
}

/// Distinct carteras by a loose index scan over evolucion_cartera (cartera, dia_gestion).
pub fn carteras_statement(m: &str) -> String {
    format!(
        "WITH RECURSIVE c AS ( \
           (SELECT cartera FROM {m}.evolucion ORDER BY cartera LIMIT 1) \
           UNION ALL \
           SELECT (SELECT e.cartera FROM {m}.evolucion e WHERE e.cartera > c.cartera \
                   ORDER BY e.cartera LIMIT 1) FROM c WHERE c.cartera IS NOT NULL) \
         SELECT cartera FROM c WHERE cartera IS NOT NULL"
    )
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

impl Marts {
    /// The series of every requested metric.
    pub async fn evolution(&self, q: &EvolutionQuery) -> Result<Vec<EvolutionMetric>, ApiError> {
        let rows = self
            .db
            .query(
                "evolution",
                &self.sql.evolution,
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

    /// The carteras with evolution data, sorted.
    pub async fn evolution_carteras(&self) -> Result<Vec<String>, ApiError> {
        let rows = self.db.query("carteras", &self.sql.carteras, &[]).await?;
        Ok(rows
            .iter()
            .map(|r| r.get::<_, String>(0))
            .filter(|c| c != "Total")
            .collect())
    }
}

/// An entry of the metric catalogue.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricInfo {
    pub metric: &'static str,
    pub description: &'static str,
    pub value_type: ValueType,
}

/// The metric catalogue (`GET /api/v1/evolution/metrics`).
pub fn catalogue() -> Vec<MetricInfo> {
    METRICS
        .iter()
        .map(|(_, metric, description, value_type)| MetricInfo {
            metric,
            description,
            value_type: *value_type,
        })
        .collect()
}
