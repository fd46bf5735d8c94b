//! The user directory: listing and searching accounts, and showing one with its live sessions
//! (`GET /admin/users`, `authlog user list|show`), from the users and sessions projections.

use std::sync::Arc;

use authlog_domain::{Role, UserId, Username};

use crate::access::{Caller, Forbidden};
use crate::ports::{Clock, ReadModels, SessionView, StoreError, UserQuery, UserStatus, UserView};
use crate::streams::UserRef;

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1_000;

/// What the caller asked for, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryQuery {
    /// A username prefix; case and compatibility forms do not matter.
    pub prefix: Option<String>,
    /// Only accounts of this status.
    pub status: Option<UserStatus>,
    /// The last user of the previous page.
    pub after: Option<UserId>,
    pub limit: Option<u32>,
}

/// One user with their live sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDetail {
    pub user: UserView,
    /// Oldest first.
    pub sessions: Vec<SessionView>,
}

/// One page of users, in order of registration, and where the next starts (`None`: last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryPage {
    pub users: Vec<UserView>,
    pub next_after: Option<UserId>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// A query the caller got wrong; the text says how.
    #[error("{0}")]
    BadQuery(String),
    /// No account has that name or id (or it was erased).
    #[error("User not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Directory {
    read_models: Arc<dyn ReadModels>,
    clock: Arc<dyn Clock>,
}

impl Directory {
    pub fn new(read_models: Arc<dyn ReadModels>, clock: Arc<dyn Clock>) -> Self {
        Self { read_models, clock }
    }

    /// The users matching `query`, for an admin.
    ///
    /// # Errors
    /// [`DirectoryError::Forbidden`] for a caller who is not an admin;
    /// [`DirectoryError::BadQuery`] for a prefix that cannot begin a username or a limit
    /// outside 1..=1000; a store failure.
    pub async fn list(
        &self,
        caller: &Caller,
        query: DirectoryQuery,
    ) -> Result<DirectoryPage, DirectoryError> {
        caller.require(&Role::admin())?;
        let prefix = query
            .prefix
            .filter(|p| !p.is_empty())
            .map(|raw| {
                Username::parse(&raw)
                    .map(|name| name.canonical().to_owned())
                    .map_err(|e| DirectoryError::BadQuery(format!("invalid username prefix: {e}")))
            })
            .transpose()?;
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(DirectoryError::BadQuery(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        let users = self
            .read_models
            .users(UserQuery {
                prefix,
                status: query.status,
                after: query.after,
                limit,
                ..UserQuery::default()
            })
            .await?;
        let next_after = (users.len() == limit as usize)
            .then(|| users.last().map(|u| u.user_id))
            .flatten();
        Ok(DirectoryPage { users, next_after })
    }

    /// The user `whom` names with their live sessions, for an admin.
    ///
    /// # Errors
    /// [`DirectoryError::Forbidden`] for a caller who is not an admin;
    /// [`DirectoryError::NotFound`] when no account is `whom`; a store failure.
    pub async fn show(
        &self,
        caller: &Caller,
        whom: UserRef<'_>,
    ) -> Result<UserDetail, DirectoryError> {
        caller.require(&Role::admin())?;
        let query = match whom {
            UserRef::Id(id) => UserQuery {
                user_id: Some(id),
                limit: 1,
                ..UserQuery::default()
            },
            UserRef::Name(name) => UserQuery {
                canonical: Some(name.canonical().to_owned()),
                limit: 1,
                ..UserQuery::default()
            },
        };
        let user = self
            .read_models
            .users(query)
            .await?
            .into_iter()
            .next()
            .ok_or(DirectoryError::NotFound)?;
        let sessions = self
            .read_models
            .live_sessions(user.user_id, self.clock.now())
            .await?;
        Ok(UserDetail { user, sessions })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{alice_id, alice_registered, claims_of, InMemoryEventStore};
    use authlog_domain::StreamId;

    #[tokio::test]
    async fn an_admin_finds_users_by_a_prefix_in_any_case() {
        let store = Arc::new(InMemoryEventStore::new());
        store.given(StreamId::user(alice_id()), [alice_registered()]);
        let page = Directory::new(store, crate::testing::clock())
            .list(
                &Caller::Operator,
                DirectoryQuery {
                    prefix: Some("ALI".into()),
                    ..DirectoryQuery::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.users.len(), 1);
        assert_eq!(page.users[0].username, "alice");
        assert_eq!(page.next_after, None);
    }

    #[tokio::test]
    async fn an_admin_sees_one_user_by_name_or_id_and_an_unknown_one_is_not_found() {
        let store = Arc::new(InMemoryEventStore::new());
        store.given(StreamId::user(alice_id()), [alice_registered()]);
        let directory = Directory::new(store, crate::testing::clock());
        let name = Username::parse("ALICE").unwrap();
        let by_name = directory
            .show(&Caller::Operator, UserRef::Name(&name))
            .await
            .unwrap();
        assert_eq!(by_name.user.user_id, alice_id());
        assert_eq!(by_name.user.status, UserStatus::Active);
        assert_eq!(by_name.sessions, vec![]);
        let by_id = directory
            .show(&Caller::Operator, UserRef::Id(alice_id()))
            .await
            .unwrap();
        assert_eq!(by_id, by_name);
        let nobody = Username::parse("bob").unwrap();
        assert_eq!(
            directory
                .show(&Caller::Operator, UserRef::Name(&nobody))
                .await,
            Err(DirectoryError::NotFound)
        );
    }

    #[tokio::test]
    async fn a_user_without_the_admin_role_is_refused() {
        let store = Arc::new(InMemoryEventStore::new());
        let user = Caller::User(Arc::new(claims_of(&[])));
        let refused = Directory::new(store, crate::testing::clock())
            .list(&user, DirectoryQuery::default())
            .await;
        assert!(matches!(refused, Err(DirectoryError::Forbidden(_))));
    }

    #[tokio::test]
    async fn a_limit_out_of_range_is_a_bad_query() {
        let store = Arc::new(InMemoryEventStore::new());
        let refused = Directory::new(store, crate::testing::clock())
            .list(
                &Caller::Operator,
                DirectoryQuery {
                    limit: Some(0),
                    ..DirectoryQuery::default()
                },
            )
            .await;
        assert!(matches!(refused, Err(DirectoryError::BadQuery(_))));
    }
}
