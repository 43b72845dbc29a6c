#!/usr/bin/env python3
"""Reference values for optifork-stats, from SciPy and statsmodels.

Writes expected.json next to this file. The Rust tests
(tests/reference.rs) read that JSON, so CI needs no Python. Regenerate with:

    python3 -m venv /tmp/statsvenv
    /tmp/statsvenv/bin/pip install scipy statsmodels numpy mpmath
    /tmp/statsvenv/bin/python optifork-stats/tests/reference/generate.py

Every reference value is produced by a library routine or by the published
formula, and cross-checked here by a second, independent computation
(assertions below); the script fails if a cross-check disagrees.
"""

import json
import math
import os
import sys

import mpmath as mp
import numpy as np
import scipy
import statsmodels
from scipy import integrate, optimize, special, stats
from statsmodels.stats._delta_method import NonlinearDeltaCov
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

HERE = os.path.dirname(os.path.abspath(__file__))
RNG = np.random.default_rng(20240601)


def close(a, b, rel=1e-9, abs_=1e-12):
    return abs(a - b) <= max(rel * abs(b), abs_)


def check(cond, msg):
    if not cond:
        sys.exit(f"cross-check failed: {msg}")


def moments(n, s, ss):
    mean = s / n
    var = (ss - s * mean) / (n - 1)
    return mean, var


# ---------------------------------------------------------------- delta method
def delta_relative(mc, se_c, mt, se_t, confidence):
    """Relative lift r = mt/mc - 1, Var(r) = se_t^2/mc^2 + mt^2 se_c^2/mc^4."""
    r = mt / mc - 1.0
    var = se_t**2 / mc**2 + mt**2 * se_c**2 / mc**4
    se = math.sqrt(var)
    # Second computation: statsmodels' numerical-derivative delta method.
    nl = NonlinearDeltaCov(lambda p: np.array([p[1] / p[0] - 1.0]),
                           np.array([mc, mt]), np.diag([se_c**2, se_t**2]))
    se_nl = float(np.sqrt(nl.cov()[0, 0]))
    check(close(se, se_nl, rel=1e-6), f"delta se {se} vs statsmodels {se_nl}")
    # Third: Monte Carlo of the ratio of two normal means (the delta method is
    # first-order, so only check loosely and only when se_c/mc is small).
    if se_c / abs(mc) < 0.05:
        draws = 2_000_000
        sim = RNG.normal(mt, se_t, draws) / RNG.normal(mc, se_c, draws) - 1.0
        mc_se = float(np.std(sim))
        check(abs(mc_se / se - 1) < 0.02, f"delta se {se} vs Monte Carlo {mc_se}")
    z = stats.norm.ppf(0.5 * (1 + confidence))
    return {"estimate": r, "std_error": se, "lower": r - z * se, "upper": r + z * se}


# ----------------------------------------------------------------------- Welch
def welch_from_stats(name, c, t, confidence, raw=None):
    mc, vc = moments(c["n"], c["sum"], c["sum_sq"])
    mt, vt = moments(t["n"], t["sum"], t["sum_sq"])
    res = stats.ttest_ind_from_stats(mt, math.sqrt(vt), t["n"], mc, math.sqrt(vc), c["n"],
                                     equal_var=False)
    a, b = vc / c["n"], vt / t["n"]
    se = math.sqrt(a + b)
    df = (a + b) ** 2 / (a**2 / (c["n"] - 1) + b**2 / (t["n"] - 1))
    q = stats.t.ppf(0.5 * (1 + confidence), df)
    lower, upper = mt - mc - q * se, mt - mc + q * se
    if raw is not None:
        xc, xt = raw
        # Independent: scipy on the raw data, and statsmodels on the raw data.
        r2 = stats.ttest_ind(xt, xc, equal_var=False)
        ci = r2.confidence_interval(confidence_level=confidence)
        check(close(r2.statistic, res.statistic, 1e-8), f"{name} t")
        check(close(r2.pvalue, res.pvalue, 1e-7, 1e-15), f"{name} p")
        check(close(r2.df, df, 1e-8), f"{name} df")
        check(close(ci.low, lower, 1e-8) and close(ci.high, upper, 1e-8), f"{name} ci")
        cm = CompareMeans(DescrStatsW(xt), DescrStatsW(xc))
        tt, pp, dd = cm.ttest_ind(usevar="unequal")
        lo2, hi2 = cm.tconfint_diff(alpha=1 - confidence, usevar="unequal")
        check(close(tt, res.statistic, 1e-8) and close(pp, res.pvalue, 1e-7, 1e-15), f"{name} sm")
        check(close(lo2, lower, 1e-8) and close(hi2, upper, 1e-8), f"{name} sm ci")
    return {
        "name": name, "control": c, "treatment": t, "confidence": confidence,
        "mean_control": mc, "mean_treatment": mt,
        "variance_control": vc, "variance_treatment": vt,
        "std_error_control": math.sqrt(a), "std_error_treatment": math.sqrt(b),
        "diff": mt - mc, "std_error": se, "t": float(res.statistic), "df": df,
        "p_value": float(res.pvalue), "ci_lower": lower, "ci_upper": upper,
        "relative": delta_relative(mc, math.sqrt(a), mt, math.sqrt(b), confidence),
    }


