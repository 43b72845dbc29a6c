//! SQLite storage: the embedded default backend (one file, nothing to install).
//!
//! rusqlite is synchronous, so every database call runs in `tokio::task::spawn_blocking`.
//! One writer connection sits behind an async mutex (SQLite has one writer at a time anyway);
//! reads use a small pool of reader connections, which WAL mode lets run alongside the writer.
//! An in-memory database (`:memory:`) is private to its connection, so there every call uses
//! the writer connection.
//!
//! Connections run with `journal_mode = WAL`, `synchronous = NORMAL` (a committed transaction
//! survives a crash of the process; a power loss may lose the last ones), `foreign_keys = ON`
//! and a 5 s `busy_timeout` (another process writing to the same file makes us wait, not
//! fail). Tables are `STRICT`; JSON is stored as TEXT and timestamps as INTEGER microseconds
//! since the Unix epoch (UTC). The schema is created by versioned migrations
//! (`schema_migrations`), each in its own `BEGIN IMMEDIATE` transaction.
//!
//! A write runs in one `BEGIN IMMEDIATE` transaction, which holds the database's write lock:
//! writers are serialized, readers are not blocked.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params_from_iter};
use serde_json::Value as Json;
use tokio::sync::OwnedMutexGuard;

use crate::entity::{self, Cols, Columns, Op, Plan, Row, seed_columns};
use crate::{
    ApiKey, AuditEntry, AuditFilter, BatchOutcome, EntityKind, EntityRef, Environment, Event,
    Exposure, ExposureFilter, ExposureRecord, KeyScope, NewApiKey, NewAudit, Record, Storage,
    StoreError, StoredRuleset, Timestamp, VariantCount, WriteOutcome, WriteRequest, page_limit,
    to_json,
};
use crate::{ExperimentAggregates, MetricAggregate, VariantExposure};

/// How long a connection waits for another one's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle reader connections kept open.
const MAX_IDLE_READERS: usize = 4;
/// Rows per multi-row `INSERT` of exposures and events.
const CHUNK: usize = 64;

/// The migrations, in order. Never edit one that has shipped: add the next.
const MIGRATIONS: &[(i64, &str)] = &[(1, SCHEMA_V1), (2, SCHEMA_V2), (3, SCHEMA_V3)];

/// Version 3: batch ids are pruned by age ([`crate::Storage::prune_batch_ids`]).
const SCHEMA_V3: &str = "CREATE INDEX ingested_batches_received ON ingested_batches (received_at);";

/// Version 2: one row per (environment, experiment, user), maintained as exposures arrive, so
/// that experiment results cost one row per user instead of one per exposure.
const SCHEMA_V2: &str = r#"
CREATE TABLE experiment_users (
    environment TEXT NOT NULL,
    experiment TEXT NOT NULL,
    user_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    first_at INTEGER NOT NULL,
    multiple INTEGER NOT NULL DEFAULT 0,
    exposures INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (environment, experiment, user_id)
) STRICT;
INSERT INTO experiment_users (environment, experiment, user_id, variant, first_at, multiple, exposures)
SELECT environment, experiment_name, user_id, MIN(variant), MIN("timestamp"),
       MIN(variant) <> MAX(variant), COUNT(*)
FROM exposures
WHERE experiment_name IS NOT NULL AND variant IS NOT NULL
GROUP BY environment, experiment_name, user_id;
"#;

const SCHEMA_V1: &str = r#"
CREATE TABLE environments (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    version     INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
) STRICT;
INSERT INTO environments (name, version, created_at)
    VALUES ('production', 0, CAST(unixepoch('subsec') * 1000000 AS INTEGER));

CREATE TABLE flags (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    environment         TEXT NOT NULL REFERENCES environments (name),
    name                TEXT NOT NULL,
    description         TEXT NOT NULL DEFAULT '',
    is_enabled          INTEGER NOT NULL DEFAULT 0,
    rollout_percentage  REAL NOT NULL DEFAULT 100,
    targeting_rules     TEXT NOT NULL DEFAULT '{}',
    extra               TEXT NOT NULL DEFAULT '{}',
    version             INTEGER NOT NULL DEFAULT 1,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    UNIQUE (environment, name)
) STRICT;

CREATE TABLE configs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    environment  TEXT NOT NULL REFERENCES environments (name),
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    config_data  TEXT NOT NULL DEFAULT '{}',
    is_active    INTEGER NOT NULL DEFAULT 1,
    extra        TEXT NOT NULL DEFAULT '{}',
    version      INTEGER NOT NULL DEFAULT 1,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (environment, name)
) STRICT;

CREATE TABLE segments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    environment  TEXT NOT NULL REFERENCES environments (name),
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    criteria     TEXT NOT NULL DEFAULT '{}',
    is_active    INTEGER NOT NULL DEFAULT 1,
    extra        TEXT NOT NULL DEFAULT '{}',
    version      INTEGER NOT NULL DEFAULT 1,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (environment, name)
) STRICT;

CREATE TABLE experiments (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    environment      TEXT NOT NULL REFERENCES environments (name),
    name             TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    flag_id          INTEGER REFERENCES flags (id),
    variants         TEXT NOT NULL DEFAULT '[]',
    traffic_splits   TEXT,
    targeting_rules  TEXT NOT NULL DEFAULT '{}',
    is_active        INTEGER NOT NULL DEFAULT 0,
    extra            TEXT NOT NULL DEFAULT '{}',
    version          INTEGER NOT NULL DEFAULT 1,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (environment, name)
) STRICT;
CREATE INDEX experiments_flag_id ON experiments (flag_id);

