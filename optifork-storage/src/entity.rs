//! The backend-independent half of storage: how an entity body is split into the seed's
//! columns plus `extra` and reassembled, how a ruleset is built from stored rows, and how a
//! write is planned (the checks, the candidate ruleset, the caller's validation) before a
//! backend executes it.
//!
//! Both backends run [`plan_write`] inside their write transaction, after locking the
//! environment and loading its ruleset, so the rules for what a write may do live here once.

use optifork_core::{
    CompileError, Config, ErrorKind, Experiment, Flag, JsonPath, Ruleset, Segment, from_json_value,
};
use serde_json::{Map, Value as Json};

use crate::{
    Change, EntityKind, EntityRef, Record, StoreError, StoredRuleset, Timestamp, WriteRequest,
};

/// The kind-specific seed columns of one entity row.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cols {
    /// `flags`.
    Flag {
        is_enabled: bool,
        rollout_percentage: f64,
        targeting_rules: Json,
    },
    /// `configs` (the `environment` column is the row's environment).
    Config { config_data: Json, is_active: bool },
    /// `segments`.
    Segment { criteria: Json, is_active: bool },
    /// `experiments`. `flag` is not a column: it is the referenced flag's name (a join).
    Experiment {
        flag_id: Option<i64>,
        flag: Option<String>,
        variants: Json,
        traffic_splits: Option<Json>,
        targeting_rules: Json,
        is_active: bool,
    },
}

/// The seed columns of each kind, beyond `name` and `description`, in the order [`Cols`]
/// lists them (experiments' `flag` excluded). Both backends' SQL uses this order.
pub(crate) fn seed_columns(kind: EntityKind) -> &'static [&'static str] {
    match kind {
        EntityKind::Flag => &["is_enabled", "rollout_percentage", "targeting_rules"],
        EntityKind::Config => &["config_data", "is_active"],
        EntityKind::Segment => &["criteria", "is_active"],
        EntityKind::Experiment => &[
            "flag_id",
            "variants",
            "traffic_splits",
            "targeting_rules",
            "is_active",
        ],
    }
}

/// `SELECT` of a kind's rows (aliased `t`) matching `condition`, in id order. Columns: id,
/// environment, name, description, extra, version, created_at, updated_at, the experiment's
/// flag name (`null_name` for other kinds), then [`seed_columns`].
pub(crate) fn select_entities(kind: EntityKind, condition: &str, null_name: &str) -> String {
    let seeds: Vec<String> = seed_columns(kind)
        .iter()
        .map(|c| format!("t.{c}"))
        .collect();
    let (flag_name, join) = match kind {
        EntityKind::Experiment => ("f.name", "LEFT JOIN flags f ON f.id = t.flag_id"),
        _ => (null_name, ""),
    };
    format!(
        "SELECT t.id, t.environment, t.name, t.description, t.extra, t.version, t.created_at, \
         t.updated_at, {flag_name}, {} FROM {} t {join} WHERE {condition} ORDER BY t.id",
        seeds.join(", "),
        kind.plural()
    )
}

/// The body fields that have a column of their own (never stored in `extra`).
fn column_fields(kind: EntityKind) -> &'static [&'static str] {
    match kind {
        EntityKind::Flag => &[
            "name",
            "description",
            "is_enabled",
            "rollout_percentage",
            "targeting_rules",
        ],
        EntityKind::Config => &[
            "name",
            "description",
            "config_data",
            "is_active",
            "environment",
        ],
        EntityKind::Segment => &["name", "description", "criteria", "is_active"],
        EntityKind::Experiment => &[
            "name",
            "description",
            "flag_id",
            "variants",
            "traffic_splits",
            "targeting_rules",
            "is_active",
        ],
    }
}

/// What is written to an entity row (besides ids, versions and timestamps).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Columns {
    /// The `name` column.
    pub name: String,
    /// The `description` column.
    pub description: String,
    /// The kind's seed columns.
    pub cols: Cols,
    /// Every other field of the body (always an object).
    pub extra: Json,
}

