//! PostgreSQL storage: the production backend, shared by several server replicas.
//!
//! Connections come from a [`bb8`] pool of `tokio-postgres` clients (16 at most). The schema
//! is created by versioned migrations (table `schema_migrations`), each in its own
//! transaction, applied under a `pg_advisory_lock` so that replicas starting together
//! migrate once. JSON is `JSONB`, timestamps `TIMESTAMPTZ`, ids `BIGSERIAL`.
//!
//! Writes lock their environment's row (`SELECT … FOR UPDATE`), so writes to one environment
//! are serialized across replicas while reads never wait. Exposures and events are written
//! with `COPY … FROM STDIN (FORMAT binary)`, the fastest way into PostgreSQL.
//!
//! TLS is not supported yet: the URL must allow a plain connection (`sslmode=disable` or
//! `prefer`).

use std::pin::pin;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use bb8::{Pool, PooledConnection, RunError};
use bb8_postgres::PostgresConnectionManager;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, ToSql, Type};
use tokio_postgres::{GenericClient, IsolationLevel, NoTls};

use crate::entity::{self, Cols, Columns, Op, Row, seed_columns};
use crate::{
    ApiKey, AuditEntry, AuditFilter, BatchOutcome, EntityKind, EntityRef, Environment, Event,
    Exposure, ExposureFilter, ExposureRecord, KeyScope, NewApiKey, NewAudit, Record, Storage,
    StoreError, StoredRuleset, VariantCount, WriteOutcome, WriteRequest, page_limit, to_json,
};
use crate::{ExperimentAggregates, MetricAggregate, Timestamp, VariantExposure};

type Manager = PostgresConnectionManager<NoTls>;
type Conn<'a> = PooledConnection<'a, Manager>;
type Param = Box<dyn ToSql + Sync + Send>;

/// Connections in the pool, at most.
const POOL_SIZE: u32 = 16;
/// The advisory lock held while migrating (`optifork` in ASCII).
const MIGRATION_LOCK: i64 = 0x6f70_7469_666f_726b;

/// The migrations, in order. Never edit one that has shipped: add the next.
const MIGRATIONS: &[(i64, &str)] = &[(1, SCHEMA_V1), (2, SCHEMA_V2), (3, SCHEMA_V3)];

/// Version 3: batch ids are pruned by age ([`crate::Storage::prune_batch_ids`]).
const SCHEMA_V3: &str = "CREATE INDEX ingested_batches_received ON ingested_batches (received_at);";

/// Planner settings for experiment results, an analytical query over every user of an
/// experiment: hash joins and in-memory hash aggregation, whatever the statistics say. Right
/// after a bulk load (before autovacuum has analyzed the tables) the planner otherwise picks a
/// nested loop of one index probe per user, or sorts a million text keys to group them; both
/// are several times slower.
const ANALYTICS_SETTINGS: &str = "SET LOCAL enable_nestloop = off; SET LOCAL enable_sort = off; \
     SET LOCAL work_mem = '256MB'; SET LOCAL jit = off";

/// Version 2: one row per (environment, experiment, user), maintained as exposures arrive, so
/// that experiment results cost one row per user instead of one per exposure.
const SCHEMA_V2: &str = r#"
CREATE TABLE experiment_users (
    environment TEXT NOT NULL,
    experiment TEXT NOT NULL,
    user_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    first_at TIMESTAMPTZ NOT NULL,
    multiple BOOLEAN NOT NULL DEFAULT FALSE,
    exposures BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (environment, experiment, user_id)
);
INSERT INTO experiment_users (environment, experiment, user_id, variant, first_at, multiple, exposures)
SELECT environment, experiment_name, user_id, MIN(variant), MIN("timestamp"),
       MIN(variant) <> MAX(variant), COUNT(*)
FROM exposures
WHERE experiment_name IS NOT NULL AND variant IS NOT NULL
GROUP BY environment, experiment_name, user_id;
"#;

