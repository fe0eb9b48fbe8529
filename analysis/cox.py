r"""Cox proportional-hazards regression (Efron or Breslow ties, strata), as ``survival::coxph``.

* :func:`cox` -- Newton-Raphson fit of the partial likelihood: coefficients,
  model-based SEs, hazard ratios with CIs, the likelihood-ratio, Wald and score
  tests, Harrell's C of the linear predictor
  (:func:`studyval.analysis.concordance.harrell_c`) and the baseline cumulative
  hazard (``basehaz(fit, centered = FALSE)``).
* :class:`CoxResult` -- the fit, with the prediction methods ``predict_risk``
  (linear predictor), ``predict_survival`` and ``predict_risk_at``.
* The private design, risk-set and likelihood routines (``_cox_design``,
  ``_cox_prepare``, ``_cox_eval``, ``_weighted_info``) are shared with
  :func:`studyval.analysis.cox_zph.cox_zph`.

Conventions: the linear predictor is a *risk* (higher = worse, earlier
event); ``time`` and ``event`` follow :mod:`studyval.analysis.kaplan_meier`;
times are compared exactly (R merges floating-point near-ties, ``aeqSurv``).

Oracles: R 4.2 with ``survival`` 3.5 (``coxph``, ``basehaz``); see
``tests/test_survival_cox.py``. Second oracle: lifelines ``CoxPHFitter``
(``tests/test_second_oracles.py``).

References
----------
* Cox DR (1972). Regression models and life-tables. JRSS B 34:187-220.
  doi:10.1111/j.2517-6161.1972.tb00899.x
* Efron B (1977). The efficiency of Cox's likelihood function for censored
  data. JASA 72:557-565. doi:10.1080/01621459.1977.10480613
* Breslow NE (1974). Covariance analysis of censored survival data.
  Biometrics 30:89-99. doi:10.2307/2529620
"""

from __future__ import annotations

import collections
import dataclasses
import math
import threading
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from studyval.analysis._checks import check_alpha, check_option
from studyval.analysis._checks import z_critical as _z
from studyval.analysis._survival_common import (
    _check_labels,
    _check_query_times,
    _check_time_event,
    _chol_solve,
    _encode,
    _readonly,
)
from studyval.analysis.concordance import ConcordanceResult, harrell_c
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError
from studyval.results import Result

__all__ = ["CoxResult", "NestedCoxTest", "cox", "nested_cox_test"]

_TIES = ("efron", "breslow")
# Flag a coefficient as possibly infinite (monotone likelihood) when, after the
# log-likelihood has converged, the next Newton step for it is still this large:
# R's coxph rule (toler.inf = sqrt(eps), eps = 1e-9).
_INF_STEP_ABS = 1e-6
_INF_STEP_REL = math.sqrt(1e-9)


@dataclasses.dataclass(frozen=True, eq=False)
class _CoxData:
    """Design sorted by (stratum, time, events first), with the risk-set bookkeeping.

    Rows are sorted by stratum, then time, and within a tied time the events
    come first, so the events of one time form one contiguous run of rows.
    """

    x: np.ndarray  # (n, p) covariates centred at their means, sorted
    means: np.ndarray  # (p,)
    time: np.ndarray  # sorted
    event: np.ndarray  # sorted, int8
    strata: np.ndarray  # sorted codes
    order: np.ndarray  # sorted position -> original row
    slices: list[tuple[int, int]]  # contiguous row range of each stratum
    block_start: np.ndarray  # (B,) first row of each distinct (stratum, time)
    block_time: np.ndarray
    block_stratum: np.ndarray
    eb_of_block: np.ndarray  # (B,) event-block index of a block, -1 if it has no event
    ev_rows: np.ndarray  # (m,) rows with an event
    ev_block: np.ndarray  # (m,) event-block index 0..G-1 of each event
    eb_first: np.ndarray  # (G,) first position in ev_rows of each event block
    eb_size: np.ndarray  # (G,) tied events per event block
    eb_start: np.ndarray  # (G,) first row (start of the risk set) of each event block
    eb_stratum: np.ndarray  # (G,)
    seg_starts: np.ndarray  # row segments: event-block starts and stratum starts
    seg_slices: list[tuple[int, int]]  # segment range of each stratum
    eb_seg: np.ndarray  # (G,) segment of each event block
    ev_idx: np.ndarray  # reduceat indices: [start, end) of each event run, interleaved
    last_eb: np.ndarray  # (n,) last event block with time <= t_i in i's stratum, -1 if none
    last_ok: np.ndarray  # (n,) last_eb >= 0
    last_at: np.ndarray  # (n,) max(last_eb, 0)
    eb_slices: list[tuple[int, int]]  # contiguous range of each stratum's event blocks
    block_slices: list[tuple[int, int]]  # contiguous range of each stratum's blocks
    frac: dict[str, np.ndarray]  # ties -> (m,) Efron fractions l/d (zeros for Breslow)
    sum_x_ev: np.ndarray  # (p,) sum of x over the events


