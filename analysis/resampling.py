r"""Patient-clustered bootstrap: one seeded, vectorised engine for every bootstrap CI.

Several vertebrae (lesions, images) per patient are the normal case in a
validation study, and rows of one patient are not independent. The bootstrap
here therefore resamples **clusters** (patients), not rows (Davison & Hinkley
1997, *Bootstrap Methods and their Application*, §3.8,
doi:10.1017/CBO9780511802843; Field & Welsh 2007, J R Stat Soc B 69:369-390,
doi:10.1111/j.1467-9868.2007.00593.x). Without clusters, every row is its own
cluster and this is the ordinary bootstrap.

Resamples as weights
--------------------
A resample is represented by a weight per row: the number of times the row's
cluster was drawn. With :math:`G` clusters, resample :math:`r` draws :math:`G`
cluster numbers uniformly with replacement, and

.. math::

    w_{ri} = \#\{t \le G : D_{rt} = g(i)\}, \qquad
    D = \texttt{rng.integers(0, G, size=(B, G))},

where ``rng = numpy.random.Generator(numpy.random.PCG64(seed))`` and
:math:`g(i)` is the number of row :math:`i`'s cluster, clusters being numbered
in **sorted order of their ids**. This is the reproducibility contract: given
the seed, resample :math:`r` depends only on the set of (row, cluster id)
pairs, not on the order of the rows or on ``chunk_size``. For an unclustered
one-sample statistic the draws are exactly those of
``scipy.stats.bootstrap(..., rng=numpy.random.Generator(numpy.random.PCG64(seed)))``.

A statistic is evaluated on all resamples of a chunk at once:
``statistic(weights)`` takes a ``(b, n)`` array of weights and returns ``b``
values (:func:`weighted_auc`, :func:`weighted_proportion` are such building
blocks). A weighted statistic with integer weights equals the statistic on the
data with each row repeated ``w`` times, which is what the bootstrap needs; the
weight matrix is never materialised for all resamples at once (memory
:math:`b \cdot n` floats per chunk).

The draws of a chunk are made when the chunk is needed. ``Generator.integers``
consumes the bit stream value by value, so this equals one ``(B, G)`` draw (a
test checks it) while memory stays at :math:`b(G + n)` numbers per chunk rather
than :math:`B \cdot G` up front. NumPy keeps ``Generator`` streams reproducible
within a NumPy version but does not promise them across versions (NEP 19):
record the NumPy version with a seed when results must be re-derived bit for bit.

Failed replicates
-----------------
A resample may contain no positive case (so no AUC), or an empty denominator.
The statistic then returns NaN for that resample. Such replicates are counted
(``n_failed``) and left out of the interval, which then describes the
resamples in which the statistic is defined. If more than
:data:`FAILED_WARN_FRACTION` (1 %) of the replicates fail, a
:class:`~studyval.errors.StatisticalWarning` says so; if all fail, an
:class:`~studyval.errors.EstimationError` is raised.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from studyval.analysis._checks import check_alpha, check_option, check_scores
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError
from studyval.results import Result, results_frame

__all__ = [
    "FAILED_WARN_FRACTION",
    "BootstrapManyResult",
    "BootstrapResult",
    "bootstrap",
    "bootstrap_many",
    "jackknife_weights",
    "resampling_weights",
    "weighted_auc",
    "weighted_auc_statistic",
    "weighted_proportion",
]

#: Share of failed (NaN) replicates above which :func:`bootstrap` warns.
FAILED_WARN_FRACTION = 0.01

_METHODS = ("percentile", "bca")
# Rows x resamples of weights per chunk when chunk_size is None: 2**19 float64
# (4 MiB) keeps a chunk and its temporaries in the CPU caches; larger chunks were
# slower on the benchmark (bench/bench_bootstrap.py), smaller ones pay Python overhead.
_CHUNK_ELEMENTS = 2**19


# --------------------------------------------------------------------- validation


def _check_seed(seed: Any) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise StudyvalError(
            f"seed must be a non-negative integer (it is reported with the result), "
            f"got {seed!r}; there is no default and no global random state"
        )
    seed = int(seed)
    if seed < 0:
        raise StudyvalError(f"seed must be a non-negative integer, got {seed}")
    return seed


def _check_count(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise StudyvalError(f"{name} must be an integer >= {minimum}, got {value!r}")
    value = int(value)
    if value < minimum:
        raise StudyvalError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def _check_clusters(clusters: Any, n_rows: int) -> tuple[np.ndarray, int]:
    """Cluster number of every row (0..G-1, in sorted order of the ids) and G.

    Raises
    ------
    StudyvalError
        Not one-dimensional, wrong length, a missing id (None, NaN, NA), or ids
        that cannot be sorted together (e.g. a mix of numbers and strings).

    """
    if clusters is None:
        return np.arange(n_rows, dtype=np.intp), n_rows
    if isinstance(clusters, (np.ndarray, pd.Series, pd.Index)):
        arr = np.asarray(clusters)
    else:  # a list: keep each id's type (numpy would turn [1, "p1"] into strings)
        arr = np.asarray(clusters, dtype=object)
    if arr.ndim != 1:
        raise StudyvalError(f"clusters must be one-dimensional, got shape {arr.shape}")
    if arr.shape[0] != n_rows:
        raise StudyvalError(
            f"clusters has {arr.shape[0]} values but the data have {n_rows} rows; "
            "give one cluster (patient) id per row"
        )
    missing = pd.isna(arr)
    if np.any(missing):
        i = int(np.flatnonzero(missing)[0])
        raise StudyvalError(
            f"clusters has {int(np.sum(missing))} missing id(s); first at position {i}: "
            f"{arr[i]!r}. Every row needs the id of its patient"
        )
    if arr.dtype == object:
        kinds = {_id_kind(v) for v in arr}
        if len(kinds) > 1:
            raise StudyvalError(
                "cluster ids must be of one sortable type (all strings or all numbers), got "
                f"a mix of {' and '.join(sorted(kinds))}; e.g. 'P001' and 1 would be taken "
                "as different patients"
            )
    codes, uniques = pd.factorize(arr, sort=True)
    return np.asarray(codes, dtype=np.intp), len(uniques)


def _id_kind(value: Any) -> str:
    if isinstance(value, str):
        return "strings"
    if isinstance(value, numbers.Number):
        return "numbers"
    return type(value).__name__


def _check_chunk_size(chunk_size: Any, n_rows: int, n_resamples: int) -> int:
    if chunk_size is None:
        return max(1, min(n_resamples, _CHUNK_ELEMENTS // max(n_rows, 1)))
    return _check_count(chunk_size, "chunk_size", 1)


def _check_weights(weights: Any, n: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != n:
        raise StudyvalError(
            f"weights must have shape (n_resamples, {n}) (one row per resample, one "
            f"column per data row), got shape {w.shape}"
        )
    if w.size and not (w.min() >= 0.0):  # also catches NaN
        raise StudyvalError("weights must be non-negative and not NaN")
    return w


def _check_mask(mask: Any, n: int | None, name: str) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.dtype != np.bool_:
        raise StudyvalError(
            f"{name} must be a boolean array (e.g. from check_binary_outcome), got dtype "
            f"{arr.dtype}; 0/1 or class labels are not accepted, to avoid label mix-ups"
        )
    if arr.ndim not in (1, 2) or (n is not None and arr.shape[0] != n):
        want = "(n,)" if n is None else f"({n},) or ({n}, k)"
        raise StudyvalError(f"{name} must have shape {want}, got {arr.shape}")
    return arr


# -------------------------------------------------------------- resampling weights


def _weights_stream(
    codes: np.ndarray, n_clusters: int, n_resamples: int, seed: int, chunk: int
) -> Iterator[np.ndarray]:
    rng = np.random.Generator(np.random.PCG64(seed))
    identity = codes.size == n_clusters and bool(np.all(codes == np.arange(codes.size)))
    g = n_clusters
    for start in range(0, n_resamples, chunk):
        b = min(chunk, n_resamples - start)
        # Generator.integers consumes the bit stream value by value, so drawing
        # the (B, G) matrix chunk by chunk gives the same draws as one call
        # (tested: tests/test_resampling.py::test_chunk_size_does_not_change_weights).
        draws = rng.integers(0, g, size=(b, g))
        draws += (np.arange(b, dtype=np.int64) * g)[:, None]
        counts = np.bincount(draws.ravel(), minlength=b * g).reshape(b, g)
        counts = counts.astype(np.float64)
        w = counts if identity else np.take(counts, codes, axis=1)
        w.setflags(write=False)
        yield w


def resampling_weights(
    clusters: Any,
    *,
    n_resamples: int,
    seed: int,
    chunk_size: int | None = None,
    n_rows: int | None = None,
) -> Iterator[np.ndarray]:
    r"""Cluster-bootstrap resamples as weight matrices, chunk by chunk.

    Resample :math:`r` draws :math:`G` cluster numbers with replacement,
    ``D = rng.integers(0, G, size=(n_resamples, G))`` with
    ``rng = numpy.random.Generator(numpy.random.PCG64(seed))``, and gives row
    :math:`i` the weight :math:`w_{ri} = \#\{t: D_{rt} = g(i)\}`, where
    :math:`g(i)` numbers the clusters in sorted order of their ids. All rows of
    a cluster share a weight, and :math:`\sum_g w_{rg} = G` over clusters.

    Parameters
    ----------
    clusters : array-like, shape (n,), or None
        Cluster (patient) id of every row; any sortable ids (strings or
        numbers), no missing values. ``None``: every row is its own cluster
        (the ordinary bootstrap; then ``n_rows`` is required).
    n_resamples : int
        Number of resamples :math:`B \ge 1`.
    seed : int
        Seed of the PCG64 generator; required (no global random state).
    chunk_size : int, optional
        Resamples per yielded matrix. Does not change the weights, only how
        many are held in memory at once (:math:`b \cdot n` floats). Default:
        about :math:`2^{19}` weights per chunk.
    n_rows : int, optional
        Number of rows; required when ``clusters`` is None, else checked
        against ``len(clusters)``.

    Yields
    ------
    numpy.ndarray of float64, shape (b, n)
        Read-only weights of resamples ``start .. start + b - 1``, in order;
        the chunks together cover ``n_resamples`` resamples.

    Raises
    ------
    studyval.errors.StudyvalError
        Bad ``clusters`` (wrong length, missing id), ``n_resamples < 1``, bad
        ``seed`` or ``chunk_size``.

    Examples
    --------
    >>> w = next(resampling_weights(["p1", "p1", "p2"], n_resamples=3, seed=1))
    >>> w.shape
    (3, 3)
    >>> bool((w[:, 0] == w[:, 1]).all())  # the two rows of patient p1
    True

    """
    n_resamples = _check_count(n_resamples, "n_resamples", 1)
    seed = _check_seed(seed)
    if clusters is None:
        if n_rows is None:
            raise StudyvalError("n_rows is required when clusters is None")
        n = _check_count(n_rows, "n_rows", 1)
    else:
        n = len(np.asarray(clusters)) if n_rows is None else _check_count(n_rows, "n_rows", 1)
    codes, g = _check_clusters(clusters, n)
    chunk = _check_chunk_size(chunk_size, n, n_resamples)
    return _weights_stream(codes, g, n_resamples, seed, chunk)


def _jackknife_stream(codes: np.ndarray, n_clusters: int, chunk: int) -> Iterator[np.ndarray]:
    order = np.argsort(codes, kind="stable")  # rows grouped by cluster
    bounds = np.searchsorted(codes[order], np.arange(n_clusters + 1))
    for start in range(0, n_clusters, chunk):
        stop = min(start + chunk, n_clusters)
        w = np.ones((stop - start, codes.size))
        rows = order[bounds[start] : bounds[stop]]  # rows of clusters start..stop-1
        w[codes[rows] - start, rows] = 0.0
        w.setflags(write=False)
        yield w


def jackknife_weights(
    clusters: Any, *, chunk_size: int | None = None, n_rows: int | None = None
) -> Iterator[np.ndarray]:
    """Leave-one-cluster-out weights: row ``g`` is 1 everywhere except cluster ``g`` (0).

    Clusters are numbered in sorted order of their ids, as in
    :func:`resampling_weights`. Used for the BCa acceleration.

    Parameters
    ----------
    clusters : array-like, shape (n,), or None
        Cluster id of every row; ``None``: each row its own cluster (then
        ``n_rows`` is required).
    chunk_size : int, optional
        Clusters left out per yielded matrix (default about :math:`2^{19}`
        weights per chunk).
    n_rows : int, optional
        Number of rows; required when ``clusters`` is None.

    Yields
    ------
    numpy.ndarray of float64, shape (b, n)
        Read-only 0/1 weights, one row per left-out cluster, in cluster order.

    """
    if clusters is None:
        if n_rows is None:
            raise StudyvalError("n_rows is required when clusters is None")
        n = _check_count(n_rows, "n_rows", 1)
    else:
        n = len(np.asarray(clusters)) if n_rows is None else _check_count(n_rows, "n_rows", 1)
    codes, g = _check_clusters(clusters, n)
    chunk = _check_chunk_size(chunk_size, n, g)
    return _jackknife_stream(codes, g, chunk)


# ------------------------------------------------------------ weighted statistics


@dataclasses.dataclass(frozen=True)
class _SortedAUC:
    """One sort of the scores, reused for every chunk of weights."""

    n: int
    positive_index: np.ndarray  # (m,) rows of the positives
    negative_sorted: np.ndarray  # (n_neg,) rows of the negatives, by ascending score
    below: np.ndarray  # (m,) negatives scoring strictly below each positive
    at_most: np.ndarray  # (m,) negatives scoring at most each positive (None: no ties)
    ties: bool

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        w = weights
        b = w.shape[0]
        # cum[:, k] = total weight of the k lowest-scoring negatives
        cum = np.empty((b, self.negative_sorted.size + 1))
        cum[:, 0] = 0.0
        np.cumsum(np.take(w, self.negative_sorted, axis=1), axis=1, out=cum[:, 1:])
        w_pos = np.take(w, self.positive_index, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            if not self.ties:
                # negative weight below each positive; no halves to count
                below = np.take(cum, self.below, axis=1)
                numerator = np.einsum("ij,ij->i", w_pos, below)
                return numerator / (w_pos.sum(axis=1) * cum[:, -1])
            # 2 x (negative weight below + half the negative weight tied), per positive
            twice = np.take(cum, self.below, axis=1)
            twice += np.take(cum, self.at_most, axis=1)
            numerator = np.einsum("ij,ij->i", w_pos, twice)
            return numerator / (2.0 * w_pos.sum(axis=1) * cum[:, -1])


def _sorted_auc(is_pos: Any, score: Any) -> _SortedAUC:
    pos = _check_mask(is_pos, None, "is_pos")
    if pos.ndim != 1:
        raise StudyvalError(f"is_pos must be one-dimensional, got shape {pos.shape}")
    s = check_scores(score, pos.size, name="score")
    positive_index = np.flatnonzero(pos)
    negative_index = np.flatnonzero(~pos)
    negative_sorted = negative_index[np.argsort(s[negative_index], kind="stable")]
    neg_scores = s[negative_sorted]
    pos_scores = s[positive_index]
    below = np.searchsorted(neg_scores, pos_scores, side="left")
    at_most = np.searchsorted(neg_scores, pos_scores, side="right")
    return _SortedAUC(
        n=pos.size,
        positive_index=positive_index,
        negative_sorted=negative_sorted,
        below=below,
        at_most=at_most,
        ties=not np.array_equal(below, at_most),
    )


def weighted_auc(is_pos: Any, score: Any, weights: Any) -> np.ndarray:
    r"""Weighted empirical AUC for every row of a weight matrix, from one sort.

    For weight row :math:`w` (positives :math:`i`, negatives :math:`j`),

    .. math::

        \hat\theta_w = \frac{\sum_i \sum_j w_i w_j\, \psi(s_i, s_j)}
                            {\left(\sum_i w_i\right)\left(\sum_j w_j\right)},
        \qquad \psi(x, y) = [x > y] + \tfrac12 [x = y],

    computed as :math:`\sum_i w_i (C_j(<s_i) + C_j(\le s_i)) / 2` with
    :math:`C` the cumulative negative weight in score order, so ties count one
    half. With unit weights it is exactly :func:`~studyval.analysis.discrimination.auc`'s
    estimate (integer arithmetic in float64); with integer weights it is exactly
    the AUC of the data with row :math:`i` repeated :math:`w_i` times. Cost: one
    sort of the scores plus :math:`O(b\,n)`.

    Parameters
    ----------
    is_pos : numpy.ndarray of bool, shape (n,)
        True for positive cases (``check_binary_outcome(y, positive)``).
    score : array-like of float, shape (n,)
        Finite scores; a higher score means more likely positive.
    weights : array-like of float, shape (b, n)
        Non-negative weights, one row per resample (e.g. from
        :func:`resampling_weights`).

    Returns
    -------
    numpy.ndarray of float64, shape (b,)
        The AUC per weight row; NaN where the positive or the negative weight
        is zero (the AUC is undefined).

    See Also
    --------
    weighted_auc_statistic : sorts once for many chunks (use it for large n).

    Examples
    --------
    >>> import numpy as np
    >>> is_pos = np.array([False, False, True, True])
    >>> weighted_auc(is_pos, [0.1, 0.6, 0.4, 0.9], np.ones((1, 4)))
    array([0.75])

    """
    prepared = _sorted_auc(is_pos, score)
    return prepared(_check_weights(weights, prepared.n))


def weighted_auc_statistic(is_pos: Any, score: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Return ``statistic(weights) -> (b,)`` computing :func:`weighted_auc`, sorting once.

    :func:`weighted_auc` sorts the scores on every call; inside
    :func:`bootstrap` that is once per chunk, which dominates for large ``n``
    (small chunks). This closure sorts when it is created. It does not
    re-validate the weights (the bootstrap engine makes them).

    Parameters
    ----------
    is_pos : numpy.ndarray of bool, shape (n,)
        True for positive cases.
    score : array-like of float, shape (n,)
        Finite scores, higher = more likely positive.

    Returns
    -------
    callable
        ``statistic(weights)`` with ``weights`` of shape (b, n).

    """
    return _sorted_auc(is_pos, score)


