//! The analysts' table `audit_events`: one row per event, its common fields flattened, its
//! personal data open, for SQL.
//!
//! It used to be a view over `events`; but the personal fields there are sealed under each
//! user's key, which the database cannot open. So it is a read model the projector keeps, open,
//! and erasure cleans: when it applies a `UserErased`, the user's username, client addresses
//! and user agents become `[erased]` in every row of theirs (on SQLite with `secure_delete`,
//! so the file keeps no copy). `data` is the payload without its personal fields and without
//! password hashes, which never leave the service.

use authlog_application::ports::RecordedEvent;
use authlog_domain::{Event, EventType, Personal, UserId, ERASED};
use time::OffsetDateTime;

use super::batch::Staged;
use super::{Projection, Table, Target};
use crate::personal::Device;
use crate::rows::format_timestamp;
use crate::sql::{Arg, Statement};

pub struct AuditProjection;

const TABLES: &[Table] = &[Table {
    name: "audit_events",
    columns: "position BIGINT PRIMARY KEY, recorded_at TEXT NOT NULL, event_type TEXT NOT NULL, \
              username TEXT, stream_id TEXT NOT NULL, user_id TEXT, session_id TEXT, \
              reason TEXT, role TEXT, client_addr TEXT, user_agent TEXT, request_id TEXT, \
              data TEXT NOT NULL",
    indexes: &[
        ("by_user", "user_id, event_type"),
        ("by_type", "event_type, position"),
        ("by_time", "recorded_at"),
    ],
}];

impl Projection for AuditProjection {
    fn name(&self) -> &'static str {
        "audit"
    }

    fn version(&self) -> i64 {
        1
    }

    /// Every type, known or not.
    fn event_types(&self) -> &'static [EventType] {
        &[]
    }

    /// A row for every event, for analysts: it may lag the log by a moment, which saves the
    /// writers a transaction's worth of statements on most commits.
    fn eager(&self) -> bool {
        false
    }

    fn tables(&self) -> &'static [Table] {
        TABLES
    }

    fn device(&self) -> Device {
        Device::All
    }

    fn stage(&self, recorded: &RecordedEvent) -> Option<Staged> {
        let event = &recorded.event;
        let subject_user = recorded
            .subject
            .as_deref()
            .and_then(|s| s.parse::<UserId>().ok());
        let user_id = event.user_id().or(subject_user);
        // The account's name, from its registration; a password check of a name that is no
        // account's shows the (concealed) name it was recorded under.
        let username = match event {
            Event::Registered(e) => Some(match &e.username {
                Personal::Known(name) => name.as_str().to_owned(),
                Personal::Erased => ERASED.to_owned(),
            }),
            _ if user_id.is_none() => recorded.subject.clone(),
            _ => None,
        };
        let mut data = event.audit_data();
        let field = |name: &str| data.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        let (session_id, reason, role) = (field("session_id"), field("reason"), field("role"));
        if let Some(fields) = data.as_object_mut() {
            for personal in Event::personal_fields(event.event_type()) {
                fields.remove(*personal);
            }
        }
        Some(Staged {
            position: recorded.position,
            // A registration has a kind of its own so that the other rows find their account's
            // name through the batch's (kind, user_id) index, not by scanning the batch.
            kind: if matches!(event, Event::Registered(_)) {
                "Named"
            } else {
                "Audited"
            },
            at: Some(format_timestamp(recorded.recorded_at)),
            user_id: user_id.map(|u| u.to_string()),
            username,
            session_id,
            reason,
            role,
            user_agent: recorded.metadata.user_agent.clone(),
            client_addr: recorded.metadata.client_addr.clone(),
            stream_id: Some(recorded.stream_id.as_str().to_owned()),
            request_id: recorded.metadata.request_id.clone(),
            event_type: Some(event.event_type().to_owned()),
            data: Some(data.to_string()),
            ..Staged::default()
        })
    }

    fn apply(&self, target: Target, _last_at: OffsetDateTime, out: &mut Vec<Statement>) {
        let audit = target.of("audit_events");
        // Every row names its account: its own name (a registration, or a password check of a
        // name that is no account), else its registration's, in this batch or already a row.
        // (`WHERE true`: SQLite would read `ON CONFLICT` after a bare `FROM` as a join's `ON`.)
        out.push(Statement::new(
            format!(
                "INSERT INTO {audit} (position, recorded_at, event_type, username, stream_id, \
                 user_id, session_id, reason, role, client_addr, user_agent, request_id, data) \
                 SELECT b.position, b.at, b.event_type, COALESCE(b.username, \
                     (SELECT r.username FROM projection_batch r \
                      WHERE r.kind = 'Named' AND r.user_id = b.user_id), \
                     (SELECT a.username FROM {audit} a \
                      WHERE a.user_id = b.user_id AND a.event_type = 'Registered')), \
                 b.stream_id, b.user_id, b.session_id, b.reason, b.role, b.client_addr, \
                 b.user_agent, b.request_id, b.data FROM projection_batch b \
                 WHERE true ON CONFLICT (position) DO NOTHING"
            ),
            vec![],
        ));
        // Erasure: what was open of the user is no longer.
        let erased = Arg::from(ERASED);
        out.push(Statement::new(
            format!(
                "UPDATE {audit} SET username = ?, \
                 client_addr = CASE WHEN client_addr IS NULL THEN NULL ELSE ? END, \
                 user_agent = CASE WHEN user_agent IS NULL THEN NULL ELSE ? END \
                 WHERE user_id IN (SELECT user_id FROM projection_batch \
                 WHERE event_type = 'UserErased')"
            ),
            vec![erased.clone(), erased.clone(), erased],
        ));
    }
}