def suff(x):
    x = np.asarray(x, dtype=float)
    return {"n": int(x.size), "sum": math.fsum(x), "sum_sq": math.fsum(x * x)}


def welch_cases():
    out = []
    # The hand-checked case from the spec.
    a = {"n": 3407, "sum": 1396.87, "sum_sq": 52377.9767}
    b = {"n": 3461, "sum": 2422.7, "sum_sq": 134698.29}
    case = welch_from_stats("spec_example", a, b, 0.95)
    check(abs(case["ci_lower"] - 0.04538) < 5e-6 and abs(case["ci_upper"] - 0.53462) < 5e-6
          and abs(case["p_value"] - 0.02016) < 5e-6, "spec example")
    out.append(case)
    raw_cases = [
        ("unequal_n_and_variance", RNG.normal(10, 3, 500), RNG.normal(10.6, 6, 1500), 0.95),
        ("small_samples", RNG.normal(5, 2, 5), RNG.normal(7, 1, 7), 0.95),
        ("revenue_zero_inflated",
         RNG.binomial(1, 0.04, 20000) * RNG.lognormal(3, 1, 20000),
         RNG.binomial(1, 0.043, 21000) * RNG.lognormal(3, 1, 21000), 0.95),
        ("count_metric_90", RNG.poisson(2.0, 3000), RNG.poisson(2.1, 2900), 0.90),
        ("negative_lift_99", RNG.normal(100, 20, 800), RNG.normal(96, 25, 820), 0.99),
        ("large_n", RNG.normal(1.0, 2.0, 2_000_000), RNG.normal(1.003, 2.0, 2_000_000), 0.95),
        ("control_zero_variance", np.full(50, 5.0), RNG.normal(5.5, 1, 40), 0.95),
        ("negative_control_mean", RNG.normal(-2, 1, 300), RNG.normal(-1.8, 1, 310), 0.95),
    ]
    for name, xc, xt, conf in raw_cases:
        out.append(welch_from_stats(name, suff(xc), suff(xt), conf, raw=(xc, xt)))
    return out


# -------------------------------------------------------------------- z-test
def ztest_cases():
    out = []
    for n_c, x_c, n_t, x_t, conf in [
        (10000, 1000, 10000, 1100, 0.95),
        (5000, 250, 5200, 230, 0.95),
        (200, 12, 180, 25, 0.99),
        (1_000_000, 31_000, 1_000_000, 31_500, 0.95),
        (50, 0, 60, 3, 0.95),
        (3000, 2990, 3100, 3099, 0.90),
    ]:
        z, p = proportions_ztest([x_t, x_c], [n_t, n_c])
        lo, hi = confint_proportions_2indep(x_t, n_t, x_c, n_c, method="wald",
                                            compare="diff", alpha=1 - conf)
        pc, pt = x_c / n_c, x_t / n_t
        pooled = (x_c + x_t) / (n_c + n_t)
        z2 = (pt - pc) / math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
        check(close(z, z2), "z formula")
        check(close(p, 2 * stats.norm.sf(abs(z2)), 1e-9, 1e-300), "z p formula")
        se_c, se_t = math.sqrt(pc * (1 - pc) / n_c), math.sqrt(pt * (1 - pt) / n_t)
        q = stats.norm.ppf(0.5 * (1 + conf))
        check(close(lo, pt - pc - q * math.hypot(se_c, se_t), 1e-9) and
              close(hi, pt - pc + q * math.hypot(se_c, se_t), 1e-9), "wald formula")
        case = {
            "control": {"n": n_c, "conversions": x_c},
            "treatment": {"n": n_t, "conversions": x_t},
            "confidence": conf, "z": float(z), "p_value": float(p),
            "diff": pt - pc, "ci_lower": float(lo), "ci_upper": float(hi),
            "std_error_unpooled": math.hypot(se_c, se_t),
            "relative": delta_relative(pc, se_c, pt, se_t, conf) if x_c > 0 else None,
        }
        out.append(case)
    return out