def _df_column(df: pd.DataFrame, name: str, role: str) -> pd.Series:
    if not isinstance(name, str):
        raise StudyvalError(f"{role} must be a column name (str), got {name!r}")
    if name not in df.columns:
        import difflib

        close = difflib.get_close_matches(name, [str(c) for c in df.columns], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise StudyvalError(f"{role} column {name!r} is not in the data{hint}")
    return df[name]


def _no_missing(col: pd.Series, name: str) -> None:
    kind = col.dtype.kind if isinstance(col.dtype, np.dtype) else ""
    if kind in ("b", "i", "u"):
        return  # a numpy bool or integer column holds no missing value
    # a numpy float column's missing values are its NaNs (what Series.isna finds there)
    miss = np.isnan(col.to_numpy()) if kind == "f" else col.isna().to_numpy()
    if miss.any():
        pos = np.flatnonzero(miss)
        labels = ", ".join(repr(v) for v in col.index[pos[:5]].tolist())
        more = f" (and {pos.size - 5} more)" if pos.size > 5 else ""
        raise StudyvalError(
            f"column {name!r} has {pos.size} missing value(s) at row(s) with index {labels}{more} "
            f"(first at position {int(pos[0])}); remove or impute them before fitting"
        )


def _cox_design(
    df: Any,
    duration: str,
    event: str,
    covariates: Sequence[str],
    strata: str | Sequence[str] | None,
) -> tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...]
]:
    """Validated arrays (time, event, X, strata codes, strata levels) in original row order."""
    if not isinstance(df, pd.DataFrame):
        raise StudyvalError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise StudyvalError("df has no rows")
    if isinstance(covariates, str):
        covariates = [covariates]
    covs = tuple(covariates)
    if len(covs) == 0:
        raise StudyvalError("covariates is empty; give at least one numeric column")
    dup = sorted({c for c in covs if covs.count(c) > 1})
    if dup:
        raise StudyvalError(f"covariates lists {dup[0]!r} more than once")
    for c in covs:
        if c in (duration, event):
            raise StudyvalError(f"covariate {c!r} is also the duration or event column")
    strata_cols: tuple[str, ...] = ()
    if strata is not None:
        strata_cols = (strata,) if isinstance(strata, str) else tuple(strata)
        for c in strata_cols:
            if c in covs:
                raise StudyvalError(f"column {c!r} is both a covariate and a stratum")
    tcol = _df_column(df, duration, "duration")
    ecol = _df_column(df, event, "event")
    _no_missing(tcol, duration)
    _no_missing(ecol, event)
    t, e = _check_time_event(
        tcol.to_numpy(),
        ecol.to_numpy(),
        (f"duration column {duration!r}", f"event column {event!r}"),
    )
    cols = []
    for c in covs:
        col = _df_column(df, c, "covariate")
        if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
            raise StudyvalError(
                f"covariate {c!r} is not numeric (dtype {col.dtype}); encode categorical "
                "covariates as numeric indicator (dummy) columns before fitting"
            )
        _no_missing(col, c)
        arr = col.to_numpy(dtype=np.float64)
        bad = ~np.isfinite(arr)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise StudyvalError(
                f"covariate {c!r} has an infinite value at row with index {col.index[i]!r}"
            )
        cols.append(arr)
    x = np.column_stack(cols)
    if strata_cols:
        for c in strata_cols:
            _no_missing(_df_column(df, c, "strata"), c)
        if len(strata_cols) == 1:
            lab = df[strata_cols[0]].to_numpy()
        else:
            lab = df[list(strata_cols)].astype(str).agg(", ".join, axis=1).to_numpy()
        levels, codes = _encode(lab)
    else:
        levels, codes = np.array([None], dtype=object), np.zeros(t.shape[0], dtype=np.int64)
    return t, e, x, codes, levels, covs, strata_cols


class _Layouts:
    """The last few :class:`_CoxData` by their times, events and strata codes (an LRU cache).

    Everything in a ``_CoxData`` but the covariates (sort order, blocks, risk sets) depends on
    ``(time, event, strata)`` only; a bootstrap fits several models to the same outcome (the
    refit and the calibration-slope model of a resample, the slope model of every refit on the
    original data), so :func:`_cox_prepare` reuses it. The key is the arrays' bytes: a hit is
    the same outcome exactly.
    """

    def __init__(self, size: int = 4) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._store: collections.OrderedDict[tuple, _CoxData] = (
            collections.OrderedDict()
        )

    def get(self, key: tuple) -> _CoxData | None:
        with self._lock:
            cd = self._store.get(key)
            if cd is not None:
                self._store.move_to_end(key)
            return cd

    def put(self, key: tuple, cd: _CoxData) -> None:
        with self._lock:
            self._store[key] = cd
            self._store.move_to_end(key)
            while len(self._store) > self._size:
                self._store.popitem(last=False)


def _cox_prepare(
    t: np.ndarray,
    e: np.ndarray,
    x: np.ndarray,
    codes: np.ndarray,
    layouts: _Layouts | None = None,
) -> _CoxData:
    # dtype and length in the key: equal bytes of arrays of different types are not equal arrays
    key = (
        tuple((a.dtype.str, a.shape, a.tobytes()) for a in (t, e, codes))
        if layouts is not None
        else None
    )
    like = layouts.get(key) if layouts is not None and key is not None else None
    if like is not None:  # the same outcome: only the covariates are new (computed as below)
        means = x.mean(axis=0)
        xs = x[like.order] - means
        return dataclasses.replace(like, x=xs, means=means, sum_x_ev=xs[like.ev_rows].sum(axis=0))
    n = t.shape[0]
    order = np.lexsort((-e.astype(np.int64), t, codes))
    ts, es, ss = t[order], e[order], codes[order]
    means = x.mean(axis=0)
    xs = x[order] - means
    new_block = np.empty(n, dtype=bool)
    new_block[0] = True
    new_block[1:] = (ts[1:] != ts[:-1]) | (ss[1:] != ss[:-1])
    block = np.cumsum(new_block) - 1
    block_start = np.flatnonzero(new_block)
    has_ev = np.bincount(block, weights=es) > 0
    eb_of_block = np.full(block_start.shape[0], -1, dtype=np.int64)
    eb_of_block[has_ev] = np.arange(int(has_ev.sum()))
    ev_rows = np.flatnonzero(es == 1)
    ev_block = eb_of_block[block[ev_rows]]
    eb_size = np.bincount(ev_block).astype(np.int64)
    eb_first = np.concatenate(([0], np.cumsum(eb_size)[:-1])).astype(np.int64)
    eb_start = block_start[has_ev]
    eb_stratum = ss[eb_start]
    # last event block at or before each row's time, within its stratum
    last = (np.cumsum(has_ev) - 1)[block]
    valid = last >= 0
    valid[valid] = eb_stratum[last[valid]] == ss[valid]
    last_eb = np.where(valid, last, -1)
    within = np.arange(ev_rows.shape[0]) - eb_first[ev_block]
    frac = {"efron": within / eb_size[ev_block], "breslow": np.zeros(ev_rows.shape[0])}
    bounds = _stratum_bounds(ss)
    slices = [(int(bounds[i]), int(bounds[i + 1])) for i in range(bounds.shape[0] - 1)]
    seg_starts = np.union1d(eb_start, bounds[:-1])
    eb_seg = np.searchsorted(seg_starts, eb_start)
    seg_bounds = np.searchsorted(seg_starts, bounds)
    seg_slices = [(int(seg_bounds[i]), int(seg_bounds[i + 1])) for i in range(len(slices))]
    ev_idx = np.empty(2 * eb_start.shape[0], dtype=np.int64)
    ev_idx[0::2] = eb_start
    ev_idx[1::2] = eb_start + eb_size
    if ev_idx[-1] == n:
        ev_idx = ev_idx[:-1]
    cd = _CoxData(
        x=xs,
        means=means,
        time=ts,
        event=es,
        strata=ss,
        order=order,
        slices=slices,
        block_start=block_start,
        block_time=ts[block_start],
        block_stratum=ss[block_start],
        eb_of_block=eb_of_block,
        ev_rows=ev_rows,
        ev_block=ev_block,
        eb_first=eb_first,
        eb_size=eb_size,
        eb_start=eb_start,
        eb_stratum=eb_stratum,
        seg_starts=seg_starts,
        seg_slices=seg_slices,
        eb_seg=eb_seg,
        ev_idx=ev_idx,
        last_eb=last_eb,
        last_ok=last_eb >= 0,
        last_at=np.maximum(last_eb, 0),
        eb_slices=_slices(_stratum_bounds(eb_stratum)),
        block_slices=_slices(_stratum_bounds(ss[block_start])),
        frac=frac,
        sum_x_ev=xs[ev_rows].sum(axis=0),
    )
    if layouts is not None and key is not None:
        layouts.put(key, cd)
    return cd


