//! A PostgreSQL database of the run's own, dropped at the end.

use authlog::database::Database;
use sqlx::{Connection, Executor, PgConnection};

/// The database `url` names, with a master key: on SQLite the default (`authlog.key` beside the
/// database file); on PostgreSQL one file in the system's temporary directory, shared by every
/// instance and every bench database (each is fresh, and takes the key it is first given).
pub fn database(url: impl AsRef<str>) -> Database {
    let url = url.as_ref();
    let database = Database::new(url);
    if url.starts_with("sqlite:") {
        database
    } else {
        database.with_master_key_file(std::env::temp_dir().join("authlog-bench-master.key"))
    }
}

pub struct TempDatabase {
    admin: String,
    name: String,
    pub url: String,
}

impl TempDatabase {
    pub async fn create() -> anyhow::Result<Self> {
        let admin = std::env::var("AUTHLOG_BENCH_POSTGRES_ADMIN_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("authlog_bench_{}", uuid::Uuid::now_v7().simple());
        let mut conn = PgConnection::connect(&admin).await?;
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await?;
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        Ok(Self { admin, name, url })
    }

    /// A URL for a fresh schema in the database, so rounds do not see each other's rows.
    pub async fn fresh_schema(&self) -> anyhow::Result<String> {
        let schema = format!("s_{}", uuid::Uuid::now_v7().simple());
        let mut conn = PgConnection::connect(&self.url).await?;
        conn.execute(format!("CREATE SCHEMA {schema}").as_str())
            .await?;
        Ok(format!("{}?options[search_path]={schema}", self.url))
    }

    pub async fn drop_database(self) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect(&self.admin).await?;
        conn.execute(format!("DROP DATABASE {} WITH (FORCE)", self.name).as_str())
            .await?;
        Ok(())
    }
}
