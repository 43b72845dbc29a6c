//! Compares optifork-stats against independent reference values computed by
//! SciPy / statsmodels (`tests/reference/generate.py` → `expected.json`).

use optifork_stats::special::{regularized_incomplete_beta, student_t_quantile, student_t_sf};
use optifork_stats::{
    ConversionStats, InsufficientReason, Interval, Outcome, ValueStats, bayes_conversion,
    bayes_value, benjamini_hochberg, holm, sequential_interval, srm_check, two_proportion_z_test,
    welch_t_test,
};
use serde_json::Value;
use statrs::distribution::{ChiSquared, ContinuousCDF};

/// Relative tolerance required by the spec for values from the script.
const REL: f64 = 1e-6;

fn data() -> Value {
    serde_json::from_str(include_str!("reference/expected.json")).expect("expected.json parses")
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("missing number {key} in {v}"))
}

fn value_stats(v: &Value) -> ValueStats {
    ValueStats::new(v["n"].as_u64().unwrap(), num(v, "sum"), num(v, "sum_sq"))
}

fn conversion_stats(v: &Value) -> ConversionStats {
    ConversionStats::new(v["n"].as_u64().unwrap(), v["conversions"].as_u64().unwrap())
}

/// `|actual - expected| <= rel·|expected| + abs`.
fn assert_close(actual: f64, expected: f64, rel: f64, abs: f64, what: &str) {
    let err = (actual - expected).abs();
    assert!(
        err <= rel * expected.abs() + abs,
        "{what}: got {actual:e}, expected {expected:e} (error {err:e})"
    );
}

fn assert_interval(actual: &Interval, expected: &Value, what: &str) {
    assert_close(actual.estimate, num(expected, "estimate"), REL, 1e-12, what);
    assert_close(
        actual.std_error,
        num(expected, "std_error"),
        REL,
        1e-12,
        what,
    );
    assert_close(actual.lower, num(expected, "lower"), REL, 1e-12, what);
    assert_close(actual.upper, num(expected, "upper"), REL, 1e-12, what);
}

#[test]
fn welch_spec_example_matches_published_values_at_printed_precision() {
    let a = ValueStats::new(3407, 1396.87, 52377.9767);
    let b = ValueStats::new(3461, 2422.7, 134_698.29);
    let r = welch_t_test(&a, &b, 0.95).unwrap().into_computed().unwrap();
    assert_close(r.absolute_lift.estimate, 0.29, 0.0, 5e-13, "difference");
    assert_close(r.absolute_lift.lower, 0.04538, 0.0, 5e-6, "ci lower");
    assert_close(r.absolute_lift.upper, 0.53462, 0.0, 5e-6, "ci upper");
    assert_close(r.p_value, 0.02016, 0.0, 5e-6, "p-value");
}

#[test]
fn welch_matches_scipy_and_statsmodels() {
    let data = data();
    let cases = data["welch"].as_array().unwrap();
    assert!(cases.len() >= 8);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let c = value_stats(&case["control"]);
        let t = value_stats(&case["treatment"]);
        let conf = num(case, "confidence");
        let r = welch_t_test(&c, &t, conf)
            .unwrap()
            .into_computed()
            .unwrap_or_else(|| panic!("{name}: not computed"));
        let sc = c.summary().unwrap();
        let st = t.summary().unwrap();
        assert_close(
            sc.mean.unwrap(),
            num(case, "mean_control"),
            REL,
            1e-12,
            name,
        );
        assert_close(
            st.mean.unwrap(),
            num(case, "mean_treatment"),
            REL,
            1e-12,
            name,
        );
        assert_close(
            sc.variance.unwrap(),
            num(case, "variance_control"),
            REL,
            1e-12,
            name,
        );
        assert_close(
            st.variance.unwrap(),
            num(case, "variance_treatment"),
            REL,
            1e-12,
            name,
        );
        assert_close(
            sc.std_error.unwrap(),
            num(case, "std_error_control"),
            REL,
            1e-12,
            name,
        );
        assert_close(r.statistic, num(case, "t"), REL, 0.0, name);
        assert_close(
            r.degrees_of_freedom.unwrap(),
            num(case, "df"),
            REL,
            0.0,
            name,
        );
        assert_close(r.std_error, num(case, "std_error"), REL, 0.0, name);
        assert_close(r.p_value, num(case, "p_value"), REL, 1e-15, name);
        assert_close(
            r.absolute_lift.estimate,
            num(case, "diff"),
            REL,
            1e-12,
            name,
        );
        assert_close(
            r.absolute_lift.lower,
            num(case, "ci_lower"),
            REL,
            1e-12,
            name,
        );
        assert_close(
            r.absolute_lift.upper,
            num(case, "ci_upper"),
            REL,
            1e-12,
            name,
        );
        let rel = r.relative_lift.computed().expect("relative lift computed");
        assert_interval(rel, &case["relative"], &format!("{name} relative"));
    }
}

