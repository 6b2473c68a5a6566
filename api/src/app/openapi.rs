//! The OpenAPI document, generated from the handlers' annotations and the response types, so the
//! documented shapes are the served ones.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    assignment, dashboard, etl, etl_refresh, evolution, filters, operation, productivity, system,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pulso-flow API",
        description = "Dashboard API of Pulso: KPIs served from the PostgreSQL marts built by \
                       pulso-flow, cached per data version.",
    ),
    paths(
        system::health,
        system::ready,
        system::metrics,
        system::api_health,
        dashboard::get_dashboard,
        dashboard::post_dashboard,
        filters::filters,
        evolution::get_evolution,
        evolution::post_evolution,
        evolution::carteras,
        evolution::metrics,
        assignment::get_assignment,
        assignment::post_assignment,
        assignment::summary,
        operation::get_operation,
        operation::post_operation,
        operation::kpis,
        operation::channels,
        productivity::get_productivity,
        productivity::post_productivity,
        productivity::agents,
        productivity::agent_detail,
        productivity::metrics,
        etl::status,
        etl::table_status_handler,
        etl_refresh::refresh_dashboard,
        etl_refresh::refresh_table,
        etl_refresh::refresh_all,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&Bearer),
    tags(
        (name = "dashboard", description = "KPI tables and charts"),
        (name = "etl", description = "Watermarks, run ledger, freshness, refresh"),
        (name = "system", description = "Liveness, readiness, metrics"),
    )
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON text.
pub fn json() -> String {
    ApiDoc::openapi()
        .to_json()
        .expect("the OpenAPI document serialises")
}