def weighted_proportion(success_mask: Any, denominator_mask: Any, weights: Any) -> np.ndarray:
    r"""Weighted proportion for every row of a weight matrix (several masks at once).

    .. math::

        \hat p_w = \frac{\sum_i w_i\, [\text{success}_i \wedge \text{denominator}_i]}
                        {\sum_i w_i\, [\text{denominator}_i]}

    e.g. sensitivity with ``success = score >= t`` and ``denominator = is_pos``.
    With integer weights the sums are exact, so the result is exactly the
    proportion in the data with rows repeated.

    Parameters
    ----------
    success_mask : numpy.ndarray of bool, shape (n,) or (n, k)
        Rows counted as successes (only where ``denominator_mask`` is also
        True); ``k`` columns give ``k`` proportions at once (e.g. thresholds).
    denominator_mask : numpy.ndarray of bool, shape (n,) or (n, k)
        Rows in the denominator; broadcast against ``success_mask``.
    weights : array-like of float, shape (b, n)
        Non-negative weights, one row per resample.

    Returns
    -------
    numpy.ndarray of float64, shape (b,) or (b, k)
        NaN where the weighted denominator is zero.

    Examples
    --------
    >>> import numpy as np
    >>> hit = np.array([True, False, True, True])
    >>> pos = np.array([True, True, True, False])
    >>> weighted_proportion(hit, pos, np.ones((1, 4)))
    array([0.66666667])

    """
    den = _check_mask(denominator_mask, None, "denominator_mask")
    n = den.shape[0]
    suc = _check_mask(success_mask, n, "success_mask")
    w = _check_weights(weights, n)
    suc2 = suc if suc.ndim == 2 else suc[:, None]
    den2 = den if den.ndim == 2 else den[:, None]
    try:
        num_mask, den_mask = np.broadcast_arrays(suc2 & den2, den2)
    except ValueError as exc:
        raise StudyvalError(
            f"success_mask {suc.shape} and denominator_mask {den.shape} do not broadcast"
        ) from exc
    numerator = w @ num_mask.astype(np.float64)
    denominator = w @ den_mask.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = numerator / denominator
    return out[:, 0] if suc.ndim == 1 and den.ndim == 1 else out


