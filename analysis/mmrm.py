r"""Mixed model for repeated measures (MMRM): visit as a factor, unstructured covariance, REML.

For patient :math:`i` with scores :math:`y_i` at the visits :math:`S_i` it
attended (a subset of the planned visits :math:`1, \dots, K`),

.. math::

    y_{ij} = \mu_{v_j} + \gamma\,g_i + \tau_{v_j} g_i + e_{ij}, \qquad
    e_i \sim N(0, \Sigma_{S_i S_i}),

with the visit :math:`v` a categorical factor (first visit the reference,
:math:`\tau_{v_1} = 0`), the group :math:`g_i \in \{0, 1\}` (the comparison
level against the reference level) and :math:`\Sigma` an **unstructured**
:math:`K \times K` within-patient covariance (its own variance at each visit
and its own correlation for each pair of visits). This is the model of
``nlme::gls(y ~ group * visit, correlation = corSymm(form = ~ visit_index | id),
weights = varIdent(form = ~ 1 | visit), method = "REML")`` and of
``mmrm::mmrm(y ~ group * visit + us(visit | id))`` (Mallinckrodt et al. 2008,
doi:10.1177/009286150804200402; the primary analysis of longitudinal
randomised trials: Mallinckrodt, Clark & David 2001,
doi:10.1081/BIP-100104200).

:math:`\Sigma` is estimated by restricted maximum likelihood (REML; Patterson
& Thompson 1971, doi:10.1093/biomet/58.3.545),

.. math::

    -2\ell_R(\Sigma) = \sum_i \log|\Sigma_{S_i}| + \log\Bigl|\sum_i X_i^\top
    \Sigma_{S_i}^{-1} X_i\Bigr| + \sum_i r_i^\top \Sigma_{S_i}^{-1} r_i
    + (N - p)\log 2\pi,

:math:`r_i = y_i - X_i\hat\beta(\Sigma)` with the GLS estimate
:math:`\hat\beta(\Sigma)` (the value of nlme's ``logLik(fit)``, REML, which
leaves out Harville's :math:`+\log|X^\top X|`, a constant of the design).
:math:`\Sigma = LL^\top` is parametrised by its Cholesky factor (log
diagonal), so every iterate is positive definite; the criterion is minimised
by BFGS with its analytic gradient

.. math::

    \frac{\partial(-2\ell_R)}{\partial\Sigma_{S}} = \sum_{i: S_i = S} \Sigma_S^{-1}
    - \Sigma_S^{-1}(X_i C X_i^\top + r_i r_i^\top)\Sigma_S^{-1}, \qquad
    C = \Bigl(\sum_i X_i^\top \Sigma_{S_i}^{-1}X_i\Bigr)^{-1},

then polished by Newton steps.

Every available visit is used (no imputation, no last observation carried
forward): the likelihood is valid when visits are **missing at random**
given the observed scores and the group.

Inference and degrees of freedom
--------------------------------
The fixed effects' covariance is :math:`C` at the REML estimate
(``vcov(fit)``). The per-visit group contrast is
:math:`\hat\theta_v = \hat\gamma + \hat\tau_v` (comparison minus reference at
visit :math:`v`), :math:`\mathrm{SE} = \sqrt{L_v^\top C L_v}`, with a
:math:`t` distribution on the **residual degrees of freedom** :math:`N - p`
(observations minus fixed effects), as ``summary(gls_fit)`` and
``intervals(gls_fit)`` of nlme compute them. Kenward-Roger and Satterthwaite
degrees of freedom (``mmrm``'s default) are **not** used: the ``mmrm`` R
package is not available to check them against. With hundreds of patients
per group all of these df are large and the t intervals nearly normal; with
few patients the residual df is anti-conservative (it ignores that
:math:`\Sigma` is estimated).

:math:`N - p` counts **observations** (visits), as if they were independent:
the oracle's 40 patients with 131 visits get 123 df. A conservative
patient-level df, :math:`n_\text{patients} - 2`, widens the intervals by the
ratio of the two :math:`t` quantiles; with about 1,900 patients both df are in
the thousands and the difference is negligible (a caller who wants it can
rebuild the interval from ``estimate`` and ``se``). The group is whatever
the caller compares; where it is not randomised (e.g. a predicted diagnosis)
the contrasts and p-values describe an observational comparison, not a
causal effect.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from studyval.analysis._checks import check_alpha
from studyval.errors import EstimationError, StudyvalError
from studyval.results import Result

__all__ = ["DF_METHOD", "MMRMResult", "mmrm"]

#: The degrees of freedom of every t statistic (see the module docstring).
DF_METHOD = "residual (N - p, as nlme::gls)"

#: The fitted covariance is "not positive definite" when its smallest eigenvalue is at most this
#: fraction of its largest (the REML optimum on the boundary of the parameter space).
PD_TOLERANCE = 1e-10

#: Newton polishing stops when the largest step in the Cholesky parameters is below this.
_STEP_TOLERANCE = 1e-10

#: The fit is "converged" when the largest gradient component of -2 l_R (Cholesky
#: parameters) is below this.
GRADIENT_TOLERANCE = 1e-6


@dataclasses.dataclass(frozen=True, eq=False)
class MMRMResult(Result):
    r"""REML fit of a mixed model for repeated measures (unstructured covariance).

    Attributes
    ----------
    contrasts : pandas.DataFrame
        One row per visit: ``visit, estimate, se, df, t, ci_low, ci_high,
        p_value, n_reference, n_comparison`` (comparison minus reference
        group at that visit; the counts are the patients observed at the
        visit); also :meth:`to_frame`.
    fixed : pandas.DataFrame
        ``term, estimate, se, df, t, ci_low, ci_high, p_value``, in the order
        of ``nlme::gls(y ~ group * visit)``: intercept, group, the visits
        after the first, the group-by-visit interactions.
    covariance : numpy.ndarray, shape (K, K)
        :math:`\hat\Sigma` (visits in the order of :attr:`visits`).
    cov_fixed : numpy.ndarray, shape (p, p)
        ``vcov(fit)``.
    visits : tuple of float
        The planned visits, in order (the first is the reference).
    levels : tuple
        ``(reference, comparison)`` group levels.
    reml_loglik : float
        ``logLik(fit)`` of nlme (REML).
    n_obs, n_patients, n_params : int
        Observations (patient visits), patients, fixed effects :math:`p`.
    df : int
        :math:`N - p`.
    df_method : str
    ci_level : float
    iterations : int
        BFGS iterations plus Newton steps.
    """

    contrasts: pd.DataFrame = dataclasses.field(repr=False)
    fixed: pd.DataFrame = dataclasses.field(repr=False)
    covariance: np.ndarray = dataclasses.field(repr=False)
    cov_fixed: np.ndarray = dataclasses.field(repr=False)
    visits: tuple[float, ...]
    levels: tuple[Any, Any]
    reml_loglik: float
    n_obs: int
    n_patients: int
    n_params: int
    df: int
    df_method: str
    ci_level: float
    iterations: int
    method: str = "MMRM: visit factor, group x visit, unstructured covariance, REML"

    @property
    def correlation(self) -> np.ndarray:
        r""":math:`\hat\Sigma` as a correlation matrix."""
        sd = np.sqrt(np.diag(self.covariance))
        corr = self.covariance / np.outer(sd, sd)
        np.fill_diagonal(corr, 1.0)
        return corr

    def to_frame(self) -> pd.DataFrame:
        r"""The per-visit group contrasts (a copy), with ``sd_visit`` and ``ci_level``.

        ``sd_visit`` is :math:`\hat\Sigma_{vv}^{1/2}`, the estimated SD of the score at the visit.
        """
        out = self.contrasts.copy()
        out["sd_visit"] = np.sqrt(np.diag(self.covariance))
        out["ci_level"] = self.ci_level
        return out

    def covariance_frame(self) -> pd.DataFrame:
        r"""Long table of :math:`\hat\Sigma`: ``visit_1, visit_2, covariance, correlation``."""
        k = len(self.visits)
        corr = self.correlation
        return pd.DataFrame(
            [
                {
                    "visit_1": self.visits[a],
                    "visit_2": self.visits[b],
                    "covariance": float(self.covariance[a, b]),
                    "correlation": float(corr[a, b]),
                }
                for a in range(k)
                for b in range(a, k)
            ]
        )


# --------------------------------------------------------------------------------------------
# the REML criterion
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Pattern:
    """Patients who attended the same visits: their rows, stacked."""

    index: np.ndarray  # visit positions attended, shape (s,)
    y: np.ndarray  # (m, s)
    x: np.ndarray  # (m, s, p)


def _chol(theta: np.ndarray, k: int) -> np.ndarray:
    low = np.zeros((k, k))
    low[np.tril_indices(k)] = theta
    d = np.diag_indices(k)
    low[d] = np.exp(low[d])
    return low


def _criterion(
    theta: np.ndarray, patterns: Sequence[_Pattern], k: int, p: int, const: float
) -> tuple[float, np.ndarray, dict[str, Any]]:
    """-2 l_R, its gradient in ``theta`` and the GLS quantities at ``theta``."""
    low = _chol(theta, k)
    sigma = low @ low.T
    a = np.zeros((p, p))
    b = np.zeros(p)
    logdet = 0.0
    inv = []
    for pat in patterns:
        s = sigma[np.ix_(pat.index, pat.index)]
        cs = np.linalg.cholesky(s)
        si = np.linalg.inv(s)
        inv.append(si)
        logdet += pat.y.shape[0] * 2.0 * float(np.sum(np.log(np.diag(cs))))
        a += np.einsum("isk,st,itl->kl", pat.x, si, pat.x)
        b += np.einsum("isk,st,it->k", pat.x, si, pat.y)
    ca = np.linalg.cholesky(a)
    c = np.linalg.inv(a)
    beta = c @ b
    quad = 0.0
    g = np.zeros((k, k))
    for pat, si in zip(patterns, inv, strict=True):
        r = pat.y - pat.x @ beta
        quad += float(np.einsum("is,st,it->", r, si, r))
        m = r.T @ r + np.einsum("isk,kl,itl->st", pat.x, c, pat.x)
        g[np.ix_(pat.index, pat.index)] += pat.y.shape[0] * si - si @ m @ si
    value = logdet + 2.0 * float(np.sum(np.log(np.diag(ca)))) + quad + const
    gl = 2.0 * g @ low
    gl[np.diag_indices(k)] *= np.diag(low)
    return value, gl[np.tril_indices(k)], {"sigma": sigma, "beta": beta, "cov": c}


def _design(
    group: np.ndarray, visit_pos: np.ndarray, k: int, names: tuple[str, list[str]]
) -> tuple[np.ndarray, list[str]]:
    """Treatment-coded ``group * visit`` design, in R's column order."""
    gname, vnames = names
    n = len(group)
    vd = np.zeros((n, k - 1))
    for j in range(1, k):
        vd[:, j - 1] = visit_pos == j
    x = np.column_stack([np.ones(n), group, vd, vd * group[:, None]])
    terms = ["(Intercept)", gname, *vnames[1:], *[f"{gname}:{v}" for v in vnames[1:]]]
    return x, terms


