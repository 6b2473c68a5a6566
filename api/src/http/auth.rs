//! Bearer tokens: the check of the endpoints that change something (the ETL refreshes) and of
//! the monitoring endpoints an operator made private, and the limit on wrong tokens.
//!
//! Tokens are compared as SHA-256 digests in constant time, so neither the content nor the
//! length of the expected token shows in the time a wrong guess takes. The scheme is matched
//! without regard to case (`Bearer`, `bearer`, `BEARER`), as RFC 9110 says.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The token of `Authorization: Bearer <token>`: `Ok(None)` without the header, 401 when the
/// header is not a bearer credential.
pub fn presented(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(Some)
        .ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
        })
}

/// Whether `presented` equals one of `expected`, compared as digests in constant time (every
/// expected token is compared, whatever matched).
pub fn matches_any(presented: &str, expected: &[&str]) -> bool {
    let p = Sha256::digest(presented.as_bytes());
    expected.iter().fold(false, |found, e| {
        let e = Sha256::digest(e.as_bytes());
        found | bool::from(p.as_slice().ct_eq(e.as_slice()))
    })
}

/// Check `Authorization: Bearer <token>` against `expected` (`PULSO_API_REFRESH_TOKEN`): 401
/// without it, 403 when wrong — or when no token is configured: the endpoint is then disabled.
/// Wrong tokens count against the client in `limiter` (429 past its limit).
pub fn require_bearer(
    headers: &HeaderMap,
    expected: Option<&str>,
    limiter: &FailureLimiter,
    client: Option<IpAddr>,
) -> Result<(), ApiError> {
    let Some(token) = presented(headers)? else {
        return Err(ApiError::Unauthorized(
            "this endpoint needs Authorization: Bearer <token>".into(),
        ));
    };
    let Some(expected) = expected else {
        return Err(ApiError::Forbidden(
            "refresh is disabled on this server (no PULSO_API_REFRESH_TOKEN)".into(),
        ));
    };
    check(token, &[expected], limiter, client)
}

/// Compare `token` with `expected` under the failure limit of `client`: 429 while the client is
/// over its limit (without comparing), 403 when wrong.
pub fn check(
    token: &str,
    expected: &[&str],
    limiter: &FailureLimiter,
    client: Option<IpAddr>,
) -> Result<(), ApiError> {
    limiter.admit(client)?;
    if matches_any(token, expected) {
        Ok(())
    } else {
        limiter.failed(client);
        Err(ApiError::Forbidden("invalid token".into()))
    }
}

/// Wrong tokens per client address and minute (`PULSO_API_AUTH_FAILURES_PER_MINUTE`): past the
/// limit the client's token checks answer 429 until its minute is over. The table is bounded:
/// when it holds [`FailureLimiter::MAX_CLIENTS`] addresses, expired windows are dropped, and if
/// none is expired the table is cleared (an attacker with that many addresses gains a fresh
/// minute, not unlimited guesses).
pub struct FailureLimiter {
    per_minute: u32,
    clients: Mutex<HashMap<Option<IpAddr>, (Instant, u32)>>,
}

const WINDOW: Duration = Duration::from_secs(60);

impl FailureLimiter {
    pub const MAX_CLIENTS: usize = 10_000;

    pub fn new(per_minute: u32) -> Self {
        FailureLimiter {
            per_minute,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// 429 when `client` used up its wrong tokens of the current minute.
    pub fn admit(&self, client: Option<IpAddr>) -> Result<(), ApiError> {
        let Ok(clients) = self.clients.lock() else {
            return Ok(());
        };
        match clients.get(&client) {
            Some((start, n)) if *n >= self.per_minute && start.elapsed() < WINDOW => {
                let left = WINDOW.saturating_sub(start.elapsed()).as_secs().max(1);
                Err(ApiError::TooManyRequests {
                    message: format!("too many wrong tokens; retry in {left} s"),
                    retry_after: left,
                })
            }
            _ => Ok(()),
        }
    }

    /// Count a wrong token of `client`.
    pub fn failed(&self, client: Option<IpAddr>) {
        let Ok(mut clients) = self.clients.lock() else {
            return;
        };
        if clients.len() >= Self::MAX_CLIENTS && !clients.contains_key(&client) {
            clients.retain(|_, (start, _)| start.elapsed() < WINDOW);
            if clients.len() >= Self::MAX_CLIENTS {
                clients.clear();
            }
        }
        let now = Instant::now();
        let e = clients.entry(client).or_insert((now, 0));
        if e.0.elapsed() >= WINDOW {
            *e = (now, 0);
        }
        e.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(axum::http::header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    /// Issue 14 item 13: any case of the scheme; digests compared (lengths do not matter).
    #[test]
    fn scheme_case_and_digests() {
        let token = "0123456789abcdef-token";
        let limiter = FailureLimiter::new(100);
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let h = auth(&format!("{scheme} {token}"));
            assert!(
                require_bearer(&h, Some(token), &limiter, None).is_ok(),
                "{scheme}"
            );
        }
        assert!(matches!(
            require_bearer(&auth("Basic abc"), Some(token), &limiter, None),
            Err(ApiError::Unauthorized(_))
        ));
        for wrong in ["0", "0123456789abcdef-toke", "0123456789abcdef-tokenn", ""] {
            assert!(!matches_any(wrong, &[token]));
        }
        assert!(matches_any(token, &["other-token-0000000", token]));
    }

    #[test]
    fn wrong_tokens_are_limited_per_client() {
        let limiter = FailureLimiter::new(3);
        let a: Option<IpAddr> = Some("127.0.0.2".parse().unwrap());
        let b: Option<IpAddr> = Some("127.0.0.3".parse().unwrap());
        for _ in 0..3 {
            assert!(matches!(
                check("wrong", &["right-token-0123456"], &limiter, a),
                Err(ApiError::Forbidden(_))
            ));
        }
        // Over the limit: 429 even for the right token, until the minute is over.
        assert!(matches!(
            check("right-token-0123456", &["right-token-0123456"], &limiter, a),
            Err(ApiError::TooManyRequests { .. })
        ));
        // Another client is not affected.
        assert!(check("right-token-0123456", &["right-token-0123456"], &limiter, b).is_ok());
    }
}
