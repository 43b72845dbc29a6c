//! The storage contract, tested once and run against both backends: every test below runs as
//! `sqlite::<name>` and as `postgres::<name>` (see `harness` for where the databases come
//! from).

mod harness;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use harness::Ctx;
use optifork_core::{CompileError, Engine, ErrorKind, JsonPath, Ruleset};
use optifork_storage::{
    AuditFilter, BatchOutcome, Change, EntityKind, EntityRef, Event, Exposure, ExposureFilter,
    KeyScope, MetricAggregate, NewApiKey, Record, Storage, StoreError, Validator, VariantCount,
    VariantExposure, WriteOutcome, WriteRequest,
};
use serde_json::{Value as Json, json};

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::harness::with_sqlite(super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::harness::with_postgres(super::$name).await;
                }
            )*
        }
    };
}

on_both_backends!(
    experiment_aggregates_use_first_exposures_and_ignore_earlier_events,
    migrations_apply_once_and_are_idempotent_on_reopen,
    concurrent_opens_migrate_once,
    production_exists_from_the_start,
    environments_are_created_once_with_an_audit_entry,
    flags_are_created_read_listed_updated_and_deleted,
    configs_are_created_read_listed_updated_and_deleted,
    segments_are_created_read_listed_updated_and_deleted,
    experiments_are_created_read_listed_updated_and_deleted,
    seed_fields_go_to_their_columns_and_extensions_to_extra,
    absent_seed_fields_take_the_model_defaults,
    the_entity_version_is_an_etag_that_increments_with_every_update,
    an_if_match_mismatch_is_precondition_failed_and_changes_nothing,
    duplicate_names_are_conflicts,
    missing_entities_and_environments_are_not_found,
    a_body_that_is_not_an_entity_is_invalid_with_its_path,
    a_validator_rejection_rolls_everything_back,
    the_validator_sees_the_candidate_ruleset,
    deleting_a_segment_a_flag_references_is_rejected_by_compile,
    experiments_resolve_flag_id_and_flag_name,
    the_environment_version_bumps_once_per_write,
    two_concurrent_writers_both_land_with_distinct_versions,
    exposures_are_inserted_in_batches_idempotently_by_batch_id,
    pruned_batch_ids_are_forgotten_and_recent_ones_kept,
    exposures_list_newest_first_with_filters_and_a_cursor,
    exposure_counts_per_variant_count_rows_and_distinct_users,
    events_are_inserted_idempotently,
    api_keys_are_created_listed_and_revoked_idempotently,
    every_write_has_an_audit_entry_with_before_and_after_and_filters_work,
    the_loaded_ruleset_compiles_and_carries_environment_and_version,
    reopening_keeps_everything,
);

const ENV: &str = "production";
const ACTOR: &str = "key_admin";

fn accept(_: &Ruleset) -> Result<(), CompileError> {
    Ok(())
}

fn compile(ruleset: &Ruleset) -> Result<(), CompileError> {
    Engine::compile(ruleset).map(|_| ())
}

fn request<'a>(kind: EntityKind, change: Change, validate: Validator<'a>) -> WriteRequest<'a> {
    WriteRequest {
        environment: ENV,
        kind,
        change,
        actor: ACTOR,
        validate,
    }
}

fn name(name: &str) -> EntityRef {
    EntityRef::Name(name.to_owned())
}

async fn create(s: &Arc<dyn Storage>, kind: EntityKind, body: Json) -> WriteOutcome {
    s.write(request(kind, Change::Create { body }, &compile))
        .await
        .unwrap_or_else(|e| panic!("create {kind}: {e}"))
}

async fn try_create(
    s: &Arc<dyn Storage>,
    kind: EntityKind,
    body: Json,
) -> Result<WriteOutcome, StoreError> {
    s.write(request(kind, Change::Create { body }, &compile))
        .await
}

async fn update(
    s: &Arc<dyn Storage>,
    kind: EntityKind,
    target: EntityRef,
    body: Json,
    if_match: Option<i64>,
) -> Result<WriteOutcome, StoreError> {
    let change = Change::Update {
        target,
        body,
        if_match,
    };
    s.write(request(kind, change, &compile)).await
}

async fn delete(
    s: &Arc<dyn Storage>,
    kind: EntityKind,
    target: EntityRef,
    if_match: Option<i64>,
) -> Result<WriteOutcome, StoreError> {
    s.write(request(kind, Change::Delete { target, if_match }, &compile))
        .await
}

async fn version(s: &Arc<dyn Storage>) -> i64 {
    s.ruleset_version(ENV).await.expect("ruleset version")
}

async fn audit_count(s: &Arc<dyn Storage>) -> usize {
    s.list_audit(&AuditFilter {
        limit: 1000,
        ..AuditFilter::default()
    })
    .await
    .expect("audit")
    .len()
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_760_000_000 + seconds, 123_456_000).expect("a valid timestamp")
}

fn exposure(
    flag: Option<&str>,
    experiment: Option<&str>,
    user: &str,
    variant: &str,
    t: i64,
) -> Exposure {
    Exposure {
        environment: ENV.into(),
        flag_name: flag.map(Into::into),
        experiment_name: experiment.map(Into::into),
        user_id: user.into(),
        variant: Some(variant.into()),
        enabled: flag.map(|_| variant == "on"),
        user_context: Some(json!({"country": "FR", "age": 31, "plan": {"tier": "pro"}})),
        timestamp: at(t),
    }
}

