//! Shared HTTP pieces, used by the routes and the router: request parsing and validation
//! ([`params`]), the success envelope some answers wear ([`envelope`]), serialised answers
//! ([`json`]), date and timestamp serialisation ([`ser`]) and the bearer-token check ([`auth`]).
//!
//! Nothing here holds state or knows a route or a mart: this module depends only on
//! [`crate::error`], so every layer above may use it.

pub mod auth;
pub mod envelope;
pub mod json;
pub mod params;
pub mod ser;
