//! The user directory: every account with its roles, status, and last login, for listing and
//! searching (the admin API and `authlog user list`) without folding any stream. An erased
//! user's rows are deleted (and, on SQLite, zeroed in the file).

use authlog_application::ports::RecordedEvent;
use authlog_domain::{Event, EventType, Personal};
use time::OffsetDateTime;

use super::batch::Staged;
use super::{Projection, Table, Target};
use crate::rows::format_timestamp;
use crate::sql::Statement;

pub struct UsersProjection;

/// A `users` row.
#[derive(Debug, sqlx::FromRow)]
pub struct UserRow {
    pub user_id: String,
    pub username: String,
    pub status: String,
    pub created_at: String,
    pub last_login_at: Option<String>,
    pub email: Option<String>,
    pub email_verified: i64,
}

/// A `user_roles` row.
#[derive(Debug, sqlx::FromRow)]
pub struct RoleRow {
    pub user_id: String,
    pub role: String,
}

const TABLES: &[Table] = &[
    Table {
        name: "users",
        columns: "user_id TEXT PRIMARY KEY, username TEXT NOT NULL, \
                  canonical TEXT {bytewise} NOT NULL, \
                  status TEXT NOT NULL, created_at TEXT NOT NULL, last_login_at TEXT, \
                  email TEXT, email_canonical TEXT, email_verified BIGINT NOT NULL DEFAULT 0",
        // By name, in byte order: a prefix is a range of it. By status with the id: a page of
        // the disabled accounts reads that page alone. By address: a forgotten password asked
        // for by email.
        indexes: &[
            ("by_name", "canonical, user_id"),
            ("by_status", "status, user_id"),
            ("by_email", "email_canonical"),
        ],
    },
    Table {
        name: "user_roles",
        columns: "user_id TEXT NOT NULL, role TEXT NOT NULL, PRIMARY KEY (user_id, role)",
        indexes: &[],
    },
];

