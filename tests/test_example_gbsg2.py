"""The GBSG2 worked prognostic-model study (``studyval example gbsg2-prognostic``), against R.

Data: ``lifelines.datasets.load_gbsg2`` (686 patients of the German Breast Cancer Study Group 2
trial; the same rows as R's ``TH.data::GBSG2``) as the example writes them
(:func:`studyval.examples.gbsg2.clinical_frame`: ``time``/``cens`` renamed ``rfs_days``/
``rfs_event``, a sequential ``patient_id`` added). The plan: Cox models at 5 years (horizon 1826
days) of the published factors (primary) and of nodes, grade and size (comparator).

Oracles (R 4.2.2, survival 3.5-3, riskRegression 2022.11.28, prodlim, rms 6.5-0;
``options(digits = 17)``; R is a development oracle only, its printed values are pasted beside
the expected constants). The example's table was written to CSV and read in R as::

    d <- read.csv("clinical.csv")
    d$menostat <- factor(d$menostat, levels = c("Pre", "Post"))
    d$tgrade <- factor(d$tgrade, levels = c("I", "II", "III"))   # unordered: treatment contrasts
    d$horTh <- factor(d$horTh, levels = c("no", "yes"))
    H <- 1826
    f <- coxph(Surv(rfs_days, rfs_event) ~ age + menostat + tsize + tgrade + pnodes + progrec +
               estrec + horTh, d, ties = "efron")
    g <- coxph(Surv(rfs_days, rfs_event) ~ pnodes + tgrade + tsize, d, ties = "efron")
    d$risk_f <- 1 - as.numeric(summary(survfit(f, newdata = d), times = H)$surv)
    d$risk_g <- 1 - as.numeric(summary(survfit(g, newdata = d), times = H)$surv)

Documented differences in method: none. (R's ``cox.zph`` tests tgrade as one 2-df term by
default; studyval tests each model column, as ``cox.zph(f, terms = FALSE)`` does, which is the
oracle used.) Numbers that rest on the bootstrap (optimism-corrected measures, the bootstrap CI
of the difference in Harrell's C) are covered by the algorithm oracles of those functions:
``tests/test_internal_validation.py`` (``cox_optimism``, Harrell's optimism correction against
``rms::validate``) and ``tests/test_paired_bootstrap.py`` (``harrell_c_difference``); here they
are only checked to come from the bundle's seed and be finite.

Agreement is to 1e-6 relative (observed: about 1e-10 or better).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studyval.analysis.concordance import harrell_c, uno_c
from studyval.analysis.cox import nested_cox_test
from studyval.analysis.cox_zph import cox_zph
from studyval.analysis.decision_curve_survival import net_benefit_survival
from studyval.analysis.kaplan_meier import kaplan_meier
from studyval.analysis.sample_size_survival import riley_survival
from studyval.analysis.survival_validation import (
    brier,
    calibration_at_horizon,
    compare_time_dependent_auc,
    risk_groups_at_horizon,
    time_dependent_auc,
)
from studyval.examples import write_example
from studyval.examples.gbsg2 import SLUG, SOURCE, clinical_frame
from studyval.pipeline import load_inputs
from studyval.steps.prognostic import development_data, fit_models, predicted_risk
from studyval.study_types.prognostic_model import baseline, flow_counts

sys.path.insert(0, str(Path(__file__).parent))
from report_reader import problems

REL = 1e-6
H = 1826.0


def close(actual, expected, rel=REL):
    np.testing.assert_allclose(np.asarray(actual, float), np.asarray(expected, float), rtol=rel)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> dict[str, Path]:
    """The example's study folder as ``studyval example`` writes it."""
    return write_example(SLUG, tmp_path_factory.mktemp("gbsg2") / "study")


@pytest.fixture(scope="module")
def loaded(study):
    """Plan and cohort of the written inputs, through the pipeline's validation."""
    inputs = load_inputs(SLUG, study["clinical"], None, plan=study["plan"])
    return inputs.plan, inputs.cohort


@pytest.fixture(scope="module")
def dev(loaded):
    plan, cohort = loaded
    data = development_data(cohort, plan)
    return plan, data, fit_models(data, plan)


# --------------------------------------------------------------------------- data


