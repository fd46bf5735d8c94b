//! Live sessions per user, with their device, and the sessions revoked.
//!
//! `sessions` holds every session opened and neither revoked nor known to be past its expiry;
//! reads filter on the expiry, so when the tidy-up removes expired rows changes no answer.
//! `revoked_sessions` holds each revocation once, by the position of the event that made it: a
//! `Revoked` for one session, or a `SessionsRevoked` expanded into every session of the user
//! opened before it. It is what the in-memory revocation view is filled from at start (the
//! recent ones only) and what it follows.

use authlog_application::ports::RecordedEvent;
use authlog_domain::{Event, EventType};
use time::OffsetDateTime;

use super::batch::Staged;
use super::{at, Projection, Table, Target};
use crate::personal::Device;
use crate::rows::format_timestamp;
use crate::sql::Statement;

pub struct SessionsProjection;

/// A `sessions` row.
#[derive(Debug, sqlx::FromRow)]
pub struct SessionRow {
    pub session_id: String,
    pub user_id: String,
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
    pub generation: i64,
    pub user_agent: Option<String>,
    pub client_addr: Option<String>,
}

/// A `revoked_sessions` row.
#[derive(Debug, sqlx::FromRow)]
pub struct RevokedRow {
    pub session_id: String,
    pub user_id: String,
    pub reason: String,
    pub revoked_at: String,
    pub position: i64,
}

const TABLES: &[Table] = &[
    Table {
        name: "sessions",
        columns: "session_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, created_at TEXT NOT NULL, \
                  opened_at BIGINT NOT NULL, last_used_at TEXT NOT NULL, \
                  expires_at TEXT NOT NULL, generation BIGINT NOT NULL, user_agent TEXT, \
                  client_addr TEXT",
        indexes: &[
            ("by_user", "user_id, expires_at"),
            ("by_expiry", "expires_at"),
        ],
    },
    Table {
        name: "revoked_sessions",
        columns: "session_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, reason TEXT NOT NULL, \
                  revoked_at TEXT NOT NULL, position BIGINT NOT NULL",
        // By time with the id: a start reads the recent revocations from the index alone.
        indexes: &[
            ("by_position", "position"),
            ("by_time", "revoked_at, session_id"),
        ],
    },
];