const SCHEMA_V1: &str = r#"
CREATE TABLE environments (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    version     BIGINT NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO environments (name) VALUES ('production');

CREATE TABLE flags (
    id                  BIGSERIAL PRIMARY KEY,
    environment         TEXT NOT NULL REFERENCES environments (name),
    name                TEXT NOT NULL,
    description         TEXT NOT NULL DEFAULT '',
    is_enabled          BOOLEAN NOT NULL DEFAULT false,
    rollout_percentage  DOUBLE PRECISION NOT NULL DEFAULT 100,
    targeting_rules     JSONB NOT NULL DEFAULT '{}',
    extra               JSONB NOT NULL DEFAULT '{}',
    version             BIGINT NOT NULL DEFAULT 1,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (environment, name)
);

CREATE TABLE configs (
    id           BIGSERIAL PRIMARY KEY,
    environment  TEXT NOT NULL REFERENCES environments (name),
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    config_data  JSONB NOT NULL DEFAULT '{}',
    is_active    BOOLEAN NOT NULL DEFAULT true,
    extra        JSONB NOT NULL DEFAULT '{}',
    version      BIGINT NOT NULL DEFAULT 1,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (environment, name)
);

CREATE TABLE segments (
    id           BIGSERIAL PRIMARY KEY,
    environment  TEXT NOT NULL REFERENCES environments (name),
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    criteria     JSONB NOT NULL DEFAULT '{}',
    is_active    BOOLEAN NOT NULL DEFAULT true,
    extra        JSONB NOT NULL DEFAULT '{}',
    version      BIGINT NOT NULL DEFAULT 1,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (environment, name)
);

CREATE TABLE experiments (
    id               BIGSERIAL PRIMARY KEY,
    environment      TEXT NOT NULL REFERENCES environments (name),
    name             TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    flag_id          BIGINT REFERENCES flags (id),
    variants         JSONB NOT NULL DEFAULT '[]',
    traffic_splits   JSONB,
    targeting_rules  JSONB NOT NULL DEFAULT '{}',
    is_active        BOOLEAN NOT NULL DEFAULT false,
    extra            JSONB NOT NULL DEFAULT '{}',
    version          BIGINT NOT NULL DEFAULT 1,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (environment, name)
);
CREATE INDEX experiments_flag_id ON experiments (flag_id);

CREATE TABLE exposures (
    id               BIGSERIAL PRIMARY KEY,
    environment      TEXT NOT NULL,
    flag_name        TEXT,
    experiment_name  TEXT,
    user_id          TEXT NOT NULL,
    variant          TEXT,
    enabled          BOOLEAN,
    user_context     JSONB,
    "timestamp"      TIMESTAMPTZ NOT NULL
);
CREATE INDEX exposures_flag ON exposures (environment, flag_name, "timestamp");
CREATE INDEX exposures_experiment
    ON exposures (environment, experiment_name, user_id, "timestamp");

CREATE TABLE events (
    id           BIGSERIAL PRIMARY KEY,
    environment  TEXT NOT NULL,
    event_name   TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    value        DOUBLE PRECISION,
    properties   JSONB,
    "timestamp"  TIMESTAMPTZ NOT NULL
);
CREATE INDEX events_event ON events (environment, event_name, user_id, "timestamp");

CREATE TABLE ingested_batches (
    batch_id     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, kind)
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    scope        TEXT NOT NULL CHECK (scope IN ('admin', 'sdk')),
    environment  TEXT REFERENCES environments (name),
    secret_hash  BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at   TIMESTAMPTZ
);

CREATE TABLE audit_log (
    id           BIGSERIAL PRIMARY KEY,
    at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    entity_type  TEXT NOT NULL,
    entity_name  TEXT NOT NULL,
    environment  TEXT,
    "before"     JSONB,
    "after"      JSONB
);
CREATE INDEX audit_log_entity ON audit_log (entity_type, entity_name, id);
CREATE INDEX audit_log_environment ON audit_log (environment, id);
"#;

/// Storage in a PostgreSQL database.
pub struct PostgresStorage {
    pool: Pool<Manager>,
}