def test_the_written_data_are_the_published_686_rows(study):
    d = pd.read_csv(study["clinical"])
    assert len(d) == 686 and d["patient_id"].is_unique
    assert d["patient_id"].iloc[[0, -1]].tolist() == ["GBSG2-0001", "GBSG2-0686"]
    assert (d["exclusion_reason"] == "none").all()
    # table(GBSG2$cens); sum(GBSG2$time); table(GBSG2$tgrade) in R's TH.data
    assert d["rfs_event"].sum() == 299 and d["rfs_days"].sum() == 771400
    assert d["tgrade"].value_counts().to_dict() == {"II": 444, "III": 161, "I": 81}
    # nothing of the distributed data is changed: the columns are lifelines' own
    from lifelines.datasets import load_gbsg2

    src = load_gbsg2()
    assert (d["rfs_days"].to_numpy() == src["time"].to_numpy()).all()
    for col in ("age", "tsize", "pnodes", "progrec", "estrec", "horTh", "menostat", "tgrade"):
        assert (d[col].astype(str).to_numpy() == src[col].astype(str).to_numpy()).all(), col
    marker = json.loads((study["clinical"].parent / "origin.json").read_text())
    assert next(iter(marker.values()))["kind"] == "public"
    assert clinical_frame().shape == (686, 12)
    assert "MIT" in SOURCE and "GPL-3" in SOURCE


# --------------------------------------------------------------------------- Cox models

# cbind(coef(f), sqrt(diag(vcov(f))))
FULL = {
    "age": (-0.00945923891334648007, 0.00930059479708476161),
    "menostat[Post]": (0.25844484086607211193, 0.18347645169779314145),
    "tsize": (0.00779608385204577734, 0.00393901773537449346),
    "tgrade[II]": (0.63611170455239129939, 0.24920249201561134322),
    "tgrade[III]": (0.77965424285589757236, 0.26848014733882191729),
    "pnodes": (0.04878860035479948287, 0.00744708951959269921),
    "progrec": (-0.00221723568064759310, 0.00057352855703438868),
    "estrec": (0.00019731071085460415, 0.00045036792676197805),
    "horTh[yes]": (-0.34627842762332938786, 0.12907473522308759994),
}
# cbind(coef(g), sqrt(diag(vcov(g))))
COMP = {
    "pnodes": (0.0513598698776341622, 0.0075118302585496961),
    "tgrade[II]": (0.7695092543331055746, 0.2470002327397833319),
    "tgrade[III]": (1.0436143608510903835, 0.2623045682847159887),
    "tsize": (0.0065670027110035631, 0.0038056938092920953),
}


@pytest.mark.parametrize(
    ("model", "coefs", "loglik", "lr", "cumhaz"),
    [
        # f$loglik; c(2 * diff(f$loglik), pchisq(2 * diff(f$loglik), 9, lower.tail = FALSE))
        # bh <- basehaz(f, centered = FALSE); tail(bh$hazard[bh$time <= H], 1)
        (
            "Published factors",
            FULL,
            (-1788.1047371230682, -1735.7321042579522),
            (1.0474526573023195e02, 1.7199054828918335e-18),
            0.47600681076628393,
        ),
        (
            "Nodes, grade and size",
            COMP,
            (-1788.1047371230682, -1751.9026478801641),
            (7.2404178485808188e01, 7.0501724262717955e-15),
            0.21498287204210245,
        ),
    ],
)
def test_cox_models_against_coxph(dev, model, coefs, loglik, lr, cumhaz):
    _, _data, fits = dev
    f = fits[model]
    s = f.summary.set_index("term")
    assert list(s.index) == list(coefs)
    close(s["coef"], [c for c, _ in coefs.values()])
    close(s["se"], [se for _, se in coefs.values()])
    close([f.loglik_null, f.loglik], loglik)
    close([f.lr_chisq, f.lr_p], lr)
    assert (f.n, f.n_events, f.ties) == (686, 299, "efron")
    b = f.baseline_survival([H]).iloc[0]
    close(b["cumhaz"], cumhaz)
    close(b["survival"], np.exp(-cumhaz))


def test_nested_likelihood_ratio_against_anova(dev):
    # a <- anova(g, f); c(a$Chisq[2], a$Df[2], a[2, 4])
    _, _, fits = dev
    lr = nested_cox_test(fits["Published factors"], fits["Nodes, grade and size"])
    close([lr.chisq, lr.df, lr.p_value], [32.341087244423761, 5, 5.0851557807872986e-06])


