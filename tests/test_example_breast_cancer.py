"""Worked diagnostic-accuracy study on the Wisconsin Diagnostic Breast Cancer data, checked against R.

The example's inputs (``studyval example breast-cancer-diagnostic``) were written to CSV and
analysed in R 4.2 on the same rows (the internal test set: 190 cases, 71 malignant); the R
calls and their printed values are pasted beside each expected constant. The tests compute
the same numbers with studyval's analysis functions on the example's written inputs (no R at
test time) and compare to 1e-6 relative. One bundle is built (resamples trimmed) and its
report rendered and read; the bundle's tables must hold the numbers checked here.

Bootstrap-based numbers (the BCa intervals of the E-statistics and of the scaled Brier score,
the percentile intervals of the net-benefit differences) are covered by the algorithm oracles
of those functions: ``tests/test_calibration.py::test_bootstrap_intervals`` and
``tests/test_decision_curve.py``; their point estimates are checked here.

R data preparation (Python, then R)::

    d = clinical.join(predictions wide by case_id); y = diagnosis == "malignant"
    d[[y, lr3 (logistic-3), ridge30 (ridge-30), split, mean_texture, worst_*]].to_csv(...)
    t <- d[d$split == "internal", ];  dev <- d[d$split == "development", ]
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studyval.analysis import accuracy, calibration, decision_curve, discrimination, sample_size
from studyval.errors import StatisticalWarning
from studyval.examples import breast_cancer as bc
from studyval.examples import write_example
from studyval.plan import load_plan
from studyval.study_cohort import derive_variables

sys.path.insert(0, str(Path(__file__).parent))
from report_reader import problems

REL = 1e-6
POS = "malignant"
N_RESAMPLES = 20


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> dict[str, Path]:
    """The example's study folder (plan, dictionary, data, origin marker)."""
    return write_example(bc.SLUG, tmp_path_factory.mktemp("wdbc") / "study")


@pytest.fixture(scope="module")
def cases(example) -> pd.DataFrame:
    """One row per case with both models' scores, as R read it."""
    clinical = pd.read_csv(example["clinical"])
    preds = pd.read_csv(example["predictions"])
    wide = preds.pivot(index="case_id", columns="model_name", values="score")
    split = preds.drop_duplicates("case_id").set_index("case_id")["split"]
    out = clinical.set_index("case_id").join(wide).join(split)
    out["y"] = np.where(out["diagnosis"] == POS, POS, "benign")
    return out


@pytest.fixture(scope="module")
def test_set(cases) -> pd.DataFrame:
    return cases[cases["split"] == "internal"]


# --------------------------------------------------------------------------- the data and the models


def test_malignant_is_sklearn_target_0_recoded_explicitly(cases):
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    assert list(data.target_names) == ["malignant", "benign"]
    assert (cases["diagnosis"].to_numpy() == np.where(data.target == 0, "malignant", "benign")).all()
    assert (cases["diagnosis"] == "malignant").sum() == 212


def test_split_is_stratified_one_third_and_documented_in_the_plan(cases, example):
    counts = pd.crosstab(cases["split"], cases["diagnosis"])
    assert counts.loc["internal"].to_dict() == {"benign": 119, "malignant": 71}
    assert counts.loc["development"].to_dict() == {"benign": 238, "malignant": 141}
    plan = load_plan(example["plan"])
    assert "numpy.random.default_rng(20261207)" in plan.index_test
    assert bc.SPLIT_SEED == 20261207
    assert (plan.sample_size.registered_positives, plan.sample_size.registered_negatives) == (71, 119)


def test_inputs_are_byte_identical_on_every_write(tmp_path, example):
    again = bc.write_inputs(tmp_path)
    for key in ("clinical", "predictions"):
        assert again[key].read_bytes() == example[key].read_bytes()


def test_model_version_is_the_sha256_of_the_fitted_coefficients(example, cases):
    preds = pd.read_csv(example["predictions"])
    dev = cases[cases["split"] == "development"].reset_index()
    features = tuple(str(c) for c in pd.read_csv(example["clinical"]).columns[5:])
    models = bc.fit_models(dev, features)
    for name, model in models.items():
        versions = set(preds.loc[preds["model_name"] == name, "model_version"])
        digest = hashlib.sha256(model.serialised().encode()).hexdigest()
        assert versions == {f"sha256:{digest}"}
    assert set(preds["split"]) == {"development", "internal"}  # development rows too (the flow)
    assert set(preds["positive_class"]) == {POS}
    assert preds["score"].between(0, 1, inclusive="neither").all()  # calibration needs (0, 1)


