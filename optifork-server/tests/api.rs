//! The HTTP API against the real server binary, on SQLite and on PostgreSQL.

mod common;

use common::{ADMIN_KEY, Server, send};
use serde_json::{Value, json};

// --- the seed's quick reference, as written (with a key) ---------------------------------------

async fn seed_quick_reference_works_as_written(s: Server) {
    // The seed's curl examples, plus an Authorization header.
    let (status, body) = send(
        s.http
            .post(s.url("/segments"))
            .bearer_auth(ADMIN_KEY)
            .header("Content-Type", "application/json")
            .body(r#"{"name": "premium_users", "criteria": {"tier": "premium"}}"#),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["name"], "premium_users");
    assert_eq!(body["criteria"], json!({"tier": "premium"}));

    let (status, _) = send(s.post(
        "/flags",
        &json!({"name": "new_feature", "is_enabled": true,
        "rollout_percentage": 100, "targeting_rules": {"country": "US"}}),
    ))
    .await;
    assert_eq!(status, 201);
    let (status, body) = send(
        s.http
            .get(s.url("/flags/new_feature?user_id=123&country=US"))
            .bearer_auth(ADMIN_KEY),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["flag"], "new_feature");
    assert_eq!(body["user_id"], "123");
    assert_eq!(body["enabled"], true);
    assert_eq!(body["variant"], "on");
    assert_eq!(body["reason"], "TARGETING_MATCH");

    let (status, body) = send(s.http.get(s.url("/configs")).bearer_auth(ADMIN_KEY)).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!([]));
}
both!(seed_quick_reference, seed_quick_reference_works_as_written);

// --- flags ----------------------------------------------------------------------------------------

async fn flag_crud_round_trip(s: Server) {
    let (status, created) = send(s.post(
        "/flags",
        &json!({"name": "checkout", "description": "new checkout",
        "is_enabled": false, "rollout_percentage": 25, "tags": ["payments"]}),
    ))
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["version"], 1);
    assert!(created["id"].as_i64().is_some());
    assert_eq!(created["environment"], "production");
    assert_eq!(created["targeting_rules"], json!({}));

    let (status, list) = send(s.get("/flags")).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, tagged) = send(s.get("/flags?tag=payments")).await;
    assert_eq!(tagged.as_array().unwrap().len(), 1);
    let (_, untagged) = send(s.get("/flags?tag=other")).await;
    assert_eq!(untagged, json!([]));

    let resp = s.get("/flags/checkout/definition").send().await.unwrap();
    assert_eq!(resp.headers()["etag"], "\"1\"");
    let def: Value = resp.json().await.unwrap();
    assert_eq!(def["description"], "new checkout");

    // PUT changes only the fields given (the kill switch in one line).
    let (status, updated) = send(s.put("/flags/checkout", &json!({"is_enabled": true}))).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["is_enabled"], true);
    assert_eq!(updated["rollout_percentage"], 25.0);
    assert_eq!(updated["version"], 2);

    let (status, deleted) = send(s.delete("/flags/checkout")).await;
    assert_eq!(status, 200);
    assert_eq!(deleted["deleted"]["name"], "checkout");
    let (status, _) = send(s.get("/flags/checkout/definition")).await;
    assert_eq!(status, 404);
}
both!(flag_crud, flag_crud_round_trip);

