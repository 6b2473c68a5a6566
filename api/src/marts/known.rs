//! The values that exist in the marts, per dimension: what a filter value must be one of.
//!
//! A filter value that exists nowhere in the marts can only select nothing; refusing it (422)
//! before a cache key is made keeps the cache's key space to combinations of real values, so
//! invented values cannot fill the shared Redis (issue 14, item 2). The sets are read in one
//! round trip — one scan of each mart, several groupings per scan (`GROUPING SETS`) — and kept
//! per data version ([`Marts::known_values`]): a commit that adds a cartera makes it valid for
//! the next request.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::Marts;
use crate::error::ApiError;
use crate::http::params::safe_text;

/// A dimension whose values are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dim {
    Cartera,
    Servicio,
    Tramo,
    RangoDeuda,
    Archivo,
    /// An agent's e-mail or exact name (`mart.productividad`).
    Agente,
}

impl Dim {
    fn key(self) -> &'static str {
        match self {
            Dim::Cartera => "cartera",
            Dim::Servicio => "servicio",
            Dim::Tramo => "tramo",
            Dim::RangoDeuda => "rango_deuda",
            Dim::Archivo => "archivo",
            Dim::Agente => "agente",
        }
    }

    fn from_key(k: &str) -> Option<Dim> {
        [
            Dim::Cartera,
            Dim::Servicio,
            Dim::Tramo,
            Dim::RangoDeuda,
            Dim::Archivo,
            Dim::Agente,
        ]
        .into_iter()
        .find(|d| d.key() == k)
    }
}

/// The distinct values of every checked dimension over all the marts.
#[derive(Debug, Default)]
pub struct KnownValues {
    values: BTreeMap<Dim, BTreeSet<String>>,
}

impl KnownValues {
    /// Whether `v` exists as a value of `dim`.
    pub fn contains(&self, dim: Dim, v: &str) -> bool {
        self.values.get(&dim).is_some_and(|s| s.contains(v))
    }

    /// 422 naming `parameter` for the first of `values` that does not exist as a `dim`.
    pub fn check(&self, dim: Dim, parameter: &str, values: &[String]) -> Result<(), ApiError> {
        match values.iter().find(|v| !self.contains(dim, v)) {
            None => Ok(()),
            Some(v) => Err(ApiError::invalid(
                parameter,
                format!(
                    "{parameter}: {:?} is not a {} of the data (see /api/v1/filters)",
                    safe_text(v),
                    dim.key()
                ),
            )),
        }
    }

    /// How many values are known (diagnostics, tests).
    pub fn len(&self) -> usize {
        self.values.values().map(BTreeSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The known values and the data version they were read at (one per [`Marts`] handle).
pub type KnownSlot = tokio::sync::Mutex<Option<(String, Arc<KnownValues>)>>;

/// One statement over the marts of schema `m`: `(dimension, value)` rows. Each mart is scanned
/// once; the dimensions of a scan are grouping sets of it.
pub fn statement(m: &str) -> String {
    let sets = |table: &str, dims: &[(&str, &str)]| -> String {
        // For each grouping set, `GROUPING(col) = 0` marks the column it groups by.
        let cols: Vec<&str> = dims.iter().map(|(_, c)| *c).collect();
        let key = dims
            .iter()
            .map(|(k, c)| format!("WHEN GROUPING({c}) = 0 THEN '{k}'"))
            .collect::<Vec<_>>()
            .join(" ");
        let value = format!("coalesce({})", cols.join(", "));
        let sets = cols
            .iter()
            .map(|c| format!("({c})"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "SELECT CASE {key} END AS k, {value}::text AS v FROM {m}.{table} \
             GROUP BY GROUPING SETS ({sets})"
        )
    };
    [
        sets(
            "dashboard",
            &[
                ("cartera", "cartera"),
                ("servicio", "servicio"),
                ("tramo", "tramo"),
                ("rango_deuda", "rango_deuda"),
                ("archivo", "archivo"),
            ],
        ),
        sets(
            "evolucion",
            &[
                ("cartera", "cartera"),
                ("servicio", "servicio"),
                ("archivo", "archivo"),
            ],
        ),
        sets(
            "asignacion",
            &[("cartera", "cartera"), ("servicio", "servicio")],
        ),
        sets(
            "operacion",
            &[("cartera", "cartera"), ("archivo", "archivo")],
        ),
        sets(
            "productividad",
            &[
                ("cartera", "cartera"),
                ("agente", "correo_agente"),
                ("agente", "nombre_agente"),
            ],
        ),
    ]
    .join(" UNION ")
}

impl Marts {
    /// The known values at data version `version`: read once per version (concurrent callers
    /// wait for the one read), then served from memory.
    pub async fn known_values(&self, version: &str) -> Result<Arc<KnownValues>, ApiError> {
        let mut slot = self.known.lock().await;
        if let Some((v, known)) = slot.as_ref()
            && v == version
        {
            return Ok(known.clone());
        }
        let rows = self
            .db
            .query("known_values", &self.sql.known_values, &[])
            .await?;
        let mut known = KnownValues::default();
        for r in &rows {
            let (Some(k), Some(v)) = (r.get::<_, Option<String>>(0), r.get::<_, Option<String>>(1))
            else {
                continue;
            };
            if let Some(dim) = Dim::from_key(&k) {
                known.values.entry(dim).or_default().insert(v);
            }
        }
        let known = Arc::new(known);
        *slot = Some((version.to_string(), known.clone()));
        Ok(known)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_scan_per_mart() {
        let s = super::statement("mart");
        assert_eq!(s.matches("GROUPING SETS").count(), 5);
        assert!(s.contains("WHEN GROUPING(correo_agente) = 0 THEN 'agente'"));
    }
}