CREATE TABLE exposures (
    id               INTEGER PRIMARY KEY,
    environment      TEXT NOT NULL,
    flag_name        TEXT,
    experiment_name  TEXT,
    user_id          TEXT NOT NULL,
    variant          TEXT,
    enabled          INTEGER,
    user_context     TEXT,
    "timestamp"      INTEGER NOT NULL
) STRICT;
CREATE INDEX exposures_flag ON exposures (environment, flag_name, "timestamp");
CREATE INDEX exposures_experiment
    ON exposures (environment, experiment_name, user_id, "timestamp");

CREATE TABLE events (
    id           INTEGER PRIMARY KEY,
    environment  TEXT NOT NULL,
    event_name   TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    value        REAL,
    properties   TEXT,
    "timestamp"  INTEGER NOT NULL
) STRICT;
CREATE INDEX events_event ON events (environment, event_name, user_id, "timestamp");

CREATE TABLE ingested_batches (
    batch_id     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (batch_id, kind)
) STRICT, WITHOUT ROWID;

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    scope        TEXT NOT NULL CHECK (scope IN ('admin', 'sdk')),
    environment  TEXT REFERENCES environments (name),
    secret_hash  BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
) STRICT;

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    entity_type  TEXT NOT NULL,
    entity_name  TEXT NOT NULL,
    environment  TEXT,
    "before"     TEXT,
    "after"      TEXT
) STRICT;
CREATE INDEX audit_log_entity ON audit_log (entity_type, entity_name, id);
CREATE INDEX audit_log_environment ON audit_log (environment, id);
"#;

/// Storage in an SQLite database file (or in memory).
pub struct SqliteStorage {
    inner: Arc<Inner>,
}

struct Inner {
    /// The one connection that writes.
    writer: Arc<tokio::sync::Mutex<Connection>>,
    /// The database file; `None` in memory, where everything uses the writer.
    path: Option<PathBuf>,
    /// Idle reader connections.
    readers: Mutex<Vec<Connection>>,
}

impl SqliteStorage {
    /// Opens (creating if needed) the database at `path`, `:memory:` for a private in-memory
    /// database, and applies pending migrations.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStorage, StoreError> {
        let path = path.as_ref().to_owned();
        let memory = path.as_os_str() == ":memory:";
        let (conn, path) = blocking(move || {
            let mut conn = open_connection(&path, memory, false)?;
            migrate(&mut conn)?;
            Ok::<_, StoreError>((conn, (!memory).then_some(path)))
        })
        .await??;
        Ok(SqliteStorage {
            inner: Arc::new(Inner {
                writer: Arc::new(tokio::sync::Mutex::new(conn)),
                path,
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Runs `f` on the writer connection.
    async fn with_writer<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let mut writer = Writer(self.inner.writer.clone().lock_owned().await);
        blocking(move || {
            reset(&writer.0);
            f(&mut writer.0)
        })
        .await?
    }

    /// Runs `f` on a reader connection (the writer, in memory).
    async fn with_reader<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        if self.inner.path.is_none() {
            return self.with_writer(move |conn| f(conn)).await;
        }
        let inner = self.inner.clone();
        blocking(move || {
            let conn = inner.take_reader()?;
            reset(&conn);
            let result = f(&conn);
            inner.put_reader(conn);
            result
        })
        .await?
    }
}

impl Inner {
    fn take_reader(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self.readers.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(conn);
        }
        match &self.path {
            Some(path) => open_connection(path, false, true),
            None => Err(StoreError::Backend(
                "SQLite: no reader connections for an in-memory database".into(),
            )),
        }
    }

    fn put_reader(&self, conn: Connection) {
        if let Ok(mut idle) = self.readers.lock()
            && idle.len() < MAX_IDLE_READERS
        {
            idle.push(conn);
        }
    }
}

async fn blocking<R, F>(f: F) -> Result<R, StoreError>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend(format!("SQLite task failed: {e}")))
}

fn open_connection(path: &Path, memory: bool, reader: bool) -> Result<Connection, StoreError> {
    let conn = if memory {
        Connection::open_in_memory()
    } else if reader {
        Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
    } else {
        Connection::open(path)
    }
    .map_err(|e| StoreError::Backend(format!("SQLite: opening {}: {e}", path.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sq_err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(sq_err)?;
    if !memory {
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(sq_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "SQLite: could not switch {} to WAL mode (it is in {mode} mode)",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sq_err)?;
    }
    if reader {
        conn.pragma_update(None, "query_only", "ON")
            .map_err(sq_err)?;
    }
    Ok(conn)
}

/// Ends a transaction a failed or abandoned call left open.
fn reset(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version     INTEGER PRIMARY KEY,
            applied_at  INTEGER NOT NULL
        ) STRICT",
    )
    .map_err(sq_err)?;
    for (version, sql) in MIGRATIONS {
        // Checked inside the write lock: another process may have migrated meanwhile.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sq_err)?;
        let applied: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
                [version],
                |row| row.get(0),
            )
            .map_err(sq_err)?;
        if applied {
            continue;
        }
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Backend(format!("SQLite: migration {version}: {e}")))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            [*version, micros(crate::now())],
        )
        .map_err(sq_err)?;
        tx.commit().map_err(sq_err)?;
    }
    Ok(())
}

