//! Behavioural guarantees: typed "not enough data" outcomes, no NaN, valid
//! ranges, symmetry, and JSON shape.

use optifork_stats::special::{
    BetaDist, beta_prob_greater, ln_beta, student_t_quantile, student_t_sf,
};
use optifork_stats::{
    CompareOptions, Comparison, ConversionStats, Correction, InsufficientReason, Metric, Outcome,
    SequentialOptions, StatsError, ValueStats, adjust_p_values, apply_correction, bayes_conversion,
    bayes_value, benjamini_hochberg, compare, holm, relative_lift_delta_method,
    sequential_interval, sequential_lift, srm_check, two_proportion_z_test, welch_t_test,
};

fn reason<T>(outcome: &Outcome<T>) -> InsufficientReason {
    outcome
        .not_enough_data()
        .expect("expected not_enough_data")
        .reason
}

/// Value stats from raw per-user values.
fn values(xs: &[f64]) -> ValueStats {
    ValueStats::new(
        xs.len() as u64,
        xs.iter().sum(),
        xs.iter().map(|x| x * x).sum(),
    )
}

/// Asserts the JSON has no null (serde_json writes NaN and ±inf as null)
/// and no NaN/inf spelled out.
fn assert_clean_json<T: serde::Serialize>(value: &T) -> String {
    let json = serde_json::to_string(value).unwrap();
    for bad in ["null", "NaN", "nan", "inf"] {
        assert!(!json.contains(bad), "JSON contains {bad}: {json}");
    }
    json
}

/// A small grid of conversion inputs, including degenerate ones.
fn conversion_grid() -> Vec<ConversionStats> {
    let mut grid = Vec::new();
    for n in [0, 1, 2, 3, 10, 137, 5000, 1_000_000] {
        for frac in [0.0, 0.01, 0.2, 0.5, 0.93, 1.0] {
            grid.push(ConversionStats::new(n, (n as f64 * frac).round() as u64));
        }
    }
    grid
}

/// A small grid of value inputs, including degenerate ones.
fn value_grid() -> Vec<ValueStats> {
    vec![
        ValueStats::new(0, 0.0, 0.0),
        values(&[3.0]),
        values(&[3.0, 3.0]),
        values(&[0.0; 40]),
        values(&[0.1; 1000]),
        values(&[1.0, 2.0]),
        values(&[0.0, 0.0, 0.0, 12.5]),
        values(&[-3.0, 1.0, 2.0, 7.0, -0.5]),
        ValueStats::new(3407, 1396.87, 52377.9767),
        ValueStats::new(3461, 2422.7, 134_698.29),
        ValueStats::new(10_000_000, 1.0e7 * 3.2, 1.0e7 * (3.2 * 3.2 + 81.0)),
        ValueStats::new(5, 1e150, 1e300),
    ]
}

#[test]
fn fewer_than_two_users_is_not_enough_data_everywhere() {
    let one = values(&[4.0]);
    let many = values(&[1.0, 2.0, 3.0]);
    assert_eq!(
        reason(&welch_t_test(&one, &many, 0.95).unwrap()),
        InsufficientReason::TooFewUsers
    );
    assert_eq!(
        reason(&bayes_value(&many, &one).unwrap()),
        InsufficientReason::TooFewUsers
    );
    let empty = ConversionStats::new(0, 0);
    let some = ConversionStats::new(100, 10);
    assert_eq!(
        reason(&two_proportion_z_test(&empty, &some, 0.95).unwrap()),
        InsufficientReason::TooFewUsers
    );
    assert_eq!(
        reason(&bayes_conversion(&some, &ConversionStats::new(1, 1)).unwrap()),
        InsufficientReason::TooFewUsers
    );
    assert_eq!(
        reason(&sequential_lift(&some, &empty, 0.95, 5000.0).unwrap()),
        InsufficientReason::TooFewUsers
    );
    let summary = empty.summary().unwrap();
    assert_eq!((summary.mean, summary.variance), (None, None));
    assert_clean_json(&compare(&empty, &some, &CompareOptions::default()).unwrap());
}