impl Columns {
    /// The kind these columns belong to.
    pub fn kind(&self) -> EntityKind {
        match self.cols {
            Cols::Flag { .. } => EntityKind::Flag,
            Cols::Config { .. } => EntityKind::Config,
            Cols::Segment { .. } => EntityKind::Segment,
            Cols::Experiment { .. } => EntityKind::Experiment,
        }
    }

    /// The body in the core model's shape, every seed field present.
    pub fn body(&self, environment: &str) -> Json {
        let mut map = match &self.extra {
            Json::Object(m) => m.clone(),
            _ => Map::new(),
        };
        map.insert("name".into(), Json::from(self.name.as_str()));
        map.insert("description".into(), Json::from(self.description.as_str()));
        match &self.cols {
            Cols::Flag {
                is_enabled,
                rollout_percentage,
                targeting_rules,
            } => {
                map.insert("is_enabled".into(), Json::Bool(*is_enabled));
                map.insert("rollout_percentage".into(), Json::from(*rollout_percentage));
                map.insert("targeting_rules".into(), targeting_rules.clone());
            }
            Cols::Config {
                config_data,
                is_active,
            } => {
                map.insert("config_data".into(), config_data.clone());
                map.insert("is_active".into(), Json::Bool(*is_active));
                map.insert("environment".into(), Json::from(environment));
            }
            Cols::Segment {
                criteria,
                is_active,
            } => {
                map.insert("criteria".into(), criteria.clone());
                map.insert("is_active".into(), Json::Bool(*is_active));
            }
            Cols::Experiment {
                flag_id,
                flag,
                variants,
                traffic_splits,
                targeting_rules,
                is_active,
            } => {
                if let Some(id) = flag_id {
                    map.insert("flag_id".into(), Json::from(*id));
                    if let Some(name) = flag {
                        map.insert("flag".into(), Json::from(name.as_str()));
                    }
                }
                map.insert("variants".into(), variants.clone());
                map.insert(
                    "traffic_splits".into(),
                    traffic_splits.clone().unwrap_or(Json::Null),
                );
                map.insert("targeting_rules".into(), targeting_rules.clone());
                map.insert("is_active".into(), Json::Bool(*is_active));
            }
        }
        Json::Object(map)
    }
}

/// One entity row as read from a database.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub id: i64,
    pub environment: String,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub columns: Columns,
}

impl Row {
    /// The record, body reassembled.
    pub fn into_record(self) -> Record {
        let body = self.columns.body(&self.environment);
        Record {
            id: self.id,
            kind: self.columns.kind(),
            environment: self.environment,
            name: self.columns.name,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            body,
        }
    }
}

/// An entity in the core model's types.
#[derive(Clone, Debug)]
pub(crate) enum Entity {
    Flag(Flag),
    Config(Config),
    Segment(Segment),
    Experiment(Experiment),
}

/// Deserializes a body as an entity of `kind`.
fn deserialize(kind: EntityKind, body: Json) -> Result<Entity, CompileError> {
    Ok(match kind {
        EntityKind::Flag => Entity::Flag(from_json_value(body)?),
        EntityKind::Config => Entity::Config(from_json_value(body)?),
        EntityKind::Segment => Entity::Segment(from_json_value(body)?),
        EntityKind::Experiment => Entity::Experiment(from_json_value(body)?),
    })
}

/// An `Invalid` error with an [`ErrorKind::Invalid`] message at an entity-level path.
pub(crate) fn invalid(path: JsonPath, message: impl Into<String>) -> StoreError {
    StoreError::Invalid(CompileError {
        path,
        kind: ErrorKind::Invalid(message.into()),
    })
}

