//! authlog's HTTP API: poem + poem-openapi, so the OpenAPI document is generated from the
//! code that serves it.
//!
//! - [`app`]: the whole endpoint: routes, Swagger UI, CORS, and the OpenAPI document.
//! - [`frame`]: the one middleware around every request: request id, body limit, JSON errors,
//!   `Allow` on 405s, metrics and the log line, no-store caching.
//! - [`allow`]: the `Allow` header of 405 answers, from the OpenAPI document's paths.
//! - [`api`]: the operations, one `ApiResponse` enum per operation documenting every status.
//! - [`security`]: bearer-or-cookie authentication with the CSRF double submit; token checks
//!   happen here, before a handler runs.
//! - [`cookies`]: the four token cookies, set at login and refresh, cleared at logout.
//! - [`body`]: the JSON request body wrapper whose errors say whether the body was not JSON or
//!   not the right shape.
//! - [`fields`]: username and password fields whose schema states the domain's rules.
//! - [`errors`]: the `{"msg"}` error body and the catch-all that turns every framework error
//!   (404, 405, 413, ...) into it.
//! - [`request`]: who is calling (client address, user agent, request id), recorded with events.
//! - [`docs`]: Swagger UI from utoipa-swagger-ui's vendored files; nothing is fetched.
//! - [`state`]: the application services the handlers call.
//! - [`serve`]: the connections: accept loop, connection cap, header-read and idle timeouts,
//!   HTTP/2 stream cap.

pub mod allow;
pub mod api;
pub mod app;
pub mod body;
pub mod cookies;
pub mod docs;
pub mod errors;
pub mod fields;
pub mod frame;
pub mod request;
pub mod security;
pub mod serve;
pub mod state;

pub use app::{app, openapi_json, HttpConfig};
pub use cookies::CookieSettings;
pub use serve::{serve, ConnectionLimits};
pub use state::AppState;
