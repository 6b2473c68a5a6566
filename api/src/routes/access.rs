//! Who may do what: the bearer-token extractors of the routes.
//!
//! * [`RefreshAuth`]: the refresh endpoints need `PULSO_API_REFRESH_TOKEN`. It is an extractor of
//!   the request's head, so axum runs it before the body is read: a request without the token is
//!   refused before its body is parsed.
//! * [`Access`]: the monitoring endpoints (`/metrics`, `/docs`, `/ready`, the ETL status) are
//!   public unless listed in `PULSO_API_PRIVATE_ENDPOINTS`; a valid `PULSO_API_MONITOR_TOKEN`
//!   (or the refresh token) opens the private ones and the full error text of the status.
//!
//! Wrong tokens count against the client's address (`PULSO_API_AUTH_FAILURES_PER_MINUTE`, 429
//! past it).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::http::auth;
use crate::state::Shared;

fn client(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The refresh token was presented (401 without it, 403 wrong or refresh disabled, 429 after
/// too many wrong ones).
pub struct RefreshAuth;

impl FromRequestParts<Shared> for RefreshAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &Shared) -> Result<Self, ApiError> {
        auth::require_bearer(
            &parts.headers,
            st.cfg.refresh_token.as_deref(),
            &st.auth_failures,
            client(parts),
        )?;
        Ok(RefreshAuth)
    }
}

/// Whether the request carries a valid monitoring token. No `Authorization` header is fine
/// (public access); a wrong one is 403.
pub struct Access {
    pub authorized: bool,
}

impl FromRequestParts<Shared> for Access {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &Shared) -> Result<Self, ApiError> {
        let Some(token) = auth::presented(&parts.headers)? else {
            return Ok(Access { authorized: false });
        };
        let expected: Vec<&str> = [
            st.cfg.monitor_token.as_deref(),
            st.cfg.refresh_token.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect();
        if expected.is_empty() {
            return Err(ApiError::Forbidden(
                "no token is configured on this server (PULSO_API_MONITOR_TOKEN)".into(),
            ));
        }
        auth::check(token, &expected, &st.auth_failures, client(parts))?;
        Ok(Access { authorized: true })
    }
}

impl Access {
    /// 401 when `private` (the endpoint is listed in `PULSO_API_PRIVATE_ENDPOINTS`) and no token
    /// was presented.
    pub fn require(&self, private: bool) -> Result<(), ApiError> {
        if private && !self.authorized {
            return Err(ApiError::Unauthorized(
                "this endpoint is private on this server: send Authorization: Bearer <monitor \
                 token>"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Whether full error texts may be shown (token, or `PULSO_API_PUBLIC_ERROR_DETAIL=full`).
    pub fn full_errors(&self, st: &Shared) -> bool {
        self.authorized || st.cfg.public_error_detail == crate::config::ErrorDetail::Full
    }
}