# ------------------------------------------------------------ Bayes (Beta)
def beta_range(d):
    return d.ppf(1e-17), d.isf(1e-17)


def beta_points(*ds):
    pts = []
    for d in ds:
        m, s = d.mean(), d.std()
        pts += [m + k * s for k in (-16, -8, -4, -2, -1, 0, 1, 2, 4, 8, 16)]
    return pts


def quad_prob_greater(x, y):
    """P(X > Y) = int f_Y(u) P(X > u) du by QUADPACK."""
    lo, hi = beta_range(y)
    pts = sorted(p for p in beta_points(x, y) if lo < p < hi)
    val, err = integrate.quad(lambda u: y.pdf(u) * x.sf(u), lo, hi, points=pts,
                              epsabs=1e-14, epsrel=1e-13, limit=2000)
    return val


def closed_form_prob_greater(a_t, b_t, a_c, b_c):
    """Evan Miller's sum for P(T > C), integer a_t, in 40-digit arithmetic
    (in doubles the ln B cancellations cost ~1e-10 at 1e4 conversions)."""
    with mp.workdps(40):
        lg = mp.loggamma
        lbeta = lambda a, b: lg(a) + lg(b) - lg(a + b)
        base = lbeta(a_c, b_c)
        total = mp.fsum(mp.exp(lbeta(a_c + i, b_c + b_t) - mp.log(b_t + i)
                               - lbeta(1 + i, b_t) - base) for i in range(int(a_t)))
        return float(total)


def nested_loss(c, t):
    """E[max(C - T, 0)] = int f_T(u) int_u^1 (v - u) f_C(v) dv du, nested quad."""
    lo_t, hi_t = beta_range(t)
    lo_c, hi_c = beta_range(c)

    def inner(u):
        a = max(u, lo_c)
        if a >= hi_c:
            return 0.0
        pts = sorted(p for p in beta_points(c) if a < p < hi_c)
        return integrate.quad(lambda v: (v - u) * c.pdf(v), a, hi_c, points=pts or None,
                              epsabs=1e-15, epsrel=1e-12, limit=500)[0]

    pts = sorted(p for p in beta_points(c, t) if lo_t < p < hi_t)
    return integrate.quad(lambda u: t.pdf(u) * inner(u), lo_t, hi_t, points=pts,
                          epsabs=1e-14, epsrel=1e-11, limit=1000)[0]


def bayes_conversion_cases():
    out = []
    for n_c, x_c, n_t, x_t in [
        (1000, 100, 1000, 120),
        (1000, 100, 1000, 100),
        (50, 5, 60, 2),
        (20000, 1000, 20000, 1080),
        (200000, 10000, 200000, 10400),
        (10, 0, 12, 0),
        (100, 100, 100, 99),
        (400, 20, 5000, 300),
    ]:
        c = stats.beta(1 + x_c, 1 + n_c - x_c)
        t = stats.beta(1 + x_t, 1 + n_t - x_t)
        chance = quad_prob_greater(t, c)
        cf = closed_form_prob_greater(1 + x_t, 1 + n_t - x_t, 1 + x_c, 1 + n_c - x_c)
        check(abs(chance - cf) < 1e-10, f"chance quad {chance} vs closed form {cf}")
        loss_t = nested_loss(c, t)
        loss_c = nested_loss(t, c)
        check(abs((loss_t - loss_c) - (c.mean() - t.mean())) < 1e-10, "loss identity")
        # Size-biased identity, as a cross-check of the nested integral.
        cp = stats.beta(2 + x_c, 1 + n_c - x_c)
        tp = stats.beta(2 + x_t, 1 + n_t - x_t)
        alt = c.mean() * quad_prob_greater(cp, t) - t.mean() * quad_prob_greater(c, tp)
        check(abs(alt - loss_t) < 1e-10, f"loss nested {loss_t} vs size-biased {alt}")
        # Monte Carlo sanity check (5 standard errors).
        draws = 2_000_000
        sc, st = c.rvs(draws, random_state=RNG), t.rvs(draws, random_state=RNG)
        win = st > sc
        check(abs(win.mean() - chance) < 5 * math.sqrt(chance * (1 - chance) / draws) + 1e-6,
              "chance MC")
        l = np.maximum(sc - st, 0)
        check(abs(l.mean() - loss_t) < 5 * l.std() / math.sqrt(draws) + 1e-9, "loss MC")
        out.append({
            "control": {"n": n_c, "conversions": x_c},
            "treatment": {"n": n_t, "conversions": x_t},
            "chance_to_beat_control": chance, "expected_loss": loss_t,
            "expected_loss_control": loss_c, "expected_lift": t.mean() - c.mean(),
        })
    return out


