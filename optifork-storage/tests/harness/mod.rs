//! Runs each storage test against both backends: SQLite (a fresh file in a temporary
//! directory) and PostgreSQL (a fresh database `optifork_test_<random>`, dropped afterwards).
//!
//! PostgreSQL is found at `OPTIFORK_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When it cannot be reached the PostgreSQL
//! variant of each test prints why and passes, unless `CI` is set: then it fails.

use std::future::Future;
use std::panic::{AssertUnwindSafe, resume_unwind};
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::FutureExt;
use optifork_storage::Storage;
use serde_json::Value as Json;

/// Where the tests find PostgreSQL unless `OPTIFORK_TEST_PG_URL` says otherwise.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// One test's database.
pub struct Ctx {
    /// The URL `optifork_storage::open` takes.
    pub url: String,
    backend: Backend,
}

enum Backend {
    Sqlite { path: PathBuf },
    Postgres,
}

/// A flag's row as stored, read around the storage crate.
#[derive(Debug, PartialEq)]
pub struct RawFlag {
    pub is_enabled: bool,
    pub rollout_percentage: f64,
    pub targeting_rules: Json,
    pub extra: Json,
}

impl Ctx {
    /// Opens (and migrates) the storage.
    pub async fn open(&self) -> Arc<dyn Storage> {
        match optifork_storage::open(&self.url).await {
            Ok(storage) => storage,
            Err(e) => panic!("opening {}: {e}", self.url),
        }
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// The versions in `schema_migrations`, in order.
    pub async fn applied_migrations(&self) -> Vec<i64> {
        match &self.backend {
            Backend::Sqlite { path } => {
                let conn = rusqlite::Connection::open(path).expect("open sqlite");
                let mut stmt = conn
                    .prepare("SELECT version FROM schema_migrations ORDER BY version")
                    .expect("prepare");
                stmt.query_map([], |row| row.get(0))
                    .expect("query")
                    .collect::<Result<_, _>>()
                    .expect("rows")
            }
            Backend::Postgres => pg_client(&self.url)
                .await
                .query(
                    "SELECT version FROM schema_migrations ORDER BY version",
                    &[],
                )
                .await
                .expect("query")
                .iter()
                .map(|row| row.get(0))
                .collect(),
        }
    }

    /// The number of rows in a table.
    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match &self.backend {
            Backend::Sqlite { path } => rusqlite::Connection::open(path)
                .expect("open sqlite")
                .query_row(&sql, [], |row| row.get(0))
                .expect("count"),
            Backend::Postgres => pg_client(&self.url)
                .await
                .query_one(&sql, &[])
                .await
                .expect("count")
                .get(0),
        }
    }

    /// The `extra` column of an entity of `production`.
    pub async fn raw_extra(&self, table: &str, name: &str) -> Json {
        let sql = format!("SELECT extra FROM {table} WHERE environment = 'production' AND name = ");
        match &self.backend {
            Backend::Sqlite { path } => {
                let text: String = rusqlite::Connection::open(path)
                    .expect("open sqlite")
                    .query_row(&format!("{sql}?1"), [name], |row| row.get(0))
                    .expect("extra");
                serde_json::from_str(&text).expect("extra is JSON text")
            }
            Backend::Postgres => pg_client(&self.url)
                .await
                .query_one(&format!("{sql}$1"), &[&name])
                .await
                .expect("extra")
                .get(0),
        }
    }

    /// A flag's seed columns and `extra`, in `production`.
    pub async fn raw_flag(&self, name: &str) -> RawFlag {
        let sql = "SELECT is_enabled, rollout_percentage, targeting_rules, extra FROM flags \
                   WHERE environment = 'production' AND name = ";
        match &self.backend {
            Backend::Sqlite { path } => rusqlite::Connection::open(path)
                .expect("open sqlite")
                .query_row(&format!("{sql}?1"), [name], |row| {
                    let rules: String = row.get(2)?;
                    let extra: String = row.get(3)?;
                    Ok(RawFlag {
                        is_enabled: row.get(0)?,
                        rollout_percentage: row.get(1)?,
                        targeting_rules: serde_json::from_str(&rules).expect("JSON text"),
                        extra: serde_json::from_str(&extra).expect("JSON text"),
                    })
                })
                .expect("flag row"),
            Backend::Postgres => {
                let row = pg_client(&self.url)
                    .await
                    .query_one(&format!("{sql}$1"), &[&name])
                    .await
                    .expect("flag row");
                RawFlag {
                    is_enabled: row.get(0),
                    rollout_percentage: row.get(1),
                    targeting_rules: row.get(2),
                    extra: row.get(3),
                }
            }
        }
    }
}

async fn pg_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    client
}

/// Runs `test` with a fresh SQLite file, removed afterwards.
pub async fn with_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = std::env::temp_dir().join(format!(
        "optifork-storage-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    let path = dir.join("optifork.db");
    let ctx = Ctx {
        url: format!("sqlite://{}", path.display()),
        backend: Backend::Sqlite { path },
    };
    let result = AssertUnwindSafe(test(ctx)).catch_unwind().await;
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(panic) = result {
        resume_unwind(panic);
    }
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{base}/{database}{query}")
}

/// Runs `test` with a fresh PostgreSQL database, dropped afterwards; skips (or fails, in
/// CI) when PostgreSQL cannot be reached.
pub async fn with_postgres<F, Fut>(test: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let admin_url = std::env::var("OPTIFORK_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.into());
    let admin = match tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            client
        }
        Err(e) => {
            let cause = std::error::Error::source(&e).map_or(String::new(), |c| format!(": {c}"));
            let reason = format!("PostgreSQL at {admin_url} is unreachable ({e}{cause})");
            if ci() {
                panic!("{reason}, and CI is set: the PostgreSQL tests must run in CI");
            }
            eprintln!(
                "SKIPPED: {reason}. Start PostgreSQL or set OPTIFORK_TEST_PG_URL to run the \
                 PostgreSQL tests (with CI set, this is a failure)."
            );
            return;
        }
    };
    let database = format!("optifork_test_{}", uuid::Uuid::new_v4().simple());
    admin
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .await
        .expect("create the test database");
    let ctx = Ctx {
        url: with_database(&admin_url, &database),
        backend: Backend::Postgres,
    };
    let result = AssertUnwindSafe(test(ctx)).catch_unwind().await;
    let dropped = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        .await;
    if let Err(panic) = result {
        resume_unwind(panic);
    }
    dropped.expect("drop the test database");
}

#[test]
fn urls_get_their_database_replaced() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "t"),
        "postgres://postgres@127.0.0.1:5432/t"
    );
    assert_eq!(
        with_database("postgresql://u:p@h/db?sslmode=disable", "t"),
        "postgresql://u:p@h/t?sslmode=disable"
    );
    assert_eq!(
        with_database("postgres://h:5432", "t"),
        "postgres://h:5432/t"
    );
}