fn sq_err(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("SQLite: {e}"))
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_extended_error_code(),
        Some(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
    )
}

/// Maps a unique violation to `Conflict { what }`, anything else to `Backend`.
fn conflict_or(what: impl FnOnce() -> String) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| {
        if is_unique_violation(&e) {
            StoreError::Conflict { what: what() }
        } else {
            sq_err(e)
        }
    }
}

fn micros(at: Timestamp) -> i64 {
    at.timestamp_micros()
}

fn json_text(value: &Json) -> Value {
    Value::Text(value.to_string())
}

fn json_text_opt(value: Option<&Json>) -> Value {
    value.map_or(Value::Null, json_text)
}

fn text_opt(value: Option<&str>) -> Value {
    value.map_or(Value::Null, |s| Value::Text(s.to_owned()))
}

/// A timestamp column.
fn ts(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Timestamp> {
    let value: i64 = row.get(index)?;
    crate::micros_to_timestamp(value).ok_or(rusqlite::Error::IntegralValueOutOfRange(index, value))
}

/// A nullable timestamp column.
fn ts_opt(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Option<Timestamp>> {
    match row.get::<_, Option<i64>>(index)? {
        None => Ok(None),
        Some(value) => crate::micros_to_timestamp(value)
            .map(Some)
            .ok_or(rusqlite::Error::IntegralValueOutOfRange(index, value)),
    }
}

fn env_not_found(environment: &str) -> StoreError {
    StoreError::NotFound {
        what: format!("environment {environment:?}"),
    }
}

/// The environment's version, or `NotFound`.
fn env_version(conn: &Connection, environment: &str) -> Result<i64, StoreError> {
    conn.query_row(
        "SELECT version FROM environments WHERE name = ?1",
        [environment],
        |row| row.get(0),
    )
    .optional()
    .map_err(sq_err)?
    .ok_or_else(|| env_not_found(environment))
}

fn select_entities(kind: EntityKind, condition: &str) -> String {
    entity::select_entities(kind, condition, "NULL")
}

fn entity_row(kind: EntityKind, row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let cols = match kind {
        EntityKind::Flag => Cols::Flag {
            is_enabled: row.get(9)?,
            rollout_percentage: row.get(10)?,
            targeting_rules: row.get(11)?,
        },
        EntityKind::Config => Cols::Config {
            config_data: row.get(9)?,
            is_active: row.get(10)?,
        },
        EntityKind::Segment => Cols::Segment {
            criteria: row.get(9)?,
            is_active: row.get(10)?,
        },
        EntityKind::Experiment => Cols::Experiment {
            flag_id: row.get(9)?,
            flag: row.get(8)?,
            variants: row.get(10)?,
            traffic_splits: row.get(11)?,
            targeting_rules: row.get(12)?,
            is_active: row.get(13)?,
        },
    };
    Ok(Row {
        id: row.get(0)?,
        environment: row.get(1)?,
        version: row.get(5)?,
        created_at: ts(row, 6)?,
        updated_at: ts(row, 7)?,
        columns: Columns {
            name: row.get(2)?,
            description: row.get(3)?,
            extra: row.get(4)?,
            cols,
        },
    })
}

/// The seed columns' values, in [`seed_columns`] order.
fn seed_values(cols: &Cols) -> Vec<Value> {
    let boolean = |b: bool| Value::Integer(i64::from(b));
    match cols {
        Cols::Flag {
            is_enabled,
            rollout_percentage,
            targeting_rules,
        } => vec![
            boolean(*is_enabled),
            Value::Real(*rollout_percentage),
            json_text(targeting_rules),
        ],
        Cols::Config {
            config_data,
            is_active,
        } => vec![json_text(config_data), boolean(*is_active)],
        Cols::Segment {
            criteria,
            is_active,
        } => vec![json_text(criteria), boolean(*is_active)],
        Cols::Experiment {
            flag_id,
            variants,
            traffic_splits,
            targeting_rules,
            is_active,
            ..
        } => vec![
            flag_id.map_or(Value::Null, Value::Integer),
            json_text(variants),
            json_text_opt(traffic_splits.as_ref()),
            json_text(targeting_rules),
            boolean(*is_active),
        ],
    }
}

fn query_entities(
    conn: &Connection,
    kind: EntityKind,
    condition: &str,
    params: &[Value],
) -> Result<Vec<Row>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&select_entities(kind, condition))
        .map_err(sq_err)?;
    let rows = stmt
        .query_map(params_from_iter(params), |row| entity_row(kind, row))
        .map_err(sq_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sq_err)?;
    Ok(rows)
}

/// All entity rows of an environment: flags, configs, segments, experiments, in id order.
fn load_rows(conn: &Connection, environment: &str) -> Result<Vec<Row>, StoreError> {
    let mut rows = Vec::new();
    for kind in EntityKind::ALL {
        rows.extend(query_entities(
            conn,
            kind,
            "t.environment = ?1",
            &[Value::Text(environment.to_owned())],
        )?);
    }
    Ok(rows)
}

fn insert_audit(conn: &Connection, audit: NewAudit<'_>) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit_log \
         (at, actor, action, entity_type, entity_name, environment, \"before\", \"after\") \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params_from_iter([
            Value::Integer(micros(audit.at)),
            Value::Text(audit.actor.to_owned()),
            Value::Text(audit.action.to_owned()),
            Value::Text(audit.entity_type.to_owned()),
            Value::Text(audit.entity_name.to_owned()),
            text_opt(audit.environment),
            json_text_opt(audit.before.as_ref()),
            json_text_opt(audit.after.as_ref()),
        ]))
    })
    .map_err(sq_err)?;
    Ok(())
}