# ---------------------------------------------------------- Bayes (normal)
def bayes_value_cases(welch):
    out = []
    for w in welch:
        d = w["diff"]
        sigma = w["std_error"]
        chance = stats.norm.cdf(d / sigma)
        # E[max(-D, 0)] and E[max(D, 0)] for D ~ N(d, sigma^2), by quadrature.
        lt = integrate.quad(lambda x: -x * stats.norm.pdf(x, d, sigma), d - 40 * sigma,
                            min(0.0, d + 40 * sigma), epsabs=1e-15, epsrel=1e-12)[0] \
            if d - 40 * sigma < 0 else 0.0
        lc = integrate.quad(lambda x: x * stats.norm.pdf(x, d, sigma), max(0.0, d - 40 * sigma),
                            d + 40 * sigma, epsabs=1e-15, epsrel=1e-12)[0] \
            if d + 40 * sigma > 0 else 0.0
        z = d / sigma
        check(abs(lt - (sigma * stats.norm.pdf(z) - d * stats.norm.sf(z))) < 1e-12 + 1e-9 * lt,
              "normal loss closed form")
        out.append({
            "name": w["name"], "control": w["control"], "treatment": w["treatment"],
            "chance_to_beat_control": chance, "expected_loss": lt,
            "expected_loss_control": lc, "expected_lift": d,
        })
    return out


# -------------------------------------------------------------------- SRM
def srm_cases():
    out = []
    for counts, weights in [
        ([1000, 1100], [50, 50]),
        ([5000, 5100, 4950], [1, 1, 1]),
        ([4000, 3000, 3050], [40, 30, 30]),
        ([9100, 900], [90, 10]),
        ([100, 200], [50, 50]),
        ([50000, 53000], [50, 50]),
        ([2000, 1010, 960, 1030], [40, 20, 20, 20]),
    ]:
        total = sum(counts)
        exp = [total * w / sum(weights) for w in weights]
        res = stats.chisquare(counts, f_exp=exp)
        stat2 = sum((o - e) ** 2 / e for o, e in zip(counts, exp))
        check(close(res.statistic, stat2), "chi2 formula")
        out.append({"counts": counts, "weights": weights, "expected_counts": exp,
                    "statistic": float(res.statistic), "df": len(counts) - 1,
                    "p_value": float(res.pvalue)})
    check(abs(out[0]["p_value"] - 0.0291) < 5e-5, "spec SRM example")
    return out


# ------------------------------------------------------ multiple comparisons
def multiple_cases():
    out = []
    for ps in [
        [0.01, 0.04, 0.03, 0.005],
        [0.5],
        [0.02, 0.02, 0.8, 0.001, 0.049],
        [0.9, 0.95, 0.99],
        [0.0, 1.0, 0.3],
        [0.012, 0.0004, 0.2, 0.049, 0.031, 0.6, 0.0001],
    ]:
        holm = multipletests(ps, method="holm")[1]
        bh = multipletests(ps, method="fdr_bh")[1]
        out.append({"p_values": ps, "holm": [float(v) for v in holm],
                    "benjamini_hochberg": [float(v) for v in bh]})
    return out


# --------------------------------------------------------------- sequential
def sequential_cases():
    out = []
    for est, var, n, conf, tuning in [
        (0.29, 0.0161, 6868, 0.95, 5000),
        (0.01, 1.8e-5, 20000, 0.95, 5000),
        (-0.5, 0.04, 1000, 0.90, 10000),
        (0.002, 4e-6, 2_000_000, 0.95, 5000),
        (0.002, 4e-6, 2_000_000, 0.99, 1_000_000),
        (0.0, 1.0, 4, 0.95, 5000),
        (0.05, 1e-4, 50000, 0.95, 5000),
        (-0.03, 2.5e-5, 8000, 0.95, 20000),
    ]:
        alpha = 1 - conf
        rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning
        # Waudby-Smith et al. (2023) eq. 9 / GrowthBook, with s2 = var * n.
        s2 = var * n
        half = math.sqrt(s2) * math.sqrt(2 * (n * rho2 + 1) / (n**2 * rho2)
                                         * math.log(math.sqrt(n * rho2 + 1) / alpha))
        # Cross-check: invert the mSPRT with a N(0, tau^2) mixture, tau^2 = rho2 * s2:
        # Lambda(theta) = sqrt(V/(V+tau2)) exp(tau2 (est-theta)^2 / (2 V (V+tau2))).
        tau2 = rho2 * s2

        def log_lambda(theta):
            return 0.5 * math.log(var / (var + tau2)) + tau2 * (est - theta) ** 2 / (
                2 * var * (var + tau2))

        f = lambda theta: log_lambda(theta) - math.log(1 / alpha)
        hi = optimize.brentq(f, est, est + 100 * math.sqrt(var) + 1, xtol=1e-15, rtol=1e-14)
        check(close(hi - est, half, 1e-9), f"mSPRT inversion {hi - est} vs {half}")
        p = min(1.0, math.exp(-log_lambda(0.0)))
        out.append({"estimate": est, "variance": var, "n_total": n, "confidence": conf,
                    "tuning": tuning, "rho_squared": rho2, "lower": est - half,
                    "upper": est + half, "msprt_p_value": p})
    return out


