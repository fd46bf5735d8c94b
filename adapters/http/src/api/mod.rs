//! The operations, grouped by tag.
//!
//! - [`auth`]: register, login, refresh, logout (the Flask template's contract).
//! - [`account`]: what a token holder may see: `/protected`, `/me`, `/admin`.
//! - [`ops`]: liveness and readiness probes.

pub mod account;
pub mod auth;
pub mod ops;

use poem_openapi::Tags;

#[derive(Tags)]
pub enum Tag {
    /// Register, log in, refresh tokens and log out.
    Auth,
    /// The authenticated caller's own account.
    Account,
    /// Probes for load balancers and orchestrators.
    Operations,
}

/// Every API of the service, for the OpenAPI service.
pub fn all() -> (auth::AuthApi, account::AccountApi, ops::OpsApi) {
    (auth::AuthApi, account::AccountApi, ops::OpsApi)
}