def _stratum_bounds(strat: np.ndarray) -> np.ndarray:
    """Start of each run of equal codes, and the length: ``[0, ..., n]`` (codes sorted)."""
    change = np.empty(strat.shape[0] + 1, dtype=bool)
    change[0] = change[-1] = True
    np.not_equal(strat[1:], strat[:-1], out=change[1:-1])
    return np.flatnonzero(change)


def _slices(bounds: np.ndarray) -> list[tuple[int, int]]:
    return [(int(bounds[i]), int(bounds[i + 1])) for i in range(bounds.shape[0] - 1)]


def _cumsum_in(v: np.ndarray, slices: list[tuple[int, int]]) -> np.ndarray:
    """Cumulative sum restarting at each of ``slices`` (contiguous row ranges covering v)."""
    out = np.empty_like(v)
    for a, b in slices:
        out[a:b] = np.cumsum(v[a:b], axis=0)
    return out


def _risk_set_sums(v: np.ndarray, cd: _CoxData) -> np.ndarray:
    """Sum of ``v`` over the risk set of each event block (rows at or after it, same stratum).

    Segment sums (``np.add.reduceat``) between consecutive event times, then a
    reverse cumulative sum over the segments of each stratum: accumulated
    backwards in time, as R's C code does, to avoid cancellation.
    """
    seg = np.add.reduceat(v, cd.seg_starts, axis=0)
    out = np.empty_like(seg)
    for a, b in cd.seg_slices:
        out[a:b] = np.cumsum(seg[a:b][::-1], axis=0)[::-1]
    return out[cd.eb_seg]


@dataclasses.dataclass(frozen=True)
class _CoxEval:
    """Partial likelihood and its derivatives at one beta, with per-event-block pieces."""

    loglik: float
    score: np.ndarray
    info: np.ndarray | None
    w: np.ndarray  # exp(eta - shift), sorted rows
    shift: float
    s1: np.ndarray  # (G, p) risk-set sums of w x
    d1: np.ndarray  # (G, p) tied-event sums of w x
    c1: np.ndarray  # (G,) sum_l 1/den_l
    c2: np.ndarray  # (G,) sum_l f_l/den_l
    q: tuple[np.ndarray, np.ndarray, np.ndarray]  # (G,) sum_l f_l^k / den_l^2, k = 0, 1, 2


def _cox_eval(beta: np.ndarray, cd: _CoxData, ties: str, info: bool = True) -> _CoxEval:
    r"""Partial log-likelihood, score and information at ``beta`` (Efron or Breslow).

    For an event block with risk-set sums :math:`S_0, S_1, S_2` and tied-event
    sums :math:`D_0, D_1, D_2` (of :math:`w = e^{x\beta}`, :math:`w x`,
    :math:`w x x^\top`), term :math:`l = 0..d-1` has fraction :math:`f_l = l/d`
    (0 for Breslow), denominator :math:`\mathrm{den}_l = S_0 - f_l D_0` and mean
    :math:`a_l = (S_1 - f_l D_1)/\mathrm{den}_l`. Sums over :math:`l` of
    :math:`a_l` and :math:`a_l a_l^\top` expand into per-block scalars times
    :math:`S_1, D_1`, and the :math:`S_2, D_2` parts of the information are
    accumulated per row as :math:`X^\top \mathrm{diag}(w\,c) X`; no
    (n, p, p) or (events, p) array is formed: O(n p^2) per evaluation.
    """
    eta = cd.x @ beta
    shift = float(eta.max())
    w = np.exp(eta - shift)
    f = cd.frac[ties]
    g = cd.ev_block
    wx = w[:, None] * cd.x
    s0 = _risk_set_sums(w, cd)
    s1 = _risk_set_sums(wx, cd)
    d0 = np.add.reduceat(w, cd.ev_idx)[0::2]
    d1 = np.add.reduceat(wx, cd.ev_idx, axis=0)[0::2]
    with np.errstate(divide="ignore", invalid="ignore"):
        den = s0[g] - f * d0[g]
        loglik = float(cd.sum_x_ev @ beta - shift * den.shape[0] - np.sum(np.log(den)))
        inv = 1.0 / den
    c1 = np.add.reduceat(inv, cd.eb_first)
    c2 = np.add.reduceat(f * inv, cd.eb_first)
    inv2 = inv * inv
    q = (
        np.add.reduceat(inv2, cd.eb_first),
        np.add.reduceat(f * inv2, cd.eb_first),
        np.add.reduceat(f * f * inv2, cd.eb_first),
    )
    score = cd.sum_x_ev - (s1.T @ c1 - d1.T @ c2)
    ev = _CoxEval(loglik, score, None, w, shift, s1, d1, c1, c2, q)
    if info:
        ev = _CoxEval(loglik, score, _weighted_info(cd, ev, None), w, shift, s1, d1, c1, c2, q)
    return ev


def _weighted_info(cd: _CoxData, ev: _CoxEval, gw: np.ndarray | None) -> np.ndarray:
    r"""Information :math:`\sum_{\text{blocks}} g \sum_l V_l` with per-event-block weights ``gw``.

    :math:`V_l = (S_2 - f_l D_2)/\mathrm{den}_l - a_l a_l^\top`; ``gw = None`` means 1
    (the usual information matrix); the PH test uses :math:`g(t)` and :math:`g(t)^2`.
    """
    # without weights the products with 1 are left out: x * 1.0 is x, bit for bit
    c1, c2, (q0, q1, q2) = ev.c1, ev.c2, ev.q
    if gw is not None:
        c1, c2, q0, q1, q2 = c1 * gw, c2 * gw, q0 * gw, q1 * gw, q2 * gw
    cum = _cumsum_in(c1, cd.eb_slices)
    rowc = np.where(cd.last_ok, cum[cd.last_at], 0.0)
    rowc[cd.ev_rows] -= c2[cd.ev_block]
    first = (cd.x * (ev.w * rowc)[:, None]).T @ cd.x
    s1, d1 = ev.s1, ev.d1
    cross = s1.T @ (d1 * q1[:, None])
    second = s1.T @ (s1 * q0[:, None]) - cross - cross.T + d1.T @ (d1 * q2[:, None])
    out = first - second
    return (out + out.T) / 2.0