def test_proportional_hazards_against_cox_zph(dev):
    # cox.zph(f, transform = "km", terms = FALSE)$table
    _plan, data, fits = dev
    z = cox_zph(fits["Published factors"], transform="km", data=data.frame).to_frame()
    z = z.set_index("term")
    expected = {
        "age": (10.43785962875699624, 0.0012345825383528821),
        "menostat[Post]": (5.40603045075502830, 0.0200672983697775496),
        "tsize": (0.19114239923790446, 0.6619675046034531052),
        "tgrade[II]": (3.25151754872404464, 0.0713573629654407349),
        "tgrade[III]": (8.80892331703577725, 0.0029976087150278227),
        "pnodes": (0.80771678857769347, 0.3687961449674480030),
        "progrec": (4.38554625635971451, 0.0362448760134554127),
        "estrec": (5.89255510352697787, 0.0152050234200170990),
        "horTh[yes]": (0.23852143564780409, 0.6252760571769907516),
        "GLOBAL": (24.42109283377562434, 0.0036829422223744563),
    }
    close(z.loc[list(expected), "chisq"], [c for c, _ in expected.values()])
    close(z.loc[list(expected), "p_value"], [p for _, p in expected.values()])


# --------------------------------------------------------------------------- performance


@pytest.mark.parametrize(
    ("model", "harrell", "uno", "auc", "brier_"),
    [
        # concordance(Surv(rfs_days, rfs_event) ~ lp, d, reverse = TRUE)  [estimate, sqrt(var)]
        # ... with timewt = "n/G2", ymax = H
        # Score(list(full = d$risk_f, comp = d$risk_g), Hist(rfs_days, rfs_event) ~ 1, data = d,
        #       times = H, metrics = c("auc", "brier"), se.fit = TRUE, summary = "ipa",
        #       contrasts = TRUE)$AUC$score / $Brier$score   [estimate, se, lower, upper (, IPA)]
        (
            "Published factors",
            (0.691851028014909275, 0.014958696717619806),
            (0.681744770940682754, 0.015083494500065716),
            (0.75417458352135447, 0.025715009770615097, 0.70377409050885331, 0.80457507653385563),
            (0.20626800136745227, 0.0075745346011274334, 0.19142218634959005,
             0.22111381638531449, 0.17469754303936347),
        ),
        (
            "Nodes, grade and size",
            (0.660514608632920552, 0.015870769432415263),
            (0.645328438962242790, 0.015934836412831183),
            (0.69394372889483502, 0.028070990184807854, 0.63892559912223423, 0.74896185866743581),
            (0.22209503736463956, 0.0062926507226233547, 0.20976166858100784,
             0.23442840614827129, 0.11137171640465493),
        ),
    ],
)  # fmt: skip
def test_discrimination_and_brier_against_r(dev, model, harrell, uno, auc, brier_):
    _plan, data, fits = dev
    f = fits[model]
    lp = f.predict_risk(data.frame)
    hc = harrell_c(data.time, data.status, lp)
    close([hc.estimate, hc.se], harrell)
    uc = uno_c(data.time, data.status, lp, tau=H)
    close([uc.estimate, uc.se], uno)
    ta = time_dependent_auc(data.time, data.event_code, lp, horizon=H, cause=1)
    close([ta.estimate, ta.se, ta.ci_low, ta.ci_high], auc)
    br = brier(data.time, data.status, predicted_risk(f, data), horizon=H)
    close([br.estimate, br.se, br.ci_low, br.ci_high, br.ipa], brier_)
    # ...$Brier$score, Null model: 0.24993019180759618 0.0004012113860823427
    close([br.null_estimate, br.null_se], [0.24993019180759618, 0.0004012113860823427])


def test_difference_in_auc_against_score_contrasts(dev):
    # Score(...)$AUC$contrasts: delta.AUC (comp - full) -0.060230854626519448,
    # se 0.023842235989365638, lower -0.10696077847658078, upper -0.013500930776458107,
    # p 0.011529558609939893; studyval gives full - comp
    _plan, data, fits = dev
    lp_f = fits["Published factors"].predict_risk(data.frame)
    lp_g = fits["Nodes, grade and size"].predict_risk(data.frame)
    c = compare_time_dependent_auc(data.time, data.event_code, lp_f, lp_g, horizon=H, cause=1)
    close(
        [c.difference, c.se, c.ci_low, c.ci_high, c.p_value],
        [0.060230854626519448, 0.023842235989365638, 0.013500930776458107,
         0.10696077847658078, 0.011529558609939893],
    )  # fmt: skip


