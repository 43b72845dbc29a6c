//! `GET /experiments/{name}/results`: the numbers, checked against optifork-stats on the same
//! sufficient statistics, and the messy-data rules.

mod common;

use common::{Server, send};
use optifork_stats::{CompareOptions, ConversionStats, ValueStats, compare};
use serde_json::{Value, json};

async fn experiment(s: &Server, splits: Value) {
    let (status, body) = send(s.post(
        "/experiments",
        &json!({
        "name": "checkout", "variants": ["control", "one_page"], "traffic_splits": splits,
        "is_active": true,
        "metrics": [
            {"name": "purchase_rate", "event": "purchase", "type": "conversion"},
            {"name": "revenue", "event": "purchase", "type": "sum"},
            {"name": "order_value", "event": "purchase", "type": "mean"},
            {"name": "views", "event": "pageview", "type": "count"}
        ]}),
    ))
    .await;
    assert_eq!(status, 201, "{body}");
}

/// Exposes `n` users to `variant` at 10:00 and returns their ids.
async fn expose(s: &Server, sdk: &str, variant: &str, n: usize) -> Vec<String> {
    let users: Vec<String> = (0..n).map(|i| format!("{variant}-{i}")).collect();
    let rows: Vec<Value> = users
        .iter()
        .map(|u| json!({"experiment": "checkout", "user_id": u, "variant": variant, "timestamp": "2026-11-01T10:00:00Z"}))
        .collect();
    let (status, _) = send(
        s.http
            .post(s.url("/sdk/v1/exposures"))
            .bearer_auth(sdk)
            .json(&json!({"exposures": rows})),
    )
    .await;
    assert_eq!(status, 200);
    users
}