@dataclasses.dataclass(frozen=True, eq=False)
class CoxResult(Result):
    r"""Cox proportional-hazards fit (Newton-Raphson on the partial likelihood).

    The hazard of subject :math:`i` in stratum :math:`s` is
    :math:`h_s(t)\exp(x_i^\top\beta)`. With Efron's handling of :math:`d`
    events tied at a time (Efron 1977, doi:10.1080/01621459.1977.10480613),
    the log partial likelihood is

    .. math::

        \ell(\beta) = \sum_{\text{event times}} \Bigl[\sum_{i \in D} x_i^\top\beta
            - \sum_{l=0}^{d-1} \log\Bigl(\sum_{j \in R} e^{x_j^\top\beta}
            - \tfrac{l}{d} \sum_{j \in D} e^{x_j^\top\beta}\Bigr)\Bigr]

    (:math:`R` the risk set, :math:`D` the tied events; Breslow's version drops
    the :math:`l/d` term; Cox 1972, doi:10.1111/j.2517-6161.1972.tb00899.x).

    Tests (each on ``p`` df): likelihood ratio :math:`2\{\ell(\hat\beta) - \ell(0)\}`;
    Wald :math:`\hat\beta^\top I(\hat\beta)\hat\beta`; score
    :math:`U(0)^\top I(0)^{-1} U(0)` at :math:`\beta = 0`, as ``summary(coxph)``
    reports them. Hazard-ratio limits are :math:`\exp(\hat\beta \pm z\,\mathrm{se})`.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per covariate: ``term, coef, se, hr, ci_low, ci_high, z, p_value``.
    coef : numpy.ndarray, shape (p,)
        :math:`\hat\beta` (log hazard ratios per unit of each covariate).
    variance : numpy.ndarray, shape (p, p)
        :math:`I(\hat\beta)^{-1}` (model-based, as ``vcov(coxph)``).
    covariates : tuple of str
        Covariate columns, in order.
    strata : tuple of str
        Stratifying columns (empty if none).
    ties : str
        ``"efron"`` or ``"breslow"``.
    n, n_events : int
        Subjects and events used.
    loglik_null, loglik : float
        :math:`\ell(0)` and :math:`\ell(\hat\beta)`.
    lr_chisq, lr_df, lr_p : float, int, float
        Likelihood-ratio test.
    wald_chisq, wald_df, wald_p : float, int, float
        Wald test.
    score_chisq, score_df, score_p : float, int, float
        Score (log-rank) test at :math:`\beta = 0`.
    concordance, concordance_se : float
        Harrell's C of the linear predictor (within strata) with its IJ standard
        error, as ``coxph`` reports it (see :func:`harrell_c`).
    iterations : int
        Newton-Raphson iterations.
    converged : bool
        False when the iteration limit was hit or a coefficient diverges
        (monotone likelihood); a StatisticalWarning was issued.
    ci_level : float
        ``1 - alpha``.
    baseline_hazard : pandas.DataFrame
        Cumulative baseline hazard :math:`H_{0s}(t)` at covariates 0 (not at
        their means), one row per stratum and distinct time (events and
        censorings): ``strata`` (if stratified), ``time, cumhaz``. Equals
        ``basehaz(fit, centered = FALSE)``: Breslow's estimator
        :math:`\sum_{t_j \le t} d_j / \sum_R e^{x^\top\hat\beta}` for
        ``ties="breslow"``, and for Efron
        :math:`\sum_{t_j\le t}\sum_{l=0}^{d_j-1} 1/(\sum_R e^{x^\top\hat\beta}
        - \tfrac{l}{d_j}\sum_D e^{x^\top\hat\beta})`.

    """

    summary: pd.DataFrame = dataclasses.field(repr=False)
    coef: np.ndarray = dataclasses.field(repr=False)
    variance: np.ndarray = dataclasses.field(repr=False)
    covariates: tuple[str, ...]
    strata: tuple[str, ...]
    ties: str
    n: int
    n_events: int
    loglik_null: float
    loglik: float
    lr_chisq: float
    lr_df: int
    lr_p: float
    wald_chisq: float
    wald_df: int
    wald_p: float
    score_chisq: float
    score_df: int
    score_p: float
    concordance: float
    concordance_se: float
    iterations: int
    converged: bool
    ci_level: float
    baseline_hazard: pd.DataFrame = dataclasses.field(repr=False)
    duration: str = ""
    event: str = ""
    _strata_levels: np.ndarray = dataclasses.field(default=None, repr=False)  # type: ignore[assignment]

    def _design(self, df: pd.DataFrame) -> np.ndarray:
        if not isinstance(df, pd.DataFrame):
            raise StudyvalError(f"df must be a pandas DataFrame, got {type(df).__name__}")
        cols = []
        for c in self.covariates:
            col = _df_column(df, c, "covariate")
            if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
                raise StudyvalError(f"covariate {c!r} is not numeric (dtype {col.dtype})")
            _no_missing(col, c)
            cols.append(col.to_numpy(dtype=np.float64))
        return np.column_stack(cols)

    def predict_risk(self, df: pd.DataFrame) -> np.ndarray:
        r"""Linear predictor :math:`x^\top\hat\beta` (risk score: higher = worse).

        Not centred (R's ``predict(fit, type = "lp")`` subtracts the mean
        linear predictor; the difference is a constant that changes no ranking
        and no C-index). It is the scale of :attr:`baseline_hazard`.

        Parameters
        ----------
        df : pandas.DataFrame
            Rows to score; must hold the numeric covariate columns, no missing values.

        Returns
        -------
        numpy.ndarray, shape (n,)

        """
        return self._design(df) @ self.coef

    def predict_survival(self, df: pd.DataFrame, times: Any) -> np.ndarray:
        r"""Predicted survival :math:`\exp\{-H_{0s}(t)\,e^{x^\top\hat\beta}\}`.

        Parameters
        ----------
        df : pandas.DataFrame
            Covariates (and the strata columns for a stratified fit).
        times : array-like of float, shape (k,)
            Times (``>= 0``). :math:`H_{0s}` is a step function; past the last
            time of a stratum it stays at its last value, so pick horizons within
            follow-up.

        Returns
        -------
        numpy.ndarray, shape (n, k)

        """
        q = _check_query_times(times)
        return self._survival_of(df, self.predict_risk(df), q)

    def _survival_of(self, df: pd.DataFrame, lp: np.ndarray, q: np.ndarray) -> np.ndarray:
        """:meth:`predict_survival` at checked times ``q``, given the rows' linear predictor."""
        h = np.empty((lp.shape[0], q.shape[0]))
        bh = self.baseline_hazard
        if self.strata:
            lab = (
                df[self.strata[0]].to_numpy()
                if len(self.strata) == 1
                else df[list(self.strata)].astype(str).agg(", ".join, axis=1).to_numpy()
            )
            for c in self.strata:
                _no_missing(_df_column(df, c, "strata"), c)
            for lev in pd.unique(lab):
                if lev not in set(self._strata_levels.tolist()):
                    raise StudyvalError(
                        f"stratum {lev!r} was not in the data the model was fitted on"
                    )
                sub = bh[bh["strata"] == lev]
                h0 = _step_at(sub["time"].to_numpy(), sub["cumhaz"].to_numpy(), q)
                m = lab == lev
                h[m] = h0[None, :]
        else:
            h[:] = _step_at(bh["time"].to_numpy(), bh["cumhaz"].to_numpy(), q)[None, :]
        return np.exp(-h * np.exp(lp)[:, None])

    def predict_risk_at(self, df: pd.DataFrame, horizon: float) -> np.ndarray:
        """Predicted probability of the event by ``horizon``: ``1 - S(horizon | x)``.

        Parameters
        ----------
        df : pandas.DataFrame
            Covariates (and strata columns if stratified).
        horizon : float
            Time horizon, e.g. 365 days for 1-year risk.

        Returns
        -------
        numpy.ndarray, shape (n,)

        """
        return 1.0 - self.predict_survival(df, [horizon])[:, 0]

    def baseline_survival(self, times: Any) -> pd.DataFrame:
        r"""Baseline survival :math:`S_{0s}(t) = \exp\{-H_{0s}(t)\}` at covariates 0 (not centred).

        The survival of a subject whose covariates are all 0, read from the
        step function :attr:`baseline_hazard` (0 before the first time of a
        stratum, its last value past the last time). A subject's survival is
        :math:`S_{0s}(t)^{\exp(x^\top\hat\beta)}` (:meth:`predict_survival`),
        so :math:`S_0` at a horizon and :math:`\hat\beta` are what TRIPOD
        item 22 asks a Cox model to publish. Equals ``summary(survfit(fit,
        newdata = <all covariates 0>), times = times)$surv`` and
        ``exp(-basehaz(fit, centered = FALSE)$hazard)`` at the last time
        ``<= t``.

        Parameters
        ----------
        times : array-like of float, shape (k,)
            Times (``>= 0``); pick them within follow-up.

        Returns
        -------
        pandas.DataFrame
            ``strata`` (stratified fits, one block per stratum), ``time``,
            ``cumhaz`` (:math:`H_{0s}(t)`) and ``survival``.

        """
        q = _check_query_times(times)
        bh = self.baseline_hazard
        if self.strata:
            blocks = []
            for lev in self._strata_levels:
                sub = bh[bh["strata"] == lev]
                h0 = _step_at(sub["time"].to_numpy(), sub["cumhaz"].to_numpy(), q)
                blocks.append(pd.DataFrame({"strata": lev, "time": q, "cumhaz": h0}))
            out = pd.concat(blocks, ignore_index=True)
        else:
            h0 = _step_at(bh["time"].to_numpy(), bh["cumhaz"].to_numpy(), q)
            out = pd.DataFrame({"time": q, "cumhaz": h0})
        out["survival"] = np.exp(-out["cumhaz"].to_numpy())
        return out