#[test]
fn two_proportion_z_test_matches_statsmodels() {
    let data = data();
    for case in data["ztest"].as_array().unwrap() {
        let what = case.to_string();
        let c = conversion_stats(&case["control"]);
        let t = conversion_stats(&case["treatment"]);
        let r = two_proportion_z_test(&c, &t, num(case, "confidence"))
            .unwrap()
            .into_computed()
            .unwrap();
        assert_close(r.statistic, num(case, "z"), REL, 0.0, &what);
        assert_close(r.p_value, num(case, "p_value"), REL, 1e-15, &what);
        assert_close(
            r.absolute_lift.estimate,
            num(case, "diff"),
            REL,
            1e-15,
            &what,
        );
        assert_close(
            r.absolute_lift.lower,
            num(case, "ci_lower"),
            REL,
            1e-12,
            &what,
        );
        assert_close(
            r.absolute_lift.upper,
            num(case, "ci_upper"),
            REL,
            1e-12,
            &what,
        );
        assert_close(
            r.absolute_lift.std_error,
            num(case, "std_error_unpooled"),
            REL,
            0.0,
            &what,
        );
        if case["relative"].is_null() {
            let reason = r
                .relative_lift
                .not_enough_data()
                .expect("relative undefined");
            assert_eq!(reason.reason, InsufficientReason::ZeroControlMean);
        } else {
            assert_interval(
                r.relative_lift.computed().unwrap(),
                &case["relative"],
                &what,
            );
        }
    }
}

#[test]
fn bayes_conversion_matches_scipy_quadrature() {
    let data = data();
    for case in data["bayes_conversion"].as_array().unwrap() {
        let what = case.to_string();
        let c = conversion_stats(&case["control"]);
        let t = conversion_stats(&case["treatment"]);
        let r = bayes_conversion(&c, &t).unwrap().into_computed().unwrap();
        // Probabilities and losses (in conversion-rate units): 1e-6
        // relative, or 1e-10 absolute for values near 0.
        let expected_chance = num(case, "chance_to_beat_control");
        assert_close(r.chance_to_beat_control, expected_chance, REL, 1e-10, &what);
        assert_close(
            r.expected_loss,
            num(case, "expected_loss"),
            REL,
            1e-10,
            &what,
        );
        assert_close(
            r.expected_loss_control,
            num(case, "expected_loss_control"),
            REL,
            1e-10,
            &what,
        );
        assert_close(
            r.expected_lift,
            num(case, "expected_lift"),
            REL,
            1e-12,
            &what,
        );
    }
}

#[test]
fn bayes_value_matches_normal_quadrature() {
    let data = data();
    for case in data["bayes_value"].as_array().unwrap() {
        let what = case["name"].as_str().unwrap();
        let c = value_stats(&case["control"]);
        let t = value_stats(&case["treatment"]);
        let r = bayes_value(&c, &t).unwrap().into_computed().unwrap();
        assert_close(
            r.chance_to_beat_control,
            num(case, "chance_to_beat_control"),
            REL,
            1e-12,
            what,
        );
        assert_close(
            r.expected_loss,
            num(case, "expected_loss"),
            REL,
            1e-12,
            what,
        );
        assert_close(
            r.expected_loss_control,
            num(case, "expected_loss_control"),
            REL,
            1e-12,
            what,
        );
        assert_close(
            r.expected_lift,
            num(case, "expected_lift"),
            REL,
            1e-12,
            what,
        );
    }
}

#[test]
fn srm_spec_example_matches_published_value() {
    let r = srm_check(&[1000, 1100], &[50.0, 50.0])
        .unwrap()
        .into_computed()
        .unwrap();
    assert_close(r.p_value, 0.0291, 0.0, 5e-5, "SRM p-value");
    assert!(!r.warning);
}