/// Splits a body written to `environment` into columns and checks it is an entity of
/// `kind`. `flags` are the environment's flags (id, name), to resolve an experiment's flag.
pub(crate) fn split(
    kind: EntityKind,
    environment: &str,
    body: Json,
    flags: &[(i64, String)],
) -> Result<(Columns, Entity), StoreError> {
    let Json::Object(mut map) = body else {
        return Err(invalid(
            JsonPath::root(),
            format!("a {kind} must be a JSON object"),
        ));
    };
    // The database id is the row's, never part of the body.
    map.remove("id");
    type Default = (&'static str, fn() -> Json);
    let defaults: &[Default] = match kind {
        EntityKind::Flag => &[
            ("description", || Json::from("")),
            ("is_enabled", || Json::Bool(false)),
            ("rollout_percentage", || Json::from(100.0)),
            ("targeting_rules", || Json::Object(Map::new())),
        ],
        EntityKind::Config => &[
            ("description", || Json::from("")),
            ("config_data", || Json::Object(Map::new())),
            ("is_active", || Json::Bool(true)),
        ],
        EntityKind::Segment => &[
            ("description", || Json::from("")),
            ("criteria", || Json::Object(Map::new())),
            ("is_active", || Json::Bool(true)),
        ],
        EntityKind::Experiment => &[
            ("description", || Json::from("")),
            ("variants", || Json::Array(Vec::new())),
            ("traffic_splits", || Json::Null),
            ("targeting_rules", || Json::Object(Map::new())),
            ("is_active", || Json::Bool(false)),
        ],
    };
    for (field, default) in defaults {
        if !map.contains_key(*field) {
            map.insert((*field).to_owned(), default());
        }
    }
    if kind == EntityKind::Config {
        map.insert("environment".into(), Json::from(environment));
    }
    if kind == EntityKind::Experiment {
        resolve_flag(&mut map, flags)?;
    }

    let entity = deserialize(kind, Json::Object(map.clone())).map_err(StoreError::Invalid)?;
    let take = |map: &mut Map<String, Json>, field: &str| map.remove(field).unwrap_or(Json::Null);
    let (name, description, cols) = match &entity {
        Entity::Flag(f) => (
            f.name.clone(),
            f.description.clone(),
            Cols::Flag {
                is_enabled: f.is_enabled,
                rollout_percentage: f.rollout_percentage,
                targeting_rules: f.targeting_rules.clone(),
            },
        ),
        Entity::Config(c) => (
            c.name.clone(),
            c.description.clone(),
            Cols::Config {
                config_data: c.config_data.clone(),
                is_active: c.is_active,
            },
        ),
        Entity::Segment(s) => (
            s.name.clone(),
            s.description.clone(),
            Cols::Segment {
                criteria: s.criteria.clone(),
                is_active: s.is_active,
            },
        ),
        Entity::Experiment(e) => (
            e.name.clone(),
            e.description.clone(),
            Cols::Experiment {
                flag_id: e.flag_id,
                flag: e.flag_id.and(e.flag.clone()),
                // As written: names and objects keep their form.
                variants: take(&mut map, "variants"),
                traffic_splits: Some(take(&mut map, "traffic_splits")).filter(|t| !t.is_null()),
                targeting_rules: e.targeting_rules.clone(),
                is_active: e.is_active,
            },
        ),
    };
    for field in column_fields(kind) {
        map.remove(*field);
    }
    // A resolved flag lives in `flag_id` (the name follows renames through the join); an
    // unresolved name is kept so that validation can report it.
    if matches!(
        cols,
        Cols::Experiment {
            flag_id: Some(_),
            ..
        }
    ) {
        map.remove("flag");
    }
    let columns = Columns {
        name,
        description,
        cols,
        extra: Json::Object(map),
    };
    Ok((columns, entity))
}

/// Fills an experiment's `flag_id` from `flag`, or `flag` from `flag_id`.
fn resolve_flag(map: &mut Map<String, Json>, flags: &[(i64, String)]) -> Result<(), StoreError> {
    if map.get("flag").is_some_and(Json::is_null) {
        map.remove("flag");
    }
    if map.get("flag_id").is_some_and(Json::is_null) {
        map.remove("flag_id");
    }
    match map.get("flag") {
        Some(Json::String(name)) => {
            match flags.iter().find(|(_, n)| n == name) {
                Some((id, _)) => {
                    map.insert("flag_id".into(), Json::from(*id));
                }
                // Left for validation: compiling reports the unknown flag by name.
                None => {
                    map.remove("flag_id");
                }
            }
            Ok(())
        }
        // Not a string: deserialization reports it.
        Some(_) => Ok(()),
        None => {
            let Some(value) = map.get("flag_id") else {
                return Ok(());
            };
            let Some(id) = value.as_i64() else {
                // Not an integer: deserialization reports it.
                return Ok(());
            };
            match flags.iter().find(|(i, _)| *i == id) {
                Some((_, name)) => {
                    map.insert("flag".into(), Json::from(name.as_str()));
                    Ok(())
                }
                None => Err(invalid(
                    JsonPath::root().key("flag_id"),
                    format!("no flag with id {id} in this environment"),
                )),
            }
        }
    }
}

/// Builds a stored ruleset from the rows of one environment (flags, configs, segments,
/// experiments, each in id order).
pub(crate) fn build_ruleset(
    environment: &str,
    version: i64,
    rows: Vec<Row>,
) -> Result<StoredRuleset, StoreError> {
    let mut ruleset = Ruleset {
        environment: environment.to_owned(),
        version: u64::try_from(version).unwrap_or(0),
        ..Ruleset::default()
    };
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        let record = row.into_record();
        let entity = deserialize(record.kind, record.body.clone()).map_err(|e| {
            StoreError::Backend(format!(
                "stored {} {:?} is not a valid {}: {e}",
                record.kind, record.name, record.kind
            ))
        })?;
        match entity {
            Entity::Flag(f) => ruleset.flags.push(f),
            Entity::Config(c) => ruleset.configs.push(c),
            Entity::Segment(s) => ruleset.segments.push(s),
            Entity::Experiment(e) => ruleset.experiments.push(e),
        }
        records.push(record);
    }
    Ok(StoredRuleset { ruleset, records })
}