def _step_at(x: np.ndarray, y: np.ndarray, q: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(x, q, side="right")
    return np.concatenate(([0.0], y))[idx]


def _baseline_cumhaz(cd: _CoxData, ev: _CoxEval, beta: np.ndarray) -> np.ndarray:
    """The cumulative baseline hazard at covariates 0, one value per block (``_baseline``)."""
    # Breslow: d / S0; Efron: sum_l 1 / (S0 - l/d D0) -- both are c1
    dh = np.zeros(cd.block_start.shape[0])
    has = cd.eb_of_block >= 0
    dh[has] = ev.c1[cd.eb_of_block[has]]
    # back from the shifted, centred weights to exp(x beta) at x = 0
    scale = math.exp(-(ev.shift + float(cd.means @ beta)))
    return _cumsum_in(dh, cd.block_slices) * scale


def _baseline(
    cd: _CoxData, ev: _CoxEval, beta: np.ndarray, levels: np.ndarray, stratified: bool
) -> pd.DataFrame:
    out = pd.DataFrame({"time": cd.block_time, "cumhaz": _baseline_cumhaz(cd, ev, beta)})
    if stratified:
        out.insert(0, "strata", levels[cd.block_stratum])
    return out


def _collinearity_check(cd: _CoxData, covs: tuple[str, ...]) -> None:
    """Raise if a covariate is constant (within every stratum) or a linear combination of others."""
    p = cd.x.shape[1]
    varies = np.zeros(p, dtype=bool)
    cross = np.zeros((p, p))
    for a, b in cd.slices:
        xs = cd.x[a:b]
        varies |= (xs != xs[0]).any(axis=0)
        xc = xs - xs.mean(axis=0)
        cross += xc.T @ xc
    if not varies.all():
        j = int(np.flatnonzero(~varies)[0])
        where = " within every stratum" if len(cd.slices) > 1 else ""
        raise EstimationError(
            f"covariate {covs[j]!r} is constant{where}; its coefficient is not estimable"
        )
    sd = np.sqrt(np.diag(cross))
    corr = cross / np.outer(sd, sd)
    from scipy.linalg import lapack

    _, piv, rank, _ = lapack.dpstrf(corr, tol=1e-10)
    if rank < p:
        dropped = [covs[j - 1] for j in piv[rank:]]
        raise EstimationError(
            "covariates are collinear: "
            + ", ".join(repr(c) for c in dropped)
            + " is (are) a linear combination of the others; remove it"
        )


@dataclasses.dataclass(frozen=True)
class _NewtonFit:
    beta: np.ndarray
    cur: _CoxEval
    null: _CoxEval
    var: np.ndarray
    converged: bool
    iterations: int


def _cox_data(
    df: Any,
    duration: str,
    event: str,
    covariates: Sequence[str],
    strata: str | Sequence[str] | None,
    layouts: _Layouts | None = None,
) -> tuple[
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    tuple[str, ...],
    tuple[str, ...],
    _CoxData,
]:
    """The checked design of a Cox fit (:func:`_cox_design`) and its risk-set data.

    What :func:`cox` and :func:`_cox_refit` do before the Newton-Raphson iterations: the
    arrays, then an error for an outcome without events, the risk sets (shared through
    ``layouts``) and the collinearity check.
    """
    t, e, x, codes, levels, covs, strata_cols = _cox_design(df, duration, event, covariates, strata)
    if e.sum() == 0:
        raise EstimationError(
            f"no events in column {event!r}: all {x.shape[0]} subjects are censored; a Cox model "
            "needs events"
        )
    cd = _cox_prepare(t, e, x, codes, layouts)
    _collinearity_check(cd, covs)
    return t, e, x, codes, levels, covs, strata_cols, cd


def _newton(
    cd: _CoxData, ties: str, covs: tuple[str, ...], tol: float, max_iter: int
) -> _NewtonFit:
    """Newton-Raphson from 0 with step-halving (``coxph.fit``).

    Warns (for the caller of the caller) when it does not converge or a coefficient appears
    infinite.
    """
    p = cd.x.shape[1]
    beta = np.zeros(p)
    cur = _cox_eval(beta, cd, ties)
    null = cur
    converged = False
    iterations = 0
    failure = ""
    for it in range(1, max_iter + 1):
        iterations = it
        step = _chol_solve(cur.info, cur.score)
        if step is None or not np.all(np.isfinite(step)):
            failure = "the information matrix became singular"
            break
        new_beta = beta + step
        new = _cox_eval(new_beta, cd, ties)
        halvings = 0
        thresh = tol * max(1.0, abs(cur.loglik))
        while (
            not (math.isfinite(new.loglik) and new.loglik >= cur.loglik - thresh) and halvings < 30
        ):
            new_beta = (beta + new_beta) / 2.0
            new = _cox_eval(new_beta, cd, ties)
            halvings += 1
        done = abs(new.loglik - cur.loglik) <= tol * max(1.0, abs(new.loglik))
        beta, cur = new_beta, new
        if done and halvings == 0:
            converged = True
            break
    info = cur.info
    var = np.full((p, p), np.nan)
    if info is not None:
        try:
            var = np.linalg.inv(info)
        except np.linalg.LinAlgError:
            failure = failure or "the information matrix is singular"
            converged = False
    if converged:
        step = var @ cur.score
        inf = (np.abs(step) > _INF_STEP_ABS) & (np.abs(step) > _INF_STEP_REL * np.abs(beta))
        if inf.any():
            converged = False
            failure = (
                "the log-likelihood converged before coefficient(s) "
                + ", ".join(repr(covs[j]) for j in np.flatnonzero(inf))
                + "; they may be infinite (monotone likelihood: e.g. a level with no events)"
            )
    elif not failure:
        failure = f"no convergence in {max_iter} iterations"
    if not converged:
        warnings.warn(
            f"cox: {failure}; converged=False, do not use the estimates",
            StatisticalWarning,
            stacklevel=3,
        )
    return _NewtonFit(
        beta=beta, cur=cur, null=null, var=var, converged=converged, iterations=iterations
    )


def _cox_slope(
    time: Any,
    event: Any,
    lp: Any,
    *,
    strata: Any = None,
    ties: str = "efron",
    layouts: _Layouts | None = None,
) -> tuple[float, bool]:
    r"""The calibration slope :math:`\hat\gamma` of :math:`h(t) = h_0(t)\exp(\gamma\eta)`.

    The coefficient ``cox`` gives for the one covariate ``lp`` (the same checks, Newton-Raphson
    iterations and convergence rule, hence the same bits), without what ``cox`` adds around it
    (summary table, global tests, concordance, baseline hazard): the refit a bootstrap of a Cox
    model's calibration slope makes twice per resample (van Houwelingen & Le Cessie 1990,
    doi:10.1002/sim.4780091109; ``rms``'s ``Slope``).

    Parameters
    ----------
    time, event : array-like
        Follow-up times (finite, ``>= 0``) and 0/1 event indicators, checked as ``cox``
        checks them.
    lp : array-like
        The linear predictor :math:`\eta` (finite).
    strata : array-like, optional
        Stratum labels: a separate baseline hazard per stratum.
    ties : {"efron", "breslow"}
    layouts : _Layouts, optional
        A cache of the risk-set layouts of outcomes seen before (:class:`_Layouts`); the
        result is the same with or without it.

    Returns
    -------
    (float, bool)
        :math:`\hat\gamma`, and whether the fit converged (``cox``'s ``converged``; a
        StatisticalWarning was issued when it did not).

    Raises
    ------
    EstimationError
        No events, or ``lp`` constant (within every stratum).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([5.0, 8, 3, 9, 12, 7, 4, 10])
    >>> e = np.array([1, 0, 1, 1, 0, 1, 1, 0])
    >>> lp = np.array([0.9, -0.2, 1.3, 0.1, -0.8, 0.4, 1.1, -0.5])
    >>> import pandas as pd
    >>> full = cox(pd.DataFrame({"t": t, "e": e, "lp": lp}), duration="t", event="e",
    ...            covariates=["lp"])
    >>> _cox_slope(t, e, lp) == (float(full.coef[0]), full.converged)
    True
    """
    ties = check_option(ties, _TIES, "ties")
    t, e = _check_time_event(
        np.asarray(time), np.asarray(event), ("duration column 'time'", "event column 'event'")
    )
    x = np.asarray(lp, dtype=np.float64).reshape(-1, 1)
    if x.shape[0] != t.shape[0] or not np.all(np.isfinite(x)):
        raise StudyvalError("lp must be finite, one value per subject")
    if e.sum() == 0:
        raise EstimationError(
            f"no events in column 'event': all {t.shape[0]} subjects are censored; a Cox model "
            "needs events"
        )
    if strata is None:
        codes = np.zeros(t.shape[0], dtype=np.int64)
    else:
        _, codes = _encode(np.asarray(strata))
    cd = _cox_prepare(t, e, x, codes, layouts)
    _collinearity_check(cd, ("lp",))
    fit = _newton(cd, ties, ("lp",), 1e-12, 50)
    return float(fit.beta[0]), bool(fit.converged)


def cox(
    df: pd.DataFrame,
    *,
    duration: str,
    event: str,
    covariates: Sequence[str],
    ties: str = "efron",
    strata: str | Sequence[str] | None = None,
    alpha: float = 0.05,
    tol: float = 1e-12,
    max_iter: int = 50,
) -> CoxResult:
    r"""Fit a Cox proportional-hazards model; agrees with ``survival::coxph``.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per subject.
    duration : str
        Column of follow-up times (finite, ``>= 0``; a time of 0 is allowed, as
        in ``coxph``: such a subject is in the risk set only at time 0).
    event : str
        Column of event indicators (1/True = event, 0/False = censored).
    covariates : sequence of str
        **Numeric** covariate columns (bool allowed). Categorical covariates
        must be passed as indicator columns (choose the reference level
        yourself); a non-numeric column is an error naming it.
    ties : {"efron", "breslow"}
        Handling of tied event times; ``"efron"`` is R's default.
    strata : str or sequence of str, optional
        Stratifying column(s): a separate baseline hazard per stratum
        (``+ strata(s)`` in R); several columns are crossed.
    alpha : float
        Two-sided level for the hazard-ratio intervals.
    tol : float
        Convergence tolerance on the relative change of the log partial
        likelihood, :math:`|\ell_{k} - \ell_{k-1}| \le \mathrm{tol}\,\max(1, |\ell_k|)`.
        R's default is 1e-9; the tighter 1e-12 costs an iteration or two.
    max_iter : int
        Maximum Newton-Raphson iterations.

    Returns
    -------
    CoxResult
        Coefficients, SEs, HRs with CIs, the three global tests, Harrell's C,
        the baseline cumulative hazard, ``predict_risk`` and ``predict_risk_at``.

    Raises
    ------
    StudyvalError
        A missing column, a non-numeric covariate, a missing value (the message
        names the column and the row's index label), a negative time, an event
        code other than 0/1.
    EstimationError
        No events; a constant or collinear covariate.

    Warns
    -----
    StatisticalWarning
        No convergence within ``max_iter``, or a coefficient that appears to be
        infinite (monotone likelihood, e.g. a binary covariate whose one level
        has no events). ``converged`` is then False; the estimates are not usable.

    Notes
    -----
    Newton-Raphson from :math:`\beta = 0` with step-halving when the partial
    likelihood decreases (as ``coxph.fit``). Covariates are centred at their
    means internally (this changes no estimate). One sort; risk-set sums are
    reverse cumulative sums; Efron's tied-event corrections are segment sums
    (``np.add.reduceat``): O(n p^2) per iteration. The monotone-likelihood rule
    is R's: after convergence, a coefficient whose next Newton step is still
    larger than ``sqrt(1e-9) * |beta|`` is flagged.

    """
    ties = check_option(ties, _TIES, "ties")
    alpha = check_alpha(alpha)
    if not (isinstance(max_iter, (int, np.integer)) and max_iter >= 1):
        raise StudyvalError(f"max_iter must be a positive integer, got {max_iter!r}")
    tol = float(tol)
    if not (0.0 < tol < 1e-3):
        raise StudyvalError(f"tol must be in (0, 1e-3), got {tol}")
    t, e, x, codes, levels, covs, strata_cols, cd = _cox_data(
        df, duration, event, covariates, strata
    )
    n, p = x.shape
    fit = _newton(cd, ties, covs, tol, max_iter)
    beta, cur, null, var = fit.beta, fit.cur, fit.null, fit.var
    converged, iterations = fit.converged, fit.iterations

    se = np.sqrt(np.diag(var))
    z = _z(alpha)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        zstat = beta / se
        pz = 2.0 * stats.norm.sf(np.abs(zstat))
        hr, hr_lo, hr_hi = np.exp(beta), np.exp(beta - z * se), np.exp(beta + z * se)
    summary = pd.DataFrame(
        {
            "term": list(covs),
            "coef": beta,
            "se": se,
            "hr": hr,
            "ci_low": hr_lo,
            "ci_high": hr_hi,
            "z": zstat,
            "p_value": pz,
        }
    )
    info = cur.info
    lr = 2.0 * (cur.loglik - null.loglik)
    wald = float(beta @ info @ beta) if info is not None else math.nan
    u0 = _chol_solve(null.info, null.score)
    score_stat = float(null.score @ u0) if u0 is not None else math.nan
    lp = x @ beta
    conc = harrell_c(t, e, lp, strata=codes if strata_cols else None)
    stratified = bool(strata_cols)
    return CoxResult(
        summary=summary,
        coef=_readonly(beta.copy()),
        variance=_readonly(var),
        covariates=covs,
        strata=strata_cols,
        ties=ties,
        n=int(n),
        n_events=int(e.sum()),
        loglik_null=float(null.loglik),
        loglik=float(cur.loglik),
        lr_chisq=float(lr),
        lr_df=int(p),
        lr_p=float(stats.chi2.sf(lr, p)),
        wald_chisq=wald,
        wald_df=int(p),
        wald_p=float(stats.chi2.sf(wald, p)),
        score_chisq=score_stat,
        score_df=int(p),
        score_p=float(stats.chi2.sf(score_stat, p)),
        concordance=conc.estimate,
        concordance_se=conc.se,
        iterations=int(iterations),
        converged=bool(converged),
        ci_level=1.0 - alpha,
        baseline_hazard=_baseline(cd, cur, beta, levels, stratified),
        duration=duration,
        event=event,
        _strata_levels=levels,
    )


@dataclasses.dataclass(frozen=True, eq=False)
class _CoxRefit:
    """What a bootstrap refit needs of a :func:`cox` fit: the coefficients and the predictions.

    :func:`_cox_refit` makes it; its prediction methods are :class:`CoxResult`'s own (the same
    code on the same coefficients and baseline hazard, hence the same numbers).
    """

    coef: np.ndarray
    covariates: tuple[str, ...]
    strata: tuple[str, ...]
    converged: bool
    concordance: ConcordanceResult  # Harrell's C of the linear predictor, as cox computes it
    baseline_hazard: pd.DataFrame | None
    _strata_levels: np.ndarray
    # what concordance was computed from: times, events, linear predictor, strata codes or None
    _concordance_of: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]

    _design = CoxResult._design
    predict_risk = CoxResult.predict_risk
    predict_survival = CoxResult.predict_survival
    predict_risk_at = CoxResult.predict_risk_at
    _survival_of = CoxResult._survival_of

    def predict_lp_and_risk_at(
        self, df: pd.DataFrame, horizon: float | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``predict_risk(df)`` and ``predict_risk_at(df, horizon)`` (None without a horizon).

        The covariates are read once; the arithmetic is the same, hence the same numbers.
        """
        lp = self.predict_risk(df)
        if horizon is None:
            return lp, None
        return lp, 1.0 - self._survival_of(df, lp, _check_query_times([horizon]))[:, 0]

    def concordance_if_same(
        self, time: Any, event: Any, risk: Any, strata: Any
    ) -> ConcordanceResult | None:
        """:attr:`concordance` if ``harrell_c(time, event, risk, strata=strata)`` is it, else None.

        It is when the times, events and risks are numeric and equal those it was computed from
        (which passed ``harrell_c``'s checks) and the strata (None for none) are valid labels
        with the same codes: ``harrell_c`` is a function of these alone, so it would give the
        same result, bit for bit, and raise nothing. Any other input gives None.
        """
        t0, e0, lp0, codes0 = self._concordance_of
        t, e, r = np.asarray(time), np.asarray(event), np.asarray(risk)
        for a, a0 in ((t, t0), (e, e0), (r, lp0)):
            if not (a.dtype.kind in "biuf" and a.shape == a0.shape and np.array_equal(a, a0)):
                return None
        if (strata is None) != (codes0 is None):
            return None
        if strata is not None:
            try:
                _, codes = _encode(_check_labels(strata, t0.shape[0], "strata"))
            except StudyvalError:
                return None
            if not np.array_equal(codes, codes0):
                return None
        return self.concordance


def _cox_refit(
    df: pd.DataFrame,
    *,
    duration: str,
    event: str,
    covariates: Sequence[str],
    ties: str = "efron",
    strata: str | Sequence[str] | None = None,
    baseline: bool = True,
    layouts: _Layouts | None = None,
) -> _CoxRefit:
    """:func:`cox` (default ``alpha``, ``tol`` and ``max_iter``) without the summary and tests.

    For a model refitted many times (the bootstrap of
    :func:`studyval.analysis.internal_validation.cox_refit_model`), which uses only the
    coefficients, whether the fit converged and the predictions. Everything ``cox`` does that
    can raise or warn is done here in the same order, so that a refit fails or warns exactly
    when ``cox`` would: the checks, the Newton-Raphson iterations, the standard errors (a
    negative variance warns), Harrell's C of the linear predictor (no comparable pairs raises,
    a zero standard error warns) and the scale of the baseline hazard. The coefficients are
    ``cox``'s, bit for bit (the same code); the baseline hazard is kept only with
    ``baseline=True`` (for ``predict_risk_at``). ``layouts`` (:class:`_Layouts`) lets fits of
    the same outcome share their risk-set layout.
    """
    ties = check_option(ties, _TIES, "ties")
    t, e, x, codes, levels, covs, strata_cols, cd = _cox_data(
        df, duration, event, covariates, strata, layouts
    )
    # the warnings of _newton name the caller of this function, as those of cox name cox's
    fit = _newton(cd, ties, covs, 1e-12, 50)
    # what cox computes next that can warn: the standard errors (a negative variance) and the
    # Wald statistic (an infinite information); the results are not needed here
    np.sqrt(np.diag(fit.var))
    if fit.cur.info is not None:
        fit.beta @ fit.cur.info @ fit.beta
    lp = x @ fit.beta
    conc = harrell_c(t, e, lp, strata=codes if strata_cols else None)
    if baseline:
        bh = _baseline(cd, fit.cur, fit.beta, levels, bool(strata_cols))
    else:  # its arithmetic all the same: it can overflow (OverflowError) or warn
        bh = None
        _baseline_cumhaz(cd, fit.cur, fit.beta)
    return _CoxRefit(
        coef=_readonly(fit.beta.copy()),
        covariates=covs,
        strata=strata_cols,
        converged=bool(fit.converged),
        concordance=conc,
        baseline_hazard=bh,
        _strata_levels=levels,
        _concordance_of=(t, e, lp, codes if strata_cols else None),
    )


@dataclasses.dataclass(frozen=True)
class NestedCoxTest(Result):
    r"""Likelihood-ratio test of a Cox model against a model nested in it.

    Attributes
    ----------
    full, reduced : str
        Covariates of the two models, comma-separated.
    terms_added : str
        Covariates of ``full`` that ``reduced`` lacks.
    chisq : float
        :math:`2\{\ell_{\text{full}}(\hat\beta) - \ell_{\text{reduced}}(\hat\beta)\}`.
    df : int
        Number of added covariates.
    p_value : float
        Upper tail of :math:`\chi^2_{\text{df}}` at ``chisq``.
    loglik_full, loglik_reduced : float
        Maximised log partial likelihoods.
    n, n_events : int
        Subjects and events (the same in both fits).
    method : str
        The test in words.

    """

    full: str
    reduced: str
    terms_added: str
    chisq: float
    df: int
    p_value: float
    loglik_full: float
    loglik_reduced: float
    n: int
    n_events: int
    method: str = "likelihood ratio: 2 x difference in maximised log partial likelihood"


def nested_cox_test(full: CoxResult, reduced: CoxResult) -> NestedCoxTest:
    r"""Likelihood-ratio test of nested Cox models; agrees with ``anova(reduced, full)``.

    .. math::

        \Lambda = 2\{\ell_F(\hat\beta_F) - \ell_R(\hat\beta_R)\}
        \;\sim\; \chi^2_{p_F - p_R}

    under the null hypothesis that the coefficients of the added covariates
    are zero (Wilks 1938, doi:10.1214/aoms/1177732360; for the partial
    likelihood, Andersen & Gill 1982, doi:10.1214/aos/1176345976).

    Parameters
    ----------
    full, reduced : CoxResult
        Fits from :func:`cox` on the same subjects, with the same time, event,
        strata and tie handling; ``reduced``'s covariates a proper subset of
        ``full``'s.

    Returns
    -------
    NestedCoxTest

    Raises
    ------
    StudyvalError
        The models are not nested (covariates not a proper subset), or the fits
        differ in subjects, events, outcome columns, strata or ties: their
        likelihoods are then not comparable and no test is returned.
    EstimationError
        Either fit did not converge.

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"time": [5, 8, 3, 9, 12, 4, 7, 10], "event": [1, 0, 1, 1, 0, 1, 1, 0],
    ...                   "a": [1, 0, 0, 1, 0, 1, 0, 1], "b": [2.0, 1.5, 3.1, 0.2, 0.8, 2.2, 1.0, 0.3]})
    >>> f = cox(d, duration="time", event="event", covariates=["a", "b"])
    >>> r = cox(d, duration="time", event="event", covariates=["a"])
    >>> t = nested_cox_test(f, r)
    >>> (t.terms_added, t.df)
    ('b', 1)

    """
    if not (set(reduced.covariates) < set(full.covariates)):
        raise StudyvalError(
            f"models are not nested: covariates ({', '.join(reduced.covariates)}) are not a "
            f"proper subset of ({', '.join(full.covariates)})"
        )
    same = {
        "subjects": (full.n, reduced.n),
        "events": (full.n_events, reduced.n_events),
        "time column": (full.duration, reduced.duration),
        "event column": (full.event, reduced.event),
        "strata": (full.strata, reduced.strata),
        "ties": (full.ties, reduced.ties),
    }
    differ = [f"{k} ({a} vs {b})" for k, (a, b) in same.items() if a != b]
    if differ:
        raise StudyvalError(
            "the two Cox fits are not comparable (fit both on the same rows): they differ in "
            + "; ".join(differ)
        )
    if not (full.converged and reduced.converged):
        raise EstimationError(
            "a Cox fit did not converge; the likelihood-ratio test is not estimable"
        )
    chisq = 2.0 * (full.loglik - reduced.loglik)
    df = len(full.covariates) - len(reduced.covariates)
    return NestedCoxTest(
        full=", ".join(full.covariates),
        reduced=", ".join(reduced.covariates),
        terms_added=", ".join(c for c in full.covariates if c not in reduced.covariates),
        chisq=float(chisq),
        df=int(df),
        p_value=float(stats.chi2.sf(chisq, df)),
        loglik_full=float(full.loglik),
        loglik_reduced=float(reduced.loglik),
        n=int(full.n),
        n_events=int(full.n_events),
    )
