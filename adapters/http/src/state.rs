//! The services behind the handlers, built once by the binary and shared by every request.

use std::net::IpAddr;
use std::sync::Arc;

use authlog_application::audit::Audit;
use authlog_application::authenticate::Authenticate;
use authlog_application::directory::Directory;
use authlog_application::email::Emails;
use authlog_application::erase::EraseUser;
use authlog_application::feed::FeedHub;
use authlog_application::login::LogIn;
use authlog_application::me::Me;
use authlog_application::password::ChangePassword;
use authlog_application::ports::{EventLog, TokenService};
use authlog_application::refresh::Refresh;
use authlog_application::register::RegisterUser;
use authlog_application::revoke::RevokeSession;
use authlog_application::roles::ChangeRoles;
use authlog_application::sessions::Sessions;
use authlog_application::signed_checkpoints::SignedCheckpoints;
use authlog_application::status::AccountStatus;
use authlog_application::subscribers::Runner;

use crate::cookies::CookieSettings;

/// Renders the process's metrics (the binary owns the recorder).
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

pub struct AppState {
    pub register: RegisterUser,
    pub login: LogIn,
    pub authenticate: Authenticate,
    pub refresh: Refresh,
    pub revoke: Arc<RevokeSession>,
    pub sessions: Arc<Sessions>,
    pub password: ChangePassword,
    pub me: Me,
    pub audit: Audit,
    /// The event feed's shared reader of new events.
    pub feed: Arc<FeedHub>,
    /// The admin use cases, shared with the command line (each takes a `Caller` and checks
    /// its role itself): an admin endpoint only adds its handler.
    pub roles: Arc<ChangeRoles>,
    pub status: Arc<AccountStatus>,
    pub erase: Arc<EraseUser>,
    pub directory: Arc<Directory>,
    /// Signed checkpoints of the hash chain, and the key set that checks them.
    pub checkpoints: Arc<SignedCheckpoints>,
    /// Email verification and password reset; `None` on a server that sends no mail.
    pub emails: Option<Arc<Emails>>,
    /// For the JWKS endpoint.
    pub tokens: Arc<dyn TokenService>,
    /// For the readiness probe: the log must answer, and this process must be keeping up.
    pub log: Arc<dyn EventLog>,
    /// For the readiness probe: how far this process's subscribers are behind the log.
    pub subscribers: Arc<Runner>,
    pub cookies: CookieSettings,
    /// This authlog's name (`--issuer`): tokens' `iss`, and the feed's CloudEvents' `source`.
    pub issuer: String,
    /// Renders the metrics registry in Prometheus text format.
    pub render_metrics: RenderMetrics,
    /// Proxies whose `X-Forwarded-For` is believed about the client's address.
    pub trusted_proxies: Vec<IpAddr>,
}
