//! SQL written once for both backends.
//!
//! The two databases agree on nearly all the SQL authlog needs (`INSERT ... ON CONFLICT`,
//! `DELETE ... RETURNING`, `INSERT ... SELECT`); they differ in placeholders (`?` against `$1`)
//! and in the connection types sqlx gives them. So a [`Statement`] is written with `?` and plain
//! arguments, and [`Pool`] and [`Tx`] run it on either backend, numbering the placeholders for
//! PostgreSQL. The projections and the read models are written this way.

use authlog_application::ports::StoreError;
use sqlx::postgres::{PgArguments, PgPool, PgRow};
use sqlx::sqlite::{SqliteArguments, SqlitePool, SqliteRow};
use sqlx::{Arguments, FromRow, Postgres, Sqlite, Transaction};

use crate::rows::unavailable;

/// One argument of a statement. A NULL has a type too: PostgreSQL will not put a text NULL in a
/// BIGINT column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
    Bytes(Vec<u8>),
}

impl From<&str> for Arg {
    fn from(text: &str) -> Self {
        Self::Text(Some(text.to_owned()))
    }
}

impl From<String> for Arg {
    fn from(text: String) -> Self {
        Self::Text(Some(text))
    }
}

impl From<Option<String>> for Arg {
    fn from(text: Option<String>) -> Self {
        Self::Text(text)
    }
}

impl From<i64> for Arg {
    fn from(n: i64) -> Self {
        Self::Int(Some(n))
    }
}

impl From<Vec<u8>> for Arg {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Bytes(bytes)
    }
}

impl From<Option<i64>> for Arg {
    fn from(n: Option<i64>) -> Self {
        Self::Int(n)
    }
}

/// A statement with `?` placeholders and its arguments, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub args: Vec<Arg>,
}

impl Statement {
    pub fn new(sql: impl Into<String>, args: Vec<Arg>) -> Self {
        Self {
            sql: sql.into(),
            args,
        }
    }

    /// The SQL with PostgreSQL's numbered placeholders. The statements never hold a `?` inside
    /// a literal, so every `?` is a placeholder.
    fn numbered(&self) -> String {
        let mut sql = String::with_capacity(self.sql.len() + 8);
        let mut n = 0;
        for c in self.sql.chars() {
            if c == '?' {
                n += 1;
                sql.push('$');
                sql.push_str(&n.to_string());
            } else {
                sql.push(c);
            }
        }
        sql
    }

    fn sqlite_args(&self) -> Result<SqliteArguments<'static>, StoreError> {
        let mut args = SqliteArguments::default();
        for arg in &self.args {
            match arg {
                Arg::Text(text) => args.add(text.clone()),
                Arg::Int(n) => args.add(*n),
                Arg::Bytes(bytes) => args.add(bytes.clone()),
            }
            .map_err(|e| StoreError::Unavailable(format!("cannot bind an argument: {e}")))?;
        }
        Ok(args)
    }

    fn postgres_args(&self) -> Result<PgArguments, StoreError> {
        let mut args = PgArguments::default();
        for arg in &self.args {
            match arg {
                Arg::Text(text) => args.add(text.clone()),
                Arg::Int(n) => args.add(*n),
                Arg::Bytes(bytes) => args.add(bytes.clone()),
            }
            .map_err(|e| StoreError::Unavailable(format!("cannot bind an argument: {e}")))?;
        }
        Ok(args)
    }
}

/// A row type both backends can read.
pub trait Row: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}

impl<T> Row for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{}