/// Executes a planned write inside the open transaction (without committing).
fn execute_plan(
    conn: &Connection,
    environment: &str,
    kind: EntityKind,
    actor: &str,
    plan: Plan,
) -> Result<WriteOutcome, StoreError> {
    let now = crate::now();
    let table = kind.plural();
    let seeds = seed_columns(kind);
    let id = match &plan.op {
        Op::Insert(columns) => {
            let placeholders: Vec<String> =
                (0..seeds.len()).map(|i| format!("?{}", i + 6)).collect();
            let sql = format!(
                "INSERT INTO {table} (environment, name, description, extra, created_at, \
                 updated_at, version, {}) VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1, {})",
                seeds.join(", "),
                placeholders.join(", ")
            );
            let mut params = vec![
                Value::Text(environment.to_owned()),
                Value::Text(columns.name.clone()),
                Value::Text(columns.description.clone()),
                json_text(&columns.extra),
                Value::Integer(micros(now)),
            ];
            params.extend(seed_values(&columns.cols));
            conn.execute(&sql, params_from_iter(params))
                .map_err(conflict_or(|| format!("{kind} {:?}", columns.name)))?;
            conn.last_insert_rowid()
        }
        Op::Update { id, columns } => {
            let assignments: Vec<String> = seeds
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c} = ?{}", i + 6))
                .collect();
            let sql = format!(
                "UPDATE {table} SET name = ?2, description = ?3, extra = ?4, updated_at = ?5, \
                 version = version + 1, {} WHERE id = ?1",
                assignments.join(", ")
            );
            let mut params = vec![
                Value::Integer(*id),
                Value::Text(columns.name.clone()),
                Value::Text(columns.description.clone()),
                json_text(&columns.extra),
                Value::Integer(micros(now)),
            ];
            params.extend(seed_values(&columns.cols));
            conn.execute(&sql, params_from_iter(params))
                .map_err(conflict_or(|| format!("{kind} {:?}", columns.name)))?;
            *id
        }
        Op::Delete { id } => {
            conn.execute(&format!("DELETE FROM {table} WHERE id = ?1"), [id])
                .map_err(sq_err)?;
            *id
        }
    };
    let after = plan.after(environment, id, now);
    let entity_name = after
        .as_ref()
        .or(plan.before.as_ref())
        .map(|r| r.name.clone())
        .unwrap_or_default();
    insert_audit(
        conn,
        NewAudit {
            at: now,
            actor,
            action: plan.action(),
            entity_type: kind.as_str(),
            entity_name: &entity_name,
            environment: Some(environment),
            before: plan.before.as_ref().map(to_json).transpose()?,
            after: after.as_ref().map(to_json).transpose()?,
        },
    )?;
    let ruleset_version: i64 = conn
        .query_row(
            "UPDATE environments SET version = version + 1 WHERE name = ?1 RETURNING version",
            [environment],
            |row| row.get(0),
        )
        .map_err(sq_err)?;
    Ok(WriteOutcome {
        after,
        before: plan.before,
        ruleset_version,
    })
}

fn scope_str(scope: KeyScope) -> &'static str {
    match scope {
        KeyScope::Admin => "admin",
        KeyScope::Sdk => "sdk",
    }
}

const API_KEY_COLUMNS: &str = "id, name, scope, environment, secret_hash, created_at, revoked_at";

