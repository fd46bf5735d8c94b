//! Ending a session (logout): its access and refresh tokens all stop working.

use std::sync::Arc;

use authlog_domain::session::{self, SessionCommand, SessionError};
use authlog_domain::{RevocationReason, SessionId, StreamId};

use crate::ports::{
    Clock, EventStore, ExpectedVersion, Metadata, RevocationView, StoreError, StreamWrite,
};
use crate::streams::{load_session, subject_of, to_append};

/// Why a session could not be revoked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevokeError {
    #[error("no such session")]
    UnknownSession,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct RevokeSession {
    store: Arc<dyn EventStore>,
    revocations: Arc<dyn RevocationView>,
    clock: Arc<dyn Clock>,
}

impl RevokeSession {
    pub fn new(
        store: Arc<dyn EventStore>,
        revocations: Arc<dyn RevocationView>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            revocations,
            clock,
        }
    }

    /// Appends `Revoked` to the session (nothing if it is revoked already) and updates this
    /// process's revocation view before returning, so the caller's very next request with one
    /// of the session's tokens is refused here, with no wait for the log feed.
    ///
    /// Revocation always wins: it is appended whatever the session's version, so refreshes
    /// racing it can delay it by nothing. A refresh that commits first is simply revoked; one
    /// that commits after finds the session moved, reads again, and is refused. (Two logouts
    /// racing each other may both record `Revoked`; the second changes nothing.)
    ///
    /// # Errors
    /// [`RevokeError::UnknownSession`] when no such session exists; a store failure.
    pub async fn execute(
        &self,
        session_id: SessionId,
        reason: RevocationReason,
        metadata: &Metadata,
    ) -> Result<(), RevokeError> {
        let loaded = load_session(self.store.as_ref(), session_id).await?;
        let now = self.clock.now();
        let Some(session) = loaded.state.session() else {
            return Err(RevokeError::UnknownSession);
        };
        let events = session::decide(&loaded.state, SessionCommand::Revoke { reason }, now)
            .map_err(|e| match e {
                SessionError::UnknownSession => RevokeError::UnknownSession,
                other => StoreError::Unavailable(format!("revocation refused: {other}")).into(),
            })?;
        if !events.is_empty() {
            let write = StreamWrite::new(
                StreamId::session(session_id),
                ExpectedVersion::Any,
                to_append(events, &subject_of(session.user_id), metadata, now),
            );
            self.store
                .append(vec![write])
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            metrics::counter!("authlog_revocations_total", "reason" => reason.as_str())
                .increment(1);
        }
        self.revocations.record(session_id, now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation_view::RevocationSet;
    use crate::testing::{alice_id, clock, uuid, InMemoryEventStore, NOW};
    use authlog_domain::event::{LoggedIn, Revoked};
    use authlog_domain::{Event, TokenId};

    fn sid() -> SessionId {
        SessionId::from_uuid(uuid(5))
    }

    fn given_a_session() -> Arc<InMemoryEventStore> {
        let store = Arc::new(InMemoryEventStore::new());
        store.given(
            StreamId::session(sid()),
            [Event::LoggedIn(LoggedIn {
                session_id: sid(),
                user_id: alice_id(),
                refresh_token_id: TokenId::from_uuid(uuid(2)),
                expires_at: NOW + time::Duration::days(30),
            })],
        );
        store
    }

    fn revoked(reason: RevocationReason) -> Event {
        Event::Revoked(Revoked {
            session_id: sid(),
            user_id: alice_id(),
            reason,
        })
    }

    #[tokio::test]
    async fn logout_records_revoked_and_updates_the_view_before_answering() {
        let store = given_a_session();
        let view = Arc::new(RevocationSet::new());
        let before = store.position();

        RevokeSession::new(store.clone(), view.clone(), clock())
            .execute(sid(), RevocationReason::Logout, &Metadata::default())
            .await
            .unwrap();

        assert_eq!(
            store.events_after(before),
            vec![revoked(RevocationReason::Logout)]
        );
        assert!(view.is_revoked(sid()));
    }

    #[tokio::test]
    async fn revoking_a_revoked_session_records_nothing_and_still_succeeds() {
        let store = given_a_session();
        store.given(
            StreamId::session(sid()),
            [revoked(RevocationReason::Logout)],
        );
        let before = store.position();
        RevokeSession::new(store.clone(), Arc::new(RevocationSet::new()), clock())
            .execute(sid(), RevocationReason::Admin, &Metadata::default())
            .await
            .unwrap();
        assert_eq!(store.events_after(before), vec![]);
    }

    #[tokio::test]
    async fn an_unknown_session_is_an_error_and_records_nothing() {
        let store = Arc::new(InMemoryEventStore::new());
        let result = RevokeSession::new(store.clone(), Arc::new(RevocationSet::new()), clock())
            .execute(sid(), RevocationReason::Logout, &Metadata::default())
            .await;
        assert_eq!(result, Err(RevokeError::UnknownSession));
        assert_eq!(store.position(), 0);
    }
}