impl PostgresStorage {
    /// Connects to `url` (`postgres://user:password@host:port/database`), builds the pool
    /// and applies pending migrations.
    pub async fn connect(url: &str) -> Result<PostgresStorage, StoreError> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {e}")))?;
        let pool = Pool::builder()
            .max_size(POOL_SIZE)
            .connection_timeout(Duration::from_secs(10))
            .build(PostgresConnectionManager::new(config, NoTls))
            .await
            .map_err(pg_err)?;
        let storage = PostgresStorage { pool };
        storage.migrate().await?;
        Ok(storage)
    }

    async fn conn(&self) -> Result<Conn<'_>, StoreError> {
        self.pool.get().await.map_err(|e| match e {
            RunError::User(e) => pg_err(e),
            RunError::TimedOut => {
                StoreError::Backend("PostgreSQL: timed out waiting for a connection".into())
            }
        })
    }

    /// Applies pending migrations under the advisory lock, on a connection of its own: the
    /// lock is a session lock, and closing the connection releases it whatever happens
    /// (this also reports a connection failure as is, not as a pool timeout).
    /// One metric event's per-variant aggregates, in the snapshot `snapshot` exported by the
    /// caller's transaction.
    async fn metric_aggregates(
        &self,
        snapshot: &str,
        environment: &str,
        experiment: &str,
        event: &str,
    ) -> Result<Vec<MetricAggregate>, StoreError> {
        if !snapshot.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err(StoreError::Backend(format!(
                "unexpected snapshot id {snapshot:?}"
            )));
        }
        let mut conn = self.conn().await?;
        let tx = conn
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_err)?;
        tx.batch_execute(&format!(
            "SET TRANSACTION SNAPSHOT '{snapshot}'; {ANALYTICS_SETTINGS}"
        ))
        .await
        .map_err(pg_err)?;
        let rows = tx
            .query(
                "WITH first AS ( \
                   SELECT user_id, first_at, variant FROM experiment_users \
                   WHERE environment = $1 AND experiment = $2 AND NOT multiple), \
                 per_user AS ( \
                   SELECT f.variant, e.user_id, \
                     COUNT(*) FILTER (WHERE e.timestamp >= f.first_at) AS cnt, \
                     SUM(e.value) FILTER (WHERE e.timestamp >= f.first_at) AS total, \
                     COUNT(e.value) FILTER (WHERE e.timestamp >= f.first_at) AS valued, \
                     COUNT(*) FILTER (WHERE e.timestamp < f.first_at) AS before \
                   FROM events e JOIN first f ON f.user_id = e.user_id \
                   WHERE e.environment = $1 AND e.event_name = $3 \
                   GROUP BY f.variant, e.user_id) \
                 SELECT variant, \
                   COUNT(*) FILTER (WHERE cnt > 0), \
                   COALESCE(SUM(total), 0)::float8, COALESCE(SUM(total * total), 0)::float8, \
                   COALESCE(SUM(cnt), 0)::float8, COALESCE(SUM(cnt * cnt), 0)::float8, \
                   COUNT(*) FILTER (WHERE valued > 0), \
                   COALESCE(SUM(total / valued) FILTER (WHERE valued > 0), 0)::float8, \
                   COALESCE(SUM((total / valued) * (total / valued)) FILTER (WHERE valued > 0), 0)::float8, \
                   COALESCE(SUM(before), 0)::int8 \
                 FROM per_user GROUP BY variant",
                &[&environment, &experiment, &event],
            )
            .await
            .map_err(pg_err)?;
        let out = rows
            .iter()
            .map(|row| {
                Ok(MetricAggregate {
                    variant: get(row, 0)?,
                    event: event.to_owned(),
                    converted_users: get(row, 1)?,
                    value_sum: get(row, 2)?,
                    value_sum_sq: get(row, 3)?,
                    count_sum: get(row, 4)?,
                    count_sum_sq: get(row, 5)?,
                    valued_users: get(row, 6)?,
                    mean_sum: get(row, 7)?,
                    mean_sum_sq: get(row, 8)?,
                    events_before_exposure: get(row, 9)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        tx.commit().await.map_err(pg_err)?;
        Ok(out)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.dedicated_connection().await.map_err(pg_err)?;
        conn.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg_err)?;
        let result = apply_migrations(&mut conn).await;
        let unlock = conn
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg_err);
        result?;
        unlock.map(|_| ())
    }
}

async fn apply_migrations(conn: &mut tokio_postgres::Client) -> Result<(), StoreError> {
    conn.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version     BIGINT PRIMARY KEY,
            applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .await
    .map_err(pg_err)?;
    let applied: Vec<i64> = conn
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .map_err(pg_err)?
        .iter()
        .map(|row| get(row, 0))
        .collect::<Result<_, _>>()?;
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        let tx = conn.transaction().await.map_err(pg_err)?;
        tx.batch_execute(sql)
            .await
            .map_err(|e| StoreError::Backend(format!("migration {version}: {}", describe(&e))))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())",
            &[version],
        )
        .await
        .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
    }
    Ok(())
}

fn describe(e: &tokio_postgres::Error) -> String {
    match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(db), _) => format!("PostgreSQL: {db}"),
        (None, Some(source)) => format!("PostgreSQL: {e}: {source}"),
        (None, None) => format!("PostgreSQL: {e}"),
    }
}

fn pg_err(e: tokio_postgres::Error) -> StoreError {
    StoreError::Backend(describe(&e))
}

/// Maps a unique violation to `Conflict { what }`, anything else to `Backend`.
fn conflict_or(what: impl FnOnce() -> String) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    move |e| {
        if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            StoreError::Conflict { what: what() }
        } else {
            pg_err(e)
        }
    }
}

fn get<'a, T: FromSql<'a>>(row: &'a tokio_postgres::Row, index: usize) -> Result<T, StoreError> {
    row.try_get(index).map_err(pg_err)
}

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

fn env_not_found(environment: &str) -> StoreError {
    StoreError::NotFound {
        what: format!("environment {environment:?}"),
    }
}

/// The environment's version (locking its row with `for_update`), or `NotFound`.
async fn env_version(
    c: &impl GenericClient,
    environment: &str,
    for_update: bool,
) -> Result<i64, StoreError> {
    let sql = if for_update {
        "SELECT version FROM environments WHERE name = $1 FOR UPDATE"
    } else {
        "SELECT version FROM environments WHERE name = $1"
    };
    match c.query_opt(sql, &[&environment]).await.map_err(pg_err)? {
        Some(row) => get(&row, 0),
        None => Err(env_not_found(environment)),
    }
}

fn select_entities(kind: EntityKind, condition: &str) -> String {
    entity::select_entities(kind, condition, "NULL::text")
}

