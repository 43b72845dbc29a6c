//! Persistence for optifork-server: everything it stores, behind one async trait
//! ([`Storage`]) with two implementations: SQLite (embedded, the default: a first run needs
//! nothing installed) and PostgreSQL (production; several server replicas share one).
//!
//! What is stored: per environment, the four entity kinds of a ruleset (flags, configs,
//! segments, experiments), each as the seed's columns plus an `extra` JSON column for
//! OptiFork's extensions; the environment's ruleset version; exposures and metric events;
//! API keys (hashed); the audit log.
//!
//! Every change to a ruleset goes through [`Storage::write`], which runs one transaction:
//! lock the environment, load its current ruleset, apply the change, let the caller validate
//! the resulting ruleset (the server compiles it with optifork-core), write the row and an
//! audit entry, bump the environment's version. Two writers, on one server or on several, can
//! therefore never produce a ruleset that was not validated as a whole.

use std::fmt;
use std::sync::Arc;

mod entity;
pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use optifork_core::{CompileError, Ruleset};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Timestamps are UTC instants.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// The four kinds of ruleset entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// A feature flag (table `flags`).
    Flag,
    /// A remote config (table `configs`).
    Config,
    /// A segment (table `segments`).
    Segment,
    /// An experiment (table `experiments`).
    Experiment,
}

impl EntityKind {
    /// All kinds, in the order a ruleset lists them.
    pub const ALL: [EntityKind; 4] = [
        EntityKind::Flag,
        EntityKind::Config,
        EntityKind::Segment,
        EntityKind::Experiment,
    ];

    /// The singular name (`flag`), as used in audit entries and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Flag => "flag",
            EntityKind::Config => "config",
            EntityKind::Segment => "segment",
            EntityKind::Experiment => "experiment",
        }
    }

    /// The ruleset field and table name (`flags`).
    pub fn plural(self) -> &'static str {
        match self {
            EntityKind::Flag => "flags",
            EntityKind::Config => "configs",
            EntityKind::Segment => "segments",
            EntityKind::Experiment => "experiments",
        }
    }
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored entity: its body (the optifork-core model's JSON) and storage metadata.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Record {
    /// Database id (the seed's `id`); unique per kind.
    pub id: i64,
    /// Which kind of entity.
    #[serde(skip)]
    pub kind: EntityKind,
    /// The environment it belongs to.
    pub environment: String,
    /// Its name (also in `body`).
    pub name: String,
    /// Starts at 1 and increases by one with every update; the entity's ETag.
    pub version: i64,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last changed.
    pub updated_at: Timestamp,
    /// The entity as JSON in the core model's shape (`optifork_core::Flag`, ...). Always an
    /// object carrying every seed field (defaults filled in). For experiments, both
    /// `flag_id` and `flag` are filled in when the experiment names a flag.
    pub body: Json,
}

/// How a route names an entity: by database id or by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntityRef {
    /// By the seed's numeric id.
    Id(i64),
    /// By name (unique within an environment and kind).
    Name(String),
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntityRef::Id(id) => write!(f, "#{id}"),
            EntityRef::Name(name) => write!(f, "{name:?}"),
        }
    }
}

/// A change to one entity.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Create an entity; `body` must carry its `name`.
    Create {
        /// The entity's JSON (core model shape).
        body: Json,
    },
    /// Replace an entity's body as a whole (its name may change).
    Update {
        /// Which entity.
        target: EntityRef,
        /// The new JSON.
        body: Json,
        /// Refuse with [`StoreError::PreconditionFailed`] unless the current version is this.
        if_match: Option<i64>,
    },
    /// Delete an entity.
    Delete {
        /// Which entity.
        target: EntityRef,
        /// Refuse with [`StoreError::PreconditionFailed`] unless the current version is this.
        if_match: Option<i64>,
    },
}

/// Checks a candidate ruleset before a write commits (the server compiles it).
pub type Validator<'a> = &'a (dyn Fn(&Ruleset) -> Result<(), CompileError> + Send + Sync);