def test_calibration_at_5_years_against_r(dev):
    _plan, data, fits = dev
    risk = predicted_risk(fits["Published factors"], data)
    # R's risk_f and studyval's predicted risk are the same numbers
    cal = calibration_at_horizon(data.time, data.status, risk, horizon=H, groups=5)
    # d$cll <- log(-log(1 - d$risk_f))
    # fc <- cph(Surv(rfs_days, rfs_event) ~ rcs(cll, 3), data = d, x = TRUE, y = TRUE,
    #           surv = TRUE, eps = 1e-12)
    # obs <- 1 - survest(fc, newdata = d, times = H)$surv; err <- abs(obs - d$risk_f)
    # c(mean(err), median(err), quantile(err, 0.9), max(err))
    close(
        [cal.ici, cal.e50, cal.e90, cal.emax],
        [0.018422595067664534, 0.018179809365337973, 0.038072747419852282, 0.051904299605760484],
    )
    # c(mean(d$risk_f), 1 - summary(survfit(Surv(rfs_days, rfs_event) ~ 1, d), times = H)$surv)
    close([cal.mean_predicted, cal.observed_risk], [0.51565016237177486, 0.50835512970599472])
    # q <- cut(d$risk_f, quantile(d$risk_f, seq(0, 1, 0.2)), include.lowest = TRUE)
    # s <- summary(survfit(Surv(rfs_days, rfs_event) ~ 1, d, subset = q == levels(q)[k],
    #              conf.type = "log-log"), times = H)
    # c(k, n, 1 - s$surv, 1 - s$upper, 1 - s$lower, mean(d$risk_f[q == levels(q)[k]]))
    g = cal.to_frame()
    assert g["n"].tolist() == [138, 137, 137, 137, 137]
    close(g["observed"], [0.23153309262662025, 0.42988277973433842, 0.48405638636610959,
                          0.61485623946842149, 0.79446779199022755])  # fmt: skip
    close(g["ci_low"], [0.15909884609335911, 0.33590763117243605, 0.38999817526585689,
                        0.51540878510977794, 0.69886444408543369])  # fmt: skip
    close(g["ci_high"], [0.32985344993272114, 0.53761919280746584, 0.58768122551051305,
                         0.71539449220611406, 0.87577576581546079])  # fmt: skip
    close(g["mean_predicted"], [0.25318852213064236, 0.42562694707863385, 0.52546797710441040,
                                0.60814414407366824, 0.76773899986744043])  # fmt: skip


def test_risk_groups_against_survfit(dev):
    # gr <- findInterval(d$risk_f, c(0.3, 0.5, 0.7))
    # s <- summary(survfit(Surv(rfs_days, rfs_event) ~ gr, data = d, conf.type = "log"), times = H)
    # table(gr); 1 - s$surv; 1 - s$upper; 1 - s$lower; tapply(d$risk_f, gr, mean)
    # survdiff(Surv(rfs_days, rfs_event) ~ gr, data = d)$chisq
    plan, data, fits = dev
    res = risk_groups_at_horizon(
        data.time, data.status, predicted_risk(fits["Published factors"], data), horizon=H,
        cuts=plan.extra["risk_groups"], labels=plan.extra["risk_group_labels"],
    )  # fmt: skip
    t = res.to_frame()
    assert t["n"].tolist() == [89, 216, 283, 98]
    close(t["km_risk"], [0.22244890165910081, 0.38501772561787873, 0.58580490257190310,
                         0.83945249048870019])  # fmt: skip
    close(t["ci_low"], [0.10522120257745560, 0.30298551838276000, 0.50689200165188364,
                        0.70786804308587592])  # fmt: skip
    close(t["ci_high"], [0.32431824237154661, 0.45739549495917931, 0.65208923946036412,
                         0.91176760296081560])  # fmt: skip
    close(t["mean_predicted"], [0.21255660952643929, 0.41190203645710693, 0.59063678185874702,
                                0.80303493875942833])  # fmt: skip
    close(res.km.logrank.chisq, 125.93014847146284)


