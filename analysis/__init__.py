"""Validation statistics: pure functions returning frozen result objects.

Imported as ``studyval.analysis``. Modules:

* :mod:`~studyval.analysis.discrimination` -- AUC with DeLong CIs, paired,
  unpaired and k-model comparisons, ROC coordinates.
* :mod:`~studyval.analysis.accuracy` -- 2x2 tables, sensitivity, specificity,
  PPV, NPV, accuracy, likelihood ratios with named CI methods.
* :mod:`~studyval.analysis.proportions` -- binomial confidence intervals.
* :mod:`~studyval.analysis.thresholds` -- pre-specified and exploratory cut-offs.
* :mod:`~studyval.analysis.sample_size` -- Buderer, Obuchowski / Hanley-McNeil,
  and checks of registered numbers.
* :mod:`~studyval.analysis.resampling` -- one vectorised, seeded bootstrap engine
  that resamples patients (clusters), percentile and BCa intervals.
* :mod:`~studyval.analysis.clustered` -- vertebra-level AUC and paired
  comparison with patient-clustered DeLong variance (Obuchowski 1997).
* :mod:`~studyval.analysis.calibration` -- calibration of external predicted
  probabilities (as rms::val.prob, with CIs) and flexible curves.
* :mod:`~studyval.analysis.decision_curve` -- net benefit, and differences
  between models with bootstrap CIs.
* :mod:`~studyval.analysis.subgroups` -- subgroup estimates with heterogeneity tests.
* :mod:`~studyval.analysis.multiclass` -- one-vs-rest AUCs, macro AUC, Hand & Till's M,
  multi-class confusion matrices.
* :mod:`~studyval.analysis.kappa` -- Cohen's kappa, unweighted and weighted.
* :mod:`~studyval.analysis.icc` -- intraclass correlations (as psych::ICC).
* :mod:`~studyval.analysis.bland_altman` -- Bland-Altman bias and limits of agreement.
* :mod:`~studyval.analysis.agreement` -- the three above under one name (a facade).
* :mod:`~studyval.analysis.segmentation` -- Dice, IoU, HD95 per case, summarised per patient.
* :mod:`~studyval.analysis.descriptive` -- baseline tables.
* :mod:`~studyval.analysis.kaplan_meier` -- Kaplan-Meier curves, log-rank tests.
* :mod:`~studyval.analysis.concordance` -- Harrell's and Uno's C.
* :mod:`~studyval.analysis.cox` -- Cox regression (Efron/Breslow ties, strata) and its predictions.
* :mod:`~studyval.analysis.cox_zph` -- proportional-hazards tests (as survival::cox.zph).
* :mod:`~studyval.analysis.survival` -- the four above under one name (a facade).
* :mod:`~studyval.analysis.survival_validation` -- time-dependent AUC, Brier and
  calibration at a horizon (IPCW, influence-function SEs as riskRegression::Score).
* :mod:`~studyval.analysis.internal_validation` -- Harrell's bootstrap optimism
  correction of a refitted model's performance (Cox ready-made; as rms::validate).
* :mod:`~studyval.analysis.cox_shrinkage` -- a Cox model uniformly shrunk (e.g. by the
  optimism-corrected calibration slope) with its baseline hazard re-estimated.
* :mod:`~studyval.analysis.cox_linearity` -- restricted cubic spline (rms::rcs) check of the
  linearity of each continuous Cox predictor, likelihood-ratio test of the nonlinear terms.
* :mod:`~studyval.analysis.paired_bootstrap` -- bootstrap difference in a performance
  measure between two models on the same cases (e.g. Harrell's C).
* :mod:`~studyval.analysis.cumulative_incidence` -- Aalen-Johansen cumulative
  incidence and Gray's test (as cmprsk::cuminc).
* :mod:`~studyval.analysis.fine_gray` -- Fine-Gray regression (as cmprsk::crr).
* :mod:`~studyval.analysis.cause_specific_cox` -- cause-specific Cox models and the
  cumulative incidence they predict (as riskRegression::CSC / predictRisk).
* :mod:`~studyval.analysis.competing_risks_brier` -- the competing-risks Brier score,
  null model and IPA (as riskRegression::Score).
* :mod:`~studyval.analysis.competing_risks` -- the four above under one name (a facade).
* :mod:`~studyval.analysis.sample_size_survival` -- Riley et al. criteria for
  time-to-event prediction models, Schoenfeld's required events.
* :mod:`~studyval.analysis.sample_size_multinomial` -- Pate et al. (2023) minimum sample size to
  develop a multinomial (K-class) prediction model (pairwise shrinkage, Nagelkerke optimism,
  precision of each class's risk); pmsampsize's binary criteria when K = 2.
* :mod:`~studyval.analysis.sample_size_validation` -- Riley et al. (2021) minimum sample size
  for external validation with a binary outcome (O/E, calibration slope, C-statistic; as
  pmvalsampsize type "b"), and the patients whose status at a horizon is known.
* :mod:`~studyval.analysis.calibration_multinomial` -- flexible multinomial recalibration
  (Van Hoorde et al. 2014, 2015): natural splines of the predicted log-ratios, calibrated
  probability and lowess curve per class (as VGAM::vglm).
* :mod:`~studyval.analysis.competing_risks_calibration` -- grouped calibration of a
  predicted cumulative incidence at a horizon.
* :mod:`~studyval.analysis.decision_curve_survival` -- net benefit at a horizon for a
  censored outcome.
* :mod:`~studyval.analysis.binomial_tests` -- one proportion against a baseline, two
  independent proportions, historical and concurrent comparisons, clustered differences.
* :mod:`~studyval.analysis.paired` -- McNemar's test and paired differences of proportions.
* :mod:`~studyval.analysis.multiplicity` -- adjusted p-values for a declared family.
* :mod:`~studyval.analysis.sample_size_binomial` -- exact power of tests of proportions.
* :mod:`~studyval.analysis.standardised_comparison` -- covariate-adjusted odds ratio and
  standardised (g-computation) risk difference between two groups.
* :mod:`~studyval.analysis.monitoring` -- p-charts, CUSUMs, run lengths and the false-alarm
  rate of a set of charts.
* :mod:`~studyval.analysis.fusion` -- multimodal classifiers with nested, patient-grouped CV.
* :mod:`~studyval.analysis.shapley` -- modality-level Shapley attributions.
* :mod:`~studyval.analysis.shap_shares` -- modality shares of the mean |SHAP| with a
  (patient-)bootstrap interval.
* :mod:`~studyval.analysis.ordinal_discrimination` -- cumulative AUCs of an ordinal outcome
  and Harrell's c and Van Calster's ORC of one ordinal score (as pROC, Hmisc::rcorr.cens).
* :mod:`~studyval.analysis.mixed_models` -- linear mixed models with a random intercept.
* :mod:`~studyval.analysis.random_slope` -- random intercept and slope, and its
  boundary-corrected likelihood-ratio test (as lme4::lmer).
* :mod:`~studyval.analysis.delta_adjustment` -- delta-adjusted (MNAR) sensitivity analysis of
  a mixed-model contrast, with its tipping point.
* :mod:`~studyval.analysis.mmrm` -- mixed model for repeated measures (visit factor, group x
  visit, unstructured covariance, REML; as nlme::gls with corSymm + varIdent).

Conventions: a higher score always means *more likely positive*; for survival a
higher risk always means *worse* (earlier event); the positive class is always
an explicit argument; nothing is dropped silently.
"""