/// One write: a change, who makes it, and the check the resulting ruleset must pass.
pub struct WriteRequest<'a> {
    /// The environment written to; it must exist.
    pub environment: &'a str,
    /// The kind of entity changed.
    pub kind: EntityKind,
    /// The change.
    pub change: Change,
    /// Who makes it (an API key id), for the audit log.
    pub actor: &'a str,
    /// Called inside the transaction with the ruleset as it would be after the change
    /// (entities in id order); an error aborts the write.
    pub validate: Validator<'a>,
}

/// What a successful write did.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteOutcome {
    /// The entity after the change (`None` after a delete).
    pub after: Option<Record>,
    /// The entity before the change (`None` after a create).
    pub before: Option<Record>,
    /// The environment's ruleset version after the change.
    pub ruleset_version: i64,
}

/// An environment: a separate ruleset with its own version.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Environment {
    /// Unique name (`production` exists from the start).
    pub name: String,
    /// The ruleset version: increases with every change to the environment's entities.
    pub version: i64,
    /// When it was created.
    pub created_at: Timestamp,
}

/// An environment's whole ruleset as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRuleset {
    /// The ruleset (environment and version set), entities in id order.
    pub ruleset: Ruleset,
    /// The records it was built from, in the same order, for metadata (ids, ETags).
    pub records: Vec<Record>,
}

/// An exposure: a user saw a flag's or an experiment's variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exposure {
    /// The environment.
    pub environment: String,
    /// The flag evaluated, if this is a flag exposure.
    pub flag_name: Option<String>,
    /// The experiment assigned, if this is an experiment exposure.
    pub experiment_name: Option<String>,
    /// The user (targeting key).
    pub user_id: String,
    /// The variant served.
    pub variant: Option<String>,
    /// For boolean flags, the value served.
    pub enabled: Option<bool>,
    /// The context evaluated, when the client sends it.
    pub user_context: Option<Json>,
    /// When it happened (client time).
    pub timestamp: Timestamp,
}

/// A stored exposure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExposureRecord {
    /// Database id.
    pub id: i64,
    /// The exposure.
    #[serde(flatten)]
    pub exposure: Exposure,
}

/// A metric event (`track`): a conversion or a value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The environment.
    pub environment: String,
    /// The event's name (`purchase`, ...).
    pub event_name: String,
    /// The user.
    pub user_id: String,
    /// A value (revenue, duration...), when the event carries one.
    pub value: Option<f64>,
    /// Free-form properties.
    pub properties: Option<Json>,
    /// When it happened (client time).
    pub timestamp: Timestamp,
}

/// Which exposures to list: newest first, `limit` at most, older than `before_id` if set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExposureFilter {
    /// Only this flag's exposures.
    pub flag_name: Option<String>,
    /// Only this experiment's exposures.
    pub experiment_name: Option<String>,
    /// Only at or after this time.
    pub since: Option<Timestamp>,
    /// Only before this time.
    pub until: Option<Timestamp>,
    /// Only ids below this one (the next page's cursor).
    pub before_id: Option<i64>,
    /// At most this many (the implementation caps it at 1000).
    pub limit: u32,
}

/// Exposure counts of one variant of an experiment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VariantCount {
    /// The variant.
    pub variant: String,
    /// Exposure rows.
    pub exposures: i64,
    /// Distinct users.
    pub users: i64,
}

/// Everything an experiment's results are computed from, aggregated in SQL.
///
/// A user's *first exposure* is their earliest exposure to the experiment. Users exposed to
/// more than one variant are counted in `multi_variant_users` and left out of everything else.
/// Metric events count only at or after the user's first exposure; earlier ones are counted
/// in [`MetricAggregate::events_before_exposure`] and otherwise ignored.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ExperimentAggregates {
    /// Users and exposure rows per variant (single-variant users only).
    pub variants: Vec<VariantExposure>,
    /// Users exposed to more than one variant (excluded).
    pub multi_variant_users: i64,
    /// Per (variant, event): per-user sufficient statistics of the events after exposure.
    pub metrics: Vec<MetricAggregate>,
}

/// Exposure counts of one variant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VariantExposure {
    /// The variant.
    pub variant: String,
    /// Distinct users whose only variant this is.
    pub users: i64,
    /// Their exposure rows.
    pub exposures: i64,
}