def test_decision_curve_against_survfit(dev):
    # nb <- function(r, pt, tau = H) { tr <- r >= pt; if (!any(tr)) return(0)
    #   s <- summary(survfit(Surv(rfs_days, rfs_event) ~ 1, data = d[tr, ]), times = tau,
    #                extend = TRUE)$surv
    #   mean(tr) * (1 - s) - mean(tr) * s * pt / (1 - pt) }
    # sapply(c(0.2, 0.4, 0.5, 0.6), function(p) nb(d$risk_f, p)); the same for d$risk_g
    # S <- summary(survfit(Surv(rfs_days, rfs_event) ~ 1, data = d), times = H)$surv
    # treat all: sapply(c(0.2, 0.4, 0.5, 0.6), function(pt) (1 - S) - S * pt / (1 - pt))
    _plan, data, fits = dev
    risks = {name: predicted_risk(f, data) for name, f in fits.items()}
    dc = net_benefit_survival(
        data.time, data.status, risks, horizon=H, thresholds=[0.2, 0.4, 0.5, 0.6]
    ).to_frame()
    by = {s: g["net_benefit"].to_numpy() for s, g in dc.groupby("strategy", sort=False)}
    close(by["Published factors"], [0.38690249521987208, 0.24647503947158644,
                                    0.16629491236582827, 0.10052818954754042])  # fmt: skip
    close(by["Nodes, grade and size"], [0.385443912132493405, 0.209605655107993061,
                                        0.113251860969210610, 0.087139642241340867])  # fmt: skip
    close(by["treat all"], [0.385443912132493405, 0.180591882843324503,
                            0.016710259411989448, -0.229112175735013079])  # fmt: skip


# --------------------------------------------------------------------------- flow, baseline, size


def test_flow_and_follow_up_against_survfit(loaded):
    # quantile(survfit(Surv(rfs_days, 1 - rfs_event) ~ 1, d), 0.5)$quantile: 1645
    # table(d$rfs_event); sum(d$rfs_event == 1 & d$rfs_days <= H): 285
    plan, cohort = loaded
    flow = flow_counts(cohort, plan).set_index(["stage", "group"])["detail"]
    counts = flow_counts(cohort, plan).set_index(["stage", "group"])["n"]
    assert counts[("screened", "")] == 686 and counts[("excluded", "")] == 0
    assert counts[("by_horizon", "recurrence or death")] == 285
    assert counts[("by_horizon", "followed beyond the horizon event-free")] == 121
    assert flow[("follow_up", "median (reverse Kaplan-Meier)")] == "1645"
    t = cohort.clinical["rfs_days"].to_numpy(float)
    assert kaplan_meier(t, 1 - cohort.clinical["rfs_event"].to_numpy(int)).median == 1645


def test_baseline_means_against_r(loaded):
    # d$grp <- ifelse(d$rfs_event == 1 & d$rfs_days <= H, "event", "none")
    # c(mean(d[[v]]), sd(d[[v]]), tapply(d[[v]], d$grp, mean), tapply(d[[v]], d$grp, sd))
    plan, cohort = loaded
    b = baseline(cohort, plan)
    assert set(b["by"]) == {"outcome"}
    ms = b[b["statistic"] == "mean_sd"].set_index(["variable", "group"])
    groups = [
        "Overall",
        "recurrence or death by 5 years",
        "no recurrence or death observed by 5 years",
    ]
    expected = {
        "age": (53.0524781341108, 10.1207390448223, 52.8666666666667, 10.8855980144159,
                53.1845386533666, 9.5517464554461),
        "pnodes": (5.01020408163265, 5.47548332318924, 6.57543859649123, 6.19109653481794,
                   3.89775561097257, 4.59804523141353),
        "progrec": (109.995626822157, 202.331551951627, 68.0701754385965, 120.21694879,
                    139.793017456359, 240.214330444964),
    }  # fmt: skip
    for var, (m, s, m1, s1, m0, s0) in expected.items():
        got = ms.loc[[(var, g) for g in groups]]
        close(got["value"], [m, m1, m0], rel=1e-12)
        close(got["value2"], [s, s1, s0], rel=1e-12)