# ------------------------------------------------------------------------ results


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return bool(np.array_equal(x, y, equal_nan=True))
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    return bool(x == y)


class _ValueEq:
    """Field-wise equality (NaN equals NaN, arrays compared element-wise); unhashable."""

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(
            _same(getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        )

    __hash__ = None  # type: ignore[assignment]


@dataclasses.dataclass(frozen=True, eq=False)
class BootstrapResult(_ValueEq, Result):
    r"""Cluster-bootstrap estimate, standard error and confidence interval.

    With :math:`\hat\theta` the statistic on the data (unit weights) and
    :math:`\hat\theta^*_1, \dots, \hat\theta^*_{B'}` the :math:`B'` finite
    replicates (``B' = n_resamples - n_failed``):

    * ``se`` is their standard deviation (divisor :math:`B' - 1`), ``bias`` is
      :math:`\overline{\theta^*} - \hat\theta`.
    * ``"percentile"``: the :math:`\alpha/2` and :math:`1 - \alpha/2` quantiles
      of the replicates (linear interpolation, numpy's default).
    * ``"bca"``: bias-corrected and accelerated percentile interval (Efron
      1987, J Am Stat Assoc 82:171-185, doi:10.1080/01621459.1987.10478410;
      Efron & Tibshirani 1993, *An Introduction to the Bootstrap*, §14.3),
      the quantiles at levels

      .. math::

          \alpha_{1,2} = \Phi\!\left(z_0 + \frac{z_0 + z_{\alpha/2,\,1-\alpha/2}}
                                     {1 - a\,(z_0 + z_{\alpha/2,\,1-\alpha/2})}\right),
          \qquad z_0 = \Phi^{-1}\!\left(\frac{\#\{\theta^* < \hat\theta\}
                        + \#\{\theta^* \le \hat\theta\}}{2B'}\right),

      .. math::

          a = \frac{\sum_g (\bar\theta_{(\cdot)} - \hat\theta_{(g)})^3}
                   {6\left[\sum_g (\bar\theta_{(\cdot)} - \hat\theta_{(g)})^2\right]^{3/2}},

      where :math:`\hat\theta_{(g)}` is the statistic with cluster :math:`g`
      left out (leave-one-**cluster**-out jackknife). Ties with
      :math:`\hat\theta` count one half in :math:`z_0`, as in
      ``scipy.stats.bootstrap``, with which the interval agrees on unclustered
      data (same draws for the same seed). If all jackknife values are equal,
      :math:`a = 0`.

    ``estimate, ci_low, ci_high = result`` unpacks.

    Attributes
    ----------
    estimate : float
        The statistic on the data.
    se : float
        Bootstrap standard error.
    ci_low, ci_high : float
        Confidence limits.
    ci_level : float
        ``1 - alpha``.
    method : str
        ``"percentile"`` or ``"bca"``.
    n_resamples : int
        Resamples drawn, :math:`B`.
    n_failed : int
        Replicates where the statistic was undefined (NaN), left out of
        ``se``, ``bias`` and the interval.
    n_clusters : int
        Clusters resampled (rows if unclustered).
    n_rows : int
        Rows of the data.
    seed : int
        Seed of the PCG64 generator.
    bias : float
        Mean replicate minus ``estimate``.
    z0 : float
        BCa bias correction :math:`z_0` (NaN for ``"percentile"``).
    acceleration : float
        BCa acceleration :math:`a` (NaN for ``"percentile"``).
    replicates : numpy.ndarray, shape (n_resamples,)
        All replicates in resample order, NaN where failed; read-only, not in
        :meth:`to_frame`.

    """

    _unpack: ClassVar[tuple[str, ...]] = ("estimate", "ci_low", "ci_high")

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    ci_level: float
    method: str
    n_resamples: int
    n_failed: int
    n_clusters: int
    n_rows: int
    seed: int
    bias: float
    z0: float
    acceleration: float
    replicates: np.ndarray = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True, eq=False)