/// What a backend must do to execute a planned write.
#[derive(Debug)]
pub(crate) enum Op {
    /// Insert a row with these columns (version 1).
    Insert(Columns),
    /// Replace the columns of row `id` (version + 1).
    Update { id: i64, columns: Columns },
    /// Delete row `id`.
    Delete { id: i64 },
}

/// A write that passed every check and the caller's validation.
#[derive(Debug)]
pub(crate) struct Plan {
    /// What to do.
    pub op: Op,
    /// The entity before the change.
    pub before: Option<Record>,
}

impl Plan {
    /// The record after the change, given the id the row got and the time of the write.
    pub fn after(&self, environment: &str, id: i64, now: Timestamp) -> Option<Record> {
        match &self.op {
            Op::Delete { .. } => None,
            Op::Insert(columns) => Some(Record {
                id,
                kind: columns.kind(),
                environment: environment.to_owned(),
                name: columns.name.clone(),
                version: 1,
                created_at: now,
                updated_at: now,
                body: columns.body(environment),
            }),
            Op::Update { columns, .. } => {
                let before = self.before.as_ref()?;
                Some(Record {
                    id,
                    kind: columns.kind(),
                    environment: environment.to_owned(),
                    name: columns.name.clone(),
                    version: before.version + 1,
                    created_at: before.created_at,
                    updated_at: now,
                    body: columns.body(environment),
                })
            }
        }
    }

    /// The audit action.
    pub fn action(&self) -> &'static str {
        match self.op {
            Op::Insert(_) => "create",
            Op::Update { .. } => "update",
            Op::Delete { .. } => "delete",
        }
    }
}

