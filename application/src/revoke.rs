//! Ending a session (logout): its access and refresh tokens all stop working.

use std::sync::Arc;

use authlog_domain::session::{self, SessionCommand, SessionError};
use authlog_domain::{RevocationReason, SessionId, StreamId};

use crate::ports::{
    AppendError, Clock, EventStore, ExpectedVersion, Metadata, RevocationView, StoreError,
};
use crate::streams::{load_session, to_append};

/// How often a revocation re-reads and retries when a concurrent refresh moved the session.
const ATTEMPTS: usize = 3;

/// Why a session could not be revoked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevokeError {
    #[error("no such session")]
    UnknownSession,
    #[error("session kept changing; try again")]
    Contended,
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
    /// # Errors
    /// [`RevokeError::UnknownSession`] when no such session exists; [`RevokeError::Contended`]
    /// when concurrent writers keep moving the session; a store failure.
    pub async fn execute(
        &self,
        session_id: SessionId,
        reason: RevocationReason,
        metadata: &Metadata,
    ) -> Result<(), RevokeError> {
        for _ in 0..ATTEMPTS {
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
                let append = self
                    .store
                    .append(
                        StreamId::session(session_id),
                        ExpectedVersion::after(loaded.version),
                        to_append(events, &session.username, metadata, now),
                    )
                    .await;
                match append {
                    Ok(_) => {
                        metrics::counter!("authlog_revocations_total", "reason" => reason.as_str())
                            .increment(1);
                    }
                    Err(AppendError::Conflict { .. }) => continue,
                    Err(AppendError::Store(e)) => return Err(e.into()),
                }
            }
            self.revocations.record(session_id, now);
            return Ok(());
        }
        Err(RevokeError::Contended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{Appended, MockEventStore, MockRevocationView};
    use crate::testing::{clock, recorded, NOW};
    use authlog_domain::event::{LoggedIn, Revoked};
    use authlog_domain::{Event, TokenId, UserId, Username};
    use uuid::Uuid;

    fn sid() -> SessionId {
        SessionId::from_uuid(Uuid::from_u128(5))
    }

    fn logged_in() -> Event {
        Event::LoggedIn(LoggedIn {
            session_id: sid(),
            user_id: UserId::from_uuid(Uuid::from_u128(1)),
            username: Username::parse("alice").unwrap(),
            refresh_token_id: TokenId::from_uuid(Uuid::from_u128(2)),
            expires_at: NOW + time::Duration::days(30),
        })
    }

    fn view_expecting_record(times: usize) -> Arc<MockRevocationView> {
        let mut view = MockRevocationView::new();
        view.expect_record()
            .withf(|s, at| *s == sid() && *at == NOW)
            .times(times)
            .return_const(());
        Arc::new(view)
    }

    #[tokio::test]
    async fn logout_appends_revoked_and_updates_the_view_before_answering() {
        let mut store = MockEventStore::new();
        store
            .expect_read_stream_edges()
            .returning(|s, _| Ok(recorded(&s, &[logged_in()])));
        store
            .expect_append()
            .withf(|_, expected, events| {
                *expected == ExpectedVersion::Exactly(1)
                    && matches!(
                        &events[0].event,
                        Event::Revoked(Revoked {
                            reason: RevocationReason::Logout,
                            ..
                        })
                    )
            })
            .return_once(|_, _, _| {
                Ok(Appended {
                    stream_version: 2,
                    position: 9,
                })
            });
        let service = RevokeSession::new(Arc::new(store), view_expecting_record(1), clock());

        let result = service
            .execute(sid(), RevocationReason::Logout, &Metadata::default())
            .await;

        assert_eq!(result, Ok(()));
    }

    #[tokio::test]
    async fn a_conflict_rereads_and_retries() {
        let mut store = MockEventStore::new();
        store
            .expect_read_stream_edges()
            .times(2)
            .returning(|s, _| Ok(recorded(&s, &[logged_in()])));
        let mut first = true;
        store
            .expect_append()
            .times(2)
            .returning(move |stream, expected, _| {
                if std::mem::take(&mut first) {
                    Err(AppendError::Conflict {
                        stream,
                        expected,
                        actual: 2,
                    })
                } else {
                    Ok(Appended {
                        stream_version: 2,
                        position: 9,
                    })
                }
            });
        let service = RevokeSession::new(Arc::new(store), view_expecting_record(1), clock());

        let result = service
            .execute(sid(), RevocationReason::Logout, &Metadata::default())
            .await;

        assert_eq!(result, Ok(()));
    }

    #[tokio::test]
    async fn an_already_revoked_session_appends_nothing() {
        let revoked = Event::Revoked(Revoked {
            session_id: sid(),
            user_id: UserId::from_uuid(Uuid::from_u128(1)),
            reason: RevocationReason::Logout,
        });
        let mut store = MockEventStore::new();
        store
            .expect_read_stream_edges()
            .returning(move |s, _| Ok(recorded(&s, &[logged_in(), revoked.clone()])));
        store.expect_append().never();
        let service = RevokeSession::new(Arc::new(store), view_expecting_record(1), clock());

        let result = service
            .execute(sid(), RevocationReason::Logout, &Metadata::default())
            .await;

        assert_eq!(result, Ok(()));
    }

    #[tokio::test]
    async fn an_unknown_session_is_reported() {
        let mut store = MockEventStore::new();
        store
            .expect_read_stream_edges()
            .returning(|_, _| Ok(vec![]));
        let service = RevokeSession::new(Arc::new(store), view_expecting_record(0), clock());

        let result = service
            .execute(sid(), RevocationReason::Logout, &Metadata::default())
            .await;

        assert_eq!(result, Err(RevokeError::UnknownSession));
    }

    #[tokio::test]
    async fn a_store_failure_does_not_mark_the_session_revoked() {
        let mut store = MockEventStore::new();
        store
            .expect_read_stream_edges()
            .returning(|s, _| Ok(recorded(&s, &[logged_in()])));
        store
            .expect_append()
            .return_once(|_, _, _| Err(StoreError::Unavailable("io".into()).into()));
        let service = RevokeSession::new(Arc::new(store), view_expecting_record(0), clock());

        let result = service
            .execute(sid(), RevocationReason::Logout, &Metadata::default())
            .await;

        assert_eq!(
            result,
            Err(RevokeError::Store(StoreError::Unavailable("io".into())))
        );
    }
}