#[track_caller]
fn assert_invalid(result: Result<WriteOutcome, StoreError>, path: &str) -> ErrorKind {
    match result {
        Err(StoreError::Invalid(e)) => {
            assert_eq!(e.path.to_string(), path, "{e}");
            e.kind
        }
        other => panic!("expected Invalid at {path}, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Schema and environments

async fn migrations_apply_once_and_are_idempotent_on_reopen(ctx: Ctx) {
    let s = ctx.open().await;
    let applied = ctx.applied_migrations().await;
    assert!(!applied.is_empty());
    assert_eq!(applied, (1..=applied.len() as i64).collect::<Vec<_>>());
    create(&s, EntityKind::Flag, json!({"name": "kept"})).await;
    drop(s);

    let s = ctx.open().await;
    assert_eq!(
        ctx.applied_migrations().await,
        applied,
        "reopening applies nothing again"
    );
    let environments = s.list_environments().await.unwrap();
    assert_eq!(environments.len(), 1, "production is inserted once");
    assert_eq!(environments[0].version, 1);
    s.get(EntityKind::Flag, ENV, &name("kept")).await.unwrap();
    assert_eq!(s.backend(), ctx.backend());
    s.ping().await.unwrap();
}

async fn concurrent_opens_migrate_once(ctx: Ctx) {
    let (a, b) = tokio::join!(ctx.open(), ctx.open());
    let applied = ctx.applied_migrations().await;
    assert_eq!(applied, (1..=applied.len() as i64).collect::<Vec<_>>());
    assert_eq!(a.list_environments().await.unwrap().len(), 1);
    assert_eq!(b.list_environments().await.unwrap().len(), 1);
}

async fn production_exists_from_the_start(ctx: Ctx) {
    let s = ctx.open().await;
    let environments = s.list_environments().await.unwrap();
    assert_eq!(environments.len(), 1);
    assert_eq!(environments[0].name, "production");
    assert_eq!(environments[0].version, 0);
    assert_eq!(version(&s).await, 0);
    let loaded = s.load_ruleset(ENV).await.unwrap();
    assert_eq!(loaded.ruleset.environment, "production");
    assert_eq!(loaded.ruleset.version, 0);
    assert!(loaded.records.is_empty());
    for kind in EntityKind::ALL {
        assert!(s.list(kind, ENV).await.unwrap().is_empty());
    }
}

async fn environments_are_created_once_with_an_audit_entry(ctx: Ctx) {
    let s = ctx.open().await;
    let staging = s.create_environment("staging", ACTOR).await.unwrap();
    assert_eq!((staging.name.as_str(), staging.version), ("staging", 0));
    assert!(matches!(
        s.create_environment("staging", ACTOR).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        s.create_environment("", ACTOR).await,
        Err(StoreError::Invalid(_))
    ));
    let names: Vec<String> = s
        .list_environments()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["production", "staging"]);

    // Environments are separate rulesets with their own versions.
    let write = WriteRequest {
        environment: "staging",
        kind: EntityKind::Flag,
        change: Change::Create {
            body: json!({"name": "only_in_staging"}),
        },
        actor: ACTOR,
        validate: &compile,
    };
    assert_eq!(s.write(write).await.unwrap().ruleset_version, 1);
    assert_eq!(s.ruleset_version("staging").await.unwrap(), 1);
    assert_eq!(version(&s).await, 0);
    assert!(s.list(EntityKind::Flag, ENV).await.unwrap().is_empty());
    // The same name may exist in two environments.
    create(&s, EntityKind::Flag, json!({"name": "only_in_staging"})).await;

    let audit = s
        .list_audit(&AuditFilter {
            entity_type: Some("environment".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "create");
    assert_eq!(audit[0].entity_name, "staging");
    assert_eq!(audit[0].environment.as_deref(), Some("staging"));
    assert_eq!(audit[0].actor, ACTOR);
    assert_eq!(audit[0].after.as_ref().unwrap()["name"], "staging");
}

// ---------------------------------------------------------------------------------------------
// Entities

/// Create, get (by name and id), list, update, delete one entity of `kind`.
async fn crud(
    ctx: Ctx,
    kind: EntityKind,
    prerequisites: &[(EntityKind, Json)],
    body: Json,
    changed: Json,
) {
    let s = ctx.open().await;
    for (k, b) in prerequisites {
        create(&s, *k, b.clone()).await;
    }
    let base = version(&s).await;
    let entity = body["name"].as_str().unwrap().to_owned();

    let created = create(&s, kind, body.clone()).await;
    assert_eq!(created.before, None);
    assert_eq!(created.ruleset_version, base + 1);
    let record = created.after.expect("the created record");
    assert_eq!(record.kind, kind);
    assert_eq!(record.name, entity);
    assert_eq!(record.environment, ENV);
    assert_eq!(record.version, 1);
    assert_eq!(record.created_at, record.updated_at);
    assert!(record.id > 0);
    for (field, value) in body.as_object().unwrap() {
        assert_eq!(&record.body[field], value, "{field} is kept");
    }

    assert_eq!(s.get(kind, ENV, &name(&entity)).await.unwrap(), record);
    assert_eq!(
        s.get(kind, ENV, &EntityRef::Id(record.id)).await.unwrap(),
        record
    );
    assert_eq!(
        s.list(kind, ENV).await.unwrap(),
        std::slice::from_ref(&record)
    );

    let updated = update(&s, kind, name(&entity), changed.clone(), Some(1))
        .await
        .unwrap();
    assert_eq!(updated.before.as_ref(), Some(&record));
    let after = updated.after.expect("the updated record");
    assert_eq!(after.id, record.id);
    assert_eq!(after.version, 2);
    assert_eq!(after.created_at, record.created_at);
    assert!(after.updated_at >= record.updated_at);
    for (field, value) in changed.as_object().unwrap() {
        assert_eq!(&after.body[field], value, "{field} is updated");
    }
    assert_eq!(
        s.get(kind, ENV, &EntityRef::Id(record.id)).await.unwrap(),
        after
    );

    let new_name = after.name.clone();
    let deleted = delete(&s, kind, EntityRef::Id(record.id), Some(2))
        .await
        .unwrap();
    assert_eq!(deleted.after, None);
    assert_eq!(deleted.before, Some(after));
    assert_eq!(deleted.ruleset_version, base + 3);
    assert!(matches!(
        s.get(kind, ENV, &name(&new_name)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(s.list(kind, ENV).await.unwrap().is_empty());
}

async fn flags_are_created_read_listed_updated_and_deleted(ctx: Ctx) {
    crud(
        ctx,
        EntityKind::Flag,
        &[],
        json!({"name": "new_checkout", "description": "The one-page checkout", "is_enabled": true,
               "rollout_percentage": 25.0, "targeting_rules": {"country": {"$in": ["US", "CA"]}}}),
        json!({"name": "new_checkout_v2", "is_enabled": false, "rollout_percentage": 50.0,
               "tags": ["checkout"]}),
    )
    .await;
}

async fn configs_are_created_read_listed_updated_and_deleted(ctx: Ctx) {
    crud(
        ctx,
        EntityKind::Config,
        &[(
            EntityKind::Segment,
            json!({"name": "beta", "criteria": {"beta": true}}),
        )],
        json!({"name": "checkout", "config_data": {"max_items": 10, "theme": "dark"},
               "is_active": true, "environment": "production"}),
        json!({"name": "checkout", "config_data": {"max_items": 20}, "is_active": false,
               "overrides": [{"segment": "beta", "config_data": {"max_items": 99}}]}),
    )
    .await;
}

async fn segments_are_created_read_listed_updated_and_deleted(ctx: Ctx) {
    crud(
        ctx,
        EntityKind::Segment,
        &[],
        json!({"name": "premium_users", "description": "Paying", "criteria": {"tier": "premium"},
               "is_active": true}),
        json!({"name": "premium_users", "criteria": {"tier": {"$in": ["premium", "gold"]}},
               "is_active": false}),
    )
    .await;
}

async fn experiments_are_created_read_listed_updated_and_deleted(ctx: Ctx) {
    crud(
        ctx,
        EntityKind::Experiment,
        &[(
            EntityKind::Flag,
            json!({"name": "checkout_flag", "is_enabled": true}),
        )],
        json!({"name": "checkout_flow", "flag": "checkout_flag", "is_active": true,
               "variants": ["control", "one_page"],
               "traffic_splits": {"control": 50.0, "one_page": 50.0},
               "targeting_rules": {"country": "FR"}}),
        json!({"name": "checkout_flow", "is_active": false,
               "variants": ["control", {"name": "two_page", "description": "Two steps"}],
               "allocation": 20.0}),
    )
    .await;
}

async fn seed_fields_go_to_their_columns_and_extensions_to_extra(ctx: Ctx) {
    let s = ctx.open().await;
    let body = json!({
        "name": "banner", "description": "Home banner", "is_enabled": true,
        "rollout_percentage": 12.5, "targeting_rules": {"country": "FR"},
        "kind": "string",
        "variants": [{"name": "red", "value": "#f00"}, {"name": "blue", "value": "#00f"}],
        "rules": [{"condition": {"beta": true}, "serve": {"variant": "blue"}}],
        "default": {"variant": "red"}, "off_variant": "red", "tags": ["home"],
        "track": true, "x_custom": {"anything": [1, 2.5, null]}
    });
    let record = create(&s, EntityKind::Flag, body.clone())
        .await
        .after
        .unwrap();

    let raw = ctx.raw_flag("banner").await;
    assert!(raw.is_enabled);
    assert_eq!(raw.rollout_percentage, 12.5);
    assert_eq!(raw.targeting_rules, json!({"country": "FR"}));
    assert_eq!(
        raw.extra,
        json!({
            "kind": "string",
            "variants": [{"name": "red", "value": "#f00"}, {"name": "blue", "value": "#00f"}],
            "rules": [{"condition": {"beta": true}, "serve": {"variant": "blue"}}],
            "default": {"variant": "red"}, "off_variant": "red", "tags": ["home"],
            "track": true, "x_custom": {"anything": [1, 2.5, null]}
        }),
        "extra holds exactly the fields without a column"
    );
    assert_eq!(record.body, body, "the body is reassembled as written");
    assert_eq!(
        s.get(EntityKind::Flag, ENV, &name("banner"))
            .await
            .unwrap()
            .body,
        body
    );

    // Other kinds: the seed fields are not duplicated in extra.
    create(
        &s,
        EntityKind::Segment,
        json!({"name": "s", "criteria": {"a": 1}, "x": 1}),
    )
    .await;
    assert_eq!(ctx.raw_extra("segments", "s").await, json!({"x": 1}));
    create(
        &s,
        EntityKind::Config,
        json!({"name": "c", "config_data": {"a": 1},
        "overrides": [{"condition": {"b": 2}, "config_data": {"a": 2}}]}),
    )
    .await;
    assert_eq!(
        ctx.raw_extra("configs", "c").await,
        json!({"overrides": [{"condition": {"b": 2}, "config_data": {"a": 2}}]})
    );
    let experiment = create(
        &s,
        EntityKind::Experiment,
        json!({"name": "e", "flag": "banner",
        "variants": ["control", "b"], "salt": "s1", "layer": {"name": "l", "range": [0.0, 50.0]}}),
    )
    .await
    .after
    .unwrap();
    assert_eq!(
        ctx.raw_extra("experiments", "e").await,
        json!({"salt": "s1", "layer": {"name": "l", "range": [0.0, 50.0]}}),
        "the flag lives in flag_id, not in extra"
    );
    assert_eq!(experiment.body["flag"], "banner");
    assert_eq!(experiment.body["flag_id"], record.id);
}

async fn absent_seed_fields_take_the_model_defaults(ctx: Ctx) {
    let s = ctx.open().await;
    let minimal = |kind| {
        request(
            kind,
            Change::Create {
                body: json!({"name": "m"}),
            },
            &accept,
        )
    };
    let body = |o: WriteOutcome| o.after.unwrap().body;
    assert_eq!(
        body(s.write(minimal(EntityKind::Flag)).await.unwrap()),
        json!({"name": "m", "description": "", "is_enabled": false,
               "rollout_percentage": 100.0, "targeting_rules": {}})
    );
    assert_eq!(
        body(s.write(minimal(EntityKind::Config)).await.unwrap()),
        json!({"name": "m", "description": "", "config_data": {}, "is_active": true,
               "environment": "production"})
    );
    assert_eq!(
        body(s.write(minimal(EntityKind::Segment)).await.unwrap()),
        json!({"name": "m", "description": "", "criteria": {}, "is_active": true})
    );
    assert_eq!(
        body(s.write(minimal(EntityKind::Experiment)).await.unwrap()),
        json!({"name": "m", "description": "", "is_active": false, "variants": [],
               "traffic_splits": null, "targeting_rules": {}})
    );
    // Every body reads back complete, and deserializes as its kind.
    let loaded = s.load_ruleset(ENV).await.unwrap();
    assert_eq!(loaded.ruleset.flags[0].rollout_percentage, 100.0);
    assert!(loaded.ruleset.configs[0].is_active);
    assert!(!loaded.ruleset.experiments[0].is_active);
}

async fn the_entity_version_is_an_etag_that_increments_with_every_update(ctx: Ctx) {
    let s = ctx.open().await;
    let created = create(&s, EntityKind::Segment, json!({"name": "s"})).await;
    assert_eq!(created.after.unwrap().version, 1);
    for expected in 2..=4 {
        let body = json!({"name": "s", "criteria": {"n": expected}});
        let outcome = update(&s, EntityKind::Segment, name("s"), body, None)
            .await
            .unwrap();
        assert_eq!(outcome.after.unwrap().version, expected);
    }
    let outcome = update(
        &s,
        EntityKind::Segment,
        name("s"),
        json!({"name": "s"}),
        Some(4),
    )
    .await
    .unwrap();
    assert_eq!(outcome.before.unwrap().version, 4);
    assert_eq!(outcome.after.unwrap().version, 5);
    assert_eq!(
        s.get(EntityKind::Segment, ENV, &name("s"))
            .await
            .unwrap()
            .version,
        5
    );
}

async fn an_if_match_mismatch_is_precondition_failed_and_changes_nothing(ctx: Ctx) {
    let s = ctx.open().await;
    let record = create(&s, EntityKind::Flag, json!({"name": "f"}))
        .await
        .after
        .unwrap();
    let audit = audit_count(&s).await;
    let result = update(
        &s,
        EntityKind::Flag,
        name("f"),
        json!({"name": "f", "is_enabled": true}),
        Some(7),
    )
    .await;
    assert!(
        matches!(
            result,
            Err(StoreError::PreconditionFailed {
                expected: 7,
                current: 1
            })
        ),
        "{result:?}"
    );
    let result = delete(&s, EntityKind::Flag, name("f"), Some(0)).await;
    assert!(
        matches!(
            result,
            Err(StoreError::PreconditionFailed {
                expected: 0,
                current: 1
            })
        ),
        "{result:?}"
    );
    // The precondition is checked before the body and before validation.
    let result = update(
        &s,
        EntityKind::Flag,
        name("f"),
        json!("not an object"),
        Some(2),
    )
    .await;
    assert!(
        matches!(result, Err(StoreError::PreconditionFailed { .. })),
        "{result:?}"
    );
    assert_eq!(
        s.get(EntityKind::Flag, ENV, &name("f")).await.unwrap(),
        record
    );
    assert_eq!(version(&s).await, 1);
    assert_eq!(audit_count(&s).await, audit);
}

async fn duplicate_names_are_conflicts(ctx: Ctx) {
    let s = ctx.open().await;
    create(&s, EntityKind::Flag, json!({"name": "a"})).await;
    create(&s, EntityKind::Flag, json!({"name": "b"})).await;
    let result = try_create(
        &s,
        EntityKind::Flag,
        json!({"name": "a", "is_enabled": true}),
    )
    .await;
    assert!(
        matches!(&result, Err(StoreError::Conflict { what }) if what == "flag \"a\""),
        "{result:?}"
    );
    let result = update(&s, EntityKind::Flag, name("b"), json!({"name": "a"}), None).await;
    assert!(
        matches!(result, Err(StoreError::Conflict { .. })),
        "{result:?}"
    );
    // Keeping one's own name is no conflict, and other kinds have their own names.
    update(
        &s,
        EntityKind::Flag,
        name("b"),
        json!({"name": "b", "is_enabled": true}),
        None,
    )
    .await
    .unwrap();
    create(&s, EntityKind::Segment, json!({"name": "a"})).await;
    assert_eq!(s.list(EntityKind::Flag, ENV).await.unwrap().len(), 2);
    assert_eq!(version(&s).await, 4);
}

async fn missing_entities_and_environments_are_not_found(ctx: Ctx) {
    let s = ctx.open().await;
    create(&s, EntityKind::Flag, json!({"name": "f"})).await;
    let missing = [name("nope"), EntityRef::Id(987_654)];
    for target in missing {
        let result = update(
            &s,
            EntityKind::Flag,
            target.clone(),
            json!({"name": "x"}),
            None,
        )
        .await;
        assert!(
            matches!(result, Err(StoreError::NotFound { .. })),
            "{result:?}"
        );
        let result = delete(&s, EntityKind::Flag, target.clone(), Some(1)).await;
        assert!(
            matches!(result, Err(StoreError::NotFound { .. })),
            "{result:?}"
        );
        assert!(matches!(
            s.get(EntityKind::Flag, ENV, &target).await,
            Err(StoreError::NotFound { .. })
        ));
    }
    let result = update(
        &s,
        EntityKind::Segment,
        name("f"),
        json!({"name": "f"}),
        None,
    )
    .await;
    assert!(
        matches!(&result, Err(StoreError::NotFound { what }) if what == "segment \"f\""),
        "a flag is not a segment: {result:?}"
    );
    let write = WriteRequest {
        environment: "nowhere",
        kind: EntityKind::Flag,
        change: Change::Create {
            body: json!({"name": "f"}),
        },
        actor: ACTOR,
        validate: &compile,
    };
    let result = s.write(write).await;
    assert!(
        matches!(&result, Err(StoreError::NotFound { what }) if what.contains("nowhere")),
        "{result:?}"
    );
    assert!(matches!(
        s.ruleset_version("nowhere").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.load_ruleset("nowhere").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.list(EntityKind::Flag, "nowhere").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.get(EntityKind::Flag, "nowhere", &name("f")).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(version(&s).await, 1);
}

async fn a_body_that_is_not_an_entity_is_invalid_with_its_path(ctx: Ctx) {
    let s = ctx.open().await;
    let kind = assert_invalid(
        try_create(
            &s,
            EntityKind::Flag,
            json!({"name": "f", "is_enabled": "yes"}),
        )
        .await,
        "$.is_enabled",
    );
    assert!(matches!(kind, ErrorKind::Invalid(_)));
    assert_invalid(
        try_create(
            &s,
            EntityKind::Flag,
            json!({"name": "f", "rules": [{"serve": 3}]}),
        )
        .await,
        "$.rules[0].serve",
    );
    assert_invalid(try_create(&s, EntityKind::Segment, json!(["s"])).await, "$");
    assert_invalid(
        try_create(&s, EntityKind::Config, json!({"config_data": {}})).await,
        "$",
    );
    assert!(s.load_ruleset(ENV).await.unwrap().records.is_empty());
    assert_eq!(version(&s).await, 0);
    assert_eq!(audit_count(&s).await, 0);
}

async fn a_validator_rejection_rolls_everything_back(ctx: Ctx) {
    let s = ctx.open().await;
    let refuse = |_: &Ruleset| -> Result<(), CompileError> {
        Err(CompileError {
            path: JsonPath::root().key("flags").index(0),
            kind: ErrorKind::Invalid("refused by the test".into()),
        })
    };
    let result = s
        .write(request(
            EntityKind::Flag,
            Change::Create {
                body: json!({"name": "f"}),
            },
            &refuse,
        ))
        .await;
    let kind = assert_invalid(result, "$.flags[0]");
    assert_eq!(kind, ErrorKind::Invalid("refused by the test".into()));
    assert!(
        s.list(EntityKind::Flag, ENV).await.unwrap().is_empty(),
        "no row"
    );
    assert_eq!(audit_count(&s).await, 0, "no audit entry");
    assert_eq!(version(&s).await, 0, "version unchanged");

    let record = create(&s, EntityKind::Flag, json!({"name": "f"}))
        .await
        .after
        .unwrap();
    let change = Change::Update {
        target: name("f"),
        body: json!({"name": "g", "is_enabled": true}),
        if_match: Some(1),
    };
    assert!(
        s.write(request(EntityKind::Flag, change, &refuse))
            .await
            .is_err()
    );
    let change = Change::Delete {
        target: name("f"),
        if_match: None,
    };
    assert!(
        s.write(request(EntityKind::Flag, change, &refuse))
            .await
            .is_err()
    );
    assert_eq!(s.list(EntityKind::Flag, ENV).await.unwrap(), [record]);
    assert_eq!(audit_count(&s).await, 1);
    assert_eq!(version(&s).await, 1);
    // The storage is usable after a rollback.
    create(&s, EntityKind::Flag, json!({"name": "h"})).await;
    assert_eq!(version(&s).await, 2);
}

async fn the_validator_sees_the_candidate_ruleset(ctx: Ctx) {
    let s = ctx.open().await;
    create(
        &s,
        EntityKind::Segment,
        json!({"name": "seg", "criteria": {"a": 1}}),
    )
    .await;
    create(&s, EntityKind::Flag, json!({"name": "a"})).await;
    create(&s, EntityKind::Flag, json!({"name": "b"})).await;
    let seen: Mutex<Vec<Ruleset>> = Mutex::new(Vec::new());
    let record = |r: &Ruleset| -> Result<(), CompileError> {
        seen.lock().unwrap().push(r.clone());
        compile(r)
    };
    let flag_names = |r: &Ruleset| r.flags.iter().map(|f| f.name.clone()).collect::<Vec<_>>();

    let change = Change::Update {
        target: name("a"),
        body: json!({"name": "a2", "is_enabled": true, "targeting_rules": {"$segment": "seg"}}),
        if_match: None,
    };
    s.write(request(EntityKind::Flag, change, &record))
        .await
        .unwrap();
    let change = Change::Create {
        body: json!({"name": "c", "rollout_percentage": 10}),
    };
    s.write(request(EntityKind::Flag, change, &record))
        .await
        .unwrap();
    let change = Change::Delete {
        target: name("b"),
        if_match: None,
    };
    s.write(request(EntityKind::Flag, change, &record))
        .await
        .unwrap();

    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), 3, "called once per write");
    assert_eq!(flag_names(&seen[0]), ["a2", "b"], "replaced in place");
    assert!(seen[0].flags[0].is_enabled);
    assert_eq!(seen[0].flags[0].targeting_rules, json!({"$segment": "seg"}));
    assert_eq!(flag_names(&seen[1]), ["a2", "b", "c"], "appended");
    assert_eq!(seen[1].flags[2].rollout_percentage, 10.0);
    assert_eq!(flag_names(&seen[2]), ["a2", "c"], "removed");
    for (i, candidate) in seen.iter().enumerate() {
        assert_eq!(candidate.environment, ENV);
        assert_eq!(
            candidate.version,
            4 + i as u64,
            "the version the write will produce"
        );
        assert_eq!(candidate.segments.len(), 1, "the whole ruleset");
        assert_eq!(candidate.segments[0].name, "seg");
    }
    // What the validator saw is what is stored.
    let mut stored = s.load_ruleset(ENV).await.unwrap().ruleset;
    assert_eq!(stored.version, 6);
    stored.version = seen[2].version;
    assert_eq!(stored, seen[2]);
}

async fn deleting_a_segment_a_flag_references_is_rejected_by_compile(ctx: Ctx) {
    let s = ctx.open().await;
    create(
        &s,
        EntityKind::Segment,
        json!({"name": "premium", "criteria": {"tier": "premium"}}),
    )
    .await;
    create(
        &s,
        EntityKind::Flag,
        json!({"name": "f", "is_enabled": true, "targeting_rules": {"$segment": "premium"}}),
    )
    .await;
    let result = delete(&s, EntityKind::Segment, name("premium"), None).await;
    let kind = assert_invalid(result, "$.flags[0].targeting_rules[\"$segment\"]");
    assert_eq!(kind, ErrorKind::UnknownSegment("premium".into()));
    assert_eq!(s.list(EntityKind::Segment, ENV).await.unwrap().len(), 1);
    assert_eq!(version(&s).await, 2);
    // Once the flag no longer refers to it, the segment can go.
    update(&s, EntityKind::Flag, name("f"), json!({"name": "f"}), None)
        .await
        .unwrap();
    delete(&s, EntityKind::Segment, name("premium"), None)
        .await
        .unwrap();
}

async fn experiments_resolve_flag_id_and_flag_name(ctx: Ctx) {
    let s = ctx.open().await;
    create(&s, EntityKind::Flag, json!({"name": "other"})).await;
    let flag = create(&s, EntityKind::Flag, json!({"name": "checkout"}))
        .await
        .after
        .unwrap();
    let variants = json!(["control", "treatment"]);

    let by_name = create(
        &s,
        EntityKind::Experiment,
        json!({"name": "by_name", "flag": "checkout", "variants": variants}),
    )
    .await
    .after
    .unwrap();
    assert_eq!(by_name.body["flag_id"], flag.id);
    assert_eq!(by_name.body["flag"], "checkout");
    let by_id = create(
        &s,
        EntityKind::Experiment,
        json!({"name": "by_id", "flag_id": flag.id, "variants": variants}),
    )
    .await
    .after
    .unwrap();
    assert_eq!(by_id.body["flag_id"], flag.id);
    assert_eq!(by_id.body["flag"], "checkout");
    // `flag` wins over a stale `flag_id`.
    let both = create(
        &s,
        EntityKind::Experiment,
        json!({"name": "both", "flag": "checkout", "flag_id": 0, "variants": variants}),
    )
    .await
    .after
    .unwrap();
    assert_eq!(both.body["flag_id"], flag.id);
    let none = create(
        &s,
        EntityKind::Experiment,
        json!({"name": "none", "variants": variants}),
    )
    .await
    .after
    .unwrap();
    assert!(none.body.get("flag").is_none() && none.body.get("flag_id").is_none());

    for record in [&by_name, &by_id] {
        let read = s
            .get(EntityKind::Experiment, ENV, &EntityRef::Id(record.id))
            .await
            .unwrap();
        assert_eq!(&read, record);
    }
    let loaded = s.load_ruleset(ENV).await.unwrap().ruleset;
    assert_eq!(loaded.experiments[0].flag.as_deref(), Some("checkout"));
    assert_eq!(loaded.experiments[0].flag_id, Some(flag.id));

    // An unknown id is refused by storage, an unknown name by compilation.
    let result = try_create(
        &s,
        EntityKind::Experiment,
        json!({"name": "x", "flag_id": flag.id + 1000, "variants": variants}),
    )
    .await;
    assert!(matches!(
        assert_invalid(result, "$.flag_id"),
        ErrorKind::Invalid(_)
    ));
    let result = try_create(
        &s,
        EntityKind::Experiment,
        json!({"name": "x", "flag": "ghost", "variants": variants}),
    )
    .await;
    match result {
        Err(StoreError::Invalid(e)) => assert_eq!(e.kind, ErrorKind::UnknownFlag("ghost".into())),
        other => panic!("{other:?}"),
    }

    // The reference is the id: renaming the flag carries the experiments along.
    update(
        &s,
        EntityKind::Flag,
        name("checkout"),
        json!({"name": "checkout_v2"}),
        None,
    )
    .await
    .unwrap();
    let read = s
        .get(EntityKind::Experiment, ENV, &name("by_name"))
        .await
        .unwrap();
    assert_eq!(read.body["flag"], "checkout_v2");
    assert_eq!(read.body["flag_id"], flag.id);
    // A flag an experiment refers to cannot be deleted, whatever the validator says.
    let result = delete(&s, EntityKind::Flag, name("checkout_v2"), None).await;
    assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
    let change = Change::Delete {
        target: name("checkout_v2"),
        if_match: None,
    };
    let result = s.write(request(EntityKind::Flag, change, &accept)).await;
    assert_invalid(result, "$.experiments[0].flag_id");
    assert!(
        s.get(EntityKind::Flag, ENV, &name("checkout_v2"))
            .await
            .is_ok()
    );
}

async fn the_environment_version_bumps_once_per_write(ctx: Ctx) {
    let s = ctx.open().await;
    s.create_environment("staging", ACTOR).await.unwrap();
    let mut expected = 0;
    let mut check = |outcome: WriteOutcome| {
        expected += 1;
        assert_eq!(outcome.ruleset_version, expected);
    };
    check(create(&s, EntityKind::Segment, json!({"name": "s"})).await);
    check(create(&s, EntityKind::Flag, json!({"name": "f"})).await);
    check(
        update(
            &s,
            EntityKind::Flag,
            name("f"),
            json!({"name": "f", "is_enabled": true}),
            None,
        )
        .await
        .unwrap(),
    );
    check(create(&s, EntityKind::Config, json!({"name": "c"})).await);
    check(
        delete(&s, EntityKind::Config, name("c"), None)
            .await
            .unwrap(),
    );
    // Failed writes do not bump it.
    assert!(
        try_create(&s, EntityKind::Flag, json!({"name": "f"}))
            .await
            .is_err()
    );
    assert!(
        delete(&s, EntityKind::Flag, name("ghost"), None)
            .await
            .is_err()
    );
    assert_eq!(version(&s).await, 5);
    assert_eq!(s.load_ruleset(ENV).await.unwrap().ruleset.version, 5);
    assert_eq!(s.ruleset_version("staging").await.unwrap(), 0);
}

async fn two_concurrent_writers_both_land_with_distinct_versions(ctx: Ctx) {
    let s = ctx.open().await;
    let (a, b) = tokio::join!(
        try_create(&s, EntityKind::Flag, json!({"name": "a"})),
        try_create(&s, EntityKind::Flag, json!({"name": "b"})),
    );
    let versions: BTreeSet<i64> = [a.unwrap().ruleset_version, b.unwrap().ruleset_version].into();
    assert_eq!(versions, BTreeSet::from([1, 2]));
    assert_eq!(version(&s).await, 2);
    assert_eq!(s.list(EntityKind::Flag, ENV).await.unwrap().len(), 2);

    // Many at once, from several tasks.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                try_create(&s, EntityKind::Segment, json!({"name": format!("s{i}")})).await
            })
        })
        .collect();
    let mut versions = BTreeSet::new();
    for task in tasks {
        versions.insert(task.await.unwrap().unwrap().ruleset_version);
    }
    assert_eq!(versions, (3..=10).collect());

    // Two updates of one entity expecting the same version: exactly one lands.
    let (a, b) = tokio::join!(
        update(
            &s,
            EntityKind::Flag,
            name("a"),
            json!({"name": "a", "is_enabled": true}),
            Some(1)
        ),
        update(
            &s,
            EntityKind::Flag,
            name("a"),
            json!({"name": "a", "rollout_percentage": 5}),
            Some(1)
        ),
    );
    let failed = [&a, &b]
        .iter()
        .filter(|r| {
            matches!(
                r,
                Err(StoreError::PreconditionFailed {
                    expected: 1,
                    current: 2
                })
            )
        })
        .count();
    assert_eq!(
        (a.is_ok() as usize + b.is_ok() as usize, failed),
        (1, 1),
        "{a:?} {b:?}"
    );
    assert_eq!(version(&s).await, 11);
}

// ---------------------------------------------------------------------------------------------
// Exposures and events

async fn pruned_batch_ids_are_forgotten_and_recent_ones_kept(ctx: Ctx) {
    let s = ctx.open().await;
    let rows = [exposure(Some("f"), None, "u1", "on", 0)];
    let event = event("u1", "purchase", None, 0);
    s.insert_exposures(Some("old"), &rows).await.unwrap();
    s.insert_events(Some("old"), std::slice::from_ref(&event))
        .await
        .unwrap();
    // A cutoff before the batches arrived keeps them.
    let an_hour_ago = Utc::now() - chrono::Duration::hours(1);
    assert_eq!(s.prune_batch_ids(an_hour_ago).await.unwrap(), 0);
    assert_eq!(
        s.insert_exposures(Some("old"), &rows).await.unwrap(),
        BatchOutcome::Duplicate
    );
    // A cutoff after they arrived forgets both kinds; later ones are kept.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let cutoff = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    s.insert_exposures(Some("new"), &rows).await.unwrap();
    assert_eq!(s.prune_batch_ids(cutoff).await.unwrap(), 2);
    assert_eq!(ctx.count("ingested_batches").await, 1);
    // A retry of a forgotten batch is written again; the kept one is still deduplicated.
    assert_eq!(
        s.insert_exposures(Some("old"), &rows).await.unwrap(),
        BatchOutcome::Inserted(1)
    );
    assert_eq!(
        s.insert_exposures(Some("new"), &rows).await.unwrap(),
        BatchOutcome::Duplicate
    );
    assert_eq!(ctx.count("exposures").await, 3);
}

async fn exposures_are_inserted_in_batches_idempotently_by_batch_id(ctx: Ctx) {
    let s = ctx.open().await;
    let rows: Vec<Exposure> = (0..150)
        .map(|i| exposure(Some("f"), None, &format!("u{i}"), "on", i))
        .collect();
    assert_eq!(
        s.insert_exposures(Some("batch-1"), &rows).await.unwrap(),
        BatchOutcome::Inserted(150)
    );
    assert_eq!(
        s.insert_exposures(Some("batch-1"), &rows).await.unwrap(),
        BatchOutcome::Duplicate
    );
    assert_eq!(ctx.count("exposures").await, 150);
    // Without an id, nothing is deduplicated.
    assert_eq!(
        s.insert_exposures(None, &rows[..3]).await.unwrap(),
        BatchOutcome::Inserted(3)
    );
    assert_eq!(
        s.insert_exposures(None, &rows[..3]).await.unwrap(),
        BatchOutcome::Inserted(3)
    );
    assert_eq!(
        s.insert_exposures(None, &[]).await.unwrap(),
        BatchOutcome::Inserted(0)
    );
    // An empty batch with an id still counts as written.
    assert_eq!(
        s.insert_exposures(Some("empty"), &[]).await.unwrap(),
        BatchOutcome::Inserted(0)
    );
    assert_eq!(
        s.insert_exposures(Some("empty"), &rows).await.unwrap(),
        BatchOutcome::Duplicate
    );
    assert_eq!(ctx.count("exposures").await, 156);
    // Concurrent retries of one batch write it once.
    let (a, b) = tokio::join!(
        s.insert_exposures(Some("batch-2"), &rows),
        s.insert_exposures(Some("batch-2"), &rows),
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    assert!(outcomes.contains(&BatchOutcome::Inserted(150)));
    assert!(outcomes.contains(&BatchOutcome::Duplicate));
    assert_eq!(ctx.count("exposures").await, 306);
    // Batch ids of exposures and events are separate.
    let event = Event {
        environment: ENV.into(),
        event_name: "purchase".into(),
        user_id: "u1".into(),
        value: Some(9.5),
        properties: None,
        timestamp: at(0),
    };
    assert_eq!(
        s.insert_events(Some("batch-1"), &[event]).await.unwrap(),
        BatchOutcome::Inserted(1)
    );
}

async fn exposures_list_newest_first_with_filters_and_a_cursor(ctx: Ctx) {
    let s = ctx.open().await;
    let mut rows = Vec::new();
    for i in 0..40 {
        let flag = if i % 2 == 0 { "even" } else { "odd" };
        rows.push(exposure(
            Some(flag),
            None,
            &format!("u{i}"),
            if i % 4 < 2 { "on" } else { "off" },
            i,
        ));
    }
    rows.push(exposure(None, Some("exp"), "u1", "control", 100));
    rows.push(Exposure {
        environment: "staging".into(),
        user_context: None,
        enabled: None,
        variant: None,
        ..exposure(Some("even"), None, "u0", "on", 0)
    });
    s.insert_exposures(None, &rows).await.unwrap();

    let all = s
        .list_exposures(ENV, &ExposureFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 41, "one environment only; limit 0 means 100");
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert_eq!(all[0].exposure, rows[40], "stored as sent");
    assert_eq!(all[40].exposure, rows[0]);
    let staging = s
        .list_exposures("staging", &ExposureFilter::default())
        .await
        .unwrap();
    assert_eq!(staging.len(), 1);
    assert_eq!(staging[0].exposure, rows[41], "nulls round-trip");

    let even = ExposureFilter {
        flag_name: Some("even".into()),
        ..ExposureFilter::default()
    };
    let listed = s.list_exposures(ENV, &even).await.unwrap();
    assert_eq!(listed.len(), 20);
    assert!(
        listed
            .iter()
            .all(|r| r.exposure.flag_name.as_deref() == Some("even"))
    );

    let experiment = ExposureFilter {
        experiment_name: Some("exp".into()),
        ..ExposureFilter::default()
    };
    assert_eq!(s.list_exposures(ENV, &experiment).await.unwrap().len(), 1);

    let window = ExposureFilter {
        since: Some(at(10)),
        until: Some(at(20)),
        ..ExposureFilter::default()
    };
    let listed = s.list_exposures(ENV, &window).await.unwrap();
    assert_eq!(listed.len(), 10, "since is inclusive, until exclusive");
    assert_eq!(listed[0].exposure.timestamp, at(19));
    assert_eq!(listed[9].exposure.timestamp, at(10));

    // Pages of 15 through the cursor.
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let filter = ExposureFilter {
            before_id: cursor,
            limit: 15,
            ..ExposureFilter::default()
        };
        let page = s.list_exposures(ENV, &filter).await.unwrap();
        let Some(last) = page.last() else { break };
        cursor = Some(last.id);
        pages.push(page.len());
        if pages.len() > 10 {
            panic!("the cursor does not advance");
        }
    }
    assert_eq!(pages, [15, 15, 11]);

    // The limit is capped at 1000.
    let many: Vec<Exposure> = (0..1100)
        .map(|i| exposure(Some("bulk"), None, "u", "on", i))
        .collect();
    s.insert_exposures(None, &many).await.unwrap();
    let capped = ExposureFilter {
        limit: 5000,
        ..ExposureFilter::default()
    };
    assert_eq!(s.list_exposures(ENV, &capped).await.unwrap().len(), 1000);
}

async fn exposure_counts_per_variant_count_rows_and_distinct_users(ctx: Ctx) {
    let s = ctx.open().await;
    let rows = vec![
        exposure(None, Some("exp"), "u1", "control", 0),
        exposure(None, Some("exp"), "u1", "control", 1),
        exposure(None, Some("exp"), "u2", "control", 2),
        exposure(None, Some("exp"), "u3", "treatment", 3),
        exposure(None, Some("exp"), "u3", "treatment", 4),
        exposure(None, Some("exp"), "u3", "treatment", 5),
        exposure(None, Some("other"), "u4", "treatment", 6),
        Exposure {
            environment: "staging".into(),
            ..exposure(None, Some("exp"), "u5", "control", 7)
        },
    ];
    s.insert_exposures(Some("b"), &rows).await.unwrap();
    let counts = s.experiment_exposure_counts(ENV, "exp").await.unwrap();
    assert_eq!(
        counts,
        [
            VariantCount {
                variant: "control".into(),
                exposures: 3,
                users: 2
            },
            VariantCount {
                variant: "treatment".into(),
                exposures: 3,
                users: 1
            },
        ]
    );
    assert!(
        s.experiment_exposure_counts(ENV, "none")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn events_are_inserted_idempotently(ctx: Ctx) {
    let s = ctx.open().await;
    let events: Vec<Event> = (0..70)
        .map(|i| Event {
            environment: ENV.into(),
            event_name: if i % 2 == 0 {
                "purchase".into()
            } else {
                "signup".into()
            },
            user_id: format!("u{i}"),
            value: (i % 2 == 0).then_some(f64::from(i) * 1.5),
            properties: (i % 3 == 0).then(|| json!({"sku": format!("sku-{i}")})),
            timestamp: at(i64::from(i)),
        })
        .collect();
    assert_eq!(
        s.insert_events(Some("e1"), &events).await.unwrap(),
        BatchOutcome::Inserted(70)
    );
    assert_eq!(
        s.insert_events(Some("e1"), &events).await.unwrap(),
        BatchOutcome::Duplicate
    );
    assert_eq!(
        s.insert_events(None, &events[..5]).await.unwrap(),
        BatchOutcome::Inserted(5)
    );
    assert_eq!(ctx.count("events").await, 75);
    assert_eq!(ctx.count("exposures").await, 0);
}

// ---------------------------------------------------------------------------------------------
// API keys and the audit log

async fn api_keys_are_created_listed_and_revoked_idempotently(ctx: Ctx) {
    let s = ctx.open().await;
    let admin = NewApiKey {
        id: "k1".into(),
        name: "Admin".into(),
        scope: KeyScope::Admin,
        environment: None,
        secret_hash: vec![0, 1, 2, 255],
    };
    let sdk = NewApiKey {
        id: "k2".into(),
        name: "Web SDK".into(),
        scope: KeyScope::Sdk,
        environment: Some(ENV.into()),
        secret_hash: vec![9; 32],
    };
    let created_admin = s.create_api_key(&admin, "bootstrap").await.unwrap();
    assert_eq!(created_admin.secret_hash, admin.secret_hash);
    assert_eq!(created_admin.revoked_at, None);
    let created_sdk = s.create_api_key(&sdk, "k1").await.unwrap();
    assert!(matches!(
        s.create_api_key(&admin, "k1").await,
        Err(StoreError::Conflict { .. })
    ));
    let lost = NewApiKey {
        id: "k3".into(),
        environment: Some("nowhere".into()),
        ..sdk.clone()
    };
    assert!(matches!(
        s.create_api_key(&lost, "k1").await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        s.list_api_keys().await.unwrap(),
        [created_admin.clone(), created_sdk.clone()]
    );

    let revoked = s.revoke_api_key("k2", "k1").await.unwrap();
    let revoked_at = revoked.revoked_at.expect("revoked");
    let again = s.revoke_api_key("k2", "k1").await.unwrap();
    assert_eq!(
        again.revoked_at,
        Some(revoked_at),
        "the first revocation time is kept"
    );
    assert!(matches!(
        s.revoke_api_key("nope", "k1").await,
        Err(StoreError::NotFound { .. })
    ));
    let keys = s.list_api_keys().await.unwrap();
    assert_eq!(keys[0], created_admin);
    assert_eq!(keys[1], revoked);

    let audit = s
        .list_audit(&AuditFilter {
            entity_type: Some("api_key".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|e| (e.action.as_str(), e.entity_name.as_str()))
        .collect();
    assert_eq!(
        actions,
        [("revoke", "k2"), ("create", "k2"), ("create", "k1")]
    );
    assert_eq!(audit[2].actor, "bootstrap");
    assert_eq!(audit[1].environment.as_deref(), Some(ENV));
    assert_eq!(audit[2].environment, None);
    for entry in &audit {
        let after = entry.after.as_ref().unwrap();
        assert!(
            after.get("secret_hash").is_none(),
            "the hash never reaches the audit log"
        );
        assert_eq!(after["id"], entry.entity_name.as_str());
    }
    assert_eq!(audit[0].before.as_ref().unwrap()["revoked_at"], Json::Null);
    assert!(audit[0].after.as_ref().unwrap()["revoked_at"].is_string());
}

async fn every_write_has_an_audit_entry_with_before_and_after_and_filters_work(ctx: Ctx) {
    let s = ctx.open().await;
    s.create_environment("staging", ACTOR).await.unwrap();
    let created = create(&s, EntityKind::Flag, json!({"name": "f"})).await;
    let updated = update(
        &s,
        EntityKind::Flag,
        name("f"),
        json!({"name": "f", "is_enabled": true}),
        None,
    )
    .await
    .unwrap();
    let deleted = delete(&s, EntityKind::Flag, name("f"), None).await.unwrap();
    create(&s, EntityKind::Segment, json!({"name": "f"})).await;

    let all = s.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");

    let flag_entries = s
        .list_audit(&AuditFilter {
            entity_type: Some("flag".into()),
            entity_name: Some("f".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = flag_entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["delete", "update", "create"]);
    let json = |r: &Option<Record>| r.as_ref().map(|r| serde_json::to_value(r).unwrap());
    let (d, u, c) = (&flag_entries[0], &flag_entries[1], &flag_entries[2]);
    assert_eq!(
        (c.before.clone(), c.after.clone()),
        (None, json(&created.after))
    );
    assert_eq!(
        (u.before.clone(), u.after.clone()),
        (json(&updated.before), json(&updated.after))
    );
    assert_eq!(
        (d.before.clone(), d.after.clone()),
        (json(&deleted.before), None)
    );
    assert_eq!(c.after.as_ref().unwrap()["body"]["name"], "f");
    assert_eq!(u.after.as_ref().unwrap()["version"], 2);
    for entry in &flag_entries {
        assert_eq!(entry.actor, ACTOR);
        assert_eq!(entry.environment.as_deref(), Some(ENV));
        assert_eq!(entry.entity_type, "flag");
    }
    assert!(c.at <= u.at && u.at <= d.at);

    let by_env = |environment: &str| AuditFilter {
        environment: Some(environment.into()),
        ..AuditFilter::default()
    };
    assert_eq!(s.list_audit(&by_env(ENV)).await.unwrap().len(), 4);
    assert_eq!(s.list_audit(&by_env("staging")).await.unwrap().len(), 1);
    let segments = AuditFilter {
        entity_type: Some("segment".into()),
        ..AuditFilter::default()
    };
    assert_eq!(s.list_audit(&segments).await.unwrap().len(), 1);
    let page = AuditFilter {
        before_id: Some(all[1].id),
        limit: 2,
        ..AuditFilter::default()
    };
    let page = s.list_audit(&page).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.id).collect::<Vec<_>>(),
        [all[2].id, all[3].id]
    );
}

// ---------------------------------------------------------------------------------------------
// Whole rulesets and durability

async fn populate(s: &Arc<dyn Storage>) {
    create(
        s,
        EntityKind::Segment,
        json!({"name": "premium", "criteria": {"tier": "premium"}}),
    )
    .await;
    create(
        s,
        EntityKind::Flag,
        json!({"name": "new_checkout", "is_enabled": true, "rollout_percentage": 25,
               "targeting_rules": {"$or": [{"$segment": "premium"}, {"country": {"$in": ["US", "CA"]}}]}}),
    )
    .await;
    create(
        s,
        EntityKind::Config,
        json!({"name": "limits", "config_data": {"max": 5},
               "overrides": [{"segment": "premium", "config_data": {"max": 50}}]}),
    )
    .await;
    create(
        s,
        EntityKind::Experiment,
        json!({"name": "checkout_flow", "flag": "new_checkout", "is_active": true,
               "variants": ["control", "one_page"], "traffic_splits": {"control": 50, "one_page": 50}}),
    )
    .await;
}

async fn the_loaded_ruleset_compiles_and_carries_environment_and_version(ctx: Ctx) {
    let s = ctx.open().await;
    populate(&s).await;
    let loaded = s.load_ruleset(ENV).await.unwrap();
    assert_eq!(loaded.ruleset.environment, ENV);
    assert_eq!(loaded.ruleset.version, 4);
    let engine = Engine::compile(&loaded.ruleset).expect("the stored ruleset compiles");
    assert_eq!(engine.flag_names().collect::<Vec<_>>(), ["new_checkout"]);
    assert_eq!(
        engine.experiment_names().collect::<Vec<_>>(),
        ["checkout_flow"]
    );
    let kinds: Vec<EntityKind> = loaded.records.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            EntityKind::Flag,
            EntityKind::Config,
            EntityKind::Segment,
            EntityKind::Experiment
        ],
        "records in ruleset order"
    );
    assert_eq!(loaded.ruleset.flags[0].name, loaded.records[0].name);
    assert_eq!(
        loaded.ruleset.experiments[0].flag.as_deref(),
        Some("new_checkout")
    );
    for record in &loaded.records {
        assert_eq!(
            &s.get(record.kind, ENV, &EntityRef::Id(record.id))
                .await
                .unwrap(),
            record
        );
    }
}

async fn reopening_keeps_everything(ctx: Ctx) {
    let s = ctx.open().await;
    populate(&s).await;
    s.create_environment("staging", ACTOR).await.unwrap();
    let key = NewApiKey {
        id: "k".into(),
        name: "k".into(),
        scope: KeyScope::Sdk,
        environment: Some(ENV.into()),
        secret_hash: vec![7; 16],
    };
    s.create_api_key(&key, ACTOR).await.unwrap();
    s.revoke_api_key("k", ACTOR).await.unwrap();
    let rows: Vec<Exposure> = (0..10)
        .map(|i| exposure(Some("new_checkout"), None, "u", "on", i))
        .collect();
    s.insert_exposures(Some("b1"), &rows).await.unwrap();

    let ruleset = s.load_ruleset(ENV).await.unwrap();
    let environments = s.list_environments().await.unwrap();
    let keys = s.list_api_keys().await.unwrap();
    let audit = s.list_audit(&AuditFilter::default()).await.unwrap();
    let exposures = s
        .list_exposures(ENV, &ExposureFilter::default())
        .await
        .unwrap();
    drop(s);

    let s = ctx.open().await;
    assert_eq!(s.load_ruleset(ENV).await.unwrap(), ruleset);
    assert_eq!(s.list_environments().await.unwrap(), environments);
    assert_eq!(s.list_api_keys().await.unwrap(), keys);
    assert_eq!(s.list_audit(&AuditFilter::default()).await.unwrap(), audit);
    assert_eq!(
        s.list_exposures(ENV, &ExposureFilter::default())
            .await
            .unwrap(),
        exposures
    );
    assert_eq!(
        s.insert_exposures(Some("b1"), &rows).await.unwrap(),
        BatchOutcome::Duplicate
    );
    // And writing continues where it stopped.
    let outcome = create(&s, EntityKind::Flag, json!({"name": "after_restart"})).await;
    assert_eq!(outcome.ruleset_version, 5);
    assert!(outcome.after.unwrap().id > ruleset.records[0].id);
}

// ---------------------------------------------------------------------------------------------
// SQLite only

#[tokio::test]
async fn sqlite_in_memory_databases_work_and_are_private() {
    for url in ["sqlite::memory:", ":memory:", "sqlite://:memory:"] {
        let s = optifork_storage::open(url).await.unwrap();
        assert_eq!(s.backend(), "sqlite");
        create(&s, EntityKind::Flag, json!({"name": "f"})).await;
        assert_eq!(s.load_ruleset(ENV).await.unwrap().ruleset.flags.len(), 1);
        s.insert_exposures(Some("b"), &[exposure(Some("f"), None, "u", "on", 0)])
            .await
            .unwrap();
        assert_eq!(
            s.list_exposures(ENV, &ExposureFilter::default())
                .await
                .unwrap()
                .len(),
            1
        );
    }
    let direct = optifork_storage::sqlite::SqliteStorage::open(":memory:")
        .await
        .unwrap();
    assert!(direct.list(EntityKind::Flag, ENV).await.unwrap().is_empty());
}

fn event(user: &str, name: &str, value: Option<f64>, t: i64) -> Event {
    Event {
        environment: ENV.into(),
        event_name: name.into(),
        user_id: user.into(),
        value,
        properties: None,
        timestamp: at(t),
    }
}

async fn experiment_aggregates_use_first_exposures_and_ignore_earlier_events(ctx: Ctx) {
    let s = ctx.open().await;
    let e = Some("exp");
    s.insert_exposures(
        None,
        &[
            exposure(None, e, "u1", "control", 10),
            exposure(None, e, "u1", "control", 20), // a repeat: one user, two rows
            exposure(None, e, "u2", "control", 10),
            exposure(None, e, "u3", "treatment", 10),
            exposure(None, e, "u4", "treatment", 10),
            exposure(None, e, "u5", "control", 10), // u5 sees both variants: excluded
            exposure(None, e, "u5", "treatment", 15),
            exposure(None, e, "u6", "treatment", 50),
            exposure(None, Some("other"), "u7", "control", 10),
            Exposure {
                environment: "staging".into(),
                ..exposure(None, e, "u8", "control", 10)
            },
        ],
    )
    .await
    .unwrap();
    s.insert_events(
        None,
        &[
            event("u1", "purchase", Some(100.0), 5), // before u1's first exposure: ignored
            event("u1", "purchase", Some(10.0), 30),
            event("u1", "purchase", Some(20.0), 40),
            event("u3", "purchase", Some(7.0), 12),
            event("u4", "purchase", None, 11), // converts, carries no value
            event("u5", "purchase", Some(1000.0), 20), // excluded user
            event("u6", "purchase", Some(5.0), 40), // before u6's exposure at 50
            event("u2", "signup", None, 11),
            event("u2", "unrelated", Some(1.0), 11),
            event("u7", "purchase", Some(3.0), 11), // not in this experiment
        ],
    )
    .await
    .unwrap();
    let agg = s
        .experiment_aggregates(ENV, "exp", &["purchase".into(), "signup".into()])
        .await
        .unwrap();
    assert_eq!(
        agg.variants,
        [
            VariantExposure {
                variant: "control".into(),
                users: 2,
                exposures: 3
            },
            VariantExposure {
                variant: "treatment".into(),
                users: 3,
                exposures: 3
            },
        ]
    );
    assert_eq!(agg.multi_variant_users, 1);
    assert_eq!(
        agg.metrics,
        [
            MetricAggregate {
                variant: "control".into(),
                event: "purchase".into(),
                converted_users: 1,
                value_sum: 30.0,
                value_sum_sq: 900.0,
                count_sum: 2.0,
                count_sum_sq: 4.0,
                valued_users: 1,
                mean_sum: 15.0,
                mean_sum_sq: 225.0,
                events_before_exposure: 1,
            },
            MetricAggregate {
                variant: "control".into(),
                event: "signup".into(),
                converted_users: 1,
                value_sum: 0.0,
                value_sum_sq: 0.0,
                count_sum: 1.0,
                count_sum_sq: 1.0,
                valued_users: 0,
                mean_sum: 0.0,
                mean_sum_sq: 0.0,
                events_before_exposure: 0,
            },
            MetricAggregate {
                variant: "treatment".into(),
                event: "purchase".into(),
                converted_users: 2,
                value_sum: 7.0,
                value_sum_sq: 49.0,
                count_sum: 2.0,
                count_sum_sq: 2.0,
                valued_users: 1,
                mean_sum: 7.0,
                mean_sum_sq: 49.0,
                events_before_exposure: 1,
            },
        ]
    );
    let none = s
        .experiment_aggregates(ENV, "nothing", &["purchase".into()])
        .await
        .unwrap();
    assert!(none.variants.is_empty() && none.metrics.is_empty());
    let no_metrics = s.experiment_aggregates(ENV, "exp", &[]).await.unwrap();
    assert!(no_metrics.metrics.is_empty());
    assert_eq!(no_metrics.variants.len(), 2);
}