async fn track(s: &Server, sdk: &str, events: Vec<Value>) {
    let (status, body) = send(
        s.http
            .post(s.url("/sdk/v1/events"))
            .bearer_auth(sdk)
            .json(&json!({"events": events})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

fn ev(user: &str, name: &str, value: Option<f64>, at: &str) -> Value {
    json!({"event": name, "user_id": user, "value": value, "timestamp": at})
}

fn metric<'a>(results: &'a Value, name: &str) -> &'a Value {
    results["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap()
}

async fn results_match_the_statistics_of_the_raw_data(s: Server) {
    experiment(&s, json!({"control": 50, "one_page": 50})).await;
    let sdk = s.sdk_key("production").await;
    let control = expose(&s, &sdk, "control", 40).await;
    let treatment = expose(&s, &sdk, "one_page", 40).await;
    let later = "2026-11-01T11:00:00Z";
    let mut events = Vec::new();
    // Control: 8 buyers spending 10 each; treatment: 14 buyers, values 10..=23.
    for u in &control[..8] {
        events.push(ev(u, "purchase", Some(10.0), later));
    }
    for (i, u) in treatment[..14].iter().enumerate() {
        events.push(ev(u, "purchase", Some(10.0 + i as f64), later));
    }
    // Page views: control users 0..20 view twice, treatment users 0..30 three times.
    for u in &control[..20] {
        events.push(ev(u, "pageview", None, later));
        events.push(ev(u, "pageview", None, later));
    }
    for u in &treatment[..30] {
        for _ in 0..3 {
            events.push(ev(u, "pageview", None, later));
        }
    }
    // Before exposure: ignored.
    events.push(ev(
        &control[30],
        "purchase",
        Some(500.0),
        "2026-11-01T09:00:00Z",
    ));
    track(&s, &sdk, events).await;

    let (status, r) = send(s.get("/experiments/checkout/results")).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["variants"][0]["users"], 40);
    assert_eq!(r["variants"][1]["users"], 40);
    assert_eq!(r["sample_ratio_mismatch"]["warning"], false);

    let opts = CompareOptions::default();
    let rate = metric(&r, "purchase_rate");
    assert_eq!(rate["events_before_exposure_ignored"], 1);
    let want = compare(
        &ConversionStats::new(40, 8),
        &ConversionStats::new(40, 14),
        &opts,
    )
    .unwrap();
    let got = &rate["comparisons"][0];
    assert_eq!(got["variant"], "one_page");
    assert_eq!(got["control"]["conversions"], 8);
    assert_eq!(got["treatment"]["conversions"], 14);
    let p = got["frequentist"]["p_value"].as_f64().unwrap();
    assert!((p - want.frequentist.computed().unwrap().p_value).abs() < 1e-12);
    let ctb = got["bayesian"]["chance_to_beat_control"].as_f64().unwrap();
    assert!((ctb - want.bayesian.computed().unwrap().chance_to_beat_control).abs() < 1e-12);
    assert!(
        got["frequentist"]["method"].is_string() && got["bayesian"]["prior"].is_object()
            || got["bayesian"]["prior"].is_string()
    );

    // Revenue per user (users without purchases count as 0).
    let t_sum: f64 = (0..14).map(|i| 10.0 + f64::from(i)).sum();
    let t_sq: f64 = (0..14).map(|i| (10.0 + f64::from(i)).powi(2)).sum();
    let want = compare(
        &ValueStats::new(40, 80.0, 800.0),
        &ValueStats::new(40, t_sum, t_sq),
        &opts,
    )
    .unwrap();
    let got = &metric(&r, "revenue")["comparisons"][0];
    let diff = got["frequentist"]["absolute_lift"]["estimate"]
        .as_f64()
        .unwrap();
    assert!((diff - want.frequentist.computed().unwrap().absolute_lift.estimate).abs() < 1e-9);
    // Mean order value: only buyers count; control's values are all 10 (zero variance).
    let got = &metric(&r, "order_value")["comparisons"][0];
    assert_eq!(got["control"]["n"], 8);
    assert_eq!(got["treatment"]["n"], 14);
    assert_eq!(got["frequentist"]["status"], "computed");
    // Page views per user.
    let got = &metric(&r, "views")["comparisons"][0];
    assert!((got["control"]["mean"].as_f64().unwrap() - 1.0).abs() < 1e-12);
    assert!((got["treatment"]["mean"].as_f64().unwrap() - 2.25).abs() < 1e-12);
    // Four metrics x one treatment: Holm over four p-values.
    assert_eq!(r["multiple_comparisons"]["correction"], "holm");
    assert_eq!(r["multiple_comparisons"]["comparisons"], 4);
    let adjusted =
        &metric(&r, "purchase_rate")["comparisons"][0]["frequentist"]["adjusted_p_value"];
    assert_eq!(adjusted["correction"], "holm");
    assert!(adjusted["value"].as_f64().unwrap() >= p);
    assert!(r["methods"]["conversion"].is_string());
    // No NaN or infinity anywhere: the body parsed as JSON, and every number is finite.
    assert!(!r.to_string().contains("NaN"));
}
both!(numbers, results_match_the_statistics_of_the_raw_data);

async fn users_in_several_variants_are_reported_and_excluded(s: Server) {
    experiment(&s, json!({"control": 50, "one_page": 50})).await;
    let sdk = s.sdk_key("production").await;
    expose(&s, &sdk, "control", 5).await;
    expose(&s, &sdk, "one_page", 5).await;
    // control-0 and control-1 also saw one_page.
    let rows = json!({"exposures": [
        {"experiment": "checkout", "user_id": "control-0", "variant": "one_page"},
        {"experiment": "checkout", "user_id": "control-1", "variant": "one_page"}]});
    send(
        s.http
            .post(s.url("/sdk/v1/exposures"))
            .bearer_auth(&sdk)
            .json(&rows),
    )
    .await;
    let (_, r) = send(s.get("/experiments/checkout/results")).await;
    assert_eq!(r["excluded"]["multi_variant_users"], 2);
    assert_eq!(r["variants"][0]["users"], 3);
    assert_eq!(r["variants"][1]["users"], 5);
}
both!(
    multi_variant,
    users_in_several_variants_are_reported_and_excluded
);

async fn a_skewed_split_raises_the_sample_ratio_warning(s: Server) {
    experiment(&s, json!({"control": 50, "one_page": 50})).await;
    let sdk = s.sdk_key("production").await;
    expose(&s, &sdk, "control", 300).await;
    expose(&s, &sdk, "one_page", 200).await;
    let (_, r) = send(s.get("/experiments/checkout/results")).await;
    let srm = &r["sample_ratio_mismatch"];
    assert_eq!(srm["status"], "computed");
    assert_eq!(srm["warning"], true);
    assert!(srm["p_value"].as_f64().unwrap() < 0.001);
    assert!(srm["method"].is_string());
}
both!(srm, a_skewed_split_raises_the_sample_ratio_warning);

async fn tiny_samples_say_not_enough_data(s: Server) {
    experiment(&s, json!({"control": 50, "one_page": 50})).await;
    let sdk = s.sdk_key("production").await;
    expose(&s, &sdk, "control", 1).await;
    let (status, r) = send(s.get("/experiments/checkout/results")).await;
    assert_eq!(status, 200);
    let c = &metric(&r, "purchase_rate")["comparisons"][0];
    assert_eq!(c["frequentist"]["status"], "not_enough_data");
    assert_eq!(c["bayesian"]["status"], "not_enough_data");
    assert!(c["frequentist"]["reason"].is_string());
    assert_eq!(r["multiple_comparisons"]["comparisons"], 0);
    let text = r.to_string();
    assert!(!text.contains("NaN") && !text.contains("null,\"p_value\""));
}
both!(not_enough_data, tiny_samples_say_not_enough_data);

async fn query_parameters_choose_methods(s: Server) {
    experiment(&s, json!({"control": 50, "one_page": 50})).await;
    let sdk = s.sdk_key("production").await;
    let users = expose(&s, &sdk, "control", 30).await;
    let t = expose(&s, &sdk, "one_page", 30).await;
    let mut evs: Vec<Value> = users[..5]
        .iter()
        .map(|u| ev(u, "purchase", Some(1.0), "2026-11-02T00:00:00Z"))
        .collect();
    evs.extend(
        t[..9]
            .iter()
            .map(|u| ev(u, "purchase", Some(1.0), "2026-11-02T00:00:00Z")),
    );
    track(&s, &sdk, evs).await;
    let (status, r) = send(s.get("/experiments/checkout/results?confidence=0.9&correction=benjamini_hochberg&sequential=true&tuning=1000")).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["confidence"], 0.9);
    assert_eq!(
        r["multiple_comparisons"]["correction"],
        "benjamini_hochberg"
    );
    let c = &metric(&r, "purchase_rate")["comparisons"][0];
    assert_eq!(c["sequential"]["status"], "computed");
    assert_eq!(c["sequential"]["tuning_sample_size"], 1000.0);
    for bad in [
        "confidence=2",
        "correction=bonferroni",
        "sequential=maybe",
        "sequential=true&tuning=0",
    ] {
        let (status, body) = send(s.get(&format!("/experiments/checkout/results?{bad}"))).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, _) = send(s.get("/experiments/nope/results")).await;
    assert_eq!(status, 404);
}
both!(parameters, query_parameters_choose_methods);