#[test]
fn zero_variance_is_not_enough_data_not_nan() {
    let constant_a = values(&[2.0; 30]);
    let constant_b = values(&[5.0; 30]);
    let welch = welch_t_test(&constant_a, &constant_b, 0.95).unwrap();
    assert_eq!(reason(&welch), InsufficientReason::ZeroVariance);
    let bayes = bayes_value(&constant_a, &constant_b).unwrap();
    assert_eq!(reason(&bayes), InsufficientReason::ZeroVariance);
    // Rounding noise in the sums of a constant 0.1 is still zero variance.
    let tenths = values(&[0.1; 1000]);
    assert_eq!(tenths.summary().unwrap().variance, Some(0.0));
    assert_eq!(
        reason(&welch_t_test(&tenths, &tenths, 0.95).unwrap()),
        InsufficientReason::ZeroVariance
    );

    let nobody = ConversionStats::new(500, 0);
    let everybody = ConversionStats::new(500, 500);
    for (c, t) in [(nobody, nobody), (everybody, everybody)] {
        let z = two_proportion_z_test(&c, &t, 0.95).unwrap();
        assert_eq!(reason(&z), InsufficientReason::ZeroVariance);
        let seq = sequential_lift(&c, &t, 0.95, 5000.0).unwrap();
        assert_eq!(reason(&seq), InsufficientReason::ZeroVariance);
    }
}

#[test]
fn one_constant_variant_still_gets_a_welch_test() {
    let constant = values(&[5.0; 50]);
    let varied = values(&[4.0, 6.5, 5.5, 7.0, 5.0, 6.0]);
    let r = welch_t_test(&constant, &varied, 0.95).unwrap();
    let r = r.computed().expect("computed");
    assert_eq!(r.degrees_of_freedom, Some(5.0));
}

#[test]
fn zero_control_mean_makes_only_the_relative_lift_unavailable() {
    let zero = values(&[0.0, 0.0, 1.0, -1.0]);
    let other = values(&[1.0, 2.0, 0.0, 3.0]);
    let r = welch_t_test(&zero, &other, 0.95).unwrap();
    let r = r.computed().unwrap();
    assert_eq!(
        reason(&r.relative_lift),
        InsufficientReason::ZeroControlMean
    );
    let conv = two_proportion_z_test(
        &ConversionStats::new(400, 0),
        &ConversionStats::new(400, 9),
        0.95,
    )
    .unwrap();
    let conv = conv.computed().unwrap();
    assert!(conv.p_value < 0.01);
    assert_eq!(
        reason(&conv.relative_lift),
        InsufficientReason::ZeroControlMean
    );
    assert_clean_json(conv);
}

#[test]
fn invalid_inputs_are_errors_not_outcomes() {
    let ok = ConversionStats::new(10, 1);
    let bad = ConversionStats::new(10, 11);
    assert!(matches!(
        two_proportion_z_test(&ok, &bad, 0.95),
        Err(StatsError::InvalidStats(_))
    ));
    assert!(matches!(
        bayes_conversion(&bad, &ok),
        Err(StatsError::InvalidStats(_))
    ));
    let v = values(&[1.0, 2.0, 3.0]);
    for bad in [
        ValueStats::new(3, f64::NAN, 1.0),
        ValueStats::new(3, 1.0, -1.0),
        ValueStats::new(3, 6.0, 2.0), // sum² / n = 12 > sum_sq
        ValueStats::new(0, 1.0, 1.0),
    ] {
        assert!(
            matches!(
                welch_t_test(&v, &bad, 0.95),
                Err(StatsError::InvalidStats(_))
            ),
            "{bad:?}"
        );
    }
    for confidence in [0.0, 1.0, -0.5, f64::NAN, 95.0] {
        assert!(matches!(
            welch_t_test(&v, &v, confidence),
            Err(StatsError::InvalidConfidence(_))
        ));
    }
    assert!(holm(&[0.5, f64::NAN]).is_err());
    assert!(benjamini_hochberg(&[1.5]).is_err());
    assert!(srm_check(&[10, 10], &[50.0]).is_err());
    assert!(srm_check(&[10], &[100.0]).is_err());
    assert!(srm_check(&[10, 10], &[50.0, 0.0]).is_err());
    assert!(sequential_interval(0.1, 1.0, 100, 0.95, 0.0).is_err());
    assert!(relative_lift_delta_method(1.0, f64::INFINITY, 1.0, 1.0, 0.95).is_err());
}