async fn flag_evaluation_reports_variant_value_and_reason(s: Server) {
    send(s.post(
        "/flags",
        &json!({"name": "color", "is_enabled": true,
        "variants": [{"name": "blue", "value": "#00f"}, {"name": "red", "value": "#f00"}],
        "rules": [{"condition": {"age": {"$gte": 18}}, "serve": {"variant": "red"}}],
        "default": {"variant": "blue"}}),
    ))
    .await;
    let (status, body) = send(s.get("/flags/color?user_id=u1&age=30")).await;
    assert_eq!(status, 200);
    assert_eq!(body["value"], "#f00");
    assert_eq!(body["variant"], "red");
    assert_eq!(body["reason"], "TARGETING_MATCH");
    assert_eq!(body["rule_index"], 0);
    assert_eq!(body["enabled"], true);
    // The same attribute as a string does not match a numeric condition; the JSON header types it.
    let (_, body) = send(
        s.get("/flags/color?user_id=u1")
            .header("X-User-Context", r#"{"age": 17}"#),
    )
    .await;
    assert_eq!(body["variant"], "blue");
    assert_eq!(body["reason"], "DEFAULT");
    let (status, body) = send(s.get("/flags/nope?user_id=u1")).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
}
both!(
    flag_evaluation,
    flag_evaluation_reports_variant_value_and_reason
);

async fn evaluations_are_logged_as_exposures(s: Server) {
    send(s.post("/flags", &json!({"name": "f", "is_enabled": true}))).await;
    for i in 0..5 {
        send(s.get(&format!("/flags/f?user_id=u{i}&plan=pro"))).await;
    }
    // Anonymous evaluations are not exposures.
    send(s.get("/flags/f")).await;
    let mut rows = Vec::new();
    for _ in 0..50 {
        let (status, body) = send(s.get("/flags/f/exposures")).await;
        assert_eq!(status, 200);
        rows = body["exposures"].as_array().unwrap().clone();
        if rows.len() == 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert_eq!(rows[0]["flag_name"], "f");
    assert_eq!(rows[0]["enabled"], true);
    assert_eq!(rows[0]["user_context"]["plan"], "pro");
    let (_, page) = send(s.get("/flags/f/exposures?limit=2")).await;
    assert_eq!(page["exposures"].as_array().unwrap().len(), 2);
    let cursor = page["next_before_id"].as_i64().unwrap();
    let (_, next) = send(s.get(&format!("/flags/f/exposures?limit=2&before_id={cursor}"))).await;
    assert!(next["exposures"][0]["id"].as_i64().unwrap() < cursor);
    let (status, _) = send(s.get("/flags/nope/exposures")).await;
    assert_eq!(status, 404);
}
both!(exposures_logged, evaluations_are_logged_as_exposures);

// --- configs ---------------------------------------------------------------------------------------

async fn configs_resolve_segment_overrides(s: Server) {
    send(s.post(
        "/segments",
        &json!({"name": "premium_users", "criteria": {"tier": "premium"}}),
    ))
    .await;
    let (status, created) = send(s.post("/configs", &json!({"name": "theme",
        "config_data": {"color": "blue", "layout": {"cols": 2, "sidebar": true}},
        "overrides": [{"segment": "premium_users", "config_data": {"color": "gold", "layout": {"cols": 3}}}]}))).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["environment"], "production");
    assert_eq!(created["is_active"], true);
    let id = created["id"].as_i64().unwrap();

    // Without a context, admins get the definitions.
    let (_, list) = send(s.get("/configs")).await;
    assert_eq!(list[0]["overrides"][0]["segment"], "premium_users");
    // With a context in the query or headers: resolved values.
    let (_, resolved) = send(s.get("/configs?user_id=1&tier=premium")).await;
    assert_eq!(resolved[0]["name"], "theme");
    assert_eq!(
        resolved[0]["config_data"],
        json!({"color": "gold", "layout": {"cols": 3, "sidebar": true}})
    );
    let (_, resolved) = send(
        s.get("/configs")
            .header("X-User-Context", r#"{"tier": "free"}"#),
    )
    .await;
    assert_eq!(resolved[0]["config_data"]["color"], "blue");

    // By id and by name.
    let (status, by_id) = send(s.get(&format!("/configs/{id}"))).await;
    assert_eq!(status, 200);
    assert_eq!(by_id["name"], "theme");
    let (_, by_name) = send(s.get("/configs/theme?tier=premium")).await;
    assert_eq!(by_name["config_data"]["color"], "gold");

    // SDK keys always get resolved values.
    let sdk = s.sdk_key("production").await;
    let (status, resolved) = send(s.http.get(s.url("/configs")).bearer_auth(&sdk)).await;
    assert_eq!(status, 200);
    assert_eq!(resolved[0]["config_data"]["color"], "blue");

    let (status, updated) =
        send(s.put(&format!("/configs/{id}"), &json!({"is_active": false}))).await;
    assert_eq!(status, 200, "{updated}");
    let (_, resolved) = send(s.get("/configs?tier=premium")).await;
    assert_eq!(resolved, json!([]));
    let (status, _) = send(s.delete(&format!("/configs/{id}"))).await;
    assert_eq!(status, 200);
    let (status, _) = send(s.get(&format!("/configs/{id}"))).await;
    assert_eq!(status, 404);
}
both!(configs, configs_resolve_segment_overrides);

async fn config_environment_must_match_the_request(s: Server) {
    let (status, body) = send(s.post(
        "/configs",
        &json!({"name": "c", "config_data": {}, "environment": "staging"}),
    ))
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "$.environment");
}
both!(
    config_environment,
    config_environment_must_match_the_request
);

// --- segments -------------------------------------------------------------------------------------

async fn segments_crud_and_evaluate(s: Server) {
    let (_, a) = send(s.post(
        "/segments",
        &json!({"name": "premium_users", "criteria": {"tier": "premium"}}),
    ))
    .await;
    send(s.post(
        "/segments",
        &json!({"name": "us_users", "criteria": {"country": {"$in": ["US", "CA"]}}}),
    ))
    .await;
    let (status, body) = send(s.post(
        "/segments/evaluate",
        &json!({"user_context": {"country": "US", "tier": "premium"}}),
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"segments": ["premium_users", "us_users"]}));
    let id = a["id"].as_i64().unwrap();
    let (status, got) = send(s.get(&format!("/segments/{id}"))).await;
    assert_eq!(status, 200);
    assert_eq!(got["name"], "premium_users");
    let (status, _) = send(s.put(
        &format!("/segments/{id}"),
        &json!({"criteria": {"tier": "gold"}}),
    ))
    .await;
    assert_eq!(status, 200);
    let (_, body) = send(s.post(
        "/segments/evaluate",
        &json!({"user_context": {"tier": "premium"}}),
    ))
    .await;
    assert_eq!(body, json!({"segments": []}));
    let (_, list) = send(s.get("/segments")).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (status, _) = send(s.delete("/segments/us_users")).await;
    assert_eq!(status, 200);
}
both!(segments, segments_crud_and_evaluate);

