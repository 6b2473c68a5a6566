//! The success envelope some of Pulso-Back's answers wear: `{"status":"success","message","data"}`.

use serde::Serialize;
use utoipa::ToSchema;

/// The success envelope some endpoints use (`{status, message, data}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    /// Always `success`.
    pub status: &'static str,
    pub message: String,
    pub data: T,
}

pub fn envelope<T>(message: impl Into<String>, data: T) -> Envelope<T> {
    Envelope {
        status: "success",
        message: message.into(),
        data,
    }
}
