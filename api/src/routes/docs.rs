//! The API's own documentation: `GET /` (a pointer to it), `/api/v1/openapi.json` (the document
//! built by [`crate::app::openapi`], served as serialised once), and the `/docs` (Scalar) and
//! `/redoc` viewers, which the browser loads from a CDN under their own CSP.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::Shared;

pub async fn openapi(State(st): State<Shared>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        st.openapi.clone(),
    )
}

const DOCS_CSP: &str = "default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; \
     style-src 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; \
     font-src https://cdn.jsdelivr.net https://fonts.gstatic.com data:; img-src 'self' data: https:; \
     connect-src 'self'; worker-src blob:; frame-ancestors 'none'";

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

/// `/docs`: Scalar, loaded by the browser, reading `/api/v1/openapi.json`.
pub async fn docs() -> impl IntoResponse {
    viewer_page(
        r#"  <script id="api-reference" data-url="/api/v1/openapi.json"></script>
  <script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference@1"></script>"#,
    )
}

/// `/redoc`: the same document in ReDoc.
pub async fn redoc() -> impl IntoResponse {
    viewer_page(
        r#"  <redoc spec-url="/api/v1/openapi.json"></redoc>
  <script src="https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js"></script>"#,
    )
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