async fn metric_declarations_are_validated(s: Server) {
    for (metrics, field) in [
        (
            json!([{"name": "m", "event": "e", "type": "median"}]),
            "$.metrics[0].type",
        ),
        (json!([{"name": "m", "type": "sum"}]), "$.metrics[0].event"),
        (json!([{"event": "e", "type": "sum"}]), "$.metrics[0].name"),
        (
            json!([{"name": "m", "event": "e", "type": "sum"}, {"name": "m", "event": "f", "type": "count"}]),
            "$.metrics[1].name",
        ),
        (json!({"name": "m"}), "$.metrics"),
        (
            json!([{"name": "m", "event": "e", "type": "sum", "window": 3}]),
            "$.metrics[0].window",
        ),
    ] {
        let (status, body) = send(s.post(
            "/experiments",
            &json!({"name": "e", "variants": ["control", "b"], "metrics": metrics}),
        ))
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["field"], field);
    }
    experiment(&s, json!({"control": 50, "one_page": 50})).await;
    let (status, body) = send(s.put(
        "/experiments/checkout",
        &json!({"metrics": [{"name": "x", "event": "y", "type": "nope"}]}),
    ))
    .await;
    assert_eq!(status, 400, "{body}");
}
both!(metric_validation, metric_declarations_are_validated);