class BootstrapManyResult(_ValueEq, Result):
    """Several statistics bootstrapped on the **same** resamples (one row each).

    Returned by :func:`bootstrap_many`. Because the resamples are shared, a
    difference between two models is bootstrapped correctly by making the
    difference one of the statistics (its replicates are the paired
    differences); ``replicates[:, i] - replicates[:, j]`` gives the same
    replicates, but its interval and BCa acceleration need the statistic itself.

    ``result["auc_a"]`` (or ``result[0]``) is the :class:`BootstrapResult` of
    one statistic; :meth:`to_frame` gives one row per statistic, with the name
    in column ``statistic``.

    Attributes
    ----------
    names : tuple of str
        Statistic names, in column order.
    results : tuple of BootstrapResult
        One per statistic.
    ci_level : float
        ``1 - alpha``.
    method : str
        ``"percentile"`` or ``"bca"``.
    n_resamples, n_clusters, n_rows, seed : int
        As in :class:`BootstrapResult`, shared by all statistics.
    replicates : numpy.ndarray, shape (n_resamples, k)
        Replicates, column ``i`` for statistic ``names[i]``; read-only.

    """

    names: tuple[str, ...]
    results: tuple[BootstrapResult, ...] = dataclasses.field(repr=False)
    ci_level: float
    method: str
    n_resamples: int
    n_clusters: int
    n_rows: int
    seed: int
    replicates: np.ndarray = dataclasses.field(repr=False)

    def __getitem__(self, key: str | int) -> BootstrapResult:
        if isinstance(key, str):
            if key not in self.names:
                raise KeyError(f"no statistic named {key!r}; names: {', '.join(self.names)}")
            return self.results[self.names.index(key)]
        return self.results[key]

    def __len__(self) -> int:
        return len(self.results)

    def to_frame(self) -> pd.DataFrame:
        """One row per statistic: ``statistic`` then the columns of :class:`BootstrapResult`."""
        return results_frame(list(self.results), statistic=list(self.names))