#[test]
fn p_values_are_in_unit_interval_and_intervals_contain_the_estimate() {
    let conv = conversion_grid();
    for c in &conv {
        for t in &conv {
            for confidence in [0.8, 0.95, 0.999] {
                let Some(r) = two_proportion_z_test(c, t, confidence)
                    .unwrap()
                    .into_computed()
                else {
                    continue;
                };
                assert!((0.0..=1.0).contains(&r.p_value), "{c:?} {t:?}");
                let a = &r.absolute_lift;
                assert!(
                    a.lower <= a.estimate && a.estimate <= a.upper,
                    "{c:?} {t:?}"
                );
                if let Some(rel) = r.relative_lift.computed() {
                    assert!(rel.lower <= rel.estimate && rel.estimate <= rel.upper);
                }
            }
        }
    }
    let vals = value_grid();
    for c in &vals {
        for t in &vals {
            let Some(r) = welch_t_test(c, t, 0.95).unwrap().into_computed() else {
                continue;
            };
            assert!((0.0..=1.0).contains(&r.p_value), "{c:?} {t:?}");
            let a = &r.absolute_lift;
            assert!(
                a.lower <= a.estimate && a.estimate <= a.upper,
                "{c:?} {t:?}"
            );
            if let Some(rel) = r.relative_lift.computed() {
                assert!(rel.lower <= rel.estimate && rel.estimate <= rel.upper);
            }
        }
    }
}

#[test]
fn higher_confidence_gives_wider_intervals() {
    let c = ValueStats::new(3407, 1396.87, 52377.9767);
    let t = ValueStats::new(3461, 2422.7, 134_698.29);
    let width = |confidence: f64| {
        let r = welch_t_test(&c, &t, confidence)
            .unwrap()
            .into_computed()
            .unwrap();
        r.absolute_lift.upper - r.absolute_lift.lower
    };
    assert!(width(0.8) < width(0.9));
    assert!(width(0.9) < width(0.95));
    assert!(width(0.95) < width(0.99));
}

#[test]
fn identical_variants_give_chance_to_beat_one_half_and_equal_losses() {
    let c = ConversionStats::new(1234, 97);
    let r = bayes_conversion(&c, &c).unwrap().into_computed().unwrap();
    assert!((r.chance_to_beat_control - 0.5).abs() < 1e-12);
    assert!((r.expected_loss - r.expected_loss_control).abs() < 1e-12);
    let v = ValueStats::new(3407, 1396.87, 52377.9767);
    let r = bayes_value(&v, &v).unwrap().into_computed().unwrap();
    assert!((r.chance_to_beat_control - 0.5).abs() < 1e-15);
    assert_eq!(r.expected_loss, r.expected_loss_control);
    let z = two_proportion_z_test(&c, &c, 0.95)
        .unwrap()
        .into_computed()
        .unwrap();
    assert_eq!(z.p_value, 1.0);
}

#[test]
fn swapping_variants_mirrors_the_bayesian_result() {
    let a = ConversionStats::new(2000, 180);
    let b = ConversionStats::new(2100, 215);
    let ab = bayes_conversion(&a, &b).unwrap().into_computed().unwrap();
    let ba = bayes_conversion(&b, &a).unwrap().into_computed().unwrap();
    assert!((ab.chance_to_beat_control + ba.chance_to_beat_control - 1.0).abs() < 1e-10);
    assert!((ab.expected_loss - ba.expected_loss_control).abs() < 1e-12);
    // loss(treatment) - loss(control) = E[control - treatment].
    assert!((ab.expected_loss - ab.expected_loss_control + ab.expected_lift).abs() < 1e-12);
}

/// Evan Miller's closed form for P(T > C) with integer α_T (Beta posteriors),
/// an independent check of the quadrature for moderate counts.
fn closed_form_chance(t: &BetaDist, c: &BetaDist) -> f64 {
    let base = ln_beta(c.alpha, c.beta);
    (0..t.alpha as u64)
        .map(|i| {
            let i = i as f64;
            (ln_beta(c.alpha + i, c.beta + t.beta)
                - (t.beta + i).ln()
                - ln_beta(1.0 + i, t.beta)
                - base)
                .exp()
        })
        .sum()
}

