r"""Concordance (C-index) of a risk score with a censored outcome: Harrell's and Uno's C.

* :func:`harrell_c` -- Harrell's C with the infinitesimal-jackknife standard
  error of ``survival::concordance``, optionally within strata.
* :func:`uno_c` -- Uno's IPCW C up to a horizon ``tau`` (``timewt = "n/G2"``),
  with the censoring weights of :func:`studyval.analysis.kaplan_meier._km_censoring`.
* :func:`_concordance_counts` / :func:`_pair_sums` -- the weighted pair counts
  and per-subject influence counts in ``O(n log n)`` (a radix / wavelet-tree pass).

Convention: **risk, higher = worse.** The functions take a *risk* score: a
higher value means an earlier expected event (a Cox linear predictor, a
predicted event probability at a horizon, a network's logit). This is
``reverse = TRUE`` in R's ``survival::concordance``, the ``estimate`` of
scikit-survival, and the *negative* of what lifelines' ``concordance_index``
expects. ``time`` and ``event`` follow :mod:`studyval.analysis.kaplan_meier`;
times are compared exactly.

Oracles: R 4.2 with ``survival`` 3.5 (``concordance``) and brute-force
``O(n^2)`` pair loops; see ``tests/test_survival_concordance.py``. Second
oracle: lifelines ``concordance_index`` (``tests/test_second_oracles.py``).

References
----------
* Harrell FE, Califf RM, Pryor DB, Lee KL, Rosati RA (1982). Evaluating the
  yield of medical tests. JAMA 247:2543-2546. doi:10.1001/jama.1982.03320430047030
* Uno H, Cai T, Pencina MJ, D'Agostino RB, Wei LJ (2011). On the C-statistics
  for evaluating overall adequacy of risk prediction procedures with censored
  survival data. Stat Med 30:1105-1117. doi:10.1002/sim.4154
* Therneau TM, Atkinson EJ (2023). The concordance statistic. Vignette of the
  R package survival.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, ClassVar

import numpy as np

from studyval.analysis._checks import check_alpha
from studyval.analysis._checks import z_critical as _z
from studyval.analysis._survival_common import _check_labels, _check_time_event, _encode
from studyval.analysis.kaplan_meier import _km_censoring
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError
from studyval.results import Result

__all__ = ["ConcordanceResult", "harrell_c", "uno_c"]


def _pair_sums(perm: np.ndarray, r: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dominance counts along a sequence, in O(n log K) vectorised numpy.

    With the sequence ``perm`` (a permutation of ``0..n-1``), integer ranks
    ``r`` in ``[0, K)`` and weights ``v``, returns for every element ``i``

    * ``A[i] = #{j before i in perm : r[j] < r[i]}`` and
    * ``B[i] = sum(v[j] for j after i in perm if r[j] > r[i])``.

    Algorithm: a most-significant-bit-first radix partition (a wavelet tree).
    At bit level ``L`` the elements are grouped by ``r >> (L + 1)``, kept in
    sequence order within a group; a pair whose ranks first differ at bit ``L``
    lies in one group, the smaller rank having bit 0 there. Each level is a few
    cumulative sums and a stable partition, so the whole is ``O(n log K)`` with
    no Python loop over elements: what a Fenwick tree computes, in one pass for
    both directions.
    """
    n = perm.shape[0]
    ro = r[perm].astype(np.int64)
    pos = perm.astype(np.int64)
    vo = v[perm].astype(np.float64)
    acc_a = np.zeros(n)
    acc_b = np.zeros(n)
    if n == 0:
        return acc_a, acc_b
    gstart = np.zeros(n, dtype=np.int64)  # first position of each element's group
    gend = np.full(n, n - 1, dtype=np.int64)  # last position of each element's group
    idx = np.arange(n, dtype=np.int64)
    nbits = max(1, int(ro.max()).bit_length())
    for level in range(nbits - 1, -1, -1):
        bit = (ro >> level) & 1
        zero = 1 - bit
        cz = np.cumsum(zero)
        ecz = cz - zero
        base = ecz[gstart]
        zr = ecz - base  # bit-0 elements earlier in the group
        acc_a += zr * bit
        cv = np.cumsum(vo * bit)
        acc_b += (cv[gend] - cv) * zero  # v of bit-1 elements later in the group
        if level == 0:
            break
        # stable partition of every group: bit-0 elements first
        nz = cz[gend] - base
        newpos = gstart + zr + bit * (nz + idx - gstart - 2 * zr)
        new_gstart = gstart + bit * nz
        new_gend = gstart + nz - 1 + bit * (gend - gstart - nz + 1)
        moved = []
        for arr in (ro, pos, vo, acc_a, acc_b, new_gstart, new_gend):
            out = np.empty_like(arr)
            out[newpos] = arr
            moved.append(out)
        ro, pos, vo, acc_a, acc_b, gstart, gend = moved
    a = np.empty(n)
    b = np.empty(n)
    a[pos] = acc_a
    b[pos] = acc_b
    return a, b