impl Projection for UsersProjection {
    fn name(&self) -> &'static str {
        "users"
    }

    /// Version 2: the status (`UserDisabled`, `UserEnabled`) and the email address
    /// (`EmailChanged`, `EmailVerified`), with their indexes. Version 3: the canonical name in
    /// byte order on PostgreSQL too, so that a prefix search reads a range of its index.
    fn version(&self) -> i64 {
        3
    }

    fn event_types(&self) -> &'static [EventType] {
        &[
            EventType::Registered,
            EventType::RoleGranted,
            EventType::RoleRevoked,
            EventType::LoggedIn,
            EventType::UserErased,
            EventType::UserDisabled,
            EventType::UserEnabled,
            EventType::EmailChanged,
            EventType::EmailVerified,
        ]
    }

    fn tables(&self) -> &'static [Table] {
        TABLES
    }

    fn stage(&self, recorded: &RecordedEvent) -> Option<Staged> {
        let row = Staged {
            position: recorded.position,
            at: Some(format_timestamp(recorded.recorded_at)),
            ..Staged::default()
        };
        Some(match &recorded.event {
            // A registration whose key is gone is an erased user: no one to list.
            Event::Registered(e) => match &e.username {
                Personal::Known(username) => Staged {
                    kind: "Registered",
                    user_id: Some(e.user_id.to_string()),
                    username: Some(username.as_str().to_owned()),
                    canonical: Some(username.canonical().to_owned()),
                    ..row
                },
                Personal::Erased => return None,
            },
            Event::UserErased(e) => Staged {
                kind: "UserErased",
                user_id: Some(e.user_id.to_string()),
                ..row
            },
            Event::RoleGranted(e) => Staged {
                kind: "RoleGranted",
                user_id: Some(e.user_id.to_string()),
                role: Some(e.role.as_str().to_owned()),
                ..row
            },
            Event::RoleRevoked(e) => Staged {
                kind: "RoleRevoked",
                user_id: Some(e.user_id.to_string()),
                role: Some(e.role.as_str().to_owned()),
                ..row
            },
            Event::LoggedIn(e) => Staged {
                kind: "LoggedIn",
                user_id: Some(e.user_id.to_string()),
                ..row
            },
            Event::UserDisabled(e) => Staged {
                kind: "UserDisabled",
                user_id: Some(e.user_id.to_string()),
                ..row
            },
            Event::UserEnabled(e) => Staged {
                kind: "UserEnabled",
                user_id: Some(e.user_id.to_string()),
                ..row
            },
            // The address in the name columns (as given, and case folded): a batch row has no
            // columns of its own for it. One whose key is gone belongs to an erased user.
            Event::EmailChanged(e) => match &e.email {
                Personal::Known(email) => Staged {
                    kind: "EmailChanged",
                    user_id: Some(e.user_id.to_string()),
                    username: Some(email.as_str().to_owned()),
                    canonical: Some(email.canonical()),
                    ..row
                },
                Personal::Erased => return None,
            },
            Event::EmailVerified(e) => Staged {
                kind: "EmailVerified",
                user_id: Some(e.user_id.to_string()),
                ..row
            },
            _ => return None,
        })
    }

    fn apply(&self, target: Target, _last_at: OffsetDateTime, out: &mut Vec<Statement>) {
        let users = target.of("users");
        let roles = target.of("user_roles");
        out.push(Statement::new(
            format!(
                "INSERT INTO {users} (user_id, username, canonical, status, created_at) \
                 SELECT user_id, username, canonical, 'active', at FROM projection_batch \
                 WHERE kind = 'Registered' ON CONFLICT (user_id) DO NOTHING"
            ),
            vec![],
        ));
        // Of a user's disables and enables, the last decides.
        out.push(Statement::new(
            format!(
                "UPDATE {users} SET status = CASE b.kind WHEN 'UserDisabled' THEN 'disabled'                  ELSE 'active' END FROM projection_batch b                  WHERE b.kind IN ('UserDisabled', 'UserEnabled') AND b.user_id = {users}.user_id                  AND b.position = (SELECT MAX(t.position) FROM projection_batch t                  WHERE t.kind IN ('UserDisabled', 'UserEnabled') AND t.user_id = b.user_id)"
            ),
            vec![],
        ));
        // The latest address of each user, unverified; then a verification after it.
        out.push(Statement::new(
            format!(
                "UPDATE {users} SET email = b.username, email_canonical = b.canonical, \
                 email_verified = 0 FROM projection_batch b \
                 WHERE b.kind = 'EmailChanged' AND b.user_id = {users}.user_id \
                 AND b.position = (SELECT MAX(t.position) FROM projection_batch t \
                 WHERE t.kind = 'EmailChanged' AND t.user_id = b.user_id)"
            ),
            vec![],
        ));
        out.push(Statement::new(
            format!(
                "UPDATE {users} SET email_verified = 1 FROM projection_batch b \
                 WHERE b.kind = 'EmailVerified' AND b.user_id = {users}.user_id \
                 AND b.position > COALESCE((SELECT MAX(t.position) FROM projection_batch t \
                 WHERE t.kind = 'EmailChanged' AND t.user_id = b.user_id), 0)"
            ),
            vec![],
        ));
        // Of a user's grants and revocations of one role, the last decides.
        let last_change = "b.position = (SELECT MAX(t.position) FROM projection_batch t \
             WHERE t.kind IN ('RoleGranted', 'RoleRevoked') AND t.user_id = b.user_id \
             AND t.role = b.role)";
        out.push(Statement::new(
            format!(
                "INSERT INTO {roles} (user_id, role) SELECT b.user_id, b.role \
                 FROM projection_batch b WHERE b.kind = 'RoleGranted' AND {last_change} \
                 ON CONFLICT (user_id, role) DO NOTHING"
            ),
            vec![],
        ));
        out.push(Statement::new(
            format!(
                "DELETE FROM {roles} WHERE (user_id, role) IN (SELECT b.user_id, b.role \
                 FROM projection_batch b WHERE b.kind = 'RoleRevoked' AND {last_change})"
            ),
            vec![],
        ));
        out.push(Statement::new(
            format!(
                "UPDATE {users} SET last_login_at = b.at FROM projection_batch b \
                 WHERE b.kind = 'LoggedIn' AND b.user_id = {users}.user_id \
                 AND b.position = (SELECT MAX(t.position) FROM projection_batch t \
                 WHERE t.kind = 'LoggedIn' AND t.user_id = b.user_id)"
            ),
            vec![],
        ));
        // An erased user leaves the directory (last: whatever the batch did for them before).
        for table in [&roles, &users] {
            out.push(Statement::new(
                format!(
                    "DELETE FROM {table} WHERE user_id IN \
                     (SELECT user_id FROM projection_batch WHERE kind = 'UserErased')"
                ),
                vec![],
            ));
        }
    }
}