def test_primary_model_fit_against_glm(cases):
    # f <- glm(y ~ worst_radius + worst_concave_points + worst_texture, family = binomial,
    #          data = dev, control = glm.control(epsilon = 1e-14, maxit = 100)); coef(f)
    # -29.45635364526231115 1.00260443669089683 50.80788209868460825 0.23748896945289114
    dev = cases[cases["split"] == "development"].reset_index()
    m = bc.fit_models(dev, bc.PRIMARY_FEATURES)[bc.MODELS["primary"]]
    got = [m.intercept, *m.coef]
    want = [-29.45635364526231115, 1.00260443669089683, 50.80788209868460825, 0.23748896945289114]
    assert got == pytest.approx(want, rel=REL)


# --------------------------------------------------------------------------- discrimination


@pytest.mark.parametrize(
    ("model", "want"),
    [
        # r <- roc(t$y, t$lr3, levels = c(0, 1), direction = "<"); auc(r); ci.auc(r, method = "delong")
        # 0.9975144987572494; [0.99426308772244554, 0.9975144987572494, 1]; var(r) 2.7519945444408618e-06
        pytest.param(
            "logistic-3", (0.9975144987572494, 0.99426308772244554, 1.0, 2.7519945444408618e-06), id="logistic-3"
        ),
        # same for t$ridge30: 0.99538406912060595; [0.98937595882144491, ., 1]; var 9.3967919615398178e-06
        pytest.param(
            "ridge-30", (0.99538406912060595, 0.98937595882144491, 1.0, 9.3967919615398178e-06), id="ridge-30"
        ),
    ],
)
def test_auc_and_delong_ci_against_pROC(test_set, model, want):
    a = discrimination.auc(test_set["y"].to_numpy(), test_set[model].to_numpy(), positive=POS)
    assert (a.estimate, a.ci_low, a.ci_high, a.se**2) == pytest.approx(want, rel=REL)
    assert (a.n_positive, a.n_negative) == (71, 119)


def test_paired_delong_comparison_against_pROC_roc_test(test_set):
    # rt <- roc.test(r1, r2, method = "delong", paired = TRUE)
    # Z 0.94408267529152745, p 0.34512740173813911, conf.int -0.0022924513977199048 0.0065533106710068036
    c = discrimination.compare_auc(
        test_set["y"].to_numpy(), test_set["logistic-3"].to_numpy(), test_set["ridge-30"].to_numpy(),
        positive=POS, names=("logistic-3", "ridge-30"),
    )
    assert (c.z, c.p_value, c.ci_low, c.ci_high) == pytest.approx(
        (0.94408267529152745, 0.34512740173813911, -0.0022924513977199048, 0.0065533106710068036), rel=REL
    )


# --------------------------------------------------------------------------- accuracy at 0.5

# prop.test(k, n, correct = FALSE)$conf.int (Wilson score interval), counts from t[[m]] >= 0.5
WILSON = {
    "logistic-3": {  # tp fp fn tn 67 2 4 117
        "sensitivity": (67, 71, 0.86390394200023057, 0.97787548069830332),
        "specificity": (117, 119, 0.9407871987437626, 0.99537882455184201),
        "ppv": (67, 69, 0.90033416236934449, 0.99201479730763586),
        "npv": (117, 121, 0.91807720727788522, 0.98707081860587464),
        "accuracy": (184, 190, 0.93282789348053363, 0.98544831576246594),
    },
    "ridge-30": {  # tp fp fn tn 63 0 8 119
        "sensitivity": (63, 71, 0.79309951489188701, 0.94178728270207124),
        "specificity": (119, 119, 0.96872831975806062, 1.0),
        "ppv": (63, 63, 0.94252880041114828, 1.0),
        "npv": (119, 127, 0.88061664411012608, 0.96773831157800216),
        "accuracy": (182, 190, 0.91912809888156188, 0.97851268992901064),
    },
}