/// Per-user sufficient statistics of one event for the users of one variant. Users of the
/// variant without such events count as zeros (their number is the variant's `users`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MetricAggregate {
    /// The variant.
    pub variant: String,
    /// The event's name.
    pub event: String,
    /// Users with at least one event after exposure (conversions).
    pub converted_users: i64,
    /// Σ over users of the sum of their event values.
    pub value_sum: f64,
    /// Σ over users of the square of the sum of their event values.
    pub value_sum_sq: f64,
    /// Σ over users of their event count.
    pub count_sum: f64,
    /// Σ over users of the square of their event count.
    pub count_sum_sq: f64,
    /// Users with at least one valued event after exposure.
    pub valued_users: i64,
    /// Σ over those users of the mean of their event values.
    pub mean_sum: f64,
    /// Σ over those users of the square of the mean of their event values.
    pub mean_sum_sq: f64,
    /// Events of exposed users that happened before their first exposure (ignored).
    pub events_before_exposure: i64,
}

/// One user's assignment to an experiment as a batch of exposures changes it: the table
/// `experiment_users` keeps one row per (environment, experiment, user) with the first
/// exposure time, the variant, whether the user saw more than one variant, and how many
/// exposures they had, so that results never re-aggregate every exposure row.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AssignmentDelta {
    pub(crate) environment: String,
    pub(crate) experiment: String,
    pub(crate) user_id: String,
    pub(crate) variant: String,
    pub(crate) first_at: Timestamp,
    pub(crate) multiple: bool,
    pub(crate) exposures: i64,
}

/// The assignment changes of a batch, one per user, sorted by key (so that concurrent
/// batches lock rows in the same order).
pub(crate) fn assignment_deltas(rows: &[Exposure]) -> Vec<AssignmentDelta> {
    let mut map: std::collections::BTreeMap<(&str, &str, &str), AssignmentDelta> =
        std::collections::BTreeMap::new();
    for r in rows {
        let (Some(experiment), Some(variant)) = (&r.experiment_name, &r.variant) else {
            continue;
        };
        map.entry((&r.environment, experiment, &r.user_id))
            .and_modify(|d| {
                d.multiple |= d.variant != *variant;
                d.first_at = d.first_at.min(r.timestamp);
                d.exposures += 1;
            })
            .or_insert_with(|| AssignmentDelta {
                environment: r.environment.clone(),
                experiment: experiment.clone(),
                user_id: r.user_id.clone(),
                variant: variant.clone(),
                first_at: r.timestamp,
                multiple: false,
                exposures: 1,
            });
    }
    map.into_values().collect()
}

/// The result of an idempotent batch insert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchOutcome {
    /// The rows were written.
    Inserted(usize),
    /// A batch with this id was already written; nothing was written again.
    Duplicate,
}

/// What an API key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyScope {
    /// Manage everything.
    Admin,
    /// One environment: sync, evaluate, send exposures and events.
    Sdk,
}

/// A key to create. The secret itself is never stored, only its hash.
#[derive(Clone, Debug, PartialEq)]
pub struct NewApiKey {
    /// Public identifier, embedded in the key (`ofk_<id>_<secret>`); unique.
    pub id: String,
    /// A label for people.
    pub name: String,
    /// What it may do.
    pub scope: KeyScope,
    /// For SDK keys, the environment it is bound to.
    pub environment: Option<String>,
    /// The hash of the secret part (the server decides the hash; storage keeps bytes).
    pub secret_hash: Vec<u8>,
}

/// A stored API key.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ApiKey {
    /// Public identifier.
    pub id: String,
    /// A label for people.
    pub name: String,
    /// What it may do.
    pub scope: KeyScope,
    /// For SDK keys, the environment.
    pub environment: Option<String>,
    /// The hash of the secret.
    #[serde(skip)]
    pub secret_hash: Vec<u8>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was revoked; revoked keys authenticate nothing.
    pub revoked_at: Option<Timestamp>,
}

