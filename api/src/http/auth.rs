//! The bearer-token check of the endpoints that change something (the ETL refreshes).

use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// Check `Authorization: Bearer <token>` against `expected` (`PULSO_API_REFRESH_TOKEN`): 401
/// without it, 403 when wrong — or when no token is configured: the endpoint is then disabled.
/// The comparison takes the same time whatever the presented token.
pub fn require_bearer(headers: &HeaderMap, expected: Option<&str>) -> Result<(), ApiError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Err(ApiError::Unauthorized(
            "this endpoint needs Authorization: Bearer <token>".into(),
        ));
    };
    let presented = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
        })?;
    let Some(expected) = expected else {
        return Err(ApiError::Forbidden(
            "refresh is disabled on this server (no PULSO_API_REFRESH_TOKEN)".into(),
        ));
    };
    if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("invalid token".into()))
    }
}