/// Checks a write against the environment's current ruleset and builds the candidate
/// ruleset, which the request's validator must accept. Check order: the target exists
/// (`NotFound`), `if_match` (`PreconditionFailed`), the body is an entity of the kind
/// (`Invalid`), its name is free (`Conflict`), the candidate validates (`Invalid`).
pub(crate) fn plan_write(
    request: &WriteRequest<'_>,
    current: &StoredRuleset,
) -> Result<Plan, StoreError> {
    let kind = request.kind;
    let env = request.environment;
    let of_kind: Vec<&Record> = current.records.iter().filter(|r| r.kind == kind).collect();
    let flags: Vec<(i64, String)> = current
        .records
        .iter()
        .filter(|r| r.kind == EntityKind::Flag)
        .map(|r| (r.id, r.name.clone()))
        .collect();
    let find = |target: &EntityRef| -> Result<(usize, &Record), StoreError> {
        of_kind
            .iter()
            .enumerate()
            .find(|(_, r)| match target {
                EntityRef::Id(id) => r.id == *id,
                EntityRef::Name(name) => r.name == *name,
            })
            .map(|(i, r)| (i, *r))
            .ok_or_else(|| StoreError::NotFound {
                what: format!("{kind} {target}"),
            })
    };
    let check_version = |record: &Record, if_match: Option<i64>| match if_match {
        Some(expected) if expected != record.version => Err(StoreError::PreconditionFailed {
            expected,
            current: record.version,
        }),
        _ => Ok(()),
    };
    let name_taken = |name: &str, except: Option<i64>| {
        of_kind
            .iter()
            .any(|r| r.name == name && Some(r.id) != except)
    };
    let conflict = |name: &str| StoreError::Conflict {
        what: format!("{kind} {name:?}"),
    };

    let mut candidate = current.ruleset.clone();
    candidate.environment = env.to_owned();
    candidate.version = current.ruleset.version.saturating_add(1);
    let plan = match &request.change {
        Change::Create { body } => {
            let (columns, entity) = split(kind, env, body.clone(), &flags)?;
            if name_taken(&columns.name, None) {
                return Err(conflict(&columns.name));
            }
            edit(&mut candidate, kind, Edit::Push(entity));
            Plan {
                op: Op::Insert(columns),
                before: None,
            }
        }
        Change::Update {
            target,
            body,
            if_match,
        } => {
            let (index, record) = find(target)?;
            check_version(record, *if_match)?;
            let (columns, entity) = split(kind, env, body.clone(), &flags)?;
            if name_taken(&columns.name, Some(record.id)) {
                return Err(conflict(&columns.name));
            }
            edit(&mut candidate, kind, Edit::Replace(index, entity));
            if kind == EntityKind::Flag && columns.name != record.name {
                // Experiments reference their flag by id: a rename carries them along.
                for experiment in &mut candidate.experiments {
                    if experiment.flag_id == Some(record.id) {
                        experiment.flag = Some(columns.name.clone());
                    }
                }
            }
            Plan {
                op: Op::Update {
                    id: record.id,
                    columns,
                },
                before: Some(record.clone()),
            }
        }
        Change::Delete { target, if_match } => {
            let (index, record) = find(target)?;
            check_version(record, *if_match)?;
            edit(&mut candidate, kind, Edit::Remove(index));
            Plan {
                op: Op::Delete { id: record.id },
                before: Some(record.clone()),
            }
        }
    };

    (request.validate)(&candidate).map_err(StoreError::Invalid)?;

    // Whatever the validator accepts, the foreign key must hold.
    if let (Op::Delete { id }, EntityKind::Flag) = (&plan.op, kind)
        && let Some((i, e)) = current
            .ruleset
            .experiments
            .iter()
            .enumerate()
            .find(|(_, e)| e.flag_id == Some(*id))
    {
        return Err(StoreError::Invalid(CompileError {
            path: JsonPath::root().key("experiments").index(i).key("flag_id"),
            kind: ErrorKind::Invalid(format!(
                "experiment {:?} refers to this flag; change or delete it first",
                e.name
            )),
        }));
    }
    Ok(plan)
}