# -------------------------------------------------------- special functions
def exact_betainc(a, b, x):
    """scipy.special.betainc, except for small integer a, where the exact
    identity I_x(a, b) = P(Binomial(a + b - 1, x) >= a) is summed in 50-digit
    arithmetic (SciPy is off by 4e-8 relative at a = 2, b = 1e9, x = 2e-9)."""
    value = float(special.betainc(a, b, x))
    if a == int(a) and a <= 20 and b == int(b):
        with mp.workdps(50):
            n, xm = int(a + b - 1), mp.mpf(x)
            exact = 1 - mp.fsum(mp.binomial(n, k) * xm**k * (1 - xm) ** (n - k)
                                for k in range(int(a)))
            check(abs(exact - value) <= 1e-7 * exact, f"betainc({a}, {b}, {x})")
            return float(exact)
    return value


def special_cases():
    dfs = [1, 2.5, 7, 30, 1000, 6866.3, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10]
    ts = [0.0, 0.001, 0.5, 1.96, 2.0, 3.5, 8.0, 20.0, 30.0, 37.0]
    t_sf = [{"t": t, "df": df, "sf": float(stats.t.sf(t, df))} for df in dfs for t in ts]
    t_sf += [{"t": -t, "df": df, "sf": float(stats.t.sf(-t, df))} for df in dfs for t in (0.5, 3.5)]
    t_ppf = [{"p": p, "df": df, "ppf": float(stats.t.ppf(p, df))}
             for df in dfs for p in (0.9, 0.95, 0.975, 0.995, 0.9995, 0.025, 1e-12)]
    betainc = [{"a": a, "b": b, "x": x, "value": exact_betainc(a, b, x)}
               for a, b, x in [
                   (0.5, 0.5, 0.3), (1, 1, 0.7), (2, 3, 0.4), (11, 2, 0.95), (101, 901, 0.1),
                   (1001, 9001, 0.101), (1e4, 9e4, 0.1005), (1e5, 9e5, 0.1002),
                   (1e6, 9e6, 0.1002), (1e6, 9e6, 0.0988), (1e7, 9e7, 0.10002),
                   (5e8, 0.5, 0.999999999), (3.0, 4e6, 1e-6), (1.0, 1e5, 2e-5),
                   (2.0, 1e9, 2e-9), (1e9, 3.0, 1 - 3e-9), (1e8, 1e8, 0.50001),
                   (4e7, 6e8, 0.0625), (101.0, 2e6, 4.9e-5)]]
    chi2 = [{"x": x, "df": k, "sf": float(stats.chi2.sf(x, k))}
            for k in (1, 2, 3, 5) for x in (0.0, 0.5, 4.7619, 13.8, 60.0, 150.0)]
    return {"t_sf": t_sf, "t_ppf": t_ppf, "betainc": betainc, "chi2_sf": chi2}


def main():
    welch = welch_cases()
    data = {
        "generator": {
            "script": "optifork-stats/tests/reference/generate.py",
            "python": sys.version.split()[0], "numpy": np.__version__,
            "scipy": scipy.__version__, "statsmodels": statsmodels.__version__,
            "mpmath": mp.__version__,
        },
        "welch": welch,
        "ztest": ztest_cases(),
        "bayes_conversion": bayes_conversion_cases(),
        "bayes_value": bayes_value_cases(welch),
        "srm": srm_cases(),
        "multiple": multiple_cases(),
        "sequential": sequential_cases(),
        "special": special_cases(),
    }
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(data, f, indent=1, allow_nan=False)
        f.write("\n")
    print("wrote expected.json")


if __name__ == "__main__":
    main()
