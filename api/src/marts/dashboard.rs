//! The dashboard mart (`mart.dashboard`): one photo date at a time (`fechaCorte`), because the
//! mart's counters are cumulative per photo date and summing two dates would double count. The
//! rows of that date are filtered, grouped by the requested dimensions with `GROUPING SETS` (the
//! tables, the chart and the totals in one scan of the date's rows, found through the primary
//! key) and every KPI is computed from the summed counters.
//!
//! Here: the statement text, the decoding of its rows, the KPI rows and the answer types.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Marts;
use super::kpi::{pct, ratio, round2};
use crate::error::ApiError;

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

impl Dimension {
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

/// The grouping when a request names no dimension: segmentoData by cartera × due-day group,
/// negocioData by servicio, the chart by cartera.
pub fn default_groupings() -> (Vec<Dimension>, Vec<Dimension>, Vec<Dimension>) {
    (
        vec![Dimension::Cartera, Dimension::Vencimiento],
        vec![Dimension::Servicio],
        vec![Dimension::Cartera],
    )
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

impl DashboardData {
    /// No rows (no photo date, or nothing matches the filters).
    pub fn empty(fecha_corte: Option<NaiveDate>) -> Self {
        DashboardData {
            segmento_data: vec![],
            negocio_data: vec![],
            integral_chart_data: vec![],
            fecha_corte,
        }
    }
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

/// The dashboard statement for `cols` grouped by each of `sets` and in total.
pub fn statement(m: &str, cols: &[Dimension], sets: &[Vec<Dimension>]) -> String {
    let names: Vec<&str> = cols.iter().map(|d| d.column()).collect();
    let select: Vec<String> = names.iter().map(|c| format!("{c}::text")).collect();
    let groups: Vec<String> = sets
        .iter()
        .map(|s| {
            let cs: Vec<&str> = s.iter().map(|d| d.column()).collect();
            format!("({})", cs.join(", "))
        })
        .chain(std::iter::once("()".to_string()))
        .collect();
    format!(
        "SELECT GROUPING({g})::int4, {select}, {COUNTER_SQL}, max(dia_gestion) \
         FROM {m}.dashboard \
         WHERE fecha_foto = $1 \
           AND (cardinality($2::text[]) = 0 OR cartera = ANY($2::text[])) \
           AND (cardinality($3::text[]) = 0 OR servicio = ANY($3::text[])) \
           AND (cardinality($4::text[]) = 0 OR periodo = ANY($4::text[])) \
           AND (cardinality($5::text[]) = 0 OR tramo = ANY($5::text[])) \
           AND (cardinality($6::int4[]) = 0 OR dia_vencimiento = ANY($6::int4[])) \
           AND (cardinality($7::text[]) = 0 OR rango_deuda = ANY($7::text[])) \
           AND (($8::date IS NULL AND $9::date IS NULL) OR archivo IN ( \
                SELECT archivo FROM aux.campana \
                 WHERE fecha_apertura >= coalesce($8::date, '-infinity'::date) \
                   AND fecha_apertura <= coalesce($9::date, 'infinity'::date))) \
         GROUP BY GROUPING SETS ({sets})",
        g = names.join(", "),
        select = select.join(", "),
        sets = groups.join(", "),
    )
}

/// Campaign attributes (opening, closing, business days) of the campaigns shown as rows.
pub const CAMPAIGNS_SQL: &str = "SELECT archivo, fecha_apertura, fecha_cierre, duracion_dias_habiles \
                        FROM aux.campana WHERE archivo = ANY($1::text[])";

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

impl Marts {
    /// Run the dashboard query for a normalised request.
    pub async fn dashboard(&self, q: &DashboardQuery) -> Result<DashboardData, ApiError> {
        let empty = DashboardData::empty(q.fecha_corte);
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
        let sql = self.sql.dashboard(&cols, &sets);
        let rows = self
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
            let rows = self
                .db
                .query("campaigns", &self.sql.campaigns, &[&ids])
                .await?;
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
}