#[test]
fn beta_quadrature_agrees_with_closed_form_sum() {
    for (xc, nc, xt, nt) in [
        (0, 10, 3, 12),
        (5, 50, 2, 60),
        (100, 1000, 120, 1000),
        (30, 400, 45, 380),
        (999, 1000, 990, 1000),
    ] {
        let c = BetaDist {
            alpha: 1.0 + xc as f64,
            beta: 1.0 + (nc - xc) as f64,
        };
        let t = BetaDist {
            alpha: 1.0 + xt as f64,
            beta: 1.0 + (nt - xt) as f64,
        };
        let quad = beta_prob_greater(&t, &c);
        let exact = closed_form_chance(&t, &c);
        assert!(
            (quad - exact).abs() < 1e-11,
            "{xc}/{nc} vs {xt}/{nt}: {quad} vs {exact}"
        );
    }
}

#[test]
fn bayes_conversion_handles_huge_experiments_quickly() {
    let start = std::time::Instant::now();
    let c = ConversionStats::new(500_000_000, 15_000_000);
    let t = ConversionStats::new(500_000_000, 15_004_000);
    let r = bayes_conversion(&c, &t).unwrap().into_computed().unwrap();
    // Normal approximation: Δ = 8e-6, sd = sqrt(2·0.03·0.97/5e8) ≈ 1.0789e-5.
    let sd = (2.0 * 0.03 * 0.97 / 5e8_f64).sqrt();
    let approx = optifork_stats::special::normal_cdf(8e-6 / sd);
    assert!((r.chance_to_beat_control - approx).abs() < 1e-4, "{r:?}");
    assert!(r.expected_loss > 0.0 && r.expected_loss < 1e-5);
    assert!(start.elapsed().as_secs() < 5, "took {:?}", start.elapsed());
}

#[test]
fn student_t_quantile_inverts_the_tail() {
    for df in [1.0, 3.3, 29.0, 5841.7, 4e6, 3e9] {
        for p in [0.6, 0.9, 0.975, 0.999_999] {
            let q = student_t_quantile(p, df);
            assert!((student_t_sf(q, df) - (1.0 - p)).abs() < 1e-12 * (1.0 - p).max(1e-3));
            assert_eq!(student_t_quantile(1.0 - p, df), -q);
        }
    }
}

#[test]
fn srm_flags_mismatch_below_one_in_a_thousand() {
    let bad = srm_check(&[100, 200], &[50.0, 50.0])
        .unwrap()
        .into_computed()
        .unwrap();
    assert!(bad.p_value < 0.001 && bad.warning);
    let fine = srm_check(&[10_020, 9_980], &[50.0, 50.0])
        .unwrap()
        .into_computed()
        .unwrap();
    assert!(!fine.warning);
    // Percentages and fractions are the same split.
    let pct = srm_check(&[4000, 3000, 3050], &[40.0, 30.0, 30.0]).unwrap();
    let frac = srm_check(&[4000, 3000, 3050], &[0.4, 0.3, 0.3]).unwrap();
    let (pct, frac) = (pct.into_computed().unwrap(), frac.into_computed().unwrap());
    assert!((pct.p_value - frac.p_value).abs() < 1e-12);
    let none = srm_check(&[0, 0], &[50.0, 50.0]).unwrap();
    assert_eq!(reason(&none), InsufficientReason::TooFewUsers);
    assert_clean_json(&none);
}

#[test]
fn corrections_never_decrease_p_values_and_stay_below_one() {
    let p = [0.2, 0.001, 0.04, 0.04, 0.9, 0.013];
    let h = holm(&p).unwrap();
    let bh = benjamini_hochberg(&p).unwrap();
    for i in 0..p.len() {
        assert!(h[i] >= p[i] && h[i] <= 1.0);
        assert!(bh[i] >= p[i] && bh[i] <= 1.0);
        assert!(bh[i] <= h[i], "BH is never more conservative than Holm");
    }
    assert!(holm(&[]).unwrap().is_empty());
    let single = adjust_p_values(&[0.03], Correction::Holm).unwrap();
    assert_eq!(single.correction, Correction::None);
    assert_eq!(single.adjusted, vec![0.03]);
    let family = adjust_p_values(&p, Correction::BenjaminiHochberg).unwrap();
    assert_eq!(family.correction, Correction::BenjaminiHochberg);
    assert_eq!(family.adjusted, bh);
}