fn entity_row(kind: EntityKind, row: &tokio_postgres::Row) -> Result<Row, StoreError> {
    let cols = match kind {
        EntityKind::Flag => Cols::Flag {
            is_enabled: get(row, 9)?,
            rollout_percentage: get(row, 10)?,
            targeting_rules: get(row, 11)?,
        },
        EntityKind::Config => Cols::Config {
            config_data: get(row, 9)?,
            is_active: get(row, 10)?,
        },
        EntityKind::Segment => Cols::Segment {
            criteria: get(row, 9)?,
            is_active: get(row, 10)?,
        },
        EntityKind::Experiment => Cols::Experiment {
            flag_id: get(row, 9)?,
            flag: get(row, 8)?,
            variants: get(row, 10)?,
            traffic_splits: get(row, 11)?,
            targeting_rules: get(row, 12)?,
            is_active: get(row, 13)?,
        },
    };
    Ok(Row {
        id: get(row, 0)?,
        environment: get(row, 1)?,
        version: get(row, 5)?,
        created_at: get(row, 6)?,
        updated_at: get(row, 7)?,
        columns: Columns {
            name: get(row, 2)?,
            description: get(row, 3)?,
            extra: get(row, 4)?,
            cols,
        },
    })
}

/// The seed columns' values, in [`seed_columns`] order.
fn seed_params(cols: &Cols) -> Vec<Param> {
    match cols.clone() {
        Cols::Flag {
            is_enabled,
            rollout_percentage,
            targeting_rules,
        } => vec![
            Box::new(is_enabled),
            Box::new(rollout_percentage),
            Box::new(targeting_rules),
        ],
        Cols::Config {
            config_data,
            is_active,
        } => vec![Box::new(config_data), Box::new(is_active)],
        Cols::Segment {
            criteria,
            is_active,
        } => vec![Box::new(criteria), Box::new(is_active)],
        Cols::Experiment {
            flag_id,
            variants,
            traffic_splits,
            targeting_rules,
            is_active,
            ..
        } => vec![
            Box::new(flag_id),
            Box::new(variants),
            Box::new(traffic_splits),
            Box::new(targeting_rules),
            Box::new(is_active),
        ],
    }
}

/// All entity rows of an environment: flags, configs, segments, experiments, in id order.
async fn load_rows(c: &impl GenericClient, environment: &str) -> Result<Vec<Row>, StoreError> {
    let sql = EntityKind::ALL.map(|kind| select_entities(kind, "t.environment = $1"));
    let params: &[&(dyn ToSql + Sync)] = &[&environment];
    // One round trip: the four queries are pipelined on the connection.
    let (flags, configs, segments, experiments) = futures_util::try_join!(
        c.query(sql[0].as_str(), params),
        c.query(sql[1].as_str(), params),
        c.query(sql[2].as_str(), params),
        c.query(sql[3].as_str(), params),
    )
    .map_err(pg_err)?;
    let mut rows = Vec::with_capacity(flags.len() + configs.len() + segments.len());
    for (kind, list) in EntityKind::ALL
        .into_iter()
        .zip([flags, configs, segments, experiments])
    {
        for row in &list {
            rows.push(entity_row(kind, row)?);
        }
    }
    Ok(rows)
}

async fn insert_audit(c: &impl GenericClient, audit: NewAudit<'_>) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO audit_log \
         (at, actor, action, entity_type, entity_name, environment, \"before\", \"after\") \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &audit.at,
            &audit.actor,
            &audit.action,
            &audit.entity_type,
            &audit.entity_name,
            &audit.environment,
            &audit.before,
            &audit.after,
        ],
    )
    .await
    .map_err(pg_err)?;
    Ok(())
}

fn scope_str(scope: KeyScope) -> &'static str {
    match scope {
        KeyScope::Admin => "admin",
        KeyScope::Sdk => "sdk",
    }
}

fn parse_scope(scope: &str) -> Result<KeyScope, StoreError> {
    match scope {
        "admin" => Ok(KeyScope::Admin),
        "sdk" => Ok(KeyScope::Sdk),
        other => Err(StoreError::Backend(format!(
            "stored API key has an unknown scope {other:?}"
        ))),
    }
}

const API_KEY_COLUMNS: &str = "id, name, scope, environment, secret_hash, created_at, revoked_at";

fn api_key(row: &tokio_postgres::Row) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: get(row, 0)?,
        name: get(row, 1)?,
        scope: parse_scope(get(row, 2)?)?,
        environment: get(row, 3)?,
        secret_hash: get(row, 4)?,
        created_at: get(row, 5)?,
        revoked_at: get(row, 6)?,
    })
}