# ------------------------------------------------------------------------- engine


def _evaluate(statistic: Callable, weights: np.ndarray, k: int | None, many: bool) -> np.ndarray:
    out = np.asarray(statistic(weights), dtype=np.float64)
    b = weights.shape[0]
    if many:
        if out.ndim != 2 or out.shape[0] != b or (k is not None and out.shape[1] != k):
            want = f"({b}, {k if k is not None else 'k'})"
            raise StudyvalError(
                f"statistic must return an array of shape {want} (resamples x statistics) "
                f"for weights of shape {weights.shape}, got shape {out.shape}"
            )
        return out
    if out.shape != (b,):
        raise StudyvalError(
            f"statistic must return an array of shape ({b},) (one value per resample) for "
            f"weights of shape {weights.shape}, got shape {out.shape}; for several "
            "statistics use bootstrap_many"
        )
    return out[:, None]


def _quantiles(values: np.ndarray, levels: Sequence[float]) -> tuple[float, float]:
    lo, hi = np.quantile(values, levels)
    return float(lo), float(hi)


def _bca_levels(
    finite: np.ndarray, estimate: float, jack: np.ndarray, alpha: float, name: str
) -> tuple[float, float, float, float]:
    b = finite.size
    p = (np.count_nonzero(finite < estimate) + np.count_nonzero(finite <= estimate)) / (2.0 * b)
    z0 = float(ndtri(p))
    if not math.isfinite(z0):
        side = "above" if p == 0.0 else "below"
        raise EstimationError(
            f"the BCa interval of {name!r} is undefined: every bootstrap replicate lies {side} "
            f"the estimate {estimate:.6g} (z0 infinite), e.g. at a boundary such as AUC = 1; "
            "use method='percentile' and report the degeneracy"
        )
    d = jack.mean() - jack
    ss = float(np.sum(d**2))
    a = 0.0 if ss == 0.0 else float(np.sum(d**3) / (6.0 * ss**1.5))
    levels = []
    for z in (ndtri(alpha / 2.0), ndtri(1.0 - alpha / 2.0)):
        num = z0 + z
        levels.append(float(ndtr(z0 + num / (1.0 - a * num))))
    return z0, a, levels[0], levels[1]