#[test]
fn apply_correction_annotates_every_computed_comparison() {
    let control = ConversionStats::new(10_000, 1000);
    let options = CompareOptions::default();
    let mut comparisons: Vec<Comparison> = [
        ConversionStats::new(10_000, 1100),
        ConversionStats::new(10_000, 1020),
        ConversionStats::new(1, 0), // not enough data: not in the family
    ]
    .iter()
    .map(|t| compare(&control, t, &options).unwrap())
    .collect();
    let applied = apply_correction(&mut comparisons, Correction::Holm).unwrap();
    assert_eq!(applied, Correction::Holm);
    let raw: Vec<f64> = comparisons[..2]
        .iter()
        .map(|c| c.frequentist.computed().unwrap().p_value)
        .collect();
    let expected = holm(&raw).unwrap();
    for (c, want) in comparisons[..2].iter().zip(expected) {
        let adj = c.frequentist.computed().unwrap().adjusted_p_value.unwrap();
        assert_eq!(adj.correction, Correction::Holm);
        assert_eq!(adj.comparisons, 2);
        assert_eq!(adj.value, want);
    }
    assert!(!comparisons[2].frequentist.is_computed());
    let json = assert_clean_json(&comparisons);
    assert!(json.contains(r#""adjusted_p_value":{"correction":"holm","comparisons":2"#));
}

#[test]
fn sequential_interval_is_wider_than_fixed_horizon_and_consistent_with_its_p_value() {
    let c = ValueStats::new(3407, 1396.87, 52377.9767);
    let t = ValueStats::new(3461, 2422.7, 134_698.29);
    let fixed = welch_t_test(&c, &t, 0.95).unwrap().into_computed().unwrap();
    let seq = sequential_lift(&c, &t, 0.95, 5000.0)
        .unwrap()
        .into_computed()
        .unwrap();
    assert!(seq.lower < fixed.absolute_lift.lower && seq.upper > fixed.absolute_lift.upper);
    assert!(seq.lower <= seq.estimate && seq.estimate <= seq.upper);
    for estimate in [0.0, 0.01, 0.05, 0.1, -0.2, 0.5] {
        let s = sequential_interval(estimate, 4e-4, 40_000, 0.95, 5000.0)
            .unwrap()
            .into_computed()
            .unwrap();
        let excludes_zero = s.lower > 0.0 || s.upper < 0.0;
        assert_eq!(excludes_zero, s.msprt_p_value <= 0.05, "{s:?}");
        assert!((0.0..=1.0).contains(&s.msprt_p_value));
    }
}

#[test]
fn serialized_results_never_contain_null_or_nan() {
    let seq = CompareOptions {
        confidence: 0.95,
        sequential: Some(SequentialOptions::default()),
    };
    for c in conversion_grid() {
        for t in [
            ConversionStats::new(0, 0),
            ConversionStats::new(2, 2),
            ConversionStats::new(900, 40),
        ] {
            assert_clean_json(&compare(&c, &t, &seq).unwrap());
        }
    }
    for c in value_grid() {
        for t in value_grid() {
            assert_clean_json(&compare(&c, &t, &seq).unwrap());
        }
    }
}

#[test]
fn json_labels_status_reason_and_method() {
    let json =
        assert_clean_json(&welch_t_test(&values(&[1.0; 5]), &values(&[1.0; 5]), 0.95).unwrap());
    assert!(json.starts_with(r#"{"status":"not_enough_data","reason":"zero_variance","detail":"#));
    let c = ConversionStats::new(1000, 100);
    let t = ConversionStats::new(1000, 130);
    let json = assert_clean_json(&compare(&c, &t, &CompareOptions::default()).unwrap());
    for needle in [
        r#""metric_type":"conversion""#,
        r#""status":"computed","method":"two_proportion_z_test_pooled""#,
        r#""method":"wald_unpooled""#,
        r#""method":"delta_method_normal""#,
        r#""method":"beta_binomial_quadrature","prior":{"type":"beta","alpha":1.0,"beta":1.0}"#,
        r#""method":"bernoulli_proportion""#,
    ] {
        assert!(json.contains(needle), "{needle} missing in {json}");
    }
    assert!(
        !json.contains("sequential"),
        "sequential omitted unless requested"
    );
    let v = compare(
        &values(&[1.0, 2.0, 4.0]),
        &values(&[2.0, 3.0, 5.0]),
        &CompareOptions::default(),
    )
    .unwrap();
    let json = assert_clean_json(&v);
    assert!(json.contains(r#""method":"welch_t_test""#));
    assert!(json.contains(r#""prior":{"type":"flat_improper"}"#));
    assert_eq!(
        <ValueStats as Metric>::METRIC_TYPE,
        optifork_stats::MetricType::Value
    );
}
