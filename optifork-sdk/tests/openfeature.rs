//! The OpenFeature provider: values, variants, reasons and error codes as the spec names them.
#![cfg(feature = "openfeature")]

use open_feature::provider::{FeatureProvider, ProviderStatus};
use open_feature::{EvaluationContext, EvaluationErrorCode, EvaluationReason, OpenFeature};
use optifork_sdk::Client;
use optifork_sdk::openfeature::OptiForkProvider;

const RULESET: &str = r##"{
  "environment": "production", "version": 3,
  "flags": [
    {"name": "static_on", "is_enabled": true},
    {"name": "targeted", "is_enabled": true, "targeting_rules": {"country": "US"}},
    {"name": "rules", "is_enabled": true,
     "rules": [{"condition": {"tier": "gold"}, "serve": {"variant": "on"}}],
     "default": {"variant": "off"}},
    {"name": "split", "is_enabled": true, "rollout_percentage": 50},
    {"name": "disabled", "is_enabled": false},
    {"name": "needs_disabled", "is_enabled": true, "prerequisites": [{"flag": "disabled"}]},
    {"name": "color", "is_enabled": true,
     "variants": [{"name": "red", "value": "#f00"}, {"name": "blue", "value": "#00f"}],
     "default": {"variant": "blue"}},
    {"name": "color_off", "is_enabled": false,
     "variants": [{"name": "red", "value": "#f00"}]},
    {"name": "limit", "is_enabled": true, "variants": [{"name": "ten", "value": 10}]},
    {"name": "ratio", "is_enabled": true, "variants": [{"name": "half", "value": 0.5}]},
    {"name": "layout", "is_enabled": true, "kind": "json",
     "variants": [{"name": "grid", "value": {"columns": 3, "dense": true, "gap": null}}]},
    {"name": "list", "is_enabled": true, "kind": "json",
     "variants": [{"name": "l", "value": [1, 2]}]}
  ]
}"##;

fn provider() -> OptiForkProvider {
    let client = Client::builder("", "")
        .offline(true)
        .bootstrap_json(RULESET)
        .build()
        .unwrap();
    OptiForkProvider::new(client)
}

fn user(key: &str) -> EvaluationContext {
    EvaluationContext::default().with_targeting_key(key)
}

fn other(s: &str) -> EvaluationReason {
    EvaluationReason::Other(s.into())
}

#[tokio::test]
async fn the_provider_resolves_values_variants_and_reasons() {
    let p = provider();
    assert_eq!(p.status(), ProviderStatus::Ready);
    assert_eq!(p.metadata().name, "OptiFork");
    let us = user("u1").with_custom_field("country", "US");
    let cases: Vec<(&str, EvaluationContext, bool, &str, EvaluationReason)> = vec![
        (
            "static_on",
            user("u1"),
            true,
            "on",
            EvaluationReason::Static,
        ),
        (
            "targeted",
            us.clone(),
            true,
            "on",
            EvaluationReason::TargetingMatch,
        ),
        (
            "targeted",
            user("u1"),
            false,
            "off",
            EvaluationReason::Default,
        ),
        (
            "rules",
            user("u1").with_custom_field("tier", "gold"),
            true,
            "on",
            EvaluationReason::TargetingMatch,
        ),
        ("rules", user("u1"), false, "off", EvaluationReason::Default),
        (
            "disabled",
            user("u1"),
            false,
            "off",
            EvaluationReason::Disabled,
        ),
        (
            "needs_disabled",
            user("u1"),
            false,
            "off",
            other("PREREQUISITE_FAILED"),
        ),
    ];
    for (flag, ctx, value, variant, reason) in cases {
        let r = p.resolve_bool_value(flag, &ctx).await.unwrap();
        assert_eq!(
            (r.value, r.variant.as_deref(), r.reason),
            (value, Some(variant), Some(reason)),
            "{flag}"
        );
    }
    let split = p.resolve_bool_value("split", &user("u7")).await.unwrap();
    assert_eq!(split.reason, Some(EvaluationReason::Split));

    let s = p.resolve_string_value("color", &user("u1")).await.unwrap();
    assert_eq!(
        (s.value.as_str(), s.variant.as_deref()),
        ("#00f", Some("blue"))
    );
    let i = p.resolve_int_value("limit", &user("u1")).await.unwrap();
    assert_eq!(i.value, 10);
    let f = p.resolve_float_value("ratio", &user("u1")).await.unwrap();
    assert_eq!(f.value, 0.5);
    let st = p.resolve_struct_value("layout", &user("u1")).await.unwrap();
    assert_eq!(st.value.fields.len(), 2, "null fields are left out");
    assert_eq!(st.value.fields["columns"], open_feature::Value::Int(3));
    let meta = st.flag_metadata.unwrap();
    assert_eq!(
        meta.values["ruleset_version"],
        open_feature::FlagMetadataValue::Int(3)
    );
}

#[tokio::test]
async fn the_provider_reports_error_codes() {
    let p = provider();
    let code = |r: Result<(), open_feature::EvaluationError>| r.unwrap_err().code;
    let u = user("u1");
    let missing = p.resolve_bool_value("missing", &u).await.map(|_| ());
    assert_eq!(code(missing), EvaluationErrorCode::FlagNotFound);
    let mismatch = p.resolve_bool_value("color", &u).await.map(|_| ());
    assert_eq!(code(mismatch), EvaluationErrorCode::TypeMismatch);
    let not_int = p.resolve_int_value("ratio", &u).await.map(|_| ());
    assert_eq!(code(not_int), EvaluationErrorCode::TypeMismatch);
    let not_object = p.resolve_struct_value("list", &u).await.map(|_| ());
    assert_eq!(code(not_object), EvaluationErrorCode::TypeMismatch);
    let no_key = p
        .resolve_bool_value("split", &EvaluationContext::default())
        .await
        .map(|_| ());
    assert_eq!(code(no_key), EvaluationErrorCode::TargetingKeyMissing);
    let no_value = p.resolve_string_value("color_off", &u).await.map(|_| ());
    let err = no_value.unwrap_err();
    assert_eq!(err.code, EvaluationErrorCode::General("NO_VARIANT".into()));
    assert!(err.message.unwrap().contains("DISABLED"));

    let empty = OptiForkProvider::new(Client::builder("", "").offline(true).build().unwrap());
    assert_eq!(empty.status(), ProviderStatus::NotReady);
    let not_ready = empty.resolve_bool_value("static_on", &u).await.map(|_| ());
    assert_eq!(code(not_ready), EvaluationErrorCode::ProviderNotReady);
}

#[tokio::test]
async fn the_openfeature_client_reports_the_providers_reasons_and_errors() {
    let mut api = OpenFeature::singleton_mut().await;
    api.set_provider(provider()).await;
    let client = api.create_client();
    drop(api);
    let us = user("u1").with_custom_field("country", "US");
    let d = client
        .get_bool_details("targeted", Some(&us), None)
        .await
        .unwrap();
    assert_eq!(
        (d.value, d.reason),
        (true, Some(EvaluationReason::TargetingMatch))
    );
    let e = client
        .get_bool_details("missing", Some(&us), None)
        .await
        .unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::FlagNotFound);
    let v = client.get_bool_value("missing", Some(&us), None).await;
    assert!(v.is_err());
    let v = client
        .get_string_value("color", Some(&us), None)
        .await
        .unwrap();
    assert_eq!(v, "#00f");
}
