//! The subscribers that keep this process's memory current with what any process records
//! (other instances, the command line), each run in every instance from the log's head at its
//! start ([`crate::subscribers::Scope::Instance`]):
//!
//! - [`RevokedSessions`]: the revocation view, so that a session revoked anywhere is refused
//!   here within a moment, with no database query per request.
//! - [`RevokedRoles`]: the roles revoked recently, so that a token issued before a role was
//!   revoked anywhere loses it here within a moment, with no database query per request.
//! - [`KeyRing`]: the signing keys, so that a rotation or a revocation anywhere takes effect
//!   here.
//!
//! [`NAMES`] lists them, for `authlog projections status`.
//!
//! A subscriber never stops on a row it cannot read: it reads only the types it names, and the
//! store passes over the rest.

use std::sync::Arc;

use async_trait::async_trait;
use authlog_domain::{Event, EventType};
use time::Duration;

use crate::ports::{
    AuditFilter, Clock, EventLog, KeyStore, ReadModels, RecordedEvent, RevocationView, TokenService,
};
use crate::subscribers::{HandleError, Scope, Subscriber};

/// The names of the instance subscribers every server runs.
pub const NAMES: [&str; 3] = [RevokedSessions::NAME, RevokedRoles::NAME, KeyRing::NAME];

/// Keeps the revocation view current: fills it at start with the sessions revoked since an
/// access token issued then could still be live, and records each revocation the log gains.
/// A wholesale revocation (`SessionsRevoked`) names no sessions: the sessions projection
/// expands it, so each batch is read back from the projection once it holds the batch.
pub struct RevokedSessions {
    read_models: Arc<dyn ReadModels>,
    view: Arc<dyn RevocationView>,
    clock: Arc<dyn Clock>,
    /// How long a revocation matters: the access-token lifetime and leeway.
    window: Duration,
}

impl RevokedSessions {
    pub const NAME: &'static str = "revoked-sessions";

    pub fn new(
        read_models: Arc<dyn ReadModels>,
        view: Arc<dyn RevocationView>,
        clock: Arc<dyn Clock>,
        window: Duration,
    ) -> Self {
        Self {
            read_models,
            view,
            clock,
            window,
        }
    }
}

#[async_trait]
impl Subscriber for RevokedSessions {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> &'static [EventType] {
        &[EventType::Revoked, EventType::SessionsRevoked]
    }

    fn scope(&self) -> Scope {
        Scope::Instance
    }

    /// The recent revocations only, however long the log.
    async fn start(&self) -> Result<(), HandleError> {
        let since = self.clock.now() - self.window;
        let recent = self.read_models.revocations_since(since).await?;
        self.view.record_all(&recent);
        Ok(())
    }

    async fn handle(&self, events: &[RecordedEvent]) -> Result<(), HandleError> {
        self.view.prune(self.clock.now() - self.window);
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(());
        };
        self.read_models.wait_for(last.position).await?;
        let revoked = self
            .read_models
            .revocations_after(first.position.saturating_sub(1))
            .await?;
        for session in revoked.iter().filter(|r| r.position <= last.position) {
            self.view.record(session.session_id, session.revoked_at);
        }
        Ok(())
    }
}

/// Keeps the roles revoked in the revocation view: fills it at start with those revoked since an
/// access token issued then could still be live, and records each `RoleRevoked` the log gains
/// (the event names the user and the role; no read model is needed).
pub struct RevokedRoles {
    log: Arc<dyn EventLog>,
    view: Arc<dyn RevocationView>,
    clock: Arc<dyn Clock>,
    /// How long a revocation matters: the access-token lifetime and leeway.
    window: Duration,
}

impl RevokedRoles {
    pub const NAME: &'static str = "revoked-roles";
    /// How many revocations a start reads at a time.
    const PAGE: u32 = 1000;

    pub fn new(
        log: Arc<dyn EventLog>,
        view: Arc<dyn RevocationView>,
        clock: Arc<dyn Clock>,
        window: Duration,
    ) -> Self {
        Self {
            log,
            view,
            clock,
            window,
        }
    }

    fn record(&self, events: &[RecordedEvent]) {
        for recorded in events {
            if let Event::RoleRevoked(e) = &recorded.event {
                self.view
                    .record_role(e.user_id, e.role.clone(), recorded.recorded_at);
            }
        }
    }
}

#[async_trait]
impl Subscriber for RevokedRoles {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> &'static [EventType] {
        &[EventType::RoleRevoked]
    }

    fn scope(&self) -> Scope {
        Scope::Instance
    }

    /// The recent revocations only (the audit table's index by type), however long the log.
    async fn start(&self) -> Result<(), HandleError> {
        let mut filter = AuditFilter {
            types: vec![EventType::RoleRevoked.as_str().to_owned()],
            since: Some(self.clock.now() - self.window),
            limit: Self::PAGE,
            ..AuditFilter::default()
        };
        loop {
            let page = self.log.query(filter.clone()).await?;
            self.record(&page);
            match page.last() {
                Some(last) if page.len() == Self::PAGE as usize => filter.after = last.position,
                _ => return Ok(()),
            }
        }
    }

    async fn handle(&self, events: &[RecordedEvent]) -> Result<(), HandleError> {
        self.view.prune(self.clock.now() - self.window);
        self.record(events);
        Ok(())
    }
}

/// Keeps the token service's keys current: after a rotation or a revocation anywhere, the keys
/// are loaded again from the store.
pub struct KeyRing {
    keys: Arc<dyn KeyStore>,
    tokens: Arc<dyn TokenService>,
    clock: Arc<dyn Clock>,
}

impl KeyRing {
    pub const NAME: &'static str = "signing-keys";

    pub fn new(
        keys: Arc<dyn KeyStore>,
        tokens: Arc<dyn TokenService>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            keys,
            tokens,
            clock,
        }
    }
}

#[async_trait]
impl Subscriber for KeyRing {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> &'static [EventType] {
        &[EventType::SigningKeyRotated, EventType::SigningKeyRevoked]
    }

    fn scope(&self) -> Scope {
        Scope::Instance
    }

    async fn handle(&self, _events: &[RecordedEvent]) -> Result<(), HandleError> {
        let keys = self.keys.signing_keys().await?;
        self.tokens
            .replace_keys(keys, self.clock.now())
            .map_err(|e| HandleError::Failed(format!("cannot load the rotated signing keys: {e}")))
    }
}
