//! A batch of events staged in a temporary table, so that a projection applies it with a few
//! set-based statements instead of one or two statements per event.
//!
//! Per-event statements were exact but slow: each is a round trip to the database (on SQLite a
//! hand-off to the driver's thread), and a rebuild of a million events spent its time in them.
//! So a projection turns each event it reads into one row of `projection_batch` (the columns
//! below; what an event does not have is NULL), the rows go in with a few multi-row inserts, and
//! the projection's statements read the whole batch at once, in position order where order
//! matters.

use authlog_application::ports::StoreError;

use crate::rows::to_i64;
use crate::sql::{Arg, Statement, Tx};

/// The staged columns, in order.
const COLUMNS: [&str; 18] = [
    "position",
    "kind",
    "session_id",
    "user_id",
    "at",
    "expires_at",
    "generation",
    "user_agent",
    "client_addr",
    "reason",
    "except_id",
    "username",
    "canonical",
    "role",
    "stream_id",
    "request_id",
    "data",
    "event_type",
];

/// Rows per multi-row insert: 18 arguments a row, well under either database's limit.
const ROWS_PER_INSERT: usize = 200;

/// One event, as a projection stages it.
#[derive(Debug, Clone, Default)]
pub struct Staged {
    pub position: u64,
    pub kind: &'static str,
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    pub at: Option<String>,
    pub expires_at: Option<String>,
    pub generation: Option<i64>,
    pub user_agent: Option<String>,
    pub client_addr: Option<String>,
    pub reason: Option<String>,
    /// The session a `SessionsRevoked` spares; the empty string for none (no session has it).
    pub except_id: Option<String>,
    pub username: Option<String>,
    pub canonical: Option<String>,
    pub role: Option<String>,
    pub stream_id: Option<String>,
    pub request_id: Option<String>,
    /// The payload as the analysts' table shows it (JSON).
    pub data: Option<String>,
    /// The event's type, where `kind` (a projection's own name for what a row does) is not it.
    pub event_type: Option<String>,
}

impl Staged {
    fn args(&self, out: &mut Vec<Arg>) -> Result<(), StoreError> {
        out.push(to_i64(self.position)?.into());
        out.push(self.kind.into());
        for text in [&self.session_id, &self.user_id, &self.at, &self.expires_at] {
            out.push(text.clone().into());
        }
        out.push(self.generation.into());
        for text in [
            &self.user_agent,
            &self.client_addr,
            &self.reason,
            &self.except_id,
            &self.username,
            &self.canonical,
            &self.role,
            &self.stream_id,
            &self.request_id,
            &self.data,
            &self.event_type,
        ] {
            out.push(text.clone().into());
        }
        Ok(())
    }
}

/// Stages `rows` in `projection_batch` (made if this connection lacks it, and emptied first).
pub async fn stage(tx: &mut Tx, rows: &[Staged]) -> Result<(), StoreError> {
    let statements = [
        "CREATE TEMPORARY TABLE IF NOT EXISTS projection_batch (position BIGINT NOT NULL, \
         kind TEXT NOT NULL, session_id TEXT, user_id TEXT, at TEXT, expires_at TEXT, \
         generation BIGINT, user_agent TEXT, client_addr TEXT, reason TEXT, except_id TEXT, \
         username TEXT, canonical TEXT, role TEXT, stream_id TEXT, request_id TEXT, data TEXT, \
         event_type TEXT)",
        "CREATE INDEX IF NOT EXISTS projection_batch_by_session \
         ON projection_batch (kind, session_id, position)",
        "CREATE INDEX IF NOT EXISTS projection_batch_by_user \
         ON projection_batch (kind, user_id, role, position)",
        "DELETE FROM projection_batch",
    ];
    for sql in statements {
        tx.execute(&Statement::new(sql, vec![])).await?;
    }
    let row = format!("({})", vec!["?"; COLUMNS.len()].join(", "));
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut args = Vec::with_capacity(chunk.len() * COLUMNS.len());
        for staged in chunk {
            staged.args(&mut args)?;
        }
        let sql = format!(
            "INSERT INTO projection_batch ({}) VALUES {}",
            COLUMNS.join(", "),
            vec![row.as_str(); chunk.len()].join(", ")
        );
        tx.execute(&Statement::new(sql, args)).await?;
    }
    Ok(())
}