async fn deleting_a_segment_in_use_is_a_conflict(s: Server) {
    send(s.post(
        "/segments",
        &json!({"name": "vips", "criteria": {"vip": true}}),
    ))
    .await;
    send(s.post(
        "/flags",
        &json!({"name": "f", "targeting_rules": {"$segment": "vips"}}),
    ))
    .await;
    let (status, body) = send(s.delete("/segments/vips")).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "breaks_dependents");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("flag \"f\""),
        "{body}"
    );
    let (status, _) = send(s.get("/segments/vips")).await;
    assert_eq!(status, 200);
}
both!(segment_in_use, deleting_a_segment_in_use_is_a_conflict);

// --- experiments -------------------------------------------------------------------------------------

async fn experiments_assign_and_count_exposures(s: Server) {
    send(s.post(
        "/flags",
        &json!({"name": "checkout_flag", "is_enabled": true}),
    ))
    .await;
    let (_, flag) = send(s.get("/flags/checkout_flag/definition")).await;
    let (status, exp) = send(s.post(
        "/experiments",
        &json!({"name": "checkout_test",
        "flag_id": flag["id"], "variants": ["control", "variant_a"],
        "traffic_splits": {"control": 50, "variant_a": 50},
        "targeting_rules": {"country": "US"}, "is_active": true}),
    ))
    .await;
    assert_eq!(status, 201, "{exp}");
    assert_eq!(exp["flag"], "checkout_flag");

    let mut seen = std::collections::BTreeSet::new();
    for i in 0..40 {
        let (status, body) = send(s.get(&format!(
            "/experiments/checkout_test/assign?user_id=u{i}&country=US"
        )))
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["experiment"], "checkout_test");
        assert_eq!(body["in_experiment"], true);
        seen.insert(body["variant"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen.len(), 2);
    let (_, out) = send(s.get("/experiments/checkout_test/assign?user_id=x&country=FR")).await;
    assert_eq!(out["variant"], "control");
    assert_eq!(out["in_experiment"], false);
    assert_eq!(out["reason"], "TARGETING_MISMATCH");

    let mut total = 0;
    for _ in 0..50 {
        let (status, results) = send(s.get("/experiments/checkout_test/results")).await;
        assert_eq!(status, 200);
        total = results["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["users"].as_i64().unwrap())
            .sum();
        if total == 40 {
            assert_eq!(results["variants"][0]["variant"], "control");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(total, 40);

    let (status, paused) =
        send(s.put("/experiments/checkout_test", &json!({"is_active": false}))).await;
    assert_eq!(status, 200, "{paused}");
    let (_, out) = send(s.get("/experiments/checkout_test/assign?user_id=u1&country=US")).await;
    assert_eq!(out["reason"], "INACTIVE");
    let (_, list) = send(s.get("/experiments")).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, _) = send(s.get("/experiments/nope/assign?user_id=1")).await;
    assert_eq!(status, 404);
    // The flag under test cannot be deleted from under the experiment.
    let (status, _) = send(s.delete("/flags/checkout_flag")).await;
    assert_eq!(status, 409);
}
both!(experiments, experiments_assign_and_count_exposures);

async fn experiment_without_control_is_refused(s: Server) {
    let (status, body) = send(s.post(
        "/experiments",
        &json!({"name": "e", "variants": ["A", "B"]}),
    ))
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "missing_control");
    assert_eq!(body["error"]["field"], "$.variants");
}
both!(experiment_control, experiment_without_control_is_refused);

// --- validation and error statuses ---------------------------------------------------------------

async fn invalid_conditions_are_refused_with_their_path(s: Server) {
    let (status, body) = send(s.post(
        "/flags",
        &json!({"name": "f",
        "rules": [{"condition": {"age": {"$gtx": 18}}, "serve": {"variant": "on"}}]}),
    ))
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "unknown_operator");
    assert_eq!(
        body["error"]["field"],
        r#"$.rules[0].condition.age["$gtx"]"#
    );
    let (status, body) = send(s.post(
        "/flags",
        &json!({"name": "g", "targeting_rules": {"email": {"$regex": "(["}}}),
    ))
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "bad_regex");
    let (status, body) =
        send(s.post("/flags", &json!({"name": "h", "rollout_percentage": 150}))).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "$.rollout_percentage");
    let (status, body) = send(s.post("/flags", &json!({"name": "i", "is_enabeld": true}))).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "unknown_field");
    assert_eq!(body["error"]["field"], "$.is_enabeld");
    let (status, body) = send(s.post("/flags", &json!({"name": "9lives"}))).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "$.name");
    let (status, body) = send(s.post("/flags", &json!({"name": "j", "is_enabled": "yes"}))).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "$.is_enabled");
    // Nothing was written.
    let (_, list) = send(s.get("/flags")).await;
    assert_eq!(list, json!([]));
}
both!(
    invalid_conditions,
    invalid_conditions_are_refused_with_their_path
);