/// Records a batch id inside the transaction; `false` if it was already there.
/// Folds a batch's assignment changes into `experiment_users`.
async fn upsert_assignments(
    c: &impl GenericClient,
    deltas: &[crate::AssignmentDelta],
) -> Result<(), StoreError> {
    if deltas.is_empty() {
        return Ok(());
    }
    let col =
        |f: fn(&crate::AssignmentDelta) -> &str| -> Vec<&str> { deltas.iter().map(f).collect() };
    let environments = col(|d| &d.environment);
    let experiments = col(|d| &d.experiment);
    let users = col(|d| &d.user_id);
    let variants = col(|d| &d.variant);
    let first: Vec<crate::Timestamp> = deltas.iter().map(|d| d.first_at).collect();
    let multiple: Vec<bool> = deltas.iter().map(|d| d.multiple).collect();
    let counts: Vec<i64> = deltas.iter().map(|d| d.exposures).collect();
    c.execute(
        "INSERT INTO experiment_users (environment, experiment, user_id, variant, first_at, multiple, exposures) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::bool[], $7::int8[]) \
         ON CONFLICT (environment, experiment, user_id) DO UPDATE SET \
           multiple = experiment_users.multiple OR excluded.multiple \
                      OR experiment_users.variant <> excluded.variant, \
           first_at = LEAST(experiment_users.first_at, excluded.first_at), \
           exposures = experiment_users.exposures + excluded.exposures",
        &[&environments, &experiments, &users, &variants, &first, &multiple, &counts],
    )
    .await
    .map_err(pg_err)?;
    Ok(())
}

async fn claim_batch(
    c: &impl GenericClient,
    batch_id: Option<&str>,
    kind: &str,
) -> Result<bool, StoreError> {
    let Some(batch_id) = batch_id else {
        return Ok(true);
    };
    let inserted = c
        .execute(
            "INSERT INTO ingested_batches (batch_id, kind, received_at) VALUES ($1, $2, now()) \
             ON CONFLICT DO NOTHING",
            &[&batch_id, &kind],
        )
        .await
        .map_err(pg_err)?;
    Ok(inserted == 1)
}

#[async_trait]
impl Storage for PostgresStorage {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn prune_batch_ids(&self, older_than: Timestamp) -> Result<u64, StoreError> {
        let conn = self.conn().await?;
        conn.execute(
            "DELETE FROM ingested_batches WHERE received_at < $1",
            &[&older_than],
        )
        .await
        .map_err(pg_err)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let conn = self.conn().await?;
        conn.simple_query("SELECT 1").await.map_err(pg_err)?;
        Ok(())
    }

