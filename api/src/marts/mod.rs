//! The marts layer: one module per mart, each owning its statement text, the decoding of its rows,
//! the KPI shaping and its answer types; all reached through one handle, [`Marts`], that owns the
//! read pool and the statement texts (prepared once per connection by the pool's statement cache).
//!
//! * [`dashboard`] — `mart.dashboard`: KPI tables and chart at one photo date.
//! * [`filters`] — the dashboard's filter options.
//! * [`evolution`] — `mart.evolucion`: KPI series per management day.
//! * [`assignment`] — `mart.asignacion`: the portfolio of two months compared.
//! * [`operation`] — `mart.operacion`: one day's interactions per channel, hour, attempt, queue.
//! * [`productivity`] — `mart.productividad`: agents' ranking, heatmap and trends.
//! * [`latest`] — the one "latest date" lookup behind every default date.
//! * [`kpi`] — KPI arithmetic on summed counters.
//! * [`known`] — the values that exist per dimension (what a filter value must be one of),
//!   kept per data version.
//!
//! This layer knows no route, request or cache: it takes normalised queries and returns typed
//! answers. Statements are text built from the configured schema name (validated as a plain
//! identifier at startup) and from static column names chosen by enums — never from request
//! text; every value is a bound parameter (`$n`). Each statement's access path is an index the
//! migrations create (see `api/tests/it/api_explain.rs`):
//!
//! | statement | index |
//! |---|---|
//! | dashboard, filter options, latest photo | `mart.dashboard` primary key (fecha_foto, …) |
//! | evolution | `mart.evolucion` primary key (fecha_foto, …) |
//! | evolution carteras | `evolucion_cartera` (cartera, dia_gestion), loose index scan |
//! | assignment | `mart.asignacion` primary key (periodo, …) |
//! | operation | `mart.operacion` primary key (fecha, …) |
//! | productivity | `mart.productividad` primary key (fecha, …); one agent: `productividad_agente` |
//! | known values | none: one sequential scan of each mart per data version (`known`) |

pub mod assignment;
pub mod dashboard;
pub mod evolution;
pub mod filters;
pub mod known;
pub mod kpi;
pub mod latest;
pub mod operation;
pub mod productivity;

use std::sync::Arc;

use chrono::{Datelike, NaiveDate, Utc};

use crate::db::Db;
use dashboard::Dimension;
use latest::Latest;

/// The handle of the marts layer: the read pool, the statement texts and the business time zone.
/// Cheap to clone.
#[derive(Clone)]
pub struct Marts {
    db: Db,
    sql: Arc<Sql>,
    time_zone: chrono_tz::Tz,
    /// The known values and the data version they were read at.
    known: Arc<known::KnownSlot>,
}

impl Marts {
    /// `schema`: the marts' schema (a plain identifier, checked by the configuration).
    pub fn new(db: Db, schema: &str, time_zone: chrono_tz::Tz) -> Self {
        Marts {
            db,
            sql: Arc::new(Sql::new(schema)),
            time_zone,
            known: Arc::default(),
        }
    }

    /// Today in the business time zone (`PULSO_TIME_ZONE`): the day "latest" defaults are
    /// relative to.
    pub fn today(&self) -> NaiveDate {
        Utc::now().with_timezone(&self.time_zone).date_naive()
    }
}

/// `YYYY-MM`: a month as the marts' `periodo` columns hold it.
pub fn month_of(d: NaiveDate) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}

/// The text of every statement of the marts layer, built once from the schema name by the module
/// that owns each statement (the dashboard's, which depends on the requested grouping, is built per
/// request by [`Sql::dashboard`]).
#[derive(Clone, Debug)]
pub struct Sql {
    pub schema: String,
    pub latest_photo: String,
    pub campaigns: String,
    pub filter_options: String,
    pub evolution: String,
    pub carteras: String,
    pub assignment: String,
    pub latest_month: String,
    pub latest_photo_in: String,
    pub latest_operation: String,
    pub operation: String,
    pub latest_productivity: String,
    pub productivity: String,
    pub productivity_hourly: String,
    pub agents: String,
    pub known_values: String,
}

impl Sql {
    /// The statements over the marts of `schema` (a plain identifier).
    pub fn new(schema: &str) -> Self {
        let m = schema;
        Sql {
            schema: schema.to_string(),
            latest_photo: latest::statement(m, Latest::Photo),
            campaigns: dashboard::CAMPAIGNS_SQL.into(),
            filter_options: filters::statement(m),
            evolution: evolution::statement(m),
            carteras: evolution::carteras_statement(m),
            assignment: assignment::statement(m),
            latest_month: latest::statement(m, Latest::AssignmentMonth),
            latest_photo_in: latest::photo_between_statement(m),
            latest_operation: latest::statement(m, Latest::OperationDay),
            operation: operation::statement(m),
            latest_productivity: latest::statement(m, Latest::ProductivityDay),
            productivity: productivity::statement(m),
            productivity_hourly: productivity::hourly_statement(m),
            agents: productivity::agents_statement(m),
            known_values: known::statement(m),
        }
    }

    /// The dashboard statement for `cols` grouped by each of `sets` and in total.
    pub fn dashboard(&self, cols: &[Dimension], sets: &[Vec<Dimension>]) -> String {
        dashboard::statement(&self.schema, cols, sets)
    }
}