@pytest.mark.parametrize("model", list(WILSON))
def test_accuracy_at_the_prespecified_threshold_against_prop_test(test_set, model):
    r = accuracy.diagnostic_accuracy(
        test_set["y"].to_numpy(), test_set[model].to_numpy(), positive=POS, threshold=0.5,
        threshold_status="pre-specified", ci_method="wilson",
    )
    for measure, (k, n, lo, hi) in WILSON[model].items():
        m = r.measure(measure)
        assert (m.numerator, m.denominator) == (k, n)
        assert (m.estimate, m.ci_low, m.ci_high) == pytest.approx((k / n, lo, hi), rel=REL)


def test_likelihood_ratios_against_epiR(test_set):
    # epi.tests(as.table(matrix(c(67, 4, 2, 117), nrow = 2)))$detail, rows lr.pos and lr.neg
    # (log method, Simel 1991; equal to the hand-coded exp(log(LR) +/- z * se) in R):
    # lr.pos 56.147887323943486 14.190972954921905 222.15427095496176
    # lr.neg 0.057301071385578467 0.022110504941825329 0.14850012654953404
    r = accuracy.diagnostic_accuracy(
        test_set["y"].to_numpy(), test_set["logistic-3"].to_numpy(), positive=POS, threshold=0.5,
        threshold_status="pre-specified",
    )
    for measure, want in (
        ("lr_positive", (56.147887323943486, 14.190972954921905, 222.15427095496176)),
        ("lr_negative", (0.057301071385578467, 0.022110504941825329, 0.14850012654953404)),
    ):
        m = r.measure(measure)
        assert (m.estimate, m.ci_low, m.ci_high) == pytest.approx(want, rel=REL)


# --------------------------------------------------------------------------- calibration

CALIBRATION = {
    # a <- glm(y ~ offset(qlogis(p)), binomial); b <- glm(y ~ qlogis(p), binomial);
    # coef + confint.default; brier mean((p - y)^2); val.prob(p, y, pl = FALSE)[c("Emax","E90","Eavg","S:z","S:p")];
    # E50: Sm <- lowess(p, y, iter = 0); median(abs(p - approx(Sm, xout = p, ties = mean)$y))
    "logistic-3": {
        "intercept_in_large": (0.17279141556523545, -0.67134683372971549, 1.0169296648601864),
        "slope": (1.4907464048373436, 0.62677160089399753, 2.3547212087806897),
        "brier": (0.020834301544942056,),
        "emax": (0.071086262070079842,),
        "e90": (0.018531149666323604,),
        "eavg": (0.011392736330335914,),
        "e50": (0.0071128436263128295,),
        "spiegelhalter_z": (-0.955086867219601565,),
        "spiegelhalter_p": (0.339533769686376330,),
    },
    "ridge-30": {
        "intercept_in_large": (0.13010317633497132, -0.54566829704572983, 0.80587464971567235),
        "slope": (2.0599308156321872, 0.97350276732129082, 3.1463588639430835),
        "brier": (0.025864307750470737,),
        "emax": (0.210484137763407630,),
        "e90": (0.0607123959076767,),
        "eavg": (0.029646803637434986,),
        "e50": (0.020250496417716979,),
        "spiegelhalter_z": (-1.631435420360049848,),
        "spiegelhalter_p": (0.102798476109342299,),
    },
}


@pytest.mark.parametrize("model", list(CALIBRATION))
def test_calibration_against_glm_and_val_prob(test_set, model):
    res = calibration.calibration(
        test_set["y"].to_numpy(), test_set[model].to_numpy(), positive=POS, n_resamples=0, seed=1
    )
    frame = res.to_frame().set_index("measure")
    for measure, want in CALIBRATION[model].items():
        row = frame.loc[measure]
        got = (row["estimate"], row["ci_low"], row["ci_high"])[: len(want)]
        assert got == pytest.approx(want, rel=REL), measure


# --------------------------------------------------------------------------- net benefit, sample size

# nb <- function(s, y, pt) { n <- length(y); tp <- sum(s >= pt & y == 1); fp <- sum(s >= pt & y == 0)
#                            tp / n - fp / n * pt / (1 - pt) }
# treat all: mean(y) - (1 - mean(y)) * pt / (1 - pt)
NET_BENEFIT = {
    0.05: (0.36925207756232686, 0.36426592797783935, 0.34072022160664822),
    0.10: (0.36257309941520466, 0.36257309941520466, 0.30409356725146197),
    0.20: (0.35921052631578948, 0.35394736842105268, 0.21710526315789477),
    0.30: (0.3571428571428571, 0.35112781954887218, 0.10526315789473684),
    0.50: (0.34210526315789475, 0.33157894736842103, -0.25263157894736837),
}