    async fn list_environments(&self) -> Result<Vec<Environment>, StoreError> {
        let conn = self.conn().await?;
        let rows = conn
            .query(
                "SELECT name, version, created_at FROM environments ORDER BY name",
                &[],
            )
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|row| {
                Ok(Environment {
                    name: get(row, 0)?,
                    version: get(row, 1)?,
                    created_at: get(row, 2)?,
                })
            })
            .collect()
    }

    async fn create_environment(&self, name: &str, actor: &str) -> Result<Environment, StoreError> {
        crate::check_environment_name(name)?;
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await.map_err(pg_err)?;
        let now = crate::now();
        let created = tx
            .query_opt(
                "INSERT INTO environments (name, version, created_at) VALUES ($1, 0, $2) \
                 ON CONFLICT (name) DO NOTHING RETURNING version",
                &[&name, &now],
            )
            .await
            .map_err(pg_err)?;
        if created.is_none() {
            return Err(StoreError::Conflict {
                what: format!("environment {name:?}"),
            });
        }
        let environment = Environment {
            name: name.to_owned(),
            version: 0,
            created_at: now,
        };
        insert_audit(
            &tx,
            NewAudit {
                at: now,
                actor,
                action: "create",
                entity_type: "environment",
                entity_name: name,
                environment: Some(name),
                before: None,
                after: Some(to_json(&environment)?),
            },
        )
        .await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(environment)
    }

    async fn ruleset_version(&self, environment: &str) -> Result<i64, StoreError> {
        let conn = self.conn().await?;
        env_version(&*conn, environment, false).await
    }

    async fn load_ruleset(&self, environment: &str) -> Result<StoredRuleset, StoreError> {
        let mut conn = self.conn().await?;
        let tx = conn
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_err)?;
        let version = env_version(&tx, environment, false).await?;
        let rows = load_rows(&tx, environment).await?;
        tx.commit().await.map_err(pg_err)?;
        entity::build_ruleset(environment, version, rows)
    }

    async fn get(
        &self,
        kind: EntityKind,
        environment: &str,
        target: &EntityRef,
    ) -> Result<Record, StoreError> {
        let conn = self.conn().await?;
        let row = match target {
            EntityRef::Id(id) => {
                let sql = select_entities(kind, "t.environment = $1 AND t.id = $2");
                conn.query_opt(sql.as_str(), &[&environment, id]).await
            }
            EntityRef::Name(name) => {
                let sql = select_entities(kind, "t.environment = $1 AND t.name = $2");
                conn.query_opt(sql.as_str(), &[&environment, name]).await
            }
        }
        .map_err(pg_err)?;
        match row {
            Some(row) => Ok(entity_row(kind, &row)?.into_record()),
            None => Err(StoreError::NotFound {
                what: format!("{kind} {target}"),
            }),
        }
    }

    async fn list(&self, kind: EntityKind, environment: &str) -> Result<Vec<Record>, StoreError> {
        let conn = self.conn().await?;
        let sql = select_entities(kind, "t.environment = $1");
        let rows = conn
            .query(sql.as_str(), &[&environment])
            .await
            .map_err(pg_err)?;
        if rows.is_empty() {
            env_version(&*conn, environment, false).await?;
        }
        rows.iter()
            .map(|row| Ok(entity_row(kind, row)?.into_record()))
            .collect()
    }

    async fn write(&self, request: WriteRequest<'_>) -> Result<WriteOutcome, StoreError> {
        let environment = request.environment;
        let kind = request.kind;
        let mut conn = self.conn().await?;
        // Dropped without commit (any error below), the transaction rolls back.
        let tx = conn.transaction().await.map_err(pg_err)?;
        let version = env_version(&tx, environment, true).await?;
        let rows = load_rows(&tx, environment).await?;
        let current = entity::build_ruleset(environment, version, rows)?;
        let plan = entity::plan_write(&request, &current)?;

        let now = crate::now();
        let table = kind.plural();
        let seeds = seed_columns(kind);
        let id = match &plan.op {
            Op::Insert(columns) => {
                let placeholders: Vec<String> =
                    (0..seeds.len()).map(|i| format!("${}", i + 6)).collect();
                let sql = format!(
                    "INSERT INTO {table} (environment, name, description, extra, created_at, \
                     updated_at, version, {}) VALUES ($1, $2, $3, $4, $5, $5, 1, {}) RETURNING id",
                    seeds.join(", "),
                    placeholders.join(", ")
                );
                let mut params: Vec<Param> = vec![
                    Box::new(environment.to_owned()),
                    Box::new(columns.name.clone()),
                    Box::new(columns.description.clone()),
                    Box::new(columns.extra.clone()),
                    Box::new(now),
                ];
                params.extend(seed_params(&columns.cols));
                let row = tx
                    .query_one(sql.as_str(), &refs(&params))
                    .await
                    .map_err(conflict_or(|| format!("{kind} {:?}", columns.name)))?;
                get(&row, 0)?
            }
            Op::Update { id, columns } => {
                let assignments: Vec<String> = seeds
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("{c} = ${}", i + 6))
                    .collect();
                let sql = format!(
                    "UPDATE {table} SET name = $2, description = $3, extra = $4, \
                     updated_at = $5, version = version + 1, {} WHERE id = $1",
                    assignments.join(", ")
                );
                let mut params: Vec<Param> = vec![
                    Box::new(*id),
                    Box::new(columns.name.clone()),
                    Box::new(columns.description.clone()),
                    Box::new(columns.extra.clone()),
                    Box::new(now),
                ];
                params.extend(seed_params(&columns.cols));
                tx.execute(sql.as_str(), &refs(&params))
                    .await
                    .map_err(conflict_or(|| format!("{kind} {:?}", columns.name)))?;
                *id
            }
            Op::Delete { id } => {
                let sql = format!("DELETE FROM {table} WHERE id = $1");
                tx.execute(sql.as_str(), &[id]).await.map_err(pg_err)?;
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
            &tx,
            NewAudit {
                at: now,
                actor: request.actor,
                action: plan.action(),
                entity_type: kind.as_str(),
                entity_name: &entity_name,
                environment: Some(environment),
                before: plan.before.as_ref().map(to_json).transpose()?,
                after: after.as_ref().map(to_json).transpose()?,
            },
        )
        .await?;
        let row = tx
            .query_one(
                "UPDATE environments SET version = version + 1 WHERE name = $1 RETURNING version",
                &[&environment],
            )
            .await
            .map_err(pg_err)?;
        let ruleset_version: i64 = get(&row, 0)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(WriteOutcome {
            after,
            before: plan.before,
            ruleset_version,
        })
    }

    async fn insert_exposures(
        &self,
        batch_id: Option<&str>,
        rows: &[Exposure],
    ) -> Result<BatchOutcome, StoreError> {
        if rows.is_empty() && batch_id.is_none() {
            return Ok(BatchOutcome::Inserted(0));
        }
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await.map_err(pg_err)?;
        if !claim_batch(&tx, batch_id, "exposures").await? {
            return Ok(BatchOutcome::Duplicate);
        }
        if !rows.is_empty() {
            let sink = tx
                .copy_in(
                    "COPY exposures (environment, flag_name, experiment_name, user_id, variant, \
                     enabled, user_context, \"timestamp\") FROM STDIN (FORMAT binary)",
                )
                .await
                .map_err(pg_err)?;
            let types = [
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::BOOL,
                Type::JSONB,
                Type::TIMESTAMPTZ,
            ];
            let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
            for row in rows {
                writer
                    .as_mut()
                    .write(&[
                        &row.environment,
                        &row.flag_name,
                        &row.experiment_name,
                        &row.user_id,
                        &row.variant,
                        &row.enabled,
                        &row.user_context,
                        &row.timestamp,
                    ])
                    .await
                    .map_err(pg_err)?;
            }
            writer.as_mut().finish().await.map_err(pg_err)?;
            upsert_assignments(&tx, &crate::assignment_deltas(rows)).await?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(BatchOutcome::Inserted(rows.len()))
    }

    async fn insert_events(
        &self,
        batch_id: Option<&str>,
        rows: &[Event],
    ) -> Result<BatchOutcome, StoreError> {
        if rows.is_empty() && batch_id.is_none() {
            return Ok(BatchOutcome::Inserted(0));
        }
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await.map_err(pg_err)?;
        if !claim_batch(&tx, batch_id, "events").await? {
            return Ok(BatchOutcome::Duplicate);
        }
        if !rows.is_empty() {
            let sink = tx
                .copy_in(
                    "COPY events (environment, event_name, user_id, value, properties, \
                     \"timestamp\") FROM STDIN (FORMAT binary)",
                )
                .await
                .map_err(pg_err)?;
            let types = [
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::FLOAT8,
                Type::JSONB,
                Type::TIMESTAMPTZ,
            ];
            let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
            for row in rows {
                writer
                    .as_mut()
                    .write(&[
                        &row.environment,
                        &row.event_name,
                        &row.user_id,
                        &row.value,
                        &row.properties,
                        &row.timestamp,
                    ])
                    .await
                    .map_err(pg_err)?;
            }
            writer.as_mut().finish().await.map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(BatchOutcome::Inserted(rows.len()))
    }

    async fn list_exposures(
        &self,
        environment: &str,
        filter: &ExposureFilter,
    ) -> Result<Vec<ExposureRecord>, StoreError> {
        let mut sql = String::from(
            "SELECT id, environment, flag_name, experiment_name, user_id, variant, enabled, \
             user_context, \"timestamp\" FROM exposures WHERE environment = $1",
        );
        let mut params: Vec<Param> = vec![Box::new(environment.to_owned())];
        let mut push = |sql: &mut String, condition: &str, param: Param| {
            params.push(param);
            sql.push_str(&format!(" AND {condition} ${}", params.len()));
        };
        if let Some(flag) = &filter.flag_name {
            push(&mut sql, "flag_name =", Box::new(flag.clone()));
        }
        if let Some(experiment) = &filter.experiment_name {
            push(&mut sql, "experiment_name =", Box::new(experiment.clone()));
        }
        if let Some(since) = filter.since {
            push(&mut sql, "\"timestamp\" >=", Box::new(since));
        }
        if let Some(until) = filter.until {
            push(&mut sql, "\"timestamp\" <", Box::new(until));
        }
        if let Some(before) = filter.before_id {
            push(&mut sql, "id <", Box::new(before));
        }
        sql.push_str(&format!(
            " ORDER BY id DESC LIMIT {}",
            page_limit(filter.limit)
        ));
        let conn = self.conn().await?;
        let rows = conn
            .query(sql.as_str(), &refs(&params))
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|row| {
                Ok(ExposureRecord {
                    id: get(row, 0)?,
                    exposure: Exposure {
                        environment: get(row, 1)?,
                        flag_name: get(row, 2)?,
                        experiment_name: get(row, 3)?,
                        user_id: get(row, 4)?,
                        variant: get(row, 5)?,
                        enabled: get(row, 6)?,
                        user_context: get(row, 7)?,
                        timestamp: get(row, 8)?,
                    },
                })
            })
            .collect()
    }

    async fn experiment_exposure_counts(
        &self,
        environment: &str,
        experiment: &str,
    ) -> Result<Vec<VariantCount>, StoreError> {
        let conn = self.conn().await?;
        let rows = conn
            .query(
                "SELECT variant, COUNT(*), COUNT(DISTINCT user_id) FROM exposures \
                 WHERE environment = $1 AND experiment_name = $2 AND variant IS NOT NULL \
                 GROUP BY variant ORDER BY variant",
                &[&environment, &experiment],
            )
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|row| {
                Ok(VariantCount {
                    variant: get(row, 0)?,
                    exposures: get(row, 1)?,
                    users: get(row, 2)?,
                })
            })
            .collect()
    }

    async fn experiment_aggregates(
        &self,
        environment: &str,
        experiment: &str,
        events: &[String],
    ) -> Result<ExperimentAggregates, StoreError> {
        // The variants query and one query per metric event run concurrently on separate
        // connections (each is a join and a hash aggregation over every user of the
        // experiment, so they use the machine's cores), all in one snapshot: this transaction
        // exports it and the others import it.
        let mut conn = self.conn().await?;
        let tx = conn
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_err)?;
        tx.batch_execute(ANALYTICS_SETTINGS).await.map_err(pg_err)?;
        let snapshot: String = tx
            .query_one("SELECT pg_export_snapshot()", &[])
            .await
            .map_err(pg_err)
            .and_then(|row| get(&row, 0))?;
        let params: [&(dyn ToSql + Sync); 2] = [&environment, &experiment];
        let variants = tx.query(
            "SELECT CASE WHEN NOT multiple THEN variant END, COUNT(*), SUM(exposures)::int8 \
             FROM experiment_users WHERE environment = $1 AND experiment = $2 \
             GROUP BY 1 ORDER BY 1",
            &params,
        );
        let metrics = futures_util::future::try_join_all(
            events
                .iter()
                .map(|event| self.metric_aggregates(&snapshot, environment, experiment, event)),
        );
        let (variant_rows, metric_rows) = tokio::join!(variants, metrics);
        let mut out = ExperimentAggregates::default();
        for row in &variant_rows.map_err(pg_err)? {
            let variant: Option<String> = get(row, 0)?;
            let users: i64 = get(row, 1)?;
            match variant {
                Some(variant) => out.variants.push(VariantExposure {
                    variant,
                    users,
                    exposures: get(row, 2)?,
                }),
                None => out.multi_variant_users = users,
            }
        }
        out.metrics = metric_rows?.into_iter().flatten().collect();
        out.metrics
            .sort_by(|a, b| (&a.variant, &a.event).cmp(&(&b.variant, &b.event)));
        tx.commit().await.map_err(pg_err)?;
        Ok(out)
    }

    async fn create_api_key(&self, key: &NewApiKey, actor: &str) -> Result<ApiKey, StoreError> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await.map_err(pg_err)?;
        if let Some(environment) = &key.environment {
            env_version(&tx, environment, false).await?;
        }
        let now = crate::now();
        let created = tx
            .query_opt(
                "INSERT INTO api_keys (id, name, scope, environment, secret_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING RETURNING id",
                &[
                    &key.id,
                    &key.name,
                    &scope_str(key.scope),
                    &key.environment,
                    &key.secret_hash,
                    &now,
                ],
            )
            .await
            .map_err(pg_err)?;
        if created.is_none() {
            return Err(StoreError::Conflict {
                what: format!("API key {:?}", key.id),
            });
        }
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
                actor,
                action: "create",
                entity_type: "api_key",
                entity_name: &key.id,
                environment: key.environment.as_deref(),
                before: None,
                after: Some(to_json(&stored)?),
            },
        )
        .await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(stored)
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let conn = self.conn().await?;
        let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY created_at, id");
        let rows = conn.query(sql.as_str(), &[]).await.map_err(pg_err)?;
        rows.iter().map(api_key).collect()
    }

    async fn revoke_api_key(&self, id: &str, actor: &str) -> Result<ApiKey, StoreError> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await.map_err(pg_err)?;
        let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = $1 FOR UPDATE");
        let before = match tx.query_opt(sql.as_str(), &[&id]).await.map_err(pg_err)? {
            Some(row) => api_key(&row)?,
            None => {
                return Err(StoreError::NotFound {
                    what: format!("API key {id:?}"),
                });
            }
        };
        if before.revoked_at.is_some() {
            return Ok(before);
        }
        let now = crate::now();
        tx.execute(
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1",
            &[&id, &now],
        )
        .await
        .map_err(pg_err)?;
        let after = ApiKey {
            revoked_at: Some(now),
            ..before.clone()
        };
        insert_audit(
            &tx,
            NewAudit {
                at: now,
                actor,
                action: "revoke",
                entity_type: "api_key",
                entity_name: id,
                environment: after.environment.as_deref(),
                before: Some(to_json(&before)?),
                after: Some(to_json(&after)?),
            },
        )
        .await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(after)
    }

    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let mut sql = String::from(
            "SELECT id, at, actor, action, entity_type, entity_name, environment, \"before\", \
             \"after\" FROM audit_log WHERE true",
        );
        let mut params: Vec<Param> = Vec::new();
        let mut push = |sql: &mut String, condition: &str, param: Param| {
            params.push(param);
            sql.push_str(&format!(" AND {condition} ${}", params.len()));
        };
        if let Some(entity_type) = &filter.entity_type {
            push(&mut sql, "entity_type =", Box::new(entity_type.clone()));
        }
        if let Some(entity_name) = &filter.entity_name {
            push(&mut sql, "entity_name =", Box::new(entity_name.clone()));
        }
        if let Some(environment) = &filter.environment {
            push(&mut sql, "environment =", Box::new(environment.clone()));
        }
        if let Some(before) = filter.before_id {
            push(&mut sql, "id <", Box::new(before));
        }
        sql.push_str(&format!(
            " ORDER BY id DESC LIMIT {}",
            page_limit(filter.limit)
        ));
        let conn = self.conn().await?;
        let rows = conn
            .query(sql.as_str(), &refs(&params))
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: get(row, 0)?,
                    at: get(row, 1)?,
                    actor: get(row, 2)?,
                    action: get(row, 3)?,
                    entity_type: get(row, 4)?,
                    entity_name: get(row, 5)?,
                    environment: get(row, 6)?,
                    before: get(row, 7)?,
                    after: get(row, 8)?,
                })
            })
            .collect()
    }
}