def mmrm(
    data: pd.DataFrame,
    *,
    outcome: str,
    group: str,
    levels: tuple[Any, Any],
    visit: str,
    visits: Sequence[float],
    subject: str,
    alpha: float = 0.05,
) -> MMRMResult:
    r"""Fit an MMRM (visit factor, group x visit, unstructured covariance) by REML.

    Parameters
    ----------
    data : pandas.DataFrame
        Long table, one row per attended visit (unattended visits left out;
        a missing value in a used column is an error; at most one row per
        subject and visit).
    outcome : str
        The score column.
    group : str
        The group column (constant within a subject).
    levels : (reference, comparison)
        The two group levels; contrasts are comparison minus reference.
        Explicit: never inferred from the data.
    visit : str
        The visit column (e.g. month).
    visits : sequence of float
        The planned visits, in order; the first is the reference level of the
        visit factor. A visit in the data that is not planned is an error.
    subject : str
        The patient id column.
    alpha : float, default 0.05
        CI level ``1 - alpha``.

    Returns
    -------
    MMRMResult
        ``to_frame()``: the per-visit contrasts.

    Raises
    ------
    StudyvalError
        A missing column or value, a group value outside ``levels``, a group
        that varies within a subject, an unplanned visit, duplicate subject
        visits, a bad ``alpha``.
    EstimationError
        A planned visit with no observation in a group (the group-by-visit
        effects are not estimable); a pair of visits that no patient attended
        both (their covariance is not estimable); no residual degrees of
        freedom; the optimiser does not converge; the REML covariance is not
        positive definite (smallest eigenvalue at most :data:`PD_TOLERANCE`
        times the largest). No fallback structure is fitted.

    Notes
    -----
    Agrees with ``nlme::gls`` (call in the module docstring; REML) to 1e-6
    relative in the coefficients, their standard errors and the per-visit
    contrasts, and to 1e-9 in the REML log-likelihood (``tests/test_mmrm.py``);
    the remaining differences are where nlme's optimiser stops on a flat REML
    surface (its nlminb and optim settings differ from each other by as much),
    this function's optimum having the higher REML log-likelihood.
    """
    alpha = check_alpha(alpha)
    cols = [subject, visit, group, outcome]
    absent = [c for c in cols if c not in data.columns]
    if absent:
        raise StudyvalError(f"columns {absent} are not in the data")
    d = data[cols]
    if d.isna().any().any():
        col = d.columns[d.isna().any()][0]
        raise StudyvalError(f"column {col!r} has missing values; leave unattended visits out")
    ref, cmp_ = levels
    if ref == cmp_:
        raise StudyvalError(f"levels must be two different group values, got {levels!r}")
    other = ~d[group].isin([ref, cmp_])
    if other.any():
        raise StudyvalError(
            f"group {group!r} has values outside levels {levels!r}: "
            f"{sorted(map(str, d.loc[other, group].unique()))[:5]}"
        )
    if (d.groupby(subject)[group].nunique() > 1).any():
        raise StudyvalError(f"group {group!r} varies within a {subject!r}")
    plan_visits = [float(v) for v in visits]
    if len(plan_visits) < 2 or len(set(plan_visits)) != len(plan_visits):
        raise StudyvalError(f"visits must be at least two distinct values, got {list(visits)}")
    k = len(plan_visits)
    vpos_map = {v: j for j, v in enumerate(plan_visits)}
    vv = d[visit].astype(float)
    unplanned = sorted(set(vv) - set(plan_visits))
    if unplanned:
        raise StudyvalError(f"visits {unplanned} of column {visit!r} are not planned visits")
    if d.duplicated([subject, visit]).any():
        raise StudyvalError(f"more than one row for some {subject!r} and {visit!r}")
    gnum = (d[group] == cmp_).to_numpy(float)
    vpos = vv.map(vpos_map).to_numpy(int)
    for lev, gv in ((ref, 0.0), (cmp_, 1.0)):
        for j, v in enumerate(plan_visits):
            if not np.any((gnum == gv) & (vpos == j)):
                raise EstimationError(
                    f"no {outcome} observation in group {group}={lev!r} at {visit} {v:g}: the "
                    "group-by-visit effects are not estimable"
                )
    att = np.zeros((d[subject].nunique(), k), bool)
    sid, subjects = pd.factorize(d[subject], sort=True)
    att[sid, vpos] = True
    for a in range(k):
        for b in range(a + 1, k):
            if not np.any(att[:, a] & att[:, b]):
                raise EstimationError(
                    f"no patient has {outcome} at both {visit} {plan_visits[a]:g} and "
                    f"{plan_visits[b]:g}: their covariance is not estimable"
                )
    vnames = [f"{visit}{v:g}" for v in plan_visits]
    x, terms = _design(gnum, vpos, k, (group, vnames))
    p = x.shape[1]
    n_obs = len(d)
    df = n_obs - p
    if df < 1:
        raise EstimationError(f"{n_obs} observations for {p} fixed effects: no residual df")
    y = d[outcome].to_numpy(float)
    # fitted on the scale of the outcome's SD (the optimiser's steps and tolerances are then
    # scale-free); beta, its covariance, Sigma and the log-likelihood are mapped back below
    scale = float(np.std(y))
    if not scale > 0:
        raise EstimationError(f"{outcome} takes a single value: no variance to model")
    y = y / scale
    # stack patients by attendance pattern (rows ordered by visit within patient)
    order = np.lexsort((vpos, sid))
    y, x, sid_o, vpos_o = y[order], x[order], sid[order], vpos[order]
    keys = [tuple(r) for r in att]
    patterns = []
    for key in sorted(set(keys)):
        members = np.array([i for i, kk in enumerate(keys) if kk == key])
        idx = np.flatnonzero(key)
        rows = np.isin(sid_o, members)
        s = len(idx)
        patterns.append(
            _Pattern(
                index=idx,
                y=y[rows].reshape(-1, s),
                x=x[rows].reshape(-1, s, p),
            )
        )
    const = df * math.log(2.0 * math.pi)

    # start: Cholesky factor of the per-visit variances of the OLS residuals (diagonal)
    beta0 = np.linalg.lstsq(x, y, rcond=None)[0]
    res0 = y - x @ beta0
    var0 = np.array([np.mean(res0[vpos_o == j] ** 2) for j in range(k)])
    if not np.all(var0 > 0):
        raise EstimationError(f"{outcome}: a visit has no residual variation around its cell means")
    low0 = np.diag(np.sqrt(var0))
    theta0 = low0[np.tril_indices(k)].copy()
    diag_pos = [i for i, (r, c) in enumerate(zip(*np.tril_indices(k), strict=True)) if r == c]
    theta0[diag_pos] = np.log(np.sqrt(var0))

    def fun(t: np.ndarray) -> tuple[float, np.ndarray]:
        v, gr, _ = _criterion(t, patterns, k, p, const)
        return v, gr

    try:
        with warnings.catch_warnings():
            # an overflow while BFGS probes a far step is an error here, never a silent inf
            warnings.simplefilter("error", RuntimeWarning)
            opt = optimize.minimize(
                fun, theta0, jac=True, method="BFGS", options={"gtol": 1e-8, "maxiter": 2000}
            )
            theta = opt.x
            iterations = int(opt.nit)
            # Newton polishing with a central-difference Hessian of the analytic gradient;
            # a step that does not lower the criterion is not taken
            value, grad = fun(theta)
            for _ in range(20):
                step = np.linalg.solve(_hessian(fun, theta), grad)
                new_value, new_grad = fun(theta - step)
                if not new_value <= value + 1e-12 * abs(value):
                    break
                theta, value, grad = theta - step, new_value, new_grad
                iterations += 1
                if np.max(np.abs(step)) < _STEP_TOLERANCE:
                    break
            value, grad, gls = _criterion(theta, patterns, k, p, const)
    except (np.linalg.LinAlgError, RuntimeWarning) as exc:
        raise EstimationError(
            f"the MMRM of {outcome} (unstructured covariance over {k} visits) could not be "
            f"fitted: {type(exc).__name__}: {exc}"
        ) from None
    if not np.all(np.isfinite(grad)) or np.max(np.abs(grad)) > GRADIENT_TOLERANCE:
        raise EstimationError(
            f"the MMRM of {outcome} did not converge (largest gradient component "
            f"{np.max(np.abs(grad)):.3g} of -2 REML log-likelihood; BFGS: {opt.message})"
        )
    sigma = gls["sigma"] * scale**2
    eig = np.linalg.eigvalsh(sigma)
    if not eig[0] > PD_TOLERANCE * eig[-1]:
        raise EstimationError(
            f"the REML unstructured covariance of {outcome} is not positive definite (eigenvalues "
            f"{eig[0]:.3g} to {eig[-1]:.3g}): a correlation of visits is estimated at +-1"
        )
    beta, cov = gls["beta"] * scale, gls["cov"] * scale**2
    se = np.sqrt(np.diag(cov))
    q = float(stats.t.ppf(1 - alpha / 2, df))
    fixed = _table(beta, se, df, q)
    fixed.insert(0, "term", terms)
    rows = []
    for j in range(k):
        w = np.zeros(p)
        w[1] = 1.0
        if j > 0:
            w[1 + (k - 1) + j] = 1.0
        rows.append((float(w @ beta), float(math.sqrt(w @ cov @ w))))
    est = np.array([r[0] for r in rows])
    cse = np.array([r[1] for r in rows])
    contrasts = _table(est, cse, df, q)
    contrasts.insert(0, "visit", plan_visits)
    contrasts["n_reference"] = [
        int(np.sum(att[:, j] & ~_cmp_subject(gnum, sid, len(subjects)))) for j in range(k)
    ]
    contrasts["n_comparison"] = [
        int(np.sum(att[:, j] & _cmp_subject(gnum, sid, len(subjects)))) for j in range(k)
    ]
    return MMRMResult(
        contrasts=contrasts,
        fixed=fixed,
        covariance=sigma,
        cov_fixed=cov,
        visits=tuple(plan_visits),
        levels=(ref, cmp_),
        # -2 l_R on the original scale adds (N - p) log(scale^2)
        reml_loglik=-0.5 * value - df * math.log(scale),
        n_obs=n_obs,
        n_patients=len(subjects),
        n_params=p,
        df=df,
        df_method=DF_METHOD,
        ci_level=1 - alpha,
        iterations=iterations,
    )


def _cmp_subject(gnum: np.ndarray, sid: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, bool)
    out[sid[gnum == 1.0]] = True
    return out


def _table(est: np.ndarray, se: np.ndarray, df: int, q: float) -> pd.DataFrame:
    t = est / se
    return pd.DataFrame(
        {
            "estimate": est,
            "se": se,
            "df": df,
            "t": t,
            "ci_low": est - q * se,
            "ci_high": est + q * se,
            "p_value": 2.0 * stats.t.sf(np.abs(t), df),
        }
    )


def _hessian(fun: Any, theta: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central differences of the analytic gradient, symmetrised."""
    n = len(theta)
    out = np.zeros((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = h
        out[:, i] = (fun(theta + e)[1] - fun(theta - e)[1]) / (2 * h)
    return 0.5 * (out + out.T)
