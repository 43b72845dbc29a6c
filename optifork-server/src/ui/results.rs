//! An experiment's results page: users per variant, the sample-ratio check, and per metric a
//! server-rendered SVG chart of each treatment's lift over control with its confidence
//! interval, plus the numbers behind it. The data is the API's own
//! (`api::results::compute`), so the page and `GET /experiments/{name}/results` agree.

use std::fmt::Write as _;

use askama::Template;
use optifork_storage::{EntityKind, EntityRef};
use serde_json::Value as Json;

use super::{Layout, Ui, UiReply};
use crate::api::results;

struct VariantCard {
    name: String,
    is_control: bool,
    users: i64,
    exposures: i64,
    share: String,
    expected: String,
}

struct CmpRow {
    variant: String,
    control_value: (String, String),
    treatment_value: (String, String),
    lift: String,
    interval: String,
    p_value: String,
    adjusted: String,
    chance: String,
    verdict: &'static str,
    verdict_class: &'static str,
    note: String,
}

struct MetricCard {
    name: String,
    event: String,
    kind: String,
    chart: String,
    chart_label: String,
    interval_label: String,
    rows: Vec<CmpRow>,
    ignored: i64,
}

#[derive(Template)]
#[template(path = "results.html")]
struct ResultsPage {
    layout: Layout,
    name: String,
    active: bool,
    control: String,
    srm_warning: bool,
    srm_text: String,
    variants: Vec<VariantCard>,
    metrics: Vec<MetricCard>,
    total_users: i64,
    multi_variant: i64,
    confidence: String,
    confidence_options: Vec<(&'static str, &'static str)>,
    correction: String,
    corrections: Vec<(&'static str, &'static str)>,
    api_path: String,
}

fn pct(x: f64, digits: usize) -> String {
    format!("{:.*}%", digits, x * 100.0)
}

fn signed_pct(x: f64) -> String {
    format!("{}{:.2}%", if x > 0.0 { "+" } else { "" }, x * 100.0)
}