async fn error_statuses_are_json_with_code_message_and_field(s: Server) {
    // 404
    let (status, body) = send(s.get("/segments/999")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, _) = send(s.get("/no/such/route")).await;
    assert_eq!(status, 404);
    let (status, body) = send(s.get("/flags?environment=nope")).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["field"], "environment");
    // 409
    send(s.post("/flags", &json!({"name": "dup"}))).await;
    let (status, body) = send(s.post("/flags", &json!({"name": "dup"}))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    // 415
    let (status, body) = send(
        s.http
            .post(s.url("/flags"))
            .bearer_auth(ADMIN_KEY)
            .header("Content-Type", "text/plain")
            .body(r#"{"name": "x"}"#),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    // 400 malformed JSON and empty body
    let (status, body) = send(
        s.http
            .post(s.url("/flags"))
            .bearer_auth(ADMIN_KEY)
            .header("Content-Type", "application/json")
            .body(r#"{"name": "#),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("malformed_json"))
    );
    let (status, _) = send(
        s.http
            .post(s.url("/flags"))
            .bearer_auth(ADMIN_KEY)
            .header("Content-Type", "application/json"),
    )
    .await;
    assert_eq!(status, 400);
    // 413
    let big = format!(
        r#"{{"name": "big", "description": "{}"}}"#,
        "x".repeat(5 * 1024 * 1024)
    );
    let (status, body) = send(
        s.http
            .post(s.url("/flags"))
            .bearer_auth(ADMIN_KEY)
            .header("Content-Type", "application/json")
            .body(big),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    // 405
    let resp = s
        .http
        .patch(s.url("/flags"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert!(resp.headers()["allow"].to_str().unwrap().contains("POST"));
    // 412
    let (status, _) = send(
        s.put("/flags/dup", &json!({"description": "a"}))
            .header("If-Match", "\"7\""),
    )
    .await;
    assert_eq!(status, 412);
    // Every error has the same shape.
    let (status, body) = send(
        s.http
            .get(s.url("/flags/dup/definition"))
            .bearer_auth("wrong"),
    )
    .await;
    assert_eq!(status, 401);
    assert!(body["error"]["message"].is_string());
    assert!(body["error"].get("field").is_some());
}
both!(
    error_statuses,
    error_statuses_are_json_with_code_message_and_field
);

// --- ETags and concurrency -----------------------------------------------------------------------

async fn stale_if_match_is_refused(s: Server) {
    send(s.post("/flags", &json!({"name": "f"}))).await;
    let resp = s.get("/flags/f/definition").send().await.unwrap();
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    // Admin A writes with the ETag it read.
    let resp = s
        .put("/flags/f", &json!({"description": "A"}))
        .header("If-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let new_etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_etag, etag);
    // Admin B, still holding the old ETag, is refused and told the current one.
    let resp = s
        .put("/flags/f", &json!({"description": "B"}))
        .header("If-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 412);
    assert_eq!(resp.headers()["etag"].to_str().unwrap(), new_etag);
    let (_, def) = send(s.get("/flags/f/definition")).await;
    assert_eq!(def["description"], "A");
    // Deletes honour If-Match too.
    let (status, _) = send(s.delete("/flags/f").header("If-Match", &etag)).await;
    assert_eq!(status, 412);
    let (status, _) = send(s.delete("/flags/f").header("If-Match", &new_etag)).await;
    assert_eq!(status, 200);
}
both!(if_match, stale_if_match_is_refused);

async fn two_concurrent_writers_cannot_both_win_with_one_etag(s: Server) {
    send(s.post("/flags", &json!({"name": "f"}))).await;
    let writes = (0..8).map(|i| {
        s.put("/flags/f", &json!({"description": format!("writer {i}")}))
            .header("If-Match", "\"1\"")
            .send()
    });
    let results = futures_util::future::join_all(writes).await;
    let statuses: Vec<u16> = results
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 412).count(),
        7,
        "{statuses:?}"
    );
    // Without If-Match, concurrent partial updates all land and none is lost.
    let writes = (0..8).map(|i| {
        s.put("/flags/f", &json!({"tags": [format!("t{i}")]}))
            .send()
    });
    let results = futures_util::future::join_all(writes).await;
    assert!(results.into_iter().all(|r| r.unwrap().status() == 200));
    let (_, def) = send(s.get("/flags/f/definition")).await;
    assert_eq!(def["version"], 10);
}
both!(
    concurrent_writers,
    two_concurrent_writers_cannot_both_win_with_one_etag
);

async fn ruleset_sync_uses_etags_and_gzip(s: Server) {
    let sdk = s.sdk_key("production").await;
    let resp = s
        .http
        .get(s.url("/sdk/v1/ruleset"))
        .bearer_auth(&sdk)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["environment"], "production");
    assert_eq!(format!("\"{}\"", body["version"]), etag);

    let resp = s
        .http
        .get(s.url("/sdk/v1/ruleset"))
        .bearer_auth(&sdk)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);
    assert!(resp.bytes().await.unwrap().is_empty());

    send(s.post("/flags", &json!({"name": "new_flag", "is_enabled": true}))).await;
    let resp = s
        .http
        .get(s.url("/sdk/v1/ruleset"))
        .bearer_auth(&sdk)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let new_etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_etag, etag);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["flags"][0]["name"], "new_flag");

    // gzip, when accepted (reqwest decompresses transparently; check the raw header too).
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let resp = raw
        .get(s.url("/sdk/v1/ruleset"))
        .bearer_auth(&sdk)
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let compressed = resp.bytes().await.unwrap();
    assert_eq!(&compressed[..2], &[0x1f, 0x8b]);
    let resp = raw
        .get(s.url("/sdk/v1/ruleset"))
        .bearer_auth(&sdk)
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("content-encoding").is_none());
}
both!(ruleset_sync, ruleset_sync_uses_etags_and_gzip);

async fn sdk_batches_are_durable_and_idempotent(s: Server) {
    let sdk = s.sdk_key("production").await;
    let batch = json!({"batch_id": "b-1", "exposures": [
        {"flag": "f", "user_id": "u1", "variant": "on", "enabled": true},
        {"experiment": "e", "user_id": "u2", "variant": "control", "timestamp": "2026-01-02T03:04:05Z"}]});
    send(s.post("/flags", &json!({"name": "f"}))).await;
    let (status, body) = send(
        s.http
            .post(s.url("/sdk/v1/exposures"))
            .bearer_auth(&sdk)
            .json(&batch),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"accepted": 2, "duplicate": false}));
    // Durable: visible as soon as the response arrived.
    let (_, rows) = send(s.get("/flags/f/exposures")).await;
    assert_eq!(rows["exposures"].as_array().unwrap().len(), 1);
    // A retried batch is acknowledged, not written twice.
    let (_, body) = send(
        s.http
            .post(s.url("/sdk/v1/exposures"))
            .bearer_auth(&sdk)
            .json(&batch),
    )
    .await;
    assert_eq!(body, json!({"accepted": 2, "duplicate": true}));
    let (_, rows) = send(s.get("/flags/f/exposures")).await;
    assert_eq!(rows["exposures"].as_array().unwrap().len(), 1);

    let events = json!({"batch_id": "ev-1", "events": [{"event": "purchase", "user_id": "u1", "value": 9.99}]});
    let (status, body) = send(
        s.http
            .post(s.url("/sdk/v1/events"))
            .bearer_auth(&sdk)
            .json(&events),
    )
    .await;
    assert_eq!((status, body["accepted"].as_u64()), (200, Some(1)));

    // Bad batches.
    let (status, body) = send(
        s.http
            .post(s.url("/sdk/v1/exposures"))
            .bearer_auth(&sdk)
            .json(&json!({"exposures": [{"user_id": "u"}]})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "$.exposures[0]");
    let (status, _) = send(
        s.http
            .post(s.url("/sdk/v1/events"))
            .bearer_auth(&sdk)
            .json(&json!({"events": [{"event": "x"}]})),
    )
    .await;
    assert_eq!(status, 400);
    let too_many: Vec<Value> = (0..10_001)
        .map(|i| json!({"flag": "f", "user_id": format!("u{i}")}))
        .collect();
    let (status, _) = send(
        s.http
            .post(s.url("/sdk/v1/exposures"))
            .bearer_auth(&sdk)
            .json(&json!({"exposures": too_many})),
    )
    .await;
    assert_eq!(status, 413);
}
both!(sdk_batches, sdk_batches_are_durable_and_idempotent);

