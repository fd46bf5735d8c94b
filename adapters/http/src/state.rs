//! The services behind the handlers, built once by the binary and shared by every request.

use std::sync::Arc;

use authlog_application::authenticate::Authenticate;
use authlog_application::login::LogIn;
use authlog_application::me::Me;
use authlog_application::ports::EventStore;
use authlog_application::refresh::Refresh;
use authlog_application::register::RegisterUser;
use authlog_application::revoke::RevokeSession;

pub struct AppState {
    pub register: RegisterUser,
    pub login: LogIn,
    pub authenticate: Authenticate,
    pub refresh: Refresh,
    pub revoke: RevokeSession,
    pub me: Me,
    /// For the readiness probe.
    pub store: Arc<dyn EventStore>,
}