fn api_key(row: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKey> {
    let scope: String = row.get(2)?;
    let scope = match scope.as_str() {
        "admin" => KeyScope::Admin,
        "sdk" => KeyScope::Sdk,
        _ => {
            return Err(rusqlite::Error::InvalidColumnType(
                2,
                format!("scope {scope:?}"),
                rusqlite::types::Type::Text,
            ));
        }
    };
    Ok(ApiKey {
        id: row.get(0)?,
        name: row.get(1)?,
        scope,
        environment: row.get(3)?,
        secret_hash: row.get(4)?,
        created_at: ts(row, 5)?,
        revoked_at: ts_opt(row, 6)?,
    })
}

/// Records a batch id inside the transaction; `false` if it was already there.
fn claim_batch(conn: &Connection, batch_id: Option<&str>, kind: &str) -> Result<bool, StoreError> {
    let Some(batch_id) = batch_id else {
        return Ok(true);
    };
    let inserted = conn
        .execute(
            "INSERT INTO ingested_batches (batch_id, kind, received_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT DO NOTHING",
            (batch_id, kind, micros(crate::now())),
        )
        .map_err(sq_err)?;
    Ok(inserted == 1)
}

/// Inserts rows `CHUNK` at a time with one prepared multi-row `INSERT`, the rest one by one.
fn insert_rows<T>(
    conn: &Connection,
    insert: &str,
    one_row: &str,
    rows: &[T],
    values: fn(&T) -> Vec<Value>,
) -> Result<(), StoreError> {
    let mut chunks = rows.chunks_exact(CHUNK);
    if rows.len() >= CHUNK {
        let mut many = conn
            .prepare_cached(&format!("{insert} {}", vec![one_row; CHUNK].join(", ")))
            .map_err(sq_err)?;
        for chunk in &mut chunks {
            many.execute(params_from_iter(chunk.iter().flat_map(values)))
                .map_err(sq_err)?;
        }
    }
    let mut one = conn
        .prepare_cached(&format!("{insert} {one_row}"))
        .map_err(sq_err)?;
    for row in chunks.remainder() {
        one.execute(params_from_iter(values(row))).map_err(sq_err)?;
    }
    Ok(())
}

const EXPOSURE_INSERT: &str = "INSERT INTO exposures (environment, flag_name, \
    experiment_name, user_id, variant, enabled, user_context, \"timestamp\") VALUES";

fn exposure_values(row: &Exposure) -> Vec<Value> {
    vec![
        Value::Text(row.environment.clone()),
        text_opt(row.flag_name.as_deref()),
        text_opt(row.experiment_name.as_deref()),
        Value::Text(row.user_id.clone()),
        text_opt(row.variant.as_deref()),
        row.enabled
            .map_or(Value::Null, |b| Value::Integer(i64::from(b))),
        json_text_opt(row.user_context.as_ref()),
        Value::Integer(micros(row.timestamp)),
    ]
}

fn event_values(row: &Event) -> Vec<Value> {
    vec![
        Value::Text(row.environment.clone()),
        Value::Text(row.event_name.clone()),
        Value::Text(row.user_id.clone()),
        row.value.map_or(Value::Null, Value::Real),
        json_text_opt(row.properties.as_ref()),
        Value::Integer(micros(row.timestamp)),
    ]
}

/// Writes a batch in one transaction, idempotently when it has an id.
/// Folds a batch's assignment changes into `experiment_users`.
fn upsert_assignments(
    conn: &Connection,
    deltas: &[crate::AssignmentDelta],
) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO experiment_users (environment, experiment, user_id, variant, first_at, multiple, exposures) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (environment, experiment, user_id) DO UPDATE SET \
               multiple = experiment_users.multiple OR excluded.multiple \
                          OR experiment_users.variant <> excluded.variant, \
               first_at = MIN(experiment_users.first_at, excluded.first_at), \
               exposures = experiment_users.exposures + excluded.exposures",
        )
        .map_err(sq_err)?;
    for d in deltas {
        stmt.execute((
            &d.environment,
            &d.experiment,
            &d.user_id,
            &d.variant,
            micros(d.first_at),
            d.multiple,
            d.exposures,
        ))
        .map_err(sq_err)?;
    }
    Ok(())
}

fn insert_batch<T>(
    conn: &mut Connection,
    batch_id: Option<&str>,
    kind: &str,
    rows: &[T],
    insert: (&str, &str),
    values: fn(&T) -> Vec<Value>,
) -> Result<BatchOutcome, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sq_err)?;
    if !claim_batch(&tx, batch_id, kind)? {
        return Ok(BatchOutcome::Duplicate);
    }
    insert_rows(&tx, insert.0, insert.1, rows, values)?;
    tx.commit().map_err(sq_err)?;
    Ok(BatchOutcome::Inserted(rows.len()))
}

/// Appends `AND <condition> ?N` to a query, binding `value`.
fn and(sql: &mut String, params: &mut Vec<Value>, condition: &str, value: Value) {
    params.push(value);
    sql.push_str(&format!(" AND {condition} ?{}", params.len()));
}

/// Starts the write transaction, then loads the environment's ruleset.
fn begin_write(conn: &Connection, environment: &str) -> Result<StoredRuleset, StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(sq_err)?;
    let version = env_version(conn, environment)?;
    let rows = load_rows(conn, environment)?;
    entity::build_ruleset(environment, version, rows)
}

/// Phase two of a write: execute the plan and commit, or roll back.
fn finish_write(
    conn: &Connection,
    environment: &str,
    kind: EntityKind,
    actor: &str,
    plan: Result<Plan, StoreError>,
) -> Result<WriteOutcome, StoreError> {
    let result = plan
        .and_then(|plan| execute_plan(conn, environment, kind, actor, plan))
        .and_then(|outcome| {
            conn.execute_batch("COMMIT").map_err(sq_err)?;
            Ok(outcome)
        });
    if result.is_err() {
        reset(conn);
    }
    result
}

/// The locked writer connection; rolls back whatever transaction is left open when dropped
/// (a write abandoned by its caller, a phase that failed).
struct Writer(OwnedMutexGuard<Connection>);

impl Drop for Writer {
    fn drop(&mut self) {
        reset(&self.0);
    }
}

#[async_trait]
impl Storage for SqliteStorage {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn prune_batch_ids(&self, older_than: Timestamp) -> Result<u64, StoreError> {
        self.with_writer(move |conn| {
            conn.execute(
                "DELETE FROM ingested_batches WHERE received_at < ?1",
                [micros(older_than)],
            )
            .map(|n| n as u64)
            .map_err(sq_err)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.with_reader(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(sq_err))
            .await
    }

    async fn list_environments(&self) -> Result<Vec<Environment>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT name, version, created_at FROM environments ORDER BY name")
                .map_err(sq_err)?;
            stmt.query_map([], |row| {
                Ok(Environment {
                    name: row.get(0)?,
                    version: row.get(1)?,
                    created_at: ts(row, 2)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(sq_err)
        })
        .await
    }

    async fn create_environment(&self, name: &str, actor: &str) -> Result<Environment, StoreError> {
        crate::check_environment_name(name)?;
        let name = name.to_owned();
        let actor = actor.to_owned();
        self.with_writer(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sq_err)?;
            let now = crate::now();
            tx.execute(
                "INSERT INTO environments (name, version, created_at) VALUES (?1, 0, ?2)",
                (&name, micros(now)),
            )
            .map_err(conflict_or(|| format!("environment {name:?}")))?;
            let environment = Environment {
                name: name.clone(),
                version: 0,
                created_at: now,
            };
            insert_audit(
                &tx,
                NewAudit {
                    at: now,
                    actor: &actor,
                    action: "create",
                    entity_type: "environment",
                    entity_name: &name,
                    environment: Some(&name),
                    before: None,
                    after: Some(to_json(&environment)?),
                },
            )?;
            tx.commit().map_err(sq_err)?;
            Ok(environment)
        })
        .await
    }