enum Edit {
    Push(Entity),
    Replace(usize, Entity),
    Remove(usize),
}

fn edit(ruleset: &mut Ruleset, kind: EntityKind, change: Edit) {
    fn apply<T>(list: &mut Vec<T>, change: Edit, unwrap: fn(Entity) -> Option<T>) {
        match change {
            Edit::Push(e) => list.extend(unwrap(e)),
            Edit::Replace(i, e) => {
                if let (Some(slot), Some(value)) = (list.get_mut(i), unwrap(e)) {
                    *slot = value;
                }
            }
            Edit::Remove(i) => {
                if i < list.len() {
                    list.remove(i);
                }
            }
        }
    }
    match kind {
        EntityKind::Flag => apply(&mut ruleset.flags, change, |e| match e {
            Entity::Flag(f) => Some(f),
            _ => None,
        }),
        EntityKind::Config => apply(&mut ruleset.configs, change, |e| match e {
            Entity::Config(c) => Some(c),
            _ => None,
        }),
        EntityKind::Segment => apply(&mut ruleset.segments, change, |e| match e {
            Entity::Segment(s) => Some(s),
            _ => None,
        }),
        EntityKind::Experiment => apply(&mut ruleset.experiments, change, |e| match e {
            Entity::Experiment(x) => Some(x),
            _ => None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_flag_splits_into_columns_and_extra_and_reassembles() {
        let body = json!({"name": "f", "is_enabled": true, "rollout_percentage": 50,
            "tags": ["a"], "rules": [], "id": 7});
        let (columns, _) = split(EntityKind::Flag, "production", body, &[]).unwrap();
        assert_eq!(columns.extra, json!({"tags": ["a"], "rules": []}));
        assert_eq!(
            columns.cols,
            Cols::Flag {
                is_enabled: true,
                rollout_percentage: 50.0,
                targeting_rules: json!({})
            }
        );
        assert_eq!(
            columns.body("production"),
            json!({"name": "f", "description": "", "is_enabled": true,
                "rollout_percentage": 50.0, "targeting_rules": {}, "tags": ["a"], "rules": []})
        );
    }

    #[test]
    fn an_experiment_resolves_its_flag_both_ways() {
        let flags = [(3, "checkout".to_owned())];
        let (by_name, _) = split(
            EntityKind::Experiment,
            "production",
            json!({"name": "e", "flag": "checkout", "variants": ["control"]}),
            &flags,
        )
        .unwrap();
        let (by_id, _) = split(
            EntityKind::Experiment,
            "production",
            json!({"name": "e", "flag_id": 3, "variants": ["control"]}),
            &flags,
        )
        .unwrap();
        assert_eq!(by_name, by_id);
        assert_eq!(by_name.body("production")["flag"], json!("checkout"));
        assert_eq!(by_name.body("production")["flag_id"], json!(3));
        let err = split(
            EntityKind::Experiment,
            "production",
            json!({"name": "e", "flag_id": 4}),
            &flags,
        )
        .unwrap_err();
        let StoreError::Invalid(e) = err else {
            panic!("{err:?}")
        };
        assert_eq!(e.path.to_string(), "$.flag_id");
    }

    #[test]
    fn a_body_of_the_wrong_shape_is_invalid_with_its_path() {
        let err = split(
            EntityKind::Flag,
            "production",
            json!({"name": "f", "is_enabled": "yes"}),
            &[],
        )
        .unwrap_err();
        let StoreError::Invalid(e) = err else {
            panic!("{err:?}")
        };
        assert_eq!(e.path.to_string(), "$.is_enabled");
        assert!(split(EntityKind::Flag, "production", json!([1]), &[]).is_err());
    }
}
