//! The operations, grouped by tag.
//!
//! - [`auth`]: register, login, refresh, logout (the Flask template's contract).
//! - [`account`]: what a token holder may see: `/protected`, `/me`, `/admin`.
//! - [`sessions`]: the caller's sessions: list, revoke one.
//! - [`keys`]: the JWKS of the public signing keys.
//! - [`audit`]: the event log and signed checkpoints of it, for admins and auditors.
//! - [`feed`]: the event log pushed as Server-Sent Events of CloudEvents.
//! - [`admin`]: account administration, for admins: the directory and the user lifecycle.
//! - [`email`]: the caller's address and its verification; a forgotten password reset by mail.
//! - [`ops`]: liveness and readiness probes.

pub mod account;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod email;
pub mod feed;
pub mod keys;
pub mod ops;
pub mod sessions;

use poem_openapi::Tags;

#[derive(Tags)]
pub enum Tag {
    /// Register, log in, refresh tokens and log out.
    Auth,
    /// The authenticated caller's own account.
    Account,
    /// The caller's sessions (one per login).
    Sessions,
    /// Public keys for verifying tokens elsewhere.
    Keys,
    /// The event log, for admins.
    Audit,
    /// Account administration, for admins.
    Admin,
    /// Email verification and password reset (on servers that send mail).
    Email,
    /// Probes for load balancers and orchestrators.
    Operations,
}

pub type All = (
    auth::AuthApi,
    account::AccountApi,
    sessions::SessionsApi,
    keys::KeysApi,
    audit::AuditApi,
    feed::FeedApi,
    admin::AdminApi,
    email::EmailApi,
    ops::OpsApi,
);

/// Every API of the service, for the OpenAPI service.
pub fn all() -> All {
    (
        auth::AuthApi,
        account::AccountApi,
        sessions::SessionsApi,
        keys::KeysApi,
        audit::AuditApi,
        feed::FeedApi,
        admin::AdminApi,
        email::EmailApi,
        ops::OpsApi,
    )
}