/// Makes every remembered batch id look `hours` old, straight in the database.
async fn age_batch_ids(s: &Server, hours: i64) {
    match &s.data {
        common::Data::Sqlite(_) => {
            let db = rusqlite::Connection::open(s.data.url()).unwrap();
            db.execute(
                "UPDATE ingested_batches SET received_at = received_at - ?1",
                [hours * 3_600_000_000],
            )
            .unwrap();
        }
        _ => {
            let (db, conn) = tokio_postgres::connect(&s.data.url(), tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            db.execute(
                "UPDATE ingested_batches SET received_at = received_at - make_interval(hours => $1)",
                &[&(hours as i32)],
            )
            .await
            .unwrap();
        }
    }
}

async fn batch_ids_older_than_the_retention_are_forgotten(mut s: Server) {
    let sdk = s.sdk_key("production").await;
    let batch =
        |id: &str| json!({"batch_id": id, "events": [{"event": "purchase", "user_id": "u1"}]});
    let post = |s: &Server, body: Value| {
        s.http
            .post(s.url("/sdk/v1/events"))
            .bearer_auth(&sdk)
            .json(&body)
    };
    let (status, body) = send(post(&s, batch("old"))).await;
    assert_eq!((status, &body["duplicate"]), (200, &json!(false)), "{body}");
    s.stop();
    age_batch_ids(&s, 30).await;
    // 30 hours is within the default retention (72 h): the id is still remembered.
    s.start_again(true);
    let (_, body) = send(post(&s, batch("old"))).await;
    assert_eq!(body["duplicate"], true, "{body}");
    // With a 24-hour retention the server forgets it at start, so a retry is written again.
    s.stop();
    s.start_again_with(&["--batch-id-retention-hours", "24"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, body) = send(post(&s, batch("old"))).await;
        assert_eq!(status, 200, "{body}");
        if body["duplicate"] == false {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the old batch id was never pruned"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // A batch received now is remembered.
    let (_, body) = send(post(&s, batch("old"))).await;
    assert_eq!(body["duplicate"], true, "{body}");
}
both!(
    batch_id_retention,
    batch_ids_older_than_the_retention_are_forgotten
);

// --- environments, keys, audit -------------------------------------------------------------------

async fn environments_keep_rulesets_apart(s: Server) {
    let (status, env) = send(s.post("/environments", &json!({"name": "staging"}))).await;
    assert_eq!(status, 201, "{env}");
    let (status, _) = send(s.post("/environments", &json!({"name": "staging"}))).await;
    assert_eq!(status, 409);
    send(s.post(
        "/flags?environment=staging",
        &json!({"name": "only_staging", "is_enabled": true}),
    ))
    .await;
    let (_, prod) = send(s.get("/flags")).await;
    assert_eq!(prod, json!([]));
    let (_, staging) = send(s.get("/flags?environment=staging")).await;
    assert_eq!(staging[0]["name"], "only_staging");
    // An SDK key sees its own environment only.
    let sdk = s.sdk_key("staging").await;
    let (status, body) = send(
        s.http
            .get(s.url("/flags/only_staging?user_id=1"))
            .bearer_auth(&sdk),
    )
    .await;
    assert_eq!((status, body["enabled"].as_bool()), (200, Some(true)));
    let (status, body) = send(
        s.http
            .get(s.url("/flags/only_staging?user_id=1&environment=production"))
            .bearer_auth(&sdk),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["field"], "environment");
    let (_, envs) = send(s.get("/environments")).await;
    let names: Vec<&str> = envs
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["production", "staging"]);
}
both!(environments, environments_keep_rulesets_apart);

async fn keys_are_shown_once_and_can_be_revoked(s: Server) {
    let (status, created) = send(s.post(
        "/keys",
        &json!({"name": "ci", "scope": "sdk", "environment": "production"}),
    ))
    .await;
    assert_eq!(status, 201);
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with(&format!("ofk_{id}_")));
    let (_, list) = send(s.get("/keys")).await;
    let text = list.to_string();
    assert!(
        !text.contains(&key),
        "the key list must not contain secrets"
    );
    assert!(list.as_array().unwrap().iter().any(|k| k["id"] == id));
    let (status, _) = send(s.http.get(s.url("/sdk/v1/ruleset")).bearer_auth(&key)).await;
    assert_eq!(status, 200);
    let (status, revoked) = send(s.delete(&format!("/keys/{id}"))).await;
    assert_eq!(status, 200);
    assert!(revoked["revoked_at"].is_string());
    let (status, body) = send(s.http.get(s.url("/sdk/v1/ruleset")).bearer_auth(&key)).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    let (status, _) = send(s.post("/keys", &json!({"name": "x", "scope": "root"}))).await;
    assert_eq!(status, 400);
    let (status, _) = send(s.post(
        "/keys",
        &json!({"name": "x", "scope": "sdk", "environment": "nope"}),
    ))
    .await;
    assert_eq!(status, 404);
}
both!(keys, keys_are_shown_once_and_can_be_revoked);

async fn audit_log_records_who_what_before_and_after(s: Server) {
    send(s.post("/flags", &json!({"name": "f", "description": "one"}))).await;
    send(s.put("/flags/f", &json!({"description": "two"}))).await;
    send(s.post("/segments", &json!({"name": "s", "criteria": {}}))).await;
    send(s.delete("/flags/f")).await;
    let (status, body) = send(s.get("/audit?entity_type=flag&entity_name=f")).await;
    assert_eq!(status, 200);
    let entries = body["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["delete", "update", "create"]);
    let update = &entries[1];
    assert_eq!(update["before"]["body"]["description"], "one");
    assert_eq!(update["after"]["body"]["description"], "two");
    assert!(update["actor"].as_str().unwrap().starts_with("env-"));
    assert!(entries[2]["before"].is_null());
    assert!(entries[0]["after"].is_null());
    // Pagination.
    let (_, page) = send(s.get("/audit?limit=2")).await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    let cursor = page["next_before_id"].as_i64().unwrap();
    let (_, rest) = send(s.get(&format!("/audit?limit=100&before_id={cursor}"))).await;
    assert!(
        rest["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["id"].as_i64().unwrap() < cursor)
    );
    let (status, _) = send(s.get("/audit?limit=0")).await;
    assert_eq!(status, 400);
}
both!(audit, audit_log_records_who_what_before_and_after);

// --- operations -----------------------------------------------------------------------------------

async fn health_readiness_and_docs_are_public(s: Server) {
    for path in ["/healthz", "/readyz", "/openapi.json", "/docs"] {
        let resp = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    let (_, ready) = send(s.http.get(s.url("/readyz"))).await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["environments"][0]["name"], "production");
    let html = s
        .http
        .get(s.url("/docs"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("/openapi.json"));
}
both!(operations, health_readiness_and_docs_are_public);

async fn openapi_describes_every_route(s: Server) {
    let (_, doc) = send(s.http.get(s.url("/openapi.json"))).await;
    assert_eq!(doc["openapi"], "3.1.0");
    for route in optifork_server::api::ROUTES {
        let op = &doc["paths"][route.path][route.method.as_str().to_lowercase()];
        assert!(
            op.is_object(),
            "{} {} is not in the OpenAPI document",
            route.method,
            route.path
        );
        assert_eq!(op["summary"], route.summary);
    }
}
both!(openapi, openapi_describes_every_route);

// --- restarts ---------------------------------------------------------------------------------------

async fn restart_with_the_same_database_loses_nothing(mut s: Server) {
    send(s.post(
        "/flags",
        &json!({"name": "kept", "is_enabled": true, "rollout_percentage": 40}),
    ))
    .await;
    send(s.post("/segments", &json!({"name": "seg", "criteria": {"x": 1}}))).await;
    let sdk = s.sdk_key("production").await;
    send(s.post("/environments", &json!({"name": "qa"}))).await;
    let (_, before) = send(s.http.get(s.url("/sdk/v1/ruleset")).bearer_auth(&sdk)).await;
    s.stop();
    s.start_again(false); // no OPTIFORK_ADMIN_KEY this time: the stored key still works
    let (status, after) = send(s.http.get(s.url("/sdk/v1/ruleset")).bearer_auth(&sdk)).await;
    assert_eq!(status, 200);
    assert_eq!(after, before);
    let (status, def) = send(s.get("/flags/kept/definition")).await;
    assert_eq!(status, 200);
    assert_eq!(def["rollout_percentage"], 40.0);
    let (_, envs) = send(s.get("/environments")).await;
    assert_eq!(envs.as_array().unwrap().len(), 2);
    // No new admin key is printed on a restart: keys exist already.
    assert!(!s.stdout.iter().any(|l| l.contains("first admin API key")));
}
both!(restart, restart_with_the_same_database_loses_nothing);

async fn shutdown_writes_queued_exposures(mut s: Server) {
    send(s.post("/flags", &json!({"name": "f", "is_enabled": true}))).await;
    s.stop();
    // A long flush interval: only the shutdown drain can write these.
    s.start_again_with(&[
        "--exposure-flush-ms",
        "600000",
        "--exposure-batch",
        "100000",
    ]);
    for i in 0..300 {
        let (status, _) = send(s.get(&format!("/flags/f?user_id=u{i}"))).await;
        assert_eq!(status, 200);
    }
    let (_, before) = send(s.get("/flags/f/exposures?limit=1000")).await;
    assert_eq!(
        before["exposures"].as_array().unwrap().len(),
        0,
        "written before shutdown"
    );
    s.stop();
    s.start_again(true);
    let (_, after) = send(s.get("/flags/f/exposures?limit=1000")).await;
    assert_eq!(after["exposures"].as_array().unwrap().len(), 300);
}
both!(shutdown_drain, shutdown_writes_queued_exposures);

async fn first_start_prints_an_admin_key_once(mut s: Server) {
    // Started without OPTIFORK_ADMIN_KEY on an empty database: a key is created and printed.
    s.stop();
    let Some(data) = common::Data::new(s.backend).await else {
        return;
    };
    s.data = data;
    s.start_again(false);
    let line = s
        .stdout
        .iter()
        .position(|l| l.contains("first admin API key"))
        .expect("printed");
    let key = s.stdout[line + 2].trim().to_owned();
    assert!(key.starts_with("ofk_"), "{key}");
    let (status, _) = send(s.http.get(s.url("/flags")).bearer_auth(&key)).await;
    assert_eq!(status, 200);
    s.stop();
    s.start_again(false);
    assert!(!s.stdout.iter().any(|l| l.contains("first admin API key")));
}
both!(first_start_key, first_start_prints_an_admin_key_once);