def test_net_benefit_against_hand_coded_R(test_set):
    grid = np.array(sorted(NET_BENEFIT))
    nb = decision_curve.net_benefit(
        test_set["y"].to_numpy(),
        {m: test_set[m].to_numpy() for m in ("logistic-3", "ridge-30")},
        positive=POS,
        thresholds=grid,
    ).to_frame()
    for pt, want in NET_BENEFIT.items():
        at = nb[np.isclose(nb["threshold"], pt)].set_index("model")["net_benefit"]
        assert (at["logistic-3"], at["ridge-30"], at["treat all"]) == pytest.approx(want, rel=REL)
        assert at["treat none"] == 0


def test_buderer_against_R():
    # z <- qnorm(0.975); z^2 * 0.9 * 0.1 / 0.075^2  -> 61.463341131105985
    b = sample_size.buderer(sensitivity=0.9, precision=0.075, alpha=0.05)
    assert b.n == pytest.approx(61.463341131105985, rel=REL)
    assert b.required == 62


# --------------------------------------------------------------------------- exploratory subgroups

# t$band <- cut(t$mean_texture, c(-Inf, 17, 21, Inf), right = FALSE, labels = c("<17", "17 to <21", ">=21"))
# per band: roc(...); ci.auc(r, method = "delong"); prop.test(k, n, correct = FALSE)$conf.int
BANDS = {
    "<17": dict(n=57, pos=4, auc=(0.99056603773584906, 0.96921536350799675, 1.0),
                sens=(3, 4, 0.30064184258240201, 0.95441273919029945),
                spec=(52, 53, 0.90057087947498771, 0.99666154661173634)),
    "17 to <21": dict(n=80, pos=29, auc=(1.0, 1.0, 1.0),
                      sens=(29, 29, 0.88303020150025935, 1.0),
                      spec=(50, 51, 0.8969543127385502, 0.9965303073589391)),
    ">=21": dict(n=53, pos=38, auc=(0.99473684210526314, 0.98290616970600297, 1.0),
                 sens=(35, 38, 0.79200628542228546, 0.97278540449301221),
                 spec=(15, 15, 0.79611669896415138, 1.0)),
}


def test_texture_bands_and_their_accuracy_against_R(test_set, example):
    plan = load_plan(example["plan"])
    banded = derive_variables(test_set, plan.cohort)
    for level, want in BANDS.items():
        sub = banded[banded["texture_band"] == level]
        assert (len(sub), int((sub["y"] == POS).sum())) == (want["n"], want["pos"])
        y, s = sub["y"].to_numpy(), sub["logistic-3"].to_numpy()
        if want["auc"][0] == 1.0:
            with pytest.warns(StatisticalWarning, match="standard error is zero"):
                a = discrimination.auc(y, s, positive=POS)
        else:
            a = discrimination.auc(y, s, positive=POS)
        assert (a.estimate, a.ci_low, a.ci_high) == pytest.approx(want["auc"], rel=REL)
        r = accuracy.diagnostic_accuracy(y, s, positive=POS, threshold=0.5, threshold_status="pre-specified")
        for measure, key in (("sensitivity", "sens"), ("specificity", "spec")):
            k, n, lo, hi = want[key]
            m = r.measure(measure)
            assert (m.numerator, m.denominator) == (k, n)
            assert (m.ci_low, m.ci_high) == pytest.approx((lo, hi), rel=REL)


# --------------------------------------------------------------------------- the bundle and its report


@pytest.fixture(scope="module")
def bundle(example, tmp_path_factory) -> Path:
    """The example run as `studyval demo` runs it, resamples trimmed, report rendered."""
    from studyval.pipeline import run_protocol

    plan = example["plan"]
    plan.write_text(
        plan.read_text(encoding="utf-8").replace("n_resamples: 1000", f"n_resamples: {N_RESAMPLES}"),
        encoding="utf-8",
    )
    out = tmp_path_factory.mktemp("wdbc_bundle") / "bundle"
    run_protocol(bc.SLUG, clinical=example["clinical"], predictions=example["predictions"],
                 out=out, plan=plan, render=True, engine="jupyter")
    return out