    async fn ruleset_version(&self, environment: &str) -> Result<i64, StoreError> {
        let environment = environment.to_owned();
        self.with_reader(move |conn| env_version(conn, &environment))
            .await
    }

    async fn load_ruleset(&self, environment: &str) -> Result<StoredRuleset, StoreError> {
        let environment = environment.to_owned();
        self.with_reader(move |conn| {
            // One read transaction: one snapshot of the database.
            let tx = conn.unchecked_transaction().map_err(sq_err)?;
            let version = env_version(&tx, &environment)?;
            let rows = load_rows(&tx, &environment)?;
            tx.commit().map_err(sq_err)?;
            entity::build_ruleset(&environment, version, rows)
        })
        .await
    }

    async fn get(
        &self,
        kind: EntityKind,
        environment: &str,
        target: &EntityRef,
    ) -> Result<Record, StoreError> {
        let environment = environment.to_owned();
        let target = target.clone();
        self.with_reader(move |conn| {
            let (condition, key) = match &target {
                EntityRef::Id(id) => ("t.environment = ?1 AND t.id = ?2", Value::Integer(*id)),
                EntityRef::Name(name) => (
                    "t.environment = ?1 AND t.name = ?2",
                    Value::Text(name.clone()),
                ),
            };
            let rows = query_entities(conn, kind, condition, &[Value::Text(environment), key])?;
            rows.into_iter()
                .next()
                .map(Row::into_record)
                .ok_or_else(|| StoreError::NotFound {
                    what: format!("{kind} {target}"),
                })
        })
        .await
    }

    async fn list(&self, kind: EntityKind, environment: &str) -> Result<Vec<Record>, StoreError> {
        let environment = environment.to_owned();
        self.with_reader(move |conn| {
            let tx = conn.unchecked_transaction().map_err(sq_err)?;
            env_version(&tx, &environment)?;
            let rows = query_entities(
                &tx,
                kind,
                "t.environment = ?1",
                &[Value::Text(environment.clone())],
            )?;
            Ok(rows.into_iter().map(Row::into_record).collect())
        })
        .await
    }

    async fn write(&self, request: WriteRequest<'_>) -> Result<WriteOutcome, StoreError> {
        // Two blocking phases around the validator (which is not 'static, so it runs here):
        // begin + load, then execute + commit. The writer stays locked throughout; a write
        // abandoned by its caller rolls back when the `Writer` is dropped.
        let environment = request.environment.to_owned();
        let writer = Writer(self.inner.writer.clone().lock_owned().await);
        let (writer, current) = blocking(move || {
            reset(&writer.0);
            let current = begin_write(&writer.0, &environment);
            if current.is_err() {
                reset(&writer.0);
            }
            (writer, current)
        })
        .await?;
        let current = current?;
        let plan = entity::plan_write(&request, &current);
        let environment = request.environment.to_owned();
        let actor = request.actor.to_owned();
        let kind = request.kind;
        blocking(move || finish_write(&writer.0, &environment, kind, &actor, plan)).await?
    }