#[test]
fn srm_matches_scipy_chisquare() {
    let data = data();
    for case in data["srm"].as_array().unwrap() {
        let what = case.to_string();
        let counts: Vec<u64> = case["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let weights: Vec<f64> = case["weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let r = srm_check(&counts, &weights)
            .unwrap()
            .into_computed()
            .unwrap();
        assert_close(r.statistic, num(case, "statistic"), REL, 1e-12, &what);
        assert_eq!(r.degrees_of_freedom, case["df"].as_u64().unwrap());
        assert_close(r.p_value, num(case, "p_value"), REL, 1e-300, &what);
        assert_eq!(r.warning, num(case, "p_value") < 0.001, "{what}");
        for (got, want) in r
            .expected_counts
            .iter()
            .zip(case["expected_counts"].as_array().unwrap())
        {
            assert_close(*got, want.as_f64().unwrap(), 1e-12, 0.0, &what);
        }
    }
}

#[test]
fn holm_and_benjamini_hochberg_match_statsmodels_multipletests() {
    let data = data();
    for case in data["multiple"].as_array().unwrap() {
        let p: Vec<f64> = case["p_values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for (name, got) in [
            ("holm", holm(&p).unwrap()),
            ("benjamini_hochberg", benjamini_hochberg(&p).unwrap()),
        ] {
            let want = case[name].as_array().unwrap();
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(want) {
                assert_close(
                    *g,
                    w.as_f64().unwrap(),
                    1e-12,
                    1e-15,
                    &format!("{name} {p:?}"),
                );
            }
        }
    }
}

#[test]
fn sequential_interval_matches_published_formula_and_msprt_inversion() {
    let data = data();
    for case in data["sequential"].as_array().unwrap() {
        let what = case.to_string();
        let r = sequential_interval(
            num(case, "estimate"),
            num(case, "variance"),
            case["n_total"].as_u64().unwrap(),
            num(case, "confidence"),
            num(case, "tuning"),
        )
        .unwrap()
        .into_computed()
        .unwrap();
        assert_close(r.rho_squared, num(case, "rho_squared"), REL, 0.0, &what);
        assert_close(r.lower, num(case, "lower"), REL, 1e-12, &what);
        assert_close(r.upper, num(case, "upper"), REL, 1e-12, &what);
        assert_close(
            r.msprt_p_value,
            num(case, "msprt_p_value"),
            REL,
            1e-15,
            &what,
        );
    }
}

#[test]
fn student_t_tail_matches_scipy_up_to_1e10_degrees_of_freedom() {
    let data = data();
    for case in data["special"]["t_sf"].as_array().unwrap() {
        let (t, df) = (num(case, "t"), num(case, "df"));
        let got = student_t_sf(t, df);
        assert_close(got, num(case, "sf"), 1e-9, 1e-300, &case.to_string());
    }
}

#[test]
fn student_t_quantile_matches_scipy_up_to_1e10_degrees_of_freedom() {
    let data = data();
    for case in data["special"]["t_ppf"].as_array().unwrap() {
        let got = student_t_quantile(num(case, "p"), num(case, "df"));
        assert_close(got, num(case, "ppf"), 1e-9, 0.0, &case.to_string());
    }
}

#[test]
fn incomplete_beta_matches_scipy_for_large_parameters() {
    let data = data();
    for case in data["special"]["betainc"].as_array().unwrap() {
        let got = regularized_incomplete_beta(num(case, "a"), num(case, "b"), num(case, "x"));
        assert_close(got, num(case, "value"), 1e-9, 1e-300, &case.to_string());
    }
}

#[test]
fn statrs_chi_square_tail_matches_scipy() {
    let data = data();
    for case in data["special"]["chi2_sf"].as_array().unwrap() {
        let got = ChiSquared::new(num(case, "df")).unwrap().sf(num(case, "x"));
        assert_close(got, num(case, "sf"), 1e-9, 1e-300, &case.to_string());
    }
}

#[test]
fn reference_file_covers_every_method() {
    let data = data();
    for key in [
        "welch",
        "ztest",
        "bayes_conversion",
        "bayes_value",
        "srm",
        "multiple",
        "sequential",
    ] {
        assert!(
            data[key].as_array().is_some_and(|a| a.len() >= 5),
            "{key} needs at least 5 reference cases"
        );
    }
    // An Outcome from the reference data round-trips through JSON.
    let c = ConversionStats::new(1000, 100);
    let t = ConversionStats::new(1000, 120);
    let r = bayes_conversion(&c, &t).unwrap();
    let back: Outcome<optifork_stats::BayesResult> =
        serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(back, r);
}
