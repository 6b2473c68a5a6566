//! An answer that is already serialised JSON (what the cache stores and serves).

use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use bytes::Bytes;

/// A serialised JSON answer.
pub struct JsonBytes(pub Bytes);

impl IntoResponse for JsonBytes {
    fn into_response(self) -> axum::response::Response {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.0,
        )
            .into_response()
    }
}
