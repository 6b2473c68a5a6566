//! The filter options of the dashboard: the distinct values of `mart.dashboard` at one photo
//! date (and the months of `mart.asignacion`), with Pulso-Back's codes and labels.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Marts;
use crate::error::ApiError;

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

/// The distinct values per filter of one photo date, in one scan of it (primary key), plus every
/// month with an assignment.
pub fn statement(m: &str) -> String {
    format!(
        "SELECT k, v FROM (SELECT cartera, servicio, periodo, tramo, \
                dia_vencimiento::text AS dv, rango_deuda \
           FROM {m}.dashboard WHERE fecha_foto = $1) d \
         CROSS JOIN LATERAL (VALUES ('cartera', cartera), ('servicio', servicio), \
                ('periodo', periodo), ('tramo', tramo), ('dia_vencimiento', dv), \
                ('rango_deuda', rango_deuda)) AS x(k, v) \
         GROUP BY k, v \
         UNION SELECT 'periodo', periodo FROM {m}.asignacion GROUP BY periodo \
         ORDER BY 1, 2"
    )
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

impl Marts {
    /// The options of every filter at the photo date `latest` (only the fixed codes without one).
    pub async fn filter_options(
        &self,
        latest: Option<NaiveDate>,
    ) -> Result<FilterOptions, ApiError> {
        let mut by_dim: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Some(d) = latest {
            for r in self
                .db
                .query("filter_options", &self.sql.filter_options, &[&d])
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
        Ok(FilterOptions {
            cartera,
            servicio,
            periodo,
            tramo,
            vencimiento,
            rango_deuda,
            fecha_corte: latest,
        })
    }
}