/// One entry of the audit log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Database id (increasing).
    pub id: i64,
    /// When.
    pub at: Timestamp,
    /// Who (an API key id).
    pub actor: String,
    /// `create`, `update`, `delete` (entities); `create`, `revoke` (API keys, environments).
    pub action: String,
    /// `flag`, `config`, `segment`, `experiment`, `api_key` or `environment`.
    pub entity_type: String,
    /// The entity's name (for API keys, the key id).
    pub entity_name: String,
    /// The environment, for environment-scoped entities.
    pub environment: Option<String>,
    /// The entity before (its record as JSON), unless created.
    pub before: Option<Json>,
    /// The entity after, unless deleted.
    pub after: Option<Json>,
}

/// Which audit entries to list: newest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditFilter {
    /// Only this entity type.
    pub entity_type: Option<String>,
    /// Only this entity name.
    pub entity_name: Option<String>,
    /// Only this environment.
    pub environment: Option<String>,
    /// Only ids below this one (the next page's cursor).
    pub before_id: Option<i64>,
    /// At most this many (capped at 1000).
    pub limit: u32,
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such entity, environment or key.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `flag "x"`.
        what: String,
    },
    /// An entity, environment or key of that name already exists.
    #[error("{what} already exists")]
    Conflict {
        /// What clashed, e.g. `flag "x"`.
        what: String,
    },
    /// `if_match` did not match the entity's current version.
    #[error("version {expected} does not match the current version {current}")]
    PreconditionFailed {
        /// The version the caller expected.
        expected: i64,
        /// The current version.
        current: i64,
    },
    /// The resulting ruleset does not compile (the path is ruleset-level:
    /// `$.flags[3].rules[0]...`), or the body is not an entity of that kind.
    #[error("invalid: {0}")]
    Invalid(CompileError),
    /// The database failed (connection lost, disk full...).
    #[error("storage backend: {0}")]
    Backend(String),
}

/// Everything optifork-server persists. Implementations: `sqlite::SqliteStorage` and
/// `postgres::PostgresStorage`; [`open`] picks one from a URL.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// Checks the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// All environments, by name.
    async fn list_environments(&self) -> Result<Vec<Environment>, StoreError>;
    /// Creates an environment (version 0), with an audit entry.
    async fn create_environment(&self, name: &str, actor: &str) -> Result<Environment, StoreError>;
    /// An environment's current ruleset version.
    async fn ruleset_version(&self, environment: &str) -> Result<i64, StoreError>;
    /// An environment's whole ruleset, read in one consistent snapshot.
    async fn load_ruleset(&self, environment: &str) -> Result<StoredRuleset, StoreError>;

    /// One entity.
    async fn get(
        &self,
        kind: EntityKind,
        environment: &str,
        target: &EntityRef,
    ) -> Result<Record, StoreError>;
    /// All entities of a kind in an environment, in id order.
    async fn list(&self, kind: EntityKind, environment: &str) -> Result<Vec<Record>, StoreError>;
    /// Applies one change in one transaction (see the crate docs).
    async fn write(&self, request: WriteRequest<'_>) -> Result<WriteOutcome, StoreError>;

    /// Writes exposures in one transaction. With a `batch_id`, a batch already written is
    /// not written again ([`BatchOutcome::Duplicate`]), so clients may retry safely.
    async fn insert_exposures(
        &self,
        batch_id: Option<&str>,
        rows: &[Exposure],
    ) -> Result<BatchOutcome, StoreError>;
    /// Writes metric events, idempotently like [`Storage::insert_exposures`].
    async fn insert_events(
        &self,
        batch_id: Option<&str>,
        rows: &[Event],
    ) -> Result<BatchOutcome, StoreError>;
    /// Forgets the ids of batches received before `older_than`, so the table of ids does not
    /// grow forever; returns how many were removed. A retry of a forgotten batch is written
    /// again, so the cutoff must be older than any client's retry window.
    async fn prune_batch_ids(&self, older_than: Timestamp) -> Result<u64, StoreError>;
    /// Lists exposures of an environment, newest first.
    async fn list_exposures(
        &self,
        environment: &str,
        filter: &ExposureFilter,
    ) -> Result<Vec<ExposureRecord>, StoreError>;
    /// Exposures and distinct users per variant of an experiment.
    async fn experiment_exposure_counts(
        &self,
        environment: &str,
        experiment: &str,
    ) -> Result<Vec<VariantCount>, StoreError>;

    /// The aggregates an experiment's results are computed from, for the given metric events.
    async fn experiment_aggregates(
        &self,
        environment: &str,
        experiment: &str,
        events: &[String],
    ) -> Result<ExperimentAggregates, StoreError>;

    /// Creates an API key, with an audit entry.
    async fn create_api_key(&self, key: &NewApiKey, actor: &str) -> Result<ApiKey, StoreError>;
    /// All API keys, revoked ones included, oldest first.
    async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// Revokes a key (idempotent), with an audit entry.
    async fn revoke_api_key(&self, id: &str, actor: &str) -> Result<ApiKey, StoreError>;

    /// Lists audit entries, newest first.
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError>;
}