/// The connection pool of one of the two backends.
#[derive(Clone)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    /// The rows `statement` selects.
    pub async fn fetch<T: Row>(&self, statement: &Statement) -> Result<Vec<T>, StoreError> {
        match self {
            Self::Sqlite(pool) => {
                sqlx::query_as_with::<Sqlite, T, _>(&statement.sql, statement.sqlite_args()?)
                    .fetch_all(pool)
                    .await
            }
            Self::Postgres(pool) => {
                sqlx::query_as_with::<Postgres, T, _>(
                    &statement.numbered(),
                    statement.postgres_args()?,
                )
                .fetch_all(pool)
                .await
            }
        }
        .map_err(unavailable)
    }

    /// Runs `statement` in a transaction of its own; answers how many rows it changed.
    pub async fn execute(&self, statement: &Statement) -> Result<u64, StoreError> {
        match self {
            Self::Sqlite(pool) => sqlx::query_with(&statement.sql, statement.sqlite_args()?)
                .execute(pool)
                .await
                .map(|done| done.rows_affected()),
            Self::Postgres(pool) => {
                sqlx::query_with(&statement.numbered(), statement.postgres_args()?)
                    .execute(pool)
                    .await
                    .map(|done| done.rows_affected())
            }
        }
        .map_err(unavailable)
    }

    /// After an erasure: on SQLite, copies the WAL into the database and truncates it, so that
    /// the pages the erasure zeroed (`secure_delete`) leave no older copy in the WAL file. A
    /// reader in the middle of a long read can hold the checkpoint off; it is tried for a
    /// second, then left to SQLite's own checkpoints (and said). PostgreSQL keeps dead rows until
    /// VACUUM: nothing to do here.
    pub async fn scrub(&self) {
        let Self::Sqlite(pool) = self else {
            return;
        };
        for _ in 0..20 {
            let done: Result<(i64, i64, i64), sqlx::Error> =
                sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                    .fetch_one(pool)
                    .await;
            match done {
                Ok((0, _, _)) => return,
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot checkpoint the WAL after an erasure");
                    return;
                }
            }
        }
        tracing::warn!(
            "the WAL could not be truncated after an erasure (readers kept it busy); \
             SQLite's next checkpoint will"
        );
    }

    /// Begins a transaction that excludes other writers of the projections: SQLite's
    /// `BEGIN IMMEDIATE` takes the database's write lock at once; on PostgreSQL the rows each
    /// projector locks do that.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        match self {
            Self::Sqlite(pool) => pool.begin_with("BEGIN IMMEDIATE").await.map(Tx::Sqlite),
            Self::Postgres(pool) => pool.begin().await.map(Tx::Postgres),
        }
        .map_err(unavailable)
    }
}

/// A transaction on one of the two backends.
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    /// Runs `statement`; answers how many rows it changed.
    pub async fn execute(&mut self, statement: &Statement) -> Result<u64, StoreError> {
        match self {
            Self::Sqlite(tx) => tx.run(statement).await,
            Self::Postgres(tx) => tx.run(statement).await,
        }
    }

    /// The rows `statement` selects.
    pub async fn fetch<T: Row>(&mut self, statement: &Statement) -> Result<Vec<T>, StoreError> {
        match self {
            Self::Sqlite(tx) => {
                sqlx::query_as_with::<Sqlite, T, _>(&statement.sql, statement.sqlite_args()?)
                    .fetch_all(&mut **tx)
                    .await
            }
            Self::Postgres(tx) => {
                sqlx::query_as_with::<Postgres, T, _>(
                    &statement.numbered(),
                    statement.postgres_args()?,
                )
                .fetch_all(&mut **tx)
                .await
            }
        }
        .map_err(unavailable)
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(tx) => tx.commit().await,
            Self::Postgres(tx) => tx.commit().await,
        }
        .map_err(unavailable)
    }
}

/// A transaction a [`Statement`] can run in: the projector's [`Tx`], and the writers' own
/// connections' transactions, so that what both writers write is written once.
pub trait Executes: Send {
    /// Runs `statement`; answers how many rows it changed.
    fn run(
        &mut self,
        statement: &Statement,
    ) -> impl std::future::Future<Output = Result<u64, StoreError>> + Send;
}

impl Executes for Transaction<'_, Sqlite> {
    async fn run(&mut self, statement: &Statement) -> Result<u64, StoreError> {
        sqlx::query_with(&statement.sql, statement.sqlite_args()?)
            .execute(&mut **self)
            .await
            .map(|done| done.rows_affected())
            .map_err(unavailable)
    }
}

impl Executes for Transaction<'_, Postgres> {
    async fn run(&mut self, statement: &Statement) -> Result<u64, StoreError> {
        sqlx::query_with(&statement.numbered(), statement.postgres_args()?)
            .execute(&mut **self)
            .await
            .map(|done| done.rows_affected())
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        let statement = Statement::new(
            "UPDATE t SET a = ? WHERE b = ? AND c = ?",
            vec![Arg::Int(Some(1)), Arg::Text(None), "x".into()],
        );
        assert_eq!(
            statement.numbered(),
            "UPDATE t SET a = $1 WHERE b = $2 AND c = $3"
        );
    }
}
