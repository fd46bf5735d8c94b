//! The audit trail: the event log, filtered, paged and redacted. The HTTP API and the CLI both
//! answer through this one service, so they cannot disagree.

use std::sync::Arc;

use authlog_domain::{Event, Role, Username};
use time::OffsetDateTime;

use crate::access::{Caller, Forbidden};
use crate::ports::{
    AuditFilter, EventLog, EventStore, Metadata, NameConcealer, StoreError, SubjectFilter,
};

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1_000;

/// What the caller asked for, as typed; [`Audit::query`] checks it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub username: Option<String>,
    /// Type names; each entry may itself be a comma-separated list.
    pub types: Vec<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    pub after: Option<u64>,
    pub limit: Option<u32>,
}

/// One event as audit shows it: secrets removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub position: u64,
    pub event_type: String,
    pub stream: String,
    pub recorded_at: OffsetDateTime,
    /// Whom the event concerns: a user's id, or the canonical name typed at a password check.
    pub subject: Option<String>,
    pub data: serde_json::Value,
    pub metadata: Metadata,
}

/// One page of events and where the next one starts (`None`: this was the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    pub events: Vec<AuditEntry>,
    pub next_after: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// The audit trail is for admins.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// A filter the caller got wrong; the text says which and how.
    #[error("{0}")]
    BadFilter(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct Audit {
    log: Arc<dyn EventLog>,
    /// Where a username filter finds its account.
    accounts: Arc<dyn EventStore>,
    /// How a name that is no account's was recorded.
    names: Arc<dyn NameConcealer>,
}

impl Audit {
    pub fn new(
        log: Arc<dyn EventLog>,
        accounts: Arc<dyn EventStore>,
        names: Arc<dyn NameConcealer>,
    ) -> Self {
        Self {
            log,
            accounts,
            names,
        }
    }

    /// The events matching `query`, in position order, for an admin or an auditor.
    ///
    /// # Errors
    /// [`AuditError::Forbidden`] when `caller` is neither; [`AuditError::BadFilter`] for
    /// an invalid username, an unknown type or a limit outside 1..=1000; a store failure.
    pub async fn query(&self, caller: &Caller, query: AuditQuery) -> Result<AuditPage, AuditError> {
        // The message stays `Admin access required`: clients written for the first release
        // match on it.
        caller.require_any(&[Role::admin(), Role::auditor()])?;
        let username = query.username.clone();
        let mut filter = parse(query)?;
        if let Some(raw) = username {
            filter.subject = Some(self.subject(&raw).await?);
        }
        let limit = filter.limit;
        let events = self.log.query(filter).await?;
        let next_after = (events.len() == limit as usize)
            .then(|| events.last().map(|e| e.position))
            .flatten();
        let events = events
            .into_iter()
            .map(|e| AuditEntry {
                position: e.position,
                event_type: e.event.event_type().to_owned(),
                stream: e.stream_id.as_str().to_owned(),
                recorded_at: e.recorded_at,
                subject: e.subject,
                data: e.event.audit_data(),
                metadata: e.metadata,
            })
            .collect();
        Ok(AuditPage { events, next_after })
    }

    /// The events a username filter asks for: the account's (its id, which its password
    /// checks carry too), and the checks older releases recorded under its name once the
    /// account existed (under this release's canonical form and the form of their time). For a
    /// name that is no account: the checks typed with it, concealed under each key still kept,
    /// and in clear from older releases.
    async fn subject(&self, raw: &str) -> Result<SubjectFilter, AuditError> {
        let name = Username::parse(raw)
            .map_err(|e| AuditError::BadFilter(format!("invalid username filter: {e}")))?;
        let account = self.accounts.find_account(name.canonical()).await?;
        let mut names = vec![name.canonical().to_owned(), name.legacy_canonical()];
        if account.is_none() {
            names.extend(self.names.recognisable(name.canonical()).await?);
        }
        names.extend(account.as_ref().and_then(|a| a.legacy_subject.clone()));
        names.sort_unstable();
        names.dedup();
        Ok(match account {
            Some(account) => SubjectFilter {
                ids: vec![crate::streams::subject_of(account.user_id)],
                names,
                names_from: account.registered_at,
            },
            None => SubjectFilter {
                ids: vec![],
                names,
                names_from: 0,
            },
        })
    }
}

/// Checks every filter but the username, which [`Audit::subject`] resolves.
fn parse(query: AuditQuery) -> Result<AuditFilter, AuditError> {
    let bad = |msg: String| AuditError::BadFilter(msg);
    let mut types = Vec::new();
    for name in query.types.iter().flat_map(|t| t.split(',')).map(str::trim) {
        if name.is_empty() {
            continue;
        }
        let Some(known) = Event::TYPES.iter().find(|t| **t == name) else {
            return Err(bad(format!(
                "unknown event type {name:?}; expected one of {}",
                Event::TYPES.join(", ")
            )));
        };
        types.push((*known).to_owned());
    }
    // `since` after `until` is an empty interval, not an error: the answer is simply no events
    // (and the HTTP schema, which cannot relate two parameters, stays exact).
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(bad(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    Ok(AuditFilter {
        subject: None,
        types,
        since: query.since,
        until: query.until,
        after: query.after.unwrap_or(0),
        limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockEventLog, MockNameConcealer};
    use crate::testing::{recorded, InMemoryEventStore};
    use authlog_domain::event::Registered;
    use authlog_domain::{PasswordHash, StreamId, UserId};
    use uuid::Uuid;

    fn registered() -> Event {
        Event::Registered(Registered {
            user_id: UserId::from_uuid(Uuid::from_u128(1)),
            username: Username::parse("Alice").unwrap().into(),
            password_hash: PasswordHash::from_phc("$argon2id$v=19$x".into()).into(),
        })
    }

    /// Conceals a name as `hidden:{name}`, one key kept.
    fn concealer() -> Arc<MockNameConcealer> {
        let mut names = MockNameConcealer::new();
        names
            .expect_recognisable()
            .returning(|name| Ok(vec![format!("hidden:{name}")]));
        Arc::new(names)
    }

    /// The name index: Alice registered at position 1.
    fn accounts() -> Arc<InMemoryEventStore> {
        let accounts = Arc::new(InMemoryEventStore::new());
        accounts.given(
            StreamId::user(UserId::from_uuid(Uuid::from_u128(1))),
            [registered()],
        );
        accounts
    }

    #[tokio::test]
    async fn a_name_that_is_no_account_asks_for_the_password_checks_typed_with_it() {
        let store = store_expecting(
            |f| {
                f.subject
                    == Some(SubjectFilter {
                        ids: vec![],
                        names: vec!["hidden:strasse".into(), "strasse".into(), "straße".into()],
                        names_from: 0,
                    })
            },
            0,
        );
        let query = AuditQuery {
            username: Some("Straße".into()),
            ..AuditQuery::default()
        };
        let page = Audit::new(Arc::new(store), accounts(), concealer())
            .query(&Caller::Operator, query)
            .await
            .unwrap();
        assert!(page.events.is_empty());
    }

    fn store_expecting(
        check: impl Fn(&AuditFilter) -> bool + Send + 'static,
        found: usize,
    ) -> MockEventLog {
        let mut store = MockEventLog::new();
        store.expect_query().withf(check).return_once(move |_| {
            Ok(recorded(
                &StreamId::from_stored("user:alice".into()),
                &vec![registered(); found],
            ))
        });
        store
    }

    #[tokio::test]
    async fn filters_are_normalised_before_they_reach_the_store() {
        let store = store_expecting(
            |f| {
                f.subject
                    == Some(SubjectFilter {
                        ids: vec![Uuid::from_u128(1).to_string()],
                        names: vec!["alice".into()],
                        names_from: 1,
                    })
                    && f.types == ["Registered", "LoggedIn", "Revoked"]
                    && f.after == 7
                    && f.limit == 100
            },
            1,
        );
        let query = AuditQuery {
            username: Some("ALICE".into()),
            types: vec!["Registered,LoggedIn".into(), " Revoked ".into()],
            after: Some(7),
            ..AuditQuery::default()
        };
        let page = Audit::new(Arc::new(store), accounts(), concealer())
            .query(&Caller::Operator, query)
            .await
            .unwrap();
        assert_eq!(page.events.len(), 1);
        assert_eq!(page.next_after, None);
    }

    #[tokio::test]
    async fn password_hashes_are_removed() {
        let store = store_expecting(|_| true, 1);
        let page = Audit::new(Arc::new(store), accounts(), concealer())
            .query(&Caller::Operator, AuditQuery::default())
            .await
            .unwrap();
        assert!(page.events[0].data.get("password_hash").is_none());
        assert_eq!(page.events[0].event_type, "Registered");
    }

    #[tokio::test]
    async fn a_full_page_points_at_the_next() {
        let store = store_expecting(|f| f.limit == 2, 2);
        let query = AuditQuery {
            limit: Some(2),
            ..AuditQuery::default()
        };
        let page = Audit::new(Arc::new(store), accounts(), concealer())
            .query(&Caller::Operator, query)
            .await
            .unwrap();
        assert_eq!(page.next_after, Some(2));
    }

    #[tokio::test]
    async fn a_caller_without_the_admin_role_is_refused_before_the_store_is_asked() {
        let mut store = MockEventLog::new();
        store.expect_query().never();
        let user = Caller::User(Arc::new(crate::testing::claims_of(&[])));
        let refused = Audit::new(Arc::new(store), accounts(), concealer())
            .query(&user, AuditQuery::default())
            .await;
        assert_eq!(
            refused,
            Err(AuditError::Forbidden(Forbidden {
                role: Role::admin()
            }))
        );
    }

    #[tokio::test]
    async fn an_auditor_reads_the_trail_as_an_admin_does() {
        let mut store = MockEventLog::new();
        store.expect_query().once().return_once(|_| Ok(vec![]));
        let auditor = Caller::User(Arc::new(crate::testing::claims_of(&[Role::auditor()])));
        let page = Audit::new(Arc::new(store), accounts(), concealer())
            .query(&auditor, AuditQuery::default())
            .await
            .unwrap();
        assert!(page.events.is_empty());
    }

    #[tokio::test]
    async fn bad_filters_are_refused_with_a_reason_and_never_reach_the_store() {
        let cases = [
            (
                AuditQuery {
                    username: Some("no spaces".into()),
                    ..AuditQuery::default()
                },
                "invalid username filter",
            ),
            (
                AuditQuery {
                    types: vec!["Hacked".into()],
                    ..AuditQuery::default()
                },
                "unknown event type \"Hacked\"",
            ),
            (
                AuditQuery {
                    limit: Some(0),
                    ..AuditQuery::default()
                },
                "limit must be between 1 and 1000",
            ),
            (
                AuditQuery {
                    limit: Some(1001),
                    ..AuditQuery::default()
                },
                "limit must be between 1 and 1000",
            ),
        ];
        for (query, message) in cases {
            let mut store = MockEventLog::new();
            store.expect_query().never();
            let error = Audit::new(Arc::new(store), accounts(), concealer())
                .query(&Caller::Operator, query)
                .await
                .unwrap_err();
            assert!(error.to_string().starts_with(message), "{error}");
        }
    }
}