def _run(
    statistic: Callable,
    *,
    many: bool,
    names: Sequence[str] | None,
    n_rows: int,
    clusters: Any,
    n_resamples: int,
    seed: int,
    alpha: float,
    method: str,
    chunk_size: int | None,
) -> tuple[list[BootstrapResult], np.ndarray, int]:
    if not callable(statistic):
        raise StudyvalError(f"statistic must be callable, got {type(statistic).__name__}")
    n = _check_count(n_rows, "n_rows", 1)
    n_resamples = _check_count(n_resamples, "n_resamples", 2)
    seed = _check_seed(seed)
    alpha = check_alpha(alpha)
    method = check_option(method.lower() if isinstance(method, str) else method, _METHODS, "method")
    codes, g = _check_clusters(clusters, n)
    if g < 2:
        raise EstimationError(
            "the bootstrap needs at least 2 clusters; all rows belong to one cluster, so "
            "every resample is the data itself"
        )
    chunk = _check_chunk_size(chunk_size, n, n_resamples)

    ones = np.ones((1, n))
    ones.setflags(write=False)
    estimate = _evaluate(statistic, ones, None, many)[0]
    k = estimate.size
    if many:
        label = _check_names(names, k)
    else:
        label = ("statistic",)
    bad = ~np.isfinite(estimate)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise EstimationError(
            f"the statistic {label[j]!r} is not finite on the data (got {estimate[j]}); "
            "nothing to bootstrap"
        )

    replicates = np.empty((n_resamples, k))
    start = 0
    for w in _weights_stream(codes, g, n_resamples, seed, chunk):
        out = _evaluate(statistic, w, k, many)
        replicates[start : start + w.shape[0]] = out
        start += w.shape[0]

    jack = None
    if method == "bca":
        jack = np.empty((g, k))
        start = 0
        for w in _jackknife_stream(codes, g, _check_chunk_size(chunk_size, n, g)):
            jack[start : start + w.shape[0]] = _evaluate(statistic, w, k, many)
            start += w.shape[0]

    replicates.setflags(write=False)
    results = []
    for j in range(k):
        col = replicates[:, j]
        ok = np.isfinite(col)
        n_failed = int(n_resamples - np.count_nonzero(ok))
        finite = col[ok]
        if finite.size < 2:
            raise EstimationError(
                f"the statistic {label[j]!r} is undefined (NaN) in {n_failed} of "
                f"{n_resamples} resamples; no interval can be formed. With few clusters of "
                "one class, resamples often lack that class"
            )
        if n_failed > FAILED_WARN_FRACTION * n_resamples:
            warnings.warn(
                f"the statistic {label[j]!r} is undefined in {n_failed} of {n_resamples} "
                f"resamples ({100.0 * n_failed / n_resamples:.1f} %, more than "
                f"{100.0 * FAILED_WARN_FRACTION:g} %); they are left out, so the interval "
                "describes only the resamples in which it is defined",
                StatisticalWarning,
                stacklevel=3,
            )
        est = float(estimate[j])
        if method == "percentile":
            z0 = a = math.nan
            lo, hi = _quantiles(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
        else:
            jcol = jack[:, j]  # type: ignore[index]
            if not np.all(np.isfinite(jcol)):
                i = int(np.flatnonzero(~np.isfinite(jcol))[0])
                raise EstimationError(
                    f"the BCa acceleration of {label[j]!r} is undefined: leaving out cluster "
                    f"number {i} (in sorted id order) makes the statistic NaN, e.g. it holds "
                    "the only positive cases; use method='percentile'"
                )
            z0, a, l1, l2 = _bca_levels(finite, est, jcol, alpha, label[j])
            lo, hi = _quantiles(finite, [l1, l2])
        results.append(
            BootstrapResult(
                estimate=est,
                se=float(np.std(finite, ddof=1)),
                ci_low=lo,
                ci_high=hi,
                ci_level=1.0 - alpha,
                method=method,
                n_resamples=n_resamples,
                n_failed=n_failed,
                n_clusters=g,
                n_rows=n,
                seed=seed,
                bias=float(np.mean(finite) - est),
                z0=z0,
                acceleration=a,
                replicates=col,
            )
        )
    return results, replicates, g


def _check_names(names: Any, k: int) -> tuple[str, ...]:
    if names is None or isinstance(names, str):
        raise StudyvalError(
            f"names must be a sequence of {k} statistic names (one per column), got {names!r}"
        )
    out = tuple(str(x) for x in names)
    if len(out) != k:
        raise StudyvalError(f"the statistic returns {k} columns but names has {len(out)}: {out!r}")
    if len(set(out)) != k:
        raise StudyvalError(f"names must be distinct, got {out!r}")
    return out


def bootstrap(
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    n_rows: int,
    clusters: Any = None,
    n_resamples: int = 2000,
    seed: int,
    alpha: float = 0.05,
    method: str = "bca",
    chunk_size: int | None = None,
) -> BootstrapResult:
    r"""Cluster bootstrap of one statistic: estimate, SE, percentile or BCa interval.

    Resamples patients (clusters), not rows: see the module docstring for the
    draws and :class:`BootstrapResult` for the formulas.

    Parameters
    ----------
    statistic : callable
        ``statistic(weights) -> values``: weights of shape (b, n), one row per
        resample (read-only; the count of each row's cluster in that
        resample), values of shape (b,). ``statistic(np.ones((1, n)))`` is the
        estimate. Return NaN for a resample where the statistic is undefined.
        Build it from :func:`weighted_auc` / :func:`weighted_auc_statistic`,
        :func:`weighted_proportion`, or any weighted formula.
    n_rows : int
        Number of rows ``n`` of the data.
    clusters : array-like, shape (n,), optional
        Patient id of every row (any sortable ids, none missing). ``None``:
        each row is its own cluster (ordinary bootstrap), which understates the
        uncertainty when rows of one patient are correlated.
    n_resamples : int, default 2000
        Number of resamples :math:`B \ge 2`.
    seed : int
        Seed of the PCG64 generator; required. The same seed gives the same
        result, whatever ``chunk_size`` and the order of the rows.
    alpha : float, default 0.05
        Interval level ``1 - alpha``.
    method : {"bca", "percentile"}, default "bca"
        Interval method (case-insensitive). BCa needs one statistic evaluation
        per cluster more (the jackknife): about :math:`G/B` times the cost of
        the resamples.
    chunk_size : int, optional
        Resamples evaluated per call of ``statistic``; changes memory and speed,
        never the result.

    Returns
    -------
    BootstrapResult

    Raises
    ------
    studyval.errors.StudyvalError
        Bad ``clusters`` (wrong length, missing id), ``n_resamples < 2``, bad
        ``seed``, ``alpha``, ``method`` (with a "did you mean"), or a statistic
        returning the wrong shape.
    studyval.errors.EstimationError
        Fewer than 2 clusters; the statistic not finite on the data; fewer than
        2 finite replicates; an undefined BCa correction (all replicates on one
        side of the estimate, or a NaN jackknife value).

    Warns
    -----
    StatisticalWarning
        More than :data:`FAILED_WARN_FRACTION` of the replicates are NaN.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([1.0, 2.0, 4.0, 8.0, 3.0, 5.0])
    >>> mean = lambda w: w @ x / w.sum(axis=1)
    >>> r = bootstrap(mean, n_rows=6, clusters=[1, 1, 2, 2, 3, 3], seed=0,
    ...               n_resamples=200, method="percentile")
    >>> r.estimate, r.n_clusters
    (3.8333333333333335, 3)

    """
    results, _, _ = _run(
        statistic,
        many=False,
        names=None,
        n_rows=n_rows,
        clusters=clusters,
        n_resamples=n_resamples,
        seed=seed,
        alpha=alpha,
        method=method,
        chunk_size=chunk_size,
    )
    return results[0]


def bootstrap_many(
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    names: Sequence[str],
    n_rows: int,
    clusters: Any = None,
    n_resamples: int = 2000,
    seed: int,
    alpha: float = 0.05,
    method: str = "bca",
    chunk_size: int | None = None,
) -> BootstrapManyResult:
    """Cluster bootstrap of ``k`` statistics on the same resamples.

    Use it for quantities that must share resamples: two models' AUCs and
    their difference (paired), sensitivity at several thresholds, or several
    metrics of one model reported together. Each statistic gets its own
    interval, failure count and (BCa) acceleration; see :class:`BootstrapResult`.

    Parameters
    ----------
    statistic : callable
        ``statistic(weights) -> values``: weights of shape (b, n), values of
        shape (b, k), NaN where a statistic is undefined.
    names : sequence of str
        ``k`` distinct names, one per column of the statistic.
    n_rows, clusters, n_resamples, seed, alpha, method, chunk_size
        As in :func:`bootstrap`.

    Returns
    -------
    BootstrapManyResult
        ``result.to_frame()`` has one row per statistic.

    Raises
    ------
    studyval.errors.StudyvalError
        As :func:`bootstrap`, and ``names`` not matching the ``k`` columns.
    studyval.errors.EstimationError
        As :func:`bootstrap`, for any statistic.

    Warns
    -----
    StatisticalWarning
        More than :data:`FAILED_WARN_FRACTION` of a statistic's replicates are NaN.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.tile([True, False], 10)          # 10 patients, one of each class
    >>> a = np.linspace(0, 1, 20) + 0.3 * y
    >>> b = np.linspace(0, 1, 20)[::-1] + 0.6 * y
    >>> def stat(w):
    ...     auc_a, auc_b = weighted_auc(y, a, w), weighted_auc(y, b, w)
    ...     return np.column_stack([auc_a, auc_b, auc_a - auc_b])
    >>> r = bootstrap_many(stat, names=["a", "b", "a - b"], n_rows=20,
    ...                    clusters=np.repeat(np.arange(10), 2), seed=1,
    ...                    n_resamples=200, method="percentile")
    >>> list(r.to_frame()["statistic"])
    ['a', 'b', 'a - b']

    """
    results, replicates, g = _run(
        statistic,
        many=True,
        names=names,
        n_rows=n_rows,
        clusters=clusters,
        n_resamples=n_resamples,
        seed=seed,
        alpha=alpha,
        method=method,
        chunk_size=chunk_size,
    )
    first = results[0]
    return BootstrapManyResult(
        names=_check_names(names, len(results)),
        results=tuple(results),
        ci_level=first.ci_level,
        method=first.method,
        n_resamples=first.n_resamples,
        n_clusters=g,
        n_rows=first.n_rows,
        seed=first.seed,
        replicates=replicates,
    )
