//! The API's own documentation: `GET /` (a pointer to it), `/api/v1/openapi.json` (the document
//! built by [`crate::app::openapi`], served as serialised once), and the `/docs` (Scalar) and
//! `/redoc` (ReDoc) viewers.
//!
//! The viewers' scripts are served from the binary (`api/assets/`, embedded at build time,
//! licences beside them), never from a CDN: the pages work without internet, and their
//! Content-Security-Policy allows scripts, styles, fonts and fetches from this origin only
//! (inline styles and blob workers are what the two viewers need to run). Scalar's default web
//! fonts, proxy and telemetry live on other origins, so they are switched off in its
//! configuration and blocked by the CSP anyway.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::access::Access;
use crate::error::ApiError;
use crate::state::Shared;

/// `/api/v1/openapi.json`.
pub async fn openapi(
    State(st): State<Shared>,
    access: Access,
) -> Result<impl IntoResponse, ApiError> {
    access.require(st.cfg.private_endpoints.docs)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        st.openapi.clone(),
    ))
}

/// No external origin: everything the viewers load comes from this server.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     font-src 'self' data:; img-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Where the embedded scripts are served (versioned names, so they may be cached for good).
pub const SCALAR_JS: &str = "/docs/assets/scalar-api-reference-1.46.4.js";
pub const REDOC_JS: &str = "/docs/assets/redoc-2.5.4.standalone.js";

static SCALAR: &[u8] = include_bytes!("../../assets/scalar-api-reference-1.46.4.js");
static REDOC: &[u8] = include_bytes!("../../assets/redoc-2.5.4.standalone.js");

/// An HTML page that loads an OpenAPI viewer in the browser, under the docs' CSP.
fn viewer_page(body: &str) -> impl IntoResponse + use<> {
    (
        [(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_CSP),
        )],
        Html(format!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n  <meta charset=\"utf-8\">\n  \
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n  \
             <title>pulso-flow API</title>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
        )),
    )
}

/// `/docs`: Scalar, reading `/api/v1/openapi.json`.
pub async fn docs(State(st): State<Shared>, access: Access) -> Result<impl IntoResponse, ApiError> {
    access.require(st.cfg.private_endpoints.docs)?;
    Ok(viewer_page(&format!(
        r#"  <script id="api-reference" data-url="/api/v1/openapi.json" data-configuration='{{"withDefaultFonts":false,"hideClientButton":true}}'></script>
  <script src="{SCALAR_JS}"></script>"#
    )))
}

/// `/redoc`: the same document in ReDoc.
pub async fn redoc(
    State(st): State<Shared>,
    access: Access,
) -> Result<impl IntoResponse, ApiError> {
    access.require(st.cfg.private_endpoints.docs)?;
    Ok(viewer_page(&format!(
        r#"  <redoc spec-url="/api/v1/openapi.json"></redoc>
  <script src="{REDOC_JS}"></script>"#
    )))
}

fn script(bytes: &'static [u8]) -> impl IntoResponse + use<> {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        bytes,
    )
}

/// The embedded Scalar bundle.
pub async fn scalar_js(
    State(st): State<Shared>,
    access: Access,
) -> Result<impl IntoResponse, ApiError> {
    access.require(st.cfg.private_endpoints.docs)?;
    Ok(script(SCALAR))
}

/// The embedded ReDoc bundle.
pub async fn redoc_js(
    State(st): State<Shared>,
    access: Access,
) -> Result<impl IntoResponse, ApiError> {
    access.require(st.cfg.private_endpoints.docs)?;
    Ok(script(REDOC))
}

/// `GET /`.
#[derive(Serialize, ToSchema)]
pub struct Welcome {
    pub message: &'static str,
    pub docs_url: &'static str,
}

pub async fn root() -> axum::Json<Welcome> {
    axum::Json(Welcome {
        message: "Bienvenido a pulso-flow API",
        docs_url: "/docs",
    })
}
