//! `GET /api/v1/filters`: the dashboard's filter options at the latest photo date.

use axum::extract::State;

use crate::error::ApiError;
use crate::http::envelope::{Envelope, envelope};
use crate::http::json::JsonBytes;
use crate::http::params::Query;
use crate::marts::filters::FilterOptions;
use crate::marts::latest::Latest;
use crate::state::Shared;

#[utoipa::path(get, path = "/api/v1/filters", tag = "dashboard",
    responses((status = 200, description = "Envelope whose data is FilterOptions", body = Envelope<FilterOptions>)))]
pub async fn filters(State(st): State<Shared>, q: Query) -> Result<JsonBytes, ApiError> {
    q.finish()?;
    let latest = st.latest_cached(Latest::Photo).await?;
    st.cached("filters", &latest.map(|d| d.to_string()), || async {
        Ok(envelope(
            "Filter options",
            st.marts.filter_options(latest).await?,
        ))
    })
    .await
}