/// Opens storage from a URL, applying migrations: `postgres://…` or `postgresql://…` for
/// PostgreSQL; `sqlite://path`, `sqlite::memory:` or a plain file path for SQLite.
pub async fn open(url: &str) -> Result<Arc<dyn Storage>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(postgres::PostgresStorage::connect(url).await?));
    }
    Ok(Arc::new(
        sqlite::SqliteStorage::open(sqlite_path(url)?).await?,
    ))
}

/// The file path of an SQLite URL (`sqlite://path`, `sqlite:path`, a plain path).
fn sqlite_path(url: &str) -> Result<&str, StoreError> {
    let path = match url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        // URL forms may carry options (`?mode=rwc`), which have no meaning here.
        Some(rest) => rest.split_once('?').map_or(rest, |(path, _)| path),
        None => url,
    };
    if path.is_empty() {
        return Err(StoreError::Backend(format!(
            "no database path in storage URL {url:?}"
        )));
    }
    Ok(path)
}

/// An audit entry to write (both backends).
pub(crate) struct NewAudit<'a> {
    pub at: Timestamp,
    pub actor: &'a str,
    pub action: &'a str,
    pub entity_type: &'a str,
    pub entity_name: &'a str,
    pub environment: Option<&'a str>,
    pub before: Option<Json>,
    pub after: Option<Json>,
}

/// A record, key or environment as JSON, for the audit log.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Json, StoreError> {
    serde_json::to_value(value).map_err(|e| StoreError::Backend(format!("serializing: {e}")))
}

/// The number of rows a list returns: 0 means 100, and never more than 1000.
pub(crate) fn page_limit(limit: u32) -> u32 {
    match limit {
        0 => 100,
        n => n.min(1000),
    }
}

/// Refuses an empty environment name.
pub(crate) fn check_environment_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() {
        return Err(entity::invalid(
            optifork_core::JsonPath::root().key("name"),
            "an environment needs a name",
        ));
    }
    Ok(())
}

/// The current time, truncated to the microseconds both databases keep, so that a record
/// returned by a write equals the record read back.
pub(crate) fn now() -> Timestamp {
    micros_to_timestamp(chrono::Utc::now().timestamp_micros()).unwrap_or_default()
}

/// A timestamp from microseconds since the Unix epoch.
pub(crate) fn micros_to_timestamp(micros: i64) -> Option<Timestamp> {
    chrono::DateTime::from_timestamp_micros(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_sqlite_path() {
        assert_eq!(sqlite_path("sqlite://data/of.db").unwrap(), "data/of.db");
        assert_eq!(sqlite_path("sqlite:///var/of.db").unwrap(), "/var/of.db");
        assert_eq!(sqlite_path("sqlite://of.db?mode=rwc").unwrap(), "of.db");
        assert_eq!(sqlite_path("sqlite::memory:").unwrap(), ":memory:");
        assert_eq!(sqlite_path("sqlite://:memory:").unwrap(), ":memory:");
        assert_eq!(sqlite_path("./of.db").unwrap(), "./of.db");
        assert!(sqlite_path("sqlite://").is_err());
        assert!(sqlite_path("").is_err());
    }
}
