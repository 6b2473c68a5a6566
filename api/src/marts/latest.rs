//! The one "latest date" lookup every default date of the API goes through: the greatest date of
//! a mart on or before today (the dashboard's photo: before today), or else its greatest date at
//! all — so an API over data that ends in the past still answers with the last day it has.

use chrono::NaiveDate;

use super::{Marts, month_of};
use crate::error::ApiError;

/// Whose latest date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Latest {
    /// The latest complete photo date of `mart.dashboard`: the latest `fecha_foto` before today
    /// — today's photo is still growing during the day. Every photo date in the mart has its debt
    /// snapshot (campaign days stop at the latest snapshot).
    Photo,
    /// The latest day of `mart.operacion` (a Lima day with interactions).
    OperationDay,
    /// The latest day of `mart.productividad` (a Lima day with human interactions).
    ProductivityDay,
    /// The first day of the latest month (`periodo`) of `mart.asignacion`.
    AssignmentMonth,
}

impl Latest {
    /// The statement's name in the query metrics.
    fn name(self) -> &'static str {
        match self {
            Latest::Photo => "latest_photo",
            Latest::OperationDay => "latest_operation",
            Latest::ProductivityDay => "latest_productivity",
            Latest::AssignmentMonth => "latest_month",
        }
    }
}

/// The lookup's statement for `which` over the marts of schema `m`: two probes of the mart's
/// primary key (its first column is the date).
pub fn statement(m: &str, which: Latest) -> String {
    let (table, column, before) = match which {
        Latest::Photo => ("dashboard", "fecha_foto", "<"),
        Latest::OperationDay => ("operacion", "fecha", "<="),
        Latest::ProductivityDay => ("productividad", "fecha", "<="),
        Latest::AssignmentMonth => ("asignacion", "periodo", "<="),
    };
    format!(
        "SELECT coalesce((SELECT max({column}) FROM {m}.{table} WHERE {column} {before} $1), \
                         (SELECT max({column}) FROM {m}.{table}))"
    )
}

/// The latest photo date of `mart.dashboard` within a date range (a month's last photo).
pub fn photo_between_statement(m: &str) -> String {
    format!("SELECT max(fecha_foto) FROM {m}.dashboard WHERE fecha_foto BETWEEN $1 AND $2")
}

impl Marts {
    /// The latest date of `which` relative to `today` (see [`Latest`]); `None` when the mart is
    /// empty.
    pub async fn latest(
        &self,
        which: Latest,
        today: NaiveDate,
    ) -> Result<Option<NaiveDate>, ApiError> {
        let sql = match which {
            Latest::Photo => &self.sql.latest_photo,
            Latest::OperationDay => &self.sql.latest_operation,
            Latest::ProductivityDay => &self.sql.latest_productivity,
            Latest::AssignmentMonth => &self.sql.latest_month,
        };
        if which == Latest::AssignmentMonth {
            // `periodo` is `YYYY-MM` text: compared as text, returned as the month's first day.
            let rows = self
                .db
                .query(which.name(), sql, &[&month_of(today)])
                .await?;
            let month: Option<String> = rows.first().and_then(|r| r.get(0));
            return month
                .map(|m| {
                    NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").map_err(|e| {
                        ApiError::internal(format!("asignacion.periodo {m:?} is not YYYY-MM: {e}"))
                    })
                })
                .transpose();
        }
        let rows = self.db.query(which.name(), sql, &[&today]).await?;
        Ok(rows.first().and_then(|r| r.get(0)))
    }

    /// The latest photo date of `mart.dashboard` from `first` to `last`.
    pub async fn latest_photo_between(
        &self,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<Option<NaiveDate>, ApiError> {
        let rows = self
            .db
            .query(
                "latest_photo_in",
                &self.sql.latest_photo_in,
                &[&first, &last],
            )
            .await?;
        Ok(rows.first().and_then(|r| r.get(0)))
    }
}