    async fn insert_exposures(
        &self,
        batch_id: Option<&str>,
        rows: &[Exposure],
    ) -> Result<BatchOutcome, StoreError> {
        if rows.is_empty() && batch_id.is_none() {
            return Ok(BatchOutcome::Inserted(0));
        }
        let batch_id = batch_id.map(str::to_owned);
        let rows = rows.to_vec();
        self.with_writer(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sq_err)?;
            if !claim_batch(&tx, batch_id.as_deref(), "exposures")? {
                return Ok(BatchOutcome::Duplicate);
            }
            insert_rows(
                &tx,
                EXPOSURE_INSERT,
                "(?, ?, ?, ?, ?, ?, ?, ?)",
                &rows,
                exposure_values,
            )?;
            upsert_assignments(&tx, &crate::assignment_deltas(&rows))?;
            tx.commit().map_err(sq_err)?;
            Ok(BatchOutcome::Inserted(rows.len()))
        })
        .await
    }

    async fn insert_events(
        &self,
        batch_id: Option<&str>,
        rows: &[Event],
    ) -> Result<BatchOutcome, StoreError> {
        if rows.is_empty() && batch_id.is_none() {
            return Ok(BatchOutcome::Inserted(0));
        }
        let batch_id = batch_id.map(str::to_owned);
        let rows = rows.to_vec();
        self.with_writer(move |conn| {
            insert_batch(
                conn,
                batch_id.as_deref(),
                "events",
                &rows,
                (
                    "INSERT INTO events (environment, event_name, user_id, value, properties, \
                     \"timestamp\") VALUES",
                    "(?, ?, ?, ?, ?, ?)",
                ),
                event_values,
            )
        })
        .await
    }

    async fn list_exposures(
        &self,
        environment: &str,
        filter: &ExposureFilter,
    ) -> Result<Vec<ExposureRecord>, StoreError> {
        let mut sql = String::from(
            "SELECT id, environment, flag_name, experiment_name, user_id, variant, enabled, \
             user_context, \"timestamp\" FROM exposures WHERE environment = ?1",
        );
        let mut params = vec![Value::Text(environment.to_owned())];
        if let Some(flag) = &filter.flag_name {
            and(
                &mut sql,
                &mut params,
                "flag_name =",
                Value::Text(flag.clone()),
            );
        }
        if let Some(experiment) = &filter.experiment_name {
            let value = Value::Text(experiment.clone());
            and(&mut sql, &mut params, "experiment_name =", value);
        }
        if let Some(since) = filter.since {
            let value = Value::Integer(micros(since));
            and(&mut sql, &mut params, "\"timestamp\" >=", value);
        }
        if let Some(until) = filter.until {
            let value = Value::Integer(micros(until));
            and(&mut sql, &mut params, "\"timestamp\" <", value);
        }
        if let Some(before) = filter.before_id {
            and(&mut sql, &mut params, "id <", Value::Integer(before));
        }
        sql.push_str(&format!(
            " ORDER BY id DESC LIMIT {}",
            page_limit(filter.limit)
        ));
        self.with_reader(move |conn| {
            let mut stmt = conn.prepare(&sql).map_err(sq_err)?;
            stmt.query_map(params_from_iter(params), |row| {
                Ok(ExposureRecord {
                    id: row.get(0)?,
                    exposure: Exposure {
                        environment: row.get(1)?,
                        flag_name: row.get(2)?,
                        experiment_name: row.get(3)?,
                        user_id: row.get(4)?,
                        variant: row.get(5)?,
                        enabled: row.get(6)?,
                        user_context: row.get(7)?,
                        timestamp: ts(row, 8)?,
                    },
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(sq_err)
        })
        .await
    }

    async fn experiment_exposure_counts(
        &self,
        environment: &str,
        experiment: &str,
    ) -> Result<Vec<VariantCount>, StoreError> {
        let environment = environment.to_owned();
        let experiment = experiment.to_owned();
        self.with_reader(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT variant, COUNT(*), COUNT(DISTINCT user_id) FROM exposures \
                     WHERE environment = ?1 AND experiment_name = ?2 AND variant IS NOT NULL \
                     GROUP BY variant ORDER BY variant",
                )
                .map_err(sq_err)?;
            stmt.query_map((&environment, &experiment), |row| {
                Ok(VariantCount {
                    variant: row.get(0)?,
                    exposures: row.get(1)?,
                    users: row.get(2)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(sq_err)
        })
        .await
    }

    async fn experiment_aggregates(
        &self,
        environment: &str,
        experiment: &str,
        events: &[String],
    ) -> Result<ExperimentAggregates, StoreError> {
        let environment = environment.to_owned();
        let experiment = experiment.to_owned();
        let events = events.to_vec();
        self.with_reader(move |conn| {
            // One snapshot for both queries.
            let tx = conn.unchecked_transaction().map_err(sq_err)?;
            let mut out = ExperimentAggregates::default();
            {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT CASE WHEN NOT multiple THEN variant END AS v, COUNT(*), SUM(exposures) \
                         FROM experiment_users WHERE environment = ?1 AND experiment = ?2 \
                         GROUP BY v ORDER BY v",
                    )
                    .map_err(sq_err)?;
                let rows = stmt
                    .query_map((&environment, &experiment), |row| {
                        Ok((row.get::<_, Option<String>>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
                    })
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(sq_err)?;
                for (variant, users, exposures) in rows {
                    match variant {
                        Some(variant) => out.variants.push(VariantExposure { variant, users, exposures }),
                        None => out.multi_variant_users = users,
                    }
                }
            }
            if !events.is_empty() {
                let placeholders: Vec<String> = (0..events.len()).map(|i| format!("?{}", i + 3)).collect();
                let sql = format!(
                    "WITH first AS ( \
                       SELECT user_id, first_at, variant FROM experiment_users \
                       WHERE environment = ?1 AND experiment = ?2 AND NOT multiple), \
                     per_user AS ( \
                       SELECT f.variant, e.event_name, e.user_id, \
                         COUNT(*) FILTER (WHERE e.timestamp >= f.first_at) AS cnt, \
                         SUM(e.value) FILTER (WHERE e.timestamp >= f.first_at) AS total, \
                         COUNT(e.value) FILTER (WHERE e.timestamp >= f.first_at) AS valued, \
                         COUNT(*) FILTER (WHERE e.timestamp < f.first_at) AS before \
                       FROM events e JOIN first f ON f.user_id = e.user_id \
                       WHERE e.environment = ?1 AND e.event_name IN ({}) \
                       GROUP BY f.variant, e.event_name, e.user_id) \
                     SELECT variant, event_name, \
                       COUNT(*) FILTER (WHERE cnt > 0), \
                       CAST(COALESCE(SUM(total), 0) AS REAL), CAST(COALESCE(SUM(total * total), 0) AS REAL), \
                       CAST(COALESCE(SUM(cnt), 0) AS REAL), CAST(COALESCE(SUM(cnt * cnt), 0) AS REAL), \
                       COUNT(*) FILTER (WHERE valued > 0), \
                       CAST(COALESCE(SUM(total / valued) FILTER (WHERE valued > 0), 0) AS REAL), \
                       CAST(COALESCE(SUM((total / valued) * (total / valued)) FILTER (WHERE valued > 0), 0) AS REAL), \
                       COALESCE(SUM(before), 0) \
                     FROM per_user GROUP BY variant, event_name ORDER BY variant, event_name",
                    placeholders.join(", ")
                );
                let mut params: Vec<&dyn rusqlite::ToSql> = vec![&environment, &experiment];
                for e in &events {
                    params.push(e);
                }
                let mut stmt = tx.prepare(&sql).map_err(sq_err)?;
                let rows = stmt
                    .query_map(params.as_slice(), |row| {
                        Ok(MetricAggregate {
                            variant: row.get(0)?,
                            event: row.get(1)?,
                            converted_users: row.get(2)?,
                            value_sum: row.get(3)?,
                            value_sum_sq: row.get(4)?,
                            count_sum: row.get(5)?,
                            count_sum_sq: row.get(6)?,
                            valued_users: row.get(7)?,
                            mean_sum: row.get(8)?,
                            mean_sum_sq: row.get(9)?,
                            events_before_exposure: row.get(10)?,
                        })
                    })
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(sq_err)?;
                out.metrics = rows;
            }
            tx.commit().map_err(sq_err)?;
            Ok(out)
        })
        .await
    }

    async fn create_api_key(&self, key: &NewApiKey, actor: &str) -> Result<ApiKey, StoreError> {
        let key = key.clone();
        let actor = actor.to_owned();
        self.with_writer(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sq_err)?;
            if let Some(environment) = &key.environment {
                env_version(&tx, environment)?;
            }
            let now = crate::now();
            tx.execute(
                "INSERT INTO api_keys (id, name, scope, environment, secret_hash, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                (
                    &key.id,
                    &key.name,
                    scope_str(key.scope),
                    &key.environment,
                    &key.secret_hash,
                    micros(now),
                ),
            )
            .map_err(conflict_or(|| format!("API key {:?}", key.id)))?;
            let stored = ApiKey {
                id: key.id.clone(),
                name: key.name.clone(),
                scope: key.scope,
                environment: key.environment.clone(),
                secret_hash: key.secret_hash.clone(),
                created_at: now,
                revoked_at: None,
            };
            insert_audit(
                &tx,
                NewAudit {
                    at: now,
                    actor: &actor,
                    action: "create",
                    entity_type: "api_key",
                    entity_name: &key.id,
                    environment: key.environment.as_deref(),
                    before: None,
                    after: Some(to_json(&stored)?),
                },
            )?;
            tx.commit().map_err(sq_err)?;
            Ok(stored)
        })
        .await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY created_at, rowid"
                ))
                .map_err(sq_err)?;
            stmt.query_map([], api_key)
                .and_then(|rows| rows.collect())
                .map_err(sq_err)
        })
        .await
    }

    async fn revoke_api_key(&self, id: &str, actor: &str) -> Result<ApiKey, StoreError> {
        let id = id.to_owned();
        let actor = actor.to_owned();
        self.with_writer(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sq_err)?;
            let before = tx
                .query_row(
                    &format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = ?1"),
                    [&id],
                    api_key,
                )
                .optional()
                .map_err(sq_err)?
                .ok_or_else(|| StoreError::NotFound {
                    what: format!("API key {id:?}"),
                })?;
            if before.revoked_at.is_some() {
                return Ok(before);
            }
            let now = crate::now();
            tx.execute(
                "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1",
                (&id, micros(now)),
            )
            .map_err(sq_err)?;
            let after = ApiKey {
                revoked_at: Some(now),
                ..before.clone()
            };
            insert_audit(
                &tx,
                NewAudit {
                    at: now,
                    actor: &actor,
                    action: "revoke",
                    entity_type: "api_key",
                    entity_name: &id,
                    environment: after.environment.as_deref(),
                    before: Some(to_json(&before)?),
                    after: Some(to_json(&after)?),
                },
            )?;
            tx.commit().map_err(sq_err)?;
            Ok(after)
        })
        .await
    }

    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let mut sql = String::from(
            "SELECT id, at, actor, action, entity_type, entity_name, environment, \"before\", \
             \"after\" FROM audit_log WHERE 1",
        );
        let mut params = Vec::new();
        if let Some(entity_type) = &filter.entity_type {
            let value = Value::Text(entity_type.clone());
            and(&mut sql, &mut params, "entity_type =", value);
        }
        if let Some(entity_name) = &filter.entity_name {
            let value = Value::Text(entity_name.clone());
            and(&mut sql, &mut params, "entity_name =", value);
        }
        if let Some(environment) = &filter.environment {
            let value = Value::Text(environment.clone());
            and(&mut sql, &mut params, "environment =", value);
        }
        if let Some(before) = filter.before_id {
            and(&mut sql, &mut params, "id <", Value::Integer(before));
        }
        sql.push_str(&format!(
            " ORDER BY id DESC LIMIT {}",
            page_limit(filter.limit)
        ));
        self.with_reader(move |conn| {
            let mut stmt = conn.prepare(&sql).map_err(sq_err)?;
            stmt.query_map(params_from_iter(params), |row| {
                Ok(AuditEntry {
                    id: row.get(0)?,
                    at: ts(row, 1)?,
                    actor: row.get(2)?,
                    action: row.get(3)?,
                    entity_type: row.get(4)?,
                    entity_name: row.get(5)?,
                    environment: row.get(6)?,
                    before: row.get(7)?,
                    after: row.get(8)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(sq_err)
        })
        .await
    }
}