def test_riley_criteria_against_the_pmsampsize_formulas(loaded):
    # p <- 9; rate <- 0.14; mfu <- 3; tp <- 5; R2N <- 0.15; S <- 0.9
    # n <- 1e6; E <- n * rate * mfu; lnLnull <- E * log(E / n) - E
    # maxR2 <- 1 - exp(2 * lnLnull / n); R2cs <- R2N * maxR2
    # n1 <- p / ((S - 1) * log(1 - R2cs / S))
    # S2 <- R2cs / (R2cs + 0.05 * maxR2); n2 <- p / ((S2 - 1) * log(1 - R2cs / S2))
    # r <- 1 - exp(-rate * tp); lu <- -log(1 - r - 0.05) / tp
    # n3 <- 1.96^2 * rate / (mfu * (lu - rate)^2)
    plan, _ = loaded
    ss = plan.sample_size
    r = riley_survival(
        parameters=ss.parameters, rate=ss.rate, timepoint=ss.timepoint,
        mean_follow_up=ss.mean_follow_up, r2_nagelkerke=ss.r2_nagelkerke, shrinkage=ss.shrinkage,
    )  # fmt: skip
    close([r.r2_cs, r.max_r2_cs], [0.11875264235572230, 0.79168428237148203])
    crit = r.to_frame().set_index("criterion")
    close(crit.loc[["i", "ii", "iii"], "n"],
          [636.02916760041807720, 208.84649157109194562, 397.94658137428206146])  # fmt: skip
    assert r.required == 637


# --------------------------------------------------------------------------- the study, run


@pytest.fixture(scope="module")
def bundle(study, tmp_path_factory) -> Path:
    """The example run as ``studyval run --plan`` does it, 20 bootstrap resamples, rendered."""
    from studyval.pipeline import run_protocol

    plan = study["plan"]
    text = plan.read_text(encoding="utf-8")
    assert "n_bootstrap: 200" in text
    plan.write_text(text.replace("n_bootstrap: 200", "n_bootstrap: 20"), encoding="utf-8")
    out = tmp_path_factory.mktemp("gbsg2-bundle") / "bundle"
    run_protocol(SLUG, clinical=study["clinical"], predictions=None, out=out, plan=plan)
    return out


def test_bundle_tables_are_the_checked_numbers(bundle, dev):
    _plan, _data, _fits = dev
    t = pd.read_csv(bundle / "tables" / "cox_coefficients.csv")
    close(t.loc[t["model"] == "Published factors", "coef"], [c for c, _ in FULL.values()])
    perf = pd.read_csv(bundle / "tables" / "performance.csv").set_index(["model", "measure"])
    close(perf.loc[("Published factors", "auc_horizon"), "estimate"], 0.75417458352135447)
    cal = pd.read_csv(bundle / "tables" / "calibration_summary.csv").iloc[0]
    close(cal["ici"], 0.018422595067664534)
    opt = pd.read_csv(bundle / "tables" / "optimism.csv")
    assert set(opt["n_resamples"]) == {20} and np.isfinite(opt["corrected"]).all()
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["data_origin"]["kind"] == "public"
    assert manifest["protocol"]["study_type"] == "prediction_model"
    for name in ("flow", "discrimination", "zph", "calibration_horizon", "km_risk_groups",
                 "decision_curve"):  # fmt: skip
        assert (bundle / "figures" / f"{name}.png").is_file(), name


def test_report_says_public_data_and_reads_as_a_pi_would(bundle):
    from studyval.origin import origin_record
    from studyval.reporting import origin_caption

    html = (bundle / "report" / "report.html").read_text(encoding="utf-8")
    assert problems(html, origin_note=origin_caption(origin_record("public"))) == []
    assert 'id="sec-data"' in html and "public example data" in html
    assert "lifelines" in html and "MIT licence" in html and "GPL-3" in html
    assert html.index('id="sec-summary"') < html.index('id="sec-registration"')
    # plan facts come from the bundle's plan: the horizon label and the model names
    assert "5 years" in html and "Nodes, grade and size" in html


def test_a_generic_type_bundle_verifies_and_draws_its_figures(bundle, study, tmp_path):
    """``verify`` and ``figures`` know a study of a generic type from its manifest (no shipped
    protocol of that slug): the recomputation uses the bundle's plan, dictionary and report."""
    from studyval.manuscript import write_manuscript_figures
    from studyval.verify import verify_bundle

    report = verify_bundle(bundle, clinical=study["clinical"], predictions=None)
    assert report.ok, report
    # one width, format and resolution: the subject is that figures find a generic type's
    # specs; every width, format and resolution is test_manuscript's
    written = write_manuscript_figures(
        bundle, tmp_path / "figures", slug=SLUG, widths=("column",), formats=("png",), dpi=(300,)
    )
    assert (tmp_path / "figures" / "captions.md").is_file()
    assert written