impl Projection for SessionsProjection {
    fn name(&self) -> &'static str {
        "sessions"
    }

    fn version(&self) -> i64 {
        1
    }

    fn event_types(&self) -> &'static [EventType] {
        &[
            EventType::LoggedIn,
            EventType::Refreshed,
            EventType::Revoked,
            EventType::SessionsRevoked,
            EventType::UserErased,
        ]
    }

    fn tables(&self) -> &'static [Table] {
        TABLES
    }

    /// A session shows the device of its login.
    fn device(&self) -> Device {
        Device::Of(&[EventType::LoggedIn])
    }

    fn stage(&self, recorded: &RecordedEvent) -> Option<Staged> {
        let row = Staged {
            position: recorded.position,
            at: Some(format_timestamp(recorded.recorded_at)),
            ..Staged::default()
        };
        Some(match &recorded.event {
            Event::LoggedIn(e) => Staged {
                kind: "LoggedIn",
                session_id: Some(e.session_id.to_string()),
                user_id: Some(e.user_id.to_string()),
                expires_at: Some(format_timestamp(e.expires_at)),
                user_agent: recorded.metadata.user_agent.clone(),
                client_addr: recorded.metadata.client_addr.clone(),
                ..row
            },
            Event::Refreshed(e) => Staged {
                kind: "Refreshed",
                session_id: Some(e.session_id.to_string()),
                expires_at: Some(format_timestamp(e.expires_at)),
                generation: Some(i64::from(e.generation)),
                ..row
            },
            Event::Revoked(e) => Staged {
                kind: "Revoked",
                session_id: Some(e.session_id.to_string()),
                reason: Some(e.reason.as_str().to_owned()),
                ..row
            },
            Event::SessionsRevoked(e) => Staged {
                kind: "SessionsRevoked",
                user_id: Some(e.user_id.to_string()),
                reason: Some(e.reason.as_str().to_owned()),
                // No session has the empty id, so "but none" spares nothing.
                except_id: Some(e.except.map_or_else(String::new, |s| s.to_string())),
                ..row
            },
            Event::UserErased(e) => Staged {
                kind: "UserErased",
                user_id: Some(e.user_id.to_string()),
                ..row
            },
            _ => return None,
        })
    }

    fn apply(&self, target: Target, last_at: OffsetDateTime, out: &mut Vec<Statement>) {
        let sessions = target.of("sessions");
        let revoked = target.of("revoked_sessions");
        // Logins, then each session's latest rotation.
        out.push(Statement::new(
            format!(
                "INSERT INTO {sessions} (session_id, user_id, created_at, opened_at, \
                 last_used_at, expires_at, generation, user_agent, client_addr) \
                 SELECT session_id, user_id, at, position, at, expires_at, 1, user_agent, \
                 client_addr FROM projection_batch WHERE kind = 'LoggedIn' \
                 ON CONFLICT (session_id) DO NOTHING"
            ),
            vec![],
        ));
        out.push(Statement::new(
            format!(
                "UPDATE {sessions} SET last_used_at = b.at, expires_at = b.expires_at, \
                 generation = b.generation FROM projection_batch b \
                 WHERE b.kind = 'Refreshed' AND b.session_id = {sessions}.session_id \
                 AND b.position = (SELECT MAX(t.position) FROM projection_batch t \
                 WHERE t.kind = 'Refreshed' AND t.session_id = b.session_id)"
            ),
            vec![],
        ));
        // A session is revoked once, by the first event that ends it: its own `Revoked`, or a
        // `SessionsRevoked` of its user recorded after it was opened (but the one it spares).
        // A session already past its expiry ended by itself, and is not revoked.
        out.push(Statement::new(
            format!(
                "WITH candidates AS ( \
                     SELECT s.session_id, s.user_id, b.reason, b.at, b.position \
                     FROM projection_batch b JOIN {sessions} s ON s.session_id = b.session_id \
                     WHERE b.kind = 'Revoked' AND s.expires_at > b.at \
                     UNION ALL \
                     SELECT s.session_id, s.user_id, b.reason, b.at, b.position \
                     FROM projection_batch b JOIN {sessions} s ON s.user_id = b.user_id \
                     WHERE b.kind = 'SessionsRevoked' AND s.opened_at < b.position \
                     AND s.expires_at > b.at AND s.session_id <> b.except_id), \
                 first AS (SELECT session_id, MIN(position) AS position FROM candidates \
                     GROUP BY session_id) \
                 INSERT INTO {revoked} (session_id, user_id, reason, revoked_at, position) \
                 SELECT c.session_id, c.user_id, c.reason, c.at, c.position FROM candidates c \
                 JOIN first f ON f.session_id = c.session_id AND f.position = c.position"
            ),
            vec![],
        ));
        // Two deletes, each by an index (one condition with OR would scan the whole table).
        out.push(Statement::new(
            format!(
                "DELETE FROM {sessions} WHERE session_id IN \
                 (SELECT session_id FROM projection_batch WHERE kind = 'Revoked')"
            ),
            vec![],
        ));
        out.push(Statement::new(
            format!(
                "DELETE FROM {sessions} WHERE user_id IN \
                 (SELECT user_id FROM projection_batch WHERE kind = 'SessionsRevoked') \
                 AND EXISTS (SELECT 1 FROM projection_batch b WHERE b.kind = 'SessionsRevoked' \
                 AND b.user_id = {sessions}.user_id AND {sessions}.opened_at < b.position \
                 AND {sessions}.session_id <> b.except_id)"
            ),
            vec![],
        ));
        // An erased user's sessions were all revoked with the erasure; whatever is left of them
        // (their devices) goes.
        out.push(Statement::new(
            format!(
                "DELETE FROM {sessions} WHERE user_id IN \
                 (SELECT user_id FROM projection_batch WHERE kind = 'UserErased')"
            ),
            vec![],
        ));
        // What no read can see any more: sessions past their expiry (reads filter on it, so
        // when this runs changes no answer).
        out.push(Statement::new(
            format!("DELETE FROM {sessions} WHERE expires_at <= ?"),
            vec![at(last_at)],
        ));
    }
}