def test_bundle_tables_hold_the_numbers_checked_against_R(bundle):
    tables = bundle / "tables"
    auc = pd.read_csv(tables / "auc.csv").set_index("model")
    assert auc.loc["logistic-3", "estimate"] == pytest.approx(0.9975144987572494, rel=REL)
    assert auc.loc["ridge-30", "ci_low"] == pytest.approx(0.98937595882144491, rel=REL)
    cmp_ = pd.read_csv(tables / "compare_paired.csv").iloc[0]
    assert cmp_["p_value"] == pytest.approx(0.34512740173813911, rel=REL)
    acc = pd.read_csv(tables / "accuracy.csv")
    sens = acc[(acc["model"] == "logistic-3") & (acc["measure"] == "sensitivity")].iloc[0]
    assert (sens["ci_low"], sens["ci_high"]) == pytest.approx((0.86390394200023057, 0.97787548069830332), rel=REL)
    cal = pd.read_csv(tables / "calibration.csv")
    slope = cal[(cal["model"] == "ridge-30") & (cal["measure"] == "slope")].iloc[0]
    assert slope["estimate"] == pytest.approx(2.0599308156321872, rel=REL)
    flow = pd.read_csv(tables / "flow.csv", keep_default_na=False)
    assert flow.loc[flow["stage"] == "split"].set_index("set")["n_patients"].to_dict() == {
        "development": 379, "internal": 190, "external": 0}
    ss = pd.read_csv(tables / "sample_size.csv")
    assert ss.loc[0, "required_unrounded"] == pytest.approx(61.463341131105985, rel=REL)


def test_report_says_public_data_with_source_and_licence_and_reads_as_a_pi_would(bundle):
    from studyval.origin import origin_record
    from studyval.reporting import origin_caption

    html = (bundle / "report" / "report.html").read_text(encoding="utf-8")
    assert problems(html, origin_note=origin_caption(origin_record("public"))) == []
    assert "These are public example data" in html
    for fact in ("CC BY 4.0", "archive.ics.uci.edu/dataset/17", "sklearn.datasets.load_breast_cancer", "UW-Madison"):
        assert fact in html
    assert "Not registered (worked example)" in html  # plan facts from the bundle's plan


def test_bundle_heterogeneity_scaled_brier_and_net_benefit_differences_against_R(bundle):
    """The remaining numbers the report shows, read from the bundle the report reads."""
    tables = bundle / "tables"
    het = pd.read_csv(tables / "subgroup_heterogeneity.csv").set_index("measure")
    # pos <- t[t$y == 1, ]; chisq.test(table(pos$band, pos$lr3 >= 0.5), correct = FALSE)
    #   X-squared 4.9185487038491749, df 2, p 0.085496969174038415
    # neg <- t[t$y == 0, ]; chisq.test(table(neg$band, neg$lr3 < 0.5), correct = FALSE)
    #   X-squared 0.29425361500833203, df 2, p 0.86318451220233361
    # Cochran's Q of the DeLong AUCs of bands <17 and >=21 (w <- 1 / var(r, method = "delong");
    #   the AUC-1 band has variance 0 and is left out, as the table's note says):
    #   Q 0.11215627781653617, p pchisq(Q, 1, lower.tail = FALSE) 0.7377024730057975
    for measure, want in (
        ("sensitivity", (4.9185487038491749, 2, 0.085496969174038415)),
        ("specificity", (0.29425361500833203, 2, 0.86318451220233361)),
        ("auc", (0.11215627781653617, 1, 0.7377024730057975)),
    ):
        row = het.loc[measure]
        assert (row["statistic"], row["df"], row["p_value"]) == pytest.approx(want, rel=REL)
    cal = pd.read_csv(tables / "calibration.csv")
    scaled = cal[cal["measure"] == "scaled_brier"].set_index("model")["estimate"]
    # p <- mean(t$y); 1 - mean((t[[m]] - t$y)^2) / (p * (1 - p))
    assert scaled["logistic-3"] == pytest.approx(0.91098138409605767, rel=REL)
    assert scaled["ridge-30"] == pytest.approx(0.88948970176446995, rel=REL)
    diff = pd.read_csv(tables / "decision_curve_difference.csv")
    for pt, (a, b, _) in NET_BENEFIT.items():
        row = diff[np.isclose(diff["threshold"], pt)].iloc[0]
        assert row["difference"] == pytest.approx(a - b, rel=REL, abs=1e-12)