/// A number for people: up to four significant decimals, no trailing zeros.
fn number(x: f64) -> String {
    let digits = if x.abs() >= 100.0 {
        1
    } else if x.abs() >= 1.0 {
        2
    } else {
        4
    };
    let s = format!("{x:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

fn signed(x: f64) -> String {
    format!("{}{}", if x > 0.0 { "+" } else { "" }, number(x))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One bar of the chart.
struct Bar {
    label: String,
    estimate: f64,
    lower: f64,
    upper: f64,
    text: String,
    range: String,
    baseline: bool,
}

/// An SVG chart: per row, the estimate (dot) and its interval (bar) on a shared axis with
/// zero marked; green when the whole interval is above zero, red when below, grey otherwise.
fn chart(bars: &[Bar], relative: bool, title: &str) -> String {
    let width = 720.0;
    let left = 150.0;
    let right = 160.0;
    let plot = width - left - right;
    let row = 48.0;
    let top = 28.0;
    let height = top + row * bars.len() as f64 + 12.0;
    let extent = bars
        .iter()
        .flat_map(|b| [b.lower.abs(), b.upper.abs(), b.estimate.abs()])
        .fold(0.0_f64, f64::max);
    let extent = if extent > 0.0 { extent * 1.15 } else { 0.01 };
    let x = |v: f64| left + plot * (v + extent) / (2.0 * extent);
    let fmt_tick = |v: f64| {
        if v == 0.0 {
            return if relative {
                "0%".to_owned()
            } else {
                "0".to_owned()
            };
        }
        if relative {
            let digits = if extent >= 0.1 { 0 } else { 1 };
            format!(
                "{}{:.*}%",
                if v > 0.0 { "+" } else { "" },
                digits,
                v * 100.0
            )
        } else {
            signed(v)
        }
    };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="ci-chart ci-wide" viewBox="0 0 {width} {height}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(title)
    );
    let _ = write!(s, "<title>{}</title>", escape(title));
    // Grid and ticks.
    for t in [-1.0, -0.5, 0.0, 0.5, 1.0] {
        let v = t * extent / 1.15;
        let px = x(v);
        let class = if t == 0.0 { "axis-zero" } else { "axis-grid" };
        let _ = write!(
            s,
            r#"<line class="{class}" x1="{px:.1}" y1="{top}" x2="{px:.1}" y2="{:.1}"/>"#,
            height - 8.0
        );
        let _ = write!(
            s,
            r#"<text class="axis-label" x="{px:.1}" y="16" text-anchor="middle">{}</text>"#,
            escape(&fmt_tick(v))
        );
    }
    for (i, b) in bars.iter().enumerate() {
        let cy = top + row * i as f64 + row / 2.0;
        let class = if b.baseline {
            "ci-base"
        } else if b.lower > 0.0 {
            "ci-pos"
        } else if b.upper < 0.0 {
            "ci-neg"
        } else {
            "ci-flat"
        };
        let _ = write!(
            s,
            r#"<text class="ci-name" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 12.0,
            cy + 4.0,
            escape(&b.label)
        );
        if !b.baseline {
            let (x1, x2) = (x(b.lower), x(b.upper));
            let _ = write!(
                s,
                r#"<rect class="{class}" x="{x1:.1}" y="{:.1}" width="{:.1}" height="12" rx="6"/>"#,
                cy - 6.0,
                (x2 - x1).max(2.0)
            );
        }
        let _ = write!(
            s,
            r#"<circle class="{class}-dot" cx="{:.1}" cy="{cy:.1}" r="6"/>"#,
            x(b.estimate)
        );
        let _ = write!(
            s,
            r#"<text class="ci-value" x="{:.1}" y="{:.1}">{}</text>"#,
            width - right + 14.0,
            if b.range.is_empty() {
                cy + 4.0
            } else {
                cy - 2.0
            },
            escape(&b.text)
        );
        if !b.range.is_empty() {
            let _ = write!(
                s,
                r#"<text class="ci-range" x="{:.1}" y="{:.1}">{}</text>"#,
                width - right + 14.0,
                cy + 13.0,
                escape(&b.range)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// The same chart laid out for phones: each row's name and estimate above its bar.
fn chart_compact(bars: &[Bar], relative: bool, title: &str) -> String {
    let width = 340.0;
    let pad = 12.0;
    let plot = width - 2.0 * pad;
    let row = 46.0;
    let top = 24.0;
    let height = top + row * bars.len() as f64 + 4.0;
    let extent = bars
        .iter()
        .flat_map(|b| [b.lower.abs(), b.upper.abs(), b.estimate.abs()])
        .fold(0.0_f64, f64::max);
    let extent = if extent > 0.0 { extent * 1.1 } else { 0.01 };
    let x = |v: f64| pad + plot * (v + extent) / (2.0 * extent);
    let tick = |v: f64| {
        if v == 0.0 {
            "0".to_owned()
        } else if relative {
            format!("{}{:.0}%", if v > 0.0 { "+" } else { "" }, v * 100.0)
        } else {
            signed(v)
        }
    };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="ci-chart ci-compact" viewBox="0 0 {width} {height}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(title)
    );
    for (t, anchor) in [(-1.0, "start"), (0.0, "middle"), (1.0, "end")] {
        let v = t * extent / 1.1;
        let px = x(v);
        let class = if t == 0.0 { "axis-zero" } else { "axis-grid" };
        let _ = write!(
            s,
            r#"<line class="{class}" x1="{px:.1}" y1="{top}" x2="{px:.1}" y2="{height}"/>"#
        );
        let label_x = if t < 0.0 {
            pad
        } else if t > 0.0 {
            width - pad
        } else {
            px
        };
        let _ = write!(
            s,
            r#"<text class="axis-label" x="{label_x:.1}" y="14" text-anchor="{anchor}">{}</text>"#,
            escape(&tick(v))
        );
    }
    for (i, b) in bars.iter().enumerate() {
        let y = top + row * i as f64;
        let class = if b.baseline {
            "ci-base"
        } else if b.lower > 0.0 {
            "ci-pos"
        } else if b.upper < 0.0 {
            "ci-neg"
        } else {
            "ci-flat"
        };
        let _ = write!(
            s,
            r#"<text class="ci-name" x="{pad}" y="{:.1}">{}</text><text class="ci-value" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            y + 14.0,
            escape(&b.label),
            width - pad,
            y + 14.0,
            escape(&b.text)
        );
        let cy = y + 30.0;
        if !b.baseline {
            let (x1, x2) = (x(b.lower), x(b.upper));
            let _ = write!(
                s,
                r#"<rect class="{class}" x="{x1:.1}" y="{:.1}" width="{:.1}" height="10" rx="5"/>"#,
                cy - 5.0,
                (x2 - x1).max(2.0)
            );
        }
        let _ = write!(
            s,
            r#"<circle class="{class}-dot" cx="{:.1}" cy="{cy:.1}" r="5"/>"#,
            x(b.estimate)
        );
    }
    s.push_str("</svg>");
    s
}

/// A variant's value of a metric, and what it is made of.
fn metric_value(kind: &str, summary: &Json) -> (String, String) {
    let n = summary["n"].as_u64().unwrap_or(0);
    match summary["mean"].as_f64() {
        Some(m) if kind == "conversion" => (
            pct(m, 2),
            format!(
                "{} of {n} users",
                summary["conversions"].as_u64().unwrap_or(0)
            ),
        ),
        Some(m) => (number(m), format!("mean of {n} users")),
        None => ("—".into(), format!("{n} users")),
    }
}

fn metric_card(m: &Json, control: &str, alpha: f64) -> MetricCard {
    let interval_label = format!("{}% interval", number((1.0 - alpha) * 100.0));
    let kind = m["type"].as_str().unwrap_or("conversion").to_owned();
    let comparisons = m["comparisons"].as_array().cloned().unwrap_or_default();
    // The chart uses relative lift when every comparison has it, else absolute lift.
    let relative = !comparisons.is_empty()
        && comparisons
            .iter()
            .all(|c| c["frequentist"]["relative_lift"]["status"] == "computed");
    let mut bars = vec![Bar {
        label: control.to_owned(),
        estimate: 0.0,
        lower: 0.0,
        upper: 0.0,
        text: "baseline".into(),
        range: String::new(),
        baseline: true,
    }];
    let mut rows = Vec::new();
    for c in &comparisons {
        let variant = c["variant"].as_str().unwrap_or("").to_owned();
        let f = &c["frequentist"];
        let computed = f["status"] == "computed";
        let lift = if relative {
            &f["relative_lift"]
        } else {
            &f["absolute_lift"]
        };
        let show = |v: f64| if relative { signed_pct(v) } else { signed(v) };
        let (lift_text, interval) = if computed {
            let (e, lo, hi) = (
                lift["estimate"].as_f64().unwrap_or(0.0),
                lift["lower"].as_f64().unwrap_or(0.0),
                lift["upper"].as_f64().unwrap_or(0.0),
            );
            bars.push(Bar {
                label: variant.clone(),
                estimate: e,
                lower: lo,
                upper: hi,
                text: show(e),
                range: format!("{} to {}", show(lo), show(hi)),
                baseline: false,
            });
            (show(e), format!("{} to {}", show(lo), show(hi)))
        } else {
            ("—".into(), "—".into())
        };
        let p = f["p_value"].as_f64();
        let adj = f["adjusted_p_value"]["value"].as_f64();
        let chance = c["bayesian"]["chance_to_beat_control"].as_f64();
        let estimate = lift["estimate"].as_f64().unwrap_or(0.0);
        let (verdict, verdict_class) = match adj.or(p) {
            _ if !computed => ("Not enough data", "badge-muted"),
            Some(q) if q < alpha && estimate > 0.0 => ("Better", "badge-success"),
            Some(q) if q < alpha => ("Worse", "badge-danger"),
            _ => ("No clear difference", "badge-neutral"),
        };
        let note = if computed {
            String::new()
        } else {
            f["detail"]
                .as_str()
                .or_else(|| f["reason"].as_str())
                .unwrap_or("")
                .to_owned()
        };
        rows.push(CmpRow {
            variant,
            control_value: metric_value(&kind, &c["control"]),
            treatment_value: metric_value(&kind, &c["treatment"]),
            lift: lift_text,
            interval,
            p_value: p.map_or_else(|| "—".into(), |v| format!("{v:.4}")),
            adjusted: adj.map_or_else(|| "—".into(), |v| format!("{v:.4}")),
            chance: chance.map_or_else(|| "—".into(), |v| pct(v, 1)),
            verdict,
            verdict_class,
            note,
        });
    }
    let name = m["name"].as_str().unwrap_or("").to_owned();
    let chart_label = if relative {
        "Relative lift over control, with its confidence interval"
    } else {
        "Absolute difference from control, with its confidence interval"
    };
    MetricCard {
        chart: format!(
            "{}{}",
            chart(&bars, relative, &format!("{name}: {chart_label}")),
            chart_compact(&bars, relative, &format!("{name}: {chart_label}"))
        ),
        chart_label: chart_label.into(),
        interval_label,
        event: m["event"].as_str().unwrap_or("").to_owned(),
        kind,
        rows,
        name,
        ignored: m["events_before_exposure_ignored"].as_i64().unwrap_or(0),
    }
}

/// GET /ui/experiments/{name}/results?confidence=&correction=
pub async fn page(ui: Ui) -> UiReply {
    let name = ui.param(0).to_owned();
    let env = ui.env();
    let record = ui
        .state
        .storage
        .get(EntityKind::Experiment, &env, &EntityRef::Name(name.clone()))
        .await?;
    let query: Vec<(String, String)> = ui
        .req
        .query
        .iter()
        .filter(|(k, v)| (k == "confidence" || k == "correction") && !v.is_empty())
        .cloned()
        .collect();
    let params = results::params(&query)?;
    let r = results::compute(&ui.state, &env, &name, &params).await?;
    let confidence = r["confidence"].as_f64().unwrap_or(0.95);
    let control = r["control"].as_str().unwrap_or("control").to_owned();
    let variants_json = r["variants"].as_array().cloned().unwrap_or_default();
    let total_users: i64 = variants_json
        .iter()
        .map(|v| v["users"].as_i64().unwrap_or(0))
        .sum();
    let variants = variants_json
        .iter()
        .map(|v| {
            let users = v["users"].as_i64().unwrap_or(0);
            VariantCard {
                name: v["variant"].as_str().unwrap_or("").to_owned(),
                is_control: v["is_control"].as_bool().unwrap_or(false),
                users,
                exposures: v["exposures"].as_i64().unwrap_or(0),
                #[allow(clippy::cast_precision_loss)]
                share: if total_users > 0 {
                    pct(users as f64 / total_users as f64, 1)
                } else {
                    "—".into()
                },
                expected: pct(v["expected_share"].as_f64().unwrap_or(0.0), 1),
            }
        })
        .collect();
    let srm = &r["sample_ratio_mismatch"];
    let srm_warning = srm["warning"].as_bool().unwrap_or(false);
    let srm_text = match srm["p_value"].as_f64() {
        Some(p) => format!(
            "Chi-square test of users per variant against the traffic split: p = {p:.2e} (warning below {}).",
            srm["threshold"].as_f64().unwrap_or(0.001)
        ),
        None => srm["detail"]
            .as_str()
            .unwrap_or("Not enough data for a sample-ratio test yet.")
            .to_owned(),
    };
    let alpha = 1.0 - confidence;
    let metrics = r["metrics"]
        .as_array()
        .map(|ms| ms.iter().map(|m| metric_card(m, &control, alpha)).collect())
        .unwrap_or_default();
    let correction = ui
        .req
        .query_param("correction")
        .unwrap_or("holm")
        .to_owned();
    let page = ResultsPage {
        layout: ui.layout(format!("Results of {name}"), "experiments"),
        api_path: format!(
            "/experiments/{}/results?environment={}",
            super::forms::encode(&name),
            super::forms::encode(&env)
        ),
        active: record.body["is_active"].as_bool().unwrap_or(false),
        name,
        control,
        srm_warning,
        srm_text,
        variants,
        metrics,
        total_users,
        multi_variant: r["excluded"]["multi_variant_users"].as_i64().unwrap_or(0),
        confidence: format!("{confidence}"),
        confidence_options: vec![("0.9", "90%"), ("0.95", "95%"), ("0.99", "99%")],
        correction,
        corrections: vec![
            ("holm", "Holm"),
            ("benjamini_hochberg", "Benjamini–Hochberg"),
            ("none", "None"),
        ],
    };
    ui.page(&page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_colours_intervals_by_sign() {
        let bars = vec![
            Bar {
                label: "control".into(),
                estimate: 0.0,
                lower: 0.0,
                upper: 0.0,
                text: "baseline".into(),
                range: String::new(),
                baseline: true,
            },
            Bar {
                label: "up".into(),
                estimate: 0.2,
                lower: 0.1,
                upper: 0.3,
                text: "+20%".into(),
                range: "+10% to +30%".into(),
                baseline: false,
            },
            Bar {
                label: "<odd>".into(),
                estimate: 0.0,
                lower: -0.1,
                upper: 0.1,
                text: "0%".into(),
                range: String::new(),
                baseline: false,
            },
        ];
        let svg = chart(&bars, true, "t");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("ci-pos") && svg.contains("ci-flat"));
        assert!(svg.contains("&lt;odd&gt;") && !svg.contains("<odd>"));
        assert_eq!(number(0.123_456), "0.1235");
        assert_eq!(number(12.0), "12");
        assert_eq!(signed_pct(0.05), "+5.00%");
    }
}