#: Largest number of subjects for which :func:`_pair_sums_dense` replaces :func:`_pair_sums`
#: (0/1 weights): below it the n x n comparison is the faster of the two (measured).
_DENSE_MAX_N = 600


def _pair_sums_dense(
    key: np.ndarray, r: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """What :func:`_pair_sums` returns for the order ``lexsort((-r, -key))``, by an n x n table.

    ``A[i] = #{j : key_j > key_i, r_j < r_i}`` and ``B[i] = sum(v[j] : key_j < key_i, r_j > r_i)``
    (the pairs before and after ``i`` in that order). For weights ``v`` of 0 and 1 only: both
    are then counts, exact in float64 however they are summed, so the result is
    ``_pair_sums``'s bit for bit. O(n^2) time and memory; used up to ``_DENSE_MAX_N`` subjects,
    where it is faster than the radix pass's many small steps.
    """
    k = key.astype(np.int32)
    rk = r.astype(np.int32)
    # table[i, j]: i's time comes before j's (j at risk at i's event) and i has the higher risk
    table = ((k[:, None] < k[None, :]) & (rk[:, None] > rk[None, :])).view(np.uint8)
    a = table.sum(axis=1, dtype=np.int32).astype(np.float64)
    b = table[v == 1.0].sum(axis=0, dtype=np.int32).astype(np.float64)
    return a, b


@dataclasses.dataclass(frozen=True)
class _ConcCounts:
    """Weighted pair counts and per-subject influence counts (one stratum or summed)."""

    concordant: float
    discordant: float
    tied_risk: float
    tied_time: float
    tied_both: float
    infl_conc: np.ndarray
    infl_disc: np.ndarray
    infl_tied: np.ndarray


def _concordance_counts(
    t: np.ndarray, e: np.ndarray, risk: np.ndarray, wt: np.ndarray
) -> _ConcCounts:
    """Pair counts of ``survival::concordance`` for one stratum.

    A pair (i, j) is comparable when i has an event at :math:`t_i` and j is
    still at risk: :math:`t_j > t_i`, or :math:`t_j = t_i` and j censored.
    It is concordant when :math:`r_i > r_j` (the earlier event has the higher
    risk), discordant when :math:`r_i < r_j`, tied on risk when equal; it
    carries the weight ``wt[i]`` of the event. Pairs of events at the same
    time are counted apart (tied on time, or on time and risk).
    """
    n = t.shape[0]
    _, r = np.unique(risk, return_inverse=True)
    r = r.reshape(-1).astype(np.int64)
    kmax = int(r.max()) if n else 0
    _, trank = np.unique(t, return_inverse=True)
    trank = trank.reshape(-1).astype(np.int64)
    key = 2 * trank + (1 - e.astype(np.int64))
    # the risk set of an event i is {j : key_j > key_i}
    v = wt * e  # weight carried by an event, 0 for the censored
    # concordant: A = #{key_j > key_i, r_j < r_i} (i as the event),
    #             B = sum of v_i over {key_i < key_j, r_i > r_j} (j as the one at risk)
    if n <= _DENSE_MAX_N and np.all((v == 0.0) | (v == 1.0)):
        conc_d, conc_m = _pair_sums_dense(key, r, v)  # the same counts, faster for small n
    else:
        conc_d, conc_m = _pair_sums(np.lexsort((-r, -key)), r, v)
    conc_d *= v
    # all comparable pairs (key_j > key_i), as counts by key: O(n)
    nkey = int(key.max()) + 1
    cnt_key = np.bincount(key, minlength=nkey)
    tot_d = (n - np.cumsum(cnt_key))[key] * v
    v_key = np.bincount(key, weights=v, minlength=nkey)
    tot_m = (np.cumsum(v_key) - v_key)[key]
    # pairs tied on risk: within a run of equal r (sorted by r, then key)
    order = np.lexsort((key, r))
    rs, ks, vs = r[order], key[order], v[order]
    idx = np.arange(n)
    first = np.ones(1, dtype=bool)
    new_r = np.concatenate((first, rs[1:] != rs[:-1]))
    new_rk = new_r | np.concatenate((first, ks[1:] != ks[:-1]))
    end_r = np.concatenate((new_r[1:], first))
    end_rk = np.concatenate((new_rk[1:], first))
    r_last = np.minimum.accumulate(np.where(end_r, idx, n)[::-1])[::-1]
    rk_last = np.minimum.accumulate(np.where(end_rk, idx, n)[::-1])[::-1]
    r_first = np.maximum.accumulate(np.where(new_r, idx, 0))
    rk_first = np.maximum.accumulate(np.where(new_rk, idx, 0))
    cv = np.concatenate(([0.0], np.cumsum(vs)))
    tie_d = np.empty(n)
    tie_m = np.empty(n)
    tie_d[order] = (r_last - rk_last) * vs  # same r, larger key
    tie_m[order] = cv[rk_first] - cv[r_first]  # v of same r, smaller key
    disc_d = tot_d - conc_d - tie_d
    disc_m = tot_m - conc_m - tie_m
    # events tied on time: pairs within (time) and within (time, risk)
    ev = e == 1
    tt = trank[ev]
    _, first_t, cnt_t = np.unique(tt, return_index=True, return_counts=True)
    pairs_t = float(np.sum(v[ev][first_t] * cnt_t * (cnt_t - 1) / 2.0))
    _, first_b, cnt_b = np.unique(tt * (kmax + 1) + r[ev], return_index=True, return_counts=True)
    pairs_b = float(np.sum(v[ev][first_b] * cnt_b * (cnt_b - 1) / 2.0))
    return _ConcCounts(
        concordant=float(conc_d.sum()),
        discordant=float(disc_d.sum()),
        tied_risk=float(tie_d.sum()),
        tied_time=pairs_t - pairs_b,
        tied_both=pairs_b,
        infl_conc=conc_d + conc_m,
        infl_disc=disc_d + disc_m,
        infl_tied=tie_d + tie_m,
    )


@dataclasses.dataclass(frozen=True, eq=False)
class ConcordanceResult(Result):
    r"""Concordance (C-index) of a risk score with a censored outcome.

    A pair of subjects is *comparable* when the one with the shorter
    follow-up, :math:`i`, had the event and the other, :math:`j`, was still at
    risk (:math:`T_j > T_i`, or :math:`T_j = T_i` and :math:`j` censored). The
    risk score is *concordant* on that pair when :math:`r_i > r_j` (higher risk
    = earlier event). With pair weights :math:`w_{ij}` (1 for Harrell; Uno's
    :math:`\hat G(T_i-)^{-2}` and the horizon for :func:`uno_c`),

    .. math::

        \hat C = \frac{\sum w_{ij}\{I(r_i > r_j) + \tfrac12 I(r_i = r_j)\}}
                      {\sum w_{ij}}.

    The standard error is the infinitesimal-jackknife (IJ) estimate of
    ``survival::concordance``: with :math:`N = \sum w_{ij}` the total weight,
    :math:`D = (\text{concordant} - \text{discordant})/N` Somers' :math:`d`,
    and for each subject :math:`k` the weights :math:`c_k, d_k, t_k` of the
    concordant, discordant and risk-tied comparable pairs it belongs to,

    .. math::

        \frac{\partial D}{\partial w_k} = \frac{c_k - d_k}{N} - \frac{D}{N}(c_k + d_k + t_k),
        \qquad \widehat{\mathrm{Var}}(\hat C) = \frac14 \sum_k
        \Bigl(\frac{\partial D}{\partial w_k}\Bigr)^2.

    The interval is :math:`\hat C \pm z_{1-\alpha/2}\,\mathrm{se}` truncated to
    [0, 1] (R reports no interval). For :func:`uno_c` the IJ variance treats
    the censoring weights as fixed, as R does.

    ``estimate, ci_low, ci_high = result`` unpacks.

    Attributes
    ----------
    estimate : float
        The C-index; 0.5 = no discrimination, 1 = perfect ranking.
    se : float
        Infinitesimal-jackknife standard error (``sqrt(fit$var)`` in R). When it
        is 0 (constant risk, perfect ordering) a StatisticalWarning is issued.
    ci_low, ci_high : float
        Wald limits truncated to [0, 1].
    ci_level : float
        ``1 - alpha``.
    n : int
        Number of subjects.
    n_events : int
        Number of events.
    n_concordant, n_discordant, n_tied_risk : int
        Comparable pairs by outcome (unweighted counts; for Uno's C only the
        pairs with :math:`T_i \le \tau` are counted).
    n_tied_time : int
        Pairs of events at the same time with different risks (not comparable).
    n_tied_both : int
        Pairs of events at the same time with equal risks (not comparable).
    comparable_pairs : int
        ``n_concordant + n_discordant + n_tied_risk``.
    method : str
        ``"Harrell"`` or ``"Uno"``.
    tau : float or None
        Uno's truncation time (None for Harrell).

    """

    _unpack: ClassVar[tuple[str, ...]] = ("estimate", "ci_low", "ci_high")

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    ci_level: float
    n: int
    n_events: int
    n_concordant: int
    n_discordant: int
    n_tied_risk: int
    n_tied_time: int
    n_tied_both: int
    comparable_pairs: int
    method: str
    tau: float | None = None


def _zero_se_warning(method: str, stacklevel: int) -> None:
    """The warning of a concordance whose IJ standard error is 0 (``stacklevel`` as warn's)."""
    warnings.warn(
        f"{method} C: the standard error is 0 (every subject's comparable pairs have the same "
        "make-up, e.g. a constant risk or a perfect ordering); the interval is degenerate",
        StatisticalWarning,
        stacklevel=stacklevel,
    )


def _concordance(
    t: np.ndarray,
    e: np.ndarray,
    risk: np.ndarray,
    strata: np.ndarray | None,
    weight_fn: Any,
    alpha: float,
    method: str,
    tau: float | None,
) -> ConcordanceResult:
    n = t.shape[0]
    if e.sum() == 0:
        raise EstimationError("no events: concordance needs at least one event")
    codes = np.zeros(n, dtype=np.int64) if strata is None else strata
    infl = np.zeros((n, 3))
    tot = np.zeros(5)
    cnt = np.zeros(5)
    for s in np.unique(codes):
        m = np.flatnonzero(codes == s)
        ts, es, rs = t[m], e[m], risk[m]
        wt, wt_count = weight_fn(ts, es)
        c = _concordance_counts(ts, es, rs, wt)
        tot += [c.concordant, c.discordant, c.tied_risk, c.tied_time, c.tied_both]
        infl[m, 0] = c.infl_conc
        infl[m, 1] = c.infl_disc
        infl[m, 2] = c.infl_tied
        if wt_count is wt:
            cnt += [c.concordant, c.discordant, c.tied_risk, c.tied_time, c.tied_both]
        else:
            cu = _concordance_counts(ts, es, rs, wt_count)
            cnt += [cu.concordant, cu.discordant, cu.tied_risk, cu.tied_time, cu.tied_both]
    npair = tot[0] + tot[1] + tot[2]
    if npair <= 0:
        raise EstimationError(
            "no comparable pairs: every event is tied in time with all later follow-up "
            "(or lies after tau)"
        )
    somer = (tot[0] - tot[1]) / npair
    dfbeta = (infl[:, 0] - infl[:, 1]) / npair - (somer / npair) * infl.sum(axis=1)
    se = math.sqrt(float(np.sum(dfbeta**2)) / 4.0)
    est = (somer + 1.0) / 2.0
    if se == 0.0:
        _zero_se_warning(method, stacklevel=4)  # names the caller of harrell_c / uno_c
    z = _z(alpha)
    rnd = np.rint(cnt).astype(np.int64)
    return ConcordanceResult(
        estimate=float(est),
        se=se,
        ci_low=float(max(0.0, est - z * se)),
        ci_high=float(min(1.0, est + z * se)),
        ci_level=1.0 - alpha,
        n=int(n),
        n_events=int(e.sum()),
        n_concordant=int(rnd[0]),
        n_discordant=int(rnd[1]),
        n_tied_risk=int(rnd[2]),
        n_tied_time=int(rnd[3]),
        n_tied_both=int(rnd[4]),
        comparable_pairs=int(rnd[0] + rnd[1] + rnd[2]),
        method=method,
        tau=tau,
    )


def _check_risk(risk: Any, n: int) -> np.ndarray:
    arr = np.asarray(risk, dtype=np.float64)
    if arr.ndim != 1:
        raise StudyvalError(f"risk must be one-dimensional, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise StudyvalError(f"risk has {arr.shape[0]} values but time has {n}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StudyvalError(
            f"risk has {int(bad.sum())} non-finite value(s); first at position {i}: {arr[i]}"
        )
    return arr


def harrell_c(
    time: Any, event: Any, risk: Any, *, strata: Any = None, alpha: float = 0.05
) -> ConcordanceResult:
    r"""Harrell's C-index of a risk score (higher = worse), with its IJ standard error.

    Parameters
    ----------
    time : array-like, shape (n,)
        Follow-up times (finite, ``>= 0``).
    event : array-like, shape (n,)
        1 = event, 0 = censored.
    risk : array-like, shape (n,)
        Predicted **risk: higher = earlier event** (a Cox linear predictor, a
        predicted event probability). Pass ``-score`` for a predicted survival
        time or survival probability.
    strata : array-like, shape (n,), optional
        Compare pairs only within strata (as ``coxph`` does for a stratified model).
    alpha : float
        Two-sided level of the interval.

    Returns
    -------
    ConcordanceResult
        Estimate, IJ standard error, interval and the pair counts.

    Raises
    ------
    StudyvalError
        Invalid inputs.
    EstimationError
        No events or no comparable pairs.

    Notes
    -----
    Agrees with ``survival::concordance(Surv(time, status) ~ risk, reverse =
    TRUE)`` (estimate, ``sqrt(var)`` and the counts) for times without
    floating-point near-ties. Pairs tied on risk count one half; pairs of events
    at the same time are not comparable; an event and a censoring at the same
    time are comparable (the censored subject was at risk). ``O(n log n)``:
    a few sorts and one radix (wavelet-tree) pass that counts, for every
    subject, the concordant pairs it belongs to from both sides (see
    :func:`_pair_sums`); discordant pairs follow from the totals and the risk
    ties. Harrell et al.
    (1982), doi:10.1001/jama.1982.03320430047030.

    Examples
    --------
    >>> harrell_c([1, 2, 3, 4], [1, 1, 0, 1], [4, 3, 2, 1]).estimate
    1.0

    """
    t, e = _check_time_event(time, event)
    r = _check_risk(risk, t.shape[0])
    alpha = check_alpha(alpha)
    codes = None
    if strata is not None:
        _, codes = _encode(_check_labels(strata, t.shape[0], "strata"))

    def unit(ts: np.ndarray, es: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = np.ones(ts.shape[0])
        return w, w

    return _concordance(t, e, r, codes, unit, alpha, "Harrell", None)


def uno_c(
    time: Any, event: Any, risk: Any, *, tau: float, alpha: float = 0.05
) -> ConcordanceResult:
    r"""Uno's IPCW C-index up to a horizon ``tau`` (risk: higher = worse).

    .. math::

        \hat C_\tau = \frac{\sum_{i,j} \Delta_i\, \hat G(T_i-)^{-2}\,
            I(T_i < T_j,\ T_i \le \tau)\,\{I(r_i > r_j) + \tfrac12 I(r_i = r_j)\}}
            {\sum_{i,j} \Delta_i\, \hat G(T_i-)^{-2}\, I(T_i < T_j,\ T_i \le \tau)}

    with :math:`\hat G` the Kaplan-Meier estimate of the censoring
    distribution (:func:`_km_censoring`), evaluated just before the event time.
    Uno et al. (2011), doi:10.1002/sim.4154.

    Parameters
    ----------
    time, event : array-like, shape (n,)
        Follow-up times (``>= 0``) and event indicators (1 = event).
    risk : array-like, shape (n,)
        Predicted **risk: higher = earlier event**.
    tau : float
        Horizon (required, pre-specified): only events at :math:`T_i \le \tau`
        form pairs. Choose it where :math:`\hat G(\tau)` is still well above 0.
    alpha : float
        Two-sided level of the interval.

    Returns
    -------
    ConcordanceResult
        ``method = "Uno"``; the counts are unweighted comparable pairs with
        :math:`T_i \le \tau`.

    Raises
    ------
    StudyvalError
        Invalid inputs or ``tau``.
    EstimationError
        No events, or no comparable pair before ``tau``.

    Notes
    -----
    This is R's definition, ``survival::concordance(Surv(time, status) ~ risk,
    reverse = TRUE, timewt = "n/G2", ymax = tau)``, which differs from the
    formula printed in Uno et al. in two documented ways: a pair tied on risk
    counts one half (the paper counts it 0 in the numerator), and an event tied
    in time with a censoring is comparable (the same rule as Harrell's C).
    :math:`\hat G(t-)` treats a censoring tied with an event as happening after
    it. With fewer than two events R silently falls back to unit weights; we
    do the same and say so in the warning. The IJ standard error treats
    :math:`\hat G` as known, as R does.

    """
    t, e = _check_time_event(time, event)
    r = _check_risk(risk, t.shape[0])
    alpha = check_alpha(alpha)
    try:
        tau_f = float(tau)
    except (TypeError, ValueError):
        raise StudyvalError(f"tau must be a number, got {tau!r}") from None
    if not math.isfinite(tau_f) or tau_f <= 0:
        raise StudyvalError(f"tau must be finite and > 0, got {tau!r}")
    if e.sum() < 2:
        warnings.warn(
            "fewer than two events: Uno's weights are undefined; unit weights are used "
            "(as survival::concordance does)",
            StatisticalWarning,
            stacklevel=2,
        )
    gkm = _km_censoring(t, e)

    def ipcw(ts: np.ndarray, es: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        inside = ts <= tau_f
        if es.sum() < 2:
            w = inside.astype(np.float64)
        else:
            g = gkm.left(ts)
            with np.errstate(divide="ignore"):
                w = np.where(inside & (es == 1), 1.0 / g**2, 0.0)
        return w, inside.astype(np.float64)

    return _concordance(t, e, r, None, ipcw, alpha, "Uno", tau_f)
